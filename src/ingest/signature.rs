//! Webhook signature schemes, verified over the raw body bytes in constant time.
//!
//! | provider | header(s) | signed bytes | key |
//! |---|---|---|---|
//! | `standard` | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> …` | `id.ts.body` | base64-decoded `whsec_…` secret, else raw bytes (Standard Webhooks v1) |
//! | `github` | `X-Hub-Signature-256: sha256=<hex>` | body | raw |
//! | `stripe` | `Stripe-Signature: t=…,v1=…[,v1=…]` | `t.body` | raw (prefix included) |
//! | `slack` | `X-Slack-Signature: v0=<hex>`, `X-Slack-Request-Timestamp` | `v0:ts:body` | raw |
//! | `shopify` | `X-Shopify-Hmac-Sha256: <b64>` | body | raw |
//! | `generic` | configured header, hex or base64, optional prefix | body | raw |
//! | `ml` | `X-IntelGraph-Signature: [sha256=]<hex>` or the Standard Webhooks headers | body | raw |
//!
//! Header rules (checked before any MAC): a required header that is missing, empty, or present on
//! more than one line is [`SignatureError::HeaderInvalid`]. The MAC comparison is
//! `hmac::Mac::verify_slice` (constant time); a timestamp outside the tolerance is reported only
//! after the MAC verified, as [`SignatureError::TimestampOutOfTolerance`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A provider's signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Standard Webhooks v1 (Svix).
    Standard,
    /// GitHub `X-Hub-Signature-256`.
    Github,
    /// Stripe `Stripe-Signature`.
    Stripe,
    /// Slack `v0` signing secret.
    Slack,
    /// Shopify `X-Shopify-Hmac-Sha256`.
    Shopify,
    /// Configurable HMAC-SHA256 header.
    Generic,
    /// ML model-output webhook (`X-IntelGraph-Signature` or Standard Webhooks).
    Ml,
}

impl Provider {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Standard => "standard",
            Provider::Github => "github",
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Generic => "generic",
            Provider::Ml => "ml",
        }
    }

    /// Parses a wire name; unknown providers fail closed (`None`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "standard" => Provider::Standard,
            "github" => Provider::Github,
            "stripe" => Provider::Stripe,
            "slack" => Provider::Slack,
            "shopify" => Provider::Shopify,
            "generic" => Provider::Generic,
            "ml" => Provider::Ml,
            _ => return None,
        })
    }

    /// Default body cap in bytes (DESIGN §1).
    pub fn default_cap(self) -> u64 {
        match self {
            Provider::Github => 25 * 1024 * 1024,
            Provider::Ml => 512 * 1024,
            _ => 1024 * 1024,
        }
    }

    /// Largest cap a source of this provider may be configured with, in bytes.
    pub fn max_cap(self) -> u64 {
        match self {
            Provider::Github => 25 * 1024 * 1024,
            Provider::Ml => 512 * 1024,
            _ => 10 * 1024 * 1024,
        }
    }
}

/// Encoding of a generic signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigEncoding {
    /// Hexadecimal (either case).
    Hex,
    /// Standard base64.
    Base64,
}

/// Settings of a `generic` source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericScheme {
    /// Header carrying the signature (`X-Signature`).
    pub header: String,
    /// Encoding of the MAC.
    pub encoding: SigEncoding,
    /// Literal prefix before the MAC (`sha256=`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A required header is missing, empty, duplicated or unparsable (400).
    #[error("signature header invalid: {0}")]
    HeaderInvalid(String),
    /// No secret verified the MAC (401).
    #[error("signature does not verify")]
    Invalid,
    /// The MAC verified but the signed timestamp is outside the tolerance (401).
    #[error("timestamp outside the accepted tolerance")]
    TimestampOutOfTolerance,
}

/// What a verified signature establishes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The sender's delivery id (`webhook-id`, `X-GitHub-Delivery`, …) if the scheme has one.
    pub delivery_id: Option<String>,
    /// The signed timestamp (Unix seconds) if the scheme signs one.
    pub timestamp: Option<i64>,
    /// Which scheme matched (`standard`, `intelgraph`, …).
    pub scheme: &'static str,
}

/// Inputs to verification.
pub struct VerifyInput<'a> {
    /// The provider.
    pub provider: Provider,
    /// Settings for `generic`.
    pub generic: Option<&'a GenericScheme>,
    /// Candidate secrets as configured (the `whsec_` form is decoded for Standard Webhooks).
    pub secrets: &'a [String],
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
    /// Unix seconds now.
    pub now: i64,
    /// Accepted skew, seconds.
    pub tolerance: i64,
}

/// Returns the single value of header `name`.
///
/// # Errors
/// [`SignatureError::HeaderInvalid`] if missing, on more than one line, empty, or not visible
/// ASCII.
pub fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let first = values
        .next()
        .ok_or_else(|| SignatureError::HeaderInvalid(format!("{name} is missing")))?;
    if values.next().is_some() {
        return Err(SignatureError::HeaderInvalid(format!(
            "{name} appears more than once"
        )));
    }
    let text = first
        .to_str()
        .map_err(|_| SignatureError::HeaderInvalid(format!("{name} is not ASCII")))?
        .trim();
    if text.is_empty() {
        return Err(SignatureError::HeaderInvalid(format!("{name} is empty")));
    }
    Ok(text)
}

/// Like [`single_header`] but absent is fine; duplicated or empty is still an error.
fn optional_header<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, SignatureError> {
    if headers.get(name).is_none() {
        return Ok(None);
    }
    single_header(headers, name).map(Some)
}

/// Most signature candidates one header may carry (Standard Webhooks `v1,` entries, Stripe
/// `v1=` items). More is refused before any MAC is computed, so a header cannot make the
/// appliance hash a body thousands of times.
pub const MAX_SIGNATURE_CANDIDATES: usize = 16;

/// The HMAC-SHA256 tag of `parts` under each key, computed once per key.
fn tags(keys: &[Vec<u8>], parts: &[&[u8]]) -> Vec<[u8; 32]> {
    keys.iter()
        .filter_map(|k| {
            let mut mac = HmacSha256::new_from_slice(k).ok()?;
            for p in parts {
                mac.update(p);
            }
            Some(mac.finalize().into_bytes().into())
        })
        .collect()
}

/// Whether `candidate` equals one of `tags`, in constant time per comparison and without an
/// early exit (timing reveals neither which secret nor which candidate matched).
fn any_tag_matches(tags: &[[u8; 32]], candidates: &[Vec<u8>]) -> bool {
    use subtle::ConstantTimeEq;
    let mut ok = subtle::Choice::from(0);
    for c in candidates {
        for t in tags {
            if c.len() == t.len() {
                ok |= c.as_slice().ct_eq(t.as_slice());
            }
        }
    }
    ok.into()
}

fn any_key_ok(keys: &[Vec<u8>], parts: &[&[u8]], expected: &[u8]) -> bool {
    any_tag_matches(&tags(keys, parts), &[expected.to_vec()])
}

fn too_many() -> SignatureError {
    SignatureError::HeaderInvalid(format!(
        "more than {MAX_SIGNATURE_CANDIDATES} signatures in one header"
    ))
}

/// Decodes a Standard Webhooks secret: `whsec_<base64>` → bytes; anything else → raw bytes.
pub fn standard_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => B64
            .decode(b64)
            .unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

fn parse_timestamp(raw: &str, name: &str) -> Result<i64, SignatureError> {
    if raw.is_empty() || raw.len() > 12 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::HeaderInvalid(format!(
            "{name} is not a Unix timestamp"
        )));
    }
    raw.parse()
        .map_err(|_| SignatureError::HeaderInvalid(format!("{name} is not a Unix timestamp")))
}

fn check_tolerance(ts: i64, now: i64, tolerance: i64) -> Result<(), SignatureError> {
    if (now - ts).abs() > tolerance {
        Err(SignatureError::TimestampOutOfTolerance)
    } else {
        Ok(())
    }
}

/// Verifies a request's signature per its provider's scheme (see module docs).
///
/// # Errors
/// [`SignatureError`] as described on each variant.
pub fn verify(input: &VerifyInput<'_>) -> Result<Verified, SignatureError> {
    let raw_keys: Vec<Vec<u8>> = input
        .secrets
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let h = input.headers;
    match input.provider {
        Provider::Standard => verify_standard(input),
        Provider::Ml => {
            if h.get("webhook-signature").is_some() || h.get("webhook-id").is_some() {
                return verify_standard(input);
            }
            let sig = single_header(h, "x-intelgraph-signature")?;
            let hex_part = sig.strip_prefix("sha256=").unwrap_or(sig);
            let expected = hex::decode(hex_part).map_err(|_| SignatureError::Invalid)?;
            if !any_key_ok(&raw_keys, &[input.body], &expected) {
                return Err(SignatureError::Invalid);
            }
            Ok(Verified {
                delivery_id: None,
                timestamp: None,
                scheme: "intelgraph",
            })
        }
        Provider::Github => {
            let sig = single_header(h, "x-hub-signature-256")?;
            let delivery = optional_header(h, "x-github-delivery")?;
            let hex_part = sig.strip_prefix("sha256=").ok_or(SignatureError::Invalid)?;
            let expected = hex::decode(hex_part).map_err(|_| SignatureError::Invalid)?;
            if !any_key_ok(&raw_keys, &[input.body], &expected) {
                return Err(SignatureError::Invalid);
            }
            Ok(Verified {
                delivery_id: delivery.map(str::to_string),
                timestamp: None,
                scheme: "github",
            })
        }
        Provider::Stripe => {
            let header = single_header(h, "stripe-signature")?;
            let mut ts: Option<&str> = None;
            let mut sigs: Vec<Vec<u8>> = Vec::new();
            for item in header.split(',') {
                let (k, v) = item.trim().split_once('=').ok_or_else(|| {
                    SignatureError::HeaderInvalid("Stripe-Signature item without '='".into())
                })?;
                match k {
                    "t" if ts.is_some() => {
                        return Err(SignatureError::HeaderInvalid(
                            "Stripe-Signature has two timestamps".into(),
                        ));
                    }
                    "t" => ts = Some(v),
                    "v1" => {
                        if let Ok(b) = hex::decode(v) {
                            sigs.push(b);
                        }
                    }
                    _ => {}
                }
            }
            let ts_raw = ts.ok_or_else(|| {
                SignatureError::HeaderInvalid("Stripe-Signature has no t= timestamp".into())
            })?;
            let ts = parse_timestamp(ts_raw, "Stripe-Signature t")?;
            if sigs.len() > MAX_SIGNATURE_CANDIDATES {
                return Err(too_many());
            }
            let tags = tags(&raw_keys, &[ts_raw.as_bytes(), b".", input.body]);
            if !any_tag_matches(&tags, &sigs) {
                return Err(SignatureError::Invalid);
            }
            check_tolerance(ts, input.now, input.tolerance)?;
            Ok(Verified {
                delivery_id: None,
                timestamp: Some(ts),
                scheme: "stripe",
            })
        }
        Provider::Slack => {
            let sig = single_header(h, "x-slack-signature")?;
            let ts_raw = single_header(h, "x-slack-request-timestamp")?;
            let ts = parse_timestamp(ts_raw, "X-Slack-Request-Timestamp")?;
            let hex_part = sig.strip_prefix("v0=").ok_or(SignatureError::Invalid)?;
            let expected = hex::decode(hex_part).map_err(|_| SignatureError::Invalid)?;
            if !any_key_ok(
                &raw_keys,
                &[b"v0:", ts_raw.as_bytes(), b":", input.body],
                &expected,
            ) {
                return Err(SignatureError::Invalid);
            }
            check_tolerance(ts, input.now, input.tolerance)?;
            Ok(Verified {
                delivery_id: None,
                timestamp: Some(ts),
                scheme: "slack",
            })
        }
        Provider::Shopify => {
            let sig = single_header(h, "x-shopify-hmac-sha256")?;
            let delivery = optional_header(h, "x-shopify-webhook-id")?;
            let expected = B64.decode(sig).map_err(|_| SignatureError::Invalid)?;
            if !any_key_ok(&raw_keys, &[input.body], &expected) {
                return Err(SignatureError::Invalid);
            }
            Ok(Verified {
                delivery_id: delivery.map(str::to_string),
                timestamp: None,
                scheme: "shopify",
            })
        }
        Provider::Generic => {
            // Fail closed on a misconfigured source.
            let scheme = input.generic.ok_or(SignatureError::Invalid)?;
            let sig = single_header(h, &scheme.header)?;
            let payload = match &scheme.prefix {
                Some(p) => sig
                    .strip_prefix(p.as_str())
                    .ok_or(SignatureError::Invalid)?,
                None => sig,
            };
            let expected = match scheme.encoding {
                SigEncoding::Hex => hex::decode(payload).map_err(|_| SignatureError::Invalid)?,
                SigEncoding::Base64 => B64.decode(payload).map_err(|_| SignatureError::Invalid)?,
            };
            if !any_key_ok(&raw_keys, &[input.body], &expected) {
                return Err(SignatureError::Invalid);
            }
            Ok(Verified {
                delivery_id: None,
                timestamp: None,
                scheme: "generic",
            })
        }
    }
}

fn verify_standard(input: &VerifyInput<'_>) -> Result<Verified, SignatureError> {
    let h = input.headers;
    let id = single_header(h, "webhook-id")?;
    let ts_raw = single_header(h, "webhook-timestamp")?;
    let sig_header = single_header(h, "webhook-signature")?;
    let ts = parse_timestamp(ts_raw, "webhook-timestamp")?;
    let keys: Vec<Vec<u8>> = input.secrets.iter().map(|s| standard_key(s)).collect();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts_raw.as_bytes(), b".", input.body];
    let entries: Vec<&str> = sig_header.split(' ').filter(|e| !e.is_empty()).collect();
    if entries.len() > MAX_SIGNATURE_CANDIDATES {
        return Err(too_many());
    }
    let candidates: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|e| e.strip_prefix("v1,"))
        .filter_map(|b64| B64.decode(b64).ok())
        .collect();
    if !any_tag_matches(&tags(&keys, &parts), &candidates) {
        return Err(SignatureError::Invalid);
    }
    check_tolerance(ts, input.now, input.tolerance)?;
    Ok(Verified {
        delivery_id: Some(id.to_string()),
        timestamp: Some(ts),
        scheme: "standard",
    })
}

/// Signs `id.ts.body` the Standard Webhooks way: returns the `v1,<base64>` header value.
pub fn sign_standard(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let key = standard_key(secret);
    let mut mac = match HmacSha256::new_from_slice(&key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret` (GitHub / ML style).
pub fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    match HmacSha256::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn duplicated_and_empty_headers_are_invalid() {
        let h = headers(&[
            ("x-hub-signature-256", "sha256=00"),
            ("x-hub-signature-256", "sha256=01"),
        ]);
        let s = vec!["k".to_string()];
        let input = VerifyInput {
            provider: Provider::Github,
            generic: None,
            secrets: &s,
            headers: &h,
            body: b"x",
            now: 0,
            tolerance: 300,
        };
        assert!(matches!(
            verify(&input),
            Err(SignatureError::HeaderInvalid(_))
        ));
        let h = headers(&[("x-hub-signature-256", "")]);
        let input = VerifyInput {
            headers: &h,
            ..input
        };
        assert!(matches!(
            verify(&input),
            Err(SignatureError::HeaderInvalid(_))
        ));
    }

    #[test]
    fn too_many_candidates_are_refused_before_hashing() {
        let secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()];
        let many = vec!["v1,AA=="; MAX_SIGNATURE_CANDIDATES + 1].join(" ");
        let h = headers(&[
            ("webhook-id", "m"),
            ("webhook-timestamp", "1000"),
            ("webhook-signature", &many),
        ]);
        let input = VerifyInput {
            provider: Provider::Standard,
            generic: None,
            secrets: &secrets,
            headers: &h,
            body: b"{}",
            now: 1000,
            tolerance: 300,
        };
        assert!(matches!(
            verify(&input),
            Err(SignatureError::HeaderInvalid(_))
        ));
        let stripe = format!(
            "t=1000,{}",
            vec!["v1=00"; MAX_SIGNATURE_CANDIDATES + 1].join(",")
        );
        let h = headers(&[("stripe-signature", &stripe)]);
        let input = VerifyInput {
            provider: Provider::Stripe,
            headers: &h,
            ..input
        };
        assert!(matches!(
            verify(&input),
            Err(SignatureError::HeaderInvalid(_))
        ));
    }

    #[test]
    fn sign_standard_roundtrip_and_rotation() {
        let secrets = vec![
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
            "other-secret".into(),
        ];
        let sig = sign_standard(&secrets[1], "msg_1", 1000, b"{}");
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1000"),
            ("webhook-signature", &sig),
        ]);
        let input = VerifyInput {
            provider: Provider::Standard,
            generic: None,
            secrets: &secrets,
            headers: &h,
            body: b"{}",
            now: 1100,
            tolerance: 300,
        };
        assert_eq!(
            verify(&input).unwrap().delivery_id.as_deref(),
            Some("msg_1")
        );
        let late = VerifyInput { now: 1301, ..input };
        assert_eq!(verify(&late), Err(SignatureError::TimestampOutOfTolerance));
    }
}
