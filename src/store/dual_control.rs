//! Dual-control requests (tenant exports and deletions), each stored with the audit record of
//! its change in the same commit. The approval that completes a deletion is
//! [`Store::approve_deletion`] (in `tenants`), which carries the deletion out in that commit.

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::{DUAL_CONTROL, Store, StoreError, WriteClass};
use crate::audit::AuditRecord;
use crate::identity::approval::DualControlRequest;

impl Store {
    /// Stores a new request.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_request(
        &self,
        request: DualControlRequest,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.write(WriteClass::Data(0), move |txn| {
            txn.open_table(DUAL_CONTROL)?.insert(
                (request.tenant.as_str(), request.id.as_str()),
                enc(&request)?.as_slice(),
            )?;
            put_audit(txn, &mut audit)?;
            Ok(())
        })
        .await
    }

    /// Request `id` of `tenant` (another tenant's is `None`, like a missing one).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_request(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<DualControlRequest>, StoreError> {
        let r = self.read()?;
        let t = match r.open_table(DUAL_CONTROL) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        t.get((tenant, id))?
            .map(|v| dec("dual_control", v.value()))
            .transpose()
    }

    /// Applies `change` to request `id` of `tenant` in one transaction: when it returns `Ok`
    /// the changed request and `audit` are committed together; when it returns `Err` nothing
    /// is written. `None` when there is no such request.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn update_request<T: Send + 'static, E: Send + 'static>(
        &self,
        tenant: &str,
        id: &str,
        change: impl FnOnce(&mut DualControlRequest) -> Result<T, E> + Send + 'static,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Option<Result<(DualControlRequest, T), E>>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.write(WriteClass::Data(0), move |txn| {
            let mut t = txn.open_table(DUAL_CONTROL)?;
            let Some(mut request) = t
                .get((tenant.as_str(), id.as_str()))?
                .map(|v| dec::<DualControlRequest>("dual_control", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let out = match change(&mut request) {
                Ok(out) => out,
                Err(e) => return Ok(Some(Err(e))),
            };
            t.insert((tenant.as_str(), id.as_str()), enc(&request)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(Some(Ok((request, out))))
        })
        .await
    }
}
