//! `[executor]`: where agents run, in `.config/baton.toml` or a plan (the plan wins field by
//! field). Pure data and pure checks: `local` needs nothing; `slurm` takes a partition, an
//! account, cpus and memory per agent, extra `sbatch` arguments as argv, and per-agent
//! overrides under `[executor.agents.<agent-id>]`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::ids::AgentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// Process groups on this machine (the default).
    #[default]
    Local,
    /// One Slurm job per attempt.
    Slurm,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        }
    }
}

/// Resources and placement of one agent's jobs; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// CPUs per agent (`--cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory per agent: `"512M"`, `"4G"`, or a number of MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Extra `sbatch` arguments, one argv element each (`["--qos=high", "--constraint=ssd"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbatch_args: Option<Vec<String>>,
}

/// The `[executor]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ExecutorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbatch_args: Option<Vec<String>>,
    /// How often the Slurm executor asks the controller about its jobs (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<HumanDuration>,
    /// Per-agent overrides, by agent id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, JobSettings>,
}

/// Memory in MiB, written `"512M"`, `"4G"`, `"1T"` or as a number of MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MemoryRepr", into = "MemoryRepr")]
pub struct Memory {
    pub mib: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum MemoryRepr {
    Mib(u64),
    Text(String),
}

impl TryFrom<MemoryRepr> for Memory {
    type Error = String;
    fn try_from(r: MemoryRepr) -> Result<Memory, String> {
        let mib = match r {
            MemoryRepr::Mib(n) => n,
            MemoryRepr::Text(t) => parse_memory(&t)?,
        };
        if mib == 0 {
            return Err("memory must be more than 0".to_owned());
        }
        Ok(Memory { mib })
    }
}

impl From<Memory> for MemoryRepr {
    fn from(m: Memory) -> MemoryRepr {
        MemoryRepr::Text(format!("{}M", m.mib))
    }
}

fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid memory {text:?}: write a size such as \"512M\" or \"4G\""))?;
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "M" | "MB" | "MIB" => 1,
        "G" | "GB" | "GIB" => 1024,
        "T" | "TB" | "TIB" => 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid memory {text:?}: the unit must be M, G or T"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("invalid memory {text:?}: too large"))
}

/// Options baton sets on every job itself; in `sbatch_args` they would contradict it.
const RESERVED: &[&str] = &[
    "--output",
    "-o",
    "--error",
    "-e",
    "--input",
    "-i",
    "--chdir",
    "-D",
    "--time",
    "-t",
    "--job-name",
    "-J",
    "--parsable",
    "--wrap",
    "--array",
    "-a",
    "--export",
    "--wait",
    "-W",
    "--requeue",
    "--no-requeue",
    "--dependency",
    "-d",
    "--partition",
    "-p",
    "--account",
    "-A",
    "--cpus-per-task",
    "-c",
    "--mem",
    "--open-mode",
    "--test-only",
    "--hold",
    "-H",
];

impl ExecutorSettings {
    /// `self` with every field `over` sets replacing it (a plan over the config file).
    pub fn overlay(&self, over: &ExecutorSettings) -> ExecutorSettings {
        let mut agents = self.agents.clone();
        for (id, job) in &over.agents {
            let merged = agents
                .get(id)
                .map_or_else(|| job.clone(), |base| base.overlay(job));
            agents.insert(id.clone(), merged);
        }
        ExecutorSettings {
            kind: over.kind.or(self.kind),
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            cpus: over.cpus.or(self.cpus),
            memory: over.memory.or(self.memory),
            sbatch_args: over
                .sbatch_args
                .clone()
                .or_else(|| self.sbatch_args.clone()),
            poll_interval: over.poll_interval.or(self.poll_interval),
            agents,
        }
    }

    pub fn kind(&self) -> ExecutorKind {
        self.kind.unwrap_or_default()
    }

    /// What one agent's jobs get: the section's values with the agent's overrides on top.
    pub fn job_for(&self, agent: &str) -> JobSettings {
        let base = JobSettings {
            partition: self.partition.clone(),
            account: self.account.clone(),
            cpus: self.cpus,
            memory: self.memory,
            sbatch_args: self.sbatch_args.clone(),
        };
        match self.agents.get(agent) {
            Some(over) => base.overlay(over),
            None => base,
        }
    }

    /// Every problem with these settings as `(subject, message)`, subjects like
    /// `executor.sbatch_args[1]`. `known_agents`, when given, are the ids per-agent overrides
    /// may name. Pure.
    pub fn problems(&self, known_agents: Option<&[&str]>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let top = JobSettings {
            partition: self.partition.clone(),
            account: self.account.clone(),
            cpus: self.cpus,
            memory: self.memory,
            sbatch_args: self.sbatch_args.clone(),
        };
        top.check("executor", &mut out);
        if let Some(p) = self.poll_interval
            && p.0.is_zero()
        {
            out.push((
                "executor.poll_interval".to_owned(),
                "must be more than 0 (e.g. \"1s\")".to_owned(),
            ));
        }
        for (id, job) in &self.agents {
            let subject = format!("executor.agents.{id}");
            if AgentId::new(id).is_err() {
                out.push((subject.clone(), format!("{id:?} is not a valid agent id")));
            } else if let Some(known) = known_agents
                && !known.contains(&id.as_str())
            {
                out.push((
                    subject.clone(),
                    format!("the plan has no agent {id:?}; fix the id or remove the override"),
                ));
            }
            job.check(&subject, &mut out);
        }
        if self.kind() == ExecutorKind::Local && self.has_slurm_settings() {
            out.push((
                "executor.kind".to_owned(),
                "Slurm settings are given but kind is \"local\"; set kind = \"slurm\" or remove them"
                    .to_owned(),
            ));
        }
        out
    }

    fn has_slurm_settings(&self) -> bool {
        self.partition.is_some()
            || self.account.is_some()
            || self.sbatch_args.is_some()
            || self.poll_interval.is_some()
            || self
                .agents
                .values()
                .any(|a| a.partition.is_some() || a.account.is_some() || a.sbatch_args.is_some())
    }
}

impl JobSettings {
    fn overlay(&self, over: &JobSettings) -> JobSettings {
        JobSettings {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            cpus: over.cpus.or(self.cpus),
            memory: over.memory.or(self.memory),
            sbatch_args: over
                .sbatch_args
                .clone()
                .or_else(|| self.sbatch_args.clone()),
        }
    }

    fn check(&self, at: &str, out: &mut Vec<(String, String)>) {
        for (field, value) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = value
                && (v.is_empty()
                    || v.starts_with('-')
                    || v.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                out.push((
                    format!("{at}.{field}"),
                    format!("{v:?} is not a Slurm {field} name (no spaces, not starting with '-')"),
                ));
            }
        }
        if self.cpus == Some(0) {
            out.push((format!("{at}.cpus"), "must be at least 1".to_owned()));
        }
        for (i, arg) in self.sbatch_args.iter().flatten().enumerate() {
            let subject = format!("{at}.sbatch_args[{i}]");
            if !arg.starts_with('-') || arg == "-" || arg == "--" {
                out.push((
                    subject,
                    format!(
                        "{arg:?} is not an option; write each option with its value as one element, e.g. \"--qos=high\""
                    ),
                ));
                continue;
            }
            let name = arg.split('=').next().unwrap_or(arg);
            // short options may carry their value glued on: `-t10`
            let short = (!arg.starts_with("--") && arg.len() > 2).then(|| &arg[..2]);
            if let Some(r) = RESERVED.iter().find(|r| **r == name || Some(**r) == short) {
                out.push((
                    subject,
                    format!(
                        "{arg:?}: baton sets {r} itself (use the executor's fields or the agent's timeout); remove it"
                    ),
                ));
            } else if arg.chars().any(char::is_control) {
                out.push((subject, format!("{arg:?} contains a control character")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ExecutorSettings, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn memory_units() {
        let s = parse("memory = \"4G\"").unwrap();
        assert_eq!(s.memory, Some(Memory { mib: 4096 }));
        assert_eq!(
            parse("memory = 300").unwrap().memory,
            Some(Memory { mib: 300 })
        );
        assert!(parse("memory = \"4Q\"").unwrap_err().contains("unit"));
        assert!(parse("memory = \"0\"").unwrap_err().contains("more than 0"));
    }

    #[test]
    fn unknown_fields_and_kinds_are_errors() {
        assert!(parse("kind = \"k8s\"").is_err());
        assert!(parse("partitoin = \"x\"").is_err());
        assert!(parse("[agents.a]\nqos = \"x\"").is_err());
    }

    #[test]
    fn reserved_and_malformed_sbatch_args() {
        let s = parse(
            "kind = \"slurm\"\nsbatch_args = [\"--qos=high\", \"--output=x\", \"-t10\", \"qos\", \"--chdir\"]",
        )
        .unwrap();
        let p = s.problems(None);
        let subjects: Vec<&str> = p.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "executor.sbatch_args[1]",
                "executor.sbatch_args[2]",
                "executor.sbatch_args[3]",
                "executor.sbatch_args[4]"
            ]
        );
    }

    #[test]
    fn per_agent_overrides() {
        let s = parse(
            "kind = \"slurm\"\ncpus = 2\npartition = \"p\"\n[agents.big]\ncpus = 8\nmemory = \"16G\"\n[agents.ghost]\ncpus = 1",
        )
        .unwrap();
        let big = s.job_for("big");
        assert_eq!((big.cpus, big.partition.as_deref()), (Some(8), Some("p")));
        assert_eq!(s.job_for("other").cpus, Some(2));
        let p = s.problems(Some(&["big"]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "executor.agents.ghost");
    }

    #[test]
    fn overlay_prefers_the_plan() {
        let config = parse("kind = \"slurm\"\npartition = \"a\"\ncpus = 2").unwrap();
        let plan = parse("partition = \"b\"").unwrap();
        let s = config.overlay(&plan);
        assert_eq!(
            (s.kind(), s.partition.as_deref(), s.cpus),
            (ExecutorKind::Slurm, Some("b"), Some(2))
        );
    }

    #[test]
    fn slurm_fields_with_local_kind_are_an_error() {
        let s = parse("partition = \"a\"").unwrap();
        assert_eq!(s.problems(None)[0].0, "executor.kind");
        assert!(
            parse("cpus = 0\nkind = \"slurm\"").unwrap().problems(None)[0]
                .1
                .contains("at least 1")
        );
    }
}
