//! Tenants, tokens, roles and tenant isolation.

use poem::http::Method;
use serde_json::json;

use super::common::*;

#[tokio::test]
async fn tenants_are_admin_only_and_validated() {
    let app = start().await;
    let r = app.get("/api/tenants", &app.admin).await;
    r.expect(200);
    assert!(
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "default")
    );
    app.create_tenant("acme").await;
    app.post_json(
        "/api/tenants",
        &app.admin,
        json!({"id": "acme", "name": "Again"}),
    )
    .await
    .problem(409, "TENANT_EXISTS");
    for bad in ["A", "acme_corp", "x", "Acme"] {
        app.post_json("/api/tenants", &app.admin, json!({"id": bad, "name": "n"}))
            .await
            .problem(422, "INVALID_TENANT_ID");
    }
    let tenant_admin = app.create_token("acme", &["tenant-admin"]).await;
    app.post_json(
        "/api/tenants",
        &tenant_admin,
        json!({"id": "evil", "name": "n"}),
    )
    .await
    .problem(403, "FORBIDDEN");
    app.get("/api/tenants", &tenant_admin)
        .await
        .problem(403, "FORBIDDEN");
    app.get("/api/tenants/acme", &tenant_admin)
        .await
        .expect(200);
    // No token, garbage token, a token with a broken checksum.
    app.call(Method::GET, "/api/tenants", None, &[], vec![])
        .await
        .problem(401, "UNAUTHENTICATED");
    app.get("/api/tenants", "evd_nope")
        .await
        .problem(401, "UNAUTHENTICATED");
    let mut broken = app.admin.clone();
    broken.replace_range(10..11, if &broken[10..11] == "0" { "1" } else { "0" });
    app.get("/api/tenants", &broken)
        .await
        .problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn tokens_are_shown_once_scoped_and_revocable() {
    let app = start().await;
    app.create_tenant("acme").await;
    let r = app
        .post_json(
            "/api/tenants/acme/tokens",
            &app.admin,
            json!({"name": "ci", "roles": ["ingest"], "expires_in_days": 90}),
        )
        .await;
    r.expect(201);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("evd_"));
    let list = app.get("/api/tenants/acme/tokens", &app.admin).await;
    list.expect(200);
    assert!(!String::from_utf8_lossy(&list.body).contains(&token));
    assert!(!String::from_utf8_lossy(&list.body).contains("sha256"));
    // Roles: ingest cannot read events; appliance-admin cannot be minted for a tenant.
    app.get("/api/tenants/acme/events", &token)
        .await
        .problem(403, "FORBIDDEN");
    app.post_json(
        "/api/tenants/acme/tokens",
        &app.admin,
        json!({"name": "x", "roles": ["appliance-admin"]}),
    )
    .await
    .problem(400, "INVALID_BODY");
    // Revoke; then the token is refused.
    let viewer = app.create_token("acme", &["viewer"]).await;
    app.get("/api/tenants/acme/events", &viewer)
        .await
        .expect(200);
    let vid = app.get("/api/tenants/acme/tokens", &app.admin).await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["roles"] == json!(["viewer"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(
        Method::DELETE,
        &format!("/api/tenants/acme/tokens/{vid}"),
        Some(&app.admin),
        &[],
        vec![],
    )
    .await
    .expect(204);
    app.get("/api/tenants/acme/events", &viewer)
        .await
        .problem(401, "UNAUTHENTICATED");
    // Expiry follows the injected clock.
    app.clock.advance(91 * 86_400);
    app.get("/api/tenants/acme/sources", &token).await;
    let expired = app.get("/api/tenants/acme/events", &token).await;
    expired.problem(401, "UNAUTHENTICATED");
    let _ = id;
}

#[tokio::test]
async fn another_tenants_resources_answer_exactly_like_missing_ones() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("beta").await;
    let secret = "beta-secret-value";
    let src = app
        .create_source("beta", json!({"provider": "github", "secret": secret}))
        .await;
    let url = src["ingest_url"].as_str().unwrap();
    let body = b"{\"x\":1}";
    let r = app
        .call(
            Method::POST,
            url,
            None,
            &[(
                "X-Hub-Signature-256",
                &format!("sha256={}", hmac_hex(secret, body)),
            )],
            body.to_vec(),
        )
        .await;
    r.expect(200);
    let beta_event = r.json()["event_id"].as_str().unwrap().to_string();
    let acme = app.create_token("acme", &["tenant-admin"]).await;

    let foreign = app
        .get(&format!("/api/tenants/acme/events/{beta_event}"), &acme)
        .await;
    let missing = app
        .get(
            "/api/tenants/acme/events/evt_00000000000000000000000000000000",
            &acme,
        )
        .await;
    foreign.problem(404, "NOT_FOUND");
    assert_eq!(foreign.body, missing.body);
    let mut fh: Vec<_> = foreign
        .headers
        .keys()
        .map(|k| k.as_str().to_string())
        .collect();
    let mut mh: Vec<_> = missing
        .headers
        .keys()
        .map(|k| k.as_str().to_string())
        .collect();
    fh.sort();
    mh.sort();
    assert_eq!(fh, mh);

    // Naming the other tenant in the path is the same 404 as a tenant that does not exist.
    let other = app
        .get(&format!("/api/tenants/beta/events/{beta_event}"), &acme)
        .await;
    let none = app
        .get(&format!("/api/tenants/nope/events/{beta_event}"), &acme)
        .await;
    other.problem(404, "NOT_FOUND");
    assert_eq!(other.body, none.body);
    app.get(
        &format!("/api/tenants/beta/events/{beta_event}/body"),
        &acme,
    )
    .await
    .problem(404, "NOT_FOUND");
    app.get("/api/tenants/beta/audit", &acme)
        .await
        .problem(404, "NOT_FOUND");
    app.get(
        &format!(
            "/api/tenants/beta/webhook-sources/{}",
            src["id"].as_str().unwrap()
        ),
        &acme,
    )
    .await
    .problem(404, "NOT_FOUND");
    // The probes were audited in acme's trail.
    let audit = app.audit("acme").await;
    assert!(audit.iter().filter(|a| a["status"] == 404).count() >= 3);
}

#[tokio::test]
async fn paging_events_with_cursor_and_source_filter() {
    let app = start().await;
    app.create_tenant("acme").await;
    let s1 = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "source-one-secret-1"}),
        )
        .await;
    let s2 = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "source-two-secret-2"}),
        )
        .await;
    for i in 0..5 {
        for (src, secret) in [(&s1, "source-one-secret-1"), (&s2, "source-two-secret-2")] {
            let body = format!("{{\"i\":{i}}}");
            app.call(
                Method::POST,
                src["ingest_url"].as_str().unwrap(),
                None,
                &[(
                    "X-Hub-Signature-256",
                    &format!("sha256={}", hmac_hex(secret, body.as_bytes())),
                )],
                body.into_bytes(),
            )
            .await
            .expect(200);
        }
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .get(
                &format!("/api/tenants/acme/events?limit=3&cursor={cursor}"),
                &app.admin,
            )
            .await;
        r.expect(200);
        let v = r.json();
        for e in v["items"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    seen.dedup();
    assert_eq!(seen.len(), 10);
    let only = app
        .get(
            &format!(
                "/api/tenants/acme/events?source={}",
                s2["id"].as_str().unwrap()
            ),
            &app.admin,
        )
        .await;
    assert_eq!(only.json()["items"].as_array().unwrap().len(), 5);
    app.get("/api/tenants/acme/events?limit=0", &app.admin)
        .await
        .problem(400, "INVALID_PARAMETER");
    app.get("/api/tenants/acme/events?cursor=abc", &app.admin)
        .await
        .problem(400, "INVALID_PARAMETER");
    app.get("/api/tenants/acme/events?limit=many", &app.admin)
        .await
        .problem(400, "INVALID_PARAMETER");
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_audited_in_aggregate() {
    let app = start().await;
    for _ in 0..50 {
        app.get("/api/tenants", "evd_not-a-token")
            .await
            .problem(401, "UNAUTHENTICATED");
    }
    async fn trail(app: &TestApp) -> Vec<serde_json::Value> {
        app.get("/api/audit?limit=500", &app.admin).await.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["code"] == "UNAUTHENTICATED")
            .cloned()
            .collect()
    }
    assert_eq!(
        trail(&app).await.len(),
        1,
        "one record while the minute lasts"
    );
    app.clock.advance(60);
    evidentia::server::flush_aggregates(&app.state, false).await;
    let records = trail(&app).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["count"], 49, "the summary accounts for the rest");
}
