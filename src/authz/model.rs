//! The request vocabulary: who ([`Principal`]), on what ([`Resource`]), in which circumstances
//! ([`RequestContext`]). Handlers build these from authenticated and *stored* data — a
//! resource's tenant comes from its stored record, never from the URL — and hand them to
//! [`crate::authz::Authorizer::decide`].

use std::net::IpAddr;

use crate::identity::{self, Role};

use super::actions::ResourceType;

/// The pseudo-tenant of appliance-scope principals and resources. Real tenant ids are
/// `[a-z0-9-]{2,63}` ([`identity::valid_tenant_id`]), so it cannot collide; it equals
/// [`crate::audit::APPLIANCE_SCOPE`].
pub const APPLIANCE_TENANT: &str = crate::audit::APPLIANCE_SCOPE;

/// The Cedar principal types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person logged in with a password (console session).
    User,
    /// An API token.
    Token,
}

impl PrincipalKind {
    pub(crate) fn resource_type(self) -> ResourceType {
        match self {
            Self::User => ResourceType::User,
            Self::Token => ResourceType::Token,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User or token.
    pub kind: PrincipalKind,
    /// `usr_…` or `tok_…`.
    pub id: String,
    /// Tenant the principal belongs to; `None` for appliance-scope principals (then the Cedar
    /// attribute is [`APPLIANCE_TENANT`]).
    pub tenant: Option<String>,
    /// Roles held. `appliance-admin` counts only on appliance-scope principals.
    pub roles: Vec<Role>,
}

impl Principal {
    /// A token principal.
    pub fn token(id: impl Into<String>, tenant: Option<&str>, roles: Vec<Role>) -> Self {
        Self {
            kind: PrincipalKind::Token,
            id: id.into(),
            tenant: tenant.map(str::to_string),
            roles,
        }
    }

    /// A user principal.
    pub fn user(id: impl Into<String>, tenant: Option<&str>, roles: Vec<Role>) -> Self {
        Self {
            kind: PrincipalKind::User,
            id: id.into(),
            tenant: tenant.map(str::to_string),
            roles,
        }
    }

    /// The Cedar `tenant` attribute value (the tenant id or [`APPLIANCE_TENANT`]).
    pub fn tenant_attr(&self) -> &str {
        self.tenant.as_deref().unwrap_or(APPLIANCE_TENANT)
    }

    /// The resource standing for this principal (for `auth.me` and operations on oneself).
    pub fn as_resource(&self) -> Resource {
        Resource {
            kind: self.kind.resource_type(),
            id: self.id.clone(),
            tenant: self.tenant_attr().to_string(),
            roles: self.roles.clone(),
            detail: None,
        }
    }
}

impl From<&identity::Principal> for Principal {
    fn from(p: &identity::Principal) -> Self {
        if p.is_user() {
            Self::user(p.id.clone(), p.tenant.as_deref(), p.roles.clone())
        } else {
            Self::token(p.id.clone(), p.tenant.as_deref(), p.roles.clone())
        }
    }
}

/// A resource acted on: its entity type, id and owning tenant, plus the optional attributes
/// the schema declares for some types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Entity type.
    pub kind: ResourceType,
    /// Entity id (`evt_…`, `src_…`, run id, `acme/audit` for logs, …).
    pub id: String,
    /// Owning tenant id, or [`APPLIANCE_TENANT`].
    pub tenant: String,
    /// For `User` and `Token` resources: their roles (empty otherwise).
    pub roles: Vec<Role>,
    /// `Artifact.artifact_type`, `Log.log`, `Event.source` (ignored for other types).
    pub detail: Option<String>,
}

impl Resource {
    /// A resource of `kind` with `id`, owned by `tenant`. For `Log` use [`Resource::log`], for
    /// `User`/`Token` [`Resource::user`]/[`Resource::token`] (here their roles are empty and a
    /// log's name is its id).
    pub fn new(kind: ResourceType, id: impl Into<String>, tenant: &str) -> Self {
        Self {
            kind,
            id: id.into(),
            tenant: tenant.to_string(),
            roles: Vec::new(),
            detail: None,
        }
    }

    /// The appliance (tenant list and creation, appliance tokens and users, the system audit
    /// trail).
    pub fn appliance() -> Self {
        Self::new(ResourceType::Appliance, "evidentia", APPLIANCE_TENANT)
    }

    /// A tenant as a whole (list and create operations inside it, its settings, …).
    pub fn tenant(tenant: &str) -> Self {
        Self::new(ResourceType::Tenant, tenant, tenant)
    }

    /// A tenant's policy document.
    pub fn policy(tenant: &str) -> Self {
        Self::new(ResourceType::Policy, tenant, tenant)
    }

    /// The log named `log` (`evidence`, `audit`) of `tenant`, or the appliance `system` log
    /// when `tenant` is [`APPLIANCE_TENANT`]. Id `<tenant>/<log>`.
    pub fn log(tenant: &str, log: &str) -> Self {
        let mut r = Self::new(ResourceType::Log, format!("{tenant}/{log}"), tenant);
        r.detail = Some(log.to_string());
        r
    }

    /// An artifact with its type (`sbom`, `log`, …).
    pub fn artifact(id: impl Into<String>, tenant: &str, artifact_type: &str) -> Self {
        let mut r = Self::new(ResourceType::Artifact, id, tenant);
        r.detail = Some(artifact_type.to_string());
        r
    }

    /// An event, optionally with its source id.
    pub fn event(id: impl Into<String>, tenant: &str, source: Option<&str>) -> Self {
        let mut r = Self::new(ResourceType::Event, id, tenant);
        r.detail = source.map(str::to_string);
        r
    }

    /// A user as a resource; `tenant` `None` for appliance users.
    pub fn user(id: impl Into<String>, tenant: Option<&str>, roles: Vec<Role>) -> Self {
        let mut r = Self::new(ResourceType::User, id, tenant.unwrap_or(APPLIANCE_TENANT));
        r.roles = roles;
        r
    }

    /// A token as a resource; `tenant` `None` for appliance tokens.
    pub fn token(id: impl Into<String>, tenant: Option<&str>, roles: Vec<Role>) -> Self {
        let mut r = Self::new(ResourceType::Token, id, tenant.unwrap_or(APPLIANCE_TENANT));
        r.roles = roles;
        r
    }
}

/// How the principal authenticated (Cedar `context.authn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authn {
    /// `Authorization: Bearer evd_…`.
    Token,
    /// Console session cookie (with its CSRF token on unsafe methods).
    Session,
}

impl Authn {
    /// `token` or `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
        }
    }
}

/// The Cedar `context` of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// How the principal authenticated.
    pub authn: Authn,
    /// Client address, when known (`context.peer`, a Cedar `ipaddr`).
    pub peer: Option<IpAddr>,
    /// Roles the operation hands out (token and user creation, role changes); sent only for
    /// actions whose [`crate::authz::ActionSpec::context`] is `Grant`, where it is required.
    pub granted_roles: Vec<Role>,
}

impl RequestContext {
    /// A context for `authn` from `peer`, granting nothing.
    pub fn new(authn: Authn, peer: Option<IpAddr>) -> Self {
        Self {
            authn,
            peer,
            granted_roles: Vec::new(),
        }
    }

    /// The same context for an operation that grants `roles`.
    pub fn granting(mut self, roles: &[Role]) -> Self {
        self.granted_roles = roles.to_vec();
        self
    }
}
