//! One canonical form for a request path, and refusal of every path MLflow could read
//! differently from mlgate.
//!
//! MLflow runs under uvicorn: the ASGI `path` it routes on is the percent-**decoded** request
//! path (`%2F` becomes a real `/`), Starlette and Werkzeug then match routes on that decoded
//! string. mlgate therefore reasons about the decoded path too, and refuses anything whose
//! decoded form is ambiguous or dangerous:
//!
//! * `.` / `..` segments (raw or as `%2E`, which is refused anywhere), empty segments (`//`);
//! * an encoded `/` (`%2F`) or any `\` (raw or `%5C`): MLflow, a proxy or an artifact store
//!   may split on them where mlgate did not;
//! * NUL and other control characters (raw or encoded), raw spaces, raw non-ASCII bytes;
//! * malformed percent-escapes and escapes that decode to invalid UTF-8 (this includes
//!   "overlong" encodings such as `%C0%AE`);
//! * `?` / `#` (the caller passes the path without query or fragment) and paths longer than
//!   [`MAX_PATH_LEN`] bytes or with more than [`MAX_SEGMENTS`] segments.
//!
//! The canonical form re-encodes the decoded path so that exactly the RFC 3986 `pchar`
//! characters (unreserved, sub-delims, `:` and `@`) appear raw and everything else is
//! `%XX` with upper-case hex. Decoding the canonical form gives back the string MLflow routes
//! on, so the canonical path can be forwarded as-is and can be matched against route
//! patterns (whose literal parts only contain `pchar`s).

use std::fmt;

/// Longest raw path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 8192;
/// Most `/`-separated segments accepted.
pub const MAX_SEGMENTS: usize = 256;

/// Why a request path was refused. `Display` is safe to show to the client: it never echoes
/// the path itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path is empty or does not start with '/'")]
    NotAbsolute,
    #[error(
        "the request path is longer than {MAX_PATH_LEN} bytes or has more than {MAX_SEGMENTS} segments"
    )]
    TooLong,
    #[error("the request path contains an empty segment ('//')")]
    EmptySegment,
    #[error("the request path contains a '.' or '..' segment")]
    DotSegment,
    #[error("the request path contains an encoded '.' (%2E)")]
    EncodedDot,
    #[error("the request path contains an encoded '/' (%2F)")]
    EncodedSlash,
    #[error("the request path contains a backslash")]
    Backslash,
    #[error("the request path contains a control character")]
    ControlCharacter,
    #[error("the request path contains a character that must be percent-encoded ({0})")]
    InvalidCharacter(CharClass),
    #[error("the request path contains an invalid percent-escape")]
    InvalidPercentEncoding,
    #[error("the request path does not decode to valid UTF-8")]
    InvalidUtf8,
}

/// A printable description of a refused raw character (never the character itself when it
/// is not printable ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    Space,
    QuestionMark,
    Hash,
    NonAscii,
}

impl fmt::Display for CharClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CharClass::Space => "space",
            CharClass::QuestionMark => "'?'",
            CharClass::Hash => "'#'",
            CharClass::NonAscii => "non-ASCII byte",
        })
    }
}

/// RFC 3986 `pchar` minus `pct-encoded`: the characters the canonical form keeps raw.
pub(crate) fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Returns the one canonical form of `raw_path` (see the module docs), or why it is refused.
///
/// `raw_path` is the path component of the request target exactly as received (still
/// percent-encoded, without `?query`).
pub fn normalize_path(raw_path: &str) -> Result<String, PathError> {
    let raw = raw_path.as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    // Decode, refusing what must never appear, segment by segment.
    let mut decoded: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'%' => {
                let (Some(h), Some(l)) = (
                    raw.get(i + 1).copied().and_then(hex_val),
                    raw.get(i + 2).copied().and_then(hex_val),
                ) else {
                    return Err(PathError::InvalidPercentEncoding);
                };
                let v = h * 16 + l;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'.' => return Err(PathError::EncodedDot),
                    b'\\' => return Err(PathError::Backslash),
                    0x00..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                    _ => decoded.push(v),
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            0x00..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            b' ' => return Err(PathError::InvalidCharacter(CharClass::Space)),
            b'?' => return Err(PathError::InvalidCharacter(CharClass::QuestionMark)),
            b'#' => return Err(PathError::InvalidCharacter(CharClass::Hash)),
            0x80..=0xff => return Err(PathError::InvalidCharacter(CharClass::NonAscii)),
            _ => decoded.push(b),
        }
        i += 1;
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;

    // Segment rules on the decoded path ('/' can only come from a raw '/').
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(PathError::TooLong);
    }
    let last = segments.len() - 1;
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "" if n != last => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::DotSegment),
            _ => {}
        }
    }

    // Re-encode canonically.
    let mut out = String::with_capacity(decoded.len() + 16);
    for &b in decoded.as_bytes() {
        if b == b'/' || is_pchar(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
    Ok(out)
}

/// Percent-decodes a piece of a canonical path (as produced by [`normalize_path`]).
pub(crate) fn decode_canonical(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        normalize_path(p).unwrap_or_else(|e| panic!("{p:?} refused: {e}"))
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/api/2.0/mlflow/runs/get",
            "/ajax-api/2.0/mlflow/experiments/search",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel",
            "/api/2.0/mlflow-artifacts/artifacts/dir/",
            "/gateway/gemini/v1beta/models/ep:generateContent",
            "/api/3.0/mlflow/mcp-servers/ns/x@y",
        ] {
            assert_eq!(ok(p), p);
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_canonicalized() {
        assert_eq!(ok("/api/2.0/mlflow/runs/%67et"), "/api/2.0/mlflow/runs/get");
        assert_eq!(ok("/a/%7e%41"), "/a/~A");
        assert_eq!(ok("/a/%40org"), "/a/@org");
        assert_eq!(ok("/a/my%20file.txt"), "/a/my%20file.txt");
        assert_eq!(ok("/a/my%2afile"), "/a/my*file");
        assert_eq!(ok("/a/100%25"), "/a/100%25");
        assert_eq!(ok("/a/%3f%23"), "/a/%3F%23");
        assert_eq!(ok("/a/%c3%a9"), "/a/%C3%A9");
        // raw characters that must be encoded are accepted and encoded
        assert_eq!(ok("/a/{b}|c"), "/a/%7Bb%7D%7Cc");
        // decoding the canonical form gives MLflow's view of the path
        assert_eq!(decode_canonical(&ok("/a/my%20file%c3%a9")), "/a/my fileé");
    }

    #[test]
    fn traversal_and_ambiguity_are_refused() {
        use PathError::*;
        let cases: &[(&str, PathError)] = &[
            ("/api/2.0/mlflow/../mlflow/runs/get", DotSegment),
            ("/api/2.0/mlflow/./runs/get", DotSegment),
            ("/api/2.0/mlflow/runs/..", DotSegment),
            ("/api/2.0/mlflow/%2e%2e/mlflow/runs/get", EncodedDot),
            ("/api/2.0/mlflow/%2E%2E/runs", EncodedDot),
            ("/api/2.0/mlflow/.%2e/runs", EncodedDot),
            ("/api/2.0/mlflow/file%2Etxt", EncodedDot),
            ("/api/2.0/mlflow%2Fruns/get", EncodedSlash),
            ("/api/2.0/mlflow%2fruns/get", EncodedSlash),
            ("/api/2.0//mlflow/runs/get", EmptySegment),
            ("//api/2.0/mlflow/runs/get", EmptySegment),
            ("/api/2.0/mlflow\\runs/get", Backslash),
            ("/api/2.0/mlflow%5cruns/get", Backslash),
            ("/api/2.0/mlflow%5Cruns/get", Backslash),
            ("/api/2.0/mlflow/runs/get%00", ControlCharacter),
            ("/api/2.0/mlflow/runs/get\0", ControlCharacter),
            ("/api/2.0/mlflow/runs/get%0a", ControlCharacter),
            ("/api/2.0/mlflow/runs/get%7F", ControlCharacter),
            ("/api/2.0/mlflow/runs/get\t", ControlCharacter),
            ("/api/2.0/mlflow/runs/%g0", InvalidPercentEncoding),
            ("/api/2.0/mlflow/runs/%4", InvalidPercentEncoding),
            ("/api/2.0/mlflow/runs/%", InvalidPercentEncoding),
            // overlong '.' and '/' and a lone surrogate: not UTF-8
            ("/api/2.0/mlflow/%c0%ae%c0%ae/runs", InvalidUtf8),
            ("/api/2.0/mlflow/%c0%af", InvalidUtf8),
            ("/api/2.0/mlflow/%e0%80%ae", InvalidUtf8),
            ("/api/2.0/mlflow/%ed%a0%80", InvalidUtf8),
            ("/api/2.0/mlflow/%ff", InvalidUtf8),
            ("/a b", InvalidCharacter(CharClass::Space)),
            ("/a?b=c", InvalidCharacter(CharClass::QuestionMark)),
            ("/a#b", InvalidCharacter(CharClass::Hash)),
            ("/é", InvalidCharacter(CharClass::NonAscii)),
            ("", NotAbsolute),
            ("api/2.0/mlflow/runs/get", NotAbsolute),
            ("*", NotAbsolute),
            ("http://x/api", NotAbsolute),
        ];
        for (p, want) in cases {
            assert_eq!(normalize_path(p).as_ref(), Err(want), "{p:?}");
        }
    }

    #[test]
    fn overlong_paths_are_refused() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(normalize_path(&long), Err(PathError::TooLong));
        let many = "/a".repeat(MAX_SEGMENTS + 1);
        assert_eq!(normalize_path(&many), Err(PathError::TooLong));
        assert!(normalize_path(&"/a".repeat(MAX_SEGMENTS)).is_ok());
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for p in ["/a/%7e%41/%c3%a9/x%20y/%40/{}", "/api/2.0/mlflow/runs/get"] {
            let once = ok(p);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn errors_do_not_echo_the_path() {
        let e = normalize_path("/secret-token/../x").unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }
}
