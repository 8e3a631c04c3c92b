//! Standard Webhooks signing of outbound deliveries (standardwebhooks.com, "Signature scheme").
//!
//! Every delivery carries three headers: `webhook-id` (the delivery's message id, chosen once
//! when it is enqueued and kept across retries, so receivers can deduplicate),
//! `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
//! `v1,<base64 of HMAC-SHA256 over "<id>.<timestamp>.<body>">` keyed with the bytes behind the
//! `whsec_` prefix. While a secret is being rotated both signatures are sent, space-separated,
//! as the scheme allows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderName, HeaderValue};
use rand::RngCore;
use sha2::Sha256;

/// `whsec_` secrets carry between 24 and 64 key bytes (Standard Webhooks).
pub const MIN_KEY_BYTES: usize = 24;
/// See [`MIN_KEY_BYTES`].
pub const MAX_KEY_BYTES: usize = 64;

/// Why a secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The `whsec_` prefix is missing.
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    /// The rest is not standard base64.
    #[error("the part after whsec_ is not standard base64")]
    Base64,
    /// Fewer than 24 or more than 64 key bytes.
    #[error("a webhook secret holds 24 to 64 bytes")]
    Length,
}

/// A Standard Webhooks signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// A new secret of 32 bytes from a CSPRNG (`rand::rng`, seeded by the operating system).
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    /// [`SecretError`].
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix("whsec_").ok_or(SecretError::Prefix)?;
        let key = B64.decode(b64).map_err(|_| SecretError::Base64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self { key })
    }

    /// The `whsec_<base64>` form, to show once and to seal for storage.
    pub fn expose(&self) -> String {
        format!("whsec_{}", B64.encode(&self.key))
    }

    /// The `v1,<base64>` signature of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC takes keys of any length; parse() keeps them 24–64 bytes.
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// A new `webhook-id`: `msg_` and 26 base32 characters (128 CSPRNG bits).
pub fn new_webhook_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut n = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(30);
    out.push_str("msg_");
    for _ in 0..26 {
        out.push(char::from(ALPHABET[(n & 31) as usize]));
        n >>= 5;
    }
    out
}

/// The three Standard Webhooks headers for one attempt, signed with every secret in `secrets`
/// (the new one first while rotating).
pub fn signature_headers(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(HeaderName, HeaderValue)> {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect();
    let mut out = Vec::with_capacity(3);
    for (name, value) in [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.push((HeaderName::from_static(name), v));
        }
    }
    out
}
