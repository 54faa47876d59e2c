//! Bearer JWTs from OIDC issuers, end to end through the real gateway (listener, pipeline,
//! store, audit) against two in-test OpenID providers that serve discovery documents and JWKS
//! over loopback, and a stand-in for MLflow. Every attack must give 401 with a clear reason,
//! and the audit record must say why.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mlgate::audit::{AuditOptions, AuditSink};
use mlgate::authenticate::jwt::{Oidc, OidcConfig};
use mlgate::authenticate::{AuthSettings, Authenticator};
use mlgate::config::GatewaySettings;
use mlgate::pipeline::Gateway;
use mlgate::portal::{self, PortalState};
use mlgate::store::{AttachTarget, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ACCOUNT: &str = "111111111111";

// ------------------------------------------------------------------------------------------
// Keys
// ------------------------------------------------------------------------------------------

struct Key {
    kid: &'static str,
    alg: Algorithm,
    pem: &'static str,
}

const RSA1: Key = Key {
    kid: "rsa-1",
    alg: Algorithm::RS256,
    pem: include_str!("data/oidc/rsa1.pem"),
};
const RSA2: Key = Key {
    kid: "rsa-2",
    alg: Algorithm::RS256,
    pem: include_str!("data/oidc/rsa2.pem"),
};
const EC1: Key = Key {
    kid: "ec-1",
    alg: Algorithm::ES256,
    pem: include_str!("data/oidc/ec1.pem"),
};
const ED1: Key = Key {
    kid: "ed-1",
    alg: Algorithm::EdDSA,
    pem: include_str!("data/oidc/ed1.pem"),
};
const OTHER: Key = Key {
    kid: "other-1",
    alg: Algorithm::ES256,
    pem: include_str!("data/oidc/other.pem"),
};

impl Key {
    fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(self.pem.as_bytes()),
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.pem.as_bytes()),
            _ => EncodingKey::from_ed_pem(self.pem.as_bytes()),
        }
        .expect("test key")
    }

    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding(), self.alg).expect("jwk");
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).expect("jwk json")
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, Some(self.kid), None)
    }

    fn sign_with(&self, claims: &Value, kid: Option<&str>, typ: Option<&str>) -> String {
        let mut h = Header::new(self.alg);
        h.kid = kid.map(str::to_owned);
        h.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&h, claims, &self.encoding()).expect("sign")
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

// ------------------------------------------------------------------------------------------
// A tiny OpenID provider: discovery + JWKS, swappable keys, can go down
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Idp {
    /// Claims of the ID token the token endpoint hands out next (the test sets `nonce`).
    next_id_token: Mutex<Option<String>>,
    token_requests: Mutex<Vec<String>>,
    issuer: Mutex<String>,
    keys: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    down: AtomicBool,
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Response {
    let iss = idp.issuer.lock().unwrap().clone();
    axum::Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"),
        "authorization_endpoint": format!("{iss}/auth"), "token_endpoint": format!("{iss}/token")}))
    .into_response()
}

async fn jwks(State(idp): State<Arc<Idp>>) -> Response {
    idp.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if idp.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = idp.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn token(State(idp): State<Arc<Idp>>, body: String) -> Response {
    idp.token_requests.lock().unwrap().push(body);
    match idp.next_id_token.lock().unwrap().take() {
        Some(t) => {
            axum::Json(json!({"id_token": t, "access_token": "opaque", "token_type": "Bearer"}))
                .into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response(),
    }
}

async fn start_idp(keys: &[&Key]) -> Arc<Idp> {
    let idp = Arc::new(Idp::default());
    *idp.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    *idp.issuer.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", axum::routing::post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    idp
}

impl Idp {
    fn iss(&self) -> String {
        self.issuer.lock().unwrap().clone()
    }
}

// ------------------------------------------------------------------------------------------
// MLflow stand-in and the gateway
// ------------------------------------------------------------------------------------------

async fn start_mlflow() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let router = Router::new().fallback(|| async {
        axum::Json(json!({"experiment": {"experiment_id": "1", "name": "e"}, "experiment_id": "1"}))
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Gate {
    addr: SocketAddr,
    client: Client<HttpConnector, Body>,
    audit: AuditSink,
    audit_lines: Arc<Mutex<Vec<u8>>>,
    idp: Arc<Idp>,
    second: Arc<Idp>,
    _shutdown: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

const WRITE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"mlflow:*","Resource":"*"}]}"#;
const READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":["mlflow:Get*","mlflow:List*","mlflow:Search*"],"Resource":"*"}]}"#;

fn oidc_config(idp: &Idp, second: &Idp) -> OidcConfig {
    OidcConfig::parse(&format!(
        r#"
        [[issuer]]
        name = "corp"
        issuer = "{}"
        audiences = ["mlflow"]
        username_claim = "preferred_username"
        groups_claim = "groups"
        [issuer.group_map]
        ml-writers = "writers"
        ml-readers = "readers"
        [issuer.login]
        client_id = "mlflow"
        client_secret = "s3cret"
        display_name = "Corp SSO"

        [[issuer]]
        name = "cognito"
        issuer = "{}"
        audiences = ["app-client-b"]
        token_types = ["access"]
        algorithms = ["ES256"]
        username_claim = "username"
        groups_claim = "cognito:groups"
        [issuer.group_map]
        ml-writers = "readers"
        "#,
        idp.iss(),
        second.iss()
    ))
    .expect("config")
}

async fn start_gate(min_refetch: Option<Duration>) -> Gate {
    let idp = start_idp(&[&RSA1, &EC1, &ED1]).await;
    let second = start_idp(&[&OTHER]).await;
    let upstream = start_mlflow().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    for (group, policy) in [("writers", WRITE), ("readers", READ)] {
        store.create_group(None, group).await.expect("group");
        store.put_policy(group, policy).await.expect("policy");
        store
            .attach_policy(group, None, AttachTarget::Group(group))
            .await
            .expect("attach");
    }
    let oidc = Arc::new(Oidc::with_http(
        oidc_config(&idp, &second),
        ACCOUNT,
        reqwest::Client::new(),
        min_refetch,
    ));
    oidc.warm_up().await;
    let audit_lines = Arc::new(Mutex::new(Vec::new()));
    let audit = AuditSink::with_writer(
        Box::new(SharedBuf(audit_lines.clone())),
        AuditOptions::default(),
        [0; 32],
    );
    let authenticator = Authenticator::new(store.clone(), AuthSettings::default()).with_oidc(oidc);
    let portal = portal::router(PortalState::new(authenticator.clone()));
    let settings = GatewaySettings {
        region: "us-east-1".into(),
        account: ACCOUNT.into(),
        api_id: "mlgate".into(),
        stage: "prod".into(),
        max_parsed_body: 1 << 20,
        parsed_body_budget: 4 << 20,
        body_timeout: Duration::from_secs(30),
        upstream: format!("http://{upstream}").parse().expect("uri"),
        upstream_timeout: Duration::from_secs(5),
        mlflow_workspaces: false,
    };
    let gateway =
        Gateway::new(settings, store, authenticator, portal, audit.clone()).expect("gateway");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    common::spawn_gateway(listener, gateway, &audit, stop);
    Gate {
        addr,
        client: Client::builder(TokioExecutor::new()).build_http(),
        audit,
        audit_lines,
        idp,
        second,
        _shutdown: shutdown,
        _dir: dir,
    }
}

impl Gate {
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let body = if method == Method::POST {
            Body::from(json!({"name": "exp-from-jwt"}).to_string())
        } else {
            Body::empty()
        };
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(20), self.client.request(request))
            .await
            .expect("answer")
            .expect("sent");
        let (parts, body) = response.into_parts();
        let bytes: Bytes = body.collect().await.expect("body").to_bytes();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn read(&self, bearer: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                Method::GET,
                "/api/2.0/mlflow/experiments/get?experiment_id=1",
                bearer,
            )
            .await;
        (s, v)
    }

    async fn write(&self, bearer: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(Method::POST, "/api/2.0/mlflow/experiments/create", bearer)
            .await;
        (s, v)
    }

    async fn audit(&self) -> Vec<Value> {
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || audit.flush())
            .await
            .unwrap()
            .unwrap();
        let lines = self.audit_lines.lock().unwrap().clone();
        String::from_utf8(lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            // Request records only, not the chain's checkpoints.
            .filter(|v: &Value| v.get("event").is_none())
            .collect()
    }

    async fn last_audit(&self) -> Value {
        self.audit().await.pop().expect("an audit record")
    }

    fn claims(&self, user: &str, groups: &[&str]) -> Value {
        json!({
            "iss": self.idp.iss(), "sub": format!("sub-{user}"), "aud": "mlflow",
            "preferred_username": user, "groups": groups,
            "iat": now(), "exp": now() + 300,
        })
    }

    /// Asserts a 401 UNAUTHENTICATED whose message and audit reason contain `why`.
    async fn refused(&self, token: &str, why: &str) {
        let (status, body) = self.read(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(body["error_code"], "UNAUTHENTICATED", "{body}");
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "expected {why:?} in {msg:?}");
        let rec = self.last_audit().await;
        assert_eq!(rec["decision"], "unauthenticated", "{rec}");
        assert_eq!(rec["auth_method"], "jwt", "{rec}");
        assert_eq!(rec["status"], 401, "{rec}");
        let reason = rec["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(why),
            "audit reason {reason:?} lacks {why:?}"
        );
        assert!(
            !reason.contains(token),
            "the token itself must never be audited"
        );
    }
}

fn forge(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

// ------------------------------------------------------------------------------------------
// Accepted tokens
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn mapped_writer_and_reader_with_every_algorithm() {
    let g = start_gate(None).await;
    for key in [&RSA1, &EC1, &ED1] {
        let writer = key.sign(&g.claims("alice", &["ml-writers", "unmapped"]));
        let (s, body) = g.write(&writer).await;
        assert_eq!(s, StatusCode::OK, "{:?}: {body}", key.alg);
        let rec = g.last_audit().await;
        assert_eq!(
            rec["principal"],
            format!("arn:aws:iam::{ACCOUNT}:user/corp/alice")
        );
        assert_eq!(rec["auth_method"], "jwt");
        assert_eq!(rec["decision"], "allow");
        assert_eq!(rec["policy"], "writers");

        let reader = key.sign(&g.claims("bob", &["ml-readers"]));
        assert_eq!(g.read(&reader).await.0, StatusCode::OK);
        let (s, body) = g.write(&reader).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error_code"], "PERMISSION_DENIED");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("user/corp/bob is not authorized to perform mlflow:CreateExperiment"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn whoami_shows_the_federated_principal_and_union_of_groups() {
    let g = start_gate(None).await;
    let token = RSA1.sign(&g.claims("carol", &["ml-readers", "ml-writers", "other"]));
    let (s, _, who) = g.call(Method::GET, "/_mlgate/whoami", &token).await;
    assert_eq!(s, StatusCode::OK, "{who}");
    assert_eq!(who["name"], "carol");
    assert_eq!(who["groups"], json!(["readers", "writers"]));
    assert_eq!(who["kind"]["type"], "federated-user");
    assert_eq!(who["kind"]["provider"], "corp");
    assert_eq!(who["auth_method"], "jwt");

    // No mapped group: authenticated, but every action is denied (403, not 401).
    let nobody = RSA1.sign(&g.claims("dave", &["marketing"]));
    let (s, body) = g.read(&nobody).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn second_issuer_maps_the_same_claim_to_different_groups() {
    let g = start_gate(None).await;
    // Cognito-style access token: token_use=access, client_id instead of aud.
    let claims = json!({
        "iss": g.second.iss(), "sub": "s-1", "token_use": "access", "client_id": "app-client-b",
        "username": "erin", "cognito:groups": ["ml-writers"], "exp": now() + 300,
    });
    let token = OTHER.sign(&claims);
    assert_eq!(g.read(&token).await.0, StatusCode::OK);
    let rec = g.last_audit().await;
    assert_eq!(
        rec["principal"],
        format!("arn:aws:iam::{ACCOUNT}:user/cognito/erin")
    );
    // ml-writers maps to readers at this issuer: no writes.
    assert_eq!(g.write(&token).await.0, StatusCode::FORBIDDEN);

    // A token of the second issuer signed with the first issuer's key: no such kid there.
    let cross = EC1.sign(&claims);
    g.refused(&cross, "no key ec-1 in the JWKS of issuer cognito")
        .await;
    // The second issuer accepts only ES256.
    let rsa = RSA1.sign(&claims);
    g.refused(&rsa, "algorithm RS256 is not allowed for issuer cognito")
        .await;
    // Wrong client_id.
    let mut wrong = claims.clone();
    wrong["client_id"] = "someone-else".into();
    g.refused(&OTHER.sign(&wrong), "wrong audience").await;
    // An ID token where only access tokens are accepted.
    let mut id = claims.clone();
    id["token_use"] = "id".into();
    id["aud"] = "app-client-b".into();
    g.refused(
        &OTHER.sign(&id),
        "an ID token is not accepted from issuer cognito",
    )
    .await;
}

// ------------------------------------------------------------------------------------------
// Attacks
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_attacks_are_401_with_a_reason_in_the_audit_log() {
    let g = start_gate(None).await;
    let good = g.claims("mallory", &["ml-writers"]);

    // alg: none
    let none = forge(&json!({"alg": "none", "typ": "JWT"}), &good, b"");
    g.refused(&none, "alg \"none\"").await;
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    g.refused(&none, "alg \"none\"").await;

    // HS256 signed with the provider's public key (the RS256/HS256 confusion attack).
    let public_jwk = RSA1.jwk();
    for secret in [
        public_jwk.to_string().into_bytes(),
        public_jwk["n"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        let token =
            jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(&secret)).expect("hs256");
        g.refused(&token, "HMAC-signed tokens (alg HS256) are never accepted")
            .await;
    }

    // A header alg that does not match the key's: ES256 header on the RSA key's kid.
    let forged = EC1.sign_with(&good, Some("rsa-1"), None);
    g.refused(&forged, "the token says alg ES256 but its key")
        .await;

    // Wrong issuer (unconfigured), and an issuer that is configured but not the signer's.
    let mut c = good.clone();
    c["iss"] = "https://evil.example".into();
    g.refused(
        &RSA1.sign(&c),
        "issuer https://evil.example is not a configured OIDC issuer",
    )
    .await;

    // Wrong audience.
    let mut c = good.clone();
    c["aud"] = json!(["other-app"]);
    g.refused(&RSA1.sign(&c), "wrong audience (other-app)")
        .await;
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("aud");
    g.refused(&RSA1.sign(&c), "wrong audience (none)").await;

    // An access token where only ID tokens are accepted (RFC 9068 typ, and Cognito token_use).
    let at = RSA1.sign_with(&good, Some("rsa-1"), Some("at+jwt"));
    g.refused(&at, "an access token is not accepted from issuer corp")
        .await;
    let mut c = good.clone();
    c["token_use"] = "access".into();
    g.refused(&RSA1.sign(&c), "an access token is not accepted")
        .await;

    // Expired (beyond the 60 s leeway), not yet valid, no exp.
    let mut c = good.clone();
    c["exp"] = json!(now() - 600);
    g.refused(&RSA1.sign(&c), "the token has expired").await;
    let mut c = good.clone();
    c["nbf"] = json!(now() + 600);
    g.refused(&RSA1.sign(&c), "not valid yet").await;
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("exp");
    g.refused(&RSA1.sign(&c), "no exp claim").await;

    // Tampered payload: signature does not verify.
    let token = RSA1.sign(&good);
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut evil = good.clone();
    evil["preferred_username"] = "admin".into();
    let payload = URL_SAFE_NO_PAD.encode(evil.to_string());
    parts[1] = &payload;
    g.refused(&parts.join("."), "the signature does not verify")
        .await;

    // Unknown kid (a key the provider never published).
    let rogue = RSA2.sign(&good);
    g.refused(&rogue, "no key rsa-2 in the JWKS of issuer corp")
        .await;

    // Oversized and garbage tokens.
    let huge = format!("{}.{}.{}", "a".repeat(10_000), "b".repeat(10_000), "c");
    g.refused(&huge, "longer than 16384 bytes").await;
    g.refused("abc.def.ghi", "not base64url-encoded JSON").await;
    let not_object = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1,2]"));
    g.refused(&not_object, "header is not base64url-encoded JSON")
        .await;

    // A user claim that cannot be a name in an ARN.
    let mut c = good.clone();
    c["preferred_username"] = "../../admin".into();
    g.refused(&RSA1.sign(&c), "is not a usable user name").await;

    // Nothing above ever reached MLflow as an allowed request.
    let records = g.audit().await;
    assert!(records.iter().all(|r| r["decision"] != "allow"));
}

#[tokio::test]
async fn unknown_kid_refetches_are_rate_limited_and_outages_keep_the_last_keys() {
    let g = start_gate(None).await;
    let warm = g.idp.jwks_fetches.load(Ordering::SeqCst);
    assert_eq!(warm, 1, "fetched once at start-up");
    // The provider rotates in a key right after start-up. The first unknown kid would refetch,
    // but the start-up fetch was less than 30 s ago: no fetch at all.
    g.idp.keys.lock().unwrap().push(RSA2.jwk());
    let claims = g.claims("alice", &["ml-readers"]);
    for _ in 0..5 {
        g.refused(&RSA2.sign(&claims), "no key rsa-2").await;
    }
    // Random kids cannot flood the provider either.
    for i in 0..20 {
        let t = RSA1.sign_with(&claims, Some(&format!("random-{i}")), None);
        g.refused(&t, "no key random-").await;
    }
    assert_eq!(g.idp.jwks_fetches.load(Ordering::SeqCst), warm);

    // The provider goes down: known keys keep working.
    g.idp.down.store(true, Ordering::SeqCst);
    assert_eq!(g.read(&RSA1.sign(&claims)).await.0, StatusCode::OK);
    assert_eq!(g.read(&ED1.sign(&claims)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn key_rotation_without_restart() {
    let g = start_gate(Some(Duration::from_millis(300))).await;
    let claims = g.claims("alice", &["ml-readers"]);
    // A new key appears at the provider; the first token that uses it triggers one refetch.
    tokio::time::sleep(Duration::from_millis(400)).await;
    g.idp.keys.lock().unwrap().push(RSA2.jwk());
    let before = g.idp.jwks_fetches.load(Ordering::SeqCst);
    assert_eq!(g.read(&RSA2.sign(&claims)).await.0, StatusCode::OK);
    assert_eq!(g.idp.jwks_fetches.load(Ordering::SeqCst), before + 1);
    // Concurrent unknown kids share a single fetch.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = g.idp.jwks_fetches.load(Ordering::SeqCst);
    let g = Arc::new(g);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let g = g.clone();
        let c = claims.clone();
        tasks.push(tokio::spawn(async move {
            let t = RSA1.sign_with(&c, Some(&format!("rotated-{i}")), None);
            g.read(&t).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(g.idp.jwks_fetches.load(Ordering::SeqCst), before + 1);
    // The old key is retired: after the next refetch its tokens fail.
    tokio::time::sleep(Duration::from_millis(400)).await;
    g.idp.keys.lock().unwrap().retain(|k| k["kid"] != "rsa-1");
    let t = RSA2.sign_with(&claims, Some("trigger-refetch"), None);
    assert_eq!(g.read(&t).await.0, StatusCode::UNAUTHORIZED);
    let old = RSA1.sign(&g.claims("alice-again", &["ml-readers"]));
    g.refused(&old, "no key rsa-1").await;
}

#[tokio::test]
async fn two_credentials_and_no_issuer_configured() {
    let g = start_gate(None).await;
    let token = RSA1.sign(&g.claims("alice", &["ml-readers"]));
    // JWT plus a session cookie: conflicting credentials, 400.
    let request = http::Request::builder()
        .uri(format!(
            "http://{}/api/2.0/mlflow/experiments/get?experiment_id=1",
            g.addr
        ))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::COOKIE, "mlgate_session=abc")
        .body(Body::empty())
        .unwrap();
    let response = g.client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Without an OIDC configuration, JWTs are refused as unsupported (401).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let auth = Authenticator::new(store, AuthSettings::default());
    let parts = http::Request::builder()
        .uri("/x")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let e = auth.authenticate(&parts, false).await.unwrap_err();
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    assert!(e.reason.contains("no OIDC issuer is configured"));
    let _ = BTreeMap::<String, String>::new();
}

// ------------------------------------------------------------------------------------------
// Browser sign-in (authorization code flow) against the in-test provider
// ------------------------------------------------------------------------------------------

impl Gate {
    async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut b = http::Request::builder().uri(format!("http://{}{path}", self.addr));
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        let response = self
            .client
            .request(b.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}

fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

fn query_param(url: &str, key: &str) -> String {
    let q = url.split_once('?').unwrap().1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn browser_sign_in_with_pkce_state_and_nonce() {
    let g = start_gate(None).await;
    let (s, _, page) = g.get("/_mlgate/login", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Sign in with Corp SSO") && page.contains("id=\"sso-corp\""),
        "{page}"
    );

    // Start: 303 to the provider with PKCE S256, state, nonce; pre-login cookie set.
    let (s, h, _) = g
        .get("/_mlgate/oidc/corp/login?next=/%23/experiments", None)
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let location = h[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/auth?", g.idp.iss())),
        "{location}"
    );
    assert_eq!(query_param(&location, "code_challenge_method"), "S256");
    assert_eq!(query_param(&location, "client_id"), "mlflow");
    assert_eq!(
        query_param(&location, "redirect_uri"),
        format!("http://{}/_mlgate/oidc/corp/callback", g.addr)
    );
    let (state, nonce) = (
        query_param(&location, "state"),
        query_param(&location, "nonce"),
    );
    assert!(state.len() >= 32 && nonce.len() >= 32);
    let pre = cookie_pair(&h, "mlgate_oidc").expect("pre-login cookie");

    // A callback this browser did not start, or with another state: refused, no session.
    let cb = format!("/_mlgate/oidc/corp/callback?code=c1&state={state}");
    let (s, h, page) = g.get(&cb, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("not started in this browser"), "{page}");
    assert!(cookie_pair(&h, "mlgate_session").is_none());
    let (s, _, page) = g
        .get(
            "/_mlgate/oidc/corp/callback?code=c1&state=forged",
            Some(&pre),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("does not belong to this sign-in"), "{page}");
    // The pre-login state is single use: the same cookie cannot be replayed.
    let (s, _, _) = g.get(&cb, Some(&pre)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Start again; the provider answers with an ID token carrying a different nonce: refused.
    let begin = || async {
        let (_, h, _) = g
            .get("/_mlgate/oidc/corp/login?next=/%23/experiments", None)
            .await;
        let location = h[header::LOCATION].to_str().unwrap().to_owned();
        (
            query_param(&location, "state"),
            query_param(&location, "nonce"),
            cookie_pair(&h, "mlgate_oidc").unwrap(),
        )
    };
    let (state, _nonce, pre) = begin().await;
    let mut claims = g.claims("alice", &["ml-writers"]);
    claims["nonce"] = "not-the-nonce".into();
    *g.idp.next_id_token.lock().unwrap() = Some(RSA1.sign(&claims));
    let (s, _, page) = g
        .get(
            &format!("/_mlgate/oidc/corp/callback?code=c2&state={state}"),
            Some(&pre),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(page.contains("nonce"), "{page}");

    // The provider refuses (the user cancelled).
    let (state, _, pre) = begin().await;
    let (s, _, page) = g
        .get(
            &format!("/_mlgate/oidc/corp/callback?error=access_denied&error_description=cancelled&state={state}"),
            Some(&pre),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("refused the sign-in: access_denied (cancelled)"),
        "{page}"
    );

    // No mapped group: a clear 403 page and no session.
    let (state, nonce, pre) = begin().await;
    let mut claims = g.claims("carol", &["marketing"]);
    claims["nonce"] = nonce.into();
    *g.idp.next_id_token.lock().unwrap() = Some(RSA1.sign(&claims));
    let (s, h, page) = g
        .get(
            &format!("/_mlgate/oidc/corp/callback?code=c3&state={state}"),
            Some(&pre),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(page.contains("No access to MLflow"), "{page}");
    assert!(cookie_pair(&h, "mlgate_session").is_none());

    // The real thing: code exchanged with the client secret and the PKCE verifier.
    let (state, nonce, pre) = begin().await;
    let mut claims = g.claims("alice", &["ml-writers"]);
    claims["nonce"] = nonce.into();
    *g.idp.next_id_token.lock().unwrap() = Some(RSA1.sign(&claims));
    let (s, h, _) = g
        .get(
            &format!("/_mlgate/oidc/corp/callback?code=c4&state={state}"),
            Some(&pre),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/#/experiments");
    let session = cookie_pair(&h, "mlgate_session").expect("session cookie");
    let exchange = g
        .idp
        .token_requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert!(exchange.contains("grant_type=authorization_code") && exchange.contains("code=c4"));
    assert!(exchange.contains("code_verifier="), "{exchange}");

    let (s, _, who) = g.get("/_mlgate/whoami", Some(&session)).await;
    assert_eq!(s, StatusCode::OK, "{who}");
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        who["arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/corp/alice")
    );
    assert_eq!(who["auth_method"], "session");
    assert_eq!(who["groups"], json!(["writers"]));
    let (s, _, _) = g
        .get(
            "/api/2.0/mlflow/experiments/get?experiment_id=1",
            Some(&session),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let rec = g.last_audit().await;
    assert_eq!(rec["auth_method"], "session");
    assert_eq!(
        rec["principal"],
        format!("arn:aws:iam::{ACCOUNT}:user/corp/alice")
    );

    // Sign-out ends the session (this provider has no end_session_endpoint: back to sign-in).
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/_mlgate/logout", g.addr))
        .header(header::COOKIE, &session)
        .header("sec-fetch-site", "same-origin")
        .body(Body::empty())
        .unwrap();
    let response = g.client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (s, _, _) = g.get("/_mlgate/whoami", Some(&session)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

// ------------------------------------------------------------------------------------------
// STS AssumeRoleWithWebIdentity
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn assume_role_with_web_identity_follows_the_trust_policy() {
    use mlgate::authenticate::sigv4::{SigV4Auth, SigV4Settings};
    use mlgate::store::secrets::MasterKey;
    use tower::ServiceExt;

    let idp = start_idp(&[&RSA1]).await;
    let second = start_idp(&[&OTHER]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let federated = idp.iss().trim_start_matches("http://").to_owned();
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": federated},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{federated}:aud"): "mlflow",
            format!("{federated}:sub"): "sub-alice",
        }}
    }]});
    store
        .put_role(None, "trainer", &trust.to_string(), 3600, "jobs")
        .await
        .expect("role");
    let (master, _) = MasterKey::generate();
    let sigv4 = Arc::new(SigV4Auth::new(&SigV4Settings::default(), store.clone(), master).unwrap());
    let oidc = Arc::new(Oidc::with_http(
        oidc_config(&idp, &second),
        ACCOUNT,
        reqwest::Client::new(),
        None,
    ));
    let auth = Authenticator::new(store.clone(), AuthSettings::default())
        .with_sigv4(sigv4)
        .with_oidc(oidc);
    let portal = portal::router(PortalState::new(auth));
    let sts = |form: String| {
        let portal = portal.clone();
        async move {
            let request = http::Request::builder()
                .method(Method::POST)
                .uri("/_mlgate/sts")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .extension(mlgate::listen::Peer {
                    ip: "127.0.0.1".parse().unwrap(),
                    secure: false,
                })
                .body(Body::from(form))
                .unwrap();
            let response = portal.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let claims = |sub: &str| {
        json!({"iss": idp.iss(), "sub": sub, "aud": "mlflow", "preferred_username": sub,
               "groups": [], "exp": now() + 300})
    };
    let form = |token: &str| {
        format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=job-1\
             &RoleArn=arn:aws:iam::{ACCOUNT}:role/trainer&WebIdentityToken={token}"
        )
    };

    let (s, xml) = sts(form(&RSA1.sign(&claims("sub-alice")))).await;
    assert_eq!(s, StatusCode::OK, "{xml}");
    assert!(xml.contains("<AssumeRoleWithWebIdentityResponse"), "{xml}");
    assert!(xml.contains(&format!(
        "<Arn>arn:aws:sts::{ACCOUNT}:assumed-role/trainer/job-1</Arn>"
    )));
    assert!(xml.contains("<AccessKeyId>ASIA"));
    assert!(xml.contains("<SubjectFromWebIdentityToken>sub-alice</SubjectFromWebIdentityToken>"));
    assert!(xml.contains("<Audience>mlflow</Audience>"));

    // Another subject: the trust policy's condition does not match.
    let (s, xml) = sts(form(&RSA1.sign(&claims("sub-bob")))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{xml}");
    assert!(xml.contains("<Code>AccessDenied</Code>"));
    // A forged token: InvalidIdentityToken with the verifier's reason.
    let none = forge(&json!({"alg": "none"}), &claims("sub-alice"), b"");
    let (s, xml) = sts(form(&none)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{xml}");
    assert!(
        xml.contains("<Code>InvalidIdentityToken</Code>") && xml.contains("alg"),
        "{xml}"
    );
    let mut old = claims("sub-alice");
    old["exp"] = json!(now() - 3600);
    let (s, xml) = sts(form(&RSA1.sign(&old))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{xml}");
    assert!(xml.contains("<Code>ExpiredTokenException</Code>"), "{xml}");
    // Session tags from the token's AWS tags claim need sts:TagSession in the trust policy:
    // the trainer role's does not allow it.
    let mut tagged = claims("sub-alice");
    tagged["https://aws.amazon.com/tags"] = json!({"principal_tags": {"team": ["fraud"]}});
    let (s, xml) = sts(form(&RSA1.sign(&tagged))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{xml}");
    assert!(xml.contains("sts:TagSession"), "{xml}");
    let tagging_trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": federated},
        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
        "Condition": {"StringEquals": {
            format!("{federated}:sub"): "sub-alice",
            "aws:RequestTag/team": "fraud",
        }}
    }]});
    store
        .put_role(
            None,
            "tagged-trainer",
            &tagging_trust.to_string(),
            3600,
            "jobs",
        )
        .await
        .expect("role");
    let tagged_form = |token: &str| {
        format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=job-2\
             &RoleArn=arn:aws:iam::{ACCOUNT}:role/tagged-trainer&WebIdentityToken={token}"
        )
    };
    let (s, xml) = sts(tagged_form(&RSA1.sign(&tagged))).await;
    assert_eq!(s, StatusCode::OK, "{xml}");
    let akid = xml
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("access key id");
    let session = store.sts_session(akid).await.unwrap().expect("session");
    assert_eq!(
        session.tags,
        std::collections::BTreeMap::from([("team".to_owned(), "fraud".to_owned())])
    );
    // A tag value the trust policy does not allow refuses the whole exchange.
    tagged["https://aws.amazon.com/tags"] = json!({"principal_tags": {"team": ["risk"]}});
    let (s, xml) = sts(tagged_form(&RSA1.sign(&tagged))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{xml}");

    // Any other unsigned action is refused.
    let (s, xml) = sts("Action=GetCallerIdentity&Version=2011-06-15".into()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{xml}");
    assert!(xml.contains("MissingAuthenticationToken"));
}
