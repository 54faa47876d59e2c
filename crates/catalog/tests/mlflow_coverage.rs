//! The catalog against the live, installed MLflow (the project's `.venv`).
//!
//! Runs `scripts/introspect_mlflow_routes.py` and fails when
//! * MLflow serves a (router, method, route) the catalog lacks, or the catalog has one
//!   MLflow does not serve (stale);
//! * for a probe path, `classify` picks another route, other path parameters, or a route
//!   where MLflow would answer 404/405 (probes: every route with sample values, every
//!   parameter replaced by every literal word of its sibling routes, every method);
//! * a protobuf RPC's action is not named after its request message (documented renames
//!   aside);
//! * mlgate's camelCase → snake_case folding disagrees with a protobuf `json_name`.
//!
//! Without the venv this test FAILS (it never passes silently): run
//! `bash scripts/lib/venv.sh` (CI creates it).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mlgate_catalog::{Classified, Server, classify, normalize_path, routes};
use serde_json::{Value, json};

const PINNED_MLFLOW: &str = "3.17.2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: the MLflow coverage test needs the project's Python env. \
         Run `bash scripts/lib/venv.sh` from the repository root (CI creates it).",
        py.display()
    );
    py
}

fn run_script(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let script = root().join("scripts/introspect_mlflow_routes.py");
    let mut child = Command::new(python())
        .arg(&script)
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .env_remove("_MLFLOW_STATIC_PREFIX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    {
        let mut sin = child.stdin.take().expect("stdin");
        if let Some(data) = stdin {
            sin.write_all(data).expect("write probes");
        }
    }
    let out = child
        .wait_with_output()
        .expect("wait for introspection script");
    assert!(
        out.status.success(),
        "introspect_mlflow_routes.py {args:?} failed ({}). If MLflow is not importable, run \
         `bash scripts/lib/venv.sh`.\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script output is JSON")
}

fn server_name(s: Server) -> &'static str {
    match s {
        Server::FastApi => "fastapi",
        Server::Flask => "flask",
    }
}

type Key = (String, String, String); // (server, method, pattern)

#[test]
fn catalog_matches_the_installed_mlflow() {
    let dump = run_script(&[], None);
    assert_eq!(
        dump["mlflow_version"], PINNED_MLFLOW,
        "the installed MLflow is not the pinned version; update the catalog for it"
    );
    assert_eq!(
        dump["mounts"],
        json!([""]),
        "MLflow's FastAPI app mounts changed"
    );

    // --- camelCase folding is exact for every field of the served request messages
    let mismatch = &dump["proto_fields"]["json_name_mismatch"];
    assert_eq!(
        mismatch,
        &json!([]),
        "protobuf json_name differs from mlgate's camelCase folding for these fields"
    );
    assert!(dump["proto_fields"]["checked"].as_u64().unwrap() > 500);

    // --- the served set equals the catalog set
    let mut served: BTreeSet<Key> = BTreeSet::new();
    for r in dump["routes"].as_array().unwrap() {
        let server = r["server"].as_str().unwrap();
        let kind = r["kind"].as_str().unwrap();
        assert!(
            kind.ends_with("APIRoute") || kind == "Rule",
            "unexpected route kind {kind} at {}",
            r["rule"]
        );
        let methods = r["methods"].as_array().unwrap();
        assert!(!methods.is_empty(), "route without methods: {r}");
        for m in methods {
            let m = m.as_str().unwrap();
            assert!(
                !(server == "fastapi" && m == "HEAD"),
                "a FastAPI route now accepts HEAD ({}): classify() assumes only Flask does",
                r["rule"]
            );
            served.insert((
                server.into(),
                m.into(),
                r["pattern"].as_str().unwrap().into(),
            ));
        }
    }
    let catalog: BTreeSet<Key> = routes()
        .iter()
        .map(|r| {
            (
                server_name(r.server).into(),
                r.method.into(),
                r.pattern.into(),
            )
        })
        .collect();
    let missing: Vec<_> = served.difference(&catalog).collect();
    let stale: Vec<_> = catalog.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "catalog out of date with MLflow {PINNED_MLFLOW}.\nServed by MLflow, missing from the \
         catalog ({}):\n{missing:#?}\nIn the catalog, not served by MLflow ({}):\n{stale:#?}",
        missing.len(),
        stale.len()
    );
    eprintln!(
        "MLflow serves {} (router, method, route) triples over {} registered routes; catalog has {} routes",
        served.len(),
        dump["routes"].as_array().unwrap().len(),
        routes().len()
    );

    // --- protobuf operations are named after their request messages
    let renames: BTreeMap<&str, &str> = [
        ("GetLatestVersions", "GetLatestModelVersions"),
        (
            "GetModelVersionDownloadUri",
            "GetDownloadURIForModelVersionArtifacts",
        ),
        ("DownloadArtifact", "GetArtifact"),
        ("UploadArtifact", "PutArtifact"),
    ]
    .into_iter()
    .collect();
    let mut proto_count = 0;
    for rpc in dump["proto_rpcs"].as_array().unwrap() {
        if rpc["served_by_server"] != json!(true) {
            continue;
        }
        proto_count += 1;
        let msg = rpc["request"].as_str().unwrap();
        let base = msg.strip_suffix("Request").unwrap_or(msg);
        let base = base.strip_suffix("V3").unwrap_or(base);
        let expected = renames.get(base).copied().unwrap_or(base);
        let method = rpc["method"].as_str().unwrap();
        for pattern in rpc["served_patterns"].as_array().unwrap() {
            let pattern = pattern.as_str().unwrap();
            let ours: Vec<_> = routes()
                .iter()
                .filter(|r| r.method == method && r.pattern == pattern)
                .map(|r| r.operation)
                .collect();
            assert!(
                !ours.is_empty(),
                "proto RPC {method} {pattern} not in the catalog"
            );
            for op in ours {
                assert_eq!(op, expected, "{method} {pattern} (request message {msg})");
            }
        }
    }
    assert!(proto_count > 150, "only {proto_count} protobuf RPCs found");

    // --- differential routing: classify() == MLflow's dispatch
    let probes = probes(&served);
    let payload = serde_json::to_vec(&probes).unwrap();
    let resolved = run_script(&["--resolve"], Some(&payload));
    let resolved = resolved.as_array().unwrap();
    assert_eq!(resolved.len(), probes.len());
    let mut failures = Vec::new();
    let mut matched = 0;
    for ((method, path), theirs) in probes.iter().zip(resolved) {
        let ours = match classify(method, path) {
            Classified::Route { route, path_params } => Some((route, path_params)),
            Classified::Unknown => None,
        };
        match (ours, theirs) {
            (None, Value::Null) => {}
            (Some((route, params)), Value::Object(t)) => {
                matched += 1;
                let our_params: BTreeMap<String, String> = params
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                let their_params: BTreeMap<String, String> = t["params"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let want_method = if method == "HEAD" {
                    "GET"
                } else {
                    method.as_str()
                };
                if t["server"] != server_name(route.server)
                    || t["pattern"] != route.pattern
                    || our_params != their_params
                    || route.method != want_method
                {
                    failures.push(format!(
                        "{method} {path}: mlgate → {} {} {} {our_params:?}; MLflow → {} {} {their_params:?}",
                        server_name(route.server), route.method, route.pattern, t["server"], t["pattern"]
                    ));
                }
            }
            (Some((route, _)), _) => failures.push(format!(
                "{method} {path}: mlgate → {} {}; MLflow serves nothing",
                route.method, route.pattern
            )),
            (None, t) => {
                // Tolerated: MLflow matching an empty parameter (mlgate requires non-empty).
                let empty_param = t["params"]
                    .as_object()
                    .is_some_and(|p| p.values().any(|v| v == ""));
                if !empty_param {
                    failures.push(format!("{method} {path}: mlgate → Unknown; MLflow → {t}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} probes routed differently from MLflow:\n{}",
        failures.len(),
        probes.len(),
        failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "{} probes agree with MLflow ({matched} routed)",
        probes.len()
    );
    assert!(matched > served.len() / 2);
}

/// Sample and adversarial probe paths (all canonical) for every served route.
fn probes(served: &BTreeSet<Key>) -> Vec<(String, String)> {
    let patterns: BTreeSet<&str> = served.iter().map(|(_, _, p)| p.as_str()).collect();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for p in &patterns {
        let params = param_names(p);
        if params.is_empty() {
            paths.insert(p.to_string());
            paths.insert(format!("{p}/"));
            paths.insert(format!("{p}/x"));
            continue;
        }
        let sample = |name: &str, multi: bool| {
            if multi {
                format!("s-{name}/part")
            } else {
                format!("s-{name}")
            }
        };
        // all params sampled
        let base: Vec<String> = params.iter().map(|(n, m)| sample(n, *m)).collect();
        paths.insert(fill(p, &base));
        // one parameter at a time replaced by confusable words
        let siblings = sibling_words(p, &patterns);
        for (i, (_, multi)) in params.iter().enumerate() {
            let mut candidates: Vec<String> = siblings.clone();
            candidates.extend(["1".into(), "a b".into(), "x.y".into(), "@org".into()]);
            if *multi {
                let extra: Vec<String> = siblings
                    .iter()
                    .flat_map(|w| [format!("a/{w}"), format!("{w}/b"), format!("a/{w}/b")])
                    .collect();
                candidates.extend(extra);
                candidates.push("a/".into());
            }
            for c in candidates {
                let mut v = base.clone();
                v[i] = c;
                paths.insert(fill(p, &v));
            }
        }
    }
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for raw in paths {
        let Ok(path) = normalize_path(&raw) else {
            continue;
        };
        if !seen.insert(path.clone()) {
            continue;
        }
        for m in methods {
            out.push((m.to_string(), path.clone()));
        }
    }
    out
}

fn param_names(pattern: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        let inner = &rest[start + 1..end];
        match inner.strip_suffix("...") {
            Some(n) => out.push((n.to_string(), true)),
            None => out.push((inner.to_string(), false)),
        }
        rest = &rest[end + 1..];
    }
    out
}

fn fill(pattern: &str, values: &[String]) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    let mut i = 0;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(&values[i]);
        i += 1;
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Literal segments of the routes sharing this pattern's first four segments.
fn sibling_words(pattern: &str, patterns: &BTreeSet<&str>) -> Vec<String> {
    let key = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .take(4)
            .map(String::from)
            .collect()
    };
    let mine = key(pattern);
    let mut words = BTreeSet::new();
    for p in patterns {
        if key(p) != mine {
            continue;
        }
        for s in p.split('/') {
            if !s.is_empty() && !s.contains('{') {
                words.insert(s.to_string());
            }
        }
    }
    words.into_iter().collect()
}

/// Every field of every served request message that may name a resource is decided: an
/// identifier of its route (decided with the route's action, or as the read it implies), or a
/// reviewed field whose reason is written down in the catalog. Reviewed fields that no longer
/// exist, or that became identifiers, fail too. (A message field bound to a path parameter is
/// the path's identifier: the gateway refuses a request whose fields name another value.)
#[test]
fn every_field_naming_a_resource_is_decided() {
    use mlgate_catalog::{looks_like_a_reference, reviewed_fields};

    let dump = run_script(&[], None);
    let mut undecided = BTreeSet::new();
    let mut seen_reviewed = HashSet::new();
    let mut checked = 0;
    for rpc in dump["proto_rpcs"].as_array().unwrap() {
        if rpc["served_by_server"] != json!(true) {
            continue;
        }
        let method = rpc["method"].as_str().unwrap();
        for pattern in rpc["served_patterns"].as_array().unwrap() {
            let pattern = pattern.as_str().unwrap();
            for route in routes()
                .iter()
                .filter(|r| r.method == method && r.pattern == pattern)
            {
                for field in rpc["request_fields"].as_array().unwrap() {
                    let path = field["path"].as_str().unwrap();
                    if !looks_like_a_reference(path) {
                        continue;
                    }
                    checked += 1;
                    // `run_uuid` is read as `run_id` (see `ParamStyle::Message`).
                    let canonical = if path == "run_uuid" { "run_id" } else { path };
                    let is_id = route.ids.iter().any(|id| id.field == canonical);
                    let reviewed = reviewed_fields()
                        .iter()
                        .find(|r| r.operation == route.operation && r.field == path);
                    match (is_id, reviewed) {
                        (true, Some(r)) => {
                            undecided.insert(format!(
                                "{} {path}: an identifier, yet listed as reviewed ({})",
                                route.operation, r.why
                            ));
                        }
                        (true, None) => {}
                        (false, Some(r)) => {
                            seen_reviewed.insert((r.operation, r.field));
                        }
                        (false, None) => {
                            undecided.insert(format!("{} {path}", route.operation));
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 250, "only {checked} resource-like fields found");
    let stale: Vec<_> = reviewed_fields()
        .iter()
        .filter(|r| !seen_reviewed.contains(&(r.operation, r.field)))
        .map(|r| format!("{} {}", r.operation, r.field))
        .collect();
    assert!(
        undecided.is_empty() && stale.is_empty(),
        "fields that may name a resource, neither identifiers of their route nor reviewed \
         (crates/catalog/src/references.rs):\n{}\nreviewed fields MLflow no longer sends \
         there:\n{}",
        undecided.into_iter().collect::<Vec<_>>().join("\n"),
        stale.join("\n")
    );
}

/// Runs `code` with the project's Python and parses what it prints as JSON.
fn python_json(code: &str) -> Value {
    let out = Command::new(python())
        .args(["-c", code])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// The reserved trace tags are exactly the tags MLflow's client never lets a user write.
#[test]
fn reserved_trace_tags_are_mlflows_immutable_tags() {
    let immutable = python_json(
        "import json; from mlflow.utils.mlflow_tags import IMMUTABLE_TAGS; \
         print(json.dumps(sorted(IMMUTABLE_TAGS)))",
    );
    let mut ours: Vec<&str> = mlgate_catalog::RESERVED_TRACE_TAGS.to_vec();
    ours.sort_unstable();
    assert_eq!(immutable, json!(ours));
}

/// OTLP exports name the MLflow traces MLflow's own server code derives from them: protobuf
/// and JSON (hex ids where MLflow rewrites them, base64 elsewhere), odd id lengths included.
#[test]
fn otlp_trace_ids_are_mlflows() {
    let cases = python_json(
        r#"
import base64, json
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from mlflow.entities.span import Span as MlflowSpan
from mlflow.server.otel_api import _convert_otlp_json_ids_to_base64

ids = [bytes(range(1, 17)), b"\x00" * 15 + b"\x07", b"\xff" * 20, b"\x00\x00\xab"]
def mlflow_ids(request):
    return [MlflowSpan.from_otel_proto(s).trace_id
            for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
proto = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(
    spans=[Span(trace_id=i, span_id=b"\x01" * 8, name="s") for i in ids])])])
cases = [["application/x-protobuf", proto.SerializeToString().hex(), mlflow_ids(proto)]]
for top, tid, enc in [("resourceSpans", "traceId", bytes.hex),
                      ("resource_spans", "traceId", lambda b: base64.b64encode(b).decode()),
                      ("resourceSpans", "trace_id", lambda b: base64.urlsafe_b64encode(b).decode())]:
    body = json.dumps({top: [{"scopeSpans": [{"spans": [
        {tid: enc(i), "spanId": "0101010101010101", "name": "s"} for i in ids]}]}]}).encode()
    parsed = ExportTraceServiceRequest()
    Parse(_convert_otlp_json_ids_to_base64(body), parsed, ignore_unknown_fields=True)
    cases.append(["application/json", body.hex(), mlflow_ids(parsed)])
print(json.dumps(cases))
"#,
    );
    for case in cases.as_array().expect("cases") {
        let body = hex::decode(case[1].as_str().expect("hex")).expect("hex");
        let params = mlgate_catalog::read_otlp(case[0].as_str(), None, &body, 1 << 20)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let expected: Vec<&str> = case[2]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_str().expect("id"))
            .collect();
        assert_eq!(
            params.try_str_values("trace_ids").expect("ids"),
            expected,
            "{case}"
        );
    }
}

/// A list of strings from the introspection dump.
fn strings(list: &Value) -> Vec<&str> {
    let items = list.as_array().expect("a list");
    items
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

/// The catalogued routes of each served protobuf RPC, with the RPC's introspection record.
fn served_rpc_routes(dump: &Value) -> Vec<(&Value, &'static mlgate_catalog::Route)> {
    let mut out = Vec::new();
    for rpc in dump["proto_rpcs"].as_array().unwrap() {
        if rpc["served_by_server"] != json!(true) {
            continue;
        }
        let method = rpc["method"].as_str().unwrap();
        for pattern in rpc["served_patterns"].as_array().unwrap() {
            let pattern = pattern.as_str().unwrap();
            out.extend(
                routes()
                    .iter()
                    .filter(|r| r.method == method && r.pattern == pattern)
                    .map(|route| (rpc, route)),
            );
        }
    }
    out
}

/// Every read whose answer MLflow gives as a list of items has a filtering decision, and every
/// listing filtered item by item reads its items from a list MLflow answers.
#[test]
fn every_listing_mlflow_answers_has_a_filtering_decision() {
    use mlgate_catalog::{Access, Filtering};

    let dump = run_script(&[], None);
    let mut undecided = BTreeSet::new();
    let mut checked = 0;
    for (rpc, route) in served_rpc_routes(&dump) {
        let lists = strings(&rpc["response_lists"]);
        if route.access != Access::Read || lists.is_empty() {
            continue;
        }
        checked += 1;
        match route.filtering {
            None => {
                undecided.insert(format!("{} ({lists:?})", route.operation));
            }
            Some(Filtering::Items(listing)) => assert!(
                lists.contains(&listing.items),
                "{}: MLflow answers {lists:?}, the listing reads {}",
                route.operation,
                listing.items
            ),
            Some(_) => {}
        }
    }
    assert!(checked > 30, "only {checked} list-like reads found");
    assert!(
        undecided.is_empty(),
        "reads answering lists without a filtering decision (crates/catalog/src/facts.rs): \
         {undecided:?}"
    );
}

/// A request field naming who wrote something (`user_id`, `created_by`, `updated_by`) that
/// MLflow's handler reads is where the route's author fact says; one the handler ignores is
/// not an author field.
#[test]
fn author_facts_are_the_author_fields_mlflow_reads() {
    use mlgate_catalog::Author;

    let dump = run_script(&[], None);
    let mut wrong = BTreeSet::new();
    let mut checked = 0;
    for (rpc, route) in served_rpc_routes(&dump) {
        let reads = strings(&rpc["handler_reads"]);
        let read_author = ["user_id", "created_by", "updated_by"]
            .into_iter()
            .find(|field| reads.contains(field));
        checked += usize::from(read_author.is_some());
        // The field the fact overwrites, and whether it is one of the three named fields
        // (the tag authors write a tag of a field the handler must read).
        let (ours, named) = match route.author {
            None => (None, true),
            Some(Author::RunCreator) => (Some("user_id"), true),
            Some(Author::CreatedBy) => (Some("created_by"), true),
            Some(Author::UpdatedBy) => (Some("updated_by"), true),
            Some(Author::RunTag) => (Some("key"), false),
            Some(Author::RunTags | Author::DatasetTags) => (Some("tags"), false),
        };
        let agrees = match named {
            true => ours == read_author,
            false => ours.is_some_and(|field| reads.contains(&field)),
        };
        if !agrees {
            wrong.insert(format!(
                "{}: the handler reads {read_author:?} (of {reads:?}), the author fact says \
                 {ours:?}",
                route.operation
            ));
        }
    }
    assert!(checked > 10, "only {checked} author fields found");
    assert!(
        wrong.is_empty(),
        "author facts (crates/catalog/src/facts.rs): {wrong:?}"
    );
}
