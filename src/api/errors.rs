//! Domain errors → problems: each domain error type maps to codes of the table here, once, so
//! handlers only use `?`.

use super::code::Code;
use super::problem::Problem;
use crate::evidence::receipt::SigningKeyError;
use crate::evidence::{ArtifactError, ReceiptError};
use crate::ingest::ai::SchemaError;
use crate::ingest::body::BodyError;
use crate::ingest::signature::SignatureError;
use crate::ingest::{IngestError, SourceError};
use crate::store::{LogQueryError, StoreError};

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
            other => {
                tracing::error!(error = %other, "storage failure");
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
            IngestError::InvalidJson(_) => Problem::new(Code::InvalidJson, e.to_string()),
            IngestError::SchemaInvalid(s) => s.into(),
            IngestError::Storage(s) => s.into(),
        }
    }
}
