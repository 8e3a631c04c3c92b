//! OCSF 1.3.0 events (schema.ocsf.io) built from [`AuditRecord`]s.
//!
//! Class chosen per record:
//! - **Detection Finding** (`class_uid` 2004, category Findings 2): a webhook whose signature
//!   was `invalid`, and rate-limit penalties (`ratelimit.penalty`);
//! - **Authentication** (3002, category IAM 3): `auth.*` / `session.*` actions and any request
//!   answered 401 (a logon attempt with a bad credential);
//! - **API Activity** (6003, category Application Activity 6): every other API call; the
//!   activity follows the method (POST create, GET/HEAD read, PUT/PATCH update, DELETE delete).
//!
//! Every event carries `metadata.product` (name, vendor_name, version), `metadata.version`
//! (the OCSF version, [`OCSF_VERSION`]), `metadata.tenant_uid`, `metadata.uid`
//! (`<tenant>:<audit index>`), `time` in epoch milliseconds, `type_uid` = class × 100 +
//! activity, `severity_id`, `status_id` (1 success, 2 failure) and `status_code`.

use serde_json::{Map, Value, json};

use crate::audit::AuditRecord;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// The product named in `metadata.product`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// `Evidentia`.
    pub name: String,
    /// Vendor name (required by OCSF).
    pub vendor_name: String,
    /// Evidentia's version.
    pub version: String,
}

impl Default for Product {
    fn default() -> Self {
        Self {
            name: "Evidentia".into(),
            vendor_name: "Evidentia".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// OCSF event classes Evidentia emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcsfClass {
    /// 6003.
    ApiActivity,
    /// 3002.
    Authentication,
    /// 2004.
    DetectionFinding,
}

impl OcsfClass {
    /// `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            Self::ApiActivity => 6003,
            Self::Authentication => 3002,
            Self::DetectionFinding => 2004,
        }
    }

    fn names(self) -> (&'static str, u32, &'static str) {
        match self {
            Self::ApiActivity => ("API Activity", 6, "Application Activity"),
            Self::Authentication => ("Authentication", 3, "Identity & Access Management"),
            Self::DetectionFinding => ("Detection Finding", 2, "Findings"),
        }
    }
}

/// Why a record could not be mapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcsfError {
    /// `time` is not RFC 3339.
    #[error("audit record time {0:?} is not RFC 3339")]
    Time(String),
}

/// The class a record maps to (see the module docs).
pub fn class_for(record: &AuditRecord) -> OcsfClass {
    if record.signature.as_deref() == Some("invalid") || record.action == "ratelimit.penalty" {
        OcsfClass::DetectionFinding
    } else if record.action.starts_with("auth.")
        || record.action.starts_with("session.")
        || record.status == 401
    {
        OcsfClass::Authentication
    } else {
        OcsfClass::ApiActivity
    }
}

fn endpoint(peer: &str) -> Value {
    let host = peer
        .parse::<std::net::SocketAddr>()
        .map(|s| s.ip().to_string())
        .unwrap_or_else(|_| peer.to_string());
    if host.parse::<std::net::IpAddr>().is_ok() {
        json!({ "ip": host })
    } else {
        let name = if host.is_empty() {
            "unknown"
        } else {
            host.as_str()
        };
        json!({ "name": name })
    }
}

fn user(actor: &str) -> Value {
    let actor = if actor.is_empty() { "anonymous" } else { actor };
    // type_id: 0 Unknown for anonymous callers, 1 User otherwise.
    let type_id = u8::from(actor != "anonymous");
    json!({ "uid": actor, "name": actor, "type_id": type_id })
}

/// Maps one audit record to its OCSF event.
///
/// # Errors
/// [`OcsfError::Time`] when the record's time does not parse.
pub fn from_audit(record: &AuditRecord, product: &Product) -> Result<Value, OcsfError> {
    let t =
        time::OffsetDateTime::parse(&record.time, &time::format_description::well_known::Rfc3339)
            .map_err(|_| OcsfError::Time(record.time.clone()))?;
    let time_ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let class = class_for(record);
    let success = record.status < 400;
    let (activity_id, activity_name) = match class {
        OcsfClass::ApiActivity => match record.method.as_str() {
            "POST" => (1, "Create"),
            "GET" | "HEAD" => (2, "Read"),
            "PUT" | "PATCH" => (3, "Update"),
            "DELETE" => (4, "Delete"),
            _ => (99, "Other"),
        },
        OcsfClass::Authentication => {
            if record.action.ends_with("logout") || record.action == "session.delete" {
                (2, "Logoff")
            } else {
                (1, "Logon")
            }
        }
        OcsfClass::DetectionFinding => (1, "Create"),
    };
    let (class_name, category_uid, category_name) = class.names();
    let severity_id = match class {
        OcsfClass::DetectionFinding if record.signature.as_deref() == Some("invalid") => 3,
        OcsfClass::DetectionFinding => 2,
        _ if success => 1,
        _ => 2,
    };
    let mut ev = Map::new();
    let mut put = |k: &str, v: Value| {
        ev.insert(k.to_string(), v);
    };
    put("class_uid", json!(class.uid()));
    put("class_name", json!(class_name));
    put("category_uid", json!(category_uid));
    put("category_name", json!(category_name));
    put("activity_id", json!(activity_id));
    put("activity_name", json!(activity_name));
    put(
        "type_uid",
        json!(u64::from(class.uid()) * 100 + activity_id),
    );
    put("type_name", json!(format!("{class_name}: {activity_name}")));
    put("time", json!(time_ms));
    put("severity_id", json!(severity_id));
    // For findings status_id is the finding's state (1 New); for activities 1 success, 2 failure.
    let status_id = match class {
        OcsfClass::DetectionFinding => 1,
        _ if success => 1,
        _ => 2,
    };
    put("status_id", json!(status_id));
    put("status_code", json!(record.status.to_string()));
    if let Some(code) = &record.code {
        put("status_detail", json!(code));
    }
    if let Some(detail) = &record.detail {
        put("message", json!(detail));
    }
    if let Some(count) = record.count {
        put("count", json!(count));
    }
    put(
        "metadata",
        json!({
            "version": OCSF_VERSION,
            "product": {
                "name": product.name,
                "vendor_name": product.vendor_name,
                "version": product.version,
            },
            "tenant_uid": record.tenant,
            "uid": format!("{}:{}", record.tenant, record.index),
            "log_name": "audit",
            "original_time": record.time,
        }),
    );
    let request_uid = if record.request_id.is_empty() {
        "none"
    } else {
        record.request_id.as_str()
    };
    let api = json!({
        "operation": record.action,
        "request": { "uid": request_uid },
        "response": { "code": record.status },
    });
    match class {
        OcsfClass::ApiActivity => {
            put("src_endpoint", endpoint(&record.peer));
            put("actor", json!({ "user": user(&record.actor) }));
            put("api", api);
            put(
                "http_request",
                json!({ "http_method": record.method, "url": { "path": record.route } }),
            );
            if let Some(r) = &record.resource {
                put("resources", json!([{ "uid": r }]));
            }
        }
        OcsfClass::Authentication => {
            put("src_endpoint", endpoint(&record.peer));
            put("user", user(&record.actor));
            put("service", json!({ "name": "Evidentia API" }));
        }
        OcsfClass::DetectionFinding => {
            let title = if record.signature.as_deref() == Some("invalid") {
                "Webhook signature verification failed"
            } else {
                "Rate-limit penalty applied"
            };
            put(
                "finding_info",
                json!({
                    "uid": format!("{}:{}", record.tenant, record.index),
                    "title": title,
                    "types": [record.action],
                    "desc": record.detail.clone().unwrap_or_else(|| title.to_string()),
                }),
            );
            put(
                "evidences",
                json!([{
                    "actor": { "user": user(&record.actor) },
                    "api": api,
                    "src_endpoint": endpoint(&record.peer),
                }]),
            );
            if let Some(r) = &record.resource {
                put("resources", json!([{ "uid": r }]));
            }
        }
    }
    Ok(Value::Object(ev))
}
