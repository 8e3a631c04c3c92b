//! Authentication — API tokens (`Authorization: Bearer evd_…`) and console sessions (the
//! session cookie, with the CSRF token on unsafe methods) — and the one authorization
//! enforcement point, [`AppState::authorize`], which asks Cedar ([`crate::authz`]).

use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use super::code::Code;
use super::problem::Problem;
use super::{AppState, ReqCtx};
use crate::audit::AuthzNote;
use crate::authz::{self, APPLIANCE_TENANT, Action, Authn, Outcome, RequestContext, Resource};
use crate::identity::session::{check_session, csrf_required, lookup_key, verify_csrf};
use crate::identity::tenant::TenantStatus;
use crate::identity::{Credential, Principal, Role, check_token, parse_token};
use crate::ratelimit::{ApiClass, ApiQuotas, RateDecision, class_headers};

/// API token (`evd_…`), tenant-scoped, with roles.
#[derive(SecurityScheme)]
#[oai(rename = "BearerAuth", ty = "bearer", bearer_format = "evd_<token>")]
pub struct TokenAuth(pub Bearer);

/// Console session cookie (set by `POST /api/auth/login`); unsafe methods also need the
/// `X-CSRF-Token` header from the login answer.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "evidentia_session", key_in = "cookie")]
pub struct SessionCookie(pub ApiKey);

/// The session cookie under TLS (`__Host-` prefix: `Secure`, `Path=/`, no `Domain`).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "__Host-evidentia_session",
    key_in = "cookie"
)]
pub struct SessionCookieTls(pub ApiKey);

/// Either credential; a bearer token wins when both are sent.
#[derive(SecurityScheme)]
pub enum ApiAuth {
    /// An API token.
    Token(TokenAuth),
    /// A console session.
    Session(SessionCookie),
    /// A console session under TLS.
    SessionTls(SessionCookieTls),
}

impl AppState {
    /// Resolves the request's credential to a principal and records it as the actor.
    ///
    /// # Errors
    /// 401 `UNAUTHENTICATED` for malformed, unknown, revoked or expired tokens and sessions
    /// (one answer); 403 `CSRF_TOKEN_INVALID` for a session request with an unsafe method
    /// whose `X-CSRF-Token` is missing or wrong.
    pub fn authenticate(&self, auth: &ApiAuth, ctx: &ReqCtx) -> Result<Principal, Problem> {
        let principal = match auth {
            ApiAuth::Token(t) => self.token_principal(t.0.token.as_str())?,
            ApiAuth::Session(c) => self.session_principal(&c.0.key, ctx)?,
            ApiAuth::SessionTls(c) => self.session_principal(&c.0.key, ctx)?,
        };
        ctx.set_actor(principal.actor());
        if let Some(t) = &principal.tenant {
            ctx.set_tenant(t);
        }
        Ok(principal)
    }

    fn token_principal(&self, token: &str) -> Result<Principal, Problem> {
        let id = parse_token(token).ok_or_else(Problem::unauthenticated)?;
        let record = self
            .store
            .get_token(&id)?
            .ok_or_else(Problem::unauthenticated)?;
        let now = self.now();
        check_token(token, &record, now).map_err(|_| Problem::unauthenticated())?;
        self.token_use.observe(&record, now);
        Ok(Principal {
            id: record.id,
            credential: Credential::Token,
            tenant: record.tenant,
            roles: record.roles,
        })
    }

    /// A session principal: the session must be live (idle and absolute lifetimes), its user
    /// enabled, and an unsafe method must carry the session's CSRF token. Last use is noted in
    /// memory ([`crate::identity::session::SessionUse`]) and written in batches.
    fn session_principal(&self, presented: &str, ctx: &ReqCtx) -> Result<Principal, Problem> {
        let digest = lookup_key(presented).ok_or_else(Problem::unauthenticated)?;
        let session = self
            .store
            .get_session(&digest)?
            .ok_or_else(Problem::unauthenticated)?;
        let session = self.session_use.current(session);
        let now = self.now();
        check_session(presented, &session, now, &self.sessions)
            .map_err(|_| Problem::unauthenticated())?;
        let user = self
            .store
            .get_user(&session.user_id)?
            .filter(|u| u.disabled_at.is_none())
            .ok_or_else(Problem::unauthenticated)?;
        ctx.set_actor(user.actor());
        if csrf_required(&ctx.method)
            && !ctx
                .csrf
                .as_deref()
                .is_some_and(|t| verify_csrf(presented, t))
        {
            return Err(Problem::new(
                Code::CsrfTokenInvalid,
                "requests authenticated by the session cookie need the X-CSRF-Token header \
                 from the login answer",
            ));
        }
        self.session_use.observe(&digest, now);
        Ok(Principal {
            id: user.id,
            credential: Credential::Session { id_sha256: digest },
            tenant: user.tenant,
            roles: user.roles,
        })
    }

    /// Attributes a request that no handler authenticated to `token` (the bearer credential
    /// it carried), when that is a valid token: the audit record then names the token and its
    /// tenant instead of `anonymous`. Nothing is authorized by this, and an invalid token
    /// leaves the record anonymous.
    pub fn attribute(&self, token: &str, ctx: &ReqCtx) {
        if let Ok(p) = self.token_principal(token) {
            ctx.set_actor(p.actor());
            if let Some(t) = &p.tenant {
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

    /// Takes one request of `key` from `class`'s quota of `per_minute` requests.
    ///
    /// # Errors
    /// 429 `RATE_LIMITED` with `Retry-After`, `RateLimit-Policy` and `RateLimit`.
    pub fn limit(&self, class: ApiClass, per_minute: u32, key: &str) -> Result<(), Problem> {
        let decision = self.api_limits.check(class, per_minute, key);
        if let RateDecision::Limited {
            retry_after_secs, ..
        } = decision
        {
            let mut p = Problem::new(
                Code::RateLimited,
                format!(
                    "the {} quota of this principal for this operation is spent",
                    class.name()
                ),
            )
            .with_header("Retry-After", retry_after_secs.to_string());
            for (name, value) in class_headers(class, &decision) {
                p = p.with_header(name, value);
            }
            return Err(p);
        }
        Ok(())
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
        let authn = if principal.is_user() {
            Authn::Session
        } else {
            Authn::Token
        };
        let context = RequestContext::new(authn, ctx.peer.parse().ok()).granting(granted);
        let decision = self.authz.decide(
            &authz::Principal::from(principal),
            action,
            resource,
            &context,
        );
        ctx.set_authz(AuthzNote::from(&decision));
        let tenant_scoped = resource.tenant != APPLIANCE_TENANT;
        let read = matches!(ctx.method.as_str(), "GET" | "HEAD");
        // Read for every outcome, so a denial and an allowed request cost the same lookup.
        let tenant = if tenant_scoped {
            self.store.get_tenant(&resource.tenant)?
        } else {
            None
        };
        // The rate class limit comes before the decision is answered, so denied probes spend
        // the quota too. The quota is the principal's tenant's (appliance defaults for
        // appliance principals), never the probed tenant's, so it tells nothing about it.
        let quotas = match principal.tenant.as_deref() {
            None => self.default_quotas(),
            Some(own) if tenant.as_ref().is_some_and(|t| t.id == own) => tenant
                .as_ref()
                .map(|t| t.settings.effective(&self.config).rate_limits)
                .unwrap_or_else(|| self.default_quotas()),
            Some(own) => self.tenant_quotas(own)?,
        };
        let class = ApiClass::of(action.id(), read);
        self.limit(
            class,
            quotas.of(class),
            &format!("{}|{}", principal.actor(), action.id()),
        )?;
        match decision.outcome {
            Outcome::Allow if action.spec().sensitive => {
                ctx.set_sensitive(super::access::SensitiveRead {
                    action,
                    kind: resource.kind.name(),
                    id: resource.id.clone(),
                    policy_set: decision.policy_set_sha256.clone(),
                });
            }
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
            let Some(tenant) = tenant else {
                return Err(Problem::not_found("tenant"));
            };
            ctx.set_tenant(&resource.tenant);
            if !tenant.status.admits(
                principal.is_appliance_admin(),
                read,
                action == Action::TenantStatusWrite,
                action == Action::AuthLogout,
            ) {
                return Err(match tenant.status {
                    TenantStatus::Deleted => Problem::new(
                        Code::TenantDeleted,
                        format!(
                            "tenant {} is deleted: its content was destroyed; its logs answer \
                             only appliance-admins' reads",
                            tenant.id
                        ),
                    ),
                    _ => Problem::new(
                        Code::TenantSuspended,
                        format!(
                            "tenant {} is suspended: its API answers only appliance-admins' reads",
                            tenant.id
                        ),
                    ),
                });
            }
        }
        Ok(())
    }

    /// The appliance's per-class API quotas (`[ratelimit] api_*_per_minute`).
    pub fn default_quotas(&self) -> ApiQuotas {
        crate::identity::tenant::TenantSettings::default()
            .effective(&self.config)
            .rate_limits
    }

    /// Tenant `id`'s per-class API quotas (its settings over the appliance's).
    fn tenant_quotas(&self, id: &str) -> Result<ApiQuotas, Problem> {
        Ok(match self.store.get_tenant(id)? {
            Some(t) => t.settings.effective(&self.config).rate_limits,
            None => self.default_quotas(),
        })
    }
}
