//! The redb database: typed tables, group commit, schema version.
//!
//! All writes go through one writer thread that drains whatever operations are queued (up to
//! [`MAX_BATCH`]) into a single write transaction and commits it with `Durability::Immediate`;
//! each caller is answered only after that commit returned, so a 2xx that acknowledges data is
//! always durable, and concurrent writers share one fsync. An operation must decide domain
//! outcomes (conflict, not found) *before* it writes, returning them as values; an `Err` from an
//! operation is a storage failure that aborts the whole batch (every caller in it gets the error;
//! the operations not yet run are retried in a fresh transaction).
//!
//! Reads use their own read transactions (MVCC snapshots) and never wait for the writer.

mod evidence;
mod log;
mod ops;

pub use evidence::*;
pub use log::*;
pub use ops::*;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::tlog::NoteSigner;

/// Schema version written into a new database; opening a newer one is refused.
pub const SCHEMA_VERSION: u64 = 1;
/// Most operations committed in one transaction.
pub const MAX_BATCH: usize = 512;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const SEQ: TableDefinition<&str, u64> = TableDefinition::new("seq");
pub(crate) const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
pub(crate) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
pub(crate) const SOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("sources");
pub(crate) const TENANT_SOURCES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("tenant_sources");
pub(crate) const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
pub(crate) const EVENT_BODIES: TableDefinition<&str, &[u8]> = TableDefinition::new("event_bodies");
pub(crate) const BODY_EXPIRY: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("body_expiry");
pub(crate) const TENANT_EVENTS: TableDefinition<(&str, u64), &str> =
    TableDefinition::new("tenant_events");
pub(crate) const REPLAY: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("replay");
pub(crate) const JOBS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("jobs");
pub(crate) const INSIGHTS: TableDefinition<&str, &[u8]> = TableDefinition::new("insights");
pub(crate) const TENANT_INSIGHTS: TableDefinition<(&str, u64), &str> =
    TableDefinition::new("tenant_insights");
pub(crate) const LOG_SIZE: TableDefinition<&str, u64> = TableDefinition::new("log_size");
pub(crate) const LOG_NODES: TableDefinition<(&str, u8, u64), &[u8]> =
    TableDefinition::new("log_nodes");
pub(crate) const LOG_ENTRIES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("log_entries");
pub(crate) const CHECKPOINTS: TableDefinition<&str, &str> = TableDefinition::new("checkpoints");
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
pub(crate) const ARTIFACTS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("artifacts");
pub(crate) const ARTIFACT_BLOBS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("artifact_blobs");
pub(crate) const ARTIFACT_EXPIRY: TableDefinition<(i64, &str, &str, &str), ()> =
    TableDefinition::new("artifact_expiry");
pub(crate) const RECEIPTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("receipts");
pub(crate) const RUN_RECEIPTS: TableDefinition<(&str, &str, u64), &str> =
    TableDefinition::new("run_receipts");
pub(crate) const SIGNING_KEYS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("signing_keys");

/// Storage failures (answered 500/503/507 by the API, never caused by client input).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb reported an error.
    #[error("database error: {0}")]
    Db(String),
    /// A stored record did not decode.
    #[error("corrupt record in {table}: {message}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Decoder message.
        message: String,
    },
    /// The free-space floor is reached: data writes are refused (507).
    #[error("insufficient storage: the data volume is below its free-space floor")]
    InsufficientStorage,
    /// The writer is gone (shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// Another operation in the same batch failed and the commit was abandoned.
    #[error("the transaction was aborted: {0}")]
    Aborted(String),
    /// The database was written by a newer version.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Found.
        found: u64,
        /// Supported.
        supported: u64,
    },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&mut Batch<'_>) -> Result<Completion, StoreError> + Send>;

/// One group commit: the write transaction and the transparency logs appended to in it (each
/// gets one signed checkpoint for its final size before the commit).
pub(crate) struct Batch<'t> {
    txn: &'t WriteTransaction,
    /// Origin prefix of every log (the appliance name).
    pub(crate) prefix: &'t str,
    pub(crate) touched_logs: std::collections::BTreeSet<String>,
}

impl std::ops::Deref for Batch<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        self.txn
    }
}

struct Inner {
    db: Arc<Database>,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    low_disk: AtomicBool,
    origin_prefix: String,
}

impl Inner {
    fn shutdown(&self) {
        let sender = match self.sender.lock() {
            Ok(mut s) => s.take(),
            Err(p) => p.into_inner().take(),
        };
        drop(sender);
        let handle = match self.writer.lock() {
            Ok(mut w) => w.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, checks the schema version, creates
    /// every table, records `signer`'s key as in use since `now` (Unix seconds; a key seen
    /// before keeps its first date) and starts the writer thread.
    ///
    /// # Errors
    /// [`StoreError::Db`] when redb cannot open the file (e.g. another process holds it),
    /// [`StoreError::SchemaTooNew`].
    pub fn open(
        path: &Path,
        metrics: Arc<Metrics>,
        signer: Arc<NoteSigner>,
        cache_bytes: u64,
        now: i64,
    ) -> Result<Self, StoreError> {
        let db = Arc::new(
            Database::builder()
                .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
                .create(path)?,
        );
        {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                let found = meta.get("schema_version")?.map(|v| {
                    let b = v.value();
                    let mut arr = [0u8; 8];
                    if b.len() == 8 {
                        arr.copy_from_slice(b);
                    }
                    u64::from_be_bytes(arr)
                });
                match found {
                    Some(v) if v > SCHEMA_VERSION => {
                        return Err(StoreError::SchemaTooNew {
                            found: v,
                            supported: SCHEMA_VERSION,
                        });
                    }
                    Some(_) => {}
                    None => {
                        meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
                    }
                }
                txn.open_table(SEQ)?;
                txn.open_table(TENANTS)?;
                txn.open_table(TOKENS)?;
                txn.open_table(SOURCES)?;
                txn.open_table(TENANT_SOURCES)?;
                txn.open_table(EVENTS)?;
                txn.open_table(EVENT_BODIES)?;
                txn.open_table(BODY_EXPIRY)?;
                txn.open_table(TENANT_EVENTS)?;
                txn.open_table(REPLAY)?;
                txn.open_table(JOBS)?;
                txn.open_table(INSIGHTS)?;
                txn.open_table(TENANT_INSIGHTS)?;
                txn.open_table(LOG_SIZE)?;
                txn.open_table(LOG_NODES)?;
                txn.open_table(LOG_ENTRIES)?;
                txn.open_table(CHECKPOINTS)?;
                txn.open_table(KEYS)?;
                txn.open_table(ARTIFACTS)?;
                txn.open_table(ARTIFACT_BLOBS)?;
                txn.open_table(ARTIFACT_EXPIRY)?;
                txn.open_table(RECEIPTS)?;
                txn.open_table(RUN_RECEIPTS)?;
                txn.open_table(SIGNING_KEYS)?;
            }
            txn.commit()?;
        }
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let writer_db = db.clone();
        let origin_prefix = signer.verifier_key().name().to_string();
        register_key(&db, &signer, now)?;
        let handle = std::thread::Builder::new()
            .name("evidentia-store-writer".into())
            .spawn(move || writer_loop(writer_db, rx, metrics, signer))
            .map_err(|e| StoreError::Db(format!("cannot start writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                sender: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                low_disk: AtomicBool::new(false),
                origin_prefix,
            }),
        })
    }

    /// Stops the writer after the queued operations and waits for it. Further writes fail with
    /// [`StoreError::Closed`]. The file is closed when the last handle is dropped.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Marks the data volume as below (or above) its free-space floor.
    pub fn set_low_disk(&self, low: bool) {
        self.inner.low_disk.store(low, Ordering::SeqCst);
    }

    /// Whether data writes are currently refused for lack of disk space.
    pub fn is_low_disk(&self) -> bool {
        self.inner.low_disk.load(Ordering::SeqCst)
    }

    /// The origin of a log: `<appliance name>/<tenant>/<log>`.
    pub fn origin(&self, tenant: &str, log: &str) -> String {
        ops::log_origin(&self.inner.origin_prefix, tenant, log)
    }

    /// The log holding `tenant`'s audit records (`system` for the appliance scope).
    pub fn audit_origin(&self, tenant: &str) -> String {
        ops::audit_origin(&self.inner.origin_prefix, tenant)
    }

    pub(crate) fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.inner.db.begin_read()?)
    }

    /// Queues `op` for the next group commit and waits until that commit is durable.
    pub(crate) async fn write<T, F>(&self, data: bool, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        if data && self.is_low_disk() {
            return Err(StoreError::InsufficientStorage);
        }
        let (otx, orx) = oneshot::channel::<Result<T, String>>();
        let job: Job = Box::new(move |txn| {
            let value = op(txn)?;
            Ok(Box::new(move |committed: Result<(), String>| {
                let _ = otx.send(committed.map(|()| value));
            }) as Completion)
        });
        let sender = match self.inner.sender.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
        .ok_or(StoreError::Closed)?;
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        match orx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(msg)) => Err(StoreError::Aborted(msg)),
            Err(_) => Err(StoreError::Aborted("operation failed".into())),
        }
    }
}

fn writer_loop(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    signer: Arc<NoteSigner>,
) {
    let prefix = signer.verifier_key().name().to_string();
    let mut pending: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.blocking_recv() {
                Some(job) => pending.push_back(job),
                None => return,
            }
        }
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                // Nothing can be written: fail everything queued (dropping a job answers its
                // caller with an error).
                tracing::error!(error = %e, "cannot begin write transaction");
                pending.clear();
                continue;
            }
        };
        let mut completions: Vec<Completion> = Vec::with_capacity(pending.len());
        let mut failure: Option<String> = None;
        let mut batch = Batch {
            txn: &txn,
            prefix: &prefix,
            touched_logs: Default::default(),
        };
        while let Some(job) = pending.pop_front() {
            match job(&mut batch) {
                Ok(c) => completions.push(c),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if failure.is_none()
            && let Err(e) = sign_checkpoints(&batch, &signer)
        {
            failure = Some(e.to_string());
        }
        drop(batch);
        let batch = completions.len();
        match failure {
            Some(msg) => {
                tracing::error!(error = %msg, "write batch aborted");
                let _ = txn.abort();
                for c in completions {
                    c(Err(msg.clone()));
                }
            }
            None => match txn.commit() {
                Ok(()) => {
                    metrics.observe_commit(started.elapsed().as_secs_f64(), batch);
                    for c in completions {
                        c(Ok(()));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!(error = %msg, "commit failed");
                    for c in completions {
                        c(Err(msg.clone()));
                    }
                }
            },
        }
    }
}
