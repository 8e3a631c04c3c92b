//! Integrations: stored with their credentials sealed ([`crate::seal`]), and the in-memory
//! subscription table the writer consults to enqueue deliveries in the commit that
//! acknowledges what they report ([`super::outbox`]).

use std::collections::HashMap;

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::outbox::{drop_due_of, remove_deliveries_of, restore_due_of};
use super::*;
use crate::audit::AuditRecord;
use crate::delivery::integration::{
    IntegrationRecord, IntegrationStatus, MAX_INTEGRATIONS_PER_TENANT,
};
use crate::seal::SealContext;

/// The enabled integrations of every tenant with their subscription masks
/// ([`crate::delivery::integration::EventType::bit`]).
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    by_tenant: HashMap<String, Vec<(String, u8)>>,
}

impl Subscriptions {
    /// The integrations of `tenant` subscribed to any type in `mask`, with their masks.
    pub(crate) fn of(&self, tenant: &str) -> &[(String, u8)] {
        self.by_tenant.get(tenant).map_or(&[], Vec::as_slice)
    }

    /// Whether no integration is enabled anywhere (the writer then skips the outbox).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }

    /// Every enabled integration, `(tenant, id)`.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.by_tenant
            .iter()
            .flat_map(|(t, ids)| ids.iter().map(move |(id, _)| (t.clone(), id.clone())))
            .collect()
    }
}

/// Reads the enabled integrations' subscriptions (at open and after each integration write).
pub(crate) fn load_subscriptions(db: &Database) -> Result<Subscriptions, StoreError> {
    let r = db.begin_read()?;
    let t = r.open_table(INTEGRATIONS)?;
    let mut subs = Subscriptions::default();
    for item in t.iter()? {
        let (_, v) = item?;
        let rec: IntegrationRecord = dec("integrations", v.value())?;
        if rec.status == IntegrationStatus::Enabled {
            subs.by_tenant
                .entry(rec.tenant.clone())
                .or_default()
                .push((rec.id.clone(), rec.mask()));
        }
    }
    Ok(subs)
}

fn secret_field(n: u32) -> String {
    format!("secret:{n}")
}

/// Applies `f` (context, stored value → new stored value) to every sealed value of `rec`.
fn map_sealed(
    rec: &mut IntegrationRecord,
    f: &mut dyn FnMut(&SealContext<'_>, &str) -> Result<String, StoreError>,
) -> Result<(), StoreError> {
    let (tenant, id) = (rec.tenant.clone(), rec.id.clone());
    for s in &mut rec.secrets {
        let field = secret_field(s.n);
        s.value = f(
            &SealContext {
                tenant: &tenant,
                record: &id,
                field: &field,
            },
            &s.value,
        )?;
    }
    if let Some(token) = &mut rec.hec_token {
        *token = f(
            &SealContext {
                tenant: &tenant,
                record: &id,
                field: "hec_token",
            },
            token,
        )?;
    }
    // Extra headers often carry the receiver's own credential (`Authorization`, an API key).
    for (name, value) in &mut rec.headers {
        let field = format!("header:{name}");
        *value = f(
            &SealContext {
                tenant: &tenant,
                record: &id,
                field: &field,
            },
            value,
        )?;
    }
    Ok(())
}

/// Rewrites every sealed value of the `integrations` table with `f` (data-key rotation);
/// how many values.
///
/// # Errors
/// [`StoreError`]; the first error of `f`.
pub(crate) fn rewrite_secrets(
    txn: &redb::WriteTransaction,
    f: &mut dyn FnMut(&SealContext<'_>, &str) -> Result<String, StoreError>,
) -> Result<u64, StoreError> {
    let mut t = txn.open_table(INTEGRATIONS)?;
    let mut records = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        records.push(dec::<IntegrationRecord>("integrations", v.value())?);
    }
    let mut done = 0u64;
    for mut rec in records {
        map_sealed(&mut rec, &mut |ctx, value| {
            done += 1;
            f(ctx, value)
        })?;
        t.insert(
            (rec.tenant.as_str(), rec.id.as_str()),
            enc(&rec)?.as_slice(),
        )?;
    }
    Ok(done)
}

/// Appends every sealed value of the `integrations` table to `out`.
///
/// # Errors
/// [`StoreError`] reading the table or decoding a record.
pub(crate) fn sealed_values(
    r: &redb::ReadTransaction,
    out: &mut Vec<super::sealed::SealedValue>,
) -> Result<(), StoreError> {
    let t = r.open_table(INTEGRATIONS)?;
    for item in t.iter()? {
        let (_, v) = item?;
        let mut rec: IntegrationRecord = dec("integrations", v.value())?;
        map_sealed(&mut rec, &mut |ctx, value| {
            out.push(super::sealed::SealedValue {
                table: "integrations",
                tenant: ctx.tenant.to_string(),
                record: ctx.record.to_string(),
                field: ctx.field.to_string(),
                sealed: value.to_string(),
            });
            Ok(value.to_string())
        })?;
    }
    Ok(())
}

/// Outcome of an integration update.
#[derive(Debug)]
pub enum IntegrationUpdate<T, E> {
    /// Written; the closure's value and the record as stored (credentials in clear).
    Done(T, Box<IntegrationRecord>),
    /// The closure refused; nothing written.
    Refused(E),
    /// No such integration in the tenant.
    Missing,
}

impl Store {
    fn seal_record(&self, rec: &IntegrationRecord) -> Result<IntegrationRecord, StoreError> {
        let mut out = rec.clone();
        map_sealed(&mut out, &mut |ctx, plain| {
            self.seal_secret(ctx, plain.as_bytes())
        })?;
        Ok(out)
    }

    fn open_record(&self, mut rec: IntegrationRecord) -> Result<IntegrationRecord, StoreError> {
        map_sealed(&mut rec, &mut |ctx, sealed| {
            let plain = self.open_secret(ctx, sealed)?;
            String::from_utf8(plain).map_err(|_| {
                self.damaged(format!(
                    "the sealed {} of {} is not UTF-8",
                    ctx.field, ctx.record
                ))
            })
        })?;
        Ok(rec)
    }

    fn refresh_subscriptions(&self) -> Result<(), StoreError> {
        // Serialised, so a slower reload of an older state cannot overwrite a newer one.
        let _one = match self.inner.shared.reload.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let subs = load_subscriptions(&self.inner.db)?;
        match self.inner.shared.subscriptions.write() {
            Ok(mut s) => *s = Arc::new(subs),
            Err(p) => *p.into_inner() = Arc::new(subs),
        }
        Ok(())
    }

    /// Stores a new integration (credentials sealed) with its audit records, in one commit;
    /// `false` (nothing written) when the tenant has
    /// [`MAX_INTEGRATIONS_PER_TENANT`] already.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_integration(
        &self,
        rec: IntegrationRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let sealed = enc(&self.seal_record(&rec)?)?;
        let keys = self.inner.keys.clone();
        let stored = self
            .write(WriteClass::Data(2048), move |b| {
                if keys.is_retired(&rec.tenant) {
                    return Ok(Err(StoreError::TenantDeleted(rec.tenant.clone())));
                }
                let mut t = b.open_table(INTEGRATIONS)?;
                let existing = t
                    .range((rec.tenant.as_str(), "")..)?
                    .take_while(|i| i.as_ref().is_ok_and(|(k, _)| k.value().0 == rec.tenant))
                    .count();
                if existing >= MAX_INTEGRATIONS_PER_TENANT {
                    return Ok(Ok(false));
                }
                t.insert((rec.tenant.as_str(), rec.id.as_str()), sealed.as_slice())?;
                drop(t);
                put_audit(b, &mut audit)?;
                Ok(Ok(true))
            })
            .await??;
        if stored {
            self.refresh_subscriptions()?;
        }
        Ok(stored)
    }

    /// The integration `id` of `tenant`, credentials opened.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Damaged`] when a sealed credential does not open.
    pub fn get_integration(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(INTEGRATIONS)?;
        let Some(v) = t.get((tenant, id))? else {
            return Ok(None);
        };
        let rec: IntegrationRecord = dec("integrations", v.value())?;
        self.open_record(rec).map(Some)
    }

    /// The integrations of `tenant`, by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_integrations(&self, tenant: &str) -> Result<Vec<IntegrationRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(INTEGRATIONS)?;
        let mut out = Vec::new();
        for item in t.range((tenant, "")..)? {
            let (k, v) = item?;
            if k.value().0 != tenant {
                break;
            }
            out.push(self.open_record(dec("integrations", v.value())?)?);
        }
        Ok(out)
    }

    /// Changes integration `id` of `tenant` with `f` (on the stored record, credentials
    /// opened) and writes it with `audit` in one commit. Disabling takes its pending deliveries
    /// off the due index; enabling puts them back, due at once.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn update_integration<T, E, F>(
        &self,
        tenant: &str,
        id: &str,
        now: i64,
        f: F,
        mut audit: Vec<AuditRecord>,
    ) -> Result<IntegrationUpdate<T, E>, StoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut IntegrationRecord) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let out = self
            .write(WriteClass::Data(2048), move |b| {
                let current = b
                    .open_table(INTEGRATIONS)?
                    .get((tenant.as_str(), id.as_str()))?
                    .map(|v| dec::<IntegrationRecord>("integrations", v.value()))
                    .transpose()?;
                let Some(current) = current else {
                    return Ok(IntegrationUpdate::Missing);
                };
                let mut rec = store.open_record(current)?;
                let before = rec.status;
                let value = match f(&mut rec) {
                    Ok(v) => v,
                    Err(e) => return Ok(IntegrationUpdate::Refused(e)),
                };
                let sealed = enc(&store.seal_record(&rec)?)?;
                b.open_table(INTEGRATIONS)?
                    .insert((tenant.as_str(), id.as_str()), sealed.as_slice())?;
                match (before, rec.status) {
                    (IntegrationStatus::Enabled, IntegrationStatus::Disabled) => {
                        drop_due_of(b, &tenant, &id)?;
                    }
                    (IntegrationStatus::Disabled, IntegrationStatus::Enabled) => {
                        restore_due_of(b, &tenant, &id, now)?;
                    }
                    _ => {}
                }
                put_audit(b, &mut audit)?;
                Ok(IntegrationUpdate::Done(value, Box::new(rec)))
            })
            .await?;
        self.refresh_subscriptions()?;
        Ok(out)
    }

    /// Deletes integration `id` of `tenant` and its deliveries (pending ones are not sent),
    /// with `audit`, in one commit. `false` when there is no such integration.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn delete_integration(
        &self,
        tenant: &str,
        id: &str,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let found = self
            .write(WriteClass::Exempt, move |b| {
                let removed = b
                    .open_table(INTEGRATIONS)?
                    .remove((tenant.as_str(), id.as_str()))?
                    .is_some();
                if removed {
                    remove_deliveries_of(b, &tenant, &id)?;
                    put_audit(b, &mut audit)?;
                }
                Ok(removed)
            })
            .await?;
        self.refresh_subscriptions()?;
        Ok(found)
    }

    /// Re-reads the subscriptions after a write outside this module changed integrations.
    pub(crate) fn reload_subscriptions(&self) -> Result<(), StoreError> {
        self.refresh_subscriptions()
    }
}

/// Removes every integration of a tenant being deleted, and their deliveries (in the
/// deletion's commit); how many integrations.
pub(crate) fn remove_integrations_of(
    b: &redb::WriteTransaction,
    tenant: &str,
) -> Result<u64, StoreError> {
    let ids: Vec<String> = {
        let t = b.open_table(INTEGRATIONS)?;
        let mut ids = Vec::new();
        for item in t.range((tenant, "")..)? {
            let (k, _) = item?;
            if k.value().0 != tenant {
                break;
            }
            ids.push(k.value().1.to_string());
        }
        ids
    };
    for id in &ids {
        b.open_table(INTEGRATIONS)?.remove((tenant, id.as_str()))?;
        remove_deliveries_of(b, tenant, id)?;
    }
    Ok(ids.len() as u64)
}
