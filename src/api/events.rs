//! Reading back: events (metadata and raw bodies), ML insights and their review, audit trails.

use std::sync::Arc;

use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::BearerAuth;
use super::problem::{ApiResult, Problem, RawResponse};
use super::{AppState, ctx};
use crate::audit::{APPLIANCE_SCOPE, AuditRecord};
use crate::clock::rfc3339;
use crate::identity::Role;
use crate::ingest::{Decision, EventRecord, InsightRecord, InsightStatus};
use crate::store::{DecideOutcome, LogQueryError, StoreError};

#[derive(Tags)]
enum ApiTags {
    /// Stored webhook events.
    Events,
    /// ML insights awaiting human review.
    Insights,
    /// Audit trails.
    Audit,
}

/// Default page size.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
const MAX_LIMIT: u32 = 500;

fn page_args(limit: Option<u32>, cursor: Option<String>) -> Result<(usize, Option<u64>), Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(
            "INVALID_PARAMETER",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let cursor = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<u64>().map_err(|_| {
            Problem::bad_request("INVALID_PARAMETER", "cursor is not one this API returned")
        })?),
        None => None,
    };
    Ok((limit as usize, cursor))
}

/// Metadata of a stored event.
#[derive(Object)]
pub struct EventDto {
    /// `evt_…`.
    pub id: String,
    /// Source id.
    pub source: String,
    /// Provider.
    pub provider: String,
    /// Scheme that verified (`standard`, `intelgraph`, `github`, …).
    pub scheme: String,
    /// Sender's delivery id.
    pub delivery_id: Option<String>,
    /// Signed timestamp (RFC 3339).
    pub signed_timestamp: Option<String>,
    /// Hex SHA-256 of the raw body.
    pub sha256: String,
    /// Body size, bytes.
    pub size: u64,
    /// Original `Content-Type`.
    pub content_type: String,
    /// RFC 3339.
    pub received_at: String,
    /// `accepted`.
    pub outcome: String,
    /// ML job id.
    pub job_id: Option<String>,
    /// Insights created.
    pub insights: u64,
    /// RFC 3339 end of raw-body retention.
    pub body_expires_at: String,
    /// Whether the raw body was purged.
    pub body_purged: bool,
}

impl From<EventRecord> for EventDto {
    fn from(e: EventRecord) -> Self {
        Self {
            id: e.id,
            source: e.source,
            provider: e.provider.as_str().into(),
            scheme: e.scheme,
            delivery_id: e.delivery_id,
            signed_timestamp: e.signed_timestamp.map(rfc3339),
            sha256: e.sha256,
            size: e.size,
            content_type: e.content_type,
            received_at: rfc3339(e.received_at),
            outcome: e.outcome,
            job_id: e.job_id,
            insights: e.insights,
            body_expires_at: rfc3339(e.body_expires_at),
            body_purged: e.body_purged,
        }
    }
}

/// A page of events, newest first.
#[derive(Object)]
pub struct EventPage {
    /// Events.
    pub items: Vec<EventDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A review decision.
#[derive(Object)]
pub struct DecisionDto {
    /// `approve` or `reject`.
    pub decision: String,
    /// Reason given.
    pub reason: String,
    /// Reviewer.
    pub actor: String,
    /// RFC 3339.
    pub decided_at: String,
}

/// An ML insight.
#[derive(Object)]
pub struct InsightDto {
    /// `ins_…`.
    pub id: String,
    /// Job id.
    pub job_id: String,
    /// Job kind.
    pub kind: String,
    /// Event it came from.
    pub event_id: String,
    /// The insight as the model sent it.
    pub payload: serde_json::Value,
    /// `PENDING`, `APPROVED` or `REJECTED`.
    pub status: String,
    /// The decision, once made.
    pub decision: Option<DecisionDto>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<InsightRecord> for InsightDto {
    fn from(i: InsightRecord) -> Self {
        Self {
            id: i.id,
            job_id: i.job_id,
            kind: i.kind,
            event_id: i.event_id,
            payload: i.payload,
            status: i.status.as_str().into(),
            decision: i.decision.map(|d| DecisionDto {
                decision: d.decision,
                reason: d.reason,
                actor: d.actor,
                decided_at: rfc3339(d.at),
            }),
            created_at: rfc3339(i.created_at),
        }
    }
}

/// A page of insights, newest first.
#[derive(Object)]
pub struct InsightPage {
    /// Insights.
    pub items: Vec<InsightDto>,
    /// Next-page cursor.
    pub next_cursor: Option<String>,
}

/// `POST …/insights/{id}/decision` body.
#[derive(Object)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    pub decision: String,
    /// Why (1–2000 characters).
    pub reason: String,
}

/// One audit event.
#[derive(Object)]
pub struct AuditDto {
    /// Position in the tenant's audit trail.
    pub index: u64,
    /// RFC 3339.
    pub time: String,
    /// Tenant (or `_appliance`).
    pub tenant: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// HTTP status answered.
    pub status: u16,
    /// Problem code, for failures.
    pub code: Option<String>,
    /// Client address.
    pub peer: String,
    /// Request id.
    pub request_id: String,
    /// Signature verdict (ingestion).
    pub signature: Option<String>,
    /// Resource acted on.
    pub resource: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// For aggregated records: how many identical events it stands for.
    pub count: Option<u64>,
}

impl From<AuditRecord> for AuditDto {
    fn from(a: AuditRecord) -> Self {
        Self {
            index: a.index,
            time: a.time,
            tenant: a.tenant,
            actor: a.actor,
            action: a.action,
            method: a.method,
            route: a.route,
            status: a.status,
            code: a.code,
            peer: a.peer,
            request_id: a.request_id,
            signature: a.signature,
            resource: a.resource,
            detail: a.detail,
            count: a.count,
        }
    }
}

/// A page of audit events, newest first.
#[derive(Object)]
pub struct AuditPage {
    /// Events.
    pub items: Vec<AuditDto>,
    /// Next-page cursor.
    pub next_cursor: Option<String>,
}

/// Events, insights, audit.
pub struct EventsApi;

#[OpenApi]
impl EventsApi {
    /// List a tenant's events, newest first.
    #[oai(
        path = "/api/tenants/:tenant/events",
        method = "get",
        tag = "ApiTags::Events"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_events(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        source: Query<Option<String>>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<EventPage>> {
        let ctx = ctx(req);
        ctx.set_action("events.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let page = state
            .store
            .list_events(&tenant, source.0.as_deref(), limit, cursor)?;
        Ok(Json(EventPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// One event's metadata.
    #[oai(
        path = "/api/tenants/:tenant/events/:id",
        method = "get",
        tag = "ApiTags::Events"
    )]
    async fn get_event(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
    ) -> ApiResult<Json<EventDto>> {
        let ctx = ctx(req);
        ctx.set_action("events.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        ctx.set_resource(&id);
        let ev = state
            .store
            .get_event(&tenant, &id)?
            .ok_or_else(|| Problem::not_found("event"))?;
        Ok(Json(ev.into()))
    }

    /// One event's raw body, byte for byte, with its original `Content-Type`.
    #[oai(
        path = "/api/tenants/:tenant/events/:id/body",
        method = "get",
        tag = "ApiTags::Events"
    )]
    async fn get_event_body(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
    ) -> ApiResult<RawResponse> {
        let ctx = ctx(req);
        ctx.set_action("events.body.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        ctx.set_resource(&id);
        let (ev, body) = state
            .store
            .get_event_body(&tenant, &id)?
            .ok_or_else(|| Problem::not_found("event"))?;
        let bytes = body.ok_or_else(|| {
            Problem::new(
                StatusCode::GONE,
                "BODY_PURGED",
                "the raw body was purged at the end of its retention period; metadata remains",
            )
        })?;
        Ok(RawResponse {
            content_type: ev.content_type,
            bytes,
            headers: vec![("Content-Disposition", "attachment".into())],
        })
    }

    /// A notarised delivery's offline verification bundle (`evidentia-webhook-bundle/v1`):
    /// its evidence-log entry, RFC 9162 inclusion proof and signed checkpoint, and the raw body
    /// while it is retained; check it with `evidentia verify bundle FILE --key VKEY`.
    #[oai(
        path = "/api/tenants/:tenant/events/:id/bundle",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "getEventBundle"
    )]
    async fn get_event_bundle(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
    ) -> ApiResult<Json<serde_json::Value>> {
        let ctx = ctx(req);
        ctx.set_action("events.bundle.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        ctx.set_resource(&id);
        let (_, leaf, body) = state
            .store
            .event_leaf(&tenant, &id, true)?
            .ok_or_else(|| Problem::not_found("event"))?;
        let index = leaf.ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "EVENT_NOT_NOTARISED",
                "this event was stored before deliveries were notarised and has no evidence-log leaf",
            )
        })?;
        let origin = state.store.origin(&tenant, "evidence");
        let entry = state.store.log_entry(&origin, index).map_err(|e| match e {
            LogQueryError::Store(s) => Problem::from(s),
            LogQueryError::Range(message) => Problem::from(StoreError::Corrupt {
                table: "log_entries",
                message,
            }),
        })?;
        let (cp, proof) = state.latest_inclusion(&origin, index)?;
        Ok(Json(crate::verify::make_webhook_bundle(
            &origin,
            &entry,
            body.as_deref(),
            index,
            cp.size,
            &proof,
            &cp.note,
        )))
    }

    /// List a tenant's ML insights, newest first.
    #[oai(
        path = "/api/tenants/:tenant/insights",
        method = "get",
        tag = "ApiTags::Insights"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_insights(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        job_id: Query<Option<String>>,
        status: Query<Option<String>>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<InsightPage>> {
        let ctx = ctx(req);
        ctx.set_action("insights.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        let status = match status.0.as_deref() {
            None | Some("") => None,
            Some(s) => Some(InsightStatus::parse(s).ok_or_else(|| {
                Problem::bad_request(
                    "INVALID_PARAMETER",
                    "status must be PENDING, APPROVED or REJECTED",
                )
            })?),
        };
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let page =
            state
                .store
                .list_insights(&tenant, job_id.0.as_deref(), status, limit, cursor)?;
        Ok(Json(InsightPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Approve or reject a PENDING insight (tenant-admin).
    #[oai(
        path = "/api/tenants/:tenant/insights/:id/decision",
        method = "post",
        tag = "ApiTags::Insights"
    )]
    async fn decide(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
        body: Json<DecisionRequest>,
    ) -> ApiResult<Json<InsightDto>> {
        let ctx = ctx(req);
        ctx.set_action("insights.decide");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        ctx.set_resource(&id);
        let status = match body.0.decision.as_str() {
            "approve" => InsightStatus::Approved,
            "reject" => InsightStatus::Rejected,
            _ => {
                return Err(Problem::unprocessable(
                    "INVALID_DECISION",
                    "decision must be approve or reject",
                ));
            }
        };
        let reason = body.0.reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(Problem::unprocessable(
                "INVALID_REASON",
                "reason must be 1 to 2000 characters",
            ));
        }
        let now = state.now();
        ctx.set_detail(body.0.decision.clone());
        let decision = Decision {
            decision: body.0.decision.clone(),
            reason,
            actor: p.actor(),
            at: now,
        };
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/insights/{id}/decision",
            200,
            None,
            now,
        )];
        match state
            .store
            .decide_insight(tenant.0, id.0, status, decision, audit)
            .await?
        {
            DecideOutcome::Decided(rec) => {
                ctx.mark_audited();
                Ok(Json(rec.into()))
            }
            DecideOutcome::NotFound => Err(Problem::not_found("insight")),
            DecideOutcome::AlreadyDecided(rec) => Err(Problem::conflict(
                "INSIGHT_ALREADY_DECIDED",
                format!("this insight is already {}", rec.status.as_str()),
            )),
        }
    }

    /// A tenant's audit trail, newest first (tenant-admin).
    #[oai(
        path = "/api/tenants/:tenant/audit",
        method = "get",
        tag = "ApiTags::Audit"
    )]
    async fn tenant_audit(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AuditPage>> {
        let ctx = ctx(req);
        ctx.set_action("audit.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let page = state.store.list_audit(&tenant, limit, cursor)?;
        Ok(Json(AuditPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// The appliance-scope audit trail (requests that named no known tenant), newest first
    /// (appliance-admin).
    #[oai(path = "/api/audit", method = "get", tag = "ApiTags::Audit")]
    async fn appliance_audit(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AuditPage>> {
        let ctx = ctx(req);
        ctx.set_action("audit.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.require_admin(&p)?;
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let page = state.store.list_audit(APPLIANCE_SCOPE, limit, cursor)?;
        Ok(Json(AuditPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }
}
