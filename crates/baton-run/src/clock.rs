//! Wall-clock milliseconds: the runner's due times (backoff, the breaker's pause) are kept in
//! them so they can be persisted in the execution and mean the same to a resumed runner.

use std::time::{Duration, SystemTime};

/// Milliseconds since the Unix epoch.
pub fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn now_ms() -> u64 {
    ms(SystemTime::now())
}

/// `ms` as an RFC 3339 time with milliseconds, as the execution writes times.
pub fn rfc3339(ms: u64) -> String {
    baton_plan::ids::rfc3339_now(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// An RFC 3339 time as written by [`rfc3339`] (or any the execution holds).
pub fn parse_ms(text: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(text).ok().map(ms)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_round_trip_to_the_millisecond() {
        for t in [0, 1_764_547_200_123, 1_764_547_200_999] {
            assert_eq!(super::parse_ms(&super::rfc3339(t)), Some(t));
        }
        assert_eq!(super::parse_ms("not a time"), None);
    }
}
