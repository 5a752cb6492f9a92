//! `baton report html`: the page is drawn by its inline script in a real headless Chromium
//! (no network), and the drawn DOM has a bar for every attempt of the run and shows the gate's
//! findings; `--format chrome-trace` has a complete event per attempt.

use baton_tests::require_program;
use serde_json::Value;

use crate::batch_loop::Loop;
use crate::batch_loop_run::{AGENT_SH, PLAN};
use crate::support::baton;

/// A run with a collision, a replan and a dependent batch.
fn finished_run() -> Loop {
    let l = Loop::new(PLAN);
    l.repo.write("agent.sh", AGENT_SH);
    l.repo.commit_all("scripted agents");
    baton(&l.repo, &["run", &l.plan]).expect_code(0);
    l
}

fn attempts(l: &Loop) -> u64 {
    l.execution()["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["agents"].as_array().unwrap())
        .map(|a| a["attempt"].as_u64().unwrap())
        .sum()
}

#[test]
fn html_report_draws_every_attempt_and_the_findings_in_chromium() {
    if !require_program(
        "html_report_draws_every_attempt_and_the_findings_in_chromium",
        &["chromium", "--version"],
        "the report is checked in a real headless browser",
        "apt-get install chromium",
    ) {
        return;
    }
    let l = finished_run();
    let out = baton(&l.repo, &["report", "html", &l.plan, "--json"])
        .expect_code(0)
        .json();
    let page = std::path::PathBuf::from(out["path"].as_str().unwrap());
    let html = std::fs::read_to_string(&page).unwrap();
    // self-contained: nothing is fetched
    for needle in ["http://", "https://", "<link", "src=\""] {
        assert!(!html.contains(needle), "the page refers to {needle}");
    }
    let profile = tempfile::tempdir().unwrap();
    let dom = l
        .repo
        .command("chromium", l.repo.path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("data-rendered=\"yes\""),
        "the script did not run:\n{dom}"
    );
    let want = attempts(&l);
    assert_eq!(want, 4, "a, b twice (the replan), c");
    assert_eq!(
        dom.matches("class=\"bar attempt ").count() as u64,
        want,
        "{dom}"
    );
    assert_eq!(dom.matches("class=\"bar attempt fail").count(), 0, "{dom}");
    // the failed gate and its findings, then the passing one
    assert!(dom.contains("failed at the gate step"), "{dom}");
    assert!(dom.contains("multi_writer notes.txt (a, b)"), "{dom}");
    assert!(dom.contains("class=\"replan\""), "{dom}");
    // logs are linked relative to the page, and exist
    for (agent, n) in [("a", 1), ("b", 2), ("c", 1)] {
        let href = format!("href=\"logs/{agent}/{n}.log\"");
        assert!(dom.contains(&href), "{href} missing");
        assert!(
            page.parent()
                .unwrap()
                .join(format!("logs/{agent}/{n}.log"))
                .is_file()
        );
    }
}

#[test]
fn chrome_trace_has_an_event_per_attempt_and_the_gate_verdicts() {
    let l = finished_run();
    let out = baton(
        &l.repo,
        &[
            "report",
            "html",
            &l.plan,
            "--format",
            "chrome-trace",
            "--json",
        ],
    )
    .expect_code(0)
    .json();
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(out["path"].as_str().unwrap()).unwrap())
            .unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let complete = events.iter().filter(|e| e["ph"] == "X").count() as u64;
    assert_eq!(complete, attempts(&l));
    let gates: Vec<&str> = events
        .iter()
        .filter(|e| e["cat"] == "gate")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(gates, ["gate failed", "gate passed", "gate passed"]);
    // one time axis: the dependent batch's agent starts after every attempt of B1 ended
    let span = |name: &str| {
        let e = events.iter().find(|e| e["name"] == name).unwrap();
        let ts = e["ts"].as_u64().unwrap();
        (ts, ts + e["dur"].as_u64().unwrap())
    };
    let b1_end = ["a #1", "b #1", "b #2"]
        .map(|n| span(n).1)
        .into_iter()
        .max()
        .unwrap();
    assert!(span("c #1").0 >= b1_end, "{events:?}");
    assert!(
        span("b #2").0 >= span("b #1").1,
        "the replan runs after the first attempt"
    );
}
