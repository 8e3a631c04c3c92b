//! `evidentia check`: an offline walk of the whole database that reports damaged data.
//!
//! With the appliance stopped (redb's file lock refuses a second opener), it decrypts every
//! stored raw body and artifact with its tenant's content key (the key file beside the
//! database, read only) and checks it against its SHA-256, every event against its evidence-log
//! leaf, and every transparency log bottom-up (RFC 9162 §2.1.1): each entry against its leaf
//! hash, each stored subtree hash against its two children, the root at the signed size
//! against the checkpoint, and the checkpoint's signature against the appliance's keys. Memory
//! stays constant: every pass streams a table in key order. Last, every sealed secret
//! ([`super::sealed`]) is opened with the data key (read only, never created): one that does
//! not open is a finding.

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::codec::{dec, open};
use super::events::{EventRow, sha256_bytes, webhook_leaf};
use super::ids::IdKey;
use super::log::KeyRecord;
use super::tenant_keys::{Content, TenantKeys, key_file_of};
use super::{
    ARTIFACT_BLOBS, ARTIFACTS, CHECKPOINTS, EVENT_BODIES, EVENTS, KEYS, LOG_ENTRIES, LOG_NODES,
    LOG_SIZE, META, SCHEMA_VERSION, StoreError, audit, data_dir_of,
};
use crate::evidence::ArtifactRecord;
use crate::seal::{KeySource, Keyring};
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::{Checkpoint, VerifierKey, verify_note_any};

/// One damaged or inconsistent item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `body`, `artifact`, `event`, `entry`, `node`, `root`, `checkpoint`, `secret`.
    pub kind: &'static str,
    /// Where: tenant, event id, run and artifact, or log origin and position.
    pub location: String,
    /// What does not match.
    pub detail: String,
}

/// What `evidentia check` walked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events read.
    pub events: u64,
    /// Raw bodies checked against their digest.
    pub bodies: u64,
    /// Artifacts checked against their digest.
    pub artifacts: u64,
    /// Logs walked.
    pub logs: u64,
    /// Log entries checked against their leaf hash.
    pub entries: u64,
    /// Interior subtree hashes recomputed.
    pub nodes: u64,
    /// Signed checkpoints checked (root and signature).
    pub checkpoints: u64,
    /// Sealed secrets opened with the data key.
    pub secrets: u64,
    /// Everything that did not match, in walk order.
    pub findings: Vec<Finding>,
}

impl Report {
    fn find(&mut self, kind: &'static str, location: String, detail: impl Into<String>) {
        self.findings.push(Finding {
            kind,
            location,
            detail: detail.into(),
        });
    }
}

/// Walks the database file at `path` (opened exclusively, so never while a server holds it),
/// with the data key of its data directory (`secrets/DATA_KEY`).
///
/// # Errors
/// [`StoreError::Db`] when the file cannot be opened (in use, not a database) or read.
pub fn check_database(path: &Path) -> Result<Report, StoreError> {
    check_database_with(path, &KeySource::DataDir)
}

/// [`check_database`] with the data key from `data_key` (a systemd credential). A data key
/// that cannot be loaded makes every sealed secret a finding, not the check fail.
///
/// # Errors
/// As [`check_database`].
pub fn check_database_with(path: &Path, data_key: &KeySource) -> Result<Report, StoreError> {
    let db = Database::open(path)?;
    let r = db.begin_read()?;
    let mut report = Report::default();
    let prefix = origin_prefix(&r)?;
    let keys = TenantKeys::read_only(&key_file_of(path))?;
    check_events(&r, &keys, &prefix, &mut report)?;
    check_artifacts(&r, &keys, &mut report)?;
    check_logs(&r, &mut report)?;
    let ring = data_key
        .load(data_dir_of(path))
        .map_err(|e| format!("the data key cannot be loaded: {e}"));
    check_secrets(&r, ring.as_ref(), &mut report)?;
    Ok(report)
}

fn check_secrets(
    r: &ReadTransaction,
    ring: Result<&Keyring, &String>,
    report: &mut Report,
) -> Result<(), StoreError> {
    for v in super::sealed::sealed_values(r)? {
        report.secrets += 1;
        let opened = match ring {
            Ok(ring) => ring
                .open(&v.sealed, &v.ctx())
                .map_err(|e| e.to_string())
                .and_then(|plain| {
                    String::from_utf8(plain).map_err(|_| "the secret is not UTF-8".to_string())
                }),
            Err(why) => Err(why.clone()),
        };
        if let Err(why) = opened {
            report.find("secret", v.location(), why);
        }
    }
    Ok(())
}

/// The schema this build reads, and the key that hides positions in event ids.
fn id_key(r: &ReadTransaction) -> Result<IdKey, StoreError> {
    let meta = r.open_table(META)?;
    let version = meta
        .get("schema_version")?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_be_bytes);
    if version != Some(SCHEMA_VERSION) {
        return Err(StoreError::Db(format!(
            "schema version {version:?}, not {SCHEMA_VERSION}: start this version's `evidentia serve` once to migrate it, then check"
        )));
    }
    meta.get("id_key")?
        .and_then(|v| IdKey::try_from(v.value()).ok())
        .ok_or_else(|| StoreError::Corrupt {
            table: "meta",
            message: "id_key missing".into(),
        })
}

fn origin_prefix(r: &ReadTransaction) -> Result<Option<String>, StoreError> {
    let meta = r.open_table(META)?;
    let stored = meta
        .get("origin_prefix")?
        .map(|v| String::from_utf8_lossy(v.value()).into_owned());
    if stored.is_some() {
        return Ok(stored);
    }
    // Databases from before the prefix was recorded: the name of the first signing key.
    let keys = r.open_table(KEYS)?;
    let first = keys
        .iter()?
        .next()
        .transpose()?
        .and_then(|(_, v)| serde_json::from_slice::<KeyRecord>(v.value()).ok())
        .map(|k| k.name);
    Ok(first)
}

/// Decrypts a stored value of `tenant`, or says why it cannot be.
fn decrypt(
    keys: &TenantKeys,
    tenant: &str,
    kind: Content,
    value: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let key = keys
        .get(tenant)
        .ok_or("the tenant has no content key (key file missing or its slot destroyed)")?;
    key.decrypt(kind, value)
        .ok_or("the stored value does not decrypt under the tenant's key")
}

fn check_events(
    r: &ReadTransaction,
    keys: &TenantKeys,
    prefix: &Option<String>,
    report: &mut Report,
) -> Result<(), StoreError> {
    let events = r.open_table(EVENTS)?;
    let bodies = r.open_table(EVENT_BODIES)?;
    let entries = r.open_table(LOG_ENTRIES)?;
    let id_key = id_key(r)?;
    for item in events.iter()? {
        let (k, v) = item?;
        let (tenant, seq) = k.value();
        report.events += 1;
        let (row, leaf): (EventRow, u64) = match open("events", v.value()) {
            Ok(x) => x,
            Err(e) => {
                report.find(
                    "event",
                    format!("tenant {tenant}, seq {seq}"),
                    e.to_string(),
                );
                continue;
            }
        };
        let id = row.id(&id_key, tenant, seq);
        let at = format!("tenant {tenant}, event {id}");
        if let Some(body) = bodies.get((tenant, seq))? {
            report.bodies += 1;
            match decrypt(keys, tenant, Content::Body, body.value()) {
                Ok(plain) if sha256_bytes(&plain) == row.sha256 => {}
                Ok(_) => report.find(
                    "body",
                    at.clone(),
                    "the raw body does not match its SHA-256",
                ),
                Err(why) => report.find("body", at.clone(), why),
            }
        }
        if leaf != super::events::NO_LEAF
            && let Some(prefix) = prefix
        {
            let origin = audit::log_origin(prefix, tenant, "evidence");
            let expected = webhook_leaf(&row.record(&id_key, tenant, seq))?;
            match entries.get((origin.as_str(), leaf))? {
                Some(e) if e.value() == expected.as_slice() => {}
                Some(_) => report.find(
                    "event",
                    at,
                    format!("its notarised entry {leaf} of {origin} describes another delivery"),
                ),
                None => report.find(
                    "event",
                    at,
                    format!("its entry {leaf} of {origin} is missing"),
                ),
            }
        }
    }
    Ok(())
}

fn check_artifacts(
    r: &ReadTransaction,
    keys: &TenantKeys,
    report: &mut Report,
) -> Result<(), StoreError> {
    let artifacts = r.open_table(ARTIFACTS)?;
    let blobs = r.open_table(ARTIFACT_BLOBS)?;
    for item in artifacts.iter()? {
        let (k, v) = item?;
        let (tenant, run, id) = k.value();
        let at = format!("tenant {tenant}, run {run}, artifact {id}");
        let rec: ArtifactRecord = match dec("artifacts", v.value()) {
            Ok(rec) => rec,
            Err(e) => {
                report.find("artifact", at, e.to_string());
                continue;
            }
        };
        if let Some(bytes) = blobs.get((tenant, run, id))? {
            report.artifacts += 1;
            match decrypt(keys, tenant, Content::Artifact, bytes.value()) {
                Ok(plain) if crate::ingest::sha256_hex(&plain) == rec.sha256 => {}
                Ok(_) => report.find(
                    "artifact",
                    at,
                    "the stored bytes do not match their SHA-256",
                ),
                Err(why) => report.find("artifact", at, why),
            }
        }
    }
    Ok(())
}

fn check_logs(r: &ReadTransaction, report: &mut Report) -> Result<(), StoreError> {
    let keys: Vec<VerifierKey> = {
        let t = r.open_table(KEYS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, _) = item?;
            if let Ok(vk) = k.value().parse::<VerifierKey>() {
                out.push(vk);
            }
        }
        out
    };
    let sizes = r.open_table(LOG_SIZE)?;
    let entries = r.open_table(LOG_ENTRIES)?;
    let nodes = r.open_table(LOG_NODES)?;
    let checkpoints = r.open_table(CHECKPOINTS)?;
    for item in sizes.iter()? {
        let (k, v) = item?;
        let (origin, size) = (k.value().to_string(), v.value());
        report.logs += 1;
        let node = |level: u8, index: u64| -> Result<Option<Hash>, StoreError> {
            Ok(nodes
                .get((origin.as_str(), level, index))?
                .and_then(|v| Hash::try_from(v.value()).ok()))
        };
        // Level 0: every entry hashes to its leaf.
        for index in 0..size {
            report.entries += 1;
            let at = format!("log {origin}, entry {index}");
            match entries.get((origin.as_str(), index))? {
                None => report.find("entry", at, "missing"),
                Some(e) => {
                    if node(0, index)? != Some(merkle::leaf_hash(e.value())) {
                        report.find("entry", at, "does not match its leaf hash");
                    }
                }
            }
        }
        // Every complete subtree hash from its two children.
        let mut level: u8 = 1;
        while level < 64 && (size >> level) > 0 {
            for index in 0..(size >> level) {
                report.nodes += 1;
                let children = (node(level - 1, 2 * index)?, node(level - 1, 2 * index + 1)?);
                let expected = match children {
                    (Some(l), Some(r)) => Some(merkle::node_hash(&l, &r)),
                    _ => None,
                };
                if expected.is_none() || node(level, index)? != expected {
                    report.find(
                        "node",
                        format!("log {origin}, level {level}, index {index}"),
                        "does not match the hash of its children",
                    );
                }
            }
            level += 1;
        }
        // The signed checkpoint: signature, size and root.
        let Some(note) = checkpoints
            .get(origin.as_str())?
            .map(|v| v.value().to_string())
        else {
            if size > 0 {
                report.find("checkpoint", format!("log {origin}"), "missing");
            }
            continue;
        };
        report.checkpoints += 1;
        let at = format!("log {origin}, checkpoint");
        let body = match verify_note_any(&note, &keys) {
            Ok((body, _)) => body,
            Err(e) => {
                report.find("checkpoint", at, format!("signature: {e}"));
                continue;
            }
        };
        let cp = match Checkpoint::parse_body(&body) {
            Ok(cp) => cp,
            Err(e) => {
                report.find("checkpoint", at, e.to_string());
                continue;
            }
        };
        if cp.origin != origin || cp.size > size {
            report.find(
                "checkpoint",
                at,
                format!(
                    "signs {} at size {}, the log is {origin} at size {size}",
                    cp.origin, cp.size
                ),
            );
            continue;
        }
        let reader = super::log::TableNodes {
            origin: &origin,
            size,
            table: &nodes,
        };
        match merkle::root(&reader, cp.size) {
            Ok(root) if root == cp.root => {}
            Ok(_) => report.find(
                "root",
                at,
                format!("the tree at size {} does not have the signed root", cp.size),
            ),
            Err(e) => report.find("root", at, e.to_string()),
        }
    }
    Ok(())
}
