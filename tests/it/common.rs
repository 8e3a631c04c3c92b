//! Test harness: a real appliance on a temporary data dir with a pinned clock.

use std::net::SocketAddr;
use std::sync::Arc;

use evidentia::api::AppState;
use evidentia::clock::ManualClock;
use evidentia::config::{Config, Secrets};
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderMap, Method};
use poem::test::TestClient;
use poem::{EndpointExt, Response};
use serde_json::{Value, json};

/// `ML_WEBHOOK_SECRET` of every test appliance: the one of the ML conformance vector.
pub const ML_SECRET: &str = "ml-webhook-secret-0123456789abcdef0123";
/// `EVIDENCE_SIGNING_SECRET` of every test appliance: the one of the receipt vector.
pub const EVIDENCE_SECRET: &str = "evidence-signing-secret-0123456789abcdef";
/// A fixed "now" for tests that do not care (2026-11-18T12:00:00Z).
pub const NOW: i64 = 1_795_003_200;

pub fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

pub fn load_vector(name: &str) -> Value {
    let text = std::fs::read_to_string(vectors_dir().join(name))
        .unwrap_or_else(|e| panic!("vector {name}: {e}"));
    serde_json::from_str(&text).expect("vector JSON")
}

pub struct TestApp {
    pub dir: Arc<tempfile::TempDir>,
    pub state: Arc<AppState>,
    pub clock: Arc<ManualClock>,
    pub admin: String,
    pub cli: TestClient<BoxEndpoint<'static, Response>>,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts an RFC 9457 problem with `status` and `code`.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) {
        self.expect(status);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let v = self.json();
        assert_eq!(v["code"], code, "body: {v}");
        assert_eq!(v["status"], status);
        assert!(v["type"].is_string() && v["title"].is_string() && v["detail"].is_string());
    }
}

/// The API contract: JSON the appliance sends never carries `null` (optional members are
/// omitted). Opaque data a client stored (an insight's `payload`) is exempt. Checked on every
/// response any test receives through the harness.
#[track_caller]
pub fn assert_no_null(resp: &Resp, path: &str) {
    let ct = resp.header("content-type").unwrap_or_default();
    if !(ct.starts_with("application/json") || ct.starts_with("application/problem+json")) {
        return;
    }
    // Stored bytes served back as they were stored are the client's data.
    if path.contains("/entries/")
        || path.contains("/evidence/receipt/") && !path.ends_with("/bundle")
        || path.ends_with("/body")
    {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&resp.body) else {
        return;
    };
    fn walk(v: &Value, at: &str, path: &str) {
        match v {
            Value::Null => panic!("{path}: the response carries null at {at}"),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{at}[{i}]"), path)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                if k != "payload" {
                    walk(x, &format!("{at}.{k}"), path)
                }
            }),
            _ => {}
        }
    }
    walk(&v, "$", path);
}

pub fn secrets() -> Secrets {
    Secrets {
        ml_webhook: ML_SECRET.as_bytes().to_vec(),
        evidence_signing: EVIDENCE_SECRET.as_bytes().to_vec(),
        appliance_signing_seed: [7u8; 32],
        bootstrap_admin_token: None,
        evidence_signer_kid: "default".into(),
        appliance_key_from_data_dir: false,
        data_key: evidentia::seal::KeySource::DataDir,
    }
}

pub async fn start() -> TestApp {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let mut config = Config::default();
    config.server.data_dir = dir.path().join("data");
    config.storage.min_free_bytes = 0;
    tweak(&mut config);
    open(dir, config, None).await
}

/// [`start_with`], outbound deliveries resolving names with `resolver`.
pub async fn start_with_resolver(
    tweak: impl FnOnce(&mut Config),
    resolver: Arc<dyn evidentia::delivery::client::Resolve>,
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let mut config = Config::default();
    config.server.data_dir = dir.path().join("data");
    config.storage.min_free_bytes = 0;
    tweak(&mut config);
    let clock = Arc::new(ManualClock::at(NOW));
    let (state, generated) =
        evidentia::server::build_state_with(config, secrets(), clock.clone(), resolver)
            .await
            .expect("appliance starts");
    let cli = TestClient::new(evidentia::api::app(state.clone()).boxed());
    TestApp {
        dir,
        state,
        clock,
        admin: generated.expect("admin token"),
        cli,
    }
}

/// Opens an appliance on an existing dir (restart). `admin` is the token from the first start.
pub async fn open(dir: Arc<tempfile::TempDir>, config: Config, admin: Option<String>) -> TestApp {
    open_with_secrets(dir, config, admin, secrets()).await
}

/// Like [`open`], with other appliance secrets (key rotation).
pub async fn open_with_secrets(
    dir: Arc<tempfile::TempDir>,
    config: Config,
    admin: Option<String>,
    secrets: Secrets,
) -> TestApp {
    let clock = Arc::new(ManualClock::at(NOW));
    let (state, generated) = evidentia::server::build_state(config, secrets, clock.clone())
        .await
        .expect("appliance starts");
    let admin = generated.or(admin).expect("admin token");
    let cli = TestClient::new(evidentia::api::app(state.clone()).boxed());
    TestApp {
        dir,
        state,
        clock,
        admin,
        cli,
    }
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut rb = self.cli.request(method, path);
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.body(body).send().await.0;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().into_vec().await.expect("response body");
        let resp = Resp {
            status,
            headers,
            body,
        };
        assert_no_null(&resp, path);
        assert!(
            resp.header("x-request-id").is_some() || !path.starts_with("/api"),
            "{path}: no X-Request-Id"
        );
        resp
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), &[], Vec::new())
            .await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(
            Method::POST,
            path,
            Some(token),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// `POST /ai/webhook` with `body` signed (`X-IntelGraph-Signature`) with the test ML secret.
    pub async fn post_ml(&self, body: Vec<u8>) -> Resp {
        let sig = hmac_hex(ML_SECRET, &body);
        self.call(
            Method::POST,
            "/ai/webhook",
            None,
            &[("X-IntelGraph-Signature", &sig)],
            body,
        )
        .await
    }

    pub async fn create_tenant(&self, id: &str) {
        self.post_json(
            "/api/tenants",
            &self.admin.clone(),
            json!({"id": id, "name": format!("Tenant {id}")}),
        )
        .await
        .expect(201);
    }

    pub async fn create_token(&self, tenant: &str, roles: &[&str]) -> String {
        let r = self
            .post_json(
                &format!("/api/tenants/{tenant}/tokens"),
                &self.admin.clone(),
                json!({"name": "test", "roles": roles}),
            )
            .await;
        r.expect(201);
        r.json()["token"].as_str().expect("token").to_string()
    }

    pub async fn create_source(&self, tenant: &str, spec: Value) -> Value {
        let r = self
            .post_json(
                &format!("/api/tenants/{tenant}/webhook-sources"),
                &self.admin.clone(),
                spec,
            )
            .await;
        r.expect(201);
        r.json()
    }

    pub async fn audit(&self, tenant: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/tenants/{tenant}/audit?limit=500"),
                &self.admin.clone(),
            )
            .await;
        r.expect(200);
        r.json()["items"].as_array().cloned().unwrap_or_default()
    }

    pub async fn events(&self, tenant: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/tenants/{tenant}/events?limit=500"),
                &self.admin.clone(),
            )
            .await;
        r.expect(200);
        r.json()["items"].as_array().cloned().unwrap_or_default()
    }

    /// Serves the same appliance on a real TCP listener on 127.0.0.1 (port 0).
    pub async fn serve_tcp(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
        let app = evidentia::api::app(self.state.clone());
        // The appliance's own connection layer (timeouts, caps), as `serve` runs it.
        let limits = evidentia::server::conn_limits(&self.state.config);
        let metrics = self.state.metrics.clone();
        tokio::spawn(async move {
            let _ = evidentia::net::serve(
                acceptor,
                app,
                limits,
                metrics,
                std::future::pending::<()>(),
                std::time::Duration::from_secs(1),
            )
            .await;
        });
        addr
    }
}

/// Lowercase hex HMAC-SHA256.
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    evidentia::ingest::signature::hmac_hex(secret.as_bytes(), body)
}
