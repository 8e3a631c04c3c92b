//! Signed access receipts: a statement, signed by the appliance, that `sub` performed `act` on
//! a resource of `tenant` with the given bytes (`res.sha256`), under the policy set
//! `policyset`, with the decision `dec`, recorded as leaf `audit.index` of the audit log
//! `audit.log`.
//!
//! Format: a JWS compact serialization (RFC 7515 §7.1) signed with Ed25519 (`alg` `EdDSA`,
//! RFC 8037), protected header `{"alg":"EdDSA","kid":…,"typ":"evidentia-access-receipt+jwt"}`
//! (explicit typing, RFC 8725 §3.11), payload the JSON claims [`AccessClaims`]. Sent in the
//! [`HEADER`] response header and the `receipt` field of JSON bodies.
//!
//! Verification ([`verify`]) is offline against the appliance's public key: exactly three
//! base64url segments without padding, the header exactly as above, `verify_strict`
//! signature, claims with no unknown fields, `v` = 1 and `kid` equal in header and claims. The
//! audit leaf can then be checked ([`verify_audit_leaf`]) with an RFC 9162 inclusion proof
//! against a C2SP signed checkpoint of that log.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::{self, Checkpoint, VerifierKey};

/// Response header carrying the receipt.
pub const HEADER: &str = "Evidentia-Access-Receipt";
/// JWS `typ`.
pub const TYP: &str = "evidentia-access-receipt+jwt";
/// JWS `alg`.
pub const ALG: &str = "EdDSA";
/// Claims version.
pub const VERSION: u32 = 1;
/// Longest receipt [`verify`] reads, in bytes.
pub const MAX_RECEIPT_BYTES: usize = 16 * 1024;

/// The resource a receipt speaks of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceClaim {
    /// Cedar entity type (`Event`, `Artifact`, `Receipt`, `Tenant`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Entity id.
    pub id: String,
    /// Lowercase hex SHA-256 of the bytes sent (the response body).
    pub sha256: String,
}

/// Where the access was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditClaim {
    /// Origin of the audit log (`<appliance>/<tenant>/audit`).
    pub log: String,
    /// Leaf index of the audit record.
    pub index: u64,
    /// Standard base64 of the leaf hash, SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1).
    pub leaf_hash: String,
}

/// The signed claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    /// Claims version, [`VERSION`].
    pub v: u32,
    /// Receipt id, `ar_` + 32 hex (128 random bits); also written in the audit record.
    pub rid: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Issuer: the appliance name.
    pub iss: String,
    /// Signing key id (as in the JWS header).
    pub kid: String,
    /// Tenant id (or `_appliance`).
    pub tenant: String,
    /// The principal, as the audit actor (`user:usr_…`, `token:tok_…`).
    pub sub: String,
    /// Cedar action id (`events.body.read`).
    pub act: String,
    /// The resource and the digest of what was sent.
    pub res: ResourceClaim,
    /// `allow` or `deny`.
    pub dec: String,
    /// Lowercase hex SHA-256 of the policy set that decided.
    pub policyset: String,
    /// The audit leaf that recorded the access.
    pub audit: AuditClaim,
}

/// What the caller states; the signer adds `v`, `iss` and `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessStatement {
    /// See [`AccessClaims::rid`] ([`new_receipt_id`]).
    pub rid: String,
    /// See [`AccessClaims::iat`].
    pub iat: i64,
    /// See [`AccessClaims::tenant`].
    pub tenant: String,
    /// See [`AccessClaims::sub`].
    pub sub: String,
    /// See [`AccessClaims::act`].
    pub act: String,
    /// See [`AccessClaims::res`].
    pub res: ResourceClaim,
    /// See [`AccessClaims::dec`].
    pub dec: String,
    /// See [`AccessClaims::policyset`].
    pub policyset: String,
    /// See [`AccessClaims::audit`].
    pub audit: AuditClaim,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

/// Why a receipt failed to sign or verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Longer than [`MAX_RECEIPT_BYTES`].
    #[error("receipt longer than {MAX_RECEIPT_BYTES} bytes")]
    TooLong,
    /// Not three base64url segments.
    #[error("not a JWS compact serialization")]
    Malformed,
    /// The protected header is not exactly `{alg: EdDSA, kid, typ}` with our `typ`.
    #[error("unexpected JWS header")]
    Header,
    /// `kid` differs from the expected key's, or between header and claims.
    #[error("key id mismatch")]
    KeyId,
    /// The Ed25519 signature does not verify.
    #[error("signature invalid")]
    Signature,
    /// The claims are not the expected JSON object, or `v` is unknown.
    #[error("invalid claims")]
    Claims,
    /// The checkpoint failed (signature or body).
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] note::CheckpointError),
    /// The checkpoint is for another log than `audit.log`.
    #[error("checkpoint origin {got:?} is not the receipt's audit log {want:?}")]
    Origin {
        /// The receipt's log.
        want: String,
        /// The checkpoint's origin.
        got: String,
    },
    /// `audit.leaf_hash` is not base64 of 32 bytes, or differs from the given entry's.
    #[error("audit leaf hash mismatch")]
    LeafHash,
    /// The inclusion proof failed.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] merkle::VerifyError),
}

/// A fresh receipt id: `ar_` + 32 lowercase hex (128 CSPRNG bits).
pub fn new_receipt_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("ar_{}", hex::encode(b))
}

/// The key id of an appliance key as receipts name it: the signed-note key name and key id,
/// `<name>+<8 hex>` (the `name` and `key_id` of `GET /api/keys`).
pub fn kid_for(verifier: &VerifierKey) -> String {
    format!("{}+{:08x}", verifier.name(), verifier.key_id())
}

/// Signs access receipts with the appliance's Ed25519 key.
pub struct AccessReceiptSigner {
    iss: String,
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for AccessReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessReceiptSigner")
            .field("iss", &self.iss)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AccessReceiptSigner {
    /// A signer issuing as `iss` with key `key` named `kid`.
    pub fn new(iss: impl Into<String>, kid: impl Into<String>, key: SigningKey) -> Self {
        Self {
            iss: iss.into(),
            kid: kid.into(),
            key,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key receipts verify against.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `statement` into a JWS compact string.
    ///
    /// # Errors
    /// [`ReceiptError::Claims`] if the claims cannot be serialised.
    pub fn sign(&self, statement: AccessStatement) -> Result<String, ReceiptError> {
        let claims = AccessClaims {
            v: VERSION,
            rid: statement.rid,
            iat: statement.iat,
            iss: self.iss.clone(),
            kid: self.kid.clone(),
            tenant: statement.tenant,
            sub: statement.sub,
            act: statement.act,
            res: statement.res,
            dec: statement.dec,
            policyset: statement.policyset,
            audit: statement.audit,
        };
        let header = Header {
            alg: ALG.into(),
            kid: self.kid.clone(),
            typ: TYP.into(),
        };
        let h = serde_json::to_vec(&header).map_err(|_| ReceiptError::Claims)?;
        let p = serde_json::to_vec(&claims).map_err(|_| ReceiptError::Claims)?;
        let signing_input = format!("{}.{}", B64URL.encode(h), B64URL.encode(p));
        let sig = self.key.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", B64URL.encode(sig.to_bytes())))
    }
}

/// Verifies a receipt offline against `key` (and, when given, its expected `kid`) and returns
/// its claims.
///
/// # Errors
/// [`ReceiptError::TooLong`], [`ReceiptError::Malformed`], [`ReceiptError::Header`],
/// [`ReceiptError::KeyId`], [`ReceiptError::Signature`], [`ReceiptError::Claims`].
pub fn verify(
    receipt: &str,
    key: &VerifyingKey,
    expected_kid: Option<&str>,
) -> Result<AccessClaims, ReceiptError> {
    if receipt.len() > MAX_RECEIPT_BYTES {
        return Err(ReceiptError::TooLong);
    }
    let mut parts = receipt.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReceiptError::Malformed);
    };
    let decode = |s: &str| B64URL.decode(s).map_err(|_| ReceiptError::Malformed);
    let header: Header = serde_json::from_slice(&decode(h64)?).map_err(|_| ReceiptError::Header)?;
    if header.alg != ALG || header.typ != TYP {
        return Err(ReceiptError::Header);
    }
    if expected_kid.is_some_and(|k| k != header.kid) {
        return Err(ReceiptError::KeyId);
    }
    let sig = Signature::from_slice(&decode(s64)?).map_err(|_| ReceiptError::Signature)?;
    let signing_input = &receipt[..h64.len() + 1 + p64.len()];
    key.verify_strict(signing_input.as_bytes(), &sig)
        .map_err(|_| ReceiptError::Signature)?;
    let claims: AccessClaims =
        serde_json::from_slice(&decode(p64)?).map_err(|_| ReceiptError::Claims)?;
    if claims.v != VERSION {
        return Err(ReceiptError::Claims);
    }
    if claims.kid != header.kid {
        return Err(ReceiptError::KeyId);
    }
    Ok(claims)
}

/// Checks that the receipt's audit leaf is in its log: `checkpoint` (a C2SP signed note)
/// verifies with `log_key` and names `claims.audit.log`, and `proof` (RFC 9162 inclusion
/// proof, 32-byte hashes) places `claims.audit.leaf_hash` at `claims.audit.index` under the
/// checkpoint's root. With `entry` (the audit record's bytes as appended), also that the leaf
/// hash is SHA-256(0x00 ‖ entry). Returns the checkpoint.
///
/// # Errors
/// [`ReceiptError::Checkpoint`], [`ReceiptError::Origin`], [`ReceiptError::LeafHash`],
/// [`ReceiptError::Inclusion`].
pub fn verify_audit_leaf<P: AsRef<[u8]>>(
    claims: &AccessClaims,
    checkpoint: &str,
    log_key: &VerifierKey,
    proof: &[P],
    entry: Option<&[u8]>,
) -> Result<Checkpoint, ReceiptError> {
    let cp = note::open_checkpoint(checkpoint, log_key)?;
    if cp.origin != claims.audit.log {
        return Err(ReceiptError::Origin {
            want: claims.audit.log.clone(),
            got: cp.origin,
        });
    }
    let leaf: Hash = B64
        .decode(&claims.audit.leaf_hash)
        .ok()
        .and_then(|b| Hash::try_from(b.as_slice()).ok())
        .ok_or(ReceiptError::LeafHash)?;
    if let Some(entry) = entry
        && merkle::leaf_hash(entry) != leaf
    {
        return Err(ReceiptError::LeafHash);
    }
    merkle::verify_inclusion(&leaf, claims.audit.index, cp.size, proof, &cp.root)?;
    Ok(cp)
}
