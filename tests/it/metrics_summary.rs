//! `baton metrics summary|failures` on a fixed log, against figures computed by hand.

use baton_tests::TestRepo;
use serde_json::json;

use crate::support::baton;

const P1: &str = "OP-20260101-000000-0000000a";
const P2: &str = "OP-20260101-000000-0000000b";
const P3: &str = "OP-20260101-000000-0000000c";

/// Line `n` of the fixture: an event at 10:00:nn.000Z.
fn ev(n: u32, rest: &str) -> String {
    format!(
        r#"{{"schema_version":1,"event_id":"E-{n}","time":"2026-01-01T10:00:{n:02}.000Z",{rest}}}"#
    )
}

/// The fixed log. Line numbers are 1-based; times are 10:00:<line>.
fn fixture() -> String {
    let agent = |n,
                 plan: &str,
                 batch: &str,
                 id: &str,
                 tt: &str,
                 ms: u64,
                 ok: bool,
                 class: Option<&str>| {
        let class = class.map_or(String::new(), |c| format!(r#","error_class":"{c}""#));
        ev(
            n,
            &format!(
                r#""event":"agent_complete","plan":"{plan}","batch":"{batch}","agent":"{id}","task_type":"{tt}","duration_ms":{ms},"success":{ok}{class}"#
            ),
        )
    };
    let lines = [
        ev(
            1,
            &format!(r#""event":"batch_start","plan":"{P1}","batch":"B1""#),
        ), // P1/B1 starts at :01
        agent(2, P1, "B1", "a1", "implement", 1000, true, None),
        agent(3, P1, "B1", "a2", "implement", 3000, false, Some("timeout")),
        agent(4, P1, "B1", "a3", "test", 2000, true, None),
        // P1/B1 ends at :05 without duration_ms: wall 4000 ms; agents 1000+3000+2000 = 6000 ms
        ev(
            5,
            &format!(r#""event":"batch_complete","plan":"{P1}","batch":"B1","success":false"#),
        ),
        ev(
            6,
            &format!(
                r#""event":"verification","plan":"{P1}","batch":"B1","success":false,"error_class":"gate_failed""#
            ),
        ),
        ev(7, &format!(r#""event":"replan","plan":"{P1}""#)),
        ev(
            8,
            &format!(r#""event":"batch_start","plan":"{P2}","batch":"B1""#),
        ),
        agent(9, P2, "B1", "b1", "implement", 4000, true, None),
        agent(
            10,
            P2,
            "B1",
            "b2",
            "implement",
            2000,
            false,
            Some("exit_nonzero"),
        ),
        // duration_ms wins over the times (:11 - :08 = 3000): wall 2000 ms; agents 6000 ms
        ev(
            11,
            &format!(
                r#""event":"batch_complete","plan":"{P2}","batch":"B1","duration_ms":2000,"success":true"#
            ),
        ),
        ev(
            12,
            &format!(r#""event":"verification","plan":"{P2}","batch":"B1","success":true"#),
        ),
        "this line is garbage".to_owned(),
        agent(14, P3, "B1", "c1", "test", 6000, false, Some("timeout")),
        // P3/B1 never starts or completes: 2 agents, 6500 ms, no wall time, no speed-up
        agent(15, P3, "B1", "c2", "research", 500, true, None),
        ev(
            16,
            &format!(r#""event":"verification","plan":"{P3}","batch":"B1","success":true"#),
        ),
        ev(17, &format!(r#""event":"replan","plan":"{P3}""#)),
        String::new(), // blank: neither an event nor a bad line
        ev(19, r#""event":"cache","success":true"#),
        r#"{"schema_version":1,"event_id":"E-20","time":"#.to_owned(), // torn, no newline
    ];
    lines.join("\n")
}

fn repo_with_fixture() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".baton/metrics.jsonl", &fixture());
    repo
}

#[test]
fn summary_matches_hand_computed_figures() {
    let repo = repo_with_fixture();
    let s = baton(&repo, &["metrics", "summary", "--json"])
        .expect_code(0)
        .json();
    // 20 lines: 13 and 20 are bad, 18 is blank, the other 17 are events
    assert_eq!(s["events"], 17);
    assert_eq!(s["bad_lines"], 2);
    assert_eq!(s["first_bad_lines"], json!([13, 20]));
    assert_eq!(s["first_time"], "2026-01-01T10:00:01.000Z");
    assert_eq!(s["last_time"], "2026-01-01T10:00:19.000Z");
    // agent_complete: lines 2,3,4,9,10,14,15; succeeded 2,4,9,15; failed 3,10,14
    assert_eq!(
        s["by_event"]["agent_complete"],
        json!({"count": 7, "succeeded": 4, "failed": 3, "success_rate": 4.0 / 7.0})
    );
    assert_eq!(
        s["by_event"]["batch_start"],
        json!({"count": 2, "succeeded": 0, "failed": 0, "success_rate": null})
    );
    assert_eq!(s["by_event"]["batch_complete"]["success_rate"], 0.5);
    assert_eq!(s["by_event"]["cache"]["count"], 1);
    // verification: 6 failed, 12 and 16 passed
    assert_eq!(
        s["gate"],
        json!({"count": 3, "succeeded": 2, "failed": 1, "success_rate": 2.0 / 3.0})
    );
    assert_eq!(s["replans"], 2);
    // implement: 1000 T, 3000 F, 4000 T, 2000 F -> sorted 1000,2000,3000,4000;
    // nearest rank p50 = ceil(0.5*4) = 2nd = 2000, p95 = ceil(0.95*4) = 4th = 4000
    assert_eq!(
        s["task_types"]["implement"],
        json!({"count": 4, "succeeded": 2, "failed": 2, "success_rate": 0.5,
               "timed": 4, "p50_ms": 2000, "p95_ms": 4000})
    );
    // test: 2000 T, 6000 F -> p50 = 1st = 2000, p95 = ceil(1.9) = 2nd = 6000
    assert_eq!(
        s["task_types"]["test"],
        json!({"count": 2, "succeeded": 1, "failed": 1, "success_rate": 0.5,
               "timed": 2, "p50_ms": 2000, "p95_ms": 6000})
    );
    assert_eq!(s["task_types"]["research"]["p95_ms"], 500);
    // P1/B1 6000/4000 = 1.5; P2/B1 6000/2000 = 3.0; P3/B1 has no wall time
    assert_eq!(
        s["batches"],
        json!([
            {"plan": P1, "batch": "B1", "agents": 3, "agent_ms": 6000, "wall_ms": 4000, "speedup": 1.5},
            {"plan": P2, "batch": "B1", "agents": 2, "agent_ms": 6000, "wall_ms": 2000, "speedup": 3.0},
            {"plan": P3, "batch": "B1", "agents": 2, "agent_ms": 6500, "wall_ms": null, "speedup": null},
        ])
    );
    assert_eq!(
        s["speedup"],
        json!({"batches": 2, "mean": 2.25, "min": 1.5, "max": 3.0})
    );
}

#[test]
fn filters_by_plan_and_since() {
    let repo = repo_with_fixture();
    // P1: lines 1-7
    let s = baton(&repo, &["metrics", "summary", "--json", "--plan", P1])
        .expect_code(0)
        .json();
    assert_eq!(
        (s["events"].as_u64(), s["filtered_out"].as_u64()),
        (Some(7), Some(10))
    );
    assert_eq!(s["gate"]["failed"], 1);
    assert_eq!(s["batches"].as_array().unwrap().len(), 1);
    // from :14 on: lines 14, 15, 16, 17, 19
    let s = baton(
        &repo,
        &[
            "metrics",
            "summary",
            "--json",
            "--since",
            "2026-01-01T10:00:14Z",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(s["events"], 5);
    assert_eq!(s["replans"], 1);
    let s = baton(
        &repo,
        &["metrics", "summary", "--json", "--since", "2026-01-02"],
    )
    .expect_code(0)
    .json();
    assert_eq!(s["events"], 0);
    // a plan id that is neither full nor a stored plan's suffix is bad input
    baton(&repo, &["metrics", "summary", "--plan", "nope"]).expect_code(2);
}

#[test]
fn failures_are_grouped_by_class_and_task_type() {
    let repo = repo_with_fixture();
    let f = baton(&repo, &["metrics", "failures", "--json"])
        .expect_code(0)
        .json();
    // success false: 3 (timeout/implement P1), 5 (no class, no task type, P1),
    // 6 (gate_failed, P1), 10 (exit_nonzero/implement P2), 14 (timeout/test P3)
    assert_eq!(f["failures"], 5);
    assert_eq!(f["events"], 17);
    assert_eq!(
        f["by_class"],
        json!({"exit_nonzero": 1, "gate_failed": 1, "timeout": 2, "unclassified": 1})
    );
    let g = |class: &str, tt: &str, plans: &[&str], line: u32| {
        json!({"error_class": class, "task_type": tt, "count": 1, "example_plans": plans,
               "last_time": format!("2026-01-01T10:00:{line:02}.000Z")})
    };
    // all groups have one failure: ordered by class, then task type
    assert_eq!(
        f["groups"],
        json!([
            g("exit_nonzero", "implement", &[P2], 10),
            g("gate_failed", "none", &[P1], 6),
            g("timeout", "implement", &[P1], 3),
            g("timeout", "test", &[P3], 14),
            g("unclassified", "none", &[P1], 5),
        ])
    );
    let human = baton(&repo, &["metrics", "failures"]).expect_code(0);
    assert!(
        human.stdout.starts_with("failures: 5 of 17 events failed"),
        "{}",
        human.stdout
    );
    assert!(
        human.stderr.contains("skipped 2 lines that do not parse"),
        "{}",
        human.stderr
    );
}

#[test]
fn human_summary_names_the_figures() {
    let repo = repo_with_fixture();
    let out = baton(&repo, &["metrics", "summary"]).expect_code(0).stdout;
    for want in [
        "metrics: 17 events from 2026-01-01T10:00:01.000Z to 2026-01-01T10:00:19.000Z",
        "gate: 2 of 3 passed (66.7%)",
        "replans: 2",
        "speed-up: 2 batches, mean 2.25x (min 1.50x, max 3.00x)",
        "OP-20260101-000000-0000000b B1: 2 agents, 6s agent time / 2s wall = 3.00x",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}
