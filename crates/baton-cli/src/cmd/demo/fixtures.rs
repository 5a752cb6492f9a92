//! The demo's repository content: plans (a good one and two bad ones), the scripted agent, the
//! test script and the config.

/// Two batches: two research agents in parallel, then an implementer.
pub const PLAN: &str = r#"schema_version = 1
title = "Add a greeting module"
# When a batch's gate fails, the agents it names are sent back with the findings.
on_gate_failure = "replan"
max_replans = 1

[goal]
summary = "The project greets its users"
success_criteria = ["src/greeting.txt greets", "scripts/test.sh passes on the merged result"]

[defaults]
profile = "script"
timeout = "1m"
retries = 1

# Scripted agents: a shell script stands in for Claude Code, Codex or Aider.
# The agent id reaches it as an argv element, never through a shell string.
[profiles.script]
command = ["sh", "scripts/agent.sh", "{agent_id}"]

[[batches]]
id = "B1"
name = "research"
kind = "parallel"
# research writes no code: its gate checks git state and collisions, not the tests
gate = { checks = ["git", "conflicts"] }

[[batches.agents]]
id = "survey"
task_type = "research"
prompt = "Find where greetings belong; retitle the README"
scope = { files_write = ["docs/survey.md", "README.md"] }

[[batches.agents]]
id = "style-guide"
task_type = "research"
prompt = "Write down the tone of the greeting"
scope = { files_write = ["docs/style.md"] }

[[batches]]
id = "B2"
name = "implement"
kind = "parallel"
depends_on = ["B1"]

[[batches.agents]]
id = "greeter"
task_type = "implement"
prompt = "Write the greeting following {outputs.survey}"
scope = { files_write = ["src/**"] }
"#;

pub const BAD_PLAN: &str = r#"schema_version = 1
title = "A plan with mistakes"

[profiles.script]
command = ["sh", "scripts/agent.sh", "{agent_id}"]

[defaults]
profile = "script"

[[batches]]
id = "B1"
depends_on = ["B3"]
[[batches.agents]]
id = "api"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "cache"
task_type = "implement"
scope = { files_write = ["src/cache/**"] }

[[batches]]
id = "B2"
depends_on = ["B1", "B9"]
[[batches.agents]]
id = "tests"
task_type = "test"

[[batches]]
id = "B3"
depends_on = ["B2"]
[[batches.agents]]
id = "docs"
task_type = "research"
"#;

pub const UNSAFE_PLAN: &str = r#"schema_version = 1
title = "An agent id that would escape its directory"

[[batches]]
id = "B1"
[[batches.agents]]
id = "../../etc"
task_type = "research"
"#;

/// A scripted agent. It works in its own worktree and commits what it did.
/// `style-guide` strays into README.md on its first attempt (outside its scope, and on the
/// same line `survey` edits); sent back with the findings (`BATON_GATE_REPORT` is set) it
/// keeps to its file. `greeter` fails its first attempt.
pub const AGENT_SCRIPT: &str = r##"#!/bin/sh
set -eu
id="$1"
attempt="${BATON_ATTEMPT:-1}"
case "$id" in
  survey)
    mkdir -p docs
    echo "Greetings belong in src/greeting.txt" > docs/survey.md
    echo "# demo: a project that greets" > README.md ;;
  style-guide)
    mkdir -p docs
    echo "Warm, short, no exclamation marks." > docs/style.md
    if [ -z "${BATON_GATE_REPORT:-}" ]; then echo "# demo: warm greetings" > README.md; fi ;;
  greeter)
    if [ "$attempt" = 1 ]; then echo "flaky start" >&2; exit 1; fi
    mkdir -p src
    echo "Hello, and welcome." > src/greeting.txt ;;
  *) echo "unknown agent $id" >&2; exit 2 ;;
esac
git add -A
git commit -q -m "$id: attempt $attempt"
echo "agent $id done (attempt $attempt)"
"##;

/// The project's tests: does the greeting exist?
pub const TEST_SCRIPT: &str = r#"#!/bin/sh
if grep -q Hello src/greeting.txt 2>/dev/null; then
  echo "1 passed, 0 failed"
else
  echo "greeting test: src/greeting.txt does not greet" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
"#;

pub const CONFIG: &str = r#"# baton's settings for the demo repository
[verify]
quick = ["sh", "scripts/test.sh"]
full = ["sh", "scripts/test.sh"]
"#;
