//! SigV4 verification without body hashing (goal: under 5 µs), as the gateway runs it on a
//! typical MLflow client request: an MLflow `POST runs/search` signed by AWS's own signer
//! (`aws-sigv4`) in the header form with a declared `x-amz-content-sha256`, so the signature is
//! checked before the body is read and the body hash is left to the streaming check.
//!
//! * `verify_cached_key`: `parse_and_check` + signing-key cache hit + `verify` (the hot path);
//! * `verify_derive_key`: the same with the signing key derived from the secret (a cache miss:
//!   four HMACs more);
//! * `presigned_cached_key`: the presigned-query form (`X-Amz-*` query parameters) on an
//!   artifact download (`GET`, empty body: its hash is known without reading anything).
//!
//! Run: `cargo bench -p mlgate-sigv4 --bench verify` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use criterion::{Criterion, criterion_group, criterion_main};
use mlgate_sigv4::{
    EMPTY_SHA256, PayloadCheck, SignedRequest, SigningKeyCache, Verifier, VerifierConfig,
};

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
    /// The body hash the gateway passes to `verify`: `None` when the request declares it.
    body_sha256: Option<[u8; 32]>,
}

impl Owned {
    /// Runs `f` on a borrowed view, built the way the gateway builds it from a request head.
    fn with<R>(&self, f: impl FnOnce(&SignedRequest<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        f(&SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
        })
    }
}

/// Header form: `POST runs/search` with `x-amz-content-sha256`. Presigned form: `GET` of an
/// artifact, empty body.
fn signed(location: SignatureLocation) -> Owned {
    let presigned = location == SignatureLocation::QueryParams;
    let (method, path, body): (&str, &str, &[u8]) = if presigned {
        (
            "GET",
            "/api/2.0/mlflow-artifacts/artifacts/1/0123456789abcdef0123456789abcdef/artifacts/model/MLmodel",
            b"",
        )
    } else {
        ("POST", "/api/2.0/mlflow/runs/search", BODY)
    };
    let uri = format!("https://{HOST}{path}");
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
    settings.signature_location = location;
    if presigned {
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        settings.expires_in = Some(Duration::from_secs(900));
    } else {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
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
        method,
        uri.clone(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
    let mut builder = http::Request::builder().method(method).uri(&uri);
    for (n, v) in headers {
        builder = builder.header(n, v);
    }
    let mut request = builder.body(()).expect("request");
    instructions.apply_to_request_http1x(&mut request);
    Owned {
        method: method.to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or("").to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body_sha256: presigned.then_some(EMPTY_SHA256),
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
            owned.with(|request| {
                let pending = verifier
                    .parse_and_check(black_box(request), now)
                    .expect("parses");
                let key = match cache.get(&pending) {
                    Some(key) => key,
                    None => {
                        let key = pending.derive_signing_key(SECRET.as_bytes());
                        cache.insert(&pending, key.clone());
                        key
                    }
                };
                let verified = pending
                    .verify(&key, owned.body_sha256.as_ref())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                matches!(verified.payload, PayloadCheck::Pending(_))
            })
        };
        run(now, &cache); // warm the key cache
        group.bench_function(name, |b| b.iter(|| run(now, &cache)));
    }

    let owned = signed(SignatureLocation::Headers);
    group.bench_function("verify_derive_key", |b| {
        b.iter(|| {
            owned.with(|request| {
                let pending = verifier
                    .parse_and_check(black_box(request), now)
                    .expect("parses");
                let key = pending.derive_signing_key(black_box(SECRET.as_bytes()));
                pending.verify(&key, None).expect("verifies").form
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
