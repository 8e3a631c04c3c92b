//! Per-tenant usage counters by UTC day: what a tenant stored (events, their bytes, receipts,
//! artifacts and their bytes). Counted in the same commit as the data, so the figures are
//! exactly what was acknowledged; read by `GET /api/tenants/{t}/usage`.

use super::{Store, StoreError, USAGE};

/// A counted quantity. The discriminant is the third key element of the `usage` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum UsageMetric {
    /// Webhook events stored (duplicates are not counted).
    Events = 0,
    /// Bytes stored: raw event bodies and artifact contents.
    Bytes = 1,
    /// Signed pipeline receipts stored.
    Receipts = 2,
    /// Artifacts stored.
    Artifacts = 3,
}

/// One UTC day's counters of a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Events stored that day.
    pub events: u64,
    /// Bytes stored that day.
    pub bytes: u64,
    /// Receipts stored that day.
    pub receipts: u64,
    /// Artifacts stored that day.
    pub artifacts: u64,
}

/// The UTC day (days since the epoch) of unix second `at`.
pub fn day_of(at: i64) -> i64 {
    at.div_euclid(86_400)
}

impl Store {
    /// The counters of `tenant` for days `from..=to` (days since the epoch), one entry per day
    /// in order, zero-filled. At most 366 days are answered (`to` is clamped).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn usage(&self, tenant: &str, from: i64, to: i64) -> Result<Vec<UsageDay>, StoreError> {
        let to = to.min(from.saturating_add(365));
        let mut days: Vec<UsageDay> = (from..=to)
            .map(|day| UsageDay {
                day,
                ..UsageDay::default()
            })
            .collect();
        if days.is_empty() {
            return Ok(days);
        }
        let r = self.read()?;
        let t = match r.open_table(USAGE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(days),
            Err(e) => return Err(e.into()),
        };
        for item in t.range((tenant, from, 0u8)..=(tenant, to, u8::MAX))? {
            let (k, v) = item?;
            let (_, day, metric) = k.value();
            let Some(d) = usize::try_from(day - from)
                .ok()
                .and_then(|i| days.get_mut(i))
            else {
                continue;
            };
            let n = v.value();
            match metric {
                m if m == UsageMetric::Events as u8 => d.events = n,
                m if m == UsageMetric::Bytes as u8 => d.bytes = n,
                m if m == UsageMetric::Receipts as u8 => d.receipts = n,
                m if m == UsageMetric::Artifacts as u8 => d.artifacts = n,
                _ => {}
            }
        }
        Ok(days)
    }
}
