//! Webhook sources: create, list, get, delete, rotate secrets.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{EncodingName, ProviderName, ts};
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, ctx};
use crate::authz::{Action, Resource, ResourceType};
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
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// The provider whose signature scheme the source verifies.
    pub provider: ProviderName,
    /// Shared secret (16–1024 characters, no leading or trailing white space; `whsec_<base64>`
    /// for `standard`); generated and returned once when absent.
    #[oai(validator(
        min_length = 16,
        max_length = 1024,
        pattern = r"^[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]*[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$"
    ))]
    pub secret: Option<String>,
    /// Body cap, bytes (default per provider: 1 MiB, 25 MiB for github, 512 KiB for ml; at most
    /// the provider's maximum).
    #[oai(validator(minimum(value = "1"), maximum(value = "26214400")))]
    pub max_payload_bytes: Option<u64>,
    /// `generic` only: the header carrying the signature.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub header: Option<String>,
    /// `generic` only: how the MAC is encoded (default `hex`).
    pub encoding: Option<EncodingName>,
    /// `generic` only: literal prefix before the MAC (e.g. `sha256=`), at most 64 bytes.
    #[oai(validator(max_length = 64))]
    pub prefix: Option<String>,
    /// Sustained rate, requests per second (default from `ratelimit.per_second`).
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub rate_per_second: Option<u32>,
    /// Burst, requests (default from `ratelimit.burst`).
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub rate_burst: Option<u32>,
}

impl poem_openapi::types::Example for CreateSource {
    fn example() -> Self {
        Self {
            provider: ProviderName::Github,
            secret: Some("my-github-webhook-secret".into()),
            max_payload_bytes: None,
            header: None,
            encoding: None,
            prefix: None,
            rate_per_second: None,
            rate_burst: None,
        }
    }
}

/// A secret slot of a source (the value is never listed).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SecretSlot {
    /// Slot number, for `DELETE …/secrets/{n}`.
    pub n: u32,
    /// When the secret was added.
    pub created_at: time::OffsetDateTime,
    /// End of validity after a rotation; absent while the secret is current.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// A webhook source: where one tenant receives one provider's webhooks.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SourceDto {
    /// Source id (`src_` and 32 hex digits).
    #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Provider scheme.
    pub provider: ProviderName,
    /// Path to send webhooks to (`/webhooks/{id}/events`, `/ai/webhook` for `ml`).
    pub ingest_url: String,
    /// Body cap, bytes.
    pub max_payload_bytes: u64,
    /// Sustained rate, requests per second.
    pub rate_per_second: u32,
    /// Burst, requests.
    pub rate_burst: u32,
    /// Secret slots (values never listed).
    pub secrets: Vec<SecretSlot>,
    /// Whether the appliance `ML_WEBHOOK_SECRET` also verifies (the default tenant's `ml`).
    pub uses_appliance_secret: bool,
    /// `generic` sources: the signature header.
    pub header: Option<String>,
    /// `generic` sources: the MAC encoding.
    pub encoding: Option<EncodingName>,
    /// `generic` sources: the prefix before the MAC, if any.
    pub prefix: Option<String>,
    /// When the source was created.
    pub created_at: time::OffsetDateTime,
    /// The generated secret: present only in the response that generated it.
    pub secret: Option<String>,
}

impl From<&SourceRecord> for SourceDto {
    fn from(s: &SourceRecord) -> Self {
        Self {
            id: s.id.clone(),
            tenant: s.tenant.clone(),
            provider: s.provider.into(),
            ingest_url: s.ingest_url(),
            max_payload_bytes: s.max_payload_bytes,
            rate_per_second: s.rate_per_second,
            rate_burst: s.rate_burst,
            secrets: s
                .secrets
                .iter()
                .map(|e| SecretSlot {
                    n: e.n,
                    created_at: ts(e.created_at),
                    expires_at: e.expires_at.map(ts),
                })
                .collect(),
            uses_appliance_secret: s.uses_appliance_secret,
            header: s.generic.as_ref().map(|g| g.header.clone()),
            encoding: s.generic.as_ref().map(|g| g.encoding.into()),
            prefix: s.generic.as_ref().and_then(|g| g.prefix.clone()),
            created_at: ts(s.created_at),
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

/// `POST …/rotate` body (`{}` to generate the new secret).
#[derive(Object, Default, serde::Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// New secret (16–1024 characters, no leading or trailing white space; `whsec_<base64>` for
    /// `standard`); generated and returned once when absent.
    #[oai(validator(
        min_length = 16,
        max_length = 1024,
        pattern = r"^[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]*[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$"
    ))]
    pub secret: Option<String>,
}

/// Result of a rotation.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
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
    /// Create a webhook source
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant. The
    /// secret is returned only when the appliance generated it.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources",
        method = "post",
        tag = "ApiTags::Sources",
        operation_id = "createWebhookSource"
    )]
    async fn create_source(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Provider, secret and limits of the source.
        body: StrictJson<CreateSource>,
    ) -> ApiResult<SourceCreated, { status::TENANT | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action("source.create");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::SourceCreate, &Resource::tenant(&tenant), &ctx)?;
        let b = body.0;
        let provider = Provider::from(b.provider);
        let cap = b.max_payload_bytes.unwrap_or(provider.default_cap());
        if cap == 0 || cap > provider.max_cap() {
            return Err(Problem::new(
                Code::InvalidPayloadCap,
                format!(
                    "max_payload_bytes must be 1 to {} for {}",
                    provider.max_cap(),
                    provider.as_str()
                ),
            )
            .into());
        }
        let generic = if provider == Provider::Generic {
            let header = b.header.clone().ok_or_else(|| {
                Problem::new(Code::InvalidSource, "generic sources need a header")
            })?;
            let encoding = b.encoding.map_or(SigEncoding::Hex, SigEncoding::from);
            let g = GenericScheme {
                header,
                encoding,
                prefix: b.prefix.clone().filter(|p| !p.is_empty()),
            };
            validate_generic(&g)?;
            Some(g)
        } else {
            if b.header.is_some() || b.encoding.is_some() || b.prefix.is_some() {
                return Err(Problem::new(
                    Code::InvalidSource,
                    "header, encoding and prefix apply to generic sources only",
                )
                .into());
            }
            None
        };
        let per_second = b
            .rate_per_second
            .unwrap_or(state.config.ratelimit.per_second);
        let burst = b.rate_burst.unwrap_or(state.config.ratelimit.burst);
        if !(1..=100_000).contains(&per_second) || !(1..=100_000).contains(&burst) {
            return Err(Problem::new(
                Code::InvalidRateLimit,
                "rate_per_second and rate_burst must be 1 to 100000",
            )
            .into());
        }
        let (secret, generated) = match b.secret {
            Some(s) => {
                validate_secret(provider, &s)?;
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
            return Err(
                Problem::new(Code::MlSourceExists, "this tenant already has an ml source").into(),
            );
        }
        ctx.mark_audited();
        let mut dto = SourceDto::from(&record);
        dto.secret = generated.then_some(secret);
        Ok(SourceCreated::Created(Json(dto)))
    }

    /// List webhook sources
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// viewer; appliance-admin in every tenant. Secret values are never listed.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources",
        method = "get",
        tag = "ApiTags::Sources",
        operation_id = "listWebhookSources"
    )]
    async fn list_sources(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<SourceList>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("source.list");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::SourceList, &Resource::tenant(&tenant), &ctx)?;
        let items = state
            .store
            .list_sources(&tenant)?
            .iter()
            .map(SourceDto::from)
            .collect();
        Ok(Json(SourceList { items }))
    }

    /// Get a webhook source
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin, operator,
    /// viewer; appliance-admin in every tenant.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id",
        method = "get",
        tag = "ApiTags::Sources",
        operation_id = "getWebhookSource"
    )]
    async fn get_source(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Source id (`src_…`).
        #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Json<SourceDto>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action("source.read");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::SourceRead,
            &Resource::new(ResourceType::Source, id.0.as_str(), &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let s = state
            .store
            .get_source(&id)?
            .filter(|s| s.tenant == tenant.0)
            .ok_or_else(|| Problem::not_found("webhook source"))?;
        Ok(Json(SourceDto::from(&s)))
    }

    /// Delete a webhook source
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant. Its
    /// events stay; deliveries to it answer 404 from now on.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id",
        method = "delete",
        tag = "ApiTags::Sources",
        operation_id = "deleteWebhookSource"
    )]
    async fn delete_source(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Source id (`src_…`).
        #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
        id: Path<String>,
    ) -> ApiResult<Deleted, { status::TENANT | status::S507 }> {
        let ctx = ctx(req);
        ctx.set_action("source.delete");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::SourceDelete,
            &Resource::new(ResourceType::Source, id.0.as_str(), &tenant),
            &ctx,
        )?;
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
            return Err(Problem::not_found("webhook source").into());
        }
        state.ratelimits.forget(&id);
        ctx.mark_audited();
        Ok(Deleted::NoContent)
    }

    /// Rotate a source secret
    ///
    /// Roles (default policies): tenant-admin, security-admin, operator; appliance-admin in every
    /// tenant. Adds a secret; older secrets stay valid for 7 days or until deleted.
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id/rotate",
        method = "post",
        tag = "ApiTags::Sources",
        operation_id = "rotateWebhookSourceSecret"
    )]
    async fn rotate(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Source id (`src_…`).
        #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// The new secret, or `{}` to generate one.
        body: StrictJson<RotateSecret>,
    ) -> ApiResult<RotatedResponse, { status::TENANT | status::BODY }> {
        let ctx = ctx(req);
        ctx.set_action("source.rotate");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::SourceRotate,
            &Resource::new(ResourceType::Source, id.0.as_str(), &tenant),
            &ctx,
        )?;
        ctx.set_resource(&id);
        let existing = state
            .store
            .get_source(&id)?
            .filter(|s| s.tenant == tenant.0)
            .ok_or_else(|| Problem::not_found("webhook source"))?;
        let requested = body.0.secret;
        let (secret, generated) = match requested {
            Some(s) => {
                validate_secret(existing.provider, &s)?;
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
            return Err(Problem::not_found("webhook source").into());
        };
        ctx.mark_audited();
        Ok(RotatedResponse::Created(Json(Rotated {
            n,
            secret: generated.then_some(secret),
            source: SourceDto::from(&source),
        })))
    }

    /// Delete a secret slot
    ///
    /// Roles (default policies): tenant-admin, security-admin; appliance-admin in every tenant. The
    /// last remaining secret cannot be deleted (409 `LAST_SECRET`).
    #[oai(
        path = "/api/tenants/:tenant/webhook-sources/:id/secrets/:n",
        method = "delete",
        tag = "ApiTags::Sources",
        operation_id = "deleteWebhookSourceSecret"
    )]
    async fn delete_secret(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Source id (`src_…`).
        #[oai(validator(pattern = "^src_[0-9a-f]{32}$"))]
        id: Path<String>,
        /// Secret slot number.
        #[oai(validator(minimum(value = "1")))]
        n: Path<u32>,
    ) -> ApiResult<Deleted, { status::TENANT | status::S409 | status::S507 }> {
        let ctx = ctx(req);
        ctx.set_action("source.secret.delete");
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::SourceSecretDelete,
            &Resource::new(ResourceType::Source, id.0.as_str(), &tenant),
            &ctx,
        )?;
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
            None | Some(Err(SlotError::Missing)) => Err(Problem::not_found("secret").into()),
            Some(Err(SlotError::Last)) => Err(Problem::new(
                Code::LastSecret,
                "a source must keep at least one secret; rotate first",
            )
            .into()),
            Some(Ok(())) => {
                ctx.mark_audited();
                Ok(Deleted::NoContent)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The published secret pattern and `validate_secret` agree on white space at either end.
    #[test]
    fn secret_pattern_matches_the_server_rule() {
        let spec: serde_json::Value = serde_json::from_str(&crate::api::openapi_json()).unwrap();
        for schema in ["CreateSource", "RotateSecret"] {
            let pattern = spec["components"]["schemas"][schema]["properties"]["secret"]["pattern"]
                .as_str()
                .unwrap();
            let re = regex::Regex::new(pattern).unwrap();
            for secret in [
                "0123456789abcdef",
                "0123456789 abcdef",
                " 0123456789abcdef",
                "0123456789abcdef\u{3000}",
                "\u{A0}0123456789abcdef",
                "0123456789abcdef\n",
                "Ω≈ç√∫˜µ≤≥÷åß∂ƒ©˙",
            ] {
                assert_eq!(
                    re.is_match(secret),
                    crate::ingest::validate_secret(crate::ingest::Provider::Github, secret).is_ok(),
                    "{schema}: {secret:?}"
                );
            }
        }
    }
}
