//! Webhook sources: create, list, get, delete, rotate secrets.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::BearerAuth;
use super::problem::{ApiResult, Problem};
use super::{AppState, ctx};
use crate::clock::rfc3339;
use crate::identity::Role;
use crate::ingest::{
    GenericScheme, Provider, ROTATION_GRACE_SECS, SecretEntry, SigEncoding, SourceRecord,
    generate_secret, random_id, validate_generic, validate_secret,
};

#[derive(Tags)]
enum ApiTags {
    /// Webhook sources of a tenant.
    Sources,
}

/// `POST /api/tenants/{tenant}/webhook-sources` body.
#[derive(Object)]
pub struct CreateSource {
    /// `standard`, `github`, `stripe`, `slack`, `shopify`, `generic` or `ml`.
    pub provider: String,
    /// Shared secret; generated (and returned once) when absent.
    pub secret: Option<String>,
    /// Body cap in bytes (default per provider; at most the provider maximum).
    pub max_payload_bytes: Option<u64>,
    /// `generic`: header carrying the signature.
    pub header: Option<String>,
    /// `generic`: `hex` or `base64`.
    pub encoding: Option<String>,
    /// `generic`: literal prefix before the MAC (e.g. `sha256=`).
    pub prefix: Option<String>,
    /// Sustained rate, requests per second (default from config).
    pub rate_per_second: Option<u32>,
    /// Burst, requests (default from config).
    pub rate_burst: Option<u32>,
}

/// A secret slot of a source (the value is never listed).
#[derive(Object)]
pub struct SecretSlot {
    /// Slot number, for `DELETE …/secrets/{n}`.
    pub n: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 end of validity after a rotation.
    pub expires_at: Option<String>,
}

/// A webhook source.
#[derive(Object)]
pub struct SourceDto {
    /// `src_…`.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Provider.
    pub provider: String,
    /// Where to send webhooks.
    pub ingest_url: String,
    /// Body cap, bytes.
    pub max_payload_bytes: u64,
    /// Sustained rate, requests per second.
    pub rate_per_second: u32,
    /// Burst, requests.
    pub rate_burst: u32,
    /// Secret slots.
    pub secrets: Vec<SecretSlot>,
    /// Whether the appliance `ML_WEBHOOK_SECRET` also verifies (default tenant's `ml`).
    pub uses_appliance_secret: bool,
    /// `generic` header.
    pub header: Option<String>,
    /// `generic` encoding.
    pub encoding: Option<String>,
    /// `generic` prefix.
    pub prefix: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The generated secret: present only in the response that created it.
    pub secret: Option<String>,
}

impl From<&SourceRecord> for SourceDto {
    fn from(s: &SourceRecord) -> Self {
        Self {
            id: s.id.clone(),
            tenant: s.tenant.clone(),
            provider: s.provider.as_str().into(),
            ingest_url: s.ingest_url(),
            max_payload_bytes: s.max_payload_bytes,
            rate_per_second: s.rate_per_second,
            rate_burst: s.rate_burst,
            secrets: s
                .secrets
                .iter()
                .map(|e| SecretSlot {
                    n: e.n,
                    created_at: rfc3339(e.created_at),
                    expires_at: e.expires_at.map(rfc3339),
                })
                .collect(),
            uses_appliance_secret: s.uses_appliance_secret,
            header: s.generic.as_ref().map(|g| g.header.clone()),
            encoding: s.generic.as_ref().map(|g| match g.encoding {
                SigEncoding::Hex => "hex".into(),
                SigEncoding::Base64 => "base64".into(),
            }),
            prefix: s.generic.as_ref().and_then(|g| g.prefix.clone()),
            created_at: rfc3339(s.created_at),
            secret: None,
        }
    }
}

/// A list of sources.
#[derive(Object)]
pub struct SourceList {
    /// Sources.
    pub items: Vec<SourceDto>,
}

/// `POST …/rotate` body.
#[derive(Object, Default)]
pub struct RotateSecret {
    /// New secret; generated (and returned once) when absent.
    pub secret: Option<String>,
}

/// Result of a rotation.
#[derive(Object)]
pub struct Rotated {
    /// Slot number of the new secret.
    pub n: u32,
    /// The generated secret, if it was generated.
    pub secret: Option<String>,
    /// The source after rotation.
    pub source: SourceDto,
}

#[derive(ApiResponse)]
enum SourceCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<SourceDto>),
}

#[derive(ApiResponse)]
enum RotatedResponse {
    /// New secret added; older ones stay valid for 7 days or until deleted.
    #[oai(status = 201)]
    Created(Json<Rotated>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

enum SlotError {
    Missing,
    Last,
}

/// Webhook sources.
pub struct SourcesApi;

#[OpenApi]
impl SourcesApi {
    /// Create a webhook source (tenant-admin). The secret is returned only when generated.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources",
        method = "post",
        tag = "ApiTags::Sources"
    )]
    async fn create_source(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        body: Json<CreateSource>,
    ) -> ApiResult<SourceCreated> {
        let ctx = ctx(req);
        ctx.set_action("source.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        let b = body.0;
        let provider = Provider::parse(&b.provider).ok_or_else(|| {
            Problem::unprocessable(
                "UNKNOWN_PROVIDER",
                format!(
                    "unknown provider {:?}; use standard, github, stripe, slack, shopify, generic or ml",
                    b.provider
                ),
            )
        })?;
        let cap = b.max_payload_bytes.unwrap_or(provider.default_cap());
        if cap == 0 || cap > provider.max_cap() {
            return Err(Problem::unprocessable(
                "INVALID_PAYLOAD_CAP",
                format!(
                    "max_payload_bytes must be 1 to {} for {}",
                    provider.max_cap(),
                    provider.as_str()
                ),
            ));
        }
        let generic = if provider == Provider::Generic {
            let header = b.header.clone().ok_or_else(|| {
                Problem::unprocessable("INVALID_SOURCE", "generic sources need a header")
            })?;
            let encoding = match b.encoding.as_deref().unwrap_or("hex") {
                "hex" => SigEncoding::Hex,
                "base64" => SigEncoding::Base64,
                other => {
                    return Err(Problem::unprocessable(
                        "INVALID_SOURCE",
                        format!("encoding {other:?} must be hex or base64"),
                    ));
                }
            };
            let g = GenericScheme {
                header,
                encoding,
                prefix: b.prefix.clone().filter(|p| !p.is_empty()),
            };
            validate_generic(&g).map_err(|e| Problem::unprocessable("INVALID_SOURCE", e.0))?;
            Some(g)
        } else {
            if b.header.is_some() || b.encoding.is_some() || b.prefix.is_some() {
                return Err(Problem::unprocessable(
                    "INVALID_SOURCE",
                    "header, encoding and prefix apply to generic sources only",
                ));
            }
            None
        };
        let per_second = b
            .rate_per_second
            .unwrap_or(state.config.ratelimit.per_second);
        let burst = b.rate_burst.unwrap_or(state.config.ratelimit.burst);
        if !(1..=100_000).contains(&per_second) || !(1..=100_000).contains(&burst) {
            return Err(Problem::unprocessable(
                "INVALID_RATE_LIMIT",
                "rate_per_second and rate_burst must be 1 to 100000",
            ));
        }
        let (secret, generated) = match b.secret {
            Some(s) => {
                validate_secret(provider, &s)
                    .map_err(|e| Problem::unprocessable("INVALID_SECRET", e.0))?;
                (s, false)
            }
            None => (generate_secret(provider), true),
        };
        let now = state.now();
        let record = SourceRecord {
            id: random_id("src_"),
            tenant: tenant.0.clone(),
            provider,
            secrets: vec![SecretEntry {
                n: 1,
                value: secret.clone(),
                created_at: now,
                expires_at: None,
            }],
            uses_appliance_secret: false,
            max_payload_bytes: cap,
            generic,
            rate_per_second: per_second,
            rate_burst: burst,
            created_at: now,
        };
        ctx.set_resource(&record.id);
        let audit = vec![ctx.record("/api/tenants/{tenant}/webhook-sources", 201, None, now)];
        if !state.store.insert_source(record.clone(), audit).await? {
            return Err(Problem::conflict(
                "ML_SOURCE_EXISTS",
                "this tenant already has an ml source",
            ));
        }
        ctx.mark_audited();
        let mut dto = SourceDto::from(&record);
        dto.secret = generated.then_some(secret);
        Ok(SourceCreated::Created(Json(dto)))
    }

    /// List a tenant's webhook sources.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources",
        method = "get",
        tag = "ApiTags::Sources"
    )]
    async fn list_sources(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
    ) -> ApiResult<Json<SourceList>> {
        let ctx = ctx(req);
        ctx.set_action("source.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        let items = state
            .store
            .list_sources(&tenant)?
            .iter()
            .map(SourceDto::from)
            .collect();
        Ok(Json(SourceList { items }))
    }

    /// Get one webhook source.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id",
        method = "get",
        tag = "ApiTags::Sources"
    )]
    async fn get_source(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
    ) -> ApiResult<Json<SourceDto>> {
        let ctx = ctx(req);
        ctx.set_action("source.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin, Role::Viewer], &ctx)?;
        ctx.set_resource(&id);
        let s = state
            .store
            .get_source(&id)?
            .filter(|s| s.tenant == tenant.0)
            .ok_or_else(|| Problem::not_found("webhook source"))?;
        Ok(Json(SourceDto::from(&s)))
    }

    /// Delete a webhook source. Its events stay.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id",
        method = "delete",
        tag = "ApiTags::Sources"
    )]
    async fn delete_source(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
    ) -> ApiResult<Deleted> {
        let ctx = ctx(req);
        ctx.set_action("source.delete");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        ctx.set_resource(&id);
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/webhook-sources/{id}",
            204,
            None,
            state.now(),
        )];
        if !state
            .store
            .delete_source(tenant.0, id.0.clone(), audit)
            .await?
        {
            return Err(Problem::not_found("webhook source"));
        }
        state.ratelimits.forget(&id);
        ctx.mark_audited();
        Ok(Deleted::NoContent)
    }

    /// Add a new secret; older secrets stay valid for 7 days or until deleted.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id/rotate",
        method = "post",
        tag = "ApiTags::Sources"
    )]
    async fn rotate(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
        body: Json<RotateSecret>,
    ) -> ApiResult<RotatedResponse> {
        let ctx = ctx(req);
        ctx.set_action("source.rotate");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        ctx.set_resource(&id);
        let existing = state
            .store
            .get_source(&id)?
            .filter(|s| s.tenant == tenant.0)
            .ok_or_else(|| Problem::not_found("webhook source"))?;
        let requested = body.0.secret;
        let (secret, generated) = match requested {
            Some(s) => {
                validate_secret(existing.provider, &s)
                    .map_err(|e| Problem::unprocessable("INVALID_SECRET", e.0))?;
                (s, false)
            }
            None => (generate_secret(existing.provider), true),
        };
        let now = state.now();
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/webhook-sources/{id}/rotate",
            201,
            None,
            now,
        )];
        let value = secret.clone();
        let updated = state
            .store
            .modify_source(
                tenant.0.clone(),
                id.0.clone(),
                move |s: &mut SourceRecord| -> Result<(u32, SourceRecord), ()> {
                    let grace = now + ROTATION_GRACE_SECS;
                    for e in s.secrets.iter_mut() {
                        e.expires_at = Some(e.expires_at.map_or(grace, |x| x.min(grace)));
                    }
                    s.secrets.retain(|e| e.expires_at.is_none_or(|x| x > now));
                    let n = s.secrets.iter().map(|e| e.n).max().unwrap_or(0) + 1;
                    s.secrets.push(SecretEntry {
                        n,
                        value,
                        created_at: now,
                        expires_at: None,
                    });
                    Ok((n, s.clone()))
                },
                audit,
            )
            .await?;
        let Some(Ok((n, source))) = updated else {
            return Err(Problem::not_found("webhook source"));
        };
        ctx.mark_audited();
        Ok(RotatedResponse::Created(Json(Rotated {
            n,
            secret: generated.then_some(secret),
            source: SourceDto::from(&source),
        })))
    }

    /// Delete secret slot `n` (the last remaining secret cannot be deleted).
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id/secrets/:n",
        method = "delete",
        tag = "ApiTags::Sources"
    )]
    async fn delete_secret(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: BearerAuth,
        tenant: Path<String>,
        id: Path<String>,
        n: Path<u32>,
    ) -> ApiResult<Deleted> {
        let ctx = ctx(req);
        ctx.set_action("source.secret.delete");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize_tenant(&p, &tenant, &[Role::TenantAdmin], &ctx)?;
        ctx.set_resource(&format!("{}#{}", id.0, n.0));
        let slot = n.0;
        let audit = vec![ctx.record(
            "/api/tenants/{tenant}/webhook-sources/{id}/secrets/{n}",
            204,
            None,
            state.now(),
        )];
        let result = state
            .store
            .modify_source(
                tenant.0.clone(),
                id.0.clone(),
                move |s: &mut SourceRecord| {
                    if !s.secrets.iter().any(|e| e.n == slot) {
                        return Err(SlotError::Missing);
                    }
                    if s.secrets.len() == 1 && !s.uses_appliance_secret {
                        return Err(SlotError::Last);
                    }
                    s.secrets.retain(|e| e.n != slot);
                    Ok(())
                },
                audit,
            )
            .await?;
        match result {
            None | Some(Err(SlotError::Missing)) => Err(Problem::not_found("secret")),
            Some(Err(SlotError::Last)) => Err(Problem::conflict(
                "LAST_SECRET",
                "a source must keep at least one secret; rotate first",
            )),
            Some(Ok(())) => {
                ctx.mark_audited();
                Ok(Deleted::NoContent)
            }
        }
    }
}
