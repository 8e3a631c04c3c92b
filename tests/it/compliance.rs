//! `GET /api/tenants/{t}/compliance`: each control flips from pass to fail when its state is
//! broken (issue 10 point 7).

use evidentia::ingest::SourceRecord;
use serde_json::{Value, json};

use super::common::*;

async fn view(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/tenants/acme/compliance", token).await;
    r.expect(200);
    assert!(r.header("evidentia-access-receipt").is_some());
    let v = r.json();
    assert!(v["receipt"].is_string(), "{v}");
    v
}

fn control<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id} in {v}"))
}

fn status(v: &Value, id: &str) -> String {
    control(v, id)["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_control_is_computed_from_real_state_and_flips_when_it_breaks() {
    let app = start().await;
    app.create_tenant("acme").await;
    let token = |roles: Value| {
        let app = &app;
        async move {
            let r = app
                .post_json(
                    "/api/tenants/acme/tokens",
                    &app.admin.clone(),
                    json!({"name": "year", "roles": roles, "expires_in_days": 365}),
                )
                .await;
            r.expect(201);
            r.json()["token"].as_str().unwrap().to_string()
        }
    };
    let officer = token(json!(["compliance-officer"])).await;
    let _admin_token = token(json!(["tenant-admin"])).await;
    let src = app
        .create_source("acme", json!({"provider": "standard"}))
        .await;
    let src_id = src["id"].as_str().unwrap().to_string();

    let v = view(&app, &officer).await;
    assert_eq!(v["tenant"], "acme");
    let ids: Vec<&str> = v["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "webhook_signing",
            "payload_caps",
            "replay_defence",
            "rate_limits",
            "evidence_log",
            "audit_log",
            "retention",
            "integrations",
            "plugin_gate",
            "access_hygiene"
        ]
    );
    for id in &ids {
        assert_eq!(status(&v, id), "pass", "{id}: {}", control(&v, id));
    }
    assert_eq!(v["status"], "pass");
    assert!(
        control(&v, "webhook_signing")["evidence"][0]["id"] == src_id.as_str(),
        "{v}"
    );

    // A weak secret (a record from before the 32-byte rule, put straight into the store) and
    // an out-of-bounds cap fail their controls.
    let mut weak: SourceRecord = app.state.store.get_source(&src_id).unwrap().unwrap();
    weak.id = "src_0123456789abcdef0123456789abcdef".into();
    weak.secrets[0].value = "short-secret".into();
    weak.max_payload_bytes = 1 << 40;
    assert!(app.state.store.insert_source(weak, vec![]).await.unwrap());
    let v = view(&app, &officer).await;
    assert_eq!(status(&v, "webhook_signing"), "fail");
    assert_eq!(status(&v, "payload_caps"), "fail");
    assert_eq!(v["status"], "fail");
    app.call(
        poem::http::Method::DELETE,
        "/api/tenants/acme/webhook-sources/src_0123456789abcdef0123456789abcdef",
        Some(&app.admin),
        &[],
        vec![],
    )
    .await
    .expect(204);

    // Raised quotas are a warning on the rate limits.
    app.call(
        poem::http::Method::PUT,
        "/api/tenants/acme/settings",
        Some(&app.admin),
        &[("content-type", "application/json")],
        json!({"body_retention_days": 1, "rate_limits": {"query": 1000}})
            .to_string()
            .into_bytes(),
    )
    .await
    .expect(200);
    let v = view(&app, &officer).await;
    assert_eq!(status(&v, "webhook_signing"), "pass");
    assert_eq!(status(&v, "rate_limits"), "warn");

    // A tampered view of a log: the remembered checkpoint no longer matches the log, and the
    // RFC 9162 consistency proof fails.
    assert_eq!(status(&v, "audit_log"), "pass");
    let origin = app.state.store.origin("acme", "audit");
    let (size, _) = app.state.store.compliance_view(&origin).unwrap().unwrap();
    app.state
        .store
        .put_compliance_view(&origin, size, [9u8; 32])
        .await
        .unwrap();
    let v = view(&app, &officer).await;
    assert_eq!(
        status(&v, "audit_log"),
        "fail",
        "{}",
        control(&v, "audit_log")
    );
    assert_eq!(status(&v, "evidence_log"), "pass");

    // An overdue retention item: a body kept past its day, with the purge not run.
    let body = b"{\"n\":1}";
    let ts = NOW;
    let secret = src["secret"].as_str().unwrap();
    let sig = evidentia::ingest::signature::sign_standard(secret, "msg_1", ts, body);
    app.call(
        poem::http::Method::POST,
        src["ingest_url"].as_str().unwrap(),
        None,
        &[
            ("content-type", "application/json"),
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &ts.to_string()),
            ("webhook-signature", &sig),
        ],
        body.to_vec(),
    )
    .await
    .expect(200);
    let v = view(&app, &officer).await;
    assert_eq!(status(&v, "retention"), "pass");
    app.clock.advance(86_400 + 2 * 3600);
    assert_eq!(status(&view(&app, &officer).await, "retention"), "warn");
    app.clock.advance(86_400);
    let v = view(&app, &officer).await;
    assert_eq!(
        status(&v, "retention"),
        "fail",
        "{}",
        control(&v, "retention")
    );
    app.state.store.purge_bodies(app.state.now()).await.unwrap();
    assert_eq!(status(&view(&app, &officer).await, "retention"), "pass");

    // 90 days without use: the tenant-admin token is a stale admin credential, and the
    // source's secret is due for rotation. (The officer's token stays in use.)
    app.clock.advance(88 * 86_400);
    let v = view(&app, &officer).await;
    assert_eq!(
        status(&v, "access_hygiene"),
        "fail",
        "{}",
        control(&v, "access_hygiene")
    );
    assert_eq!(status(&v, "webhook_signing"), "warn");
}

#[tokio::test]
async fn the_view_needs_its_role_and_hides_other_tenants() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    let viewer = app.create_token("acme", &["viewer"]).await;
    let stranger = app.create_token("other", &["compliance-officer"]).await;
    app.get("/api/tenants/acme/compliance", &viewer)
        .await
        .problem(403, "FORBIDDEN");
    let probe = app.get("/api/tenants/acme/compliance", &stranger).await;
    probe.problem(404, "NOT_FOUND");
    let missing = app.get("/api/tenants/nope/compliance", &stranger).await;
    assert_eq!(probe.body, missing.body);
}
