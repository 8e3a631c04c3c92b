//! Authorization domain: the Cedar decision matrix, tenant isolation against hostile tenant
//! policies, policy diagnostics, passwords, sessions, lockout and signed access receipts.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use evidentia::audit::access_receipt::{
    self, AccessReceiptSigner, AccessStatement, AuditClaim, ReceiptError, ResourceClaim,
};
use evidentia::authz::{
    APPLIANCE_TENANT, Action, Authn, Authorizer, DEFAULT_POLICIES, Outcome, Principal,
    PrincipalKind, Principals, RequestContext, Resource, ResourceType, RouteAccess, Severity,
    StartupError, TenantPolicyError, policy_set_sha256, route_access, routes,
};
use evidentia::clock::{Clock, ManualClock};
use evidentia::identity::Role;
use evidentia::identity::lockout::{LockKey, Lockout, LockoutPolicy};
use evidentia::identity::password::{PasswordError, PasswordHasher};
use evidentia::identity::session::{self, SessionPolicy, SessionRefusal};
use evidentia::tlog::merkle::{MemoryNodes, inclusion_proof, leaf_hash, root};
use evidentia::tlog::note::{Checkpoint, NoteSigner};

fn authorizer() -> Authorizer {
    Authorizer::new().expect("embedded schema and policies validate")
}

fn ctx() -> RequestContext {
    RequestContext::new(Authn::Session, Some("10.1.2.3".parse().unwrap()))
}

/// The permission table of `src/authz/mod.rs`, written out independently: action → tenant
/// roles allowed (A tenant-admin, C compliance-officer, S security-admin, O operator,
/// N analyst, V viewer, I ingest). Actions not listed are appliance-only or self-service.
const EXPECTED: &[(&str, &str)] = &[
    ("tenant.read", "ACSONV"),
    ("tenant.usage.read", "ACSONV"),
    ("tenant.settings.read", "ACSOV"),
    ("tenant.settings.write", "A"),
    ("tenant.compliance.read", "ACS"),
    ("tenant.export.request", "AC"),
    ("tenant.export.read", "AC"),
    ("tenant.export.approve", "ACS"),
    ("tenant.delete.request", "A"),
    ("tenant.delete.approve", "CS"),
    ("tenant.status.write", ""),
    ("admin_token.revoke", ""),
    ("token.create", "AS"),
    ("token.revoke", "AS"),
    ("token.list", "ACS"),
    ("user.list", "ACS"),
    ("user.read", "ACS"),
    ("user.create", "A"),
    ("user.update", "A"),
    ("user.delete", "A"),
    ("user.password.reset", "A"),
    ("source.create", "AS"),
    ("source.delete", "AS"),
    ("source.secret.delete", "AS"),
    ("source.rotate", "ASO"),
    ("source.list", "ACSOV"),
    ("source.read", "ACSOV"),
    ("events.list", "ACSONV"),
    ("events.read", "ACSONV"),
    ("insights.list", "ACSONV"),
    ("events.body.read", "ACNV"),
    ("events.bundle.read", "ACNV"),
    ("insights.decide", "AON"),
    ("audit.read", "ACS"),
    ("audit.export", "ACS"),
    ("log.checkpoint.read", "ACSONVI"),
    ("log.entry.read", "ACSONVI"),
    ("log.proof.inclusion", "ACSONVI"),
    ("log.proof.consistency", "ACSONVI"),
    ("signing_key.create", "AS"),
    ("signing_key.list", "ACSV"),
    ("artifact.upload", "AI"),
    ("receipt.submit", "AI"),
    ("artifact.list", "ACONVI"),
    ("artifact.read", "ACNV"),
    ("artifact.legal_hold", "AC"),
    ("receipt.read", "ACNVI"),
    ("receipt.bundle", "ACNVI"),
    ("policy.read", "ACS"),
    ("policy.write", "AS"),
    ("integration.create", "AS"),
    ("integration.update", "AS"),
    ("integration.delete", "AS"),
    ("integration.list", "ACSO"),
    ("integration.read", "ACSO"),
    ("integration.test", "ASO"),
    ("integration.deliveries.list", "ASO"),
    ("integration.redeliver", "ASO"),
    ("plugin.publish", "AO"),
    ("plugin.list", "ACSONV"),
    ("plugin.read", "ACSONV"),
    ("plugin.download", "ASO"),
    ("plugin.yank", "ASO"),
    ("plugin.approve", "S"),
];

const TENANT_ROLES: [(char, Role); 7] = [
    ('A', Role::TenantAdmin),
    ('C', Role::ComplianceOfficer),
    ('S', Role::SecurityAdmin),
    ('O', Role::Operator),
    ('N', Role::Analyst),
    ('V', Role::Viewer),
    ('I', Role::Ingest),
];

const SELF_SERVICE: [Action; 3] = [
    Action::AuthMe,
    Action::AuthLogout,
    Action::AuthPasswordChange,
];

/// A representative resource of the action's first resource type, owned by `tenant`.
fn resource_for(action: Action, tenant: &str) -> Resource {
    match action.spec().resources[0] {
        ResourceType::Appliance => Resource::appliance(),
        ResourceType::Tenant => Resource::tenant(tenant),
        ResourceType::Policy => Resource::policy(tenant),
        ResourceType::Log => Resource::log(tenant, "evidence"),
        ResourceType::Artifact => Resource::artifact("art_1", tenant, "sbom"),
        ResourceType::Event => Resource::event("evt_1", tenant, Some("src_1")),
        ResourceType::User => Resource::user("usr_target", Some(tenant), vec![Role::Viewer]),
        ResourceType::Token => Resource::token("tok_target", Some(tenant), vec![Role::Ingest]),
        other => Resource::new(other, "id_1", tenant),
    }
}

fn context_for(action: Action, granted: &[Role]) -> RequestContext {
    let c = ctx();
    if action.spec().context == evidentia::authz::ContextShape::Grant {
        c.granting(granted)
    } else {
        c
    }
}

#[test]
fn embedded_schema_and_policies_validate_strictly() {
    let az = authorizer();
    let schema = az.schema_text();
    for a in Action::ALL {
        assert!(schema.contains(&format!("action \"{}\"", a.id())), "{a}");
    }
    let sha = az.policy_set_sha256(None);
    assert_eq!(sha.len(), 64);
    assert_eq!(sha, policy_set_sha256(schema, DEFAULT_POLICIES, "", ""));
    // The digest moves with any byte of the inputs.
    assert_ne!(
        sha,
        policy_set_sha256(schema, &format!("{DEFAULT_POLICIES} "), "", "")
    );
    // Every action id is distinct and parses back.
    let mut ids: Vec<&str> = Action::ALL.iter().map(|a| a.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), Action::ALL.len());
    for a in Action::ALL {
        assert_eq!(Action::parse(a.id()), Some(*a));
    }
    // The matrix below covers every action that is not self-service.
    for a in Action::ALL {
        if !SELF_SERVICE.contains(a) && !a.spec().resources.contains(&ResourceType::Appliance) {
            assert!(
                EXPECTED.iter().any(|(id, _)| *id == a.id()),
                "{a} missing from the expected table"
            );
        }
    }
}

#[test]
fn every_resource_shape_conforms_to_the_schema() {
    let az = authorizer();
    let p = Principal::user("usr_1", Some("acme"), vec![Role::Viewer]);
    for kind in ResourceType::ALL {
        let r = match kind {
            ResourceType::Appliance => Resource::appliance(),
            ResourceType::Tenant => Resource::tenant("acme"),
            ResourceType::Policy => Resource::policy("acme"),
            ResourceType::Log => Resource::log("acme", "audit"),
            ResourceType::Artifact => Resource::artifact("art_1", "acme", "sbom"),
            ResourceType::Event => Resource::event("evt_1", "acme", Some("src_1")),
            ResourceType::User => Resource::user("usr_2", None, vec![Role::ApplianceAdmin]),
            ResourceType::Token => Resource::token("tok_2", Some("acme"), vec![]),
            other => Resource::new(other, "x", "acme"),
        };
        az.check_entities(&p, &r)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    let admin = Principal::token("tok_admin", None, vec![Role::ApplianceAdmin]);
    az.check_entities(&admin, &Resource::event("evt_2", "acme", None))
        .unwrap();
}

/// Each role × every action × same/other tenant decides as the table says.
#[test]
fn decision_matrix() {
    let az = authorizer();
    let table: BTreeMap<&str, &str> = EXPECTED.iter().copied().collect();
    let mut checked = 0;
    for (letter, role) in TENANT_ROLES {
        let me = Principal::user("usr_me", Some("acme"), vec![role]);
        for &action in Action::ALL {
            if SELF_SERVICE.contains(&action) {
                continue;
            }
            let grant = context_for(action, &[role]);
            let appliance = action.spec().resources[0] == ResourceType::Appliance;
            // Same tenant.
            let d = az.decide(&me, action, &resource_for(action, "acme"), &grant);
            let want = !appliance && table.get(action.id()).is_some_and(|r| r.contains(letter));
            assert_eq!(d.allowed, want, "{role:?} {action} same tenant: {d:?}");
            assert!(d.errors.is_empty(), "{action}: {:?}", d.errors);
            if want {
                assert_eq!(d.outcome, Outcome::Allow);
                assert!(!d.policies.is_empty());
            } else if appliance {
                assert_eq!(d.outcome, Outcome::NotFound, "{role:?} {action}");
            } else {
                assert_eq!(d.outcome, Outcome::Forbidden, "{role:?} {action}");
            }
            // Other tenant: never, and indistinguishable from a missing resource.
            let d = az.decide(&me, action, &resource_for(action, "globex"), &grant);
            assert!(!d.allowed, "{role:?} {action} other tenant");
            assert_eq!(
                d.outcome,
                Outcome::NotFound,
                "{role:?} {action} other tenant"
            );
            assert!(d.policies.iter().any(|p| p == "evidentia.isolation"));
            checked += 2;
        }
    }
    // Appliance administrators: everything, in every tenant and on the appliance (a user: some
    // self-service actions, such as logout, take user principals only).
    let admin = Principal::user("usr_admin", None, vec![Role::ApplianceAdmin]);
    for &action in Action::ALL {
        for tenant in ["acme", "globex"] {
            let d = az.decide(
                &admin,
                action,
                &resource_for(action, tenant),
                &context_for(action, &[Role::ApplianceAdmin]),
            );
            assert!(d.allowed, "appliance-admin {action} in {tenant}: {d:?}");
            assert_eq!(
                d.policies,
                vec!["evidentia.role.appliance-admin".to_string()]
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn self_service_is_only_on_oneself() {
    let az = authorizer();
    let me = Principal::user("usr_me", Some("acme"), vec![Role::Viewer]);
    let colleague = Resource::user("usr_other", Some("acme"), vec![Role::Viewer]);
    for action in SELF_SERVICE {
        assert!(
            az.decide(&me, action, &me.as_resource(), &ctx()).allowed,
            "{action}"
        );
        let d = az.decide(&me, action, &colleague, &ctx());
        assert_eq!(d.outcome, Outcome::Forbidden, "{action}");
    }
    let token = Principal::token("tok_me", Some("acme"), vec![Role::Ingest]);
    assert!(
        az.decide(&token, Action::AuthMe, &token.as_resource(), &ctx())
            .allowed
    );
    // Logout is for sessions: a token principal is refused by the schema itself.
    assert_eq!(Action::AuthLogout.spec().principals, Principals::UserOnly);
    let d = az.decide(&token, Action::AuthLogout, &token.as_resource(), &ctx());
    assert!(!d.allowed);
    assert!(!d.errors.is_empty(), "{d:?}");
    assert_eq!(token.kind, PrincipalKind::Token);
}

#[test]
fn appliance_admin_role_counts_only_in_appliance_scope() {
    let az = authorizer();
    // A tenant principal that somehow carries appliance-admin gets nothing from it.
    let fake = Principal::token("tok_fake", Some("acme"), vec![Role::ApplianceAdmin]);
    let d = az.decide(&fake, Action::TenantList, &Resource::appliance(), &ctx());
    assert_eq!(d.outcome, Outcome::NotFound);
    let d = az.decide(
        &fake,
        Action::EventsBodyRead,
        &Resource::event("evt_1", "globex", None),
        &ctx(),
    );
    assert_eq!(d.outcome, Outcome::NotFound);
    let d = az.decide(
        &fake,
        Action::EventsBodyRead,
        &Resource::event("evt_1", "acme", None),
        &ctx(),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
}

#[test]
fn no_escalation_by_delegation() {
    let az = authorizer();
    let sec = Principal::user("usr_sec", Some("acme"), vec![Role::SecurityAdmin]);
    let acme = Resource::tenant("acme");
    let grant = |roles: &[Role]| ctx().granting(roles);
    assert!(
        az.decide(
            &sec,
            Action::TokenCreate,
            &acme,
            &grant(&[Role::SecurityAdmin])
        )
        .allowed
    );
    let d = az.decide(
        &sec,
        Action::TokenCreate,
        &acme,
        &grant(&[Role::TenantAdmin]),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
    assert_eq!(d.policies, vec!["evidentia.no-escalation".to_string()]);
    let admin = Principal::user("usr_adm", Some("acme"), vec![Role::TenantAdmin]);
    assert!(
        az.decide(
            &admin,
            Action::TokenCreate,
            &acme,
            &grant(&[Role::Ingest, Role::Viewer])
        )
        .allowed
    );
    let d = az.decide(
        &admin,
        Action::UserCreate,
        &acme,
        &grant(&[Role::ApplianceAdmin]),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
}

#[test]
fn a_resource_type_the_action_does_not_apply_to_is_denied() {
    let az = authorizer();
    let v = Principal::user("usr_v", Some("acme"), vec![Role::Viewer]);
    let d = az.decide(
        &v,
        Action::EventsBodyRead,
        &Resource::tenant("acme"),
        &ctx(),
    );
    assert!(!d.allowed);
    assert!(d.errors.iter().any(|e| e.contains("request")), "{d:?}");
}

#[test]
fn head_maps_to_get() {
    let body = "/api/tenants/{tenant}/events/{id}/body";
    assert_eq!(
        route_access("HEAD", body),
        Some(RouteAccess::Decided(Action::EventsBodyRead))
    );
    assert_eq!(route_access("head", body), route_access("GET", body));
    assert_eq!(route_access("POST", body), None);
    assert_eq!(
        route_access("GET", "/api/keys"),
        Some(RouteAccess::Public("keys.list"))
    );
    assert_eq!(route_access("GET", "/api/nope"), None);
    // Every action has a route.
    for a in Action::ALL {
        assert!(
            routes()
                .iter()
                .any(|(_, _, r)| *r == RouteAccess::Decided(*a)),
            "{a} has no route"
        );
    }
    // No (method, template) twice.
    for (i, (m, t, _)) in routes().iter().enumerate() {
        assert!(
            !routes()[i + 1..]
                .iter()
                .any(|(m2, t2, _)| m == m2 && t == t2),
            "{m} {t} twice"
        );
    }
}

/// The isolation guardrail holds whatever a tenant writes.
#[test]
fn hostile_tenant_policy_cannot_cross_tenants() {
    let az = authorizer();
    let hostile = r#"
        @id("everything")
        permit (principal, action, resource);

        @id("read-globex")
        permit (principal, action == Evidentia::Action::"events.body.read", resource)
        when { resource.tenant == Evidentia::Tenant::"globex" };

        @id("globex-in")
        permit (principal, action, resource)
        when { principal.tenant == Evidentia::Tenant::"globex" };
    "#;
    let compiled = az.compile_tenant_policies("acme", hostile).unwrap();
    assert_eq!(compiled.count(), 3);
    let acme_sha = compiled.sha256().to_string();
    az.install_tenant_policies(compiled);

    let acme_viewer = Principal::user("usr_a", Some("acme"), vec![Role::Viewer]);
    let globex_viewer = Principal::user("usr_g", Some("globex"), vec![Role::Viewer]);
    let globex_event = Resource::event("evt_g", "globex", None);
    let acme_event = Resource::event("evt_a", "acme", None);

    // acme → globex: denied, answered as not found, decided by the defaults.
    let d = az.decide(&acme_viewer, Action::EventsBodyRead, &globex_event, &ctx());
    assert!(!d.allowed);
    assert_eq!(d.outcome, Outcome::NotFound);
    assert_eq!(d.policy_set_sha256, az.policy_set_sha256(None));
    // globex → acme: the same.
    for action in [Action::EventsBodyRead, Action::EventsRead] {
        let d = az.decide(&globex_viewer, action, &acme_event, &ctx());
        assert_eq!(d.outcome, Outcome::NotFound, "{action}");
    }
    // The tenant's policies do apply inside acme (so the test above is meaningful) ...
    let d = az.decide(
        &acme_viewer,
        Action::TenantSettingsWrite,
        &Resource::tenant("acme"),
        &ctx(),
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.policy_set_sha256, acme_sha);
    assert!(d.policies.iter().any(|p| p.starts_with("tenant.acme.")));
    // ... but not past the other guardrails ...
    let d = az.decide(
        &acme_viewer,
        Action::TenantStatusWrite,
        &Resource::tenant("acme"),
        &ctx(),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
    assert_eq!(d.policies, vec!["evidentia.appliance-only".to_string()]);
    let d = az.decide(
        &acme_viewer,
        Action::TokenCreate,
        &Resource::tenant("acme"),
        &ctx().granting(&[Role::TenantAdmin]),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
    let d = az.decide(
        &acme_viewer,
        Action::TenantList,
        &Resource::appliance(),
        &ctx(),
    );
    assert_eq!(d.outcome, Outcome::NotFound);
    // ... and not in globex.
    let d = az.decide(
        &globex_viewer,
        Action::TenantSettingsWrite,
        &Resource::tenant("globex"),
        &ctx(),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
    assert_eq!(d.policy_set_sha256, az.policy_set_sha256(None));
    assert_eq!(az.policy_set_sha256(Some("acme")), acme_sha);

    // Removing the policies restores the defaults.
    az.install_tenant_policies(az.compile_tenant_policies("acme", "").unwrap());
    let d = az.decide(
        &acme_viewer,
        Action::TenantSettingsWrite,
        &Resource::tenant("acme"),
        &ctx(),
    );
    assert_eq!(d.outcome, Outcome::Forbidden);
}

#[test]
fn tenant_policies_narrow_access_with_attributes() {
    let az = authorizer();
    let text = r#"
        @id("no-bodies-for-analysts")
        forbid (principal, action == Evidentia::Action::"events.body.read", resource)
        when { principal.roles.contains("analyst") };

        @id("office-network-only")
        forbid (principal, action, resource)
        unless { context has peer && context.peer.isInRange(ip("10.0.0.0/8")) };

        @id("no-trace-artifacts")
        forbid (principal, action == Evidentia::Action::"artifact.read", resource is Evidentia::Artifact)
        when { resource has artifact_type && resource.artifact_type == "trace" };
    "#;
    let compiled = az.compile_tenant_policies("acme", text).unwrap();
    az.install_tenant_policies(compiled);
    let analyst = Principal::user("usr_n", Some("acme"), vec![Role::Analyst]);
    let viewer = Principal::user("usr_v", Some("acme"), vec![Role::Viewer]);
    let event = Resource::event("evt_1", "acme", None);
    let d = az.decide(&analyst, Action::EventsBodyRead, &event, &ctx());
    assert_eq!(d.outcome, Outcome::Forbidden);
    assert_eq!(d.policies, vec!["tenant.acme.0".to_string()]);
    assert!(
        az.decide(&viewer, Action::EventsBodyRead, &event, &ctx())
            .allowed
    );
    let outside = RequestContext::new(Authn::Token, Some("192.168.1.9".parse().unwrap()));
    assert!(
        !az.decide(&viewer, Action::EventsBodyRead, &event, &outside)
            .allowed
    );
    let unknown_peer = RequestContext::new(Authn::Token, None);
    assert!(
        !az.decide(&viewer, Action::EventsRead, &event, &unknown_peer)
            .allowed
    );
    let trace = Resource::artifact("art_t", "acme", "trace");
    let sbom = Resource::artifact("art_s", "acme", "sbom");
    assert!(
        !az.decide(&viewer, Action::ArtifactRead, &trace, &ctx())
            .allowed
    );
    assert!(
        az.decide(&viewer, Action::ArtifactRead, &sbom, &ctx())
            .allowed
    );
    // Appliance administrators are decided by the defaults alone.
    let admin = Principal::token("tok_admin", None, vec![Role::ApplianceAdmin]);
    assert!(
        az.decide(&admin, Action::ArtifactRead, &trace, &outside)
            .allowed
    );
}

#[test]
fn invalid_policies_come_back_as_diagnostics() {
    let az = authorizer();
    // Parse error, with a position.
    let err = az
        .compile_tenant_policies(
            "acme",
            "permit (principal, action, resource)\nwhen { principal.roles.contains( };",
        )
        .unwrap_err();
    let TenantPolicyError::Rejected(diags) = &err else {
        panic!("{err:?}")
    };
    assert!(!diags.is_empty());
    assert!(diags.iter().all(|d| d.severity == Severity::Error));
    assert!(
        diags.iter().any(|d| d.spans.iter().any(|s| s.line == 2)),
        "{diags:#?}"
    );
    // Schema violations (strict validation): unknown attribute, unknown action, wrong type.
    for (text, needle) in [
        (
            r#"permit (principal, action, resource) when { principal.department == "x" };"#,
            "department",
        ),
        (
            r#"permit (principal, action == Evidentia::Action::"events.delete", resource);"#,
            "events.delete",
        ),
        (
            r#"@id("typo") permit (principal, action, resource) when { principal.tenant + 1 == 2 };"#,
            "",
        ),
        (
            r#"permit (principal is Evidentia::Group, action, resource);"#,
            "Group",
        ),
    ] {
        let err = az.compile_tenant_policies("acme", text).unwrap_err();
        let diags = err.diagnostics();
        assert!(
            diags.iter().any(|d| d.severity == Severity::Error),
            "{text}: {diags:#?}"
        );
        let all = serde_json::to_string(&diags).unwrap();
        assert!(all.contains(needle), "{text}: {all}");
        assert!(
            diags.iter().any(|d| d.policy.is_some()),
            "{text}: {diags:#?}"
        );
    }
    let err = az
        .compile_tenant_policies(
            "acme",
            r#"@id("typo") permit (principal, action, resource) when { principal.tenant + 1 == 2 };"#,
        )
        .unwrap_err();
    assert!(
        err.diagnostics()
            .iter()
            .any(|d| d.policy.as_deref() == Some("policy 0 (@id \"typo\")")),
        "{:#?}",
        err.diagnostics()
    );
    // Templates, limits, tenant ids.
    let err = az
        .compile_tenant_policies(
            "acme",
            "permit (principal == ?principal, action, resource);",
        )
        .unwrap_err();
    assert!(matches!(err, TenantPolicyError::Rejected(_)));
    let big = "permit (principal, action, resource);\n".repeat(2000);
    assert!(matches!(
        az.compile_tenant_policies("acme", &big),
        Err(TenantPolicyError::TooLarge { .. })
    ));
    // Nesting is bounded before Cedar's recursive parser sees it (35 parentheses overflowed a
    // worker's stack); strings and comments do not count; `if`s do.
    let nested = |n: usize| {
        format!(
            "permit (principal, action, resource) when {{ {}true{} }};",
            "(".repeat(n),
            ")".repeat(n)
        )
    };
    assert!(az.compile_tenant_policies("acme", &nested(14)).is_ok());
    assert!(matches!(
        az.compile_tenant_policies("acme", &nested(35)),
        Err(TenantPolicyError::TooDeep { max: 16, .. })
    ));
    assert!(matches!(
        az.compile_tenant_policies("acme", &nested(4900)),
        Err(TenantPolicyError::TooDeep { .. })
    ));
    let ifs = format!(
        "permit (principal, action, resource) when {{ {}true{} }};",
        "if true then ".repeat(20),
        " else false".repeat(20)
    );
    assert!(matches!(
        az.compile_tenant_policies("acme", &ifs),
        Err(TenantPolicyError::TooDeep { .. })
    ));
    let quoted = format!(
        "// (((((((((((((((((((((\npermit (principal, action, resource) when {{ \"{}\" == \"x\" }};",
        "([{".repeat(40)
    );
    assert!(
        az.compile_tenant_policies("acme", &quoted).is_ok(),
        "{quoted}"
    );
    // Hidden characters anywhere, comments included; tabs and line breaks are fine.
    for hidden in ['\u{202E}', '\u{0}', '\u{1B}'] {
        let text = format!("// note {hidden} here\npermit (principal, action, resource);");
        assert!(matches!(
            az.compile_tenant_policies("acme", &text),
            Err(TenantPolicyError::HiddenCharacter { line: 1, .. })
        ));
    }
    assert!(
        az.compile_tenant_policies("acme", "\tpermit (principal, action, resource);\r\n")
            .is_ok()
    );
    let many = "permit (principal, action, resource);\n".repeat(101);
    assert!(matches!(
        az.compile_tenant_policies("acme", &many),
        Err(TenantPolicyError::TooMany { count: 101, .. })
    ));
    assert!(matches!(
        az.compile_tenant_policies("_appliance", "permit (principal, action, resource);"),
        Err(TenantPolicyError::InvalidTenant)
    ));
    // A stored text that no longer compiles refuses the start.
    let bad = r#"permit (principal, action, resource) when { principal.nope };"#;
    assert!(matches!(
        az.load_tenant_policies([("acme", bad)]),
        Err(StartupError::TenantPolicies { .. })
    ));
    // Nothing was installed by the failures.
    assert_eq!(
        az.policy_set_sha256(Some("acme")),
        az.policy_set_sha256(None)
    );
}

#[test]
fn appliance_tenant_constant_is_the_audit_scope() {
    assert_eq!(APPLIANCE_TENANT, evidentia::audit::APPLIANCE_SCOPE);
}

// ---- Passwords ----

fn cheap() -> argon2::Params {
    argon2::Params::new(64, 1, 1, None).unwrap()
}

#[tokio::test]
async fn password_hash_verify_and_rehash() {
    let h = PasswordHasher::with_params(cheap(), 2, 2).unwrap();
    let phc = h.hash("correct horse battery").await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    let v = h.verify("correct horse battery", Some(&phc)).await.unwrap();
    assert!(v.ok && !v.needs_rehash);
    let v = h.verify("correct horse batterY", Some(&phc)).await.unwrap();
    assert!(!v.ok);
    // Two hashes of one password differ (fresh salt).
    assert_ne!(phc, h.hash("correct horse battery").await.unwrap());
    // New parameters: old hashes still verify and ask for a rehash.
    let upgraded =
        PasswordHasher::with_params(argon2::Params::new(128, 2, 1, None).unwrap(), 2, 2).unwrap();
    let v = upgraded
        .verify("correct horse battery", Some(&phc))
        .await
        .unwrap();
    assert!(v.ok && v.needs_rehash);
    let fresh = upgraded.hash("correct horse battery").await.unwrap();
    let v = upgraded
        .verify("correct horse battery", Some(&fresh))
        .await
        .unwrap();
    assert!(v.ok && !v.needs_rehash);
    // Policy.
    assert_eq!(
        h.hash("short").await,
        Err(PasswordError::TooShort { min: 12 })
    );
    assert!(matches!(
        h.hash(&"x".repeat(2000)).await,
        Err(PasswordError::TooLong { .. })
    ));
    // The limit counts characters, as the schema's maxLength 256 does: 257 one-byte characters
    // are refused (found by Schemathesis when the limit counted 1024 bytes), 256 two-byte ones
    // (512 bytes) are accepted.
    assert_eq!(
        h.hash(&"x".repeat(257)).await,
        Err(PasswordError::TooLong { max: 256 })
    );
    assert!(h.hash(&"\u{e9}".repeat(256)).await.is_ok());
    // Hostile or corrupt stored hashes are refused, not computed.
    let bomb = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    assert_eq!(
        h.verify("whatever password", Some(bomb)).await,
        Err(PasswordError::StoredHashInvalid)
    );
    assert_eq!(
        h.verify("whatever password", Some("$md5$nope")).await,
        Err(PasswordError::StoredHashInvalid)
    );
}

#[test]
fn default_parameters_are_the_crates() {
    let h = PasswordHasher::new(1, 0).unwrap();
    assert_eq!(
        (
            h.params().m_cost(),
            h.params().t_cost(),
            h.params().p_cost()
        ),
        (19 * 1024, 2, 1)
    );
}

#[tokio::test]
async fn unknown_user_costs_one_computation_like_a_wrong_password() {
    let h = PasswordHasher::with_params(cheap(), 2, 2).unwrap();
    let phc = h.hash("a long enough password").await.unwrap();
    let before = h.computations();
    let wrong = h.verify("not the password!", Some(&phc)).await.unwrap();
    let after_wrong = h.computations();
    let unknown = h.verify("not the password!", None).await.unwrap();
    let after_unknown = h.computations();
    assert!(!wrong.ok && !unknown.ok);
    assert_eq!(after_wrong - before, 1);
    assert_eq!(
        after_unknown - after_wrong,
        1,
        "unknown user must run argon2 too"
    );
    // A corrupt stored hash costs one as well.
    let _ = h
        .verify("not the password!", Some("$argon2id$broken"))
        .await;
    assert_eq!(h.computations() - after_unknown, 1);
}

#[tokio::test]
async fn hashing_saturates_with_a_typed_error() {
    let h = PasswordHasher::with_params(cheap(), 1, 1).unwrap();
    let a = h.admit().unwrap();
    let b = h.admit().unwrap();
    assert_eq!(h.admit().unwrap_err(), PasswordError::Saturated);
    assert_eq!(
        h.verify("some password here", None).await,
        Err(PasswordError::Saturated)
    );
    drop(a);
    let v = b.verify("some password here", None).await.unwrap();
    assert!(!v.ok);
    // Places are released after use.
    let c = h.admit().unwrap();
    let d = h.admit().unwrap();
    drop((c, d));
    assert!(h.hash("another long password").await.is_ok());
}

// ---- Sessions ----

#[test]
fn session_ids_rotate_and_expire() {
    let clock = ManualClock::at(1_800_000_000);
    let policy = SessionPolicy::default();
    let t0 = clock.now_unix();
    let s1 = session::start_session("usr_1", Some("acme"), t0, &policy);
    let s2 = session::start_session("usr_1", Some("acme"), t0, &policy);
    assert_ne!(s1.session_id, s2.session_id, "a new id at every login");
    assert_ne!(s1.csrf_token, s2.csrf_token);
    assert_eq!(s1.session_id.len(), session::SESSION_ID_LEN);
    assert!(s1.session_id.starts_with("evs_"));
    assert_eq!(
        session::lookup_key(&s1.session_id).as_deref(),
        Some(s1.record.id_sha256.as_str())
    );
    assert!(!s1.record.id_sha256.contains(&s1.session_id[4..]));
    assert_eq!(session::lookup_key("evs_short"), None);
    // Another session's id does not open this record.
    assert_eq!(
        session::check_session(&s2.session_id, &s1.record, t0, &policy),
        Err(SessionRefusal::Unknown)
    );

    // Idle timeout: 30 minutes without a request.
    let mut rec = s1.record.clone();
    clock.advance(policy.idle_seconds - 1);
    assert_eq!(
        session::check_session(&s1.session_id, &rec, clock.now_unix(), &policy),
        Ok(())
    );
    clock.advance(1);
    assert_eq!(
        session::check_session(&s1.session_id, &rec, clock.now_unix(), &policy),
        Err(SessionRefusal::IdleExpired)
    );

    // Regular use keeps it alive, but only until the absolute lifetime.
    rec = s1.record.clone();
    clock.set(t0);
    assert!(
        !rec.touch(clock.now_unix() + 10, &policy),
        "coarse: no write within 60 s"
    );
    loop {
        clock.advance(600);
        let now = clock.now_unix();
        if now >= t0 + policy.absolute_seconds {
            assert_eq!(
                session::check_session(&s1.session_id, &rec, now, &policy),
                Err(SessionRefusal::AbsoluteExpired)
            );
            break;
        }
        assert_eq!(
            session::check_session(&s1.session_id, &rec, now, &policy),
            Ok(()),
            "at +{}",
            now - t0
        );
        assert!(rec.touch(now, &policy));
    }
}

#[test]
fn login_revokes_a_planted_session_and_logout_ends_it() {
    let policy = SessionPolicy::default();
    let now = 1_800_000_000;
    // An attacker plants a session id (e.g. their own) before the victim logs in.
    let planted = session::start_session("usr_victim", None, now, &policy);
    let mut planted_record = planted.record.clone();
    // Login: a fresh session, and the presented one is revoked.
    let fresh = session::start_session("usr_victim", None, now + 5, &policy);
    planted_record.revoke(now + 5);
    assert_eq!(
        session::check_session(&planted.session_id, &planted_record, now + 6, &policy),
        Err(SessionRefusal::Revoked)
    );
    assert_ne!(fresh.session_id, planted.session_id);
    // Logout.
    let mut rec = fresh.record.clone();
    assert_eq!(
        session::check_session(&fresh.session_id, &rec, now + 10, &policy),
        Ok(())
    );
    rec.revoke(now + 10);
    rec.revoke(now + 20);
    assert_eq!(rec.revoked_at, Some(now + 10));
    assert_eq!(
        session::check_session(&fresh.session_id, &rec, now + 11, &policy),
        Err(SessionRefusal::Revoked)
    );
}

#[test]
fn csrf_token_is_bound_to_its_session() {
    let policy = SessionPolicy::default();
    let a = session::start_session("usr_1", None, 0, &policy);
    let b = session::start_session("usr_1", None, 0, &policy);
    assert!(session::verify_csrf(&a.session_id, &a.csrf_token));
    assert_eq!(session::csrf_token(&a.session_id), a.csrf_token);
    assert!(!session::verify_csrf(&a.session_id, &b.csrf_token));
    assert!(!session::verify_csrf(&a.session_id, ""));
    let mut t = a.csrf_token.clone().into_bytes();
    t[0] = if t[0] == b'A' { b'B' } else { b'A' };
    assert!(!session::verify_csrf(
        &a.session_id,
        std::str::from_utf8(&t).unwrap()
    ));
    for m in ["POST", "put", "PATCH", "DELETE"] {
        assert!(session::csrf_required(m), "{m}");
    }
    for m in ["GET", "head", "OPTIONS", "TRACE"] {
        assert!(!session::csrf_required(m), "{m}");
    }
    let tls = session::set_cookie(&a.session_id, true, 43200);
    assert!(tls.starts_with("__Host-evidentia_session=evs_"));
    for attr in [
        "; Path=/",
        "; HttpOnly",
        "; SameSite=Strict",
        "; Secure",
        "Max-Age=43200",
    ] {
        assert!(tls.contains(attr), "{tls}");
    }
    assert!(!tls.contains("Domain"));
    let plain = session::set_cookie(&a.session_id, false, 43200);
    assert!(plain.starts_with("evidentia_session=") && !plain.contains("Secure"));
    assert!(session::clear_cookie(true).contains("Max-Age=0"));
}

// ---- Lockout ----

#[test]
fn five_failures_in_five_minutes_lock_for_fifteen() {
    let clock = ManualClock::at(1_000_000);
    let lockout = Lockout::new(LockoutPolicy::default());
    let peer: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..4 {
        assert!(
            lockout
                .check("alice", Some(peer), clock.now_unix())
                .is_none()
        );
        assert!(
            lockout
                .record_failure("alice", Some(peer), clock.now_unix())
                .is_empty()
        );
        clock.advance(60);
    }
    // The fifth failure within 5 minutes (at +240 s) starts both locks.
    let locks = lockout.record_failure("Alice", Some(peer), clock.now_unix());
    let t5 = clock.now_unix();
    assert_eq!(locks.len(), 2, "{locks:?}");
    assert!(locks.iter().all(|l| l.started && l.until == t5 + 900));
    assert!(locks.contains(&evidentia::identity::lockout::Lock {
        key: LockKey::username("alice"),
        until: t5 + 900,
        started: true
    }));
    // Locked: even checking from another peer (username lock) or as another user (peer lock).
    clock.advance(899);
    let l = lockout.check(
        "alice",
        Some("198.51.100.1".parse().unwrap()),
        clock.now_unix(),
    );
    assert_eq!(
        l.map(|l| (l.key, l.until)),
        Some((LockKey::username("alice"), t5 + 900))
    );
    let l = lockout.check("bob", Some(peer), clock.now_unix()).unwrap();
    assert_eq!(l.key, LockKey::Peer(peer));
    assert!(!l.started);
    // Failures during the lock do not extend it nor start it again.
    let again = lockout.record_failure("alice", Some(peer), clock.now_unix());
    assert!(again.iter().all(|l| !l.started && l.until == t5 + 900));
    // Fifteen minutes later it is open, and counting starts afresh.
    clock.advance(1);
    assert!(
        lockout
            .check("alice", Some(peer), clock.now_unix())
            .is_none()
    );
    assert!(
        lockout
            .record_failure("alice", Some(peer), clock.now_unix())
            .is_empty()
    );
}

#[test]
fn failures_spread_over_more_than_the_window_do_not_lock() {
    let clock = ManualClock::at(5_000_000);
    let lockout = Lockout::new(LockoutPolicy::default());
    for _ in 0..20 {
        assert!(
            lockout
                .record_failure("carol", None, clock.now_unix())
                .is_empty()
        );
        clock.advance(76); // 4 failures per 304 s: never 5 within 300 s
    }
    assert!(lockout.check("carol", None, clock.now_unix()).is_none());
    // A success forgets the username's failures.
    for _ in 0..4 {
        lockout.record_failure("dave", None, clock.now_unix());
    }
    lockout.record_success("dave");
    assert!(
        lockout
            .record_failure("dave", None, clock.now_unix())
            .is_empty()
    );
}

#[test]
fn one_peer_spraying_usernames_is_locked() {
    let lockout = Lockout::new(LockoutPolicy::default());
    let peer: IpAddr = "203.0.113.9".parse().unwrap();
    let mut started = Vec::new();
    for (i, name) in ["u1", "u2", "u3", "u4", "u5"].iter().enumerate() {
        started.extend(lockout.record_failure(name, Some(peer), 100 + i as i64));
    }
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].key, LockKey::Peer(peer));
    assert!(lockout.check("u6", Some(peer), 110).is_some());
    assert!(lockout.check("u6", None, 110).is_none());
}

// ---- Access receipts ----

fn signer() -> AccessReceiptSigner {
    AccessReceiptSigner::new(
        "evidentia.example",
        "evidentia.example+1a2b3c4d",
        SigningKey::from_bytes(&[7; 32]),
    )
}

fn statement(leaf: [u8; 32], index: u64) -> AccessStatement {
    AccessStatement {
        rid: access_receipt::new_receipt_id(),
        iat: 1_800_000_000,
        tenant: "acme".into(),
        sub: "user:usr_1".into(),
        act: Action::EventsBodyRead.id().into(),
        res: ResourceClaim {
            kind: "Event".into(),
            id: "evt_1".into(),
            sha256: "ab".repeat(32),
        },
        dec: "allow".into(),
        policyset: "cd".repeat(32),
        audit: AuditClaim {
            log: "evidentia.example/acme/audit".into(),
            index,
            leaf_hash: B64.encode(leaf),
        },
    }
}

#[test]
fn access_receipt_signs_verifies_and_any_changed_byte_fails() {
    let s = signer();
    let st = statement([9; 32], 4);
    let jws = s.sign(st.clone()).unwrap();
    let claims = access_receipt::verify(&jws, &s.verifying_key(), Some(s.kid())).unwrap();
    assert_eq!(claims.v, 1);
    assert_eq!(claims.iss, "evidentia.example");
    assert_eq!(claims.kid, s.kid());
    assert_eq!(claims.rid, st.rid);
    assert!(claims.rid.starts_with("ar_") && claims.rid.len() == 35);
    assert_eq!(claims.res, st.res);
    assert_eq!(claims.audit, st.audit);
    // The claims are exactly the documented set.
    let payload = jws.split('.').nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "act",
            "audit",
            "dec",
            "iat",
            "iss",
            "kid",
            "policyset",
            "res",
            "rid",
            "sub",
            "tenant",
            "v"
        ]
    );
    // Change any one byte: it no longer verifies.
    let bytes = jws.as_bytes();
    for (i, &original) in bytes.iter().enumerate() {
        for replacement in [b'A', b'-', b'.'] {
            if original == replacement {
                continue;
            }
            let mut t = bytes.to_vec();
            t[i] = replacement;
            let t = String::from_utf8(t).unwrap();
            assert!(
                access_receipt::verify(&t, &s.verifying_key(), None).is_err(),
                "byte {i} -> {}",
                replacement as char
            );
        }
    }
    // Wrong key, wrong kid.
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert_eq!(
        access_receipt::verify(&jws, &other, None),
        Err(ReceiptError::Signature)
    );
    assert_eq!(
        access_receipt::verify(&jws, &s.verifying_key(), Some("other+00000000")),
        Err(ReceiptError::KeyId)
    );
    // alg "none" and friends are refused before any signature check.
    let e64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let none = format!(
        "{}.{}.",
        e64(
            r#"{"alg":"none","kid":"evidentia.example+1a2b3c4d","typ":"evidentia-access-receipt+jwt"}"#
        ),
        payload
    );
    assert_eq!(
        access_receipt::verify(&none, &s.verifying_key(), None),
        Err(ReceiptError::Header)
    );
    assert_eq!(
        access_receipt::verify(&"a".repeat(20_000), &s.verifying_key(), None),
        Err(ReceiptError::TooLong)
    );
}

#[test]
fn access_receipt_audit_leaf_verifies_against_a_checkpoint() {
    // An audit log of 7 records; ours is number 4.
    let entries: Vec<Vec<u8>> = (0..7)
        .map(|i| format!(r#"{{"action":"events.body.read","n":{i}}}"#).into_bytes())
        .collect();
    let mut nodes = MemoryNodes::new();
    for e in &entries {
        nodes.append_entry(e);
    }
    let index = 4;
    let leaf = leaf_hash(&entries[index as usize]);
    let proof = inclusion_proof(&nodes, index, 7).unwrap();
    let note_signer =
        NoteSigner::new("evidentia.example", SigningKey::from_bytes(&[3; 32])).unwrap();
    let origin = "evidentia.example/acme/audit".to_string();
    let checkpoint = Checkpoint {
        origin: origin.clone(),
        size: 7,
        root: root(&nodes, 7).unwrap(),
    }
    .sign(&note_signer)
    .unwrap();
    let vk = note_signer.verifier_key().clone();
    let s = AccessReceiptSigner::new(
        "evidentia.example",
        access_receipt::kid_for(&vk),
        SigningKey::from_bytes(&[3; 32]),
    );
    assert_eq!(s.kid(), format!("evidentia.example+{:08x}", vk.key_id()));
    let jws = s.sign(statement(leaf, index)).unwrap();
    let claims = access_receipt::verify(&jws, &s.verifying_key(), None).unwrap();
    let cp = access_receipt::verify_audit_leaf(
        &claims,
        &checkpoint,
        &vk,
        &proof,
        Some(&entries[index as usize]),
    )
    .unwrap();
    assert_eq!((cp.origin.as_str(), cp.size), (origin.as_str(), 7));
    // The wrong entry, a tampered proof, another log's checkpoint, a forged checkpoint.
    assert_eq!(
        access_receipt::verify_audit_leaf(&claims, &checkpoint, &vk, &proof, Some(&entries[3])),
        Err(ReceiptError::LeafHash)
    );
    let mut bad = proof.clone();
    bad[0][0] ^= 1;
    assert!(matches!(
        access_receipt::verify_audit_leaf(&claims, &checkpoint, &vk, &bad, None),
        Err(ReceiptError::Inclusion(_))
    ));
    let elsewhere = Checkpoint {
        origin: "evidentia.example/globex/audit".into(),
        size: 7,
        root: root(&nodes, 7).unwrap(),
    }
    .sign(&note_signer)
    .unwrap();
    assert!(matches!(
        access_receipt::verify_audit_leaf(&claims, &elsewhere, &vk, &proof, None),
        Err(ReceiptError::Origin { .. })
    ));
    let forged = checkpoint.replacen("\n7\n", "\n8\n", 1);
    assert!(matches!(
        access_receipt::verify_audit_leaf(&claims, &forged, &vk, &proof, None),
        Err(ReceiptError::Checkpoint(_))
    ));
}
