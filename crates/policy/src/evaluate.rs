//! The decision: explicit Deny beats Allow beats the implicit deny.

use crate::action::request_action_key;
use crate::arn::SplitArn;
use crate::condition::Condition;
use crate::context::Context;
use crate::document::{Effect, PolicyDocument, Statement};

/// A policy with the name that decisions report (for example `group/readers/inline`).
#[derive(Clone, Debug)]
pub struct NamedPolicy {
    pub name: String,
    pub document: PolicyDocument,
}

/// What is being asked.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `mlflow:GetRun`, `execute-api:Invoke`, ...; matched case-insensitively.
    pub action: &'a str,
    /// The resource ARN; matched case-sensitively.
    pub resource: &'a str,
    /// The caller's principal ARN, matched against `Principal`/`NotPrincipal` of resource
    /// policies; `None` for an anonymous caller. Identity policies ignore it.
    pub principal: Option<&'a str>,
    pub context: &'a Context,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Some statement allowed and none denied; the first allowing statement.
    Allow(Determining),
    /// A statement denied; the first denying statement.
    ExplicitDeny(Determining),
    /// No statement applied.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// The statement that decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Determining {
    /// [`NamedPolicy::name`].
    pub policy: String,
    /// The statement's Sid, or `#<0-based index>` when it has none.
    pub statement: String,
}

/// Evaluates `request` against every statement of every policy, as AWS does within one
/// account: any matching Deny → [`Decision::ExplicitDeny`] (the first in iteration order);
/// else any matching Allow → [`Decision::Allow`] (the first); else [`Decision::ImplicitDeny`].
///
/// Statements are found through a per-document index of exact action names and wildcard
/// action prefixes, so the cost grows with the statements that can match the action, not with
/// the policy size. Allocates the index key, one candidate buffer, the returned
/// [`Determining`], and variables substituted into case-insensitive string conditions.
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = &'p NamedPolicy>,
    request: &Request<'_>,
) -> Decision {
    let action = request_action_key(request.action);
    let resource = SplitArn::new(request.resource);
    let mut first_allow: Option<(&'p NamedPolicy, &'p Statement)> = None;
    let mut candidates = Vec::new();
    let mut key_values = KeyValues::new(request.context);
    for policy in policies {
        let compiled = &*policy.document.compiled;
        key_values.reset(compiled.referenced_keys.len());
        compiled
            .index
            .candidates(action.as_deref(), &mut candidates);
        for &(position, action_known) in &candidates {
            let statement = &compiled.statements[position];
            // Once something allows, only a Deny can change the answer.
            if statement.effect == Effect::Allow && first_allow.is_some() {
                continue;
            }
            let action_matches = action_known
                || statement
                    .actions
                    .applies(|p| p.matches(action.as_deref(), request.context));
            if !action_matches
                || !statement.applies_beyond_action(&resource, request, &mut key_values)
            {
                continue;
            }
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny(determining(policy, statement)),
                Effect::Allow => first_allow = Some((policy, statement)),
            }
        }
    }
    match first_allow {
        Some((policy, statement)) => Decision::Allow(determining(policy, statement)),
        None => Decision::ImplicitDeny,
    }
}

fn determining(policy: &NamedPolicy, statement: &Statement) -> Determining {
    Determining {
        policy: policy.name.clone(),
        statement: statement.label.to_string(),
    }
}

/// The context's values of one document's condition keys, each looked up at most once per
/// evaluation rather than once per statement.
struct KeyValues<'c> {
    context: &'c Context,
    /// By [`crate::condition::Condition::slot`]; `None`: not looked up yet.
    values: Vec<Option<Option<&'c [String]>>>,
}

impl<'c> KeyValues<'c> {
    fn new(context: &'c Context) -> KeyValues<'c> {
        KeyValues {
            context,
            values: Vec::new(),
        }
    }

    /// Starts on a document with `keys` referenced keys.
    fn reset(&mut self, keys: usize) {
        self.values.clear();
        self.values.resize(keys, None);
    }

    fn get(&mut self, condition: &Condition) -> Option<&'c [String]> {
        let context = self.context;
        *self.values[condition.slot()]
            .get_or_insert_with(|| context.get_normalized(condition.key()))
    }
}

impl Statement {
    /// Resource, principal, conditions: the action was checked (or looked up) before. All
    /// must hold and none has side effects, so the order is only about cost: conditions
    /// without policy variables only compare an already looked-up value and usually reject a
    /// statement sooner than its ARN patterns, so they go first.
    fn applies_beyond_action(
        &self,
        resource: &SplitArn<'_>,
        request: &Request<'_>,
        key_values: &mut KeyValues<'_>,
    ) -> bool {
        let context = request.context;
        let conditions = |key_values: &mut KeyValues<'_>| {
            self.conditions
                .iter()
                .all(|condition| condition.holds(key_values.get(condition), context))
        };
        let rest = || {
            self.resources.as_ref().is_none_or(|resources| {
                resources.applies(|pattern| pattern.matches_split(resource, context))
            }) && self
                .principal
                .as_ref()
                .is_none_or(|principal| principal.applies(request.principal))
        };
        if self.conditions_first {
            return conditions(key_values) && rest();
        }
        rest() && conditions(key_values)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const EXPERIMENT: &str = "arn:mlflow:us-east-1:111122223333:experiment/7";

    pub(crate) fn policy(name: &str, statements: &str) -> NamedPolicy {
        let json = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
        NamedPolicy {
            name: name.to_owned(),
            document: PolicyDocument::parse(&json).unwrap(),
        }
    }

    fn trust(name: &str, statements: &str) -> NamedPolicy {
        let json = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
        NamedPolicy {
            name: name.to_owned(),
            document: PolicyDocument::parse_resource_policy(&json).unwrap(),
        }
    }

    fn decide(
        policies: &[NamedPolicy],
        action: &str,
        resource: &str,
        context: &Context,
    ) -> Decision {
        evaluate(
            policies,
            &Request {
                action,
                resource,
                principal: None,
                context,
            },
        )
    }

    fn by(policy: &str, statement: &str) -> Determining {
        Determining {
            policy: policy.to_owned(),
            statement: statement.to_owned(),
        }
    }

    #[test]
    fn no_policies_is_implicit_deny() {
        assert_eq!(
            decide(&[], "mlflow:GetRun", EXPERIMENT, &Context::default()),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn allow_names_the_first_allowing_statement() {
        let policies = [
            policy(
                "a",
                r#"{"Effect": "Allow", "Action": "mlflow:Search*", "Resource": "*"}"#,
            ),
            policy(
                "b",
                r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*"},
                   {"Sid": "Second", "Effect": "Allow", "Action": "mlflow:GetRun", "Resource": "*"}"#,
            ),
        ];
        let decision = decide(&policies, "mlflow:GetRun", EXPERIMENT, &Context::default());
        assert_eq!(decision, Decision::Allow(by("b", "#0")));
        assert!(decision.is_allowed());
    }

    #[test]
    fn deny_anywhere_beats_allow_regardless_of_order() {
        let allow = policy(
            "allow",
            r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#,
        );
        let deny = policy(
            "deny",
            r#"{"Sid": "NoDeletes", "Effect": "Deny", "Action": "mlflow:Delete*", "Resource": "*"}"#,
        );
        for policies in [[allow.clone(), deny.clone()], [deny.clone(), allow.clone()]] {
            let decision = decide(
                &policies,
                "mlflow:DeleteRun",
                EXPERIMENT,
                &Context::default(),
            );
            assert_eq!(decision, Decision::ExplicitDeny(by("deny", "NoDeletes")));
            assert!(!decision.is_allowed());
            assert!(
                decide(&policies, "mlflow:GetRun", EXPERIMENT, &Context::default()).is_allowed()
            );
        }
    }

    #[test]
    fn first_deny_in_iteration_order_is_reported() {
        let policies = [
            policy(
                "p1",
                r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#,
            ),
            policy(
                "p2",
                r#"{"Sid": "A", "Effect": "Deny", "Action": "*", "Resource": "*"},
                   {"Sid": "B", "Effect": "Deny", "Action": "*", "Resource": "*"}"#,
            ),
            policy(
                "p3",
                r#"{"Sid": "C", "Effect": "Deny", "Action": "*", "Resource": "*"}"#,
            ),
        ];
        assert_eq!(
            decide(&policies, "mlflow:GetRun", EXPERIMENT, &Context::default()),
            Decision::ExplicitDeny(by("p2", "A"))
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let policies = [policy(
            "p",
            r#"{"Effect": "Allow", "NotAction": "mlflow:Delete*",
                "NotResource": "arn:mlflow:us-east-1:111122223333:experiment/0"}"#,
        )];
        let context = Context::default();
        assert!(decide(&policies, "mlflow:GetRun", EXPERIMENT, &context).is_allowed());
        assert!(!decide(&policies, "mlflow:DeleteRun", EXPERIMENT, &context).is_allowed());
        assert!(
            !decide(
                &policies,
                "mlflow:GetRun",
                "arn:mlflow:us-east-1:111122223333:experiment/0",
                &context
            )
            .is_allowed()
        );
    }

    #[test]
    fn conditions_gate_the_statement() {
        let policies = [policy(
            "p",
            r#"{"Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}}"#,
        )];
        let mut context = Context::default();
        assert_eq!(
            decide(&policies, "mlflow:GetRun", EXPERIMENT, &context),
            Decision::ImplicitDeny
        );
        context.insert("aws:SecureTransport", "true");
        assert!(decide(&policies, "mlflow:GetRun", EXPERIMENT, &context).is_allowed());
    }

    #[test]
    fn resource_variable_scopes_to_the_caller() {
        let policies = [policy(
            "p",
            r#"{"Effect": "Allow", "Action": "mlflow:*",
                "Resource": "arn:mlflow:*:111122223333:registered-model/${aws:username}-*"}"#,
        )];
        let mut context = Context::default();
        let model = "arn:mlflow:us-east-1:111122223333:registered-model/alice-churn";
        assert!(!decide(&policies, "mlflow:GetRegisteredModel", model, &context).is_allowed());
        context.insert("aws:username", "alice");
        assert!(decide(&policies, "mlflow:GetRegisteredModel", model, &context).is_allowed());
        context.set("aws:username", vec!["bob".to_owned()]);
        assert!(!decide(&policies, "mlflow:GetRegisteredModel", model, &context).is_allowed());
    }

    #[test]
    fn resource_policy_principal_must_match() {
        let policies = [trust(
            "trust",
            r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/sagemaker"},
                "Action": "sts:AssumeRole"}"#,
        )];
        let context = Context::default();
        let role = "arn:aws:iam::111122223333:role/ml-admin";
        let ask = |principal| {
            evaluate(
                &policies,
                &Request {
                    action: "sts:AssumeRole",
                    resource: role,
                    principal,
                    context: &context,
                },
            )
        };
        assert_eq!(
            ask(Some("arn:aws:sts::111122223333:assumed-role/sagemaker/job")),
            Decision::Allow(by("trust", "#0"))
        );
        assert_eq!(
            ask(Some("arn:aws:iam::111122223333:user/alice")),
            Decision::ImplicitDeny
        );
        assert_eq!(ask(None), Decision::ImplicitDeny);
    }

    #[test]
    fn not_principal_deny_exempts_only_fully_listed_principals() {
        let policies = [
            trust(
                "allow",
                r#"{"Effect": "Allow", "Principal": "*", "Action": "*"}"#,
            ),
            trust(
                "deny",
                r#"{"Sid": "OnlyAdmin", "Effect": "Deny", "Action": "*",
                    "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:user/admin", "111122223333"]}}"#,
            ),
        ];
        let context = Context::default();
        let ask = |principal| {
            evaluate(
                &policies,
                &Request {
                    action: "mlflow:GetRun",
                    resource: EXPERIMENT,
                    principal,
                    context: &context,
                },
            )
        };
        assert!(ask(Some("arn:aws:iam::111122223333:user/admin")).is_allowed());
        assert_eq!(
            ask(Some("arn:aws:iam::111122223333:user/eve")),
            Decision::ExplicitDeny(by("deny", "OnlyAdmin"))
        );
        assert_eq!(ask(None), Decision::ExplicitDeny(by("deny", "OnlyAdmin")));
    }

    #[test]
    fn identity_policies_ignore_the_request_principal() {
        let policies = [policy(
            "p",
            r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#,
        )];
        let context = Context::default();
        let request = Request {
            action: "mlflow:GetRun",
            resource: EXPERIMENT,
            principal: Some("x"),
            context: &context,
        };
        assert!(evaluate(&policies, &request).is_allowed());
    }

    /// The reference the index must agree with: every statement of every policy, in order.
    fn evaluate_linear(policies: &[NamedPolicy], request: &Request<'_>) -> Decision {
        let action = request_action_key(request.action);
        let resource = SplitArn::new(request.resource);
        let mut first_allow = None;
        let mut key_values = KeyValues::new(request.context);
        for policy in policies {
            key_values.reset(policy.document.compiled.referenced_keys.len());
            for statement in &policy.document.compiled.statements {
                let applies = statement
                    .actions
                    .applies(|p| p.matches(action.as_deref(), request.context))
                    && statement.applies_beyond_action(&resource, request, &mut key_values);
                match statement.effect {
                    Effect::Deny if applies => {
                        return Decision::ExplicitDeny(determining(policy, statement));
                    }
                    Effect::Allow if applies && first_allow.is_none() => {
                        first_allow = Some(determining(policy, statement));
                    }
                    _ => {}
                }
            }
        }
        first_allow.map_or(Decision::ImplicitDeny, Decision::Allow)
    }

    /// Differential: on generated policies with overlapping exact, prefix, inner-wildcard,
    /// `*` and `NotAction` patterns, the indexed evaluation decides exactly like a full scan,
    /// determining statement included. A candidate the index dropped would show up here.
    #[test]
    fn index_agrees_with_a_full_scan_on_random_policies() {
        let patterns = [
            "mlflow:GetRun",
            "mlflow:Get*",
            "mlflow:G*",
            "mlflow:GetRun*",
            "mlflow:*Run",
            "mlflow:Get?un",
            "mlflow:g*t*n",
            "SageMaker-MLflow:get*",
            "mlflow:*",
            "mlflow:Delete*",
            "mlflow:SearchRuns",
            "execute-api:*",
            "execute-api:Invoke",
            "*",
        ];
        let requests = [
            "mlflow:GetRun",
            "MLFLOW:GETRUN",
            "sagemaker-mlflow:GetRunX",
            "mlflow:GetExperiment",
            "mlflow:DeleteRun",
            "mlflow:SearchRuns",
            "mlflow:G",
            "mlflow:",
            "mlflow:gét",
            "execute-api:Invoke",
            "GetRun",
        ];
        let resources = [EXPERIMENT, "arn:mlflow:*:111122223333:experiment/*", "*"];
        let conditions = [
            "",
            r#", "Condition": {"StringEquals": {"aws:username": "alice"}}"#,
            r#", "Condition": {"StringEquals": {"aws:username": "bob"}}"#,
        ];
        let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut context = Context::default();
        context.insert("aws:username", "alice");
        for round in 0..2_000 {
            let policies: Vec<NamedPolicy> = (0..1 + next(3))
                .map(|n| {
                    let statements: Vec<String> = (0..1 + next(8))
                        .map(|i| {
                            let effect = if next(4) == 0 { "Deny" } else { "Allow" };
                            let element = if next(8) == 0 { "NotAction" } else { "Action" };
                            let actions: Vec<String> = (0..1 + next(3))
                                .map(|_| format!("\"{}\"", patterns[next(patterns.len())]))
                                .collect();
                            format!(
                                r#"{{"Sid": "S{i}", "Effect": "{effect}", "{element}": [{}],
                                    "Resource": "{}"{}}}"#,
                                actions.join(","),
                                resources[next(resources.len())],
                                conditions[next(conditions.len())]
                            )
                        })
                        .collect();
                    policy(&format!("p{n}"), &statements.join(","))
                })
                .collect();
            for action in requests {
                let request = Request {
                    action,
                    resource: EXPERIMENT,
                    principal: None,
                    context: &context,
                };
                assert_eq!(
                    evaluate(&policies, &request),
                    evaluate_linear(&policies, &request),
                    "round {round}, {action}: {:?}",
                    policies
                        .iter()
                        .map(|p| p.document.to_json())
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    /// Property: over pseudo-random statement sets, the decision equals a direct reading of
    /// the rules (any applicable Deny → deny; else any applicable Allow → allow).
    #[test]
    fn decision_matches_the_rules_on_random_sets() {
        let actions = [
            "mlflow:GetRun",
            "mlflow:Get*",
            "mlflow:DeleteRun",
            "*",
            "execute-api:Invoke",
        ];
        let resources = [
            EXPERIMENT,
            "arn:mlflow:*:111122223333:experiment/*",
            "*",
            "arn:mlflow:us-east-1:1:model/*",
        ];
        let mut next = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1d);
        let context = Context::default();
        for _ in 0..500 {
            let mut statements = Vec::new();
            let mut expected_deny = false;
            let mut expected_allow = false;
            for _ in 0..1 + next(5) {
                let deny = next(3) == 0;
                let action = actions[next(actions.len())];
                let resource = resources[next(resources.len())];
                let applies = matches!(action, "mlflow:GetRun" | "mlflow:Get*" | "*")
                    && resource != "arn:mlflow:us-east-1:1:model/*";
                expected_deny |= deny && applies;
                expected_allow |= !deny && applies;
                let effect = if deny { "Deny" } else { "Allow" };
                statements.push(format!(
                    r#"{{"Effect": "{effect}", "Action": "{action}", "Resource": "{resource}"}}"#
                ));
            }
            let policies = [policy("p", &statements.join(","))];
            let decision = decide(&policies, "mlflow:GetRun", EXPERIMENT, &context);
            let kind = match decision {
                Decision::ExplicitDeny(_) => "deny",
                Decision::Allow(_) => "allow",
                Decision::ImplicitDeny => "implicit",
            };
            let expected = if expected_deny {
                "deny"
            } else if expected_allow {
                "allow"
            } else {
                "implicit"
            };
            assert_eq!(kind, expected, "{statements:?}");
        }
    }
}
