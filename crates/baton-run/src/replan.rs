//! What happens when a batch fails its gate: the policy (`on_gate_failure = "stop" |
//! "replan"`, `max_replans`) as a pure decision, and the preparation of a replan — each agent
//! the findings name starts again on top of the integration branch with the other agents'
//! work merged, so it redoes its part knowing what the others did.

use baton_plan::{AgentId, GateFailurePolicy, GateVerdict, PlanId};

use crate::integrate::{IntegrateError, MergeResult, merge_in_order};

/// What to do after a failed gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The batch fails; `why` says why no replan happens.
    Stop { why: String },
    /// Run these agents again (plan order).
    Rerun(Vec<AgentId>),
}

/// Decide after a failed gate. `batch_agents` is the batch's agents in plan order;
/// `replans` is how many replans the batch already had.
///
/// When the findings name several agents (two writers of one file), the first of them in
/// plan order keeps its work and the others redo theirs on top of it; a single named agent
/// (a scope violation, say) redoes its own.
pub fn decide(
    policy: GateFailurePolicy,
    max_replans: u32,
    replans: u32,
    verdict: &GateVerdict,
    batch_agents: &[AgentId],
) -> Decision {
    if policy == GateFailurePolicy::Stop {
        return Decision::Stop {
            why: "on_gate_failure is \"stop\"".to_owned(),
        };
    }
    if replans >= max_replans {
        return Decision::Stop {
            why: format!("the batch was replanned {replans} time(s), max_replans is {max_replans}"),
        };
    }
    let named: Vec<AgentId> = batch_agents
        .iter()
        .filter(|a| verdict.agents.contains(a))
        .cloned()
        .collect();
    match named.len() {
        0 => Decision::Stop {
            why: "the findings name no agent of the batch to send back".to_owned(),
        },
        1 => Decision::Rerun(named),
        _ => Decision::Rerun(named[1..].to_vec()),
    }
}

/// The text that replaces `{gate_findings}` in a replanned agent's prompt.
pub fn findings_text(verdict: &GateVerdict) -> String {
    let mut out = format!(
        "The gate after your batch failed at the {} step:\n",
        verdict.failed_step.as_deref().unwrap_or("gate")
    );
    for f in &verdict.findings {
        out.push_str("- ");
        out.push_str(f);
        out.push('\n');
    }
    out
}

/// Where a rerun agent starts: the integration tip with every agent's work merged except the
/// agents sent back. Returns the commit, or the files that do not merge.
pub fn rerun_base(
    repo: &git2::Repository,
    plan: &PlanId,
    batch: &baton_plan::BatchId,
    tip: git2::Oid,
    kept: &[(AgentId, git2::Oid)],
) -> Result<MergeResult, IntegrateError> {
    merge_in_order(repo, tip, kept, plan, batch)
}

/// Point `agent`'s branch (and its worktree's files, when it has one) at `base` so its next
/// attempt starts there. The old tip is kept under `refs/baton/<plan>/replaced/<agent>/<n>`,
/// so no commit is lost. The worktree must have nothing uncommitted (its work was committed
/// when the attempt ended); otherwise nothing is changed.
pub fn restart_agent_at(
    repo: &git2::Repository,
    plan: &PlanId,
    agent: &AgentId,
    branch: &str,
    worktree: Option<&std::path::Path>,
    base: git2::Oid,
    n: u32,
) -> Result<(), IntegrateError> {
    let fail = |action: String| {
        move |e: git2::Error| IntegrateError::Git {
            action,
            message: e.message().to_owned(),
        }
    };
    let name = format!("refs/heads/{branch}");
    let old = repo
        .find_reference(&name)
        .ok()
        .and_then(|r| r.target())
        .ok_or_else(|| IntegrateError::MissingBranch {
            agent: agent.clone(),
            branch: branch.to_owned(),
        })?;
    if let Some(dir) = worktree.filter(|d| d.is_dir()) {
        let wt = git2::Repository::open(dir).map_err(fail(format!("open {}", dir.display())))?;
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).include_ignored(false);
        let dirty = wt
            .statuses(Some(&mut opts))
            .map_err(fail("status".to_owned()))?
            .iter()
            .any(|s| s.status() != git2::Status::CURRENT);
        if dirty {
            return Err(IntegrateError::Git {
                action: format!("restart agent {agent}"),
                message: format!(
                    "{} has uncommitted changes; commit them before a replan",
                    dir.display()
                ),
            });
        }
    }
    repo.reference(
        &format!("refs/baton/{plan}/replaced/{agent}/{n}"),
        old,
        true,
        "baton: keep the work a replan replaces",
    )
    .map_err(fail(format!("keep the old tip of {branch}")))?;
    repo.reference_matching(&name, base, true, old, "baton: replan starts here")
        .map_err(fail(format!("move {branch}")))?;
    if let Some(dir) = worktree.filter(|d| d.is_dir()) {
        let wt = git2::Repository::open(dir).map_err(fail(format!("open {}", dir.display())))?;
        let commit = wt
            .find_object(base, None)
            .map_err(fail("read the new base".to_owned()))?;
        // the worktree is clean (checked above), so a hard reset loses nothing
        wt.reset(&commit, git2::ResetType::Hard, None)
            .map_err(fail(format!("update {}", dir.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    fn verdict(agents: &[&str]) -> GateVerdict {
        GateVerdict {
            at: "2026-01-01T00:00:00Z".into(),
            passed: false,
            failed_step: Some("gate".into()),
            findings: vec!["conflicts: multi_writer src/a.rs (a, b): both wrote it".into()],
            agents: agents.iter().map(|a| id(a)).collect(),
            report: None,
        }
    }

    #[test]
    fn stop_policy_never_reruns() {
        let d = decide(
            GateFailurePolicy::Stop,
            3,
            0,
            &verdict(&["a"]),
            &[id("a"), id("b")],
        );
        assert!(matches!(d, Decision::Stop { .. }), "{d:?}");
    }

    #[test]
    fn replan_keeps_the_first_named_agent_and_reruns_the_others_until_the_limit() {
        let batch = [id("a"), id("b"), id("c")];
        let v = verdict(&["c", "a", "outsider"]);
        assert_eq!(
            decide(GateFailurePolicy::Replan, 2, 1, &v, &batch),
            Decision::Rerun(vec![id("c")])
        );
        let d = decide(GateFailurePolicy::Replan, 2, 2, &v, &batch);
        assert!(
            matches!(&d, Decision::Stop { why } if why.contains("max_replans is 2")),
            "{d:?}"
        );
    }

    #[test]
    fn a_single_named_agent_redoes_its_own_work() {
        assert_eq!(
            decide(
                GateFailurePolicy::Replan,
                1,
                0,
                &verdict(&["b"]),
                &[id("a"), id("b")]
            ),
            Decision::Rerun(vec![id("b")])
        );
    }

    #[test]
    fn findings_naming_nobody_stop_the_batch() {
        let d = decide(GateFailurePolicy::Replan, 1, 0, &verdict(&[]), &[id("a")]);
        assert!(matches!(d, Decision::Stop { .. }), "{d:?}");
    }

    #[test]
    fn findings_text_lists_every_finding() {
        let t = findings_text(&verdict(&["a"]));
        assert!(t.contains("gate step"), "{t}");
        assert!(
            t.contains("- conflicts: multi_writer src/a.rs (a, b)"),
            "{t}"
        );
    }
}
