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
    app.post_ml(body).await
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
    // 300+ reads in one minute: above the query class quota, which is not the subject here.
    let app = start_with(|c| c.ratelimit.api_query_per_minute = 10_000).await;
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
    // Every one of them: the later reads of the minute would be counted into a record that
    // cannot be written.
    for _ in 0..3 {
        app.get(&path, &app.admin)
            .await
            .problem(503, "AUDIT_UNAVAILABLE");
    }
    app.call(Method::GET, "/healthz", None, &[], vec![])
        .await
        .expect(200);
}

/// A sensitive read whose audit leaf cannot be committed sends nothing: 503, no bytes, no
/// access receipt.
#[tokio::test]
async fn a_sensitive_read_that_cannot_be_recorded_sends_nothing() {
    let app = start().await;
    let id = ml_event(&app, 0).await.json()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/tenants/default/events/{id}/body");
    let ok = app.get(&path, &app.admin).await;
    ok.expect(200);
    assert!(ok.header("evidentia-access-receipt").is_some());
    let (floor, reserve) = (8u64 << 20, 4u64 << 20);
    let volume = Arc::new(FixedVolume((floor - reserve - 1).into()));
    app.state
        .store
        .disk()
        .configure(volume.clone(), floor, reserve);
    evidentia::server::check_disk(&app.state);
    let refused = app.get(&path, &app.admin).await;
    refused.problem(503, "AUDIT_UNAVAILABLE");
    assert!(refused.header("evidentia-access-receipt").is_none());
    assert!(
        !String::from_utf8_lossy(&refused.body).contains("job_id"),
        "the body leaked"
    );
}

/// Flips one byte in the middle of the `nth` (0-based, in seq order) stored raw body of
/// `tenant`, through redb itself: bodies are encrypted at rest, so their bytes cannot be found
/// in the file by their content.
fn flip_stored_body(path: &std::path::Path, tenant: &str, nth: usize) {
    use redb::{ReadableTable, TableDefinition};
    const BODIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("event_bodies_v2");
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BODIES).unwrap();
        let (seq, mut value) = t
            .range((tenant, 0u64)..=(tenant, u64::MAX))
            .unwrap()
            .nth(nth)
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value().1, v.value().to_vec())
            })
            .unwrap();
        let mid = value.len() / 2;
        value[mid] ^= 0x20;
        t.insert((tenant, seq), value.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// How many times `needle` occurs in the file at `path`.
fn occurrences_in_file(path: &std::path::Path, needle: &[u8]) -> usize {
    std::fs::read(path)
        .unwrap()
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
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
    // Encrypted at rest: the body's content is nowhere in the file.
    assert_eq!(
        occurrences_in_file(&db, b"DAMAGE-MARKER-0123456789abcdef"),
        0
    );
    flip_stored_body(&db, "default", 0);

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

    // Without the key file that belongs to the database, the store refuses to open rather
    // than serve the tenant's content as purged and mint a new key for it.
    let _keep = app.dir.clone();
    app.state.store.shutdown();
    drop(app);
    let keys = evidentia::store::key_file_of(&db);
    let aside = db.with_extension("keys-aside");
    std::fs::rename(&keys, &aside).unwrap();
    let open_store = || {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let signer =
            std::sync::Arc::new(evidentia::tlog::NoteSigner::new("evidentia.test", key).unwrap());
        evidentia::store::Store::open(
            &db,
            std::sync::Arc::new(evidentia::metrics::Metrics::new()),
            signer,
            1 << 20,
            0,
        )
    };
    let err = open_store().unwrap_err().to_string();
    assert!(
        err.contains("tenant default has encrypted content"),
        "{err}"
    );
    assert!(!keys.exists() || std::fs::read(&keys).unwrap().is_empty());
    std::fs::rename(&aside, &keys).unwrap();
    let store = open_store().unwrap();
    store.shutdown();
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
    // A body (event 101's: bodies are encrypted at rest, so not by its content, which is
    // nowhere in the file), an entry (event ids are stored only in their notarised entries and
    // audit records), a node; every stored copy, stale pages included.
    assert_eq!(occurrences_in_file(&db, br#""job_id":"disk-101""#), 0);
    flip_stored_body(&db, "default", 1);
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

/// A tmpfs of `bytes`, unmounted on drop; `None` (the test is skipped, with a message) where
/// this process may not mount.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// A really full volume (issue 9 point 7): the write that meets `ENOSPC` is answered 507, not
/// 500; the appliance stops with a clear message and a non-zero status (so systemd restarts
/// it) instead of failing and logging every later request; once space is back it starts
/// again with every acknowledged event.
#[test]
fn a_full_volume_is_507_then_a_clean_restart_with_nothing_acknowledged_lost() {
    use std::time::{Duration, Instant};
    let Some(fs) = Tmpfs::mount(24 << 20) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.path().join("data");
    let token = evidentia::identity::generate_token_string();
    // Space to give back later.
    let spare = fs.0.path().join("spare");
    std::fs::write(&spare, vec![0u8; 6 << 20]).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_evidentia"));
        for (k, _) in std::env::vars() {
            if k.starts_with("EVIDENTIA_") || k.ends_with("_SECRET") {
                c.env_remove(k);
            }
        }
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        // No floor: this test is about what happens when the volume really fills.
        .env("EVIDENTIA_STORAGE_MIN_FREE_BYTES", "0")
        .env("EVIDENTIA_STORAGE_CACHE_BYTES", "4194304")
        .env("EVIDENTIA_RATELIMIT_PER_SECOND", "100000")
        .env("EVIDENTIA_RATELIMIT_BURST", "100000")
        .env("ML_WEBHOOK_SECRET", ML_SECRET)
        .env("EVIDENTIA_ADMIN_TOKEN", &token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        let child = c.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "evidentia did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    };
    let post = |n: usize| -> (u16, String) {
        let body = serde_json::to_vec(&json!({
            "job_id": format!("full-{n}"),
            "kind": "summary",
            "padding": "p".repeat(64 * 1024),
        }))
        .unwrap();
        let sig = hmac_hex(ML_SECRET, &body);
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
            .args(["-H", &format!("X-IntelGraph-Signature: {sig}")])
            .args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ])
            .arg(format!("http://127.0.0.1:{port}/ai/webhook"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&body)?;
                child.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    };

    let mut child = serve();
    let mut stored = 0;
    let refused = loop {
        let (status, body) = post(stored);
        if status != 200 {
            break (status, body);
        }
        stored += 1;
        assert!(stored < 2_000, "the 24 MiB volume never filled");
    };
    assert_eq!(refused.0, 507, "the full volume is 507: {}", refused.1);
    assert!(refused.1.contains("INSUFFICIENT_STORAGE"), "{}", refused.1);
    assert!(stored > 10, "only {stored} events before the volume filled");
    // It stops by itself, non-zero, with one clear reason, not an ERROR line per request.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let _ = post(100_000);
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the appliance kept running on a failed file"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let mut log = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("the data volume is full"), "{log}");
    let errors = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("\"level\":\"ERROR\""))
        .count();
    assert!(errors < 50, "{errors} error lines:\n{log}");

    // Space is back: the next start serves every acknowledged event and takes new ones.
    std::fs::remove_file(&spare).unwrap();
    let mut child = serve();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .arg(format!(
            "http://127.0.0.1:{port}/api/tenants/default/events?limit=500"
        ))
        .output()
        .unwrap();
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(stored));
    assert_eq!(post(200_000).0, 200);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
