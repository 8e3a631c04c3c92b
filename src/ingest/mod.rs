//! The ingestion pipeline's domain: webhook sources, signature schemes, bounded bodies, replay
//! keys, event records and ML insights. Nothing here knows HTTP frameworks or the database.
//!
//! Order of checks (DESIGN §1; the first failure answers): rate limit → `Content-Length` cap →
//! `Content-Encoding` → signature headers → MAC over the raw bytes → timestamp tolerance →
//! replay → parse.

pub mod ai;
pub mod body;
pub mod pipeline;
pub mod signature;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use pipeline::{Accepted, Inbound, IngestError, IngestStore, Pipeline, ReplayKey};
pub use signature::{GenericScheme, Provider, SigEncoding};

/// Seconds an old secret stays valid after a rotation.
pub const ROTATION_GRACE_SECS: i64 = 7 * 24 * 3600;
/// Longest accepted source secret, characters (as the schema's `maxLength` counts them).
pub const MAX_SECRET_CHARS: usize = 1024;
/// Shortest accepted source secret, characters (so at least as many bytes; providers' own
/// secrets are longer).
pub const MIN_SECRET_CHARS: usize = 16;

/// One secret of a source (a source holds two during rotation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretEntry {
    /// Sequence number (1, 2, …) used by `DELETE …/secrets/{n}`.
    pub n: u32,
    /// The secret as configured.
    pub value: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it no longer verifies (set by a rotation).
    pub expires_at: Option<i64>,
}

/// A webhook source: where one tenant receives one provider's webhooks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceRecord {
    /// `src_<32 hex>` (128 random bits).
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Signature scheme.
    pub provider: Provider,
    /// Secrets in order of creation.
    pub secrets: Vec<SecretEntry>,
    /// Also accept the appliance `ML_WEBHOOK_SECRET` (the `default` tenant's `ml` source).
    #[serde(default)]
    pub uses_appliance_secret: bool,
    /// Body cap, bytes.
    pub max_payload_bytes: u64,
    /// Settings of a `generic` source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<GenericScheme>,
    /// GCRA sustained rate, requests per second.
    pub rate_per_second: u32,
    /// GCRA burst, requests.
    pub rate_burst: u32,
    /// Unix seconds.
    pub created_at: i64,
}

impl SourceRecord {
    /// Secrets that verify at `now` (rotation grace honoured).
    pub fn active_secrets(&self, now: i64) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| now < e))
            .map(|s| s.value.clone())
            .collect()
    }

    /// The ingest URL path of this source.
    pub fn ingest_url(&self) -> String {
        if self.provider == Provider::Ml {
            "/ai/webhook".into()
        } else {
            format!("/webhooks/{}/events", self.id)
        }
    }
}

/// Why source settings are refused (422: `INVALID_SECRET` for the secret variants,
/// `INVALID_SOURCE` for the generic-scheme ones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A supplied secret breaks a rule (never echoing the secret).
    #[error("{0}")]
    Secret(SecretRule),
    /// A `generic` scheme setting is unusable.
    #[error("{0}")]
    Generic(GenericRule),
}

/// The secret rule a supplied secret breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretRule {
    /// Empty.
    #[error("secret must not be empty")]
    Empty,
    /// Leading or trailing whitespace.
    #[error("secret must not have leading or trailing whitespace")]
    Whitespace,
    /// Shorter than [`MIN_SECRET_CHARS`].
    #[error("secret must be at least {MIN_SECRET_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_SECRET_CHARS`].
    #[error("secret must be at most {MAX_SECRET_CHARS} characters")]
    TooLong,
    /// `whsec_` not followed by non-empty standard base64 (Standard Webhooks).
    #[error("a whsec_ secret must be followed by non-empty standard base64")]
    BadWhsec,
}

/// The `generic` scheme rule a source breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenericRule {
    /// Not a valid header name.
    #[error("generic.header is not a valid header name")]
    HeaderInvalid,
    /// A header the appliance reserves.
    #[error("generic.header cannot be {0}")]
    HeaderReserved(&'static str),
    /// Prefix longer than 64 bytes.
    #[error("generic.prefix is at most 64 bytes")]
    PrefixTooLong,
}

/// The HMAC key length of a stored secret, in bytes: for a `standard` source's `whsec_`
/// secret the decoded base64 (Standard Webhooks v1 signs with those bytes), otherwise the
/// secret's UTF-8 bytes.
pub fn secret_key_bytes(provider: Provider, secret: &str) -> usize {
    if provider == Provider::Standard
        && let Some(b64) = secret.strip_prefix("whsec_")
        && let Ok(key) = base64::engine::general_purpose::STANDARD.decode(b64)
    {
        return key.len();
    }
    secret.len()
}

/// Validates a caller-supplied secret: 16–1024 characters, no surrounding whitespace, and
/// for `standard` a `whsec_` secret must carry valid base64.
///
/// # Errors
/// [`SourceError`] saying what is wrong (never echoing the secret).
pub fn validate_secret(provider: Provider, secret: &str) -> Result<(), SourceError> {
    if secret.is_empty() {
        return Err(SourceError::Secret(SecretRule::Empty));
    }
    if secret.trim() != secret {
        return Err(SourceError::Secret(SecretRule::Whitespace));
    }
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(SourceError::Secret(SecretRule::TooShort));
    }
    if secret.chars().count() > MAX_SECRET_CHARS {
        return Err(SourceError::Secret(SecretRule::TooLong));
    }
    if provider == Provider::Standard
        && let Some(b64) = secret.strip_prefix("whsec_")
        && base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(|k| k.is_empty())
            .unwrap_or(true)
    {
        return Err(SourceError::Secret(SecretRule::BadWhsec));
    }
    Ok(())
}

/// Generates a secret for `provider` (32 CSPRNG bytes; `whsec_<base64>` for Standard Webhooks).
pub fn generate_secret(provider: Provider) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    match provider {
        Provider::Standard => format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        _ => hex::encode(bytes),
    }
}

/// Validates a `generic` scheme: header must be a valid, non-reserved header name.
///
/// # Errors
/// [`SourceError`].
pub fn validate_generic(g: &GenericScheme) -> Result<(), SourceError> {
    let name = g.header.to_ascii_lowercase();
    if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() || name.is_empty() {
        return Err(SourceError::Generic(GenericRule::HeaderInvalid));
    }
    const RESERVED: [&str; 6] = [
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "host",
        "authorization",
    ];
    if let Some(reserved) = RESERVED.iter().find(|r| **r == name) {
        return Err(SourceError::Generic(GenericRule::HeaderReserved(reserved)));
    }
    if g.prefix.as_deref().is_some_and(|p| p.len() > 64) {
        return Err(SourceError::Generic(GenericRule::PrefixTooLong));
    }
    Ok(())
}

/// A random id with `prefix` and 128 bits of entropy (`src_…`, `evt_…`, `ins_…`).
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The replay key of a delivery: its delivery id when the scheme has one, else the body digest.
pub fn replay_key(delivery_id: Option<&str>, body_sha256: &str) -> String {
    match delivery_id {
        Some(id) => format!("id:{id}"),
        None => format!("sha256:{body_sha256}"),
    }
}

/// A stored webhook event (metadata; the raw body is kept separately until purged).
///
/// `id` is `evt_<32 hex>`: unguessable, assigned by the store at commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRecord {
    /// `evt_<32 hex>`.
    pub id: String,
    /// Position in the tenant's event list.
    pub seq: u64,
    /// Tenant.
    pub tenant: String,
    /// Source id.
    pub source: String,
    /// Provider.
    pub provider: Provider,
    /// Scheme that verified (`standard`, `intelgraph`, `github`, …).
    pub scheme: String,
    /// Sender's delivery id, if any.
    pub delivery_id: Option<String>,
    /// Signed timestamp, Unix seconds, if any.
    pub signed_timestamp: Option<i64>,
    /// Lowercase hex SHA-256 of the raw body.
    pub sha256: String,
    /// Body size, bytes.
    pub size: u64,
    /// The request's `Content-Type`.
    pub content_type: String,
    /// Unix seconds.
    pub received_at: i64,
    /// `accepted`.
    pub outcome: String,
    /// ML job id for `/ai/webhook` events (the job is marked SUCCESS by its event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// ML job kind for `/ai/webhook` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Number of insights created.
    #[serde(default)]
    pub insights: u64,
    /// Unix seconds when the raw body is purged.
    pub body_expires_at: i64,
    /// Whether the raw body was purged.
    #[serde(default)]
    pub body_purged: bool,
}

/// Review state of an insight.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum InsightStatus {
    /// Awaiting review.
    Pending,
    /// Approved by a reviewer.
    Approved,
    /// Rejected by a reviewer.
    Rejected,
}

impl InsightStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InsightStatus::Pending => "PENDING",
            InsightStatus::Approved => "APPROVED",
            InsightStatus::Rejected => "REJECTED",
        }
    }

    /// Parses a wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PENDING" => Some(Self::Pending),
            "APPROVED" => Some(Self::Approved),
            "REJECTED" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decision {
    /// `approve` or `reject`.
    pub decision: String,
    /// Why.
    pub reason: String,
    /// Who (`token:tok_…`).
    pub actor: String,
    /// Unix seconds.
    pub at: i64,
}

/// One ML insight.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InsightRecord {
    /// `ins_<32 hex>`.
    pub id: String,
    /// Position in the tenant's insight list.
    pub seq: u64,
    /// Tenant.
    pub tenant: String,
    /// Job id.
    pub job_id: String,
    /// Kind of the job.
    pub kind: String,
    /// Event it came from.
    pub event_id: String,
    /// The insight payload.
    pub payload: serde_json::Value,
    /// Review state.
    pub status: InsightStatus,
    /// Decision, once made.
    pub decision: Option<Decision>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Whether a `Content-Type` announces JSON (`application/json`, `…+json`).
pub fn is_json_content_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_rules() {
        assert!(validate_secret(Provider::Github, "").is_err());
        assert!(validate_secret(Provider::Github, " x").is_err());
        assert!(validate_secret(Provider::Github, "x\n").is_err());
        assert!(validate_secret(Provider::Github, "It's a Secret to Everybody").is_ok());
        assert!(validate_secret(Provider::Standard, "whsec_!!").is_err());
        assert!(validate_secret(Provider::Standard, &generate_secret(Provider::Standard)).is_ok());
    }

    #[test]
    fn rotation_grace() {
        let mut s = SourceRecord {
            id: "src_x".into(),
            tenant: "t".into(),
            provider: Provider::Github,
            secrets: vec![
                SecretEntry {
                    n: 1,
                    value: "a".into(),
                    created_at: 0,
                    expires_at: Some(100),
                },
                SecretEntry {
                    n: 2,
                    value: "b".into(),
                    created_at: 0,
                    expires_at: None,
                },
            ],
            uses_appliance_secret: false,
            max_payload_bytes: 1,
            generic: None,
            rate_per_second: 1,
            rate_burst: 1,
            created_at: 0,
        };
        assert_eq!(s.active_secrets(99), vec!["a", "b"]);
        assert_eq!(s.active_secrets(100), vec!["b"]);
        s.secrets.clear();
        assert!(s.active_secrets(0).is_empty());
    }
}
