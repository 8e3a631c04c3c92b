//! Reading back: events (metadata and raw bodies), ML insights and their review, audit trails.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{InsightState, ProviderName, Verdict, ts};
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::raw::{RawResponse, ZipBytes};
use super::{AppState, ctx};
use crate::audit::{APPLIANCE_SCOPE, AuditFilter, AuditRecord};
use crate::authz::{Action, Resource, ResourceType};
use crate::ingest::{Decision, EventRecord, InsightRecord, InsightStatus};
use crate::store::{DecideOutcome, LogQueryError, StoreError};

/// A notarised delivery's offline bundle (`evidentia-webhook-bundle/v1`, checked by
/// `evidentia verify bundle FILE --key VKEY`): its evidence-log entry, leaf, inclusion proof,
/// signed checkpoint and, while retained, the raw body.
#[derive(Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookBundle {
    /// Bundle format identifier (`evidentia-webhook-bundle/v1`).
    pub format: String,
    /// Log origin (`<appliance>/<tenant>/evidence`).
    pub origin: String,
    /// The evidence-log entry (RFC 8785 JSON `{type: "webhook", event_id, source, provider,
    /// scheme, delivery_id?, signed_timestamp?, received_at, sha256, size}`), standard base64.
    pub entry: String,
    /// The raw delivery bytes, standard base64; absent once the body was purged.
    pub body: Option<String>,
    /// Leaf index of the entry in the log.
    pub leaf_index: u64,
    /// Tree size of the proof and checkpoint.
    pub tree_size: u64,
    /// base64 SHA-256(0x00 ‖ entry bytes).
    pub leaf_hash: String,
    /// RFC 9162 inclusion proof, base64 hashes, leaf end first.
    pub inclusion_proof: Vec<String>,
    /// The C2SP signed checkpoint for `tree_size`.
    pub checkpoint: String,
}

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

/// Page size and cursor from the query (`limit` 1–500, default 50; `cursor` as returned in
/// `next_cursor`).
pub fn page_args(
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<(usize, Option<u64>), Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::new(
            Code::InvalidParameter,
            format!("parameter `limit`: must be 1 to {MAX_LIMIT}"),
        ));
    }
    let cursor = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<u64>().map_err(|_| {
            Problem::new(
                Code::InvalidParameter,
                "parameter `cursor`: not a cursor this API returned",
            )
        })?),
        None => None,
    };
    Ok((limit as usize, cursor))
}

/// Metadata of a stored event.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventDto {
    /// Event id: `evt_` and 32 hex digits, unguessable.
    #[oai(validator(pattern = "^evt_[0-9a-f]{32}$"))]
    pub id: String,
    /// Source id.
    pub source: String,
    /// Provider of the source.
    pub provider: ProviderName,
    /// Scheme that verified (`standard`, `intelgraph`, `github`, …).
    pub scheme: String,
    /// Sender's delivery id (`webhook-id`, `X-GitHub-Delivery`, …), when the scheme has one.
    pub delivery_id: Option<String>,
    /// The timestamp the sender signed, for schemes that sign one.
    pub signed_timestamp: Option<time::OffsetDateTime>,
    /// Lowercase hex SHA-256 of the raw body.
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// Body size, bytes.
    pub size: u64,
    /// The `Content-Type` the body arrived with.
    pub content_type: String,
    /// When the appliance accepted it.
    pub received_at: time::OffsetDateTime,
    /// Always `accepted` (refused deliveries are audit records, not events).
    pub outcome: String,
    /// ML job id, for `/ai/webhook` events.
    pub job_id: Option<String>,
    /// Insights created from it.
    pub insights: u64,
    /// End of raw-body retention.
    pub body_expires_at: time::OffsetDateTime,
    /// Whether the raw body was purged (metadata and digest remain).
    pub body_purged: bool,
}

impl From<EventRecord> for EventDto {
    fn from(e: EventRecord) -> Self {
        Self {
            id: e.id,
            source: e.source,
            provider: e.provider.into(),
            scheme: e.scheme,
            delivery_id: e.delivery_id,
            signed_timestamp: e.signed_timestamp.map(ts),
            sha256: e.sha256,
            size: e.size,
            content_type: e.content_type,
            received_at: ts(e.received_at),
            outcome: e.outcome,
            job_id: e.job_id,
            insights: e.insights,
            body_expires_at: ts(e.body_expires_at),
            body_purged: e.body_purged,
        }
    }
}

/// A page of events, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPage {
    /// Events.
    pub items: Vec<EventDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The signed access receipt of this read (as in the `Evidentia-Access-Receipt` header);
    /// its `res.sha256` is the SHA-256 of this page's RFC 8785 form without this member.
    pub receipt: Option<String>,
}

/// A review decision.
#[derive(Object)]
pub struct DecisionDto {
    /// The verdict.
    pub decision: Verdict,
    /// Reason given.
    pub reason: String,
    /// Reviewer (`token:tok_…`).
    pub actor: String,
    /// When it was decided.
    pub decided_at: time::OffsetDateTime,
}

/// An ML insight awaiting (or past) human review.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InsightDto {
    /// Insight id (`ins_` and 32 hex digits).
    pub id: String,
    /// Job id.
    pub job_id: String,
    /// Job kind (`nlp_entities`, `entity_resolution`, `link_prediction`, `community_detect`, …).
    pub kind: String,
    /// Event it came from.
    pub event_id: String,
    /// The insight exactly as the model sent it (any JSON value).
    pub payload: serde_json::Value,
    /// Review state.
    pub status: InsightState,
    /// The decision; absent while `PENDING`.
    pub decision: Option<DecisionDto>,
    /// When it was created.
    pub created_at: time::OffsetDateTime,
}

impl From<InsightRecord> for InsightDto {
    fn from(i: InsightRecord) -> Self {
        Self {
            id: i.id,
            job_id: i.job_id,
            kind: i.kind,
            event_id: i.event_id,
            payload: i.payload,
            status: i.status.into(),
            decision: i.decision.map(|d| DecisionDto {
                decision: if d.decision == "approve" {
                    Verdict::Approve
                } else {
                    Verdict::Reject
                },
                reason: d.reason,
                actor: d.actor,
                decided_at: ts(d.at),
            }),
            created_at: ts(i.created_at),
        }
    }
}

/// A page of insights, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InsightPage {
    /// Insights.
    pub items: Vec<InsightDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The signed access receipt of this read (as in the `Evidentia-Access-Receipt` header);
    /// its `res.sha256` is the SHA-256 of this page's RFC 8785 form without this member.
    pub receipt: Option<String>,
}

/// `POST …/insights/{id}/decision` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The verdict.
    pub decision: Verdict,
    /// Why: 1–2000 characters, not only white space (stored trimmed).
    #[oai(validator(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[\s\S]*[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][\s\S]*$"
    ))]
    pub reason: String,
}

impl poem_openapi::types::Example for DecisionRequest {
    fn example() -> Self {
        Self {
            decision: Verdict::Approve,
            reason: "entity confirmed against the registry".into(),
        }
    }
}

/// One audit record (a leaf of the tenant's `audit` transparency log).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditDto {
    /// Leaf index in the tenant's audit log.
    pub index: u64,
    /// When it happened.
    pub time: time::OffsetDateTime,
    /// Tenant (or `_appliance`).
    pub tenant: String,
    /// Who: `token:tok_…`, `source:src_…`, `system` or `anonymous`.
    pub actor: String,
    /// Operation (`webhook.ingest`, `tenant.create`, `events.read`, …).
    pub action: String,
    /// HTTP method (`OTHER` for unknown methods).
    pub method: String,
    /// Matched route template (`unmatched` when no route matched).
    pub route: String,
    /// HTTP status answered (0 for appliance events).
    pub status: u16,
    /// Problem code, for failures.
    pub code: Option<String>,
    /// Client address.
    pub peer: String,
    /// Request id (`X-Request-Id` of the response).
    pub request_id: String,
    /// Signature verdict (ingestion): `valid`, `invalid`, `missing`, `valid_stale`, `not_checked`.
    pub signature: Option<String>,
    /// Resource acted on.
    pub resource: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// For aggregated records: how many identical events it stands for.
    pub count: Option<u64>,
    /// The Cedar decision on the request (absent for signed webhooks and requests refused
    /// before authorization).
    pub authz: Option<AuthzDto>,
    /// For sensitive reads: the `rid` of the signed access receipt the answer carried.
    pub access_receipt: Option<String>,
}

/// The authorization decision recorded with an audit record.
#[derive(Object)]
pub struct AuthzDto {
    /// `allow` or `deny`.
    pub decision: String,
    /// Ids of the determining policies (the satisfied permits when allowed, the satisfied
    /// forbids when denied by one; empty when no policy permitted).
    pub policies: Vec<String>,
    /// Lowercase hex SHA-256 of the policy set in force (`policy_set_sha256` of
    /// `GET …/policies`).
    pub policy_set: String,
}

impl From<AuditRecord> for AuditDto {
    fn from(a: AuditRecord) -> Self {
        let time =
            time::OffsetDateTime::parse(&a.time, &time::format_description::well_known::Rfc3339)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Self {
            index: a.index,
            time,
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
            authz: a.authz.map(|n| AuthzDto {
                decision: n.decision,
                policies: n.policies,
                policy_set: n.policy_set,
            }),
            access_receipt: a.access_receipt,
        }
    }
}

/// A page of audit records, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    /// Records.
    pub items: Vec<AuditDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The signed access receipt of this read (as in the `Evidentia-Access-Receipt` header);
    /// its `res.sha256` is the SHA-256 of this page's RFC 8785 form without this member.
    pub receipt: Option<String>,
}

/// Events, insights, audit.
pub struct EventsApi;

#[OpenApi]
impl EventsApi {
    /// List events
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer; appliance-admin in every tenant. Newest first, optionally of one source.
    #[oai(
        path = "/api/tenants/:tenant/events",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "listEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_events(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Only events of this source (`src_…`).
        #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
        source: Query<Option<String>>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = "^[0-9]{0,19}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<EventPage>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("events.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::EventsList, &Resource::tenant(&tenant), &ctx)?;
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let page = state
            .store
            .list_events(&tenant, source.0.as_deref(), limit, cursor)?;
        Ok(Json(EventPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            receipt: None,
        }))
    }

    /// Get an event
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer; appliance-admin in every tenant. The event's metadata.
    #[oai(
        path = "/api/tenants/:tenant/events/:id",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "getEvent"
    )]
    async fn get_event(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Event id (`evt_…`).
        #[oai(validator(pattern = "^evt_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Json<EventDto>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("events.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::EventsRead,
            &Resource::event(id.0.as_str(), &tenant, None),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let ev = state
            .store
            .get_event(&tenant, &id)?
            .ok_or_else(|| Problem::not_found("event"))?;
        Ok(Json(ev.into()))
    }

    /// Get an event's raw body
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, analyst, viewer; appliance-admin
    /// in every tenant. The body byte for byte as signed, with its original `Content-Type`; 410
    /// `BODY_PURGED` after its retention.
    #[oai(
        path = "/api/tenants/:tenant/events/:id/body",
        method = "get",
        tag = "ApiTags::Events",
        operation_id = "getEventBody"
    )]
    async fn get_event_body(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Event id (`evt_…`).
        #[oai(validator(pattern = "^evt_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<RawResponse, { status::TENANT | status::S410 }> {
        let ctx = ctx(req);
        ctx.set_action("events.body.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::EventsBodyRead,
            &Resource::event(id.0.as_str(), &tenant, None),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let (ev, body) = state
            .store
            .get_event_body(&tenant, &id)?
            .ok_or_else(|| Problem::not_found("event"))?;
        let bytes = body.ok_or_else(|| {
            Problem::new(
                Code::BodyPurged,
                "the raw body is no longer stored (purged at the end of its retention, or destroyed with its deleted tenant); metadata remains",
            )
        })?;
        Ok(RawResponse::download(
            ev.content_type,
            bytes,
            vec![("Content-Disposition", "attachment".into())],
        ))
    }

    /// Get a notarised delivery's offline bundle
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, analyst, viewer; appliance-admin
    /// in every tenant. An `evidentia-webhook-bundle/v1`: the delivery's evidence-log entry, its
    /// RFC 9162 inclusion proof and the signed checkpoint, and the raw body while it is retained;
    /// check it with `evidentia verify bundle FILE --key VKEY`.
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
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Event id (`evt_…`).
        #[oai(validator(pattern = "^evt_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Json<WebhookBundle>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("events.bundle.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::EventsBundleRead,
            &Resource::event(id.0.as_str(), &tenant, None),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let (_, leaf, body) = state
            .store
            .event_leaf(&tenant, &id, true)?
            .ok_or_else(|| Problem::not_found("event"))?;
        let index = leaf.ok_or_else(|| {
            Problem::new(
                Code::NotFound,
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
        let bundle = crate::verify::make_webhook_bundle(
            &origin,
            &entry,
            body.as_deref(),
            index,
            cp.size,
            &proof,
            &cp.note,
        );
        let bundle = serde_json::from_value::<WebhookBundle>(bundle).map_err(|e| {
            tracing::error!(error = %e, "webhook bundle does not match its schema");
            Problem::new(Code::Internal, "the bundle could not be assembled")
        })?;
        Ok(Json(bundle))
    }

    /// List insights
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer; appliance-admin in every tenant. ML insights, newest first, by job and
    /// review state.
    #[oai(
        path = "/api/tenants/:tenant/insights",
        method = "get",
        tag = "ApiTags::Insights",
        operation_id = "listInsights"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_insights(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Only insights of this ML job.
        #[oai(validator(min_length = 1, max_length = 200))]
        job_id: Query<Option<String>>,
        /// Only insights in this review state.
        status: Query<Option<InsightState>>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = "^[0-9]{0,19}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<InsightPage>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("insights.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::InsightsList, &Resource::tenant(&tenant), &ctx)?;
        let status = status.0.map(InsightStatus::from);
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let page =
            state
                .store
                .list_insights(&tenant, job_id.0.as_deref(), status, limit, cursor)?;
        Ok(Json(InsightPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            receipt: None,
        }))
    }

    /// Decide an insight
    ///
    /// Roles (default policies): tenant-admin, operator, analyst; appliance-admin in every tenant.
    /// Approve or reject a `PENDING` insight, with a reason.
    #[oai(
        path = "/api/tenants/:tenant/insights/:id/decision",
        method = "post",
        tag = "ApiTags::Insights",
        operation_id = "decideInsight"
    )]
    async fn decide(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Insight id (`ins_…`).
        #[oai(validator(pattern = "^ins_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// The verdict and its reason.
        body: StrictJson<DecisionRequest>,
    ) -> ApiResult<Json<InsightDto>, { status::TENANT | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("insights.decide");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::InsightsDecide,
            &Resource::new(ResourceType::Event, id.0.as_str(), &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let status = match body.0.decision {
            Verdict::Approve => InsightStatus::Approved,
            Verdict::Reject => InsightStatus::Rejected,
        };
        let reason = body.0.reason.trim().to_string();
        if reason.is_empty() || body.0.reason.chars().count() > 2000 {
            return Err(
                Problem::new(Code::InvalidReason, "reason must be 1 to 2000 characters").into(),
            );
        }
        let now = state.now();
        ctx.set_detail(body.0.decision.as_str().to_string());
        let decision = Decision {
            decision: body.0.decision.as_str().to_string(),
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
            DecideOutcome::NotFound => Err(Problem::not_found("insight").into()),
            DecideOutcome::AlreadyDecided(rec) => Err(Problem::new(
                Code::InsightAlreadyDecided,
                format!("this insight is already {}", rec.status.as_str()),
            )
            .into()),
        }
    }

    /// List a tenant's audit records
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin; appliance-admin
    /// in every tenant. Newest first; each record is a leaf of the tenant's `audit` log. Filters
    /// combine; a filtered page examines at most 20,000 records and then answers with what it
    /// found and a `next_cursor` to go on from (a page may so be short, even empty, before the
    /// end).
    #[oai(
        path = "/api/tenants/:tenant/audit",
        method = "get",
        tag = "ApiTags::Audit",
        operation_id = "listAuditRecords"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn tenant_audit(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = "^[0-9]{0,19}$"))]
        cursor: Query<Option<String>>,
        /// Only records of this actor (`token:tok_…`, `user:usr_…`, `source:src_…`,
        /// `anonymous`).
        #[oai(validator(max_length = 256))]
        actor: Query<Option<String>>,
        /// Only records of this action (`events.body.read`, `webhook.ingest`, …).
        #[oai(validator(max_length = 256))]
        action: Query<Option<String>>,
        /// Only records answered with this HTTP status.
        #[oai(validator(minimum(value = "100"), maximum(value = "599")))]
        status: Query<Option<u16>>,
        /// Only records at or after this time (RFC 3339).
        since: Query<Option<time::OffsetDateTime>>,
        /// Only records before this time (RFC 3339).
        until: Query<Option<time::OffsetDateTime>>,
    ) -> ApiResult<Json<AuditPage>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("audit.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuditRead, &Resource::tenant(&tenant), &ctx)?;
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let filter = AuditFilter {
            actor: actor.0,
            action: action.0,
            status: status.0,
            since: since.0.map(time::OffsetDateTime::unix_timestamp),
            until: until.0.map(time::OffsetDateTime::unix_timestamp),
        };
        let page = state.store.list_audit(&tenant, limit, cursor, &filter)?;
        Ok(Json(AuditPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            receipt: None,
        }))
    }

    /// List appliance audit records
    ///
    /// Roles: appliance-admin only. Records of requests that named no known tenant, newest first
    /// (the `system` log).
    #[oai(
        path = "/api/audit",
        method = "get",
        tag = "ApiTags::Audit",
        operation_id = "listApplianceAuditRecords"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn appliance_audit(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = "^[0-9]{0,19}$"))]
        cursor: Query<Option<String>>,
        /// Only records of this actor (`token:tok_…`, `user:usr_…`, `source:src_…`,
        /// `anonymous`).
        #[oai(validator(max_length = 256))]
        actor: Query<Option<String>>,
        /// Only records of this action (`events.body.read`, `webhook.ingest`, …).
        #[oai(validator(max_length = 256))]
        action: Query<Option<String>>,
        /// Only records answered with this HTTP status.
        #[oai(validator(minimum(value = "100"), maximum(value = "599")))]
        status: Query<Option<u16>>,
        /// Only records at or after this time (RFC 3339).
        since: Query<Option<time::OffsetDateTime>>,
        /// Only records before this time (RFC 3339).
        until: Query<Option<time::OffsetDateTime>>,
    ) -> ApiResult<Json<AuditPage>, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action("audit.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuditRead, &Resource::appliance(), &ctx)?;
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let filter = AuditFilter {
            actor: actor.0,
            action: action.0,
            status: status.0,
            since: since.0.map(time::OffsetDateTime::unix_timestamp),
            until: until.0.map(time::OffsetDateTime::unix_timestamp),
        };
        let page = state
            .store
            .list_audit(APPLIANCE_SCOPE, limit, cursor, &filter)?;
        Ok(Json(AuditPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            receipt: None,
        }))
    }

    /// Export a tenant's audit trail
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin;
    /// appliance-admin in every tenant. Records `from` to `from + limit − 1` (at most 10,000,
    /// stopping at the latest signed checkpoint) with their inclusion proofs and that
    /// checkpoint, as a zip an auditor checks offline with `evidentia verify audit-export`.
    #[oai(
        path = "/api/tenants/:tenant/audit/export",
        method = "get",
        tag = "ApiTags::Audit",
        operation_id = "exportAuditRecords"
    )]
    async fn tenant_audit_export(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Index of the first record (default 0).
        from: Query<Option<u64>>,
        /// Most records, 1–10000 (default 10000).
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
        limit: Query<Option<u64>>,
    ) -> ApiResult<ZipBytes, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action(Action::AuditExport.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuditExport, &Resource::tenant(&tenant), &ctx)?;
        Ok(state.audit_export(&tenant, from.0, limit.0, &ctx)?)
    }

    /// Export the appliance audit trail
    ///
    /// Roles: appliance-admin only. The `system` log, as `exportAuditRecords` exports a
    /// tenant's.
    #[oai(
        path = "/api/audit/export",
        method = "get",
        tag = "ApiTags::Audit",
        operation_id = "exportApplianceAuditRecords"
    )]
    async fn appliance_audit_export(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Index of the first record (default 0).
        from: Query<Option<u64>>,
        /// Most records, 1–10000 (default 10000).
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
        limit: Query<Option<u64>>,
    ) -> ApiResult<ZipBytes, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action(Action::AuditExport.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuditExport, &Resource::appliance(), &ctx)?;
        Ok(state.audit_export(APPLIANCE_SCOPE, from.0, limit.0, &ctx)?)
    }
}

impl AppState {
    /// Builds an audit export of `tenant` (see [`crate::audit::export`]).
    ///
    /// # Errors
    /// 400 `INVALID_RANGE` when `from` is beyond the signed checkpoint; storage errors.
    fn audit_export(
        &self,
        tenant: &str,
        from: Option<u64>,
        limit: Option<u64>,
        ctx: &crate::api::ReqCtx,
    ) -> Result<ZipBytes, Problem> {
        let origin = self.store.audit_origin(tenant);
        self.log_export(tenant, &origin, "audit", from, limit, ctx)
    }

    /// Builds an export of log `origin` of `tenant` (`log` names it in the file name) in the
    /// [`crate::audit::export`] format: a range of at most 10,000 entries with their inclusion
    /// proofs and the signed checkpoint, checked by `evidentia verify audit-export`.
    ///
    /// # Errors
    /// 400 `INVALID_RANGE` when the log is empty or `from` is beyond its signed checkpoint;
    /// storage errors.
    pub(crate) fn log_export(
        &self,
        tenant: &str,
        origin: &str,
        log: &str,
        from: Option<u64>,
        limit: Option<u64>,
        ctx: &crate::api::ReqCtx,
    ) -> Result<ZipBytes, Problem> {
        use crate::audit::export;
        let cp = self.store.checkpoint(origin)?.ok_or_else(|| {
            Problem::new(
                Code::InvalidRange,
                format!("the {log} log has no checkpoint yet"),
            )
        })?;
        let from = from.unwrap_or(0);
        if from > cp.size {
            return Err(Problem::new(
                Code::InvalidRange,
                format!(
                    "from {from} is beyond the signed checkpoint's size {}",
                    cp.size
                ),
            ));
        }
        let to = from
            .saturating_add(
                limit
                    .unwrap_or(export::MAX_RECORDS)
                    .min(export::MAX_RECORDS),
            )
            .min(cp.size);
        let entries = self
            .store
            .log_range_with_proofs(origin, from, to, cp.size)
            .map_err(|e| match e {
                LogQueryError::Store(s) => Problem::from(s),
                LogQueryError::Range(m) => Problem::new(Code::InvalidRange, m),
            })?;
        ctx.set_resource(&format!("{from}..{to}"));
        let zip = export::build(&export::ExportParts {
            origin,
            tenant,
            checkpoint: &cp.note,
            tree_size: cp.size,
            first_index: from,
            entries,
        })
        .map_err(|e| {
            tracing::error!(error = %e, "audit export could not be built");
            Problem::new(Code::Internal, "the export could not be assembled")
        })?;
        let name = format!("{}-{log}-{from}-{to}.zip", tenant.trim_start_matches('_'));
        Ok(ZipBytes(RawResponse {
            // Sent as a download, like every stored byte answer; the file name says zip.
            content_type: "application/octet-stream".into(),
            headers: vec![
                ("Repr-Digest", crate::evidence::repr_digest(&zip)),
                (
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes: zip,
        }))
    }
}
