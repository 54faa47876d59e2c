//! Stage 2: one canonical path, and the request's fields read exactly the way MLflow will read
//! them (`mlgate-catalog`). Anything MLflow could read differently is refused with 400 before
//! it is forwarded.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Uri, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use mlgate_catalog::{ParamStyle, Params, Route, normalize_path, read_otlp, read_params_for};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod workspace;

pub use workspace::{DEFAULT_WORKSPACE, WORKSPACE_HEADER, workspace};

use crate::RESERVED_PREFIX;
use crate::error::{ClientStall, GatewayError, find_in_chain};
use crate::listen::BodyTimeout;

/// Where a request goes, in canonical form.
#[derive(Clone, Debug)]
pub struct Target {
    /// The canonical path, as authorized and as forwarded.
    pub path: String,
    /// The canonical path with the query exactly as the client sent it (MLflow parses the
    /// same bytes mlgate parsed).
    pub path_and_query: PathAndQuery,
}

pub fn target(uri: &Uri) -> Result<Target, GatewayError> {
    let path = normalize_path(uri.path())?;
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    };
    let path_and_query = PathAndQuery::try_from(path_and_query)
        .map_err(|_| GatewayError::BadRequest("the request target is not a valid URI".into()))?;
    Ok(Target {
        path,
        path_and_query,
    })
}

impl Target {
    /// mlgate's own pages (sign-in), a prefix no MLflow route uses.
    pub fn is_reserved(&self) -> bool {
        self.path
            .strip_prefix(RESERVED_PREFIX)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Limits on bodies mlgate reads.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_bytes: u64,
    /// Time to receive the whole body.
    pub timeout: Duration,
}

/// Why a client's body could not be read within [`BodyLimits`].
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("the body is larger than the {limit} byte limit")]
    TooLarge { limit: u64 },
    #[error("the body did not arrive within {} s", .limit.as_secs_f64())]
    TimedOut { limit: Duration },
    /// The connection failed, or paused too long ([`BodyTimeout`] in the chain).
    #[error("the body could not be read: {0}")]
    Unreadable(BoxError),
}

/// Reads a client's whole body: at most `limits.max_bytes`, all of it within `limits.timeout`,
/// into one buffer of `size_hint` bytes (its declared length) when it arrives in pieces.
pub async fn collect_body(
    body: Body,
    limits: BodyLimits,
    size_hint: Option<u64>,
) -> Result<Bytes, BodyReadError> {
    let limit = usize::try_from(limits.max_bytes).unwrap_or(usize::MAX);
    let capacity = size_hint
        .and_then(|length| usize::try_from(length).ok())
        .unwrap_or(0)
        .min(limit);
    match tokio::time::timeout(limits.timeout, collect(Limited::new(body, limit), capacity)).await {
        Err(_) => Err(BodyReadError::TimedOut {
            limit: limits.timeout,
        }),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(BodyReadError::TooLarge {
            limit: limits.max_bytes,
        }),
        Ok(Err(error)) => Err(BodyReadError::Unreadable(error)),
        Ok(Ok(collected)) => Ok(collected),
    }
}

/// A request body after the fields were read: kept whole when mlgate read it, otherwise
/// untouched and still streaming.
pub enum RequestBody {
    Read(Bytes),
    Streaming(Body),
}

impl RequestBody {
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            RequestBody::Read(bytes) => Some(bytes),
            RequestBody::Streaming(_) => None,
        }
    }

    pub fn into_body(self) -> Body {
        match self {
            RequestBody::Read(bytes) => Body::from(bytes),
            RequestBody::Streaming(body) => body,
        }
    }
}

/// The bytes of request bodies mlgate reads and decides at once, across the process, counted
/// in KiB. A body takes its share before it is read (its declared length, or the largest body
/// allowed when none is declared) and holds it until its request is answered, so the memory of
/// buffering, reading fields and rewriting bodies is bounded by the budget, not by the number
/// of connections.
#[derive(Clone, Debug)]
pub struct ParsedBodyBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
    /// How long a body waits for its share before the request is refused with 503.
    wait: Duration,
}

/// A body's share of the [`ParsedBodyBudget`], given back when dropped.
#[derive(Debug)]
pub struct BudgetShare {
    _permit: Option<OwnedSemaphorePermit>,
}

impl BudgetShare {
    fn none() -> BudgetShare {
        BudgetShare { _permit: None }
    }
}

impl ParsedBodyBudget {
    pub fn new(bytes: u64, wait: Duration) -> ParsedBodyBudget {
        let total_kib = u32::try_from(bytes.div_ceil(1024).min(Semaphore::MAX_PERMITS as u64))
            .unwrap_or(u32::MAX);
        ParsedBodyBudget {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait,
        }
    }

    /// The share of a body of `bytes` (none for an empty body), waiting at most the budget's
    /// wait for it.
    pub async fn admit(&self, bytes: u64) -> Result<BudgetShare, GatewayError> {
        if bytes == 0 {
            return Ok(BudgetShare::none());
        }
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(self.total_kib);
        match tokio::time::timeout(self.wait, self.kib.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(BudgetShare {
                _permit: Some(permit),
            }),
            _ => Err(GatewayError::Overloaded),
        }
    }
}

/// Reads the fields of a request to `route` as its MLflow handler does. Only a body MLflow
/// may parse is read (up to `limits`), after it took its share of `budget` (kept until the
/// returned share is dropped); any other body is handed back unread.
pub async fn read_fields(
    route: &Route,
    parts: &Parts,
    body: Body,
    limits: BodyLimits,
    budget: &ParsedBodyBudget,
) -> Result<(Params, RequestBody, BudgetShare), GatewayError> {
    let (body, share) = if route.reads_body(parts.method.as_str()) {
        let (bytes, share) = read_whole_body(parts, body, limits, budget).await?;
        (RequestBody::Read(bytes), share)
    } else {
        (RequestBody::Streaming(body), BudgetShare::none())
    };
    let bytes = body.bytes().unwrap_or_default();
    let params = match route.params {
        // An OTLP export is read through its content coding, decoded up to the same limit.
        ParamStyle::Otlp => read_otlp(
            single_header(parts, header::CONTENT_TYPE)?,
            single_header(parts, header::CONTENT_ENCODING)?,
            bytes,
            usize::try_from(limits.max_bytes).unwrap_or(usize::MAX),
        ),
        _ => read_params_for(
            route,
            parts.method.as_str(),
            parts.uri.query(),
            parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            bytes,
        ),
    }?;
    Ok((params, body, share))
}

/// Reads a whole body mlgate decides on (up to `limits`), after it took its share of `budget`
/// (kept until the returned share is dropped).
pub async fn read_whole_body(
    parts: &Parts,
    body: Body,
    limits: BodyLimits,
    budget: &ParsedBodyBudget,
) -> Result<(Bytes, BudgetShare), GatewayError> {
    let declared = declared_length(parts);
    if declared.is_some_and(|length| length > limits.max_bytes) {
        return Err(GatewayError::PayloadTooLarge {
            limit: limits.max_bytes,
        });
    }
    let share = budget.admit(declared.unwrap_or(limits.max_bytes)).await?;
    let bytes = collect_body(body, limits, declared).await?;
    Ok((bytes, share))
}

/// A header's one value; several values, or one that is not text, are refused.
fn single_header(parts: &Parts, name: header::HeaderName) -> Result<Option<&str>, GatewayError> {
    let mut values = parts.headers.get_all(&name).iter();
    let value = values.next();
    if values.next().is_some() {
        return Err(GatewayError::BadRequest(format!("several {name} headers")));
    }
    value
        .map(|v| {
            v.to_str()
                .map_err(|_| GatewayError::BadRequest(format!("header {name} is not text")))
        })
        .transpose()
}

fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// A client body mlgate must read that it could not: too large, too slow (in all, or one
/// pause, [`BodyTimeout`]), or broken off.
impl From<BodyReadError> for GatewayError {
    fn from(error: BodyReadError) -> Self {
        match error {
            BodyReadError::TooLarge { limit } => GatewayError::PayloadTooLarge { limit },
            BodyReadError::TimedOut { limit } => {
                GatewayError::ClientTimeout(ClientStall::Body { limit })
            }
            BodyReadError::Unreadable(error) => {
                match find_in_chain::<BodyTimeout>(error.as_ref()) {
                    Some(timeout) => GatewayError::from(timeout),
                    None => GatewayError::BadRequest("the request body could not be read".into()),
                }
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body's bytes in one buffer of the declared length, so a body costs its size once (a
/// body that arrives as one chunk is kept as it is).
async fn collect(mut body: Limited<Body>, capacity: usize) -> Result<Bytes, BoxError> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match (&mut joined, first.take()) {
            (Some(joined), _) => joined.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(previous)) => {
                let mut buffer = BytesMut::with_capacity(capacity.max(previous.len() + data.len()));
                buffer.extend_from_slice(&previous);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
        }
    }
    Ok(match joined {
        Some(joined) => joined.freeze(),
        None => first.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_canonical_and_keep_the_query() {
        let uri: Uri = "/api/2.0/mlflow/runs/get?run_id=abc&x=%20"
            .parse()
            .expect("uri");
        let target = target(&uri).expect("valid");
        assert_eq!(target.path, "/api/2.0/mlflow/runs/get");
        assert_eq!(
            target.path_and_query.as_str(),
            "/api/2.0/mlflow/runs/get?run_id=abc&x=%20"
        );
        assert!(!target.is_reserved());
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for raw in [
            "/api/2.0/mlflow/../mlflow/runs/get",
            "/api//2.0",
            "/api/2.0%2Fmlflow",
            "/a/%2e%2e/b",
        ] {
            let uri: Uri = raw.parse().expect("uri");
            assert!(
                matches!(target(&uri), Err(GatewayError::InvalidPath(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn reserved_prefix() {
        let reserved = |raw: &str| {
            target(&raw.parse().expect("uri"))
                .expect("valid")
                .is_reserved()
        };
        assert!(reserved("/_mlgate/login?next=/"));
        assert!(reserved("/_mlgate"));
        assert!(!reserved("/_mlgateway"));
        assert!(!reserved("/static-files/_mlgate"));
    }

    #[tokio::test]
    async fn bodies_share_the_budget_and_wait_only_briefly_for_it() {
        let budget = ParsedBodyBudget::new(4 << 20, Duration::from_millis(50));
        let first = budget.admit(3 << 20).await.expect("fits");
        let second = budget.admit(1 << 20).await.expect("fits beside the first");
        assert!(matches!(
            budget.admit(1).await,
            Err(GatewayError::Overloaded)
        ));
        drop(first);
        let third = budget
            .admit(3 << 20)
            .await
            .expect("the first's share came back");
        drop((second, third));
        // A body larger than the whole budget waits for all of it.
        let whole = budget.admit(u64::MAX).await.expect("the whole budget");
        assert!(matches!(
            budget.admit(1).await,
            Err(GatewayError::Overloaded)
        ));
        drop(whole);
        budget.admit(0).await.expect("an empty body takes nothing");
    }

    #[test]
    fn body_read_failures_are_413_408_and_400() {
        let too_large = GatewayError::from(BodyReadError::TooLarge { limit: 10 });
        assert_eq!(too_large.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            too_large.to_string().contains("10 byte limit"),
            "{too_large}"
        );
        let slow = GatewayError::from(BodyReadError::TimedOut {
            limit: Duration::from_secs(2),
        });
        assert_eq!(slow.status(), http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            slow.to_string(),
            "the request body did not arrive within 2 s"
        );
        let paused = GatewayError::from(BodyReadError::Unreadable(Box::new(BodyTimeout(
            Duration::from_secs(1),
        ))));
        assert_eq!(paused.status(), http::StatusCode::REQUEST_TIMEOUT);
        let broken = GatewayError::from(BodyReadError::Unreadable("reset".into()));
        assert_eq!(broken.status(), http::StatusCode::BAD_REQUEST);
    }
}
