//! Every response mlgate makes up itself, in MLflow's JSON error shape so MLflow clients show it:
//! `{"error_code": "...", "message": "..."}`. Messages name what was refused, never a secret.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use mlgate_catalog::{GraphQlError, ParamError, PathError};
use serde::Serialize;

use crate::identity::AuthMethod;
use crate::store::StoreError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum GatewayError {
    /// Malformed or ambiguous request (dual spellings, bad JSON, bad path encoding): the message
    /// says what is wrong with it.
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request MLflow refuses with its generic `BAD_REQUEST` code (basic-auth's
    /// deletion of one's own account).
    #[error("{0}")]
    Refused(String),
    /// Fields MLflow's handler would not read as sent.
    #[error(transparent)]
    InvalidParams(#[from] ParamError),
    /// A path mlgate refuses to normalize.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// A GraphQL document mlgate cannot read exactly as MLflow would.
    #[error(transparent)]
    InvalidGraphQl(GraphQlError),
    /// No credential on a request that needs one.
    #[error(
        "authentication required: send HTTP Basic credentials (MLFLOW_TRACKING_USERNAME/PASSWORD) or an API token (MLFLOW_TRACKING_TOKEN)"
    )]
    Unauthenticated,
    /// A credential that failed (wrong, expired, conflicting, cross-site, rate-limited).
    #[error("{0}")]
    Authentication(AuthFailure),
    #[error(transparent)]
    PermissionDenied(Denial),
    /// A resource named by the request does not exist (found out while resolving it).
    #[error("{what} does not exist")]
    NotFound { what: String },
    /// What the request would create exists already (basic-auth's users).
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    /// A method and path outside the route catalog (refused whatever the policies say).
    #[error("mlgate knows no MLflow endpoint {method} {path}")]
    UnknownRoute { method: Method, path: String },
    #[error("the request body is larger than the {limit} byte limit for requests mlgate must read")]
    PayloadTooLarge { limit: u64 },
    /// The client stalled while sending its body.
    #[error(transparent)]
    ClientTimeout(ClientStall),
    /// MLflow could not be reached, broke the connection, or answered what mlgate cannot use.
    #[error(transparent)]
    UpstreamUnavailable(UpstreamFailure),
    /// MLflow did not answer in time.
    #[error(transparent)]
    UpstreamTimeout(UpstreamDelay),
    /// mlgate's own store cannot be read right now.
    #[error("the policy store is unavailable; try again")]
    StoreUnavailable(#[source] StoreError),
    /// The budget for request bodies mlgate reads is spent.
    #[error("mlgate is reading too many large request bodies at once; try again shortly")]
    Overloaded,
    /// `--audit-overload block`: no room for the request's record in time; not forwarded.
    #[error("the audit log is not keeping up; the request was not carried out; try again shortly")]
    AuditUnavailable,
    /// A bug or an unexpected answer from a dependency; logged, answered without details.
    #[error("{0}")]
    Internal(String),
}

/// Why a request was refused with 403.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Denial {
    /// The policies refused `action` on `resource` for `principal`; never names a policy body.
    #[error(
        "{principal} is not authorized to perform {action} on resource {resource} {}",
        if *explicit { "with an explicit deny in a policy" } else { "because no policy allows it" }
    )]
    ByPolicy {
        principal: String,
        action: String,
        resource: String,
        explicit: bool,
    },
    /// A GraphQL root field mlgate does not know.
    #[error(transparent)]
    UnknownGraphQlField(GraphQlError),
    /// The refusal of one field of a GraphQL document.
    #[error("GraphQL field '{key}' ({name}): {denial}")]
    GraphQlField {
        key: String,
        name: &'static str,
        denial: Box<Denial>,
    },
}

/// How the client stalled while sending its body.
#[derive(Clone, Copy, Debug, thiserror::Error)]
pub enum ClientStall {
    #[error("the request body did not arrive within {} s", .limit.as_secs_f64())]
    Body { limit: Duration },
    #[error("the client sent no request body data for {} s", .idle.as_secs_f64())]
    Idle { idle: Duration },
}

/// What went wrong with MLflow. The messages never carry a body MLflow sent.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UpstreamFailure {
    #[error("the MLflow tracking server is not reachable")]
    Unreachable(#[source] Arc<hyper_util::client::legacy::Error>),
    #[error("the MLflow tracking server closed the connection")]
    ConnectionClosed(#[source] Arc<hyper_util::client::legacy::Error>),
    /// The connection failed while mlgate read an answer it must look into (`what`).
    #[error("MLflow broke off {what}: {source}")]
    BrokeOff {
        what: &'static str,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A side lookup MLflow failed with `status`.
    #[error("MLflow failed to look up {what} ({status})")]
    LookupFailed { what: String, status: StatusCode },
    /// An answer mlgate cannot use: "MLflow's {answer} {flaw}".
    #[error("MLflow's {answer} {flaw}")]
    Unusable { answer: String, flaw: String },
}

impl UpstreamFailure {
    /// What failed, as the metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamFailure::Unreachable(_) => "unreachable",
            UpstreamFailure::ConnectionClosed(_) => "connection_closed",
            UpstreamFailure::BrokeOff { .. } => "broke_off",
            UpstreamFailure::LookupFailed { .. } => "lookup_failed",
            UpstreamFailure::Unusable { .. } => "unusable",
        }
    }

    pub fn unusable(answer: impl Into<String>, flaw: impl Into<String>) -> UpstreamFailure {
        UpstreamFailure::Unusable {
            answer: answer.into(),
            flaw: flaw.into(),
        }
    }
}

/// Which wait for MLflow ran out.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UpstreamDelay {
    /// No response head within the upstream timeout.
    #[error("MLflow did not answer within {} s", .timeout.as_secs_f64())]
    Answer { timeout: Duration },
    /// An answer mlgate reads whole (`what`) did not finish within the upstream timeout.
    #[error("MLflow did not finish {what} in time")]
    Body { what: &'static str },
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_)
            | GatewayError::Refused(_)
            | GatewayError::InvalidParams(_)
            | GatewayError::InvalidPath(_)
            | GatewayError::InvalidGraphQl(_)
            | GatewayError::AlreadyExists { .. } => StatusCode::BAD_REQUEST,
            GatewayError::Unauthenticated => StatusCode::UNAUTHORIZED,
            GatewayError::Authentication(failure) => failure.status(),
            GatewayError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound { .. } | GatewayError::UnknownRoute { .. } => {
                StatusCode::NOT_FOUND
            }
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ClientTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::StoreUnavailable(_)
            | GatewayError::Overloaded
            | GatewayError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// MLflow's `ErrorCode` name; each is one the MLflow client recognizes.
    pub fn error_code(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_)
            | GatewayError::InvalidParams(_)
            | GatewayError::InvalidPath(_)
            | GatewayError::InvalidGraphQl(_) => "INVALID_PARAMETER_VALUE",
            GatewayError::Unauthenticated => "UNAUTHENTICATED",
            GatewayError::Authentication(failure) => failure.error_code(),
            GatewayError::PermissionDenied(_) => "PERMISSION_DENIED",
            GatewayError::NotFound { .. } => "RESOURCE_DOES_NOT_EXIST",
            GatewayError::AlreadyExists { .. } => "RESOURCE_ALREADY_EXISTS",
            // The code MLflow's client expects to fall back to an older endpoint.
            GatewayError::UnknownRoute { .. } => "ENDPOINT_NOT_FOUND",
            GatewayError::PayloadTooLarge { .. } => "REQUEST_LIMIT_EXCEEDED",
            GatewayError::Refused(_) | GatewayError::ClientTimeout(_) => "BAD_REQUEST",
            GatewayError::UpstreamUnavailable(_)
            | GatewayError::StoreUnavailable(_)
            | GatewayError::Overloaded
            | GatewayError::AuditUnavailable => "TEMPORARILY_UNAVAILABLE",
            GatewayError::UpstreamTimeout(_) => "DEADLINE_EXCEEDED",
            GatewayError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The message sent to the client; internal details stay in the log.
    fn public_message(&self) -> String {
        match self {
            GatewayError::Internal(_) => "internal error in mlgate".to_owned(),
            other => other.to_string(),
        }
    }
}

/// The first error of type `T` in `error`'s source chain, `error` included (bodies and their
/// errors get wrapped on their way through axum and hyper).
pub fn find_in_chain<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

/// Why authentication failed. Every field is safe to log, audit and show to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFailureKind {
    /// A credential that cannot be read (bad base64, no `:` in Basic, unknown scheme, repeated
    /// `Authorization` header). 400.
    Malformed,
    /// More than one credential on the request. 400.
    Conflicting,
    /// Wrong password, unknown user or token, revoked token, signed-out session, disabled user. 401.
    Invalid,
    /// An expired token or session. 401.
    Expired,
    /// A credential kind this deployment does not accept (yet): JWT, SigV4. 401.
    Unsupported,
    /// A cookie-authenticated state change from another site (CSRF). 403.
    CrossSite,
    /// An AWS SigV4 request that failed verification (bad or expired signature, unknown or
    /// inactive key, body hash mismatch, ...). 403, as AWS answers.
    SignatureRejected,
    /// Too many failed password attempts for this user or address. 429.
    RateLimited,
    /// The store could not be read, or password checks are saturated. 503.
    Unavailable,
}

/// An authentication failure: what kind, for which credential, and a reason in words that never
/// contain a secret. The pipeline renders it in MLflow's error shape with [`Self::status`] and
/// [`Self::error_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// The credential that failed, when one was identified.
    pub method: Option<AuthMethod>,
    pub kind: AuthFailureKind,
    /// Safe reason: never echoes a secret.
    pub reason: String,
}

impl AuthFailure {
    pub fn new(
        method: Option<AuthMethod>,
        kind: AuthFailureKind,
        reason: impl Into<String>,
    ) -> Self {
        AuthFailure {
            method,
            kind,
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            AuthFailureKind::Malformed | AuthFailureKind::Conflicting => StatusCode::BAD_REQUEST,
            AuthFailureKind::Invalid | AuthFailureKind::Expired | AuthFailureKind::Unsupported => {
                StatusCode::UNAUTHORIZED
            }
            AuthFailureKind::CrossSite | AuthFailureKind::SignatureRejected => {
                StatusCode::FORBIDDEN
            }
            AuthFailureKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AuthFailureKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The MLflow `error_code` for this failure.
    pub fn error_code(&self) -> &'static str {
        match self.kind {
            AuthFailureKind::Malformed | AuthFailureKind::Conflicting => "INVALID_PARAMETER_VALUE",
            AuthFailureKind::Invalid | AuthFailureKind::Expired | AuthFailureKind::Unsupported => {
                "UNAUTHENTICATED"
            }
            AuthFailureKind::CrossSite | AuthFailureKind::SignatureRejected => "PERMISSION_DENIED",
            AuthFailureKind::RateLimited => "REQUEST_LIMIT_EXCEEDED",
            AuthFailureKind::Unavailable => "TEMPORARILY_UNAVAILABLE",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for AuthFailure {}

/// A request that needs mlgate's store (policies, creators) while it cannot be read: logged,
/// and answered 503 so the client retries; never decided without it.
impl From<StoreError> for GatewayError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "the store cannot be read");
        GatewayError::StoreUnavailable(error)
    }
}

/// An unknown root field is denied like an unreadable resource; any other flaw is a bad request.
impl From<GraphQlError> for GatewayError {
    fn from(error: GraphQlError) -> Self {
        match error {
            GraphQlError::UnknownField(_) => {
                GatewayError::PermissionDenied(Denial::UnknownGraphQlField(error))
            }
            other => GatewayError::InvalidGraphQl(other),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        if let GatewayError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = serde_json::json!({
            "error_code": self.error_code(),
            "message": self.public_message(),
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mlgate\""),
            );
        }
        response
    }
}

/// `error` and its sources on one line, `outer: inner: innermost`, for the operator. A source
/// whose text the line already ends with is not repeated (some errors, like
/// [`StoreError::Io`], show their source themselves).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the store")]
    struct OpenFailed(#[source] StoreError);

    #[test]
    fn an_error_chain_names_every_cause_once() {
        let io = StoreError::Io {
            path: "/data/mlgate.db".into(),
            source: Arc::new(std::io::Error::other("disk full")),
        };
        assert_eq!(
            error_chain(&OpenFailed(io)),
            "cannot open the store: /data/mlgate.db: disk full"
        );
        assert_eq!(error_chain(&StoreError::Invalid("bad".into())), "bad");
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn mlflow_shape_status_and_message() {
        let cases = [
            (
                GatewayError::BadRequest("x".into()),
                400,
                "INVALID_PARAMETER_VALUE",
                "x".to_owned(),
            ),
            (
                GatewayError::Refused("x".into()),
                400,
                "BAD_REQUEST",
                "x".to_owned(),
            ),
            (
                GatewayError::PermissionDenied(Denial::ByPolicy {
                    principal: "arn:aws:iam::000000000000:user/alice".into(),
                    action: "mlflow:CreateRun".into(),
                    resource: "arn:aws:mlflow:::experiment/1".into(),
                    explicit: true,
                }),
                403,
                "PERMISSION_DENIED",
                "arn:aws:iam::000000000000:user/alice is not authorized to perform mlflow:CreateRun on resource arn:aws:mlflow:::experiment/1 with an explicit deny in a policy".to_owned(),
            ),
            (
                GatewayError::NotFound {
                    what: "experiment '7'".into(),
                },
                404,
                "RESOURCE_DOES_NOT_EXIST",
                "experiment '7' does not exist".to_owned(),
            ),
            (
                GatewayError::UnknownRoute {
                    method: Method::PATCH,
                    path: "/api/2.0/mlflow/nothing".into(),
                },
                404,
                "ENDPOINT_NOT_FOUND",
                "mlgate knows no MLflow endpoint PATCH /api/2.0/mlflow/nothing".to_owned(),
            ),
            (
                GatewayError::AlreadyExists {
                    what: "user 'alice'".into(),
                },
                400,
                "RESOURCE_ALREADY_EXISTS",
                "user 'alice' already exists".to_owned(),
            ),
            (
                GatewayError::PayloadTooLarge { limit: 1024 },
                413,
                "REQUEST_LIMIT_EXCEEDED",
                "the request body is larger than the 1024 byte limit for requests mlgate must read"
                    .to_owned(),
            ),
            (
                GatewayError::ClientTimeout(ClientStall::Idle {
                    idle: Duration::from_millis(1500),
                }),
                408,
                "BAD_REQUEST",
                "the client sent no request body data for 1.5 s".to_owned(),
            ),
            (
                GatewayError::UpstreamUnavailable(UpstreamFailure::LookupFailed {
                    what: "run 'r1'".into(),
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                }),
                502,
                "TEMPORARILY_UNAVAILABLE",
                "MLflow failed to look up run 'r1' (500 Internal Server Error)".to_owned(),
            ),
            (
                GatewayError::UpstreamUnavailable(UpstreamFailure::unusable(
                    "search answer",
                    "is not JSON",
                )),
                502,
                "TEMPORARILY_UNAVAILABLE",
                "MLflow's search answer is not JSON".to_owned(),
            ),
            (
                GatewayError::UpstreamTimeout(UpstreamDelay::Answer {
                    timeout: Duration::from_secs(30),
                }),
                504,
                "DEADLINE_EXCEEDED",
                "MLflow did not answer within 30 s".to_owned(),
            ),
            (
                GatewayError::Overloaded,
                503,
                "TEMPORARILY_UNAVAILABLE",
                "mlgate is reading too many large request bodies at once; try again shortly"
                    .to_owned(),
            ),
        ];
        for (error, status, code, message) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let json = body_json(response).await;
            assert_eq!(json["error_code"], code);
            assert_eq!(json["message"], message);
        }
    }

    #[tokio::test]
    async fn a_store_error_is_a_503_that_keeps_the_cause_out_of_the_answer() {
        let error = GatewayError::from(StoreError::Invalid("secret detail".into()));
        assert!(matches!(error, GatewayError::StoreUnavailable(_)));
        let source = std::error::Error::source(&error).expect("the store error is the source");
        assert_eq!(source.to_string(), "secret detail");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let json = body_json(response).await;
        assert_eq!(json["error_code"], "TEMPORARILY_UNAVAILABLE");
        assert_eq!(
            json["message"],
            "the policy store is unavailable; try again"
        );
    }

    #[test]
    fn an_unknown_graphql_field_is_denied_and_a_bad_document_is_a_bad_request() {
        let unknown = GatewayError::from(GraphQlError::UnknownField("secrets".into()));
        assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
        let bad = GatewayError::from(GraphQlError::BadBody);
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(bad.error_code(), "INVALID_PARAMETER_VALUE");
    }

    #[test]
    fn a_graphql_field_denial_names_the_field() {
        let error = GatewayError::PermissionDenied(Denial::GraphQlField {
            key: "mv".into(),
            name: "mlflowSearchModelVersions",
            denial: Box::new(Denial::ByPolicy {
                principal: "p".into(),
                action: "a".into(),
                resource: "r".into(),
                explicit: false,
            }),
        });
        assert_eq!(
            error.to_string(),
            "GraphQL field 'mv' (mlflowSearchModelVersions): p is not authorized to perform a on resource r because no policy allows it"
        );
    }

    #[test]
    fn find_in_chain_walks_the_sources() {
        let error = GatewayError::from(StoreError::Invalid("x".into()));
        assert!(find_in_chain::<StoreError>(&error).is_some());
        assert!(find_in_chain::<GatewayError>(&error).is_some());
        assert!(find_in_chain::<AuthFailure>(&error).is_none());
    }

    #[tokio::test]
    async fn unauthenticated_carries_a_basic_challenge() {
        let error = GatewayError::Unauthenticated;
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"mlgate\""
        );
        assert_eq!(body_json(response).await["error_code"], "UNAUTHENTICATED");
    }

    #[tokio::test]
    async fn internal_details_stay_private() {
        let response = GatewayError::Internal("db password=hunter2".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let json = body_json(response).await;
        assert_eq!(json["message"], "internal error in mlgate");
    }
}
