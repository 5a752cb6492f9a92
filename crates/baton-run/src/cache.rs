//! The output cache: an agent whose inputs are unchanged — its command, its rendered prompt
//! (upstream outputs included), its profile's environment values, the tree it starts from and
//! its upstream agents' results — reuses its earlier successful result (the tree it left and
//! its result file) instead of running again.
//!
//! The key is a content hash of those inputs; each input is also hashed on its own and kept
//! with the entry, so a miss can say which input changed ([`Cache::explain`]). Only successes
//! are stored; entries expire after a TTL and the oldest go first beyond a size cap. Entries
//! live in `<state>/cache/<key>.json`, the last inputs seen per agent in
//! `<state>/cache/agents/<agent>.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::commit::AgentRecord;

/// What an agent's result depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheInputs {
    /// The command as written in the plan (before placeholders are filled).
    pub command: Vec<String>,
    /// The prompt with every placeholder filled.
    pub prompt: String,
    /// The profile's environment values.
    pub env: BTreeMap<String, String>,
    /// The tree the agent starts from.
    pub base_tree: String,
    /// Upstream agents' results (summary and files), by agent.
    pub upstream: BTreeMap<String, String>,
}

fn hash(bytes: &[u8]) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .map(|o| o.to_string())
        .unwrap_or_default()
}

impl CacheInputs {
    /// Each input's own hash, by name.
    pub fn parts(&self) -> BTreeMap<String, String> {
        let json = |v: &dyn erased::Ser| v.json();
        [
            ("command", json(&self.command)),
            ("prompt", self.prompt.clone()),
            ("env", json(&self.env)),
            ("base_tree", self.base_tree.clone()),
            ("upstream", json(&self.upstream)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), hash(v.as_bytes())))
        .collect()
    }

    /// The cache key: a hash over every part, for `agent`.
    pub fn key(&self, agent: &str) -> String {
        let mut all = format!("baton-cache-v1\nagent {agent}\n");
        for (k, v) in self.parts() {
            all.push_str(&format!("{k} {v}\n"));
        }
        hash(all.as_bytes())
    }
}

mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// One stored success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheEntry {
    pub schema_version: u32,
    pub key: String,
    pub agent: String,
    pub parts: BTreeMap<String, String>,
    /// The tree the agent left (its committed work).
    pub tree: String,
    pub record: AgentRecord,
    pub created_ms: u64,
}

/// What [`Cache::explain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation {
    /// An entry with exactly these inputs exists (and has not expired).
    Hit,
    /// The last inputs recorded for the agent differ in these parts.
    Changed(Vec<String>),
    /// Same inputs as last time, but no usable entry (the last run failed, or it expired).
    NoEntry,
    /// Nothing was ever recorded for the agent.
    NeverSeen,
}

#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
    pub ttl: Duration,
    pub max_entries: usize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Cache {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn new(state: &baton_store::StateDir, ttl: Duration, max_entries: usize) -> Cache {
        Cache {
            dir: state.root().join("cache"),
            ttl,
            max_entries,
        }
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn seen_path(&self, agent: &str) -> PathBuf {
        self.dir.join("agents").join(format!("{agent}.json"))
    }

    fn fresh(&self, e: &CacheEntry) -> bool {
        now_ms().saturating_sub(e.created_ms)
            <= u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// The stored success for these inputs, if any and not expired. A damaged entry is a
    /// miss (and is left for [`Cache::store`] to replace).
    pub fn lookup(&self, agent: &str, inputs: &CacheInputs) -> Option<CacheEntry> {
        let key = inputs.key(agent);
        let path = self.entry_path(&key);
        let entry: CacheEntry = baton_store::read_json(&path).ok()?;
        (entry.key == key && entry.agent == agent && self.fresh(&entry)).then_some(entry)
    }

    /// Remember the inputs an agent ran with (for [`Cache::explain`]), success or not.
    pub fn note_inputs(
        &self,
        agent: &str,
        inputs: &CacheInputs,
    ) -> Result<(), baton_store::StoreError> {
        // write_json makes the directory, walking only real ones below the state dir
        baton_store::write_json(&self.seen_path(agent), &inputs.parts())
    }

    /// Store a success, then drop expired entries and the oldest beyond the cap.
    pub fn store(
        &self,
        agent: &str,
        inputs: &CacheInputs,
        tree: String,
        record: AgentRecord,
    ) -> Result<(), baton_store::StoreError> {
        let key = inputs.key(agent);
        let entry = CacheEntry {
            schema_version: Self::SCHEMA_VERSION,
            key: key.clone(),
            agent: agent.to_owned(),
            parts: inputs.parts(),
            tree,
            record,
            created_ms: now_ms(),
        };
        baton_store::write_json(&self.entry_path(&key), &entry)?;
        self.note_inputs(agent, inputs)?;
        baton_store::write_atomic(&self.last_path(agent), key.as_bytes())?;
        self.prune();
        Ok(())
    }

    /// Drop expired entries, then the oldest beyond `max_entries`. Best effort: a file that
    /// cannot be read or removed is left.
    pub fn prune(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(u64, PathBuf)> = Vec::new();
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match baton_store::read_json::<CacheEntry>(&path) {
                Ok(entry) if self.fresh(&entry) => entries.push((entry.created_ms, path)),
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => {}
            }
        }
        if entries.len() > self.max_entries {
            entries.sort();
            let excess = entries.len() - self.max_entries;
            for (_, path) in entries.into_iter().take(excess) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn last_path(&self, agent: &str) -> PathBuf {
        self.dir.join("agents").join(format!("{agent}.last"))
    }

    /// Drop the last success stored for `agent`: a gate rejected that work, so it must not
    /// be replayed. Returns whether an entry was removed.
    pub fn forget_last(&self, agent: &str) -> bool {
        let Ok(key) = std::fs::read_to_string(self.last_path(agent)) else {
            return false;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
        std::fs::remove_file(self.entry_path(key)).is_ok()
    }

    /// Why would `agent` with `inputs` hit or miss?
    pub fn explain(&self, agent: &str, inputs: &CacheInputs) -> Explanation {
        if self.lookup(agent, inputs).is_some() {
            return Explanation::Hit;
        }
        let Ok(seen) = baton_store::read_json::<BTreeMap<String, String>>(&self.seen_path(agent))
        else {
            return Explanation::NeverSeen;
        };
        let now = inputs.parts();
        let changed: Vec<String> = now
            .iter()
            .filter(|(k, v)| seen.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        if changed.is_empty() {
            Explanation::NoEntry
        } else {
            Explanation::Changed(changed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> CacheInputs {
        CacheInputs {
            command: vec!["sh".into(), "agent.sh".into(), "{prompt}".into()],
            prompt: "do it".into(),
            env: [("MODEL".to_owned(), "small".to_owned())].into(),
            base_tree: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
            upstream: BTreeMap::new(),
        }
    }

    fn cache(dir: &std::path::Path) -> Cache {
        Cache::new(
            &baton_store::StateDir::new(dir),
            Duration::from_secs(3600),
            2,
        )
    }

    #[test]
    fn every_input_is_part_of_the_key() {
        let base = inputs();
        let key = base.key("a");
        assert_ne!(key, base.key("b"), "the agent");
        type Change = (&'static str, fn(&mut CacheInputs));
        let variants: [Change; 5] = [
            ("command", |i| i.command.push("-v".into())),
            ("prompt", |i| i.prompt.push('!')),
            ("env", |i| {
                i.env.insert("MODEL".into(), "large".into());
            }),
            ("base_tree", |i| i.base_tree = "00".into()),
            ("upstream", |i| {
                i.upstream.insert("x".into(), "summary".into());
            }),
        ];
        for (name, change) in variants {
            let mut other = base.clone();
            change(&mut other);
            assert_ne!(other.key("a"), key, "{name} is not in the key");
            let changed: Vec<String> = other
                .parts()
                .iter()
                .filter(|(k, v)| base.parts().get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .collect();
            assert_eq!(changed, [name]);
        }
    }

    #[test]
    fn hit_miss_explain_and_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path());
        let i = inputs();
        assert_eq!(c.explain("a", &i), Explanation::NeverSeen);
        assert!(c.lookup("a", &i).is_none());
        c.note_inputs("a", &i).unwrap();
        assert_eq!(
            c.explain("a", &i),
            Explanation::NoEntry,
            "a failure stores nothing"
        );
        c.store("a", &i, "tree".into(), AgentRecord::default())
            .unwrap();
        assert_eq!(c.lookup("a", &i).unwrap().tree, "tree");
        assert_eq!(c.explain("a", &i), Explanation::Hit);
        let mut changed = i.clone();
        changed.prompt = "do it differently".into();
        assert_eq!(
            c.explain("a", &changed),
            Explanation::Changed(vec!["prompt".into()])
        );
        // the cap keeps the newest two
        for agent in ["b", "c"] {
            std::thread::sleep(Duration::from_millis(2));
            c.store(agent, &i, "t".into(), AgentRecord::default())
                .unwrap();
        }
        assert!(c.lookup("a", &i).is_none(), "the oldest entry went first");
        assert!(c.lookup("b", &i).is_some() && c.lookup("c", &i).is_some());
        // an expired entry is a miss
        let expired = Cache {
            ttl: Duration::ZERO,
            ..c.clone()
        };
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.lookup("c", &i).is_none());
    }
}
