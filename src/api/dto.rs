//! Wire types shared by several handlers: the enums of the API (each a closed set in the
//! OpenAPI document and a serde type for strict input), RFC 3339 timestamps, and the final touches
//! the generated document gets (the `X-Request-Id` header on every response).

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::evidence::ArtifactType;
use crate::identity::Role;
use crate::ingest::{InsightStatus, Provider, SigEncoding};

/// An RFC 3339 timestamp (UTC, `format: date-time`) from Unix seconds.
pub fn ts(unix_seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

macro_rules! wire_enum {
    ($(#[doc = $doc:literal])+ $name:ident => $domain:ty { $( $(#[doc = $vdoc:literal])+ $variant:ident = $wire:literal => $dv:path ),+ $(,)? }) => {
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

/// Final touches on the generated OpenAPI document: every response documents `X-Request-Id`.
pub fn finish_spec(doc: &mut serde_json::Value) {
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
