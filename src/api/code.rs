//! The one table of problem codes (RFC 9457 `code` extension member).
//!
//! Every problem the appliance answers carries a [`Code`] from this table; a [`Code`] fixes the
//! HTTP status and the `title` of the problem, so handlers choose a code and write only the
//! occurrence's `detail`. The enum is `Problem.code` in the OpenAPI document, and
//! `docs/errors.md` is generated from it (a test fails when that file drifts).

use poem::http::StatusCode;

macro_rules! codes {
    ($( $(#[doc = $doc:literal])+ $variant:ident = ($name:literal, $status:literal, $title:literal); )+) => {
        /// A stable, machine-readable problem code (UPPER_SNAKE on the wire).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, poem_openapi::Enum)]
        #[oai(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Code {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The wire name (`NOT_FOUND`).
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)+ }
            }

            /// The HTTP status answered with this code (a valid status by construction).
            pub const fn status_u16(self) -> u16 {
                match self { $(Code::$variant => $status,)+ }
            }

            /// The problem `title`: the same for every occurrence of the code (RFC 9457 §3.1.3).
            pub const fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)+ }
            }

            /// One sentence on when the code is answered (for `docs/errors.md`).
            pub fn description(self) -> String {
                match self {
                    $(Code::$variant => {
                        let lines: &[&str] = &[$($doc),+];
                        lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
                    })+
                }
            }
        }
    };
}

codes! {
    // ----- 400 ---------------------------------------------------------------------------
    /// The request is malformed in a way no more specific code describes (for example an
    /// unparsable `Content-Length`).
    BadRequest = ("BAD_REQUEST", 400, "Bad request");
    /// A path or query parameter is missing, of the wrong type, or outside its documented
    /// pattern or bounds; `detail` names the parameter as the client sent it.
    InvalidParameter = ("INVALID_PARAMETER", 400, "Invalid parameter");
    /// The JSON request body does not match its schema: a wrong type, a duplicate key, an unknown
    /// or missing field, or a value outside its enum; `detail` names the field.
    InvalidBody = ("INVALID_BODY", 400, "Invalid request body");
    /// The body is not valid JSON although it must be.
    InvalidJson = ("INVALID_JSON", 400, "Invalid JSON");
    /// A signature or timestamp header is missing, empty, repeated or unparsable.
    SignatureHeaderInvalid = ("SIGNATURE_HEADER_INVALID", 400, "Signature header invalid");
    /// `X-Tenant-Id` appears more than once.
    TenantHeaderInvalid = ("TENANT_HEADER_INVALID", 400, "Tenant header invalid");
    /// More than one `Authorization` header was sent.
    AuthorizationHeaderInvalid = ("AUTHORIZATION_HEADER_INVALID", 400, "Authorization header invalid");
    /// The request body stream failed while it was read.
    BodyReadError = ("BODY_READ_ERROR", 400, "Body read error");
    /// The request path is not canonical: `//`, a trailing `/`, a `.` or `..` segment, a
    /// backslash, or a percent-encoded `.`, `/`, `\` or NUL.
    InvalidPath = ("INVALID_PATH", 400, "Invalid path");
    /// A log index or tree size lies outside the log.
    InvalidRange = ("INVALID_RANGE", 400, "Invalid range");
    // ----- 401 ---------------------------------------------------------------------------
    /// No valid API token: missing, malformed, unknown, revoked or expired (one answer for all).
    Unauthenticated = ("UNAUTHENTICATED", 401, "Unauthenticated");
    /// The webhook signature does not verify over the raw body with any of the source's
    /// secrets (also answered when the tenant or source has no usable secret).
    SignatureInvalid = ("SIGNATURE_INVALID", 401, "Signature invalid");
    /// The signed timestamp is further from the appliance clock than the tolerance (±300 s).
    TimestampOutOfTolerance = ("TIMESTAMP_OUT_OF_TOLERANCE", 401, "Timestamp out of tolerance");
    /// The username or the password is wrong (one answer for unknown users, wrong passwords
    /// and disabled users; each costs the same argon2id computation).
    LoginFailed = ("LOGIN_FAILED", 401, "Login failed");
    // ----- 403 ---------------------------------------------------------------------------
    /// The policies in force (Cedar: the defaults and the tenant's own) do not permit the
    /// operation to the authenticated principal; `detail` names the action.
    Forbidden = ("FORBIDDEN", 403, "Forbidden");
    /// A request authenticated by the session cookie with an unsafe method carried no
    /// `X-CSRF-Token` header, or not the session's token.
    CsrfTokenInvalid = ("CSRF_TOKEN_INVALID", 403, "CSRF token invalid");
    /// The current password given to change it is wrong.
    CurrentPasswordInvalid = ("CURRENT_PASSWORD_INVALID", 403, "Current password invalid");
    /// The tenant is suspended: its ingestion and API are refused; appliance-admins may still
    /// read it and change its status.
    TenantSuspended = ("TENANT_SUSPENDED", 403, "Tenant suspended");
    /// The tenant was deleted under dual control: its content is destroyed, its API refused;
    /// appliance-admins may still read its logs and audit trail.
    TenantDeleted = ("TENANT_DELETED", 403, "Tenant deleted");
    /// A dual-control approval breaks a rule (self-approval, a duplicate approver, a token
    /// instead of a user, another tenant's user, a role the request no longer needs);
    /// `detail` names it.
    ApprovalRefused = ("APPROVAL_REFUSED", 403, "Approval refused");
    // ----- 404 ---------------------------------------------------------------------------
    /// No such resource — answered identically for resources of other tenants.
    NotFound = ("NOT_FOUND", 404, "Not found");
    // ----- 405 ---------------------------------------------------------------------------
    /// The path exists but not with this method; `Allow` lists the methods it has.
    MethodNotAllowed = ("METHOD_NOT_ALLOWED", 405, "Method not allowed");
    // ----- 408 ---------------------------------------------------------------------------
    /// The body did not arrive within `ingest.body_read_timeout_secs`.
    BodyReadTimeout = ("BODY_READ_TIMEOUT", 408, "Body read timeout");
    // ----- 409 ---------------------------------------------------------------------------
    /// A tenant with this id exists.
    TenantExists = ("TENANT_EXISTS", 409, "Tenant exists");
    /// The tenant already has its one `ml` source.
    MlSourceExists = ("ML_SOURCE_EXISTS", 409, "ML source exists");
    /// The secret is a source's last one; rotate before deleting it.
    LastSecret = ("LAST_SECRET", 409, "Last secret");
    /// The integration is disabled: a test send or redelivery would not go out (enable it
    /// with `PATCH … {"enabled": true}`).
    IntegrationDisabled = ("INTEGRATION_DISABLED", 409, "Integration disabled");
    /// The insight was already approved or rejected.
    InsightAlreadyDecided = ("INSIGHT_ALREADY_DECIDED", 409, "Insight already decided");
    /// The tenant already has a signing key with this `kid`.
    KidExists = ("KID_EXISTS", 409, "Key id exists");
    /// The key id names the appliance's own HS256 key (`default`) and cannot be registered.
    KidReserved = ("KID_RESERVED", 409, "Key id reserved");
    /// The token is the last working appliance-admin token: issue another before revoking it
    /// (or use `evidentia admin token` on the host).
    LastAdminToken = ("LAST_ADMIN_TOKEN", 409, "Last appliance-admin token");
    /// Another user (in any tenant) has this username.
    UsernameTaken = ("USERNAME_TAKEN", 409, "Username taken");
    /// The run already has an artifact with this id.
    ArtifactExists = ("ARTIFACT_EXISTS", 409, "Artifact exists");
    /// The export request does not have the approvals its rule needs yet.
    ExportNotApproved = ("EXPORT_NOT_APPROVED", 409, "Export not approved");
    /// A receipt with this `receiptId` is already recorded; `Location` points at it.
    ReceiptReplayed = ("RECEIPT_REPLAYED", 409, "Receipt replayed");
    // ----- 410 ---------------------------------------------------------------------------
    /// The raw body was purged at the end of its retention (or destroyed with its deleted
    /// tenant); the metadata and digest remain.
    BodyPurged = ("BODY_PURGED", 410, "Body purged");
    /// The artifact's bytes were purged at the end of their retention (or destroyed with
    /// their deleted tenant); the log leaf remains.
    ArtifactPurged = ("ARTIFACT_PURGED", 410, "Artifact purged");
    // ----- 413 ---------------------------------------------------------------------------
    /// The body is larger than the route's or source's cap (refused before or while reading).
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 413, "Payload too large");
    // ----- 415 ---------------------------------------------------------------------------
    /// The `Content-Type` is not one the operation accepts.
    UnsupportedMediaType = ("UNSUPPORTED_MEDIA_TYPE", 415, "Unsupported media type");
    /// A `Content-Encoding` other than identity (no decompression of unauthenticated data).
    UnsupportedContentEncoding = ("UNSUPPORTED_CONTENT_ENCODING", 415, "Unsupported content encoding");
    // ----- 422 ---------------------------------------------------------------------------
    /// A tenant's Cedar policy text does not parse, is too large, or fails strict validation
    /// against the schema; `diagnostics` lists Cedar's errors with their places in the text.
    PolicyInvalid = ("POLICY_INVALID", 422, "Policy invalid");
    /// A tenant id is not 2–63 characters of `a-z`, `0-9` and `-`.
    InvalidTenantId = ("INVALID_TENANT_ID", 422, "Invalid tenant id");
    /// A name or label is empty, too long, or contains control, bidi or invisible characters.
    InvalidName = ("INVALID_NAME", 422, "Invalid name");
    /// An unknown role, or no role, for a token.
    InvalidRole = ("INVALID_ROLE", 422, "Invalid role");
    /// A token lifetime outside 1–3650 days.
    InvalidExpiry = ("INVALID_EXPIRY", 422, "Invalid expiry");
    /// A username is not 3–64 of `a-z 0-9 . _ - @` starting with a letter or digit.
    InvalidUsername = ("INVALID_USERNAME", 422, "Invalid username");
    /// A new password is shorter than 12 characters or longer than 1024 bytes.
    InvalidPassword = ("INVALID_PASSWORD", 422, "Invalid password");
    /// `max_payload_bytes` is 0 or above the provider's maximum.
    InvalidPayloadCap = ("INVALID_PAYLOAD_CAP", 422, "Invalid payload cap");
    /// The source settings do not fit its provider (generic header, encoding, prefix).
    InvalidSource = ("INVALID_SOURCE", 422, "Invalid source");
    /// An integration's settings break a registration rule; the `reason` member names it
    /// (`url_scheme`, `url_blocked_address`, `url_userinfo`, `url_resolves_blocked`,
    /// `header_reserved`, `event_types`, `secret`, `hec_token`, …).
    IntegrationInvalid = ("INTEGRATION_INVALID", 422, "Invalid integration");
    /// Rate or burst outside 1–100000.
    InvalidRateLimit = ("INVALID_RATE_LIMIT", 422, "Invalid rate limit");
    /// A supplied webhook secret is too short, too long, padded with whitespace or malformed.
    InvalidSecret = ("INVALID_SECRET", 422, "Invalid secret");
    /// A reason (insight review, tenant status change) is empty, only white space or too long.
    InvalidReason = ("INVALID_REASON", 422, "Invalid reason");
    /// A tenant setting outside its bounds; `detail` names it and the bounds.
    InvalidSetting = ("INVALID_SETTING", 422, "Invalid setting");
    /// The verified JSON body does not have the shape its endpoint needs (ML payloads).
    SchemaInvalid = ("SCHEMA_INVALID", 422, "Schema invalid");
    /// A signing key id is not 1–128 characters of `A-Za-z0-9._:-`.
    InvalidKid = ("INVALID_KID", 422, "Invalid key id");
    /// The signing key material does not fit its algorithm.
    InvalidSigningKey = ("INVALID_SIGNING_KEY", 422, "Invalid signing key");
    /// A run id is not 1–200 characters of `A-Za-z0-9._:-`.
    InvalidRunId = ("INVALID_RUN_ID", 422, "Invalid run id");
    /// An artifact id is not 1–128 characters of `A-Za-z0-9._-`.
    InvalidArtifactId = ("INVALID_ARTIFACT_ID", 422, "Invalid artifact id");
    /// An unknown artifact type.
    InvalidArtifactType = ("INVALID_ARTIFACT_TYPE", 422, "Invalid artifact type");
    /// A retention outside 1 day to `evidence.max_retention_days`.
    InvalidRetention = ("INVALID_RETENTION", 422, "Invalid retention");
    /// The artifact bytes do not match their media type (JSON that does not parse, text that
    /// is not UTF-8).
    ArtifactContentInvalid = ("ARTIFACT_CONTENT_INVALID", 422, "Artifact content invalid");
    /// A receipt lists an artifact digest that contradicts the stored artifact.
    ArtifactDigestMismatch = ("ARTIFACT_DIGEST_MISMATCH", 422, "Artifact digest mismatch");
    /// The receipt is not a well-formed receipt object.
    ReceiptInvalid = ("RECEIPT_INVALID", 422, "Receipt invalid");
    /// The receipt is unsigned, or its signature does not verify (substitution).
    ReceiptSignatureInvalid = ("RECEIPT_SIGNATURE_INVALID", 422, "Receipt signature invalid");
    /// The receipt's signed `tenant` member names another tenant than the one it was submitted
    /// to (a receipt under the appliance-wide key counts only in the tenant it names).
    ReceiptTenantMismatch = ("RECEIPT_TENANT_MISMATCH", 422, "Receipt for another tenant");
    /// The receipt's `createdAt` lies outside the freshness window.
    ReceiptStale = ("RECEIPT_STALE", 422, "Receipt stale");
    // ----- 429 ---------------------------------------------------------------------------
    /// The quota is spent; `Retry-After`, `RateLimit` and `RateLimit-Policy` say when to retry.
    RateLimited = ("RATE_LIMITED", 429, "Too many requests");
    /// Audit-only: a source was put on the adaptive penalty after repeated signature failures.
    RateLimitPenalty = ("RATE_LIMIT_PENALTY", 429, "Rate limit penalty");
    /// Logins for this username or from this address are locked after 5 failures within
    /// 5 minutes, for 15 minutes; `Retry-After` says when to try again.
    LoginLocked = ("LOGIN_LOCKED", 429, "Login locked");
    // ----- 500 ---------------------------------------------------------------------------
    /// The database could not complete the operation (never caused by client input).
    StorageError = ("STORAGE_ERROR", 500, "Storage error");
    /// An unexpected internal failure (never caused by client input).
    Internal = ("INTERNAL", 500, "Internal error");
    /// A stored body, artifact or log entry no longer matches its digest: the damaged bytes
    /// are not served (run `evidentia check`; see the README's recovery section).
    DataCorrupt = ("DATA_CORRUPT", 500, "Stored data is damaged");
    // ----- 501 ---------------------------------------------------------------------------
    /// A `Transfer-Encoding` other than `chunked` (RFC 9112 §6.1): the body is not accepted.
    TransferEncodingUnsupported = ("TRANSFER_ENCODING_UNSUPPORTED", 501, "Transfer encoding unsupported");
    // ----- 503 ---------------------------------------------------------------------------
    /// The request's audit event could not be recorded, so the request was not answered.
    AuditUnavailable = ("AUDIT_UNAVAILABLE", 503, "Audit unavailable");
    /// The appliance is shutting down.
    ShuttingDown = ("SHUTTING_DOWN", 503, "Shutting down");
    /// Too many request bodies are buffered at once; retry shortly.
    BodyBudgetExhausted = ("BODY_BUDGET_EXHAUSTED", 503, "Body budget exhausted");
    /// Every password-hashing place is taken (logins are bounded in CPU and memory); retry
    /// after `Retry-After`.
    PasswordHashingBusy = ("PASSWORD_HASHING_BUSY", 503, "Password hashing busy");
    /// `/readyz`: the appliance cannot serve (disk floor reached, database unreadable).
    NotReady = ("NOT_READY", 503, "Not ready");
    /// The service cannot answer right now.
    Unavailable = ("UNAVAILABLE", 503, "Service unavailable");
    // ----- 507 ---------------------------------------------------------------------------
    /// The data volume is below its free-space floor: writes are refused, reads work.
    InsufficientStorage = ("INSUFFICIENT_STORAGE", 507, "Insufficient storage");
}

impl Code {
    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.status_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// `docs/errors.md`: the table of codes, generated (checked for drift by a test).
    pub fn markdown_table() -> String {
        let mut out = String::from(
            "# Problem codes\n\n\
             Every error answer of Evidentia is an RFC 9457 `application/problem+json` document\n\
             `{type, title, status, detail, code}`. `code` is one of the values below; it fixes the\n\
             status and the title. This file is generated from `src/api/code.rs`\n\
             (`cargo run -- errors > docs/errors.md`); a test fails when it drifts.\n\n\
             | code | status | when |\n|---|---|---|\n",
        );
        for c in Self::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status_u16(),
                c.description()
            ));
        }
        out
    }
}

/// Status bits of the documented error answers of an operation (see [`super::problem::Errors`]).
pub mod status {
    /// 400 Bad Request.
    pub const S400: u64 = 1 << 0;
    /// 401 Unauthorized.
    pub const S401: u64 = 1 << 1;
    /// 403 Forbidden.
    pub const S403: u64 = 1 << 2;
    /// 404 Not Found.
    pub const S404: u64 = 1 << 3;
    /// 408 Request Timeout.
    pub const S408: u64 = 1 << 4;
    /// 409 Conflict.
    pub const S409: u64 = 1 << 5;
    /// 410 Gone.
    pub const S410: u64 = 1 << 6;
    /// 413 Content Too Large.
    pub const S413: u64 = 1 << 7;
    /// 415 Unsupported Media Type.
    pub const S415: u64 = 1 << 8;
    /// 422 Unprocessable Content.
    pub const S422: u64 = 1 << 9;
    /// 429 Too Many Requests.
    pub const S429: u64 = 1 << 10;
    /// 500 Internal Server Error.
    pub const S500: u64 = 1 << 11;
    /// 503 Service Unavailable.
    pub const S503: u64 = 1 << 12;
    /// 507 Insufficient Storage.
    pub const S507: u64 = 1 << 13;
    /// 405 Method Not Allowed.
    pub const S405: u64 = 1 << 14;
    /// 501 Not Implemented.
    pub const S501: u64 = 1 << 15;

    /// Every bit with its status, in order.
    pub const ALL: [(u64, u16); 16] = [
        (S400, 400),
        (S401, 401),
        (S403, 403),
        (S404, 404),
        (S405, 405),
        (S408, 408),
        (S409, 409),
        (S410, 410),
        (S413, 413),
        (S415, 415),
        (S422, 422),
        (S429, 429),
        (S500, 500),
        (S501, 501),
        (S503, 503),
        (S507, 507),
    ];

    /// The bit of a status, if it has one.
    pub fn bit(status: u16) -> Option<u64> {
        ALL.iter().find(|(_, s)| *s == status).map(|(b, _)| *b)
    }

    /// Answers any operation can give: a bad parameter or header, storage failure, audit
    /// unavailable or shutting down.
    pub const BASE: u64 = S400 | S500 | S503;
    /// An authenticated operation: [`BASE`], 401, 403 (also a suspended tenant), 429 (its
    /// rate class quota).
    pub const AUTH: u64 = BASE | S401 | S403 | S429;
    /// An authenticated operation on a tenant-scoped resource: [`AUTH`] and 404.
    pub const TENANT: u64 = AUTH | S404;
    /// An operation with a JSON request body: body cap, media type, read timeout, strict
    /// parsing, validation, and the disk floor.
    pub const BODY: u64 = S408 | S413 | S415 | S422 | S507;
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn wire_names_are_the_enum_names_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert_eq!(
                c.to_json(),
                Some(serde_json::Value::String(c.as_str().into())),
                "{c:?}"
            );
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert!(
                status::bit(c.status_u16()).is_some(),
                "{c:?} status has no bit"
            );
            assert!(!c.description().is_empty());
        }
    }
}
