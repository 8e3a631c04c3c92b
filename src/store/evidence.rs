//! Evidence storage: artifacts (bytes apart from metadata, retention index, legal hold),
//! receipts (canonical bytes, per-run index, replay by `receiptId`), tenant signing keys. Each
//! artifact descriptor and receipt is appended to the tenant's `evidence` log in the same commit.
//!
//! A tenant's HS256 receipt key is sealed at rest (schema 4, [`crate::seal`]): the stored
//! [`SigningKeyRecord`]'s `secret` is a sealed value bound to `{tenant, record: kid, field:
//! "receipt_key"}`, sealed by [`Store::put_signing_key`] and opened by the reads. EdDSA public
//! keys are not secret and stay as they are.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::sealed::SealedValue;

use super::audit::{log_origin, put_audit};
use super::codec::{dec, enc};
use super::log::log_append_hashed;
use super::usage::UsageMetric;
use super::*;
use crate::audit::AuditRecord;
use crate::evidence::{
    ArtifactRecord, CheckedContent, ReceiptRecord, SigningKeyRecord, VerifiedReceipt,
};
use crate::seal::SealContext;
use crate::tlog::merkle;

/// Outcome of storing an artifact.
#[derive(Debug, Clone)]
pub enum ArtifactOutcome {
    /// Stored (with its evidence-log index).
    Stored(Box<ArtifactRecord>),
    /// The run already has an artifact with this id.
    Exists,
}

/// Outcome of storing a receipt.
#[derive(Debug, Clone)]
pub enum ReceiptOutcome {
    /// Stored (with its evidence-log index).
    Stored(ReceiptRecord),
    /// The tenant already recorded this `receiptId`: the original.
    Replayed(ReceiptRecord),
    /// A listed artifact exists in the run with another digest: (id, stored digest).
    DigestMismatch(String, String),
}

/// An artifact's metadata and bytes (`None` once purged).
pub type ArtifactWithBytes = (ArtifactRecord, Option<Vec<u8>>);

impl Store {
    /// Stores an artifact and appends its descriptor to the tenant's evidence log.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_artifact(
        &self,
        mut record: ArtifactRecord,
        content: CheckedContent,
        mut audit: Vec<AuditRecord>,
    ) -> Result<ArtifactOutcome, StoreError> {
        // The descriptor (the log entry), its leaf hash and the record are encoded here, in the
        // request task; the writer only assigns the position.
        let descriptor = record.descriptor().map_err(|e| StoreError::Corrupt {
            table: "artifacts",
            message: e,
        })?;
        let leaf = merkle::leaf_hash(&descriptor);
        let bytes = content.bytes().len() as u64;
        // Encrypted here, in the request task, under the tenant's content key.
        let sealed = self
            .content_key(&record.tenant)?
            .encrypt(Content::Artifact, content.bytes())?;
        drop(content);
        let keys = self.inner.keys.clone();
        self.write(WriteClass::Data(bytes), move |b| {
            // The tenant's deletion may have run earlier in this batch or a previous one.
            if keys.is_retired(&record.tenant) {
                return Ok(Err(StoreError::TenantDeleted(record.tenant.clone())));
            }
            let key = (
                record.tenant.as_str(),
                record.run_id.as_str(),
                record.id.as_str(),
            );
            if b.open_table(ARTIFACTS)?.get(key)?.is_some() {
                return Ok(Ok(ArtifactOutcome::Exists));
            }
            let origin = log_origin(b.prefix, &record.tenant, "evidence");
            record.log_index = log_append_hashed(b, &origin, descriptor, leaf)?;
            let key = (
                record.tenant.as_str(),
                record.run_id.as_str(),
                record.id.as_str(),
            );
            b.open_table(ARTIFACTS)?
                .insert(key, enc(&record)?.as_slice())?;
            b.open_table(ARTIFACT_BLOBS)?
                .insert(key, sealed.as_slice())?;
            b.open_table(ARTIFACT_EXPIRY)?
                .insert((record.retention_until, key.0, key.1, key.2), ())?;
            b.count_usage(&record.tenant, record.created_at, UsageMetric::Artifacts, 1);
            b.count_usage(&record.tenant, record.created_at, UsageMetric::Bytes, bytes);
            for a in audit.iter_mut() {
                a.detail = Some(format!("evidence log index {}", record.log_index));
            }
            put_audit(b, &mut audit)?;
            Ok(Ok(ArtifactOutcome::Stored(Box::new(record))))
        })
        .await?
    }

    /// The artifacts of a run, in id order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_artifacts(
        &self,
        tenant: &str,
        run: &str,
    ) -> Result<Vec<ArtifactRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(ARTIFACTS)?;
        let mut out = Vec::new();
        for item in t.range((tenant, run, "")..)? {
            let (k, v) = item?;
            let (tn, rn, _) = k.value();
            if tn != tenant || rn != run {
                break;
            }
            out.push(dec("artifacts", v.value())?);
        }
        Ok(out)
    }

    /// One artifact with its bytes.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_artifact(
        &self,
        tenant: &str,
        run: &str,
        id: &str,
    ) -> Result<Option<ArtifactWithBytes>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(ARTIFACTS)?;
        let Some(rec) = t
            .get((tenant, run, id))?
            .map(|v| dec::<ArtifactRecord>("artifacts", v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let blobs = r.open_table(ARTIFACT_BLOBS)?;
        let bytes = match blobs.get((tenant, run, id))? {
            Some(v) => self.decrypt(tenant, Content::Artifact, v.value(), || {
                format!("the bytes of artifact {id} of run {run} of tenant {tenant}")
            })?,
            None => None,
        };
        if let Some(b) = &bytes
            && crate::ingest::sha256_hex(b) != rec.sha256
        {
            return Err(self.damaged(format!(
                "the bytes of artifact {id} of run {run} of tenant {tenant} do not match their SHA-256"
            )));
        }
        Ok(Some((rec, bytes)))
    }

    /// Sets or clears the legal hold of an artifact; `None` when it does not exist.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_legal_hold(
        &self,
        tenant: String,
        run: String,
        id: String,
        hold: bool,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Option<ArtifactRecord>, StoreError> {
        self.write(WriteClass::Data(0), move |b| {
            let mut t = b.open_table(ARTIFACTS)?;
            let key = (tenant.as_str(), run.as_str(), id.as_str());
            let Some(mut rec) = t
                .get(key)?
                .map(|v| dec::<ArtifactRecord>("artifacts", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            rec.legal_hold = hold;
            t.insert(key, enc(&rec)?.as_slice())?;
            drop(t);
            put_audit(b, &mut audit)?;
            Ok(Some(rec))
        })
        .await
    }

    /// Purges the bytes of artifacts whose retention ended before `now`, except those under
    /// legal hold (they stay indexed and are purged once released). The evidence log is not
    /// touched. Returns how many were purged.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_artifacts(&self, now: i64) -> Result<usize, StoreError> {
        self.write(WriteClass::Exempt, move |b| {
            type Key = (i64, String, String, String);
            let mut due: Vec<Key> = Vec::new();
            {
                let t = b.open_table(ARTIFACT_EXPIRY)?;
                for item in t.range((i64::MIN, "", "", "")..(now, "", "", ""))? {
                    let (k, _) = item?;
                    let (at, tn, rn, id) = k.value();
                    due.push((at, tn.to_string(), rn.to_string(), id.to_string()));
                    if due.len() >= 10_000 {
                        break;
                    }
                }
            }
            let mut purged = 0;
            let mut meta = b.open_table(ARTIFACTS)?;
            let mut blobs = b.open_table(ARTIFACT_BLOBS)?;
            let mut expiry = b.open_table(ARTIFACT_EXPIRY)?;
            for (at, tn, rn, id) in &due {
                let key = (tn.as_str(), rn.as_str(), id.as_str());
                let rec = meta
                    .get(key)?
                    .map(|v| dec::<ArtifactRecord>("artifacts", v.value()))
                    .transpose()?;
                match rec {
                    Some(rec) if rec.legal_hold => continue,
                    Some(mut rec) => {
                        rec.purged = true;
                        meta.insert(key, enc(&rec)?.as_slice())?;
                        blobs.remove(key)?;
                        purged += 1;
                    }
                    None => {}
                }
                expiry.remove((*at, key.0, key.1, key.2))?;
            }
            Ok(purged)
        })
        .await
    }

    /// Records a verified receipt: refuses a `receiptId` the tenant already recorded and a
    /// listed artifact whose digest contradicts the stored one; otherwise stores the canonical
    /// bytes and appends them to the tenant's evidence log.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_receipt(
        &self,
        mut record: ReceiptRecord,
        verified: VerifiedReceipt,
        listed: Vec<(String, String)>,
        mut audit: Vec<AuditRecord>,
    ) -> Result<ReceiptOutcome, StoreError> {
        let leaf = merkle::leaf_hash(verified.canonical());
        let bytes = verified.canonical().len() as u64;
        self.write(WriteClass::Data(bytes), move |b| {
            let key = (record.tenant.as_str(), record.receipt_id.as_str());
            let earlier = b
                .open_table(RECEIPTS)?
                .get(key)?
                .map(|v| dec::<ReceiptRecord>("receipts", v.value()))
                .transpose()?;
            if let Some(original) = earlier {
                put_audit(b, &mut audit)?;
                return Ok(ReceiptOutcome::Replayed(original));
            }
            {
                let arts = b.open_table(ARTIFACTS)?;
                for (id, sha) in &listed {
                    if let Some(v) =
                        arts.get((record.tenant.as_str(), record.run_id.as_str(), id.as_str()))?
                    {
                        let stored: ArtifactRecord = dec("artifacts", v.value())?;
                        if !stored.sha256.eq_ignore_ascii_case(sha) {
                            return Ok(ReceiptOutcome::DigestMismatch(id.clone(), stored.sha256));
                        }
                    }
                }
            }
            let origin = log_origin(b.prefix, &record.tenant, "evidence");
            record.log_index = log_append_hashed(b, &origin, verified.into_canonical(), leaf)?;
            let key = (record.tenant.as_str(), record.receipt_id.as_str());
            b.open_table(RECEIPTS)?
                .insert(key, enc(&record)?.as_slice())?;
            b.open_table(RUN_RECEIPTS)?.insert(
                (
                    record.tenant.as_str(),
                    record.run_id.as_str(),
                    record.log_index,
                ),
                record.receipt_id.as_str(),
            )?;
            b.count_usage(&record.tenant, record.recorded_at, UsageMetric::Receipts, 1);
            for a in audit.iter_mut() {
                a.detail = Some(format!("evidence log index {}", record.log_index));
            }
            put_audit(b, &mut audit)?;
            Ok(ReceiptOutcome::Stored(record))
        })
        .await
    }

    /// A receipt of `run` in `tenant`: the one named, or the newest.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_receipt(
        &self,
        tenant: &str,
        run: &str,
        receipt_id: Option<&str>,
    ) -> Result<Option<(ReceiptRecord, Vec<u8>)>, StoreError> {
        let r = self.read()?;
        let id = match receipt_id {
            Some(id) => id.to_string(),
            None => {
                let idx = r.open_table(RUN_RECEIPTS)?;
                let newest = idx
                    .range((tenant, run, 0u64)..=(tenant, run, u64::MAX))?
                    .next_back()
                    .transpose()?;
                match newest {
                    Some((_, v)) => v.value().to_string(),
                    None => return Ok(None),
                }
            }
        };
        let meta = r.open_table(RECEIPTS)?;
        let Some(rec) = meta
            .get((tenant, id.as_str()))?
            .map(|v| dec::<ReceiptRecord>("receipts", v.value()))
            .transpose()?
            .filter(|rec| rec.run_id == run)
        else {
            return Ok(None);
        };
        // The canonical bytes are kept once, as the evidence-log entry.
        let origin = self.origin(tenant, "evidence");
        let entries = r.open_table(LOG_ENTRIES)?;
        let data = entries
            .get((origin.as_str(), rec.log_index))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StoreError::Corrupt {
                table: "log_entries",
                message: format!("{origin}: receipt entry {} missing", rec.log_index),
            })?;
        Ok(Some((rec, data)))
    }

    /// Registers a tenant signing key (its HS256 secret sealed for storage); `false` when the
    /// `kid` is taken.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_signing_key(
        &self,
        mut key: SigningKeyRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        if let Some(secret) = &key.secret {
            let sealed = self.seal_secret(
                &SealContext {
                    tenant: &key.tenant,
                    record: &key.kid,
                    field: RECEIPT_KEY_FIELD,
                },
                secret.as_bytes(),
            )?;
            key.secret = Some(sealed);
        }
        self.write(WriteClass::Data(0), move |b| {
            let mut t = b.open_table(SIGNING_KEYS)?;
            if t.get((key.tenant.as_str(), key.kid.as_str()))?.is_some() {
                return Ok(false);
            }
            t.insert(
                (key.tenant.as_str(), key.kid.as_str()),
                enc(&key)?.as_slice(),
            )?;
            drop(t);
            put_audit(b, &mut audit)?;
            Ok(true)
        })
        .await
    }

    /// One tenant signing key.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_signing_key(
        &self,
        tenant: &str,
        kid: &str,
    ) -> Result<Option<SigningKeyRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(SIGNING_KEYS)?;
        t.get((tenant, kid))?
            .map(|v| self.open_signing_key(dec("signing_keys", v.value())?))
            .transpose()
    }

    /// The plaintext form of a stored signing key.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when its sealed secret does not open.
    fn open_signing_key(&self, mut key: SigningKeyRecord) -> Result<SigningKeyRecord, StoreError> {
        if let Some(sealed) = &key.secret {
            let ctx = SealContext {
                tenant: &key.tenant,
                record: &key.kid,
                field: RECEIPT_KEY_FIELD,
            };
            let plain = String::from_utf8(self.open_secret(&ctx, sealed)?).map_err(|_| {
                self.damaged(format!(
                    "the sealed receipt key {} of tenant {}: not UTF-8",
                    key.kid, key.tenant
                ))
            })?;
            key.secret = Some(plain);
        }
        Ok(key)
    }

    /// A tenant's signing keys.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_signing_keys(&self, tenant: &str) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(SIGNING_KEYS)?;
        let mut out = Vec::new();
        for item in t.range((tenant, "")..)? {
            let (k, v) = item?;
            if k.value().0 != tenant {
                break;
            }
            out.push(self.open_signing_key(dec("signing_keys", v.value())?)?);
        }
        Ok(out)
    }
}

/// The field a tenant's HS256 receipt key is sealed for (record: its kid).
const RECEIPT_KEY_FIELD: &str = "receipt_key";

/// Rewrites every stored receipt-key secret as `f(context, stored value)` in `txn` (the
/// schema-4 migration seals plaintext, a data-key rotation reseals); how many.
///
/// # Errors
/// What `f` returns; [`StoreError`] reading or writing the table. Nothing is committed then.
pub(crate) fn rewrite_signing_key_secrets(
    txn: &WriteTransaction,
    f: &mut dyn FnMut(&SealContext<'_>, &str) -> Result<String, StoreError>,
) -> Result<u64, StoreError> {
    let mut t = txn.open_table(SIGNING_KEYS)?;
    let mut keys = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        let key: SigningKeyRecord = dec("signing_keys", v.value())?;
        if key.secret.is_some() {
            keys.push(key);
        }
    }
    let mut done = 0u64;
    for mut key in keys {
        if let Some(value) = &key.secret {
            let ctx = SealContext {
                tenant: &key.tenant,
                record: &key.kid,
                field: RECEIPT_KEY_FIELD,
            };
            key.secret = Some(f(&ctx, value)?);
            done += 1;
        }
        t.insert(
            (key.tenant.as_str(), key.kid.as_str()),
            enc(&key)?.as_slice(),
        )?;
    }
    Ok(done)
}

/// Appends every sealed receipt-key secret in `r` to `out`.
///
/// # Errors
/// [`StoreError`] reading the table or decoding a record.
pub(crate) fn sealed_signing_keys(
    r: &ReadTransaction,
    out: &mut Vec<SealedValue>,
) -> Result<(), StoreError> {
    let t = r.open_table(SIGNING_KEYS)?;
    for item in t.iter()? {
        let (_, v) = item?;
        let key: SigningKeyRecord = dec("signing_keys", v.value())?;
        if let Some(sealed) = key.secret {
            out.push(SealedValue {
                table: "signing_keys",
                tenant: key.tenant,
                record: key.kid,
                field: RECEIPT_KEY_FIELD.to_string(),
                sealed,
            });
        }
    }
    Ok(())
}
