//! Login brute-force limits, per username and per peer address: [`LockoutPolicy::default`]
//! locks a key for 15 minutes after 5 failures within 5 minutes (OWASP Authentication Cheat
//! Sheet, "account lockout"). Checked before the password is verified — a locked key is
//! refused even with the right password — and fed with every failure. Time is the caller's
//! `now` (Unix seconds).
//!
//! State is in memory and bounded ([`MAX_KEYS`]); a restart clears it. Each failure answers
//! whether it *started* a lock, so the API writes one audit record per lock, not one per
//! attempt.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Most keys tracked at once; beyond it, idle keys are dropped, then the oldest unlocked.
pub const MAX_KEYS: usize = 100_000;

/// Limits, in failures and seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that lock (default 5).
    pub max_failures: usize,
    /// Window the failures must fall in (default 300 s).
    pub window_seconds: i64,
    /// Lock duration (default 900 s).
    pub lock_seconds: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_seconds: 300,
            lock_seconds: 900,
        }
    }
}

/// What is limited.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// A username (compared lowercased).
    Username(String),
    /// A client address.
    Peer(IpAddr),
}

impl LockKey {
    /// The key for a username (ASCII-lowercased, trimmed).
    pub fn username(name: &str) -> Self {
        Self::Username(name.trim().to_ascii_lowercase())
    }
}

/// A key that is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Which key.
    pub key: LockKey,
    /// Unix seconds when attempts are accepted again (`Retry-After` = `until - now`).
    pub until: i64,
    /// This failure started the lock (audit it once).
    pub started: bool,
}

#[derive(Debug, Default)]
struct Entry {
    failures: VecDeque<i64>,
    locked_until: Option<i64>,
    last: i64,
}

/// The limiter. Share it (`Arc`) between requests.
#[derive(Debug, Default)]
pub struct Lockout {
    policy: LockoutPolicy,
    entries: Mutex<HashMap<LockKey, Entry>>,
}

impl Lockout {
    /// A limiter with `policy`.
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<LockKey, Entry>> {
        match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    fn keys(username: &str, peer: Option<IpAddr>) -> Vec<LockKey> {
        let mut keys = vec![LockKey::username(username)];
        if let Some(ip) = peer {
            keys.push(LockKey::Peer(ip));
        }
        keys
    }

    /// Before verifying a password: the first lock in force on the username or the peer at
    /// `now` (`started` is false), or `None` to go on.
    pub fn check(&self, username: &str, peer: Option<IpAddr>, now: i64) -> Option<Lock> {
        let map = self.map();
        Self::keys(username, peer).into_iter().find_map(|key| {
            let until = map.get(&key)?.locked_until.filter(|u| now < *u)?;
            Some(Lock {
                key,
                until,
                started: false,
            })
        })
    }

    /// After a failed login at `now`: counts the failure for the username and the peer and
    /// returns the locks in force afterwards (those this failure started have `started`).
    pub fn record_failure(&self, username: &str, peer: Option<IpAddr>, now: i64) -> Vec<Lock> {
        let policy = self.policy;
        let mut map = self.map();
        if map.len() >= MAX_KEYS {
            Self::evict(&mut map, now, policy);
        }
        let mut locks = Vec::new();
        for key in Self::keys(username, peer) {
            let entry = map.entry(key.clone()).or_default();
            entry.last = now;
            if let Some(until) = entry.locked_until {
                if now < until {
                    locks.push(Lock {
                        key,
                        until,
                        started: false,
                    });
                    continue;
                }
                entry.locked_until = None;
                entry.failures.clear();
            }
            while entry
                .failures
                .front()
                .is_some_and(|t| now - *t >= policy.window_seconds)
            {
                entry.failures.pop_front();
            }
            entry.failures.push_back(now);
            if entry.failures.len() >= policy.max_failures {
                let until = now.saturating_add(policy.lock_seconds);
                entry.locked_until = Some(until);
                entry.failures.clear();
                locks.push(Lock {
                    key,
                    until,
                    started: true,
                });
            }
        }
        locks
    }

    /// After a successful login: forgets the username's failures (the peer's stay, so one
    /// valid account does not reset a spraying peer).
    pub fn record_success(&self, username: &str) {
        let mut map = self.map();
        let key = LockKey::username(username);
        if map.get(&key).is_some_and(|e| e.locked_until.is_none()) {
            map.remove(&key);
        }
    }

    fn evict(map: &mut HashMap<LockKey, Entry>, now: i64, policy: LockoutPolicy) {
        map.retain(|_, e| {
            e.locked_until.is_some_and(|u| now < u) || now - e.last < policy.window_seconds
        });
        if map.len() >= MAX_KEYS {
            let mut unlocked: Vec<(i64, LockKey)> = map
                .iter()
                .filter(|(_, e)| e.locked_until.is_none())
                .map(|(k, e)| (e.last, k.clone()))
                .collect();
            unlocked.sort_by_key(|(t, _)| *t);
            let excess = map.len() + 1 - MAX_KEYS;
            for (_, k) in unlocked.into_iter().take(excess.max(MAX_KEYS / 10)) {
                map.remove(&k);
            }
        }
    }

    /// Keys tracked now (a metric).
    pub fn tracked(&self) -> usize {
        self.map().len()
    }
}
