//! Stage 1: accept connections (HTTP/1.1 and h2, optional TLS with ALPN), apply header limits
//! and timeouts, tell later stages who the client is (behind trusted proxies too), audit
//! requests the HTTP parser refuses before the pipeline sees them, and drain gracefully.

mod body;
mod proxies;
pub mod proxy_protocol;
mod tls;

use std::error::Error;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use body::{BodyTimeout, IdleTimeout};
pub use proxies::TrustedProxies;
pub use tls::{TlsCertificate, TlsError, load_tls};

/// The client a request came from; a request extension set once, by the listener: the TCP
/// peer, or the client the trusted proxies in front of mlgate name ([`TrustedProxies`]).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// The client's address (`aws:SourceIp`).
    pub ip: IpAddr,
    /// Whether the client reached mlgate, or the trusted proxy in front of it, over TLS
    /// (`aws:SecureTransport`).
    pub secure: bool,
}

impl Peer {
    /// The connection of a request: the one place every stage and the portal learn the client's
    /// address from. Absent only on requests that did not come through [`serve`].
    pub fn of(extensions: &http::Extensions) -> Option<Peer> {
        extensions.get::<Peer>().copied()
    }
}

#[derive(Clone, Debug)]
pub struct ListenLimits {
    /// Largest request head; applies to HTTP/1.1's read buffer and h2's header list.
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
}

/// How the server stops: after the shutdown signal it keeps accepting for `delay` while
/// readiness reports draining, then stops accepting and gives open requests `grace` to finish.
#[derive(Clone, Debug)]
pub struct Drain {
    pub delay: Option<Duration>,
    pub grace: Duration,
    pub draining: Draining,
}

/// Set once the server got its shutdown signal: readiness turns false.
#[derive(Clone, Debug, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A request head hyper's HTTP/1 parser refused before the pipeline saw it.
#[derive(Debug)]
pub struct ParserRefusal {
    pub peer: IpAddr,
    /// What hyper answered.
    pub status: StatusCode,
    /// The parser's reason.
    pub reason: String,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains ([`Drain`]). Requests
/// hyper refuses itself (a malformed or oversized head) never reach `app`: each is handed to
/// `on_refusal` (which audits it, with the TCP peer: no header was read).
pub async fn serve(
    listener: TcpListener,
    connections: Connections,
    app: Router,
    on_refusal: impl Fn(ParserRefusal) + Clone + Send + 'static,
    shutdown: impl Future<Output = ()>,
    drain: Drain,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let limits = &connections.limits;
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses read buffers under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let accepting = Accepting {
        listener,
        builder: Arc::new(builder),
        graceful: GracefulShutdown::new(),
        connections: Arc::new(connections),
        app,
        on_refusal,
    };

    accepting.until(shutdown).await;
    drain.draining.set();
    if let Some(delay) = drain.delay {
        tracing::info!(?delay, "draining: readiness is false; still accepting");
        accepting.until(tokio::time::sleep(delay)).await;
    }
    let Accepting {
        listener, graceful, ..
    } = accepting;
    drop(listener);
    tracing::info!("shutting down; waiting for open requests");
    if tokio::time::timeout(drain.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish in time; closing them");
    }
}

/// What every accepted connection is served with.
pub struct Connections {
    pub tls: Option<TlsAcceptor>,
    pub limits: ListenLimits,
    pub proxies: TrustedProxies,
    /// Connections from the trusted proxies start with a PROXY protocol header naming the
    /// client ([`proxy_protocol`]); from other peers none is read.
    pub proxy_protocol: bool,
}

/// The accept loop's state, kept across the two phases (serving, then draining).
struct Accepting<F> {
    listener: TcpListener,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: GracefulShutdown,
    connections: Arc<Connections>,
    app: Router,
    on_refusal: F,
}

impl<F: Fn(ParserRefusal) + Clone + Send + 'static> Accepting<F> {
    /// Accepts and serves connections until `stop` resolves.
    async fn until(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let (stream, addr) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut stop => return,
            };
            let _ = stream.set_nodelay(true);
            let connections = Arc::clone(&self.connections);
            let app = self.app.clone();
            let builder = Arc::clone(&self.builder);
            let watcher = self.graceful.watcher();
            let on_refusal = self.on_refusal.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let handshake_timeout = connections.limits.header_read_timeout;
                let mut peer_ip = addr.ip();
                if connections.proxy_protocol && connections.proxies.trusts(peer_ip) {
                    let header = proxy_protocol::read_client(&mut stream);
                    match tokio::time::timeout(handshake_timeout, header).await {
                        Ok(Ok(client)) => peer_ip = client.unwrap_or(peer_ip),
                        Ok(Err(error)) => {
                            return tracing::debug!(%addr, error = %error, "connection closed");
                        }
                        Err(_) => return tracing::debug!(%addr, "PROXY header timed out"),
                    }
                }
                let tcp_peer = Peer {
                    ip: peer_ip,
                    secure: connections.tls.is_some(),
                };
                let service = {
                    let connections = Arc::clone(&connections);
                    hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                        let client = connections.proxies.client(tcp_peer, request.headers());
                        request.extensions_mut().insert(client);
                        app.clone().oneshot(request)
                    })
                };
                let result = match &connections.tls {
                    None => {
                        watcher
                            .watch(
                                builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .into_owned(),
                            )
                            .await
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(error)) => {
                                    return tracing::debug!(%addr, %error, "TLS handshake failed");
                                }
                                Err(_) => return tracing::debug!(%addr, "TLS handshake timed out"),
                            };
                        watcher
                            .watch(
                                builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .into_owned(),
                            )
                            .await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%addr, %error, "connection ended with an error");
                    if let Some((status, reason)) = parser_refusal(error.as_ref()) {
                        on_refusal(ParserRefusal {
                            peer: addr.ip(),
                            status,
                            reason,
                        });
                    }
                }
            });
        }
    }
}

/// The answer hyper sent and why, when a connection ended because hyper's HTTP/1 parser
/// refused a request head (duplicate `Content-Length`, bad `Transfer-Encoding`, a NUL in a
/// header, a head over the limit, ...). Connections a client closed, reset or left idle are
/// not refusals. The kind is hyper's description, which never quotes the request.
fn parser_refusal(error: &(dyn Error + 'static)) -> Option<(StatusCode, String)> {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(error) = error.downcast_ref::<hyper::Error>()
            && error.is_parse()
        {
            let status = match error.to_string().as_str() {
                _ if !error.is_parse_too_large() => StatusCode::BAD_REQUEST,
                "URI too long" => StatusCode::URI_TOO_LONG,
                _ => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            };
            return Some((status, error.to_string()));
        }
        source = error.source();
    }
    None
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
