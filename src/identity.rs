//! Tenants, roles and API tokens.
//!
//! API tokens have the form `evd_<16 hex id><48 hex secret><8 hex CRC-32>` (76 characters):
//! the id locates the stored record, the secret carries 192 bits of CSPRNG entropy, and the
//! CRC-32 (over everything before it) lets typos be rejected without a database read. Only the
//! SHA-256 of the whole token is stored; presented tokens are compared with it in constant time.
//!
//! People: [`password`] (argon2id PHC hashes), [`session`] (console sessions and CSRF tokens),
//! [`lockout`] (login brute-force limits), [`user`] (user records and username rules).

pub mod approval;
pub mod lockout;
pub mod login;
pub mod password;
pub mod session;
pub mod tenant;
pub mod user;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "evd_";
const TOKEN_ID_HEX: usize = 16;
const TOKEN_SECRET_HEX: usize = 48;
const TOKEN_CRC_HEX: usize = 8;
/// Length of a well-formed token, in characters.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + TOKEN_ID_HEX + TOKEN_SECRET_HEX + TOKEN_CRC_HEX;

/// Id of the tenant that exists from first start.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant: the unit of isolation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tenant {
    /// `[a-z0-9-]{2,63}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it is served.
    pub status: tenant::TenantStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Why it was last suspended or reactivated (as given by the appliance-admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// When the status last changed, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_changed_at: Option<i64>,
    /// The tenant's own settings (unset ones follow the appliance configuration).
    #[serde(default)]
    pub settings: tenant::TenantSettings,
}

impl Tenant {
    /// A new, active tenant with no settings of its own, created at unix second `now`.
    pub fn new(id: String, name: String, now: i64) -> Self {
        Self {
            id,
            name,
            status: tenant::TenantStatus::Active,
            created_at: now,
            status_reason: None,
            status_changed_at: None,
            settings: tenant::TenantSettings::default(),
        }
    }
}

/// Checks a tenant id: 2–63 characters of `a-z`, `0-9`, `-`.
pub fn valid_tenant_id(id: &str) -> bool {
    (2..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A role a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, every tenant.
    ApplianceAdmin,
    /// Manage tokens, sources; read everything of the tenant; decide insights.
    TenantAdmin,
    /// Read every record of the tenant, hold artifacts, approve exports and deletions.
    ComplianceOfficer,
    /// Own the security controls (secrets, keys, tokens, policies, integrations, plugins).
    SecurityAdmin,
    /// Run the pipelines day to day (rotate secrets, decide insights, operate integrations).
    Operator,
    /// Investigate events, artifacts and receipts.
    Analyst,
    /// Machine token for pipelines (receipts, artifacts).
    Ingest,
    /// Read events and insights.
    Viewer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::ApplianceAdmin,
        Role::TenantAdmin,
        Role::ComplianceOfficer,
        Role::SecurityAdmin,
        Role::Operator,
        Role::Analyst,
        Role::Viewer,
        Role::Ingest,
    ];

    /// The role's wire name (`tenant-admin`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ApplianceAdmin => "appliance-admin",
            Role::TenantAdmin => "tenant-admin",
            Role::ComplianceOfficer => "compliance-officer",
            Role::SecurityAdmin => "security-admin",
            Role::Operator => "operator",
            Role::Analyst => "analyst",
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "appliance-admin" => Role::ApplianceAdmin,
            "tenant-admin" => Role::TenantAdmin,
            "compliance-officer" => Role::ComplianceOfficer,
            "security-admin" => Role::SecurityAdmin,
            "operator" => Role::Operator,
            "analyst" => Role::Analyst,
            "ingest" => Role::Ingest,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
}

/// A stored API token (the secret itself is never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// `tok_<16 hex>`.
    pub id: String,
    /// Tenant the token acts in; `None` for appliance-admin tokens.
    pub tenant: Option<String>,
    /// Human label.
    pub name: String,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// Lowercase hex SHA-256 of the whole token string.
    pub sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` = never.
    pub expires_at: Option<i64>,
    /// Unix seconds of revocation.
    pub revoked_at: Option<i64>,
    /// Unix seconds of the last use, to within [`TOKEN_USE_GRANULARITY`] seconds (recorded by
    /// [`TokenUse`], not on every request); `None` = never used since this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

/// How stale a token's `last_used_at` may be before a use is recorded again, seconds: one write
/// per token per hour at most, whatever its request rate.
pub const TOKEN_USE_GRANULARITY: i64 = 3600;

/// Uses of tokens seen since the last flush, token id → Unix seconds of the latest use. The
/// request path only updates this map; the server writes it to the token records in one batch
/// every few minutes and at shutdown (`last_used_at` is coarse by design: an access-hygiene
/// signal, "unused for 90 days", not an audit trail — the audit log is that).
#[derive(Debug, Default)]
pub struct TokenUse {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl TokenUse {
    /// Notes that `record` authenticated a request at `now`, unless its stored `last_used_at`
    /// is fresher than [`TOKEN_USE_GRANULARITY`].
    pub fn observe(&self, record: &TokenRecord, now: i64) {
        if record
            .last_used_at
            .is_some_and(|t| now.saturating_sub(t) < TOKEN_USE_GRANULARITY)
        {
            return;
        }
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match seen.get_mut(&record.id) {
            Some(at) => *at = (*at).max(now),
            None => {
                seen.insert(record.id.clone(), now);
            }
        }
    }

    /// Takes the uses noted so far.
    pub fn drain(&self) -> Vec<(String, i64)> {
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        seen.drain().collect()
    }
}

/// A freshly minted token: the record to store and the secret string to show once.
pub struct NewToken {
    /// What to store.
    pub record: TokenRecord,
    /// The token, shown once.
    pub token: String,
}

/// Generates a well-formed token string.
pub fn generate_token_string() -> String {
    let mut id = [0u8; TOKEN_ID_HEX / 2];
    let mut secret = [0u8; TOKEN_SECRET_HEX / 2];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let body = format!("{TOKEN_PREFIX}{}{}", hex::encode(id), hex::encode(secret));
    let crc = crc32fast::hash(body.as_bytes());
    format!("{body}{crc:08x}")
}

/// Parses a token string; returns the record id (`tok_<hex>`) when its shape and CRC hold.
pub fn parse_token(token: &str) -> Option<String> {
    if token.len() != TOKEN_LEN || !token.starts_with(TOKEN_PREFIX) {
        return None;
    }
    let rest = &token[TOKEN_PREFIX.len()..];
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let (body, crc) = token.split_at(TOKEN_LEN - TOKEN_CRC_HEX);
    let want = format!("{:08x}", crc32fast::hash(body.as_bytes()));
    if want != crc {
        return None;
    }
    Some(format!("tok_{}", &rest[..TOKEN_ID_HEX]))
}

/// Lowercase hex SHA-256 of a token string.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Mints a token record for `tenant` (None = appliance scope).
pub fn mint_token(
    tenant: Option<&str>,
    name: &str,
    roles: Vec<Role>,
    now: i64,
    expires_at: Option<i64>,
) -> NewToken {
    let token = generate_token_string();
    record_for_token(token, tenant, name, roles, now, expires_at)
}

/// Longest token label, characters.
pub const TOKEN_NAME_MAX: usize = 100;
/// Most roles one token carries.
pub const TOKEN_ROLES_MAX: usize = 8;
/// Lifetime of a token issued without `expires_in_days`, days.
pub const TOKEN_DAYS_DEFAULT: u32 = 90;
/// Longest token lifetime, days.
pub const TOKEN_DAYS_MAX: u32 = 3650;

/// Why a token cannot be issued as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    /// The label breaks the display-name rules (422 `INVALID_NAME` and kin).
    #[error(transparent)]
    Name(#[from] crate::text::TextError),
    /// No role, more than [`TOKEN_ROLES_MAX`], or a role the scope cannot hold (422
    /// `INVALID_ROLE`).
    #[error("{0}")]
    Roles(&'static str),
    /// `expires_in_days` outside 1–[`TOKEN_DAYS_MAX`] (422 `INVALID_EXPIRY`).
    #[error("expires_in_days must be 1 to 3650")]
    Expiry,
}

/// Issues a token: `tenant` `None` is the appliance scope, whose tokens hold exactly the
/// `appliance-admin` role; tenant tokens hold tenant roles (a repeated role counts once). The
/// token expires after `expires_in_days` (default [`TOKEN_DAYS_DEFAULT`]) from `now` (Unix
/// seconds).
///
/// # Errors
/// [`TokenRequestError`] naming the rule broken.
pub fn issue_token(
    tenant: Option<&str>,
    name: &str,
    roles: &[Role],
    expires_in_days: Option<u32>,
    now: i64,
) -> Result<NewToken, TokenRequestError> {
    let name = crate::text::display_name("name", name, TOKEN_NAME_MAX)?;
    if roles.len() > TOKEN_ROLES_MAX {
        return Err(TokenRequestError::Roles("at most 8 roles"));
    }
    let mut granted: Vec<Role> = Vec::with_capacity(roles.len());
    for r in roles {
        if !granted.contains(r) {
            granted.push(*r);
        }
    }
    if granted.is_empty() {
        return Err(TokenRequestError::Roles("at least one role is required"));
    }
    let admin = granted.contains(&Role::ApplianceAdmin);
    match tenant {
        None if granted != [Role::ApplianceAdmin] => {
            return Err(TokenRequestError::Roles(
                "an appliance-scope token holds exactly the appliance-admin role",
            ));
        }
        Some(_) if admin => {
            return Err(TokenRequestError::Roles(
                "a tenant token cannot hold the appliance-admin role",
            ));
        }
        _ => {}
    }
    let days = expires_in_days.unwrap_or(TOKEN_DAYS_DEFAULT);
    if !(1..=TOKEN_DAYS_MAX).contains(&days) {
        return Err(TokenRequestError::Expiry);
    }
    let expires_at = now.saturating_add(i64::from(days) * 86_400);
    Ok(mint_token(tenant, &name, granted, now, Some(expires_at)))
}

/// Whether `record` is an appliance-admin token that still works at `now`.
pub fn is_active_admin(record: &TokenRecord, now: i64) -> bool {
    record.tenant.is_none()
        && record.roles.contains(&Role::ApplianceAdmin)
        && record.revoked_at.is_none()
        && record.expires_at.is_none_or(|e| now < e)
}

/// Whether revoking `target` still leaves an appliance-admin token that works at `now`
/// among `all` (the tokens of the appliance scope). Revoking the last one through the API
/// would lock every administrator out; `evidentia admin token` on the host is the way back
/// (it may revoke the last one, once it has issued another).
pub fn revocation_keeps_an_admin(target: &TokenRecord, all: &[TokenRecord], now: i64) -> bool {
    !is_active_admin(target, now)
        || all
            .iter()
            .any(|t| t.id != target.id && is_active_admin(t, now))
}

/// Builds the record for a given (already well-formed) token string.
pub fn record_for_token(
    token: String,
    tenant: Option<&str>,
    name: &str,
    roles: Vec<Role>,
    now: i64,
    expires_at: Option<i64>,
) -> NewToken {
    let id = parse_token(&token).unwrap_or_else(|| format!("tok_{}", &token_digest(&token)[..16]));
    NewToken {
        record: TokenRecord {
            id,
            tenant: tenant.map(str::to_string),
            name: name.to_string(),
            roles,
            sha256: token_digest(&token),
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        },
        token,
    }
}

/// Why a presented token was refused (all answered 401 alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not of the `evd_` shape or bad checksum.
    Malformed,
    /// No such token, or digest mismatch.
    Unknown,
    /// Revoked.
    Revoked,
    /// Past `expires_at`.
    Expired,
}

/// Checks a presented token against its stored record: digest compared in constant time,
/// then revocation and expiry at `now` (Unix seconds).
pub fn check_token(presented: &str, record: &TokenRecord, now: i64) -> Result<(), TokenRefusal> {
    let digest = token_digest(presented);
    if !bool::from(digest.as_bytes().ct_eq(record.sha256.as_bytes())) {
        return Err(TokenRefusal::Unknown);
    }
    if record.revoked_at.is_some() {
        return Err(TokenRefusal::Revoked);
    }
    if record.expires_at.is_some_and(|e| now >= e) {
        return Err(TokenRefusal::Expired);
    }
    Ok(())
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token (`Authorization: Bearer evd_…`).
    Token,
    /// A console session cookie; holds the SHA-256 of the session id (the store key), so
    /// logout can end exactly this session.
    Session {
        /// Lowercase hex SHA-256 of the session id.
        id_sha256: String,
    },
}

/// An authenticated caller: a token or a logged-in user.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `tok_…` for tokens, `usr_…` for users.
    pub id: String,
    /// What authenticated the request.
    pub credential: Credential,
    /// Tenant scope; `None` = appliance.
    pub tenant: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
}

impl Principal {
    /// Audit actor string (`token:tok_…` or `user:usr_…`).
    pub fn actor(&self) -> String {
        match self.credential {
            Credential::Token => format!("token:{}", self.id),
            Credential::Session { .. } => format!("user:{}", self.id),
        }
    }

    /// Whether a user (through a session) rather than a token.
    pub fn is_user(&self) -> bool {
        matches!(self.credential, Credential::Session { .. })
    }

    /// True for appliance administrators.
    pub fn is_appliance_admin(&self) -> bool {
        self.roles.contains(&Role::ApplianceAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_and_checksum() {
        let t = generate_token_string();
        assert_eq!(t.len(), TOKEN_LEN);
        let id = parse_token(&t).unwrap();
        assert!(id.starts_with("tok_"));
        // Flip one character: the checksum catches it.
        let mut bad = t.clone().into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse_token(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(parse_token("evd_short"), None);
        assert_eq!(parse_token(&t.to_uppercase()), None);
    }

    #[test]
    fn check_token_rules() {
        let n = mint_token(Some("acme"), "ci", vec![Role::Ingest], 100, Some(200));
        assert_eq!(check_token(&n.token, &n.record, 150), Ok(()));
        assert_eq!(
            check_token(&n.token, &n.record, 200),
            Err(TokenRefusal::Expired)
        );
        let other = generate_token_string();
        assert_eq!(
            check_token(&other, &n.record, 150),
            Err(TokenRefusal::Unknown)
        );
        let mut revoked = n.record.clone();
        revoked.revoked_at = Some(120);
        assert_eq!(
            check_token(&n.token, &revoked, 150),
            Err(TokenRefusal::Revoked)
        );
    }

    #[test]
    fn tenant_ids() {
        assert!(valid_tenant_id("acme"));
        assert!(valid_tenant_id("a-1"));
        assert!(!valid_tenant_id("a"));
        assert!(!valid_tenant_id("Acme"));
        assert!(!valid_tenant_id("acme_corp"));
        assert!(!valid_tenant_id(&"a".repeat(64)));
    }
}
