//! Answers to sensitive reads (the actions flagged `sensitive` in [`crate::authz::Action`]:
//! event bodies and bundles, artifacts, receipts and receipt bundles, audit pages and
//! exports, the compliance view) carry a signed access receipt
//! ([`crate::audit::access_receipt`]): the request's audit record is committed as a leaf of
//! the tenant's audit log *before* the bytes go out (503 `AUDIT_UNAVAILABLE` otherwise, and
//! nothing is sent), and the receipt, an EdDSA JWS in the [`HEADER`] header, binds the
//! principal, the action, the resource, the SHA-256 of what was sent, the decision and the
//! policy set to that leaf.
//!
//! What `res.sha256` covers: for byte answers (bodies, artifacts, receipts, bundles) the
//! response body exactly; for API views that also carry the receipt in their JSON `receipt`
//! member (audit pages, the compliance view) the RFC 8785 canonical form of the body without
//! that member.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use poem::Response;
use poem::http::HeaderValue;
use sha2::{Digest, Sha256};

use super::code::Code;
use super::problem::Problem;
use super::{AppState, ReqCtx};
use crate::audit::access_receipt::{
    AccessStatement, AuditClaim, HEADER, ResourceClaim, new_receipt_id,
};
use crate::authz::Action;

/// An allowed sensitive read, as the enforcement point saw it.
#[derive(Debug, Clone)]
pub struct SensitiveRead {
    /// The action decided.
    pub action: Action,
    /// Cedar entity type of the resource (`Event`, `Artifact`, `Run`, `Tenant`, …).
    pub kind: &'static str,
    /// Entity id.
    pub id: String,
    /// SHA-256 of the policy set that allowed it.
    pub policy_set: String,
}

/// Whether the answer to `action` is an API view that also carries the receipt in a JSON
/// `receipt` member (evidence documents are sent byte for byte and carry it in the header
/// only).
pub fn embeds_receipt(action: Action) -> bool {
    matches!(action, Action::AuditRead | Action::TenantComplianceRead)
}

fn unavailable() -> Response {
    Problem::new(
        Code::AuditUnavailable,
        "the access could not be recorded; nothing was sent",
    )
    .to_response()
}

/// Records the read and answers `resp` with its access receipt.
pub(super) async fn answer(
    state: &AppState,
    mut resp: Response,
    ctx: &ReqCtx,
    route: &str,
    read: SensitiveRead,
) -> Response {
    let Ok(body) = resp.take_body().into_vec().await else {
        return unavailable();
    };
    let mut view = if embeds_receipt(read.action) {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .filter(serde_json::Value::is_object)
    } else {
        None
    };
    let digest = match &view {
        Some(v) => match serde_json_canonicalizer::to_vec(v) {
            Ok(canonical) => hex::encode(Sha256::digest(&canonical)),
            Err(_) => return unavailable(),
        },
        None => hex::encode(Sha256::digest(&body)),
    };
    let now = state.now();
    let rid = new_receipt_id();
    ctx.set_access_receipt(&rid);
    let record = ctx.record(route, resp.status().as_u16(), None, now);
    let stored = match state.store.append_audit(vec![record]).await {
        Ok(mut records) if !records.is_empty() => records.remove(0),
        Ok(_) => return unavailable(),
        Err(e) => {
            tracing::error!(error = %e, "audit write for a sensitive read failed");
            return unavailable();
        }
    };
    let Ok(entry) = serde_json_canonicalizer::to_vec(&stored) else {
        return unavailable();
    };
    let statement = AccessStatement {
        rid,
        iat: now,
        tenant: stored.tenant.clone(),
        sub: stored.actor.clone(),
        act: read.action.id().to_string(),
        res: ResourceClaim {
            kind: read.kind.to_string(),
            id: read.id,
            sha256: digest,
        },
        dec: "allow".into(),
        policyset: read.policy_set,
        audit: AuditClaim {
            log: state.store.audit_origin(&stored.tenant),
            index: stored.index,
            leaf_hash: B64.encode(crate::tlog::merkle::leaf_hash(&entry)),
        },
    };
    let Ok(jws) = state.access_receipts.sign(statement) else {
        return unavailable();
    };
    let Ok(value) = HeaderValue::from_str(&jws) else {
        return unavailable();
    };
    resp.headers_mut().insert(HEADER, value);
    match view.as_mut().and_then(serde_json::Value::as_object_mut) {
        Some(obj) => {
            obj.insert("receipt".into(), serde_json::Value::String(jws));
            let Ok(bytes) = serde_json::to_vec(obj) else {
                return unavailable();
            };
            resp.headers_mut()
                .remove(poem::http::header::CONTENT_LENGTH);
            resp.set_body(bytes);
        }
        None => resp.set_body(body),
    }
    ctx.mark_audited();
    resp
}
