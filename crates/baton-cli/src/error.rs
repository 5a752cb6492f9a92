//! The one error type of the CLI: a message and the exit code it maps to.

use baton_report::exit;

/// An error on its way to the terminal: one line naming the thing at fault and what to do.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    /// Bad input or usage (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: exit::BAD_INPUT,
            message: message.into(),
        }
    }
    /// Environment or internal failure (exit 3).
    pub fn env(message: impl Into<String>) -> Self {
        CliError {
            code: exit::ENVIRONMENT,
            message: message.into(),
        }
    }
    /// The gate failed (exit 1).
    pub fn gate(message: impl Into<String>) -> Self {
        CliError {
            code: exit::GATE_FAILED,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<baton_store::StoreError> for CliError {
    fn from(e: baton_store::StoreError) -> Self {
        if e.is_bad_content() {
            CliError::input(e.to_string())
        } else {
            CliError::env(e.to_string())
        }
    }
}

impl From<baton_git::GitError> for CliError {
    fn from(e: baton_git::GitError) -> Self {
        if e.is_bad_input() {
            CliError::input(e.to_string())
        } else {
            CliError::env(e.to_string())
        }
    }
}

impl From<baton_verify::AgentsError> for CliError {
    fn from(e: baton_verify::AgentsError) -> Self {
        if e.is_bad_input() {
            CliError::input(e.to_string())
        } else {
            CliError::env(e.to_string())
        }
    }
}

impl From<baton_verify::TestsError> for CliError {
    fn from(e: baton_verify::TestsError) -> Self {
        if e.is_bad_input() {
            CliError::input(e.to_string())
        } else {
            CliError::env(e.to_string())
        }
    }
}

impl From<baton_verify::MergeReportsError> for CliError {
    fn from(e: baton_verify::MergeReportsError) -> Self {
        CliError::input(e.to_string())
    }
}

impl From<baton_plan::store::PlanStoreError> for CliError {
    fn from(e: baton_plan::store::PlanStoreError) -> Self {
        use baton_plan::store::PlanStoreError as E;
        match e {
            E::Store(s) => s.into(),
            E::Exists(_) | E::NotFound { .. } => CliError::input(e.to_string()),
            E::Random(_) => CliError::env(e.to_string()),
        }
    }
}

impl From<baton_plan::LoadError> for CliError {
    /// A plan file that cannot be read or parsed is bad input: the user named it.
    fn from(e: baton_plan::LoadError) -> Self {
        CliError::input(e.to_string())
    }
}

impl From<baton_plan::TrackError> for CliError {
    fn from(e: baton_plan::TrackError) -> Self {
        match e {
            baton_plan::TrackError::Store(s) => s.into(),
            baton_plan::TrackError::Transition { .. } => CliError::input(e.to_string()),
        }
    }
}

impl From<baton_worktree::WorktreeError> for CliError {
    fn from(e: baton_worktree::WorktreeError) -> Self {
        if e.is_bad_input() {
            CliError::input(e.to_string())
        } else {
            CliError::env(e.to_string())
        }
    }
}

pub type CliResult<T = u8> = Result<T, CliError>;

impl From<baton_tasks::TaskError> for CliError {
    fn from(e: baton_tasks::TaskError) -> Self {
        match e {
            baton_tasks::TaskError::Store(s) => s.into(),
            e if e.is_bad_input() => CliError::input(e.to_string()),
            e => CliError::env(e.to_string()),
        }
    }
}

impl From<baton_verify::gate::GateError> for CliError {
    fn from(e: baton_verify::gate::GateError) -> Self {
        if e.is_bad_input() {
            CliError::input(e.to_string())
        } else {
            CliError::env(e.to_string())
        }
    }
}
