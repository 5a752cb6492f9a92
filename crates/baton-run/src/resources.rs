//! The resource gate: no new agent while free memory is below a limit or the load above one.
//! The limits come from the flags and, when given, a file re-read at every check, so a
//! waiting run can be let go (or held back) without restarting it.

use std::path::Path;

use serde::Deserialize;

/// Resource limits; `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// MiB of available memory below which no agent starts.
    pub min_free_memory: Option<u64>,
    /// One-minute load average above which no agent starts.
    pub max_load: Option<f64>,
}

impl Limits {
    /// `self`, with every limit `file` sets replacing it.
    pub fn overridden_by(self, file: Limits) -> Limits {
        Limits {
            min_free_memory: file.min_free_memory.or(self.min_free_memory),
            max_load: file.max_load.or(self.max_load),
        }
    }

    /// Why the machine is too busy for another agent, given what it has now; `None` when it
    /// is not (or cannot tell).
    pub fn busy(&self, free_mb: Option<u64>, load: Option<f64>) -> Option<String> {
        if let (Some(min), Some(free)) = (self.min_free_memory, free_mb)
            && free < min
        {
            return Some(format!("{free} MiB free memory, below the {min} MiB limit"));
        }
        if let (Some(max), Some(load)) = (self.max_load, load)
            && load > max
        {
            return Some(format!("load {load:.2}, above the {max:.2} limit"));
        }
        None
    }
}

/// The limits a file sets (TOML: `min_free_memory = MIB`, `max_load = N`); a missing file
/// sets none. The error names the file and the position.
pub fn read_limits(path: &Path) -> Result<Limits, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Limits::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map_or((1, 1), |s| baton_plan::load::line_col(&text, s.start));
        format!(
            "{}:{}:{}: {}",
            path.display(),
            at.0,
            at.1,
            e.message().trim_end()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_past_its_value_says_why_and_the_file_overrides_the_flags() {
        let flags = Limits {
            min_free_memory: Some(100),
            max_load: Some(4.0),
        };
        assert_eq!(flags.busy(Some(100), Some(4.0)), None);
        assert!(
            flags
                .busy(Some(99), None)
                .unwrap()
                .contains("99 MiB free memory")
        );
        assert!(flags.busy(None, Some(4.5)).unwrap().contains("load 4.50"));
        assert_eq!(flags.busy(None, None), None, "unknown is not busy");
        let lifted = flags.overridden_by(Limits {
            min_free_memory: Some(0),
            max_load: None,
        });
        assert_eq!(lifted.busy(Some(1), Some(3.0)), None);
        assert!(lifted.busy(Some(1), Some(5.0)).is_some(), "max_load kept");
    }

    #[test]
    fn the_file_is_toml_with_known_keys_and_errors_name_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("limits.toml");
        assert_eq!(read_limits(&p), Ok(Limits::default()), "missing: no limits");
        std::fs::write(&p, "min_free_memory = 512\nmax_load = 1.5\n").unwrap();
        assert_eq!(
            read_limits(&p),
            Ok(Limits {
                min_free_memory: Some(512),
                max_load: Some(1.5)
            })
        );
        std::fs::write(&p, "min_free_memory = 512\nmax_lod = 1.5\n").unwrap();
        let e = read_limits(&p).unwrap_err();
        assert!(e.contains("limits.toml:2:1"), "{e}");
    }
}
