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

/// Combine shard reports into one. The shards must form exactly one complete partition
/// (`hash:1/N` … `hash:N/N`, each once): a repeated or missing shard is an error naming it.
/// Checks of the same name are joined (findings concatenated and de-duplicated, test counts
/// added, the worst status kept), durations take the longest shard. Reports must have the
/// same head. Zero tests in every shard fails the merged report.
pub fn merge_reports(
    reports: Vec<(PathBuf, VerifyReport)>,
) -> Result<VerifyReport, MergeReportsError> {
    let shards = check_partition(&reports)?;
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
        if merged.tested != r.tested {
            // shards of one run test one tree; keep the first, which names it
            merged.tested = merged.tested.or(r.tested);
        }
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
        let empty_shards = c.findings.iter().any(|f| f.code == "no_tests");
        let ran = c.tests.as_ref().map_or(0, |t| t.passed + t.failed);
        c.findings.retain(|f| f.code != "no_tests");
        if empty_shards && ran == 0 && c.tests.as_ref().is_some_and(|t| t.counted) {
            c.findings.push(crate::findings::finding(
                "no_tests",
                baton_report::Severity::Error,
                format!(
                    "0 tests ran in all {} shards; nothing was tested. If that is fine, set [verify] allow_no_tests = true in .config/baton.toml",
                    shards.len()
                ),
            ));
            c.status = CheckStatus::Fail;
        } else if c.status == CheckStatus::Warn
            && !c
                .findings
                .iter()
                .any(|f| f.severity != baton_report::Severity::Info)
        {
            c.status = CheckStatus::Pass;
        }
    }
    merged.partition = None;
    merged.shards = shards;
    finish(&mut merged);
    Ok(merged)
}

/// The shards' partitions, checked to be exactly one complete partition, in order.
fn check_partition(reports: &[(PathBuf, VerifyReport)]) -> Result<Vec<String>, MergeReportsError> {
    let mut seen: std::collections::BTreeMap<u32, (String, &PathBuf)> = Default::default();
    let mut shape: Option<(String, u32, &PathBuf)> = None;
    for (path, r) in reports {
        let partition = r.partition.clone().or_else(|| {
            r.checks
                .iter()
                .find_map(|c| c.tests.as_ref().and_then(|t| t.partition.clone()))
        });
        let bad = |reason: String| MergeReportsError::Bad {
            path: path.clone(),
            reason,
        };
        let Some(p) = partition else {
            return Err(bad(
                "it is not a shard (it has no partition); report merge combines the reports of `baton verify --partition hash:M/N --report FILE`".to_owned(),
            ));
        };
        let parsed = p.split_once(':').and_then(|(kind, rest)| {
            let (m, n) = rest.split_once('/')?;
            Some((
                kind.to_owned(),
                m.parse::<u32>().ok()?,
                n.parse::<u32>().ok()?,
            ))
        });
        let Some((kind, m, n)) = parsed.filter(|(_, m, n)| *m >= 1 && m <= n) else {
            return Err(bad(format!(
                "its partition {p:?} is not hash:M/N or count:M/N"
            )));
        };
        match &shape {
            None => shape = Some((kind.clone(), n, path)),
            Some((k, total, first)) if *k != kind || *total != n => {
                return Err(bad(format!(
                    "its partition {p} is not of the same run as {} ({k}:…/{total})",
                    first.display()
                )));
            }
            Some(_) => {}
        }
        if let Some((_, first)) = seen.get(&m) {
            return Err(MergeReportsError::Duplicate {
                partition: p,
                first: (*first).clone(),
                second: path.clone(),
            });
        }
        seen.insert(m, (p, path));
    }
    let Some((kind, total, _)) = shape else {
        return Err(MergeReportsError::Empty);
    };
    let missing: Vec<String> = (1..=total)
        .filter(|m| !seen.contains_key(m))
        .map(|m| format!("{kind}:{m}/{total}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeReportsError::Incomplete { missing, total });
    }
    Ok(seen.into_values().map(|(p, _)| p).collect())
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
    a.cases.extend(b.cases);
    a.counted &= b.counted;
    a.output_tail = match (a.output_tail, b.output_tail) {
        (Some(x), Some(y)) => Some(crate::tests_output::tail_of(
            &format!("{x}{y}"),
            crate::tests_output::TAIL_BYTES,
        )),
        (x, y) => x.or(y),
    };
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
            tested: None,
            partition: Some("hash:1/2".into()),
            shards: Vec::new(),
            totals: Totals::default(),
        }
    }

    fn shard(passed: u64, failed: u64, status: CheckStatus, partition: &str) -> VerifyReport {
        let mut r = report(passed, failed, status);
        r.partition = Some(partition.into());
        r
    }

    #[test]
    fn shards_must_form_exactly_one_complete_partition() {
        let ok = |p: &str| shard(1, 0, CheckStatus::Pass, p);
        let err = merge_reports(vec![
            ("a.json".into(), ok("hash:1/2")),
            ("b.json".into(), ok("hash:1/2")),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("hash:1/2 is given twice (a.json and b.json)"),
            "{err}"
        );
        let err = merge_reports(vec![
            ("a.json".into(), ok("hash:1/3")),
            ("c.json".into(), ok("hash:3/3")),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing hash:2/3"), "{err}");
        let err = merge_reports(vec![
            ("a.json".into(), ok("hash:1/2")),
            ("b.json".into(), ok("hash:2/3")),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("b.json") && err.contains("same run"), "{err}");
        let mut plain = ok("hash:1/1");
        plain.partition = None;
        plain.checks[0].tests.as_mut().unwrap().partition = None;
        let err = merge_reports(vec![("p.json".into(), plain)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p.json") && err.contains("not a shard"),
            "{err}"
        );
        let merged = merge_reports(vec![
            ("b.json".into(), ok("hash:2/2")),
            ("a.json".into(), ok("hash:1/2")),
        ])
        .unwrap();
        assert_eq!(merged.shards, ["hash:1/2", "hash:2/2"]);
        assert_eq!(merged.partition, None);
    }

    #[test]
    fn shards_add_up_and_the_worst_status_wins() {
        let merged = merge_reports(vec![
            ("a".into(), shard(3, 0, CheckStatus::Pass, "hash:1/2")),
            ("b".into(), shard(4, 1, CheckStatus::Fail, "hash:2/2")),
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
        let mut other = shard(1, 0, CheckStatus::Pass, "hash:2/2");
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
