//! The GraphQL step: `/graphql` is decided root field by root field, each as the REST request
//! it amounts to ([`mlgate_catalog::graphql_request`]): its identifiers resolved (run →
//! experiment, experiment name, tags, creator) and decided like that REST route; all must be
//! allowed, as in a batch. A search named by experiment ids (`mlflowSearchRuns`) is narrowed
//! to the readable ones as its REST twin is ([`filter::narrow`]), and the forwarded request
//! rewritten to name them alone. A run's nested `experiment` needs `mlflow:GetExperiment` on the
//! run's experiment; lists of model versions in the answer (a run's `modelVersions`,
//! `mlflowSearchModelVersions`) keep only the versions the caller may read, and a search's page
//! is refilled as a REST search's ([`filter::fill_page`]) by repeating the request at further
//! upstream pages.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, header};
use mlgate_catalog::{
    GET_EXPERIMENT, GraphQlError, GraphQlField, GraphQlRequest, GraphQlRewrite, MODEL_VERSIONS,
    NEXT_PAGE_TOKEN, Params, graphql_request,
};

use super::{Deciders, Gateway, Trail};
use crate::authorize::{Access, Asker, EXECUTE_API_INVOKE};
use crate::error::{Denial, GatewayError, UpstreamFailure};
use crate::filter::{
    self, MAX_SEARCH_ANSWER_BYTES, Narrowed, PageLookups, PageRequest, creator_arn,
};
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
        let narrowing = std::mem::take(&mut decided.rewrite);
        decided.into_trail(asker.execute_api, trail, true);

        // Refilled searches ask MLflow for mlgate's upstream page, not the client's token.
        let mut refills = Vec::new();
        for field in document.fields.iter().filter(|f| f.paging.is_some()) {
            let fields = field.params.as_ref().map(Params::fields);
            let empty = serde_json::Map::new();
            let start = PageRequest::read(
                &MODEL_VERSIONS,
                fields.unwrap_or(&empty),
                &deciders.searches.tokens,
                &asker.principal.arn,
            )?;
            refills.push((field, start));
        }
        let filters = document.fields.iter().any(|f| !f.model_versions.is_empty());
        if filters {
            // The answer is read and rewritten: ask for it uncompressed.
            parts.headers.remove(header::ACCEPT_ENCODING);
        }
        let client_body = Bytes::copy_from_slice(body.bytes().unwrap_or_default());
        let repeat = Repeat {
            narrowing,
            refills,
            client_body,
        };
        let rewrite = repeat.rewrite(None)?;
        let body = match rewrite.is_empty() {
            true => body,
            false => with_body(&mut parts, Bytes::from(rewrite.apply(&repeat.client_body)?)),
        };
        let again = Again {
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            path_and_query: target.path_and_query.clone(),
            peer,
        };
        let response = self.forward(parts, body.into_body(), target, peer).await?;
        if !filters {
            return Ok(response);
        }
        let (mut head, body) = response.into_parts();
        let mut answer = self.graphql_answer(&head, body).await?;
        let mut counts = (0usize, 0usize);
        for (at, (field, _)) in repeat.refills.iter().enumerate() {
            let page = self
                .refill(&repeat, &again, at, &answer, deciders, asker)
                .await?;
            counts.0 += page.items.len();
            counts.1 += page.seen;
            set_page(field, page, &mut answer);
        }
        self.filter_model_versions(&document, deciders, asker, &mut answer, &mut counts)
            .await?;
        if let Some(reason) = trail.reason.as_mut() {
            reason.push_str(&format!(
                "; model versions filtered: {} of {} kept",
                counts.0, counts.1
            ));
        }
        let body = Bytes::from(answer.to_string());
        head.headers.remove(header::TRANSFER_ENCODING);
        head.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Ok(Response::from_parts(head, Body::from(body)))
    }

    /// A GraphQL answer from MLflow as JSON.
    async fn graphql_answer(
        &self,
        head: &http::response::Parts,
        body: Body,
    ) -> Result<serde_json::Value, GatewayError> {
        if head.headers.contains_key(header::CONTENT_ENCODING) {
            return Err(GatewayError::UpstreamUnavailable(
                UpstreamFailure::unusable("GraphQL answer", "is encoded; mlgate cannot filter it"),
            ));
        }
        let bytes = self
            .upstream
            .collect(body, MAX_SEARCH_ANSWER_BYTES, "a GraphQL answer")
            .await?;
        serde_json::from_slice(&bytes).map_err(|_| {
            GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                "GraphQL answer",
                "is not JSON",
            ))
        })
    }

    /// Fills the page of refilled search `at` with readable versions as a REST search is
    /// ([`filter::fill_page`]): its first upstream page is in `answer`, further ones are asked
    /// for by repeating the request.
    async fn refill(
        &self,
        repeat: &Repeat<'_>,
        again: &Again<'_>,
        at: usize,
        answer: &serde_json::Value,
        deciders: &Deciders,
        asker: &Asker<'_>,
    ) -> Result<RefilledPage, GatewayError> {
        let (field, start) = &repeat.refills[at];
        let listing = &MODEL_VERSIONS;
        let searches = &deciders.searches;
        let reader = searches.reader(listing, asker);
        let first = Mutex::new(Some(versions_page(field, answer)));
        let seen = AtomicUsize::new(0);
        let page = filter::fill_page(
            listing,
            start.want,
            start.start.clone(),
            deciders.resolver.scope(),
            |token: Option<String>, size| {
                let first = first.lock().ok().and_then(|mut f| f.take());
                async move {
                    match first {
                        Some(page) => Ok::<_, GatewayError>(page),
                        None => {
                            let rewrite = repeat.rewrite(Some((at, token.as_deref(), size)))?;
                            let answer = self
                                .graphql_again(again, &repeat.client_body, &rewrite)
                                .await?;
                            Ok(versions_page(field, &answer))
                        }
                    }
                }
            },
            |lookups: PageLookups| searches.page_facts(listing, asker, lookups),
            |item, creator, links| {
                seen.fetch_add(1, Ordering::Relaxed);
                reader.readable(item, creator, links)
            },
        )
        .await?;
        let fields = field.params.as_ref().map(Params::fields);
        let empty = serde_json::Map::new();
        let token = page.next.as_ref().map(|cursor| {
            searches.tokens.seal(
                cursor,
                &asker.principal.arn,
                listing,
                fields.unwrap_or(&empty),
            )
        });
        let items = page
            .items
            .into_iter()
            .map(|mut item| item["graphql"].take())
            .collect();
        Ok(RefilledPage {
            items,
            token,
            seen: seen.into_inner(),
        })
    }

    /// The request repeated with `rewrite` made to the client's body.
    async fn graphql_again(
        &self,
        again: &Again<'_>,
        client_body: &[u8],
        rewrite: &GraphQlRewrite,
    ) -> Result<serde_json::Value, GatewayError> {
        let body = Bytes::from(rewrite.apply(client_body)?);
        let mut request = Request::new(Body::from(body.clone()));
        *request.method_mut() = again.method.clone();
        *request.headers_mut() = again.headers.clone();
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let response = self
            .upstream
            .forward(request, again.path_and_query.clone(), again.peer)
            .await?;
        let (head, body) = response.into_parts();
        if !head.status.is_success() {
            return Err(GatewayError::UpstreamUnavailable(
                UpstreamFailure::unusable(
                    "GraphQL answer",
                    format!("of a further page is {}", head.status),
                ),
            ));
        }
        self.graphql_answer(&head, body).await
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
    /// (`mlflow:GetModelVersion` on each, as the REST search filter decides), in the lists not
    /// refilled; adds (kept, seen) to `counts`.
    async fn filter_model_versions(
        &self,
        document: &GraphQlRequest,
        deciders: &Deciders,
        asker: &Asker<'_>,
        answer: &mut serde_json::Value,
        counts: &mut (usize, usize),
    ) -> Result<(), GatewayError> {
        let listing = &MODEL_VERSIONS;
        let scope = deciders.resolver.scope();
        let lists: Vec<_> = document
            .fields
            .iter()
            .filter(|f| f.paging.is_none())
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
        if let Some(data) = answer.get_mut("data") {
            for list in &lists {
                list.retain(data, &mut |name, version| {
                    counts.1 += 1;
                    let item = serde_json::json!({"name": name, "version": version});
                    let creator = creator_arn(listing, scope, &item)
                        .and_then(|arn| creators.get(&arn))
                        .map(String::as_str);
                    let readable = reader.readable(&item, creator, None);
                    counts.0 += usize::from(readable);
                    readable
                });
            }
        }
        Ok(())
    }
}

/// What repeating a GraphQL request for a refilled search's further page needs.
struct Repeat<'a> {
    /// The narrowing of its searches.
    narrowing: GraphQlRewrite,
    /// The refilled searches and the pages their clients asked for.
    refills: Vec<(&'a GraphQlField, PageRequest)>,
    client_body: Bytes,
}

impl Repeat<'_> {
    /// The changes to the client's body: narrowed, every refilled search at its first upstream
    /// page but search `at`, at `(token, size)`.
    fn rewrite(
        &self,
        at: Option<(usize, Option<&str>, u64)>,
    ) -> Result<GraphQlRewrite, GraphQlError> {
        let mut rewrite = self.narrowing.clone();
        for (i, (field, request)) in self.refills.iter().enumerate() {
            let (token, size) = match at {
                Some((j, token, size)) if j == i => (token, size),
                _ => (request.start.upstream.as_deref(), request.start.size),
            };
            field.page_at(token.unwrap_or_default(), size, &mut rewrite)?;
        }
        Ok(rewrite)
    }
}

/// How the request is sent again.
struct Again<'a> {
    method: http::Method,
    headers: http::HeaderMap,
    path_and_query: http::uri::PathAndQuery,
    peer: &'a Peer,
}

/// A refilled page: the answer's items as MLflow gave them, and mlgate's token.
struct RefilledPage {
    items: Vec<serde_json::Value>,
    token: Option<String>,
    /// How many versions were decided to fill it.
    seen: usize,
}

/// A refilled search's page of `answer` as a REST page: each item's model name and version
/// (for the decision) with the item itself under `graphql`, and the upstream token. A field
/// MLflow answered with an error has no items and no further page.
fn versions_page(field: &GraphQlField, answer: &serde_json::Value) -> serde_json::Value {
    let result = answer.get("data").and_then(|data| data.get(&field.key));
    let (Some(list), Some(result)) = (field.model_versions.first(), result) else {
        return serde_json::json!({});
    };
    let items = list
        .path
        .last()
        .and_then(|key| result.get(key))
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let items: Vec<_> = items
        .iter()
        .map(|item| {
            let (name, version) = list.identity(item).unzip();
            serde_json::json!({"name": name, "version": version, "graphql": item})
        })
        .collect();
    let token_key = field
        .paging
        .as_ref()
        .and_then(|p| p.token_key.as_deref())
        .unwrap_or(NEXT_PAGE_TOKEN);
    serde_json::json!({
        MODEL_VERSIONS.items: items,
        "next_page_token": result.get(token_key),
    })
}

/// Puts a refilled page in the answer: its items, and mlgate's token where the query selected
/// `nextPageToken` (mlgate's own selection of it removed).
fn set_page(field: &GraphQlField, page: RefilledPage, answer: &mut serde_json::Value) {
    let Some(serde_json::Value::Object(result)) = answer
        .get_mut("data")
        .and_then(|data| data.get_mut(&field.key))
    else {
        return;
    };
    if let Some(key) = field.model_versions.first().and_then(|l| l.path.last()) {
        result.insert(key.clone(), serde_json::Value::Array(page.items));
    }
    match field.paging.as_ref().and_then(|p| p.token_key.as_ref()) {
        Some(key) => {
            result.insert(key.clone(), page.token.into());
        }
        None => {
            result.remove(NEXT_PAGE_TOKEN);
        }
    }
}
