//! Stage 7: attribute writes to the authenticated principal, whatever the client claimed.
//!
//! MLflow records "who" from the request body: CreateRun's `user_id` and the run tag
//! `mlflow.user` (what the UI shows as the run's user), `created_by`/`updated_by` on AI-gateway
//! objects and issues, and the `mlflow.user` key of a dataset's tags. mlgate overwrites each of
//! them with the principal's name, so the record cannot be forged. Operations that do not name a
//! user pass through untouched.

use mlgate_catalog::{ParamError, Params};
use serde_json::{Map, Value};

/// The run tag MLflow (and its UI) reads as a run's user.
const MLFLOW_USER_TAG: &str = "mlflow.user";

/// Where an operation's request names its author.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Author {
    /// `user_id` and the `mlflow.user` entry of the `tags` list (runs being created).
    RunCreator,
    /// `key`/`value` of one run tag: an `mlflow.user` value is replaced (SetTag).
    RunTag,
    /// `mlflow.user` entries of the `tags` list (LogBatch).
    RunTags,
    /// `mlflow.user` inside the `tags` field, a JSON object sent as a string (CreateDataset).
    DatasetTags,
    /// A `created_by` field.
    CreatedBy,
    /// An `updated_by` field.
    UpdatedBy,
}

fn author(operation: &str) -> Option<Author> {
    Some(match operation {
        "CreateRun" | "CreatePromptlabRun" => Author::RunCreator,
        "SetTag" => Author::RunTag,
        "LogBatch" => Author::RunTags,
        "CreateDataset" => Author::DatasetTags,
        "CreateIssue"
        | "CreateGatewaySecret"
        | "CreateGatewayEndpoint"
        | "CreateGatewayModelDefinition"
        | "AttachModelToGatewayEndpoint"
        | "CreateGatewayEndpointBinding"
        | "CreateGatewayBudgetPolicy" => Author::CreatedBy,
        "UpdateGatewaySecret"
        | "UpdateGatewayEndpoint"
        | "UpdateGatewayModelDefinition"
        | "UpdateGatewayBudgetPolicy" => Author::UpdatedBy,
        _ => return None,
    })
}

/// Makes the request fields of `operation` name `user` as their author. Returns whether
/// anything changed (the body must then be rebuilt from `params`). A tags field that is not a
/// list of `{key, value}` objects is refused; other fields of the wrong type are left alone,
/// MLflow refuses those bodies itself.
pub fn attribute(operation: &str, params: &mut Params, user: &str) -> Result<bool, ParamError> {
    let Some(author) = author(operation) else {
        return Ok(false);
    };
    match author {
        Author::RunCreator => {
            params.set("user_id", Value::from(user));
            params.upsert_tag("tags", MLFLOW_USER_TAG, user)?;
        }
        Author::RunTag => {
            if params.get("key").and_then(Value::as_str) != Some(MLFLOW_USER_TAG) {
                return Ok(false);
            }
            params.set("value", Value::from(user));
        }
        Author::RunTags => {
            let Some(Value::Array(mut tags)) = params.get("tags").cloned() else {
                return Ok(false);
            };
            let forged: Vec<&mut Map<String, Value>> = tags
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .filter(|tag| tag.get("key").and_then(Value::as_str) == Some(MLFLOW_USER_TAG))
                .collect();
            if forged.is_empty() {
                return Ok(false);
            }
            for tag in forged {
                tag.insert("value".into(), Value::from(user));
            }
            params.set("tags", Value::Array(tags));
        }
        Author::DatasetTags => {
            let mut tags = match params.get("tags") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(tags)) => tags,
                    _ => return Ok(false),
                },
                Some(_) => return Ok(false),
            };
            tags.insert(MLFLOW_USER_TAG.into(), Value::from(user));
            params.set("tags", Value::String(Value::Object(tags).to_string()));
        }
        Author::CreatedBy => params.set("created_by", Value::from(user)),
        Author::UpdatedBy => params.set("updated_by", Value::from(user)),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use mlgate_catalog::read_params;
    use serde_json::json;

    use super::*;

    fn params(body: Value) -> Params {
        read_params(
            "POST",
            None,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
        .expect("readable body")
    }

    fn body_of(params: Params) -> Value {
        serde_json::from_slice(&params.into_json_body()).expect("json")
    }

    #[test]
    fn create_run_is_attributed_whatever_the_client_sent() {
        let mut p = params(json!({
            "experimentId": "1",
            "userId": "mallory",
            "tags": [
                {"key": "mlflow.user", "value": "mallory"},
                {"key": "mlflow.source.name", "value": "train.py"},
                {"key": "mlflow.user", "value": "eve"}
            ]
        }));
        assert!(attribute("CreateRun", &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p),
            json!({
                "experiment_id": "1",
                "user_id": "alice",
                "tags": [
                    {"key": "mlflow.source.name", "value": "train.py"},
                    {"key": "mlflow.user", "value": "alice"}
                ]
            })
        );
    }

    #[test]
    fn create_run_without_user_fields_gets_them() {
        let mut p = params(json!({"experiment_id": "1"}));
        assert!(attribute("CreateRun", &mut p, "alice").expect("ok"));
        let body = body_of(p);
        assert_eq!(body["user_id"], "alice");
        assert_eq!(
            body["tags"],
            json!([{"key": "mlflow.user", "value": "alice"}])
        );
    }

    #[test]
    fn malformed_tags_are_refused() {
        let mut p = params(json!({"experiment_id": "1", "tags": "mlflow.user=mallory"}));
        assert!(attribute("CreateRun", &mut p, "alice").is_err());
    }

    #[test]
    fn set_tag_only_touches_the_user_tag() {
        let mut forged = params(json!({"run_id": "r", "key": "mlflow.user", "value": "mallory"}));
        assert!(attribute("SetTag", &mut forged, "alice").expect("ok"));
        assert_eq!(body_of(forged)["value"], "alice");
        let mut other = params(json!({"run_id": "r", "key": "team", "value": "x"}));
        assert!(!attribute("SetTag", &mut other, "alice").expect("ok"));
    }

    #[test]
    fn log_batch_user_tags_are_overwritten() {
        let mut p = params(json!({"run_id": "r", "tags": [
            {"key": "mlflow.user", "value": "mallory"}, {"key": "a", "value": "b"}]}));
        assert!(attribute("LogBatch", &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p)["tags"],
            json!([{"key": "mlflow.user", "value": "alice"}, {"key": "a", "value": "b"}])
        );
        let mut metrics_only = params(json!({"run_id": "r", "metrics": []}));
        assert!(!attribute("LogBatch", &mut metrics_only, "alice").expect("ok"));
    }

    #[test]
    fn dataset_tags_are_a_json_string() {
        let mut p =
            params(json!({"name": "d", "tags": "{\"mlflow.user\": \"mallory\", \"k\": \"v\"}"}));
        assert!(attribute("CreateDataset", &mut p, "alice").expect("ok"));
        let body = body_of(p);
        let tags: Value =
            serde_json::from_str(body["tags"].as_str().expect("string")).expect("json");
        assert_eq!(tags, json!({"mlflow.user": "alice", "k": "v"}));
    }

    #[test]
    fn created_and_updated_by() {
        let mut p = params(json!({"name": "s", "createdBy": "mallory"}));
        assert!(attribute("CreateGatewaySecret", &mut p, "alice").expect("ok"));
        assert_eq!(body_of(p), json!({"name": "s", "created_by": "alice"}));
        let mut p = params(json!({"secret_id": "s", "updated_by": "mallory"}));
        assert!(attribute("UpdateGatewaySecret", &mut p, "alice").expect("ok"));
        assert_eq!(body_of(p)["updated_by"], "alice");
    }

    #[test]
    fn other_operations_pass_untouched() {
        let mut p = params(json!({"run_id": "r", "user_id": "x"}));
        assert!(!attribute("UpdateRun", &mut p, "alice").expect("ok"));
        assert_eq!(body_of(p)["user_id"], "x");
    }
}
