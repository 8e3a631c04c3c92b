//! Audit exports (`GET …/audit/export`): a zip that proves a range of a tenant's audit trail
//! offline, format `evidentia-audit-export/v1`.
//!
//! | member | content |
//! |---|---|
//! | `events.jsonl` | one audit record per line, each line exactly the leaf entry as appended to the log (RFC 8785 JSON) |
//! | `proofs.jsonl` | per record, `{"index", "leaf_hash", "inclusion_proof"}`: its RFC 9162 §2.1.3 inclusion proof in the tree of the checkpoint's size (base64 hashes) |
//! | `checkpoint.txt` | the log's C2SP signed checkpoint those proofs lead to |
//! | `manifest.json` | RFC 8785 JSON `{format, origin, tenant, tree_size, first_index, count, files: {name: sha256}}` |
//!
//! [`crate::verify::verify_audit_export`] (`evidentia verify audit-export`) checks every part:
//! the manifest is canonical and its digests match, the checkpoint verifies with the pinned key
//! and names the manifest's log, every line's leaf hash is SHA-256(0x00 ‖ line) at consecutive
//! indexes from `first_index`, and every inclusion proof leads to the checkpoint's root.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `format` of the manifest.
pub const FORMAT: &str = "evidentia-audit-export/v1";
/// Most records in one export (page on with `from`).
pub const MAX_RECORDS: u64 = 10_000;
/// Member names.
pub const EVENTS: &str = "events.jsonl";
/// Member names.
pub const PROOFS: &str = "proofs.jsonl";
/// Member names.
pub const CHECKPOINT: &str = "checkpoint.txt";
/// Member names.
pub const MANIFEST: &str = "manifest.json";

/// The manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Origin of the audit log (`<appliance>/<tenant>/audit`, or `<appliance>/system`).
    pub origin: String,
    /// Tenant id (`_appliance` for the system log).
    pub tenant: String,
    /// Size of the tree the checkpoint signs.
    pub tree_size: u64,
    /// Index of the first record.
    pub first_index: u64,
    /// Number of records.
    pub count: u64,
    /// Lowercase hex SHA-256 of each other member.
    pub files: std::collections::BTreeMap<String, String>,
}

/// One line of `proofs.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofLine {
    /// Leaf index.
    pub index: u64,
    /// Base64 leaf hash, SHA-256(0x00 ‖ entry).
    pub leaf_hash: String,
    /// Base64 proof hashes.
    pub inclusion_proof: Vec<String>,
}

/// What an export is made of.
#[derive(Debug)]
pub struct ExportParts<'a> {
    /// Log origin.
    pub origin: &'a str,
    /// Tenant id.
    pub tenant: &'a str,
    /// Checkpoint text (signed note) of size `tree_size`.
    pub checkpoint: &'a str,
    /// Its size.
    pub tree_size: u64,
    /// Index of the first entry.
    pub first_index: u64,
    /// (entry bytes, leaf hash, inclusion proof) per record, in index order.
    pub entries: Vec<crate::store::ProvenEntry>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds the zip (deflated members, fixed timestamps: the same parts give the same bytes).
///
/// # Errors
/// A message if zip writing or JSON encoding fails (not expected in memory).
pub fn build(parts: &ExportParts<'_>) -> Result<Vec<u8>, String> {
    let mut events = Vec::new();
    let mut proofs = Vec::new();
    for (i, (entry, leaf, proof)) in parts.entries.iter().enumerate() {
        events.extend_from_slice(entry);
        events.push(b'\n');
        let line = ProofLine {
            index: parts.first_index + i as u64,
            leaf_hash: B64.encode(leaf),
            inclusion_proof: proof.iter().map(|h| B64.encode(h)).collect(),
        };
        serde_json::to_writer(&mut proofs, &line).map_err(|e| e.to_string())?;
        proofs.push(b'\n');
    }
    let checkpoint = parts.checkpoint.as_bytes();
    let manifest = Manifest {
        format: FORMAT.into(),
        origin: parts.origin.into(),
        tenant: parts.tenant.into(),
        tree_size: parts.tree_size,
        first_index: parts.first_index,
        count: parts.entries.len() as u64,
        files: [
            (EVENTS.to_string(), sha256_hex(&events)),
            (PROOFS.to_string(), sha256_hex(&proofs)),
            (CHECKPOINT.to_string(), sha256_hex(checkpoint)),
        ]
        .into_iter()
        .collect(),
    };
    let manifest = serde_json_canonicalizer::to_vec(&manifest).map_err(|e| e.to_string())?;
    pack(&manifest, &events, &proofs, checkpoint)
}

/// The zip of the four members, always laid out the same way (order, deflate, fixed
/// timestamps): a verifier repacks what it read and compares, so no byte of the container
/// can change unnoticed either.
///
/// # Errors
/// A message if zip writing fails (not expected in memory).
pub fn pack(
    manifest: &[u8],
    events: &[u8],
    proofs: &[u8],
    checkpoint: &[u8],
) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in [
        (MANIFEST, manifest),
        (EVENTS, events),
        (PROOFS, proofs),
        (CHECKPOINT, checkpoint),
    ] {
        zip.start_file(name, options).map_err(|e| e.to_string())?;
        zip.write_all(bytes).map_err(|e| e.to_string())?;
    }
    zip.finish()
        .map(std::io::Cursor::into_inner)
        .map_err(|e| e.to_string())
}
