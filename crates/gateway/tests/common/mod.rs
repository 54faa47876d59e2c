//! Setup shared by the integration tests that run a whole gateway on a local port.

use std::time::Duration;

use mlgate::audit::AuditSink;
use mlgate::listen::{self, Connections, Drain, ListenLimits, TrustedProxies};
use mlgate::pipeline::Gateway;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Serves `gateway` on `listener` (plain HTTP, no trusted proxy) until `stop` fires or is
/// dropped.
pub fn spawn_gateway(
    listener: TcpListener,
    gateway: Gateway,
    audit: &AuditSink,
    stop: oneshot::Receiver<()>,
) {
    let drain = Drain {
        delay: None,
        grace: Duration::from_secs(5),
        draining: gateway.draining(),
    };
    let connections = Connections {
        tls: None,
        limits: ListenLimits {
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(5),
        },
        proxies: TrustedProxies::default(),
        proxy_protocol: false,
    };
    tokio::spawn(listen::serve(
        listener,
        connections,
        gateway.into_routers(None).public,
        audit.parser_refusals(),
        async {
            let _ = stop.await;
        },
        drain,
    ));
}
