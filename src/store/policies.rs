//! Per-tenant Cedar policy texts (one record per tenant, [`TenantPolicyRecord`]); the server
//! compiles them at start and after every change ([`crate::authz::Authorizer`]).

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::authz::TenantPolicyRecord;

impl Store {
    /// Stores `record` as its tenant's policies (replacing earlier ones; an empty text
    /// removes them), with `audit` in the same commit.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_tenant_policies(
        &self,
        record: TenantPolicyRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        let bytes = record.text.len() as u64;
        self.write(WriteClass::Data(bytes), move |b| {
            let mut t = b.open_table(TENANT_POLICIES)?;
            if record.text.is_empty() {
                t.remove(record.tenant.as_str())?;
            } else {
                t.insert(record.tenant.as_str(), enc(&record)?.as_slice())?;
            }
            drop(t);
            put_audit(b, &mut audit)?;
            Ok(())
        })
        .await
    }

    /// The tenant's stored policies, if it has any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_tenant_policies(
        &self,
        tenant: &str,
    ) -> Result<Option<TenantPolicyRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TENANT_POLICIES)?;
        t.get(tenant)?
            .map(|v| dec("tenant_policies", v.value()))
            .transpose()
    }

    /// Every tenant's stored policies, by tenant id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_tenant_policies(&self) -> Result<Vec<TenantPolicyRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TENANT_POLICIES)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(dec("tenant_policies", v.value())?);
        }
        Ok(out)
    }
}
