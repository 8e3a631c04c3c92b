//! Console sessions: ids, lifetimes, CSRF tokens and the cookie, as records and pure functions
//! that the store persists and the API applies.
//!
//! * A session id is `evs_` + base64url (no padding) of 32 CSPRNG bytes (256 bits). Only its
//!   SHA-256 ([`SessionRecord::id_sha256`], the store's key) is kept server-side.
//! * Every login creates a new id ([`start_session`]); a session presented with the login
//!   request is revoked ([`SessionRecord::revoke`]), so an id planted before login
//!   (session fixation) is worthless after it.
//! * Lifetimes (OWASP Session Management Cheat Sheet): idle timeout since the last request and
//!   absolute timeout since login, on the caller's `now` (Unix seconds). Last-seen is written
//!   coarsely ([`SessionPolicy::touch_interval_seconds`]), not on every request.
//! * The CSRF token is bound to the session: `base64url(HMAC-SHA256(key = session id,
//!   "evidentia-csrf/1"))`. It is derivable only from the session id (the `HttpOnly` cookie),
//!   reveals nothing about it, needs no storage and is checked in constant time on every
//!   cookie-authenticated unsafe request ([`csrf_required`], [`verify_csrf`]).
//! * The cookie ([`set_cookie`]): `HttpOnly; SameSite=Strict; Path=/`, and under TLS
//!   `Secure` with the `__Host-` name prefix (RFC 6265bis §4.1.3.2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every session id.
pub const SESSION_ID_PREFIX: &str = "evs_";
/// Random bytes in a session id.
pub const SESSION_ID_BYTES: usize = 32;
/// Length of a well-formed session id, in characters.
pub const SESSION_ID_LEN: usize = SESSION_ID_PREFIX.len() + 43;
/// Cookie name over plain HTTP.
pub const COOKIE_NAME: &str = "evidentia_session";
/// Cookie name under TLS (`__Host-` prefix: Secure, Path=/, no Domain).
pub const COOKIE_NAME_TLS: &str = "__Host-evidentia_session";
/// Request header carrying the CSRF token.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

const CSRF_CONTEXT: &[u8] = b"evidentia-csrf/1";

/// Session lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// A session unused this long ends (default 30 minutes).
    pub idle_seconds: i64,
    /// A session ends this long after login whatever its use (default 12 hours).
    pub absolute_seconds: i64,
    /// Last-seen is persisted at most this often (default 60 s); the idle timeout is exact to
    /// within this interval.
    pub touch_interval_seconds: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_seconds: 30 * 60,
            absolute_seconds: 12 * 3600,
            touch_interval_seconds: 60,
        }
    }
}

/// A stored session (never the id itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Lowercase hex SHA-256 of the session id (the store key).
    pub id_sha256: String,
    /// The user (`usr_…`).
    pub user_id: String,
    /// The user's tenant; `None` for appliance users.
    pub tenant: Option<String>,
    /// Login time, Unix seconds.
    pub created_at: i64,
    /// Last persisted use, Unix seconds.
    pub last_seen_at: i64,
    /// Absolute end, Unix seconds (`created_at + absolute_seconds`).
    pub expires_at: i64,
    /// Logout (or revocation) time, Unix seconds.
    pub revoked_at: Option<i64>,
}

impl SessionRecord {
    /// Ends the session (logout, password change, a login that replaced it). Idempotent.
    pub fn revoke(&mut self, now: i64) {
        self.revoked_at.get_or_insert(now);
    }

    /// Records use at `now` if the last persisted use is older than the touch interval;
    /// returns whether the record changed (and so must be written).
    pub fn touch(&mut self, now: i64, policy: &SessionPolicy) -> bool {
        if now - self.last_seen_at >= policy.touch_interval_seconds {
            self.last_seen_at = now;
            true
        } else {
            false
        }
    }
}

/// A new session: the record to store, the id for the cookie and the CSRF token for the
/// console (both shown to the client only).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// What to store.
    pub record: SessionRecord,
    /// The session id (cookie value).
    pub session_id: String,
    /// The CSRF token bound to it.
    pub csrf_token: String,
}

/// Why a presented session is not valid (all answered 401 alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// Not of the `evs_` shape.
    #[error("malformed session id")]
    Malformed,
    /// The digest does not match the record.
    #[error("unknown session")]
    Unknown,
    /// Logged out or revoked.
    #[error("session revoked")]
    Revoked,
    /// Unused longer than the idle timeout.
    #[error("session idle timeout")]
    IdleExpired,
    /// Older than the absolute timeout.
    #[error("session expired")]
    AbsoluteExpired,
}

/// Lowercase hex SHA-256 of a session id.
pub fn session_digest(session_id: &str) -> String {
    hex::encode(Sha256::digest(session_id.as_bytes()))
}

/// The store key for a presented cookie value, if it has the session id shape.
pub fn lookup_key(presented: &str) -> Option<String> {
    let rest = presented.strip_prefix(SESSION_ID_PREFIX)?;
    if presented.len() != SESSION_ID_LEN
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(session_digest(presented))
}

/// Starts a session for `user_id` at `now` with a fresh id.
pub fn start_session(
    user_id: &str,
    tenant: Option<&str>,
    now: i64,
    policy: &SessionPolicy,
) -> NewSession {
    let mut raw = [0u8; SESSION_ID_BYTES];
    rand::rng().fill_bytes(&mut raw);
    let session_id = format!("{SESSION_ID_PREFIX}{}", B64URL.encode(raw));
    NewSession {
        record: SessionRecord {
            id_sha256: session_digest(&session_id),
            user_id: user_id.to_string(),
            tenant: tenant.map(str::to_string),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(policy.absolute_seconds),
            revoked_at: None,
        },
        csrf_token: csrf_token(&session_id),
        session_id,
    }
}

/// Checks a presented session id against its stored record at `now`: shape, digest (constant
/// time), revocation, absolute and idle timeouts.
///
/// # Errors
/// The [`SessionRefusal`].
pub fn check_session(
    presented: &str,
    record: &SessionRecord,
    now: i64,
    policy: &SessionPolicy,
) -> Result<(), SessionRefusal> {
    let digest = lookup_key(presented).ok_or(SessionRefusal::Malformed)?;
    if !bool::from(digest.as_bytes().ct_eq(record.id_sha256.as_bytes())) {
        return Err(SessionRefusal::Unknown);
    }
    if record.revoked_at.is_some() {
        return Err(SessionRefusal::Revoked);
    }
    if now >= record.expires_at {
        return Err(SessionRefusal::AbsoluteExpired);
    }
    if now - record.last_seen_at >= policy.idle_seconds {
        return Err(SessionRefusal::IdleExpired);
    }
    Ok(())
}

/// The CSRF token of a session id.
pub fn csrf_token(session_id: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(session_id.as_bytes()) {
        Ok(mut mac) => {
            mac.update(CSRF_CONTEXT);
            B64URL.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Whether `presented` is the CSRF token of `session_id` (constant time).
pub fn verify_csrf(session_id: &str, presented: &str) -> bool {
    let want = csrf_token(session_id);
    !want.is_empty() && bool::from(want.as_bytes().ct_eq(presented.as_bytes()))
}

/// Whether a cookie-authenticated request with `method` must carry the CSRF token: every
/// method but the safe ones of RFC 9110 §9.2.1 (`GET`, `HEAD`, `OPTIONS`, `TRACE`).
pub fn csrf_required(method: &str) -> bool {
    !["GET", "HEAD", "OPTIONS", "TRACE"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// The cookie name for the transport.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls { COOKIE_NAME_TLS } else { COOKIE_NAME }
}

/// The `Set-Cookie` value that installs `session_id` for `max_age_seconds` (the absolute
/// lifetime).
pub fn set_cookie(session_id: &str, tls: bool, max_age_seconds: i64) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}={session_id}; Max-Age={max_age_seconds}; Path=/; HttpOnly; SameSite=Strict{secure}",
        cookie_name(tls)
    )
}

/// The `Set-Cookie` value that removes the session cookie (logout).
pub fn clear_cookie(tls: bool) -> String {
    set_cookie("", tls, 0)
}

/// Uses of sessions seen since the last flush, session digest → Unix seconds of the latest
/// use. Checked with the stored last use on every request (so the idle timeout is exact) and
/// written to the session records in one batch every few minutes and at shutdown, instead of
/// a write per request. Holds only sessions used since the last flush.
#[derive(Debug, Default)]
pub struct SessionUse {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl SessionUse {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        match self.seen.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// `record` with its last use brought up to date from the uses noted here.
    pub fn current(&self, mut record: SessionRecord) -> SessionRecord {
        if let Some(at) = self.map().get(&record.id_sha256) {
            record.last_seen_at = record.last_seen_at.max(*at);
        }
        record
    }

    /// Notes a use of the session with digest `id_sha256` at `now`.
    pub fn observe(&self, id_sha256: &str, now: i64) {
        let mut map = self.map();
        match map.get_mut(id_sha256) {
            Some(at) => *at = (*at).max(now),
            None => {
                map.insert(id_sha256.to_string(), now);
            }
        }
    }

    /// Takes every noted use (for the store).
    pub fn drain(&self) -> Vec<(String, i64)> {
        self.map().drain().collect()
    }
}
