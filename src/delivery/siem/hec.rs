//! Splunk HTTP Event Collector (HEC): event envelopes, batches and indexer acknowledgement.
//!
//! Envelope (Splunk "Format events for HTTP Event Collector"): `time` (epoch seconds with
//! millisecond fraction), `host`, `source`, `sourcetype`, `index` (omitted when unset),
//! `event` (the payload) and `fields` (indexed fields). A batch is envelopes concatenated,
//! newline-separated, in one `POST` to `/services/collector/event` with
//! `Authorization: Splunk <token>`.
//!
//! Indexer acknowledgement: with a channel (`X-Splunk-Request-Channel: <uuid>`), the event
//! answer is `{"text":"Success","code":0,"ackId":N}`; `POST /services/collector/ack` with
//! `{"acks":[N,…]}` answers `{"acks":{"N":true|false,…}}`. A batch counts as delivered only
//! when its ack is `true`; a batch whose ack stays `false` past the caller's deadline is
//! resent (same events: Splunk deduplicates nothing, so the caller bounds this).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use super::super::client::{AttemptOutcome, DeliveryClient, OutboundRequest};
use super::super::url::EndpointUrl;
use crate::audit::AuditRecord;

/// Most envelopes in one batch.
pub const MAX_BATCH_EVENTS: usize = 500;
/// Largest batch body, in bytes (Splunk's default `max_content_length` is 800 MB; receivers
/// behind proxies are far smaller).
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
/// Most ack ids asked about in one poll (keeps the answer inside the 1 KiB excerpt).
pub const MAX_ACKS_PER_POLL: usize = 40;

/// One HEC event envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HecEvent {
    /// Epoch seconds, millisecond precision.
    pub time: f64,
    /// The appliance's host name.
    pub host: String,
    /// `evidentia`.
    pub source: String,
    /// `evidentia:audit`, `evidentia:event`, `evidentia:ocsf`.
    pub sourcetype: String,
    /// Target index; Splunk uses the token's default when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The payload.
    pub event: Value,
    /// Indexed fields (`tenant`, `action`, `status`).
    pub fields: BTreeMap<String, Value>,
}

impl HecEvent {
    /// The envelope of an audit record (`sourcetype` `evidentia:audit`).
    pub fn from_audit(record: &AuditRecord, host: &str, index: Option<&str>) -> Self {
        let time = time::OffsetDateTime::parse(
            &record.time,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0)
        .unwrap_or(0.0);
        let mut fields = BTreeMap::new();
        fields.insert("tenant".into(), Value::from(record.tenant.clone()));
        fields.insert("action".into(), Value::from(record.action.clone()));
        fields.insert("status".into(), Value::from(record.status));
        Self {
            time,
            host: host.to_string(),
            source: "evidentia".into(),
            sourcetype: "evidentia:audit".into(),
            index: index.map(str::to_string),
            event: serde_json::to_value(record).unwrap_or(Value::Null),
            fields,
        }
    }
}

/// The batch is full: send it and start another.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the batch is full")]
pub struct BatchFull;

/// Envelopes accumulated for one `POST`.
#[derive(Debug, Clone, Default)]
pub struct HecBatch {
    body: Vec<u8>,
    events: usize,
}

impl HecBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an envelope unless that would pass [`MAX_BATCH_EVENTS`] or [`MAX_BATCH_BYTES`]
    /// (a single envelope larger than the byte cap is still accepted into an empty batch).
    ///
    /// # Errors
    /// [`BatchFull`].
    pub fn push(&mut self, event: &HecEvent) -> Result<(), BatchFull> {
        self.push_raw(event)
    }

    /// [`push`](Self::push) for an envelope already built as JSON.
    ///
    /// # Errors
    /// [`BatchFull`].
    pub fn push_raw(&mut self, event: &impl Serialize) -> Result<(), BatchFull> {
        let line = serde_json::to_vec(event).map_err(|_| BatchFull)?;
        if self.events >= MAX_BATCH_EVENTS
            || (self.events > 0 && self.body.len() + line.len() + 1 > MAX_BATCH_BYTES)
        {
            return Err(BatchFull);
        }
        if self.events > 0 {
            self.body.push(b'\n');
        }
        self.body.extend_from_slice(&line);
        self.events += 1;
        Ok(())
    }

    /// Envelopes in the batch.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The request body.
    pub fn into_body(self) -> Bytes {
        Bytes::from(self.body)
    }
}

/// Why a HEC answer or token was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HecError {
    /// The token is empty, too long or holds characters a header cannot carry.
    #[error("a HEC token is 1–128 visible ASCII characters")]
    Token,
    /// The answer is not HEC JSON.
    #[error("the HEC answer is not valid JSON of the expected shape")]
    Answer,
    /// HEC answered with a non-zero `code`.
    #[error("HEC refused the batch: code {code}: {text}")]
    Refused {
        /// HEC status code (e.g. 4 invalid token, 6 invalid data format).
        code: i64,
        /// HEC's text.
        text: String,
    },
}

/// A HEC token (sealed at rest like every secret).
#[derive(Clone, PartialEq, Eq)]
pub struct HecToken(String);

impl std::fmt::Debug for HecToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HecToken(…)")
    }
}

impl HecToken {
    /// Validates a token.
    ///
    /// # Errors
    /// [`HecError::Token`].
    pub fn parse(s: &str) -> Result<Self, HecError> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HecError::Token);
        }
        Ok(Self(s.to_string()))
    }

    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A new request channel for indexer acknowledgement (a random UUID, RFC 9562 version 4).
pub fn new_channel() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `Authorization: Splunk <token>`, `Content-Type` and, with a channel,
/// `X-Splunk-Request-Channel`, followed by the integration's custom headers.
pub fn headers(
    token: &HecToken,
    channel: Option<&str>,
    custom: &[(HeaderName, HeaderValue)],
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Splunk {}", token.0)) {
        out.push((http::header::AUTHORIZATION, v));
    }
    out.push((
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    if let Some(ch) = channel
        && let Ok(v) = HeaderValue::from_str(ch)
    {
        out.push((HeaderName::from_static("x-splunk-request-channel"), v));
    }
    out.extend(custom.iter().cloned());
    out
}

/// Parses the event endpoint's answer: the ack id when acknowledgement is on.
///
/// # Errors
/// [`HecError::Answer`], [`HecError::Refused`].
pub fn parse_event_answer(body: &str) -> Result<Option<u64>, HecError> {
    let v: Value = serde_json::from_str(body).map_err(|_| HecError::Answer)?;
    let code = v
        .get("code")
        .and_then(Value::as_i64)
        .ok_or(HecError::Answer)?;
    if code != 0 {
        return Err(HecError::Refused {
            code,
            text: v
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
        });
    }
    Ok(v.get("ackId").and_then(Value::as_u64))
}

/// The body of an ack poll.
pub fn ack_poll_body(ids: &[u64]) -> Bytes {
    Bytes::from(serde_json::json!({ "acks": ids }).to_string())
}

/// Parses an ack poll answer: id → indexed.
///
/// # Errors
/// [`HecError::Answer`].
pub fn parse_ack_answer(body: &str) -> Result<BTreeMap<u64, bool>, HecError> {
    let v: Value = serde_json::from_str(body).map_err(|_| HecError::Answer)?;
    let acks = v
        .get("acks")
        .and_then(Value::as_object)
        .ok_or(HecError::Answer)?;
    let mut out = BTreeMap::new();
    for (k, v) in acks {
        let id = k.parse().map_err(|_| HecError::Answer)?;
        out.insert(id, v.as_bool().ok_or(HecError::Answer)?);
    }
    Ok(out)
}

/// The result of sending a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSent {
    /// The HTTP attempt as the attempts log records it.
    pub outcome: AttemptOutcome,
    /// The ack id to poll, when the answer carried one.
    pub ack_id: Option<u64>,
    /// HEC's own refusal, when it answered JSON with a non-zero code.
    pub refused: Option<HecError>,
}

/// Sends a batch to the event endpoint (`url`, normally `…/services/collector/event`).
pub async fn send_batch(
    client: &DeliveryClient,
    url: &EndpointUrl,
    token: &HecToken,
    channel: Option<&str>,
    custom: &[(HeaderName, HeaderValue)],
    batch: HecBatch,
) -> BatchSent {
    let outcome = client
        .attempt(&OutboundRequest {
            url: url.as_str().to_string(),
            headers: headers(token, channel, custom),
            body: batch.into_body(),
        })
        .await;
    let (ack_id, refused) = if outcome.status.is_some() {
        match parse_event_answer(&outcome.excerpt) {
            Ok(id) => (id, None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    BatchSent {
        outcome,
        ack_id,
        refused,
    }
}

/// Polls `/services/collector/ack` (next to `event_url`) for up to [`MAX_ACKS_PER_POLL`] ids.
///
/// # Errors
/// The attempt's outcome when it failed, or [`HecError`] inside `Ok(Err)` when the answer did
/// not parse.
pub async fn poll_acks(
    client: &DeliveryClient,
    event_url: &EndpointUrl,
    token: &HecToken,
    channel: &str,
    ids: &[u64],
) -> Result<Result<BTreeMap<u64, bool>, HecError>, AttemptOutcome> {
    let ids = &ids[..ids.len().min(MAX_ACKS_PER_POLL)];
    let url = event_url.with_path("/services/collector/ack");
    let outcome = client
        .attempt(&OutboundRequest {
            url: url.as_str().to_string(),
            headers: headers(token, Some(channel), &[]),
            body: ack_poll_body(ids),
        })
        .await;
    if !outcome.is_success() {
        return Err(outcome);
    }
    Ok(parse_ack_answer(&outcome.excerpt))
}
