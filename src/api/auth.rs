//! `Authorization: Bearer evd_…` authentication and the minimal role checks that precede Cedar.

use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::problem::Problem;
use super::{AppState, ReqCtx};
use crate::identity::{Principal, Role, check_token, parse_token};

/// API token (`evd_…`), tenant-scoped, with roles.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "evd_<token>")]
pub struct BearerAuth(pub Bearer);

impl AppState {
    /// Resolves a bearer token to a principal and records it as the request's actor.
    ///
    /// # Errors
    /// 401 `UNAUTHENTICATED` for malformed, unknown, revoked or expired tokens (one answer).
    pub fn authenticate(&self, auth: &BearerAuth, ctx: &ReqCtx) -> Result<Principal, Problem> {
        let token = auth.0.token.as_str();
        let id = parse_token(token).ok_or_else(Problem::unauthenticated)?;
        let record = self
            .store
            .get_token(&id)?
            .ok_or_else(Problem::unauthenticated)?;
        let now = self.now();
        check_token(token, &record, now).map_err(|_| Problem::unauthenticated())?;
        self.token_use.observe(&record, now);
        let principal = Principal {
            token_id: record.id,
            tenant: record.tenant,
            roles: record.roles,
        };
        ctx.set_actor(principal.actor());
        if let Some(t) = &principal.tenant {
            ctx.set_tenant(t);
        }
        Ok(principal)
    }

    /// Checks that `principal` may act in `tenant` with one of `roles`: another tenant (or a
    /// missing one) answers 404 exactly like a missing resource; a missing role answers 403.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 403 `FORBIDDEN`.
    pub fn authorize_tenant(
        &self,
        principal: &Principal,
        tenant: &str,
        roles: &[Role],
        ctx: &ReqCtx,
    ) -> Result<(), Problem> {
        if !principal.in_tenant(tenant) || self.store.get_tenant(tenant)?.is_none() {
            return Err(Problem::not_found("tenant"));
        }
        ctx.set_tenant(tenant);
        require_roles(principal, roles)
    }

    /// Appliance-admin only.
    ///
    /// # Errors
    /// 403 `FORBIDDEN`.
    pub fn require_admin(&self, principal: &Principal) -> Result<(), Problem> {
        if principal.is_appliance_admin() {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "this operation needs the appliance-admin role",
            ))
        }
    }
}

/// Checks that `principal` holds one of `roles` (appliance admins hold every role).
///
/// # Errors
/// 403 `FORBIDDEN` naming the roles.
pub fn require_roles(principal: &Principal, roles: &[Role]) -> Result<(), Problem> {
    if principal.has_any(roles) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "this operation needs one of the roles: {}",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
