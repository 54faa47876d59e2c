//! Stage 9: drop what the caller may not read from list and search answers, keeping pages full
//! and page tokens working.
//!
//! Every list-like route of the catalog has a [`Filtering`] decision (`Route::filtering`; the
//! table is in docs/filtering.md). Those whose answer can hold items of several owners that the
//! request does not name are filtered item by item: a [`Listing`] is such a search. Each item is
//! readable when the policy decision for the item's read action on the item's ARN allows it
//! (`mlflow:GetExperiment` on `experiment/<id>`, `mlflow:GetRegisteredModel` on
//! `registered-model/<name>`, `mlflow:GetGatewayEndpoint` on `gateway-endpoint/<id>`, ...),
//! decided in-process from what the item carries (its name and tags fill
//! `mlflow:ExperimentName`, `mlflow:ExperimentTag/<k>` and `mlflow:ModelTag/<k>`) and from the
//! creators mlgate recorded (`mlflow:ResourceCreator`, one store query per upstream page): no
//! MLflow call per item, but for evaluation datasets, whose answer does not say which
//! experiments each is linked to, and the artifact store's root folders, which are experiment
//! ids: their experiments are looked up per item, and the item is decided under each of them
//! with its keys ([`Links`]).
//!
//! Pages stay full: [`fill_page`] asks MLflow for further upstream pages until `max_results`
//! readable items are collected or MLflow has no more (at most [`MAX_UPSTREAM_PAGES`] calls;
//! past that the page is short but its token continues where it stopped). The `next_page_token`
//! mlgate hands out is its own ([`PageTokens`]): the upstream token plus how many items of that
//! upstream page were already served, sealed with an HMAC bound to the principal, the operation
//! and the search itself (filter, order, ...), under a key derived from the master key, so a
//! token survives restarts, works on every replica sharing the key, and is useless to anyone
//! else or on another query (a replay is a 400).
//!
//! Pure apart from [`search`], which fetches the upstream pages and the creators.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

mod narrow;
mod search;

pub use narrow::{Narrowed, narrow};
pub use search::{MAX_SEARCH_ANSWER_BYTES, Search, Searches};

use mlgate_catalog::{ARTIFACT_ROOT, Filtering, ListedItem, Listing, Params, ResourceKind, Route};
use mlgate_policy::{Asked, KeyBound, key_bound};

use crate::authorize::{Asker, EXECUTE_API_INVOKE};
use crate::error::{GatewayError, UpstreamFailure};
use crate::resolve::{
    ArnScope, EXPERIMENT_NAME, ExperimentFacts, RESOURCE_CREATOR, artifact_owner, flat_kind,
    workspace_relative,
};

/// The experiments of the page's items that are decided under them ([`linked_id`]): item id →
/// experiment ids with their facts, looked up once per upstream page.
pub type Links = HashMap<String, Vec<(String, Arc<ExperimentFacts>)>>;

/// Upstream calls one filtered page may make before it is returned short (with a token that
/// continues where it stopped).
pub const MAX_UPSTREAM_PAGES: usize = 10;

/// Smallest upstream page asked for: filtering small pages would take many round trips.
const MIN_UPSTREAM_PAGE: u64 = 100;

/// Prefix of the page tokens mlgate hands out (versioned).
const TOKEN_PREFIX: &str = "mlg1.";

/// Whether mlgate answers an empty list itself: the route lists across every experiment when
/// the request names none of its parents (`named` is how many resources it named).
pub fn lists_nothing(route: &Route, named: usize) -> bool {
    named == 0 && route.filtering == Some(Filtering::ParentsOrEmpty)
}

/// The listing a request is answered with, when its answer is filtered item by item: its
/// route's, or the artifact store's root (ListArtifacts of the proxy without a path, or the
/// `workspace`'s root, whose folders are experiment ids).
pub fn listing_of(
    route: &Route,
    params: &Params,
    workspace: Option<&str>,
) -> Option<&'static Listing> {
    match route.filtering {
        Some(Filtering::Items(listing)) => Some(listing),
        _ if route.operation == ARTIFACT_ROOT.operation
            && route.resource == ResourceKind::Artifact
            && params
                .try_str_value("path")
                .ok()
                .flatten()
                .is_none_or(|path| {
                    workspace_relative(path.trim_end_matches('/'), workspace)
                        .is_ok_and(str::is_empty)
                }) =>
        {
            Some(&ARTIFACT_ROOT)
        }
        _ => None,
    }
}

fn paged(listing: &Listing) -> bool {
    listing.paging.is_some()
}

/// The path of the item's read (see [`Listing::read_path`]).
fn read_path(listing: &Listing, id: &str) -> String {
    listing.read_path.replace("{}", id)
}

/// What the item names; `None` when it lacks its identifiers (never listed).
pub fn item_resource(listing: &Listing, scope: &ArnScope, item: &Value) -> Option<ItemResource> {
    let text = |field: &str| item.get(field).and_then(Value::as_str);
    let segment = |value: &str| {
        (!value.is_empty() && !value.contains('/') && value != "." && value != "..").then_some(())
    };
    let mut keys = Vec::new();
    let (arns, id) = match &listing.item {
        ListedItem::Experiment => {
            let id = text("experiment_id")?;
            segment(id)?;
            if let Some(name) = text("name") {
                keys.push((EXPERIMENT_NAME.to_owned(), name.to_owned()));
            }
            keys.extend(tags(item, "mlflow:ExperimentTag/"));
            (vec![scope.experiment(id)], id)
        }
        ListedItem::RegisteredModel => {
            let name = text("name")?;
            segment(name)?;
            let (arn, model_keys) = scope.registered_model_arn(name, None, tag_pairs(item));
            keys = model_keys;
            (vec![arn], name)
        }
        ListedItem::ModelVersion => {
            let name = text("name")?;
            let version = text("version")?;
            segment(name)?;
            segment(version)?;
            // A version's own tags are not its model's: only its kind comes from them.
            let (arn, _) = scope.registered_model_arn(name, Some(version), tag_pairs(item));
            (vec![arn], name)
        }
        ListedItem::Flat(kind, fields) => {
            let kind = flat_kind(*kind)?;
            let id = text(fields[0])?;
            let mut arns = Vec::with_capacity(fields.len());
            for field in *fields {
                if let Some(value) = text(field) {
                    segment(value)?;
                    arns.push(scope.flat(kind, value));
                }
            }
            (arns, id)
        }
        ListedItem::McpServer(field) => {
            let name = text(field)?;
            let (namespace, slug) = name.split_once('/')?;
            segment(namespace)?;
            segment(slug)?;
            (vec![scope.flat("mcp-server", name)], name)
        }
        // Its ARN when linked to no experiment; [`Readability::readable`] decides it under
        // each experiment it is linked to.
        ListedItem::Dataset => {
            let id = text("dataset_id")?;
            segment(id)?;
            (vec![scope.flat("dataset", id)], id)
        }
        ListedItem::ArtifactFolder => {
            let name = text("path")?;
            segment(name)?;
            (vec![artifact_owner(name).ok()?.arn(scope)], name)
        }
    };
    Some(ItemResource {
        arns,
        keys,
        id: id.to_owned(),
    })
}

/// The ARN under which mlgate records the creator of what the item belongs to, if it records
/// one (experiments; registered models for models and their versions).
pub fn creator_arn(listing: &Listing, scope: &ArnScope, item: &Value) -> Option<String> {
    let text = |field: &str| item.get(field).and_then(Value::as_str);
    match listing.item {
        ListedItem::Experiment => text("experiment_id").map(|id| scope.experiment(id)),
        // A prompt's creator is recorded under its prompt ARN.
        ListedItem::RegisteredModel | ListedItem::ModelVersion => {
            text("name").map(|name| scope.registered_model_arn(name, None, tag_pairs(item)).0)
        }
        ListedItem::Flat(..)
        | ListedItem::McpServer(_)
        | ListedItem::Dataset
        | ListedItem::ArtifactFolder => None,
    }
}

/// The id of an item decided under experiments that are looked up ([`Links`]): a dataset's,
/// or an artifact root folder's that is an experiment id.
pub fn linked_id<'a>(listing: &Listing, item: &'a Value) -> Option<&'a str> {
    let text = |field: &str| item.get(field).and_then(Value::as_str);
    match listing.item {
        ListedItem::Dataset => text("dataset_id"),
        ListedItem::ArtifactFolder => {
            text("path").filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => None,
    }
}

/// The resources a listed item names.
#[derive(Debug, PartialEq, Eq)]
pub struct ItemResource {
    /// Its ARNs: all must allow the read.
    pub arns: Vec<String>,
    /// The condition keys it carries (name, tags).
    pub keys: Vec<(String, String)>,
    /// Its first identifier (in the path of its read).
    pub id: String,
}

fn tag_pairs(item: &Value) -> Vec<(&str, &str)> {
    let Some(Value::Array(tags)) = item.get("tags") else {
        return Vec::new();
    };
    tags.iter()
        .filter_map(|tag| {
            Some((
                tag.get("key").and_then(Value::as_str)?,
                tag.get("value").and_then(Value::as_str)?,
            ))
        })
        .collect()
}

fn tags<'a>(item: &'a Value, prefix: &'a str) -> impl Iterator<Item = (String, String)> + 'a {
    tag_pairs(item)
        .into_iter()
        .map(move |(k, v)| (format!("{prefix}{k}"), v.to_owned()))
}

/// Decides item by item with the principal's policies (and an assumed role's session policy,
/// which can only narrow).
pub struct Readability<'a> {
    pub listing: &'static Listing,
    pub scope: &'a ArnScope,
    /// Who asks, with its policies and the request's global condition keys.
    pub asker: &'a Asker<'a>,
    /// The execute-api ARN of a `GET` of the path `/` (the item's read path is appended).
    pub execute_api_root: &'a str,
}

impl Readability<'_> {
    /// The execute-api ARN of the read of the item with `id`.
    fn read_arn(&self, id: &str) -> String {
        let path = read_path(self.listing, id);
        format!(
            "{}{}",
            self.execute_api_root,
            path.strip_prefix('/').unwrap_or(&path)
        )
    }

    /// A clause MLflow's own search can add to the caller's filter without dropping an item the
    /// caller may read: when every statement that could allow reading experiments requires
    /// their name to start with one text (`mlflow:ExperimentName` like `team-a/*`), MLflow
    /// is asked only for names that start with it (`name LIKE 'team-a/%'`), and returns fewer
    /// items mlgate would drop. The item-by-item decision still follows: this only saves
    /// upstream pages. Only SearchExperiments (whose items carry the name), and only a prefix
    /// of plain characters (MLflow's filter has no escapes; a shorter prefix keeps more).
    pub fn upstream_narrowing(&self) -> Option<String> {
        if self.listing.item != ListedItem::Experiment {
            return None;
        }
        let experiments = self.scope.experiment("");
        let read = self.read_arn("{}");
        let (read, id_follows) = match read.split_once("{}") {
            None => (read.as_str(), false),
            Some((start, "")) => (start, true),
            // The id inside the read's path: not a resource `Asked` can describe.
            Some(_) => return None,
        };
        let asked = [
            Asked {
                action: self.listing.read_action,
                resource: &experiments,
                id_follows: true,
            },
            Asked {
                action: EXECUTE_API_INVOKE,
                resource: read,
                id_follows,
            },
        ];
        // Only the identity policies: a session policy can only narrow what they allow.
        let bound = key_bound(
            self.asker.policies.identity.iter(),
            &asked,
            EXPERIMENT_NAME,
            &self.asker.context,
        );
        let KeyBound::Prefix {
            prefix,
            ignore_case,
        } = bound
        else {
            return None;
        };
        let plain: String = prefix
            .chars()
            .take_while(|c| c.is_alphanumeric() || " /-_.:@+=,".contains(*c))
            .collect();
        let operator = if ignore_case { "ILIKE" } else { "LIKE" };
        (!plain.is_empty()).then(|| format!("name {operator} '{plain}%'"))
    }

    /// Whether the item may be listed; `creator` is who created what it belongs to
    /// ([`creator_arn`]), as the direct read would see it; `links` the experiments of the
    /// page's items that are decided under them (such an item missing from them, say gone
    /// since MLflow listed it, is not listed).
    pub fn readable(&self, item: &Value, creator: Option<&str>, links: Option<&Links>) -> bool {
        let Some(ItemResource { arns, keys, id }) = item_resource(self.listing, self.scope, item)
        else {
            return false;
        };
        let mut context = self.asker.context.clone();
        for (key, value) in keys {
            context.insert(&key, value);
        }
        if let Some(creator) = creator {
            context.insert(RESOURCE_CREATOR, creator.to_owned());
        }
        let execute_api = self.read_arn(&id);
        let allowed = |arns: &[String], context: &mlgate_policy::Context| {
            let (_, verdict) =
                self.asker
                    .ask(self.listing.read_action, arns, &execute_api, context);
            verdict.is_allowed()
        };
        if linked_id(self.listing, item).is_none() {
            return allowed(&arns, &context);
        }
        // Read under every experiment it lies under, each with its own keys, as a request for
        // it is decided.
        match links.and_then(|links| links.get(&id)) {
            None => false,
            Some(linked) if linked.is_empty() => allowed(&arns, &context),
            Some(linked) => linked.iter().all(|(experiment, facts)| {
                let mut context = context.clone();
                for (key, value) in facts.context() {
                    context.insert(&key, value);
                }
                let arn = match self.listing.item {
                    ListedItem::Dataset => self.scope.dataset(experiment, &id),
                    _ => self.scope.experiment(experiment),
                };
                allowed(&[arn], &context)
            }),
        }
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
    /// `max_results` (MLflow's default when absent; everything for unpaged listings).
    pub want: usize,
    pub start: Cursor,
}

impl PageRequest {
    /// Reads `max_results` and `page_token` (opened with `tokens`) from the request fields.
    /// An unpaged listing takes neither: its fields go to MLflow as they are.
    pub fn read(
        listing: &'static Listing,
        fields: &Map<String, Value>,
        tokens: &PageTokens,
        principal: &str,
    ) -> Result<PageRequest, GatewayError> {
        let first = |size| Cursor {
            upstream: None,
            skip: 0,
            size,
        };
        let Some((default, max)) = listing.paging else {
            return Ok(PageRequest {
                want: usize::MAX,
                start: first(0),
            });
        };
        let want = match fields.get("max_results") {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => n.as_u64().ok_or_else(bad_max_results)?,
            Some(Value::String(s)) if s.is_empty() => default,
            Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad_max_results())?,
            Some(_) => return Err(bad_max_results()),
        };
        if want == 0 || want > max {
            return Err(GatewayError::BadRequest(format!(
                "invalid value {want} for parameter 'max_results': expected 1 to {max}"
            )));
        }
        let start = match fields.get("page_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(tokens.open(s, principal, listing, fields)?),
            Some(_) => return Err(bad_token()),
        };
        Ok(PageRequest {
            want: usize::try_from(want).map_err(|_| bad_max_results())?,
            start: start.unwrap_or_else(|| first(want.max(MIN_UPSTREAM_PAGE).min(max))),
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
    /// The other fields of an answer MLflow gives in one piece (e.g. `"object": "list"`),
    /// passed on as they are; empty for paged listings.
    pub rest: Map<String, Value>,
}

/// An upstream answer mlgate cannot read as a page of items: refused, never passed on.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl From<Malformed> for UpstreamFailure {
    fn from(malformed: Malformed) -> UpstreamFailure {
        UpstreamFailure::unusable(
            "answer",
            format!("lists {} that are not an array", malformed.0),
        )
    }
}

impl From<Malformed> for String {
    fn from(malformed: Malformed) -> String {
        UpstreamFailure::from(malformed).to_string()
    }
}

/// What one upstream page's items need looked up before they are decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PageLookups {
    /// [`creator_arn`]s of the items (none when no item has one).
    pub creators: Vec<String>,
    /// Ids of the items decided under experiments that are looked up ([`linked_id`]).
    pub linked: Vec<String>,
}

/// The answers to a page's [`PageLookups`].
#[derive(Debug, Default)]
pub struct PageFacts {
    /// Creator ARN → creator name.
    pub creators: HashMap<String, String>,
    /// `None` when no item needed them.
    pub links: Option<Links>,
}

/// Collects up to `want` readable items starting at `start`, calling `fetch(token, size)` for
/// upstream pages (the upstream answer's JSON), `look_up(lookups)` once per upstream page
/// whose items need any ([`PageLookups`]) and `readable(item, creator, links)` per item. An
/// upstream error is returned as is; an answer whose items are not an array is [`Malformed`].
pub async fn fill_page<E, F, L>(
    listing: &'static Listing,
    want: usize,
    start: Cursor,
    scope: &ArnScope,
    mut fetch: impl FnMut(Option<String>, u64) -> F,
    mut look_up: impl FnMut(PageLookups) -> L,
    readable: impl Fn(&Value, Option<&str>, Option<&Links>) -> bool,
) -> Result<Page, E>
where
    F: Future<Output = Result<Value, E>>,
    L: Future<Output = Result<PageFacts, E>>,
    E: From<Malformed>,
{
    let mut items = Vec::new();
    let mut cursor = start;
    for _ in 0..MAX_UPSTREAM_PAGES {
        let answer = fetch(cursor.upstream.clone(), cursor.size).await?;
        let rest = match &answer {
            Value::Object(fields) if !paged(listing) => fields
                .iter()
                .filter(|(k, _)| *k != listing.items && *k != "next_page_token")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        let upstream_items = match answer.get(listing.items) {
            // MLflow leaves empty lists out of its answers.
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(items)) => items.as_slice(),
            Some(_) => return Err(Malformed(listing.items).into()),
        };
        let next = answer
            .get("next_page_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && paged(listing))
            .map(str::to_owned);
        let fresh = upstream_items.get(cursor.skip..).unwrap_or_default();
        let mut arns: Vec<String> = fresh
            .iter()
            .filter_map(|item| creator_arn(listing, scope, item))
            .collect();
        arns.sort_unstable();
        arns.dedup();
        let lookups = PageLookups {
            creators: arns,
            linked: fresh
                .iter()
                .filter_map(|item| linked_id(listing, item).map(str::to_owned))
                .collect(),
        };
        let facts = if lookups == PageLookups::default() {
            PageFacts::default()
        } else {
            look_up(lookups).await?
        };
        for (i, item) in upstream_items.iter().enumerate().skip(cursor.skip) {
            let creator =
                creator_arn(listing, scope, item).and_then(|arn| facts.creators.get(&arn));
            if !readable(item, creator.map(String::as_str), facts.links.as_ref()) {
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
                return Ok(Page { items, next, rest });
            }
        }
        match next {
            None => {
                return Ok(Page {
                    items,
                    next: None,
                    rest,
                });
            }
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
        rest: Map::new(),
    })
}

/// The answer mlgate sends for a filtered page.
pub fn answer(listing: &'static Listing, page: Page, token: Option<String>) -> Value {
    let mut out = page.rest;
    out.insert(listing.items.into(), Value::Array(page.items));
    if let Some(token) = token {
        out.insert("next_page_token".into(), Value::String(token));
    }
    Value::Object(out)
}

/// Seals and opens mlgate's page tokens, under a key derived from the master key
/// ([`crate::store::secrets::MasterKey::derive`]): tokens survive a restart and are accepted
/// by every replica sharing the master key.
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

/// The purpose page-token keys are derived for (domain separation from other derived keys).
pub const PAGE_TOKEN_KEY_PURPOSE: &str = "mlgate page tokens v1";

/// Request fields that change from page to page and are not part of the query a token is
/// bound to.
const PAGING_FIELDS: [&str; 2] = ["page_token", "max_results"];

impl PageTokens {
    pub fn new(key: [u8; 32]) -> Self {
        PageTokens { key }
    }

    /// A fresh random key (tokens then die with the process).
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(PageTokens { key })
    }

    fn mac(
        &self,
        principal: &str,
        listing: &'static Listing,
        query: &Map<String, Value>,
        payload: &str,
    ) -> HmacSha256 {
        let query: Map<String, Value> = query
            .iter()
            .filter(|(key, _)| !PAGING_FIELDS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let query = Value::Object(query).to_string();
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [principal, listing.operation, &query, payload] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// A token for `cursor`, valid for `principal` repeating this `listing` with the same
    /// request fields (`query`; paging fields aside).
    pub fn seal(
        &self,
        cursor: &Cursor,
        principal: &str,
        listing: &'static Listing,
        query: &Map<String, Value>,
    ) -> String {
        let json = serde_json::to_vec(cursor).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self
            .mac(principal, listing, query, &payload)
            .finalize()
            .into_bytes();
        format!("{TOKEN_PREFIX}{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    pub fn open(
        &self,
        token: &str,
        principal: &str,
        listing: &'static Listing,
        query: &Map<String, Value>,
    ) -> Result<Cursor, GatewayError> {
        let (payload, tag) = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(bad_token)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad_token())?;
        self.mac(principal, listing, query, payload)
            .verify_slice(&tag)
            .map_err(|_| bad_token())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad_token())?;
        serde_json::from_slice(&json).map_err(|_| bad_token())
    }
}

/// The caller's `filter` with `clause` ANDed to it, when MLflow will read the two as that: no
/// filter, or one whose quotes all close (otherwise the clause could end up inside a string,
/// and the search goes upstream as the caller wrote it).
pub fn narrowed_filter(fields: &Map<String, Value>, clause: &str) -> Option<String> {
    match fields.get("filter") {
        None | Some(Value::Null) => Some(clause.to_owned()),
        Some(Value::String(filter)) if filter.trim().is_empty() => Some(clause.to_owned()),
        Some(Value::String(filter))
            if ['\'', '"', '`']
                .iter()
                .all(|quote| filter.matches(*quote).count() % 2 == 0) =>
        {
            Some(format!("{filter} AND {clause}"))
        }
        Some(_) => None,
    }
}

/// The request fields of an upstream page: the client's, with mlgate's page size and the
/// upstream token (an unpaged listing's fields as they are), and `filter` in place of the
/// client's when given ([`narrowed_filter`]).
pub fn upstream_fields(
    listing: &'static Listing,
    fields: &Map<String, Value>,
    token: Option<&str>,
    size: u64,
    filter: Option<&str>,
) -> Map<String, Value> {
    let mut fields = fields.clone();
    if let Some(filter) = filter {
        fields.insert("filter".into(), Value::from(filter));
    }
    if !paged(listing) {
        return fields;
    }
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
