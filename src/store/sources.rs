//! Webhook sources. Reads are answered from an in-memory copy of the `sources` table, filled
//! at open and replaced after every commit that changed a source, so the ingestion hot path
//! reads no database for them.
//!
//! **Secrets are sealed at rest** (schema 4, [`crate::seal`]): a stored record is the JSON of
//! [`SourceRecord`] whose every `secrets[].value` is a sealed value
//! (`v1:<kid>:<nonce>:<ciphertext>`), bound to [`SealContext`] `{tenant: the source's tenant,
//! record: the source id, field: "secret:<n>"}`. `n` is the secret's slot number
//! ([`crate::ingest::SecretEntry::n`], what `DELETE …/secrets/{n}` names), fixed for the
//! secret's life: a rotation appends the highest number plus one and a deletion removes the
//! slot, so `n` names the secret across every rewrite of the record and no rewrite needs to
//! reseal. (Like any binding it does not stop an old sealed value of the same slot from being
//! put back by someone who can write the file; it stops values moving between slots, sources
//! and tenants.) [`put_source`] seals, the cache loader and [`Store::modify_source`] open:
//! above this module sources only ever hold plaintext.

use std::collections::HashMap;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::sealed::{SealedValue, seal_err};
use super::*;
use crate::audit::AuditRecord;
use crate::ingest::{Provider, SourceRecord};
use crate::seal::{Keyring, SealContext};

/// The in-memory copy of the `sources` table.
#[derive(Default)]
pub(crate) struct SourceCache {
    by_id: HashMap<String, Arc<SourceRecord>>,
    /// Tenant → id of its `ml` source.
    ml: HashMap<String, String>,
}

/// The field a source's secret `n` is sealed for (see the module docs).
fn secret_field(n: u32) -> String {
    format!("secret:{n}")
}

/// Replaces every secret value of `rec` by `f(context, value)`.
fn map_secrets<E>(
    rec: &mut SourceRecord,
    mut f: impl FnMut(&SealContext<'_>, &str) -> Result<String, E>,
) -> Result<(), E> {
    for s in &mut rec.secrets {
        let field = secret_field(s.n);
        let ctx = SealContext {
            tenant: &rec.tenant,
            record: &rec.id,
            field: &field,
        };
        s.value = f(&ctx, &s.value)?;
    }
    Ok(())
}

/// The stored form of `source`: a copy with every secret sealed under the active data key.
///
/// # Errors
/// [`StoreError::Corrupt`] when sealing fails (the RNG).
pub(crate) fn seal_source(
    ring: &Keyring,
    source: &SourceRecord,
) -> Result<SourceRecord, StoreError> {
    let mut stored = source.clone();
    map_secrets(&mut stored, |ctx, plain| {
        ring.seal(plain.as_bytes(), ctx).map_err(seal_err)
    })?;
    Ok(stored)
}

/// The plaintext form of a stored record. A secret that does not open (tampered with, moved
/// from another record) cannot verify anything: it is left out, and `damaged` says which.
fn open_source(ring: &Keyring, mut rec: SourceRecord, damaged: &mut Vec<String>) -> SourceRecord {
    let SourceRecord {
        id,
        tenant,
        secrets,
        ..
    } = &mut rec;
    let (id, tenant): (&str, &str) = (id, tenant);
    secrets.retain_mut(|s| {
        let field = secret_field(s.n);
        let ctx = SealContext {
            tenant,
            record: id,
            field: &field,
        };
        match ring
            .open(&s.value, &ctx)
            .map(String::from_utf8)
            .map_err(|e| e.to_string())
        {
            Ok(Ok(plain)) => {
                s.value = plain;
                true
            }
            Ok(Err(_)) => {
                damaged.push(format!(
                    "the sealed secret {} of source {id} in tenant {tenant}: not UTF-8",
                    s.n
                ));
                false
            }
            Err(e) => {
                damaged.push(format!(
                    "the sealed secret {} of source {id} in tenant {tenant}: {e}",
                    s.n
                ));
                false
            }
        }
    });
    rec
}

/// Reads the `sources` table into memory, opening every secret with `ring`. The second value
/// names each secret that did not open (left out of its source; see [`open_source`]).
///
/// # Errors
/// [`StoreError`] when the table cannot be read or a record does not decode.
pub(crate) fn load_sources(
    db: &Database,
    ring: &Keyring,
) -> Result<(SourceCache, Vec<String>), StoreError> {
    let r = db.begin_read()?;
    let t = r.open_table(SOURCES)?;
    let mut cache = SourceCache::default();
    let mut damaged = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        let rec = open_source(ring, dec("sources", v.value())?, &mut damaged);
        if rec.provider == Provider::Ml {
            cache.ml.insert(rec.tenant.clone(), rec.id.clone());
        }
        cache.by_id.insert(rec.id.clone(), Arc::new(rec));
    }
    Ok((cache, damaged))
}

/// Rewrites every stored source secret as `f(context, stored value)` in `txn` (the schema-4
/// migration seals plaintext, a data-key rotation reseals); how many secrets.
///
/// # Errors
/// What `f` returns; [`StoreError`] reading or writing the table. Nothing is committed then.
pub(crate) fn rewrite_secrets(
    txn: &WriteTransaction,
    f: &mut dyn FnMut(&SealContext<'_>, &str) -> Result<String, StoreError>,
) -> Result<u64, StoreError> {
    let mut t = txn.open_table(SOURCES)?;
    let mut records = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        records.push((
            k.value().to_string(),
            dec::<SourceRecord>("sources", v.value())?,
        ));
    }
    let mut done = 0u64;
    for (id, mut rec) in records {
        map_secrets(&mut rec, |ctx, value| {
            done += 1;
            f(ctx, value)
        })?;
        t.insert(id.as_str(), enc(&rec)?.as_slice())?;
    }
    Ok(done)
}

/// Appends every sealed source secret in `r` to `out`.
///
/// # Errors
/// [`StoreError`] reading the table or decoding a record.
pub(crate) fn sealed_values(
    r: &ReadTransaction,
    out: &mut Vec<SealedValue>,
) -> Result<(), StoreError> {
    let t = r.open_table(SOURCES)?;
    for item in t.iter()? {
        let (_, v) = item?;
        let rec: SourceRecord = dec("sources", v.value())?;
        for s in &rec.secrets {
            out.push(SealedValue {
                table: "sources",
                tenant: rec.tenant.clone(),
                record: rec.id.clone(),
                field: secret_field(s.n),
                sealed: s.value.clone(),
            });
        }
    }
    Ok(())
}

impl Store {
    /// Stores a new source. For `ml`, `false` when the tenant already has one.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_source(
        &self,
        source: SourceRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let ring = self.inner.keyring.clone();
        let stored = self
            .write(WriteClass::Data(0), move |txn| {
                if source.provider == Provider::Ml && find_ml_in(txn, &source.tenant)?.is_some() {
                    return Ok(false);
                }
                put_source(txn, &ring, &source)?;
                put_audit(txn, &mut audit)?;
                Ok(true)
            })
            .await?;
        self.reload_sources()?;
        Ok(stored)
    }

    /// One source by id (any tenant; callers check the tenant), from memory.
    ///
    /// # Errors
    /// Never today; kept fallible for callers that treat reads uniformly.
    pub fn get_source(&self, id: &str) -> Result<Option<SourceRecord>, StoreError> {
        Ok(self.sources().by_id.get(id).map(|s| (**s).clone()))
    }

    /// Sources of a tenant, by id, from memory.
    ///
    /// # Errors
    /// Never today.
    pub fn list_sources(&self, tenant: &str) -> Result<Vec<SourceRecord>, StoreError> {
        let cache = self.sources();
        let mut out: Vec<SourceRecord> = cache
            .by_id
            .values()
            .filter(|s| s.tenant == tenant)
            .map(|s| (**s).clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The `ml` source of a tenant, from memory.
    ///
    /// # Errors
    /// Never today.
    pub fn ml_source(&self, tenant: &str) -> Result<Option<SourceRecord>, StoreError> {
        let cache = self.sources();
        Ok(cache
            .ml
            .get(tenant)
            .and_then(|id| cache.by_id.get(id))
            .map(|s| (**s).clone()))
    }

    fn sources(&self) -> Arc<SourceCache> {
        match self.inner.sources.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the in-memory copy of the sources with the committed table. Reloads are
    /// serialised, so a later reload never installs an older snapshot.
    pub(crate) fn reload_sources(&self) -> Result<(), StoreError> {
        let _serial = match self.inner.sources_reload.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (fresh, damaged) = load_sources(&self.inner.db, &self.inner.keyring)?;
        for what in damaged {
            // Counted and logged; the source is served without that secret.
            let _ = self.damaged(what);
        }
        let fresh = Arc::new(fresh);
        match self.inner.sources.write() {
            Ok(mut g) => *g = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
    }

    /// Applies `f` to the source `id` of `tenant` inside one transaction. `f` returns
    /// `Err(e)` to refuse without writing. `Ok(None)` when no such source in that tenant.
    ///
    /// `f` sees the secrets in plaintext and the record is sealed again when written; a stored
    /// secret that does not open is not shown to `f` and so not written back (it could never
    /// verify again; the load that found it counted it as damage).
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
        let ring = self.inner.keyring.clone();
        let out = self
            .write(WriteClass::Data(0), move |txn| {
                let mut t = txn.open_table(SOURCES)?;
                let Some(stored) = t
                    .get(id.as_str())?
                    .map(|v| dec::<SourceRecord>("sources", v.value()))
                    .transpose()?
                else {
                    return Ok(None);
                };
                if stored.tenant != tenant {
                    return Ok(None);
                }
                let mut damaged = Vec::new();
                let mut rec = open_source(&ring, stored, &mut damaged);
                for what in &damaged {
                    tracing::error!(damage = %what, "a sealed secret that does not open is dropped");
                }
                match f(&mut rec) {
                    Ok(v) => {
                        t.insert(id.as_str(), enc(&seal_source(&ring, &rec)?)?.as_slice())?;
                        drop(t);
                        put_audit(txn, &mut audit)?;
                        Ok(Some(Ok(v)))
                    }
                    Err(e) => Ok(Some(Err(e))),
                }
            })
            .await?;
        self.reload_sources()?;
        Ok(out)
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
        let deleted = self
            .write(WriteClass::Data(0), move |txn| {
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
            .await?;
        self.reload_sources()?;
        Ok(deleted)
    }
}

/// Writes `source` (plaintext) with its secrets sealed under `ring`'s active key, and its
/// tenant index entry.
///
/// # Errors
/// [`StoreError`]; sealing failures as [`seal_source`].
pub(crate) fn put_source(
    txn: &WriteTransaction,
    ring: &Keyring,
    source: &SourceRecord,
) -> Result<(), StoreError> {
    txn.open_table(SOURCES)?.insert(
        source.id.as_str(),
        enc(&seal_source(ring, source)?)?.as_slice(),
    )?;
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
            if rec.provider == Provider::Ml {
                return Ok(Some(rec.id));
            }
        }
    }
    Ok(None)
}
