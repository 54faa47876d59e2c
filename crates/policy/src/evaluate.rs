//! The decision: explicit Deny beats Allow beats the implicit deny.

use crate::action::request_action_key;
use crate::arn::SplitArn;
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
/// Statements are found through a per-document index of exact action names, so the cost
/// grows with the statements that can match the action, not with the policy size. Allocates
/// the index key, the returned [`Determining`], and variables substituted into
/// case-insensitive string conditions.
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = &'p NamedPolicy>,
    request: &Request<'_>,
) -> Decision {
    let action = request_action_key(request.action);
    let resource = SplitArn::new(request.resource);
    let mut first_allow: Option<(&'p NamedPolicy, &'p Statement)> = None;
    for policy in policies {
        let compiled = &*policy.document.compiled;
        for (position, action_known) in compiled.index.candidates(action.as_deref()) {
            let statement = &compiled.statements[position];
            // Once something allows, only a Deny can change the answer.
            if statement.effect == Effect::Allow && first_allow.is_some() {
                continue;
            }
            let action_matches = action_known
                || statement
                    .actions
                    .applies(|p| p.matches(action.as_deref(), request.context));
            if !action_matches || !statement.applies_beyond_action(&resource, request) {
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

impl Statement {
    /// Resource, principal, conditions: the action was checked (or looked up) before.
    fn applies_beyond_action(&self, resource: &SplitArn<'_>, request: &Request<'_>) -> bool {
        let context = request.context;
        self.resources.as_ref().is_none_or(|resources| {
            resources.applies(|pattern| pattern.matches_split(resource, context))
        }) && self
            .principal
            .as_ref()
            .is_none_or(|principal| principal.applies(request.principal))
            && self
                .conditions
                .iter()
                .all(|condition| condition.holds(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPERIMENT: &str = "arn:mlflow:us-east-1:111122223333:experiment/7";

    fn policy(name: &str, statements: &str) -> NamedPolicy {
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
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
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
