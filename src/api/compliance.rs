//! `GET /api/tenants/{tenant}/compliance`: the tenant's controls with their status and the
//! evidence they were computed from ([`crate::compliance`]), answered with a signed access
//! receipt.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::dto::ts;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, ctx};
use crate::authz::{Action, Resource};
use crate::compliance::{self, Control, Evidence, Report, Status};

#[derive(Tags)]
enum ApiTags {
    /// The tenant compliance view.
    Compliance,
}

/// A control's or a fact's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
pub enum ControlStatus {
    /// The control holds.
    #[oai(rename = "pass")]
    Pass,
    /// It holds, but something needs attention.
    #[oai(rename = "warn")]
    Warn,
    /// The state breaks it.
    #[oai(rename = "fail")]
    Fail,
}

impl From<Status> for ControlStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pass => Self::Pass,
            Status::Warn => Self::Warn,
            Status::Fail => Self::Fail,
        }
    }
}

/// One fact a control was computed from.
#[derive(Object)]
pub struct EvidenceDto {
    /// What was looked at: `source`, `log`, `token`, `user`, `tenant`, `setting`,
    /// `retention`.
    pub kind: String,
    /// Its id (source or token id, log name, setting name).
    pub id: String,
    /// What was found.
    pub detail: String,
    /// This fact's verdict.
    pub status: ControlStatus,
}

/// One control.
#[derive(Object)]
pub struct ControlDto {
    /// Stable id: `webhook_signing`, `payload_caps`, `replay_defence`, `rate_limits`,
    /// `evidence_log`, `audit_log`, `retention`, `integrations`, `plugin_gate`,
    /// `access_hygiene`.
    pub id: String,
    /// What the control asks.
    pub title: String,
    /// The worst of its evidence.
    pub status: ControlStatus,
    /// One sentence.
    pub summary: String,
    /// The facts it was computed from.
    pub evidence: Vec<EvidenceDto>,
}

/// The compliance view of a tenant.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ComplianceDto {
    /// Tenant id.
    pub tenant: String,
    /// When the view was computed.
    pub generated_at: time::OffsetDateTime,
    /// The worst status of the controls.
    pub status: ControlStatus,
    /// Every control, in a fixed order.
    pub controls: Vec<ControlDto>,
    /// The signed access receipt of this read (as in the `Evidentia-Access-Receipt` header);
    /// its `res.sha256` is the SHA-256 of this view's RFC 8785 form without this member.
    pub receipt: Option<String>,
}

fn evidence_dto(e: Evidence) -> EvidenceDto {
    EvidenceDto {
        kind: e.kind.to_string(),
        id: e.id,
        detail: e.detail,
        status: e.status.into(),
    }
}

fn control_dto(c: Control) -> ControlDto {
    ControlDto {
        id: c.id.to_string(),
        title: c.title.to_string(),
        status: c.status.into(),
        summary: c.summary,
        evidence: c.evidence.into_iter().map(evidence_dto).collect(),
    }
}

fn report_dto(tenant: String, now: i64, r: Report) -> ComplianceDto {
    ComplianceDto {
        tenant,
        generated_at: ts(now),
        status: r.status.into(),
        controls: r.controls.into_iter().map(control_dto).collect(),
        receipt: None,
    }
}

/// The compliance view.
pub struct ComplianceApi;

#[OpenApi]
impl ComplianceApi {
    /// Get a tenant's compliance view
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin;
    /// appliance-admin in every tenant. Each control (webhook signing, payload caps, replay
    /// defence, rate limits, evidence-log and audit-log consistency, retention, integrations,
    /// plugin gate, access hygiene) with `pass`, `warn` or `fail` and the facts it was computed
    /// from, all read from the tenant's state now. The logs are proven consistent (RFC 9162)
    /// with the checkpoints the previous view verified. A sensitive read: the answer carries a
    /// signed access receipt, bound to its own audit-log entry.
    #[oai(
        path = "/api/tenants/:tenant/compliance",
        method = "get",
        tag = "ApiTags::Compliance",
        operation_id = "getTenantCompliance"
    )]
    async fn get_compliance(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<ComplianceDto>, { status::TENANT }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantComplianceRead,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let t = state
            .store
            .get_tenant(&tenant)?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        let now = state.now();
        let report = compliance::view(
            &state.store,
            &state.config,
            state.secrets.ml_webhook.len(),
            &t,
            |id| state.delivery.breaker_state(id),
            now,
        )
        .await?;
        Ok(Json(report_dto(t.id, now, report)))
    }
}
