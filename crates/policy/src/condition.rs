//! The `Condition` element: operators, their values, and how they meet the request context.
//!
//! Semantics (AWS's, see docs/policy-reference.md for the full table):
//! - all operators of a block and all keys of an operator must hold (AND); the values listed
//!   for one key are alternatives (OR);
//! - a negated operator (`StringNotEquals`, `NotIpAddress`, `ArnNotLike`, ...) holds for a
//!   request value when its positive twin matches none of the policy values;
//! - a key missing from the context makes a plain operator false, a negated one true,
//!   `...IfExists` true, `ForAllValues:` true and `ForAnyValue:` false.

use std::cmp::Ordering;

use ipnet::IpNet;
use jiff::Timestamp;

use crate::arn::ArnPattern;
use crate::context::{Context, normalize_key};
use crate::glob::Glob;
use crate::json::{Json, exact, first_duplicate};
use crate::scalar::{
    Decimal, DecimalRef, eq_ignore_case, parse_address, parse_base64, parse_bool, parse_date,
    parse_network,
};
use crate::variables::{Syntax, validate_key};

/// One operator applied to one key.
#[derive(Clone, Debug)]
pub(crate) struct Condition {
    /// Normalized like context keys.
    key: Box<str>,
    /// The key's position in its document's sorted referenced keys, so one evaluation looks
    /// each key up once per document (see `evaluate::KeyValues`).
    slot: usize,
    check: Check,
    /// The condition as the policy writes it (`StringLike mlflow:ExperimentName ["a/*"]`), for
    /// explanations; never read by a decision.
    written: Box<str>,
}

#[derive(Clone, Debug)]
enum Check {
    /// `Null`: `true` requires the key to be absent, `false` present.
    Null { must_be_absent: bool },
    Values {
        qualifier: Qualifier,
        if_exists: bool,
        negated: bool,
        test: Test,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qualifier {
    /// No prefix: meant for single-valued keys.
    Plain,
    ForAnyValue,
    ForAllValues,
}

/// The positive test, with the policy values parsed for it.
#[derive(Clone, Debug)]
enum Test {
    /// Parsed without wildcards: `*` is text.
    StringEquals(Vec<Glob>),
    StringEqualsIgnoreCase(Vec<Glob>),
    StringLike(Vec<Glob>),
    Numeric(Comparison, Vec<Decimal>),
    Date(Comparison, Vec<Timestamp>),
    Bool(bool),
    Binary(Vec<Vec<u8>>),
    IpAddress(Vec<IpNet>),
    Arn(Vec<ArnPattern>),
}

/// Request value compared to policy value: `NumericLessThan` holds when request < policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Comparison {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Equals => ordering.is_eq(),
            Comparison::LessThan => ordering.is_lt(),
            Comparison::LessThanEquals => ordering.is_le(),
            Comparison::GreaterThan => ordering.is_gt(),
            Comparison::GreaterThanEquals => ordering.is_ge(),
        }
    }
}

/// What an operator name says, before its values are parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Comparison),
    Date(Comparison),
    Bool,
    Binary,
    IpAddress,
    Arn,
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Operator {
    qualifier: Qualifier,
    if_exists: bool,
    negated: bool,
    family: Family,
}

impl Operator {
    fn parse(name: &str) -> Result<Operator, String> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Qualifier::ForAnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Qualifier::ForAllValues, rest)
        } else {
            (Qualifier::Plain, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        use Comparison::*;
        let (family, negated) = match base {
            "StringEquals" => (Family::StringEquals, false),
            "StringNotEquals" => (Family::StringEquals, true),
            "StringEqualsIgnoreCase" => (Family::StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Family::StringEqualsIgnoreCase, true),
            "StringLike" => (Family::StringLike, false),
            "StringNotLike" => (Family::StringLike, true),
            "NumericEquals" => (Family::Numeric(Equals), false),
            "NumericNotEquals" => (Family::Numeric(Equals), true),
            "NumericLessThan" => (Family::Numeric(LessThan), false),
            "NumericLessThanEquals" => (Family::Numeric(LessThanEquals), false),
            "NumericGreaterThan" => (Family::Numeric(GreaterThan), false),
            "NumericGreaterThanEquals" => (Family::Numeric(GreaterThanEquals), false),
            "DateEquals" => (Family::Date(Equals), false),
            "DateNotEquals" => (Family::Date(Equals), true),
            "DateLessThan" => (Family::Date(LessThan), false),
            "DateLessThanEquals" => (Family::Date(LessThanEquals), false),
            "DateGreaterThan" => (Family::Date(GreaterThan), false),
            "DateGreaterThanEquals" => (Family::Date(GreaterThanEquals), false),
            "Bool" => (Family::Bool, false),
            "BinaryEquals" => (Family::Binary, false),
            "IpAddress" => (Family::IpAddress, false),
            "NotIpAddress" => (Family::IpAddress, true),
            "ArnEquals" | "ArnLike" => (Family::Arn, false),
            "ArnNotEquals" | "ArnNotLike" => (Family::Arn, true),
            "Null" => (Family::Null, false),
            _ => return Err(format!("unknown condition operator {name:?}")),
        };
        if family == Family::Null && if_exists {
            return Err("the Null operator cannot take the IfExists suffix".to_owned());
        }
        if family == Family::Null && qualifier != Qualifier::Plain {
            return Err(
                "the Null operator cannot take a ForAnyValue:/ForAllValues: prefix".to_owned(),
            );
        }
        Ok(Operator {
            qualifier,
            if_exists,
            negated,
            family,
        })
    }
}

/// Parses a `Condition` element into its conditions, all of which must hold.
pub(crate) fn parse_conditions(value: &Json, variables: bool) -> Result<Vec<Condition>, String> {
    let Json::Object(operators) = value else {
        return Err(format!(
            "Condition must be an object, found {}",
            value.type_name()
        ));
    };
    if let Some(name) = first_duplicate(operators, exact) {
        return Err(format!("duplicate condition operator {name:?}"));
    }
    let mut conditions = Vec::new();
    for (name, keys) in operators {
        let operator = Operator::parse(name)?;
        let keys = match keys {
            Json::Object(keys) if !keys.is_empty() => keys,
            Json::Object(_) => return Err(format!("{name} has no condition keys")),
            other => {
                return Err(format!(
                    "{name} must map condition keys to values, found {}",
                    other.type_name()
                ));
            }
        };
        if let Some(key) = first_duplicate(keys, normalize_key) {
            return Err(format!(
                "condition key {key:?} appears twice in {name} (key names are case-insensitive)"
            ));
        }
        for (key, values) in keys {
            let condition = parse_condition(operator, key, values, variables)
                .map_err(|reason| format!("{name} condition on {key:?}: {reason}"))?
                .written_as(name, key, values);
            conditions.push(condition);
        }
    }
    Ok(conditions)
}

fn parse_condition(
    operator: Operator,
    key: &str,
    values: &Json,
    variables: bool,
) -> Result<Condition, String> {
    validate_key(key)?;
    let values = value_texts(values)?;
    let globs = |wildcards: bool| -> Result<Vec<Glob>, String> {
        let syntax = Syntax {
            wildcards,
            variables,
        };
        values
            .iter()
            .map(|value| Glob::parse(value, syntax))
            .collect()
    };
    // Typed operators read `${` as text, which would then fail to parse with a puzzling
    // message; say what is wrong instead.
    if variables
        && !matches!(
            operator.family,
            Family::StringEquals
                | Family::StringEqualsIgnoreCase
                | Family::StringLike
                | Family::Arn
        )
        && values.iter().any(|value| value.contains("${"))
    {
        return Err("policy variables can only be used with String and Arn operators".to_owned());
    }
    let test = match operator.family {
        Family::StringEquals => Test::StringEquals(globs(false)?),
        Family::StringEqualsIgnoreCase => Test::StringEqualsIgnoreCase(globs(false)?),
        Family::StringLike => Test::StringLike(globs(true)?),
        Family::Arn => Test::Arn(
            values
                .iter()
                .map(|value| ArnPattern::parse(value, variables))
                .collect::<Result<_, _>>()?,
        ),
        Family::Numeric(comparison) => Test::Numeric(
            comparison,
            parse_each(&values, "a decimal number", Decimal::parse)?,
        ),
        Family::Date(comparison) => Test::Date(
            comparison,
            parse_each(
                &values,
                "a date (epoch seconds, YYYY-MM-DD or ISO-8601 with offset)",
                parse_date,
            )?,
        ),
        Family::Binary => Test::Binary(parse_each(&values, "base64", parse_base64)?),
        Family::IpAddress => Test::IpAddress(parse_each(
            &values,
            "an IP address or CIDR block",
            parse_network,
        )?),
        Family::Bool | Family::Null => {
            let [value] = values.as_slice() else {
                return Err("takes exactly one value".to_owned());
            };
            let flag =
                parse_bool(value).ok_or_else(|| format!("{value:?} is not true or false"))?;
            if operator.family == Family::Null {
                let check = Check::Null {
                    must_be_absent: flag,
                };
                return Ok(Condition {
                    key: normalize_key(key).into(),
                    slot: 0,
                    check,
                    written: Box::default(),
                });
            }
            Test::Bool(flag)
        }
    };
    let Operator {
        qualifier,
        if_exists,
        negated,
        ..
    } = operator;
    let check = Check::Values {
        qualifier,
        if_exists,
        negated,
        test,
    };
    Ok(Condition {
        key: normalize_key(key).into(),
        slot: 0,
        check,
        written: Box::default(),
    })
}

/// Parses every value, or names the first that is not `what`.
fn parse_each<T>(
    values: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    values
        .iter()
        .map(|value| parse(value).ok_or_else(|| format!("{value:?} is not {what}")))
        .collect()
}

/// A condition value is a string, number or boolean, or a non-empty list of those; AWS
/// compares them as text.
fn value_texts(values: &Json) -> Result<Vec<String>, String> {
    let scalar = |value: &Json| match value {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "condition values must be strings, numbers or booleans, found {}",
            other.type_name()
        )),
    };
    match values {
        Json::Array(items) if items.is_empty() => {
            Err("the value list must not be empty".to_owned())
        }
        Json::Array(items) => items.iter().map(scalar).collect(),
        single => Ok(vec![scalar(single)?]),
    }
}

impl Condition {
    fn written_as(mut self, operator: &str, key: &str, values: &Json) -> Condition {
        let values = value_texts(values).unwrap_or_default();
        let values = serde_json::to_string(&values).unwrap_or_default();
        self.written = format!("{operator} {key} {values}").into();
        self
    }

    /// The condition as its policy writes it.
    pub(crate) fn written(&self) -> &str {
        &self.written
    }

    /// Every context key it reads: its own and those of variables in its values.
    pub(crate) fn referenced_keys(&self) -> impl Iterator<Item = &str> {
        let (globs, arns): (&[Glob], &[ArnPattern]) = match &self.check {
            Check::Values {
                test:
                    Test::StringEquals(globs)
                    | Test::StringEqualsIgnoreCase(globs)
                    | Test::StringLike(globs),
                ..
            } => (globs, &[]),
            Check::Values {
                test: Test::Arn(patterns),
                ..
            } => (&[], patterns),
            Check::Null { .. } | Check::Values { .. } => (&[], &[]),
        };
        std::iter::once(&*self.key)
            .chain(globs.iter().flat_map(Glob::variable_keys))
            .chain(arns.iter().flat_map(ArnPattern::variable_keys))
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// When the condition holds only if its key's value matches one of its string values (a
    /// positive `StringEquals`, `StringLike` or `StringEqualsIgnoreCase`, plain or
    /// `ForAnyValue:`, `IfExists` or not, for a key that is present): those values, and
    /// whether they compare ignoring case.
    pub(crate) fn required_strings(&self) -> Option<(&[Glob], bool)> {
        let Check::Values {
            qualifier: Qualifier::Plain | Qualifier::ForAnyValue,
            negated: false,
            test,
            ..
        } = &self.check
        else {
            return None;
        };
        match test {
            Test::StringEquals(globs) | Test::StringLike(globs) => Some((globs, false)),
            Test::StringEqualsIgnoreCase(globs) => Some((globs, true)),
            _ => None,
        }
    }

    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// Files the key under its position in the document's sorted, deduplicated keys.
    pub(crate) fn assign_slot(&mut self, referenced_keys: &[Box<str>]) {
        self.slot = referenced_keys
            .binary_search_by(|key| (**key).cmp(&*self.key))
            .expect("referenced keys include every condition key");
    }

    /// `values` are the context's values of the condition's key (looked up by the caller,
    /// once per document); `context` serves policy variables in the condition's values.
    pub(crate) fn holds(&self, values: Option<&[String]>, context: &Context) -> bool {
        let (qualifier, if_exists, negated, test) = match &self.check {
            Check::Null { must_be_absent } => return values.is_none() == *must_be_absent,
            Check::Values {
                qualifier,
                if_exists,
                negated,
                test,
            } => (*qualifier, *if_exists, *negated, test),
        };
        let Some(values) = values else {
            return if_exists
                || match qualifier {
                    Qualifier::ForAllValues => true,
                    Qualifier::ForAnyValue => false,
                    Qualifier::Plain => negated,
                };
        };
        let holds_for = |value: &String| test.matches(value, context) != negated;
        match qualifier {
            Qualifier::ForAnyValue => values.iter().any(holds_for),
            Qualifier::ForAllValues => values.iter().all(holds_for),
            // Several values under a plain operator: a positive operator needs one of them to
            // match, a negated one needs none to (the exact negation of its positive twin).
            Qualifier::Plain if negated => values.iter().all(holds_for),
            Qualifier::Plain => values.iter().any(holds_for),
        }
    }
}

impl Test {
    /// Does the request value match any of the policy values?
    fn matches(&self, value: &str, context: &Context) -> bool {
        match self {
            Test::StringEquals(globs) | Test::StringLike(globs) => {
                globs.iter().any(|glob| glob.matches(value, context))
            }
            Test::StringEqualsIgnoreCase(globs) => globs.iter().any(|glob| {
                glob.render(context)
                    .is_some_and(|text| eq_ignore_case(&text, value))
            }),
            Test::Numeric(comparison, numbers) => DecimalRef::parse(value).is_some_and(|value| {
                numbers
                    .iter()
                    .any(|n| comparison.holds(value.compare(n.as_ref())))
            }),
            Test::Date(comparison, dates) => parse_date(value)
                .is_some_and(|value| dates.iter().any(|d| comparison.holds(value.cmp(d)))),
            Test::Bool(expected) => parse_bool(value) == Some(*expected),
            Test::Binary(expected) => {
                parse_base64(value).is_some_and(|bytes| expected.contains(&bytes))
            }
            Test::IpAddress(networks) => parse_address(value)
                .is_some_and(|address| networks.iter().any(|n| n.contains(&address))),
            Test::Arn(patterns) => patterns
                .iter()
                .any(|pattern| pattern.matches(value, context)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(json: &str) -> Vec<Condition> {
        parse_conditions(&serde_json::from_str(json).unwrap(), true).unwrap()
    }

    fn error(json: &str) -> String {
        parse_conditions(&serde_json::from_str(json).unwrap(), true).unwrap_err()
    }

    /// Does the whole block hold for a context built from `(key, value)` pairs?
    fn holds(block: &str, pairs: &[(&str, &str)]) -> bool {
        let mut context = Context::default();
        for (key, value) in pairs {
            context.insert(key, *value);
        }
        conditions(block)
            .iter()
            .all(|condition| condition.holds(context.get_normalized(condition.key()), &context))
    }

    fn one(operator: &str, value: &str) -> String {
        format!(r#"{{"{operator}": {{"test:key": {value}}}}}"#)
    }

    #[test]
    fn string_equals_is_exact_and_case_sensitive() {
        let block = one("StringEquals", r#""prod""#);
        assert!(holds(&block, &[("test:key", "prod")]));
        assert!(!holds(&block, &[("test:key", "Prod")]));
        assert!(!holds(&block, &[("test:key", "production")]));
        let star = one("StringEquals", r#""a*""#);
        assert!(holds(&star, &[("test:key", "a*")]));
        assert!(
            !holds(&star, &[("test:key", "abc")]),
            "StringEquals has no wildcards"
        );
    }

    #[test]
    fn string_not_equals_is_the_negation() {
        let block = one("StringNotEquals", r#"["prod", "staging"]"#);
        assert!(holds(&block, &[("test:key", "dev")]));
        assert!(!holds(&block, &[("test:key", "prod")]));
        assert!(!holds(&block, &[("test:key", "staging")]));
    }

    #[test]
    fn ignore_case_operators() {
        let block = one("StringEqualsIgnoreCase", r#""Prod""#);
        assert!(holds(&block, &[("test:key", "PROD")]));
        assert!(!holds(&block, &[("test:key", "PRODUCTION")]));
        let negated = one("StringNotEqualsIgnoreCase", r#""Prod""#);
        assert!(!holds(&negated, &[("test:key", "prod")]));
        assert!(holds(&negated, &[("test:key", "dev")]));
    }

    #[test]
    fn string_like_and_not_like() {
        let block = one("StringLike", r#"["team-*", "exact?"]"#);
        assert!(holds(&block, &[("test:key", "team-ml")]));
        assert!(holds(&block, &[("test:key", "exact1")]));
        assert!(!holds(&block, &[("test:key", "Team-ml")]));
        let negated = one("StringNotLike", r#""team-*""#);
        assert!(holds(&negated, &[("test:key", "other")]));
        assert!(!holds(&negated, &[("test:key", "team-x")]));
    }

    #[test]
    fn numeric_operators() {
        let cases = [
            ("NumericEquals", "10", [false, true, false]),
            ("NumericNotEquals", "10", [true, false, true]),
            ("NumericLessThan", "10", [true, false, false]),
            ("NumericLessThanEquals", "10", [true, true, false]),
            ("NumericGreaterThan", "10", [false, false, true]),
            ("NumericGreaterThanEquals", "10", [false, true, true]),
        ];
        for (operator, policy, expected) in cases {
            let block = one(operator, &format!("\"{policy}\""));
            for (request, expected) in ["9.5", "10.0", "11"].into_iter().zip(expected) {
                assert_eq!(
                    holds(&block, &[("test:key", request)]),
                    expected,
                    "{operator} {request}"
                );
            }
        }
        // JSON numbers are accepted in the policy.
        assert!(holds(&one("NumericLessThan", "100"), &[("test:key", "99")]));
    }

    #[test]
    fn non_numeric_request_value_matches_no_number() {
        assert!(!holds(
            &one("NumericEquals", "\"1\""),
            &[("test:key", "one")]
        ));
        assert!(!holds(
            &one("NumericLessThan", "\"1\""),
            &[("test:key", "one")]
        ));
        // ... so its negation holds.
        assert!(holds(
            &one("NumericNotEquals", "\"1\""),
            &[("test:key", "one")]
        ));
    }

    #[test]
    fn date_operators() {
        let policy = r#""2024-06-01T00:00:00Z""#;
        let cases = [
            ("DateEquals", [false, true, false]),
            ("DateNotEquals", [true, false, true]),
            ("DateLessThan", [true, false, false]),
            ("DateLessThanEquals", [true, true, false]),
            ("DateGreaterThan", [false, false, true]),
            ("DateGreaterThanEquals", [false, true, true]),
        ];
        let requests = [
            "2024-05-31T23:59:59Z",
            "1717200000",
            "2024-06-01T02:00:01+02:00",
        ];
        for (operator, expected) in cases {
            let block = one(operator, policy);
            for (request, expected) in requests.into_iter().zip(expected) {
                assert_eq!(
                    holds(&block, &[("test:key", request)]),
                    expected,
                    "{operator} {request}"
                );
            }
        }
        assert!(holds(
            &one("DateGreaterThan", "1700000000"),
            &[("test:key", "2024-01-01")]
        ));
    }

    #[test]
    fn bool_operator() {
        let block = one("Bool", r#""true""#);
        assert!(holds(&block, &[("test:key", "true")]));
        assert!(holds(&block, &[("test:key", "TRUE")]));
        assert!(!holds(&block, &[("test:key", "false")]));
        assert!(!holds(&block, &[("test:key", "yes")]));
        assert!(
            holds(&one("Bool", "false"), &[("test:key", "false")]),
            "JSON boolean in the policy"
        );
    }

    #[test]
    fn binary_equals_compares_decoded_bytes() {
        let block = one("BinaryEquals", r#""QmluYXJ5VmFsdWU=""#);
        assert!(holds(&block, &[("test:key", "QmluYXJ5VmFsdWU=")]));
        assert!(!holds(&block, &[("test:key", "QmluYXJ5")]));
        assert!(!holds(&block, &[("test:key", "not base64")]));
    }

    #[test]
    fn ip_address_operators() {
        let block = one("IpAddress", r#"["203.0.113.0/24", "2001:DB8::/32"]"#);
        assert!(holds(&block, &[("test:key", "203.0.113.9")]));
        assert!(holds(&block, &[("test:key", "2001:db8::1")]));
        assert!(!holds(&block, &[("test:key", "198.51.100.1")]));
        assert!(!holds(&block, &[("test:key", "garbage")]));
        let negated = one("NotIpAddress", r#""203.0.113.0/24""#);
        assert!(holds(&negated, &[("test:key", "198.51.100.1")]));
        assert!(!holds(&negated, &[("test:key", "203.0.113.1")]));
        assert!(
            holds(&negated, &[("test:key", "garbage")]),
            "an unreadable address is outside every block"
        );
    }

    #[test]
    fn arn_operators() {
        for operator in ["ArnEquals", "ArnLike"] {
            let block = one(operator, r#""arn:aws:iam::111122223333:role/ml-*""#);
            assert!(
                holds(
                    &block,
                    &[("test:key", "arn:aws:iam::111122223333:role/ml-admin")]
                ),
                "{operator}"
            );
            assert!(
                !holds(
                    &block,
                    &[("test:key", "arn:aws:iam::444455556666:role/ml-admin")]
                ),
                "{operator}"
            );
        }
        for operator in ["ArnNotEquals", "ArnNotLike"] {
            let block = one(operator, r#""arn:aws:iam::111122223333:*""#);
            assert!(
                holds(&block, &[("test:key", "arn:aws:iam::444455556666:user/x")]),
                "{operator}"
            );
            assert!(
                !holds(&block, &[("test:key", "arn:aws:iam::111122223333:user/x")]),
                "{operator}"
            );
        }
    }

    #[test]
    fn null_tests_presence() {
        let absent = one("Null", r#""true""#);
        assert!(holds(&absent, &[]));
        assert!(!holds(&absent, &[("test:key", "")]));
        let present = one("Null", "false");
        assert!(holds(&present, &[("test:key", "x")]));
        assert!(!holds(&present, &[]));
    }

    #[test]
    fn missing_key_plain_operators_are_false_negated_true() {
        for operator in [
            "StringEquals",
            "StringLike",
            "NumericEquals",
            "DateEquals",
            "Bool",
            "IpAddress",
            "ArnLike",
        ] {
            let value = match operator {
                "NumericEquals" => r#""1""#,
                "DateEquals" => r#""2024-01-01""#,
                "Bool" => r#""true""#,
                "IpAddress" => r#""10.0.0.0/8""#,
                "ArnLike" => r#""arn:aws:iam::1:*""#,
                _ => r#""x""#,
            };
            assert!(!holds(&one(operator, value), &[]), "{operator}");
        }
        for operator in [
            "StringNotEquals",
            "StringNotLike",
            "NotIpAddress",
            "ArnNotLike",
            "NumericNotEquals",
        ] {
            let value = match operator {
                "NotIpAddress" => r#""10.0.0.0/8""#,
                "ArnNotLike" => r#""arn:aws:iam::1:*""#,
                "NumericNotEquals" => r#""1""#,
                _ => r#""x""#,
            };
            assert!(holds(&one(operator, value), &[]), "{operator}");
        }
    }

    #[test]
    fn if_exists_holds_when_missing_and_tests_when_present() {
        let block = one("StringEqualsIfExists", r#""prod""#);
        assert!(holds(&block, &[]));
        assert!(holds(&block, &[("test:key", "prod")]));
        assert!(!holds(&block, &[("test:key", "dev")]));
        let numeric = one("NumericLessThanIfExists", r#""5""#);
        assert!(holds(&numeric, &[]));
        assert!(!holds(&numeric, &[("test:key", "6")]));
    }

    #[test]
    fn for_all_values() {
        let block = one("ForAllValues:StringEquals", r#"["a", "b"]"#);
        assert!(holds(&block, &[("test:key", "a"), ("test:key", "b")]));
        assert!(!holds(&block, &[("test:key", "a"), ("test:key", "c")]));
        assert!(
            holds(&block, &[]),
            "ForAllValues holds vacuously on a missing key"
        );
        let negated = one("ForAllValues:StringNotEquals", r#"["a", "b"]"#);
        assert!(holds(&negated, &[("test:key", "c"), ("test:key", "d")]));
        assert!(!holds(&negated, &[("test:key", "c"), ("test:key", "a")]));
        assert!(holds(&negated, &[]));
    }

    #[test]
    fn for_any_value() {
        let block = one("ForAnyValue:StringEquals", r#"["a", "b"]"#);
        assert!(holds(&block, &[("test:key", "x"), ("test:key", "b")]));
        assert!(!holds(&block, &[("test:key", "x"), ("test:key", "y")]));
        assert!(!holds(&block, &[]), "ForAnyValue is false on a missing key");
        let negated = one("ForAnyValue:StringNotEquals", r#"["a", "b"]"#);
        assert!(holds(&negated, &[("test:key", "a"), ("test:key", "z")]));
        assert!(!holds(&negated, &[("test:key", "a"), ("test:key", "b")]));
        assert!(
            !holds(&negated, &[]),
            "negation does not flip ForAnyValue's missing-key result"
        );
        let if_exists = one("ForAnyValue:StringEqualsIfExists", r#""a""#);
        assert!(
            holds(&if_exists, &[]),
            "IfExists makes a missing key true even under ForAnyValue"
        );
    }

    #[test]
    fn plain_operator_on_a_multi_valued_key() {
        let positive = one("StringEquals", r#""a""#);
        assert!(holds(&positive, &[("test:key", "x"), ("test:key", "a")]));
        let negated = one("StringNotEquals", r#""a""#);
        assert!(!holds(&negated, &[("test:key", "x"), ("test:key", "a")]));
        assert!(holds(&negated, &[("test:key", "x"), ("test:key", "y")]));
    }

    #[test]
    fn keys_and_operators_are_and_values_are_or() {
        let block = r#"{
            "StringEquals": {"test:a": ["1", "2"], "test:b": "3"},
            "StringLike": {"test:c": "x*"}
        }"#;
        assert!(holds(
            block,
            &[("test:a", "2"), ("test:b", "3"), ("test:c", "xy")]
        ));
        assert!(!holds(
            block,
            &[("test:a", "2"), ("test:b", "3"), ("test:c", "y")]
        ));
        assert!(!holds(block, &[("test:a", "2"), ("test:c", "xy")]));
        assert!(!holds(
            block,
            &[("test:a", "4"), ("test:b", "3"), ("test:c", "xy")]
        ));
    }

    #[test]
    fn key_names_are_case_insensitive() {
        assert!(holds(
            r#"{"StringEquals": {"AWS:UserName": "alice"}}"#,
            &[("aws:username", "alice")]
        ));
    }

    #[test]
    fn variables_in_string_and_arn_values() {
        let block = r#"{"StringEquals": {"mlflow:ResourceCreator": "${aws:username}"}}"#;
        assert!(holds(
            block,
            &[
                ("mlflow:ResourceCreator", "alice"),
                ("aws:username", "alice")
            ]
        ));
        assert!(!holds(
            block,
            &[("mlflow:ResourceCreator", "alice"), ("aws:username", "bob")]
        ));
        // Unresolvable: the value matches nothing, so the positive operator fails ...
        assert!(!holds(block, &[("mlflow:ResourceCreator", "alice")]));
        // ... and the negated one holds.
        let negated = r#"{"StringNotEquals": {"mlflow:ResourceCreator": "${aws:username}"}}"#;
        assert!(holds(negated, &[("mlflow:ResourceCreator", "alice")]));
        let ignore_case = r#"{"StringEqualsIgnoreCase": {"test:key": "${aws:username}"}}"#;
        assert!(holds(
            ignore_case,
            &[("test:key", "ALICE"), ("aws:username", "alice")]
        ));
        assert!(!holds(ignore_case, &[("test:key", "ALICE")]));
        let arn = r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/${aws:username}"}}"#;
        assert!(holds(
            arn,
            &[
                ("aws:PrincipalArn", "arn:aws:iam::1:user/alice"),
                ("aws:username", "alice")
            ]
        ));
    }

    #[test]
    fn variables_are_literal_without_version_2012() {
        let block =
            serde_json::from_str(r#"{"StringEquals": {"test:key": "${aws:username}"}}"#).unwrap();
        let parsed = parse_conditions(&block, false).unwrap();
        let mut context = Context::default();
        context.insert("aws:username", "alice");
        context.insert("test:key", "${aws:username}");
        assert!(parsed[0].holds(context.get("test:key"), &context));
    }

    #[test]
    fn invalid_blocks() {
        for (json, expected) in [
            (r#""x""#, "Condition must be an object"),
            (
                r#"{"StringEqualz": {"a:b": "x"}}"#,
                "unknown condition operator \"StringEqualz\"",
            ),
            (
                r#"{"stringequals": {"a:b": "x"}}"#,
                "unknown condition operator",
            ),
            (
                r#"{"ForSomeValues:StringEquals": {"a:b": "x"}}"#,
                "unknown condition operator",
            ),
            (
                r#"{"IfExists": {"a:b": "x"}}"#,
                "unknown condition operator",
            ),
            (
                r#"{"NullIfExists": {"a:b": "true"}}"#,
                "cannot take the IfExists suffix",
            ),
            (
                r#"{"ForAllValues:Null": {"a:b": "true"}}"#,
                "cannot take a ForAnyValue",
            ),
            (r#"{"StringEquals": {}}"#, "has no condition keys"),
            (r#"{"StringEquals": "x"}"#, "must map condition keys"),
            (
                r#"{"StringEquals": {"a:b": "x"}, "StringEquals": {"a:c": "y"}}"#,
                "duplicate condition operator",
            ),
            (
                r#"{"StringEquals": {"aws:UserName": "x", "aws:username": "y"}}"#,
                "appears twice",
            ),
            (r#"{"StringEquals": {"username": "x"}}"#, "prefix:name"),
            (r#"{"StringEquals": {"a:b": []}}"#, "must not be empty"),
            (r#"{"StringEquals": {"a:b": null}}"#, "found null"),
            (r#"{"StringEquals": {"a:b": [["x"]]}}"#, "found a list"),
            (r#"{"StringEquals": {"a:b": {"x": 1}}}"#, "found an object"),
            (
                r#"{"StringLike": {"a:b": "${aws:username"}}"#,
                "unterminated policy variable",
            ),
            (
                r#"{"NumericEquals": {"a:b": "ten"}}"#,
                "\"ten\" is not a decimal number",
            ),
            (
                r#"{"NumericEquals": {"a:b": "${aws:x}"}}"#,
                "only be used with String and Arn",
            ),
            (r#"{"DateLessThan": {"a:b": "next week"}}"#, "is not a date"),
            (r#"{"Bool": {"a:b": "yes"}}"#, "is not true or false"),
            (
                r#"{"Bool": {"a:b": ["true", "false"]}}"#,
                "exactly one value",
            ),
            (
                r#"{"Null": {"a:b": ["true", "false"]}}"#,
                "exactly one value",
            ),
            (r#"{"BinaryEquals": {"a:b": "%%%"}}"#, "is not base64"),
            (
                r#"{"IpAddress": {"a:b": "10.0.0.0/40"}}"#,
                "is not an IP address",
            ),
            (r#"{"ArnLike": {"a:b": "not-an-arn"}}"#, "neither"),
        ] {
            let error = error(json);
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn error_names_operator_and_key() {
        assert_eq!(
            error(r#"{"NumericLessThan": {"mlflow:x": "ten"}}"#),
            "NumericLessThan condition on \"mlflow:x\": \"ten\" is not a decimal number"
        );
    }

    #[test]
    fn empty_condition_object_has_no_conditions() {
        assert!(conditions("{}").is_empty());
    }
}
