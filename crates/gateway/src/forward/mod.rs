//! Stage 8: stream the request to MLflow over pooled connections and stream the answer back.
//!
//! Bodies are never buffered here: the client's body is handed to the upstream connection as it
//! arrives, and MLflow's response body goes back the same way, so backpressure holds end to end.
//! Headers are cleaned both ways (hop-by-hop, and anything MLflow would trust from a client).

mod headers;

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::oneshot;

use crate::authenticate::sigv4::payload::PayloadRejected;
use crate::error::{GatewayError, UpstreamDelay, UpstreamFailure, find_in_chain};
use crate::listen::{BodyTimeout, Peer};
use crate::normalize::WORKSPACE_HEADER;
use crate::telemetry;

use headers::strip_hop_by_hop;

/// Shorter than uvicorn's 5 s keep-alive, so a pooled connection is never reused just as MLflow
/// closes it (a request written to a closing socket fails and cannot be retried safely).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Side lookups read whole JSON answers (e.g. GetRun with all params and metrics); bounded.
const MAX_LOOKUP_BODY: usize = 64 << 20;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The MLflow server: forwards client requests and answers side lookups for the resolver.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client<HttpConnector, Body>,
    authority: Authority,
    host: HeaderValue,
    timeout: Duration,
}

/// Why the upstream URL cannot be forwarded to.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamUrlError {
    #[error("the upstream URL has no host")]
    NoHost,
    #[error("the upstream URL's host is not a valid Host header")]
    Host(#[source] http::header::InvalidHeaderValue),
}

impl Upstream {
    /// `base` is `http://host:port` (validated by the config); `timeout` is how long MLflow has
    /// to start answering once it has the whole request.
    pub fn new(base: &Uri, timeout: Duration) -> Result<Self, UpstreamUrlError> {
        let authority = base.authority().cloned().ok_or(UpstreamUrlError::NoHost)?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(UpstreamUrlError::Host)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .set_host(false)
            .build(connector);
        Ok(Upstream {
            client,
            authority,
            host,
            timeout,
        })
    }

    /// Forwards a request whose path is `path_and_query` (the normalized one that was
    /// authorized). The body streams through; the response streams back.
    pub async fn forward(
        &self,
        mut request: Request<Body>,
        path_and_query: PathAndQuery,
        peer: &Peer,
    ) -> Result<Response<Body>, GatewayError> {
        let client_host = request.headers().get(header::HOST).cloned().or_else(|| {
            request
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        *request.uri_mut() = self.uri(path_and_query)?;
        // Upstream is HTTP/1.1 (uvicorn); an h2 client's request must not keep its version.
        *request.version_mut() = http::Version::HTTP_11;
        let headers = request.headers_mut();
        headers::clean_request(headers);
        headers::set_forwarded(headers, peer, client_host);
        headers.insert(header::HOST, self.host.clone());

        let (sent_tx, sent_rx) = oneshot::channel();
        let request = request.map(|body| Body::new(SentSignal::new(body, sent_tx)));
        let mut response = self.send(request, sent_rx).await?;
        strip_hop_by_hop(response.headers_mut());
        Ok(response.map(Body::new))
    }

    /// GET `path_and_query` from MLflow for a side lookup, in `workspace` when MLflow runs with
    /// workspaces; returns the status and the whole body.
    pub async fn get(
        &self,
        path_and_query: &str,
        workspace: Option<&str>,
    ) -> Result<(StatusCode, Bytes), GatewayError> {
        let path_and_query = PathAndQuery::try_from(path_and_query)
            .map_err(|e| GatewayError::Internal(format!("bad lookup path: {e}")))?;
        let mut request = Request::new(Body::empty());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = self.uri(path_and_query)?;
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        request
            .headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(workspace) = workspace {
            let value = HeaderValue::from_str(workspace).map_err(|_| {
                GatewayError::Internal("a workspace name is not a header value".into())
            })?;
            request.headers_mut().insert(WORKSPACE_HEADER, value);
        }
        let (sent_tx, sent_rx) = oneshot::channel();
        let request = request.map(|body| Body::new(SentSignal::new(body, sent_tx)));
        let response = self.send(request, sent_rx).await?;
        let status = response.status();
        let body = self
            .collect(response.into_body(), MAX_LOOKUP_BODY, "a lookup")
            .await?;
        Ok((status, body))
    }

    /// Reads a whole answer of MLflow's that mlgate must look into (a lookup, a search page, a
    /// GraphQL answer, a creation's id): at most `limit` bytes, within the upstream timeout.
    /// `what` names it in the error ("a search answer").
    pub async fn collect<B>(
        &self,
        body: B,
        limit: usize,
        what: &'static str,
    ) -> Result<Bytes, GatewayError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let collected = tokio::time::timeout(self.timeout, Limited::new(body, limit).collect())
            .await
            .map_err(|_| GatewayError::UpstreamTimeout(UpstreamDelay::Body { what }))?
            .map_err(|e| {
                GatewayError::UpstreamUnavailable(UpstreamFailure::BrokeOff {
                    what,
                    source: Arc::from(e),
                })
            })?;
        Ok(collected.to_bytes())
    }

    fn uri(&self, path_and_query: PathAndQuery) -> Result<Uri, GatewayError> {
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| GatewayError::Internal(format!("cannot build the upstream URI: {e}")))
    }

    /// Sends and waits for the response head ([`Upstream::answer_head`]), timed.
    async fn send(
        &self,
        request: Request<Body>,
        body_sent: oneshot::Receiver<()>,
    ) -> Result<Response<hyper::body::Incoming>, GatewayError> {
        let mut request = request;
        telemetry::traces::propagate(request.headers_mut());
        let started = Instant::now();
        let answered = self.answer_head(request, body_sent).await;
        telemetry::upstream(started.elapsed());
        answered
    }

    /// Sends and waits for the response head. The timeout starts once the whole request body
    /// has been handed over, so a long upload is never cut off by it (slow clients are bounded
    /// by the body timeout instead).
    async fn answer_head(
        &self,
        request: Request<Body>,
        body_sent: oneshot::Receiver<()>,
    ) -> Result<Response<hyper::body::Incoming>, GatewayError> {
        let response = self.client.request(request);
        tokio::pin!(response);
        tokio::select! {
            result = &mut response => return result.map_err(GatewayError::from),
            // Err means the body was dropped (the request failed); the response future says why.
            _ = body_sent => {}
        }
        match tokio::time::timeout(self.timeout, response).await {
            Ok(result) => result.map_err(GatewayError::from),
            Err(_) => Err(GatewayError::UpstreamTimeout(UpstreamDelay::Answer {
                timeout: self.timeout,
            })),
        }
    }
}

/// A request to MLflow that failed before its response head: a client body that failed its
/// SigV4 check or stalled aborts the upstream request and is the client's fault; otherwise
/// MLflow is unreachable or dropped the connection.
impl From<hyper_util::client::legacy::Error> for GatewayError {
    fn from(error: hyper_util::client::legacy::Error) -> Self {
        if let Some(rejected) = find_in_chain::<PayloadRejected>(&error) {
            return GatewayError::from(rejected);
        }
        if let Some(timeout) = find_in_chain::<BodyTimeout>(&error) {
            return GatewayError::from(timeout);
        }
        if error.is_connect() {
            tracing::warn!(error = %error, "MLflow is not reachable");
            GatewayError::UpstreamUnavailable(UpstreamFailure::Unreachable(Arc::new(error)))
        } else {
            tracing::warn!(error = ?error, "request to MLflow failed");
            GatewayError::UpstreamUnavailable(UpstreamFailure::ConnectionClosed(Arc::new(error)))
        }
    }
}

/// Passes a body through and reports when its last byte has been handed to the upstream.
struct SentSignal {
    inner: Body,
    sent: Option<oneshot::Sender<()>>,
}

impl SentSignal {
    fn new(inner: Body, sent: oneshot::Sender<()>) -> Self {
        let mut signal = SentSignal {
            inner,
            sent: Some(sent),
        };
        signal.notify_if_done();
        signal
    }

    fn notify_if_done(&mut self) {
        if http_body::Body::is_end_stream(&self.inner)
            && let Some(sent) = self.sent.take()
        {
            let _ = sent.send(());
        }
    }
}

impl http_body::Body for SentSignal {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => {
                if let Some(sent) = this.sent.take() {
                    let _ = sent.send(());
                }
            }
            Some(_) => this.notify_if_done(),
        }
        Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
