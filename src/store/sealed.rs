//! Every secret the database holds, sealed at rest ([`crate::seal`]): where the sealed columns
//! are, the check at open that the data keys they name are at hand, the offline walk of
//! `evidentia check`, and `evidentia admin rotate-data-key`.
//!
//! The sealed columns (schema 4):
//!
//! | table | value | context `{tenant, record, field}` |
//! |---|---|---|
//! | `sources` | each `secrets[].value` | source's tenant, source id, `secret:<n>` |
//! | `signing_keys` | an HS256 key's `secret` | key's tenant, kid, `receipt_key` |
//! | `integrations` | each `secrets[].value`; a HEC token; each extra header's value | integration's tenant, its id, `secret:<n>`; `hec_token`; `header:<name>` |
//!
//! A new table holding a secret adds itself to [`sealed_values`] (read side: the open-time key
//! check and `evidentia check`) and to [`reseal_all`] (rotation); nothing else needs to know.
//!
//! Secrets that are **not** in the database, or not secret there: API tokens and sessions are
//! stored as SHA-256 digests, passwords as argon2id PHC strings, the appliance secrets are
//! files in `<data_dir>/secrets/`, tenant content keys are in `<database>.keys`, the id key in
//! `meta` only hides row positions the file itself holds.

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::{META, SCHEMA_VERSION, StoreError};
use crate::seal::{Keyring, SealContext, SealError};

/// One sealed value and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealedValue {
    /// The table holding it.
    pub table: &'static str,
    /// Context: tenant.
    pub tenant: String,
    /// Context: record id.
    pub record: String,
    /// Context: field.
    pub field: String,
    /// `v1:<kid>:<nonce>:<ciphertext>`.
    pub sealed: String,
}

impl SealedValue {
    /// The context it is bound to.
    pub fn ctx(&self) -> SealContext<'_> {
        SealContext {
            tenant: &self.tenant,
            record: &self.record,
            field: &self.field,
        }
    }

    /// Where it is, for messages: `tenant acme, sources src_… secret:1`.
    pub fn location(&self) -> String {
        format!(
            "tenant {}, {} {} {}",
            self.tenant, self.table, self.record, self.field
        )
    }
}

/// A sealing failure as a storage failure (the RNG, or a value that does not open while it is
/// rewritten).
pub(crate) fn seal_err(e: SealError) -> StoreError {
    StoreError::Corrupt {
        table: "sealed secret",
        message: e.to_string(),
    }
}

/// Every sealed value in the database. Secrets are configuration-sized (one per source slot,
/// signing key or integration), so they are collected in memory.
///
/// # Errors
/// [`StoreError`] reading a table or decoding a record.
pub(crate) fn sealed_values(r: &ReadTransaction) -> Result<Vec<SealedValue>, StoreError> {
    let mut out = Vec::new();
    super::sources::sealed_values(r, &mut out)?;
    super::evidence::sealed_signing_keys(r, &mut out)?;
    super::integrations::sealed_values(r, &mut out)?;
    Ok(out)
}

/// Reseals every sealed value in `txn` under `ring`'s active key (values already under it are
/// only checked); how many values. The caller commits.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the first value that does not open; nothing is committed
/// then.
pub(crate) fn reseal_all(txn: &WriteTransaction, ring: &Keyring) -> Result<u64, StoreError> {
    let mut reseal = |ctx: &SealContext<'_>, sealed: &str| -> Result<String, StoreError> {
        ring.reseal(sealed, ctx).map_err(|e| StoreError::Corrupt {
            table: "sealed secret",
            message: format!(
                "the sealed {} of {} in tenant {}: {e}",
                ctx.field, ctx.record, ctx.tenant
            ),
        })
    };
    let mut done = super::sources::rewrite_secrets(txn, &mut reseal)?;
    done += super::evidence::rewrite_signing_key_secrets(txn, &mut reseal)?;
    done += super::integrations::rewrite_secrets(txn, &mut reseal)?;
    Ok(done)
}

/// Refuses to open a database holding a value sealed under a data key that `ring` does not
/// hold (the data key file was lost, replaced, or belongs to another appliance): serving its
/// sources without their secrets, and sealing new ones under a fresh key, would lose them
/// without a word. `key_file` names the file for the message.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the first such value and the key it needs.
pub(crate) fn require_keys(
    db: &Database,
    ring: &Keyring,
    key_file: &Path,
) -> Result<(), StoreError> {
    let r = db.begin_read()?;
    for v in sealed_values(&r)? {
        // A malformed value is damage the loaders report; only a missing key refuses.
        if let Ok(kid) = Keyring::kid_of(&v.sealed)
            && !ring.holds(kid)
        {
            return Err(StoreError::Corrupt {
                table: v.table,
                message: format!(
                    "{} is sealed under data key {kid}, which {} does not hold (it holds {}): \
                     restore the data key file that was backed up with this database",
                    v.location(),
                    key_file.display(),
                    ring.kids().join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The outcome of [`rotate_data_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRotation {
    /// Key ids the file held before, now retired and removed.
    pub old_kids: Vec<String>,
    /// Id of the new key, the only one left.
    pub new_kid: String,
    /// Sealed values resealed under it.
    pub resealed: u64,
}

/// `evidentia admin rotate-data-key`: with the appliance stopped, generates a new data key,
/// reseals every sealed value of the database at `db_path` under it in one transaction, and
/// removes the old keys from `key_file` (`<data_dir>/secrets/DATA_KEY`).
///
/// Crash-safe by order: (1) every value is checked to open; (2) the file is saved with the new
/// key appended (old keys kept); (3) one transaction reseals and commits; (4) only then the
/// old keys are dropped from the file. A crash between any two steps leaves a file that holds
/// every key a committed value names, and running the command again finishes the job.
///
/// # Errors
/// [`StoreError::Db`] when the database cannot be opened (redb's lock: the appliance is
/// running) or is not at this build's schema, or the key file cannot be read or written;
/// [`StoreError::Corrupt`] naming a value that does not open (nothing is changed then).
pub fn rotate_data_key(db_path: &Path, key_file: &Path) -> Result<DataKeyRotation, StoreError> {
    let key_err = |e: SealError| StoreError::Db(e.to_string());
    let db = Database::open(db_path)?;
    {
        let r = db.begin_read()?;
        let version = r
            .open_table(META)?
            .get("schema_version")?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map(u64::from_be_bytes);
        if version != Some(SCHEMA_VERSION) {
            return Err(StoreError::Db(format!(
                "schema version {version:?}, not {SCHEMA_VERSION}: start this version's `evidentia serve` once to migrate it, then rotate"
            )));
        }
    }
    let mut ring = Keyring::load_file(key_file).map_err(key_err)?;
    // (1) Nothing changes if some value would not reseal.
    {
        let r = db.begin_read()?;
        for v in sealed_values(&r)? {
            if let Err(e) = ring.open(&v.sealed, &v.ctx()) {
                return Err(StoreError::Corrupt {
                    table: v.table,
                    message: format!(
                        "{} does not open ({e}); run `evidentia check`, repair it, then rotate",
                        v.location()
                    ),
                });
            }
        }
    }
    let old_kids: Vec<String> = ring.kids().into_iter().map(str::to_string).collect();
    // (2) The new key is durable before anything is sealed under it.
    let new_kid = ring.rotate().map_err(key_err)?;
    ring.save(key_file).map_err(key_err)?;
    // (3) Everything under the new key, in one commit.
    let txn = db.begin_write()?;
    let resealed = reseal_all(&txn, &ring)?;
    txn.commit()?;
    // (4) The old keys open nothing any more.
    for kid in &old_kids {
        if *kid != new_kid {
            ring.retire(kid).map_err(key_err)?;
        }
    }
    ring.save(key_file).map_err(key_err)?;
    Ok(DataKeyRotation {
        old_kids,
        new_kid,
        resealed,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use redb::ReadableTable;

    use super::*;
    use crate::evidence::SigningKeyRecord;
    use crate::evidence::receipt::KeyMaterial;
    use crate::ingest::{Provider, SecretEntry, SourceRecord};
    use crate::metrics::Metrics;
    use crate::seal::key_path;
    use crate::store::{SIGNING_KEYS, SOURCES, Store, data_dir_of};
    use crate::tlog::NoteSigner;

    pub(crate) const SOURCE_ID: &str = "src_00000000000000000000000000000001";
    pub(crate) const SECRETS: [&str; 2] = ["first-source-secret-0001", "second-source-secret-02"];
    pub(crate) const RECEIPT_KEY: &str = "tenant-receipt-hs256-secret-0123456789";

    pub(crate) fn open_store(path: &Path) -> Result<Store, StoreError> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let signer = Arc::new(NoteSigner::new("evidentia.test", key).unwrap());
        Store::open(path, Arc::new(Metrics::new()), signer, 1 << 20, 0)
    }

    /// A store at `path` holding one GitHub source with two secrets and one HS256 receipt key
    /// of tenant `acme`, shut down.
    pub(crate) async fn fixture(path: &Path) {
        let store = open_store(path).unwrap();
        let source = SourceRecord {
            id: SOURCE_ID.into(),
            tenant: "acme".into(),
            provider: Provider::Github,
            secrets: SECRETS
                .iter()
                .zip(1..)
                .map(|(s, n)| SecretEntry {
                    n,
                    value: (*s).to_string(),
                    created_at: 0,
                    expires_at: None,
                })
                .collect(),
            uses_appliance_secret: false,
            max_payload_bytes: 1 << 20,
            generic: None,
            rate_per_second: 10,
            rate_burst: 10,
            created_at: 0,
        };
        assert!(store.insert_source(source, Vec::new()).await.unwrap());
        let key = SigningKeyRecord::register(
            "acme",
            "k1",
            KeyMaterial::Hs256(RECEIPT_KEY.into()),
            "default",
            0,
        )
        .unwrap();
        assert!(store.put_signing_key(key, Vec::new()).await.unwrap());
        store.shutdown();
    }

    /// The values as stored: the source's secrets, then the receipt key.
    pub(crate) fn stored(path: &Path) -> Vec<String> {
        let db = Database::open(path).unwrap();
        let r = db.begin_read().unwrap();
        let src: SourceRecord = serde_json::from_slice(
            r.open_table(SOURCES)
                .unwrap()
                .get(SOURCE_ID)
                .unwrap()
                .unwrap()
                .value(),
        )
        .unwrap();
        let key: SigningKeyRecord = serde_json::from_slice(
            r.open_table(SIGNING_KEYS)
                .unwrap()
                .get(("acme", "k1"))
                .unwrap()
                .unwrap()
                .value(),
        )
        .unwrap();
        let mut out: Vec<String> = src.secrets.into_iter().map(|s| s.value).collect();
        out.extend(key.secret);
        out
    }

    /// The store serves the fixture's secrets in plaintext.
    pub(crate) fn assert_plaintext_served(store: &Store) {
        let src = store.get_source(SOURCE_ID).unwrap().unwrap();
        assert_eq!(src.active_secrets(0), SECRETS);
        let key = store.get_signing_key("acme", "k1").unwrap().unwrap();
        assert_eq!(key.secret.as_deref(), Some(RECEIPT_KEY));
        assert_eq!(store.list_signing_keys("acme").unwrap(), vec![key]);
        assert_eq!(store.damage_seen(), 0);
    }

    fn kids_in_file(path: &Path) -> Vec<String> {
        Keyring::load_file(&key_path(data_dir_of(path)))
            .unwrap()
            .kids()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn secrets_are_stored_sealed_and_served_in_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        fixture(&path).await;
        let kid = kids_in_file(&path).remove(0);
        for value in stored(&path) {
            assert!(value.starts_with(&format!("v1:{kid}:")), "{value}");
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in SECRETS.iter().chain([&RECEIPT_KEY]) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the file"
            );
        }
        let store = open_store(&path).unwrap();
        assert_plaintext_served(&store);
        // A rotation of the source's secret rewrites the record: still sealed, still served.
        store
            .modify_source(
                "acme".into(),
                SOURCE_ID.into(),
                |s: &mut SourceRecord| -> Result<(), ()> {
                    s.secrets[0].expires_at = Some(5);
                    Ok(())
                },
                Vec::new(),
            )
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let src = store.get_source(SOURCE_ID).unwrap().unwrap();
        assert_eq!(src.active_secrets(6), vec![SECRETS[1]]);
        store.shutdown();
        drop(store);
        for value in stored(&path) {
            assert!(value.starts_with(&format!("v1:{kid}:")), "{value}");
        }
        // `evidentia check` opens them all.
        let report = crate::store::check_database(&path).unwrap();
        assert_eq!(report.secrets, 3);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }

    /// A sealed value moved to another slot does not open: `check` reports it, the source is
    /// served without it (counted as damage), and a rotation refuses before changing anything.
    #[tokio::test]
    async fn a_value_that_does_not_open_is_found_and_stops_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        fixture(&path).await;
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(SOURCES).unwrap();
                let mut src: SourceRecord =
                    serde_json::from_slice(t.get(SOURCE_ID).unwrap().unwrap().value()).unwrap();
                // Slot 1's sealed value copied into slot 2: bound to `secret:1`, it fails there.
                src.secrets[1].value = src.secrets[0].value.clone();
                t.insert(SOURCE_ID, serde_json::to_vec(&src).unwrap().as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let report = crate::store::check_database(&path).unwrap();
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(f.kind, "secret");
        assert!(
            f.location.contains(SOURCE_ID) && f.location.contains("secret:2"),
            "{f:?}"
        );

        let key_file = key_path(dir.path());
        let before = std::fs::read(&key_file).unwrap();
        let err = rotate_data_key(&path, &key_file).unwrap_err().to_string();
        assert!(
            err.contains("secret:2") && err.contains("does not open"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&key_file).unwrap(),
            before,
            "key file unchanged"
        );

        let store = open_store(&path).unwrap();
        let src = store.get_source(SOURCE_ID).unwrap().unwrap();
        assert_eq!(src.active_secrets(0), vec![SECRETS[0]]);
        assert_eq!(store.damage_seen(), 1);
    }

    #[tokio::test]
    async fn rotation_reseals_everything_and_retires_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        fixture(&path).await;
        let key_file = key_path(dir.path());
        let old = kids_in_file(&path);

        // While the database is open (here: by this process), redb's lock refuses.
        let store = open_store(&path).unwrap();
        let err = rotate_data_key(&path, &key_file).unwrap_err().to_string();
        assert!(err.contains("already open"), "{err}");
        store.shutdown();
        drop(store);
        assert_eq!(kids_in_file(&path), old);

        let done = rotate_data_key(&path, &key_file).unwrap();
        assert_eq!(done.old_kids, old);
        assert_eq!(done.resealed, 3);
        assert!(!old.contains(&done.new_kid));
        assert_eq!(kids_in_file(&path), vec![done.new_kid.clone()]);
        for value in stored(&path) {
            assert_eq!(Keyring::kid_of(&value).unwrap(), done.new_kid);
        }
        let store = open_store(&path).unwrap();
        assert_plaintext_served(&store);
    }

    /// A rotation interrupted after the new key was saved but before the reseal committed
    /// leaves both keys in the file: the appliance still opens, and the next rotation retires
    /// both.
    #[tokio::test]
    async fn an_interrupted_rotation_leaves_an_openable_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        fixture(&path).await;
        let key_file = key_path(dir.path());
        let mut ring = Keyring::load_file(&key_file).unwrap();
        let first = ring.active_kid().to_string();
        let second = ring.rotate().unwrap();
        ring.save(&key_file).unwrap();
        // "Crash": nothing resealed.
        let store = open_store(&path).unwrap();
        assert_plaintext_served(&store);
        store.shutdown();
        drop(store);
        let done = rotate_data_key(&path, &key_file).unwrap();
        assert_eq!(done.old_kids, vec![first, second]);
        assert_eq!(kids_in_file(&path), vec![done.new_kid]);
        let store = open_store(&path).unwrap();
        assert_plaintext_served(&store);
    }

    /// A data key file that does not hold the key the secrets are sealed under (lost and
    /// regenerated, or another appliance's) refuses the open, naming what to restore.
    #[tokio::test]
    async fn a_lost_data_key_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        fixture(&path).await;
        let key_file = key_path(dir.path());
        let saved = std::fs::read(&key_file).unwrap();
        std::fs::remove_file(&key_file).unwrap();
        let err = open_store(&path).unwrap_err().to_string();
        assert!(
            err.contains("restore the data key file") && err.contains(SOURCE_ID),
            "{err}"
        );
        std::fs::write(&key_file, saved).unwrap();
        let store = open_store(&path).unwrap();
        assert_plaintext_served(&store);
    }

    /// The database file and the tenant key file beside it are created 0600.
    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_key_files_are_created_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        let store = open_store(&path).unwrap();
        store.shutdown();
        for file in [
            path.clone(),
            crate::store::key_file_of(&path),
            key_path(dir.path()),
        ] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
}
