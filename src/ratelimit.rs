//! Keyed GCRA rate limits (governor) per webhook source, with an adaptive penalty per peer.
//!
//! Each source has its own quota (`rate_per_second`, `rate_burst`). The penalty is keyed by the
//! failing **peer** of a source, so a stranger who knows a source URL cannot silence its real
//! sender: when at least half of one peer's last 20 requests to a source failed signature checks
//! (10 of 20), that peer is held to 1 request/s for 60 s. When many peers fail at once
//! ([`SWARM_PEERS`] penalised within a penalty period: a distributed forger), the source goes on
//! alert and each peer is penalised after [`ALERT_THRESHOLD`] failures instead; a peer that is
//! not penalised is never limited by others' penalties. At most [`MAX_PEERS`] peers are tracked
//! per source (the least recently seen unpenalised one is forgotten first), so the memory is
//! bounded. [`RateLimits::record_outcome`] reports when a penalty begins so the caller can audit
//! it. Limiters read the injectable [`crate::clock`].
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
/// Penalised peers within one penalty period that put their source on alert.
pub const SWARM_PEERS: usize = 5;
/// Failures within the window that penalise a peer while its source is on alert.
pub const ALERT_THRESHOLD: usize = 3;
/// Most peers whose outcomes are remembered per source.
pub const MAX_PEERS: usize = 1024;

#[derive(Debug, Clone)]
struct GovClock(SharedClock);

impl GovernorClock for GovClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(u64::try_from(self.0.now_nanos()).unwrap_or(0))
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, GovClock, StateInformationMiddleware>;

struct PeerState {
    outcomes: VecDeque<bool>,
    penalty: Option<(i64, Limiter)>,
    last_seen: i64,
}

struct SourceState {
    quota: (u32, u32),
    limiter: Limiter,
    peers: HashMap<String, PeerState>,
    /// When each of the recent peer penalties began (for the alert).
    recent_penalties: VecDeque<i64>,
}

impl SourceState {
    fn on_alert(&self, now: i64) -> bool {
        self.recent_penalties
            .iter()
            .filter(|t| now - **t < PENALTY_SECS)
            .count()
            >= SWARM_PEERS
    }
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

    /// The state of `key`, created (or recreated after a quota change, keeping the peers).
    fn state<'a>(
        &self,
        map: &'a mut HashMap<String, SourceState>,
        key: &str,
        per_second: u32,
        burst: u32,
    ) -> &'a mut SourceState {
        let st = map.entry(key.to_string()).or_insert_with(|| SourceState {
            quota: (per_second, burst),
            limiter: self.new_limiter(per_second, burst),
            peers: HashMap::new(),
            recent_penalties: VecDeque::new(),
        });
        if st.quota != (per_second, burst) {
            st.quota = (per_second, burst);
            st.limiter = self.new_limiter(per_second, burst);
        }
        st
    }

    /// Takes one request of `peer` from the quota of `key` (a source id). A penalised peer is
    /// held to its penalty's 1 request/s; other peers only to the source quota.
    pub fn check(&self, key: &str, peer: &str, per_second: u32, burst: u32) -> RateDecision {
        let now = self.clock.now_unix();
        let now_nanos = GovClock(self.clock.clone()).now();
        let mut map = match self.sources.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let st = self.state(&mut map, key, per_second, burst);
        let window_secs = u64::from(burst.div_ceil(per_second.max(1))).max(1);
        if let Some(p) = st.peers.get_mut(peer) {
            p.last_seen = now;
            match &p.penalty {
                Some((until, limiter)) if now < *until => {
                    return match limiter.check() {
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
                Some(_) => p.penalty = None,
                None => {}
            }
        }
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

    /// Records whether a request of `peer` to `key` failed its signature check. Returns `true`
    /// when this failure starts a penalty of that peer (to be audited).
    pub fn record_outcome(&self, key: &str, peer: &str, signature_failed: bool) -> bool {
        let now = self.clock.now_unix();
        let mut map = match self.sources.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let Some(st) = map.get_mut(key) else {
            return false;
        };
        if !st.peers.contains_key(peer) {
            if !signature_failed {
                // Only failing peers need remembering.
                return false;
            }
            if st.peers.len() >= MAX_PEERS {
                let evict = st
                    .peers
                    .iter()
                    .filter(|(_, p)| p.penalty.as_ref().is_none_or(|(u, _)| now >= *u))
                    .min_by_key(|(_, p)| p.last_seen)
                    .map(|(k, _)| k.clone());
                match evict {
                    Some(k) => {
                        st.peers.remove(&k);
                    }
                    None => return false,
                }
            }
            st.peers.insert(
                peer.to_string(),
                PeerState {
                    outcomes: VecDeque::with_capacity(FAILURE_WINDOW),
                    penalty: None,
                    last_seen: now,
                },
            );
        }
        let alert = st.on_alert(now);
        let Some(p) = st.peers.get_mut(peer) else {
            return false;
        };
        if p.outcomes.len() == FAILURE_WINDOW {
            p.outcomes.pop_front();
        }
        p.outcomes.push_back(signature_failed);
        let failures = p.outcomes.iter().filter(|f| **f).count();
        let penalised = p.penalty.as_ref().is_some_and(|(u, _)| now < *u);
        let threshold = if alert {
            ALERT_THRESHOLD
        } else {
            FAILURE_THRESHOLD
        };
        if signature_failed && !penalised && failures >= threshold {
            p.penalty = Some((now + PENALTY_SECS, self.new_limiter(1, 1)));
            p.outcomes.clear();
            st.recent_penalties.push_back(now);
            while st
                .recent_penalties
                .front()
                .is_some_and(|t| now - *t >= PENALTY_SECS)
                || st.recent_penalties.len() > MAX_PEERS
            {
                st.recent_penalties.pop_front();
            }
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
        assert!(matches!(
            rl.check("s", "p", 1, 2),
            RateDecision::Allowed { .. }
        ));
        assert!(matches!(
            rl.check("s", "p", 1, 2),
            RateDecision::Allowed { .. }
        ));
        match rl.check("s", "p", 1, 2) {
            RateDecision::Limited {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
        clock.advance(1);
        assert!(matches!(
            rl.check("s", "p", 1, 2),
            RateDecision::Allowed { .. }
        ));
    }

    #[test]
    fn penalty_after_half_failures_hits_the_failing_peer_only() {
        let clock = Arc::new(ManualClock::at(1_000));
        let rl = RateLimits::new(clock.clone());
        let mut started = 0;
        for i in 0..20 {
            assert!(matches!(
                rl.check("s", "forger", 100, 100),
                RateDecision::Allowed { .. }
            ));
            if rl.record_outcome("s", "forger", i % 2 == 0) {
                started += 1;
            }
        }
        assert_eq!(started, 1);
        // The 20th request used the penalty's single token: the next is refused.
        assert!(matches!(
            rl.check("s", "forger", 100, 100),
            RateDecision::Limited {
                penalised: true,
                ..
            }
        ));
        // Another peer of the same source is not limited by it.
        for _ in 0..10 {
            assert!(matches!(
                rl.check("s", "sender", 100, 100),
                RateDecision::Allowed { .. }
            ));
            assert!(!rl.record_outcome("s", "sender", false));
        }
        clock.advance(PENALTY_SECS);
        for _ in 0..2 {
            assert!(matches!(
                rl.check("s", "forger", 100, 100),
                RateDecision::Allowed { .. }
            ));
        }
    }

    #[test]
    fn many_failing_peers_put_the_source_on_alert_with_bounded_memory() {
        let clock = Arc::new(ManualClock::at(1_000));
        let rl = RateLimits::new(clock.clone());
        let mut penalised = 0;
        for peer in 0..SWARM_PEERS {
            let peer = format!("10.0.0.{peer}");
            for _ in 0..FAILURE_THRESHOLD {
                let _ = rl.check("s", &peer, 1000, 1000);
                penalised += usize::from(rl.record_outcome("s", &peer, true));
            }
        }
        assert_eq!(penalised, SWARM_PEERS);
        // On alert, a new failing peer is penalised after ALERT_THRESHOLD failures.
        let mut starts = Vec::new();
        for _ in 0..ALERT_THRESHOLD {
            let _ = rl.check("s", "10.0.1.1", 1000, 1000);
            starts.push(rl.record_outcome("s", "10.0.1.1", true));
        }
        assert_eq!(starts.last(), Some(&true));
        // A peer that is not failing is never limited by the others.
        for _ in 0..50 {
            assert!(matches!(
                rl.check("s", "sender", 1000, 1000),
                RateDecision::Allowed { .. }
            ));
        }
        // Thousands of distinct failing peers: the tracked set stays bounded.
        for i in 0..(MAX_PEERS * 3) {
            let peer = format!("peer-{i}");
            let _ = rl.check("s", &peer, 1_000_000, 1_000_000);
            let _ = rl.record_outcome("s", &peer, true);
        }
        let peers = rl.sources.lock().map(|m| m["s"].peers.len()).unwrap_or(0);
        assert!(peers <= MAX_PEERS, "{peers}");
    }
}
