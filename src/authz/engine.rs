//! The enforcement point: [`Authorizer`] holds the validated schema, the default policy set
//! and each tenant's compiled set, and answers [`Authorizer::decide`].

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy as cedar;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::actions::{Action, ContextShape, ResourceType};
use super::model::{Principal, RequestContext, Resource};
use super::tenant_policy::{
    PolicyDiagnostic, Severity, TenantPolicies, TenantPolicyError, compile, diagnostics_of,
};
use super::{DEFAULT_POLICIES, NAMESPACE, schema_text};

/// Policy id of the tenant-isolation forbid; a denial naming it is answered as "not found".
pub const ISOLATION_POLICY: &str = "evidentia.isolation";
/// Prefix of every default policy id.
pub(crate) const DEFAULT_ID_PREFIX: &str = "evidentia.";

/// Why the embedded schema or default policies were refused at start (the server must not
/// start).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartupError {
    /// The schema does not parse, or parses with warnings.
    #[error("the Cedar schema is invalid: {}", summary(.0))]
    Schema(Vec<PolicyDiagnostic>),
    /// The default policies do not parse, lack `@id` annotations, or fail strict validation.
    #[error("the default Cedar policies are invalid: {}", summary(.0))]
    Policies(Vec<PolicyDiagnostic>),
    /// A stored tenant policy set no longer compiles against this schema.
    #[error("the stored policies of tenant {tenant} are invalid: {}", summary(.diagnostics))]
    TenantPolicies {
        /// Tenant id.
        tenant: String,
        /// What Cedar said.
        diagnostics: Vec<PolicyDiagnostic>,
    },
}

fn summary(d: &[PolicyDiagnostic]) -> String {
    d.iter()
        .map(|d| d.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a handler answers a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Go on.
    Allow,
    /// Denied by tenant isolation: answer exactly like a missing resource (404), so ids of
    /// other tenants cannot be probed.
    NotFound,
    /// Denied otherwise (no permit, or a forbid): 403.
    Forbidden,
}

/// The answer of [`Authorizer::decide`], shaped for the audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The action decided.
    pub action: Action,
    /// Whether the request may proceed.
    pub allowed: bool,
    /// How to answer.
    pub outcome: Outcome,
    /// Ids of the policies that determined the decision: the satisfied permits when allowed,
    /// the satisfied forbids when denied by one (empty when denied for want of a permit).
    pub policies: Vec<String>,
    /// Evaluation and request errors (each denies when it concerns a default policy or the
    /// request itself).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Lowercase hex SHA-256 of the policy set that decided ([`policy_set_sha256`]).
    pub policy_set_sha256: String,
}

impl Decision {
    /// `allow` or `deny` (the access receipt's `dec`).
    pub fn verdict(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }
}

/// A compiled policy set and its digest, with the set sliced by action.
///
/// Cedar evaluates every policy of a set for every request; the slice of an action holds only
/// the policies whose action scope can match it (`action` unconstrained, `==` it, or `in` a
/// list naming it — the schema has no action groups), which gives the same decision, the same
/// deciding policies and the same errors, since a policy whose scope does not match is false
/// without its conditions being evaluated.
#[derive(Debug)]
pub(crate) struct CompiledSet {
    pub(crate) sha256: String,
    /// Action uid (as text) → its slice.
    by_action: HashMap<String, cedar::PolicySet>,
    /// The slice of an action no policy names (the unconstrained policies).
    unscoped: cedar::PolicySet,
}

impl CompiledSet {
    /// Slices `set` by action (see the type doc).
    pub(crate) fn new(set: cedar::PolicySet, sha256: String) -> Self {
        let mut unscoped = cedar::PolicySet::new();
        let mut named: HashMap<String, Vec<cedar::Policy>> = HashMap::new();
        for p in set.policies() {
            match p.action_constraint() {
                cedar::ActionConstraint::Any => {
                    // Ids are unique in `set`, so adding cannot fail.
                    let _ = unscoped.add(p.clone());
                }
                cedar::ActionConstraint::Eq(a) => {
                    named.entry(a.to_string()).or_default().push(p.clone());
                }
                cedar::ActionConstraint::In(list) => {
                    for a in list {
                        named.entry(a.to_string()).or_default().push(p.clone());
                    }
                }
            }
        }
        let by_action = named
            .into_iter()
            .map(|(action, policies)| {
                let mut slice = unscoped.clone();
                for p in policies {
                    let _ = slice.add(p);
                }
                (action, slice)
            })
            .collect();
        Self {
            sha256,
            by_action,
            unscoped,
        }
    }

    /// The policies that can decide `action`.
    fn slice(&self, action: &cedar::EntityUid) -> &cedar::PolicySet {
        self.by_action
            .get(&action.to_string())
            .unwrap_or(&self.unscoped)
    }
}

/// SHA-256 (lowercase hex) identifying a policy set: over
/// `"evidentia-policy-set/1\n"` followed by four length-prefixed fields (8-byte big-endian
/// byte length, then the UTF-8 bytes): the schema text, the default policies, the tenant id
/// (empty for the defaults alone) and the tenant's policy text (empty when it has none).
pub fn policy_set_sha256(schema: &str, defaults: &str, tenant: &str, tenant_text: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"evidentia-policy-set/1\n");
    for field in [schema, defaults, tenant, tenant_text] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The Cedar authorizer with Evidentia's schema and policies. Cheap to share (`Arc`); tenant
/// policy sets are swapped atomically.
pub struct Authorizer {
    schema: cedar::Schema,
    schema_text: String,
    defaults: Arc<CompiledSet>,
    default_policies: cedar::PolicySet,
    tenants: RwLock<HashMap<String, Arc<CompiledSet>>>,
    engine: cedar::Authorizer,
    resource_types: Vec<cedar::EntityTypeName>,
    tenant_type: cedar::EntityTypeName,
    actions: Vec<cedar::EntityUid>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("defaults_sha256", &self.defaults.sha256)
            .finish_non_exhaustive()
    }
}

fn type_name(name: &str) -> Result<cedar::EntityTypeName, StartupError> {
    cedar::EntityTypeName::from_str(&format!("{NAMESPACE}::{name}"))
        .map_err(|e| StartupError::Schema(diagnostics_of(&e, Severity::Error, None, None)))
}

impl Authorizer {
    /// Builds the authorizer: parses the schema ([`schema_text`]) and the default policies
    /// ([`DEFAULT_POLICIES`]) and validates them in Cedar's strict mode. Any error *or
    /// warning* refuses (the server must not start).
    ///
    /// # Errors
    /// [`StartupError::Schema`], [`StartupError::Policies`].
    pub fn new() -> Result<Self, StartupError> {
        let text = schema_text();
        let (schema, warnings) = cedar::Schema::from_cedarschema_str(&text)
            .map_err(|e| StartupError::Schema(diagnostics_of(&e, Severity::Error, None, None)))?;
        let warnings: Vec<PolicyDiagnostic> = warnings
            .flat_map(|w| diagnostics_of(&w, Severity::Warning, None, None))
            .collect();
        if !warnings.is_empty() {
            return Err(StartupError::Schema(warnings));
        }
        let default_policies = parse_defaults()?;
        let validator = cedar::Validator::new(schema.clone());
        let result = validator.validate(&default_policies, cedar::ValidationMode::Strict);
        let mut problems: Vec<PolicyDiagnostic> = Vec::new();
        for e in result.validation_errors() {
            let id = e.policy_id().to_string();
            problems.extend(diagnostics_of(e, Severity::Error, Some(id), None));
        }
        for w in result.validation_warnings() {
            let id = w.policy_id().to_string();
            problems.extend(diagnostics_of(w, Severity::Warning, Some(id), None));
        }
        if !problems.is_empty() {
            return Err(StartupError::Policies(problems));
        }
        let resource_types = ResourceType::ALL
            .iter()
            .map(|t| type_name(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let action_type = type_name("Action")?;
        let actions = Action::ALL
            .iter()
            .map(|a| {
                cedar::EntityUid::from_type_name_and_id(
                    action_type.clone(),
                    cedar::EntityId::new(a.id()),
                )
            })
            .collect();
        let sha256 = policy_set_sha256(&text, DEFAULT_POLICIES, "", "");
        Ok(Self {
            defaults: Arc::new(CompiledSet::new(default_policies.clone(), sha256)),
            default_policies,
            tenant_type: type_name("Tenant")?,
            schema,
            schema_text: text,
            tenants: RwLock::new(HashMap::new()),
            engine: cedar::Authorizer::new(),
            resource_types,
            actions,
        })
    }

    /// The schema text the authorizer validates against.
    pub fn schema_text(&self) -> &str {
        &self.schema_text
    }

    /// Digest of the policy set that decides requests inside `tenant` (`None`: the defaults,
    /// which decide appliance-scope and cross-tenant requests).
    pub fn policy_set_sha256(&self, tenant: Option<&str>) -> String {
        match tenant {
            Some(t) => self.set_for_tenant(t).sha256.clone(),
            None => self.defaults.sha256.clone(),
        }
    }

    /// Parses and strictly validates `text` as `tenant`'s extra policies (together with the
    /// defaults), ready for [`Authorizer::install_tenant_policies`]. Empty text is valid and
    /// means "no extra policies".
    ///
    /// # Errors
    /// [`TenantPolicyError`]; its [`TenantPolicyError::diagnostics`] are Cedar's, as data for
    /// a 422 answer.
    pub fn compile_tenant_policies(
        &self,
        tenant: &str,
        text: &str,
    ) -> Result<TenantPolicies, TenantPolicyError> {
        compile(
            &self.schema,
            &self.schema_text,
            &self.default_policies,
            tenant,
            text,
        )
    }

    /// Makes `policies` decide their tenant's requests from now on (replacing earlier ones;
    /// empty policies remove the tenant's set).
    pub fn install_tenant_policies(&self, policies: TenantPolicies) {
        let (tenant, compiled) = policies.into_compiled();
        let mut map = match self.tenants.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        match compiled {
            Some(c) => map.insert(tenant, Arc::new(c)),
            None => map.remove(&tenant),
        };
    }

    /// Compiles and installs stored policy texts at start.
    ///
    /// # Errors
    /// [`StartupError::TenantPolicies`] for the first text that no longer compiles.
    pub fn load_tenant_policies<'a>(
        &self,
        stored: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), StartupError> {
        for (tenant, text) in stored {
            let compiled = self.compile_tenant_policies(tenant, text).map_err(|e| {
                StartupError::TenantPolicies {
                    tenant: tenant.to_string(),
                    diagnostics: e.diagnostics().to_vec(),
                }
            })?;
            self.install_tenant_policies(compiled);
        }
        Ok(())
    }

    fn set_for_tenant(&self, tenant: &str) -> Arc<CompiledSet> {
        let map = match self.tenants.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(tenant)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    fn tenant_uid(&self, tenant: &str) -> cedar::EntityUid {
        cedar::EntityUid::from_type_name_and_id(
            self.tenant_type.clone(),
            cedar::EntityId::new(tenant),
        )
    }

    fn uid(&self, kind: ResourceType, id: &str) -> cedar::EntityUid {
        cedar::EntityUid::from_type_name_and_id(
            self.resource_types[kind.index()].clone(),
            cedar::EntityId::new(id),
        )
    }

    fn roles_expr(roles: &[crate::identity::Role]) -> cedar::RestrictedExpression {
        cedar::RestrictedExpression::new_set(
            roles
                .iter()
                .map(|r| cedar::RestrictedExpression::new_string(r.as_str().to_string())),
        )
    }

    /// The one enforcement point: may `principal` perform `action` on `resource` in
    /// `context`?
    ///
    /// Requests inside one tenant (principal and resource of the same tenant) are decided by
    /// that tenant's set (defaults + its policies), all others by the defaults. The request is
    /// checked against the schema (an action on a resource type it does not apply to, or a
    /// missing `granted_roles`, is denied with an error). Fails closed: any evaluation error
    /// of a default policy denies. Never panics; takes microseconds (see
    /// `examples/bench_authz.rs`).
    pub fn decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        context: &RequestContext,
    ) -> Decision {
        let set = if principal.tenant.as_deref() == Some(resource.tenant.as_str()) {
            self.set_for_tenant(&resource.tenant)
        } else {
            self.defaults.clone()
        };
        let deny = |errors: Vec<String>| Decision {
            action,
            allowed: false,
            outcome: Outcome::Forbidden,
            policies: Vec::new(),
            errors,
            policy_set_sha256: set.sha256.clone(),
        };
        let principal_uid = self.uid(principal.kind.resource_type(), &principal.id);
        let resource_uid = self.uid(resource.kind, &resource.id);
        let mut entities = Vec::with_capacity(2);
        match cedar::Entity::new(
            principal_uid.clone(),
            HashMap::from([
                (
                    "tenant".to_string(),
                    cedar::RestrictedExpression::new_entity_uid(
                        self.tenant_uid(principal.tenant_attr()),
                    ),
                ),
                ("roles".to_string(), Self::roles_expr(&principal.roles)),
            ]),
            HashSet::new(),
        ) {
            Ok(e) => entities.push(e),
            Err(e) => return deny(vec![format!("principal entity: {e}")]),
        }
        if resource_uid != principal_uid {
            match cedar::Entity::new(
                resource_uid.clone(),
                self.resource_attrs(resource),
                HashSet::new(),
            ) {
                Ok(e) => entities.push(e),
                Err(e) => return deny(vec![format!("resource entity: {e}")]),
            }
        }
        let entities = match cedar::Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(e) => return deny(vec![format!("entities: {e}")]),
        };
        let mut pairs = vec![(
            "authn".to_string(),
            cedar::RestrictedExpression::new_string(context.authn.as_str().to_string()),
        )];
        if let Some(peer) = context.peer {
            pairs.push((
                "peer".to_string(),
                cedar::RestrictedExpression::new_ip(peer.to_string()),
            ));
        }
        if action.spec().context == ContextShape::Grant {
            pairs.push((
                "granted_roles".to_string(),
                Self::roles_expr(&context.granted_roles),
            ));
        }
        let ctx = match cedar::Context::from_pairs(pairs) {
            Ok(c) => c,
            Err(e) => return deny(vec![format!("context: {e}")]),
        };
        let request = match cedar::Request::new(
            principal_uid,
            self.actions[action.index()].clone(),
            resource_uid,
            ctx,
            Some(&self.schema),
        ) {
            Ok(r) => r,
            Err(e) => return deny(vec![format!("request: {e}")]),
        };
        let response = self.engine.is_authorized(
            &request,
            set.slice(&self.actions[action.index()]),
            &entities,
        );
        let policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        let mut default_error = false;
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| {
                let cedar::AuthorizationError::PolicyEvaluationError(pe) = e;
                if pe.policy_id().to_string().starts_with(DEFAULT_ID_PREFIX) {
                    default_error = true;
                }
                e.to_string()
            })
            .collect();
        let allowed = response.decision() == cedar::Decision::Allow && !default_error;
        let outcome = if allowed {
            Outcome::Allow
        } else if policies.iter().any(|p| p == ISOLATION_POLICY) {
            Outcome::NotFound
        } else {
            Outcome::Forbidden
        };
        Decision {
            action,
            allowed,
            outcome,
            policies,
            errors,
            policy_set_sha256: set.sha256.clone(),
        }
    }

    fn resource_attrs(&self, r: &Resource) -> HashMap<String, cedar::RestrictedExpression> {
        let mut attrs = HashMap::with_capacity(2);
        attrs.insert(
            "tenant".to_string(),
            cedar::RestrictedExpression::new_entity_uid(self.tenant_uid(&r.tenant)),
        );
        let detail = |d: &Option<String>| {
            d.as_ref()
                .map(|s| cedar::RestrictedExpression::new_string(s.clone()))
        };
        match r.kind {
            ResourceType::User | ResourceType::Token => {
                attrs.insert("roles".to_string(), Self::roles_expr(&r.roles));
            }
            ResourceType::Log => {
                let name = r.detail.clone().unwrap_or_else(|| r.id.clone());
                attrs.insert(
                    "log".to_string(),
                    cedar::RestrictedExpression::new_string(name),
                );
            }
            ResourceType::Artifact => {
                if let Some(t) = detail(&r.detail) {
                    attrs.insert("artifact_type".to_string(), t);
                }
            }
            ResourceType::Event => {
                if let Some(s) = detail(&r.detail) {
                    attrs.insert("source".to_string(), s);
                }
            }
            _ => {}
        }
        attrs
    }

    /// Builds the Cedar entities of a request and checks them against the schema (used by
    /// tests to prove every resource shape conforms).
    ///
    /// # Errors
    /// Cedar's message when an entity does not conform.
    #[doc(hidden)]
    pub fn check_entities(&self, principal: &Principal, resource: &Resource) -> Result<(), String> {
        let p = cedar::Entity::new(
            self.uid(principal.kind.resource_type(), &principal.id),
            HashMap::from([
                (
                    "tenant".to_string(),
                    cedar::RestrictedExpression::new_entity_uid(
                        self.tenant_uid(principal.tenant_attr()),
                    ),
                ),
                ("roles".to_string(), Self::roles_expr(&principal.roles)),
            ]),
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?;
        let r = cedar::Entity::new(
            self.uid(resource.kind, &resource.id),
            self.resource_attrs(resource),
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?;
        cedar::Entities::from_entities([p, r], Some(&self.schema))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Parses the default policies and gives each the id of its `@id` annotation.
fn parse_defaults() -> Result<cedar::PolicySet, StartupError> {
    let parsed = cedar::PolicySet::from_str(DEFAULT_POLICIES).map_err(|e| {
        StartupError::Policies(diagnostics_of(
            &e,
            Severity::Error,
            None,
            Some(DEFAULT_POLICIES),
        ))
    })?;
    let mut set = cedar::PolicySet::new();
    for policy in parsed.policies() {
        let Some(id) = policy.annotation("id") else {
            return Err(StartupError::Policies(vec![PolicyDiagnostic::plain(
                Severity::Error,
                format!("default policy {} has no @id annotation", policy.id()),
            )]));
        };
        if !id.starts_with(DEFAULT_ID_PREFIX) {
            return Err(StartupError::Policies(vec![PolicyDiagnostic::plain(
                Severity::Error,
                format!("default policy id {id:?} does not start with {DEFAULT_ID_PREFIX:?}"),
            )]));
        }
        set.add(policy.new_id(cedar::PolicyId::new(id)))
            .map_err(|e| StartupError::Policies(diagnostics_of(&e, Severity::Error, None, None)))?;
    }
    Ok(set)
}
