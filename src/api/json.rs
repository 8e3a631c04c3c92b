//! Strict JSON request bodies for the management API.
//!
//! poem-openapi's own `Json<T>` coerces types (`{"id": 12345}` becomes the string `"12345"`),
//! lets the last of duplicate keys win and ignores unknown fields. [`StrictJson`] instead
//! deserializes with serde into `T` (`#[serde(deny_unknown_fields)]` on every input type):
//! a JSON value of the wrong type, a duplicate key anywhere in the document, an unknown or
//! missing field are each 400 `INVALID_BODY` naming the field by its JSON path. The schema in the
//! OpenAPI document is `T`'s.

use std::collections::HashSet;
use std::fmt;

use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::code::Code;
use super::problem::Problem;

/// A JSON request body parsed strictly into `T` (see the module doc).
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

/// Whether a `Content-Type` is JSON (`application/json` or `application/*+json`).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes`, which must be one JSON object, strictly into `T`.
///
/// # Errors
/// 400 `INVALID_JSON` when the bytes are not JSON, 400 `INVALID_BODY` for anything but an
/// object at the top (serde would read a struct from an array of its fields in order), a
/// duplicate key, a wrong type, a `null` member, an unknown or missing field (with the JSON path
/// of the offending member).
pub fn parse_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.is_empty() {
        return Err(Problem::new(
            Code::InvalidBody,
            "a JSON request body is required",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Err(e) = (DuplicateCheck {
        path: String::new(),
    })
    .deserialize(&mut de)
    {
        let code = if e.is_syntax() || e.is_eof() {
            Code::InvalidJson
        } else {
            Code::InvalidBody
        };
        return Err(Problem::new(code, format!("the body is not valid: {e}")));
    }
    if let Err(e) = de.end() {
        return Err(Problem::new(
            Code::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        ));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::new(
            Code::InvalidBody,
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        Problem::new(Code::InvalidBody, strip_position(&detail))
    })
}

/// serde_json appends " at line 1 column 9"; the path already says where.
fn strip_position(detail: &str) -> String {
    match detail.rfind(" at line ") {
        Some(i) => detail[..i].to_string(),
        None => detail.to_string(),
    }
}

/// Walks a JSON document and fails on the first object with a repeated key, naming its path.
struct DuplicateCheck {
    path: String,
}

impl<'de> DeserializeSeed<'de> for DuplicateCheck {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DuplicateCheck {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    /// `null` is refused everywhere in a request body: an optional member is left out
    /// ("optional means absent", DESIGN Conventions), and serde's `Option` would otherwise read
    /// `null` as absent for a member the schema types as a plain string or integer.
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom("the body must be a JSON object, not null"))
        } else {
            Err(E::custom(format!(
                "`{}` is null: leave an optional member out instead",
                self.path
            )))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(DuplicateCheck {
                path: format!("{}[{i}]", self.path),
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(format!("duplicate key `{path}`")));
            }
            map.next_value_seed(DuplicateCheck { path })?;
        }
        Ok(())
    }
}

impl<'a, T: Type + DeserializeOwned + Send> ApiExtractor<'a> for StrictJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(ct) if is_json(ct) => {}
            Some(ct) => {
                return Err(Problem::new(
                    Code::UnsupportedMediaType,
                    format!("the body must be application/json, not {ct}"),
                )
                .into());
            }
            None => {
                return Err(Problem::new(
                    Code::UnsupportedMediaType,
                    "the body must be sent with Content-Type: application/json",
                )
                .into());
            }
        }
        let bytes = match body.take() {
            Ok(b) => b.into_vec().await.map_err(|e| {
                Problem::new(
                    Code::BodyReadError,
                    format!("the request body could not be read: {e}"),
                )
            })?,
            Err(_) => Vec::new(),
        };
        Ok(StrictJson(parse_strict(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T1 {
        id: String,
        tags: Option<std::collections::BTreeMap<String, String>>,
    }

    #[test]
    fn strict_rules() {
        assert!(parse_strict::<T1>(br#"{"id":"a"}"#).is_ok());
        let e = parse_strict::<T1>(br#"{"id":12345}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidBody);
        assert!(e.detail.starts_with("id: invalid type"), "{}", e.detail);
        let e = parse_strict::<T1>(br#"{"id":"a","id":"b"}"#).unwrap_err();
        assert!(e.detail.contains("duplicate key `id`"), "{}", e.detail);
        let e = parse_strict::<T1>(br#"{"id":"a","tags":{"x":"1","x":"2"}}"#).unwrap_err();
        assert!(e.detail.contains("duplicate key `tags.x`"), "{}", e.detail);
        let e = parse_strict::<T1>(br#"{"id":"a","extra":1}"#).unwrap_err();
        assert!(e.detail.contains("unknown field `extra`"), "{}", e.detail);
        let e = parse_strict::<T1>(br#"{"id":"a","tags":null}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidBody);
        assert!(e.detail.contains("`tags` is null"), "{}", e.detail);
        let e = parse_strict::<T1>(br#"{"id":"a","tags":{"x":null}}"#).unwrap_err();
        assert!(e.detail.contains("`tags.x` is null"), "{}", e.detail);
        for not_an_object in [&br#"["a"]"#[..], b"[]", b" \n[\"a\", {}]", b"\"a\"", b"1"] {
            let e = parse_strict::<T1>(not_an_object).unwrap_err();
            assert_eq!(e.code, Code::InvalidBody);
            assert!(e.detail.contains("JSON object"), "{}", e.detail);
        }
        let e = parse_strict::<T1>(b"null").unwrap_err();
        assert_eq!(e.code, Code::InvalidBody);
        let e = parse_strict::<T1>(br#"{"id":"a"} x"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidJson);
        let e = parse_strict::<T1>(br#"{"id":"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidJson);
    }
}
