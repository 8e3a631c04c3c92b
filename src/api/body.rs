//! Reading request bodies under a cap: `Content-Length` above the cap → 413 before reading, any
//! `Content-Encoding` but identity → 415, then counted reading that stops with 413 the moment
//! the cap is passed, within the global buffered-body budget (503 when spent).

use bytes::Bytes;
use poem::http::{HeaderMap, Method, header};

use super::AppState;
use super::code::Code;
use super::problem::Problem;
use crate::ingest::body::{BudgetPermit, read_capped};

type ApiResult<T> = Result<T, Problem>;

/// Whether requests with `method` carry a body the management API reads (POST, PUT, PATCH).
pub fn may_carry_body(method: &Method) -> bool {
    method == Method::POST || method == Method::PUT || method == Method::PATCH
}

/// Cap of a management-API JSON body, bytes.
pub const API_BODY_CAP: u64 = 64 * 1024;

/// Cap of a `PUT /api/tenants/{tenant}/policies` body, bytes: the schema allows 10,000
/// characters of policy text, and JSON may spell each as a 12-byte escaped surrogate pair
/// (`\uD83D\uDE00`, RFC 8259 §7), so any schema-valid body fits (120,000 bytes plus the
/// member's name) and is judged by the schema and Cedar, never refused for its spelling.
pub const POLICY_BODY_CAP: u64 = 128 * 1024;

/// The cap of the management-API body of a request to `path`, bytes: [`POLICY_BODY_CAP`]
/// for tenant policies, [`API_BODY_CAP`] for everything else.
pub fn api_body_cap(path: &str) -> u64 {
    let policies = path
        .strip_prefix("/api/tenants/")
        .and_then(|rest| rest.strip_suffix("/policies"))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'));
    if policies {
        POLICY_BODY_CAP
    } else {
        API_BODY_CAP
    }
}

/// Reads a management-API request body under its route's cap ([`api_body_cap`]) and puts
/// the bytes back.
///
/// # Errors
/// 413, 415, 400, 408, 503 as [`precheck`] and [`read`].
pub async fn buffer_api_body(state: &AppState, req: &mut poem::Request) -> ApiResult<()> {
    let cap = api_body_cap(req.uri().path());
    let declared = precheck(req.headers(), cap)?;
    if declared == Some(0) {
        return Ok(());
    }
    let body = req.take_body();
    let (bytes, _permit) = read(state, body, cap, declared).await?;
    req.set_body(bytes);
    Ok(())
}

/// 413 `PAYLOAD_TOO_LARGE`.
pub fn too_large(cap: u64) -> Problem {
    Problem::new(
        Code::PayloadTooLarge,
        format!("the body exceeds the limit of {cap} bytes"),
    )
}

/// Checks the headers that can refuse a body before it is read; returns the declared length.
///
/// # Errors
/// 400 for an unparsable `Content-Length`, 413 above `cap`, 415 for a non-identity encoding.
pub fn precheck(headers: &HeaderMap, cap: u64) -> ApiResult<Option<u64>> {
    let declared = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| Problem::new(Code::BadRequest, "invalid Content-Length"))?,
        ),
        None => None,
    };
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    for v in headers.get_all(header::CONTENT_ENCODING).iter() {
        let identity = v
            .to_str()
            .map(|s| {
                s.split(',')
                    .all(|e| e.trim().eq_ignore_ascii_case("identity"))
            })
            .unwrap_or(false);
        if !identity {
            return Err(Problem::new(
                Code::UnsupportedContentEncoding,
                "compressed bodies are not accepted; send Content-Encoding: identity",
            ));
        }
    }
    Ok(declared)
}

/// Reads the body (after [`precheck`]) counting bytes against `cap`.
///
/// # Errors
/// 413 past the cap, 503 `BODY_BUDGET_EXHAUSTED`, 400 `BODY_READ_ERROR`.
pub async fn read(
    state: &AppState,
    body: poem::Body,
    cap: u64,
    declared: Option<u64>,
) -> ApiResult<(Bytes, BudgetPermit)> {
    let deadline = std::time::Duration::from_secs(state.config.ingest.body_read_timeout_secs);
    let reading = read_capped(body.into_bytes_stream(), cap, declared, &state.budget);
    let Ok(result) = tokio::time::timeout(deadline, reading).await else {
        return Err(Problem::new(
            Code::BodyReadTimeout,
            format!(
                "the body did not arrive within {} s",
                state.config.ingest.body_read_timeout_secs
            ),
        ));
    };
    Ok(result?)
}
