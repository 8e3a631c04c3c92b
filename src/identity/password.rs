//! Password hashing: argon2id (RFC 9106) with the `argon2` crate's default parameters
//! (m = 19 MiB, t = 2, p = 1: the OWASP Password Storage Cheat Sheet minimum), stored as PHC
//! strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! Hashing is CPU- and memory-heavy, so it runs on tokio's blocking pool behind two
//! semaphores: at most `max_concurrent` hashes run at once and at most `max_queued` more wait;
//! beyond that [`PasswordHasher::admit`] answers [`PasswordError::Saturated`] at once (the API
//! maps it to 503 with `Retry-After`), so a login flood cannot exhaust memory or threads.
//!
//! Verifying for an unknown user runs the same argon2id computation against a dummy hash made
//! at start with the current parameters, so the answer time does not reveal which usernames
//! exist. [`Verification::needs_rehash`] says when a stored hash was made with other
//! parameters (or another algorithm) and should be replaced by a fresh [`PasswordHasher::hash`]
//! after a successful login.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use rand::RngCore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shortest accepted new password, in characters (NIST SP 800-63B allows 8; we ask 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted new password, in characters (Unicode scalar values, as JSON Schema's
/// `maxLength` counts them); 256 characters are at most 1024 bytes of UTF-8.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest password ever verified, in bytes (bounds the work per attempt): 256 characters of
/// four bytes each.
pub const MAX_PASSWORD_BYTES: usize = 4 * MAX_PASSWORD_CHARS;
/// Largest `m` (KiB) accepted in a stored hash: a corrupted or hostile record must not make
/// one verification allocate gigabytes.
pub const MAX_STORED_M_COST_KIB: u32 = 256 * 1024;
/// Largest `t` accepted in a stored hash.
pub const MAX_STORED_T_COST: u32 = 16;
/// Largest `p` accepted in a stored hash.
pub const MAX_STORED_P_COST: u32 = 16;

/// Errors of hashing and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// All hashing slots and queue places are taken: answer 503 and let the client retry.
    #[error("password hashing is saturated")]
    Saturated,
    /// A new password shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password must have at least {min} characters")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// A new password longer than [`MAX_PASSWORD_CHARS`].
    #[error("password must have at most {max} characters")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// The stored hash is not an argon2 PHC string within the accepted parameter bounds.
    #[error("stored password hash is invalid")]
    StoredHashInvalid,
    /// argon2 failed (invalid parameters).
    #[error("argon2: {0}")]
    Argon2(String),
    /// The blocking task died.
    #[error("password hashing task failed")]
    Worker,
}

/// The result of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches the stored hash.
    pub ok: bool,
    /// The stored hash uses other parameters than the current ones: after a successful login,
    /// store a fresh [`PasswordHasher::hash`] of the same password.
    pub needs_rehash: bool,
}

#[derive(Debug)]
struct Inner {
    params: Params,
    dummy: String,
    computed: AtomicU64,
    workers: Arc<Semaphore>,
    admission: Arc<Semaphore>,
}

/// Hashes and verifies passwords off the async runtime with bounded concurrency. Clone it
/// freely (shared state).
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

/// A reserved place for one hash computation (see [`PasswordHasher::admit`]).
#[derive(Debug)]
pub struct Admission {
    inner: Arc<Inner>,
    _place: OwnedSemaphorePermit,
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, PasswordError> {
    argon2(params)
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Argon2(e.to_string()))
}

/// Parses a stored PHC string, refusing non-argon2 algorithms and parameters beyond the
/// `MAX_STORED_*` bounds.
fn parse_stored(stored: &str) -> Result<(PasswordHash, Params), PasswordError> {
    let hash = PasswordHash::new(stored).map_err(|_| PasswordError::StoredHashInvalid)?;
    if Algorithm::try_from(hash.algorithm.as_str()).is_err() {
        return Err(PasswordError::StoredHashInvalid);
    }
    let params = Params::try_from(&hash).map_err(|_| PasswordError::StoredHashInvalid)?;
    if params.m_cost() > MAX_STORED_M_COST_KIB
        || params.t_cost() > MAX_STORED_T_COST
        || params.p_cost() > MAX_STORED_P_COST
    {
        return Err(PasswordError::StoredHashInvalid);
    }
    Ok((hash, params))
}

fn same_params(a: &Params, b: &Params) -> bool {
    a.m_cost() == b.m_cost()
        && a.t_cost() == b.t_cost()
        && a.p_cost() == b.p_cost()
        && a.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
            == b.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
}

impl PasswordHasher {
    /// A hasher with the crate's default argon2id parameters. Computes the dummy hash now
    /// (one hash: call it at start, not on a request).
    ///
    /// # Errors
    /// [`PasswordError::Argon2`] if hashing fails.
    pub fn new(max_concurrent: usize, max_queued: usize) -> Result<Self, PasswordError> {
        Self::with_params(Params::DEFAULT, max_concurrent, max_queued)
    }

    /// A hasher with explicit parameters (tests; a future parameter upgrade).
    /// `max_concurrent` is raised to at least 1.
    ///
    /// # Errors
    /// [`PasswordError::Argon2`] for parameters argon2 refuses.
    pub fn with_params(
        params: Params,
        max_concurrent: usize,
        max_queued: usize,
    ) -> Result<Self, PasswordError> {
        let max_concurrent = max_concurrent.max(1);
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let dummy = hash_with(&params, &random)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                dummy,
                computed: AtomicU64::new(0),
                workers: Arc::new(Semaphore::new(max_concurrent)),
                admission: Arc::new(Semaphore::new(max_concurrent.saturating_add(max_queued))),
            }),
        })
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> &Params {
        &self.inner.params
    }

    /// How many argon2 computations this hasher has run (hashes and verifications, the dummy
    /// ones included) — a metric, and how tests see that unknown users cost a computation.
    pub fn computations(&self) -> u64 {
        self.inner.computed.load(Ordering::Relaxed)
    }

    /// Reserves a place (running or queued) for one computation, without waiting.
    ///
    /// # Errors
    /// [`PasswordError::Saturated`] when every place is taken.
    pub fn admit(&self) -> Result<Admission, PasswordError> {
        let place = self
            .inner
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| PasswordError::Saturated)?;
        Ok(Admission {
            inner: self.inner.clone(),
            _place: place,
        })
    }

    /// [`PasswordHasher::admit`] then [`Admission::hash`].
    ///
    /// # Errors
    /// See both.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.admit()?.hash(password).await
    }

    /// [`PasswordHasher::admit`] then [`Admission::verify`].
    ///
    /// # Errors
    /// See both.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verification, PasswordError> {
        self.admit()?.verify(password, stored).await
    }
}

impl Admission {
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&Params, &str) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = self
            .inner
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Worker)?;
        let inner = self.inner.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.computed.fetch_add(1, Ordering::Relaxed);
            work(&inner.params, inner.dummy.as_str())
        })
        .await
        .map_err(|_| PasswordError::Worker)?;
        drop(self);
        Ok(out)
    }

    /// Hashes a new password into a PHC string with a fresh 16-byte salt.
    ///
    /// # Errors
    /// [`PasswordError::TooShort`], [`PasswordError::TooLong`], [`PasswordError::Argon2`],
    /// [`PasswordError::Worker`].
    pub async fn hash(self, password: &str) -> Result<String, PasswordError> {
        let chars = password.chars().count();
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort {
                min: MIN_PASSWORD_CHARS,
            });
        }
        let password = password.to_owned();
        self.run(move |params, _| hash_with(params, password.as_bytes()))
            .await?
    }

    /// Verifies `password` against `stored` (the user's PHC string, `None` for an unknown
    /// user: then the dummy hash is verified, costing the same, and the answer is a
    /// mismatch). Over-long passwords are a mismatch without computing.
    ///
    /// # Errors
    /// [`PasswordError::StoredHashInvalid`] (after a dummy computation, so it costs the same),
    /// [`PasswordError::Worker`].
    pub async fn verify(
        self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verification, PasswordError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(Verification {
                ok: false,
                needs_rehash: false,
            });
        }
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move |current, dummy| {
            let target = match stored.as_deref().map(parse_stored) {
                Some(Ok(parsed)) => Some(parsed),
                Some(Err(e)) => {
                    // Same cost as a real verification, then refuse.
                    if let Ok((h, _)) = parse_stored(dummy) {
                        let _ = argon2(current).verify_password(password.as_bytes(), &h);
                    }
                    return Err(e);
                }
                None => None,
            };
            match target {
                Some((hash, params)) => {
                    let ok = Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok();
                    let needs_rehash = hash.algorithm.as_str() != "argon2id"
                        || hash.version != Some(0x13)
                        || !same_params(&params, current);
                    Ok(Verification { ok, needs_rehash })
                }
                None => {
                    if let Ok((h, _)) = parse_stored(dummy) {
                        let _ = argon2(current).verify_password(password.as_bytes(), &h);
                    }
                    Ok(Verification {
                        ok: false,
                        needs_rehash: false,
                    })
                }
            }
        })
        .await?
    }
}
