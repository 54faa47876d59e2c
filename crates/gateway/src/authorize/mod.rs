//! Stage 6: authorize. The one place a request is decided.
//!
//! [`Authorizer`] is the entry point the pipeline, the search filter, GraphQL and the STS
//! endpoint share. For a request it loads the principal's policies and session policy once
//! ([`Asker`]); for each access it adds the condition keys of the resources (an experiment's
//! name, tags and creator; a registered model's tags and creator), splits the resources into
//! the groups decided together ([`groups`]), and decides each with [`PolicySet::decide`] (pure,
//! [`decide`]), noting every action, resource and the deciding statement in [`Decisions`].
//! The global condition keys (`aws:*`) are built here too ([`global_context`]).

mod context;
mod decide;
mod groups;
mod request;
pub mod simulate;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use mlgate_policy::{Context, Decision};

pub use context::{global_context, request_context};
pub use decide::{EXECUTE_API_INVOKE, PolicySet, Question, Verdict};
pub use groups::{decision_groups, under};
pub use request::Pin;

use crate::error::{Denial, GatewayError};
use crate::identity::Principal;
use crate::resolve::{ArnScope, ExperimentFacts, NamedModel, RESOURCE_CREATOR};
use crate::store::{Store, StoreError};

/// A principal's policies: its identity policies and, for an assumed role, its session policy.
pub async fn policy_set(store: &Store, principal: &Principal) -> Result<PolicySet, StoreError> {
    Ok(PolicySet {
        identity: store.effective_policies(principal).await?,
        session: store.session_policies(principal).await?,
    })
}

/// Decides requests against the principals' stored policies.
#[derive(Clone, Debug)]
pub struct Authorizer {
    store: Store,
    scope: ArnScope,
}

/// A principal asking, for one request: its policies, loaded once, and the request's condition
/// keys.
#[derive(Debug)]
pub struct Asker<'a> {
    pub principal: &'a Principal,
    /// Loaded once per request; borrowed by the askers derived from it.
    pub policies: Cow<'a, PolicySet>,
    /// The global keys and the route's own (`mlflow:TargetStage`, ...).
    pub context: Context,
    /// `arn:aws:execute-api:...` of the request's method and path.
    pub execute_api: &'a str,
}

impl Asker<'_> {
    /// Whether `mlflow:ResourceCreator` can change a decision (then creators are looked up).
    pub fn reads_creator(&self) -> bool {
        self.policies.reads_key(RESOURCE_CREATOR)
    }

    /// The question of `action` on `arns` (and of `execute_api`) with the keys `context`, and
    /// the verdict of the asker's policies on it.
    pub fn ask<'q>(
        &'q self,
        action: &'q str,
        arns: &'q [String],
        execute_api: &'q str,
        context: &'q Context,
    ) -> (Question<'q>, Verdict<'q>) {
        let question = Question {
            mlflow: (action, arns),
            execute_api,
            principal: &self.principal.arn,
            context,
        };
        let verdict = self.policies.decide(&question);
        (question, verdict)
    }

    /// The same asker with other condition keys (a GraphQL field's), its policies borrowed.
    pub fn with_context(&self, context: Context) -> Asker<'_> {
        Asker {
            principal: self.principal,
            policies: Cow::Borrowed(&*self.policies),
            context,
            execute_api: self.execute_api,
        }
    }
}

/// One access to decide: an action on resources, with what is known about them.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    /// `mlflow:<Operation>`.
    pub action: &'a str,
    pub arns: &'a [String],
    /// The experiments the ARNs lie under, with their name and tags from MLflow.
    pub experiments: &'a [(String, Arc<ExperimentFacts>)],
    /// The registered model or prompt the request names: its tags and creator are keys of what
    /// lies outside experiments.
    pub model: Option<&'a NamedModel>,
}

/// Every decision a request needed, for its audit record: each action and resource decided
/// (the execute-api pair last) and the last verdict, which is the refusal when one refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub outcome: Option<Decision>,
}

/// Where each decision is told as it is made: the audit record's [`Decisions`], or the
/// simulator's explanation of them (`simulate.rs`).
pub trait Notes {
    fn note(&mut self, question: &Question<'_>, verdict: &Verdict<'_>);
}

impl Notes for Decisions {
    fn note(&mut self, question: &Question<'_>, verdict: &Verdict<'_>) {
        self.actions.retain(|action| action != EXECUTE_API_INVOKE);
        self.resources.retain(|arn| arn != question.execute_api);
        let (action, resources) = question.mlflow;
        if !self.actions.iter().any(|a| a == action) {
            self.actions.push(action.to_owned());
        }
        for arn in resources {
            if !self.resources.contains(arn) {
                self.resources.push(arn.clone());
            }
        }
        self.actions.push(EXECUTE_API_INVOKE.to_owned());
        self.resources.push(question.execute_api.to_owned());
        self.outcome = Some(verdict.decision.clone());
    }
}

impl Authorizer {
    pub fn new(store: Store, scope: ArnScope) -> Authorizer {
        Authorizer { store, scope }
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// The same authorizer for requests in MLflow workspace `workspace`.
    pub fn in_workspace(&self, workspace: &str) -> Authorizer {
        Authorizer {
            store: self.store.clone(),
            scope: self.scope.in_workspace(workspace),
        }
    }

    /// The principal's policies ([`policy_set`]).
    pub async fn policies(&self, principal: &Principal) -> Result<PolicySet, GatewayError> {
        Ok(policy_set(&self.store, principal).await?)
    }

    /// The principal, with its policies loaded, asking with `context` about `execute_api`.
    pub async fn asker<'a>(
        &self,
        principal: &'a Principal,
        context: Context,
        execute_api: &'a str,
    ) -> Result<Asker<'a>, GatewayError> {
        Ok(Asker {
            principal,
            policies: Cow::Owned(self.policies(principal).await?),
            context,
            execute_api,
        })
    }

    /// Decides `access`: every group of its resources must be allowed. Notes each decision;
    /// a refusal is [`GatewayError::PermissionDenied`] naming the action and resource refused.
    pub async fn decide(
        &self,
        asker: &Asker<'_>,
        access: Access<'_>,
        decisions: &mut impl Notes,
    ) -> Result<(), GatewayError> {
        let noted =
            |question: &Question<'_>, verdict: &Verdict<'_>| decisions.note(question, verdict);
        match self.first_refusal(asker, access, noted).await? {
            Some(refusal) => Err(GatewayError::PermissionDenied(refusal)),
            None => Ok(()),
        }
    }

    /// Whether `access` would be allowed; nothing is noted (a search narrowed to what may be
    /// searched is then decided on what is left).
    pub async fn allows(
        &self,
        asker: &Asker<'_>,
        access: Access<'_>,
    ) -> Result<bool, GatewayError> {
        Ok(self
            .first_refusal(asker, access, |_, _| {})
            .await?
            .is_none())
    }

    /// Decides the groups of `access` in turn, showing `note` each question and verdict, until
    /// one is refused: the refusal's message, `None` when every group is allowed.
    async fn first_refusal(
        &self,
        asker: &Asker<'_>,
        access: Access<'_>,
        mut note: impl FnMut(&Question<'_>, &Verdict<'_>),
    ) -> Result<Option<Denial>, GatewayError> {
        for (arns, context) in self.groups(asker, access).await? {
            let (question, verdict) = asker.ask(access.action, &arns, asker.execute_api, &context);
            note(&question, &verdict);
            if !verdict.is_allowed() {
                return Ok(Some(verdict.denial(&asker.principal.arn)));
            }
        }
        Ok(None)
    }

    /// Who created each of these resources through mlgate, when a policy reads it.
    pub async fn creators(
        &self,
        asker: &Asker<'_>,
        arns: &[String],
    ) -> Result<HashMap<String, String>, GatewayError> {
        if !asker.reads_creator() {
            return Ok(HashMap::new());
        }
        Ok(self.store.resource_creators(arns).await?)
    }

    /// The groups of `access` with every key filled in.
    async fn groups(
        &self,
        asker: &Asker<'_>,
        access: Access<'_>,
    ) -> Result<Vec<groups::Group>, GatewayError> {
        let reads_creator = asker.reads_creator();
        let mut experiments = Vec::with_capacity(access.experiments.len());
        for (id, facts) in access.experiments {
            let creator = match reads_creator {
                true => {
                    self.store
                        .resource_creator(&self.scope.experiment(id))
                        .await?
                }
                false => None,
            };
            let facts = match creator {
                Some(creator) => Arc::new(ExperimentFacts {
                    creator: Some(creator),
                    ..(**facts).clone()
                }),
                None => facts.clone(),
            };
            experiments.push((id.clone(), facts));
        }
        let mut model_keys = Vec::new();
        if let Some(model) = access.model {
            if reads_creator
                && let Some(arn) = model.arn(&self.scope)
                && let Some(creator) = self.store.resource_creator(&arn).await?
            {
                model_keys.push((RESOURCE_CREATOR.to_owned(), creator));
            }
            model_keys.extend(model.keys.iter().cloned());
        }
        Ok(decision_groups(
            &self.scope,
            access.arns,
            &experiments,
            &model_keys,
            &asker.context,
        ))
    }
}
