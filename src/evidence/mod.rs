//! Provenance evidence: pipeline-run artifacts (MIME allow-list, content checks, retention) and
//! signed provenance receipts (RFC 8785 JCS, HS256 / EdDSA). Pure domain code: the store keeps
//! the records, the API maps requests to these functions.

pub mod artifact;
pub mod receipt;

pub use artifact::{ArtifactError, ArtifactRecord, ArtifactType, CheckedContent};
pub use receipt::{
    ParsedReceipt, ReceiptError, ReceiptKey, ReceiptRecord, SigningKeyRecord, VerifiedReceipt,
};

/// RFC 8785 (JCS) canonical bytes of a JSON value; integers beyond ±(2^53−1), which JCS would
/// round, are refused (see [`crate::verify::jcs`]).
///
/// # Errors
/// A message naming the unsafe integer.
pub fn jcs(value: &serde_json::Value) -> Result<Vec<u8>, String> {
    crate::verify::jcs(value).map_err(|e| e.to_string())
}

/// `Repr-Digest` field value (RFC 9530) for `bytes`: `sha-256=:<base64>:`.
pub fn repr_digest(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
    )
}
