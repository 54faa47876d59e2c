//! Property tests with AWS's own signer as the oracle: random requests signed by the
//! `aws-sigv4` crate (default settings: double encoding, path normalization) must verify, in
//! both forms, and must stop verifying when one byte changes. A second property feeds
//! arbitrary input to the verifier, which must refuse it without panicking.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::canonical::normalize_path;
use crate::test_support::OwnedRequest;
use crate::{CanonicalForm, PayloadCheck, SigV4Error, Verifier, VerifierConfig};

const SECRET: &str = "9drTJvcXLB89EXAMPLELB8923FB892xMFI";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-3"];
const SERVICES: [&str; 2] = ["execute-api", "sagemaker-mlflow"];

fn verifier() -> Verifier {
    Verifier::new(VerifierConfig {
        regions: REGIONS.map(str::to_owned).to_vec(),
        // Pure AWS rules: the oracle never signs the raw-URI spelling.
        accept_raw_uri_form: false,
        ..VerifierConfig::default()
    })
    .unwrap()
}

/// Path characters a client may send unencoded (RFC 3986 pchar), plus valid escapes and
/// dot segments, so normalization and double encoding are both exercised.
fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9._~!$&'()*+,;=:@-]{1,8}",
        1 => Just(String::new()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        2 => prop::collection::vec(escape(), 1..3).prop_map(|v| v.concat()),
    ]
}

/// A `%XX` escape of a printable ASCII byte (either hex case) or of a whole UTF-8 character:
/// aws-sigv4 decodes invalid UTF-8 lossily while mlgate keeps bytes, so those stay out.
fn escape() -> impl Strategy<Value = String> {
    prop_oneof![
        (0x20u8..0x7f, any::<bool>()).prop_map(|(b, lower)| {
            let e = format!("%{b:02X}");
            if lower { e.to_lowercase() } else { e }
        }),
        Just("%E1%88%B4".to_owned()),
    ]
}

fn query_component() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => "[A-Za-z0-9._~-]{1,6}", 1 => Just("+".to_owned()), 2 => escape()],
        0..4,
    )
    .prop_map(|v| v.concat())
}

fn query() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![
            Just("run_id".to_owned()),
            Just("a".to_owned()),
            query_component()
        ],
        query_component(),
        0u8..6,
    )
        .prop_map(|(k, v, shape)| match shape {
            0 => k,
            1 => format!("{k}={v}={v}"),
            _ => format!("{k}={v}"),
        });
    prop::collection::vec(pair, 0..5).prop_map(|pairs| pairs.join("&"))
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![
            "content-type",
            "My-Header",
            "x-amz-meta-tag",
            "accept",
            "user-agent",
            "x-mlflow-workspace",
        ]),
        "( |\t)?[ -~]{0,12}( {0,3}[ -~]{0,5}){0,2} ?",
    )
        .prop_map(|(n, v)| (n.to_owned(), v))
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    host: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    declare_payload: bool,
    token: Option<String>,
    presigned_expires: Option<u64>,
    region: &'static str,
    service: &'static str,
    signed_at: u64,
    clock_offset: i64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
            prop::sample::select(vec!["example.com", "localhost:5000", "mlflow.internal"]),
            prop::collection::vec(path_segment(), 0..5).prop_map(|s| format!("/{}", s.join("/"))),
            query(),
            prop::collection::vec(header(), 0..4),
            prop::collection::vec(any::<u8>(), 0..48),
        ),
        (
            any::<bool>(),
            proptest::option::of("[A-Za-z0-9+/=]{16,64}"),
            proptest::option::of(1u64..=604_800),
            prop::sample::select(REGIONS.to_vec()),
            prop::sample::select(SERVICES.to_vec()),
            // 2020-01-01 .. 2030-01-01
            1_577_836_800u64..1_893_456_000,
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (method, host, path, query, headers, body),
                (declare_payload, token, presigned_expires, region, service, signed_at, offset),
            )| {
                // Inside the window: ±300 s for headers; up to the expiry for presigned URLs.
                let (low, high) = match presigned_expires {
                    Some(e) => (-300, e as i64),
                    None => (-300, 300),
                };
                let clock_offset = low + offset.rem_euclid(high - low + 1);
                Case {
                    method,
                    host,
                    path,
                    query,
                    headers,
                    body,
                    declare_payload,
                    token,
                    presigned_expires,
                    region,
                    service,
                    signed_at,
                    clock_offset,
                }
            },
        )
}

/// Signs the case with aws-sigv4 and returns the request as the gateway would see it.
fn sign_with_aws_sigv4(case: &Case) -> OwnedRequest {
    let uri = if case.query.is_empty() {
        format!("https://{}{}", case.host, case.path)
    } else {
        format!("https://{}{}?{}", case.host, case.path, case.query)
    };
    let mut headers: Vec<(&str, &str)> = vec![("host", case.host)];
    headers.extend(case.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));

    let identity = aws_credential_types::Credentials::new(
        "AKIAORACLE",
        SECRET,
        case.token.clone(),
        None,
        "oracle",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = if case.declare_payload {
        PayloadChecksumKind::XAmzSha256
    } else {
        PayloadChecksumKind::NoHeader
    };
    if let Some(expires) = case.presigned_expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(case.region)
        .name(case.service)
        .time(UNIX_EPOCH + Duration::from_secs(case.signed_at))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        case.method,
        uri.clone(),
        headers.iter().copied(),
        SignableBody::Bytes(&case.body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();

    let mut builder = http::Request::builder().method(case.method).uri(&uri);
    for (n, v) in &headers {
        builder = builder.header(*n, *v);
    }
    let mut request = builder.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);

    OwnedRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or("").to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: case.body.clone(),
    }
}

fn now(case: &Case) -> SystemTime {
    let secs = case.signed_at as i64 + case.clock_offset;
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

fn check(r: &OwnedRequest, now: SystemTime, secret: &str) -> Result<CanonicalForm, SigV4Error> {
    let body: [u8; 32] = Sha256::digest(&r.body).into();
    r.with(|req| {
        let pending = verifier().parse_and_check(req, now)?;
        let key = pending.derive_signing_key(secret.as_bytes());
        let verified = pending.verify(&key, Some(&body))?;
        assert!(matches!(verified.payload, PayloadCheck::Verified));
        Ok(verified.canonical_form)
    })
}

/// A byte that changes what the component means (see the conformance tests).
fn replacement(bytes: &[u8], i: usize) -> u8 {
    let in_escape = (i >= 1 && bytes[i - 1] == b'%') || (i >= 2 && bytes[i - 2] == b'%');
    if in_escape && bytes[i].is_ascii_hexdigit() {
        if bytes[i] == b'0' { b'1' } else { b'0' }
    } else if bytes[i] == b'Z' {
        b'Y'
    } else {
        b'Z'
    }
}

fn mutated(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = replacement(&b, i);
    String::from_utf8(b).unwrap()
}

fn signed_header_names(r: &OwnedRequest) -> Vec<String> {
    if let Some((_, auth)) = r.headers.iter().find(|(n, _)| n == "authorization") {
        let auth = std::str::from_utf8(auth).unwrap();
        let start = auth.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
        return auth[start..]
            .split(',')
            .next()
            .unwrap()
            .split(';')
            .map(str::to_owned)
            .collect();
    }
    r.query
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .unwrap()
        .split("%3B")
        .map(str::to_owned)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn aws_sigv4_signatures_verify_and_one_byte_breaks_them(
        case in case(),
        pick in any::<prop::sample::Index>(),
        what in 0u8..6,
    ) {
        let signed = sign_with_aws_sigv4(&case);
        let now = now(&case);
        prop_assert_eq!(check(&signed, now, SECRET), Ok(CanonicalForm::Aws));

        let mut m = signed.clone();
        let equivalent = match what {
            0 => {
                let i = pick.index(m.method.len());
                m.method = mutated(&m.method, i);
                false
            }
            1 if m.path.len() > 1 => {
                let i = 1 + pick.index(m.path.len() - 1);
                m.path = mutated(&m.path, i);
                // Bytes inside segments that `..` removes do not change the request, by AWS's rules.
                normalize_path(&m.path) == normalize_path(&signed.path)
            }
            2 if !m.query.is_empty() => {
                let i = pick.index(m.query.len());
                m.query = mutated(&m.query, i);
                false
            }
            3 => {
                let names = signed_header_names(&signed);
                let candidates: Vec<usize> = (0..m.headers.len())
                    .filter(|&h| names.iter().any(|n| n.eq_ignore_ascii_case(&m.headers[h].0)))
                    .filter(|&h| !m.headers[h].1.is_empty())
                    .collect();
                let h = candidates[pick.index(candidates.len())];
                let value = m.headers[h].1.clone();
                let i = pick.index(value.len());
                m.headers[h].1[i] = replacement(&value, i);
                false
            }
            4 => {
                if m.body.is_empty() {
                    m.body.push(b'Z');
                } else {
                    let i = pick.index(m.body.len());
                    m.body[i] ^= 0x20;
                }
                false
            }
            _ => {
                prop_assert_eq!(check(&signed, now, "9drTJvcXLB89EXAMPLELB8923FB892xMFJ"), Err(SigV4Error::SignatureMismatch));
                let late = now + Duration::from_secs(case.presigned_expires.unwrap_or(300) + 301);
                prop_assert!(check(&signed, late, SECRET).is_err());
                return Ok(());
            }
        };
        if equivalent {
            prop_assert!(check(&m, now, SECRET).is_ok());
        } else if m != signed {
            prop_assert!(check(&m, now, SECRET).is_err(), "still verifies: {:?}", m);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(
        method in "[A-Za-z]{0,8}|\\PC{0,8}",
        path in "\\PC{0,40}",
        query in "(\\PC|&|=|%[0-9a-fA-F]{0,2}|X-Amz-(Algorithm|Credential|Signature|Date|Expires|SignedHeaders|Security-Token)=){0,24}",
        authorization in proptest::option::of(
            "AWS4-HMAC-SHA256 (Credential=[A-Za-z0-9/_-]{0,60}|SignedHeaders=[a-z;-]{0,30}|Signature=[0-9a-f]{0,64}|,| |\\PC){0,8}"
        ),
        headers in prop::collection::vec(
            ("(host|x-amz-date|x-amz-content-sha256|x-amz-security-token|x-amz-[a-z]{1,4}|[a-z-]{1,8})",
             prop::collection::vec(any::<u8>(), 0..70)),
            0..6,
        ),
        offset in -1_000_000i64..1_000_000,
        body_hash in proptest::option::of(any::<[u8; 32]>()),
    ) {
        let mut r = OwnedRequest::new("GET", "/", &[]);
        r.method = method;
        r.path = path;
        r.query = query;
        r.headers = headers;
        if let Some(a) = authorization {
            r.headers.push(("authorization".into(), a.into_bytes()));
        }
        let now = UNIX_EPOCH + Duration::from_secs((1_440_938_160 + offset) as u64);
        r.with(|req| {
            if let Ok(pending) = verifier().parse_and_check(req, now) {
                let key = pending.derive_signing_key(b"secret");
                // Forged input can pass the secret-free checks, never the signature.
                prop_assert!(pending.verify(&key, body_hash.as_ref()).is_err());
            }
            Ok(())
        })?;
    }
}
