//! The policy grammar: JSON text → validated, precompiled [`PolicyDocument`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::action::ActionPattern;
use crate::arn::ArnPattern;
use crate::condition::{Condition, parse_conditions};
use crate::context::normalize_key;
use crate::error::PolicyError;
use crate::index::ActionIndex;
use crate::json::{Json, exact, first_duplicate};
use crate::principal::PrincipalSet;

/// The largest policy document accepted, in bytes of JSON text. AWS's own limits are far
/// smaller (6,144 characters for a managed policy); this one bounds parse and match cost.
pub const MAX_POLICY_BYTES: usize = 128 * 1024;

/// The only version in which `${...}` policy variables are substituted.
const VERSION_WITH_VARIABLES: &str = "2012-10-17";
const VERSION_LEGACY: &str = "2008-10-17";

/// A parsed and validated IAM policy. Cheap to clone: the compiled statements are shared.
#[derive(Clone, Debug)]
pub struct PolicyDocument {
    source: Arc<str>,
    pub(crate) compiled: Arc<Compiled>,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) statements: Box<[Statement]>,
    pub(crate) index: ActionIndex,
    /// Every context key a condition or a policy variable reads, normalized, sorted, once each.
    pub(crate) referenced_keys: Box<[Box<str>]>,
}

impl PolicyDocument {
    /// Parses an identity policy (attached to a user, group or role): `Principal` and
    /// `NotPrincipal` are rejected, `Resource` or `NotResource` is required.
    pub fn parse(json: &str) -> Result<PolicyDocument, PolicyError> {
        parse_document(json, Kind::Identity)
    }

    /// Parses a resource policy, such as a role's trust policy: every statement needs
    /// `Principal` or `NotPrincipal`; `Resource` may be left out, and then the statement
    /// applies to whatever resource the policy is attached to.
    pub fn parse_resource_policy(json: &str) -> Result<PolicyDocument, PolicyError> {
        parse_document(json, Kind::Resource)
    }

    /// The context keys the document reads (condition keys and policy variables, lowercased),
    /// so a caller can skip computing a key that no policy looks at.
    pub fn referenced_keys(&self) -> impl Iterator<Item = &str> {
        self.compiled.referenced_keys.iter().map(|key| &**key)
    }

    /// Whether a condition or a policy variable reads `key` (case-insensitive, as keys are).
    pub fn references_key(&self, key: &str) -> bool {
        let key = normalize_key(key);
        self.compiled
            .referenced_keys
            .binary_search_by(|probe| (**probe).cmp(&*key))
            .is_ok()
    }

    /// The document text exactly as it was parsed.
    pub fn to_json(&self) -> String {
        self.source.to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Identity,
    Resource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// `Action`/`Resource` (`negated: false`) or `NotAction`/`NotResource` (`negated: true`).
/// Never empty; the first pattern is stored inline because most elements have only one.
#[derive(Clone, Debug)]
pub(crate) struct Element<T> {
    pub(crate) negated: bool,
    first: T,
    rest: Box<[T]>,
}

impl<T> Element<T> {
    fn new(negated: bool, patterns: Vec<T>) -> Element<T> {
        let mut patterns = patterns.into_iter();
        let first = patterns.next().expect("the grammar rejects empty lists");
        Element {
            negated,
            first,
            rest: patterns.collect(),
        }
    }

    pub(crate) fn patterns(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// `Action`: some pattern matches; `NotAction`: none does.
    pub(crate) fn applies(&self, matches: impl Fn(&T) -> bool) -> bool {
        self.patterns().any(matches) != self.negated
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PrincipalElement {
    pub(crate) negated: bool,
    pub(crate) set: PrincipalSet,
}

impl PrincipalElement {
    pub(crate) fn applies(&self, principal: Option<&str>) -> bool {
        if self.negated {
            !self.set.names_every_identity(principal)
        } else {
            self.set.names_any_identity(principal)
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Statement {
    /// The Sid, or `#<index>` without one.
    pub(crate) label: Box<str>,
    pub(crate) effect: Effect,
    pub(crate) actions: Element<ActionPattern>,
    /// `None` only in a resource policy statement without `Resource`/`NotResource`.
    pub(crate) resources: Option<Element<ArnPattern>>,
    /// `None` in identity policies.
    pub(crate) principal: Option<PrincipalElement>,
    pub(crate) conditions: Vec<Condition>,
    /// Whether evaluation checks the conditions before the resource: they read no policy
    /// variable, so each is a comparison with a value looked up once per document.
    pub(crate) conditions_first: bool,
}

impl Statement {
    fn referenced_keys(&self) -> impl Iterator<Item = &str> {
        let resources = self.resources.iter().flat_map(Element::patterns);
        resources
            .flat_map(ArnPattern::variable_keys)
            .chain(self.conditions.iter().flat_map(Condition::referenced_keys))
    }
}

fn parse_document(text: &str, kind: Kind) -> Result<PolicyDocument, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::document(format!(
            "policy document is {} bytes; the limit is {MAX_POLICY_BYTES}",
            text.len()
        )));
    }
    let root: Json = serde_json::from_str(text)
        .map_err(|e| PolicyError::document(format!("policy is not valid JSON: {e}")))?;
    let Json::Object(members) = &root else {
        return Err(PolicyError::document(format!(
            "a policy must be a JSON object, found {}",
            root.type_name()
        )));
    };
    if let Some(name) = first_duplicate(members, exact) {
        return Err(PolicyError::document(format!(
            "duplicate top-level element {name:?}"
        )));
    }
    let mut version = None;
    let mut statement = None;
    for (name, value) in members {
        match (name.as_str(), value) {
            ("Version", Json::String(v)) if v == VERSION_WITH_VARIABLES || v == VERSION_LEGACY => {
                version = Some(v)
            }
            ("Version", Json::String(v)) => {
                return Err(PolicyError::document(format!(
                    "unsupported Version {v:?} (expected \"{VERSION_WITH_VARIABLES}\" or \"{VERSION_LEGACY}\")"
                )));
            }
            ("Id", Json::String(_)) => {}
            ("Version" | "Id", other) => {
                return Err(PolicyError::document(format!(
                    "{name} must be a string, found {}",
                    other.type_name()
                )));
            }
            ("Statement", value) => statement = Some(value),
            (other, _) => {
                return Err(PolicyError::document(format!(
                    "unknown top-level element {other:?}"
                )));
            }
        }
    }
    let items: &[Json] = match statement {
        None => return Err(PolicyError::document("missing Statement")),
        Some(Json::Array(items)) if items.is_empty() => {
            return Err(PolicyError::document("Statement must not be an empty list"));
        }
        Some(Json::Array(items)) => items,
        Some(single @ Json::Object(_)) => std::slice::from_ref(single),
        Some(other) => {
            return Err(PolicyError::document(format!(
                "Statement must be an object or a list of objects, found {}",
                other.type_name()
            )));
        }
    };
    let variables = version.is_some_and(|v| v == VERSION_WITH_VARIABLES);
    let mut statements = Vec::with_capacity(items.len());
    let mut sids: HashMap<&str, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let statement = parse_statement(index, item, kind, variables)?;
        if let Json::Object(members) = item
            && let Some((_, Json::String(sid))) = members.iter().find(|(name, _)| name == "Sid")
            && let Some(first) = sids.insert(sid, index)
        {
            return Err(PolicyError::statement(
                index,
                Some(sid),
                format!("duplicate Sid {sid:?} (also statement {first})"),
            ));
        }
        statements.push(statement);
    }
    let index = ActionIndex::new(&statements);
    let mut referenced_keys: Vec<Box<str>> = statements
        .iter()
        .flat_map(Statement::referenced_keys)
        .map(Box::from)
        .collect();
    referenced_keys.sort_unstable();
    referenced_keys.dedup();
    for condition in statements.iter_mut().flat_map(|s| s.conditions.iter_mut()) {
        condition.assign_slot(&referenced_keys);
    }
    let compiled = Compiled {
        statements: statements.into_boxed_slice(),
        index,
        referenced_keys: referenced_keys.into_boxed_slice(),
    };
    Ok(PolicyDocument {
        source: text.into(),
        compiled: Arc::new(compiled),
    })
}

const STATEMENT_ELEMENTS: [&str; 9] = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
];

fn parse_statement(
    index: usize,
    item: &Json,
    kind: Kind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    let Json::Object(members) = item else {
        return Err(PolicyError::statement(
            index,
            None,
            format!("a statement must be an object, found {}", item.type_name()),
        ));
    };
    let error = |sid: Option<&str>, message: String| PolicyError::statement(index, sid, message);
    if let Some(name) = first_duplicate(members, exact) {
        return Err(error(None, format!("duplicate element {name:?}")));
    }
    let element = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    };

    let sid = match element("Sid") {
        None => None,
        Some(Json::String(sid))
            if !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some(sid.as_str())
        }
        Some(Json::String(sid)) => {
            return Err(error(
                None,
                format!("Sid {sid:?} must be non-empty ASCII letters and digits"),
            ));
        }
        Some(other) => {
            return Err(error(
                None,
                format!("Sid must be a string, found {}", other.type_name()),
            ));
        }
    };
    let error = |message: String| PolicyError::statement(index, sid, message);
    if let Some((name, _)) = members
        .iter()
        .find(|(name, _)| !STATEMENT_ELEMENTS.contains(&name.as_str()))
    {
        return Err(error(format!("unknown element {name:?}")));
    }

    let effect = match element("Effect") {
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(Json::String(e)) => {
            return Err(error(format!(
                "Effect must be \"Allow\" or \"Deny\", found {e:?}"
            )));
        }
        Some(other) => {
            return Err(error(format!(
                "Effect must be a string, found {}",
                other.type_name()
            )));
        }
        None => return Err(error("missing Effect".to_owned())),
    };

    let actions = match pick(element("Action"), element("NotAction"), "Action").map_err(&error)? {
        Some((negated, value, name)) => Element::new(
            negated,
            strings(value, name)
                .and_then(|list| list.into_iter().map(ActionPattern::parse).collect())
                .map_err(&error)?,
        ),
        None => return Err(error("missing Action or NotAction".to_owned())),
    };

    let principal = match (
        pick(element("Principal"), element("NotPrincipal"), "Principal").map_err(&error)?,
        kind,
    ) {
        (Some((_, _, name)), Kind::Identity) => {
            return Err(error(format!(
                "{name} is not allowed in an identity policy"
            )));
        }
        (Some((negated, value, name)), Kind::Resource) => Some(PrincipalElement {
            negated,
            set: PrincipalSet::parse(value).map_err(|reason| error(format!("{name}: {reason}")))?,
        }),
        (None, Kind::Resource) => {
            return Err(error("missing Principal or NotPrincipal".to_owned()));
        }
        (None, Kind::Identity) => None,
    };

    let resources =
        match pick(element("Resource"), element("NotResource"), "Resource").map_err(&error)? {
            Some((negated, value, name)) => Some(Element::new(
                negated,
                strings(value, name)
                    .map_err(&error)?
                    .into_iter()
                    .map(|text| {
                        ArnPattern::parse(text, variables)
                            .map_err(|reason| error(format!("{name}: {reason}")))
                    })
                    .collect::<Result<_, _>>()?,
            )),
            None if kind == Kind::Resource => None,
            None => return Err(error("missing Resource or NotResource".to_owned())),
        };

    let conditions = match element("Condition") {
        Some(value) => parse_conditions(value, variables).map_err(&error)?,
        None => Vec::new(),
    };

    let label = sid
        .map_or_else(|| format!("#{index}"), str::to_owned)
        .into_boxed_str();
    Ok(Statement {
        label,
        effect,
        actions,
        resources,
        principal,
        conditions_first: conditions.iter().all(|c| c.referenced_keys().count() == 1),
        conditions,
    })
}

/// Exactly one of `X` / `NotX`, or neither: `(negated, value, element name)`.
fn pick<'a>(
    positive: Option<&'a Json>,
    negative: Option<&'a Json>,
    name: &'static str,
) -> Result<Option<(bool, &'a Json, &'static str)>, String> {
    let negative_name = match name {
        "Action" => "NotAction",
        "Resource" => "NotResource",
        _ => "NotPrincipal",
    };
    match (positive, negative) {
        (Some(_), Some(_)) => Err(format!("{name} and {negative_name} cannot both be present")),
        (Some(value), None) => Ok(Some((false, value, name))),
        (None, Some(value)) => Ok(Some((true, value, negative_name))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty list of strings.
fn strings<'a>(value: &'a Json, name: &str) -> Result<Vec<&'a str>, String> {
    match value {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(items) if items.is_empty() => Err(format!("{name} must not be an empty list")),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.as_str()),
                other => Err(format!(
                    "{name} must list strings, found {}",
                    other.type_name()
                )),
            })
            .collect(),
        other => Err(format!(
            "{name} must be a string or a list of strings, found {}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_error(json: &str) -> PolicyError {
        PolicyDocument::parse(json).unwrap_err()
    }

    fn statement(body: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": [{body}]}}"#)
    }

    const OK: &str = r#"{"Effect": "Allow", "Action": "mlflow:GetRun", "Resource": "*"}"#;

    #[test]
    fn statement_may_be_an_object_or_a_list() {
        let single = PolicyDocument::parse(&format!(
            r#"{{"Version": "2012-10-17", "Statement": {OK}}}"#
        ))
        .unwrap();
        assert_eq!(single.compiled.statements.len(), 1);
        let list = PolicyDocument::parse(&statement(&format!("{OK}, {OK}"))).unwrap();
        assert_eq!(list.compiled.statements.len(), 2);
        assert_eq!(&*list.compiled.statements[1].label, "#1");
    }

    #[test]
    fn version_may_be_absent_or_legacy_and_id_is_accepted() {
        assert!(PolicyDocument::parse(&format!(r#"{{"Statement": {OK}}}"#)).is_ok());
        assert!(
            PolicyDocument::parse(&format!(
                r#"{{"Version": "2008-10-17", "Id": "x", "Statement": {OK}}}"#
            ))
            .is_ok()
        );
    }

    #[test]
    fn to_json_returns_the_original_text() {
        let text = statement(OK);
        assert_eq!(PolicyDocument::parse(&text).unwrap().to_json(), text);
    }

    #[test]
    fn sid_labels_the_statement() {
        let doc = PolicyDocument::parse(&statement(
            r#"{"Sid": "ReadRuns", "Effect": "Allow", "Action": "mlflow:GetRun", "Resource": "*"}"#,
        ))
        .unwrap();
        assert_eq!(&*doc.compiled.statements[0].label, "ReadRuns");
    }

    #[test]
    fn resource_policy_may_omit_resource_but_needs_a_principal() {
        let trust = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/sagemaker"}, "Action": "sts:AssumeRole"}]}"#;
        let doc = PolicyDocument::parse_resource_policy(trust).unwrap();
        assert!(doc.compiled.statements[0].resources.is_none());
        let error = PolicyDocument::parse_resource_policy(&statement(OK)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "statement 0: missing Principal or NotPrincipal"
        );
        let error = PolicyDocument::parse(trust).unwrap_err();
        assert_eq!(
            error.to_string(),
            "statement 0: Principal is not allowed in an identity policy"
        );
    }

    #[test]
    fn document_level_errors() {
        let too_big = format!(
            r#"{{"Statement": {OK}, "Id": "{}"}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        for (json, expected) in [
            (too_big.as_str(), "the limit is 131072"),
            ("", "not valid JSON"),
            ("{", "not valid JSON"),
            (r#"{"Statement": []} trailing"#, "not valid JSON"),
            ("[]", "must be a JSON object, found a list"),
            (r#"{"Version": "2012-10-17"}"#, "missing Statement"),
            (r#"{"Statement": []}"#, "must not be an empty list"),
            (
                r#"{"Statement": "x"}"#,
                "Statement must be an object or a list",
            ),
            (
                r#"{"Version": "2024-01-01", "Statement": []}"#,
                "unsupported Version \"2024-01-01\"",
            ),
            (
                r#"{"Version": 2012, "Statement": []}"#,
                "Version must be a string",
            ),
            (r#"{"Id": [], "Statement": []}"#, "Id must be a string"),
            (
                r#"{"version": "2012-10-17", "Statement": []}"#,
                "unknown top-level element \"version\"",
            ),
            (
                r#"{"Statement": [], "Statement": []}"#,
                "duplicate top-level element \"Statement\"",
            ),
        ] {
            let error = identity_error(json);
            assert!(error.to_string().contains(expected), "{json}: {error}");
            assert_eq!(error.statement_index(), None);
        }
    }

    #[test]
    fn statement_level_errors_name_the_statement() {
        for (body, expected) in [
            (
                r#""x""#,
                "statement 0: a statement must be an object, found a string",
            ),
            (
                r#"{"Effect": "Allow", "Effect": "Deny", "Action": "*", "Resource": "*"}"#,
                "statement 0: duplicate element \"Effect\"",
            ),
            (
                r#"{"Sid": "", "Effect": "Allow", "Action": "*", "Resource": "*"}"#,
                "statement 0: Sid \"\" must be non-empty",
            ),
            (
                r#"{"Sid": "a b", "Effect": "Allow", "Action": "*", "Resource": "*"}"#,
                "statement 0: Sid \"a b\" must be",
            ),
            (
                r#"{"Sid": 1, "Effect": "Allow", "Action": "*", "Resource": "*"}"#,
                "statement 0: Sid must be a string",
            ),
            (
                r#"{"Sid": "S", "Effect": "Allow", "Action": "*", "Resource": "*", "Actions": "x"}"#,
                "statement 0 (Sid \"S\"): unknown element \"Actions\"",
            ),
            (
                r#"{"Action": "*", "Resource": "*"}"#,
                "statement 0: missing Effect",
            ),
            (
                r#"{"Effect": "allow", "Action": "*", "Resource": "*"}"#,
                "statement 0: Effect must be \"Allow\" or \"Deny\", found \"allow\"",
            ),
            (
                r#"{"Effect": true, "Action": "*", "Resource": "*"}"#,
                "Effect must be a string, found a boolean",
            ),
            (
                r#"{"Effect": "Allow", "Resource": "*"}"#,
                "missing Action or NotAction",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}"#,
                "Action and NotAction cannot both be present",
            ),
            (
                r#"{"Effect": "Allow", "Action": [], "Resource": "*"}"#,
                "Action must not be an empty list",
            ),
            (
                r#"{"Effect": "Allow", "Action": [1], "Resource": "*"}"#,
                "Action must list strings, found a number",
            ),
            (
                r#"{"Effect": "Allow", "Action": {}, "Resource": "*"}"#,
                "Action must be a string or a list of strings",
            ),
            (
                r#"{"Effect": "Allow", "Action": "mlflow"}"#,
                "invalid action \"mlflow\"",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*"}"#,
                "missing Resource or NotResource",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}"#,
                "Resource and NotResource cannot both be present",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*", "NotResource": []}"#,
                "statement 0: NotResource must not be an empty list",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*", "Resource": "bucket"}"#,
                "Resource: \"bucket\" is neither",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*", "Resource": "*", "NotPrincipal": "*"}"#,
                "NotPrincipal is not allowed in an identity policy",
            ),
            (
                r#"{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"a:b": "c"}}}"#,
                "unknown condition operator \"StringEqualz\"",
            ),
        ] {
            let error = identity_error(&statement(body));
            assert!(
                error.to_string().starts_with("statement 0"),
                "{body}: {error}"
            );
            assert!(error.to_string().contains(expected), "{body}: {error}");
            assert_eq!(error.statement_index(), Some(0));
        }
    }

    #[test]
    fn error_in_a_later_statement_carries_its_index_and_sid() {
        let json = statement(&format!(
            r#"{OK}, {OK}, {{"Sid": "DenyProd", "Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {{"StringEqualz": {{"mlflow:ExperimentName": "prod"}}}}}}"#
        ));
        let error = identity_error(&json);
        assert_eq!(
            error.to_string(),
            "statement 2 (Sid \"DenyProd\"): unknown condition operator \"StringEqualz\""
        );
        assert_eq!(error.statement_index(), Some(2));
        assert_eq!(error.sid(), Some("DenyProd"));
    }

    #[test]
    fn duplicate_sids_are_rejected() {
        let same = r#"{"Sid": "Read", "Effect": "Allow", "Action": "*", "Resource": "*"}"#;
        let error = identity_error(&statement(&format!("{same}, {OK}, {same}")));
        assert_eq!(
            error.to_string(),
            "statement 2 (Sid \"Read\"): duplicate Sid \"Read\" (also statement 0)"
        );
    }

    #[test]
    fn resource_policy_principal_errors() {
        let json = statement(
            r#"{"Effect": "Allow", "Action": "*", "Principal": "*", "NotPrincipal": "*"}"#,
        );
        let error = PolicyDocument::parse_resource_policy(&json).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("Principal and NotPrincipal cannot both be present"),
            "{error}"
        );
        let json = statement(r#"{"Effect": "Allow", "Action": "*", "Principal": {"AWS": "bob"}}"#);
        let error = PolicyDocument::parse_resource_policy(&json).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("statement 0: Principal: invalid AWS principal \"bob\""),
            "{error}"
        );
    }

    #[test]
    fn referenced_keys_cover_conditions_and_variables_everywhere() {
        let json = r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "arn:mlflow:*:*:experiment/${aws:PrincipalTag/Exp}"},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
                "StringNotEquals": {"mlflow:ResourceCreator": "${aws:username}"},
                "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"},
                "Null": {"mlflow:TargetStage": "true"},
                "NumericLessThan": {"test:Number": "3"}}}]}"#;
        let document = PolicyDocument::parse(json).unwrap();
        let keys: Vec<&str> = document.referenced_keys().collect();
        assert_eq!(
            keys,
            [
                "aws:principalaccount",
                "aws:principalarn",
                "aws:principaltag/exp",
                "aws:username",
                "mlflow:resourcecreator",
                "mlflow:targetstage",
                "test:number",
            ]
        );
        assert!(document.references_key("mlflow:ResourceCreator"));
        assert!(document.references_key("AWS:USERNAME"));
        assert!(!document.references_key("mlflow:ExperimentName"));
        // Legacy policies have no variables: `${...}` is text there, not a key.
        let legacy = PolicyDocument::parse(
            r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "*",
                "Resource": "arn:mlflow:*:*:experiment/${mlflow:ResourceCreator}"}}"#,
        )
        .unwrap();
        assert_eq!(legacy.referenced_keys().count(), 0);
    }

    #[test]
    fn documents_are_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<PolicyDocument>();
        let doc = PolicyDocument::parse(&statement(OK)).unwrap();
        let copy = doc.clone();
        assert!(Arc::ptr_eq(&doc.compiled, &copy.compiled));
    }
}
