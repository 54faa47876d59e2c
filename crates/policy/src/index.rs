//! Which statements can apply to an action, found without scanning them all.
//!
//! Statements naming exact actions (`mlflow:GetRun`) are filed under the action; wildcard
//! actions (`mlflow:Get*`, `mlflow:*Run`) under their literal prefix (the text before the first
//! wildcard, at least `service:`), found by looking up each prefix length the policy uses.
//! Only `*` and `NotAction` statements must be looked at for every action. Evaluation walks
//! the candidates in statement order, so "first matching statement" is the same as in a full
//! scan.

use std::collections::HashMap;

use crate::document::Statement;

/// Both tables are sorted vectors searched by binary search: a few short comparisons beat
/// hashing the action once per policy.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActionIndex {
    /// Sorted by lowercase canonical `service:name`; each with its ascending statements.
    by_action: Vec<(Box<str>, Vec<u32>)>,
    /// Sorted by prefix; each with its ascending statements.
    by_prefix: Vec<PrefixGroup>,
    /// The distinct lengths of the prefixes in `by_prefix`, ascending.
    prefix_lengths: Vec<usize>,
    /// Ascending indices of statements that any action may match.
    always: Vec<u32>,
}

/// The statements with a wildcard action starting with `prefix`.
#[derive(Clone, Debug)]
struct PrefixGroup {
    prefix: Box<str>,
    /// (statement index, whether starting with the prefix is enough for a match).
    statements: Vec<(u32, bool)>,
}

impl ActionIndex {
    pub(crate) fn new(statements: &[Statement]) -> ActionIndex {
        let mut index = ActionIndex::default();
        let mut by_action: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut by_prefix: HashMap<&str, Vec<(u32, bool)>> = HashMap::new();
        for (position, statement) in statements.iter().enumerate() {
            let position = u32::try_from(position)
                .expect("a policy's size limit keeps statement counts small");
            let any_action = statement.actions.negated
                || statement.actions.patterns().any(|pattern| {
                    pattern.exact_key().is_none() && pattern.wildcard_prefix().is_none()
                });
            if any_action {
                index.always.push(position);
                continue;
            }
            for pattern in statement.actions.patterns() {
                if let Some(key) = pattern.exact_key() {
                    let list = by_action.entry(key).or_default();
                    // The same action twice (or under both prefixes) is filed once.
                    if list.last() != Some(&position) {
                        list.push(position);
                    }
                } else if let Some((prefix, decides)) = pattern.wildcard_prefix() {
                    let list = by_prefix.entry(prefix).or_default();
                    match list.last_mut() {
                        Some((last, known)) if *last == position => *known |= decides,
                        _ => list.push((position, decides)),
                    }
                }
            }
        }
        index.by_action = by_action
            .into_iter()
            .map(|(key, statements)| (key.into(), statements))
            .collect();
        index.by_action.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        index.by_prefix = by_prefix
            .into_iter()
            .map(|(prefix, statements)| PrefixGroup {
                prefix: prefix.into(),
                statements,
            })
            .collect();
        index
            .by_prefix
            .sort_unstable_by(|a, b| a.prefix.cmp(&b.prefix));
        index.prefix_lengths = index.by_prefix.iter().map(|g| g.prefix.len()).collect();
        index.prefix_lengths.sort_unstable();
        index.prefix_lengths.dedup();
        index
    }

    /// Fills `out` with the statements whose action may match, ascending, each with whether
    /// its action is already known to match. `action_key` is the request's canonical action,
    /// computed once; `out` is a buffer reused across policies.
    pub(crate) fn candidates(&self, action_key: Option<&str>, out: &mut Vec<(usize, bool)>) {
        out.clear();
        let widen = |&position: &u32| position as usize;
        out.extend(self.always.iter().map(|p| (widen(p), false)));
        let Some(key) = action_key else { return };
        let mut lists = usize::from(!self.always.is_empty());
        if let Ok(found) = self
            .by_action
            .binary_search_by(|(action, _)| (**action).cmp(key))
        {
            out.extend(self.by_action[found].1.iter().map(|p| (widen(p), true)));
            lists += 1;
        }
        for &length in &self.prefix_lengths {
            let Some(start) = key.get(..length) else {
                continue;
            };
            if let Ok(found) = self
                .by_prefix
                .binary_search_by(|group| (*group.prefix).cmp(start))
            {
                let group = &self.by_prefix[found].statements;
                out.extend(group.iter().map(|(p, decides)| (widen(p), *decides)));
                lists += 1;
            }
        }
        // Several lists: back to statement order, each statement once (known if any list
        // knows it matches). One list is ascending and without repeats already.
        if lists > 1 {
            out.sort_unstable_by_key(|&(position, known)| (position, !known));
            out.dedup_by_key(|(position, _)| *position);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::PolicyDocument;

    fn candidates(statements: &str, action: &str) -> Vec<usize> {
        let json = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
        let document = PolicyDocument::parse(&json).unwrap();
        let key = crate::action::request_action_key(action);
        let mut out = Vec::new();
        document.compiled.index.candidates(key.as_deref(), &mut out);
        out.into_iter().map(|(position, _)| position).collect()
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
        assert_eq!(candidates(statements, "mlflow:SearchRuns"), [2, 3]);
        assert_eq!(candidates(statements, "mlflow:DeleteRun"), [3]);
        assert_eq!(candidates(statements, "GetRun"), [3]);
    }

    #[test]
    fn exact_candidates_are_flagged() {
        let statements = r#"
            {"Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*"},
            {"Effect": "Allow", "Action": "mlflow:GetRun", "Resource": "*"}"#;
        let json = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
        let document = PolicyDocument::parse(&json).unwrap();
        let mut flagged = Vec::new();
        document
            .compiled
            .index
            .candidates(Some("mlflow:getrun"), &mut flagged);
        assert_eq!(flagged, [(0, true), (1, true)]);
        document
            .compiled
            .index
            .candidates(Some("mlflow:getexperiment"), &mut flagged);
        assert_eq!(flagged, [(0, true)]);
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
