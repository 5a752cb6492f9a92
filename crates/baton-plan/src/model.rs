//! The plan as authored (TOML or JSON) and stored (JSON).
//!
//! Field names are the contract of `shared/spec.md`. Unknown fields are errors everywhere, so a
//! typo in a plan is caught at validation, not silently ignored at run time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::ids::{AgentId, BatchId, PlanId};
use crate::status::{AgentResult, Status};

/// A plan: batches of agents with dependencies between batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schema_version: u32,
    /// Set when the plan is stored; authored files usually leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<PlanId>,
    pub title: String,
    #[serde(default)]
    pub goal: Goal,
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Profile>,
    /// `[routing]`: the profile for each task type (research → a cheap model, implement → a
    /// strong one), used by agents that name neither a command nor a profile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routing: BTreeMap<TaskType, String>,
    #[serde(default)]
    pub batches: Vec<Batch>,
    /// Links to tasks in a task system (filled by `baton task create-from-plan` / `link`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskLink>,
    /// RFC 3339 UTC; set when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Plan {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn batch(&self, id: &BatchId) -> Option<&Batch> {
        self.batches.iter().find(|b| &b.id == id)
    }

    /// Every agent with the batch it belongs to, in plan order.
    pub fn agents(&self) -> impl Iterator<Item = (&Batch, &Agent)> {
        self.batches
            .iter()
            .flat_map(|b| b.agents.iter().map(move |a| (b, a)))
    }

    pub fn agent(&self, id: &AgentId) -> Option<(&Batch, &Agent)> {
        self.agents().find(|(_, a)| &a.id == id)
    }

    /// The command an agent runs, before placeholders are filled: the agent's own `command`,
    /// else its profile's, else the profile `[routing]` names for its task type, else
    /// `defaults.command`, else the default profile's. `None` when nothing is configured.
    pub fn command_of<'a>(&'a self, agent: &'a Agent) -> Option<&'a [String]> {
        if let Some(cmd) = &agent.command {
            return Some(cmd);
        }
        if agent.profile.is_none()
            && !self.routing.contains_key(&agent.task_type)
            && let Some(cmd) = &self.defaults.command
        {
            return Some(cmd);
        }
        let profile = self.profile_name_of(agent)?;
        self.profiles.get(profile).map(|p| p.command.as_slice())
    }

    /// The name of the profile an agent runs with (see [`Plan::command_of`]); `None` when it
    /// has its own command or nothing is configured.
    pub fn profile_name_of<'a>(&'a self, agent: &'a Agent) -> Option<&'a String> {
        if agent.command.is_some() {
            return None;
        }
        agent
            .profile
            .as_ref()
            .or_else(|| self.routing.get(&agent.task_type))
            .or(if self.defaults.command.is_some() {
                None
            } else {
                self.defaults.profile.as_ref()
            })
    }

    /// The profile an agent runs with, if any.
    pub fn profile_of(&self, agent: &Agent) -> Option<&Profile> {
        self.profile_name_of(agent)
            .and_then(|p| self.profiles.get(p))
    }

    /// How an agent's rate limits are recognised: its profile's settings, else the defaults'.
    pub fn rate_limit_of(&self, agent: &Agent) -> RateLimit {
        self.profile_of(agent)
            .and_then(|p| p.rate_limit.clone())
            .or_else(|| self.defaults.rate_limit.clone())
            .unwrap_or_default()
    }
}

impl baton_store::Versioned for Plan {
    const SCHEMA_VERSION: u32 = Plan::SCHEMA_VERSION;
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub success_criteria: Vec<String>,
}

/// Settings every agent inherits unless it sets its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// Kill an agent that printed nothing this long after it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_output_timeout: Option<HumanDuration>,
    /// How a rate-limited agent is recognised (profiles may override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// How to tell that an agent stopped because its provider rate-limited it: an exit code, or a
/// line of its output containing one of `patterns` (plain substrings, case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_codes: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
}

impl Defaults {
    fn is_empty(&self) -> bool {
        self == &Defaults::default()
    }
}

/// A named way to start an agent. `command` is argv: placeholders such as `{prompt}` are
/// replaced element by element, never through a shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub command: Vec<String>,
    /// Extra environment for the agent process (names only are shown in logs and reports).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Overrides `defaults.rate_limit` for agents of this profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Each agent in its own git worktree (the default).
    Worktree,
    /// Agents share the main checkout.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub id: BatchId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: BatchKind,
    #[serde(default)]
    pub depends_on: Vec<BatchId>,
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default, skip_serializing_if = "Status::is_pending")]
    pub status: Status,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// All agents of the batch may run at the same time.
    #[default]
    Parallel,
    /// Agents run one after another, in the order written.
    Sequential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Research,
    Implement,
    Test,
    Verify,
}

impl TaskType {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Research => "research",
            TaskType::Implement => "implement",
            TaskType::Test => "test",
            TaskType::Verify => "verify",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: AgentId,
    pub task_type: TaskType,
    #[serde(default)]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_output_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Status::is_pending")]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AgentResult>,
}

/// What an agent may read and write. `files_write` globs are checked against the files the
/// agent really changed (`scope_violation`) and against each other (overlapping writers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_read: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_write: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
}

/// A link from the plan (or one of its batches) to a task in a task system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskLink {
    /// `file`, `taskwarrior`, `beads`, …
    pub backend: String,
    pub task_id: String,
    /// The batch the task stands for; `None` for the plan's parent task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchId>,
}
