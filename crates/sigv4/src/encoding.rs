//! Percent-encoding and hex as SigV4 uses them.
//!
//! SigV4 keeps only the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) and writes every
//! other byte as `%XX` with upper-case hex; this is aws-sigv4's `BASE_SET` and botocore's
//! `quote(safe='-_.~')`.

use std::borrow::Cow;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` percent-encoded; `/` is kept when `keep_slash` (for paths).
pub(crate) fn encode_into(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 0xf)],
            ]);
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one query component the way form-urlencoded servers (MLflow's Flask and FastAPI
/// stacks, aws-sigv4) do: `+` is a space. A `%` that is not followed by two hex digits is an
/// error rather than a literal `%`, because parsers disagree on it and no real client sends it.
pub(crate) fn decode_query_component(raw: &str) -> Option<Cow<'_, [u8]>> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(out))
}

/// One `key[=value]` segment of a raw query string, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawPair<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// Splits a raw query string on `&`, skipping empty segments as form-urlencoded parsers do; a
/// segment without `=` has an empty value (`k` and `k=` mean the same).
pub(crate) fn raw_pairs(query: &str) -> impl Iterator<Item = RawPair<'_>> {
    query.split('&').filter(|s| !s.is_empty()).map(|s| {
        let (key, value) = s.split_once('=').unwrap_or((s, ""));
        RawPair { key, value }
    })
}

/// Lower-case hex of a 32-byte digest, as SigV4 writes hashes and signatures.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, &b) in bytes.iter().enumerate() {
        out[2 * i] = HEX_LOWER[usize::from(b >> 4)];
        out[2 * i + 1] = HEX_LOWER[usize::from(b & 0xf)];
    }
    out
}

/// Parses exactly 64 lower-case hex digits; every real signer emits lower case, and accepting
/// one spelling keeps the values that reach logs and caches unambiguous.
pub(crate) fn parse_hex32(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let nibble = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        let all: Vec<u8> = (0u8..=255).collect();
        let mut out = Vec::new();
        encode_into(&mut out, &all, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("%00%01"));
        assert!(s.contains("%2F0123456789%3A"));
        assert!(s.contains("%2B%2C-.%2F"));
        assert!(s.contains("Z%5B%5C%5D%5E_%60a"));
        assert!(s.contains("z%7B%7C%7D~%7F%80"));
        assert!(s.ends_with("%FF"));
        let mut out = Vec::new();
        encode_into(&mut out, b"/a b/%2F", true);
        assert_eq!(out, b"/a%20b/%252F");
    }

    #[test]
    fn decodes_strictly() {
        assert_eq!(
            decode_query_component("a+b%20c%2b%E1%88%B4")
                .unwrap()
                .as_ref(),
            "a b c+\u{1234}".as_bytes()
        );
        assert_eq!(decode_query_component("%ff").unwrap().as_ref(), b"\xff");
        assert!(matches!(
            decode_query_component("plain"),
            Some(Cow::Borrowed(_))
        ));
        for bad in ["%", "%2", "%zz", "a%2g", "%%20"] {
            assert_eq!(decode_query_component(bad), None, "{bad}");
        }
    }

    #[test]
    fn splits_pairs() {
        let pairs: Vec<_> = raw_pairs("a=1&&b&c=&=d&e=f=g").collect();
        let keys: Vec<_> = pairs.iter().map(|p| (p.key, p.value)).collect();
        assert_eq!(
            keys,
            [("a", "1"), ("b", ""), ("c", ""), ("", "d"), ("e", "f=g")]
        );
        assert_eq!(raw_pairs("").count(), 0);
    }

    #[test]
    fn hex_round_trip() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let hex = hex32(&bytes);
        assert_eq!(parse_hex32(&hex), Some(bytes));
        let mut upper = hex;
        upper.make_ascii_uppercase();
        assert_eq!(parse_hex32(&upper), None);
        assert_eq!(parse_hex32(&hex[..63]), None);
        assert_eq!(parse_hex32(&[b'g'; 64]), None);
    }
}
