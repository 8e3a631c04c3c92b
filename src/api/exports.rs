//! Tenant exports under dual control: `POST /api/tenants/{t}/exports` asks,
//! `POST …/exports/{id}/approvals` approves (the approver is the authenticated user of that
//! request, never a claim in a body), `GET …/exports/{id}` downloads the tenant's evidence or
//! audit log, with inclusion proofs and the signed checkpoint, once the request is approved.
//! The rules are [`crate::identity::approval`]'s.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{RoleName, ts};
use super::problem::{ApiResult, Problem, status};
use super::raw::ZipBytes;
use super::{AppState, ctx};
use crate::authz::{Action, Resource};
use crate::identity::approval::{Approval, ApprovalRefusal, DualControlRequest, RequestKind};

#[derive(Tags)]
enum ApiTags {
    /// Tenant exports under dual control.
    Exports,
}

/// One recorded approval.
#[derive(Object)]
pub struct ApprovalDto {
    /// The approving user (`usr_…`).
    pub user: String,
    /// The role whose place it filled.
    pub role: RoleName,
    /// When.
    pub at: time::OffsetDateTime,
}

/// An export request.
#[derive(Object)]
pub struct ExportRequestDto {
    /// `exp_…`.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// The requester (`usr_…` or `tok_…`).
    pub requested_by: String,
    /// When it was asked.
    pub requested_at: time::OffsetDateTime,
    /// Approvals so far.
    pub approvals: Vec<ApprovalDto>,
    /// Whether every approval the rule needs is recorded (the export can be downloaded).
    pub approved: bool,
    /// The rule, in words.
    pub rule: String,
    /// When the request stops taking approvals (7 days after it was asked).
    pub expires_at: time::OffsetDateTime,
}

impl From<Approval> for ApprovalDto {
    fn from(a: Approval) -> Self {
        Self {
            user: a.user,
            role: a.role.into(),
            at: ts(a.at),
        }
    }
}

impl From<DualControlRequest> for ExportRequestDto {
    fn from(r: DualControlRequest) -> Self {
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
        }
    }
}

/// The log an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
pub enum ExportLog {
    /// Every accepted webhook delivery, artifact and receipt (the evidence log).
    #[oai(rename = "evidence")]
    Evidence,
    /// Every access and change (the audit log).
    #[oai(rename = "audit")]
    Audit,
}

#[derive(ApiResponse)]
enum ExportRequested {
    /// Asked; it waits for its approvals.
    #[oai(status = 201)]
    Created(Json<ExportRequestDto>),
}

/// Records a new dual-control request of `kind` on `tenant` by the authenticated principal,
/// with its audit record (`route`), once `action` is permitted. Shared by exports and
/// deletion.
///
/// # Errors
/// Authentication, authorization, [`ApprovalRefusal::RequesterNotAUser`] (403), storage.
pub(super) async fn ask(
    state: &AppState,
    req: &Request,
    auth: ApiAuth,
    tenant: &str,
    kind: RequestKind,
    action: Action,
    route: &str,
) -> Result<DualControlRequest, Problem> {
    let ctx = ctx(req);
    let p = state.authenticate(&auth, &ctx)?;
    state.authorize(&p, action, &Resource::tenant(tenant), &ctx)?;
    let now = state.now();
    let prefix = match kind {
        RequestKind::Export => "exp_",
        RequestKind::Deletion => "del_",
    };
    let request = DualControlRequest::new(crate::ingest::random_id(prefix), kind, tenant, &p, now)?;
    ctx.set_resource(&request.id);
    let audit = vec![ctx.record(route, 201, None, now)];
    state.store.insert_request(request.clone(), audit).await?;
    ctx.mark_audited();
    Ok(request)
}

impl From<ApprovalRefusal> for Problem {
    fn from(e: ApprovalRefusal) -> Self {
        Problem::new(Code::ApprovalRefused, e.to_string())
    }
}

/// Tenant exports.
pub struct ExportsApi;

#[OpenApi]
impl ExportsApi {
    /// Ask for a tenant export
    ///
    /// Roles (default policies): tenant-admin, compliance-officer. Asked by a user from a
    /// console session (an API token is 403 `APPROVAL_REFUSED`: a token is not traced to its
    /// maker, who could then approve their own request). The export is downloadable once two
    /// users of the tenant other than the requester, one a compliance-officer, have approved
    /// it.
    #[oai(
        path = "/api/tenants/:tenant/exports",
        method = "post",
        tag = "ApiTags::Exports",
        operation_id = "requestExport"
    )]
    async fn request_export(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<ExportRequested, { status::TENANT | status::S507 }> {
        let request = ask(
            &state,
            req,
            auth,
            &tenant,
            RequestKind::Export,
            Action::TenantExportRequest,
            "/api/tenants/{tenant}/exports",
        )
        .await?;
        Ok(ExportRequested::Created(Json(request.into())))
    }

    /// Approve a tenant export
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin. The
    /// approval is the authenticated user's (a console session; API tokens are refused): a
    /// user of the tenant, not the requester, once, filling a place the rule still needs;
    /// otherwise 403 `APPROVAL_REFUSED` naming the rule broken.
    #[oai(
        path = "/api/tenants/:tenant/exports/:id/approvals",
        method = "post",
        tag = "ApiTags::Exports",
        operation_id = "approveExport"
    )]
    async fn approve_export(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Export request id (`exp_…`).
        #[oai(validator(pattern = "^exp_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Json<ExportRequestDto>, { status::TENANT | status::S507 }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantExportApprove,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let now = state.now();
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/exports/{id}/approvals",
            200,
            None,
            now,
        )];
        let approver = p.clone();
        let (request, _) = state
            .store
            .update_request(&tenant, &id, move |r| r.approve(&approver, now), audit)
            .await?
            .ok_or_else(|| Problem::not_found("export request"))??;
        ctx.mark_audited();
        Ok(Json(request.into()))
    }

    /// Download an approved tenant export
    ///
    /// Roles (default policies): tenant-admin, compliance-officer; appliance-admin in every
    /// tenant. The tenant's evidence (default) or audit log, at most 10,000 entries from
    /// `from`, as an `evidentia-audit-export/v1` zip (entries, inclusion proofs, signed
    /// checkpoint, manifest) checked offline by `evidentia verify audit-export`. 409
    /// `EXPORT_NOT_APPROVED` until its approvals are recorded. A sensitive read: the answer
    /// carries a signed access receipt.
    #[oai(
        path = "/api/tenants/:tenant/exports/:id",
        method = "get",
        tag = "ApiTags::Exports",
        operation_id = "downloadExport"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn download_export(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Export request id (`exp_…`).
        #[oai(validator(pattern = "^exp_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// `evidence` (default) or `audit`.
        log: Query<Option<ExportLog>>,
        /// Index of the first entry (default 0).
        from: Query<Option<u64>>,
        /// Most entries, 1–10000 (default 10000).
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
        limit: Query<Option<u64>>,
    ) -> ApiResult<ZipBytes, { status::TENANT | status::S409 }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantExportRead,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let request = state
            .store
            .get_request(&tenant, &id)?
            .filter(|r| r.kind == RequestKind::Export)
            .ok_or_else(|| Problem::not_found("export request"))?;
        if !request.approved() {
            return Err(Problem::new(
                Code::ExportNotApproved,
                format!(
                    "the export has {} approval(s); it needs {}",
                    request.approvals.len(),
                    request.kind.rule()
                ),
            )
            .into());
        }
        let name = match log.0.unwrap_or(ExportLog::Evidence) {
            ExportLog::Evidence => "evidence",
            ExportLog::Audit => "audit",
        };
        let origin = state.store.origin(&tenant, name);
        Ok(state.log_export(&tenant, &origin, name, from.0, limit.0, &ctx)?)
    }
}
