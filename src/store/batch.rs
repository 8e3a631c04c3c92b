//! One group commit's state. Counters and transparency-log state (sizes, new Merkle nodes,
//! new entries) are held here for the whole batch and written once, with each table opened
//! once, by [`Batch::flush`] before the checkpoints are signed and the transaction commits.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadableTable, WriteTransaction};

use super::{LOG_ENTRIES, LOG_NODES, LOG_SIZE, SEQ, StoreError};
use crate::tlog::merkle::Hash;

/// A log appended to in this batch.
#[derive(Default)]
pub(crate) struct LogState {
    /// Size including this batch's appends.
    pub(crate) size: u64,
    /// Complete-subtree hashes written by this batch, `(level, index)` → hash.
    pub(crate) nodes: HashMap<(u8, u64), Hash>,
    /// Entries appended by this batch, from leaf `size - entries.len()` on.
    pub(crate) entries: Vec<Vec<u8>>,
}

/// One group commit: the write transaction and what is held for it until [`Batch::flush`].
pub(crate) struct Batch<'t> {
    txn: &'t WriteTransaction,
    /// Origin prefix of every log (the appliance name).
    pub(crate) prefix: &'t str,
    counters: HashMap<String, u64>,
    /// Logs appended to, by origin (ordered, so checkpoints are signed in a stable order).
    pub(crate) logs: BTreeMap<String, LogState>,
}

impl std::ops::Deref for Batch<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        self.txn
    }
}

impl<'t> Batch<'t> {
    pub(crate) fn new(txn: &'t WriteTransaction, prefix: &'t str) -> Self {
        Self {
            txn,
            prefix,
            counters: HashMap::new(),
            logs: BTreeMap::new(),
        }
    }

    /// The transaction, for tables read while the batch's state is borrowed mutably.
    pub(crate) fn txn(&self) -> &'t WriteTransaction {
        self.txn
    }

    /// Reserves `n` consecutive values of counter `name` (starting at 0); returns the first.
    pub(crate) fn reserve_seq(&mut self, name: &str, n: u64) -> Result<u64, StoreError> {
        let current = match self.counters.get(name) {
            Some(v) => *v,
            None => {
                let t = self.txn.open_table(SEQ)?;
                t.get(name)?.map(|v| v.value()).unwrap_or(0)
            }
        };
        self.counters
            .insert(name.to_string(), current.saturating_add(n));
        Ok(current)
    }

    /// Reserves the next value of counter `name`.
    pub(crate) fn next_seq(&mut self, name: &str) -> Result<u64, StoreError> {
        self.reserve_seq(name, 1)
    }

    /// The state of log `origin` in this batch, loaded on first use.
    pub(crate) fn log(&mut self, origin: &str) -> Result<&mut LogState, StoreError> {
        if !self.logs.contains_key(origin) {
            let size = {
                let t = self.txn.open_table(LOG_SIZE)?;
                t.get(origin)?.map(|v| v.value()).unwrap_or(0)
            };
            self.logs.insert(
                origin.to_string(),
                LogState {
                    size,
                    ..LogState::default()
                },
            );
        }
        self.logs
            .get_mut(origin)
            .ok_or(StoreError::Db("log state vanished".into()))
    }

    /// Current size of log `origin`, including this batch's appends.
    pub(crate) fn log_size(&mut self, origin: &str) -> Result<u64, StoreError> {
        Ok(self.log(origin)?.size)
    }

    /// Writes the counters and every log's nodes, entries and size.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        if !self.counters.is_empty() {
            let mut t = self.txn.open_table(SEQ)?;
            for (name, v) in &self.counters {
                t.insert(name.as_str(), *v)?;
            }
        }
        if self.logs.is_empty() {
            return Ok(());
        }
        let mut sizes = self.txn.open_table(LOG_SIZE)?;
        let mut nodes = self.txn.open_table(LOG_NODES)?;
        let mut entries = self.txn.open_table(LOG_ENTRIES)?;
        for (origin, log) in &mut self.logs {
            let mut nodes_sorted: Vec<_> = log.nodes.drain().collect();
            nodes_sorted.sort_unstable_by_key(|(k, _)| *k);
            for ((level, index), hash) in nodes_sorted {
                nodes.insert((origin.as_str(), level, index), hash.as_slice())?;
            }
            let first = log.size - log.entries.len() as u64;
            for (i, e) in log.entries.drain(..).enumerate() {
                entries.insert((origin.as_str(), first + i as u64), e.as_slice())?;
            }
            sizes.insert(origin.as_str(), log.size)?;
        }
        Ok(())
    }
}
