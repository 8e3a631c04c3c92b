//! Tenant deletion under dual control: `POST /api/tenants/{t}/deletion` asks,
//! `POST …/deletion/{id}/approvals` approves (the approver is the authenticated user of that
//! request, never a claim in a body). The approval that completes the rule (a
//! compliance-officer and a security-admin of the tenant, neither the requester) carries the
//! deletion out in its own commit: a crypto-shred of the tenant's content
//! ([`crate::store::Store::approve_deletion`]), recorded in the tenant's audit trail and the
//! appliance's `system` log. The rules are [`crate::identity::approval`]'s.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::dto::ts;
use super::exports::ApprovalDto;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, auth::ApiAuth, ctx};
use crate::audit::APPLIANCE_SCOPE;
use crate::authz::{Action, Resource};
use crate::identity::approval::{DualControlRequest, RequestKind};
use crate::store::TenantDeletion;

#[derive(Tags)]
enum ApiTags {
    /// Tenant deletion under dual control.
    Deletion,
}

/// What the deletion removed; present once it was carried out.
#[derive(Object)]
pub struct DeletionDoneDto {
    /// Raw event bodies removed.
    pub bodies: u64,
    /// Insights removed.
    pub insights: u64,
    /// Artifacts whose bytes were removed.
    pub artifacts: u64,
    /// Webhook sources removed, with their secrets.
    pub sources: u64,
    /// Integrations removed, with their credentials and pending deliveries.
    pub integrations: u64,
    /// Whether the tenant's content key was destroyed (`false` when it never had content).
    pub key_destroyed: bool,
}

impl From<TenantDeletion> for DeletionDoneDto {
    fn from(d: TenantDeletion) -> Self {
        Self {
            bodies: d.bodies,
            insights: d.insights,
            artifacts: d.artifacts,
            sources: d.sources,
            integrations: d.integrations,
            key_destroyed: d.key_destroyed,
        }
    }
}

/// A tenant deletion request.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeletionRequestDto {
    /// `del_…`.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// The requester (`usr_…`).
    pub requested_by: String,
    /// When it was asked.
    pub requested_at: time::OffsetDateTime,
    /// Approvals so far.
    pub approvals: Vec<ApprovalDto>,
    /// Whether every approval the rule needs is recorded (the tenant is then deleted).
    pub approved: bool,
    /// The rule, in words.
    pub rule: String,
    /// When the request stops taking approvals (7 days after it was asked).
    pub expires_at: time::OffsetDateTime,
    /// What the deletion removed, in the answer to the approval that carried it out.
    pub deleted: Option<DeletionDoneDto>,
}

impl DeletionRequestDto {
    fn new(r: DualControlRequest, deleted: Option<TenantDeletion>) -> Self {
        let approved = r.approved();
        Self {
            rule: r.kind.rule().to_string(),
            expires_at: ts(r.expires_at()),
            id: r.id,
            tenant: r.tenant,
            requested_by: r.requested_by,
            requested_at: ts(r.requested_at),
            approvals: r.approvals.into_iter().map(ApprovalDto::from).collect(),
            approved,
            deleted: deleted.map(DeletionDoneDto::from),
        }
    }
}

#[derive(ApiResponse)]
enum DeletionRequested {
    /// Asked; it waits for its approvals.
    #[oai(status = 201)]
    Created(Json<DeletionRequestDto>),
}

/// Tenant deletion.
pub struct DeletionApi;

#[OpenApi]
impl DeletionApi {
    /// Ask for a tenant's deletion
    ///
    /// Roles (default policies): tenant-admin. Asked by a user from a console session (an API
    /// token is 403 `APPROVAL_REFUSED`). Nothing is deleted until a compliance-officer and a
    /// security-admin of the tenant, two users other than the requester, have approved it.
    #[oai(
        path = "/api/tenants/:tenant/deletion",
        method = "post",
        tag = "ApiTags::Deletion",
        operation_id = "requestTenantDeletion"
    )]
    async fn request_deletion(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<DeletionRequested, { status::TENANT | status::S507 }> {
        let request = super::exports::ask(
            &state,
            req,
            auth,
            &tenant,
            RequestKind::Deletion,
            Action::TenantDeleteRequest,
            "/api/tenants/{tenant}/deletion",
        )
        .await?;
        Ok(DeletionRequested::Created(Json(DeletionRequestDto::new(
            request, None,
        ))))
    }

    /// Approve a tenant's deletion
    ///
    /// Roles (default policies): compliance-officer, security-admin. The approval is the
    /// authenticated user's (a console session; API tokens are refused): a user of the
    /// tenant, not the requester, once, filling a place the rule still needs; otherwise 403
    /// `APPROVAL_REFUSED` naming the rule broken. The approval that completes the rule deletes
    /// the tenant in the same commit: its raw bodies, insights, artifacts' bytes and webhook
    /// sources are removed and its content key destroyed, so no copy of its content can be
    /// read again; its logs and audit trail stay, readable by appliance-admins. From then on
    /// its API answers 403 `TENANT_DELETED`.
    #[oai(
        path = "/api/tenants/:tenant/deletion/:id/approvals",
        method = "post",
        tag = "ApiTags::Deletion",
        operation_id = "approveTenantDeletion"
    )]
    async fn approve_deletion(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Deletion request id (`del_…`).
        #[oai(validator(pattern = "^del_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Json<DeletionRequestDto>, { status::TENANT | status::S507 }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantDeleteApprove,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let now = state.now();
        let route = "/api/tenants/{tenant}/deletion/{id}/approvals";
        let record = ctx.record(route, 200, None, now);
        let mut system = record.clone();
        system.tenant = APPLIANCE_SCOPE.to_string();
        let system = system.bound();
        let approver = p.clone();
        let (request, deleted) = state
            .store
            .approve_deletion(
                &tenant,
                &id,
                move |r| r.approve(&approver, now),
                vec![record],
                system,
                now,
            )
            .await?
            .ok_or_else(|| Problem::not_found("deletion request"))??;
        ctx.mark_audited();
        if deleted.is_some() {
            tracing::warn!(tenant = %*tenant, request = %*id, "tenant deleted under dual control");
        }
        Ok(Json(DeletionRequestDto::new(request, deleted)))
    }
}
