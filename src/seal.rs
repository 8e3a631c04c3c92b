//! Secrets sealed at rest: XChaCha20-Poly1305 under a data key, bound to the record they belong
//! to.
//!
//! **Sealed value** (a string, so it fits any text column):
//! `v1:<kid>:<nonce>:<ciphertext>` — `kid` is the key id (8 lowercase hex characters, the first
//! 4 bytes of SHA-256 over `"evidentia-data-key\0" ‖ key`), `nonce` the 24-byte random
//! XChaCha20 nonce and `ciphertext` the ciphertext with its 16-byte Poly1305 tag, both unpadded
//! base64url (RFC 4648 §5).
//!
//! **Associated data** binds a value to where it is stored, so a sealed secret copied into
//! another record, field or tenant does not open: the concatenation of `"v1"`,
//! `"evidentia-seal"`, the kid, the tenant, the record id and the field name, each preceded by
//! its length as a 4-byte big-endian integer. Any change to the value, its header or its place
//! fails with [`SealError::Authentication`].
//!
//! **Data keys** live in `<data_dir>/secrets/DATA_KEY` (mode 0600, the directory 0700): one key
//! per line, `<kid> <base64 of 32 bytes>`, `#` comments allowed; the **last** line is the active
//! key (it seals), earlier lines are retired keys kept to open older values. The file is
//! generated with the operating system's CSPRNG when absent. A systemd credential
//! (`$CREDENTIALS_DIRECTORY/DATA_KEY`, read-only) may hold the same text or 32 raw bytes; which
//! one the appliance uses is a [`KeySource`], chosen by `config` and handed to the store.
//! Rotation ([`Keyring::rotate`]) appends a fresh key; `evidentia admin rotate-data-key`
//! (`store::rotate_data_key`) saves it, [`Keyring::reseal`]s every stored value in one
//! transaction and only after that commit [`Keyring::retire`]s the old key, so the file holds
//! every key some committed value needs at every instant.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// File name of the data key file inside `<data_dir>/secrets/` (and of the systemd credential).
pub const DATA_KEY_FILE: &str = "DATA_KEY";
const VERSION: &str = "v1";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// Errors of sealing, opening and key handling.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not of the form `v1:<kid>:<nonce>:<ciphertext>`.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed under a key the keyring does not hold.
    #[error("sealed under unknown data key {0}")]
    UnknownKey(String),
    /// Tampered with, sealed for another record / field / tenant, or under another key.
    #[error("the sealed value does not authenticate")]
    Authentication,
    /// The data key file could not be read or written.
    #[error("data key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The data key file's content is not valid.
    #[error("data key file {path}: line {line}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 for the whole file).
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The data key file is readable by group or others.
    #[error("data key file {0} must not be readable by group or others (chmod 600)")]
    Permissions(PathBuf),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
    /// A key id that the keyring does not hold, or the active key, was asked to be retired.
    #[error("key {0} cannot be retired")]
    Retire(String),
}

/// Where a sealed value is stored: the associated data it is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// Tenant id (or `_appliance`).
    pub tenant: &'a str,
    /// Id of the record holding the value (`int_…`, `src_…`, a signing key's kid).
    pub record: &'a str,
    /// Field name (`secret:<n>` of a source, `receipt_key`, an integration's `secret` or
    /// `hec_token`); the table of them is in `store::sealed`.
    pub field: &'a str,
}

#[derive(Clone)]
struct DataKey {
    kid: String,
    key: [u8; KEY_BYTES],
}

impl DataKey {
    fn from_bytes(key: [u8; KEY_BYTES]) -> Self {
        let mut h = Sha256::new();
        h.update(b"evidentia-data-key\0");
        h.update(key);
        let kid = hex::encode(&h.finalize()[..4]);
        Self { kid, key }
    }

    fn generate() -> Result<Self, SealError> {
        let mut key = [0u8; KEY_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|_| SealError::Rng)?;
        Ok(Self::from_bytes(key))
    }
}

/// The data keys: retired ones to open, the active (last) one to seal. Never empty.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<DataKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Keyring").field("kids", &kids).finish()
    }
}

fn aad(kid: &str, ctx: &SealContext<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [VERSION.as_bytes(), &b"evidentia-seal"[..], kid.as_bytes()]
        .into_iter()
        .chain([ctx.tenant, ctx.record, ctx.field].map(str::as_bytes))
    {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// `<data_dir>/secrets/DATA_KEY`.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join(DATA_KEY_FILE)
}

/// Where the appliance's data keys come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeySource {
    /// `<data_dir>/secrets/DATA_KEY` beside the database ([`key_path`]): generated at the first
    /// open, rotated by `evidentia admin rotate-data-key`.
    #[default]
    DataDir,
    /// A systemd credential file (`$CREDENTIALS_DIRECTORY/DATA_KEY`), read only: the operator
    /// owns and rotates it.
    Credential(PathBuf),
}

impl KeySource {
    /// The key file this source reads for a database in `data_dir`.
    pub fn path(&self, data_dir: &Path) -> PathBuf {
        match self {
            Self::DataDir => key_path(data_dir),
            Self::Credential(p) => p.clone(),
        }
    }

    /// Loads the keyring: the data-dir file is created (0600) with a fresh key when absent
    /// ([`Keyring::load_or_create`]); a credential must exist ([`Keyring::load_credential`]).
    ///
    /// # Errors
    /// As those two functions.
    pub fn load_or_create(&self, data_dir: &Path) -> Result<Keyring, SealError> {
        match self {
            Self::DataDir => Keyring::load_or_create(data_dir),
            Self::Credential(p) => Keyring::load_credential(p),
        }
    }

    /// Loads the keyring without creating anything (offline commands).
    ///
    /// # Errors
    /// [`SealError::Io`] when the file is absent or unreadable; as [`Keyring::load_file`] and
    /// [`Keyring::load_credential`].
    pub fn load(&self, data_dir: &Path) -> Result<Keyring, SealError> {
        match self {
            Self::DataDir => Keyring::load_file(&key_path(data_dir)),
            Self::Credential(p) => Keyring::load_credential(p),
        }
    }
}

impl Keyring {
    /// A keyring with one fresh key.
    ///
    /// # Errors
    /// [`SealError::Rng`].
    pub fn generate() -> Result<Self, SealError> {
        Ok(Self {
            keys: vec![DataKey::generate()?],
        })
    }

    /// Loads `<data_dir>/secrets/DATA_KEY`, creating it (0600, directory 0700) with a fresh key
    /// when absent.
    ///
    /// # Errors
    /// [`SealError::Io`], [`SealError::KeyFile`], [`SealError::Permissions`].
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SealError> {
        let path = key_path(data_dir);
        if path.exists() {
            return Self::load_file(&path);
        }
        let ring = Self::generate()?;
        ring.save(&path)?;
        Ok(ring)
    }

    /// Loads a key file (text format, see the module docs); refuses group/other-readable files.
    ///
    /// # Errors
    /// [`SealError::Io`], [`SealError::KeyFile`], [`SealError::Permissions`].
    pub fn load_file(path: &Path) -> Result<Self, SealError> {
        let io = |source| SealError::Io {
            path: path.to_path_buf(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(SealError::Permissions(path.to_path_buf()));
            }
        }
        let bytes = fs::read(path).map_err(io)?;
        Self::parse(&bytes, path)
    }

    /// Loads a systemd credential (`$CREDENTIALS_DIRECTORY/DATA_KEY`): the text format or 32 raw
    /// bytes. systemd owns the file's permissions.
    ///
    /// # Errors
    /// [`SealError::Io`], [`SealError::KeyFile`].
    pub fn load_credential(path: &Path) -> Result<Self, SealError> {
        let bytes = fs::read(path).map_err(|source| SealError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if let Ok(raw) = <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
            && std::str::from_utf8(&raw).is_err()
        {
            return Ok(Self {
                keys: vec![DataKey::from_bytes(raw)],
            });
        }
        Self::parse(&bytes, path)
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self, SealError> {
        let bad = |line, reason| SealError::KeyFile {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8 text"))?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(kid), Some(b64), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(i + 1, "expected `<kid> <base64 key>`"));
            };
            let raw = B64
                .decode(b64)
                .map_err(|_| bad(i + 1, "the key is not base64"))?;
            let key = <[u8; KEY_BYTES]>::try_from(raw.as_slice())
                .map_err(|_| bad(i + 1, "a data key is 32 bytes"))?;
            let dk = DataKey::from_bytes(key);
            if dk.kid != kid {
                return Err(bad(i + 1, "the key id does not match the key"));
            }
            keys.push(dk);
        }
        if keys.is_empty() {
            return Err(bad(0, "no key"));
        }
        Ok(Self { keys })
    }

    /// Writes the keyring to `path` atomically (temporary file 0600, fsync, rename), creating
    /// the parent directory 0700.
    ///
    /// # Errors
    /// [`SealError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), SealError> {
        let io = |source| SealError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(io)?;
        let mut text = String::from(
            "# Evidentia data keys: <kid> <base64>. The last line seals; keep older lines until\n\
             # every value sealed under them was resealed (evidentia admin rotate-data-key).\n",
        );
        for k in &self.keys {
            text.push_str(&format!("{} {}\n", k.kid, B64.encode(k.key)));
        }
        let tmp = path.with_extension("tmp");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)?;
        // The rename is durable only once the directory is: rotation relies on the new key
        // being on disk before anything is sealed under it.
        #[cfg(unix)]
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    fn active(&self) -> &DataKey {
        // `keys` is never empty: every constructor checks it and retire() keeps the active key.
        &self.keys[self.keys.len() - 1]
    }

    /// Id of the key that seals.
    pub fn active_kid(&self) -> &str {
        &self.active().kid
    }

    /// Ids of all keys, retired first, active last.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Whether the keyring holds the key `kid`.
    pub fn holds(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// Seals `plaintext` for `ctx` under the active key.
    ///
    /// # Errors
    /// [`SealError::Rng`]; [`SealError::Authentication`] if the AEAD refuses the input length.
    pub fn seal(&self, plaintext: &[u8], ctx: &SealContext<'_>) -> Result<String, SealError> {
        let key = self.active();
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| SealError::Rng)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&key.key));
        let aad = aad(&key.kid, ctx);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Authentication)?;
        Ok(format!(
            "{VERSION}:{}:{}:{}",
            key.kid,
            B64URL.encode(nonce),
            B64URL.encode(ct)
        ))
    }

    /// The key id a sealed value names, without opening it.
    ///
    /// # Errors
    /// [`SealError::Malformed`].
    pub fn kid_of(sealed: &str) -> Result<&str, SealError> {
        let mut parts = sealed.splitn(4, ':');
        match (parts.next(), parts.next()) {
            (Some(VERSION), Some(kid)) if !kid.is_empty() => Ok(kid),
            _ => Err(SealError::Malformed),
        }
    }

    /// Opens a sealed value for `ctx` with whichever key it names.
    ///
    /// # Errors
    /// [`SealError::Malformed`], [`SealError::UnknownKey`], [`SealError::Authentication`].
    pub fn open(&self, sealed: &str, ctx: &SealContext<'_>) -> Result<Vec<u8>, SealError> {
        let parts: Vec<&str> = sealed.split(':').collect();
        let [VERSION, kid, nonce, ct] = parts.as_slice() else {
            return Err(SealError::Malformed);
        };
        let nonce = B64URL.decode(nonce).map_err(|_| SealError::Malformed)?;
        let ct = B64URL.decode(ct).map_err(|_| SealError::Malformed)?;
        if nonce.len() != NONCE_BYTES || ct.len() < TAG_BYTES {
            return Err(SealError::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == *kid)
            .ok_or_else(|| SealError::UnknownKey((*kid).to_string()))?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&key.key));
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(kid, ctx),
                },
            )
            .map_err(|_| SealError::Authentication)
    }

    /// Adds a fresh key and makes it the active one; returns its kid. The caller persists with
    /// [`Keyring::save`] before sealing anything under it.
    ///
    /// # Errors
    /// [`SealError::Rng`].
    pub fn rotate(&mut self) -> Result<String, SealError> {
        let key = DataKey::generate()?;
        let kid = key.kid.clone();
        self.keys.retain(|k| k.kid != kid);
        self.keys.push(key);
        Ok(kid)
    }

    /// Opens `sealed` and seals it again under the active key (a no-op copy when it already is).
    ///
    /// # Errors
    /// As [`Keyring::open`] and [`Keyring::seal`].
    pub fn reseal(&self, sealed: &str, ctx: &SealContext<'_>) -> Result<String, SealError> {
        if Self::kid_of(sealed)? == self.active_kid() {
            self.open(sealed, ctx)?;
            return Ok(sealed.to_string());
        }
        let plain = self.open(sealed, ctx)?;
        self.seal(&plain, ctx)
    }

    /// Drops a retired key (after every value sealed under it was resealed).
    ///
    /// # Errors
    /// [`SealError::Retire`] for the active key or an unknown kid.
    pub fn retire(&mut self, kid: &str) -> Result<(), SealError> {
        if kid == self.active_kid() || !self.keys.iter().any(|k| k.kid == kid) {
            return Err(SealError::Retire(kid.to_string()));
        }
        self.keys.retain(|k| k.kid != kid);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: SealContext<'static> = SealContext {
        tenant: "acme",
        record: "int_1",
        field: "secret",
    };

    #[test]
    fn round_trip_tamper_and_wrong_aad() {
        let ring = Keyring::generate().unwrap();
        let sealed = ring.seal(b"whsec_abc", &CTX).unwrap();
        assert!(sealed.starts_with(&format!("v1:{}:", ring.active_kid())));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(ring.open(&sealed, &CTX).unwrap(), b"whsec_abc");

        // Flip one bit of the ciphertext.
        let (head, ct) = sealed.rsplit_once(':').unwrap();
        let mut raw = B64URL.decode(ct).unwrap();
        raw[0] ^= 1;
        let tampered = format!("{head}:{}", B64URL.encode(raw));
        assert!(matches!(
            ring.open(&tampered, &CTX),
            Err(SealError::Authentication)
        ));

        for other in [
            SealContext {
                tenant: "globex",
                ..CTX
            },
            SealContext {
                record: "int_2",
                ..CTX
            },
            SealContext {
                field: "hec_token",
                ..CTX
            },
        ] {
            assert!(matches!(
                ring.open(&sealed, &other),
                Err(SealError::Authentication)
            ));
        }
        // The same bytes sealed twice differ (fresh nonce).
        assert_ne!(ring.seal(b"whsec_abc", &CTX).unwrap(), sealed);
        assert!(matches!(
            ring.open("v1:zz", &CTX),
            Err(SealError::Malformed)
        ));
    }

    #[test]
    fn another_keyring_cannot_open() {
        let a = Keyring::generate().unwrap();
        let b = Keyring::generate().unwrap();
        let sealed = a.seal(b"x", &CTX).unwrap();
        assert!(matches!(
            b.open(&sealed, &CTX),
            Err(SealError::UnknownKey(_))
        ));
        // Relabelled with b's kid, it still does not authenticate.
        let relabelled = sealed.replacen(a.active_kid(), b.active_kid(), 1);
        assert!(matches!(
            b.open(&relabelled, &CTX),
            Err(SealError::Authentication)
        ));
    }
}
