//! RFC 9457 `application/problem+json` errors with a stable `code`, and the raw-bytes request and
//! response types used by ingestion and body reads.

use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{Body, IntoResponse, Request, RequestBody, Response};
use poem_openapi::registry::{
    MetaMediaType, MetaRequest, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object};

use crate::store::StoreError;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem document (RFC 9457 §3.1 members plus the stable `code` extension).
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "Problem")]
pub struct ProblemDetails {
    /// A URI reference identifying the problem type (`urn:evidentia:problem:<CODE>`).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub type_: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// Stable machine-readable code (`PAYLOAD_TOO_LARGE`, `SIGNATURE_INVALID`, …).
    pub code: String,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable UPPER_SNAKE code.
    pub code: &'static str,
    /// Occurrence-specific explanation (never secrets, paths or stack traces).
    pub detail: String,
    /// Extra response headers (`Retry-After`, `RateLimit`, …).
    pub headers: Vec<(&'static str, String)>,
    /// Extra members merged into the JSON body.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

impl Problem {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            headers: Vec::new(),
            extra: None,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401 `UNAUTHENTICATED`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "a valid API token is required (Authorization: Bearer evd_…)",
        )
        .with_header("WWW-Authenticate", "Bearer")
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// 404 `NOT_FOUND`: identical for missing resources and other tenants' resources.
    pub fn not_found(kind: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no such {kind}"),
        )
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422 with `code`.
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert(
            "type".into(),
            format!("urn:evidentia:problem:{}", self.code).into(),
        );
        obj.insert(
            "title".into(),
            self.status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string()
                .into(),
        );
        obj.insert("status".into(), self.status.as_u16().into());
        obj.insert("detail".into(), self.detail.clone().into());
        obj.insert("code".into(), self.code.into());
        if let Some(extra) = &self.extra {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        serde_json::Value::Object(obj)
    }

    /// The HTTP response.
    pub fn to_response(&self) -> Response {
        let mut resp = Response::builder()
            .status(self.status)
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
pub struct ProblemCode(pub &'static str);

impl poem::error::ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

impl ApiResponse for Problem {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "An RFC 9457 problem document with a stable `code`",
                status: None,
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: PROBLEM_JSON,
                    schema: ProblemDetails::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        ProblemDetails::register(registry);
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InsufficientStorage => Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "INSUFFICIENT_STORAGE",
                "the data volume is below its free-space floor; writes are refused",
            ),
            StoreError::Closed => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SHUTTING_DOWN",
                "the appliance is shutting down",
            ),
            other => {
                tracing::error!(error = %other, "storage failure");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "STORAGE_ERROR",
                    "the database could not complete the operation",
                )
            }
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, Problem>;

/// A request body taken as an unread byte stream, whatever its `Content-Type` (or none).
/// Ingestion reads it itself, counting bytes against the source's cap.
pub struct RawBody(pub Body);

impl<'a> ApiExtractor<'a> for RawBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The raw webhook body, exactly as signed"),
            content: vec![MetaMediaType {
                content_type: "*/*",
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                    format: Some("binary"),
                    ..MetaSchema::new("string")
                })),
            }],
            required: true,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(RawBody(body.take().unwrap_or_default()))
    }
}

/// A byte response with its own `Content-Type` and extra headers; always sent with
/// `X-Content-Type-Options: nosniff`.
pub struct RawResponse {
    /// Media type of the bytes.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl IntoResponse for RawResponse {
    fn into_response(self) -> Response {
        let mut resp = Response::builder()
            .status(StatusCode::OK)
            .header("X-Content-Type-Options", "nosniff")
            .body(self.bytes);
        let ct = HeaderValue::from_str(&self.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
        resp.headers_mut()
            .insert(poem::http::header::CONTENT_TYPE, ct);
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                resp.headers_mut().insert(n, v);
            }
        }
        resp
    }
}

impl ApiResponse for RawResponse {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The stored bytes, with their original Content-Type",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "*/*",
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        format: Some("binary"),
                        ..MetaSchema::new("string")
                    })),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

/// Maps any error that reached the edge (poem-openapi parse errors, 404 routes, …) to a problem.
pub fn problem_from_error(err: &poem::Error) -> Problem {
    if let Some(p) = err.downcast_ref::<Problem>() {
        return p.clone();
    }
    let status = err.status();
    let detail = if status.is_server_error() {
        "internal error".to_string()
    } else {
        err.to_string()
    };
    let code = match status.as_u16() {
        400 if err.is::<poem_openapi::error::ParseRequestPayloadError>() => "INVALID_BODY",
        400 if err.is::<poem_openapi::error::ParseParamError>() => "INVALID_PARAMETER",
        400 => "BAD_REQUEST",
        401 => "UNAUTHENTICATED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        422 => "UNPROCESSABLE",
        429 => "RATE_LIMITED",
        503 => "UNAVAILABLE",
        _ if status.is_server_error() => "INTERNAL",
        _ => "ERROR",
    };
    if status == StatusCode::UNAUTHORIZED {
        return Problem::unauthenticated();
    }
    Problem::new(status, code, detail)
}
