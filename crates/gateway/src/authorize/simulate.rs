//! The policy simulator (`mlgate policy simulate`): what the server would decide for a principal
//! asking an action on a resource, and why. It loads the principal's policies and builds its
//! condition keys the way a request does ([`policy_set`], [`global_context`]) and decides with
//! the server's own [`PolicySet::evaluate`]; [`mlgate_policy::explain`] only reports which
//! statements applied and what kept the others from applying.

use mlgate_policy::{Context, Decision, Request, StatementTrace, explain};
use serde::Serialize;

use super::{PolicySet, global_context, policy_set};
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
}

/// The answer, in the shape `--json` prints.
#[derive(Debug, Serialize)]
pub struct Simulation {
    pub principal: String,
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
    let policies = policy_set(store, principal).await?;
    let mut context = global_context(principal, &asked.peer, jiff::Timestamp::now());
    for (key, value) in asked.context {
        context.insert(key, value.clone());
    }
    Ok(decide(&policies, principal, asked, &context))
}

fn decide(
    policies: &PolicySet,
    principal: &Principal,
    asked: &Simulated<'_>,
    context: &Context,
) -> Simulation {
    let request = Request {
        action: asked.action,
        resource: asked.resource,
        principal: Some(&principal.arn),
        context,
    };
    let decision = policies.evaluate(&request);
    let (name, by) = match decision {
        Decision::Allow(by) => ("Allow", Some(by)),
        Decision::ExplicitDeny(by) => ("ExplicitDeny", Some(by)),
        Decision::ImplicitDeny => ("ImplicitDeny", None),
    };
    let session = policies.session.iter().flat_map(|s| s.iter());
    Simulation {
        principal: principal.arn.clone(),
        action: asked.action.to_owned(),
        resource: asked.resource.to_owned(),
        decision: name,
        policy: by.as_ref().map(|by| by.policy.clone()),
        statement: by.map(|by| by.statement),
        context: context
            .entries()
            .into_iter()
            .map(|(key, values)| (key.to_owned(), values.to_vec()))
            .collect(),
        statements: explain(policies.identity.iter().chain(session), &request),
    }
}
