//! Requests signed by real SigV4 clients, captured on the wire by `gen_real_client_vectors.py`:
//! the MLflow client through requests-auth-aws-sigv4, and botocore's SigV4Auth (as the
//! sagemaker-mlflow plugin uses it, and directly). Each must meet its recorded expectation
//! through the public API only, as the gateway will call it.

use std::time::{Duration, UNIX_EPOCH};

use mlgate_sigv4::{
    CanonicalForm, DeclaredPayload, PayloadCheck, SigV4Error, SignedRequest, Verifier,
    VerifierConfig,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn vectors() -> Vec<Value> {
    serde_json::from_str(include_str!("data/real_clients.json")).expect("vectors parse")
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Outcome {
    result: Result<CanonicalForm, SigV4Error>,
    token: Option<String>,
}

/// Verifies a vector as the gateway would: declared bodies checked while "streaming", undeclared
/// ones hashed first. `tamper` may change the request before verification.
fn run(
    v: &Value,
    raw_uri: bool,
    tamper: impl FnOnce(&mut Vec<(String, Vec<u8>)>, &mut String, &mut Vec<u8>),
) -> Outcome {
    let verifier = Verifier::new(VerifierConfig {
        regions: vec![v["region"].as_str().unwrap().to_owned()],
        accept_raw_uri_form: raw_uri,
        ..VerifierConfig::default()
    })
    .unwrap();
    let mut headers: Vec<(String, Vec<u8>)> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().as_bytes().to_vec(),
            )
        })
        .collect();
    let mut query = v["query"].as_str().unwrap().to_owned();
    let mut body = hex_decode(v["body_hex"].as_str().unwrap());
    tamper(&mut headers, &mut query, &mut body);
    let header_refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let request = SignedRequest {
        method: v["method"].as_str().unwrap(),
        path: v["path"].as_str().unwrap(),
        query: &query,
        headers: &header_refs,
    };
    let now = UNIX_EPOCH + Duration::from_secs(v["now_unix"].as_u64().unwrap());
    let secret = v["secret"].as_str().unwrap().as_bytes();

    let pending = match verifier.parse_and_check(&request, now) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                result: Err(e),
                token: None,
            };
        }
    };
    assert_eq!(
        pending.access_key_id(),
        v["access_key_id"].as_str().unwrap()
    );
    let token = pending.session_token().map(str::to_owned);
    let key = pending.derive_signing_key(secret);
    let body_hash: [u8; 32] = Sha256::digest(&body).into();
    let result = match pending.declared_payload() {
        DeclaredPayload::NotDeclared => pending.verify(&key, Some(&body_hash)).map(|verified| {
            assert!(matches!(verified.payload, PayloadCheck::Verified));
            verified.canonical_form
        }),
        _ => pending.verify(&key, None).and_then(|verified| {
            let PayloadCheck::Pending(mut hasher) = verified.payload else {
                panic!("a declared hash leaves the body to check");
            };
            for chunk in body.chunks(7) {
                hasher.update(chunk);
            }
            hasher.finish().map(|()| verified.canonical_form)
        }),
    };
    Outcome { result, token }
}

#[test]
fn real_clients_meet_their_expectations() {
    let vectors = vectors();
    assert!(vectors.len() >= 12);
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let outcome = run(v, true, |_, _, _| {});
        match v["expect"].as_str().unwrap() {
            "aws" => assert_eq!(outcome.result, Ok(CanonicalForm::Aws), "{name}"),
            "raw-uri" => {
                assert_eq!(outcome.result, Ok(CanonicalForm::RawUri), "{name}");
                // Without the raw-URI form these real requests would be refused.
                assert_eq!(
                    run(v, false, |_, _, _| {}).result,
                    Err(SigV4Error::SignatureMismatch),
                    "{name}"
                );
            }
            "reject" => assert_eq!(outcome.result, Err(SigV4Error::SignatureMismatch), "{name}"),
            other => panic!("{name}: unknown expectation {other}"),
        }
        assert_eq!(
            outcome.token.as_deref(),
            v["session_token"].as_str(),
            "{name}"
        );
    }
}

#[test]
fn tampered_real_requests_are_refused() {
    for v in vectors().iter().filter(|v| v["expect"] != "reject") {
        let name = v["name"].as_str().unwrap();
        // A signed header changed in transit (every client signs host).
        let r = run(v, true, |headers, _, _| {
            let host = headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .unwrap();
            host.1.push(b'x');
        });
        assert_eq!(r.result, Err(SigV4Error::SignatureMismatch), "{name}: host");
        // An extra query parameter.
        let r = run(v, true, |_, query, _| {
            query.push_str(if query.is_empty() {
                "run_id=x"
            } else {
                "&run_id=x"
            });
        });
        assert!(r.result.is_err(), "{name}: query");
        // A different body.
        let r = run(v, true, |_, _, body| body.push(b' '));
        assert!(
            matches!(
                r.result,
                Err(SigV4Error::PayloadHashMismatch | SigV4Error::SignatureMismatch)
            ),
            "{name}: body"
        );
        // Replayed after the clock-skew window.
        let mut late = v.clone();
        late["now_unix"] = (v["now_unix"].as_u64().unwrap() + 301).into();
        assert!(
            matches!(
                run(&late, true, |_, _, _| {}).result,
                Err(SigV4Error::Expired { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn unsigned_connection_header_does_not_matter() {
    // sagemaker-mlflow strips Connection before signing and puts it back: proxies may drop it.
    for v in vectors()
        .iter()
        .filter(|v| v["client"].as_str().unwrap().contains("sagemaker"))
    {
        let r = run(v, true, |headers, _, _| {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("connection"))
        });
        assert_eq!(r.result, Ok(CanonicalForm::Aws), "{}", v["name"]);
    }
}
