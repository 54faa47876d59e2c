//! The load balancer's probes, answered by mlgate itself without credentials:
//! `GET /_mlgate/healthz` (the process answers) and `GET /_mlgate/readyz` (it can serve: the
//! store answers, MLflow's `/health` answers, every OIDC issuer's keys are loaded or kept from
//! the last good fetch, and the server is not draining after SIGTERM). Neither answer holds a secret: only
//! the names of the checks and whether each passed.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::RESERVED_PREFIX;
use crate::authenticate::Authenticator;
use crate::forward::Upstream;
use crate::store::Store;

/// How long MLflow's `/health` has to answer a readiness probe (probes time out in seconds).
const MLFLOW_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Which probe a path is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Alive,
    Ready,
}

impl Probe {
    pub fn of(path: &str) -> Option<Probe> {
        match path.strip_prefix(RESERVED_PREFIX)? {
            "/healthz" => Some(Probe::Alive),
            "/readyz" => Some(Probe::Ready),
            _ => None,
        }
    }
}

/// One readiness check's name and whether it passed, in the order they are reported.
pub type Check = (&'static str, bool);

/// What the readiness probe looks at.
pub struct Readiness<'a> {
    pub store: &'a Store,
    pub upstream: &'a Upstream,
    pub authenticator: &'a Authenticator,
    pub draining: bool,
}

impl Readiness<'_> {
    pub async fn checks(&self) -> Vec<Check> {
        let mut checks = vec![
            ("store", self.store.is_ready()),
            ("mlflow", self.mlflow_answers().await),
        ];
        if let Some(oidc) = self.authenticator.oidc() {
            checks.push(("oidc_keys", oidc.keys_loaded()));
        }
        checks.push(("not_draining", !self.draining));
        checks
    }

    async fn mlflow_answers(&self) -> bool {
        matches!(
            tokio::time::timeout(MLFLOW_HEALTH_TIMEOUT, self.upstream.get("/health", None)).await,
            Ok(Ok((StatusCode::OK, _)))
        )
    }
}

/// The liveness answer: the process is up and serving requests.
pub fn alive() -> Response {
    answer(StatusCode::OK, json!({ "status": "alive" }))
}

/// The readiness answer: 200 when every check passed, else 503 in MLflow's error shape naming
/// the checks that failed.
pub fn ready(checks: &[Check]) -> Response {
    let (status, body) = readiness_body(checks);
    answer(status, body)
}

fn readiness_body(checks: &[Check]) -> (StatusCode, Value) {
    let report: serde_json::Map<String, Value> = checks
        .iter()
        .map(|(name, ok)| {
            (
                (*name).to_owned(),
                Value::from(if *ok { "ok" } else { "failing" }),
            )
        })
        .collect();
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    if failing.is_empty() {
        return (
            StatusCode::OK,
            json!({ "status": "ready", "checks": report }),
        );
    }
    let body = json!({
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": format!("not ready: {}", failing.join(", ")),
        "status": "not ready",
        "checks": report,
    });
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_paths() {
        assert_eq!(Probe::of("/_mlgate/healthz"), Some(Probe::Alive));
        assert_eq!(Probe::of("/_mlgate/readyz"), Some(Probe::Ready));
        assert_eq!(Probe::of("/_mlgate/readyz/"), None);
        assert_eq!(Probe::of("/healthz"), None);
        assert_eq!(Probe::of("/_mlgate/login"), None);
    }

    #[test]
    fn ready_when_every_check_passes() {
        let (status, body) = readiness_body(&[("store", true), ("mlflow", true)]);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({ "status": "ready", "checks": { "store": "ok", "mlflow": "ok" } })
        );
    }

    #[test]
    fn not_ready_names_what_failed_in_mlflow_shape() {
        let (status, body) =
            readiness_body(&[("store", true), ("mlflow", false), ("not_draining", false)]);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
        assert_eq!(body["message"], "not ready: mlflow, not_draining");
        assert_eq!(body["checks"]["store"], "ok");
        assert_eq!(body["checks"]["mlflow"], "failing");
    }
}
