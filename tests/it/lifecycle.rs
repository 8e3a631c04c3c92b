//! Restart durability, the free-space floor, health, metrics, the OpenAPI artifact, body purge.

use std::sync::Arc;

use poem::http::Method;
use serde_json::json;

use super::common::*;

#[tokio::test]
async fn everything_acknowledged_survives_a_restart() {
    let app = start().await;
    app.create_tenant("acme").await;
    let token = app.create_token("acme", &["viewer"]).await;
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "restart-secret-value"}),
        )
        .await;
    let url = src["ingest_url"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for i in 0..20 {
        let body = format!("{{\"i\":{i}}}");
        let r = app
            .call(
                Method::POST,
                &url,
                None,
                &[
                    ("content-type", "application/json"),
                    (
                        "X-Hub-Signature-256",
                        &format!(
                            "sha256={}",
                            hmac_hex("restart-secret-value", body.as_bytes())
                        ),
                    ),
                ],
                body.into_bytes(),
            )
            .await;
        r.expect(200);
        ids.push(r.json()["event_id"].as_str().unwrap().to_string());
    }
    let audit_before = app.audit("acme").await.len();
    let config = app.state.config.clone();
    let admin = app.admin.clone();
    let dir = app.dir.clone();
    app.state.store.shutdown();
    drop(app);

    let app = open(dir, config, Some(admin)).await;
    let events = app.events("acme").await;
    assert_eq!(events.len(), 20);
    for id in &ids {
        app.get(&format!("/api/tenants/acme/events/{id}"), &token)
            .await
            .expect(200);
    }
    let body = app
        .get(&format!("/api/tenants/acme/events/{}/body", ids[3]), &token)
        .await;
    assert_eq!(body.body, br#"{"i":3}"#.to_vec());
    // The bootstrap did not run twice and the audit trail kept everything.
    assert!(app.audit("acme").await.len() > audit_before);
    assert_eq!(
        app.get("/api/tenants", &app.admin).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A replay of an acknowledged delivery is still recognised.
    let body = br#"{"i":0}"#;
    let again = app
        .call(
            Method::POST,
            &url,
            None,
            &[(
                "X-Hub-Signature-256",
                &format!("sha256={}", hmac_hex("restart-secret-value", body)),
            )],
            body.to_vec(),
        )
        .await;
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["event_id"], ids[0].as_str());
}

#[tokio::test]
async fn below_the_free_space_floor_writes_are_507_and_reads_work() {
    // The real volume, and a floor no volume reaches; the whole floor is audit reserve, so
    // audited reads go on. The first-start bootstrap is exempt from the floor.
    let app = start_with(|c| {
        c.storage.min_free_bytes = u64::MAX;
        c.storage.audit_reserve_bytes = u64::MAX;
    })
    .await;
    evidentia::server::check_disk(&app.state);
    app.call(Method::GET, "/readyz", None, &[], vec![])
        .await
        .problem(503, "NOT_READY");
    app.post_json(
        "/api/tenants",
        &app.admin,
        json!({"id": "more", "name": "m"}),
    )
    .await
    .problem(507, "INSUFFICIENT_STORAGE");
    app.get("/api/tenants/default", &app.admin)
        .await
        .expect(200);
    app.call(Method::GET, "/healthz", None, &[], vec![])
        .await
        .expect(200);
}

#[tokio::test]
async fn ready_metrics_and_request_ids() {
    let app = start().await;
    let r = app.call(Method::GET, "/readyz", None, &[], vec![]).await;
    r.expect(200);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    app.create_tenant("acme").await;
    let m = app.call(Method::GET, "/metrics", None, &[], vec![]).await;
    m.expect(200);
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        text.contains(
            r#"evidentia_http_requests_total{method="POST",route="/api/tenants",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("evidentia_store_commit_seconds_count"));
}

#[tokio::test]
async fn openapi_artifact_matches_the_generated_spec() {
    let generated = evidentia::api::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/evidentia.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in.trim_end() == generated.trim_end(),
        "openapi/evidentia.json differs from the generated spec; run `cargo run -- openapi --output openapi/evidentia.json`"
    );
    let app = start().await;
    let served = app
        .call(Method::GET, "/openapi.json", None, &[], vec![])
        .await;
    served.expect(200);
    assert_eq!(
        String::from_utf8(served.body).unwrap().trim_end(),
        generated.trim_end()
    );
    let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(v["paths"]["/webhooks/{source}/events"]["post"].is_object());
}

#[tokio::test]
async fn raw_bodies_are_purged_after_retention_and_metadata_stays() {
    let app = start_with(|c| c.ingest.body_retention_days = 1).await;
    app.create_tenant("acme").await;
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "purge-secret-value"}),
        )
        .await;
    let body = b"{}";
    let r = app
        .call(
            Method::POST,
            src["ingest_url"].as_str().unwrap(),
            None,
            &[(
                "X-Hub-Signature-256",
                &format!("sha256={}", hmac_hex("purge-secret-value", body)),
            )],
            body.to_vec(),
        )
        .await;
    let id = r.json()["event_id"].as_str().unwrap().to_string();
    assert_eq!(
        app.state.store.purge_bodies(app.state.now()).await.unwrap(),
        0
    );
    app.clock.advance(86_401);
    assert_eq!(
        app.state.store.purge_bodies(app.state.now()).await.unwrap(),
        1
    );
    app.get(&format!("/api/tenants/acme/events/{id}/body"), &app.admin)
        .await
        .problem(410, "BODY_PURGED");
    let meta = app
        .get(&format!("/api/tenants/acme/events/{id}"), &app.admin)
        .await;
    assert_eq!(meta.json()["body_purged"], true);
}

#[tokio::test]
async fn concurrent_writers_share_commits() {
    let app = std::sync::Arc::new(start().await);
    app.create_tenant("acme").await;
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "group-secret-value", "rate_burst": 1000}),
        )
        .await;
    let url = src["ingest_url"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let app = app.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("{{\"i\":{i}}}");
            app.call(
                Method::POST,
                &url,
                None,
                &[(
                    "X-Hub-Signature-256",
                    &format!("sha256={}", hmac_hex("group-secret-value", body.as_bytes())),
                )],
                body.into_bytes(),
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(app.events("acme").await.len(), 64);
    let text = app.state.metrics.render();
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("evidentia_store_commit_batch_size_count "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap();
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("evidentia_store_commit_batch_size_sum "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap();
    assert!(
        sum / (count as f64) > 1.0,
        "operations per commit {sum}/{count}"
    );
}

/// The first line of the tenant's evidence-log checkpoint (its origin).
async fn evidence_origin(app: &TestApp) -> String {
    let r = app
        .get("/api/tenants/default/logs/evidence/checkpoint", &app.admin)
        .await;
    r.expect(200);
    String::from_utf8(r.body)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

async fn notarise_one(app: &TestApp, job: &str) {
    let body = serde_json::to_vec(&json!({"job_id": job, "kind": "summary"})).unwrap();
    app.post_ml(body).await.expect(200);
}

/// A lost database with the same signing key must not sign a second history for the same
/// origins (issue 9 point 9): the start is refused until the operator asks for new logs, which
/// then get a new origin prefix; that prefix stays with the database across restarts.
#[tokio::test]
async fn a_lost_database_never_forks_a_signed_log() {
    let app = start().await;
    notarise_one(&app, "before-loss").await;
    assert_eq!(evidence_origin(&app).await, "evidentia/default/evidence");
    let config = app.state.config.clone();
    let dir = app.dir.clone();
    app.state.store.shutdown();
    drop(app);

    // The database is truncated to 0 bytes; the key (secrets()) stays.
    let db = config.server.data_dir.join("evidentia.redb");
    std::fs::write(&db, b"").unwrap();
    let clock = Arc::new(evidentia::clock::ManualClock::at(NOW));
    let err = evidentia::server::build_state(config.clone(), secrets(), clock.clone())
        .await
        .err()
        .expect("an empty database under a signed history is refused");
    let message = format!("{err:#}");
    assert!(message.contains("--new-log-identity"), "{message}");
    assert!(message.contains("evidentia/2"), "{message}");

    // With consent: new logs under evidentia/2, and the history lists both prefixes.
    let mut consent = config.clone();
    consent.new_log_identity = true;
    let app = open(dir.clone(), consent, None).await;
    notarise_one(&app, "after-loss").await;
    assert_eq!(evidence_origin(&app).await, "evidentia/2/default/evidence");
    let history = evidentia::history::SignedHistory::load(&config.server.data_dir).unwrap();
    assert_eq!(history.origin_prefixes, ["evidentia", "evidentia/2"]);
    let admin = app.admin.clone();
    app.state.store.shutdown();
    drop(app);

    // A plain restart keeps the new prefix; losing the database again is refused again.
    let app = open(dir.clone(), config.clone(), Some(admin)).await;
    assert_eq!(evidence_origin(&app).await, "evidentia/2/default/evidence");
    app.state.store.shutdown();
    drop(app);
    std::fs::remove_file(&db).unwrap();
    let err = evidentia::server::build_state(config.clone(), secrets(), clock.clone())
        .await
        .err()
        .expect("refused again");
    assert!(format!("{err:#}").contains("evidentia/3"), "{err:#}");

    // The history file lost as well: a signing key that an earlier start generated into the
    // data directory still says the empty database lost its logs.
    std::fs::remove_file(config.server.data_dir.join("evidentia.redb")).unwrap();
    std::fs::remove_file(
        config
            .server
            .data_dir
            .join(evidentia::history::HISTORY_FILE),
    )
    .unwrap();
    let mut from_data_dir = secrets();
    from_data_dir.appliance_key_from_data_dir = true;
    let err = evidentia::server::build_state(config, from_data_dir, clock)
        .await
        .err()
        .expect("refused without the history file");
    assert!(format!("{err:#}").contains("secrets/"), "{err:#}");
}
