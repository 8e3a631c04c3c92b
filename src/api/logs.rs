//! Transparency logs: public keys, signed checkpoints, entries, inclusion and consistency
//! proofs (RFC 9162 §2.1, C2SP tlog-checkpoint / signed-note). Hashes are standard base64.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{KeyStatus, LogName, ts};
use super::problem::{ApiResult, Problem, status};
use super::raw::{JsonBytes, RawResponse};
use super::{AppState, ctx};
use crate::authz::{Action, Resource};
use crate::store::{LogQueryError, SignedCheckpoint};
use crate::tlog::merkle::{Hash, leaf_hash};

#[derive(Tags)]
enum ApiTags {
    /// Transparency logs and the keys that sign their checkpoints.
    Logs,
}

/// A checkpoint-signing key.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct KeyDto {
    /// C2SP signed-note verifier key (`name+keyid+base64`): pin this to verify offline.
    pub verifier_key: String,
    /// Key name (the origin prefix of every log).
    pub name: String,
    /// Key id, 8 hex digits.
    pub key_id: String,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// Whether it signs new checkpoints.
    pub status: KeyStatus,
    /// When it was first used.
    pub first_used: time::OffsetDateTime,
    /// When it was replaced; absent for the active key.
    pub retired_at: Option<time::OffsetDateTime>,
}

/// All keys, the active one and those retired by rotation.
#[derive(Object)]
pub struct KeyList {
    /// Keys, oldest first.
    pub keys: Vec<KeyDto>,
}

/// Where an entry sits in a log, with everything needed to verify it offline.
#[derive(Object, Debug, Clone)]
pub struct LogRef {
    /// Log origin (`<appliance>/<tenant>/<log>`).
    pub origin: String,
    /// Leaf index.
    pub index: u64,
    /// Size of the tree the proof and checkpoint are for.
    pub tree_size: u64,
    /// Root hash at `tree_size` (base64).
    pub root: String,
    /// RFC 9162 inclusion proof (base64 hashes).
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) for `tree_size`.
    pub checkpoint: String,
}

/// An inclusion proof.
#[derive(Object)]
pub struct InclusionProof {
    /// Leaf index.
    pub index: u64,
    /// Tree size.
    pub tree_size: u64,
    /// Leaf hash, SHA-256(0x00 ‖ entry) (base64).
    pub leaf_hash: String,
    /// Proof hashes (base64).
    pub inclusion_proof: Vec<String>,
}

/// A consistency proof.
#[derive(Object)]
pub struct ConsistencyProof {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub to: u64,
    /// Proof hashes (base64).
    pub consistency_proof: Vec<String>,
}

fn b64_all(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

impl AppState {
    /// The origin of `tenant`'s `log`.
    pub fn tenant_log(&self, tenant: &str, log: LogName) -> String {
        self.store.origin(tenant, log.as_str())
    }

    /// Authenticates a read of `tenant`'s `log` and returns its origin.
    ///
    /// # Errors
    /// 401; 404 (another tenant, unknown log); 403.
    fn open_log(
        &self,
        req: &Request,
        auth: &ApiAuth,
        tenant: &str,
        log: LogName,
        action: Action,
    ) -> Result<String, Problem> {
        let ctx = ctx(req);
        ctx.set_action(action.id());
        let p = self.authenticate(auth, &ctx)?;
        self.authorize(&p, action, &Resource::log(tenant, log.as_str()), &ctx)?;
        Ok(self.tenant_log(tenant, log))
    }

    /// `requested`, or the size of the log's latest checkpoint.
    fn size_or_latest(&self, origin: &str, requested: Option<u64>) -> Result<u64, Problem> {
        match requested {
            Some(s) => Ok(s),
            None => Ok(self.store.checkpoint(origin)?.map(|c| c.size).unwrap_or(0)),
        }
    }

    /// Proof of inclusion of leaf `index` in the log's latest signed checkpoint.
    ///
    /// # Errors
    /// Storage failures.
    pub fn log_ref(&self, origin: &str, index: u64) -> Result<LogRef, Problem> {
        let (cp, proof) = self.latest_inclusion(origin, index)?;
        Ok(LogRef {
            origin: origin.to_string(),
            index,
            tree_size: cp.size,
            root: B64.encode(cp.root),
            inclusion_proof: b64_all(&proof),
            checkpoint: cp.note,
        })
    }

    /// The log's latest signed checkpoint and the inclusion proof of leaf `index` under it.
    ///
    /// # Errors
    /// Storage failures (an appended log always has a checkpoint).
    pub fn latest_inclusion(
        &self,
        origin: &str,
        index: u64,
    ) -> Result<(SignedCheckpoint, Vec<Hash>), Problem> {
        let cp = self.store.checkpoint(origin)?.ok_or_else(|| {
            tracing::error!(origin, "an appended log has no checkpoint");
            Problem::new(Code::StorageError, "the log has no signed checkpoint")
        })?;
        let proof = self.store.inclusion_proof(origin, index, cp.size)?;
        Ok((cp, proof))
    }
}

/// Log endpoints.
pub struct LogsApi;

#[OpenApi]
impl LogsApi {
    /// List checkpoint-signing keys
    ///
    /// No authentication: anyone may verify. The active key is last; retired keys stay listed
    /// so older checkpoints still verify.
    #[oai(
        path = "/api/keys",
        method = "get",
        tag = "ApiTags::Logs",
        operation_id = "listApplianceKeys"
    )]
    async fn keys(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> ApiResult<Json<KeyList>, { status::BASE }> {
        ctx(req).set_action("keys.list");
        let keys = state
            .store
            .list_keys()?
            .into_iter()
            .map(|k| KeyDto {
                status: if k.retired_at.is_some() {
                    KeyStatus::Retired
                } else {
                    KeyStatus::Active
                },
                verifier_key: k.verifier_key,
                name: k.name,
                key_id: k.key_id,
                algorithm: "Ed25519".into(),
                first_used: ts(k.first_used),
                retired_at: k.retired_at.map(ts),
            })
            .collect();
        Ok(Json(KeyList { keys }))
    }

    /// Get a log's signed checkpoint
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer, ingest; appliance-admin in every tenant. The latest C2SP signed note
    /// (`text/plain`): origin, size, base64 root, Ed25519 signature. 404 while the log is empty.
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/checkpoint",
        method = "get",
        tag = "ApiTags::Logs",
        operation_id = "getCheckpoint"
    )]
    async fn checkpoint(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Which of the tenant's logs.
        log: Path<LogName>,
    ) -> ApiResult<PlainText<String>, { status::TENANT }> {
        let origin = state.open_log(req, &auth, &tenant, log.0, Action::LogCheckpointRead)?;
        let cp = state
            .store
            .checkpoint(&origin)?
            .ok_or_else(|| Problem::not_found("checkpoint (the log is empty)"))?;
        Ok(PlainText(cp.note))
    }

    /// Get a log entry
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer, ingest; appliance-admin in every tenant. The entry's exact bytes (RFC 8785
    /// JSON) with its `Leaf-Hash`.
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/entries/:index",
        method = "get",
        tag = "ApiTags::Logs",
        operation_id = "getLogEntry"
    )]
    async fn entry(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Which of the tenant's logs.
        log: Path<LogName>,
        /// Leaf index (0-based).
        index: Path<u64>,
    ) -> ApiResult<JsonBytes, { status::TENANT }> {
        let origin = state.open_log(req, &auth, &tenant, log.0, Action::LogEntryRead)?;
        let bytes = state
            .store
            .log_entry(&origin, index.0)
            .map_err(|e| match e {
                LogQueryError::Range(_) => Problem::not_found("log entry"),
                LogQueryError::Store(s) => s.into(),
            })?;
        let leaf = B64.encode(leaf_hash(&bytes));
        Ok(JsonBytes(RawResponse {
            content_type: "application/json".into(),
            bytes,
            headers: vec![("Leaf-Hash", leaf)],
        }))
    }

    /// Get an inclusion proof
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer, ingest; appliance-admin in every tenant. RFC 9162 §2.1.3 proof of entry
    /// `index` in the tree of `tree_size` (default: the latest checkpoint's size).
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/proofs/inclusion",
        method = "get",
        tag = "ApiTags::Logs",
        operation_id = "getInclusionProof"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn inclusion(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Which of the tenant's logs.
        log: Path<LogName>,
        /// Leaf index (0-based, below `tree_size`).
        index: Query<u64>,
        /// Tree size the proof is for (default: the latest checkpoint's size).
        #[oai(validator(minimum(value = "1")))]
        tree_size: Query<Option<u64>>,
    ) -> ApiResult<Json<InclusionProof>, { status::TENANT }> {
        let origin = state.open_log(req, &auth, &tenant, log.0, Action::LogProofInclusion)?;
        let size = state.size_or_latest(&origin, tree_size.0)?;
        let proof = state.store.inclusion_proof(&origin, index.0, size)?;
        let entry = state.store.log_entry(&origin, index.0)?;
        Ok(Json(InclusionProof {
            index: index.0,
            tree_size: size,
            leaf_hash: B64.encode(leaf_hash(&entry)),
            inclusion_proof: b64_all(&proof),
        }))
    }

    /// Get a consistency proof
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// analyst, viewer, ingest; appliance-admin in every tenant. RFC 9162 §2.1.4 proof between tree
    /// sizes `from` and `to` (default: the latest checkpoint's size).
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/proofs/consistency",
        method = "get",
        tag = "ApiTags::Logs",
        operation_id = "getConsistencyProof"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn consistency(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Which of the tenant's logs.
        log: Path<LogName>,
        /// The older tree size.
        from: Query<u64>,
        /// The newer tree size (default: the latest checkpoint's size).
        to: Query<Option<u64>>,
    ) -> ApiResult<Json<ConsistencyProof>, { status::TENANT }> {
        let origin = state.open_log(req, &auth, &tenant, log.0, Action::LogProofConsistency)?;
        let to = state.size_or_latest(&origin, to.0)?;
        let proof = state.store.consistency_proof(&origin, from.0, to)?;
        Ok(Json(ConsistencyProof {
            from: from.0,
            to,
            consistency_proof: b64_all(&proof),
        }))
    }
}
