//! What a principal's policies can allow, as a bound on one condition key: a literal prefix
//! that every value of the key starts with whenever some Allow statement allows an action on a
//! resource of a given kind. A filtered search pushes such a bound into the upstream query
//! (`name LIKE 'team-a/%'`) so MLflow sends fewer items that would be dropped; the decision
//! item by item stays the guarantee, so the bound only has to contain every allowed value,
//! never to be exact.
//!
//! Sound by construction: Deny statements only remove items; a statement's conditions on other
//! keys, its principal and an `IfExists` are ignored (each can only narrow what it allows);
//! `NotResource` and variables the context does not hold count as matching anything.

use crate::action::request_action_key;
use crate::context::{Context, normalize_key};
use crate::document::{Effect, Statement};
use crate::evaluate::NamedPolicy;
use crate::glob::{Rest, Step, admits};

/// One thing asked of each item: `action` on `resource`.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    pub action: &'a str,
    /// The resource's ARN; with `id_follows`, its start, which the item's id (one path
    /// segment, unknown here) completes.
    pub resource: &'a str,
    pub id_follows: bool,
}

/// What the allowed values of a key have in common.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyBound {
    /// No Allow statement can apply: nothing is allowed.
    Nothing,
    /// Every allowed value starts with `prefix` (never empty), compared ignoring case when
    /// `ignore_case` is set.
    Prefix { prefix: String, ignore_case: bool },
    /// Some statement allows values that share no prefix.
    Unbounded,
}

impl KeyBound {
    fn prefix(prefix: String, ignore_case: bool) -> KeyBound {
        if prefix.is_empty() {
            KeyBound::Unbounded
        } else {
            KeyBound::Prefix {
                prefix,
                ignore_case,
            }
        }
    }

    /// A bound holding the values of both.
    fn union(self, other: KeyBound) -> KeyBound {
        match (self, other) {
            (KeyBound::Nothing, bound) | (bound, KeyBound::Nothing) => bound,
            (KeyBound::Unbounded, _) | (_, KeyBound::Unbounded) => KeyBound::Unbounded,
            (
                KeyBound::Prefix {
                    prefix: a,
                    ignore_case: ia,
                },
                KeyBound::Prefix {
                    prefix: b,
                    ignore_case: ib,
                },
            ) => {
                let ignore_case = ia || ib;
                let same = |x: char, y: char| match ignore_case {
                    true => x.to_lowercase().eq(y.to_lowercase()),
                    false => x == y,
                };
                let common: String = a
                    .chars()
                    .zip(b.chars())
                    .take_while(|&(x, y)| same(x, y))
                    .map(|(x, _)| x)
                    .collect();
                KeyBound::prefix(common, ignore_case)
            }
        }
    }
}

/// The bound on `key` of what `policies` allow for any of `asked`, with `context` holding the
/// request's keys (those of the item are not known). The caller must know that every item
/// carries `key`: an `IfExists` condition is read as if the key were present.
pub fn key_bound<'p>(
    policies: impl IntoIterator<Item = &'p NamedPolicy>,
    asked: &[Asked<'_>],
    key: &str,
    context: &Context,
) -> KeyBound {
    let key = normalize_key(key);
    let actions: Vec<Option<String>> = asked.iter().map(|a| request_action_key(a.action)).collect();
    let mut bound = KeyBound::Nothing;
    for policy in policies {
        for statement in policy.document.compiled.statements.iter() {
            let applies = statement.effect == Effect::Allow
                && asked
                    .iter()
                    .zip(&actions)
                    .any(|(asked, action)| may_apply(statement, action.as_deref(), asked, context));
            if !applies {
                continue;
            }
            bound = bound.union(statement_bound(statement, &key, context));
            if bound == KeyBound::Unbounded {
                return bound;
            }
        }
    }
    bound
}

/// Whether the statement's action and resource can match the asked action on the asked
/// resource (whatever the item's id).
fn may_apply(
    statement: &Statement,
    action: Option<&str>,
    asked: &Asked<'_>,
    context: &Context,
) -> bool {
    let rest = match asked.id_follows {
        true => Rest::Segment,
        false => Rest::Nothing,
    };
    statement
        .actions
        .applies(|pattern| pattern.matches(action, context))
        && statement.resources.as_ref().is_none_or(|resources| {
            resources.negated
                || resources
                    .patterns()
                    .any(|pattern| admits(&pattern.steps(context), asked.resource, rest))
        })
}

/// The bound one applicable Allow statement puts on `key`: that of its condition on the key
/// with the longest prefix (all its conditions must hold), or none.
fn statement_bound(statement: &Statement, key: &str, context: &Context) -> KeyBound {
    let mut best = KeyBound::Unbounded;
    for condition in statement.conditions.iter().filter(|c| c.key() == key) {
        let Some((globs, ignore_case)) = condition.required_strings() else {
            continue;
        };
        let mut bound = KeyBound::Nothing;
        let mut steps = Vec::new();
        for glob in globs {
            steps.clear();
            glob.steps(context, Step::AnyString, &mut steps);
            let prefix: String = steps
                .iter()
                .map_while(|step| match step {
                    Step::Char(c) => Some(*c),
                    Step::AnyChar | Step::AnyString | Step::AnySegment => None,
                })
                .collect();
            bound = bound.union(KeyBound::prefix(prefix, ignore_case));
        }
        if bound == KeyBound::Nothing {
            return bound;
        }
        let longer = match (&best, &bound) {
            (KeyBound::Prefix { prefix: kept, .. }, KeyBound::Prefix { prefix: new, .. }) => {
                new.len() > kept.len()
            }
            (_, KeyBound::Prefix { .. }) => true,
            _ => false,
        };
        if longer {
            best = bound;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolicyDocument;
    use crate::evaluate::{Request, evaluate};

    const EXPERIMENTS: &str = "arn:mlflow:us-east-1:111122223333:experiment/";
    const READ_PATH: &str =
        "arn:aws:execute-api:us-east-1:111122223333:mlgate/prod/GET/api/2.0/mlflow/experiments/get";
    const NAME: &str = "mlflow:ExperimentName";

    fn policies(statements: &[&str]) -> Vec<NamedPolicy> {
        statements
            .iter()
            .enumerate()
            .map(|(i, statement)| NamedPolicy {
                name: format!("p{i}"),
                document: PolicyDocument::parse(&format!(
                    r#"{{"Version": "2012-10-17", "Statement": [{statement}]}}"#
                ))
                .unwrap(),
            })
            .collect()
    }

    fn asked() -> [Asked<'static>; 2] {
        [
            Asked {
                action: "mlflow:GetExperiment",
                resource: EXPERIMENTS,
                id_follows: true,
            },
            Asked {
                action: "execute-api:Invoke",
                resource: READ_PATH,
                id_follows: false,
            },
        ]
    }

    fn alice() -> Context {
        let mut context = Context::default();
        context.insert("aws:username", "alice");
        context
    }

    fn bound(statements: &[&str]) -> KeyBound {
        key_bound(&policies(statements), &asked(), NAME, &alice())
    }

    fn prefix(text: &str) -> KeyBound {
        KeyBound::Prefix {
            prefix: text.to_owned(),
            ignore_case: false,
        }
    }

    #[test]
    fn a_name_condition_bounds_by_its_literal_start() {
        let grant = r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "arn:mlflow:*:*:experiment/*",
            "Condition": {"StringLike": {"mlflow:ExperimentName": "team-a/*"}}}"#;
        assert_eq!(bound(&[grant]), prefix("team-a/"));
        let own = r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
            "Condition": {"StringLike": {"mlflow:ExperimentName": "${aws:username}/*"}}}"#;
        assert_eq!(bound(&[own]), prefix("alice/"));
        let exact = r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
            "Condition": {"StringEquals": {"mlflow:ExperimentName": ["shared/a*", "shared/b"]}}}"#;
        assert_eq!(bound(&[exact]), prefix("shared/"));
        let ignoring = r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
            "Condition": {"StringEqualsIgnoreCase": {"mlflow:ExperimentName": "Ops/X"}}}"#;
        assert_eq!(
            bound(&[ignoring]),
            KeyBound::Prefix {
                prefix: "Ops/X".into(),
                ignore_case: true
            }
        );
    }

    #[test]
    fn several_statements_share_their_common_start() {
        let team = |t: &str| {
            format!(
                r#"{{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
                "Condition": {{"StringLike": {{"mlflow:ExperimentName": "{t}/*"}}}}}}"#
            )
        };
        assert_eq!(bound(&[&team("team-a"), &team("team-b")]), prefix("team-"));
        assert_eq!(bound(&[&team("a"), &team("b")]), KeyBound::Unbounded);
    }

    #[test]
    fn anything_that_could_allow_unbounded_names_unbounds() {
        for statement in [
            // no condition on the name
            r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*"}"#,
            // a condition on another key
            r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*",
                "Condition": {"StringEquals": {"mlflow:ResourceCreator": "${aws:username}"}}}"#,
            // a negated or set-wide operator
            r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*",
                "Condition": {"StringNotLike": {"mlflow:ExperimentName": "secret/*"}}}"#,
            r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*",
                "Condition": {"ForAllValues:StringLike": {"mlflow:ExperimentName": "a/*"}}}"#,
            // a variable the request does not fill: the item's own key
            r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*",
                "Condition": {"StringLike": {"mlflow:ExperimentName": "${mlflow:ExperimentTag/team}/*"}}}"#,
            // the path vocabulary
            r#"{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/GET/*"}"#,
            // NotResource, NotAction
            r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "NotResource": "arn:mlflow:*:*:registered-model/*"}"#,
            r#"{"Effect": "Allow", "NotAction": "mlflow:Delete*", "Resource": "*"}"#,
        ] {
            assert_eq!(bound(&[statement]), KeyBound::Unbounded, "{statement}");
        }
    }

    #[test]
    fn statements_that_cannot_apply_do_not_count() {
        let grant = r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
            "Condition": {"StringLike": {"mlflow:ExperimentName": "team-a/*"}}}"#;
        for other in [
            // another resource kind, another action, a Deny, another user's resources
            r#"{"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "arn:mlflow:*:*:registered-model/*"}"#,
            r#"{"Effect": "Allow", "Action": "mlflow:CreateRun", "Resource": "*"}"#,
            r#"{"Effect": "Deny", "Action": "*", "Resource": "*"}"#,
            r#"{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/POST/*"}"#,
        ] {
            assert_eq!(bound(&[grant, other]), prefix("team-a/"), "{other}");
        }
        assert_eq!(bound(&[]), KeyBound::Nothing);
        let nothing = r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
            "Condition": {"StringLike": {"mlflow:ExperimentName": "${aws:PrincipalTag/missing}"}}}"#;
        assert_eq!(bound(&[grant, nothing]), KeyBound::Unbounded);
    }

    #[test]
    fn of_several_conditions_on_the_name_the_longest_start_bounds() {
        let both = r#"{"Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*",
            "Condition": {"StringLike": {"mlflow:ExperimentName": "team-*"},
                          "StringEquals": {"mlflow:ExperimentName": "team-a/main"}}}"#;
        assert_eq!(bound(&[both]), prefix("team-a/main"));
    }

    /// Property: whatever the policies, every name they allow satisfies the bound.
    #[test]
    fn every_allowed_name_lies_within_the_bound() {
        let mut next = crate::test_rng::xorshift(0x5851_f42d_4c95_7f2d);
        let pick =
            |next: &mut dyn FnMut(usize) -> usize, items: &[&'static str]| items[next(items.len())];
        let names = [
            "team-a/x", "team-a/y", "team-b/x", "Team-A/x", "alice/1", "bob/1", "shared/a", "a",
            "", "team-", "team-a", "*", "x*y",
        ];
        for _ in 0..2_000 {
            let count = 1 + next(3);
            let mut statements = Vec::new();
            for _ in 0..count {
                let effect = pick(&mut next, &["Allow", "Allow", "Allow", "Deny"]);
                let action = pick(
                    &mut next,
                    &[
                        "mlflow:GetExperiment",
                        "mlflow:Get*",
                        "mlflow:*",
                        "mlflow:CreateRun",
                        "execute-api:Invoke",
                    ],
                );
                let resource = pick(
                    &mut next,
                    &[
                        "*",
                        "arn:mlflow:*:*:experiment/*",
                        "arn:mlflow:*:*:registered-model/*",
                        "arn:aws:execute-api:*:*:*/*/GET/*",
                        "arn:mlflow:us-east-1:111122223333:experiment/7",
                    ],
                );
                let operator = pick(
                    &mut next,
                    &[
                        "StringLike",
                        "StringEquals",
                        "StringEqualsIgnoreCase",
                        "StringNotLike",
                        "StringLikeIfExists",
                        "ForAnyValue:StringLike",
                        "ForAllValues:StringLike",
                        "",
                    ],
                );
                let value = pick(
                    &mut next,
                    &[
                        "team-a/*",
                        "team-*",
                        "${aws:username}/*",
                        "Team-A/x",
                        "*",
                        "a",
                        "x*y",
                        "t?am-a/*",
                    ],
                );
                let condition = match operator {
                    "" => String::new(),
                    op => format!(
                        r#", "Condition": {{"{op}": {{"mlflow:ExperimentName": "{value}"}}}}"#
                    ),
                };
                let action_element = pick(&mut next, &["Action", "Action", "NotAction"]);
                let resource_element = pick(&mut next, &["Resource", "Resource", "NotResource"]);
                statements.push(format!(
                    r#"{{"Effect": "{effect}", "{action_element}": "{action}", "{resource_element}": "{resource}"{condition}}}"#
                ));
            }
            let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
            let policies = policies(&statements);
            let bound = key_bound(&policies, &asked(), NAME, &alice());
            for name in names {
                let mut context = alice();
                context.insert(NAME, name);
                let allowed = [
                    ("mlflow:GetExperiment", format!("{EXPERIMENTS}7")),
                    ("execute-api:Invoke", READ_PATH.to_owned()),
                ]
                .iter()
                .any(|(action, resource)| {
                    evaluate(
                        &policies,
                        &Request {
                            action,
                            resource,
                            principal: None,
                            context: &context,
                        },
                    )
                    .is_allowed()
                });
                if !allowed {
                    continue;
                }
                let within = match &bound {
                    KeyBound::Nothing => false,
                    KeyBound::Unbounded => true,
                    KeyBound::Prefix {
                        prefix,
                        ignore_case: false,
                    } => name.starts_with(prefix.as_str()),
                    KeyBound::Prefix {
                        prefix,
                        ignore_case: true,
                    } => name.to_lowercase().starts_with(&prefix.to_lowercase()),
                };
                assert!(
                    within,
                    "{name:?} is allowed by {statements:#?} but outside {bound:?}"
                );
            }
        }
    }
}
