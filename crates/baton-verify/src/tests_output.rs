//! What a test command said: running it with its output forwarded line by line and its tail
//! kept, cargo's JSON build messages turned into compiler diagnostics, and the cause of a
//! failure (panic or assertion message, file:line, exception) read out of its output.
//! Parsing is pure; only [`spawn`] runs anything.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use baton_report::{TestCase, TestFailure, TestsSummary};

use crate::errors::TestsError;

/// Where the child's output goes, line by line (the CLI picks stderr, a log, or nothing).
pub type Sink<'a> = &'a (dyn Fn(&str) + Sync);

/// Lines and bytes of output kept for the report.
pub const TAIL_LINES: usize = 60;
pub const TAIL_BYTES: usize = 8 * 1024;

/// One compiler diagnostic from cargo's JSON messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub level: String,
    pub message: String,
    /// The rendered text, as rustc prints it.
    pub rendered: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// What a finished command left behind.
#[derive(Debug, Default)]
pub struct Ran {
    pub code: i32,
    /// All of stdout, minus cargo's JSON messages (kept only when asked).
    pub stdout: String,
    /// The last lines of stdout and stderr, interleaved as they arrived.
    pub tail: String,
    /// Error diagnostics from cargo's JSON messages (with `cargo_json`).
    pub diagnostics: Vec<Diagnostic>,
    /// cargo's `build-finished` message said the build failed.
    pub build_failed: bool,
}

/// Run `argv` in `dir`; forward its output to `sink` line by line; keep its tail, and (with
/// `keep_stdout`) all of stdout. With `cargo_json`, stdout lines that are cargo's JSON
/// messages are not forwarded as such: diagnostics are forwarded rendered and collected.
pub fn spawn(
    argv: &[String],
    dir: &Path,
    env: &[(String, String)],
    sink: Sink<'_>,
    keep_stdout: bool,
    cargo_json: bool,
) -> Result<Ran, TestsError> {
    let (program, args) = argv.split_first().ok_or_else(|| TestsError::EmptyCommand {
        key: "test command".into(),
    })?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TestsError::Spawn {
            program: program.clone(),
            source,
        })?;
    let tail = Mutex::new(Tail::default());
    let diagnostics = Mutex::new((Vec::new(), false));
    let show = |line: &str| {
        sink(line);
        if let Ok(mut t) = tail.lock() {
            t.push(line);
        }
    };
    let (stdout, status) = std::thread::scope(|scope| {
        let out = child.stdout.take().map(|s| {
            let (show, diagnostics) = (&show, &diagnostics);
            scope.spawn(move || {
                let mut kept = String::new();
                for line in lines_of(s) {
                    if cargo_json && line.starts_with("{\"reason\":") {
                        if let Some(m) = cargo_message(&line)
                            && let Ok(mut d) = diagnostics.lock()
                        {
                            match m {
                                CargoMessage::Diagnostic(diag) => {
                                    for l in diag.rendered.lines() {
                                        show(l);
                                    }
                                    if diag.level == "error" {
                                        d.0.push(diag);
                                    }
                                }
                                CargoMessage::BuildFailed => d.1 = true,
                            }
                        }
                        continue;
                    }
                    show(&line);
                    if keep_stdout {
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                }
                kept
            })
        });
        let err = child.stderr.take().map(|s| {
            let show = &show;
            scope.spawn(move || {
                for line in lines_of(s) {
                    show(&line);
                }
            })
        });
        let status = child.wait();
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let _ = err.map(|h| h.join());
        (stdout, status)
    });
    let status = status.map_err(|source| TestsError::Spawn {
        program: program.clone(),
        source,
    })?;
    let (diagnostics, build_failed) = diagnostics.into_inner().unwrap_or_default();
    Ok(Ran {
        code: status.code().unwrap_or(-1),
        stdout,
        tail: tail.into_inner().unwrap_or_default().text(),
        diagnostics,
        build_failed,
    })
}

/// Lines of a stream, lossily decoded (a test may print invalid UTF-8).
fn lines_of(stream: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(stream);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    })
}

/// The last lines of some output, bounded in lines and bytes.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Tail {
    fn push(&mut self, line: &str) {
        let line: String = line.chars().take(1000).collect();
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || (self.bytes > TAIL_BYTES && self.lines.len() > 1) {
            if let Some(l) = self.lines.pop_front() {
                self.bytes -= l.len() + 1;
            }
        }
    }
    fn text(self) -> String {
        let mut s = String::new();
        for l in self.lines {
            s.push_str(&l);
            s.push('\n');
        }
        s
    }
}

/// The last `max` bytes of `text`, cut at a line start where possible.
pub fn tail_of(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) if i + 1 < cut.len() => cut[i + 1..].to_owned(),
        _ => cut.to_owned(),
    }
}

enum CargoMessage {
    Diagnostic(Diagnostic),
    BuildFailed,
}

fn cargo_message(line: &str) -> Option<CargoMessage> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get("reason")?.as_str()? {
        "compiler-message" => {
            let m = v.get("message")?;
            let level = m.get("level")?.as_str()?.to_owned();
            let span = m.get("spans").and_then(|s| s.as_array()).and_then(|spans| {
                spans
                    .iter()
                    .find(|s| s.get("is_primary").and_then(|p| p.as_bool()) == Some(true))
                    .or(spans.first())
            });
            Some(CargoMessage::Diagnostic(Diagnostic {
                level,
                message: m.get("message")?.as_str()?.to_owned(),
                rendered: m
                    .get("rendered")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned(),
                file: span
                    .and_then(|s| s.get("file_name"))
                    .and_then(|f| f.as_str())
                    .map(str::to_owned),
                line: span
                    .and_then(|s| s.get("line_start"))
                    .and_then(|l| l.as_u64())
                    .and_then(|l| u32::try_from(l).ok()),
            }))
        }
        "build-finished" if v.get("success")?.as_bool() == Some(false) => {
            Some(CargoMessage::BuildFailed)
        }
        _ => None,
    }
}

/// Where and why a Rust test panicked: `(message, file, line)` from output such as
/// ``thread 'x' panicked at src/lib.rs:7:5:\nassertion `left == right` failed…`` (and the
/// older ``panicked at 'msg', src/lib.rs:7:5``).
pub fn panic_of(output: &str) -> Option<(String, Option<String>, Option<u32>)> {
    let mut lines = output.lines();
    while let Some(l) = lines.next() {
        let Some(i) = l.find("panicked at ") else {
            continue;
        };
        let rest = &l[i + "panicked at ".len()..];
        if let Some(old) = rest.strip_prefix('\'') {
            // panicked at 'message', file:line:col
            let (msg, loc) = old.rsplit_once("', ").unwrap_or((old, ""));
            let (file, line) = location(loc);
            return Some((msg.to_owned(), file, line));
        }
        let (file, line) = location(rest.trim_end_matches(':'));
        let mut msg = Vec::new();
        for m in lines.by_ref() {
            if m.starts_with("note: ") || m.starts_with("stack backtrace:") || m.is_empty() {
                break;
            }
            msg.push(m);
        }
        let message = if msg.is_empty() {
            l.trim().to_owned()
        } else {
            msg.join("\n")
        };
        return Some((message, file, line));
    }
    None
}

/// `file:line:col` → `(file, line)`.
fn location(loc: &str) -> (Option<String>, Option<u32>) {
    let mut parts = loc.trim().rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    match (file, line.and_then(|l| l.parse().ok()), col) {
        (Some(f), Some(l), Some(c)) if c.parse::<u32>().is_ok() && !f.is_empty() => {
            (Some(f.to_owned()), Some(l))
        }
        _ => (None, None),
    }
}

/// The line that says why a command failed: the first compiler error (`error[E0308]: …`),
/// else the last exception-looking line (`ZeroDivisionError: division by zero`, `error: …`),
/// else the last non-empty line.
pub fn cause_line(output: &str) -> Option<String> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // a compiler error: the first one is the cause, the rest follow from it
    if let Some(first) = lines.iter().find(|l| l.starts_with("error[")) {
        return Some((*first).to_owned());
    }
    let exception = lines.iter().rev().find(|l| {
        let head = l.split(':').next().unwrap_or_default();
        l.contains(':')
            && !head.contains(' ')
            && (head.ends_with("Error") || head.ends_with("Exception") || head == "error")
    });
    exception.or(lines.last()).map(|l| (*l).to_owned())
}

/// Where a Python traceback says it failed: the innermost `File "X", line N` frame inside
/// the tested tree `root` (relative, or absolute under `root`), as `(file relative to root,
/// line)`.
pub fn traceback_location(output: &str, root: &Path) -> Option<(String, u32)> {
    output.lines().rev().find_map(|l| {
        let rest = l.trim_start().strip_prefix("File \"")?;
        let (file, rest) = rest.split_once('"')?;
        let line = rest
            .trim_start_matches(',')
            .trim_start()
            .strip_prefix("line ")?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        let file = file.strip_prefix("./").unwrap_or(file);
        let file = match Path::new(file).strip_prefix(root) {
            Ok(rel) => rel.to_str()?,
            Err(_) => file,
        };
        (!file.starts_with('/') && !file.starts_with('<')).then(|| (file.to_owned(), line))
    })
}

/// Counts, every test case, and failures with their causes from libtest's text output
/// (`cargo test`: unit, integration and doc tests).
pub fn parse_libtest(stdout: &str) -> TestsSummary {
    let mut s = TestsSummary::default();
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            sections.extend(open.take());
            open = Some((name.to_owned(), String::new()));
            continue;
        }
        if let Some((_, text)) = &mut open {
            if line == "failures:" || line.starts_with("test result: ") {
                sections.extend(open.take());
            } else {
                text.push_str(line);
                text.push('\n');
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => s.passed += n,
                    "failed" => s.failed += n,
                    "ignored" => s.skipped += n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("test ") {
            let outcome = [
                (" ... ok", "passed"),
                (" ... FAILED", "failed"),
                (" ... ignored", "skipped"),
            ]
            .into_iter()
            .find_map(|(suffix, outcome)| {
                let i = rest.find(suffix)?;
                let after = &rest[i + suffix.len()..];
                (after.is_empty() || after.starts_with(',')).then(|| (&rest[..i], outcome))
            });
            if let Some((name, outcome)) = outcome {
                s.cases.push(TestCase {
                    name: name.to_owned(),
                    suite: None,
                    outcome: outcome.to_owned(),
                    duration_ms: None,
                    output: None,
                });
                if outcome == "failed" {
                    s.failures.push(TestFailure {
                        name: name.to_owned(),
                        ..TestFailure::default()
                    });
                }
            }
        }
    }
    sections.extend(open);
    for (name, text) in sections {
        let output = tail_of(text.trim_end(), 4096);
        if let Some(case) = s.cases.iter_mut().find(|c| c.name == name) {
            case.output = Some(output.clone());
        }
        if let Some(f) = s.failures.iter_mut().find(|f| f.name == name) {
            if let Some((message, file, line)) = panic_of(&text) {
                f.message = Some(message);
                f.file = file;
                f.line = line;
            } else {
                f.message = cause_line(&text);
            }
            f.output = Some(output);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_with_failure_sections() {
        let out = "running 3 tests\ntest a::b ... ok\ntest a::c ... FAILED\ntest a::d ... ignored, slow\n\nfailures:\n\n---- a::c stdout ----\nsome print\n\nthread 'a::c' panicked at src/lib.rs:7:9:\nassertion `left == right` failed: two is not three\n  left: 2\n right: 3\nnote: run with `RUST_BACKTRACE=1`\n\n\nfailures:\n    a::c\n\ntest result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out\n\ntest result: ok. 4 passed; 0 failed; 0 ignored; 0 measured\n";
        let s = parse_libtest(out);
        assert_eq!((s.passed, s.failed, s.skipped), (5, 1, 1));
        assert_eq!(s.cases.len(), 3);
        assert_eq!(s.cases[2].outcome, "skipped");
        let f = &s.failures[0];
        assert_eq!(f.name, "a::c");
        assert_eq!(
            f.message.as_deref(),
            Some("assertion `left == right` failed: two is not three\n  left: 2\n right: 3")
        );
        assert_eq!((f.file.as_deref(), f.line), (Some("src/lib.rs"), Some(7)));
        assert!(f.output.as_deref().unwrap().contains("some print"));
    }

    #[test]
    fn old_style_panics_and_exceptions() {
        let (m, f, l) = panic_of("thread 'x' panicked at 'boom', src/a.rs:3:1\n").unwrap();
        assert_eq!(
            (m.as_str(), f.as_deref(), l),
            ("boom", Some("src/a.rs"), Some(3))
        );
        assert!(panic_of("all good\n").is_none());
        let py = "Traceback (most recent call last):\n  File \"t.py\", line 2, in <module>\n    1/0\nZeroDivisionError: division by zero\n\nFAILED (errors=1)\n";
        assert_eq!(
            cause_line(py).as_deref(),
            Some("ZeroDivisionError: division by zero")
        );
        assert_eq!(cause_line("just this\n").as_deref(), Some("just this"));
        // a doctest that does not compile
        let doc = "error[E0308]: mismatched types\n --> src/lib.rs:3:1\n\nerror: aborting due to 1 previous error\n\nCouldn't compile the test.\n";
        assert_eq!(
            cause_line(doc).as_deref(),
            Some("error[E0308]: mismatched types")
        );
        let tb = "Traceback (most recent call last):\n  File \"/usr/lib/python3/unittest/case.py\", line 57, in run\n  File \"tests/test_calc.py\", line 7, in test_div\n    calc.div(1, 0)\n  File \"/usr/lib/python3/x.py\", line 2, in y\nZeroDivisionError: division by zero\n";
        let root = Path::new("/repo");
        assert_eq!(
            traceback_location(tb, root),
            Some(("tests/test_calc.py".to_owned(), 7))
        );
        let abs = tb.replace("\"tests/", "\"/repo/tests/");
        assert_eq!(
            traceback_location(&abs, root),
            Some(("tests/test_calc.py".to_owned(), 7))
        );
        assert_eq!(traceback_location("no frames\n", root), None);
    }

    #[test]
    fn tails_are_bounded() {
        let mut t = Tail::default();
        for i in 0..1000 {
            t.push(&format!("line {i}"));
        }
        let text = t.text();
        assert_eq!(text.lines().count(), TAIL_LINES);
        assert!(text.ends_with("line 999\n"));
        assert_eq!(tail_of("abc\ndef\nghi\n", 6), "ghi\n");
    }

    #[test]
    fn cargo_messages() {
        let line = r#"{"reason":"compiler-message","package_id":"x","message":{"level":"error","message":"mismatched types","rendered":"error[E0308]: mismatched types\n --> src/lib.rs:1:22\n","spans":[{"file_name":"src/lib.rs","line_start":1,"is_primary":true}]}}"#;
        let Some(CargoMessage::Diagnostic(d)) = cargo_message(line) else {
            panic!("not a diagnostic");
        };
        assert_eq!(
            (d.level.as_str(), d.file.as_deref(), d.line),
            ("error", Some("src/lib.rs"), Some(1))
        );
        assert!(matches!(
            cargo_message(r#"{"reason":"build-finished","success":false}"#),
            Some(CargoMessage::BuildFailed)
        ));
        assert!(cargo_message(r#"{"reason":"build-finished","success":true}"#).is_none());
    }
}
