//! What every command gets: global flags, output helpers, and lazy access to the repository,
//! the config and the state directory.

use std::cell::OnceCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use baton_git::RepoPaths;
use baton_store::StateDir;
use serde::Serialize;

use crate::args::{ColorChoice, GlobalArgs};
use crate::config::Config;
use crate::error::{CliError, CliResult};
use crate::style::Style;

pub struct Ctx {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// Colours for stdout.
    pub style: Style,
    /// Colours for stderr.
    pub err_style: Style,
    /// The command the user typed (`baton`, `cargo xtask`), for messages.
    pub program: String,
    repo_arg: Option<PathBuf>,
    repo: OnceCell<RepoPaths>,
    config: OnceCell<Config>,
}

fn color_enabled(choice: ColorChoice, is_tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

impl Ctx {
    pub fn new(global: &GlobalArgs, program: &str) -> Self {
        Ctx {
            program: program.to_owned(),
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            style: Style {
                enabled: !global.json
                    && color_enabled(global.color, std::io::stdout().is_terminal()),
            },
            err_style: Style {
                enabled: color_enabled(global.color, std::io::stderr().is_terminal()),
            },
            repo_arg: global.repo.clone(),
            repo: OnceCell::new(),
            config: OnceCell::new(),
        }
    }

    /// The repository baton works on (`--repo`, or the one around the current directory).
    pub fn repo(&self) -> CliResult<&RepoPaths> {
        if let Some(r) = self.repo.get() {
            return Ok(r);
        }
        let start = match &self.repo_arg {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(CliError::input(format!(
                        "--repo {}: no such directory",
                        dir.display()
                    )));
                }
                dir.clone()
            }
            None => std::env::current_dir()
                .map_err(|e| CliError::env(format!("cannot read the current directory: {e}")))?,
        };
        let paths = RepoPaths::discover(&start)?;
        Ok(self.repo.get_or_init(|| paths))
    }

    /// `.config/baton.toml` of the main checkout, or defaults when there is none.
    pub fn config(&self) -> CliResult<&Config> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let root = self.repo()?.main_workdir();
        let config = Config::load(&root)?;
        Ok(self.config.get_or_init(|| config))
    }

    /// The state directory of the checkout at `root`, per its config.
    pub fn state_dir_at(root: &std::path::Path) -> CliResult<StateDir> {
        let config = Config::load(root)?;
        Ok(StateDir::open(root, &config.state.dir)?)
    }

    /// The state directory, without creating it.
    pub fn state_dir(&self) -> CliResult<StateDir> {
        let root = self.repo()?.main_workdir();
        Ok(StateDir::open(&root, &self.config()?.state.dir)?)
    }

    /// The state directory, created if needed and excluded from git so the checkout stays clean.
    pub fn state_dir_for_writing(&self) -> CliResult<StateDir> {
        let dir = self.state_dir()?;
        let repo = self.repo()?;
        std::fs::create_dir_all(dir.root())
            .map_err(|e| CliError::env(format!("cannot create {}: {e}", dir.root().display())))?;
        if let Ok(rel) = dir.root().strip_prefix(repo.main_workdir()) {
            let pattern = format!("/{}/", rel.to_string_lossy().trim_end_matches('/'));
            baton_store::ensure_excluded(&repo.info_exclude(), &pattern)?;
        }
        Ok(dir)
    }

    /// `text` with every "`baton " (a command quoted in a message, here or in a library's
    /// error) naming the command the user typed instead, e.g. "`cargo xtask ".
    pub fn with_program<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.program == "baton" || !text.contains("`baton ") {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(text.replace("`baton ", &format!("`{} ", self.program)))
        }
    }

    /// Print a value as pretty JSON on stdout.
    pub fn print_json<T: Serialize + ?Sized>(&self, value: &T) -> CliResult<()> {
        let mut out = std::io::stdout().lock();
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::env(format!("cannot serialize output: {e}")))?;
        // a closed pipe (`| head`) is not an error worth reporting
        let _ = writeln!(out, "{text}");
        Ok(())
    }

    /// Print `value` (a JSON object) with `schema_version` added, for documents whose type does
    /// not carry one itself. Keys come out sorted.
    pub fn print_versioned<T: Serialize + ?Sized>(&self, version: u32, value: &T) -> CliResult<()> {
        let mut json = serde_json::to_value(value)
            .map_err(|e| CliError::env(format!("cannot serialize output: {e}")))?;
        match json.as_object_mut() {
            Some(map) => {
                map.insert("schema_version".into(), version.into());
            }
            None => {
                return Err(CliError::env(
                    "internal error: a --json document must be an object".to_owned(),
                ));
            }
        }
        self.print_json(&json)
    }

    /// Print a line of human output on stdout (never in --json mode).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                self.with_program(line.as_ref())
            );
        }
    }

    /// Print a progress or note line on stderr, unless --quiet.
    pub fn note(&self, line: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}",
                self.with_program(line.as_ref())
            );
        }
    }

    /// Print a warning on stderr.
    pub fn warn(&self, line: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {}",
            self.err_style.yellow("warning:"),
            self.with_program(line.as_ref())
        );
    }

    pub fn print_error(&self, err: &CliError) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {}",
            self.err_style.red("error:"),
            self.with_program(&err.message)
        );
    }
}
