//! Wire types shared by several handlers: the enums of the API (each a closed set in the
//! OpenAPI document and a serde type for strict input), RFC 3339 timestamps, and the final touches
//! the generated document gets (the `X-Request-Id` header on every response).

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::delivery::IntegrationKind;
use crate::evidence::ArtifactType;
use crate::identity::Role;
use crate::ingest::{InsightStatus, Provider, SigEncoding};

/// An RFC 3339 timestamp (UTC, `format: date-time`) from Unix seconds.
pub fn ts(unix_seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A closed set on the wire (an OpenAPI enum and a strict serde type) mapped to its domain type:
/// `wire_enum!` both ways; `wire_enum!(input …)` only into the domain, for an input that admits
/// a subset of the domain's values.
macro_rules! wire_enum {
    (input $(#[doc = $doc:literal])+ $name:ident => $domain:ty { $( $(#[doc = $vdoc:literal])+ $variant:ident = $wire:literal => $dv:path ),+ $(,)? }) => {
        $(#[doc = $doc])+
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[doc = $vdoc])+ #[oai(rename = $wire)] #[serde(rename = $wire)] $variant, )+
        }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self {
                match v { $($name::$variant => $dv,)+ }
            }
        }
    };
    ($(#[doc = $doc:literal])+ $name:ident => $domain:ty { $( $(#[doc = $vdoc:literal])+ $variant:ident = $wire:literal => $dv:path ),+ $(,)? }) => {
        wire_enum! { input $(#[doc = $doc])+ $name => $domain { $( $(#[doc = $vdoc])+ $variant = $wire => $dv ),+ } }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self {
                match v { $($dv => $name::$variant,)+ }
            }
        }
    };
}

wire_enum! {
    /// The provider scheme of a webhook source (DESIGN §1).
    ProviderName => Provider {
        /// Standard Webhooks v1 (Svix).
        Standard = "standard" => Provider::Standard,
        /// GitHub `X-Hub-Signature-256`.
        Github = "github" => Provider::Github,
        /// Stripe `Stripe-Signature`.
        Stripe = "stripe" => Provider::Stripe,
        /// Slack `X-Slack-Signature` (v0).
        Slack = "slack" => Provider::Slack,
        /// Shopify `X-Shopify-Hmac-Sha256`.
        Shopify = "shopify" => Provider::Shopify,
        /// A configurable HMAC-SHA256 header.
        Generic = "generic" => Provider::Generic,
        /// ML model output on `/ai/webhook`.
        Ml = "ml" => Provider::Ml,
    }
}

wire_enum! {
    /// What an integration sends and how.
    KindName => IntegrationKind {
        /// Standard Webhooks v1 messages signed with a `whsec_` secret.
        Webhook = "webhook" => IntegrationKind::Webhook,
        /// OCSF 1.3 events (API Activity 6003, Authentication 3002, Detection Finding 2004;
        /// checkpoints as Base Event), signed like webhooks.
        SiemOcsf = "siem-ocsf" => IntegrationKind::SiemOcsf,
        /// Splunk HTTP Event Collector envelopes with `Authorization: Splunk <token>`.
        SplunkHec = "splunk-hec" => IntegrationKind::SplunkHec,
    }
}

wire_enum! {
    /// A role of an API token.
    RoleName => Role {
        /// Everything, in every tenant (appliance tokens only).
        ApplianceAdmin = "appliance-admin" => Role::ApplianceAdmin,
        /// Manage the tenant's tokens and sources, read everything, decide insights.
        TenantAdmin = "tenant-admin" => Role::TenantAdmin,
        /// Read every record of the tenant, hold artifacts, approve exports and deletions.
        ComplianceOfficer = "compliance-officer" => Role::ComplianceOfficer,
        /// Own the security controls: secrets, keys, tokens, policies, integrations, plugins.
        SecurityAdmin = "security-admin" => Role::SecurityAdmin,
        /// Run the pipelines day to day: rotate secrets, decide insights, operate integrations.
        Operator = "operator" => Role::Operator,
        /// Investigate events, artifacts and receipts.
        Analyst = "analyst" => Role::Analyst,
        /// Machine token for pipelines: artifacts and receipts.
        Ingest = "ingest" => Role::Ingest,
        /// Read events, insights and evidence.
        Viewer = "viewer" => Role::Viewer,
    }
}

wire_enum! {
    input
    /// A role a tenant token can be given: every role but `appliance-admin`.
    TenantRoleName => Role {
        /// Manage the tenant's tokens and sources, read everything, decide insights.
        TenantAdmin = "tenant-admin" => Role::TenantAdmin,
        /// Read every record of the tenant, hold artifacts, approve exports and deletions.
        ComplianceOfficer = "compliance-officer" => Role::ComplianceOfficer,
        /// Own the security controls: secrets, keys, tokens, policies, integrations, plugins.
        SecurityAdmin = "security-admin" => Role::SecurityAdmin,
        /// Run the pipelines day to day: rotate secrets, decide insights, operate integrations.
        Operator = "operator" => Role::Operator,
        /// Investigate events, artifacts and receipts.
        Analyst = "analyst" => Role::Analyst,
        /// Machine token for pipelines: artifacts and receipts.
        Ingest = "ingest" => Role::Ingest,
        /// Read events, insights and evidence.
        Viewer = "viewer" => Role::Viewer,
    }
}

wire_enum! {
    /// Review state of an ML insight.
    InsightState => InsightStatus {
        /// Awaiting review.
        Pending = "PENDING" => InsightStatus::Pending,
        /// Approved by a reviewer.
        Approved = "APPROVED" => InsightStatus::Approved,
        /// Rejected by a reviewer.
        Rejected = "REJECTED" => InsightStatus::Rejected,
    }
}

wire_enum! {
    /// Encoding of a generic source's signature header.
    EncodingName => SigEncoding {
        /// Hexadecimal (either case).
        Hex = "hex" => SigEncoding::Hex,
        /// Standard base64.
        Base64 = "base64" => SigEncoding::Base64,
    }
}

wire_enum! {
    /// Artifact types (DESIGN §2); each accepts its own media types and has its own retention.
    ArtifactKind => ArtifactType {
        /// CycloneDX or SPDX JSON (retention 2555 days).
        Sbom = "sbom" => ArtifactType::Sbom,
        /// in-toto or DSSE JSON (2555 days).
        Attestation = "attestation" => ArtifactType::Attestation,
        /// Plain text or NDJSON (365 days).
        Log = "log" => ArtifactType::Log,
        /// Job output, any media type (90 days).
        Output = "output" => ArtifactType::Output,
        /// Traces, JSON or NDJSON (30 days).
        Trace = "trace" => ArtifactType::Trace,
        /// A policy engine decision, JSON (2555 days).
        PolicyDecision = "policy_decision" => ArtifactType::PolicyDecision,
        /// A receipt document, JSON (2555 days).
        Receipt = "receipt" => ArtifactType::Receipt,
    }
}

/// A reviewer's verdict on an insight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
pub enum Verdict {
    /// Accept the insight.
    #[oai(rename = "approve")]
    #[serde(rename = "approve")]
    Approve,
    /// Refuse the insight.
    #[oai(rename = "reject")]
    #[serde(rename = "reject")]
    Reject,
}

impl Verdict {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// The algorithm of a tenant receipt-signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
pub enum KeyAlg {
    /// HMAC-SHA256 with a shared secret.
    #[oai(rename = "HS256")]
    #[serde(rename = "HS256")]
    Hs256,
    /// Ed25519 (RFC 8032) with a registered public key.
    #[oai(rename = "EdDSA")]
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl KeyAlg {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::Hs256 => "HS256",
            KeyAlg::EdDsa => "EdDSA",
        }
    }

    /// Parses a stored wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HS256" => Some(KeyAlg::Hs256),
            "EdDSA" => Some(KeyAlg::EdDsa),
            _ => None,
        }
    }
}

/// Which of a tenant's transparency logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum LogName {
    /// Artifacts, receipts and notarised deliveries.
    #[oai(rename = "evidence")]
    Evidence,
    /// The tenant's audit records.
    #[oai(rename = "audit")]
    Audit,
}

impl LogName {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogName::Evidence => "evidence",
            LogName::Audit => "audit",
        }
    }
}

/// Whether a checkpoint-signing key is the one in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum KeyStatus {
    /// Signs new checkpoints.
    #[oai(rename = "active")]
    Active,
    /// Replaced; kept listed so old checkpoints still verify.
    #[oai(rename = "retired")]
    Retired,
}

/// `v` with every object's keys in sorted order, so the document is byte-identical whether or
/// not a build enables serde_json's `preserve_order` (a dev-dependency does for test builds).
pub fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

/// Final touches on the generated OpenAPI document: every response documents `X-Request-Id`,
/// and a described reference is `allOf` of the reference alone.
pub fn finish_spec(doc: &mut serde_json::Value) {
    access_receipt_headers(doc);
    single_ref_all_of(doc);
    integer_bounds(doc);
    close_request_schemas(doc);
    name_patterns(doc);
    let header = serde_json::json!({
        "description": "The request id (`req_…`), also in the audit record of the request",
        "required": true,
        "schema": {"type": "string", "pattern": "^req_[0-9a-f]{32}$"}
    });
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for ops in paths.values_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            for resp in responses.values_mut() {
                if let Some(obj) = resp.as_object_mut() {
                    let headers = obj
                        .entry("headers")
                        .or_insert_with(|| serde_json::json!({}));
                    if let Some(h) = headers.as_object_mut() {
                        h.insert("X-Request-Id".into(), header.clone());
                    }
                }
            }
        }
    }
}

/// The 200 answers of sensitive reads document the `Evidentia-Access-Receipt` header.
fn access_receipt_headers(doc: &mut serde_json::Value) {
    let header = serde_json::json!({
        "description": "Signed access receipt of this read (JWS compact, EdDSA, typ \
                        `evidentia-access-receipt+jwt`): principal, action, resource, SHA-256 \
                        of the answer, decision, policy set and the audit-log leaf that \
                        recorded the read; `evidentia verify access-receipt` checks it offline",
        "required": true,
        "schema": {"type": "string"}
    });
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let sensitive = matches!(
                crate::authz::route_access(method, path),
                Some(crate::authz::RouteAccess::Decided(a)) if a.spec().sensitive
            );
            let Some(ok) = op
                .pointer_mut("/responses/200")
                .and_then(|r| r.as_object_mut())
                .filter(|_| sensitive)
            else {
                continue;
            };
            if let Some(h) = ok
                .entry("headers")
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
            {
                h.insert(crate::audit::access_receipt::HEADER.into(), header.clone());
            }
        }
    }
}

/// Request schemas the server reads openly: a receipt keeps unknown members (they are covered by
/// its signature), so its schema does not say `additionalProperties: false`.
const OPEN_REQUEST_SCHEMAS: &[&str] = &["Receipt"];

/// Display names the server checks with [`crate::text::display_name`]: (schema, property, most
/// characters). Their pattern is [`crate::text::name_pattern`].
pub const NAME_PROPERTIES: &[(&str, &str, usize)] = &[
    ("CreateTenant", "name", super::tenants::TENANT_NAME_MAX),
    ("CreateToken", "name", crate::identity::TOKEN_NAME_MAX),
    ("CreateAdminToken", "name", crate::identity::TOKEN_NAME_MAX),
    (
        "TenantStatusChange",
        "reason",
        crate::identity::tenant::MAX_STATUS_REASON_CHARS,
    ),
];

/// Every integer gets the `minimum` and `maximum` of its `format` where the type does not say
/// narrower ones: the server refuses what does not fit (400 `INVALID_PARAMETER` or
/// `INVALID_BODY`), and the document says so.
fn integer_bounds(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(obj) => {
            if obj.get("type").and_then(|t| t.as_str()) == Some("integer") {
                let bounds: Option<(serde_json::Value, serde_json::Value)> =
                    match obj.get("format").and_then(|f| f.as_str()) {
                        Some("uint8") => Some((0.into(), u8::MAX.into())),
                        Some("uint16") => Some((0.into(), u16::MAX.into())),
                        Some("uint32") => Some((0.into(), u32::MAX.into())),
                        Some("uint64") => Some((0.into(), u64::MAX.into())),
                        Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                        Some("int64") => Some((i64::MIN.into(), i64::MAX.into())),
                        _ => None,
                    };
                if let Some((min, max)) = bounds {
                    obj.entry("minimum").or_insert(min);
                    obj.entry("maximum").or_insert(max);
                }
            }
            obj.values_mut().for_each(integer_bounds);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integer_bounds),
        _ => {}
    }
}

/// `additionalProperties: false` on every object schema a JSON request body reaches (through
/// `$ref`, properties and items): [`super::json::StrictJson`] answers an unknown member with
/// 400 `INVALID_BODY`. poem-openapi's `deny_unknown_fields` does not write it. Maps (schemas with
/// their own `additionalProperties`) and [`OPEN_REQUEST_SCHEMAS`] are left as they are.
fn close_request_schemas(doc: &mut serde_json::Value) {
    let mut pending: Vec<String> = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
        for op in paths
            .values()
            .filter_map(|o| o.as_object())
            .flat_map(|o| o.values())
        {
            if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                collect_refs(schema, &mut pending);
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    let mut closed = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if OPEN_REQUEST_SCHEMAS.contains(&name.as_str()) || !closed.insert(name.clone()) {
            continue;
        }
        let Some(schema) = schemas.get_mut(&name).and_then(|s| s.as_object_mut()) else {
            continue;
        };
        if schema.get("type").and_then(|t| t.as_str()) == Some("object")
            && schema.contains_key("properties")
        {
            schema
                .entry("additionalProperties")
                .or_insert(serde_json::Value::Bool(false));
        }
        if let Some(props) = schema.get("properties") {
            collect_refs(props, &mut pending);
        }
    }
}

/// The component names `value` refers to (`#/components/schemas/NAME`), at any depth.
fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(obj) => {
            if let Some(name) = obj
                .get("$ref")
                .and_then(|r| r.as_str())
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_string());
            }
            obj.values().for_each(|v| collect_refs(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The pattern of each display name in [`NAME_PROPERTIES`]: the characters and the length the
/// server accepts (see [`crate::text::name_pattern`] for why the length is in the pattern), so
/// a client, or a property-based tester, can tell a valid name in advance.
fn name_patterns(doc: &mut serde_json::Value) {
    for (schema, property, max) in NAME_PROPERTIES {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        if let Some(prop) = doc.pointer_mut(&pointer).and_then(|p| p.as_object_mut()) {
            prop.insert("pattern".into(), crate::text::name_pattern(*max).into());
        }
    }
}

/// poem-openapi writes a documented field of a named type as
/// `{"allOf": [{"$ref": …}, {"description": D}], "description": D}` (OpenAPI 3.0 ignores
/// siblings of `$ref`). The description-only member says nothing the outer `description` does
/// not, yet generators read a two-member `allOf` as a composed object and cannot compose an enum
/// (openapi-python-client drops every schema that has one). This rewrites each such `allOf` to
/// its reference alone, keeping the outer description.
fn single_ref_all_of(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(obj) => {
            if let Some(serde_json::Value::Array(members)) = obj.get_mut("allOf") {
                let described_ref = members.len() == 2
                    && members[0].get("$ref").is_some()
                    && members[1]
                        .as_object()
                        .is_some_and(|m| m.keys().all(|k| k == "description"));
                if described_ref {
                    members.truncate(1);
                }
            }
            for v in obj.values_mut() {
                single_ref_all_of(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(single_ref_all_of),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn all_ofs<'a>(value: &'a Value, out: &mut Vec<&'a Vec<Value>>) {
        match value {
            Value::Object(obj) => {
                if let Some(Value::Array(members)) = obj.get("allOf") {
                    out.push(members);
                }
                obj.values().for_each(|v| all_ofs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| all_ofs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn described_references_are_a_single_member_all_of() {
        let spec: Value = serde_json::from_str(&crate::api::openapi_json()).unwrap();
        let mut found = Vec::new();
        all_ofs(&spec, &mut found);
        assert!(!found.is_empty());
        for members in found {
            assert_eq!(members.len(), 1, "{members:?}");
            assert!(members[0].get("$ref").is_some(), "{members:?}");
        }
        let status = &spec["components"]["schemas"]["TenantDto"]["properties"]["status"];
        assert_eq!(
            status["allOf"][0]["$ref"],
            "#/components/schemas/TenantStatus"
        );
        assert_eq!(status["description"], "Whether the tenant is served.");
    }
}
