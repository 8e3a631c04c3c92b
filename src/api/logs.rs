//! Transparency logs: public keys, signed checkpoints, entries, inclusion and consistency
//! proofs (RFC 9162 §2.1, C2SP tlog-checkpoint / signed-note). Hashes are standard base64.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::BearerAuth;
use super::problem::{ApiResult, Problem, RawResponse};
use super::{AppState, ctx};
use crate::clock::rfc3339;
use crate::identity::Role;
use crate::store::{LogQueryError, SignedCheckpoint};
use crate::tlog::merkle::{Hash, leaf_hash};

#[derive(Tags)]
enum ApiTags {
    /// Transparency logs and the keys that sign their checkpoints.
    Logs,
}

/// Roles that may read a tenant's logs.
pub const LOG_READERS: [Role; 3] = [Role::TenantAdmin, Role::Viewer, Role::Ingest];

/// A checkpoint-signing key.
#[derive(Object)]
pub struct KeyDto {
    /// C2SP signed-note verifier key (`name+keyid+base64`): pin this to verify offline.
    pub verifier_key: String,
    /// Key name (the origin prefix of every log).
    pub name: String,
    /// Key id, 8 hex digits.
    pub key_id: String,
    /// `Ed25519`.
    pub algorithm: String,
    /// `active` or `retired`.
    pub status: String,
    /// RFC 3339.
    pub first_used: String,
    /// RFC 3339, when replaced.
    pub retired_at: Option<String>,
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

fn range_problem(e: LogQueryError) -> Problem {
    match e {
        LogQueryError::Range(msg) => Problem::bad_request("INVALID_RANGE", msg),
        LogQueryError::Store(s) => s.into(),
    }
}

fn b64_all(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

impl AppState {
    /// The origin of `tenant`'s `log` (`evidence` or `audit`), or 404.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` for other log names.
    pub fn tenant_log(&self, tenant: &str, log: &str) -> Result<String, Problem> {
        match log {
            "evidence" | "audit" => Ok(self.store.origin(tenant, log)),
            _ => Err(Problem::not_found("log")),
        }
    }

    /// Authenticates a read of `tenant`'s `log` and returns its origin.
    ///
    /// # Errors
    /// 401; 404 (another tenant, unknown log); 403.
    fn open_log(
        &self,
        req: &Request,
        auth: &BearerAuth,
        tenant: &str,
        log: &str,
        action: &str,
    ) -> Result<String, Problem> {
        let ctx = ctx(req);
        ctx.set_action(action);
        let p = self.authenticate(auth, &ctx)?;
        self.authorize_tenant(&p, tenant, &LOG_READERS, &ctx)?;
        self.tenant_log(tenant, log)
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
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "LOG_ERROR",
                "no checkpoint",
            )
        })?;
        let proof = self
            .store
            .inclusion_proof(origin, index, cp.size)
            .map_err(range_problem)?;
        Ok((cp, proof))
    }
}

/// Log endpoints.
pub struct LogsApi;

#[OpenApi]
impl LogsApi {
    /// Public keys that sign checkpoints (no authentication: anyone may verify).
    #[oai(path = "/api/keys", method = "get", tag = "ApiTags::Logs")]
    async fn keys(&self, state: Data<&Arc<AppState>>, req: &Request) -> ApiResult<Json<KeyList>> {
        ctx(req).set_action("keys.list");
        let keys = state
            .store
            .list_keys()?
            .into_iter()
            .map(|k| KeyDto {
                status: if k.retired_at.is_some() {
                    "retired"
                } else {
                    "active"
                }
                .into(),
                verifier_key: k.verifier_key,
                name: k.name,
                key_id: k.key_id,
                algorithm: "Ed25519".into(),
                first_used: rfc3339(k.first_used),
                retired_at: k.retired_at.map(rfc3339),
            })
            .collect();
        Ok(Json(KeyList { keys }))
    }

    /// The log's latest signed checkpoint (C2SP signed note, `text/plain`).
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/checkpoint",
        method = "get",
        tag = "ApiTags::Logs"
    )]
    async fn checkpoint(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        log: Path<String>,
    ) -> ApiResult<PlainText<String>> {
        let origin = state.open_log(req, &auth, &tenant, &log, "log.checkpoint.read")?;
        let cp = state
            .store
            .checkpoint(&origin)?
            .ok_or_else(|| Problem::not_found("checkpoint (the log is empty)"))?;
        Ok(PlainText(cp.note))
    }

    /// One log entry, its exact bytes (RFC 8785 JSON).
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/entries/:index",
        method = "get",
        tag = "ApiTags::Logs"
    )]
    async fn entry(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        log: Path<String>,
        index: Path<u64>,
    ) -> ApiResult<RawResponse> {
        let origin = state.open_log(req, &auth, &tenant, &log, "log.entry.read")?;
        let bytes = state
            .store
            .log_entry(&origin, index.0)
            .map_err(|e| match e {
                LogQueryError::Range(_) => Problem::not_found("log entry"),
                LogQueryError::Store(s) => s.into(),
            })?;
        let leaf = B64.encode(leaf_hash(&bytes));
        Ok(RawResponse {
            content_type: "application/json".into(),
            bytes,
            headers: vec![("Leaf-Hash", leaf)],
        })
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `tree_size` (default: the
    /// latest checkpoint's size).
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/proofs/inclusion",
        method = "get",
        tag = "ApiTags::Logs"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn inclusion(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        log: Path<String>,
        index: Query<u64>,
        tree_size: Query<Option<u64>>,
    ) -> ApiResult<Json<InclusionProof>> {
        let origin = state.open_log(req, &auth, &tenant, &log, "log.proof.inclusion")?;
        let size = state.size_or_latest(&origin, tree_size.0)?;
        let proof = state
            .store
            .inclusion_proof(&origin, index.0, size)
            .map_err(range_problem)?;
        let entry = state
            .store
            .log_entry(&origin, index.0)
            .map_err(range_problem)?;
        Ok(Json(InclusionProof {
            index: index.0,
            tree_size: size,
            leaf_hash: B64.encode(leaf_hash(&entry)),
            inclusion_proof: b64_all(&proof),
        }))
    }

    /// RFC 9162 consistency proof between tree sizes `from` and `to` (default: latest).
    #[oai(
        path = "/api/tenants/:tenant/logs/:log/proofs/consistency",
        method = "get",
        tag = "ApiTags::Logs"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn consistency(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        log: Path<String>,
        from: Query<u64>,
        to: Query<Option<u64>>,
    ) -> ApiResult<Json<ConsistencyProof>> {
        let origin = state.open_log(req, &auth, &tenant, &log, "log.proof.consistency")?;
        let to = state.size_or_latest(&origin, to.0)?;
        let proof = state
            .store
            .consistency_proof(&origin, from.0, to)
            .map_err(range_problem)?;
        Ok(Json(ConsistencyProof {
            from: from.0,
            to,
            consistency_proof: b64_all(&proof),
        }))
    }
}
