//! Domain errors → problems: each domain error type maps to codes of the table here, once, so
//! handlers only use `?`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::code::Code;
use super::problem::Problem;
use crate::evidence::receipt::SigningKeyError;
use crate::evidence::{ArtifactError, ReceiptError};
use crate::ingest::ai::SchemaError;
use crate::ingest::body::BodyError;
use crate::ingest::signature::SignatureError;
use crate::ingest::{IngestError, SourceError};
use crate::store::{LogQueryError, StoreError};

/// At most one log line per second for storage failures (a failing database must not turn
/// every request into an ERROR line); the lines left out are counted in the next one.
static STORAGE_FAILURE_LOG: LogLimiter = LogLimiter::new();

struct LogLimiter {
    /// Second (since the first call) of the last line written, plus one; 0 before any.
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written now.
    fn allow(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_secs() + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != now
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InsufficientStorage => Problem::new(
                Code::InsufficientStorage,
                "the data volume is below its free-space floor; writes are refused",
            ),
            StoreError::Damaged(_) => Problem::new(
                Code::DataCorrupt,
                "the stored data no longer matches its digest and is not served; the operator has been alerted",
            ),
            StoreError::Closed => {
                Problem::new(Code::ShuttingDown, "the appliance is shutting down")
            }
            StoreError::TenantDeleted(tenant) => Problem::new(
                Code::TenantDeleted,
                format!("tenant {tenant} was deleted: nothing more is stored for it"),
            ),
            other => {
                if let Some(suppressed) = STORAGE_FAILURE_LOG.allow() {
                    tracing::error!(error = %other, suppressed, "storage failure");
                }
                Problem::new(
                    Code::StorageError,
                    "the database could not complete the operation",
                )
            }
        }
    }
}

impl From<LogQueryError> for Problem {
    fn from(e: LogQueryError) -> Self {
        match e {
            LogQueryError::Range(msg) => Problem::new(Code::InvalidRange, msg),
            LogQueryError::Store(s) => s.into(),
        }
    }
}

impl From<BodyError> for Problem {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { cap } => Problem::new(
                Code::PayloadTooLarge,
                format!("the body exceeds the limit of {cap} bytes"),
            ),
            BodyError::BudgetExhausted => Problem::new(
                Code::BodyBudgetExhausted,
                "too many request bodies are being received; retry shortly",
            )
            .with_header("Retry-After", "1"),
            BodyError::Io(e) => Problem::new(
                Code::BodyReadError,
                format!("the request body could not be read: {e}"),
            ),
        }
    }
}

impl From<SignatureError> for Problem {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::HeaderInvalid(msg) => Problem::new(Code::SignatureHeaderInvalid, msg),
            SignatureError::Invalid => Problem::new(
                Code::SignatureInvalid,
                "the signature does not match the body",
            ),
            SignatureError::TimestampOutOfTolerance => Problem::new(
                Code::TimestampOutOfTolerance,
                "the signed timestamp is outside the accepted tolerance of the appliance clock",
            ),
        }
    }
}

impl From<ReceiptError> for Problem {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::Invalid(m) => Problem::new(Code::ReceiptInvalid, m),
            ReceiptError::SignatureInvalid(m) => Problem::new(Code::ReceiptSignatureInvalid, m),
            ReceiptError::Stale(m) => Problem::new(Code::ReceiptStale, m),
            ReceiptError::TenantMismatch(m) => Problem::new(Code::ReceiptTenantMismatch, m),
        }
    }
}

impl From<SigningKeyError> for Problem {
    fn from(e: SigningKeyError) -> Self {
        let code = match &e {
            SigningKeyError::Kid => Code::InvalidKid,
            SigningKeyError::KidReserved => Code::KidReserved,
            SigningKeyError::Secret => Code::InvalidSecret,
            SigningKeyError::Material(_) => Code::InvalidSigningKey,
        };
        Problem::new(code, e.to_string())
    }
}

impl From<ArtifactError> for Problem {
    fn from(e: ArtifactError) -> Self {
        let code = match &e {
            ArtifactError::UnknownType(_) => Code::InvalidArtifactType,
            ArtifactError::MediaTypeNotAllowed { .. } => Code::UnsupportedMediaType,
            ArtifactError::ContentInvalid(_) => Code::ArtifactContentInvalid,
        };
        Problem::new(code, e.to_string())
    }
}

impl From<SourceError> for Problem {
    fn from(e: SourceError) -> Self {
        Problem::new(e.code(), e.to_string())
    }
}

impl SourceError {
    fn code(&self) -> Code {
        match self {
            SourceError::Secret(_) => Code::InvalidSecret,
            SourceError::Generic(_) => Code::InvalidSource,
        }
    }
}

impl From<SchemaError> for Problem {
    fn from(e: SchemaError) -> Self {
        Problem::new(Code::SchemaInvalid, e.to_string())
    }
}

impl From<crate::text::TextError> for Problem {
    fn from(e: crate::text::TextError) -> Self {
        Problem::new(Code::InvalidName, e.to_string())
    }
}

impl From<crate::identity::TokenRequestError> for Problem {
    fn from(e: crate::identity::TokenRequestError) -> Self {
        use crate::identity::TokenRequestError as E;
        match e {
            E::Name(t) => t.into(),
            E::Roles(m) => Problem::new(Code::InvalidRole, m),
            E::Expiry => Problem::new(Code::InvalidExpiry, e.to_string()),
        }
    }
}

impl From<crate::identity::user::UserRequestError> for Problem {
    fn from(e: crate::identity::user::UserRequestError) -> Self {
        use crate::identity::user::UserRequestError as E;
        match e {
            E::Username => Problem::new(Code::InvalidUsername, e.to_string()),
            E::Roles(m) => Problem::new(Code::InvalidRole, m),
        }
    }
}

impl From<crate::identity::password::PasswordError> for Problem {
    fn from(e: crate::identity::password::PasswordError) -> Self {
        use crate::identity::password::PasswordError as E;
        match e {
            E::Saturated => Problem::new(
                Code::PasswordHashingBusy,
                "every password-hashing place is taken; retry shortly",
            )
            .with_header("Retry-After", "1"),
            E::TooShort { .. } | E::TooLong { .. } => {
                Problem::new(Code::InvalidPassword, e.to_string())
            }
            E::StoredHashInvalid | E::Argon2(_) | E::Worker => {
                tracing::error!(error = %e, "password hashing failed");
                Problem::new(Code::Internal, "password hashing failed")
            }
        }
    }
}

impl From<crate::identity::login::LoginRefusal> for Problem {
    fn from(e: crate::identity::login::LoginRefusal) -> Self {
        use crate::identity::login::LoginRefusal as E;
        match e {
            E::Locked { retry_after, .. } => Problem::new(
                Code::LoginLocked,
                "too many failed logins for this username or from this address; try later",
            )
            .with_header("Retry-After", retry_after.to_string())
            .with_header("RateLimit-Policy", "\"login\";q=5;w=300")
            .with_header("RateLimit", format!("\"login\";r=0;t={retry_after}")),
            E::Failed { .. } => Problem::new(Code::LoginFailed, "wrong username or password"),
            E::TenantSuspended => Problem::new(
                Code::TenantSuspended,
                "this user's tenant is suspended: no session is started",
            ),
            E::TenantDeleted => Problem::new(
                Code::TenantDeleted,
                "this user's tenant was deleted: no session is started",
            ),
            E::Busy => crate::identity::password::PasswordError::Saturated.into(),
            E::Store(s) => s.into(),
            E::Hashing(h) => h.into(),
        }
    }
}

impl From<IngestError<StoreError>> for Problem {
    fn from(e: IngestError<StoreError>) -> Self {
        match e {
            IngestError::NoSecret => Problem::new(Code::SignatureInvalid, e.to_string()),
            IngestError::SignatureHeaderInvalid(msg) => {
                Problem::new(Code::SignatureHeaderInvalid, msg)
            }
            IngestError::SignatureInvalid => Problem::new(Code::SignatureInvalid, e.to_string()),
            IngestError::TimestampOutOfTolerance { .. } => {
                Problem::new(Code::TimestampOutOfTolerance, e.to_string())
            }
            IngestError::TenantSuspended => Problem::new(Code::TenantSuspended, e.to_string()),
            IngestError::InvalidJson(_) => Problem::new(Code::InvalidJson, e.to_string()),
            IngestError::SchemaInvalid(s) => s.into(),
            IngestError::Storage(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogLimiter;

    #[test]
    fn one_storage_failure_line_per_second() {
        let l = LogLimiter::new();
        assert_eq!(l.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(l.allow(), None);
        }
        // The next second's line carries the count (this test does not wait for it).
        assert_eq!(
            l.suppressed.load(std::sync::atomic::Ordering::Relaxed),
            1000
        );
    }
}
