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
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

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
    pub fn new(name: &str) -> Self {
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
///
/// Each top-level field is kept as its JSON text and parsed whole only when asked for as a
/// [`Value`]: a body of many small objects would cost many times its size as `Value`s, so
/// nested paths ([`Params::values_at`]) and list edits ([`Params::upsert_tag`]) walk the text.
#[derive(Debug, Clone)]
pub struct Params {
    fields: BTreeMap<String, Field>,
    /// Every field parsed, once someone asked for them all ([`Params::fields`]).
    all: OnceLock<Map<String, Value>>,
    source: ParamSource,
}

/// One top-level field: its JSON text (checked strictly when the body was read), and its
/// [`Value`] once someone asked for it.
#[derive(Debug, Clone)]
struct Field {
    text: Box<RawValue>,
    value: OnceLock<Value>,
}

impl Field {
    fn from_text(text: Box<RawValue>) -> Field {
        Field {
            text,
            value: OnceLock::new(),
        }
    }

    fn from_value(value: Value) -> Field {
        let text =
            serde_json::value::to_raw_value(&value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Field {
            text,
            value: OnceLock::from(value),
        }
    }

    fn value(&self) -> &Value {
        self.value.get_or_init(|| parse_checked(&self.text))
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.source == other.source && self.fields() == other.fields()
    }
}

impl Params {
    fn empty() -> Self {
        Params::new(BTreeMap::new(), ParamSource::None)
    }

    fn new(fields: BTreeMap<String, Field>, source: ParamSource) -> Self {
        Params {
            fields,
            all: OnceLock::new(),
            source,
        }
    }

    /// Fields already parsed (a decoded OTLP export, a rebuilt trace body).
    pub(crate) fn from_fields(fields: Map<String, Value>, source: ParamSource) -> Self {
        let fields = fields
            .into_iter()
            .map(|(key, value)| (key, Field::from_value(value)))
            .collect();
        Params::new(fields, source)
    }

    /// Replaces a top-level field (canonical name).
    fn put(&mut self, field: &str, value: Field) {
        self.all = OnceLock::new();
        self.fields.insert(field.to_string(), value);
    }

    pub fn source(&self) -> ParamSource {
        self.source
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All fields, parsed whole (searches repeat them page by page).
    pub fn fields(&self) -> &Map<String, Value> {
        self.all.get_or_init(|| {
            self.fields
                .iter()
                .map(|(key, field)| (key.clone(), field.value().clone()))
                .collect()
        })
    }

    /// The value of a top-level field, parsed whole.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).map(Field::value)
    }

    /// The string values of a field: a string, or the strings of an array. Lenient (other
    /// JSON types are skipped); authorization code should use [`Params::try_str_values`].
    pub fn str_values(&self, field: &str) -> Vec<&str> {
        match self.get(field) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Like [`Params::str_values`] but refuses values that are not strings, so that no
    /// identifier MLflow might use can be skipped. `null` counts as absent.
    pub fn try_str_values(&self, field: &str) -> Result<Vec<&str>, ParamError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => strings_of(v, field),
        }
    }

    /// The single string value of a field: `None` when absent, `null` or empty; refused when
    /// it is not a string or has several values.
    pub fn try_str_value(&self, field: &str) -> Result<Option<&str>, ParamError> {
        match self.get(field) {
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

    /// Values at a field path, as JSON text: `a.b` descends into objects, `a[].b` into every
    /// element of array `a`. Below the top level both the snake_case name and its
    /// lowerCamelCase twin are accepted; both at once is refused. Missing or `null` steps
    /// yield nothing. Only the objects and arrays on the path are read, one at a time.
    pub fn values_at(&self, field_path: &str) -> Result<Vec<&RawValue>, ParamError> {
        let mut current: Vec<&RawValue> = Vec::new();
        for (n, step) in field_path.split('.').enumerate() {
            let (name, each) = match step.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (step, false),
            };
            let mut next = Vec::new();
            if n == 0 {
                next.extend(self.fields.get(name).map(|field| &*field.text));
            } else {
                for text in current {
                    next.extend(member_either_spelling(text, name)?);
                }
            }
            next.retain(|text| !is_null(text));
            current = if each {
                let mut items = Vec::new();
                for text in next {
                    match elements(text) {
                        Some(elements) => items.extend(elements),
                        None => items.push(text),
                    }
                }
                items.retain(|text| !is_null(text));
                items
            } else {
                next
            };
        }
        Ok(current)
    }

    /// String values at a field path (see [`Params::values_at`]); non-strings refused.
    pub fn str_values_at(&self, field_path: &str) -> Result<Vec<Cow<'_, str>>, ParamError> {
        let wrong = || ParamError::WrongType {
            field: FieldName::new(field_path),
            expected: "a string or an array of strings",
        };
        let mut out = Vec::new();
        for text in self.values_at(field_path)? {
            match elements(text) {
                Some(items) => {
                    for item in items.into_iter().filter(|item| !is_null(item)) {
                        out.push(string_of(item).ok_or_else(wrong)?);
                    }
                }
                None => out.push(string_of(text).ok_or_else(wrong)?),
            }
        }
        Ok(out)
    }

    /// Edits the object at a path of objects (`a.b`), each step below the top level in either
    /// spelling (see [`Params::values_at`]), and stores the edited field back. `None` (and no
    /// edit) when a step is missing or `null`; refused when a step is not an object or is
    /// spelled both ways.
    pub fn edit_object_at<R>(
        &mut self,
        path: &str,
        edit: impl FnOnce(&mut Map<String, Value>) -> Result<R, ParamError>,
    ) -> Result<Option<R>, ParamError> {
        let mut steps = path.split('.');
        let top = steps.next().unwrap_or_default();
        let Some(field) = self.fields.get(top) else {
            return Ok(None);
        };
        let mut value = field.value().clone();
        let mut current = Some(&mut value);
        for step in steps {
            let Some(Value::Object(obj)) = current else {
                return object_or_absent(current, path);
            };
            let key = field_spelling(obj, step)?;
            current = obj.get_mut(&key);
        }
        let edited = match current {
            Some(Value::Object(obj)) => edit(obj)?,
            other => return object_or_absent(other, path),
        };
        self.put(top, Field::from_value(value));
        Ok(Some(edited))
    }

    /// Sets a top-level field (canonical name), replacing any previous value.
    pub fn set(&mut self, field: &str, value: Value) {
        self.put(field, Field::from_value(value));
    }

    /// Removes a top-level field.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        self.all = OnceLock::new();
        let removed = self.fields.remove(field)?;
        Some(
            removed
                .value
                .into_inner()
                .unwrap_or_else(|| parse_checked(&removed.text)),
        )
    }

    /// Sets tag `key` to `value` in a repeated `{key, value}` field such as CreateRun's
    /// `tags`, removing any other entry with that key (so e.g. a client-supplied
    /// `mlflow.user` cannot survive). Refused when the field is not an array of objects.
    pub fn upsert_tag(&mut self, field: &str, key: &str, value: &str) -> Result<(), ParamError> {
        let wrong = || ParamError::WrongType {
            field: FieldName::new(field),
            expected: "an array of {key, value} objects",
        };
        let items = match self.fields.get(field) {
            None => Vec::new(),
            Some(existing) if is_null(&existing.text) => Vec::new(),
            Some(existing) => elements(&existing.text).ok_or_else(wrong)?,
        };
        let mut kept = Vec::with_capacity(items.len() + 1);
        for item in items {
            let tag = serde_json::from_str::<Value>(item.get()).map_err(|_| wrong())?;
            if !tag.is_object() {
                return Err(wrong());
            }
            if tag.get("key").and_then(Value::as_str) != Some(key) {
                kept.push(Cow::Borrowed(item.get()));
            }
        }
        let mut tag = Map::new();
        tag.insert("key".into(), Value::String(key.into()));
        tag.insert("value".into(), Value::String(value.into()));
        kept.push(Cow::Owned(Value::Object(tag).to_string()));
        let text = list_text(&kept);
        self.put(field, Field::from_text(text));
        Ok(())
    }

    /// Sets the `value` of every entry with key `key` in a repeated `{key, value}` field such
    /// as LogBatch's `tags`. Returns whether there was one; a field that is not an array, and
    /// entries that are not objects, are left alone.
    pub fn set_tag_values(&mut self, field: &str, key: &str, value: &str) -> bool {
        let Some(items) = self.fields.get(field).and_then(|f| elements(&f.text)) else {
            return false;
        };
        let mut forged = false;
        let mut texts = Vec::with_capacity(items.len());
        for item in items {
            match serde_json::from_str::<Value>(item.get()) {
                Ok(Value::Object(mut tag))
                    if tag.get("key").and_then(Value::as_str) == Some(key) =>
                {
                    tag.insert("value".into(), Value::from(value));
                    texts.push(Cow::Owned(Value::Object(tag).to_string()));
                    forged = true;
                }
                _ => texts.push(Cow::Borrowed(item.get())),
            }
        }
        if forged {
            let text = list_text(&texts);
            self.put(field, Field::from_text(text));
        }
        forged
    }

    /// The fields as a JSON object body (canonical keys only), for forwarding a rewritten
    /// request whose fields came from the body. Fields keep the client's text.
    pub fn into_json_body(self) -> Vec<u8> {
        let size: usize = self
            .fields
            .iter()
            .map(|(key, field)| key.len() + field.text.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'{');
        for (n, (key, field)) in self.fields.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(Value::from(key.as_str()).to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(field.text.get().as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// The value of a field's text, which passed the strict check when the body was read (so it
/// parses; `null` only stands in for the impossible).
fn parse_checked(text: &RawValue) -> Value {
    serde_json::from_str(text.get()).unwrap_or(Value::Null)
}

fn is_null(text: &RawValue) -> bool {
    text.get() == "null"
}

/// The elements of a JSON array's text; `None` when it is not an array.
fn elements(text: &RawValue) -> Option<Vec<&RawValue>> {
    if !text.get().starts_with('[') {
        return None;
    }
    serde_json::from_str(text.get()).ok()
}

/// A JSON string's value, borrowed when it has no escapes; `None` when it is not a string.
fn string_of(text: &RawValue) -> Option<Cow<'_, str>> {
    if !text.get().starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// An array's text from its elements' texts.
fn list_text(items: &[Cow<'_, str>]) -> Box<RawValue> {
    let mut out = String::with_capacity(items.iter().map(|item| item.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    RawValue::from_string(out).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The member `snake` (or its lowerCamelCase twin) of an object's text; both at once is
/// refused; nothing when `text` is not an object.
fn member_either_spelling<'a>(
    text: &'a RawValue,
    snake: &str,
) -> Result<Option<&'a RawValue>, ParamError> {
    if !text.get().starts_with('{') {
        return Ok(None);
    }
    let Ok(members) = serde_json::from_str::<BTreeMap<Cow<'a, str>, &'a RawValue>>(text.get())
    else {
        return Ok(None);
    };
    let camel = snake_to_camel(snake);
    match (
        members.get(snake),
        (camel != snake)
            .then(|| members.get(camel.as_str()))
            .flatten(),
    ) {
        (Some(_), Some(_)) => Err(ParamError::ConflictingSpellings {
            snake: FieldName::new(snake),
            camel: FieldName::new(&camel),
        }),
        (a, b) => Ok(a.or(b).copied()),
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
    let fields = fields
        .into_iter()
        .map(|(k, v)| (k, Field::from_value(v)))
        .collect();
    Params::new(fields, source)
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
    check_strict_json(body)?;
    let decoded;
    let mut document = body;
    if decode_twice && first_byte(body) == Some(b'"') {
        decoded = serde_json::from_slice::<String>(body).map_err(|_| ParamError::MalformedJson)?;
        check_strict_json(decoded.as_bytes())?;
        document = decoded.as_bytes();
    }
    match first_byte(document) {
        Some(b'n') => Ok(Params::empty()),
        Some(b'{') => Ok(Params::new(top_level_fields(document)?, ParamSource::Body)),
        _ => Err(ParamError::NotAnObject),
    }
}

/// The first byte of a JSON text that is not whitespace.
fn first_byte(json: &[u8]) -> Option<u8> {
    json.iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The members of a strictly checked JSON object (no key twice), each kept as its text.
fn top_level_fields(document: &[u8]) -> Result<BTreeMap<String, Field>, ParamError> {
    let text = std::str::from_utf8(document).map_err(|_| ParamError::MalformedJson)?;
    let members = serde_json::from_str::<BTreeMap<String, &RawValue>>(text)
        .map_err(|_| ParamError::MalformedJson)?;
    Ok(members
        .into_iter()
        .map(|(key, value)| (key, Field::from_text(value.to_owned())))
        .collect())
}

fn canonicalize_keys(fields: &mut BTreeMap<String, Field>) -> Result<(), ParamError> {
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

fn merge_run_uuid(fields: &mut BTreeMap<String, Field>) -> Result<(), ParamError> {
    let absent = |v: Option<&Field>| match v.map(Field::value) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if absent(fields.get("run_uuid")) {
        return Ok(());
    }
    if absent(fields.get("run_id")) {
        let uuid = fields.get("run_uuid").cloned();
        if let Some(uuid) = uuid {
            fields.insert("run_id".to_string(), uuid);
        }
        return Ok(());
    }
    if fields.get("run_id").map(Field::value) != fields.get("run_uuid").map(Field::value) {
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
    check_strict_json(bytes)?;
    serde_json::from_slice(bytes).map_err(|_| ParamError::MalformedJson)
}

/// Checks JSON as [`parse_strict_json`] does without building it: memory stays that of the
/// keys of one object at a time.
fn check_strict_json(bytes: &[u8]) -> Result<(), ParamError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut dup: Option<String> = None;
    let checked = StrictCheck { dup: &mut dup }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match (checked, dup) {
        (_, Some(key)) => Err(ParamError::DuplicateKey(FieldName::new(&key))),
        (Ok(()), None) => Ok(()),
        (Err(_), None) => Err(ParamError::MalformedJson),
    }
}

struct StrictCheck<'a> {
    dup: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for StrictCheck<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictCheck<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("non-finite number"))
        }
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(StrictCheck { dup: self.dup })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            map.next_value_seed(StrictCheck { dup: self.dup })?;
            if keys.contains(&key) {
                *self.dup = Some(key.into_owned());
                return Err(de::Error::custom("duplicate key"));
            }
            keys.insert(key);
        }
        Ok(())
    }
}

/// An object key, borrowed from the input unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
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
    fn nested_paths_decode_escapes_and_skip_nulls_and_non_objects() {
        let p = body(
            "POST",
            r#"{"metrics":[{"modelId":"m1"},{"model_id":"m\u0032"},null,{"key":"k"},7],"run_id":"r"}"#,
        )
        .unwrap();
        assert_eq!(p.str_values_at("metrics[].model_id").unwrap(), ["m1", "m2"]);
        assert_eq!(p.str_values_at("run_id").unwrap(), ["r"]);
        assert!(p.str_values_at("absent[].x").unwrap().is_empty());
    }

    #[test]
    fn rewritten_bodies_keep_the_clients_text_of_everything_else() {
        let mut p = body(
            "POST",
            r#"{"run_id":"r","metrics":[{"key":"m","value":1.0e2}],"tags":[{"key":"k","value":"v"},{"key":"mlflow.user","value":"mallory"}]}"#,
        )
        .unwrap();
        assert!(p.set_tag_values("tags", "mlflow.user", "alice"));
        assert!(!p.set_tag_values("metrics", "mlflow.user", "alice"));
        assert_eq!(
            String::from_utf8(p.into_json_body()).unwrap(),
            r#"{"metrics":[{"key":"m","value":1.0e2}],"run_id":"r","tags":[{"key":"k","value":"v"},{"key":"mlflow.user","value":"alice"}]}"#
        );
    }

    #[test]
    fn all_fields_follow_changes() {
        let mut p = body("POST", r#"{"max_results":5,"filter":"x"}"#).unwrap();
        assert_eq!(
            p.fields(),
            json!({"max_results":5,"filter":"x"}).as_object().unwrap()
        );
        p.set("filter", json!("y"));
        assert_eq!(p.remove("max_results"), Some(json!(5)));
        assert_eq!(p.fields(), json!({"filter":"y"}).as_object().unwrap());
    }

    #[test]
    fn camel_snake_round_trip() {
        assert_eq!(camel_to_snake("experimentId"), "experiment_id");
        assert_eq!(snake_to_camel("experiment_id"), "experimentId");
        assert_eq!(camel_to_snake("filterString1"), "filter_string1");
        assert_eq!(snake_to_camel("filter_string1"), "filterString1");
    }
}
