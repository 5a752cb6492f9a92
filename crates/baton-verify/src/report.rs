//! Assembling a verify report from its checks, and combining the reports of shards
//! (`baton report merge`).

use std::path::PathBuf;

use baton_report::{Check, CheckStatus, TestsSummary, Totals, VerifyReport};

use crate::errors::MergeReportsError;

/// Is a report with these checks a pass? No check failed or errored; with `strict`, none
/// warned either.
pub fn checks_ok(checks: &[Check], strict: bool) -> bool {
    checks.iter().all(|c| match c.status {
        CheckStatus::Pass | CheckStatus::Skip => true,
        CheckStatus::Warn => !strict,
        CheckStatus::Fail | CheckStatus::Error => false,
    })
}

/// Fill in `ok` and `totals` from the checks.
pub fn finish(report: &mut VerifyReport) {
    report.totals = Totals::of(&report.checks);
    report.ok = checks_ok(&report.checks, report.strict);
}

/// Combine shard reports into one: checks of the same name are joined (findings
/// concatenated and de-duplicated, test counts added, the worst status kept), durations
/// take the longest shard. Reports must have the same head.
pub fn merge_reports(
    reports: Vec<(PathBuf, VerifyReport)>,
) -> Result<VerifyReport, MergeReportsError> {
    let mut iter = reports.into_iter();
    let (_, mut merged) = iter.next().ok_or(MergeReportsError::Empty)?;
    for (path, r) in iter {
        if r.schema_version != merged.schema_version {
            return Err(MergeReportsError::Bad {
                path,
                reason: format!(
                    "schema_version {} differs from the first report's {}",
                    r.schema_version, merged.schema_version
                ),
            });
        }
        if r.head != merged.head {
            return Err(MergeReportsError::Bad {
                path,
                reason: format!(
                    "it verified commit {} but the first report verified {}; merge only shards of one run",
                    r.head.as_deref().unwrap_or("(none)"),
                    merged.head.as_deref().unwrap_or("(none)")
                ),
            });
        }
        merged.duration_ms = merged.duration_ms.max(r.duration_ms);
        merged.strict |= r.strict;
        merged.merged |= r.merged;
        for c in r.checks {
            match merged.checks.iter_mut().find(|m| m.name == c.name) {
                Some(m) => join_check(m, c),
                None => merged.checks.push(c),
            }
        }
    }
    for c in &mut merged.checks {
        if let Some(t) = &mut c.tests {
            t.partition = None;
        }
    }
    finish(&mut merged);
    Ok(merged)
}

fn join_check(into: &mut Check, c: Check) {
    into.duration_ms = into.duration_ms.max(c.duration_ms);
    into.status = worst(into.status, c.status);
    for f in c.findings {
        if !into.findings.contains(&f) {
            into.findings.push(f);
        }
    }
    for a in c.agents {
        if !into.agents.contains(&a) {
            into.agents.push(a);
        }
    }
    if into.message.is_none() {
        into.message = c.message;
    }
    into.tests = match (into.tests.take(), c.tests) {
        (Some(a), Some(b)) => Some(add_tests(a, b)),
        (a, b) => a.or(b),
    };
}

fn add_tests(mut a: TestsSummary, b: TestsSummary) -> TestsSummary {
    a.passed += b.passed;
    a.failed += b.failed;
    a.skipped += b.skipped;
    a.failures.extend(b.failures);
    a.exit_code = match (a.exit_code, b.exit_code) {
        (Some(0), x) | (x, Some(0)) => x,
        (x, y) => x.or(y),
    };
    a
}

/// Order: an error beats a failure beats a warning beats a pass beats a skip.
fn worst(a: CheckStatus, b: CheckStatus) -> CheckStatus {
    let rank = |s: CheckStatus| match s {
        CheckStatus::Skip => 0,
        CheckStatus::Pass => 1,
        CheckStatus::Warn => 2,
        CheckStatus::Fail => 3,
        CheckStatus::Error => 4,
    };
    if rank(a) >= rank(b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(passed: u64, failed: u64, status: CheckStatus) -> VerifyReport {
        VerifyReport {
            schema_version: 1,
            ok: true,
            mode: "full".into(),
            repo: "/r".into(),
            head: Some("abc".into()),
            base: Some("abc".into()),
            duration_ms: passed * 10,
            checks: vec![Check {
                name: "tests".into(),
                status,
                duration_ms: 5,
                findings: vec![],
                tests: Some(TestsSummary {
                    passed,
                    failed,
                    partition: Some("hash:1/2".into()),
                    ..TestsSummary::default()
                }),
                message: None,
                agents: vec![],
            }],
            strict: false,
            merged: false,
            totals: Totals::default(),
        }
    }

    #[test]
    fn shards_add_up_and_the_worst_status_wins() {
        let merged = merge_reports(vec![
            ("a".into(), report(3, 0, CheckStatus::Pass)),
            ("b".into(), report(4, 1, CheckStatus::Fail)),
        ])
        .unwrap();
        let t = merged.checks[0].tests.as_ref().unwrap();
        assert_eq!((t.passed, t.failed, t.partition.clone()), (7, 1, None));
        assert_eq!(merged.checks[0].status, CheckStatus::Fail);
        assert!(!merged.ok);
        assert_eq!(merged.duration_ms, 40);
    }

    #[test]
    fn reports_of_different_commits_do_not_merge() {
        let mut other = report(1, 0, CheckStatus::Pass);
        other.head = Some("def".into());
        let err = merge_reports(vec![
            ("a".into(), report(1, 0, CheckStatus::Pass)),
            ("b.json".into(), other),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("b.json"), "{err}");
        assert!(matches!(
            merge_reports(vec![]),
            Err(MergeReportsError::Empty)
        ));
    }
}
