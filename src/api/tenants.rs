//! Tenants and API tokens.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{RoleName, TenantRoleName, ts};
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, ctx};
use crate::authz::{Action, Resource};
use crate::identity::{self, Role, Tenant, TokenRecord, valid_tenant_id};
use crate::store::Revocation;
use crate::text;

#[derive(Tags)]
enum ApiTags {
    /// Tenants (appliance administration).
    Tenants,
    /// API tokens of a tenant, and the appliance-admin tokens.
    Tokens,
}

/// A tenant: the unit of isolation.
#[derive(Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct TenantDto {
    /// Tenant id.
    #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether the tenant is served.
    pub status: TenantStatus,
    /// When it was created.
    pub created_at: time::OffsetDateTime,
    /// Why the status last changed (as the appliance-admin gave it).
    pub status_reason: Option<String>,
    /// When the status last changed.
    pub status_changed_at: Option<time::OffsetDateTime>,
}

impl poem_openapi::types::Example for TenantDto {
    fn example() -> Self {
        Self {
            id: "acme".into(),
            name: "Acme Corp".into(),
            status: TenantStatus::Active,
            created_at: ts(1_795_003_200),
            status_reason: None,
            status_changed_at: None,
        }
    }
}

/// Whether a tenant is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Ingestion and API work.
    #[oai(rename = "active")]
    Active,
    /// Ingestion and API are refused.
    #[oai(rename = "suspended")]
    Suspended,
    /// Deleted under dual control: content destroyed, logs kept; final.
    #[oai(rename = "deleted")]
    Deleted,
}

impl From<identity::tenant::TenantStatus> for TenantStatus {
    fn from(s: identity::tenant::TenantStatus) -> Self {
        match s {
            identity::tenant::TenantStatus::Active => Self::Active,
            identity::tenant::TenantStatus::Suspended => Self::Suspended,
            identity::tenant::TenantStatus::Deleted => Self::Deleted,
        }
    }
}

/// The status an appliance-admin may set (`PATCH /api/tenants/{tenant}`); deletion goes
/// through dual control instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatusChoice {
    /// Ingestion and API work.
    #[oai(rename = "active")]
    Active,
    /// Ingestion and API are refused.
    #[oai(rename = "suspended")]
    Suspended,
}

impl From<TenantStatusChoice> for identity::tenant::TenantStatus {
    fn from(s: TenantStatusChoice) -> Self {
        match s {
            TenantStatusChoice::Active => Self::Active,
            TenantStatusChoice::Suspended => Self::Suspended,
        }
    }
}

impl From<Tenant> for TenantDto {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            name: t.name,
            status: t.status.into(),
            created_at: ts(t.created_at),
            status_reason: t.status_reason,
            status_changed_at: t.status_changed_at.map(ts),
        }
    }
}

/// Most characters in a tenant's display name.
pub const TENANT_NAME_MAX: usize = 200;

/// `POST /api/tenants` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Tenant id: 2–63 characters of `a-z`, `0-9` and `-`.
    #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
    pub id: String,
    /// Display name: 1–200 characters, no white space at either end, no control, bidi or
    /// invisible characters (the pattern states it).
    pub name: String,
}

impl poem_openapi::types::Example for CreateTenant {
    fn example() -> Self {
        Self {
            id: "acme".into(),
            name: "Acme Corp".into(),
        }
    }
}

/// A list of tenants.
#[derive(Object)]
pub struct TenantList {
    /// Tenants by id.
    pub items: Vec<TenantDto>,
}

/// `POST /api/tenants/{tenant}/tokens` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Label: 1–100 characters, no white space at either end, no control, bidi or invisible
    /// characters (the pattern states it).
    pub name: String,
    /// Roles: 1 to 8 entries (a repeated role counts once in the token).
    #[oai(validator(min_items = 1, max_items = 8))]
    pub roles: Vec<TenantRoleName>,
    /// Lifetime in days; absent means 90.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<u32>,
}

impl poem_openapi::types::Example for CreateToken {
    fn example() -> Self {
        Self {
            name: "ci-pipeline".into(),
            roles: vec![TenantRoleName::Ingest, TenantRoleName::Viewer],
            expires_in_days: Some(90),
        }
    }
}

/// `POST /api/admin/tokens` body: an appliance-admin token (its only role is
/// `appliance-admin`).
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminToken {
    /// Label: 1–100 characters, no white space at either end, no control, bidi or invisible
    /// characters (the pattern states it).
    pub name: String,
    /// Lifetime in days; absent means 90.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<u32>,
}

impl poem_openapi::types::Example for CreateAdminToken {
    fn example() -> Self {
        Self {
            name: "second-admin".into(),
            expires_in_days: Some(30),
        }
    }
}

/// A token as listed (the secret is never listed).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenDto {
    /// Token id (`tok_` and 16 hex digits).
    #[oai(validator(pattern = "^tok_[0-9a-f]{16}$"))]
    pub id: String,
    /// Label.
    pub name: String,
    /// Roles granted.
    pub roles: Vec<RoleName>,
    /// When it was issued.
    pub created_at: time::OffsetDateTime,
    /// When it stops working; absent for tokens that never expire.
    pub expires_at: Option<time::OffsetDateTime>,
    /// When it was revoked; absent while it is valid.
    pub revoked_at: Option<time::OffsetDateTime>,
    /// When it last authenticated a request, to within an hour and recorded up to five
    /// minutes late; absent if it has not been used.
    pub last_used_at: Option<time::OffsetDateTime>,
}

impl From<TokenRecord> for TokenDto {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            roles: t.roles.iter().map(|r| RoleName::from(*r)).collect(),
            created_at: ts(t.created_at),
            expires_at: t.expires_at.map(ts),
            revoked_at: t.revoked_at.map(ts),
            last_used_at: t.last_used_at.map(ts),
        }
    }
}

/// A new token; `token` is shown only in this response.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenCreated {
    /// Token id (`tok_` and 16 hex digits).
    pub id: String,
    /// The secret token (`evd_` and 72 hex digits): store it now, it is never shown again.
    #[oai(validator(pattern = "^evd_[0-9a-f]{72}$"))]
    pub token: String,
    /// Label.
    pub name: String,
    /// Roles granted.
    pub roles: Vec<RoleName>,
    /// When it stops working.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// A list of tokens.
#[derive(Object)]
pub struct TokenList {
    /// Tokens.
    pub items: Vec<TokenDto>,
}

/// Stores a freshly issued token with its audit record (route template `route`) and answers
/// 201 with the secret shown once.
async fn store_minted(
    state: &AppState,
    ctx: &super::ReqCtx,
    minted: identity::NewToken,
    route: &str,
    now: i64,
) -> Result<TokenCreatedResponse, Problem> {
    ctx.set_resource(&minted.record.id);
    let audit = vec![ctx.record(route, 201, None, now)];
    state
        .store
        .insert_token(minted.record.clone(), audit)
        .await?;
    ctx.mark_audited();
    let dto = TokenDto::from(minted.record);
    Ok(TokenCreatedResponse::Created(Json(TokenCreated {
        id: dto.id,
        token: minted.token,
        name: dto.name,
        roles: dto.roles,
        expires_at: dto.expires_at,
    })))
}

#[derive(ApiResponse)]
enum TenantCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<TenantDto>),
}

#[derive(ApiResponse)]
enum TokenCreatedResponse {
    /// Created; the token is shown once.
    #[oai(status = 201)]
    Created(Json<TokenCreated>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// Tenants and tokens.
pub struct TenantsApi;

#[OpenApi]
impl TenantsApi {
    /// Create a tenant
    ///
    /// Roles: appliance-admin only. The id is permanent; the tenant starts `active` with empty
    /// logs.
    #[oai(
        path = "/api/tenants",
        method = "post",
        tag = "ApiTags::Tenants",
        operation_id = "createTenant"
    )]
    async fn create_tenant(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// The new tenant.
        body: StrictJson<CreateTenant>,
    ) -> ApiResult<TenantCreated, { status::AUTH | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("tenant.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::TenantCreate, &Resource::appliance(), &ctx)?;
        let CreateTenant { id, name } = body.0;
        if !valid_tenant_id(&id) {
            return Err(Problem::new(
                Code::InvalidTenantId,
                "id must be 2 to 63 characters of a-z, 0-9 and '-'",
            )
            .into());
        }
        let name = text::display_name("name", &name, TENANT_NAME_MAX)?;
        ctx.set_tenant(&id);
        ctx.set_resource(&id);
        let tenant = Tenant::new(id.clone(), name, state.now());
        let audit = vec![ctx.record("/api/tenants", 201, None, state.now())];
        if !state.store.create_tenant(tenant.clone(), audit).await? {
            return Err(
                Problem::new(Code::TenantExists, format!("tenant {id} already exists")).into(),
            );
        }
        ctx.mark_audited();
        Ok(TenantCreated::Created(Json(tenant.into())))
    }

    /// List tenants
    ///
    /// Roles: appliance-admin only. Every tenant, by id.
    #[oai(
        path = "/api/tenants",
        method = "get",
        tag = "ApiTags::Tenants",
        operation_id = "listTenants"
    )]
    async fn list_tenants(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
    ) -> ApiResult<Json<TenantList>, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action("tenant.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::TenantList, &Resource::appliance(), &ctx)?;
        let items = state
            .store
            .list_tenants()?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TenantList { items }))
    }

    /// Create an API token
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant. The
    /// token (`evd_…`) is in this response only; the appliance keeps its SHA-256.
    #[oai(
        path = "/api/tenants/:tenant/tokens",
        method = "post",
        tag = "ApiTags::Tokens",
        operation_id = "createToken"
    )]
    async fn create_token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Label, roles and lifetime of the token.
        body: StrictJson<CreateToken>,
    ) -> ApiResult<TokenCreatedResponse, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action("token.create");
        let p = state.authenticate(&auth, &ctx)?;
        let CreateToken {
            name,
            roles,
            expires_in_days,
        } = body.0;
        let roles: Vec<Role> = roles.into_iter().map(Role::from).collect();
        state.authorize_grant(
            &p,
            Action::TokenCreate,
            &Resource::tenant(&tenant),
            &roles,
            &ctx,
        )?;
        let now = state.now();
        let minted = identity::issue_token(Some(&tenant), &name, &roles, expires_in_days, now)?;
        Ok(store_minted(&state, &ctx, minted, "/api/tenants/{tenant}/tokens", now).await?)
    }

    /// List API tokens
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin; appliance-admin
    /// in every tenant. Tokens of the tenant with their state; never their secrets.
    #[oai(
        path = "/api/tenants/:tenant/tokens",
        method = "get",
        tag = "ApiTags::Tokens",
        operation_id = "listTokens"
    )]
    async fn list_tokens(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<TokenList>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("token.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::TokenList, &Resource::tenant(&tenant), &ctx)?;
        let items = state
            .store
            .list_tokens(Some(&tenant))?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TokenList { items }))
    }

    /// Revoke an API token
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant. The
    /// token is refused (401) from this moment; its record stays listed with `revoked_at`. Revoking
    /// a revoked token is a no-op.
    #[oai(
        path = "/api/tenants/:tenant/tokens/:id",
        method = "delete",
        tag = "ApiTags::Tokens",
        operation_id = "revokeToken"
    )]
    async fn revoke_token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Token id (`tok_…`).
        #[oai(validator(pattern = "^tok_[0-9a-f]{16}$"))]
        id: Path<String>,
    ) -> ApiResult<Deleted, { status::TENANT | status::S507 }> {
        let ctx = ctx(req);
        ctx.set_action("token.revoke");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::TokenRevoke,
            &Resource::token(id.0.as_str(), Some(&tenant), Vec::new()),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let now = state.now();
        let audit = vec![ctx.record("/api/tenants/{tenant}/tokens/{id}", 204, None, now)];
        if state
            .store
            .revoke_token(Some(tenant.0), id.0, now, false, audit)
            .await?
            == Revocation::NotFound
        {
            return Err(Problem::not_found("token").into());
        }
        ctx.mark_audited();
        Ok(Deleted::NoContent)
    }

    /// Issue an appliance-admin token
    ///
    /// Roles: appliance-admin only. The token (`evd_…`) is in this response only; the appliance
    /// keeps its SHA-256. The issue is recorded in the `system` audit log.
    #[oai(
        path = "/api/admin/tokens",
        method = "post",
        tag = "ApiTags::Tokens",
        operation_id = "createAdminToken"
    )]
    async fn create_admin_token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Label and lifetime of the token.
        body: StrictJson<CreateAdminToken>,
    ) -> ApiResult<TokenCreatedResponse, { status::AUTH | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action("admin_token.issue");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_grant(
            &p,
            Action::AdminTokenIssue,
            &Resource::appliance(),
            &[Role::ApplianceAdmin],
            &ctx,
        )?;
        let CreateAdminToken {
            name,
            expires_in_days,
        } = body.0;
        let now = state.now();
        let minted =
            identity::issue_token(None, &name, &[Role::ApplianceAdmin], expires_in_days, now)?;
        Ok(store_minted(&state, &ctx, minted, "/api/admin/tokens", now).await?)
    }

    /// List appliance-admin tokens
    ///
    /// Roles: appliance-admin only. Every appliance-admin token with its state (the bootstrap token
    /// included); never their secrets.
    #[oai(
        path = "/api/admin/tokens",
        method = "get",
        tag = "ApiTags::Tokens",
        operation_id = "listAdminTokens"
    )]
    async fn list_admin_tokens(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
    ) -> ApiResult<Json<TokenList>, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action("admin_token.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AdminTokenList, &Resource::appliance(), &ctx)?;
        let items = state
            .store
            .list_tokens(None)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TokenList { items }))
    }

    /// Revoke an appliance-admin token
    ///
    /// Roles: appliance-admin only. The token is refused (401) from this moment, the caller's own
    /// included; its record stays listed with `revoked_at`. The last working appliance-admin token
    /// cannot be revoked (409 `LAST_ADMIN_TOKEN`): issue another first.
    #[oai(
        path = "/api/admin/tokens/:id",
        method = "delete",
        tag = "ApiTags::Tokens",
        operation_id = "revokeAdminToken"
    )]
    async fn revoke_admin_token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Token id (`tok_…`).
        #[oai(validator(pattern = "^tok_[0-9a-f]{16}$"))]
        id: Path<String>,
    ) -> ApiResult<Deleted, { status::AUTH | status::S404 | status::S409 | status::S507 }> {
        let ctx = ctx(req);
        ctx.set_action("admin_token.revoke");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::AdminTokenRevoke,
            &Resource::token(id.0.as_str(), None, Vec::new()),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let now = state.now();
        let audit = vec![ctx.record("/api/admin/tokens/{id}", 204, None, now)];
        match state
            .store
            .revoke_token(None, id.0, now, false, audit)
            .await?
        {
            Revocation::Revoked => {
                ctx.mark_audited();
                Ok(Deleted::NoContent)
            }
            Revocation::NotFound => Err(Problem::not_found("token").into()),
            Revocation::LastAdmin => Err(Problem::new(
                Code::LastAdminToken,
                "this is the last working appliance-admin token: issue another before revoking it",
            )
            .into()),
        }
    }
}
