//! The provenance service: tenant receipt-signing keys, run artifacts, signed receipts, and
//! their export (stored bytes with `Repr-Digest`, RFC 9530) and offline verification bundles.
//! Conductor endpoints act in the caller's tenant (a tenant-scoped token).

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{ArtifactKind, KeyAlg, ts};
use super::json::StrictJson;
use super::logs::LogRef;
use super::problem::{ApiResult, Problem, status};
use super::raw::{ArtifactBody, ArtifactBytes, JsonBytes, RawBody, RawResponse, ReceiptBody};
use super::{AppState, ReqCtx, body, ctx};
use crate::authz::{Action, Resource, ResourceType};
use crate::evidence::artifact::{self, check_content, valid_id, valid_run_id};
use crate::evidence::receipt::{self, KeyMaterial, KeySource, ReceiptKey, SigningKeyError};
use crate::evidence::{ArtifactRecord, ArtifactType, ReceiptRecord, SigningKeyRecord, repr_digest};
use crate::identity::Principal;
use crate::ingest::{random_id, sha256_hex};
use crate::store::{ArtifactOutcome, ReceiptOutcome};

#[derive(Tags)]
enum ApiTags {
    /// Pipeline-run artifacts and signed provenance receipts.
    Evidence,
    /// Keys that sign tenants' provenance receipts.
    SigningKeys,
}

/// Characters percent-encoded in a query value: everything but RFC 3986 unreserved ones.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Receipt body cap, bytes.
pub const RECEIPT_CAP: u64 = 256 * 1024;
/// How far in the future a receipt's `createdAt` may be, seconds.
pub const RECEIPT_FUTURE_SKEW: i64 = 60;

/// `POST /api/tenants/{tenant}/signing-keys` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateSigningKey {
    /// The key's id, as receipts name it in `signer.kid`: 1–128 of `A-Z a-z 0-9 . _ : -`.
    #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,128}$"))]
    pub kid: String,
    /// The key's algorithm.
    pub alg: KeyAlg,
    /// `HS256` only: the shared secret, 32–1024 characters, no white space at either end.
    #[oai(validator(
        min_length = 32,
        max_length = 1024,
        pattern = r"^[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]*[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$"
    ))]
    pub secret: Option<String>,
    /// `EdDSA` only: standard base64 of the 32-byte Ed25519 public key.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub public_key: Option<String>,
}

impl poem_openapi::types::Example for CreateSigningKey {
    fn example() -> Self {
        Self {
            kid: "pipeline-2026".into(),
            alg: KeyAlg::EdDsa,
            secret: None,
            public_key: Some("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into()),
        }
    }
}

/// A receipt-signing key (secrets are never shown).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SigningKeyDto {
    /// Key id.
    pub kid: String,
    /// The key's algorithm.
    pub alg: KeyAlg,
    /// `EdDSA` keys: the public key (standard base64).
    pub public_key: Option<String>,
    /// When it was registered.
    pub created_at: time::OffsetDateTime,
}

impl From<SigningKeyRecord> for SigningKeyDto {
    fn from(k: SigningKeyRecord) -> Self {
        Self {
            kid: k.kid,
            alg: KeyAlg::parse(&k.alg).unwrap_or(KeyAlg::Hs256),
            public_key: k.public_key,
            created_at: ts(k.created_at),
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
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ArtifactDto {
    /// Artifact id (unique within the run).
    pub artifact_id: String,
    /// Run id.
    pub run_id: String,
    /// Artifact type.
    #[oai(rename = "type")]
    pub ty: ArtifactKind,
    /// Lowercase hex SHA-256 of the bytes.
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// Size, bytes.
    pub size: u64,
    /// Media type it was stored with.
    pub content_type: String,
    /// When it was stored.
    pub created_at: time::OffsetDateTime,
    /// End of retention (then the bytes are purged unless held; the log leaf stays).
    pub retention_until: time::OffsetDateTime,
    /// Exempt from purging.
    pub legal_hold: bool,
    /// Whether the bytes were purged (the log entry stays).
    pub purged: bool,
    /// Its descriptor's place in the evidence log, with proof; only in the upload response.
    pub log: Option<LogRef>,
    /// Leaf index of its descriptor.
    pub log_index: u64,
}

impl From<ArtifactRecord> for ArtifactDto {
    fn from(a: ArtifactRecord) -> Self {
        Self {
            artifact_id: a.id,
            run_id: a.run_id,
            ty: a.ty.into(),
            sha256: a.sha256,
            size: a.size,
            content_type: a.content_type,
            created_at: ts(a.created_at),
            retention_until: ts(a.retention_until),
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
#[derive(Object, serde::Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
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

/// The signer of a receipt.
#[derive(Object)]
pub struct ReceiptSigner {
    /// Key id: `default` for the appliance's `EVIDENCE_SIGNING_SECRET`, else a tenant key.
    #[oai(validator(min_length = 1, max_length = 512))]
    pub kid: String,
    /// The signature algorithm.
    pub alg: KeyAlg,
}

/// An artifact a receipt vouches for.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ReceiptArtifact {
    /// Artifact id within the run.
    pub id: String,
    /// Artifact type.
    #[oai(rename = "type")]
    pub ty: ArtifactKind,
    /// Lowercase hex SHA-256 of its bytes.
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// When it was created.
    pub created_at: time::OffsetDateTime,
}

/// The evidence a receipt lists.
#[derive(Object)]
pub struct ReceiptEvidence {
    /// Artifacts of the run.
    pub artifacts: Vec<ReceiptArtifact>,
}

/// A provenance receipt as the pipeline runner signs it (DESIGN §2). The appliance reads the
/// exact bytes: unknown members are kept and covered by the signature.
#[derive(Object)]
#[oai(rename = "Receipt", rename_all = "camelCase")]
pub struct ReceiptDoc {
    /// Unique per tenant; a second submission is 409 `RECEIPT_REPLAYED`.
    #[oai(validator(min_length = 1, max_length = 512))]
    pub receipt_id: String,
    /// The pipeline run.
    #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
    pub run_id: String,
    /// When the runner made it; outside the freshness window it is 422 `RECEIPT_STALE`.
    pub created_at: time::OffsetDateTime,
    /// Digest of the code that ran (e.g. a commit id).
    #[oai(validator(min_length = 1, max_length = 512))]
    pub code_digest: String,
    /// Digest of the inputs.
    #[oai(validator(min_length = 1, max_length = 512))]
    pub inputs_hash: String,
    /// Digest of the outputs.
    #[oai(validator(min_length = 1, max_length = 512))]
    pub outputs_hash: String,
    /// Who signed.
    pub signer: ReceiptSigner,
    /// base64url of HMAC-SHA256 (`HS256`) or Ed25519 (`EdDSA`) over the RFC 8785 bytes of the
    /// receipt without `signature`.
    pub signature: String,
    /// Free-form summary.
    pub summary: Option<serde_json::Value>,
    /// Listed artifacts; a digest contradicting a stored artifact is 422.
    pub evidence: Option<ReceiptEvidence>,
    /// Required when `signer.kid` is `default`: the tenant the receipt is for.
    pub tenant: Option<String>,
}

/// An offline verification bundle (`evidentia verify bundle FILE --key VKEY`): the stored
/// bytes, their leaf, the inclusion proof and the signed checkpoint.
#[derive(Object, serde::Deserialize)]
pub struct Bundle {
    /// Bundle format identifier.
    pub format: String,
    /// Log origin (`<appliance>/<tenant>/evidence`).
    pub origin: String,
    /// The receipt's stored bytes, standard base64.
    pub receipt: String,
    /// Lowercase hex SHA-256 of the receipt bytes.
    pub receipt_sha256: String,
    /// Leaf index of the receipt in the log.
    pub leaf_index: u64,
    /// Tree size of the proof and checkpoint.
    pub tree_size: u64,
    /// base64 SHA-256(0x00 ‖ receipt bytes).
    pub leaf_hash: String,
    /// RFC 9162 inclusion proof, base64 hashes.
    pub inclusion_proof: Vec<String>,
    /// The C2SP signed checkpoint for `tree_size`.
    pub checkpoint: String,
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

/// Evidence endpoints.
pub struct EvidenceApi;

#[OpenApi]
impl EvidenceApi {
    /// Register a receipt-signing key
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant. An
    /// HS256 secret or an Ed25519 public key that signs this tenant's receipts, by `kid`.
    #[oai(
        path = "/api/tenants/:tenant/signing-keys",
        method = "post",
        tag = "ApiTags::SigningKeys",
        operation_id = "createSigningKey"
    )]
    async fn create_signing_key(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Key id, algorithm and key material.
        body: StrictJson<CreateSigningKey>,
    ) -> ApiResult<Created<SigningKeyDto>, { status::TENANT | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("signing_key.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::SigningKeyCreate,
            &Resource::tenant(&tenant),
            &ctx,
        )?;
        let b = body.0;
        let material = match (b.alg, b.secret, b.public_key) {
            (KeyAlg::Hs256, Some(s), None) => KeyMaterial::Hs256(s),
            (KeyAlg::EdDsa, None, Some(pk)) => KeyMaterial::EdDsa(pk),
            _ => {
                return Err(SigningKeyError::Material(
                    "HS256 keys take `secret` only; EdDSA keys take `public_key` only".into(),
                )
                .into());
            }
        };
        let now = state.now();
        let record = SigningKeyRecord::register(
            &tenant.0,
            &b.kid,
            material,
            &state.secrets.evidence_signer_kid,
            now,
        )?;
        ctx.set_resource(&b.kid);
        let audit = vec![ctx.record("/api/tenants/{tenant}/signing-keys", 201, None, now)];
        if !state.store.put_signing_key(record.clone(), audit).await? {
            return Err(Problem::new(
                Code::KidExists,
                "this tenant already has a key with this kid",
            )
            .into());
        }
        ctx.mark_audited();
        Ok(Created::Created(Json(record.into())))
    }

    /// List receipt-signing keys
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, viewer;
    /// appliance-admin in every tenant. Secrets are never shown.
    #[oai(
        path = "/api/tenants/:tenant/signing-keys",
        method = "get",
        tag = "ApiTags::SigningKeys",
        operation_id = "listSigningKeys"
    )]
    async fn list_signing_keys(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<SigningKeyList>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("signing_key.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::SigningKeyList, &Resource::tenant(&tenant), &ctx)?;
        let items = state
            .store
            .list_signing_keys(&tenant)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(SigningKeyList { items }))
    }

    /// Upload a run artifact
    ///
    /// Roles (default policies): tenant-admin, ingest, with a token of the tenant (conductor routes
    /// act in the caller's tenant). The raw bytes with the `Content-Type` their type accepts:
    /// `sbom` CycloneDX/SPDX/JSON, `attestation` in-toto/DSSE/JSON, `log` text/plain or NDJSON,
    /// `output` JSON/text/octet-stream, `trace` JSON/NDJSON, `policy_decision` and `receipt` JSON.
    /// The descriptor becomes a leaf of the evidence log.
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts",
        method = "post",
        tag = "ApiTags::Evidence",
        operation_id = "uploadArtifact"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn upload_artifact(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Pipeline run id (1–200 of `A-Za-z0-9._:-`).
        #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
        run_id: Path<String>,
        /// The artifact type; it decides the accepted media types and default retention.
        #[oai(name = "type")]
        ty: Query<ArtifactKind>,
        /// Artifact id within the run (1–128 of `A-Za-z0-9._-`); generated when absent.
        #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,128}$"))]
        id: Query<Option<String>>,
        /// Retention, days (default per type; at most `evidence.max_retention_days`).
        #[oai(validator(minimum(value = "1"), maximum(value = "36500")))]
        retention_days: Query<Option<i64>>,
        raw: RawBody<ArtifactBody>,
    ) -> ApiResult<Created<ArtifactDto>, { status::AUTH | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("artifact.upload");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        state.authorize(
            &p,
            Action::ArtifactUpload,
            &Resource::new(ResourceType::Run, run_id.0.as_str(), &tenant),
            &ctx,
        )?;
        if !valid_run_id(&run_id) {
            return Err(Problem::new(
                Code::InvalidRunId,
                "runId must be 1 to 200 of A-Z a-z 0-9 . _ : -",
            )
            .into());
        }
        let ty = ArtifactType::from(ty.0);
        let artifact_id = match id.0 {
            Some(id) if valid_id(&id) => id,
            Some(_) => {
                return Err(Problem::new(
                    Code::InvalidArtifactId,
                    "id must be 1 to 128 of A-Z a-z 0-9 . _ -",
                )
                .into());
            }
            None => random_id("art_"),
        };
        let days = retention_days.0.unwrap_or(ty.default_retention_days());
        if !(1..=state.config.evidence.max_retention_days).contains(&days) {
            return Err(Problem::new(
                Code::InvalidRetention,
                format!(
                    "retention_days must be 1 to {}",
                    state.config.evidence.max_retention_days
                ),
            )
            .into());
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
                Code::UnsupportedMediaType,
                format!(
                    "{} artifacts take: {}",
                    ty.as_str(),
                    ty.allowed_media_types().join(", ")
                ),
            )
            .into());
        }
        let cap = state.config.evidence.max_artifact_bytes;
        let declared = body::precheck(req.headers(), cap)?;
        let (bytes, _permit) = body::read(&state, raw.0, cap, declared).await?;
        let content = check_content(ty, &content_type, bytes)?;
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
            ArtifactOutcome::Exists => Err(Problem::new(
                Code::ArtifactExists,
                "this run already has an artifact with this id; artifacts are immutable",
            )
            .into()),
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

    /// List a run's artifacts
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, operator, analyst, viewer,
    /// ingest, with a token of the tenant (conductor routes act in the caller's tenant).
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts",
        method = "get",
        tag = "ApiTags::Evidence",
        operation_id = "listArtifacts"
    )]
    async fn list_artifacts(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Pipeline run id (1–200 of `A-Za-z0-9._:-`).
        #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
        run_id: Path<String>,
    ) -> ApiResult<Json<ArtifactList>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("artifact.list");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        state.authorize(
            &p,
            Action::ArtifactList,
            &Resource::new(ResourceType::Run, run_id.0.as_str(), &tenant),
            &ctx,
        )?;
        run_id_ok(&run_id)?;
        let items = state
            .store
            .list_artifacts(&tenant, &run_id)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(ArtifactList { items }))
    }

    /// Download an artifact
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, analyst, viewer, with a token of
    /// the tenant (conductor routes act in the caller's tenant). The bytes as stored;
    /// `Content-Type` is the stored type, `Repr-Digest` their SHA-256; 410 `ARTIFACT_PURGED` after
    /// retention.
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts/:artifact_id",
        method = "get",
        tag = "ApiTags::Evidence",
        operation_id = "downloadArtifact"
    )]
    async fn get_artifact(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Pipeline run id (1–200 of `A-Za-z0-9._:-`).
        #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
        run_id: Path<String>,
        /// Artifact id within the run.
        #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,128}$"))]
        artifact_id: Path<String>,
    ) -> ApiResult<ArtifactBytes, { status::TENANT | status::S410 }> {
        let ctx = ctx(req);
        ctx.set_action("artifact.read");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        state.authorize(
            &p,
            Action::ArtifactRead,
            &Resource::new(
                ResourceType::Artifact,
                format!("{}/{}", run_id.0, artifact_id.0),
                &tenant,
            ),
            &ctx,
        )?;
        run_id_ok(&run_id)?;
        ctx.set_resource(&format!("{}/{}", run_id.0, artifact_id.0));
        let (rec, bytes) = state
            .store
            .get_artifact(&tenant, &run_id, &artifact_id)?
            .ok_or_else(|| Problem::not_found("artifact"))?;
        let bytes = bytes.ok_or_else(|| {
            Problem::new(
                Code::ArtifactPurged,
                "the artifact's bytes are no longer stored (purged at the end of their retention, or destroyed with their deleted tenant); its evidence-log entry remains",
            )
        })?;
        let headers = vec![
            ("Repr-Digest", repr_digest(&bytes)),
            (
                "Content-Disposition",
                format!("attachment; filename=\"{}\"", rec.id),
            ),
        ];
        Ok(ArtifactBytes(RawResponse::download(
            rec.content_type,
            bytes,
            headers,
        )))
    }

    /// Set or release a legal hold
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, with a token of the tenant
    /// (conductor routes act in the caller's tenant). Held artifacts are never purged.
    #[oai(
        path = "/api/conductor/runs/:run_id/artifacts/:artifact_id/legal-hold",
        method = "put",
        tag = "ApiTags::Evidence",
        operation_id = "setLegalHold"
    )]
    async fn legal_hold(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Pipeline run id (1–200 of `A-Za-z0-9._:-`).
        #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
        run_id: Path<String>,
        /// Artifact id within the run.
        #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,128}$"))]
        artifact_id: Path<String>,
        /// Whether to hold.
        body: StrictJson<LegalHold>,
    ) -> ApiResult<Json<ArtifactDto>, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action(if body.0.hold {
            "artifact.legal_hold.set"
        } else {
            "artifact.legal_hold.release"
        });
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        state.authorize(
            &p,
            Action::ArtifactLegalHold,
            &Resource::new(
                ResourceType::Artifact,
                format!("{}/{}", run_id.0, artifact_id.0),
                &tenant,
            ),
            &ctx,
        )?;
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

    /// Submit a signed provenance receipt
    ///
    /// Roles (default policies): tenant-admin, ingest, with a token of the tenant (conductor routes
    /// act in the caller's tenant). Cap 256 KiB. Stored as its RFC 8785 bytes, appended to the
    /// evidence log; 201 with the leaf, inclusion proof and signed checkpoint.
    #[oai(
        path = "/api/conductor/evidence/receipt",
        method = "post",
        tag = "ApiTags::Evidence",
        operation_id = "submitReceipt"
    )]
    async fn submit_receipt(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        raw: RawBody<ReceiptBody>,
    ) -> ApiResult<Created<ReceiptAccepted>, { status::AUTH | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("receipt.submit");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        let declared = body::precheck(req.headers(), RECEIPT_CAP)?;
        let (bytes, _permit) = body::read(&state, raw.0, RECEIPT_CAP, declared).await?;
        let value = crate::verify::parse_strict_json(&bytes).map_err(|e| {
            Problem::new(
                Code::InvalidJson,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        let parsed = receipt::parse(value)?;
        ctx.set_resource(&parsed.receipt_id);
        // The run is named in the (capped) body, so the decision comes after parsing it.
        state.authorize(
            &p,
            Action::ReceiptSubmit,
            &Resource::new(ResourceType::Run, parsed.run_id.as_str(), &tenant),
            &ctx,
        )?;
        let source = receipt::key_source(&parsed, &state.secrets.evidence_signer_kid);
        let key = match &source {
            KeySource::Appliance => Some(ReceiptKey::Hs256(state.secrets.evidence_signing.clone())),
            KeySource::Tenant(kid) => state
                .store
                .get_signing_key(&tenant, kid)?
                .and_then(|k| k.key().ok()),
        };
        let key = key.ok_or_else(|| {
            Problem::new(
                Code::ReceiptSignatureInvalid,
                "no key is registered for signer.kid",
            )
        })?;
        let verified = receipt::verify_signature(&parsed, &key)?;
        receipt::bind_to_tenant(&parsed, &tenant, &source)?;
        let now = state.now();
        let freshness = state
            .store
            .get_tenant(&tenant)?
            .map(|t| t.settings.effective(&state.config).receipt_freshness_secs)
            .unwrap_or(state.config.evidence.receipt_freshness_secs);
        receipt::check_fresh(parsed.created_at, now, freshness, RECEIPT_FUTURE_SKEW)?;
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
                // `receiptId` is the client's string: percent-encode it so `&`, `#` or spaces
                // cannot point the Location at another receipt.
                let location = format!(
                    "/api/conductor/evidence/receipt/{}?receiptId={}",
                    original.run_id,
                    percent_encoding::utf8_percent_encode(&original.receipt_id, QUERY_VALUE)
                );
                let mut p = Problem::new(
                    Code::ReceiptReplayed,
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
                Err(p.into())
            }
            ReceiptOutcome::DigestMismatch(id, _) => Err(Problem::new(
                Code::ArtifactDigestMismatch,
                format!("artifact {id} of this run was stored with a different sha256"),
            )
            .into()),
        }
    }

    /// Get a run's receipt
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, analyst, viewer, ingest, with a
    /// token of the tenant (conductor routes act in the caller's tenant). The newest receipt of the
    /// run (or `receiptId`), bytes as stored with `Repr-Digest`.
    #[oai(
        path = "/api/conductor/evidence/receipt/:run_id",
        method = "get",
        tag = "ApiTags::Evidence",
        operation_id = "getReceipt"
    )]
    async fn get_receipt(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Pipeline run id (1–200 of `A-Za-z0-9._:-`).
        #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
        run_id: Path<String>,
        /// A receipt of the run (default: the newest).
        #[oai(name = "receiptId", validator(min_length = 1, max_length = 200))]
        receipt_id: Query<Option<String>>,
    ) -> ApiResult<JsonBytes, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("receipt.read");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        state.authorize(
            &p,
            Action::ReceiptRead,
            &Resource::new(ResourceType::Run, run_id.0.as_str(), &tenant),
            &ctx,
        )?;
        run_id_ok(&run_id)?;
        let (rec, bytes) = state
            .store
            .get_receipt(&tenant, &run_id, receipt_id.0.as_deref())?
            .ok_or_else(|| Problem::not_found("receipt"))?;
        ctx.set_resource(&rec.receipt_id);
        Ok(JsonBytes(RawResponse {
            content_type: "application/json".into(),
            headers: vec![("Repr-Digest", repr_digest(&bytes))],
            bytes,
        }))
    }

    /// Get a receipt's offline verification bundle
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, analyst, viewer, ingest, with a
    /// token of the tenant (conductor routes act in the caller's tenant). Receipt bytes, leaf,
    /// inclusion proof and signed checkpoint; check it with `evidentia verify bundle FILE --key
    /// VKEY`.
    #[oai(
        path = "/api/conductor/evidence/receipt/:run_id/bundle",
        method = "get",
        tag = "ApiTags::Evidence",
        operation_id = "getReceiptBundle"
    )]
    async fn get_bundle(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Pipeline run id (1–200 of `A-Za-z0-9._:-`).
        #[oai(validator(pattern = "^[A-Za-z0-9._:-]{1,200}$"))]
        run_id: Path<String>,
        /// A receipt of the run (default: the newest).
        #[oai(name = "receiptId", validator(min_length = 1, max_length = 200))]
        receipt_id: Query<Option<String>>,
    ) -> ApiResult<Json<Bundle>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("receipt.bundle");
        let p = state.authenticate(&auth, &ctx)?;
        let tenant = tenant_of(&p, &ctx)?;
        state.authorize(
            &p,
            Action::ReceiptBundle,
            &Resource::new(ResourceType::Run, run_id.0.as_str(), &tenant),
            &ctx,
        )?;
        run_id_ok(&run_id)?;
        let (rec, bytes) = state
            .store
            .get_receipt(&tenant, &run_id, receipt_id.0.as_deref())?
            .ok_or_else(|| Problem::not_found("receipt"))?;
        ctx.set_resource(&rec.receipt_id);
        let origin = state.store.origin(&tenant, "evidence");
        let (cp, proof) = state.latest_inclusion(&origin, rec.log_index)?;
        let bundle =
            crate::verify::make_bundle(&origin, &bytes, rec.log_index, cp.size, &proof, &cp.note);
        let bundle = serde_json::from_value::<Bundle>(bundle).map_err(|e| {
            tracing::error!(error = %e, "bundle does not match its schema");
            Problem::new(Code::Internal, "the bundle could not be assembled")
        })?;
        Ok(Json(bundle))
    }
}

#[cfg(test)]
mod tests {
    use crate::evidence::SigningKeyRecord;
    use crate::evidence::receipt::KeyMaterial;

    /// The published `secret` schema (pattern and length bounds, in characters) and
    /// `SigningKeyRecord::register` accept the same HS256 secrets.
    #[test]
    fn hs256_secret_schema_matches_the_server_rule() {
        let spec: serde_json::Value = serde_json::from_str(&crate::api::openapi_json()).unwrap();
        let secret = &spec["components"]["schemas"]["CreateSigningKey"]["properties"]["secret"];
        let re = regex::Regex::new(secret["pattern"].as_str().unwrap()).unwrap();
        let (min, max) = (
            secret["minLength"].as_u64().unwrap() as usize,
            secret["maxLength"].as_u64().unwrap() as usize,
        );
        let astral = "\u{1F512}".repeat(1024);
        for s in [
            "k".repeat(32),
            "k".repeat(31),
            "k".repeat(1024),
            "k".repeat(1025),
            format!(" {}", "k".repeat(40)),
            format!("{}\u{3000}", "k".repeat(40)),
            format!("{} {}", "k".repeat(20), "k".repeat(20)),
            "é".repeat(20),
            astral.clone(),
            format!("{astral}*"),
        ] {
            let n = s.chars().count();
            let by_schema = re.is_match(&s) && (min..=max).contains(&n);
            let by_server =
                SigningKeyRecord::register("t", "k1", KeyMaterial::Hs256(s.clone()), "ev", 0)
                    .is_ok();
            assert_eq!(
                by_schema,
                by_server,
                "{n} characters: {:?}",
                &s[..8.min(s.len())]
            );
        }
    }
}
