//! Stage 5: turn a route's identifiers into resource ARNs and condition keys.
//!
//! Two halves: [`plan`] is pure (identifiers → ARNs, or the lookups still needed), and
//! [`Resolver`] does the lookups in MLflow (run, logged model or trace → its experiment;
//! experiment name → id) with caches. A lookup that fails is an error response (404 in
//! MLflow's shape when MLflow says the resource does not exist, 502 when MLflow is down),
//! never a default allow.

mod arn;
mod context;

use std::sync::Arc;

use http::HeaderMap;
use mlgate_catalog::{IdField, IdSource, Params, ResourceKind, Route};
use moka::future::Cache;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::GatewayError;
use crate::forward::Upstream;

use arn::{artifact_owner, id_segment};

pub use arn::ArnScope;
pub use context::global_context;

/// MLflow's default experiment, which its store uses when a request names none.
const DEFAULT_EXPERIMENT_ID: &str = "0";

/// Entries kept in the child → experiment cache. The mapping never changes, so no TTL.
const PARENT_CACHE_CAPACITY: u64 = 100_000;

/// Experiment names and tags change: cached briefly, and dropped when a write through mlgate
/// changes them ([`Resolver::forget_experiment`]).
const EXPERIMENT_FACTS_TTL: std::time::Duration = std::time::Duration::from_secs(10);
const EXPERIMENT_FACTS_CAPACITY: u64 = 10_000;

/// Operations after which an experiment's name or tags may have changed.
pub fn changes_experiment(operation: &str) -> bool {
    matches!(
        operation,
        "UpdateExperiment"
            | "SetExperimentTag"
            | "DeleteExperimentTag"
            | "DeleteExperiment"
            | "RestoreExperiment"
    )
}

/// The condition key naming who created the resource through mlgate.
pub const RESOURCE_CREATOR: &str = "mlflow:ResourceCreator";

/// The condition key holding the new name of a rename (UpdateExperiment,
/// RenameRegisteredModel).
pub const NEW_NAME: &str = "mlflow:NewName";
/// The tag keys a tag write sets or deletes, so a policy can allow some tags and not others.
pub const TAG_KEYS: &str = "mlflow:TagKeys";

/// The new name of an experiment rename, if the plan is one. The pipeline decides such a rename
/// a second time as if the experiment already had that name, so a policy that scopes a team to
/// `mlflow:ExperimentName` `team-a/*` cannot move an experiment out of (or into) its prefix.
pub fn renamed_experiment<'a>(route: &Route, plan: &'a Plan) -> Option<&'a str> {
    (route.operation == "UpdateExperiment")
        .then(|| {
            plan.context
                .iter()
                .find(|(key, _)| *key == NEW_NAME)
                .map(|(_, v)| v.as_str())
        })
        .flatten()
}

/// What the condition keys say about one experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExperimentFacts {
    pub name: String,
    pub tags: Vec<(String, String)>,
    /// Who created it through mlgate (from mlgate's store, not MLflow).
    pub creator: Option<String>,
}

impl ExperimentFacts {
    /// `mlflow:ExperimentName` and `mlflow:ExperimentTag/<k>`.
    pub fn context(&self) -> Vec<(String, String)> {
        let mut keys = vec![("mlflow:ExperimentName".to_owned(), self.name.clone())];
        for (k, v) in &self.tags {
            keys.push((format!("mlflow:ExperimentTag/{k}"), v.clone()));
        }
        if let Some(creator) = &self.creator {
            keys.push((RESOURCE_CREATOR.to_owned(), creator.clone()));
        }
        keys
    }

    fn from_answer(json: &serde_json::Value) -> Option<ExperimentFacts> {
        let experiment = json.get("experiment")?;
        let name = experiment.get("name")?.as_str()?.to_owned();
        let tags = experiment
            .get("tags")
            .and_then(|t| t.as_array())
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| {
                        Some((
                            t.get("key")?.as_str()?.to_owned(),
                            t.get("value")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(ExperimentFacts {
            name,
            tags,
            creator: None,
        })
    }
}

/// A resource that needs a lookup in MLflow before its ARN is known.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// A run, a logged model or a trace: ARN under its experiment.
    Child { kind: Child, id: String },
    /// An experiment named by name (ids are what ARNs use).
    ExperimentNamed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Child {
    Run,
    LoggedModel,
    Trace,
}

/// What the route's identifiers say, before any lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub arns: Vec<String>,
    pub lookups: Vec<Lookup>,
    /// Route-specific condition keys (`mlflow:TargetStage`, `mlflow:Alias`, ...).
    pub context: Vec<(&'static str, String)>,
}

/// Reads `route`'s identifiers from the path, the request fields and the headers.
pub fn plan(
    scope: &ArnScope,
    route: &Route,
    path_params: &[(&'static str, String)],
    params: &Params,
    headers: &HeaderMap,
) -> Result<Plan, GatewayError> {
    let mut plan = Plan::default();
    let single = |field: &str| -> Result<Option<&str>, GatewayError> {
        let ids = route.ids.iter().find(|id| id.field == field);
        match ids
            .map(|id| values(id, path_params, params, headers))
            .transpose()?
            .as_deref()
        {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(*one)),
            Some(_) => Err(GatewayError::BadRequest(format!(
                "several values for parameter '{field}'"
            ))),
        }
    };
    let model_name = single("name")?;
    let version_paired = route
        .ids
        .iter()
        .any(|id| id.field == "version" && id.refers_to == ResourceKind::ModelVersion);

    for id in route.ids {
        for value in values(id, path_params, params, headers)? {
            match id.refers_to {
                ResourceKind::Experiment => match id.field {
                    // The experiment being created has no id yet: the server is the resource.
                    "name" => plan
                        .context
                        .push(("mlflow:ExperimentName", value.to_owned())),
                    "experiment_name" => {
                        plan.context
                            .push(("mlflow:ExperimentName", value.to_owned()));
                        plan.lookups.push(Lookup::ExperimentNamed(value.to_owned()));
                    }
                    _ => plan
                        .arns
                        .push(scope.experiment(id_segment(id.field, value)?)),
                },
                ResourceKind::Run => plan.lookups.push(child(Child::Run, id, value)?),
                ResourceKind::LoggedModel => {
                    plan.lookups.push(child(Child::LoggedModel, id, value)?)
                }
                ResourceKind::Trace => plan.lookups.push(child(Child::Trace, id, value)?),
                ResourceKind::RegisteredModel if version_paired && id.field == "name" => {}
                ResourceKind::RegisteredModel => plan
                    .arns
                    .push(scope.registered_model(id_segment(id.field, value)?)),
                ResourceKind::ModelVersion => match id.field {
                    "version" => {
                        let name = model_name.ok_or_else(|| missing("name"))?;
                        let name = id_segment("name", name)?;
                        plan.arns
                            .push(scope.model_version(name, id_segment(id.field, value)?));
                    }
                    "alias" => plan.context.push(("mlflow:Alias", value.to_owned())),
                    _ => {
                        return Err(GatewayError::Internal(format!(
                            "unexpected model version field {}",
                            id.field
                        )));
                    }
                },
                // A path inside the artifact store names its owner; on other routes the
                // artifact field is a sub-path of the route's run or model version.
                ResourceKind::Artifact if route.resource == ResourceKind::Artifact => {
                    plan.arns.push(artifact_owner(value)?.arn(scope));
                }
                ResourceKind::Artifact | ResourceKind::Assessment => {}
                // MCP servers are `namespace/slug`; their versions are not resources of their own.
                ResourceKind::McpServer if id.field == "version" => {}
                ResourceKind::McpServer => plan.arns.push(scope.flat("mcp-server", value)),
                other => {
                    let kind = flat_kind(other).ok_or_else(|| {
                        GatewayError::Internal(format!("no ARN for identifier field {}", id.field))
                    })?;
                    plan.arns
                        .push(scope.flat(kind, id_segment(id.field, value)?));
                }
            }
        }
    }
    // MLflow's store reads a missing experiment id as the default experiment.
    let names_experiment = route
        .ids
        .iter()
        .any(|id| id.field == "experiment_id" && !id.many);
    if route.resource == ResourceKind::Experiment
        && names_experiment
        && !plan
            .arns
            .iter()
            .any(|arn| arn.starts_with(&scope.experiment("")))
    {
        plan.arns.push(scope.experiment(DEFAULT_EXPERIMENT_ID));
    }
    if route.operation == "TransitionModelVersionStage"
        && let Some(stage) = params.try_str_value("stage").map_err(param_error)?
    {
        plan.context.push(("mlflow:TargetStage", stage.to_owned()));
    }
    // A rename is decided on the new name too (see `renamed_experiment`).
    if matches!(
        route.operation,
        "UpdateExperiment" | "RenameRegisteredModel"
    ) && let Some(new_name) = params.try_str_value("new_name").map_err(param_error)?
    {
        plan.context.push((NEW_NAME, new_name.to_owned()));
    }
    for key in tag_keys(route.operation, path_params, params)? {
        plan.context.push((TAG_KEYS, key.to_owned()));
    }
    Ok(plan)
}

/// The keys named by a tag write (`Set*Tag`, `Delete*Tag`, `SetLoggedModelTags`): the `key`
/// field, every `tags[].key`, or the `tag_key` path parameter. Empty for other operations.
fn tag_keys<'a>(
    operation: &str,
    path_params: &'a [(&'static str, String)],
    params: &'a Params,
) -> Result<Vec<&'a str>, GatewayError> {
    let writes_tags = (operation.starts_with("Set") || operation.starts_with("Delete"))
        && (operation.ends_with("Tag") || operation.ends_with("Tags"));
    if !writes_tags {
        return Ok(Vec::new());
    }
    let mut keys: Vec<&str> = params.try_str_values("key").map_err(param_error)?;
    keys.extend(params.str_values_at("tags[].key").map_err(param_error)?);
    keys.extend(
        path_params
            .iter()
            .filter(|(name, _)| *name == "tag_key")
            .map(|(_, value)| value.as_str()),
    );
    Ok(keys)
}

fn child(kind: Child, id: &IdField, value: &str) -> Result<Lookup, GatewayError> {
    Ok(Lookup::Child {
        kind,
        id: id_segment(id.field, value)?.to_owned(),
    })
}

fn missing(field: &str) -> GatewayError {
    GatewayError::BadRequest(format!("missing value for parameter '{field}'"))
}

fn param_error(error: mlgate_catalog::ParamError) -> GatewayError {
    GatewayError::BadRequest(error.to_string())
}

/// The ARN word for resources that are not (yet) anchored under an experiment or a model.
fn flat_kind(kind: ResourceKind) -> Option<&'static str> {
    Some(match kind {
        ResourceKind::Dataset => "dataset",
        ResourceKind::Scorer => "scorer",
        ResourceKind::Issue => "issue",
        ResourceKind::LabelSchema => "label-schema",
        ResourceKind::ReviewQueue => "review-queue",
        ResourceKind::PromptOptimizationJob => "prompt-optimization-job",
        ResourceKind::Job => "job",
        ResourceKind::Webhook => "webhook",
        ResourceKind::Workspace => "workspace",
        ResourceKind::GatewaySecret => "gateway-secret",
        ResourceKind::GatewayEndpoint => "gateway-endpoint",
        ResourceKind::GatewayModelDefinition => "gateway-model-definition",
        ResourceKind::GatewayBudgetPolicy => "gateway-budget-policy",
        ResourceKind::GatewayGuardrail => "gateway-guardrail",
        ResourceKind::McpServer => "mcp-server",
        ResourceKind::Assistant => "assistant-session",
        _ => return None,
    })
}

/// The non-empty string values of one identifier field.
fn values<'a>(
    id: &IdField,
    path_params: &'a [(&'static str, String)],
    params: &'a Params,
    headers: &'a HeaderMap,
) -> Result<Vec<&'a str>, GatewayError> {
    let found = match id.source {
        IdSource::Path => path_params
            .iter()
            .filter(|(name, _)| *name == id.field)
            .map(|(_, v)| v.as_str())
            .collect(),
        IdSource::Header => {
            let values: Vec<_> = headers.get_all(id.field).iter().collect();
            if values.len() > 1 {
                return Err(GatewayError::BadRequest(format!(
                    "several {} headers",
                    id.field
                )));
            }
            values
                .into_iter()
                .map(|v| {
                    v.to_str().map_err(|_| {
                        GatewayError::BadRequest(format!("header {} is not text", id.field))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        IdSource::Params if id.field.contains('.') || id.field.contains("[]") => {
            params.str_values_at(id.field).map_err(param_error)?
        }
        IdSource::Params if id.many => params.try_str_values(id.field).map_err(param_error)?,
        IdSource::Params => params
            .try_str_value(id.field)
            .map_err(param_error)?
            .into_iter()
            .collect(),
    };
    Ok(found.into_iter().filter(|v| !v.is_empty()).collect())
}

/// The I/O half: looks up what [`plan`] could not name, with caches.
#[derive(Clone)]
pub struct Resolver {
    scope: ArnScope,
    upstream: Upstream,
    /// (kind, id) → experiment id. A run, logged model or trace never changes experiment.
    parents: Cache<(Child, String), Arc<str>>,
    /// experiment id → name and tags (short TTL).
    experiments: Cache<String, Arc<ExperimentFacts>>,
}

impl Resolver {
    pub fn new(scope: ArnScope, upstream: Upstream) -> Self {
        Resolver {
            scope,
            upstream,
            parents: Cache::new(PARENT_CACHE_CAPACITY),
            experiments: Cache::builder()
                .max_capacity(EXPERIMENT_FACTS_CAPACITY)
                .time_to_live(EXPERIMENT_FACTS_TTL)
                .build(),
        }
    }

    /// The experiments the ARNs lie under, each with its condition keys, in ARN order.
    pub async fn experiment_contexts(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, Arc<ExperimentFacts>)>, GatewayError> {
        let mut out: Vec<(String, Arc<ExperimentFacts>)> = Vec::new();
        for arn in arns {
            let Some(id) = self.scope.experiment_of(arn) else {
                continue;
            };
            if out.iter().any(|(seen, _)| seen == id) {
                continue;
            }
            let facts = self.experiment_facts(id).await?;
            out.push((id.to_owned(), facts));
        }
        Ok(out)
    }

    /// Name and tags of an experiment, from MLflow's GetExperiment (cached briefly).
    pub async fn experiment_facts(&self, id: &str) -> Result<Arc<ExperimentFacts>, GatewayError> {
        self.experiments
            .try_get_with(id.to_owned(), async {
                let path = format!(
                    "/api/2.0/mlflow/experiments/get?experiment_id={}",
                    escape(id)
                );
                let json = self
                    .lookup_json(&path, &format!("experiment '{id}'"))
                    .await?;
                ExperimentFacts::from_answer(&json)
                    .map(Arc::new)
                    .ok_or_else(|| {
                        GatewayError::UpstreamUnavailable(format!(
                            "MLflow's answer for experiment '{id}' has no name"
                        ))
                    })
            })
            .await
            .map_err(|e: Arc<GatewayError>| Arc::unwrap_or_clone(e))
    }

    /// Drops what is cached about an experiment (after a write through mlgate changed it).
    pub async fn forget_experiment(&self, id: &str) {
        self.experiments.invalidate(id).await;
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// The resource ARNs of a plan; the server's ARN when the route names no resource.
    pub async fn resources(&self, plan: &Plan) -> Result<Vec<String>, GatewayError> {
        let mut arns = plan.arns.clone();
        for lookup in &plan.lookups {
            arns.push(match lookup {
                Lookup::Child { kind, id } => {
                    let experiment = self.parent(*kind, id).await?;
                    match kind {
                        Child::Run => self.scope.run(&experiment, id),
                        Child::LoggedModel => self.scope.logged_model(&experiment, id),
                        Child::Trace => self.scope.trace(&experiment, id),
                    }
                }
                Lookup::ExperimentNamed(name) => {
                    self.scope.experiment(&self.experiment_id(name).await?)
                }
            });
        }
        if arns.is_empty() {
            arns.push(self.scope.server());
        }
        arns.sort_unstable();
        arns.dedup();
        Ok(arns)
    }

    async fn parent(&self, kind: Child, id: &str) -> Result<Arc<str>, GatewayError> {
        let key = (kind, id.to_owned());
        self.parents
            .try_get_with(key, async {
                let (path, pointer, what) = match kind {
                    Child::Run => (
                        format!("/api/2.0/mlflow/runs/get?run_id={}", escape(id)),
                        "/run/info/experiment_id",
                        "run",
                    ),
                    Child::LoggedModel => (
                        format!("/api/2.0/mlflow/logged-models/{}", escape(id)),
                        "/model/info/experiment_id",
                        "logged model",
                    ),
                    Child::Trace => (
                        format!("/api/3.0/mlflow/traces/{}", escape(id)),
                        "/trace/trace_info/trace_location/mlflow_experiment/experiment_id",
                        "trace",
                    ),
                };
                self.lookup(&path, pointer, &format!("{what} '{id}'"))
                    .await
                    .map(Arc::from)
            })
            .await
            .map_err(|e: Arc<GatewayError>| Arc::unwrap_or_clone(e))
    }

    /// Not cached: a name can be given to another experiment after a rename or delete.
    async fn experiment_id(&self, name: &str) -> Result<String, GatewayError> {
        let path = format!(
            "/api/2.0/mlflow/experiments/get-by-name?experiment_name={}",
            escape(name)
        );
        let id = self
            .lookup(
                &path,
                "/experiment/experiment_id",
                &format!("experiment '{name}'"),
            )
            .await?;
        id_segment("experiment_id", &id)?;
        Ok(id)
    }

    /// GETs `path` from MLflow and reads the string at `pointer` of the JSON answer.
    async fn lookup(&self, path: &str, pointer: &str, what: &str) -> Result<String, GatewayError> {
        self.lookup_json(path, what)
            .await?
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                GatewayError::UpstreamUnavailable(format!(
                    "MLflow's answer for {what} has no experiment id"
                ))
            })
    }

    /// GETs `path` from MLflow: its JSON answer, or the error a failed lookup is.
    async fn lookup_json(&self, path: &str, what: &str) -> Result<serde_json::Value, GatewayError> {
        let (status, body) = self.upstream.get(path).await?;
        if status == http::StatusCode::NOT_FOUND {
            return Err(GatewayError::NotFound(format!("{what} does not exist")));
        }
        if status.is_client_error() {
            return Err(GatewayError::BadRequest(format!(
                "MLflow refused the lookup of {what} ({status})"
            )));
        }
        if !status.is_success() {
            return Err(GatewayError::UpstreamUnavailable(format!(
                "MLflow failed to look up {what} ({status})"
            )));
        }
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|_| {
            GatewayError::UpstreamUnavailable(format!("MLflow's answer for {what} is not JSON"))
        })
    }
}

/// Escapes all but unreserved characters, so an id can neither add query parameters nor
/// change the path of a lookup.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escape(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use mlgate_catalog::{Classified, classify, read_params_for};
    use serde_json::{Value, json};

    use super::*;

    const ARN: &str = "arn:mlflow:us-east-1:111111111111:";

    /// Plans a request the way the pipeline does: classify, read the fields, plan.
    fn plan_for(
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
        headers: &[(&'static str, &'static str)],
    ) -> Result<Plan, GatewayError> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let Classified::Route { route, path_params } = classify(method, path) else {
            panic!("{method} {path} is not a route")
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let params = read_params_for(
            route,
            method,
            query,
            Some("application/json"),
            body.as_bytes(),
        )
        .expect("readable");
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            header_map.append(
                http::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        plan(
            &ArnScope::new("us-east-1", "111111111111"),
            route,
            &path_params,
            &params,
            &header_map,
        )
    }

    fn arns(plan: &Plan) -> Vec<String> {
        plan.arns
            .iter()
            .map(|arn| arn.strip_prefix(ARN).expect("our prefix").to_owned())
            .collect()
    }

    #[test]
    fn runs_need_a_lookup() {
        let plan = plan_for("GET", "/api/2.0/mlflow/runs/get?run_id=abc", None, &[]).expect("plan");
        assert!(plan.arns.is_empty());
        assert_eq!(
            plan.lookups,
            [Lookup::Child {
                kind: Child::Run,
                id: "abc".into()
            }]
        );
        // The legacy spelling reaches the same run.
        let legacy = plan_for(
            "POST",
            "/api/2.0/mlflow/runs/log-parameter",
            Some(json!({"run_uuid": "abc", "key": "k", "value": "v"})),
            &[],
        )
        .expect("plan");
        assert_eq!(legacy.lookups, plan.lookups);
    }

    #[test]
    fn experiments_by_id_and_the_default_experiment() {
        let plan = plan_for(
            "POST",
            "/api/2.0/mlflow/runs/create",
            Some(json!({"experimentId": "7"})),
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["experiment/7"]);
        // MLflow creates the run in experiment 0 when none is named.
        let default =
            plan_for("POST", "/api/2.0/mlflow/runs/create", Some(json!({})), &[]).expect("plan");
        assert_eq!(arns(&default), ["experiment/0"]);
        let search = plan_for(
            "POST",
            "/api/2.0/mlflow/runs/search",
            Some(json!({"experiment_ids": ["1", "2"]})),
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&search), ["experiment/1", "experiment/2"]);
    }

    #[test]
    fn experiment_names() {
        let create = plan_for(
            "POST",
            "/api/2.0/mlflow/experiments/create",
            Some(json!({"name": "fraud"})),
            &[],
        )
        .expect("plan");
        assert!(create.arns.is_empty() && create.lookups.is_empty());
        assert_eq!(
            create.context,
            [("mlflow:ExperimentName", "fraud".to_owned())]
        );
        let get = plan_for(
            "GET",
            "/api/2.0/mlflow/experiments/get-by-name?experiment_name=fraud",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(get.lookups, [Lookup::ExperimentNamed("fraud".into())]);
    }

    #[test]
    fn model_versions_pair_name_and_version() {
        let body = json!({"name": "churn", "version": "3", "stage": "Production"});
        let plan = plan_for(
            "POST",
            "/api/2.0/mlflow/model-versions/transition-stage",
            Some(body),
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["registered-model/churn/version/3"]);
        assert_eq!(
            plan.context,
            [("mlflow:TargetStage", "Production".to_owned())]
        );

        let alias = json!({"name": "churn", "version": "3", "alias": "champion"});
        let plan = plan_for(
            "POST",
            "/api/2.0/mlflow/registered-models/alias",
            Some(alias),
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["registered-model/churn/version/3"]);
        assert_eq!(plan.context, [("mlflow:Alias", "champion".to_owned())]);

        let tags = json!({"tags": [{"key": "mlflow.modelVersions", "value": "[]"}, {"key": "note", "value": "x"}]});
        let plan = plan_for(
            "PATCH",
            "/api/2.0/mlflow/logged-models/m-1/tags",
            Some(tags),
            &[],
        )
        .expect("plan");
        assert_eq!(
            plan.context,
            [
                (TAG_KEYS, "mlflow.modelVersions".to_owned()),
                (TAG_KEYS, "note".to_owned())
            ]
        );
        let plan = plan_for(
            "DELETE",
            "/api/2.0/mlflow/logged-models/m-1/tags/team",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(plan.context, [(TAG_KEYS, "team".to_owned())]);
        let set_tag = json!({"name": "churn", "key": "stage-note", "value": "ok"});
        let plan = plan_for(
            "POST",
            "/api/2.0/mlflow/registered-models/set-tag",
            Some(set_tag),
            &[],
        )
        .expect("plan");
        assert_eq!(plan.context, [(TAG_KEYS, "stage-note".to_owned())]);

        let plan = plan_for(
            "GET",
            "/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["registered-model/churn"]);

        let rename = json!({"name": "churn", "new_name": "churn-v2"});
        let experiment_rename = plan_for(
            "POST",
            "/api/2.0/mlflow/experiments/update",
            Some(json!({"experiment_id": "4", "new_name": "team-b/x"})),
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&experiment_rename), ["experiment/4"]);
        assert_eq!(
            experiment_rename.context,
            [(NEW_NAME, "team-b/x".to_owned())]
        );
        let plan = plan_for(
            "POST",
            "/api/2.0/mlflow/registered-models/rename",
            Some(rename),
            &[],
        )
        .expect("plan");
        assert_eq!(
            arns(&plan),
            ["registered-model/churn", "registered-model/churn-v2"]
        );
        assert_eq!(plan.context, [(NEW_NAME, "churn-v2".to_owned())]);
    }

    #[test]
    fn a_name_cannot_pose_as_another_resource() {
        let body = json!({"name": "churn/version/1"});
        assert!(matches!(
            plan_for(
                "POST",
                "/api/2.0/mlflow/registered-models/create",
                Some(body),
                &[]
            ),
            Err(GatewayError::BadRequest(_))
        ));
    }

    #[test]
    fn artifact_proxy_paths_name_their_run() {
        let plan = plan_for(
            "PUT",
            "/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/model.pkl",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["experiment/3/run/abc"]);
        let list = plan_for(
            "GET",
            "/api/2.0/mlflow-artifacts/artifacts?path=3/abc/artifacts",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&list), ["experiment/3/run/abc"]);
        assert!(
            plan_for(
                "GET",
                "/api/2.0/mlflow-artifacts/artifacts?path=3/../4/abc",
                None,
                &[]
            )
            .is_err()
        );
        // On run routes the artifact path is a sub-path of the run, not a resource of its own.
        let download =
            plan_for("GET", "/get-artifact?run_id=abc&path=../../x", None, &[]).expect("plan");
        assert!(download.arns.is_empty());
        assert_eq!(
            download.lookups,
            [Lookup::Child {
                kind: Child::Run,
                id: "abc".into()
            }]
        );
    }

    #[test]
    fn headers_and_flat_resources() {
        let plan = plan_for(
            "POST",
            "/v1/traces",
            None,
            &[("x-mlflow-experiment-id", "5")],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["experiment/5"]);
        let webhook = plan_for("GET", "/api/2.0/mlflow/webhooks/wh-1", None, &[]).expect("plan");
        assert_eq!(arns(&webhook), ["webhook/wh-1"]);
    }

    #[test]
    fn experiment_facts_become_condition_keys() {
        let answer = json!({"experiment": {"experiment_id": "3", "name": "team-a/churn",
            "tags": [{"key": "team", "value": "a"}, {"key": "broken"}]}});
        let facts = ExperimentFacts::from_answer(&answer).expect("facts");
        assert_eq!(
            facts.context(),
            [
                (
                    "mlflow:ExperimentName".to_owned(),
                    "team-a/churn".to_owned()
                ),
                ("mlflow:ExperimentTag/team".to_owned(), "a".to_owned())
            ]
        );
        assert!(ExperimentFacts::from_answer(&json!({})).is_none());
        assert!(changes_experiment("UpdateExperiment") && !changes_experiment("GetExperiment"));
    }

    #[test]
    fn routes_without_identifiers_plan_nothing() {
        let plan =
            plan_for("GET", "/api/2.0/mlflow/registered-models/search", None, &[]).expect("plan");
        assert_eq!(plan, Plan::default());
        let ui = plan_for("GET", "/", None, &[]).expect("plan");
        assert_eq!(ui, Plan::default());
    }
}
