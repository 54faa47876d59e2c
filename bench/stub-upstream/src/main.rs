//! A fast fake MLflow tracking server for the benchmark suite (`bench/run`).
//!
//! It answers the few routes the suite sends with canned bodies shaped like MLflow 3.17's, so
//! that what is measured in front of it is the proxy's cost, not MLflow's:
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/2.0/mlflow/experiments/get` | an experiment with a few tags (~0.6 KiB) |
//! | `GET /api/2.0/mlflow/runs/get` | a run of experiment 1 (mlgate's run → experiment lookup) |
//! | `POST /api/2.0/mlflow/runs/search` | five runs with metrics, params and tags (~4 KiB) |
//! | `PUT/POST /api/2.0/mlflow-artifacts/artifacts/...` | reads and discards the body, `{}` |
//! | `GET /api/2.0/mlflow-artifacts/artifacts/...` | streams `--artifact-bytes` bytes (default 1 GiB) |
//! | `GET /health` | `OK` |
//! | `GET <path>` given with `--file <path>=<file>` | the file (JSON): lets the stub act as an OIDC issuer (discovery + JWKS) |
//! | anything else | `{}` |
//!
//! Usage: `mlgate-bench-stub [--listen 127.0.0.1:0] [--threads N] [--artifact-bytes N] [--file PATH=FILE]...`.
//! Prints `stub: ready on http://ADDR` on standard output once it listens.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const EXPERIMENT: &str = r#"{"experiment":{"experiment_id":"1","name":"bench/image-classifier","artifact_location":"mlflow-artifacts:/1","lifecycle_stage":"active","last_update_time":1761900000000,"creation_time":1761900000000,"tags":[{"key":"mlflow.note.content","value":"Baseline ResNet-50 fine-tuning on the internal product-photo set."},{"key":"team","value":"vision"},{"key":"cost-center","value":"cc-4711"},{"key":"mlflow.experimentKind","value":"custom_model_development"}]}}"#;

const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0u8; CHUNK];

fn run_json(i: usize) -> String {
    format!(
        concat!(
            r#"{{"info":{{"run_uuid":"0123456789abcdef0123456789abcde{i}","run_id":"0123456789abcdef0123456789abcde{i}","#,
            r#""run_name":"resnet50-lr{i}","experiment_id":"1","user_id":"mlflow-admin","status":"FINISHED","#,
            r#""start_time":1761900000000,"end_time":1761900360000,"artifact_uri":"mlflow-artifacts:/1/0123456789abcdef0123456789abcde{i}/artifacts","#,
            r#""lifecycle_stage":"active"}},"data":{{"metrics":[{{"key":"accuracy","value":0.91{i},"timestamp":1761900360000,"step":20}},"#,
            r#"{{"key":"loss","value":0.23{i},"timestamp":1761900360000,"step":20}}],"params":[{{"key":"lr","value":"0.00{i}"}},"#,
            r#"{{"key":"batch_size","value":"64"}},{{"key":"epochs","value":"20"}}],"tags":[{{"key":"mlflow.user","value":"mlflow-admin"}},"#,
            r#"{{"key":"mlflow.runName","value":"resnet50-lr{i}"}},{{"key":"mlflow.source.type","value":"LOCAL"}}]}},"inputs":{{}},"outputs":{{}}}}"#
        ),
        i = i
    )
}

/// A body of `remaining` zero bytes sent in 64 KiB frames without allocating.
struct Zeros {
    remaining: u64,
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

enum Reply {
    Full(Bytes),
    Zeros(Zeros),
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Reply::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            Reply::Full(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Reply::Zeros(z) => Pin::new(z).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Full(bytes) => bytes.is_empty(),
            Reply::Zeros(z) => z.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Reply::Zeros(z) => z.size_hint(),
        }
    }
}

struct Canned {
    files: Vec<(String, Bytes)>,
    experiment: Bytes,
    run: Bytes,
    search: Bytes,
    artifact_bytes: u64,
}

fn json(status: StatusCode, body: Bytes) -> Response<Reply> {
    let mut response = Response::new(Reply::Full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(
    canned: &'static Canned,
    request: Request<Incoming>,
) -> Result<Response<Reply>, Infallible> {
    let path = request.uri().path();
    let artifact = path.starts_with("/api/2.0/mlflow-artifacts/artifacts/");
    if request.method() == Method::GET
        && let Some((_, body)) = canned.files.iter().find(|(p, _)| p == path)
    {
        return Ok(json(StatusCode::OK, body.clone()));
    }
    let response = match (request.method(), path) {
        (&Method::GET, "/health") => json(StatusCode::OK, Bytes::from_static(b"OK")),
        (&Method::GET, "/api/2.0/mlflow/experiments/get") => {
            json(StatusCode::OK, canned.experiment.clone())
        }
        (&Method::GET, "/api/2.0/mlflow/runs/get") => json(StatusCode::OK, canned.run.clone()),
        (&Method::GET, _) if artifact => {
            let mut response = Response::new(Reply::Zeros(Zeros {
                remaining: canned.artifact_bytes,
            }));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        (&Method::POST, "/api/2.0/mlflow/runs/search") => {
            drain(request.into_body()).await;
            json(StatusCode::OK, canned.search.clone())
        }
        _ => {
            drain(request.into_body()).await;
            json(StatusCode::OK, Bytes::from_static(b"{}"))
        }
    };
    Ok(response)
}

/// Reads a request body to its end, keeping nothing.
async fn drain(mut body: Incoming) -> u64 {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => n += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => break,
        }
    }
    n
}

struct Args {
    files: Vec<(String, Bytes)>,
    listen: SocketAddr,
    threads: usize,
    artifact_bytes: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        files: Vec::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        artifact_bytes: 1 << 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--artifact-bytes" => {
                args.artifact_bytes = value()?
                    .parse()
                    .map_err(|e| format!("--artifact-bytes: {e}"))?
            }
            "--file" => {
                let spec = value()?;
                let (path, file) = spec.split_once('=').ok_or("--file wants PATH=FILE")?;
                let body = std::fs::read(file).map_err(|e| format!("--file {file}: {e}"))?;
                args.files.push((path.to_owned(), Bytes::from(body)));
            }
            "-h" | "--help" => {
                println!(
                    "mlgate-bench-stub [--listen 127.0.0.1:0] [--threads N] [--artifact-bytes N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("stub: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve(args));
}

async fn serve(args: Args) {
    let runs: Vec<String> = (1..=5).map(run_json).collect();
    let canned: &'static Canned = Box::leak(Box::new(Canned {
        files: args.files,
        experiment: Bytes::from_static(EXPERIMENT.as_bytes()),
        run: Bytes::from(format!(r#"{{"run":{}}}"#, runs[0])),
        search: Bytes::from(format!(
            r#"{{"runs":[{}],"next_page_token":"eyJvZmZzZXQiOiA1fQ=="}}"#,
            runs.join(",")
        )),
        artifact_bytes: args.artifact_bytes,
    }));
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("stub: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("local address");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "stub: ready on http://{addr}");
    let _ = stdout.flush();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(canned, request));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
