//! Plan loading and validation, data in and verdict out: each case is a TOML plan and the
//! diagnostic codes (and message fragments) it must produce.

use std::path::Path;

use baton_plan::load::{Format, parse_plan};
use baton_plan::{Plan, Severity, validate};

const HEADER: &str = r#"schema_version = 1
title = "t"
[profiles.p]
command = ["agent", "{prompt}"]
[defaults]
profile = "p"
"#;

fn parse(body: &str) -> Plan {
    let text = format!("{HEADER}{body}");
    parse_plan(&text, Format::Toml, Path::new("plan.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The (severity, code, message) triples for a plan body.
fn check(body: &str) -> Vec<(Severity, &'static str, String)> {
    validate(&parse(body))
        .diagnostics
        .into_iter()
        .map(|d| (d.severity, d.code, d.to_string()))
        .collect()
}

#[track_caller]
fn assert_error(body: &str, code: &str, fragment: &str) {
    let diags = check(body);
    assert!(
        diags
            .iter()
            .any(|(s, c, m)| *s == Severity::Error && *c == code && m.contains(fragment)),
        "expected error {code} containing {fragment:?}, got {diags:#?}"
    );
}

#[test]
fn spec_example_is_valid_and_round_trips() {
    let text = include_str!("../../../tests/fixtures/spec-plan.toml");
    let plan = parse_plan(text, Format::Toml, Path::new("spec-plan.toml")).unwrap();
    let v = validate(&plan);
    assert!(!v.has_errors(), "{:#?}", v.diagnostics);
    let levels: Vec<Vec<&str>> = v
        .levels
        .iter()
        .map(|l| l.iter().map(|b| b.as_str()).collect())
        .collect();
    assert_eq!(levels, vec![vec!["B1"], vec!["B2"]]);
    // TOML -> model -> JSON -> model is lossless
    let json = serde_json::to_string_pretty(&plan).unwrap();
    let back = parse_plan(&json, Format::Json, Path::new("p.json")).unwrap();
    assert_eq!(back, plan);
    assert_eq!(
        plan.batches[1].agents[0].prompt,
        "Implement the cache using {outputs.scan-api}"
    );
    assert_eq!(
        plan.defaults.timeout.map(|d| d.0),
        Some(std::time::Duration::from_secs(1800))
    );
    assert_eq!(
        plan.command_of(&plan.batches[0].agents[0]).unwrap(),
        ["claude", "-p", "{prompt}"]
    );
}

#[test]
fn cycle_is_printed() {
    assert_error(
        r#"
[[batches]]
id = "B1"
depends_on = ["B2"]
[[batches.agents]]
id = "a"
task_type = "test"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b"
task_type = "test"
"#,
        "dependency_cycle",
        "B1 -> B2 -> B1",
    );
}

#[test]
fn missing_dependency() {
    assert_error(
        r#"
[[batches]]
id = "B1"
depends_on = ["B7"]
[[batches.agents]]
id = "a"
task_type = "test"
"#,
        "missing_dependency",
        "batch B1: depends on B7, which is not a batch of this plan",
    );
}

#[test]
fn duplicate_ids() {
    let body = r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "test"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "test"
"#;
    assert_error(body, "duplicate_batch_id", "batch B1");
    assert_error(body, "duplicate_agent_id", "agent a: the id is used twice");
}

#[test]
fn empty_batch_and_no_batches() {
    assert_error(
        "[[batches]]\nid = \"B1\"\n",
        "empty_batch",
        "batch B1: the batch has no agents",
    );
    assert_error("", "no_batches", "the plan has no batches");
}

#[test]
fn unsafe_ids_are_parse_errors_with_position() {
    for (id, line) in [("../x", 10), ("A", 10), ("a b", 10), ("a/b", 10)] {
        let text = format!(
            "{HEADER}[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"{id}\"\ntask_type = \"test\"\n"
        );
        let err = parse_plan(&text, Format::Toml, Path::new("plan.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("plan.toml:{line}:6: agent id")),
            "{id}: {err}"
        );
    }
    let text = format!("{HEADER}[[batches]]\nid = \"B/1\"\n");
    let err = parse_plan(&text, Format::Toml, Path::new("plan.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("plan.toml:8:6: batch id \"B/1\""), "{err}");
}

#[test]
fn unknown_fields_are_errors_everywhere() {
    for (snippet, field) in [
        ("[goal]\nsumary = \"x\"\n", "sumary"),
        ("[[batches]]\nid = \"B1\"\nkinds = \"parallel\"\n", "kinds"),
        (
            "[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\nscope = { file_write = [\"x\"] }\n",
            "file_write",
        ),
    ] {
        let text = format!("{HEADER}{snippet}");
        let err = parse_plan(&text, Format::Toml, Path::new("plan.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("unknown field `{field}`")), "{err}");
        assert!(err.starts_with("plan.toml:"), "{err}");
    }
}

#[test]
fn overlapping_write_scopes_in_a_parallel_batch_warn() {
    let diags = check(
        r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "b"
task_type = "implement"
scope = { files_write = ["src/cache/**"] }
"#,
    );
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].0, Severity::Warning);
    assert_eq!(diags[0].1, "overlapping_write_scopes");
    assert!(
        diags[0]
            .2
            .contains("agent a: may write the same files as agent b")
    );
}

#[test]
fn overlap_is_fine_when_ordered_or_sequential() {
    // sequential batch: no overlap warning
    assert!(
        check(
            r#"
[[batches]]
id = "B1"
kind = "sequential"
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "b"
task_type = "implement"
scope = { files_write = ["src/**"] }
"#
        )
        .is_empty()
    );
    // B2 after B1: no warning
    assert!(
        check(
            r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b"
task_type = "implement"
scope = { files_write = ["src/**"] }
"#
        )
        .is_empty()
    );
}

#[test]
fn unordered_batches_overlap_warns() {
    let diags = check(
        r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/*.rs"] }
[[batches]]
id = "B2"
[[batches.agents]]
id = "b"
task_type = "implement"
scope = { files_write = ["src/lib.rs"] }
"#,
    );
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert!(
        diags[0]
            .2
            .contains("batches B1 and B2 have no order between them")
    );
}

#[test]
fn bad_globs_and_escaping_scopes() {
    let body = r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/[a"], files_read = ["../secrets/**"] }
"#;
    assert_error(body, "invalid_glob", "scope glob \"src/[a\" is invalid");
    assert_error(
        body,
        "scope_outside_repo",
        "\"../secrets/**\" leaves the repository",
    );
}

#[test]
fn commands_and_placeholders() {
    assert_error(
        r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "test"
profile = "nope"
"#,
        "unknown_profile",
        "profile \"nope\" is not defined",
    );
    assert_error(
        r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "test"
command = ["sh", "-c", "{promt}"]
"#,
        "unknown_placeholder",
        "{promt}",
    );
}

#[test]
fn outputs_must_come_from_upstream_batches() {
    let body = r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "research"
prompt = "use {outputs.b} and {outputs.zzz}"
[[batches]]
id = "B2"
[[batches.agents]]
id = "b"
task_type = "research"
"#;
    assert_error(
        body,
        "output_not_ready",
        "{outputs.b} comes from batch B2, which batch B1 does not depend on",
    );
    assert_error(body, "unknown_output", "{outputs.zzz} names no agent");
}

#[test]
fn files_of_upstream_agents_and_gate_findings_are_placeholders_too() {
    let top = "on_gate_failure = \"replan\"\nmax_replans = 2\n";
    let body = r#"
[[batches]]
id = "B1"
gate = { checks = ["conflicts", "tests"], full = true, strict = true }
[[batches.agents]]
id = "a"
task_type = "research"
prompt = "use {files.b}; fix {gate_findings}"
[[batches]]
id = "B2"
[[batches.agents]]
id = "b"
task_type = "research"
[[batches]]
id = "B3"
depends_on = ["B2"]
[[batches.agents]]
id = "c"
task_type = "research"
prompt = "after {files.b} and {outputs.b}"
command = ["agent", "{prompt}", "{gate_findings}"]
"#;
    assert_error(
        body,
        "output_not_ready",
        "{files.b} comes from batch B2, which batch B1 does not depend on",
    );
    let diags = check(body);
    assert!(
        !diags.iter().any(|(_, c, m)| *c == "unknown_placeholder"
            || (m.contains("agent c") && m.contains("files.b"))),
        "{diags:#?}"
    );
    // the loop's settings (top-level keys come before the header's tables)
    let header = HEADER.replacen("title = \"t\"\n", &format!("title = \"t\"\n{top}"), 1);
    let text = format!("{header}{body}");
    let plan = parse_plan(&text, Format::Toml, Path::new("plan.toml")).unwrap();
    assert_eq!(plan.on_gate_failure, baton_plan::GateFailurePolicy::Replan);
    assert_eq!(plan.max_replans, Some(2));
    let gate = &plan.batches[0].gate;
    assert!(gate.full && gate.strict && !gate.affected);
    assert!(!gate.runs(baton_plan::GateCheck::Git) && gate.runs(baton_plan::GateCheck::Tests));
    assert!(
        plan.batches[1].gate.runs(baton_plan::GateCheck::Git),
        "default: every check"
    );
}

#[test]
fn unknown_gate_settings_and_policies_are_errors() {
    for (top, bad, fragment) in [
        ("on_gate_failure = \"retry\"\n", "", "retry"),
        (
            "",
            "[[batches]]\nid = \"B1\"\ngate = { quick = true }",
            "quick",
        ),
    ] {
        let text = HEADER.replacen("title = \"t\"\n", &format!("title = \"t\"\n{top}"), 1);
        let text = format!("{text}{bad}\n");
        let err = parse_plan(&text, Format::Toml, Path::new("plan.toml")).unwrap_err();
        assert!(err.to_string().contains(fragment), "{err}");
    }
}

#[test]
fn schema_version_must_be_known() {
    let text = "schema_version = 2\ntitle = \"t\"\n[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\ncommand = [\"x\"]\n";
    let plan = parse_plan(text, Format::Toml, Path::new("p.toml")).unwrap();
    let v = validate(&plan);
    assert!(
        v.errors().any(|d| d.code == "schema_version"),
        "{:#?}",
        v.diagnostics
    );
}

#[test]
fn commands_are_rendered_per_argument() {
    use std::collections::BTreeMap;
    let vars: BTreeMap<&str, String> = [
        ("prompt", "say \"hi\"; rm -rf / {agent_id}".to_owned()),
        ("agent_id", "a".to_owned()),
    ]
    .into_iter()
    .collect();
    let cmd: Vec<String> = [
        "claude",
        "-p",
        "{prompt}",
        "--id={agent_id}",
        "{unknown}",
        "{",
    ]
    .map(String::from)
    .to_vec();
    let out = baton_plan::validate::render_command(&cmd, &vars);
    // the prompt stays one argv element, verbatim, and is not expanded again
    assert_eq!(
        out,
        [
            "claude",
            "-p",
            "say \"hi\"; rm -rf / {agent_id}",
            "--id=a",
            "{unknown}",
            "{"
        ]
    );
}
