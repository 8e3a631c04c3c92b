//! Schema 2 → 3: tenant content encrypted at rest. Every raw event body, insight payload and
//! artifact's bytes written in plaintext by schema 2 is encrypted under its tenant's content
//! key ([`super::tenant_keys`]) inside the opening write transaction, a bounded chunk of rows
//! in memory at a time; keys are made (and synced) before that transaction commits, so a crash
//! leaves either schema 2 untouched or schema 3 complete.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::codec::{open, seal};
use super::insights::InsightRow;
use super::*;

/// Rows (bodies and insights) held in memory at a time.
const CHUNK_ROWS: usize = 1024;
/// Artifacts held in memory at a time (each up to the upload cap).
const CHUNK_ARTIFACTS: usize = 16;

/// Rewrites every row of a `(tenant, seq)` table through `f`, [`CHUNK_ROWS`] rows in memory
/// at a time; how many.
fn rewrite_seq_rows(
    txn: &WriteTransaction,
    table: TableDefinition<(&str, u64), &[u8]>,
    mut f: impl FnMut(&str, &[u8]) -> Result<Vec<u8>, StoreError>,
) -> Result<u64, StoreError> {
    let mut done = 0u64;
    let mut from: Option<(String, u64)> = None;
    loop {
        let chunk: Vec<(String, u64, Vec<u8>)> = {
            let t = txn.open_table(table)?;
            let range = match &from {
                Some((tn, seq)) => t.range((tn.as_str(), *seq)..)?,
                None => t.range::<(&str, u64)>(..)?,
            };
            let mut chunk = Vec::new();
            for item in range {
                let (k, v) = item?;
                let (tn, seq) = k.value();
                if from.as_ref().is_some_and(|(t, s)| t == tn && *s == seq) {
                    continue;
                }
                chunk.push((tn.to_string(), seq, v.value().to_vec()));
                if chunk.len() == CHUNK_ROWS {
                    break;
                }
            }
            chunk
        };
        let Some((tn, seq, _)) = chunk.last() else {
            return Ok(done);
        };
        from = Some((tn.clone(), *seq));
        let mut t = txn.open_table(table)?;
        for (tn, seq, value) in &chunk {
            t.insert((tn.as_str(), *seq), f(tn, value)?.as_slice())?;
            done += 1;
        }
    }
}

/// Encrypts the plaintext content of a schema-2 database in `txn`.
///
/// # Errors
/// [`StoreError`]; nothing is committed then.
pub(crate) fn encrypt_content(txn: &WriteTransaction, keys: &TenantKeys) -> Result<(), StoreError> {
    // Bodies: (tenant, seq) → bytes.
    let mut done = rewrite_seq_rows(txn, EVENT_BODIES, |tenant, plain| {
        keys.get_or_create(tenant)?.encrypt(Content::Body, plain)
    })?;
    // Insights: the payload inside each row.
    done += rewrite_seq_rows(txn, INSIGHTS, |tenant, raw| {
        let (mut row, event_seq): (InsightRow, u64) = open("insights", raw)?;
        row.payload = keys
            .get_or_create(tenant)?
            .encrypt(Content::Insight, &row.payload)?;
        seal(&row, event_seq)
    })?;
    // Artifacts: (tenant, run, id) → bytes.
    let mut from: Option<(String, String, String)> = None;
    loop {
        let chunk: Vec<(String, String, String, Vec<u8>)> = {
            let t = txn.open_table(ARTIFACT_BLOBS)?;
            let range = match &from {
                Some((tn, run, id)) => t.range((tn.as_str(), run.as_str(), id.as_str())..)?,
                None => t.range::<(&str, &str, &str)>(..)?,
            };
            let mut chunk = Vec::new();
            for item in range {
                let (k, v) = item?;
                let (tn, run, id) = k.value();
                if from
                    .as_ref()
                    .is_some_and(|(t, r, i)| t == tn && r == run && i == id)
                {
                    continue;
                }
                chunk.push((
                    tn.to_string(),
                    run.to_string(),
                    id.to_string(),
                    v.value().to_vec(),
                ));
                if chunk.len() == CHUNK_ARTIFACTS {
                    break;
                }
            }
            chunk
        };
        let Some((tn, run, id, _)) = chunk.last() else {
            break;
        };
        from = Some((tn.clone(), run.clone(), id.clone()));
        let mut t = txn.open_table(ARTIFACT_BLOBS)?;
        for (tn, run, id, plain) in &chunk {
            let sealed = keys.get_or_create(tn)?.encrypt(Content::Artifact, plain)?;
            t.insert((tn.as_str(), run.as_str(), id.as_str()), sealed.as_slice())?;
            done += 1;
        }
    }
    tracing::info!(
        values = done,
        "tenant content encrypted at rest under per-tenant keys"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use redb::Database;

    use super::*;
    use crate::evidence::artifact::check_content;
    use crate::evidence::{ArtifactRecord, ArtifactType};
    use crate::metrics::Metrics;
    use crate::tlog::NoteSigner;

    fn open_store(path: &std::path::Path) -> Store {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let signer = Arc::new(NoteSigner::new("evidentia.test", key).unwrap());
        Store::open(path, Arc::new(Metrics::new()), signer, 1 << 20, 0).unwrap()
    }

    fn stored_blob(path: &std::path::Path) -> Vec<u8> {
        let db = Database::open(path).unwrap();
        let r = redb::ReadableDatabase::begin_read(&db).unwrap();
        r.open_table(ARTIFACT_BLOBS)
            .unwrap()
            .get(("acme", "run1", "a1"))
            .unwrap()
            .unwrap()
            .value()
            .to_vec()
    }

    /// A schema-2 database (plaintext content, no key file) opens as schema 3 with its
    /// content encrypted under a new tenant key and still served byte for byte. (Bodies and
    /// insights take the same path from schema 1 in `migrate`'s test.)
    #[tokio::test]
    async fn a_version_2_database_has_its_content_encrypted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.redb");
        let plain = bytes::Bytes::from_static(b"PLAINTEXT-ARTIFACT-MARKER line\n");
        let store = open_store(&path);
        let record = ArtifactRecord {
            id: "a1".into(),
            tenant: "acme".into(),
            run_id: "run1".into(),
            ty: ArtifactType::Log,
            sha256: crate::ingest::sha256_hex(&plain),
            size: plain.len() as u64,
            content_type: "text/plain".into(),
            created_at: 0,
            retention_until: i64::MAX,
            legal_hold: false,
            purged: false,
            log_index: 0,
        };
        let content = check_content(ArtifactType::Log, "text/plain", plain.clone()).unwrap();
        store
            .put_artifact(record, content, Vec::new())
            .await
            .unwrap();
        store.shutdown();
        drop(store);
        assert_ne!(stored_blob(&path), plain.as_ref());

        // Back to what schema 2 wrote: the bytes in plaintext, no key file.
        let key_file = key_file_of(&path);
        let key = TenantKeys::read_only(&key_file)
            .unwrap()
            .get("acme")
            .unwrap();
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(ARTIFACT_BLOBS).unwrap();
                let sealed = t
                    .get(("acme", "run1", "a1"))
                    .unwrap()
                    .unwrap()
                    .value()
                    .to_vec();
                let bytes = key.decrypt(Content::Artifact, &sealed).unwrap();
                t.insert(("acme", "run1", "a1"), bytes.as_slice()).unwrap();
                txn.open_table(META)
                    .unwrap()
                    .insert("schema_version", 2u64.to_be_bytes().as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        std::fs::remove_file(&key_file).unwrap();
        assert_eq!(stored_blob(&path), plain.as_ref());

        let store = open_store(&path);
        assert_eq!(
            store.meta("schema_version").unwrap().unwrap(),
            SCHEMA_VERSION.to_be_bytes()
        );
        let (_, got) = store.get_artifact("acme", "run1", "a1").unwrap().unwrap();
        assert_eq!(got.as_deref(), Some(plain.as_ref()));
        store.shutdown();
        drop(store);
        let sealed = stored_blob(&path);
        assert_ne!(sealed, plain.as_ref());
        let new_key = TenantKeys::read_only(&key_file)
            .unwrap()
            .get("acme")
            .unwrap();
        assert_eq!(key.decrypt(Content::Artifact, &sealed), None);
        assert_eq!(
            new_key.decrypt(Content::Artifact, &sealed).as_deref(),
            Some(plain.as_ref())
        );
        // A second open migrates nothing again.
        let store = open_store(&path);
        let (_, got) = store.get_artifact("acme", "run1", "a1").unwrap().unwrap();
        assert_eq!(got.as_deref(), Some(plain.as_ref()));
    }
}
