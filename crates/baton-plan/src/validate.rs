//! Plan validation: pure functions from a plan to diagnostics.
//!
//! Errors make a plan unusable (exit 2); warnings are printed and fail only under `--strict`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::dag;
use crate::glob;
use crate::ids::BatchId;
use crate::model::{BatchKind, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, e.g. `dependency_cycle`.
    pub code: &'static str,
    /// What the problem is about: `plan`, `batch B2`, `agent cache-core`.
    pub subject: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// Everything validation learned about a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub diagnostics: Vec<Diagnostic>,
    /// Batches that may run together, level by level; empty when the graph has a cycle.
    pub levels: Vec<Vec<BatchId>>,
}

impl Validation {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// The placeholders an agent command may use.
pub const COMMAND_PLACEHOLDERS: &[&str] = &[
    "prompt",
    "agent_id",
    "batch_id",
    "plan_id",
    "task_type",
    "worktree",
    "branch",
    "result_file",
    "prompt_file",
    "attempt",
];

struct Out(Vec<Diagnostic>);

impl Out {
    fn error(
        &mut self,
        code: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, code, subject.into(), message.into());
    }
    fn warning(
        &mut self,
        code: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, code, subject.into(), message.into());
    }
    fn push(&mut self, severity: Severity, code: &'static str, subject: String, message: String) {
        self.0.push(Diagnostic {
            severity,
            code,
            subject,
            message,
        });
    }
}

/// Check a plan. Pure: no I/O.
pub fn validate(plan: &Plan) -> Validation {
    let mut out = Out(Vec::new());
    if plan.schema_version != Plan::SCHEMA_VERSION {
        out.error(
            "schema_version",
            "plan",
            format!(
                "schema_version {} is not supported; write schema_version = {}",
                plan.schema_version,
                Plan::SCHEMA_VERSION
            ),
        );
    }
    if plan.title.trim().is_empty() {
        out.error(
            "empty_title",
            "plan",
            "title is empty; give the plan a title",
        );
    }
    if plan.batches.is_empty() {
        out.error(
            "no_batches",
            "plan",
            "the plan has no batches; add at least one [[batches]]",
        );
    }
    check_ids(plan, &mut out);
    check_dependencies(plan, &mut out);
    let cycle = dag::find_cycle(&plan.batches);
    if let Some(cycle) = &cycle {
        let text: Vec<&str> = cycle.iter().map(BatchId::as_str).collect();
        out.error(
            "dependency_cycle",
            format!("batch {}", cycle[0]),
            format!(
                "depends_on forms a cycle: {} (each depends on the next); remove one of these dependencies",
                text.join(" -> ")
            ),
        );
    }
    check_commands(plan, &mut out);
    check_outputs(plan, &mut out);
    check_scopes(plan, &mut out);
    let levels = if cycle.is_none() {
        dag::levels(&plan.batches).unwrap_or_default()
    } else {
        Vec::new()
    };
    Validation {
        diagnostics: out.0,
        levels,
    }
}

fn check_ids(plan: &Plan, out: &mut Out) {
    let mut batch_ids = BTreeSet::new();
    let mut agent_ids: BTreeMap<&str, &str> = BTreeMap::new();
    for batch in &plan.batches {
        if !batch_ids.insert(&batch.id) {
            out.error(
                "duplicate_batch_id",
                format!("batch {}", batch.id),
                "the id is used by more than one batch; batch ids must be unique",
            );
        }
        if batch.agents.is_empty() {
            out.error(
                "empty_batch",
                format!("batch {}", batch.id),
                "the batch has no agents; add [[batches.agents]] or remove the batch",
            );
        }
        for agent in &batch.agents {
            if let Some(first) = agent_ids.insert(agent.id.as_str(), batch.id.as_str()) {
                out.error(
                    "duplicate_agent_id",
                    format!("agent {}", agent.id),
                    format!(
                        "the id is used twice (batches {first} and {}); agent ids name branches and logs, so they must be unique in a plan",
                        batch.id
                    ),
                );
            }
        }
    }
}

fn check_dependencies(plan: &Plan, out: &mut Out) {
    let ids: BTreeSet<&BatchId> = plan.batches.iter().map(|b| &b.id).collect();
    for batch in &plan.batches {
        let mut seen = BTreeSet::new();
        for dep in &batch.depends_on {
            if !ids.contains(dep) {
                out.error(
                    "missing_dependency",
                    format!("batch {}", batch.id),
                    format!("depends on {dep}, which is not a batch of this plan"),
                );
            }
            if !seen.insert(dep) {
                out.warning(
                    "duplicate_dependency",
                    format!("batch {}", batch.id),
                    format!("lists {dep} in depends_on more than once"),
                );
            }
        }
    }
}

/// `{name}` placeholders in a string.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        })
}

/// Fill the placeholders of an agent command, element by element: each `{name}` with a value
/// in `vars` is replaced; nothing is ever joined into a shell string. Unknown placeholders are
/// left as written (validation reports them before anything runs).
pub fn render_command(command: &[String], vars: &BTreeMap<&str, String>) -> Vec<String> {
    command
        .iter()
        .map(|arg| {
            let mut out = String::with_capacity(arg.len());
            let mut rest = arg.as_str();
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let after = &rest[open + 1..];
                match after.find('}').map(|close| (&after[..close], close)) {
                    Some((name, close)) if vars.contains_key(name) => {
                        out.push_str(&vars[name]);
                        rest = &after[close + 1..];
                    }
                    _ => {
                        out.push('{');
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            out
        })
        .collect()
}

fn check_commands(plan: &Plan, out: &mut Out) {
    if let Some(p) = &plan.defaults.profile
        && !plan.profiles.contains_key(p)
    {
        out.error(
            "unknown_profile",
            "defaults",
            format!("profile {p:?} is not defined; add [profiles.{p}] with a command"),
        );
    }
    for (task_type, p) in &plan.routing {
        if !plan.profiles.contains_key(p) {
            out.error(
                "unknown_profile",
                "routing",
                format!(
                    "{} routes to profile {p:?}, which is not defined; add [profiles.{p}] with a command",
                    task_type.as_str()
                ),
            );
        }
    }
    for (name, profile) in &plan.profiles {
        if profile.command.is_empty() || profile.command[0].trim().is_empty() {
            out.error(
                "empty_command",
                format!("profile {name}"),
                "command is empty; give the program and its arguments, e.g. [\"claude\", \"-p\", \"{prompt}\"]",
            );
        }
    }
    for (_, agent) in plan.agents() {
        let subject = format!("agent {}", agent.id);
        if let Some(p) = &agent.profile
            && !plan.profiles.contains_key(p)
        {
            out.error(
                "unknown_profile",
                &subject,
                format!("profile {p:?} is not defined; add [profiles.{p}] with a command"),
            );
            continue;
        }
        match plan.command_of(agent) {
            None => out.error(
                "no_command",
                &subject,
                "no command to run: set `command`, a `profile`, or defaults.profile",
            ),
            Some([]) => out.error("empty_command", &subject, "command is empty"),
            Some(cmd) => {
                for arg in cmd {
                    for name in placeholders(arg) {
                        if !COMMAND_PLACEHOLDERS.contains(&name) && !name.starts_with("outputs.") {
                            out.error(
                                "unknown_placeholder",
                                &subject,
                                format!(
                                    "command uses {{{name}}}, which baton does not fill; known: {}",
                                    COMMAND_PLACEHOLDERS
                                        .iter()
                                        .map(|p| format!("{{{p}}}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                        }
                    }
                }
            }
        }
        if let (Some(idle), Some(total)) = (
            agent.idle_timeout.or(plan.defaults.idle_timeout),
            agent.timeout.or(plan.defaults.timeout),
        ) && idle > total
        {
            out.warning(
                "idle_timeout_exceeds_timeout",
                &subject,
                format!("idle_timeout {idle} is longer than timeout {total}, so it never fires"),
            );
        }
    }
}

/// `{outputs.<agent>}` must name an agent of a batch this agent's batch depends on, directly
/// or not: only those have finished when it starts.
fn check_outputs(plan: &Plan, out: &mut Out) {
    let ancestors = dag::ancestors(&plan.batches);
    let batch_index: BTreeMap<&BatchId, usize> = plan
        .batches
        .iter()
        .enumerate()
        .map(|(i, b)| (&b.id, i))
        .collect();
    for (bi, batch) in plan.batches.iter().enumerate() {
        for agent in &batch.agents {
            let texts = std::iter::once(agent.prompt.as_str()).chain(
                plan.command_of(agent)
                    .unwrap_or_default()
                    .iter()
                    .map(String::as_str),
            );
            for text in texts {
                for name in placeholders(text) {
                    let Some(source) = name.strip_prefix("outputs.") else {
                        continue;
                    };
                    let subject = format!("agent {}", agent.id);
                    match plan.agents().find(|(_, a)| a.id.as_str() == source) {
                        None => out.error(
                            "unknown_output",
                            subject,
                            format!("{{outputs.{source}}} names no agent of this plan"),
                        ),
                        Some((src_batch, _)) => {
                            let si = batch_index[&src_batch.id];
                            if !ancestors[bi].contains(&si) {
                                out.error(
                                    "output_not_ready",
                                    subject,
                                    format!(
                                        "{{outputs.{source}}} comes from batch {}, which batch {} does not depend on; add it to depends_on",
                                        src_batch.id, batch.id
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn check_scopes(plan: &Plan, out: &mut Out) {
    let mut bad = BTreeSet::new();
    for (_, agent) in plan.agents() {
        for pattern in agent
            .scope
            .files_write
            .iter()
            .chain(&agent.scope.files_read)
        {
            if let Err(e) = glob::compile(pattern) {
                out.error(
                    "invalid_glob",
                    format!("agent {}", agent.id),
                    format!("scope glob {pattern:?} is invalid: {}", e.kind()),
                );
                bad.insert(agent.id.clone());
            }
            if pattern.starts_with('/') || pattern.split('/').any(|seg| seg == "..") {
                out.error(
                    "scope_outside_repo",
                    format!("agent {}", agent.id),
                    format!("scope glob {pattern:?} leaves the repository; write paths relative to its root"),
                );
            }
        }
    }
    // pairs of agents that may run at the same time and could write one file
    let ancestors = dag::ancestors(&plan.batches);
    for (bi, a_batch) in plan.batches.iter().enumerate() {
        for (bj, b_batch) in plan.batches.iter().enumerate().skip(bi) {
            let same = bi == bj;
            if same && a_batch.kind == BatchKind::Sequential {
                continue;
            }
            if !same && !dag::concurrent(&ancestors, bi, bj) {
                continue;
            }
            for (ai, a) in a_batch.agents.iter().enumerate() {
                let start = if same { ai + 1 } else { 0 };
                for b in &b_batch.agents[start.min(b_batch.agents.len())..] {
                    if bad.contains(&a.id) || bad.contains(&b.id) {
                        continue;
                    }
                    let shared = a.scope.files_write.iter().find_map(|x| {
                        b.scope
                            .files_write
                            .iter()
                            .find(|y| glob::globs_overlap(x, y))
                            .map(|y| (x, y))
                    });
                    if let Some((x, y)) = shared {
                        let when = if same {
                            format!("both in parallel batch {}", a_batch.id)
                        } else {
                            format!(
                                "batches {} and {} have no order between them",
                                a_batch.id, b_batch.id
                            )
                        };
                        out.warning(
                            "overlapping_write_scopes",
                            format!("agent {}", a.id),
                            format!(
                                "may write the same files as agent {} ({x:?} overlaps {y:?}; {when}); make the batch sequential or split the scopes",
                                b.id
                            ),
                        );
                    }
                }
            }
        }
    }
}
