//! Bearer JWT verification (`mlgate::authenticate::jwt::Oidc`), as the gateway does it for
//! `Authorization: Bearer <jwt>`: the full check (header, issuer, key by `kid` from the JWKS
//! cache, signature, `exp`/`nbf`/`iss`, token type, audience, federated principal) for RS256,
//! ES256 and EdDSA, and the cached path a repeated token takes (SHA-256 of the token, one cache
//! read, a clone of the verified principal).
//!
//! The issuer is an in-bench OpenID provider on loopback serving the test keys of
//! `tests/data/oidc/` as its JWKS; the keys are fetched once before measuring, so nothing here
//! touches the network while timed. The full path is measured through `Oidc::verify` with the
//! issuer named (the sign-in flow's call), which skips the verified-token cache but is
//! otherwise the same code as a bearer token's first request; the cached path is
//! `Oidc::verify_bearer` with a token it has already verified.
//!
//! Run: `cargo bench --profile release --workspace --bench jwt` (add `-- --quick` for a short
//! run; `--workspace` reuses scripts/test's build, see docs/benchmarks.md).

use std::hint::black_box;

use axum::Router;
use axum::routing::get;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mlgate::authenticate::jwt::{Oidc, OidcConfig};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

/// (kid, algorithm, private key): the integration tests' keys.
const KEYS: &[(&str, Algorithm, &str)] = &[
    (
        "rsa-1",
        Algorithm::RS256,
        include_str!("../tests/data/oidc/rsa1.pem"),
    ),
    (
        "ec-1",
        Algorithm::ES256,
        include_str!("../tests/data/oidc/ec1.pem"),
    ),
    (
        "ed-1",
        Algorithm::EdDSA,
        include_str!("../tests/data/oidc/ed1.pem"),
    ),
];

fn encoding_key(alg: Algorithm, pem: &str) -> EncodingKey {
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_ed_pem(pem.as_bytes()),
    }
    .expect("bench key")
}

/// Starts the provider (discovery + JWKS) on the runtime; returns its issuer URL.
fn start_issuer(rt: &Runtime) -> String {
    let keys: Vec<Value> = KEYS
        .iter()
        .map(|(kid, alg, pem)| {
            let mut jwk = Jwk::from_encoding_key(&encoding_key(*alg, pem), *alg).expect("jwk");
            jwk.common.key_id = Some((*kid).to_owned());
            serde_json::to_value(jwk).expect("jwk json")
        })
        .collect();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
        let jwks = json!({ "keys": keys });
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }));
        tokio::spawn(async move { axum::serve(listener, router).await });
        issuer
    })
}

fn bench_jwt(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = start_issuer(&rt);
    let config = OidcConfig::parse(&format!(
        r#"[[issuer]]
        name = "bench"
        issuer = "{issuer}"
        audiences = ["mlflow"]
        [issuer.group_map]
        ml-readers = "readers""#
    ))
    .expect("OIDC config");
    let oidc = Oidc::new(config, "111111111111");
    rt.block_on(oidc.warm_up());

    // A typical ID token: the claims an OpenID provider puts in, valid for four hours.
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({
        "iss": issuer, "aud": "mlflow", "sub": "jwt-reader", "iat": now, "nbf": now - 5,
        "exp": now + 4 * 3600, "groups": ["ml-readers"], "email": "jwt-reader@example.com",
        "name": "JWT Reader", "nonce": "n-0S6_WzA2Mj",
    });
    let mut full = c.benchmark_group("jwt_verify");
    for (kid, alg, pem) in KEYS {
        let mut header = Header::new(*alg);
        header.kid = Some((*kid).to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &encoding_key(*alg, pem)).expect("sign");
        let verified = rt
            .block_on(oidc.verify(&token, Some("bench")))
            .expect("the bench token must verify");
        assert_eq!(verified.principal.groups, ["readers"]);
        full.bench_with_input(
            BenchmarkId::new("full", format!("{alg:?}")),
            &token,
            |b, t| b.iter(|| rt.block_on(oidc.verify(black_box(t), Some("bench")))),
        );
        // Fills the verified-token cache; every further call is a cache hit.
        rt.block_on(oidc.verify_bearer(&token)).expect("bearer");
        full.bench_with_input(
            BenchmarkId::new("cached", format!("{alg:?}")),
            &token,
            |b, t| b.iter(|| rt.block_on(oidc.verify_bearer(black_box(t)))),
        );
    }
    full.finish();
}

criterion_group!(benches, bench_jwt);
criterion_main!(benches);
