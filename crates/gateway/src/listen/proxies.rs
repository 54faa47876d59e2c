//! Who the client is when mlgate sits behind load balancers or proxies (`--trusted-proxies`).
//!
//! A request's forwarding headers are believed only when the TCP peer is a trusted proxy, and
//! only the one header configured (`--forwarded-header`): a client can always send the other
//! one, which its proxy passes on untouched. The client is the right-most hop that is not a
//! trusted proxy; the hops left of it are the client's own words and are never read. A hop
//! that cannot be read before the client is found keeps the TCP peer (fail closed).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};
use ipnet::IpNet;

use super::Peer;
use crate::config::ForwardedHeader;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The proxies whose forwarding headers are believed, and the header they use.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

/// One hop of a forwarding header: the address it names and, in `Forwarded`, the scheme the
/// proxy that wrote it was reached by.
struct Hop {
    ip: IpAddr,
    secure: Option<bool>,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>, header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies { networks, header }
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// The request's client: the connection's peer, or what the trusted proxies in front of
    /// it say when the peer is one of them.
    pub fn client(&self, connection: Peer, headers: &HeaderMap) -> Peer {
        if !self.trusts(connection.ip) {
            return connection;
        }
        let found = match self.header {
            ForwardedHeader::XForwardedFor => self
                .right_most_untrusted(headers, &X_FORWARDED_FOR, x_forwarded_for_hop)
                .map(|hop| Peer {
                    ip: hop.ip,
                    secure: x_forwarded_proto(headers).unwrap_or(connection.secure),
                }),
            ForwardedHeader::Forwarded => self
                .right_most_untrusted(headers, &FORWARDED, forwarded_hop)
                .map(|hop| Peer {
                    ip: hop.ip,
                    secure: hop.secure.unwrap_or(connection.secure),
                }),
        };
        found.unwrap_or(connection)
    }

    /// Reads the header's hops from the right until one is not a trusted proxy, and returns it
    /// (or the left-most hop when all are trusted). `None` when the header is absent or a hop
    /// on the way cannot be read.
    fn right_most_untrusted(
        &self,
        headers: &HeaderMap,
        name: &HeaderName,
        read: fn(&str) -> Option<Hop>,
    ) -> Option<Hop> {
        let lines: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().ok())
            .collect::<Option<_>>()?;
        let mut client = None;
        for element in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let hop = read(element.trim())?;
            let trusted = self.trusts(hop.ip);
            client = Some(hop);
            if !trusted {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` element: an address, or (as some proxies write it) address and port.
/// The scheme is in `X-Forwarded-Proto`.
fn x_forwarded_for_hop(element: &str) -> Option<Hop> {
    address(element).map(|ip| Hop { ip, secure: None })
}

/// `X-Forwarded-Proto`: HTTPS only when every value says so (a client's own `https` before
/// its proxy's `http` does not count); `None` when absent or unreadable.
fn x_forwarded_proto(headers: &HeaderMap) -> Option<bool> {
    let mut secure = None;
    for line in headers.get_all(X_FORWARDED_PROTO) {
        for value in line.to_str().ok()?.split(',') {
            let https = scheme_is_https(value.trim())?;
            secure = Some(secure.unwrap_or(true) && https);
        }
    }
    secure
}

fn scheme_is_https(scheme: &str) -> Option<bool> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(true),
        "http" => Some(false),
        _ => None,
    }
}

/// A `Forwarded` element (RFC 7239): `for=` must name an address (not `unknown` or an
/// obfuscated name); `proto=`, when present, must be `http` or `https`.
fn forwarded_hop(element: &str) -> Option<Hop> {
    let mut ip = None;
    let mut secure = None;
    for pair in element.split(';') {
        let (name, value) = pair.trim().split_once('=')?;
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"')?,
            None => value,
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "for" if ip.is_none() => ip = Some(address(value)?),
            "proto" if secure.is_none() => secure = Some(scheme_is_https(value)?),
            "for" | "proto" => return None,
            _ => {}
        }
    }
    Some(Hop { ip: ip?, secure })
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(bracketed) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return bracketed.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    text.parse::<SocketAddr>().ok().map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LB: &str = "10.0.0.5";

    fn proxies(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(
            vec!["10.0.0.0/24".parse().unwrap(), "fd00::/8".parse().unwrap()],
            header,
        )
    }

    fn peer(ip: &str, secure: bool) -> Peer {
        Peer {
            ip: ip.parse().unwrap(),
            secure,
        }
    }

    fn client(header: ForwardedHeader, from: Peer, headers: &[(&str, &str)]) -> (String, bool) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let found = proxies(header).client(from, &map);
        (found.ip.to_string(), found.secure)
    }

    fn xff(from: Peer, headers: &[(&str, &str)]) -> (String, bool) {
        client(ForwardedHeader::XForwardedFor, from, headers)
    }

    fn fwd(from: Peer, headers: &[(&str, &str)]) -> (String, bool) {
        client(ForwardedHeader::Forwarded, from, headers)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let spoofed = [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        ];
        assert_eq!(
            xff(peer("198.51.100.7", false), &spoofed),
            ("198.51.100.7".into(), false)
        );
        assert_eq!(
            fwd(peer("198.51.100.7", false), &spoofed),
            ("198.51.100.7".into(), false)
        );
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let from = peer(LB, false);
        // The client wrote 1.1.1.1 itself; its proxy appended the address it saw.
        let chain = [("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")];
        assert_eq!(xff(from, &chain).0, "203.0.113.9");
        let lines = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ];
        assert_eq!(xff(from, &lines).0, "203.0.113.9");
        // Every hop trusted: the left-most one.
        assert_eq!(
            xff(from, &[("x-forwarded-for", "10.0.0.8, 10.0.0.7")]).0,
            "10.0.0.8"
        );
        assert_eq!(
            xff(from, &[("x-forwarded-for", "[2001:db8::1]:4711")]).0,
            "2001:db8::1"
        );
        assert_eq!(
            xff(from, &[("x-forwarded-for", "192.0.2.1:80")]).0,
            "192.0.2.1"
        );
        // IPv4-mapped proxies are trusted as their IPv4 address.
        assert_eq!(
            xff(
                peer("::ffff:10.0.0.5", false),
                &[("x-forwarded-for", "192.0.2.1")]
            )
            .0,
            "192.0.2.1"
        );
    }

    #[test]
    fn unreadable_hops_keep_the_tcp_peer() {
        let from = peer(LB, true);
        let kept = (LB.to_owned(), true);
        assert_eq!(xff(from, &[]), kept);
        for bad in [
            "",
            "unknown",
            "203.0.113.9, ",
            "203.0.113.9 10.0.0.7",
            "example.com",
        ] {
            assert_eq!(xff(from, &[("x-forwarded-for", bad)]), kept, "{bad:?}");
        }
        // ... but the client's own garbage left of its proxy's hop is never read.
        assert_eq!(
            xff(from, &[("x-forwarded-for", "garbage, 203.0.113.9")]).0,
            "203.0.113.9"
        );
        for bad in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=1.2.3.4;for=5.6.7.8",
            "for",
        ] {
            assert_eq!(fwd(from, &[("forwarded", bad)]), kept, "{bad:?}");
        }
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let from = peer(LB, false);
        let both = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.1"),
        ];
        assert_eq!(xff(from, &both).0, "203.0.113.9");
        assert_eq!(fwd(from, &both).0, "198.51.100.1");
    }

    #[test]
    fn secure_transport_follows_the_proxies_scheme() {
        let plain = peer(LB, false);
        let tls = peer(LB, true);
        let hop = ("x-forwarded-for", "203.0.113.9");
        assert!(xff(plain, &[hop, ("x-forwarded-proto", "https")]).1);
        assert!(!xff(tls, &[hop, ("x-forwarded-proto", "http")]).1);
        // The client's own "https" before its proxy's "http" does not make it secure.
        assert!(!xff(plain, &[hop, ("x-forwarded-proto", "https, http")]).1);
        // Absent or unreadable: the connection's own.
        assert!(xff(tls, &[hop]).1);
        assert!(!xff(plain, &[hop, ("x-forwarded-proto", "quic")]).1);
        let forwarded = |value| fwd(plain, &[("forwarded", value)]);
        assert_eq!(
            forwarded(r#"for="[2001:db8::1]:4711";proto=https, for=10.0.0.7;proto=http"#),
            ("2001:db8::1".into(), true)
        );
        assert_eq!(forwarded("for=203.0.113.9"), ("203.0.113.9".into(), false));
    }
}
