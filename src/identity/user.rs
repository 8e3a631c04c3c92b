//! People: user records, username rules and the login decision (DESIGN §3).
//!
//! A user has a globally unique username (logins name no tenant), belongs to one tenant or to
//! the appliance, holds roles like a token, and authenticates with a password kept only as an
//! argon2id PHC string ([`super::password`]). Logging in yields a console session
//! ([`super::session`]); failures feed the brute-force limits ([`super::lockout`]).

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::Role;

/// Prefix of user ids (`usr_` + 16 hex digits).
pub const USER_ID_PREFIX: &str = "usr_";
/// Shortest username, characters.
pub const USERNAME_MIN: usize = 3;
/// Longest username, characters.
pub const USERNAME_MAX: usize = 64;

/// A stored user (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// `usr_<16 hex>`.
    pub id: String,
    /// Lowercase login name, unique across the appliance.
    pub username: String,
    /// Tenant; `None` for appliance users (appliance-admin).
    pub tenant: Option<String>,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// argon2id PHC string.
    pub password_phc: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last password set (creation, change, rehash does not count).
    pub password_changed_at: i64,
    /// Unix seconds of the last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<i64>,
    /// Unix seconds of disabling: a disabled user cannot log in and has no sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
}

impl UserRecord {
    /// The audit actor (`user:usr_…`).
    pub fn actor(&self) -> String {
        format!("user:{}", self.id)
    }
}

/// Why a user cannot be created as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRequestError {
    /// The username breaks [`valid_username`] (422 `INVALID_USERNAME`).
    #[error(
        "a username is {USERNAME_MIN} to {USERNAME_MAX} of a-z 0-9 . _ - @, starting with a letter or digit"
    )]
    Username,
    /// No role, too many, or a role the scope cannot hold (422 `INVALID_ROLE`).
    #[error("{0}")]
    Roles(&'static str),
}

/// Whether `name` (already lowercased) is a valid username: 3–64 of `a-z 0-9 . _ - @`,
/// starting with a letter or digit. ASCII only, so two names never look alike.
pub fn valid_username(name: &str) -> bool {
    (USERNAME_MIN..=USERNAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The canonical form of a presented username: trimmed and ASCII-lowercased.
pub fn canonical_username(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

/// A new user record for `tenant` (None: an appliance user) with the checked roles and a
/// password already hashed. Tenant users hold tenant roles (1–8); appliance users hold
/// exactly `appliance-admin`.
///
/// # Errors
/// [`UserRequestError`].
pub fn new_user(
    tenant: Option<&str>,
    username: &str,
    roles: &[Role],
    password_phc: String,
    now: i64,
) -> Result<UserRecord, UserRequestError> {
    let username = canonical_username(username);
    if !valid_username(&username) {
        return Err(UserRequestError::Username);
    }
    let mut granted: Vec<Role> = Vec::with_capacity(roles.len());
    for r in roles {
        if !granted.contains(r) {
            granted.push(*r);
        }
    }
    match (tenant, granted.as_slice()) {
        (_, []) => return Err(UserRequestError::Roles("at least one role is required")),
        (_, g) if g.len() > super::TOKEN_ROLES_MAX => {
            return Err(UserRequestError::Roles("at most 8 roles"));
        }
        (None, [Role::ApplianceAdmin]) => {}
        (None, _) => {
            return Err(UserRequestError::Roles(
                "an appliance user holds exactly the appliance-admin role",
            ));
        }
        (Some(_), g) if g.contains(&Role::ApplianceAdmin) => {
            return Err(UserRequestError::Roles(
                "appliance-admin is not a tenant role: create an appliance user (no tenant)",
            ));
        }
        (Some(_), _) => {}
    }
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    Ok(UserRecord {
        id: format!("{USER_ID_PREFIX}{}", hex::encode(raw)),
        username,
        tenant: tenant.map(str::to_string),
        roles: granted,
        password_phc,
        created_at: now,
        password_changed_at: now,
        last_login_at: None,
        disabled_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a.b-c_d@example.org", "007", "bob42"] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in [
            "ab",
            "-alice",
            "Alice",
            "al ice",
            "älice",
            "",
            &"a".repeat(65),
        ] {
            assert!(!valid_username(bad), "{bad}");
        }
        assert_eq!(canonical_username("  Alice "), "alice");
    }

    #[test]
    fn roles_fit_the_scope() {
        let phc = || "x".to_string();
        assert!(new_user(None, "root", &[Role::ApplianceAdmin], phc(), 0).is_ok());
        assert!(new_user(None, "root", &[Role::Viewer], phc(), 0).is_err());
        assert!(new_user(Some("acme"), "al", &[Role::Viewer], phc(), 0).is_err());
        assert!(new_user(Some("acme"), "ali", &[Role::ApplianceAdmin], phc(), 0).is_err());
        assert!(new_user(Some("acme"), "ali", &[], phc(), 0).is_err());
        let u = new_user(Some("acme"), "Ali", &[Role::Viewer, Role::Viewer], phc(), 5).unwrap();
        assert_eq!(u.username, "ali");
        assert_eq!(u.roles, vec![Role::Viewer]);
        assert!(u.id.starts_with(USER_ID_PREFIX) && u.id.len() == 20);
    }
}
