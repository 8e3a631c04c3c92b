//! One group commit's state. Counters and transparency-log state (sizes, new Merkle nodes,
//! new entries) are held here for the whole batch and written once, with each table opened
//! once, by [`Batch::flush`] before the checkpoints are signed and the transaction commits.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadableTable, Table, WriteTransaction};

use super::usage::{UsageMetric, day_of};
use super::{
    EVENT_BODIES, EVENTS, INSIGHTS, LOG_ENTRIES, LOG_NODES, LOG_SIZE, REPLAY, SEQ, StoreError,
    USAGE,
};
use crate::tlog::merkle::Hash;

/// A table keyed by `(tenant, seq)` with encoded rows (events, bodies, insights).
pub(crate) type SeqTable<'t> = Table<'t, (&'static str, u64), &'static [u8]>;
/// Complete-subtree hashes, `(origin, level, index)` → 32 bytes.
pub(crate) type NodeTable<'t> = Table<'t, (&'static str, u8, u64), &'static [u8]>;
/// The replay index, SHA-256 replay key → `(seq, received_at, id tail)`.
pub(crate) type ReplayTable<'t> = Table<'t, [u8; 32], (u64, i64, u64)>;

/// The tables every ingest touches, each opened at most once per batch (redb's `open_table`
/// and the table-root update when a handle closes cost as much as the insert itself). Jobs in
/// a batch reach these tables only through [`Batch`]'s accessors: opening one of them again on
/// the transaction while it is held here fails with `TableAlreadyOpen`.
#[derive(Default)]
struct Tables<'t> {
    seq: Option<Table<'t, &'static str, u64>>,
    log_size: Option<Table<'t, &'static str, u64>>,
    log_nodes: Option<NodeTable<'t>>,
    log_entries: Option<SeqTable<'t>>,
    events: Option<SeqTable<'t>>,
    bodies: Option<SeqTable<'t>>,
    insights: Option<SeqTable<'t>>,
    replay: Option<ReplayTable<'t>>,
}

/// `fn $name(&mut self) -> &mut Table` opening `$def` on first use in the batch.
macro_rules! cached_table {
    ($(#[$doc:meta])* $name:ident, $field:ident, $def:expr, $ty:ty) => {
        $(#[$doc])*
        pub(crate) fn $name(&mut self) -> Result<&mut $ty, StoreError> {
            if self.tables.$field.is_none() {
                self.tables.$field = Some(self.txn.open_table($def)?);
            }
            self.tables
                .$field
                .as_mut()
                .ok_or(StoreError::Db(concat!(stringify!($field), " table vanished").into()))
        }
    };
}

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
    /// Usage increments of this batch, (tenant, day, metric) → amount.
    usage: BTreeMap<(String, i64, UsageMetric), u64>,
    tables: Tables<'t>,
    /// Logs appended to, by origin (ordered, so checkpoints are signed in a stable order).
    pub(crate) logs: BTreeMap<String, LogState>,
    /// Unix seconds when the batch began (0 when the store has no clock): the time of the
    /// deliveries it enqueues.
    pub(crate) now: i64,
    /// The integrations subscribed to what this batch appends ([`super::outbox`]).
    pub(crate) subscriptions: std::sync::Arc<super::integrations::Subscriptions>,
    /// Deliveries enqueued by this batch (the worker is woken after the commit).
    pub(crate) enqueued: usize,
}

impl std::ops::Deref for Batch<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        self.txn
    }
}

impl<'t> Batch<'t> {
    pub(crate) fn new(
        txn: &'t WriteTransaction,
        prefix: &'t str,
        now: i64,
        subscriptions: std::sync::Arc<super::integrations::Subscriptions>,
    ) -> Self {
        Self {
            txn,
            prefix,
            counters: HashMap::new(),
            usage: BTreeMap::new(),
            tables: Tables::default(),
            logs: BTreeMap::new(),
            now,
            subscriptions,
            enqueued: 0,
        }
    }

    cached_table!(
        /// Counters and cursors, name → value.
        seq_table, seq, SEQ, Table<'t, &'static str, u64>
    );
    cached_table!(
        log_size_table,
        log_size,
        LOG_SIZE,
        Table<'t, &'static str, u64>
    );
    cached_table!(log_nodes_table, log_nodes, LOG_NODES, NodeTable<'t>);
    cached_table!(log_entries_table, log_entries, LOG_ENTRIES, SeqTable<'t>);
    cached_table!(
        /// Event rows (schema 2).
        events, events, EVENTS, SeqTable<'t>
    );
    cached_table!(
        /// Raw bodies, stored once per event.
        bodies, bodies, EVENT_BODIES, SeqTable<'t>
    );
    cached_table!(insights, insights, INSIGHTS, SeqTable<'t>);
    cached_table!(replay, replay, REPLAY, ReplayTable<'t>);

    /// The transaction, for tables read while the batch's state is borrowed mutably.
    pub(crate) fn txn(&self) -> &'t WriteTransaction {
        self.txn
    }

    /// Reserves `n` consecutive values of counter `name` (starting at 0); returns the first.
    pub(crate) fn reserve_seq(&mut self, name: &str, n: u64) -> Result<u64, StoreError> {
        let current = match self.counters.get(name) {
            Some(v) => *v,
            None => self.seq_table()?.get(name)?.map(|v| v.value()).unwrap_or(0),
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
        Ok(self.log_and_nodes(origin)?.1)
    }

    /// The node table and the state of log `origin`, borrowed together (appends read sibling
    /// nodes while adding their own).
    pub(crate) fn log_and_nodes(
        &mut self,
        origin: &str,
    ) -> Result<(&NodeTable<'t>, &mut LogState), StoreError> {
        if !self.logs.contains_key(origin) {
            let size = self
                .log_size_table()?
                .get(origin)?
                .map(|v| v.value())
                .unwrap_or(0);
            self.logs.insert(
                origin.to_string(),
                LogState {
                    size,
                    ..LogState::default()
                },
            );
        }
        self.log_nodes_table()?;
        let nodes = self
            .tables
            .log_nodes
            .as_ref()
            .ok_or(StoreError::Db("log_nodes table vanished".into()))?;
        let log = self
            .logs
            .get_mut(origin)
            .ok_or(StoreError::Db("log state vanished".into()))?;
        Ok((nodes, log))
    }

    /// Current size of log `origin`, including this batch's appends.
    pub(crate) fn log_size(&mut self, origin: &str) -> Result<u64, StoreError> {
        Ok(self.log(origin)?.size)
    }

    /// Adds `amount` to `tenant`'s `metric` on the UTC day of unix second `at` (written by
    /// [`Batch::flush`], in the same commit as the data counted).
    pub(crate) fn count_usage(&mut self, tenant: &str, at: i64, metric: UsageMetric, amount: u64) {
        let slot = self
            .usage
            .entry((tenant.to_string(), day_of(at), metric))
            .or_insert(0);
        *slot = slot.saturating_add(amount);
    }

    /// Writes the counters reserved since the last flush (also after the checkpoints' deliveries
    /// are enqueued, which happens after [`Batch::flush`]).
    pub(crate) fn flush_counters(&mut self) -> Result<(), StoreError> {
        if !self.counters.is_empty() {
            let counters = std::mem::take(&mut self.counters);
            let t = self.seq_table()?;
            for (name, v) in &counters {
                t.insert(name.as_str(), *v)?;
            }
        }
        Ok(())
    }

    /// Enqueues the deliveries of this batch's log entries ([`super::outbox`]), then writes the
    /// counters, the usage increments and every log's nodes, entries and size.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        if !self.subscriptions.is_empty() && !self.logs.is_empty() {
            let subs = self.subscriptions.clone();
            super::outbox::enqueue_entries(self, &subs)?;
        }
        self.flush_counters()?;
        if !self.usage.is_empty() {
            let usage = std::mem::take(&mut self.usage);
            let mut t = self.txn.open_table(USAGE)?;
            for ((tenant, day, metric), n) in usage {
                let key = (tenant.as_str(), day, metric as u8);
                let now = t.get(key)?.map(|v| v.value()).unwrap_or(0);
                t.insert(key, now.saturating_add(n))?;
            }
        }
        if self.logs.is_empty() {
            return Ok(());
        }
        let mut logs = std::mem::take(&mut self.logs);
        for (origin, log) in &mut logs {
            let mut nodes_sorted: Vec<_> = log.nodes.drain().collect();
            nodes_sorted.sort_unstable_by_key(|(k, _)| *k);
            let nodes = self.log_nodes_table()?;
            for ((level, index), hash) in nodes_sorted {
                nodes.insert((origin.as_str(), level, index), hash.as_slice())?;
            }
            let first = log.size - log.entries.len() as u64;
            let entries = self.log_entries_table()?;
            for (i, e) in log.entries.drain(..).enumerate() {
                entries.insert((origin.as_str(), first + i as u64), e.as_slice())?;
            }
            self.log_size_table()?.insert(origin.as_str(), log.size)?;
        }
        self.logs = logs;
        Ok(())
    }
}
