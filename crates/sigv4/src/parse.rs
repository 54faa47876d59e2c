//! Strict parsing of the two places a SigV4 signature travels: the `Authorization` header and
//! the presigned query (`X-Amz-*` parameters).
//!
//! Anything a real signer never produces (duplicate or unknown parts, upper-case hex, unsorted
//! or repeated signed headers, oversized fields) is refused here, before any key is looked up.

use std::borrow::Cow;

use crate::encoding::{decode_query_component, parse_hex32, raw_pairs};
use crate::error::SigV4Error;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";

const MAX_ACCESS_KEY_ID: usize = 128;
const MAX_SCOPE_PART: usize = 64;
const MAX_SIGNED_HEADERS: usize = 64;
const MAX_HEADER_NAME: usize = 128;
const MAX_SESSION_TOKEN: usize = 4096;

const PARAM_ALGORITHM: &str = "X-Amz-Algorithm";
const PARAM_CREDENTIAL: &str = "X-Amz-Credential";
const PARAM_DATE: &str = "X-Amz-Date";
const PARAM_EXPIRES: &str = "X-Amz-Expires";
const PARAM_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
pub(crate) const PARAM_SIGNATURE: &str = "X-Amz-Signature";
const PARAM_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

/// `AKID/YYYYMMDD/region/service/aws4_request`, validated, with the part boundaries kept.
#[derive(Debug, Clone)]
pub(crate) struct Credential<'a> {
    text: Cow<'a, str>,
    akid_end: usize,
    region_start: usize,
    service_start: usize,
    service_end: usize,
}

impl<'a> Credential<'a> {
    pub(crate) fn parse(text: Cow<'a, str>) -> Result<Self, SigV4Error> {
        let mut parts = text.split('/');
        let (Some(akid), Some(date), Some(region), Some(service), Some(term), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SigV4Error::Malformed(
                "Credential must be <access key id>/<date>/<region>/<service>/aws4_request",
            ));
        };
        if akid.is_empty()
            || akid.len() > MAX_ACCESS_KEY_ID
            || !akid.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(SigV4Error::Malformed("invalid access key id in Credential"));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SigV4Error::Malformed(
                "invalid date in Credential (expected YYYYMMDD)",
            ));
        }
        let scope_name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_SCOPE_PART
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !scope_name_ok(region) {
            return Err(SigV4Error::Malformed("invalid region in Credential"));
        }
        if !scope_name_ok(service) {
            return Err(SigV4Error::Malformed("invalid service in Credential"));
        }
        if term != TERMINATOR {
            return Err(SigV4Error::Malformed(
                "Credential must end with /aws4_request",
            ));
        }
        let akid_end = akid.len();
        let region_start = akid_end + 1 + 8 + 1;
        let service_start = region_start + region.len() + 1;
        let service_end = service_start + service.len();
        Ok(Self {
            text,
            akid_end,
            region_start,
            service_start,
            service_end,
        })
    }

    pub(crate) fn access_key_id(&self) -> &str {
        &self.text[..self.akid_end]
    }

    pub(crate) fn date(&self) -> &str {
        &self.text[self.akid_end + 1..self.region_start - 1]
    }

    pub(crate) fn region(&self) -> &str {
        &self.text[self.region_start..self.service_start - 1]
    }

    pub(crate) fn service(&self) -> &str {
        &self.text[self.service_start..self.service_end]
    }

    /// `date/region/service/aws4_request`, the scope line of the string to sign.
    pub(crate) fn scope(&self) -> &str {
        &self.text[self.akid_end + 1..]
    }

    /// `akid/date/region/service`: everything a signing key depends on besides the secret.
    pub(crate) fn key_id(&self) -> &str {
        &self.text[..self.service_end]
    }
}

/// Validates a `SignedHeaders` list: lower-case header names separated by `;`, strictly
/// ascending (every signer sorts them, and a sorted list cannot name a header twice).
pub(crate) fn check_signed_headers(list: &str) -> Result<(), SigV4Error> {
    let mut previous: Option<&str> = None;
    let mut count = 0;
    for name in list.split(';') {
        count += 1;
        let token = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.bytes().all(token) {
            return Err(SigV4Error::Malformed(
                "SignedHeaders must list lower-case header names separated by ';'",
            ));
        }
        if previous.is_some_and(|p| p >= name) {
            return Err(SigV4Error::Malformed(
                "SignedHeaders must be sorted and must not repeat a header",
            ));
        }
        previous = Some(name);
    }
    if count > MAX_SIGNED_HEADERS {
        return Err(SigV4Error::Malformed(
            "SignedHeaders lists too many headers",
        ));
    }
    Ok(())
}

fn parse_signature(hex: &str) -> Result<[u8; 32], SigV4Error> {
    parse_hex32(hex.as_bytes()).ok_or(SigV4Error::Malformed(
        "Signature must be 64 lower-case hex digits",
    ))
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug)]
pub(crate) struct HeaderAuth<'a> {
    pub credential: Credential<'a>,
    pub signed_headers: &'a str,
    pub signature: [u8; 32],
}

/// Whether an `Authorization` value claims to be a SigV4-family signature at all.
pub(crate) fn is_aws4_authorization(value: &[u8]) -> bool {
    value.starts_with(b"AWS4-")
}

pub(crate) fn parse_authorization(value: &[u8]) -> Result<HeaderAuth<'_>, SigV4Error> {
    let value = std::str::from_utf8(value)
        .map_err(|_| SigV4Error::Malformed("Authorization header is not valid UTF-8"))?;
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm);
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        // Signers write ", " between parts; some write "," alone.
        let part = part.trim_matches(' ');
        let (name, value) = part.split_once('=').ok_or(SigV4Error::Malformed(
            "Authorization parts must be Name=value",
        ))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(SigV4Error::Malformed(
                    "unknown part in Authorization (expected Credential, SignedHeaders, Signature)",
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(SigV4Error::Malformed("repeated part in Authorization"));
        }
    }
    let credential = credential.ok_or(SigV4Error::Malformed("Authorization lacks Credential"))?;
    let signed_headers =
        signed_headers.ok_or(SigV4Error::Malformed("Authorization lacks SignedHeaders"))?;
    let signature = signature.ok_or(SigV4Error::Malformed("Authorization lacks Signature"))?;
    check_signed_headers(signed_headers)?;
    Ok(HeaderAuth {
        credential: Credential::parse(Cow::Borrowed(credential))?,
        signed_headers,
        signature: parse_signature(signature)?,
    })
}

/// The `X-Amz-*` parameters of a presigned request, decoded.
#[derive(Debug)]
pub(crate) struct PresignedAuth<'a> {
    pub credential: Credential<'a>,
    pub date: Cow<'a, str>,
    pub expires_secs: u64,
    pub signed_headers: Cow<'a, str>,
    pub signature: [u8; 32],
    pub security_token: Option<Cow<'a, str>>,
}

fn decode_param(raw: &str) -> Result<Cow<'_, str>, SigV4Error> {
    let decoded = decode_query_component(raw).ok_or(SigV4Error::Malformed(
        "invalid percent-encoding in the query string",
    ))?;
    match decoded {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|_| SigV4Error::Malformed("an X-Amz-* query parameter is not valid UTF-8"))
}

/// Whether the query claims to be presigned: it names the algorithm, a credential or a signature.
pub(crate) fn is_presigned_query(query: &str) -> bool {
    raw_pairs(query).any(|p| {
        decode_query_component(p.key).is_some_and(|k| {
            [PARAM_ALGORITHM, PARAM_CREDENTIAL, PARAM_SIGNATURE]
                .iter()
                .any(|n| n.as_bytes() == k.as_ref())
        })
    })
}

pub(crate) fn parse_presigned(query: &str) -> Result<PresignedAuth<'_>, SigV4Error> {
    let mut slots: [Option<Cow<'_, str>>; 7] = Default::default();
    for pair in raw_pairs(query) {
        let key = decode_query_component(pair.key).ok_or(SigV4Error::Malformed(
            "invalid percent-encoding in the query string",
        ))?;
        let index = match key.as_ref() {
            k if k == PARAM_ALGORITHM.as_bytes() => 0,
            k if k == PARAM_CREDENTIAL.as_bytes() => 1,
            k if k == PARAM_DATE.as_bytes() => 2,
            k if k == PARAM_EXPIRES.as_bytes() => 3,
            k if k == PARAM_SIGNED_HEADERS.as_bytes() => 4,
            k if k == PARAM_SIGNATURE.as_bytes() => 5,
            k if k == PARAM_SECURITY_TOKEN.as_bytes() => 6,
            _ => continue,
        };
        if slots[index].replace(decode_param(pair.value)?).is_some() {
            return Err(SigV4Error::Malformed(
                "repeated X-Amz-* parameter in the query string",
            ));
        }
    }
    let [
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
        security_token,
    ] = slots;
    let missing = |what| SigV4Error::Malformed(what);
    if algorithm.ok_or(missing("presigned URL lacks X-Amz-Algorithm"))? != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm);
    }
    let credential = credential.ok_or(missing("presigned URL lacks X-Amz-Credential"))?;
    let date = date.ok_or(missing("presigned URL lacks X-Amz-Date"))?;
    let expires = expires.ok_or(missing("presigned URL lacks X-Amz-Expires"))?;
    let signed_headers =
        signed_headers.ok_or(missing("presigned URL lacks X-Amz-SignedHeaders"))?;
    let signature = signature.ok_or(missing("presigned URL lacks X-Amz-Signature"))?;
    check_signed_headers(&signed_headers)?;
    let expires_secs =
        (!expires.is_empty() && expires.len() <= 10 && expires.bytes().all(|b| b.is_ascii_digit()))
            .then(|| expires.parse::<u64>().ok())
            .flatten()
            .ok_or(missing("X-Amz-Expires must be a number of seconds"))?;
    if let Some(token) = &security_token {
        check_session_token(token.as_bytes())?;
    }
    Ok(PresignedAuth {
        credential: Credential::parse(credential)?,
        date,
        expires_secs,
        signed_headers,
        signature: parse_signature(&signature)?,
        security_token,
    })
}

/// Session tokens are opaque but printable; bounding them keeps logs and lookups sane.
pub(crate) fn check_session_token(token: &[u8]) -> Result<(), SigV4Error> {
    if token.is_empty()
        || token.len() > MAX_SESSION_TOKEN
        || !token.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(SigV4Error::Malformed(
            "the session token must be 1 to 4096 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn auth(rest: &str) -> Result<HeaderAuth<'static>, SigV4Error> {
        let value: &'static str = Box::leak(rest.to_owned().into_boxed_str());
        parse_authorization(value.as_bytes())
    }

    #[test]
    fn parses_the_header_form() {
        let a = auth(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"
        ))
        .unwrap();
        assert_eq!(a.credential.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(a.credential.date(), "20150830");
        assert_eq!(a.credential.region(), "us-east-1");
        assert_eq!(a.credential.service(), "service");
        assert_eq!(
            a.credential.scope(),
            "20150830/us-east-1/service/aws4_request"
        );
        assert_eq!(
            a.credential.key_id(),
            "AKIDEXAMPLE/20150830/us-east-1/service"
        );
        assert_eq!(a.signed_headers, "host;x-amz-date");
        assert_eq!(a.signature[0], 0x5f);
        // Without spaces after the commas, in another order.
        let b = auth(&format!(
            "AWS4-HMAC-SHA256 Signature={SIG},SignedHeaders=host,Credential=A/20150830/r/s/aws4_request"
        ))
        .unwrap();
        assert_eq!(b.signed_headers, "host");
    }

    #[test]
    fn rejects_malformed_headers() {
        let good_cred = "Credential=AKID/20150830/us-east-1/execute-api/aws4_request";
        let cases = [
            format!("AWS4-HMAC-SHA1 {good_cred}, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-ECDSA-P256-SHA256 {good_cred}, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256  {good_cred}, SignedHeaders=host, Signature={SIG}x"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host"),
            format!("AWS4-HMAC-SHA256 SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 {good_cred}, Signature={SIG}"),
            format!(
                "AWS4-HMAC-SHA256 {good_cred}, {good_cred}, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host, Signature={SIG}, Signature={SIG}"
            ),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host, Signature={SIG}, Extra=1"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host, Signature={SIG},"),
            format!(
                "AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host, Signature={}",
                SIG.to_uppercase()
            ),
            format!(
                "AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host, Signature={}",
                &SIG[..62]
            ),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=Host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=x-amz-date;host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host;host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host;;x, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=ho st, Signature={SIG}"),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute-api, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute-api/aws4_request/x, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AK-ID/20150830/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/US-EAST-1/execute-api/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830//execute-api/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute_api/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute-api/aws4_requesT, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/20150830/r/s/aws4_request, SignedHeaders=host, Signature={SIG}",
                "A".repeat(129)
            ),
            format!(
                "AWS4-HMAC-SHA256 {good_cred}, SignedHeaders={}, Signature={SIG}",
                (0..65)
                    .map(|i| format!("h{i:03}"))
                    .collect::<Vec<_>>()
                    .join(";")
            ),
            "AWS4-HMAC-SHA256".to_owned(),
        ];
        for case in cases {
            let err = auth(&case).expect_err(&case);
            assert!(
                matches!(
                    err,
                    SigV4Error::Malformed(_) | SigV4Error::UnsupportedAlgorithm
                ),
                "{case}: {err:?}"
            );
        }
        assert_eq!(
            parse_authorization(b"AWS4-HMAC-SHA256 Credential=\xff").unwrap_err(),
            SigV4Error::Malformed("Authorization header is not valid UTF-8")
        );
    }

    #[test]
    fn parses_the_presigned_form() {
        let q = format!(
            "a=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host%3Bx-amz-meta&X-Amz-Security-Token=ab%2Bc%3D&X-Amz-Signature={SIG}"
        );
        assert!(is_presigned_query(&q));
        let p = parse_presigned(&q).unwrap();
        assert_eq!(p.credential.access_key_id(), "AKID");
        assert_eq!(p.date, "20150830T123600Z");
        assert_eq!(p.expires_secs, 3600);
        assert_eq!(p.signed_headers, "host;x-amz-meta");
        assert_eq!(p.security_token.as_deref(), Some("ab+c="));
        assert!(!is_presigned_query("a=1&X-Amz-Date=20150830T123600Z"));
        assert!(is_presigned_query("X%2DAmz-Signature=1"));
    }

    #[test]
    fn rejects_malformed_presigned_queries() {
        let base = [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fservice%2Faws4_request",
            "X-Amz-Date=20150830T123600Z",
            "X-Amz-Expires=3600",
            "X-Amz-SignedHeaders=host",
        ];
        let sig = format!("X-Amz-Signature={SIG}");
        let assemble = |parts: &[&str]| parts.join("&");
        let mut all: Vec<&str> = base.to_vec();
        all.push(&sig);
        assert!(parse_presigned(&assemble(&all)).is_ok());
        for skip in 0..all.len() {
            let mut parts = all.clone();
            parts.remove(skip);
            assert!(
                parse_presigned(&assemble(&parts)).is_err(),
                "missing {skip}"
            );
        }
        for (i, replacement) in [
            (0, "X-Amz-Algorithm=AWS4-HMAC-SHA512"),
            (1, "X-Amz-Credential=AKID/20150830/us-east-1/service"),
            (
                1,
                "X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fservice%2Faws4_request%zz",
            ),
            (3, "X-Amz-Expires=-1"),
            (3, "X-Amz-Expires=1e3"),
            (3, "X-Amz-Expires=99999999999"),
            (3, "X-Amz-Expires="),
            (4, "X-Amz-SignedHeaders=host%3Bhost"),
            (5, "X-Amz-Signature=abc"),
        ] {
            let mut parts = all.clone();
            parts[i] = replacement;
            assert!(parse_presigned(&assemble(&parts)).is_err(), "{replacement}");
        }
        let mut parts = all.clone();
        parts.push("X-Amz-Date=20150830T123600Z");
        assert!(parse_presigned(&assemble(&parts)).is_err());
        let mut parts = all.clone();
        parts.push("X-Amz-Security-Token=a%20b");
        assert!(parse_presigned(&assemble(&parts)).is_err());
        let mut parts = all.clone();
        parts.push("X-Amz-Security-Token=a%FF");
        assert!(parse_presigned(&assemble(&parts)).is_err());
    }
}
