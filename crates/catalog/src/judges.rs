//! The AI-gateway endpoints a serialized judge calls.
//!
//! RegisterScorer, InvokeScorer and InvokeGenaiEvaluate carry scorers as MLflow serializes them:
//! JSON whose shape depends on the scorer's class (`instructions_judge_pydantic_data.model`,
//! `builtin_scorer_pydantic_data.model`, a memory-augmented judge's `base_judge`, an ensemble's
//! `scorers`, ...). When MLflow runs such a judge on the server, a model URI `gateway:/<name>`
//! calls the server's AI-gateway endpoint `<name>`, and `endpoints:/<name>` a deployments
//! endpoint of that name. Rather than follow each class's layout (a new class would slip
//! through), every string anywhere in the JSON is read as a model URI, and a string that is
//! itself JSON is read too: a name found where MLflow would not look is decided needlessly,
//! never missed.

use std::collections::BTreeSet;

use serde_json::Value;

/// The schemes of model URIs that call an endpoint by name (compared ignoring ASCII case, which
/// MLflow does not: a judge MLflow refuses is decided all the same).
const ENDPOINT_SCHEMES: [&str; 2] = ["gateway", "endpoints"];

/// How deep JSON held in strings is followed (a serialized scorer inside a serialized scorer);
/// deeper is refused rather than left unread.
const MAX_NESTED_JSON: usize = 4;

/// A serialized scorer that is not JSON, or holds JSON too deep to read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a serialized scorer cannot be read: {0}")]
pub struct JudgeError(String);

/// The endpoint names the judge(s) in `serialized` may call, sorted and without repeats.
pub fn judge_endpoints(serialized: &str) -> Result<Vec<String>, JudgeError> {
    let value: Value = serde_json::from_str(serialized).map_err(|e| JudgeError(e.to_string()))?;
    let mut names = BTreeSet::new();
    collect(&value, 0, &mut names)?;
    Ok(names.into_iter().collect())
}

/// The `name` a serialized scorer gives itself (how MLflow finds a registered version of it).
pub fn scorer_name(serialized: &str) -> Option<String> {
    let value: Value = serde_json::from_str(serialized).ok()?;
    value.get("name")?.as_str().map(str::to_owned)
}

fn collect(value: &Value, nested: usize, names: &mut BTreeSet<String>) -> Result<(), JudgeError> {
    match value {
        Value::String(text) => {
            if let Some(name) = endpoint_name(text) {
                names.insert(name.to_owned());
            }
            let inner = text.trim_start();
            if (inner.starts_with('{') || inner.starts_with('['))
                && let Ok(parsed) = serde_json::from_str::<Value>(inner)
            {
                if nested == MAX_NESTED_JSON {
                    return Err(JudgeError(format!(
                        "JSON held in strings more than {MAX_NESTED_JSON} deep"
                    )));
                }
                collect(&parsed, nested + 1, names)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                collect(item, nested, names)?;
            }
        }
        Value::Object(fields) => {
            for field in fields.values() {
                collect(field, nested, names)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// `<scheme>:/<name>` with an endpoint scheme: the name, as MLflow reads it (leading slashes
/// dropped).
fn endpoint_name(uri: &str) -> Option<&str> {
    let (scheme, path) = uri.split_once(":/")?;
    let scheme = scheme.trim();
    let name = path.trim_start_matches('/');
    (ENDPOINT_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        && !name.is_empty())
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(json: &str) -> Vec<String> {
        judge_endpoints(json).unwrap()
    }

    #[test]
    fn an_instructions_judge_names_its_gateway_endpoint() {
        let judge = r#"{"name": "quality", "instructions_judge_pydantic_data":
            {"instructions": "Is {{ outputs }} polite?", "model": "gateway:/chat-prod"}}"#;
        assert_eq!(endpoints(judge), ["chat-prod"]);
        assert_eq!(scorer_name(judge).as_deref(), Some("quality"));
    }

    #[test]
    fn every_scheme_spelling_and_place_is_found() {
        // Escaped slashes, another case, leading slashes, the deployments scheme, an ensemble's
        // sub-scorers, a memory-augmented judge's base judge, and a scorer serialized inside a
        // string: all found, each once.
        let judge = r#"{"ensemble_scorer_data": {"scorers": [
            {"builtin_scorer_pydantic_data": {"model": "gateway:\/a"}},
            {"memory_augmented_judge_data": {"base_judge": {"third_party_scorer_data": {"model": "GATEWAY:///b"}}}},
            {"x": "{\"inner\": {\"model\": \"endpoints:/c\"}}"},
            {"model": "gateway:/a"}
        ]}}"#;
        assert_eq!(endpoints(judge), ["a", "b", "c"]);
    }

    #[test]
    fn other_models_and_bad_uris_name_no_endpoint() {
        let judge = r#"{"a": "openai:/gpt-4.1-mini", "b": "gateway:/", "c": "gateway:x",
            "d": "my-gateway:/x", "e": 3, "f": null, "g": "{not json"}"#;
        assert_eq!(endpoints(judge), Vec::<String>::new());
        assert!(judge_endpoints("not json").is_err());
        assert_eq!(scorer_name(r#"{"name": 1}"#), None);
    }

    #[test]
    fn nested_json_is_followed_to_a_bound_and_refused_beyond() {
        let mut text =
            serde_json::to_string(&serde_json::json!({"model": "gateway:/deep"})).unwrap();
        for _ in 0..MAX_NESTED_JSON {
            text = serde_json::to_string(&serde_json::json!({ "s": text })).unwrap();
        }
        assert_eq!(endpoints(&text), ["deep"]);
        let deeper = serde_json::to_string(&serde_json::json!({ "s": text })).unwrap();
        assert!(judge_endpoints(&deeper).is_err());
    }
}
