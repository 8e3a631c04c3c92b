//! Tenants, the one-time bootstrap, `meta` values and tenant deletion (a crypto-shred).

use redb::{ReadableTable, WriteTransaction};

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::identity::approval::{DualControlRequest, RequestKind};
use crate::identity::user::UserRecord;
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
        let ring = self.inner.keyring.clone();
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
                super::sources::put_source(txn, &ring, &ml_source)?;
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

/// What deleting a tenant removed (DESIGN §3: a crypto-shred of its content).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantDeletion {
    /// Raw event bodies removed.
    pub bodies: u64,
    /// Insights removed.
    pub insights: u64,
    /// Artifacts' bytes removed.
    pub artifacts: u64,
    /// Webhook sources (and their secrets) removed.
    pub sources: u64,
    /// Integrations (and their credentials and deliveries) removed.
    pub integrations: u64,
    /// Whether the content key was destroyed now (`false` if it was never made).
    pub key_destroyed: bool,
}

/// Removes every row of `table` keyed `(tenant, seq)`; how many.
fn remove_seq_rows(
    txn: &WriteTransaction,
    table: TableDefinition<(&str, u64), &[u8]>,
    tenant: &str,
) -> Result<u64, StoreError> {
    let mut t = txn.open_table(table)?;
    let mut n = 0u64;
    t.retain_in((tenant, 0u64)..=(tenant, u64::MAX), |_, _| {
        n += 1;
        false
    })?;
    Ok(n)
}

/// Marks `tenant` deleted and removes its content and sources in `txn`.
fn delete_tenant_in(
    txn: &WriteTransaction,
    tenant: &str,
    now: i64,
    reason: String,
) -> Result<TenantDeletion, StoreError> {
    {
        let mut t = txn.open_table(TENANTS)?;
        let mut record = t
            .get(tenant)?
            .map(|v| dec::<Tenant>("tenants", v.value()))
            .transpose()?
            .ok_or_else(|| StoreError::Aborted(format!("tenant {tenant} vanished")))?;
        record.status = crate::identity::tenant::TenantStatus::Deleted;
        record.status_changed_at = Some(now);
        record.status_reason = Some(reason);
        t.insert(tenant, enc(&record)?.as_slice())?;
    }
    let mut out = TenantDeletion {
        bodies: remove_seq_rows(txn, EVENT_BODIES, tenant)?,
        insights: remove_seq_rows(txn, INSIGHTS, tenant)?,
        ..TenantDeletion::default()
    };
    {
        // Every key of the tenant sorts between (tenant, "", "") and (tenant + NUL, "", "").
        let end = format!("{tenant}\0");
        let mut blobs = txn.open_table(ARTIFACT_BLOBS)?;
        blobs.retain_in((tenant, "", "")..(end.as_str(), "", ""), |_, _| {
            out.artifacts += 1;
            false
        })?;
    }
    {
        let mut index = txn.open_table(TENANT_SOURCES)?;
        let mut ids = Vec::new();
        for item in index.range((tenant, "")..)? {
            let (k, _) = item?;
            let (tn, id) = k.value();
            if tn != tenant {
                break;
            }
            ids.push(id.to_string());
        }
        let mut sources = txn.open_table(SOURCES)?;
        for id in &ids {
            sources.remove(id.as_str())?;
            index.remove((tenant, id.as_str()))?;
        }
        out.sources = ids.len() as u64;
    }
    out.integrations = super::integrations::remove_integrations_of(txn, tenant)?;
    Ok(out)
}

/// Brings the key file in line with the database at open: a tenant recorded as deleted has its
/// key destroyed (a deletion whose key-file write failed after its commit is finished here)
/// and gets no new one; a live tenant whose content is stored must have its key, or the open
/// is refused (a missing, emptied or foreign key file), since serving that content as purged,
/// and minting a new key for it, would lose it without a word.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the first tenant without its key; I/O of the key file.
pub(crate) fn reconcile_keys(db: &Database, keys: &TenantKeys) -> Result<(), StoreError> {
    /// The one member this needs (records of every schema have it, or are active).
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        status: crate::identity::tenant::TenantStatus,
    }
    let r = db.begin_read()?;
    let tenants = r.open_table(TENANTS)?;
    let bodies = r.open_table(EVENT_BODIES)?;
    let insights = r.open_table(INSIGHTS)?;
    let blobs = r.open_table(ARTIFACT_BLOBS)?;
    for item in tenants.iter()? {
        let (k, v) = item?;
        let tenant = k.value();
        let Status { status } = dec("tenants", v.value())?;
        if status == crate::identity::tenant::TenantStatus::Deleted {
            if keys.shred(tenant)? {
                tracing::warn!(%tenant, "destroyed the content key of a deleted tenant");
            }
            continue;
        }
        if keys.get(tenant).is_some() {
            continue;
        }
        let end = format!("{tenant}\0");
        let has_content = bodies
            .range((tenant, 0u64)..=(tenant, u64::MAX))?
            .next()
            .is_some()
            || insights
                .range((tenant, 0u64)..=(tenant, u64::MAX))?
                .next()
                .is_some()
            || blobs
                .range((tenant, "", "")..(end.as_str(), "", ""))?
                .next()
                .is_some();
        if has_content {
            return Err(StoreError::Corrupt {
                table: "tenant keys",
                message: format!(
                    "tenant {tenant} has encrypted content but {} holds no key for it: put back \
                     the key file that belongs to this database (the one backed up with it); \
                     refusing to start rather than serve that content as purged",
                    keys.path().display()
                ),
            });
        }
    }
    Ok(())
}

impl Store {
    /// Applies `approve` to deletion request `id` of `tenant` in one transaction with `audit`;
    /// when it reports the request approved, the same commit records `system` (in the
    /// appliance's `system` log), marks the tenant deleted (403
    /// `TENANT_DELETED` to everyone but appliance-admins' reads) and removes its raw bodies,
    /// insights, artifacts' bytes and webhook sources; then its content key is destroyed
    /// ([`TenantKeys::shred`]), so every copy of its content, freed pages and backups
    /// included, is unreadable. Its logs (entries, hashes, checkpoints) and its audit trail
    /// stay. `None` when there is no such request.
    ///
    /// # Errors
    /// [`StoreError`]; the key file's I/O error after the commit (the next start destroys
    /// the key).
    pub async fn approve_deletion<E: Send + 'static>(
        &self,
        tenant: &str,
        id: &str,
        approve: impl FnOnce(&mut DualControlRequest) -> Result<bool, E> + Send + 'static,
        mut audit: Vec<AuditRecord>,
        system: AuditRecord,
        now: i64,
    ) -> Result<Option<Result<(DualControlRequest, Option<TenantDeletion>), E>>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let shred_tenant = tenant.clone();
        let keys = self.inner.keys.clone();
        let out = self
            .write(WriteClass::Exempt, move |txn| {
                let t = txn.open_table(DUAL_CONTROL)?;
                let Some(mut request) = t
                    .get((tenant.as_str(), id.as_str()))?
                    .map(|v| dec::<DualControlRequest>("dual_control", v.value()))
                    .transpose()?
                    .filter(|r| r.kind == RequestKind::Deletion)
                else {
                    return Ok(None);
                };
                drop(t);
                // An approval counts only while its user may still give it (the rule is the
                // domain's; this supplies each approver's roles as they are now).
                {
                    let users = txn.open_table(USERS)?;
                    let mut current = std::collections::HashMap::new();
                    for a in &request.approvals {
                        let roles = users
                            .get(a.user.as_str())?
                            .map(|v| dec::<UserRecord>("users", v.value()))
                            .transpose()?
                            .filter(|u| {
                                u.disabled_at.is_none() && u.tenant.as_deref() == Some(&tenant)
                            })
                            .map(|u| u.roles);
                        current.insert(a.user.clone(), roles);
                    }
                    request.drop_stale_approvals(|user| current.get(user).cloned().flatten());
                }
                let mut t = txn.open_table(DUAL_CONTROL)?;
                let approved = match approve(&mut request) {
                    Ok(a) => a,
                    Err(e) => return Ok(Some(Err(e))),
                };
                t.insert((tenant.as_str(), id.as_str()), enc(&request)?.as_slice())?;
                drop(t);
                let deletion = if approved {
                    // Content writes later in this batch, or in the next ones, are refused.
                    keys.retire(&tenant);
                    let d = delete_tenant_in(
                        txn,
                        &tenant,
                        now,
                        format!("deleted under dual control ({id})"),
                    )?;
                    audit.push(system);
                    for a in audit.iter_mut() {
                        a.detail = Some(format!(
                            "tenant {tenant} deleted under dual control ({id}): content key \
                             destroyed; {} raw bodies, {} insights, {} artifacts, {} webhook \
                             sources and {} integrations removed; logs and audit trail kept",
                            d.bodies, d.insights, d.artifacts, d.sources, d.integrations
                        ));
                    }
                    Some(d)
                } else {
                    None
                };
                put_audit(txn, &mut audit)?;
                Ok(Some(Ok((request, deletion))))
            })
            .await?;
        let Some(Ok((request, Some(mut deletion)))) = out else {
            return Ok(out);
        };
        self.reload_sources()?;
        self.reload_subscriptions()?;
        deletion.key_destroyed = self.inner.keys.shred(&shred_tenant)?;
        Ok(Some(Ok((request, Some(deletion)))))
    }
}
