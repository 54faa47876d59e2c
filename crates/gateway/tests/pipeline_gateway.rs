//! The gateway end to end against a tiny in-test upstream standing in for MLflow: the real
//! listener, pipeline, store, authenticator, portal and audit sink, over real sockets.
//! (The suite against the real MLflow server and client lives with the end-to-end tests.)

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mlgate::audit::{AuditOptions, AuditSink};
use mlgate::authenticate::{AuthSettings, Authenticator};
use mlgate::config::GatewaySettings;
use mlgate::pipeline::Gateway;
use mlgate::portal::{self, PortalState};
use mlgate::store::{AttachTarget, Store, password};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const PASSWORD: &str = "correct horse battery staple";
const ACCOUNT: &str = "111111111111";

// ------------------------------------------------------------------------------------------
// A stand-in for MLflow
// ------------------------------------------------------------------------------------------

/// What the fake MLflow saw and how far the streaming exchanges got.
#[derive(Default)]
struct Mlflow {
    /// Requests forwarded by mlgate (side lookups are counted apart).
    seen: Mutex<Vec<Seen>>,
    lookups: AtomicUsize,
    /// Bytes of an artifact upload received so far.
    uploaded: AtomicU64,
    /// Bytes of an artifact download the test client has read so far.
    downloaded: Arc<AtomicU64>,
}

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 64;
/// How far a producer may run ahead of its consumer. Larger than what sockets and hyper buffer
/// between the two, far smaller than the 64 MiB body: a gateway that buffered whole bodies
/// would leave the consumer at 0 and the exchange would stall.
const WINDOW: u64 = 24 << 20;

fn mlflow_router(state: Arc<Mlflow>) -> Router {
    Router::new()
        .route("/api/2.0/mlflow/runs/get", get(get_run))
        .route("/api/2.0/mlflow/experiments/get", get(get_experiment))
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(download).put(upload),
        )
        .route("/version", get(slow_version))
        .route("/api/3.0/mlflow/server-info", get(hop_headers))
        .fallback(echo)
        .with_state(state)
}

/// GetRun, answering mlgate's side lookups (no X-Forwarded-For) and forwarded calls alike.
async fn get_run(State(state): State<Arc<Mlflow>>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    if request.headers().contains_key("x-forwarded-for") {
        remember(&state, request).await;
    } else {
        state.lookups.fetch_add(1, Ordering::SeqCst);
    }
    let experiment = match query.as_str() {
        "run_id=run-in-1" => "1",
        "run_id=run-in-2" => "2",
        _ => {
            let body = json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run not found"});
            return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        }
    };
    axum::Json(json!({"run": {"info": {"experiment_id": experiment, "run_id": "r"}}}))
        .into_response()
}

/// GetExperiment, for the experiment name and tags mlgate reads as condition keys (not counted
/// as a lookup: those counts are about run → experiment resolution).
async fn get_experiment(request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    let Some(id) = query.strip_prefix("experiment_id=") else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    axum::Json(
        json!({"experiment": {"experiment_id": id, "name": format!("exp-{id}"), "tags": []}}),
    )
    .into_response()
}

async fn upload(State(state): State<Arc<Mlflow>>, request: Request) -> Response {
    let mut body = request.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            state.uploaded.store(total, Ordering::SeqCst);
        }
    }
    axum::Json(json!({"bytes": total})).into_response()
}

async fn download(State(state): State<Arc<Mlflow>>) -> Response {
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(2);
    let downloaded = state.downloaded.clone();
    tokio::spawn(async move {
        for k in 0..CHUNKS {
            wait_until_within_window((k * CHUNK) as u64, &downloaded).await;
            if tx.send_data(Bytes::from(vec![b'y'; CHUNK])).await.is_err() {
                return;
            }
        }
    });
    Response::new(Body::new(body))
}

async fn slow_version() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "3.17.2"
}

/// GetServerInfo, answering with connection-level headers that must not reach the client.
async fn hop_headers(State(state): State<Arc<Mlflow>>, request: Request) -> Response {
    remember(&state, request).await;
    let mut response = "ok".into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("x-resp-hop"));
    headers.insert("x-resp-hop", HeaderValue::from_static("1"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert("proxy-authenticate", HeaderValue::from_static("Basic"));
    headers.insert("x-kept", HeaderValue::from_static("1"));
    response
}

async fn echo(State(state): State<Arc<Mlflow>>, request: Request) -> Response {
    let seen = remember(&state, request).await;
    let headers: BTreeMap<String, String> = seen
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                value.to_str().unwrap_or("<binary>").to_owned(),
            )
        })
        .collect();
    axum::Json(json!({
        "method": seen.method.as_str(),
        "uri": seen.uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&seen.body),
    }))
    .into_response()
}

async fn remember(state: &Mlflow, request: Request) -> Seen {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method,
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    };
    state.seen.lock().expect("lock").push(seen.clone());
    seen
}

async fn wait_until_within_window(produced: u64, consumed: &AtomicU64) {
    while produced > consumed.load(Ordering::SeqCst) + WINDOW {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn start_mlflow_on(listener: TcpListener) -> Arc<Mlflow> {
    let state = Arc::new(Mlflow::default());
    let router = mlflow_router(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    state
}

// ------------------------------------------------------------------------------------------
// The gateway under test
// ------------------------------------------------------------------------------------------

struct Gate {
    addr: SocketAddr,
    client: Client<HttpConnector, Body>,
    audit: AuditSink,
    audit_lines: Arc<Mutex<Vec<u8>>>,
    _shutdown: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Users, each with one policy.
const USERS: &[(&str, &str)] = &[
    (
        "admin",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"mlflow:*","Resource":"*"}]}"#,
    ),
    (
        "reader",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow",
            "Action":["mlflow:Get*","mlflow:List*","mlflow:Search*"],"Resource":"*"}]}"#,
    ),
    (
        "exp1",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Exp1","Effect":"Allow","Action":"mlflow:Get*",
            "Resource":"arn:mlflow:us-east-1:111111111111:experiment/1/*"}]}"#,
    ),
    (
        "article",
        r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke",
            "Resource":"arn:aws:execute-api:us-east-1:111111111111:mlgate/*/*/*","Effect":"Allow"}]}"#,
    ),
];

async fn start_gate(upstream: SocketAddr, max_parsed_body: u64) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    for (user, policy) in USERS {
        let hash = password::hash(PASSWORD).expect("hash");
        store
            .create_user(None, user, Some(hash), BTreeMap::new())
            .await
            .expect("user");
        store.put_policy(user, policy).await.expect("policy");
        store
            .attach_policy(user, None, AttachTarget::User(user))
            .await
            .expect("attach");
    }
    let audit_lines = Arc::new(Mutex::new(Vec::new()));
    let audit = AuditSink::with_writer(
        Box::new(SharedBuf(audit_lines.clone())),
        AuditOptions::default(),
        [0; 32],
    );
    let authenticator = Authenticator::new(store.clone(), AuthSettings::default());
    let portal = portal::router(PortalState::new(authenticator.clone()));
    let settings = GatewaySettings {
        region: "us-east-1".into(),
        account: ACCOUNT.into(),
        api_id: "mlgate".into(),
        stage: "prod".into(),
        max_parsed_body,
        parsed_body_budget: 4 * max_parsed_body,
        body_timeout: Duration::from_secs(30),
        upstream: format!("http://{upstream}").parse().expect("uri"),
        upstream_timeout: Duration::from_millis(500),
        mlflow_workspaces: false,
    };
    let gateway =
        Gateway::new(settings, store, authenticator, portal, audit.clone()).expect("gateway");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    common::spawn_gateway(listener, gateway, &audit, stop);
    let client = Client::builder(TokioExecutor::new()).build_http();
    Gate {
        addr,
        client,
        audit,
        audit_lines,
        _shutdown: shutdown,
        _dir: dir,
    }
}

async fn mlflow_and_gate() -> (Arc<Mlflow>, Gate) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let mlflow = start_mlflow_on(listener).await;
    (mlflow, start_gate(upstream, 1 << 20).await)
}

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"))
    )
}

impl Gate {
    fn request(&self, method: Method, path: &str, user: Option<&str>) -> http::request::Builder {
        let builder = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        match user {
            Some(user) => builder.header(header::AUTHORIZATION, basic(user)),
            None => builder,
        }
    }

    async fn send(&self, request: http::Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("mlgate answers")
            .expect("request sent");
        let (parts, body) = response.into_parts();
        (
            parts.status,
            parts.headers,
            body.collect().await.expect("body").to_bytes(),
        )
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = self
            .request(method, path, user)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let (status, _, body) = self.send(request).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, user: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(
                self.request(Method::GET, path, user)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn audit_records(&self) -> Vec<Value> {
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || audit.flush())
            .await
            .expect("join")
            .expect("flush");
        let lines = self.audit_lines.lock().expect("lock").clone();
        String::from_utf8(lines)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            // Request records only, not the chain's checkpoints.
            .filter(|v: &Value| v.get("event").is_none())
            .collect()
    }
}

fn assert_mlflow_error(status: StatusCode, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

// ------------------------------------------------------------------------------------------
// Proxying
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_64_mib_upload_streams_through() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(2);
    let producer_mlflow = mlflow.clone();
    let producer = tokio::spawn(async move {
        for k in 0..CHUNKS {
            wait_until_within_window((k * CHUNK) as u64, &producer_mlflow.uploaded).await;
            tx.send_data(Bytes::from(vec![b'x'; CHUNK]))
                .await
                .expect("mlgate keeps reading");
        }
    });
    let request = gate
        .request(
            Method::PUT,
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/big.bin",
            Some("admin"),
        )
        .body(Body::new(body))
        .expect("request");
    let (status, _, body) = gate.send(request).await;
    producer.await.expect("producer");
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["bytes"], (CHUNK * CHUNKS) as u64);
}

#[tokio::test]
async fn a_64_mib_download_streams_through() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let request = gate
        .request(
            Method::GET,
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/big.bin",
            Some("reader"),
        )
        .body(Body::empty())
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(30), gate.client.request(request))
        .await
        .expect("answers")
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut total = 0u64;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(30), body.frame())
        .await
        .expect("no stall")
    {
        if let Some(data) = frame.expect("frame").data_ref() {
            total += data.len() as u64;
            mlflow.downloaded.store(total, Ordering::SeqCst);
        }
    }
    assert_eq!(total, (CHUNK * CHUNKS) as u64);
}

#[tokio::test]
async fn mlflow_sees_its_own_host_and_mlgates_forwarding_headers_but_no_secrets() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let request = gate
        .request(
            Method::GET,
            "/api/2.0/mlflow/experiments/search?max_results=1",
            Some("reader"),
        )
        .header(header::COOKIE, "theme=dark")
        .header("x-mlflow-authorization", "Basic c3RvbGVu")
        .header("x-mlflow-assistant-delegation", "admin")
        .header("x-mlgate-principal", "arn:aws:iam::111111111111:user/admin")
        .header("x-forwarded-for", "10.9.9.9")
        .header("x-forwarded-host", "evil.example")
        .header("x-request-id", "client-chosen")
        .body(Body::empty())
        .expect("request");
    let (status, response_headers, _) = gate.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = mlflow
        .seen
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("forwarded");
    let upstream_host = seen.headers[header::HOST]
        .to_str()
        .expect("host")
        .to_owned();
    assert_ne!(upstream_host, gate.addr.to_string());
    assert!(upstream_host.starts_with("127.0.0.1:"));
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(
        seen.headers["x-forwarded-host"],
        gate.addr.to_string().as_str()
    );
    assert_eq!(seen.headers[header::COOKIE], "theme=dark");
    for stripped in [
        "authorization",
        "x-mlflow-authorization",
        "x-mlflow-assistant-delegation",
        "x-mlgate-principal",
    ] {
        assert!(
            !seen.headers.contains_key(stripped),
            "{stripped} reached MLflow"
        );
    }
    // One request id, mlgate's, on both sides.
    assert_ne!(seen.headers["x-request-id"], "client-chosen");
    assert_eq!(
        seen.headers["x-request-id"],
        response_headers["x-request-id"]
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let request = gate
        .request(Method::GET, "/api/3.0/mlflow/server-info", Some("article"))
        .header(header::CONNECTION, "x-hop")
        .header("x-hop", "1")
        .header("keep-alive", "timeout=5")
        .header(header::TE, "trailers")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .body(Body::empty())
        .expect("request");
    let (status, headers, _) = gate.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = mlflow
        .seen
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("forwarded");
    for stripped in ["x-hop", "keep-alive", "proxy-authorization"] {
        assert!(
            !seen.headers.contains_key(stripped),
            "{stripped} reached MLflow"
        );
    }
    assert_eq!(seen.headers[header::TE], "trailers");
    for stripped in ["x-resp-hop", "keep-alive", "proxy-authenticate"] {
        assert!(
            !headers.contains_key(stripped),
            "{stripped} reached the client"
        );
    }
    assert_eq!(headers["x-kept"], "1");
}

#[tokio::test]
async fn mlflow_down_is_a_502_and_mlgate_recovers() {
    let placeholder = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = placeholder.local_addr().expect("addr");
    drop(placeholder);
    let gate = start_gate(upstream, 1 << 20).await;

    let (status, body) = gate
        .get(
            "/api/2.0/mlflow/experiments/search?max_results=1",
            Some("reader"),
        )
        .await;
    assert_mlflow_error(status, &body, 502, "TEMPORARILY_UNAVAILABLE");

    let _mlflow = start_mlflow_on(TcpListener::bind(upstream).await.expect("rebind")).await;
    let (status, body) = gate
        .get(
            "/api/2.0/mlflow/experiments/search?max_results=1",
            Some("reader"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn mlflow_too_slow_is_a_504() {
    let (_mlflow, gate) = mlflow_and_gate().await;
    let (status, body) = gate.get("/version", Some("reader")).await;
    assert_mlflow_error(status, &body, 504, "DEADLINE_EXCEEDED");
}

// ------------------------------------------------------------------------------------------
// Deciding
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn unauthenticated_api_clients_get_401_and_browsers_the_sign_in_page() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let request = gate
        .request(Method::GET, "/api/2.0/mlflow/experiments/search", None)
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = gate.send(request).await;
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_mlflow_error(status, &body, 401, "UNAUTHENTICATED");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"mlgate\"");

    let wrong = gate
        .request(Method::GET, "/api/2.0/mlflow/experiments/search", None)
        .header(
            header::AUTHORIZATION,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("reader:wrong password!")
            ),
        )
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = gate.send(wrong).await;
    assert_mlflow_error(
        status,
        &serde_json::from_slice(&body).expect("json"),
        401,
        "UNAUTHENTICATED",
    );

    let browser = gate
        .request(Method::GET, "/?o=1", None)
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .body(Body::empty())
        .expect("request");
    let (status, headers, _) = gate.send(browser).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers[header::LOCATION].to_str().expect("location");
    assert!(location.starts_with("/_mlgate/login?next=/"), "{location}");

    // The sign-in page itself is served by mlgate, and health checks need no credential.
    let (status, _, _) = gate
        .send(
            gate.request(Method::GET, "/_mlgate/login", None)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = gate.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        mlflow
            .seen
            .lock()
            .expect("lock")
            .iter()
            .all(|s| s.uri == "/health")
    );
}

#[tokio::test]
async fn ambiguous_or_malformed_bodies_never_reach_mlflow() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let (status, body) = gate
        .json(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some("admin"),
            json!({"experiment_id": "1", "experimentId": "2"}),
        )
        .await;
    assert_mlflow_error(status, &body, 400, "INVALID_PARAMETER_VALUE");

    let malformed = gate
        .request(Method::POST, "/api/2.0/mlflow/runs/create", Some("admin"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"experiment_id\": \"1\""))
        .expect("request");
    let (status, _, body) = gate.send(malformed).await;
    assert_mlflow_error(
        status,
        &serde_json::from_slice(&body).expect("json"),
        400,
        "INVALID_PARAMETER_VALUE",
    );

    let (status, body) = gate
        .get(
            "/api/2.0/mlflow/../mlflow/runs/get?run_id=run-in-1",
            Some("admin"),
        )
        .await;
    assert_mlflow_error(status, &body, 400, "INVALID_PARAMETER_VALUE");

    assert!(mlflow.seen.lock().expect("lock").is_empty());
    assert_eq!(mlflow.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bodies_over_the_parse_limit_are_413() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let mlflow = start_mlflow_on(listener).await;
    let gate = start_gate(upstream, 1024).await;
    let big = json!({"experiment_ids": ["1"], "filter": "x".repeat(2048)});
    let (status, body) = gate
        .json(
            Method::POST,
            "/api/2.0/mlflow/runs/search",
            Some("reader"),
            big.clone(),
        )
        .await;
    assert_mlflow_error(status, &body, 413, "REQUEST_LIMIT_EXCEEDED");

    // Without a Content-Length the limit holds while reading.
    let (mut tx, chunked) = Channel::<Bytes, Infallible>::new(4);
    tokio::spawn(async move {
        let _ = tx.send_data(Bytes::from(big.to_string())).await;
    });
    let request = gate
        .request(Method::POST, "/api/2.0/mlflow/runs/search", Some("reader"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::new(chunked))
        .expect("request");
    let (status, _, body) = gate.send(request).await;
    assert_mlflow_error(
        status,
        &serde_json::from_slice(&body).expect("json"),
        413,
        "REQUEST_LIMIT_EXCEEDED",
    );
    assert!(mlflow.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn unknown_routes_are_refused_whatever_the_policies_say() {
    let (mlflow, gate) = mlflow_and_gate().await;
    // "admin" and "article" hold `execute-api:Invoke` on every path; it does not reach MLflow.
    for who in ["admin", "article"] {
        let (status, body) = gate.get("/api/2.0/mlflow/not-a-route", Some(who)).await;
        assert_mlflow_error(status, &body, 404, "ENDPOINT_NOT_FOUND");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains("GET /api/2.0/mlflow/not-a-route"),
            "{message}"
        );
    }
    assert!(mlflow.seen.lock().expect("lock").is_empty());
    // Without a credential the answer is still 401: the catalog is not probed anonymously.
    let (status, body) = gate.get("/api/2.0/mlflow/not-a-route", None).await;
    assert_mlflow_error(status, &body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn denials_name_the_action_and_the_resource() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let (status, body) = gate
        .json(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some("reader"),
            json!({"experiment_id": "1"}),
        )
        .await;
    assert_mlflow_error(status, &body, 403, "PERMISSION_DENIED");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("mlflow:CreateRun"), "{message}");
    assert!(
        message.contains("arn:mlflow:us-east-1:111111111111:experiment/1"),
        "{message}"
    );
    assert!(message.contains("user/reader"), "{message}");
    assert!(!message.contains(PASSWORD));
    assert!(mlflow.seen.lock().expect("lock").is_empty());

    let records = gate.audit_records().await;
    let denied = records
        .iter()
        .find(|r| r["status"] == 403)
        .expect("audited");
    assert_eq!(denied["decision"], "implicit_deny");
    assert_eq!(denied["principal"], "arn:aws:iam::111111111111:user/reader");
    assert_eq!(denied["auth_method"], "basic");
    assert_eq!(
        denied["actions"],
        json!(["mlflow:CreateRun", "execute-api:Invoke"])
    );
    assert_eq!(
        denied["resources"][0],
        "arn:mlflow:us-east-1:111111111111:experiment/1"
    );
}

#[tokio::test]
async fn create_run_is_attributed_to_the_principal() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let forged = json!({
        "experimentId": "1",
        "user_id": "mallory",
        "tags": [{"key": "mlflow.user", "value": "mallory"}, {"key": "team", "value": "fraud"}]
    });
    let (status, echoed) = gate
        .json(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some("admin"),
            forged,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{echoed}");
    let received: Value =
        serde_json::from_str(echoed["body"].as_str().expect("body")).expect("json body");
    assert_eq!(received["user_id"], "admin");
    assert_eq!(received["experiment_id"], "1");
    assert_eq!(
        received["tags"],
        json!([{"key": "team", "value": "fraud"}, {"key": "mlflow.user", "value": "admin"}])
    );
    let length: usize = echoed["headers"]["content-length"]
        .as_str()
        .expect("length")
        .parse()
        .expect("number");
    assert_eq!(length, echoed["body"].as_str().expect("body").len());

    let records = gate.audit_records().await;
    let allowed = records.last().expect("audited");
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["policy"], "admin");
    assert_eq!(allowed["statement"], "All");
    assert_eq!(allowed["status"], 200);
    drop(mlflow);
}

#[tokio::test]
async fn runs_resolve_to_their_experiment_once() {
    let (mlflow, gate) = mlflow_and_gate().await;
    let (status, body) = gate
        .get("/api/2.0/mlflow/runs/get?run_id=run-in-1", Some("exp1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = gate
        .get("/api/2.0/mlflow/runs/get?run_id=run-in-1", Some("exp1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        mlflow.lookups.load(Ordering::SeqCst),
        1,
        "run → experiment is cached"
    );

    let (status, body) = gate
        .get("/api/2.0/mlflow/runs/get?run_id=run-in-2", Some("exp1"))
        .await;
    assert_mlflow_error(status, &body, 403, "PERMISSION_DENIED");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("experiment/2/run/run-in-2")
    );

    let (status, body) = gate
        .get("/api/2.0/mlflow/runs/get?run_id=no-such-run", Some("admin"))
        .await;
    assert_mlflow_error(status, &body, 404, "RESOURCE_DOES_NOT_EXIST");
    // Only the two allowed reads were forwarded.
    assert_eq!(mlflow.seen.lock().expect("lock").len(), 2);
}

/// Sends `head` on a fresh connection and reads until mlgate closes it.
async fn raw_exchange(addr: SocketAddr, head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn requests_the_http_parser_refuses_are_audited() {
    let (_mlflow, gate) = mlflow_and_gate().await;
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 << 10)
    );
    let refused: [(&[u8], &str); 4] = [
        (
            b"POST /api/2.0/mlflow/runs/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            "400",
        ),
        (
            b"POST /api/2.0/mlflow/runs/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "400",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n",
            "400",
        ),
        (big_header.as_bytes(), "431"),
    ];
    for (head, status) in refused {
        let answer = raw_exchange(gate.addr, head).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
    }
    // A client that closes its keep-alive connection after an answer is no refusal.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(gate.addr)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).await.expect("answer");
        assert_eq!(&answer, b"HTTP/1.1 200");
    }
    let mut records = gate.audit_records().await;
    for _ in 0..50 {
        if records.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        records = gate.audit_records().await;
    }
    let by_parser: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("refused by the HTTP parser"))
        })
        .collect();
    assert_eq!(by_parser.len(), 4, "{records:#?}");
    for (record, (_, status)) in by_parser.iter().zip(refused) {
        assert_eq!(record["decision"], "rejected");
        assert_eq!(record["source_ip"], "127.0.0.1");
        assert_eq!(record["principal"], Value::Null);
        assert_eq!(record["status"].to_string(), status, "{record}");
    }
    assert_eq!(
        records.len(),
        5,
        "only the health check besides: {records:#?}"
    );
}
