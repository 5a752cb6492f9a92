//! Rendering a verify report for CI (pure): GitHub workflow annotations, a Markdown step
//! summary, and JUnit XML for CI test tabs. The CLI decides where each goes.

use std::fmt::Write;

use baton_report::{CheckStatus, Finding, Severity, VerifyReport};

/// GitHub workflow commands, one per finding (`::error file=…,line=…::message`).
pub fn github_annotations(report: &VerifyReport) -> String {
    let mut out = String::new();
    for check in &report.checks {
        for f in &check.findings {
            let level = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "notice",
            };
            let mut props = vec![format!(
                "title={}",
                gh_prop(&format!("baton {}: {}", check.name, f.code))
            )];
            if let Some(p) = &f.path {
                props.insert(0, format!("file={}", gh_prop(p)));
                if let Some(l) = f.line {
                    props.insert(1, format!("line={l}"));
                }
            }
            let _ = writeln!(
                out,
                "::{level} {}::{}",
                props.join(","),
                gh_data(&f.message)
            );
        }
        if let Some(t) = &check.tests {
            for fail in &t.failures {
                let mut props = Vec::new();
                if let Some(file) = &fail.file {
                    props.push(format!("file={}", gh_prop(file)));
                    if let Some(l) = fail.line {
                        props.push(format!("line={l}"));
                    }
                }
                props.push(format!(
                    "title={}",
                    gh_prop(&format!("test failed: {}", fail.name))
                ));
                let _ = writeln!(
                    out,
                    "::error {}::{}",
                    props.join(","),
                    gh_data(fail.message.as_deref().unwrap_or("test failed"))
                );
            }
        }
    }
    out
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn status_word(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Pass => "pass",
        CheckStatus::Warn => "warn",
        CheckStatus::Fail => "fail",
        CheckStatus::Skip => "skip",
        CheckStatus::Error => "error",
    }
}

/// A Markdown summary for `$GITHUB_STEP_SUMMARY`.
pub fn markdown_summary(report: &VerifyReport) -> String {
    let mut out = String::new();
    let verdict = if report.ok { "passed" } else { "FAILED" };
    let _ = writeln!(out, "## baton verify ({}) {verdict}\n", report.mode);
    let _ = writeln!(
        out,
        "{} error(s), {} warning(s) in {} ms.\n",
        report.totals.errors, report.totals.warnings, report.duration_ms
    );
    if let Some(t) = &report.tested {
        let what = match (&t.tree, &t.commit) {
            (Some(tree), Some(base)) => format!(
                "the merged result of {} (tree `{tree}` on `{base}`)",
                t.agents.join(", ")
            ),
            (_, Some(commit)) if t.uncommitted => {
                format!("the checkout at `{commit}` with uncommitted changes")
            }
            (_, Some(commit)) => format!("the checkout at `{commit}`"),
            _ => "the checkout".to_owned(),
        };
        let _ = writeln!(out, "Tested {what}.\n");
    }
    let _ = writeln!(out, "| check | status | findings | time |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for c in &report.checks {
        let detail = match &c.tests {
            Some(t) if !t.counted => format!(
                "`{}` exited with code {}",
                t.command.join(" "),
                t.exit_code.map_or("none".to_owned(), |c| c.to_string())
            ),
            Some(t) => format!(
                "{} passed, {} failed, {} skipped",
                t.passed, t.failed, t.skipped
            ),
            None => c
                .message
                .clone()
                .unwrap_or_else(|| c.findings.len().to_string()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ms |",
            c.name,
            status_word(c.status),
            md_cell(&detail),
            c.duration_ms
        );
    }
    let findings: Vec<(&str, &Finding)> = report
        .checks
        .iter()
        .flat_map(|c| c.findings.iter().map(move |f| (c.name.as_str(), f)))
        .collect();
    if !findings.is_empty() {
        let _ = writeln!(out, "\n| severity | check | code | path | message |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
        for (check, f) in findings {
            let _ = writeln!(
                out,
                "| {} | {check} | `{}` | {} | {} |",
                severity_word(f.severity),
                f.code,
                f.path
                    .as_deref()
                    .map(|p| format!("`{p}`"))
                    .unwrap_or_default(),
                md_cell(&f.message)
            );
        }
    }
    for c in &report.checks {
        if let Some(t) = &c.tests
            && !t.failures.is_empty()
        {
            let _ = writeln!(out, "\n### Failed tests\n");
            for f in &t.failures {
                let place = match (&f.file, f.line) {
                    (Some(file), Some(l)) => format!(" at `{file}:{l}`"),
                    (Some(file), None) => format!(" at `{file}`"),
                    _ => String::new(),
                };
                let why = f
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .map(|m| format!(": {}", md_cell(m)))
                    .unwrap_or_default();
                let _ = writeln!(out, "- `{}`{place}{why}", f.name);
            }
        }
    }
    out
}

pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// JUnit XML: one test suite per check, one test case per finding (errors fail, warnings
/// pass with output) and per test that ran, passed or not, with its output (failures also
/// per failed test the runner did not list as a case); a check without any is one case.
pub fn junit(report: &VerifyReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_failures: usize = report
        .checks
        .iter()
        .map(|c| {
            c.findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count()
                + c.tests.as_ref().map_or(0, |t| t.failures.len())
        })
        .sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"baton-verify\" failures=\"{total_failures}\" time=\"{:.3}\">",
        report.duration_ms as f64 / 1000.0
    );
    for c in &report.checks {
        let mut cases = String::new();
        let mut failures = 0;
        let mut count = 0;
        for f in &c.findings {
            count += 1;
            let name = format!(
                "{}{}",
                f.code,
                f.path
                    .as_deref()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default()
            );
            let _ = write!(
                cases,
                "    <testcase classname=\"baton.{}\" name=\"{}\"",
                xml(&c.name),
                xml(&name)
            );
            if f.severity == Severity::Error {
                failures += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure type=\"{}\" message=\"{}\"/>\n    </testcase>",
                    xml(&f.code),
                    xml(&f.message)
                );
            } else {
                let _ = writeln!(
                    cases,
                    ">\n      <system-out>{}: {}</system-out>\n    </testcase>",
                    severity_word(f.severity),
                    xml(&f.message)
                );
            }
        }
        if let Some(t) = &c.tests {
            for case in &t.cases {
                count += 1;
                let fail = t
                    .failures
                    .iter()
                    .find(|f| f.name == case.name && (f.suite.is_none() || f.suite == case.suite));
                let time = case
                    .duration_ms
                    .map(|ms| format!(" time=\"{:.3}\"", ms as f64 / 1000.0))
                    .unwrap_or_default();
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{}\" name=\"{}\"{time}>",
                    xml(case.suite.as_deref().unwrap_or("tests")),
                    xml(&case.name)
                );
                match (case.outcome.as_str(), fail) {
                    ("failed", _) | (_, Some(_)) => {
                        failures += 1;
                        let _ = writeln!(cases, "      {}", failure_xml(fail));
                    }
                    ("skipped", _) => {
                        let _ = writeln!(cases, "      <skipped/>");
                    }
                    _ => {}
                }
                if let Some(o) = &case.output {
                    let _ = writeln!(cases, "      <system-out>{}</system-out>", xml(o));
                }
                let _ = writeln!(cases, "    </testcase>");
            }
            // failures without a case of their own (a failed command, a runner that kept no
            // per-test list)
            for fail in t.failures.iter().filter(|f| {
                !t.cases
                    .iter()
                    .any(|c| c.name == f.name && (f.suite.is_none() || f.suite == c.suite))
            }) {
                count += 1;
                failures += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{}\" name=\"{}\">\n      {}",
                    xml(fail.suite.as_deref().unwrap_or("tests")),
                    xml(&fail.name),
                    failure_xml(Some(fail))
                );
                if let Some(o) = &fail.output {
                    let _ = writeln!(cases, "      <system-out>{}</system-out>", xml(o));
                }
                let _ = writeln!(cases, "    </testcase>");
            }
        }
        if count == 0 {
            count = 1;
            let skipped = if c.status == CheckStatus::Skip {
                format!(
                    "\n      <skipped message=\"{}\"/>\n    ",
                    xml(c.message.as_deref().unwrap_or("skipped"))
                )
            } else if c.status == CheckStatus::Error {
                failures += 1;
                format!(
                    "\n      <error message=\"{}\"/>\n    ",
                    xml(c.message.as_deref().unwrap_or("the check could not run"))
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                cases,
                "    <testcase classname=\"baton.{0}\" name=\"{0}\">{skipped}</testcase>",
                xml(&c.name)
            );
        }
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{count}\" failures=\"{failures}\" time=\"{:.3}\">",
            xml(&c.name),
            c.duration_ms as f64 / 1000.0
        );
        out.push_str(&cases);
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

fn failure_xml(fail: Option<&baton_report::TestFailure>) -> String {
    let message = fail
        .and_then(|f| f.message.as_deref())
        .unwrap_or("test failed");
    let place = fail
        .and_then(|f| {
            f.file
                .as_ref()
                .map(|file| format!("{file}:{}\n", f.line.unwrap_or(0)))
        })
        .unwrap_or_default();
    format!(
        "<failure message=\"{}\" type=\"test failure\">{}{}</failure>",
        xml(message.lines().next().unwrap_or(message)),
        xml(&place),
        xml(message)
    )
}

/// Escape text for XML attributes and content; drop characters XML 1.0 forbids.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_report::{Check, Overlap, Totals};

    fn sample() -> VerifyReport {
        VerifyReport {
            schema_version: 1,
            ok: false,
            mode: "quick".into(),
            repo: "/r".into(),
            head: None,
            base: None,
            duration_ms: 12,
            checks: vec![Check {
                name: "conflicts".into(),
                status: CheckStatus::Fail,
                duration_ms: 3,
                findings: vec![Finding {
                    code: "multi_writer".into(),
                    severity: Severity::Error,
                    path: Some("src/a,b.rs".into()),
                    line: Some(4),
                    paths: vec![],
                    worktree: None,
                    agents: vec!["a".into(), "b".into()],
                    overlap: Some(Overlap::Conflict),
                    message: "50% <conflict>\nsecond line".into(),
                }],
                tests: None,
                message: None,
                agents: vec![],
            }],
            strict: false,
            merged: false,
            tested: None,
            partition: None,
            shards: Vec::new(),
            totals: Totals {
                errors: 1,
                warnings: 0,
                infos: 0,
            },
        }
    }

    #[test]
    fn github_annotations_escape_properties_and_data() {
        assert_eq!(
            github_annotations(&sample()),
            "::error file=src/a%2Cb.rs,line=4,title=baton conflicts%3A multi_writer::50%25 <conflict>%0Asecond line\n"
        );
    }

    #[test]
    fn junit_is_escaped_and_counts_failures() {
        let x = junit(&sample());
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(x.contains("50% &lt;conflict&gt;&#10;second line"), "{x}");
        assert!(
            x.contains("<testsuite name=\"conflicts\" tests=\"1\" failures=\"1\""),
            "{x}"
        );
    }

    #[test]
    fn markdown_lists_findings() {
        let md = markdown_summary(&sample());
        assert!(md.contains("## baton verify (quick) FAILED"), "{md}");
        assert!(
            md.contains("| error | conflicts | `multi_writer` | `src/a,b.rs` |"),
            "{md}"
        );
    }
}
