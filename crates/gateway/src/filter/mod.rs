//! Stage 9: drop what the caller may not read from list and search answers, keeping pages full
//! and page tokens working.
//!
//! A [`Listing`] is a search whose answer is a page of items. Each item is readable when the
//! policy decision for the item's read action on the item's ARN allows it (`mlflow:GetExperiment`
//! on `experiment/<id>`, `mlflow:GetRegisteredModel` on `registered-model/<name>`,
//! `mlflow:GetModelVersion` on `registered-model/<name>/version/<n>`), decided in-process from
//! what the item carries (its name and tags fill `mlflow:ExperimentName`,
//! `mlflow:ExperimentTag/<k>` and `mlflow:ModelTag/<k>`): no MLflow call per item.
//!
//! Pages stay full: [`fill_page`] asks MLflow for further upstream pages until `max_results`
//! readable items are collected or MLflow has no more (at most [`MAX_UPSTREAM_PAGES`] calls;
//! past that the page is short but its token continues where it stopped). The `next_page_token`
//! mlgate hands out is its own ([`PageTokens`]): the upstream token plus how many items of that
//! upstream page were already served, sealed with an HMAC bound to the principal and the
//! operation, so a token is useless to anyone else (a replay is a 400).
//!
//! Pure apart from the fetch closure the pipeline passes in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use mlgate_policy::{Context, NamedPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::authorize::{Question, authorize};
use crate::error::GatewayError;
use crate::resolve::ArnScope;

/// Upstream calls one filtered page may make before it is returned short (with a token that
/// continues where it stopped).
pub const MAX_UPSTREAM_PAGES: usize = 10;

/// Smallest upstream page asked for: filtering small pages would take many round trips.
const MIN_UPSTREAM_PAGE: u64 = 100;

/// Prefix of the page tokens mlgate hands out (versioned).
const TOKEN_PREFIX: &str = "mlg1.";

/// A search whose answer is filtered item by item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Experiments,
    RegisteredModels,
    ModelVersions,
}

impl Listing {
    /// The listing of an operation, if its answer is filtered.
    pub fn of(operation: &str) -> Option<Listing> {
        Some(match operation {
            "SearchExperiments" => Listing::Experiments,
            "SearchRegisteredModels" => Listing::RegisteredModels,
            "SearchModelVersions" => Listing::ModelVersions,
            _ => return None,
        })
    }

    fn operation(self) -> &'static str {
        match self {
            Listing::Experiments => "SearchExperiments",
            Listing::RegisteredModels => "SearchRegisteredModels",
            Listing::ModelVersions => "SearchModelVersions",
        }
    }

    /// The field of the answer holding the items.
    pub fn items_field(self) -> &'static str {
        match self {
            Listing::Experiments => "experiments",
            Listing::RegisteredModels => "registered_models",
            Listing::ModelVersions => "model_versions",
        }
    }

    /// The action an item must allow to be listed.
    pub fn read_action(self) -> &'static str {
        match self {
            Listing::Experiments => "mlflow:GetExperiment",
            Listing::RegisteredModels => "mlflow:GetRegisteredModel",
            Listing::ModelVersions => "mlflow:GetModelVersion",
        }
    }

    /// The route of that read in the execute-api vocabulary (`GET <path>`), so path-based
    /// policies (the article's readers: `GET/*`) list what they may read.
    pub fn read_path(self) -> &'static str {
        match self {
            Listing::Experiments => "/api/2.0/mlflow/experiments/get",
            Listing::RegisteredModels => "/api/2.0/mlflow/registered-models/get",
            Listing::ModelVersions => "/api/2.0/mlflow/model-versions/get",
        }
    }

    /// MLflow's page size when the request names none, and the largest it accepts.
    fn page_sizes(self) -> (u64, u64) {
        match self {
            Listing::Experiments => (1000, 50_000),
            Listing::RegisteredModels => (100, 1000),
            Listing::ModelVersions => (200_000, 200_000),
        }
    }

    /// The item's ARN and the condition keys it carries; `None` when the item lacks its
    /// identifiers (never listed).
    pub fn resource(
        self,
        scope: &ArnScope,
        item: &Value,
    ) -> Option<(String, Vec<(String, String)>)> {
        let text = |field: &str| item.get(field).and_then(Value::as_str);
        let segment = |value: &str| (!value.is_empty() && !value.contains('/')).then_some(());
        let mut keys = Vec::new();
        let arn = match self {
            Listing::Experiments => {
                let id = text("experiment_id")?;
                segment(id)?;
                if let Some(name) = text("name") {
                    keys.push(("mlflow:ExperimentName".to_owned(), name.to_owned()));
                }
                tags(item, "mlflow:ExperimentTag/", &mut keys);
                scope.experiment(id)
            }
            Listing::RegisteredModels => {
                let name = text("name")?;
                segment(name)?;
                tags(item, "mlflow:ModelTag/", &mut keys);
                scope.registered_model(name)
            }
            Listing::ModelVersions => {
                let name = text("name")?;
                let version = text("version")?;
                segment(name)?;
                segment(version)?;
                scope.model_version(name, version)
            }
        };
        Some((arn, keys))
    }
}

fn tags(item: &Value, prefix: &str, keys: &mut Vec<(String, String)>) {
    let Some(Value::Array(tags)) = item.get("tags") else {
        return;
    };
    for tag in tags {
        if let (Some(k), Some(v)) = (
            tag.get("key").and_then(Value::as_str),
            tag.get("value").and_then(Value::as_str),
        ) {
            keys.push((format!("{prefix}{k}"), v.to_owned()));
        }
    }
}

/// Decides item by item with the principal's policies (and an assumed role's session policy,
/// which can only narrow).
pub struct Readability<'a> {
    pub listing: Listing,
    pub scope: &'a ArnScope,
    pub policies: &'a [NamedPolicy],
    pub session: Option<&'a [NamedPolicy]>,
    pub principal: &'a str,
    /// The execute-api ARN of [`Listing::read_path`].
    pub execute_api: &'a str,
    /// The request's global condition keys.
    pub context: &'a Context,
}

impl Readability<'_> {
    pub fn readable(&self, item: &Value) -> bool {
        let Some((arn, keys)) = self.listing.resource(self.scope, item) else {
            return false;
        };
        let mut context = self.context.clone();
        for (key, value) in keys {
            context.insert(&key, value);
        }
        let resources = [arn];
        let question = Question {
            mlflow: Some((self.listing.read_action(), &resources)),
            execute_api: self.execute_api,
            principal: self.principal,
            context: &context,
        };
        authorize(self.policies, &question).is_allowed()
            && self
                .session
                .is_none_or(|session| authorize(session, &question).is_allowed())
    }
}

/// Where a filtered page starts: an upstream page (its token, `None` for the first) asked for
/// with `size` items, of which the first `skip` were already served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "t", skip_serializing_if = "Option::is_none", default)]
    pub upstream: Option<String>,
    #[serde(rename = "s", default)]
    pub skip: usize,
    #[serde(rename = "m")]
    pub size: u64,
}

/// What the client asked for, read from its request fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// `max_results` (MLflow's default when absent).
    pub want: usize,
    pub start: Cursor,
}

impl PageRequest {
    /// Reads `max_results` and `page_token` (opened with `tokens`) from the request fields.
    pub fn read(
        listing: Listing,
        fields: &Map<String, Value>,
        tokens: &PageTokens,
        principal: &str,
    ) -> Result<PageRequest, GatewayError> {
        let (default, max) = listing.page_sizes();
        let want = match fields.get("max_results") {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => n.as_u64().ok_or_else(bad_max_results)?,
            Some(Value::String(s)) if s.is_empty() => default,
            Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad_max_results())?,
            Some(_) => return Err(bad_max_results()),
        };
        if want == 0 || want > max {
            // MLflow's own validation message for these is its business: let it answer.
            return Err(GatewayError::BadRequest(format!(
                "invalid value {want} for parameter 'max_results': expected 1 to {max}"
            )));
        }
        let start = match fields.get("page_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(tokens.open(s, principal, listing)?),
            Some(_) => return Err(bad_token()),
        };
        let start = start.unwrap_or(Cursor {
            upstream: None,
            skip: 0,
            size: want.max(MIN_UPSTREAM_PAGE).min(max),
        });
        Ok(PageRequest {
            want: usize::try_from(want).map_err(|_| bad_max_results())?,
            start,
        })
    }
}

fn bad_max_results() -> GatewayError {
    GatewayError::BadRequest("invalid value for parameter 'max_results'".into())
}

fn bad_token() -> GatewayError {
    GatewayError::BadRequest(
        "invalid page_token: not a page token mlgate issued to this caller for this search".into(),
    )
}

/// One filtered page: the readable items and where the next page starts.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<Cursor>,
}

/// Collects up to `want` readable items starting at `start`, calling `fetch(token, size)` for
/// upstream pages (the upstream answer's JSON). An upstream error is returned as is.
pub async fn fill_page<E, F>(
    listing: Listing,
    want: usize,
    start: Cursor,
    mut fetch: impl FnMut(Option<String>, u64) -> F,
    readable: impl Fn(&Value) -> bool,
) -> Result<Page, E>
where
    F: Future<Output = Result<Value, E>>,
{
    let mut items = Vec::new();
    let mut cursor = start;
    for _ in 0..MAX_UPSTREAM_PAGES {
        let answer = fetch(cursor.upstream.clone(), cursor.size).await?;
        let upstream_items = match answer.get(listing.items_field()) {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        };
        let next = answer
            .get("next_page_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        for (i, item) in upstream_items.iter().enumerate().skip(cursor.skip) {
            if !readable(item) {
                continue;
            }
            items.push(item.clone());
            if items.len() == want {
                let next = if i + 1 < upstream_items.len() {
                    Some(Cursor {
                        skip: i + 1,
                        ..cursor
                    })
                } else {
                    next.map(|t| Cursor {
                        upstream: Some(t),
                        skip: 0,
                        size: cursor.size,
                    })
                };
                return Ok(Page { items, next });
            }
        }
        match next {
            None => return Ok(Page { items, next: None }),
            Some(t) => {
                cursor = Cursor {
                    upstream: Some(t),
                    skip: 0,
                    size: cursor.size,
                }
            }
        }
    }
    Ok(Page {
        items,
        next: Some(cursor),
    })
}

/// Searches named by experiment ids (`experiment_ids` in a JSON body) that are narrowed to
/// the experiments the caller may search, instead of refused when one of them is not.
pub fn narrows_experiment_ids(operation: &str) -> bool {
    matches!(operation, "SearchRuns" | "SearchLoggedModels")
}

/// The answer mlgate sends for a filtered page.
pub fn answer(listing: Listing, page: Page, token: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(listing.items_field().into(), Value::Array(page.items));
    if let Some(token) = token {
        out.insert("next_page_token".into(), Value::String(token));
    }
    Value::Object(out)
}

/// Seals and opens mlgate's page tokens. The key is per process: tokens do not survive a
/// restart (a client then gets a 400 and starts over), and replicas need a shared key
/// (not yet configurable; see docs/threat-model.md).
#[derive(Clone)]
pub struct PageTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl PageTokens {
    pub fn new(key: [u8; 32]) -> Self {
        PageTokens { key }
    }

    /// A fresh random key.
    pub fn random() -> Result<Self, String> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for page tokens: {e}"))?;
        Ok(PageTokens { key })
    }

    fn mac(&self, principal: &str, listing: Listing, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [principal, listing.operation(), payload] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    pub fn seal(&self, cursor: &Cursor, principal: &str, listing: Listing) -> String {
        let json = serde_json::to_vec(cursor).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self
            .mac(principal, listing, &payload)
            .finalize()
            .into_bytes();
        format!("{TOKEN_PREFIX}{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    pub fn open(
        &self,
        token: &str,
        principal: &str,
        listing: Listing,
    ) -> Result<Cursor, GatewayError> {
        let (payload, tag) = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(bad_token)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad_token())?;
        self.mac(principal, listing, payload)
            .verify_slice(&tag)
            .map_err(|_| bad_token())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad_token())?;
        serde_json::from_slice(&json).map_err(|_| bad_token())
    }
}

/// The request fields of an upstream page: the client's, with mlgate's page size and the
/// upstream token.
pub fn upstream_fields(
    fields: &Map<String, Value>,
    token: Option<&str>,
    size: u64,
) -> Map<String, Value> {
    let mut fields = fields.clone();
    fields.insert("max_results".into(), Value::from(size));
    match token {
        Some(t) => fields.insert("page_token".into(), Value::from(t)),
        None => fields.remove("page_token"),
    };
    fields
}

/// Request fields as a query string (repeated keys for lists), for searches MLflow serves
/// over GET.
pub fn query_string(fields: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (key, value) in fields {
        match value {
            Value::Null => {}
            Value::Array(items) => pairs.extend(items.iter().map(|v| (key.as_str(), scalar(v)))),
            other => pairs.push((key, scalar(other))),
        }
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
