//! Ingestion pipeline behaviour over HTTP (TestClient): check order, status codes, codes,
//! replay, tenant scoping of the ML webhook, rate limits, rotation, audit of every rejection.

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;

const GH_SECRET: &str = "It's a Secret to Everybody";

async fn github_source(app: &TestApp, extra: Value) -> (String, String) {
    let mut spec = json!({"provider": "github", "secret": GH_SECRET});
    if let (Some(o), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    let s = app.create_source("acme", spec).await;
    (
        s["id"].as_str().unwrap().to_string(),
        s["ingest_url"].as_str().unwrap().to_string(),
    )
}

async fn post_github(
    app: &TestApp,
    url: &str,
    body: &[u8],
    sig: &str,
    delivery: Option<&str>,
) -> Resp {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("X-Hub-Signature-256", sig),
    ];
    if let Some(d) = delivery {
        headers.push(("X-GitHub-Delivery", d));
    }
    app.call(Method::POST, url, None, &headers, body.to_vec())
        .await
}

fn gh_sig(body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(GH_SECRET, body))
}

#[tokio::test]
async fn accepted_event_reads_back_byte_for_byte_and_is_audited() {
    let app = start().await;
    app.create_tenant("acme").await;
    let (src, url) = github_source(&app, json!({})).await;
    let body = br#"{"action":"opened",  "number": 7}"#;
    let r = post_github(&app, &url, body, &gh_sig(body), Some("delivery-1")).await;
    r.expect(200);
    let ack = r.json();
    let id = ack["event_id"].as_str().unwrap().to_string();
    assert_eq!(ack["duplicate"], false);

    let meta = app
        .get(&format!("/api/tenants/acme/events/{id}"), &app.admin)
        .await;
    meta.expect(200);
    let m = meta.json();
    assert_eq!(m["source"], src.as_str());
    assert_eq!(m["delivery_id"], "delivery-1");
    assert_eq!(m["size"], body.len());
    assert_eq!(m["sha256"], evidentia::ingest::sha256_hex(body));

    let raw = app
        .get(&format!("/api/tenants/acme/events/{id}/body"), &app.admin)
        .await;
    raw.expect(200);
    assert_eq!(raw.body, body.to_vec());
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        raw.header("stored-content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        raw.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );

    let audit = app.audit("acme").await;
    let rec = audit
        .iter()
        .find(|a| a["resource"] == id.as_str() && a["action"] == "webhook.ingest")
        .expect("ingest audited");
    assert_eq!(rec["status"], 200);
    assert_eq!(rec["signature"], "valid");
    assert_eq!(rec["route"], "/webhooks/{source}/events");
    assert_eq!(rec["actor"], format!("source:{src}"));
}

#[tokio::test]
async fn rejections_have_their_codes_and_are_all_audited() {
    let app = start_with(|c| c.ingest.timestamp_tolerance_secs = 300).await;
    app.create_tenant("acme").await;
    let (_, url) = github_source(&app, json!({"max_payload_bytes": 64})).await;
    let body = br#"{"ok":true}"#;
    let good = gh_sig(body);

    // Content-Length above the cap.
    let big = vec![b'x'; 65];
    post_github(&app, &url, &big, &gh_sig(&big), None)
        .await
        .problem(413, "PAYLOAD_TOO_LARGE");
    // Compressed body.
    app.call(
        Method::POST,
        &url,
        None,
        &[("content-encoding", "gzip"), ("X-Hub-Signature-256", &good)],
        body.to_vec(),
    )
    .await
    .problem(415, "UNSUPPORTED_CONTENT_ENCODING");
    // Two signature header lines.
    app.call(
        Method::POST,
        &url,
        None,
        &[
            ("X-Hub-Signature-256", &good),
            ("X-Hub-Signature-256", &good),
        ],
        body.to_vec(),
    )
    .await
    .problem(400, "SIGNATURE_HEADER_INVALID");
    // Missing and empty header lines.
    app.call(Method::POST, &url, None, &[], body.to_vec())
        .await
        .problem(400, "SIGNATURE_HEADER_INVALID");
    app.call(
        Method::POST,
        &url,
        None,
        &[("X-Hub-Signature-256", "")],
        body.to_vec(),
    )
    .await
    .problem(400, "SIGNATURE_HEADER_INVALID");
    // Wrong, truncated, empty MAC, and a MAC of the re-serialised body.
    let wrong = format!("sha256={}", hmac_hex("another secret", body));
    let truncated = good[..good.len() - 2].to_string();
    let reserialised = gh_sig(br#"{"ok": true}"#);
    for sig in [
        wrong.as_str(),
        truncated.as_str(),
        "sha256=",
        reserialised.as_str(),
    ] {
        post_github(&app, &url, body, sig, None)
            .await
            .problem(401, "SIGNATURE_INVALID");
    }
    // Unparsable JSON after a valid signature.
    let bad_json = b"{not json";
    post_github(&app, &url, bad_json, &gh_sig(bad_json), None)
        .await
        .problem(400, "INVALID_JSON");
    // Unknown source.
    app.call(
        Method::POST,
        "/webhooks/src_00000000000000000000000000000000/events",
        None,
        &[("X-Hub-Signature-256", &good)],
        body.to_vec(),
    )
    .await
    .problem(404, "NOT_FOUND");

    // Nothing was stored...
    assert!(app.events("acme").await.is_empty());
    // ...and every rejection left an audit record with its code.
    let audit = app.audit("acme").await;
    let codes: Vec<&str> = audit
        .iter()
        .filter(|a| a["action"] == "webhook.ingest")
        .filter_map(|a| a["code"].as_str())
        .collect();
    for code in [
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_CONTENT_ENCODING",
        "SIGNATURE_HEADER_INVALID",
        "SIGNATURE_INVALID",
        "INVALID_JSON",
    ] {
        assert!(codes.contains(&code), "{code} not audited: {codes:?}");
    }
    // Repeated identical failures from one peer: one record now, a counted summary when the
    // minute ends; together they account for every request.
    let first = audit
        .iter()
        .filter(|a| a["code"] == "SIGNATURE_INVALID" && a["count"].is_null())
        .count();
    assert_eq!(first, 1);
    app.clock.advance(60);
    evidentia::server::flush_aggregates(&app.state, false).await;
    let audit = app.audit("acme").await;
    let summary = audit
        .iter()
        .find(|a| a["code"] == "SIGNATURE_INVALID" && a["count"].is_u64())
        .expect("summary record");
    assert_eq!(summary["count"], 3);
    assert_eq!(summary["signature"], "invalid");
    let appliance = app.get("/api/audit?limit=100", &app.admin).await;
    appliance.expect(200);
    assert!(
        appliance.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "NOT_FOUND" && a["route"] == "/webhooks/{source}/events"),
        "unknown-source probe audited in the appliance trail"
    );
}

#[tokio::test]
async fn standard_webhooks_timestamp_tolerance_and_replay() {
    let app = start().await;
    app.create_tenant("acme").await;
    let src = app
        .create_source("acme", json!({"provider": "standard"}))
        .await;
    let secret = src["secret"]
        .as_str()
        .expect("generated secret shown once")
        .to_string();
    assert!(secret.starts_with("whsec_"));
    let url = src["ingest_url"].as_str().unwrap().to_string();
    let body = br#"{"type":"invoice.paid"}"#;
    let send = |id: &'static str, ts: i64| {
        let sig = evidentia::ingest::signature::sign_standard(&secret, id, ts, body);
        let ts = ts.to_string();
        let url = url.clone();
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &url,
                None,
                &[
                    ("content-type", "application/json"),
                    ("webhook-id", id),
                    ("webhook-timestamp", &ts),
                    ("webhook-signature", &sig),
                ],
                body.to_vec(),
            )
            .await
        }
    };
    send("msg_old", NOW - 301)
        .await
        .problem(401, "TIMESTAMP_OUT_OF_TOLERANCE");
    send("msg_future", NOW + 301)
        .await
        .problem(401, "TIMESTAMP_OUT_OF_TOLERANCE");
    let first = send("msg_1", NOW - 299).await;
    first.expect(200);
    let first_id = first.json()["event_id"].as_str().unwrap().to_string();
    let again = send("msg_1", NOW).await;
    again.expect(200);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["event_id"], first_id.as_str());
    assert_eq!(
        app.events("acme").await.len(),
        1,
        "a duplicate creates nothing"
    );
    // The source listing never shows secrets.
    let listed = app
        .get("/api/tenants/acme/webhook-sources", &app.admin)
        .await;
    assert!(!String::from_utf8_lossy(&listed.body).contains(&secret));
}

#[tokio::test]
async fn digest_replay_for_schemes_without_delivery_id() {
    let app = start().await;
    app.create_tenant("acme").await;
    let (_, url) = github_source(&app, json!({})).await;
    let body = br#"{"n":1}"#;
    let a = post_github(&app, &url, body, &gh_sig(body), None).await;
    let b = post_github(&app, &url, body, &gh_sig(body), None).await;
    a.expect(200);
    b.expect(200);
    assert_eq!(b.json()["duplicate"], true);
    assert_eq!(a.json()["event_id"], b.json()["event_id"]);
    // Past the replay window (retention, 30 days) the same body is new again.
    app.clock.advance(31 * 86_400);
    let c = post_github(&app, &url, body, &gh_sig(body), None).await;
    assert_eq!(c.json()["duplicate"], false);
}

#[tokio::test]
async fn ml_webhook_tenants_insights_and_review() {
    let app = start().await;
    app.create_tenant("acme").await;
    let body = br#"{"job_id":"j1","kind":"link_prediction","predictions":[{"a":1},{"b":2}]}"#;
    // acme has no ml source yet: 401.
    app.call(
        Method::POST,
        "/ai/webhook",
        None,
        &[
            ("X-Tenant-Id", "acme"),
            ("X-IntelGraph-Signature", &hmac_hex(ML_SECRET, body)),
        ],
        body.to_vec(),
    )
    .await
    .problem(401, "SIGNATURE_INVALID");
    // Unknown tenant: the same 401.
    app.call(
        Method::POST,
        "/ai/webhook",
        None,
        &[
            ("X-Tenant-Id", "nobody"),
            ("X-IntelGraph-Signature", &hmac_hex(ML_SECRET, body)),
        ],
        body.to_vec(),
    )
    .await
    .problem(401, "SIGNATURE_INVALID");
    let src = app.create_source("acme", json!({"provider": "ml"})).await;
    assert_eq!(src["ingest_url"], "/ai/webhook");
    let secret = src["secret"].as_str().unwrap().to_string();
    // A second ml source is refused.
    app.post_json(
        "/api/tenants/acme/webhook-sources",
        &app.admin,
        json!({"provider": "ml"}),
    )
    .await
    .problem(409, "ML_SOURCE_EXISTS");
    // The appliance secret does not open acme's ml source.
    app.call(
        Method::POST,
        "/ai/webhook",
        None,
        &[
            ("X-Tenant-Id", "acme"),
            ("X-IntelGraph-Signature", &hmac_hex(ML_SECRET, body)),
        ],
        body.to_vec(),
    )
    .await
    .problem(401, "SIGNATURE_INVALID");
    let ok = app
        .call(
            Method::POST,
            "/ai/webhook",
            None,
            &[
                ("X-Tenant-Id", "acme"),
                (
                    "X-IntelGraph-Signature",
                    &format!("sha256={}", hmac_hex(&secret, body)),
                ),
            ],
            body.to_vec(),
        )
        .await;
    ok.expect(200);
    assert_eq!(ok.json()["insights"], 2);
    // Schema problems are 422 after a valid signature.
    let bad = br#"{"kind":"nlp_entities"}"#;
    app.call(
        Method::POST,
        "/ai/webhook",
        None,
        &[
            ("X-Tenant-Id", "acme"),
            ("X-IntelGraph-Signature", &hmac_hex(&secret, bad)),
        ],
        bad.to_vec(),
    )
    .await
    .problem(422, "SCHEMA_INVALID");

    let list = app
        .get("/api/tenants/acme/insights?status=PENDING", &app.admin)
        .await;
    let items = list.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let id = items[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/tenants/acme/insights/{id}/decision");
    let viewer = app.create_token("acme", &["viewer"]).await;
    app.post_json(
        &path,
        &viewer,
        json!({"decision": "approve", "reason": "ok"}),
    )
    .await
    .problem(403, "FORBIDDEN");
    app.post_json(
        &path,
        &app.admin,
        json!({"decision": "maybe", "reason": "x"}),
    )
    .await
    .problem(400, "INVALID_BODY");
    let d = app
        .post_json(
            &path,
            &app.admin,
            json!({"decision": "approve", "reason": "verified by analyst"}),
        )
        .await;
    d.expect(200);
    assert_eq!(d.json()["status"], "APPROVED");
    assert_eq!(d.json()["decision"]["reason"], "verified by analyst");
    app.post_json(
        &path,
        &app.admin,
        json!({"decision": "reject", "reason": "changed mind"}),
    )
    .await
    .problem(409, "INSIGHT_ALREADY_DECIDED");
    let pending = app
        .get("/api/tenants/acme/insights?status=PENDING", &app.admin)
        .await;
    assert_eq!(pending.json()["items"].as_array().unwrap().len(), 1);
    // Another tenant cannot see or decide them.
    app.create_tenant("beta").await;
    let beta = app.create_token("beta", &["tenant-admin"]).await;
    app.post_json(&path, &beta, json!({"decision": "reject", "reason": "x"}))
        .await
        .problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn quota_spent_answers_429_with_headers_and_is_audited_in_aggregate() {
    let app = start().await;
    app.create_tenant("acme").await;
    let (_, url) = github_source(&app, json!({"rate_per_second": 1, "rate_burst": 2})).await;
    for i in 0..2 {
        let body = format!("{{\"i\":{i}}}");
        post_github(&app, &url, body.as_bytes(), &gh_sig(body.as_bytes()), None)
            .await
            .expect(200);
    }
    for _ in 0..5 {
        let r = post_github(&app, &url, b"{}", &gh_sig(b"{}"), None).await;
        r.problem(429, "RATE_LIMITED");
        assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        assert!(r.header("ratelimit-policy").unwrap().contains("q=2"));
        assert!(r.header("ratelimit").unwrap().contains("r=0"));
    }
    // The injected clock refills the bucket.
    app.clock.advance(1);
    post_github(&app, &url, b"{}", &gh_sig(b"{}"), None)
        .await
        .expect(200);

    // One record now, one summary (count 4) once the minute is over.
    let limited: Vec<Value> = app
        .audit("acme")
        .await
        .into_iter()
        .filter(|a| a["code"] == "RATE_LIMITED")
        .collect();
    assert_eq!(limited.len(), 1);
    app.clock.advance(60);
    evidentia::server::flush_aggregates(&app.state, false).await;
    let summary: Vec<Value> = app
        .audit("acme")
        .await
        .into_iter()
        .filter(|a| a["code"] == "RATE_LIMITED" && a["count"].is_u64())
        .collect();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["count"], 4);
}

#[tokio::test]
async fn repeated_signature_failures_throttle_the_source_and_say_so() {
    let app = start().await;
    app.create_tenant("acme").await;
    let (_, url) = github_source(&app, json!({})).await;
    for i in 0..10 {
        let body = format!("{{\"i\":{i}}}");
        post_github(&app, &url, body.as_bytes(), "sha256=00", None)
            .await
            .problem(401, "SIGNATURE_INVALID");
    }
    let audit = app.audit("acme").await;
    assert!(
        audit.iter().any(|a| a["action"] == "ratelimit.penalty"),
        "penalty start is an audit event"
    );
    // Now 1 request/s: the first passes (and is checked), the second is refused.
    let b = br#"{"after":1}"#;
    post_github(&app, &url, b, &gh_sig(b), None)
        .await
        .expect(200);
    post_github(&app, &url, b"{}", &gh_sig(b"{}"), None)
        .await
        .problem(429, "RATE_LIMITED");
    app.clock.advance(61);
    for i in 0..5 {
        let body = format!("{{\"ok\":{i}}}");
        post_github(&app, &url, body.as_bytes(), &gh_sig(body.as_bytes()), None)
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn secret_rotation_keeps_the_old_secret_for_seven_days() {
    let app = start().await;
    app.create_tenant("acme").await;
    let (id, url) = github_source(&app, json!({})).await;
    let rotate = app
        .post_json(
            &format!("/api/tenants/acme/webhook-sources/{id}/rotate"),
            &app.admin,
            json!({}),
        )
        .await;
    rotate.expect(201);
    let new_secret = rotate.json()["secret"].as_str().unwrap().to_string();
    let n = rotate.json()["n"].as_u64().unwrap();
    let sig_new = |b: &[u8]| format!("sha256={}", hmac_hex(&new_secret, b));
    post_github(&app, &url, b"{\"a\":1}", &gh_sig(b"{\"a\":1}"), None)
        .await
        .expect(200);
    post_github(&app, &url, b"{\"a\":2}", &sig_new(b"{\"a\":2}"), None)
        .await
        .expect(200);
    app.clock.advance(7 * 86_400);
    post_github(&app, &url, b"{\"a\":3}", &gh_sig(b"{\"a\":3}"), None)
        .await
        .problem(401, "SIGNATURE_INVALID");
    post_github(&app, &url, b"{\"a\":4}", &sig_new(b"{\"a\":4}"), None)
        .await
        .expect(200);
    // The last secret cannot be deleted; deleting an old one works.
    let del = |slot: u64| format!("/api/tenants/acme/webhook-sources/{id}/secrets/{slot}");
    app.call(Method::DELETE, &del(1), Some(&app.admin), &[], vec![])
        .await
        .expect(204);
    app.call(Method::DELETE, &del(n), Some(&app.admin), &[], vec![])
        .await
        .problem(409, "LAST_SECRET");
}

#[tokio::test]
async fn source_validation() {
    let app = start().await;
    app.create_tenant("acme").await;
    let path = "/api/tenants/acme/webhook-sources";
    // Values outside the schema's enums are 400 naming the field; the rest is 422.
    for spec in [
        json!({"provider": "gitlab"}),
        json!({"provider": "generic", "header": "X-Sig", "encoding": "rot13"}),
    ] {
        app.post_json(path, &app.admin, spec)
            .await
            .problem(400, "INVALID_BODY");
    }
    for (spec, code) in [
        (
            json!({"provider": "github", "secret": ""}),
            "INVALID_SECRET",
        ),
        (
            json!({"provider": "github", "secret": " padded"}),
            "INVALID_SECRET",
        ),
        (
            json!({"provider": "github", "max_payload_bytes": 26214401u64}),
            "INVALID_PAYLOAD_CAP",
        ),
        (
            json!({"provider": "ml", "max_payload_bytes": 524289}),
            "INVALID_PAYLOAD_CAP",
        ),
        (json!({"provider": "generic"}), "INVALID_SOURCE"),
        (
            json!({"provider": "generic", "header": "Content-Length"}),
            "INVALID_SOURCE",
        ),
        (
            json!({"provider": "standard", "secret": "whsec_***"}),
            "INVALID_SECRET",
        ),
    ] {
        app.post_json(path, &app.admin, spec.clone())
            .await
            .problem(422, code);
    }
    // Malformed JSON bodies are problems too, never 500.
    app.call(
        Method::POST,
        path,
        Some(&app.admin),
        &[("content-type", "application/json")],
        b"{".to_vec(),
    )
    .await
    .problem(400, "INVALID_JSON");
}

#[tokio::test]
async fn a_stranger_cannot_silence_a_sources_real_sender() {
    // Peers are told apart by their address; here through a trusted proxy on loopback.
    let app = start_with(|c| c.server.trusted_proxies = vec!["127.0.0.1".into()]).await;
    app.create_tenant("acme").await;
    let (_, url) = github_source(&app, json!({})).await;
    let addr = app.serve_tcp().await;
    let http = reqwest::Client::new();
    let post = |peer: &'static str, body: &'static [u8], sig: String| {
        let http = http.clone();
        let url = format!("http://{addr}{url}");
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .header("x-forwarded-for", peer)
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    for _ in 0..11 {
        let s = post("203.0.113.7", b"{\"forged\":1}", "sha256=00".into()).await;
        assert!(s == 401 || s == 429, "{s}");
    }
    // The forger is throttled…
    let mut limited = false;
    for _ in 0..3 {
        limited |= post("203.0.113.7", b"{\"forged\":2}", "sha256=00".into()).await == 429;
    }
    assert!(limited, "the failing peer is penalised");
    // …and the real sender is not, request after request.
    for body in [&b"{\"n\":1}"[..], b"{\"n\":2}", b"{\"n\":3}"] {
        let status = post("198.51.100.9", body, gh_sig(body)).await;
        assert_eq!(status, 200);
    }
}

/// Every accepted delivery is a leaf of the tenant's evidence log, committed with the event: the
/// bundle verifies offline with the published key, with the body while retained and without it
/// after the purge; a duplicate adds no leaf; other tenants get the same 404 as for a missing id.
#[tokio::test]
async fn accepted_deliveries_are_notarised_and_their_bundle_verifies_offline() {
    use evidentia::verify::{CHECK_BODY_DIGEST, all_passed, verify_bundle};
    let app = start_with(|c| c.ingest.body_retention_days = 1).await;
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    let (src, url) = github_source(&app, json!({})).await;
    let body = br#"{"action":"opened","number":8}"#;
    let r = post_github(&app, &url, body, &gh_sig(body), Some("delivery-n1")).await;
    r.expect(200);
    let id = r.json()["event_id"].as_str().unwrap().to_string();
    let keys = app.get("/api/keys", &app.admin).await;
    let key = keys.json()["keys"].as_array().unwrap().last().unwrap()["verifier_key"]
        .as_str()
        .unwrap()
        .to_string();

    let bundle = app
        .get(&format!("/api/tenants/acme/events/{id}/bundle"), &app.admin)
        .await;
    bundle.expect(200);
    let b = bundle.json();
    let results = verify_bundle(&bundle.body, &key, None);
    assert!(all_passed(&results), "{results:#?}");
    assert!(b["body"].is_string());
    // The leaf names this delivery: its id, source, delivery id, digest and size.
    use base64::Engine;
    let entry = base64::engine::general_purpose::STANDARD
        .decode(b["entry"].as_str().unwrap())
        .unwrap();
    let leaf: Value = serde_json::from_slice(&entry).unwrap();
    assert_eq!(leaf["type"], "webhook");
    assert_eq!(leaf["event_id"], id.as_str());
    assert_eq!(leaf["source"], src.as_str());
    assert_eq!(leaf["delivery_id"], "delivery-n1");
    assert_eq!(leaf["sha256"], evidentia::ingest::sha256_hex(body));
    assert_eq!(leaf["size"], body.len());
    // The same entry is served by the log API at that index.
    let idx = b["leaf_index"].as_u64().unwrap();
    let served = app
        .get(
            &format!("/api/tenants/acme/logs/evidence/entries/{idx}"),
            &app.admin,
        )
        .await;
    served.expect(200);

    // A replay is answered as a duplicate and adds no leaf.
    let size_before = b["tree_size"].as_u64().unwrap();
    let again = post_github(&app, &url, body, &gh_sig(body), Some("delivery-n1")).await;
    assert_eq!(again.json()["duplicate"], true);
    let cp = app
        .get("/api/tenants/acme/logs/evidence/checkpoint", &app.admin)
        .await;
    let size_after: u64 = String::from_utf8(cp.body.clone())
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size_after, size_before);

    // Tampered bytes in the bundle fail offline.
    let mut forged = b.clone();
    forged["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b"{\"number\":9}"));
    let r = verify_bundle(&serde_json::to_vec(&forged).unwrap(), &key, None);
    assert_eq!(
        r.last().map(|c| (c.name, c.ok)),
        Some((CHECK_BODY_DIGEST, false))
    );

    // After the purge the leaf still proves the delivery; the bundle has no body.
    app.clock.advance(86_401);
    assert_eq!(
        app.state.store.purge_bodies(app.state.now()).await.unwrap(),
        1
    );
    let purged = app
        .get(&format!("/api/tenants/acme/events/{id}/bundle"), &app.admin)
        .await;
    purged.expect(200);
    assert!(purged.json().get("body").is_none());
    assert!(all_passed(&verify_bundle(&purged.body, &key, None)));

    // Cross-tenant and unknown ids look the same.
    let other = app
        .get(
            &format!("/api/tenants/other/events/{id}/bundle"),
            &app.admin,
        )
        .await;
    let missing = app
        .get(
            "/api/tenants/other/events/evt_00000000000000000000000000000000/bundle",
            &app.admin,
        )
        .await;
    other.problem(404, "NOT_FOUND");
    assert_eq!(other.body, missing.body);
}
