//! `POST /ai/webhook` and `POST /webhooks/{source}/events`: the ingestion pipeline in DESIGN §1
//! order — rate limit → `Content-Length` cap → `Content-Encoding` → bounded read → signature
//! headers and MAC over the raw bytes → timestamp tolerance → replay → parse → durable store
//! with its audit event in the same commit.

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
use crate::identity::{DEFAULT_TENANT, valid_tenant_id};
use crate::ingest::signature::{SignatureError, VerifyInput, verify};
use crate::ingest::{
    EventRecord, InsightRecord, InsightStatus, JobRecord, Provider, SourceRecord, ai,
    is_json_content_type, random_id, replay_key, sha256_hex,
};
use crate::ratelimit::RateDecision;
use crate::store::{IngestOutcome, NewEvent};

#[derive(Tags)]
enum ApiTags {
    /// Signed webhook ingestion.
    Ingestion,
}

/// What every ingest operation can answer besides 200.
const INGEST_ERRORS: u64 = status::BASE
    | status::S401
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
            Problem::new(
                Code::SignatureInvalid,
                "no ML webhook secret is configured for this tenant",
            )
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

    // 4–6. Signature headers, MAC over the raw bytes, timestamp.
    let now = state.now();
    let mut secrets = source.active_secrets(now);
    if source.uses_appliance_secret {
        secrets.push(String::from_utf8_lossy(&state.secrets.ml_webhook).into_owned());
    }
    if secrets.is_empty() {
        ctx.set_signature("not_checked");
        return Err(Problem::new(
            Code::SignatureInvalid,
            "this source has no valid secret",
        ));
    }
    let verified = verify(&VerifyInput {
        provider: source.provider,
        generic: source.generic.as_ref(),
        secrets: &secrets,
        headers,
        body: &bytes,
        now,
        tolerance: state.config.ingest.timestamp_tolerance_secs,
    });
    let verified = match verified {
        Ok(v) => {
            ctx.set_signature("valid");
            state
                .ratelimits
                .record_outcome(&source.id, &ctx.peer, false);
            v
        }
        Err(e) => {
            let failed_mac = !matches!(e, SignatureError::TimestampOutOfTolerance);
            ctx.set_signature(match e {
                SignatureError::HeaderInvalid(_) => "missing",
                SignatureError::Invalid => "invalid",
                SignatureError::TimestampOutOfTolerance => "valid_stale",
            });
            state.metrics.observe_signature_failure(provider);
            if state
                .ratelimits
                .record_outcome(&source.id, &ctx.peer, failed_mac)
            {
                let mut rec = ctx.record(route, 429, Some(Code::RateLimitPenalty.as_str()), now);
                rec.action = "ratelimit.penalty".into();
                rec.detail = Some(format!(
                    "at least half of the last {} requests failed signature checks; limited to 1 request/s for {} s",
                    crate::ratelimit::FAILURE_WINDOW,
                    crate::ratelimit::PENALTY_SECS
                ));
                state.store.append_audit(vec![rec]).await?;
            }
            return Err(match e {
                SignatureError::HeaderInvalid(msg) => {
                    Problem::new(Code::SignatureHeaderInvalid, msg)
                }
                SignatureError::Invalid => Problem::new(
                    Code::SignatureInvalid,
                    "the signature does not match the body",
                ),
                SignatureError::TimestampOutOfTolerance => Problem::new(
                    Code::TimestampOutOfTolerance,
                    format!(
                        "the signed timestamp is more than {} s from the appliance clock",
                        state.config.ingest.timestamp_tolerance_secs
                    ),
                ),
            });
        }
    };

    // 7. Replay.
    let digest = sha256_hex(&bytes);
    let key = replay_key(verified.delivery_id.as_deref(), &digest);
    let window = state
        .config
        .ingest
        .body_retention_days
        .saturating_mul(86_400);
    let since = now.saturating_sub(window);
    if let Some(original) = state.store.find_delivery(&source.id, &key, since)? {
        ctx.set_resource(&original);
        ctx.set_detail("duplicate delivery".into());
        return Ok(Json(IngestAck {
            ok: true,
            event_id: original,
            insights: 0,
            duplicate: true,
        }));
    }

    // 8. Only now parse.
    let content_type = headers
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let must_be_json = source.provider == Provider::Ml || is_json_content_type(&content_type);
    let parsed = if must_be_json {
        Some(
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
                Problem::new(
                    Code::InvalidJson,
                    format!("the body is not valid JSON: {e}"),
                )
            })?,
        )
    } else {
        None
    };
    let event_id = random_id("evt_");
    let job = match (&parsed, source.provider) {
        (Some(value), Provider::Ml) => {
            let payload = ai::extract(value)?;
            let insights: Vec<InsightRecord> = payload
                .insights
                .into_iter()
                .map(|p| InsightRecord {
                    id: random_id("ins_"),
                    seq: 0,
                    tenant: source.tenant.clone(),
                    job_id: payload.job_id.clone(),
                    kind: payload.kind.clone(),
                    event_id: event_id.clone(),
                    payload: p,
                    status: InsightStatus::Pending,
                    decision: None,
                    created_at: now,
                })
                .collect();
            Some((
                JobRecord {
                    tenant: source.tenant.clone(),
                    job_id: payload.job_id,
                    kind: payload.kind,
                    status: "SUCCESS".into(),
                    event_id: event_id.clone(),
                    updated_at: now,
                },
                insights,
            ))
        }
        _ => None,
    };
    let insight_count = job.as_ref().map_or(0, |(_, i)| i.len() as u64);
    let size = bytes.len() as u64;
    let record = EventRecord {
        id: event_id.clone(),
        seq: 0,
        tenant: source.tenant.clone(),
        source: source.id.clone(),
        provider: source.provider,
        scheme: verified.scheme.to_string(),
        delivery_id: verified.delivery_id.clone(),
        signed_timestamp: verified.timestamp,
        sha256: digest,
        size,
        content_type,
        received_at: now,
        outcome: "accepted".into(),
        job_id: job.as_ref().map(|(j, _)| j.job_id.clone()),
        insights: insight_count,
        body_expires_at: now.saturating_add(window),
        body_purged: false,
    };
    ctx.set_resource(&event_id);
    let audit = vec![ctx.record(route, 200, None, now)];
    let outcome = state
        .store
        .ingest_event(
            NewEvent {
                record,
                body: bytes,
                replay_key: key,
                replay_since: since,
                job,
            },
            audit,
        )
        .await?;
    ctx.mark_audited();
    Ok(Json(match outcome {
        IngestOutcome::Stored(rec) => {
            state.metrics.observe_ingest(provider, size);
            IngestAck {
                ok: true,
                event_id: rec.id,
                insights: insight_count,
                duplicate: false,
            }
        }
        IngestOutcome::Duplicate(original) => IngestAck {
            ok: true,
            event_id: original,
            insights: 0,
            duplicate: true,
        },
    }))
}
