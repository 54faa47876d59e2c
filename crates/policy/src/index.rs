//! Which statements can apply to an action, found without scanning them all.
//!
//! Most statements name exact actions (`mlflow:GetRun`); those are filed under the action.
//! Statements with a wildcard action or `NotAction` must always be looked at. Evaluation
//! walks the union of both lists in statement order, so "first matching statement" is the
//! same as in a full scan.

use std::collections::HashMap;

use crate::document::Statement;

#[derive(Clone, Debug, Default)]
pub(crate) struct ActionIndex {
    /// Lowercase canonical `service:name` → ascending statement indices.
    by_action: HashMap<Box<str>, Vec<u32>>,
    /// Ascending indices of statements that any action may match.
    always: Vec<u32>,
}

impl ActionIndex {
    pub(crate) fn new(statements: &[Statement]) -> ActionIndex {
        let mut index = ActionIndex::default();
        for (position, statement) in statements.iter().enumerate() {
            let position = u32::try_from(position)
                .expect("a policy's size limit keeps statement counts small");
            let exact: Option<Vec<String>> = if statement.actions.negated {
                None
            } else {
                statement
                    .actions
                    .patterns()
                    .map(|pattern| pattern.exact_key().map(str::to_owned))
                    .collect()
            };
            match exact {
                None => index.always.push(position),
                Some(keys) => {
                    for key in keys {
                        let list = index.by_action.entry(key.into_boxed_str()).or_default();
                        // The same action twice (or under both prefixes) is filed once.
                        if list.last() != Some(&position) {
                            list.push(position);
                        }
                    }
                }
            }
        }
        index
    }

    /// Statements whose action may match, ascending, each with whether its action is already
    /// known to match. `action_key` is the request's canonical action, computed once.
    pub(crate) fn candidates(&self, action_key: Option<&str>) -> Candidates<'_> {
        let exact = action_key
            .and_then(|key| self.by_action.get(key))
            .map_or(&[][..], Vec::as_slice);
        Candidates {
            exact,
            always: &self.always,
        }
    }
}

/// The merge of two ascending, disjoint index lists.
pub(crate) struct Candidates<'a> {
    exact: &'a [u32],
    always: &'a [u32],
}

impl Iterator for Candidates<'_> {
    /// (statement index, whether it came from the exact-action list).
    type Item = (usize, bool);

    fn next(&mut self) -> Option<(usize, bool)> {
        let take_exact = match (self.exact.first(), self.always.first()) {
            (Some(exact), Some(always)) => exact < always,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_exact {
            &mut self.exact
        } else {
            &mut self.always
        };
        let (&first, rest) = list.split_first()?;
        *list = rest;
        Some((first as usize, take_exact))
    }
}

#[cfg(test)]
mod tests {
    use crate::PolicyDocument;

    fn candidates(statements: &str, action: &str) -> Vec<usize> {
        let json = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
        let document = PolicyDocument::parse(&json).unwrap();
        let key = crate::action::request_action_key(action);
        document
            .compiled
            .index
            .candidates(key.as_deref())
            .map(|(position, _)| position)
            .collect()
    }

    #[test]
    fn exact_actions_are_looked_up_and_merged_in_order_with_the_rest() {
        let statements = r#"
            {"Effect": "Allow", "Action": "mlflow:GetRun", "Resource": "*"},
            {"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*"},
            {"Effect": "Allow", "Action": ["mlflow:SearchRuns", "SageMaker-MLflow:getrun"], "Resource": "*"},
            {"Effect": "Deny", "NotAction": "mlflow:DeleteRun", "Resource": "*"},
            {"Effect": "Allow", "Action": ["mlflow:GetRun", "sagemaker-mlflow:GetRun"], "Resource": "*"}"#;
        assert_eq!(candidates(statements, "mlflow:GetRun"), [0, 1, 2, 3, 4]);
        assert_eq!(
            candidates(statements, "SAGEMAKER-MLFLOW:GETRUN"),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(candidates(statements, "mlflow:SearchRuns"), [1, 2, 3]);
        assert_eq!(candidates(statements, "mlflow:DeleteRun"), [1, 3]);
        assert_eq!(candidates(statements, "GetRun"), [1, 3]);
    }

    #[test]
    fn exact_candidates_are_flagged() {
        let statements = r#"
            {"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*"},
            {"Effect": "Allow", "Action": "mlflow:GetRun", "Resource": "*"}"#;
        let json = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
        let document = PolicyDocument::parse(&json).unwrap();
        let flagged: Vec<_> = document
            .compiled
            .index
            .candidates(Some("mlflow:getrun"))
            .collect();
        assert_eq!(flagged, [(0, false), (1, true)]);
    }

    #[test]
    fn star_is_always_a_candidate() {
        assert_eq!(
            candidates(
                r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#,
                "x:y"
            ),
            [0]
        );
    }
}
