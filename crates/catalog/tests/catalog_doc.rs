//! `docs/action-catalog.md` is generated from the catalog and the shipped role policies;
//! this test fails when the committed file is stale. Regenerate with
//! `MLGATE_UPDATE_DOCS=1 cargo test -p mlgate-catalog --test catalog_doc`.
//!
//! It also pins what the three shipped role policies mean (evaluated with `mlgate-policy`):
//! readers get every read action except a short, documented list and no write;
//! model-approvers get the readers' actions plus registry writes on registered models and
//! versions only; admins get everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use mlgate_catalog::{
    Access, GRAPHQL_MUTATION_OPERATION, IdSource, ResourceKind, Route, Server, execute_api_arn,
    routes,
};
use mlgate_policy::{Context, NamedPolicy, PolicyDocument, Request, evaluate};

/// Read actions readers do not get, and why (also printed in the doc).
const NOT_FOR_READERS: &[(&str, &str)] = &[
    (
        "GetWebhook",
        "webhook configuration (target URLs); MLflow itself reserves webhooks for admins",
    ),
    ("ListWebhooks", "same as GetWebhook"),
    (
        "GetAssistantConfig",
        "the Assistant is a server-side agent that admins enable",
    ),
    ("ListAssistantProviders", "same as GetAssistantConfig"),
    ("GetAssistantProviderHealth", "same as GetAssistantConfig"),
    ("ListAssistantProviderModels", "same as GetAssistantConfig"),
];

/// Write actions model-approvers get on top of the readers' actions.
const APPROVER_WRITES: &[&str] = &[
    "CreateRegisteredModel",
    "UpdateRegisteredModel",
    "SetRegisteredModelTag",
    "DeleteRegisteredModelTag",
    "SetRegisteredModelAlias",
    "DeleteRegisteredModelAlias",
    "CreateModelVersion",
    "UpdateModelVersion",
    "SetModelVersionTag",
    "DeleteModelVersionTag",
    "TransitionModelVersionStage",
];

const ROLES: [&str; 3] = ["admins", "readers", "model-approvers"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_policy(rel: &str) -> NamedPolicy {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let document = PolicyDocument::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not a valid policy: {e}", path.display()));
    NamedPolicy {
        name: rel.to_string(),
        document,
    }
}

fn allows(policy: &NamedPolicy, action: &str, resource: &str) -> bool {
    let context = Context::default();
    let request = Request {
        action,
        resource,
        principal: None,
        context: &context,
    };
    evaluate([policy], &request).is_allowed()
}

/// Every action with its routes, in a stable order.
fn actions() -> BTreeMap<&'static str, Vec<&'static Route>> {
    let mut out: BTreeMap<&'static str, Vec<&'static Route>> = BTreeMap::new();
    for r in routes() {
        out.entry(r.operation).or_default().push(r);
    }
    out
}

const ANY_RESOURCE: &str = "arn:mlflow:us-east-1:111122223333:experiment/1";

#[test]
fn role_policies_mean_what_they_say() {
    let policies: BTreeMap<&str, NamedPolicy> = ROLES
        .iter()
        .map(|r| (*r, load_policy(&format!("policies/{r}.json"))))
        .collect();
    let actions = actions();
    let excluded: BTreeSet<&str> = NOT_FOR_READERS.iter().map(|(a, _)| *a).collect();
    for (op, rs) in &actions {
        let action = format!("mlflow:{op}");
        let access = rs[0].access;
        let reader = allows(&policies["readers"], &action, ANY_RESOURCE);
        let approver = allows(&policies["model-approvers"], &action, ANY_RESOURCE);
        assert!(
            allows(&policies["admins"], &action, ANY_RESOURCE),
            "admins lack {action}"
        );
        match access {
            Access::Read => {
                assert_eq!(
                    reader,
                    !excluded.contains(op),
                    "readers and {action}: every read except NOT_FOR_READERS (update policies/readers.json)"
                );
                assert_eq!(
                    approver, reader,
                    "model-approvers must read what readers read ({action})"
                );
            }
            Access::Write => {
                assert!(!reader, "readers must not get the write {action}");
                assert_eq!(
                    approver,
                    APPROVER_WRITES.contains(op),
                    "model-approvers and {action} (update policies/model-approvers.json)"
                );
                if approver {
                    for r in rs {
                        assert!(
                            matches!(
                                r.resource,
                                ResourceKind::RegisteredModel | ResourceKind::ModelVersion
                            ),
                            "{action} on {:?} is not a registry write",
                            r.resource
                        );
                    }
                }
            }
        }
    }
    for name in NOT_FOR_READERS
        .iter()
        .map(|(a, _)| a)
        .chain(APPROVER_WRITES)
    {
        assert!(actions.contains_key(name), "{name} is not a catalog action");
    }
    let mutation = format!("mlflow:{GRAPHQL_MUTATION_OPERATION}");
    assert!(allows(&policies["admins"], &mutation, ANY_RESOURCE));
    assert!(!allows(&policies["readers"], &mutation, ANY_RESOURCE));
    assert!(!allows(
        &policies["model-approvers"],
        &mutation,
        ANY_RESOURCE
    ));
    let invoke = execute_api_arn(
        "us-east-1",
        "111122223333",
        "mlgate",
        "prod",
        "POST",
        "/api/2.0/mlflow/runs/create",
    );
    assert!(allows(&policies["admins"], "execute-api:Invoke", &invoke));
    assert!(!allows(&policies["readers"], "execute-api:Invoke", &invoke));
    assert!(!allows(
        &policies["model-approvers"],
        "execute-api:Invoke",
        &invoke
    ));
}

#[test]
fn article_policies_work_verbatim() {
    let arn = |method: &str, path: &str| {
        execute_api_arn("us-west-2", "111122223333", "a1b2c3", "prod", method, path)
    };
    let reader = load_policy("policies/article/restApiReader.json");
    let approver = load_policy("policies/article/restApiModelApprover.json");
    let admin = load_policy("policies/article/restApiAdmin.json");
    let ui_reader = load_policy("policies/article/lambda-readers.json");
    let ui_approver = load_policy("policies/article/lambda-model-approvers.json");
    let _ = load_policy("policies/article/lambda-admins.json");
    let ok = |p: &NamedPolicy, m: &str, path: &str| allows(p, "execute-api:Invoke", &arn(m, path));
    assert!(ok(&reader, "GET", "/api/2.0/mlflow/experiments/get"));
    assert!(ok(&reader, "POST", "/api/2.0/mlflow/runs/search"));
    assert!(!ok(&reader, "POST", "/api/2.0/mlflow/runs/create"));
    assert!(!ok(
        &reader,
        "POST",
        "/api/2.0/mlflow/registered-models/get-latest-versions"
    ));
    assert!(ok(
        &approver,
        "POST",
        "/api/2.0/mlflow/model-versions/transition-stage"
    ));
    assert!(ok(
        &approver,
        "POST",
        "/api/2.0/mlflow/registered-models/create"
    ));
    assert!(!ok(
        &approver,
        "PATCH",
        "/api/2.0/mlflow/model-versions/update"
    ));
    assert!(!ok(&approver, "POST", "/api/2.0/mlflow/runs/create"));
    assert!(ok(
        &admin,
        "DELETE",
        "/api/2.0/mlflow/registered-models/delete"
    ));
    assert!(ok(&ui_reader, "GET", "/ajax-api/2.0/mlflow/runs/get"));
    assert!(ok(&ui_reader, "GET", "/model-versions/get-artifact"));
    assert!(!ok(&ui_reader, "GET", "/api/2.0/mlflow/runs/get"));
    assert!(ok(
        &ui_approver,
        "DELETE",
        "/ajax-api/2.0/mlflow/model-versions/delete"
    ));
    for p in [&reader, &approver, &admin] {
        assert!(
            !allows(p, "mlflow:GetRun", ANY_RESOURCE),
            "{} grants mlflow:* actions",
            p.name
        );
    }
}

#[test]
fn action_catalog_doc_is_current() {
    let generated = render();
    let path = root().join("docs/action-catalog.md");
    if std::env::var_os("MLGATE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/action-catalog.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/action-catalog.md is stale: regenerate it with \
         `MLGATE_UPDATE_DOCS=1 cargo test -p mlgate-catalog --test catalog_doc` and commit it"
    );
}

fn kind(k: ResourceKind) -> String {
    format!("{k:?}")
}

fn display_routes(rs: &[&Route]) -> Vec<String> {
    // Fold /api/X and /ajax-api/X twins, and Flask twins of FastAPI routes.
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let all: BTreeSet<(&str, &str)> = rs.iter().map(|r| (r.method, r.pattern)).collect();
    let mut out = Vec::new();
    for r in rs {
        let (shown, key) = if let Some(rest) = r.pattern.strip_prefix("/api/") {
            if all.contains(&(r.method, &*format!("/ajax-api/{rest}"))) {
                (format!("/[ajax-]api/{rest}"), format!("/api/{rest}"))
            } else {
                (r.pattern.to_string(), r.pattern.to_string())
            }
        } else if let Some(rest) = r.pattern.strip_prefix("/ajax-api/") {
            if all.contains(&(r.method, &*format!("/api/{rest}"))) {
                (format!("/[ajax-]api/{rest}"), format!("/api/{rest}"))
            } else {
                (r.pattern.to_string(), r.pattern.to_string())
            }
        } else {
            (r.pattern.to_string(), r.pattern.to_string())
        };
        if !seen.insert((r.method.to_string(), key)) {
            continue;
        }
        let native = rs
            .iter()
            .any(|o| o.method == r.method && o.pattern == r.pattern && o.server == Server::FastApi);
        let public = if r.public { " (public)" } else { "" };
        out.push(format!(
            "`{} {}`{}{}",
            r.method,
            shown,
            if native { "†" } else { "" },
            public
        ));
    }
    out
}

fn display_ids(rs: &[&Route]) -> String {
    let mut ids: Vec<String> = Vec::new();
    for r in rs {
        for id in r.ids {
            let s = match id.source {
                IdSource::Path => format!("path `{{{}}}`→{}", id.field, kind(id.refers_to)),
                IdSource::Params => format!(
                    "`{}`{}→{}",
                    id.field,
                    if id.many { "[]" } else { "" },
                    kind(id.refers_to)
                ),
                IdSource::Header => format!("header `{}`→{}", id.field, kind(id.refers_to)),
                IdSource::Judges => format!(
                    "endpoints of the judges in `{}`→{}",
                    id.field,
                    kind(id.refers_to)
                ),
            };
            let s = match id.implies {
                Some(operation) => format!("{s} as `mlflow:{operation}`"),
                None => s,
            };
            if !ids.contains(&s) {
                ids.push(s);
            }
        }
    }
    if ids.is_empty() {
        "—".into()
    } else {
        ids.join(", ")
    }
}

fn render() -> String {
    let policies: Vec<(&str, NamedPolicy)> = ROLES
        .iter()
        .map(|r| (*r, load_policy(&format!("policies/{r}.json"))))
        .collect();
    let actions = actions();
    let yes = |op: &str| -> Vec<&'static str> {
        policies
            .iter()
            .map(|(_, p)| {
                if allows(p, &format!("mlflow:{op}"), ANY_RESOURCE) {
                    "✓"
                } else {
                    ""
                }
            })
            .collect()
    };
    let mut d = String::new();
    let n_routes = routes().len();
    let n_fastapi = routes()
        .iter()
        .filter(|r| r.server == Server::FastApi)
        .count();
    let _ = writeln!(d, "# Action catalog");
    let _ = writeln!(d);
    let _ = writeln!(
        d,
        "<!-- Generated from crates/catalog (routes) and policies/*.json (role columns). Do not edit: \
         run `MLGATE_UPDATE_DOCS=1 cargo test -p mlgate-catalog --test catalog_doc`. -->"
    );
    let _ = writeln!(d);
    let _ = writeln!(
        d,
        "Every route the pinned MLflow server (3.17.2, default `mlflow server`) serves, grouped by the \
         IAM action mlgate requires: {} actions over {n_routes} (router, method, route) entries ({n_fastapi} \
         native FastAPI, the rest Flask). `crates/catalog/tests/mlflow_coverage.rs` checks the list against the \
         installed MLflow. A request matching no route is denied.",
        actions.len()
    );
    let _ = writeln!(d);
    d.push_str(
        "How to read the table:\n\
         \n\
         * **Action** is `mlflow:<Operation>`; `sagemaker-mlflow:<Operation>` is accepted as an alias. \
         Operations are named after the MLflow REST method (the protobuf request message), except: the v3 \
         trace RPCs share their v2 action (`StartTraceV3` → `StartTrace`, ...), SageMaker's names are used \
         where they differ (`GetLatestModelVersions`, `GetDownloadURIForModelVersionArtifacts`, `AccessUI`), \
         and artifact content downloads/uploads are `GetArtifact`/`PutArtifact` whichever route carries them.\n\
         * **Access**: `Read` never changes tracking, registry or server state; `Write` may.\n\
         * **Resource**: what authorization is anchored on. Creations and searches inside an experiment are \
         anchored on the `Experiment`. A `RegisteredModel` or `ModelVersion` that is a prompt (tagged \
         `mlflow.prompt.is_prompt=true`) is decided on `prompt/<name>[/version/<n>]` instead of \
         `registered-model/...` (see [policy-reference.md](policy-reference.md#mlflow-resource-arns)).\n\
         * **Identifiers**: `field`→Kind is a request field as MLflow reads it (query string for a GET with a \
         query, else the JSON body; `a[].b` = field `b` of every element of array `a`; `[]` = several ids); \
         path `{p}` is a path parameter; header is a request header. The column is the union over the action's routes. \
         An identifier followed by *as* `mlflow:X` is a reference to another resource (a source, a resource used, an existing \
         trace rewritten): it is decided as `mlflow:X` on that resource, in addition to the action on the \
         request's own resources (see [policy-reference.md](policy-reference.md#references-to-other-resources)).\n\
         * **Routes**: `/[ajax-]api/...` stands for both the `/api/...` and the `/ajax-api/...` route; † marks a \
         native FastAPI route (MLflow dispatches it before Flask; `HEAD` is served by the Flask `GET` twin).\n\
         * **admins / readers / model-approvers**: whether `policies/<role>.json` allows the action \
         (evaluated with `mlgate-policy`, any resource).\n\n",
    );
    d.push_str(
        "| Action | Access | Resource | Identifiers | admins | readers | model-approvers | Routes |\n\
         |---|---|---|---|:-:|:-:|:-:|---|\n",
    );
    for (op, rs) in &actions {
        let roles = yes(op);
        let mut resources: Vec<String> = rs.iter().map(|r| kind(r.resource)).collect();
        resources.dedup();
        let resources: BTreeSet<String> = resources.into_iter().collect();
        let _ = writeln!(
            d,
            "| `mlflow:{op}` | {:?} | {} | {} | {} | {} | {} | {} |",
            rs[0].access,
            resources.into_iter().collect::<Vec<_>>().join(", "),
            display_ids(rs),
            roles[0],
            roles[1],
            roles[2],
            display_routes(rs).join("<br>")
        );
    }
    let roles = yes(GRAPHQL_MUTATION_OPERATION);
    let _ = writeln!(
        d,
        "| `mlflow:{GRAPHQL_MUTATION_OPERATION}` | Write | Global | — | {} | {} | {} | `GET /graphql`, `POST /graphql`: a `mutation`'s `testMutation` field (see below) |",
        roles[0], roles[1], roles[2]
    );
    d.push_str(
        "\n## Decisions\n\n\
         * **Public routes**: only `GET /health` (FastAPI, and its Flask twin for `HEAD`) needs no \
         credentials, so load balancers can probe it. `/version`, `/api/3.0/mlflow/server-info`, the UI \
         (`/`, `/static-files/...`, `/build/...`) need an authenticated caller; every role may call them.\n\
         * **GraphQL**: `GET|POST /graphql` (MLflow reads the JSON body for `GET` too) is decided root \
         field by root field (`mlgate_catalog::graphql_request`): each field is the action of its REST twin, \
         on the resources its `input` argument names, and all must be allowed (see the GraphQL table below and \
         docs/policy-reference.md). `mlflow:GraphQLQuery` is only the action of `test`, `__typename` and \
         introspection, `mlflow:GraphQLMutation` of `testMutation`.\n\
         * **`OPTIONS`** is not classified (Flask answers it without running a view); **`HEAD`** is the Flask \
         `GET` route.\n\
         * **Not implemented by MLflow** (catalogued because they are served, answering an error): \
         `SearchUnifiedTraces`, `GetOnlineTraceDetails`, and `POST /[ajax-]api/2.0mlflow/experiments/search-datasets` \
         (sic: the proto path lacks a `/`; the UI uses `POST /ajax-api/2.0/mlflow/experiments/search-datasets`).\n\
         * **`SendUiTelemetry`** (`POST /ajax-api/3.0/mlflow/ui-telemetry`) is classified as a read: it \
         records UI usage events, changes no tracking data, and the UI sends it whoever is signed in.\n\
         * **`StreamAssistantResponse`** is a `GET` but a write: it runs the Assistant's pending turn.\n\
         * **Static prefix**: MLflow's `--static-prefix` is not supported (the catalog is the unprefixed route set).\n\
         \n## GraphQL root fields\n\n\
         Each root field of MLflow's GraphQL schema is decided as this action, on the resources its `input` \
         names (resolved as the REST route's); any other root field is denied.\n\n\
         | Root field | Action |\n|---|---|\n",
    );
    for (field, operation) in mlgate_catalog::graphql_root_fields() {
        let _ = writeln!(d, "| `{field}` | `mlflow:{operation}` |");
    }
    d.push_str("\n## Read actions readers do not get\n\n");
    for (a, why) in NOT_FOR_READERS {
        let _ = writeln!(d, "* `mlflow:{a}`: {why}.");
    }
    d.push_str(
        "\n`policies/readers.json` lists the read actions explicitly instead of `mlflow:Get*`, `mlflow:List*`, \
         `mlflow:Search*`: a wildcard would silently grant future actions, and `mlflow:Get*` already matches a \
         write (`mlflow:GetOrCreateUserQueue` creates a review queue).\n\
         \n## Model-approver writes\n\n",
    );
    for a in APPROVER_WRITES {
        let _ = writeln!(d, "* `mlflow:{a}`");
    }
    d.push_str(
        "\nNot granted: renaming or deleting registered models and versions, and everything on runs, \
         experiments and artifacts.\n",
    );
    d
}
