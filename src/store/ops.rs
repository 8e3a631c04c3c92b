//! Typed operations over the tables. Every write method commits through the group commit and
//! returns only after the commit is durable; audit records passed in are written in the same
//! transaction as the data they describe.

use redb::{ReadableTable, WriteTransaction};

use super::log::log_append;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::audit::AuditRecord;
use crate::identity::{Tenant, TokenRecord};
use crate::ingest::{EventRecord, InsightRecord, InsightStatus, JobRecord, SourceRecord};

pub(crate) fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
        table: "encode",
        message: e.to_string(),
    })
}

pub(crate) fn dec<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

/// Reserves the next value of counter `name` (starting at 0) inside `txn`.
fn next_seq(txn: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut t = txn.open_table(SEQ)?;
    let current = t.get(name)?.map(|v| v.value()).unwrap_or(0);
    t.insert(name, current + 1)?;
    Ok(current)
}

/// Appends audit records inside the batch. Each record is a leaf of its tenant's `audit`
/// transparency log (the appliance scope's go to the `system` log): its `index` is its leaf
/// index and the leaf (the only copy kept) is the record's RFC 8785 canonical JSON.
pub(crate) fn put_audit(
    batch: &mut Batch<'_>,
    records: &mut [AuditRecord],
) -> Result<(), StoreError> {
    for rec in records.iter_mut() {
        let origin = audit_origin(batch.prefix, &rec.tenant);
        rec.index = {
            let sizes = batch.open_table(LOG_SIZE)?;
            sizes.get(origin.as_str())?.map(|v| v.value()).unwrap_or(0)
        };
        let entry = serde_json_canonicalizer::to_vec(&*rec).map_err(|e| StoreError::Corrupt {
            table: "audit",
            message: e.to_string(),
        })?;
        let index = log_append(batch, &origin, &entry)?;
        debug_assert_eq!(index, rec.index);
    }
    Ok(())
}

/// The log that holds a tenant's audit records.
pub(crate) fn audit_origin(prefix: &str, tenant: &str) -> String {
    if tenant == crate::audit::APPLIANCE_SCOPE {
        format!("{prefix}/system")
    } else {
        log_origin(prefix, tenant, "audit")
    }
}

/// The origin of a tenant's log: `<appliance name>/<tenant>/<log>`.
pub(crate) fn log_origin(prefix: &str, tenant: &str, log: &str) -> String {
    format!("{prefix}/{tenant}/{log}")
}

/// Most index entries one filtered listing examines; past it the page ends early with a cursor,
/// so a filter that matches little cannot make one request scan a whole tenant.
pub const SCAN_BUDGET: usize = 10_000;

/// A page of results, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items.
    pub items: Vec<T>,
    /// Cursor for the next (older) page, if any.
    pub next_cursor: Option<u64>,
}

/// Result of storing an ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored as a new event.
    Stored(Box<EventRecord>),
    /// A delivery with the same replay key was stored before: its event id.
    Duplicate(String),
}

/// An ingested event ready to store.
pub struct NewEvent {
    /// Metadata (its `seq` is assigned at commit).
    pub record: EventRecord,
    /// Raw body.
    pub body: bytes::Bytes,
    /// Replay key (`id:…` or `sha256:…`).
    pub replay_key: String,
    /// Replay window start: an earlier delivery older than this is not a duplicate.
    pub replay_since: i64,
    /// ML job and its insights (their `seq` assigned at commit).
    pub job: Option<(JobRecord, Vec<InsightRecord>)>,
}

#[derive(Serialize, serde::Deserialize)]
struct ReplayEntry {
    event_id: String,
    at: i64,
}

/// An event's metadata and its raw body (`None` once purged).
pub type EventWithBody = (EventRecord, Option<Vec<u8>>);

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
    /// Appends audit records (not subject to the free-space floor: they are small and required).
    ///
    /// # Errors
    /// [`StoreError`] on storage failure.
    pub async fn append_audit(
        &self,
        mut records: Vec<AuditRecord>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.write(false, move |txn| {
            put_audit(txn, &mut records)?;
            Ok(records)
        })
        .await
    }

    /// Reads a meta value.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(META)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Creates the `default` tenant, its `ml` source and the bootstrap admin token, once: only
    /// when the `bootstrapped` meta key is absent. Returns whether it ran.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn bootstrap(
        &self,
        tenant: Tenant,
        ml_source: SourceRecord,
        admin: TokenRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(false, move |txn| {
            {
                let meta = txn.open_table(META)?;
                if meta.get("bootstrapped")?.is_some() {
                    return Ok(false);
                }
            }
            {
                let mut t = txn.open_table(TENANTS)?;
                if t.get(tenant.id.as_str())?.is_none() {
                    t.insert(tenant.id.as_str(), enc(&tenant)?.as_slice())?;
                }
            }
            put_source(txn, &ml_source)?;
            txn.open_table(TOKENS)?
                .insert(admin.id.as_str(), enc(&admin)?.as_slice())?;
            txn.open_table(META)?
                .insert("bootstrapped", b"1".as_slice())?;
            put_audit(txn, &mut audit)?;
            Ok(true)
        })
        .await
    }

    // ----- tenants -----------------------------------------------------------------------

    /// Creates a tenant; `false` when the id is taken.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn create_tenant(
        &self,
        tenant: Tenant,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(true, move |txn| {
            let mut t = txn.open_table(TENANTS)?;
            if t.get(tenant.id.as_str())?.is_some() {
                return Ok(false);
            }
            t.insert(tenant.id.as_str(), enc(&tenant)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(true)
        })
        .await
    }

    /// One tenant.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TENANTS)?;
        t.get(id)?.map(|v| dec("tenants", v.value())).transpose()
    }

    /// All tenants, by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TENANTS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(dec("tenants", v.value())?);
        }
        Ok(out)
    }

    // ----- tokens ------------------------------------------------------------------------

    /// Stores a new token.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_token(
        &self,
        token: TokenRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.write(true, move |txn| {
            txn.open_table(TOKENS)?
                .insert(token.id.as_str(), enc(&token)?.as_slice())?;
            put_audit(txn, &mut audit)?;
            Ok(())
        })
        .await
    }

    /// One token by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TOKENS)?;
        t.get(id)?.map(|v| dec("tokens", v.value())).transpose()
    }

    /// Tokens of a tenant.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TOKENS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            let rec: TokenRecord = dec("tokens", v.value())?;
            if rec.tenant.as_deref() == Some(tenant) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Revokes a token of `tenant`; `false` when it does not exist there.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_token(
        &self,
        tenant: String,
        id: String,
        now: i64,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(true, move |txn| {
            let mut t = txn.open_table(TOKENS)?;
            let Some(mut rec) = t
                .get(id.as_str())?
                .map(|v| dec::<TokenRecord>("tokens", v.value()))
                .transpose()?
            else {
                return Ok(false);
            };
            if rec.tenant.as_deref() != Some(tenant.as_str()) {
                return Ok(false);
            }
            if rec.revoked_at.is_none() {
                rec.revoked_at = Some(now);
            }
            t.insert(id.as_str(), enc(&rec)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(true)
        })
        .await
    }

    // ----- sources -----------------------------------------------------------------------

    /// Stores a new source. For `ml`, `false` when the tenant already has one.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_source(
        &self,
        source: SourceRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(true, move |txn| {
            if source.provider == crate::ingest::Provider::Ml
                && find_ml_in(txn, &source.tenant)?.is_some()
            {
                return Ok(false);
            }
            put_source(txn, &source)?;
            put_audit(txn, &mut audit)?;
            Ok(true)
        })
        .await
    }

    /// One source by id (any tenant; callers check the tenant).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_source(&self, id: &str) -> Result<Option<SourceRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(SOURCES)?;
        t.get(id)?.map(|v| dec("sources", v.value())).transpose()
    }

    /// Sources of a tenant.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_sources(&self, tenant: &str) -> Result<Vec<SourceRecord>, StoreError> {
        let r = self.read()?;
        let idx = r.open_table(TENANT_SOURCES)?;
        let t = r.open_table(SOURCES)?;
        let mut out = Vec::new();
        for item in idx.range((tenant, "")..)? {
            let (k, _) = item?;
            let (tn, id) = k.value();
            if tn != tenant {
                break;
            }
            if let Some(v) = t.get(id)? {
                out.push(dec("sources", v.value())?);
            }
        }
        Ok(out)
    }

    /// The `ml` source of a tenant.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn ml_source(&self, tenant: &str) -> Result<Option<SourceRecord>, StoreError> {
        Ok(self
            .list_sources(tenant)?
            .into_iter()
            .find(|s| s.provider == crate::ingest::Provider::Ml))
    }

    /// Applies `f` to the source `id` of `tenant` inside one transaction. `f` returns
    /// `Err(e)` to refuse without writing. `Ok(None)` when no such source in that tenant.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn modify_source<T, E, F>(
        &self,
        tenant: String,
        id: String,
        f: F,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Option<Result<T, E>>, StoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut SourceRecord) -> Result<T, E> + Send + 'static,
    {
        self.write(true, move |txn| {
            let mut t = txn.open_table(SOURCES)?;
            let Some(mut rec) = t
                .get(id.as_str())?
                .map(|v| dec::<SourceRecord>("sources", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            if rec.tenant != tenant {
                return Ok(None);
            }
            match f(&mut rec) {
                Ok(v) => {
                    t.insert(id.as_str(), enc(&rec)?.as_slice())?;
                    drop(t);
                    put_audit(txn, &mut audit)?;
                    Ok(Some(Ok(v)))
                }
                Err(e) => Ok(Some(Err(e))),
            }
        })
        .await
    }

    /// Deletes a source of `tenant`; `false` when absent there.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn delete_source(
        &self,
        tenant: String,
        id: String,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(true, move |txn| {
            let mut t = txn.open_table(SOURCES)?;
            let Some(rec) = t
                .get(id.as_str())?
                .map(|v| dec::<SourceRecord>("sources", v.value()))
                .transpose()?
            else {
                return Ok(false);
            };
            if rec.tenant != tenant {
                return Ok(false);
            }
            t.remove(id.as_str())?;
            drop(t);
            txn.open_table(TENANT_SOURCES)?
                .remove((tenant.as_str(), id.as_str()))?;
            put_audit(txn, &mut audit)?;
            Ok(true)
        })
        .await
    }

    // ----- events ------------------------------------------------------------------------

    /// The event id an earlier delivery with `replay_key` created, if within the window.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn find_delivery(
        &self,
        source: &str,
        replay_key: &str,
        since: i64,
    ) -> Result<Option<String>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(REPLAY)?;
        let Some(v) = t.get((source, replay_key))? else {
            return Ok(None);
        };
        let e: ReplayEntry = dec("replay", v.value())?;
        Ok((e.at >= since).then_some(e.event_id))
    }

    /// Stores an accepted event with its body, replay key, job, insights and audit record in
    /// one commit, unless a delivery with the same replay key won the race (then only the audit
    /// record is written and the first event id returned).
    ///
    /// # Errors
    /// [`StoreError`], including [`StoreError::InsufficientStorage`].
    pub async fn ingest_event(
        &self,
        ev: NewEvent,
        mut audit: Vec<AuditRecord>,
    ) -> Result<IngestOutcome, StoreError> {
        self.write(true, move |txn| {
            let NewEvent {
                mut record,
                body,
                replay_key,
                replay_since,
                job,
            } = ev;
            let earlier: Option<ReplayEntry> = {
                let t = txn.open_table(REPLAY)?;
                t.get((record.source.as_str(), replay_key.as_str()))?
                    .map(|v| dec("replay", v.value()))
                    .transpose()?
            };
            if let Some(e) = earlier.filter(|e| e.at >= replay_since) {
                for a in audit.iter_mut() {
                    a.resource = Some(e.event_id.clone());
                    a.detail = Some("duplicate delivery".into());
                }
                put_audit(txn, &mut audit)?;
                return Ok(IngestOutcome::Duplicate(e.event_id));
            }
            record.seq = next_seq(txn, &format!("events/{}", record.tenant))?;
            let tenant = record.tenant.clone();
            txn.open_table(EVENTS)?
                .insert(record.id.as_str(), enc(&record)?.as_slice())?;
            txn.open_table(EVENT_BODIES)?
                .insert(record.id.as_str(), body.as_ref())?;
            txn.open_table(BODY_EXPIRY)?
                .insert((record.body_expires_at, record.id.as_str()), ())?;
            txn.open_table(TENANT_EVENTS)?
                .insert((tenant.as_str(), record.seq), record.id.as_str())?;
            let entry = ReplayEntry {
                event_id: record.id.clone(),
                at: record.received_at,
            };
            txn.open_table(REPLAY)?.insert(
                (record.source.as_str(), replay_key.as_str()),
                enc(&entry)?.as_slice(),
            )?;
            if let Some((job, insights)) = job {
                txn.open_table(JOBS)?.insert(
                    (job.tenant.as_str(), job.job_id.as_str()),
                    enc(&job)?.as_slice(),
                )?;
                for mut ins in insights {
                    ins.seq = next_seq(txn, &format!("insights/{tenant}"))?;
                    txn.open_table(INSIGHTS)?
                        .insert(ins.id.as_str(), enc(&ins)?.as_slice())?;
                    txn.open_table(TENANT_INSIGHTS)?
                        .insert((tenant.as_str(), ins.seq), ins.id.as_str())?;
                }
            }
            put_audit(txn, &mut audit)?;
            Ok(IngestOutcome::Stored(Box::new(record)))
        })
        .await
    }

    /// One event of `tenant` (other tenants' events are `None`, like missing ones).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_event(&self, tenant: &str, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(EVENTS)?;
        let rec: Option<EventRecord> = t.get(id)?.map(|v| dec("events", v.value())).transpose()?;
        Ok(rec.filter(|e| e.tenant == tenant))
    }

    /// The raw body of an event of `tenant`: `Some(None)` when purged.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_event_body(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<EventWithBody>, StoreError> {
        let Some(rec) = self.get_event(tenant, id)? else {
            return Ok(None);
        };
        let r = self.read()?;
        let t = r.open_table(EVENT_BODIES)?;
        let body = t.get(id)?.map(|v| v.value().to_vec());
        Ok(Some((rec, body)))
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
        let idx = r.open_table(TENANT_EVENTS)?;
        let t = r.open_table(EVENTS)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items = Vec::new();
        let mut next = None;
        for (scanned, item) in idx
            .range((tenant, 0u64)..(tenant, upper))?
            .rev()
            .enumerate()
        {
            let (k, v) = item?;
            if items.len() == limit {
                next = items.last().map(|e: &EventRecord| e.seq);
                break;
            }
            if scanned == SCAN_BUDGET {
                next = Some(k.value().1 + 1);
                break;
            }
            if let Some(ev) = t.get(v.value())? {
                let rec: EventRecord = dec("events", ev.value())?;
                if source.is_none_or(|s| s == rec.source) {
                    items.push(rec);
                }
            }
        }
        Ok(Page {
            items,
            next_cursor: next,
        })
    }

    /// Deletes raw bodies whose retention ended before `now`; metadata, digests and replay keys
    /// stay. Returns how many were purged.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_bodies(&self, now: i64) -> Result<usize, StoreError> {
        self.write(false, move |txn| {
            let mut expired: Vec<(i64, String)> = Vec::new();
            {
                let t = txn.open_table(BODY_EXPIRY)?;
                for item in t.range((i64::MIN, "")..(now, ""))? {
                    let (k, _) = item?;
                    let (at, id) = k.value();
                    expired.push((at, id.to_string()));
                    if expired.len() >= 10_000 {
                        break;
                    }
                }
            }
            let mut events = txn.open_table(EVENTS)?;
            let mut bodies = txn.open_table(EVENT_BODIES)?;
            let mut idx = txn.open_table(BODY_EXPIRY)?;
            for (at, id) in &expired {
                bodies.remove(id.as_str())?;
                idx.remove((*at, id.as_str()))?;
                let rec = events
                    .get(id.as_str())?
                    .map(|v| dec::<EventRecord>("events", v.value()))
                    .transpose()?;
                if let Some(mut rec) = rec {
                    rec.body_purged = true;
                    events.insert(id.as_str(), enc(&rec)?.as_slice())?;
                }
            }
            Ok(expired.len())
        })
        .await
    }

    // ----- insights ----------------------------------------------------------------------

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
        let r = self.read()?;
        let idx = r.open_table(TENANT_INSIGHTS)?;
        let t = r.open_table(INSIGHTS)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items: Vec<InsightRecord> = Vec::new();
        let mut next = None;
        for (scanned, item) in idx
            .range((tenant, 0u64)..(tenant, upper))?
            .rev()
            .enumerate()
        {
            let (k, v) = item?;
            if scanned == SCAN_BUDGET {
                // Continue from here on the next page, even if this page is short.
                next = Some(k.value().1 + 1);
                break;
            }
            if let Some(raw) = t.get(v.value())? {
                let rec: InsightRecord = dec("insights", raw.value())?;
                if job_id.is_some_and(|j| j != rec.job_id)
                    || status.is_some_and(|s| s != rec.status)
                {
                    continue;
                }
                if items.len() == limit {
                    next = items.last().map(|i| i.seq);
                    break;
                }
                items.push(rec);
            }
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
        decision: crate::ingest::Decision,
        mut audit: Vec<AuditRecord>,
    ) -> Result<DecideOutcome, StoreError> {
        self.write(true, move |txn| {
            let mut t = txn.open_table(INSIGHTS)?;
            let Some(mut rec) = t
                .get(id.as_str())?
                .map(|v| dec::<InsightRecord>("insights", v.value()))
                .transpose()?
            else {
                return Ok(DecideOutcome::NotFound);
            };
            if rec.tenant != tenant {
                return Ok(DecideOutcome::NotFound);
            }
            if rec.status != InsightStatus::Pending {
                return Ok(DecideOutcome::AlreadyDecided(rec));
            }
            rec.status = status;
            rec.decision = Some(decision);
            t.insert(id.as_str(), enc(&rec)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(DecideOutcome::Decided(rec))
        })
        .await
    }

    // ----- audit -------------------------------------------------------------------------

    /// Audit records of `tenant` (or `_appliance`), newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_audit(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<u64>,
    ) -> Result<Page<AuditRecord>, StoreError> {
        // The records are the audit log's entries; no second copy is kept.
        let origin = self.audit_origin(tenant);
        let r = self.read()?;
        let t = r.open_table(LOG_ENTRIES)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items: Vec<AuditRecord> = Vec::new();
        let mut next = None;
        for item in t
            .range((origin.as_str(), 0u64)..(origin.as_str(), upper))?
            .rev()
        {
            let (_, v) = item?;
            if items.len() == limit {
                next = items.last().map(|a| a.index);
                break;
            }
            items.push(dec("audit", v.value())?);
        }
        Ok(Page {
            items,
            next_cursor: next,
        })
    }
}

fn put_source(txn: &WriteTransaction, source: &SourceRecord) -> Result<(), StoreError> {
    txn.open_table(SOURCES)?
        .insert(source.id.as_str(), enc(source)?.as_slice())?;
    txn.open_table(TENANT_SOURCES)?
        .insert((source.tenant.as_str(), source.id.as_str()), ())?;
    Ok(())
}

fn find_ml_in(txn: &WriteTransaction, tenant: &str) -> Result<Option<String>, StoreError> {
    let idx = txn.open_table(TENANT_SOURCES)?;
    let t = txn.open_table(SOURCES)?;
    for item in idx.range((tenant, "")..)? {
        let (k, _) = item?;
        let (tn, id) = k.value();
        if tn != tenant {
            break;
        }
        if let Some(v) = t.get(id)? {
            let rec: SourceRecord = dec("sources", v.value())?;
            if rec.provider == crate::ingest::Provider::Ml {
                return Ok(Some(rec.id));
            }
        }
    }
    Ok(None)
}
