//! Owner processes of worktrees: a pid plus its start time, so a reused pid is never mistaken
//! for the owner, and the lock reason that records them in git's own `locked` file.

use baton_plan::ProcessRef;

/// The identity of process `pid` (Linux: `/proc/<pid>/stat` field 22), or `None` if it does
/// not exist or has already exited (a zombie).
pub fn process_ref(pid: u32) -> Option<ProcessRef> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (state, start_time) = parse_stat(&stat)?;
    (state != 'Z' && state != 'X').then_some(ProcessRef { pid, start_time })
}

/// The identity of this process.
pub fn current_process() -> Option<ProcessRef> {
    process_ref(std::process::id())
}

/// State (field 3) and start time (field 22) of a `/proc/<pid>/stat` line. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // field 3 was `state`; field 22 is 19 further on
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The working directory of every process this user can see (Linux `/proc/*/cwd`), except
/// this process. Processes whose cwd cannot be read (another user's) are left out.
pub fn working_dirs() -> Vec<(u32, std::path::PathBuf)> {
    let me = std::process::id();
    let Ok(read) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    read.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| Some((pid, std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?)))
        .collect()
}

/// Is the process still the one recorded: same pid, same start time, not exited?
pub fn is_alive(owner: &ProcessRef) -> bool {
    process_ref(owner.pid).is_some_and(|now| now.start_time == owner.start_time)
}

/// The lock reason baton writes: `baton owner pid=<pid> start=<ticks>`.
pub fn lock_reason(owner: &ProcessRef) -> String {
    format!("baton owner pid={} start={}", owner.pid, owner.start_time)
}

/// The owner recorded in a lock reason written by [`lock_reason`]; `None` for other reasons
/// (a lock taken by a person with `git worktree lock`).
pub fn parse_lock_reason(reason: &str) -> Option<ProcessRef> {
    let rest = reason.trim().strip_prefix("baton owner ")?;
    let mut pid = None;
    let mut start = None;
    for part in rest.split_whitespace() {
        if let Some(v) = part.strip_prefix("pid=") {
            pid = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("start=") {
            start = v.parse().ok();
        }
    }
    Some(ProcessRef {
        pid: pid?,
        start_time: start?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_in_the_name_parses() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = current_process().expect("this process has a /proc entry");
        assert!(is_alive(&me));
        let reused = ProcessRef {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!is_alive(&reused));
    }

    #[test]
    fn a_child_working_in_a_directory_is_seen_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let here = std::fs::canonicalize(dir.path()).expect("canonical");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&here)
            .spawn()
            .expect("spawn sleep");
        let seen = working_dirs()
            .into_iter()
            .any(|(pid, cwd)| pid == child.id() && cwd == here);
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen, "sleep {} not seen in {}", child.id(), here.display());
    }

    #[test]
    fn lock_reasons_round_trip_and_foreign_reasons_have_no_owner() {
        let p = ProcessRef {
            pid: 7,
            start_time: 99,
        };
        assert_eq!(parse_lock_reason(&lock_reason(&p)), Some(p));
        assert_eq!(parse_lock_reason("on a USB disk"), None);
    }
}
