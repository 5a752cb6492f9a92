//! `cargo xtask slurm up|status|down`: a single-node Slurm cluster on this machine, for the
//! Slurm executor's tests and for trying it out; `cargo xtask slurm bench`: agents through
//! Slurm vs the local executor (see `slurm/bench.rs`).
//!
//! Everything lives in one private directory (default `/tmp/baton-slurm`, or `--dir DIR`):
//! `slurm.conf` generated from what `slurmd -C` reports for this machine, a munge key, the
//! munge socket, state, spool, logs and pid files. Nothing outside it is written; the daemons
//! are Debian's (`apt-get install slurm-wlm munge`). Clients find the cluster through
//! `SLURM_CONF=<dir>/slurm.conf`, which `up` prints.
//!
//! `up` is idempotent (daemons already running are kept) and returns once the node accepts
//! jobs; `down` stops only daemons whose pid file is in the directory and whose command line
//! names it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub mod bench;

const DEFAULT_DIR: &str = "/tmp/baton-slurm";
/// Jobs that may share one core: agents mostly wait on the network, so a one-machine cluster
/// runs more of them than it has cores.
const OVERSUBSCRIBE: u32 = 16;
const PARTITION: &str = "baton";

pub fn run(args: &[String]) -> ExitCode {
    let mut dir = PathBuf::from(DEFAULT_DIR);
    let mut cmd = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "bench" if cmd.is_none() => {
                let rest: Vec<String> = it.cloned().collect();
                return bench::run(&dir.join("slurm.conf"), &rest);
            }
            "--dir" => match it.next() {
                Some(d) => dir = PathBuf::from(d),
                None => return usage("--dir needs a directory"),
            },
            "up" | "status" | "down" if cmd.is_none() => cmd = Some(a.clone()),
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let cluster = Cluster { dir };
    let result = match cmd.as_deref() {
        Some("up") => cluster.up(),
        Some("status") => cluster.status(),
        Some("down") => cluster.down(),
        _ => return usage("missing command"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("error: {why}");
    eprintln!(
        "usage: cargo xtask slurm [--dir DIR] up|status|down|bench   (default DIR: {DEFAULT_DIR})"
    );
    ExitCode::from(2)
}

/// A daemon `up` starts: its name in `/proc/<pid>/comm` and its pid file.
#[derive(Clone, Copy)]
enum Daemon {
    Munged,
    Slurmctld,
    Slurmd,
}

impl Daemon {
    const ALL: [Daemon; 3] = [Daemon::Munged, Daemon::Slurmctld, Daemon::Slurmd];
    fn name(self) -> &'static str {
        match self {
            Daemon::Munged => "munged",
            Daemon::Slurmctld => "slurmctld",
            Daemon::Slurmd => "slurmd",
        }
    }
}

struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }
    fn socket(&self) -> PathBuf {
        self.dir.join("munge/munge.sock")
    }
    fn pid_file(&self, d: Daemon) -> PathBuf {
        self.dir.join(format!("{}.pid", d.name()))
    }

    fn up(&self) -> Result<ExitCode, String> {
        for program in ["munged", "slurmctld", "slurmd", "sinfo", "sbatch"] {
            if !on_path(program) {
                return Err(format!(
                    "`{program}` is not installed; run `apt-get install slurm-wlm munge` (as root)"
                ));
            }
        }
        for sub in ["munge", "state", "spool", "log"] {
            mkdir(&self.dir.join(sub))?;
        }
        // the socket's directory must be searchable by job users; the key is the secret
        set_mode(&self.dir, 0o755)?;
        set_mode(&self.dir.join("munge"), 0o755)?;
        let key = self.dir.join("munge/munge.key");
        if !key.exists() {
            let mut bytes = vec![0u8; 1024];
            fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
            write_file(&key, &bytes, 0o600)?;
        }
        let conf = self.render_conf()?;
        let changed = fs::read_to_string(self.conf()).ok().as_deref() != Some(conf.as_str());
        if changed {
            write_file(&self.conf(), conf.as_bytes(), 0o644)?;
        }

        if self.running(Daemon::Munged).is_none() {
            let s = self.socket();
            let d = self.dir.display();
            spawn(
                Command::new("munged").args([
                    "--force".to_owned(),
                    "--num-threads=10".to_owned(),
                    format!("--key-file={d}/munge/munge.key"),
                    format!("--socket={}", s.display()),
                    format!("--pid-file={d}/munged.pid"),
                    format!("--log-file={d}/log/munged.log"),
                    format!("--seed-file={d}/munge/munged.seed"),
                ]),
                "munged",
            )?;
            println!("started munged");
        }
        let conf_path = self.conf();
        let conf_arg = conf_path.to_string_lossy().into_owned();
        let mut started_slurm = false;
        if self.running(Daemon::Slurmctld).is_none() {
            spawn(
                Command::new("slurmctld").args(["-f", &conf_arg]),
                "slurmctld",
            )?;
            println!("started slurmctld");
            started_slurm = true;
        }
        if self.running(Daemon::Slurmd).is_none() {
            spawn(Command::new("slurmd").args(["-f", &conf_arg]), "slurmd")?;
            println!("started slurmd");
            started_slurm = true;
        }
        if changed && !started_slurm {
            let _ = self.client("scontrol").arg("reconfigure").status();
        }
        let state = self.wait_ready(Duration::from_secs(60))?;
        println!("slurm: node {} is {state}", hostname());
        println!("export SLURM_CONF={}", conf_path.display());
        Ok(ExitCode::SUCCESS)
    }

    fn render_conf(&self) -> Result<String, String> {
        let out = Command::new("slurmd")
            .arg("-C")
            .output()
            .map_err(|e| format!("cannot run `slurmd -C`: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| -> Option<u64> {
            text.split_whitespace()
                .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        let cpus = field("CPUs").ok_or_else(|| format!("`slurmd -C` printed no CPUs: {text}"))?;
        let mem = field("RealMemory").unwrap_or(1024);
        // leave the system some memory, so slurmd never finds less than configured
        let mem = mem.saturating_mul(9) / 10;
        let host = hostname();
        let d = self.dir.display();
        Ok(format!(
            "# generated by `cargo xtask slurm up`: a single-node cluster for baton's tests\n\
             ClusterName=baton\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={d}/munge/munge.sock\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\n\
             SlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             MpiDefault=none\n\
             SwitchType=switch/none\n\
             SchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             ReturnToService=2\n\
             # finished jobs stay known to the controller for an hour (no accounting database)\n\
             MinJobAge=3600\n\
             KillWait=5\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN\n\
             PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:{OVERSUBSCRIBE}\n"
        ))
    }

    /// Wait until the node takes jobs; a node left down by an earlier run is resumed.
    fn wait_ready(&self, limit: Duration) -> Result<String, String> {
        let started = Instant::now();
        let mut resumed = false;
        loop {
            let state = self.node_state();
            match state.as_deref() {
                Some(s) if ["idle", "mixed", "allocated"].contains(&s.trim_end_matches('*')) => {
                    return Ok(s.to_owned());
                }
                Some(s) if !resumed && (s.starts_with("down") || s.starts_with("drain")) => {
                    let _ = self
                        .client("scontrol")
                        .args([
                            "update",
                            &format!("nodename={}", hostname()),
                            "state=resume",
                        ])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    resumed = true;
                }
                _ => {}
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "the node is not ready after {}s (state: {}); see {}/log/",
                    limit.as_secs(),
                    state.as_deref().unwrap_or("no answer"),
                    self.dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn node_state(&self) -> Option<String> {
        let out = self
            .client("sinfo")
            .args(["-h", "-N", "-o", "%T"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !s.is_empty()).then_some(s)
    }

    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    fn status(&self) -> Result<ExitCode, String> {
        println!("directory: {}", self.dir.display());
        let mut all = true;
        for d in Daemon::ALL {
            match self.running(d) {
                Some(pid) => println!("{:<10} running (pid {pid})", d.name()),
                None => {
                    println!("{:<10} stopped", d.name());
                    all = false;
                }
            }
        }
        if all {
            println!(
                "node       {}",
                self.node_state().unwrap_or_else(|| "no answer".into())
            );
            let out = self
                .client("squeue")
                .args(["-h", "-o", "%i %T %j"])
                .output()
                .map_err(|e| format!("cannot run squeue: {e}"))?;
            let jobs = String::from_utf8_lossy(&out.stdout);
            println!("jobs       {} queued or running", jobs.lines().count());
            for line in jobs.lines() {
                println!("  {line}");
            }
            println!("export SLURM_CONF={}", self.conf().display());
        }
        Ok(if all {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    fn down(&self) -> Result<ExitCode, String> {
        for d in [Daemon::Slurmd, Daemon::Slurmctld, Daemon::Munged] {
            let Some(pid) = self.running(d) else {
                continue;
            };
            // SIGTERM: each daemon shuts down cleanly (slurmctld saves its state)
            let Ok(pid_t) = libc::pid_t::try_from(pid) else {
                continue;
            };
            let _ = nix_kill(pid_t);
            let started = Instant::now();
            while self.running(d) == Some(pid) && started.elapsed() < Duration::from_secs(15) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if self.running(d) == Some(pid) {
                return Err(format!("{} (pid {pid}) did not stop", d.name()));
            }
            println!("stopped {}", d.name());
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The daemon's pid, when its pid file names a live process of that name whose command line
    /// mentions this directory (a reused pid is never taken for the daemon).
    fn running(&self, d: Daemon) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file(d))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let dir = self.dir.to_string_lossy();
        let mentions = String::from_utf8_lossy(&cmdline).contains(dir.as_ref());
        (comm.trim() == d.name() && mentions).then_some(pid)
    }
}

#[expect(unsafe_code, reason = "kill(2) on a pid just checked to be our daemon")]
fn nix_kill(pid: libc::pid_t) -> i32 {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGTERM) }
}

fn spawn(cmd: &mut Command, name: &str) -> Result<(), String> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    if !status.success() {
        return Err(format!("{name} failed to start ({status}); see its log"));
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|p| p.join(program).is_file())
    })
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().split('.').next().unwrap_or("localhost").to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn mkdir(p: &Path) -> Result<(), String> {
    fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", p.display()))
}

fn write_file(p: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let tmp = p.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    set_mode(&tmp, mode)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, p).map_err(|e| format!("cannot write {}: {e}", p.display()))
}
