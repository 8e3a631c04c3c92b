//! The signed-history guard: a transparency log must never have two inconsistent signed
//! checkpoints for one origin (RFC 9162 §2.1.4; C2SP tlog-checkpoint). The database holds the
//! logs; if it is lost (deleted, truncated, replaced by an empty one) while the signing key
//! stays, starting afresh would sign new size-1 checkpoints for origins whose larger
//! checkpoints verifiers already hold: a fork under one key.
//!
//! So the data directory keeps, beside the database, the list of origin prefixes its
//! databases have signed for ([`HISTORY_FILE`], JSON `{"origin_prefixes": […]}`, written
//! atomically after the first bootstrap). An empty database in a directory with a history is
//! refused at start; the operator either restores the database or starts with
//! `evidentia serve --new-log-identity`, which gives the new logs the next unused prefix
//! `<appliance name>/<n>` (n = 2, 3, …), so no origin ever gets a second history. Losing the
//! whole data directory with an externally supplied key is not detectable here (the README's
//! recovery section says what to do then).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File in the data directory that lists the origin prefixes signed for.
pub const HISTORY_FILE: &str = "signed-history.json";

/// Why the history cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file exists but cannot be read or parsed (it is never silently replaced).
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The origin prefixes this data directory's databases have signed checkpoints for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHistory {
    /// Oldest first.
    pub origin_prefixes: Vec<String>,
}

/// What to do at start, from the history and the database's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartDecision {
    /// Open the logs under this database's own prefix (or, for a new database in a new
    /// directory, the appliance name).
    Continue,
    /// A new database where logs were signed before, with the operator's consent: new logs
    /// under this prefix.
    NewIdentity(String),
    /// A new database where logs were signed before, without consent: do not start.
    Refuse(String),
}

impl SignedHistory {
    /// Reads the history of `data_dir` (empty when the file does not exist).
    ///
    /// # Errors
    /// [`HistoryError::Read`] for an unreadable or malformed file.
    pub fn load(data_dir: &Path) -> Result<Self, HistoryError> {
        let path = data_dir.join(HISTORY_FILE);
        let read_err = |message: String| HistoryError::Read {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| read_err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(read_err(e.to_string())),
        }
    }

    /// Writes the history of `data_dir` atomically (temp file, fsync, rename; mode 0600).
    ///
    /// # Errors
    /// [`HistoryError::Write`].
    pub fn save(&self, data_dir: &Path) -> Result<(), HistoryError> {
        let path = data_dir.join(HISTORY_FILE);
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        crate::config::write_private_file(&path, &bytes).map_err(|source| HistoryError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Adds `prefix` if it is not listed; whether it was added.
    pub fn record(&mut self, prefix: &str) -> bool {
        if self.origin_prefixes.iter().any(|p| p == prefix) {
            return false;
        }
        self.origin_prefixes.push(prefix.to_string());
        true
    }

    /// The first of `name/2`, `name/3`, … not yet listed.
    pub fn next_prefix(&self, name: &str) -> String {
        (2u64..)
            .map(|n| format!("{name}/{n}"))
            .find(|p| !self.origin_prefixes.contains(p))
            .unwrap_or_else(|| format!("{name}/{}", self.origin_prefixes.len() + 2))
    }

    /// Decides the start: `bootstrapped` says whether the database already holds its logs,
    /// `new_identity` whether the operator asked for new logs (`--new-log-identity`), `name`
    /// is the appliance name, `db` the database file (for the message).
    pub fn decide(
        &self,
        bootstrapped: bool,
        new_identity: bool,
        name: &str,
        db: &Path,
    ) -> StartDecision {
        if bootstrapped || self.origin_prefixes.is_empty() {
            return StartDecision::Continue;
        }
        if new_identity {
            return StartDecision::NewIdentity(self.next_prefix(name));
        }
        StartDecision::Refuse(format!(
            "the database {} is empty, but logs of this data directory were signed before \
             (origin prefixes {}, listed in {HISTORY_FILE}): starting would sign a second, \
             inconsistent history for the same origins with the same key. Restore the \
             database from a backup, or start once with `evidentia serve --new-log-identity` \
             to begin new logs under the new origin prefix {}",
            db.display(),
            self.origin_prefixes.join(", "),
            self.next_prefix(name)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let db = Path::new("/d/evidentia.redb");
        let empty = SignedHistory::default();
        assert_eq!(
            empty.decide(false, false, "ev", db),
            StartDecision::Continue
        );
        let mut h = SignedHistory::default();
        assert!(h.record("ev"));
        assert!(!h.record("ev"));
        assert_eq!(h.decide(true, false, "ev", db), StartDecision::Continue);
        assert_eq!(h.decide(true, true, "ev", db), StartDecision::Continue);
        assert!(
            matches!(h.decide(false, false, "ev", db), StartDecision::Refuse(m) if m.contains("--new-log-identity") && m.contains("ev/2"))
        );
        assert_eq!(
            h.decide(false, true, "ev", db),
            StartDecision::NewIdentity("ev/2".into())
        );
        h.record("ev/2");
        assert_eq!(h.next_prefix("ev"), "ev/3");
    }

    #[test]
    fn round_trip_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            SignedHistory::load(dir.path()).unwrap(),
            SignedHistory::default()
        );
        let mut h = SignedHistory::default();
        h.record("ev");
        h.save(dir.path()).unwrap();
        assert_eq!(SignedHistory::load(dir.path()).unwrap(), h);
        std::fs::write(dir.path().join(HISTORY_FILE), b"{\"origin_prefixes\": 3}").unwrap();
        assert!(matches!(
            SignedHistory::load(dir.path()),
            Err(HistoryError::Read { .. })
        ));
    }
}
