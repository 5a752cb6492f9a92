//! Reading per-test results from a JUnit XML report (nextest's, Jenkins flavour).
//!
//! A `<testcase>` with a `<failure>` or `<error>` child failed; with `<skipped>` it was
//! skipped; otherwise it passed (flaky tests that passed on a retry carry `flakyFailure`
//! children and count as passed).

use baton_report::{TestFailure, TestsSummary};
use quick_xml::events::{BytesStart, Event};

/// Parse a JUnit report into counts and failures.
pub fn parse(xml: &str) -> Result<TestsSummary, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut summary = TestsSummary::default();
    // the open testcase: (suite, name, outcome)
    let mut open: Option<(Option<String>, String, Outcome)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not valid XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) if e.name().as_ref() == "testcase" => {
                open = Some(case_of(&e)?);
            }
            Event::Empty(e) if e.name().as_ref() == "testcase" => {
                let (suite, name, _) = case_of(&e)?;
                finish(&mut summary, suite, name, Outcome::Passed);
            }
            Event::Start(e) | Event::Empty(e) if open.is_some() => {
                if let Some((_, _, outcome)) = &mut open {
                    match e.name().as_ref() {
                        "failure" | "error" => {
                            let message = attr(&e, "message")?;
                            *outcome = Outcome::Failed(message);
                        }
                        "skipped" if matches!(outcome, Outcome::Passed) => {
                            *outcome = Outcome::Skipped;
                        }
                        _ => {}
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == "testcase" => {
                if let Some((suite, name, outcome)) = open.take() {
                    finish(&mut summary, suite, name, outcome);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(summary)
}

#[derive(Debug)]
enum Outcome {
    Passed,
    Skipped,
    Failed(Option<String>),
}

fn case_of(e: &BytesStart<'_>) -> Result<(Option<String>, String, Outcome), String> {
    let name = attr(e, "name")?.unwrap_or_default();
    let suite = attr(e, "classname")?;
    Ok((suite, name, Outcome::Passed))
}

fn attr(e: &BytesStart<'_>, key: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("bad attribute: {err}"))?;
        if a.key.as_ref() == key {
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| format!("bad attribute value: {err}"))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn finish(summary: &mut TestsSummary, suite: Option<String>, name: String, outcome: Outcome) {
    match outcome {
        Outcome::Passed => summary.passed += 1,
        Outcome::Skipped => summary.skipped += 1,
        Outcome::Failed(message) => {
            summary.failed += 1;
            summary.failures.push(TestFailure {
                name,
                suite,
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn nextest_report() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="4" failures="1">
  <testsuite name="nxt" tests="4" failures="1">
    <testcase name="tests::ok1" classname="nxt" time="0.005"/>
    <testcase name="tests::bad" classname="nxt">
      <failure message="thread &apos;tests::bad&apos; panicked" type="test failure">long text</failure>
      <system-out>out</system-out>
    </testcase>
    <testcase name="tests::flaky" classname="nxt">
      <flakyFailure message="first try failed"/>
    </testcase>
    <testcase name="tests::skip" classname="nxt"><skipped/></testcase>
  </testsuite>
</testsuites>"#;
        let s = parse(xml).unwrap();
        assert_eq!((s.passed, s.failed, s.skipped), (2, 1, 1));
        assert_eq!(s.failures[0].name, "tests::bad");
        assert_eq!(s.failures[0].suite.as_deref(), Some("nxt"));
        assert_eq!(
            s.failures[0].message.as_deref(),
            Some("thread 'tests::bad' panicked")
        );
        assert!(parse("<testsuites><testcase name=\"x\">").is_ok());
        assert!(parse("<a></b>").is_err());
    }
}
