//! Offline verification of receipt bundles, notarised-webhook bundles
//! (`evidentia-webhook-bundle/v1`, see [`make_webhook_bundle`]; checks [`CHECK_BUNDLE`],
//! [`CHECK_ENTRY`], [`CHECK_BODY_DIGEST`], then the log checks as for receipts) and the HS256
//! provenance-receipt signature.
//!
//! This is the logic behind `evidentia verify bundle FILE --key VKEY [--hmac-secret-file F]`:
//! no server and no database, only the bundle, the pinned checkpoint key and optionally the
//! HMAC secret. The server reuses [`make_bundle`] to produce bundles and [`jcs`],
//! [`parse_strict_json`], [`hs256_sign`] and [`hs256_verify`] to check submitted receipts.
//!
//! # Bundle (`evidentia-receipt-bundle/v1`)
//!
//! A JSON object with exactly these members (see [`make_bundle`]):
//!
//! | member            | content                                                                    |
//! |-------------------|----------------------------------------------------------------------------|
//! | `format`          | `"evidentia-receipt-bundle/v1"` ([`BUNDLE_FORMAT`])                        |
//! | `origin`          | log origin `<appliance>/<tenant>/evidence`                                 |
//! | `receipt`         | standard base64 (RFC 4648 §4, padded) of the receipt's stored RFC 8785 bytes |
//! | `receipt_sha256`  | lowercase hex SHA-256 of those bytes (64 digits)                          |
//! | `leaf_index`      | 0-based leaf index of the receipt in the log (JSON integer)               |
//! | `tree_size`       | tree size in leaves of the checkpoint (JSON integer)                      |
//! | `leaf_hash`       | standard base64 of `SHA-256(0x00 ‖ receipt bytes)` (RFC 9162 §2.1.1)       |
//! | `inclusion_proof` | array of standard base64 32-byte hashes, leaf end first (RFC 9162 §2.1.3.1) |
//! | `checkpoint`      | C2SP signed note whose text is a C2SP `tlog-checkpoint` for `tree_size`    |
//!
//! # Checks
//!
//! [`verify_bundle`] runs, in order, and stops at the first failure: [`CHECK_BUNDLE`],
//! [`CHECK_RECEIPT_DIGEST`], [`CHECK_LEAF`], [`CHECK_CHECKPOINT_SIGNATURE`],
//! [`CHECK_CHECKPOINT`], [`CHECK_INCLUSION`] and, only when an HMAC secret is given,
//! [`CHECK_RECEIPT_SIGNATURE`].
//!
//! # Receipt signature (HS256)
//!
//! `signature` is base64url without padding (RFC 4648 §5) of HMAC-SHA256 (RFC 2104) keyed with
//! the secret over the RFC 8785 (JCS) bytes of the receipt object without its `signature`
//! member; `signer.alg` must be `"HS256"`.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::tlog::merkle::{self, HASH_LEN, Hash};
use crate::tlog::note::{self, Checkpoint, VerifierKey};

/// The `format` member of receipt bundles.
pub const BUNDLE_FORMAT: &str = "evidentia-receipt-bundle/v1";

/// The `format` member of notarised-webhook bundles ([`make_webhook_bundle`]).
pub const WEBHOOK_BUNDLE_FORMAT: &str = "evidentia-webhook-bundle/v1";

/// The `signer.alg` value of HMAC-SHA256 receipt signatures.
pub const HS256: &str = "HS256";

/// Maximum number of hashes accepted in a bundle's `inclusion_proof`: an RFC 9162 inclusion
/// proof for any `u64` tree size has at most 64 hashes.
pub const MAX_PROOF_LEN: usize = 64;

/// Largest integer magnitude [`jcs`] accepts, `2^53 − 1` (I-JSON, RFC 7493 §2.2): every JSON
/// number is canonicalized as an IEEE 754 double (RFC 8785 §3.2.2.3), and larger integers would
/// silently change value.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Check name: the bundle parses as JSON (no duplicate member names), has exactly the
/// `evidentia-receipt-bundle/v1` members, and each is well-formed.
pub const CHECK_BUNDLE: &str = "bundle";
/// Check name (webhook bundles): the entry is RFC 8785 JSON of `type` `"webhook"` with a
/// `sha256` and `size`.
pub const CHECK_ENTRY: &str = "entry";
/// Check name (webhook bundles): the body, when the bundle carries it, has the entry's SHA-256
/// and size.
pub const CHECK_BODY_DIGEST: &str = "body_digest";
/// Check name: SHA-256 of the receipt bytes equals `receipt_sha256`.
pub const CHECK_RECEIPT_DIGEST: &str = "receipt_digest";
/// Check name: the RFC 9162 leaf hash recomputed from the receipt bytes equals `leaf_hash`.
pub const CHECK_LEAF: &str = "leaf";
/// Check name: the checkpoint is a C2SP signed note carrying a valid Ed25519 signature by the
/// pinned verifier key.
pub const CHECK_CHECKPOINT_SIGNATURE: &str = "checkpoint_signature";
/// Check name: the signed text is a C2SP `tlog-checkpoint` whose origin is the bundle's `origin`
/// and whose size is the bundle's `tree_size`.
pub const CHECK_CHECKPOINT: &str = "checkpoint";
/// Check name: the RFC 9162 §2.1.3.2 inclusion proof places the recomputed leaf at `leaf_index`
/// in the tree of `tree_size` leaves whose root is the checkpoint's root.
pub const CHECK_INCLUSION: &str = "inclusion";
/// Check name (only with an HMAC secret): the receipt bytes are canonical RFC 8785 JSON and the
/// receipt's HS256 `signature` verifies ([`hs256_verify`]).
pub const CHECK_RECEIPT_SIGNATURE: &str = "receipt_signature";

/// The outcome of one named check of [`verify_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name, one of the `CHECK_*` constants (e.g. `"inclusion"`).
    pub name: &'static str,
    /// Whether the check passed.
    pub ok: bool,
    /// One line for humans: what was verified, or why it failed.
    pub detail: String,
}

impl fmt::Display for CheckResult {
    /// Formats `ok   <name>: <detail>` or `FAIL <name>: <detail>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{status} {}: {}", self.name, self.detail)
    }
}

/// Whether a [`verify_bundle`] report means "verified": non-empty and every check passed.
pub fn all_passed(results: &[CheckResult]) -> bool {
    !results.is_empty() && results.iter().all(|r| r.ok)
}

// ---------------------------------------------------------------------------------------------
// RFC 8785 canonical JSON and strict parsing
// ---------------------------------------------------------------------------------------------

/// Why a value cannot be canonicalized by [`jcs`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JcsError {
    /// An integer outside `±(2^53 − 1)` ([`MAX_SAFE_INTEGER`]); RFC 8785 would serialize it as
    /// a rounded double, so distinct values would share canonical bytes.
    #[error("integer {0} is outside the I-JSON range ±(2^53 - 1)")]
    UnsafeInteger(String),
    /// The canonicalizer failed (not expected for a `serde_json::Value`).
    #[error("JCS serialization failed: {0}")]
    Serialize(String),
}

/// RFC 8785 (JSON Canonicalization Scheme) bytes of `value`: object members sorted by UTF-16
/// code units, no insignificant white space, ECMAScript number and string serialization.
/// Output is UTF-8.
///
/// # Errors
/// [`JcsError::UnsafeInteger`] for an integer outside the I-JSON range (RFC 7493 §2.2);
/// [`JcsError::Serialize`] if the canonicalizer fails.
pub fn jcs(value: &Value) -> Result<Vec<u8>, JcsError> {
    // Iterative walk: a programmatically built value may be nested deeper than the stack.
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Number(n) => check_number(n)?,
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.values()),
            Value::Null | Value::Bool(_) | Value::String(_) => {}
        }
    }
    serde_json_canonicalizer::to_vec(value).map_err(|e| JcsError::Serialize(e.to_string()))
}

fn check_number(n: &Number) -> Result<(), JcsError> {
    let safe = if let Some(u) = n.as_u64() {
        u <= MAX_SAFE_INTEGER
    } else if let Some(i) = n.as_i64() {
        i.unsigned_abs() <= MAX_SAFE_INTEGER
    } else {
        // An f64: either a real fraction, or an integer literal too large for u64/i64 that
        // serde_json already rounded; the latter is exactly what must not be signed.
        n.as_f64()
            .is_some_and(|f| f.fract() != 0.0 || f.abs() <= MAX_SAFE_INTEGER as f64)
    };
    if safe {
        Ok(())
    } else {
        Err(JcsError::UnsafeInteger(n.to_string()))
    }
}

/// Parses JSON text (UTF-8 bytes, RFC 8259) into a value, rejecting duplicate member names
/// (I-JSON, RFC 7493 §2.3) that `serde_json` would otherwise silently resolve to the last one,
/// and trailing data. Nesting is limited to serde_json's 128 levels.
///
/// Use it for anything whose meaning must be unambiguous to every reader (bundles, submitted
/// receipts).
///
/// # Errors
/// The `serde_json` error (syntax, invalid UTF-8 or escape, duplicate member name, depth).
pub fn parse_strict_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de)?.0;
    de.end()?;
    Ok(value)
}

/// A JSON value deserialized with duplicate member names rejected.
struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name {key:?}"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

// ---------------------------------------------------------------------------------------------
// HS256 receipt signatures
// ---------------------------------------------------------------------------------------------

/// Why an HS256 receipt signature could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptSigError {
    /// The receipt is not a JSON object.
    #[error("receipt is not a JSON object")]
    NotAnObject,
    /// The HMAC secret is empty (an empty key would make every signature forgeable).
    #[error("HMAC secret is empty")]
    EmptySecret,
    /// The receipt has no `signature` member (verification).
    #[error("receipt has no signature member")]
    MissingSignature,
    /// The receipt to sign already has a `signature` member ([`hs256_sign`]).
    #[error("receipt to sign already has a signature member")]
    AlreadySigned,
    /// `signer.alg` is missing, not a string, or not `"HS256"`; `found` is the string seen.
    #[error("signer.alg is {}, expected \"HS256\"", .found.as_deref().map_or_else(|| "missing".to_owned(), |a| format!("{a:?}")))]
    WrongAlg {
        /// The `signer.alg` string, if there was one.
        found: Option<String>,
    },
    /// `signature` is not a string of base64url without padding (RFC 4648 §5, canonical
    /// trailing bits) decoding to 32 bytes.
    #[error("signature is not base64url (no padding) of 32 bytes: {0}")]
    BadEncoding(&'static str),
    /// The HMAC-SHA256 tag does not match (compared in constant time).
    #[error("signature does not match the receipt")]
    Mismatch,
    /// The receipt (without `signature`) cannot be canonicalized.
    #[error(transparent)]
    Jcs(#[from] JcsError),
}

type HmacSha256 = Hmac<Sha256>;

/// The receipt object, checked to be an object.
fn as_object(receipt: &Value) -> Result<&Map<String, Value>, ReceiptSigError> {
    receipt.as_object().ok_or(ReceiptSigError::NotAnObject)
}

/// Checks that `signer.alg` is `HS256`.
fn check_alg(receipt: &Map<String, Value>) -> Result<(), ReceiptSigError> {
    let alg = receipt
        .get("signer")
        .and_then(|s| s.get("alg"))
        .and_then(Value::as_str);
    match alg {
        Some(HS256) => Ok(()),
        other => Err(ReceiptSigError::WrongAlg {
            found: other.map(str::to_owned),
        }),
    }
}

/// HMAC-SHA256 keyed with `secret` over the JCS bytes of `receipt` minus `signature`.
fn receipt_mac(secret: &[u8], receipt: &Map<String, Value>) -> Result<HmacSha256, ReceiptSigError> {
    if secret.is_empty() {
        return Err(ReceiptSigError::EmptySecret);
    }
    let mut unsigned = receipt.clone();
    unsigned.remove("signature");
    let bytes = jcs(&Value::Object(unsigned))?;
    // HMAC accepts keys of any length; only an empty one is refused, above.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .map_err(|_| ReceiptSigError::EmptySecret)?;
    mac.update(&bytes);
    Ok(mac)
}

/// Signs a receipt with HS256: returns the `signature` value, base64url without padding
/// (43 characters) of HMAC-SHA256(`secret`, JCS bytes of `receipt_without_signature`).
///
/// The receipt must be a JSON object with `signer.alg == "HS256"` and no `signature` member, so
/// that inserting the result as `signature` yields a receipt [`hs256_verify`] accepts.
///
/// # Errors
/// [`ReceiptSigError::NotAnObject`], [`ReceiptSigError::EmptySecret`],
/// [`ReceiptSigError::AlreadySigned`], [`ReceiptSigError::WrongAlg`],
/// [`ReceiptSigError::Jcs`].
pub fn hs256_sign(
    secret: &[u8],
    receipt_without_signature: &Value,
) -> Result<String, ReceiptSigError> {
    let receipt = as_object(receipt_without_signature)?;
    if secret.is_empty() {
        return Err(ReceiptSigError::EmptySecret);
    }
    if receipt.contains_key("signature") {
        return Err(ReceiptSigError::AlreadySigned);
    }
    check_alg(receipt)?;
    let tag = receipt_mac(secret, receipt)?.finalize().into_bytes();
    Ok(B64URL.encode(tag))
}

/// Verifies a signed receipt's HS256 `signature`: `signer.alg` must be `"HS256"`, `signature`
/// must be base64url without padding of 32 bytes, and must equal HMAC-SHA256(`secret`, JCS bytes
/// of the receipt without `signature`), compared in constant time.
///
/// This checks the signature only; freshness (`createdAt`), replay and the choice of `secret`
/// by `signer.kid` are the caller's.
///
/// # Errors
/// In this order: [`ReceiptSigError::NotAnObject`], [`ReceiptSigError::EmptySecret`],
/// [`ReceiptSigError::MissingSignature`], [`ReceiptSigError::WrongAlg`],
/// [`ReceiptSigError::BadEncoding`], [`ReceiptSigError::Jcs`], [`ReceiptSigError::Mismatch`].
pub fn hs256_verify(secret: &[u8], receipt: &Value) -> Result<(), ReceiptSigError> {
    let receipt = as_object(receipt)?;
    if secret.is_empty() {
        return Err(ReceiptSigError::EmptySecret);
    }
    let signature = receipt
        .get("signature")
        .ok_or(ReceiptSigError::MissingSignature)?;
    check_alg(receipt)?;
    let signature = signature
        .as_str()
        .ok_or(ReceiptSigError::BadEncoding("not a string"))?;
    let tag = B64URL
        .decode(signature)
        .map_err(|_| ReceiptSigError::BadEncoding("not base64url without padding"))?;
    if tag.len() != 32 {
        return Err(ReceiptSigError::BadEncoding("wrong length"));
    }
    receipt_mac(secret, receipt)?
        .verify_slice(&tag)
        .map_err(|_| ReceiptSigError::Mismatch)
}

// ---------------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------------

const MEMBERS: [&str; 9] = [
    "format",
    "origin",
    "receipt",
    "receipt_sha256",
    "leaf_index",
    "tree_size",
    "leaf_hash",
    "inclusion_proof",
    "checkpoint",
];

/// Builds an `evidentia-receipt-bundle/v1` bundle (see the [module docs](self)) for the receipt
/// whose stored canonical bytes are `receipt_bytes`, at leaf `leaf_index` (0-based) of the log
/// `origin`, with the RFC 9162 inclusion proof `proof` (as from
/// [`merkle::inclusion_proof`]`(log, leaf_index, tree_size)`) and `checkpoint_note`, the signed
/// checkpoint note for `tree_size` leaves. The digest and leaf hash are computed here.
///
/// Serialize the value with `serde_json::to_vec`; [`verify_bundle`] accepts the result.
pub fn make_bundle(
    origin: &str,
    receipt_bytes: &[u8],
    leaf_index: u64,
    tree_size: u64,
    proof: &[Hash],
    checkpoint_note: &str,
) -> Value {
    serde_json::json!({
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "receipt": B64.encode(receipt_bytes),
        "receipt_sha256": hex(&Sha256::digest(receipt_bytes)),
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": B64.encode(merkle::leaf_hash(receipt_bytes)),
        "inclusion_proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        "checkpoint": checkpoint_note,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Lowercase hex of exactly 32 bytes.
fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let &[hi, lo] = pair else { return None };
        *o = (digit(hi)? << 4) | digit(lo)?;
    }
    Some(out)
}

/// A parsed, well-formed bundle.
struct Bundle {
    origin: String,
    receipt: Vec<u8>,
    receipt_sha256: [u8; 32],
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: Hash,
    proof: Vec<Hash>,
    checkpoint: String,
}

/// Whether `origin` has the shape `<appliance>/<tenant>/evidence`: at least three non-empty
/// `/`-separated segments, the last `evidence`, no control characters.
fn valid_origin(origin: &str) -> bool {
    let segments: Vec<&str> = origin.split('/').collect();
    segments.len() >= 3
        && segments.iter().all(|s| !s.is_empty())
        && segments.last() == Some(&"evidence")
        && !origin.chars().any(char::is_control)
}

fn b64_hash(field: &str, v: &Value) -> Result<Hash, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field} is not a string"))?;
    let raw = B64
        .decode(s)
        .map_err(|_| format!("{field} is not standard base64"))?;
    Hash::try_from(raw.as_slice())
        .map_err(|_| format!("{field} is {} bytes, not {HASH_LEN}", raw.len()))
}

/// Fails on a member outside `required` and `optional`, or a missing member of `required`.
fn check_members(
    obj: &Map<String, Value>,
    required: &[&str],
    optional: &[&str],
) -> Result<(), String> {
    if let Some(k) = obj
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(format!("unknown member {k:?}"));
    }
    if let Some(k) = required.iter().find(|k| !obj.contains_key(**k)) {
        return Err(format!("missing member {k:?}"));
    }
    Ok(())
}

/// The member `k`, `null` when absent.
fn member<'a>(obj: &'a Map<String, Value>, k: &str) -> &'a Value {
    obj.get(k).unwrap_or(&Value::Null)
}

fn member_str<'a>(obj: &'a Map<String, Value>, k: &str) -> Result<&'a str, String> {
    member(obj, k)
        .as_str()
        .ok_or_else(|| format!("{k} is not a string"))
}

fn member_u64(obj: &Map<String, Value>, k: &str) -> Result<u64, String> {
    member(obj, k)
        .as_u64()
        .ok_or_else(|| format!("{k} is not a non-negative integer"))
}

fn parse_bundle(bytes: &[u8]) -> Result<Bundle, String> {
    let v = parse_strict_json(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    check_members(obj, &MEMBERS, &[])?;
    let (field, string, integer) = (
        |k| member(obj, k),
        |k| member_str(obj, k),
        |k| member_u64(obj, k),
    );

    let format = string("format")?;
    if format != BUNDLE_FORMAT {
        return Err(format!("format is {format:?}, expected {BUNDLE_FORMAT:?}"));
    }
    let origin = string("origin")?;
    if !valid_origin(origin) {
        return Err(format!(
            "origin {origin:?} is not <appliance>/<tenant>/evidence"
        ));
    }
    let receipt = B64
        .decode(string("receipt")?)
        .map_err(|_| "receipt is not standard base64".to_owned())?;
    if receipt.is_empty() {
        return Err("receipt is empty".to_owned());
    }
    let receipt_sha256 = parse_hex32(string("receipt_sha256")?)
        .ok_or_else(|| "receipt_sha256 is not 64 lowercase hex digits".to_owned())?;
    let leaf_index = integer("leaf_index")?;
    let tree_size = integer("tree_size")?;
    let leaf_hash = b64_hash("leaf_hash", field("leaf_hash"))?;
    let proof = field("inclusion_proof")
        .as_array()
        .ok_or_else(|| "inclusion_proof is not an array".to_owned())?;
    if proof.len() > MAX_PROOF_LEN {
        return Err(format!(
            "inclusion_proof has {} hashes, more than {MAX_PROOF_LEN}",
            proof.len()
        ));
    }
    let proof = proof
        .iter()
        .enumerate()
        .map(|(i, h)| b64_hash(&format!("inclusion_proof[{i}]"), h))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoint = string("checkpoint")?;
    if checkpoint.is_empty() {
        return Err("checkpoint is empty".to_owned());
    }
    Ok(Bundle {
        origin: origin.to_owned(),
        receipt,
        receipt_sha256,
        leaf_index,
        tree_size,
        leaf_hash,
        proof,
        checkpoint: checkpoint.to_owned(),
    })
}

/// Records one check's outcome and passes its value on, or `None` after a failure.
fn record<T>(
    out: &mut Vec<CheckResult>,
    name: &'static str,
    result: Result<(T, String), String>,
) -> Option<T> {
    let (value, ok, detail) = match result {
        Ok((v, detail)) => (Some(v), true, detail),
        Err(detail) => (None, false, detail),
    };
    out.push(CheckResult { name, ok, detail });
    value
}

/// Verifies an `evidentia-receipt-bundle/v1` bundle offline (see the [module docs](self)).
///
/// * `bundle_json` — the bundle file's bytes (UTF-8 JSON).
/// * `key` — the pinned checkpoint verifier key string
///   `<name>+<8 hex key ID>+<base64(0x01 ‖ Ed25519 public key)>` (C2SP signed-note);
///   surrounding white space is ignored. Use [`resolve_key_arg`] for a CLI argument that may be
///   a file path.
/// * `hmac_secret` — the HS256 receipt secret (see [`read_hmac_secret_file`]); when `Some`, the
///   receipt's signature is checked as the last step ([`CHECK_RECEIPT_SIGNATURE`]).
///
/// Returns the checks run, in order: every passed check, and the first failed one last, after
/// which nothing else is checked. The bundle is verified iff [`all_passed`]. A malformed key is
/// reported by [`CHECK_CHECKPOINT_SIGNATURE`]. Never panics.
pub fn verify_bundle(
    bundle_json: &[u8],
    key: &str,
    hmac_secret: Option<&[u8]>,
) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(7);
    // `None` only means "stopped at a recorded failure".
    let webhook = parse_strict_json(bundle_json).ok().and_then(|v| match v {
        Value::Object(obj)
            if obj.get("format").and_then(Value::as_str) == Some(WEBHOOK_BUNDLE_FORMAT) =>
        {
            Some(obj)
        }
        _ => None,
    });
    let _ = match webhook {
        Some(obj) => run_webhook_checks(&mut out, &obj, key),
        None => run_checks(&mut out, bundle_json, key, hmac_secret),
    };
    out
}

fn run_checks(
    out: &mut Vec<CheckResult>,
    bundle_json: &[u8],
    key: &str,
    hmac_secret: Option<&[u8]>,
) -> Option<()> {
    let b = record(
        out,
        CHECK_BUNDLE,
        parse_bundle(bundle_json).map(|b| {
            let detail = format!(
                "{BUNDLE_FORMAT}: origin {}, leaf {} of tree size {}, {}-byte receipt, {} proof hashes",
                b.origin,
                b.leaf_index,
                b.tree_size,
                b.receipt.len(),
                b.proof.len()
            );
            (b, detail)
        }),
    )?;

    let digest: [u8; 32] = Sha256::digest(&b.receipt).into();
    record(
        out,
        CHECK_RECEIPT_DIGEST,
        if digest == b.receipt_sha256 {
            Ok(((), format!("sha256 {}", hex(&digest))))
        } else {
            Err(format!(
                "SHA-256 of the receipt bytes is {}, bundle says {}",
                hex(&digest),
                hex(&b.receipt_sha256)
            ))
        },
    )?;

    check_log(
        out,
        &LogPart {
            origin: &b.origin,
            entry: &b.receipt,
            what: "receipt",
            leaf_index: b.leaf_index,
            tree_size: b.tree_size,
            leaf_hash: b.leaf_hash,
            proof: &b.proof,
            checkpoint: &b.checkpoint,
        },
        key,
    )?;

    if let Some(secret) = hmac_secret {
        record(
            out,
            CHECK_RECEIPT_SIGNATURE,
            check_receipt_signature(&b.receipt, secret),
        )?;
    }
    Some(())
}

/// The log half of a bundle: an entry, its leaf and inclusion proof, the signed checkpoint.
struct LogPart<'a> {
    origin: &'a str,
    entry: &'a [u8],
    what: &'static str,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: Hash,
    proof: &'a [Hash],
    checkpoint: &'a str,
}

/// [`CHECK_LEAF`], [`CHECK_CHECKPOINT_SIGNATURE`], [`CHECK_CHECKPOINT`], [`CHECK_INCLUSION`].
fn check_log(out: &mut Vec<CheckResult>, p: &LogPart<'_>, key: &str) -> Option<()> {
    let leaf = merkle::leaf_hash(p.entry);
    record(
        out,
        CHECK_LEAF,
        if leaf == p.leaf_hash {
            Ok(((), format!("leaf hash {}", B64.encode(leaf))))
        } else {
            Err(format!(
                "leaf hash of the {} bytes is {}, bundle says {}",
                p.what,
                B64.encode(leaf),
                B64.encode(p.leaf_hash)
            ))
        },
    )?;

    let text = record(
        out,
        CHECK_CHECKPOINT_SIGNATURE,
        VerifierKey::parse(key.trim())
            .map_err(|e| format!("verifier key: {e}"))
            .and_then(|vk| {
                note::verify_note(p.checkpoint, &vk)
                    .map(|text| {
                        let detail = format!(
                            "signed note verified with key {} ({:08x})",
                            vk.name(),
                            vk.key_id()
                        );
                        (text, detail)
                    })
                    .map_err(|e| {
                        format!(
                            "checkpoint note, key {} ({:08x}): {e}",
                            vk.name(),
                            vk.key_id()
                        )
                    })
            }),
    )?;

    let cp = record(
        out,
        CHECK_CHECKPOINT,
        Checkpoint::parse_body(&text)
            .map_err(|e| format!("checkpoint body: {e}"))
            .and_then(|cp| {
                if cp.origin != p.origin {
                    Err(format!(
                        "checkpoint origin {:?} differs from bundle origin {:?}",
                        cp.origin, p.origin
                    ))
                } else if cp.size != p.tree_size {
                    Err(format!(
                        "checkpoint size {} differs from bundle tree_size {}",
                        cp.size, p.tree_size
                    ))
                } else {
                    let detail = format!(
                        "origin {}, size {}, root {}",
                        cp.origin,
                        cp.size,
                        B64.encode(cp.root)
                    );
                    Ok((cp, detail))
                }
            }),
    )?;

    record(
        out,
        CHECK_INCLUSION,
        merkle::verify_inclusion(&leaf, p.leaf_index, p.tree_size, p.proof, &cp.root)
            .map(|()| {
                let detail = format!(
                    "leaf {} is in the tree of {} leaves with the checkpoint root",
                    p.leaf_index, p.tree_size
                );
                ((), detail)
            })
            .map_err(|e| format!("RFC 9162 inclusion proof: {e}")),
    )?;

    Some(())
}

// ---------------------------------------------------------------------------------------------
// Webhook bundles
// ---------------------------------------------------------------------------------------------

const WEBHOOK_MEMBERS: [&str; 8] = [
    "format",
    "origin",
    "entry",
    "leaf_index",
    "tree_size",
    "leaf_hash",
    "inclusion_proof",
    "checkpoint",
];

/// Builds an `evidentia-webhook-bundle/v1` bundle for a notarised webhook delivery: `entry` is
/// its evidence-log entry (RFC 8785 JSON `{type: "webhook", event_id, source, provider, scheme,
/// delivery_id?, signed_timestamp?, received_at, sha256, size}`, times in Unix seconds) at leaf
/// `leaf_index` of `origin`, `proof` its RFC 9162 inclusion proof in the tree of `tree_size`
/// leaves signed by `checkpoint_note`, and `body` the raw delivery bytes while they are
/// retained (the member is omitted once purged).
///
/// Members: `format` ([`WEBHOOK_BUNDLE_FORMAT`]), `origin`, `entry` and `body` (standard
/// base64), `leaf_index`, `tree_size`, `leaf_hash` and `inclusion_proof` (standard base64
/// hashes, leaf end first), `checkpoint` (C2SP signed note).
pub fn make_webhook_bundle(
    origin: &str,
    entry: &[u8],
    body: Option<&[u8]>,
    leaf_index: u64,
    tree_size: u64,
    proof: &[Hash],
    checkpoint_note: &str,
) -> Value {
    let mut v = serde_json::json!({
        "format": WEBHOOK_BUNDLE_FORMAT,
        "origin": origin,
        "entry": B64.encode(entry),
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": B64.encode(merkle::leaf_hash(entry)),
        "inclusion_proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        "checkpoint": checkpoint_note,
    });
    if let (Some(body), Some(obj)) = (body, v.as_object_mut()) {
        obj.insert("body".into(), B64.encode(body).into());
    }
    v
}

struct WebhookBundle {
    origin: String,
    entry: Vec<u8>,
    body: Option<Vec<u8>>,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: Hash,
    proof: Vec<Hash>,
    checkpoint: String,
}

fn parse_webhook_bundle(obj: &Map<String, Value>) -> Result<WebhookBundle, String> {
    check_members(obj, &WEBHOOK_MEMBERS, &["body"])?;
    let (field, string, integer) = (
        |k| member(obj, k),
        |k| member_str(obj, k),
        |k| member_u64(obj, k),
    );
    let origin = string("origin")?;
    if !valid_origin(origin) {
        return Err(format!(
            "origin {origin:?} is not <appliance>/<tenant>/evidence"
        ));
    }
    let entry = B64
        .decode(string("entry")?)
        .map_err(|_| "entry is not standard base64".to_owned())?;
    let body = match obj.get("body") {
        None => None,
        Some(_) => Some(
            B64.decode(string("body")?)
                .map_err(|_| "body is not standard base64".to_owned())?,
        ),
    };
    let proof = field("inclusion_proof")
        .as_array()
        .ok_or_else(|| "inclusion_proof is not an array".to_owned())?;
    if proof.len() > MAX_PROOF_LEN {
        return Err(format!(
            "inclusion_proof has {} hashes, more than {MAX_PROOF_LEN}",
            proof.len()
        ));
    }
    let proof = proof
        .iter()
        .enumerate()
        .map(|(i, h)| b64_hash(&format!("inclusion_proof[{i}]"), h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WebhookBundle {
        origin: origin.to_owned(),
        entry,
        body,
        leaf_index: integer("leaf_index")?,
        tree_size: integer("tree_size")?,
        leaf_hash: b64_hash("leaf_hash", field("leaf_hash"))?,
        proof,
        checkpoint: string("checkpoint")?.to_owned(),
    })
}

/// The entry's claimed digest and size, after checking it is a canonical webhook entry.
fn check_webhook_entry(entry: &[u8]) -> Result<(([u8; 32], u64), String), String> {
    let v = parse_strict_json(entry).map_err(|e| format!("entry is not valid JSON: {e}"))?;
    if jcs(&v).map_err(|e| format!("entry: {e}"))? != entry {
        return Err("entry bytes are not in RFC 8785 canonical form".to_owned());
    }
    if v.get("type").and_then(Value::as_str) != Some("webhook") {
        return Err("entry type is not \"webhook\"".to_owned());
    }
    let sha = v
        .get("sha256")
        .and_then(Value::as_str)
        .and_then(parse_hex32)
        .ok_or_else(|| "entry sha256 is not 64 lowercase hex digits".to_owned())?;
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| "entry size is not a non-negative integer".to_owned())?;
    let id = v.get("event_id").and_then(Value::as_str).unwrap_or("-");
    Ok((
        (sha, size),
        format!("webhook delivery {id}: {size} bytes, sha256 {}", hex(&sha)),
    ))
}

fn run_webhook_checks(
    out: &mut Vec<CheckResult>,
    obj: &Map<String, Value>,
    key: &str,
) -> Option<()> {
    let b = record(
        out,
        CHECK_BUNDLE,
        parse_webhook_bundle(obj).map(|b| {
            let detail = format!(
                "{WEBHOOK_BUNDLE_FORMAT}: origin {}, leaf {} of tree size {}, {}, {} proof hashes",
                b.origin,
                b.leaf_index,
                b.tree_size,
                match &b.body {
                    Some(body) => format!("{}-byte body", body.len()),
                    None => "no body (purged)".to_owned(),
                },
                b.proof.len()
            );
            (b, detail)
        }),
    )?;
    let (sha, size) = record(out, CHECK_ENTRY, check_webhook_entry(&b.entry))?;
    record(
        out,
        CHECK_BODY_DIGEST,
        match &b.body {
            None => Ok((
                (),
                "no body in the bundle: whoever holds the bytes can compare them with the entry's sha256"
                    .to_owned(),
            )),
            Some(body) => {
                let digest: [u8; 32] = Sha256::digest(body).into();
                if digest != sha {
                    Err(format!(
                        "SHA-256 of the body is {}, the notarised entry says {}",
                        hex(&digest),
                        hex(&sha)
                    ))
                } else if body.len() as u64 != size {
                    Err(format!(
                        "the body is {} bytes, the notarised entry says {size}",
                        body.len()
                    ))
                } else {
                    Ok(((), format!("body matches sha256 {}", hex(&digest))))
                }
            }
        },
    )?;
    check_log(
        out,
        &LogPart {
            origin: &b.origin,
            entry: &b.entry,
            what: "entry",
            leaf_index: b.leaf_index,
            tree_size: b.tree_size,
            leaf_hash: b.leaf_hash,
            proof: &b.proof,
            checkpoint: &b.checkpoint,
        },
        key,
    )
}

fn check_receipt_signature(receipt: &[u8], secret: &[u8]) -> Result<((), String), String> {
    let value =
        parse_strict_json(receipt).map_err(|e| format!("receipt is not valid JSON: {e}"))?;
    let canonical = jcs(&value).map_err(|e| format!("receipt: {e}"))?;
    if canonical != receipt {
        return Err("receipt bytes are not in RFC 8785 canonical form".to_owned());
    }
    hs256_verify(secret, &value).map_err(|e| e.to_string())?;
    let kid = value
        .get("signer")
        .and_then(|s| s.get("kid"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    Ok(((), format!("HS256 signature verified (kid {kid:?})")))
}

// ---------------------------------------------------------------------------------------------
// CLI inputs
// ---------------------------------------------------------------------------------------------

/// Resolves the `--key VKEY` argument: if `arg` names an existing regular file, its contents
/// (UTF-8) with surrounding white space trimmed; otherwise `arg` itself, trimmed. The result is
/// the verifier key string for [`verify_bundle`].
///
/// # Errors
/// The I/O error if the file exists but cannot be read or is not UTF-8.
pub fn resolve_key_arg(arg: &str) -> std::io::Result<String> {
    let path = Path::new(arg);
    if path.is_file() {
        Ok(std::fs::read_to_string(path)?.trim().to_owned())
    } else {
        Ok(arg.trim().to_owned())
    }
}

/// `bytes` without one trailing `"\r\n"` or, failing that, one trailing `"\n"`.
pub fn strip_one_newline(bytes: &[u8]) -> &[u8] {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes)
}

/// Reads an HMAC secret file (`--hmac-secret-file F`): its raw bytes minus one trailing
/// `"\r\n"` or `"\n"` ([`strip_one_newline`]). An empty result is returned as is and fails
/// [`hs256_verify`] with [`ReceiptSigError::EmptySecret`].
///
/// # Errors
/// The I/O error of reading the file.
pub fn read_hmac_secret_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path)?;
    let keep = strip_one_newline(&bytes).len();
    bytes.truncate(keep);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::MemoryNodes;
    use crate::tlog::note::NoteSigner;
    use ed25519_dalek::SigningKey;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    const ORIGIN: &str = "evidentia.test/tenant-a/evidence";

    fn vector() -> Value {
        let p = format!("{VECTORS}/receipt-hs256.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    fn secret(v: &Value) -> Vec<u8> {
        v["secret"].as_str().unwrap().as_bytes().to_vec()
    }

    // ---- JCS and HS256 against the vector ----

    #[test]
    fn jcs_reproduces_vector_bytes() {
        let v = vector();
        let unsigned = jcs(&v["receipt_unsigned"]).unwrap();
        assert_eq!(unsigned, v["jcs_unsigned"].as_str().unwrap().as_bytes());
        let signed = jcs(&v["receipt_signed"]).unwrap();
        assert_eq!(
            hex(&Sha256::digest(&signed)),
            v["jcs_signed_sha256"].as_str().unwrap()
        );
        // Canonical bytes round-trip through the strict parser unchanged.
        assert_eq!(jcs(&parse_strict_json(&signed).unwrap()).unwrap(), signed);
    }

    #[test]
    fn jcs_rfc8785_details_and_unsafe_integers() {
        let v = parse_strict_json(
            br#"{"b":[1E2,-0,0.1,1.5e-7],"a":"\u00e9\u20ac/","\ufb01":1,"\ud83d\ude00":2,"z":null}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(jcs(&v).unwrap()).unwrap(),
            "{\"a\":\"é€/\",\"b\":[100,0,0.1,1.5e-7],\"z\":null,\"😀\":2,\"ﬁ\":1}" // UTF-16 order: D83D < FB01
        );
        assert!(jcs(&json!({"n": MAX_SAFE_INTEGER})).is_ok());
        assert!(jcs(&json!({"n": -(MAX_SAFE_INTEGER as i64)})).is_ok());
        assert!(matches!(
            jcs(&json!({"n": [MAX_SAFE_INTEGER + 1]})),
            Err(JcsError::UnsafeInteger(_))
        ));
        assert!(matches!(
            jcs(&json!({"n": i64::MIN})),
            Err(JcsError::UnsafeInteger(_))
        ));
        // Integer literals beyond u64/i64 reach us as doubles already rounded; an integral
        // double beyond 2^53 (1e21 included) is therefore refused too.
        for text in [
            &b"{\"n\":18446744073709551616}"[..],
            b"{\"n\":-9223372036854775809}",
            b"{\"n\":1e21}",
        ] {
            let v = parse_strict_json(text).unwrap();
            assert!(matches!(jcs(&v), Err(JcsError::UnsafeInteger(_))));
        }
        assert!(jcs(&parse_strict_json(b"{\"n\":1.5e300}").unwrap()).is_err());
        assert!(jcs(&parse_strict_json(b"{\"n\":0.5}").unwrap()).is_ok());
    }

    #[test]
    fn strict_parser_rejects_duplicates_and_trailing_data() {
        assert!(parse_strict_json(br#"{"a":1,"a":1}"#).is_err());
        assert!(parse_strict_json(br#"{"x":{"a":1,"b":{"a":2,"a":3}}}"#).is_err());
        assert!(parse_strict_json(br#"{"a":1} {}"#).is_err());
        assert!(parse_strict_json(br#""\ud800""#).is_err());
        assert!(parse_strict_json(&[b'['; 200]).is_err());
        assert_eq!(
            parse_strict_json(br#" {"a":[1,-2,3.5,true,null,"s"],"b":{}} "#).unwrap(),
            json!({"a":[1,-2,3.5,true,null,"s"],"b":{}})
        );
    }

    #[test]
    fn vector_signature_reproduces_and_verifies() {
        let v = vector();
        let s = secret(&v);
        let sig = hs256_sign(&s, &v["receipt_unsigned"]).unwrap();
        assert_eq!(sig, v["signature"].as_str().unwrap());
        hs256_verify(&s, &v["receipt_signed"]).unwrap();
        let mut rebuilt = v["receipt_unsigned"].clone();
        rebuilt["signature"] = json!(sig);
        assert_eq!(rebuilt, v["receipt_signed"]);
    }

    /// Every scalar in the receipt (except `signature`), by JSON pointer.
    fn scalar_pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    scalar_pointers(x, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    scalar_pointers(x, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }

    #[test]
    fn any_receipt_change_fails() {
        let v = vector();
        let s = secret(&v);
        let signed = &v["receipt_signed"];
        let mut pointers = Vec::new();
        scalar_pointers(signed, String::new(), &mut pointers);
        pointers.retain(|p| p != "/signature");
        assert!(pointers.len() >= 15, "{pointers:?}");
        for p in &pointers {
            let mut r = signed.clone();
            let x = r.pointer_mut(p).unwrap();
            *x = json!(format!("{}x", x.as_str().unwrap()));
            let want = if p == "/signer/alg" {
                ReceiptSigError::WrongAlg {
                    found: Some("HS256x".into()),
                }
            } else {
                ReceiptSigError::Mismatch
            };
            assert_eq!(hs256_verify(&s, &r), Err(want), "changed {p}");
        }
        // Removing any member, or adding one, also breaks it.
        for k in signed.as_object().unwrap().keys() {
            if k == "signature" || k == "signer" {
                continue;
            }
            let mut r = signed.clone();
            r.as_object_mut().unwrap().remove(k);
            assert_eq!(hs256_verify(&s, &r), Err(ReceiptSigError::Mismatch), "{k}");
        }
        let mut r = signed.clone();
        r["extra"] = json!(null);
        assert_eq!(hs256_verify(&s, &r), Err(ReceiptSigError::Mismatch));
        let mut r = signed.clone();
        r["evidence"]["artifacts"]
            .as_array_mut()
            .unwrap()
            .push(json!({}));
        assert_eq!(hs256_verify(&s, &r), Err(ReceiptSigError::Mismatch));
    }

    #[test]
    fn signature_signer_and_secret_failures() {
        let v = vector();
        let s = secret(&v);
        let signed = &v["receipt_signed"];
        let with = |f: &dyn Fn(&mut Value)| {
            let mut r = signed.clone();
            f(&mut r);
            hs256_verify(&s, &r)
        };
        use ReceiptSigError as E;
        assert_eq!(
            with(&|r| {
                r.as_object_mut().unwrap().remove("signature");
            }),
            Err(E::MissingSignature)
        );
        // Swapped signer.
        assert_eq!(
            with(&|r| r["signer"] = json!({"kid": "other", "alg": "HS256"})),
            Err(E::Mismatch)
        );
        assert_eq!(
            with(&|r| r["signer"]["alg"] = json!("EdDSA")),
            Err(E::WrongAlg {
                found: Some("EdDSA".into())
            })
        );
        assert_eq!(
            with(&|r| {
                r.as_object_mut().unwrap().remove("signer");
            }),
            Err(E::WrongAlg { found: None })
        );
        assert_eq!(
            with(&|r| r["signer"] = json!("HS256")),
            Err(E::WrongAlg { found: None })
        );
        // Different secrets.
        for other in [
            &b"evidence-signing-secret-0123456789abcdeF"[..],
            b"x",
            &[0u8; 64],
        ] {
            assert_eq!(hs256_verify(other, signed), Err(E::Mismatch));
        }
        assert_eq!(hs256_verify(b"", signed), Err(E::EmptySecret));
        // Encodings: the tag ends in 'M' (2 zero trailing bits); 'N' sets one, 'Q' is canonical.
        let sig = v["signature"].as_str().unwrap().to_owned();
        let set = |s: String| move |r: &mut Value| r["signature"] = json!(s.clone());
        assert_eq!(
            with(&set(format!("{sig}="))),
            Err(E::BadEncoding("not base64url without padding"))
        );
        assert_eq!(
            with(&set(sig.replace('_', "/"))),
            Err(E::BadEncoding("not base64url without padding"))
        );
        assert_eq!(
            with(&set(format!("{}N", &sig[..42]))),
            Err(E::BadEncoding("not base64url without padding"))
        );
        assert_eq!(with(&set(format!("{}Q", &sig[..42]))), Err(E::Mismatch));
        assert_eq!(
            with(&set(sig[..40].to_owned())),
            Err(E::BadEncoding("wrong length"))
        );
        assert_eq!(
            with(&set(B64URL.encode([0u8; 33]))),
            Err(E::BadEncoding("wrong length"))
        );
        assert_eq!(
            with(&set(String::new())),
            Err(E::BadEncoding("wrong length"))
        );
        assert_eq!(
            with(&|r| r["signature"] = json!(1)),
            Err(E::BadEncoding("not a string"))
        );
        assert_eq!(hs256_verify(&s, &json!([signed])), Err(E::NotAnObject));
        assert_eq!(
            with(&|r| r["n"] = json!(u64::MAX)),
            Err(E::Jcs(JcsError::UnsafeInteger(u64::MAX.to_string())))
        );
        // Signing preconditions.
        assert_eq!(hs256_sign(&s, signed), Err(E::AlreadySigned));
        assert_eq!(hs256_sign(b"", &v["receipt_unsigned"]), Err(E::EmptySecret));
        assert_eq!(hs256_sign(&s, &json!(null)), Err(E::NotAnObject));
        let mut eddsa = v["receipt_unsigned"].clone();
        eddsa["signer"]["alg"] = json!("EdDSA");
        assert!(matches!(hs256_sign(&s, &eddsa), Err(E::WrongAlg { .. })));
        assert_eq!(
            E::WrongAlg { found: None }.to_string(),
            "signer.alg is missing, expected \"HS256\""
        );
    }

    // ---- Bundles ----

    const SECRET: &[u8] = b"bundle-test-secret";

    /// A log of signed receipts (the vector's receipt with varying ids) and a checkpoint signer.
    struct Log {
        tree: MemoryNodes,
        receipts: Vec<Vec<u8>>,
        signer: NoteSigner,
    }

    fn signed_receipt(i: usize) -> Vec<u8> {
        let mut r = vector()["receipt_unsigned"].clone();
        r["receiptId"] = json!(format!("receipt-{i}"));
        r["runId"] = json!(format!("run-{i}"));
        let sig = hs256_sign(SECRET, &r).unwrap();
        r["signature"] = json!(sig);
        jcs(&r).unwrap()
    }

    fn log(n: usize) -> Log {
        let mut tree = MemoryNodes::new();
        let receipts: Vec<Vec<u8>> = (0..n).map(signed_receipt).collect();
        for r in &receipts {
            tree.append_entry(r);
        }
        let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap();
        Log {
            tree,
            receipts,
            signer,
        }
    }

    impl Log {
        fn key(&self) -> String {
            self.signer.verifier_key().to_string()
        }

        fn checkpoint(&self, origin: &str, size: u64) -> String {
            Checkpoint {
                origin: origin.to_owned(),
                size,
                root: merkle::root(&self.tree, size).unwrap(),
            }
            .sign(&self.signer)
            .unwrap()
        }

        fn bundle(&self, index: u64, size: u64) -> Value {
            let proof = merkle::inclusion_proof(&self.tree, index, size).unwrap();
            make_bundle(
                ORIGIN,
                &self.receipts[index as usize],
                index,
                size,
                &proof,
                &self.checkpoint(ORIGIN, size),
            )
        }
    }

    fn run(bundle: &Value, key: &str, secret: Option<&[u8]>) -> Vec<CheckResult> {
        verify_bundle(&serde_json::to_vec(bundle).unwrap(), key, secret)
    }

    const ALL: [&str; 7] = [
        CHECK_BUNDLE,
        CHECK_RECEIPT_DIGEST,
        CHECK_LEAF,
        CHECK_CHECKPOINT_SIGNATURE,
        CHECK_CHECKPOINT,
        CHECK_INCLUSION,
        CHECK_RECEIPT_SIGNATURE,
    ];

    /// The report shape: a prefix of `ALL`, only the last entry may fail.
    fn assert_shape(r: &[CheckResult]) {
        assert!(!r.is_empty());
        for (i, c) in r.iter().enumerate() {
            assert_eq!(c.name, ALL[i], "{r:#?}");
            assert!(c.ok || i == r.len() - 1, "{r:#?}");
            assert!(!c.detail.is_empty());
        }
    }

    fn assert_fails_at(r: &[CheckResult], name: &str) {
        assert_shape(r);
        let last = r.last().unwrap();
        assert!(
            !last.ok && last.name == name,
            "expected {name} to fail: {r:#?}"
        );
    }

    #[test]
    fn good_bundles_verify_every_check() {
        let log = log(7);
        for size in 1..=7u64 {
            for index in 0..size {
                let b = log.bundle(index, size);
                let r = run(&b, &log.key(), Some(SECRET));
                assert_shape(&r);
                assert_eq!(r.len(), 7);
                assert!(all_passed(&r), "{index}/{size}: {r:#?}");
                let r = run(&b, &log.key(), None);
                assert_eq!(r.len(), 6);
                assert!(all_passed(&r));
            }
        }
        // Key with surrounding white space (as read from a file), pretty-printed bundle.
        let b = serde_json::to_vec_pretty(&log.bundle(3, 7)).unwrap();
        let r = verify_bundle(&b, &format!("  {}\n", log.key()), Some(SECRET));
        assert!(all_passed(&r), "{r:#?}");
        assert!(r[0].detail.contains(ORIGIN));
        assert!(
            r[6].to_string()
                .starts_with("ok   receipt_signature: HS256")
        );
        assert!(!all_passed(&[]));
    }

    #[test]
    fn the_vector_receipt_in_a_bundle() {
        let v = vector();
        let bytes = jcs(&v["receipt_signed"]).unwrap();
        let mut tree = MemoryNodes::new();
        for i in 0..4 {
            tree.append_entry(&signed_receipt(i));
        }
        let index = tree.append_entry(&bytes);
        let signer = NoteSigner::new("evidentia.test", SigningKey::from_bytes(&[9; 32])).unwrap();
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: 5,
            root: merkle::root(&tree, 5).unwrap(),
        };
        let proof = merkle::inclusion_proof(&tree, index, 5).unwrap();
        let b = make_bundle(ORIGIN, &bytes, index, 5, &proof, &cp.sign(&signer).unwrap());
        assert_eq!(b["receipt_sha256"], v["jcs_signed_sha256"]);
        let key = signer.verifier_key().to_string();
        assert!(all_passed(&run(&b, &key, Some(&secret(&v)))));
        assert_fails_at(&run(&b, &key, Some(SECRET)), CHECK_RECEIPT_SIGNATURE);
        assert_fails_at(&run(&b, &key, Some(b"")), CHECK_RECEIPT_SIGNATURE);
    }

    /// A copy of `b` with `f` applied.
    fn edit(b: &Value, f: impl FnOnce(&mut Value)) -> Value {
        let mut b = b.clone();
        f(&mut b);
        b
    }

    fn set_receipt(b: &mut Value, bytes: &[u8], digest: bool, leaf: bool) {
        b["receipt"] = json!(B64.encode(bytes));
        if digest {
            b["receipt_sha256"] = json!(hex(&Sha256::digest(bytes)));
        }
        if leaf {
            b["leaf_hash"] = json!(B64.encode(merkle::leaf_hash(bytes)));
        }
    }

    #[test]
    fn tampering_fails_the_right_check() {
        let log = log(6);
        let key = log.key();
        let good = log.bundle(2, 6);
        let check = |b: &Value, name: &str| assert_fails_at(&run(b, &key, Some(SECRET)), name);

        // Receipt bytes: one byte changed at every position.
        let receipt = &log.receipts[2];
        for i in 0..receipt.len() {
            let mut bytes = receipt.clone();
            bytes[i] ^= 0x01;
            check(
                &edit(&good, |b| set_receipt(b, &bytes, false, false)),
                CHECK_RECEIPT_DIGEST,
            );
        }
        let mut bytes = receipt.clone();
        bytes[10] ^= 0x01;
        check(
            &edit(&good, |b| set_receipt(b, &bytes, true, false)),
            CHECK_LEAF,
        );
        check(
            &edit(&good, |b| set_receipt(b, &bytes, true, true)),
            CHECK_INCLUSION,
        );
        // Another log entry presented with this entry's proof.
        check(
            &edit(&good, |b| set_receipt(b, &log.receipts[3], true, true)),
            CHECK_INCLUSION,
        );

        // Proof hashes: one bit of each, each dropped, one added.
        let proof = merkle::inclusion_proof(&log.tree, 2, 6).unwrap();
        assert_eq!(proof.len(), 3);
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][i] ^= 0x80;
            check(
                &edit(&good, |b| b["inclusion_proof"][i] = json!(B64.encode(p[i]))),
                CHECK_INCLUSION,
            );
            check(
                &edit(&good, |b| {
                    b["inclusion_proof"].as_array_mut().unwrap().remove(i);
                }),
                CHECK_INCLUSION,
            );
        }
        check(
            &edit(&good, |b| {
                b["inclusion_proof"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(B64.encode([0u8; 32])))
            }),
            CHECK_INCLUSION,
        );

        // Checkpoint text: size, root, signature.
        let cp = good["checkpoint"].as_str().unwrap().to_owned();
        let lines: Vec<&str> = cp.split('\n').collect();
        assert_eq!(lines[1], "6");
        let replace_line = |n: usize, with: &str| {
            let mut l = lines.clone();
            l[n] = with;
            l.join("\n")
        };
        let other_root = B64.encode(merkle::root(&log.tree, 5).unwrap());
        let mut bad_sig = lines[4].as_bytes().to_vec();
        let at = bad_sig.len() - 10;
        bad_sig[at] = if bad_sig[at] == b'A' { b'B' } else { b'A' };
        let bad_sig = String::from_utf8(bad_sig).unwrap();
        for text in [
            replace_line(1, "5"),
            replace_line(1, "7"),
            replace_line(2, &other_root),
            replace_line(4, &bad_sig),
            cp.replace("\n\n", "\nextension\n\n"),
            cp.trim_end().to_owned(),
            "x".to_owned(),
        ] {
            check(
                &edit(&good, |b| b["checkpoint"] = json!(text)),
                CHECK_CHECKPOINT_SIGNATURE,
            );
        }
        // Every single-bit change of the note (that stays UTF-8).
        let mut tried = 0;
        for i in 0..cp.len() {
            let mut bytes = cp.clone().into_bytes();
            bytes[i] ^= 0x01;
            if let Ok(text) = String::from_utf8(bytes) {
                tried += 1;
                check(
                    &edit(&good, |b| b["checkpoint"] = json!(text)),
                    CHECK_CHECKPOINT_SIGNATURE,
                );
            }
        }
        assert!(tried > 100);

        // The key: another key, same name; another name; malformed; empty.
        let other = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8; 32])).unwrap();
        let renamed = NoteSigner::new("other-name", SigningKey::from_bytes(&[7; 32])).unwrap();
        for k in [
            other.verifier_key().to_string(),
            renamed.verifier_key().to_string(),
            key.replacen('+', "+0", 1),
            key[..key.len() - 4].to_owned(),
            String::new(),
        ] {
            assert_fails_at(&run(&good, &k, None), CHECK_CHECKPOINT_SIGNATURE);
        }

        // Checkpoint correctly signed but for another origin or size.
        let other_origin = "evidentia.test/tenant-b/evidence";
        check(
            &edit(&good, |b| {
                b["checkpoint"] = json!(log.checkpoint(other_origin, 6))
            }),
            CHECK_CHECKPOINT,
        );
        check(
            &edit(&good, |b| {
                b["checkpoint"] = json!(log.checkpoint(ORIGIN, 5))
            }),
            CHECK_CHECKPOINT,
        );
        // Bundle metadata: origin, tree_size, leaf_index.
        check(
            &edit(&good, |b| b["origin"] = json!(other_origin)),
            CHECK_CHECKPOINT,
        );
        check(
            &edit(&good, |b| b["tree_size"] = json!(5)),
            CHECK_CHECKPOINT,
        );
        for index in [0u64, 1, 3, 4, 5, 6, 7, 1 << 40, u64::MAX] {
            check(
                &edit(&good, |b| b["leaf_index"] = json!(index)),
                CHECK_INCLUSION,
            );
        }

        // HMAC: wrong secret, and canonical-form enforcement with consistent digest and leaf.
        assert_fails_at(&run(&good, &key, Some(b"wrong")), CHECK_RECEIPT_SIGNATURE);
        assert_fails_at(&run(&good, &key, Some(b"")), CHECK_RECEIPT_SIGNATURE);
        let log2 = Log {
            receipts: log
                .receipts
                .iter()
                .map(|r| {
                    let mut pretty =
                        serde_json::to_vec_pretty(&parse_strict_json(r).unwrap()).unwrap();
                    pretty.push(b'\n');
                    pretty
                })
                .collect(),
            tree: MemoryNodes::new(),
            signer: log.signer.clone(),
        };
        let mut log2 = log2;
        for r in log2.receipts.clone() {
            log2.tree.append_entry(&r);
        }
        let pretty = log2.bundle(2, 6);
        assert!(all_passed(&run(&pretty, &key, None)));
        let r = run(&pretty, &key, Some(SECRET));
        assert_fails_at(&r, CHECK_RECEIPT_SIGNATURE);
        assert!(r[6].detail.contains("canonical"), "{r:#?}");
    }

    #[test]
    fn malformed_bundles_fail_the_bundle_check() {
        let log = log(3);
        let key = log.key();
        let good = log.bundle(1, 3);
        let fails = |bytes: &[u8]| assert_fails_at(&verify_bundle(bytes, &key, None), CHECK_BUNDLE);
        let fails_v = |b: Value| fails(&serde_json::to_vec(&b).unwrap());
        fails(b"");
        fails(b"not json");
        fails(b"[]");
        fails(b"null");
        fails(&[0xff, 0xfe]);
        let text = serde_json::to_string(&good).unwrap();
        fails(format!("{text} {text}").as_bytes());
        fails(
            text.replacen('{', r#"{"origin":"a/b/evidence","#, 1)
                .as_bytes(),
        ); // duplicate member
        for m in MEMBERS {
            fails_v(edit(&good, |b| {
                b.as_object_mut().unwrap().remove(m);
            }));
            fails_v(edit(&good, |b| b[m] = json!(null)));
            fails_v(edit(&good, |b| b[m] = json!({})));
        }
        fails_v(edit(&good, |b| b["extra"] = json!(1)));
        fails_v(edit(&good, |b| {
            b["format"] = json!("evidentia-receipt-bundle/v2")
        }));
        for origin in [
            "",
            "a/evidence",
            "a//evidence",
            "a/b/audit",
            "a/b/evidence/",
            "a/b\n/evidence",
        ] {
            fails_v(edit(&good, |b| b["origin"] = json!(origin)));
        }
        for receipt in ["", "!!!!", "eyJ9f", "eyJ9fQ", "eyJ9fR=="] {
            fails_v(edit(&good, |b| b["receipt"] = json!(receipt)));
        }
        let digest = good["receipt_sha256"].as_str().unwrap().to_owned();
        for d in [
            digest.to_uppercase(),
            digest[..62].to_owned(),
            format!("{digest}00"),
            digest.replacen(|c: char| c.is_ascii_digit(), "g", 1),
        ] {
            fails_v(edit(&good, |b| b["receipt_sha256"] = json!(d)));
        }
        for n in [json!(-1), json!(1.5), json!(1.0), json!("1"), json!(1e30)] {
            fails_v(edit(&good, |b| b["leaf_index"] = n.clone()));
            fails_v(edit(&good, |b| b["tree_size"] = n));
        }
        for h in [
            json!(""),
            json!(B64.encode([0u8; 31])),
            json!(B64.encode([0u8; 33])),
            json!(B64URL.encode([0xffu8; 32])),
            json!(7),
        ] {
            fails_v(edit(&good, |b| b["leaf_hash"] = h.clone()));
            fails_v(edit(&good, |b| b["inclusion_proof"][0] = h));
        }
        fails_v(edit(&good, |b| {
            b["inclusion_proof"] = json!(vec![B64.encode([0u8; 32]); 65])
        }));
        fails_v(edit(&good, |b| b["checkpoint"] = json!("")));
        // 64 hashes is well-formed (then fails inclusion).
        assert_fails_at(
            &run(
                &edit(&good, |b| {
                    b["inclusion_proof"] = json!(vec![B64.encode([0u8; 32]); 64])
                }),
                &key,
                None,
            ),
            CHECK_INCLUSION,
        );
    }

    #[test]
    fn random_mutations_never_panic_or_pass() {
        let log = log(5);
        let key = log.key();
        let good = serde_json::to_vec(&log.bundle(3, 5)).unwrap();
        assert!(all_passed(&verify_bundle(&good, &key, Some(SECRET))));
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..3000 {
            let mut b = good.clone();
            for _ in 0..rng.random_range(1..=3) {
                let i = rng.random_range(0..b.len());
                let byte = if rng.random_bool(0.5) {
                    rng.random::<u8>()
                } else {
                    *b"0123456789abcdefAQ+/=\"{}[],:\\ -n"
                        .get(rng.random_range(0..32))
                        .unwrap()
                };
                b[i] = byte;
            }
            if rng.random_bool(0.1) {
                b.truncate(rng.random_range(0..b.len()));
            }
            let r = verify_bundle(&b, &key, Some(SECRET));
            assert_shape(&r);
            assert!(
                b == good || !all_passed(&r),
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
        // Arbitrary keys and secrets do not panic either.
        for k in [
            "+",
            "++",
            "a+zzzzzzzz+",
            "a+00000000+AQ==",
            "\u{2014}",
            "a\nb",
        ] {
            assert_fails_at(&verify_bundle(&good, k, None), CHECK_CHECKPOINT_SIGNATURE);
        }
    }

    // ---- CLI inputs ----

    fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("verify-test-{}-{name}", std::process::id()));
        std::fs::write(&p, contents).unwrap();
        p
    }

    #[test]
    fn key_argument_and_secret_file() {
        let log = log(1);
        let key = log.key();
        let p = temp_file("key", format!("{key}\n").as_bytes());
        assert_eq!(resolve_key_arg(p.to_str().unwrap()).unwrap(), key);
        assert_eq!(resolve_key_arg(&key).unwrap(), key);
        assert_eq!(resolve_key_arg(&format!(" {key} ")).unwrap(), key);
        let missing = std::env::temp_dir().join("verify-test-no-such-file");
        assert_eq!(
            resolve_key_arg(missing.to_str().unwrap()).unwrap(),
            missing.to_str().unwrap()
        );
        std::fs::remove_file(&p).unwrap();

        assert_eq!(strip_one_newline(b"s\n"), b"s");
        assert_eq!(strip_one_newline(b"s\r\n"), b"s");
        assert_eq!(strip_one_newline(b"s\n\n"), b"s\n");
        assert_eq!(strip_one_newline(b"s\r\n\r\n"), b"s\r\n");
        assert_eq!(strip_one_newline(b"s\r"), b"s\r");
        assert_eq!(strip_one_newline(b" s "), b" s ");
        assert_eq!(strip_one_newline(b""), b"");
        let p = temp_file("secret", b"bundle-test-secret\r\n");
        let s = read_hmac_secret_file(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(s, SECRET);
        let b = serde_json::to_vec(&log.bundle(0, 1)).unwrap();
        assert!(all_passed(&verify_bundle(&b, &key, Some(&s))));
        assert!(read_hmac_secret_file(&missing).is_err());
    }

    #[test]
    fn webhook_bundles_verify_with_and_without_body_and_catch_tampering() {
        let body = br#"{"hello":"world"}"#;
        let entry = |i: u64| {
            jcs(&json!({
                "type": "webhook", "event_id": format!("evt_{i}"), "source": "src_a",
                "provider": "github", "scheme": "github", "delivery_id": format!("d{i}"),
                "received_at": 1_700_000_000u64 + i,
                "sha256": hex(&Sha256::digest(body)), "size": body.len()
            }))
            .unwrap()
        };
        let mut tree = MemoryNodes::new();
        let entries: Vec<Vec<u8>> = (0..5).map(entry).collect();
        for e in &entries {
            tree.append_entry(e);
        }
        let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap();
        let key = signer.verifier_key().to_string();
        let note = Checkpoint {
            origin: ORIGIN.into(),
            size: 5,
            root: merkle::root(&tree, 5).unwrap(),
        }
        .sign(&signer)
        .unwrap();
        let proof = merkle::inclusion_proof(&tree, 3, 5).unwrap();
        let check = |v: &Value| verify_bundle(&serde_json::to_vec(v).unwrap(), &key, None);
        let good = make_webhook_bundle(ORIGIN, &entries[3], Some(body), 3, 5, &proof, &note);
        let r = check(&good);
        assert!(all_passed(&r), "{r:#?}");
        let names: Vec<&str> = r.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                CHECK_BUNDLE,
                CHECK_ENTRY,
                CHECK_BODY_DIGEST,
                CHECK_LEAF,
                CHECK_CHECKPOINT_SIGNATURE,
                CHECK_CHECKPOINT,
                CHECK_INCLUSION
            ]
        );
        // Purged body: the leaf still proves the delivery.
        let purged = make_webhook_bundle(ORIGIN, &entries[3], None, 3, 5, &proof, &note);
        assert!(all_passed(&check(&purged)));
        let last = |v: &Value| check(v).last().map(|c| (c.name, c.ok)).unwrap();
        // Other bytes than the notarised ones.
        let swapped = make_webhook_bundle(ORIGIN, &entries[3], Some(b"{}"), 3, 5, &proof, &note);
        assert_eq!(last(&swapped), (CHECK_BODY_DIGEST, false));
        // Another delivery's entry at this index.
        let mut other = good.clone();
        other["entry"] = json!(B64.encode(&entries[2]));
        other["leaf_hash"] = json!(B64.encode(merkle::leaf_hash(&entries[2])));
        assert_eq!(last(&other), (CHECK_INCLUSION, false));
        // A non-canonical entry.
        let mut loose = good.clone();
        let mut spaced = b" ".to_vec();
        spaced.extend_from_slice(&entries[3]);
        loose["entry"] = json!(B64.encode(&spaced));
        assert_eq!(last(&loose), (CHECK_ENTRY, false));
        // Unknown members and a wrong key.
        let mut extra = good.clone();
        extra["x"] = json!(1);
        assert_eq!(last(&extra), (CHECK_BUNDLE, false));
        let other_key = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8; 32]))
            .unwrap()
            .verifier_key()
            .to_string();
        let r = verify_bundle(&serde_json::to_vec(&good).unwrap(), &other_key, None);
        assert_eq!(
            r.last().map(|c| (c.name, c.ok)),
            Some((CHECK_CHECKPOINT_SIGNATURE, false))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Access receipts
// ---------------------------------------------------------------------------------------------

/// Check name: the JWS verifies with the pinned key and its `kid` is the key's
/// (`<name>+<key id>`).
pub const CHECK_ACCESS_SIGNATURE: &str = "access_signature";
/// Check name (with the answer's bytes): `res.sha256` is the SHA-256 of the bytes, or, for a
/// JSON view carrying the receipt in its `receipt` member, of its RFC 8785 form without it.
pub const CHECK_ACCESS_RESOURCE: &str = "access_resource";
/// Check name (with a checkpoint and an inclusion proof of the audit log): the receipt's
/// audit leaf is in the log under the signed checkpoint.
pub const CHECK_ACCESS_AUDIT_LEAF: &str = "access_audit_leaf";

/// The audit-log part of [`verify_access_receipt`]: the log's signed checkpoint (C2SP signed
/// note, `GET …/logs/audit/checkpoint`) and the inclusion proof JSON of the receipt's leaf
/// (`GET …/logs/audit/proofs/inclusion?index=N`: `{index, tree_size, leaf_hash,
/// inclusion_proof}`).
#[derive(Debug, Clone, Copy)]
pub struct AuditEvidence<'a> {
    /// The checkpoint text.
    pub checkpoint: &'a str,
    /// The inclusion proof JSON.
    pub proof_json: &'a [u8],
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionJson {
    index: u64,
    tree_size: u64,
    leaf_hash: String,
    inclusion_proof: Vec<String>,
}

/// Verifies a signed access receipt offline (see [`crate::audit::access_receipt`]):
/// signature and key id against `key` (the signed-note verifier key string of `GET
/// /api/keys`), then, when given, the answer's bytes against `res.sha256` and the audit leaf
/// against a checkpoint and inclusion proof of the audit log. Returns every check made;
/// stops at the first failure.
pub fn verify_access_receipt(
    receipt: &str,
    key: &str,
    body: Option<&[u8]>,
    audit: Option<AuditEvidence<'_>>,
) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(3);
    let _ = access_checks(&mut out, receipt.trim(), key, body, audit);
    out
}

fn access_checks(
    out: &mut Vec<CheckResult>,
    receipt: &str,
    key: &str,
    body: Option<&[u8]>,
    audit: Option<AuditEvidence<'_>>,
) -> Option<()> {
    use crate::audit::access_receipt;
    let Ok(vkey) = VerifierKey::parse(key.trim()) else {
        out.push(CheckResult {
            name: CHECK_ACCESS_SIGNATURE,
            ok: false,
            detail: "the verifier key is not a signed-note key (name+keyid+base64)".into(),
        });
        return None;
    };
    let kid = format!("{}+{:08x}", vkey.name(), vkey.key_id());
    let claims = record(
        out,
        CHECK_ACCESS_SIGNATURE,
        access_receipt::verify(receipt, vkey.verifying_key(), Some(&kid))
            .map(|c| {
                let detail = format!(
                    "{} by {} on {} {} in {}: {} (audit leaf {} of {})",
                    c.act, c.sub, c.res.kind, c.res.id, c.tenant, c.dec, c.audit.index, c.audit.log
                );
                (c, detail)
            })
            .map_err(|e| format!("{e}")),
    )?;
    if let Some(bytes) = body {
        let digest = match parse_strict_json(bytes) {
            Ok(Value::Object(mut obj))
                if obj.get("receipt").and_then(Value::as_str) == Some(receipt) =>
            {
                obj.remove("receipt");
                jcs(&Value::Object(obj)).map(|c| hex(&Sha256::digest(&c)))
            }
            _ => Ok(hex(&Sha256::digest(bytes))),
        };
        record(
            out,
            CHECK_ACCESS_RESOURCE,
            match digest {
                Ok(d) if d == claims.res.sha256 => Ok(((), format!("sha256 {d}"))),
                Ok(d) => Err(format!(
                    "the answer's SHA-256 is {d}, the receipt says {}",
                    claims.res.sha256
                )),
                Err(e) => Err(e.to_string()),
            },
        )?;
    }
    if let Some(ev) = audit {
        let result = serde_json::from_slice::<InclusionJson>(ev.proof_json)
            .map_err(|e| format!("the inclusion proof is not the API's JSON: {e}"))
            .and_then(|p| {
                if p.index != claims.audit.index || p.leaf_hash != claims.audit.leaf_hash {
                    return Err(format!(
                        "the proof is for leaf {} ({}), the receipt names leaf {} ({})",
                        p.index, p.leaf_hash, claims.audit.index, claims.audit.leaf_hash
                    ));
                }
                let hashes = p
                    .inclusion_proof
                    .iter()
                    .map(|h| {
                        B64.decode(h)
                            .ok()
                            .filter(|b| b.len() == HASH_LEN)
                            .ok_or_else(|| "a proof hash is not base64 of 32 bytes".to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let cp = note::open_checkpoint(ev.checkpoint, &vkey)
                    .map_err(|e| format!("checkpoint: {e}"))?;
                if cp.size != p.tree_size {
                    return Err(format!(
                        "the proof is for tree size {}, the checkpoint is of size {} (ask for \
                         the proof with tree_size={})",
                        p.tree_size, cp.size, cp.size
                    ));
                }
                access_receipt::verify_audit_leaf(&claims, ev.checkpoint, &vkey, &hashes, None)
                    .map_err(|e| e.to_string())?;
                Ok((
                    (),
                    format!(
                        "leaf {} in {} under the signed checkpoint of size {}",
                        claims.audit.index, cp.origin, cp.size
                    ),
                ))
            });
        record(out, CHECK_ACCESS_AUDIT_LEAF, result)?;
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------
// Audit exports
// ---------------------------------------------------------------------------------------------

/// Check name: the zip holds exactly the four members, each within the size bound.
pub const CHECK_EXPORT_ARCHIVE: &str = "export_archive";
/// Check name: `manifest.json` is canonical RFC 8785 JSON of the v1 manifest and every
/// member's SHA-256 matches it.
pub const CHECK_EXPORT_MANIFEST: &str = "export_manifest";
/// Check name: the checkpoint verifies with the pinned key, names the manifest's log (and
/// tenant) and has its tree size.
pub const CHECK_EXPORT_CHECKPOINT: &str = "export_checkpoint";
/// Check name: every record hashes to its leaf at consecutive indexes and every inclusion
/// proof leads to the checkpoint's root.
pub const CHECK_EXPORT_RECORDS: &str = "export_records";

/// Largest member [`verify_audit_export`] decompresses, bytes (10,000 records of at most a few
/// KiB and their proofs fit well below it).
pub const MAX_EXPORT_MEMBER_BYTES: u64 = 256 << 20;

fn read_member(
    zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = zip
        .by_name(name)
        .map_err(|e| format!("member {name}: {e}"))?;
    let mut out = Vec::new();
    file.take(MAX_EXPORT_MEMBER_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("member {name} does not decompress: {e}"))?;
    if out.len() as u64 > MAX_EXPORT_MEMBER_BYTES {
        return Err(format!(
            "member {name} is larger than {MAX_EXPORT_MEMBER_BYTES} bytes"
        ));
    }
    Ok(out)
}

/// Verifies an `evidentia-audit-export/v1` zip offline against `key` (the signed-note verifier
/// key string of `GET /api/keys`): see [`crate::audit::export`] for what each check covers.
/// Returns every check made; stops at the first failure.
pub fn verify_audit_export(zip_bytes: &[u8], key: &str) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(4);
    let _ = export_checks(&mut out, zip_bytes, key);
    out
}

fn export_checks(out: &mut Vec<CheckResult>, zip_bytes: &[u8], key: &str) -> Option<()> {
    use crate::audit::export::{self as ex, Manifest, ProofLine};
    let members = record(
        out,
        CHECK_EXPORT_ARCHIVE,
        (|| {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))
                .map_err(|e| format!("not a zip archive: {e}"))?;
            let mut names: Vec<String> = zip
                .file_names()
                .map(|n| n.map(|n| n.to_string()).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            names.sort();
            let mut want = vec![ex::CHECKPOINT, ex::EVENTS, ex::MANIFEST, ex::PROOFS];
            want.sort_unstable();
            if names != want {
                return Err(format!("members {names:?}, expected exactly {want:?}"));
            }
            let mut get = |n| read_member(&mut zip, n);
            let m = (
                get(ex::MANIFEST)?,
                get(ex::EVENTS)?,
                get(ex::PROOFS)?,
                get(ex::CHECKPOINT)?,
            );
            // The container itself: exactly the appliance's packing of these members.
            if ex::pack(&m.0, &m.1, &m.2, &m.3)? != zip_bytes {
                return Err(
                    "the zip container is not the appliance's packing of its members \
                            (changed or repacked)"
                        .into(),
                );
            }
            Ok((
                m,
                "4 members, packed as the appliance packs them".to_string(),
            ))
        })(),
    )?;
    let (manifest_bytes, events, proofs, checkpoint) = members;
    let manifest = record(
        out,
        CHECK_EXPORT_MANIFEST,
        (|| {
            let value = parse_strict_json(&manifest_bytes)
                .map_err(|e| format!("manifest.json is not JSON: {e}"))?;
            if jcs(&value).map_err(|e| e.to_string())? != manifest_bytes {
                return Err("manifest.json is not in RFC 8785 canonical form".into());
            }
            let m: Manifest = serde_json::from_value(value)
                .map_err(|e| format!("manifest.json is not a v1 manifest: {e}"))?;
            if m.format != ex::FORMAT {
                return Err(format!("format {:?}, expected {:?}", m.format, ex::FORMAT));
            }
            for (name, bytes) in [
                (ex::EVENTS, &events),
                (ex::PROOFS, &proofs),
                (ex::CHECKPOINT, &checkpoint),
            ] {
                let got = hex(&Sha256::digest(bytes));
                if m.files.get(name) != Some(&got) || m.files.len() != 3 {
                    return Err(format!("{name}: SHA-256 {got} is not the manifest's"));
                }
            }
            let detail = format!(
                "{} records from index {} of {} (tree size {})",
                m.count, m.first_index, m.origin, m.tree_size
            );
            Ok((m, detail))
        })(),
    )?;
    let cp = record(
        out,
        CHECK_EXPORT_CHECKPOINT,
        (|| {
            let vkey = VerifierKey::parse(key.trim())
                .map_err(|e| format!("the verifier key is invalid: {e}"))?;
            let text = std::str::from_utf8(&checkpoint)
                .map_err(|_| "checkpoint.txt is not UTF-8".to_string())?;
            let cp = note::open_checkpoint(text, &vkey).map_err(|e| e.to_string())?;
            if cp.origin != manifest.origin {
                return Err(format!(
                    "the checkpoint is of {}, the manifest says {}",
                    cp.origin, manifest.origin
                ));
            }
            let tenant_of_origin = match cp.origin.rsplit('/').next() {
                Some("system") => crate::audit::APPLIANCE_SCOPE,
                _ => cp.origin.rsplit('/').nth(1).unwrap_or_default(),
            };
            if tenant_of_origin != manifest.tenant {
                return Err(format!(
                    "the log {} is not tenant {}'s audit log",
                    cp.origin, manifest.tenant
                ));
            }
            if cp.size != manifest.tree_size {
                return Err(format!(
                    "the checkpoint is of size {}, the manifest says {}",
                    cp.size, manifest.tree_size
                ));
            }
            let detail = format!(
                "{} at size {} signed by {}",
                cp.origin,
                cp.size,
                vkey.name()
            );
            Ok((cp, detail))
        })(),
    )?;
    record(
        out,
        CHECK_EXPORT_RECORDS,
        (|| {
            let lines: Vec<&[u8]> = events
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            let proof_lines: Vec<&[u8]> = proofs
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            if lines.len() as u64 != manifest.count || proof_lines.len() != lines.len() {
                return Err(format!(
                    "{} records and {} proofs, the manifest says {}",
                    lines.len(),
                    proof_lines.len(),
                    manifest.count
                ));
            }
            if manifest
                .first_index
                .checked_add(manifest.count)
                .is_none_or(|end| end > cp.size)
            {
                return Err("the records reach beyond the checkpoint".into());
            }
            for (i, (line, proof)) in lines.iter().zip(&proof_lines).enumerate() {
                let index = manifest.first_index + i as u64;
                let p: ProofLine =
                    serde_json::from_slice(proof).map_err(|e| format!("proof line {i}: {e}"))?;
                let leaf = merkle::leaf_hash(line);
                if p.index != index || p.leaf_hash != B64.encode(leaf) {
                    return Err(format!(
                        "record {index}: its leaf hash is not the proof's (changed record?)"
                    ));
                }
                let hashes = p
                    .inclusion_proof
                    .iter()
                    .map(|h| {
                        B64.decode(h)
                            .ok()
                            .and_then(|b| Hash::try_from(b.as_slice()).ok())
                            .ok_or_else(|| format!("record {index}: a proof hash is malformed"))
                    })
                    .collect::<Result<Vec<Hash>, _>>()?;
                merkle::verify_inclusion(&leaf, index, cp.size, &hashes, &cp.root)
                    .map_err(|e| format!("record {index}: {e}"))?;
            }
            Ok((
                (),
                format!(
                    "{} records included in the signed tree of size {}",
                    lines.len(),
                    cp.size
                ),
            ))
        })(),
    )?;
    Some(())
}
