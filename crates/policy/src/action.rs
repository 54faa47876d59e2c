//! Action patterns (`mlflow:Get*`, `execute-api:Invoke`, `*`): case-insensitive, with the
//! `sagemaker-mlflow:` prefix read as `mlflow:` on both sides. Both sides are brought to one
//! lowercase canonical `service:name` form, so matching is a plain case-sensitive glob.

use crate::context::Context;
use crate::glob::Glob;
use crate::variables::{Syntax, parse_pieces};

/// SageMaker's managed MLflow names the same operations under this service prefix.
const MLFLOW_ALIAS: &str = "sagemaker-mlflow";
const MLFLOW: &str = "mlflow";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ActionPattern {
    Any,
    /// A glob over the canonical `service:name`; wildcards only occur in the name.
    Named(Glob),
}

impl ActionPattern {
    pub(crate) fn parse(text: &str) -> Result<ActionPattern, String> {
        if text == "*" {
            return Ok(ActionPattern::Any);
        }
        let invalid = |why: &str| format!("invalid action {text:?}: {why}");
        let (service, name) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected \"*\" or \"service:Action\""))?;
        if service.is_empty()
            || !service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "the service prefix must be letters, digits and '-', without wildcards",
            ));
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
        {
            return Err(invalid(
                "the action name must be letters, digits and the wildcards * and ?",
            ));
        }
        let canonical = canonical_action(service, name);
        let pieces = parse_pieces(
            &canonical,
            Syntax {
                wildcards: true,
                variables: false,
            },
        )?;
        Ok(ActionPattern::Named(Glob::from_pieces(pieces)))
    }

    /// The canonical action, when the pattern names exactly one.
    pub(crate) fn exact_key(&self) -> Option<&str> {
        match self {
            ActionPattern::Named(glob) => glob.as_literal(),
            ActionPattern::Any => None,
        }
    }

    /// For a wildcard pattern: the literal start of every action it matches (at least
    /// `service:`) and whether that start alone decides a match (`mlflow:get*`).
    pub(crate) fn wildcard_prefix(&self) -> Option<(&str, bool)> {
        match self {
            ActionPattern::Named(glob) if glob.as_literal().is_none() => {
                Some(glob.literal_prefix())
            }
            ActionPattern::Named(_) | ActionPattern::Any => None,
        }
    }

    /// `action` is the request's [`request_action_key`]. `context` is unused (action globs
    /// have no variables) but every glob takes one.
    pub(crate) fn matches(&self, action: Option<&str>, context: &Context) -> bool {
        match self {
            ActionPattern::Any => true,
            ActionPattern::Named(glob) => {
                action.is_some_and(|action| glob.matches(action, context))
            }
        }
    }
}

/// The request's action in canonical form; `None` when it is not `service:name`, which only
/// `"*"` matches.
pub(crate) fn request_action_key(action: &str) -> Option<String> {
    action
        .split_once(':')
        .map(|(service, name)| canonical_action(service, name))
}

fn canonical_action(service: &str, name: &str) -> String {
    let service = if service.eq_ignore_ascii_case(MLFLOW_ALIAS) {
        MLFLOW
    } else {
        service
    };
    let mut canonical = format!("{service}:{name}");
    canonical.make_ascii_lowercase();
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, action: &str) -> bool {
        let key = request_action_key(action);
        ActionPattern::parse(pattern)
            .unwrap()
            .matches(key.as_deref(), &Context::default())
    }

    #[test]
    fn case_insensitive_service_and_name() {
        assert!(matches("mlflow:GetRun", "mlflow:getrun"));
        assert!(matches("MLflow:getRUN", "mlflow:GetRun"));
        assert!(!matches("mlflow:GetRun", "mlflow:GetRuns"));
        assert!(!matches("mlflow:GetRun", "execute-api:GetRun"));
    }

    #[test]
    fn wildcards_in_the_name() {
        assert!(matches("mlflow:Get*", "mlflow:GetExperiment"));
        assert!(matches("mlflow:*", "mlflow:DeleteRun"));
        assert!(matches("mlflow:Get?un", "mlflow:GetRun"));
        assert!(!matches("mlflow:Get*", "mlflow:SearchRuns"));
        assert!(matches("*", "anything at all"));
    }

    #[test]
    fn sagemaker_alias_on_both_sides() {
        assert!(matches("sagemaker-mlflow:GetRun", "mlflow:GetRun"));
        assert!(matches("mlflow:GetRun", "sagemaker-mlflow:GetRun"));
        assert!(matches(
            "SageMaker-MLflow:Search*",
            "SAGEMAKER-MLFLOW:SearchRuns"
        ));
        assert!(!matches("sagemaker:GetRun", "mlflow:GetRun"));
    }

    #[test]
    fn request_without_service_matches_only_star() {
        assert!(!matches("mlflow:*", "GetRun"));
        assert!(matches("*", "GetRun"));
    }

    #[test]
    fn exact_keys_agree_between_pattern_and_request() {
        let pattern = ActionPattern::parse("SageMaker-MLflow:GetRun").unwrap();
        assert_eq!(pattern.exact_key(), Some("mlflow:getrun"));
        assert_eq!(
            ActionPattern::parse("mlflow:Get*").unwrap().exact_key(),
            None
        );
        assert_eq!(ActionPattern::parse("*").unwrap().exact_key(), None);
        assert_eq!(
            request_action_key("sagemaker-mlflow:GETRUN").as_deref(),
            Some("mlflow:getrun")
        );
        assert_eq!(request_action_key("GetRun"), None);
    }

    #[test]
    fn wildcards_do_not_reach_into_the_service() {
        assert!(!matches("mlflow:*", "mlflowx:GetRun"));
        assert!(!matches("ml:*", "mlflow:GetRun"));
    }

    #[test]
    fn invalid_actions() {
        for (text, expected) in [
            ("mlflow", "expected"),
            (":GetRun", "service prefix"),
            ("*:GetRun", "service prefix"),
            ("ml flow:GetRun", "service prefix"),
            ("mlflow:", "action name"),
            ("mlflow:Get Run", "action name"),
            ("mlflow:Get:Run", "action name"),
            ("**", "expected"),
        ] {
            let error = ActionPattern::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
