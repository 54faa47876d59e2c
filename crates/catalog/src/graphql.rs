//! `/graphql` requests, field by field: which MLflow operation each root field performs, on
//! which identifiers, and which parts of the answer reach other resources.
//!
//! MLflow's `/graphql` handler (GET and POST alike) reads the JSON **body**
//! `{"query": ..., "variables": ..., "operationName": ...}` and executes the selected operation
//! with graphene against a fixed schema (`mlflow/server/graphql/` of MLflow 3.17.2). Each root
//! field calls the same `*_impl` function as a REST route, with the field's `input` argument as
//! the request message, so [`graphql_request`] maps each root field to that REST twin and reads
//! its `input` (variables substituted, camelCase → snake_case) exactly as the REST route's body
//! would be read ([`crate::read_params_for`]). The gateway then resolves and decides each
//! field like the REST request it amounts to: every field must be allowed.
//!
//! Two nested resolvers of a run reach other resources and are reported too:
//! `experiment` (MLflow's `GetExperiment` on the run's experiment, [`GraphQlField::reads_experiment`])
//! and `modelVersions` (a `SearchModelVersions` over every registered model, whose items the
//! gateway filters: [`GraphQlField::model_versions`]); `mlflowSearchModelVersions` is filtered
//! the same way, and refilled page by page ([`GraphQlField::paging`]). Where each root field's
//! `input` is written (variables, or ranges of the query's text) is recorded, so the gateway can
//! change its fields before forwarding ([`GraphQlRewrite`]).
//!
//! The document is parsed by `apollo-parser` (spec-compliant, with recursion and token limits);
//! anything mlgate cannot read exactly as graphql-core would (a syntax error, an undefined
//! variable or fragment, an ambiguous operation, an argument of the wrong type, an unknown
//! root field, a response key that could disguise one field as another) is refused.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use apollo_parser::Parser;
use apollo_parser::cst::{self, CstNode};
use serde_json::{Map, Value};

use crate::catalog::{Classified, GRAPHQL_MUTATION_OPERATION, Route, classify};
use crate::params::{Params, camel_to_snake, parse_strict_json, read_params_for};

/// `mlflow:GraphQLQuery`'s operation: a root field with no REST twin and no data
/// (`test`, `__typename`, introspection).
pub const GRAPHQL_QUERY_OPERATION: &str = "GraphQLQuery";

/// Deepest GraphQL nesting parsed (MLflow itself executes at most depth 10).
const MAX_RECURSION: usize = 64;
/// Most lexical tokens in a document.
const MAX_TOKENS: usize = 20_000;
/// Most root fields in the executed operation (each is resolved and decided).
pub const MAX_ROOT_FIELDS: usize = 50;
/// Most selections visited while expanding fragments.
const MAX_SELECTIONS: usize = 10_000;

/// The kind of a GraphQL operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// The operation MLflow will execute, root field by root field.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphQlRequest {
    pub kind: OperationKind,
    pub fields: Vec<GraphQlField>,
}

/// One root field of the executed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphQlField {
    /// Its key in the answer's `data` (the alias, or the field name).
    pub key: String,
    /// The schema field (`mlflowGetRun`, ...).
    pub name: &'static str,
    /// The MLflow operation it performs: a REST twin's, or [`GRAPHQL_QUERY_OPERATION`] /
    /// [`GRAPHQL_MUTATION_OPERATION`] for fields that touch no resource.
    pub operation: &'static str,
    /// The REST route performing the same operation, whose request the `input` argument is.
    pub route: Option<&'static Route>,
    /// The `input` argument read as that route's request fields.
    pub params: Option<Params>,
    /// A run's `experiment` is selected: `GetExperiment` on the runs' experiment(s).
    pub reads_experiment: bool,
    /// Where lists of model versions are in the answer, to be filtered item by item.
    pub model_versions: Vec<ModelVersionList>,
    /// Where its `input` is written, to change its fields before the request is forwarded.
    input: InputSource,
    /// A paged search whose one list of model versions mlgate refills
    /// (`mlflowSearchModelVersions`): where its page token is.
    pub paging: Option<Paging>,
}

/// Where a paged search's `nextPageToken` is: mlgate asks for it (selecting it when the query
/// does not) to fetch further pages, and answers with its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// The response key of `nextPageToken`, if the query selects it.
    pub token_key: Option<String>,
    /// Where `nextPageToken` is inserted into the field's selection (after its `{`).
    selection_open: usize,
}

/// The response key mlgate reads a page token from.
pub const NEXT_PAGE_TOKEN: &str = "nextPageToken";

/// Where a root field's `input` argument is written.
#[derive(Debug, Clone, PartialEq)]
enum InputSource {
    /// No `input`: one is inserted at this offset of the query (after the field's name).
    Absent(usize),
    /// `input: $name`: the whole object is a variable, whose value (as the request gives it,
    /// or its default) is this.
    Variable {
        name: String,
        value: Map<String, Value>,
    },
    /// `input: {...}` in the query: fields are inserted at `open` (after the `{`); each field
    /// written is a variable or a literal at a range of the query.
    Object {
        open: usize,
        fields: Vec<(String, InputValue)>,
    },
    /// `input: null` in the query, at this range.
    Null(Range<usize>),
}

#[derive(Debug, Clone, PartialEq)]
enum InputValue {
    Variable(String),
    Literal(Range<usize>),
}

/// Changes to the `input` of root fields of a `/graphql` body, applied to it at once
/// ([`GraphQlRewrite::apply`]): literals replaced in the query text, variables set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GraphQlRewrite {
    /// Non-overlapping ranges of the query and their new text.
    edits: Vec<(Range<usize>, String)>,
    variables: Map<String, Value>,
}

impl GraphQlRewrite {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && self.variables.is_empty()
    }

    fn edit(&mut self, range: Range<usize>, text: String) -> Result<(), GraphQlError> {
        if let Some((_, earlier)) = self.edits.iter().find(|(r, _)| *r == range) {
            return match *earlier == text {
                true => Ok(()),
                false => Err(GraphQlError::ConflictingRewrite),
            };
        }
        let overlaps = |r: &Range<usize>| r.start < range.end && range.start < r.end;
        if self.edits.iter().any(|(r, _)| overlaps(r)) {
            return Err(GraphQlError::ConflictingRewrite);
        }
        self.edits.push((range, text));
        Ok(())
    }

    /// A variable shared by fields must come out the same for each of them.
    fn set_variable(&mut self, name: &str, value: Value) -> Result<(), GraphQlError> {
        match self.variables.get(name) {
            Some(earlier) if *earlier != value => Err(GraphQlError::ConflictingRewrite),
            _ => {
                self.variables.insert(name.to_owned(), value);
                Ok(())
            }
        }
    }

    /// The body with the changes made: `query` edited, `variables` set.
    pub fn apply(&self, body: &[u8]) -> Result<Vec<u8>, GraphQlError> {
        let Ok(Value::Object(mut obj)) = parse_strict_json(body) else {
            return Err(GraphQlError::BadBody);
        };
        let Some(Value::String(query)) = obj.get_mut("query") else {
            return Err(GraphQlError::BadBody);
        };
        let mut edits: Vec<_> = self.edits.iter().collect();
        edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
        for (range, text) in edits {
            if query.get(range.clone()).is_none() {
                return Err(GraphQlError::BadBody);
            }
            query.replace_range(range.clone(), text);
        }
        if !self.variables.is_empty() {
            let variables = obj
                .entry("variables")
                .and_modify(|v| {
                    if v.is_null() {
                        *v = Value::Object(Map::new());
                    }
                })
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(variables) = variables else {
                return Err(GraphQlError::BadBody);
            };
            for (name, value) in &self.variables {
                variables.insert(name.clone(), value.clone());
            }
        }
        serde_json::to_vec(&Value::Object(obj)).map_err(|_| GraphQlError::BadBody)
    }
}

/// A JSON string, number or list of them as a GraphQL literal (the syntaxes agree on these),
/// followed by a space so that it never runs into the next token.
fn literal(value: &Value) -> String {
    format!("{value} ")
}

impl GraphQlField {
    /// `mlflow:<Operation>`.
    pub fn action(&self) -> String {
        format!("mlflow:{}", self.operation)
    }

    /// Sets fields of its `input` (camelCase names; strings, numbers or lists of them) in
    /// `rewrite`, where the request writes them: the variable holding the value or the whole
    /// `input`, or the query's text.
    pub fn set_input(
        &self,
        values: &[(&str, Value)],
        rewrite: &mut GraphQlRewrite,
    ) -> Result<(), GraphQlError> {
        let pairs = |values: &[&(&str, Value)]| {
            values
                .iter()
                .map(|(name, value)| format!("{name}: {}", literal(value)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.input {
            InputSource::Absent(at) => {
                let all: Vec<_> = values.iter().collect();
                rewrite.edit(*at..*at, format!("(input: {{{}}})", pairs(&all)))
            }
            InputSource::Null(range) => {
                let all: Vec<_> = values.iter().collect();
                rewrite.edit(range.clone(), format!("{{{}}} ", pairs(&all)))
            }
            InputSource::Variable { name, value } => {
                let mut input = value.clone();
                for (key, v) in values {
                    input.insert((*key).to_owned(), v.clone());
                }
                rewrite.set_variable(name, Value::Object(input))
            }
            InputSource::Object { open, fields } => {
                let mut missing = Vec::new();
                for pair @ (key, value) in values {
                    match fields.iter().find(|(name, _)| name == key).map(|(_, v)| v) {
                        Some(InputValue::Variable(name)) => {
                            rewrite.set_variable(name, value.clone())?
                        }
                        Some(InputValue::Literal(range)) => {
                            rewrite.edit(range.clone(), literal(value))?
                        }
                        None => missing.push(pair),
                    }
                }
                match missing.is_empty() {
                    true => Ok(()),
                    false => rewrite.edit(*open..*open, format!("{}, ", pairs(&missing))),
                }
            }
        }
    }

    /// Asks for the upstream page at `token` (`""`: the first) of `size` items, and for its
    /// [`NEXT_PAGE_TOKEN`] (selected if the query does not).
    pub fn page_at(
        &self,
        token: &str,
        size: u64,
        rewrite: &mut GraphQlRewrite,
    ) -> Result<(), GraphQlError> {
        let values = [
            ("pageToken", Value::from(token)),
            ("maxResults", Value::from(size)),
        ];
        self.set_input(&values, rewrite)?;
        match &self.paging {
            Some(Paging {
                token_key: None,
                selection_open,
            }) => {
                let at = *selection_open;
                rewrite.edit(at..at, format!("{NEXT_PAGE_TOKEN} "))
            }
            _ => Ok(()),
        }
    }
}

/// A list of model versions in the answer: `data.<path...>`, arrays crossed element-wise; the
/// items carry the model name under `name_key` and the version under `version_key` (when the
/// query selects them; items without them are never kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersionList {
    pub path: Vec<String>,
    pub name_key: Option<String>,
    pub version_key: Option<String>,
}

impl ModelVersionList {
    /// Keeps, in `data` (the answer's `data` object), the items of this list for which
    /// `keep(name, version)` is true; items without a string name and version are removed.
    pub fn retain(&self, data: &mut Value, keep: &mut dyn FnMut(&str, &str) -> bool) {
        retain_at(
            data,
            &self.path,
            &mut |item: &Value| match self.identity(item) {
                Some((name, version)) => keep(name, version),
                None => false,
            },
        );
    }

    /// An item's model name and version, when selected and strings.
    pub fn identity<'a>(&self, item: &'a Value) -> Option<(&'a str, &'a str)> {
        let text = |key: &Option<String>| key.as_ref().and_then(|k| item.get(k)?.as_str());
        Some((text(&self.name_key)?, text(&self.version_key)?))
    }
}

fn retain_at(value: &mut Value, path: &[String], keep: &mut dyn FnMut(&Value) -> bool) {
    match value {
        Value::Array(items) => match path {
            [] => items.retain(|item| keep(item)),
            _ => items.iter_mut().for_each(|v| retain_at(v, path, keep)),
        },
        Value::Object(map) => {
            if let [first, rest @ ..] = path
                && let Some(inner) = map.get_mut(first)
            {
                retain_at(inner, rest, keep);
            }
        }
        _ => {}
    }
}

/// Why a GraphQL body is refused (safe to show: names at most a schema field, never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphQlError {
    #[error(
        "the GraphQL request body must be a JSON object with a string 'query', an object 'variables' and a string 'operationName'"
    )]
    BadBody,
    #[error("the GraphQL document could not be parsed")]
    Syntax,
    #[error("the GraphQL document is too deep or too large")]
    TooLarge,
    #[error("the GraphQL document has no operation named by 'operationName'")]
    NoOperation,
    #[error("the GraphQL document has several operations: name one with 'operationName'")]
    AmbiguousOperation,
    #[error("the GraphQL document uses an undefined variable or fragment")]
    Undefined,
    #[error("GraphQL field '{0}' is not allowed through mlgate: unknown root field")]
    UnknownField(String),
    #[error("GraphQL field '{0}' has an argument mlgate cannot read")]
    BadArgument(&'static str),
    #[error("GraphQL field '{field}': {error}")]
    Params {
        field: &'static str,
        error: crate::ParamError,
    },
    #[error("the GraphQL document reuses the response key '{0}' for different fields")]
    AmbiguousKey(String),
    #[error(
        "the GraphQL document uses one variable or value for fields that mlgate must change differently"
    )]
    ConflictingRewrite,
}

/// What a known root field is.
struct RootSpec {
    name: &'static str,
    query: bool,
    mutation: bool,
    /// The REST twin: method and path in the catalog; `None` for fields on no resource.
    rest: Option<(&'static str, &'static str)>,
    /// Without a REST twin: [`GRAPHQL_QUERY_OPERATION`] or [`GRAPHQL_MUTATION_OPERATION`].
    operation: &'static str,
    /// The arguments graphene accepts (`input` is the request message).
    arguments: &'static [&'static str],
    /// Fields of `input`: (camelCase name, type).
    input: &'static [(&'static str, InputType)],
    /// The answer's field holding runs (`run` or `runs`), or model versions.
    nested: Nested,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum InputType {
    String,
    Strings,
    /// Checked by graphene, irrelevant to authorization.
    Other,
    /// A list of anything (`orderBy`).
    List,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nested {
    None,
    Runs(&'static str),
    ModelVersions(&'static str),
}

use InputType as T;

const SEARCH_RUNS_INPUT: &[(&str, InputType)] = &[
    ("experimentIds", T::Strings),
    ("filter", T::String),
    ("runViewType", T::Other),
    ("maxResults", T::Other),
    ("orderBy", T::List),
    ("pageToken", T::String),
];

/// A root field: name, kinds it is a field of, REST twin, operation, arguments, input, answer.
const fn root(
    name: &'static str,
    (query, mutation): (bool, bool),
    rest: Option<(&'static str, &'static str)>,
    operation: &'static str,
    arguments: &'static [&'static str],
    input: &'static [(&'static str, InputType)],
    nested: Nested,
) -> RootSpec {
    RootSpec {
        name,
        query,
        mutation,
        rest,
        operation,
        arguments,
        input,
        nested,
    }
}

const QUERY: (bool, bool) = (true, false);
const MUTATION: (bool, bool) = (false, true);
const BOTH: (bool, bool) = (true, true);
const INPUT: &[&str] = &["input"];
const RUN_INPUT: &[(&str, InputType)] = &[("runId", T::String), ("runUuid", T::String)];
const ARTIFACTS_INPUT: &[(&str, InputType)] = &[
    ("runId", T::String),
    ("runUuid", T::String),
    ("path", T::String),
    ("pageToken", T::String),
];
const BULK_INTERVAL_INPUT: &[(&str, InputType)] = &[
    ("runIds", T::Strings),
    ("metricKey", T::String),
    ("startStep", T::Other),
    ("endStep", T::Other),
    ("maxResults", T::Other),
];
const SEARCH_VERSIONS_INPUT: &[(&str, InputType)] = &[
    ("filter", T::String),
    ("maxResults", T::Other),
    ("orderBy", T::List),
    ("pageToken", T::String),
];

/// Every root field of MLflow 3.17.2's schema (`graphql_schema_extensions.schema`).
#[rustfmt::skip]
static ROOT_FIELDS: &[RootSpec] = &[
    root("mlflowGetExperiment", QUERY, Some(("GET", "/api/2.0/mlflow/experiments/get")), "GetExperiment", INPUT, &[("experimentId", T::String)], Nested::None),
    root("mlflowGetMetricHistoryBulkInterval", QUERY, Some(("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval")), "GetMetricHistoryBulkInterval", INPUT, BULK_INTERVAL_INPUT, Nested::None),
    root("mlflowGetRun", QUERY, Some(("GET", "/api/2.0/mlflow/runs/get")), "GetRun", INPUT, RUN_INPUT, Nested::Runs("run")),
    root("mlflowListArtifacts", QUERY, Some(("GET", "/api/2.0/mlflow/artifacts/list")), "ListArtifacts", INPUT, ARTIFACTS_INPUT, Nested::None),
    root("mlflowSearchModelVersions", QUERY, Some(("GET", "/api/2.0/mlflow/model-versions/search")), "SearchModelVersions", INPUT, SEARCH_VERSIONS_INPUT, Nested::ModelVersions("modelVersions")),
    root("mlflowSearchRuns", BOTH, Some(("POST", "/api/2.0/mlflow/runs/search")), "SearchRuns", INPUT, SEARCH_RUNS_INPUT, Nested::Runs("runs")),
    root("mlflowSearchDatasets", MUTATION, Some(("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets")), "SearchDatasets", INPUT, &[("experimentIds", T::Strings)], Nested::None),
    root("test", QUERY, None, GRAPHQL_QUERY_OPERATION, &["inputString"], &[], Nested::None),
    root("testMutation", MUTATION, None, GRAPHQL_MUTATION_OPERATION, &["inputString"], &[], Nested::None),
    root("__typename", BOTH, None, GRAPHQL_QUERY_OPERATION, &[], &[], Nested::None),
    root("__schema", QUERY, None, GRAPHQL_QUERY_OPERATION, &[], &[], Nested::None),
    root("__type", QUERY, None, GRAPHQL_QUERY_OPERATION, &["name"], &[], Nested::None),
];

/// The root field names mlgate knows, for documentation and tests.
pub fn graphql_root_fields() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROOT_FIELDS.iter().map(|s| (s.name, s.operation))
}

/// Reads a `/graphql` request body: the operation MLflow will execute and, for each of its
/// root fields, the operation and request fields it amounts to.
pub fn graphql_request(body: &[u8]) -> Result<GraphQlRequest, GraphQlError> {
    let Ok(Value::Object(obj)) = parse_strict_json(body) else {
        return Err(GraphQlError::BadBody);
    };
    let Some(Value::String(query)) = obj.get("query") else {
        return Err(GraphQlError::BadBody);
    };
    let operation_name = match obj.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(GraphQlError::BadBody),
    };
    let empty = Map::new();
    let variables = match obj.get("variables") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(v)) => v,
        Some(_) => return Err(GraphQlError::BadBody),
    };

    let tree = Parser::new(query)
        .recursion_limit(MAX_RECURSION)
        .token_limit(MAX_TOKENS)
        .parse();
    if tree.errors().any(|e| e.is_limit()) {
        return Err(GraphQlError::TooLarge);
    }
    if tree.errors().next().is_some() {
        return Err(GraphQlError::Syntax);
    }
    let mut operations = Vec::new();
    let mut fragments = HashMap::new();
    for definition in tree.document().definitions() {
        match definition {
            cst::Definition::OperationDefinition(op) => operations.push(op),
            cst::Definition::FragmentDefinition(fragment) => {
                let name = fragment
                    .fragment_name()
                    .and_then(|n| n.name())
                    .ok_or(GraphQlError::Syntax)?;
                let set = fragment.selection_set().ok_or(GraphQlError::Syntax)?;
                if fragments.insert(name.text().to_string(), set).is_some() {
                    return Err(GraphQlError::Undefined);
                }
            }
            // Type-system definitions: not an executable document.
            _ => return Err(GraphQlError::Syntax),
        }
    }
    let operation = select_operation(operations, operation_name)?;
    let kind = match operation.operation_type() {
        None => OperationKind::Query,
        Some(t) if t.query_token().is_some() => OperationKind::Query,
        Some(t) if t.mutation_token().is_some() => OperationKind::Mutation,
        Some(_) => OperationKind::Subscription,
    };
    let scope = Scope::new(&operation, variables)?;
    let mut walker = Walker {
        fragments: &fragments,
        budget: MAX_SELECTIONS,
    };
    let set = operation.selection_set().ok_or(GraphQlError::Syntax)?;
    let roots = walker.fields(&set)?;
    if roots.len() > MAX_ROOT_FIELDS {
        return Err(GraphQlError::TooLarge);
    }
    let mut fields: Vec<GraphQlField> = Vec::with_capacity(roots.len());
    for field in &roots {
        let field = root_field(field, kind, &scope, &mut walker)?;
        // A refilled search is answered under its key alone.
        if fields
            .iter()
            .any(|f| f.key == field.key && (f.paging.is_some() || field.paging.is_some()))
        {
            return Err(GraphQlError::AmbiguousKey(field.key));
        }
        fields.push(field);
    }
    Ok(GraphQlRequest { kind, fields })
}

fn select_operation(
    operations: Vec<cst::OperationDefinition>,
    name: Option<&str>,
) -> Result<cst::OperationDefinition, GraphQlError> {
    let named = |op: &cst::OperationDefinition| op.name().map(|n| n.text().to_string());
    let mut names = HashSet::new();
    for op in &operations {
        // graphql-core refuses two operations of one name, and an anonymous one among others.
        let unique = match named(op) {
            Some(n) => names.insert(n),
            None => operations.len() == 1,
        };
        if !unique {
            return Err(GraphQlError::AmbiguousOperation);
        }
    }
    match name {
        Some(name) => operations
            .into_iter()
            .find(|op| named(op).as_deref() == Some(name))
            .ok_or(GraphQlError::NoOperation),
        None => {
            let mut ops = operations.into_iter();
            match (ops.next(), ops.next()) {
                (Some(op), None) => Ok(op),
                (None, _) => Err(GraphQlError::NoOperation),
                (Some(_), Some(_)) => Err(GraphQlError::AmbiguousOperation),
            }
        }
    }
}

/// The operation's variables: the request's values, else the definitions' defaults.
struct Scope {
    values: HashMap<String, Value>,
}

impl Scope {
    fn new(
        operation: &cst::OperationDefinition,
        given: &Map<String, Value>,
    ) -> Result<Scope, GraphQlError> {
        let mut values = HashMap::new();
        let none = Scope {
            values: HashMap::new(),
        };
        if let Some(defs) = operation.variable_definitions() {
            for def in defs.variable_definitions() {
                let name = def
                    .variable()
                    .and_then(|v| v.name())
                    .ok_or(GraphQlError::Syntax)?
                    .text()
                    .to_string();
                let value = match given.get(&name) {
                    Some(v) => v.clone(),
                    None => match def.default_value().and_then(|d| d.value()) {
                        Some(default) => none.json(&default)?,
                        None => Value::Null,
                    },
                };
                if values.insert(name, value).is_some() {
                    return Err(GraphQlError::Undefined);
                }
            }
        }
        Ok(Scope { values })
    }

    /// An argument value as JSON, variables substituted.
    fn json(&self, value: &cst::Value) -> Result<Value, GraphQlError> {
        Ok(match value {
            cst::Value::Variable(v) => {
                let name = v.name().ok_or(GraphQlError::Syntax)?;
                self.values
                    .get(name.text().as_str())
                    .cloned()
                    .ok_or(GraphQlError::Undefined)?
            }
            cst::Value::StringValue(s) => Value::String(String::from(s)),
            cst::Value::IntValue(i) => {
                let text = i.syntax().text().to_string();
                Value::from(text.parse::<i64>().map_err(|_| GraphQlError::Syntax)?)
            }
            cst::Value::FloatValue(f) => {
                let text = f.syntax().text().to_string();
                let n = text.parse::<f64>().map_err(|_| GraphQlError::Syntax)?;
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or(GraphQlError::Syntax)?
            }
            cst::Value::BooleanValue(b) => Value::Bool(b.true_token().is_some()),
            cst::Value::NullValue(_) => Value::Null,
            cst::Value::EnumValue(e) => {
                Value::String(e.name().ok_or(GraphQlError::Syntax)?.text().to_string())
            }
            cst::Value::ListValue(list) => Value::Array(
                list.values()
                    .map(|v| self.json(&v))
                    .collect::<Result<_, _>>()?,
            ),
            cst::Value::ObjectValue(obj) => {
                let mut map = Map::new();
                for field in obj.object_fields() {
                    let name = field.name().ok_or(GraphQlError::Syntax)?;
                    let value = field.value().ok_or(GraphQlError::Syntax)?;
                    if map
                        .insert(name.text().to_string(), self.json(&value)?)
                        .is_some()
                    {
                        // graphql-core: "There can be only one input field named ..."
                        return Err(GraphQlError::Syntax);
                    }
                }
                Value::Object(map)
            }
        })
    }
}

/// A field selected (fragments expanded), with its response key.
struct Selected {
    key: String,
    name: String,
    field: cst::Field,
}

struct Walker<'a> {
    fragments: &'a HashMap<String, cst::SelectionSet>,
    budget: usize,
}

impl Walker<'_> {
    /// The fields of a selection set, named and inline fragments expanded (whatever their type
    /// condition: a superset of what executes), in document order.
    fn fields(&mut self, set: &cst::SelectionSet) -> Result<Vec<Selected>, GraphQlError> {
        let mut out = Vec::new();
        let mut visited: HashSet<String> = HashSet::new();
        let mut stack: Vec<cst::Selection> = set.selections().collect();
        stack.reverse();
        while let Some(selection) = stack.pop() {
            self.budget = self.budget.checked_sub(1).ok_or(GraphQlError::TooLarge)?;
            match selection {
                cst::Selection::Field(field) => {
                    let name = field.name().ok_or(GraphQlError::Syntax)?.text().to_string();
                    let key = match field.alias().and_then(|a| a.name()) {
                        Some(alias) => alias.text().to_string(),
                        None => name.clone(),
                    };
                    out.push(Selected { key, name, field });
                }
                cst::Selection::InlineFragment(inline) => {
                    let inner = inline.selection_set().ok_or(GraphQlError::Syntax)?;
                    stack.extend(inner.selections().collect::<Vec<_>>().into_iter().rev());
                }
                cst::Selection::FragmentSpread(spread) => {
                    let name = spread
                        .fragment_name()
                        .and_then(|n| n.name())
                        .ok_or(GraphQlError::Syntax)?
                        .text()
                        .to_string();
                    let inner = self.fragments.get(&name).ok_or(GraphQlError::Undefined)?;
                    if visited.insert(name) {
                        stack.extend(inner.selections().collect::<Vec<_>>().into_iter().rev());
                    }
                }
            }
        }
        Ok(out)
    }

    /// The fields selected under every selection of `field` named `name` among `selected`.
    fn children(
        &mut self,
        selected: &[Selected],
        name: &str,
    ) -> Result<Vec<(String, Vec<Selected>)>, GraphQlError> {
        let mut out = Vec::new();
        for s in selected.iter().filter(|s| s.name == name) {
            let inner = match s.field.selection_set() {
                Some(set) => self.fields(&set)?,
                None => Vec::new(),
            };
            out.push((s.key.clone(), inner));
        }
        Ok(out)
    }

    /// Lists of model versions selected as `field` among `selected`, under `path`.
    fn model_version_lists(
        &mut self,
        selected: &[Selected],
        field: &str,
        path: &[String],
        out: &mut Vec<ModelVersionList>,
    ) -> Result<(), GraphQlError> {
        let lists = self.children(selected, field)?;
        let mut by_key: Vec<(String, Vec<Selected>)> = Vec::new();
        for (key, inner) in lists {
            match by_key.iter_mut().find(|(k, _)| *k == key) {
                Some((_, all)) => all.extend(inner),
                None => by_key.push((key, inner)),
            }
        }
        for (key, inner) in by_key {
            let mut path = path.to_vec();
            path.push(key);
            out.push(ModelVersionList {
                path,
                name_key: identifying_key(&inner, "name")?,
                version_key: identifying_key(&inner, "version")?,
            });
        }
        Ok(())
    }
}

/// The response key of field `name` in a merged selection; refused when another field shares
/// that key or is aliased to `name` (so an alias cannot pass one field's value off as
/// another's).
fn identifying_key(selected: &[Selected], name: &str) -> Result<Option<String>, GraphQlError> {
    if selected.iter().any(|s| s.key == name && s.name != name) {
        return Err(GraphQlError::AmbiguousKey(name.to_owned()));
    }
    let Some(key) = selected.iter().find(|s| s.name == name).map(|s| &s.key) else {
        return Ok(None);
    };
    if selected.iter().any(|s| s.key == *key && s.name != name) {
        return Err(GraphQlError::AmbiguousKey(key.clone()));
    }
    Ok(Some(key.clone()))
}

fn root_field(
    selected: &Selected,
    kind: OperationKind,
    scope: &Scope,
    walker: &mut Walker<'_>,
) -> Result<GraphQlField, GraphQlError> {
    let spec = ROOT_FIELDS
        .iter()
        .find(|s| {
            s.name == selected.name
                && match kind {
                    OperationKind::Query => s.query,
                    OperationKind::Mutation => s.mutation,
                    OperationKind::Subscription => false,
                }
        })
        .ok_or_else(|| GraphQlError::UnknownField(unknown_name(&selected.name)))?;

    let mut input = None;
    let name_end = selected
        .field
        .name()
        .map(|n| text_range(&n).end)
        .ok_or(GraphQlError::Syntax)?;
    let mut source = InputSource::Absent(name_end);
    if let Some(arguments) = selected.field.arguments() {
        for argument in arguments.arguments() {
            let name = argument.name().ok_or(GraphQlError::Syntax)?;
            let name = name.text();
            if !spec.arguments.contains(&name.as_str()) {
                return Err(GraphQlError::BadArgument(spec.name));
            }
            if name == "input" {
                let value = argument.value().ok_or(GraphQlError::Syntax)?;
                if input.replace(scope.json(&value)?).is_some() {
                    return Err(GraphQlError::BadArgument(spec.name));
                }
                source = input_source(&value, scope)?;
            }
        }
    }
    let (route, params) = match spec.rest {
        Some((method, path)) => {
            let Classified::Route { route, .. } = classify(method, path) else {
                return Err(GraphQlError::UnknownField(spec.name.to_owned()));
            };
            let body = request_fields(spec, input.unwrap_or(Value::Null))?;
            let params = read_params_for(
                route,
                "POST",
                None,
                Some("application/json"),
                &serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
            )
            .map_err(|error| GraphQlError::Params {
                field: spec.name,
                error,
            })?;
            (Some(route), Some(params))
        }
        None => (None, None),
    };

    let mut reads_experiment = false;
    let mut model_versions = Vec::new();
    let mut paging = None;
    let root_path = vec![selected.key.clone()];
    let answer = match selected.field.selection_set() {
        Some(set) => walker.fields(&set)?,
        None => Vec::new(),
    };
    match spec.nested {
        Nested::None => {}
        Nested::ModelVersions(field) => {
            walker.model_version_lists(&answer, field, &root_path, &mut model_versions)?;
            let open = selected
                .field
                .selection_set()
                .and_then(|set| set.l_curly_token())
                .map(|t| usize::from(t.text_range().end()));
            // One list selected once: refilled; several lists of different selections are
            // only filtered.
            if let (Some(selection_open), [_]) = (open, &model_versions[..]) {
                paging = Some(Paging {
                    token_key: identifying_key(&answer, NEXT_PAGE_TOKEN)?,
                    selection_open,
                });
            }
        }
        Nested::Runs(field) => {
            for (key, run) in walker.children(&answer, field)? {
                reads_experiment |= run.iter().any(|s| s.name == "experiment");
                let mut path = root_path.clone();
                path.push(key);
                walker.model_version_lists(&run, "modelVersions", &path, &mut model_versions)?;
            }
        }
    }
    Ok(GraphQlField {
        key: selected.key.clone(),
        name: spec.name,
        operation: spec.operation,
        route,
        params,
        reads_experiment,
        model_versions,
        input: source,
        paging,
    })
}

/// Where a node is in the query, its trailing whitespace, commas and comments left out.
fn text_range<N: CstNode>(node: &N) -> Range<usize> {
    let syntax = node.syntax();
    let start = usize::from(syntax.text_range().start());
    let significant = syntax
        .descendants_with_tokens()
        .filter_map(|element| element.into_token())
        .filter(|token| {
            !matches!(
                token.kind(),
                apollo_parser::SyntaxKind::WHITESPACE
                    | apollo_parser::SyntaxKind::COMMA
                    | apollo_parser::SyntaxKind::COMMENT
            )
        })
        .last();
    let end = significant.map_or(start, |token| usize::from(token.text_range().end()));
    start..end
}

/// Where the `input` argument's value is written.
fn input_source(value: &cst::Value, scope: &Scope) -> Result<InputSource, GraphQlError> {
    let variable = |v: &cst::Variable| {
        v.name()
            .map(|n| n.text().to_string())
            .ok_or(GraphQlError::Syntax)
    };
    Ok(match value {
        cst::Value::Variable(v) => {
            let name = variable(v)?;
            let value = match scope.values.get(&name) {
                Some(Value::Object(fields)) => fields.clone(),
                _ => Map::new(),
            };
            InputSource::Variable { name, value }
        }
        cst::Value::ObjectValue(obj) => {
            let open = obj
                .l_curly_token()
                .map(|t| usize::from(t.text_range().end()))
                .ok_or(GraphQlError::Syntax)?;
            let mut fields = Vec::new();
            for field in obj.object_fields() {
                let name = field.name().ok_or(GraphQlError::Syntax)?.text().to_string();
                let at = match field.value().ok_or(GraphQlError::Syntax)? {
                    cst::Value::Variable(v) => InputValue::Variable(variable(&v)?),
                    other => InputValue::Literal(text_range(&other)),
                };
                fields.push((name, at));
            }
            InputSource::Object { open, fields }
        }
        other => InputSource::Null(text_range(other)),
    })
}

/// A field name for a message: GraphQL names are `[_A-Za-z][_0-9A-Za-z]*`, cut short.
fn unknown_name(name: &str) -> String {
    name.chars().take(64).collect()
}

/// The `input` argument as the REST route's JSON body: keys snake_case (as graphene passes
/// them), `null`s dropped (unset), a single value where a list is expected made a list (GraphQL
/// input coercion), identifiers checked to be strings; unknown keys refused (graphql-core does).
fn request_fields(spec: &RootSpec, input: Value) -> Result<Map<String, Value>, GraphQlError> {
    let bad = || GraphQlError::BadArgument(spec.name);
    let fields = match input {
        Value::Null => return Ok(Map::new()),
        Value::Object(fields) => fields,
        _ => return Err(bad()),
    };
    let mut body = Map::new();
    for (key, value) in fields {
        let (_, ty) = spec
            .input
            .iter()
            .find(|(name, _)| *name == key)
            .ok_or_else(bad)?;
        if value.is_null() {
            continue;
        }
        let value = match (ty, value) {
            (T::String, Value::String(s)) => Value::String(s),
            (T::String, _) => return Err(bad()),
            (T::Strings | T::List, Value::Array(items)) => Value::Array(items),
            (T::Strings | T::List, single) => Value::Array(vec![single]),
            (T::Other, value) => value,
        };
        if *ty == T::Strings
            && !value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string))
        {
            return Err(bad());
        }
        body.insert(camel_to_snake(&key), value);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
