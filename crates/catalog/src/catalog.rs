//! The route catalog: every (method, path) the pinned MLflow server (3.17.2, default
//! `mlflow server`: uvicorn running `mlflow.server.fastapi_app:app`, no static prefix)
//! serves, what mlgate calls it (`mlflow:<Operation>`), and where its resource
//! identifiers are.
//!
//! The table below is data, not code: `tests/mlflow_coverage.rs` runs
//! `scripts/introspect_mlflow_routes.py` against the installed MLflow and fails when the
//! server serves a route the table lacks, when the table has a route the server no longer
//! serves, and when [`classify`] picks a different route (or different path parameters)
//! than MLflow's own routers would for a probe path.
//!
//! # Operation names
//! An operation is named after the MLflow REST method: the protobuf request message name,
//! with these deliberate exceptions (so one action covers one capability):
//! * the `…V3` trace RPCs share the action of their v2 twin (`StartTraceV3` → `StartTrace`,
//!   `SearchTracesV3` → `SearchTraces`, …);
//! * Amazon SageMaker's names where they differ: `GetLatestVersions` →
//!   `GetLatestModelVersions`, `GetModelVersionDownloadUri` →
//!   `GetDownloadURIForModelVersionArtifacts`, the UI → `AccessUI`;
//! * downloads of artifact *content* are `GetArtifact` and uploads `PutArtifact`, whichever
//!   route carries them (artifact proxy, `/get-artifact`, `/model-versions/get-artifact`,
//!   logged-model files, the UI upload);
//! * non-protobuf routes get descriptive names (`GraphQLQuery`, `InvokeGatewayEndpoint`,
//!   `ExportTraces` for OTLP, …).
//!
//! # Precedence
//! MLflow's FastAPI routes are tried first, in registration order (first full match wins);
//! everything else reaches the Flask app, whose Werkzeug router prefers, segment by
//! segment, a literal segment over a `{param}` over a `{param...}`. `HEAD` is only served by
//! Flask (FastAPI's routes do not accept it), with the `GET` view. `OPTIONS` is answered by
//! Flask without running a view and is not classified (the gateway decides).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::facts::{self, Author, Changes, Filtering, Serves};
use crate::path::decode_canonical;
use crate::traces::{TraceAuthor, TraceTagField as Tag, TraceWrites};

/// Whether an operation only reads (never changes tracking, registry or server state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

/// The kind of resource an operation acts on, i.e. what its authorization is anchored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// The server as a whole: server info, version, health, UI, telemetry, demo data,
    /// GraphQL (authorized per field later), provider discovery, jobs submission.
    Global,
    /// An experiment (`experiment_id`, `experiment_ids`, or an experiment name). Also the
    /// anchor of operations that *create* something inside an experiment (runs, traces,
    /// logged models, datasets, scorers, issues, review queues, label schemas, prompt
    /// optimization jobs) and of searches scoped by experiment.
    Experiment,
    /// A run (`run_id`, legacy `run_uuid`, `run_ids`).
    Run,
    /// A registered model (`name`). Prompts are registered models tagged
    /// `mlflow.prompt.is_prompt=true`, served by the same routes: the resolve stage tells them
    /// apart and decides them on ARNs of their own (`prompt/<name>[/version/<n>]`).
    RegisteredModel,
    /// A model version (`name` + `version`, or `name` + `alias`). Prompt versions likewise.
    ModelVersion,
    /// A logged model (MLflow 3, `model_id`).
    LoggedModel,
    /// A trace (`trace_id`, legacy `request_id`).
    Trace,
    /// An assessment on a trace (`trace_id` + `assessment_id`); only appears in id fields,
    /// routes on assessments are anchored on the [`ResourceKind::Trace`].
    Assessment,
    /// Where a model version's files come from (CreateModelVersion's `source`): a
    /// `models:/<name>/<version|stage|latest>`, `models:/<name>@<alias>` or `models:/<model_id>`
    /// URI, a `runs:/<run_id>/...` URI, an `mlflow-artifacts:` location, or a storage location
    /// inside a run's or logged model's artifact root. Only appears in id fields.
    ModelSource,
    /// A path in the proxied artifact store (`/mlflow-artifacts/...`):
    /// `[workspaces/<ws>/]<experiment_id>/<run_id>/artifacts/...`,
    /// `<experiment_id>/models/<model_id>/...`, `<experiment_id>/traces/<trace_id>/...`.
    Artifact,
    /// An evaluation dataset (`dataset_id`).
    Dataset,
    /// A scorer (LLM judge) registered in an experiment (`experiment_id` + `name`), or an
    /// online scoring config (`scorer_ids`).
    Scorer,
    /// A GenAI issue (`issue_id`).
    Issue,
    /// A label schema (`schema_id`).
    LabelSchema,
    /// A human review queue (`queue_id`).
    ReviewQueue,
    /// A prompt optimization job (`job_id`).
    PromptOptimizationJob,
    /// An asynchronous server job (`job_id`).
    Job,
    /// A model-registry webhook (`webhook_id`).
    Webhook,
    /// A workspace (`workspace_name`; only with `MLFLOW_ENABLE_WORKSPACES`).
    Workspace,
    /// An AI-gateway provider secret (`secret_id` / `secret_name`).
    GatewaySecret,
    /// An AI-gateway endpoint (`endpoint_id`, or its `name` — in invocations the path
    /// `endpoint_name` or the body field `model`).
    GatewayEndpoint,
    /// An AI-gateway model definition (`model_definition_id`).
    GatewayModelDefinition,
    /// An AI-gateway budget policy (`budget_policy_id`).
    GatewayBudgetPolicy,
    /// An AI-gateway guardrail (`guardrail_id`).
    GatewayGuardrail,
    /// An MCP server registry entry (`name` = `namespace/slug`, spans two path segments).
    McpServer,
    /// The MLflow Assistant (a server-side agent; `session_id`).
    Assistant,
}

/// Which of MLflow's two routers serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// A native FastAPI route (tried first, in registration order).
    FastApi,
    /// A route of the Flask app mounted at `/`.
    Flask,
}

/// How MLflow's handler reads the request fields (see [`crate::read_params_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamStyle {
    /// `handlers._get_request_message`: a protobuf message. `GET` with a non-empty query
    /// string → the query string (snake_case keys only); otherwise the JSON body (content
    /// type enforced for POST/PUT, double-encoded JSON decoded, lowerCamelCase accepted,
    /// both spellings of a field refused). `run_uuid` is an alias of `run_id`.
    Message,
    /// `handlers._get_validated_flask_request_json`: same source selection as `Message`,
    /// keys taken verbatim (no camelCase aliases).
    FlaskJson,
    /// `request.json` / `request.get_json()`: the JSON body only, keys verbatim.
    JsonBody,
    /// `request.args`: the query string only, whatever the method; `run_uuid` is an alias of
    /// `run_id`.
    Query,
    /// `GET` → the query string, other methods → the JSON body (`/gateway-proxy`).
    QueryIfGetElseJson,
    /// An OTLP/HTTP trace export (protobuf or JSON, possibly compressed), read with
    /// [`crate::read_otlp`]: its fields are the MLflow trace ids its spans name (`trace_ids`)
    /// and the trace tags their attributes set (`tags[].key`).
    Otlp,
    /// No request fields locate resources (path-only handlers, raw uploads, static files).
    None,
}

/// Where an identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdSource {
    /// A path parameter of the route pattern (authoritative; never overridden by the body).
    Path,
    /// A request field as MLflow reads it (query string or JSON body, see the route's
    /// [`ParamStyle`]). `a.b` descends into objects, `a[].b` into every element of array `a`.
    Params,
    /// A request header (case-insensitive name).
    Header,
    /// The AI-gateway endpoints the serialized judges in a request field (a JSON text, or a
    /// list of them) call ([`crate::judge_endpoints`]).
    Judges,
}

/// One resource identifier of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdField {
    /// Canonical snake_case field name, path parameter name, or header name.
    pub field: &'static str,
    pub source: IdSource,
    /// What the identifier designates.
    pub refers_to: ResourceKind,
    /// The field carries several identifiers (a repeated field or an `[]` path).
    pub many: bool,
    /// `None`: the route's own resource, decided with the route's action. `Some(operation)`:
    /// another resource the request names (a source it copies from, a resource it uses, an
    /// existing trace it would overwrite), decided as the read or write it implies,
    /// `mlflow:<operation>` on that resource, in addition to the route's action on its own
    /// resources.
    pub implies: Option<&'static str>,
}

/// One (method, path pattern) the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// Literal path, or with `{param}` (one non-empty piece of a segment) and `{param...}`
    /// (a non-empty run that may span segments) parameters.
    pub pattern: &'static str,
    /// Operation name; the action is `mlflow:<operation>`.
    pub operation: &'static str,
    pub access: Access,
    pub resource: ResourceKind,
    pub ids: &'static [IdField],
    /// No authentication needed (only `GET /health`).
    pub public: bool,
    pub server: Server,
    pub params: ParamStyle,
    /// The trace tags it writes and where it names authors.
    pub trace_writes: &'static TraceWrites,
    /// How a list-like operation's answer is kept to what the caller may read; `None` when
    /// it is not list-like.
    pub filtering: Option<Filtering>,
    /// Where the request names its author (the gateway writes the principal there).
    pub author: Option<Author>,
    /// What it changes of an experiment or a registered model.
    pub changes: Changes,
    /// It sets or deletes tags: its `key`, `tags[].key` and `tag_key` fields are the keys.
    pub writes_tags: bool,
    pub serves: Serves,
    /// MLflow selects a workspace for it (`X-MLflow-Workspace`); when not, the header is
    /// dropped and the request is decided in no workspace.
    pub selects_workspace: bool,
}

impl Route {
    /// Whether MLflow may read the request's body to find its fields (so the gateway must
    /// read it too); other bodies, such as artifact uploads, can stream through untouched.
    /// `method` is the request's (`HEAD` is served by a `GET` route).
    pub fn reads_body(&self, method: &str) -> bool {
        match self.params {
            ParamStyle::Message
            | ParamStyle::FlaskJson
            | ParamStyle::JsonBody
            | ParamStyle::Otlp => true,
            ParamStyle::QueryIfGetElseJson => method != "GET",
            ParamStyle::Query | ParamStyle::None => false,
        }
    }

    /// The IAM action, `mlflow:<operation>`.
    pub fn action(&self) -> String {
        format!("mlflow:{}", self.operation)
    }
}

/// The catalog, in MLflow's dispatch order (FastAPI routes first, then Flask).
pub fn routes() -> &'static [Route] {
    &index().routes
}

/// Result of [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// The route MLflow would dispatch to, with its path parameters percent-decoded (the
    /// values MLflow's handler receives).
    Route {
        route: &'static Route,
        path_params: Vec<(&'static str, String)>,
    },
    /// MLflow serves nothing for this method and path (or it is `OPTIONS`): deny.
    Unknown,
}

/// Maps a method and a path canonicalized by [`crate::normalize_path`] to the route MLflow
/// would dispatch it to, with exactly MLflow's precedence.
///
/// Cost: one hash lookup for literal paths, plus one lookup per path segment to find the
/// few templated routes sharing a literal prefix with the path.
pub fn classify(method: &str, normalized_path: &str) -> Classified {
    let idx = index();
    if method == "HEAD" {
        // FastAPI routes never accept HEAD (the coverage test checks it); Flask serves HEAD
        // with the GET view.
        return idx
            .flask
            .find(idx, Precedence::Werkzeug, "GET", normalized_path);
    }
    if method == "OPTIONS" {
        return Classified::Unknown;
    }
    match idx
        .fastapi
        .find(idx, Precedence::Registration, method, normalized_path)
    {
        Classified::Unknown => idx
            .flask
            .find(idx, Precedence::Werkzeug, method, normalized_path),
        hit => hit,
    }
}

// ---------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Tok {
    Lit(&'static str),
    One(&'static str),
    Many(&'static str),
}

fn compile(pattern: &'static str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').expect("unclosed '{' in route pattern");
                let inner = &rest[1..end];
                toks.push(match inner.strip_suffix("...") {
                    Some(name) => Tok::Many(name),
                    None => Tok::One(inner),
                });
                rest = &rest[end + 1..];
            }
            Some(n) => {
                toks.push(Tok::Lit(&rest[..n]));
                rest = &rest[n..];
            }
            None => {
                toks.push(Tok::Lit(rest));
                rest = "";
            }
        }
    }
    toks
}

/// Backtracking match with the semantics of the servers' regexes (`[^/]+` and `.+`,
/// greedy, first solution wins). Paths are canonical, hence ASCII.
fn match_toks(
    toks: &[Tok],
    path: &str,
    pos: usize,
    caps: &mut Vec<(&'static str, usize, usize)>,
) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return pos == path.len();
    };
    match *first {
        Tok::Lit(s) => path[pos..].starts_with(s) && match_toks(rest, path, pos + s.len(), caps),
        Tok::One(name) => {
            let max = path[pos..].find('/').map_or(path.len(), |n| pos + n);
            let mut end = max;
            while end > pos {
                caps.push((name, pos, end));
                if match_toks(rest, path, end, caps) {
                    return true;
                }
                caps.pop();
                end -= 1;
            }
            false
        }
        Tok::Many(name) => {
            if pos >= path.len() {
                return false;
            }
            // Candidate ends, longest first (greedy `.+`). When a literal follows, only the
            // (possibly overlapping) places where it occurs can end the parameter.
            let candidates: Vec<usize> = match rest.first() {
                None => vec![path.len()],
                Some(Tok::Lit(next)) => {
                    let mut ends = Vec::new();
                    let mut from = pos + 1;
                    while from <= path.len() {
                        match path[from..].find(next) {
                            Some(i) => {
                                ends.push(from + i);
                                from += i + 1;
                            }
                            None => break,
                        }
                    }
                    ends
                }
                Some(_) => (pos + 1..=path.len()).collect(),
            };
            for &end in candidates.iter().rev() {
                caps.push((name, pos, end));
                if match_toks(rest, path, end, caps) {
                    return true;
                }
                caps.pop();
            }
            false
        }
    }
}

struct Compiled {
    toks: Vec<Tok>,
    /// Werkzeug precedence: per segment 0 = literal, 1 = `{p}`, 2 = `{p...}`.
    weight: Vec<u8>,
}

#[derive(Default)]
struct ServerIndex {
    /// literal path → indexes of the routes with that exact pattern (any method).
    literal: HashMap<&'static str, Vec<usize>>,
    /// literal prefix (up to the `/` before the first parameter) → templated route indexes.
    templated: HashMap<&'static str, Vec<usize>>,
}

struct Index {
    routes: Vec<Route>,
    compiled: Vec<Option<Compiled>>,
    fastapi: ServerIndex,
    flask: ServerIndex,
}

/// How a router orders the routes that match a path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Precedence {
    /// Starlette: first registered route wins.
    Registration,
    /// Werkzeug: literal rules first, then per segment literal < `{p}` < `{p...}`.
    Werkzeug,
}

impl ServerIndex {
    fn add(&mut self, routes: &[Route], i: usize) {
        let r = &routes[i];
        match r.pattern.find('{') {
            None => self.literal.entry(r.pattern).or_default().push(i),
            Some(n) => {
                let prefix_end = r.pattern[..n].rfind('/').map_or(0, |s| s + 1);
                self.templated
                    .entry(&r.pattern[..prefix_end])
                    .or_default()
                    .push(i);
            }
        }
    }

    fn find(&self, idx: &'static Index, prec: Precedence, method: &str, path: &str) -> Classified {
        let routes = &idx.routes;
        // Identical (method, pattern) pairs may be registered twice (MLflow keeps the
        // first); the lowest index is the first registered.
        let literal = self
            .literal
            .get(path)
            .and_then(|l| l.iter().copied().find(|&i| routes[i].method == method));
        if let (Precedence::Werkzeug, Some(i)) = (prec, literal) {
            return Classified::Route {
                route: &routes[i],
                path_params: Vec::new(),
            };
        }
        let mut candidates: Vec<usize> = Vec::new();
        // Templates whose literal prefix is a prefix of the path: "/", "/a/", "/a/b/", ...
        for (n, _) in path.match_indices('/') {
            if let Some(list) = self.templated.get(&path[..=n]) {
                candidates.extend(list.iter().copied().filter(|&i| routes[i].method == method));
            }
        }
        match prec {
            Precedence::Registration => {
                candidates.extend(literal);
                candidates.sort_unstable();
            }
            Precedence::Werkzeug => candidates.sort_by(|&a, &b| {
                let wa = idx.compiled[a].as_ref().map(|c| &c.weight);
                let wb = idx.compiled[b].as_ref().map(|c| &c.weight);
                wa.cmp(&wb).then(a.cmp(&b))
            }),
        }
        for i in candidates {
            let route = &routes[i];
            let Some(c) = &idx.compiled[i] else {
                // the literal candidate (Registration precedence)
                return Classified::Route {
                    route,
                    path_params: Vec::new(),
                };
            };
            let mut caps = Vec::new();
            if match_toks(&c.toks, path, 0, &mut caps) {
                return Classified::Route {
                    route,
                    path_params: caps
                        .into_iter()
                        .map(|(name, a, b)| (name, decode_canonical(&path[a..b])))
                        .collect(),
                };
            }
        }
        Classified::Unknown
    }
}

fn weight(pattern: &str) -> Vec<u8> {
    pattern
        .split('/')
        .map(|seg| {
            if seg.contains("...}") {
                2
            } else if seg.contains('{') {
                1
            } else {
                0
            }
        })
        .collect()
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut routes = Vec::new();
        for spec in FASTAPI.iter().chain(FLASK.iter()) {
            for mount in spec.mounts {
                let pattern: &'static str = if mount.is_empty() {
                    spec.path
                } else {
                    Box::leak(format!("{mount}{}", spec.path).into_boxed_str())
                };
                routes.push(Route {
                    method: spec.method,
                    pattern,
                    operation: spec.operation,
                    access: spec.access,
                    resource: spec.resource,
                    ids: spec.ids,
                    public: spec.public,
                    server: spec.server,
                    params: spec.params,
                    trace_writes: spec.trace_writes,
                    filtering: facts::filtering(spec.operation),
                    author: facts::author(spec.operation),
                    changes: facts::changes(spec.operation),
                    writes_tags: facts::writes_tags(spec.operation),
                    serves: facts::serves(spec.operation),
                    selects_workspace: facts::selects_workspace(spec.operation),
                });
            }
        }
        let compiled = routes
            .iter()
            .map(|r| {
                r.pattern.contains('{').then(|| Compiled {
                    toks: compile(r.pattern),
                    weight: weight(r.pattern),
                })
            })
            .collect();
        let mut fastapi = ServerIndex::default();
        let mut flask = ServerIndex::default();
        for (i, r) in routes.iter().enumerate() {
            match r.server {
                Server::FastApi => fastapi.add(&routes, i),
                Server::Flask => flask.add(&routes, i),
            }
        }
        Index {
            routes,
            compiled,
            fastapi,
            flask,
        }
    })
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

struct Spec {
    mounts: &'static [&'static str],
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    access: Access,
    resource: ResourceKind,
    params: ParamStyle,
    ids: &'static [IdField],
    server: Server,
    public: bool,
    trace_writes: &'static TraceWrites,
}

/// `/api/2.0` and `/ajax-api/2.0` (every protobuf route of `since` 2.x).
const P2: &[&str] = &["/api/2.0", "/ajax-api/2.0"];
/// `/api/3.0` and `/ajax-api/3.0`.
const P3: &[&str] = &["/api/3.0", "/ajax-api/3.0"];
/// FastAPI twins are registered `/ajax-api` first.
const A3P3: &[&str] = &["/ajax-api/3.0", "/api/3.0"];
const A2P2: &[&str] = &["/ajax-api/2.0", "/api/2.0"];
const AJAX2: &[&str] = &["/ajax-api/2.0"];
const AJAX3: &[&str] = &["/ajax-api/3.0"];
const ROOT: &[&str] = &[""];

use Access::{Read as R, Write as W};
use ParamStyle as S;
use ResourceKind as K;

const fn p(field: &'static str, refers_to: ResourceKind) -> IdField {
    IdField {
        field,
        source: IdSource::Params,
        refers_to,
        many: false,
        implies: None,
    }
}
const fn pm(field: &'static str, refers_to: ResourceKind) -> IdField {
    IdField {
        field,
        source: IdSource::Params,
        refers_to,
        many: true,
        implies: None,
    }
}
const fn path(field: &'static str, refers_to: ResourceKind) -> IdField {
    IdField {
        field,
        source: IdSource::Path,
        refers_to,
        many: false,
        implies: None,
    }
}
/// A request field naming another resource, decided as `operation` on it (see [`IdField::implies`]).
const fn reads(field: &'static str, refers_to: ResourceKind, operation: &'static str) -> IdField {
    IdField {
        field,
        source: IdSource::Params,
        refers_to,
        many: false,
        implies: Some(operation),
    }
}
/// Like [`reads`], for a field with several identifiers.
const fn reads_each(
    field: &'static str,
    refers_to: ResourceKind,
    operation: &'static str,
) -> IdField {
    IdField {
        many: true,
        ..reads(field, refers_to, operation)
    }
}
/// The endpoints the judges serialized in `field` call, each decided as invoking it.
const fn judges(field: &'static str) -> IdField {
    IdField {
        field,
        source: IdSource::Judges,
        refers_to: ResourceKind::GatewayEndpoint,
        many: true,
        implies: Some("InvokeGatewayEndpoint"),
    }
}
const fn header(field: &'static str, refers_to: ResourceKind) -> IdField {
    IdField {
        field,
        source: IdSource::Header,
        refers_to,
        many: false,
        implies: None,
    }
}

/// A spec's trace writes: the ones given, else none.
macro_rules! trace_writes {
    () => {
        &TraceWrites::NONE
    };
    ($writes:expr) => {
        $writes
    };
}
macro_rules! spec {
    ($server:ident, $mounts:expr, $method:literal, $path:literal, $op:literal, $acc:expr, $res:expr, $style:expr, [$($id:expr),* $(,)?] $(, $public:literal)? $(; $writes:expr)?) => {
        Spec {
            mounts: $mounts,
            method: $method,
            path: $path,
            operation: $op,
            access: $acc,
            resource: $res,
            params: $style,
            ids: &[$($id),*],
            server: Server::$server,
            public: false $(|| $public)?,
            trace_writes: trace_writes!($($writes)?),
        }
    };
}
macro_rules! fl {
    ($($t:tt)*) => { spec!(Flask, $($t)*) };
}
macro_rules! fa {
    ($($t:tt)*) => { spec!(FastApi, $($t)*) };
}

const EXP_ID: IdField = p("experiment_id", K::Experiment);
const EXP_IDS: IdField = pm("experiment_ids", K::Experiment);
const RUN_ID: IdField = p("run_id", K::Run);
const MODEL_NAME: IdField = p("name", K::RegisteredModel);
const MODEL_VERSION: IdField = p("version", K::ModelVersion);
const ARTIFACT_PATH: IdField = path("artifact_path", K::Artifact);
const LOGGED_MODEL: IdField = path("model_id", K::LoggedModel);
const DATASET: IdField = path("dataset_id", K::Dataset);
const MCP_NAME: IdField = path("name", K::McpServer);
const MCP_VERSION: IdField = path("version", K::McpServer);
const GW_ENDPOINT_ID: IdField = p("endpoint_id", K::GatewayEndpoint);
const GW_MODEL_FIELD: IdField = p("model", K::GatewayEndpoint);
const GW_ENDPOINT_PATH: IdField = path("endpoint_name", K::GatewayEndpoint);
const SESSION: IdField = path("session_id", K::Assistant);

const SET_TRACE_TAG: TraceWrites = TraceWrites {
    tags: &[Tag::SetKey],
    author: None,
};
const DELETE_TRACE_TAG: TraceWrites = TraceWrites {
    tags: &[Tag::DeleteKey],
    author: None,
};
/// `_deprecated_start_trace_v2` / `_deprecated_end_trace_v2`: `request_metadata` and `tags` are
/// `{key, value}` lists; an end merges them into the trace.
const START_TRACE_V2: TraceWrites = TraceWrites {
    tags: &[Tag::List("tags")],
    author: Some(TraceAuthor::MetadataList {
        path: "request_metadata",
        always: true,
    }),
};
const END_TRACE_V2: TraceWrites = TraceWrites {
    tags: &[Tag::List("tags")],
    author: Some(TraceAuthor::MetadataList {
        path: "request_metadata",
        always: false,
    }),
};
/// `_start_trace_v3`: the trace's `TraceInfo`, whose `tags` and `trace_metadata` are maps.
const START_TRACE_V3: TraceWrites = TraceWrites {
    tags: &[Tag::Map("trace.trace_info.tags")],
    author: Some(TraceAuthor::MetadataMap("trace.trace_info.trace_metadata")),
};
/// `_create_assessment` (what `mlflow.log_feedback`, `log_expectation` and `override_feedback`
/// call). UpdateAssessment cannot change a source.
const CREATE_ASSESSMENT: TraceWrites = TraceWrites {
    tags: &[],
    author: Some(TraceAuthor::AssessmentSource("assessment.source")),
};
/// An OTLP export: `mlflow.traceTag.<key>` span attributes set trace tags.
const EXPORT_TRACES: TraceWrites = TraceWrites {
    tags: &[Tag::List("tags")],
    author: None,
};

/// Native FastAPI routes, in MLflow's registration (= dispatch) order.
#[rustfmt::skip]
static FASTAPI: &[Spec] = &[
    // OpenTelemetry (OTLP/HTTP) trace ingestion; body is OTLP protobuf or JSON. MLflow writes
    // the spans into the trace of their trace id wherever it is, and creates it in the header's
    // experiment when it does not exist yet.
    fa!(ROOT, "POST", "/v1/traces", "ExportTraces", W, K::Experiment, S::Otlp, [header("x-mlflow-experiment-id", K::Experiment), header("x-mlflow-run-id", K::Run), reads_each("trace_ids", K::Trace, "ExportTraces")]; &EXPORT_TRACES),
    // Async jobs.
    fa!(AJAX3, "GET", "/jobs/{job_id}", "GetJob", R, K::Job, S::None, [path("job_id", K::Job)]),
    fa!(AJAX3, "POST", "/jobs/", "SubmitJob", W, K::Global, S::JsonBody, []),
    fa!(AJAX3, "PATCH", "/jobs/cancel/{job_id}", "CancelJob", W, K::Job, S::None, [path("job_id", K::Job)]),
    fa!(AJAX3, "POST", "/jobs/search", "SearchJobs", R, K::Job, S::JsonBody, []),
    // AI gateway invocations.
    fa!(ROOT, "POST", "/gateway/{endpoint_name}/mlflow/invocations", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::None, [GW_ENDPOINT_PATH]),
    fa!(ROOT, "POST", "/gateway/mlflow/v1/chat/completions", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "GET", "/gateway/mlflow/v1/models", "ListGatewayModels", R, K::GatewayEndpoint, S::None, []),
    fa!(ROOT, "POST", "/gateway/openai/v1/chat/completions", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "POST", "/gateway/openai/v1/embeddings", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "POST", "/gateway/typesafe/v1/systemone", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "POST", "/gateway/openai/v1/responses", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "POST", "/gateway/openai/v1/responses/compact", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "POST", "/gateway/anthropic/v1/messages", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::JsonBody, [GW_MODEL_FIELD]),
    fa!(ROOT, "POST", "/gateway/gemini/v1beta/models/{endpoint_name}:generateContent", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::None, [GW_ENDPOINT_PATH]),
    fa!(ROOT, "POST", "/gateway/gemini/v1beta/models/{endpoint_name}:streamGenerateContent", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::None, [GW_ENDPOINT_PATH]),
    fa!(ROOT, "POST", "/gateway/proxy/{endpoint_name}/{path...}", "InvokeGatewayEndpoint", W, K::GatewayEndpoint, S::None, [GW_ENDPOINT_PATH]),
    // MLflow Assistant (server-side agent; GET .../stream runs the pending turn).
    fa!(AJAX3, "POST", "/mlflow/assistant/message", "SendAssistantMessage", W, K::Assistant, S::JsonBody, []),
    fa!(AJAX3, "GET", "/mlflow/assistant/sessions/{session_id}/stream", "StreamAssistantResponse", W, K::Assistant, S::None, [SESSION]),
    fa!(AJAX3, "PATCH", "/mlflow/assistant/sessions/{session_id}", "UpdateAssistantSession", W, K::Assistant, S::JsonBody, [SESSION]),
    fa!(AJAX3, "POST", "/mlflow/assistant/sessions/{session_id}/permission", "ResolveAssistantPermission", W, K::Assistant, S::JsonBody, [SESSION]),
    fa!(AJAX3, "POST", "/mlflow/assistant/sessions/{session_id}/tool-result", "SubmitAssistantToolResult", W, K::Assistant, S::JsonBody, [SESSION]),
    fa!(AJAX3, "GET", "/mlflow/assistant/providers/{provider}/health", "GetAssistantProviderHealth", R, K::Assistant, S::None, []),
    fa!(AJAX3, "GET", "/mlflow/assistant/providers", "ListAssistantProviders", R, K::Assistant, S::None, []),
    fa!(AJAX3, "GET", "/mlflow/assistant/config", "GetAssistantConfig", R, K::Assistant, S::None, []),
    fa!(AJAX3, "PUT", "/mlflow/assistant/config", "UpdateAssistantConfig", W, K::Assistant, S::JsonBody, []),
    fa!(AJAX3, "POST", "/mlflow/assistant/skills/install", "InstallAssistantSkills", W, K::Assistant, S::JsonBody, []),
    fa!(AJAX3, "GET", "/mlflow/assistant/providers/{provider}/models", "ListAssistantProviderModels", R, K::Assistant, S::None, []),
    // Streaming artifact proxy (download / upload).
    fa!(A2P2, "GET", "/mlflow-artifacts/artifacts/{artifact_path...}", "GetArtifact", R, K::Artifact, S::None, [ARTIFACT_PATH]),
    fa!(A2P2, "PUT", "/mlflow-artifacts/artifacts/{artifact_path...}", "PutArtifact", W, K::Artifact, S::None, [ARTIFACT_PATH]),
    // MCP server registry (`name` is `namespace/slug` and spans segments).
    fa!(A3P3, "POST", "/mlflow/mcp-servers", "CreateMcpServer", W, K::McpServer, S::JsonBody, []),
    fa!(A3P3, "GET", "/mlflow/mcp-servers", "SearchMcpServers", R, K::McpServer, S::Query, []),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/endpoints", "SearchMcpAccessEndpoints", R, K::McpServer, S::Query, []),
    fa!(A3P3, "POST", "/mlflow/mcp-servers/{name...}/versions/{version...}/tags", "SetMcpServerVersionTag", W, K::McpServer, S::JsonBody, [MCP_NAME, MCP_VERSION]),
    fa!(A3P3, "DELETE", "/mlflow/mcp-servers/{name...}/versions/{version...}/tags/{key...}", "DeleteMcpServerVersionTag", W, K::McpServer, S::None, [MCP_NAME, MCP_VERSION]),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/{name...}/versions/{version...}", "GetMcpServerVersion", R, K::McpServer, S::None, [MCP_NAME, MCP_VERSION]),
    fa!(A3P3, "PATCH", "/mlflow/mcp-servers/{name...}/versions/{version...}", "UpdateMcpServerVersion", W, K::McpServer, S::JsonBody, [MCP_NAME, MCP_VERSION]),
    fa!(A3P3, "DELETE", "/mlflow/mcp-servers/{name...}/versions/{version...}", "DeleteMcpServerVersion", W, K::McpServer, S::None, [MCP_NAME, MCP_VERSION]),
    fa!(A3P3, "POST", "/mlflow/mcp-servers/{name...}/versions", "CreateMcpServerVersion", W, K::McpServer, S::JsonBody, [MCP_NAME]),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/{name...}/versions", "SearchMcpServerVersions", R, K::McpServer, S::Query, [MCP_NAME]),
    fa!(A3P3, "POST", "/mlflow/mcp-servers/{name...}/endpoints", "CreateMcpAccessEndpoint", W, K::McpServer, S::JsonBody, [MCP_NAME]),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/{name...}/endpoints/{endpoint_id}", "GetMcpAccessEndpoint", R, K::McpServer, S::None, [MCP_NAME]),
    fa!(A3P3, "PATCH", "/mlflow/mcp-servers/{name...}/endpoints/{endpoint_id}", "UpdateMcpAccessEndpoint", W, K::McpServer, S::JsonBody, [MCP_NAME]),
    fa!(A3P3, "DELETE", "/mlflow/mcp-servers/{name...}/endpoints/{endpoint_id}", "DeleteMcpAccessEndpoint", W, K::McpServer, S::None, [MCP_NAME]),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/{name...}/endpoints", "SearchMcpAccessEndpoints", R, K::McpServer, S::Query, [MCP_NAME]),
    fa!(A3P3, "POST", "/mlflow/mcp-servers/{name...}/tags", "SetMcpServerTag", W, K::McpServer, S::JsonBody, [MCP_NAME]),
    fa!(A3P3, "DELETE", "/mlflow/mcp-servers/{name...}/tags/{key...}", "DeleteMcpServerTag", W, K::McpServer, S::None, [MCP_NAME]),
    fa!(A3P3, "POST", "/mlflow/mcp-servers/{name...}/aliases", "SetMcpServerAlias", W, K::McpServer, S::JsonBody, [MCP_NAME]),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/{name...}/aliases/{alias...}", "GetMcpServerVersionByAlias", R, K::McpServer, S::None, [MCP_NAME]),
    fa!(A3P3, "DELETE", "/mlflow/mcp-servers/{name...}/aliases/{alias...}", "DeleteMcpServerAlias", W, K::McpServer, S::None, [MCP_NAME]),
    fa!(A3P3, "GET", "/mlflow/mcp-servers/{name...}", "GetMcpServer", R, K::McpServer, S::None, [MCP_NAME]),
    fa!(A3P3, "PATCH", "/mlflow/mcp-servers/{name...}", "UpdateMcpServer", W, K::McpServer, S::JsonBody, [MCP_NAME]),
    fa!(A3P3, "DELETE", "/mlflow/mcp-servers/{name...}", "DeleteMcpServer", W, K::McpServer, S::None, [MCP_NAME]),
    // Liveness and capability discovery.
    fa!(ROOT, "GET", "/health", "GetHealth", R, K::Global, S::None, [], true),
    fa!(A3P3, "GET", "/mlflow/server-info", "GetServerInfo", R, K::Global, S::None, []),
];

/// Routes of the Flask app (protobuf services under both prefixes, then the explicit
/// routes of `mlflow/server/__init__.py`). Order only matters between routes of equal
/// Werkzeug precedence, which do not occur.
#[rustfmt::skip]
static FLASK: &[Spec] = &[
    // ---- Experiments
    fl!(P2, "GET", "/mlflow/experiments/get-by-name", "GetExperimentByName", R, K::Experiment, S::Message, [p("experiment_name", K::Experiment)]),
    fl!(P2, "POST", "/mlflow/experiments/create", "CreateExperiment", W, K::Experiment, S::Message, [p("name", K::Experiment)]),
    fl!(P2, "POST", "/mlflow/experiments/search", "SearchExperiments", R, K::Experiment, S::Message, []),
    fl!(P2, "GET", "/mlflow/experiments/search", "SearchExperiments", R, K::Experiment, S::Message, []),
    fl!(P2, "GET", "/mlflow/experiments/get", "GetExperiment", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P2, "POST", "/mlflow/experiments/delete", "DeleteExperiment", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P2, "POST", "/mlflow/experiments/restore", "RestoreExperiment", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P2, "POST", "/mlflow/experiments/update", "UpdateExperiment", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P2, "POST", "/mlflow/experiments/set-experiment-tag", "SetExperimentTag", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P2, "POST", "/mlflow/experiments/delete-experiment-tag", "DeleteExperimentTag", W, K::Experiment, S::Message, [EXP_ID]),
    // The proto path lacks its leading '/', so MLflow serves "/api/2.0mlflow/..." (not
    // implemented there; the UI's working route is further below).
    fl!(P2, "POST", "mlflow/experiments/search-datasets", "SearchDatasets", R, K::Experiment, S::Message, [EXP_IDS]),
    // ---- Runs
    fl!(P2, "POST", "/mlflow/runs/create", "CreateRun", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P2, "POST", "/mlflow/runs/update", "UpdateRun", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/delete", "DeleteRun", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/restore", "RestoreRun", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/log-metric", "LogMetric", W, K::Run, S::Message, [RUN_ID, p("model_id", K::LoggedModel)]),
    fl!(P2, "POST", "/mlflow/runs/log-parameter", "LogParam", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/set-tag", "SetTag", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/delete-tag", "DeleteTag", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "GET", "/mlflow/runs/get", "GetRun", R, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/search", "SearchRuns", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P2, "POST", "/mlflow/runs/log-batch", "LogBatch", W, K::Run, S::Message, [RUN_ID, pm("metrics[].model_id", K::LoggedModel)]),
    fl!(P2, "POST", "/mlflow/runs/log-model", "LogModel", W, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/runs/log-inputs", "LogInputs", W, K::Run, S::Message, [RUN_ID, pm("models[].model_id", K::LoggedModel)]),
    fl!(P2, "POST", "/mlflow/runs/outputs", "LogOutputs", W, K::Run, S::Message, [RUN_ID, pm("models[].model_id", K::LoggedModel)]),
    // ---- Run artifacts and metrics
    fl!(P2, "GET", "/mlflow/artifacts/list", "ListArtifacts", R, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "POST", "/mlflow/artifacts/presigned-upload-url", "CreatePresignedUploadUrl", W, K::Run, S::Message, [RUN_ID, p("model_id", K::LoggedModel)]),
    fl!(P2, "POST", "/mlflow/artifacts/presigned-download-url", "CreatePresignedDownloadUrl", R, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "GET", "/mlflow/metrics/get-history", "GetMetricHistory", R, K::Run, S::Message, [RUN_ID]),
    fl!(P2, "GET", "/mlflow/metrics/get-history-bulk-interval", "GetMetricHistoryBulkInterval", R, K::Run, S::Message, [pm("run_ids", K::Run)]),
    // ---- Traces
    fl!(P2, "PATCH", "/mlflow/traces/{request_id}/tags", "SetTraceTag", W, K::Trace, S::Message, [path("request_id", K::Trace)]; &SET_TRACE_TAG),
    fl!(P3, "PATCH", "/mlflow/traces/{trace_id}/tags", "SetTraceTag", W, K::Trace, S::Message, [path("trace_id", K::Trace)]; &SET_TRACE_TAG),
    fl!(P2, "DELETE", "/mlflow/traces/{request_id}/tags", "DeleteTraceTag", W, K::Trace, S::Message, [path("request_id", K::Trace)]; &DELETE_TRACE_TAG),
    fl!(P3, "DELETE", "/mlflow/traces/{trace_id}/tags", "DeleteTraceTag", W, K::Trace, S::Message, [path("trace_id", K::Trace)]; &DELETE_TRACE_TAG),
    fl!(P2, "POST", "/mlflow/traces", "StartTrace", W, K::Experiment, S::Message, [EXP_ID]; &START_TRACE_V2),
    fl!(P2, "PATCH", "/mlflow/traces/{request_id}", "EndTrace", W, K::Trace, S::Message, [path("request_id", K::Trace)]; &END_TRACE_V2),
    fl!(P2, "GET", "/mlflow/traces/{request_id}/info", "GetTraceInfo", R, K::Trace, S::None, [path("request_id", K::Trace)]),
    fl!(P3, "GET", "/mlflow/traces/{trace_id}", "GetTraceInfo", R, K::Trace, S::None, [path("trace_id", K::Trace)]),
    fl!(P3, "GET", "/mlflow/traces/get", "GetTrace", R, K::Trace, S::Message, [p("trace_id", K::Trace)]),
    fl!(P3, "GET", "/mlflow/traces/batchGet", "BatchGetTraces", R, K::Trace, S::Message, [pm("trace_ids", K::Trace), EXP_IDS]),
    fl!(P3, "POST", "/mlflow/traces/batchGetInfos", "BatchGetTraceInfos", R, K::Trace, S::Message, [pm("trace_ids", K::Trace), EXP_IDS]),
    fl!(P2, "GET", "/mlflow/traces", "SearchTraces", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P3, "POST", "/mlflow/traces/search", "SearchTraces", R, K::Experiment, S::Message, [pm("locations[].mlflow_experiment.experiment_id", K::Experiment )]),
    fl!(P3, "POST", "/mlflow/traces", "StartTrace", W, K::Experiment, S::Message, [p("trace.trace_info.trace_location.mlflow_experiment.experiment_id", K::Experiment), reads("trace.trace_info.trace_id", K::Trace, "StartTrace"), reads("trace.trace_info.assessments[].assessment_id", K::Assessment, "CreateAssessment"), reads("trace.trace_info.assessments[].overrides", K::Assessment, "CreateAssessment")]; &START_TRACE_V3),
    fl!(P2, "POST", "/mlflow/traces/link-to-run", "LinkTracesToRun", W, K::Run, S::Message, [RUN_ID, pm("trace_ids", K::Trace)]),
    fl!(P2, "POST", "/mlflow/traces/link-prompts", "LinkPromptsToTrace", W, K::Trace, S::Message, [p("trace_id", K::Trace), pm("prompt_versions[].name", K::RegisteredModel)]),
    fl!(P2, "GET", "/mlflow/unified-traces", "SearchUnifiedTraces", R, K::Experiment, S::Message, [EXP_IDS, p("model_id", K::LoggedModel)]),
    fl!(P2, "GET", "/mlflow/get-online-trace-details", "GetOnlineTraceDetails", R, K::Trace, S::Message, [p("trace_id", K::Trace)]),
    fl!(P2, "POST", "/mlflow/traces/delete-traces", "DeleteTraces", W, K::Experiment, S::Message, [EXP_ID, pm("request_ids", K::Trace)]),
    fl!(P3, "POST", "/mlflow/traces/delete-traces", "DeleteTraces", W, K::Experiment, S::Message, [EXP_ID, pm("request_ids", K::Trace)]),
    fl!(P3, "POST", "/mlflow/traces/calculate-filter-correlation", "CalculateTraceFilterCorrelation", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P3, "POST", "/mlflow/traces/metrics", "QueryTraceMetrics", R, K::Experiment, S::Message, [EXP_IDS]),
    // ---- Assessments (anchored on their trace)
    fl!(P3, "GET", "/mlflow/traces/{trace_id}/assessments/{assessment_id}", "GetAssessment", R, K::Trace, S::None, [path("trace_id", K::Trace), path("assessment_id", K::Assessment)]),
    fl!(P3, "POST", "/mlflow/traces/{trace_id}/assessments", "CreateAssessment", W, K::Trace, S::Message, [path("trace_id", K::Trace)]; &CREATE_ASSESSMENT),
    fl!(P3, "PATCH", "/mlflow/traces/{trace_id}/assessments/{assessment_id}", "UpdateAssessment", W, K::Trace, S::Message, [path("trace_id", K::Trace), path("assessment_id", K::Assessment)]),
    fl!(P3, "DELETE", "/mlflow/traces/{trace_id}/assessments/{assessment_id}", "DeleteAssessment", W, K::Trace, S::None, [path("trace_id", K::Trace), path("assessment_id", K::Assessment)]),
    // ---- Workspaces
    fl!(P3, "GET", "/mlflow/workspaces", "ListWorkspaces", R, K::Workspace, S::Message, []),
    fl!(P3, "POST", "/mlflow/workspaces", "CreateWorkspace", W, K::Workspace, S::Message, [p("name", K::Workspace)]),
    fl!(P3, "GET", "/mlflow/workspaces/{workspace_name}", "GetWorkspace", R, K::Workspace, S::None, [path("workspace_name", K::Workspace)]),
    fl!(P3, "PATCH", "/mlflow/workspaces/{workspace_name}", "UpdateWorkspace", W, K::Workspace, S::Message, [path("workspace_name", K::Workspace)]),
    fl!(P3, "DELETE", "/mlflow/workspaces/{workspace_name}", "DeleteWorkspace", W, K::Workspace, S::Query, [path("workspace_name", K::Workspace)]),
    // ---- Logged models
    fl!(P2, "POST", "/mlflow/logged-models", "CreateLoggedModel", W, K::Experiment, S::Message, [EXP_ID, p("source_run_id", K::Run)]),
    fl!(P2, "PATCH", "/mlflow/logged-models/{model_id}", "FinalizeLoggedModel", W, K::LoggedModel, S::Message, [LOGGED_MODEL]),
    fl!(P2, "GET", "/mlflow/logged-models/{model_id}", "GetLoggedModel", R, K::LoggedModel, S::Query, [LOGGED_MODEL]),
    fl!(P2, "DELETE", "/mlflow/logged-models/{model_id}", "DeleteLoggedModel", W, K::LoggedModel, S::None, [LOGGED_MODEL]),
    fl!(P2, "POST", "/mlflow/logged-models/search", "SearchLoggedModels", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P2, "PATCH", "/mlflow/logged-models/{model_id}/tags", "SetLoggedModelTags", W, K::LoggedModel, S::Message, [LOGGED_MODEL]),
    fl!(P2, "DELETE", "/mlflow/logged-models/{model_id}/tags/{tag_key}", "DeleteLoggedModelTag", W, K::LoggedModel, S::None, [LOGGED_MODEL]),
    fl!(P2, "GET", "/mlflow/logged-models/{model_id}/artifacts/directories", "ListLoggedModelArtifacts", R, K::LoggedModel, S::Message, [LOGGED_MODEL]),
    fl!(P2, "POST", "/mlflow/logged-models/{model_id}/params", "LogLoggedModelParams", W, K::LoggedModel, S::Message, [LOGGED_MODEL]),
    // ---- Issues
    fl!(P3, "POST", "/mlflow/issues", "CreateIssue", W, K::Experiment, S::Message, [EXP_ID, p("source_run_id", K::Run)]),
    fl!(P3, "PATCH", "/mlflow/issues/{issue_id}", "UpdateIssue", W, K::Issue, S::Message, [path("issue_id", K::Issue)]),
    fl!(P3, "GET", "/mlflow/issues/{issue_id}", "GetIssue", R, K::Issue, S::None, [path("issue_id", K::Issue)]),
    fl!(P3, "POST", "/mlflow/issues/search", "SearchIssues", R, K::Experiment, S::Message, [EXP_ID]),
    // ---- Label schemas
    fl!(P3, "POST", "/mlflow/label-schemas/create", "CreateLabelSchema", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "GET", "/mlflow/label-schemas/get", "GetLabelSchema", R, K::LabelSchema, S::Message, [p("schema_id", K::LabelSchema)]),
    fl!(P3, "GET", "/mlflow/label-schemas/get-by-name", "GetLabelSchemaByName", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "GET", "/mlflow/label-schemas/list", "ListLabelSchemas", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "PATCH", "/mlflow/label-schemas/update", "UpdateLabelSchema", W, K::LabelSchema, S::Message, [p("schema_id", K::LabelSchema)]),
    fl!(P3, "DELETE", "/mlflow/label-schemas/delete", "DeleteLabelSchema", W, K::LabelSchema, S::Message, [p("schema_id", K::LabelSchema)]),
    // ---- Evaluation datasets
    fl!(P3, "POST", "/mlflow/datasets/create", "CreateDataset", W, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P3, "GET", "/mlflow/datasets/{dataset_id}", "GetDataset", R, K::Dataset, S::None, [DATASET]),
    fl!(P3, "DELETE", "/mlflow/datasets/{dataset_id}", "DeleteDataset", W, K::Dataset, S::None, [DATASET]),
    fl!(P3, "POST", "/mlflow/datasets/search", "SearchEvaluationDatasets", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P3, "GET", "/mlflow/datasets/search", "SearchEvaluationDatasets", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(P3, "PATCH", "/mlflow/datasets/{dataset_id}/tags", "SetDatasetTags", W, K::Dataset, S::Message, [DATASET]),
    fl!(P3, "DELETE", "/mlflow/datasets/{dataset_id}/tags/{key}", "DeleteDatasetTag", W, K::Dataset, S::None, [DATASET]),
    fl!(P3, "POST", "/mlflow/datasets/{dataset_id}/records", "UpsertDatasetRecords", W, K::Dataset, S::Message, [DATASET]),
    fl!(P3, "GET", "/mlflow/datasets/{dataset_id}/experiment-ids", "GetDatasetExperimentIds", R, K::Dataset, S::None, [DATASET]),
    fl!(P3, "GET", "/mlflow/datasets/{dataset_id}/records", "GetDatasetRecords", R, K::Dataset, S::Message, [DATASET]),
    fl!(P3, "DELETE", "/mlflow/datasets/{dataset_id}/records", "DeleteDatasetRecords", W, K::Dataset, S::Message, [DATASET]),
    fl!(P3, "POST", "/mlflow/datasets/{dataset_id}/add-experiments", "AddDatasetToExperiments", W, K::Dataset, S::Message, [DATASET, EXP_IDS]),
    fl!(P3, "POST", "/mlflow/datasets/{dataset_id}/remove-experiments", "RemoveDatasetFromExperiments", W, K::Dataset, S::Message, [DATASET, EXP_IDS]),
    // ---- Scorers
    fl!(P3, "POST", "/mlflow/scorers/register", "RegisterScorer", W, K::Experiment, S::Message, [EXP_ID, p("name", K::Scorer), judges("serialized_scorer")]),
    fl!(P3, "GET", "/mlflow/scorers/list", "ListScorers", R, K::Experiment, S::Message, [EXP_ID, EXP_IDS]),
    fl!(P3, "GET", "/mlflow/scorers/versions", "ListScorerVersions", R, K::Scorer, S::Message, [EXP_ID, p("name", K::Scorer)]),
    fl!(P3, "GET", "/mlflow/scorers/get", "GetScorer", R, K::Scorer, S::Message, [EXP_ID, p("name", K::Scorer)]),
    fl!(P3, "DELETE", "/mlflow/scorers/delete", "DeleteScorer", W, K::Scorer, S::Message, [EXP_ID, p("name", K::Scorer)]),
    fl!(P3, "GET", "/mlflow/scorers/online-configs", "GetOnlineScoringConfigs", R, K::Scorer, S::FlaskJson, [pm("scorer_ids", K::Scorer)]),
    fl!(P3, "PUT", "/mlflow/scorers/online-config", "UpsertOnlineScoringConfig", W, K::Scorer, S::FlaskJson, [EXP_ID, p("name", K::Scorer)]),
    // ---- AI gateway: secrets, endpoints, model definitions, bindings, tags
    fl!(P3, "POST", "/mlflow/gateway/secrets/create", "CreateGatewaySecret", W, K::GatewaySecret, S::Message, [p("secret_name", K::GatewaySecret)]),
    fl!(P3, "GET", "/mlflow/gateway/secrets/get", "GetGatewaySecretInfo", R, K::GatewaySecret, S::Message, [p("secret_id", K::GatewaySecret), p("secret_name", K::GatewaySecret)]),
    fl!(P3, "POST", "/mlflow/gateway/secrets/update", "UpdateGatewaySecret", W, K::GatewaySecret, S::Message, [p("secret_id", K::GatewaySecret)]),
    fl!(P3, "DELETE", "/mlflow/gateway/secrets/delete", "DeleteGatewaySecret", W, K::GatewaySecret, S::Message, [p("secret_id", K::GatewaySecret)]),
    fl!(P3, "GET", "/mlflow/gateway/secrets/list", "ListGatewaySecretInfos", R, K::GatewaySecret, S::Message, []),
    fl!(P3, "POST", "/mlflow/gateway/endpoints/create", "CreateGatewayEndpoint", W, K::GatewayEndpoint, S::Message, [p("name", K::GatewayEndpoint), EXP_ID, pm("model_configs[].model_definition_id", K::GatewayModelDefinition )]),
    fl!(P3, "GET", "/mlflow/gateway/endpoints/get", "GetGatewayEndpoint", R, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("name", K::GatewayEndpoint)]),
    fl!(P3, "POST", "/mlflow/gateway/endpoints/update", "UpdateGatewayEndpoint", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, EXP_ID, pm("model_configs[].model_definition_id", K::GatewayModelDefinition )]),
    fl!(P3, "DELETE", "/mlflow/gateway/endpoints/delete", "DeleteGatewayEndpoint", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID]),
    fl!(P3, "GET", "/mlflow/gateway/endpoints/list", "ListGatewayEndpoints", R, K::GatewayEndpoint, S::Message, []),
    fl!(P3, "POST", "/mlflow/gateway/model-definitions/create", "CreateGatewayModelDefinition", W, K::GatewayModelDefinition, S::Message, [p("secret_id", K::GatewaySecret)]),
    fl!(P3, "GET", "/mlflow/gateway/model-definitions/get", "GetGatewayModelDefinition", R, K::GatewayModelDefinition, S::Message, [p("model_definition_id", K::GatewayModelDefinition)]),
    fl!(P3, "GET", "/mlflow/gateway/model-definitions/list", "ListGatewayModelDefinitions", R, K::GatewayModelDefinition, S::Message, []),
    fl!(P3, "POST", "/mlflow/gateway/model-definitions/update", "UpdateGatewayModelDefinition", W, K::GatewayModelDefinition, S::Message, [p("model_definition_id", K::GatewayModelDefinition), p("secret_id", K::GatewaySecret)]),
    fl!(P3, "DELETE", "/mlflow/gateway/model-definitions/delete", "DeleteGatewayModelDefinition", W, K::GatewayModelDefinition, S::Message, [p("model_definition_id", K::GatewayModelDefinition)]),
    fl!(P3, "POST", "/mlflow/gateway/endpoints/models/attach", "AttachModelToGatewayEndpoint", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("model_config.model_definition_id", K::GatewayModelDefinition )]),
    fl!(P3, "POST", "/mlflow/gateway/endpoints/models/detach", "DetachModelFromGatewayEndpoint", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("model_definition_id", K::GatewayModelDefinition)]),
    fl!(P3, "POST", "/mlflow/gateway/endpoints/bindings/create", "CreateGatewayEndpointBinding", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("resource_id", K::Scorer)]),
    fl!(P3, "DELETE", "/mlflow/gateway/endpoints/bindings/delete", "DeleteGatewayEndpointBinding", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("resource_id", K::Scorer)]),
    fl!(P3, "GET", "/mlflow/gateway/endpoints/bindings/list", "ListGatewayEndpointBindings", R, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID]),
    fl!(P3, "POST", "/mlflow/gateway/endpoints/set-tag", "SetGatewayEndpointTag", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID]),
    fl!(P3, "DELETE", "/mlflow/gateway/endpoints/delete-tag", "DeleteGatewayEndpointTag", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID]),
    // ---- AI gateway: budgets and guardrails
    fl!(P3, "POST", "/mlflow/gateway/budgets/create", "CreateGatewayBudgetPolicy", W, K::GatewayBudgetPolicy, S::Message, []),
    fl!(P3, "GET", "/mlflow/gateway/budgets/get", "GetGatewayBudgetPolicy", R, K::GatewayBudgetPolicy, S::Message, [p("budget_policy_id", K::GatewayBudgetPolicy)]),
    fl!(P3, "POST", "/mlflow/gateway/budgets/update", "UpdateGatewayBudgetPolicy", W, K::GatewayBudgetPolicy, S::Message, [p("budget_policy_id", K::GatewayBudgetPolicy)]),
    fl!(P3, "DELETE", "/mlflow/gateway/budgets/delete", "DeleteGatewayBudgetPolicy", W, K::GatewayBudgetPolicy, S::Message, [p("budget_policy_id", K::GatewayBudgetPolicy)]),
    fl!(P3, "GET", "/mlflow/gateway/budgets/list", "ListGatewayBudgetPolicies", R, K::GatewayBudgetPolicy, S::Message, []),
    fl!(P3, "GET", "/mlflow/gateway/budgets/windows", "ListGatewayBudgetWindows", R, K::GatewayBudgetPolicy, S::Message, []),
    fl!(P3, "POST", "/mlflow/gateway/guardrails/create", "CreateGatewayGuardrail", W, K::GatewayGuardrail, S::Message, [p("action_endpoint_id", K::GatewayEndpoint), reads("scorer_id", K::Scorer, "GetScorer")]),
    fl!(P3, "GET", "/mlflow/gateway/guardrails/get", "GetGatewayGuardrail", R, K::GatewayGuardrail, S::Message, [p("guardrail_id", K::GatewayGuardrail)]),
    fl!(P3, "DELETE", "/mlflow/gateway/guardrails/delete", "DeleteGatewayGuardrail", W, K::GatewayGuardrail, S::Message, [p("guardrail_id", K::GatewayGuardrail)]),
    fl!(P3, "GET", "/mlflow/gateway/guardrails/list", "ListGatewayGuardrails", R, K::GatewayGuardrail, S::Message, []),
    fl!(P3, "POST", "/mlflow/gateway/guardrails/add-to-endpoint", "AddGuardrailToEndpoint", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("guardrail_id", K::GatewayGuardrail)]),
    fl!(P3, "DELETE", "/mlflow/gateway/guardrails/remove-from-endpoint", "RemoveGuardrailFromEndpoint", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("guardrail_id", K::GatewayGuardrail)]),
    fl!(P3, "GET", "/mlflow/gateway/guardrails/list-for-endpoint", "ListEndpointGuardrailConfigs", R, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID]),
    fl!(P3, "PATCH", "/mlflow/gateway/guardrails/update-config", "UpdateEndpointGuardrailConfig", W, K::GatewayEndpoint, S::Message, [GW_ENDPOINT_ID, p("guardrail_id", K::GatewayGuardrail)]),
    // ---- Prompt optimization jobs
    fl!(P3, "POST", "/mlflow/prompt-optimization/jobs", "CreatePromptOptimizationJob", W, K::Experiment, S::Message, [EXP_ID, p("source_prompt_uri", K::ModelVersion), reads("source_prompt_uri", K::RegisteredModel, "CreateModelVersion"), reads("config.dataset_id", K::Dataset, "GetDatasetRecords")]),
    fl!(P3, "GET", "/mlflow/prompt-optimization/jobs/{job_id}", "GetPromptOptimizationJob", R, K::PromptOptimizationJob, S::None, [path("job_id", K::PromptOptimizationJob)]),
    fl!(P3, "POST", "/mlflow/prompt-optimization/jobs/search", "SearchPromptOptimizationJobs", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "GET", "/mlflow/prompt-optimization/jobs/search", "SearchPromptOptimizationJobs", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "POST", "/mlflow/prompt-optimization/jobs/{job_id}/cancel", "CancelPromptOptimizationJob", W, K::PromptOptimizationJob, S::None, [path("job_id", K::PromptOptimizationJob)]),
    fl!(P3, "DELETE", "/mlflow/prompt-optimization/jobs/{job_id}", "DeletePromptOptimizationJob", W, K::PromptOptimizationJob, S::None, [path("job_id", K::PromptOptimizationJob)]),
    // ---- Review queues
    fl!(P3, "POST", "/mlflow/review-queues/create", "CreateReviewQueue", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "POST", "/mlflow/review-queues/get-or-create-user", "GetOrCreateUserQueue", W, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "GET", "/mlflow/review-queues/get", "GetReviewQueue", R, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    fl!(P3, "GET", "/mlflow/review-queues/get-by-name", "GetReviewQueueByName", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "GET", "/mlflow/review-queues/list", "ListReviewQueues", R, K::Experiment, S::Message, [EXP_ID]),
    fl!(P3, "POST", "/mlflow/review-queues/update", "UpdateReviewQueue", W, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    fl!(P3, "POST", "/mlflow/review-queues/delete", "DeleteReviewQueue", W, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    fl!(P3, "POST", "/mlflow/review-queues/items/add", "AddItemsToReviewQueue", W, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    fl!(P3, "POST", "/mlflow/review-queues/items/remove", "RemoveItemsFromReviewQueue", W, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    fl!(P3, "GET", "/mlflow/review-queues/items/list", "ListReviewQueueItems", R, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    fl!(P3, "POST", "/mlflow/review-queues/items/set-status", "SetReviewQueueItemStatus", W, K::ReviewQueue, S::Message, [p("queue_id", K::ReviewQueue)]),
    // ---- Model registry (registered models are also prompts)
    fl!(P2, "POST", "/mlflow/registered-models/create", "CreateRegisteredModel", W, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "POST", "/mlflow/registered-models/rename", "RenameRegisteredModel", W, K::RegisteredModel, S::Message, [MODEL_NAME, p("new_name", K::RegisteredModel)]),
    fl!(P2, "PATCH", "/mlflow/registered-models/update", "UpdateRegisteredModel", W, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "DELETE", "/mlflow/registered-models/delete", "DeleteRegisteredModel", W, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "GET", "/mlflow/registered-models/get", "GetRegisteredModel", R, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "GET", "/mlflow/registered-models/search", "SearchRegisteredModels", R, K::RegisteredModel, S::Message, []),
    fl!(P2, "POST", "/mlflow/registered-models/get-latest-versions", "GetLatestModelVersions", R, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "GET", "/mlflow/registered-models/get-latest-versions", "GetLatestModelVersions", R, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "POST", "/mlflow/model-versions/create", "CreateModelVersion", W, K::RegisteredModel, S::Message, [MODEL_NAME, reads("run_id", K::Run, "GetArtifact"), reads("model_id", K::LoggedModel, "GetArtifact"), reads("source", K::ModelSource, "GetArtifact")]),
    fl!(P2, "PATCH", "/mlflow/model-versions/update", "UpdateModelVersion", W, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "POST", "/mlflow/model-versions/transition-stage", "TransitionModelVersionStage", W, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "DELETE", "/mlflow/model-versions/delete", "DeleteModelVersion", W, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "GET", "/mlflow/model-versions/get", "GetModelVersion", R, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "GET", "/mlflow/model-versions/search", "SearchModelVersions", R, K::ModelVersion, S::Message, []),
    fl!(P2, "GET", "/mlflow/model-versions/get-download-uri", "GetDownloadURIForModelVersionArtifacts", R, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "POST", "/mlflow/registered-models/set-tag", "SetRegisteredModelTag", W, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "POST", "/mlflow/model-versions/set-tag", "SetModelVersionTag", W, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "DELETE", "/mlflow/registered-models/delete-tag", "DeleteRegisteredModelTag", W, K::RegisteredModel, S::Message, [MODEL_NAME]),
    fl!(P2, "DELETE", "/mlflow/model-versions/delete-tag", "DeleteModelVersionTag", W, K::ModelVersion, S::Message, [MODEL_NAME, MODEL_VERSION]),
    fl!(P2, "POST", "/mlflow/registered-models/alias", "SetRegisteredModelAlias", W, K::RegisteredModel, S::Message, [MODEL_NAME, MODEL_VERSION, p("alias", K::ModelVersion)]),
    fl!(P2, "DELETE", "/mlflow/registered-models/alias", "DeleteRegisteredModelAlias", W, K::RegisteredModel, S::Message, [MODEL_NAME, p("alias", K::ModelVersion)]),
    fl!(P2, "GET", "/mlflow/registered-models/alias", "GetModelVersionByAlias", R, K::ModelVersion, S::Message, [MODEL_NAME, p("alias", K::ModelVersion)]),
    // ---- Webhooks
    fl!(P2, "POST", "/mlflow/webhooks", "CreateWebhook", W, K::Webhook, S::Message, []),
    fl!(P2, "GET", "/mlflow/webhooks", "ListWebhooks", R, K::Webhook, S::Message, []),
    fl!(P2, "GET", "/mlflow/webhooks/{webhook_id}", "GetWebhook", R, K::Webhook, S::None, [path("webhook_id", K::Webhook)]),
    fl!(P2, "PATCH", "/mlflow/webhooks/{webhook_id}", "UpdateWebhook", W, K::Webhook, S::Message, [path("webhook_id", K::Webhook)]),
    fl!(P2, "DELETE", "/mlflow/webhooks/{webhook_id}", "DeleteWebhook", W, K::Webhook, S::None, [path("webhook_id", K::Webhook)]),
    fl!(P2, "POST", "/mlflow/webhooks/{webhook_id}/test", "TestWebhook", W, K::Webhook, S::Message, [path("webhook_id", K::Webhook)]),
    // ---- Artifact proxy (mlflow-artifacts service). GET and PUT on artifacts/{...} are
    // served by FastAPI (above); these Flask twins serve HEAD and remain registered.
    fl!(P2, "GET", "/mlflow-artifacts/artifacts/{artifact_path...}", "GetArtifact", R, K::Artifact, S::None, [ARTIFACT_PATH]),
    fl!(P2, "PUT", "/mlflow-artifacts/artifacts/{artifact_path...}", "PutArtifact", W, K::Artifact, S::None, [ARTIFACT_PATH]),
    fl!(P2, "GET", "/mlflow-artifacts/artifacts", "ListArtifacts", R, K::Artifact, S::Message, [p("path", K::Artifact)]),
    fl!(P2, "DELETE", "/mlflow-artifacts/artifacts/{artifact_path...}", "DeleteArtifact", W, K::Artifact, S::Message, [ARTIFACT_PATH]),
    fl!(P2, "POST", "/mlflow-artifacts/mpu/create/{artifact_path...}", "CreateMultipartUpload", W, K::Artifact, S::Message, [ARTIFACT_PATH]),
    fl!(P2, "POST", "/mlflow-artifacts/mpu/complete/{artifact_path...}", "CompleteMultipartUpload", W, K::Artifact, S::Message, [ARTIFACT_PATH]),
    fl!(P2, "POST", "/mlflow-artifacts/mpu/abort/{artifact_path...}", "AbortMultipartUpload", W, K::Artifact, S::Message, [ARTIFACT_PATH]),
    fl!(P2, "GET", "/mlflow-artifacts/presigned/{artifact_path...}", "GetPresignedDownloadUrl", R, K::Artifact, S::None, [ARTIFACT_PATH]),
    // ---- GraphQL (the body is read for GET too); each root field is decided as the
    // operation it performs, see `graphql_request`.
    fl!(ROOT, "GET", "/graphql", "GraphQLQuery", R, K::Global, S::JsonBody, []),
    fl!(ROOT, "POST", "/graphql", "GraphQLQuery", R, K::Global, S::JsonBody, []),
    // ---- Flask twins of FastAPI routes (serve HEAD)
    fl!(P3, "GET", "/mlflow/server-info", "GetServerInfo", R, K::Global, S::None, []),
    // ---- UI helpers registered by handlers.get_endpoints()
    fl!(AJAX3, "GET", "/mlflow/gateway/supported-providers", "ListGatewaySupportedProviders", R, K::Global, S::None, []),
    fl!(AJAX3, "GET", "/mlflow/gateway/supported-models", "ListGatewaySupportedModels", R, K::Global, S::Query, []),
    fl!(AJAX3, "GET", "/mlflow/gateway/provider-config", "GetGatewayProviderConfig", R, K::Global, S::Query, []),
    fl!(AJAX3, "GET", "/mlflow/gateway/secrets/config", "GetGatewaySecretsConfig", R, K::Global, S::None, []),
    fl!(AJAX3, "POST", "/mlflow/scorer/invoke", "InvokeScorer", W, K::Experiment, S::JsonBody, [EXP_ID, pm("trace_ids", K::Trace), judges("serialized_scorer")]),
    fl!(AJAX3, "POST", "/mlflow/demo/generate", "GenerateDemo", W, K::Global, S::JsonBody, []),
    fl!(AJAX3, "POST", "/mlflow/demo/delete", "DeleteDemo", W, K::Global, S::None, []),
    fl!(AJAX3, "POST", "/mlflow/issues/invoke", "InvokeIssueDetection", W, K::Experiment, S::FlaskJson, [EXP_ID, pm("trace_ids", K::Trace), p("secret_id", K::GatewaySecret), p("endpoint_name", K::GatewayEndpoint)]),
    fl!(AJAX3, "POST", "/mlflow/genai/evaluate/invoke", "InvokeGenaiEvaluate", W, K::Experiment, S::FlaskJson, [EXP_ID, pm("trace_ids", K::Trace), judges("serialized_scorers")]),
    fl!(AJAX3, "PATCH", "/mlflow/jobs/cancel/{job_id}", "CancelJob", W, K::Job, S::None, [path("job_id", K::Job)]),
    fl!(AJAX3, "GET", "/mlflow/jobs/{job_id}", "GetJob", R, K::Job, S::None, [path("job_id", K::Job)]),
    // ---- Explicit routes of mlflow/server/__init__.py
    fl!(ROOT, "GET", "/health", "GetHealth", R, K::Global, S::None, [], true),
    fl!(ROOT, "GET", "/version", "GetVersion", R, K::Global, S::None, []),
    fl!(ROOT, "GET", "/get-artifact", "GetArtifact", R, K::Run, S::Query, [RUN_ID, p("path", K::Artifact)]),
    fl!(ROOT, "GET", "/model-versions/get-artifact", "GetArtifact", R, K::ModelVersion, S::Query, [MODEL_NAME, MODEL_VERSION, p("path", K::Artifact)]),
    fl!(AJAX2, "GET", "/mlflow/metrics/get-history-bulk", "GetMetricHistoryBulk", R, K::Run, S::Query, [pm("run_id", K::Run)]),
    fl!(AJAX2, "POST", "/mlflow/experiments/search-datasets", "SearchDatasets", R, K::Experiment, S::Message, [EXP_IDS]),
    fl!(AJAX2, "POST", "/mlflow/runs/create-promptlab-run", "CreatePromptlabRun", W, K::Experiment, S::JsonBody, [EXP_ID]),
    // Server-side call to the legacy deployments server ($MLFLOW_DEPLOYMENTS_TARGET).
    fl!(AJAX2, "GET", "/mlflow/gateway-proxy", "QueryGatewayProxy", R, K::Global, S::QueryIfGetElseJson, []),
    fl!(AJAX2, "POST", "/mlflow/gateway-proxy", "InvokeGatewayProxy", W, K::Global, S::QueryIfGetElseJson, []),
    fl!(AJAX2, "POST", "/mlflow/upload-artifact", "PutArtifact", W, K::Run, S::Query, [RUN_ID, p("path", K::Artifact)]),
    fl!(AJAX2, "GET", "/mlflow/get-trace-artifact", "GetTraceArtifact", R, K::Trace, S::Query, [p("request_id", K::Trace)]),
    fl!(AJAX3, "GET", "/mlflow/get-trace-artifact", "GetTraceArtifact", R, K::Trace, S::Query, [p("request_id", K::Trace)]),
    fl!(AJAX2, "GET", "/mlflow/logged-models/{model_id}/artifacts/files", "GetArtifact", R, K::LoggedModel, S::Query, [LOGGED_MODEL, p("artifact_file_path", K::Artifact)]),
    fl!(AJAX3, "GET", "/mlflow/ui-telemetry", "GetUiTelemetry", R, K::Global, S::None, []),
    // UI usage events for MLflow's telemetry; changes no tracking data, so a read.
    fl!(AJAX3, "POST", "/mlflow/ui-telemetry", "SendUiTelemetry", R, K::Global, S::JsonBody, []),
    fl!(ROOT, "GET", "/static-files/{path...}", "AccessUI", R, K::Global, S::None, []),
    fl!(ROOT, "GET", "/build/{filename...}", "AccessUI", R, K::Global, S::None, []),
    fl!(ROOT, "GET", "/", "AccessUI", R, K::Global, S::None, []),
];

/// The operation of a GraphQL root field of a `mutation` that touches no resource
/// (`testMutation`; see [`crate::graphql_request`]): `mlflow:GraphQLMutation`, a write.
pub const GRAPHQL_MUTATION_OPERATION: &str = "GraphQLMutation";

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(method: &str, path: &str) -> (&'static Route, Vec<(&'static str, String)>) {
        match classify(method, path) {
            Classified::Route { route, path_params } => (route, path_params),
            Classified::Unknown => panic!("{method} {path} not classified"),
        }
    }

    #[test]
    fn literal_routes_and_twins() {
        for prefix in ["/api/2.0", "/ajax-api/2.0"] {
            let (r, params) = hit("POST", &format!("{prefix}/mlflow/runs/search"));
            assert_eq!(r.action(), "mlflow:SearchRuns");
            assert_eq!(r.access, Access::Read);
            assert!(params.is_empty());
        }
        assert_eq!(
            hit("POST", "/api/2.0/mlflow/model-versions/transition-stage")
                .0
                .action(),
            "mlflow:TransitionModelVersionStage"
        );
        assert_eq!(
            hit(
                "POST",
                "/api/2.0/mlflow/registered-models/get-latest-versions"
            )
            .0
            .access,
            Access::Read
        );
        // no automatic 2.0 <-> 3.0 aliasing
        assert_eq!(
            classify("POST", "/api/2.0/mlflow/traces/search"),
            Classified::Unknown
        );
        assert_eq!(
            classify("GET", "/api/2.0/mlflow/runs/search"),
            Classified::Unknown
        );
        assert_eq!(
            classify("GET", "/api/2.0/mlflow/runs/get/"),
            Classified::Unknown
        );
    }

    #[test]
    fn literal_beats_template_per_method() {
        assert_eq!(
            hit("GET", "/api/3.0/mlflow/traces/get").0.operation,
            "GetTrace"
        );
        let (r, params) = hit("GET", "/api/3.0/mlflow/traces/tr-123");
        assert_eq!(r.operation, "GetTraceInfo");
        assert_eq!(params, vec![("trace_id", "tr-123".to_string())]);
        // POST-only literal does not shadow the GET template (Werkzeug backtracks)
        let (r, params) = hit("GET", "/api/2.0/mlflow/logged-models/search");
        assert_eq!(r.operation, "GetLoggedModel");
        assert_eq!(params, vec![("model_id", "search".to_string())]);
    }

    #[test]
    fn artifact_paths_and_head() {
        let (r, params) = hit(
            "GET",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/m%20x/MLmodel",
        );
        assert_eq!((r.server, r.operation), (Server::FastApi, "GetArtifact"));
        assert_eq!(
            params,
            vec![("artifact_path", "1/abc/artifacts/m x/MLmodel".to_string())]
        );
        let (r, _) = hit("HEAD", "/api/2.0/mlflow-artifacts/artifacts/1/x");
        assert_eq!((r.server, r.method), (Server::Flask, "GET"));
        let (r, _) = hit("DELETE", "/ajax-api/2.0/mlflow-artifacts/artifacts/1/x");
        assert_eq!((r.server, r.operation), (Server::Flask, "DeleteArtifact"));
        assert_eq!(hit("HEAD", "/health").0.server, Server::Flask);
        assert!(hit("GET", "/health").0.public);
        assert_eq!(
            classify("HEAD", "/gateway/mlflow/v1/models"),
            Classified::Unknown
        );
        assert_eq!(
            classify("OPTIONS", "/api/2.0/mlflow/runs/search"),
            Classified::Unknown
        );
    }

    #[test]
    fn greedy_multi_segment_params_like_starlette() {
        let (r, params) = hit("DELETE", "/api/3.0/mlflow/mcp-servers/ns/x/tags/a/tags/b");
        assert_eq!(r.operation, "DeleteMcpServerTag");
        assert_eq!(
            params,
            vec![
                ("name", "ns/x/tags/a".to_string()),
                ("key", "b".to_string())
            ]
        );
        let (r, params) = hit("GET", "/api/3.0/mlflow/mcp-servers/ns/x/versions/1");
        assert_eq!(r.operation, "GetMcpServerVersion");
        assert_eq!(
            params,
            vec![("name", "ns/x".to_string()), ("version", "1".to_string())]
        );
        let (r, _) = hit("GET", "/api/3.0/mlflow/mcp-servers/endpoints");
        assert_eq!(r.operation, "SearchMcpAccessEndpoints");
        let (r, params) = hit(
            "POST",
            "/gateway/gemini/v1beta/models/my-ep:generateContent",
        );
        assert_eq!(r.operation, "InvokeGatewayEndpoint");
        assert_eq!(params, vec![("endpoint_name", "my-ep".to_string())]);
        let (_, params) = hit(
            "POST",
            "/gateway/gemini/v1beta/models/a:b:streamGenerateContent",
        );
        assert_eq!(params, vec![("endpoint_name", "a:b".to_string())]);
    }

    #[test]
    fn adversarial_paths_stay_fast() {
        let long = format!(
            "/api/3.0/mlflow/mcp-servers{}/x",
            "/versions/tags".repeat(120)
        );
        let t = std::time::Instant::now();
        let _ = classify("DELETE", &long);
        let _ = classify("POST", &long);
        assert!(t.elapsed().as_secs() < 2);
    }

    #[test]
    fn catalog_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for r in routes() {
            assert!(
                seen.insert((r.server, r.method, r.pattern)),
                "duplicate {r:?}"
            );
            assert!(r.pattern.starts_with('/'), "{r:?}");
            for id in r.ids {
                if id.source == IdSource::Path {
                    assert!(
                        r.pattern.contains(&format!("{{{}}}", id.field))
                            || r.pattern.contains(&format!("{{{}...}}", id.field)),
                        "{r:?}: no path param {}",
                        id.field
                    );
                }
            }
            assert!(
                r.operation
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
            );
            assert!(!r.public || r.operation == "GetHealth");
        }
        // one access kind per action, so that granting an action means one thing
        let mut access = std::collections::HashMap::new();
        for r in routes() {
            let a = *access.entry(r.operation).or_insert(r.access);
            assert_eq!(a, r.access, "{} has mixed access kinds", r.operation);
        }
    }
}
