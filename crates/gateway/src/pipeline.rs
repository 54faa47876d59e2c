//! The request pipeline of DESIGN.md in one place. [`Gateway::process`] reads top to bottom as
//! the stages run: normalize → (portal) → authenticate → classify → read fields → resolve →
//! authorize → (filter: searches answered page by page) → rewrite → forward; [`handle`] wraps it with the request id and the audit record
//! that every request gets, whatever happened to it.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use jiff::Timestamp;
use mlgate_catalog::{IdSource, ParamSource, Params, execute_api_arn};
use mlgate_policy::{Context, Decision, NamedPolicy};
use tower::ServiceExt;

use crate::audit::{AuditDecision, AuditRecord, AuditSink};
use crate::authenticate::{Authenticator, ClientAddr};
use crate::authorize::{EXECUTE_API_INVOKE, Question, Verdict, authorize};
use crate::classify::{self, Call};
use crate::config::GatewaySettings;
use crate::error::GatewayError;
use crate::filter::{self, Listing, Malformed, PageRequest, PageTokens, Readability};
use crate::forward::Upstream;
use crate::identity::{AuthMethod, Principal};
use crate::listen::{IdleTimeout, Peer};
use crate::normalize::{self, BodyLimits, RequestBody, Target};
use crate::portal::{self, PortalOutcome};
use crate::resolve::{self, ArnScope, ExperimentFacts, Resolver, global_context};
use crate::rewrite;
use crate::store::Store;

mod graphql;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything the pipeline needs; one per server.
pub struct Gateway {
    settings: GatewaySettings,
    store: Store,
    authenticator: Authenticator,
    resolver: Resolver,
    upstream: Upstream,
    portal: Router,
    audit: AuditSink,
    page_tokens: PageTokens,
}

impl Gateway {
    /// `portal` is [`crate::portal::router`]; it serves everything under the reserved prefix.
    pub fn new(
        settings: GatewaySettings,
        store: Store,
        authenticator: Authenticator,
        portal: Router,
        audit: AuditSink,
    ) -> Result<Gateway, String> {
        let upstream = Upstream::new(&settings.upstream, settings.upstream_timeout)?;
        let resolver = Resolver::new(
            ArnScope::new(&settings.region, &settings.account),
            upstream.clone(),
        );
        // Page tokens outlive the process and work on every replica sharing the master key.
        let page_tokens = match authenticator.sigv4() {
            Some(sigv4) => {
                PageTokens::new(sigv4.master_key().derive(filter::PAGE_TOKEN_KEY_PURPOSE))
            }
            None => PageTokens::random()?,
        };
        Ok(Gateway {
            settings,
            store,
            authenticator,
            resolver,
            upstream,
            portal,
            audit,
            page_tokens,
        })
    }

    /// The service the listener runs: every request goes through [`handle`].
    pub fn into_router(self) -> Router {
        Router::new().fallback(handle).with_state(Arc::new(self))
    }

    async fn process(&self, request: Request, trail: &mut Trail) -> Result<Response, GatewayError> {
        let (mut parts, body) = request.into_parts();
        let peer = *parts.extensions.get::<Peer>().ok_or_else(|| {
            GatewayError::Internal("request without connection information".into())
        })?;
        parts.extensions.insert(ClientAddr(peer.addr.ip()));
        parts.headers.insert(X_REQUEST_ID, trail.request_id.clone());
        let body = Body::new(IdleTimeout::new(body, self.settings.body_timeout));

        // 2. normalize: one canonical path; mlgate's own pages live under a reserved prefix.
        let target = normalize::target(&parts.uri)?;
        trail.path.clone_from(&target.path);
        if target.is_reserved() {
            return Ok(self.portal(parts, body, trail).await);
        }

        // 3. authenticate: exactly one credential, or none at all.
        // (A SigV4 signature covers the body: it comes back checked, or checked as it streams.)
        let (principal, body) = self
            .authenticator
            .authenticate_with_body(&parts, body, peer.secure, self.body_limits())
            .await
            .map_err(GatewayError::Authentication)?;
        trail.principal = principal.as_ref().map(|p| p.arn.clone());
        trail.auth_method = principal.as_ref().map(|p| p.auth_method);

        // 4. classify: the MLflow operation, or a route MLflow does not serve.
        let call = Call::new(&parts.method, &target.path, &self.settings);
        if call.is_public() {
            trail.decision = Some(AuditDecision::Public);
            return self.forward(parts, body, target, &peer).await;
        }
        let Some(principal) = principal else {
            return self.unauthenticated(&parts, &call, &target, trail);
        };
        let mut context = global_context(&principal, &peer, trail.time);
        let Some(route) = call.route else {
            // Not in the catalog: MLflow serves nothing there, and no policy can change that.
            return Err(GatewayError::UnknownRoute(format!(
                "mlgate knows no MLflow endpoint {} {}",
                parts.method, target.path
            )));
        };

        // 2 (cont.). read the fields as MLflow will; only bodies MLflow parses are buffered.
        let (mut params, mut body) =
            normalize::read_fields(route, &parts, body, self.body_limits()).await?;

        // 5-6 (GraphQL). each root field resolved and decided as its REST twin; lists filtered.
        if classify::is_graphql(route) {
            let request = graphql::GraphQlCall {
                parts,
                body,
                principal: &principal,
                call: &call,
                context: &context,
                target,
                peer: &peer,
            };
            return self.graphql(request, trail).await;
        }
        let action = route.action();
        trail.actions = vec![action.clone()];

        // 5. resolve: identifiers → resource ARNs and condition keys.
        let plan = resolve::plan(
            self.resolver.scope(),
            route,
            &call.path_params,
            &params,
            &parts.headers,
        )?;
        let mut resources = self.resolver.resources(&plan).await?;
        for (key, value) in &plan.context {
            context.insert(key, value.clone());
        }
        // An experiment's name, tags and creator are condition keys of everything under it;
        // a registered model's creator of everything under the model.
        // The creator is looked up only for a principal whose policies read it.
        let creators_read = self.policies_read_creator(&principal).await?;
        let mut experiments = self
            .with_creators(
                creators_read,
                self.resolver.experiment_contexts(&resources).await?,
            )
            .await?;
        // A registered model's (or prompt's) tags and creator, of everything under it.
        let named_model = self.resolver.named_model(&plan).await?;
        let mut model_keys = self
            .model_creator(creators_read, named_model.as_ref())
            .await?;
        model_keys.extend(named_model.iter().flat_map(|m| m.keys.iter().cloned()));
        let creator_change =
            creator_change(route, &params, self.resolver.scope(), named_model.as_ref())?;

        // 9 (before deciding). a search scoped by experiment ids runs on the readable ones.
        if filter::narrows_experiment_ids(route.operation)
            && params.source() == ParamSource::Body
            && !experiments.is_empty()
        {
            let readable = self
                .readable_experiments(
                    &principal,
                    &action,
                    &resources,
                    &experiments,
                    &call,
                    &context,
                )
                .await?;
            if readable.len() < experiments.len() {
                let total = experiments.len();
                experiments.retain(|(id, _)| readable.contains(id));
                let scope = self.resolver.scope();
                resources.retain(|arn| {
                    scope
                        .experiment_of(arn)
                        .is_none_or(|id| readable.iter().any(|r| r == id))
                });
                trail.reason = Some(format!(
                    "search narrowed to {} of {total} experiment(s)",
                    readable.len()
                ));
                if readable.is_empty() {
                    // Nothing named is readable: an empty page, without asking MLflow.
                    trail.decision = Some(AuditDecision::Allow);
                    return Ok((
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        "{}",
                    )
                        .into_response());
                }
                params.set("experiment_ids", serde_json::Value::from(readable.clone()));
                let bytes = Bytes::from(params.clone().into_json_body());
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                body = RequestBody::Read(bytes);
            }
        }

        // 6. authorize: both vocabularies, explicit deny wins; each experiment with its keys.
        self.authorize_each(
            &principal,
            &action,
            &resources,
            (&experiments, &model_keys),
            &call,
            &context,
            trail,
        )
        .await?;
        // A rename is also decided as if the experiment already had its new name.
        if let Some(new_name) = resolve::renamed_experiment(route, &plan) {
            let renamed: Vec<(String, Arc<ExperimentFacts>)> = experiments
                .iter()
                .map(|(id, facts)| {
                    let facts = ExperimentFacts {
                        name: new_name.to_owned(),
                        tags: facts.tags.clone(),
                        creator: facts.creator.clone(),
                    };
                    (id.clone(), Arc::new(facts))
                })
                .collect();
            self.authorize_each(
                &principal,
                &action,
                &resources,
                (&renamed, &model_keys),
                &call,
                &context,
                trail,
            )
            .await?;
        }

        // 6 (cont.). every other resource the request names, as the read it implies; a source
        // MLflow would resolve (an alias, a stage) goes on pinned to the version decided.
        let mut pinned = false;
        for reference in self.resolver.references(&plan).await? {
            let arns = [reference.arn];
            let experiments = self
                .with_creators(
                    creators_read,
                    self.resolver.experiment_contexts(&arns).await?,
                )
                .await?;
            let mut keys = self
                .model_creator(creators_read, reference.model.as_ref())
                .await?;
            keys.extend(reference.model.iter().flat_map(|m| m.keys.iter().cloned()));
            let action = format!("mlflow:{}", reference.operation);
            self.authorize_each(
                &principal,
                &action,
                &arns,
                (&experiments, &keys),
                &call,
                &context,
                trail,
            )
            .await?;
            if let Some((field, value)) = reference.pin {
                params.set(field, serde_json::Value::String(value));
                pinned = true;
            }
        }

        // 9. filter: a listing that names none of its parents would list every experiment's.
        let named = named_ids(route, &params);
        if filter::lists_nothing(route.operation, named) {
            trail.reason = Some("the listing names no parent: answered empty".into());
            return Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response());
        }
        // 9. filter: a search is answered by mlgate, page by page, with only readable items.
        if let Some(listing) = Listing::of_request(route.operation, named) {
            let page = Search {
                listing,
                parts: &parts,
                params: &params,
                target: &target,
                peer: &peer,
            };
            return self.filtered(page, &principal, &context, trail).await;
        }

        // 7. rewrite: attribute writes to the principal.
        let attributed = rewrite::attribute(route, &mut params, &principal.name)
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        let body = if attributed || pinned {
            let bytes = Bytes::from(params.into_json_body());
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            RequestBody::Read(bytes)
        } else {
            body
        };

        // 8. forward: stream to MLflow and back.
        let response = self.forward(parts, body.into_body(), target, &peer).await;
        self.resolver.forget_rewritten_traces(&plan).await;
        if resolve::changes_experiment(route.operation) {
            for (id, _) in &experiments {
                self.resolver.forget_experiment(id).await;
            }
        }
        if resolve::changes_model(route.operation)
            && let Some(model) = &named_model
        {
            self.resolver.forget_model(&model.name).await;
            if let Some((_, new_name)) = plan.context.iter().find(|(k, _)| *k == resolve::NEW_NAME)
            {
                self.resolver.forget_model(new_name).await;
            }
        }
        match (creator_change, response) {
            (Some(change), Ok(response)) if response.status().is_success() => {
                Ok(self.record_creator(change, response, &principal).await)
            }
            (_, response) => response,
        }
    }

    /// Whether any of the principal's policies (session policy included) reads
    /// `mlflow:ResourceCreator`; when none does, the creator cannot change a decision.
    async fn policies_read_creator(&self, principal: &Principal) -> Result<bool, GatewayError> {
        let (policies, session) = self.policies(principal).await?;
        Ok(read_creator(&policies, session.as_deref()))
    }

    /// Adds who created each experiment through mlgate (`mlflow:ResourceCreator`), when
    /// `creators_read` (see [`Gateway::policies_read_creator`]).
    async fn with_creators(
        &self,
        creators_read: bool,
        experiments: Vec<(String, Arc<ExperimentFacts>)>,
    ) -> Result<Vec<(String, Arc<ExperimentFacts>)>, GatewayError> {
        if !creators_read {
            return Ok(experiments);
        }
        let mut out = Vec::with_capacity(experiments.len());
        for (id, facts) in experiments {
            let arn = self.resolver.scope().experiment(&id);
            let creator = self
                .store
                .resource_creator(&arn)
                .await
                .map_err(store_down)?;
            let facts = match creator {
                Some(creator) => Arc::new(ExperimentFacts {
                    creator: Some(creator),
                    ..(*facts).clone()
                }),
                None => facts,
            };
            out.push((id, facts));
        }
        Ok(out)
    }

    /// `mlflow:ResourceCreator` of the registered model or prompt the request names (`name`),
    /// if mlgate recorded one and `creators_read`.
    async fn model_creator(
        &self,
        creators_read: bool,
        named_model: Option<&resolve::NamedModel>,
    ) -> Result<Vec<(String, String)>, GatewayError> {
        let Some(arn) = named_model
            .filter(|_| creators_read)
            .and_then(|model| model.arn(self.resolver.scope()))
        else {
            return Ok(Vec::new());
        };
        Ok(self
            .store
            .resource_creator(&arn)
            .await
            .map_err(store_down)?
            .map(|creator| vec![(resolve::RESOURCE_CREATOR.to_owned(), creator)])
            .unwrap_or_default())
    }

    /// Records the principal as the creator of what MLflow just created, and keeps the records
    /// of deleted and renamed registered models in step. A failure is logged: the change
    /// happened in MLflow either way.
    async fn record_creator(
        &self,
        change: CreatorChange,
        response: Response,
        principal: &Principal,
    ) -> Response {
        use http_body_util::BodyExt;
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
                let bytes = match http_body_util::Limited::new(body, 1 << 20).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read MLflow's CreateExperiment answer");
                        return GatewayError::UpstreamUnavailable(
                            "MLflow broke off its answer".into(),
                        )
                        .into_response();
                    }
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

    /// Decides a request on each experiment it touches with that experiment's own name and
    /// tags (so one experiment's keys never allow another's resources), and on the resources
    /// outside experiments with none of them. All must be allowed.
    #[allow(clippy::too_many_arguments)]
    async fn authorize_each(
        &self,
        principal: &Principal,
        action: &str,
        resources: &[String],
        (experiments, outside_keys): KeyedResources<'_>,
        call: &Call,
        context: &Context,
        trail: &mut Trail,
    ) -> Result<(), GatewayError> {
        let groups = experiment_groups(
            self.resolver.scope(),
            resources,
            experiments,
            outside_keys,
            context,
        );
        for (part, context) in &groups {
            self.authorize(principal, Some((action, part)), call, context, trail)
                .await?;
        }
        Ok(())
    }

    /// The ids of the experiments on which `action` is allowed (no audit: the request is then
    /// decided on those).
    async fn readable_experiments(
        &self,
        principal: &Principal,
        action: &str,
        resources: &[String],
        experiments: &[(String, Arc<ExperimentFacts>)],
        call: &Call,
        context: &Context,
    ) -> Result<Vec<String>, GatewayError> {
        let (policies, session) = self.policies(principal).await?;
        let scope = self.resolver.scope();
        let mut readable = Vec::new();
        for (id, facts) in experiments {
            let part: Vec<String> = resources
                .iter()
                .filter(|arn| scope.experiment_of(arn) == Some(id.as_str()))
                .cloned()
                .collect();
            let mut context = context.clone();
            for (key, value) in facts.context() {
                context.insert(&key, value);
            }
            let question = Question {
                mlflow: Some((action, &part)),
                execute_api: &call.execute_api,
                principal: &principal.arn,
                context: &context,
            };
            if authorize(&policies, &question).is_allowed()
                && session
                    .as_deref()
                    .is_none_or(|s| authorize(s, &question).is_allowed())
            {
                readable.push(id.clone());
            }
        }
        Ok(readable)
    }

    fn body_limits(&self) -> BodyLimits {
        BodyLimits {
            max_bytes: self.settings.max_parsed_body,
            timeout: self.settings.body_timeout,
        }
    }

    async fn portal(&self, parts: Parts, body: Body, trail: &mut Trail) -> Response {
        let response = match self
            .portal
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
        {
            Ok(response) => response,
            Err(never) => match never {},
        };
        match response.extensions().get::<PortalOutcome>() {
            Some(outcome) => {
                trail.principal.clone_from(&outcome.principal);
                trail.auth_method = outcome.auth_method;
                trail.decision = Some(outcome.decision);
                trail.reason.clone_from(&outcome.reason);
            }
            None => trail.decision = Some(AuditDecision::Public),
        }
        response
    }

    /// No credential: a browser opening a UI page goes to the sign-in page, anything else
    /// gets 401 (with a Basic challenge, which the MLflow client answers).
    fn unauthenticated(
        &self,
        parts: &Parts,
        call: &Call,
        target: &Target,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let navigation = matches!(parts.method, Method::GET | Method::HEAD)
            && parts
                .headers
                .get_all(header::ACCEPT)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
        if !(navigation && call.is_ui_page()) {
            return Err(GatewayError::Unauthenticated(
                "authentication required: send HTTP Basic credentials (MLFLOW_TRACKING_USERNAME/PASSWORD) or an API token (MLFLOW_TRACKING_TOKEN)".into(),
            ));
        }
        trail.decision = Some(AuditDecision::Unauthenticated);
        trail.reason = Some("no credential; sent to the sign-in page".into());
        let location = HeaderValue::from_str(&portal::login_url(target.path_and_query.as_str()))
            .map_err(|_| GatewayError::Internal("sign-in URL is not a header value".into()))?;
        Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response())
    }

    async fn authorize(
        &self,
        principal: &Principal,
        mlflow: Option<(&str, &[String])>,
        call: &Call,
        context: &Context,
        trail: &mut Trail,
    ) -> Result<(), GatewayError> {
        let policies = self.store.effective_policies(principal).await.map_err(|error| {
            tracing::error!(%error, principal = %principal.arn, "cannot load the principal's policies");
            GatewayError::Unavailable("the policy store is unavailable; try again".into())
        })?;
        let question = Question {
            mlflow,
            execute_api: &call.execute_api,
            principal: &principal.arn,
            context,
        };
        let mut verdict = authorize(&policies, &question);
        // An assumed role's session policy can only narrow: it must allow too (issue 3).
        if verdict.is_allowed()
            && let Some(session) = self.store.session_policies(principal).await.map_err(|error| {
                tracing::error!(%error, principal = %principal.arn, "cannot load the session policy");
                GatewayError::Unavailable("the policy store is unavailable; try again".into())
            })?
        {
            let narrowed = authorize(&session, &question);
            if !narrowed.is_allowed() {
                verdict = narrowed;
            }
        }
        trail.record_verdict(&question, &verdict);
        if verdict.is_allowed() {
            Ok(())
        } else {
            Err(GatewayError::PermissionDenied(
                verdict.denial_message(&principal.arn),
            ))
        }
    }

    /// The principal's policies and, for an assumed role, its session policy.
    async fn policies(
        &self,
        principal: &Principal,
    ) -> Result<(Arc<[NamedPolicy]>, Option<Arc<[NamedPolicy]>>), GatewayError> {
        let unavailable = |error: crate::store::StoreError| {
            tracing::error!(%error, principal = %principal.arn, "cannot load the principal's policies");
            GatewayError::Unavailable("the policy store is unavailable; try again".into())
        };
        let policies = self
            .store
            .effective_policies(principal)
            .await
            .map_err(unavailable)?;
        let session = self
            .store
            .session_policies(principal)
            .await
            .map_err(unavailable)?;
        Ok((policies, session))
    }

    /// Stage 9: answers a search with the readable items only (see [`crate::filter`]).
    async fn filtered(
        &self,
        search: Search<'_>,
        principal: &Principal,
        context: &Context,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let listing = search.listing;
        let request = PageRequest::read(
            listing,
            search.params.fields(),
            &self.page_tokens,
            &principal.arn,
        )?;
        let (policies, session) = self.policies(principal).await?;
        let creators_read = read_creator(&policies, session.as_deref());
        let s = &self.settings;
        let execute_api_root =
            execute_api_arn(&s.region, &s.account, &s.api_id, &s.stage, "GET", "/");
        let reader = Readability {
            listing,
            scope: self.resolver.scope(),
            policies: &policies,
            session: session.as_deref(),
            principal: &principal.arn,
            execute_api_root: &execute_api_root,
            context,
        };
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let page = filter::fill_page(
            listing,
            request.want,
            request.start,
            self.resolver.scope(),
            |token: Option<String>, size| {
                let search = &search;
                async move { self.fetch_page(search, token.as_deref(), size).await }
            },
            |arns: Vec<String>| async move {
                if !creators_read {
                    return Ok(std::collections::HashMap::new());
                }
                self.store
                    .resource_creators(&arns)
                    .await
                    .map_err(|e| Fetched::Failed(store_down(e)))
            },
            |item, creator| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                reader.readable(item, creator)
            },
        )
        .await;
        let page = match page {
            Ok(page) => page,
            Err(Fetched::Failed(error)) => return Err(error),
            // MLflow refused the search (a bad filter, ...): its answer goes back as is.
            Err(Fetched::Refused(status, body)) => {
                return Ok(
                    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
                );
            }
        };
        trail.reason = Some(format!(
            "search filtered: {} of {} item(s) listed",
            page.items.len(),
            seen.into_inner()
        ));
        let token = page.next.as_ref().map(|cursor| {
            self.page_tokens
                .seal(cursor, &principal.arn, listing, search.params.fields())
        });
        let body = filter::answer(listing, page, token).to_string();
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response())
    }

    /// One upstream page of a filtered search: the client's request with mlgate's page size
    /// and upstream token, same method, same headers.
    async fn fetch_page(
        &self,
        search: &Search<'_>,
        token: Option<&str>,
        size: u64,
    ) -> Result<serde_json::Value, Fetched> {
        use http_body_util::BodyExt;
        let fields = filter::upstream_fields(search.listing, search.params.fields(), token, size);
        let path = &search.target.path;
        let (path_and_query, body) =
            if search.parts.method == Method::GET || search.parts.method == Method::HEAD {
                (
                    format!("{path}?{}", filter::query_string(&fields)),
                    Bytes::new(),
                )
            } else {
                (
                    path.clone(),
                    Bytes::from(serde_json::Value::Object(fields).to_string()),
                )
            };
        let path_and_query = http::uri::PathAndQuery::try_from(path_and_query).map_err(|e| {
            Fetched::Failed(GatewayError::Internal(format!("bad search path: {e}")))
        })?;
        let mut request = Request::new(Body::from(body.clone()));
        *request.method_mut() = if search.parts.method == Method::HEAD {
            Method::GET
        } else {
            search.parts.method.clone()
        };
        let headers = request.headers_mut();
        headers.clone_from(&search.parts.headers);
        headers.remove(header::ACCEPT_ENCODING);
        headers.remove(header::TRANSFER_ENCODING);
        if body.is_empty() {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::CONTENT_TYPE);
        } else {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let response = self
            .upstream
            .forward(request, path_and_query, search.peer)
            .await
            .map_err(Fetched::Failed)?;
        let status = response.status();
        let collected = tokio::time::timeout(
            self.settings.upstream_timeout,
            http_body_util::Limited::new(response.into_body(), MAX_SEARCH_PAGE_BYTES).collect(),
        )
        .await
        .map_err(|_| {
            Fetched::Failed(GatewayError::UpstreamTimeout(
                "MLflow did not finish a search answer in time".into(),
            ))
        })?
        .map_err(|e| {
            Fetched::Failed(GatewayError::UpstreamUnavailable(format!(
                "MLflow broke off a search answer: {e}"
            )))
        })?
        .to_bytes();
        if !status.is_success() {
            return Err(Fetched::Refused(status, collected));
        }
        serde_json::from_slice(&collected).map_err(|_| {
            Fetched::Failed(GatewayError::UpstreamUnavailable(
                "MLflow's search answer is not JSON".into(),
            ))
        })
    }

    async fn forward(
        &self,
        parts: Parts,
        body: Body,
        target: Target,
        peer: &Peer,
    ) -> Result<Response, GatewayError> {
        self.upstream
            .forward(
                Request::from_parts(parts, body),
                target.path_and_query,
                peer,
            )
            .await
    }
}

/// Splits a request's resources into the groups decided together: all of them with the base
/// context when they lie under at most one experiment and nothing else (that experiment's keys
/// added), otherwise one group per experiment with its keys and one for the rest without.
fn experiment_groups(
    scope: &crate::resolve::ArnScope,
    resources: &[String],
    experiments: &[(String, Arc<ExperimentFacts>)],
    outside_keys: &[(String, String)],
    context: &Context,
) -> Vec<(Vec<String>, Context)> {
    let outside_context = || {
        let mut context = context.clone();
        for (key, value) in outside_keys {
            context.insert(key, value.clone());
        }
        context
    };
    let with_keys = |facts: &ExperimentFacts| {
        let mut context = context.clone();
        for (key, value) in facts.context() {
            context.insert(&key, value);
        }
        context
    };
    let outside: Vec<String> = resources
        .iter()
        .filter(|arn| scope.experiment_of(arn).is_none())
        .cloned()
        .collect();
    match experiments {
        [] => vec![(resources.to_vec(), outside_context())],
        [(_, facts)] if outside.is_empty() => vec![(resources.to_vec(), with_keys(facts))],
        _ => {
            let mut groups: Vec<(Vec<String>, Context)> = experiments
                .iter()
                .map(|(id, facts)| {
                    let part = resources
                        .iter()
                        .filter(|arn| scope.experiment_of(arn) == Some(id.as_str()))
                        .cloned()
                        .collect();
                    (part, with_keys(facts))
                })
                .collect();
            if !outside.is_empty() {
                groups.push((outside, outside_context()));
            }
            groups
        }
    }
}

/// The experiments a request touches with their keys, and the keys of what lies outside them.
type KeyedResources<'a> = (&'a [(String, Arc<ExperimentFacts>)], &'a [(String, String)]);

/// What a request does to the resources whose creator mlgate records.
enum CreatorChange {
    /// CreateExperiment: the id is in MLflow's answer.
    Experiment,
    /// CreateRegisteredModel: the ARN of the named model or prompt.
    Model(String),
    /// DeleteRegisteredModel: a model of the same name created later is someone else's.
    ModelDeleted(String),
    /// RenameRegisteredModel: the ARN is the name, the creator stays.
    ModelRenamed { from: String, to: String },
}

/// `named_model` is the registered model or prompt the request names, of the kind the
/// resolver found (for a creation: the kind its tags ask for); its ARN is the record's key.
fn creator_change(
    route: &mlgate_catalog::Route,
    params: &Params,
    scope: &ArnScope,
    named_model: Option<&resolve::NamedModel>,
) -> Result<Option<CreatorChange>, GatewayError> {
    let model = || named_model.and_then(|model| model.arn(scope));
    Ok(match route.operation {
        "CreateExperiment" => Some(CreatorChange::Experiment),
        "CreateRegisteredModel" => model().map(CreatorChange::Model),
        "DeleteRegisteredModel" => model().map(CreatorChange::ModelDeleted),
        "RenameRegisteredModel" => {
            let new_name = params
                .try_str_value("new_name")
                .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
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

/// Whether any of these policies reads `mlflow:ResourceCreator`; when none does, the creator
/// cannot change a decision and is not looked up.
fn read_creator(policies: &[NamedPolicy], session: Option<&[NamedPolicy]>) -> bool {
    policies
        .iter()
        .chain(session.into_iter().flatten())
        .any(|policy| policy.document.references_key(resolve::RESOURCE_CREATOR))
}

fn store_down(error: crate::store::StoreError) -> GatewayError {
    tracing::error!(%error, "cannot read resource creators");
    GatewayError::Unavailable("the policy store is unavailable; try again".into())
}

/// A search being filtered: what the client sent, to repeat it for each upstream page.
struct Search<'a> {
    listing: Listing,
    parts: &'a Parts,
    params: &'a Params,
    target: &'a Target,
    peer: &'a Peer,
}

/// Why an upstream page of a filtered search did not come back.
enum Fetched {
    /// mlgate could not get an answer (MLflow down, slow, malformed).
    Failed(GatewayError),
    /// MLflow answered with an error, passed to the client as is.
    Refused(StatusCode, Bytes),
}

impl From<Malformed> for Fetched {
    fn from(malformed: Malformed) -> Fetched {
        Fetched::Failed(GatewayError::UpstreamUnavailable(malformed.into()))
    }
}

/// How many identifiers of the route's parents the request fields name (unreadable fields
/// count as none: the listing is then answered empty).
fn named_ids(route: &mlgate_catalog::Route, params: &Params) -> usize {
    route
        .ids
        .iter()
        .filter(|id| id.source == IdSource::Params)
        .map(|id| {
            params
                .str_values_at(id.field)
                .map_or(0, |values| values.iter().filter(|v| !v.is_empty()).count())
        })
        .sum()
}

/// Largest upstream search answer mlgate reads.
const MAX_SEARCH_PAGE_BYTES: usize = 64 << 20;

/// Runs one request through the pipeline and audits it.
async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let mut trail = Trail::new(&request);
    // A refused request's body may be left unread, and then hyper closes the connection after
    // the answer: saying so keeps a client's pool from sending its next request on it.
    let close_after_refusal = request.version() <= http::Version::HTTP_11
        && (request.headers().contains_key(header::TRANSFER_ENCODING)
            || request
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|length| length != "0"));
    let mut response = match gateway.process(request, &mut trail).await {
        Ok(response) => response,
        Err(error) => {
            trail.refused(&error);
            let mut response = error.into_response();
            if close_after_refusal {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    };
    response
        .headers_mut()
        .insert(X_REQUEST_ID, trail.request_id.clone());
    // Embedding settings (frame-ancestors, cross-site cookies); no-op by default.
    portal::embed::apply(gateway.authenticator.settings(), response.headers_mut());
    gateway.audit.record(trail.finish(response.status()));
    response
}

/// What the audit record will say, filled in as the stages run.
struct Trail {
    time: Timestamp,
    started: Instant,
    request_id: HeaderValue,
    source_ip: String,
    method: String,
    path: String,
    principal: Option<String>,
    auth_method: Option<AuthMethod>,
    actions: Vec<String>,
    resources: Vec<String>,
    decision: Option<AuditDecision>,
    determining: Option<(String, String)>,
    reason: Option<String>,
}

/// Raw paths that never normalized are kept for the audit, cut to this many bytes.
const MAX_AUDITED_RAW_PATH: usize = 1024;

impl Trail {
    fn new(request: &Request) -> Trail {
        let mut path = request.uri().path().to_owned();
        if path.len() > MAX_AUDITED_RAW_PATH {
            let mut cut = MAX_AUDITED_RAW_PATH;
            while !path.is_char_boundary(cut) {
                cut -= 1;
            }
            path.truncate(cut);
        }
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        Trail {
            time: Timestamp::now(),
            started: Instant::now(),
            request_id: HeaderValue::from_str(&request_id)
                .unwrap_or_else(|_| HeaderValue::from_static("-")),
            source_ip: request
                .extensions()
                .get::<Peer>()
                .map(|p| p.addr.ip().to_canonical().to_string())
                .unwrap_or_default(),
            method: request.method().to_string(),
            path,
            principal: None,
            auth_method: None,
            actions: Vec::new(),
            resources: Vec::new(),
            decision: None,
            determining: None,
            reason: None,
        }
    }

    /// Notes one decision. A request can need several (each experiment it touches, each
    /// resource it references): the record lists every action and resource decided, the
    /// execute-api pair last, and the verdict of the last one (the denial, when one failed).
    fn record_verdict(&mut self, question: &Question<'_>, verdict: &Verdict<'_>) {
        self.actions.retain(|action| action != EXECUTE_API_INVOKE);
        self.resources.retain(|arn| arn != question.execute_api);
        if let Some((action, resources)) = question.mlflow {
            if !self.actions.iter().any(|a| a == action) {
                self.actions.push(action.to_owned());
            }
            for arn in resources {
                if !self.resources.contains(arn) {
                    self.resources.push(arn.clone());
                }
            }
        }
        self.actions.push(EXECUTE_API_INVOKE.to_owned());
        self.resources.push(question.execute_api.to_owned());
        let (decision, by) = match &verdict.decision {
            Decision::Allow(by) => (AuditDecision::Allow, Some(by)),
            Decision::ExplicitDeny(by) => (AuditDecision::ExplicitDeny, Some(by)),
            Decision::ImplicitDeny => (AuditDecision::ImplicitDeny, None),
        };
        self.decision = Some(decision);
        self.determining = by.map(|by| (by.policy.clone(), by.statement.clone()));
    }

    /// Notes why the request failed; a request refused before authorization says so.
    fn refused(&mut self, error: &GatewayError) {
        self.decision.get_or_insert(match error {
            GatewayError::Unauthenticated(_) | GatewayError::Authentication(_) => {
                AuditDecision::Unauthenticated
            }
            _ => AuditDecision::Rejected,
        });
        if let GatewayError::Authentication(failure) = error {
            self.auth_method = failure.method;
            self.reason = Some(failure.reason.clone());
        } else {
            self.reason = Some(error.to_string());
        }
    }

    fn finish(self, status: StatusCode) -> AuditRecord {
        let (policy, statement) = self.determining.unzip();
        AuditRecord {
            time: self.time.to_string(),
            request_id: self.request_id.to_str().unwrap_or_default().to_owned(),
            source_ip: self.source_ip,
            method: self.method,
            path: self.path,
            principal: self.principal,
            auth_method: self.auth_method,
            actions: self.actions,
            resources: self.resources,
            decision: self.decision.unwrap_or(AuditDecision::Rejected),
            policy,
            statement,
            reason: self.reason,
            status: status.as_u16(),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}
