//! Injectable wall clock.
//!
//! Every time window in Evidentia (signature timestamp tolerance, replay window, secret
//! rotation grace period, rate-limit penalties, audit aggregation minutes, retention) reads the
//! time through [`Clock`], so tests pin the clock instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of wall-clock time in Unix nanoseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds since the Unix epoch (UTC).
    fn now_nanos(&self) -> i64;

    /// Whole seconds since the Unix epoch (UTC).
    fn now_unix(&self) -> i64 {
        self.now_nanos().div_euclid(1_000_000_000)
    }
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place that reads the operating system's clock; everything else gets it from here"
    )]
    fn now_nanos(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to (tests, conformance vectors).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock pinned at `unix_seconds`.
    pub fn at(unix_seconds: i64) -> Self {
        Self(AtomicI64::new(unix_seconds.saturating_mul(1_000_000_000)))
    }

    /// Pins the clock at `unix_seconds`.
    pub fn set(&self, unix_seconds: i64) {
        self.0
            .store(unix_seconds.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }

    /// Moves the clock forward by `seconds` (may be negative).
    pub fn advance(&self, seconds: i64) {
        self.0
            .fetch_add(seconds.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix seconds as an RFC 3339 UTC timestamp (`2026-11-30T12:00:00Z`).
pub fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_seconds.to_string())
}
