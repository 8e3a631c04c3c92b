//! The checkpoint rule "a log never signs two inconsistent checkpoints" (DESIGN §2), kept in
//! the log's core as tessera does; storage only persists what [`next_checkpoint`] decides.

use super::merkle::Hash;
use super::note::{Checkpoint, CheckpointError};

/// Why no checkpoint may be signed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The previous signed checkpoint cannot be read back, so the guard cannot be applied.
    #[error("{origin}: the previous checkpoint cannot be parsed ({source}); refusing to sign")]
    Unparsable {
        /// Log origin.
        origin: String,
        /// Parse failure.
        source: CheckpointError,
    },
    /// The previous checkpoint names another log.
    #[error("{origin}: the previous checkpoint is for origin {found:?}; refusing to sign")]
    OtherOrigin {
        /// Log origin.
        origin: String,
        /// Origin line of the previous checkpoint.
        found: String,
    },
    /// The log is smaller than a size already signed.
    #[error("{origin}: refusing to sign size {size}: size {signed} was already signed")]
    Shrunk {
        /// Log origin.
        origin: String,
        /// Size now.
        size: u64,
        /// Size signed before.
        signed: u64,
    },
    /// The same size was signed with another root.
    #[error("{origin}: refusing to sign size {size}: it was signed with a different root")]
    Forked {
        /// Log origin.
        origin: String,
        /// Tree size.
        size: u64,
    },
}

/// The checkpoint to sign for log `origin` at `size` leaves with RFC 9162 root `root`, given
/// the previous signed note `prev` (a C2SP signed note whose text is a `tlog-checkpoint`):
/// `Ok(None)` when `prev` already covers exactly this tree.
///
/// The caller must have appended only (a larger size's root is then consistent with `prev` by
/// construction); this rule refuses everything that would contradict `prev` on its face.
///
/// # Errors
/// [`PolicyError`]: `prev` unparsable or for another origin, a smaller size, or the same size
/// with a different root.
pub fn next_checkpoint(
    origin: &str,
    prev: Option<&str>,
    size: u64,
    root: Hash,
) -> Result<Option<Checkpoint>, PolicyError> {
    if let Some(note) = prev {
        let body = match note.split_once("\n\n") {
            Some((text, _)) => format!("{text}\n"),
            None => note.to_string(),
        };
        let old = Checkpoint::parse_body(&body).map_err(|source| PolicyError::Unparsable {
            origin: origin.to_string(),
            source,
        })?;
        if old.origin != origin {
            return Err(PolicyError::OtherOrigin {
                origin: origin.to_string(),
                found: old.origin,
            });
        }
        if old.size > size {
            return Err(PolicyError::Shrunk {
                origin: origin.to_string(),
                size,
                signed: old.size,
            });
        }
        if old.size == size {
            return if old.root == root {
                Ok(None)
            } else {
                Err(PolicyError::Forked {
                    origin: origin.to_string(),
                    size,
                })
            };
        }
    }
    Ok(Some(Checkpoint {
        origin: origin.to_string(),
        size,
        root,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::note::NoteSigner;

    fn signed(origin: &str, size: u64, root: Hash) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let signer = NoteSigner::new("evidentia.test", key).unwrap();
        Checkpoint {
            origin: origin.into(),
            size,
            root,
        }
        .sign(&signer)
        .unwrap()
    }

    #[test]
    fn signs_growth_keeps_the_same_tree_and_refuses_contradictions() {
        let o = "evidentia.test/acme/evidence";
        assert_eq!(
            next_checkpoint(o, None, 1, [1; 32]).unwrap().unwrap().size,
            1
        );
        let prev = signed(o, 5, [1; 32]);
        assert_eq!(
            next_checkpoint(o, Some(&prev), 6, [2; 32])
                .unwrap()
                .unwrap()
                .size,
            6
        );
        assert!(
            next_checkpoint(o, Some(&prev), 5, [1; 32])
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            next_checkpoint(o, Some(&prev), 5, [2; 32]),
            Err(PolicyError::Forked { .. })
        ));
        assert!(matches!(
            next_checkpoint(o, Some(&prev), 4, [1; 32]),
            Err(PolicyError::Shrunk { .. })
        ));
        assert!(matches!(
            next_checkpoint("evidentia.test/other/evidence", Some(&prev), 6, [1; 32]),
            Err(PolicyError::OtherOrigin { .. })
        ));
    }

    #[test]
    fn an_unparsable_previous_checkpoint_stops_signing() {
        let o = "evidentia.test/acme/evidence";
        for junk in ["", "garbage", "evidentia.test/acme/evidence\nx\n\n— sig\n"] {
            assert!(
                matches!(
                    next_checkpoint(o, Some(junk), 6, [2; 32]),
                    Err(PolicyError::Unparsable { .. })
                ),
                "{junk:?}"
            );
        }
    }
}
