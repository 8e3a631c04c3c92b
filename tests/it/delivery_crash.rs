//! The durable outbox under SIGKILL: deliveries pending when the appliance is killed are all
//! delivered after the restart, none lost, and a message sent twice carries the same
//! `webhook-id` both times.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::delivery::{Handler, Receiver};

const WEBHOOK_SECRET: &str = "crash-test-github-secret-0123456789";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(data: &Path, config: &Path, port: u16, admin: Option<&str>) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evidentia"));
    for (k, _) in std::env::vars() {
        if k.starts_with("EVIDENTIA_") || k.ends_with("_SECRET") || k == "CREDENTIALS_DIRECTORY" {
            c.env_remove(k);
        }
    }
    c.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--config",
    ])
    .arg(config)
    .arg("--data-dir")
    .arg(data)
    .env("EVIDENTIA_RATELIMIT_API_DEFAULT_PER_MINUTE", "1000000")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(t) = admin {
        c.env("EVIDENTIA_ADMIN_TOKEN", t);
    }
    c.spawn().unwrap()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("evidentia did not listen on {port}");
}

#[test]
fn pending_deliveries_survive_sigkill_and_are_all_delivered_after_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The receiver is slow until the restart, so deliveries are pending when the kill comes.
    let slow = Arc::new(AtomicBool::new(true));
    let s = slow.clone();
    let handler: Handler = Arc::new(move |_| {
        if s.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        (200, vec![], Vec::new())
    });
    let rx = rt.block_on(Receiver::start("127.0.0.1", handler));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("evidentia.toml");
    std::fs::write(
        &config,
        "version = 1\n[delivery]\nallow_addresses = [\"127.0.0.1\"]\n\
         allow_http_hosts = [\"127.0.0.1\"]\nconcurrency = 1\nbatch = 4\npoll_ms = 100\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let admin = evidentia::identity::generate_token_string();
    let mut child = spawn(&data, &config, port, Some(&admin));
    wait_for_port(port);
    assert_eq!(
        delivery_thread_nice(child.id()),
        Some(10),
        "deliveries run on their own thread at niceness 10, behind ingestion"
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    const N: usize = 60;
    let events: Vec<String> = rt.block_on(async {
        let post = |path: &str, body: Value| {
            client
                .post(format!("{base}{path}"))
                .bearer_auth(&admin)
                .json(&body)
                .send()
        };
        assert_eq!(
            post("/api/tenants", json!({"id": "acme", "name": "Acme"}))
                .await
                .unwrap()
                .status(),
            201
        );
        let r = post(
            "/api/tenants/acme/integrations",
            json!({"name": "rx", "url": format!("http://127.0.0.1:{}/in", rx.port),
                   "event_types": ["event.received"]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let src: Value = post(
            "/api/tenants/acme/webhook-sources",
            json!({"provider": "github", "secret": WEBHOOK_SECRET}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let hook = format!("{base}{}", src["ingest_url"].as_str().unwrap());
        let mut events = Vec::new();
        for i in 0..N {
            let body = format!(r#"{{"i":{i}}}"#);
            let sig =
                evidentia::ingest::signature::hmac_hex(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
            let r = client
                .post(&hook)
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", format!("sha256={sig}"))
                .header("X-GitHub-Delivery", format!("crash-{i}"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            events.push(v["event_id"].as_str().unwrap().to_string());
        }
        events
    });
    // Some deliveries went out; most are pending. Kill without warning.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.requests().len() < 3 {
        assert!(Instant::now() < deadline, "no delivery before the kill");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let before_restart = rx.requests().len();
    assert!(
        before_restart < N,
        "the kill came too late to test anything"
    );
    slow.store(false, Ordering::SeqCst);

    let mut child = spawn(&data, &config, port, None);
    wait_for_port(port);
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let by_event = by_event(&rx);
        if events.iter().all(|e| by_event.contains_key(e)) {
            break by_event;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {N} events delivered after the restart",
            by_event.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // None lost; a message delivered twice (in flight at the kill) kept its webhook-id.
    for e in &events {
        let ids = &delivered[e];
        assert_eq!(
            ids.len(),
            1,
            "event {e} was delivered under several webhook-ids: {ids:?}"
        );
    }
}

/// Event id → the webhook-ids its messages carried.
fn by_event(rx: &Receiver) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rx.requests() {
        let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
            continue;
        };
        if let Some(e) = v["data"]["entry"]["event_id"].as_str() {
            out.entry(e.to_string())
                .or_default()
                .insert(r.headers["webhook-id"].clone());
        }
    }
    out
}

/// The niceness of the appliance's `evidentia-delivery` thread (`/proc/<pid>/task/*/stat`,
/// field 19).
fn delivery_thread_nice(pid: u32) -> Option<i64> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "evidentia-deliv" {
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // After the parenthesised command name: state is field 3, nice field 19.
            let rest = &stat[stat.rfind(')')? + 2..];
            return rest.split(' ').nth(16)?.parse().ok();
        }
    }
    None
}
