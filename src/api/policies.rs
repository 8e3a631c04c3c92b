//! Per-tenant Cedar policies: `GET` and `PUT /api/tenants/{tenant}/policies` (DESIGN §3).
//! The text is compiled and validated by [`crate::authz::Authorizer`]; this module only
//! translates HTTP to those calls and their refusals to a 422 with Cedar's diagnostics.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::ts;
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, ctx};
use crate::authz::{Action, PolicyDiagnostic, Resource, Severity, TenantPolicyError};

#[derive(Tags)]
enum ApiTags {
    /// Cedar authorization policies of a tenant.
    Policies,
}

/// `PUT /api/tenants/{tenant}/policies` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PutPolicies {
    /// The tenant's extra policies in the Cedar policy language (namespace `Evidentia`; the
    /// schema: `evidentia policy-schema`), replacing the earlier ones; empty removes them. At
    /// most 10,000 characters and 100 policies, no templates. They decide only requests
    /// inside the tenant and cannot lift the default guardrails (tenant isolation above all).
    #[oai(validator(max_length = 10000))]
    pub policies: String,
}

impl poem_openapi::types::Example for PutPolicies {
    fn example() -> Self {
        Self {
            policies: "@id(\"no-bodies-for-analysts\")\nforbid (principal, action == \
                       Evidentia::Action::\"events.body.read\", resource)\nwhen { \
                       principal.roles.contains(\"analyst\") };\n"
                .into(),
        }
    }
}

/// A place in the policy text a diagnostic points at.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DiagnosticSpanDto {
    /// Byte offset from the start of the text.
    pub offset: u64,
    /// Length, bytes.
    pub length: u64,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, characters.
    pub column: u64,
    /// What Cedar says about this place.
    pub label: Option<String>,
}

/// One Cedar diagnostic: a validation warning here, or (in a 422 `POLICY_INVALID` problem's
/// `diagnostics` member, same shape) an error.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PolicyDiagnosticDto {
    /// `error` or `warning`.
    pub severity: String,
    /// Cedar's diagnostic code, when it has one.
    pub code: Option<String>,
    /// Cedar's message.
    pub message: String,
    /// Cedar's suggestion.
    pub help: Option<String>,
    /// The policy concerned: `policy <n>` (0-based) and its `@id` when present.
    pub policy: Option<String>,
    /// Where in the text.
    pub spans: Vec<DiagnosticSpanDto>,
}

impl From<PolicyDiagnostic> for PolicyDiagnosticDto {
    fn from(d: PolicyDiagnostic) -> Self {
        Self {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            }
            .to_string(),
            code: d.code,
            message: d.message,
            help: d.help,
            policy: d.policy,
            spans: d
                .spans
                .into_iter()
                .map(|s| DiagnosticSpanDto {
                    offset: s.offset as u64,
                    length: s.length as u64,
                    line: s.line as u64,
                    column: s.column as u64,
                    label: s.label,
                })
                .collect(),
        }
    }
}

/// A tenant's policies and the policy set they make.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PolicySetDto {
    /// Tenant id.
    pub tenant: String,
    /// The tenant's policy text (empty: the defaults alone decide).
    pub policies: String,
    /// Number of policies in the text.
    pub count: u32,
    /// Lowercase hex SHA-256 of the policy set in force in the tenant (schema, defaults and
    /// these policies): the `policy_set` of its audit records' decisions.
    pub policy_set_sha256: String,
    /// When the text was last set; absent when it never was.
    pub updated_at: Option<time::OffsetDateTime>,
    /// Who set it (audit actor).
    pub updated_by: Option<String>,
    /// Cedar's validation warnings (the text was accepted).
    pub warnings: Vec<PolicyDiagnosticDto>,
}

/// 422 `POLICY_INVALID` with Cedar's diagnostics as the `diagnostics` member.
fn invalid(e: &TenantPolicyError) -> Problem {
    let diagnostics: Vec<PolicyDiagnostic> = e.diagnostics();
    let value = serde_json::to_value(&diagnostics).unwrap_or_default();
    Problem::new(
        Code::PolicyInvalid,
        format!("the policies were refused: {e}; see diagnostics"),
    )
    .with_member("diagnostics", value)
}

/// Tenant policies.
pub struct PoliciesApi;

#[OpenApi]
impl PoliciesApi {
    /// Get a tenant's policies
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin. The
    /// tenant's extra Cedar policies and the digest of the policy set in force.
    #[oai(
        path = "/api/tenants/:tenant/policies",
        method = "get",
        tag = "ApiTags::Policies",
        operation_id = "getTenantPolicies"
    )]
    async fn get_policies(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<PolicySetDto>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action(Action::PolicyRead.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::PolicyRead, &Resource::policy(&tenant), &ctx)?;
        let stored = state.store.get_tenant_policies(&tenant)?;
        let text = stored.as_ref().map(|r| r.text.as_str()).unwrap_or("");
        // Stored texts compiled at start; compiling again only counts and warns.
        let compiled = state
            .authz
            .compile_tenant_policies(&tenant, text)
            .map_err(|e| invalid(&e))?;
        Ok(Json(PolicySetDto {
            tenant: tenant.0.clone(),
            policies: text.to_string(),
            count: compiled.count() as u32,
            policy_set_sha256: state.authz.policy_set_sha256(Some(&tenant)),
            updated_at: stored.as_ref().map(|r| ts(r.updated_at)),
            updated_by: stored.map(|r| r.updated_by),
            warnings: compiled
                .warnings()
                .iter()
                .cloned()
                .map(Into::into)
                .collect(),
        }))
    }

    /// Replace a tenant's policies
    ///
    /// Roles (default policies): tenant-admin, security-admin. The text is parsed and
    /// validated strictly against the schema together with the defaults; a refusal is 422
    /// `POLICY_INVALID` whose `diagnostics` member carries Cedar's errors (message, help,
    /// policy, line and column). Accepted policies decide the tenant's requests from the
    /// answer on; they can narrow access (`forbid`) or widen it inside the tenant (`permit`),
    /// never across tenants.
    #[oai(
        path = "/api/tenants/:tenant/policies",
        method = "put",
        tag = "ApiTags::Policies",
        operation_id = "putTenantPolicies"
    )]
    async fn put_policies(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// The new policy text.
        body: StrictJson<PutPolicies>,
    ) -> ApiResult<Json<PolicySetDto>, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action(Action::PolicyWrite.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::PolicyWrite, &Resource::policy(&tenant), &ctx)?;
        let text = body.0.policies;
        let compiled = state
            .authz
            .compile_tenant_policies(&tenant, &text)
            .map_err(|e| invalid(&e))?;
        // One writer at a time, so the set installed is the set stored last.
        let _writer = state.policy_writer.lock().await;
        let now = state.now();
        let record = compiled.record(now, &p.actor());
        ctx.set_resource(&tenant);
        ctx.set_detail(format!(
            "{} policies; policy set sha256 {}",
            compiled.count(),
            record.sha256
        ));
        let audit = vec![ctx.record("/api/tenants/{tenant}/policies", 200, None, now)];
        state
            .store
            .put_tenant_policies(record.clone(), audit)
            .await?;
        ctx.mark_audited();
        let dto = PolicySetDto {
            tenant: tenant.0.clone(),
            count: compiled.count() as u32,
            policy_set_sha256: record.sha256.clone(),
            warnings: compiled
                .warnings()
                .iter()
                .cloned()
                .map(Into::into)
                .collect(),
            policies: record.text,
            updated_at: Some(ts(now)),
            updated_by: Some(record.updated_by),
        };
        state.authz.install_tenant_policies(compiled);
        Ok(Json(dto))
    }
}
