//! Finding leftover conflict markers in file content (pure).
//!
//! Only a whole block counts: a line starting with `<<<<<<<` (then a space or the end of the
//! line), later a line that is exactly `=======`, later a line starting with `>>>>>>>`. A
//! Markdown heading underline or a lone `=======` is not a marker, so the check does not cry
//! wolf on documentation.

/// Files bigger than this are not scanned (generated data, not hand-merged code).
pub const MAX_SCAN_BYTES: u64 = 8 << 20;

/// The 1-based line numbers where conflict blocks start. Binary content (a NUL byte in the
/// first 8000 bytes, git's rule) has none.
pub fn conflict_blocks(content: &[u8]) -> Vec<u32> {
    if content[..content.len().min(8000)].contains(&0) {
        return Vec::new();
    }
    #[derive(PartialEq)]
    enum State {
        Outside,
        Ours(u32),
        Theirs(u32),
    }
    let mut state = State::Outside;
    let mut found = Vec::new();
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if is_marker(line, b'<') {
            state = State::Ours(n);
            continue;
        }
        state = match state {
            State::Ours(start) if line == b"=======" => State::Theirs(start),
            State::Theirs(start) if is_marker(line, b'>') => {
                found.push(start);
                State::Outside
            }
            s => s,
        };
    }
    found
}

fn is_marker(line: &[u8], c: u8) -> bool {
    line.len() >= 7 && line[..7].iter().all(|&b| b == c) && (line.len() == 7 || line[7] == b' ')
}

#[cfg(test)]
mod tests {
    use super::conflict_blocks;

    #[track_caller]
    fn check(text: &str, expected: &[u32]) {
        assert_eq!(conflict_blocks(text.as_bytes()), expected, "{text:?}");
    }

    #[test]
    fn blocks() {
        check("a\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> branch\nb\n", &[2]);
        check(
            "<<<<<<< ours\r\nx\r\n=======\r\ny\r\n>>>>>>> theirs\r\n",
            &[1],
        );
        // diff3 style
        check(
            "<<<<<<< a\nx\n||||||| base\nw\n=======\ny\n>>>>>>> b\n",
            &[1],
        );
        check(
            "<<<<<<<\n=======\n>>>>>>>\n<<<<<<< a\n=======\n>>>>>>> b",
            &[1, 4],
        );
    }

    #[test]
    fn not_blocks() {
        check("Title\n=======\n", &[]);
        check("<<<<<<< only the start\n", &[]);
        check("<<<<<<< a\n========\n>>>>>>> b\n", &[]);
        check("<<<<<<<<< longer\n=======\n>>>>>>> b\n", &[]);
        check("<<<<<<< a\n=======\n>>>>>>>x\n", &[]);
        let mut binary = b"<<<<<<< a\n=======\n>>>>>>> b\n".to_vec();
        binary.insert(3, 0);
        assert!(conflict_blocks(&binary).is_empty());
    }
}
