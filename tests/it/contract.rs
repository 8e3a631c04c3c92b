//! The API contract (DESIGN "Conventions for every endpoint"): the generated OpenAPI document
//! documents every operation fully, problem codes come from the one table, JSON in is strict,
//! JSON out never carries `null` (checked for every response in `common::TestApp::call`).

use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;
use evidentia::api::code::Code;

fn spec() -> Value {
    serde_json::from_str(&evidentia::api::openapi_json()).expect("spec is JSON")
}

#[test]
fn every_operation_has_an_operation_id_and_documented_errors() {
    let spec = spec();
    let mut ids = std::collections::HashSet::new();
    let mut count = 0;
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            count += 1;
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{id} is not camelCase"
            );
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{id}: no summary");
            assert!(op["description"].is_string(), "{id}: no description");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{id}: no tag"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                !responses.contains_key("default"),
                "{id}: a `default` response"
            );
            let errors: Vec<&String> = responses
                .keys()
                .filter(|s| s.starts_with('4') || s.starts_with('5'))
                .collect();
            assert!(!errors.is_empty(), "{id}: no documented error response");
            for status in &errors {
                let content = &responses[status.as_str()]["content"];
                assert!(
                    content["application/problem+json"].is_object(),
                    "{id} {status}: not application/problem+json"
                );
            }
            for (status, r) in responses {
                assert!(
                    r["headers"]["X-Request-Id"].is_object(),
                    "{id} {status}: X-Request-Id not documented"
                );
                for (ct, _) in r["content"].as_object().into_iter().flatten() {
                    assert_ne!(ct, "*/*", "{id} {status}: */* response");
                }
            }
            if let Some(429) = responses.keys().find(|s| *s == "429").map(|_| 429) {
                for h in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
                    assert!(
                        responses["429"]["headers"][h].is_object(),
                        "{id}: 429 without {h}"
                    );
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(
                    p["description"].is_string(),
                    "{id}: parameter {} undocumented",
                    p["name"]
                );
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                assert!(!content.contains_key("*/*"), "{id}: */* request body");
            }
        }
    }
    assert!(count >= 35, "only {count} operations");
}

#[test]
fn problem_code_enum_is_the_code_table() {
    let spec = spec();
    let listed: Vec<String> = spec["components"]["schemas"]["Code"]["enum"]
        .as_array()
        .expect("Problem.code is an enum")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    let table: Vec<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(listed, table);
    let code = &spec["components"]["schemas"]["Problem"]["properties"]["code"];
    let reference = code["$ref"].as_str().or(code["allOf"][0]["$ref"].as_str());
    assert_eq!(reference, Some("#/components/schemas/Code"), "{code}");
}

#[test]
fn docs_errors_md_is_generated_from_the_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == Code::markdown_table(),
        "docs/errors.md is out of date: run `cargo run -- errors > docs/errors.md`"
    );
}

#[tokio::test]
async fn wrong_json_types_are_400_naming_the_field() {
    let app = start().await;
    for body in [
        json!({"id": 12345, "name": "Acme"}),
        json!({"id": true, "name": "Acme"}),
        json!({"id": ["acme"], "name": "Acme"}),
    ] {
        let r = app.post_json("/api/tenants", &app.admin, body).await;
        r.problem(400, "INVALID_BODY");
        assert!(
            r.json()["detail"].as_str().unwrap_or("").starts_with("id:"),
            "{}",
            r.json()
        );
    }
    let r = app
        .post_json(
            "/api/tenants/default/tokens",
            &app.admin,
            json!({"name": "x", "roles": ["viewer"], "expires_in_days": "90"}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("expires_in_days")
    );
    // Nothing was created.
    let r = app.get("/api/tenants", &app.admin).await;
    assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn duplicate_keys_are_400() {
    let app = start().await;
    let r = app
        .call(
            Method::POST,
            "/api/tenants",
            Some(&app.admin),
            &[("content-type", "application/json")],
            br#"{"id":"acme","id":"beta","name":"Acme"}"#.to_vec(),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("duplicate key `id`")
    );
    assert_eq!(app.get("/api/tenants/acme", &app.admin).await.status, 404);
    assert_eq!(app.get("/api/tenants/beta", &app.admin).await.status, 404);
}

#[tokio::test]
async fn null_members_are_400_naming_the_member() {
    let app = start().await;
    let r = app
        .post_json(
            "/api/tenants/default/webhook-sources",
            &app.admin,
            json!({"provider": "github", "secret": null}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("`secret` is null"),
        "{:?}",
        r.json()
    );
    let r = app
        .post_json(
            "/api/tenants/default/tokens",
            &app.admin,
            json!({"name": "ci", "roles": ["viewer"], "expires_in_days": null}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    let r = app.get("/api/tenants/default/tokens", &app.admin).await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|t| t["name"] != "ci")),
        "no token was created"
    );
}

#[tokio::test]
async fn token_roles_are_tenant_roles_and_at_most_eight() {
    let app = start().await;
    let r = app
        .post_json(
            "/api/tenants/default/tokens",
            &app.admin,
            json!({"name": "ci", "roles": vec![json!("viewer"); 9]}),
        )
        .await;
    r.problem(422, "INVALID_ROLE");
    let r = app
        .post_json(
            "/api/tenants/default/tokens",
            &app.admin,
            json!({"name": "ci", "roles": ["appliance-admin"]}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("roles[0]: unknown variant `appliance-admin`"),
        "{:?}",
        r.json()
    );
    let r = app
        .post_json(
            "/api/tenants/default/tokens",
            &app.admin,
            json!({"name": "ci", "roles": ["viewer", "viewer", "ingest"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["roles"], json!(["viewer", "ingest"]));
}

#[tokio::test]
async fn unknown_fields_are_400_naming_the_field() {
    let app = start().await;
    let r = app
        .post_json(
            "/api/tenants",
            &app.admin,
            json!({"id": "acme", "name": "Acme", "plan": "gold"}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(r.json()["detail"].as_str().unwrap_or("").contains("`plan`"));
    let r = app
        .post_json(
            "/api/tenants/default/webhook-sources",
            &app.admin,
            json!({"provider": "github", "secrett": "0123456789abcdef0123"}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("`secrett`")
    );
    // A value outside an enum names the field too.
    let r = app
        .post_json(
            "/api/tenants/default/webhook-sources",
            &app.admin,
            json!({"provider": "gitlab"}),
        )
        .await;
    r.problem(400, "INVALID_BODY");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("provider:")
    );
}

#[tokio::test]
async fn control_bidi_and_invisible_characters_in_names_are_422() {
    let app = start().await;
    for name in [
        "Ac\u{0}me",
        "Acme\u{202E}moc",
        "Ac\u{200B}me",
        "Acme\u{2066}",
        "Ac\nme",
    ] {
        let r = app
            .post_json(
                "/api/tenants",
                &app.admin,
                json!({"id": "acme", "name": name}),
            )
            .await;
        r.problem(422, "INVALID_NAME");
        let r = app
            .post_json(
                "/api/tenants/default/tokens",
                &app.admin,
                json!({"name": name, "roles": ["viewer"]}),
            )
            .await;
        r.problem(422, "INVALID_NAME");
    }
    app.post_json(
        "/api/tenants",
        &app.admin,
        json!({"id": "acme", "name": "Ünïcödé 名前"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let app = start().await;
    let other = app.create_token("default", &["viewer"]).await;
    for path in ["/api/tenants", "/api/tenants/default/events"] {
        let r = app
            .call(
                Method::GET,
                path,
                Some(&app.admin),
                &[("authorization", &format!("Bearer {other}"))],
                Vec::new(),
            )
            .await;
        r.problem(400, "AUTHORIZATION_HEADER_INVALID");
    }
}

#[tokio::test]
async fn method_not_allowed_carries_allow() {
    let app = start().await;
    let r = app
        .call(
            Method::DELETE,
            "/api/tenants",
            Some(&app.admin),
            &[],
            Vec::new(),
        )
        .await;
    r.problem(405, "METHOD_NOT_ALLOWED");
    let allow = r.header("allow").expect("Allow header");
    for m in ["GET", "POST"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }
    let r = app
        .call(
            Method::PUT,
            "/api/tenants/default/events/evt_00000000000000000000000000000000",
            Some(&app.admin),
            &[],
            Vec::new(),
        )
        .await;
    r.problem(405, "METHOD_NOT_ALLOWED");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
}

#[tokio::test]
async fn parameter_errors_name_the_parameter() {
    let app = start().await;
    let cases = [
        ("/api/tenants/default/logs/audit/entries/abc", "`index`"),
        ("/api/tenants/default/logs/ledger/checkpoint", "`log`"),
        ("/api/tenants/Default/events", "`tenant`"),
        ("/api/tenants/default/events?limit=0", "`limit`"),
        ("/api/tenants/default/events?limit=501", "`limit`"),
        ("/api/tenants/default/events?cursor=x", "`cursor`"),
        ("/api/tenants/default/insights?status=MAYBE", "`status`"),
        (
            "/api/tenants/default/logs/audit/proofs/inclusion",
            "`index`",
        ),
        ("/api/tenants/default/events/not-an-event-id", "`id`"),
    ];
    for (path, name) in cases {
        let r = app.get(path, &app.admin).await;
        r.problem(400, "INVALID_PARAMETER");
        let detail = r.json()["detail"].as_str().unwrap_or("").to_string();
        assert!(detail.contains(name), "{path}: {detail}");
        assert!(
            !detail.contains("param0") && !detail.contains("param1"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn optional_fields_are_absent_not_null() {
    let app = start().await;
    // A token that is neither revoked nor has a generated secret shown.
    let r = app
        .post_json(
            "/api/tenants/default/tokens",
            &app.admin,
            json!({"name": "viewer", "roles": ["viewer"]}),
        )
        .await;
    r.expect(201);
    let r = app.get("/api/tenants/default/tokens", &app.admin).await;
    let first = &r.json()["items"][0];
    assert!(first.get("revoked_at").is_none(), "{first}");
    // A github source: no generic settings, no generated secret.
    let s = app
        .create_source(
            "default",
            json!({"provider": "github", "secret": "my-github-webhook-secret"}),
        )
        .await;
    for k in ["header", "encoding", "prefix", "secret"] {
        assert!(s.get(k).is_none(), "{k} in {s}");
    }
    // Lists without a next page have no next_cursor.
    let r = app.get("/api/tenants/default/events", &app.admin).await;
    assert!(r.json().get("next_cursor").is_none());
    // Problems, too, are complete without nulls.
    let r = app.get("/api/tenants/nope", &app.admin).await;
    r.problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn names_with_white_space_at_either_end_are_422_and_nothing_is_created() {
    let app = start().await;
    for name in [" Acme", "Acme ", "\u{3000}", "Acme\u{200B}"] {
        let r = app
            .post_json(
                "/api/tenants",
                &app.admin,
                json!({"id": "acme", "name": name}),
            )
            .await;
        r.problem(422, "INVALID_NAME");
    }
    assert_eq!(app.get("/api/tenants/acme", &app.admin).await.status, 404);
    let r = app
        .post_json(
            "/api/tenants",
            &app.admin,
            json!({"id": "acme", "name": "Acme Corp"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["name"], "Acme Corp");
}

/// Every operation declared in `src/api` is in the generated spec. poem-openapi keeps one
/// entry per path, so two API impls declaring methods of the same path would silently drop
/// one of them from the spec (found when `PATCH /api/tenants/{tenant}` hid its `GET`).
#[test]
fn every_declared_operation_is_in_the_spec() {
    let spec: serde_json::Value = serde_json::from_str(&evidentia::api::openapi_json()).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut declared = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("path = \"") {
            rest = &rest[i + 8..];
            let path = &rest[..rest.find('"').unwrap()];
            let m = rest.find("method = \"").unwrap() + 10;
            let method = &rest[m..m + rest[m..].find('"').unwrap()];
            // poem's `:name` segments are `{name}` in the spec.
            let spec_path: String = path
                .split('/')
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/");
            assert!(
                spec["paths"][&spec_path][method].is_object(),
                "{method} {spec_path} is declared but not in the spec"
            );
            declared += 1;
        }
    }
    assert!(declared > 50, "{declared}");
}
