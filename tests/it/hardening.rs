//! Abuse from the network: oversized management bodies before authentication, signature headers
//! with thousands of candidates, insight amplification, filters that match nothing, slow
//! bodies, minted metric labels, rounded integers in receipts.

use std::time::{Duration, Instant};

use poem::http::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::*;

#[tokio::test]
async fn management_bodies_are_capped_before_authentication() {
    let app = start().await;
    let big = format!("{{\"id\":\"x{}\",\"name\":\"n\"}}", " ".repeat(70 * 1024));
    let r = app
        .call(
            Method::POST,
            "/api/tenants",
            Some("not-a-token"),
            &[("content-type", "application/json")],
            big.into_bytes(),
        )
        .await;
    r.problem(413, "PAYLOAD_TOO_LARGE");
    // Small bodies still reach the handler (and its 401).
    app.post_json(
        "/api/tenants",
        "not-a-token",
        json!({"id": "ok", "name": "n"}),
    )
    .await
    .problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn thousands_of_signature_candidates_are_refused_without_hashing() {
    let app = start().await;
    let many = vec!["v1,AA=="; 45_000].join(" ");
    let ts = NOW.to_string();
    let started = Instant::now();
    let r = app
        .call(
            Method::POST,
            "/ai/webhook",
            None,
            &[
                ("webhook-id", "x"),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &many),
            ],
            vec![b'a'; 500 * 1024],
        )
        .await;
    r.problem(400, "SIGNATURE_HEADER_INVALID");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn one_delivery_cannot_create_unbounded_insights() {
    let app = start().await;
    let results: Vec<u32> = vec![0; 1001];
    let body =
        serde_json::to_vec(&json!({"job_id": "amp", "kind": "nlp_entities", "results": results}))
            .unwrap();
    app.post_ml(body).await.problem(422, "SCHEMA_INVALID");
}

#[tokio::test]
async fn a_filter_that_matches_nothing_scans_a_bounded_slice_per_page() {
    let app = start().await;
    for d in 0..11 {
        let results: Vec<u32> = vec![d; 1000];
        let body = serde_json::to_vec(
            &json!({"job_id": format!("j{d}"), "kind": "nlp_entities", "results": results}),
        )
        .unwrap();
        app.post_ml(body).await.expect(200);
    }
    let page = app
        .get(
            "/api/tenants/default/insights?status=REJECTED&limit=1",
            &app.admin,
        )
        .await
        .json();
    assert!(page["items"].as_array().unwrap().is_empty());
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a cursor to continue the scan");
    let rest = app
        .get(
            &format!("/api/tenants/default/insights?status=REJECTED&limit=1&cursor={cursor}"),
            &app.admin,
        )
        .await
        .json();
    assert!(rest["items"].as_array().unwrap().is_empty());
    assert!(
        rest["next_cursor"].is_null(),
        "the second page reaches the end"
    );
}

#[tokio::test]
async fn slow_bodies_time_out_with_408() {
    let app = start_with(|c| c.ingest.body_read_timeout_secs = 1).await;
    app.create_tenant("acme").await;
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "slow-body-secret-value"}),
        )
        .await;
    let addr = app.serve_tcp().await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100\r\n\r\nabcdef",
        src["ingest_url"].as_str().unwrap()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("BODY_READ_TIMEOUT"));
}

#[tokio::test]
async fn clients_cannot_mint_metric_labels_or_weak_secrets() {
    let app = start().await;
    for m in ["MXYZ", "FOO1", "BAR2"] {
        app.call(
            Method::from_bytes(m.as_bytes()).unwrap(),
            "/healthz",
            None,
            &[],
            vec![],
        )
        .await;
    }
    let text = app.state.metrics.render();
    assert!(
        !text.contains("MXYZ") && text.contains("method=\"OTHER\""),
        "{text}"
    );
    app.create_tenant("acme").await;
    app.post_json(
        "/api/tenants/acme/webhook-sources",
        &app.admin,
        json!({"provider": "github", "secret": "short"}),
    )
    .await
    .problem(422, "INVALID_SECRET");
}

#[tokio::test]
async fn integers_json_would_round_are_refused_in_receipts() {
    let app = start().await;
    app.create_tenant("acme").await;
    let token = app.create_token("acme", &["ingest"]).await;
    app.clock.set(1_796_040_000);
    let v = load_vector("receipt-hs256.json");
    let secret = EVIDENCE_SECRET.as_bytes();
    for (i, big) in [
        "18446744073709551616",
        "-9223372036854775809",
        "9007199254740993",
    ]
    .iter()
    .enumerate()
    {
        let mut text = serde_json::to_string(&v["receipt_unsigned"]).unwrap();
        text.insert_str(1, &format!("\"n\":{big},\"tenant\":\"acme\","));
        text = text.replace("0b9f3c1e", &format!("bigint0{i}"));
        // Signed the way a sender would with a canonicalizer that rounds: HMAC over the JCS of
        // the value as JSON numbers parse. Without the guard this verifies and is stored.
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let canonical = serde_json_canonicalizer::to_vec(&parsed).unwrap();
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(&canonical);
        use base64::Engine;
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let signed = format!("{},\"signature\":\"{sig}\"}}", &text[..text.len() - 1]);
        let r = app
            .call(
                Method::POST,
                "/api/conductor/evidence/receipt",
                Some(&token),
                &[("content-type", "application/json")],
                signed.into_bytes(),
            )
            .await;
        assert_eq!(r.status, 422, "{big}: {}", String::from_utf8_lossy(&r.body));
    }
    let huge = serde_json::from_str::<serde_json::Value>(r#"{"n":18446744073709551616}"#).unwrap();
    assert!(evidentia::verify::jcs(&huge).is_err());
}

#[tokio::test]
async fn arbitrary_methods_are_audited_as_one_bounded_aggregated_value() {
    let app = start().await;
    // 50 distinct 6,000-byte method tokens: without the bound each is stored verbatim (in
    // `method` and `action`) and each defeats the per-minute aggregation.
    for i in 0..50 {
        let method = Method::from_bytes(format!("{}{i:04}", "M".repeat(6000)).as_bytes())
            .expect("a valid method token");
        let r = app.call(method, "/api/x", None, &[], Vec::new()).await;
        assert!(r.status >= 400, "{}", r.status);
    }
    let r = app.get("/api/audit?limit=500", &app.admin).await;
    r.expect(200);
    let items = r.json()["items"].as_array().cloned().unwrap_or_default();
    let odd: Vec<_> = items.iter().filter(|a| a["method"] == "OTHER").collect();
    assert_eq!(odd.len(), 1, "one record, the rest aggregated: {odd:?}");
    for a in &items {
        for field in ["method", "action", "route", "actor", "peer"] {
            let len = a[field].as_str().map_or(0, |s| s.chars().count());
            assert!(len <= 256, "{field} is {len} characters");
        }
    }
    assert!(
        r.body.len() < 64 * 1024,
        "audit page of {} bytes",
        r.body.len()
    );
}
