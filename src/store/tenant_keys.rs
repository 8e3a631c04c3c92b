//! Tenant content keys: every tenant's content (raw event bodies, insight payloads, artifact
//! bytes) is stored encrypted under a key of its own, so deleting a tenant is a crypto-shred:
//! destroying 32 bytes makes every copy of its content unreadable, in the database file, in
//! its freed pages and in any backup of it.
//!
//! The keys are not in the database: redb is copy-on-write and never zeroes a freed page, so a
//! key deleted from it could still be read from the file. They live beside it in
//! `<database>.keys` (mode 0600), an array of fixed [`SLOT`]-byte slots written in place: a
//! shred overwrites the tenant's slot with zeros and syncs the file before it returns.
//!
//! Slot layout (bytes): `0` state (`1` live, `0` free), `1` tenant id length, `2..65` tenant
//! id (ASCII, zero-padded), `65..97` the key, `97..101` CRC-32 of `0..97` (big-endian),
//! the rest zero.
//!
//! Encryption is XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha, RFC 8439's AEAD with a 192-bit
//! random nonce): `v1 || nonce (24) || ciphertext || tag (16)`, with the associated data
//! binding the kind of content and the tenant, so a value moved to another tenant or table
//! does not open.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::StoreError;

/// Bytes per slot of the key file.
pub const SLOT: usize = 128;
/// First byte of every encrypted value (the format version).
const VERSION: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;
/// Bytes an encrypted value adds to its plaintext: version, nonce and tag.
pub const OVERHEAD: usize = 1 + NONCE + TAG;
const ID_MAX: usize = 63;
const KEY_AT: usize = 2 + ID_MAX;
const CRC_AT: usize = KEY_AT + 32;

/// What a value is; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A raw webhook body.
    Body,
    /// An insight's JSON payload.
    Insight,
    /// An artifact's bytes.
    Artifact,
}

impl Content {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Body => b"evidentia/body/v1",
            Self::Insight => b"evidentia/insight/v1",
            Self::Artifact => b"evidentia/artifact/v1",
        }
    }
}

/// A tenant's 256-bit content key (shared: handing it out is a reference count).
pub struct ContentKey {
    /// The associated-data prefix after the kind's label: `NUL || tenant id`.
    tenant_aad: Vec<u8>,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey")
    }
}

/// Longest associated data: the longest label, NUL, a 63-byte tenant id.
const AAD_MAX: usize = 24 + 1 + ID_MAX;

impl ContentKey {
    fn new(tenant: &str, key: &[u8; 32]) -> Arc<Self> {
        let mut tenant_aad = vec![0u8];
        tenant_aad.extend_from_slice(tenant.as_bytes());
        Arc::new(Self {
            tenant_aad,
            cipher: XChaCha20Poly1305::new(key.into()),
        })
    }

    /// The associated data of `kind` for this key's tenant, on the stack.
    fn aad(&self, kind: Content) -> ([u8; AAD_MAX], usize) {
        let mut buf = [0u8; AAD_MAX];
        let label = kind.label();
        let len = label.len() + self.tenant_aad.len();
        buf[..label.len()].copy_from_slice(label);
        buf[label.len()..len].copy_from_slice(&self.tenant_aad);
        (buf, len)
    }

    /// Encrypts `plain` as content of `kind` of this key's tenant ([`OVERHEAD`] bytes more).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the cipher refuses (a plaintext beyond its 256 GiB limit).
    pub fn encrypt(&self, kind: Content, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        // One allocation: version, nonce, the plaintext encrypted in place, the tag.
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(VERSION);
        out.resize(1 + NONCE, 0);
        rand::rng().fill_bytes(&mut out[1..]);
        out.extend_from_slice(plain);
        let (aad, len) = self.aad(kind);
        let (head, body) = out.split_at_mut(1 + NONCE);
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&head[1..]), &aad[..len], body)
            .map_err(|_| StoreError::Corrupt {
                table: "encrypt",
                message: "the content could not be encrypted".into(),
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts a value written by [`encrypt`](Self::encrypt) for `kind`; `None` when it does
    /// not open (changed bytes, another tenant's or another kind's value).
    pub fn decrypt(&self, kind: Content, value: &[u8]) -> Option<Vec<u8>> {
        let rest = value.strip_prefix(&[VERSION])?;
        if rest.len() < NONCE + TAG {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE);
        let (cipher, tag) = sealed.split_at(sealed.len() - TAG);
        let mut plain = cipher.to_vec();
        let (aad, len) = self.aad(kind);
        self.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &aad[..len],
                &mut plain,
                Tag::from_slice(tag),
            )
            .ok()?;
        Some(plain)
    }
}

/// The key file of the database at `db`: `<db>.keys`.
pub fn key_file_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".keys");
    PathBuf::from(name)
}

fn corrupt(message: String) -> StoreError {
    StoreError::Corrupt {
        table: "tenant keys",
        message,
    }
}

fn io(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Db(format!("tenant key file {}: {e}", path.display()))
}

/// The open key file and its live slots.
pub struct TenantKeys {
    path: PathBuf,
    /// `None` when opened read-only (`evidentia check`).
    file: Option<Mutex<File>>,
    slots: RwLock<Slots>,
}

#[derive(Default)]
struct Slots {
    /// tenant → (slot index, key)
    live: HashMap<String, (usize, Arc<ContentKey>)>,
    free: Vec<usize>,
    count: usize,
    /// Tenants whose key was destroyed: never given a new one (a delivery racing the
    /// deletion must not store content readable again).
    shredded: HashSet<String>,
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Slots, StoreError> {
    if !bytes.len().is_multiple_of(SLOT) {
        return Err(corrupt(format!(
            "{} is {} bytes, not a whole number of {SLOT}-byte slots",
            path.display(),
            bytes.len()
        )));
    }
    let mut slots = Slots {
        count: bytes.len() / SLOT,
        ..Slots::default()
    };
    for (i, s) in bytes.chunks_exact(SLOT).enumerate() {
        if s.iter().all(|b| *b == 0) {
            slots.free.push(i);
            continue;
        }
        let crc = u32::from_be_bytes([s[CRC_AT], s[CRC_AT + 1], s[CRC_AT + 2], s[CRC_AT + 3]]);
        let len = usize::from(s[1]);
        if s[0] != 1 || len == 0 || len > ID_MAX || crc32fast::hash(&s[..CRC_AT]) != crc {
            return Err(corrupt(format!(
                "slot {i} of {} is damaged (state, length or CRC-32)",
                path.display()
            )));
        }
        let tenant = std::str::from_utf8(&s[2..2 + len])
            .map_err(|_| corrupt(format!("slot {i} of {}: tenant id", path.display())))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&s[KEY_AT..CRC_AT]);
        slots
            .live
            .insert(tenant.to_string(), (i, ContentKey::new(tenant, &key)));
    }
    Ok(slots)
}

impl TenantKeys {
    /// Opens (creating, mode 0600) the key file at `path` for reading and writing.
    ///
    /// # Errors
    /// [`StoreError::Db`] for I/O, [`StoreError::Corrupt`] for a damaged slot (start is
    /// refused rather than losing a tenant's key).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| io(path, &e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io(path, &e))?;
        let slots = parse(path, &bytes)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(Mutex::new(file)),
            slots: RwLock::new(slots),
        })
    }

    /// Reads the key file at `path` without opening it for writing (a missing file has no
    /// keys).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn read_only(path: &Path) -> Result<Self, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(path, &e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            file: None,
            slots: RwLock::new(parse(path, &bytes)?),
        })
    }

    /// Marks `tenant` deleted in this process before its deletion commits: from then on it
    /// gets no key ([`get_or_create`](Self::get_or_create)) and the writer stores no content
    /// for it ([`is_retired`](Self::is_retired)), so a delivery racing the deletion cannot
    /// land after it.
    pub(crate) fn retire(&self, tenant: &str) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.shredded.insert(tenant.to_string());
    }

    /// Whether `tenant` was deleted (or is being deleted) in this process.
    pub(crate) fn is_retired(&self, tenant: &str) -> bool {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.shredded.contains(tenant)
    }

    /// Where the keys are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The content key of `tenant`, if it has one.
    pub fn get(&self, tenant: &str) -> Option<Arc<ContentKey>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.live.get(tenant).map(|(_, k)| k.clone())
    }

    /// The content key of `tenant`, made (and synced to disk) if it has none yet.
    ///
    /// # Errors
    /// [`StoreError::Db`] for I/O or a read-only file; [`StoreError::Corrupt`] for a tenant
    /// id longer than 63 bytes.
    pub fn get_or_create(&self, tenant: &str) -> Result<Arc<ContentKey>, StoreError> {
        if let Some(k) = self.get(tenant) {
            return Ok(k);
        }
        if tenant.is_empty() || tenant.len() > ID_MAX {
            return Err(corrupt(format!("tenant id {tenant:?} cannot have a key")));
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, k)) = slots.live.get(tenant) {
            return Ok(k.clone());
        }
        if slots.shredded.contains(tenant) {
            return Err(StoreError::TenantDeleted(tenant.to_string()));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut slot = [0u8; SLOT];
        slot[0] = 1;
        slot[1] = tenant.len() as u8;
        slot[2..2 + tenant.len()].copy_from_slice(tenant.as_bytes());
        slot[KEY_AT..CRC_AT].copy_from_slice(&key);
        let crc = crc32fast::hash(&slot[..CRC_AT]);
        slot[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let index = slots.free.last().copied().unwrap_or(slots.count);
        self.write_slot(index, &slot)?;
        if slots.free.last() == Some(&index) {
            slots.free.pop();
        } else {
            slots.count += 1;
        }
        let k = ContentKey::new(tenant, &key);
        slots.live.insert(tenant.to_string(), (index, k.clone()));
        Ok(k)
    }

    /// Destroys `tenant`'s key: its slot is overwritten with zeros and the file synced before
    /// this returns; from then on [`get_or_create`](Self::get_or_create) refuses the tenant.
    /// Whether there was a key.
    ///
    /// # Errors
    /// [`StoreError::Db`] for I/O or a read-only file.
    pub fn shred(&self, tenant: &str) -> Result<bool, StoreError> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.shredded.insert(tenant.to_string());
        let Some(index) = slots.live.get(tenant).map(|(i, _)| *i) else {
            return Ok(false);
        };
        self.write_slot(index, &[0u8; SLOT])?;
        slots.live.remove(tenant);
        slots.free.push(index);
        Ok(true)
    }

    fn write_slot(&self, index: usize, slot: &[u8; SLOT]) -> Result<(), StoreError> {
        let file = self.file.as_ref().ok_or_else(|| {
            StoreError::Db(format!(
                "tenant key file {} is open read-only",
                self.path.display()
            ))
        })?;
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        file.seek(SeekFrom::Start((index * SLOT) as u64))
            .and_then(|_| file.write_all(slot))
            .and_then(|()| file.sync_all())
            .map_err(|e| io(&self.path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_encrypt_and_shred() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file_of(&dir.path().join("db.redb"));
        let keys = TenantKeys::open(&path).unwrap();
        let acme = keys.get_or_create("acme").unwrap();
        let globex = keys.get_or_create("globex").unwrap();
        let sealed = acme.encrypt(Content::Body, b"secret body").unwrap();
        assert_eq!(sealed.len(), OVERHEAD + 11);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            acme.decrypt(Content::Body, &sealed).as_deref(),
            Some(&b"secret body"[..])
        );
        // Another kind, another tenant, one changed byte: nothing opens.
        assert_eq!(acme.decrypt(Content::Artifact, &sealed), None);
        assert_eq!(globex.decrypt(Content::Body, &sealed), None);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(acme.decrypt(Content::Body, &bad), None, "byte {i}");
        }
        // Reopened, the same key; read-only sees it too.
        drop(keys);
        let keys = TenantKeys::open(&path).unwrap();
        let again = keys.get("acme").unwrap();
        assert_eq!(
            again.decrypt(Content::Body, &sealed).as_deref(),
            Some(&b"secret body"[..])
        );
        assert!(TenantKeys::read_only(&path).unwrap().get("acme").is_some());
        // Shred: the slot is zeros on disk, the key is gone after a reopen, the slot reused.
        let before = std::fs::read(&path).unwrap();
        assert!(keys.shred("acme").unwrap());
        assert!(!keys.shred("acme").unwrap());
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after.len(), before.len());
        assert!(after[..SLOT].iter().all(|b| *b == 0));
        assert_eq!(after[SLOT..], before[SLOT..]);
        drop(keys);
        let keys = TenantKeys::open(&path).unwrap();
        assert!(keys.get("acme").is_none());
        // A destroyed key is never replaced in the process that destroyed it (nor, through
        // the deleted status, after a restart: `Store::open` shreds again).
        let shredder = TenantKeys::open(&path).unwrap();
        shredder.get_or_create("initech").unwrap();
        assert!(shredder.shred("initech").unwrap());
        assert!(matches!(
            shredder.get_or_create("initech"),
            Err(StoreError::TenantDeleted(t)) if t == "initech"
        ));
        drop(shredder);
        let fresh = keys.get_or_create("acme").unwrap();
        assert_eq!(fresh.decrypt(Content::Body, &sealed), None);
        assert_eq!(std::fs::read(&path).unwrap().len(), 2 * SLOT);
    }

    #[test]
    fn a_damaged_slot_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.keys");
        TenantKeys::open(&path)
            .unwrap()
            .get_or_create("acme")
            .unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[KEY_AT] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            TenantKeys::open(&path),
            Err(StoreError::Corrupt { .. })
        ));
        std::fs::write(&path, &bytes[..SLOT - 1]).unwrap();
        assert!(TenantKeys::open(&path).is_err());
        assert!(
            TenantKeys::read_only(&dir.path().join("missing"))
                .unwrap()
                .get("acme")
                .is_none()
        );
    }
}
