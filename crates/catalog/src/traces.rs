//! What a request writes into a trace beyond its identifiers: the trace tags it sets or
//! deletes, and where it names the trace's user or an assessment's author
//! ([`Route::trace_writes`](crate::Route::trace_writes)).

use serde_json::Value;

use crate::params::{ParamError, Params};

/// The trace tags MLflow treats as its own (`mlflow.utils.mlflow_tags.IMMUTABLE_TAGS`): where a
/// trace's data is read from and written to (`mlflow.artifactLocation`,
/// `mlflow.trace.spansLocation`, `mlflow.trace.archiveLocation`), the archival state, and the
/// user. MLflow's own client never writes them; its server only refuses some of them, and not on
/// every route, so a caller could point its own trace at another trace's files or at any server
/// directory and read them through `get-trace-artifact`. Checked against the installed MLflow.
pub const RESERVED_TRACE_TAGS: &[&str] = &[
    "mlflow.user",
    "mlflow.artifactLocation",
    "mlflow.trace.spansLocation",
    "mlflow.trace.archiveLocation",
    "mlflow.trace.archivalFailure",
];

/// The reserved tag a client may delete: clearing an archival failure lets MLflow retry.
const DELETABLE_RESERVED_TRACE_TAG: &str = "mlflow.trace.archivalFailure";

/// The trace metadata key MLflow (and its UI) reads as the user who logged a trace.
pub const TRACE_USER_METADATA: &str = "mlflow.user";

/// Where a route writes trace tags and names authors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceWrites {
    pub tags: &'static [TraceTagField],
    pub author: Option<TraceAuthor>,
}

impl TraceWrites {
    /// Routes that write no trace tag and name no author.
    pub const NONE: TraceWrites = TraceWrites {
        tags: &[],
        author: None,
    };
}

/// A request field that sets or deletes trace tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceTagField {
    /// The `key` field names the one tag set.
    SetKey,
    /// The `key` field names the one tag deleted.
    DeleteKey,
    /// A list of `{key, value}` objects at this path sets each `key`.
    List(&'static str),
    /// An object at this path sets each of its keys.
    Map(&'static str),
}

/// Where a request names who wrote a trace or an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceAuthor {
    /// A list of `{key, value}` trace metadata: its [`TRACE_USER_METADATA`] entry is the
    /// principal; added when `always`, otherwise only replaced where the request sets it.
    MetadataList { path: &'static str, always: bool },
    /// An object of trace metadata at this path (inside objects that must exist): its
    /// [`TRACE_USER_METADATA`] key is always the principal.
    MetadataMap(&'static str),
    /// An assessment's `source` object at this path: unless the source is a judge or code
    /// (`LLM_JUDGE`, `CODE`), its `source_id` is the principal.
    AssessmentSource(&'static str),
}

/// The first reserved tag ([`RESERVED_TRACE_TAGS`]) the request would set or delete. Tag fields
/// MLflow would not read as strings are refused.
pub fn reserved_trace_tag(
    writes: &TraceWrites,
    params: &Params,
) -> Result<Option<&'static str>, ParamError> {
    let mut reserved: Option<&'static str> = None;
    let mut check = |key: &str, deleting: bool| {
        if reserved.is_none() && !(deleting && key == DELETABLE_RESERVED_TRACE_TAG) {
            reserved = RESERVED_TRACE_TAGS.iter().copied().find(|tag| *tag == key);
        }
    };
    for field in writes.tags {
        match *field {
            TraceTagField::SetKey | TraceTagField::DeleteKey => {
                let deleting = *field == TraceTagField::DeleteKey;
                for key in params.try_str_values("key")? {
                    check(key, deleting);
                }
            }
            TraceTagField::List(path) => {
                for key in params.str_values_at(&format!("{path}[].key"))? {
                    check(&key, false);
                }
            }
            TraceTagField::Map(path) => {
                for tags in params.values_at(path)? {
                    let Ok(Value::Object(tags)) = serde_json::from_str(tags.get()) else {
                        return Err(ParamError::WrongType {
                            field: crate::FieldName::new(path),
                            expected: "an object of tags",
                        });
                    };
                    for key in tags.keys() {
                        check(key, false);
                    }
                }
            }
        }
    }
    Ok(reserved)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::params::ParamSource;
    use crate::{Classified, classify};

    fn params(body: Value) -> Params {
        Params::from_fields(
            body.as_object().cloned().expect("object"),
            ParamSource::Body,
        )
    }

    /// The trace writes of the route MLflow serves there.
    fn writes(method: &str, path: &str) -> &'static TraceWrites {
        match classify(method, path) {
            Classified::Route { route, .. } => route.trace_writes,
            Classified::Unknown => panic!("{method} {path} is no route"),
        }
    }

    const TAGS: &str = "/api/3.0/mlflow/traces/tr-1/tags";

    #[test]
    fn reserved_tags_are_found_in_every_shape() {
        let set = params(json!({"key": "mlflow.artifactLocation", "value": "file:///etc"}));
        assert_eq!(
            reserved_trace_tag(writes("PATCH", TAGS), &set),
            Ok(Some("mlflow.artifactLocation"))
        );
        let list = params(json!({"tags": [{"key": "a", "value": "b"},
                                          {"key": "mlflow.trace.spansLocation", "value": "x"}]}));
        assert_eq!(
            reserved_trace_tag(writes("POST", "/api/2.0/mlflow/traces"), &list),
            Ok(Some("mlflow.trace.spansLocation"))
        );
        let map = params(json!({"trace": {"traceInfo": {"tags": {
            "team": "a", "mlflow.trace.archiveLocation": "file:///"}}}}));
        assert_eq!(
            reserved_trace_tag(writes("POST", "/api/3.0/mlflow/traces"), &map),
            Ok(Some("mlflow.trace.archiveLocation"))
        );
        let ordinary = params(json!({"key": "team", "value": "a"}));
        assert_eq!(
            reserved_trace_tag(writes("PATCH", TAGS), &ordinary),
            Ok(None)
        );
        assert_eq!(reserved_trace_tag(&TraceWrites::NONE, &set), Ok(None));
    }

    #[test]
    fn only_the_archival_failure_may_be_deleted() {
        let failure = params(json!({"key": "mlflow.trace.archivalFailure"}));
        assert_eq!(
            reserved_trace_tag(writes("DELETE", TAGS), &failure),
            Ok(None)
        );
        assert_eq!(
            reserved_trace_tag(writes("PATCH", TAGS), &failure),
            Ok(Some("mlflow.trace.archivalFailure"))
        );
        let location = params(json!({"key": "mlflow.artifactLocation"}));
        assert_eq!(
            reserved_trace_tag(writes("DELETE", TAGS), &location),
            Ok(Some("mlflow.artifactLocation"))
        );
    }

    #[test]
    fn tags_mlflow_would_not_read_are_refused() {
        assert!(
            reserved_trace_tag(
                writes("POST", "/api/3.0/mlflow/traces"),
                &params(json!({"trace": {"trace_info": {"tags": []}}}))
            )
            .is_err()
        );
        assert!(
            reserved_trace_tag(
                writes("POST", "/api/2.0/mlflow/traces"),
                &params(json!({"tags": [{"key": 1}]}))
            )
            .is_err()
        );
        assert!(
            reserved_trace_tag(
                writes("PATCH", TAGS),
                &params(json!({"key": ["mlflow.user"]}))
            )
            .is_ok_and(|k| k.is_some())
        );
    }
}
