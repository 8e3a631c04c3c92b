//! C2SP signed notes with Ed25519 (<https://c2sp.org/signed-note>) and the C2SP
//! `tlog-checkpoint` note body (<https://c2sp.org/tlog-checkpoint>).
//!
//! A signed note is `text ‖ "\n" ‖ signature lines`, where the text ends in a newline and each
//! signature line is `"— " ‖ key name ‖ " " ‖ base64(key ID ‖ signature) ‖ "\n"` (the dash is
//! U+2014). The Ed25519 signature (RFC 8032) covers the text including its final newline. The key
//! ID is `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]`, big-endian. Verifier keys
//! are shared as `<name>+<8 hex key ID>+<base64(0x01 ‖ public key)>`.
//!
//! Base64 is the RFC 4648 §4 standard alphabet with padding, decoded strictly (canonical
//! trailing bits).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// Signature type identifier byte of Ed25519 signatures (C2SP signed-note, "Signature types").
pub const ALG_ED25519: u8 = 0x01;

/// Maximum number of signature lines accepted in a note (the spec requires at least 16; this is
/// Go `golang.org/x/mod/sumdb/note`'s limit).
pub const MAX_SIGNATURES: usize = 100;

/// The signature line prefix: EM DASH (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Errors of signed-note signing, verification and verifier-key parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is not valid UTF-8 (signed-note "Format").
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// The note or text contains an ASCII control character other than newline at this byte
    /// offset (signed-note "Format").
    #[error("control character at byte {0}")]
    ControlCharacter(usize),
    /// The text to sign is empty or does not end in a newline.
    #[error("note text must be non-empty and end in a newline")]
    TextNotNewlineTerminated,
    /// No blank line separates the text from the signatures.
    #[error("note has no blank line before its signatures")]
    MissingSeparator,
    /// The signature block is empty or does not end in a newline.
    #[error("note has no signature lines or they do not end in a newline")]
    MalformedSignatureBlock,
    /// Signature line `line` (1-based) is not `— <name> <base64>` with a valid name and at
    /// least 5 decoded bytes.
    #[error("malformed signature line {line}")]
    MalformedSignatureLine {
        /// 1-based signature line number.
        line: usize,
    },
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A key name is empty or contains a Unicode space or `+` (signed-note "Format").
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// A signature whose key name and key ID match the verifier key does not verify; the whole
    /// note is rejected (signed-note "Signatures": clients SHOULD reject).
    #[error("signature by {name} ({key_id:08x}) does not verify")]
    InvalidSignature {
        /// Key name on the failing line.
        name: String,
        /// Key ID on the failing line.
        key_id: u32,
    },
    /// No signature line matches any of the verifier keys (signed-note "Signatures": MUST
    /// reject).
    #[error("note has no signature by a known key")]
    NoKnownSignature,
    /// A verifier key string is not `<name>+<8 hex>+<base64(0x01 ‖ 32-byte key)>`.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A verifier key's signature type byte is not [`ALG_ED25519`].
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedAlgorithm(u8),
    /// A verifier key's key ID does not match its name and public key.
    #[error("verifier key ID {got:08x} does not match name and key (expected {expected:08x})")]
    KeyIdMismatch {
        /// Key ID in the string.
        got: u32,
        /// Key ID computed from name and public key.
        expected: u32,
    },
}

/// Whether `name` is a valid key name: non-empty, no Unicode white space, no `+`
/// (signed-note "Format").
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

/// Position of the first ASCII control character other than `\n`, if any.
fn find_control(s: &str) -> Option<usize> {
    s.bytes().position(|b| b < 0x20 && b != b'\n')
}

/// Ed25519 key ID: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]` as a big-endian `u32`
/// (signed-note "Ed25519 signatures").
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(key.as_bytes());
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A note verifier key: key name, key ID and Ed25519 public key.
///
/// Text form (signed-note verifier key encoding, as in Go `sumdb/note`):
/// `<name>+<key ID as 8 lowercase hex digits>+<base64(0x01 ‖ 32-byte public key)>`; see
/// [`Display`](fmt::Display) and [`FromStr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The verifier key for `name` and `key`, computing the key ID.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`].
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// Parses the text form `<name>+<8 hex>+<base64(0x01 ‖ key)>`. The hex digits may be in
    /// either case but must be exactly 8 and must equal the key ID computed from name and key.
    ///
    /// # Errors
    /// [`NoteError::MalformedVerifierKey`], [`NoteError::InvalidKeyName`],
    /// [`NoteError::UnsupportedAlgorithm`], [`NoteError::KeyIdMismatch`].
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedVerifierKey("expected name+keyid+key"));
        };
        check_key_name(name)?;
        if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NoteError::MalformedVerifierKey(
                "key ID is not 8 hex digits",
            ));
        }
        let got = u32::from_str_radix(hex, 16)
            .map_err(|_| NoteError::MalformedVerifierKey("key ID is not 8 hex digits"))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::MalformedVerifierKey("key is not standard base64"))?;
        let (&alg, key) = raw
            .split_first()
            .ok_or(NoteError::MalformedVerifierKey("empty key"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm(alg));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::MalformedVerifierKey("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::MalformedVerifierKey("invalid Ed25519 public key"))?;
        let expected = key_id(name, &key);
        if got != expected {
            return Err(NoteError::KeyIdMismatch { got, expected });
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: got,
            key,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID (first 4 bytes of the key hash, big-endian).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Display for VerifierKey {
    /// Formats `<name>+<8 lowercase hex>+<base64(0x01 ‖ key)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, B64.encode(raw))
    }
}

impl FromStr for VerifierKey {
    type Err = NoteError;

    /// Same as [`VerifierKey::parse`].
    fn from_str(s: &str) -> Result<Self, NoteError> {
        Self::parse(s)
    }
}

/// An Ed25519 note signer: key name plus signing key. `Debug` does not print the key.
#[derive(Clone)]
pub struct NoteSigner {
    verifier: VerifierKey,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer named `name` (see [`is_valid_key_name`]) with Ed25519 key `key`.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`].
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        Ok(Self {
            verifier: VerifierKey::new(name, key.verifying_key())?,
            key,
        })
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Signs `text`, returning the signed note `text ‖ "\n" ‖ "— <name> <base64(keyid ‖ sig)>\n"`.
    /// Ed25519 is deterministic, so equal inputs give identical notes.
    ///
    /// # Errors
    /// [`NoteError::TextNotNewlineTerminated`] if `text` is empty or does not end in `\n`;
    /// [`NoteError::ControlCharacter`] if it contains a control character other than `\n`.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::TextNotNewlineTerminated);
        }
        if let Some(at) = find_control(text) {
            return Err(NoteError::ControlCharacter(at));
        }
        let sig = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + 64);
        raw.extend_from_slice(&self.verifier.key_id.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.verifier.name,
            B64.encode(raw)
        ))
    }
}

/// Signs `text` as a C2SP signed note with `key` under key name `name`; see
/// [`NoteSigner::sign`].
///
/// # Errors
/// [`NoteError::InvalidKeyName`] and the errors of [`NoteSigner::sign`].
pub fn sign_note(text: &str, key: &SigningKey, name: &str) -> Result<String, NoteError> {
    NoteSigner::new(name, key.clone())?.sign(text)
}

/// Verifies a signed note against one trusted key and returns its text (including the final
/// newline, excluding the blank separator line). See [`verify_note_any`] for the rules.
///
/// # Errors
/// See [`verify_note_any`].
pub fn verify_note(
    note: &(impl AsRef<[u8]> + ?Sized),
    key: &VerifierKey,
) -> Result<String, NoteError> {
    verify_note_any(note, std::slice::from_ref(key)).map(|(text, _)| text)
}

/// Verifies a signed note (raw bytes) against a set of trusted keys (e.g. current and rotated
/// keys) per C2SP signed-note, returning the text and the index in `keys` of the first key whose
/// signature verified.
///
/// Rules: the note must be UTF-8 with no control characters but `\n`; the text is everything up
/// to and including the newline before the *last* blank line; the signature block must be
/// non-empty, newline-terminated, at most [`MAX_SIGNATURES`] lines, each `— <valid name>
/// <standard base64 of ≥ 5 bytes>`. Lines whose (name, key ID) match no key are ignored; every
/// line that matches a key must carry a valid Ed25519 signature (`verify_strict`) of the text,
/// otherwise the note is rejected; at least one must match.
///
/// # Errors
/// [`NoteError::NotUtf8`], [`NoteError::ControlCharacter`], [`NoteError::MissingSeparator`],
/// [`NoteError::MalformedSignatureBlock`], [`NoteError::MalformedSignatureLine`],
/// [`NoteError::TooManySignatures`], [`NoteError::InvalidSignature`],
/// [`NoteError::NoKnownSignature`].
pub fn verify_note_any(
    note: &(impl AsRef<[u8]> + ?Sized),
    keys: &[VerifierKey],
) -> Result<(String, usize), NoteError> {
    let note = std::str::from_utf8(note.as_ref()).map_err(|_| NoteError::NotUtf8)?;
    if let Some(at) = find_control(note) {
        return Err(NoteError::ControlCharacter(at));
    }
    let split = note.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(NoteError::MalformedSignatureBlock);
    };
    let mut verified: Option<usize> = None;
    for (n, line) in sigs.split('\n').enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let malformed = NoteError::MalformedSignatureLine { line: n + 1 };
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(malformed.clone())?;
        let (name, b64) = rest.split_once(' ').ok_or(malformed.clone())?;
        if !is_valid_key_name(name) || b64.is_empty() {
            return Err(malformed);
        }
        let raw = B64.decode(b64).map_err(|_| malformed.clone())?;
        let (id, sig) = match raw.split_first_chunk::<4>() {
            Some((id, sig)) if !sig.is_empty() => (u32::from_be_bytes(*id), sig),
            _ => return Err(malformed),
        };
        for (k, key) in keys.iter().enumerate() {
            if key.name != name || key.key_id != id {
                continue;
            }
            let ok = Signature::from_slice(sig)
                .map(|s| key.key.verify_strict(text.as_bytes(), &s).is_ok())
                .unwrap_or(false);
            if !ok {
                return Err(NoteError::InvalidSignature {
                    name: name.to_owned(),
                    key_id: id,
                });
            }
            verified.get_or_insert(k);
        }
    }
    match verified {
        Some(k) => Ok((text.to_owned(), k)),
        None => Err(NoteError::NoKnownSignature),
    }
}

/// Errors of checkpoint bodies ([`Checkpoint::parse_body`], [`Checkpoint::to_body`],
/// [`open_checkpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body does not end in a newline.
    #[error("checkpoint body must end in a newline")]
    NotNewlineTerminated,
    /// Fewer than three lines (origin, size, root hash).
    #[error("checkpoint body has fewer than three lines")]
    TooFewLines,
    /// The origin line is empty, or (when formatting) contains a newline or control character.
    #[error("invalid checkpoint origin")]
    InvalidOrigin,
    /// The size line is not ASCII decimal without leading zeros, or overflows `u64`.
    #[error("invalid checkpoint tree size {0:?}")]
    InvalidSize(String),
    /// The root line is not standard base64 of exactly 32 bytes.
    #[error("invalid checkpoint root hash {0:?}")]
    InvalidRoot(String),
    /// An extension line (4th line on) is empty.
    #[error("empty extension line {0}")]
    EmptyExtensionLine(usize),
    /// A control character other than newline.
    #[error("control character at byte {0}")]
    ControlCharacter(usize),
    /// The note around the checkpoint failed verification.
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A C2SP `tlog-checkpoint` tree head: origin (log identity), tree size (leaves) and RFC 9162
/// root hash at that size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity line, e.g. `example.com/log42`; non-empty, no newline or control
    /// characters (and by convention no spaces or `+`).
    pub origin: String,
    /// Tree size in leaves.
    pub size: u64,
    /// RFC 9162 Merkle tree hash of the first `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text `origin ‖ "\n" ‖ decimal size ‖ "\n" ‖ base64(root) ‖ "\n"` (no extension
    /// lines), per C2SP tlog-checkpoint "Note text".
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`] if the origin is empty or contains a newline or other
    /// control character (it would not parse back).
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() || self.origin.bytes().any(|b| b < 0x20) {
            return Err(CheckpointError::InvalidOrigin);
        }
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        ))
    }

    /// Signs this checkpoint's [`to_body`](Checkpoint::to_body) as a signed note.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`], or [`CheckpointError::Note`] from signing.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        Ok(signer.sign(&self.to_body()?)?)
    }

    /// Parses a checkpoint note text strictly (C2SP tlog-checkpoint "Note text"): newline
    /// terminated; non-empty origin; size in ASCII decimal without leading zeros (`0` alone
    /// allowed) fitting `u64`; root as standard padded base64 of exactly 32 bytes; any further
    /// lines are extension lines, which must be non-empty and are otherwise ignored (see
    /// [`parse_body_with_extensions`](Checkpoint::parse_body_with_extensions)).
    ///
    /// # Errors
    /// The [`CheckpointError`] naming the offending part.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        Self::parse_body_with_extensions(body).map(|(c, _)| c)
    }

    /// Like [`parse_body`](Checkpoint::parse_body), also returning the extension lines (without
    /// newlines).
    ///
    /// # Errors
    /// The [`CheckpointError`] naming the offending part.
    pub fn parse_body_with_extensions(body: &str) -> Result<(Self, Vec<&str>), CheckpointError> {
        let Some(body) = body.strip_suffix('\n') else {
            return Err(CheckpointError::NotNewlineTerminated);
        };
        if let Some(at) = find_control(body) {
            return Err(CheckpointError::ControlCharacter(at));
        }
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::TooFewLines);
        };
        if origin.is_empty() {
            return Err(CheckpointError::InvalidOrigin);
        }
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let parsed_size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| CheckpointError::InvalidSize(size.to_owned()))?;
        let parsed_root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| Hash::try_from(r).ok())
            .ok_or_else(|| CheckpointError::InvalidRoot(root.to_owned()))?;
        let extensions: Vec<&str> = lines.collect();
        if let Some(i) = extensions.iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyExtensionLine(i + 4));
        }
        Ok((
            Self {
                origin: origin.to_owned(),
                size: parsed_size,
                root: parsed_root,
            },
            extensions,
        ))
    }
}

/// Verifies a signed checkpoint note with `key` ([`verify_note`]) and parses its body
/// ([`Checkpoint::parse_body`]).
///
/// # Errors
/// [`CheckpointError::Note`] if the note fails, else the body's [`CheckpointError`].
pub fn open_checkpoint(
    note: &(impl AsRef<[u8]> + ?Sized),
    key: &VerifierKey,
) -> Result<Checkpoint, CheckpointError> {
    let body = verify_note(note, key)?;
    Checkpoint::parse_body(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::{MemoryNodes, leaf_hash, root};
    use serde_json::Value;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

    fn vector() -> Value {
        let p = format!("{VECTORS}/signed-note.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    fn s<'a>(v: &'a Value, k: &str) -> &'a str {
        v[k].as_str().unwrap()
    }

    fn seed(v: &Value) -> SigningKey {
        let hex = s(v, "ed25519_seed_hex");
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        SigningKey::from_bytes(&bytes.try_into().unwrap())
    }

    fn other_signer(name: &str, b: u8) -> NoteSigner {
        NoteSigner::new(name, SigningKey::from_bytes(&[b; 32])).unwrap()
    }

    #[test]
    fn vector_sign_verify_and_key_string() {
        let v = vector();
        let key = seed(&v);
        let name = s(&v, "key_name");
        let body = s(&v, "checkpoint_body");
        let note = sign_note(body, &key, name).unwrap();
        assert_eq!(note, s(&v, "signed_note"), "byte-for-byte signed note");
        let signer = NoteSigner::new(name, key).unwrap();
        assert_eq!(signer.verifier_key().to_string(), s(&v, "verifier_key"));
        let vk: VerifierKey = s(&v, "verifier_key").parse().unwrap();
        assert_eq!(&vk, signer.verifier_key());
        assert_eq!(vk.name(), name);
        assert_eq!(vk.key_id(), 0x3223_5f09);
        assert_eq!(verify_note(s(&v, "signed_note"), &vk).unwrap(), body);
        // The body is the checkpoint of the eight standard leaves.
        let cp = open_checkpoint(s(&v, "signed_note"), &vk).unwrap();
        assert_eq!(cp.origin, name);
        assert_eq!(cp.size, 8);
        let roots: Value =
            serde_json::from_slice(&std::fs::read(format!("{VECTORS}/merkle-roots.json")).unwrap())
                .unwrap();
        let tree = MemoryNodes::from_leaf_hashes(
            roots["leaves_hex"].as_array().unwrap().iter().map(|l| {
                let h = l.as_str().unwrap();
                let b: Vec<u8> = (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect();
                leaf_hash(&b)
            }),
        );
        assert_eq!(cp.root, root(&tree, 8).unwrap());
        assert_eq!(cp.to_body().unwrap(), body);
        assert_eq!(cp.sign(&signer).unwrap(), s(&v, "signed_note"));
    }

    #[test]
    fn every_one_byte_change_fails() {
        let v = vector();
        let vk: VerifierKey = s(&v, "verifier_key").parse().unwrap();
        let note = s(&v, "signed_note").as_bytes().to_vec();
        let mut tried = 0;
        for pos in 0..note.len() {
            // Every position gets a one-bit change; every third also other kinds (debug-mode
            // Ed25519 is slow, ~5 ms a verification).
            let all = [
                note[pos] ^ 0x01,
                note[pos] ^ 0x80,
                b'\n',
                note[pos] ^ 0x20,
                b'A',
            ];
            let repls = if pos % 3 == 0 { &all[..] } else { &all[..2] };
            for &repl in repls {
                if repl == note[pos] {
                    continue;
                }
                let mut m = note.clone();
                m[pos] = repl;
                assert!(
                    verify_note(&m, &vk).is_err(),
                    "accepted change at byte {pos} to {repl:#04x}"
                );
                tried += 1;
            }
        }
        // Removing a byte fails too.
        for pos in (0..note.len()).step_by(3) {
            let mut m = note.clone();
            m.remove(pos);
            assert!(verify_note(&m, &vk).is_err(), "accepted deletion at {pos}");
        }
        let mut m = note.clone();
        m.push(b'\n');
        assert!(verify_note(&m, &vk).is_err());
        assert!(tried > 2 * note.len());
    }

    #[test]
    fn unknown_keys_ignored_known_bad_rejected() {
        let v = vector();
        let signer = NoteSigner::new(s(&v, "key_name"), seed(&v)).unwrap();
        let vk = signer.verifier_key().clone();
        let body = "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let ours = signer.sign(body).unwrap();
        let our_line = &ours[body.len() + 1..];
        // Same name, other key (different key ID): ignored.
        let twin = other_signer(s(&v, "key_name"), 9);
        let twin_line = twin.sign(body).unwrap()[body.len() + 1..].to_owned();
        let witness = other_signer("witness.example/w1", 3);
        let wit_line = witness.sign(body).unwrap()[body.len() + 1..].to_owned();
        let multi = format!("{body}\n{wit_line}{twin_line}{our_line}");
        assert_eq!(verify_note(&multi, &vk).unwrap(), body);
        let (_, which) =
            verify_note_any(&multi, &[witness.verifier_key().clone(), vk.clone()]).unwrap();
        assert_eq!(which, 0);
        // Only unknown keys: rejected.
        let only_others = format!("{body}\n{wit_line}{twin_line}");
        assert_eq!(
            verify_note(&only_others, &vk),
            Err(NoteError::NoKnownSignature)
        );
        // A known key's line with a bad signature rejects the note even with a good one.
        let mut raw = B64
            .decode(our_line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        raw[10] ^= 1;
        let bad_line = format!("{SIG_PREFIX}{} {}\n", vk.name(), B64.encode(&raw));
        for n in [
            format!("{body}\n{bad_line}"),
            format!("{body}\n{our_line}{bad_line}"),
            format!("{body}\n{bad_line}{our_line}"),
        ] {
            assert!(matches!(
                verify_note(&n, &vk),
                Err(NoteError::InvalidSignature { .. })
            ));
        }
        // Known name+ID but the signature is not 64 bytes: invalid, not ignored.
        let short = format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            vk.name(),
            B64.encode([&vk.key_id().to_be_bytes()[..], &[1, 2, 3]].concat())
        );
        assert!(matches!(
            verify_note(&short, &vk),
            Err(NoteError::InvalidSignature { .. })
        ));
        // Text with blank lines is fine: split at the last blank line.
        let poem = "line one\n\nline three\n";
        let signed = signer.sign(poem).unwrap();
        assert_eq!(verify_note(&signed, &vk).unwrap(), poem);
        let ends_blank = "a\n\n";
        assert_eq!(
            verify_note(&signer.sign(ends_blank).unwrap(), &vk).unwrap(),
            ends_blank
        );
    }

    #[test]
    fn malformed_notes_rejected() {
        let v = vector();
        let signer = NoteSigner::new(s(&v, "key_name"), seed(&v)).unwrap();
        let vk = signer.verifier_key().clone();
        let body = s(&v, "checkpoint_body");
        let good = signer.sign(body).unwrap();
        let line = good[body.len() + 1..].to_owned();
        let sig_b64 = line.trim_end().rsplit(' ').next().unwrap().to_owned();
        let cases: Vec<(String, &str)> = vec![
            (good.trim_end_matches('\n').to_owned(), "no final newline"),
            (body.to_owned(), "no signatures"),
            (format!("{body}{line}"), "no blank line"),
            (format!("{body}\n"), "empty signature block"),
            (format!("{body}\n{line}\n"), "blank line after signatures"),
            (good.replace('\u{2014}', "-"), "ASCII dash"),
            (good.replace("\u{2014} ", "\u{2014}"), "no space after dash"),
            (
                format!("{body}\n{SIG_PREFIX}{} {sig_b64}", "bad name"),
                "space in name",
            ),
            (
                format!("{body}\n{SIG_PREFIX}a+b {sig_b64}\n"),
                "plus in name",
            ),
            (format!("{body}\n{SIG_PREFIX} {sig_b64}\n"), "empty name"),
            (
                format!("{body}\n{SIG_PREFIX}{}\n", vk.name()),
                "no signature",
            ),
            (
                format!("{body}\n{SIG_PREFIX}{} \n", vk.name()),
                "empty signature",
            ),
            (
                format!("{body}\n{SIG_PREFIX}{} AAAA\n", vk.name()),
                "3-byte signature",
            ),
            (
                format!("{body}\n{SIG_PREFIX}{} {sig_b64} \n", vk.name()),
                "trailing space",
            ),
            (
                format!(
                    "{body}\n{SIG_PREFIX}{} {}\n",
                    vk.name(),
                    sig_b64.trim_end_matches('=')
                ),
                "unpadded",
            ),
            (good.replacen("\n8\n", "\n8\r\n", 1), "carriage return"),
            (good.replacen("\n8\n", "\n8\t\n", 1), "tab"),
            (good.replacen("8", "9", 1), "changed body"),
        ];
        for (note, why) in &cases {
            assert!(verify_note(note, &vk).is_err(), "{why}");
        }
        let mut bytes = good.clone().into_bytes();
        bytes[3] = 0xff;
        assert_eq!(verify_note(&bytes, &vk), Err(NoteError::NotUtf8));
        // Signature cap: 100 lines pass, 101 fail.
        let other = other_signer("x.example/y", 5).sign(body).unwrap()[body.len() + 1..].to_owned();
        let many = format!("{body}\n{}{line}", other.repeat(MAX_SIGNATURES - 1));
        assert_eq!(verify_note(&many, &vk).unwrap(), body);
        let too_many = format!("{body}\n{}{line}", other.repeat(MAX_SIGNATURES));
        assert_eq!(
            verify_note(&too_many, &vk),
            Err(NoteError::TooManySignatures)
        );
        // Signing preconditions.
        assert_eq!(
            signer.sign("no newline"),
            Err(NoteError::TextNotNewlineTerminated)
        );
        assert_eq!(signer.sign(""), Err(NoteError::TextNotNewlineTerminated));
        assert_eq!(signer.sign("a\tb\n"), Err(NoteError::ControlCharacter(1)));
        for bad in ["", "a b", "a+b", "a\u{00a0}b", "a\nb"] {
            assert!(matches!(
                sign_note("x\n", &seed(&v), bad),
                Err(NoteError::InvalidKeyName(_))
            ));
        }
    }

    #[test]
    fn verifier_key_strings() {
        let v = vector();
        let good = s(&v, "verifier_key");
        assert!(VerifierKey::parse(good).is_ok());
        assert!(VerifierKey::parse(&good.replace("+32235f09+", "+32235F09+")).is_ok());
        let (name, rest) = good.split_once('+').unwrap();
        let (_, key) = rest.split_once('+').unwrap();
        let bad = [
            ("", "empty"),
            (name, "name only"),
            (&format!("{name}+32235f09"), "no key"),
            (&format!("{name}+2235f09+{key}"), "7 hex"),
            (&format!("{name}+032235f09+{key}"), "9 hex"),
            (&format!("{name}+-2235f09+{key}"), "sign in hex"),
            (&format!("{name}+32235f08+{key}"), "wrong id"),
            (&format!("other+32235f09+{key}"), "id of another name"),
            (&format!("a b+32235f09+{key}"), "space in name"),
            (&format!("{name}+32235f09+{key}="), "extra padding"),
            (
                &format!("{name}+32235f09+{}", &key[..key.len() - 4]),
                "short key",
            ),
            (&format!("{name}+32235f09+{key}+x"), "trailing field"),
        ];
        for (k, why) in bad {
            assert!(VerifierKey::parse(k).is_err(), "{why}");
        }
        let raw = B64.decode(key).unwrap();
        let mut alg2 = raw.clone();
        alg2[0] = 2;
        assert_eq!(
            VerifierKey::parse(&format!("{name}+32235f09+{}", B64.encode(alg2))),
            Err(NoteError::UnsupportedAlgorithm(2))
        );
    }

    #[test]
    fn checkpoint_bodies() {
        let root = [0xabu8; 32];
        let r64 = B64.encode(root);
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 0,
            root,
        };
        assert_eq!(
            cp.to_body().unwrap(),
            format!("example.com/log\n0\n{r64}\n")
        );
        assert_eq!(Checkpoint::parse_body(&cp.to_body().unwrap()).unwrap(), cp);
        let max = format!("o\n{}\n{r64}\n", u64::MAX);
        assert_eq!(Checkpoint::parse_body(&max).unwrap().size, u64::MAX);
        let with_ext = format!("o\n5\n{r64}\nx y\n— z\n");
        let (c, ext) = Checkpoint::parse_body_with_extensions(&with_ext).unwrap();
        assert_eq!((c.size, ext), (5, vec!["x y", "— z"]));
        for (bad, why) in [
            (format!("o\n5\n{r64}"), "no final newline"),
            ("o\n5\n".to_owned(), "two lines"),
            (format!("\n5\n{r64}\n"), "empty origin"),
            (format!("o\n05\n{r64}\n"), "leading zero"),
            (format!("o\n00\n{r64}\n"), "double zero"),
            (format!("o\n+5\n{r64}\n"), "plus sign"),
            (format!("o\n-5\n{r64}\n"), "negative"),
            (format!("o\n 5\n{r64}\n"), "space"),
            (format!("o\n\n{r64}\n"), "empty size"),
            (format!("o\n18446744073709551616\n{r64}\n"), "u64 overflow"),
            (format!("o\n5\n{}\n", B64.encode([1u8; 31])), "31-byte root"),
            (format!("o\n5\n{}\n", B64.encode([1u8; 33])), "33-byte root"),
            (
                format!("o\n5\n{}\n", r64.trim_end_matches('=')),
                "unpadded root",
            ),
            (
                format!(
                    "o\n5\n{}\n",
                    B64.encode([0xfb; 32]).replace(['+', '/'], "-")
                ),
                "url-safe",
            ),
            (
                format!("o\n5\nq{}\n", &r64[1..r64.len() - 2]),
                "non-canonical",
            ),
            (format!("o\n5\n{r64}\n\n"), "empty extension line"),
            (
                format!("o\n5\n{r64}\nx\n\ny\n"),
                "empty extension line later",
            ),
            (format!("o\r\n5\n{r64}\n"), "carriage return"),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{why}");
        }
        for origin in ["", "a\nb", "a\tb"] {
            let c = Checkpoint {
                origin: origin.into(),
                size: 1,
                root,
            };
            assert_eq!(c.to_body(), Err(CheckpointError::InvalidOrigin));
        }
        // open_checkpoint rejects a validly signed note whose body is not a checkpoint.
        let v = vector();
        let signer = NoteSigner::new(s(&v, "key_name"), seed(&v)).unwrap();
        let note = signer.sign("hello\n").unwrap();
        assert_eq!(
            open_checkpoint(&note, signer.verifier_key()),
            Err(CheckpointError::TooFewLines)
        );
        let other = other_signer("o.example/x", 1);
        assert_eq!(
            open_checkpoint(&note, other.verifier_key()),
            Err(CheckpointError::Note(NoteError::NoKnownSignature))
        );
    }
}
