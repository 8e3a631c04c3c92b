//! Transparency logs in redb (RFC 9162 §2.1): leaves and the hashes of complete subtrees, so the
//! root, inclusion proof and consistency proof for any past tree size take O(log n) reads; one
//! C2SP signed checkpoint per log, re-signed for the log's final size at every group commit that
//! appended to it, in the same transaction as the appends (a crash can never separate an append
//! from its checkpoint, and a size is never signed with two different roots).

use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::{Batch, CHECKPOINTS, KEYS, LOG_ENTRIES, LOG_NODES, LOG_SIZE, Store, StoreError};
use crate::tlog::merkle::{self, Hash, NodeReader, TreeError};
use crate::tlog::next_checkpoint;
use crate::tlog::note::{Checkpoint, NoteSigner};

/// Reads complete-subtree hashes of one log from a redb table.
pub(super) struct TableNodes<'a, T> {
    pub(super) origin: &'a str,
    pub(super) size: u64,
    pub(super) table: &'a T,
}

impl<T> NodeReader for TableNodes<'_, T>
where
    T: ReadableTable<(&'static str, u8, u64), &'static [u8]>,
{
    type Error = StoreError;

    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.size)
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let missing = || StoreError::Corrupt {
            table: "log_nodes",
            message: format!("{}: node ({level}, {index}) missing", self.origin),
        };
        let v = self
            .table
            .get((self.origin, level, index))?
            .ok_or_else(missing)?;
        v.value().try_into().map_err(|_| missing())
    }
}

fn tree_err(e: TreeError<StoreError>) -> StoreError {
    match e {
        TreeError::Store(s) => s,
        other => StoreError::Corrupt {
            table: "log_nodes",
            message: other.to_string(),
        },
    }
}

/// Reads a log's nodes as of this batch: the batch's own new nodes, then the table.
struct BatchNodes<'a, T> {
    inner: TableNodes<'a, T>,
    pending: &'a std::collections::HashMap<(u8, u64), Hash>,
}

impl<T> NodeReader for BatchNodes<'_, T>
where
    T: ReadableTable<(&'static str, u8, u64), &'static [u8]>,
{
    type Error = StoreError;

    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.inner.size)
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        match self.pending.get(&(level, index)) {
            Some(h) => Ok(*h),
            None => self.inner.node(level, index),
        }
    }
}

/// Appends `entry` to the log `origin` inside the batch; returns its leaf index. The leaf
/// hash is computed here; use [`log_append_hashed`] when the caller hashed it already.
pub(crate) fn log_append(
    batch: &mut Batch<'_>,
    origin: &str,
    entry: &[u8],
) -> Result<u64, StoreError> {
    log_append_hashed(batch, origin, entry.to_vec(), merkle::leaf_hash(entry))
}

/// Appends `entry`, whose RFC 9162 leaf hash is `leaf`, to the log `origin`. Only the batch's
/// state changes; [`Batch::flush`] writes the nodes, entries and size once per batch.
pub(crate) fn log_append_hashed(
    batch: &mut Batch<'_>,
    origin: &str,
    entry: Vec<u8>,
    leaf: Hash,
) -> Result<u64, StoreError> {
    let (nodes, log) = batch.log_and_nodes(origin)?;
    let size = log.size;
    let writes = {
        let reader = BatchNodes {
            inner: TableNodes {
                origin,
                size,
                table: nodes,
            },
            pending: &log.nodes,
        };
        merkle::append_nodes(&reader, size, leaf).map_err(tree_err)?
    };
    for (level, index, hash) in writes {
        log.nodes.insert((level, index), hash);
    }
    log.entries.push(entry);
    log.size = size + 1;
    Ok(size)
}

/// Signs one checkpoint for the final size of every log the batch appended to, as
/// [`next_checkpoint`] decides. Call after [`Batch::flush`].
///
/// # Errors
/// [`StoreError::Checkpoint`] when the policy refuses (the whole batch is then aborted).
pub(crate) fn sign_checkpoints(
    batch: &mut Batch<'_>,
    signer: &NoteSigner,
) -> Result<Vec<(String, u64, String)>, StoreError> {
    let mut signed = Vec::new();
    if batch.logs.is_empty() {
        return Ok(signed);
    }
    let txn = batch.txn();
    let mut checkpoints = txn.open_table(CHECKPOINTS)?;
    let sizes: Vec<(String, u64)> = batch
        .logs
        .iter()
        .map(|(o, l)| (o.clone(), l.size))
        .collect();
    let nodes = batch.log_nodes_table()?;
    for (origin, size) in &sizes {
        let log_size = *size;
        let reader = TableNodes {
            origin,
            size: log_size,
            table: &*nodes,
        };
        let root = merkle::root(&reader, log_size).map_err(tree_err)?;
        let prev = checkpoints
            .get(origin.as_str())?
            .map(|v| v.value().to_string());
        let Some(cp) = next_checkpoint(origin, prev.as_deref(), log_size, root)? else {
            continue;
        };
        let note = cp.sign(signer).map_err(|e| StoreError::Corrupt {
            table: "checkpoints",
            message: e.to_string(),
        })?;
        checkpoints.insert(origin.as_str(), note.as_str())?;
        signed.push((origin.clone(), log_size, note));
    }
    Ok(signed)
}

/// A signing key the appliance has used (public part only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRecord {
    /// C2SP signed-note verifier key (`name+keyid+base64`).
    pub verifier_key: String,
    /// Key name (the origin prefix).
    pub name: String,
    /// Key id, 8 hex digits.
    pub key_id: String,
    /// Unix seconds it was first used.
    pub first_used: i64,
    /// Unix seconds it was replaced, if it was.
    pub retired_at: Option<i64>,
}

/// Records the current signing key, first used at `now` (Unix seconds); earlier keys stay
/// listed, marked retired at `now`.
pub(crate) fn register_key(
    db: &Arc<Database>,
    signer: &NoteSigner,
    now: i64,
) -> Result<(), StoreError> {
    let vk = signer.verifier_key().to_string();
    let txn = db.begin_write()?;
    {
        let mut keys = txn.open_table(KEYS)?;
        if keys.get(vk.as_str())?.is_none() {
            let mut others: Vec<(String, KeyRecord)> = Vec::new();
            for item in keys.iter()? {
                let (k, v) = item?;
                let rec: KeyRecord =
                    serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                        table: "keys",
                        message: e.to_string(),
                    })?;
                others.push((k.value().to_string(), rec));
            }
            for (k, mut rec) in others {
                if rec.retired_at.is_none() {
                    rec.retired_at = Some(now);
                    let bytes = serde_json::to_vec(&rec).unwrap_or_default();
                    keys.insert(k.as_str(), bytes.as_slice())?;
                }
            }
            let rec = KeyRecord {
                verifier_key: vk.clone(),
                name: signer.verifier_key().name().to_string(),
                key_id: format!("{:08x}", signer.verifier_key().key_id()),
                first_used: now,
                retired_at: None,
            };
            let bytes = serde_json::to_vec(&rec).unwrap_or_default();
            keys.insert(vk.as_str(), bytes.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Why a proof or entry could not be served (client errors: 400/404).
#[derive(Debug, thiserror::Error)]
pub enum LogQueryError {
    /// Index or sizes out of range for the log's current size.
    #[error("{0}")]
    Range(String),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A log entry with its leaf hash and inclusion proof: (entry bytes, leaf hash, proof).
pub type ProvenEntry = (Vec<u8>, Hash, Vec<Hash>);

/// A log's latest signed checkpoint with its parsed size and root.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The C2SP signed note.
    pub note: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

/// The key that signs the checkpoints of the database file at `path` (`None` before the first
/// start), read without opening a [`Store`] (which would record a different key as the new
/// one). Opens the file exclusively, as the appliance does.
///
/// # Errors
/// [`StoreError`], "already open" while a server holds the file.
pub fn active_key_of(path: &std::path::Path) -> Result<Option<KeyRecord>, StoreError> {
    let db = Database::open(path)?;
    let r = db.begin_read()?;
    Ok(keys_in(&r)?.into_iter().find(|k| k.retired_at.is_none()))
}

fn keys_in(r: &redb::ReadTransaction) -> Result<Vec<KeyRecord>, StoreError> {
    let t = match r.open_table(KEYS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out: Vec<KeyRecord> = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        out.push(
            serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                table: "keys",
                message: e.to_string(),
            })?,
        );
    }
    // Oldest first: keys in the order they were retired, the active key last.
    out.sort_by_key(|k| (k.retired_at.unwrap_or(i64::MAX), k.first_used));
    Ok(out)
}

impl Store {
    /// Public keys ever used to sign checkpoints, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        keys_in(&self.read()?)
    }

    /// Current size of a log (0 if it has no entries).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn log_size(&self, origin: &str) -> Result<u64, StoreError> {
        let r = self.read()?;
        let t = r.open_table(LOG_SIZE)?;
        Ok(t.get(origin)?.map(|v| v.value()).unwrap_or(0))
    }

    /// The latest signed checkpoint of a log, if it has entries.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn checkpoint(&self, origin: &str) -> Result<Option<SignedCheckpoint>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(CHECKPOINTS)?;
        let Some(note) = t.get(origin)?.map(|v| v.value().to_string()) else {
            return Ok(None);
        };
        let body = note.split("\n\n").next().unwrap_or("").to_string() + "\n";
        let cp = Checkpoint::parse_body(&body).map_err(|e| StoreError::Corrupt {
            table: "checkpoints",
            message: e.to_string(),
        })?;
        Ok(Some(SignedCheckpoint {
            note,
            size: cp.size,
            root: cp.root,
        }))
    }

    /// Entry `index` of a log (its exact bytes).
    ///
    /// # Errors
    /// [`LogQueryError::Range`] when `index` ≥ the log size.
    pub fn log_entry(&self, origin: &str, index: u64) -> Result<Vec<u8>, LogQueryError> {
        let r = self.read().map_err(LogQueryError::Store)?;
        let t = r.open_table(LOG_ENTRIES).map_err(StoreError::from)?;
        let entry = t
            .get((origin, index))
            .map_err(StoreError::from)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| LogQueryError::Range(format!("no entry {index} in this log")))?;
        // The entry must hash to its leaf (RFC 9162 §2.1.1), which the checkpoints commit to.
        let nodes = r.open_table(LOG_NODES).map_err(StoreError::from)?;
        let leaf = nodes
            .get((origin, 0u8, index))
            .map_err(StoreError::from)?
            .map(|v| v.value().to_vec());
        if leaf.as_deref() != Some(merkle::leaf_hash(&entry).as_slice()) {
            return Err(self
                .damaged(format!(
                    "entry {index} of log {origin} does not match its leaf hash"
                ))
                .into());
        }
        Ok(entry)
    }

    fn with_nodes<T>(
        &self,
        origin: &str,
        f: impl FnOnce(&TableView<'_>) -> Result<T, LogQueryError>,
    ) -> Result<T, LogQueryError> {
        let r = self.read()?;
        let sizes = r.open_table(LOG_SIZE).map_err(StoreError::from)?;
        let size = sizes
            .get(origin)
            .map_err(StoreError::from)?
            .map(|v| v.value())
            .unwrap_or(0);
        let nodes = r.open_table(LOG_NODES).map_err(StoreError::from)?;
        f(&TableView {
            origin,
            current: size,
            table: &nodes,
        })
    }

    /// Root of a log at `size` (≤ current size).
    ///
    /// # Errors
    /// [`LogQueryError::Range`] beyond the current size.
    pub fn log_root(&self, origin: &str, size: u64) -> Result<Hash, LogQueryError> {
        self.with_nodes(origin, |view| {
            let v = view;
            v.check(size)?;
            merkle::root(&v.reader(), size).map_err(|e| range_or_store(e, v.current))
        })
    }

    /// RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size`.
    ///
    /// # Errors
    /// [`LogQueryError::Range`] when `index` ≥ `size` or `size` exceeds the log.
    pub fn inclusion_proof(
        &self,
        origin: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, LogQueryError> {
        self.with_nodes(origin, |view| {
            let v = view;
            v.check(size)?;
            if index >= size {
                return Err(LogQueryError::Range(format!(
                    "index {index} is not below tree_size {size}"
                )));
            }
            merkle::inclusion_proof(&v.reader(), index, size)
                .map_err(|e| range_or_store(e, v.current))
        })
    }

    /// Entries `from..to` of a log with their leaf hashes and inclusion proofs in the tree of
    /// `size` (one read transaction; each entry checked against its leaf, as
    /// [`Store::log_entry`] does). For audit exports.
    ///
    /// # Errors
    /// [`LogQueryError::Range`] when `to` > `size` or `size` exceeds the log.
    pub fn log_range_with_proofs(
        &self,
        origin: &str,
        from: u64,
        to: u64,
        size: u64,
    ) -> Result<Vec<ProvenEntry>, LogQueryError> {
        if from > to || to > size {
            return Err(LogQueryError::Range(format!(
                "entries {from}..{to} are not within tree_size {size}"
            )));
        }
        let r = self.read()?;
        let entries = r.open_table(LOG_ENTRIES).map_err(StoreError::from)?;
        let mut bytes = Vec::with_capacity((to - from) as usize);
        for item in entries
            .range((origin, from)..(origin, to))
            .map_err(StoreError::from)?
        {
            let (_, v) = item.map_err(StoreError::from)?;
            bytes.push(v.value().to_vec());
        }
        drop(entries);
        if bytes.len() as u64 != to - from {
            return Err(self
                .damaged(format!("log {origin} lacks entries in {from}..{to}"))
                .into());
        }
        self.with_nodes(origin, |v| {
            v.check(size)?;
            let reader = v.reader();
            let mut out = Vec::with_capacity(bytes.len());
            for (i, entry) in bytes.into_iter().enumerate() {
                let index = from + i as u64;
                let leaf = merkle::leaf_hash(&entry);
                let stored = v
                    .table
                    .get((origin, 0u8, index))
                    .map_err(StoreError::from)?
                    .map(|x| x.value().to_vec());
                if stored.as_deref() != Some(leaf.as_slice()) {
                    return Err(self
                        .damaged(format!(
                            "entry {index} of log {origin} does not match its leaf hash"
                        ))
                        .into());
                }
                let proof = merkle::inclusion_proof(&reader, index, size)
                    .map_err(|e| range_or_store(e, v.current))?;
                out.push((entry, leaf, proof));
            }
            Ok(out)
        })
    }

    /// RFC 9162 §2.1.4.1 consistency proof between sizes `from` ≤ `to`.
    ///
    /// # Errors
    /// [`LogQueryError::Range`] when `from` > `to` or `to` exceeds the log.
    pub fn consistency_proof(
        &self,
        origin: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, LogQueryError> {
        self.with_nodes(origin, |view| {
            let v = view;
            v.check(to)?;
            if from > to {
                return Err(LogQueryError::Range(format!(
                    "from {from} is greater than to {to}"
                )));
            }
            merkle::consistency_proof(&v.reader(), from, to)
                .map_err(|e| range_or_store(e, v.current))
        })
    }
}

type NodesTable = redb::ReadOnlyTable<(&'static str, u8, u64), &'static [u8]>;

struct TableView<'a> {
    origin: &'a str,
    current: u64,
    table: &'a NodesTable,
}

impl TableView<'_> {
    fn check(&self, size: u64) -> Result<(), LogQueryError> {
        if size > self.current {
            return Err(LogQueryError::Range(format!(
                "tree size {size} is beyond the log's current size {}",
                self.current
            )));
        }
        Ok(())
    }

    fn reader(&self) -> TableNodes<'_, NodesTable> {
        TableNodes {
            origin: self.origin,
            size: self.current,
            table: self.table,
        }
    }
}

fn range_or_store(e: TreeError<StoreError>, current: u64) -> LogQueryError {
    match e {
        TreeError::Store(s) => LogQueryError::Store(s),
        other => LogQueryError::Range(format!("{other} (log size {current})")),
    }
}
