//! Authorization over HTTP, generated from the OpenAPI document: every operation with a
//! `{tenant}` parameter answers a principal of another tenant exactly like a tenant that does
//! not exist (404, same body and headers) — through a token and through a console session
//! alike —, answers a principal of the tenant without a
//! permitting role 403, and leaves an audit record of each attempt — cross-tenant attempts in
//! the appliance's `system` log too. New routes are covered as soon as they are in the spec.

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;
use evidentia::authz::{
    Action, Authn, Authorizer, Principal, RequestContext, Resource, RouteAccess,
};
use evidentia::identity::Role;

/// One documented operation on a tenant path, ready to send.
struct Op {
    method: Method,
    template: String,
    /// Path and query with every parameter filled, `{tenant}` left open.
    path: String,
    body: Option<Value>,
    action: Action,
}

/// A value matching a parameter's schema (the handlers validate patterns before anything
/// else, so a value out of pattern would answer 400 and hide the authorization answer).
fn sample(schema: &Value, spec: &Value) -> String {
    let schema = resolve(schema, spec);
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.as_str().map(str::to_string).unwrap_or_default();
    }
    match schema["type"].as_str() {
        Some("integer") => return "1".into(),
        Some("boolean") => return "true".into(),
        _ => {}
    }
    let pattern = schema["pattern"].as_str().unwrap_or("");
    // `^prefix[class]{n}$` with a literal prefix (`^evt_[0-9a-f]{32}$`).
    if let Some(rest) = pattern.strip_prefix('^')
        && let Some(open) = rest.find('[')
        && let Some(close) = rest.find("]{")
    {
        let prefix = &rest[..open];
        let class = &rest[open + 1..close];
        let count = rest[close + 2..]
            .split([',', '}'])
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1)
            .max(2);
        let ch = if class.starts_with("0-9") { '0' } else { 'a' };
        return format!("{prefix}{}", ch.to_string().repeat(count));
    }
    "x".into()
}

fn resolve<'a>(schema: &'a Value, spec: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Every documented operation with a `{tenant}` path parameter.
fn tenant_operations() -> Vec<Op> {
    let spec: Value = serde_json::from_str(&evidentia::api::openapi_json()).unwrap();
    let mut ops = Vec::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        if !template.contains("{tenant}") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let mut path = template.clone();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                if name == "tenant" {
                    continue;
                }
                let value = sample(&p["schema"], &spec);
                match p["in"].as_str() {
                    Some("path") => path = path.replace(&format!("{{{name}}}"), &value),
                    Some("query") if p["required"] == true => query.push(format!("{name}={value}")),
                    _ => {}
                }
            }
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            let body = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|s| {
                    let schema = resolve(&Value::Object(s.clone()), &spec).clone();
                    // Bodies whose members are all optional have no example: `{}` is valid.
                    schema.get("example").cloned().unwrap_or_else(|| json!({}))
                });
            let access = evidentia::authz::route_access(method, template)
                .unwrap_or_else(|| panic!("{method} {template} is not in the access table"));
            let RouteAccess::Decided(action) = access else {
                panic!("{method} {template} names a tenant but is not decided by Cedar");
            };
            ops.push(Op {
                method: method.to_uppercase().parse().unwrap(),
                template: template.clone(),
                path,
                body,
                action,
            });
        }
    }
    assert!(
        ops.len() >= 25,
        "only {} tenant operations found",
        ops.len()
    );
    ops
}

async fn send(app: &TestApp, op: &Op, tenant: &str, token: &str) -> Resp {
    send_as(app, op, tenant, Some(token), &[]).await
}

async fn send_as(
    app: &TestApp,
    op: &Op,
    tenant: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Resp {
    let path = op.path.replace("{tenant}", tenant);
    let mut headers = extra.to_vec();
    let body = match &op.body {
        Some(b) => {
            headers.push(("content-type", "application/json"));
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    app.call(op.method.clone(), &path, token, &headers, body)
        .await
}

/// A console session of a new user of `tenant` with `roles`: (cookie, CSRF token).
async fn session(app: &TestApp, tenant: &str, roles: &[&str]) -> (String, String) {
    let password = "correct horse battery staple";
    app.post_json(
        &format!("/api/tenants/{tenant}/users"),
        &app.admin.clone(),
        json!({"username": format!("{tenant}-all"), "password": password, "roles": roles}),
    )
    .await
    .expect(201);
    let r = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            &[("content-type", "application/json")],
            json!({"username": format!("{tenant}-all"), "password": password})
                .to_string()
                .into_bytes(),
        )
        .await;
    r.expect(200);
    let cookie = r.header("set-cookie").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    (cookie, r.json()["csrf_token"].as_str().unwrap().to_string())
}

/// The answer without what differs per request (`X-Request-Id`, `Date`).
fn comparable(r: &Resp) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    headers.sort();
    (r.status, headers, r.body.clone())
}

/// A tenant role the default policies do not permit `action` to, if there is one.
fn role_without(az: &Authorizer, action: Action) -> Option<Role> {
    let kind = action.spec().resources[0];
    let resource = match kind {
        evidentia::authz::ResourceType::Log => Resource::log("acme", "evidence"),
        k => Resource::new(k, "x", "acme"),
    };
    Role::ALL
        .into_iter()
        .filter(|r| *r != Role::ApplianceAdmin)
        .find(|role| {
            let p = Principal::token("tok_probe", Some("acme"), vec![*role]);
            let ctx = RequestContext::new(Authn::Token, None).granting(&[Role::Viewer]);
            !az.decide(&p, action, &resource, &ctx).allowed
        })
}

#[tokio::test]
async fn every_tenant_operation_isolates_tenants_and_enforces_roles() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    // Globex holds every tenant role: isolation, not a missing role, must stop it.
    let all_roles = [
        "tenant-admin",
        "compliance-officer",
        "security-admin",
        "operator",
        "analyst",
        "viewer",
        "ingest",
    ];
    let intruder = app.create_token("globex", &all_roles).await;
    let (cookie, csrf) = session(&app, "globex", &all_roles).await;
    let by_session = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let az = Authorizer::new().unwrap();
    let ops = tenant_operations();
    let mut forbidden_checked = 0;
    for op in &ops {
        let label = format!("{} {}", op.method, op.template);
        let before = app.audit("globex").await.len();
        let system_before = system_log(&app).await.len();

        let cross = send(&app, op, "acme", &intruder).await;
        let missing = send(&app, op, "no-such-tenant", &intruder).await;
        cross.problem(404, "NOT_FOUND");
        assert_eq!(
            comparable(&cross),
            comparable(&missing),
            "{label}: another tenant answers unlike a missing one"
        );
        // The same through a console session.
        let cross = send_as(&app, op, "acme", None, &by_session).await;
        let missing = send_as(&app, op, "no-such-tenant", None, &by_session).await;
        cross.problem(404, "NOT_FOUND");
        assert_eq!(
            comparable(&cross),
            comparable(&missing),
            "{label}: another tenant answers a session unlike a missing one"
        );

        // The attempts are in the intruder's own trail, attributed to its token and user...
        let audit = app.audit("globex").await;
        assert!(audit.len() > before, "{label}: no audit record");
        let fresh = &audit[..audit.len() - before];
        for kind in ["token:", "user:"] {
            assert!(
                fresh
                    .iter()
                    .any(|r| r["status"] == 404 && r["actor"].as_str().unwrap().starts_with(kind)),
                "{label}: no 404 record of a {kind} principal in {fresh:?}"
            );
        }
        // ...and the cross-tenant one in the system log, with the isolation decision.
        let system = system_log(&app).await;
        assert!(
            system.len() > system_before,
            "{label}: not in the system log"
        );
        let copy = system
            .iter()
            .find(|r| {
                r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("on tenant acme"))
                    && r["route"] == op.template.as_str()
            })
            .unwrap_or_else(|| panic!("{label}: no cross-tenant record in {system:?}"));
        assert_eq!(copy["authz"]["decision"], "deny", "{label}: {copy}");
        assert!(
            copy["authz"]["policies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "evidentia.isolation"),
            "{label}: {copy}"
        );

        // A principal of the tenant without a permitting role: 403, audited.
        if let Some(role) = role_without(&az, op.action) {
            let token = app.create_token("acme", &[role.as_str()]).await;
            let r = send(&app, op, "acme", &token).await;
            r.problem(403, "FORBIDDEN");
            let newest = &app.audit("acme").await[0];
            assert_eq!(newest["status"], 403, "{label}: {newest}");
            assert_eq!(newest["action"], op.action.id(), "{label}: {newest}");
            assert_eq!(newest["authz"]["decision"], "deny", "{label}: {newest}");
            assert_eq!(
                newest["authz"]["policy_set"].as_str().map(str::len),
                Some(64),
                "{label}: {newest}"
            );
            forbidden_checked += 1;
        }
    }
    assert!(forbidden_checked >= 20, "{forbidden_checked} role checks");
}

async fn system_log(app: &TestApp) -> Vec<Value> {
    let r = app.get("/api/audit?limit=500", &app.admin.clone()).await;
    r.expect(200);
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

/// Conductor routes act in the caller's tenant: another tenant's run and artifact are
/// answered like missing ones.
#[tokio::test]
async fn another_tenants_run_answers_like_a_missing_one() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let acme = app.create_token("acme", &["tenant-admin"]).await;
    let globex = app.create_token("globex", &["tenant-admin"]).await;
    app.call(
        Method::POST,
        "/api/conductor/runs/run-7/artifacts?type=log&id=build.log",
        Some(&acme),
        &[("content-type", "text/plain")],
        b"build ok\n".to_vec(),
    )
    .await
    .expect(201);
    for (theirs, missing) in [
        (
            "/api/conductor/runs/run-7/artifacts/build.log",
            "/api/conductor/runs/run-8/artifacts/build.log",
        ),
        (
            "/api/conductor/runs/run-7/artifacts",
            "/api/conductor/runs/run-8/artifacts",
        ),
    ] {
        let a = app.get(theirs, &globex).await;
        let b = app.get(missing, &globex).await;
        assert_eq!(comparable(&a), comparable(&b), "{theirs}");
        assert_eq!(app.get(theirs, &acme).await.status, 200, "{theirs}");
    }
}

/// A request refused before its handler ran is still attributed to the token it carried.
#[tokio::test]
async fn rejections_before_the_handler_are_attributed_to_the_token() {
    let app = start().await;
    app.create_tenant("acme").await;
    let token = app.create_token("acme", &["viewer"]).await;
    let id = evidentia::identity::parse_token(&token).unwrap();
    // A parameter outside its pattern, then a method the path does not have.
    app.get("/api/tenants/acme/events/not-an-id", &token)
        .await
        .problem(400, "INVALID_PARAMETER");
    app.call(
        Method::PATCH,
        "/api/tenants/acme/events",
        Some(&token),
        &[],
        Vec::new(),
    )
    .await
    .problem(405, "METHOD_NOT_ALLOWED");
    let audit = app.audit("acme").await;
    for status in [400, 405] {
        let r = audit
            .iter()
            .find(|r| r["status"] == status)
            .unwrap_or_else(|| panic!("no {status} record in acme's trail: {audit:?}"));
        assert_eq!(r["actor"], format!("token:{id}"), "{r}");
    }
    // An invalid token stays anonymous (and lands in the system log).
    app.get("/api/tenants/acme/events/not-an-id", "evd_not-a-token")
        .await
        .problem(400, "INVALID_PARAMETER");
    let system = system_log(&app).await;
    assert!(
        system
            .iter()
            .any(|r| r["status"] == 400 && r["actor"] == "anonymous"),
        "{system:?}"
    );
}

/// Tenant policies: a hostile permit cannot reach another tenant, a forbid narrows access
/// at once, an invalid text is 422 with Cedar's diagnostics, and the set's digest is in the
/// audit record of every decision.
#[tokio::test]
async fn tenant_policies_narrow_access_and_never_cross_tenants() {
    let app = start().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let admin = app.create_token("acme", &["tenant-admin"]).await;
    let analyst = app.create_token("acme", &["analyst"]).await;
    let globex = app.create_token("globex", &["tenant-admin"]).await;
    let put = |token: String, text: &str| {
        let body = json!({ "policies": text }).to_string().into_bytes();
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                "/api/tenants/acme/policies",
                Some(&token),
                &[("content-type", "application/json")],
                body,
            )
            .await
        }
    };

    let initial = app.get("/api/tenants/acme/policies", &admin).await;
    initial.expect(200);
    let default_sha = initial.json()["policy_set_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(initial.json()["policies"], "");
    assert_eq!(initial.json()["count"], 0);

    // The analyst reads events; then acme forbids it.
    app.get("/api/tenants/acme/events", &analyst)
        .await
        .expect(200);
    let text = r#"
        @id("no-analyst-events")
        forbid (principal, action == Evidentia::Action::"events.list", resource)
        when { principal.roles.contains("analyst") };
    "#;
    let r = put(admin.clone(), text).await;
    r.expect(200);
    let sha = r.json()["policy_set_sha256"].as_str().unwrap().to_string();
    assert_ne!(sha, default_sha);
    assert_eq!(r.json()["count"], 1);
    app.get("/api/tenants/acme/events", &analyst)
        .await
        .problem(403, "FORBIDDEN");
    let denied = &app.audit("acme").await[0];
    assert_eq!(denied["authz"]["policy_set"], sha.as_str(), "{denied}");
    // Tenant policies are named by tenant and position (`@id`s need not be unique).
    assert_eq!(denied["authz"]["policies"], json!(["tenant.acme.0"]));

    // A hostile permit written by globex for itself cannot open acme.
    let hostile = r#"
        @id("open-everything")
        permit (principal, action, resource);
    "#;
    let r = app
        .call(
            Method::PUT,
            "/api/tenants/globex/policies",
            Some(&globex),
            &[("content-type", "application/json")],
            json!({ "policies": hostile }).to_string().into_bytes(),
        )
        .await;
    r.expect(200);
    app.get("/api/tenants/acme/events", &globex)
        .await
        .problem(404, "NOT_FOUND");
    app.get("/api/tenants/acme/policies", &globex)
        .await
        .problem(404, "NOT_FOUND");

    // Invalid text: 422 with diagnostics, and the stored policies stay in force.
    let r = put(
        admin.clone(),
        r#"permit (principal, action == Evidentia::Action::"no.such.action", resource);"#,
    )
    .await;
    r.problem(422, "POLICY_INVALID");
    let diagnostics = r.json()["diagnostics"].clone();
    assert!(
        diagnostics.as_array().is_some_and(|d| !d.is_empty()),
        "{diagnostics}"
    );
    assert!(diagnostics[0]["message"].is_string(), "{diagnostics}");
    let r = put(admin.clone(), "permit (principal, action, resource").await;
    r.problem(422, "POLICY_INVALID");
    assert!(r.json()["diagnostics"][0]["spans"][0]["line"].is_number());
    app.get("/api/tenants/acme/events", &analyst)
        .await
        .problem(403, "FORBIDDEN");

    // Only tenant-admin and security-admin write policies.
    put(analyst.clone(), "").await.problem(403, "FORBIDDEN");

    // Policies survive a restart, and an empty text removes them.
    let dir = app.dir.clone();
    let config = app.state.config.clone();
    let admin_token = app.admin.clone();
    app.state.store.shutdown();
    drop(app);
    let app = open(dir, config, Some(admin_token)).await;
    app.get("/api/tenants/acme/events", &analyst)
        .await
        .problem(403, "FORBIDDEN");
    let r = app
        .call(
            Method::PUT,
            "/api/tenants/acme/policies",
            Some(&admin),
            &[("content-type", "application/json")],
            json!({ "policies": "" }).to_string().into_bytes(),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json()["policy_set_sha256"], default_sha.as_str());
    app.get("/api/tenants/acme/events", &analyst)
        .await
        .expect(200);
}

/// A policy body is judged by its text, not by its JSON spelling: 10,000 characters (the
/// schema's maxLength) written as escaped surrogate pairs are 120,000 bytes, above the 64 KiB
/// of other management bodies, and still reach Cedar (422 with diagnostics); one character
/// more is refused for its length (422), and only a body past the policy cap is 413.
#[tokio::test]
async fn policy_bodies_are_judged_by_their_text_not_their_spelling() {
    let app = start().await;
    app.create_tenant("acme").await;
    let admin = app.create_token("acme", &["tenant-admin"]).await;
    let put = |body: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.call(
                Method::PUT,
                "/api/tenants/acme/policies",
                Some(&admin),
                &[("content-type", "application/json")],
                body.into_bytes(),
            )
            .await
        }
    };
    // U+1F600 as a JSON escape pair: 12 bytes a character.
    let escaped = |chars: usize| format!(r#"{{"policies":"{}"}}"#, r"\uD83D\uDE00".repeat(chars));

    let at_max = escaped(10_000);
    assert!(at_max.len() > 64 * 1024);
    let r = put(at_max).await;
    r.problem(422, "POLICY_INVALID");
    assert!(
        r.json()["diagnostics"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );

    let over_max = put(escaped(10_001)).await;
    over_max.problem(422, "POLICY_INVALID");
    assert!(
        over_max.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("10001 characters, more than 10000")),
        "{}",
        over_max.json()
    );

    put(escaped(11_000)).await.problem(413, "PAYLOAD_TOO_LARGE");
    // Other management bodies keep their 64 KiB cap.
    let big_name = format!(r#"{{"id":"big","name":"{}"}}"#, "a".repeat(70_000));
    app.call(
        Method::POST,
        "/api/tenants",
        Some(&app.admin),
        &[("content-type", "application/json")],
        big_name.into_bytes(),
    )
    .await
    .problem(413, "PAYLOAD_TOO_LARGE");
}
