//! Webhook sources. Reads are answered from an in-memory copy of the `sources` table, filled
//! at open and replaced after every commit that changed a source, so the ingestion hot path
//! reads no database for them.

use std::collections::HashMap;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::ingest::{Provider, SourceRecord};

/// The in-memory copy of the `sources` table.
#[derive(Default)]
pub(crate) struct SourceCache {
    by_id: HashMap<String, Arc<SourceRecord>>,
    /// Tenant → id of its `ml` source.
    ml: HashMap<String, String>,
}

pub(crate) fn load_sources(db: &Database) -> Result<SourceCache, StoreError> {
    let r = db.begin_read()?;
    let t = r.open_table(SOURCES)?;
    let mut cache = SourceCache::default();
    for item in t.iter()? {
        let (_, v) = item?;
        let rec: SourceRecord = dec("sources", v.value())?;
        if rec.provider == Provider::Ml {
            cache.ml.insert(rec.tenant.clone(), rec.id.clone());
        }
        cache.by_id.insert(rec.id.clone(), Arc::new(rec));
    }
    Ok(cache)
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
        let stored = self
            .write(WriteClass::Data(0), move |txn| {
                if source.provider == Provider::Ml && find_ml_in(txn, &source.tenant)?.is_some() {
                    return Ok(false);
                }
                put_source(txn, &source)?;
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
        let fresh = Arc::new(load_sources(&self.inner.db)?);
        match self.inner.sources.write() {
            Ok(mut g) => *g = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
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
        let out = self
            .write(WriteClass::Data(0), move |txn| {
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

pub(crate) fn put_source(txn: &WriteTransaction, source: &SourceRecord) -> Result<(), StoreError> {
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
            if rec.provider == Provider::Ml {
                return Ok(Some(rec.id));
            }
        }
    }
    Ok(None)
}
