//! Which resources of a request are decided together, pure. An experiment's name, tags and
//! creator are condition keys of everything under it, so one experiment's keys must never allow
//! another's resources: a request touching several experiments is decided once per experiment
//! with that experiment's keys, and once more for what lies outside experiments with the keys of
//! the registered model it names (if any).

use std::sync::Arc;

use mlgate_policy::Context;

use crate::resolve::{ArnScope, ExperimentFacts};

/// One decision's share of a request: these ARNs, decided with this context.
pub type Group = (Vec<String>, Context);

/// Splits `arns` into the groups decided together: all of them at once when they lie under at
/// most one experiment and nothing else (that experiment's keys added), otherwise one group per
/// experiment with its keys and one for the rest with `outside_keys`.
pub fn decision_groups(
    scope: &ArnScope,
    arns: &[String],
    experiments: &[(String, Arc<ExperimentFacts>)],
    outside_keys: &[(String, String)],
    context: &Context,
) -> Vec<Group> {
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
    let outside: Vec<String> = arns
        .iter()
        .filter(|arn| scope.experiment_of(arn).is_none())
        .cloned()
        .collect();
    match experiments {
        [] => vec![(arns.to_vec(), outside_context())],
        [(_, facts)] if outside.is_empty() => vec![(arns.to_vec(), with_keys(facts))],
        _ => {
            let mut groups: Vec<Group> = experiments
                .iter()
                .map(|(id, facts)| (under(scope, arns, id), with_keys(facts)))
                .collect();
            if !outside.is_empty() {
                groups.push((outside, outside_context()));
            }
            groups
        }
    }
}

/// The ARNs that lie under experiment `id`.
pub fn under(scope: &ArnScope, arns: &[String], id: &str) -> Vec<String> {
    arns.iter()
        .filter(|arn| scope.experiment_of(arn) == Some(id))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope::new("us-east-1", "111111111111")
    }

    fn facts(name: &str) -> Arc<ExperimentFacts> {
        Arc::new(ExperimentFacts {
            name: name.into(),
            ..ExperimentFacts::default()
        })
    }

    fn name_in(context: &Context) -> Option<&str> {
        context
            .get("mlflow:ExperimentName")
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    #[test]
    fn one_experiment_and_nothing_else_is_one_group_with_its_keys() {
        let s = scope();
        let arns = vec![s.experiment("1"), s.run("1", "r")];
        let groups = decision_groups(
            &s,
            &arns,
            &[("1".into(), facts("a"))],
            &[],
            &Context::default(),
        );
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0, arns);
        assert_eq!(name_in(&groups[0].1), Some("a"));
    }

    #[test]
    fn each_experiment_is_decided_with_its_own_keys_and_the_rest_with_the_models() {
        let s = scope();
        let model = s.registered_model("m");
        let arns = vec![s.experiment("1"), s.run("2", "r"), model.clone()];
        let experiments = [("1".to_owned(), facts("a")), ("2".to_owned(), facts("b"))];
        let keys = [("mlflow:ModelTag/team".to_owned(), "x".to_owned())];
        let groups = decision_groups(&s, &arns, &experiments, &keys, &Context::default());
        assert_eq!(groups.len(), 3);
        assert_eq!(
            (groups[0].0.clone(), name_in(&groups[0].1)),
            (vec![s.experiment("1")], Some("a"))
        );
        assert_eq!(
            (groups[1].0.clone(), name_in(&groups[1].1)),
            (vec![s.run("2", "r")], Some("b"))
        );
        assert_eq!(groups[2].0, vec![model]);
        assert_eq!(name_in(&groups[2].1), None);
        assert!(groups[2].1.get("mlflow:ModelTag/team").is_some());
    }

    #[test]
    fn one_experiment_beside_other_resources_keeps_its_keys_to_itself() {
        let s = scope();
        let arns = vec![s.experiment("1"), s.server()];
        let groups = decision_groups(
            &s,
            &arns,
            &[("1".into(), facts("a"))],
            &[],
            &Context::default(),
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(name_in(&groups[1].1), None);
    }
}
