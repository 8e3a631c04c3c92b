//! Tenants and API tokens.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::BearerAuth;
use super::problem::{ApiResult, Problem};
use super::{AppState, ctx};
use crate::clock::rfc3339;
use crate::identity::{Role, Tenant, TokenRecord, mint_token, valid_tenant_id};

#[derive(Tags)]
enum ApiTags {
    /// Tenants (appliance administration).
    Tenants,
    /// API tokens of a tenant.
    Tokens,
}

/// A tenant.
#[derive(Object)]
pub struct TenantDto {
    /// `[a-z0-9-]{2,63}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<Tenant> for TenantDto {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            name: t.name,
            status: t.status,
            created_at: rfc3339(t.created_at),
        }
    }
}

/// `POST /api/tenants` body.
#[derive(Object)]
pub struct CreateTenant {
    /// `[a-z0-9-]{2,63}`.
    pub id: String,
    /// Display name (1–200 characters).
    pub name: String,
}

/// A list of tenants.
#[derive(Object)]
pub struct TenantList {
    /// Tenants by id.
    pub items: Vec<TenantDto>,
}

/// `POST /api/tenants/{tenant}/tokens` body.
#[derive(Object)]
pub struct CreateToken {
    /// Label (1–100 characters).
    pub name: String,
    /// Roles: `tenant-admin`, `ingest`, `viewer`.
    pub roles: Vec<String>,
    /// Lifetime in days (1–3650); absent = 90.
    pub expires_in_days: Option<u32>,
}

/// A token as listed (no secret).
#[derive(Object)]
pub struct TokenDto {
    /// `tok_…`.
    pub id: String,
    /// Label.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, if any.
    pub expires_at: Option<String>,
    /// RFC 3339, if revoked.
    pub revoked_at: Option<String>,
}

impl From<TokenRecord> for TokenDto {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            roles: t.roles.iter().map(|r| r.as_str().to_string()).collect(),
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

/// A new token; `token` is shown only in this response.
#[derive(Object)]
pub struct TokenCreated {
    /// `tok_…`.
    pub id: String,
    /// The secret token (`evd_…`): store it now, it is never shown again.
    pub token: String,
    /// Label.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

/// A list of tokens.
#[derive(Object)]
pub struct TokenList {
    /// Tokens.
    pub items: Vec<TokenDto>,
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
    /// Create a tenant (appliance-admin).
    #[oai(path = "/api/tenants", method = "post", tag = "ApiTags::Tenants")]
    async fn create_tenant(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<CreateTenant>,
    ) -> ApiResult<TenantCreated> {
        let ctx = ctx(req);
        ctx.set_action("tenant.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.require_admin(&p)?;
        let CreateTenant { id, name } = body.0;
        if !valid_tenant_id(&id) {
            return Err(Problem::unprocessable(
                "INVALID_TENANT_ID",
                "id must be 2 to 63 characters of a-z, 0-9 and '-'",
            ));
        }
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Problem::unprocessable(
                "INVALID_NAME",
                "name must be 1 to 200 characters",
            ));
        }
        ctx.set_tenant(&id);
        ctx.set_resource(&id);
        let tenant = Tenant {
            id: id.clone(),
            name,
            status: "active".into(),
            created_at: state.now(),
        };
        let audit = vec![ctx.record("/api/tenants", 201, None, state.now())];
        if !state.store.create_tenant(tenant.clone(), audit).await? {
            return Err(Problem::conflict(
                "TENANT_EXISTS",
                format!("tenant {id} already exists"),
            ));
        }
        ctx.mark_audited();
        Ok(TenantCreated::Created(Json(tenant.into())))
    }

    /// List tenants (appliance-admin).
    #[oai(path = "/api/tenants", method = "get", tag = "ApiTags::Tenants")]
    async fn list_tenants(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
    ) -> ApiResult<Json<TenantList>> {
        let ctx = ctx(req);
        ctx.set_action("tenant.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.require_admin(&p)?;
        let items = state
            .store
            .list_tenants()?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TenantList { items }))
    }

    /// Get a tenant (appliance-admin, or a tenant-admin of that tenant).
    #[oai(
        path = "/api/tenants/:tenant",
        method = "get",
        tag = "ApiTags::Tenants"
    )]
    async fn get_tenant(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
    ) -> ApiResult<Json<TenantDto>> {
        let ctx = ctx(req);
        ctx.set_action("tenant.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        let t = state
            .store
            .get_tenant(&tenant)?
            .ok_or_else(|| Problem::not_found("tenant"))?;
        Ok(Json(t.into()))
    }

    /// Create an API token in a tenant (tenant-admin); the token is shown once.
    #[oai(
        path = "/api/tenants/:tenant/tokens",
        method = "post",
        tag = "ApiTags::Tokens"
    )]
    async fn create_token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        body: Json<CreateToken>,
    ) -> ApiResult<TokenCreatedResponse> {
        let ctx = ctx(req);
        ctx.set_action("token.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        let CreateToken {
            name,
            roles,
            expires_in_days,
        } = body.0;
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Problem::unprocessable(
                "INVALID_NAME",
                "name must be 1 to 100 characters",
            ));
        }
        let mut parsed = Vec::new();
        for r in &roles {
            match Role::parse(r) {
                Some(Role::ApplianceAdmin) | None => {
                    return Err(Problem::unprocessable(
                        "INVALID_ROLE",
                        format!(
                            "unknown role {r:?}; tenant tokens take tenant-admin, ingest, viewer"
                        ),
                    ));
                }
                Some(role) if !parsed.contains(&role) => parsed.push(role),
                Some(_) => {}
            }
        }
        if parsed.is_empty() {
            return Err(Problem::unprocessable(
                "INVALID_ROLE",
                "at least one role is required",
            ));
        }
        let days = expires_in_days.unwrap_or(90);
        if !(1..=3650).contains(&days) {
            return Err(Problem::unprocessable(
                "INVALID_EXPIRY",
                "expires_in_days must be 1 to 3650",
            ));
        }
        let now = state.now();
        let minted = mint_token(
            Some(&tenant),
            &name,
            parsed,
            now,
            Some(now + i64::from(days) * 86_400),
        );
        ctx.set_resource(&minted.record.id);
        let audit = vec![ctx.record("/api/tenants/{tenant}/tokens", 201, None, now)];
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

    /// List a tenant's tokens (no secrets).
    #[oai(
        path = "/api/tenants/:tenant/tokens",
        method = "get",
        tag = "ApiTags::Tokens"
    )]
    async fn list_tokens(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
    ) -> ApiResult<Json<TokenList>> {
        let ctx = ctx(req);
        ctx.set_action("token.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        let items = state
            .store
            .list_tokens(&tenant)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TokenList { items }))
    }

    /// Revoke a token.
    #[oai(
        path = "/api/tenants/:tenant/tokens/:id",
        method = "delete",
        tag = "ApiTags::Tokens"
    )]
    async fn revoke_token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
    ) -> ApiResult<Deleted> {
        let ctx = ctx(req);
        ctx.set_action("token.revoke");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        ctx.set_resource(&id);
        let now = state.now();
        let audit = vec![ctx.record("/api/tenants/{tenant}/tokens/{id}", 204, None, now)];
        if !state.store.revoke_token(tenant.0, id.0, now, audit).await? {
            return Err(Problem::not_found("token"));
        }
        ctx.mark_audited();
        Ok(Deleted::NoContent)
    }
}
