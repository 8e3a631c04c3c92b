//! `POST /ai/webhook` and `POST /webhooks/{source}/events`: transport only — tenant header,
//! rate limit, `Content-Length` cap, `Content-Encoding`, bounded read, request context and the
//! mapping of [`crate::ingest::Pipeline`]'s outcome (which owns DESIGN §1 steps 4–8) to answers.

use std::sync::Arc;

use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::problem::{ApiResult, Problem, RawBody};
use super::{AppState, ReqCtx, body, ctx};
use crate::identity::{DEFAULT_TENANT, valid_tenant_id};
use crate::ingest::pipeline::Settings;
use crate::ingest::{Accepted, Inbound, IngestError, Pipeline, SourceRecord};
use crate::ratelimit::RateDecision;
use crate::store::StoreError;

#[derive(Tags)]
enum ApiTags {
    /// Signed webhook ingestion.
    Ingestion,
}

/// Acknowledgement of a stored (or duplicate) delivery.
#[derive(Object, Debug)]
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

/// Ingestion endpoints.
pub struct IngestApi;

#[OpenApi]
impl IngestApi {
    /// ML model output (`X-IntelGraph-Signature` or Standard Webhooks headers; `X-Tenant-Id`
    /// selects the tenant, default `default`). Cap 512 KiB.
    #[oai(path = "/ai/webhook", method = "post", tag = "ApiTags::Ingestion")]
    async fn ai_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        body: RawBody,
    ) -> ApiResult<Json<IngestAck>> {
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
                return Err(Problem::bad_request(
                    "TENANT_HEADER_INVALID",
                    "X-Tenant-Id appears more than once",
                ));
            }
        };
        let no_secret = || {
            ctx.set_signature("not_checked");
            ingest_problem(IngestError::NoSecret)
        };
        if !valid_tenant_id(&tenant) {
            return Err(no_secret());
        }
        let source = state.store.ml_source(&tenant)?.ok_or_else(no_secret)?;
        pipeline(&state, &ctx, req, source, body, "/ai/webhook").await
    }

    /// Provider webhooks for a source created with `POST /api/tenants/{tenant}/webhook-sources`.
    #[oai(
        path = "/webhooks/:source/events",
        method = "post",
        tag = "ApiTags::Ingestion"
    )]
    async fn provider_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        source: Path<String>,
        body: RawBody,
    ) -> ApiResult<Json<IngestAck>> {
        let ctx = ctx(req);
        ctx.set_action("webhook.ingest");
        let record = state
            .store
            .get_source(&source)?
            .ok_or_else(|| Problem::not_found("webhook source"))?;
        pipeline(&state, &ctx, req, record, body, "/webhooks/{source}/events").await
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
        "this source is throttled after repeated signature failures".to_string()
    } else {
        "this source's request quota is spent".to_string()
    };
    let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", detail)
        .with_header("Retry-After", retry_after_secs.to_string());
    for (name, value) in d.headers() {
        p = p.with_header(name, value);
    }
    Some(p)
}

/// Transport around [`crate::ingest::Pipeline`]: steps 1–3 (rate limit, cap, encoding,
/// bounded read), then the domain pipeline, then the answer and its side effects (audit
/// verdict, failure penalty, metrics).
async fn pipeline(
    state: &AppState,
    ctx: &ReqCtx,
    req: &Request,
    source: SourceRecord,
    raw: RawBody,
    route: &'static str,
) -> ApiResult<Json<IngestAck>> {
    ctx.set_tenant(&source.tenant);
    ctx.set_actor(format!("source:{}", source.id));
    ctx.set_resource(&source.id);
    let provider = source.provider.as_str();

    // 1. rate limit
    let decision = state
        .ratelimits
        .check(&source.id, source.rate_per_second, source.rate_burst);
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
        retention_secs: state
            .config
            .ingest
            .body_retention_days
            .saturating_mul(86_400),
        appliance_ml_secret: &state.secrets.ml_webhook,
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
            state.ratelimits.record_outcome(&source.id, false);
            a
        }
        Err(e) => {
            ctx.set_signature(e.signature_verdict());
            match e.signature_failure() {
                Some(failed_mac) => {
                    state.metrics.observe_signature_failure(provider);
                    if state.ratelimits.record_outcome(&source.id, failed_mac) {
                        penalty_audit(state, ctx, route, now).await?;
                    }
                }
                None if !matches!(e, IngestError::NoSecret) => {
                    state.ratelimits.record_outcome(&source.id, false);
                }
                None => {}
            }
            return Err(ingest_problem(e));
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

async fn penalty_audit(state: &AppState, ctx: &ReqCtx, route: &str, now: i64) -> ApiResult<()> {
    let mut rec = ctx.record(route, 429, Some("RATE_LIMIT_PENALTY"), now);
    rec.action = "ratelimit.penalty".into();
    rec.detail = Some(format!(
        "at least half of the last {} requests failed signature checks; limited to 1 request/s for {} s",
        crate::ratelimit::FAILURE_WINDOW,
        crate::ratelimit::PENALTY_SECS
    ));
    state.store.append_audit(vec![rec]).await?;
    Ok(())
}

/// The one mapping of [`IngestError`] to problems (status, code, detail).
fn ingest_problem(e: IngestError<StoreError>) -> Problem {
    let unauthorized = |code, detail: String| Problem::new(StatusCode::UNAUTHORIZED, code, detail);
    match e {
        IngestError::NoSecret => unauthorized("SIGNATURE_INVALID", e.to_string()),
        IngestError::SignatureHeaderInvalid(msg) => {
            Problem::bad_request("SIGNATURE_HEADER_INVALID", msg)
        }
        IngestError::SignatureInvalid => unauthorized("SIGNATURE_INVALID", e.to_string()),
        IngestError::TimestampOutOfTolerance { .. } => {
            unauthorized("TIMESTAMP_OUT_OF_TOLERANCE", e.to_string())
        }
        IngestError::InvalidJson(_) => Problem::bad_request("INVALID_JSON", e.to_string()),
        IngestError::SchemaInvalid(msg) => Problem::unprocessable("SCHEMA_INVALID", msg),
        IngestError::Storage(s) => s.into(),
    }
}
