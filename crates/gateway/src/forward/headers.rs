//! Header hygiene between the client and MLflow.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::authenticate::session::{COOKIE_NAME, SECURE_COOKIE_NAME};
use crate::listen::Peer;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the legacy
/// ones proxies are expected to drop.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Client headers MLflow (or a later mlgate stage) would believe, so only mlgate may set them:
/// MLflow's own credential and delegation headers, the guardrail bypass, forwarding headers
/// (mlgate sets its own), and mlgate's credentials (MLflow must never see a caller's secret).
const UNTRUSTED: [HeaderName; 10] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-mlflow-authorization"),
    HeaderName::from_static("x-mlflow-assistant-delegation"),
    HeaderName::from_static("x-mlflow-guardrail-bypass"),
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-real-ip"),
    // The client's expectation was answered by mlgate's own server; MLflow gets the body anyway.
    header::EXPECT,
];

/// Removes hop-by-hop headers, including any header the `Connection` header names.
/// `TE: trailers` is the one `TE` value a proxy may pass on.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    let keep_te = headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    headers.remove(header::TE);
    if keep_te {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    // Any `Proxy-*` header is meant for a proxy, never for MLflow or the client.
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Prepares a client request's headers for MLflow.
pub(super) fn clean_request(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    for name in &UNTRUSTED {
        headers.remove(name);
    }
    let identity: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-mlgate-"))
        .cloned()
        .collect();
    for name in identity {
        headers.remove(name);
    }
    strip_session_cookie(headers);
}

/// Drops mlgate's session cookie (under either of its names) and keeps any other cookie.
fn strip_session_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split('=').next().map(str::trim).unwrap_or_default();
            !pair.is_empty() && name != COOKIE_NAME && name != SECURE_COOKIE_NAME
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Tells MLflow who the client is. mlgate is the edge, so it replaces whatever the client sent:
/// MLflow's uvicorn trusts `X-Forwarded-For` from 127.0.0.1 (e.g. for its localhost-only
/// assistant), and a forwarded client address must not be forgeable.
pub(super) fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &Peer,
    client_host: Option<HeaderValue>,
) {
    if let Ok(ip) = HeaderValue::from_str(&peer.ip.to_string()) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), ip);
    }
    let proto = if peer.secure { "https" } else { "http" };
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
    if let Some(host) = client_host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip, trailers"),
            ("trailer", "x-checksum"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("content-type", "application/json"),
        ]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["content-type", "te"]);
        assert_eq!(headers[header::TE], "trailers");
    }

    #[test]
    fn te_without_trailers_goes() {
        let mut headers = map(&[("te", "gzip")]);
        strip_hop_by_hop(&mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn trusted_and_credential_headers_go_other_cookies_stay() {
        let mut headers = map(&[
            ("authorization", "Basic YWxpY2U6c2VjcmV0"),
            ("x-mlflow-authorization", "Basic x"),
            ("x-mlflow-assistant-delegation", "yes"),
            ("x-mlflow-guardrail-bypass", "1"),
            ("x-mlgate-principal", "arn:aws:iam::111111111111:user/admin"),
            ("x-forwarded-for", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
            ("x-real-ip", "127.0.0.1"),
            ("expect", "100-continue"),
            (
                "cookie",
                &format!("theme=dark; {COOKIE_NAME}=secret; {SECURE_COOKIE_NAME}=secret2"),
            ),
            ("cookie", "other=1"),
            ("x-mlflow-workspace", "team-a"),
        ]);
        clean_request(&mut headers);
        assert_eq!(names(&headers), ["cookie", "x-mlflow-workspace"]);
        assert_eq!(headers[header::COOKIE], "theme=dark; other=1");
    }

    #[test]
    fn only_session_cookie_means_no_cookie_header() {
        let mut headers = map(&[("cookie", &format!("{COOKIE_NAME}=secret"))]);
        clean_request(&mut headers);
        assert!(headers.get(header::COOKIE).is_none());
    }

    #[test]
    fn forwarded_headers_are_mlgates_own() {
        let mut headers = map(&[("x-forwarded-for", "10.0.0.1")]);
        clean_request(&mut headers);
        let peer = Peer {
            ip: "203.0.113.7".parse().expect("addr"),
            secure: true,
        };
        set_forwarded(
            &mut headers,
            &peer,
            Some(HeaderValue::from_static("mlflow.example.com")),
        );
        assert_eq!(headers["x-forwarded-for"], "203.0.113.7");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "mlflow.example.com");
    }
}
