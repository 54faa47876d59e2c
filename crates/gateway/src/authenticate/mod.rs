//! Stage 3, authenticate: find exactly one credential on the request and turn it into a
//! [`Principal`].
//!
//! Credentials, one submodule each:
//!
//! | credential | where | module |
//! |---|---|---|
//! | HTTP Basic, built-in user (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`) | `Authorization: Basic` | [`basic`] |
//! | mlgate API token (`MLFLOW_TRACKING_TOKEN`) | `Authorization: Bearer mlg_…` | [`token`] |
//! | browser session | cookie `mlgate_session` (`__Host-mlgate_session` under TLS) | [`session`] |
//! | bearer JWT from a configured OIDC issuer | `Authorization: Bearer <a>.<b>.<c>` | [`jwt`] |
//! | AWS SigV4 (access keys, STS temporary credentials) | `Authorization: AWS4-HMAC-SHA256 …` or `X-Amz-*` query | [`sigv4`] (needs the body: [`Authenticator::authenticate_with_body`]) |
//!
//! Rules:
//! * No credential at all is `Ok(None)`: the pipeline decides (redirect a browser to the sign-in
//!   page, 401 for an API client, or a public route).
//! * Two credentials on one request (e.g. Basic and a session cookie, or two `Authorization`
//!   headers) are refused with a 400 ([`AuthFailureKind::Conflicting`]): mlgate never picks one.
//! * A session cookie on an unsafe method (not GET/HEAD/OPTIONS) must come from the same origin:
//!   `Sec-Fetch-Site: same-origin` (or `none`), or else an `Origin` equal in scheme, host and port
//!   to the origin mlgate is served at ([`Authenticator::served_origin`]). Otherwise the request is refused ([`AuthFailureKind::CrossSite`], 403). Header and
//!   token credentials are not sent by browsers on their own, so they need no such check.
//! * No failure reason ever contains a secret (password, token, cookie value, signature).

pub mod basic;
pub mod jwt;
pub mod password;
pub mod session;
pub mod sigv4;
pub mod token;

use std::fmt;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderMap, Method, header};

use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal};
use crate::listen::Peer;
use crate::store::{SessionLimits, Store, StoreError, TOUCH_INTERVAL};

pub use password::{PasswordFailure, PasswordSettings, PasswordVerifier};

/// Authentication settings. All durations have safe defaults; see `docs/administration.md`.
#[derive(Clone, Debug, Default)]
pub struct AuthSettings {
    /// Browser sessions: absolute lifetime (default 12 h) and idle timeout (default 1 h).
    pub session: SessionLimits,
    /// Password verification: result caching, rate limits, concurrency.
    pub password: PasswordSettings,
    /// Embedding (off by default): session cookies `SameSite=None; Secure` so the UI works in a
    /// cross-site iframe. See [`crate::portal::embed`].
    pub cross_site_cookies: bool,
    /// Embedding (empty by default): CSP `frame-ancestors` sources allowed to frame the UI.
    pub frame_ancestors: Vec<String>,
}

impl AuthFailure {
    /// The identity store could not be read: the detail goes to the log, the client gets a
    /// generic reason (a store error may name a user).
    fn store(method: AuthMethod, e: &StoreError) -> Self {
        tracing::error!(error = %e, method = method.as_str(), "identity store unavailable");
        AuthFailure::new(
            Some(method),
            AuthFailureKind::Unavailable,
            "the identity store is unavailable; try again",
        )
    }
}

/// One credential found on the request (its secret part stays a borrowed slice of the request).
#[derive(Clone, Copy)]
enum Credential<'a> {
    Basic(&'a str),
    Bearer(&'a str),
    Session(&'a str),
    Sigv4,
}

impl Credential<'_> {
    fn label(&self) -> &'static str {
        match self {
            Credential::Basic(_) => "HTTP Basic",
            Credential::Bearer(_) => "bearer token",
            Credential::Session(_) => "session cookie",
            Credential::Sigv4 => "AWS SigV4 signature",
        }
    }
}

/// A JWT is three base64url segments separated by dots (JWS compact serialization).
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn malformed(reason: &str) -> AuthFailure {
    AuthFailure::new(None, AuthFailureKind::Malformed, reason)
}

/// Finds every credential on the request. Fails on unreadable or repeated `Authorization`.
fn find_credentials(
    parts: &Parts,
    secure_transport: bool,
) -> Result<Vec<Credential<'_>>, AuthFailure> {
    let mut found = Vec::new();

    let mut auth_headers = parts.headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = auth_headers.next() {
        if auth_headers.next().is_some() {
            return Err(AuthFailure::new(
                None,
                AuthFailureKind::Conflicting,
                "more than one Authorization header; send exactly one credential",
            ));
        }
        let value = value
            .to_str()
            .map_err(|_| malformed("Authorization header is not visible ASCII"))?;
        // Never echo the header: a client that forgot the scheme would have its secret echoed.
        let (scheme, rest) = value.trim().split_once(' ').ok_or_else(|| {
            malformed("Authorization header must be '<scheme> <credentials>' (Basic or Bearer)")
        })?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            found.push(Credential::Basic(rest));
        } else if scheme.eq_ignore_ascii_case("bearer") {
            found.push(Credential::Bearer(rest));
        } else if scheme.eq_ignore_ascii_case("aws4-hmac-sha256") {
            found.push(Credential::Sigv4);
        } else {
            return Err(malformed(
                "unsupported Authorization scheme (use Basic or Bearer)",
            ));
        }
    }

    if let Some(q) = parts.uri.query()
        && q.split('&').any(|kv| {
            let k = kv.split_once('=').map_or(kv, |(k, _)| k);
            matches!(
                k,
                "X-Amz-Signature" | "X-Amz-Credential" | "X-Amz-Algorithm"
            )
        })
    {
        found.push(Credential::Sigv4);
    }

    let cookies = session::find_cookies(&parts.headers, session::cookie_name(secure_transport));
    match cookies.as_slice() {
        [] => {}
        [one] => found.push(Credential::Session(one)),
        _ => {
            return Err(AuthFailure::new(
                Some(AuthMethod::Session),
                AuthFailureKind::Conflicting,
                "more than one session cookie; sign in again",
            ));
        }
    }
    Ok(found)
}

/// The authenticate stage. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    settings: AuthSettings,
    passwords: PasswordVerifier,
    touched: moka::sync::Cache<String, ()>,
    /// Configured OIDC issuers (bearer JWTs and browser sign-in), if any.
    oidc: Option<std::sync::Arc<jwt::Oidc>>,
    /// The SigV4 verifier (access keys and STS credentials), if enabled.
    sigv4: Option<std::sync::Arc<sigv4::SigV4Auth>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(store: Store, settings: AuthSettings) -> Authenticator {
        let passwords = PasswordVerifier::new(settings.password.clone());
        Authenticator {
            store,
            settings,
            passwords,
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TOUCH_INTERVAL)
                .build(),
            oidc: None,
            sigv4: None,
        }
    }

    /// Accepts AWS SigV4 requests, verified by `sigv4` (without it they are refused).
    pub fn with_sigv4(mut self, sigv4: std::sync::Arc<sigv4::SigV4Auth>) -> Authenticator {
        self.sigv4 = Some(sigv4);
        self
    }

    /// The SigV4 verifier, if SigV4 is enabled (the STS endpoint uses it).
    pub fn sigv4(&self) -> Option<&std::sync::Arc<sigv4::SigV4Auth>> {
        self.sigv4.as_ref()
    }

    /// Like [`Self::authenticate`], for the pipeline: a SigV4 signature covers the body, so the
    /// body goes through here and comes back either checked and buffered (up to
    /// `limits.max_bytes`) or wrapped so that it is checked while it streams to MLflow. Other
    /// credentials leave the body untouched.
    pub async fn authenticate_with_body(
        &self,
        parts: &Parts,
        body: axum::body::Body,
        secure_transport: bool,
        limits: crate::normalize::BodyLimits,
    ) -> Result<(Option<Principal>, axum::body::Body), AuthFailure> {
        let creds = find_credentials(parts, secure_transport)?;
        if let [Credential::Sigv4] = creds.as_slice() {
            let verified = self.verify_sigv4(parts, body, limits).await?;
            return Ok((Some(verified.principal), verified.body));
        }
        let principal = self
            .authenticate_found(parts, &creds, secure_transport)
            .await?;
        Ok((principal, body))
    }

    async fn verify_sigv4(
        &self,
        parts: &Parts,
        body: axum::body::Body,
        limits: crate::normalize::BodyLimits,
    ) -> Result<sigv4::Verified, AuthFailure> {
        let Some(verifier) = &self.sigv4 else {
            return Err(AuthFailure::new(
                Some(AuthMethod::Sigv4),
                AuthFailureKind::Unsupported,
                "AWS SigV4 requests are not accepted by this deployment",
            ));
        };
        verifier
            .verify(sigv4::Endpoint::Api, parts, body, limits)
            .await
            .map_err(sigv4::Rejection::into_failure)
    }

    /// Accepts bearer JWTs (and offers browser sign-in) from these OIDC issuers.
    pub fn with_oidc(mut self, oidc: std::sync::Arc<jwt::Oidc>) -> Authenticator {
        self.oidc = Some(oidc);
        self
    }

    /// The configured OIDC issuers, if any.
    pub fn oidc(&self) -> Option<&std::sync::Arc<jwt::Oidc>> {
        self.oidc.as_ref()
    }

    /// The origin browsers reach mlgate at: the configured OIDC `public_url`'s, else the
    /// connection's scheme and the request's `Host` (the CSRF rule compares `Origin` with it).
    pub fn served_origin(
        &self,
        parts: &Parts,
        secure_transport: bool,
    ) -> Option<session::WebOrigin> {
        let public_url = self
            .oidc
            .as_ref()
            .and_then(|o| o.config.public_url.as_deref());
        session::WebOrigin::served(parts, secure_transport, public_url)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The password checker shared by HTTP Basic and the sign-in page.
    pub fn passwords(&self) -> &PasswordVerifier {
        &self.passwords
    }

    /// Authenticates a request. `Ok(None)`: the request carries no credential at all.
    /// `secure_transport`: the client connection is TLS (selects the `__Host-` cookie name).
    pub async fn authenticate(
        &self,
        parts: &Parts,
        secure_transport: bool,
    ) -> Result<Option<Principal>, AuthFailure> {
        let creds = find_credentials(parts, secure_transport)?;
        self.authenticate_found(parts, &creds, secure_transport)
            .await
    }

    /// Authenticates the credentials [`find_credentials`] found on the request.
    async fn authenticate_found(
        &self,
        parts: &Parts,
        creds: &[Credential<'_>],
        secure_transport: bool,
    ) -> Result<Option<Principal>, AuthFailure> {
        let cred = match creds {
            [] => return Ok(None),
            [one] => *one,
            many => {
                let kinds: Vec<&str> = many.iter().map(Credential::label).collect();
                return Err(AuthFailure::new(
                    None,
                    AuthFailureKind::Conflicting,
                    format!(
                        "request carries more than one credential ({}); send exactly one",
                        kinds.join(", ")
                    ),
                ));
            }
        };
        let principal = match cred {
            Credential::Basic(payload) => {
                basic::authenticate(
                    self,
                    payload,
                    Peer::of(&parts.extensions).map(|peer| peer.ip),
                )
                .await?
            }
            Credential::Bearer(value) => {
                if value.starts_with(token::TOKEN_PREFIX) {
                    token::authenticate(self, value).await?
                } else if looks_like_jwt(value) || value.len() > jwt::MAX_TOKEN_BYTES {
                    let Some(oidc) = &self.oidc else {
                        return Err(AuthFailure::new(
                            Some(AuthMethod::Jwt),
                            AuthFailureKind::Unsupported,
                            "JWT bearer tokens are not accepted: no OIDC issuer is configured",
                        ));
                    };
                    oidc.verify_bearer(value).await?.principal
                } else {
                    return Err(AuthFailure::new(
                        Some(AuthMethod::Token),
                        AuthFailureKind::Invalid,
                        "bearer token is neither an mlgate API token nor a JWT",
                    ));
                }
            }
            Credential::Session(value) => {
                let served = self.served_origin(parts, secure_transport);
                session::check_same_origin(parts, served.as_ref())?;
                session::authenticate(self, value).await?
            }
            Credential::Sigv4 => {
                // Without the body: checked as an empty body, so a request that has one fails
                // (safely) unless it goes through `authenticate_with_body`.
                let limits = crate::normalize::BodyLimits {
                    max_bytes: 0,
                    timeout: Duration::from_secs(1),
                };
                self.verify_sigv4(parts, axum::body::Body::empty(), limits)
                    .await?
                    .principal
            }
        };
        Ok(Some(principal))
    }

    /// Runs `f` at most once per [`TOUCH_INTERVAL`] for `key` (write-backs of last-use times).
    fn throttled_touch<F>(&self, key: String, f: F)
    where
        F: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        if self.touched.contains_key(&key) {
            return;
        }
        self.touched.insert(key, ());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = f.await {
                    tracing::warn!(error = %e, "could not record credential use");
                }
            });
        }
    }
}

/// Is this method one that never changes state (and so needs no CSRF check)?
pub fn is_safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request's authority (Host header, or the URI authority under HTTP/2).
pub fn request_host(parts: &Parts) -> Option<&str> {
    request_host_from(&parts.headers, &parts.uri)
}

fn request_host_from<'a>(headers: &'a HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

#[cfg(test)]
pub(crate) mod test_support {
    use http::Request;
    use http::request::Parts;

    pub fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::parts;
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
        assert!(!looks_like_jwt("mlg_abc_def"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a b.c.d"));
    }

    #[test]
    fn statuses() {
        let f = |k| AuthFailure::new(None, k, "x").status().as_u16();
        assert_eq!(f(AuthFailureKind::Malformed), 400);
        assert_eq!(f(AuthFailureKind::Conflicting), 400);
        assert_eq!(f(AuthFailureKind::Invalid), 401);
        assert_eq!(f(AuthFailureKind::Expired), 401);
        assert_eq!(f(AuthFailureKind::CrossSite), 403);
        assert_eq!(f(AuthFailureKind::RateLimited), 429);
    }

    #[test]
    fn credential_detection() {
        let p = parts(
            "GET",
            "/api/2.0/mlflow/experiments/get?experiment_id=1",
            &[],
        );
        assert!(find_credentials(&p, false).unwrap().is_empty());

        let p = parts("GET", "/x?X-Amz-Signature=abc&X-Amz-Credential=k", &[]);
        assert!(matches!(
            find_credentials(&p, false).unwrap()[..],
            [Credential::Sigv4]
        ));

        // Two Authorization headers: refused without looking at either.
        let p = parts(
            "GET",
            "/x",
            &[
                ("authorization", "Basic YTpi"),
                ("authorization", "Bearer mlg_x_y"),
            ],
        );
        let e = find_credentials(&p, false).err().unwrap();
        assert_eq!(e.kind, AuthFailureKind::Conflicting);

        // An unknown scheme is malformed and the value is not echoed.
        let p = parts("GET", "/x", &[("authorization", "Token s3cr3t-value")]);
        let e = find_credentials(&p, false).err().unwrap();
        assert_eq!(e.kind, AuthFailureKind::Malformed);
        assert!(!e.reason.contains("s3cr3t"));

        // A bare token without scheme: not echoed either.
        let p = parts("GET", "/x", &[("authorization", "mlg_0123_secretsecret")]);
        let e = find_credentials(&p, false).err().unwrap();
        assert!(!e.reason.contains("secretsecret"), "{}", e.reason);

        // The cookie name depends on the transport.
        let p = parts("GET", "/x", &[("cookie", "a=1; mlgate_session=abc; b=2")]);
        assert!(matches!(
            find_credentials(&p, false).unwrap()[..],
            [Credential::Session("abc")]
        ));
        assert!(find_credentials(&p, true).unwrap().is_empty());
        let p = parts("GET", "/x", &[("cookie", "__Host-mlgate_session=abc")]);
        assert!(matches!(
            find_credentials(&p, true).unwrap()[..],
            [Credential::Session("abc")]
        ));

        let p = parts(
            "GET",
            "/x",
            &[
                ("cookie", "mlgate_session=a"),
                ("cookie", "mlgate_session=b"),
            ],
        );
        assert_eq!(
            find_credentials(&p, false).err().unwrap().kind,
            AuthFailureKind::Conflicting
        );
    }
}

#[cfg(test)]
mod flow_tests;
