//! The action catalogue: one Cedar action per API operation, the resource types each applies
//! to, and the map from (HTTP method, route template) to action.
//!
//! Action ids are the audit `action` names (`events.body.read`, `token.create`, …), so an audit
//! record, a Cedar policy and a decision all speak of the same thing. The Cedar schema's action
//! declarations are generated from this table ([`crate::authz::schema_text`]), so the two cannot
//! drift. Operations that need no principal (public keys, signed webhook ingestion, login) are
//! not Cedar actions; [`route_access`] reports them as [`RouteAccess::Public`].

use std::fmt;

use serde::{Serialize, Serializer};

/// Entity types of resources (and of the two principal types, which can also be acted on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// The appliance itself (tenant list, tenant creation, appliance tokens, the system log);
    /// its `tenant` is the reserved pseudo-tenant `_appliance`.
    Appliance,
    /// A tenant (its `tenant` attribute is itself).
    Tenant,
    /// A person with a password.
    User,
    /// An API token.
    Token,
    /// An ingested event (and its AI insight).
    Event,
    /// A webhook source.
    Source,
    /// A pipeline run.
    Run,
    /// A stored artifact.
    Artifact,
    /// A provenance receipt.
    Receipt,
    /// A transparency log (`evidence`, `audit`, `system`).
    Log,
    /// A delivery integration.
    Integration,
    /// A plugin (all versions of one name).
    Plugin,
    /// A tenant's extra Cedar policies.
    Policy,
}

impl ResourceType {
    /// Every resource type.
    pub const ALL: [ResourceType; 13] = [
        Self::Appliance,
        Self::Tenant,
        Self::User,
        Self::Token,
        Self::Event,
        Self::Source,
        Self::Run,
        Self::Artifact,
        Self::Receipt,
        Self::Log,
        Self::Integration,
        Self::Plugin,
        Self::Policy,
    ];

    /// The unqualified Cedar entity type name (`Event`); the schema namespace is `Evidentia`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Appliance => "Appliance",
            Self::Tenant => "Tenant",
            Self::User => "User",
            Self::Token => "Token",
            Self::Event => "Event",
            Self::Source => "Source",
            Self::Run => "Run",
            Self::Artifact => "Artifact",
            Self::Receipt => "Receipt",
            Self::Log => "Log",
            Self::Integration => "Integration",
            Self::Plugin => "Plugin",
            Self::Policy => "Policy",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which principal types an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principals {
    /// Users (session) and tokens.
    Any,
    /// Only users: the action is about a password or a session.
    UserOnly,
}

/// The Cedar context record an action takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextShape {
    /// `RequestContext`: `{authn, peer?}`.
    Request,
    /// `GrantContext`: `{authn, peer?, granted_roles}`, for actions that hand out roles (the
    /// default policies forbid granting roles the principal does not hold).
    Grant,
}

/// What the catalogue knows about one action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    /// Cedar action id and audit action name.
    pub id: &'static str,
    /// Resource types the action applies to.
    pub resources: &'static [ResourceType],
    /// Principal types.
    pub principals: Principals,
    /// Context record.
    pub context: ContextShape,
    /// A sensitive read: the answer carries a signed access receipt
    /// ([`crate::audit::access_receipt`]) and its audit leaf is committed before the bytes go
    /// out.
    pub sensitive: bool,
    /// Only appliance administrators may ever perform it, whatever the resource: the default
    /// policies forbid it to everyone else and tenant policies cannot lift that.
    pub appliance_only: bool,
}

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal on [$($res:ident),+] $( ($($flag:ident),*) )? ; )*) => {
        /// One Cedar action per operation (see the module docs). `Display` and serde give
        /// the id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $( $(#[$doc])* $variant, )*
        }

        impl Action {
            /// Every action, in catalogue order.
            pub const ALL: &'static [Action] = &[ $( Action::$variant, )* ];

            /// The action's catalogue entry.
            pub fn spec(self) -> &'static ActionSpec {
                match self {
                    $( Action::$variant => {
                        const S: ActionSpec = flags(ActionSpec {
                            id: $id,
                            resources: &[$(ResourceType::$res),+],
                            principals: Principals::Any,
                            context: ContextShape::Request,
                            sensitive: false,
                            appliance_only: false,
                        }, &[$($(Flag::$flag),*)?]);
                        &S
                    } )*
                }
            }
        }
    };
}

#[derive(Clone, Copy)]
enum Flag {
    Sensitive,
    ApplianceOnly,
    UserOnly,
    Grant,
}

const fn flags(mut spec: ActionSpec, flags: &[Flag]) -> ActionSpec {
    let mut i = 0;
    while i < flags.len() {
        match flags[i] {
            Flag::Sensitive => spec.sensitive = true,
            Flag::ApplianceOnly => spec.appliance_only = true,
            Flag::UserOnly => spec.principals = Principals::UserOnly,
            Flag::Grant => spec.context = ContextShape::Grant,
        }
        i += 1;
    }
    spec
}

catalogue! {
    /// `POST /api/tenants`.
    TenantCreate = "tenant.create" on [Appliance];
    /// `GET /api/tenants`.
    TenantList = "tenant.list" on [Appliance];
    /// `GET /api/tenants/{tenant}`.
    TenantRead = "tenant.read" on [Tenant];
    /// `PATCH /api/tenants/{tenant}` (active / suspended).
    TenantStatusWrite = "tenant.status.write" on [Tenant] (ApplianceOnly);
    /// `GET /api/tenants/{tenant}/settings`.
    TenantSettingsRead = "tenant.settings.read" on [Tenant];
    /// `PUT /api/tenants/{tenant}/settings`.
    TenantSettingsWrite = "tenant.settings.write" on [Tenant];
    /// `GET /api/tenants/{tenant}/usage`.
    TenantUsageRead = "tenant.usage.read" on [Tenant];
    /// `GET /api/tenants/{tenant}/compliance`.
    TenantComplianceRead = "tenant.compliance.read" on [Tenant] (Sensitive);
    /// `POST /api/tenants/{tenant}/exports`.
    TenantExportRequest = "tenant.export.request" on [Tenant];
    /// `POST /api/tenants/{tenant}/exports/{id}/approvals`.
    TenantExportApprove = "tenant.export.approve" on [Tenant];
    /// `GET /api/tenants/{tenant}/exports/{id}` (the approved archive).
    TenantExportRead = "tenant.export.read" on [Tenant] (Sensitive);
    /// `POST /api/tenants/{tenant}/deletion`.
    TenantDeleteRequest = "tenant.delete.request" on [Tenant];
    /// `POST /api/tenants/{tenant}/deletion/{id}/approvals`.
    TenantDeleteApprove = "tenant.delete.approve" on [Tenant];

    /// `POST /api/tenants/{tenant}/tokens`.
    TokenCreate = "token.create" on [Tenant] (Grant);
    /// `GET /api/tenants/{tenant}/tokens`.
    TokenList = "token.list" on [Tenant];
    /// `DELETE /api/tenants/{tenant}/tokens/{id}`.
    TokenRevoke = "token.revoke" on [Token];
    /// `POST /api/admin/tokens`.
    AdminTokenIssue = "admin_token.issue" on [Appliance] (Grant);
    /// `GET /api/admin/tokens`.
    AdminTokenList = "admin_token.list" on [Appliance];
    /// `DELETE /api/admin/tokens/{id}`.
    AdminTokenRevoke = "admin_token.revoke" on [Token];

    /// `POST /api/users` (appliance) or `POST /api/tenants/{tenant}/users`.
    UserCreate = "user.create" on [Tenant, Appliance] (Grant);
    /// `GET /api/users`, `GET /api/tenants/{tenant}/users`.
    UserList = "user.list" on [Tenant, Appliance];
    /// `GET …/users/{id}`.
    UserRead = "user.read" on [User];
    /// `PATCH …/users/{id}` (roles, disabled).
    UserUpdate = "user.update" on [User] (Grant);
    /// `DELETE …/users/{id}`.
    UserDelete = "user.delete" on [User];
    /// `POST …/users/{id}/password` (an administrator sets a new password).
    UserPasswordReset = "user.password.reset" on [User];
    /// `GET /api/auth/me` (only on oneself).
    AuthMe = "auth.me" on [User, Token];
    /// `POST /api/auth/logout` (only on oneself).
    AuthLogout = "auth.logout" on [User] (UserOnly);
    /// `POST /api/auth/password` (only on oneself, with the old password).
    AuthPasswordChange = "auth.password.change" on [User] (UserOnly);

    /// `POST /api/tenants/{tenant}/webhook-sources`.
    SourceCreate = "source.create" on [Tenant];
    /// `GET /api/tenants/{tenant}/webhook-sources`.
    SourceList = "source.list" on [Tenant];
    /// `GET …/webhook-sources/{id}`.
    SourceRead = "source.read" on [Source];
    /// `DELETE …/webhook-sources/{id}`.
    SourceDelete = "source.delete" on [Source];
    /// `POST …/webhook-sources/{id}/rotate`.
    SourceRotate = "source.rotate" on [Source];
    /// `DELETE …/webhook-sources/{id}/secrets/{n}`.
    SourceSecretDelete = "source.secret.delete" on [Source];

    /// `GET /api/tenants/{tenant}/events`.
    EventsList = "events.list" on [Tenant];
    /// `GET …/events/{id}`.
    EventsRead = "events.read" on [Event];
    /// `GET …/events/{id}/body`.
    EventsBodyRead = "events.body.read" on [Event] (Sensitive);
    /// `GET …/events/{id}/bundle` (the event with its body, inclusion proof and checkpoint).
    EventsBundleRead = "events.bundle.read" on [Event] (Sensitive);
    /// `GET /api/tenants/{tenant}/insights`.
    InsightsList = "insights.list" on [Tenant];
    /// `POST …/insights/{id}/decision`.
    InsightsDecide = "insights.decide" on [Event];

    /// `GET /api/tenants/{tenant}/audit` (resource Tenant) and `GET /api/audit` (Appliance).
    AuditRead = "audit.read" on [Tenant, Appliance] (Sensitive);
    /// `GET /api/tenants/{tenant}/audit/export` and the appliance equivalent.
    AuditExport = "audit.export" on [Tenant, Appliance] (Sensitive);

    /// `GET …/logs/{log}/checkpoint`.
    LogCheckpointRead = "log.checkpoint.read" on [Log];
    /// `GET …/logs/{log}/entries/{index}`.
    LogEntryRead = "log.entry.read" on [Log];
    /// `GET …/logs/{log}/proofs/inclusion`.
    LogProofInclusion = "log.proof.inclusion" on [Log];
    /// `GET …/logs/{log}/proofs/consistency`.
    LogProofConsistency = "log.proof.consistency" on [Log];

    /// `POST /api/tenants/{tenant}/signing-keys`.
    SigningKeyCreate = "signing_key.create" on [Tenant];
    /// `GET /api/tenants/{tenant}/signing-keys`.
    SigningKeyList = "signing_key.list" on [Tenant];

    /// `POST /api/conductor/runs/{run_id}/artifacts`.
    ArtifactUpload = "artifact.upload" on [Run];
    /// `GET /api/conductor/runs/{run_id}/artifacts`.
    ArtifactList = "artifact.list" on [Run];
    /// `GET …/artifacts/{artifact_id}`.
    ArtifactRead = "artifact.read" on [Artifact] (Sensitive);
    /// `PUT …/artifacts/{artifact_id}/legal-hold` (set or release).
    ArtifactLegalHold = "artifact.legal_hold" on [Artifact];
    /// `POST /api/conductor/evidence/receipt`.
    ReceiptSubmit = "receipt.submit" on [Run];
    /// `GET /api/conductor/evidence/receipt/{run_id}`.
    ReceiptRead = "receipt.read" on [Run, Receipt] (Sensitive);
    /// `GET …/receipt/{run_id}/bundle`.
    ReceiptBundle = "receipt.bundle" on [Run, Receipt] (Sensitive);

    /// `GET /api/tenants/{tenant}/policies`.
    PolicyRead = "policy.read" on [Policy];
    /// `PUT /api/tenants/{tenant}/policies`.
    PolicyWrite = "policy.write" on [Policy];

    /// `POST /api/tenants/{tenant}/integrations`.
    IntegrationCreate = "integration.create" on [Tenant];
    /// `GET /api/tenants/{tenant}/integrations`.
    IntegrationList = "integration.list" on [Tenant];
    /// `GET …/integrations/{id}`.
    IntegrationRead = "integration.read" on [Integration];
    /// `PATCH …/integrations/{id}`.
    IntegrationUpdate = "integration.update" on [Integration];
    /// `DELETE …/integrations/{id}`.
    IntegrationDelete = "integration.delete" on [Integration];
    /// `POST …/integrations/{id}/test`.
    IntegrationTest = "integration.test" on [Integration];
    /// `GET …/integrations/{id}/deliveries`.
    IntegrationDeliveriesList = "integration.deliveries.list" on [Integration];
    /// `POST …/deliveries/{id}/redeliver`.
    IntegrationRedeliver = "integration.redeliver" on [Integration];

    /// `POST /api/tenants/{tenant}/plugins`.
    PluginPublish = "plugin.publish" on [Tenant];
    /// `GET /api/tenants/{tenant}/plugins`.
    PluginList = "plugin.list" on [Tenant];
    /// `GET …/plugins/{name}` (versions).
    PluginRead = "plugin.read" on [Plugin];
    /// `GET …/plugins/{name}/{version}/download`.
    PluginDownload = "plugin.download" on [Plugin] (Sensitive);
    /// `POST …/plugins/{name}/{version}/yank`.
    PluginYank = "plugin.yank" on [Plugin];
    /// `POST …/plugins/{name}/{version}/approve` (release from quarantine).
    PluginApprove = "plugin.approve" on [Plugin];
}

impl Action {
    /// The Cedar action id (`events.body.read`).
    pub fn id(self) -> &'static str {
        self.spec().id
    }

    /// Looks an action up by id.
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.id() == id)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// How a route is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Decided by [`crate::authz::Authorizer::decide`] for this action.
    Decided(Action),
    /// No principal: authenticated otherwise (webhook signatures, the login password) or
    /// public by design (checkpoint-signing keys). The name is the audit action.
    Public(&'static str),
}

use Action as A;
use RouteAccess::{Decided as D, Public as P};

/// (method, route template, access). Templates are the audit `route` strings (`{param}`).
const ROUTES: &[(&str, &str, RouteAccess)] = &[
    ("GET", "/api/keys", P("keys.list")),
    ("POST", "/ai/webhook", P("webhook.ingest")),
    ("POST", "/webhooks/{source}/events", P("webhook.ingest")),
    ("POST", "/api/auth/login", P("auth.login")),
    ("POST", "/api/auth/logout", D(A::AuthLogout)),
    ("GET", "/api/auth/me", D(A::AuthMe)),
    ("POST", "/api/auth/password", D(A::AuthPasswordChange)),
    ("POST", "/api/tenants", D(A::TenantCreate)),
    ("GET", "/api/tenants", D(A::TenantList)),
    ("GET", "/api/tenants/{tenant}", D(A::TenantRead)),
    ("PATCH", "/api/tenants/{tenant}", D(A::TenantStatusWrite)),
    (
        "GET",
        "/api/tenants/{tenant}/settings",
        D(A::TenantSettingsRead),
    ),
    (
        "PUT",
        "/api/tenants/{tenant}/settings",
        D(A::TenantSettingsWrite),
    ),
    ("GET", "/api/tenants/{tenant}/usage", D(A::TenantUsageRead)),
    (
        "GET",
        "/api/tenants/{tenant}/compliance",
        D(A::TenantComplianceRead),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/exports",
        D(A::TenantExportRequest),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/exports/{id}/approvals",
        D(A::TenantExportApprove),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/exports/{id}",
        D(A::TenantExportRead),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/deletion",
        D(A::TenantDeleteRequest),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/deletion/{id}/approvals",
        D(A::TenantDeleteApprove),
    ),
    ("GET", "/api/tenants/{tenant}/policies", D(A::PolicyRead)),
    ("PUT", "/api/tenants/{tenant}/policies", D(A::PolicyWrite)),
    ("POST", "/api/tenants/{tenant}/tokens", D(A::TokenCreate)),
    ("GET", "/api/tenants/{tenant}/tokens", D(A::TokenList)),
    (
        "DELETE",
        "/api/tenants/{tenant}/tokens/{id}",
        D(A::TokenRevoke),
    ),
    ("POST", "/api/admin/tokens", D(A::AdminTokenIssue)),
    ("GET", "/api/admin/tokens", D(A::AdminTokenList)),
    ("DELETE", "/api/admin/tokens/{id}", D(A::AdminTokenRevoke)),
    ("POST", "/api/users", D(A::UserCreate)),
    ("GET", "/api/users", D(A::UserList)),
    ("POST", "/api/tenants/{tenant}/users", D(A::UserCreate)),
    ("GET", "/api/tenants/{tenant}/users", D(A::UserList)),
    ("GET", "/api/tenants/{tenant}/users/{id}", D(A::UserRead)),
    (
        "PATCH",
        "/api/tenants/{tenant}/users/{id}",
        D(A::UserUpdate),
    ),
    (
        "DELETE",
        "/api/tenants/{tenant}/users/{id}",
        D(A::UserDelete),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/users/{id}/password",
        D(A::UserPasswordReset),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/webhook-sources",
        D(A::SourceCreate),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/webhook-sources",
        D(A::SourceList),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/webhook-sources/{id}",
        D(A::SourceRead),
    ),
    (
        "DELETE",
        "/api/tenants/{tenant}/webhook-sources/{id}",
        D(A::SourceDelete),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/webhook-sources/{id}/rotate",
        D(A::SourceRotate),
    ),
    (
        "DELETE",
        "/api/tenants/{tenant}/webhook-sources/{id}/secrets/{n}",
        D(A::SourceSecretDelete),
    ),
    ("GET", "/api/tenants/{tenant}/events", D(A::EventsList)),
    ("GET", "/api/tenants/{tenant}/events/{id}", D(A::EventsRead)),
    (
        "GET",
        "/api/tenants/{tenant}/events/{id}/body",
        D(A::EventsBodyRead),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/events/{id}/bundle",
        D(A::EventsBundleRead),
    ),
    ("GET", "/api/tenants/{tenant}/insights", D(A::InsightsList)),
    (
        "POST",
        "/api/tenants/{tenant}/insights/{id}/decision",
        D(A::InsightsDecide),
    ),
    ("GET", "/api/tenants/{tenant}/audit", D(A::AuditRead)),
    (
        "GET",
        "/api/tenants/{tenant}/audit/export",
        D(A::AuditExport),
    ),
    ("GET", "/api/audit", D(A::AuditRead)),
    ("GET", "/api/audit/export", D(A::AuditExport)),
    (
        "GET",
        "/api/tenants/{tenant}/logs/{log}/checkpoint",
        D(A::LogCheckpointRead),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/logs/{log}/entries/{index}",
        D(A::LogEntryRead),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/logs/{log}/proofs/inclusion",
        D(A::LogProofInclusion),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/logs/{log}/proofs/consistency",
        D(A::LogProofConsistency),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/signing-keys",
        D(A::SigningKeyCreate),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/signing-keys",
        D(A::SigningKeyList),
    ),
    (
        "POST",
        "/api/conductor/runs/{run_id}/artifacts",
        D(A::ArtifactUpload),
    ),
    (
        "GET",
        "/api/conductor/runs/{run_id}/artifacts",
        D(A::ArtifactList),
    ),
    (
        "GET",
        "/api/conductor/runs/{run_id}/artifacts/{artifact_id}",
        D(A::ArtifactRead),
    ),
    (
        "PUT",
        "/api/conductor/runs/{run_id}/artifacts/{artifact_id}/legal-hold",
        D(A::ArtifactLegalHold),
    ),
    (
        "POST",
        "/api/conductor/evidence/receipt",
        D(A::ReceiptSubmit),
    ),
    (
        "GET",
        "/api/conductor/evidence/receipt/{run_id}",
        D(A::ReceiptRead),
    ),
    (
        "GET",
        "/api/conductor/evidence/receipt/{run_id}/bundle",
        D(A::ReceiptBundle),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/integrations",
        D(A::IntegrationCreate),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/integrations",
        D(A::IntegrationList),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/integrations/{id}",
        D(A::IntegrationRead),
    ),
    (
        "PATCH",
        "/api/tenants/{tenant}/integrations/{id}",
        D(A::IntegrationUpdate),
    ),
    (
        "DELETE",
        "/api/tenants/{tenant}/integrations/{id}",
        D(A::IntegrationDelete),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/integrations/{id}/test",
        D(A::IntegrationTest),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/integrations/{id}/deliveries",
        D(A::IntegrationDeliveriesList),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/integrations/{id}/deliveries/{delivery}/redeliver",
        D(A::IntegrationRedeliver),
    ),
    ("POST", "/api/tenants/{tenant}/plugins", D(A::PluginPublish)),
    ("GET", "/api/tenants/{tenant}/plugins", D(A::PluginList)),
    (
        "GET",
        "/api/tenants/{tenant}/plugins/{name}",
        D(A::PluginRead),
    ),
    (
        "GET",
        "/api/tenants/{tenant}/plugins/{name}/{version}/download",
        D(A::PluginDownload),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/plugins/{name}/{version}/yank",
        D(A::PluginYank),
    ),
    (
        "POST",
        "/api/tenants/{tenant}/plugins/{name}/{version}/approve",
        D(A::PluginApprove),
    ),
];

/// The access rule for a matched route: `method` is the request method (any case; `HEAD` is
/// treated as `GET`, so a HEAD request is decided exactly like the GET it mirrors), `template`
/// the matched route template with `{param}` placeholders, as recorded in audit events.
/// `None` for routes the table does not know (the caller answers 404/405 and audits).
pub fn route_access(method: &str, template: &str) -> Option<RouteAccess> {
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    };
    ROUTES
        .iter()
        .find(|(m, t, _)| m.eq_ignore_ascii_case(method) && *t == template)
        .map(|(_, _, access)| *access)
}

/// Every (method, template, access) row, for generated tests and documentation.
pub fn routes() -> &'static [(&'static str, &'static str, RouteAccess)] {
    ROUTES
}
