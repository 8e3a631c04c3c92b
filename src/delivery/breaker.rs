//! Per-endpoint circuit breaker.
//!
//! Closed: every attempt goes out and its result is kept for [`BreakerConfig::window_secs`]
//! (5 minutes). When the window holds at least [`BreakerConfig::min_attempts`] (10) results and
//! at least [`BreakerConfig::failure_ratio`] (70 %) of them are failures — blocked addresses,
//! timeouts and error statuses alike — the breaker opens: attempts are held back for
//! [`BreakerConfig::open_secs`] (60 s). Then it is half-open: one probe at a time goes out
//! (a probe that never reports back is replaced after `open_secs`); a successful probe closes
//! the breaker with an empty window, a failed one opens it again.
//!
//! Every state change is returned as a [`Transition`] value for the caller to write to the
//! audit log. Time is a parameter (Unix seconds).

use std::collections::VecDeque;

/// Thresholds of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BreakerConfig {
    /// Length of the sliding window of results, in seconds.
    pub window_secs: i64,
    /// Results needed in the window before the breaker may open.
    pub min_attempts: u32,
    /// Share of failures in the window (0–1) at which it opens.
    pub failure_ratio: f64,
    /// How long it stays open before a probe, in seconds.
    pub open_secs: i64,
    /// Results kept at most (bounded memory under floods).
    pub max_samples: usize,
}

impl Default for BreakerConfig {
    /// 5 min window, ≥ 10 attempts, ≥ 70 % failures, 60 s open, 4096 results kept.
    fn default() -> Self {
        Self {
            window_secs: 300,
            min_attempts: 10,
            failure_ratio: 0.7,
            open_secs: 60,
            max_samples: 4096,
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BreakerState {
    /// Attempts flow.
    Closed,
    /// Attempts held back until `until` (Unix seconds).
    Open {
        /// When a probe may go out.
        until: i64,
    },
    /// One probe at a time.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A state change, for the audit log (`integration.breaker.open`, …).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Unix time of the change.
    pub at: i64,
    /// Failures in the window when it changed.
    pub failures: u32,
    /// Results in the window when it changed.
    pub attempts: u32,
}

/// Whether an attempt may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go.
    Allowed,
    /// Go, as the half-open probe.
    Probe,
    /// Hold the delivery until this Unix time (it is not counted as an attempt).
    Held {
        /// The earliest time to ask again.
        until: i64,
    },
}

/// One endpoint's breaker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    samples: VecDeque<(i64, bool)>,
    probe_started: Option<i64>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed,
            samples: VecDeque::new(),
            probe_started: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    fn counts(&self) -> (u32, u32) {
        let attempts = u32::try_from(self.samples.len()).unwrap_or(u32::MAX);
        let failures =
            u32::try_from(self.samples.iter().filter(|(_, ok)| !ok).count()).unwrap_or(u32::MAX);
        (failures, attempts)
    }

    fn prune(&mut self, now: i64) {
        while let Some(&(t, _)) = self.samples.front() {
            if now - t >= self.config.window_secs {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    fn change(&mut self, to: BreakerState, now: i64) -> Transition {
        let (failures, attempts) = self.counts();
        let from = self.state;
        self.state = to;
        Transition {
            from,
            to,
            at: now,
            failures,
            attempts,
        }
    }

    /// Asks whether an attempt may go out at `now`; may move Open → HalfOpen.
    pub fn admit(&mut self, now: i64) -> (Admission, Option<Transition>) {
        match self.state {
            BreakerState::Closed => (Admission::Allowed, None),
            BreakerState::Open { until } if now < until => (Admission::Held { until }, None),
            BreakerState::Open { .. } => {
                let t = self.change(BreakerState::HalfOpen, now);
                self.probe_started = Some(now);
                (Admission::Probe, Some(t))
            }
            BreakerState::HalfOpen => match self.probe_started {
                Some(started) if now - started < self.config.open_secs => (
                    Admission::Held {
                        until: started + self.config.open_secs,
                    },
                    None,
                ),
                _ => {
                    self.probe_started = Some(now);
                    (Admission::Probe, None)
                }
            },
        }
    }

    /// Records the result of an attempt that was admitted; returns the state change, if any.
    pub fn record(&mut self, now: i64, success: bool) -> Option<Transition> {
        self.prune(now);
        match self.state {
            BreakerState::HalfOpen => {
                self.probe_started = None;
                if success {
                    self.samples.clear();
                    Some(self.change(BreakerState::Closed, now))
                } else {
                    self.samples.push_back((now, false));
                    Some(self.change(
                        BreakerState::Open {
                            until: now + self.config.open_secs,
                        },
                        now,
                    ))
                }
            }
            BreakerState::Open { .. } => None,
            BreakerState::Closed => {
                if self.samples.len() >= self.config.max_samples {
                    self.samples.pop_front();
                }
                self.samples.push_back((now, success));
                let (failures, attempts) = self.counts();
                let ratio = f64::from(failures) / f64::from(attempts.max(1));
                (attempts >= self.config.min_attempts && ratio >= self.config.failure_ratio).then(
                    || {
                        self.change(
                            BreakerState::Open {
                                until: now + self.config.open_secs,
                            },
                            now,
                        )
                    },
                )
            }
        }
    }
}
