//! The tenant compliance view (DESIGN §3 `GET /api/tenants/{t}/compliance`): each control's
//! status computed from the tenant's real state, with the evidence it was computed from.
//!
//! [`assess`] is pure: the caller gathers [`Facts`] (sources, tokens, users, settings, the log
//! checks, overdue retention) and gets a [`Report`]. A control is `fail` when the state breaks
//! it, `warn` when it holds but needs attention, `pass` otherwise; the report's status is the
//! worst of its controls.

use crate::identity::tenant::EffectiveSettings;
use crate::identity::user::UserRecord;
use crate::identity::{Role, TokenRecord};
use crate::ingest::SourceRecord;
use crate::ingest::signature::Provider;
use crate::store::Overdue;

/// Shortest secret accepted as strong, bytes (HMAC-SHA256's block-size guidance: ≥ 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;
/// A source whose newest secret is older than this should rotate, seconds (90 days).
pub const ROTATION_AGE_SECS: i64 = 90 * 86_400;
/// A token or user unused this long is stale, seconds (90 days).
pub const STALE_SECS: i64 = 90 * 86_400;
/// A retention item due longer ago than this means the purger is not keeping up (1 hour).
pub const RETENTION_WARN_SECS: i64 = 3600;
/// … and longer than this that it is not running (1 day).
pub const RETENTION_FAIL_SECS: i64 = 86_400;

/// A control's verdict. Ordered: `Pass` < `Warn` < `Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// The control holds.
    Pass,
    /// It holds, but something needs attention.
    Warn,
    /// The state breaks it.
    Fail,
}

impl Status {
    /// `pass`, `warn`, `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One fact a control was computed from: what was looked at, what was found, and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// What kind of thing: `source`, `log`, `token`, `user`, `setting`, `retention`, …
    pub kind: &'static str,
    /// Its id (a source or token id, a log origin, a setting name).
    pub id: String,
    /// What was found, in words.
    pub detail: String,
    /// This fact's verdict.
    pub status: Status,
}

/// One control of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Stable id (`webhook_signing`, `payload_caps`, `replay_defence`, `rate_limits`,
    /// `evidence_log`, `audit_log`, `retention`, `integrations`, `plugin_gate`,
    /// `access_hygiene`).
    pub id: &'static str,
    /// What the control asks.
    pub title: &'static str,
    /// The worst of its evidence (or as set when it has none).
    pub status: Status,
    /// One sentence.
    pub summary: String,
    /// The facts.
    pub evidence: Vec<Evidence>,
}

/// The result of checking a log against the checkpoint the previous view verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCheck {
    /// The log is empty: nothing to prove yet.
    Empty,
    /// The first view of this log: its checkpoint is now remembered.
    First {
        /// Tree size of the current checkpoint.
        size: u64,
    },
    /// The current checkpoint is consistent with the one the previous view verified
    /// (RFC 9162 §2.1.4.2).
    Consistent {
        /// Size the previous view verified.
        from: u64,
        /// Current size.
        to: u64,
    },
    /// It is not, or the proof could not be computed: the log, or the view's memory of it,
    /// was altered.
    Inconsistent {
        /// Size the previous view verified.
        from: u64,
        /// Current size.
        to: u64,
        /// Why.
        reason: String,
    },
}

/// Everything [`assess`] looks at.
#[derive(Debug)]
pub struct Facts<'a> {
    /// Unix seconds.
    pub now: i64,
    /// The tenant's webhook sources.
    pub sources: &'a [SourceRecord],
    /// The appliance-wide ML webhook secret's length, bytes (ML sources use it).
    pub appliance_ml_secret_bytes: usize,
    /// The appliance's default source quota (requests per second, burst).
    pub default_source_rate: (u32, u32),
    /// The settings in force for the tenant, and the appliance's.
    pub settings: EffectiveSettings,
    /// The appliance defaults, to see what the tenant changed.
    pub appliance_settings: EffectiveSettings,
    /// The evidence log's check.
    pub evidence_log: LogCheck,
    /// The audit log's check.
    pub audit_log: LogCheck,
    /// Retention items due more than [`RETENTION_WARN_SECS`] ago and not purged.
    pub overdue: Overdue,
    /// The tenant's tokens (all states).
    pub tokens: &'a [TokenRecord],
    /// The tenant's users (all states).
    pub users: &'a [UserRecord],
    /// The tenant's integrations, each with its endpoint's circuit-breaker state.
    pub integrations: &'a [(
        crate::delivery::integration::IntegrationRecord,
        BreakerState,
    )],
}

use crate::delivery::breaker::BreakerState;

/// The view: every control, and the worst status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Worst of the controls.
    pub status: Status,
    /// In a fixed order.
    pub controls: Vec<Control>,
}

fn control(
    id: &'static str,
    title: &'static str,
    evidence: Vec<Evidence>,
    summary: impl FnOnce(Status, &[Evidence]) -> String,
) -> Control {
    let status = evidence
        .iter()
        .map(|e| e.status)
        .max()
        .unwrap_or(Status::Pass);
    Control {
        id,
        title,
        status,
        summary: summary(status, &evidence),
        evidence,
    }
}

fn count(evidence: &[Evidence], s: Status) -> usize {
    evidence.iter().filter(|e| e.status == s).count()
}

/// Computes the view from `f`.
pub fn assess(f: &Facts<'_>) -> Report {
    let controls = vec![
        webhook_signing(f),
        payload_caps(f),
        replay_defence(f),
        rate_limits(f),
        log_control(
            "evidence_log",
            "The evidence log only grows: its checkpoint is consistent with the last one verified",
            &f.evidence_log,
        ),
        log_control(
            "audit_log",
            "The audit log only grows: its checkpoint is consistent with the last one verified",
            &f.audit_log,
        ),
        retention(f),
        integrations(f),
        control(
            "plugin_gate",
            "Plugins pass the publish gate",
            Vec::new(),
            |_, _| "no plugins are published by this tenant".into(),
        ),
        access_hygiene(f),
    ];
    Report {
        status: controls
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass),
        controls,
    }
}

/// Each integration: `pass` while it delivers; `warn` while failing (since when), its breaker
/// is open, or a user disabled it; `fail` once the appliance disabled it (410 Gone, or 5 days
/// without a success) — its pending deliveries are not going out.
fn integrations(f: &Facts<'_>) -> Control {
    use crate::delivery::integration::{DisabledReason, IntegrationStatus};
    let evidence = f
        .integrations
        .iter()
        .map(|(r, breaker)| {
            let (status, detail) = match (r.status, r.disabled_reason, breaker, r.failing_since) {
                (IntegrationStatus::Disabled, Some(DisabledReason::Gone), _, _) => (
                    Status::Fail,
                    "disabled: the endpoint answered 410 Gone".to_string(),
                ),
                (IntegrationStatus::Disabled, Some(DisabledReason::Failing), _, _) => (
                    Status::Fail,
                    "disabled after 5 days without an accepted delivery".to_string(),
                ),
                (IntegrationStatus::Disabled, _, _, _) => {
                    (Status::Warn, "disabled by a user".to_string())
                }
                (_, _, BreakerState::Open { .. }, _) => (
                    Status::Warn,
                    "the endpoint's circuit breaker is open (most recent attempts failed)"
                        .to_string(),
                ),
                (_, _, _, Some(since)) => (
                    Status::Warn,
                    format!(
                        "no delivery accepted since {}",
                        crate::clock::rfc3339(since)
                    ),
                ),
                _ => (Status::Pass, format!("{} to {}", r.kind.as_str(), r.url)),
            };
            Evidence {
                kind: "integration",
                id: r.id.clone(),
                detail,
                status,
            }
        })
        .collect();
    control(
        "integrations",
        "Outbound integrations deliver",
        evidence,
        |status, e| match (status, e.len()) {
            (_, 0) => "no outbound integrations are configured for this tenant".into(),
            (Status::Pass, n) => format!("{n} integrations deliver"),
            (_, n) => format!(
                "{} of {n} integrations are disabled by the appliance, {} need attention",
                count(e, Status::Fail),
                count(e, Status::Warn)
            ),
        },
    )
}

fn webhook_signing(f: &Facts<'_>) -> Control {
    let evidence = f
        .sources
        .iter()
        .map(|s| {
            let (status, detail) = if s.provider == Provider::Ml || s.uses_appliance_secret {
                if f.appliance_ml_secret_bytes >= MIN_SECRET_BYTES {
                    (
                        Status::Pass,
                        format!(
                            "verified with the appliance ML secret ({} bytes)",
                            f.appliance_ml_secret_bytes
                        ),
                    )
                } else {
                    (
                        Status::Fail,
                        format!(
                            "the appliance ML secret has {} bytes, fewer than {MIN_SECRET_BYTES}",
                            f.appliance_ml_secret_bytes
                        ),
                    )
                }
            } else {
                let active: Vec<_> = s
                    .secrets
                    .iter()
                    .filter(|e| e.expires_at.is_none_or(|x| x > f.now))
                    .collect();
                let weakest = active
                    .iter()
                    .map(|e| crate::ingest::secret_key_bytes(s.provider, &e.value))
                    .min();
                let newest = active.iter().map(|e| e.created_at).max();
                match (weakest, newest) {
                    (None, _) | (_, None) => (
                        Status::Fail,
                        "no active secret: every delivery is refused unverified".into(),
                    ),
                    (Some(w), _) if w < MIN_SECRET_BYTES => (
                        Status::Fail,
                        format!("an active secret has {w} bytes, fewer than {MIN_SECRET_BYTES}"),
                    ),
                    (Some(w), Some(n)) if f.now - n > ROTATION_AGE_SECS => (
                        Status::Warn,
                        format!(
                            "{} active secret(s), shortest {w} bytes; newest is {} days old (rotate every 90)",
                            active.len(),
                            (f.now - n) / 86_400
                        ),
                    ),
                    (Some(w), Some(n)) => (
                        Status::Pass,
                        format!(
                            "{} active secret(s), shortest {w} bytes; newest {} days old",
                            active.len(),
                            (f.now - n) / 86_400
                        ),
                    ),
                }
            };
            Evidence {
                kind: "source",
                id: s.id.clone(),
                detail: format!("{}: {detail}", s.provider.as_str()),
                status,
            }
        })
        .collect();
    control(
        "webhook_signing",
        "Every webhook source verifies signatures with a strong, recently rotated secret",
        evidence,
        |s, e| match s {
            _ if e.is_empty() => "no webhook sources".into(),
            Status::Pass => format!("all {} source(s) have strong, fresh secrets", e.len()),
            _ => format!(
                "{} of {} source(s) fail, {} need rotation",
                count(e, Status::Fail),
                e.len(),
                count(e, Status::Warn)
            ),
        },
    )
}

fn payload_caps(f: &Facts<'_>) -> Control {
    let evidence = f
        .sources
        .iter()
        .map(|s| {
            let cap = s.max_payload_bytes;
            let (status, detail) = if cap == 0 || cap > s.provider.max_cap() {
                (
                    Status::Fail,
                    format!(
                        "cap {cap} bytes is outside 1 to {} bytes",
                        s.provider.max_cap()
                    ),
                )
            } else if cap > s.provider.default_cap() {
                (
                    Status::Warn,
                    format!(
                        "cap {cap} bytes is above the {}-byte default",
                        s.provider.default_cap()
                    ),
                )
            } else {
                (Status::Pass, format!("cap {cap} bytes"))
            };
            Evidence {
                kind: "source",
                id: s.id.clone(),
                detail,
                status,
            }
        })
        .collect();
    control(
        "payload_caps",
        "Every source refuses bodies above a bounded size before reading them",
        evidence,
        |s, e| match s {
            _ if e.is_empty() => "no webhook sources".into(),
            Status::Pass => format!("all {} source(s) within the default caps", e.len()),
            _ => format!(
                "{} source(s) above the default cap, {} outside the bounds",
                count(e, Status::Warn),
                count(e, Status::Fail)
            ),
        },
    )
}

fn replay_defence(f: &Facts<'_>) -> Control {
    let window_days = f.settings.body_retention_days;
    let evidence = f
        .sources
        .iter()
        .map(|s| {
            let (status, detail) = match s.provider {
                Provider::Standard | Provider::Stripe | Provider::Slack => (
                    Status::Pass,
                    format!(
                        "signed timestamp within the tolerance, and each delivery accepted once for {window_days} days"
                    ),
                ),
                Provider::Github | Provider::Shopify | Provider::Ml => (
                    Status::Pass,
                    format!(
                        "each delivery id (or body digest) accepted once for {window_days} days"
                    ),
                ),
                Provider::Generic => (
                    Status::Warn,
                    format!(
                        "no signed timestamp or delivery id: a replayed body is refused only by its digest, for {window_days} days"
                    ),
                ),
            };
            Evidence {
                kind: "source",
                id: s.id.clone(),
                detail: format!("{}: {detail}", s.provider.as_str()),
                status,
            }
        })
        .collect();
    control(
        "replay_defence",
        "A captured delivery cannot be accepted twice",
        evidence,
        |s, e| match s {
            _ if e.is_empty() => "no webhook sources".into(),
            Status::Pass => format!("all {} source(s) refuse replays", e.len()),
            _ => format!(
                "{} source(s) rely on the body digest only",
                count(e, Status::Warn)
            ),
        },
    )
}

fn rate_limits(f: &Facts<'_>) -> Control {
    let (per_second, burst) = f.default_source_rate;
    let mut evidence: Vec<Evidence> = f
        .sources
        .iter()
        .map(|s| {
            let raised = s.rate_per_second > per_second || s.rate_burst > burst;
            Evidence {
                kind: "source",
                id: s.id.clone(),
                detail: format!(
                    "{} requests/s, burst {}{}",
                    s.rate_per_second,
                    s.rate_burst,
                    if raised {
                        format!(" (above the appliance default {per_second}/s, burst {burst})")
                    } else {
                        String::new()
                    }
                ),
                status: if raised { Status::Warn } else { Status::Pass },
            }
        })
        .collect();
    let own = f.settings.rate_limits;
    let base = f.appliance_settings.rate_limits;
    for class in crate::ratelimit::ApiClass::ALL {
        let (q, d) = (own.of(class), base.of(class));
        evidence.push(Evidence {
            kind: "setting",
            id: format!("rate_limits.{}", class.name()),
            detail: if q > d {
                format!("{q} requests/min per principal and operation (appliance default {d})")
            } else {
                format!("{q} requests/min per principal and operation")
            },
            status: if q > d { Status::Warn } else { Status::Pass },
        });
    }
    control(
        "rate_limits",
        "Ingestion and the API are rate limited per source and per principal",
        evidence,
        |s, e| match s {
            Status::Pass => "every source and API class is within the appliance defaults".into(),
            _ => format!(
                "{} quota(s) raised above the appliance defaults",
                count(e, Status::Warn)
            ),
        },
    )
}

fn log_control(id: &'static str, title: &'static str, check: &LogCheck) -> Control {
    let log = id.trim_end_matches("_log");
    let (status, detail) = match check {
        LogCheck::Empty => (Status::Pass, "the log is empty".to_string()),
        LogCheck::First { size } => (
            Status::Pass,
            format!("first view: checkpoint of size {size} recorded for the next view"),
        ),
        LogCheck::Consistent { from, to } => (
            Status::Pass,
            format!("checkpoint of size {to} is consistent with size {from} verified before"),
        ),
        LogCheck::Inconsistent { from, to, reason } => (
            Status::Fail,
            format!(
                "checkpoint of size {to} is NOT consistent with size {from} verified before: {reason}"
            ),
        ),
    };
    let summary = detail.clone();
    control(
        id,
        title,
        vec![Evidence {
            kind: "log",
            id: log.to_string(),
            detail,
            status,
        }],
        move |_, _| summary,
    )
}

fn retention(f: &Facts<'_>) -> Control {
    let o = f.overdue;
    let mut evidence = vec![Evidence {
        kind: "setting",
        id: "body_retention_days".into(),
        detail: format!("raw bodies kept {} days", f.settings.body_retention_days),
        status: Status::Pass,
    }];
    if o.bodies + o.artifacts > 0 {
        let late = o.oldest_due.map_or(0, |d| f.now - d);
        evidence.push(Evidence {
            kind: "retention",
            id: "overdue".into(),
            detail: format!(
                "{} raw bod(ies) and {} artifact(s) past their retention are still stored; the oldest was due {} minutes ago",
                o.bodies,
                o.artifacts,
                late / 60
            ),
            status: if late > RETENTION_FAIL_SECS {
                Status::Fail
            } else {
                Status::Warn
            },
        });
    }
    control(
        "retention",
        "Data past its retention is purged on time",
        evidence,
        |s, _| match s {
            Status::Pass => "nothing is overdue for purging".into(),
            Status::Warn => "some items are overdue by more than an hour".into(),
            Status::Fail => "items are overdue by more than a day: the purge is not running".into(),
        },
    )
}

fn access_hygiene(f: &Facts<'_>) -> Control {
    let admin_role = |roles: &[Role]| {
        roles
            .iter()
            .any(|r| matches!(r, Role::TenantAdmin | Role::SecurityAdmin))
    };
    let mut evidence = Vec::new();
    let live_tokens: Vec<&TokenRecord> = f
        .tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|x| x > f.now))
        .collect();
    let live_users: Vec<&UserRecord> = f.users.iter().filter(|u| u.disabled_at.is_none()).collect();
    let admins = live_tokens.iter().filter(|t| admin_role(&t.roles)).count()
        + live_users.iter().filter(|u| admin_role(&u.roles)).count();
    evidence.push(Evidence {
        kind: "tenant",
        id: "admins".into(),
        detail: format!("{admins} active tenant-admin or security-admin principal(s)"),
        status: if admins == 0 {
            Status::Warn
        } else {
            Status::Pass
        },
    });
    for t in &live_tokens {
        let last = t.last_used_at.unwrap_or(t.created_at);
        let idle = f.now - last;
        let stale = idle > STALE_SECS;
        let admin = admin_role(&t.roles);
        let mut findings = Vec::new();
        if stale {
            findings.push(format!("unused for {} days", idle / 86_400));
        }
        if t.expires_at.is_none() {
            findings.push("never expires".to_string());
        }
        let status = match (stale, admin, t.expires_at.is_none()) {
            (true, true, _) => Status::Fail,
            (true, false, _) | (false, _, true) => Status::Warn,
            _ => Status::Pass,
        };
        let roles: Vec<&str> = t.roles.iter().map(|r| r.as_str()).collect();
        evidence.push(Evidence {
            kind: "token",
            id: t.id.clone(),
            detail: if findings.is_empty() {
                format!("{} ({}): in use", t.name, roles.join(", "))
            } else {
                format!("{} ({}): {}", t.name, roles.join(", "), findings.join(", "))
            },
            status,
        });
    }
    for u in &live_users {
        let idle = f.now - u.last_login_at.unwrap_or(u.created_at);
        if idle > STALE_SECS {
            evidence.push(Evidence {
                kind: "user",
                id: u.id.clone(),
                detail: format!("{}: no login for {} days", u.username, idle / 86_400),
                status: if admin_role(&u.roles) {
                    Status::Fail
                } else {
                    Status::Warn
                },
            });
        }
    }
    control(
        "access_hygiene",
        "Administrators exist, credentials expire and unused ones are removed",
        evidence,
        |s, e| match s {
            Status::Pass => "credentials are in use and expire".into(),
            _ => format!(
                "{} finding(s) fail, {} need attention",
                count(e, Status::Fail),
                count(e, Status::Warn)
            ),
        },
    )
}

/// Checks log `origin` against the checkpoint the previous view verified, and remembers the
/// current one when it is consistent (an inconsistent log keeps failing until investigated:
/// the remembered checkpoint is not replaced).
///
/// # Errors
/// [`crate::store::StoreError`] when the store cannot be read or written.
pub async fn check_log(
    store: &crate::store::Store,
    origin: &str,
) -> Result<LogCheck, crate::store::StoreError> {
    use crate::store::LogQueryError;
    let Some(cp) = store.checkpoint(origin)? else {
        return Ok(LogCheck::Empty);
    };
    let Some((from, root)) = store.compliance_view(origin)? else {
        store.put_compliance_view(origin, cp.size, cp.root).await?;
        return Ok(LogCheck::First { size: cp.size });
    };
    let to = cp.size;
    let inconsistent = |reason: String| LogCheck::Inconsistent { from, to, reason };
    if from > to {
        return Ok(inconsistent("the log is smaller than before".into()));
    }
    let proof = match store.consistency_proof(origin, from, to) {
        Ok(p) => p,
        Err(LogQueryError::Store(e)) => return Err(e),
        Err(e) => return Ok(inconsistent(format!("no consistency proof: {e}"))),
    };
    match crate::tlog::merkle::verify_consistency(from, to, &proof, &root, &cp.root) {
        Ok(()) => {
            if to != from {
                store.put_compliance_view(origin, to, cp.root).await?;
            }
            Ok(LogCheck::Consistent { from, to })
        }
        Err(e) => Ok(inconsistent(format!(
            "RFC 9162 consistency proof fails: {e}"
        ))),
    }
}

/// Gathers `tenant`'s facts from `store` and assesses them at `now`.
///
/// # Errors
/// [`crate::store::StoreError`].
pub async fn view(
    store: &crate::store::Store,
    config: &crate::config::Config,
    appliance_ml_secret_bytes: usize,
    tenant: &crate::identity::Tenant,
    breaker: impl Fn(&str) -> BreakerState,
    now: i64,
) -> Result<Report, crate::store::StoreError> {
    let integrations: Vec<_> = store
        .list_integrations(&tenant.id)?
        .into_iter()
        .map(|r| {
            let b = breaker(&r.id);
            (r, b)
        })
        .collect();
    let sources = store.list_sources(&tenant.id)?;
    let tokens = store.list_tokens(Some(&tenant.id))?;
    let users = store.list_users(Some(&tenant.id))?;
    let evidence_log = check_log(store, &store.origin(&tenant.id, "evidence")).await?;
    let audit_log = check_log(store, &store.origin(&tenant.id, "audit")).await?;
    let overdue = store.overdue_retention(&tenant.id, now - RETENTION_WARN_SECS)?;
    let facts = Facts {
        now,
        sources: &sources,
        appliance_ml_secret_bytes,
        default_source_rate: (config.ratelimit.per_second, config.ratelimit.burst),
        settings: tenant.settings.effective(config),
        appliance_settings: crate::identity::tenant::TenantSettings::default().effective(config),
        evidence_log,
        audit_log,
        overdue,
        tokens: &tokens,
        users: &users,
        integrations: &integrations,
    };
    Ok(assess(&facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::identity::tenant::TenantSettings;
    use crate::ingest::SecretEntry;

    const NOW: i64 = 1_800_000_000;

    fn source(provider: Provider, secret: &str, created_at: i64) -> SourceRecord {
        SourceRecord {
            id: format!("src_{}", provider.as_str()),
            tenant: "acme".into(),
            provider,
            secrets: vec![SecretEntry {
                n: 1,
                value: secret.into(),
                created_at,
                expires_at: None,
            }],
            uses_appliance_secret: false,
            max_payload_bytes: provider.default_cap(),
            generic: None,
            rate_per_second: 50,
            rate_burst: 100,
            created_at,
        }
    }

    fn facts<'a>(sources: &'a [SourceRecord], tokens: &'a [TokenRecord]) -> Facts<'a> {
        let config = Config::default();
        let settings = TenantSettings::default().effective(&config);
        Facts {
            now: NOW,
            sources,
            appliance_ml_secret_bytes: 40,
            default_source_rate: (50, 100),
            settings,
            appliance_settings: settings,
            evidence_log: LogCheck::Empty,
            audit_log: LogCheck::First { size: 3 },
            overdue: Overdue::default(),
            tokens,
            users: &[],
            integrations: &[],
        }
    }

    fn find<'a>(r: &'a Report, id: &str) -> &'a Control {
        r.controls.iter().find(|c| c.id == id).unwrap()
    }

    #[test]
    fn secrets_are_measured_as_hmac_keys_and_aged() {
        // A whsec_ secret is judged by its decoded key: 24 bytes of base64 text is 18 bytes.
        let short_whsec = source(Provider::Standard, "whsec_MDEyMzQ1Njc4OWFiY2RlZjAx", NOW);
        let long_text = source(Provider::Github, &"k".repeat(40), NOW - 91 * 86_400);
        let sources = [short_whsec, long_text];
        let r = assess(&facts(&sources, &[]));
        let c = find(&r, "webhook_signing");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.evidence[0].status, Status::Fail, "{:?}", c.evidence[0]);
        assert_eq!(c.evidence[1].status, Status::Warn, "{:?}", c.evidence[1]);
        // Replay defence: a generic source relies on the body digest only.
        let sources = [source(Provider::Generic, &"k".repeat(40), NOW)];
        let r = assess(&facts(&sources, &[]));
        assert_eq!(find(&r, "replay_defence").status, Status::Warn);
        assert_eq!(find(&r, "webhook_signing").status, Status::Pass);
        assert_eq!(r.status, Status::Warn);
    }

    #[test]
    fn access_hygiene_flags_never_expiring_and_stale_admin_tokens() {
        let token = |id: &str, roles: Vec<Role>, expires_at: Option<i64>, used: i64| TokenRecord {
            id: id.into(),
            tenant: Some("acme".into()),
            name: id.into(),
            roles,
            sha256: String::new(),
            created_at: used,
            expires_at,
            revoked_at: None,
            last_used_at: Some(used),
        };
        let fresh = token("tok_a", vec![Role::TenantAdmin], Some(NOW + 86_400), NOW);
        let r = assess(&facts(&[], std::slice::from_ref(&fresh)));
        assert_eq!(find(&r, "access_hygiene").status, Status::Pass);
        let forever = token("tok_b", vec![Role::Ingest], None, NOW);
        let r = assess(&facts(&[], &[fresh.clone(), forever]));
        assert_eq!(find(&r, "access_hygiene").status, Status::Warn);
        let stale = token(
            "tok_c",
            vec![Role::SecurityAdmin],
            Some(NOW + 86_400),
            NOW - 100 * 86_400,
        );
        let r = assess(&facts(&[], &[fresh, stale]));
        assert_eq!(find(&r, "access_hygiene").status, Status::Fail);
        // No administrator at all is a warning.
        let r = assess(&facts(&[], &[]));
        assert_eq!(find(&r, "access_hygiene").status, Status::Warn);
    }
}
