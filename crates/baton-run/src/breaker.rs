//! The circuit breaker: when agents keep failing with the same environment-level class (a
//! missing binary, a rate limit), stop launching new ones instead of burning through the plan.

use std::collections::BTreeSet;

use baton_plan::{AgentId, BreakerState, BreakerTrip, ErrorClass};

use crate::clock;

/// Why launching stopped, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub class: ErrorClass,
    pub agents: Vec<AgentId>,
    /// When launching may try again (rate limits cool down); `None`: only after a fix and
    /// `--resume`.
    pub until_ms: Option<u64>,
}

impl Trip {
    pub fn hint(&self) -> String {
        let who = self
            .agents
            .iter()
            .map(AgentId::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        match self.class {
            ErrorClass::SpawnFailed => format!(
                "agents {who} could not be started (command not found or not executable); fix the command or its profile, then resume"
            ),
            ErrorClass::RateLimited => format!(
                "agents {who} were rate-limited; launching pauses before trying one agent again"
            ),
            _ => format!("agents {who} failed the same way"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Breaker {
    /// Distinct agents failing in a row with one class that open the breaker.
    pub threshold: usize,
    /// How long a rate limit pauses launching (doubles each time it trips again).
    pub cooldown_ms: u64,
    streak: Option<(ErrorClass, BTreeSet<AgentId>)>,
    trips: u32,
    open: Option<Trip>,
}

/// Classes that say something about the environment, not about one agent's work.
fn trips_on(class: ErrorClass) -> bool {
    matches!(class, ErrorClass::SpawnFailed | ErrorClass::RateLimited)
}

impl Breaker {
    pub fn new(threshold: usize, cooldown_ms: u64) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown_ms,
            streak: None,
            trips: 0,
            open: None,
        }
    }

    /// An attempt failed; returns the trip if this failure opened the breaker.
    pub fn failed(&mut self, agent: &AgentId, class: ErrorClass, now_ms: u64) -> Option<Trip> {
        if !trips_on(class) {
            return None;
        }
        let already_open = self.is_open(now_ms);
        let streak = match &mut self.streak {
            Some((c, agents)) if *c == class => agents,
            _ => {
                self.streak = Some((class, BTreeSet::new()));
                &mut self.streak.as_mut().expect("just set").1
            }
        };
        streak.insert(agent.clone());
        if streak.len() < self.threshold || already_open {
            return None;
        }
        self.trips += 1;
        let until_ms = (class == ErrorClass::RateLimited).then(|| {
            now_ms.saturating_add(
                self.cooldown_ms
                    .saturating_mul(1u64 << (self.trips - 1).min(10)),
            )
        });
        let trip = Trip {
            class,
            agents: streak.iter().cloned().collect(),
            until_ms,
        };
        self.open = Some(trip.clone());
        Some(trip)
    }

    /// An attempt succeeded: the streak is broken and the breaker closes.
    pub fn succeeded(&mut self) {
        self.streak = None;
        self.open = None;
        self.trips = 0;
    }

    /// Is launching stopped at `now_ms`?
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.open
            .as_ref()
            .is_some_and(|t| t.until_ms.is_none_or(|u| now_ms < u))
    }

    pub fn trip(&self) -> Option<&Trip> {
        self.open.as_ref()
    }

    /// When an open breaker lets one agent try again, if it ever does.
    pub fn reopens_at(&self) -> Option<u64> {
        self.open.as_ref().and_then(|t| t.until_ms)
    }

    /// The state to persist in the execution (`None` when there is nothing to remember);
    /// times are wall-clock milliseconds, written as RFC 3339.
    pub fn state(&self) -> Option<BreakerState> {
        let state = BreakerState {
            class: self.streak.as_ref().map(|(c, _)| *c),
            agents: self
                .streak
                .as_ref()
                .map(|(_, a)| a.iter().cloned().collect())
                .unwrap_or_default(),
            trips: self.trips,
            open: self.open.as_ref().map(|t| BreakerTrip {
                class: t.class,
                agents: t.agents.clone(),
                until: t.until_ms.map(clock::rfc3339),
            }),
        };
        (state != BreakerState::default()).then_some(state)
    }

    /// A breaker as an earlier runner left it. A trip that waits for a fix (a missing
    /// command) is closed — starting the run again is how the user says it is fixed — but its
    /// streak is kept, so one more failure of the same class stops launching again; a rate
    /// limit's pause keeps its end.
    pub fn restore(threshold: usize, cooldown_ms: u64, state: Option<&BreakerState>) -> Self {
        let mut b = Breaker::new(threshold, cooldown_ms);
        let Some(s) = state else {
            return b;
        };
        b.streak = s.class.map(|c| (c, s.agents.iter().cloned().collect()));
        b.trips = s.trips;
        b.open = s.open.as_ref().and_then(|t| {
            let until_ms = t.until.as_deref().and_then(clock::parse_ms)?;
            Some(Trip {
                class: t.class,
                agents: t.agents.clone(),
                until_ms: Some(until_ms),
            })
        });
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    #[test]
    fn a_missing_binary_trips_on_the_second_agent_and_stays_open() {
        let mut b = Breaker::new(2, 1000);
        assert_eq!(b.failed(&a("x"), ErrorClass::SpawnFailed, 0), None);
        assert!(!b.is_open(0));
        // the same agent again is not a repeat across agents
        assert_eq!(b.failed(&a("x"), ErrorClass::SpawnFailed, 1), None);
        let trip = b
            .failed(&a("y"), ErrorClass::SpawnFailed, 2)
            .expect("trips");
        assert_eq!(trip.agents, vec![a("x"), a("y")]);
        assert_eq!(trip.until_ms, None);
        assert!(b.is_open(u64::MAX));
        assert!(trip.hint().contains("x, y"), "{}", trip.hint());
    }

    #[test]
    fn ordinary_failures_and_other_classes_do_not_trip() {
        let mut b = Breaker::new(2, 1000);
        for (i, class) in [
            ErrorClass::ExitNonzero,
            ErrorClass::Timeout,
            ErrorClass::Killed,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(b.failed(&a(&format!("a{i}")), class, 0), None);
            assert_eq!(b.failed(&a(&format!("b{i}")), class, 0), None);
        }
        // a class change restarts the streak
        assert_eq!(b.failed(&a("p"), ErrorClass::SpawnFailed, 0), None);
        assert_eq!(b.failed(&a("q"), ErrorClass::RateLimited, 0), None);
        assert!(!b.is_open(0));
    }

    #[test]
    fn a_restored_breaker_keeps_its_pause_and_its_streak() {
        let mut b = Breaker::new(2, 1000);
        b.failed(&a("x"), ErrorClass::RateLimited, 0);
        let now = 1_700_000_000_000;
        let t = b.failed(&a("y"), ErrorClass::RateLimited, now).unwrap();
        let r = Breaker::restore(2, 1000, b.state().as_ref());
        assert_eq!(r.reopens_at(), t.until_ms);
        assert!(r.is_open(now + 999) && !r.is_open(now + 1000));
        assert_eq!(r.state(), b.state());
        // a missing command: the restored run may try again, but one more failure stops it
        let mut b = Breaker::new(2, 1000);
        b.failed(&a("x"), ErrorClass::SpawnFailed, 0);
        b.failed(&a("y"), ErrorClass::SpawnFailed, 1).unwrap();
        let mut r = Breaker::restore(2, 1000, b.state().as_ref());
        assert!(!r.is_open(2));
        assert!(r.failed(&a("z"), ErrorClass::SpawnFailed, 3).is_some());
        assert_eq!(Breaker::new(2, 1000).state(), None);
    }

    #[test]
    fn rate_limits_cool_down_with_growing_pauses_and_success_closes() {
        let mut b = Breaker::new(2, 1000);
        b.failed(&a("x"), ErrorClass::RateLimited, 0);
        let t = b.failed(&a("y"), ErrorClass::RateLimited, 10).unwrap();
        assert_eq!(t.until_ms, Some(1010));
        assert!(b.is_open(1009));
        assert!(!b.is_open(1010));
        // the probe after the pause is limited again: a longer pause
        let t = b.failed(&a("z"), ErrorClass::RateLimited, 1100).unwrap();
        assert_eq!(t.until_ms, Some(3100));
        b.succeeded();
        assert!(!b.is_open(1200));
        assert_eq!(b.failed(&a("w"), ErrorClass::RateLimited, 1300), None);
    }
}
