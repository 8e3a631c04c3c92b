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
//! Reads use their own read transactions (MVCC snapshots) and never wait for the writer;
//! sources are served from memory.
//!
//! One room per entity: [`tenants`](self) (and bootstrap), tokens, sources, events, insights,
//! audit, evidence (artifacts, receipts, signing keys), log (Merkle nodes, checkpoints,
//! proofs); [`batch`](self) and the writer thread; the codec; ids; retention; migrations;
//! `sealed` (every secret column, sealed at rest under the data key, and its rotation).

mod audit;
mod batch;
mod check;
mod codec;
mod compliance;
mod disk;
mod dual_control;
mod events;
mod evidence;
mod ids;
mod insights;
mod integrations;
mod log;
mod migrate;
mod migrate_v2;
mod migrate_v3;
mod outbox;
mod policies;
mod retention;
mod sealed;
mod sources;
mod tenant_keys;
mod tenants;
mod tokens;
mod usage;
mod users;
mod writer;

pub use check::{Finding, Report, check_database, check_database_with};
pub use compliance::{OVERDUE_SCAN, Overdue};
pub use disk::{Budget, DiskGuard, DiskState, SpaceProbe, VolumeProbe, WriteClass, estimated_cost};
pub use events::{EventLeaf, EventWithBody};
pub use evidence::{ArtifactOutcome, ArtifactWithBytes, ReceiptOutcome};
pub use insights::DecideOutcome;
pub use integrations::IntegrationUpdate;
pub use log::{KeyRecord, LogQueryError, ProvenEntry, SignedCheckpoint, active_key_of};
pub use outbox::{DeliveryUpdate, DeliveryView, HealthUpdate, MAX_DELIVERY_PAGE, Redelivery};
pub use sealed::{DataKeyRotation, rotate_data_key};
pub use tenant_keys::{Content, ContentKey, TenantKeys, key_file_of};
pub use tenants::TenantDeletion;
pub use tokens::Revocation;
pub use usage::{UsageDay, UsageMetric, day_of};
pub use users::UserCreation;
pub use writer::StoreFault;

pub(crate) use batch::Batch;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::tlog::NoteSigner;

/// Schema version written into a new database. Version 1 (JSON records keyed by random ids,
/// per-tenant and expiry index tables), version 2 (tenant content in plaintext) and version 3
/// (source secrets and HS256 receipt keys in plaintext) are migrated in place at open
/// ([`migrate`]); a newer version is refused.
pub const SCHEMA_VERSION: u64 = 4;
/// Most operations committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// Most index entries one filtered listing examines; past it the page ends early with a cursor,
/// so a filter that matches little cannot make one request scan a whole tenant.
pub const SCAN_BUDGET: usize = 10_000;

/// A page of results, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items.
    pub items: Vec<T>,
    /// Cursor for the next (older) page, if any.
    pub next_cursor: Option<u64>,
}

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const SEQ: TableDefinition<&str, u64> = TableDefinition::new("seq");
pub(crate) const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
pub(crate) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
pub(crate) const SOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("sources");
pub(crate) const TENANT_SOURCES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("tenant_sources");
/// `(tenant, seq)` → postcard event row ‖ evidence-log leaf index.
pub(crate) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events_v2");
/// `(tenant, seq)` → raw body, until purged.
pub(crate) const EVENT_BODIES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("event_bodies_v2");
/// Replay key → `(event seq, received_at, id tail)`.
pub(crate) const REPLAY: TableDefinition<[u8; 32], (u64, i64, u64)> =
    TableDefinition::new("replay_v2");
/// `(tenant, seq)` → postcard insight row ‖ event seq.
pub(crate) const INSIGHTS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("insights_v2");
/// Schema-1 `evt_…`/`ins_…` ids → their seq.
pub(crate) const LEGACY_IDS: TableDefinition<&str, u64> = TableDefinition::new("legacy_ids");
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
/// tenant id → JSON [`crate::authz::TenantPolicyRecord`].
pub(crate) const TENANT_POLICIES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("tenant_policies");
/// user id → JSON [`crate::identity::user::UserRecord`].
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// canonical username → user id (usernames are unique across the appliance).
pub(crate) const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
/// SHA-256 (hex) of a session id → JSON [`crate::identity::session::SessionRecord`].
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// (user id, session digest): the sessions of a user.
pub(crate) const USER_SESSIONS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("user_sessions");
/// (tenant, UTC day since the epoch, [`usage::UsageMetric`]) → count, written with the data.
pub(crate) const USAGE: TableDefinition<(&str, i64, u8), u64> = TableDefinition::new("usage");
/// (tenant, request id) → JSON [`crate::identity::approval::DualControlRequest`].
pub(crate) const DUAL_CONTROL: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("dual_control");
/// Log origin → (size, root) of the checkpoint the compliance view last verified.
pub(crate) const COMPLIANCE_VIEWS: TableDefinition<&str, (u64, [u8; 32])> =
    TableDefinition::new("compliance_views");

/// The data directory of the database at `path`: its parent (the data key lives in
/// `<data dir>/secrets/DATA_KEY`, beside the appliance's other generated secrets).
pub fn data_dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// (tenant, integration id) → JSON [`crate::delivery::integration::IntegrationRecord`] with
/// its credentials sealed ([`crate::seal`]).
pub(crate) const INTEGRATIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("integrations");
/// (tenant, integration id, first delivery seq) → postcard list of
/// [`crate::delivery::integration::DeliveryRecord`] enqueued by one commit: the outbox and the
/// attempts log.
pub(crate) const DELIVERIES: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("deliveries");
/// (tenant, integration id) → the first delivery seq the worker has not taken yet: the
/// integration's fresh deliveries are its rows from there on ([`outbox`]).
pub(crate) const DELIVERY_CURSORS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("delivery_cursors");
/// (next attempt, Unix seconds; delivery seq) → (tenant, integration id): deliveries waiting
/// for a later attempt (retries, held, redelivered) in the order they are due.
pub(crate) const DELIVERY_DUE: TableDefinition<(i64, u64), (&str, &str)> =
    TableDefinition::new("delivery_due");

/// How [`Store::open_with`] opens a database beyond its path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// The origin prefix of the logs if the database turns out not yet bootstrapped (`None`:
    /// the signing key's name). A bootstrapped database keeps the prefix it was bootstrapped
    /// with (meta `origin_prefix`; the key name when absent, as in databases from before the
    /// prefix was recorded).
    pub fresh_prefix: Option<String>,
    /// Where the data keys that seal stored secrets come from (default: the data directory's
    /// `secrets/DATA_KEY`, created at the first open).
    pub data_key: crate::seal::KeySource,
}

/// Creates the database file, if absent, readable by its owner only (0600) before redb opens
/// it: redb would create it with the umask's mode, and the file holds every tenant's metadata.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Db(format!("cannot create {}: {e}", path.display())))
}

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
    /// Stored bytes no longer match their digest (500 `DATA_CORRUPT`); what and where.
    #[error("damaged data: {0}")]
    Damaged(String),
    /// The free-space floor is reached: data writes are refused (507).
    #[error("insufficient storage: the data volume is below its free-space floor")]
    InsufficientStorage,
    /// The writer is gone (shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// Another operation in the same batch failed and the commit was abandoned.
    #[error("the transaction was aborted: {0}")]
    Aborted(String),
    /// The checkpoint policy refused to sign ([`crate::tlog::next_checkpoint`]).
    #[error(transparent)]
    Checkpoint(#[from] crate::tlog::PolicyError),
    /// The tenant was deleted while the request was under way: its content is not stored
    /// (403 `TENANT_DELETED`).
    #[error("tenant {0} was deleted: its content cannot be stored")]
    TenantDeleted(String),
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

struct Inner {
    db: Arc<Database>,
    sender: Mutex<Option<mpsc::Sender<writer::Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    disk: Arc<DiskGuard>,
    poison: Arc<writer::Poison>,
    damage: std::sync::atomic::AtomicU64,
    metrics: Arc<Metrics>,
    origin_prefix: String,
    id_key: ids::IdKey,
    sources: RwLock<Arc<sources::SourceCache>>,
    sources_reload: Mutex<()>,
    keys: Arc<TenantKeys>,
    /// Data keys that seal secrets at rest ([`crate::seal`]); shared with writer jobs.
    keyring: Arc<crate::seal::Keyring>,
    /// Shared with the writer: clock and subscriptions.
    shared: Arc<writer::Shared>,
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
    /// Opens (creating if needed, mode 0600) the database at `path`, loads the data keys
    /// from `<data dir>/secrets/DATA_KEY` (created when absent), checks the schema version
    /// (migrating older versions in place), creates every table, loads the sources into
    /// memory, records `signer`'s key as in use since `now` (Unix seconds; a key seen before
    /// keeps its first date) and starts the writer thread.
    ///
    /// # Errors
    /// [`StoreError::Db`] when redb cannot open the file (e.g. another process holds it) or
    /// the data key file cannot be read, [`StoreError::SchemaTooNew`], [`StoreError::Corrupt`]
    /// when a stored secret is sealed under a data key the key file does not hold.
    pub fn open(
        path: &Path,
        metrics: Arc<Metrics>,
        signer: Arc<NoteSigner>,
        cache_bytes: u64,
        now: i64,
    ) -> Result<Self, StoreError> {
        Self::open_with(
            path,
            metrics,
            signer,
            cache_bytes,
            now,
            &StoreOptions::default(),
        )
    }

    /// [`open`](Self::open) with [`StoreOptions`]: the origin prefix of a database not yet
    /// bootstrapped, and where the data keys come from.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        path: &Path,
        metrics: Arc<Metrics>,
        signer: Arc<NoteSigner>,
        cache_bytes: u64,
        now: i64,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        create_private(path)?;
        let db = Arc::new(
            Database::builder()
                .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
                .create(path)?,
        );
        let keys = Arc::new(TenantKeys::open(&key_file_of(path))?);
        let data_dir = data_dir_of(path);
        let keyring = Arc::new(
            options
                .data_key
                .load_or_create(data_dir)
                .map_err(|e| StoreError::Db(e.to_string()))?,
        );
        let id_key = migrate::prepare(&db, &keys, &keyring)?;
        // A database sealed under a key this file lacks (lost, replaced, another appliance's)
        // is refused rather than served without its secrets.
        sealed::require_keys(&db, &keyring, &options.data_key.path(data_dir))?;
        tenants::reconcile_keys(&db, &keys)?;
        let (tx, rx) = mpsc::channel::<writer::Job>(4096);
        let writer_db = db.clone();
        let (sources, damaged) = sources::load_sources(&db, &keyring)?;
        let key_name = signer.verifier_key().name().to_string();
        let (stored_prefix, bootstrapped) = tenants::history_state(&db)?;
        let origin_prefix = match (stored_prefix, bootstrapped) {
            (Some(p), _) => p,
            (None, true) => key_name,
            (None, false) => options.fresh_prefix.clone().unwrap_or(key_name),
        };
        log::register_key(&db, &signer, now)?;
        let writer_prefix = origin_prefix.clone();
        let disk = Arc::new(DiskGuard::default());
        let writer_disk = disk.clone();
        let poison = Arc::new(writer::Poison::default());
        let writer_poison = poison.clone();
        let shared = Arc::new(writer::Shared::default());
        match shared.subscriptions.write() {
            Ok(mut s) => *s = Arc::new(integrations::load_subscriptions(&db)?),
            Err(p) => *p.into_inner() = Arc::new(integrations::load_subscriptions(&db)?),
        }
        let writer_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("evidentia-store-writer".into())
            .spawn({
                let metrics = metrics.clone();
                move || {
                    writer::run(
                        writer_db,
                        rx,
                        metrics,
                        signer,
                        writer_disk,
                        writer_prefix,
                        writer_poison,
                        writer_shared,
                    )
                }
            })
            .map_err(|e| StoreError::Db(format!("cannot start writer thread: {e}")))?;
        let store = Self {
            inner: Arc::new(Inner {
                db,
                sender: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                disk,
                poison,
                damage: std::sync::atomic::AtomicU64::new(0),
                metrics,
                origin_prefix,
                id_key,
                sources: RwLock::new(Arc::new(sources)),
                sources_reload: Mutex::new(()),
                keys,
                keyring,
                shared,
            }),
        };
        for what in damaged {
            // Counted (`/readyz` degraded) and logged; the source is served without it.
            let _ = store.damaged(what);
        }
        Ok(store)
    }

    /// Stops the writer after the queued operations and waits for it. Further writes fail with
    /// [`StoreError::Closed`]. The file is closed when the last handle is dropped.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Gives the store the appliance's clock: deliveries enqueued by the writer are dated by it
    /// (before, they are dated 0 and due at once). Set once; later calls are ignored.
    pub fn use_clock(&self, clock: crate::clock::SharedClock) {
        let _ = self.inner.shared.clock.set(clock);
    }

    /// The free-space floor the writer enforces before every commit (see [`DiskGuard`]).
    pub fn disk(&self) -> &DiskGuard {
        &self.inner.disk
    }

    /// The I/O failure of the database file, once one happened (writes are then refused).
    pub fn fault(&self) -> Option<StoreFault> {
        self.inner.poison.get()
    }

    /// Resolves when the database file fails (see [`StoreFault`]).
    pub async fn faulted(&self) -> StoreFault {
        self.inner.poison.wait().await
    }

    /// How many reads found damaged data since the start (`/readyz` is degraded while > 0).
    pub fn damage_seen(&self) -> u64 {
        self.inner.damage.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts and logs damaged stored bytes found by a read, and returns the error to answer.
    pub(crate) fn damaged(&self, what: String) -> StoreError {
        self.inner
            .damage
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.metrics.observe_damage();
        tracing::error!(damage = %what, "stored data does not match its digest; run `evidentia check`");
        StoreError::Damaged(what)
    }

    /// Whether data writes are currently refused for lack of disk space.
    pub fn is_low_disk(&self) -> bool {
        self.inner.disk.is_low()
    }

    /// Whether audit records are refused (the audit reserve below the floor is used up).
    pub fn is_audit_reserve_spent(&self) -> bool {
        self.inner.disk.is_reserve_spent()
    }

    fn fault_error(fault: &StoreFault) -> StoreError {
        if fault.no_space {
            StoreError::InsufficientStorage
        } else {
            StoreError::Aborted(format!("the database file failed: {}", fault.message))
        }
    }

    fn refuses(&self, class: WriteClass) -> bool {
        match class {
            WriteClass::Data(_) => self.inner.disk.is_low(),
            WriteClass::Audit(_) => self.inner.disk.is_reserve_spent(),
            WriteClass::Exempt => false,
        }
    }

    /// The origin prefix of every log of this database (`<appliance name>`, or a later log
    /// identity `<appliance name>/<n>` after a lost database; see `crate::history`).
    pub fn origin_prefix(&self) -> &str {
        &self.inner.origin_prefix
    }

    /// The origin of a log: `<origin prefix>/<tenant>/<log>`.
    pub fn origin(&self, tenant: &str, log: &str) -> String {
        audit::log_origin(&self.inner.origin_prefix, tenant, log)
    }

    /// The log holding `tenant`'s audit records (`system` for the appliance scope).
    pub fn audit_origin(&self, tenant: &str) -> String {
        audit::audit_origin(&self.inner.origin_prefix, tenant)
    }

    /// The key that hides positions in external ids ([`ids`]).
    pub(crate) fn id_key(&self) -> &ids::IdKey {
        &self.inner.id_key
    }

    /// `tenant`'s content key, made on its first use ([`tenant_keys`]).
    pub(crate) fn content_key(&self, tenant: &str) -> Result<Arc<ContentKey>, StoreError> {
        self.inner.keys.get_or_create(tenant)
    }

    /// Decrypts a stored `kind` value of `tenant`: `None` when the tenant's key was shredded
    /// (its content is gone, like a purged body).
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when the value does not open under the tenant's key.
    pub(crate) fn decrypt(
        &self,
        tenant: &str,
        kind: Content,
        value: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = self.inner.keys.get(tenant) else {
            return Ok(None);
        };
        match key.decrypt(kind, value) {
            Some(plain) => Ok(Some(plain)),
            None => Err(self.damaged(format!("{} does not decrypt", what()))),
        }
    }

    /// Seals a secret for the record and field `ctx` names, under the active data key
    /// ([`crate::seal`]: `v1:<kid>:<nonce>:<ciphertext>`).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the operating system's RNG fails.
    pub(crate) fn seal_secret(
        &self,
        ctx: &crate::seal::SealContext<'_>,
        plaintext: &[u8],
    ) -> Result<String, StoreError> {
        self.inner
            .keyring
            .seal(plaintext, ctx)
            .map_err(|e| StoreError::Corrupt {
                table: "sealed secret",
                message: e.to_string(),
            })
    }

    /// Opens a secret sealed by [`seal_secret`](Self::seal_secret) for the same `ctx`.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when it does not open (tampered, moved to another record, or
    /// sealed under a data key this appliance does not hold).
    pub(crate) fn open_secret(
        &self,
        ctx: &crate::seal::SealContext<'_>,
        sealed: &str,
    ) -> Result<Vec<u8>, StoreError> {
        self.inner.keyring.open(sealed, ctx).map_err(|e| {
            self.damaged(format!(
                "the sealed {} of {} in tenant {}: {e}",
                ctx.field, ctx.record, ctx.tenant
            ))
        })
    }

    pub(crate) fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.inner.db.begin_read()?)
    }

    /// Queues `op` for the next group commit and waits until that commit is durable.
    ///
    /// `class` says what the free-space floor does to it ([`WriteClass`]): a write refused up
    /// front (the floor or the audit reserve is known to be reached) or by the writer (the
    /// batch's estimated size would cross it) is [`StoreError::InsufficientStorage`].
    pub(crate) async fn write<T, F>(&self, class: WriteClass, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        if self.refuses(class) {
            return Err(StoreError::InsufficientStorage);
        }
        if let Some(fault) = self.fault() {
            return Err(Self::fault_error(&fault));
        }
        let (otx, orx) = oneshot::channel::<Result<T, writer::Failure>>();
        let job = writer::Job {
            class,
            run: Box::new(move |txn| {
                let value = op(txn)?;
                Ok(Box::new(move |committed: Result<(), writer::Failure>| {
                    let _ = otx.send(committed.map(|()| value));
                }) as writer::Completion)
            }),
        };
        let sender = match self.inner.sender.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
        .ok_or(StoreError::Closed)?;
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        match orx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(writer::Failure::NoSpace)) => Err(StoreError::InsufficientStorage),
            Ok(Err(writer::Failure::Other(msg))) => Err(StoreError::Aborted(msg)),
            // The writer dropped the job: the file failed, refused at the floor, or its own
            // operation failed.
            Err(_) => Err(match self.fault() {
                Some(fault) => Self::fault_error(&fault),
                None if self.refuses(class) => StoreError::InsufficientStorage,
                None => StoreError::Aborted("operation failed".into()),
            }),
        }
    }
}
