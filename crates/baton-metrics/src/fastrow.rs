//! A fast path for parsing the lines baton itself writes, before serde_json.
//!
//! It accepts a strict subset of JSON (an object of strings without escapes, integers,
//! booleans, nulls and nested objects of the same) and gives up (`None`) on anything else:
//! escapes, floats, arrays, a known field of the wrong type, a duplicate known field, bad
//! syntax. The caller then asks serde_json, which decides. So for every line the fast path
//! accepts, the result is what serde_json gives; the tests check this on valid, damaged and
//! mutated lines.

use std::borrow::Cow;

use crate::aggregate::{Row, Str};

struct Cursor<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

enum Value<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
    Null,
    Object,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// After the opening quote: up to the closing one. No escapes, no control characters.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    let s = self.s.get(start..self.i)?;
                    self.i += 1;
                    return Some(s);
                }
                b'\\' | 0..0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    /// A non-negative integer without a fraction or exponent.
    fn int(&mut self) -> Option<u64> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
        let digits = self.s.get(start..self.i)?;
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return None;
        }
        digits.parse().ok()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn value(&mut self, depth: u32) -> Option<Value<'a>> {
        match *self.b.get(self.i)? {
            b'"' => {
                self.i += 1;
                self.string().map(Value::Str)
            }
            b'0'..=b'9' => self.int().map(Value::Int),
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b'{' if depth < 2 => {
                self.i += 1;
                self.object(depth + 1, |_, _| Some(()))?;
                Some(Value::Object)
            }
            _ => None,
        }
    }

    /// After `{`: members up to and including `}`, each handed to `f`.
    fn object(
        &mut self,
        depth: u32,
        mut f: impl FnMut(&'a str, Value<'a>) -> Option<()>,
    ) -> Option<()> {
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.eat(b'"')?;
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let v = self.value(depth)?;
            f(key, v)?;
            self.ws();
            match *self.b.get(self.i)? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    // serde_json refuses a duplicate known field; let it say so
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

fn opt_str<'a>(slot: &mut Option<Option<Str<'a>>>, v: Value<'a>) -> Option<()> {
    match v {
        Value::Str(s) => set(slot, Some(Str(Cow::Borrowed(s)))),
        Value::Null => set(slot, None),
        _ => None,
    }
}

/// The row of `line`, or `None` when serde_json must decide.
pub fn parse(line: &[u8]) -> Option<Row<'_>> {
    let s = std::str::from_utf8(line).ok()?;
    let mut c = Cursor { b: line, s, i: 0 };
    let (mut version, mut time, mut event) = (None, None, None);
    let (mut plan, mut batch, mut task_type, mut error_class) = (None, None, None, None);
    let (mut duration, mut success) = (None, None);
    c.ws();
    c.eat(b'{')?;
    c.object(0, |key, v| match key {
        "schema_version" => match v {
            Value::Int(n) => set(&mut version, u32::try_from(n).ok()?),
            _ => None,
        },
        "time" => match v {
            Value::Str(s) => set(&mut time, Str(Cow::Borrowed(s))),
            _ => None,
        },
        "event" => match v {
            Value::Str(s) => set(&mut event, Str(Cow::Borrowed(s))),
            _ => None,
        },
        "plan" => opt_str(&mut plan, v),
        "batch" => opt_str(&mut batch, v),
        "task_type" => opt_str(&mut task_type, v),
        "error_class" => opt_str(&mut error_class, v),
        "duration_ms" => match v {
            Value::Int(n) => set(&mut duration, Some(n)),
            Value::Null => set(&mut duration, None),
            _ => None,
        },
        "success" => match v {
            Value::Bool(b) => set(&mut success, Some(b)),
            Value::Null => set(&mut success, None),
            _ => None,
        },
        // other fields are skipped, as serde does (after checking their syntax above)
        _ => Some(()),
    })?;
    c.ws();
    if c.i != line.len() {
        return None;
    }
    Some(Row {
        schema_version: version?,
        time: time?,
        event: event?,
        plan: plan.flatten(),
        batch: batch.flatten(),
        task_type: task_type.flatten(),
        duration_ms: duration.flatten(),
        success: success.flatten(),
        error_class: error_class.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(line: &[u8]) -> Option<Row<'_>> {
        serde_json::from_slice(line).ok()
    }

    /// The fast path either gives up or agrees with serde_json.
    fn check(line: &[u8]) -> bool {
        match parse(line) {
            None => false,
            Some(fast) => {
                assert_eq!(
                    Some(&fast),
                    serde(line).as_ref(),
                    "{:?}",
                    String::from_utf8_lossy(line)
                );
                true
            }
        }
    }

    const GOOD: &[&str] = &[
        r#"{"schema_version":1,"event_id":"E-20260101-000000-00000000000000ff","time":"2026-01-01T00:00:00.000Z","event":"agent_complete","plan":"OP-20260101-000000-0000000a","batch":"B1","agent":"a-1","task_type":"implement","duration_ms":123456,"success":false,"error_class":"timeout","details":{"attempt":"1","files_changed":"7"}}"#,
        r#"{"schema_version":1,"event_id":"E-1","time":"2026-01-01T00:00:00.000Z","event":"cache"}"#,
        r#"  { "schema_version" : 1 , "time" : "t" , "event" : "replan" , "plan" : null , "success" : null , "duration_ms" : null , "x" : { } }  "#,
        r#"{"event":"é ü 漢","time":"t","schema_version":0,"details":{"k":{"deep":true}},"n":0,"b":false}"#,
    ];

    #[test]
    fn accepts_what_baton_writes_and_agrees_with_serde() {
        for line in GOOD {
            assert!(check(line.as_bytes()), "fast path gave up on {line}");
        }
    }

    #[test]
    fn gives_up_where_serde_must_decide() {
        for line in [
            r#"{"schema_version":1,"time":"t","event":"a\"b"}"#,
            r#"{"schema_version":1,"time":"t","event":"e","duration_ms":1.5}"#,
            r#"{"schema_version":1,"time":"t","event":"e","duration_ms":-1}"#,
            r#"{"schema_version":1,"time":"t","event":"e","x":[1]}"#,
            r#"{"schema_version":1,"time":"t","event":"e","event":"f"}"#,
            r#"{"schema_version":1,"time":"t","event":"e","success":"yes"}"#,
            r#"{"schema_version":1,"time":"t","event":"e"} x"#,
            r#"{"schema_version":1,"time":"t","event":"e",}"#,
            r#"{"schema_version":1,"time":"t"}"#,
            r#"{"schema_version":01,"time":"t","event":"e"}"#,
            r#"{"schema_version":99999999999,"time":"t","event":"e"}"#,
            "not json",
            "",
        ] {
            assert!(!check(line.as_bytes()), "fast path accepted {line}");
        }
    }

    #[test]
    fn truncated_and_mutated_lines_never_disagree() {
        let mut accepted = 0;
        for line in GOOD {
            let b = line.as_bytes();
            for end in 0..=b.len() {
                accepted += usize::from(check(&b[..end]));
            }
            for i in 0..b.len() {
                for r in [
                    b'"', b'\\', b'{', b'}', b',', b':', b' ', b'0', b'9', b'-', b'.', b'x', b'n',
                    0x01, 0xff,
                ] {
                    let mut m = b.to_vec();
                    m[i] = r;
                    accepted += usize::from(check(&m));
                    let mut ins = b.to_vec();
                    ins.insert(i, r);
                    accepted += usize::from(check(&ins));
                    let mut del = b.to_vec();
                    del.remove(i);
                    accepted += usize::from(check(&del));
                }
            }
        }
        // the mutations that keep a line valid are taken by the fast path too
        assert!(accepted > 1000, "{accepted}");
    }
}
