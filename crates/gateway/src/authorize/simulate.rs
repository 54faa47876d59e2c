//! The policy simulator (`mlgate policy simulate`, `mlgate audit explain`): what the server
//! would decide for a principal, and why. It loads the principal's policies and builds its
//! condition keys the way a request does ([`policy_set`], [`global_context`]) and decides with
//! the server's own code ([`PolicySet::evaluate`], or [`PolicySet::decide`] for a recorded
//! request's two vocabularies); [`mlgate_policy::explain`] only reports which statements
//! applied and what kept the others from applying.
//!
//! The HTTP form ([`simulate_http`]) runs a request through the server's own stages
//! (normalize, classify, read the fields, resolve against MLflow, [`Authorizer::decide_request`])
//! and explains each decision they make as they make it ([`Notes`]).

use std::fmt;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use jiff::Timestamp;
use mlgate_catalog::{Serves, classify_auth};
use mlgate_policy::{Context, Decision, Miss, NamedPolicy, Request, StatementTrace, explain};
use serde::Serialize;

use super::{
    Authorizer, Decisions, Notes, PolicySet, Question, Verdict, global_context, policy_set,
};
use crate::classify::Call;
use crate::config::GatewaySettings;
use crate::error::GatewayError;
use crate::forward::Upstream;
use crate::identity::Principal;
use crate::listen::Peer;
use crate::normalize::{self, BodyLimits, ParsedBodyBudget};
use crate::resolve::{ArnScope, Resolver};
use crate::store::{Store, StoreError};

/// What is asked: an action on a resource, from a connection, with extra condition keys.
pub struct Simulated<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// The connection the request would come on (`aws:SourceIp`, `aws:SecureTransport`).
    pub peer: Peer,
    /// Keys of the request itself (`mlflow:ExperimentName`, ...), added to the global ones.
    pub context: &'a [(String, String)],
    /// Policies beside the principal's own (an ad-hoc principal's documents).
    pub policies: &'a [NamedPolicy],
}

/// A request the server decided, as its audit record tells it.
pub struct Recorded<'a> {
    /// `mlflow:<Operation>` and the MLflow resource ARNs.
    pub action: &'a str,
    pub resources: &'a [String],
    /// The `execute-api` ARN of its method and path.
    pub execute_api: &'a str,
    pub peer: Peer,
    pub time: Timestamp,
    /// Keys of the request itself, which the record does not keep.
    pub context: &'a [(String, String)],
}

/// The answer, in the shape `--json` prints.
#[derive(Debug, Serialize)]
pub struct Simulation {
    pub principal: String,
    /// The action and resource decided (for a recorded request: the pair the verdict names).
    pub action: String,
    pub resource: String,
    /// `Allow`, `ExplicitDeny` or `ImplicitDeny`.
    pub decision: &'static str,
    /// The deciding policy and statement (none for an implicit deny).
    pub policy: Option<String>,
    pub statement: Option<String>,
    /// Every condition key the request carries, lowercased.
    pub context: Vec<(String, Vec<String>)>,
    /// Every statement about the action: the identity policies', then the session policy's.
    pub statements: Vec<StatementTrace>,
}

/// The principal's policies with an ad-hoc principal's documents beside them.
fn with_documents(mut policies: PolicySet, documents: &[NamedPolicy]) -> PolicySet {
    if !documents.is_empty() {
        policies.identity = policies.identity.iter().chain(documents).cloned().collect();
    }
    policies
}

pub async fn simulate(
    store: &Store,
    principal: &Principal,
    asked: &Simulated<'_>,
) -> Result<Simulation, StoreError> {
    let policies = with_documents(policy_set(store, principal).await?, asked.policies);
    let context = context_of(principal, &asked.peer, Timestamp::now(), asked.context);
    let request = Request {
        action: asked.action,
        resource: asked.resource,
        principal: Some(&principal.arn),
        context: &context,
    };
    let decision = policies.evaluate(&request);
    Ok(simulation(&policies, &request, decision))
}

/// The recorded request decided again with today's policies, as the server decides a request.
pub async fn redecide(
    store: &Store,
    principal: &Principal,
    recorded: &Recorded<'_>,
) -> Result<Simulation, StoreError> {
    let policies = policy_set(store, principal).await?;
    let context = context_of(principal, &recorded.peer, recorded.time, recorded.context);
    let verdict = policies.decide(&Question {
        mlflow: (recorded.action, recorded.resources),
        execute_api: recorded.execute_api,
        principal: &principal.arn,
        context: &context,
    });
    let request = Request {
        action: verdict.action,
        resource: verdict.resource,
        principal: Some(&principal.arn),
        context: &context,
    };
    Ok(simulation(&policies, &request, verdict.decision))
}

fn context_of(
    principal: &Principal,
    peer: &Peer,
    time: Timestamp,
    extra: &[(String, String)],
) -> Context {
    let mut context = global_context(principal, peer, time);
    for (key, value) in extra {
        context.insert(key, value.clone());
    }
    context
}

fn simulation(policies: &PolicySet, request: &Request<'_>, decision: Decision) -> Simulation {
    let name = decision_name(&decision);
    let by = match decision {
        Decision::Allow(by) | Decision::ExplicitDeny(by) => Some(by),
        Decision::ImplicitDeny => None,
    };
    let session = policies.session.iter().flat_map(|s| s.iter());
    Simulation {
        principal: request.principal.unwrap_or_default().to_owned(),
        action: request.action.to_owned(),
        resource: request.resource.to_owned(),
        decision: name,
        policy: by.as_ref().map(|by| by.policy.clone()),
        statement: by.map(|by| by.statement),
        context: request
            .context
            .entries()
            .into_iter()
            .map(|(key, values)| (key.to_owned(), values.to_vec()))
            .collect(),
        statements: explain(policies.identity.iter().chain(session), request),
    }
}

/// An HTTP request as a client would send it.
pub struct HttpAsked<'a> {
    pub method: Method,
    /// The path and query.
    pub target: &'a str,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: Peer,
    /// Keys given by hand, added to the global ones.
    pub context: &'a [(String, String)],
    /// Policies beside the principal's own (an ad-hoc principal's documents).
    pub policies: &'a [NamedPolicy],
}

/// A simulated request's headers: `Content-Type: application/json` when it has a body (what
/// MLflow's client sends), then the given ones.
pub fn request_headers<'h>(
    with_body: bool,
    given: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    if with_body {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in given {
        let name = http::HeaderName::try_from(name.trim())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        let value = http::HeaderValue::try_from(value.trim())
            .map_err(|_| format!("the value of {name} is not a header value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// What the server would do with an HTTP request, in the shape `--json` prints.
#[derive(Debug, Serialize)]
pub struct HttpSimulation {
    pub principal: String,
    pub method: String,
    pub target: String,
    /// The MLflow operation the route catalog names (none: a route MLflow does not serve).
    pub operation: Option<&'static str>,
    pub execute_api: String,
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`, or `Refused` before any decision.
    pub decision: &'static str,
    /// How the server would answer a refusal, in MLflow's error shape.
    pub refusal: Option<Refusal>,
    /// Every decision the server makes for the request, in order, each explained.
    pub decisions: Vec<Simulation>,
}

#[derive(Debug, Serialize)]
pub struct Refusal {
    pub status: u16,
    pub error_code: &'static str,
    pub message: String,
}

/// The decisions of a request as the server makes them, each explained.
struct Explaining {
    policies: PolicySet,
    decisions: Decisions,
    explained: Vec<Simulation>,
}

impl Notes for Explaining {
    fn note(&mut self, question: &Question<'_>, verdict: &Verdict<'_>) {
        self.decisions.note(question, verdict);
        let request = Request {
            action: verdict.action,
            resource: verdict.resource,
            principal: Some(question.principal),
            context: question.context,
        };
        let explained = simulation(&self.policies, &request, verdict.decision.clone());
        self.explained.push(explained);
    }
}

/// How long the simulator waits for its share of the body budget (it is alone).
const BODY_WAIT: Duration = Duration::from_secs(1);

/// Decides an HTTP request as the server would. `settings` are the server's (the upstream is
/// where ids are resolved); only a store failure is an error: anything the server would refuse
/// is the simulation's answer.
pub async fn simulate_http(
    store: &Store,
    principal: &Principal,
    settings: &GatewaySettings,
    asked: &HttpAsked<'_>,
) -> Result<HttpSimulation, StoreError> {
    let mut explaining = Explaining {
        policies: with_documents(policy_set(store, principal).await?, asked.policies),
        decisions: Decisions::default(),
        explained: Vec::new(),
    };
    let mut call = None;
    let decided = decide_http(
        store,
        principal,
        settings,
        asked,
        &mut call,
        &mut explaining,
    )
    .await;
    let decision = match (&decided, &explaining.decisions.outcome) {
        (Err(GatewayError::StoreUnavailable(error)), _) => return Err(error.clone()),
        (Err(GatewayError::PermissionDenied(_)), Some(outcome)) | (Ok(()), Some(outcome)) => {
            decision_name(outcome)
        }
        (Ok(()), None) => "Allow",
        (Err(_), _) => "Refused",
    };
    let refusal = decided.err().map(|error| Refusal {
        status: error.status().as_u16(),
        error_code: error.error_code(),
        message: error.to_string(),
    });
    Ok(HttpSimulation {
        principal: principal.arn.clone(),
        method: asked.method.to_string(),
        target: asked.target.to_owned(),
        operation: call
            .as_ref()
            .and_then(|c: &Call| c.route)
            .map(|r| r.operation),
        execute_api: call.map(|c| c.execute_api).unwrap_or_default(),
        decision,
        refusal,
        decisions: explaining.explained,
    })
}

/// The server's stages, in its order, up to the decision (`pipeline.rs`, `Gateway::process`).
async fn decide_http(
    store: &Store,
    principal: &Principal,
    settings: &GatewaySettings,
    asked: &HttpAsked<'_>,
    classified: &mut Option<Call>,
    notes: &mut Explaining,
) -> Result<(), GatewayError> {
    let uri: Uri = asked
        .target
        .parse()
        .map_err(|_| GatewayError::BadRequest("the request target is not a valid URI".into()))?;
    let target = normalize::target(&uri)?;
    let call = classified.insert(Call::new(&asked.method, &target.path, settings));
    if classify_auth(asked.method.as_str(), &target.path).is_some() {
        return Err(GatewayError::BadRequest(
            "MLflow's basic-auth API is answered by mlgate itself: simulate its action instead"
                .into(),
        ));
    }
    let route = call.catalogued(&asked.method, &target.path)?;
    if route.public {
        return Ok(());
    }
    if route.serves == Serves::GraphQl {
        return Err(GatewayError::BadRequest(
            "GraphQL is decided field by field: simulate each field's REST twin".into(),
        ));
    }
    let mut request = http::Request::new(Body::from(asked.body.clone()));
    *request.method_mut() = asked.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = asked.headers.clone();
    let (parts, body) = request.into_parts();
    let limits = BodyLimits {
        max_bytes: settings.max_parsed_body,
        timeout: settings.body_timeout,
    };
    let budget = ParsedBodyBudget::new(settings.parsed_body_budget, BODY_WAIT);
    let (params, _body, _share) =
        normalize::read_fields(route, &parts, body, limits, &budget).await?;

    let scope = ArnScope::new(&settings.region, &settings.account);
    let resolver = Resolver::new(
        scope.clone(),
        Upstream::new(&settings.upstream, settings.upstream_timeout)
            .map_err(|e| GatewayError::BadRequest(format!("--upstream: {e}")))?,
    );
    let authorizer = Authorizer::new(store.clone(), scope);
    let context = context_of(principal, &asked.peer, Timestamp::now(), asked.context);
    let mut asker = authorizer
        .asker(principal, context, &call.execute_api)
        .await?;
    asker.policies = std::borrow::Cow::Owned(notes.policies.clone());
    let resolved = resolver
        .resolve(route, &call.path_params, &params, &parts.headers)
        .await?;
    for (key, value) in &resolved.plan.context {
        asker.context.insert(key, value.clone());
    }
    authorizer
        .decide_request(&resolver, &asker, route, &resolved, notes)
        .await?;
    Ok(())
}

fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow(_) => "Allow",
        Decision::ExplicitDeny(_) => "ExplicitDeny",
        Decision::ImplicitDeny => "ImplicitDeny",
    }
}

impl fmt::Display for HttpSimulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {} {}: {}",
            self.principal,
            self.method,
            self.target,
            self.operation.unwrap_or("no MLflow route")
        )?;
        for (i, decision) in self.decisions.iter().enumerate() {
            writeln!(f, "--- decision {} of {}", i + 1, self.decisions.len())?;
            write!(f, "{decision}")?;
        }
        writeln!(f, "--- result: {}", self.decision)?;
        if let Some(refusal) = &self.refusal {
            writeln!(
                f,
                "answered {} {}: {}",
                refusal.status, refusal.error_code, refusal.message
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {} on {}", self.principal, self.action, self.resource)?;
        match (&self.policy, &self.statement) {
            (Some(policy), Some(statement)) => writeln!(
                f,
                "decision: {} by {policy} statement {statement}",
                self.decision
            )?,
            _ => writeln!(f, "decision: {} (no statement allows)", self.decision)?,
        }
        writeln!(f, "condition keys:")?;
        for (key, values) in &self.context {
            writeln!(f, "  {key} = {}", values.join(", "))?;
        }
        writeln!(f, "statements about {}:", self.action)?;
        for t in &self.statements {
            let verdict = if t.applies() {
                "applies"
            } else {
                "does not apply"
            };
            writeln!(f, "  {} {} {}: {verdict}", t.effect, t.policy, t.statement)?;
            for miss in &t.misses {
                match miss {
                    Miss::Resource => writeln!(f, "    its Resource does not match")?,
                    Miss::Principal => writeln!(f, "    its Principal does not name the caller")?,
                    Miss::Condition {
                        condition,
                        request_values: Some(values),
                    } => writeln!(
                        f,
                        "    {condition} does not hold for [{}]",
                        values.join(", ")
                    )?,
                    Miss::Condition {
                        condition,
                        request_values: None,
                    } => writeln!(
                        f,
                        "    {condition} does not hold: the request has no such key"
                    )?,
                }
            }
        }
        Ok(())
    }
}
