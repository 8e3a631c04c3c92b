//! Audit events.
//!
//! Every request to `/api/*`, `/ai/*` and `/webhooks/*` leaves an [`AuditRecord`], failures
//! included, committed before the response is sent. Records are JSON objects with a stable field
//! set so that a later version can append their RFC 8785 canonical bytes to the tenant's `audit`
//! transparency log unchanged.
//!
//! Floods must not become disk floods: [`Aggregator`] writes the first of a run of identical
//! failures (same tenant, route, peer, status and code within one UTC minute) at once and counts
//! the rest, which are written as one summary record (`count`) when the minute ends.

pub mod access_receipt;
pub mod export;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Tenant key under which appliance-scope events (no tenant known) are kept.
pub const APPLIANCE_SCOPE: &str = "_appliance";

/// Longest value of a short audited string (actor, action, resource, signature verdict),
/// characters; longer values are cut and marked with `…`.
pub const MAX_FIELD_CHARS: usize = 256;
/// Longest audited `detail`, characters.
pub const MAX_DETAIL_CHARS: usize = 1024;

/// The audited form of an HTTP method: the RFC 9110 methods as they are, anything else `OTHER`,
/// so a client cannot make records (or aggregation keys) of arbitrary size or variety.
pub fn audited_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// `value` cut to at most `max` characters (the cut marked with a trailing `…`).
pub fn bounded(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_string();
    }
    let mut out: String = value.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl AuditRecord {
    /// Applies the length bounds to every client-influenced string of the record.
    pub fn bound(mut self) -> Self {
        self.method = audited_method(&self.method).to_string();
        self.actor = bounded(&self.actor, MAX_FIELD_CHARS);
        self.action = bounded(&self.action, MAX_FIELD_CHARS);
        self.route = bounded(&self.route, MAX_FIELD_CHARS);
        self.peer = bounded(&self.peer, MAX_FIELD_CHARS);
        self.request_id = bounded(&self.request_id, MAX_FIELD_CHARS);
        self.code = self.code.map(|c| bounded(&c, MAX_FIELD_CHARS));
        self.signature = self.signature.map(|c| bounded(&c, MAX_FIELD_CHARS));
        self.resource = self.resource.map(|c| bounded(&c, MAX_FIELD_CHARS));
        self.detail = self.detail.map(|c| bounded(&c, MAX_DETAIL_CHARS));
        self
    }
}

/// Which audit records a listing returns (every given criterion must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact actor (`token:tok_…`, `user:usr_…`, `source:src_…`, `anonymous`).
    pub actor: Option<String>,
    /// Exact action (`events.body.read`, `webhook.ingest`, …).
    pub action: Option<String>,
    /// Exact HTTP status.
    pub status: Option<u16>,
    /// At or after, Unix seconds.
    pub since: Option<i64>,
    /// Before, Unix seconds.
    pub until: Option<i64>,
}

/// Most records one filtered listing examines before it answers with what it found and a
/// cursor to go on from, so a filter matching little cannot make a page scan the whole log.
pub const MAX_AUDIT_SCAN: usize = 20_000;

impl AuditFilter {
    /// Unix seconds of a record's `time` (RFC 3339); records the appliance wrote always parse.
    fn time_of(r: &AuditRecord) -> Option<i64> {
        time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(time::OffsetDateTime::unix_timestamp)
    }

    /// Whether `r` passes every criterion.
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let t = Self::time_of(r);
        self.actor.as_ref().is_none_or(|a| *a == r.actor)
            && self.action.as_ref().is_none_or(|a| *a == r.action)
            && self.status.is_none_or(|s| s == r.status)
            && self.since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| t.is_some_and(|t| t < u))
    }

    /// Whether `r` is older than the range: records are appended in time order, so a
    /// newest-first scan can stop there (with a minute of slack for aggregated summaries,
    /// which are written up to a minute after the records they count).
    pub fn ends_before(&self, r: &AuditRecord) -> bool {
        match (self.since, Self::time_of(r)) {
            (Some(s), Some(t)) => t < s.saturating_sub(120),
            _ => false,
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// Position in the tenant's audit trail (assigned at commit).
    pub index: u64,
    /// RFC 3339 UTC time.
    pub time: String,
    /// Tenant id, or `_appliance`.
    pub tenant: String,
    /// `token:tok_…`, `source:src_…`, or `anonymous`.
    pub actor: String,
    /// Operation (`webhook.ingest`, `tenant.create`, `events.read`, …).
    pub action: String,
    /// HTTP method.
    pub method: String,
    /// Matched route template (`/webhooks/{source}/events`).
    pub route: String,
    /// HTTP status answered.
    pub status: u16,
    /// Problem `code` when the answer was an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Socket peer address (or the trusted proxy's client).
    pub peer: String,
    /// Request id (`X-Request-Id` of the response).
    pub request_id: String,
    /// Signature verdict for ingestion: `valid`, `invalid`, `missing`, `not_checked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The resource acted on (`evt_…`, `src_…`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Free-form detail (never secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For aggregated records: how many identical events this record stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The Cedar decision that let the request in or refused it (absent for routes that are
    /// authenticated otherwise, such as signed webhooks, and for requests refused before
    /// authorization).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authz: Option<AuthzNote>,
    /// For sensitive reads: the `rid` of the signed access receipt answered with the bytes
    /// ([`access_receipt`]), whose `audit` claim names this record's leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_receipt: Option<String>,
}

/// The authorization decision of a request, as audited (DESIGN §3): which action was
/// decided, the verdict, the policies that determined it, and the SHA-256 of the policy set
/// in force ([`crate::authz::policy_set_sha256`]), so a record proves which rules applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AuthzNote {
    /// `allow` or `deny`.
    pub decision: String,
    /// Ids of the determining policies: the satisfied permits when allowed, the satisfied
    /// forbids when denied by one; empty when denied for want of a permit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Lowercase hex SHA-256 of the policy set (64 characters).
    pub policy_set: String,
}

impl From<&crate::authz::Decision> for AuthzNote {
    fn from(d: &crate::authz::Decision) -> Self {
        Self {
            decision: d.verdict().to_string(),
            policies: d
                .policies
                .iter()
                .map(|p| bounded(p, MAX_FIELD_CHARS))
                .collect(),
            policy_set: d.policy_set_sha256.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AggKey {
    /// Reads only: what was read (failures are keyed by actor and peer, not resource, so a
    /// probe with random ids still collapses).
    read: Option<Option<String>>,
    /// Who failed: an authenticated token is never credited with another one's failures (every
    /// unauthenticated caller is `anonymous`, so a probe with random tokens still collapses).
    actor: String,
    tenant: String,
    method: String,
    route: String,
    peer: String,
    status: u16,
    code: Option<String>,
    minute: i64,
}

#[derive(Debug)]
struct AggEntry {
    template: AuditRecord,
    suppressed: u64,
    /// Every suppressed record had the template's resource.
    same_resource: bool,
}

/// Collapses repeated identical failures into one record per key and minute.
#[derive(Debug, Default)]
pub struct Aggregator {
    entries: Mutex<HashMap<AggKey, AggEntry>>,
}

/// What to do with a failure record.
#[derive(Debug, PartialEq, Eq)]
pub enum AggDecision {
    /// First of its kind this minute: write it now.
    Write,
    /// Counted; a summary will be written when the minute ends.
    Suppressed,
}

impl Aggregator {
    /// Registers `record` (a failure) seen at `now_unix`.
    pub fn observe(&self, record: &AuditRecord, now_unix: i64) -> AggDecision {
        self.observe_key(record, now_unix, None)
    }

    /// Registers `record` (a successful read, aggregated while the data volume is below its
    /// free-space floor) seen at `now_unix`: keyed also by actor and resource, so the records
    /// still say who read what.
    pub fn observe_read(&self, record: &AuditRecord, now_unix: i64) -> AggDecision {
        self.observe_key(record, now_unix, Some(record.resource.clone()))
    }

    fn observe_key(
        &self,
        record: &AuditRecord,
        now_unix: i64,
        read: Option<Option<String>>,
    ) -> AggDecision {
        let key = AggKey {
            read,
            actor: record.actor.clone(),
            tenant: record.tenant.clone(),
            method: record.method.clone(),
            route: record.route.clone(),
            peer: record.peer.clone(),
            status: record.status,
            code: record.code.clone(),
            minute: now_unix.div_euclid(60),
        };
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match map.get_mut(&key) {
            Some(entry) => {
                entry.suppressed += 1;
                entry.same_resource &= entry.template.resource == record.resource;
                AggDecision::Suppressed
            }
            None => {
                map.insert(
                    key,
                    AggEntry {
                        template: record.clone(),
                        suppressed: 0,
                        same_resource: true,
                    },
                );
                AggDecision::Write
            }
        }
    }

    /// Takes the summaries of minutes that ended before `now_unix` (all of them when `all`):
    /// one record per key with `count` = the number of suppressed events.
    pub fn drain(&self, now_unix: i64, all: bool) -> Vec<AuditRecord> {
        let minute = now_unix.div_euclid(60);
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let done: Vec<AggKey> = map
            .keys()
            .filter(|k| all || k.minute < minute)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for key in done {
            if let Some(entry) = map.remove(&key)
                && entry.suppressed > 0
            {
                let mut rec = entry.template;
                rec.count = Some(entry.suppressed);
                let minute = crate::clock::rfc3339(key.minute * 60);
                rec.detail = Some(if entry.same_resource {
                    format!(
                        "{} further identical events in minute starting {minute}",
                        entry.suppressed
                    )
                } else {
                    // The summary names no resource rather than the first one's.
                    rec.resource = None;
                    format!(
                        "{} further events like this one, on different resources, in minute starting {minute}",
                        entry.suppressed
                    )
                });
                rec.request_id = String::new();
                out.push(rec);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_and_long_strings_are_bounded() {
        let rec = AuditRecord {
            method: "M".repeat(60_000),
            action: format!("{} /api/x", "M".repeat(60_000)),
            detail: Some("d".repeat(5000)),
            ..Default::default()
        }
        .bound();
        assert_eq!(rec.method, "OTHER");
        assert_eq!(rec.action.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(
            rec.detail.map(|d| d.chars().count()),
            Some(MAX_DETAIL_CHARS)
        );
        assert_eq!(audited_method("PATCH"), "PATCH");
        assert_eq!(audited_method("patch"), "OTHER");
    }

    #[test]
    fn aggregates_per_key_and_minute() {
        let agg = Aggregator::default();
        let rec = AuditRecord {
            tenant: "acme".into(),
            route: "/webhooks/{source}/events".into(),
            peer: "127.0.0.1".into(),
            status: 429,
            code: Some("RATE_LIMITED".into()),
            ..Default::default()
        };
        assert_eq!(agg.observe(&rec, 120), AggDecision::Write);
        for _ in 0..5 {
            assert_eq!(agg.observe(&rec, 125), AggDecision::Suppressed);
        }
        assert!(agg.drain(130, false).is_empty());
        let out = agg.drain(180, false);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, Some(5));
        assert_eq!(agg.observe(&rec, 181), AggDecision::Write);
    }

    #[test]
    fn summaries_never_credit_one_token_with_another_or_name_one_resource_for_many() {
        let agg = Aggregator::default();
        let rec = |actor: &str, resource: &str| AuditRecord {
            tenant: "_appliance".into(),
            actor: actor.into(),
            route: "/api/admin/tokens/{id}".into(),
            peer: "127.0.0.1".into(),
            status: 404,
            code: Some("NOT_FOUND".into()),
            resource: Some(resource.into()),
            ..Default::default()
        };
        assert_eq!(
            agg.observe(&rec("token:tok_a", "tok_0"), 120),
            AggDecision::Write
        );
        assert_eq!(
            agg.observe(&rec("token:tok_b", "tok_1"), 121),
            AggDecision::Write
        );
        assert_eq!(
            agg.observe(&rec("token:tok_b", "tok_2"), 122),
            AggDecision::Suppressed
        );
        assert_eq!(
            agg.observe(&rec("token:tok_a", "tok_0"), 123),
            AggDecision::Suppressed
        );
        // Unauthenticated probes still collapse into one.
        assert_eq!(agg.observe(&rec("anonymous", "x"), 124), AggDecision::Write);
        assert_eq!(
            agg.observe(&rec("anonymous", "y"), 125),
            AggDecision::Suppressed
        );
        let mut out = agg.drain(180, false);
        out.sort_by(|x, y| x.actor.cmp(&y.actor));
        assert_eq!(out.len(), 3);
        assert_eq!(
            (out[0].actor.as_str(), out[0].resource.as_deref()),
            ("anonymous", None)
        );
        assert_eq!(
            (out[1].actor.as_str(), out[1].resource.as_deref()),
            ("token:tok_a", Some("tok_0"))
        );
        assert_eq!(
            (out[2].actor.as_str(), out[2].resource.as_deref()),
            ("token:tok_b", None)
        );
        assert!(
            out[2]
                .detail
                .as_deref()
                .unwrap()
                .contains("different resources")
        );
    }
}
