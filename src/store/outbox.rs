//! The durable outbox: deliveries created in the commit that acknowledges what they report,
//! the due index the delivery worker drains, and the attempts log.
//!
//! Every log entry a batch appends to a tenant's `evidence` or `audit` log, and every checkpoint
//! it signs, becomes one delivery per enabled integration of that tenant subscribed to its type
//! ([`Subscriptions`]). The delivery row references the entry (log and index) rather than
//! copying it; the worker reads the entry when it builds the message.
//!
//! The deliveries one commit enqueues for one integration are **one row** (a group, keyed by
//! its first delivery seq): an ingest batch of a hundred events costs each subscribed
//! integration one insert. Each integration has a **cursor** (`DELIVERY_CURSORS`), the first
//! delivery seq its worker has not taken yet; the deliveries at and above it are its fresh
//! ones, due at once, in order. Only a delivery that must wait (a retry, one held by an open
//! breaker, a redelivery) gets a `DELIVERY_DUE` entry at its time; it leaves that index once
//! delivered or failed. A worker round reads and rewrites each group it touched once.

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::integrations::Subscriptions;
use super::*;
use crate::audit::AuditRecord;
use crate::delivery::integration::{
    Attempt, DeliveryRecord, DeliveryStatus, DisabledReason, EventType, IntegrationRecord,
    IntegrationStatus, MAX_ATTEMPTS_KEPT, Payload,
};
use crate::delivery::schedule::Next;

/// Most deliveries one listing page returns.
pub const MAX_DELIVERY_PAGE: usize = 500;

/// The deliveries of one integration enqueued by one commit, stored as one row: an ingest
/// batch of a hundred events costs each subscribed integration one insert, not a hundred.
type Group = Vec<DeliveryRecord>;

fn enc_group(g: &Group) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(g).map_err(|e| StoreError::Corrupt {
        table: "deliveries",
        message: e.to_string(),
    })
}

fn dec_group(bytes: &[u8]) -> Result<Group, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table: "deliveries",
        message: e.to_string(),
    })
}

/// The group row holding delivery `seq` of an integration: its key's seq and its deliveries.
fn group_of(
    t: &impl ReadableTable<(&'static str, &'static str, u64), &'static [u8]>,
    tenant: &str,
    integration: &str,
    seq: u64,
) -> Result<Option<(u64, Group)>, StoreError> {
    let Some(item) = t
        .range((tenant, integration, 0u64)..=(tenant, integration, seq))?
        .next_back()
    else {
        return Ok(None);
    };
    let (k, v) = item?;
    let group = dec_group(v.value())?;
    Ok(group
        .iter()
        .any(|d| d.seq == seq)
        .then_some((k.value().2, group)))
}

fn put_group(
    b: &WriteTransaction,
    tenant: &str,
    integration: &str,
    first: u64,
    group: &Group,
) -> Result<(), StoreError> {
    b.open_table(DELIVERIES)?
        .insert((tenant, integration, first), enc_group(group)?.as_slice())?;
    Ok(())
}

fn due_insert(b: &WriteTransaction, rec: &DeliveryRecord) -> Result<(), StoreError> {
    if let Some(at) = rec.next_at {
        b.open_table(DELIVERY_DUE)?.insert(
            (at, rec.seq),
            (rec.tenant.as_str(), rec.integration.as_str()),
        )?;
    }
    Ok(())
}

/// The tenant and log name of a log origin `<prefix>/<tenant>/<log>`.
fn tenant_log<'o>(prefix: &str, origin: &'o str) -> Option<(&'o str, &'o str)> {
    origin
        .strip_prefix(prefix)?
        .strip_prefix('/')?
        .split_once('/')
}

/// The type of a log entry: `audit` log entries are audit records; `evidence` log entries are
/// webhook notarisations (`"type":"webhook"`, the last member of the canonical JSON) or other
/// evidence (artifacts, receipts).
fn entry_type(log: &str, entry: &[u8]) -> Option<EventType> {
    match log {
        "audit" => Some(EventType::AuditRecorded),
        "evidence" if entry.ends_with(br#""type":"webhook"}"#) => Some(EventType::EventReceived),
        "evidence" => Some(EventType::EvidenceRecorded),
        _ => None,
    }
}

/// Stores the new pending deliveries of `integration` (fresh ones, taken from its cursor) as
/// one group row; returns them.
fn enqueue_group(
    b: &mut Batch<'_>,
    tenant: &str,
    integration: &str,
    items: Vec<(EventType, Payload)>,
    now: i64,
) -> Result<Group, StoreError> {
    let first = b.reserve_seq("deliveries", items.len() as u64)?;
    let group: Group = items
        .into_iter()
        .enumerate()
        .map(|(i, (event_type, payload))| DeliveryRecord {
            seq: first + i as u64,
            tail: ids::new_tail(),
            tenant: tenant.to_string(),
            integration: integration.to_string(),
            event_type,
            payload,
            created_at: now,
            status: DeliveryStatus::Pending,
            next_at: None,
            round_attempts: 0,
            attempts: Vec::new(),
        })
        .collect();
    put_group(b, tenant, integration, first, &group)?;
    b.enqueued += group.len();
    Ok(group)
}

/// Enqueues the deliveries of the entries this batch appended (called by [`Batch::flush`]
/// before the entries are written).
pub(crate) fn enqueue_entries(b: &mut Batch<'_>, subs: &Subscriptions) -> Result<(), StoreError> {
    let mut wanted: std::collections::BTreeMap<(String, String), Vec<(EventType, Payload)>> =
        std::collections::BTreeMap::new();
    for (origin, log) in &b.logs {
        let Some((tenant, name)) = tenant_log(b.prefix, origin) else {
            continue;
        };
        let integrations = subs.of(tenant);
        if integrations.is_empty() {
            continue;
        }
        let first = log.size - log.entries.len() as u64;
        for (i, entry) in log.entries.iter().enumerate() {
            let Some(t) = entry_type(name, entry) else {
                continue;
            };
            for (id, mask) in integrations {
                if mask & t.bit() != 0 {
                    wanted
                        .entry((tenant.to_string(), id.clone()))
                        .or_default()
                        .push((
                            t,
                            Payload::Entry {
                                log: name.to_string(),
                                index: first + i as u64,
                            },
                        ));
                }
            }
        }
    }
    let now = b.now;
    let mut live = Liveness::default();
    for ((tenant, id), items) in wanted {
        if live.exists(b, &tenant, &id)? {
            enqueue_group(b, &tenant, &id, items, now)?;
        }
    }
    Ok(())
}

/// Whether an integration still exists as this batch left it: the subscriptions were read when
/// the batch began, and a job of the batch may have deleted it since (a disabled one keeps its
/// fresh deliveries for when it is enabled again).
#[derive(Default)]
struct Liveness(std::collections::HashMap<(String, String), bool>);

impl Liveness {
    fn exists(&mut self, b: &Batch<'_>, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let key = (tenant.to_string(), id.to_string());
        if let Some(v) = self.0.get(&key) {
            return Ok(*v);
        }
        let exists = b.open_table(INTEGRATIONS)?.get((tenant, id))?.is_some();
        self.0.insert(key, exists);
        Ok(exists)
    }
}

/// Enqueues `checkpoint.signed` deliveries for the checkpoints this batch signed
/// (`(origin, size, note)`).
pub(crate) fn enqueue_checkpoints(
    b: &mut Batch<'_>,
    subs: &Subscriptions,
    signed: &[(String, u64, String)],
) -> Result<(), StoreError> {
    let now = b.now;
    let mut live = Liveness::default();
    let mut wanted: std::collections::BTreeMap<(String, String), Vec<(EventType, Payload)>> =
        std::collections::BTreeMap::new();
    for (origin, size, note) in signed {
        let Some((tenant, log)) = tenant_log(b.prefix, origin) else {
            continue;
        };
        for (id, mask) in subs.of(tenant) {
            if mask & EventType::CheckpointSigned.bit() != 0 {
                wanted
                    .entry((tenant.to_string(), id.clone()))
                    .or_default()
                    .push((
                        EventType::CheckpointSigned,
                        Payload::Checkpoint {
                            log: log.to_string(),
                            size: *size,
                            note: note.clone(),
                        },
                    ));
            }
        }
    }
    for ((tenant, id), items) in wanted {
        if live.exists(b, &tenant, &id)? {
            enqueue_group(b, &tenant, &id, items, now)?;
        }
    }
    Ok(())
}

/// Every group row of one integration, `(first seq, deliveries)`.
fn groups_of(
    b: &WriteTransaction,
    tenant: &str,
    integration: &str,
) -> Result<Vec<(u64, Group)>, StoreError> {
    let t = b.open_table(DELIVERIES)?;
    let mut out = Vec::new();
    for item in t.range((tenant, integration, 0u64)..=(tenant, integration, u64::MAX))? {
        let (k, v) = item?;
        out.push((k.value().2, dec_group(v.value())?));
    }
    Ok(out)
}

/// Takes the waiting deliveries of a disabled integration off the due index (they stay
/// pending, without a due time).
pub(crate) fn drop_due_of(
    b: &WriteTransaction,
    tenant: &str,
    integration: &str,
) -> Result<(), StoreError> {
    for (first, mut group) in groups_of(b, tenant, integration)? {
        let mut changed = false;
        for rec in &mut group {
            if let Some(at) = rec.next_at.take() {
                b.open_table(DELIVERY_DUE)?.remove((at, rec.seq))?;
                changed = true;
            }
        }
        if changed {
            put_group(b, tenant, integration, first, &group)?;
        }
    }
    Ok(())
}

/// Puts the waiting deliveries of a re-enabled integration (those below its cursor, taken off
/// the due index when it was disabled) back on it, due at `now`, each with a fresh round of the
/// schedule. Its fresh deliveries need nothing: the cursor still points at them.
pub(crate) fn restore_due_of(
    b: &WriteTransaction,
    tenant: &str,
    integration: &str,
    now: i64,
) -> Result<(), StoreError> {
    let cursor = cursor_in(b, tenant, integration)?;
    for (first, mut group) in groups_of(b, tenant, integration)? {
        let mut changed = false;
        for rec in &mut group {
            if rec.seq < cursor && rec.status == DeliveryStatus::Pending && rec.next_at.is_none() {
                rec.next_at = Some(now);
                rec.round_attempts = 0;
                due_insert(b, rec)?;
                changed = true;
            }
        }
        if changed {
            put_group(b, tenant, integration, first, &group)?;
        }
    }
    Ok(())
}

/// The cursor of an integration: its first delivery seq not yet taken by the worker.
fn cursor_in(b: &WriteTransaction, tenant: &str, integration: &str) -> Result<u64, StoreError> {
    Ok(b.open_table(DELIVERY_CURSORS)?
        .get((tenant, integration))?
        .map_or(0, |v| v.value()))
}

/// Removes every delivery of an integration, and its cursor (it is deleted).
pub(crate) fn remove_deliveries_of(
    b: &WriteTransaction,
    tenant: &str,
    integration: &str,
) -> Result<(), StoreError> {
    b.open_table(DELIVERY_CURSORS)?
        .remove((tenant, integration))?;
    for (_, group) in groups_of(b, tenant, integration)? {
        for rec in &group {
            if let Some(at) = rec.next_at {
                b.open_table(DELIVERY_DUE)?.remove((at, rec.seq))?;
            }
        }
    }
    b.open_table(DELIVERIES)?.retain_in(
        (tenant, integration, 0u64)..=(tenant, integration, u64::MAX),
        |_, _| false,
    )?;
    Ok(())
}

/// What the delivery worker decided for one delivery.
#[derive(Debug, Clone)]
pub enum DeliveryUpdate {
    /// An attempt was made; `next` is the schedule's decision.
    Attempted {
        /// Owning tenant.
        tenant: String,
        /// The integration.
        integration: String,
        /// The delivery.
        seq: u64,
        /// The attempts-log entry.
        attempt: Attempt,
        /// What follows.
        next: Next,
    },
    /// Not attempted (the endpoint's breaker is open): due again at `until`.
    Held {
        /// Owning tenant.
        tenant: String,
        /// The integration.
        integration: String,
        /// The delivery.
        seq: u64,
        /// Unix seconds.
        until: i64,
    },
}

/// A change of an integration's health decided by the delivery worker.
#[derive(Debug, Clone)]
pub struct HealthUpdate {
    /// Owning tenant.
    pub tenant: String,
    /// The integration.
    pub integration: String,
    /// New start of the failure streak (`None`: it succeeded).
    pub failing_since: Option<i64>,
    /// Disable it now, for this reason.
    pub disable: Option<DisabledReason>,
    /// Unix seconds.
    pub at: i64,
}

/// A delivery found by its external id, with the id.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    /// `dlv_…`.
    pub id: String,
    /// The row.
    pub record: DeliveryRecord,
}

/// Outcome of a redeliver request.
#[derive(Debug)]
pub enum Redelivery {
    /// Due now, with a fresh round of the schedule.
    Queued(DeliveryView),
    /// No such delivery of that integration.
    Missing,
    /// The integration is disabled: nothing would be sent.
    Disabled,
}

impl Store {
    /// The external id of a delivery, `dlv_` and 32 hex digits (unguessable; [`ids`]). It is
    /// also the `webhook-id` of every attempt.
    pub fn delivery_id(&self, record: &DeliveryRecord) -> String {
        ids::encode(
            self.id_key(),
            "dlv",
            &record.tenant,
            record.seq,
            record.tail,
        )
    }

    fn delivery_view(&self, record: DeliveryRecord) -> DeliveryView {
        DeliveryView {
            id: self.delivery_id(&record),
            record,
        }
    }

    /// Resolves when a commit enqueued deliveries (the worker's wake-up).
    pub async fn deliveries_enqueued(&self) {
        self.inner.shared.enqueued.notified().await;
    }

    /// Up to `limit` waiting deliveries due at `now`, earliest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn due_deliveries(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let r = self.read()?;
        let due = r.open_table(DELIVERY_DUE)?;
        let rows = r.open_table(DELIVERIES)?;
        let mut out = Vec::new();
        for item in due.range((i64::MIN, 0u64)..=(now, u64::MAX))? {
            if out.len() == limit {
                break;
            }
            let (k, v) = item?;
            let (_, seq) = k.value();
            let (tenant, integration) = v.value();
            if let Some((_, group)) = group_of(&rows, tenant, integration, seq)? {
                out.extend(group.into_iter().filter(|d| d.seq == seq));
            }
        }
        Ok(out)
    }

    /// The cursor of integration `integration` of `tenant` (0 before its first round).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn delivery_cursor(&self, tenant: &str, integration: &str) -> Result<u64, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DELIVERY_CURSORS)?;
        Ok(t.get((tenant, integration))?.map_or(0, |v| v.value()))
    }

    /// Up to `limit` fresh deliveries of an integration: seq `from` and above, in order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn fresh_deliveries(
        &self,
        tenant: &str,
        integration: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DELIVERIES)?;
        // The group holding `from` may begin below it.
        let start = t
            .range((tenant, integration, 0u64)..=(tenant, integration, from))?
            .next_back()
            .transpose()?
            .map_or(from, |(k, _)| k.value().2);
        let mut out = Vec::new();
        for item in t.range((tenant, integration, start)..=(tenant, integration, u64::MAX))? {
            let (_, v) = item?;
            for d in dec_group(v.value())? {
                if out.len() == limit {
                    return Ok(out);
                }
                if d.seq >= from {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// The enabled integrations, `(tenant, id)`, as the writer's subscriptions hold them.
    pub fn enabled_integrations(&self) -> Vec<(String, String)> {
        self.inner.shared.subscriptions().all()
    }

    /// The earliest due time of a waiting delivery (retries, held, redelivered), if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let r = self.read()?;
        let due = r.open_table(DELIVERY_DUE)?;
        Ok(due.first()?.map(|(k, _)| k.value().0))
    }

    /// Records the worker's decisions, the integrations' cursors past the fresh deliveries it
    /// took, their health changes and the audit records of those, in one commit.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
        cursors: Vec<(String, String, u64)>,
        health: Vec<HealthUpdate>,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        let store = self.clone();
        self.write(WriteClass::Exempt, move |b| {
            for (tenant, integration, cursor) in cursors {
                let exists = b
                    .open_table(INTEGRATIONS)?
                    .get((tenant.as_str(), integration.as_str()))?
                    .is_some();
                if exists {
                    b.open_table(DELIVERY_CURSORS)?
                        .insert((tenant.as_str(), integration.as_str()), cursor)?;
                }
            }
            // Every group touched is read once and written once.
            let mut touched: std::collections::BTreeMap<(String, String, u64), Group> =
                std::collections::BTreeMap::new();
            for u in updates {
                let (tenant, integration, seq) = match &u {
                    DeliveryUpdate::Attempted {
                        tenant,
                        integration,
                        seq,
                        ..
                    }
                    | DeliveryUpdate::Held {
                        tenant,
                        integration,
                        seq,
                        ..
                    } => (tenant.clone(), integration.clone(), *seq),
                };
                let cached = touched
                    .iter()
                    .find(|((t, i, _), g)| {
                        *t == tenant && *i == integration && g.iter().any(|d| d.seq == seq)
                    })
                    .map(|(k, _)| k.clone());
                let key = match cached {
                    Some(k) => k,
                    None => {
                        let t = b.open_table(DELIVERIES)?;
                        // Deleted with its integration while the attempt was under way.
                        let Some((first, group)) = group_of(&t, &tenant, &integration, seq)? else {
                            continue;
                        };
                        drop(t);
                        let key = (tenant.clone(), integration.clone(), first);
                        touched.insert(key.clone(), group);
                        key
                    }
                };
                let Some(rec) = touched
                    .get_mut(&key)
                    .and_then(|g| g.iter_mut().find(|d| d.seq == seq))
                else {
                    continue;
                };
                if let Some(at) = rec.next_at.take() {
                    b.open_table(DELIVERY_DUE)?.remove((at, seq))?;
                }
                match u {
                    DeliveryUpdate::Held { until, .. } => rec.next_at = Some(until),
                    DeliveryUpdate::Attempted { attempt, next, .. } => {
                        rec.round_attempts = rec.round_attempts.saturating_add(1);
                        rec.attempts.push(attempt);
                        if rec.attempts.len() > MAX_ATTEMPTS_KEPT {
                            let extra = rec.attempts.len() - MAX_ATTEMPTS_KEPT;
                            rec.attempts.drain(..extra);
                        }
                        match next {
                            Next::Delivered => rec.status = DeliveryStatus::Delivered,
                            Next::RetryAt(at) => rec.next_at = Some(at),
                            Next::Exhausted => rec.status = DeliveryStatus::Failed,
                            // Stays pending without a due time until re-enabled.
                            Next::DisableIntegration => {}
                        }
                    }
                }
                due_insert(b, rec)?;
            }
            for ((tenant, integration, first), group) in &touched {
                put_group(b, tenant, integration, *first, group)?;
            }
            for h in health {
                let current = b
                    .open_table(INTEGRATIONS)?
                    .get((h.tenant.as_str(), h.integration.as_str()))?
                    .map(|v| super::codec::dec::<IntegrationRecord>("integrations", v.value()))
                    .transpose()?;
                let Some(mut rec) = current else { continue };
                rec.failing_since = h.failing_since;
                if let Some(reason) = h.disable
                    && rec.status == IntegrationStatus::Enabled
                {
                    rec.status = IntegrationStatus::Disabled;
                    rec.disabled_reason = Some(reason);
                    rec.updated_at = h.at;
                    drop_due_of(b, &h.tenant, &h.integration)?;
                }
                // Stored sealed as it was read: only status fields changed.
                b.open_table(INTEGRATIONS)?.insert(
                    (h.tenant.as_str(), h.integration.as_str()),
                    super::codec::enc(&rec)?.as_slice(),
                )?;
            }
            super::audit::put_audit(b, &mut audit)?;
            Ok(())
        })
        .await?;
        store.reload_subscriptions()
    }

    /// Deliveries of an integration, newest first, at most `limit`, before `cursor` (a seq),
    /// optionally only those in `status`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_deliveries(
        &self,
        tenant: &str,
        integration: &str,
        limit: usize,
        cursor: Option<u64>,
        status: Option<DeliveryStatus>,
    ) -> Result<Page<DeliveryView>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DELIVERIES)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items = Vec::new();
        let mut scanned = 0usize;
        for item in t
            .range((tenant, integration, 0u64)..(tenant, integration, upper))?
            .rev()
        {
            let (_, v) = item?;
            for rec in dec_group(v.value())?.into_iter().rev() {
                if rec.seq >= upper {
                    continue;
                }
                if items.len() == limit.min(MAX_DELIVERY_PAGE) || scanned == SCAN_BUDGET {
                    return Ok(Page {
                        items,
                        next_cursor: Some(rec.seq + 1),
                    });
                }
                scanned += 1;
                if status.is_none_or(|s| s == rec.status) {
                    items.push(self.delivery_view(rec));
                }
            }
        }
        Ok(Page {
            items,
            next_cursor: None,
        })
    }

    /// The delivery `id` (`dlv_…`) of `integration` in `tenant`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_delivery(
        &self,
        tenant: &str,
        integration: &str,
        id: &str,
    ) -> Result<Option<DeliveryView>, StoreError> {
        let Some((seq, tail)) = ids::decode(self.id_key(), "dlv", tenant, id) else {
            return Ok(None);
        };
        let r = self.read()?;
        let t = r.open_table(DELIVERIES)?;
        let Some((_, group)) = group_of(&t, tenant, integration, seq)? else {
            return Ok(None);
        };
        Ok(group
            .into_iter()
            .find(|d| d.seq == seq && d.tail == tail)
            .map(|d| self.delivery_view(d)))
    }

    /// Makes delivery `id` due at `now` with a fresh round of the schedule (same `webhook-id`),
    /// with `audit`, in one commit.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn redeliver(
        &self,
        tenant: &str,
        integration: &str,
        id: &str,
        now: i64,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Redelivery, StoreError> {
        let Some((seq, tail)) = ids::decode(self.id_key(), "dlv", tenant, id) else {
            return Ok(Redelivery::Missing);
        };
        let (tenant, integration) = (tenant.to_string(), integration.to_string());
        let store = self.clone();
        self.write(WriteClass::Exempt, move |b| {
            let enabled = b
                .open_table(INTEGRATIONS)?
                .get((tenant.as_str(), integration.as_str()))?
                .map(|v| super::codec::dec::<IntegrationRecord>("integrations", v.value()))
                .transpose()?
                .map(|r| r.status == IntegrationStatus::Enabled);
            match enabled {
                None => return Ok(Redelivery::Missing),
                Some(false) => return Ok(Redelivery::Disabled),
                Some(true) => {}
            }
            let t = b.open_table(DELIVERIES)?;
            let found = group_of(&t, &tenant, &integration, seq)?;
            drop(t);
            let Some((first, mut group)) = found else {
                return Ok(Redelivery::Missing);
            };
            let Some(rec) = group.iter_mut().find(|d| d.seq == seq && d.tail == tail) else {
                return Ok(Redelivery::Missing);
            };
            if let Some(at) = rec.next_at.take() {
                b.open_table(DELIVERY_DUE)?.remove((at, seq))?;
            }
            rec.status = DeliveryStatus::Pending;
            rec.next_at = Some(now);
            rec.round_attempts = 0;
            due_insert(b, rec)?;
            let rec = rec.clone();
            put_group(b, &tenant, &integration, first, &group)?;
            super::audit::put_audit(b, &mut audit)?;
            Ok(Redelivery::Queued(store.delivery_view(rec)))
        })
        .await
    }

    /// Enqueues a test message for `integration`, due at `now`, with `audit`, in one commit.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn enqueue_test_delivery(
        &self,
        tenant: &str,
        integration: &str,
        now: i64,
        mut audit: Vec<AuditRecord>,
    ) -> Result<DeliveryView, StoreError> {
        let (tenant, integration) = (tenant.to_string(), integration.to_string());
        let store = self.clone();
        self.write(WriteClass::Exempt, move |b| {
            let group = enqueue_group(
                b,
                &tenant,
                &integration,
                vec![(EventType::IntegrationTest, Payload::Test)],
                now,
            )?;
            super::audit::put_audit(b, &mut audit)?;
            let rec = group
                .into_iter()
                .next()
                .ok_or(StoreError::Db("an enqueued group is empty".into()))?;
            Ok(store.delivery_view(rec))
        })
        .await
    }

    /// Deliveries waiting for a later attempt (retries, held, redelivered).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn waiting_deliveries(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(DELIVERY_DUE)?.len()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_types_follow_the_log_and_the_leaf_type() {
        assert_eq!(
            entry_type("evidence", br#"{"event_id":"evt_1","type":"webhook"}"#),
            Some(EventType::EventReceived)
        );
        assert_eq!(
            entry_type("evidence", br#"{"type":"artifact"}"#),
            Some(EventType::EvidenceRecorded)
        );
        assert_eq!(entry_type("audit", b"{}"), Some(EventType::AuditRecorded));
        assert_eq!(entry_type("system", b"{}"), None);
        assert_eq!(
            tenant_log("appl", "appl/acme/audit"),
            Some(("acme", "audit"))
        );
        assert_eq!(tenant_log("appl", "appl/system"), None);
    }
}
