//! Finding the Slurm cluster the tests submit to: `SLURM_CONF`, else the one
//! `cargo xtask slurm up` starts (`/tmp/baton-slurm/slurm.conf`), else `/etc/slurm`. Without a
//! cluster that answers, Slurm tests report themselves skipped — except under `CI=true`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use baton_slurm::Slurm;

const XTASK_CONF: &str = "/tmp/baton-slurm/slurm.conf";

/// The cluster's client, or `None` (the test returns; skipped with the reason).
pub fn cluster(test: &str) -> Option<Slurm> {
    let conf = std::env::var_os("SLURM_CONF")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(XTASK_CONF)).filter(|p| p.exists()));
    let mut probe = Command::new("sinfo");
    probe
        .arg("--noheader")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(c) = &conf {
        probe.env("SLURM_CONF", c);
    }
    if probe.status().is_ok_and(|s| s.success()) {
        return Some(Slurm {
            bin_dir: None,
            conf,
        });
    }
    let reason = format!(
        "{test}: no Slurm cluster answers `sinfo`; start one with `cargo xtask slurm up` (needs `apt-get install slurm-wlm munge`) or set SLURM_CONF"
    );
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("{reason}; CI=true, so a missing cluster is a failure: .ci/run must start it");
    }
    baton_tests::skip(&reason);
    None
}

/// Every job the controller knows by this name (any state): the oracle for "submitted once".
pub fn jobs_named(slurm: &Slurm, name: &str) -> Vec<String> {
    slurm
        .find_by_name(name)
        .expect("squeue")
        .into_iter()
        .map(|j| j.job_id)
        .collect()
}

/// Long tests (a real one-minute Slurm time limit) run when `BATON_SLURM_SLOW=1` (CI sets it).
pub fn slow_enabled(test: &str) -> bool {
    if std::env::var_os("BATON_SLURM_SLOW").is_some_and(|v| v == "1") {
        return true;
    }
    baton_tests::skip(&format!(
        "{test}: waits out a real Slurm time limit (>= 1 minute); set BATON_SLURM_SLOW=1 to run it"
    ));
    false
}
