//! Webhook events (schema 2): one postcard row per event and the raw body once, both keyed
//! `(tenant, seq)` so appends land at the end of the tenant's range; a fixed-size replay index
//! `SHA-256 replay key → (seq, received_at, tail)`; every stored event notarised as a leaf of
//! the tenant's `evidence` log in the same commit. Listings and retention walk sequence
//! ranges: no per-tenant or expiry index tables.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::audit::{audit_template, log_origin, put_audit, put_audit_prepared};
use super::codec::{Hole, JcsTemplate, open, seal, set_trailer};
use super::ids::{self, IdKey};
use super::log::log_append;
use super::usage::UsageMetric;
use super::*;
use crate::audit::AuditRecord;
use crate::ingest::pipeline::{Accepted, IngestStore, NewEvent, ReplayKey};
use crate::ingest::{EventRecord, Provider};

/// Trailer value of an event that has no evidence-log leaf (migrated from schema 1).
pub(crate) const NO_LEAF: u64 = u64::MAX;

/// The stored form of an [`EventRecord`]; the trailer is its evidence-log leaf index.
#[derive(Serialize, Deserialize)]
pub(crate) struct EventRow {
    pub(crate) tail: u64,
    pub(crate) legacy_id: Option<String>,
    pub(crate) source: String,
    pub(crate) provider: Provider,
    pub(crate) scheme: String,
    pub(crate) delivery_id: Option<String>,
    pub(crate) signed_timestamp: Option<i64>,
    pub(crate) sha256: [u8; 32],
    pub(crate) size: u64,
    pub(crate) content_type: String,
    pub(crate) received_at: i64,
    pub(crate) job_id: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) insights: u64,
    pub(crate) first_insight: u64,
    pub(crate) body_expires_at: i64,
    pub(crate) body_purged: bool,
    pub(crate) replay: [u8; 32],
}

impl EventRow {
    pub(crate) fn id(&self, key: &IdKey, tenant: &str, seq: u64) -> String {
        match &self.legacy_id {
            Some(id) => id.clone(),
            None => ids::encode(key, "evt", tenant, seq, self.tail),
        }
    }

    pub(crate) fn record(&self, key: &IdKey, tenant: &str, seq: u64) -> EventRecord {
        EventRecord {
            id: self.id(key, tenant, seq),
            seq,
            tenant: tenant.to_string(),
            source: self.source.clone(),
            provider: self.provider,
            scheme: self.scheme.clone(),
            delivery_id: self.delivery_id.clone(),
            signed_timestamp: self.signed_timestamp,
            sha256: hex::encode(self.sha256),
            size: self.size,
            content_type: self.content_type.clone(),
            received_at: self.received_at,
            outcome: "accepted".into(),
            job_id: self.job_id.clone(),
            kind: self.kind.clone(),
            insights: self.insights,
            body_expires_at: self.body_expires_at,
            body_purged: self.body_purged,
        }
    }
}

/// Parses a lowercase hex SHA-256 into its 32 bytes (zeros when malformed, which a digest the
/// pipeline computed never is).
/// SHA-256 of `bytes`.
pub(crate) fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

pub(crate) fn digest_bytes(hex_digest: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let _ = hex::decode_to_slice(hex_digest, &mut out);
    out
}

/// The notarised evidence-log entry of an event (RFC 8785 JCS; absent optional members omitted).
pub(crate) fn webhook_leaf(e: &EventRecord) -> Result<Vec<u8>, StoreError> {
    serde_json_canonicalizer::to_vec(&serde_json::Value::Object(webhook_leaf_members(e))).map_err(
        |e| StoreError::Corrupt {
            table: "log_entries",
            message: e.to_string(),
        },
    )
}

/// [`webhook_leaf`] with `event_id` open: the id derives from the sequence number the writer
/// assigns.
fn webhook_leaf_template(e: &EventRecord) -> Result<Option<JcsTemplate>, StoreError> {
    JcsTemplate::from_members(webhook_leaf_members(e), &["event_id"])
}

fn webhook_leaf_members(e: &EventRecord) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), "webhook".into());
    m.insert("event_id".into(), e.id.clone().into());
    m.insert("source".into(), e.source.clone().into());
    m.insert("provider".into(), e.provider.as_str().into());
    m.insert("scheme".into(), e.scheme.clone().into());
    if let Some(d) = &e.delivery_id {
        m.insert("delivery_id".into(), d.clone().into());
    }
    if let Some(t) = e.signed_timestamp {
        m.insert("signed_timestamp".into(), t.into());
    }
    m.insert("received_at".into(), e.received_at.into());
    m.insert("sha256".into(), e.sha256.clone().into());
    m.insert("size".into(), e.size.into());
    m
}

/// An event row read back, with its position.
pub(crate) fn find_event_row<T>(
    table: &T,
    legacy: &impl ReadableTable<&'static str, u64>,
    key: &IdKey,
    tenant: &str,
    id: &str,
) -> Result<Option<(u64, EventRow, u64)>, StoreError>
where
    T: ReadableTable<(&'static str, u64), &'static [u8]>,
{
    if let Some((seq, tail)) = ids::decode(key, "evt", tenant, id)
        && let Some(raw) = table.get((tenant, seq))?
    {
        let (row, leaf): (EventRow, u64) = open("events", raw.value())?;
        if row.legacy_id.is_none() && row.tail == tail {
            return Ok(Some((seq, row, leaf)));
        }
    }
    // Schema-1 ids are random: found through their index.
    let Some(seq) = legacy.get(id)?.map(|v| v.value()) else {
        return Ok(None);
    };
    let Some(raw) = table.get((tenant, seq))? else {
        return Ok(None);
    };
    let (row, leaf): (EventRow, u64) = open("events", raw.value())?;
    Ok((row.legacy_id.as_deref() == Some(id)).then_some((seq, row, leaf)))
}

/// An event's metadata and its raw body (`None` once purged).
pub type EventWithBody = (EventRecord, Option<Vec<u8>>);

/// Where an event is notarised: its evidence-log leaf index (`None` for events stored before
/// notarisation existed).
pub type EventLeaf = (EventRecord, Option<u64>, Option<Vec<u8>>);

impl IngestStore for Store {
    type Error = StoreError;

    fn find_delivery(
        &self,
        tenant: &str,
        key: &ReplayKey,
        since: i64,
    ) -> Result<Option<String>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(REPLAY)?;
        let Some(v) = t.get(key.0)? else {
            return Ok(None);
        };
        let (seq, at, tail) = v.value();
        if at < since {
            return Ok(None);
        }
        if tail != 0 {
            return Ok(Some(ids::encode(self.id_key(), "evt", tenant, seq, tail)));
        }
        let events = r.open_table(EVENTS)?;
        let row = events
            .get((tenant, seq))?
            .map(|v| open::<EventRow>("events", v.value()))
            .transpose()?;
        Ok(row.map(|(row, _)| row.id(self.id_key(), tenant, seq)))
    }

    async fn store_event(
        &self,
        ev: NewEvent,
        audit: Vec<AuditRecord>,
    ) -> Result<Accepted, StoreError> {
        // Everything that does not depend on a position is encoded (and the content
        // encrypted under the tenant's key) here, in the request task.
        let tail = ids::new_tail();
        let content_key = self.content_key(&ev.record.tenant)?;
        let insights: Vec<Vec<u8>> = ev
            .insights
            .iter()
            .map(|p| super::insights::new_row(&ev.record, tail, &content_key, p))
            .collect::<Result<_, _>>()?;
        let sealed_body = content_key.encrypt(Content::Body, ev.body.body())?;
        let row = EventRow {
            tail,
            legacy_id: None,
            source: ev.record.source.clone(),
            provider: ev.record.provider,
            scheme: ev.record.scheme.clone(),
            delivery_id: ev.record.delivery_id.clone(),
            signed_timestamp: ev.record.signed_timestamp,
            sha256: digest_bytes(&ev.record.sha256),
            size: ev.record.size,
            content_type: ev.record.content_type.clone(),
            received_at: ev.record.received_at,
            job_id: ev.record.job_id.clone(),
            kind: ev.record.kind.clone(),
            insights: ev.record.insights,
            first_insight: 0,
            body_expires_at: ev.record.body_expires_at,
            body_purged: false,
            replay: ev.replay.0,
        };
        let encoded = Encoded {
            body: sealed_body,
            insights,
            leaf: webhook_leaf_template(&ev.record)?,
            audit: audit.iter().map(audit_template).collect::<Result<_, _>>()?,
        };
        let key = *self.id_key();
        let bytes = row.size;
        let keys = self.inner.keys.clone();
        self.write(WriteClass::Data(bytes), move |b| {
            // The tenant's deletion may have run earlier in this batch or a previous one.
            let tenant = &ev.record.tenant;
            if keys.is_retired(tenant) {
                return Ok(Err(StoreError::TenantDeleted(tenant.clone())));
            }
            store_in(b, &key, ev, row, encoded, audit).map(Ok)
        })
        .await?
    }
}

/// What an ingest job's request task encoded ahead of the writer.
struct Encoded {
    /// The raw body, encrypted under the tenant's content key.
    body: Vec<u8>,
    /// Insight rows without their event-seq trailer.
    insights: Vec<Vec<u8>>,
    /// The evidence-log entry with `event_id` open.
    leaf: Option<JcsTemplate>,
    /// Each audit record with `index` and `resource` open.
    audit: Vec<Option<JcsTemplate>>,
}

fn store_in(
    b: &mut Batch<'_>,
    key: &IdKey,
    ev: NewEvent,
    mut row: EventRow,
    encoded: Encoded,
    mut audit: Vec<AuditRecord>,
) -> Result<Accepted, StoreError> {
    let Encoded {
        body: sealed_body,
        insights,
        leaf: leaf_template,
        audit: audit_templates,
    } = encoded;
    let NewEvent {
        mut record,
        body,
        replay,
        replay_since,
        ..
    } = ev;
    let tenant = record.tenant.clone();
    let earlier = b.replay()?.get(replay.0)?.map(|v| v.value());
    if let Some((seq, _, tail)) = earlier.filter(|e| e.1 >= replay_since) {
        let original = if tail != 0 {
            ids::encode(key, "evt", &tenant, seq, tail)
        } else {
            let row = b
                .events()?
                .get((tenant.as_str(), seq))?
                .map(|v| open::<EventRow>("events", v.value()))
                .transpose()?;
            row.map(|(r, _)| r.id(key, &tenant, seq))
                .unwrap_or_default()
        };
        for a in audit.iter_mut() {
            a.resource = Some(original.clone());
            a.detail = Some("duplicate delivery".into());
        }
        put_audit(b, &mut audit)?;
        return Ok(Accepted::Duplicate {
            event_id: original,
            recorded: true,
        });
    }
    let seq = b.next_seq(&format!("events/{tenant}"))?;
    record.seq = seq;
    record.id = ids::encode(key, "evt", &tenant, seq, row.tail);
    let first_insight = if insights.is_empty() {
        0
    } else {
        b.reserve_seq(&format!("insights/{tenant}"), insights.len() as u64)?
    };
    row.first_insight = first_insight;
    let origin = log_origin(b.prefix, &tenant, "evidence");
    let entry = match &leaf_template {
        Some(t) => t.fill(&[Hole::Str(&record.id)])?,
        None => webhook_leaf(&record)?,
    };
    let leaf = log_append(b, &origin, &entry)?;
    b.events()?
        .insert((tenant.as_str(), seq), seal(&row, leaf)?.as_slice())?;
    b.bodies()?
        .insert((tenant.as_str(), seq), sealed_body.as_slice())?;
    b.count_usage(&tenant, record.received_at, UsageMetric::Events, 1);
    b.count_usage(
        &tenant,
        record.received_at,
        UsageMetric::Bytes,
        body.body().len() as u64,
    );
    b.replay()?
        .insert(replay.0, (seq, record.received_at, row.tail))?;
    if !insights.is_empty() {
        let t = b.insights()?;
        for (i, mut ins) in insights.into_iter().enumerate() {
            set_trailer(&mut ins, seq);
            t.insert((tenant.as_str(), first_insight + i as u64), ins.as_slice())?;
        }
    }
    for a in audit.iter_mut() {
        a.resource = Some(record.id.clone());
    }
    put_audit_prepared(b, &mut audit, &audit_templates)?;
    Ok(Accepted::Stored(Box::new(record)))
}

impl Store {
    /// One event of `tenant` (other tenants' events are `None`, like missing ones).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_event(&self, tenant: &str, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.event_leaf(tenant, id, false)?.map(|(e, _, _)| e))
    }

    /// The raw body of an event of `tenant`: `Some((record, None))` when purged.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_event_body(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<EventWithBody>, StoreError> {
        Ok(self.event_leaf(tenant, id, true)?.map(|(e, _, b)| (e, b)))
    }

    /// An event of `tenant`, its evidence-log leaf index and (when `with_body`) its raw body,
    /// from one read transaction.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn event_leaf(
        &self,
        tenant: &str,
        id: &str,
        with_body: bool,
    ) -> Result<Option<EventLeaf>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(EVENTS)?;
        let legacy = r.open_table(LEGACY_IDS)?;
        let Some((seq, row, leaf)) = find_event_row(&t, &legacy, self.id_key(), tenant, id)? else {
            return Ok(None);
        };
        let body = if with_body {
            match r.open_table(EVENT_BODIES)?.get((tenant, seq))? {
                Some(v) => self.decrypt(tenant, Content::Body, v.value(), || {
                    format!(
                        "the body of event {} of tenant {tenant}",
                        row.id(self.id_key(), tenant, seq)
                    )
                })?,
                None => None,
            }
        } else {
            None
        };
        if let Some(b) = &body
            && sha256_bytes(b) != row.sha256
        {
            return Err(self.damaged(format!(
                "the body of event {} of tenant {tenant} does not match its SHA-256",
                row.id(self.id_key(), tenant, seq)
            )));
        }
        let leaf = (leaf != NO_LEAF).then_some(leaf);
        Ok(Some((row.record(self.id_key(), tenant, seq), leaf, body)))
    }

    /// Events of `tenant`, newest first, optionally of one source; `cursor` = the `seq` to
    /// continue below.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_events(
        &self,
        tenant: &str,
        source: Option<&str>,
        limit: usize,
        cursor: Option<u64>,
    ) -> Result<Page<EventRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(EVENTS)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items: Vec<EventRecord> = Vec::new();
        let mut next = None;
        for (scanned, item) in t.range((tenant, 0u64)..(tenant, upper))?.rev().enumerate() {
            let (k, v) = item?;
            let seq = k.value().1;
            if items.len() == limit {
                next = items.last().map(|e| e.seq);
                break;
            }
            if scanned == SCAN_BUDGET {
                next = Some(seq + 1);
                break;
            }
            let (row, _): (EventRow, u64) = open("events", v.value())?;
            if source.is_none_or(|s| s == row.source) {
                items.push(row.record(self.id_key(), tenant, seq));
            }
        }
        Ok(Page {
            items,
            next_cursor: next,
        })
    }
}
