//! The GraphQL step: `/graphql` is decided root field by root field, each as the REST request
//! it amounts to ([`mlgate_catalog::graphql_request`]): its identifiers resolved (run →
//! experiment, experiment name, tags, creator) and decided like that REST route; all must be
//! allowed, as in a batch. A search named by experiment ids (`mlflowSearchRuns`) is narrowed
//! to the readable ones as its REST twin is ([`filter::narrow`]), and the forwarded request
//! rewritten to name them alone. A run's nested `experiment` needs `mlflow:GetExperiment` on the
//! run's experiment; lists of model versions in the answer (a run's `modelVersions`,
//! `mlflowSearchModelVersions`) keep only the versions the caller may read.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, header};
use mlgate_catalog::{
    GET_EXPERIMENT, GraphQlField, GraphQlRequest, GraphQlRewrite, MODEL_VERSIONS, graphql_request,
};

use super::{Deciders, Gateway, Trail};
use crate::authorize::{Access, Asker, EXECUTE_API_INVOKE};
use crate::error::{Denial, GatewayError, UpstreamFailure};
use crate::filter::{self, MAX_SEARCH_ANSWER_BYTES, Narrowed, creator_arn};
use crate::listen::Peer;
use crate::normalize::{RequestBody, Target};
use crate::rewrite::with_body;

/// The request as the GraphQL step needs it.
pub(super) struct GraphQlCall<'a> {
    pub parts: Parts,
    pub body: RequestBody,
    pub target: Target,
    pub peer: &'a Peer,
}

/// What was decided, field by field, for the audit record; and what narrowing changes in the
/// forwarded request.
#[derive(Default)]
struct Decided {
    actions: Vec<String>,
    resources: Vec<String>,
    fields: Vec<String>,
    rewrite: GraphQlRewrite,
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

    fn narrowed(&mut self, field: &GraphQlField, readable: usize, of: usize) {
        self.fields.push(format!(
            "{}={} narrowed to {readable} of {of} experiment(s)",
            field.key, field.name
        ));
    }

    /// The record lists the fields' actions in order (one per field), the execute-api pair last.
    fn into_trail(self, execute_api: &str, trail: &mut Trail, allowed: bool) {
        trail.decisions.actions = self.actions;
        trail.decisions.actions.push(EXECUTE_API_INVOKE.to_owned());
        trail.decisions.resources = self.resources;
        trail.decisions.resources.push(execute_api.to_owned());
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
        deciders: &Deciders,
        asker: &Asker<'_>,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let GraphQlCall {
            mut parts,
            body,
            target,
            peer,
        } = request;
        let document = graphql_request(body.bytes().unwrap_or_default())?;
        let mut decided = Decided::default();
        for field in &document.fields {
            let outcome = self
                .graphql_field(field, deciders, asker, &parts, trail, &mut decided)
                .await;
            if let Err(error) = outcome {
                decided.into_trail(asker.execute_api, trail, false);
                return Err(match error {
                    GatewayError::PermissionDenied(denial) => {
                        GatewayError::PermissionDenied(Denial::GraphQlField {
                            key: field.key.clone(),
                            name: field.name,
                            denial: Box::new(denial),
                        })
                    }
                    other => other,
                });
            }
        }
        let rewrite = std::mem::take(&mut decided.rewrite);
        decided.into_trail(asker.execute_api, trail, true);
        let body = match rewrite.is_empty() {
            true => body,
            false => {
                let bytes = rewrite.apply(body.bytes().unwrap_or_default())?;
                with_body(&mut parts, Bytes::from(bytes))
            }
        };

        let filters = document.fields.iter().any(|f| !f.model_versions.is_empty());
        if filters {
            // The answer is read and rewritten: ask for it uncompressed.
            parts.headers.remove(header::ACCEPT_ENCODING);
        }
        let response = self.forward(parts, body.into_body(), target, peer).await?;
        if !filters {
            return Ok(response);
        }
        self.filter_model_versions(&document, deciders, asker, response, trail)
            .await
    }

    /// Resolves, narrows and decides one root field (and a run's nested `experiment`).
    async fn graphql_field(
        &self,
        field: &GraphQlField,
        deciders: &Deciders,
        asker: &Asker<'_>,
        parts: &Parts,
        trail: &mut Trail,
        decided: &mut Decided,
    ) -> Result<(), GatewayError> {
        let action = field.action();
        let (Some(route), Some(params)) = (field.route, field.params.as_ref()) else {
            // `test`, `testMutation`, `__typename`, introspection: no resource but the server.
            let arns = [deciders.resolver.scope().server()];
            decided.note(field, &action, &arns);
            let access = Access {
                action: &action,
                arns: &arns,
                experiments: &[],
                model: None,
            };
            return deciders
                .authorizer
                .decide(asker, access, &mut trail.decisions)
                .await;
        };
        let mut resolved = deciders
            .resolver
            .resolve(route, &[], params, &parts.headers)
            .await?;
        let mut context = asker.context.clone();
        for (key, value) in &resolved.plan.context {
            context.insert(key, value.clone());
        }
        let asker = asker.with_context(context);
        let mut params = params.clone();
        let narrowed = filter::narrow(
            &deciders.authorizer,
            &asker,
            route,
            &action,
            &mut resolved,
            &mut params,
        )
        .await?;
        if let Narrowed::To { readable, of } = narrowed {
            decided.narrowed(field, readable.len(), of);
            let ids = serde_json::Value::from(readable.clone());
            field.set_input(&[("experimentIds", ids)], &mut decided.rewrite)?;
            // None left: MLflow searches no experiment, nothing to decide (REST answers empty).
            if readable.is_empty() {
                return Ok(());
            }
        }
        decided.note(field, &action, &resolved.arns);
        let access = Access {
            action: &action,
            arns: &resolved.arns,
            experiments: &resolved.experiments,
            model: None,
        };
        deciders
            .authorizer
            .decide(&asker, access, &mut trail.decisions)
            .await?;
        if field.reads_experiment {
            for experiment in &resolved.experiments {
                let arns = [deciders.resolver.scope().experiment(&experiment.0)];
                decided.note(field, GET_EXPERIMENT, &arns);
                let access = Access {
                    action: GET_EXPERIMENT,
                    arns: &arns,
                    experiments: std::slice::from_ref(experiment),
                    model: None,
                };
                deciders
                    .authorizer
                    .decide(&asker, access, &mut trail.decisions)
                    .await?;
            }
        }
        Ok(())
    }

    /// Keeps, in the answer, only the model versions the caller may read
    /// (`mlflow:GetModelVersion` on each, as the REST search filter decides).
    async fn filter_model_versions(
        &self,
        document: &GraphQlRequest,
        deciders: &Deciders,
        asker: &Asker<'_>,
        response: Response,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let (mut head, body) = response.into_parts();
        if head.headers.contains_key(header::CONTENT_ENCODING) {
            return Err(GatewayError::UpstreamUnavailable(
                UpstreamFailure::unusable("GraphQL answer", "is encoded; mlgate cannot filter it"),
            ));
        }
        let bytes = self
            .upstream
            .collect(body, MAX_SEARCH_ANSWER_BYTES, "a GraphQL answer")
            .await?;
        let mut answer: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                "GraphQL answer",
                "is not JSON",
            ))
        })?;

        let listing = &MODEL_VERSIONS;
        let scope = deciders.resolver.scope();
        let lists: Vec<_> = document
            .fields
            .iter()
            .flat_map(|f| &f.model_versions)
            .collect();
        // Who created each model listed, when a policy reads it (as the REST filter does).
        let mut models = Vec::new();
        if asker.reads_creator()
            && let Some(data) = answer.get_mut("data")
        {
            for list in &lists {
                list.retain(data, &mut |name, _| {
                    models.push(scope.registered_model(name));
                    true
                });
            }
        }
        models.sort_unstable();
        models.dedup();
        let creators = deciders.authorizer.creators(asker, &models).await?;
        let reader = deciders.searches.reader(listing, asker);
        let (mut kept, mut seen) = (0usize, 0usize);
        if let Some(data) = answer.get_mut("data") {
            for list in &lists {
                list.retain(data, &mut |name, version| {
                    seen += 1;
                    let item = serde_json::json!({"name": name, "version": version});
                    let creator = creator_arn(listing, scope, &item)
                        .and_then(|arn| creators.get(&arn))
                        .map(String::as_str);
                    let readable = reader.readable(&item, creator, None);
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
