//! Writing an in-memory index (a batch's merged result) into a plain directory: how
//! `verify --merged` tests the merged result without touching the user's checkout.

use std::path::Path;

use crate::GitError;

/// Write every file of `index` under `dir` (which should be empty), with exec bits and
/// symlinks as recorded. Submodule entries become empty directories.
pub fn export_index(
    repo: &git2::Repository,
    index: &git2::Index,
    dir: &Path,
) -> Result<usize, GitError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| GitError::Io { path, source }
    };
    let mut n = 0;
    for entry in index.iter() {
        let rel = String::from_utf8_lossy(&entry.path).into_owned();
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c == ".git")
        {
            // never write outside `dir` or into a git directory, whatever the tree says
            continue;
        }
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if entry.mode == 0o160000 {
            std::fs::create_dir_all(&path).map_err(io(&path))?;
            continue;
        }
        let blob = repo
            .find_blob(entry.id)
            .map_err(GitError::git(format!("read {rel}")))?;
        if entry.mode & 0o170000 == 0o120000 {
            #[cfg(unix)]
            {
                let target = String::from_utf8_lossy(blob.content()).into_owned();
                std::os::unix::fs::symlink(&target, &path).map_err(io(&path))?;
            }
        } else {
            std::fs::write(&path, blob.content()).map_err(io(&path))?;
            #[cfg(unix)]
            if entry.mode & 0o111 != 0 {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&path))?;
            }
        }
        n += 1;
    }
    Ok(n)
}
