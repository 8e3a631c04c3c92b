//! Appliance-admin tokens have a lifecycle: issued, listed and revoked through
//! `/api/admin/tokens`, a revoked one refused at once, the last working one kept.

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;

async fn issue(app: &TestApp, token: &str, name: &str) -> (String, String) {
    let r = app
        .post_json("/api/admin/tokens", token, json!({"name": name}))
        .await;
    r.expect(201);
    let body = r.json();
    assert_eq!(body["roles"], json!(["appliance-admin"]));
    assert!(
        body["expires_at"].is_string(),
        "admin tokens expire: {body}"
    );
    (
        body["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    )
}

async fn revoke(app: &TestApp, token: &str, id: &str) -> Resp {
    app.call(
        Method::DELETE,
        &format!("/api/admin/tokens/{id}"),
        Some(token),
        &[],
        Vec::new(),
    )
    .await
}

async fn system_audit(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/audit?limit=500", token).await;
    r.expect(200);
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_leaked_bootstrap_token_is_replaced_and_revoked_without_touching_the_database() {
    let app = start().await;
    let bootstrap = app.admin.clone();
    let bootstrap_id = evidentia::identity::parse_token(&bootstrap).unwrap();

    let (second_id, second) = issue(&app, &bootstrap, "second admin").await;
    let listed = app.get("/api/admin/tokens", &second).await;
    listed.expect(200);
    let ids: Vec<String> = listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&bootstrap_id) && ids.contains(&second_id),
        "{ids:?}"
    );
    let text = String::from_utf8_lossy(&listed.body);
    assert!(!text.contains(&second) && !text.contains(&bootstrap));

    // Revoked: refused at once, everywhere.
    revoke(&app, &second, &bootstrap_id).await.expect(204);
    app.get("/api/admin/tokens", &bootstrap)
        .await
        .problem(401, "UNAUTHENTICATED");
    app.get("/api/tenants", &bootstrap)
        .await
        .problem(401, "UNAUTHENTICATED");
    // Revoking it again changes nothing.
    revoke(&app, &second, &bootstrap_id).await.expect(204);
    let after = app.get("/api/admin/tokens", &second).await;
    let revoked = after.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == bootstrap_id.as_str())
        .cloned()
        .unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");

    // The last working one is kept; with a successor it can go, and it may revoke itself.
    revoke(&app, &second, &second_id)
        .await
        .problem(409, "LAST_ADMIN_TOKEN");
    app.get("/api/tenants", &second).await.expect(200);
    let (_, third) = issue(&app, &second, "third admin").await;
    revoke(&app, &second, &second_id).await.expect(204);
    app.get("/api/tenants", &second)
        .await
        .problem(401, "UNAUTHENTICATED");
    app.get("/api/tenants", &third).await.expect(200);

    // Every step is in the system audit log, attributed.
    let audit = system_audit(&app, &third).await;
    let count = |action: &str, status: u64| {
        audit
            .iter()
            .filter(|a| a["action"] == action && a["status"] == status)
            .count()
    };
    assert_eq!(count("admin_token.issue", 201), 2);
    assert_eq!(count("admin_token.revoke", 204), 3);
    assert_eq!(count("admin_token.revoke", 409), 1);
    assert!(audit.iter().any(|a| a["action"] == "admin_token.revoke"
        && a["resource"] == bootstrap_id.as_str()
        && a["actor"] == format!("token:{second_id}")));
}

#[tokio::test]
async fn only_appliance_admins_manage_admin_tokens_and_bad_requests_are_refused() {
    let app = start().await;
    app.create_tenant("acme").await;
    let tenant_admin = app.create_token("acme", &["tenant-admin"]).await;
    let bootstrap_id = evidentia::identity::parse_token(&app.admin).unwrap();
    app.post_json("/api/admin/tokens", &tenant_admin, json!({"name": "x"}))
        .await
        .problem(403, "FORBIDDEN");
    app.get("/api/admin/tokens", &tenant_admin)
        .await
        .problem(403, "FORBIDDEN");
    revoke(&app, &tenant_admin, &bootstrap_id)
        .await
        .problem(403, "FORBIDDEN");
    app.get("/api/admin/tokens", "evd_not-a-token")
        .await
        .problem(401, "UNAUTHENTICATED");
    // A tenant token is not an admin token: its id answers like a missing one.
    let tenant_id = evidentia::identity::parse_token(&tenant_admin).unwrap();
    revoke(&app, &app.admin, &tenant_id)
        .await
        .problem(404, "NOT_FOUND");
    app.get("/api/tenants/acme/tokens", &tenant_admin)
        .await
        .expect(200);
    // Roles cannot be chosen, lifetimes are bounded, names follow the display-name rules.
    let admin = app.admin.clone();
    for (body, status, code) in [
        (
            json!({"name": "x", "roles": ["appliance-admin"]}),
            400,
            "INVALID_BODY",
        ),
        (
            json!({"name": "x", "expires_in_days": 0}),
            422,
            "INVALID_EXPIRY",
        ),
        (
            json!({"name": "x", "expires_in_days": 3651}),
            422,
            "INVALID_EXPIRY",
        ),
        (json!({"name": " padded"}), 422, "INVALID_NAME"),
        (json!({}), 400, "INVALID_BODY"),
        (json!(["arr-token", 30]), 400, "INVALID_BODY"),
    ] {
        app.post_json("/api/admin/tokens", &admin, body.clone())
            .await
            .problem(status, code);
    }
    let r = app
        .post_json(
            "/api/admin/tokens",
            &admin,
            json!({"name": "short-lived", "expires_in_days": 1}),
        )
        .await;
    r.expect(201);
    let short = r.json()["token"].as_str().unwrap().to_string();
    app.get("/api/admin/tokens", &short).await.expect(200);
    app.clock.advance(86_400);
    app.get("/api/admin/tokens", &short)
        .await
        .problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn last_use_is_recorded_hourly_in_the_background_not_per_request() {
    use evidentia::clock::Clock;
    let app = start().await;
    app.create_tenant("acme").await;
    let token = app.create_token("acme", &["tenant-admin"]).await;
    let id = evidentia::identity::parse_token(&token).unwrap();
    let stored = |app: &TestApp| {
        app.state
            .store
            .get_token(&id)
            .unwrap()
            .unwrap()
            .last_used_at
    };
    let listed = |r: &Resp| {
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap()["last_used_at"]
            .clone()
    };
    let first = app.clock.now_unix();
    for _ in 0..20 {
        app.get("/api/tenants/acme/tokens", &token)
            .await
            .expect(200);
    }
    // No write per request: the record is unchanged until the background flush.
    assert_eq!(stored(&app), None);
    assert!(listed(&app.get("/api/tenants/acme/tokens", &token).await).is_null());
    evidentia::server::flush_token_use(&app.state).await;
    assert_eq!(stored(&app), Some(first));
    assert!(listed(&app.get("/api/tenants/acme/tokens", &token).await).is_string());
    // Within the hour a use is not noted again; after it, it is.
    app.clock.advance(1800);
    app.get("/api/tenants/acme/tokens", &token)
        .await
        .expect(200);
    evidentia::server::flush_token_use(&app.state).await;
    assert_eq!(stored(&app), Some(first));
    app.clock.advance(1800);
    app.get("/api/tenants/acme/tokens", &token)
        .await
        .expect(200);
    evidentia::server::flush_token_use(&app.state).await;
    assert_eq!(stored(&app), Some(first + 3600));
}
