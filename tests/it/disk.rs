//! Disk faults (issue 9): the free-space floor is enforced on the write path, against a
//! simulated volume whose free space is what the database file leaves of a fixed capacity.

use std::path::PathBuf;
use std::sync::Arc;

use evidentia::store::SpaceProbe;
use poem::http::Method;
use serde_json::json;

use super::common::*;

/// A volume of `capacity` bytes holding only the database file.
struct SimulatedVolume {
    db: PathBuf,
    capacity: u64,
}

impl SimulatedVolume {
    fn used(&self) -> u64 {
        std::fs::metadata(&self.db).map(|m| m.len()).unwrap_or(0)
    }
}

impl SpaceProbe for SimulatedVolume {
    fn available(&self) -> std::io::Result<u64> {
        Ok(self.capacity.saturating_sub(self.used()))
    }
}

async fn ml_event(app: &TestApp, n: usize) -> Resp {
    let body = serde_json::to_vec(&json!({
        "job_id": format!("disk-{n}"),
        "kind": "bench_summary",
        "padding": "x".repeat(8 * 1024),
    }))
    .unwrap();
    app.call(
        Method::POST,
        "/ai/webhook",
        None,
        &[("X-IntelGraph-Signature", &hmac_hex(ML_SECRET, &body))],
        body,
    )
    .await
}

/// Between two background checks (none runs here) ingestion must still stop at the floor:
/// the writer measures the volume before every commit. Before this check existed, the writes
/// went on until the volume was full.
#[tokio::test]
async fn the_free_space_floor_holds_between_background_checks() {
    // The source's quota is not what stops the writes here.
    let app = start_with(|c| {
        c.ratelimit.per_second = 100_000;
        c.ratelimit.burst = 100_000;
    })
    .await;
    let floor: u64 = 4 << 20;
    let db = app.state.config.server.data_dir.join("evidentia.redb");
    let used = std::fs::metadata(&db).unwrap().len();
    // 3 MiB above the floor at the start.
    let capacity = used + floor + (3 << 20);
    let volume = Arc::new(SimulatedVolume { db, capacity });
    app.state
        .store
        .disk()
        .configure(volume.clone(), floor, floor / 2);

    let mut stored = 0;
    let mut refused = None;
    for n in 0..1_500 {
        let r = ml_event(&app, n).await;
        if r.status == 507 {
            r.problem(507, "INSUFFICIENT_STORAGE");
            refused = Some(n);
            break;
        }
        r.expect(200);
        stored += 1;
    }
    let refused =
        refused.expect("a data write is refused before 1,500 8 KiB events (12 MiB) fill 3 MiB");
    assert!(stored > 0, "writes above the floor are accepted");
    assert!(
        volume.used() < capacity,
        "the volume never filled: {} of {capacity} bytes used after {stored} events",
        volume.used()
    );
    // Once refused, data writes stay refused; reads and /healthz go on; /readyz says why.
    ml_event(&app, refused + 1)
        .await
        .problem(507, "INSUFFICIENT_STORAGE");
    app.post_json(
        "/api/tenants",
        &app.admin,
        json!({"id": "more", "name": "m"}),
    )
    .await
    .problem(507, "INSUFFICIENT_STORAGE");
    let events = app.events("default").await;
    assert_eq!(events.len(), stored, "every acknowledged event is there");
    app.call(Method::GET, "/readyz", None, &[], vec![])
        .await
        .problem(503, "NOT_READY");

    // Space comes back (the volume grows): the next measurement lifts the refusal.
    let bigger = Arc::new(SimulatedVolume {
        db: volume.db.clone(),
        capacity: capacity + (64 << 20),
    });
    app.state.store.disk().configure(bigger, floor, floor / 2);
    evidentia::server::check_disk(&app.state);
    ml_event(&app, refused + 2).await.expect(200);
}

/// A volume whose free space the test sets.
struct FixedVolume(std::sync::atomic::AtomicU64);

impl SpaceProbe for FixedVolume {
    fn available(&self) -> std::io::Result<u64> {
        Ok(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Below the floor, audited reads go on with their records aggregated per reader, route,
/// resource and minute, and stop (503, not unrecorded) once the audit reserve is spent;
/// `/readyz` and `/metrics` say how much reserve is left.
#[tokio::test]
async fn below_the_floor_reads_are_audited_in_aggregate_until_the_reserve_is_spent() {
    use std::sync::atomic::Ordering;
    let app = start().await;
    let id = ml_event(&app, 0).await.json()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/tenants/default/events/{id}");
    let (floor, reserve) = (8u64 << 20, 4u64 << 20);
    // 1 MiB below the floor: 3 MiB of the reserve left.
    let volume = Arc::new(FixedVolume((floor - (1 << 20)).into()));
    app.state
        .store
        .disk()
        .configure(volume.clone(), floor, reserve);
    evidentia::server::check_disk(&app.state);

    ml_event(&app, 1).await.problem(507, "INSUFFICIENT_STORAGE");
    for _ in 0..300 {
        app.get(&path, &app.admin).await.expect(200);
    }
    let ready = app.call(Method::GET, "/readyz", None, &[], vec![]).await;
    ready.problem(503, "NOT_READY");
    let detail = ready.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains(&format!(
            "{} of the {reserve}-byte audit reserve left",
            3u64 << 20
        )),
        "{detail}"
    );
    let metrics = String::from_utf8(
        app.call(Method::GET, "/metrics", None, &[], vec![])
            .await
            .body,
    )
    .unwrap();
    assert!(
        metrics.contains(&format!(
            "evidentia_disk_bytes{{measure=\"audit_reserve_left\"}} {}",
            3u64 << 20
        )),
        "{metrics}"
    );

    // 300 reads of one event by one reader this minute: one record now, one summary later.
    evidentia::server::flush_aggregates(&app.state, true).await;
    let reads: Vec<_> = app
        .audit("default")
        .await
        .into_iter()
        .filter(|r| r["route"] == "/api/tenants/{tenant}/events/{id}" && r["method"] == "GET")
        .collect();
    assert_eq!(reads.len(), 2, "{reads:#?}");
    let counted: u64 = reads.iter().map(|r| r["count"].as_u64().unwrap_or(1)).sum();
    assert_eq!(counted, 300);

    // The reserve is spent: a read that cannot be recorded is not answered.
    volume.0.store(floor - reserve - 1, Ordering::SeqCst);
    evidentia::server::check_disk(&app.state);
    app.get(&path, &app.admin)
        .await
        .problem(503, "AUDIT_UNAVAILABLE");
    app.call(Method::GET, "/healthz", None, &[], vec![])
        .await
        .expect(200);
}

/// Flips one byte in every stored copy of `needle` inside the database file.
fn flip_in_file(path: &std::path::Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut flipped = 0;
    let mut i = 0;
    while i + needle.len() <= bytes.len() {
        if &bytes[i..i + needle.len()] == needle {
            bytes[i + needle.len() / 2] ^= 0x20;
            flipped += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    std::fs::write(path, bytes).unwrap();
    flipped
}

/// Damaged stored bytes are never served as if they were the received ones (issue 9 point 8):
/// after a clean stop, one flipped byte in a raw body makes the read 500 `DATA_CORRUPT`,
/// audited and counted, and `/readyz` degraded.
#[tokio::test]
async fn a_flipped_byte_in_a_stored_body_is_not_served() {
    let app = start().await;
    let src = app
        .create_source(
            "default",
            json!({"provider": "github", "secret": "damage-secret-value"}),
        )
        .await;
    let url = src["ingest_url"].as_str().unwrap().to_string();
    let body = br#"{"marker":"DAMAGE-MARKER-0123456789abcdef"}"#.to_vec();
    let sig = format!("sha256={}", hmac_hex("damage-secret-value", &body));
    let r = app
        .call(
            Method::POST,
            &url,
            None,
            &[
                ("content-type", "application/json"),
                ("X-Hub-Signature-256", &sig),
            ],
            body,
        )
        .await;
    r.expect(200);
    let id = r.json()["event_id"].as_str().unwrap().to_string();
    let body_path = format!("/api/tenants/default/events/{id}/body");
    app.get(&body_path, &app.admin).await.expect(200);

    let config = app.state.config.clone();
    let (dir, admin) = (app.dir.clone(), app.admin.clone());
    app.state.store.shutdown();
    drop(app);
    let db = config.server.data_dir.join("evidentia.redb");
    assert!(flip_in_file(&db, b"DAMAGE-MARKER-0123456789abcdef") >= 1);

    let app = open(dir, config, Some(admin)).await;
    app.call(Method::GET, "/readyz", None, &[], vec![])
        .await
        .expect(200);
    app.get(&body_path, &app.admin)
        .await
        .problem(500, "DATA_CORRUPT");
    // The event's metadata is intact and still served; the damage is on record.
    app.get(&format!("/api/tenants/default/events/{id}"), &app.admin)
        .await
        .expect(200);
    let ready = app.call(Method::GET, "/readyz", None, &[], vec![]).await;
    ready.problem(503, "NOT_READY");
    assert!(
        ready.json()["detail"]
            .as_str()
            .unwrap()
            .contains("evidentia check")
    );
    let metrics = String::from_utf8(
        app.call(Method::GET, "/metrics", None, &[], vec![])
            .await
            .body,
    )
    .unwrap();
    assert!(
        metrics.contains("evidentia_damaged_reads_total 1"),
        "{metrics}"
    );
    let audit = app.audit("default").await;
    assert!(
        audit
            .iter()
            .any(|r| r["code"] == "DATA_CORRUPT" && r["status"] == 500),
        "{audit:#?}"
    );
}

fn evidentia_check(data_dir: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evidentia"))
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("EVIDENTIA_CONFIG")
        .env_remove("EVIDENTIA_LOG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `evidentia check` walks the stopped appliance's database and finds a flipped byte in a raw
/// body, in a log entry and in a subtree hash (issue 9 point 8).
#[tokio::test]
async fn evidentia_check_finds_damaged_bodies_entries_and_nodes() {
    use base64::Engine;
    let app = start().await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let r = ml_event(&app, 100 + n).await;
        r.expect(200);
        ids.push(r.json()["event_id"].as_str().unwrap().to_string());
    }
    // Leaves 0..3 of the evidence log: node (1, 1) is the second element of leaf 0's proof.
    let proof = app
        .get(
            "/api/tenants/default/logs/evidence/proofs/inclusion?index=0&tree_size=4",
            &app.admin,
        )
        .await;
    proof.expect(200);
    let node_1_1 = base64::engine::general_purpose::STANDARD
        .decode(proof.json()["inclusion_proof"][1].as_str().unwrap())
        .unwrap();
    let data_dir = app.state.config.server.data_dir.clone();
    let _keep = app.dir.clone();
    app.state.store.shutdown();
    drop(app);

    let (ok, text) = evidentia_check(&data_dir);
    assert!(ok, "{text}");
    assert!(text.contains("4 events, 4 raw bodies"), "{text}");
    assert!(text.contains("no damage found"), "{text}");

    let db = data_dir.join("evidentia.redb");
    // A body (its job id is unique to event 101), an entry (event ids are stored only in their
    // notarised entries and audit records), a node; every stored copy, stale pages included.
    assert!(flip_in_file(&db, br#""job_id":"disk-101""#) >= 1);
    assert!(flip_in_file(&db, ids[3].as_bytes()) >= 1);
    assert!(flip_in_file(&db, &node_1_1) >= 1);

    let (ok, text) = evidentia_check(&data_dir);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("DAMAGED body: tenant default, event {}", ids[1])),
        "{text}"
    );
    assert!(
        text.contains("DAMAGED entry: log evidentia/default/evidence, entry 3"),
        "{text}"
    );
    assert!(
        text.contains("DAMAGED node: log evidentia/default/evidence, level 1, index 1"),
        "{text}"
    );
}
