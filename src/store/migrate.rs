//! Schema versions. Version 1 kept events, bodies and insights as JSON under random-string keys
//! with per-tenant and expiry index tables; version 2 keys them `(tenant, seq)` in postcard
//! rows ([`super::events`], [`super::insights`]) with a fixed-size replay index. Opening a
//! version-1 database migrates it in one write transaction: every event, body, replay key and
//! insight is rewritten under its existing `seq`, schema-1 ids keep working through
//! `legacy_ids`, and the version-1 tables are deleted (the never-read `jobs` table with them:
//! a job is its event's `job_id`). Other tables are unchanged.

use rand::RngCore;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::codec::{dec, seal};
use super::events::{EventRow, NO_LEAF, digest_bytes};
use super::ids::IdKey;
use super::insights::InsightRow;
use super::*;
use crate::ingest::pipeline::ReplayKey;
use crate::ingest::{EventRecord, InsightRecord};

const V1_EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
const V1_EVENT_BODIES: TableDefinition<&str, &[u8]> = TableDefinition::new("event_bodies");
const V1_BODY_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("body_expiry");
const V1_TENANT_EVENTS: TableDefinition<(&str, u64), &str> = TableDefinition::new("tenant_events");
const V1_REPLAY: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("replay");
const V1_JOBS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("jobs");
const V1_INSIGHTS: TableDefinition<&str, &[u8]> = TableDefinition::new("insights");
const V1_TENANT_INSIGHTS: TableDefinition<(&str, u64), &str> =
    TableDefinition::new("tenant_insights");

#[derive(serde::Deserialize)]
struct V1Replay {
    event_id: String,
    at: i64,
}

/// Checks the schema version (migrating versions 1, 2 and 3: 1 → 2 here, 2 → 3 in
/// [`super::migrate_v2`], 3 → 4 in [`super::migrate_v3`], all in this one transaction),
/// creates every table and returns the id key (generated on first open). `ring` seals the
/// secrets a version-3 (or older) database kept in plaintext.
///
/// # Errors
/// [`StoreError::SchemaTooNew`], [`StoreError::Corrupt`] for an older record that does not
/// decode (nothing is changed then), [`StoreError::Db`].
pub(crate) fn prepare(
    db: &Database,
    keys: &TenantKeys,
    ring: &crate::seal::Keyring,
) -> Result<IdKey, StoreError> {
    let txn = db.begin_write()?;
    let found = {
        let meta = txn.open_table(META)?;
        meta.get("schema_version")?.map(|v| {
            let mut arr = [0u8; 8];
            if v.value().len() == 8 {
                arr.copy_from_slice(v.value());
            }
            u64::from_be_bytes(arr)
        })
    };
    match found {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew {
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        Some(found @ 1..=3) => {
            if found == 1 {
                migrate_v1(&txn)?;
            }
            if found <= 2 {
                super::migrate_v2::encrypt_content(&txn, keys)?;
            }
            super::migrate_v3::seal_secrets(&txn, ring)?;
            tracing::info!("database migrated from schema version {found} to {SCHEMA_VERSION}");
        }
        _ => {}
    }
    let key = {
        let mut meta = txn.open_table(META)?;
        meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
        let existing = meta.get("id_key")?.map(|v| v.value().to_vec());
        match existing.and_then(|k| IdKey::try_from(k.as_slice()).ok()) {
            Some(k) => k,
            None => {
                let mut k = [0u8; 32];
                rand::rng().fill_bytes(&mut k);
                meta.insert("id_key", k.as_slice())?;
                k
            }
        }
    };
    txn.open_table(SEQ)?;
    txn.open_table(TENANTS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(SOURCES)?;
    txn.open_table(TENANT_SOURCES)?;
    txn.open_table(EVENTS)?;
    txn.open_table(EVENT_BODIES)?;
    txn.open_table(REPLAY)?;
    txn.open_table(INSIGHTS)?;
    txn.open_table(LEGACY_IDS)?;
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
    txn.open_table(TENANT_POLICIES)?;
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(USER_SESSIONS)?;
    txn.open_table(USAGE)?;
    txn.open_table(COMPLIANCE_VIEWS)?;
    txn.open_table(DUAL_CONTROL)?;
    txn.open_table(INTEGRATIONS)?;
    txn.open_table(DELIVERIES)?;
    txn.open_table(DELIVERY_DUE)?;
    txn.open_table(DELIVERY_CURSORS)?;
    txn.commit()?;
    Ok(key)
}

/// The rows of a v1 per-tenant listing, `(tenant, seq) → id`, in key order.
fn tenant_index(
    txn: &WriteTransaction,
    table: TableDefinition<(&str, u64), &str>,
) -> Result<Vec<(String, u64, String)>, StoreError> {
    let t = txn.open_table(table)?;
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        let (tenant, seq) = k.value();
        out.push((tenant.to_string(), seq, v.value().to_string()));
    }
    Ok(out)
}

fn migrate_v1(txn: &WriteTransaction) -> Result<(), StoreError> {
    let events = tenant_index(txn, V1_TENANT_EVENTS)?;
    {
        let old = txn.open_table(V1_EVENTS)?;
        let old_bodies = txn.open_table(V1_EVENT_BODIES)?;
        let mut rows = txn.open_table(EVENTS)?;
        let mut bodies = txn.open_table(EVENT_BODIES)?;
        let mut legacy = txn.open_table(LEGACY_IDS)?;
        for (tenant, seq, id) in &events {
            let Some(raw) = old.get(id.as_str())? else {
                continue;
            };
            let e: EventRecord = dec("events", raw.value())?;
            let row = EventRow {
                tail: 0,
                legacy_id: Some(id.clone()),
                source: e.source.clone(),
                provider: e.provider,
                scheme: e.scheme,
                delivery_id: e.delivery_id.clone(),
                signed_timestamp: e.signed_timestamp,
                sha256: digest_bytes(&e.sha256),
                size: e.size,
                content_type: e.content_type,
                received_at: e.received_at,
                job_id: e.job_id,
                kind: e.kind,
                insights: e.insights,
                first_insight: 0,
                body_expires_at: e.body_expires_at,
                body_purged: e.body_purged,
                replay: ReplayKey::new(&e.source, e.delivery_id.as_deref(), &e.sha256).0,
            };
            rows.insert((tenant.as_str(), *seq), seal(&row, NO_LEAF)?.as_slice())?;
            if let Some(b) = old_bodies.get(id.as_str())? {
                bodies.insert((tenant.as_str(), *seq), b.value())?;
            }
            legacy.insert(id.as_str(), *seq)?;
        }
    }
    {
        let old = txn.open_table(V1_REPLAY)?;
        let legacy = txn.open_table(LEGACY_IDS)?;
        let mut replay = txn.open_table(REPLAY)?;
        for item in old.iter()? {
            let (k, v) = item?;
            let (source, key) = k.value();
            let e: V1Replay = dec("replay", v.value())?;
            if let Some(seq) = legacy.get(e.event_id.as_str())?.map(|s| s.value()) {
                replay.insert(ReplayKey::from_v1(source, key).0, (seq, e.at, 0))?;
            }
        }
    }
    let insights = tenant_index(txn, V1_TENANT_INSIGHTS)?;
    {
        let old = txn.open_table(V1_INSIGHTS)?;
        let mut rows = txn.open_table(INSIGHTS)?;
        let mut legacy = txn.open_table(LEGACY_IDS)?;
        for (tenant, seq, id) in &insights {
            let Some(raw) = old.get(id.as_str())? else {
                continue;
            };
            let i: InsightRecord = dec("insights", raw.value())?;
            let event_seq = legacy
                .get(i.event_id.as_str())?
                .map(|v| v.value())
                .unwrap_or(NO_LEAF);
            let row = InsightRow {
                tail: 0,
                legacy_id: Some(id.clone()),
                job_id: i.job_id,
                kind: i.kind,
                event_tail: 0,
                legacy_event_id: Some(i.event_id),
                payload: i.payload.to_string().into_bytes(),
                status: i.status,
                decision: i.decision,
                created_at: i.created_at,
            };
            rows.insert((tenant.as_str(), *seq), seal(&row, event_seq)?.as_slice())?;
            legacy.insert(id.as_str(), *seq)?;
        }
    }
    txn.delete_table(V1_EVENTS)?;
    txn.delete_table(V1_EVENT_BODIES)?;
    txn.delete_table(V1_BODY_EXPIRY)?;
    txn.delete_table(V1_TENANT_EVENTS)?;
    txn.delete_table(V1_REPLAY)?;
    txn.delete_table(V1_JOBS)?;
    txn.delete_table(V1_INSIGHTS)?;
    txn.delete_table(V1_TENANT_INSIGHTS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::pipeline::IngestStore;
    use crate::ingest::{InsightStatus, Provider};
    use serde_json::json;

    /// A version-1 database as the schema-1 code wrote it: JSON records under random ids, the
    /// per-tenant and expiry indexes, the replay table and a job.
    fn write_v1(path: &std::path::Path) {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("schema_version", 1u64.to_be_bytes().as_slice())
                .unwrap();
            txn.open_table(TENANTS)
                .unwrap()
                .insert("acme", b"{}".as_slice())
                .unwrap();
            let ev = json!({
                "id": "evt_0123456789abcdef0123456789abcdef", "seq": 0, "tenant": "acme",
                "source": "src_ml", "provider": "ml", "scheme": "intelgraph",
                "delivery_id": null, "signed_timestamp": null,
                "sha256": HELLO_SHA256.to_string(), "size": 5, "content_type": "application/json",
                "received_at": 1000, "outcome": "accepted", "job_id": "j1", "insights": 1,
                "body_expires_at": 99_999, "body_purged": false
            });
            txn.open_table(V1_EVENTS)
                .unwrap()
                .insert(
                    "evt_0123456789abcdef0123456789abcdef",
                    ev.to_string().as_bytes(),
                )
                .unwrap();
            txn.open_table(V1_EVENT_BODIES)
                .unwrap()
                .insert("evt_0123456789abcdef0123456789abcdef", b"hello".as_slice())
                .unwrap();
            txn.open_table(V1_BODY_EXPIRY)
                .unwrap()
                .insert((99_999, "evt_0123456789abcdef0123456789abcdef"), ())
                .unwrap();
            txn.open_table(V1_TENANT_EVENTS)
                .unwrap()
                .insert(("acme", 0), "evt_0123456789abcdef0123456789abcdef")
                .unwrap();
            let key = format!("sha256:{HELLO_SHA256}");
            txn.open_table(V1_REPLAY)
                .unwrap()
                .insert(
                    ("src_ml", key.as_str()),
                    json!({"event_id": "evt_0123456789abcdef0123456789abcdef", "at": 1000})
                        .to_string()
                        .as_bytes(),
                )
                .unwrap();
            txn.open_table(V1_JOBS)
                .unwrap()
                .insert(("acme", "j1"), b"{}".as_slice())
                .unwrap();
            let ins = json!({
                "id": "ins_fedcba9876543210fedcba9876543210", "seq": 0, "tenant": "acme",
                "job_id": "j1", "kind": "custom",
                "event_id": "evt_0123456789abcdef0123456789abcdef",
                "payload": {"x": 1}, "status": "PENDING", "decision": null,
                "created_at": 1000
            });
            txn.open_table(V1_INSIGHTS)
                .unwrap()
                .insert(
                    "ins_fedcba9876543210fedcba9876543210",
                    ins.to_string().as_bytes(),
                )
                .unwrap();
            txn.open_table(V1_TENANT_INSIGHTS)
                .unwrap()
                .insert(("acme", 0), "ins_fedcba9876543210fedcba9876543210")
                .unwrap();
            let mut seq = txn.open_table(SEQ).unwrap();
            seq.insert("events/acme", 1).unwrap();
            seq.insert("insights/acme", 1).unwrap();
        }
        txn.commit().unwrap();
    }

    /// SHA-256 of the fixture's body `hello` (reads check it).
    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn open(path: &std::path::Path) -> Store {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let signer = Arc::new(NoteSigner::new("evidentia.test", key).unwrap());
        Store::open(path, Arc::new(Metrics::new()), signer, 1 << 20, 0).unwrap()
    }

    #[tokio::test]
    async fn a_version_1_database_opens_with_its_data_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.redb");
        write_v1(&path);
        let store = open(&path);
        assert_eq!(
            store.meta("schema_version").unwrap().unwrap(),
            SCHEMA_VERSION.to_be_bytes()
        );
        let id = "evt_0123456789abcdef0123456789abcdef";
        let (ev, body) = store.get_event_body("acme", id).unwrap().unwrap();
        assert_eq!((ev.id.as_str(), ev.seq, ev.size), (id, 0, 5));
        assert_eq!(ev.provider, Provider::Ml);
        assert_eq!(ev.job_id.as_deref(), Some("j1"));
        assert_eq!(body.as_deref(), Some(b"hello".as_slice()));
        // Another tenant still cannot see it.
        assert!(store.get_event("other", id).unwrap().is_none());
        let page = store.list_events("acme", None, 10, None).unwrap();
        assert_eq!(page.items.len(), 1);
        // The schema-1 replay key still answers duplicates with the original id.
        let replay = ReplayKey::new("src_ml", None, HELLO_SHA256);
        assert_eq!(
            store.find_delivery("acme", &replay, 0).unwrap().as_deref(),
            Some(id)
        );
        let ins = store.list_insights("acme", None, None, 10, None).unwrap();
        assert_eq!(ins.items.len(), 1);
        assert_eq!(ins.items[0].event_id, id);
        assert_eq!(ins.items[0].payload, json!({"x": 1}));
        let decided = store
            .decide_insight(
                "acme".into(),
                "ins_fedcba9876543210fedcba9876543210".into(),
                InsightStatus::Approved,
                crate::ingest::Decision {
                    decision: "approve".into(),
                    reason: "ok".into(),
                    actor: "t".into(),
                    at: 2000,
                },
                Vec::new(),
            )
            .await
            .unwrap();
        assert!(matches!(decided, DecideOutcome::Decided(_)));
        // Purging after retention still works on migrated rows.
        assert_eq!(store.purge_bodies(100_000).await.unwrap(), 1);
        let (ev, body) = store.get_event_body("acme", id).unwrap().unwrap();
        assert!(ev.body_purged && body.is_none());
        store.shutdown();
        drop(store);
        // A second open finds version 2 and changes nothing.
        let store = open(&path);
        assert!(store.get_event("acme", id).unwrap().is_some());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 9u64.to_be_bytes().as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let signer = Arc::new(NoteSigner::new("evidentia.test", key).unwrap());
        let err = Store::open(&path, Arc::new(Metrics::new()), signer, 1 << 20, 0).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { found: 9, .. }));
    }
}
