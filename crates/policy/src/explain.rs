//! Why a decision came out as it did: every statement about the action asked, and for each what
//! kept it from applying. For the policy simulator, never on the request path: [`evaluate`]
//! decides, this only reports (a test checks the two agree).
//!
//! [`evaluate`]: crate::evaluate

use serde::Serialize;

use crate::action::request_action_key;
use crate::arn::SplitArn;
use crate::document::Effect;
use crate::evaluate::{NamedPolicy, Request};

/// One statement whose action covers the request's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementTrace {
    pub policy: String,
    /// The Sid, or `#<0-based index>`.
    pub statement: String,
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// What kept it from applying; empty when it applies.
    pub misses: Vec<Miss>,
}

impl StatementTrace {
    pub fn applies(&self) -> bool {
        self.misses.is_empty()
    }
}

/// A part of a statement that does not hold for the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "miss", rename_all = "snake_case")]
pub enum Miss {
    /// No `Resource` pattern matches the resource (or a `NotResource` one does).
    Resource,
    /// The statement's `Principal` does not name the caller (resource policies).
    Principal,
    /// A condition that does not hold: as written, and the request's values of its key
    /// (`None`: the request does not carry the key).
    Condition {
        condition: String,
        request_values: Option<Vec<String>>,
    },
}

/// Every statement of `policies` whose `Action` covers the request's action, in order, with
/// its misses.
pub fn explain<'p>(
    policies: impl IntoIterator<Item = &'p NamedPolicy>,
    request: &Request<'_>,
) -> Vec<StatementTrace> {
    let action = request_action_key(request.action);
    let resource = SplitArn::new(request.resource);
    let context = request.context;
    let mut traces = Vec::new();
    for policy in policies {
        for statement in policy.document.compiled.statements.iter() {
            if !statement
                .actions
                .applies(|p| p.matches(action.as_deref(), context))
            {
                continue;
            }
            let mut misses = Vec::new();
            let resource_matches = statement.resources.as_ref().is_none_or(|resources| {
                resources.applies(|pattern| pattern.matches_split(&resource, context))
            });
            if !resource_matches {
                misses.push(Miss::Resource);
            }
            if !statement
                .principal
                .as_ref()
                .is_none_or(|principal| principal.applies(request.principal))
            {
                misses.push(Miss::Principal);
            }
            for condition in &statement.conditions {
                let values = context.get_normalized(condition.key());
                if !condition.holds(values, context) {
                    misses.push(Miss::Condition {
                        condition: condition.written().to_owned(),
                        request_values: values.map(<[String]>::to_vec),
                    });
                }
            }
            traces.push(StatementTrace {
                policy: policy.name.clone(),
                statement: statement.label.to_string(),
                effect: match statement.effect {
                    Effect::Allow => "Allow",
                    Effect::Deny => "Deny",
                },
                misses,
            });
        }
    }
    traces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::tests::policy;
    use crate::{Context, Decision, evaluate};

    const EXPERIMENT: &str = "arn:mlflow:us-east-1:111122223333:experiment/7";

    fn request<'a>(action: &'a str, context: &'a Context) -> Request<'a> {
        Request {
            action,
            resource: EXPERIMENT,
            principal: None,
            context,
        }
    }

    #[test]
    fn a_near_miss_names_the_condition_and_the_values_compared() {
        let policies = [policy(
            "team-a",
            r#"{"Sid": "TeamA", "Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*",
                "Condition": {"StringLike": {"mlflow:ExperimentName": ["team-a/*"]}}},
               {"Sid": "Models", "Effect": "Allow", "Action": "mlflow:GetExperiment",
                "Resource": "arn:mlflow:*:*:registered-model/*"},
               {"Sid": "Other", "Effect": "Allow", "Action": "mlflow:DeleteRun", "Resource": "*"}"#,
        )];
        let mut context = Context::default();
        context.insert("mlflow:ExperimentName", "team-b/x");
        let traces = explain(&policies, &request("mlflow:GetExperiment", &context));
        assert_eq!(
            traces,
            [
                StatementTrace {
                    policy: "team-a".into(),
                    statement: "TeamA".into(),
                    effect: "Allow",
                    misses: vec![Miss::Condition {
                        condition: r#"StringLike mlflow:ExperimentName ["team-a/*"]"#.into(),
                        request_values: Some(vec!["team-b/x".into()]),
                    }],
                },
                StatementTrace {
                    policy: "team-a".into(),
                    statement: "Models".into(),
                    effect: "Allow",
                    misses: vec![Miss::Resource],
                },
            ]
        );
        let absent = explain(
            &policies,
            &request("mlflow:GetExperiment", &Context::default()),
        );
        assert!(matches!(
            &absent[0].misses[..],
            [Miss::Condition {
                request_values: None,
                ..
            }]
        ));
    }

    /// Differential: on generated policies with conditions, negations and both effects, the
    /// statements the explanation says apply give the decision `evaluate` returns.
    #[test]
    fn the_explanation_agrees_with_the_decision_on_random_policies() {
        let actions = ["mlflow:GetRun", "mlflow:Get*", "mlflow:DeleteRun", "*"];
        let resources = [
            EXPERIMENT,
            "arn:mlflow:*:111122223333:experiment/*",
            "arn:mlflow:*:1:model/*",
        ];
        let conditions = [
            "",
            r#", "Condition": {"StringEquals": {"aws:username": "alice"}}"#,
            r#", "Condition": {"StringNotEquals": {"aws:username": "alice"}}"#,
            r#", "Condition": {"StringLike": {"mlflow:ExperimentName": "team-*"}}"#,
            r#", "Condition": {"Null": {"mlflow:ExperimentName": "true"}}"#,
            r#", "Condition": {"StringEqualsIfExists": {"aws:PrincipalTag/team": "a"}}"#,
        ];
        let mut next = crate::test_rng::xorshift(0x5851_f42d_4c95_7f2d);
        let mut contexts = [Context::default(), Context::default()];
        contexts[0].insert("aws:username", "alice");
        contexts[1].insert("mlflow:ExperimentName", "team-b/x");
        for round in 0..1_000 {
            let statements: Vec<String> = (0..1 + next(6))
                .map(|i| {
                    let effect = if next(4) == 0 { "Deny" } else { "Allow" };
                    let element = if next(6) == 0 { "NotResource" } else { "Resource" };
                    format!(
                        r#"{{"Sid": "S{i}", "Effect": "{effect}", "Action": "{}", "{element}": "{}"{}}}"#,
                        actions[next(actions.len())],
                        resources[next(resources.len())],
                        conditions[next(conditions.len())]
                    )
                })
                .collect();
            let policies = [policy("p", &statements.join(","))];
            for context in &contexts {
                let asked = request("mlflow:GetRun", context);
                let traces = explain(&policies, &asked);
                let applying =
                    |effect: &str| traces.iter().any(|t| t.applies() && t.effect == effect);
                let explained = if applying("Deny") {
                    "deny"
                } else if applying("Allow") {
                    "allow"
                } else {
                    "implicit"
                };
                let decided = match evaluate(&policies, &asked) {
                    Decision::ExplicitDeny(_) => "deny",
                    Decision::Allow(_) => "allow",
                    Decision::ImplicitDeny => "implicit",
                };
                assert_eq!(explained, decided, "round {round}: {statements:?}");
            }
        }
    }
}
