//! The output cache in the loop: the inputs an attempt depends on, applying a hit to the
//! agent's branch and worktree, storing a success.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use baton_plan::{AgentId, BatchId, Execution, Plan, PlanId};
use baton_store::StateDir;

use super::{LoopHooks, open};
use crate::cache::CacheInputs;
use crate::commit::{self, AgentRecord};
use crate::hooks::AgentContext;
use crate::integrate::IntegrateError;

impl LoopHooks {
    /// What `agent`'s result depends on, starting from `base_tree`.
    pub fn cache_inputs(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        base_tree: String,
    ) -> Result<CacheInputs, IntegrateError> {
        let exec = self.tracker.load()?;
        cache_inputs_of(
            &self.state,
            &self.plan_id,
            &self.plan,
            Some(&exec),
            batch,
            agent,
            base_tree,
        )
    }

    /// Look the attempt up in the cache; on a hit, commit the cached tree on its branch
    /// (its worktree's files follow) and keep the cached outputs for later agents.
    pub fn try_cache(&self, ctx: &AgentContext) -> Result<bool, IntegrateError> {
        let (Some(cache), Some(worktree)) = (&self.cache, &ctx.worktree) else {
            return Ok(false);
        };
        let fail = |action: &str| {
            let action = action.to_owned();
            move |e: git2::Error| IntegrateError::Git {
                action,
                message: e.message().to_owned(),
            }
        };
        let wt = git2::Repository::open(worktree).map_err(fail("open the worktree"))?;
        let head = wt
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(fail("read the worktree's HEAD"))?;
        let inputs = self.cache_inputs(&ctx.batch, &ctx.agent, head.tree_id().to_string())?;
        self.cache_stats.lookups.fetch_add(1, Ordering::Relaxed);
        let hit = cache.lookup(ctx.agent.as_str(), &inputs);
        let applied = match &hit {
            Some(entry) => {
                let tree_id =
                    git2::Oid::from_str(&entry.tree).map_err(fail("read the cached tree id"))?;
                let tree = wt
                    .find_tree(tree_id)
                    .map_err(fail("find the cached tree"))?;
                let sig = commit::signature(&wt);
                let msg = format!(
                    "{}(from the output cache: an identical earlier run)\n",
                    commit::commit_message(
                        &self.plan_id,
                        &ctx.agent,
                        ctx.attempt,
                        entry.record.report.as_ref().map(|r| r.summary.as_str()),
                    )
                );
                let oid = wt
                    .commit(Some("HEAD"), &sig, &sig, &msg, &tree, &[&head])
                    .map_err(fail("commit the cached result"))?;
                let obj = wt.find_object(oid, None).map_err(fail("read the commit"))?;
                wt.reset(&obj, git2::ResetType::Hard, None)
                    .map_err(fail("update the worktree"))?;
                let mut record = entry.record.clone();
                record.attempt = ctx.attempt;
                record.commit = oid.to_string();
                record.save(&self.state, &self.plan_id, &ctx.agent)?;
                self.cache_stats.hits.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        };
        if let Ok(mut p) = self.pending.lock() {
            p.insert((ctx.agent.clone(), ctx.attempt), (inputs, applied));
        }
        self.event("cache", &ctx.batch, |e| {
            e.agent = Some(ctx.agent.to_string());
            e.success = Some(applied);
            e.details.insert("attempt".into(), ctx.attempt.to_string());
            e.details
                .insert("result".into(), if applied { "hit" } else { "miss" }.into());
        });
        Ok(applied)
    }

    /// After a successful attempt: remember its result for identical later runs.
    pub(super) fn store_in_cache(
        &self,
        ctx: &AgentContext,
        record: &AgentRecord,
    ) -> Result<(), IntegrateError> {
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        let Some((inputs, _)) = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&(ctx.agent.clone(), ctx.attempt)))
        else {
            return Ok(());
        };
        let repo = open(&self.repo)?;
        let tree = git2::Oid::from_str(&record.commit)
            .and_then(|o| repo.find_commit(o))
            .map(|c| c.tree_id().to_string())
            .map_err(|e| IntegrateError::Git {
                action: "read the agent's commit".into(),
                message: e.message().to_owned(),
            })?;
        cache.store(ctx.agent.as_str(), &inputs, tree, record.clone())?;
        Ok(())
    }
}

/// What `agent`'s result depends on, starting from `base_tree`, from the plan's state on
/// disk (`exec` is `None` before its first run). Reads only: `--explain-cache` uses it.
pub fn cache_inputs_of(
    state: &StateDir,
    plan_id: &PlanId,
    plan: &Plan,
    exec: Option<&Execution>,
    batch: &BatchId,
    agent: &AgentId,
    base_tree: String,
) -> Result<CacheInputs, IntegrateError> {
    let Some((_, a)) = plan.agent(agent) else {
        return Ok(CacheInputs::default());
    };
    let vars = super::vars_of(state, plan_id, plan, exec, batch, agent)?;
    let refs: BTreeMap<&str, String> = vars
        .placeholders
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let prompt = baton_plan::validate::render_command(std::slice::from_ref(&a.prompt), &refs)
        .pop()
        .unwrap_or_default();
    // upstream: every agent of the batches this one depends on, directly or not
    let mut upstream = BTreeMap::new();
    let ancestors = baton_plan::dag::ancestors(&plan.batches);
    if let Some(bi) = plan.batches.iter().position(|b| &b.id == batch) {
        for &ui in &ancestors[bi] {
            for ua in &plan.batches[ui].agents {
                let text = match AgentRecord::load(state, plan_id, &ua.id)? {
                    Some(r) => format!(
                        "{}\n{}",
                        r.report.map(|x| x.summary).unwrap_or_default(),
                        r.files.join("\n")
                    ),
                    None => String::new(),
                };
                upstream.insert(ua.id.to_string(), text);
            }
        }
    }
    Ok(CacheInputs {
        command: plan.command_of(a).unwrap_or_default().to_vec(),
        prompt,
        env: plan
            .profile_of(a)
            .map(|p| p.env.clone())
            .unwrap_or_default(),
        base_tree,
        upstream,
    })
}
