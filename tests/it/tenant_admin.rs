//! Tenant status (suspension), settings, usage and the per-class API rate limits (issue 10
//! points 6 and 8).

use poem::http::Method;
use serde_json::{Value, json};

use evidentia::clock::Clock;

use super::common::*;

async fn call_json(app: &TestApp, method: Method, path: &str, token: &str, body: Value) -> Resp {
    app.call(
        method,
        path,
        Some(token),
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
    .await
}

/// A Standard Webhooks delivery to `url` signed with `secret`.
async fn deliver(app: &TestApp, url: &str, secret: &str, id: &str, body: &[u8]) -> Resp {
    let ts = app.clock.now_unix();
    let sig = evidentia::ingest::signature::sign_standard(secret, id, ts, body);
    let ts = ts.to_string();
    app.call(
        Method::POST,
        url,
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

async fn standard_source(app: &TestApp, tenant: &str) -> (String, String) {
    let src = app
        .create_source(tenant, json!({"provider": "standard"}))
        .await;
    (
        src["ingest_url"].as_str().unwrap().to_string(),
        src["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_suspended_tenant_answers_only_appliance_admin_reads_until_reactivated() {
    let app = start().await;
    let admin = app.admin.clone();
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    let tadmin = app.create_token("acme", &["tenant-admin"]).await;
    let stranger = app.create_token("other", &["tenant-admin"]).await;
    let (url, secret) = standard_source(&app, "acme").await;
    deliver(&app, &url, &secret, "msg_1", br#"{"a":1}"#)
        .await
        .expect(200);

    // Only appliance-admins change the status.
    call_json(
        &app,
        Method::PATCH,
        "/api/tenants/acme",
        &tadmin,
        json!({"status": "suspended"}),
    )
    .await
    .problem(403, "FORBIDDEN");
    call_json(
        &app,
        Method::PATCH,
        "/api/tenants/acme",
        &admin,
        json!({"status": "suspended", "reason": "   "}),
    )
    .await
    .problem(422, "INVALID_REASON");
    call_json(
        &app,
        Method::PATCH,
        "/api/tenants/acme",
        &admin,
        json!({"status": "suspended", "reason": "a\u{202e}b"}),
    )
    .await
    .problem(422, "INVALID_REASON");
    let r = call_json(
        &app,
        Method::PATCH,
        "/api/tenants/acme",
        &admin,
        json!({"status": "suspended", "reason": "contract ended"}),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json()["status"], "suspended");
    assert_eq!(r.json()["status_reason"], "contract ended");
    assert!(r.json()["status_changed_at"].is_string());

    // The tenant's own principals and its ingestion are refused.
    app.get("/api/tenants/acme/events", &tadmin)
        .await
        .problem(403, "TENANT_SUSPENDED");
    app.get("/api/tenants/acme", &tadmin)
        .await
        .problem(403, "TENANT_SUSPENDED");
    deliver(&app, &url, &secret, "msg_2", br#"{"a":2}"#)
        .await
        .problem(403, "TENANT_SUSPENDED");
    // Only a verified delivery learns of the suspension: an unsigned one is the usual 401,
    // so the status is no oracle for strangers.
    deliver(
        &app,
        &url,
        "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3",
        "msg_x",
        b"{}",
    )
    .await
    .problem(401, "SIGNATURE_INVALID");
    // Another tenant's principal still learns nothing: the same 404 as a missing tenant.
    let probe = app.get("/api/tenants/acme/events", &stranger).await;
    let missing = app.get("/api/tenants/nope/events", &stranger).await;
    probe.problem(404, "NOT_FOUND");
    assert_eq!(probe.json()["detail"], missing.json()["detail"]);
    // Appliance-admins read, but do not write.
    let events = app.get("/api/tenants/acme/events", &admin).await;
    events.expect(200);
    assert_eq!(events.json()["items"].as_array().unwrap().len(), 1);
    app.post_json(
        "/api/tenants/acme/webhook-sources",
        &admin,
        json!({"provider": "standard"}),
    )
    .await
    .problem(403, "TENANT_SUSPENDED");

    // Reactivated, everything works again; the changes are in the tenant's audit log.
    call_json(
        &app,
        Method::PATCH,
        "/api/tenants/acme",
        &admin,
        json!({"status": "active", "reason": "renewed"}),
    )
    .await
    .expect(200);
    app.get("/api/tenants/acme/events", &tadmin)
        .await
        .expect(200);
    deliver(&app, &url, &secret, "msg_3", br#"{"a":3}"#)
        .await
        .expect(200);
    let audit = app.audit("acme").await;
    let changes: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "tenant.status.write" && a["status"] == 200)
        .collect();
    let details: Vec<&str> = changes
        .iter()
        .map(|a| a["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{audit:#?}");
    assert!(
        details.contains(&"suspended: contract ended"),
        "{details:?}"
    );
    assert!(details.contains(&"active: renewed"), "{details:?}");
    assert!(
        audit
            .iter()
            .any(|a| a["action"] == "webhook.ingest" && a["status"] == 403),
        "{audit:#?}"
    );
}

#[tokio::test]
async fn settings_override_the_appliance_and_rate_quotas_need_an_appliance_admin() {
    let app = start().await;
    let admin = app.admin.clone();
    app.create_tenant("acme").await;
    let tadmin = app.create_token("acme", &["tenant-admin"]).await;
    let viewer = app.create_token("acme", &["viewer"]).await;

    let r = app.get("/api/tenants/acme/settings", &tadmin).await;
    r.expect(200);
    let s = r.json();
    assert_eq!(s["body_retention_days"], 30);
    assert_eq!(s["receipt_freshness_secs"], 300);
    assert_eq!(
        s["rate_limits"],
        json!({"auth": 10, "export": 5, "query": 300, "default": 60})
    );
    assert_eq!(s["inherited"].as_array().unwrap().len(), 6);

    // Bounds.
    for bad in [
        json!({"body_retention_days": 0}),
        json!({"body_retention_days": 3651}),
        json!({"receipt_freshness_secs": 0}),
        json!({"rate_limits": {"query": 0}}),
    ] {
        call_json(&app, Method::PUT, "/api/tenants/acme/settings", &admin, bad)
            .await
            .problem(422, "INVALID_SETTING");
    }
    call_json(
        &app,
        Method::PUT,
        "/api/tenants/acme/settings",
        &admin,
        json!({"retention": 3}),
    )
    .await
    .problem(400, "INVALID_BODY");
    // A tenant-admin sets retention and freshness, not the quotas; a viewer nothing.
    call_json(
        &app,
        Method::PUT,
        "/api/tenants/acme/settings",
        &viewer,
        json!({}),
    )
    .await
    .problem(403, "FORBIDDEN");
    call_json(
        &app,
        Method::PUT,
        "/api/tenants/acme/settings",
        &tadmin,
        json!({"rate_limits": {"query": 100000}}),
    )
    .await
    .problem(403, "FORBIDDEN");
    let r = call_json(
        &app,
        Method::PUT,
        "/api/tenants/acme/settings",
        &tadmin,
        json!({"body_retention_days": 7}),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json()["body_retention_days"], 7);
    assert!(
        !r.json()["inherited"]
            .as_array()
            .unwrap()
            .contains(&json!("body_retention_days"))
    );

    // The retention reaches ingestion: the body expires 7 days after receipt.
    let (url, secret) = standard_source(&app, "acme").await;
    let ack = deliver(&app, &url, &secret, "msg_1", b"{}").await;
    ack.expect(200);
    let id = ack.json()["event_id"].as_str().unwrap().to_string();
    let ev = app
        .get(&format!("/api/tenants/acme/events/{id}"), &tadmin)
        .await;
    ev.expect(200);
    let expires = time::OffsetDateTime::parse(
        ev.json()["body_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires.unix_timestamp(), NOW + 7 * 86_400);

    // The appliance-admin lowers the tenant's read quota; its principals feel it at once.
    call_json(
        &app,
        Method::PUT,
        "/api/tenants/acme/settings",
        &admin,
        json!({"body_retention_days": 7, "rate_limits": {"query": 3}}),
    )
    .await
    .expect(200);
    for _ in 0..3 {
        app.get("/api/tenants/acme/events", &viewer)
            .await
            .expect(200);
    }
    let limited = app.get("/api/tenants/acme/events", &viewer).await;
    limited.problem(429, "RATE_LIMITED");
    assert_eq!(
        limited.header("ratelimit-policy").as_deref(),
        Some("\"query\";q=3;w=60")
    );
    assert!(limited.header("retry-after").is_some());
    // Per principal and operation: another operation and another principal are untouched.
    app.get("/api/tenants/acme/insights", &viewer)
        .await
        .expect(200);
    app.get("/api/tenants/acme/events", &tadmin)
        .await
        .expect(200);
    // And the quota refills with time.
    app.clock.advance(20);
    app.get("/api/tenants/acme/events", &viewer)
        .await
        .expect(200);
}

#[tokio::test]
async fn the_export_class_allows_five_a_minute_per_principal_and_denials_spend_it() {
    let app = start().await;
    app.create_tenant("acme").await;
    let officer = app.create_token("acme", &["compliance-officer"]).await;
    let viewer = app.create_token("acme", &["viewer"]).await;
    for _ in 0..5 {
        app.get("/api/tenants/acme/audit/export", &officer)
            .await
            .expect(200);
    }
    let r = app.get("/api/tenants/acme/audit/export", &officer).await;
    r.problem(429, "RATE_LIMITED");
    assert_eq!(
        r.header("ratelimit-policy").as_deref(),
        Some("\"export\";q=5;w=60")
    );
    // A principal without the role is refused, and its refusals count against its quota, so
    // probing is as limited as using.
    for _ in 0..5 {
        app.get("/api/tenants/acme/audit/export", &viewer)
            .await
            .problem(403, "FORBIDDEN");
    }
    app.get("/api/tenants/acme/audit/export", &viewer)
        .await
        .problem(429, "RATE_LIMITED");
    app.clock.advance(60);
    app.get("/api/tenants/acme/audit/export", &officer)
        .await
        .expect(200);
}

#[tokio::test]
async fn usage_counts_what_was_stored_per_day() {
    let app = start().await;
    app.create_tenant("acme").await;
    let viewer = app.create_token("acme", &["viewer"]).await;
    let (url, secret) = standard_source(&app, "acme").await;
    deliver(&app, &url, &secret, "msg_1", b"{\"n\":1}")
        .await
        .expect(200);
    deliver(&app, &url, &secret, "msg_2", b"{\"n\":22}")
        .await
        .expect(200);
    // A duplicate is not counted again.
    deliver(&app, &url, &secret, "msg_2", b"{\"n\":22}")
        .await
        .expect(200);
    app.clock.advance(86_400);
    deliver(&app, &url, &secret, "msg_3", b"{}")
        .await
        .expect(200);

    let r = app.get("/api/tenants/acme/usage?range=7d", &viewer).await;
    r.expect(200);
    let u = r.json();
    assert_eq!(u["range"], "7d");
    let days = u["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let today = &days[6];
    let yesterday = &days[5];
    assert_eq!(
        (today["events"].as_u64(), today["bytes"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        (yesterday["events"].as_u64(), yesterday["bytes"].as_u64()),
        (Some(2), Some(15))
    );
    assert_eq!(days[0]["events"], 0);
    assert_eq!(u["totals"]["events"], 3);
    let date = time::OffsetDateTime::from_unix_timestamp(NOW + 86_400)
        .unwrap()
        .date()
        .to_string();
    assert_eq!(today["date"], date.as_str());
    let r = app.get("/api/tenants/acme/usage", &viewer).await;
    assert_eq!(r.json()["days"].as_array().unwrap().len(), 30);
    app.get("/api/tenants/acme/usage?range=1y", &viewer)
        .await
        .problem(400, "INVALID_PARAMETER");
    // Another tenant's usage is a missing tenant.
    app.create_tenant("other").await;
    let other = app.create_token("other", &["viewer"]).await;
    app.get("/api/tenants/acme/usage", &other)
        .await
        .problem(404, "NOT_FOUND");
}

/// Non-canonical spellings of a path are refused before routing, authentication and the rate
/// classes (so none reaches a handler under another route's policy or quota), and are audited
/// against the token they carried; HEAD is authorized as GET.
#[tokio::test]
async fn path_variants_and_head_never_bypass_authorization_or_a_quota() {
    let app = start_with(|c| c.ratelimit.api_query_per_minute = 2).await;
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    let viewer = app.create_token("acme", &["viewer"]).await;
    let stranger = app.create_token("other", &["tenant-admin"]).await;
    for variant in [
        "/api/tenants/acme/events/",
        "/api//tenants/acme/events",
        "/api/tenants/other/../acme/events",
        "/api/tenants/acme/./events",
        "/api/tenants/other/%2e%2e/acme/events",
        "/api/tenants/other/%2E%2E/acme/events",
        "/api/tenants%2facme/events",
        "/api/tenants/acme%2Fevents",
        "/api/tenants/acme/events%5c",
        "/api/tenants/acme/events%00",
        "/api/tenants/%61cme/events",
        "/api/tenants/acme/%65vents",
    ] {
        let r = app.get(variant, &stranger).await;
        assert_eq!(
            r.status,
            400,
            "{variant}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), "INVALID_PATH", "{variant}");
    }
    // Static pages keep their directory form (`/console` redirects to `/console/`).
    for page in ["/console/", "/docs/"] {
        let r = app.call(Method::GET, page, None, &[], vec![]).await;
        assert_eq!(r.status, 200, "{page}");
    }
    // Another case is another (unknown) path, not the same resource.
    let r = app.get("/API/tenants/acme/events", &stranger).await;
    assert_eq!(r.status, 404);
    // The refusals are the stranger's, in its own tenant's audit log.
    let audit = app.audit("other").await;
    assert!(
        audit
            .iter()
            .filter(|a| a["status"] == 400 && a["code"] == "INVALID_PATH")
            .count()
            >= 1,
        "{audit:#?}"
    );
    // HEAD is the GET action: the stranger's HEAD is the same 404, and HEADs spend the same
    // query quota as GETs.
    let head = app
        .call(
            Method::HEAD,
            "/api/tenants/acme/events",
            Some(&stranger),
            &[],
            vec![],
        )
        .await;
    assert_eq!(head.status, 404);
    for _ in 0..2 {
        let r = app
            .call(
                Method::HEAD,
                "/api/tenants/acme/events",
                Some(&viewer),
                &[],
                vec![],
            )
            .await;
        assert_eq!(r.status, 200);
    }
    app.get("/api/tenants/acme/events", &viewer)
        .await
        .problem(429, "RATE_LIMITED");
}

/// Over a real socket, with no trusted proxy configured, `X-Forwarded-For` does not change the
/// peer a limit is keyed on: six failed logins with six forged addresses lock the one real peer.
#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_never_changes_a_limit_key() {
    let app = start().await;
    let addr = app.serve_tcp().await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = http
            .post(format!("http://{addr}/api/auth/login"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .body(
                json!({"username": format!("nobody{i}"), "password": "wrong password 123"})
                    .to_string(),
            )
            .send()
            .await
            .expect("login");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
}

#[test]
fn canonical_paths() {
    use evidentia::api::path_problem;
    for ok in [
        "/",
        "/console/",
        "/docs/",
        "/api/tenants/acme",
        "/api/conductor/evidence/receipt/run-1.2",
        "/webhooks/src_0123/events",
    ] {
        assert_eq!(path_problem(ok), None, "{ok}");
    }
    for bad in [
        "",
        "api",
        "/api/",
        "/api/tenants/",
        "/webhooks/src_1/events/",
        "/console//",
        "/console/../api/tenants",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/a/..",
        "/a/../",
        "/a\\b",
        "/a%2Fb",
        "/api/tenants/%61cme",
        "/api/tenants/acme%7E",
    ] {
        assert!(path_problem(bad).is_some(), "{bad}");
    }
}

/// Logins are their own rate class, keyed on the peer (there is no principal yet), and the
/// class is spent before the password is checked (a 429 costs no argon2 computation).
#[tokio::test]
async fn logins_spend_the_auth_class_of_their_peer() {
    let app = start_with(|c| c.ratelimit.api_auth_per_minute = 2).await;
    let login = |n: u32| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/auth/login",
                None,
                &[("content-type", "application/json")],
                json!({"username": format!("nobody{n}"), "password": "wrong password 123"})
                    .to_string()
                    .into_bytes(),
            )
            .await
        }
    };
    login(1).await.problem(401, "LOGIN_FAILED");
    login(2).await.problem(401, "LOGIN_FAILED");
    let r = login(3).await;
    r.problem(429, "RATE_LIMITED");
    assert_eq!(
        r.header("ratelimit-policy").as_deref(),
        Some("\"auth\";q=2;w=60")
    );
    app.clock.advance(30);
    login(4).await.problem(401, "LOGIN_FAILED");
}
