//! A whole REST request decided: the route's action on its resources, an experiment rename
//! decided again as if the experiment already had its new name (so a policy scoped to
//! `mlflow:ExperimentName` `team-a/*` cannot move an experiment out of or into its prefix), and
//! every other resource the request names, each as the read (or write) it implies. References
//! are resolved only once the request's own action is allowed, so a refused caller learns
//! nothing about what they name.

use std::sync::Arc;

use mlgate_catalog::Route;

use super::{Access, Asker, Authorizer, Notes};
use crate::error::GatewayError;
use crate::resolve::{self, ExperimentFacts, Resolved, Resolver};

/// A request field to forward with the value that was decided (a source MLflow would resolve,
/// an alias or a stage, pinned to the version decided).
pub type Pin = (&'static str, String);

impl Authorizer {
    /// Decides the request; returns the fields to pin. A refusal is
    /// [`GatewayError::PermissionDenied`].
    pub async fn decide_request(
        &self,
        resolver: &Resolver,
        asker: &Asker<'_>,
        route: &Route,
        resolved: &Resolved,
        decisions: &mut impl Notes,
    ) -> Result<Vec<Pin>, GatewayError> {
        let action = route.action();
        let access = Access {
            action: &action,
            arns: &resolved.arns,
            experiments: &resolved.experiments,
            model: resolved.model.as_ref(),
        };
        self.decide(asker, access, decisions).await?;
        if let Some(new_name) = resolve::renamed_experiment(route, &resolved.plan) {
            let renamed: Vec<(String, Arc<ExperimentFacts>)> = resolved
                .experiments
                .iter()
                .map(|(id, facts)| {
                    let facts = ExperimentFacts {
                        name: new_name.to_owned(),
                        ..(**facts).clone()
                    };
                    (id.clone(), Arc::new(facts))
                })
                .collect();
            let access = Access {
                experiments: &renamed,
                ..access
            };
            self.decide(asker, access, decisions).await?;
        }
        let mut pins = Vec::new();
        for reference in resolver.references(&resolved.plan).await? {
            let arns = [reference.arn];
            let experiments = resolver.experiment_contexts(&arns).await?;
            let action = format!("mlflow:{}", reference.operation);
            let access = Access {
                action: &action,
                arns: &arns,
                experiments: &experiments,
                model: reference.model.as_ref(),
            };
            self.decide(asker, access, decisions).await?;
            pins.extend(reference.pin);
        }
        Ok(pins)
    }
}
