//! Provenance receipts signed by pipeline runners.
//!
//! `signature` is base64url (no padding) of HMAC-SHA256 (`alg: HS256`) or Ed25519
//! (`alg: EdDSA`) over the RFC 8785 (JCS) bytes of the receipt object without its `signature`
//! member. The stored form of an accepted receipt is the JCS bytes of the whole receipt, and that
//! is its evidence-log entry.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a receipt is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a JSON object, or a required member is missing or mistyped (422 `RECEIPT_INVALID`).
    #[error("{0}")]
    Invalid(String),
    /// Unsigned, unknown key, wrong key, altered content (422 `RECEIPT_SIGNATURE_INVALID`).
    #[error("{0}")]
    SignatureInvalid(String),
    /// `createdAt` outside the freshness window (422 `RECEIPT_STALE`).
    #[error("{0}")]
    Stale(String),
    /// Validly signed, but its `tenant` member names another tenant than the one it was
    /// submitted to (422 `RECEIPT_TENANT_MISMATCH`).
    #[error("{0}")]
    TenantMismatch(String),
}

/// One artifact a receipt lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedArtifact {
    /// Artifact id within the run.
    pub id: String,
    /// Lowercase hex SHA-256 the receipt claims.
    pub sha256: String,
}

/// A receipt's members that Evidentia acts on, plus the whole JSON value.
#[derive(Debug, Clone)]
pub struct ParsedReceipt {
    /// `receiptId`.
    pub receipt_id: String,
    /// `runId`.
    pub run_id: String,
    /// `createdAt`, Unix seconds.
    pub created_at: i64,
    /// `signer.kid`.
    pub kid: String,
    /// `signer.alg` (`HS256` or `EdDSA`).
    pub alg: String,
    /// `signature`, if present.
    pub signature: Option<String>,
    /// `tenant`, the tenant the signer meant the receipt for: required when the receipt is
    /// signed with the appliance-wide key, checked whenever present ([`bind_to_tenant`]).
    pub tenant: Option<String>,
    /// `evidence.artifacts[]`.
    pub artifacts: Vec<ListedArtifact>,
    /// The whole receipt.
    pub value: Value,
}

fn str_member<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, ReceiptError> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 512 => Ok(s),
        Some(Value::String(_)) => Err(ReceiptError::Invalid(format!(
            "{name} must be 1 to 512 characters"
        ))),
        Some(_) => Err(ReceiptError::Invalid(format!("{name} must be a string"))),
        None => Err(ReceiptError::Invalid(format!("{name} is required"))),
    }
}

/// Parses a receipt document.
///
/// # Errors
/// [`ReceiptError::Invalid`] naming the first member at fault.
pub fn parse(value: Value) -> Result<ParsedReceipt, ReceiptError> {
    let obj = value
        .as_object()
        .ok_or_else(|| ReceiptError::Invalid("a receipt must be a JSON object".into()))?;
    let receipt_id = str_member(obj, "receiptId")?.to_string();
    let run_id = str_member(obj, "runId")?.to_string();
    if !super::artifact::valid_run_id(&run_id) {
        return Err(ReceiptError::Invalid(
            "runId must be 1 to 200 of A-Z a-z 0-9 . _ : -".into(),
        ));
    }
    let created = str_member(obj, "createdAt")?;
    let created_at =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ReceiptError::Invalid("createdAt must be an RFC 3339 timestamp".into()))?
            .unix_timestamp();
    for m in ["codeDigest", "inputsHash", "outputsHash"] {
        str_member(obj, m)?;
    }
    let signer = obj
        .get("signer")
        .and_then(Value::as_object)
        .ok_or_else(|| ReceiptError::Invalid("signer {kid, alg} is required".into()))?;
    let kid = str_member(signer, "kid")?.to_string();
    let alg = str_member(signer, "alg")?.to_string();
    let signature = match obj.get("signature") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ReceiptError::Invalid("signature must be a string".into())),
    };
    let tenant = match obj.get("tenant") {
        None => None,
        Some(_) => Some(str_member(obj, "tenant")?.to_string()),
    };
    let mut artifacts = Vec::new();
    if let Some(ev) = obj.get("evidence") {
        let list = match ev.get("artifacts") {
            None => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => {
                return Err(ReceiptError::Invalid(
                    "evidence.artifacts must be an array".into(),
                ));
            }
        };
        for a in list {
            let o = a.as_object().ok_or_else(|| {
                ReceiptError::Invalid("evidence.artifacts[] must be objects".into())
            })?;
            let id = str_member(o, "id")?.to_string();
            let sha256 = str_member(o, "sha256")?.to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ReceiptError::Invalid(format!(
                    "evidence.artifacts[{id}].sha256 must be 64 hex digits"
                )));
            }
            artifacts.push(ListedArtifact { id, sha256 });
        }
    }
    Ok(ParsedReceipt {
        receipt_id,
        run_id,
        created_at,
        kid,
        alg,
        signature,
        tenant,
        artifacts,
        value,
    })
}

/// Which key verifies a receipt, as [`key_source`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The appliance-wide HS256 key (`EVIDENCE_SIGNING_SECRET`, kid `evidence.signer_kid`).
    Appliance,
    /// The submitting tenant's key registered under this `signer.kid`.
    Tenant(String),
}

/// Which key verifies `receipt`: the appliance-wide HS256 key when `signer` is
/// `{alg: HS256, kid: appliance_kid}`, otherwise the submitting tenant's key of that `kid`.
pub fn key_source(receipt: &ParsedReceipt, appliance_kid: &str) -> KeySource {
    if receipt.alg == "HS256" && receipt.kid == appliance_kid {
        KeySource::Appliance
    } else {
        KeySource::Tenant(receipt.kid.clone())
    }
}

/// Binds a receipt whose signature verified to the tenant it was submitted in. Call after
/// [`verify_signature`], so a refusal here is about a genuinely signed receipt.
///
/// The appliance-wide HS256 key is shared by every tenant, so a receipt it signs carries the
/// tenant it is for in a signed `tenant` member and counts only there: without that rule one
/// runner's receipt could be recorded as evidence of any tenant. A receipt under a tenant key
/// is bound by the key itself (each tenant registers its own); when it names a tenant anyway,
/// that must be the submitting tenant too. Tenant ids compare exactly (they are lowercase
/// ASCII, so a look-alike or a case change is another tenant).
///
/// # Errors
/// [`ReceiptError::Invalid`] when an appliance-key receipt has no `tenant` member;
/// [`ReceiptError::TenantMismatch`] when it names another tenant (the message names the
/// submitting tenant, never echoes the member).
pub fn bind_to_tenant(
    receipt: &ParsedReceipt,
    tenant: &str,
    source: &KeySource,
) -> Result<(), ReceiptError> {
    match (receipt.tenant.as_deref(), source) {
        (None, KeySource::Appliance) => Err(ReceiptError::Invalid(
            "a receipt signed with the appliance-wide key must name the tenant it is for in a \
             signed `tenant` member"
                .into(),
        )),
        (Some(named), _) if named != tenant => Err(ReceiptError::TenantMismatch(format!(
            "the receipt is signed for another tenant than \"{tenant}\", where it was submitted"
        ))),
        _ => Ok(()),
    }
}

/// JCS bytes of the receipt without `signature` (what is signed).
///
/// # Errors
/// Never for parsed JSON.
pub fn signing_input(value: &Value) -> Result<Vec<u8>, String> {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("signature");
    }
    super::jcs(&v)
}

/// A key that can verify a receipt.
#[derive(Clone)]
pub enum ReceiptKey {
    /// HMAC-SHA256 secret.
    Hs256(Vec<u8>),
    /// Ed25519 public key.
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiptKey::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            ReceiptKey::EdDsa(k) => write!(f, "EdDsa({})", STANDARD.encode(k.as_bytes())),
        }
    }
}

/// A receipt whose signature verified: its RFC 8785 canonical bytes, the only form storage
/// accepts.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    canonical: Vec<u8>,
}

impl VerifiedReceipt {
    /// The canonical (JCS) bytes, as stored and appended to the evidence log.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The canonical bytes, owned.
    pub fn into_canonical(self) -> Vec<u8> {
        self.canonical
    }
}

/// Verifies a parsed receipt's signature with `key` (the key must match `signer.alg`):
/// HS256 through [`crate::verify::hs256_verify`], EdDSA (RFC 8032, strict) here; on success
/// the receipt's canonical bytes.
///
/// # Errors
/// [`ReceiptError::SignatureInvalid`] saying why (never which bytes differ);
/// [`ReceiptError::Invalid`] when the receipt has no RFC 8785 form (unsafe integers).
pub fn verify_signature(
    receipt: &ParsedReceipt,
    key: &ReceiptKey,
) -> Result<VerifiedReceipt, ReceiptError> {
    check_signature(receipt, key)?;
    let canonical =
        crate::verify::jcs(&receipt.value).map_err(|e| ReceiptError::Invalid(e.to_string()))?;
    Ok(VerifiedReceipt { canonical })
}

fn check_signature(receipt: &ParsedReceipt, key: &ReceiptKey) -> Result<(), ReceiptError> {
    let bad = |m: &str| ReceiptError::SignatureInvalid(m.to_string());
    let sig = receipt
        .signature
        .as_deref()
        .ok_or_else(|| bad("the receipt is not signed"))?;
    match (receipt.alg.as_str(), key) {
        ("HS256", ReceiptKey::Hs256(secret)) => crate::verify::hs256_verify(secret, &receipt.value)
            .map_err(|e| ReceiptError::SignatureInvalid(e.to_string())),
        ("EdDSA", ReceiptKey::EdDsa(pk)) => {
            let sig = URL_SAFE_NO_PAD
                .decode(sig)
                .map_err(|_| bad("signature is not base64url without padding"))?;
            let sig = ed25519_dalek::Signature::from_slice(&sig)
                .map_err(|_| bad("an EdDSA signature is 64 bytes"))?;
            let input = signing_input(&receipt.value).map_err(|e| bad(&e))?;
            pk.verify_strict(&input, &sig)
                .map_err(|_| bad("the signature does not match the receipt"))
        }
        _ => Err(bad(
            "signer.alg does not match the key registered for signer.kid",
        )),
    }
}

/// Checks `createdAt` against the freshness window: not older than `window` seconds, not more
/// than `future` seconds ahead.
///
/// # Errors
/// [`ReceiptError::Stale`].
pub fn check_fresh(
    created_at: i64,
    now: i64,
    window: i64,
    future: i64,
) -> Result<(), ReceiptError> {
    if created_at < now - window {
        return Err(ReceiptError::Stale(format!(
            "createdAt is more than {window} s old"
        )));
    }
    if created_at > now + future {
        return Err(ReceiptError::Stale(format!(
            "createdAt is more than {future} s in the future"
        )));
    }
    Ok(())
}

/// Shortest `HS256` receipt secret, in characters (at least as many bytes).
pub const MIN_HS256_SECRET_CHARS: usize = 32;
/// Longest `HS256` receipt secret, in characters.
pub const MAX_HS256_SECRET_CHARS: usize = 1024;

/// Why a receipt-signing key is refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    /// `kid` is not 1–128 of `A-Z a-z 0-9 . _ : -` (422 `INVALID_KID`).
    #[error("kid must be 1 to 128 of A-Z a-z 0-9 . _ : -")]
    Kid,
    /// `kid` names the appliance's own evidence signer (409 `KID_RESERVED`).
    #[error("this kid names the appliance's EVIDENCE_SIGNING_SECRET")]
    KidReserved,
    /// An `HS256` secret outside 32–1024 characters or with white space at either end
    /// (422 `INVALID_SECRET`).
    #[error(
        "an HS256 secret is {MIN_HS256_SECRET_CHARS} to {MAX_HS256_SECRET_CHARS} characters without white space at either end"
    )]
    Secret,
    /// Key material that does not fit the algorithm, or an unusable Ed25519 key
    /// (422 `INVALID_SIGNING_KEY`).
    #[error("{0}")]
    Material(String),
}

/// Whether `kid` is 1–128 bytes of `A-Z a-z 0-9 . _ : -` (the `signer.kid` alphabet).
pub fn valid_kid(kid: &str) -> bool {
    (1..=128).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// A key's algorithm and material as registered: `HS256` with a shared secret or `EdDSA` with
/// the standard base64 of a 32-byte Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// `HS256` secret.
    Hs256(String),
    /// `EdDSA` public key (standard base64, 32 bytes).
    EdDsa(String),
}

impl SigningKeyRecord {
    /// Checks a registration and builds the record: the `kid` alphabet, the appliance's
    /// reserved kid (`reserved_kid`), the `HS256` secret rule (32–1024 characters, no Unicode
    /// `White_Space` at either end) or a valid Ed25519 point; `created_at` is Unix seconds.
    ///
    /// # Errors
    /// [`SigningKeyError`] naming the first rule broken (never echoing the secret).
    pub fn register(
        tenant: &str,
        kid: &str,
        material: KeyMaterial,
        reserved_kid: &str,
        created_at: i64,
    ) -> Result<Self, SigningKeyError> {
        if !valid_kid(kid) {
            return Err(SigningKeyError::Kid);
        }
        if kid == reserved_kid {
            return Err(SigningKeyError::KidReserved);
        }
        let (alg, secret, public_key) = match material {
            KeyMaterial::Hs256(s) => {
                let chars = s.chars().count();
                if !(MIN_HS256_SECRET_CHARS..=MAX_HS256_SECRET_CHARS).contains(&chars)
                    || s.trim() != s
                {
                    return Err(SigningKeyError::Secret);
                }
                ("HS256", Some(s), None)
            }
            KeyMaterial::EdDsa(pk) => {
                parse_ed25519_public(&pk).map_err(SigningKeyError::Material)?;
                ("EdDSA", None, Some(pk.trim().to_string()))
            }
        };
        Ok(Self {
            tenant: tenant.to_string(),
            kid: kid.to_string(),
            alg: alg.to_string(),
            secret,
            public_key,
            created_at,
        })
    }
}

/// A tenant's receipt-signing key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Tenant.
    pub tenant: String,
    /// Key id (`signer.kid`).
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub alg: String,
    /// HS256 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// EdDSA public key, standard base64 of 32 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl SigningKeyRecord {
    /// The verification key.
    ///
    /// # Errors
    /// When the stored material is unusable.
    pub fn key(&self) -> Result<ReceiptKey, String> {
        match (self.alg.as_str(), &self.secret, &self.public_key) {
            ("HS256", Some(s), _) => Ok(ReceiptKey::Hs256(s.as_bytes().to_vec())),
            ("EdDSA", _, Some(pk)) => parse_ed25519_public(pk).map(ReceiptKey::EdDsa),
            _ => Err("incomplete key".into()),
        }
    }
}

/// Parses a standard-base64 32-byte Ed25519 public key.
///
/// # Errors
/// When it is not 32 bytes of base64 or not a valid curve point.
pub fn parse_ed25519_public(b64: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| "public_key must be standard base64".to_string())?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public_key must be 32 bytes".to_string())?;
    ed25519_dalek::VerifyingKey::from_bytes(&arr)
        .map_err(|_| "public_key is not a valid Ed25519 key".into())
}

/// A stored receipt's metadata (its bytes are kept apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// Tenant.
    pub tenant: String,
    /// `receiptId`.
    pub receipt_id: String,
    /// `runId`.
    pub run_id: String,
    /// Lowercase hex SHA-256 of the stored canonical bytes.
    pub sha256: String,
    /// Leaf index in the tenant's evidence log.
    pub log_index: u64,
    /// `createdAt`, Unix seconds.
    pub created_at: i64,
    /// Unix seconds it was recorded.
    pub recorded_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_checks_kid_secret_and_public_key() {
        let ok =
            |kid: &str, m: KeyMaterial| SigningKeyRecord::register("t", kid, m, "evidentia", 7);
        let hs = |s: &str| KeyMaterial::Hs256(s.to_string());
        let r = ok("k1", hs(&"s".repeat(32))).unwrap();
        assert_eq!((r.alg.as_str(), r.created_at), ("HS256", 7));
        assert_eq!(ok("", hs(&"s".repeat(32))), Err(SigningKeyError::Kid));
        assert_eq!(ok("a/b", hs(&"s".repeat(32))), Err(SigningKeyError::Kid));
        assert_eq!(
            ok(&"k".repeat(129), hs(&"s".repeat(32))),
            Err(SigningKeyError::Kid)
        );
        assert_eq!(
            ok("evidentia", hs(&"s".repeat(32))),
            Err(SigningKeyError::KidReserved)
        );
        assert_eq!(ok("k1", hs(&"s".repeat(31))), Err(SigningKeyError::Secret));
        assert_eq!(
            ok("k1", hs(&"s".repeat(1025))),
            Err(SigningKeyError::Secret)
        );
        assert_eq!(
            ok("k1", hs(&format!("{} ", "s".repeat(32)))),
            Err(SigningKeyError::Secret)
        );
        // 1,024 four-byte characters are 1,024 characters, not 4,096.
        assert!(ok("k1", hs(&"\u{1F512}".repeat(1024))).is_ok());
        let pk = KeyMaterial::EdDsa("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into());
        assert_eq!(ok("k1", pk).unwrap().alg, "EdDSA");
        assert!(matches!(
            ok("k1", KeyMaterial::EdDsa("AAAA".into())),
            Err(SigningKeyError::Material(_))
        ));
    }

    fn vector() -> Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/receipt-hs256.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn hs256_vector() {
        let v = vector();
        let secret = v["secret"].as_str().unwrap().as_bytes();
        assert_eq!(
            String::from_utf8(signing_input(&v["receipt_unsigned"]).unwrap()).unwrap(),
            v["jcs_unsigned"].as_str().unwrap()
        );
        assert_eq!(
            crate::verify::hs256_sign(secret, &v["receipt_unsigned"]).unwrap(),
            v["signature"]
        );
        let parsed = parse(v["receipt_signed"].clone()).unwrap();
        verify_signature(&parsed, &ReceiptKey::Hs256(secret.to_vec())).unwrap();
        assert!(verify_signature(&parsed, &ReceiptKey::Hs256(b"other".to_vec())).is_err());
        let mut tampered = v["receipt_signed"].clone();
        tampered["outputsHash"] = "00".repeat(32).into();
        assert!(
            verify_signature(
                &parse(tampered).unwrap(),
                &ReceiptKey::Hs256(secret.to_vec())
            )
            .is_err()
        );
    }

    #[test]
    fn eddsa_and_freshness() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let mut r = vector()["receipt_unsigned"].clone();
        r["signer"] = serde_json::json!({"kid": "runner-1", "alg": "EdDSA"});
        use ed25519_dalek::Signer;
        let sig = sk.sign(&signing_input(&r).unwrap());
        r["signature"] = URL_SAFE_NO_PAD.encode(sig.to_bytes()).into();
        let p = parse(r).unwrap();
        verify_signature(&p, &ReceiptKey::EdDsa(sk.verifying_key())).unwrap();
        assert!(verify_signature(&p, &ReceiptKey::Hs256(b"x".to_vec())).is_err());
        assert!(check_fresh(1000, 1300, 300, 60).is_ok());
        assert!(check_fresh(999, 1300, 300, 60).is_err());
        assert!(check_fresh(1361, 1300, 300, 60).is_err());
    }
}
