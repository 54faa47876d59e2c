//! The request pipeline in one place. [`Gateway::process`] reads top to bottom as the stages
//! run (docs/architecture.md): listen → normalize → authenticate → classify → resolve →
//! authorize → rewrite → forward (then the request's effects on mlgate's own state), with the
//! filter stage answering searches page by page; each stage lives in the module of its name.
//! [`handle`] wraps it with the request id and the audit record that every request gets,
//! whatever happened to it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use mlgate_catalog::{
    AuthOperation, AuthRoute, IdSource, Params, ResourceKind, Serves, classify_auth,
    execute_api_arn,
};
use tower::ServiceExt;

use crate::audit::{AuditDecision, AuditSink, Slot, Trail};
use crate::authenticate::Authenticator;
use crate::authorize::{Asker, Authorizer, global_context};
use crate::basic_auth::{self, AuthApi, AuthRequest, Fields};
use crate::classify::Call;
use crate::config::GatewaySettings;
use crate::effects::{self, Effects};
use crate::error::{AuthFailure, AuthFailureKind, GatewayError};
use crate::filter::{self, Narrowed, PageTokens, Search, Searches};
use crate::forward::{Upstream, UpstreamUrlError};
use crate::identity::AuthMethod;
use crate::listen::{Draining, IdleTimeout, Peer};
use crate::normalize::{self, BodyLimits, ParsedBodyBudget, Target};
use crate::portal::{self, PortalOutcome, UiSignOut};
use crate::resolve::{ArnScope, Resolver};
use crate::rewrite;
use crate::store::{Actor, Store};
use crate::telemetry::traces::{self, Stage, Traces};
use crate::telemetry::{self, RequestLabels};
use probes::{Probe, Readiness};

mod graphql;
mod probes;
mod simulator;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the listeners serve.
pub struct Routers {
    pub public: Router,
    /// `/metrics`, the probes and the policy simulator, for `--admin-listen`.
    pub admin: Option<Router>,
}

/// Everything the pipeline needs; one per server.
pub struct Gateway {
    settings: GatewaySettings,
    store: Store,
    authenticator: Authenticator,
    /// The deciding stages for requests outside any MLflow workspace.
    deciders: Deciders,
    upstream: Upstream,
    portal: Router,
    audit: AuditSink,
    parsed_bodies: ParsedBodyBudget,
    /// Set by the listener at shutdown; readiness turns false.
    draining: Draining,
    traces: Traces,
}

/// The stages that name resources and ask MLflow about them, for one MLflow workspace (or
/// none): their ARNs lie in it and their lookups are asked in it.
#[derive(Clone)]
struct Deciders {
    resolver: Resolver,
    authorizer: Authorizer,
    searches: Searches,
}

impl Deciders {
    fn in_workspace(&self, workspace: &str) -> Deciders {
        let authorizer = self.authorizer.in_workspace(workspace);
        let resolver = self.resolver.in_workspace(workspace);
        Deciders {
            searches: Searches {
                authorizer: authorizer.clone(),
                resolver: resolver.clone(),
                ..self.searches.clone()
            },
            resolver,
            authorizer,
        }
    }
}

/// The key that tells a policy which MLflow workspace a request acts in.
const WORKSPACE_KEY: &str = "mlflow:Workspace";

/// How long a body mlgate must read waits for its share of `--parsed-body-budget`.
const PARSED_BODY_WAIT: Duration = Duration::from_secs(10);

/// Settings the gateway cannot be built with.
#[derive(Debug, thiserror::Error)]
pub enum GatewaySetupError {
    #[error(
        "--parsed-body-budget ({budget} bytes) must be at least --max-parsed-body ({max} bytes)"
    )]
    BodyBudget { budget: u64, max: u64 },
    #[error(transparent)]
    Upstream(#[from] UpstreamUrlError),
    #[error("no randomness for page tokens")]
    PageTokenKey(#[source] getrandom::Error),
}

impl Gateway {
    /// `portal` is [`crate::portal::router`]; it serves everything under the reserved prefix.
    pub fn new(
        settings: GatewaySettings,
        store: Store,
        authenticator: Authenticator,
        portal: Router,
        audit: AuditSink,
    ) -> Result<Gateway, GatewaySetupError> {
        if settings.parsed_body_budget < settings.max_parsed_body {
            return Err(GatewaySetupError::BodyBudget {
                budget: settings.parsed_body_budget,
                max: settings.max_parsed_body,
            });
        }
        let parsed_bodies = ParsedBodyBudget::new(settings.parsed_body_budget, PARSED_BODY_WAIT);
        let upstream = Upstream::new(&settings.upstream, settings.upstream_timeout)?;
        let scope = ArnScope::new(&settings.region, &settings.account);
        let resolver = Resolver::new(scope.clone(), upstream.clone());
        let authorizer = Authorizer::new(store.clone(), scope);
        // Page tokens outlive the process and work on every replica sharing the master key.
        let tokens = match authenticator.sigv4() {
            Some(sigv4) => {
                PageTokens::new(sigv4.master_key().derive(filter::PAGE_TOKEN_KEY_PURPOSE))
            }
            None => PageTokens::random().map_err(GatewaySetupError::PageTokenKey)?,
        };
        let s = &settings;
        let searches = Searches {
            upstream: upstream.clone(),
            resolver: resolver.clone(),
            tokens,
            authorizer: authorizer.clone(),
            execute_api_root: execute_api_arn(
                &s.region, &s.account, &s.api_id, &s.stage, "GET", "/",
            ),
        };
        Ok(Gateway {
            settings,
            store,
            authenticator,
            deciders: Deciders {
                resolver,
                authorizer,
                searches,
            },
            upstream,
            portal,
            audit,
            parsed_bodies,
            draining: Draining::default(),
            traces: Traces::default(),
        })
    }

    /// Spans for every request (`--otlp-endpoint`); none by default.
    pub fn with_traces(self, traces: Traces) -> Gateway {
        Gateway { traces, ..self }
    }

    /// What the listener sets when it starts draining (for [`crate::listen::Drain`]).
    pub fn draining(&self) -> Draining {
        self.draining.clone()
    }

    /// The services the listeners run: the public one sends every request through [`handle`];
    /// given the metrics, the admin one serves them with the probes.
    pub fn into_routers(self, metrics: Option<PrometheusHandle>) -> Routers {
        let gateway = Arc::new(self);
        let admin = metrics.map(|metrics| {
            let probe = |probe| {
                let gateway = gateway.clone();
                get(move || {
                    let gateway = gateway.clone();
                    async move { gateway.probe(probe).await }
                })
            };
            let sampled = gateway.clone();
            Router::new()
                .route(
                    "/metrics",
                    get(move || async move {
                        sampled.sample_state().await;
                        metrics.render()
                    }),
                )
                .route("/healthz", probe(Probe::Alive))
                .route("/readyz", probe(Probe::Ready))
                .route(simulator::PATH, post(simulate))
                .with_state(gateway.clone())
        });
        Routers {
            public: Router::new().fallback(handle).with_state(gateway),
            admin,
        }
    }

    /// The gauges of mlgate's state, read when the metrics are scraped. A store that cannot be
    /// read leaves the session gauge at its last value.
    async fn sample_state(&self) {
        telemetry::audit(self.audit.queued(), self.audit.dropped());
        let limits = &self.authenticator.settings().session;
        if let Ok(live) = self.store.live_sessions(limits).await {
            telemetry::sessions(live);
        }
    }

    async fn process(&self, request: Request, trail: &mut Trail) -> Result<Response, GatewayError> {
        let (mut parts, body) = request.into_parts();
        // 1. listen: the connection the request came on; a slow body times out.
        let peer = connection(&mut parts, trail)?;
        let body = Body::new(IdleTimeout::new(body, self.settings.body_timeout));

        // 2. normalize: one canonical path; mlgate's own pages live under a reserved prefix.
        let target = normalize::target(&parts.uri)?;
        trail.path.clone_from(&target.path);
        if target.is_reserved() {
            trail.operation = Some(telemetry::OPERATION_MLGATE);
            if parts.method == Method::GET
                && let Some(probe) = Probe::of(&target.path)
            {
                trail.decision = Some(AuditDecision::Public);
                return Ok(self.probe(probe).await);
            }
            return Ok(self.portal(parts, body, trail).await);
        }

        // (3) The MLflow UI's sign-out carries no credential to check, only a session to end.
        let auth_route = classify_auth(parts.method.as_str(), &target.path);
        if auth_route.is_some_and(|r| r.operation == AuthOperation::GetCurrentUser)
            && let Some(step) = portal::ui_sign_out_step(&parts)
        {
            trail.operation = Some(AuthOperation::GetCurrentUser.name());
            if step == UiSignOut::Challenge {
                return Err(GatewayError::Authentication(AuthFailure::new(
                    Some(AuthMethod::Session),
                    AuthFailureKind::Invalid,
                    "the MLflow UI's sign-out: its sign-out credentials are asked for",
                )));
            }
            let response = portal::end_ui_session(&self.authenticator, &parts).await;
            note_portal_outcome(trail, &response);
            return Ok(response);
        }

        // 3. authenticate: exactly one credential, or none at all.
        // (A SigV4 signature covers the body: it comes back checked, or checked as it streams.)
        let authenticating = self.authenticator.authenticate_with_body(
            &parts,
            body,
            peer.secure,
            self.body_limits(),
        );
        let (principal, body) = self
            .traces
            .stage(Stage::Authenticate, authenticating)
            .await
            .map_err(GatewayError::Authentication)?;
        trail.principal = principal.as_ref().map(|p| p.arn.clone());
        trail.auth_method = principal.as_ref().map(|p| p.auth_method);

        // 4. classify: the MLflow operation, or a route MLflow does not serve.
        let call = Call::new(&parts.method, &target.path, &self.settings);
        trail.operation = Some(
            call.route
                .map_or(telemetry::OPERATION_UNKNOWN, |r| r.operation),
        );
        // (2, cont.) the MLflow workspace, read once (after the signature that covers it was
        // checked); MLflow reads none for its server info. A workspace itself lies in none: the
        // workspace routes are decided outside the one the request was sent in.
        let workspace = match call.route {
            Some(route) if !route.selects_workspace => {
                parts.headers.remove(normalize::WORKSPACE_HEADER);
                None
            }
            _ => normalize::workspace(&mut parts.headers, self.settings.mlflow_workspaces)?,
        }
        .filter(|_| {
            call.route
                .is_none_or(|r| r.resource != ResourceKind::Workspace)
        });
        let deciders = match &workspace {
            Some(workspace) => Cow::Owned(self.deciders.in_workspace(workspace)),
            None => Cow::Borrowed(&self.deciders),
        };
        if call.is_public() {
            trail.decision = Some(AuditDecision::Public);
            return self.forward(parts, body, target, &peer).await;
        }
        let Some(principal) = principal else {
            return self.unauthenticated(&parts, &call, &target, trail);
        };
        // (4-6, basic-auth's API) answered by mlgate, decided on the user it names.
        if let Some(route) = auth_route {
            trail.operation = Some(route.operation.name());
            let context = global_context(&principal, &peer, trail.time);
            let asker = self
                .deciders
                .authorizer
                .asker(&principal, context, &call.execute_api)
                .await?;
            return self
                .basic_auth(route, &asker, parts, body, &peer, trail)
                .await;
        }
        let route = call.catalogued(&parts.method, &target.path)?;
        // (2, cont.) read the fields as MLflow will; only bodies MLflow parses are buffered.
        // The body's share of the budget is held until the request is answered.
        let (mut params, body, _budget_share) =
            normalize::read_fields(route, &parts, body, self.body_limits(), &self.parsed_bodies)
                .await?;
        let mut context = global_context(&principal, &peer, trail.time);
        if let Some(workspace) = workspace {
            context.insert(WORKSPACE_KEY, workspace);
        }
        let mut asker = deciders
            .authorizer
            .asker(&principal, context, &call.execute_api)
            .await?;
        // (5-6, GraphQL) each root field resolved and decided as its REST twin; lists filtered.
        if route.serves == Serves::GraphQl {
            let request = graphql::GraphQlCall {
                parts,
                body,
                target,
                peer: &peer,
            };
            return self.graphql(request, &deciders, &asker, trail).await;
        }
        let action = route.action();
        trail.decisions.actions = vec![action.clone()];

        // 5. resolve: identifiers → resource ARNs and condition keys.
        let resolving =
            deciders
                .resolver
                .resolve(route, &call.path_params, &params, &parts.headers);
        let mut resolved = self.traces.stage(Stage::Resolve, resolving).await?;
        for (key, value) in &resolved.plan.context {
            asker.context.insert(key, value.clone());
        }
        let creator = effects::creator_change(
            route,
            &params,
            deciders.resolver.scope(),
            resolved.model.as_ref(),
        )?;
        // (7, searches) a search named by experiment ids runs on the readable ones.
        let narrowed = filter::narrow(
            &deciders.authorizer,
            &asker,
            route,
            &action,
            &mut resolved,
            &mut params,
        )
        .await?;
        if let Narrowed::To { readable, of } = &narrowed {
            trail.reason = Some(format!(
                "search narrowed to {} of {of} experiment(s)",
                readable.len()
            ));
            if readable.is_empty() {
                trail.decision = Some(AuditDecision::Allow);
                return Ok(empty_answer());
            }
        }

        // 6. authorize: both vocabularies, explicit deny wins; each experiment with its own
        // keys; then every other resource the request names.
        let deciding = Instant::now();
        let deciding_request = deciders.authorizer.decide_request(
            &deciders.resolver,
            &asker,
            route,
            &resolved,
            &mut trail.decisions,
        );
        let decided = self.traces.stage(Stage::Authorize, deciding_request).await;
        telemetry::decision(deciding.elapsed());
        let pins = decided?;

        // 9. filter: a listing naming none of its parents would list every experiment's; a
        // search is answered by mlgate, page by page, with only readable items.
        let named = named_ids(route, &params);
        if filter::lists_nothing(route, named) {
            trail.reason = Some("the listing names no parent: answered empty".into());
            return Ok(empty_answer());
        }
        let workspace = deciders.resolver.scope().workspace();
        if let Some(listing) = filter::listing_of(route, &params, workspace) {
            let search = Search {
                listing,
                parts: &parts,
                params: &params,
                target: &target,
                peer: &peer,
            };
            let answering = deciders.searches.answer(search, &asker, trail);
            return self.traces.stage(Stage::Filter, answering).await;
        }

        // 7. rewrite: attribute writes to the principal; forward what was decided.
        let mut changed = narrowed != Narrowed::Unchanged || !pins.is_empty();
        for (field, value) in pins {
            params.set(field, serde_json::Value::String(value));
        }
        changed |= rewrite::attribute(route, &mut params, &principal.name)?;
        let body = match changed {
            true => rewrite::into_body(&mut parts, params),
            false => body,
        };

        // 8. forward: stream to MLflow and back; then what the request changed in mlgate.
        let response = self.forward(parts, body.into_body(), target, &peer).await;
        self.effects(&deciders.resolver)
            .settle(route, &resolved, creator, &principal, response)
            .await
    }

    async fn basic_auth(
        &self,
        route: &'static AuthRoute,
        asker: &Asker<'_>,
        parts: Parts,
        body: Body,
        peer: &Peer,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let json_body = basic_auth::is_json(
            parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let (bytes, _budget_share) =
            normalize::read_whole_body(&parts, body, self.body_limits(), &self.parsed_bodies)
                .await?;
        let request = AuthRequest {
            route,
            asker,
            fields: Fields::read(parts.method.as_str(), parts.uri.query(), json_body, &bytes)?,
            json_body,
            client_ip: peer.ip,
        };
        let actor = Actor::principal(
            &asker.principal.arn,
            trail.request_id.to_str().unwrap_or_default(),
        );
        let api = AuthApi {
            authenticator: &self.authenticator,
            store: self.store.acting_as(actor),
            scope: self.deciders.authorizer.scope(),
        };
        api.answer(request, trail).await
    }

    fn effects<'a>(&'a self, resolver: &'a Resolver) -> Effects<'a> {
        Effects {
            store: &self.store,
            resolver,
            upstream: &self.upstream,
        }
    }

    fn body_limits(&self) -> BodyLimits {
        BodyLimits {
            max_bytes: self.settings.max_parsed_body,
            timeout: self.settings.body_timeout,
        }
    }

    async fn probe(&self, probe: Probe) -> Response {
        match probe {
            Probe::Alive => probes::alive(),
            Probe::Ready => {
                let readiness = Readiness {
                    store: &self.store,
                    upstream: &self.upstream,
                    authenticator: &self.authenticator,
                    draining: self.draining.is_set(),
                };
                probes::ready(&readiness.checks().await)
            }
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
        note_portal_outcome(trail, &response);
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
            && portal::accepts_html(&parts.headers);
        if !(navigation && call.is_ui_page()) {
            return Err(GatewayError::Unauthenticated);
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

    async fn forward(
        &self,
        parts: Parts,
        body: Body,
        target: Target,
        peer: &Peer,
    ) -> Result<Response, GatewayError> {
        let forwarding = self.upstream.forward(
            Request::from_parts(parts, body),
            target.path_and_query,
            peer,
        );
        self.traces.stage(Stage::Forward, forwarding).await
    }
}

/// The connection a request came on (set by the listener), made known to the stages that
/// need it; the request id goes to MLflow too.
fn connection(parts: &mut Parts, trail: &Trail) -> Result<Peer, GatewayError> {
    let peer = Peer::of(&parts.extensions)
        .ok_or_else(|| GatewayError::Internal("request without connection information".into()))?;
    parts.headers.insert(X_REQUEST_ID, trail.request_id.clone());
    Ok(peer)
}

/// An empty list, answered by mlgate itself.
/// What a portal answer tells the audit record (who signed in or out, or why it failed).
fn note_portal_outcome(trail: &mut Trail, response: &Response) {
    match response.extensions().get::<PortalOutcome>() {
        Some(outcome) => {
            trail.principal.clone_from(&outcome.principal);
            trail.auth_method = outcome.auth_method;
            trail.decision = Some(outcome.decision);
            trail.reason.clone_from(&outcome.reason);
        }
        None => trail.decision = Some(AuditDecision::Public),
    }
}

fn empty_answer() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
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

/// The admin listener's policy simulator.
async fn simulate(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    gateway.simulator(request).await
}

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
    // Under `--audit-overload block` the record's room is held before anything happens.
    let slot = gateway.audit.reserve().await;
    let span = gateway.traces.request(request.method(), request.headers());
    let processed = match slot {
        Slot::Unavailable => Err(GatewayError::AuditUnavailable),
        Slot::Held | Slot::Later => {
            traces::within(span.as_ref(), gateway.process(request, &mut trail)).await
        }
    };
    let mut response = match processed {
        Ok(response) => response,
        Err(error) => {
            count_dependency_failure(&error);
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
    let operation = trail.operation.unwrap_or(telemetry::OPERATION_NONE);
    let record = trail.finish(response.status());
    let labels = RequestLabels {
        decision: record.decision.as_str(),
        auth_method: record.auth_method.map_or("none", AuthMethod::as_str),
        operation,
        status: response.status(),
    };
    telemetry::request(&labels, record.latency_ms / 1000.0);
    if let Some(span) = span {
        span.finish(&traces::Answered {
            method: &record.method,
            path: &record.path,
            operation,
            status: response.status(),
            client_ip: &record.source_ip,
            request_id: &record.request_id,
            decision: record.decision.as_str(),
            principal: record.principal.as_deref(),
            auth_method: record.auth_method.map(AuthMethod::as_str),
            statement: record.statement.as_deref(),
            reason: record.reason.as_deref(),
        });
    }
    gateway.audit.record_in(slot, record).await;
    response
}

/// Counts a refusal that MLflow or the store caused (the metrics of what mlgate depends on).
fn count_dependency_failure(error: &GatewayError) {
    match error {
        GatewayError::UpstreamUnavailable(failure) => telemetry::upstream_error(failure.kind()),
        GatewayError::UpstreamTimeout(_) => telemetry::upstream_timeout(),
        GatewayError::StoreUnavailable(_) => telemetry::store_error(),
        _ => {}
    }
}
