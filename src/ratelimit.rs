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

/// The limiters' time: the appliance clock made monotonic. A wall clock stepped backwards
/// (NTP, an operator, a test) would otherwise leave every GCRA state far in the future and
/// refuse every key until the clock caught up; here a backward step only moves the base, and
/// time goes on forward from it.
#[derive(Debug, Clone)]
struct GovClock {
    clock: SharedClock,
    /// (last raw reading, monotonic nanoseconds handed out).
    state: std::sync::Arc<Mutex<(i64, u64)>>,
}

impl GovClock {
    fn new(clock: SharedClock) -> Self {
        let raw = clock.now_nanos();
        Self {
            clock,
            state: std::sync::Arc::new(Mutex::new((raw, u64::try_from(raw).unwrap_or(0)))),
        }
    }
}

impl GovernorClock for GovClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        let raw = self.clock.now_nanos();
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let step = u64::try_from(raw.saturating_sub(st.0)).unwrap_or(0);
        *st = (raw, st.1.saturating_add(step));
        Nanos::from(st.1)
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
    gov: GovClock,
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
            gov: GovClock::new(clock.clone()),
            clock,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn new_limiter(&self, per_second: u32, burst: u32) -> Limiter {
        RateLimiter::direct_with_clock(quota(per_second, burst), self.gov.clone())
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
        let now_nanos = self.gov.now();
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
    fn a_clock_stepped_backwards_does_not_lock_keys_out() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let api = ApiLimits::new(clock.clone());
        let allowed = |api: &ApiLimits| {
            matches!(
                api.check(ApiClass::Query, 2, "k"),
                RateDecision::Allowed { .. }
            )
        };
        assert!(allowed(&api) && allowed(&api));
        assert!(!allowed(&api));
        // An hour back: on the raw clock every key would wait an hour; here 30 s refill one.
        clock.advance(-3600);
        assert!(!allowed(&api));
        clock.advance(30);
        assert!(allowed(&api));
        assert!(!allowed(&api));
    }

    #[test]
    fn api_class_quotas_are_per_key_and_per_quota() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let api = ApiLimits::new(clock.clone());
        for _ in 0..5 {
            assert!(matches!(
                api.check(ApiClass::Export, 5, "a"),
                RateDecision::Allowed { .. }
            ));
        }
        let d = api.check(ApiClass::Export, 5, "a");
        assert!(
            matches!(
                d,
                RateDecision::Limited {
                    retry_after_secs: 12,
                    ..
                }
            ),
            "{d:?}"
        );
        assert_eq!(
            class_headers(ApiClass::Export, &d)[0].1,
            "\"export\";q=5;w=60"
        );
        assert!(matches!(
            api.check(ApiClass::Export, 5, "b"),
            RateDecision::Allowed { .. }
        ));
        // A tenant with a larger quota has its own limiter.
        assert!(matches!(
            api.check(ApiClass::Export, 6, "a"),
            RateDecision::Allowed { .. }
        ));
        clock.advance(120);
        api.forget_idle();
        assert!(matches!(
            api.check(ApiClass::Export, 5, "a"),
            RateDecision::Allowed { remaining: 4, .. }
        ));
        assert_eq!(ApiClass::of("audit.export", true), ApiClass::Export);
        assert_eq!(ApiClass::of("auth.login", false), ApiClass::Auth);
        assert_eq!(ApiClass::of("events.list", true), ApiClass::Query);
        assert_eq!(ApiClass::of("source.create", false), ApiClass::Default);
    }

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

/// The rate class of an API operation (DESIGN §3): logins and password changes, exports,
/// reads, and everything else. Each has its own per-minute quota, keyed by principal (the
/// peer address for logins) and operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiClass {
    /// `auth.login`, `auth.password.change` (default 10 per minute).
    Auth,
    /// Audit and tenant exports (default 5 per minute).
    Export,
    /// Reads (default 300 per minute).
    Query,
    /// Writes and everything else (default 60 per minute).
    Default,
}

impl ApiClass {
    /// Every class.
    pub const ALL: [ApiClass; 4] = [Self::Auth, Self::Export, Self::Query, Self::Default];

    /// The name in the `RateLimit` and `RateLimit-Policy` fields.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Export => "export",
            Self::Query => "query",
            Self::Default => "default",
        }
    }

    /// The class of an operation: `action` is its Cedar action id, `read` whether its method
    /// is safe (GET, HEAD).
    pub fn of(action: &str, read: bool) -> Self {
        if matches!(action, "auth.login" | "auth.password.change") {
            Self::Auth
        } else if action.ends_with(".export") || action.starts_with("tenant.export.") {
            Self::Export
        } else if read {
            Self::Query
        } else {
            Self::Default
        }
    }
}

type KeyedLimiter = RateLimiter<
    String,
    governor::state::keyed::HashMapStateStore<String>,
    GovClock,
    StateInformationMiddleware,
>;

/// Per-class API quotas, requests per minute (GCRA: the whole minute's quota may come as a
/// burst, then it refills evenly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiQuotas {
    /// [`ApiClass::Auth`].
    pub auth: u32,
    /// [`ApiClass::Export`].
    pub export: u32,
    /// [`ApiClass::Query`].
    pub query: u32,
    /// [`ApiClass::Default`].
    pub default: u32,
}

impl ApiQuotas {
    /// The quota of `class`, per minute (at least 1).
    pub fn of(&self, class: ApiClass) -> u32 {
        match class {
            ApiClass::Auth => self.auth,
            ApiClass::Export => self.export,
            ApiClass::Query => self.query,
            ApiClass::Default => self.default,
        }
        .max(1)
    }
}

/// The API's class limiters: one keyed GCRA limiter per (class, quota) in use, so tenants
/// with their own quotas ([`crate::identity::tenant::TenantSettings`]) get their own. Keys are
/// bounded by principals × operations (and peers for logins); [`ApiLimits::forget_idle`] drops
/// those whose quota has refilled.
pub struct ApiLimits {
    gov: GovClock,
    limiters: Mutex<HashMap<(ApiClass, u32), KeyedLimiter>>,
}

impl std::fmt::Debug for ApiLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiLimits").finish_non_exhaustive()
    }
}

impl ApiLimits {
    /// Limiters reading `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            gov: GovClock::new(clock),
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `key` (principal or peer, and operation) from `class`'s quota of
    /// `per_minute` requests (at least 1).
    pub fn check(&self, class: ApiClass, per_minute: u32, key: &str) -> RateDecision {
        let limit = per_minute.max(1);
        let mut map = match self.limiters.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let limiter = map.entry((class, limit)).or_insert_with(|| {
            let q = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
            RateLimiter::hashmap_with_clock(Quota::per_minute(q), self.gov.clone())
                .with_middleware::<StateInformationMiddleware>()
        });
        match limiter.check_key(&key.to_string()) {
            Ok(snapshot) => RateDecision::Allowed {
                limit,
                remaining: snapshot.remaining_burst_capacity(),
                window_secs: 60,
            },
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.gov.now());
                RateDecision::Limited {
                    retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
                    limit,
                    window_secs: 60,
                    penalised: false,
                }
            }
        }
    }

    /// Forgets keys whose quota is full again, and limiters left without keys (bounded
    /// memory; called every flush tick).
    pub fn forget_idle(&self) {
        let mut map = match self.limiters.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        for l in map.values() {
            l.retain_recent();
        }
        map.retain(|_, l| !l.is_empty());
    }
}

/// The `RateLimit-Policy` and `RateLimit` header values of an API class decision.
pub fn class_headers(class: ApiClass, d: &RateDecision) -> [(&'static str, String); 2] {
    let name = class.name();
    match d {
        RateDecision::Allowed {
            limit,
            remaining,
            window_secs,
        } => [
            (
                "RateLimit-Policy",
                format!("\"{name}\";q={limit};w={window_secs}"),
            ),
            ("RateLimit", format!("\"{name}\";r={remaining};t=0")),
        ],
        RateDecision::Limited {
            retry_after_secs,
            limit,
            window_secs,
            ..
        } => [
            (
                "RateLimit-Policy",
                format!("\"{name}\";q={limit};w={window_secs}"),
            ),
            ("RateLimit", format!("\"{name}\";r=0;t={retry_after_secs}")),
        ],
    }
}
