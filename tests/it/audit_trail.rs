//! The audit trail as auditors use it: filtered pages, and exports that verify offline (any
//! changed byte fails).

use poem::http::Method;
use serde_json::Value;

use super::common::*;
use evidentia::verify;

async fn page(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/tenants/acme/audit?limit=500&{query}"), token)
        .await;
    r.expect(200);
    r.json()["items"].as_array().cloned().unwrap()
}

#[tokio::test]
async fn audit_pages_filter_by_actor_action_status_and_time() {
    let app = start().await;
    app.create_tenant("acme").await;
    let officer = app.create_token("acme", &["compliance-officer"]).await;
    let viewer = app.create_token("acme", &["viewer"]).await;
    let viewer_actor = format!(
        "token:{}",
        evidentia::identity::parse_token(&viewer).unwrap()
    );
    app.get("/api/tenants/acme/events", &viewer)
        .await
        .expect(200);
    app.clock.advance(3600);
    app.get("/api/tenants/acme/webhook-sources", &viewer)
        .await
        .expect(200);
    app.get(
        &format!("/api/tenants/acme/events/evt_{}", "0".repeat(32)),
        &viewer,
    )
    .await
    .problem(404, "NOT_FOUND");

    let by_viewer = page(&app, &officer, &format!("actor={viewer_actor}")).await;
    assert_eq!(by_viewer.len(), 3, "{by_viewer:?}");
    assert!(
        by_viewer
            .iter()
            .all(|r| r["actor"] == viewer_actor.as_str())
    );
    let lists = page(&app, &officer, "action=events.list").await;
    assert_eq!(lists.len(), 1);
    let missing = page(&app, &officer, "status=404").await;
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["action"], "events.read");
    // The first read was an hour before the others.
    let since = evidentia::clock::rfc3339(NOW + 1800);
    let recent = page(
        &app,
        &officer,
        &format!("actor={viewer_actor}&since={since}"),
    )
    .await;
    assert_eq!(recent.len(), 2, "{recent:?}");
    let older = page(
        &app,
        &officer,
        &format!("actor={viewer_actor}&until={since}"),
    )
    .await;
    assert_eq!(older.len(), 1);
    assert_eq!(older[0]["action"], "events.list");
    app.get("/api/tenants/acme/audit?status=42", &officer)
        .await
        .problem(400, "INVALID_PARAMETER");
}

#[tokio::test]
async fn an_audit_export_verifies_offline_and_any_changed_byte_fails() {
    let app = start().await;
    app.create_tenant("acme").await;
    let officer = app.create_token("acme", &["compliance-officer"]).await;
    for _ in 0..5 {
        app.get("/api/tenants/acme/events", &officer)
            .await
            .expect(200);
    }
    let r = app.get("/api/tenants/acme/audit/export", &officer).await;
    r.expect(200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert!(r.header("content-disposition").unwrap().ends_with(".zip\""));
    assert!(r.header("evidentia-access-receipt").is_some());
    let zip = r.body.clone();
    let keys = app.call(Method::GET, "/api/keys", None, &[], vec![]).await;
    let key = keys.json()["keys"][0]["verifier_key"]
        .as_str()
        .unwrap()
        .to_string();
    let results = verify::verify_audit_export(&zip, &key);
    assert!(verify::all_passed(&results), "{results:?}");
    assert_eq!(results.len(), 4);
    // Every record of acme's trail up to the checkpoint: its creation, the officer's token,
    // the five reads (the export itself is recorded after the answer is built).
    assert!(
        results[3].detail.starts_with("7 records included"),
        "{results:?}"
    );

    // Every changed byte fails, wherever it is.
    let step = (zip.len() / 40).max(1);
    for at in (0..zip.len()).step_by(step) {
        let mut bad = zip.clone();
        bad[at] ^= 0x01;
        let results = verify::verify_audit_export(&bad, &key);
        assert!(
            !verify::all_passed(&results),
            "byte {at} changed, still verified"
        );
    }

    // Paging: from the middle, and beyond the end.
    let r = app
        .get("/api/tenants/acme/audit/export?from=2&limit=2", &officer)
        .await;
    r.expect(200);
    let results = verify::verify_audit_export(&r.body, &key);
    assert!(verify::all_passed(&results), "{results:?}");
    app.get("/api/tenants/acme/audit/export?from=100000", &officer)
        .await
        .problem(400, "INVALID_RANGE");
    // Roles: a viewer may not export.
    let viewer = app.create_token("acme", &["viewer"]).await;
    app.get("/api/tenants/acme/audit/export", &viewer)
        .await
        .problem(403, "FORBIDDEN");

    // The command line.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.zip"), &zip).unwrap();
    std::fs::write(dir.path().join("key.txt"), &key).unwrap();
    let mut bad = zip.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    std::fs::write(dir.path().join("bad.zip"), &bad).unwrap();
    let run = |file: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_evidentia"))
            .current_dir(dir.path())
            .args(["verify", "audit-export", file, "--key", "key.txt"])
            .output()
            .unwrap()
    };
    let ok = run("export.zip");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit export verified"));
    assert!(!run("bad.zip").status.success());
}
