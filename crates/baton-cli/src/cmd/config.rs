//! `baton config [show|schema]`: the effective `.config/baton.toml` with where each value came
//! from, and the JSON Schema of the file.

use baton_report::exit;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};
use crate::table::{Align, Cell, Paint, Table};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  baton config                       every setting, its value and where it came from
  baton config --json                the same as {schema_version, file, settings: [...]}
  baton config schema > baton.schema.json
                                     JSON Schema of .config/baton.toml for editors (taplo, VS Code)")]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: Option<ConfigCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the effective configuration and where each value came from (the default).
    Show,
    /// Print the JSON Schema of `.config/baton.toml`.
    Schema,
}

/// The version of `config --json`.
pub const CONFIG_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Setting {
    /// Dotted key, e.g. `verify.smoke`.
    key: String,
    value: serde_json::Value,
    /// `file` when `.config/baton.toml` sets it, `default` otherwise.
    source: &'static str,
}

#[derive(Serialize)]
struct ConfigOutput {
    schema_version: u32,
    file: std::path::PathBuf,
    file_exists: bool,
    settings: Vec<Setting>,
}

pub fn run(ctx: &Ctx, args: ConfigArgs) -> CliResult {
    match args.command.unwrap_or(ConfigCommand::Show) {
        ConfigCommand::Show => show(ctx),
        ConfigCommand::Schema => {
            ctx.print_json(&config_schema())?;
            Ok(exit::OK)
        }
    }
}

/// The JSON Schema of `.config/baton.toml`, generated from the config types.
pub fn config_schema() -> schemars::Schema {
    schemars::schema_for!(Config)
}

fn show(ctx: &Ctx) -> CliResult {
    let root = ctx.repo()?.main_workdir();
    let config = ctx.config()?;
    let file = root.join(Config::PATH);
    let written: Option<toml::Table> = match std::fs::read_to_string(&file) {
        // Config::load has already parsed it, so this cannot fail on content
        Ok(text) => toml::from_str(&text).ok(),
        Err(_) => None,
    };
    let effective = serde_json::to_value(config)
        .map_err(|e| CliError::env(format!("cannot serialize the configuration: {e}")))?;
    let mut settings = Vec::new();
    flatten("", &effective, &mut |key, value| {
        let set = written.as_ref().is_some_and(|t| lookup(t, key));
        settings.push(Setting {
            key: key.to_owned(),
            value: value.clone(),
            source: if set { "file" } else { "default" },
        });
    });
    if ctx.json {
        ctx.print_json(&ConfigOutput {
            schema_version: CONFIG_SCHEMA_VERSION,
            file_exists: written.is_some(),
            file,
            settings,
        })?;
        return Ok(exit::OK);
    }
    ctx.say(
        format!(
            "{} {}",
            file.display(),
            if written.is_some() {
                ""
            } else {
                "(absent: every value is a default)"
            }
        )
        .trim_end(),
    );
    let mut table = Table::new([
        ("KEY", Align::Left),
        ("VALUE", Align::Left),
        ("FROM", Align::Left),
    ]);
    for s in settings {
        let value = match &s.value {
            serde_json::Value::Null => "(unset)".to_owned(),
            v => v.to_string(),
        };
        let from = match s.source {
            "file" => Cell::new(Config::PATH, Paint::Cyan),
            other => Cell::new(other, Paint::Dim),
        };
        table.row([Cell::plain(s.key), Cell::plain(value), from]);
    }
    for line in table.render(&ctx.style) {
        ctx.say(line);
    }
    Ok(exit::OK)
}

/// Call `f` with every leaf of `value` (objects are descended into; arrays are leaves).
fn flatten(prefix: &str, value: &serde_json::Value, f: &mut dyn FnMut(&str, &serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, f);
            }
        }
        leaf => f(prefix, leaf),
    }
}

/// Whether the dotted `key` is written in the file's table.
fn lookup(table: &toml::Table, key: &str) -> bool {
    let mut parts = key.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    let mut current = table.get(first);
    for part in parts {
        current = current.and_then(|v| v.as_table()).and_then(|t| t.get(part));
    }
    current.is_some()
}
