//! What `baton run` shows and when it holds back: the resource gate's wait (said, with why,
//! and nothing started meanwhile), the live view on a terminal and plain timestamped lines
//! otherwise.

use std::time::{Duration, Instant, SystemTime};

use baton_plan::Status;
use baton_tests::TestRepo;

use crate::run::{agent, execution, trace, traced, write_plan};
use crate::run_durable::{Events, is};
use crate::run_resume::spawn_run;
use crate::support::baton;

#[test]
fn the_resource_gate_holds_every_agent_back_says_why_and_lets_go_when_lifted() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let limits = repo.scratch("t").join("limits.toml");
    let id = "OP-20260101-000000-00000f11";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "one"
task_type = "implement"
command = {c}
[[batches.agents]]
id = "two"
task_type = "implement"
command = {c}
"#,
            c = traced(&tr, "true")
        ),
    );
    // no machine has a million TiB free: surely past the limit
    std::fs::write(&limits, "min_free_memory = 1099511627776\n").unwrap();
    let limits_arg = limits.to_string_lossy().into_owned();
    let mut run = spawn_run(&repo, &["run", &plan, "--json", "--limits", &limits_arg]);
    let mut events = Events::of(&mut run);
    let mut waiting = Vec::new();
    while waiting.len() < 2 {
        let w = events.until(is("agent_waiting"));
        assert_eq!(w["reason"], "busy", "{w}");
        assert!(
            w["why"]
                .as_str()
                .unwrap()
                .contains("MiB free memory, below the"),
            "{w}"
        );
        waiting.push(w["agent"].as_str().unwrap().to_owned());
    }
    waiting.sort();
    assert_eq!(waiting, ["one", "two"]);
    // held back across several re-checks
    std::thread::sleep(Duration::from_millis(1500));
    assert!(trace(&tr).is_empty(), "an agent started: {:?}", trace(&tr));
    let exec = execution(&repo, id);
    assert_eq!(agent(&exec, "one").status, Status::Pending);
    assert_eq!(agent(&exec, "two").status, Status::Pending);
    assert!(
        !events.seen.iter().any(|e| e["event"] == "agent_start"),
        "{:#?}",
        events.seen
    );
    let lifted_ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(&limits, "min_free_memory = 0\n").unwrap();
    let lifted = Instant::now();
    events.until(is("agent_start"));
    assert!(
        lifted.elapsed() < Duration::from_secs(5),
        "picked up within a re-check or two, took {:?}",
        lifted.elapsed()
    );
    events.rest();
    assert_eq!(run.wait().unwrap().code(), Some(0), "{:#?}", events.seen);
    let starts = trace(&tr);
    assert_eq!(starts.iter().filter(|(w, _, _)| w == "start").count(), 2);
    assert!(
        starts.iter().all(|(_, _, ns)| *ns >= lifted_ns),
        "started before the limit was lifted: {starts:?}"
    );
}

#[test]
fn the_resource_gate_says_so_in_plain_lines_and_a_bad_limits_file_is_refused() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f12";
    let limits = repo.scratch("t").join("limits.toml");
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "one"
task_type = "implement"
command = ["true"]
"#,
    );
    std::fs::write(&limits, "max_lod = 2\n").unwrap();
    let limits_arg = limits.to_string_lossy().into_owned();
    let bad = baton(&repo, &["run", &plan, "--limits", &limits_arg]).expect_code(2);
    assert!(
        bad.stderr.contains("limits.toml:1:1") && bad.stderr.contains("--limits"),
        "{}",
        bad.stderr
    );
    assert!(
        !repo
            .path()
            .join(".baton/executions")
            .join(format!("{id}.json"))
            .exists(),
        "nothing was written"
    );
    // the flag alone: a limit surely past, then Ctrl-C (nothing could start)
    let mut run = spawn_run(&repo, &["run", &plan, "--min-free-memory", "1099511627776"]);
    let out = run.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
    let line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("waiting for resources"))
        .expect("a waiting line");
    // HH:MM:SS, then what waits and why
    let (stamp, text) = line.split_once(' ').unwrap();
    assert!(
        stamp.len() == 8 && stamp.bytes().filter(|b| *b == b':').count() == 2,
        "{line}"
    );
    assert!(
        text.starts_with("one waiting for resources: ")
            && text.contains("MiB free memory, below the 1099511627776 MiB limit"),
        "{line}"
    );
    crate::run_resume::signal(&run, "-INT");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(run.wait().unwrap().code(), Some(1), "{rest:?}");
    assert_eq!(agent(&execution(&repo, id), "one").status, Status::Pending);
}

/// `s` without terminal escape sequences and carriage returns.
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // parameters, then one final letter
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() || c == '~' {
                            break;
                        }
                    }
                }
            }
            '\r' => out.push('\n'),
            c => out.push(c),
        }
    }
    out
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run baton under a pseudo-terminal (`script`); whether it succeeded, and what the terminal
/// showed, without escape sequences.
fn on_a_terminal(repo: &TestRepo, args: &[&str]) -> (bool, String) {
    let cmd = std::iter::once(crate::support::BATON)
        .chain(args.iter().copied())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = repo
        .command("script", repo.path())
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (
        out.status.success(),
        plain(&String::from_utf8_lossy(&out.stdout)),
    )
}

/// `script` (bsdutils) gives `baton run` a pseudo-terminal; without it the test skips (and
/// fails under `CI=true`).
fn has_script(test: &str) -> bool {
    baton_tests::require_program(
        test,
        &["script", "--version"],
        "it gives `baton run` a pseudo-terminal",
        "apt-get install bsdutils",
    )
}

#[test]
fn on_a_terminal_each_running_agent_has_a_live_row_and_plain_lines_otherwise() {
    if !has_script("run_output::live_view") {
        return;
    }
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f13";
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "thinker"
task_type = "implement"
command = ["sh", "-c", "echo reading the code; sleep 2; echo all done"]
[[batches.agents]]
id = "retrier"
task_type = "implement"
retries = 1
command = ["sh", "-c", "[ $BATON_ATTEMPT -ge 2 ] || { echo first try failed; sleep 0.6; exit 1; }; echo fine"]
"#,
    );
    let (ok, screen) = on_a_terminal(&repo, &["run", &plan, "--backoff", "1s"]);
    assert!(ok, "{screen}");
    // the agent's row: batch/agent, attempt, state, and the last line of its output
    let row = screen
        .lines()
        .find(|l| l.contains("B1/thinker #1 running") && l.contains("reading the code"))
        .unwrap_or_else(|| panic!("no live row with state, attempt and last line:\n{screen}"));
    assert!(!row.contains("all done"), "{row}");
    // an agent waiting to retry keeps a row that says so, with its last line
    assert!(
        screen.lines().any(|l| l.contains("B1/retrier #1 failed, retry in")
            && l.contains("first try failed")),
        "no waiting row:\n{screen}"
    );
    assert!(screen.contains("thinker succeeded (attempt 1"), "{screen}");
    // not a terminal: timestamped lines, no live rows
    let id2 = "OP-20260101-000000-00000f14";
    let plan2 = write_plan(
        &repo,
        id2,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "thinker"
task_type = "implement"
command = ["sh", "-c", "echo reading the code; sleep 1; echo all done"]
"#,
    );
    let piped = baton(&repo, &["run", &plan2]).expect_code(0);
    assert!(!piped.stdout.contains('\u{1b}'), "{}", piped.stdout);
    assert!(!piped.stdout.contains("B1/thinker #1"), "{}", piped.stdout);
    for line in piped.stdout.lines() {
        let (stamp, _) = line.split_once(' ').unwrap();
        assert!(
            stamp.len() == 8 && stamp.bytes().filter(|b| *b == b':').count() == 2,
            "not a timestamped line: {line:?}"
        );
    }
    assert!(piped.stdout.contains("thinker succeeded (attempt 1"));
}

/// After a crash, the resumed run's live view shows the attempts it adopted.
#[test]
fn a_resumed_run_on_a_terminal_shows_a_row_for_each_adopted_agent() {
    if !has_script("run_output::adopted_rows") {
        return;
    }
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f15";
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "long"
task_type = "implement"
command = ["sh", "-c", "echo still at it; sleep 3"]
"#,
    );
    let mut first = spawn_run(&repo, &["run", &plan, "--json"]);
    Events::of(&mut first).until(is("agent_start"));
    crate::run_resume::signal(&first, "-KILL");
    first.wait().unwrap();
    let (ok, screen) = on_a_terminal(&repo, &["run", id, "--resume"]);
    assert!(ok, "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("B1/long #1 running (adopted)") && l.contains("still at it")),
        "no row for the adopted agent:\n{screen}"
    );
    assert!(screen.contains("long succeeded (attempt 1"), "{screen}");
}
