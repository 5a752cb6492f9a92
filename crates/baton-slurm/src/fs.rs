//! Is a directory on a filesystem the nodes of a cluster can share? Local filesystems
//! (ext4, xfs, btrfs, tmpfs, overlay…) are visible only on this machine: a multi-node cluster
//! would run the agent where its worktree does not exist.

use std::path::Path;

/// Filesystem types that live on one machine.
const LOCAL: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "ramfs", "vfat",
];

/// The filesystem type of the mount holding `path`, from a `/proc/self/mounts` text.
pub fn fs_type_in(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(mnt), Some(kind)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        // /proc/mounts escapes spaces as \040
        let mnt = mnt.replace("\\040", " ");
        if path.starts_with(&mnt) && best.is_none_or(|(len, _)| mnt.len() > len) {
            best = Some((mnt.len(), kind));
        }
    }
    best.map(|(_, k)| k.to_owned())
}

/// A warning when `path` is on a local filesystem and the cluster has more than one node.
/// `None` when it is shared, when there is one node, or when it cannot be told.
pub fn shared_fs_warning(path: &Path, nodes: u32) -> Option<String> {
    if nodes <= 1 {
        return None;
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let kind = fs_type_in(&mounts, path)?;
    LOCAL.contains(&kind.as_str()).then(|| {
        format!(
            "{} is on a local {kind} filesystem but the cluster has {nodes} nodes: jobs on other nodes will not find the worktree; put the worktree root on a shared filesystem (NFS, Lustre, …)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_mount_wins() {
        let mounts = "overlay / overlay rw 0 0\nnfs:/x /work/shared nfs4 rw 0 0\n";
        assert_eq!(
            fs_type_in(mounts, Path::new("/work/shared/r")).as_deref(),
            Some("nfs4")
        );
        assert_eq!(
            fs_type_in(mounts, Path::new("/work/sharedx")).as_deref(),
            Some("overlay")
        );
    }
}
