//! Reading plan files: TOML or JSON by extension, errors with file, line and column.

use std::path::{Path, PathBuf};

use crate::model::Plan;

/// The two formats plans are authored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// The format a path's extension names, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Why a plan file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plan {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: plans are .toml or .json files; rename it or convert it", path.display())]
    Extension { path: PathBuf },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Read and parse a plan file. Validation is separate: see [`crate::validate`].
pub fn load_plan(path: &Path) -> Result<Plan, LoadError> {
    let format = Format::from_path(path).ok_or_else(|| LoadError::Extension {
        path: path.to_owned(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_plan(&text, format, path)
}

/// Parse plan text; `path` is used in messages only.
pub fn parse_plan(text: &str, format: Format, path: &Path) -> Result<Plan, LoadError> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            LoadError::Syntax {
                path: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message,
            }
        }),
        Format::Toml => toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            LoadError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        }),
    }
}

/// 1-based line and column (in characters) of a byte offset, for error messages about any
/// TOML or JSON file baton reads.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_err(text: &str) -> String {
        parse_plan(text, Format::Toml, Path::new("p.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_field_has_position() {
        let msg = toml_err("schema_version = 1\ntitle = \"t\"\ncolour = \"red\"\n");
        assert!(
            msg.starts_with("p.toml:3:1: unknown field `colour`"),
            "{msg}"
        );
    }

    #[test]
    fn bad_agent_id_has_position() {
        let msg = toml_err(
            "schema_version = 1\ntitle = \"t\"\n[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"../etc\"\ntask_type = \"research\"\n",
        );
        assert!(
            msg.starts_with("p.toml:6:6: agent id \"../etc\" is not valid"),
            "{msg}"
        );
    }

    #[test]
    fn json_errors_have_position() {
        let err = parse_plan(
            "{\"schema_version\": 1,\n \"title\": 5}",
            Format::Json,
            Path::new("p.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("p.json:2:"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }
}
