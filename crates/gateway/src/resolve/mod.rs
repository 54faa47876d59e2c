//! Stage 5: turn a route's identifiers into resource ARNs and condition keys.
//!
//! Two halves: [`plan`] is pure (identifiers → ARNs, or the lookups still needed), and
//! [`Resolver`] does the lookups in MLflow (run, logged model or trace → its experiment;
//! experiment name → id; registered model → model or prompt, and its tags) with caches. A lookup that fails is an error response (404 in
//! MLflow's shape when MLflow says the resource does not exist, 502 when MLflow is down),
//! never a default allow.

mod arn;
mod source;

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;
use mlgate_catalog::{
    Change, Changes, IdField, IdSource, Params, ResourceKind, Route, reserved_trace_tag,
};
use moka::future::Cache;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{GatewayError, UpstreamFailure};
use crate::forward::Upstream;
use crate::telemetry;

use arn::{id_segment, number_id, prompt_uri};
use source::{ModelSource, VersionSelector, model_source, within_root};

pub use arn::{ArnScope, IS_PROMPT_TAG, ModelKind};
pub(crate) use arn::{artifact_owner, workspace_relative};

/// MLflow's default experiment, which its store uses when a request names none.
const DEFAULT_EXPERIMENT_ID: &str = "0";

/// Entries kept in the child → experiment cache. The mapping never changes, so no TTL.
const PARENT_CACHE_CAPACITY: u64 = 100_000;

/// Experiment names and tags change: cached briefly, and dropped when a write through mlgate
/// changes them ([`Resolver::forget_experiment`]).
const EXPERIMENT_FACTS_TTL: std::time::Duration = std::time::Duration::from_secs(10);
const EXPERIMENT_FACTS_CAPACITY: u64 = 10_000;

/// Registered models' tags (whether they are prompts, `mlflow:ModelTag/<k>`) change: cached
/// briefly, and dropped when a write through mlgate changes them ([`Resolver::forget_model`]).
const MODEL_FACTS_TTL: std::time::Duration = std::time::Duration::from_secs(10);
const MODEL_FACTS_CAPACITY: u64 = 10_000;

/// The condition key naming who created the resource through mlgate.
pub const RESOURCE_CREATOR: &str = "mlflow:ResourceCreator";

/// The condition key holding an experiment's name.
pub const EXPERIMENT_NAME: &str = "mlflow:ExperimentName";

/// The condition key holding the new name of a rename (UpdateExperiment,
/// RenameRegisteredModel).
pub const NEW_NAME: &str = "mlflow:NewName";
/// The tag keys a tag write sets or deletes, so a policy can allow some tags and not others.
pub const TAG_KEYS: &str = "mlflow:TagKeys";

/// The new name of an experiment rename, if the plan is one. The pipeline decides such a rename
/// a second time as if the experiment already had that name, so a policy that scopes a team to
/// `mlflow:ExperimentName` `team-a/*` cannot move an experiment out of (or into) its prefix.
pub fn renamed_experiment<'a>(route: &Route, plan: &'a Plan) -> Option<&'a str> {
    (route.changes == Changes::Experiment(Change::Rename))
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
        let mut keys = vec![(EXPERIMENT_NAME.to_owned(), self.name.clone())];
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

/// What the condition keys say about one registered model (or prompt), from MLflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFacts {
    pub kind: ModelKind,
    pub tags: Vec<(String, String)>,
}

impl ModelFacts {
    /// `mlflow:ModelTag/<k>` for a model, `mlflow:PromptTag/<k>` for a prompt.
    pub fn context(&self) -> Vec<(String, String)> {
        let prefix = self.kind.tag_key_prefix();
        self.tags
            .iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
            .collect()
    }

    fn from_answer(json: &serde_json::Value) -> Option<ModelFacts> {
        let model = json.get("registered_model")?;
        model.get("name")?.as_str()?;
        let tags: Vec<(String, String)> = match model.get("tags") {
            None => Vec::new(),
            Some(tags) => tags
                .as_array()?
                .iter()
                .map(|t| {
                    Some((
                        t.get("key")?.as_str()?.to_owned(),
                        t.get("value").map_or(Some(""), |v| v.as_str())?.to_owned(),
                    ))
                })
                .collect::<Option<_>>()?,
        };
        let kind = ModelKind::of_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Some(ModelFacts { kind, tags })
    }
}

/// The registered model (or prompt) a request names in its `name` field, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedModel {
    pub name: String,
    /// `None` when MLflow has no such model (the request was decided on both kinds).
    pub kind: Option<ModelKind>,
    /// Its tags as condition keys ([`ModelFacts::context`]); none for a creation.
    pub keys: Vec<(String, String)>,
}

impl NamedModel {
    /// Its ARN, when it exists (or is being created).
    pub fn arn(&self, scope: &ArnScope) -> Option<String> {
        self.kind
            .map(|kind| scope.model_arn(kind, &self.name, None))
    }

    /// The ARN it has after a rename to `new_name`.
    pub fn renamed_arn(&self, scope: &ArnScope, new_name: &str) -> Option<String> {
        self.kind.map(|kind| scope.model_arn(kind, new_name, None))
    }
}

/// A resource that needs a lookup in MLflow before its ARN is known.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// A run, a logged model or a trace: ARN under its experiment.
    Child { kind: Child, id: String },
    /// An experiment named by name (ids are what ARNs use).
    ExperimentNamed(String),
    /// An evaluation dataset: one ARN under each experiment it is linked to.
    Dataset(String),
    /// A registered model or one of its versions: a model or a prompt, as the registered model
    /// `kind_of` is (itself; for a rename's new name, the model being renamed). Decided on both
    /// kinds when MLflow has no such model, or when the request writes the tag that makes a
    /// model a prompt (`both`).
    Model {
        name: String,
        version: Option<String>,
        kind_of: String,
        both: bool,
    },
}

/// Another resource a request names ([`mlgate_catalog::IdField::implies`]), decided as
/// `mlflow:<operation>` on what it resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub operation: &'static str,
    pub field: &'static str,
    pub target: ReferenceTarget,
}

/// What a reference names, before any lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReferenceTarget {
    /// A resource whose ARN the identifier alone gives.
    Arn(String),
    /// A trace the request may be creating: decided under its experiment when MLflow already
    /// has it (writing it again would overwrite or move it), nothing to decide when not.
    TraceIfExists(String),
    /// A resource whose ARN needs a lookup (a run or logged model: its experiment).
    Lookup(Lookup),
    /// A model version selected the way MLflow resolves a `models:/` source; the request is
    /// then sent with that version pinned (`models:/<name>/<n>`), so MLflow cannot resolve an
    /// alias or stage differently from what was decided.
    ModelVersion {
        name: String,
        selector: VersionSelector,
    },
    /// The judges of a registered scorer version, which MLflow runs instead of the one the
    /// request sent: each AI-gateway endpoint they call, read from MLflow.
    RegisteredJudges {
        experiment_id: String,
        name: String,
        version: i64,
    },
    /// A storage location: the run's or logged model's (the request's `model_id`, else its
    /// `run_id`) when it lies inside that artifact root, else files outside any experiment
    /// (the server).
    Location {
        location: String,
        owner: Option<(Child, String)>,
    },
}

/// A reference resolved: the ARN decided, the registered model it lies under (for its tags and
/// creator), and the field value the request is forwarded with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedReference {
    pub operation: &'static str,
    pub arn: String,
    pub model: Option<NamedModel>,
    pub pin: Option<(&'static str, String)>,
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
    /// The registered model named by the `name` field, with its kind when the request itself
    /// says it (CreateRegisteredModel: its tags).
    pub model: Option<(String, Option<ModelKind>)>,
    /// Other resources the request names, each decided as the read it implies.
    pub references: Vec<Reference>,
}

/// Reads `route`'s identifiers from the path, the request fields and the headers.
pub fn plan(
    scope: &ArnScope,
    route: &Route,
    path_params: &[(&'static str, String)],
    params: &Params,
    headers: &HeaderMap,
) -> Result<Plan, GatewayError> {
    if let Some(key) = reserved_trace_tag(route.trace_writes, params).map_err(param_error)? {
        return Err(GatewayError::BadRequest(format!(
            "Tag '{key}' is reserved: MLflow sets it, and no request may set or delete it on a \
             trace"
        )));
    }
    let mut plan = Plan::default();
    let single = |field: &str| -> Result<Option<Cow<'_, str>>, GatewayError> {
        let ids = route.ids.iter().find(|id| id.field == field);
        let found = ids
            .map(|id| values(id, path_params, params, headers))
            .transpose()?;
        match found.as_deref() {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.clone())),
            Some(_) => Err(GatewayError::BadRequest(format!(
                "several values for parameter '{field}'"
            ))),
        }
    };
    let model_name = single("name")?;
    let model_name = model_name.as_deref();
    // A scorer is named by its experiment and its name.
    let scorer_experiment = single("experiment_id")?;
    let version_paired = route
        .ids
        .iter()
        .any(|id| id.field == "version" && id.refers_to == ResourceKind::ModelVersion);
    let tag_keys = tag_keys(route, path_params, params)?;
    // Writing the prompt tag turns a model into a prompt or back: decided on both kinds.
    let switches_kind = tag_keys.iter().any(|key| key == IS_PROMPT_TAG);
    // A registered model being created has no tags in MLflow yet: its request's tags say.
    let created_kind = (route.changes == Changes::RegisteredModel(Change::Create))
        .then(|| requested_kind(params))
        .transpose()?;
    let model_lookup = |name: &str, version: Option<&str>, kind_of: &str| Lookup::Model {
        name: name.to_owned(),
        version: version.map(str::to_owned),
        kind_of: kind_of.to_owned(),
        both: switches_kind,
    };

    for id in route.ids {
        if let Some(operation) = id.implies {
            for value in values(id, path_params, params, headers)? {
                if let Some(target) = reference_target(scope, id, &value, params)? {
                    plan.references.push(Reference {
                        operation,
                        field: id.field,
                        target,
                    });
                }
            }
            continue;
        }
        for value in values(id, path_params, params, headers)? {
            let value = value.as_ref();
            match id.refers_to {
                ResourceKind::Experiment => match id.field {
                    // The experiment being created has no id yet: the server is the resource.
                    "name" => plan.context.push((EXPERIMENT_NAME, value.to_owned())),
                    "experiment_name" => {
                        plan.context
                            .push(("mlflow:ExperimentName", value.to_owned()));
                        plan.lookups.push(Lookup::ExperimentNamed(value.to_owned()));
                    }
                    _ => plan
                        .arns
                        .push(scope.experiment(&number_id(id.field, value)?)),
                },
                ResourceKind::Run => plan.lookups.push(child(Child::Run, id, value)?),
                ResourceKind::LoggedModel => {
                    plan.lookups.push(child(Child::LoggedModel, id, value)?)
                }
                ResourceKind::Trace => plan.lookups.push(child(Child::Trace, id, value)?),
                ResourceKind::Dataset => plan
                    .lookups
                    .push(Lookup::Dataset(id_segment(id.field, value)?.to_owned())),
                ResourceKind::Scorer if id.field == "name" => {
                    let experiment = scorer_experiment
                        .as_deref()
                        .ok_or_else(|| missing("experiment_id"))?;
                    plan.arns.push(scope.scorer(
                        &number_id("experiment_id", experiment)?,
                        id_segment(id.field, value)?,
                    ));
                }
                ResourceKind::RegisteredModel | ResourceKind::ModelVersion
                    if id.field == "name" =>
                {
                    let name = id_segment(id.field, value)?;
                    plan.model = Some((name.to_owned(), created_kind));
                    match created_kind {
                        Some(kind) => plan.arns.push(scope.model_arn(kind, name, None)),
                        None if version_paired => {}
                        None => plan.lookups.push(model_lookup(name, None, name)),
                    }
                }
                ResourceKind::RegisteredModel => {
                    let name = id_segment(id.field, value)?;
                    // A rename's new name is of the kind of the model renamed.
                    let kind_of = match id.field {
                        "new_name" => {
                            id_segment("name", model_name.ok_or_else(|| missing("name"))?)?
                        }
                        _ => name,
                    };
                    plan.lookups.push(model_lookup(name, None, kind_of));
                }
                ResourceKind::ModelVersion => match id.field {
                    // A prompt optimization job reads its source prompt version (the
                    // version it adds is decided as a reference, CreateModelVersion).
                    "source_prompt_uri" => {
                        let (name, version) = prompt_uri(id.field, value)?;
                        plan.lookups.push(model_lookup(name, version, name));
                    }
                    "version" => {
                        let name = model_name.ok_or_else(|| missing("name"))?;
                        let name = id_segment("name", name)?;
                        let version = number_id(id.field, value)?;
                        plan.lookups.push(model_lookup(name, Some(&version), name));
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
                    let path = workspace_relative(value, scope.workspace())?;
                    plan.arns.push(artifact_owner(path)?.arn(scope));
                }
                ResourceKind::Artifact | ResourceKind::Assessment => {}
                ResourceKind::ModelSource => {
                    return Err(GatewayError::Internal(format!(
                        "model source field {} is not a reference",
                        id.field
                    )));
                }
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
    if route.ids.iter().any(|id| id.source == IdSource::Judges) {
        for (name, version) in registered_scorers(params)? {
            let experiment_id = params
                .try_str_value("experiment_id")
                .map_err(param_error)?
                .ok_or_else(|| missing("experiment_id"))?;
            plan.references.push(Reference {
                operation: "InvokeGatewayEndpoint",
                field: "scorer_version",
                target: ReferenceTarget::RegisteredJudges {
                    experiment_id: number_id("experiment_id", experiment_id)?,
                    name,
                    version,
                },
            });
        }
    }
    // A `models:/<name>/...` source makes MLflow check that `run_id` and `model_id`, when
    // sent, are the source version's own (and fill them from it when not): they name nothing
    // beyond the version decided, which its reader may copy without reading its run.
    if plan
        .references
        .iter()
        .any(|r| matches!(r.target, ReferenceTarget::ModelVersion { .. }))
    {
        plan.references.retain(|r| {
            !matches!(
                r.target,
                ReferenceTarget::Lookup(Lookup::Child {
                    kind: Child::Run | Child::LoggedModel,
                    ..
                })
            )
        });
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
    if route.changes == Changes::ModelVersionStage
        && let Some(stage) = params.try_str_value("stage").map_err(param_error)?
    {
        plan.context.push(("mlflow:TargetStage", stage.to_owned()));
    }
    // A rename is decided on the new name too (see `renamed_experiment`).
    if matches!(
        route.changes,
        Changes::Experiment(Change::Rename) | Changes::RegisteredModel(Change::Rename)
    ) && let Some(new_name) = params.try_str_value("new_name").map_err(param_error)?
    {
        plan.context.push((NEW_NAME, new_name.to_owned()));
    }
    for key in tag_keys {
        plan.context.push((TAG_KEYS, key.into_owned()));
    }
    Ok(plan)
}

/// Whether a CreateRegisteredModel request creates a prompt, from its `tags` as MLflow reads
/// them ([`ModelKind::of_tags`]). Tags MLflow would not read as strings are refused.
fn requested_kind(params: &Params) -> Result<ModelKind, GatewayError> {
    // Only the prompt tag matters; every tag is still checked as MLflow would read it.
    let mut prompt_tags = Vec::new();
    for text in params.values_at("tags[]").map_err(param_error)? {
        let Ok(serde_json::Value::Object(tag)) = serde_json::from_str(text.get()) else {
            return Err(GatewayError::BadRequest(
                "invalid value for parameter 'tags': expected objects".into(),
            ));
        };
        let text = |field: &str| match tag.get(field) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(GatewayError::BadRequest(format!(
                "invalid value for parameter 'tags[].{field}': expected a string"
            ))),
        };
        let (key, value) = (text("key")?, text("value")?);
        if key == IS_PROMPT_TAG {
            prompt_tags.push(value);
        }
    }
    Ok(ModelKind::of_tags(
        prompt_tags
            .iter()
            .map(|value| (IS_PROMPT_TAG, value.as_str())),
    ))
}

/// The keys named by a tag write ([`Route::writes_tags`]): the `key` field, every
/// `tags[].key`, or the `tag_key` path parameter. Empty for other routes.
fn tag_keys<'a>(
    route: &Route,
    path_params: &'a [(&'static str, String)],
    params: &'a Params,
) -> Result<Vec<Cow<'a, str>>, GatewayError> {
    if !route.writes_tags {
        return Ok(Vec::new());
    }
    let mut keys: Vec<Cow<str>> = params
        .try_str_values("key")
        .map_err(param_error)?
        .into_iter()
        .map(Cow::Borrowed)
        .collect();
    keys.extend(params.str_values_at("tags[].key").map_err(param_error)?);
    keys.extend(
        path_params
            .iter()
            .filter(|(name, _)| *name == "tag_key")
            .map(|(_, value)| Cow::Borrowed(value.as_str())),
    );
    Ok(keys)
}

/// What a reference field names (`None`: nothing). A model version's source is read as MLflow
/// reads it ([`source`]); a location source is tied to the request's `model_id`, else its
/// `run_id`, as MLflow ties it.
fn reference_target(
    scope: &ArnScope,
    id: &IdField,
    value: &str,
    params: &Params,
) -> Result<Option<ReferenceTarget>, GatewayError> {
    Ok(Some(match id.refers_to {
        // MLflow stores a StartTrace's assessments under their own ids, merging over an existing
        // assessment of any trace; an assessment cannot be looked up without its trace, so such
        // a request is refused and assessments are logged with CreateAssessment.
        ResourceKind::Assessment => {
            return Err(GatewayError::BadRequest(format!(
                "invalid value for parameter '{}': a trace is started without assessment ids; \
                 log assessments with CreateAssessment",
                id.field
            )));
        }
        ResourceKind::Trace => {
            ReferenceTarget::TraceIfExists(id_segment(id.field, value)?.to_owned())
        }
        ResourceKind::Run => ReferenceTarget::Lookup(child(Child::Run, id, value)?),
        ResourceKind::LoggedModel => ReferenceTarget::Lookup(child(Child::LoggedModel, id, value)?),
        ResourceKind::Dataset => {
            ReferenceTarget::Lookup(Lookup::Dataset(id_segment(id.field, value)?.to_owned()))
        }
        // The prompt a `prompts:/` URI names (a prompt optimization job registers its result
        // as a new version of it).
        ResourceKind::RegisteredModel => {
            let (name, _) = prompt_uri(id.field, value)?;
            ReferenceTarget::Lookup(Lookup::Model {
                name: name.to_owned(),
                version: None,
                kind_of: name.to_owned(),
                both: false,
            })
        }
        ResourceKind::ModelSource => match model_source(id.field, value)? {
            ModelSource::ModelVersion { name, selector } => ReferenceTarget::ModelVersion {
                name: name.to_owned(),
                selector,
            },
            ModelSource::LoggedModel(model_id) => ReferenceTarget::Lookup(Lookup::Child {
                kind: Child::LoggedModel,
                id: model_id.to_owned(),
            }),
            ModelSource::Run(run_id) => ReferenceTarget::Lookup(Lookup::Child {
                kind: Child::Run,
                id: run_id.to_owned(),
            }),
            ModelSource::Location(location) => {
                let named = |field: &str, kind: Child| -> Result<_, GatewayError> {
                    params
                        .try_str_value(field)
                        .map_err(param_error)?
                        .map(|id| Ok((kind, id_segment(field, id)?.to_owned())))
                        .transpose()
                };
                let owner = match named("model_id", Child::LoggedModel)? {
                    Some(owner) => Some(owner),
                    None => named("run_id", Child::Run)?,
                };
                ReferenceTarget::Location {
                    location: location.to_owned(),
                    owner,
                }
            }
            // A prompt version's placeholder names no files; MLflow refuses it for models.
            ModelSource::Placeholder => return Ok(None),
        },
        other => match flat_kind(other) {
            Some(kind) => ReferenceTarget::Arn(scope.flat(kind, id_segment(id.field, value)?)),
            None => {
                return Err(GatewayError::Internal(format!(
                    "no reference resolution for {other:?} field {}",
                    id.field
                )));
            }
        },
    }))
}

/// The registered scorer versions a request has MLflow run in place of the ones it sent, as
/// MLflow reads them: InvokeScorer's `scorer_name` with `scorer_version`, and each non-null
/// `scorer_versions[i]` of InvokeGenaiEvaluate with the name in `serialized_scorers[i]`.
fn registered_scorers(params: &Params) -> Result<Vec<(String, i64)>, GatewayError> {
    let version_of = |field: &str, value: &serde_json::Value| {
        value.as_i64().ok_or_else(|| {
            GatewayError::BadRequest(format!(
                "invalid value for parameter '{field}': not an integer"
            ))
        })
    };
    let mut found = Vec::new();
    match (params.get("scorer_name"), params.get("scorer_version")) {
        (None | Some(serde_json::Value::Null), None | Some(serde_json::Value::Null)) => {}
        (Some(serde_json::Value::String(name)), Some(version)) => {
            found.push((name.clone(), version_of("scorer_version", version)?));
        }
        _ => {
            return Err(GatewayError::BadRequest(
                "scorer_name must be a string and scorer_version an integer, given together".into(),
            ));
        }
    }
    if let Some(serde_json::Value::Array(versions)) = params.get("scorer_versions") {
        let serialized = params
            .try_str_values("serialized_scorers")
            .map_err(param_error)?;
        for (index, version) in versions.iter().enumerate() {
            if version.is_null() {
                continue;
            }
            let version = version_of("scorer_versions", version)?;
            let name = serialized
                .get(index)
                .and_then(|s| mlgate_catalog::scorer_name(s))
                .ok_or_else(|| {
                    GatewayError::BadRequest("A registered scorer must contain a valid name".into())
                })?;
            found.push((name, version));
        }
    }
    Ok(found)
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

/// The ARN word for resources that are not anchored under an experiment or a model (a dataset
/// linked to no experiment; scorers named by id, which MLflow maps to no experiment through its
/// API).
pub(crate) fn flat_kind(kind: ResourceKind) -> Option<&'static str> {
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
) -> Result<Vec<Cow<'a, str>>, GatewayError> {
    let borrowed = |values: Vec<&'a str>| values.into_iter().map(Cow::Borrowed).collect();
    let found: Vec<Cow<'a, str>> = match id.source {
        IdSource::Path => {
            let in_path: Vec<&str> = path_params
                .iter()
                .filter(|(name, _)| *name == id.field)
                .map(|(_, v)| v.as_str())
                .collect();
            // MLflow's message handlers read the request fields too, and some act on the
            // field rather than the path (FinalizeLoggedModel finalizes the body's model_id):
            // a request whose fields name another resource than its path is refused.
            let in_fields = params.try_str_values(id.field).map_err(param_error)?;
            if let Some(other) = in_fields.iter().find(|v| !in_path.contains(v)) {
                return Err(GatewayError::BadRequest(format!(
                    "parameter '{}' is {other:?} in the request but {:?} in the path",
                    id.field,
                    in_path.first().copied().unwrap_or_default()
                )));
            }
            borrowed(in_path)
        }
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
                    v.to_str().map(Cow::Borrowed).map_err(|_| {
                        GatewayError::BadRequest(format!("header {} is not text", id.field))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        IdSource::Judges => {
            let mut names = Vec::new();
            for serialized in params.try_str_values(id.field).map_err(param_error)? {
                let found = mlgate_catalog::judge_endpoints(serialized).map_err(|e| {
                    GatewayError::BadRequest(format!(
                        "invalid value for parameter '{}': {e}",
                        id.field
                    ))
                })?;
                names.extend(found.into_iter().map(Cow::Owned));
            }
            names
        }
        IdSource::Params if id.field.contains('.') || id.field.contains("[]") => {
            params.str_values_at(id.field).map_err(param_error)?
        }
        IdSource::Params if id.many => {
            borrowed(params.try_str_values(id.field).map_err(param_error)?)
        }
        IdSource::Params => borrowed(
            params
                .try_str_value(id.field)
                .map_err(param_error)?
                .into_iter()
                .collect(),
        ),
    };
    Ok(found.into_iter().filter(|v| !v.is_empty()).collect())
}

/// A request's resources, resolved: what the authorize stage decides on.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub plan: Plan,
    /// The resource ARNs (the server's when the route names none).
    pub arns: Vec<String>,
    /// The experiments they lie under, with their name and tags.
    pub experiments: Vec<(String, Arc<ExperimentFacts>)>,
    /// The registered model or prompt the request names by `name`.
    pub model: Option<NamedModel>,
}

/// The caches' names in the metrics.
const PARENT_CACHE: &str = "parents";
const EXPERIMENT_CACHE: &str = "experiments";
const MODEL_CACHE: &str = "models";

/// The I/O half: looks up what [`plan`] could not name, with caches.
#[derive(Clone)]
pub struct Resolver {
    scope: ArnScope,
    upstream: Upstream,
    /// The MLflow workspace lookups are asked in (`None`: MLflow runs without workspaces).
    workspace: Option<Arc<str>>,
    /// (kind, id) → experiment id. A run, logged model or trace never changes experiment.
    parents: Cache<InWorkspace<(Child, String)>, Arc<str>>,
    /// experiment id → name and tags (short TTL).
    experiments: Cache<InWorkspace<String>, Arc<ExperimentFacts>>,
    /// registered model name → kind and tags (short TTL).
    models: Cache<InWorkspace<String>, Arc<ModelFacts>>,
}

/// A cache key within the workspace it was looked up in: MLflow answers each workspace for its
/// own objects (a model name is unique only within one), so no answer serves another workspace.
type InWorkspace<K> = (Option<Arc<str>>, K);

impl Resolver {
    pub fn new(scope: ArnScope, upstream: Upstream) -> Self {
        Resolver {
            scope,
            upstream,
            workspace: None,
            parents: Cache::new(PARENT_CACHE_CAPACITY),
            experiments: Cache::builder()
                .max_capacity(EXPERIMENT_FACTS_CAPACITY)
                .time_to_live(EXPERIMENT_FACTS_TTL)
                .build(),
            models: Cache::builder()
                .max_capacity(MODEL_FACTS_CAPACITY)
                .time_to_live(MODEL_FACTS_TTL)
                .build(),
        }
    }

    /// The same resolver (and caches) for requests in MLflow workspace `workspace`: its ARNs
    /// lie in the workspace and its lookups are asked there.
    pub fn in_workspace(&self, workspace: &str) -> Resolver {
        Resolver {
            scope: self.scope.in_workspace(workspace),
            workspace: Some(workspace.into()),
            ..self.clone()
        }
    }

    fn key<K>(&self, key: K) -> InWorkspace<K> {
        (self.workspace.clone(), key)
    }

    /// Stage 5: the route's identifiers → its resources, the experiments they lie under and
    /// the registered model it names, looking up in MLflow what the request does not say.
    pub async fn resolve(
        &self,
        route: &Route,
        path_params: &[(&'static str, String)],
        params: &Params,
        headers: &http::HeaderMap,
    ) -> Result<Resolved, GatewayError> {
        let plan = plan(&self.scope, route, path_params, params, headers)?;
        let arns = self.resources(&plan).await?;
        let experiments = self.experiment_contexts(&arns).await?;
        let model = self.named_model(&plan).await?;
        Ok(Resolved {
            plan,
            arns,
            experiments,
            model,
        })
    }

    /// Kind and tags of a registered model, from MLflow's GetRegisteredModel (cached briefly);
    /// `None` when MLflow says there is no such model (not cached: it may be created next).
    pub async fn model_facts(&self, name: &str) -> Result<Option<Arc<ModelFacts>>, GatewayError> {
        telemetry::cache_lookup(MODEL_CACHE);
        let found = self
            .models
            .try_get_with(self.key(name.to_owned()), async {
                telemetry::cache_miss(MODEL_CACHE);
                let path = format!(
                    "/api/2.0/mlflow/registered-models/get?name={}",
                    escape(name)
                );
                let what = format!("registered model '{name}'");
                let json = self.lookup_json(&path, &what).await?;
                ModelFacts::from_answer(&json).map(Arc::new).ok_or_else(|| {
                    GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                        format!("answer for {what}"),
                        "is not a registered model",
                    ))
                })
            })
            .await
            .map_err(|e: Arc<GatewayError>| Arc::unwrap_or_clone(e));
        match found {
            Ok(facts) => Ok(Some(facts)),
            Err(GatewayError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The registered model the request names by `name`: its kind and condition keys.
    pub async fn named_model(&self, plan: &Plan) -> Result<Option<NamedModel>, GatewayError> {
        let Some((name, known)) = &plan.model else {
            return Ok(None);
        };
        let (kind, keys) = match known {
            Some(kind) => (Some(*kind), Vec::new()),
            None => match self.model_facts(name).await? {
                Some(facts) => (Some(facts.kind), facts.context()),
                None => (None, Vec::new()),
            },
        };
        Ok(Some(NamedModel {
            name: name.clone(),
            kind,
            keys,
        }))
    }

    /// Drops what is cached about a registered model (after a write through mlgate changed it).
    pub async fn forget_model(&self, name: &str) {
        self.models.invalidate(&self.key(name.to_owned())).await;
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
        telemetry::cache_lookup(EXPERIMENT_CACHE);
        self.experiments
            .try_get_with(self.key(id.to_owned()), async {
                telemetry::cache_miss(EXPERIMENT_CACHE);
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
                        GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                            format!("answer for experiment '{id}'"),
                            "has no name",
                        ))
                    })
            })
            .await
            .map_err(|e: Arc<GatewayError>| Arc::unwrap_or_clone(e))
    }

    /// Drops the cached experiment of each trace the plan may have written again: MLflow moves
    /// an existing trace to the experiment a StartTrace names.
    pub async fn forget_rewritten_traces(&self, plan: &Plan) {
        for reference in &plan.references {
            if let ReferenceTarget::TraceIfExists(id) = &reference.target {
                self.parents
                    .invalidate(&self.key((Child::Trace, id.clone())))
                    .await;
            }
        }
    }

    /// Drops what is cached about an experiment (after a write through mlgate changed it).
    pub async fn forget_experiment(&self, id: &str) {
        self.experiments.invalidate(&self.key(id.to_owned())).await;
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// The resource ARNs of a plan; the server's ARN when the route names no resource.
    pub async fn resources(&self, plan: &Plan) -> Result<Vec<String>, GatewayError> {
        let mut arns = plan.arns.clone();
        for lookup in &plan.lookups {
            self.lookup_arns(lookup, &mut arns).await?;
        }
        if arns.is_empty() {
            arns.push(self.scope.server());
        }
        arns.sort_unstable();
        arns.dedup();
        Ok(arns)
    }

    /// Adds the ARN(s) a lookup resolves to: one, a registered model's as both kinds when its
    /// kind is unknown, or a dataset's under each of its experiments.
    async fn lookup_arns(
        &self,
        lookup: &Lookup,
        arns: &mut Vec<String>,
    ) -> Result<(), GatewayError> {
        let arn = match lookup {
            Lookup::Child { kind, id } => self.child_arn(*kind, id).await?,
            Lookup::ExperimentNamed(name) => {
                self.scope.experiment(&self.experiment_id(name).await?)
            }
            Lookup::Dataset(id) => {
                let experiments = self.dataset_experiments(id).await?;
                if experiments.is_empty() {
                    self.scope.flat("dataset", id)
                } else {
                    arns.extend(experiments.iter().map(|e| self.scope.dataset(e, id)));
                    return Ok(());
                }
            }
            Lookup::Model {
                name,
                version,
                kind_of,
                both,
            } => {
                let kind = match both {
                    true => None,
                    false => self.model_facts(kind_of).await?.map(|facts| facts.kind),
                };
                let version = version.as_deref();
                if kind.is_none() {
                    arns.push(self.scope.model_arn(ModelKind::Prompt, name, version));
                }
                self.scope
                    .model_arn(kind.unwrap_or(ModelKind::Model), name, version)
            }
        };
        arns.push(arn);
        Ok(())
    }

    /// The experiments a dataset is linked to, from MLflow. Not cached: links change with
    /// AddDatasetToExperiments and RemoveDatasetFromExperiments.
    pub async fn dataset_experiments(&self, id: &str) -> Result<Vec<String>, GatewayError> {
        let path = format!("/api/3.0/mlflow/datasets/{}/experiment-ids", escape(id));
        let what = format!("dataset '{id}'");
        let json = self.lookup_json(&path, &what).await?;
        let malformed = || {
            GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                format!("answer for the experiments of {what}"),
                "is not a list of ids",
            ))
        };
        match json.get("experiment_ids") {
            // MLflow leaves empty lists out of its answers.
            None => Ok(Vec::new()),
            Some(serde_json::Value::Array(ids)) => ids
                .iter()
                .map(|id| {
                    let id = id.as_str().ok_or_else(malformed)?;
                    number_id("experiment_id", id)
                })
                .collect(),
            Some(_) => Err(malformed()),
        }
    }

    /// The endpoints the judges of a registered scorer version call, from MLflow. Not cached:
    /// a version is immutable, but lookups of it are rare.
    async fn registered_judges(
        &self,
        experiment_id: &str,
        name: &str,
        version: i64,
    ) -> Result<Vec<String>, GatewayError> {
        let path = format!(
            "/api/3.0/mlflow/scorers/get?experiment_id={}&name={}&version={version}",
            escape(experiment_id),
            escape(name)
        );
        let what = format!("version {version} of scorer '{name}'");
        let json = self.lookup_json(&path, &what).await?;
        let unusable = |why: &str| {
            GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                format!("answer for {what}"),
                why,
            ))
        };
        let serialized = json
            .pointer("/scorer/serialized_scorer")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| unusable("has no serialized scorer"))?;
        mlgate_catalog::judge_endpoints(serialized)
            .map_err(|_| unusable("holds an unreadable scorer"))
    }

    async fn child_arn(&self, kind: Child, id: &str) -> Result<String, GatewayError> {
        let experiment = self.parent(kind, id).await?;
        Ok(match kind {
            Child::Run => self.scope.run(&experiment, id),
            Child::LoggedModel => self.scope.logged_model(&experiment, id),
            Child::Trace => self.scope.trace(&experiment, id),
        })
    }

    /// Resolves the plan's references, each to the ARN(s) it is decided on.
    pub async fn references(&self, plan: &Plan) -> Result<Vec<ResolvedReference>, GatewayError> {
        let mut out = Vec::with_capacity(plan.references.len());
        for reference in &plan.references {
            let resolved = |arn: String| ResolvedReference {
                operation: reference.operation,
                arn,
                model: None,
                pin: None,
            };
            match &reference.target {
                ReferenceTarget::Arn(arn) => out.push(resolved(arn.clone())),
                ReferenceTarget::TraceIfExists(id) => {
                    match self.child_arn(Child::Trace, id).await {
                        Ok(arn) => out.push(resolved(arn)),
                        Err(GatewayError::NotFound { .. }) => {}
                        Err(error) => return Err(error),
                    }
                }
                ReferenceTarget::Lookup(lookup) => {
                    let mut arns = Vec::new();
                    self.lookup_arns(lookup, &mut arns).await?;
                    // A model or prompt is decided with its tags and creator, as a request
                    // naming it is.
                    let model = match lookup {
                        Lookup::Model { name, .. } => {
                            self.model_facts(name).await?.map(|facts| NamedModel {
                                name: name.clone(),
                                kind: Some(facts.kind),
                                keys: facts.context(),
                            })
                        }
                        _ => None,
                    };
                    out.extend(arns.into_iter().map(|arn| ResolvedReference {
                        model: model.clone(),
                        ..resolved(arn)
                    }));
                }
                ReferenceTarget::ModelVersion { name, selector } => {
                    let what = format!(
                        "the model version that {} '{}' names",
                        reference.field, name
                    );
                    let facts =
                        self.model_facts(name)
                            .await?
                            .ok_or_else(|| GatewayError::NotFound {
                                what: what.to_owned(),
                            })?;
                    let version = self.select_version(name, selector, &what).await?;
                    out.push(ResolvedReference {
                        operation: reference.operation,
                        arn: self.scope.model_arn(facts.kind, name, Some(&version)),
                        model: Some(NamedModel {
                            name: name.clone(),
                            kind: Some(facts.kind),
                            keys: facts.context(),
                        }),
                        pin: Some((reference.field, format!("models:/{name}/{version}"))),
                    });
                }
                ReferenceTarget::RegisteredJudges {
                    experiment_id,
                    name,
                    version,
                } => {
                    for endpoint in self
                        .registered_judges(experiment_id, name, *version)
                        .await?
                    {
                        let endpoint = id_segment(reference.field, &endpoint)?;
                        out.push(resolved(self.scope.flat("gateway-endpoint", endpoint)));
                    }
                }
                ReferenceTarget::Location { location, owner } => {
                    let arn = match owner {
                        Some((kind, id)) => {
                            let root = self.artifact_root(*kind, id).await?;
                            match within_root(location, &root) {
                                true => Some(self.child_arn(*kind, id).await?),
                                false => None,
                            }
                        }
                        None => None,
                    };
                    // Files mlgate cannot place in any experiment are the server's.
                    out.push(resolved(arn.unwrap_or_else(|| self.scope.server())));
                }
            }
        }
        Ok(out)
    }

    /// The version a `models:/` source selects, asked of MLflow as its handler asks
    /// (`get_model_name_and_version`): the number MLflow answers, never the text sent.
    async fn select_version(
        &self,
        name: &str,
        selector: &VersionSelector,
        what: &str,
    ) -> Result<String, GatewayError> {
        let name = escape(name);
        let latest = |stage: Option<&str>| match stage {
            Some(stage) => format!(
                "/api/2.0/mlflow/registered-models/get-latest-versions?name={name}&stages={}",
                escape(stage)
            ),
            None => format!("/api/2.0/mlflow/registered-models/get-latest-versions?name={name}"),
        };
        let path = match selector {
            VersionSelector::Number(version) => format!(
                "/api/2.0/mlflow/model-versions/get?name={name}&version={}",
                escape(version)
            ),
            VersionSelector::Alias(alias) => format!(
                "/api/2.0/mlflow/registered-models/alias?name={name}&alias={}",
                escape(alias)
            ),
            VersionSelector::Latest => latest(None),
            VersionSelector::Stage(stage) => latest(Some(stage)),
        };
        let json = self.lookup_json(&path, what).await?;
        let version = match selector {
            VersionSelector::Number(_) | VersionSelector::Alias(_) => json
                .pointer("/model_version/version")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            VersionSelector::Latest | VersionSelector::Stage(_) => json
                .get("model_versions")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("version")?.as_str()?.parse::<u64>().ok())
                .max()
                .map(|v| v.to_string()),
        };
        let version = version.ok_or_else(|| GatewayError::NotFound {
            what: what.to_owned(),
        })?;
        id_segment("version", &version)?;
        Ok(version)
    }

    /// Where a run's or logged model's artifacts live (its artifact root), from MLflow.
    async fn artifact_root(&self, kind: Child, id: &str) -> Result<String, GatewayError> {
        let (path, pointer, what) = match kind {
            Child::Run => (
                format!("/api/2.0/mlflow/runs/get?run_id={}", escape(id)),
                "/run/info/artifact_uri",
                format!("run '{id}'"),
            ),
            Child::LoggedModel => (
                format!("/api/2.0/mlflow/logged-models/{}", escape(id)),
                "/model/info/artifact_uri",
                format!("logged model '{id}'"),
            ),
            Child::Trace => {
                return Err(GatewayError::Internal(
                    "a trace is no artifact root of a source".into(),
                ));
            }
        };
        self.lookup_json(&path, &what)
            .await?
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .filter(|root| !root.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                    format!("answer for {what}"),
                    "has no artifact location",
                ))
            })
    }

    async fn parent(&self, kind: Child, id: &str) -> Result<Arc<str>, GatewayError> {
        let key = self.key((kind, id.to_owned()));
        telemetry::cache_lookup(PARENT_CACHE);
        self.parents
            .try_get_with(key, async {
                telemetry::cache_miss(PARENT_CACHE);
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
                GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                    format!("answer for {what}"),
                    "has no experiment id",
                ))
            })
    }

    /// GETs `path` from MLflow: its JSON answer, or the error a failed lookup is.
    async fn lookup_json(&self, path: &str, what: &str) -> Result<serde_json::Value, GatewayError> {
        let (status, body) = self.upstream.get(path, self.workspace.as_deref()).await?;
        if status == http::StatusCode::NOT_FOUND {
            return Err(GatewayError::NotFound {
                what: what.to_owned(),
            });
        }
        if status.is_client_error() {
            return Err(GatewayError::BadRequest(format!(
                "MLflow refused the lookup of {what} ({status})"
            )));
        }
        if !status.is_success() {
            return Err(GatewayError::UpstreamUnavailable(
                UpstreamFailure::LookupFailed {
                    what: what.to_owned(),
                    status,
                },
            ));
        }
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|_| {
            GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                format!("answer for {what}"),
                "is not JSON",
            ))
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

    fn model(name: &str, version: Option<&str>, kind_of: &str) -> Lookup {
        Lookup::Model {
            name: name.into(),
            version: version.map(Into::into),
            kind_of: kind_of.into(),
            both: false,
        }
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

    fn create_version(body: Value) -> Plan {
        plan_for(
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            Some(body),
            &[],
        )
        .expect("plan")
    }

    fn targets(plan: &Plan) -> Vec<(&'static str, &'static str, ReferenceTarget)> {
        plan.references
            .iter()
            .map(|r| (r.operation, r.field, r.target.clone()))
            .collect()
    }

    #[test]
    fn a_model_version_source_is_a_reference_read() {
        let run = |id: &str| {
            ReferenceTarget::Lookup(Lookup::Child {
                kind: Child::Run,
                id: id.into(),
            })
        };
        // Registering from a run: the run (run_id) and the run again (runs:/), both as reads.
        let plan = create_version(json!({"name": "m", "source": "runs:/r1/model", "run_id": "r1"}));
        assert_eq!(
            targets(&plan),
            [
                ("GetArtifact", "run_id", run("r1")),
                ("GetArtifact", "source", run("r1")),
            ]
        );
        // The request's own model is decided with the route's action, as before.
        assert_eq!(plan.model, Some(("m".to_owned(), None)));
        assert_eq!(
            plan.lookups,
            [model("m", None, "m")],
            "run_id is no longer decided with the route's action"
        );

        // Another registered model's version: that version, and run_id/model_id (which MLflow
        // ties to it) are not decided again.
        let plan = create_version(json!({
            "name": "m", "source": "models:/other@champion", "run_id": "r9", "model_id": "m-9"
        }));
        assert_eq!(
            targets(&plan),
            [(
                "GetArtifact",
                "source",
                ReferenceTarget::ModelVersion {
                    name: "other".into(),
                    selector: VersionSelector::Alias("champion".into())
                }
            )]
        );

        // A location is tied to model_id before run_id, as MLflow ties it.
        let plan = create_version(json!({
            "name": "m", "source": "s3://b/1/r1/artifacts/x", "run_id": "r1", "model_id": "m-1"
        }));
        assert!(targets(&plan).contains(&(
            "GetArtifact",
            "source",
            ReferenceTarget::Location {
                location: "s3://b/1/r1/artifacts/x".into(),
                owner: Some((Child::LoggedModel, "m-1".into())),
            }
        )));
        let plan = create_version(json!({"name": "m", "source": "s3://b/x"}));
        assert_eq!(
            targets(&plan),
            [(
                "GetArtifact",
                "source",
                ReferenceTarget::Location {
                    location: "s3://b/x".into(),
                    owner: None
                }
            )]
        );

        // A prompt version's placeholder names nothing; unreadable spellings are a 400.
        assert!(
            targets(&create_version(
                json!({"name": "p", "source": "dummy-source"})
            ))
            .is_empty()
        );
        assert!(matches!(
            plan_for(
                "POST",
                "/api/2.0/mlflow/model-versions/create",
                Some(json!({"name": "m", "source": "models://h/other/1"})),
                &[]
            ),
            Err(GatewayError::BadRequest(_))
        ));
    }

    #[test]
    fn a_body_cannot_name_another_resource_than_the_path() {
        // MLflow's FinalizeLoggedModel finalizes the body's model_id, not the path's.
        let other = plan_for(
            "PATCH",
            "/api/2.0/mlflow/logged-models/m-mine",
            Some(json!({"model_id": "m-theirs", "status": 2})),
            &[],
        );
        assert!(
            matches!(other, Err(GatewayError::BadRequest(_))),
            "{other:?}"
        );
        let same = plan_for(
            "PATCH",
            "/api/2.0/mlflow/logged-models/m-mine",
            Some(json!({"model_id": "m-mine", "status": 2})),
            &[],
        )
        .expect("plan");
        assert_eq!(
            same.lookups,
            [Lookup::Child {
                kind: Child::LoggedModel,
                id: "m-mine".into()
            }]
        );
    }

    #[test]
    fn datasets_and_scorers_used_are_reference_reads() {
        let job = plan_for(
            "POST",
            "/api/3.0/mlflow/prompt-optimization/jobs",
            Some(
                json!({"experiment_id": "3", "source_prompt_uri": "prompts:/p/1",
                        "config": {"dataset_id": "d-1"}}),
            ),
            &[],
        )
        .expect("plan");
        // The job registers its result as a new version of the source prompt.
        assert_eq!(
            targets(&job),
            [
                (
                    "CreateModelVersion",
                    "source_prompt_uri",
                    ReferenceTarget::Lookup(Lookup::Model {
                        name: "p".into(),
                        version: None,
                        kind_of: "p".into(),
                        both: false
                    })
                ),
                (
                    "GetDatasetRecords",
                    "config.dataset_id",
                    ReferenceTarget::Lookup(Lookup::Dataset("d-1".into()))
                )
            ]
        );
        let guardrail = plan_for(
            "POST",
            "/api/3.0/mlflow/gateway/guardrails/create",
            Some(json!({"name": "g", "scorer_id": "s-1"})),
            &[],
        )
        .expect("plan");
        assert_eq!(
            targets(&guardrail),
            [(
                "GetScorer",
                "scorer_id",
                ReferenceTarget::Arn(format!("{ARN}scorer/s-1"))
            )]
        );
    }

    #[test]
    fn datasets_are_looked_up_and_scorers_lie_under_their_experiment() {
        let records =
            plan_for("GET", "/api/3.0/mlflow/datasets/d-1/records", None, &[]).expect("plan");
        assert_eq!(records.lookups, [Lookup::Dataset("d-1".into())]);
        assert!(records.arns.is_empty());
        let linked = plan_for(
            "POST",
            "/api/3.0/mlflow/datasets/d-1/add-experiments",
            Some(json!({"experiment_ids": ["7"]})),
            &[],
        )
        .expect("plan");
        assert_eq!(linked.lookups, [Lookup::Dataset("d-1".into())]);
        assert_eq!(linked.arns, [format!("{ARN}experiment/7")]);
        let scorer = plan_for(
            "GET",
            "/api/3.0/mlflow/scorers/get?experiment_id=07&name=judge",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(
            scorer.arns,
            [
                format!("{ARN}experiment/7"),
                format!("{ARN}experiment/7/scorer/judge")
            ]
        );
        assert!(
            plan_for("GET", "/api/3.0/mlflow/scorers/get?name=judge", None, &[]).is_err(),
            "a scorer name without its experiment"
        );
        let online = plan_for(
            "GET",
            "/api/3.0/mlflow/scorers/online-configs?scorer_ids=s-1",
            None,
            &[],
        )
        .expect("plan");
        assert_eq!(online.arns, [format!("{ARN}scorer/s-1")]);
    }

    #[test]
    fn a_trace_id_in_a_start_trace_body_is_a_reference_to_an_existing_trace() {
        let plan = plan_for(
            "POST",
            "/api/3.0/mlflow/traces",
            Some(json!({"trace": {"trace_info": {
                "trace_id": "tr-1",
                "trace_location": {"mlflow_experiment": {"experiment_id": "4"}}
            }}})),
            &[],
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["experiment/4"]);
        let with_assessment = plan_for(
            "POST",
            "/api/3.0/mlflow/traces",
            Some(json!({"trace": {"trace_info": {
                "trace_id": "tr-1",
                "trace_location": {"mlflow_experiment": {"experiment_id": "4"}},
                "assessments": [{"assessment_id": "a-theirs", "assessment_name": "x"}]
            }}})),
            &[],
        );
        assert!(matches!(with_assessment, Err(GatewayError::BadRequest(_))));
        assert_eq!(
            targets(&plan),
            [(
                "StartTrace",
                "trace.trace_info.trace_id",
                ReferenceTarget::TraceIfExists("tr-1".into())
            )]
        );
    }

    #[test]
    fn the_traces_of_an_otlp_export_are_references_and_reserved_tags_are_refused() {
        let span = |attribute: &str| {
            json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
                "traceId": "000102030405060708090a0b0c0d0e0f",
                "attributes": [{"key": attribute, "value": {"stringValue": "v"}}]
            }]}]}]})
        };
        let headers = [("x-mlflow-experiment-id", "5")];
        let plan = plan_for(
            "POST",
            "/v1/traces",
            Some(span("mlflow.traceTag.team")),
            &headers,
        )
        .expect("plan");
        assert_eq!(arns(&plan), ["experiment/5"]);
        assert_eq!(
            targets(&plan),
            [(
                "ExportTraces",
                "trace_ids",
                ReferenceTarget::TraceIfExists("tr-000102030405060708090a0b0c0d0e0f".into())
            )]
        );
        let reserved = span("mlflow.traceTag.mlflow.artifactLocation");
        assert!(matches!(
            plan_for("POST", "/v1/traces", Some(reserved), &headers),
            Err(GatewayError::BadRequest(message)) if message.contains("mlflow.artifactLocation")
        ));
        for (method, path) in [
            ("PATCH", "/api/2.0/mlflow/traces/tr-1/tags"),
            ("DELETE", "/api/3.0/mlflow/traces/tr-1/tags"),
        ] {
            let body = json!({"key": "mlflow.trace.spansLocation", "value": "x"});
            assert!(matches!(
                plan_for(method, path, Some(body), &[]),
                Err(GatewayError::BadRequest(_))
            ));
        }
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
        assert!(plan.arns.is_empty());
        assert_eq!(plan.lookups, [model("churn", Some("3"), "churn")]);
        assert_eq!(plan.model, Some(("churn".to_owned(), None)));
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
        assert_eq!(plan.lookups, [model("churn", Some("3"), "churn")]);
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
        assert_eq!(plan.lookups, [model("churn", None, "churn")]);

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
        // The new name is of the kind of the model renamed.
        assert_eq!(
            plan.lookups,
            [
                model("churn", None, "churn"),
                model("churn-v2", None, "churn")
            ]
        );
        assert_eq!(plan.context, [(NEW_NAME, "churn-v2".to_owned())]);
    }

    #[test]
    fn creations_say_whether_they_create_a_prompt() {
        let create = |tags: Value| {
            plan_for(
                "POST",
                "/api/2.0/mlflow/registered-models/create",
                Some(json!({"name": "greet", "tags": tags})),
                &[],
            )
        };
        let prompt = create(json!([{"key": IS_PROMPT_TAG, "value": "true"}])).expect("plan");
        assert_eq!(arns(&prompt), ["prompt/greet"]);
        assert!(prompt.lookups.is_empty());
        assert_eq!(
            prompt.model,
            Some(("greet".to_owned(), Some(ModelKind::Prompt)))
        );
        let model = create(json!([{"key": "team", "value": "a"}])).expect("plan");
        assert_eq!(arns(&model), ["registered-model/greet"]);
        let model = create(json!([])).expect("plan");
        assert_eq!(arns(&model), ["registered-model/greet"]);
        // As MLflow reads them: the last value of the key wins.
        let flipped = json!([{"key": IS_PROMPT_TAG, "value": "true"}, {"key": IS_PROMPT_TAG, "value": "false"}]);
        assert_eq!(
            arns(&create(flipped).expect("plan")),
            ["registered-model/greet"]
        );
        assert!(matches!(
            create(json!([{"key": IS_PROMPT_TAG, "value": true}])),
            Err(GatewayError::BadRequest(_))
        ));
    }

    #[test]
    fn writing_the_prompt_tag_is_decided_on_both_kinds() {
        let plan = plan_for(
            "DELETE",
            "/api/2.0/mlflow/registered-models/delete-tag",
            Some(json!({"name": "greet", "key": IS_PROMPT_TAG})),
            &[],
        )
        .expect("plan");
        assert_eq!(
            plan.lookups,
            [Lookup::Model {
                name: "greet".into(),
                version: None,
                kind_of: "greet".into(),
                both: true
            }]
        );
        let other = plan_for(
            "POST",
            "/api/2.0/mlflow/registered-models/set-tag",
            Some(json!({"name": "greet", "key": "team", "value": "a"})),
            &[],
        )
        .expect("plan");
        assert_eq!(other.lookups, [model("greet", None, "greet")]);
    }

    #[test]
    fn model_facts_say_the_kind_and_the_tag_keys() {
        let answer = json!({"registered_model": {"name": "greet",
            "tags": [{"key": IS_PROMPT_TAG, "value": "true"}, {"key": "team", "value": "a"}]}});
        let facts = ModelFacts::from_answer(&answer).expect("facts");
        assert_eq!(facts.kind, ModelKind::Prompt);
        assert_eq!(
            facts.context()[1],
            ("mlflow:PromptTag/team".to_owned(), "a".to_owned())
        );
        let answer = json!({"registered_model": {"name": "churn"}});
        let facts = ModelFacts::from_answer(&answer).expect("facts");
        assert_eq!(facts.kind, ModelKind::Model);
        assert!(facts.context().is_empty());
        assert!(ModelFacts::from_answer(&json!({"registered_model": {}})).is_none());
        let bad_tags = json!({"registered_model": {"name": "x", "tags": [{"value": "v"}]}});
        assert!(ModelFacts::from_answer(&bad_tags).is_none());
    }

    /// A stand-in MLflow answering GetRegisteredModel: `greet` is a prompt, `churn` a model,
    /// `gone` does not exist, `broken` fails.
    async fn registry() -> (Resolver, Arc<std::sync::atomic::AtomicUsize>) {
        use axum::extract::Query;
        use std::collections::HashMap;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/api/2.0/mlflow/registered-models/get",
            axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    let name = q.get("name").cloned().unwrap_or_default();
                    let tags = match name.as_str() {
                        "greet" => json!([{"key": IS_PROMPT_TAG, "value": "true"}, {"key": "team", "value": "a"}]),
                        "churn" => json!([{"key": "team", "value": "b"}]),
                        "gone" => return (http::StatusCode::NOT_FOUND, "{}".to_owned()),
                        _ => return (http::StatusCode::INTERNAL_SERVER_ERROR, "{}".to_owned()),
                    };
                    let body = json!({"registered_model": {"name": name, "tags": tags}});
                    (http::StatusCode::OK, body.to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let upstream = Upstream::new(
            &format!("http://{addr}").parse().expect("uri"),
            std::time::Duration::from_secs(5),
        )
        .expect("upstream");
        (
            Resolver::new(ArnScope::new("us-east-1", "111111111111"), upstream),
            calls,
        )
    }

    fn strip(arns: Vec<String>) -> Vec<String> {
        arns.iter()
            .map(|arn| arn.strip_prefix(ARN).expect("our prefix").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn registered_models_resolve_to_models_or_prompts() {
        let (resolver, calls) = registry().await;
        let version = |name: &str| Plan {
            lookups: vec![model(name, Some("2"), name)],
            model: Some((name.to_owned(), None)),
            ..Plan::default()
        };
        let arns = resolver.resources(&version("greet")).await.expect("arns");
        assert_eq!(strip(arns), ["prompt/greet/version/2"]);
        let arns = resolver.resources(&version("churn")).await.expect("arns");
        assert_eq!(strip(arns), ["registered-model/churn/version/2"]);
        // The tags are condition keys of the request, under the kind's prefix.
        let named = resolver
            .named_model(&version("churn"))
            .await
            .expect("facts")
            .expect("named");
        assert_eq!(named.kind, Some(ModelKind::Model));
        assert_eq!(
            named.keys,
            [("mlflow:ModelTag/team".to_owned(), "b".to_owned())]
        );
        assert_eq!(
            named.renamed_arn(resolver.scope(), "churn2").as_deref(),
            Some("arn:mlflow:us-east-1:111111111111:registered-model/churn2")
        );
        let named = resolver
            .named_model(&version("greet"))
            .await
            .expect("facts")
            .expect("named");
        assert_eq!(
            named.keys[1],
            ("mlflow:PromptTag/team".to_owned(), "a".to_owned())
        );
        // Cached: two names, two calls; forgetting one asks again.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        resolver.forget_model("greet").await;
        resolver.resources(&version("greet")).await.expect("arns");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        // A model MLflow does not have is decided on both kinds, and has no keys.
        let arns = resolver.resources(&version("gone")).await.expect("arns");
        assert_eq!(
            strip(arns),
            ["prompt/gone/version/2", "registered-model/gone/version/2"]
        );
        let named = resolver.named_model(&version("gone")).await.expect("ok");
        assert_eq!(named.and_then(|m| m.arn(resolver.scope())), None);
        // A failed lookup is an error, never a default.
        assert!(matches!(
            resolver.resources(&version("broken")).await,
            Err(GatewayError::UpstreamUnavailable(_))
        ));
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
            Some(json!({"resourceSpans": []})),
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
