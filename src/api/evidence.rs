//! The provenance service: tenant receipt-signing keys, run artifacts, signed receipts, and
//! their export (stored bytes with `Repr-Digest`, RFC 9530) and offline verification bundles.
//! Conductor endpoints act in the caller's tenant (a tenant-scoped token).

use std::sync::Arc;

use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::{BearerAuth, require_roles};
use super::logs::LogRef;
use super::problem::{ApiResult, Problem, RawBody, RawResponse};
use super::{AppState, ReqCtx, body, ctx};
use crate::clock::rfc3339;
use crate::evidence::artifact::{self, check_content, valid_id, valid_run_id};
use crate::evidence::receipt::{self, ReceiptKey, parse_ed25519_public};
use crate::evidence::{
    ArtifactError, ArtifactRecord, ArtifactType, ReceiptError, ReceiptRecord, SigningKeyRecord,
    repr_digest,
};
use crate::identity::{Principal, Role};
use crate::ingest::{random_id, sha256_hex};
use crate::store::{ArtifactOutcome, ReceiptOutcome};

#[derive(Tags)]
enum ApiTags {
    /// Pipeline-run artifacts and signed provenance receipts.
    Evidence,
    /// Keys that sign tenants' provenance receipts.
    SigningKeys,
}

/// Receipt body cap, bytes.
pub const RECEIPT_CAP: u64 = 256 * 1024;
/// How far in the future a receipt's `createdAt` may be, seconds.
pub const RECEIPT_FUTURE_SKEW: i64 = 60;

/// `POST /api/tenants/{tenant}/signing-keys` body.
#[derive(Object)]
pub struct CreateSigningKey {
    /// Key id, matched against a receipt's `signer.kid` (1–128 of `A-Za-z0-9._:-`).
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub alg: String,
    /// HS256 shared secret (at least 32 bytes, no surrounding whitespace).
    pub secret: Option<String>,
    /// EdDSA public key: standard base64 of the 32-byte Ed25519 key.
    pub public_key: Option<String>,
}

/// A receipt-signing key (secrets are never shown).
#[derive(Object)]
pub struct SigningKeyDto {
    /// Key id.
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub alg: String,
    /// EdDSA public key (base64).
    pub public_key: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<SigningKeyRecord> for SigningKeyDto {
    fn from(k: SigningKeyRecord) -> Self {
        Self {
            kid: k.kid,
            alg: k.alg,
            public_key: k.public_key,
            created_at: rfc3339(k.created_at),
        }
    }
}

/// A list of signing keys.
#[derive(Object)]
pub struct SigningKeyList {
    /// Keys.
    pub items: Vec<SigningKeyDto>,
}

/// A stored artifact.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ArtifactDto {
    /// Artifact id (unique within the run).
    pub artifact_id: String,
    /// Run id.
    pub run_id: String,
    /// Type.
    #[oai(rename = "type")]
    pub ty: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size, bytes.
    pub size: u64,
    /// Media type.
    pub content_type: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 end of retention.
    pub retention_until: String,
    /// Exempt from purging.
    pub legal_hold: bool,
    /// Whether the bytes were purged (the log entry stays).
    pub purged: bool,
    /// Its descriptor's place in the evidence log (proof only in the upload response).
    pub log: Option<LogRef>,
    /// Leaf index of its descriptor.
    pub log_index: u64,
}

impl From<ArtifactRecord> for ArtifactDto {
    fn from(a: ArtifactRecord) -> Self {
        Self {
            artifact_id: a.id,
            run_id: a.run_id,
            ty: a.ty.as_str().into(),
            sha256: a.sha256,
            size: a.size,
            content_type: a.content_type,
            created_at: rfc3339(a.created_at),
            retention_until: rfc3339(a.retention_until),
            legal_hold: a.legal_hold,
            purged: a.purged,
            log: None,
            log_index: a.log_index,
        }
    }
}

/// A run's artifacts.
#[derive(Object)]
pub struct ArtifactList {
    /// Artifacts by id.
    pub items: Vec<ArtifactDto>,
}

/// `PUT …/legal-hold` body.
#[derive(Object)]
pub struct LegalHold {
    /// `true` to hold, `false` to release.
    pub hold: bool,
}

/// An accepted receipt.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ReceiptAccepted {
    /// `receiptId`.
    pub receipt_id: String,
    /// `runId`.
    pub run_id: String,
    /// Hex SHA-256 of the stored canonical bytes.
    pub sha256: String,
    /// Its place in the tenant's evidence log, with proof and signed checkpoint.
    pub log: LogRef,
}

#[derive(ApiResponse)]
enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

fn tenant_of(p: &Principal, ctx: &ReqCtx) -> Result<String, Problem> {
    let t = p.tenant.clone().ok_or_else(|| {
        Problem::forbidden(
            "conductor endpoints act in the caller's tenant: use a tenant-scoped token",
        )
    })?;
    ctx.set_tenant(&t);
    Ok(t)
}

fn run_id_ok(run: &str) -> Result<(), Problem> {
    if valid_run_id(run) {
        Ok(())
    } else {
        Err(Problem::not_found("run"))
    }
}

fn receipt_problem(e: ReceiptError) -> Problem {
    match e {
        ReceiptError::Invalid(m) => Problem::unprocessable("RECEIPT_INVALID", m),
        ReceiptError::SignatureInvalid(m) => Problem::unprocessable("RECEIPT_SIGNATURE_INVALID", m),
        ReceiptError::Stale(m) => Problem::unprocessable("RECEIPT_STALE", m),
    }
}

fn valid_kid(kid: &str) -> bool {
    (1..=128).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Evidence endpoints.
pub struct EvidenceApi;

#[OpenApi]
impl EvidenceApi {
    /// Register a key that signs this tenant's receipts (tenant-admin).
    #[oai(
        path = "/api/tenants/:tenant/signing-keys",
        method = "post",
        tag = "ApiTags::SigningKeys"
    )]
    async fn create_signing_key(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        body: Json<CreateSigningKey>,
    ) -> ApiResult<Created<SigningKeyDto>> {
        let ctx = ctx(req);
        ctx.set_action("signing_key.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        let b = body.0;
        if !valid_kid(&b.kid) {
            return Err(Problem::unprocessable(
                "INVALID_KID",
                "kid must be 1 to 128 of A-Z a-z 0-9 . _ : -",
            ));
        }
        if b.kid == state.secrets.evidence_signer_kid {
            return Err(Problem::conflict(
                "KID_RESERVED",
                "this kid names the appliance's EVIDENCE_SIGNING_SECRET",
            ));
        }
        let (secret, public_key) = match (b.alg.as_str(), b.secret, b.public_key) {
            ("HS256", Some(s), None) => {
                if s.len() < 32 || s.trim() != s {
                    return Err(Problem::unprocessable(
                        "INVALID_SECRET",
                        "an HS256 secret is at least 32 bytes without surrounding whitespace",
                    ));
                }
                (Some(s), None)
            }
            ("EdDSA", None, Some(pk)) => {
                parse_ed25519_public(&pk)
                    .map_err(|e| Problem::unprocessable("INVALID_PUBLIC_KEY", e))?;
                (None, Some(pk.trim().to_string()))
            }
            ("HS256" | "EdDSA", _, _) => {
                return Err(Problem::unprocessable(
                    "INVALID_SIGNING_KEY",
                    "HS256 keys take `secret` only; EdDSA keys take `public_key` only",
                ));
            }
            _ => {
                return Err(Problem::unprocessable(
                    "INVALID_ALG",
                    "alg must be HS256 or EdDSA",
                ));
            }
        };
        let now = state.now();
        let record = SigningKeyRecord {
            tenant: tenant.0.clone(),
            kid: b.kid.clone(),
            alg: b.alg,
            secret,
            public_key,
            created_at: now,
        };
        ctx.set_resource(&b.kid);
        let audit = vec![ctx.record("/api/tenants/{tenant}/signing-keys", 201, None, now)];
        if !state.store.put_signing_key(record.clone(), audit).await? {
            return Err(Problem::conflict(
                "KID_EXISTS",
                "this tenant already has a key with this kid",
            ));
        }
        ctx.mark_audited();
        Ok(Created::Created(Json(record.into())))
    }

    /// List this tenant's receipt-signing keys (no secrets).
    #[oai(
        path = "/api/tenants/:tenant/signing-keys",
        method = "get",
        tag = "ApiTags::SigningKeys"
    )]
    async fn list_signing_keys(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
    ) -> ApiResult<Json<SigningKeyList>> {
        let ctx = ctx(req);
        ctx.set_action("signing_key.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        let items = state
            .store
            .list_signing_keys(&tenant)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(SigningKeyList { items }))
    }

    /// Upload a run artifact: the raw bytes with their `Content-Type` (ingest, tenant-admin).
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts",
        method = "post",
        tag = "ApiTags::Evidence"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn upload_artifact(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        run_id: Path<String>,
        #[oai(name = "type")] ty: Query<String>,
        id: Query<Option<String>>,
        retention_days: Query<Option<i64>>,
        raw: RawBody,
    ) -> ApiResult<Created<ArtifactDto>> {
        let ctx = ctx(req);
        ctx.set_action("artifact.upload");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::Ingest, Role::TenantAdmin])?;
        if !valid_run_id(&run_id) {
            return Err(Problem::unprocessable(
                "INVALID_RUN_ID",
                "runId must be 1 to 200 of A-Z a-z 0-9 . _ : -",
            ));
        }
        let ty = ArtifactType::parse(&ty).ok_or_else(|| {
            Problem::unprocessable(
                "INVALID_ARTIFACT_TYPE",
                ArtifactError::UnknownType(ty.0.clone()).to_string(),
            )
        })?;
        let artifact_id = match id.0 {
            Some(id) if valid_id(&id) => id,
            Some(_) => {
                return Err(Problem::unprocessable(
                    "INVALID_ARTIFACT_ID",
                    "id must be 1 to 128 of A-Z a-z 0-9 . _ -",
                ));
            }
            None => random_id("art_"),
        };
        let days = retention_days.0.unwrap_or(ty.default_retention_days());
        if !(1..=state.config.evidence.max_retention_days).contains(&days) {
            return Err(Problem::unprocessable(
                "INVALID_RETENTION",
                format!(
                    "retention_days must be 1 to {}",
                    state.config.evidence.max_retention_days
                ),
            ));
        }
        let content_type = req
            .headers()
            .get(poem::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // The media type is checked before the body is read.
        if !artifact::media_type_allowed(ty, &content_type) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!(
                    "{} artifacts take: {}",
                    ty.as_str(),
                    ty.allowed_media_types().join(", ")
                ),
            ));
        }
        let cap = state.config.evidence.max_artifact_bytes;
        let declared = body::precheck(req.headers(), cap)?;
        let (bytes, _permit) = body::read(&state, raw.0, cap, declared).await?;
        let content = check_content(ty, &content_type, bytes)
            .map_err(|e| Problem::unprocessable("ARTIFACT_CONTENT_INVALID", e.to_string()))?;
        let now = state.now();
        let record = ArtifactRecord {
            id: artifact_id.clone(),
            tenant: tenant.clone(),
            run_id: run_id.0.clone(),
            ty,
            sha256: sha256_hex(content.bytes()),
            size: content.bytes().len() as u64,
            content_type: artifact::essence(&content_type),
            created_at: now,
            retention_until: now.saturating_add(days.saturating_mul(86_400)),
            legal_hold: false,
            purged: false,
            log_index: 0,
        };
        ctx.set_resource(&format!("{}/{}", run_id.0, artifact_id));
        let audit = vec![ctx.record("/api/conductor/runs/{run_id}/artifacts", 201, None, now)];
        match state.store.put_artifact(record, content, audit).await? {
            ArtifactOutcome::Exists => Err(Problem::conflict(
                "ARTIFACT_EXISTS",
                "this run already has an artifact with this id; artifacts are immutable",
            )),
            ArtifactOutcome::Stored(rec) => {
                ctx.mark_audited();
                let origin = state.store.origin(&tenant, "evidence");
                let log = state.log_ref(&origin, rec.log_index)?;
                let mut dto = ArtifactDto::from(*rec);
                dto.log = Some(log);
                Ok(Created::Created(Json(dto)))
            }
        }
    }

    /// List a run's artifacts.
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts",
        method = "get",
        tag = "ApiTags::Evidence"
    )]
    async fn list_artifacts(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        run_id: Path<String>,
    ) -> ApiResult<Json<ArtifactList>> {
        let ctx = ctx(req);
        ctx.set_action("artifact.list");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::TenantAdmin, Role::Viewer, Role::Ingest])?;
        run_id_ok(&run_id)?;
        let items = state
            .store
            .list_artifacts(&tenant, &run_id)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(ArtifactList { items }))
    }

    /// Download an artifact's bytes (`Repr-Digest`, `Content-Disposition: attachment`).
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts/:artifact_id",
        method = "get",
        tag = "ApiTags::Evidence"
    )]
    async fn get_artifact(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        run_id: Path<String>,
        artifact_id: Path<String>,
    ) -> ApiResult<RawResponse> {
        let ctx = ctx(req);
        ctx.set_action("artifact.read");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::TenantAdmin, Role::Viewer])?;
        run_id_ok(&run_id)?;
        ctx.set_resource(&format!("{}/{}", run_id.0, artifact_id.0));
        let (rec, bytes) = state
            .store
            .get_artifact(&tenant, &run_id, &artifact_id)?
            .ok_or_else(|| Problem::not_found("artifact"))?;
        let bytes = bytes.ok_or_else(|| {
            Problem::new(
                StatusCode::GONE,
                "ARTIFACT_PURGED",
                "the artifact's retention ended and its bytes were purged; its evidence-log entry remains",
            )
        })?;
        Ok(RawResponse {
            content_type: rec.content_type,
            headers: vec![
                ("Repr-Digest", repr_digest(&bytes)),
                (
                    "Content-Disposition",
                    format!("attachment; filename=\"{}\"", rec.id),
                ),
            ],
            bytes,
        })
    }

    /// Place or release a legal hold (tenant-admin): held artifacts are never purged.
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts/:artifact_id/legal-hold",
        method = "put",
        tag = "ApiTags::Evidence"
    )]
    async fn legal_hold(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        run_id: Path<String>,
        artifact_id: Path<String>,
        body: Json<LegalHold>,
    ) -> ApiResult<Json<ArtifactDto>> {
        let ctx = ctx(req);
        ctx.set_action(if body.0.hold {
            "artifact.legal_hold.set"
        } else {
            "artifact.legal_hold.release"
        });
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::TenantAdmin])?;
        run_id_ok(&run_id)?;
        ctx.set_resource(&format!("{}/{}", run_id.0, artifact_id.0));
        let audit = vec![ctx.record(
            "/api/conductor/runs/{run_id}/artifacts/{artifact_id}/legal-hold",
            200,
            None,
            state.now(),
        )];
        let rec = state
            .store
            .set_legal_hold(tenant, run_id.0, artifact_id.0, body.0.hold, audit)
            .await?
            .ok_or_else(|| Problem::not_found("artifact"))?;
        ctx.mark_audited();
        Ok(Json(rec.into()))
    }

    /// Submit a signed provenance receipt (ingest, tenant-admin). Cap 256 KiB.
    #[oai(
        path = "/api/conductor/evidence/receipt",
        method = "post",
        tag = "ApiTags::Evidence"
    )]
    async fn submit_receipt(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        raw: RawBody,
    ) -> ApiResult<Created<ReceiptAccepted>> {
        let ctx = ctx(req);
        ctx.set_action("receipt.submit");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::Ingest, Role::TenantAdmin])?;
        let declared = body::precheck(req.headers(), RECEIPT_CAP)?;
        let (bytes, _permit) = body::read(&state, raw.0, RECEIPT_CAP, declared).await?;
        let value = crate::verify::parse_strict_json(&bytes).map_err(|e| {
            Problem::bad_request("INVALID_JSON", format!("the body is not valid JSON: {e}"))
        })?;
        let parsed = receipt::parse(value).map_err(receipt_problem)?;
        ctx.set_resource(&parsed.receipt_id);
        let key = if parsed.alg == "HS256" && parsed.kid == state.secrets.evidence_signer_kid {
            Some(ReceiptKey::Hs256(state.secrets.evidence_signing.clone()))
        } else {
            state
                .store
                .get_signing_key(&tenant, &parsed.kid)?
                .and_then(|k| k.key().ok())
        };
        let key = key.ok_or_else(|| {
            Problem::unprocessable(
                "RECEIPT_SIGNATURE_INVALID",
                "no key is registered for signer.kid",
            )
        })?;
        let verified = receipt::verify_signature(&parsed, &key).map_err(receipt_problem)?;
        let now = state.now();
        receipt::check_fresh(
            parsed.created_at,
            now,
            state.config.evidence.receipt_freshness_secs,
            RECEIPT_FUTURE_SKEW,
        )
        .map_err(receipt_problem)?;
        let record = ReceiptRecord {
            tenant: tenant.clone(),
            receipt_id: parsed.receipt_id.clone(),
            run_id: parsed.run_id.clone(),
            sha256: sha256_hex(verified.canonical()),
            log_index: 0,
            created_at: parsed.created_at,
            recorded_at: now,
        };
        let listed = parsed
            .artifacts
            .iter()
            .map(|a| (a.id.clone(), a.sha256.clone()))
            .collect();
        let audit = vec![ctx.record("/api/conductor/evidence/receipt", 201, None, now)];
        match state
            .store
            .put_receipt(record, verified, listed, audit.clone())
            .await?
        {
            ReceiptOutcome::Stored(rec) => {
                ctx.mark_audited();
                let origin = state.store.origin(&tenant, "evidence");
                let log = state.log_ref(&origin, rec.log_index)?;
                Ok(Created::Created(Json(ReceiptAccepted {
                    receipt_id: rec.receipt_id,
                    run_id: rec.run_id,
                    sha256: rec.sha256,
                    log,
                })))
            }
            ReceiptOutcome::Replayed(original) => {
                let location = format!(
                    "/api/conductor/evidence/receipt/{}?receiptId={}",
                    original.run_id, original.receipt_id
                );
                let mut p = Problem::conflict(
                    "RECEIPT_REPLAYED",
                    format!("receipt {} was already recorded", original.receipt_id),
                )
                .with_header("Location", location.clone());
                let mut extra = serde_json::Map::new();
                extra.insert(
                    "original".into(),
                    serde_json::json!({
                        "receiptId": original.receipt_id,
                        "runId": original.run_id,
                        "sha256": original.sha256,
                        "logIndex": original.log_index,
                        "location": location,
                    }),
                );
                p.extra = Some(extra);
                Err(p)
            }
            ReceiptOutcome::DigestMismatch(id, _) => Err(Problem::unprocessable(
                "ARTIFACT_DIGEST_MISMATCH",
                format!("artifact {id} of this run was stored with a different sha256"),
            )),
        }
    }

    /// The newest receipt of a run in the caller's tenant (or `receiptId`), as stored.
    #[oai(
        path = "/api/conductor/evidence/receipt/:run_id",
        method = "get",
        tag = "ApiTags::Evidence"
    )]
    async fn get_receipt(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        run_id: Path<String>,
        #[oai(name = "receiptId")] receipt_id: Query<Option<String>>,
    ) -> ApiResult<RawResponse> {
        let ctx = ctx(req);
        ctx.set_action("receipt.read");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::TenantAdmin, Role::Viewer, Role::Ingest])?;
        run_id_ok(&run_id)?;
        let (rec, bytes) = state
            .store
            .get_receipt(&tenant, &run_id, receipt_id.0.as_deref())?
            .ok_or_else(|| Problem::not_found("receipt"))?;
        ctx.set_resource(&rec.receipt_id);
        Ok(RawResponse {
            content_type: "application/json".into(),
            headers: vec![("Repr-Digest", repr_digest(&bytes))],
            bytes,
        })
    }

    /// An offline verification bundle for a run's newest receipt (or `receiptId`): receipt
    /// bytes, leaf, inclusion proof and signed checkpoint; check it with
    /// `evidentia verify bundle FILE --key VKEY`.
    #[oai(
        path = "/api/conductor/evidence/receipt/:run_id/bundle",
        method = "get",
        tag = "ApiTags::Evidence"
    )]
    async fn get_bundle(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        run_id: Path<String>,
        #[oai(name = "receiptId")] receipt_id: Query<Option<String>>,
    ) -> ApiResult<Json<serde_json::Value>> {
        let ctx = ctx(req);
        ctx.set_action("receipt.bundle");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        require_roles(&p, &[Role::TenantAdmin, Role::Viewer, Role::Ingest])?;
        run_id_ok(&run_id)?;
        let (rec, bytes) = state
            .store
            .get_receipt(&tenant, &run_id, receipt_id.0.as_deref())?
            .ok_or_else(|| Problem::not_found("receipt"))?;
        ctx.set_resource(&rec.receipt_id);
        let origin = state.store.origin(&tenant, "evidence");
        let (cp, proof) = state.latest_inclusion(&origin, rec.log_index)?;
        Ok(Json(crate::verify::make_bundle(
            &origin,
            &bytes,
            rec.log_index,
            cp.size,
            &proof,
            &cp.note,
        )))
    }
}
