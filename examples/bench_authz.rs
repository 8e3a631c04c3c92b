//! Cost of one authorization decision ([`Authorizer::decide`]): entity building, schema
//! check of the request and Cedar evaluation, as every API handler will pay it.
//!
//! The set is the embedded defaults plus, in 20 tenants, three tenant policies each (a role
//! forbid, a network forbid on `context.peer`, an attribute forbid on artifact types). The
//! requests cycle over every role and action, half in the principal's own tenant (decided by
//! that tenant's set), a quarter cross-tenant (the isolation forbid) and a quarter by
//! appliance administrators. Each decision is timed alone; the report gives the median, p90,
//! p99 and max in µs.
//!
//! ```sh
//! cargo run --release --example bench_authz -- [--decisions 200000]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark driver: a failed setup step should stop the run loudly"
)]

use std::time::Instant;

use evidentia::authz::{
    Action, Authn, Authorizer, ContextShape, Principal, RequestContext, Resource, ResourceType,
};
use evidentia::identity::Role;

const TENANT_POLICIES: &str = r#"
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

fn resource(kind: ResourceType, tenant: &str) -> Resource {
    match kind {
        ResourceType::Appliance => Resource::appliance(),
        ResourceType::Tenant => Resource::tenant(tenant),
        ResourceType::Policy => Resource::policy(tenant),
        ResourceType::Log => Resource::log(tenant, "audit"),
        ResourceType::Artifact => Resource::artifact("art_0123456789abcdef", tenant, "sbom"),
        ResourceType::Event => Resource::event("evt_0123456789abcdef", tenant, Some("src_1")),
        ResourceType::User => {
            Resource::user("usr_0123456789abcdef", Some(tenant), vec![Role::Viewer])
        }
        ResourceType::Token => {
            Resource::token("tok_0123456789abcdef", Some(tenant), vec![Role::Ingest])
        }
        other => Resource::new(other, "id_0123456789abcdef", tenant),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let mut decisions: usize = 200_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--decisions") {
        decisions = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(decisions);
    }
    let t = Instant::now();
    let az = Authorizer::new().expect("schema and default policies validate");
    println!(
        "startup (schema + defaults, strict validation): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let tenants: Vec<String> = (0..20).map(|i| format!("tenant-{i:02}")).collect();
    let t = Instant::now();
    for tenant in &tenants {
        let compiled = az
            .compile_tenant_policies(tenant, TENANT_POLICIES)
            .expect("tenant policies validate");
        az.install_tenant_policies(compiled);
    }
    println!(
        "tenant policy compile + validate: {:.2} ms per tenant",
        t.elapsed().as_secs_f64() * 1e3 / tenants.len() as f64
    );

    let roles = Role::ALL;
    let inside = RequestContext::new(Authn::Session, Some("10.1.2.3".parse().unwrap()));
    let mut samples = Vec::with_capacity(decisions);
    let mut allowed = 0usize;
    // Warm-up.
    for i in 0..2000 {
        let action = Action::ALL[i % Action::ALL.len()];
        let p = Principal::user("usr_warm", Some(tenants[0].as_str()), vec![Role::Viewer]);
        let _ = az.decide(
            &p,
            action,
            &resource(action.spec().resources[0], &tenants[0]),
            &inside,
        );
    }
    for i in 0..decisions {
        let action = Action::ALL[i % Action::ALL.len()];
        let role = roles[(i / Action::ALL.len()) % roles.len()];
        let own = &tenants[i % tenants.len()];
        let (principal, res_tenant) = match i % 4 {
            // Appliance administrator.
            0 => (
                Principal::token("tok_admin", None, vec![Role::ApplianceAdmin]),
                own.as_str(),
            ),
            // Cross-tenant.
            1 => (
                Principal::user("usr_0123456789abcdef", Some(own.as_str()), vec![role]),
                tenants[(i + 1) % tenants.len()].as_str(),
            ),
            // Own tenant.
            _ => (
                Principal::user("usr_0123456789abcdef", Some(own.as_str()), vec![role]),
                own.as_str(),
            ),
        };
        let res = resource(action.spec().resources[0], res_tenant);
        let ctx = if action.spec().context == ContextShape::Grant {
            inside.clone().granting(&[role])
        } else {
            inside.clone()
        };
        let t = Instant::now();
        let d = az.decide(&principal, action, &res, &ctx);
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        allowed += usize::from(d.allowed);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    println!(
        "decisions: {decisions} ({allowed} allowed), {} actions, {} roles, {} tenants with 3 policies each",
        Action::ALL.len(),
        roles.len(),
        tenants.len()
    );
    println!(
        "per decision (µs): median {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  mean {:.1}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
        mean
    );
    println!(
        "RESULT authz_median_us={:.1} authz_p99_us={:.1}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}
