//! A tenant's record (`GET`), status (`PATCH /api/tenants/{t}`), settings (`GET/PUT …/settings`) and usage
//! (`GET …/usage`). The rules (bounds, inheritance, who may change the rate quotas, what a
//! suspension admits) live in [`crate::identity::tenant`].

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::tenants::{TenantDto, TenantStatusChoice as TenantStatusDto};
use super::{AppState, ctx};
use crate::authz::{Action, Resource};
use crate::identity::tenant::{
    EffectiveSettings, MAX_API_QUOTA_PER_MINUTE, MAX_BODY_RETENTION_DAYS,
    MAX_RECEIPT_FRESHNESS_SECS, MAX_STATUS_REASON_CHARS, RateOverrides, SettingsError,
    TenantSettings, TenantStatus,
};

#[derive(Tags)]
enum ApiTags {
    /// Tenants (appliance administration).
    Tenants,
}

/// `PATCH /api/tenants/{tenant}` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct TenantStatusChange {
    /// The new status.
    pub status: TenantStatusDto,
    /// Why, for the audit trail: 1–500 characters, no white space at either end, no
    /// control, bidi or invisible characters (the pattern states it).
    pub reason: Option<String>,
}

impl poem_openapi::types::Example for TenantStatusChange {
    fn example() -> Self {
        Self {
            status: TenantStatusDto::Suspended,
            reason: Some("contract ended; pending the export".into()),
        }
    }
}

/// Per-class API quotas, requests per minute per principal and operation.
#[derive(Object, Debug, Clone, Copy)]
#[oai(example)]
pub struct RateLimitsDto {
    /// Logins and password changes.
    pub auth: u32,
    /// Audit and tenant exports.
    pub export: u32,
    /// Reads (`GET`, `HEAD`).
    pub query: u32,
    /// Everything else.
    pub default: u32,
}

impl poem_openapi::types::Example for RateLimitsDto {
    fn example() -> Self {
        Self {
            auth: 10,
            export: 5,
            query: 300,
            default: 60,
        }
    }
}

/// The settings in force for a tenant.
#[derive(Object)]
#[oai(example)]
pub struct TenantSettingsDto {
    /// Days raw event bodies are kept (metadata and digests stay after the purge).
    pub body_retention_days: i64,
    /// Oldest a signed pipeline receipt's `createdAt` may be when submitted, seconds.
    pub receipt_freshness_secs: i64,
    /// Per-class API quotas of the tenant's principals.
    pub rate_limits: RateLimitsDto,
    /// Settings the tenant has not set, which follow the appliance configuration
    /// (`body_retention_days`, `receipt_freshness_secs`, `rate_limits.auth`, …).
    pub inherited: Vec<String>,
}

impl poem_openapi::types::Example for TenantSettingsDto {
    fn example() -> Self {
        Self {
            body_retention_days: 30,
            receipt_freshness_secs: 300,
            rate_limits: RateLimitsDto::example(),
            inherited: vec!["receipt_freshness_secs".into(), "rate_limits.auth".into()],
        }
    }
}

/// Quota overrides in a settings change; each absent one follows the appliance.
#[derive(Object, serde::Deserialize, Debug, Clone, Copy, Default)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsChange {
    /// Logins and password changes, per minute.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub auth: Option<u32>,
    /// Exports, per minute.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub export: Option<u32>,
    /// Reads, per minute.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub query: Option<u32>,
    /// Everything else, per minute.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub default: Option<u32>,
}

/// `PUT /api/tenants/{tenant}/settings` body: the tenant's settings as a whole; an absent
/// member follows the appliance configuration (so `{}` resets everything).
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct TenantSettingsChange {
    /// Days raw event bodies are kept, 1–3650.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub body_retention_days: Option<i64>,
    /// Receipt freshness window, 1–604800 seconds.
    #[oai(validator(minimum(value = "1"), maximum(value = "604800")))]
    pub receipt_freshness_secs: Option<i64>,
    /// Per-class API quotas (changing them needs the appliance-admin role: they protect the
    /// appliance, not only the tenant).
    pub rate_limits: Option<RateLimitsChange>,
}

impl poem_openapi::types::Example for TenantSettingsChange {
    fn example() -> Self {
        Self {
            body_retention_days: Some(90),
            receipt_freshness_secs: Some(600),
            rate_limits: None,
        }
    }
}

/// The window of a usage report, ending today (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
pub enum UsageRange {
    /// The last 7 days.
    #[oai(rename = "7d")]
    D7,
    /// The last 30 days.
    #[oai(rename = "30d")]
    D30,
    /// The last 90 days.
    #[oai(rename = "90d")]
    D90,
}

impl UsageRange {
    fn days(self) -> i64 {
        match self {
            Self::D7 => 7,
            Self::D30 => 30,
            Self::D90 => 90,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::D7 => "7d",
            Self::D30 => "30d",
            Self::D90 => "90d",
        }
    }
}

/// What a tenant stored on one UTC day (counted in the commit that stored it).
#[derive(Object)]
pub struct UsageDayDto {
    /// The UTC day.
    pub date: time::Date,
    /// Webhook events stored (duplicates are not counted).
    pub events: u64,
    /// Bytes stored: raw event bodies and artifact contents.
    pub bytes: u64,
    /// Signed pipeline receipts stored.
    pub receipts: u64,
    /// Artifacts stored.
    pub artifacts: u64,
}

/// A tenant's usage per day, oldest first, every day of the range present.
#[derive(Object)]
pub struct UsageDto {
    /// `7d`, `30d` or `90d`.
    pub range: String,
    /// One entry per day, oldest first (today last).
    pub days: Vec<UsageDayDto>,
    /// Sums over the range.
    pub totals: UsageTotalsDto,
}

/// Sums of a usage range.
#[derive(Object, Default)]
pub struct UsageTotalsDto {
    /// Events.
    pub events: u64,
    /// Bytes.
    pub bytes: u64,
    /// Receipts.
    pub receipts: u64,
    /// Artifacts.
    pub artifacts: u64,
}

#[derive(ApiResponse)]
enum TenantUpdated {
    /// The tenant with its new status.
    #[oai(status = 200)]
    Ok(Json<TenantDto>),
}

fn settings_dto(own: &TenantSettings, e: EffectiveSettings) -> TenantSettingsDto {
    let mut inherited = Vec::new();
    if own.body_retention_days.is_none() {
        inherited.push("body_retention_days".to_string());
    }
    if own.receipt_freshness_secs.is_none() {
        inherited.push("receipt_freshness_secs".to_string());
    }
    let o = &own.rate_limits;
    for (name, set) in [
        ("auth", o.auth),
        ("export", o.export),
        ("query", o.query),
        ("default", o.default),
    ] {
        if set.is_none() {
            inherited.push(format!("rate_limits.{name}"));
        }
    }
    TenantSettingsDto {
        body_retention_days: e.body_retention_days,
        receipt_freshness_secs: e.receipt_freshness_secs,
        rate_limits: RateLimitsDto {
            auth: e.rate_limits.auth,
            export: e.rate_limits.export,
            query: e.rate_limits.query,
            default: e.rate_limits.default,
        },
        inherited,
    }
}

impl From<SettingsError> for Problem {
    fn from(e: SettingsError) -> Self {
        Problem::new(Code::InvalidSetting, e.to_string())
    }
}

/// Tenant status, settings and usage.
pub struct SettingsApi;

#[OpenApi]
impl SettingsApi {
    /// Get a tenant
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer; appliance-admin in every tenant.
    #[oai(
        path = "/api/tenants/:tenant",
        method = "get",
        tag = "ApiTags::Tenants",
        operation_id = "getTenant"
    )]
    async fn get_tenant(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<TenantDto>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("tenant.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::TenantRead, &Resource::tenant(&tenant), &ctx)?;
        let t = state
            .store
            .get_tenant(&tenant)?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        Ok(Json(t.into()))
    }

    /// Suspend or reactivate a tenant
    ///
    /// Roles: appliance-admin only. A suspended tenant's ingestion and API answer 403
    /// `TENANT_SUSPENDED`; appliance-admins can still read it and change its status. Nothing is
    /// deleted. The change and its reason are in the tenant's audit log.
    #[oai(
        path = "/api/tenants/:tenant",
        method = "patch",
        tag = "ApiTags::Tenants",
        operation_id = "updateTenantStatus"
    )]
    async fn update_status(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// The new status and why.
        body: StrictJson<TenantStatusChange>,
    ) -> ApiResult<TenantUpdated, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantStatusWrite,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let TenantStatusChange { status, reason } = body.0;
        let reason = match reason {
            Some(r) => Some(
                crate::text::display_name("reason", &r, MAX_STATUS_REASON_CHARS)
                    .map_err(|e| Problem::new(Code::InvalidReason, e.to_string()))?,
            ),
            None => None,
        };
        let status = TenantStatus::from(status);
        let now = state.now();
        ctx.set_resource(&tenant);
        ctx.set_detail(match &reason {
            Some(r) => format!("{}: {r}", status.name()),
            None => status.name().to_string(),
        });
        let audit = vec![ctx.record("/api/tenants/{tenant}", 200, None, now)];
        let updated = state
            .store
            .update_tenant(
                &tenant,
                move |t| {
                    if t.status != status {
                        t.status_changed_at = Some(now);
                    }
                    t.status = status;
                    t.status_reason = reason;
                },
                audit,
            )
            .await?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        ctx.mark_audited();
        Ok(TenantUpdated::Ok(Json(updated.into())))
    }

    /// Get a tenant's settings
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst; appliance-admin in every tenant. The values in force, and which of them follow
    /// the appliance configuration.
    #[oai(
        path = "/api/tenants/:tenant/settings",
        method = "get",
        tag = "ApiTags::Tenants",
        operation_id = "getTenantSettings"
    )]
    async fn get_settings(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<TenantSettingsDto>, { status::TENANT }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantSettingsRead,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let t = state
            .store
            .get_tenant(&tenant)?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        let effective = t.settings.effective(&state.config);
        Ok(Json(settings_dto(&t.settings, effective)))
    }

    /// Replace a tenant's settings
    ///
    /// Roles (default policies): tenant-admin; appliance-admin in every tenant. Changing
    /// `rate_limits` needs the appliance-admin role. The body is the tenant's settings as a
    /// whole: an absent member follows the appliance configuration. Answers the settings in
    /// force.
    #[oai(
        path = "/api/tenants/:tenant/settings",
        method = "put",
        tag = "ApiTags::Tenants",
        operation_id = "putTenantSettings"
    )]
    async fn put_settings(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// The settings; absent members follow the appliance.
        body: StrictJson<TenantSettingsChange>,
    ) -> ApiResult<Json<TenantSettingsDto>, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantSettingsWrite,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let TenantSettingsChange {
            body_retention_days,
            receipt_freshness_secs,
            rate_limits,
        } = body.0;
        let r = rate_limits.unwrap_or_default();
        let new = TenantSettings {
            body_retention_days,
            receipt_freshness_secs,
            rate_limits: RateOverrides {
                auth: r.auth,
                export: r.export,
                query: r.query,
                default: r.default,
            },
        };
        new.validate()?;
        let current = state
            .store
            .get_tenant(&tenant)?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        if !new.change_permitted(&current.settings, p.is_appliance_admin()) {
            return Err(
                Problem::forbidden("changing rate_limits needs the appliance-admin role").into(),
            );
        }
        let now = state.now();
        ctx.set_resource(&tenant);
        ctx.set_detail(serde_json::to_string(&new).unwrap_or_default());
        let audit = vec![ctx.record("/api/tenants/{tenant}/settings", 200, None, now)];
        let stored = new.clone();
        let updated = state
            .store
            .update_tenant(&tenant, move |t| t.settings = stored, audit)
            .await?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        ctx.mark_audited();
        let effective = updated.settings.effective(&state.config);
        Ok(Json(settings_dto(&updated.settings, effective)))
    }

    /// Get a tenant's usage
    ///
    /// Roles (default policies): every tenant role but ingest; appliance-admin in every
    /// tenant. Per UTC day of the range (ending today): events, bytes, receipts and artifacts
    /// stored, counted in the same commit as the data.
    #[oai(
        path = "/api/tenants/:tenant/usage",
        method = "get",
        tag = "ApiTags::Tenants",
        operation_id = "getTenantUsage"
    )]
    async fn get_usage(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// `7d`, `30d` (default) or `90d`.
        range: Query<Option<UsageRange>>,
    ) -> ApiResult<Json<UsageDto>, { status::TENANT }> {
        let ctx = ctx(req);
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TenantUsageRead,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let range = range.0.unwrap_or(UsageRange::D30);
        let today = crate::store::day_of(state.now());
        let days = state
            .store
            .usage(&tenant, today - (range.days() - 1), today)?;
        let mut totals = UsageTotalsDto::default();
        let days = days
            .into_iter()
            .map(|d| {
                totals.events += d.events;
                totals.bytes += d.bytes;
                totals.receipts += d.receipts;
                totals.artifacts += d.artifacts;
                UsageDayDto {
                    date: date_of_day(d.day),
                    events: d.events,
                    bytes: d.bytes,
                    receipts: d.receipts,
                    artifacts: d.artifacts,
                }
            })
            .collect();
        Ok(Json(UsageDto {
            range: range.name().to_string(),
            days,
            totals,
        }))
    }
}

/// The date of a day number (days since 1970-01-01).
fn date_of_day(day: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(day.saturating_mul(86_400))
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

const _: () = {
    assert!(MAX_BODY_RETENTION_DAYS == 3650);
    assert!(MAX_RECEIPT_FRESHNESS_SECS == 604_800);
    assert!(MAX_API_QUOTA_PER_MINUTE == 100_000);
};
