//! Per-tenant extra policies: bounded, parsed, template-free, validated strictly against the
//! schema together with the defaults, and rejected with Cedar's diagnostics as data.

use std::str::FromStr;

use cedar_policy as cedar;
use miette::Diagnostic;
use serde::{Deserialize, Serialize};

use super::DEFAULT_POLICIES;
use super::engine::{CompiledSet, DEFAULT_ID_PREFIX, policy_set_sha256};
use crate::identity::valid_tenant_id;

/// Longest accepted policy text, in characters (Unicode scalar values, as the OpenAPI
/// `maxLength` of the text counts them): at most 40,000 bytes of UTF-8.
pub const MAX_TENANT_POLICY_CHARS: usize = 10_000;
/// Most policies one tenant may add.
pub const MAX_TENANT_POLICIES: usize = 100;
/// Deepest nesting accepted in a policy: brackets (`(`, `[`, `{`) open at once plus the `if`s
/// of the statement so far. Cedar parses (and evaluates, and drops) expressions recursively,
/// so an unbounded depth would overflow a worker's stack: 35 nested parentheses did in a
/// debug build.
pub const MAX_TENANT_POLICY_DEPTH: usize = 16;

/// Whether a diagnostic refuses the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Refused.
    Error,
    /// Accepted, but worth a look (Cedar validation warnings other than bidirectional
    /// control characters, which are errors here).
    Warning,
}

/// A place in the policy text a diagnostic points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticSpan {
    /// Byte offset from the start of the text.
    pub offset: usize,
    /// Length in bytes.
    pub length: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// 1-based column (in characters) of `offset`.
    pub column: usize,
    /// What Cedar says about this place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One Cedar diagnostic (parse error, validation error or warning), as data for a 422
/// problem body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDiagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Cedar's diagnostic code, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Cedar's message.
    pub message: String,
    /// Cedar's suggestion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The policy concerned: `policy <n>` (0-based position in the text) and its `@id`
    /// annotation when present, e.g. `policy 2 (@id "no-trace")`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Where in the text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<DiagnosticSpan>,
}

impl PolicyDiagnostic {
    pub(crate) fn plain(severity: Severity, message: String) -> Self {
        Self {
            severity,
            code: None,
            message,
            help: None,
            policy: None,
            spans: Vec::new(),
        }
    }
}

/// Why a tenant's policy text was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TenantPolicyError {
    /// Not a valid tenant id.
    #[error("invalid tenant id")]
    InvalidTenant,
    /// Over [`MAX_TENANT_POLICY_CHARS`].
    #[error("policy text is {chars} characters, more than {max}")]
    TooLarge {
        /// Length of the text in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than [`MAX_TENANT_POLICY_DEPTH`].
    #[error("expressions nested {depth} deep at line {line}, more than {max}")]
    TooDeep {
        /// The depth reached.
        depth: usize,
        /// 1-based line where it was reached.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// A control or bidirectional control character (other than tab and line breaks), which
    /// can hide text from a reviewer ("Trojan Source", CVE-2021-42574).
    #[error("a {class} character (U+{code:04X}) at line {line}")]
    HiddenCharacter {
        /// `control` or `bidi control`.
        class: &'static str,
        /// Its code point.
        code: u32,
        /// 1-based line.
        line: usize,
    },
    /// Over [`MAX_TENANT_POLICIES`].
    #[error("{count} policies, more than {max}")]
    TooMany {
        /// Policies in the text.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Cedar refused the text (parse or strict validation errors, or templates).
    #[error("{} policy error(s)", error_count(.0))]
    Rejected(Vec<PolicyDiagnostic>),
}

impl TenantPolicyError {
    /// The diagnostics to show (for limits, one synthesised error).
    pub fn diagnostics(&self) -> Vec<PolicyDiagnostic> {
        match self {
            Self::Rejected(d) => d.clone(),
            other => vec![PolicyDiagnostic::plain(Severity::Error, other.to_string())],
        }
    }
}

fn error_count(d: &[PolicyDiagnostic]) -> usize {
    d.iter().filter(|d| d.severity == Severity::Error).count()
}

/// A tenant's policy text, compiled and validated, ready for
/// [`crate::authz::Authorizer::install_tenant_policies`].
#[derive(Debug)]
pub struct TenantPolicies {
    tenant: String,
    text: String,
    sha256: String,
    count: usize,
    warnings: Vec<PolicyDiagnostic>,
    compiled: Option<CompiledSet>,
}

impl TenantPolicies {
    /// Tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The policy text as submitted.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Digest of the resulting policy set (what decisions in this tenant will name).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Number of policies in the text.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Validation warnings (accepted).
    pub fn warnings(&self) -> &[PolicyDiagnostic] {
        &self.warnings
    }

    /// The record the store persists (`updated_at` in Unix seconds, `updated_by` the audit
    /// actor).
    pub fn record(&self, updated_at: i64, updated_by: &str) -> TenantPolicyRecord {
        TenantPolicyRecord {
            tenant: self.tenant.clone(),
            text: self.text.clone(),
            sha256: self.sha256.clone(),
            updated_at,
            updated_by: updated_by.to_string(),
        }
    }

    pub(crate) fn into_compiled(self) -> (String, Option<CompiledSet>) {
        (self.tenant, self.compiled)
    }
}

/// A tenant's stored policies (one per tenant; the store persists it, the server re-compiles
/// it at start with [`crate::authz::Authorizer::load_tenant_policies`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantPolicyRecord {
    /// Tenant id.
    pub tenant: String,
    /// Cedar policy text.
    pub text: String,
    /// [`crate::authz::policy_set_sha256`] of the set it makes.
    pub sha256: String,
    /// Unix seconds.
    pub updated_at: i64,
    /// Audit actor (`user:…`, `token:…`).
    pub updated_by: String,
}

/// 1-based (line, column) of byte `offset` in `src`.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(src.len());
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    let before = &src[..end];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before, |i| &before[i + 1..])
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Flattens a Cedar diagnostic (and its related ones) into data. `src` (the text the spans
/// point into) gives lines and columns.
pub(crate) fn diagnostics_of(
    d: &dyn Diagnostic,
    severity: Severity,
    policy: Option<String>,
    src: Option<&str>,
) -> Vec<PolicyDiagnostic> {
    let spans = d
        .labels()
        .map(|labels| {
            labels
                .map(|l| {
                    let (line, column) = src.map_or((0, 0), |s| line_col(s, l.offset()));
                    DiagnosticSpan {
                        offset: l.offset(),
                        length: l.len(),
                        line,
                        column,
                        label: l.label().map(str::to_string),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![PolicyDiagnostic {
        severity,
        code: d.code().map(|c| c.to_string()),
        message: d.to_string(),
        help: d.help().map(|h| h.to_string()),
        policy: policy.clone(),
        spans,
    }];
    if let Some(related) = d.related() {
        for r in related {
            out.extend(diagnostics_of(r, severity, policy.clone(), src));
        }
    }
    out
}

/// See [`crate::authz::Authorizer::compile_tenant_policies`].
/// Refuses hidden characters anywhere and nesting deeper than [`MAX_TENANT_POLICY_DEPTH`],
/// before Cedar's recursive parser sees the text. String literals (with `\` escapes) and `//`
/// comments are skipped for the depth, not for the characters.
fn check_shape(text: &str) -> Result<(), TenantPolicyError> {
    let mut line = 1;
    let (mut brackets, mut ifs) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let hidden = |c: char, line: usize| match crate::text::forbidden_class(c) {
        Some(class @ ("control" | "bidi control")) if !matches!(c, '\t' | '\n' | '\r') => {
            Err(TenantPolicyError::HiddenCharacter {
                class,
                code: c as u32,
                line,
            })
        }
        _ => Ok(()),
    };
    while let Some(c) = chars.next() {
        hidden(c, line)?;
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word == "if" {
            ifs += 1;
        }
        word.clear();
        match c {
            '\n' => line += 1,
            '"' => {
                while let Some(s) = chars.next() {
                    hidden(s, line)?;
                    match s {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                hidden(e, line)?;
                            }
                        }
                        '"' => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for s in chars.by_ref() {
                    hidden(s, line)?;
                    if s == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '(' | '[' | '{' => brackets += 1,
            ')' | ']' | '}' => brackets = brackets.saturating_sub(1),
            ';' if brackets == 0 => ifs = 0,
            _ => {}
        }
        if brackets + ifs > MAX_TENANT_POLICY_DEPTH {
            return Err(TenantPolicyError::TooDeep {
                depth: brackets + ifs,
                line,
                max: MAX_TENANT_POLICY_DEPTH,
            });
        }
    }
    Ok(())
}

pub(crate) fn compile(
    schema: &cedar::Schema,
    schema_text: &str,
    defaults: &cedar::PolicySet,
    tenant: &str,
    text: &str,
) -> Result<TenantPolicies, TenantPolicyError> {
    if !valid_tenant_id(tenant) {
        return Err(TenantPolicyError::InvalidTenant);
    }
    // Counting characters stops one past the limit: bounded work for any text.
    let chars = text.chars().take(MAX_TENANT_POLICY_CHARS + 1).count();
    if chars > MAX_TENANT_POLICY_CHARS {
        return Err(TenantPolicyError::TooLarge {
            chars: text.chars().count(),
            max: MAX_TENANT_POLICY_CHARS,
        });
    }
    check_shape(text)?;
    if text.trim().is_empty() {
        return Ok(TenantPolicies {
            tenant: tenant.to_string(),
            text: text.to_string(),
            sha256: policy_set_sha256(schema_text, DEFAULT_POLICIES, "", ""),
            count: 0,
            warnings: Vec::new(),
            compiled: None,
        });
    }
    let parsed = cedar::PolicySet::from_str(text).map_err(|errs| {
        TenantPolicyError::Rejected(
            errs.iter()
                .flat_map(|e| diagnostics_of(e, Severity::Error, None, Some(text)))
                .collect(),
        )
    })?;
    if parsed.templates().next().is_some() {
        return Err(TenantPolicyError::Rejected(vec![PolicyDiagnostic::plain(
            Severity::Error,
            "templates (policies with ?principal or ?resource slots) are not accepted as \
             tenant policies"
                .to_string(),
        )]));
    }
    // Parsed ids are `policy<n>` in text order.
    let mut policies: Vec<(usize, &cedar::Policy)> = parsed
        .policies()
        .map(|p| {
            let n = p
                .id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (n, p)
        })
        .collect();
    policies.sort_by_key(|(n, _)| *n);
    if policies.len() > MAX_TENANT_POLICIES {
        return Err(TenantPolicyError::TooMany {
            count: policies.len(),
            max: MAX_TENANT_POLICIES,
        });
    }
    let mut set = defaults.clone();
    let mut labels = Vec::with_capacity(policies.len());
    let prefix = format!("tenant.{tenant}.");
    for (pos, (_, policy)) in policies.iter().enumerate() {
        let label = match policy.annotation("id") {
            Some(id) => format!("policy {pos} (@id {id:?})"),
            None => format!("policy {pos}"),
        };
        let id = cedar::PolicyId::new(format!("{prefix}{pos}"));
        set.add(policy.new_id(id)).map_err(|e| {
            TenantPolicyError::Rejected(diagnostics_of(
                &e,
                Severity::Error,
                Some(label.clone()),
                Some(text),
            ))
        })?;
        labels.push(label);
    }
    let label_of = |id: &cedar::PolicyId| -> Option<String> {
        let id = id.to_string();
        if id.starts_with(DEFAULT_ID_PREFIX) {
            return Some(format!("default policy {id}"));
        }
        id.strip_prefix(&prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| labels.get(n).cloned())
    };
    let result =
        cedar::Validator::new(schema.clone()).validate(&set, cedar::ValidationMode::Strict);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for e in result.validation_errors() {
        errors.extend(diagnostics_of(
            e,
            Severity::Error,
            label_of(e.policy_id()),
            Some(text),
        ));
    }
    for w in result.validation_warnings() {
        let fatal = matches!(
            w,
            cedar::ValidationWarning::BidiCharsInString(_)
                | cedar::ValidationWarning::BidiCharsInIdentifier(_)
        );
        let severity = if fatal {
            Severity::Error
        } else {
            Severity::Warning
        };
        let d = diagnostics_of(w, severity, label_of(w.policy_id()), Some(text));
        if fatal {
            errors.extend(d);
        } else {
            warnings.extend(d);
        }
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return Err(TenantPolicyError::Rejected(errors));
    }
    let sha256 = policy_set_sha256(schema_text, DEFAULT_POLICIES, tenant, text);
    Ok(TenantPolicies {
        tenant: tenant.to_string(),
        text: text.to_string(),
        count: policies.len(),
        warnings,
        compiled: Some(CompiledSet::new(set, sha256.clone())),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_and_column() {
        let s = "ab\ncdé\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 3), (2, 1));
        assert_eq!(line_col(s, 7), (2, 4));
        assert_eq!(line_col(s, 8), (3, 1));
        assert_eq!(line_col(s, 999), (3, 2));
    }
}
