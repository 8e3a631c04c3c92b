//! The free-space floor, enforced on the write path.
//!
//! The writer thread asks the [`DiskGuard`] before every group commit how many bytes the data
//! volume has above its floor (one `statvfs`, a few microseconds against a commit's
//! milliseconds), and charges every write of the batch against that budget with an estimate of
//! what it will occupy ([`estimated_cost`]), by [`WriteClass`]:
//!
//! - **data** (events, artifacts, receipts, management records) must fit above the floor, or
//!   it is refused (507) and the floor is marked reached;
//! - **audit** records may go on below the floor into the *audit reserve* (the first
//!   `audit_reserve_bytes` below it), so reads, which are audited, keep working for a
//!   while; past the reserve they are refused too and the API answers audited requests 503
//!   `AUDIT_UNAVAILABLE` rather than unrecorded;
//! - **exempt** writes (retention purges, the first-start bootstrap) are never refused.
//!
//! A background check (`server::check_disk`, every 10 s) keeps the flags fresh while no write
//! arrives.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Free bytes of the data volume (`statvfs` `f_bavail × f_frsize` for the real volume; tests
/// inject a simulated volume).
pub trait SpaceProbe: Send + Sync {
    /// Bytes available to the appliance's user.
    ///
    /// # Errors
    /// When the volume cannot be queried.
    fn available(&self) -> io::Result<u64>;
}

/// The volume holding a path.
#[derive(Debug, Clone)]
pub struct VolumeProbe(pub PathBuf);

impl SpaceProbe for VolumeProbe {
    fn available(&self) -> io::Result<u64> {
        fs4::available_space(&self.0)
    }
}

/// What a data write of `bytes` payload bytes is assumed to occupy on the volume: twice the
/// payload (the record, its log entry and copy-on-write pages until the commit frees the old
/// ones) plus 16 KiB of B-tree pages and log nodes. Measured on schema 2 with ~1 KiB events:
/// ~8.5 KiB per event, so the estimate errs on the safe side.
pub fn estimated_cost(bytes: u64) -> u64 {
    bytes.saturating_mul(2).saturating_add(16 * 1024)
}

/// What the free-space floor does to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteClass {
    /// A data write of about this many payload bytes: only above the floor.
    Data(u64),
    /// Audit records of about this many bytes: above the floor or into the audit reserve.
    Audit(u64),
    /// Never refused: purges (they give space back) and the first-start bootstrap.
    Exempt,
}

/// Bytes a batch may still occupy: above the floor (data) and above the bottom of the audit
/// reserve (audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes above the floor.
    pub data: u64,
    /// Bytes above `floor - audit_reserve`.
    pub audit: u64,
}

impl Budget {
    /// Charges `class` against the budget: `false` (and nothing charged) when it does not fit.
    pub fn charge(&mut self, class: WriteClass) -> bool {
        match class {
            WriteClass::Exempt => true,
            WriteClass::Data(bytes) => {
                let cost = estimated_cost(bytes);
                if cost > self.data {
                    return false;
                }
                self.data -= cost;
                self.audit = self.audit.saturating_sub(cost);
                true
            }
            WriteClass::Audit(bytes) => {
                let cost = estimated_cost(bytes);
                if cost > self.audit {
                    return false;
                }
                self.audit -= cost;
                self.data = self.data.saturating_sub(cost);
                true
            }
        }
    }
}

struct Floor {
    probe: Arc<dyn SpaceProbe>,
    floor: u64,
    reserve: u64,
}

/// The free-space floor of the data volume, its audit reserve, and whether either is reached.
#[derive(Default)]
pub struct DiskGuard {
    floor: RwLock<Option<Floor>>,
    low: AtomicBool,
    reserve_spent: AtomicBool,
}

impl std::fmt::Debug for DiskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskGuard")
            .field("low", &self.is_low())
            .finish_non_exhaustive()
    }
}

impl DiskGuard {
    /// Enforces `floor` bytes of free space as measured by `probe`, the first `reserve` bytes
    /// below it kept for audit records (capped at `floor`; a `floor` of 0 turns the check off).
    pub fn configure(&self, probe: Arc<dyn SpaceProbe>, floor: u64, reserve: u64) {
        let mut slot = match self.floor.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *slot = (floor > 0).then_some(Floor {
            probe,
            floor,
            reserve: reserve.min(floor),
        });
        drop(slot);
        if floor == 0 {
            self.set_low(false);
            self.set_reserve_spent(false);
        }
    }

    /// Whether even audit records are refused (the audit reserve is used up).
    pub fn is_reserve_spent(&self) -> bool {
        self.reserve_spent.load(Ordering::SeqCst)
    }

    /// Sets the reserve flag (the writer does when an audit write does not fit).
    pub fn set_reserve_spent(&self, spent: bool) {
        let was = self.reserve_spent.swap(spent, Ordering::SeqCst);
        if was != spent {
            tracing::warn!(spent, "audit reserve state changed");
        }
    }

    /// Whether data writes are refused for lack of space.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::SeqCst)
    }

    /// Sets the flag (the background check and [`budget`](Self::budget) do).
    pub fn set_low(&self, low: bool) {
        let was = self.low.swap(low, Ordering::SeqCst);
        if was != low {
            tracing::warn!(low, "free-space floor state changed");
        }
    }

    /// Measures the volume: `None` when no floor is set or the probe failed (nothing is
    /// refused on a failed probe; the flags keep their last values), otherwise what a batch may
    /// occupy, updating both flags.
    pub fn budget(&self) -> Option<Budget> {
        let slot = match self.floor.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let f = slot.as_ref()?;
        match f.probe.available() {
            Ok(free) => {
                let bottom = f.floor - f.reserve;
                self.set_low(free < f.floor);
                self.set_reserve_spent(free < bottom);
                Some(Budget {
                    data: free.saturating_sub(f.floor),
                    audit: free.saturating_sub(bottom),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read free space of the data volume");
                None
            }
        }
    }

    /// The volume now, for `/readyz` and the metrics (`None` without a floor or when the
    /// probe fails).
    pub fn measure(&self) -> Option<DiskState> {
        let slot = match self.floor.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let f = slot.as_ref()?;
        let free = f.probe.available().ok()?;
        let bottom = f.floor - f.reserve;
        Some(DiskState {
            free,
            floor: f.floor,
            reserve: f.reserve,
            reserve_left: free.saturating_sub(bottom).min(f.reserve),
        })
    }
}

/// The data volume against its floor, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskState {
    /// Free bytes.
    pub free: u64,
    /// The floor below which data writes are refused.
    pub floor: u64,
    /// The audit reserve: bytes below the floor that audit records may still use.
    pub reserve: u64,
    /// How much of the reserve is still free (`reserve` while above the floor, 0 when spent).
    pub reserve_left: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    struct Fixed(AtomicU64);
    impl SpaceProbe for Fixed {
        fn available(&self) -> io::Result<u64> {
            Ok(self.0.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn budget_is_the_space_above_the_floor_and_sets_the_flag() {
        let g = DiskGuard::default();
        assert_eq!(g.budget(), None, "no floor configured");
        let probe = Arc::new(Fixed(AtomicU64::new(100_000)));
        g.configure(probe.clone(), 40_000, 30_000);
        let b = |data, audit| Some(Budget { data, audit });
        assert_eq!(g.budget(), b(60_000, 90_000));
        assert!(!g.is_low() && !g.is_reserve_spent());
        probe.0.store(30_000, Ordering::SeqCst);
        assert_eq!(g.budget(), b(0, 20_000));
        assert!(g.is_low() && !g.is_reserve_spent());
        assert_eq!(g.measure().map(|d| d.reserve_left), Some(20_000));
        probe.0.store(5_000, Ordering::SeqCst);
        assert_eq!(g.budget(), b(0, 0));
        assert!(g.is_low() && g.is_reserve_spent());
        probe.0.store(90_000, Ordering::SeqCst);
        assert_eq!(g.budget(), b(50_000, 80_000));
        assert!(
            !g.is_low() && !g.is_reserve_spent(),
            "the flags clear once space is back"
        );
        g.configure(probe, 0, 0);
        assert_eq!(g.budget(), None);
    }

    #[test]
    fn charges_by_class() {
        let mut b = Budget {
            data: 40_000,
            audit: 60_000,
        };
        assert!(b.charge(WriteClass::Data(1_000))); // 18,384 bytes estimated
        assert_eq!(
            b,
            Budget {
                data: 21_616,
                audit: 41_616
            }
        );
        assert!(!b.charge(WriteClass::Data(10_000)));
        assert!(b.charge(WriteClass::Audit(10_000))); // 36,384
        assert_eq!(
            b,
            Budget {
                data: 0,
                audit: 5_232
            }
        );
        assert!(!b.charge(WriteClass::Audit(0)));
        assert!(b.charge(WriteClass::Exempt));
    }
}
