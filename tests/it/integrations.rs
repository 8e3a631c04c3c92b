//! Integrations end to end through the API: registration rules (the SSRF table), sealed
//! credentials, deliveries enqueued with what they report, signed and verified by the
//! Standard Webhooks reference library, the schedule, `Retry-After`, 410 and the breaker on the
//! manual clock, DNS rebinding caught at connect time, OCSF and Splunk HEC SIEMs, redeliver
//! and test sends, tenant isolation.
//!
//! Receivers listen on 127.0.0.1, reachable only through the test allow-list
//! (`delivery.allow_addresses`, `delivery.allow_http_hosts`); the rebinding test runs without
//! it and proves nothing connects.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use evidentia::config::Config;
use evidentia::delivery::client::{Resolve, ResolveFuture};
use poem::http::Method;
use serde_json::{Value, json};

use super::common::*;
use super::delivery::{Handler, Receiver, fixed, schema, verify_with_reference_library};

fn lab(c: &mut Config) {
    c.delivery.allow_addresses = vec!["127.0.0.1".into()];
    c.delivery.allow_http_hosts = vec!["127.0.0.1".into()];
    c.delivery.hec_ack_interval_ms = 10;
}

async fn lab_app() -> TestApp {
    let app = start_with(lab).await;
    app.create_tenant("acme").await;
    app
}

impl TestApp {
    async fn integration(&self, tenant: &str, spec: Value) -> Value {
        let r = self
            .post_json(
                &format!("/api/tenants/{tenant}/integrations"),
                &self.admin.clone(),
                spec,
            )
            .await;
        r.expect(201);
        r.json()
    }

    async fn round(&self) -> evidentia::delivery::worker::RoundReport {
        let clock: evidentia::clock::SharedClock = self.clock.clone();
        self.state
            .delivery
            .round(&self.state.store, &clock)
            .await
            .expect("round")
    }

    async fn deliveries(&self, tenant: &str, id: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/tenants/{tenant}/integrations/{id}/deliveries?limit=500"),
                &self.admin.clone(),
            )
            .await;
        r.expect(200);
        r.json()["items"].as_array().cloned().unwrap_or_default()
    }

    /// A webhook to the tenant's standard source, signed.
    async fn ingest(&self, tenant: &str, source: &Value, n: usize) {
        let id = source["id"].as_str().unwrap();
        let secret = source["secret"].as_str().unwrap();
        for i in 0..n {
            let body = format!(r#"{{"n":{i}}}"#);
            let msg_id = format!("msg_{tenant}_{i}_{}", rand::random::<u32>());
            let now = evidentia::clock::Clock::now_unix(&*self.clock);
            let ts = now.to_string();
            let sig = evidentia::delivery::sign::WebhookSecret::parse(secret)
                .unwrap()
                .sign(&msg_id, now, body.as_bytes());
            self.call(
                Method::POST,
                &format!("/webhooks/{id}/events"),
                None,
                &[
                    ("webhook-id", &msg_id),
                    ("webhook-timestamp", &ts),
                    ("webhook-signature", &sig),
                    ("content-type", "application/json"),
                ],
                body.into_bytes(),
            )
            .await
            .expect(200);
        }
    }
}

fn url(r: &Receiver, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", r.port)
}

#[tokio::test]
async fn an_integration_is_created_its_secret_shown_once_and_sealed_at_rest() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(204, &[], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "SOC", "url": url(&rx, "/hook"), "event_types": ["audit.recorded"],
                   "headers": {"X-Team": "receiver-credential-12345"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["breaker"], "closed");
    assert_eq!(created["kind"], "webhook");
    assert_eq!(created["headers"], json!(["x-team"]), "names only");

    let got = app
        .get(&format!("/api/tenants/acme/integrations/{id}"), &app.admin)
        .await;
    got.expect(200);
    assert!(
        got.json().get("secret").is_none(),
        "the secret is shown once"
    );
    let list = app.get("/api/tenants/acme/integrations", &app.admin).await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 1);

    // Another tenant sees nothing: 404, exactly like a missing id.
    app.create_tenant("globex").await;
    app.get(
        &format!("/api/tenants/globex/integrations/{id}"),
        &app.admin,
    )
    .await
    .problem(404, "NOT_FOUND");
    let other = app.create_token("globex", &["tenant-admin"]).await;
    app.get(&format!("/api/tenants/acme/integrations/{id}"), &other)
        .await
        .expect(404);

    // Rotation: a new secret, the old one keeps signing for 24 h.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/tenants/acme/integrations/{id}"),
            Some(&app.admin),
            &[("content-type", "application/json")],
            json!({"rotate_secret": true}).to_string().into_bytes(),
        )
        .await;
    r.expect(200);
    let rotated = r.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(rotated, secret);
    let slots = r.json()["secret_slots"].as_array().unwrap().clone();
    assert_eq!(slots.len(), 2);
    assert!(slots[0].get("expires_at").is_some());

    // Neither secret is in the database file in clear.
    app.state.store.shutdown();
    let db = std::fs::read(app.dir.path().join("data").join("evidentia.redb")).unwrap();
    let header_value = "receiver-credential-12345".to_string();
    assert!(
        !db.windows(header_value.len())
            .any(|w| w == header_value.as_bytes()),
        "an extra header's value is stored in clear"
    );
    for s in [&secret, &rotated] {
        let b64 = s.trim_start_matches("whsec_");
        assert!(
            !db.windows(b64.len()).any(|w| w == b64.as_bytes()),
            "a secret is stored in clear"
        );
    }
}

#[tokio::test]
async fn deliveries_carry_what_was_acknowledged_signed_for_the_reference_library() {
    let app = lab_app().await;
    // The reference library checks `webhook-timestamp` against the real time (±5 min).
    let real_now = evidentia::clock::Clock::now_unix(&evidentia::clock::SystemClock);
    app.clock.set(real_now);
    let rx = Receiver::start("127.0.0.1", fixed(200, &[], "ok")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "all", "url": url(&rx, "/in"),
                   "event_types": ["event.received", "audit.recorded", "checkpoint.signed"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let source = app
        .create_source("acme", json!({"provider": "standard"}))
        .await;
    app.ingest("acme", &source, 3).await;
    let report = app.round().await;
    assert!(report.attempted >= 3 + 2, "{report:?}");
    assert_eq!(report.attempted, report.delivered);

    let got = rx.requests();
    let types: Vec<String> = got
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["type"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "event.received").count(),
        3,
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "checkpoint.signed"));
    assert!(types.iter().any(|t| t == "audit.recorded"));
    for r in &got {
        assert_eq!(r.path, "/in");
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(r.headers["webhook-id"].starts_with("dlv_"));
        verify_with_reference_library(secret, r);
    }
    // An event's message holds its evidence-log entry: the leaf hash is recomputable.
    let event = got
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|v| v["type"] == "event.received")
        .unwrap();
    assert_eq!(event["data"]["log"], "evidence");
    assert_eq!(event["data"]["entry"]["type"], "webhook");
    assert_eq!(event["data"]["tenant"], "acme");

    let deliveries = app.deliveries("acme", id).await;
    assert_eq!(deliveries.len(), got.len());
    for d in &deliveries {
        assert_eq!(d["status"], "delivered");
        assert_eq!(d["attempts"][0]["status"], 200);
        assert_eq!(d["attempts"][0]["excerpt"], "ok");
    }
    let ids: std::collections::BTreeSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for r in &got {
        assert!(ids.contains(r.headers["webhook-id"].as_str()));
    }
    // What was delivered is not delivered again (only the listing's own audit record and
    // checkpoint are new).
    let again = app.round().await;
    assert!(again.attempted <= 2, "{again:?}");
}

#[tokio::test]
async fn the_schedule_retry_after_and_410_run_on_the_manual_clock() {
    let app = lab_app().await;
    let answers = Arc::new(Mutex::new(vec![
        (503u16, vec![("Retry-After".to_string(), "600".to_string())]),
        (500, vec![]),
        (200, vec![]),
    ]));
    let a = answers.clone();
    let handler: Handler = Arc::new(move |_| {
        let mut a = a.lock().unwrap();
        let (s, h) = if a.is_empty() {
            (410, vec![])
        } else {
            a.remove(0)
        };
        (s, h, Vec::new())
    });
    let rx = Receiver::start("127.0.0.1", handler).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "flaky", "url": url(&rx, "/"), "event_types": ["event.received"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let test = app
        .post_json(
            &format!("/api/tenants/acme/integrations/{id}/test"),
            &app.admin,
            json!({}),
        )
        .await;
    test.expect(202);
    let dlv = test.json()["id"].as_str().unwrap().to_string();
    let find = |list: &[Value]| {
        list.iter()
            .find(|d| d["id"] == dlv.as_str())
            .cloned()
            .unwrap()
    };

    // 503 with Retry-After: 600 → not before 600 s, although the table says 5 s.
    app.round().await;
    let d = find(&app.deliveries("acme", &id).await);
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"][0]["status"], 503);
    let next = time::OffsetDateTime::parse(
        d["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!(next >= NOW + 600, "Retry-After honoured: {next}");
    app.clock.advance(599);
    let before = rx.requests().len();
    app.round().await;
    assert_eq!(
        rx.requests().iter().filter(|r| r.path == "/").count() - before,
        rx.requests().len() - before
    );
    assert_eq!(
        find(&app.deliveries("acme", &id).await)["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "not due yet"
    );
    // 500 → the table's third delay (5 min ± 20 %) after the next one.
    app.clock.advance(1);
    app.round().await;
    let d = find(&app.deliveries("acme", &id).await);
    assert_eq!(d["attempts"][1]["status"], 500);
    app.clock.advance(360);
    app.round().await;
    let d = find(&app.deliveries("acme", &id).await);
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3);
    // Every attempt of one delivery carried the same webhook-id.
    let ids: std::collections::BTreeSet<String> = rx
        .requests()
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"] == "integration.test")
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1);

    // 410 Gone disables the integration at once, audited; its pending deliveries wait.
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(202);
    for _ in 0..3 {
        app.round().await;
        app.clock.advance(1);
    }
    let got = app
        .get(&format!("/api/tenants/acme/integrations/{id}"), &app.admin)
        .await;
    assert_eq!(got.json()["status"], "disabled");
    assert_eq!(got.json()["disabled_reason"], "gone");
    let audit = app.audit("acme").await;
    assert!(
        audit
            .iter()
            .any(|a| a["action"] == "integration.disabled" && a["resource"] == id.as_str()),
        "the disable is audited"
    );
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &app.admin,
        json!({}),
    )
    .await
    .problem(409, "INTEGRATION_DISABLED");
    // Enabling resumes the pending deliveries.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/tenants/acme/integrations/{id}"),
            Some(&app.admin),
            &[("content-type", "application/json")],
            json!({"enabled": true}).to_string().into_bytes(),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json()["status"], "enabled");
    assert!(app.round().await.attempted >= 1);
}

#[tokio::test]
async fn the_breaker_opens_holds_deliveries_and_is_audited() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(500, &[], "down")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "down", "url": url(&rx, "/"), "event_types": ["event.received"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    for _ in 0..12 {
        app.post_json(
            &format!("/api/tenants/acme/integrations/{id}/test"),
            &app.admin,
            json!({}),
        )
        .await
        .expect(202);
    }
    let first = app.round().await;
    assert_eq!(
        first.attempted, 10,
        "the breaker opens after 10 failures: {first:?}"
    );
    assert_eq!(first.held, 2, "the other two are held: {first:?}");
    let got = app
        .get(&format!("/api/tenants/acme/integrations/{id}"), &app.admin)
        .await;
    assert_eq!(got.json()["breaker"], "open");
    let connections = rx.connections.load(Ordering::SeqCst);
    // Held: nothing goes out while it is open.
    app.clock.advance(30);
    app.round().await;
    assert_eq!(rx.connections.load(Ordering::SeqCst), connections);
    let audit = app.audit("acme").await;
    assert!(
        audit
            .iter()
            .any(|a| a["action"] == "integration.breaker.open" && a["resource"] == id.as_str()),
        "the breaker opening is audited"
    );
}

/// Resolves every name to `public` for the first `public_answers` lookups, then to 127.0.0.1
/// (a rebinding DNS).
#[derive(Debug)]
struct Rebinding {
    calls: AtomicUsize,
    public_answers: usize,
}

impl Resolve for Rebinding {
    fn resolve(&self, _host: &str) -> ResolveFuture {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let ip: IpAddr = if n < self.public_answers {
            "93.184.216.34".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        Box::pin(async move { Ok(vec![ip]) })
    }
}

#[tokio::test]
async fn a_name_rebound_to_loopback_after_registration_is_never_connected() {
    let resolver = Arc::new(Rebinding {
        calls: AtomicUsize::new(0),
        public_answers: 1,
    });
    let app = start_with_resolver(|_| {}, resolver.clone()).await;
    app.create_tenant("acme").await;
    // Something listens on the loopback port the rebinding points at.
    let rx = Receiver::start("127.0.0.1", fixed(200, &[], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "rebind", "url": format!("https://hooks.example.com:{}/x", rx.port),
                   "event_types": ["event.received"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        resolver.calls.load(Ordering::SeqCst),
        1,
        "checked at registration"
    );
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(202);
    let report = app.round().await;
    assert_eq!(report.attempted, 1);
    assert_eq!(report.delivered, 0);
    assert_eq!(
        rx.connections.load(Ordering::SeqCst),
        0,
        "no connection to 127.0.0.1"
    );
    let d = app.deliveries("acme", &id).await;
    let attempt = &d[0]["attempts"][0];
    assert_eq!(attempt["error"], "blocked_address", "{attempt}");
    assert!(attempt["detail"].as_str().unwrap().contains("127.0.0.1"));

    // At registration, a name that resolves to an internal address now is refused.
    let r = app
        .post_json(
            "/api/tenants/acme/integrations",
            &app.admin,
            json!({"name": "x", "url": "https://internal.example.com/", "event_types": ["audit.recorded"]}),
        )
        .await;
    r.problem(422, "INTEGRATION_INVALID");
    assert_eq!(r.json()["reason"], "url_resolves_blocked");
}

/// At least 40 URLs an attacker would try, each refused at registration with its reason.
#[tokio::test]
async fn the_ssrf_table_is_refused_at_registration_with_reasons() {
    let app = start().await;
    app.create_tenant("acme").await;
    let table: &[(&str, &str)] = &[
        ("http://example.com/", "url_plain_http"),
        ("ftp://example.com/", "url_scheme"),
        ("file:///etc/passwd", "url_scheme"),
        ("gopher://example.com/", "url_scheme"),
        ("https://user:pass@example.com/", "url_userinfo"),
        ("https://example.com@127.0.0.1/", "url_userinfo"),
        ("https://example.com/#frag", "url_fragment"),
        ("https://localhost/", "url_localhost"),
        ("https://LOCALHOST./", "url_localhost"),
        ("https://api.localhost/", "url_localhost"),
        ("https://127.0.0.1/", "url_blocked_address"),
        ("https://127.1/", "url_blocked_address"),
        ("https://2130706433/", "url_blocked_address"),
        ("https://0x7f000001/", "url_blocked_address"),
        ("https://017700000001/", "url_blocked_address"),
        ("https://0x7f.1/", "url_blocked_address"),
        ("https://0/", "url_blocked_address"),
        ("https://0.0.0.0/", "url_blocked_address"),
        ("https://0.1.2.3/", "url_blocked_address"),
        ("https://10.0.0.1/", "url_blocked_address"),
        ("https://172.16.0.1/", "url_blocked_address"),
        ("https://192.168.1.1/", "url_blocked_address"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "url_blocked_address",
        ),
        ("https://100.64.0.1/", "url_blocked_address"),
        ("https://192.0.0.1/", "url_blocked_address"),
        ("https://198.18.0.1/", "url_blocked_address"),
        ("https://192.0.2.1/", "url_blocked_address"),
        ("https://203.0.113.5/", "url_blocked_address"),
        ("https://224.0.0.1/", "url_blocked_address"),
        ("https://255.255.255.255/", "url_blocked_address"),
        ("https://[::1]/", "url_blocked_address"),
        ("https://[::]/", "url_blocked_address"),
        ("https://[::ffff:127.0.0.1]/", "url_blocked_address"),
        ("https://[::ffff:7f00:1]/", "url_blocked_address"),
        ("https://[::127.0.0.1]/", "url_blocked_address"),
        ("https://[64:ff9b::7f00:1]/", "url_blocked_address"),
        ("https://[64:ff9b:1::a00:1]/", "url_blocked_address"),
        ("https://[2002:7f00:1::]/", "url_blocked_address"),
        ("https://[2002:a9fe:a9fe::]/", "url_blocked_address"),
        ("https://[fd00:ec2::254]/", "url_blocked_address"),
        ("https://[fc00::1]/", "url_blocked_address"),
        ("https://[fe80::1]/", "url_blocked_address"),
        ("https://[ff02::1]/", "url_blocked_address"),
        ("https://[2001:db8::1]/", "url_blocked_address"),
        (
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "url_blocked_address",
        ),
        ("not a url", "url_unparseable"),
    ];
    assert!(table.len() >= 40);
    for (u, reason) in table {
        let r = app
            .post_json(
                "/api/tenants/acme/integrations",
                &app.admin,
                json!({"name": "x", "url": u, "event_types": ["audit.recorded"]}),
            )
            .await;
        assert_eq!(r.status, 422, "{u}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.code(), "INTEGRATION_INVALID", "{u}");
        assert_eq!(r.json()["reason"], *reason, "{u}");
    }
    assert!(
        app.get("/api/tenants/acme/integrations", &app.admin)
            .await
            .json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Reserved headers, unknown types, a secret of the wrong form, HEC fields on a webhook.
    for (spec, reason) in [
        (
            json!({"name": "x", "url": "https://example.com/", "event_types": ["audit.recorded"],
                   "headers": {"Webhook-Signature": "v1,forged"}}),
            "header_reserved",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "event_types": ["audit.recorded"],
                   "headers": {"Host": "internal"}}),
            "header_reserved",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "event_types": ["everything"]}),
            "event_types",
        ),
        (
            json!({"name": "x", "kind": "siem-ocsf", "url": "https://example.com/",
                   "event_types": ["event.received"]}),
            "event_types",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "event_types": ["audit.recorded"],
                   "secret": "not-a-whsec"}),
            "secret",
        ),
        (
            json!({"name": "x", "kind": "splunk-hec", "url": "https://example.com/",
                   "event_types": ["audit.recorded"]}),
            "hec_token",
        ),
        (
            json!({"name": "x", "kind": "splunk-hec", "url": "https://example.com/",
                   "event_types": ["audit.recorded"], "hec_token": "t0k3n",
                   "headers": {"Authorization": "Bearer x"}}),
            "header_reserved",
        ),
    ] {
        let r = app
            .post_json("/api/tenants/acme/integrations", &app.admin, spec.clone())
            .await;
        r.problem(422, "INTEGRATION_INVALID");
        assert_eq!(r.json()["reason"], reason, "{spec}");
    }
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let app = lab_app().await;
    let internal = Receiver::start("127.0.0.1", fixed(200, &[], "")).await;
    let target = format!("http://127.0.0.1:{}/internal", internal.port);
    let rx = Receiver::start("127.0.0.1", fixed(302, &[("Location", &target)], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "r", "url": url(&rx, "/"), "event_types": ["audit.recorded"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(202);
    app.round().await;
    assert_eq!(internal.connections.load(Ordering::SeqCst), 0);
    let d = app.deliveries("acme", id).await;
    assert_eq!(d[0]["attempts"][0]["error"], "redirect");
    assert_eq!(d[0]["status"], "pending");
}

#[tokio::test]
async fn redeliver_sends_again_with_the_same_webhook_id() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(200, &[], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "r", "url": url(&rx, "/"), "event_types": ["audit.recorded"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let t = app
        .post_json(
            &format!("/api/tenants/acme/integrations/{id}/test"),
            &app.admin,
            json!({}),
        )
        .await;
    let dlv = t.json()["id"].as_str().unwrap().to_string();
    app.round().await;
    let r = app
        .post_json(
            &format!("/api/tenants/acme/integrations/{id}/deliveries/{dlv}/redeliver"),
            &app.admin,
            json!({}),
        )
        .await;
    r.expect(202);
    assert_eq!(r.json()["status"], "pending");
    app.round().await;
    let sent: Vec<String> = rx
        .requests()
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"] == "integration.test")
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(sent, vec![dlv.clone(), dlv.clone()]);
    // Another tenant's id, or a made-up one, is 404.
    app.create_tenant("globex").await;
    app.post_json(
        &format!("/api/tenants/globex/integrations/{id}/deliveries/{dlv}/redeliver"),
        &app.admin,
        json!({}),
    )
    .await
    .problem(404, "NOT_FOUND");
    app.post_json(
        &format!(
            "/api/tenants/acme/integrations/{id}/deliveries/dlv_{}/redeliver",
            "0".repeat(32)
        ),
        &app.admin,
        json!({}),
    )
    .await
    .problem(404, "NOT_FOUND");
    // Deleting the integration drops its deliveries.
    app.call(
        Method::DELETE,
        &format!("/api/tenants/acme/integrations/{id}"),
        Some(&app.admin),
        &[],
        Vec::new(),
    )
    .await
    .expect(204);
    app.get(
        &format!("/api/tenants/acme/integrations/{id}/deliveries"),
        &app.admin,
    )
    .await
    .problem(404, "NOT_FOUND");
    assert_eq!(app.state.store.waiting_deliveries().unwrap(), 0);
}

#[tokio::test]
async fn an_ocsf_siem_gets_audit_records_that_validate_against_their_class() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(200, &[], "")).await;
    app.integration(
        "acme",
        json!({"name": "siem", "kind": "siem-ocsf", "url": url(&rx, "/ocsf"),
               "event_types": ["audit.recorded"]}),
    )
    .await;
    // API activity (a read) and an authentication failure.
    app.get("/api/tenants/acme/events", &app.admin)
        .await
        .expect(200);
    app.get("/api/tenants/acme/events", "evd_wrong").await;
    app.round().await;
    let events: Vec<Value> = rx
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(!events.is_empty());
    let mut classes = std::collections::BTreeSet::new();
    for e in &events {
        let class = e["class_uid"].as_u64().unwrap();
        classes.insert(class);
        let name = match class {
            6003 => "api_activity",
            3002 => "authentication",
            2004 => "detection_finding",
            other => panic!("unexpected class {other}"),
        };
        let v = schema(name);
        assert!(v.is_valid(e), "{name}: {e}");
        assert_eq!(e["metadata"]["tenant_uid"], "acme");
        assert_eq!(e["metadata"]["product"]["name"], "Evidentia");
    }
    assert!(classes.contains(&6003), "{classes:?}");
}

#[tokio::test]
async fn a_splunk_hec_gets_batched_envelopes_with_its_token_and_the_ack_flow() {
    let app = lab_app().await;
    let acked = Arc::new(AtomicUsize::new(0));
    let a = acked.clone();
    let handler: Handler = Arc::new(move |r| {
        if r.path == "/services/collector/ack" {
            // Not yet on the first poll, then indexed.
            let n = a.fetch_add(1, Ordering::SeqCst);
            let v = n > 0;
            (
                200,
                vec![],
                format!(r#"{{"acks":{{"7":{v}}}}}"#).into_bytes(),
            )
        } else {
            (
                200,
                vec![],
                br#"{"text":"Success","code":0,"ackId":7}"#.to_vec(),
            )
        }
    });
    let rx = Receiver::start("127.0.0.1", handler).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "splunk", "kind": "splunk-hec",
                   "url": url(&rx, "/services/collector/event"),
                   "event_types": ["audit.recorded", "checkpoint.signed"],
                   "hec_token": "11111111-2222-3333-4444-555555555555",
                   "hec_index": "evidentia", "hec_ack": true}),
        )
        .await;
    assert!(created.get("secret").is_none());
    let id = created["id"].as_str().unwrap();
    for _ in 0..3 {
        app.get("/api/tenants/acme/events", &app.admin)
            .await
            .expect(200);
    }
    let report = app.round().await;
    assert!(report.attempted >= 3);
    assert_eq!(report.delivered, report.attempted);
    let reqs = rx.requests();
    let events: Vec<&_> = reqs
        .iter()
        .filter(|r| r.path == "/services/collector/event")
        .collect();
    assert_eq!(events.len(), 1, "one batch");
    let e = events[0];
    assert_eq!(
        e.headers["authorization"],
        "Splunk 11111111-2222-3333-4444-555555555555"
    );
    assert!(e.headers.contains_key("x-splunk-request-channel"));
    let lines: Vec<Value> = std::str::from_utf8(&e.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), report.attempted);
    for l in &lines {
        for k in [
            "time",
            "host",
            "source",
            "sourcetype",
            "index",
            "event",
            "fields",
        ] {
            assert!(l.get(k).is_some(), "{k} missing in {l}");
        }
        assert_eq!(l["index"], "evidentia");
    }
    assert!(lines.iter().any(|l| l["sourcetype"] == "evidentia:audit"));
    assert!(
        reqs.iter()
            .filter(|r| r.path == "/services/collector/ack")
            .count()
            >= 2,
        "polled until indexed"
    );
    assert!(
        app.deliveries("acme", id)
            .await
            .iter()
            .all(|d| d["status"] == "delivered")
    );
    // The token is sealed at rest.
    app.state.store.shutdown();
    let db = std::fs::read(app.dir.path().join("data").join("evidentia.redb")).unwrap();
    let token = b"11111111-2222-3333-4444-555555555555";
    assert!(!db.windows(token.len()).any(|w| w == token));
}

#[tokio::test]
async fn roles_decide_who_manages_integrations() {
    let app = lab_app().await;
    let viewer = app.create_token("acme", &["viewer"]).await;
    let operator = app.create_token("acme", &["operator"]).await;
    let security = app.create_token("acme", &["security-admin"]).await;
    let spec =
        json!({"name": "x", "url": "http://127.0.0.1:9/", "event_types": ["audit.recorded"]});
    app.post_json("/api/tenants/acme/integrations", &viewer, spec.clone())
        .await
        .problem(403, "FORBIDDEN");
    app.post_json("/api/tenants/acme/integrations", &operator, spec.clone())
        .await
        .problem(403, "FORBIDDEN");
    let r = app
        .post_json("/api/tenants/acme/integrations", &security, spec)
        .await;
    r.expect(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &operator,
        json!({}),
    )
    .await
    .expect(202);
}

#[tokio::test]
async fn five_days_without_an_accepted_delivery_disable_the_integration() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(500, &[], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "dead", "url": url(&rx, "/"), "event_types": ["event.received"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(202);
    app.round().await;
    let got = app
        .get(&format!("/api/tenants/acme/integrations/{id}"), &app.admin)
        .await;
    assert_eq!(got.json()["status"], "enabled");
    assert!(got.json().get("failing_since").is_some());
    // Five days and a bit later the next attempt fails too: the integration is disabled.
    app.clock.advance(5 * 86_400 + 60);
    app.round().await;
    let got = app
        .get(&format!("/api/tenants/acme/integrations/{id}"), &app.admin)
        .await;
    assert_eq!(got.json()["status"], "disabled", "{}", got.json());
    assert_eq!(got.json()["disabled_reason"], "failing");
    assert!(
        app.audit("acme")
            .await
            .iter()
            .any(|a| a["action"] == "integration.disabled"
                && a["detail"].as_str().unwrap_or("").contains("5 days"))
    );
    // The compliance view fails the integrations control for it.
    let v = app.get("/api/tenants/acme/compliance", &app.admin).await;
    v.expect(200);
    let control = v.json()["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "integrations")
        .cloned()
        .unwrap();
    assert_eq!(control["status"], "fail", "{control}");
}

/// Each API call is its own commit: its audit record and the audit log's new checkpoint are
/// enqueued together, the checkpoint's delivery after the batch's counters were first written.
/// Every one of them must be delivered once, and listed.
#[tokio::test]
async fn audit_records_and_checkpoints_of_many_commits_are_all_delivered() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(200, &[], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "soc", "url": url(&rx, "/"),
                   "event_types": ["audit.recorded", "checkpoint.signed"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    for _ in 0..5 {
        app.get("/api/tenants/acme/integrations", &app.admin)
            .await
            .expect(200);
    }
    app.round().await;
    let deliveries = app.deliveries("acme", &id).await;
    // The listing's own audit record arrives after the round.
    let listed: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["status"] != "pending" || !d["attempts"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(listed.len(), rx.requests().len(), "{deliveries:?}");
    let ids: std::collections::BTreeSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), deliveries.len(), "every delivery has its own id");
    let audits = deliveries
        .iter()
        .filter(|d| d["event_type"] == "audit.recorded" && d["status"] == "delivered")
        .count();
    let checkpoints = deliveries
        .iter()
        .filter(|d| d["event_type"] == "checkpoint.signed" && d["status"] == "delivered")
        .count();
    assert!(audits >= 5, "{audits} audit deliveries: {deliveries:?}");
    assert!(checkpoints >= 5, "{checkpoints} checkpoint deliveries");
    let stuck: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["status"] == "pending" && d["attempts"].as_array().unwrap().is_empty())
        .collect();
    assert!(
        stuck.len() <= 2,
        "only the listing's own records may wait: {stuck:?}"
    );
}

#[tokio::test]
async fn limits_hold_extra_headers_go_out_and_rotations_keep_two_signatures() {
    let app = lab_app().await;
    let rx = Receiver::start("127.0.0.1", fixed(200, &[], "")).await;
    let created = app
        .integration(
            "acme",
            json!({"name": "h", "url": url(&rx, "/"), "event_types": ["event.received"],
                   "headers": {"X-Api-Key": "k-123"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let patch = |body: Value| {
        let path = format!("/api/tenants/acme/integrations/{id}");
        let app = &app;
        async move {
            app.call(
                Method::PATCH,
                &path,
                Some(&app.admin),
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    // Three rotations: only the newest and the one it replaced sign.
    for _ in 0..3 {
        patch(json!({"rotate_secret": true})).await.expect(200);
    }
    let got = app
        .get(&format!("/api/tenants/acme/integrations/{id}"), &app.admin)
        .await;
    assert_eq!(got.json()["secret_slots"].as_array().unwrap().len(), 2);
    // A URL whose canonical form passes 2048 bytes is refused by PATCH as by create.
    let long = format!("https://example.com/{}", "é".repeat(1000));
    let r = patch(json!({ "url": long })).await;
    r.problem(422, "INTEGRATION_INVALID");
    assert_eq!(r.json()["reason"], "url_too_long");
    let r = patch(json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})).await;
    r.problem(422, "INTEGRATION_INVALID");
    assert_eq!(r.json()["reason"], "secret");
    app.post_json(
        &format!("/api/tenants/acme/integrations/{id}/test"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(202);
    app.round().await;
    let req = rx.requests().pop().unwrap();
    assert_eq!(req.headers["x-api-key"], "k-123");
    assert_eq!(
        req.headers["webhook-signature"].split(' ').count(),
        2,
        "two secrets sign during the grace"
    );
    // At most 25 integrations per tenant.
    for i in 1..25 {
        app.integration(
            "acme",
            json!({"name": format!("n{i}"), "url": url(&rx, "/"), "event_types": ["event.received"]}),
        )
        .await;
    }
    let r = app
        .post_json(
            "/api/tenants/acme/integrations",
            &app.admin,
            json!({"name": "one too many", "url": url(&rx, "/"), "event_types": ["event.received"]}),
        )
        .await;
    r.problem(422, "INTEGRATION_INVALID");
    assert_eq!(r.json()["reason"], "limit");
}
