//! The free-space floor, enforced on the write path.
//!
//! The writer thread asks the [`DiskGuard`] before every group commit how many bytes the data
//! volume has above its floor (one `statvfs`, a few microseconds against a commit's
//! milliseconds), and charges every data write of the batch against that budget with an
//! estimate of what it will occupy ([`estimated_cost`]). A data write that does not fit is
//! refused (507) and the floor is marked reached; writes allowed below the floor (audit
//! records, deletions, retention purges) are never refused here. A background check
//! (`server::check_disk`, every 10 s) keeps the flag fresh while no write arrives.

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

struct Floor {
    probe: Arc<dyn SpaceProbe>,
    floor: u64,
}

/// The free-space floor of the data volume and whether it has been reached.
#[derive(Default)]
pub struct DiskGuard {
    floor: RwLock<Option<Floor>>,
    low: AtomicBool,
}

impl std::fmt::Debug for DiskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskGuard")
            .field("low", &self.is_low())
            .finish_non_exhaustive()
    }
}

impl DiskGuard {
    /// Enforces `floor` bytes of free space as measured by `probe` (0 turns the floor off).
    pub fn configure(&self, probe: Arc<dyn SpaceProbe>, floor: u64) {
        let mut slot = match self.floor.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *slot = (floor > 0).then_some(Floor { probe, floor });
        drop(slot);
        if floor == 0 {
            self.set_low(false);
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
    /// refused on a failed probe; the flag keeps its last value), otherwise the bytes above the
    /// floor (0 when below it), updating the flag.
    pub fn budget(&self) -> Option<u64> {
        let slot = match self.floor.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let f = slot.as_ref()?;
        match f.probe.available() {
            Ok(free) => {
                let above = free.saturating_sub(f.floor);
                self.set_low(free < f.floor);
                Some(above)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read free space of the data volume");
                None
            }
        }
    }

    /// Free bytes and the floor, for `/readyz` and the metrics (`None` without a floor).
    pub fn measure(&self) -> Option<(io::Result<u64>, u64)> {
        let slot = match self.floor.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        slot.as_ref().map(|f| (f.probe.available(), f.floor))
    }
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
        let probe = Arc::new(Fixed(AtomicU64::new(10_000)));
        g.configure(probe.clone(), 4_000);
        assert_eq!(g.budget(), Some(6_000));
        assert!(!g.is_low());
        probe.0.store(3_000, Ordering::SeqCst);
        assert_eq!(g.budget(), Some(0));
        assert!(g.is_low());
        probe.0.store(9_000, Ordering::SeqCst);
        assert_eq!(g.budget(), Some(5_000));
        assert!(!g.is_low(), "the flag clears once space is back");
        g.configure(probe, 0);
        assert_eq!(g.budget(), None);
    }
}
