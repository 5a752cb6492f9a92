//! JSON Schema of the plan, generated from the model's types (schemars) so it cannot drift.
//!
//! Ids and durations are strings that parse; their schemas say which strings.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::duration::HumanDuration;
use crate::ids::{AgentId, BatchId, PlanId};
use crate::model::Plan;

/// The JSON Schema (draft 2020-12) of a plan file, as `baton plan schema` prints it.
pub fn plan_schema() -> Schema {
    schemars::schema_for!(Plan)
}

fn string_schema(description: &str, pattern: &str) -> Schema {
    json_schema!({
        "type": "string",
        "description": description,
        "pattern": pattern,
    })
}

impl JsonSchema for AgentId {
    fn schema_name() -> Cow<'static, str> {
        "AgentId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "An agent id; becomes a path and branch component.",
            "^[a-z0-9][a-z0-9_-]{0,63}$",
        )
    }
}

impl JsonSchema for BatchId {
    fn schema_name() -> Cow<'static, str> {
        "BatchId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "A batch id such as `B1`.",
            "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        )
    }
}

impl JsonSchema for PlanId {
    fn schema_name() -> Cow<'static, str> {
        "PlanId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "A plan id: OP-YYYYMMDD-HHMMSS-xxxxxxxx (UTC; legacy ids have 4 hex digits).",
            "^OP-[0-9]{8}-[0-9]{6}-([0-9a-f]{8}|[0-9a-f]{4})$",
        )
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as \"90s\", \"30m\" or \"1h 30m\".",
            "minLength": 1,
            "examples": ["90s", "30m", "1h 30m"],
        })
    }
}

impl JsonSchema for crate::executor::Memory {
    fn schema_name() -> Cow<'static, str> {
        "Memory".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Memory per agent: MiB as a number, or a size such as \"512M\", \"4G\", \"1T\".",
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*([MmGgTt]([Ii]?[Bb])?)?\\s*$" }
            ],
        })
    }
}
