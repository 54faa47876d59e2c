//! Stage 7: attribute writes to the authenticated principal, whatever the client claimed.
//!
//! MLflow records "who" from the request body: CreateRun's `user_id` and the run tag
//! `mlflow.user` (what the UI shows as the run's user), `created_by`/`updated_by` on AI-gateway
//! objects and issues, the `mlflow.user` key of a dataset's tags, a trace's `mlflow.user`
//! metadata and a human assessment's `source_id` (where the catalog's
//! [`TraceAuthor`] says). mlgate overwrites each of them with the principal's name, so the record
//! cannot be forged. Operations that do not name a user pass through untouched.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, header};
use mlgate_catalog::{
    Author, FieldName, ParamError, Params, Route, TRACE_USER_METADATA, TraceAuthor, field_spelling,
};
use serde_json::{Map, Value};

use crate::normalize::RequestBody;

/// The run tag MLflow (and its UI) reads as a run's user.
const MLFLOW_USER_TAG: &str = "mlflow.user";

/// The body of a request whose fields mlgate changed (attributed, pinned, narrowed), with its
/// `Content-Length`.
pub fn into_body(parts: &mut Parts, params: Params) -> RequestBody {
    with_body(parts, Bytes::from(params.into_json_body()))
}

/// The request's new body `bytes`, with its `Content-Length`.
pub fn with_body(parts: &mut Parts, bytes: Bytes) -> RequestBody {
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    RequestBody::Read(bytes)
}

/// Makes the request fields of `route` name `user` as their author. Returns whether anything
/// changed (the body must then be rebuilt from `params`). A tags or metadata field that is not
/// a list of `{key, value}` objects (or an object, where MLflow reads a map) is refused; other
/// fields of the wrong type are left alone, MLflow refuses those bodies itself.
pub fn attribute(route: &Route, params: &mut Params, user: &str) -> Result<bool, ParamError> {
    let by_route = match route.author {
        Some(author) => attribute_author(author, params, user)?,
        None => false,
    };
    let by_trace = match route.trace_writes.author {
        Some(author) => attribute_trace(author, params, user)?,
        None => false,
    };
    Ok(by_route || by_trace)
}

fn attribute_author(author: Author, params: &mut Params, user: &str) -> Result<bool, ParamError> {
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
        Author::RunTags => return Ok(params.set_tag_values("tags", MLFLOW_USER_TAG, user)),
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

/// An assessment source type that names a judge or code, not a person, in any form protobuf's
/// JSON parser reads (`AssessmentSource.SourceType`: LLM_JUDGE = 2, CODE = 3).
fn names_a_machine(source_type: Option<&Value>) -> bool {
    match source_type {
        Some(Value::String(name)) => matches!(name.as_str(), "LLM_JUDGE" | "CODE" | "2" | "3"),
        Some(Value::Number(number)) => matches!(number.as_u64(), Some(2 | 3)),
        _ => false,
    }
}

fn attribute_trace(
    author: TraceAuthor,
    params: &mut Params,
    user: &str,
) -> Result<bool, ParamError> {
    match author {
        TraceAuthor::MetadataList { path, always: true } => {
            params.upsert_tag(path, TRACE_USER_METADATA, user)?;
            Ok(true)
        }
        TraceAuthor::MetadataList {
            path,
            always: false,
        } => Ok(params.set_tag_values(path, TRACE_USER_METADATA, user)),
        TraceAuthor::MetadataMap(path) => {
            // Inside the objects that must exist, the metadata object is added when absent.
            let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
            let edited = params.edit_object_at(parent, |parent| {
                let key = field_spelling(parent, field)?;
                let metadata = parent
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if metadata.is_null() {
                    *metadata = Value::Object(Map::new());
                }
                let Value::Object(metadata) = metadata else {
                    return Err(ParamError::WrongType {
                        field: FieldName::new(path),
                        expected: "an object",
                    });
                };
                metadata.insert(TRACE_USER_METADATA.into(), Value::from(user));
                Ok(())
            })?;
            Ok(edited.is_some())
        }
        TraceAuthor::AssessmentSource(path) => {
            let edited = params.edit_object_at(path, |source| {
                if names_a_machine(source.get(&field_spelling(source, "source_type")?)) {
                    return Ok(false);
                }
                source.insert(field_spelling(source, "source_id")?, Value::from(user));
                Ok(true)
            })?;
            Ok(edited == Some(true))
        }
    }
}

#[cfg(test)]
mod tests {
    use mlgate_catalog::read_params;
    use serde_json::json;

    use super::*;

    /// [`attribute`] on a catalogued route of `operation`.
    fn attribute_operation(
        operation: &str,
        params: &mut Params,
        user: &str,
    ) -> Result<bool, ParamError> {
        let route = mlgate_catalog::routes()
            .iter()
            .find(|route| route.operation == operation)
            .expect("catalogued");
        attribute(route, params, user)
    }

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
        assert!(attribute_operation("CreateRun", &mut p, "alice").expect("ok"));
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
        assert!(attribute_operation("CreateRun", &mut p, "alice").expect("ok"));
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
        assert!(attribute_operation("CreateRun", &mut p, "alice").is_err());
    }

    #[test]
    fn set_tag_only_touches_the_user_tag() {
        let mut forged = params(json!({"run_id": "r", "key": "mlflow.user", "value": "mallory"}));
        assert!(attribute_operation("SetTag", &mut forged, "alice").expect("ok"));
        assert_eq!(body_of(forged)["value"], "alice");
        let mut other = params(json!({"run_id": "r", "key": "team", "value": "x"}));
        assert!(!attribute_operation("SetTag", &mut other, "alice").expect("ok"));
    }

    #[test]
    fn log_batch_user_tags_are_overwritten() {
        let mut p = params(json!({"run_id": "r", "tags": [
            {"key": "mlflow.user", "value": "mallory"}, {"key": "a", "value": "b"}]}));
        assert!(attribute_operation("LogBatch", &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p)["tags"],
            json!([{"key": "mlflow.user", "value": "alice"}, {"key": "a", "value": "b"}])
        );
        let mut metrics_only = params(json!({"run_id": "r", "metrics": []}));
        assert!(!attribute_operation("LogBatch", &mut metrics_only, "alice").expect("ok"));
    }

    #[test]
    fn dataset_tags_are_a_json_string() {
        let mut p =
            params(json!({"name": "d", "tags": "{\"mlflow.user\": \"mallory\", \"k\": \"v\"}"}));
        assert!(attribute_operation("CreateDataset", &mut p, "alice").expect("ok"));
        let body = body_of(p);
        let tags: Value =
            serde_json::from_str(body["tags"].as_str().expect("string")).expect("json");
        assert_eq!(tags, json!({"mlflow.user": "alice", "k": "v"}));
    }

    #[test]
    fn created_and_updated_by() {
        let mut p = params(json!({"name": "s", "createdBy": "mallory"}));
        assert!(attribute_operation("CreateGatewaySecret", &mut p, "alice").expect("ok"));
        assert_eq!(body_of(p), json!({"name": "s", "created_by": "alice"}));
        let mut p = params(json!({"secret_id": "s", "updated_by": "mallory"}));
        assert!(attribute_operation("UpdateGatewaySecret", &mut p, "alice").expect("ok"));
        assert_eq!(body_of(p)["updated_by"], "alice");
    }

    fn route(method: &str, path: &str) -> &'static Route {
        match mlgate_catalog::classify(method, path) {
            mlgate_catalog::Classified::Route { route, .. } => route,
            mlgate_catalog::Classified::Unknown => panic!("{method} {path} is no route"),
        }
    }

    #[test]
    fn a_trace_started_names_the_principal_as_its_user() {
        let v3 = route("POST", "/api/3.0/mlflow/traces");
        let mut p = params(json!({"trace": {"traceInfo": {
            "traceMetadata": {"mlflow.user": "mallory", "k": "v"}}}}));
        assert!(attribute(v3, &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p)["trace"]["traceInfo"]["traceMetadata"],
            json!({"mlflow.user": "alice", "k": "v"})
        );
        let mut p = params(json!({"trace": {"trace_info": {"trace_id": "tr-1"}}}));
        assert!(attribute(v3, &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p)["trace"]["trace_info"]["trace_metadata"],
            json!({"mlflow.user": "alice"})
        );
        let mut p = params(json!({"trace": {"trace_info": {"trace_metadata": "x"}}}));
        assert!(attribute(v3, &mut p, "alice").is_err());

        let v2 = route("POST", "/api/2.0/mlflow/traces");
        let mut p = params(json!({"experiment_id": "1", "requestMetadata": [
            {"key": "mlflow.user", "value": "mallory"}, {"key": "k", "value": "v"}]}));
        assert!(attribute(v2, &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p)["request_metadata"],
            json!([{"key": "k", "value": "v"}, {"key": "mlflow.user", "value": "alice"}])
        );
    }

    #[test]
    fn a_trace_ended_keeps_its_user_unless_the_request_names_one() {
        let end = route("PATCH", "/api/2.0/mlflow/traces/tr-1");
        let mut p = params(json!({"request_metadata": [{"key": "k", "value": "v"}]}));
        assert!(!attribute(end, &mut p, "alice").expect("ok"));
        let mut p = params(json!({"request_metadata": [{"key": "mlflow.user", "value": "eve"}]}));
        assert!(attribute(end, &mut p, "alice").expect("ok"));
        assert_eq!(
            body_of(p)["request_metadata"],
            json!([{"key": "mlflow.user", "value": "alice"}])
        );
    }

    #[test]
    fn a_human_assessment_is_the_principals() {
        let create = route("POST", "/api/3.0/mlflow/traces/tr-1/assessments");
        for human in [
            json!("HUMAN"),
            json!(1),
            json!("1"),
            json!("SOURCE_TYPE_UNSPECIFIED"),
        ] {
            let mut p = params(json!({"assessment": {"source": {
                "sourceType": human, "sourceId": "mallory"}}}));
            assert!(attribute(create, &mut p, "alice").expect("ok"));
            assert_eq!(
                body_of(p)["assessment"]["source"]["sourceId"],
                "alice",
                "{human}"
            );
        }
        for machine in [json!("LLM_JUDGE"), json!("CODE"), json!(2), json!("3")] {
            let mut p = params(json!({"assessment": {"source": {
                "source_type": machine, "source_id": "gpt"}}}));
            assert!(!attribute(create, &mut p, "alice").expect("ok"));
        }
        let mut both = params(json!({"assessment": {"source": {
            "source_type": "HUMAN", "source_id": "a", "sourceId": "b"}}}));
        assert!(attribute(create, &mut both, "alice").is_err());
        let mut none = params(json!({"assessment": {"assessment_name": "n"}}));
        assert!(!attribute(create, &mut none, "alice").expect("ok"));
    }

    #[test]
    fn other_operations_pass_untouched() {
        let mut p = params(json!({"run_id": "r", "user_id": "x"}));
        assert!(!attribute_operation("UpdateRun", &mut p, "alice").expect("ok"));
        assert_eq!(body_of(p)["user_id"], "x");
    }
}
