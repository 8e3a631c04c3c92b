//! `POST /ai/webhook` and `POST /webhooks/{source}/events`: transport only — tenant header,
//! rate limit, `Content-Length` cap, `Content-Encoding`, bounded read, request context and the
//! answer to [`crate::ingest::Pipeline`]'s outcome (the pipeline owns DESIGN §1 steps 4–8; its
//! [`IngestError`] maps to problems in `api/errors.rs`).

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::code::Code;
use super::problem::{Problem, status};
use super::raw::RawBody;
use super::{AppState, ReqCtx, body, ctx};
use crate::identity::tenant::TenantStatus;
use crate::identity::{DEFAULT_TENANT, valid_tenant_id};
use crate::ingest::pipeline::Settings;
use crate::ingest::{Accepted, Inbound, IngestError, Pipeline, SourceRecord};
use crate::ratelimit::RateDecision;

#[derive(Tags)]
enum ApiTags {
    /// Signed webhook ingestion.
    Ingestion,
}

/// What every ingest operation can answer besides 200.
const INGEST_ERRORS: u64 = status::BASE
    | status::S401
    | status::S403
    | status::S404
    | status::S408
    | status::S413
    | status::S415
    | status::S422
    | status::S429
    | status::S507;

type IngestResult = super::problem::ApiResult<Json<IngestAck>, INGEST_ERRORS>;
type PipelineResult = Result<Json<IngestAck>, Problem>;

/// Acknowledgement of a stored (or duplicate) delivery.
#[derive(Object, Debug)]
#[oai(example)]
pub struct IngestAck {
    /// Always `true`.
    pub ok: bool,
    /// The event id (for a duplicate: the original's).
    pub event_id: String,
    /// Insights created (ML webhooks; 0 for duplicates and provider webhooks).
    pub insights: u64,
    /// Whether this delivery was seen before and nothing was processed.
    pub duplicate: bool,
}

impl poem_openapi::types::Example for IngestAck {
    fn example() -> Self {
        Self {
            ok: true,
            event_id: "evt_5f0c2f5e9a1b4c3d8e7f6a5b4c3d2e1f".into(),
            insights: 1,
            duplicate: false,
        }
    }
}

/// Ingestion endpoints.
pub struct IngestApi;

#[OpenApi]
impl IngestApi {
    /// Ingest ML model output
    ///
    /// Signed with `X-IntelGraph-Signature: <lowercase hex HMAC-SHA256 of the raw body>` (a
    /// `sha256=` prefix is accepted) or the Standard Webhooks headers `webhook-id`,
    /// `webhook-timestamp`, `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`,
    /// replay-safe, preferred). `X-Tenant-Id` selects the tenant's `ml` source (absent: the
    /// `default` tenant, whose secret is `ML_WEBHOOK_SECRET`). Cap 512 KiB. The body is JSON
    /// `{job_id, kind, …}`; its insights are stored `PENDING` for review. Checks run in DESIGN §1
    /// order; a replay answers 200 with the original `event_id` and `duplicate: true`.
    #[oai(
        path = "/ai/webhook",
        method = "post",
        tag = "ApiTags::Ingestion",
        operation_id = "ingestMlWebhook"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn ai_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        /// Tenant whose `ml` source verifies the delivery (default `default`).
        #[oai(name = "X-Tenant-Id", validator(pattern = "^[a-z0-9-]{2,63}$"))]
        _tenant: Header<Option<String>>,
        /// Lowercase hex HMAC-SHA256 of the raw body, optionally prefixed `sha256=`.
        #[oai(name = "X-IntelGraph-Signature")]
        _intelgraph: Header<Option<String>>,
        /// Standard Webhooks message id (replay key).
        #[oai(name = "webhook-id")]
        _webhook_id: Header<Option<String>>,
        /// Standard Webhooks timestamp, Unix seconds (±300 s).
        #[oai(name = "webhook-timestamp")]
        _webhook_timestamp: Header<Option<String>>,
        /// Standard Webhooks signatures: space-separated `v1,<base64>`.
        #[oai(name = "webhook-signature")]
        _webhook_signature: Header<Option<String>>,
        body: RawBody,
    ) -> IngestResult {
        let ctx = ctx(req);
        ctx.set_action("webhook.ingest");
        let tenant = match req.headers().get_all("x-tenant-id").iter().count() {
            0 => DEFAULT_TENANT.to_string(),
            1 => req
                .headers()
                .get("x-tenant-id")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            _ => {
                return Err(Problem::new(
                    Code::TenantHeaderInvalid,
                    "X-Tenant-Id appears more than once",
                )
                .into());
            }
        };
        let no_secret = || {
            ctx.set_signature("not_checked");
            Problem::from(IngestError::NoSecret)
        };
        if !valid_tenant_id(&tenant) {
            return Err(no_secret().into());
        }
        let source = state.store.ml_source(&tenant)?.ok_or_else(no_secret)?;
        Ok(pipeline(&state, &ctx, req, source, body, "/ai/webhook").await?)
    }

    /// Ingest a provider webhook
    ///
    /// For a source created with `createWebhookSource`. The source's provider decides the
    /// signature headers, each over the exact raw bytes: `standard` `webhook-id`,
    /// `webhook-timestamp`, `webhook-signature` (`v1,<base64>` over `id.timestamp.body`, secret
    /// `whsec_<base64>`); `github` `X-Hub-Signature-256: sha256=<hex>` (+ `X-GitHub-Delivery`);
    /// `stripe` `Stripe-Signature: t=…,v1=…` over `t.body`; `slack` `X-Slack-Signature:
    /// v0=<hex>` over `v0:ts:body` with `X-Slack-Request-Timestamp`; `shopify`
    /// `X-Shopify-Hmac-Sha256: <base64>` (+ `X-Shopify-Webhook-Id`); `generic` the source's
    /// configured header (hex or base64, optional prefix). Timestamps must be within ±300 s.
    /// Checks run in DESIGN §1 order; a replay answers 200 with the original `event_id` and
    /// `duplicate: true`.
    #[oai(
        path = "/webhooks/:source/events",
        method = "post",
        tag = "ApiTags::Ingestion",
        operation_id = "ingestProviderWebhook"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn provider_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        /// Source id (`src_…`).
        #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
        source: Path<String>,
        /// Standard Webhooks message id.
        #[oai(name = "webhook-id")]
        _webhook_id: Header<Option<String>>,
        /// Standard Webhooks timestamp, Unix seconds.
        #[oai(name = "webhook-timestamp")]
        _webhook_timestamp: Header<Option<String>>,
        /// Standard Webhooks signatures: space-separated `v1,<base64>`.
        #[oai(name = "webhook-signature")]
        _webhook_signature: Header<Option<String>>,
        /// GitHub: `sha256=<hex HMAC-SHA256 of the body>`.
        #[oai(name = "X-Hub-Signature-256")]
        _github_signature: Header<Option<String>>,
        /// GitHub delivery id (replay key).
        #[oai(name = "X-GitHub-Delivery")]
        _github_delivery: Header<Option<String>>,
        /// Stripe: `t=<unix>,v1=<hex>[,v1=<hex>]` over `t.body`.
        #[oai(name = "Stripe-Signature")]
        _stripe_signature: Header<Option<String>>,
        /// Slack: `v0=<hex>` over `v0:timestamp:body`.
        #[oai(name = "X-Slack-Signature")]
        _slack_signature: Header<Option<String>>,
        /// Slack timestamp, Unix seconds.
        #[oai(name = "X-Slack-Request-Timestamp")]
        _slack_timestamp: Header<Option<String>>,
        /// Shopify: base64 HMAC-SHA256 of the body.
        #[oai(name = "X-Shopify-Hmac-Sha256")]
        _shopify_hmac: Header<Option<String>>,
        /// Shopify webhook id (replay key).
        #[oai(name = "X-Shopify-Webhook-Id")]
        _shopify_id: Header<Option<String>>,
        body: RawBody,
    ) -> IngestResult {
        let ctx = ctx(req);
        ctx.set_action("webhook.ingest");
        let record = state
            .store
            .get_source(&source)?
            .ok_or_else(|| Problem::not_found("webhook source"))?;
        Ok(pipeline(&state, &ctx, req, record, body, "/webhooks/{source}/events").await?)
    }
}

fn rate_limited(d: &RateDecision) -> Option<Problem> {
    let RateDecision::Limited {
        retry_after_secs,
        penalised,
        ..
    } = d
    else {
        return None;
    };
    let detail = if *penalised {
        "this client is throttled after repeated signature failures on this source".to_string()
    } else {
        "this source's request quota is spent".to_string()
    };
    let mut p = Problem::new(Code::RateLimited, detail)
        .with_header("Retry-After", retry_after_secs.to_string());
    for (name, value) in d.headers() {
        p = p.with_header(name, value);
    }
    Some(p)
}

/// Transport around [`crate::ingest::Pipeline`]: steps 1–3 (rate limit, cap, encoding,
/// bounded read), then the domain pipeline (DESIGN §1 steps 4–8), then the answer and its side
/// effects (audit verdict, failure penalty, metrics).
async fn pipeline(
    state: &AppState,
    ctx: &ReqCtx,
    req: &Request,
    source: SourceRecord,
    raw: RawBody,
    route: &'static str,
) -> PipelineResult {
    ctx.set_tenant(&source.tenant);
    ctx.set_actor(format!("source:{}", source.id));
    ctx.set_resource(&source.id);
    let provider = source.provider.as_str();
    // The tenant's retention, and its status: a suspended tenant's verified deliveries are
    // refused by the pipeline, after the signature (so its status is no oracle).
    let tenant = state
        .store
        .get_tenant(&source.tenant)?
        .ok_or_else(|| Problem::not_found("webhook source"))?;
    // A deleted tenant has no sources left; refused like a suspended one all the same.
    let suspended = tenant.status != TenantStatus::Active;
    let settings = tenant.settings.effective(&state.config);

    // 1. rate limit
    let decision = state.ratelimits.check(
        &source.id,
        &ctx.peer,
        source.rate_per_second,
        source.rate_burst,
    );
    if let Some(p) = rate_limited(&decision) {
        return Err(p);
    }

    // 2–3. Content-Length above the cap, compressed bodies: refused before reading; then the
    // bounded read within the global buffered-body budget.
    let cap = source.max_payload_bytes;
    let headers = req.headers();
    let declared = body::precheck(headers, cap)?;
    let (bytes, _permit) = body::read(state, raw.0, cap, declared).await?;

    // 4–8 in the domain.
    let now = state.now();
    let content_type = headers
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let settings = Settings {
        tolerance_secs: state.config.ingest.timestamp_tolerance_secs,
        retention_secs: settings.body_retention_days.saturating_mul(86_400),
        appliance_ml_secret: &state.secrets.ml_webhook,
        tenant_suspended: suspended,
    };
    let outcome = Pipeline::new(&state.store, settings)
        .accept(
            &source,
            headers,
            Inbound::new(bytes),
            content_type,
            now,
            || {
                // Called only once the signature verified.
                ctx.set_signature("valid");
                vec![ctx.record(route, 200, None, now)]
            },
        )
        .await;
    let accepted = match outcome {
        Ok(a) => {
            ctx.set_signature("valid");
            state
                .ratelimits
                .record_outcome(&source.id, &ctx.peer, false);
            a
        }
        Err(e) => {
            ctx.set_signature(e.signature_verdict());
            match e.signature_failure() {
                Some(failed_mac) => {
                    state.metrics.observe_signature_failure(provider);
                    if state
                        .ratelimits
                        .record_outcome(&source.id, &ctx.peer, failed_mac)
                    {
                        penalty_audit(state, ctx, route, now).await?;
                    }
                }
                None if !matches!(e, IngestError::NoSecret) => {
                    state
                        .ratelimits
                        .record_outcome(&source.id, &ctx.peer, false);
                }
                None => {}
            }
            return Err(e.into());
        }
    };
    Ok(Json(match accepted {
        Accepted::Stored(rec) => {
            ctx.set_resource(&rec.id);
            ctx.mark_audited();
            state.metrics.observe_ingest(provider, rec.size);
            IngestAck {
                ok: true,
                event_id: rec.id,
                insights: rec.insights,
                duplicate: false,
            }
        }
        Accepted::Duplicate { event_id, recorded } => {
            ctx.set_resource(&event_id);
            ctx.set_detail("duplicate delivery".into());
            if recorded {
                ctx.mark_audited();
            }
            IngestAck {
                ok: true,
                event_id,
                insights: 0,
                duplicate: true,
            }
        }
    }))
}

async fn penalty_audit(
    state: &AppState,
    ctx: &ReqCtx,
    route: &str,
    now: i64,
) -> Result<(), Problem> {
    let mut rec = ctx.record(route, 429, Some(Code::RateLimitPenalty.as_str()), now);
    rec.action = "ratelimit.penalty".into();
    rec.detail = Some(format!(
        "at least half of the last {} requests failed signature checks; limited to 1 request/s for {} s",
        crate::ratelimit::FAILURE_WINDOW,
        crate::ratelimit::PENALTY_SECS
    ));
    state.store.append_audit(vec![rec]).await?;
    Ok(())
}
