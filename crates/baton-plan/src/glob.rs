//! Write-scope globs: matching paths, and deciding whether two globs can match one path.
//!
//! Semantics are globset's with `literal_separator(true)`, on repository-relative paths with
//! `/` separators: `*` and `?` never match `/`, `**` matches across directories, `a/**/b`
//! matches `a/b`, `{x,y}` is an alternative and `[abc]`, `[!a-z]` are classes.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Compile one scope glob.
pub fn compile(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// Matches paths against an agent's `files_write` globs.
#[derive(Debug, Clone)]
pub struct ScopeMatcher {
    set: GlobSet,
    empty: bool,
}

impl ScopeMatcher {
    /// Build from globs; the first bad one is the error.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(compile(p.as_ref())?);
        }
        Ok(ScopeMatcher {
            set: builder.build()?,
            empty: patterns.is_empty(),
        })
    }
    /// True when no globs were given (the agent declared no write scope).
    pub fn is_empty(&self) -> bool {
        self.empty
    }
    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run without `/`.
    Star,
    /// `**`: any run.
    Any,
    /// `[...]`: ranges, negated or not; never matches `/`.
    Class(Vec<(char, char)>, bool),
}

/// Does some path match both globs? Exact for the syntax above: the two globs are turned into
/// small automata and their product is searched for an accepting state.
pub fn globs_overlap(a: &str, b: &str) -> bool {
    let (xs, ys) = (expand(a), expand(b));
    xs.iter().any(|x| ys.iter().any(|y| seqs_overlap(x, y)))
}

/// Expand `{a,b}` alternatives and `**/` (which also matches the empty string) into plain
/// token sequences. Expansion is capped; past the cap the remaining alternatives are kept as
/// `**` so the answer errs towards "overlap" (a warning), never towards missing one.
fn expand(pattern: &str) -> Vec<Vec<Tok>> {
    let mut out = vec![Vec::new()];
    let chars: Vec<char> = pattern.chars().collect();
    expand_into(&chars, &mut out);
    out
}

fn push_all(out: &mut [Vec<Tok>], tok: Tok) {
    for seq in out.iter_mut() {
        seq.push(tok.clone());
    }
}

fn expand_into(chars: &[char], out: &mut Vec<Vec<Tok>>) {
    const CAP: usize = 256;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                push_all(out, Tok::Lit(chars[i + 1]));
                i += 2;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                if at_segment_start && chars.get(i + 2) == Some(&'/') {
                    // `**/` matches "" or "<anything>/"
                    let mut with: Vec<Vec<Tok>> = out.clone();
                    push_all(&mut with, Tok::Any);
                    push_all(&mut with, Tok::Lit('/'));
                    if out.len() * 2 <= CAP {
                        out.extend(with);
                    } else {
                        *out = with;
                    }
                    i += 3;
                } else {
                    push_all(out, Tok::Any);
                    i += 2;
                }
            }
            '*' => {
                push_all(out, Tok::Star);
                i += 1;
            }
            '?' => {
                push_all(out, Tok::One);
                i += 1;
            }
            '[' => {
                let (tok, next) = parse_class(chars, i);
                push_all(out, tok);
                i = next;
            }
            '{' => {
                let Some(close) = matching_brace(chars, i) else {
                    push_all(out, Tok::Lit('{'));
                    i += 1;
                    continue;
                };
                let alts = split_alternatives(&chars[i + 1..close]);
                if out.len() * alts.len() > CAP {
                    push_all(out, Tok::Any);
                } else {
                    let mut next = Vec::new();
                    for alt in alts {
                        let mut branch = out.clone();
                        expand_into(alt, &mut branch);
                        next.extend(branch);
                    }
                    *out = next;
                }
                i = close + 1;
            }
            c => {
                push_all(out, Tok::Lit(c));
                i += 1;
            }
        }
    }
}

fn matching_brace(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (k, &c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

fn split_alternatives(inner: &[char]) -> Vec<&[char]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, &c) in inner.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

fn parse_class(chars: &[char], open: usize) -> (Tok, usize) {
    let mut i = open + 1;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < chars.len() && (chars[i] != ']' || first) {
        first = false;
        let lo = chars[i];
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&c| c != ']') {
            ranges.push((lo, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
    if i >= chars.len() {
        // unterminated: globset rejects these before we get here; treat as a literal '['
        return (Tok::Lit('['), open + 1);
    }
    (Tok::Class(ranges, negated), i + 1)
}

fn accepts(tok: &Tok, c: char) -> bool {
    match tok {
        Tok::Lit(x) => *x == c,
        Tok::One | Tok::Star => c != '/',
        Tok::Any => true,
        Tok::Class(ranges, negated) => {
            c != '/' && (ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
        }
    }
}

/// Some character both tokens accept?
fn chars_meet(a: &Tok, b: &Tok) -> bool {
    let mut candidates: Vec<char> = vec!['a', 'Z', '0', '_', '-', '.', '/', '\u{10FFFF}'];
    for t in [a, b] {
        match t {
            Tok::Lit(c) => candidates.push(*c),
            Tok::Class(ranges, _) => {
                for &(lo, hi) in ranges {
                    for c in [lo, hi] {
                        candidates.push(c);
                        candidates.extend(char::from_u32(c as u32 + 1));
                        candidates.extend((c as u32).checked_sub(1).and_then(char::from_u32));
                    }
                }
            }
            _ => {}
        }
    }
    candidates.iter().any(|&c| accepts(a, c) && accepts(b, c))
}

fn seqs_overlap(x: &[Tok], y: &[Tok]) -> bool {
    let (n, m) = (x.len(), y.len());
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut stack = vec![(0usize, 0usize)];
    let loops = |t: &Tok| matches!(t, Tok::Star | Tok::Any);
    while let Some((i, j)) = stack.pop() {
        if std::mem::replace(&mut seen[i * (m + 1) + j], true) {
            continue;
        }
        if i == n && j == m {
            return true;
        }
        // a star may match nothing more
        if i < n && loops(&x[i]) {
            stack.push((i + 1, j));
        }
        if j < m && loops(&y[j]) {
            stack.push((i, j + 1));
        }
        // both consume one character
        if i < n && j < m && chars_meet(&x[i], &y[j]) {
            let ni = if loops(&x[i]) { i } else { i + 1 };
            let nj = if loops(&y[j]) { j } else { j + 1 };
            if (ni, nj) != (i, j) {
                stack.push((ni, nj));
            } else {
                // both loop: consuming changes nothing, but either may then stop looping
                stack.push((i + 1, j));
                stack.push((i, j + 1));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(a: &str, b: &str, expected: bool) {
        assert_eq!(globs_overlap(a, b), expected, "{a} vs {b}");
        assert_eq!(globs_overlap(b, a), expected, "{b} vs {a}");
    }

    #[test]
    fn overlap_cases() {
        check("src/**", "src/cache/**", true);
        check("src/cache/**", "src/db/**", false);
        check("docs/a.md", "docs/a.md", true);
        check("docs/a.md", "docs/b.md", false);
        check("*.rs", "src/lib.rs", false); // `*` does not cross `/`
        check("**/*.rs", "src/lib.rs", true);
        check("**/*.rs", "lib.rs", true);
        check("src/*.rs", "src/*.toml", false);
        check("src/{a,b}.rs", "src/b.rs", true);
        check("src/{a,c}.rs", "src/b.rs", false);
        check("src/[ab].rs", "src/b.rs", true);
        check("src/[!ab].rs", "src/b.rs", false);
        check("src/[!ab].rs", "src/c.rs", true);
        check("a/**/b.rs", "a/b.rs", true);
        check("a/**/b.rs", "a/x/y/b.rs", true);
        check("a/**/b.rs", "a/x/y/c.rs", false);
        check("src/?.rs", "src/ab.rs", false);
        check("src/*", "src/x/y", false);
        check("src/**", "tests/**", false);
        check("**", "anything/at/all", true);
    }

    /// Cross-check the automaton against globset on concrete paths: whenever some path matches
    /// both globs, `globs_overlap` must say so.
    #[test]
    fn never_misses_a_shared_path() {
        let globs = [
            "src/**",
            "src/*.rs",
            "**/*.rs",
            "src/a/**",
            "*.md",
            "docs/**/*.md",
            "src/[ab]*.rs",
            "src/{a,b}/**",
            "?.rs",
            "src/a/b.rs",
        ];
        let paths = [
            "src/a.rs",
            "src/b.rs",
            "src/a/b.rs",
            "src/a/c.md",
            "a.rs",
            "x.md",
            "docs/x.md",
            "docs/y/z.md",
            "src/b/q.rs",
            "src/c.rs",
        ];
        for a in globs {
            for b in globs {
                let (ga, gb) = (
                    compile(a).unwrap().compile_matcher(),
                    compile(b).unwrap().compile_matcher(),
                );
                if paths.iter().any(|p| ga.is_match(p) && gb.is_match(p)) {
                    assert!(globs_overlap(a, b), "{a} and {b} share a path");
                }
            }
        }
    }

    #[test]
    fn scope_matcher() {
        let m = ScopeMatcher::new(&["src/cache/**", "docs/*.md"]).unwrap();
        assert!(m.is_match("src/cache/mod.rs"));
        assert!(m.is_match("docs/x.md"));
        assert!(!m.is_match("docs/a/x.md"));
        assert!(!m.is_match("src/lib.rs"));
        assert!(ScopeMatcher::new(&["src/[a"]).is_err());
    }
}
