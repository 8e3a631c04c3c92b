//! Audit records: each is a leaf of its tenant's `audit` transparency log (the appliance
//! scope's go to the `system` log); its `index` is its leaf index and the leaf (the only copy
//! kept) is the record's RFC 8785 canonical JSON. Audit records passed to a write method are
//! written in the same transaction as the data they describe.

use super::codec::{Hole, JcsTemplate, dec};
use super::log::log_append;
use super::*;
use crate::audit::AuditRecord;

/// Appends audit records inside the batch.
pub(crate) fn put_audit(
    batch: &mut Batch<'_>,
    records: &mut [AuditRecord],
) -> Result<(), StoreError> {
    put_audit_prepared(batch, records, &[])
}

/// [`put_audit`] for records canonicalised in the request task: `templates[i]`, when present,
/// is record `i` with its `index` and `resource` members open (in that order), and the record's
/// `resource` is already set to what fills it.
pub(crate) fn put_audit_prepared(
    batch: &mut Batch<'_>,
    records: &mut [AuditRecord],
    templates: &[Option<JcsTemplate>],
) -> Result<(), StoreError> {
    for (i, rec) in records.iter_mut().enumerate() {
        let origin = audit_origin(batch.prefix, &rec.tenant);
        rec.index = batch.log_size(&origin)?;
        let entry = match (templates.get(i).and_then(Option::as_ref), &rec.resource) {
            (Some(t), Some(resource)) => t.fill(&[Hole::U64(rec.index), Hole::Str(resource)])?,
            _ => serde_json_canonicalizer::to_vec(&*rec).map_err(|e| StoreError::Corrupt {
                table: "audit",
                message: e.to_string(),
            })?,
        };
        let index = log_append(batch, &origin, &entry)?;
        debug_assert_eq!(index, rec.index);
    }
    Ok(())
}

/// Record `rec` canonicalised with its `index` and `resource` open, for
/// [`put_audit_prepared`].
pub(crate) fn audit_template(rec: &AuditRecord) -> Result<Option<JcsTemplate>, StoreError> {
    JcsTemplate::new(rec, &["index", "resource"])
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

impl Store {
    /// Appends audit records: below the free-space floor they go on into the audit reserve
    /// ([`WriteClass::Audit`]).
    ///
    /// # Errors
    /// [`StoreError::InsufficientStorage`] once the audit reserve is spent; [`StoreError`] on
    /// storage failure.
    pub async fn append_audit(
        &self,
        mut records: Vec<AuditRecord>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // A record's stored size: its bounded fields, its log entry and leaf, about 1 KiB.
        let bytes = 1024 * records.len() as u64;
        self.write(WriteClass::Audit(bytes), move |txn| {
            put_audit(txn, &mut records)?;
            Ok(records)
        })
        .await
    }

    /// Audit records of `tenant` (or `_appliance`) that pass `filter`, newest first, at most
    /// `limit`, examining at most [`crate::audit::MAX_AUDIT_SCAN`] records: `next_cursor` is
    /// set whenever older records remain to examine.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_audit(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<u64>,
        filter: &crate::audit::AuditFilter,
    ) -> Result<Page<AuditRecord>, StoreError> {
        // The records are the audit log's entries; no second copy is kept.
        let origin = self.audit_origin(tenant);
        let r = self.read()?;
        let t = r.open_table(LOG_ENTRIES)?;
        let upper = cursor.unwrap_or(u64::MAX);
        let mut items: Vec<AuditRecord> = Vec::new();
        let mut next = None;
        for (scanned, item) in t
            .range((origin.as_str(), 0u64)..(origin.as_str(), upper))?
            .rev()
            .enumerate()
        {
            let (k, v) = item?;
            let index = k.value().1;
            if items.len() == limit || scanned == crate::audit::MAX_AUDIT_SCAN {
                next = Some(index + 1);
                break;
            }
            let rec: AuditRecord = dec("audit", v.value())?;
            if filter.ends_before(&rec) {
                break;
            }
            if filter.matches(&rec) {
                items.push(rec);
            }
        }
        Ok(Page {
            items,
            next_cursor: next,
        })
    }
}
