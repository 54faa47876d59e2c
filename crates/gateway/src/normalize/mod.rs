//! Stage 2: one canonical path, and the request's fields read exactly the way MLflow will read
//! them (`mlgate-catalog`). Anything MLflow could read differently is refused with 400 before
//! it is forwarded.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Uri, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use mlgate_catalog::{ParamStyle, Params, Route, normalize_path, read_otlp, read_params_for};

use crate::RESERVED_PREFIX;
use crate::error::GatewayError;
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
    let path = normalize_path(uri.path()).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
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

/// Reads the fields of a request to `route` as its MLflow handler does. Only a body MLflow
/// may parse is read (up to `limits`); any other body is handed back unread.
pub async fn read_fields(
    route: &Route,
    parts: &Parts,
    body: Body,
    limits: BodyLimits,
) -> Result<(Params, RequestBody), GatewayError> {
    let body = if route.reads_body(parts.method.as_str()) {
        RequestBody::Read(read_body(parts, body, limits).await?)
    } else {
        RequestBody::Streaming(body)
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
    }
    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok((params, body))
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

async fn read_body(parts: &Parts, body: Body, limits: BodyLimits) -> Result<Bytes, GatewayError> {
    let too_large = || {
        GatewayError::PayloadTooLarge(format!(
            "the request body is larger than the {} byte limit for requests mlgate must read",
            limits.max_bytes
        ))
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes) {
        return Err(too_large());
    }
    let limit = usize::try_from(limits.max_bytes).unwrap_or(usize::MAX);
    let collected = tokio::time::timeout(limits.timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| {
            GatewayError::ClientTimeout(format!(
                "the request body did not arrive within {} s",
                limits.timeout.as_secs_f64()
            ))
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => match BodyTimeout::find(error.as_ref()) {
            Some(timeout) => Err(GatewayError::ClientTimeout(timeout.to_string())),
            None => Err(GatewayError::BadRequest(
                "the request body could not be read".into(),
            )),
        },
    }
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
                matches!(target(&uri), Err(GatewayError::BadRequest(_))),
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
}
