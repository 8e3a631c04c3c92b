//! People log in: users, console sessions (cookie, CSRF, lifetimes, fixation, logout),
//! brute-force locks and password changes, over HTTP.

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;

const PASSWORD: &str = "correct horse battery staple";

/// A logged-in console session.
struct Session {
    cookie: String,
    csrf: String,
    set_cookie: String,
    body: Value,
}

async fn create_user(app: &TestApp, tenant: Option<&str>, username: &str, roles: &[&str]) -> Value {
    let r = match tenant {
        Some(t) => {
            app.post_json(
                &format!("/api/tenants/{t}/users"),
                &app.admin.clone(),
                json!({"username": username, "password": PASSWORD, "roles": roles}),
            )
            .await
        }
        None => {
            app.post_json(
                "/api/users",
                &app.admin.clone(),
                json!({"username": username, "password": PASSWORD}),
            )
            .await
        }
    };
    r.expect(201);
    r.json()
}

async fn login_with(app: &TestApp, username: &str, password: &str, cookie: Option<&str>) -> Resp {
    let body = json!({"username": username, "password": password})
        .to_string()
        .into_bytes();
    let mut headers = vec![("content-type", "application/json")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    app.call(Method::POST, "/api/auth/login", None, &headers, body)
        .await
}

async fn login(app: &TestApp, username: &str) -> Session {
    session_of(&login_with(app, username, PASSWORD, None).await)
}

fn session_of(r: &Resp) -> Session {
    r.expect(200);
    let set_cookie = r.header("set-cookie").expect("Set-Cookie");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let body = r.json();
    Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        set_cookie,
        body,
    }
}

/// A request with the session cookie (and the CSRF token when `csrf`).
async fn with_session(
    app: &TestApp,
    method: Method,
    path: &str,
    s: &Session,
    csrf: bool,
    body: Option<Value>,
) -> Resp {
    let mut headers = vec![("cookie", s.cookie.as_str())];
    if csrf {
        headers.push(("x-csrf-token", s.csrf.as_str()));
    }
    let bytes = match body {
        Some(b) => {
            headers.push(("content-type", "application/json"));
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    app.call(method, path, None, &headers, bytes).await
}

#[tokio::test]
async fn a_user_logs_in_and_works_through_the_session_with_csrf() {
    let app = start().await;
    app.create_tenant("acme").await;
    let carol = create_user(&app, Some("acme"), "Carol@Acme.example", &["tenant-admin"]).await;
    assert_eq!(carol["username"], "carol@acme.example");
    assert!(carol.get("password").is_none() && carol.get("password_phc").is_none());
    let phc = app
        .state
        .store
        .get_user(carol["id"].as_str().unwrap())
        .unwrap()
        .unwrap()
        .password_phc;
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");

    let s = login(&app, "CAROL@acme.example").await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(s.set_cookie.contains(attr), "{}", s.set_cookie);
    }
    assert!(
        !s.set_cookie.contains("Secure"),
        "plain HTTP: {}",
        s.set_cookie
    );
    assert!(s.cookie.starts_with("evidentia_session=evs_"));
    assert_eq!(s.body["user"]["tenant"], "acme");

    let me = with_session(&app, Method::GET, "/api/auth/me", &s, false, None).await;
    me.expect(200);
    assert_eq!(me.json()["kind"], "user");
    assert_eq!(me.json()["username"], "carol@acme.example");

    // Reads need no CSRF token; unsafe requests do.
    with_session(
        &app,
        Method::GET,
        "/api/tenants/acme/events",
        &s,
        false,
        None,
    )
    .await
    .expect(200);
    let source = json!({"provider": "github"});
    with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/webhook-sources",
        &s,
        false,
        Some(source.clone()),
    )
    .await
    .problem(403, "CSRF_TOKEN_INVALID");
    let mut wrong = Session {
        csrf: "x".repeat(43),
        ..s
    };
    with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/webhook-sources",
        &wrong,
        true,
        Some(source.clone()),
    )
    .await
    .problem(403, "CSRF_TOKEN_INVALID");
    wrong.csrf = wrong.body["csrf_token"].as_str().unwrap().to_string();
    let s = wrong;
    with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/webhook-sources",
        &s,
        true,
        Some(source),
    )
    .await
    .expect(201);

    // The audit trail names the user and the session's decision.
    let audit = app.audit("acme").await;
    let created = audit
        .iter()
        .find(|r| r["action"] == "source.create" && r["status"] == 201)
        .unwrap();
    assert_eq!(
        created["actor"],
        format!("user:{}", carol["id"].as_str().unwrap())
    );
    assert_eq!(created["authz"]["decision"], "allow");
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "auth.login" && r["status"] == 200),
        "{audit:?}"
    );

    // Another tenant through a session: 404 like a missing tenant.
    app.create_tenant("globex").await;
    with_session(
        &app,
        Method::GET,
        "/api/tenants/globex/events",
        &s,
        false,
        None,
    )
    .await
    .problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn sessions_end_at_logout_idle_and_absolute_timeouts_and_are_renewed_at_login() {
    let app = start().await;
    app.create_tenant("acme").await;
    create_user(&app, Some("acme"), "dave", &["viewer"]).await;
    let me = |s: &Session| {
        let app = &app;
        let cookie = s.cookie.clone();
        async move {
            app.call(
                Method::GET,
                "/api/auth/me",
                None,
                &[("cookie", cookie.as_str())],
                Vec::new(),
            )
            .await
            .status
        }
    };

    // Fixation: the session a login request carries is ended, the new id differs.
    let first = login(&app, "dave").await;
    assert_eq!(me(&first).await, 200);
    let second = session_of(&login_with(&app, "dave", PASSWORD, Some(&first.cookie)).await);
    assert_ne!(first.cookie, second.cookie);
    assert_eq!(me(&first).await, 401);
    assert_eq!(me(&second).await, 200);
    // An id planted before login is never valid.
    let planted = format!("evidentia_session=evs_{}", "A".repeat(43));
    let third = session_of(&login_with(&app, "dave", PASSWORD, Some(&planted)).await);
    assert_ne!(third.cookie, planted);
    let planted_session = Session {
        cookie: planted,
        ..login(&app, "dave").await
    };
    assert_eq!(me(&planted_session).await, 401);

    // Logout ends the session server-side and clears the cookie.
    let r = with_session(&app, Method::POST, "/api/auth/logout", &second, true, None).await;
    r.expect(204);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(me(&second).await, 401);

    // Idle: 30 minutes unused.
    let idle = login(&app, "dave").await;
    app.clock.advance(29 * 60);
    assert_eq!(me(&idle).await, 200);
    app.clock.advance(29 * 60);
    assert_eq!(me(&idle).await, 200, "use renews the idle window");
    app.clock.advance(31 * 60);
    assert_eq!(me(&idle).await, 401);

    // Absolute: 12 hours, however busy.
    let busy = login(&app, "dave").await;
    for _ in 0..(12 * 60 / 20) - 1 {
        app.clock.advance(20 * 60);
        assert_eq!(me(&busy).await, 200);
    }
    app.clock.advance(20 * 60);
    assert_eq!(me(&busy).await, 401);

    // A token cannot log out (there is no session).
    let token = app.create_token("acme", &["viewer"]).await;
    app.call(
        Method::POST,
        "/api/auth/logout",
        Some(&token),
        &[],
        Vec::new(),
    )
    .await
    .problem(403, "FORBIDDEN");
    let r = app.get("/api/auth/me", &token).await;
    r.expect(200);
    assert_eq!(r.json()["kind"], "token");
}

#[tokio::test]
async fn five_failures_lock_the_username_for_fifteen_minutes_and_unknown_users_cost_a_hash() {
    let app = start().await;
    app.create_tenant("acme").await;
    create_user(&app, Some("acme"), "erin", &["viewer"]).await;

    // An unknown user costs one argon2id computation, like a wrong password.
    let before = app.state.hasher.computations();
    login_with(&app, "nobody", PASSWORD, None)
        .await
        .problem(401, "LOGIN_FAILED");
    assert_eq!(app.state.hasher.computations(), before + 1);
    let unknown = login_with(&app, "nobody", PASSWORD, None).await.body;
    let wrong = login_with(&app, "erin", "not the password at all", None)
        .await
        .body;
    let strip = |b: &[u8]| {
        let mut v: Value = serde_json::from_slice(b).unwrap();
        v.as_object_mut().unwrap().remove("instance");
        v
    };
    assert_eq!(strip(&unknown), strip(&wrong), "one answer for both");

    // Erin had one failure; four more lock her.
    for _ in 0..4 {
        login_with(&app, "erin", "not the password at all", None)
            .await
            .problem(401, "LOGIN_FAILED");
    }
    let r = login_with(&app, "erin", PASSWORD, None).await;
    r.problem(429, "LOGIN_LOCKED");
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let system = app
        .get("/api/audit?limit=500", &app.admin.clone())
        .await
        .json()["items"]
        .as_array()
        .cloned()
        .unwrap();
    assert!(
        system.iter().any(|r| r["action"] == "auth.lockout"
            && r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("username erin"))),
        "{system:?}"
    );

    app.clock.advance(15 * 60 + 1);
    login(&app, "erin").await;
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_disabling_a_user_locks_them_out() {
    let app = start().await;
    app.create_tenant("acme").await;
    let frank = create_user(&app, Some("acme"), "frank", &["analyst"]).await;
    let a = login(&app, "frank").await;
    let b = login(&app, "frank").await;

    let change = |s: &Session, current: &str, new: &str| {
        let app = &app;
        let body = json!({"current_password": current, "new_password": new});
        let cookie = s.cookie.clone();
        let csrf = s.csrf.clone();
        async move {
            app.call(
                Method::POST,
                "/api/auth/password",
                None,
                &[
                    ("cookie", cookie.as_str()),
                    ("x-csrf-token", csrf.as_str()),
                    ("content-type", "application/json"),
                ],
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    change(&a, "a wrong current one", "a brand new passphrase")
        .await
        .problem(403, "CURRENT_PASSWORD_INVALID");
    change(&a, PASSWORD, "short")
        .await
        .problem(422, "INVALID_PASSWORD");
    change(&a, PASSWORD, "a brand new passphrase")
        .await
        .expect(204);
    for s in [&a, &b] {
        with_session(&app, Method::GET, "/api/auth/me", s, false, None)
            .await
            .problem(401, "UNAUTHENTICATED");
    }
    login_with(&app, "frank", PASSWORD, None)
        .await
        .problem(401, "LOGIN_FAILED");
    let c = session_of(&login_with(&app, "frank", "a brand new passphrase", None).await);

    // Disabled by a tenant-admin: the session ends, logins fail.
    let admin = app.create_token("acme", &["tenant-admin"]).await;
    let id = frank["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/api/tenants/acme/users/{id}"),
        Some(&admin),
        &[],
        Vec::new(),
    )
    .await
    .expect(204);
    with_session(&app, Method::GET, "/api/auth/me", &c, false, None)
        .await
        .problem(401, "UNAUTHENTICATED");
    login_with(&app, "frank", "a brand new passphrase", None)
        .await
        .problem(401, "LOGIN_FAILED");
    let listed = app.get("/api/tenants/acme/users", &admin).await;
    listed.expect(200);
    assert!(listed.json()["items"][0]["disabled_at"].is_string());

    // Another tenant's admin cannot see or disable acme's users.
    app.create_tenant("globex").await;
    let intruder = app.create_token("globex", &["tenant-admin"]).await;
    app.call(
        Method::DELETE,
        &format!("/api/tenants/globex/users/{id}"),
        Some(&intruder),
        &[],
        Vec::new(),
    )
    .await
    .problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn user_creation_follows_roles_and_scope() {
    let app = start().await;
    app.create_tenant("acme").await;
    let tenant_user = |username: &str, roles: Value| json!({"username": username, "password": PASSWORD, "roles": roles});
    let admin = app.admin.clone();
    // An appliance user holds exactly appliance-admin; a tenant user never does.
    let root = app
        .post_json(
            "/api/users",
            &admin,
            json!({"username": "root2", "password": PASSWORD}),
        )
        .await;
    root.expect(201);
    assert_eq!(root.json()["roles"], json!(["appliance-admin"]));
    let acme = "/api/tenants/acme/users";
    app.post_json(acme, &admin, tenant_user("ann", json!(["appliance-admin"])))
        .await
        .problem(400, "INVALID_BODY");
    app.post_json(acme, &admin, tenant_user("-ann", json!(["viewer"])))
        .await
        .problem(422, "INVALID_USERNAME");
    app.post_json(acme, &admin, tenant_user("ann", json!(["viewer"])))
        .await
        .expect(201);
    app.post_json(acme, &admin, tenant_user("ANN", json!(["viewer"])))
        .await
        .problem(409, "USERNAME_TAKEN");

    // A tenant-admin creates users in its tenant only; a viewer none.
    let ta = app.create_token("acme", &["tenant-admin"]).await;
    app.post_json(acme, &ta, tenant_user("bea", json!(["analyst"])))
        .await
        .expect(201);
    app.post_json(
        "/api/users",
        &ta,
        json!({"username": "root4", "password": PASSWORD}),
    )
    .await
    .problem(403, "FORBIDDEN");
    app.create_tenant("globex").await;
    app.post_json(
        "/api/tenants/globex/users",
        &ta,
        tenant_user("cid", json!(["viewer"])),
    )
    .await
    .problem(404, "NOT_FOUND");
    let viewer = app.create_token("acme", &["viewer"]).await;
    app.post_json(acme, &viewer, tenant_user("dan", json!(["viewer"])))
        .await
        .problem(403, "FORBIDDEN");
    let users = app.get("/api/users", &admin).await;
    users.expect(200);
    let names: Vec<String> = users.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["root2".to_string()]);
}

/// Dual control of a tenant export over HTTP: the full matrix of approvals (self, token,
/// appliance user, another tenant's user, viewer, duplicate, a role no longer needed, valid),
/// each refusal a 403 naming its rule (or the isolation 404) and in the audit trail; the
/// export downloads only once approved, and verifies offline.
#[tokio::test]
async fn an_export_needs_two_distinct_approvers_one_a_compliance_officer() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    for (name, roles) in [
        ("req@acme", &["tenant-admin"][..]),
        ("sa@acme", &["security-admin"]),
        ("ta@acme", &["tenant-admin"]),
        ("co@acme", &["compliance-officer"]),
        ("viewer@acme", &["viewer"]),
    ] {
        create_user(&app, Some("acme"), name, roles).await;
    }
    create_user(&app, Some("other"), "co@other", &["compliance-officer"]).await;
    create_user(&app, None, "root@appliance", &[]).await;
    let mut sessions = std::collections::HashMap::new();
    for name in [
        "req@acme",
        "sa@acme",
        "ta@acme",
        "co@acme",
        "viewer@acme",
        "co@other",
        "root@appliance",
    ] {
        // Logins are their own rate class (10 a minute per peer).
        app.clock.advance(7);
        sessions.insert(name, login(&app, name).await);
    }
    let officer_token = app.create_token("acme", &["compliance-officer"]).await;
    // A token cannot ask: it is not traced to its maker, who could then approve.
    app.call(
        Method::POST,
        "/api/tenants/acme/exports",
        Some(&officer_token),
        &[],
        vec![],
    )
    .await
    .problem(403, "APPROVAL_REFUSED");

    let r = with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/exports",
        &sessions["req@acme"],
        true,
        None,
    )
    .await;
    r.expect(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["approved"], false);
    let approvals = format!("/api/tenants/acme/exports/{id}/approvals");
    let download = format!("/api/tenants/acme/exports/{id}");
    let approve = |who: &'static str| {
        let (app, approvals, s) = (&app, approvals.clone(), &sessions[who]);
        async move { with_session(app, Method::POST, &approvals, s, true, None).await }
    };
    with_session(
        &app,
        Method::GET,
        &download,
        &sessions["req@acme"],
        false,
        None,
    )
    .await
    .problem(409, "EXPORT_NOT_APPROVED");

    let refused = |r: Resp, rule: &str| {
        r.problem(403, "APPROVAL_REFUSED");
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(rule), "{detail}");
    };
    refused(approve("req@acme").await, "requester");
    let token = app
        .call(Method::POST, &approvals, Some(&officer_token), &[], vec![])
        .await;
    refused(token, "API token");
    refused(approve("root@appliance").await, "users of the tenant");
    approve("co@other").await.problem(404, "NOT_FOUND");
    approve("viewer@acme").await.problem(403, "FORBIDDEN");
    let r = approve("sa@acme").await;
    r.expect(200);
    assert_eq!(r.json()["approved"], false);
    assert_eq!(r.json()["approvals"][0]["role"], "security-admin");
    refused(approve("sa@acme").await, "already approved");
    refused(approve("ta@acme").await, "no role this request still needs");
    with_session(
        &app,
        Method::GET,
        &download,
        &sessions["req@acme"],
        false,
        None,
    )
    .await
    .problem(409, "EXPORT_NOT_APPROVED");
    let r = approve("co@acme").await;
    r.expect(200);
    assert_eq!(r.json()["approved"], true);
    refused(approve("ta@acme").await, "already approved");

    // Approved: the audit log downloads, verifies offline, and carries an access receipt.
    let zip = with_session(
        &app,
        Method::GET,
        &format!("{download}?log=audit"),
        &sessions["req@acme"],
        false,
        None,
    )
    .await;
    zip.expect(200);
    assert!(zip.header("evidentia-access-receipt").is_some());
    let key = app.get("/api/keys", &app.admin.clone()).await.json()["keys"][0]["verifier_key"]
        .as_str()
        .unwrap()
        .to_string();
    let checks = evidentia::verify::verify_audit_export(&zip.body, &key);
    assert!(evidentia::verify::all_passed(&checks), "{checks:?}");
    // The approvals, and every refusal, are in acme's audit trail, by their users.
    let audit = app.audit("acme").await;
    let approvals: Vec<(&str, u64)> = audit
        .iter()
        .filter(|a| a["action"] == "tenant.export.approve")
        .map(|a| (a["actor"].as_str().unwrap(), a["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        approvals.iter().filter(|(_, s)| *s == 200).count(),
        2,
        "{approvals:?}"
    );
    assert!(
        approvals.iter().filter(|(_, s)| *s == 403).count() >= 5,
        "{approvals:?}"
    );
    assert!(
        approvals
            .iter()
            .all(|(actor, _)| actor.starts_with("user:") || actor.starts_with("token:"))
    );
}

/// A suspended tenant's users cannot start sessions (said only after the password verified)
/// but can still end the ones they have.
#[tokio::test]
async fn a_suspended_tenants_users_end_sessions_but_cannot_start_them() {
    let app = start().await;
    app.create_tenant("acme").await;
    create_user(&app, Some("acme"), "erin@acme", &["viewer"]).await;
    let s = login(&app, "erin@acme").await;
    app.call(
        Method::PATCH,
        "/api/tenants/acme",
        Some(&app.admin),
        &[("content-type", "application/json")],
        json!({"status": "suspended"}).to_string().into_bytes(),
    )
    .await
    .expect(200);
    with_session(
        &app,
        Method::GET,
        "/api/tenants/acme/events",
        &s,
        false,
        None,
    )
    .await
    .problem(403, "TENANT_SUSPENDED");
    let r = with_session(&app, Method::POST, "/api/auth/logout", &s, true, None).await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    login_with(&app, "erin@acme", PASSWORD, None)
        .await
        .problem(403, "TENANT_SUSPENDED");
    login_with(&app, "erin@acme", "not the password at all", None)
        .await
        .problem(401, "LOGIN_FAILED");
}

/// Tenant deletion under dual control over HTTP: the approval matrix (token, a role the default
/// policies do not let approve, the requester, another tenant's user, one user holding both
/// roles filling the place the officer leaves), then the approval that completes the rule
/// crypto-shreds the tenant: content keys destroyed on disk, content and sources removed, the
/// API 403 `TENANT_DELETED` (appliance-admins still read its logs), the `system` log records
/// it, and all of it holds after a restart.
#[tokio::test]
async fn a_tenant_deletion_needs_an_officer_and_a_security_admin_and_shreds_the_content() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    for (name, roles) in [
        ("req@acme", &["tenant-admin"][..]),
        ("ta@acme", &["tenant-admin"]),
        ("co@acme", &["compliance-officer"]),
        ("sa@acme", &["security-admin"]),
        ("both@acme", &["compliance-officer", "security-admin"]),
    ] {
        create_user(&app, Some("acme"), name, roles).await;
    }
    create_user(&app, Some("other"), "sa@other", &["security-admin"]).await;
    let mut sessions = std::collections::HashMap::new();
    for name in [
        "req@acme",
        "ta@acme",
        "co@acme",
        "sa@acme",
        "both@acme",
        "sa@other",
    ] {
        app.clock.advance(7);
        sessions.insert(name, login(&app, name).await);
    }

    // Content: a signed delivery whose body is encrypted at rest.
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "shred-secret-value-0123456789abcdef"}),
        )
        .await;
    let url = src["ingest_url"].as_str().unwrap().to_string();
    // An integration: removed with its credential by the deletion.
    app.post_json(
        "/api/tenants/acme/integrations",
        &app.admin,
        json!({"name": "soc", "url": "https://soc.example.com/hook", "event_types": ["audit.recorded"]}),
    )
    .await
    .expect(201);
    let marker = b"SHRED-MARKER-4f1e9c2a7b3d";
    let body = format!(r#"{{"marker":"{}"}}"#, std::str::from_utf8(marker).unwrap()).into_bytes();
    let sig = format!(
        "sha256={}",
        hmac_hex("shred-secret-value-0123456789abcdef", &body)
    );
    let headers = [
        ("content-type", "application/json"),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    let r = app
        .call(Method::POST, &url, None, &headers, body.clone())
        .await;
    r.expect(200);
    let event = r.json()["event_id"].as_str().unwrap().to_string();
    let body_path = format!("/api/tenants/acme/events/{event}/body");
    let read = app.get(&body_path, &app.admin).await;
    read.expect(200);
    assert_eq!(read.body, body);
    let data_dir = app.state.config.server.data_dir.clone();
    let db = data_dir.join("evidentia.redb");
    let key_file = evidentia::store::key_file_of(&db);
    let stored = std::fs::read(&db).unwrap();
    assert!(
        !stored.windows(marker.len()).any(|w| w == marker),
        "the body is in the database file in plaintext"
    );
    assert!(
        evidentia::store::TenantKeys::read_only(&key_file)
            .unwrap()
            .get("acme")
            .is_some()
    );

    // Who may ask: a user of the tenant with tenant-admin, from a session.
    let token = app.create_token("acme", &["tenant-admin"]).await;
    app.call(
        Method::POST,
        "/api/tenants/acme/deletion",
        Some(&token),
        &[],
        vec![],
    )
    .await
    .problem(403, "APPROVAL_REFUSED");
    with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/deletion",
        &sessions["co@acme"],
        true,
        None,
    )
    .await
    .problem(403, "FORBIDDEN");
    let r = with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/deletion",
        &sessions["req@acme"],
        true,
        None,
    )
    .await;
    r.expect(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("del_"), "{id}");
    assert_eq!(r.json()["approved"], false);
    assert!(r.json().get("deleted").is_none());
    let approvals = format!("/api/tenants/acme/deletion/{id}/approvals");
    let approve = |who: &'static str| {
        let (app, approvals, s) = (&app, approvals.clone(), &sessions[who]);
        async move { with_session(app, Method::POST, &approvals, s, true, None).await }
    };
    let refused = |r: Resp, rule: &str| {
        r.problem(403, "APPROVAL_REFUSED");
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(rule), "{detail}");
    };
    let officer_token = app.create_token("acme", &["compliance-officer"]).await;
    refused(
        app.call(Method::POST, &approvals, Some(&officer_token), &[], vec![])
            .await,
        "API token",
    );
    approve("req@acme").await.problem(403, "FORBIDDEN");
    approve("ta@acme").await.problem(403, "FORBIDDEN");
    approve("sa@other").await.problem(404, "NOT_FOUND");
    // An export request's id is not a deletion's.
    let other_id = format!(
        "/api/tenants/acme/deletion/del_{}/approvals",
        "0".repeat(32)
    );
    with_session(
        &app,
        Method::POST,
        &other_id,
        &sessions["co@acme"],
        true,
        None,
    )
    .await
    .problem(404, "NOT_FOUND");
    let r = approve("both@acme").await;
    r.expect(200);
    assert_eq!(r.json()["approved"], false);
    assert_eq!(r.json()["approvals"][0]["role"], "compliance-officer");
    refused(approve("both@acme").await, "already approved");
    // Nothing is deleted yet.
    app.get(&body_path, &app.admin).await.expect(200);

    // The user holding both roles takes the place the officer leaves: the order of
    // approvals never blocks the rule.
    let r = approve("co@acme").await;
    r.expect(200);
    let done = r.json();
    assert_eq!(done["approved"], true, "{done}");
    assert_eq!(done["approvals"][0]["role"], "security-admin", "{done}");
    assert_eq!(done["approvals"][1]["role"], "compliance-officer", "{done}");
    assert_eq!(
        done["deleted"],
        json!({"bodies": 1, "insights": 0, "artifacts": 0, "sources": 1, "integrations": 1,
               "key_destroyed": true}),
        "{done}"
    );

    // The key is gone from the key file (its slot zeros), the tenant refuses its users.
    approve("sa@acme").await.problem(403, "TENANT_DELETED");
    app.clock.advance(7);
    login_with(&app, "ta@acme", PASSWORD, None)
        .await
        .problem(403, "TENANT_DELETED");
    assert!(
        evidentia::store::TenantKeys::read_only(&key_file)
            .unwrap()
            .get("acme")
            .is_none()
    );
    app.get("/api/tenants/acme/events", &token)
        .await
        .problem(403, "TENANT_DELETED");
    with_session(
        &app,
        Method::GET,
        "/api/tenants/acme/events",
        &sessions["co@acme"],
        false,
        None,
    )
    .await
    .problem(403, "TENANT_DELETED");
    // Its deliveries have nowhere to go; its content is gone; its logs stay readable.
    app.call(Method::POST, &url, None, &headers, body.clone())
        .await
        .problem(404, "NOT_FOUND");
    app.get(&body_path, &app.admin)
        .await
        .problem(410, "BODY_PURGED");
    app.get("/api/tenants/acme/logs/evidence/checkpoint", &app.admin)
        .await
        .expect(200);
    let tenant = app.get("/api/tenants/acme", &app.admin).await;
    tenant.expect(200);
    assert_eq!(tenant.json()["status"], "deleted");
    // Final: no reactivation, no new tenant under its id.
    app.call(
        Method::PATCH,
        "/api/tenants/acme",
        Some(&app.admin),
        &[("content-type", "application/json")],
        json!({"status": "active"}).to_string().into_bytes(),
    )
    .await
    .problem(403, "TENANT_DELETED");
    app.post_json(
        "/api/tenants",
        &app.admin.clone(),
        json!({"id": "acme", "name": "Acme again"}),
    )
    .await
    .expect(409);
    // The appliance's system log records it.
    let system = app.get("/api/audit?limit=500", &app.admin).await.json()["items"].clone();
    assert!(
        system.as_array().unwrap().iter().any(|r| {
            r["action"] == "tenant.delete.approve"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("tenant acme deleted under dual control"))
        }),
        "{system:#}"
    );

    // After a restart: still deleted, still no key, and `evidentia check` finds no damage.
    let config = app.state.config.clone();
    let (dir, admin) = (app.dir.clone(), app.admin.clone());
    app.state.store.shutdown();
    drop(app);
    let app = open(dir.clone(), config.clone(), Some(admin)).await;
    app.get("/api/tenants/acme/events", &token)
        .await
        .problem(403, "TENANT_DELETED");
    assert_eq!(
        app.get("/api/tenants/acme", &app.admin).await.json()["status"],
        "deleted"
    );
    app.state.store.shutdown();
    drop(app);
    let report = evidentia::store::check_database(&db).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// An approval counts only while its user may still give it: a compliance-officer disabled
/// after approving a deletion no longer counts when the security-admin approves, so nothing is
/// deleted until another officer does.
#[tokio::test]
async fn a_disabled_approver_no_longer_counts_towards_a_deletion() {
    let app = start().await;
    app.create_tenant("acme").await;
    let mut ids = std::collections::HashMap::new();
    for (name, roles) in [
        ("req@acme", &["tenant-admin"][..]),
        ("co@acme", &["compliance-officer"]),
        ("co2@acme", &["compliance-officer"]),
        ("sa@acme", &["security-admin"]),
    ] {
        let user = create_user(&app, Some("acme"), name, roles).await;
        ids.insert(name, user["id"].as_str().unwrap().to_string());
    }
    let mut sessions = std::collections::HashMap::new();
    for name in ["req@acme", "co@acme", "co2@acme", "sa@acme"] {
        app.clock.advance(7);
        sessions.insert(name, login(&app, name).await);
    }
    let r = with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/deletion",
        &sessions["req@acme"],
        true,
        None,
    )
    .await;
    r.expect(201);
    let approvals = format!(
        "/api/tenants/acme/deletion/{}/approvals",
        r.json()["id"].as_str().unwrap()
    );
    let approve = |who: &'static str| {
        let (app, approvals, s) = (&app, approvals.clone(), &sessions[who]);
        async move { with_session(app, Method::POST, &approvals, s, true, None).await }
    };
    approve("co@acme").await.expect(200);
    app.call(
        Method::DELETE,
        &format!("/api/tenants/acme/users/{}", ids["co@acme"]),
        Some(&app.admin),
        &[],
        vec![],
    )
    .await
    .expect(204);
    let r = approve("sa@acme").await;
    r.expect(200);
    assert_eq!(r.json()["approved"], false, "{}", r.json());
    assert_eq!(
        r.json()["approvals"],
        json!([{"user": ids["sa@acme"], "role": "security-admin", "at": r.json()["approvals"][0]["at"]}])
    );
    let token = app.create_token("acme", &["viewer"]).await;
    app.get("/api/tenants/acme/events", &token)
        .await
        .expect(200);
    let r = approve("co2@acme").await;
    r.expect(200);
    assert_eq!(r.json()["approved"], true);
    app.get("/api/tenants/acme/events", &token)
        .await
        .problem(403, "TENANT_DELETED");
}

/// A dual-control request takes approvals for 7 days after it was asked, no longer.
#[tokio::test]
async fn a_dual_control_request_expires_after_seven_days() {
    let app = start().await;
    app.create_tenant("acme").await;
    create_user(&app, Some("acme"), "req@acme", &["tenant-admin"]).await;
    create_user(&app, Some("acme"), "co@acme", &["compliance-officer"]).await;
    let req = login(&app, "req@acme").await;
    let r = with_session(
        &app,
        Method::POST,
        "/api/tenants/acme/deletion",
        &req,
        true,
        None,
    )
    .await;
    r.expect(201);
    let asked = time::OffsetDateTime::parse(
        r.json()["requested_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        r.json()["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - asked, time::Duration::days(7));
    let approvals = format!(
        "/api/tenants/acme/deletion/{}/approvals",
        r.json()["id"].as_str().unwrap()
    );
    app.clock.advance(7 * 86_400 + 1);
    let co = login(&app, "co@acme").await;
    let r = with_session(&app, Method::POST, &approvals, &co, true, None).await;
    r.problem(403, "APPROVAL_REFUSED");
    assert!(
        r.json()["detail"].as_str().unwrap().contains("expired"),
        "{}",
        r.json()
    );
}
