//! Integrations: endpoints and SIEMs a tenant's events, evidence, audit records and
//! checkpoints are delivered to (DESIGN §4), their deliveries, redelivery and test sends.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use serde::{Deserialize, Serialize};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{KindName, ts};
use super::events::page_args;
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, ctx};
use crate::authz::{Action, Resource, ResourceType};
use crate::delivery::integration::{
    self as domain, DeliveryStatus, IntegrationError, IntegrationPatch, IntegrationRecord,
    IntegrationStatus, NewIntegration,
};
use crate::store::{DeliveryView, IntegrationUpdate, Redelivery};

#[derive(Tags)]
enum ApiTags {
    /// Delivery to customer endpoints and SIEMs.
    Integrations,
}

/// State of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    /// Waiting for its next attempt.
    Pending,
    /// Accepted by the endpoint.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl From<DeliveryStatusName> for DeliveryStatus {
    fn from(v: DeliveryStatusName) -> Self {
        match v {
            DeliveryStatusName::Pending => DeliveryStatus::Pending,
            DeliveryStatusName::Delivered => DeliveryStatus::Delivered,
            DeliveryStatusName::Failed => DeliveryStatus::Failed,
        }
    }
}

impl From<DeliveryStatus> for DeliveryStatusName {
    fn from(v: DeliveryStatus) -> Self {
        match v {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// `POST /api/tenants/{tenant}/integrations` body.
#[derive(Object, Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    /// Display name, 1–100 characters.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Kind (default `webhook`).
    pub kind: Option<KindName>,
    /// Endpoint: `https` (plain `http` only for hosts in `delivery.allow_http_hosts`), no
    /// userinfo, no fragment, not an address in a blocked range; at most 2048 bytes.
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: String,
    /// What to deliver: `event.received`, `evidence.recorded`, `audit.recorded`,
    /// `checkpoint.signed` (`siem-ocsf`: the last two only).
    #[oai(validator(min_items = 1, max_items = 4))]
    pub event_types: Vec<String>,
    /// Extra request headers (at most 32; `webhook-*`, `content-type`, `content-length`,
    /// `host`, `proxy-*`, hop-by-hop headers and, for `splunk-hec`, `authorization` are
    /// reserved). Values are sealed at rest and never returned.
    pub headers: Option<BTreeMap<String, String>>,
    /// `webhook`, `siem-ocsf`: the `whsec_<base64>` signing secret (24–64 bytes); generated
    /// and returned once when absent.
    #[oai(validator(max_length = 200))]
    pub secret: Option<String>,
    /// `splunk-hec`: the HEC token (required; sealed at rest, never returned).
    #[oai(validator(min_length = 1, max_length = 128))]
    pub hec_token: Option<String>,
    /// `splunk-hec`: target index (the token's default when absent).
    #[oai(validator(min_length = 1, max_length = 80))]
    pub hec_index: Option<String>,
    /// `splunk-hec`: wait for indexer acknowledgement before a batch counts as delivered.
    pub hec_ack: Option<bool>,
}

impl poem_openapi::types::Example for CreateIntegration {
    fn example() -> Self {
        Self {
            name: "SOC webhook".into(),
            kind: Some(KindName::Webhook),
            url: "https://soc.example.com/hooks/evidentia".into(),
            event_types: vec!["audit.recorded".into(), "checkpoint.signed".into()],
            headers: None,
            secret: None,
            hec_token: None,
            hec_index: None,
            hec_ack: None,
        }
    }
}

/// `PATCH …/integrations/{id}` body: absent fields stay as they are.
#[derive(Object, Deserialize, Default)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegration {
    /// New display name.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// New endpoint (same rules as at creation).
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: Option<String>,
    /// New subscriptions.
    #[oai(validator(min_items = 1, max_items = 4))]
    pub event_types: Option<Vec<String>>,
    /// New extra headers, replacing all of them (values are never returned, so send every
    /// header the integration should keep).
    pub headers: Option<BTreeMap<String, String>>,
    /// `false` stops deliveries (they stay pending); `true` resumes them, due at once, and
    /// clears a disable by 410 or by 5 days of failures.
    pub enabled: Option<bool>,
    /// `webhook`, `siem-ocsf`: replace the signing secret; the old one keeps signing beside
    /// the new one for 24 hours.
    pub rotate_secret: Option<bool>,
    /// With `rotate_secret`: the new `whsec_` secret (generated and returned once when absent).
    #[oai(validator(max_length = 200))]
    pub secret: Option<String>,
    /// `splunk-hec`: new HEC token.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub hec_token: Option<String>,
    /// `splunk-hec`: new index (`""` for the token's default).
    #[oai(validator(max_length = 80))]
    pub hec_index: Option<String>,
    /// `splunk-hec`: indexer acknowledgement on or off.
    pub hec_ack: Option<bool>,
}

/// An integration (credentials are never returned, except a generated secret once).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct IntegrationDto {
    /// `int_` and 32 hex digits.
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: KindName,
    /// Endpoint (canonical form).
    pub url: String,
    /// Subscribed types.
    pub event_types: Vec<String>,
    /// Names of the extra headers (lowercase); their values are sealed at rest and never
    /// returned, like secrets.
    pub headers: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Why it is disabled: `manual`, `gone` (the endpoint answered 410), `failing` (5 days
    /// without a success).
    pub disabled_reason: Option<String>,
    /// Circuit breaker of the endpoint: `closed`, `open`, `half_open`.
    pub breaker: String,
    /// Start of the current failure streak.
    pub failing_since: Option<time::OffsetDateTime>,
    /// Signing secret slots (values never listed): while a rotation's grace runs, two sign.
    pub secret_slots: Vec<SecretSlotDto>,
    /// `splunk-hec`: the index.
    pub hec_index: Option<String>,
    /// `splunk-hec`: whether indexer acknowledgement is on.
    pub hec_ack: Option<bool>,
    /// Created.
    pub created_at: time::OffsetDateTime,
    /// Last changed.
    pub updated_at: time::OffsetDateTime,
    /// The generated secret: only in the answer that generated it.
    pub secret: Option<String>,
}

/// A signing secret slot.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SecretSlotDto {
    /// Slot number.
    pub n: u32,
    /// Added.
    pub created_at: time::OffsetDateTime,
    /// Stops signing at (after a rotation).
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Integrations of a tenant.
#[derive(Object)]
pub struct IntegrationList {
    /// Integrations, by id.
    pub items: Vec<IntegrationDto>,
}

/// One attempt of a delivery.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AttemptDto {
    /// When it ended.
    pub at: time::OffsetDateTime,
    /// HTTP status of the answer, if one arrived.
    pub status: Option<u16>,
    /// Duration, milliseconds.
    pub latency_ms: u64,
    /// Error class: `blocked_address`, `dns`, `connect`, `tls`, `timeout`, `redirect`,
    /// `http_status`, `body_too_large`, `protocol`, `invalid_url`.
    pub error: Option<String>,
    /// What the error was (the blocked range, the redirect target, …).
    pub detail: Option<String>,
    /// The first 1 KiB of the answer's body.
    pub excerpt: Option<String>,
}

/// A delivery: one message for one integration.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryDto {
    /// `dlv_` and 32 hex digits; also the `webhook-id` of every attempt.
    pub id: String,
    /// The integration.
    pub integration: String,
    /// Message type (`audit.recorded`, …, `integration.test`).
    pub event_type: String,
    /// State.
    pub status: DeliveryStatusName,
    /// The log and leaf index (or checkpoint size) it reports.
    pub log: Option<String>,
    /// Leaf index of the reported entry.
    pub index: Option<u64>,
    /// Tree size of the reported checkpoint.
    pub checkpoint_size: Option<u64>,
    /// Enqueued.
    pub created_at: time::OffsetDateTime,
    /// Next attempt while pending (absent while the integration is disabled).
    pub next_attempt_at: Option<time::OffsetDateTime>,
    /// Attempts, oldest first (the last 16).
    pub attempts: Vec<AttemptDto>,
}

impl From<DeliveryView> for DeliveryDto {
    fn from(v: DeliveryView) -> Self {
        let r = v.record;
        let (log, index, checkpoint_size) = match &r.payload {
            domain::Payload::Entry { log, index } => (Some(log.clone()), Some(*index), None),
            domain::Payload::Checkpoint { log, size, .. } => (Some(log.clone()), None, Some(*size)),
            domain::Payload::Test => (None, None, None),
        };
        Self {
            id: v.id,
            integration: r.integration,
            event_type: r.event_type.as_str().into(),
            status: r.status.into(),
            log,
            index,
            checkpoint_size,
            created_at: ts(r.created_at),
            next_attempt_at: r
                .next_at
                .filter(|_| r.status == DeliveryStatus::Pending)
                .map(ts),
            attempts: r
                .attempts
                .into_iter()
                .map(|a| AttemptDto {
                    at: ts(a.at),
                    status: a.status,
                    latency_ms: a.latency_ms,
                    error: a.error.map(|e| e.as_str().to_string()),
                    detail: a.detail,
                    excerpt: Some(a.excerpt).filter(|e| !e.is_empty()),
                })
                .collect(),
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryPage {
    /// Deliveries.
    pub items: Vec<DeliveryDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum Created {
    /// Created.
    #[oai(status = 201)]
    Created(Json<IntegrationDto>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted with its deliveries.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
enum Queued {
    /// Queued: the worker sends it at once.
    #[oai(status = 202)]
    Accepted(Json<DeliveryDto>),
}

fn invalid(e: &IntegrationError) -> Problem {
    Problem::new(Code::IntegrationInvalid, e.to_string())
        .with_member("reason", serde_json::Value::from(e.reason()))
}

fn headers_vec(h: Option<BTreeMap<String, String>>) -> Option<Vec<(String, String)>> {
    h.map(|m| m.into_iter().collect())
}

fn integration_resource(id: &str, tenant: &str) -> Resource {
    Resource::new(ResourceType::Integration, id, tenant)
}

impl AppState {
    fn integration_dto(&self, r: &IntegrationRecord, secret: Option<String>) -> IntegrationDto {
        IntegrationDto {
            id: r.id.clone(),
            tenant: r.tenant.clone(),
            name: r.name.clone(),
            kind: r.kind.into(),
            url: r.url.clone(),
            event_types: r.event_types.iter().map(|t| t.as_str().into()).collect(),
            headers: r.headers.iter().map(|(k, _)| k.clone()).collect(),
            status: match r.status {
                IntegrationStatus::Enabled => "enabled".into(),
                IntegrationStatus::Disabled => "disabled".into(),
            },
            disabled_reason: r.disabled_reason.map(|d| d.as_str().into()),
            breaker: self.delivery.breaker_state(&r.id).as_str().into(),
            failing_since: r.failing_since.map(ts),
            secret_slots: r
                .secrets
                .iter()
                .map(|s| SecretSlotDto {
                    n: s.n,
                    created_at: ts(s.created_at),
                    expires_at: s.expires_at.map(ts),
                })
                .collect(),
            hec_index: r.hec.as_ref().and_then(|h| h.index.clone()),
            hec_ack: r.hec.as_ref().map(|h| h.ack),
            created_at: ts(r.created_at),
            updated_at: ts(r.updated_at),
            secret,
        }
    }

    fn find_integration(&self, tenant: &str, id: &str) -> Result<IntegrationRecord, Problem> {
        self.store
            .get_integration(tenant, id)?
            .ok_or_else(|| Problem::not_found("integration"))
    }
}

/// Integrations and deliveries.
pub struct IntegrationsApi;

#[OpenApi]
impl IntegrationsApi {
    /// Create an integration
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant.
    /// The URL is judged by the registration rules (422 `INTEGRATION_INVALID` with a `reason`);
    /// every attempt is judged again at connect time. A generated secret is returned once.
    #[oai(
        path = "/api/tenants/:tenant/integrations",
        method = "post",
        tag = "ApiTags::Integrations",
        operation_id = "createIntegration"
    )]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Kind, endpoint, subscriptions and credentials.
        body: StrictJson<CreateIntegration>,
    ) -> ApiResult<Created, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action("integration.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationCreate,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let b = body.0;
        let now = state.now();
        let new = NewIntegration {
            name: b.name,
            kind: b.kind.map(Into::into),
            url: b.url,
            event_types: b.event_types,
            headers: headers_vec(b.headers).unwrap_or_default(),
            secret: b.secret,
            hec_token: b.hec_token,
            hec_index: b.hec_index,
            hec_ack: b.hec_ack,
        };
        let policy = state.delivery.client().policy();
        let (record, generated) =
            domain::create(policy, &tenant, new, now).map_err(|e| invalid(&e))?;
        domain::check_resolution(state.delivery.client(), &record.url)
            .await
            .map_err(|e| invalid(&e))?;
        ctx.set_resource(&record.id);
        let audit = vec![ctx.record("/api/tenants/{tenant}/integrations", 201, None, now)];
        if !state
            .store
            .insert_integration(record.clone(), audit)
            .await?
        {
            return Err(invalid(&IntegrationError::Limit).into());
        }
        ctx.mark_audited();
        Ok(Created::Created(Json(
            state.integration_dto(&record, generated),
        )))
    }

    /// List integrations
    ///
    /// Roles (default policies): tenant-admin, security-admin, operator, compliance-officer;
    /// appliance-admin in every tenant.
    #[oai(
        path = "/api/tenants/:tenant/integrations",
        method = "get",
        tag = "ApiTags::Integrations",
        operation_id = "listIntegrations"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<IntegrationList>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("integration.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationList,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let items = state
            .store
            .list_integrations(&tenant)?
            .iter()
            .map(|r| state.integration_dto(r, None))
            .collect();
        Ok(Json(IntegrationList { items }))
    }

    /// Get an integration
    ///
    /// Roles (default policies): tenant-admin, security-admin, operator, compliance-officer;
    /// appliance-admin in every tenant.
    #[oai(
        path = "/api/tenants/:tenant/integrations/:id",
        method = "get",
        tag = "ApiTags::Integrations",
        operation_id = "getIntegration"
    )]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Integration id (`int_…`).
        #[oai(validator(pattern = "^int_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Json<IntegrationDto>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("integration.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationRead,
            &integration_resource(&id, &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let r = state.find_integration(&tenant, &id)?;
        Ok(Json(state.integration_dto(&r, None)))
    }

    /// Update an integration
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant.
    /// Disable, enable (pending deliveries resume), rotate the secret, change the endpoint or
    /// subscriptions.
    #[oai(
        path = "/api/tenants/:tenant/integrations/:id",
        method = "patch",
        tag = "ApiTags::Integrations",
        operation_id = "updateIntegration"
    )]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Integration id (`int_…`).
        #[oai(validator(pattern = "^int_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// The fields to change.
        body: StrictJson<UpdateIntegration>,
    ) -> ApiResult<Json<IntegrationDto>, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action("integration.update");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationUpdate,
            &integration_resource(&id, &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let b = body.0;
        if let Some(url) = &b.url {
            domain::check_resolution(state.delivery.client(), url)
                .await
                .map_err(|e| invalid(&e))?;
        }
        let patch = IntegrationPatch {
            name: b.name,
            url: b.url,
            event_types: b.event_types,
            headers: headers_vec(b.headers),
            enabled: b.enabled,
            rotate_secret: b.rotate_secret.unwrap_or(false),
            secret: b.secret,
            hec_token: b.hec_token,
            hec_index: b.hec_index,
            hec_ack: b.hec_ack,
        };
        let now = state.now();
        let policy = state.delivery.client().policy().clone();
        let audit = vec![ctx.record("/api/tenants/{tenant}/integrations/{id}", 200, None, now)];
        let out = state
            .store
            .update_integration(
                &tenant,
                &id,
                now,
                move |rec| domain::apply_patch(&policy, rec, patch, now),
                audit,
            )
            .await?;
        match out {
            IntegrationUpdate::Done(secret, rec) => {
                ctx.mark_audited();
                state.delivery.wake();
                Ok(Json(state.integration_dto(&rec, secret)))
            }
            IntegrationUpdate::Refused(e) => Err(invalid(&e).into()),
            IntegrationUpdate::Missing => Err(Problem::not_found("integration").into()),
        }
    }

    /// Delete an integration
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant.
    /// Its pending deliveries are not sent.
    #[oai(
        path = "/api/tenants/:tenant/integrations/:id",
        method = "delete",
        tag = "ApiTags::Integrations",
        operation_id = "deleteIntegration"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Integration id (`int_…`).
        #[oai(validator(pattern = "^int_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Deleted, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("integration.delete");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationDelete,
            &integration_resource(&id, &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let now = state.now();
        let audit = vec![ctx.record("/api/tenants/{tenant}/integrations/{id}", 204, None, now)];
        if !state.store.delete_integration(&tenant, &id, audit).await? {
            return Err(Problem::not_found("integration").into());
        }
        ctx.mark_audited();
        state.delivery.forget(&id);
        Ok(Deleted::NoContent)
    }

    /// Send a test message
    ///
    /// Roles (default policies): tenant-admin, security-admin, operator; appliance-admin in
    /// every tenant. Enqueues an `integration.test` message; its attempts show in the
    /// deliveries.
    #[oai(
        path = "/api/tenants/:tenant/integrations/:id/test",
        method = "post",
        tag = "ApiTags::Integrations",
        operation_id = "testIntegration"
    )]
    async fn test(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Integration id (`int_…`).
        #[oai(validator(pattern = "^int_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Queued, { status::TENANT | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("integration.test");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationTest,
            &integration_resource(&id, &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let r = state.find_integration(&tenant, &id)?;
        if r.status != IntegrationStatus::Enabled {
            return Err(Problem::new(
                Code::IntegrationDisabled,
                "the integration is disabled: enable it first",
            )
            .into());
        }
        let now = state.now();
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/integrations/{id}/test",
            202,
            None,
            now,
        )];
        let view = state
            .store
            .enqueue_test_delivery(&tenant, &id, now, audit)
            .await?;
        ctx.mark_audited();
        state.delivery.wake();
        Ok(Queued::Accepted(Json(view.into())))
    }

    /// List deliveries
    ///
    /// Roles (default policies): tenant-admin, security-admin, operator; appliance-admin in
    /// every tenant. Newest first, with each delivery's attempts.
    #[oai(
        path = "/api/tenants/:tenant/integrations/:id/deliveries",
        method = "get",
        tag = "ApiTags::Integrations",
        operation_id = "listDeliveries"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per query parameter"
    )]
    async fn deliveries(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Integration id (`int_…`).
        #[oai(validator(pattern = "^int_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// Only deliveries in this state.
        status: Query<Option<DeliveryStatusName>>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = "^[0-9]{0,19}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<DeliveryPage>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("integration.deliveries.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationDeliveriesList,
            &integration_resource(&id, &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let (limit, cursor) = page_args(limit.0, cursor.0)?;
        let enabled = state.find_integration(&tenant, &id)?.status == IntegrationStatus::Enabled;
        let page =
            state
                .store
                .list_deliveries(&tenant, &id, limit, cursor, status.0.map(Into::into))?;
        Ok(Json(DeliveryPage {
            items: page
                .items
                .into_iter()
                .map(|v| {
                    let mut d = DeliveryDto::from(v);
                    if !enabled {
                        d.next_attempt_at = None;
                    }
                    d
                })
                .collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Redeliver a delivery
    ///
    /// Roles (default policies): tenant-admin, security-admin, operator; appliance-admin in
    /// every tenant. Due at once with a fresh round of the retry schedule and the same
    /// `webhook-id`.
    #[oai(
        path = "/api/tenants/:tenant/integrations/:id/deliveries/:delivery/redeliver",
        method = "post",
        tag = "ApiTags::Integrations",
        operation_id = "redeliverDelivery"
    )]
    async fn redeliver(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Integration id (`int_…`).
        #[oai(validator(pattern = "^int_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// Delivery id (`dlv_…`).
        #[oai(validator(pattern = "^dlv_[0-9a-f]{32}$"))]
        delivery: Path<String>,
    ) -> ApiResult<Queued, { status::TENANT | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("integration.redeliver");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::IntegrationRedeliver,
            &integration_resource(&id, &tenant),
            &ctx,
        )?;
        ctx.set_resource(&delivery);
        let now = state.now();
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/integrations/{id}/deliveries/{delivery}/redeliver",
            202,
            None,
            now,
        )];
        match state
            .store
            .redeliver(&tenant, &id, &delivery, now, audit)
            .await?
        {
            Redelivery::Queued(view) => {
                ctx.mark_audited();
                state.delivery.wake();
                Ok(Queued::Accepted(Json(view.into())))
            }
            Redelivery::Missing => Err(Problem::not_found("delivery").into()),
            Redelivery::Disabled => Err(Problem::new(
                Code::IntegrationDisabled,
                "the integration is disabled: enable it first",
            )
            .into()),
        }
    }
}
