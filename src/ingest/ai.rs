//! ML model-output payloads (`POST /ai/webhook`): job and insight extraction.
//!
//! Body `{job_id, kind, …}`; `kind` picks the insight list: `nlp_entities`→`results`,
//! `entity_resolution`→`links`, `link_prediction`→`predictions`, `community_detect`→
//! `communities`; any other kind makes the whole payload one insight. Insights are stored
//! `PENDING` for human review.

use std::collections::HashMap;

use serde_json::value::RawValue;

/// Maximum length of a `job_id`, bytes.
pub const MAX_JOB_ID: usize = 200;
/// Most insights one delivery may create (each becomes a stored record for review).
pub const MAX_INSIGHTS: usize = 1000;
/// Deepest nesting of arrays and objects accepted in one insight. Insights are stored as their
/// own JSON text and parsed again when read, and JSON readers (serde_json among them) stop at
/// 128 levels: a deeper insight would be stored and then unreadable.
pub const MAX_INSIGHT_DEPTH: usize = 64;

/// A parsed ML payload; each insight is the raw JSON text of its list item (or of the whole
/// body), borrowed from the verified body, so nothing is re-encoded or deep-copied.
#[derive(Debug, Clone)]
pub struct AiPayload<'a> {
    /// The job id.
    pub job_id: String,
    /// The kind.
    pub kind: String,
    /// One raw JSON value per insight.
    pub insights: Vec<&'a RawValue>,
}

/// Why a verified ML payload does not have the expected shape (422 `SCHEMA_INVALID`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The body is not a JSON object.
    #[error("body must be a JSON object")]
    NotObject,
    /// `job_id` is absent.
    #[error("job_id is required")]
    JobIdMissing,
    /// `job_id` is not a string.
    #[error("job_id must be a string")]
    JobIdType,
    /// `job_id` is empty or longer than [`MAX_JOB_ID`] bytes.
    #[error("job_id must be 1 to {MAX_JOB_ID} bytes")]
    JobIdLength,
    /// `kind` is absent.
    #[error("kind is required")]
    KindMissing,
    /// `kind` is not a string of 1–100 bytes.
    #[error("kind must be a non-empty string of at most 100 bytes")]
    KindInvalid,
    /// The kind's insight list is not an array.
    #[error("{0} must be an array")]
    ListType(&'static str),
    /// The kind's insight list has more than [`MAX_INSIGHTS`] items.
    #[error("{field} has {count} items; one delivery may carry at most {MAX_INSIGHTS}")]
    TooManyInsights {
        /// The list field.
        field: &'static str,
        /// How many items it has.
        count: usize,
    },
    /// An insight nests arrays and objects deeper than [`MAX_INSIGHT_DEPTH`].
    #[error("an insight nests arrays and objects more than {MAX_INSIGHT_DEPTH} levels deep")]
    TooDeep,
}

/// Whether the JSON text `s` nests arrays and objects deeper than `max` (strings skipped;
/// one pass, no allocation).
fn nests_deeper_than(s: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => {
                while let Some(c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The list field that holds the insights of `kind`, if the kind has one.
pub fn list_field(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "nlp_entities" => "results",
        "entity_resolution" => "links",
        "link_prediction" => "predictions",
        "community_detect" => "communities",
        _ => return None,
    })
}

fn string(raw: Option<&&RawValue>) -> Option<Option<String>> {
    raw.map(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// Extracts job and insights from a body already known to be valid JSON.
///
/// # Errors
/// [`SchemaError`] when the body is not an object, `job_id`/`kind` are missing, empty, not
/// strings or too long, or the kind's list is present but not an array or has more than
/// [`MAX_INSIGHTS`] items.
pub fn extract_raw(body: &RawValue) -> Result<AiPayload<'_>, SchemaError> {
    if !body.get().starts_with('{') {
        return Err(SchemaError::NotObject);
    }
    let obj: HashMap<String, &RawValue> =
        serde_json::from_str(body.get()).map_err(|_| SchemaError::NotObject)?;
    let job_id = match string(obj.get("job_id")) {
        Some(Some(s)) if !s.is_empty() && s.len() <= MAX_JOB_ID => s,
        Some(Some(_)) => return Err(SchemaError::JobIdLength),
        Some(None) => return Err(SchemaError::JobIdType),
        None => return Err(SchemaError::JobIdMissing),
    };
    let kind = match string(obj.get("kind")) {
        Some(Some(s)) if !s.is_empty() && s.len() <= 100 => s,
        Some(_) => return Err(SchemaError::KindInvalid),
        None => return Err(SchemaError::KindMissing),
    };
    let insights = match list_field(&kind) {
        Some(field) => match obj.get(field) {
            Some(raw) => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(raw.get()).map_err(|_| SchemaError::ListType(field))?;
                if items.len() > MAX_INSIGHTS {
                    return Err(SchemaError::TooManyInsights {
                        field,
                        count: items.len(),
                    });
                }
                items
            }
            None => Vec::new(),
        },
        None => vec![body],
    };
    if insights
        .iter()
        .any(|i| nests_deeper_than(i.get(), MAX_INSIGHT_DEPTH))
    {
        return Err(SchemaError::TooDeep);
    }
    Ok(AiPayload {
        job_id,
        kind,
        insights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract(v: &serde_json::Value) -> Result<Vec<String>, SchemaError> {
        let text = v.to_string();
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        extract_raw(raw).map(|p| p.insights.iter().map(|r| r.get().to_string()).collect())
    }

    #[test]
    fn kinds_pick_lists() {
        let p = extract(&json!({"job_id":"j","kind":"nlp_entities","results":[1,2]})).unwrap();
        assert_eq!(p, vec!["1", "2"]);
        let p = extract(&json!({"job_id":"j","kind":"link_prediction","predictions":[1]})).unwrap();
        assert_eq!(p.len(), 1);
        let p = extract(&json!({"job_id":"j","kind":"custom","x":1})).unwrap();
        let whole: serde_json::Value = serde_json::from_str(&p[0]).unwrap();
        assert_eq!(whole, json!({"job_id":"j","kind":"custom","x":1}));
        assert!(extract(&json!({"kind":"x"})).is_err());
        assert!(extract(&json!({"job_id":7,"kind":"x"})).is_err());
        assert!(
            extract(&json!({"job_id":"j","kind":"community_detect","communities":{}})).is_err()
        );
        assert!(extract(&json!([1])).is_err());
        let many: Vec<u32> = vec![0; MAX_INSIGHTS + 1];
        assert!(extract(&json!({"job_id":"j","kind":"nlp_entities","results":many})).is_err());
    }

    #[test]
    fn insights_nested_deeper_than_readers_accept_are_refused() {
        let body = |n: usize| {
            format!(
                r#"{{"job_id":"j","kind":"nlp_entities","results":[{{"x":{}1{}}}]}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let raw = |t: &str| extract_raw(serde_json::from_str::<&RawValue>(t).unwrap()).map(|_| ());
        // The insight object is one level; its array 63 more.
        assert!(raw(&body(63)).is_ok());
        assert!(matches!(raw(&body(64)), Err(SchemaError::TooDeep)));
        assert!(matches!(raw(&body(100_000)), Err(SchemaError::TooDeep)));
        // Brackets inside strings (escaped quotes included) do not count.
        let quoted = format!(
            r#"{{"job_id":"j","kind":"nlp_entities","results":[{{"x":"\"{}"}}]}}"#,
            "[{".repeat(200)
        );
        assert!(raw(&quoted).is_ok());
    }
}
