//! Aligned tables for human output: cells are measured and padded as plain text, and only then
//! coloured, so columns line up whether colour is on or off.
//!
//! ```text
//! let mut t = Table::new([("NAME", Align::Left), ("AGE", Align::Right)]);
//! t.row([Cell::plain("a1"), Cell::new("3m", Paint::Dim)]);
//! for line in t.render(&ctx.style) { ctx.say(line) }
//! ```

use crate::style::Style;

/// How a cell's text is coloured once it is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paint {
    #[default]
    Plain,
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
    Cyan,
}

impl Paint {
    pub fn apply(self, style: &Style, text: &str) -> String {
        match self {
            Paint::Plain => text.to_owned(),
            Paint::Bold => style.bold(text),
            Paint::Dim => style.dim(text),
            Paint::Red => style.red(text),
            Paint::Green => style.green(text),
            Paint::Yellow => style.yellow(text),
            Paint::Cyan => style.cyan(text),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One cell: plain text and the colour it gets after padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub paint: Paint,
}

impl Cell {
    pub fn new(text: impl Into<String>, paint: Paint) -> Self {
        Cell {
            text: text.into(),
            paint,
        }
    }
    pub fn plain(text: impl Into<String>) -> Self {
        Cell::new(text, Paint::Plain)
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::plain(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::plain(text)
    }
}

/// A table whose columns are as wide as their widest cell (header included).
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Vec<Cell>>,
    /// Text before every line (e.g. two spaces of indentation).
    indent: String,
}

impl Table {
    pub fn new<H: Into<String>>(headers: impl IntoIterator<Item = (H, Align)>) -> Self {
        Table {
            headers: headers.into_iter().map(|(h, a)| (h.into(), a)).collect(),
            rows: Vec::new(),
            indent: String::new(),
        }
    }

    /// A table without a header line; `aligns` gives the number of columns.
    pub fn headless(aligns: impl IntoIterator<Item = Align>) -> Self {
        Table::new(aligns.into_iter().map(|a| (String::new(), a)))
    }

    pub fn indent(mut self, indent: &str) -> Self {
        self.indent = indent.to_owned();
        self
    }

    /// Add a row; missing cells are empty, extra cells are dropped.
    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        let mut row: Vec<Cell> = cells.into_iter().map(Into::into).collect();
        row.resize(self.headers.len(), Cell::plain(""));
        self.rows.push(row);
    }

    fn has_header(&self) -> bool {
        self.headers.iter().any(|(h, _)| !h.is_empty())
    }

    /// The lines of the table: a dim header (if any), then one line per row. Columns are
    /// separated by two spaces; the last column is not padded, so no line ends in spaces.
    pub fn render(&self, style: &Style) -> Vec<String> {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(&cell.text));
            }
        }
        let header_row: Vec<Cell> = self
            .headers
            .iter()
            .map(|(h, _)| Cell::new(h.clone(), Paint::Dim))
            .collect();
        let rows = self.has_header().then_some(&header_row).into_iter();
        rows.chain(&self.rows)
            .map(|row| {
                let last = row.len().saturating_sub(1);
                let mut line = self.indent.clone();
                for (i, cell) in row.iter().enumerate() {
                    let gap = widths[i].saturating_sub(width(&cell.text));
                    let padded = match (self.headers[i].1, i == last) {
                        (Align::Left, true) => cell.text.clone(),
                        (Align::Left, false) => format!("{}{}", cell.text, " ".repeat(gap)),
                        (Align::Right, _) => format!("{}{}", " ".repeat(gap), cell.text),
                    };
                    // colour only the text, never the padding, so widths stay visible-width
                    let (lead, rest) = padded.split_at(padded.len() - padded.trim_start().len());
                    let (body, trail) = rest.split_at(rest.trim_end().len());
                    line.push_str(lead);
                    line.push_str(&cell.paint.apply(style, body));
                    line.push_str(trail);
                    if i != last {
                        line.push_str("  ");
                    }
                }
                line.truncate(line.trim_end().len());
                line
            })
            .collect()
    }
}

/// `n` and the noun, singular or plural: `1 commit`, `2 commits`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\u{1b}') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    fn sample() -> Table {
        let mut t = Table::new([
            ("NAME", Align::Left),
            ("N", Align::Right),
            ("NOTE", Align::Left),
        ]);
        t.row([
            Cell::new("a-very-long-name", Paint::Green),
            "7".into(),
            "x".into(),
        ]);
        t.row([
            Cell::new("b", Paint::Red),
            Cell::new("12", Paint::Yellow),
            "".into(),
        ]);
        t
    }

    #[test]
    fn columns_align_the_same_with_and_without_colour() {
        let plain = sample().render(&Style { enabled: false });
        let coloured = sample().render(&Style { enabled: true });
        assert!(coloured.iter().any(|l| l.contains('\u{1b}')));
        let stripped: Vec<String> = coloured.iter().map(|l| strip(l)).collect();
        assert_eq!(plain, stripped);
        assert_eq!(
            plain,
            [
                "NAME               N  NOTE",
                "a-very-long-name   7  x",
                "b                 12",
            ]
        );
    }

    #[test]
    fn counts_agree_in_number() {
        assert_eq!(count(1, "commit", "commits"), "1 commit");
        assert_eq!(count(0, "commit", "commits"), "0 commits");
    }
}
