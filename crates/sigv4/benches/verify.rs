//! SigV4 verification without body hashing (goal: under 5 µs), as the gateway runs it on a
//! typical MLflow client request: an MLflow `POST runs/search` signed by AWS's own signer
//! (`aws-sigv4`) in the header form with a declared `x-amz-content-sha256`, so the signature is
//! checked before the body is read and the body hash is left to the streaming check.
//!
//! * `verify_cached_key`: `parse_and_check` + signing-key cache hit + `verify` (the hot path);
//! * `verify_derive_key`: the same with the signing key derived from the secret (a cache miss:
//!   four HMACs more);
//! * `presigned_cached_key`: the presigned-query form (`X-Amz-*` query parameters).
//!
//! Run: `cargo bench -p mlgate-sigv4 --bench verify` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use criterion::{Criterion, criterion_group, criterion_main};
use mlgate_sigv4::{PayloadCheck, SignedRequest, SigningKeyCache, Verifier, VerifierConfig};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "mlflow.example.com";
const BODY: &[u8] =
    br#"{"experiment_ids":["1"],"filter":"metrics.accuracy > 0.9","max_results":100}"#;
/// 2026-06-01T12:00:00Z
const SIGNED_AT: u64 = 1_780_315_200;

struct Owned {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
}

fn signed(location: SignatureLocation) -> Owned {
    let uri = format!("https://{HOST}/api/2.0/mlflow/runs/search");
    let headers = [
        ("host", HOST),
        ("content-type", "application/json"),
        ("user-agent", "mlflow-python-client/3.17.2"),
        ("accept-encoding", "gzip, deflate"),
    ];
    let identity =
        aws_credential_types::Credentials::new("AKIAIOSFODNN7EXAMPLE", SECRET, None, None, "bench")
            .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.signature_location = location;
    if location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(900));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(UNIX_EPOCH + Duration::from_secs(SIGNED_AT))
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        "POST",
        uri.clone(),
        headers.iter().copied(),
        SignableBody::Bytes(BODY),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
    let mut builder = http::Request::builder().method("POST").uri(&uri);
    for (n, v) in headers {
        builder = builder.header(n, v);
    }
    let mut request = builder.body(()).expect("request");
    instructions.apply_to_request_http1x(&mut request);
    Owned {
        method: "POST".to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or("").to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
    }
}

fn bench_verify(c: &mut Criterion) {
    let verifier = Verifier::new(VerifierConfig::default()).expect("verifier");
    let now = UNIX_EPOCH + Duration::from_secs(SIGNED_AT + 2);
    let mut group = c.benchmark_group("sigv4");

    for (name, location) in [
        ("verify_cached_key", SignatureLocation::Headers),
        ("presigned_cached_key", SignatureLocation::QueryParams),
    ] {
        let owned = signed(location);
        let cache = SigningKeyCache::new(1024);
        let run = |now: SystemTime, cache: &SigningKeyCache| {
            // The gateway borrows the request head the same way (see docs/sigv4.md).
            let headers: Vec<(&str, &[u8])> = owned
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            let request = SignedRequest {
                method: &owned.method,
                path: &owned.path,
                query: &owned.query,
                headers: &headers,
            };
            let pending = verifier
                .parse_and_check(black_box(&request), now)
                .expect("parses");
            let key = match cache.get(&pending) {
                Some(key) => key,
                None => {
                    let key = pending.derive_signing_key(SECRET.as_bytes());
                    cache.insert(&pending, key.clone());
                    key
                }
            };
            let verified = pending.verify(&key, None).expect("verifies");
            matches!(verified.payload, PayloadCheck::Pending(_))
        };
        run(now, &cache); // warm the key cache
        group.bench_function(name, |b| b.iter(|| run(now, &cache)));
    }

    let owned = signed(SignatureLocation::Headers);
    group.bench_function("verify_derive_key", |b| {
        b.iter(|| {
            let headers: Vec<(&str, &[u8])> = owned
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            let request = SignedRequest {
                method: &owned.method,
                path: &owned.path,
                query: &owned.query,
                headers: &headers,
            };
            let pending = verifier
                .parse_and_check(black_box(&request), now)
                .expect("parses");
            let key = pending.derive_signing_key(black_box(SECRET.as_bytes()));
            pending.verify(&key, None).expect("verifies").form
        });
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
