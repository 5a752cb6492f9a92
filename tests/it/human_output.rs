//! Snapshots of the human output of `worktree list`, `status` and `verify`, with colour forced
//! off and on. Columns are padded before they are coloured, so the coloured output with its
//! escape codes removed is exactly the plain output; the snapshots show the aligned columns
//! (temp paths, ages and times masked, keeping their width where they sit inside a column).

use baton_plan::{AgentId, AgentResult, AgentStart, BatchId, Execution, PlanId, Status};
use baton_tests::{TestRepo, write_file};

use crate::support::baton;

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// Escape codes shown as `<1>`…`<0>`, so the coloured snapshot stays readable.
fn show_codes(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\u{1b}[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('m').unwrap_or(after.len());
        out.push_str(&format!("<{}>", &after[..end]));
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Replace tokens that are ages (`0s`, `12m`) by `N`s of the same width, and times in ms
/// (`12 ms`, a right-aligned last column) by `N ms` after two spaces.
fn mask_times(s: &str) -> String {
    let is_age = |t: &str| {
        t.len() >= 2
            && t.is_ascii()
            && t[..t.len() - 1].chars().all(|c| c.is_ascii_digit())
            && t.ends_with(['s', 'm', 'h', 'd'])
    };
    s.lines()
        .map(|line| {
            let mut out = String::new();
            for (i, token) in line.split(' ').enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let (open, rest) =
                    token.split_at(token.len() - token.trim_start_matches('(').len());
                let (core, close) = rest.split_at(rest.trim_end_matches(')').len());
                if is_age(core) {
                    out.push_str(open);
                    out.push_str(&"N".repeat(core.len() - 1));
                    out.push_str(&core[core.len() - 1..]);
                    out.push_str(close);
                } else {
                    out.push_str(token);
                }
            }
            mask_ms(&out)
        })
        .map(|l| l + "\n")
        .collect()
}

/// `…detail      12 ms` → `…detail  N ms` (the padding before a time varies with it).
fn mask_ms(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(" ms") {
        let before = &rest[..i];
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            out.push_str(&rest[..i + 3]);
            rest = &rest[i + 3..];
            continue;
        }
        let mut head = before[..before.len() - digits].to_owned();
        // the colour code of a dim cell sits between the padding and the digits
        let code = if head.ends_with("\u{1b}[2m") {
            head.truncate(head.len() - 4);
            "\u{1b}[2m"
        } else {
            ""
        };
        if head.ends_with("  ") {
            head.truncate(head.trim_end_matches(' ').len());
            head.push_str("  ");
        }
        out.push_str(&head);
        out.push_str(code);
        out.push_str("N ms");
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// Run `args` with colour off and on; check they align the same; return both, masked.
/// `mask`: whether the output has ages and times that change from run to run.
fn both(repo: &TestRepo, args: &[&str], code: i32, mask: bool) -> (String, String) {
    let tmp = repo.path().parent().unwrap().to_str().unwrap().to_owned();
    let mut never = vec!["--color", "never"];
    never.extend_from_slice(args);
    let mut always = vec!["--color", "always"];
    always.extend_from_slice(args);
    let plain = baton(repo, &never).expect_code(code).stdout;
    let coloured = baton(repo, &always).expect_code(code).stdout;
    assert!(
        coloured.contains('\u{1b}'),
        "no colour with --color always:\n{coloured}"
    );
    assert!(
        !plain.contains('\u{1b}'),
        "colour with --color never:\n{plain}"
    );
    let mask = |s: &str| {
        let s = s.replace(&tmp, "[TMP]");
        if mask { mask_times(&s) } else { s }
    };
    let plain = mask(&plain);
    let coloured = mask(&coloured);
    assert_eq!(
        strip_ansi(&coloured),
        plain,
        "coloured output, escapes removed, differs from the plain output"
    );
    (plain, show_codes(&coloured))
}

#[test]
fn worktree_list_columns_align_with_and_without_colour() {
    let repo = TestRepo::new();
    let branch_a = "baton/OP-20260101-000000-0000000a/survey-the-api";
    let branch_b = "baton/OP-20260101-000000-0000000a/implement";
    repo.git(&["worktree", "add", "-q", "-b", branch_a, "../wt-survey"]);
    repo.git(&["worktree", "add", "-q", "-b", branch_b, "../wt-implement"]);
    let a = repo.path().parent().unwrap().join("wt-survey");
    let b = repo.path().parent().unwrap().join("wt-implement");
    write_file(&a, "notes.md", "untracked\n");
    write_file(&a, "README.md", "modified\n");
    write_file(&b, "src/lib.rs", "pub fn f() {}\n");
    repo.commit_all_in(&b, "implement f");
    let (plain, coloured) = both(&repo, &["worktree", "list"], 0, true);
    insta::assert_snapshot!("worktree_list_plain", plain);
    insta::assert_snapshot!("worktree_list_colour", coloured);
}

#[test]
fn status_columns_align_with_and_without_colour() {
    let repo = TestRepo::new();
    let plan = r#"schema_version = 1
id = "OP-20260101-000000-0000000a"
title = "Snapshot plan"
[defaults]
command = ["true"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "survey"
task_type = "research"
[[batches.agents]]
id = "a-much-longer-agent-id"
task_type = "implement"
[[batches]]
id = "B2-integrate"
depends_on = ["B1"]
[[batches.agents]]
id = "merge"
task_type = "verify"
"#;
    write_file(repo.path(), "p.toml", plan);
    baton(&repo, &["plan", "new", "--from", "p.toml"]).expect_code(0);
    let (plain, _) = both(&repo, &["status"], 0, false);
    insta::assert_snapshot!("status_not_run_plain", plain);

    let id = PlanId::new("OP-20260101-000000-0000000a").unwrap();
    let stored = baton_plan::store::load_stored(
        &baton_store::StateDir::new(repo.path().join(".baton")),
        &id,
    )
    .unwrap();
    let now = "2026-01-01T00:00:00Z";
    let b1 = BatchId::new("B1").unwrap();
    let mut exec = Execution::new(id.clone(), &stored, now);
    exec.start_batch(&stored, &b1, now).unwrap();
    for (agent, status, ms, code, files) in [
        ("survey", Status::Succeeded, 61_234, 0, 1usize),
        ("a-much-longer-agent-id", Status::Failed, 900, 3, 0),
    ] {
        let agent = AgentId::new(agent).unwrap();
        exec.start_agent(
            &b1,
            &agent,
            AgentStart {
                process: None,
                worktree: None,
                branch: None,
            },
            now,
        )
        .unwrap();
        let result = AgentResult {
            exit_code: Some(code),
            attempts: 1,
            duration_ms: ms,
            files_changed: (0..files).map(|i| format!("f{i}")).collect(),
            summary: None,
            error_class: (status == Status::Failed).then_some(baton_plan::ErrorClass::ExitNonzero),
            leftovers: None,
        };
        exec.record_agent_result(&b1, &agent, status, result, now)
            .unwrap();
    }
    let path = repo.path().join(format!(".baton/executions/{id}.json"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    baton_store::write_json(&path, &exec).unwrap();
    let (plain, coloured) = both(&repo, &["status"], 0, false);
    insta::assert_snapshot!("status_plain", plain);
    insta::assert_snapshot!("status_colour", coloured);
}

#[test]
fn verify_columns_align_with_and_without_colour() {
    let repo = TestRepo::new();
    repo.git(&["worktree", "add", "-q", "-b", "agent-one", "../one"]);
    repo.git(&["worktree", "add", "-q", "-b", "agent-two", "../two"]);
    let one = repo.path().parent().unwrap().join("one");
    let two = repo.path().parent().unwrap().join("two");
    write_file(&one, "README.md", "from one\n");
    write_file(&two, "README.md", "from two\n");
    let (plain, coloured) = both(&repo, &["verify"], 1, true);
    insta::assert_snapshot!("verify_plain", plain);
    insta::assert_snapshot!("verify_colour", coloured);
}

/// `cleanup --force --dry-run` says what it would discard, and a cleanup with nothing to do
/// says so under the filters given.
#[test]
fn cleanup_says_what_it_discards_and_why_nothing_happens() {
    let repo = TestRepo::new();
    repo.git(&["worktree", "add", "-q", "-b", "done-work", "../done"]);
    let wt = repo.path().parent().unwrap().join("done");
    // merged (it has no commits of its own) but dirty: kept without --force
    write_file(&wt, "README.md", "edited, never committed\n");
    let kept = baton(&repo, &["worktree", "cleanup", "--dry-run"]).expect_code(0);
    assert!(kept.stdout.contains("keep done"), "{}", kept.stdout);
    // not made by baton, so --all; no commits of its own yet ("new"), so --force
    let forced = baton(
        &repo,
        &["worktree", "cleanup", "--all", "--force", "--dry-run"],
    )
    .expect_code(0);
    assert!(
        forced
            .stdout
            .contains("would discard its uncommitted changes (--force)"),
        "{}",
        forced.stdout
    );
    assert!(wt.join("README.md").exists(), "a dry run removed something");

    let empty = TestRepo::new();
    let none = baton(&empty, &["worktree", "cleanup", "--older-than", "2h"]).expect_code(0);
    assert_eq!(
        none.stdout.trim(),
        "nothing to clean up: no linked worktrees older than 2h"
    );
}
