//! `cargo xtask bench merged`: the `verify --merged` build reuses its scratch directory. A
//! synthetic 4-crate workspace (640 unit and integration tests) with two agent branches; after
//! one warm-up of each, every sample times plain `cargo test --workspace` in the checkout
//! against `baton verify --check tests --full` on the agents' merged result (runner
//! `cargo-test`, the same test harness; target <= 1.2x), and with the default nextest runner
//! against `cargo nextest run` + doctests in the checkout. `--samples N` (default 5).

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use super::synth::{git_ok, median_ms};

const CRATES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

pub fn run(args: &[String]) -> ExitCode {
    let samples = args
        .iter()
        .position(|a| a == "--samples")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5usize);
    let tmp = std::env::temp_dir().join(format!("baton-bench-merged-{}", std::process::id()));
    let repo = tmp.join("repo");
    build_workspace(&repo);
    for (agent, krate) in [("a", "delta"), ("b", "alpha")] {
        let wt = tmp.join(agent);
        git_ok(
            &repo,
            &["worktree", "add", "-q", "-b", agent, wt.to_str().unwrap()],
        );
        let lib = wt.join(format!("crates/{krate}/src/lib.rs"));
        let mut text = std::fs::read_to_string(&lib).unwrap();
        text.push_str(&format!("pub fn from_{agent}() -> u32 {{ 1 }}\n"));
        std::fs::write(&lib, text).unwrap();
        git_ok(&wt, &["commit", "-qam", &format!("agent {agent}")]);
    }
    let cache = tmp.join("cache");
    let config = repo.join(".config/baton.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let cargo_test = || {
        time(
            Command::new("cargo").args(["test", "--workspace", "-q"]),
            &repo,
        )
    };
    let checkout_nextest = || {
        time(
            Command::new("cargo").args(["nextest", "run", "--workspace", "--no-tests=pass"]),
            &repo,
        ) + time(
            Command::new("cargo").args(["test", "--workspace", "--doc", "-q"]),
            &repo,
        )
    };
    let verify = |runner: Option<&str>| {
        match runner {
            Some(r) => std::fs::write(&config, format!("[verify]\nrunner = \"{r}\"\n")).unwrap(),
            None => std::fs::write(&config, "").unwrap(),
        }
        let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
        cmd.args(["verify", "--check", "tests", "--full", "-q", "--repo"])
            .arg(&repo)
            .env("BATON_CACHE_DIR", &cache);
        time(&mut cmd, &repo)
    };
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // warm-up: the checkout's build and the merged build
    cargo_test();
    verify(Some("cargo-test"));
    if nextest {
        checkout_nextest();
        verify(None);
    }
    let (mut plain, mut merged, mut next_plain, mut next_merged) = (vec![], vec![], vec![], vec![]);
    println!(
        "merged bench: {} crates, 640 tests, 2 agent branches",
        CRATES.len()
    );
    for i in 1..=samples {
        let (a, b) = (cargo_test(), verify(Some("cargo-test")));
        print!(
            "  sample {i}: cargo test {a:>7.0} ms, verify --merged (cargo-test) {b:>7.0} ms, ratio {:.2}x",
            b / a
        );
        plain.push(a);
        merged.push(b);
        if nextest {
            let (c, d) = (checkout_nextest(), verify(None));
            print!(
                "; nextest+doctests {c:>7.0} ms, verify --merged (nextest) {d:>7.0} ms, ratio {:.2}x",
                d / c
            );
            next_plain.push(c);
            next_merged.push(d);
        }
        println!();
    }
    let (a, b) = (median_ms(plain), median_ms(merged));
    let ok = b / a <= 1.2;
    println!(
        "  median: cargo test {a:.0} ms, verify --merged {b:.0} ms, ratio {:.2}x (target <= 1.2x){}",
        b / a,
        if ok { "" } else { " MISSED" }
    );
    if nextest {
        let (c, d) = (median_ms(next_plain), median_ms(next_merged));
        println!(
            "  median with nextest: checkout {c:.0} ms, verify --merged {d:.0} ms, ratio {:.2}x",
            d / c
        );
    }
    println!("  scratch build dir: {:.1} MB", dir_mb(&cache));
    let _ = std::fs::remove_dir_all(&tmp);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn time(cmd: &mut Command, dir: &Path) -> f64 {
    let t = Instant::now();
    let out = cmd
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64() * 1000.0
}

fn dir_mb(dir: &Path) -> f64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total as f64 / (1024.0 * 1024.0)
}

/// Four crates in a chain, 30 modules of 20 functions each, 5 unit tests per module and 10
/// integration tests per crate; deterministic.
fn build_workspace(repo: &Path) {
    std::fs::create_dir_all(repo).unwrap();
    let members: Vec<String> = CRATES.iter().map(|c| format!("\"crates/{c}\"")).collect();
    write(
        repo,
        "Cargo.toml",
        &format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
            members.join(", ")
        ),
    );
    for (i, c) in CRATES.iter().enumerate() {
        let deps = if i == 0 {
            String::new()
        } else {
            let prev = CRATES[i - 1];
            format!("\n[dependencies]\n{prev} = {{ path = \"../{prev}\" }}\n")
        };
        write(
            repo,
            &format!("crates/{c}/Cargo.toml"),
            &format!("[package]\nname = \"{c}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{deps}"),
        );
        let mut lib = String::new();
        for m in 0..30 {
            lib.push_str(&format!("pub mod m{m} {{\n"));
            for f in 0..20 {
                lib.push_str(&format!(
                    "    pub fn f{f}(x: u64) -> u64 {{ x.wrapping_mul({}).rotate_left({}) ^ {} }}\n",
                    f + 3,
                    m % 7,
                    m * f
                ));
            }
            lib.push_str("    #[cfg(test)]\n    mod tests {\n");
            for f in 0..5 {
                lib.push_str(&format!(
                    "        #[test]\n        fn t{f}() {{ assert_eq!(super::f{f}(0), {}); }}\n",
                    m * f
                ));
            }
            lib.push_str("    }\n}\n");
        }
        write(repo, &format!("crates/{c}/src/lib.rs"), &lib);
        let it: String = (0..10)
            .map(|k| {
                format!(
                    "#[test]\nfn i{k}() {{ assert_eq!({c}::m1::f{k}(1), {c}::m1::f{k}(1)); }}\n"
                )
            })
            .collect();
        write(repo, &format!("crates/{c}/tests/it.rs"), &it);
    }
    write(repo, ".gitignore", "/target\n/Cargo.lock\n/.config/\n");
    git_ok(repo, &["init", "-q", "-b", "main"]);
    git_ok(repo, &["add", "-A"]);
    git_ok(repo, &["commit", "-qm", "workspace"]);
}

fn write(repo: &Path, rel: &str, text: &str) {
    let path = repo.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
