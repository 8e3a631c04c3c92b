//! Tenants, the one-time bootstrap and `meta` values.

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::identity::{Tenant, TokenRecord};
use crate::ingest::SourceRecord;

/// The recorded origin prefix (meta `origin_prefix`) and whether the database is bootstrapped.
pub(crate) fn history_state(db: &Database) -> Result<(Option<String>, bool), StoreError> {
    let r = db.begin_read()?;
    let t = match r.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((None, false)),
        Err(e) => return Err(e.into()),
    };
    let prefix = match t.get("origin_prefix")? {
        Some(v) => {
            Some(
                String::from_utf8(v.value().to_vec()).map_err(|_| StoreError::Corrupt {
                    table: "meta",
                    message: "origin_prefix is not UTF-8".into(),
                })?,
            )
        }
        None => None,
    };
    Ok((prefix, t.get("bootstrapped")?.is_some()))
}

impl Store {
    /// Reads a meta value.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(META)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Creates the `default` tenant, its `ml` source and the bootstrap admin token, and records
    /// the logs' origin prefix (meta `origin_prefix`), once: only when the `bootstrapped` meta
    /// key is absent. Returns whether it ran.
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
        let ran = self
            .write(WriteClass::Exempt, move |txn| {
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
                super::sources::put_source(txn, &ml_source)?;
                txn.open_table(TOKENS)?
                    .insert(admin.id.as_str(), enc(&admin)?.as_slice())?;
                let prefix = txn.prefix.to_string();
                let mut meta = txn.open_table(META)?;
                meta.insert("bootstrapped", b"1".as_slice())?;
                meta.insert("origin_prefix", prefix.as_bytes())?;
                drop(meta);
                put_audit(txn, &mut audit)?;
                Ok(true)
            })
            .await?;
        self.reload_sources()?;
        Ok(ran)
    }

    /// Creates a tenant; `false` when the id is taken.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn create_tenant(
        &self,
        tenant: Tenant,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(WriteClass::Data(0), move |txn| {
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

    /// Changes tenant `id` with `change` and records `audit` in the same commit; `None` when
    /// there is no such tenant (nothing is written then, not even the audit).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn update_tenant(
        &self,
        id: &str,
        change: impl FnOnce(&mut Tenant) + Send + 'static,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Option<Tenant>, StoreError> {
        let id = id.to_string();
        self.write(WriteClass::Data(0), move |txn| {
            let mut t = txn.open_table(TENANTS)?;
            let Some(mut tenant) = t
                .get(id.as_str())?
                .map(|v| dec::<Tenant>("tenants", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            change(&mut tenant);
            t.insert(id.as_str(), enc(&tenant)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(Some(tenant))
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
}
