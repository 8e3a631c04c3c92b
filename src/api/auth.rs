//! `Authorization: Bearer evd_…` authentication and the one authorization enforcement point,
//! [`AppState::authorize`], which asks Cedar ([`crate::authz`]).

use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::problem::Problem;
use super::{AppState, ReqCtx};
use crate::audit::AuthzNote;
use crate::authz::{self, APPLIANCE_TENANT, Action, Authn, Outcome, RequestContext, Resource};
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

    /// Attributes a request that no handler authenticated to `token` (the bearer credential
    /// it carried), when that is a valid token: the audit record then names the token and its
    /// tenant instead of `anonymous`. Nothing is authorized by this, and an invalid token
    /// leaves the record anonymous.
    pub fn attribute(&self, token: &str, ctx: &ReqCtx) {
        let Some(id) = parse_token(token) else { return };
        let Ok(Some(record)) = self.store.get_token(&id) else {
            return;
        };
        if check_token(token, &record, self.now()).is_ok() {
            ctx.set_actor(format!("token:{}", record.id));
            if let Some(t) = &record.tenant {
                ctx.set_tenant(t);
            }
        }
    }

    /// The enforcement point every handler calls: may `principal` perform `action` on
    /// `resource`? Decided by Cedar ([`crate::authz::Authorizer::decide`]: default deny, the
    /// embedded defaults plus the tenant's own policies); the decision and the SHA-256 of the
    /// policy set go into the request's audit record.
    ///
    /// For a resource of a tenant, a denial by tenant isolation and a tenant that does not
    /// exist answer the same 404 `NOT_FOUND` ("no such tenant"), so other tenants cannot be
    /// probed; the isolation denial is also recorded in the appliance's `system` log. Any other
    /// denial is 403 `FORBIDDEN` naming the action.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 403 `FORBIDDEN`; 503 when the tenant cannot be read.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        ctx: &ReqCtx,
    ) -> Result<(), Problem> {
        self.authorize_with(principal, action, resource, &[], ctx)
    }

    /// [`AppState::authorize`] for actions that hand out roles (`token.create`,
    /// `admin_token.issue`, `user.create`, `user.update`): `granted` are the roles being
    /// given, which the no-escalation guardrail checks against the principal's own.
    ///
    /// # Errors
    /// As [`AppState::authorize`].
    pub fn authorize_grant(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        granted: &[Role],
        ctx: &ReqCtx,
    ) -> Result<(), Problem> {
        self.authorize_with(principal, action, resource, granted, ctx)
    }

    fn authorize_with(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        granted: &[Role],
        ctx: &ReqCtx,
    ) -> Result<(), Problem> {
        ctx.set_action(action.id());
        let context = RequestContext::new(Authn::Token, ctx.peer.parse().ok()).granting(granted);
        let decision = self.authz.decide(
            &authz::Principal::from(principal),
            action,
            resource,
            &context,
        );
        ctx.set_authz(AuthzNote::from(&decision));
        let tenant_scoped = resource.tenant != APPLIANCE_TENANT;
        match decision.outcome {
            Outcome::Allow => {}
            Outcome::NotFound if tenant_scoped => {
                ctx.set_cross_tenant(&resource.tenant);
                return Err(Problem::not_found("tenant"));
            }
            Outcome::NotFound | Outcome::Forbidden => {
                return Err(Problem::forbidden(if tenant_scoped {
                    format!(
                        "the policies in force do not permit {} on this {}",
                        action.id(),
                        resource.kind.name()
                    )
                } else {
                    format!("{} needs the appliance-admin role", action.id())
                }));
            }
        }
        if tenant_scoped {
            if self.store.get_tenant(&resource.tenant)?.is_none() {
                return Err(Problem::not_found("tenant"));
            }
            ctx.set_tenant(&resource.tenant);
        }
        Ok(())
    }
}
