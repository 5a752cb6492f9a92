//! `baton metrics record` and the metrics log under concurrent writers and damage.

use std::collections::BTreeSet;
use std::process::Command;

use baton_tests::TestRepo;

use crate::support::baton;

const APPEND: &str = env!("CARGO_BIN_EXE_baton-metrics-append");

fn log_path(repo: &TestRepo) -> std::path::PathBuf {
    repo.path().join(".baton/metrics.jsonl")
}

#[test]
fn eight_processes_appending_2000_events_each_leave_16000_whole_lines() {
    let repo = TestRepo::new();
    let log = log_path(&repo);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let children: Vec<_> = (0..8)
        .map(|w| {
            Command::new(APPEND)
                .args([log.to_str().unwrap(), &format!("w{w}"), "2000"])
                .spawn()
                .expect("spawn baton-metrics-append")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let mut ids = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("torn or interleaved line ({e}): {line:?}"));
        assert!(ids.insert(v["event_id"].as_str().unwrap().to_owned()));
        let d = &v["details"];
        let key = (
            d["writer"].as_str().unwrap().to_owned(),
            d["seq"].as_str().unwrap().parse::<u32>().unwrap(),
        );
        assert!(seen.insert(key), "duplicate {line}");
    }
    assert_eq!(text.lines().count(), 16_000);
    assert_eq!(ids.len(), 16_000);
    // every writer's every event arrived
    for w in 0..8 {
        for seq in 0..2000 {
            assert!(seen.contains(&(format!("w{w}"), seq)));
        }
    }
    let s = baton(&repo, &["metrics", "summary", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(s["events"], 16_000);
    assert_eq!(s["bad_lines"], 0);
    assert_eq!(s["by_event"]["cache"]["succeeded"], 8_000);
}

#[test]
fn torn_and_garbage_lines_are_counted_and_the_next_append_is_whole() {
    let repo = TestRepo::new();
    let log = log_path(&repo);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let good = r#"{"schema_version":1,"event_id":"E-1","time":"2026-01-01T00:00:00.000Z","event":"cache","success":true}"#;
    let other_version = r#"{"schema_version":9,"event_id":"E-2","time":"2026-01-01T00:00:00.000Z","event":"cache"}"#;
    let torn = r#"{"schema_version":1,"event_id":"E-3","ti"#;
    std::fs::write(
        &log,
        format!("{good}\nnot json at all\n\n{other_version}\n{good}\n{torn}"),
    )
    .unwrap();
    let s = baton(&repo, &["metrics", "summary", "--json"]).expect_code(0);
    assert!(
        s.stderr.contains("skipped 3 lines that do not parse"),
        "{}",
        s.stderr
    );
    assert!(s.stderr.contains("line 2, 4, 6"), "{}", s.stderr);
    let s = s.json();
    assert_eq!(
        (s["events"].as_u64(), s["bad_lines"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(s["first_bad_lines"], serde_json::json!([2, 4, 6]));

    let rec = baton(&repo, &["metrics", "record", "--event", "replan", "--json"])
        .expect_code(0)
        .json();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(
        lines[5], torn,
        "the torn line stays as it was, on its own line"
    );
    let last: serde_json::Value = serde_json::from_str(lines[6]).unwrap();
    assert_eq!(last["event_id"], rec["event_id"]);
    let s = baton(&repo, &["metrics", "summary", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        (s["events"].as_u64(), s["bad_lines"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(s["replans"], 1);
}

#[test]
fn record_writes_every_field_and_bad_input_writes_nothing() {
    let repo = TestRepo::new();
    let plan = "OP-20260101-000000-0000000a";
    let e = baton(
        &repo,
        &[
            "metrics",
            "record",
            "--event",
            "agent_complete",
            "--plan",
            plan,
            "--batch",
            "B1",
            "--agent",
            "scan-api",
            "--task-type",
            "research",
            "--duration-ms",
            "1500",
            "--success",
            "false",
            "--error-class",
            "timeout",
            "--detail",
            "attempt=2",
            "--detail",
            "note=a=b",
            "--json",
        ],
    )
    .expect_code(0)
    .json();
    let text = std::fs::read_to_string(log_path(&repo)).unwrap();
    let stored: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(stored, e);
    assert_eq!(stored["schema_version"], 1);
    assert_eq!(stored["plan"], plan);
    assert_eq!(stored["success"], false);
    assert_eq!(stored["duration_ms"], 1500);
    assert_eq!(
        stored["details"],
        serde_json::json!({"attempt": "2", "note": "a=b"})
    );
    let time = stored["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    assert!(stored["event_id"].as_str().unwrap().starts_with("E-"));

    for bad in [
        &["--event", "agent_finish"][..],
        &["--event", "cache", "--plan", "OP-1"],
        &["--event", "cache", "--agent", "../x"],
        &["--event", "cache", "--task-type", "coding"],
        &["--event", "cache", "--success", "yes"],
        &["--event", "cache", "--duration-ms", "-5"],
        &["--event", "cache", "--detail", "novalue"],
        &["--event", "cache", "--detail", "k=1", "--detail", "k=2"],
        &["--event", "cache", "--error-class", "Bad Class"],
    ] {
        let mut args = vec!["metrics", "record"];
        args.extend_from_slice(bad);
        let run = baton(&repo, &args).expect_code(2);
        assert_eq!(
            run.stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1,
            "{bad:?}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(log_path(&repo)).unwrap(),
            text,
            "{bad:?} changed the log"
        );
    }
}

#[test]
fn bad_input_in_a_fresh_repo_creates_no_state_dir() {
    let repo = TestRepo::new();
    baton(&repo, &["metrics", "record", "--event", "nope"]).expect_code(2);
    assert!(!repo.path().join(".baton").exists());
    baton(&repo, &["metrics", "summary", "--since", "last tuesday"]).expect_code(2);
    // an empty log is an empty summary, not an error
    let s = baton(&repo, &["metrics", "summary", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(s["events"], 0);
    assert!(!repo.path().join(".baton").exists());
}
