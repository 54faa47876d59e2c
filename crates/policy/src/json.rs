//! A JSON tree that keeps every member of an object, in order, duplicates included.
//!
//! `serde_json::Value` silently keeps the last of two members with the same name, so
//! `{"Effect": "Allow", "Effect": "Deny"}` would read as a Deny. The grammar checks
//! duplicates itself on this tree, so that the error can name the statement.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "a list",
            Json::Object(_) => "an object",
        }
    }
}

/// The name of the first member whose `normalize`d name appeared before. A set, not a
/// pairwise scan: a 128 KiB object may have thousands of members.
pub(crate) fn first_duplicate<'a>(
    members: &'a [(String, Json)],
    normalize: impl Fn(&'a str) -> Cow<'a, str>,
) -> Option<&'a str> {
    let mut seen = HashSet::with_capacity(members.len());
    members
        .iter()
        .map(|(name, _)| name.as_str())
        .find(|name| !seen.insert(normalize(name)))
}

/// Member names compared exactly.
pub(crate) fn exact(name: &str) -> Cow<'_, str> {
    Cow::Borrowed(name)
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_members_in_order() {
        let json: Json = serde_json::from_str(r#"{"Effect": "Allow", "Effect": "Deny"}"#).unwrap();
        let Json::Object(members) = json else {
            panic!("not an object")
        };
        assert_eq!(members.len(), 2);
        assert!(matches!(&members[1].1, Json::String(s) if s == "Deny"));
        assert_eq!(first_duplicate(&members, exact), Some("Effect"));
    }

    #[test]
    fn first_duplicate_uses_the_given_comparison() {
        let json: Json = serde_json::from_str(r#"{"aws:UserName": 1, "aws:username": 2}"#).unwrap();
        let Json::Object(members) = json else {
            panic!("not an object")
        };
        assert_eq!(first_duplicate(&members, exact), None);
        assert_eq!(
            first_duplicate(&members, |name| Cow::Owned(name.to_lowercase())),
            Some("aws:username")
        );
    }

    #[test]
    fn reads_every_json_type() {
        let json: Json =
            serde_json::from_str(r#"[null, true, -3, 18446744073709551615, 1.5, "s", {}]"#)
                .unwrap();
        let Json::Array(items) = json else {
            panic!("not an array")
        };
        let names: Vec<_> = items.iter().map(Json::type_name).collect();
        assert_eq!(
            names,
            [
                "null",
                "a boolean",
                "a number",
                "a number",
                "a number",
                "a string",
                "an object"
            ]
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(serde_json::from_str::<Json>(&deep).is_err());
    }
}
