//! How an attempt ended, in the terms of the execution: succeeded or failed, and the class of
//! the failure. Pure: the runner passes what it knows (why it stopped the attempt, the tail of
//! its log).

use baton_plan::{ErrorClass, RateLimit, Status};

use crate::executor::Outcome;

/// Why the runner stopped an attempt itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    Timeout,
    Idle,
    FirstOutput,
    /// Ctrl-C twice.
    Interrupt,
}

impl KillReason {
    /// The reason behind a class the runner records for its own stops.
    pub fn of_class(class: ErrorClass) -> Option<KillReason> {
        Some(match class {
            ErrorClass::Timeout => KillReason::Timeout,
            ErrorClass::IdleTimeout => KillReason::Idle,
            ErrorClass::FirstOutputTimeout => KillReason::FirstOutput,
            ErrorClass::Interrupted => KillReason::Interrupt,
            _ => return None,
        })
    }

    pub fn class(self) -> ErrorClass {
        match self {
            KillReason::Timeout => ErrorClass::Timeout,
            KillReason::Idle => ErrorClass::IdleTimeout,
            KillReason::FirstOutput => ErrorClass::FirstOutputTimeout,
            KillReason::Interrupt => ErrorClass::Interrupted,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub class: Option<ErrorClass>,
    pub exit_code: Option<i32>,
}

/// The verdict on an attempt. A kill the runner ordered names the class whatever the process
/// did on its way out; a rate limit is recognised by exit code or by a pattern in `log_tail`.
pub fn classify(
    outcome: &Outcome,
    killed_for: Option<KillReason>,
    rate: &RateLimit,
    log_tail: &str,
) -> Verdict {
    let failed = |class, exit_code| Verdict {
        status: Status::Failed,
        class: Some(class),
        exit_code,
    };
    if let Some(reason) = killed_for {
        let code = match outcome {
            Outcome::Exited(0) => {
                return Verdict {
                    status: Status::Succeeded,
                    class: None,
                    exit_code: Some(0),
                };
            }
            Outcome::Exited(c) => Some(*c),
            _ => None,
        };
        return failed(reason.class(), code);
    }
    match outcome {
        Outcome::Exited(0) => Verdict {
            status: Status::Succeeded,
            class: None,
            exit_code: Some(0),
        },
        Outcome::Exited(code) => {
            if rate.exit_codes.contains(code) || rate_limited(rate, log_tail) {
                failed(ErrorClass::RateLimited, Some(*code))
            } else {
                failed(ErrorClass::ExitNonzero, Some(*code))
            }
        }
        Outcome::Signalled(_) => failed(ErrorClass::Killed, None),
        Outcome::TimedOut => failed(ErrorClass::Timeout, None),
        Outcome::Cancelled | Outcome::NotStarted(_) => failed(ErrorClass::Interrupted, None),
        Outcome::SpawnFailed(_) => failed(ErrorClass::SpawnFailed, None),
        Outcome::Lost(_) => failed(ErrorClass::Orphaned, None),
    }
}

/// Does a line of the output contain one of the patterns (case-insensitive substrings)?
fn rate_limited(rate: &RateLimit, log_tail: &str) -> bool {
    if rate.patterns.is_empty() {
        return false;
    }
    let tail = log_tail.to_lowercase();
    rate.patterns
        .iter()
        .filter(|p| !p.is_empty())
        .any(|p| tail.contains(&p.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> RateLimit {
        RateLimit {
            exit_codes: vec![75],
            patterns: vec!["Rate limit exceeded".into(), "HTTP 429".into()],
        }
    }

    fn class(o: Outcome, k: Option<KillReason>, tail: &str) -> (Status, Option<ErrorClass>) {
        let v = classify(&o, k, &rate(), tail);
        (v.status, v.class)
    }

    #[test]
    fn every_outcome_gets_its_class() {
        use ErrorClass as C;
        use Status::{Failed as F, Succeeded as S};
        assert_eq!(class(Outcome::Exited(0), None, ""), (S, None));
        assert_eq!(
            class(Outcome::Exited(1), None, "boom"),
            (F, Some(C::ExitNonzero))
        );
        assert_eq!(
            class(Outcome::Exited(75), None, ""),
            (F, Some(C::RateLimited))
        );
        assert_eq!(
            class(
                Outcome::Exited(1),
                None,
                "error: rate LIMIT exceeded, retry later"
            ),
            (F, Some(C::RateLimited))
        );
        assert_eq!(
            class(Outcome::Exited(2), None, "got http 429"),
            (F, Some(C::RateLimited))
        );
        assert_eq!(class(Outcome::Signalled(9), None, ""), (F, Some(C::Killed)));
        assert_eq!(class(Outcome::TimedOut, None, ""), (F, Some(C::Timeout)));
        assert_eq!(
            class(Outcome::Cancelled, None, ""),
            (F, Some(C::Interrupted))
        );
        assert_eq!(
            class(Outcome::SpawnFailed("no such file".into()), None, ""),
            (F, Some(C::SpawnFailed))
        );
        assert_eq!(
            class(Outcome::Lost("gone".into()), None, ""),
            (F, Some(C::Orphaned))
        );
    }

    #[test]
    fn a_kill_names_the_class_whatever_the_process_did() {
        use ErrorClass as C;
        for (reason, want) in [
            (KillReason::Timeout, C::Timeout),
            (KillReason::Idle, C::IdleTimeout),
            (KillReason::FirstOutput, C::FirstOutputTimeout),
            (KillReason::Interrupt, C::Interrupted),
        ] {
            for o in [
                Outcome::Cancelled,
                Outcome::Signalled(15),
                Outcome::Exited(143),
            ] {
                assert_eq!(class(o, Some(reason), "rate limit exceeded").1, Some(want));
            }
        }
        // it finished cleanly before the kill landed: that is a success
        assert_eq!(
            class(Outcome::Exited(0), Some(KillReason::Timeout), "").0,
            Status::Succeeded
        );
    }

    #[test]
    fn a_nonzero_exit_with_no_patterns_configured_is_just_a_failure() {
        let v = classify(
            &Outcome::Exited(1),
            None,
            &RateLimit::default(),
            "rate limit",
        );
        assert_eq!(v.class, Some(ErrorClass::ExitNonzero));
    }
}
