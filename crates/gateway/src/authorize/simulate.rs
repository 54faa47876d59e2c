//! The policy simulator (`mlgate policy simulate`, `mlgate audit explain`): what the server
//! would decide for a principal, and why. It loads the principal's policies and builds its
//! condition keys the way a request does ([`policy_set`], [`global_context`]) and decides with
//! the server's own code ([`PolicySet::evaluate`], or [`PolicySet::decide`] for a recorded
//! request's two vocabularies); [`mlgate_policy::explain`] only reports which statements
//! applied and what kept the others from applying.

use std::fmt;

use jiff::Timestamp;
use mlgate_policy::{Context, Decision, Miss, NamedPolicy, Request, StatementTrace, explain};
use serde::Serialize;

use super::{PolicySet, Question, global_context, policy_set};
use crate::identity::Principal;
use crate::listen::Peer;
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

pub async fn simulate(
    store: &Store,
    principal: &Principal,
    asked: &Simulated<'_>,
) -> Result<Simulation, StoreError> {
    let mut policies = policy_set(store, principal).await?;
    if !asked.policies.is_empty() {
        policies.identity = policies
            .identity
            .iter()
            .chain(asked.policies)
            .cloned()
            .collect();
    }
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
    let (name, by) = match decision {
        Decision::Allow(by) => ("Allow", Some(by)),
        Decision::ExplicitDeny(by) => ("ExplicitDeny", Some(by)),
        Decision::ImplicitDeny => ("ImplicitDeny", None),
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
