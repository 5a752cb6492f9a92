//! Reading per-test results from a JUnit XML report (nextest's, Jenkins flavour).
//!
//! A `<testcase>` with a `<failure>` or `<error>` child failed; with `<skipped>` it was
//! skipped; otherwise it passed. Its `<system-out>`/`<system-err>` are its output (flaky tests that passed on a retry carry `flakyFailure`
//! children and count as passed).

use baton_report::{TestCase, TestFailure, TestsSummary};
use quick_xml::events::{BytesStart, Event};

use crate::tests_output::{cause_line, panic_of, tail_of, traceback_location};

/// Parse a JUnit report into counts, every test case (with its output), and failures with
/// their cause (panic or assertion message and file:line from the failure text or the
/// test's stderr, else the `message` attribute).
pub fn parse(xml: &str) -> Result<TestsSummary, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut summary = TestsSummary::default();
    let mut open: Option<Case> = None;
    // the element whose text we are collecting inside the open testcase
    let mut collecting: Option<Text> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not valid XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) if e.name().as_ref() == "testcase" => {
                open = Some(case_of(&e)?);
            }
            Event::Empty(e) if e.name().as_ref() == "testcase" => {
                finish(&mut summary, case_of(&e)?);
            }
            Event::Start(ref e) | Event::Empty(ref e) if open.is_some() => {
                let is_start = matches!(event, Event::Start(_));
                if let Some(case) = &mut open {
                    match e.name().as_ref() {
                        "failure" | "error" => {
                            case.outcome = Outcome::Failed;
                            case.message = attr(e, "message")?;
                            if is_start {
                                collecting = Some(Text::Failure);
                            }
                        }
                        "skipped" if matches!(case.outcome, Outcome::Passed) => {
                            case.outcome = Outcome::Skipped;
                        }
                        "system-out" | "system-err" if is_start => {
                            collecting = Some(Text::Output);
                        }
                        _ => {}
                    }
                }
            }
            Event::Text(t) => {
                if let (Some(case), Some(which)) = (&mut open, collecting) {
                    case.push(which, &t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let (Some(case), Some(which)) = (&mut open, collecting) {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        _ => match &*r {
                            "amp" => Some('&'),
                            "lt" => Some('<'),
                            "gt" => Some('>'),
                            "quot" => Some('"'),
                            "apos" => Some('\''),
                            _ => None,
                        },
                    };
                    if let Some(c) = c {
                        case.push(which, c.encode_utf8(&mut [0; 4]));
                    }
                }
            }
            Event::CData(t) => {
                if let (Some(case), Some(which)) = (&mut open, collecting) {
                    case.push(which, &t.xml10_content());
                }
            }
            Event::End(e) if e.name().as_ref() == "testcase" => {
                collecting = None;
                if let Some(case) = open.take() {
                    finish(&mut summary, case);
                }
            }
            Event::End(_) => collecting = None,
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(summary)
}

#[derive(Debug, Clone, Copy)]
enum Text {
    Failure,
    Output,
}

#[derive(Debug)]
enum Outcome {
    Passed,
    Skipped,
    Failed,
}

#[derive(Debug)]
struct Case {
    file: Option<String>,
    line: Option<u32>,
    suite: Option<String>,
    name: String,
    time_ms: Option<u64>,
    outcome: Outcome,
    message: Option<String>,
    failure_text: String,
    output: String,
}

impl Case {
    fn push(&mut self, which: Text, text: &str) {
        match which {
            Text::Failure => self.failure_text.push_str(text),
            Text::Output => self.output.push_str(text),
        }
    }
}

fn case_of(e: &BytesStart<'_>) -> Result<Case, String> {
    let time_ms = attr(e, "time")?
        .and_then(|t| t.parse::<f64>().ok())
        .map(|secs| (secs * 1000.0).round() as u64);
    Ok(Case {
        // pytest and others say where the test is
        file: attr(e, "file")?,
        line: attr(e, "line")?.and_then(|l| l.parse().ok()),
        name: attr(e, "name")?.unwrap_or_default(),
        suite: attr(e, "classname")?,
        time_ms,
        outcome: Outcome::Passed,
        message: None,
        failure_text: String::new(),
        output: String::new(),
    })
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

fn finish(summary: &mut TestsSummary, case: Case) {
    let output = (!case.output.trim().is_empty()).then(|| tail_of(case.output.trim_end(), 4096));
    let outcome = match case.outcome {
        Outcome::Passed => {
            summary.passed += 1;
            "passed"
        }
        Outcome::Skipped => {
            summary.skipped += 1;
            "skipped"
        }
        Outcome::Failed => {
            summary.failed += 1;
            let mut f = TestFailure {
                name: case.name.clone(),
                suite: case.suite.clone(),
                message: case.message.clone(),
                output: output.clone(),
                ..TestFailure::default()
            };
            let found = panic_of(&case.failure_text)
                .or_else(|| panic_of(&case.output))
                .filter(|(m, _, _)| !m.is_empty());
            if let Some((message, file, line)) = found {
                f.message = Some(message);
                f.file = file;
                f.line = line;
            } else {
                if f.message.is_none() {
                    f.message = cause_line(&case.failure_text).or_else(|| cause_line(&case.output));
                }
                // JUnit files name paths relative to where the command ran
                let here = std::path::Path::new("");
                let place = traceback_location(&case.failure_text, here)
                    .or_else(|| traceback_location(&case.output, here));
                f.file = case.file.clone().or(place.as_ref().map(|(f, _)| f.clone()));
                f.line = case.line.or(place.map(|(_, l)| l));
            }
            summary.failures.push(f);
            "failed"
        }
    };
    summary.cases.push(TestCase {
        name: case.name,
        suite: case.suite,
        outcome: outcome.to_owned(),
        duration_ms: case.time_ms,
        output,
    });
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn panic_message_and_location_from_the_failure_text() {
        let xml = r#"<testsuites><testsuite name="t"><testcase name="tests::bad" classname="tiny" time="0.010">
<failure message="thread &apos;tests::bad&apos; panicked at src/lib.rs:7:9" type="test failure">thread &apos;tests::bad&apos; panicked at src/lib.rs:7:9:
assertion `left == right` failed: two is not three
  left: 2
 right: 3
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace</failure>
<system-err>captured stderr</system-err></testcase>
<testcase name="ok" classname="tiny" time="0.002"><system-out>hello</system-out></testcase></testsuite></testsuites>"#;
        let s = parse(xml).unwrap();
        let f = &s.failures[0];
        assert_eq!(
            f.message.as_deref(),
            Some("assertion `left == right` failed: two is not three\n  left: 2\n right: 3")
        );
        assert_eq!((f.file.as_deref(), f.line), (Some("src/lib.rs"), Some(7)));
        assert_eq!(s.cases[1].output.as_deref(), Some("hello"));
        assert_eq!(s.cases[0].duration_ms, Some(10));
        // pytest's JUnit says where the test is
        let s = parse(r#"<testsuites><testsuite><testcase classname="tests.test_calc" name="test_div" file="tests/test_calc.py" line="6"><failure message="ZeroDivisionError: division by zero">tb</failure></testcase></testsuite></testsuites>"#).unwrap();
        let f = &s.failures[0];
        assert_eq!(
            (f.file.as_deref(), f.line, f.message.as_deref()),
            (
                Some("tests/test_calc.py"),
                Some(6),
                Some("ZeroDivisionError: division by zero")
            )
        );
    }

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
        assert_eq!(s.cases.len(), 4);
        assert_eq!(s.failures[0].output.as_deref(), Some("out"));
        assert!(parse("<testsuites><testcase name=\"x\">").is_ok());
        assert!(parse("<a></b>").is_err());
    }
}
