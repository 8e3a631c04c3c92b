//! What the compliance view reads beyond the other tables: the last checkpoint it saw of each
//! log (so the next view proves the log consistent with it), and the retention items that are
//! overdue (due but not purged).

use super::codec::{dec, open};
use super::events::EventRow;
use super::{ARTIFACT_EXPIRY, ARTIFACTS, COMPLIANCE_VIEWS, EVENTS, SEQ, Store, StoreError};
use crate::evidence::artifact::ArtifactRecord;
use crate::tlog::merkle::Hash;

/// Most items [`Store::overdue_retention`] looks at per kind (the answer says when it stopped).
pub const OVERDUE_SCAN: usize = 10_000;

/// Retention items of a tenant that should have been purged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overdue {
    /// Raw bodies past their expiry and still stored.
    pub bodies: u64,
    /// Artifact contents past their retention, not on legal hold, still stored.
    pub artifacts: u64,
    /// When the longest-overdue item was due, unix seconds.
    pub oldest_due: Option<i64>,
}

impl Store {
    /// The checkpoint (size, root) the compliance view last verified for log `origin`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn compliance_view(&self, origin: &str) -> Result<Option<(u64, Hash)>, StoreError> {
        let r = self.read()?;
        let t = match r.open_table(COMPLIANCE_VIEWS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(v) = t.get(origin)? else {
            return Ok(None);
        };
        let (size, root) = v.value();
        Ok(Some((size, root)))
    }

    /// Records (size, root) as the checkpoint the compliance view verified for log `origin`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_compliance_view(
        &self,
        origin: &str,
        size: u64,
        root: Hash,
    ) -> Result<(), StoreError> {
        let origin = origin.to_string();
        self.write(super::WriteClass::Exempt, move |b| {
            b.open_table(COMPLIANCE_VIEWS)?
                .insert(origin.as_str(), (size, root))?;
            Ok(())
        })
        .await
    }

    /// Counts `tenant`'s retention items due before `before` (unix seconds) that are still
    /// stored: raw bodies from the purge cursor on, artifacts by their expiry index (legal
    /// holds excluded). Looks at most [`OVERDUE_SCAN`] items of each kind.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn overdue_retention(&self, tenant: &str, before: i64) -> Result<Overdue, StoreError> {
        let r = self.read()?;
        let mut out = Overdue::default();
        let note = |at: i64, out: &mut Overdue| {
            out.oldest_due = Some(out.oldest_due.map_or(at, |o| o.min(at)));
        };
        let cursor = r
            .open_table(SEQ)?
            .get(format!("purge/bodies/{tenant}").as_str())?
            .map(|v| v.value())
            .unwrap_or(0);
        let events = r.open_table(EVENTS)?;
        for item in events
            .range((tenant, cursor)..(tenant, u64::MAX))?
            .take(OVERDUE_SCAN)
        {
            let (_, v) = item?;
            let (row, _): (EventRow, u64) = open("events", v.value())?;
            if row.body_expires_at >= before {
                break;
            }
            if !row.body_purged {
                out.bodies += 1;
                note(row.body_expires_at, &mut out);
            }
        }
        let expiry = r.open_table(ARTIFACT_EXPIRY)?;
        let meta = r.open_table(ARTIFACTS)?;
        for item in expiry
            .range((i64::MIN, "", "", "")..(before, "", "", ""))?
            .take(OVERDUE_SCAN)
        {
            let (k, _) = item?;
            let (at, tn, run, id) = k.value();
            if tn != tenant {
                continue;
            }
            let Some(v) = meta.get((tn, run, id))? else {
                continue;
            };
            let rec: ArtifactRecord = dec("artifacts", v.value())?;
            if !rec.legal_hold && !rec.purged {
                out.artifacts += 1;
                note(at, &mut out);
            }
        }
        Ok(out)
    }
}
