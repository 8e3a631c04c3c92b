//! The login decision, in the order OWASP's Authentication Cheat Sheet asks for: the
//! brute-force locks first (a locked username or peer is refused even with the right
//! password), then a place in the bounded hashing pool, then one argon2id verification whether
//! or not the user exists (unknown users cost the same time), then the user's state. A success
//! clears the username's failures, rehashes a password stored with older parameters and starts
//! a new session; a failure is counted for the username and the peer.

use std::net::IpAddr;

use super::lockout::{Lock, Lockout};
use super::password::{PasswordError, PasswordHasher};
use super::session::{NewSession, SessionPolicy, start_session};
use super::user::{UserRecord, canonical_username};
use crate::store::{Store, StoreError};

/// A successful login: the user record to store (last login, a fresh hash when the stored one
/// was outdated) and the new session.
#[derive(Debug)]
pub struct LoginSuccess {
    /// The user, updated.
    pub user: UserRecord,
    /// The session to store and hand out.
    pub session: NewSession,
    /// The stored hash was replaced (its parameters were not the current ones).
    pub rehashed: bool,
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginRefusal {
    /// The username or the peer is locked (429 `LOGIN_LOCKED`, `Retry-After`).
    #[error("login locked")]
    Locked {
        /// The lock in force.
        lock: Lock,
        /// Seconds until attempts are accepted again (at least 1).
        retry_after: i64,
    },
    /// Unknown user, wrong password or disabled user (401 `LOGIN_FAILED`); `locks` are the
    /// locks this failure started (each is audited once).
    #[error("login failed")]
    Failed {
        /// Locks started by this failure.
        started: Vec<Lock>,
    },
    /// The password verified but the user's tenant is suspended (403 `TENANT_SUSPENDED`; no
    /// session is started). Said only to someone who knows the password.
    #[error("the user's tenant is suspended")]
    TenantSuspended,
    /// The password verified but the user's tenant was deleted (403 `TENANT_DELETED`; no
    /// session is started).
    #[error("the user's tenant was deleted")]
    TenantDeleted,
    /// No hashing place free (503 `PASSWORD_HASHING_BUSY`).
    #[error("password hashing is saturated")]
    Busy,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (not the client's doing).
    #[error(transparent)]
    Hashing(PasswordError),
}

/// The services a login needs.
#[derive(Debug, Clone, Copy)]
pub struct LoginContext<'a> {
    /// Users.
    pub store: &'a Store,
    /// argon2id.
    pub hasher: &'a PasswordHasher,
    /// Brute-force limits.
    pub lockout: &'a Lockout,
    /// Session lifetimes.
    pub sessions: &'a SessionPolicy,
}

/// Decides a login of `username` with `password` from `peer` at `now` (Unix seconds).
///
/// # Errors
/// [`LoginRefusal`].
pub async fn login(
    cx: LoginContext<'_>,
    username: &str,
    password: &str,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<LoginSuccess, LoginRefusal> {
    let username = canonical_username(username);
    if let Some(lock) = cx.lockout.check(&username, peer, now) {
        let retry_after = (lock.until - now).max(1);
        return Err(LoginRefusal::Locked { lock, retry_after });
    }
    let admission = cx.hasher.admit().map_err(|_| LoginRefusal::Busy)?;
    let user = cx.store.find_user(&username)?;
    let verification = admission
        .verify(password, user.as_ref().map(|u| u.password_phc.as_str()))
        .await;
    let ok = matches!(verification, Ok(v) if v.ok);
    let user = match user {
        Some(u) if ok && u.disabled_at.is_none() => u,
        _ => {
            if let Err(PasswordError::Worker) = verification {
                return Err(LoginRefusal::Hashing(PasswordError::Worker));
            }
            let started = cx
                .lockout
                .record_failure(&username, peer, now)
                .into_iter()
                .filter(|l| l.started)
                .collect();
            return Err(LoginRefusal::Failed { started });
        }
    };
    cx.lockout.record_success(&username);
    if let Some(t) = user.tenant.as_deref() {
        match cx.store.get_tenant(t)?.map(|t| t.status) {
            Some(super::tenant::TenantStatus::Suspended) => {
                return Err(LoginRefusal::TenantSuspended);
            }
            Some(super::tenant::TenantStatus::Deleted) => {
                return Err(LoginRefusal::TenantDeleted);
            }
            _ => {}
        }
    }
    let mut user = user;
    let mut rehashed = false;
    if verification.is_ok_and(|v| v.needs_rehash) {
        // Best effort: a saturated pool leaves the old hash for the next login.
        if let Ok(phc) = cx.hasher.hash(password).await {
            user.password_phc = phc;
            rehashed = true;
        }
    }
    user.last_login_at = Some(now);
    let session = start_session(&user.id, user.tenant.as_deref(), now, cx.sessions);
    Ok(LoginSuccess {
        user,
        session,
        rehashed,
    })
}
