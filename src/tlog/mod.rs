//! Transparency logs: RFC 9162 Merkle trees and C2SP signed checkpoints.
//!
//! * [`merkle`] — the RFC 9162 §2.1 Merkle tree: leaf and node hashing, appends that store only
//!   complete subtrees, roots and inclusion / consistency proofs for any past tree size in
//!   O(log n) node reads, and the RFC 9162 §2.1.3.2 / §2.1.4.2 proof verifiers.
//! * [`note`] — C2SP `signed-note` (Ed25519) signing and verification, verifier key strings and
//!   the C2SP `tlog-checkpoint` body.
//! * [`policy`] — [`next_checkpoint`]: which checkpoint a commit may sign (never two
//!   inconsistent ones).
//!
//! The module depends only on `sha2`, `ed25519-dalek`, `base64` and `thiserror`; storage is
//! abstracted by [`merkle::NodeReader`].

pub mod merkle;
pub mod note;
pub mod policy;

pub use merkle::{Hash, NodeReader};
pub use note::{Checkpoint, NoteSigner, VerifierKey};
pub use policy::{PolicyError, next_checkpoint};
