//! Run artifacts: types, allowed media types, content checks, retention defaults, and the
//! evidence-log descriptor.

use serde::{Deserialize, Serialize};

/// Artifact types (DESIGN §2) with their default retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactType {
    /// CycloneDX / SPDX JSON.
    Sbom,
    /// in-toto / DSSE JSON.
    Attestation,
    /// Plain text or NDJSON.
    Log,
    /// Job output.
    Output,
    /// Traces (JSON / NDJSON).
    Trace,
    /// Policy engine decision (JSON).
    PolicyDecision,
    /// A receipt document (JSON).
    Receipt,
}

/// How the bytes of a media type are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Json,
    Ndjson,
    Utf8,
    Any,
}

impl ArtifactType {
    /// Every type, in DESIGN order.
    pub const ALL: [ArtifactType; 7] = [
        Self::Sbom,
        Self::Attestation,
        Self::Log,
        Self::Output,
        Self::Trace,
        Self::PolicyDecision,
        Self::Receipt,
    ];

    /// Parses a wire name (`sbom`, `policy_decision`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sbom" => Self::Sbom,
            "attestation" => Self::Attestation,
            "log" => Self::Log,
            "output" => Self::Output,
            "trace" => Self::Trace,
            "policy_decision" => Self::PolicyDecision,
            "receipt" => Self::Receipt,
            _ => return None,
        })
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sbom => "sbom",
            Self::Attestation => "attestation",
            Self::Log => "log",
            Self::Output => "output",
            Self::Trace => "trace",
            Self::PolicyDecision => "policy_decision",
            Self::Receipt => "receipt",
        }
    }

    /// Default retention, days: sbom, attestation, policy_decision, receipt 2555; log 365;
    /// output 90; trace 30.
    pub fn default_retention_days(self) -> i64 {
        match self {
            Self::Sbom | Self::Attestation | Self::PolicyDecision | Self::Receipt => 2555,
            Self::Log => 365,
            Self::Output => 90,
            Self::Trace => 30,
        }
    }

    fn allowed(self) -> &'static [(&'static str, Content)] {
        use Content::*;
        match self {
            Self::Sbom => &[
                ("application/vnd.cyclonedx+json", Json),
                ("application/spdx+json", Json),
                ("application/json", Json),
            ],
            Self::Attestation => &[
                ("application/vnd.in-toto+json", Json),
                ("application/vnd.dsse.envelope.v1+json", Json),
                ("application/json", Json),
            ],
            Self::Log => &[("text/plain", Utf8), ("application/x-ndjson", Ndjson)],
            Self::Output => &[
                ("application/json", Json),
                ("text/plain", Utf8),
                ("application/octet-stream", Any),
            ],
            Self::Trace => &[("application/json", Json), ("application/x-ndjson", Ndjson)],
            Self::PolicyDecision | Self::Receipt => &[("application/json", Json)],
        }
    }

    /// Media types accepted for this type.
    pub fn allowed_media_types(self) -> Vec<&'static str> {
        self.allowed().iter().map(|(m, _)| *m).collect()
    }
}

/// Why an artifact upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// Unknown `type` (422).
    #[error("unknown artifact type {0:?}")]
    UnknownType(String),
    /// The `Content-Type` is not allowed for the type (415).
    #[error("{media_type:?} is not accepted for {ty} artifacts; use one of: {allowed}")]
    MediaTypeNotAllowed {
        /// The type.
        ty: &'static str,
        /// What was sent.
        media_type: String,
        /// What is accepted.
        allowed: String,
    },
    /// The bytes do not match the declared media type (422).
    #[error("the content does not match its media type: {0}")]
    ContentInvalid(String),
}

/// The media type's essence (`type/subtype`, lowercase, parameters dropped).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks `content_type` against the type's allow-list (before any byte is read).
///
/// # Errors
/// [`ArtifactError::MediaTypeNotAllowed`].
fn check_media_type(ty: ArtifactType, content_type: &str) -> Result<Content, ArtifactError> {
    let media = essence(content_type);
    ty.allowed()
        .iter()
        .find(|(m, _)| *m == media)
        .map(|(_, c)| *c)
        .ok_or_else(|| ArtifactError::MediaTypeNotAllowed {
            ty: ty.as_str(),
            media_type: media,
            allowed: ty.allowed_media_types().join(", "),
        })
}

/// Whether `content_type` is accepted for `ty`.
pub fn media_type_allowed(ty: ArtifactType, content_type: &str) -> bool {
    check_media_type(ty, content_type).is_ok()
}

/// Artifact bytes that passed [`check_content`]: the only form storage accepts.
#[derive(Debug, Clone)]
pub struct CheckedContent(bytes::Bytes);

impl CheckedContent {
    /// The checked bytes.
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.0
    }
}

/// Checks `content_type` against the type's allow-list and the bytes against the media type
/// (JSON parses; NDJSON: every non-empty line parses; text is UTF-8).
///
/// # Errors
/// [`ArtifactError::MediaTypeNotAllowed`], [`ArtifactError::ContentInvalid`].
pub fn check_content(
    ty: ArtifactType,
    content_type: &str,
    bytes: bytes::Bytes,
) -> Result<CheckedContent, ArtifactError> {
    check_bytes(ty, content_type, &bytes)?;
    Ok(CheckedContent(bytes))
}

fn check_bytes(ty: ArtifactType, content_type: &str, bytes: &[u8]) -> Result<(), ArtifactError> {
    match check_media_type(ty, content_type)? {
        Content::Json => serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map(|_| ())
            .map_err(|e| ArtifactError::ContentInvalid(format!("invalid JSON: {e}"))),
        Content::Ndjson => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ArtifactError::ContentInvalid("NDJSON must be UTF-8".into()))?;
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                serde_json::from_str::<serde::de::IgnoredAny>(line).map_err(|e| {
                    ArtifactError::ContentInvalid(format!("NDJSON line {}: {e}", n + 1))
                })?;
            }
            Ok(())
        }
        Content::Utf8 => std::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|e| ArtifactError::ContentInvalid(format!("text is not UTF-8: {e}"))),
        Content::Any => Ok(()),
    }
}

/// Checks a client-chosen artifact id: 1–128 of `A-Z a-z 0-9 . _ -`.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A stored artifact (metadata; the bytes are kept apart until purged).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// Artifact id (client-chosen or `art_<hex>`), unique within the run.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Pipeline run id.
    pub run_id: String,
    /// Type.
    pub ty: ArtifactType,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size, bytes.
    pub size: u64,
    /// Media type as sent.
    pub content_type: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the bytes are purged (unless on legal hold).
    pub retention_until: i64,
    /// Exempt from purging.
    pub legal_hold: bool,
    /// Whether the bytes were purged.
    pub purged: bool,
    /// Leaf index of its descriptor in the tenant's evidence log.
    pub log_index: u64,
}

impl ArtifactRecord {
    /// The evidence-log entry: JCS bytes of `{type:"artifact", runId, artifactId, sha256,
    /// contentType, size, createdAt}`.
    ///
    /// # Errors
    /// Never for well-formed records.
    pub fn descriptor(&self) -> Result<Vec<u8>, String> {
        super::jcs(&serde_json::json!({
            "type": "artifact",
            "runId": self.run_id,
            "artifactId": self.id,
            "sha256": self.sha256,
            "contentType": self.content_type,
            "size": self.size,
            "createdAt": crate::clock::rfc3339(self.created_at),
        }))
    }
}

/// Checks a run id: 1–200 of `A-Z a-z 0-9 . _ : -`.
pub fn valid_run_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_content() {
        let checked = check_content(
            ArtifactType::Sbom,
            "application/vnd.cyclonedx+json",
            bytes::Bytes::from_static(b"{}"),
        )
        .unwrap();
        assert_eq!(checked.bytes().as_ref(), b"{}");
        assert!(matches!(
            check_bytes(ArtifactType::Sbom, "text/plain", b"{}"),
            Err(ArtifactError::MediaTypeNotAllowed { .. })
        ));
        assert!(matches!(
            check_bytes(ArtifactType::Sbom, "application/json", b"{"),
            Err(ArtifactError::ContentInvalid(_))
        ));
        assert!(check_bytes(ArtifactType::Log, "text/plain; charset=utf-8", b"line\n").is_ok());
        assert!(check_bytes(ArtifactType::Log, "text/plain", b"\xff\xfe").is_err());
        assert!(
            check_bytes(
                ArtifactType::Trace,
                "application/x-ndjson",
                b"{}\n\n{\"a\":1}\n"
            )
            .is_ok()
        );
        assert!(check_bytes(ArtifactType::Trace, "application/x-ndjson", b"{}\nnope\n").is_err());
        assert!(
            check_bytes(
                ArtifactType::Output,
                "application/octet-stream",
                b"\x00\x01"
            )
            .is_ok()
        );
        assert_eq!(ArtifactType::Trace.default_retention_days(), 30);
        assert!(valid_id("sbom-1") && !valid_id("../x") && !valid_id(""));
    }
}
