//! Retry delays: exponential backoff with jitter and a cap, as a pure function of the attempt
//! and a seed, so agents that failed together (a rate limit) do not retry in lockstep.

use std::time::Duration;

/// `delay(n) = min(cap, base · 2^(n-1))`, then "equal jitter": half of it fixed, the other half
/// spread by the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// The delay before the attempt after failure number `failures` (1 for the first).
    pub fn delay(&self, failures: u32, seed: u64) -> Duration {
        let base = self.base.as_millis() as u64;
        let cap = self.cap.as_millis() as u64;
        let exp = failures.saturating_sub(1).min(40);
        let full = base.saturating_mul(1u64 << exp).min(cap);
        let half = full / 2;
        let jitter = if half == 0 {
            0
        } else {
            mix(seed) % (full - half + 1)
        };
        Duration::from_millis(half + jitter)
    }
}

/// A seed for one agent's attempt: the same agent and attempt in the same run always get the
/// same delay, different agents different ones.
pub fn seed(run_nonce: u64, agent: &str, attempt: u32) -> u64 {
    // FNV-1a over the agent id, then mixed with the run and the attempt
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in agent.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h ^ run_nonce.rotate_left(17) ^ u64::from(attempt))
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn delays_grow_stay_within_half_and_full_and_are_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        for seed in 0..200u64 {
            for failures in 1..=8u32 {
                let full = (100u64 << (failures - 1)).min(1000);
                let d = ms(b.delay(failures, seed));
                assert!(
                    d >= full / 2 && d <= full,
                    "failure {failures}, seed {seed}: {d} ms not in [{}, {full}]",
                    full / 2
                );
            }
        }
        // huge attempt numbers neither overflow nor pass the cap
        assert!(ms(b.delay(u32::MAX, 7)) <= 1000);
    }

    #[test]
    fn agents_failing_together_do_not_retry_in_lockstep() {
        let b = Backoff {
            base: Duration::from_millis(1000),
            cap: Duration::from_secs(60),
        };
        let delays: std::collections::BTreeSet<u64> = (0..16)
            .map(|i| ms(b.delay(3, seed(42, &format!("agent-{i}"), 3))))
            .collect();
        // 16 agents, delays spread over [2000, 4000] ms: nearly all distinct
        assert!(delays.len() >= 14, "{delays:?}");
        assert_eq!(
            b.delay(3, seed(42, "a", 3)),
            b.delay(3, seed(42, "a", 3)),
            "deterministic for one agent and attempt"
        );
    }
}
