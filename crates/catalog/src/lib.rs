//! mlgate's knowledge of the MLflow tracking server it fronts (pinned: MLflow 3.17.2):
//!
//! * [`normalize_path`]: one canonical request path, refusing what MLflow could read two ways;
//! * [`routes`] / [`classify`]: every route the server serves, mapped to an action
//!   `mlflow:<Operation>`, an [`Access`] kind, a [`ResourceKind`] and where the resource
//!   identifiers are ([`IdField`]), with MLflow's own routing precedence;
//! * [`read_params`] / [`read_params_for`]: the request fields exactly as MLflow's handlers
//!   read them (query string vs JSON body, camelCase aliases, `run_uuid`, double-encoded
//!   JSON), refusing ambiguity;
//! * [`read_otlp`]: an OTLP trace export as the MLflow traces and trace tags its spans write;
//! * [`TraceWrites`]: where a route writes trace tags ([`RESERVED_TRACE_TAGS`] are refused)
//!   and names the author of a trace or an assessment;
//! * each [`Route`]'s facts: its [`Filtering`], [`Author`], [`Changes`], tag writes, whether
//!   the body is read ([`Route::reads_body`]) and what it [`Serves`];
//! * [`graphql_request`]: a `/graphql` body as the REST operations its root fields perform;
//! * [`execute_api_arn`]: the article's `execute-api` resource ARNs.
//!
//! Pure: no I/O, no clock, no environment.
//!
//! ```
//! use mlgate_catalog::{Classified, classify, normalize_path, read_params_for};
//!
//! let path = normalize_path("/api/2.0/mlflow/runs/%73earch")?;
//! assert_eq!(path, "/api/2.0/mlflow/runs/search");
//! let Classified::Route { route, .. } = classify("POST", &path) else { panic!("unknown route") };
//! assert_eq!(route.action(), "mlflow:SearchRuns");
//! let body = br#"{"experimentIds": ["1", "2"]}"#;
//! let params = read_params_for(route, "POST", None, Some("application/json"), body)?;
//! assert_eq!(params.try_str_values("experiment_ids")?, ["1", "2"]);
//! assert!(normalize_path("/api/2.0/mlflow/%2e%2e/runs/search").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions worth knowing (see `docs/action-catalog.md` for the full table):
//! * Only `GET /health` is public. `/version`, `/api/3.0/mlflow/server-info` and the UI's
//!   static files need an authenticated caller (any role may call them).
//! * `OPTIONS` is never classified (`Classified::Unknown`); `HEAD` is classified as the
//!   Flask `GET` route MLflow runs for it.
//! * MLflow's `--static-prefix` is not supported: the catalog is the unprefixed route set.

mod arn;
mod basic_auth;
mod catalog;
mod facts;
mod graphql;
mod judges;
mod otlp;
mod params;
mod path;
mod references;
mod traces;

pub use arn::execute_api_arn;
pub use basic_auth::{AUTH_ROUTES, AuthOperation, AuthRoute, Callers, classify_auth};
pub use catalog::{
    Access, Classified, GRAPHQL_MUTATION_OPERATION, IdField, IdSource, ParamStyle, ResourceKind,
    Route, Server, classify, routes,
};
pub use facts::{
    ARTIFACT_ROOT, Author, Change, Changes, Filtering, GET_EXPERIMENT, ListedItem, Listing,
    MODEL_VERSIONS, Serves,
};
pub use graphql::{
    GRAPHQL_QUERY_OPERATION, GraphQlError, GraphQlField, GraphQlRequest, GraphQlRewrite,
    MAX_ROOT_FIELDS, ModelVersionList, NEXT_PAGE_TOKEN, OperationKind, Paging, graphql_request,
    graphql_root_fields,
};
pub use judges::{JudgeError, judge_endpoints, scorer_name};
pub use otlp::{MAX_OTLP_SPANS, MAX_OTLP_TRACE_TAGS, MAX_OTLP_TRACES, read_otlp};
pub use params::{
    FieldName, ParamError, ParamSource, Params, field_spelling, read_params, read_params_for,
    set_json_field,
};
pub use path::{CharClass, MAX_PATH_LEN, MAX_SEGMENTS, PathError, normalize_path};
pub use references::{
    ReviewedField, contents_naming_resources, looks_like_a_reference, reviewed_fields,
};
pub use traces::{
    RESERVED_TRACE_TAGS, TRACE_USER_METADATA, TraceAuthor, TraceTagField, TraceWrites,
    reserved_trace_tag,
};
