//! Identifiers: plan ids, batch ids and agent ids.
//!
//! Agent and batch ids become path and branch components (`.baton/executions/<plan>/logs/<agent>`,
//! `baton/<plan>/<agent>`), so they are restricted to safe slugs that cannot contain `/`, `..`,
//! whitespace or anything git refuses in a ref name.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} id {value:?} is not valid: {rule}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

fn check_slug(
    value: &str,
    kind: &'static str,
    allow_upper: bool,
    rule: &'static str,
) -> Result<(), IdError> {
    let err = || IdError {
        kind,
        value: value.to_owned(),
        rule,
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 64 {
        return Err(err());
    }
    let first_ok = |b: u8| {
        b.is_ascii_digit() || b.is_ascii_lowercase() || (allow_upper && b.is_ascii_uppercase())
    };
    if !first_ok(bytes[0]) {
        return Err(err());
    }
    if !bytes[1..]
        .iter()
        .all(|&b| first_ok(b) || b == b'-' || b == b'_')
    {
        return Err(err());
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $upper:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The rule ids of this kind follow, for error messages.
            pub const RULE: &'static str = $rule;

            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_slug(&value, $kind, $upper, $rule)?;
                Ok($name(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                $name::new(value)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $name::new(s)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

slug_id!(
    /// An agent id: `[a-z0-9][a-z0-9-_]{0,63}`. Becomes a path and branch component.
    AgentId,
    "agent",
    false,
    "use 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
);
slug_id!(
    /// A batch id such as `B1`: `[A-Za-z0-9][A-Za-z0-9-_]{0,63}`.
    BatchId,
    "batch",
    true,
    "use 1-64 characters of A-Z, a-z, 0-9, '-' and '_', starting with a letter or digit"
);

/// A plan id: `OP-YYYYMMDD-HHMMSS-xxxxxxxx` (UTC time and 8 random hex digits).
/// Legacy ids with 4 hex digits parse too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlanId(String);

impl PlanId {
    pub const RULE: &'static str =
        "expected OP-YYYYMMDD-HHMMSS-xxxxxxxx (UTC date and time, 8 lowercase hex digits)";

    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        if parse_stamped(&value, "OP-", &[8, 4]).is_some() {
            Ok(PlanId(value))
        } else {
            Err(IdError {
                kind: "plan",
                value,
                rule: Self::RULE,
            })
        }
    }

    /// A fresh id for `now` with 32 random bits. Uniqueness among concurrent creators is
    /// finally guaranteed by the store, which creates plan files with `create_new` and asks
    /// for another id on a clash.
    pub fn generate(now: SystemTime) -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(PlanId(format!("OP-{}-{hex}", utc_stamp(now))))
    }

    /// True for the 4-hex-digit form older tools wrote.
    pub fn is_legacy(&self) -> bool {
        self.0.len() == "OP-YYYYMMDD-HHMMSS-xxxx".len()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PlanId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        PlanId::new(value)
    }
}
impl From<PlanId> for String {
    fn from(id: PlanId) -> String {
        id.0
    }
}
impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::str::FromStr for PlanId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        PlanId::new(s)
    }
}

/// The default branch of an agent's worktree: `baton/<plan-id>/<agent-id>`. Both ids are
/// validated, so the result is always a valid ref name.
pub fn agent_branch(plan: &PlanId, agent: &AgentId) -> String {
    format!("baton/{plan}/{agent}")
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn utc_stamp(now: SystemTime) -> String {
    // format_rfc3339_seconds always yields `YYYY-MM-DDTHH:MM:SSZ` for times after 1970.
    let s = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{}", &digits[..8], &digits[8..14])
}

/// RFC 3339 UTC with milliseconds, the one timestamp format baton writes.
pub fn rfc3339_now(now: SystemTime) -> String {
    humantime::format_rfc3339_millis(now).to_string()
}

/// Check `PREFIX-YYYYMMDD-HHMMSS-<hex>` where the hex part has one of `hex_lens` digits.
/// Returns the hex part.
pub fn parse_stamped<'a>(value: &'a str, prefix: &str, hex_lens: &[usize]) -> Option<&'a str> {
    let rest = value.strip_prefix(prefix)?;
    let (date, rest) = rest.split_at_checked(8)?;
    let rest = rest.strip_prefix('-')?;
    let (time, rest) = rest.split_at_checked(6)?;
    let hex = rest.strip_prefix('-')?;
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(date) || !all_digits(time) {
        return None;
    }
    let month: u32 = date[4..6].parse().ok()?;
    let day: u32 = date[6..8].parse().ok()?;
    let (h, m, s): (u32, u32, u32) = (
        time[0..2].parse().ok()?,
        time[2..4].parse().ok()?,
        time[4..6].parse().ok()?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let hex_ok = hex_lens.contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex_ok.then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids() {
        for ok in ["a", "scan-api", "x_1", "0abc", &"a".repeat(64)] {
            AgentId::new(ok).unwrap();
        }
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "a/b",
            "..",
            "a.b",
            "a b",
            "é",
            &"a".repeat(65),
            "../x",
        ] {
            assert!(AgentId::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn batch_ids_allow_upper() {
        BatchId::new("B1").unwrap();
        assert!(BatchId::new("B 1").is_err());
        assert!(BatchId::new("B/1").is_err());
    }

    #[test]
    fn plan_ids() {
        PlanId::new("OP-20261121-070145-0a1b2c3d").unwrap();
        let legacy = PlanId::new("OP-20240101-000000-beef").unwrap();
        assert!(legacy.is_legacy());
        for bad in [
            "OP-20261121-070145-0A1B2C3D",
            "OP-20261321-070145-0a1b2c3d",
            "OP-20261121-250145-0a1b2c3d",
            "OP-20261121-070145-0a1b2c",
            "OP-2026112-070145-0a1b2c3d",
            "XP-20261121-070145-0a1b2c3d",
            "OP-20261121-070145-0a1b2c3d/..",
        ] {
            assert!(PlanId::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn generated_ids_parse_and_differ() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let a = PlanId::generate(t).unwrap();
        let b = PlanId::generate(t).unwrap();
        assert_eq!(PlanId::new(a.to_string()).unwrap(), a);
        assert!(!a.is_legacy());
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("OP-20261118-110640-"), "{a}");
    }
}
