//! What Linux's `/proc` says about processes and the machine: process identity (pid + start
//! time), the descendants of a process, free memory and load.

use std::collections::BTreeMap;

use baton_plan::ProcessRef;

/// State (field 3), parent (field 4) and start time (field 22) of `/proc/<pid>/stat`. The
/// command name (field 2) may hold spaces and parentheses, so fields are counted after the
/// last `)`.
fn parse_stat(stat: &str) -> Option<(char, u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    // field 4 was ppid; field 22 is 18 further on
    let start = fields.nth(17)?.parse().ok()?;
    Some((state, ppid, start))
}

fn stat(pid: u32) -> Option<(char, u32, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The identity of a live (not zombie) process.
pub fn process_ref(pid: u32) -> Option<ProcessRef> {
    let (state, _, start_time) = stat(pid)?;
    (state != 'Z' && state != 'X').then_some(ProcessRef { pid, start_time })
}

/// Is this still the recorded process (same pid, same start time, not exited)?
pub fn is_alive(p: &ProcessRef) -> bool {
    process_ref(p.pid).is_some_and(|now| now.start_time == p.start_time)
}

/// Every live descendant of `root` (children, their children, …), parents before children.
/// A child subreaper's descendants include everything that `setsid`-ed or double-forked.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((state, ppid, _)) = stat(pid)
            && state != 'Z'
            && state != 'X'
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                out.push(k);
                stack.push(k);
            }
        }
    }
    out
}

/// A live process that has the file at `path` open (matched by device and inode through
/// `/proc/<pid>/fd`), other than this one. Only processes of this user can be seen.
pub fn holder_of(path: &std::path::Path) -> Option<ProcessRef> {
    use std::os::unix::fs::MetadataExt;
    let target = std::fs::metadata(path).ok()?;
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&p| p != me)
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::metadata(fd.path())
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        });
        if holds && let Some(p) = process_ref(pid) {
            return Some(p);
        }
    }
    None
}

/// `MemAvailable` in MiB.
pub fn available_memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// The one-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 7, 123456)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = process_ref(std::process::id()).expect("own stat");
        assert!(is_alive(&me));
        let other = ProcessRef {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!is_alive(&other));
    }

    #[test]
    fn the_holder_of_an_open_file_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(holder_of(&path), None, "nobody holds it yet");
        // a child that holds the file open on its stdin
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .stdin(std::fs::File::open(&path).unwrap())
            .spawn()
            .unwrap();
        let found = holder_of(&path);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.map(|p| p.pid), Some(child.id()));
        assert_eq!(holder_of(&path), None, "gone with the child");
    }

    #[test]
    fn children_are_descendants() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id()).contains(&child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found);
    }
}
