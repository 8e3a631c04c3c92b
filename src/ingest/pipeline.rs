//! The ingestion pipeline, DESIGN §1 steps 4–8, after transport has done steps 1–3 (rate
//! limit, `Content-Length` cap, `Content-Encoding`, bounded read):
//!
//! 4. signature and timestamp header lines (missing, empty, duplicated → [`IngestError::SignatureHeaderInvalid`]);
//! 5. the MAC over the **raw bytes**, constant time, against every active secret of the source
//!    ([`IngestError::SignatureInvalid`]; no secret at all → [`IngestError::NoSecret`]);
//! 6. the signed timestamp within ±tolerance ([`IngestError::TimestampOutOfTolerance`]);
//! 7. replay: the same delivery id (or, without one, the same body digest) within the retention
//!    window answers [`Accepted::Duplicate`] with the first event id, nothing processed twice;
//! 8. only now the body is parsed ([`IngestError::InvalidJson`], [`IngestError::SchemaInvalid`])
//!    and the records are built and stored in one durable commit ([`IngestStore::store_event`]).
//!
//! The body is carried as an [`Inbound`] whose type says whether its signature was checked:
//! only an `Inbound<Verified>` can be parsed or handed to storage.

use std::future::Future;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::signature::{self, SignatureError, VerifyInput};
use super::{EventRecord, Provider, SourceRecord, ai, is_json_content_type};
use crate::audit::AuditRecord;

/// Marker: the body's signature has not been checked.
#[derive(Debug)]
pub struct Unverified;

/// Marker: the body's signature verified; what the signature established.
#[derive(Debug)]
pub struct Verified(signature::Verified);

/// A webhook body, typed by whether its signature was checked (svix-bridge style typestate).
#[derive(Debug)]
pub struct Inbound<S> {
    body: Bytes,
    state: S,
}

impl Inbound<Unverified> {
    /// Wraps the raw bytes as read from the wire.
    pub fn new(body: Bytes) -> Self {
        Self {
            body,
            state: Unverified,
        }
    }

    /// Checks the signature headers, the MAC over the raw bytes and the signed timestamp.
    ///
    /// # Errors
    /// [`SignatureError`] for the first failing check (header lines, MAC, tolerance).
    pub fn verify(self, input: &Check<'_>) -> Result<Inbound<Verified>, SignatureError> {
        let verified = signature::verify(&VerifyInput {
            provider: input.provider,
            generic: input.generic,
            secrets: input.secrets,
            headers: input.headers,
            body: &self.body,
            now: input.now,
            tolerance: input.tolerance,
        })?;
        Ok(Inbound {
            body: self.body,
            state: Verified(verified),
        })
    }
}

impl Inbound<Verified> {
    /// The verified raw bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// What the signature established (scheme, delivery id, signed timestamp).
    pub fn delivery(&self) -> &signature::Verified {
        &self.state.0
    }
}

/// What [`Inbound::verify`] checks against.
pub struct Check<'a> {
    /// Signature scheme.
    pub provider: Provider,
    /// Settings of a `generic` source.
    pub generic: Option<&'a signature::GenericScheme>,
    /// Candidate secrets.
    pub secrets: &'a [String],
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Unix seconds.
    pub now: i64,
    /// Accepted skew of a signed timestamp, seconds.
    pub tolerance: i64,
}

/// The fixed-size replay key of a delivery: SHA-256 over the source id and either the delivery
/// id (`id:` form) or the body digest (`sha256:` form), 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey(pub [u8; 32]);

impl ReplayKey {
    /// The key of a delivery to `source` with `delivery_id` (or, without one, the body's
    /// lowercase hex SHA-256 `body_sha256`).
    pub fn new(source: &str, delivery_id: Option<&str>, body_sha256: &str) -> Self {
        Self::from_v1(source, &super::replay_key(delivery_id, body_sha256))
    }

    /// The key from a schema-1 replay key string (`id:…` or `sha256:…`).
    pub fn from_v1(source: &str, v1: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"evidentia-replay/v2\0");
        h.update(source.as_bytes());
        h.update([0u8]);
        h.update(v1.as_bytes());
        Self(h.finalize().into())
    }
}

/// An accepted delivery, ready to store.
#[derive(Debug)]
pub struct NewEvent {
    /// The verified raw body (stored once).
    pub body: Inbound<Verified>,
    /// Metadata; `id` and `seq` are assigned by the store at commit.
    pub record: EventRecord,
    /// Replay key.
    pub replay: ReplayKey,
    /// Replay window start, Unix seconds: an earlier delivery older than this is no duplicate.
    pub replay_since: i64,
    /// ML insights, each its own raw JSON slice of the body (no re-encoding).
    pub insights: Vec<Bytes>,
}

/// What the pipeline did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored as a new event (its `id` and `seq` as assigned).
    Stored(Box<EventRecord>),
    /// Seen before within the retention window: nothing was processed.
    Duplicate {
        /// The original event id.
        event_id: String,
        /// Whether the audit records passed to the store were committed (a delivery that lost
        /// a race inside the commit); `false` when the duplicate was found before storing.
        recorded: bool,
    },
}

/// The storage the pipeline needs (implemented by [`crate::store::Store`]).
pub trait IngestStore {
    /// Storage failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The event id an earlier delivery with `key` created at or after `since` (Unix seconds).
    ///
    /// # Errors
    /// Storage failure.
    fn find_delivery(
        &self,
        tenant: &str,
        key: &ReplayKey,
        since: i64,
    ) -> Result<Option<String>, Self::Error>;

    /// Stores the event, its body, replay key, insights, notarised evidence-log leaf and
    /// `audit` in one durable commit, unless a delivery with the same replay key won the race.
    ///
    /// # Errors
    /// Storage failure (nothing was stored).
    fn store_event(
        &self,
        event: NewEvent,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<Accepted, Self::Error>> + Send;
}

/// Why a delivery was refused, in check order. Transport maps each variant to one problem code.
#[derive(Debug, thiserror::Error)]
pub enum IngestError<E: std::error::Error + 'static> {
    /// The source has no secret that is valid now (or the tenant has no `ml` source).
    #[error("no webhook secret is configured for this source")]
    NoSecret,
    /// A signature or timestamp header line is missing, empty, duplicated or unparsable.
    #[error("signature header invalid: {0}")]
    SignatureHeaderInvalid(String),
    /// No active secret verifies the MAC over the raw bytes.
    #[error("the signature does not match the body")]
    SignatureInvalid,
    /// The MAC verified but the signed timestamp is further than `tolerance_secs` from now.
    #[error("the signed timestamp is more than {tolerance_secs} s from the appliance clock")]
    TimestampOutOfTolerance {
        /// Accepted skew, seconds.
        tolerance_secs: i64,
    },
    /// The signature verified but the source's tenant is suspended. Checked only after the
    /// signature, so a stranger cannot learn a tenant's status by sending unsigned requests.
    #[error("the tenant of this source is suspended: its ingestion is refused")]
    TenantSuspended,
    /// The (verified) body must be JSON and is not.
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The JSON does not have the ML payload shape.
    #[error(transparent)]
    SchemaInvalid(ai::SchemaError),
    /// Storage failed; nothing was stored.
    #[error(transparent)]
    Storage(E),
}

impl<E: std::error::Error + 'static> IngestError<E> {
    /// The audit record's signature verdict: `not_checked`, `missing`, `invalid`,
    /// `valid_stale` or `valid` (for failures after the signature verified).
    pub fn signature_verdict(&self) -> &'static str {
        match self {
            IngestError::NoSecret => "not_checked",
            IngestError::SignatureHeaderInvalid(_) => "missing",
            IngestError::SignatureInvalid => "invalid",
            IngestError::TimestampOutOfTolerance { .. } => "valid_stale",
            IngestError::TenantSuspended
            | IngestError::InvalidJson(_)
            | IngestError::SchemaInvalid(_)
            | IngestError::Storage(_) => "valid",
        }
    }

    /// `Some(failed_mac)` when the signature check refused the delivery (`true` when no MAC
    /// verified, which counts towards the source's failure penalty), `None` otherwise.
    pub fn signature_failure(&self) -> Option<bool> {
        match self {
            IngestError::SignatureHeaderInvalid(_) | IngestError::SignatureInvalid => Some(true),
            IngestError::TimestampOutOfTolerance { .. } => Some(false),
            _ => None,
        }
    }
}

/// Settings of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// Accepted skew of signed timestamps, seconds (DESIGN: 300).
    pub tolerance_secs: i64,
    /// Raw-body retention and replay window, seconds.
    pub retention_secs: i64,
    /// The appliance `ML_WEBHOOK_SECRET`, for sources that use it.
    pub appliance_ml_secret: &'a [u8],
    /// Whether the source's tenant is suspended (verified deliveries are then refused).
    pub tenant_suspended: bool,
}

/// The pipeline over a store `S`.
pub struct Pipeline<'a, S> {
    store: &'a S,
    settings: Settings<'a>,
}

impl<'a, S: IngestStore + Sync> Pipeline<'a, S> {
    /// A pipeline storing into `store`.
    pub fn new(store: &'a S, settings: Settings<'a>) -> Self {
        Self { store, settings }
    }

    /// Runs steps 4–8 for one delivery to `source`: `headers` and `body` as received,
    /// `content_type` the request's `Content-Type`, `now` Unix seconds. `audit` builds the
    /// audit records committed with the event (called only once the signature verified).
    ///
    /// # Errors
    /// The first failing check as an [`IngestError`].
    pub async fn accept(
        &self,
        source: &SourceRecord,
        headers: &HeaderMap,
        body: Inbound<Unverified>,
        content_type: &str,
        now: i64,
        audit: impl FnOnce() -> Vec<AuditRecord>,
    ) -> Result<Accepted, IngestError<S::Error>> {
        // 4–6. Secrets, signature headers, MAC over the raw bytes, timestamp.
        let mut secrets = source.active_secrets(now);
        if source.uses_appliance_secret {
            secrets.push(String::from_utf8_lossy(self.settings.appliance_ml_secret).into_owned());
        }
        if secrets.is_empty() {
            return Err(IngestError::NoSecret);
        }
        let body = body
            .verify(&Check {
                provider: source.provider,
                generic: source.generic.as_ref(),
                secrets: &secrets,
                headers,
                now,
                tolerance: self.settings.tolerance_secs,
            })
            .map_err(|e| match e {
                SignatureError::HeaderInvalid(m) => IngestError::SignatureHeaderInvalid(m),
                SignatureError::Invalid => IngestError::SignatureInvalid,
                SignatureError::TimestampOutOfTolerance => IngestError::TimestampOutOfTolerance {
                    tolerance_secs: self.settings.tolerance_secs,
                },
            })?;
        if self.settings.tenant_suspended {
            return Err(IngestError::TenantSuspended);
        }

        // 7. Replay.
        let digest = super::sha256_hex(body.body());
        let replay = ReplayKey::new(&source.id, body.delivery().delivery_id.as_deref(), &digest);
        let since = now.saturating_sub(self.settings.retention_secs);
        if let Some(original) = self
            .store
            .find_delivery(&source.tenant, &replay, since)
            .map_err(IngestError::Storage)?
        {
            return Ok(Accepted::Duplicate {
                event_id: original,
                recorded: false,
            });
        }

        // 8. Only now parse, then build the records.
        let parsed = parse(&body, source.provider, content_type)?;
        let delivery = body.delivery();
        let record = EventRecord {
            id: String::new(),
            seq: 0,
            tenant: source.tenant.clone(),
            source: source.id.clone(),
            provider: source.provider,
            scheme: delivery.scheme.to_string(),
            delivery_id: delivery.delivery_id.clone(),
            signed_timestamp: delivery.timestamp,
            sha256: digest,
            size: body.body().len() as u64,
            content_type: content_type.to_string(),
            received_at: now,
            outcome: "accepted".into(),
            job_id: parsed.as_ref().map(|p| p.job_id.clone()),
            kind: parsed.as_ref().map(|p| p.kind.clone()),
            insights: parsed.as_ref().map_or(0, |p| p.insights.len() as u64),
            body_expires_at: now.saturating_add(self.settings.retention_secs),
            body_purged: false,
        };
        let event = NewEvent {
            body,
            record,
            replay,
            replay_since: since,
            insights: parsed.map(|p| p.insights).unwrap_or_default(),
        };
        self.store
            .store_event(event, audit())
            .await
            .map_err(IngestError::Storage)
    }
}

/// A parsed ML payload: job, kind and each insight as a slice of the verified body.
#[derive(Debug)]
struct MlPayload {
    job_id: String,
    kind: String,
    insights: Vec<Bytes>,
}

/// Step 8: `ml` bodies must be an ML payload; other bodies must be JSON when `Content-Type`
/// says so (checked without building a tree), otherwise they are kept as opaque bytes.
fn parse<E: std::error::Error + 'static>(
    body: &Inbound<Verified>,
    provider: Provider,
    content_type: &str,
) -> Result<Option<MlPayload>, IngestError<E>> {
    let bytes = body.body();
    if provider != Provider::Ml {
        if is_json_content_type(content_type) {
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map_err(|e| IngestError::InvalidJson(e.to_string()))?;
        }
        return Ok(None);
    }
    let raw: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| IngestError::InvalidJson(e.to_string()))?;
    let p = ai::extract_raw(raw).map_err(IngestError::SchemaInvalid)?;
    Ok(Some(MlPayload {
        job_id: p.job_id,
        kind: p.kind,
        insights: p
            .insights
            .into_iter()
            .map(|r| bytes.slice_ref(r.get().as_bytes()))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keys_are_per_source_and_form() {
        let a = ReplayKey::new("src_a", Some("d1"), "00");
        assert_eq!(a, ReplayKey::from_v1("src_a", "id:d1"));
        assert_ne!(a, ReplayKey::new("src_b", Some("d1"), "00"));
        assert_ne!(
            ReplayKey::new("src_a", None, "d1"),
            ReplayKey::new("src_a", Some("d1"), "d1")
        );
    }

    #[test]
    fn insights_are_slices_of_the_verified_body() {
        let body = Bytes::from_static(
            br#"{"job_id":"j","kind":"nlp_entities","results":[{"a":1}, [2,3]]}"#,
        );
        let inbound = Inbound {
            body: body.clone(),
            state: Verified(signature::Verified::default()),
        };
        let p = parse::<std::io::Error>(&inbound, Provider::Ml, "application/json")
            .unwrap()
            .unwrap();
        assert_eq!(p.insights[0].as_ref(), br#"{"a":1}"#);
        assert_eq!(p.insights[1].as_ref(), b"[2,3]");
        // Zero-copy: each insight points into the body's buffer.
        let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(range.contains(&(p.insights[1].as_ptr() as usize)));
        let whole = Inbound {
            body: Bytes::from_static(br#" {"job_id":"j","kind":"x","v":1} "#),
            state: Verified(signature::Verified::default()),
        };
        let p = parse::<std::io::Error>(&whole, Provider::Ml, "")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.insights[0].as_ref(),
            br#"{"job_id":"j","kind":"x","v":1}"#
        );
        let bad = Inbound {
            body: Bytes::from_static(b"{"),
            state: Verified(signature::Verified::default()),
        };
        assert!(matches!(
            parse::<std::io::Error>(&bad, Provider::Github, "application/json"),
            Err(IngestError::InvalidJson(_))
        ));
        assert!(matches!(
            parse::<std::io::Error>(&bad, Provider::Github, "text/plain"),
            Ok(None)
        ));
    }
}
