//! Fixtures for baton's tests: real git repositories in temp dirs with an isolated git config,
//! fixed authors and dates, so every run sees the same commits.
//!
//! Used by the end-to-end tests in `it/` and by other crates' tests (as a dev-dependency).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment every git and baton process in tests runs with: no global or system
/// config, a fixed identity, fixed dates, no pager, no prompts, English messages.
pub fn isolate(cmd: &mut Command, home: &Path) {
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
        "NO_COLOR",
        "CLICOLOR_FORCE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Baton Test")
        .env("GIT_AUTHOR_EMAIL", "test@baton.invalid")
        .env("GIT_COMMITTER_NAME", "Baton Test")
        .env("GIT_COMMITTER_EMAIL", "test@baton.invalid")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .env("TZ", "UTC");
}

/// A real git repository in a temp dir, on branch `main`.
pub struct TestRepo {
    // kept for its Drop, which removes the directory
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    clock: AtomicU32,
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRepo {
    /// An empty repository (no commits) at `<tmp>/repo`.
    pub fn empty() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("baton-test-")
            .tempdir()
            .expect("create temp dir");
        // canonical, so paths printed by git and by baton compare equal
        let base = tmp.path().canonicalize().expect("canonicalize temp dir");
        let root = base.join("repo");
        let home = base.join("home");
        std::fs::create_dir_all(&root).expect("create repo dir");
        std::fs::create_dir_all(&home).expect("create home dir");
        let repo = TestRepo {
            _tmp: tmp,
            root,
            home,
            clock: AtomicU32::new(0),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo.git(&["config", "core.autocrlf", "false"]);
        repo
    }

    /// A repository with one commit holding `README.md`.
    pub fn new() -> Self {
        let repo = Self::empty();
        repo.write("README.md", "# test repo\n");
        repo.commit_all("initial commit");
        repo
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A directory beside the repository for worktrees and other scratch.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.root.parent().expect("repo has a parent").join(name);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        p
    }

    /// The HOME the isolated environment uses.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// A command for `program` in `dir` with the isolated environment and the next fixed date.
    pub fn command(&self, program: impl AsRef<OsStr>, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        isolate(&mut cmd, &self.home);
        // every command gets its own minute so commit order is stable and dates are fixed
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let date = format!("2026-01-01T{:02}:{:02}:00Z", (tick / 60) % 24, tick % 60);
        cmd.env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .current_dir(dir);
        cmd
    }

    /// Run git in the repository; panics with git's stderr on failure. Returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.root, args)
    }

    /// Run git in `dir` (a worktree, say).
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// Run git and return its output whatever the exit status.
    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        self.command("git", dir)
            .args(args)
            .output()
            .expect("run git")
    }

    /// Write a file (creating directories) relative to the repository root.
    pub fn write(&self, rel: &str, content: &str) {
        write_file(&self.root, rel, content);
    }

    /// `git add -A && git commit`; returns the new commit's sha.
    pub fn commit_all(&self, message: &str) -> String {
        self.commit_all_in(&self.root, message)
    }

    pub fn commit_all_in(&self, dir: &Path, message: &str) -> String {
        self.git_in(dir, &["add", "-A"]);
        self.git_in(dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.git_in(dir, &["rev-parse", "HEAD"])
    }
}

/// Write `content` to `dir/rel`, creating parent directories.
pub fn write_file(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(&path, content).expect("write file");
}

/// What a test that needs an external program (Taskwarrior, Slurm, a browser) does when the
/// program is absent: on a developer's machine it reports itself skipped, naming the reason and
/// the install command, and returns `false` so the test can return early; under `CI=true`
/// (where `.ci/run` installs and starts everything) a missing program fails the test.
///
/// `probe` is a command that succeeds when the program is usable, e.g. `["task", "--version"]`.
/// The skip line goes straight to the process's stderr (not through `eprintln!`, which libtest
/// captures for passing tests), so `cargo test` shows it, and `.ci/run` counts lines starting
/// with `SKIPPED:`.
pub fn require_program(test: &str, probe: &[&str], why: &str, install: &str) -> bool {
    let usable = Command::new(probe[0])
        .args(&probe[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return true;
    }
    let reason = format!(
        "{test}: `{}` is not available; {why} (install: {install})",
        probe.join(" ")
    );
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("{reason}; CI=true, so a missing program is a failure: .ci/run must install it");
    }
    skip(&reason);
    false
}

/// Report a test as skipped on stderr, uncaptured (see [`require_program`]).
pub fn skip(reason: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "SKIPPED: {reason}");
}
