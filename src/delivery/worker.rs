//! The delivery worker: drains the outbox off the request path, in rounds.
//!
//! A round takes the waiting deliveries due now and each enabled integration's fresh ones
//! from its cursor (at most `delivery.batch` in all, a fair share per integration), groups
//! them by integration and serves up to `delivery.concurrency` integrations at once; within one
//! integration deliveries go out one after another (a `splunk-hec` integration sends them as
//! one HEC batch). For each delivery the endpoint's circuit breaker is asked first (an open
//! breaker holds the delivery without an attempt); the message is built from the log entry or
//! checkpoint it references, signed (Standard Webhooks), sent through the guarded client, and
//! the outcome goes to the breaker, the endpoint's health and the retry schedule. The round's
//! decisions, health changes and their audit records are written in one commit. A crash before
//! that commit leaves the deliveries due: they go out again with the same `webhook-id`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use http::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::IntegrationKind;
use super::breaker::{Admission, Breaker, BreakerConfig, BreakerState, Transition};
use super::client::{AttemptOutcome, DeliveryClient, ErrorClass, OutboundRequest};
use super::integration::{
    Attempt, DeliveryRecord, DisabledReason, EventType, IntegrationRecord, IntegrationStatus,
    Payload, webhook_message,
};
use super::schedule::{EndpointHealth, HealthChange, Next, RetrySchedule};
use super::siem::hec::{self, HecBatch, HecEvent, HecToken};
use super::siem::ocsf::{self, Product};
use super::sign::signature_headers;
use crate::audit::{APPLIANCE_SCOPE, AuditRecord};
use crate::clock::{SharedClock, rfc3339};
use crate::store::{DeliveryUpdate, HealthUpdate, Store, StoreError};

/// Settings of the worker (from `[delivery]`).
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Due deliveries taken per round.
    pub batch: usize,
    /// Integrations served at once.
    pub concurrency: usize,
    /// HEC acknowledgement polls before a batch counts as failed.
    pub hec_ack_polls: u32,
    /// Pause between HEC acknowledgement polls.
    pub hec_ack_interval: Duration,
    /// The host name HEC envelopes carry.
    pub host: String,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            batch: 256,
            concurrency: 16,
            hec_ack_polls: 10,
            hec_ack_interval: Duration::from_secs(1),
            host: "evidentia".into(),
        }
    }
}

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Attempts made (a HEC batch counts once per delivery in it).
    pub attempted: usize,
    /// Of those, accepted.
    pub delivered: usize,
    /// Held back by an open breaker.
    pub held: usize,
    /// Deliveries taken from the outbox (fresh and due).
    pub taken: usize,
    /// Whether more were due than the round took (the next round follows at once).
    pub more: bool,
}

/// The worker: the guarded client, the schedule, and each endpoint's breaker and health.
#[derive(Debug)]
pub struct Deliverer {
    client: DeliveryClient,
    schedule: RetrySchedule,
    breaker_config: BreakerConfig,
    breakers: Mutex<HashMap<String, Breaker>>,
    options: WorkerOptions,
    product: Product,
    wake: tokio::sync::Notify,
    metrics: Arc<crate::metrics::Metrics>,
    /// Each integration's cursor as the last committed round left it.
    cursors: Mutex<HashMap<(String, String), u64>>,
}

/// One integration's share of a round.
struct Group {
    integration: IntegrationRecord,
    deliveries: Vec<DeliveryRecord>,
}

/// What serving one group produced.
#[derive(Default)]
struct GroupResult {
    updates: Vec<DeliveryUpdate>,
    health: Option<HealthUpdate>,
    audit: Vec<AuditRecord>,
    report: RoundReport,
}

impl Deliverer {
    /// A worker sending through `client`.
    pub fn new(
        client: DeliveryClient,
        options: WorkerOptions,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            client,
            schedule: RetrySchedule::default(),
            breaker_config: BreakerConfig::default(),
            breakers: Mutex::new(HashMap::new()),
            options,
            product: Product::default(),
            wake: tokio::sync::Notify::new(),
            metrics,
            cursors: Mutex::new(HashMap::new()),
        }
    }

    /// The guarded client (its URL policy decides registrations too).
    pub fn client(&self) -> &DeliveryClient {
        &self.client
    }

    /// Asks the running worker to look for due deliveries now (a test send, a redeliver).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The breaker state of integration `id` (closed when it has none yet).
    pub fn breaker_state(&self, id: &str) -> BreakerState {
        self.with_breaker(id, |b| b.state())
    }

    fn with_breaker<T>(&self, id: &str, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut map = match self.breakers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let b = map
            .entry(id.to_string())
            .or_insert_with(|| Breaker::new(self.breaker_config));
        f(b)
    }

    /// Forgets the breaker and cursor of a deleted integration.
    pub fn forget(&self, id: &str) {
        let mut map = match self.breakers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(id);
        let mut cursors = match self.cursors.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        cursors.retain(|(_, i), _| i != id);
    }

    /// The cursor of an integration: remembered since the last round, else the stored one.
    fn cursor(&self, store: &Store, tenant: &str, id: &str) -> Result<u64, StoreError> {
        let key = (tenant.to_string(), id.to_string());
        let known = match self.cursors.lock() {
            Ok(m) => m.get(&key).copied(),
            Err(p) => p.into_inner().get(&key).copied(),
        };
        match known {
            Some(c) => Ok(c),
            None => store.delivery_cursor(tenant, id),
        }
    }

    /// Starts [`run`](Self::run) on a thread of its own, named `evidentia-delivery`, with its
    /// own single-threaded runtime, at CPU niceness `nice` (0–19: above 0 the request workers
    /// and the store writer go first when the cores are busy, so delivery never slows
    /// ingestion; deliveries catch up when the load drops). The thread ends when `stop`
    /// changes.
    ///
    /// # Errors
    /// The thread or its runtime could not be created.
    pub fn spawn(
        self: Arc<Self>,
        store: Store,
        clock: SharedClock,
        poll: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
        nice: i32,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("evidentia-delivery".into())
            .spawn(move || {
                // Linux: setpriority(PRIO_PROCESS, 0) sets the calling thread's niceness.
                if nice != 0
                    && let Err(e) = rustix::process::setpriority_process(None, nice)
                {
                    tracing::warn!(error = %e, nice, "cannot lower the delivery thread's priority");
                }
                runtime.block_on(self.run(store, clock, poll, stop));
            })
    }

    /// Runs until `stop` changes (abandoning a round in flight): a round whenever the writer enqueued deliveries, the API
    /// woke it, or `poll` passed; rounds follow each other while deliveries remain due.
    pub async fn run(
        self: Arc<Self>,
        store: Store,
        clock: SharedClock,
        poll: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            // A stop abandons the round in flight: its deliveries stay due and go out again
            // after the restart, with the same webhook-id.
            let result = tokio::select! {
                _ = stop.changed() => return,
                r = self.round(&store, &clock) => r,
            };
            let busy = match result {
                Ok(r) => r.more,
                Err(e) => {
                    tracing::error!(error = %e, "delivery round failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = self.wake.notified() => {}
                () = store.deliveries_enqueued() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One round at the clock's current time (tests drive the worker with this and a
    /// [`crate::clock::ManualClock`]).
    ///
    /// # Errors
    /// [`StoreError`] reading the outbox or writing the outcomes.
    pub async fn round(
        &self,
        store: &Store,
        clock: &SharedClock,
    ) -> Result<RoundReport, StoreError> {
        let now = clock.now_unix();
        let batch = self.options.batch;
        // Waiting deliveries now due (retries, held, redelivered), then each enabled
        // integration's fresh ones from its cursor, a fair share each.
        let due = store.due_deliveries(now, batch)?;
        let mut taken = due.len();
        let mut more = taken == batch;
        let mut groups: BTreeMap<(String, String), Vec<DeliveryRecord>> = BTreeMap::new();
        for d in due {
            groups
                .entry((d.tenant.clone(), d.integration.clone()))
                .or_default()
                .push(d);
        }
        let enabled = store.enabled_integrations();
        let share = (batch / enabled.len().max(1)).max(1);
        let mut advanced: HashMap<(String, String), u64> = HashMap::new();
        for (tenant, id) in enabled {
            let room = batch.saturating_sub(taken).min(share);
            if room == 0 {
                more = true;
                break;
            }
            let from = self.cursor(store, &tenant, &id)?;
            let fresh = store.fresh_deliveries(&tenant, &id, from, room)?;
            let Some(last) = fresh.last().map(|d| d.seq) else {
                continue;
            };
            taken += fresh.len();
            more |= fresh.len() == room;
            advanced.insert((tenant.clone(), id.clone()), last + 1);
            groups.entry((tenant, id)).or_default().extend(fresh);
        }
        if groups.is_empty() {
            return Ok(RoundReport::default());
        }
        let mut work = Vec::with_capacity(groups.len());
        let mut cursors = Vec::new();
        for ((tenant, id), deliveries) in groups {
            match store.get_integration(&tenant, &id)? {
                Some(integration) if integration.status == IntegrationStatus::Enabled => {
                    if let Some(c) = advanced.remove(&(tenant.clone(), id.clone())) {
                        cursors.push((tenant, id, c));
                    }
                    work.push(Group {
                        integration,
                        deliveries,
                    });
                }
                // Deleted or disabled after the scan: nothing is attempted and its cursor
                // stays (a disabled integration's fresh deliveries wait for it).
                _ => {}
            }
        }
        let results: Vec<GroupResult> = futures_util::stream::iter(work)
            .map(|g| self.serve(store, clock, g))
            .buffer_unordered(self.options.concurrency)
            .collect()
            .await;
        let mut report = RoundReport {
            taken,
            more,
            ..RoundReport::default()
        };
        let (mut updates, mut health, mut audit) = (Vec::new(), Vec::new(), Vec::new());
        for r in results {
            report.attempted += r.report.attempted;
            report.delivered += r.report.delivered;
            report.held += r.report.held;
            updates.extend(r.updates);
            health.extend(r.health);
            audit.extend(r.audit);
        }
        store
            .record_deliveries(updates, cursors.clone(), health, audit)
            .await?;
        let mut known = match self.cursors.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        for (tenant, id, c) in cursors {
            known.insert((tenant, id), c);
        }
        Ok(report)
    }

    async fn serve(&self, store: &Store, clock: &SharedClock, g: Group) -> GroupResult {
        let mut out = GroupResult::default();
        let mut health = EndpointHealth {
            failing_since: g.integration.failing_since,
        };
        let mut disable: Option<DisabledReason> = None;
        let mut touched = false;
        let messages: Vec<(DeliveryRecord, Value)> = g
            .deliveries
            .into_iter()
            .map(|d| {
                let m = self.message(store, &g.integration, &d);
                (d, m)
            })
            .collect();
        let rounds: Vec<Vec<(DeliveryRecord, Value)>> = match g.integration.kind {
            IntegrationKind::SplunkHec => hec_batches(messages),
            _ => messages.into_iter().map(|m| vec![m]).collect(),
        };
        for part in rounds {
            let now = clock.now_unix();
            if disable.is_some() {
                break;
            }
            let (admission, t) = self.with_breaker(&g.integration.id, |b| b.admit(now));
            out.audit
                .extend(t.map(|t| breaker_audit(&g.integration, &t)));
            if let Admission::Held { until } = admission {
                for (d, _) in part {
                    out.report.held += 1;
                    self.metrics.observe_delivery("held", 1);
                    out.updates.push(DeliveryUpdate::Held {
                        tenant: d.tenant,
                        integration: d.integration,
                        seq: d.seq,
                        until,
                    });
                }
                continue;
            }
            let outcome = match g.integration.kind {
                IntegrationKind::SplunkHec => self.send_hec(&g.integration, &part).await,
                _ => match part.first() {
                    Some((d, m)) => {
                        let id = store.delivery_id(d);
                        self.send_signed(&g.integration, &id, m, now).await
                    }
                    None => continue,
                },
            };
            let ended = clock.now_unix();
            let success = outcome.is_success();
            self.metrics.observe_delivery(
                match outcome.error {
                    None if success => "delivered",
                    None => "http_status",
                    Some(e) => e.as_str(),
                },
                part.len() as u64,
            );
            touched = true;
            let t = self.with_breaker(&g.integration.id, |b| b.record(ended, success));
            out.audit
                .extend(t.map(|t| breaker_audit(&g.integration, &t)));
            if let Some(HealthChange::Disable { failing_since }) = health.record(success, ended) {
                disable = Some(DisabledReason::Failing);
                out.audit.push(disabled_audit(
                    &g.integration,
                    ended,
                    &format!(
                        "no delivery accepted since {}: disabled after 5 days of failures",
                        rfc3339(failing_since)
                    ),
                ));
            }
            for (d, _) in part {
                out.report.attempted += 1;
                out.report.delivered += usize::from(success);
                let next = {
                    let mut rng = rand::rng();
                    self.schedule
                        .after_attempt(d.round_attempts + 1, &outcome, ended, &mut rng)
                };
                if next == Next::DisableIntegration && disable.is_none() {
                    disable = Some(DisabledReason::Gone);
                    out.audit.push(disabled_audit(
                        &g.integration,
                        ended,
                        "the endpoint answered 410 Gone: disabled at once",
                    ));
                }
                out.updates.push(DeliveryUpdate::Attempted {
                    tenant: d.tenant,
                    integration: d.integration,
                    seq: d.seq,
                    attempt: Attempt::from_outcome(&outcome, ended),
                    next,
                });
            }
        }
        if touched {
            out.health = Some(HealthUpdate {
                tenant: g.integration.tenant.clone(),
                integration: g.integration.id.clone(),
                failing_since: health.failing_since,
                disable,
                at: clock.now_unix(),
            });
        }
        out
    }

    /// The payload of a delivery for its integration's kind.
    fn message(&self, store: &Store, integration: &IntegrationRecord, d: &DeliveryRecord) -> Value {
        let (origin, entry) = match &d.payload {
            Payload::Entry { log, index } => {
                let origin = store.origin(&d.tenant, log);
                let entry = store.log_entry(&origin, *index).ok();
                (origin, entry)
            }
            Payload::Checkpoint { log, .. } => (store.origin(&d.tenant, log), None),
            Payload::Test => (String::new(), None),
        };
        let audit_record = match (&d.event_type, &entry) {
            (EventType::AuditRecorded, Some(e)) => serde_json::from_slice::<AuditRecord>(e).ok(),
            _ => None,
        };
        match integration.kind {
            IntegrationKind::Webhook => webhook_message(d, entry.as_deref(), &origin),
            IntegrationKind::SiemOcsf => match &audit_record {
                Some(r) => ocsf::from_audit(r, &self.product)
                    .unwrap_or_else(|_| webhook_message(d, entry.as_deref(), &origin)),
                None => ocsf_base_event(
                    &self.product,
                    d,
                    webhook_message(d, entry.as_deref(), &origin),
                ),
            },
            IntegrationKind::SplunkHec => {
                let index = integration.hec.as_ref().and_then(|h| h.index.as_deref());
                let ev = match &audit_record {
                    Some(r) => HecEvent::from_audit(r, &self.options.host, index),
                    None => {
                        let msg = webhook_message(d, entry.as_deref(), &origin);
                        let mut fields = BTreeMap::new();
                        fields.insert("tenant".to_string(), Value::from(d.tenant.clone()));
                        fields.insert("type".to_string(), Value::from(d.event_type.as_str()));
                        HecEvent {
                            time: d.created_at as f64,
                            host: self.options.host.clone(),
                            source: "evidentia".into(),
                            sourcetype: format!("evidentia:{}", d.event_type.as_str()),
                            index: index.map(str::to_string),
                            event: msg,
                            fields,
                        }
                    }
                };
                serde_json::to_value(ev).unwrap_or_else(|_| json!({}))
            }
        }
    }

    /// One signed attempt; `webhook_id` is the delivery's `dlv_…` id, stable across attempts
    /// and redeliveries.
    async fn send_signed(
        &self,
        integration: &IntegrationRecord,
        webhook_id: &str,
        message: &Value,
        now: i64,
    ) -> AttemptOutcome {
        let body = bytes::Bytes::from(serde_json::to_vec(message).unwrap_or_default());
        let secrets = match integration.signing_secrets(now) {
            Ok(s) if !s.is_empty() => s,
            _ => {
                return failed(
                    ErrorClass::InvalidUrl,
                    "the integration has no usable signing secret",
                );
            }
        };
        let refs: Vec<&super::sign::WebhookSecret> = secrets.iter().collect();
        let mut headers = signature_headers(&refs, webhook_id, now, &body);
        headers.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        headers.extend(custom_headers(integration));
        self.client
            .attempt(&OutboundRequest {
                url: integration.url.clone(),
                headers,
                body,
            })
            .await
    }

    async fn send_hec(
        &self,
        integration: &IntegrationRecord,
        part: &[(DeliveryRecord, Value)],
    ) -> AttemptOutcome {
        let Some(token) = integration
            .hec_token
            .as_deref()
            .and_then(|t| HecToken::parse(t).ok())
        else {
            return failed(ErrorClass::InvalidUrl, "the integration has no HEC token");
        };
        let ack = integration.hec.as_ref().is_some_and(|h| h.ack);
        let channel = ack.then(hec::new_channel);
        let mut batch = HecBatch::new();
        for (_, m) in part {
            // `hec_batches` cut the part to what one batch holds.
            if batch.push_raw(m).is_err() {
                return failed(ErrorClass::Protocol, "an envelope does not fit a HEC batch");
            }
        }
        let Ok(url) = self.client.policy().validate(&integration.url) else {
            return failed(
                ErrorClass::InvalidUrl,
                "the stored URL no longer passes the rules",
            );
        };
        let custom = custom_headers(integration);
        let sent = hec::send_batch(
            &self.client,
            &url,
            &token,
            channel.as_deref(),
            &custom,
            batch,
        )
        .await;
        let mut outcome = sent.outcome;
        if let Some(refused) = sent.refused
            && outcome.is_success()
        {
            outcome.error = Some(ErrorClass::HttpStatus);
            outcome.detail = Some(refused.to_string());
            return outcome;
        }
        if !outcome.is_success() {
            return outcome;
        }
        let (Some(channel), true) = (channel, ack) else {
            return outcome;
        };
        let Some(ack_id) = sent.ack_id else {
            outcome.error = Some(ErrorClass::Protocol);
            outcome.detail = Some("acknowledgement is on but the answer carried no ackId".into());
            return outcome;
        };
        for _ in 0..self.options.hec_ack_polls {
            tokio::time::sleep(self.options.hec_ack_interval).await;
            match hec::poll_acks(&self.client, &url, &token, &channel, &[ack_id]).await {
                Ok(Ok(acks)) if acks.get(&ack_id) == Some(&true) => return outcome,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    outcome.error = Some(ErrorClass::Protocol);
                    outcome.detail = Some(format!("acknowledgement poll: {e}"));
                    return outcome;
                }
                Err(failed_poll) => return failed_poll,
            }
        }
        outcome.error = Some(ErrorClass::Timeout);
        outcome.detail = Some(format!(
            "indexer acknowledgement {ack_id} not received after {} polls",
            self.options.hec_ack_polls
        ));
        outcome
    }
}

/// Cuts a HEC integration's messages into batches that each fit one `POST`
/// ([`hec::MAX_BATCH_EVENTS`], [`hec::MAX_BATCH_BYTES`]; one envelope larger than the byte
/// cap goes alone).
fn hec_batches(messages: Vec<(DeliveryRecord, Value)>) -> Vec<Vec<(DeliveryRecord, Value)>> {
    let mut out: Vec<Vec<(DeliveryRecord, Value)>> = Vec::new();
    let mut current: Vec<(DeliveryRecord, Value)> = Vec::new();
    let mut bytes = 0usize;
    for m in messages {
        let len = serde_json::to_vec(&m.1).map_or(0, |v| v.len()) + 1;
        if !current.is_empty()
            && (current.len() == hec::MAX_BATCH_EVENTS || bytes + len > hec::MAX_BATCH_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += len;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn custom_headers(integration: &IntegrationRecord) -> Vec<(HeaderName, HeaderValue)> {
    integration
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

fn failed(class: ErrorClass, detail: &str) -> AttemptOutcome {
    AttemptOutcome {
        status: None,
        latency_ms: 0,
        error: Some(class),
        detail: Some(detail.to_string()),
        excerpt: String::new(),
        retry_after: None,
        peer: None,
    }
}

/// An OCSF Base Event (class 0) for what has no OCSF class of its own (checkpoints, tests):
/// the Evidentia message in `unmapped`.
fn ocsf_base_event(product: &Product, d: &DeliveryRecord, message: Value) -> Value {
    json!({
        "category_uid": 0,
        "class_uid": 0,
        "class_name": "Base Event",
        "activity_id": 99,
        "activity_name": d.event_type.as_str(),
        "type_uid": 99,
        "severity_id": 1,
        "status_id": 1,
        "time": d.created_at.saturating_mul(1000),
        "message": d.event_type.as_str(),
        "metadata": {
            "product": {
                "name": product.name,
                "vendor_name": product.vendor_name,
                "version": product.version,
            },
            "version": ocsf::OCSF_VERSION,
            "tenant_uid": d.tenant,
            "uid": format!("{}:{}", d.tenant, d.seq),
        },
        "unmapped": message,
    })
}

fn state_audit(
    integration: &IntegrationRecord,
    at: i64,
    action: &str,
    detail: String,
) -> AuditRecord {
    AuditRecord {
        time: rfc3339(at),
        tenant: if integration.tenant.is_empty() {
            APPLIANCE_SCOPE.into()
        } else {
            integration.tenant.clone()
        },
        actor: "system:delivery".into(),
        action: action.into(),
        method: String::new(),
        route: String::new(),
        status: 0,
        peer: String::new(),
        request_id: String::new(),
        resource: Some(integration.id.clone()),
        detail: Some(detail),
        ..Default::default()
    }
}

fn breaker_audit(integration: &IntegrationRecord, t: &Transition) -> AuditRecord {
    state_audit(
        integration,
        t.at,
        &format!("integration.breaker.{}", t.to.as_str()),
        format!(
            "circuit breaker {} -> {} ({} failures in {} attempts within the window)",
            t.from.as_str(),
            t.to.as_str(),
            t.failures,
            t.attempts
        ),
    )
}

fn disabled_audit(integration: &IntegrationRecord, at: i64, why: &str) -> AuditRecord {
    state_audit(integration, at, "integration.disabled", why.to_string())
}

/// Errors building the worker from configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `delivery.ca_file` could not be read or holds no certificate.
    #[error("delivery.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The TLS client configuration was refused.
    #[error(transparent)]
    Client(#[from] super::client::ClientError),
}

/// Builds the worker from `[delivery]`: the URL policy (plain-`http` hosts, allowed
/// addresses), trust anchors (the system store plus `ca_file`), timeouts, and `resolver`
/// (the system resolver in production; tests inject one).
///
/// # Errors
/// [`SetupError`].
pub fn from_config(
    config: &crate::config::Config,
    resolver: Arc<dyn super::client::Resolve>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Deliverer, SetupError> {
    use super::client::{ClientOptions, TlsRoots};
    use super::guard::AddressGuard;
    use super::url::UrlPolicy;
    let d = &config.delivery;
    let allowed: Vec<std::net::IpAddr> = d
        .allow_addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let policy =
        UrlPolicy::new(AddressGuard::new().allow(allowed)).allow_http_hosts(&d.allow_http_hosts);
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &d.ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let bad = |reason: String| SetupError::CaFile {
            path: path.clone(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(bad("no usable certificate".into()));
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trust anchors (system store empty, no delivery.ca_file): https deliveries will fail"
        );
    }
    let client = DeliveryClient::new(
        policy,
        resolver,
        TlsRoots::Custom(roots),
        ClientOptions {
            connect_timeout: Duration::from_secs(d.connect_timeout_secs),
            total_timeout: Duration::from_secs(d.timeout_secs),
            ..ClientOptions::default()
        },
    )?;
    Ok(Deliverer::new(
        client,
        WorkerOptions {
            batch: d.batch,
            concurrency: d.concurrency,
            hec_ack_polls: d.hec_ack_polls,
            hec_ack_interval: Duration::from_millis(d.hec_ack_interval_ms),
            host: config.server.name.clone(),
        },
        metrics,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::integration::DeliveryStatus;

    fn delivery(seq: u64) -> DeliveryRecord {
        DeliveryRecord {
            seq,
            tail: 1,
            tenant: "acme".into(),
            integration: "int_1".into(),
            event_type: EventType::AuditRecorded,
            payload: Payload::Test,
            created_at: 0,
            status: DeliveryStatus::Pending,
            next_at: None,
            round_attempts: 0,
            attempts: Vec::new(),
        }
    }

    #[test]
    fn hec_batches_respect_the_event_and_byte_caps_and_lose_nothing() {
        let small: Vec<_> = (0..1200)
            .map(|i| (delivery(i), json!({"event": i})))
            .collect();
        let batches = hec_batches(small);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![hec::MAX_BATCH_EVENTS, hec::MAX_BATCH_EVENTS, 200]
        );
        let big = "x".repeat(200 * 1024);
        let large: Vec<_> = (0..5)
            .map(|i| (delivery(i), json!({"event": big})))
            .collect();
        let batches = hec_batches(large);
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 5);
        assert!(batches.iter().all(|b| b.len() <= 2), "512 KiB holds two");
        let huge = "x".repeat(600 * 1024);
        let alone = hec_batches(vec![
            (delivery(0), json!({"event": huge})),
            (delivery(1), json!({"event": 1})),
        ]);
        assert_eq!(alone.len(), 2, "an oversize envelope goes alone");
    }
}
