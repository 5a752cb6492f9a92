//! Paths are bytes in git; baton keeps them as `String` keys that round-trip exactly.
//!
//! A UTF-8 path is its own key. Any other path (and one that itself starts with `"`, so the
//! mapping stays one-to-one) is kept in git's quoted form (`core.quotePath`): `"caf\351.txt"`,
//! which is also how git prints it. [`key_bytes`] gives the bytes back.

use std::borrow::Cow;
use std::path::PathBuf;

/// The key of a path given as bytes.
pub fn key(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.starts_with('"') => s.to_owned(),
        _ => quote(bytes),
    }
}

/// git's C-style quoting, every byte outside printable ASCII as `\ooo`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// The bytes of a path from its key.
pub fn key_bytes(key: &str) -> Cow<'_, [u8]> {
    let Some(inner) = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .filter(|_| key.len() >= 2)
    else {
        return Cow::Borrowed(key.as_bytes());
    };
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        let simple = match c {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b't' => Some(b'\t'),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'v' => Some(0x0b),
            b'f' => Some(0x0c),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            i += 2;
        } else if i + 3 < b.len() + 1 && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v).unwrap_or(u8::MAX));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// The path of a key, relative to its checkout.
pub fn key_path(key: &str) -> PathBuf {
    bytes_path(&key_bytes(key))
}

/// A path from raw bytes.
#[cfg(unix)]
pub fn bytes_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// A path from raw bytes.
#[cfg(not(unix))]
pub fn bytes_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_stay_distinct() {
        let names: [&[u8]; 6] = [
            b"src/lib.rs",
            b"caf\xe9.txt",
            b"caf\xe8.txt",
            b"\"quoted\".txt",
            b"tab\there\\x",
            "caf\u{e9}.txt".as_bytes(),
        ];
        let keys: Vec<String> = names.iter().map(|n| key(n)).collect();
        for (n, k) in names.iter().zip(&keys) {
            assert_eq!(&*key_bytes(k), *n, "{k}");
        }
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), names.len());
        assert_eq!(keys[1], "\"caf\\351.txt\"");
        assert_eq!(keys[0], "src/lib.rs");
    }
}
