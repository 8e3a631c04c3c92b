//! Attribute-based access control with Cedar (`cedar-policy` 4): the schema, the embedded
//! default policies, per-tenant extra policies and the one enforcement point,
//! [`Authorizer::decide`].
//!
//! # Model
//!
//! * **Principals** `Evidentia::User` and `Evidentia::Token`, each with `tenant` (an
//!   `Evidentia::Tenant` entity reference) and `roles` (a set of role wire names).
//!   Appliance-scope principals carry the pseudo-tenant [`APPLIANCE_TENANT`].
//! * **Resources** `Appliance, Tenant, User, Token, Event, Source, Run, Artifact, Receipt, Log,
//!   Integration, Plugin, Policy`, each with a `tenant` attribute.
//! * **Actions**: one per API operation ([`Action`], ids like `events.body.read`), with the
//!   resource types they apply to; HTTP routes map to them through [`route_access`], which
//!   treats `HEAD` as `GET`.
//! * **Context** `{authn: "token"|"session", peer?: ipaddr}`, plus `granted_roles` for the
//!   actions that hand out roles.
//!
//! # Default policies (`src/authz/default.cedar`)
//!
//! Default deny. Three `forbid`s that no `permit` (and so no tenant policy) can override:
//! `evidentia.isolation` (principal and resource share the tenant, appliance administrators
//! excepted; the API answers it as 404), `evidentia.appliance-only` (suspending a tenant) and
//! `evidentia.no-escalation` (a principal grants only roles it holds; a tenant-admin grants
//! any tenant role; only an appliance administrator grants `appliance-admin`). Then these
//! permits, inside the principal's own tenant (✓ = allowed; `A` tenant-admin, `C`
//! compliance-officer, `S` security-admin, `O` operator, `N` analyst, `V` viewer, `I` ingest):
//!
//! | actions | A | C | S | O | N | V | I |
//! |---|---|---|---|---|---|---|---|
//! | `tenant.read`, `tenant.usage.read` | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | |
//! | `tenant.settings.read` | ✓ | ✓ | ✓ | ✓ | | ✓ | |
//! | `tenant.settings.write` | ✓ | | | | | | |
//! | `tenant.compliance.read` | ✓ | ✓ | ✓ | | | | |
//! | `tenant.export.request`, `tenant.export.read` | ✓ | ✓ | | | | | |
//! | `tenant.export.approve` | ✓ | ✓ | ✓ | | | | |
//! | `tenant.delete.request` | ✓ | | | | | | |
//! | `tenant.delete.approve` | | ✓ | ✓ | | | | |
//! | `token.create`, `token.revoke` | ✓ | | ✓ | | | | |
//! | `token.list`, `user.list`, `user.read` | ✓ | ✓ | ✓ | | | | |
//! | `user.create`, `user.update`, `user.delete`, `user.password.reset` | ✓ | | | | | | |
//! | `source.create`, `source.delete`, `source.secret.delete` | ✓ | | ✓ | | | | |
//! | `source.rotate` | ✓ | | ✓ | ✓ | | | |
//! | `source.list`, `source.read` | ✓ | ✓ | ✓ | ✓ | | ✓ | |
//! | `events.list`, `events.read`, `insights.list` | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | |
//! | `events.body.read`, `events.bundle.read` | ✓ | ✓ | | | ✓ | ✓ | |
//! | `insights.decide` | ✓ | | | ✓ | ✓ | | |
//! | `audit.read`, `audit.export` | ✓ | ✓ | ✓ | | | | |
//! | `log.checkpoint.read`, `log.entry.read`, `log.proof.*` | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | `signing_key.create` | ✓ | | ✓ | | | | |
//! | `signing_key.list` | ✓ | ✓ | ✓ | | | ✓ | |
//! | `artifact.upload`, `receipt.submit` | ✓ | | | | | | ✓ |
//! | `artifact.list` | ✓ | ✓ | | ✓ | ✓ | ✓ | ✓ |
//! | `artifact.read` | ✓ | ✓ | | | ✓ | ✓ | |
//! | `artifact.legal_hold` | ✓ | ✓ | | | | | |
//! | `receipt.read`, `receipt.bundle` | ✓ | ✓ | | | ✓ | ✓ | ✓ |
//! | `policy.read` | ✓ | ✓ | ✓ | | | | |
//! | `policy.write` | ✓ | | ✓ | | | | |
//! | `integration.create`, `.update`, `.delete` | ✓ | | ✓ | | | | |
//! | `integration.list`, `integration.read` | ✓ | ✓ | ✓ | ✓ | | | |
//! | `integration.test`, `.deliveries.list`, `.redeliver` | ✓ | | ✓ | ✓ | | | |
//! | `plugin.publish` | ✓ | | | ✓ | | | |
//! | `plugin.list`, `plugin.read` | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | |
//! | `plugin.download`, `plugin.yank` | ✓ | | ✓ | ✓ | | | |
//! | `plugin.approve` | | | ✓ | | | | |
//!
//! `appliance-admin` may do everything in every tenant, and is the only role for actions on
//! the [`Resource::appliance`] (`tenant.create`, `tenant.list`, `admin_token.*`, appliance
//! users, the system audit trail) and for `tenant.status.write`. Every user may `auth.me`,
//! `auth.logout` and `auth.password.change` on itself; every token may `auth.me` on itself.
//!
//! # Tenant policies
//!
//! A tenant may add Cedar policies ([`Authorizer::compile_tenant_policies`]: parsed, no
//! templates, at most [`MAX_TENANT_POLICY_CHARS`] and [`MAX_TENANT_POLICIES`], validated
//! strictly against the schema together with the defaults; rejections carry Cedar's
//! diagnostics as data). They are evaluated only for requests whose principal *and* resource
//! belong to that tenant; appliance administrators and other tenants are decided by the
//! defaults alone. Since `forbid` wins in Cedar, they can narrow access (a `forbid`) or widen
//! it inside the tenant (a `permit`), never past the three guardrails.
//!
//! # Digest
//!
//! Every [`Decision`] names the SHA-256 of the policy set that made it
//! ([`policy_set_sha256`]): schema, defaults and the tenant's policies, so an audit record
//! proves which rules were in force.

mod actions;
mod engine;
mod model;
mod tenant_policy;

pub use actions::{
    Action, ActionSpec, ContextShape, Principals, ResourceType, RouteAccess, route_access, routes,
};
pub use engine::{
    Authorizer, Decision, ISOLATION_POLICY, Outcome, StartupError, policy_set_sha256,
};
pub use model::{APPLIANCE_TENANT, Authn, Principal, PrincipalKind, RequestContext, Resource};
pub use tenant_policy::{
    DiagnosticSpan, MAX_TENANT_POLICIES, MAX_TENANT_POLICY_CHARS, PolicyDiagnostic, Severity,
    TenantPolicies, TenantPolicyError, TenantPolicyRecord,
};

/// The Cedar namespace of every entity type and action.
pub const NAMESPACE: &str = "Evidentia";

/// The embedded default policies (Cedar policy language).
pub const DEFAULT_POLICIES: &str = include_str!("default.cedar");

const SCHEMA_ENTITIES: &str = include_str!("entities.cedarschema");

/// The full Cedar schema (Cedar schema syntax): the entity types and context records of
/// `src/authz/entities.cedarschema` and one `action` declaration per [`Action`], inside
/// `namespace Evidentia`. Tenant policy authors write against this text.
pub fn schema_text() -> String {
    let mut s = String::with_capacity(SCHEMA_ENTITIES.len() + 160 * Action::ALL.len());
    s.push_str("namespace ");
    s.push_str(NAMESPACE);
    s.push_str(" {\n");
    s.push_str(SCHEMA_ENTITIES);
    s.push('\n');
    for action in Action::ALL {
        let spec = action.spec();
        let principals = match spec.principals {
            Principals::Any => "User, Token",
            Principals::UserOnly => "User",
        };
        let resources = spec
            .resources
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ");
        let context = match spec.context {
            ContextShape::Request => "RequestContext",
            ContextShape::Grant => "GrantContext",
        };
        s.push_str(&format!(
            "action \"{}\" appliesTo {{ principal: [{principals}], resource: [{resources}], \
             context: {context} }};\n",
            spec.id
        ));
    }
    s.push_str("}\n");
    s
}
