//! Raw-bytes request and response bodies: webhook bodies read by the ingestion pipeline under its
//! own cap, and stored bytes (raw event bodies, artifacts, receipts, log entries) served back
//! exactly as stored.

use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{Body, IntoResponse, Request, RequestBody, Response};
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaRequest, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef,
    Registry,
};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions};

fn binary() -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        format: Some("binary"),
        ..MetaSchema::new("string")
    }))
}

fn any_json() -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        description: Some("Any JSON value"),
        ..MetaSchema::ANY
    }))
}

/// How a raw request body is documented in the OpenAPI document.
pub trait BodyKind: Send + Sync {
    /// The request body's description.
    const DESCRIPTION: &'static str;
    /// The media types it is documented with.
    fn media_types() -> Vec<MetaMediaType>;
    /// Registers schemas the media types refer to.
    fn register(_registry: &mut Registry) {}
}

/// A signed webhook body: any media type; JSON bodies are parsed only after verification.
pub struct WebhookBody;

impl BodyKind for WebhookBody {
    const DESCRIPTION: &'static str = "The webhook body exactly as the sender signed it. Any media \
        type is accepted; `application/json` (and `+json`) bodies are parsed after the signature \
        verified, others are stored opaque. ML webhooks must be JSON.";

    // Both media types are documented as bytes: the signature covers the exact bytes, so a
    // client must send them untouched (a JSON schema here makes generators re-serialise the
    // value, and makes openapi-python-client emit `isinstance(body, Any)`, a TypeError).
    fn media_types() -> Vec<MetaMediaType> {
        vec![
            MetaMediaType {
                content_type: "application/json",
                schema: binary(),
            },
            MetaMediaType {
                content_type: "application/octet-stream",
                schema: binary(),
            },
        ]
    }
}

/// Artifact bytes: the media types any artifact type accepts (which type takes which is in the
/// operation's description).
pub struct ArtifactBody;

impl BodyKind for ArtifactBody {
    const DESCRIPTION: &'static str = "The artifact's bytes, with the `Content-Type` its type \
        accepts (JSON types must parse, text must be UTF-8).";

    fn media_types() -> Vec<MetaMediaType> {
        let mut seen: Vec<&'static str> = Vec::new();
        for ty in crate::evidence::ArtifactType::ALL {
            for m in ty.allowed_media_types() {
                if !seen.contains(&m) {
                    seen.push(m);
                }
            }
        }
        seen.into_iter()
            .map(|content_type| MetaMediaType {
                content_type,
                schema: binary(),
            })
            .collect()
    }
}

/// A signed provenance receipt, parsed strictly from its exact bytes (they are canonicalised
/// with RFC 8785 to check the signature).
pub struct ReceiptBody;

impl BodyKind for ReceiptBody {
    const DESCRIPTION: &'static str = "A provenance receipt signed by the pipeline runner \
        (HS256 or EdDSA over the RFC 8785 bytes of the receipt without `signature`).";

    fn media_types() -> Vec<MetaMediaType> {
        vec![MetaMediaType {
            content_type: "application/json",
            schema: <super::evidence::ReceiptDoc as poem_openapi::types::Type>::schema_ref(),
        }]
    }

    fn register(registry: &mut Registry) {
        <super::evidence::ReceiptDoc as poem_openapi::types::Type>::register(registry);
    }
}

/// A request body taken as an unread byte stream, whatever its `Content-Type` (or none): the
/// handler reads it itself, counting bytes against its cap. `K` says how it is documented.
pub struct RawBody<K: BodyKind = WebhookBody>(pub Body, std::marker::PhantomData<K>);

impl<'a, K: BodyKind> ApiExtractor<'a> for RawBody<K> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        K::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(K::DESCRIPTION),
            content: K::media_types(),
            required: true,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(RawBody(
            body.take().unwrap_or_default(),
            std::marker::PhantomData,
        ))
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

impl RawResponse {
    /// A download of stored bytes: `application/octet-stream`, with the type they were received
    /// with in [`STORED_CONTENT_TYPE`], plus `headers`.
    pub fn download(
        stored_type: String,
        bytes: Vec<u8>,
        mut headers: Vec<(&'static str, String)>,
    ) -> Self {
        headers.push((STORED_CONTENT_TYPE, stored_type));
        Self {
            content_type: "application/octet-stream".into(),
            bytes,
            headers,
        }
    }
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

fn optional_header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required: false,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

/// The response header that carries the media type stored bytes were received with: downloads
/// are always `application/octet-stream` (with `nosniff` and `attachment`), so a browser never
/// renders stored content and a generated client always gets bytes.
pub const STORED_CONTENT_TYPE: &str = "Stored-Content-Type";

/// The 200 of a download: bytes, with the stored media type in [`STORED_CONTENT_TYPE`].
fn download_meta(description: &'static str, disposition: &str) -> MetaResponses {
    MetaResponses {
        responses: vec![MetaResponse {
            description,
            status: Some(200),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: "application/octet-stream",
                schema: binary(),
            }],
            headers: vec![
                optional_header(
                    STORED_CONTENT_TYPE,
                    "The `Content-Type` the bytes were received with",
                ),
                optional_header(
                    "Repr-Digest",
                    "`sha-256=:<base64>:` of the bytes (RFC 9530)",
                ),
                optional_header("Content-Disposition", disposition),
            ],
        }],
    }
}

impl ApiResponse for RawResponse {
    fn meta() -> MetaResponses {
        download_meta(
            "The body exactly as received, as `application/octet-stream`; the sender's \
             `Content-Type` is in `Stored-Content-Type` (and the event's `content_type`)",
            "`attachment`",
        )
    }

    fn register(_registry: &mut Registry) {}
}

/// An artifact's bytes exactly as stored (see [`STORED_CONTENT_TYPE`]).
pub struct ArtifactBytes(pub RawResponse);

impl IntoResponse for ArtifactBytes {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl ApiResponse for ArtifactBytes {
    fn meta() -> MetaResponses {
        download_meta(
            "The artifact's bytes exactly as stored, as `application/octet-stream`; the type it \
             was uploaded with is in `Stored-Content-Type`",
            "`attachment; filename=\"<artifact id>\"`",
        )
    }

    fn register(_registry: &mut Registry) {}
}

/// JSON bytes served exactly as stored (log entries, receipts): RFC 8785 canonical JSON.
pub struct JsonBytes(pub RawResponse);

impl IntoResponse for JsonBytes {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl ApiResponse for JsonBytes {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The JSON document exactly as stored (its bytes are what the \
                    transparency log's leaf hashes)",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json",
                    schema: any_json(),
                }],
                headers: vec![
                    optional_header(
                        "Repr-Digest",
                        "`sha-256=:<base64>:` of the bytes (RFC 9530)",
                    ),
                    optional_header(
                        "Leaf-Hash",
                        "Log entries: base64 SHA-256(0x00 ‖ entry), RFC 9162 §2.1.1",
                    ),
                ],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

/// A zip archive made by the appliance (audit exports).
pub struct ZipBytes(pub RawResponse);

impl IntoResponse for ZipBytes {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl ApiResponse for ZipBytes {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaMediaType {
                content_type: "application/octet-stream",
                schema: binary(),
            }]
            .into_iter()
            .map(|m| MetaResponse {
                description: "An `evidentia-audit-export/v1` zip: events.jsonl, proofs.jsonl, \
                    checkpoint.txt and manifest.json; check it with `evidentia verify \
                    audit-export FILE --key VKEY`",
                status: Some(200),
                status_range: None,
                content: vec![m],
                headers: vec![
                    optional_header(
                        "Repr-Digest",
                        "`sha-256=:<base64>:` of the bytes (RFC 9530)",
                    ),
                    optional_header("Content-Disposition", "`attachment; filename=\"…\"`"),
                ],
            })
            .collect(),
        }
    }

    fn register(_registry: &mut Registry) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_bodies_are_documented_as_bytes_for_every_media_type() {
        let spec: serde_json::Value = serde_json::from_str(&crate::api::openapi_json()).unwrap();
        for path in ["/ai/webhook", "/webhooks/{source}/events"] {
            let content = spec["paths"][path]["post"]["requestBody"]["content"]
                .as_object()
                .unwrap();
            assert_eq!(content.len(), 2, "{path}");
            for (media, entry) in content {
                assert_eq!(
                    entry["schema"],
                    serde_json::json!({"type": "string", "format": "binary"}),
                    "{path} {media}"
                );
            }
        }
    }
}
