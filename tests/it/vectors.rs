//! Every vector of `tests/vectors/webhook-signatures.json` through its provider's real HTTP
//! endpoint, with the clock pinned to the vector's timestamp where the scheme signs one.

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;

fn content_type(body: &str) -> &'static str {
    if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else if body.contains('=') && body.contains('&') {
        "application/x-www-form-urlencoded"
    } else {
        "text/plain"
    }
}

async fn send_vector(app: &TestApp, v: &Value, pin_clock: bool) -> Resp {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let provider = s("provider");
    let body = s("body");
    if pin_clock && let Some(ts) = v["timestamp"].as_i64() {
        app.clock.set(ts);
    }
    let ct = content_type(&body);
    if provider == "ml" {
        return app
            .call(
                Method::POST,
                "/ai/webhook",
                None,
                &[("content-type", ct), (&s("header"), &s("signature"))],
                body.into_bytes(),
            )
            .await;
    }
    let mut spec = json!({"provider": provider, "secret": s("secret")});
    if provider == "generic" {
        spec["header"] = json!("X-Signature");
        spec["encoding"] = v["encoding"].clone();
    }
    let source = app.create_source("acme", spec).await;
    let url = source["ingest_url"].as_str().unwrap().to_string();
    let ts = v["timestamp"]
        .as_i64()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut headers: Vec<(String, String)> = vec![("content-type".into(), ct.into())];
    match provider.as_str() {
        "standard" => {
            headers.push(("webhook-id".into(), s("id")));
            headers.push(("webhook-timestamp".into(), ts));
            headers.push(("webhook-signature".into(), s("signature")));
        }
        "slack" => {
            headers.push(("X-Slack-Request-Timestamp".into(), ts));
            headers.push((s("header"), s("signature")));
        }
        "generic" => headers.push(("X-Signature".into(), s("signature"))),
        _ => headers.push((s("header"), s("signature"))),
    }
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.call(Method::POST, &url, None, &hdrs, body.into_bytes())
        .await
}

#[tokio::test]
async fn every_signature_vector_through_its_endpoint() {
    let app = start().await;
    app.create_tenant("acme").await;
    let file = load_vector("webhook-signatures.json");
    let vectors = file["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 11);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let expect = v["expect"].as_str().unwrap();
        let r = send_vector(&app, v, true).await;
        if expect.starts_with("valid") {
            assert_eq!(
                r.status,
                200,
                "{name}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let ack = r.json();
            assert_eq!(ack["ok"], true, "{name}");
            assert_eq!(ack["duplicate"], false, "{name}");
            assert!(
                ack["event_id"].as_str().unwrap().starts_with("evt_"),
                "{name}"
            );
        } else {
            assert_eq!(
                r.status,
                401,
                "{name}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.code(), "SIGNATURE_INVALID", "{name}");
        }
        app.clock.set(NOW);
    }
    // The ML vector stored one job with one PENDING insight in the default tenant.
    let r = app
        .get("/api/tenants/default/insights?job_id=job-42", &app.admin)
        .await;
    r.expect(200);
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "PENDING");
    assert_eq!(
        items[0]["payload"],
        json!({"text": "Acme Corp", "label": "ORG"})
    );
}

#[tokio::test]
async fn timestamped_vectors_are_stale_with_the_real_clock() {
    let app = start().await;
    app.create_tenant("acme").await;
    let file = load_vector("webhook-signatures.json");
    for v in file["vectors"].as_array().unwrap() {
        let expect = v["expect"].as_str().unwrap();
        if v["timestamp"].is_null() || !expect.starts_with("valid") {
            continue;
        }
        // NOW is years after every vector's timestamp.
        let r = send_vector(&app, v, false).await;
        r.problem(401, "TIMESTAMP_OUT_OF_TOLERANCE");
    }
}
