//! Sensitive reads answer with a signed access receipt bound to the audit leaf that recorded
//! them, and the receipt verifies offline (the key, the bytes, the leaf under a checkpoint);
//! changing one byte of the receipt or of the answer fails.

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;
use evidentia::verify::{self, AuditEvidence};

async fn verifier_key(app: &TestApp) -> String {
    let keys = app.call(Method::GET, "/api/keys", None, &[], vec![]).await;
    keys.expect(200);
    keys.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "active")
        .unwrap()["verifier_key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn claims(receipt: &str) -> Value {
    use base64::Engine;
    let payload = receipt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The audit log's checkpoint and the inclusion proof of `index`, as a verifier fetches them.
async fn audit_evidence(app: &TestApp, tenant: &str, token: &str, index: u64) -> (String, Vec<u8>) {
    let cp = app
        .get(
            &format!("/api/tenants/{tenant}/logs/audit/checkpoint"),
            token,
        )
        .await;
    cp.expect(200);
    let text = String::from_utf8(cp.body.clone()).unwrap();
    let size = text.lines().nth(1).unwrap();
    let proof = app
        .get(
            &format!(
                "/api/tenants/{tenant}/logs/audit/proofs/inclusion?index={index}&tree_size={size}"
            ),
            token,
        )
        .await;
    proof.expect(200);
    (String::from_utf8(cp.body).unwrap(), proof.body)
}

fn flip(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[tokio::test]
async fn an_event_body_read_carries_a_receipt_that_verifies_offline() {
    let app = start().await;
    let body = br#"{"job_id":"j1","kind":"link_prediction","predictions":[{"a":1}]}"#.to_vec();
    let r = app.post_ml(body.clone()).await;
    r.expect(200);
    let id = r.json()["event_id"].as_str().unwrap().to_string();
    let reader = app.create_token("default", &["analyst"]).await;
    let read = app
        .get(&format!("/api/tenants/default/events/{id}/body"), &reader)
        .await;
    read.expect(200);
    assert_eq!(read.body, body);
    let receipt = read
        .header("evidentia-access-receipt")
        .expect("receipt header");
    let c = claims(&receipt);
    assert_eq!(c["act"], "events.body.read");
    assert_eq!(c["res"]["type"], "Event");
    assert_eq!(c["res"]["id"], id.as_str());
    assert_eq!(c["tenant"], "default");
    assert_eq!(c["dec"], "allow");
    assert_eq!(
        c["sub"],
        format!(
            "token:{}",
            evidentia::identity::parse_token(&reader).unwrap()
        )
    );

    // The audit record names the receipt and is the leaf the receipt names.
    let audit = app.audit("default").await;
    let rec = audit
        .iter()
        .find(|r| r["access_receipt"] == c["rid"])
        .expect("audit record of the read");
    assert_eq!(rec["index"], c["audit"]["index"]);
    assert_eq!(rec["action"], "events.body.read");
    assert_eq!(rec["authz"]["policy_set"], c["policyset"]);

    let key = verifier_key(&app).await;
    let index = c["audit"]["index"].as_u64().unwrap();
    let (cp, proof) = audit_evidence(&app, "default", &reader, index).await;
    let evidence = AuditEvidence {
        checkpoint: &cp,
        proof_json: &proof,
    };
    let results = verify::verify_access_receipt(&receipt, &key, Some(&body), Some(evidence));
    assert!(verify::all_passed(&results), "{results:?}");
    assert_eq!(results.len(), 3);

    // One byte of the receipt, or of the answer, changed: refused.
    for at in [10, receipt.len() / 2, receipt.len() - 5] {
        let bad = flip(&receipt, at);
        let results = verify::verify_access_receipt(&bad, &key, Some(&body), None);
        assert!(!verify::all_passed(&results), "byte {at}: {results:?}");
    }
    let mut other = body.clone();
    other[5] ^= 1;
    let results = verify::verify_access_receipt(&receipt, &key, Some(&other), None);
    assert!(!verify::all_passed(&results), "{results:?}");
    assert_eq!(results.last().unwrap().name, verify::CHECK_ACCESS_RESOURCE);
    // Another leaf's proof does not stand for this one.
    if index > 0 {
        let (cp, proof) = audit_evidence(&app, "default", &reader, index - 1).await;
        let evidence = AuditEvidence {
            checkpoint: &cp,
            proof_json: &proof,
        };
        let results = verify::verify_access_receipt(&receipt, &key, None, Some(evidence));
        assert!(!verify::all_passed(&results), "{results:?}");
    }

    // Reads that are not sensitive carry none.
    let meta = app
        .get(&format!("/api/tenants/default/events/{id}"), &reader)
        .await;
    meta.expect(200);
    assert!(meta.header("evidentia-access-receipt").is_none());
}

#[tokio::test]
async fn audit_pages_carry_the_receipt_in_the_body_too_and_the_cli_checks_it() {
    let app = start().await;
    app.create_tenant("acme").await;
    let officer = app.create_token("acme", &["compliance-officer"]).await;
    let page = app.get("/api/tenants/acme/audit?limit=5", &officer).await;
    page.expect(200);
    let header = page.header("evidentia-access-receipt").unwrap();
    let json = page.json();
    assert_eq!(json["receipt"], header.as_str());
    assert_eq!(claims(&header)["act"], "audit.read");
    assert_eq!(claims(&header)["res"]["type"], "Tenant");
    let key = verifier_key(&app).await;
    let results = verify::verify_access_receipt(&header, &key, Some(&page.body), None);
    assert!(verify::all_passed(&results), "{results:?}");
    // An item changed in the page: refused.
    let mut changed = json.clone();
    changed["items"][0]["status"] = json!(299);
    let changed = serde_json::to_vec(&changed).unwrap();
    let results = verify::verify_access_receipt(&header, &key, Some(&changed), None);
    assert!(!verify::all_passed(&results), "{results:?}");

    // The command line, as an auditor runs it.
    let dir = tempfile::tempdir().unwrap();
    let index = claims(&header)["audit"]["index"].as_u64().unwrap();
    let (cp, proof) = audit_evidence(&app, "acme", &officer, index).await;
    let files = [
        ("receipt.jws", header.clone().into_bytes()),
        ("page.json", page.body.clone()),
        ("checkpoint.txt", cp.into_bytes()),
        ("proof.json", proof),
        ("key.txt", key.into_bytes()),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let run = |receipt: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_evidentia"))
            .current_dir(dir.path())
            .args([
                "verify",
                "access-receipt",
                receipt,
                "--key",
                "key.txt",
                "--body",
                "page.json",
                "--checkpoint",
                "checkpoint.txt",
                "--proof",
                "proof.json",
            ])
            .output()
            .unwrap()
    };
    let ok = run("receipt.jws");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("access receipt verified"), "{stdout}");
    std::fs::write(dir.path().join("bad.jws"), flip(&header, header.len() / 3)).unwrap();
    let bad = run("bad.jws");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL"));
}
