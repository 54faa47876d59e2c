//! Security tests of the verifier's decisions, on requests signed by the test signer.

use std::time::Duration;

use super::*;
use crate::SigningKeyCache;
use crate::test_support::{OwnedRequest, at, sign_header_form};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20260115T101500Z";
const SCOPE: (&str, &str, &str, &str) =
    ("AKIAMLGATEEXAMPLE", "20260115", "us-east-1", "execute-api");

fn verifier() -> Verifier {
    Verifier::new(VerifierConfig::default()).unwrap()
}

fn empty_hex() -> String {
    String::from_utf8(hex32(&crate::EMPTY_SHA256).to_vec()).unwrap()
}

/// A JSON POST signed like the MLflow client signs it (`x-amz-content-sha256` declared).
fn signed_post(body: &[u8]) -> OwnedRequest {
    let mut r = OwnedRequest::new(
        "POST",
        "/api/2.0/mlflow/runs/create",
        &[
            ("Host", "mlflow.example.com"),
            ("Content-Type", "application/json"),
        ],
    );
    r.body = body.to_vec();
    let hash = String::from_utf8(hex32(&r.body_sha256()).to_vec()).unwrap();
    r = r.header("x-amz-content-sha256", &hash);
    sign_header_form(&mut r, CanonicalForm::Aws, SECRET, SCOPE, DATE, &[], &hash);
    r
}

fn check(r: &OwnedRequest, now: &str) -> Result<VerifiedSignature, SigV4Error> {
    check_with(&verifier(), r, now, None)
}

fn check_with(
    v: &Verifier,
    r: &OwnedRequest,
    now: &str,
    body: Option<&[u8; 32]>,
) -> Result<VerifiedSignature, SigV4Error> {
    r.with(|req| {
        let pending = v.parse_and_check(req, at(now))?;
        let key = pending.derive_signing_key(SECRET.as_bytes());
        pending.verify(&key, body)
    })
}

#[test]
fn accepts_a_declared_body_and_checks_it_while_streaming() {
    let r = signed_post(br#"{"experiment_id": "1"}"#);
    let verified = check(&r, DATE).unwrap();
    assert_eq!(verified.form, AuthForm::Header);
    assert_eq!(verified.canonical_form, CanonicalForm::Aws);
    let PayloadCheck::Pending(hasher) = verified.payload else {
        panic!("expected a pending body check");
    };
    let mut ok = hasher.clone();
    ok.update(br#"{"experiment_id": "#);
    ok.update(br#""1"}"#);
    assert_eq!(ok.finish(), Ok(()));
    let mut tampered = hasher;
    tampered.update(br#"{"experiment_id": "2"}"#);
    assert_eq!(tampered.finish(), Err(SigV4Error::PayloadHashMismatch));

    // With the body hash at hand the check is immediate.
    let good = r.body_sha256();
    let verified = check_with(&verifier(), &r, DATE, Some(&good)).unwrap();
    assert!(matches!(verified.payload, PayloadCheck::Verified));
    let bad = [0u8; 32];
    assert_eq!(
        check_with(&verifier(), &r, DATE, Some(&bad)).unwrap_err(),
        SigV4Error::PayloadHashMismatch
    );
}

#[test]
fn undeclared_body_must_be_hashed_by_the_caller() {
    let mut r = OwnedRequest::new("POST", "/api/2.0/mlflow/runs/create", &[("host", "h")]);
    r.body = b"{}".to_vec();
    let hash = String::from_utf8(hex32(&r.body_sha256()).to_vec()).unwrap();
    sign_header_form(&mut r, CanonicalForm::Aws, SECRET, SCOPE, DATE, &[], &hash);
    let body = r.body_sha256();
    r.with(|req| {
        let pending = verifier().parse_and_check(req, at(DATE)).unwrap();
        assert_eq!(pending.declared_payload(), DeclaredPayload::NotDeclared);
    });
    assert_eq!(
        check_with(&verifier(), &r, DATE, None).unwrap_err(),
        SigV4Error::PayloadHashRequired
    );
    let verified = check_with(&verifier(), &r, DATE, Some(&body)).unwrap();
    assert!(matches!(verified.payload, PayloadCheck::Verified));
    assert_eq!(
        check_with(&verifier(), &r, DATE, Some(&crate::EMPTY_SHA256)).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn unsigned_payload_is_reported_not_hidden() {
    let mut r = OwnedRequest::new(
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=1",
        &[("host", "h")],
    )
    .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        SCOPE,
        DATE,
        &[],
        "UNSIGNED-PAYLOAD",
    );
    let verified = check(&r, DATE).unwrap();
    assert!(matches!(verified.payload, PayloadCheck::Unsigned));
    r.with(|req| {
        let pending = verifier().parse_and_check(req, at(DATE)).unwrap();
        assert_eq!(pending.declared_payload(), DeclaredPayload::Unsigned);
    });
}

#[test]
fn wrong_secret_or_tampering_is_a_mismatch() {
    let r = signed_post(b"{}");
    let mismatch = r.with(|req| {
        let pending = verifier().parse_and_check(req, at(DATE)).unwrap();
        let key = pending.derive_signing_key(b"not the secret");
        pending.verify(&key, None).unwrap_err()
    });
    assert_eq!(mismatch, SigV4Error::SignatureMismatch);

    let mut tampered = r.clone();
    tampered.path = "/api/2.0/mlflow/runs/delete".to_owned();
    assert_eq!(
        check(&tampered, DATE).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    let mut tampered = r.clone();
    tampered.method = "PUT".to_owned();
    assert_eq!(
        check(&tampered, DATE).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    let mut tampered = r.clone();
    tampered.query = "experiment_id=2".to_owned();
    assert_eq!(
        check(&tampered, DATE).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    let mut tampered = r;
    tampered.headers[0].1 = b"evil.example.com".to_vec();
    assert_eq!(
        check(&tampered, DATE).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn clock_skew_window_is_inclusive_and_specific() {
    let r = signed_post(b"{}");
    assert!(check(&r, "20260115T102000Z").is_ok());
    assert!(check(&r, "20260115T101000Z").is_ok());
    assert!(matches!(
        check(&r, "20260115T102001Z").unwrap_err(),
        SigV4Error::Expired { skew_secs: 300, .. }
    ));
    let err = check(&r, "20260115T100959Z").unwrap_err();
    assert!(matches!(err, SigV4Error::NotYetValid { .. }));
    assert_eq!(
        err.to_string(),
        "signature not yet current: the request is dated 20260115T101500Z, server time is 20260115T100959Z and the allowed clock skew is 300 s"
    );
    let strict = Verifier::new(VerifierConfig {
        clock_skew: Duration::from_secs(10),
        ..VerifierConfig::default()
    })
    .unwrap();
    assert!(matches!(
        check_with(&strict, &r, "20260115T101511Z", None).unwrap_err(),
        SigV4Error::Expired { skew_secs: 10, .. }
    ));
}

#[test]
fn scope_is_checked_before_any_secret() {
    let mut r = OwnedRequest::new("GET", "/", &[("host", "h")]);
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        ("AKID", "20260115", "eu-west-1", "execute-api"),
        DATE,
        &[],
        &empty_hex(),
    );
    let err = r.with(|req| verifier().parse_and_check(req, at(DATE)).unwrap_err());
    assert_eq!(
        err.to_string(),
        "credential scope region 'eu-west-1' is not accepted here; expected us-east-1"
    );

    let mut r = OwnedRequest::new("GET", "/", &[("host", "h")]);
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        ("AKID", "20260115", "us-east-1", "s3"),
        DATE,
        &[],
        &empty_hex(),
    );
    assert_eq!(
        r.with(|req| verifier().parse_and_check(req, at(DATE)).unwrap_err()),
        SigV4Error::WrongService {
            got: "s3".into(),
            expected: "execute-api, sagemaker-mlflow".into()
        }
    );

    let mut r = OwnedRequest::new("GET", "/", &[("host", "h")]);
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        ("AKID", "20260114", "us-east-1", "execute-api"),
        DATE,
        &[],
        &empty_hex(),
    );
    assert_eq!(
        r.with(|req| verifier().parse_and_check(req, at(DATE)).unwrap_err()),
        SigV4Error::ScopeDateMismatch
    );

    let multi = Verifier::new(VerifierConfig {
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        services: vec!["execute-api".into()],
        ..VerifierConfig::default()
    })
    .unwrap();
    let mut r = OwnedRequest::new("GET", "/", &[("host", "h")]);
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        ("AKID", "20260115", "eu-west-1", "execute-api"),
        DATE,
        &[],
        &empty_hex(),
    );
    r.with(|req| {
        let pending = multi.parse_and_check(req, at(DATE)).unwrap();
        assert_eq!(
            pending.scope(),
            CredentialScope {
                date: "20260115",
                region: "eu-west-1",
                service: "execute-api"
            }
        );
        assert_eq!(pending.access_key_id(), "AKID");
        assert_eq!(pending.session_token(), None);
        assert_eq!(pending.signed_at(), at(DATE));
        assert_eq!(pending.expires_at(), None);
    });
}

#[test]
fn required_headers_must_be_signed_and_present() {
    let base = || OwnedRequest::new("GET", "/", &[("host", "h")]);
    // host not signed: sign only x-amz-date by renaming host afterwards.
    let mut r = base();
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        SCOPE,
        DATE,
        &[],
        &empty_hex(),
    );
    let auth = String::from_utf8(r.headers.last().unwrap().1.clone()).unwrap();
    let forged = auth.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    r.headers.last_mut().unwrap().1 = forged.into_bytes();
    assert_eq!(
        check(&r, DATE).unwrap_err(),
        SigV4Error::UnsignedHeader("host".into())
    );

    let mut r = base();
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        SCOPE,
        DATE,
        &[],
        &empty_hex(),
    );
    let auth = String::from_utf8(r.headers.last().unwrap().1.clone()).unwrap();
    r.headers.last_mut().unwrap().1 = auth
        .replace("SignedHeaders=host;x-amz-date", "SignedHeaders=host")
        .into_bytes();
    assert_eq!(
        check(&r, DATE).unwrap_err(),
        SigV4Error::UnsignedHeader("x-amz-date".into())
    );

    // An x-amz-* header added after signing (a session token, a content hash) is refused.
    for (name, value) in [
        ("X-Amz-Security-Token", "token"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ("X-Amz-Meta-Anything", "x"),
    ] {
        let mut r = base();
        sign_header_form(
            &mut r,
            CanonicalForm::Aws,
            SECRET,
            SCOPE,
            DATE,
            &[],
            &empty_hex(),
        );
        let r = r.header(name, value);
        assert_eq!(
            check(&r, DATE).unwrap_err(),
            SigV4Error::UnsignedHeader(name.to_ascii_lowercase())
        );
    }

    let mut r = base().header("My-Header", "v");
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        SCOPE,
        DATE,
        &["my-header"],
        &empty_hex(),
    );
    r.headers.retain(|(n, _)| n != "My-Header");
    assert_eq!(
        check(&r, DATE).unwrap_err(),
        SigV4Error::MissingSignedHeader("my-header".into())
    );
}

#[test]
fn detects_absent_ambiguous_and_repeated_credentials() {
    let plain = OwnedRequest::new(
        "GET",
        "/",
        &[("host", "h"), ("Authorization", "Basic dTpw")],
    );
    assert_eq!(check(&plain, DATE).unwrap_err(), SigV4Error::Missing);
    let plain = OwnedRequest::new("GET", "/?X-Amz-Date=20260115T101500Z", &[("host", "h")]);
    assert_eq!(check(&plain, DATE).unwrap_err(), SigV4Error::Missing);

    let r = signed_post(b"{}");
    let mut both = r.clone();
    both.query = "X-Amz-Signature=00".into();
    assert!(matches!(
        check(&both, DATE).unwrap_err(),
        SigV4Error::Malformed(_)
    ));
    let auth = r
        .headers
        .iter()
        .find(|(n, _)| n == "Authorization")
        .unwrap()
        .1
        .clone();
    let mut twice = r.clone();
    twice.headers.push(("authorization".into(), auth));
    assert_eq!(
        check(&twice, DATE).unwrap_err(),
        SigV4Error::Malformed("repeated Authorization header")
    );
    let twice = r.clone().header("x-amz-date", DATE);
    assert_eq!(
        check(&twice, DATE).unwrap_err(),
        SigV4Error::Malformed("repeated x-amz-date header")
    );
    let mut no_date = r;
    no_date.headers.retain(|(n, _)| n != "X-Amz-Date");
    assert!(matches!(
        check(&no_date, DATE).unwrap_err(),
        SigV4Error::Malformed(_)
    ));
}

#[test]
fn session_token_is_returned_for_lookup() {
    let mut r = OwnedRequest::new(
        "GET",
        "/",
        &[
            ("host", "h"),
            ("x-amz-security-token", "FQoGZXIvYXdzEJr//token+="),
        ],
    );
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        SCOPE,
        DATE,
        &[],
        &empty_hex(),
    );
    r.with(|req| {
        let pending = verifier().parse_and_check(req, at(DATE)).unwrap();
        assert_eq!(pending.session_token(), Some("FQoGZXIvYXdzEJr//token+="));
        let debug = format!("{pending:?}");
        assert!(!debug.contains("FQoG"), "{debug}");
        let key = pending.derive_signing_key(SECRET.as_bytes());
        assert!(pending.verify(&key, Some(&crate::EMPTY_SHA256)).is_ok());
    });
}

/// A presigned GET built by hand, signed over the canonical request of our own canonicalizer.
fn presigned(expires: &str, extra_query: &str) -> OwnedRequest {
    let query = format!(
        "{extra_query}X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260115%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date={DATE}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
    );
    let mut r = OwnedRequest::new("GET", &format!("/get-artifact?{query}"), &[("host", "h")]);
    let mut canonical = Vec::new();
    r.with(|req| {
        write_canonical_prefix(&mut canonical, req, CanonicalForm::Aws, true, "host").unwrap();
    });
    canonical.extend_from_slice(empty_hex().as_bytes());
    let hash = hex32(&Sha256::digest(&canonical).into());
    let key = SigningKey::derive(SECRET.as_bytes(), "20260115", "us-east-1", "execute-api");
    let sig = key.sign(&[
        b"AWS4-HMAC-SHA256\n",
        DATE.as_bytes(),
        b"\n20260115/us-east-1/execute-api/aws4_request\n",
        &hash,
    ]);
    r.query = format!(
        "{query}&X-Amz-Signature={}",
        String::from_utf8(hex32(&sig).to_vec()).unwrap()
    );
    r
}

#[test]
fn presigned_expiry_bounds() {
    let empty = crate::EMPTY_SHA256;
    let r = presigned("60", "path=1%2Fmodel.pkl&");
    let ok = check_with(&verifier(), &r, "20260115T101600Z", Some(&empty)).unwrap();
    assert_eq!(ok.form, AuthForm::Presigned);
    assert!(matches!(ok.payload, PayloadCheck::Verified));
    assert_eq!(
        check_with(&verifier(), &r, "20260115T101601Z", Some(&empty)).unwrap_err(),
        SigV4Error::PresignedExpired {
            expired_at: AmzTime(parse_amz_date(b"20260115T101600Z").unwrap()),
            now: AmzTime(parse_amz_date(b"20260115T101601Z").unwrap()),
        }
    );
    // Usable a little before its date (clock skew), not more.
    assert!(check_with(&verifier(), &r, "20260115T101000Z", Some(&empty)).is_ok());
    assert!(matches!(
        check_with(&verifier(), &r, "20260115T100959Z", Some(&empty)).unwrap_err(),
        SigV4Error::NotYetValid { .. }
    ));
    // The body is covered: a presigned URL cannot carry a different body.
    assert_eq!(
        check_with(&verifier(), &r, DATE, Some(&[1; 32])).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    let week = presigned("604800", "");
    assert!(check_with(&verifier(), &week, "20260122T101500Z", Some(&empty)).is_ok());
    for bad in ["0", "604801"] {
        assert_eq!(
            check_with(&verifier(), &presigned(bad, ""), DATE, Some(&empty)).unwrap_err(),
            SigV4Error::ExpiresOutOfRange { max_secs: 604_800 }
        );
    }
    let hour = Verifier::new(VerifierConfig {
        max_presigned_expiry: Duration::from_secs(3600),
        ..VerifierConfig::default()
    })
    .unwrap();
    assert_eq!(
        check_with(&hour, &presigned("3601", ""), DATE, Some(&empty)).unwrap_err(),
        SigV4Error::ExpiresOutOfRange { max_secs: 3600 }
    );
    // Tampering with any signed parameter, or the extra ones, breaks it.
    for (from, to) in [
        ("X-Amz-Expires=60", "X-Amz-Expires=61"),
        ("path=1%2F", "path=2%2F"),
    ] {
        let mut t = r.clone();
        t.query = t.query.replace(from, to);
        assert!(
            check_with(&verifier(), &t, DATE, Some(&empty)).is_err(),
            "{to}"
        );
    }
    // A session token may not come twice.
    let mut t = r.clone().header("x-amz-security-token", "a");
    t.query.push_str("&X-Amz-Security-Token=a");
    assert!(matches!(
        check_with(&verifier(), &t, DATE, Some(&empty)).unwrap_err(),
        SigV4Error::Malformed(_) | SigV4Error::UnsignedHeader(_)
    ));
    r.with(|req| {
        let pending = verifier().parse_and_check(req, at(DATE)).unwrap();
        assert_eq!(pending.expires_at(), Some(at("20260115T101600Z")));
    });
}

/// How requests-auth-aws-sigv4 signs: path and query as sent, `+` kept, no double encoding,
/// and the query parsed into a dict, so a repeated name keeps only its last value.
fn requests_auth_style(target: &str) -> OwnedRequest {
    let mut r = OwnedRequest::new("GET", target, &[("Host", "localhost")])
        .header("x-amz-content-sha256", &empty_hex());
    let sent_query = r.query.clone();
    let mut dict: Vec<(&str, &str)> = Vec::new();
    for pair in sent_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap();
        dict.retain(|(name, _)| *name != k);
        dict.push((k, v));
    }
    r.query = dict
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    sign_header_form(
        &mut r,
        CanonicalForm::RawUri,
        SECRET,
        SCOPE,
        DATE,
        &[],
        &empty_hex(),
    );
    r.query = sent_query;
    r
}

#[test]
fn raw_uri_form_accepts_exactly_the_unambiguous_requests_auth_signatures() {
    let r = requests_auth_style(
        "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/my%20model.txt?filter=name+%3D+%27x%27&max_results=10",
    );
    assert_eq!(
        check(&r, DATE).unwrap().canonical_form,
        CanonicalForm::RawUri
    );
    let strict = Verifier::new(VerifierConfig {
        accept_raw_uri_form: false,
        ..VerifierConfig::default()
    })
    .unwrap();
    assert_eq!(
        check_with(&strict, &r, DATE, None).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    // Plain MLflow paths and queries read the same both ways: the AWS form matches first.
    let r = requests_auth_style("/api/2.0/mlflow/runs/get?run_id=0123abcd");
    assert_eq!(check(&r, DATE).unwrap().canonical_form, CanonicalForm::Aws);

    // Repeated names: the client signs only the last value, so the request is refused.
    let r = requests_auth_style(
        "/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a&run_ids=b",
    );
    assert_eq!(check(&r, DATE).unwrap_err(), SigV4Error::SignatureMismatch);
    // `%25` in the path could be the AWS form of another request: refused.
    let r = requests_auth_style("/api/2.0/mlflow-artifacts/artifacts/100%25.txt");
    assert_eq!(check(&r, DATE).unwrap_err(), SigV4Error::SignatureMismatch);

    // An AWS-form signature for `/a%20b` does not authenticate `/a%2520b` (a literal "%20").
    let mut aws = OwnedRequest::new("GET", "/a%20b", &[("Host", "localhost")]);
    sign_header_form(
        &mut aws,
        CanonicalForm::Aws,
        SECRET,
        SCOPE,
        DATE,
        &[],
        &empty_hex(),
    );
    assert_eq!(
        check_with(&verifier(), &aws, DATE, Some(&crate::EMPTY_SHA256))
            .unwrap()
            .canonical_form,
        CanonicalForm::Aws
    );
    let mut replayed = aws.clone();
    replayed.path = "/a%2520b".into();
    assert_eq!(
        check_with(&verifier(), &replayed, DATE, Some(&crate::EMPTY_SHA256)).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn config_is_validated() {
    let bad = |c: VerifierConfig| Verifier::new(c).unwrap_err();
    let d = VerifierConfig::default;
    assert_eq!(
        bad(VerifierConfig {
            regions: vec![],
            ..d()
        }),
        ConfigError::NoRegion
    );
    assert_eq!(
        bad(VerifierConfig {
            services: vec![],
            ..d()
        }),
        ConfigError::NoService
    );
    assert_eq!(
        bad(VerifierConfig {
            regions: vec!["US-EAST-1".into()],
            ..d()
        }),
        ConfigError::InvalidName("US-EAST-1".into())
    );
    assert_eq!(
        bad(VerifierConfig {
            clock_skew: Duration::from_secs(3601),
            ..d()
        }),
        ConfigError::ClockSkewTooLarge
    );
    for expiry in [0, 604_801] {
        assert_eq!(
            bad(VerifierConfig {
                max_presigned_expiry: Duration::from_secs(expiry),
                ..d()
            }),
            ConfigError::PresignedExpiryOutOfRange
        );
    }
    assert_eq!(verifier().config(), &VerifierConfig::default());
}

#[test]
fn signing_key_cache_is_keyed_by_scope_and_bounded() {
    let cache = SigningKeyCache::new(2);
    let requests: Vec<OwnedRequest> = [
        ("AKID1", "20260115", "20260115T101500Z"),
        ("AKID2", "20260115", "20260115T101500Z"),
        ("AKID1", "20260116", "20260116T101500Z"),
    ]
    .iter()
    .map(|(akid, day, date)| {
        let mut r = OwnedRequest::new("GET", "/", &[("host", "h")]);
        sign_header_form(
            &mut r,
            CanonicalForm::Aws,
            SECRET,
            (akid, day, "us-east-1", "execute-api"),
            date,
            &[],
            &empty_hex(),
        );
        r
    })
    .collect();
    let dates = ["20260115T101500Z", "20260115T101500Z", "20260116T101500Z"];
    let run = |i: usize| {
        requests[i].with(|req| {
            let pending = verifier().parse_and_check(req, at(dates[i])).unwrap();
            let hit = cache.get(&pending);
            let key = hit.clone().unwrap_or_else(|| {
                let key = pending.derive_signing_key(SECRET.as_bytes());
                cache.insert(&pending, key.clone());
                key
            });
            let _verified = pending.verify(&key, Some(&crate::EMPTY_SHA256)).unwrap();
            hit.is_some()
        })
    };
    assert!(!run(0));
    assert!(run(0));
    assert!(!run(1));
    assert_eq!(cache.len(), 2);
    // Full: the next day's key evicts nothing dated yesterday or later, so the map restarts.
    assert!(!run(2));
    assert_eq!(cache.len(), 1);
    assert!(run(2));
    assert!(!run(0));
    assert_eq!(cache.len(), 2);
    cache.remove_access_key("AKID1");
    assert!(cache.is_empty());
    assert!(!run(1));
    cache.remove_access_key("AKID");
    assert_eq!(cache.len(), 1);
    assert_eq!(
        format!("{cache:?}"),
        "SigningKeyCache { capacity: 2, len: 1 }"
    );
}

#[test]
fn a_stale_cached_key_cannot_verify_another_scope() {
    // Keys are per scope: a key derived for one day does not verify the next day's request.
    let mut r = OwnedRequest::new("GET", "/", &[("host", "h")]);
    sign_header_form(
        &mut r,
        CanonicalForm::Aws,
        SECRET,
        ("AKID", "20260116", "us-east-1", "execute-api"),
        "20260116T000001Z",
        &[],
        &empty_hex(),
    );
    r.with(|req| {
        let pending = verifier()
            .parse_and_check(req, at("20260116T000001Z"))
            .unwrap();
        let yesterday =
            SigningKey::derive(SECRET.as_bytes(), "20260115", "us-east-1", "execute-api");
        assert_eq!(
            pending
                .verify(&yesterday, Some(&crate::EMPTY_SHA256))
                .unwrap_err(),
            SigV4Error::SignatureMismatch
        );
    });
}
