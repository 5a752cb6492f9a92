//! Durations written the humantime way: `30m`, `1h 30m`, `90s`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A duration that reads and writes as a humantime string (`"30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        humantime::parse_duration(&value)
            .map(HumanDuration)
            .map_err(|e| {
                format!("invalid duration {value:?}: {e} (write e.g. \"90s\", \"30m\", \"1h 30m\")")
            })
    }
}

impl From<HumanDuration> for String {
    fn from(d: HumanDuration) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
