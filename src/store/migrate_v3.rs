//! Schema 3 → 4: secrets sealed at rest. Every webhook-source secret and tenant HS256 receipt
//! key that schema 3 stored in plaintext is sealed under the active data key
//! ([`crate::seal`], the contexts in [`super::sealed`]) inside the opening write transaction.
//! The data key file is written (and synced) before that transaction commits, so a crash
//! leaves either schema 3 untouched or schema 4 complete.
//!
//! The plaintext the old pages held is not overwritten: redb is copy-on-write and never zeroes
//! a freed page, so it stays readable in the file until redb reuses the page, and in every
//! backup taken before. Whoever may have read those should rotate the secrets themselves.

use redb::WriteTransaction;

use super::StoreError;
use super::sealed::seal_err;
use crate::seal::{Keyring, SealContext};

/// Seals the plaintext secrets of a schema-3 database in `txn`; how many.
///
/// # Errors
/// [`StoreError`]; nothing is committed then.
pub(crate) fn seal_secrets(txn: &WriteTransaction, ring: &Keyring) -> Result<u64, StoreError> {
    let mut seal = |ctx: &SealContext<'_>, plain: &str| -> Result<String, StoreError> {
        ring.seal(plain.as_bytes(), ctx).map_err(seal_err)
    };
    let mut done = super::sources::rewrite_secrets(txn, &mut seal)?;
    done += super::evidence::rewrite_signing_key_secrets(txn, &mut seal)?;
    tracing::info!(
        values = done,
        data_key = ring.active_kid(),
        "stored secrets sealed at rest under the data key"
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase, ReadableTable};

    use crate::evidence::SigningKeyRecord;
    use crate::ingest::SourceRecord;
    use crate::seal::{Keyring, key_path};
    use crate::store::sealed::tests::{
        RECEIPT_KEY, SECRETS, SOURCE_ID, assert_plaintext_served, fixture, open_store, stored,
    };
    use crate::store::{META, SCHEMA_VERSION, SIGNING_KEYS, SOURCES};

    /// Turns a schema-4 database back into what schema 3 wrote: every secret in plaintext,
    /// schema version 3, and no data key file (schema 3 had none).
    fn back_to_v3(path: &std::path::Path) {
        let key_file = key_path(path.parent().unwrap());
        let ring = Keyring::load_file(&key_file).unwrap();
        let db = Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(SOURCES).unwrap();
            let mut src: SourceRecord =
                serde_json::from_slice(t.get(SOURCE_ID).unwrap().unwrap().value()).unwrap();
            for s in &mut src.secrets {
                let field = format!("secret:{}", s.n);
                let ctx = crate::seal::SealContext {
                    tenant: "acme",
                    record: SOURCE_ID,
                    field: &field,
                };
                s.value = String::from_utf8(ring.open(&s.value, &ctx).unwrap()).unwrap();
            }
            t.insert(SOURCE_ID, serde_json::to_vec(&src).unwrap().as_slice())
                .unwrap();
            let mut t = txn.open_table(SIGNING_KEYS).unwrap();
            let mut key: SigningKeyRecord =
                serde_json::from_slice(t.get(("acme", "k1")).unwrap().unwrap().value()).unwrap();
            let ctx = crate::seal::SealContext {
                tenant: "acme",
                record: "k1",
                field: "receipt_key",
            };
            key.secret = Some(
                String::from_utf8(ring.open(key.secret.as_ref().unwrap(), &ctx).unwrap()).unwrap(),
            );
            t.insert(("acme", "k1"), serde_json::to_vec(&key).unwrap().as_slice())
                .unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 3u64.to_be_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
        std::fs::remove_file(&key_file).unwrap();
    }

    fn schema_version(path: &std::path::Path) -> u64 {
        let db = Database::open(path).unwrap();
        let r = db.begin_read().unwrap();
        let v = r
            .open_table(META)
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        u64::from_be_bytes(v.try_into().unwrap())
    }

    /// A schema-3 database (plaintext source secrets and receipt key, no data key file) opens
    /// as schema 4 with every secret sealed under a new data key, served as before; a second
    /// open changes nothing.
    #[tokio::test]
    async fn a_version_3_database_has_its_secrets_sealed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.redb");
        fixture(&path).await;
        back_to_v3(&path);
        let mut plain = SECRETS.map(str::to_string).to_vec();
        plain.push(RECEIPT_KEY.into());
        assert_eq!(stored(&path), plain);
        assert_eq!(schema_version(&path), 3);

        let store = open_store(&path).unwrap();
        assert_eq!(
            store.meta("schema_version").unwrap().unwrap(),
            SCHEMA_VERSION.to_be_bytes()
        );
        assert_plaintext_served(&store);
        store.shutdown();
        drop(store);
        let ring = Keyring::load_file(&key_path(dir.path())).unwrap();
        let sealed = stored(&path);
        for (value, secret) in sealed.iter().zip(&plain) {
            assert_eq!(Keyring::kid_of(value).unwrap(), ring.active_kid());
            assert!(!value.contains(secret.as_str()));
        }

        // A second open migrates nothing again.
        let store = open_store(&path).unwrap();
        assert_plaintext_served(&store);
        store.shutdown();
        drop(store);
        assert_eq!(stored(&path), sealed);
        assert_eq!(schema_version(&path), SCHEMA_VERSION);
    }
}
