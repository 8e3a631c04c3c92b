//! Keyed GCRA rate limits (governor) per webhook source, with an adaptive penalty.
//!
//! Each source has its own quota (`rate_per_second`, `rate_burst`). When at least half of the
//! source's last 20 requests failed signature checks (10 failures among the last 20), the
//! source is held to 1 request/s for 60 s; [`RateLimits::record_outcome`] reports when such a
//! penalty begins so the caller can audit it. Limiters read the injectable [`crate::clock`].
//! 429 answers carry `Retry-After` and the `RateLimit-Policy` / `RateLimit` fields of
//! draft-ietf-httpapi-ratelimit-headers.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;

/// Outcomes remembered per source for the adaptive penalty.
pub const FAILURE_WINDOW: usize = 20;
/// Failures within the window that start a penalty.
pub const FAILURE_THRESHOLD: usize = 10;
/// Penalty length, seconds.
pub const PENALTY_SECS: i64 = 60;

#[derive(Debug, Clone)]
struct GovClock(SharedClock);

impl GovernorClock for GovClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(u64::try_from(self.0.now_nanos()).unwrap_or(0))
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, GovClock, StateInformationMiddleware>;

struct SourceState {
    quota: (u32, u32),
    limiter: Limiter,
    penalty: Limiter,
    outcomes: VecDeque<bool>,
    penalty_until: Option<i64>,
}

/// A rate-limit verdict with the header values to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateDecision {
    /// Let through.
    Allowed {
        /// Quota units (burst).
        limit: u32,
        /// Requests left in the burst.
        remaining: u32,
        /// Policy window, seconds.
        window_secs: u64,
    },
    /// Refuse with 429.
    Limited {
        /// Seconds until a request may succeed (`Retry-After`), at least 1.
        retry_after_secs: u64,
        /// Quota units (burst) of the policy in force.
        limit: u32,
        /// Policy window, seconds.
        window_secs: u64,
        /// Whether the adaptive penalty is in force.
        penalised: bool,
    },
}

impl RateDecision {
    /// `RateLimit-Policy` and `RateLimit` header values.
    pub fn headers(&self) -> [(&'static str, String); 2] {
        match self {
            RateDecision::Allowed {
                limit,
                remaining,
                window_secs,
            } => [
                (
                    "RateLimit-Policy",
                    format!("\"source\";q={limit};w={window_secs}"),
                ),
                ("RateLimit", format!("\"source\";r={remaining};t=0")),
            ],
            RateDecision::Limited {
                retry_after_secs,
                limit,
                window_secs,
                penalised,
            } => {
                let name = if *penalised { "penalty" } else { "source" };
                [
                    (
                        "RateLimit-Policy",
                        format!("\"{name}\";q={limit};w={window_secs}"),
                    ),
                    ("RateLimit", format!("\"{name}\";r=0;t={retry_after_secs}")),
                ]
            }
        }
    }
}

/// Per-source limiters.
pub struct RateLimits {
    clock: SharedClock,
    sources: Mutex<HashMap<String, SourceState>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let per = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per).allow_burst(burst)
}

impl RateLimits {
    /// Limiters reading `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn new_limiter(&self, per_second: u32, burst: u32) -> Limiter {
        RateLimiter::direct_with_clock(quota(per_second, burst), GovClock(self.clock.clone()))
            .with_middleware::<StateInformationMiddleware>()
    }

    /// The state of `key`, created (or recreated after a quota change, keeping any penalty).
    fn state<'a>(
        &self,
        map: &'a mut HashMap<String, SourceState>,
        key: &str,
        per_second: u32,
        burst: u32,
    ) -> &'a mut SourceState {
        let fresh = |penalty_until| SourceState {
            quota: (per_second, burst),
            limiter: self.new_limiter(per_second, burst),
            penalty: self.new_limiter(1, 1),
            outcomes: VecDeque::with_capacity(FAILURE_WINDOW),
            penalty_until,
        };
        let st = map.entry(key.to_string()).or_insert_with(|| fresh(None));
        if st.quota != (per_second, burst) {
            *st = fresh(st.penalty_until);
        }
        st
    }

    /// Takes one request from the quota of `key` (a source id).
    pub fn check(&self, key: &str, per_second: u32, burst: u32) -> RateDecision {
        let now = self.clock.now_unix();
        let now_nanos = GovClock(self.clock.clone()).now();
        let mut map = match self.sources.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let st = self.state(&mut map, key, per_second, burst);
        let window_secs = u64::from(burst.div_ceil(per_second.max(1))).max(1);
        if st.penalty_until.is_some_and(|until| now < until) {
            return match st.penalty.check() {
                Ok(_) => RateDecision::Allowed {
                    limit: 1,
                    remaining: 0,
                    window_secs: 1,
                },
                Err(not_until) => RateDecision::Limited {
                    retry_after_secs: not_until.wait_time_from(now_nanos).as_secs().max(1),
                    limit: 1,
                    window_secs: 1,
                    penalised: true,
                },
            };
        }
        st.penalty_until = None;
        match st.limiter.check() {
            Ok(snapshot) => RateDecision::Allowed {
                limit: burst,
                remaining: snapshot.remaining_burst_capacity(),
                window_secs,
            },
            Err(not_until) => {
                let wait = not_until.wait_time_from(now_nanos);
                RateDecision::Limited {
                    retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
                    limit: burst,
                    window_secs,
                    penalised: false,
                }
            }
        }
    }

    /// Records whether a request of `key` failed its signature check. Returns `true` when this
    /// failure starts a penalty (to be audited).
    pub fn record_outcome(&self, key: &str, signature_failed: bool) -> bool {
        let now = self.clock.now_unix();
        let mut map = match self.sources.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let Some(st) = map.get_mut(key) else {
            return false;
        };
        if st.outcomes.len() == FAILURE_WINDOW {
            st.outcomes.pop_front();
        }
        st.outcomes.push_back(signature_failed);
        let failures = st.outcomes.iter().filter(|f| **f).count();
        let penalised = st.penalty_until.is_some_and(|u| now < u);
        if signature_failed && !penalised && failures >= FAILURE_THRESHOLD {
            st.penalty_until = Some(now + PENALTY_SECS);
            st.outcomes.clear();
            st.penalty = self.new_limiter(1, 1);
            return true;
        }
        false
    }

    /// Forgets a source (deleted or reconfigured).
    pub fn forget(&self, key: &str) {
        if let Ok(mut m) = self.sources.lock() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[test]
    fn burst_then_refill_with_injected_clock() {
        let clock = Arc::new(ManualClock::at(1_000));
        let rl = RateLimits::new(clock.clone());
        assert!(matches!(rl.check("s", 1, 2), RateDecision::Allowed { .. }));
        assert!(matches!(rl.check("s", 1, 2), RateDecision::Allowed { .. }));
        match rl.check("s", 1, 2) {
            RateDecision::Limited {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
        clock.advance(1);
        assert!(matches!(rl.check("s", 1, 2), RateDecision::Allowed { .. }));
    }

    #[test]
    fn penalty_after_half_failures() {
        let clock = Arc::new(ManualClock::at(1_000));
        let rl = RateLimits::new(clock.clone());
        let mut started = 0;
        for i in 0..20 {
            assert!(matches!(
                rl.check("s", 100, 100),
                RateDecision::Allowed { .. }
            ));
            if rl.record_outcome("s", i % 2 == 0) {
                started += 1;
            }
        }
        assert_eq!(started, 1);
        // The 20th request used the penalty's single token: the next is refused.
        assert!(matches!(
            rl.check("s", 100, 100),
            RateDecision::Limited {
                penalised: true,
                ..
            }
        ));
        clock.advance(PENALTY_SECS);
        assert!(matches!(
            rl.check("s", 100, 100),
            RateDecision::Allowed { .. }
        ));
        assert!(matches!(
            rl.check("s", 100, 100),
            RateDecision::Allowed { .. }
        ));
    }
}
