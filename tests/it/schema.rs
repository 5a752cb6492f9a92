//! The JSON Schemas baton prints (`plan schema`, `config schema`, `report schema`) checked with
//! a JSON Schema validator against real files: every good plan fixture validates and baton
//! accepts it, every bad one is rejected by both; config files and verify reports likewise.

use std::path::{Path, PathBuf};

use baton_tests::{TestRepo, write_file};
use serde_json::Value;

use crate::support::baton;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The schema a baton command prints, compiled (draft 2020-12, as `$schema` says).
fn validator(repo: &TestRepo, args: &[&str]) -> jsonschema::Validator {
    let schema = baton(repo, args).expect_code(0).json();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{args:?}"
    );
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{args:?}: bad schema: {e}"))
}

/// A plan or config file as the JSON value a schema sees (TOML converted, JSON as is).
fn as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        _ => serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    }
}

fn errors(v: &jsonschema::Validator, value: &Value) -> Vec<String> {
    v.iter_errors(value).map(|e| e.to_string()).collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn plan_schema_accepts_every_good_fixture_and_rejects_every_bad_one() {
    let repo = TestRepo::new();
    let schema = validator(&repo, &["plan", "schema"]);
    let mut good = files_in(&fixtures().join("plans"));
    good.push(fixtures().join("spec-plan.toml"));
    // the skeleton `plan new` writes is a plan too
    let skeleton = repo.scratch("skeleton").join("skeleton.toml");
    baton(
        &repo,
        &[
            "plan",
            "new",
            "--title",
            "T",
            "-o",
            skeleton.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    good.push(skeleton);
    assert!(good.len() >= 4, "{good:?}");
    for file in &good {
        let found = errors(&schema, &as_json(file));
        assert!(found.is_empty(), "{}: {found:?}", file.display());
        // and baton agrees
        baton(&repo, &["plan", "validate", file.to_str().unwrap()]).expect_code(0);
    }
    let bad = files_in(&fixtures().join("plans/bad"));
    assert!(bad.len() >= 10, "{bad:?}");
    for file in &bad {
        assert!(
            !schema.is_valid(&as_json(file)),
            "{}: the schema accepts it",
            file.display()
        );
        baton(&repo, &["plan", "validate", file.to_str().unwrap()]).expect_code(2);
    }
}

#[test]
fn stored_plans_validate_against_the_plan_schema() {
    let repo = TestRepo::new();
    let schema = validator(&repo, &["plan", "schema"]);
    let src = fixtures().join("plans/full.json");
    let id = baton(&repo, &["plan", "new", "--from", src.to_str().unwrap()])
        .expect_code(0)
        .stdout;
    let stored = as_json(&repo.path().join(format!(".baton/plans/{}.json", id.trim())));
    assert!(stored["created_at"].is_string(), "{stored}");
    let found = errors(&schema, &stored);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn config_schema_matches_what_baton_accepts() {
    let repo = TestRepo::new();
    let schema = validator(&repo, &["config", "schema"]);
    let good = r#"
[state]
dir = ".baton"
[verify]
smoke = "kind(lib)"
quick = ["make", "test-quick"]
full = ["make", "test"]
stale_lock_secs = 120
[worktree]
root = "../wt"
branch = "agents/{plan}/{agent}"
target = "main"
include = [".env"]
setup = ["npm", "ci"]
"#;
    let bad: &[(&str, &str)] = &[
        ("unknown section", "[stat]\ndir = \".b\"\n"),
        (
            "unknown key",
            "[verify]\nsmoke = \"all()\"\nquik = [\"x\"]\n",
        ),
        ("wrong type", "[verify]\nstale_lock_secs = \"soon\"\n"),
        ("command as a string", "[worktree]\nsetup = \"npm ci\"\n"),
    ];
    let config = repo.path().join(".config/baton.toml");
    write_file(repo.path(), ".config/baton.toml", good);
    let found = errors(&schema, &as_json(&config));
    assert!(found.is_empty(), "{found:?}");
    baton(&repo, &["config"]).expect_code(0);
    for (what, text) in bad {
        write_file(repo.path(), ".config/baton.toml", text);
        assert!(!schema.is_valid(&as_json(&config)), "{what}: accepted");
        baton(&repo, &["config"]).expect_code(2);
    }
}

#[test]
fn verify_reports_validate_against_the_report_schema() {
    let repo = TestRepo::new();
    let schema = validator(&repo, &["report", "schema"]);
    // a failing gate, so findings and checks with content are in the report
    repo.git(&["worktree", "add", "-q", "-b", "a", "../a"]);
    repo.git(&["worktree", "add", "-q", "-b", "b", "../b"]);
    let a = repo.path().parent().unwrap().join("a");
    let b = repo.path().parent().unwrap().join("b");
    write_file(&a, "README.md", "from a\n");
    write_file(&b, "README.md", "from b\n");
    let run = baton(&repo, &["verify", "--json"]);
    let report = run.json();
    assert!(
        report["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{report}"
    );
    let found = errors(&schema, &report);
    assert!(found.is_empty(), "{found:?}\n{report}");
    // a report with a misspelt status is not a report
    let mut broken = report.clone();
    broken["checks"][0]["status"] = "passed".into();
    assert!(!schema.is_valid(&broken));
}

/// Every `--json` document is one object carrying `schema_version` (docs/json.md), for every
/// command that prints one, in a repository with a stored plan, a task and a worktree.
#[test]
fn every_json_document_is_an_object_with_schema_version() {
    let repo = TestRepo::new();
    let plan = fixtures().join("plans/minimal.toml");
    let plan = plan.to_str().unwrap();
    baton(&repo, &["plan", "new", "--from", plan]).expect_code(0);
    baton(&repo, &["task", "create-from-plan", "latest"]).expect_code(0);
    repo.git(&["worktree", "add", "-q", "-b", "w", "../w"]);
    let skeleton = repo.scratch("s").join("s.toml");
    let skeleton = skeleton.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["plan", "validate", plan],
        &["plan", "show", "latest"],
        &["plan", "list"],
        &["plan", "new", "--title", "T"],
        &["plan", "new", "--title", "T", "-o", skeleton],
        &["status"],
        &["status", "latest"],
        &["task", "list"],
        &["task", "ready"],
        &["worktree", "list"],
        &["worktree", "cleanup", "--dry-run"],
        &["worktree", "prune", "--dry-run"],
        &["metrics", "summary"],
        &["metrics", "failures"],
        &["config"],
        &["verify"],
    ];
    for args in commands {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let run = baton(&repo, &full);
        let doc = run.json();
        assert!(doc.is_object(), "{args:?}: not an object: {doc}");
        assert!(
            doc["schema_version"].is_u64(),
            "{args:?}: no schema_version: {doc}"
        );
    }
}

/// Every property the schemas know (top level and every definition) is named in the user
/// docs, so a field added to the model without documentation fails here.
#[test]
fn docs_name_every_field_of_the_plan_and_the_config() {
    let repo = TestRepo::new();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    for (args, doc) in [
        (["plan", "schema"], "plan.md"),
        (["config", "schema"], "config.md"),
    ] {
        let schema = baton(&repo, &args).expect_code(0).json();
        let text = std::fs::read_to_string(docs.join(doc)).unwrap();
        let mut objects = vec![&schema];
        if let Some(defs) = schema["$defs"].as_object() {
            objects.extend(defs.values());
        }
        let mut missing = Vec::new();
        for object in objects {
            for name in object["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                // a field as `name`, a section as `[name]`
                if !text.contains(&format!("`{name}`")) && !text.contains(&format!("`[{name}]`")) {
                    missing.push(name.clone());
                }
            }
        }
        assert!(missing.is_empty(), "docs/{doc} does not name {missing:?}");
    }
}
