//! Retention of raw event bodies and of replay keys, from sequence ranges: each tenant's events
//! are walked in `seq` order from a persisted cursor (`purge/bodies/<tenant>` in `seq`) and the
//! walk stops at the first body still retained, so no expiry index is written per event.
//! Bodies expire in arrival order (`received_at` + the retention period; a later change of the
//! period applies to new events from then on).

use redb::ReadableTable;

use super::codec::{open, seal};
use super::events::EventRow;
use super::*;

/// Most bodies one purge call deletes.
const PURGE_BUDGET: usize = 10_000;

impl Store {
    /// Deletes raw bodies whose retention ended before `now`, and the replay keys of those
    /// deliveries (the replay window is the retention period); metadata, digests and the
    /// evidence-log leaves stay. Walks each tenant's events in sequence order from a persisted
    /// cursor and stops at the first body still retained. Returns how many were purged.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_bodies(&self, now: i64) -> Result<usize, StoreError> {
        self.write(WriteClass::Exempt, move |b| {
            let tenants: Vec<String> = {
                let t = b.open_table(TENANTS)?;
                let mut out = Vec::new();
                for item in t.iter()? {
                    out.push(item?.0.value().to_string());
                }
                out
            };
            let mut purged = 0;
            for tenant in tenants {
                purged += purge_tenant(b, &tenant, now, PURGE_BUDGET - purged.min(PURGE_BUDGET))?;
            }
            Ok(purged)
        })
        .await
    }
}

fn purge_tenant(
    b: &mut Batch<'_>,
    tenant: &str,
    now: i64,
    budget: usize,
) -> Result<usize, StoreError> {
    let cursor_name = format!("purge/bodies/{tenant}");
    let from = b
        .seq_table()?
        .get(cursor_name.as_str())?
        .map(|v| v.value())
        .unwrap_or(0);
    let mut due: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut next = from;
    {
        let t = b.events()?;
        for item in t.range((tenant, from)..(tenant, u64::MAX))? {
            let (k, v) = item?;
            let (row, _): (EventRow, u64) = open("events", v.value())?;
            if row.body_expires_at >= now || due.len() >= budget {
                break;
            }
            next = k.value().1 + 1;
            if !row.body_purged {
                due.push((k.value().1, v.value().to_vec()));
            }
        }
    }
    if next == from {
        return Ok(0);
    }
    purge_rows(b, tenant, &due)?;
    b.seq_table()?.insert(cursor_name.as_str(), next)?;
    Ok(due.len())
}

fn purge_rows(b: &mut Batch<'_>, tenant: &str, due: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
    for (seq, raw) in due {
        let (mut row, leaf): (EventRow, u64) = open("events", raw)?;
        b.bodies()?.remove((tenant, *seq))?;
        let replay = b.replay()?;
        let owned = replay.get(row.replay)?.is_some_and(|v| v.value().0 == *seq);
        if owned {
            replay.remove(row.replay)?;
        }
        row.body_purged = true;
        b.events()?
            .insert((tenant, *seq), seal(&row, leaf)?.as_slice())?;
    }
    Ok(())
}
