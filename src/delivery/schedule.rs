//! When a delivery is attempted again, and when an endpoint is given up on.
//!
//! The retry table is the Standard Webhooks / Svix schedule: after the first attempt (at once)
//! the next attempts wait 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h — eight attempts over
//! about 27.7 hours — each delay with ±20 % uniform jitter from an injectable RNG, so that a
//! fleet of deliveries that failed together does not retry together. A `Retry-After` header
//! (RFC 9110 §10.2.3, seconds or HTTP-date) on a 429 or 503 answer pushes the next attempt to at
//! least that time, capped at [`MAX_RETRY_AFTER_SECS`] so that an endpoint cannot park a
//! delivery for ever. A 410 Gone disables the integration at once. An endpoint that has not
//! accepted a single delivery for [`DISABLE_AFTER_SECS`] (5 days) is disabled
//! ([`EndpointHealth`]).
//!
//! All times are Unix seconds; `now` is always a parameter.

use rand::Rng;

use super::client::AttemptOutcome;

/// Delay before each attempt, in seconds: attempt 1 at once, attempt 8 ten hours after the 7th.
pub const DELAYS_SECS: [i64; 8] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// Jitter applied to each delay: ±20 %.
pub const JITTER: f64 = 0.20;
/// Upper bound on a `Retry-After` delay: 10 h (the longest step of the table).
pub const MAX_RETRY_AFTER_SECS: i64 = 36_000;
/// An endpoint failing without a single success for this long is disabled: 5 days.
pub const DISABLE_AFTER_SECS: i64 = 5 * 24 * 3600;

/// A `Retry-After` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RetryAfter {
    /// `delay-seconds`.
    Seconds(u64),
    /// An HTTP-date, as Unix seconds.
    At(i64),
}

impl RetryAfter {
    /// Parses a header value: `delay-seconds` or any of the three HTTP-date forms.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        if !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()) {
            return v.parse().ok().map(Self::Seconds);
        }
        let t = httpdate::parse_http_date(v).ok()?;
        let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        i64::try_from(secs).ok().map(Self::At)
    }

    /// The Unix time it names, seen at `now`.
    pub fn until(self, now: i64) -> i64 {
        match self {
            Self::Seconds(s) => now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)),
            Self::At(t) => t,
        }
    }
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Accepted: the delivery is done.
    Delivered,
    /// Try again at this Unix time.
    RetryAt(i64),
    /// All attempts of the table were used: the delivery has failed.
    Exhausted,
    /// The endpoint answered 410 Gone: disable the integration now.
    DisableIntegration,
}

/// The retry table with its jitter.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    delays: Vec<i64>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: DELAYS_SECS.to_vec(),
            jitter: JITTER,
        }
    }
}

impl RetrySchedule {
    /// Most attempts a delivery gets.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// The jittered delay before attempt `attempt` (1-based) in seconds; `None` past the table.
    pub fn delay_before(&self, attempt: u32, rng: &mut impl Rng) -> Option<i64> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        let base = *self.delays.get(index)?;
        if base == 0 {
            return Some(0);
        }
        let factor = rng.random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        Some((base as f64 * factor).round() as i64)
    }

    /// Decides after attempt number `attempt` (1-based) that ended at `now` with `outcome`.
    pub fn after_attempt(
        &self,
        attempt: u32,
        outcome: &AttemptOutcome,
        now: i64,
        rng: &mut impl Rng,
    ) -> Next {
        if outcome.is_success() {
            return Next::Delivered;
        }
        if outcome.status == Some(410) {
            return Next::DisableIntegration;
        }
        let Some(delay) = self.delay_before(attempt.saturating_add(1), rng) else {
            return Next::Exhausted;
        };
        let mut at = now.saturating_add(delay);
        if matches!(outcome.status, Some(429 | 503))
            && let Some(ra) = outcome.retry_after
        {
            let wanted = ra.until(now).min(now.saturating_add(MAX_RETRY_AFTER_SECS));
            at = at.max(wanted);
        }
        Next::RetryAt(at)
    }
}

/// An endpoint's failure streak, for the five-day disable rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointHealth {
    /// Unix time of the first failure since the last success.
    pub failing_since: Option<i64>,
}

/// A change of an endpoint's health the caller must act on and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    /// No success since `failing_since` for [`DISABLE_AFTER_SECS`]: disable the integration.
    Disable {
        /// When the failure streak began.
        failing_since: i64,
    },
}

impl EndpointHealth {
    /// Records an attempt's result at `now`.
    pub fn record(&mut self, success: bool, now: i64) -> Option<HealthChange> {
        if success {
            self.failing_since = None;
            return None;
        }
        let since = *self.failing_since.get_or_insert(now);
        (now - since >= DISABLE_AFTER_SECS).then_some(HealthChange::Disable {
            failing_since: since,
        })
    }
}
