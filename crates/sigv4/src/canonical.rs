//! The canonical request, for services other than S3:
//!
//! ```text
//! METHOD \n CanonicalURI \n CanonicalQuery \n (name:value \n)* \n SignedHeaders \n PayloadHash
//! ```
//!
//! Two spellings of the URI lines exist (see [`CanonicalForm`]): AWS's, and the path and query
//! exactly as sent, which is what `requests-auth-aws-sigv4` (the MLflow client's signer) signs.

use std::borrow::Cow;

use crate::encoding::{decode_query_component, encode_into, raw_pairs};
use crate::error::SigV4Error;
use crate::parse::PARAM_SIGNATURE;
use crate::verify::CanonicalForm;

/// The parts of an HTTP request that a SigV4 signature covers, borrowed from wherever the
/// request lives (for the gateway, `http::request::Parts`); the body is not part of it.
///
/// * `path` and `query` are raw, exactly as sent on the wire (`uri.path()`, `uri.query()`
///   without the `?`, or `""`): never decoded or normalized first.
/// * `headers` are every request header as received, in order, repeated names included. Under
///   HTTP/2 there is no `host` header: add `("host", authority)` from `:authority`.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> SignedRequest<'a> {
    /// Values of every header called `name` (ASCII case-insensitive), in request order.
    pub(crate) fn header_values<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The value of a header that must not repeat (an intermediary could act on either copy).
    pub(crate) fn unique_header(&self, name: &'static str) -> Result<Option<&'a [u8]>, SigV4Error> {
        let mut values = self.header_values(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(SigV4Error::Malformed(match name {
                "authorization" => "repeated Authorization header",
                "x-amz-date" => "repeated x-amz-date header",
                "x-amz-content-sha256" => "repeated x-amz-content-sha256 header",
                "x-amz-security-token" => "repeated x-amz-security-token header",
                _ => "a header that must appear once is repeated",
            }));
        }
        Ok(first)
    }
}

/// RFC 3986 §5.2.4 dot-segment removal plus merging of empty segments, as aws-sigv4 (and the
/// AWS test suite) define it for non-S3 services.
pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    if path.starts_with('/') && !path.contains('.') && !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|t| path.ends_with(t));
    if out.is_empty() || trailing {
        out.push('/');
    }
    Cow::Owned(out)
}

fn write_aws_query(out: &mut Vec<u8>, query: &str, presigned: bool) -> Result<(), SigV4Error> {
    if query.is_empty() {
        return Ok(());
    }
    // Encoded pairs share one buffer; the sort compares slices of it.
    let mut buf = Vec::with_capacity(query.len() + 16);
    let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
    for pair in raw_pairs(query) {
        let bad = || SigV4Error::Malformed("invalid percent-encoding in the query string");
        let key = decode_query_component(pair.key).ok_or_else(bad)?;
        let value = decode_query_component(pair.value).ok_or_else(bad)?;
        if presigned && key.as_ref() == PARAM_SIGNATURE.as_bytes() {
            continue;
        }
        let start = buf.len();
        encode_into(&mut buf, &key, false);
        let mid = buf.len();
        encode_into(&mut buf, &value, false);
        pairs.push((start, mid, buf.len()));
    }
    pairs.sort_unstable_by(|a, b| {
        (&buf[a.0..a.1], &buf[a.1..a.2]).cmp(&(&buf[b.0..b.1], &buf[b.1..b.2]))
    });
    for (i, &(start, mid, end)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&buf[start..mid]);
        out.push(b'=');
        out.extend_from_slice(&buf[mid..end]);
    }
    Ok(())
}

/// requests-auth-aws-sigv4 signs the pairs as sent, sorted by name. Only called for queries
/// that [`raw_form_eligible`] accepted: every pair has one `=` and no name repeats.
fn write_raw_query(out: &mut Vec<u8>, query: &str) {
    let mut pairs: Vec<&str> = query.split('&').collect();
    pairs.sort_unstable_by_key(|p| p.split_once('=').map_or(*p, |(k, _)| k));
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(p.as_bytes());
    }
}

/// Trim spaces at both ends and collapse runs of spaces, as aws-sigv4 does (tabs are kept).
fn write_header_value(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &b in &value[start..end] {
        if b == b' ' && previous_space {
            continue;
        }
        previous_space = b == b' ';
        out.push(b);
    }
}

/// Whether the path and query, as sent, can be the canonical URI and query of a
/// requests-auth-aws-sigv4 signature without opening an ambiguity (see docs/sigv4.md):
///
/// * no `%25` in the path: an AWS-form signature for `/a%20b` is the raw form of `/a%2520b`;
/// * every query pair is `name=value` with exactly one `=`, and no name repeats: that client
///   keeps only the last value of a repeated name, so the others would be unsigned.
pub(crate) fn raw_form_eligible(request: &SignedRequest<'_>) -> bool {
    if request.path.contains("%25") || request.query.split('&').count() > 64 {
        return false;
    }
    if request.query.is_empty() {
        return true;
    }
    let mut names: Vec<&str> = Vec::new();
    for pair in request.query.split('&') {
        match pair.split_once('=') {
            Some((name, value)) if !value.contains('=') && !names.contains(&name) => {
                names.push(name);
            }
            _ => return false,
        }
    }
    true
}

/// Writes the canonical request up to and including the signed-headers line and its newline;
/// the payload line follows. A signed header missing from the request is an error.
pub(crate) fn write_canonical_prefix(
    out: &mut Vec<u8>,
    request: &SignedRequest<'_>,
    form: CanonicalForm,
    presigned: bool,
    signed_headers: &str,
) -> Result<(), SigV4Error> {
    out.extend_from_slice(request.method.as_bytes());
    out.push(b'\n');
    match form {
        CanonicalForm::Aws => {
            encode_into(out, normalize_path(request.path).as_bytes(), true);
            out.push(b'\n');
            write_aws_query(out, request.query, presigned)?;
        }
        CanonicalForm::RawUri => {
            out.extend_from_slice(request.path.as_bytes());
            out.push(b'\n');
            write_raw_query(out, request.query);
        }
    }
    out.push(b'\n');
    for name in signed_headers.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = request.header_values(name);
        let first = values
            .next()
            .ok_or_else(|| SigV4Error::MissingSignedHeader(name.to_owned()))?;
        write_header_value(out, first);
        for value in values {
            out.push(b',');
            write_header_value(out, value);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(
        req: &SignedRequest<'_>,
        form: CanonicalForm,
        presigned: bool,
        signed: &str,
    ) -> String {
        let mut out = Vec::new();
        write_canonical_prefix(&mut out, req, form, presigned, signed).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn normalizes_like_aws_sigv4() {
        for (input, expected) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/../c/./d", "/a/c/d"),
            ("/a/b/.", "/a/b/"),
            ("/../a", "/a"),
            ("a/b", "/a/b"),
            ("/a.b/c..d/.e", "/a.b/c..d/.e"),
            ("/%2E%2E/x", "/%2E%2E/x"),
        ] {
            assert_eq!(normalize_path(input), expected, "{input}");
        }
    }

    #[test]
    fn double_encodes_the_path() {
        let req = SignedRequest {
            method: "POST",
            path: "/test/@connections/JBDvjfGEIAMCERw%3D/a b/\u{1234}",
            query: "",
            headers: &[("Host", b"h")],
        };
        assert_eq!(
            prefix(&req, CanonicalForm::Aws, false, "host"),
            "POST\n/test/%40connections/JBDvjfGEIAMCERw%253D/a%20b/%E1%88%B4\n\nhost:h\n\nhost\n"
        );
    }

    #[test]
    fn canonicalizes_the_query() {
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "b=2&a=z&a=y&flag&c=a+b%2b%7e&&=v&X-Amz-Signature=s&%E1%88%B4=1",
            headers: &[("host", b"h")],
        };
        assert_eq!(
            prefix(&req, CanonicalForm::Aws, false, "host"),
            "GET\n/\n=v&%E1%88%B4=1&X-Amz-Signature=s&a=y&a=z&b=2&c=a%20b%2B~&flag=\nhost:h\n\nhost\n"
        );
        assert_eq!(
            prefix(&req, CanonicalForm::Aws, true, "host"),
            "GET\n/\n=v&%E1%88%B4=1&a=y&a=z&b=2&c=a%20b%2B~&flag=\nhost:h\n\nhost\n"
        );
        let bad = SignedRequest {
            query: "a=%zz",
            ..req
        };
        let mut out = Vec::new();
        assert!(write_canonical_prefix(&mut out, &bad, CanonicalForm::Aws, false, "host").is_err());
    }

    #[test]
    fn canonicalizes_headers() {
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                ("Host", b"example.amazonaws.com"),
                ("My-Header1", b"value4"),
                ("my-header1", b"  a   b  c "),
                ("My-Header2", b"\"a\t\tb\""),
                ("Unsigned", b"x"),
            ],
        };
        assert_eq!(
            prefix(
                &req,
                CanonicalForm::Aws,
                false,
                "host;my-header1;my-header2"
            ),
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,a b c\nmy-header2:\"a\t\tb\"\n\nhost;my-header1;my-header2\n"
        );
    }

    #[test]
    fn raw_form_is_the_uri_as_sent() {
        let req = SignedRequest {
            method: "GET",
            path: "/api/2.0/mlflow-artifacts/artifacts/1/a%20b.txt",
            query: "z=1&filter=name+%3D+%27x%27&a=%2F",
            headers: &[("host", b"h")],
        };
        assert!(raw_form_eligible(&req));
        assert_eq!(
            prefix(&req, CanonicalForm::RawUri, false, "host"),
            "GET\n/api/2.0/mlflow-artifacts/artifacts/1/a%20b.txt\na=%2F&filter=name+%3D+%27x%27&z=1\nhost:h\n\nhost\n"
        );
        assert_eq!(
            prefix(&req, CanonicalForm::Aws, false, "host"),
            "GET\n/api/2.0/mlflow-artifacts/artifacts/1/a%2520b.txt\na=%2F&filter=name%20%3D%20%27x%27&z=1\nhost:h\n\nhost\n"
        );
        for (path, query) in [
            ("/a%25b", ""),
            ("/", "a=1&a=2"),
            ("/", "a"),
            ("/", "a=1&&b=2"),
            ("/", "a=b=c"),
            ("/", "a=1&"),
        ] {
            let req = SignedRequest { path, query, ..req };
            assert!(!raw_form_eligible(&req), "{path}?{query}");
        }
    }
}
