//! The I/O of a filtered search: mlgate asks MLflow for upstream pages with the client's own
//! request (its method, headers and fields, mlgate's page size and token), looks up the
//! creators each page needs, and answers with the readable items and its own sealed token.
//! What is readable and how pages fill is decided by the pure parts of [`super`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};
use mlgate_catalog::{ListedItem, Listing, Params};

use super::{Links, Malformed, PageFacts, PageLookups, PageRequest, PageTokens, Readability};
use crate::audit::Trail;
use crate::authorize::{Asker, Authorizer};
use crate::error::{GatewayError, UpstreamFailure};
use crate::forward::Upstream;
use crate::listen::Peer;
use crate::normalize::Target;
use crate::resolve::{ExperimentFacts, Resolver};

/// Largest upstream search (or GraphQL) answer mlgate reads.
pub const MAX_SEARCH_ANSWER_BYTES: usize = 64 << 20;

/// What filtered searches need: MLflow, the page-token key, the decision, and the resolver
/// for the experiments of listed datasets and folders.
#[derive(Clone)]
pub struct Searches {
    pub upstream: Upstream,
    pub resolver: Resolver,
    pub tokens: PageTokens,
    pub authorizer: Authorizer,
    /// The execute-api ARN of a `GET` of `/`: an item's read path is appended to it.
    pub execute_api_root: String,
}

/// A search being filtered: what the client sent, to repeat it for each upstream page.
pub struct Search<'a> {
    pub listing: &'static Listing,
    pub parts: &'a Parts,
    pub params: &'a Params,
    pub target: &'a Target,
    pub peer: &'a Peer,
}

/// Why an upstream page of a filtered search did not come back.
enum Fetched {
    /// mlgate could not get an answer (MLflow down, slow, malformed).
    Failed(GatewayError),
    /// MLflow answered with an error, passed to the client as is.
    Refused(StatusCode, Bytes),
}

impl From<Malformed> for Fetched {
    fn from(malformed: Malformed) -> Fetched {
        Fetched::Failed(malformed.into())
    }
}

impl From<Malformed> for GatewayError {
    fn from(malformed: Malformed) -> GatewayError {
        GatewayError::UpstreamUnavailable(malformed.into())
    }
}

impl From<GatewayError> for Fetched {
    fn from(error: GatewayError) -> Fetched {
        Fetched::Failed(error)
    }
}

impl Searches {
    /// How `asker` sees the items of `listing`.
    pub fn reader<'a>(
        &'a self,
        listing: &'static Listing,
        asker: &'a Asker<'a>,
    ) -> Readability<'a> {
        Readability {
            listing,
            scope: self.authorizer.scope(),
            asker,
            execute_api_root: &self.execute_api_root,
        }
    }

    /// Answers a search with the readable items only.
    pub async fn answer(
        &self,
        search: Search<'_>,
        asker: &Asker<'_>,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let listing = search.listing;
        let principal = &asker.principal.arn;
        let request = PageRequest::read(listing, search.params.fields(), &self.tokens, principal)?;
        let reader = self.reader(listing, asker);
        let filter = reader
            .upstream_narrowing()
            .and_then(|clause| super::narrowed_filter(search.params.fields(), &clause));
        let seen = AtomicUsize::new(0);
        let page = super::fill_page(
            listing,
            request.want,
            request.start,
            self.authorizer.scope(),
            |token: Option<String>, size| {
                let (search, filter) = (&search, filter.as_deref());
                async move {
                    self.fetch_page(search, token.as_deref(), size, filter)
                        .await
                }
            },
            |lookups: PageLookups| async move {
                Ok::<PageFacts, Fetched>(self.page_facts(listing, asker, lookups).await?)
            },
            |item, creator, links| {
                seen.fetch_add(1, Ordering::Relaxed);
                reader.readable(item, creator, links)
            },
        )
        .await;
        let page = match page {
            Ok(page) => page,
            Err(Fetched::Failed(error)) => return Err(error),
            // MLflow refused the search (a bad filter, ...): its answer goes back as is.
            Err(Fetched::Refused(status, body)) => {
                return Ok(
                    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
                );
            }
        };
        let narrowed = match &filter {
            Some(filter) => format!(" (MLflow searched with filter {filter:?})"),
            None => String::new(),
        };
        trail.reason = Some(format!(
            "search filtered: {} of {} item(s) listed{narrowed}",
            page.items.len(),
            seen.into_inner()
        ));
        let token = page.next.as_ref().map(|cursor| {
            self.tokens
                .seal(cursor, principal, listing, search.params.fields())
        });
        let body = super::answer(listing, page, token).to_string();
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response())
    }

    /// What a page's items need looked up: their creators and linked experiments.
    pub async fn page_facts(
        &self,
        listing: &'static Listing,
        asker: &Asker<'_>,
        lookups: PageLookups,
    ) -> Result<PageFacts, GatewayError> {
        let creators = match lookups.creators.is_empty() {
            true => HashMap::new(),
            false => self.authorizer.creators(asker, &lookups.creators).await?,
        };
        let links = match lookups.linked.is_empty() {
            true => None,
            false => Some(self.links(listing, &lookups.linked).await?),
        };
        Ok(PageFacts { creators, links })
    }

    /// The experiments of each item (a dataset's links, or the folder's own experiment), with
    /// their facts, from MLflow. One gone since MLflow listed the item leaves it out (not
    /// listed).
    async fn links(&self, listing: &Listing, ids: &[String]) -> Result<Links, GatewayError> {
        let mut links = Links::new();
        for id in ids {
            match self.linked_experiments(listing, id).await {
                Ok(linked) => links.insert(id.clone(), linked),
                Err(GatewayError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
        }
        Ok(links)
    }

    async fn linked_experiments(
        &self,
        listing: &Listing,
        id: &str,
    ) -> Result<Vec<(String, Arc<ExperimentFacts>)>, GatewayError> {
        let experiments = match listing.item {
            ListedItem::Dataset => self.resolver.dataset_experiments(id).await?,
            _ => vec![id.to_owned()],
        };
        let mut linked = Vec::new();
        for experiment in experiments {
            let facts = self.resolver.experiment_facts(&experiment).await?;
            linked.push((experiment, facts));
        }
        Ok(linked)
    }

    /// One upstream page of a filtered search: the client's request with mlgate's page size,
    /// upstream token and narrowed filter, same method, same headers.
    async fn fetch_page(
        &self,
        search: &Search<'_>,
        token: Option<&str>,
        size: u64,
        filter: Option<&str>,
    ) -> Result<serde_json::Value, Fetched> {
        let fields =
            super::upstream_fields(search.listing, search.params.fields(), token, size, filter);
        let path = &search.target.path;
        let get = search.parts.method == Method::GET || search.parts.method == Method::HEAD;
        let (path_and_query, body) = if get {
            (
                format!("{path}?{}", super::query_string(&fields)),
                Bytes::new(),
            )
        } else {
            (
                path.clone(),
                Bytes::from(serde_json::Value::Object(fields).to_string()),
            )
        };
        let path_and_query = http::uri::PathAndQuery::try_from(path_and_query)
            .map_err(|e| GatewayError::Internal(format!("bad search path: {e}")))?;
        let mut request = Request::new(Body::from(body.clone()));
        *request.method_mut() = if search.parts.method == Method::HEAD {
            Method::GET
        } else {
            search.parts.method.clone()
        };
        let headers = request.headers_mut();
        headers.clone_from(&search.parts.headers);
        headers.remove(header::ACCEPT_ENCODING);
        headers.remove(header::TRANSFER_ENCODING);
        if body.is_empty() {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::CONTENT_TYPE);
        } else {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let response = self
            .upstream
            .forward(request, path_and_query, search.peer)
            .await?;
        let status = response.status();
        let collected = self
            .upstream
            .collect(
                response.into_body(),
                MAX_SEARCH_ANSWER_BYTES,
                "a search answer",
            )
            .await?;
        if !status.is_success() {
            return Err(Fetched::Refused(status, collected));
        }
        serde_json::from_slice(&collected).map_err(|_| {
            Fetched::Failed(GatewayError::UpstreamUnavailable(
                UpstreamFailure::unusable("search answer", "is not JSON"),
            ))
        })
    }
}
