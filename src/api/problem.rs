//! RFC 9457 `application/problem+json` errors. Every problem carries a [`Code`] from the one
//! code table (`code.rs`), which fixes its status and title; an operation's error type
//! [`Errors`] lists the statuses it can answer, so the OpenAPI document shows them.

use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

pub use super::code::{Code, status};

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem document: RFC 9457 §3.1 members plus the stable `code` extension.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Problem", example)]
pub struct ProblemDetails {
    /// A URI reference identifying the problem type: `urn:evidentia:problem:<CODE>`.
    #[oai(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type; the same for every occurrence of a `code`.
    pub title: String,
    /// The HTTP status code of this answer.
    #[oai(validator(minimum(value = "400"), maximum(value = "599")))]
    pub status: u16,
    /// Explanation specific to this occurrence (never secrets, paths or stack traces).
    pub detail: String,
    /// Stable machine-readable code from the code table.
    pub code: Code,
}

impl poem_openapi::types::Example for ProblemDetails {
    fn example() -> Self {
        Problem::not_found("event").details()
    }
}

/// An error answer: a [`Code`], the occurrence's detail, and optional extra headers and members.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Code from the table; fixes the status and title.
    pub code: Code,
    /// Occurrence-specific explanation (never secrets, paths or stack traces).
    pub detail: String,
    /// Extra response headers (`Retry-After`, `RateLimit`, `Location`, …).
    pub headers: Vec<(&'static str, String)>,
    /// Extra members merged into the JSON body (RFC 9457 §3.2 extensions).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.code.status_u16(),
            self.code.as_str(),
            self.detail
        )
    }
}

impl std::error::Error for Problem {}

impl Problem {
    /// A problem with `code` and `detail`.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            headers: Vec::new(),
            extra: None,
        }
    }

    /// The HTTP status (from the code).
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds an extension member to the body.
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(name.to_string(), value);
        self
    }

    /// 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer`.
    pub fn unauthenticated() -> Self {
        Self::new(
            Code::Unauthenticated,
            "a valid API token is required (Authorization: Bearer evd_…)",
        )
        .with_header("WWW-Authenticate", "Bearer")
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, detail)
    }

    /// 404 `NOT_FOUND`: identical for missing resources and other tenants' resources.
    pub fn not_found(kind: &str) -> Self {
        Self::new(Code::NotFound, format!("no such {kind}"))
    }

    fn details(&self) -> ProblemDetails {
        ProblemDetails {
            type_: format!("urn:evidentia:problem:{}", self.code.as_str()),
            title: self.code.title().to_string(),
            status: self.code.status_u16(),
            detail: self.detail.clone(),
            code: self.code,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut value = self.details().to_json().unwrap_or_default();
        if let (Some(obj), Some(extra)) = (value.as_object_mut(), &self.extra) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        value
    }

    /// The HTTP response.
    pub fn to_response(&self) -> Response {
        let mut resp = Response::builder()
            .status(self.status())
            .content_type(PROBLEM_JSON)
            .body(self.body().to_string());
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                resp.headers_mut().insert(n, v);
            }
        }
        resp.set_data(ProblemCode(self.code));
        resp
    }
}

/// The `code` of a problem response, attached to it for the audit middleware.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub Code);

impl poem::error::ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

/// The error type of an operation: a [`Problem`] whose possible statuses are the bits of `M`
/// ([`status`]); each is documented as an `application/problem+json` response of the
/// operation. Any domain error that converts into a [`Problem`] converts into it, so handlers
/// use `?`.
#[derive(Debug)]
pub struct Errors<const M: u64>(pub Problem);

impl<const M: u64, E: Into<Problem>> From<E> for Errors<M> {
    fn from(e: E) -> Self {
        let problem = e.into();
        debug_assert!(
            status::bit(problem.code.status_u16()).is_some_and(|b| M & b != 0),
            "{} answered by an operation that does not document status {}",
            problem.code.as_str(),
            problem.code.status_u16()
        );
        Errors(problem)
    }
}

impl<const M: u64> std::fmt::Display for Errors<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<const M: u64> std::error::Error for Errors<M> {}

impl<const M: u64> IntoResponse for Errors<M> {
    fn into_response(self) -> Response {
        self.0.to_response()
    }
}

fn string_header(name: &'static str, description: &'static str) -> MetaHeader {
    MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

fn status_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request: a parameter, header or body does not match the specification",
        401 => "Not authenticated (API token or webhook signature)",
        403 => "Authenticated, but the principal lacks the role",
        404 => "No such resource in this tenant (the same answer as for other tenants' resources)",
        405 => "The path does not support this method (`Allow` lists those it does)",
        408 => "The body did not arrive in time",
        409 => "Conflicts with stored state",
        410 => "The content was purged at the end of its retention; metadata remains",
        413 => "The body exceeds its cap",
        415 => "Unsupported `Content-Type` or `Content-Encoding`",
        422 => "Well-formed but semantically invalid",
        429 => "Rate limited: retry after `Retry-After` seconds",
        500 => "Storage or internal failure (never caused by the client)",
        501 => "A transfer coding the appliance does not implement",
        503 => "Temporarily unavailable (audit could not be recorded, shutting down, busy)",
        507 => "The data volume is below its free-space floor: writes are refused",
        _ => "Error",
    }
}

impl<const M: u64> ApiResponse for Errors<M> {
    fn meta() -> MetaResponses {
        let responses = status::ALL
            .iter()
            .filter(|(bit, _)| M & bit != 0)
            .map(|(_, s)| {
                let mut headers = Vec::new();
                match s {
                    401 => headers.push(MetaHeader {
                        required: false,
                        ..string_header(
                            "WWW-Authenticate",
                            "`Bearer` on API token failures (RFC 6750)",
                        )
                    }),
                    405 => headers.push(string_header("Allow", "The methods the path supports")),
                    429 => {
                        headers.push(string_header(
                            "Retry-After",
                            "Seconds until a request may succeed (RFC 9110 §10.2.3)",
                        ));
                        headers.push(string_header(
                            "RateLimit-Policy",
                            "The quota policy (draft-ietf-httpapi-ratelimit-headers)",
                        ));
                        headers.push(string_header(
                            "RateLimit",
                            "Remaining quota and reset, seconds (draft-ietf-httpapi-ratelimit-headers)",
                        ));
                    }
                    409 => headers.push(MetaHeader {
                        required: false,
                        ..string_header(
                            "Location",
                            "For `RECEIPT_REPLAYED`: where the original receipt is",
                        )
                    }),
                    _ => {}
                }
                MetaResponse {
                    description: status_description(*s),
                    status: Some(*s),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: ProblemDetails::schema_ref(),
                    }],
                    headers,
                }
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ProblemDetails::register(registry);
    }
}

/// Result alias for handlers: `ApiResult<Json<T>, { status::TENANT }>`.
pub type ApiResult<T, const M: u64> = Result<T, Errors<M>>;

/// Maps any error that reached the edge (poem-openapi parse errors, unmatched routes, …) to a
/// problem. `template` is the matched route template (`/api/tenants/{tenant}/events/{id}`):
/// poem-openapi reports path parameters as `param0`, `param1`, …, which are renamed to the
/// names the client knows.
pub fn problem_from_error(err: &poem::Error, template: Option<&str>) -> Problem {
    if let Some(p) = err.downcast_ref::<Problem>() {
        return p.clone();
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        let name = path_param_name(e.name, template);
        return Problem::new(
            Code::InvalidParameter,
            format!("parameter `{name}`: {}", e.reason),
        );
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParsePathError>() {
        let name = path_param_name(e.name, template);
        return Problem::new(
            Code::InvalidParameter,
            format!("path parameter `{name}`: {}", e.reason),
        );
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        return Problem::new(Code::InvalidBody, e.reason.clone());
    }
    let status = err.status();
    let code = match status.as_u16() {
        400 => Code::BadRequest,
        401 => return Problem::unauthenticated(),
        403 => Code::Forbidden,
        404 => Code::NotFound,
        405 => Code::MethodNotAllowed,
        413 => Code::PayloadTooLarge,
        415 => Code::UnsupportedMediaType,
        422 => Code::InvalidBody,
        429 => Code::RateLimited,
        503 => Code::Unavailable,
        _ => Code::Internal,
    };
    let detail = match code {
        Code::Internal => "internal error".to_string(),
        Code::NotFound => "no such resource".to_string(),
        Code::MethodNotAllowed => "this path does not support the method".to_string(),
        Code::UnsupportedMediaType => err.to_string().replace(
            "`Content-Type` requested by the client",
            "`Content-Type` of the request",
        ),
        _ => err.to_string(),
    };
    Problem::new(code, detail)
}

/// `param2` → the third `{name}` of `template`; other names unchanged.
fn path_param_name(name: &str, template: Option<&str>) -> String {
    let index = name
        .strip_prefix("param")
        .and_then(|n| n.parse::<usize>().ok());
    match (index, template) {
        (Some(i), Some(t)) => t
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .nth(i)
            .map(str::to_string)
            .unwrap_or_else(|| name.to_string()),
        _ => name.to_string(),
    }
}

impl<const M: u64> From<Errors<M>> for poem::Error {
    fn from(e: Errors<M>) -> Self {
        poem::Error::from(e.0)
    }
}
