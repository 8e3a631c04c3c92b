//! Integrations and their deliveries: the records, the registration rules and the message each
//! delivery carries (DESIGN §4).
//!
//! An **integration** is one customer endpoint or SIEM of one tenant: a kind
//! ([`IntegrationKind`]), a URL that passed [`UrlPolicy::validate`], the event types it
//! subscribes to ([`EventType`]), custom headers that passed [`validate_headers`], and its
//! credential (a `whsec_` Standard Webhooks secret, or a Splunk HEC token). The store seals the
//! credential at rest; this type holds it in clear.
//!
//! A **delivery** is one message for one integration. It is created in the commit that
//! acknowledges what it reports (a log entry, a signed checkpoint), keeps its `webhook-id`
//! across every attempt, and records each attempt ([`Attempt`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::IntegrationKind;
use super::client::{AttemptOutcome, EXCERPT_BYTES, ErrorClass};
use super::siem::hec::HecToken;
use super::sign::WebhookSecret;
use super::url::{EndpointUrl, HeaderError, UrlError, UrlPolicy, validate_headers};

/// Most integrations one tenant may have: every subscribed entry costs each of them a
/// delivery, so the number bounds what one tenant's traffic can make the appliance store and
/// send.
pub const MAX_INTEGRATIONS_PER_TENANT: usize = 25;
/// Longest integration name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// How long a replaced webhook secret still signs (beside the new one), in seconds: 24 h.
pub const SECRET_GRACE_SECS: i64 = 24 * 3600;
/// Attempts kept in a delivery's log (the oldest are dropped first).
pub const MAX_ATTEMPTS_KEPT: usize = 16;
/// How long registration waits for the host name's addresses before accepting the URL
/// unchecked (the connect-time guard still checks every attempt).
pub const PREFLIGHT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Longest HEC index name, in bytes.
pub const MAX_HEC_INDEX_BYTES: usize = 80;

/// What a delivery reports. The wire names are the Standard Webhooks `type` of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A webhook was verified and stored (a leaf of the tenant's `evidence` log).
    EventReceived,
    /// An artifact or a receipt was recorded (a leaf of the tenant's `evidence` log).
    EvidenceRecorded,
    /// An audit record was written (a leaf of the tenant's `audit` log).
    AuditRecorded,
    /// A new checkpoint of one of the tenant's logs was signed (C2SP signed note).
    CheckpointSigned,
    /// `POST …/integrations/{id}/test`: a message that reports nothing.
    IntegrationTest,
}

impl EventType {
    /// The types an integration can subscribe to.
    pub const SUBSCRIBABLE: [EventType; 4] = [
        Self::EventReceived,
        Self::EvidenceRecorded,
        Self::AuditRecorded,
        Self::CheckpointSigned,
    ];

    /// The wire name (`audit.recorded`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventReceived => "event.received",
            Self::EvidenceRecorded => "evidence.recorded",
            Self::AuditRecorded => "audit.recorded",
            Self::CheckpointSigned => "checkpoint.signed",
            Self::IntegrationTest => "integration.test",
        }
    }

    /// Parses a subscribable wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::SUBSCRIBABLE.into_iter().find(|t| t.as_str() == s)
    }

    /// Bit of the type in a subscription mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A Standard Webhooks secret of an integration, with the end of its validity once replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// Slot number, 1 for the first secret, +1 per rotation (names the sealed value).
    pub n: u32,
    /// `whsec_<base64>` (sealed at rest by the store).
    pub value: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it no longer signs; absent while current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Splunk HEC settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HecSettings {
    /// Target index; the token's default index when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Whether indexer acknowledgement is on (the token has it enabled in Splunk).
    pub ack: bool,
}

/// Whether deliveries go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Deliveries are attempted.
    Enabled,
    /// Nothing is attempted; deliveries stay pending until it is enabled again.
    Disabled,
}

/// Why an integration was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// By a user (`PATCH … {"enabled": false}`).
    Manual,
    /// The endpoint answered 410 Gone.
    Gone,
    /// No attempt succeeded for 5 days ([`super::schedule::DISABLE_AFTER_SECS`]).
    Failing,
}

impl DisabledReason {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }
}

/// A stored integration (credentials in clear here; the store seals them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationRecord {
    /// `int_` and 32 hex digits (128 random bits).
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Display name, 1–100 characters.
    pub name: String,
    /// What is sent and how.
    pub kind: IntegrationKind,
    /// The endpoint, canonical WHATWG serialisation.
    pub url: String,
    /// Subscribed types, sorted, at least one.
    pub event_types: Vec<EventType>,
    /// Custom headers in sending order (names lowercase).
    pub headers: Vec<(String, String)>,
    /// `webhook` and `siem-ocsf`: signing secrets, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SigningSecret>,
    /// `splunk-hec`: the HEC token (sealed at rest by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hec_token: Option<String>,
    /// `splunk-hec`: index and acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hec: Option<HecSettings>,
    /// Whether deliveries go out.
    pub status: IntegrationStatus,
    /// Why it is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<DisabledReason>,
    /// Unix seconds of the first failed attempt since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change by a user or by the delivery worker.
    pub updated_at: i64,
}

impl IntegrationRecord {
    /// The subscription mask ([`EventType::bit`]).
    pub fn mask(&self) -> u8 {
        self.event_types.iter().fold(0, |m, t| m | t.bit())
    }

    /// The secrets that sign at `now`, newest first (two while a rotation's grace runs).
    ///
    /// # Errors
    /// A stored secret that no longer parses (it was validated when stored).
    pub fn signing_secrets(
        &self,
        now: i64,
    ) -> Result<Vec<WebhookSecret>, super::sign::SecretError> {
        self.secrets
            .iter()
            .rev()
            .filter(|s| s.expires_at.is_none_or(|e| now < e))
            .map(|s| WebhookSecret::parse(&s.value))
            .collect()
    }
}

/// Why an integration's settings were refused (422 `INTEGRATION_INVALID`, the `reason`
/// member names the rule).
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The URL broke a registration rule ([`UrlError`]).
    #[error("url: {0}")]
    Url(#[from] UrlError),
    /// A custom header broke a rule ([`HeaderError`]).
    #[error("headers: {0}")]
    Header(#[from] HeaderError),
    /// The host name resolves to an address the guard refuses.
    #[error("url: host {host:?} resolves to {detail}")]
    Resolves {
        /// The host.
        host: String,
        /// The refused address and its range.
        detail: String,
    },
    /// Empty, too long or with control characters.
    #[error("name: 1 to {MAX_NAME_CHARS} characters without control characters")]
    Name,
    /// Empty list or an unknown type.
    #[error(
        "event_types: at least one of event.received, evidence.recorded, audit.recorded, checkpoint.signed{0}"
    )]
    EventTypes(String),
    /// A secret that is not `whsec_` with 24–64 bytes of base64.
    #[error("secret: {0}")]
    Secret(#[from] super::sign::SecretError),
    /// A HEC token that is missing or malformed, or a token on another kind.
    #[error("hec_token: {0}")]
    HecToken(String),
    /// HEC settings on another kind, or an index name that is not 1–80 of `a-z0-9_-`.
    #[error("hec: {0}")]
    Hec(&'static str),
    /// A `secret` in a PATCH without `rotate_secret`.
    #[error("secret: a secret is set by rotation: send rotate_secret true with it")]
    Rotation,
    /// The tenant has [`MAX_INTEGRATIONS_PER_TENANT`] integrations already.
    #[error("a tenant has at most {MAX_INTEGRATIONS_PER_TENANT} integrations")]
    Limit,
}

impl IntegrationError {
    /// Stable machine name of the rule (`url_blocked_address`, `header_reserved`, `name`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Url(e) => e.code(),
            Self::Header(e) => e.code(),
            Self::Resolves { .. } => "url_resolves_blocked",
            Self::Name => "name",
            Self::EventTypes(_) => "event_types",
            Self::Secret(_) => "secret",
            Self::HecToken(_) => "hec_token",
            Self::Hec(_) => "hec",
            Self::Rotation => "secret",
            Self::Limit => "limit",
        }
    }
}

/// Validates a name: 1–100 characters, no control, bidi or invisible characters.
///
/// # Errors
/// [`IntegrationError::Name`].
pub fn validate_name(name: &str) -> Result<String, IntegrationError> {
    crate::text::display_name("name", name, MAX_NAME_CHARS).map_err(|_| IntegrationError::Name)
}

/// Parses and de-duplicates subscribed types (sorted).
///
/// # Errors
/// [`IntegrationError::EventTypes`] for an empty list or an unknown name.
pub fn parse_event_types(names: &[String]) -> Result<Vec<EventType>, IntegrationError> {
    let mut set = BTreeSet::new();
    for n in names {
        let t = EventType::parse(n)
            .ok_or_else(|| IntegrationError::EventTypes(format!(" (unknown: {n:?})")))?;
        set.insert(t);
    }
    if set.is_empty() {
        return Err(IntegrationError::EventTypes(String::new()));
    }
    Ok(set.into_iter().collect())
}

/// Validates the URL against `policy` and the headers for `kind`; returns the canonical URL
/// and the headers with lowercase names.
///
/// # Errors
/// [`IntegrationError::Url`], [`IntegrationError::Header`].
pub fn validate_endpoint(
    policy: &UrlPolicy,
    kind: IntegrationKind,
    url: &str,
    headers: &[(String, String)],
) -> Result<(EndpointUrl, Vec<(String, String)>), IntegrationError> {
    let url = policy.validate(url)?;
    let checked = validate_headers(kind, headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(checked.len());
    for (name, value) in checked {
        if !seen.insert(name.as_str().to_string()) {
            return Err(HeaderError::InvalidName(format!("{} (twice)", name.as_str())).into());
        }
        let value = value
            .to_str()
            .map_err(|_| HeaderError::InvalidValue(name.as_str().to_string()))?
            .to_string();
        out.push((name.as_str().to_string(), value));
    }
    Ok((url, out))
}

/// Validates an index name: 1–80 of `a-z 0-9 _ -`, not starting with `_` or `-` (Splunk's
/// rule for index names).
///
/// # Errors
/// [`IntegrationError::Hec`].
pub fn validate_hec_index(index: &str) -> Result<(), IntegrationError> {
    let ok = !index.is_empty()
        && index.len() <= MAX_HEC_INDEX_BYTES
        && index
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !index.starts_with(['_', '-']);
    if ok {
        Ok(())
    } else {
        Err(IntegrationError::Hec(
            "index must be 1-80 of a-z 0-9 _ - not starting with _ or -",
        ))
    }
}

/// Validates a HEC token (1–128 visible ASCII characters; Splunk issues GUIDs).
///
/// # Errors
/// [`IntegrationError::HecToken`].
pub fn validate_hec_token(token: &str) -> Result<(), IntegrationError> {
    HecToken::parse(token)
        .map(|_| ())
        .map_err(|e| IntegrationError::HecToken(e.to_string()))
}

/// Where a delivery's content comes from: a log entry or a signed checkpoint. The message is
/// built from it at each attempt, identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Leaf `index` of the tenant's log `log` (`evidence`, `audit`).
    Entry {
        /// `evidence` or `audit`.
        log: String,
        /// Leaf index.
        index: u64,
    },
    /// A checkpoint of the tenant's log `log`, as signed.
    Checkpoint {
        /// `evidence` or `audit`.
        log: String,
        /// Tree size it commits to.
        size: u64,
        /// The C2SP signed note.
        note: String,
    },
    /// A test send.
    Test,
}

/// State of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint accepted it.
    Delivered,
    /// Every attempt of the schedule failed (a redeliver starts it again).
    Failed,
}

impl DeliveryStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One attempt as the attempts log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix seconds when it ended.
    pub at: i64,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Milliseconds.
    pub latency_ms: u64,
    /// Why it failed; `None` on success.
    pub error: Option<ErrorClass>,
    /// What the failure was (blocked range, redirect target, HEC refusal).
    pub detail: Option<String>,
    /// The first 1 KiB of the answer's body.
    pub excerpt: String,
}

impl Attempt {
    /// The attempts-log entry of `outcome`, ended at `at`.
    pub fn from_outcome(outcome: &AttemptOutcome, at: i64) -> Self {
        let mut excerpt = outcome.excerpt.clone();
        if excerpt.len() > EXCERPT_BYTES {
            let mut cut = EXCERPT_BYTES;
            while !excerpt.is_char_boundary(cut) {
                cut -= 1;
            }
            excerpt.truncate(cut);
        }
        Self {
            at,
            status: outcome.status,
            latency_ms: outcome.latency_ms,
            error: outcome.error,
            detail: outcome.detail.clone(),
            excerpt,
        }
    }
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Position in the appliance's delivery sequence (the table key).
    pub seq: u64,
    /// Random bits of the external id (`dlv_…`), so ids cannot be enumerated.
    pub tail: u64,
    /// Owning tenant.
    pub tenant: String,
    /// The integration (`int_…`).
    pub integration: String,
    /// What it reports.
    pub event_type: EventType,
    /// Its content.
    pub payload: Payload,
    /// Unix seconds when it was enqueued (the message's `timestamp`).
    pub created_at: i64,
    /// State.
    pub status: DeliveryStatus,
    /// Unix seconds of the next attempt while pending.
    pub next_at: Option<i64>,
    /// Attempts made in the current round (the schedule's position; a redeliver restarts it).
    pub round_attempts: u32,
    /// Every attempt (the last [`MAX_ATTEMPTS_KEPT`]).
    pub attempts: Vec<Attempt>,
}

/// The Standard Webhooks message of a delivery: `{"type", "timestamp", "data"}` with `data`
/// holding the tenant, the log, the position and the entry (or checkpoint) itself. `entry` is
/// the log entry's JSON (RFC 8785 canonical, as logged) so a receiver can recompute the leaf
/// hash (RFC 9162 §2.1.1) and check it against an inclusion proof.
pub fn webhook_message(delivery: &DeliveryRecord, entry: Option<&[u8]>, origin: &str) -> Value {
    let data = match &delivery.payload {
        Payload::Entry { log, index } => {
            let entry = entry
                .and_then(|e| serde_json::from_slice::<Value>(e).ok())
                .unwrap_or_else(|| json!({}));
            json!({
                "tenant": delivery.tenant,
                "log": log,
                "origin": origin,
                "index": index,
                "entry": entry,
            })
        }
        Payload::Checkpoint { log, size, note } => json!({
            "tenant": delivery.tenant,
            "log": log,
            "origin": origin,
            "size": size,
            "checkpoint": note,
        }),
        Payload::Test => json!({
            "tenant": delivery.tenant,
            "integration": delivery.integration,
            "message": "test delivery from Evidentia",
        }),
    };
    json!({
        "type": delivery.event_type.as_str(),
        "timestamp": crate::clock::rfc3339(delivery.created_at),
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_parse_dedupe_and_refuse_unknown() {
        let t = parse_event_types(&[
            "audit.recorded".into(),
            "event.received".into(),
            "audit.recorded".into(),
        ])
        .unwrap();
        assert_eq!(t, vec![EventType::EventReceived, EventType::AuditRecorded]);
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&["integration.test".into()]).is_err());
        assert_eq!(
            parse_event_types(&["x".into()]).unwrap_err().reason(),
            "event_types"
        );
    }

    #[test]
    fn hec_index_rules() {
        assert!(validate_hec_index("main").is_ok());
        assert!(validate_hec_index("_internal").is_err());
        assert!(validate_hec_index("Main").is_err());
        assert!(validate_hec_index("").is_err());
    }
}

/// What a user asks for when creating an integration (already JSON-decoded).
#[derive(Debug, Clone, Default)]
pub struct NewIntegration {
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: Option<IntegrationKind>,
    /// Endpoint URL.
    pub url: String,
    /// Subscribed type names.
    pub event_types: Vec<String>,
    /// Custom headers.
    pub headers: Vec<(String, String)>,
    /// `webhook`/`siem-ocsf`: a `whsec_` secret to use (generated when absent).
    pub secret: Option<String>,
    /// `splunk-hec`: the HEC token (required).
    pub hec_token: Option<String>,
    /// `splunk-hec`: index.
    pub hec_index: Option<String>,
    /// `splunk-hec`: indexer acknowledgement.
    pub hec_ack: Option<bool>,
}

/// The types `siem-ocsf` integrations carry: audit records (API Activity, Authentication,
/// Detection Finding) and checkpoints (Base Event).
fn allowed_for(kind: IntegrationKind, t: EventType) -> bool {
    kind != IntegrationKind::SiemOcsf
        || matches!(t, EventType::AuditRecorded | EventType::CheckpointSigned)
}

fn check_kind_types(kind: IntegrationKind, types: &[EventType]) -> Result<(), IntegrationError> {
    match types.iter().find(|t| !allowed_for(kind, **t)) {
        Some(t) => Err(IntegrationError::EventTypes(format!(
            " (siem-ocsf carries audit.recorded and checkpoint.signed, not {})",
            t.as_str()
        ))),
        None => Ok(()),
    }
}

fn check_hec_fields(kind: IntegrationKind, new: &NewIntegration) -> Result<(), IntegrationError> {
    let hec_fields = new.hec_token.is_some() || new.hec_index.is_some() || new.hec_ack.is_some();
    match kind {
        IntegrationKind::SplunkHec if new.secret.is_some() => Err(IntegrationError::Hec(
            "splunk-hec integrations authenticate with hec_token, not a secret",
        )),
        IntegrationKind::SplunkHec => Ok(()),
        _ if hec_fields => Err(IntegrationError::Hec(
            "hec_token, hec_index and hec_ack apply to splunk-hec integrations only",
        )),
        _ => Ok(()),
    }
}

/// Builds a new integration for `tenant` at `now` from `new`, judged by `policy`; returns it
/// and the generated secret to show once (webhook and siem-ocsf kinds without a supplied
/// secret).
///
/// # Errors
/// [`IntegrationError`] for the first rule broken.
pub fn create(
    policy: &UrlPolicy,
    tenant: &str,
    new: NewIntegration,
    now: i64,
) -> Result<(IntegrationRecord, Option<String>), IntegrationError> {
    let name = validate_name(&new.name)?;
    let kind = new.kind.unwrap_or(IntegrationKind::Webhook);
    check_hec_fields(kind, &new)?;
    let (url, headers) = validate_endpoint(policy, kind, &new.url, &new.headers)?;
    let event_types = parse_event_types(&new.event_types)?;
    check_kind_types(kind, &event_types)?;
    let mut generated = None;
    let (secrets, hec_token, hec) = match kind {
        IntegrationKind::SplunkHec => {
            let token = new
                .hec_token
                .ok_or_else(|| IntegrationError::HecToken("required for splunk-hec".into()))?;
            validate_hec_token(&token)?;
            if let Some(i) = &new.hec_index {
                validate_hec_index(i)?;
            }
            let settings = HecSettings {
                index: new.hec_index,
                ack: new.hec_ack.unwrap_or(false),
            };
            (Vec::new(), Some(token), Some(settings))
        }
        _ => {
            let value = match new.secret {
                Some(s) => WebhookSecret::parse(&s)?.expose(),
                None => {
                    let s = WebhookSecret::generate().expose();
                    generated = Some(s.clone());
                    s
                }
            };
            let slot = SigningSecret {
                n: 1,
                value,
                created_at: now,
                expires_at: None,
            };
            (vec![slot], None, None)
        }
    };
    let record = IntegrationRecord {
        id: crate::ingest::random_id("int_"),
        tenant: tenant.to_string(),
        name,
        kind,
        url: url.as_str().to_string(),
        event_types,
        headers,
        secrets,
        hec_token,
        hec,
        status: IntegrationStatus::Enabled,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    Ok((record, generated))
}

/// A change to an integration (absent fields stay as they are).
#[derive(Debug, Clone, Default)]
pub struct IntegrationPatch {
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New subscriptions.
    pub event_types: Option<Vec<String>>,
    /// New custom headers (replacing all).
    pub headers: Option<Vec<(String, String)>>,
    /// Enable (clears the disabled reason and the failure streak) or disable.
    pub enabled: Option<bool>,
    /// Replace the signing secret (webhook, siem-ocsf): the old one still signs, beside the
    /// new one, for [`SECRET_GRACE_SECS`].
    pub rotate_secret: bool,
    /// The secret to rotate to (generated when absent).
    pub secret: Option<String>,
    /// New HEC token.
    pub hec_token: Option<String>,
    /// New HEC index (`""` clears it).
    pub hec_index: Option<String>,
    /// HEC acknowledgement on or off.
    pub hec_ack: Option<bool>,
}

/// Applies `patch` to `rec` at `now`; returns the generated secret to show once, if any.
///
/// # Errors
/// [`IntegrationError`] for the first rule broken; `rec` may then be partly changed (the
/// caller discards it).
pub fn apply_patch(
    policy: &UrlPolicy,
    rec: &mut IntegrationRecord,
    patch: IntegrationPatch,
    now: i64,
) -> Result<Option<String>, IntegrationError> {
    let is_hec = rec.kind == IntegrationKind::SplunkHec;
    if is_hec && (patch.rotate_secret || patch.secret.is_some()) {
        return Err(IntegrationError::Hec(
            "splunk-hec integrations rotate by setting hec_token",
        ));
    }
    if !is_hec
        && (patch.hec_token.is_some() || patch.hec_index.is_some() || patch.hec_ack.is_some())
    {
        return Err(IntegrationError::Hec(
            "hec_token, hec_index and hec_ack apply to splunk-hec integrations only",
        ));
    }
    if patch.secret.is_some() && !patch.rotate_secret {
        return Err(IntegrationError::Rotation);
    }
    if let Some(name) = &patch.name {
        rec.name = validate_name(name)?;
    }
    if patch.url.is_some() || patch.headers.is_some() {
        let url = patch.url.as_deref().unwrap_or(&rec.url).to_string();
        let headers = patch.headers.clone().unwrap_or_else(|| rec.headers.clone());
        let (url, headers) = validate_endpoint(policy, rec.kind, &url, &headers)?;
        rec.url = url.as_str().to_string();
        rec.headers = headers;
    }
    if let Some(types) = &patch.event_types {
        let types = parse_event_types(types)?;
        check_kind_types(rec.kind, &types)?;
        rec.event_types = types;
    }
    if let Some(token) = patch.hec_token {
        validate_hec_token(&token)?;
        rec.hec_token = Some(token);
    }
    if let Some(hec) = rec.hec.as_mut() {
        if let Some(index) = patch.hec_index {
            if index.is_empty() {
                hec.index = None;
            } else {
                validate_hec_index(&index)?;
                hec.index = Some(index);
            }
        }
        if let Some(ack) = patch.hec_ack {
            hec.ack = ack;
        }
    }
    let mut generated = None;
    if patch.rotate_secret {
        let value = match patch.secret {
            Some(s) => WebhookSecret::parse(&s)?.expose(),
            None => {
                let s = WebhookSecret::generate().expose();
                generated = Some(s.clone());
                s
            }
        };
        // Only the current secret keeps signing through the grace, beside the new one: a
        // secret replaced earlier (even within its grace) is dropped, so a message never carries
        // more than two signatures.
        rec.secrets.retain(|s| s.expires_at.is_none());
        for s in &mut rec.secrets {
            s.expires_at = Some(now.saturating_add(SECRET_GRACE_SECS));
        }
        let n = rec.secrets.iter().map(|s| s.n).max().unwrap_or(0) + 1;
        rec.secrets.push(SigningSecret {
            n,
            value,
            created_at: now,
            expires_at: None,
        });
    }
    match patch.enabled {
        Some(true) => {
            rec.status = IntegrationStatus::Enabled;
            rec.disabled_reason = None;
            rec.failing_since = None;
        }
        Some(false) => {
            rec.status = IntegrationStatus::Disabled;
            rec.disabled_reason = Some(DisabledReason::Manual);
        }
        None => {}
    }
    rec.updated_at = now;
    Ok(generated)
}

/// Registration-time check of a host name's current addresses: refuses a name that resolves
/// to a blocked address (an early 422; the connect-time guard still decides every attempt).
/// A name that does not resolve now is accepted (it may resolve later, on an isolated
/// network).
///
/// # Errors
/// [`IntegrationError::Resolves`].
pub async fn check_resolution(
    client: &super::client::DeliveryClient,
    url: &str,
) -> Result<(), IntegrationError> {
    let url = client.policy().validate(url)?;
    if url.ip_literal().is_some() {
        return Ok(());
    }
    // A resolver that does not answer (an isolated network) must not hold the request.
    let answer = tokio::time::timeout(PREFLIGHT_TIMEOUT, client.preflight(&url)).await;
    match answer {
        Ok(Err(super::client::ConnectError::Blocked(b))) => Err(IntegrationError::Resolves {
            host: url.url().host_str().unwrap_or_default().to_string(),
            detail: b.to_string(),
        }),
        _ => Ok(()),
    }
}
