//! Every response mlgate makes up itself, in MLflow's JSON error shape so MLflow clients show it:
//! `{"error_code": "...", "message": "..."}`. Messages name what was refused, never a secret.

use std::fmt;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::identity::AuthMethod;
use crate::store::StoreError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum GatewayError {
    /// Malformed or ambiguous request (dual spellings, bad JSON, bad path encoding).
    #[error("{0}")]
    BadRequest(String),
    /// No credential on a request that needs one.
    #[error("{0}")]
    Unauthenticated(String),
    /// A credential that failed (wrong, expired, conflicting, cross-site, rate-limited).
    #[error("{0}")]
    Authentication(AuthFailure),
    #[error("{0}")]
    PermissionDenied(String),
    /// A resource named by the request does not exist (found out while resolving it).
    #[error("{0}")]
    NotFound(String),
    /// What the request would create exists already (basic-auth's users).
    #[error("{0}")]
    AlreadyExists(String),
    /// A method and path outside the route catalog (refused whatever the policies say).
    #[error("{0}")]
    UnknownRoute(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client stalled while sending its body.
    #[error("{0}")]
    ClientTimeout(String),
    /// MLflow could not be reached or broke the connection.
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// MLflow did not answer in time.
    #[error("{0}")]
    UpstreamTimeout(String),
    /// mlgate's own store cannot be read right now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected answer from a dependency; logged, answered without details.
    #[error("{0}")]
    Internal(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) | GatewayError::AlreadyExists(_) => StatusCode::BAD_REQUEST,
            GatewayError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Authentication(failure) => failure.status(),
            GatewayError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) | GatewayError::UnknownRoute(_) => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ClientTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// MLflow's `ErrorCode` name; each is one the MLflow client recognizes.
    pub fn error_code(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_) => "INVALID_PARAMETER_VALUE",
            GatewayError::Unauthenticated(_) => "UNAUTHENTICATED",
            GatewayError::Authentication(failure) => failure.error_code(),
            GatewayError::PermissionDenied(_) => "PERMISSION_DENIED",
            GatewayError::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
            GatewayError::AlreadyExists(_) => "RESOURCE_ALREADY_EXISTS",
            // The code MLflow's client expects to fall back to an older endpoint.
            GatewayError::UnknownRoute(_) => "ENDPOINT_NOT_FOUND",
            GatewayError::PayloadTooLarge(_) => "REQUEST_LIMIT_EXCEEDED",
            GatewayError::ClientTimeout(_) => "BAD_REQUEST",
            GatewayError::UpstreamUnavailable(_) | GatewayError::Unavailable(_) => {
                "TEMPORARILY_UNAVAILABLE"
            }
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
        GatewayError::Unavailable("the policy store is unavailable; try again".into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

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
    async fn mlflow_shape_and_status() {
        let cases = [
            (
                GatewayError::BadRequest("x".into()),
                400,
                "INVALID_PARAMETER_VALUE",
            ),
            (
                GatewayError::PermissionDenied("x".into()),
                403,
                "PERMISSION_DENIED",
            ),
            (
                GatewayError::NotFound("x".into()),
                404,
                "RESOURCE_DOES_NOT_EXIST",
            ),
            (
                GatewayError::AlreadyExists("x".into()),
                400,
                "RESOURCE_ALREADY_EXISTS",
            ),
            (
                GatewayError::PayloadTooLarge("x".into()),
                413,
                "REQUEST_LIMIT_EXCEEDED",
            ),
            (
                GatewayError::UpstreamUnavailable("x".into()),
                502,
                "TEMPORARILY_UNAVAILABLE",
            ),
            (
                GatewayError::UpstreamTimeout("x".into()),
                504,
                "DEADLINE_EXCEEDED",
            ),
        ];
        for (error, status, code) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let json = body_json(response).await;
            assert_eq!(json["error_code"], code);
            assert_eq!(json["message"], "x");
        }
    }

    #[tokio::test]
    async fn unauthenticated_carries_a_basic_challenge() {
        let error = GatewayError::Unauthenticated("no".into());
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
