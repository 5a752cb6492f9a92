//! Committing an agent's work when an attempt ends, and reading its result file.
//!
//! Many agent CLIs leave their changes uncommitted. So that nothing is lost and the batch's
//! merge sees everything, whatever an attempt left in its worktree — tracked changes,
//! deletions, and untracked files git does not ignore — is committed on the agent's branch
//! with a message naming the plan, the agent and the attempt. Everything goes through git2;
//! no shell, no git binary.

use std::collections::BTreeMap;
use std::path::Path;

use baton_plan::{AgentId, PlanId};
use serde::{Deserialize, Serialize};

/// What an agent reported in its result file (`BATON_RESULT_FILE`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub summary: String,
    /// Free-form values for later agents and directors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{path}: {message}")]
    Git { path: String, message: String },
    #[error("result file {path}: {message}")]
    Result { path: String, message: String },
}

fn git_err(path: &Path) -> impl Fn(git2::Error) -> CommitError + '_ {
    move |e| CommitError::Git {
        path: path.display().to_string(),
        message: e.message().to_owned(),
    }
}

/// Read an agent's result file: JSON with a `summary` string and an optional `outputs`
/// object, or plain text (the whole text, trimmed, is the summary). `Ok(None)` when the agent
/// wrote no file (or an empty one).
pub fn read_result_file(path: &Path) -> Result<Option<AgentReport>, CommitError> {
    let bad = |message: String| CommitError::Result {
        path: path.display().to_string(),
        message,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            bad(format!(
                "not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        let summary = match value.get("summary") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("`summary` must be a string".to_owned())),
            None => return Err(bad("JSON result needs a `summary` string".to_owned())),
        };
        let outputs = match value.get("outputs") {
            None | Some(serde_json::Value::Null) => BTreeMap::new(),
            Some(serde_json::Value::Object(m)) => {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            Some(_) => return Err(bad("`outputs` must be an object".to_owned())),
        };
        return Ok(Some(AgentReport { summary, outputs }));
    }
    Ok(Some(AgentReport {
        summary: trimmed.to_owned(),
        outputs: BTreeMap::new(),
    }))
}

/// What [`commit_work`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new commit, or `None` when the worktree had nothing to commit.
    pub commit: Option<git2::Oid>,
    /// The branch's tip after the call.
    pub head: git2::Oid,
}

/// The commit message of an agent's work.
pub fn commit_message(
    plan: &PlanId,
    agent: &AgentId,
    attempt: u32,
    summary: Option<&str>,
) -> String {
    let mut msg = format!(
        "baton: {agent} attempt {attempt}\n\nplan {plan}, agent {agent}, attempt {attempt}\n"
    );
    if let Some(s) = summary.map(str::trim).filter(|s| !s.is_empty()) {
        msg.push('\n');
        msg.push_str(s);
        msg.push('\n');
    }
    msg
}

/// Commit everything the attempt left in `worktree` (tracked changes, deletions, untracked
/// files that are not ignored) on the branch checked out there. Refuses a detached HEAD, so
/// work never lands on a commit no branch holds. A worktree with nothing to commit is left
/// as it is.
pub fn commit_work(worktree: &Path, message: &str) -> Result<Committed, CommitError> {
    let err = git_err(worktree);
    let repo = git2::Repository::open(worktree).map_err(&err)?;
    let head_ref = repo.head().map_err(&err)?;
    if !head_ref.is_branch() {
        return Err(CommitError::Git {
            path: worktree.display().to_string(),
            message: "HEAD is detached; the agent's work must be on its branch".to_owned(),
        });
    }
    let head = head_ref.peel_to_commit().map_err(&err)?;
    let mut index = repo.index().map_err(&err)?;
    // add_all honours .gitignore (no FORCE flag); update_all records deletions
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(&err)?;
    index.update_all(["*"], None).map_err(&err)?;
    let tree_id = index.write_tree().map_err(&err)?;
    if tree_id == head.tree_id() {
        // nothing new; keep the index as written (it matches HEAD)
        index.write().map_err(&err)?;
        return Ok(Committed {
            commit: None,
            head: head.id(),
        });
    }
    index.write().map_err(&err)?;
    let tree = repo.find_tree(tree_id).map_err(&err)?;
    let sig = signature(&repo);
    let oid = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &[&head])
        .map_err(&err)?;
    Ok(Committed {
        commit: Some(oid),
        head: oid,
    })
}

/// The repository's configured identity, else baton's own.
pub fn signature(repo: &git2::Repository) -> git2::Signature<'static> {
    repo.signature()
        .map(|s| s.to_owned())
        .or_else(|_| git2::Signature::now("baton", "baton@localhost"))
        .unwrap_or_else(|_| {
            git2::Signature::new("baton", "baton@localhost", &git2::Time::new(0, 0))
                .expect("a fixed signature is valid")
        })
}

/// The files a line of work changed between `base` and `tip`, sorted.
pub fn changed_files(
    repo: &git2::Repository,
    base: git2::Oid,
    tip: git2::Oid,
) -> Result<Vec<String>, git2::Error> {
    let base_tree = repo.find_commit(base)?.tree()?;
    let tip_tree = repo.find_commit(tip)?.tree()?;
    let diff = repo.diff_tree_to_tree(Some(&base_tree), Some(&tip_tree), None)?;
    let mut out: Vec<String> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or(d.old_file().path()))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where the runner points `BATON_RESULT_FILE` for an attempt: beside its log,
/// `<state>/executions/<plan>/logs/<agent>/<attempt>.result.json`. Ids are validated slugs,
/// so the path stays inside the state directory.
pub fn result_file(
    state: &baton_store::StateDir,
    plan: &PlanId,
    agent: &AgentId,
    attempt: u32,
) -> std::path::PathBuf {
    state
        .agent_log(plan.as_str(), agent.as_str(), attempt)
        .with_extension("result.json")
}

/// `<state>/executions/<plan>/results/`.
pub fn results_dir(state: &baton_store::StateDir, plan: &PlanId) -> std::path::PathBuf {
    state.executions_dir().join(plan.as_str()).join("results")
}

/// What baton keeps of an agent's last finished attempt, for later agents' prompts
/// (`{outputs.<agent>}`, `{files.<agent>}`) and the output cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRecord {
    pub schema_version: u32,
    pub attempt: u32,
    /// The branch tip after its work was committed.
    pub commit: String,
    /// Files it changed, measured from git.
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<AgentReport>,
}

impl AgentRecord {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn path(
        state: &baton_store::StateDir,
        plan: &PlanId,
        agent: &AgentId,
    ) -> std::path::PathBuf {
        results_dir(state, plan).join(format!("{agent}.json"))
    }

    /// The agents with a record: one listing of the results directory (what every launch
    /// asks, so not a lookup per agent of the plan).
    pub fn recorded(
        state: &baton_store::StateDir,
        plan: &PlanId,
    ) -> std::collections::BTreeSet<String> {
        std::fs::read_dir(results_dir(state, plan))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some(name.strip_suffix(".json")?.to_owned())
            })
            .collect()
    }

    /// The record of `agent`, if it finished an attempt.
    pub fn load(
        state: &baton_store::StateDir,
        plan: &PlanId,
        agent: &AgentId,
    ) -> Result<Option<AgentRecord>, baton_store::StoreError> {
        let path = Self::path(state, plan, agent);
        if !path.exists() {
            return Ok(None);
        }
        baton_store::read_json(&path).map(Some)
    }

    pub fn save(
        &self,
        state: &baton_store::StateDir,
        plan: &PlanId,
        agent: &AgentId,
    ) -> Result<(), baton_store::StoreError> {
        // write_json makes the directory, walking only real ones below the state dir
        baton_store::write_json(&Self::path(state, plan, agent), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Option<AgentReport>, CommitError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.result.json");
        std::fs::write(&p, text).unwrap();
        read_result_file(&p)
    }

    #[test]
    fn result_files_json_plain_text_and_bad() {
        let r = read(r#"{"summary": "did it", "outputs": {"n": 3}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.summary, "did it");
        assert_eq!(r.outputs["n"], 3);
        let r = read("  plain words\n").unwrap().unwrap();
        assert_eq!(r.summary, "plain words");
        assert!(r.outputs.is_empty());
        assert_eq!(read("   \n").unwrap(), None);
        let missing = tempfile::tempdir().unwrap();
        assert_eq!(
            read_result_file(&missing.path().join("none")).unwrap(),
            None
        );
        for (bad, says) in [
            ("{\"summary\": 3}", "must be a string"),
            ("{\"outputs\": {}}", "needs a `summary`"),
            ("{\"summary\": \"s\", \"outputs\": []}", "must be an object"),
            ("{\"summary\": ", "line 1"),
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("1.result.json"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_message_names_plan_agent_and_attempt() {
        let plan = PlanId::new("OP-20260101-000000-0000000a").unwrap();
        let agent = AgentId::new("scan-api").unwrap();
        let m = commit_message(&plan, &agent, 2, Some("found 3 endpoints"));
        assert!(m.starts_with("baton: scan-api attempt 2\n"), "{m}");
        assert!(m.contains("plan OP-20260101-000000-0000000a, agent scan-api, attempt 2"));
        assert!(m.ends_with("found 3 endpoints\n"), "{m}");
    }
}
