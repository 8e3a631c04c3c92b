//! Users (`usr_…` → JSON [`UserRecord`], with a unique username index) and console sessions
//! (SHA-256 of the session id → JSON [`SessionRecord`], with a per-user index so a password
//! change or disabling ends every session of the user).

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::identity::session::SessionRecord;
use crate::identity::user::UserRecord;

/// What [`Store::create_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserCreation {
    /// Stored.
    Created,
    /// The username is taken (by any tenant's user).
    UsernameTaken,
}

fn put_user(b: &mut Batch<'_>, user: &UserRecord) -> Result<(), StoreError> {
    b.open_table(USERS)?
        .insert(user.id.as_str(), enc(user)?.as_slice())?;
    Ok(())
}

/// Revokes every live session of `user_id` at `now`; returns how many.
fn revoke_sessions_of(b: &mut Batch<'_>, user_id: &str, now: i64) -> Result<usize, StoreError> {
    let digests: Vec<String> = {
        let index = b.open_table(USER_SESSIONS)?;
        let mut out = Vec::new();
        for item in index.range((user_id, "")..)? {
            let (k, _) = item?;
            let (u, d) = k.value();
            if u != user_id {
                break;
            }
            out.push(d.to_string());
        }
        out
    };
    let mut sessions = b.open_table(SESSIONS)?;
    let mut index = b.open_table(USER_SESSIONS)?;
    let mut revoked = 0;
    for d in digests {
        let rec: Option<SessionRecord> = sessions
            .get(d.as_str())?
            .map(|v| dec("sessions", v.value()))
            .transpose()?;
        match rec {
            Some(mut s) if s.revoked_at.is_none() && s.expires_at > now => {
                s.revoke(now);
                sessions.insert(d.as_str(), enc(&s)?.as_slice())?;
                revoked += 1;
            }
            // Ended sessions are of no further use: drop them with their index row.
            _ => {
                sessions.remove(d.as_str())?;
                index.remove((user_id, d.as_str()))?;
            }
        }
    }
    Ok(revoked)
}

impl Store {
    /// Creates a user; the username must be free across the appliance.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn create_user(
        &self,
        user: UserRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<UserCreation, StoreError> {
        self.write(WriteClass::Data(0), move |b| {
            {
                let mut names = b.open_table(USERNAMES)?;
                if names.get(user.username.as_str())?.is_some() {
                    return Ok(UserCreation::UsernameTaken);
                }
                names.insert(user.username.as_str(), user.id.as_str())?;
            }
            put_user(b, &user)?;
            put_audit(b, &mut audit)?;
            Ok(UserCreation::Created)
        })
        .await
    }

    /// One user by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(USERS)?;
        t.get(id)?.map(|v| dec("users", v.value())).transpose()
    }

    /// One user by (canonical) username.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let r = self.read()?;
        let names = r.open_table(USERNAMES)?;
        let Some(id) = names.get(username)?.map(|v| v.value().to_string()) else {
            return Ok(None);
        };
        let t = r.open_table(USERS)?;
        t.get(id.as_str())?
            .map(|v| dec("users", v.value()))
            .transpose()
    }

    /// The users of `tenant` (`None`: appliance users), by username.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_users(&self, tenant: Option<&str>) -> Result<Vec<UserRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(USERS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            let u: UserRecord = dec("users", v.value())?;
            if u.tenant.as_deref() == tenant {
                out.push(u);
            }
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// Replaces a user record (password change, rehash, last login). With `end_sessions`
    /// every live session of the user is revoked in the same commit (password change,
    /// disabling). Returns the sessions revoked.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn update_user(
        &self,
        user: UserRecord,
        end_sessions: bool,
        now: i64,
        mut audit: Vec<AuditRecord>,
    ) -> Result<usize, StoreError> {
        self.write(WriteClass::Data(0), move |b| {
            put_user(b, &user)?;
            let revoked = if end_sessions {
                revoke_sessions_of(b, &user.id, now)?
            } else {
                0
            };
            put_audit(b, &mut audit)?;
            Ok(revoked)
        })
        .await
    }

    /// Stores a new session (a login), revoking `replaced` (the session the login request
    /// carried, if any: against session fixation) and writing `user` (its last login) in the
    /// same commit.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn start_session(
        &self,
        session: SessionRecord,
        replaced: Option<String>,
        user: UserRecord,
        now: i64,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.write(WriteClass::Data(0), move |b| {
            {
                let mut t = b.open_table(SESSIONS)?;
                if let Some(old) = replaced {
                    let rec: Option<SessionRecord> = t
                        .get(old.as_str())?
                        .map(|v| dec("sessions", v.value()))
                        .transpose()?;
                    if let Some(mut rec) = rec {
                        rec.revoke(now);
                        t.insert(old.as_str(), enc(&rec)?.as_slice())?;
                    }
                }
                t.insert(session.id_sha256.as_str(), enc(&session)?.as_slice())?;
            }
            b.open_table(USER_SESSIONS)?
                .insert((session.user_id.as_str(), session.id_sha256.as_str()), ())?;
            put_user(b, &user)?;
            put_audit(b, &mut audit)?;
            Ok(())
        })
        .await
    }

    /// One session by the SHA-256 of its id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_session(&self, id_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(SESSIONS)?;
        t.get(id_sha256)?
            .map(|v| dec("sessions", v.value()))
            .transpose()
    }

    /// Writes a session record back (last use, logout), with `audit` in the same commit.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_session(
        &self,
        session: SessionRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.write(WriteClass::Data(0), move |b| {
            b.open_table(SESSIONS)?
                .insert(session.id_sha256.as_str(), enc(&session)?.as_slice())?;
            put_audit(b, &mut audit)?;
            Ok(())
        })
        .await
    }

    /// Brings the sessions' last use up to the noted times (digest, Unix seconds); ended
    /// sessions are left as they are.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_session_use(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        self.write(WriteClass::Data(0), move |b| {
            let mut t = b.open_table(SESSIONS)?;
            for (digest, at) in uses {
                let rec: Option<SessionRecord> = t
                    .get(digest.as_str())?
                    .map(|v| dec("sessions", v.value()))
                    .transpose()?;
                if let Some(mut rec) = rec
                    && rec.revoked_at.is_none()
                    && rec.last_seen_at < at
                {
                    rec.last_seen_at = at;
                    t.insert(digest.as_str(), enc(&rec)?.as_slice())?;
                }
            }
            Ok(())
        })
        .await
    }
}
