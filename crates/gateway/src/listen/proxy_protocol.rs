//! The PROXY protocol (HAProxy's v1 text and v2 binary header): a TCP load balancer writes it
//! before the client's first byte to name the client. Read only with `--proxy-protocol` and
//! only from `--trusted-proxies` peers, since whoever writes it chooses the address.
//!
//! The header is read exactly, never past its end, so the bytes after it reach TLS or HTTP
//! untouched: v1 up to its `\r\n` (at most 107 bytes), v2 its 16 fixed bytes and then the
//! length they announce. The bytes are then parsed by the `ppp` crate.

use std::net::IpAddr;

use ppp::{HeaderResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest v1 header (the specification's bound).
const MAX_V1: usize = 107;
/// Longest v2 header read: addresses and a few TLVs; load balancers send far less.
const MAX_V2: usize = 16 + 1024;
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Why a connection from a trusted proxy was closed before any HTTP was read.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("the PROXY protocol header is longer than mlgate reads")]
    TooLong,
    #[error("malformed PROXY protocol header")]
    Malformed,
    #[error("cannot read the PROXY protocol header")]
    Io(#[from] std::io::Error),
}

/// Reads the header at the start of `stream` and returns the client it names; `None` for a
/// header that names no client (v2 `LOCAL`, v1 `UNKNOWN`: the proxy's own health checks), so
/// the connection's peer stays.
pub async fn read_client<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<IpAddr>, ProxyHeaderError> {
    let mut header = vec![0u8; V1_PREFIX.len()];
    stream.read_exact(&mut header).await?;
    if header == V1_PREFIX {
        while !header.ends_with(b"\r\n") {
            if header.len() == MAX_V1 {
                return Err(ProxyHeaderError::TooLong);
            }
            header.push(stream.read_u8().await?);
        }
    } else if V2_SIGNATURE.starts_with(&header) {
        header.resize(16, 0);
        stream.read_exact(&mut header[V1_PREFIX.len()..]).await?;
        let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
        if 16 + length > MAX_V2 {
            return Err(ProxyHeaderError::TooLong);
        }
        header.resize(16 + length, 0);
        stream.read_exact(&mut header[16..]).await?;
    } else {
        return Err(ProxyHeaderError::Missing);
    }
    client_of(&header)
}

/// The client a complete header names.
fn client_of(header: &[u8]) -> Result<Option<IpAddr>, ProxyHeaderError> {
    match HeaderResult::parse(header) {
        HeaderResult::V1(Ok(parsed)) => Ok(match parsed.addresses {
            v1::Addresses::Tcp4(a) => Some(IpAddr::V4(a.source_address)),
            v1::Addresses::Tcp6(a) => Some(IpAddr::V6(a.source_address)),
            v1::Addresses::Unknown => None,
        }),
        HeaderResult::V2(Ok(parsed)) => match (parsed.command, parsed.addresses) {
            (v2::Command::Local, _) => Ok(None),
            (v2::Command::Proxy, v2::Addresses::IPv4(a)) => Ok(Some(IpAddr::V4(a.source_address))),
            (v2::Command::Proxy, v2::Addresses::IPv6(a)) => Ok(Some(IpAddr::V6(a.source_address))),
            // A proxied connection whose client has no IP address: nothing to decide on.
            (v2::Command::Proxy, _) => Err(ProxyHeaderError::Malformed),
        },
        _ => Err(ProxyHeaderError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<Option<IpAddr>, ProxyHeaderError>, Vec<u8>) {
        let mut stream = bytes;
        let client = read_client(&mut stream).await;
        (client, stream.to_vec())
    }

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(0x20 | command);
        bytes.push(family);
        bytes.extend_from_slice(&u16::try_from(addresses.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(addresses);
        bytes
    }

    #[tokio::test]
    async fn v1_names_the_client_and_leaves_the_request() {
        let (client, rest) =
            read(b"PROXY TCP4 203.0.113.9 10.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n").await;
        assert_eq!(client.unwrap(), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        let (client, _) = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 51000 443\r\n").await;
        assert_eq!(client.unwrap(), Some("2001:db8::1".parse().unwrap()));
        let (client, rest) = read(b"PROXY UNKNOWN\r\nX").await;
        assert_eq!(client.unwrap(), None);
        assert_eq!(rest, b"X");
    }

    #[tokio::test]
    async fn v2_names_the_client_and_leaves_the_request() {
        let mut addresses = vec![203, 0, 113, 9, 10, 0, 0, 1];
        addresses.extend_from_slice(&51000u16.to_be_bytes());
        addresses.extend_from_slice(&443u16.to_be_bytes());
        let mut bytes = v2(1, 0x11, &addresses);
        bytes.extend_from_slice(b"\x16\x03\x01");
        let (client, rest) = read(&bytes).await;
        assert_eq!(client.unwrap(), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(rest, b"\x16\x03\x01");
        let (client, rest) = read(&v2(0, 0, &[])).await;
        assert_eq!(client.unwrap(), None, "LOCAL: the proxy's own connection");
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.9",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x01",
        ] {
            let (client, _) = read(bytes).await;
            assert!(client.is_err(), "{bytes:?}");
        }
        let long = [&b"PROXY "[..], &[b'1'; 200]].concat();
        assert!(matches!(
            read(&long).await.0,
            Err(ProxyHeaderError::TooLong)
        ));
        let mut huge = v2(1, 0x11, &[]);
        huge[14..16].copy_from_slice(&5000u16.to_be_bytes());
        assert!(matches!(
            read(&huge).await.0,
            Err(ProxyHeaderError::TooLong)
        ));
    }
}
