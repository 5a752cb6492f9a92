//! Running the real baton binary in tests, with stdout and stderr kept apart.

use std::path::Path;
use std::process::Output;

use baton_tests::TestRepo;

/// What a baton run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Parse stdout as JSON (for `--json` runs).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Assert the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub const BATON: &str = env!("CARGO_BIN_EXE_baton-e2e");

/// Run baton in `dir` with the test repository's isolated environment.
pub fn baton_in(repo: &TestRepo, dir: &Path, args: &[&str]) -> Run {
    let out = repo
        .command(BATON, dir)
        .args(args)
        .output()
        .expect("run baton");
    Run::from(out)
}

/// Run baton in the repository's root.
pub fn baton(repo: &TestRepo, args: &[&str]) -> Run {
    baton_in(repo, repo.path(), args)
}
