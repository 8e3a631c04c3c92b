//! ML model-output payloads (`POST /ai/webhook`): job and insight extraction.
//!
//! Body `{job_id, kind, …}`; `kind` picks the insight list: `nlp_entities`→`results`,
//! `entity_resolution`→`links`, `link_prediction`→`predictions`, `community_detect`→
//! `communities`; any other kind makes the whole payload one insight. Insights are stored
//! `PENDING` for human review.

use serde_json::Value;

/// Maximum length of a `job_id`, bytes.
pub const MAX_JOB_ID: usize = 200;
/// Most insights one delivery may create (each becomes a stored record for review).
pub const MAX_INSIGHTS: usize = 1000;

/// A parsed ML payload.
#[derive(Debug, Clone, PartialEq)]
pub struct AiPayload {
    /// The job id.
    pub job_id: String,
    /// The kind.
    pub kind: String,
    /// One JSON value per insight.
    pub insights: Vec<Value>,
}

/// Schema problems (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

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

/// Extracts job and insights from a parsed body.
///
/// # Errors
/// [`SchemaError`] when the body is not an object, `job_id`/`kind` are missing, empty, not
/// strings or too long, or the kind's list is present but not an array.
pub fn extract(body: &Value) -> Result<AiPayload, SchemaError> {
    let obj = body
        .as_object()
        .ok_or_else(|| SchemaError("body must be a JSON object".into()))?;
    let job_id = match obj.get("job_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_JOB_ID => s.clone(),
        Some(Value::String(_)) => {
            return Err(SchemaError(format!(
                "job_id must be 1 to {MAX_JOB_ID} bytes"
            )));
        }
        Some(_) => return Err(SchemaError("job_id must be a string".into())),
        None => return Err(SchemaError("job_id is required".into())),
    };
    let kind = match obj.get("kind") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 100 => s.clone(),
        Some(_) => return Err(SchemaError("kind must be a non-empty string".into())),
        None => return Err(SchemaError("kind is required".into())),
    };
    let insights = match list_field(&kind) {
        Some(field) => match obj.get(field) {
            Some(Value::Array(items)) if items.len() > MAX_INSIGHTS => {
                return Err(SchemaError(format!(
                    "{field} has {} items; one delivery may carry at most {MAX_INSIGHTS}",
                    items.len()
                )));
            }
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(SchemaError(format!("{field} must be an array"))),
            None => Vec::new(),
        },
        None => vec![body.clone()],
    };
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

    #[test]
    fn kinds_pick_lists() {
        let p = extract(&json!({"job_id":"j","kind":"nlp_entities","results":[1,2]})).unwrap();
        assert_eq!(p.insights.len(), 2);
        let p = extract(&json!({"job_id":"j","kind":"link_prediction","predictions":[1]})).unwrap();
        assert_eq!(p.insights.len(), 1);
        let p = extract(&json!({"job_id":"j","kind":"custom","x":1})).unwrap();
        assert_eq!(
            p.insights,
            vec![json!({"job_id":"j","kind":"custom","x":1})]
        );
        assert!(extract(&json!({"kind":"x"})).is_err());
        assert!(
            extract(&json!({"job_id":"j","kind":"community_detect","communities":{}})).is_err()
        );
        assert!(extract(&json!([1])).is_err());
        let many: Vec<u32> = vec![0; MAX_INSIGHTS + 1];
        assert!(extract(&json!({"job_id":"j","kind":"nlp_entities","results":many})).is_err());
    }
}
