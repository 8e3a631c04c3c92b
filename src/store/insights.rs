//! ML insights (schema 2): one postcard row per insight keyed `(tenant, seq)`, holding only its
//! own raw JSON slice of the delivery (never a re-encoding of the whole payload), encrypted
//! under the tenant's content key (schema 3); the trailer is the event's `seq`. Review
//! decisions rewrite the row in place.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::audit::put_audit;
use super::codec::{open, seal};
use super::ids::{self, IdKey};
use super::*;
use crate::audit::AuditRecord;
use crate::ingest::{Decision, EventRecord, InsightRecord, InsightStatus};

/// The stored form of an [`InsightRecord`].
#[derive(Serialize, Deserialize)]
pub(crate) struct InsightRow {
    pub(crate) tail: u64,
    pub(crate) legacy_id: Option<String>,
    pub(crate) job_id: String,
    pub(crate) kind: String,
    pub(crate) event_tail: u64,
    pub(crate) legacy_event_id: Option<String>,
    /// The raw JSON slice, encrypted ([`Content::Insight`]); plaintext UTF-8 in schema 2 (the
    /// same postcard encoding as a `String`).
    pub(crate) payload: Vec<u8>,
    pub(crate) status: InsightStatus,
    pub(crate) decision: Option<Decision>,
    pub(crate) created_at: i64,
}

/// The row of a new insight of the event `ev` (whose tail is `event_tail`); its trailer (the
/// event's seq) is set by the writer.
pub(crate) fn new_row(
    ev: &EventRecord,
    event_tail: u64,
    content_key: &ContentKey,
    payload: &[u8],
) -> Result<Vec<u8>, StoreError> {
    seal(
        &InsightRow {
            tail: ids::new_tail(),
            legacy_id: None,
            job_id: ev.job_id.clone().unwrap_or_default(),
            kind: ev.kind.clone().unwrap_or_default(),
            event_tail,
            legacy_event_id: None,
            payload: content_key.encrypt(Content::Insight, payload)?,
            status: InsightStatus::Pending,
            decision: None,
            created_at: ev.received_at,
        },
        0,
    )
}

impl InsightRow {
    fn record(
        &self,
        key: &IdKey,
        content_key: Option<&ContentKey>,
        tenant: &str,
        seq: u64,
        event_seq: u64,
    ) -> Result<InsightRecord, StoreError> {
        let damaged = || {
            StoreError::Damaged(format!(
                "the payload of insight {seq} of tenant {tenant} does not decrypt"
            ))
        };
        let plain = content_key
            .and_then(|k| k.decrypt(Content::Insight, &self.payload))
            .ok_or_else(damaged)?;
        let payload = serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
            table: "insights",
            message: e.to_string(),
        })?;
        Ok(InsightRecord {
            id: match &self.legacy_id {
                Some(id) => id.clone(),
                None => ids::encode(key, "ins", tenant, seq, self.tail),
            },
            seq,
            tenant: tenant.to_string(),
            job_id: self.job_id.clone(),
            kind: self.kind.clone(),
            event_id: match &self.legacy_event_id {
                Some(id) => id.clone(),
                None => ids::encode(key, "evt", tenant, event_seq, self.event_tail),
            },
            payload,
            status: self.status,
            decision: self.decision.clone(),
            created_at: self.created_at,
        })
    }
}

/// Outcome of deciding an insight.
#[derive(Debug, Clone)]
pub enum DecideOutcome {
    /// Decided.
    Decided(InsightRecord),
    /// No such insight in this tenant.
    NotFound,
    /// Already approved or rejected.
    AlreadyDecided(InsightRecord),
}

impl Store {
    /// Insights of `tenant`, newest first, filtered by job and status.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_insights(
        &self,
        tenant: &str,
        job_id: Option<&str>,
        status: Option<InsightStatus>,
        limit: usize,
        cursor: Option<u64>,
    ) -> Result<Page<InsightRecord>, StoreError> {
        let content_key = self.inner.keys.get(tenant);
        let r = self.read()?;
        let t = r.open_table(INSIGHTS)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items: Vec<InsightRecord> = Vec::new();
        let mut next = None;
        for (scanned, item) in t.range((tenant, 0u64)..(tenant, upper))?.rev().enumerate() {
            let (k, v) = item?;
            let seq = k.value().1;
            if scanned == SCAN_BUDGET {
                // Continue from here on the next page, even if this page is short.
                next = Some(seq + 1);
                break;
            }
            let (row, event_seq): (InsightRow, u64) = open("insights", v.value())?;
            if job_id.is_some_and(|j| j != row.job_id) || status.is_some_and(|s| s != row.status) {
                continue;
            }
            if items.len() == limit {
                next = items.last().map(|i| i.seq);
                break;
            }
            items.push(row.record(
                self.id_key(),
                content_key.as_deref(),
                tenant,
                seq,
                event_seq,
            )?);
        }
        Ok(Page {
            items,
            next_cursor: next,
        })
    }

    /// Records a decision on a PENDING insight of `tenant`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn decide_insight(
        &self,
        tenant: String,
        id: String,
        status: InsightStatus,
        decision: Decision,
        mut audit: Vec<AuditRecord>,
    ) -> Result<DecideOutcome, StoreError> {
        let key = *self.id_key();
        let content_key = self.inner.keys.get(&tenant);
        self.write(WriteClass::Data(0), move |b| {
            let content_key = content_key.as_deref();
            let mut found = None;
            let txn = b.txn();
            let t = b.insights()?;
            if let Some((seq, tail)) = ids::decode(&key, "ins", &tenant, &id)
                && let Some(v) = t.get((tenant.as_str(), seq))?
            {
                let (row, event_seq) = open::<InsightRow>("insights", v.value())?;
                if row.legacy_id.is_none() && row.tail == tail {
                    found = Some((seq, row, event_seq));
                }
            }
            if found.is_none() {
                let legacy = txn
                    .open_table(LEGACY_IDS)?
                    .get(id.as_str())?
                    .map(|v| v.value());
                if let Some(seq) = legacy
                    && let Some(v) = t.get((tenant.as_str(), seq))?
                {
                    let (row, event_seq) = open::<InsightRow>("insights", v.value())?;
                    if row.legacy_id.as_deref() == Some(id.as_str()) {
                        found = Some((seq, row, event_seq));
                    }
                }
            }
            let Some((seq, mut row, event_seq)) = found else {
                return Ok(DecideOutcome::NotFound);
            };
            if row.status != InsightStatus::Pending {
                return Ok(DecideOutcome::AlreadyDecided(row.record(
                    &key,
                    content_key,
                    &tenant,
                    seq,
                    event_seq,
                )?));
            }
            row.status = status;
            row.decision = Some(decision);
            t.insert((tenant.as_str(), seq), seal(&row, event_seq)?.as_slice())?;
            put_audit(b, &mut audit)?;
            Ok(DecideOutcome::Decided(row.record(
                &key,
                content_key,
                &tenant,
                seq,
                event_seq,
            )?))
        })
        .await
    }
}
