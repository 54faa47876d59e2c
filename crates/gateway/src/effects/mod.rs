//! After forwarding: what a request that went through changes in mlgate's own state. The
//! resolver's cached facts that the write may have changed are dropped (an experiment's name
//! or tags, a registered model's, the experiment of a trace MLflow may have moved), and
//! mlgate's creator records (`mlflow:ResourceCreator`) follow the creations, deletions and
//! renames of experiments and registered models. A failure to record is logged: the change
//! happened in MLflow either way.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use mlgate_catalog::{Change, Changes, Params, Route};

use crate::error::GatewayError;
use crate::forward::Upstream;
use crate::identity::Principal;
use crate::resolve::{self, ArnScope, NamedModel, Resolved, Resolver};
use crate::store::Store;

/// Largest CreateExperiment answer read for the new experiment's id.
const MAX_CREATION_ANSWER_BYTES: usize = 1 << 20;

/// What a request does to the resources whose creator mlgate records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreatorChange {
    /// CreateExperiment: the id is in MLflow's answer.
    Experiment,
    /// CreateRegisteredModel: the ARN of the named model or prompt.
    Model(String),
    /// DeleteRegisteredModel: a model of the same name created later is someone else's.
    ModelDeleted(String),
    /// RenameRegisteredModel: the ARN is the name, the creator stays.
    ModelRenamed { from: String, to: String },
}

/// The creator change a request will make if it succeeds. `named_model` is the registered
/// model or prompt the request names, of the kind the resolver found (for a creation: the kind
/// its tags ask for); its ARN is the record's key.
pub fn creator_change(
    route: &Route,
    params: &Params,
    scope: &ArnScope,
    named_model: Option<&NamedModel>,
) -> Result<Option<CreatorChange>, GatewayError> {
    let model = || named_model.and_then(|model| model.arn(scope));
    Ok(match route.changes {
        Changes::Experiment(Change::Create) => Some(CreatorChange::Experiment),
        Changes::RegisteredModel(Change::Create) => model().map(CreatorChange::Model),
        Changes::RegisteredModel(Change::Delete) => model().map(CreatorChange::ModelDeleted),
        Changes::RegisteredModel(Change::Rename) => {
            let new_name = params.try_str_value("new_name")?;
            match (model(), new_name, named_model) {
                (Some(from), Some(new_name), Some(named)) => named
                    .renamed_arn(scope, new_name)
                    .map(|to| CreatorChange::ModelRenamed { from, to }),
                _ => None,
            }
        }
        _ => None,
    })
}

/// The state a forwarded request's effects land in.
pub struct Effects<'a> {
    pub store: &'a Store,
    pub resolver: &'a Resolver,
    pub upstream: &'a Upstream,
}

impl Effects<'_> {
    /// Applies the effects of a forwarded request and hands its answer on.
    pub async fn settle(
        &self,
        route: &Route,
        resolved: &Resolved,
        creator: Option<CreatorChange>,
        principal: &Principal,
        response: Result<Response, GatewayError>,
    ) -> Result<Response, GatewayError> {
        self.forget_changed(route, resolved).await;
        match (creator, response) {
            (Some(change), Ok(response)) if response.status().is_success() => {
                Ok(self.record_creator(change, response, principal).await)
            }
            (_, response) => response,
        }
    }

    /// Drops the cached facts the request may have changed.
    async fn forget_changed(&self, route: &Route, resolved: &Resolved) {
        self.resolver.forget_rewritten_traces(&resolved.plan).await;
        match route.changes {
            Changes::Experiment(_) => {
                for (id, _) in &resolved.experiments {
                    self.resolver.forget_experiment(id).await;
                }
            }
            Changes::RegisteredModel(_) => self.forget_model(resolved).await,
            Changes::Nothing | Changes::ModelVersionStage => {}
        }
    }

    /// Drops the cached facts of the registered model the request names, and of its new name.
    async fn forget_model(&self, resolved: &Resolved) {
        if let Some(model) = &resolved.model {
            self.resolver.forget_model(&model.name).await;
            let new_name = resolved
                .plan
                .context
                .iter()
                .find(|(k, _)| *k == resolve::NEW_NAME);
            if let Some((_, new_name)) = new_name {
                self.resolver.forget_model(new_name).await;
            }
        }
    }

    /// Records the principal as the creator of what MLflow just created, and keeps the records
    /// of deleted and renamed registered models in step.
    async fn record_creator(
        &self,
        change: CreatorChange,
        response: Response,
        principal: &Principal,
    ) -> Response {
        let written = match &change {
            CreatorChange::ModelDeleted(arn) => self.store.forget_creator(arn).await,
            CreatorChange::ModelRenamed { from, to } => self.store.move_creator(from, to).await,
            CreatorChange::Model(_) | CreatorChange::Experiment => Ok(()),
        };
        if let Err(error) = written {
            tracing::error!(%error, "cannot update a resource creator record");
        }
        let (arn, response) = match change {
            CreatorChange::Model(arn) => (Some(arn), response),
            CreatorChange::ModelDeleted(_) | CreatorChange::ModelRenamed { .. } => {
                return response;
            }
            CreatorChange::Experiment => {
                let (parts, body) = response.into_parts();
                let bytes = match self
                    .upstream
                    .collect(
                        body,
                        MAX_CREATION_ANSWER_BYTES,
                        "its CreateExperiment answer",
                    )
                    .await
                {
                    Ok(bytes) => bytes,
                    Err(error) => return error.into_response(),
                };
                let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("experiment_id")?.as_str().map(str::to_owned));
                let arn = id.map(|id| self.resolver.scope().experiment(&id));
                (arn, Response::from_parts(parts, Body::from(bytes)))
            }
        };
        if let Some(arn) = arn
            && let Err(error) = self
                .store
                .record_creator(&arn, &principal.name, &principal.arn)
                .await
        {
            tracing::error!(%error, resource = %arn, "cannot record the creator");
        }
        response
    }
}
