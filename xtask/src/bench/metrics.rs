//! `cargo xtask bench metrics`: summary time and peak memory over a generated 1,000,000-event
//! log (targets: <= 1 s and <= 200 MB in a release build), and append throughput with 4
//! concurrent writer processes.
//!
//! The log is deterministic (fixed seed, ids and times). Each command runs as a child process
//! (this binary embeds the baton CLI) under GNU `/usr/bin/time`, whose `%M` is the child's
//! peak resident set size. `--writer LOG N` is the internal mode of one writer process;
//! `--generate LOG` only writes the log (to profile by hand).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use baton_metrics::{Event, MetricsLog};

use super::synth::{Rng, git_ok, median_ms};

const EVENTS: usize = 1_000_000;
const WRITERS: usize = 4;
const PER_WRITER: usize = 25_000;
const CLI_PER_WRITER: usize = 50;
const TASK_TYPES: [&str; 4] = ["research", "implement", "test", "verify"];
const ERRORS: [&str; 4] = ["timeout", "exit_nonzero", "scope_violation", "idle_timeout"];

pub fn run(args: &[String]) -> ExitCode {
    if let [flag, log, n] = args
        && flag == "--writer"
    {
        return writer(Path::new(log), n.parse().unwrap_or(0));
    }
    if let [flag, log] = args
        && flag == "--generate"
    {
        generate(Path::new(log), EVENTS);
        return ExitCode::SUCCESS;
    }
    let tmp = tempfile::Builder::new()
        .prefix("baton-bench-metrics-")
        .tempdir()
        .expect("create temp dir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("create repo dir");
    git_ok(&repo, &["init", "-q", "-b", "main"]);
    let log = repo.join(".baton/metrics.jsonl");

    let t = Instant::now();
    let (events, bytes) = generate(&log, EVENTS);
    println!(
        "generated {events} events ({:.0} MB) in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    println!(
        "rayon threads: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let repo_arg = repo.to_string_lossy().into_owned();
    for (label, args) in [
        ("summary", vec!["metrics", "summary", "--repo", &repo_arg]),
        (
            "summary --json",
            vec!["metrics", "summary", "--json", "--repo", &repo_arg],
        ),
        ("failures", vec!["metrics", "failures", "--repo", &repo_arg]),
    ] {
        // the first run warms the page cache and is not counted
        let _ = timed(&args);
        let runs: Vec<(f64, Option<u64>)> = (0..3).map(|_| timed(&args)).collect();
        let wall = median_ms(runs.iter().map(|r| r.0).collect());
        let rss = runs.iter().filter_map(|r| r.1).max();
        let rss_text = rss.map_or_else(
            || "unavailable (no GNU /usr/bin/time)".to_owned(),
            |kb| format!("{:.0} MB", kb as f64 / 1024.0),
        );
        println!(
            "{label:<15} median {wall:>7.0} ms (target <= 1000)   peak RSS {rss_text} (target <= 200 MB)"
        );
    }

    // append throughput: 4 writer processes, one locked append per event
    let append_log = repo.join(".baton/append.jsonl");
    let exe = std::env::current_exe().expect("current exe");
    let t = Instant::now();
    let children: Vec<_> = (0..WRITERS)
        .map(|_| {
            Command::new(&exe)
                .args(["bench", "metrics", "--writer"])
                .arg(&append_log)
                .arg(PER_WRITER.to_string())
                .spawn()
                .expect("spawn writer")
        })
        .collect();
    for mut c in children {
        assert!(
            c.wait().expect("wait for writer").success(),
            "a writer failed"
        );
    }
    let secs = t.elapsed().as_secs_f64();
    let total = WRITERS * PER_WRITER;
    let (events, stats) = MetricsLog::new(&append_log)
        .read_all()
        .expect("read the log");
    assert_eq!((events.len(), stats.bad), (total, 0), "lost or torn lines");
    println!(
        "append: {WRITERS} writer processes x {PER_WRITER} events: {:.0} events/s ({secs:.2} s, all {total} lines whole)",
        total as f64 / secs
    );

    // the same through `baton metrics record`, a process per event as scripts do
    let t = Instant::now();
    let loops: Vec<_> = (0..WRITERS)
        .map(|_| {
            let exe = exe.clone();
            let repo_arg = repo_arg.clone();
            std::thread::spawn(move || {
                for _ in 0..CLI_PER_WRITER {
                    let ok = Command::new(&exe)
                        .args(["metrics", "record", "--event", "cache", "--success", "true"])
                        .args(["--repo", &repo_arg])
                        .stdout(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success());
                    assert!(ok, "baton metrics record failed");
                }
            })
        })
        .collect();
    for l in loops {
        l.join().expect("record loop");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "record CLI: {WRITERS} concurrent loops x {CLI_PER_WRITER}: {:.0} events/s",
        (WRITERS * CLI_PER_WRITER) as f64 / secs
    );
    ExitCode::SUCCESS
}

/// Run this binary with `args` under `/usr/bin/time -f %M`: wall ms and peak RSS in KiB.
fn timed(args: &[&str]) -> (f64, Option<u64>) {
    let exe = std::env::current_exe().expect("current exe");
    let gnu_time = Path::new("/usr/bin/time");
    let mut cmd = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.args(["-f", "%M"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let t = Instant::now();
    let out = cmd
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run baton");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    let rss = stderr.lines().last().and_then(|l| l.trim().parse().ok());
    (ms, rss)
}

/// Plans of 4 batches of 1-6 agents: batch_start, agent_start and agent_complete per agent,
/// batch_complete and verification per batch, a replan in one plan of 10, cache and worktree
/// events between, whole plans until there are at least `n` events. Returns the events and
/// bytes written.
fn generate(path: &Path, n: usize) -> (usize, u64) {
    std::fs::create_dir_all(path.parent().expect("log has a parent")).expect("create .baton");
    let file = std::fs::File::create(path).expect("create log");
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng::new(0x0062_6174_6f6e);
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
    let mut clock_ms: u64 = 0;
    let mut written = 0usize;
    let mut bytes = 0u64;
    let mut plan_no = 0u64;
    let mut emit = |e: Event, w: &mut BufWriter<std::fs::File>| {
        let line = e.to_line().expect("serialize");
        w.write_all(line.as_bytes()).expect("write");
        w.write_all(b"\n").expect("write");
        bytes += line.len() as u64 + 1;
    };
    while written < n {
        plan_no += 1;
        let plan = format!("OP-20260101-000000-{plan_no:08x}");
        for b in 1..=4 {
            let batch = format!("B{b}");
            let agents = 1 + rng.below(6);
            let mut ev = |kind: &str, clock: u64| {
                written += 1;
                let at = start + Duration::from_millis(clock);
                Event {
                    schema_version: 1,
                    // same shape as real ids; deterministic
                    event_id: format!("E-20260101-000000-{written:016x}"),
                    time: humantime::format_rfc3339_millis(at).to_string(),
                    event: kind.to_owned(),
                    plan: Some(plan.clone()),
                    batch: Some(batch.clone()),
                    agent: None,
                    task_type: None,
                    duration_ms: None,
                    success: None,
                    error_class: None,
                    details: Default::default(),
                }
            };
            let batch_t0 = clock_ms;
            emit(ev("batch_start", clock_ms), &mut w);
            let mut longest = 0;
            for a in 0..agents {
                let tt = TASK_TYPES[rng.below(4)];
                let mut e = ev("agent_start", clock_ms);
                e.agent = Some(format!("agent-{a}"));
                e.task_type = Some(tt.to_owned());
                emit(e, &mut w);
                let d = 1_000 + rng.below(600_000) as u64;
                longest = longest.max(d);
                let ok = rng.below(10) != 0;
                let mut e = ev("agent_complete", clock_ms + d);
                e.agent = Some(format!("agent-{a}"));
                e.task_type = Some(tt.to_owned());
                e.duration_ms = Some(d);
                e.success = Some(ok);
                if !ok {
                    e.error_class = Some(ERRORS[rng.below(4)].to_owned());
                }
                e.details.insert("attempt".into(), "1".into());
                e.details
                    .insert("files_changed".into(), rng.below(20).to_string());
                emit(e, &mut w);
            }
            clock_ms += longest + 500;
            let mut e = ev("batch_complete", clock_ms);
            e.duration_ms = Some(clock_ms - batch_t0);
            e.success = Some(true);
            emit(e, &mut w);
            let mut e = ev("verification", clock_ms + 2_000);
            let passed = rng.below(8) != 0;
            e.success = Some(passed);
            e.duration_ms = Some(2_000);
            if !passed {
                e.error_class = Some("gate_failed".into());
            }
            emit(e, &mut w);
            let mut e = ev(
                if rng.below(2) == 0 {
                    "cache"
                } else {
                    "worktree"
                },
                clock_ms,
            );
            e.success = Some(true);
            emit(e, &mut w);
            clock_ms += 3_000;
        }
        if plan_no.is_multiple_of(10) {
            written += 1;
            let at = start + Duration::from_millis(clock_ms);
            let mut e = Event::new("replan", at).expect("event");
            e.event_id = format!("E-replan-{written:016x}");
            e.plan = Some(plan.clone());
            emit(e, &mut w);
        }
    }
    w.flush().expect("flush log");
    (written, bytes)
}

/// One writer process: `n` events, one locked append each.
fn writer(log: &Path, n: usize) -> ExitCode {
    let log = MetricsLog::new(log);
    for i in 0..n {
        let mut e = match Event::new("cache", SystemTime::now()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(3);
            }
        };
        e.success = Some(true);
        e.duration_ms = Some(i as u64);
        if let Err(e) = log.append(&[e]) {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    }
    ExitCode::SUCCESS
}
