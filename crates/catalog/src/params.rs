//! Reading request fields exactly as MLflow 3.17.2 does
//! (`mlflow/server/handlers.py::_get_request_message`, `_get_normalized_request_json`,
//! `_get_validated_flask_request_json`, Werkzeug's `request.args`), and refusing whatever
//! MLflow could read differently from mlgate.
//!
//! Source selection (`_get_request_message`): a `GET` whose query string parses to at least
//! one pair reads the query string and ignores the body; every other request (other
//! methods, and a `GET` without query) reads the JSON body.
//!
//! * Query strings are parsed like Python's `parse_qsl(keep_blank_values=True)`: pairs split
//!   on `&`, empty pairs skipped, `+` is a space, a pair without `=` has an empty value,
//!   repeated keys become arrays. Keys are taken verbatim: MLflow only looks up the proto
//!   (snake_case) names in the query string. Malformed escapes or escapes that do not decode
//!   to UTF-8 are refused.
//! * Bodies: for POST/PUT the `Content-Type` must be exactly `application/json` before any
//!   `;` (MLflow's check); other methods' bodies are read whatever their type. An empty or
//!   whitespace-only body, or `null`, is an empty message. A body that is a JSON *string*
//!   is decoded a second time. The result must be an object. Unlike MLflow (which silently
//!   treats malformed JSON as `{}` and lets duplicate keys overwrite each other), malformed
//!   JSON, duplicate keys at any depth, `NaN`/`Infinity`, and non-UTF-8 bodies are refused.
//! * Top-level keys: protobuf accepts a field's snake_case name and its lowerCamelCase JSON
//!   name. Keys are canonicalized to snake_case (`experimentId` → `experiment_id`); a body
//!   carrying both spellings of one field is refused (MLflow 3.17.2 refuses it too). The
//!   conversion is checked against every field of MLflow's request messages by the
//!   coverage test. Nested objects keep their keys; [`Params::values_at`] accepts both
//!   spellings at each level and refuses a conflict.
//! * `run_uuid` is the legacy alias of `run_id` (`run_id or run_uuid` in MLflow): an empty
//!   or null `run_id` takes `run_uuid`'s value, and two different non-empty values are
//!   refused.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use crate::catalog::{ParamStyle, Route};

/// Why request fields could not be read. `Display` is safe to return to the client: it
/// names at most a field (only when the field name is a plain identifier), never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("Bad Request. Content-Type header is missing.")]
    MissingContentType,
    #[error("Bad Request. Content-Type must be 'application/json'.")]
    UnsupportedContentType,
    #[error("the request body is not valid JSON")]
    MalformedJson,
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("the request body repeats the key {0}")]
    DuplicateKey(FieldName),
    #[error("the request specifies both {snake} and {camel}; provide only one of them")]
    ConflictingSpellings { snake: FieldName, camel: FieldName },
    #[error("the request specifies different values for 'run_id' and 'run_uuid'")]
    ConflictingRunId,
    #[error("the query string contains an invalid percent-escape or is not valid UTF-8")]
    InvalidQueryEncoding,
    #[error("the request specifies several values for {0}")]
    MultipleValues(FieldName),
    #[error("the request field {field} must be {expected}")]
    WrongType {
        field: FieldName,
        expected: &'static str,
    },
    #[error("Invalid Content-Type. Expected: application/x-protobuf or application/json")]
    UnsupportedOtlpContentType,
    #[error("Unsupported Content-Encoding: expected gzip or deflate")]
    UnsupportedContentEncoding,
    #[error("Invalid OpenTelemetry format")]
    UndecodableOtlpBody,
    #[error(
        "the decoded request body is larger than the {0} byte limit for requests mlgate must read"
    )]
    OtlpBodyTooLarge(usize),
    #[error("an OpenTelemetry export may name at most {max} {what}; send smaller batches")]
    TooMuchInOtlpExport { what: &'static str, max: usize },
}

/// A field name for error messages: shown quoted when it is a short plain identifier,
/// otherwise as "a field".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldName(Option<String>);

impl FieldName {
    pub(crate) fn new(name: &str) -> Self {
        let plain = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']'));
        FieldName(plain.then(|| name.to_string()))
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(n) => write!(f, "'{n}'"),
            None => f.write_str("a field"),
        }
    }
}

/// Where [`Params`] were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSource {
    /// Nothing was read (empty body, or a route whose handler reads no fields).
    None,
    Query,
    Body,
}

/// The request fields MLflow's handler sees, keys canonical (snake_case for protobuf
/// messages). Query values are strings, or arrays of strings for repeated keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    fields: Map<String, Value>,
    source: ParamSource,
}

impl Params {
    fn empty() -> Self {
        Params {
            fields: Map::new(),
            source: ParamSource::None,
        }
    }

    pub(crate) fn from_fields(fields: Map<String, Value>, source: ParamSource) -> Self {
        Params { fields, source }
    }

    pub fn source(&self) -> ParamSource {
        self.source
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The raw value of a top-level field.
    pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
        self.fields.get(field)
    }

    /// The string values of a field: a string, or the strings of an array. Lenient (other
    /// JSON types are skipped); authorization code should use [`Params::try_str_values`].
    pub fn str_values(&self, field: &str) -> Vec<&str> {
        match self.fields.get(field) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Like [`Params::str_values`] but refuses values that are not strings, so that no
    /// identifier MLflow might use can be skipped. `null` counts as absent.
    pub fn try_str_values(&self, field: &str) -> Result<Vec<&str>, ParamError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => strings_of(v, field),
        }
    }

    /// The single string value of a field: `None` when absent, `null` or empty; refused when
    /// it is not a string or has several values.
    pub fn try_str_value(&self, field: &str) -> Result<Option<&str>, ParamError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Array(_)) => Err(ParamError::MultipleValues(FieldName::new(field))),
            Some(_) => Err(ParamError::WrongType {
                field: FieldName::new(field),
                expected: "a string",
            }),
        }
    }

    /// Values at a field path: `a.b` descends into objects, `a[].b` into every element of
    /// array `a`. Below the top level both the snake_case name and its lowerCamelCase twin
    /// are accepted; both at once is refused. Missing or `null` steps yield nothing.
    pub fn values_at(&self, field_path: &str) -> Result<Vec<&Value>, ParamError> {
        let mut current: Vec<&Value> = Vec::new();
        for (n, step) in field_path.split('.').enumerate() {
            let (name, each) = match step.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (step, false),
            };
            let mut next = Vec::new();
            if n == 0 {
                next.extend(self.fields.get(name));
            } else {
                for v in current {
                    if let Value::Object(obj) = v {
                        next.extend(get_either_spelling(obj, name)?);
                    }
                }
            }
            next.retain(|v| !v.is_null());
            current = if each {
                next.into_iter()
                    .flat_map(|v| match v {
                        Value::Array(items) => items.iter().collect::<Vec<_>>(),
                        other => vec![other],
                    })
                    .filter(|v| !v.is_null())
                    .collect()
            } else {
                next
            };
        }
        Ok(current)
    }

    /// String values at a field path (see [`Params::values_at`]); non-strings refused.
    pub fn str_values_at(&self, field_path: &str) -> Result<Vec<&str>, ParamError> {
        let mut out = Vec::new();
        for v in self.values_at(field_path)? {
            out.extend(strings_of(v, field_path)?);
        }
        Ok(out)
    }

    /// The object at a path of objects (`a.b`), each step below the top level in either
    /// spelling (see [`Params::values_at`]). `None` when a step is missing or `null`; refused
    /// when a step is not an object or is spelled both ways.
    pub fn object_at_mut(
        &mut self,
        path: &str,
    ) -> Result<Option<&mut Map<String, Value>>, ParamError> {
        let mut steps = path.split('.');
        let mut current = self.fields.get_mut(steps.next().unwrap_or_default());
        for step in steps {
            let Some(Value::Object(obj)) = current else {
                return object_or_absent(current, path);
            };
            let key = field_spelling(obj, step)?;
            current = obj.get_mut(&key);
        }
        match current {
            Some(Value::Object(obj)) => Ok(Some(obj)),
            other => object_or_absent(other, path),
        }
    }

    /// Sets a top-level field (canonical name), replacing any previous value.
    pub fn set(&mut self, field: &str, value: Value) {
        self.fields.insert(field.to_string(), value);
    }

    /// Removes a top-level field.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        self.fields.remove(field)
    }

    /// Sets tag `key` to `value` in a repeated `{key, value}` field such as CreateRun's
    /// `tags`, removing any other entry with that key (so e.g. a client-supplied
    /// `mlflow.user` cannot survive). Refused when the field is not an array of objects.
    pub fn upsert_tag(&mut self, field: &str, key: &str, value: &str) -> Result<(), ParamError> {
        let wrong = || ParamError::WrongType {
            field: FieldName::new(field),
            expected: "an array of {key, value} objects",
        };
        let entry = self
            .fields
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if entry.is_null() {
            *entry = Value::Array(Vec::new());
        }
        let Value::Array(items) = entry else {
            return Err(wrong());
        };
        if items.iter().any(|t| !t.is_object()) {
            return Err(wrong());
        }
        items.retain(|t| t.get("key").and_then(Value::as_str) != Some(key));
        let mut tag = Map::new();
        tag.insert("key".into(), Value::String(key.into()));
        tag.insert("value".into(), Value::String(value.into()));
        items.push(Value::Object(tag));
        Ok(())
    }

    /// The fields as a JSON object body (canonical keys only), for forwarding a rewritten
    /// request whose fields came from the body.
    pub fn into_json_body(self) -> Vec<u8> {
        serde_json::to_vec(&Value::Object(self.fields)).unwrap_or_else(|_| b"{}".to_vec())
    }
}

fn strings_of<'a>(v: &'a Value, field: &str) -> Result<Vec<&'a str>, ParamError> {
    let wrong = || ParamError::WrongType {
        field: FieldName::new(field),
        expected: "a string or an array of strings",
    };
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| i.as_str().ok_or_else(wrong))
            .collect(),
        _ => Err(wrong()),
    }
}

fn object_or_absent<T>(value: Option<&mut Value>, path: &str) -> Result<Option<T>, ParamError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(ParamError::WrongType {
            field: FieldName::new(path),
            expected: "an object",
        }),
    }
}

/// The key an object uses for field `snake`: its lowerCamelCase twin when only that is
/// present, else `snake`. Refused when both are present.
pub fn field_spelling(obj: &Map<String, Value>, snake: &str) -> Result<String, ParamError> {
    let camel = snake_to_camel(snake);
    match (
        obj.contains_key(snake),
        camel != snake && obj.contains_key(&camel),
    ) {
        (true, true) => Err(ParamError::ConflictingSpellings {
            snake: FieldName::new(snake),
            camel: FieldName::new(&camel),
        }),
        (false, true) => Ok(camel),
        _ => Ok(snake.to_owned()),
    }
}

pub(crate) fn get_either_spelling<'a>(
    obj: &'a Map<String, Value>,
    snake: &str,
) -> Result<Option<&'a Value>, ParamError> {
    let camel = snake_to_camel(snake);
    match (
        obj.get(snake),
        (camel != snake).then(|| obj.get(&camel)).flatten(),
    ) {
        (Some(_), Some(_)) => Err(ParamError::ConflictingSpellings {
            snake: FieldName::new(snake),
            camel: FieldName::new(&camel),
        }),
        (a, b) => Ok(a.or(b)),
    }
}

/// protobuf's `ToJsonName`: drop each `_` and upper-case the next character.
fn snake_to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// lowerCamelCase → snake_case: `_` + lower-case before each upper-case ASCII letter.
pub(crate) fn camel_to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// Reads the fields of a protobuf-message route exactly as MLflow's
/// `_get_request_message` does (see the module docs). `query` is the raw query string
/// without `?`; `content_type` the raw header value.
pub fn read_params(
    method: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Params, ParamError> {
    let pairs = if method == "GET" {
        parse_query(query.unwrap_or(""))?
    } else {
        Vec::new()
    };
    let mut params = if !pairs.is_empty() {
        params_from_pairs(pairs)
    } else {
        let mut p = read_json_body(method, content_type, body, true, true)?;
        canonicalize_keys(&mut p.fields)?;
        p
    };
    merge_run_uuid(&mut params.fields)?;
    Ok(params)
}

/// Reads the fields of `route` the way its MLflow handler does ([`ParamStyle`]).
pub fn read_params_for(
    route: &Route,
    method: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Params, ParamError> {
    match route.params {
        ParamStyle::Message => read_params(method, query, content_type, body),
        ParamStyle::FlaskJson => {
            let pairs = if method == "GET" {
                parse_query(query.unwrap_or(""))?
            } else {
                Vec::new()
            };
            if !pairs.is_empty() {
                Ok(params_from_pairs(pairs))
            } else {
                read_json_body(method, content_type, body, true, true)
            }
        }
        ParamStyle::JsonBody => read_json_body(method, content_type, body, false, false),
        ParamStyle::Query => {
            let mut p = params_from_pairs(parse_query(query.unwrap_or(""))?);
            merge_run_uuid(&mut p.fields)?;
            Ok(p)
        }
        ParamStyle::QueryIfGetElseJson => {
            if method == "GET" {
                Ok(params_from_pairs(parse_query(query.unwrap_or(""))?))
            } else {
                read_json_body(method, content_type, body, false, false)
            }
        }
        // Without its content coding: the gateway calls `read_otlp` with it.
        ParamStyle::Otlp => crate::read_otlp(content_type, None, body, body.len()),
        ParamStyle::None => Ok(Params::empty()),
    }
}

/// Sets `field` (canonical snake_case) in a JSON request body the way MLflow will read it:
/// the body is read as [`read_params`] reads it (camelCase twins folded into their
/// snake_case name, double-encoding removed) and re-serialized with the new value.
pub fn set_json_field(
    method: &str,
    content_type: Option<&str>,
    body: &[u8],
    field: &str,
    value: Value,
) -> Result<Vec<u8>, ParamError> {
    let mut p = read_json_body(method, content_type, body, true, true)?;
    canonicalize_keys(&mut p.fields)?;
    merge_run_uuid(&mut p.fields)?;
    p.set(field, value);
    Ok(p.into_json_body())
}

fn params_from_pairs(pairs: Vec<(String, String)>) -> Params {
    let mut fields = Map::new();
    for (k, v) in pairs {
        match fields.get_mut(&k) {
            None => {
                fields.insert(k, Value::String(v));
            }
            Some(Value::Array(items)) => items.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
        }
    }
    let source = if fields.is_empty() {
        ParamSource::None
    } else {
        ParamSource::Query
    };
    Params { fields, source }
}

/// Python's `parse_qsl(qs, keep_blank_values=True)` with strict decoding.
fn parse_query(qs: &str) -> Result<Vec<(String, String)>, ParamError> {
    let mut out = Vec::new();
    for pair in qs.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode_query_part(k)?, decode_query_part(v)?));
    }
    Ok(out)
}

fn decode_query_part(s: &str) -> Result<String, ParamError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(ParamError::InvalidQueryEncoding),
                }
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ParamError::InvalidQueryEncoding)
}

/// `_get_request_json` / `_get_normalized_request_json` (and, without the checks,
/// `request.json`).
fn read_json_body(
    method: &str,
    content_type: Option<&str>,
    body: &[u8],
    check_content_type: bool,
    decode_twice: bool,
) -> Result<Params, ParamError> {
    if check_content_type && matches!(method, "POST" | "PUT") {
        let ct = content_type.ok_or(ParamError::MissingContentType)?;
        if ct.split(';').next() != Some("application/json") {
            return Err(ParamError::UnsupportedContentType);
        }
    }
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(Params::empty());
    }
    let mut value = parse_strict_json(body)?;
    if let (true, Value::String(inner)) = (decode_twice, &value) {
        value = parse_strict_json(inner.as_bytes())?;
    }
    match value {
        Value::Null => Ok(Params::empty()),
        Value::Object(fields) => Ok(Params {
            fields,
            source: ParamSource::Body,
        }),
        _ => Err(ParamError::NotAnObject),
    }
}

fn canonicalize_keys(fields: &mut Map<String, Value>) -> Result<(), ParamError> {
    if !fields
        .keys()
        .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Ok(());
    }
    let old = std::mem::take(fields);
    for (k, v) in old {
        let canon = camel_to_snake(&k);
        if fields.contains_key(&canon) {
            let camel = if canon == k { snake_to_camel(&k) } else { k };
            return Err(ParamError::ConflictingSpellings {
                snake: FieldName::new(&canon),
                camel: FieldName::new(&camel),
            });
        }
        fields.insert(canon, v);
    }
    Ok(())
}

fn merge_run_uuid(fields: &mut Map<String, Value>) -> Result<(), ParamError> {
    let absent = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if absent(fields.get("run_uuid")) {
        return Ok(());
    }
    if absent(fields.get("run_id")) {
        let uuid = fields.get("run_uuid").cloned().unwrap_or(Value::Null);
        fields.insert("run_id".to_string(), uuid);
        return Ok(());
    }
    if fields.get("run_id") != fields.get("run_uuid") {
        return Err(ParamError::ConflictingRunId);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Strict JSON: duplicate keys refused at any depth
// ---------------------------------------------------------------------------------------

/// Parses JSON, refusing duplicate object keys anywhere (`DuplicateKey`) and anything
/// `serde_json` refuses (`MalformedJson`).
pub(crate) fn parse_strict_json(bytes: &[u8]) -> Result<Value, ParamError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut dup: Option<String> = None;
    let v = StrictSeed { dup: &mut dup }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match (v, dup) {
        (_, Some(key)) => Err(ParamError::DuplicateKey(FieldName::new(&key))),
        (Ok(v), None) => Ok(v),
        (Err(_), None) => Err(ParamError::MalformedJson),
    }
}

struct StrictSeed<'a> {
    dup: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor { dup: self.dup })
    }
}

struct StrictVisitor<'a> {
    dup: &'a mut Option<String>,
}

impl<'de> Visitor<'de> for StrictVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed { dup: self.dup })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(StrictSeed { dup: self.dup })?;
            if obj.contains_key(&key) {
                *self.dup = Some(key);
                return Err(de::Error::custom("duplicate key"));
            }
            obj.insert(key, v);
        }
        Ok(Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JSON: Option<&str> = Some("application/json");

    fn body(method: &str, b: &str) -> Result<Params, ParamError> {
        read_params(method, None, JSON, b.as_bytes())
    }

    #[test]
    fn get_with_query_reads_query_and_ignores_body() {
        let p = read_params(
            "GET",
            Some("experiment_id=1"),
            None,
            br#"{"experiment_id":"2"}"#,
        )
        .unwrap();
        assert_eq!(p.source(), ParamSource::Query);
        assert_eq!(p.try_str_value("experiment_id").unwrap(), Some("1"));
    }

    #[test]
    fn get_with_empty_query_reads_body() {
        for q in [None, Some(""), Some("&"), Some("&&")] {
            let p = read_params("GET", q, None, br#"{"experimentId":"7"}"#).unwrap();
            assert_eq!(p.source(), ParamSource::Body, "{q:?}");
            assert_eq!(p.try_str_value("experiment_id").unwrap(), Some("7"));
        }
        // `?=` and `?a` are non-empty for Werkzeug: the body is ignored
        for q in ["=", "a"] {
            let p = read_params("GET", Some(q), None, br#"{"experiment_id":"7"}"#).unwrap();
            assert_eq!(p.source(), ParamSource::Query);
            assert!(p.get("experiment_id").is_none());
        }
        // HEAD is not GET for MLflow: the body is read
        let p = read_params(
            "HEAD",
            Some("experiment_id=1"),
            None,
            br#"{"experiment_id":"2"}"#,
        )
        .unwrap();
        assert_eq!(p.try_str_value("experiment_id").unwrap(), Some("2"));
    }

    #[test]
    fn repeated_query_keys_become_arrays() {
        let p = read_params(
            "GET",
            Some("experiment_ids=1&experiment_ids=2&x=a+b%20c&flag"),
            None,
            b"",
        )
        .unwrap();
        assert_eq!(p.try_str_values("experiment_ids").unwrap(), vec!["1", "2"]);
        assert_eq!(p.get("x"), Some(&json!("a b c")));
        assert_eq!(p.get("flag"), Some(&json!("")));
        assert!(matches!(
            p.try_str_value("experiment_ids"),
            Err(ParamError::MultipleValues(_))
        ));
        assert_eq!(p.str_values("x"), vec!["a b c"]);
    }

    #[test]
    fn query_keys_are_verbatim() {
        // MLflow only looks up snake_case names in the query string
        let p = read_params("GET", Some("experimentId=1&experiment_id=2"), None, b"").unwrap();
        assert_eq!(p.try_str_value("experiment_id").unwrap(), Some("2"));
        assert_eq!(p.get("experimentId"), Some(&json!("1")));
    }

    #[test]
    fn bad_query_encoding_is_refused() {
        for q in ["a=%zz", "a=%4", "a=%ff", "%c0%ae=1"] {
            assert_eq!(
                read_params("GET", Some(q), None, b""),
                Err(ParamError::InvalidQueryEncoding),
                "{q}"
            );
        }
    }

    #[test]
    fn camel_case_is_canonicalized_and_dual_spellings_refused() {
        let p = body(
            "POST",
            r#"{"experimentIds":["1"],"maxResults":5,"filter":"x"}"#,
        )
        .unwrap();
        assert_eq!(p.try_str_values("experiment_ids").unwrap(), vec!["1"]);
        assert_eq!(p.get("max_results"), Some(&json!(5)));
        let e = body("POST", r#"{"experiment_id":"1","experimentId":"2"}"#).unwrap_err();
        assert!(matches!(e, ParamError::ConflictingSpellings { .. }));
        assert!(
            e.to_string().contains("'experiment_id'") && e.to_string().contains("'experimentId'")
        );
        let e = body("POST", r#"{"runId":"a","run_id":"a"}"#).unwrap_err();
        assert!(matches!(e, ParamError::ConflictingSpellings { .. }));
    }

    #[test]
    fn nested_fields_accept_both_spellings_but_not_both() {
        let p = body("POST", r#"{"locations":[{"mlflowExperiment":{"experimentId":"1"}},{"mlflow_experiment":{"experiment_id":"2"}},{"type":"X"}]}"#).unwrap();
        assert_eq!(
            p.str_values_at("locations[].mlflow_experiment.experiment_id")
                .unwrap(),
            vec!["1", "2"]
        );
        let p = body("POST", r#"{"trace":{"traceInfo":{"trace_location":{"mlflow_experiment":{"experiment_id":"3"}}}}}"#).unwrap();
        assert_eq!(
            p.str_values_at("trace.trace_info.trace_location.mlflow_experiment.experiment_id")
                .unwrap(),
            vec!["3"]
        );
        let p = body("POST", r#"{"locations":[{"mlflowExperiment":{"experimentId":"1"},"mlflow_experiment":{"experiment_id":"2"}}]}"#).unwrap();
        assert!(matches!(
            p.values_at("locations[].mlflow_experiment.experiment_id"),
            Err(ParamError::ConflictingSpellings { .. })
        ));
        let p = body(
            "POST",
            r#"{"metrics":[{"key":"a","model_id":"m1"},{"key":"b","modelId":"m2"},{"key":"c"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.str_values_at("metrics[].model_id").unwrap(),
            vec!["m1", "m2"]
        );
        let p = body("POST", r#"{"metrics":[{"model_id":5}]}"#).unwrap();
        assert!(matches!(
            p.str_values_at("metrics[].model_id"),
            Err(ParamError::WrongType { .. })
        ));
    }

    #[test]
    fn run_uuid_is_an_alias_of_run_id() {
        let p = body("POST", r#"{"run_uuid":"abc"}"#).unwrap();
        assert_eq!(p.try_str_value("run_id").unwrap(), Some("abc"));
        let p = body("POST", r#"{"run_id":"","run_uuid":"abc"}"#).unwrap();
        assert_eq!(p.try_str_value("run_id").unwrap(), Some("abc"));
        let p = body("POST", r#"{"runUuid":"abc","runId":"abc"}"#).unwrap();
        assert_eq!(p.try_str_value("run_id").unwrap(), Some("abc"));
        assert_eq!(
            body("POST", r#"{"run_id":"a","run_uuid":"b"}"#),
            Err(ParamError::ConflictingRunId)
        );
        let p = read_params("GET", Some("run_uuid=abc"), None, b"").unwrap();
        assert_eq!(p.try_str_value("run_id").unwrap(), Some("abc"));
        assert_eq!(
            read_params("GET", Some("run_id=a&run_uuid=b"), None, b""),
            Err(ParamError::ConflictingRunId)
        );
    }

    #[test]
    fn json_string_bodies_are_decoded_again() {
        let p = body("POST", r#""{\"experiment_id\": \"4\"}""#).unwrap();
        assert_eq!(p.try_str_value("experiment_id").unwrap(), Some("4"));
        assert_eq!(
            body("POST", r#""null""#).unwrap().source(),
            ParamSource::None
        );
        assert_eq!(body("POST", r#""\"{}\"""#), Err(ParamError::NotAnObject));
        assert_eq!(
            body("POST", r#""not json""#),
            Err(ParamError::MalformedJson)
        );
    }

    #[test]
    fn malformed_and_non_object_bodies_are_refused() {
        assert_eq!(body("POST", "{"), Err(ParamError::MalformedJson));
        assert_eq!(body("POST", "[1]"), Err(ParamError::NotAnObject));
        assert_eq!(body("POST", "5"), Err(ParamError::NotAnObject));
        assert_eq!(body("POST", r#"{"a":NaN}"#), Err(ParamError::MalformedJson));
        assert_eq!(body("POST", "{} {}"), Err(ParamError::MalformedJson));
        assert_eq!(
            read_params("POST", None, JSON, b"\xef\xbb\xbf{}"),
            Err(ParamError::MalformedJson)
        );
        assert_eq!(
            read_params("POST", None, JSON, b"{\"a\":\"\xff\"}"),
            Err(ParamError::MalformedJson)
        );
        let e = body("POST", r#"{"experiment_id":"1","experiment_id":"2"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the request body repeats the key 'experiment_id'"
        );
        assert!(matches!(
            body("POST", r#"{"a":{"b":1,"b":2}}"#),
            Err(ParamError::DuplicateKey(_))
        ));
        assert!(matches!(
            body("POST", r#"{"a":[{"b":1,"b":2}]}"#),
            Err(ParamError::DuplicateKey(_))
        ));
        // empty body / null: an empty message, like MLflow
        assert!(body("POST", "").unwrap().is_empty());
        assert!(body("POST", " \n").unwrap().is_empty());
        assert!(body("POST", "null").unwrap().is_empty());
    }

    #[test]
    fn content_type_is_checked_like_mlflow() {
        assert_eq!(
            read_params("POST", None, None, b"{}"),
            Err(ParamError::MissingContentType)
        );
        assert_eq!(
            read_params("PUT", None, Some("text/plain"), b"{}"),
            Err(ParamError::UnsupportedContentType)
        );
        assert_eq!(
            read_params("POST", None, Some("Application/JSON"), b"{}"),
            Err(ParamError::UnsupportedContentType)
        );
        assert!(read_params("POST", None, Some("application/json; charset=utf-8"), b"{}").is_ok());
        // DELETE / PATCH bodies are read whatever their content type
        let p = read_params("DELETE", None, Some("text/plain"), br#"{"name":"m"}"#).unwrap();
        assert_eq!(p.try_str_value("name").unwrap(), Some("m"));
        let p = read_params("PATCH", None, None, br#"{"name":"m"}"#).unwrap();
        assert_eq!(p.try_str_value("name").unwrap(), Some("m"));
    }

    #[test]
    fn error_messages_do_not_leak_values() {
        let e = body("POST", r#"{"run_id":"secret-a","run_uuid":"secret-b"}"#).unwrap_err();
        assert!(!e.to_string().contains("secret"));
        let e = body("POST", "{\"we\\u0000ird\":1,\"we\\u0000ird\":2}").unwrap_err();
        assert_eq!(e.to_string(), "the request body repeats the key a field");
    }

    #[test]
    fn rewrite_helpers() {
        let mut p = body("POST", r#"{"experimentId":"1","userId":"mallory","tags":[{"key":"mlflow.user","value":"mallory"},{"key":"k","value":"v"}]}"#).unwrap();
        p.set("user_id", json!("alice"));
        p.upsert_tag("tags", "mlflow.user", "alice").unwrap();
        let out: Value = serde_json::from_slice(&p.into_json_body()).unwrap();
        assert_eq!(
            out,
            json!({"experiment_id":"1","user_id":"alice","tags":[{"key":"k","value":"v"},{"key":"mlflow.user","value":"alice"}]})
        );
        let out = set_json_field(
            "POST",
            JSON,
            br#"{"experimentId":"1","userId":"x"}"#,
            "user_id",
            json!("alice"),
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out, json!({"experiment_id":"1","user_id":"alice"}));
        let mut p = body("POST", r#"{"tags":"x"}"#).unwrap();
        assert!(p.upsert_tag("tags", "mlflow.user", "a").is_err());
    }

    #[test]
    fn camel_snake_round_trip() {
        assert_eq!(camel_to_snake("experimentId"), "experiment_id");
        assert_eq!(snake_to_camel("experiment_id"), "experimentId");
        assert_eq!(camel_to_snake("filterString1"), "filter_string1");
        assert_eq!(snake_to_camel("filter_string1"), "filterString1");
    }
}
