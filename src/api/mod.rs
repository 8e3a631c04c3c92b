//! HTTP layer: poem-openapi handlers and DTOs, RFC 9457 problems, authentication, and the edge
//! middleware that gives every request an id, maps every error to a problem document, counts it
//! in the metrics, and commits its audit event before the response leaves.
//!
//! Handlers stay thin: they authenticate, call `ingest`/`identity` functions and `store`
//! operations, and map results to DTOs.

pub mod access;
pub mod auth;
pub mod body;
pub mod code;
pub mod compliance;
pub mod deletion;
pub mod dto;
pub mod errors;
pub mod events;
pub mod evidence;
pub mod exports;
pub mod ingest;
pub mod integrations;
pub mod json;
pub mod logs;
pub mod policies;
pub mod problem;
pub mod raw;
pub mod settings;
pub mod sources;
pub mod tenants;
pub mod users;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use poem::endpoint::{BoxEndpoint, make_sync};
use poem::http::{HeaderValue, StatusCode};
use poem::web::Data;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use poem_openapi::OpenApiService;

use crate::audit::{APPLIANCE_SCOPE, AggDecision, Aggregator, AuditRecord};
use crate::clock::{SharedClock, rfc3339};
use crate::config::{Config, Secrets};
use crate::ingest::body::BodyBudget;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store::Store;
use code::Code;
use problem::{Problem, ProblemCode, problem_from_error};

/// Everything handlers share.
pub struct AppState {
    /// Effective configuration.
    pub config: Config,
    /// Appliance secrets.
    pub secrets: Secrets,
    /// The database.
    pub store: Store,
    /// Time source.
    pub clock: SharedClock,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Per-source limiters.
    pub ratelimits: RateLimits,
    /// Global buffered-body budget.
    pub budget: BodyBudget,
    /// Audit aggregation of repeated failures.
    pub aggregator: Aggregator,
    /// Parsed `server.trusted_proxies`.
    pub trusted_proxies: Vec<IpAddr>,
    /// Token uses not yet written to the token records.
    pub token_use: crate::identity::TokenUse,
    /// The Cedar authorizer: schema, default policies, each tenant's policies.
    pub authz: Arc<crate::authz::Authorizer>,
    /// Serialises tenant-policy writes, so the set installed is the set stored last.
    pub policy_writer: tokio::sync::Mutex<()>,
    /// argon2id hashing with bounded concurrency (logins, user creation, password changes).
    pub hasher: crate::identity::password::PasswordHasher,
    /// Login brute-force limits per username and per peer.
    pub lockout: crate::identity::lockout::Lockout,
    /// Console session lifetimes.
    pub sessions: crate::identity::session::SessionPolicy,
    /// Session uses not yet written to the session records.
    pub session_use: crate::identity::session::SessionUse,
    /// Per-class API quotas (auth, export, query, default), keyed by principal and operation.
    pub api_limits: crate::ratelimit::ApiLimits,
    /// Signs access receipts with the appliance key (the checkpoint-signing Ed25519 key, named
    /// like its signed-note key: `<name>+<key id>`).
    pub access_receipts: crate::audit::access_receipt::AccessReceiptSigner,
    /// Outbound delivery: the guarded client (its URL policy judges registrations) and the
    /// worker's breakers.
    pub delivery: Arc<crate::delivery::worker::Deliverer>,
}

impl AppState {
    /// Assembles the state.
    #[allow(
        clippy::too_many_arguments,
        reason = "the composition root hands over each shared service once"
    )]
    pub fn new(
        config: Config,
        secrets: Secrets,
        store: Store,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        authz: Arc<crate::authz::Authorizer>,
        hasher: crate::identity::password::PasswordHasher,
        delivery: Arc<crate::delivery::worker::Deliverer>,
    ) -> Self {
        let trusted_proxies = config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        Self {
            budget: BodyBudget::new(config.ingest.inflight_body_budget_bytes),
            ratelimits: RateLimits::new(clock.clone()),
            aggregator: Aggregator::default(),
            token_use: crate::identity::TokenUse::default(),
            authz,
            policy_writer: tokio::sync::Mutex::new(()),
            hasher,
            lockout: crate::identity::lockout::Lockout::default(),
            sessions: crate::identity::session::SessionPolicy::default(),
            session_use: crate::identity::session::SessionUse::default(),
            access_receipts: access_receipt_signer(&config, &secrets),
            api_limits: crate::ratelimit::ApiLimits::new(clock.clone()),
            trusted_proxies,
            delivery,
            config,
            secrets,
            store,
            clock,
            metrics,
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.clock.now_unix()
    }
}

/// The access-receipt signer of the appliance key: `kid` is the signed-note key name and key
/// id, as `GET /api/keys` lists them.
fn access_receipt_signer(
    config: &Config,
    secrets: &Secrets,
) -> crate::audit::access_receipt::AccessReceiptSigner {
    let key = ed25519_dalek::SigningKey::from_bytes(&secrets.appliance_signing_seed);
    let name = &config.server.name;
    let kid = format!(
        "{name}+{:08x}",
        crate::tlog::note::key_id(name, &key.verifying_key())
    );
    crate::audit::access_receipt::AccessReceiptSigner::new(name.clone(), kid, key)
}

#[derive(Debug, Default)]
struct AuditInfo {
    tenant: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    signature: Option<String>,
    detail: Option<String>,
    authz: Option<crate::audit::AuthzNote>,
    /// The other tenant a principal tried to reach (isolation denial).
    cross_tenant: Option<String>,
    /// An allowed sensitive read: answered with a signed access receipt.
    sensitive: Option<access::SensitiveRead>,
    access_receipt: Option<String>,
    audited: bool,
}

/// Per-request context: id, peer, and what the handler learnt for the audit event.
#[derive(Debug)]
pub struct ReqCtx {
    /// Request id (also the `X-Request-Id` response header).
    pub request_id: String,
    /// Client address (socket peer, or the client named by a trusted proxy).
    pub peer: String,
    /// HTTP method.
    pub method: String,
    /// The `X-CSRF-Token` header, when the request carried exactly one (checked against the
    /// session on cookie-authenticated unsafe requests).
    pub csrf: Option<String>,
    info: Mutex<AuditInfo>,
}

impl ReqCtx {
    fn with<R>(&self, f: impl FnOnce(&mut AuditInfo) -> R) -> R {
        match self.info.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Sets the tenant the request concerns.
    pub fn set_tenant(&self, tenant: &str) {
        self.with(|i| i.tenant = Some(tenant.to_string()));
    }

    /// Sets the actor (`token:…`, `source:…`).
    pub fn set_actor(&self, actor: String) {
        self.with(|i| i.actor = Some(actor));
    }

    /// Sets the action name.
    pub fn set_action(&self, action: &str) {
        self.with(|i| i.action = Some(action.to_string()));
    }

    /// Sets the resource acted on.
    pub fn set_resource(&self, resource: &str) {
        self.with(|i| i.resource = Some(resource.to_string()));
    }

    /// Sets the signature verdict.
    pub fn set_signature(&self, verdict: &str) {
        self.with(|i| i.signature = Some(verdict.to_string()));
    }

    /// Sets a detail line.
    pub fn set_detail(&self, detail: String) {
        self.with(|i| i.detail = Some(detail));
    }

    /// Records the authorization decision for the audit event.
    pub fn set_authz(&self, note: crate::audit::AuthzNote) {
        self.with(|i| i.authz = Some(note));
    }

    /// Marks the request as an attempt on another tenant's resources (`tenant`): besides the
    /// record in the principal's own trail, the edge writes one to the appliance's `system`
    /// log, where appliance administrators see it.
    pub fn set_cross_tenant(&self, tenant: &str) {
        self.with(|i| i.cross_tenant = Some(tenant.to_string()));
    }

    /// Marks the request as an allowed sensitive read (set by the enforcement point).
    pub(crate) fn set_sensitive(&self, read: access::SensitiveRead) {
        self.with(|i| i.sensitive = Some(read));
    }

    fn sensitive(&self) -> Option<access::SensitiveRead> {
        self.with(|i| i.sensitive.clone())
    }

    fn set_access_receipt(&self, rid: &str) {
        self.with(|i| i.access_receipt = Some(rid.to_string()));
    }

    fn has_actor(&self) -> bool {
        self.with(|i| i.actor.is_some())
    }

    fn cross_tenant(&self) -> Option<String> {
        self.with(|i| i.cross_tenant.clone())
    }

    /// Declares the audit event written by the handler (in its data commit).
    pub fn mark_audited(&self) {
        self.with(|i| i.audited = true);
    }

    fn audited(&self) -> bool {
        self.with(|i| i.audited)
    }

    /// The audit record of this request as known now, with every client-influenced string
    /// bounded (`audit::AuditRecord::bound`: unknown methods are `OTHER`).
    pub fn record(&self, route: &str, status: u16, code: Option<&str>, now: i64) -> AuditRecord {
        self.with(|i| {
            AuditRecord {
                index: 0,
                time: rfc3339(now),
                tenant: i.tenant.clone().unwrap_or_else(|| APPLIANCE_SCOPE.into()),
                actor: i.actor.clone().unwrap_or_else(|| "anonymous".into()),
                action: i.action.clone().unwrap_or_else(|| {
                    format!("{} {route}", crate::audit::audited_method(&self.method))
                }),
                method: self.method.clone(),
                route: route.to_string(),
                status,
                code: code.map(str::to_string),
                peer: self.peer.clone(),
                request_id: self.request_id.clone(),
                signature: i.signature.clone(),
                resource: i.resource.clone(),
                detail: i.detail.clone(),
                count: None,
                authz: i.authz.clone(),
                access_receipt: i.access_receipt.clone(),
            }
            .bound()
        })
    }
}

/// The peer address: the socket address, unless it is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_addr(req: &Request, trusted: &[IpAddr]) -> String {
    let socket_ip = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let Some(ip) = socket_ip else {
        return req.remote_addr().to_string();
    };
    if !trusted.contains(&ip) {
        return ip.to_string();
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .copied()
        .unwrap_or(ip)
        .to_string()
}

/// The path templates of the OpenAPI document (`/api/tenants/{tenant}`) with their methods
/// (uppercase), computed once.
fn spec_paths() -> &'static [(String, Vec<String>)] {
    static PATHS: std::sync::OnceLock<Vec<(String, Vec<String>)>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        serde_json::from_str::<serde_json::Value>(&openapi_json())
            .ok()
            .and_then(|v| {
                v.get("paths").and_then(|p| p.as_object()).map(|m| {
                    m.iter()
                        .map(|(k, ops)| {
                            let methods = ops
                                .as_object()
                                .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                                .unwrap_or_default();
                            (k.clone(), methods)
                        })
                        .collect()
                })
            })
            .unwrap_or_default()
    })
}

fn spec_templates() -> impl Iterator<Item = &'static String> {
    spec_paths().iter().map(|(t, _)| t)
}

/// The methods of the documented path that `path` (a request path) matches, for `Allow`.
fn allowed_methods(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    spec_paths().iter().find_map(|(t, methods)| {
        let tsegs: Vec<&str> = t.split('/').collect();
        let matches = tsegs.len() == segs.len()
            && tsegs
                .iter()
                .zip(&segs)
                .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p);
        matches.then(|| {
            let mut m = methods.clone();
            if m.iter().any(|x| x == "GET") {
                m.push("HEAD".into());
            }
            m.join(", ")
        })
    })
}

/// Turns a matched poem pattern (`/webhooks/:param0/events`) into the route template of the
/// OpenAPI document (`/webhooks/{source}/events`); other patterns keep their literal segments.
fn template(pattern: &str) -> String {
    let segs: Vec<&str> = pattern.split('/').collect();
    let matches = |t: &&String| {
        let tsegs: Vec<&str> = t.split('/').collect();
        tsegs.len() == segs.len()
            && tsegs
                .iter()
                .zip(&segs)
                .all(|(t, p)| (t.starts_with('{') && p.starts_with(':')) || t == p)
    };
    if let Some(t) = spec_templates().find(matches) {
        return t.clone();
    }
    segs.iter()
        .map(|seg| match seg.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Endpoints that stream and cap their own raw bodies (artifact uploads, receipts).
fn reads_its_own_body(method: &poem::http::Method, path: &str) -> bool {
    method == poem::http::Method::POST
        && (path == "/api/conductor/evidence/receipt"
            || (path.starts_with("/api/conductor/runs/") && path.ends_with("/artifacts")))
}

/// Safe methods that only read (RFC 9110 §9.2.1), whose audit records may be aggregated below
/// the free-space floor.
fn is_read(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

fn is_audited_path(path: &str) -> bool {
    ["/api/", "/ai/", "/webhooks/"]
        .iter()
        .any(|p| path.starts_with(p))
        || path == "/api"
}

async fn edge(ep: Arc<BoxEndpoint<'static, Response>>, mut req: Request) -> poem::Result<Response> {
    let state = req
        .data::<Arc<AppState>>()
        .cloned()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let ctx = Arc::new(ReqCtx {
        request_id: crate::ingest::random_id("req_"),
        peer: client_addr(&req, &state.trusted_proxies),
        method: crate::audit::audited_method(req.method().as_str()).to_string(),
        csrf: single_header(&req, crate::identity::session::CSRF_HEADER),
        info: Mutex::new(AuditInfo::default()),
    });
    req.extensions_mut().insert(ctx.clone());
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    // Kept for attributing a request refused before its handler ran (below).
    let bearer = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);

    // Framing hyper leaves to us; then one credential per request: a second Authorization
    // header is refused before anything reads the first.
    let result = if let Some(p) = framing_problem(&req) {
        Err(p.into())
    } else if let Some(why) = path_problem(&path) {
        // Before routing, authentication and the rate classes: one resource has one spelling,
        // so no variant can reach a handler under a key, route or policy of another.
        Err(Problem::new(Code::InvalidPath, format!("the request path {why}")).into())
    } else if req
        .headers()
        .get_all(poem::http::header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        Err(Problem::new(
            Code::AuthorizationHeaderInvalid,
            "send exactly one Authorization header",
        )
        .into())
    } else if path.starts_with("/api/")
        && body::may_carry_body(req.method())
        && !reads_its_own_body(req.method(), &path)
    {
        // JSON bodies of the management API are small: read them here, capped, before any
        // handler (and before authentication), so no client can make the appliance buffer more.
        match body::buffer_api_body(&state, &mut req).await {
            Ok(()) => ep.call(req).await,
            Err(p) => Err(p.into()),
        }
    } else {
        ep.call(req).await
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(err) => {
            let pattern = err.data::<poem::PathPattern>().cloned();
            let tmpl = pattern.as_ref().map(|p| template(&p.0));
            let problem = problem_from_error(&err, tmpl.as_deref());
            let mut r = problem.to_response();
            if problem.code == Code::MethodNotAllowed
                && let Some(allow) = allowed_methods(&path)
                && let Ok(v) = HeaderValue::from_str(&allow)
            {
                r.headers_mut().insert(poem::http::header::ALLOW, v);
            }
            if let Some(p) = pattern {
                r.set_data(p);
            }
            r
        }
    };
    let route = resp
        .data::<poem::PathPattern>()
        .map(|p| template(&p.0))
        .unwrap_or_else(|| "unmatched".to_string());
    let status = resp.status().as_u16();

    let sensitive = ctx.sensitive().filter(|_| resp.status().is_success());
    if let Some(read) = sensitive
        && !ctx.audited()
    {
        // Its own audit leaf, committed before the bytes go out, named by a signed receipt.
        resp = access::answer(&state, resp, &ctx, &route, read).await;
    } else if is_audited_path(&path) && !ctx.audited() {
        // A request refused before any handler authenticated it (a bad parameter, 405, a
        // framing error) is still the act of the token it carried, in that token's tenant.
        if status >= 400
            && !ctx.has_actor()
            && let Some(token) = bearer.as_deref()
        {
            state.attribute(token, &ctx);
        }
        let code = resp.data::<ProblemCode>().map(|c| c.0.as_str());
        let now = state.now();
        let record = ctx.record(&route, status, code, now);
        // A flood must not become a disk flood: failures (429s included) from one peer are
        // written once per key and minute, then counted. Below the free-space floor successful
        // reads are too (per reader, route and resource), so the audit reserve lasts.
        let decision = if status >= 400 {
            Some(state.aggregator.observe(&record, now))
        } else if is_read(&method)
            && state.store.is_low_disk()
            // With the reserve spent a summary could not be written either: every read then
            // tries its own record, is refused, and is not answered.
            && !state.store.is_audit_reserve_spent()
        {
            Some(state.aggregator.observe_read(&record, now))
        } else {
            None
        };
        let write = decision.is_none_or(|d| d == AggDecision::Write);
        let mut records = Vec::with_capacity(2);
        if write {
            // An attempt on another tenant is also the appliance's business: a copy goes to
            // the `system` log (aggregated with the original, so a probe cannot flood it).
            if let Some(target) = ctx.cross_tenant()
                && record.tenant != APPLIANCE_SCOPE
            {
                let mut copy = record.clone();
                copy.detail = Some(format!(
                    "cross-tenant attempt by a principal of tenant {} on tenant {target}",
                    record.tenant
                ));
                copy.tenant = APPLIANCE_SCOPE.to_string();
                records.push(copy.bound());
            }
            records.insert(0, record);
        }
        if write && let Err(e) = state.store.append_audit(records).await {
            tracing::error!(error = %e, "audit write failed");
            if resp.status().is_success() {
                // Nothing is answered that was not recorded.
                resp = Problem::new(
                    Code::AuditUnavailable,
                    "the audit event could not be recorded; the request was not answered",
                )
                .to_response();
            }
        }
    }
    state
        .metrics
        .observe_request(&method, &route, resp.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

/// Why `path` (the request target's path, still percent-encoded) is not in its one canonical
/// form, if it is not: an empty segment (`//`), a `.` or `..` segment, a backslash, or a
/// percent-encoded `.`, `/`, `\` or NUL (`%2e`, `%2f`, `%5c`, `%00`, either case) that a
/// decoder further on could turn into one of those, or an encoded unreserved character
/// (`%61` for `a`); and under `/api`, `/ai` and `/webhooks` a
/// trailing `/` (the console and `/docs` are static pages whose directories end in `/`).
pub fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must start with /");
    }
    if path == "/" {
        return None;
    }
    if path.ends_with('/') && is_audited_path(path) {
        return Some("must not end with /");
    }
    if path.contains('\\') {
        return Some("must not contain a backslash");
    }
    let lower = path.to_ascii_lowercase();
    for encoded in ["%2e", "%2f", "%5c", "%00"] {
        if lower.contains(encoded) {
            return Some("must not percent-encode '.', '/', '\\' or NUL");
        }
    }
    // RFC 3986 §6.2.2.2: an encoded unreserved character is another spelling of itself.
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
            && (v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~'))
        {
            return Some("must not percent-encode an unreserved character (RFC 3986 §2.3)");
        }
    }
    let inner = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
    for segment in inner.split('/') {
        match segment {
            "" => return Some("must not contain an empty segment (//)"),
            "." | ".." => return Some("must not contain a . or .. segment"),
            _ => {}
        }
    }
    None
}

/// HTTP/1.1 framing rules hyper leaves to the application: a `Host` header is required
/// (RFC 9112 §3.2), and `chunked` is the only transfer coding accepted (RFC 9112 §6.1; a
/// `gzip, chunked` body would otherwise reach the pipeline still compressed).
fn framing_problem(req: &Request) -> Option<Problem> {
    if req.extensions().get::<crate::net::FromNetwork>().is_some()
        && req.version() == poem::http::Version::HTTP_11
        && req.headers().get(poem::http::header::HOST).is_none()
    {
        return Some(Problem::new(
            Code::BadRequest,
            "HTTP/1.1 requests must carry a Host header",
        ));
    }
    let te: Vec<&poem::http::HeaderValue> = req
        .headers()
        .get_all(poem::http::header::TRANSFER_ENCODING)
        .iter()
        .collect();
    let only_chunked = te.iter().all(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .all(|c| c.trim().eq_ignore_ascii_case("chunked"))
        })
    }) && te.len() <= 1;
    if !only_chunked {
        return Some(Problem::new(
            Code::TransferEncodingUnsupported,
            "only Transfer-Encoding: chunked is accepted",
        ));
    }
    None
}

#[handler]
fn healthz() -> poem::web::Json<serde_json::Value> {
    poem::web::Json(serde_json::json!({"status": "ok"}))
}

#[handler]
fn readyz(state: Data<&Arc<AppState>>) -> Response {
    let problem = if state.store.is_low_disk() {
        Some(match state.store.disk().measure() {
            Some(d) => format!(
                "the data volume is below its free-space floor ({} of {} bytes free): data writes are refused; {} of the {}-byte audit reserve left for audited reads",
                d.free, d.floor, d.reserve_left, d.reserve
            ),
            None => "the data volume is below its free-space floor".to_string(),
        })
    } else if state.store.meta("schema_version").is_err() {
        Some("the database cannot be read".to_string())
    } else if state.store.damage_seen() > 0 {
        Some(format!(
            "{} read(s) found damaged stored data since the start: run `evidentia check` on the data directory",
            state.store.damage_seen()
        ))
    } else {
        None
    };
    match problem {
        Some(detail) => Problem::new(Code::NotReady, detail).to_response(),
        None => poem::web::Json(serde_json::json!({"status": "ready"})).into_response(),
    }
}

#[handler]
fn metrics_text(state: Data<&Arc<AppState>>) -> Response {
    state.metrics.observe_disk(state.store.disk().measure());
    Response::builder()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}

/// Every documented operation group, in the order of the OpenAPI document.
pub type Apis = (
    tenants::TenantsApi,
    sources::SourcesApi,
    ingest::IngestApi,
    events::EventsApi,
    logs::LogsApi,
    evidence::EvidenceApi,
    policies::PoliciesApi,
    users::UsersApi,
    settings::SettingsApi,
    compliance::ComplianceApi,
    exports::ExportsApi,
    deletion::DeletionApi,
    integrations::IntegrationsApi,
);

/// The OpenAPI service (all documented operations).
pub fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            tenants::TenantsApi,
            sources::SourcesApi,
            ingest::IngestApi,
            events::EventsApi,
            logs::LogsApi,
            evidence::EvidenceApi,
            policies::PoliciesApi,
            users::UsersApi,
            settings::SettingsApi,
            compliance::ComplianceApi,
            exports::ExportsApi,
            deletion::DeletionApi,
            integrations::IntegrationsApi,
        ),
        "Evidentia",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Signed webhook ingestion, provenance evidence and tamper-evident audit. Errors are \
         RFC 9457 problem documents with a stable `code`.",
    )
}

/// The generated OpenAPI document (JSON, pretty-printed), as written to `openapi/evidentia.json`
/// and served at `/openapi.json`. Every response documents the `X-Request-Id` header the edge
/// middleware adds to all answers.
pub fn openapi_json() -> String {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let raw = openapi_service().spec();
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&raw) else {
            return raw;
        };
        dto::finish_spec(&mut doc);
        serde_json::to_string_pretty(&dto::sort_keys(doc)).unwrap_or(raw)
    })
    .clone()
}

/// The whole HTTP application for `state`.
pub fn app(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let service = openapi_service();
    let spec = openapi_json();
    let docs = service.swagger_ui();
    let api = SharedEndpoint(Arc::new(service.boxed()));
    let spec_ep = make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    });
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        .at("/openapi.json", spec_ep)
        .nest("/docs", docs)
        .nest("/console", crate::console::endpoint())
        .at("/", crate::console::index())
        .nest_no_strip("/api", api.clone())
        .nest_no_strip("/ai", api.clone())
        .nest_no_strip("/webhooks", api)
        .boxed()
        .around(edge)
        // Parses the `Cookie` header for the session-cookie security scheme.
        .with(poem::middleware::CookieJarManager::new())
        .data(state)
}

/// One endpoint mounted under several prefixes.
#[derive(Clone)]
struct SharedEndpoint(Arc<BoxEndpoint<'static, Response>>);

impl Endpoint for SharedEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        self.0.call(req).await
    }
}

/// The value of header `name` when the request carries it exactly once (as text).
fn single_header(req: &Request, name: &str) -> Option<String> {
    let mut values = req.headers().get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::to_string)
}

/// Shortcut to the request context extension.
pub fn ctx(req: &Request) -> Arc<ReqCtx> {
    req.extensions()
        .get::<Arc<ReqCtx>>()
        .cloned()
        .unwrap_or_else(|| {
            Arc::new(ReqCtx {
                request_id: String::new(),
                peer: String::new(),
                method: req.method().to_string(),
                csrf: single_header(req, crate::identity::session::CSRF_HEADER),
                info: Mutex::new(AuditInfo::default()),
            })
        })
}
