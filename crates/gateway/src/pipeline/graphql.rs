//! The GraphQL step: `/graphql` is decided root field by root field, each as the REST request
//! it amounts to ([`mlgate_catalog::graphql_request`]): its identifiers resolved (run →
//! experiment, experiment name, tags, creator) and decided like that REST route; all must be
//! allowed, as in a batch. A run's nested `experiment` needs `mlflow:GetExperiment` on the
//! run's experiment; lists of model versions in the answer (a run's `modelVersions`,
//! `mlflowSearchModelVersions`) keep only the versions the caller may read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, header};
use mlgate_catalog::{GraphQlError, GraphQlField, GraphQlRequest, graphql_request};
use mlgate_policy::Context;

use super::{Gateway, MAX_SEARCH_PAGE_BYTES, Trail};
use crate::authorize::EXECUTE_API_INVOKE;
use crate::classify::Call;
use crate::error::GatewayError;
use crate::filter::{Listing, Readability};
use crate::identity::Principal;
use crate::listen::Peer;
use crate::normalize::{RequestBody, Target};
use crate::resolve::{self, ExperimentFacts};

/// The request as the GraphQL step needs it.
pub(super) struct GraphQlCall<'a> {
    pub parts: Parts,
    pub body: RequestBody,
    pub principal: &'a Principal,
    pub call: &'a Call,
    pub context: &'a Context,
    pub target: Target,
    pub peer: &'a Peer,
}

/// Who asks what, the same for every field.
#[derive(Clone, Copy)]
struct Asked<'a> {
    principal: &'a Principal,
    call: &'a Call,
    context: &'a Context,
    parts: &'a Parts,
    creators_read: bool,
}

/// Whose answer to which document is being filtered.
struct Answer<'a> {
    document: &'a GraphQlRequest,
    principal: &'a Principal,
    context: &'a Context,
    creators_read: bool,
}

/// What was decided, field by field, for the audit record.
#[derive(Default)]
struct Decided {
    actions: Vec<String>,
    resources: Vec<String>,
    fields: Vec<String>,
}

impl Decided {
    fn note(&mut self, field: &GraphQlField, action: &str, resources: &[String]) {
        self.actions.push(action.to_owned());
        for arn in resources {
            if !self.resources.contains(arn) {
                self.resources.push(arn.clone());
            }
        }
        self.fields
            .push(format!("{}={} {action}", field.key, field.name));
    }

    fn into_trail(self, call: &Call, trail: &mut Trail, allowed: bool) {
        trail.actions = self.actions;
        trail.actions.push(EXECUTE_API_INVOKE.to_owned());
        trail.resources = self.resources;
        trail.resources.push(call.execute_api.clone());
        if allowed {
            trail.reason = Some(format!(
                "GraphQL fields allowed: {}",
                self.fields.join(", ")
            ));
        }
    }
}

impl Gateway {
    /// Decides every root field of the executed operation, forwards, and filters the lists of
    /// model versions in the answer.
    pub(super) async fn graphql(
        &self,
        request: GraphQlCall<'_>,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let GraphQlCall {
            mut parts,
            body,
            principal,
            call,
            context,
            target,
            peer,
        } = request;
        let document = graphql_request(body.bytes().unwrap_or_default()).map_err(refusal)?;
        let mut decided = Decided::default();
        let creators_read = self.policies_read_creator(principal).await?;
        let asked = Asked {
            principal,
            call,
            context,
            parts: &parts,
            creators_read,
        };
        for field in &document.fields {
            let outcome = self.graphql_field(field, &asked, trail, &mut decided).await;
            if let Err(error) = outcome {
                decided.into_trail(call, trail, false);
                return Err(match error {
                    GatewayError::PermissionDenied(message) => GatewayError::PermissionDenied(
                        format!("GraphQL field '{}' ({}): {message}", field.key, field.name),
                    ),
                    other => other,
                });
            }
        }
        decided.into_trail(call, trail, true);

        let filters = document.fields.iter().any(|f| !f.model_versions.is_empty());
        if filters {
            // The answer is read and rewritten: ask for it uncompressed.
            parts.headers.remove(header::ACCEPT_ENCODING);
        }
        let response = self.forward(parts, body.into_body(), target, peer).await?;
        if !filters {
            return Ok(response);
        }
        let answer = Answer {
            document: &document,
            principal,
            context,
            creators_read,
        };
        self.filter_model_versions(answer, response, trail).await
    }

    /// Resolves and decides one root field (and a run's nested `experiment`).
    async fn graphql_field(
        &self,
        field: &GraphQlField,
        asked: &Asked<'_>,
        trail: &mut Trail,
        decided: &mut Decided,
    ) -> Result<(), GatewayError> {
        let Asked {
            principal,
            call,
            context,
            parts,
            creators_read,
        } = *asked;
        let action = field.action();
        let (Some(route), Some(params)) = (field.route, field.params.as_ref()) else {
            // `test`, `testMutation`, `__typename`, introspection: no resource but the server.
            let resources = [self.resolver.scope().server()];
            decided.note(field, &action, &resources);
            return self
                .authorize(principal, Some((&action, &resources)), call, context, trail)
                .await;
        };
        let plan = resolve::plan(self.resolver.scope(), route, &[], params, &parts.headers)?;
        let resources = self.resolver.resources(&plan).await?;
        let mut context = context.clone();
        for (key, value) in &plan.context {
            context.insert(key, value.clone());
        }
        let experiments = self
            .with_creators(
                creators_read,
                self.resolver.experiment_contexts(&resources).await?,
            )
            .await?;
        decided.note(field, &action, &resources);
        self.authorize_each(
            principal,
            &action,
            &resources,
            (&experiments, &[]),
            call,
            &context,
            trail,
        )
        .await?;
        if field.reads_experiment {
            const GET_EXPERIMENT: &str = "mlflow:GetExperiment";
            for (id, facts) in &experiments {
                let experiment = [self.resolver.scope().experiment(id)];
                let keyed: [(String, Arc<ExperimentFacts>); 1] = [(id.clone(), facts.clone())];
                decided.note(field, GET_EXPERIMENT, &experiment);
                self.authorize_each(
                    principal,
                    GET_EXPERIMENT,
                    &experiment,
                    (&keyed, &[]),
                    call,
                    &context,
                    trail,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Keeps, in the answer, only the model versions the caller may read
    /// (`mlflow:GetModelVersion` on each, as the REST search filter decides).
    async fn filter_model_versions(
        &self,
        answer_to: Answer<'_>,
        response: Response,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let Answer {
            document,
            principal,
            context,
            creators_read,
        } = answer_to;
        use http_body_util::BodyExt;
        let (mut head, body) = response.into_parts();
        if head.headers.contains_key(header::CONTENT_ENCODING) {
            return Err(GatewayError::UpstreamUnavailable(
                "MLflow's GraphQL answer is encoded; mlgate cannot filter it".into(),
            ));
        }
        let bytes = tokio::time::timeout(
            self.settings.upstream_timeout,
            http_body_util::Limited::new(body, MAX_SEARCH_PAGE_BYTES).collect(),
        )
        .await
        .map_err(|_| {
            GatewayError::UpstreamTimeout("MLflow did not finish a GraphQL answer in time".into())
        })?
        .map_err(|e| {
            GatewayError::UpstreamUnavailable(format!("MLflow broke off a GraphQL answer: {e}"))
        })?
        .to_bytes();
        let mut answer: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            GatewayError::UpstreamUnavailable("MLflow's GraphQL answer is not JSON".into())
        })?;

        let listing = Listing::of("SearchModelVersions")
            .ok_or_else(|| GatewayError::Internal("no listing for SearchModelVersions".into()))?;
        let scope = self.resolver.scope();
        let lists: Vec<_> = document
            .fields
            .iter()
            .flat_map(|f| &f.model_versions)
            .collect();
        // Who created each model listed, when a policy reads it (as the REST filter does).
        let creators = if creators_read {
            let mut models = Vec::new();
            if let Some(data) = answer.get_mut("data") {
                for list in &lists {
                    list.retain(data, &mut |name, _| {
                        models.push(scope.registered_model(name));
                        true
                    });
                }
            }
            models.sort_unstable();
            models.dedup();
            self.store
                .resource_creators(&models)
                .await
                .map_err(super::store_down)?
        } else {
            HashMap::new()
        };
        let (policies, session) = self.policies(principal).await?;
        let s = &self.settings;
        let execute_api_root =
            mlgate_catalog::execute_api_arn(&s.region, &s.account, &s.api_id, &s.stage, "GET", "/");
        let reader = Readability {
            listing,
            scope,
            policies: &policies,
            session: session.as_deref(),
            principal: &principal.arn,
            execute_api_root: &execute_api_root,
            context,
        };
        let (mut kept, mut seen) = (0usize, 0usize);
        if let Some(data) = answer.get_mut("data") {
            for list in &lists {
                list.retain(data, &mut |name, version| {
                    seen += 1;
                    let item = serde_json::json!({"name": name, "version": version});
                    let creator = listing
                        .creator_arn(scope, &item)
                        .and_then(|arn| creators.get(&arn))
                        .map(String::as_str);
                    let readable = reader.readable(&item, creator);
                    kept += usize::from(readable);
                    readable
                });
            }
        }
        if let Some(reason) = trail.reason.as_mut() {
            reason.push_str(&format!("; model versions filtered: {kept} of {seen} kept"));
        }
        let body = Bytes::from(answer.to_string());
        head.headers.remove(header::TRANSFER_ENCODING);
        head.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Ok(Response::from_parts(head, Body::from(body)))
    }
}

/// A document mlgate cannot read exactly as MLflow would is refused; an unknown root field is
/// denied.
fn refusal(error: GraphQlError) -> GatewayError {
    match error {
        GraphQlError::UnknownField(_) => GatewayError::PermissionDenied(error.to_string()),
        other => GatewayError::BadRequest(other.to_string()),
    }
}
