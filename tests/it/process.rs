//! The real binary as an operator runs it: `serve` over HTTPS with a self-signed certificate,
//! SIGTERM drain and restart, `check-config`, the bootstrap token shown once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn evidentia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evidentia"));
    for (k, _) in std::env::vars() {
        if k.starts_with("EVIDENTIA_") || k.ends_with("_SECRET") || k == "CREDENTIALS_DIRECTORY" {
            c.env_remove(k);
        }
    }
    c
}

fn serve(data: &Path, port: u16, tls: bool) -> Child {
    let mut c = evidentia();
    c.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if tls {
        c.env("EVIDENTIA_TLS_ENABLED", "true")
            .env("EVIDENTIA_TLS_SELF_SIGNED", "true");
    }
    c.spawn().expect("spawn evidentia")
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

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn terminate(mut child: Child) -> (bool, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn https_with_a_self_signed_certificate_and_plain_http_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serve(dir.path(), port, true);
    wait_for_port(port);
    let cert = dir.path().join("tls/cert.pem");
    assert!(cert.is_file());
    let url = format!("https://localhost:{port}/healthz");
    // The listener accepts TCP a moment before its TLS configuration is loaded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ok, out) = loop {
        let (ok, out) = curl(&["--cacert", cert.to_str().unwrap(), &url]);
        if ok || Instant::now() > deadline {
            break (ok, out);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ok && out.contains("\"ok\""), "{out}");
    let url = format!("https://127.0.0.1:{port}/readyz");
    let (ok, out) = curl(&["--cacert", cert.to_str().unwrap(), &url]);
    assert!(ok && out.contains("ready"), "{out}");
    // Without the CA the certificate is not trusted; plain HTTP gets no HTTP answer.
    let (ok, _) = curl(&[&format!("https://localhost:{port}/healthz")]);
    assert!(!ok);
    let (ok, out) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{port}/healthz"),
    ]);
    assert!(!ok || out.starts_with("000"), "plain HTTP answered: {out}");
    let (clean, _) = terminate(child);
    assert!(clean, "SIGTERM exits cleanly");
    // The certificate is kept: a restart serves the same one.
    let before = std::fs::read(&cert).unwrap();
    let child = serve(dir.path(), port, true);
    wait_for_port(port);
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    terminate(child);
}

#[test]
fn sigterm_drains_closes_the_database_and_the_token_is_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serve(dir.path(), port, false);
    wait_for_port(port);
    let (ok, out) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(ok, "{out}");
    let (clean, stderr) = terminate(child);
    assert!(clean, "{stderr}");
    let token = stderr
        .split_whitespace()
        .find(|w| w.starts_with("evd_"))
        .expect("bootstrap token printed")
        .to_string();
    assert!(stderr.contains("database closed"), "{stderr}");
    for name in [
        "ML_WEBHOOK_SECRET",
        "EVIDENCE_SIGNING_SECRET",
        "APPLIANCE_SIGNING_KEY",
    ] {
        assert!(
            dir.path().join("secrets").join(name).is_file(),
            "{name} generated"
        );
    }
    // Second start: no new token, the old one still works, the database opens at once.
    let child = serve(dir.path(), port, false);
    wait_for_port(port);
    let (ok, out) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("http://127.0.0.1:{port}/api/tenants"),
    ]);
    assert!(ok && out.contains("default"), "{out}");
    let (clean, stderr) = terminate(child);
    assert!(clean);
    assert!(
        !stderr.contains("evd_"),
        "the token is shown only at first start"
    );
}

#[test]
fn check_config_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let ok = evidentia()
        .args(["check-config", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !dir.path().join("evidentia.redb").exists(),
        "nothing was started"
    );
    let short = evidentia()
        .args(["check-config", "--data-dir"])
        .arg(dir.path())
        .env("ML_WEBHOOK_SECRET", "too-short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("ML_WEBHOOK_SECRET"));
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "version = 1\n[server]\nlisten = \"nowhere\"\n").unwrap();
    let bad = evidentia()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("server.listen"));
    let tls = evidentia()
        .args(["check-config", "--data-dir"])
        .arg(dir.path())
        .env("EVIDENTIA_TLS_ENABLED", "true")
        .env("EVIDENTIA_TLS_CERT_FILE", "/nonexistent/cert.pem")
        .env("EVIDENTIA_TLS_KEY_FILE", "/nonexistent/key.pem")
        .output()
        .unwrap();
    assert!(!tls.status.success());
    assert!(String::from_utf8_lossy(&tls.stderr).contains("tls.cert_file"));
}

/// SIGKILL in the middle of a storm of appends (artifacts, receipts and signed webhooks, each a
/// leaf of the tenant's evidence log): after a restart every acknowledged event, receipt and
/// notarised leaf is present and verifies offline, every checkpoint that was handed out before
/// the crash is consistent with the new one (so no size was ever signed with two roots), and
/// the latest checkpoint covers the whole log.
#[test]
fn a_crash_mid_append_never_forks_the_signed_history() {
    use base64::Engine;
    use evidentia::tlog::merkle::verify_consistency;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = evidentia::identity::generate_token_string();
    let spawn = |with_token: bool| {
        let mut c = evidentia();
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("EVIDENCE_SIGNING_SECRET", EVIDENCE_SECRET)
        // A write storm from one token: far above the API's default class quota (60/min).
        .env("EVIDENTIA_RATELIMIT_API_DEFAULT_PER_MINUTE", "1000000");
        if with_token {
            c.env("EVIDENTIA_ADMIN_TOKEN", &admin);
        }
        c.spawn().unwrap()
    };
    let mut child = spawn(true);
    wait_for_port(port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let (token, hook) = rt.block_on(async {
        let r = client
            .post(format!("{base}/api/tenants"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"id": "acme", "name": "Acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r: serde_json::Value = client
            .post(format!("{base}/api/tenants/acme/tokens"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": "p", "roles": ["ingest", "viewer"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = r["token"].as_str().unwrap().to_string();
        let src: serde_json::Value = client
            .post(format!("{base}/api/tenants/acme/webhook-sources"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"provider": "github", "secret": WEBHOOK_SECRET}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            token,
            format!("{base}{}", src["ingest_url"].as_str().unwrap()),
        )
    });
    // Every trial: a write storm, SIGKILL, restart, and the whole acknowledged history so far
    // checked against what the restarted appliance serves.
    let trials: usize = std::env::var("EVIDENTIA_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let (mut all_observed, mut all_events, mut all_receipts) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 0..trials {
        let (observed, events, receipts) = rt.block_on(async {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let receipts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (client, base, token, seen, events, receipts, hook) = (
                client.clone(),
                base.clone(),
                token.clone(),
                seen.clone(),
                events.clone(),
                receipts.clone(),
                hook.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    if i % 3 == 1 {
                        let body = format!(r#"{{"trial":{trial},"worker":{w},"i":{i}}}"#);
                        let sig = evidentia::ingest::signature::hmac_hex(
                            WEBHOOK_SECRET.as_bytes(),
                            body.as_bytes(),
                        );
                        let r = client
                            .post(&hook)
                            .header("content-type", "application/json")
                            .header("X-Hub-Signature-256", format!("sha256={sig}"))
                            .header("X-GitHub-Delivery", format!("t{trial}-w{w}-{i}"))
                            .body(body)
                            .send()
                            .await;
                        let Ok(r) = r else { break };
                        if r.status() != 200 {
                            break;
                        }
                        let Ok(v) = r.json::<serde_json::Value>().await else {
                            break;
                        };
                        events
                            .lock()
                            .unwrap()
                            .push(v["event_id"].as_str().unwrap().to_string());
                        continue;
                    }
                    let r = if i % 3 == 2 {
                        let rid = format!("crash-t{trial}-w{w}-{i}");
                        client
                            .post(format!("{base}/api/conductor/evidence/receipt"))
                            .bearer_auth(&token)
                            .json(&crash_receipt(&rid))
                            .send()
                            .await
                    } else {
                        client
                            .post(format!(
                                "{base}/api/conductor/runs/crash/artifacts?type=log&id=t{trial}-w{w}-{i}"
                            ))
                            .bearer_auth(&token)
                            .header("content-type", "text/plain")
                            .body(format!("line {w} {i}\n"))
                            .send()
                            .await
                    };
                    let Ok(r) = r else { break };
                    if r.status() != 201 {
                        break;
                    }
                    let Ok(v) = r.json::<serde_json::Value>().await else {
                        break;
                    };
                    if let Some(rid) = v["receiptId"].as_str() {
                        receipts.lock().unwrap().push(rid.to_string());
                    }
                    let log = &v["log"];
                    seen.lock().unwrap().push((
                        log["tree_size"].as_u64().unwrap(),
                        log["root"].as_str().unwrap().to_string(),
                    ));
                }
            }));
        }
        // Let the storm run, then kill the server without warning.
        while seen.lock().unwrap().len() < 300 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        for t in tasks {
            let _ = t.await;
        }
        let observed = seen.lock().unwrap().clone();
        let events = events.lock().unwrap().clone();
        let receipts = receipts.lock().unwrap().clone();
        (observed, events, receipts)
    });
        let _ = child.wait();
        all_observed.extend(observed);
        all_events.extend(events);
        all_receipts.extend(receipts);
        let (observed, events, receipts) = (&all_observed, &all_events, &all_receipts);

        child = spawn(false);
        wait_for_port(port);
        rt.block_on(async {
        let note = client
            .get(format!("{base}/api/tenants/acme/logs/evidence/checkpoint"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines = note.lines();
        lines.next();
        let size: u64 = lines.next().unwrap().parse().unwrap();
        let root = b64(lines.next().unwrap());
        // The checkpoint covers every leaf that survived.
        let last = client
            .get(format!("{base}/api/tenants/acme/logs/evidence/entries/{}", size - 1))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(last.status(), 200);
        let beyond = client
            .get(format!("{base}/api/tenants/acme/logs/evidence/entries/{size}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(beyond.status(), 404, "no leaf past the signed size");
        // Every acknowledged checkpoint is a prefix of the history signed after the crash.
        let mut checked = std::collections::BTreeMap::new();
        for (old_size, old_root) in observed {
            assert!(*old_size <= size, "an acknowledged append was lost");
            if let Some(prev) = checked.insert(*old_size, old_root.clone()) {
                assert_eq!(&prev, old_root, "size {old_size} signed with two roots");
                continue;
            }
            let v: serde_json::Value = client
                .get(format!(
                    "{base}/api/tenants/acme/logs/evidence/proofs/consistency?from={old_size}&to={size}"
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let proof: Vec<Vec<u8>> = v["consistency_proof"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| b64(h.as_str().unwrap()))
                .collect();
            verify_consistency(*old_size, size, &proof, &b64(old_root), &root)
                .unwrap_or_else(|e| panic!("{old_size} -> {size}: {e}"));
        }
        assert!(checked.len() > 10);
        // Every acknowledged delivery is there, notarised, and its bundle verifies offline.
        let keys: serde_json::Value = client
            .get(format!("{base}/api/keys"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = keys["keys"].as_array().unwrap().last().unwrap()["verifier_key"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(events.len() > 10, "{} webhooks acknowledged", events.len());
        for id in events {
            let b = client
                .get(format!("{base}/api/tenants/acme/events/{id}/bundle"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(b.status(), 200, "acknowledged event {id} lost");
            let bytes = b.bytes().await.unwrap();
            let results = evidentia::verify::verify_bundle(&bytes, &key, None);
            assert!(evidentia::verify::all_passed(&results), "{id}: {results:#?}");
        }
        assert!(receipts.len() > 10, "{} receipts acknowledged", receipts.len());
        for rid in receipts {
            let b = client
                .get(format!(
                    "{base}/api/conductor/evidence/receipt/crash-receipts/bundle?receiptId={rid}"
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(b.status(), 200, "acknowledged receipt {rid} lost");
            let bytes = b.bytes().await.unwrap();
            let results = evidentia::verify::verify_bundle(
                &bytes,
                &key,
                Some(EVIDENCE_SECRET.as_bytes()),
            );
            assert!(evidentia::verify::all_passed(&results), "{rid}: {results:#?}");
        }
    });
        eprintln!(
            "crash trial {}/{trials}: {} checkpoints, {} webhooks, {} receipts acknowledged so far, all present",
            trial + 1,
            observed.len(),
            events.len(),
            receipts.len()
        );
    }
    terminate(child);
}

const WEBHOOK_SECRET: &str = "crash-test-github-secret-0123456789";
const EVIDENCE_SECRET: &str = "crash-test-evidence-signing-secret-0123456789";

/// An HS256 provenance receipt signed with the appliance's default key, created now.
fn crash_receipt(receipt_id: &str) -> serde_json::Value {
    // The child process runs on the real clock, so the receipt is fresh by that clock.
    let now = evidentia::clock::Clock::now_unix(&evidentia::clock::SystemClock);
    let mut r = serde_json::json!({
        "receiptId": receipt_id,
        "runId": "crash-receipts",
        "createdAt": evidentia::clock::rfc3339(now),
        "codeDigest": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "inputsHash": evidentia::ingest::sha256_hex(b"in"),
        "outputsHash": evidentia::ingest::sha256_hex(b"out"),
        "tenant": "acme",
        "signer": {"kid": "default", "alg": "HS256"},
        "summary": {"runbook": "crash", "status": "succeeded"},
        "evidence": {"artifacts": []},
    });
    r["signature"] =
        serde_json::json!(evidentia::verify::hs256_sign(EVIDENCE_SECRET.as_bytes(), &r).unwrap());
    r
}

/// `evidentia admin token …` on the host with the appliance's data directory.
fn admin_token(data: &Path, args: &[&str]) -> std::process::Output {
    evidentia()
        .args(["admin", "token"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run evidentia admin token")
}

#[test]
fn break_glass_admin_tokens_on_the_host_replace_a_lost_bootstrap_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Nothing to manage before the first start.
    let none = admin_token(&data, &["list"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no database"));

    let port = free_port();
    let lost = evidentia::identity::generate_token_string();
    let lost_id = evidentia::identity::parse_token(&lost).unwrap();
    let start = || {
        let mut c = evidentia();
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("EVIDENTIA_ADMIN_TOKEN", &lost);
        let child = c.spawn().unwrap();
        wait_for_port(port);
        child
    };
    let child = start();
    // While the appliance holds the database the command refuses and points at the API.
    let busy = admin_token(&data, &["list"]);
    assert!(!busy.status.success());
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(
        err.contains("running") && err.contains("/api/admin/tokens"),
        "{err}"
    );
    let (ok, log) = terminate(child);
    assert!(ok, "{log}");

    // Another appliance's key would sign the system log and retire this one: refused.
    let foreign = evidentia()
        .args(["admin", "token", "issue", "--name", "x", "--data-dir"])
        .arg(&data)
        .env("APPLIANCE_SIGNING_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    assert!(!foreign.status.success());
    let err = String::from_utf8_lossy(&foreign.stderr);
    assert!(
        err.contains("not the key this database signs with"),
        "{err}"
    );
    let keys = evidentia::store::active_key_of(&data.join("evidentia.redb"))
        .unwrap()
        .unwrap();

    // Stopped: issue a new one, revoke the lost one (even though it would be the last).
    let issued = admin_token(
        &data,
        &["issue", "--name", "rescue", "--expires-in-days", "7"],
    );
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let rescue = String::from_utf8_lossy(&issued.stdout).trim().to_string();
    assert!(
        evidentia::identity::parse_token(&rescue).is_some(),
        "{rescue}"
    );
    let revoked = admin_token(&data, &["revoke", &lost_id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(String::from_utf8_lossy(&revoked.stdout).contains("1 working"));
    let listed = admin_token(&data, &["list"]);
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        text.contains(&format!("{lost_id}  bootstrap")) && text.contains("revoked"),
        "{text}"
    );
    assert!(
        text.contains("rescue") && text.contains("active, expires"),
        "{text}"
    );
    assert!(!text.contains(&rescue) && !text.contains(&lost));
    let unknown = admin_token(&data, &["revoke", "tok_0000000000000000"]);
    assert!(!unknown.status.success());

    // Started again: the lost token is 401, the rescue token works, and the host's actions
    // are in the system audit log; the logs' signed history still checks.
    let child = start();
    let base = format!("http://127.0.0.1:{port}");
    let (ok, body) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Authorization: Bearer {lost}"),
        &format!("{base}/api/tenants"),
    ]);
    assert!(ok && body.starts_with("401"), "{body}");
    let (ok, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {rescue}"),
        &format!("{base}/api/audit?limit=500"),
    ]);
    assert!(ok, "{body}");
    let audit: serde_json::Value = serde_json::from_str(&body).unwrap();
    let host: Vec<&serde_json::Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["actor"] == "host:cli")
        .collect();
    assert_eq!(host.len(), 2, "{body}");
    assert!(
        host.iter()
            .any(|a| a["action"] == "admin_token.revoke" && a["resource"] == lost_id.as_str())
    );
    assert!(terminate(child).0);
    let after = evidentia::store::active_key_of(&data.join("evidentia.redb"))
        .unwrap()
        .unwrap();
    assert_eq!(
        after.verifier_key, keys.verifier_key,
        "the signing key did not change"
    );
    let check = evidentia()
        .arg("check")
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
