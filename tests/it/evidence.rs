//! Provenance: artifacts, receipts (the HS256 vector and its forgeries), logs and proofs,
//! export, offline bundle verification with the real CLI, retention, restart.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;
use evidentia::tlog::merkle;
use evidentia::tlog::note::{VerifierKey, open_checkpoint};

/// `createdAt` of the receipt vector: 2026-11-30T12:00:00Z.
const RECEIPT_NOW: i64 = 1_796_040_000;

struct Ev {
    app: TestApp,
    token: String,
}

async fn setup() -> Ev {
    // These tests submit dozens of receipts a minute from one token; the API's default class
    // quota (60/min, tested in tenant_admin.rs) is not what they are about.
    let app = start_with(|c| c.ratelimit.api_default_per_minute = 10_000).await;
    app.clock.set(RECEIPT_NOW);
    app.create_tenant("acme").await;
    let token = app.create_token("acme", &["ingest", "viewer"]).await;
    Ev { app, token }
}

impl Ev {
    async fn submit(&self, receipt: &Value) -> Resp {
        self.app
            .post_json(
                "/api/conductor/evidence/receipt",
                &self.token,
                receipt.clone(),
            )
            .await
    }

    async fn upload(&self, run: &str, query: &str, ct: &str, body: &[u8]) -> Resp {
        self.app
            .call(
                Method::POST,
                &format!("/api/conductor/runs/{run}/artifacts?{query}"),
                Some(&self.token),
                &[("content-type", ct)],
                body.to_vec(),
            )
            .await
    }

    async fn verifier(&self) -> VerifierKey {
        let keys = self
            .app
            .call(Method::GET, "/api/keys", None, &[], vec![])
            .await;
        keys.expect(200);
        let k = keys.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["status"] == "active")
            .unwrap()["verifier_key"]
            .as_str()
            .unwrap()
            .to_string();
        VerifierKey::parse(&k).unwrap()
    }
}

fn vector() -> Value {
    load_vector("receipt-hs256.json")
}

/// The vector's receipt bound to `tenant` — the signed `tenant` member a receipt under the
/// appliance key needs — and signed with the vector's secret, as a runner would.
fn bound(tenant: &str) -> Value {
    let v = vector();
    let mut r = v["receipt_unsigned"].clone();
    r["tenant"] = json!(tenant);
    let secret = v["secret"].as_str().unwrap().as_bytes();
    r["signature"] = json!(evidentia::verify::hs256_sign(secret, &r).unwrap());
    r
}

fn b64_hashes(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap())
        .collect()
}

/// Checks a `log` object of a 201 against the leaf bytes and the appliance key.
fn check_log_ref(log: &Value, entry: &[u8], key: &VerifierKey) {
    let cp =
        open_checkpoint(log["checkpoint"].as_str().unwrap(), key).expect("checkpoint signature");
    assert_eq!(cp.origin, log["origin"].as_str().unwrap());
    assert_eq!(cp.size, log["tree_size"].as_u64().unwrap());
    assert_eq!(B64.encode(cp.root), log["root"].as_str().unwrap());
    merkle::verify_inclusion(
        &merkle::leaf_hash(entry),
        log["index"].as_u64().unwrap(),
        cp.size,
        &b64_hashes(&log["inclusion_proof"]),
        &cp.root,
    )
    .expect("inclusion proof");
}

#[tokio::test]
async fn the_vector_receipt_bound_to_its_tenant_is_accepted_logged_and_exported() {
    let ev = setup().await;
    let v = vector();
    // The vector itself: its signature and canonical form are what the receipt module computes.
    let parsed = evidentia::evidence::receipt::parse(v["receipt_signed"].clone()).unwrap();
    let secret = v["secret"].as_str().unwrap().as_bytes().to_vec();
    let verified = evidentia::evidence::receipt::verify_signature(
        &parsed,
        &evidentia::evidence::receipt::ReceiptKey::Hs256(secret),
    )
    .unwrap();
    assert_eq!(
        evidentia::ingest::sha256_hex(verified.canonical()),
        v["jcs_signed_sha256"].as_str().unwrap()
    );
    // Signed with the appliance-wide key but naming no tenant, it could be any tenant's: refused.
    ev.submit(&v["receipt_signed"])
        .await
        .problem(422, "RECEIPT_INVALID");

    let receipt = bound("acme");
    let canonical = evidentia::verify::jcs(&receipt).unwrap();
    let sha256 = evidentia::ingest::sha256_hex(&canonical);
    let r = ev.submit(&receipt).await;
    r.expect(201);
    let body = r.json();
    assert_eq!(body["receiptId"], v["receipt_signed"]["receiptId"]);
    assert_eq!(body["runId"], "run-2026-11-30-0001");
    assert_eq!(body["sha256"], sha256.as_str());
    let key = ev.verifier().await;
    check_log_ref(&body["log"], &canonical, &key);
    assert_eq!(body["log"]["origin"], "evidentia/acme/evidence");

    // Export: the stored canonical bytes, with Repr-Digest.
    let got = ev
        .app
        .get(
            "/api/conductor/evidence/receipt/run-2026-11-30-0001",
            &ev.token,
        )
        .await;
    got.expect(200);
    assert_eq!(got.body, canonical);
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        got.header("repr-digest").unwrap(),
        format!("sha-256=:{}:", B64.encode(hex::decode(&sha256).unwrap()))
    );
    // The log entry is exactly those bytes.
    let idx = body["log"]["index"].as_u64().unwrap();
    let entry = ev
        .app
        .get(
            &format!("/api/tenants/acme/logs/evidence/entries/{idx}"),
            &ev.token,
        )
        .await;
    assert_eq!(entry.body, canonical);

    // Submission and read were audited, the read before the bytes went out.
    let audit = ev.app.audit("acme").await;
    assert!(
        audit
            .iter()
            .any(|a| a["action"] == "receipt.submit" && a["status"] == 201)
    );
    assert!(
        audit
            .iter()
            .any(|a| a["action"] == "receipt.read" && a["status"] == 200)
    );
}

#[tokio::test]
async fn a_receipt_under_the_appliance_key_counts_only_in_the_tenant_it_names() {
    let ev = setup().await;
    ev.app.create_tenant("globex").await;
    let globex = ev.app.create_token("globex", &["ingest", "viewer"]).await;
    let before = ev
        .app
        .get("/api/tenants/globex/logs/evidence/checkpoint", &globex)
        .await;
    // acme's receipt submitted by globex's runner (the same appliance key signs both).
    let r = ev
        .app
        .post_json("/api/conductor/evidence/receipt", &globex, bound("acme"))
        .await;
    r.problem(422, "RECEIPT_TENANT_MISMATCH");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("\"globex\"") && !detail.contains("acme"),
        "{detail}"
    );
    // `tenant` is signed: rewriting it breaks the signature.
    let mut rewritten = bound("acme");
    rewritten["tenant"] = json!("globex");
    ev.app
        .post_json("/api/conductor/evidence/receipt", &globex, rewritten)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");
    // Not a string: a malformed receipt.
    let mut typed = bound("acme");
    typed["tenant"] = json!(["acme"]);
    ev.submit(&typed).await.problem(422, "RECEIPT_INVALID");
    // Nothing reached globex's evidence log; in its own tenant the receipt is recorded.
    let after = ev
        .app
        .get("/api/tenants/globex/logs/evidence/checkpoint", &globex)
        .await;
    assert_eq!(before.body, after.body);
    ev.submit(&bound("acme")).await.expect(201);
    // A tenant-key receipt is bound by the key; naming another tenant is refused all the same.
    let admin = ev.app.create_token("acme", &["tenant-admin"]).await;
    let secret = "acme-runner-secret-0123456789abcdef-xyz";
    ev.app
        .post_json(
            "/api/tenants/acme/signing-keys",
            &admin,
            json!({"kid": "runner-1", "alg": "HS256", "secret": secret}),
        )
        .await
        .expect(201);
    let mut r = vector()["receipt_unsigned"].clone();
    r["receiptId"] = json!("names-globex");
    r["evidence"] = json!({"artifacts": []});
    r["signer"] = json!({"kid": "runner-1", "alg": "HS256"});
    r["tenant"] = json!("globex");
    r["signature"] = json!(evidentia::verify::hs256_sign(secret.as_bytes(), &r).unwrap());
    ev.submit(&r).await.problem(422, "RECEIPT_TENANT_MISMATCH");
    // A forged receipt is a forgery first: the tenant is looked at only once it verified.
    let mut forged = bound("globex");
    forged["summary"]["status"] = json!("failed");
    ev.submit(&forged)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");
}

#[tokio::test]
async fn forged_substituted_unsigned_stale_and_replayed_receipts_are_refused() {
    let ev = setup().await;
    let signed = bound("acme");
    // Any field changed (every top-level member and the nested ones).
    let mut forgeries: Vec<Value> = Vec::new();
    for (k, _) in signed.as_object().unwrap() {
        if k == "signature" {
            continue;
        }
        let mut f = signed.clone();
        f[k] = match &signed[k] {
            Value::String(s) => json!(format!("{s}x")),
            Value::Object(_) => json!({"changed": true}),
            other => json!([other]),
        };
        forgeries.push(f);
    }
    let mut f = signed.clone();
    f["evidence"]["artifacts"][0]["sha256"] = json!("0".repeat(64));
    forgeries.push(f);
    let mut f = signed.clone();
    f["summary"]["status"] = json!("failed");
    forgeries.push(f);
    let mut f = signed.clone();
    f["extra"] = json!("added member");
    forgeries.push(f);
    for f in &forgeries {
        let r = ev.submit(f).await;
        assert_eq!(r.status, 422, "{f}: {}", String::from_utf8_lossy(&r.body));
        assert!(
            [
                "RECEIPT_SIGNATURE_INVALID",
                "RECEIPT_INVALID",
                "RECEIPT_STALE"
            ]
            .contains(&r.code().as_str()),
            "{}",
            r.code()
        );
    }
    // Dropping the signature, a wrong secret, a swapped signer.
    let mut unsigned = signed.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    ev.submit(&unsigned)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");
    let mut other_secret = signed.clone();
    other_secret.as_object_mut().unwrap().remove("signature");
    other_secret["signature"] = json!(
        evidentia::verify::hs256_sign(b"another-secret-another-secret-xx", &other_secret).unwrap()
    );
    ev.submit(&other_secret)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");
    let mut swapped = signed.clone();
    swapped["signer"] = json!({"kid": "runner-7", "alg": "HS256"});
    ev.submit(&swapped)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");
    let mut swapped_alg = signed.clone();
    swapped_alg["signer"] = json!({"kid": "default", "alg": "EdDSA"});
    ev.submit(&swapped_alg)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");
    // Late, and too far in the future.
    ev.app.clock.set(RECEIPT_NOW + 301);
    ev.submit(&signed).await.problem(422, "RECEIPT_STALE");
    ev.app.clock.set(RECEIPT_NOW - 61);
    ev.submit(&signed).await.problem(422, "RECEIPT_STALE");
    // Accepted once, then replayed.
    ev.app.clock.set(RECEIPT_NOW + 10);
    ev.submit(&signed).await.expect(201);
    let again = ev.submit(&signed).await;
    again.problem(409, "RECEIPT_REPLAYED");
    assert!(
        again
            .header("location")
            .unwrap()
            .contains("receiptId=0b9f3c1e-5a7d-4c2b-9e61-3f2a8d7c4b10")
    );
    assert_eq!(again.json()["original"]["runId"], "run-2026-11-30-0001");
    // Not JSON; too big (413 from Content-Length, before reading).
    ev.app
        .call(
            Method::POST,
            "/api/conductor/evidence/receipt",
            Some(&ev.token),
            &[],
            b"{".to_vec(),
        )
        .await
        .problem(400, "INVALID_JSON");
    ev.app
        .call(
            Method::POST,
            "/api/conductor/evidence/receipt",
            Some(&ev.token),
            &[],
            vec![b' '; 256 * 1024 + 1],
        )
        .await
        .problem(413, "PAYLOAD_TOO_LARGE");
    // Only one receipt was recorded.
    assert_eq!(
        ev.app
            .state
            .store
            .log_size("evidentia/acme/evidence")
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn artifacts_digests_tenant_keys_and_eddsa() {
    let ev = setup().await;
    let run = "run-2026-11-30-0001";
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#;
    let up = ev
        .upload(
            run,
            "type=sbom&id=sbom-1",
            "application/vnd.cyclonedx+json",
            sbom,
        )
        .await;
    up.expect(201);
    let a = up.json();
    assert_eq!(a["artifactId"], "sbom-1");
    assert_eq!(a["sha256"], evidentia::ingest::sha256_hex(sbom));
    assert_eq!(a["type"], "sbom");
    let key = ev.verifier().await;
    let descriptor = ev
        .app
        .get(
            &format!(
                "/api/tenants/acme/logs/evidence/entries/{}",
                a["log"]["index"]
            ),
            &ev.token,
        )
        .await;
    check_log_ref(&a["log"], &descriptor.body, &key);
    let d: Value = serde_json::from_slice(&descriptor.body).unwrap();
    assert_eq!(d["type"], "artifact");
    assert_eq!(d["artifactId"], "sbom-1");
    // The vector lists sbom-1 with another digest: refused.
    ev.submit(&bound("acme"))
        .await
        .problem(422, "ARTIFACT_DIGEST_MISMATCH");
    // Immutable.
    ev.upload(run, "type=sbom&id=sbom-1", "application/json", b"{}")
        .await
        .problem(409, "ARTIFACT_EXISTS");
    // Media type and content checks; early 413.
    ev.upload(run, "type=sbom", "text/plain", b"{}")
        .await
        .problem(415, "UNSUPPORTED_MEDIA_TYPE");
    ev.upload(run, "type=sbom", "application/json", b"{nope")
        .await
        .problem(422, "ARTIFACT_CONTENT_INVALID");
    ev.upload(run, "type=log", "text/plain", b"\xff\xfe")
        .await
        .problem(422, "ARTIFACT_CONTENT_INVALID");
    ev.upload(run, "type=binary", "application/json", b"{}")
        .await
        .problem(400, "INVALID_PARAMETER");
    ev.upload(run, "type=log&retention_days=5000", "text/plain", b"x")
        .await
        .problem(422, "INVALID_RETENTION");
    let too_big = vec![b'a'; 16 * 1024 * 1024 + 1];
    ev.upload(run, "type=log", "text/plain", &too_big)
        .await
        .problem(413, "PAYLOAD_TOO_LARGE");
    // Download headers.
    let dl = ev
        .app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/sbom-1"),
            &ev.token,
        )
        .await;
    dl.expect(200);
    assert_eq!(dl.body, sbom.to_vec());
    assert_eq!(
        dl.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        dl.header("stored-content-type").as_deref(),
        Some("application/vnd.cyclonedx+json")
    );
    assert_eq!(
        dl.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        dl.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(
        dl.header("repr-digest").unwrap(),
        evidentia::evidence::repr_digest(sbom)
    );
    let list = ev
        .app
        .get(&format!("/api/conductor/runs/{run}/artifacts"), &ev.token)
        .await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 1);

    // A tenant HS256 key by kid, with a matching artifact digest.
    let admin = ev.app.create_token("acme", &["tenant-admin"]).await;
    let secret = "tenant-runner-secret-0123456789abcdef";
    ev.app
        .post_json(
            "/api/tenants/acme/signing-keys",
            &admin,
            json!({"kid": "runner-1", "alg": "HS256", "secret": secret}),
        )
        .await
        .expect(201);
    ev.app
        .post_json(
            "/api/tenants/acme/signing-keys",
            &admin,
            json!({"kid": "default", "alg": "HS256", "secret": secret}),
        )
        .await
        .problem(409, "KID_RESERVED");
    let listed = ev.app.get("/api/tenants/acme/signing-keys", &admin).await;
    assert!(!String::from_utf8_lossy(&listed.body).contains(secret));
    let mut r = vector()["receipt_unsigned"].clone();
    r["receiptId"] = json!("tenant-key-receipt");
    r["signer"] = json!({"kid": "runner-1", "alg": "HS256"});
    r["evidence"]["artifacts"][0]["sha256"] = json!(evidentia::ingest::sha256_hex(sbom));
    r["signature"] = json!(evidentia::verify::hs256_sign(secret.as_bytes(), &r).unwrap());
    ev.submit(&r).await.expect(201);
    // EdDSA with a registered public key.
    let sk = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    ev.app
        .post_json(
            "/api/tenants/acme/signing-keys",
            &admin,
            json!({"kid": "runner-ed", "alg": "EdDSA", "public_key": B64.encode(sk.verifying_key().as_bytes())}),
        )
        .await
        .expect(201);
    let mut r = vector()["receipt_unsigned"].clone();
    r["receiptId"] = json!("eddsa-receipt");
    r["evidence"] = json!({"artifacts": []});
    r["signer"] = json!({"kid": "runner-ed", "alg": "EdDSA"});
    let input = evidentia::evidence::receipt::signing_input(&r).unwrap();
    use ed25519_dalek::Signer;
    r["signature"] =
        json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.sign(&input).to_bytes()));
    ev.submit(&r).await.expect(201);
    r["summary"]["status"] = json!("tampered");
    r["receiptId"] = json!("eddsa-receipt-2");
    ev.submit(&r)
        .await
        .problem(422, "RECEIPT_SIGNATURE_INVALID");

    // Other tenants see nothing: identical 404s.
    ev.app.create_tenant("beta").await;
    let beta = ev.app.create_token("beta", &["viewer"]).await;
    let foreign = ev
        .app
        .get(&format!("/api/conductor/evidence/receipt/{run}"), &beta)
        .await;
    let missing = ev
        .app
        .get("/api/conductor/evidence/receipt/no-such-run", &beta)
        .await;
    foreign.problem(404, "NOT_FOUND");
    assert_eq!(foreign.body, missing.body);
    let fa = ev
        .app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/sbom-1"),
            &beta,
        )
        .await;
    fa.problem(404, "NOT_FOUND");
    ev.app
        .get(
            &format!("/api/conductor/evidence/receipt/{run}/bundle"),
            &beta,
        )
        .await
        .problem(404, "NOT_FOUND");
    // The appliance admin has no tenant: conductor endpoints need a tenant token.
    ev.app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts"),
            &ev.app.admin,
        )
        .await
        .problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn retention_purges_bytes_but_not_the_log_and_legal_hold_protects() {
    let ev = setup().await;
    let admin = ev.app.create_token("acme", &["tenant-admin"]).await;
    let run = "run-ret";
    ev.upload(
        run,
        "type=trace&id=t1",
        "application/json",
        b"{\"spans\":[]}",
    )
    .await
    .expect(201);
    ev.upload(
        run,
        "type=trace&id=t2",
        "application/json",
        b"{\"spans\":[1]}",
    )
    .await
    .expect(201);
    ev.app
        .call(
            Method::PUT,
            &format!("/api/conductor/runs/{run}/artifacts/t2/legal-hold"),
            Some(&admin),
            &[("content-type", "application/json")],
            br#"{"hold":true}"#.to_vec(),
        )
        .await
        .expect(200);
    let size_before = ev
        .app
        .state
        .store
        .log_size("evidentia/acme/evidence")
        .unwrap();
    let cp_before = ev
        .app
        .get("/api/tenants/acme/logs/evidence/checkpoint", &ev.token)
        .await
        .body;
    ev.app.clock.advance(29 * 86_400);
    evidentia::server::run_retention(&ev.app.state).await;
    ev.app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/t1"),
            &ev.token,
        )
        .await
        .expect(200);
    ev.app.clock.advance(2 * 86_400);
    evidentia::server::run_retention(&ev.app.state).await;
    ev.app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/t1"),
            &ev.token,
        )
        .await
        .problem(410, "ARTIFACT_PURGED");
    ev.app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/t2"),
            &ev.token,
        )
        .await
        .expect(200);
    assert_eq!(
        ev.app
            .state
            .store
            .log_size("evidentia/acme/evidence")
            .unwrap(),
        size_before
    );
    assert_eq!(
        ev.app
            .get("/api/tenants/acme/logs/evidence/checkpoint", &ev.token)
            .await
            .body,
        cp_before
    );
    // Released: purged at the next run.
    ev.app
        .call(
            Method::PUT,
            &format!("/api/conductor/runs/{run}/artifacts/t2/legal-hold"),
            Some(&admin),
            &[("content-type", "application/json")],
            br#"{"hold":false}"#.to_vec(),
        )
        .await
        .expect(200);
    evidentia::server::run_retention(&ev.app.state).await;
    ev.app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/t2"),
            &ev.token,
        )
        .await
        .problem(410, "ARTIFACT_PURGED");
}

#[tokio::test]
async fn log_api_proofs_verify_and_bad_ranges_are_400() {
    let ev = setup().await;
    for i in 0..9 {
        ev.upload(
            "run-logs",
            &format!("type=log&id=l{i}"),
            "text/plain",
            format!("line {i}\n").as_bytes(),
        )
        .await
        .expect(201);
    }
    let key = ev.verifier().await;
    let note = ev
        .app
        .get("/api/tenants/acme/logs/evidence/checkpoint", &ev.token)
        .await;
    note.expect(200);
    assert!(
        note.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let cp = open_checkpoint(std::str::from_utf8(&note.body).unwrap(), &key).unwrap();
    assert_eq!(cp.size, 9);
    for i in 0..9u64 {
        let entry = ev
            .app
            .get(
                &format!("/api/tenants/acme/logs/evidence/entries/{i}"),
                &ev.token,
            )
            .await;
        let p = ev
            .app
            .get(
                &format!("/api/tenants/acme/logs/evidence/proofs/inclusion?index={i}&tree_size=9"),
                &ev.token,
            )
            .await;
        p.expect(200);
        let p = p.json();
        assert_eq!(p["leaf_hash"], B64.encode(merkle::leaf_hash(&entry.body)));
        merkle::verify_inclusion(
            &merkle::leaf_hash(&entry.body),
            i,
            9,
            &b64_hashes(&p["inclusion_proof"]),
            &cp.root,
        )
        .unwrap();
    }
    // Consistency from every older size to the checkpoint; old roots from the API.
    for from in 1..9u64 {
        let c = ev
            .app
            .get(
                &format!("/api/tenants/acme/logs/evidence/proofs/consistency?from={from}&to=9"),
                &ev.token,
            )
            .await;
        c.expect(200);
        let old_root = ev
            .app
            .state
            .store
            .log_root("evidentia/acme/evidence", from)
            .unwrap();
        merkle::verify_consistency(
            from,
            9,
            &b64_hashes(&c.json()["consistency_proof"]),
            &old_root,
            &cp.root,
        )
        .unwrap();
    }
    for bad in [
        "proofs/inclusion?index=9&tree_size=9",
        "proofs/inclusion?index=0&tree_size=10",
        "proofs/inclusion?index=0&tree_size=18446744073709551615",
        "proofs/consistency?from=5&to=4",
        "proofs/consistency?from=1&to=99",
    ] {
        ev.app
            .get(&format!("/api/tenants/acme/logs/evidence/{bad}"), &ev.token)
            .await
            .problem(400, "INVALID_RANGE");
    }
    ev.app
        .get(
            "/api/tenants/acme/logs/evidence/proofs/inclusion?index=-1",
            &ev.token,
        )
        .await
        .problem(400, "INVALID_PARAMETER");
    ev.app
        .get("/api/tenants/acme/logs/secrets/checkpoint", &ev.token)
        .await
        .problem(400, "INVALID_PARAMETER");
    ev.app
        .get("/api/tenants/acme/logs/evidence/entries/99", &ev.token)
        .await
        .problem(404, "NOT_FOUND");
    // The audit log is a transparency log too: its entries are the audit records.
    let audit_cp = ev
        .app
        .get("/api/tenants/acme/logs/audit/checkpoint", &ev.token)
        .await;
    let acp = open_checkpoint(std::str::from_utf8(&audit_cp.body).unwrap(), &key).unwrap();
    assert!(acp.size > 9);
    let first: Value = serde_json::from_slice(
        &ev.app
            .get("/api/tenants/acme/logs/audit/entries/0", &ev.token)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(first["index"], 0);
    assert_eq!(first["tenant"], "acme");
}

#[tokio::test]
async fn exported_bundle_verifies_offline_with_the_cli_and_tampering_is_named() {
    let ev = setup().await;
    // A few entries before and after, so the proof is not trivial.
    for i in 0..5 {
        ev.upload("run-b", &format!("type=log&id=b{i}"), "text/plain", b"x")
            .await
            .expect(201);
    }
    ev.submit(&bound("acme")).await.expect(201);
    for i in 5..8 {
        ev.upload("run-b", &format!("type=log&id=b{i}"), "text/plain", b"y")
            .await
            .expect(201);
    }
    let bundle = ev
        .app
        .get(
            "/api/conductor/evidence/receipt/run-2026-11-30-0001/bundle",
            &ev.token,
        )
        .await;
    bundle.expect(200);
    let bundle = bundle.json();
    let key = ev.verifier().await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{EVIDENCE_SECRET}\n")).unwrap();
    let run = |b: &Value, key: &str| {
        let f = dir.path().join("bundle.json");
        std::fs::write(&f, serde_json::to_vec(b).unwrap()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_evidentia"))
            .args(["verify", "bundle"])
            .arg(&f)
            .args(["--key", key, "--hmac-secret-file"])
            .arg(&secret_file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = run(&bundle, &key);
    assert!(ok, "{out}");
    for check in [
        "receipt_digest",
        "leaf",
        "checkpoint_signature",
        "checkpoint",
        "inclusion",
        "receipt_signature",
    ] {
        assert!(out.contains(&format!("ok   {check}")), "{check}: {out}");
    }
    // A byte of the receipt.
    let mut b = bundle.clone();
    let mut bytes = B64.decode(b["receipt"].as_str().unwrap()).unwrap();
    bytes[20] ^= 1;
    b["receipt"] = json!(B64.encode(&bytes));
    let (ok, out) = run(&b, &key);
    assert!(!ok && out.contains("FAIL receipt_digest"), "{out}");
    // A proof hash.
    let mut b = bundle.clone();
    let mut h = B64
        .decode(b["inclusion_proof"][0].as_str().unwrap())
        .unwrap();
    h[0] ^= 1;
    b["inclusion_proof"][0] = json!(B64.encode(&h));
    let (ok, out) = run(&b, &key);
    assert!(!ok && out.contains("FAIL inclusion"), "{out}");
    // The checkpoint.
    let mut b = bundle.clone();
    let note = b["checkpoint"]
        .as_str()
        .unwrap()
        .replacen("\n9\n", "\n8\n", 1);
    b["checkpoint"] = json!(note);
    let (ok, out) = run(&b, &key);
    assert!(!ok && out.contains("FAIL checkpoint_signature"), "{out}");
    // The key.
    let other = evidentia::tlog::NoteSigner::new(
        "evidentia",
        ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]),
    )
    .unwrap()
    .verifier_key()
    .to_string();
    let (ok, out) = run(&bundle, &other);
    assert!(!ok && out.contains("FAIL checkpoint_signature"), "{out}");
}

#[tokio::test]
async fn logs_checkpoints_and_proofs_are_identical_after_a_restart() {
    let ev = setup().await;
    ev.submit(&bound("acme")).await.expect(201);
    for i in 0..6 {
        ev.upload("run-r", &format!("type=log&id=r{i}"), "text/plain", b"z")
            .await
            .expect(201);
    }
    let paths = [
        "/api/tenants/acme/logs/evidence/checkpoint",
        "/api/tenants/acme/logs/evidence/proofs/inclusion?index=0&tree_size=7",
        "/api/tenants/acme/logs/evidence/proofs/consistency?from=3&to=7",
        "/api/tenants/acme/logs/evidence/entries/4",
        "/api/conductor/evidence/receipt/run-2026-11-30-0001/bundle",
    ];
    let mut before = Vec::new();
    for p in paths {
        before.push(ev.app.get(p, &ev.token).await.body);
    }
    let keys_before = ev
        .app
        .call(Method::GET, "/api/keys", None, &[], vec![])
        .await
        .body;
    let Ev { app, token } = ev;
    let (dir, config, admin) = (app.dir.clone(), app.state.config.clone(), app.admin.clone());
    app.state.store.shutdown();
    drop(app);
    let app = open(dir, config, Some(admin)).await;
    app.clock.set(RECEIPT_NOW);
    for (p, b) in paths.iter().zip(&before) {
        assert_eq!(&app.get(p, &token).await.body, b, "{p}");
    }
    assert_eq!(
        app.call(Method::GET, "/api/keys", None, &[], vec![])
            .await
            .body,
        keys_before
    );
    // The log keeps growing consistently from the pre-restart checkpoint.
    app.call(
        Method::POST,
        "/api/conductor/runs/run-r/artifacts?type=log&id=after",
        Some(&token),
        &[("content-type", "text/plain")],
        b"after".to_vec(),
    )
    .await
    .expect(201);
    let c = app
        .get(
            "/api/tenants/acme/logs/evidence/proofs/consistency?from=7",
            &token,
        )
        .await;
    c.expect(200);
    assert_eq!(c.json()["to"], 8);
}

#[tokio::test]
async fn rotating_the_appliance_key_keeps_old_keys_listed_and_history_verifiable() {
    let ev = setup().await;
    ev.upload("run-k", "type=log&id=k1", "text/plain", b"one")
        .await
        .expect(201);
    let old_key = ev.verifier().await;
    let old_note = ev
        .app
        .get("/api/tenants/acme/logs/evidence/checkpoint", &ev.token)
        .await
        .body;
    let Ev { app, token } = ev;
    let (dir, config, admin) = (app.dir.clone(), app.state.config.clone(), app.admin.clone());
    app.state.store.shutdown();
    drop(app);
    let mut rotated = secrets();
    rotated.appliance_signing_seed = [8u8; 32];
    let app = open_with_secrets(dir, config, Some(admin), rotated).await;
    app.clock.set(RECEIPT_NOW);
    let ev = Ev { app, token };
    let keys = ev
        .app
        .call(Method::GET, "/api/keys", None, &[], vec![])
        .await
        .json();
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0]["verifier_key"], old_key.to_string());
    assert_eq!(keys[0]["status"], "retired");
    assert!(keys[0]["retired_at"].is_string());
    assert_eq!(keys[1]["status"], "active");
    let new_key = ev.verifier().await;
    assert_ne!(new_key.to_string(), old_key.to_string());
    // The old checkpoint still verifies with the old key; new ones are signed with the new key
    // and extend the same history.
    let old = open_checkpoint(std::str::from_utf8(&old_note).unwrap(), &old_key).unwrap();
    ev.upload("run-k", "type=log&id=k2", "text/plain", b"two")
        .await
        .expect(201);
    let note = ev
        .app
        .get("/api/tenants/acme/logs/evidence/checkpoint", &ev.token)
        .await
        .body;
    let note = std::str::from_utf8(&note).unwrap();
    assert!(open_checkpoint(note, &old_key).is_err());
    let new = open_checkpoint(note, &new_key).unwrap();
    let c = ev
        .app
        .get(
            &format!(
                "/api/tenants/acme/logs/evidence/proofs/consistency?from={}&to={}",
                old.size, new.size
            ),
            &ev.token,
        )
        .await
        .json();
    merkle::verify_consistency(
        old.size,
        new.size,
        &b64_hashes(&c["consistency_proof"]),
        &old.root,
        &new.root,
    )
    .unwrap();
}

#[tokio::test]
async fn a_read_whose_audit_record_cannot_be_written_is_refused_with_503() {
    let ev = setup().await;
    let run = "run-audit";
    ev.upload(run, "type=log&id=a1", "text/plain", b"secret evidence")
        .await
        .expect(201);
    ev.app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/a1"),
            &ev.token,
        )
        .await
        .expect(200);
    // The writer stops (as when the disk fails): reads still work, their audit does not.
    ev.app.state.store.shutdown();
    let r = ev
        .app
        .get(
            &format!("/api/conductor/runs/{run}/artifacts/a1"),
            &ev.token,
        )
        .await;
    r.problem(503, "AUDIT_UNAVAILABLE");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("secret evidence"),
        "no bytes without an audit record"
    );
}

#[tokio::test]
async fn the_location_of_a_replay_is_percent_encoded() {
    let ev = setup().await;
    let mut r = vector()["receipt_unsigned"].clone();
    r["tenant"] = json!("acme");
    let id = "a&receiptId=b#c d";
    r["receiptId"] = json!(id);
    r["signature"] = json!(evidentia::verify::hs256_sign(EVIDENCE_SECRET.as_bytes(), &r).unwrap());
    ev.submit(&r).await.expect(201);
    let again = ev.submit(&r).await;
    again.problem(409, "RECEIPT_REPLAYED");
    let location = again.header("location").unwrap();
    assert!(
        location.ends_with("?receiptId=a%26receiptId%3Db%23c%20d"),
        "{location}"
    );
    // Following it reaches that receipt, not another.
    let got = ev.app.get(&location, &ev.token).await;
    got.expect(200);
    assert_eq!(got.json()["receiptId"], id);
}
