//! The portal: mlgate's own pages under [`crate::RESERVED_PREFIX`] (`/_mlgate`), a prefix no
//! MLflow route uses.
//!
//! | route | what |
//! |---|---|
//! | `GET /_mlgate/login?next=/path` | the sign-in form (or "signed in as …" with a sign-out button) |
//! | `POST /_mlgate/login` | form `username`, `password`, `next`: checks the password like HTTP Basic, creates a session, sets the cookie, `303` to `next` |
//! | `GET /_mlgate/logout` | a confirmation page with a sign-out button |
//! | `POST /_mlgate/logout` | deletes the server-side session, clears the cookie, `303` to the sign-in page |
//! | `GET /_mlgate/whoami` | JSON of the current principal (any credential), or 401 in MLflow's error shape |
//! | `GET /_mlgate/oidc/<provider>/login`, `…/callback` | OIDC browser sign-in ([`oidc`], `docs/oidc.md`) |
//!
//! The router's routes carry the full paths: hand it requests with their original URI (e.g.
//! `Router::merge` or calling it as a service for paths under the prefix), not `nest`.
//!
//! Security: `next` only accepts same-site relative paths ([`safe_next`]), so the sign-in page
//! cannot be used as an open redirect. The sign-in and sign-out forms are POSTs that must pass the
//! same-origin check of [`crate::authenticate::session::check_same_origin`] (plus `SameSite=Lax`).
//! A new session id is minted at every sign-in (no fixation) and the previous one is deleted.
//! Failed sign-ins share HTTP Basic's rate limits per user and per client address. Every page is
//! `no-store`, framing is forbidden, and the CSP allows no script at all.
//!
//! Each response carries a [`PortalOutcome`] extension telling the pipeline's audit stage who
//! signed in or why it failed.

pub mod embed;
mod html;
pub mod oidc;
pub mod sts;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::request::Parts;
use serde::Deserialize;

use crate::RESERVED_PREFIX;
use crate::audit::AuditDecision;
use crate::authenticate::Authenticator;
use crate::authenticate::session::{self, clear_cookie, set_cookie};
use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal};
use crate::listen::Peer;

pub use html::escape as escape_html;

/// What the portal needs.
#[derive(Clone, Debug)]
pub struct PortalState {
    pub auth: Authenticator,
}

impl PortalState {
    pub fn new(auth: Authenticator) -> PortalState {
        PortalState { auth }
    }
}

/// Whether the browser reached mlgate over HTTPS, itself or through a trusted proxy: the
/// listener's answer ([`Peer::secure`]), the one `aws:SecureTransport` reads too. Selects the
/// `__Host-` + `Secure` cookies and the scheme of the served origin.
pub(crate) fn secure_transport(parts: &Parts) -> bool {
    Peer::of(&parts.extensions).is_some_and(|peer| peer.secure)
}

/// Attached to every portal response (as a response extension) for the audit record.
#[derive(Clone, Debug, PartialEq)]
pub struct PortalOutcome {
    pub principal: Option<String>,
    pub auth_method: Option<AuthMethod>,
    pub decision: AuditDecision,
    /// Safe words: never a secret.
    pub reason: Option<String>,
}

impl PortalOutcome {
    fn public() -> Self {
        PortalOutcome {
            principal: None,
            auth_method: None,
            decision: AuditDecision::Public,
            reason: None,
        }
    }
    fn signed_in(p: &Principal, what: &str) -> Self {
        PortalOutcome {
            principal: Some(p.arn.clone()),
            auth_method: Some(p.auth_method),
            decision: AuditDecision::Public,
            reason: Some(what.to_owned()),
        }
    }
    fn failed(f: &AuthFailure) -> Self {
        PortalOutcome {
            principal: None,
            auth_method: f.method,
            decision: if f.kind == AuthFailureKind::Malformed
                || f.kind == AuthFailureKind::CrossSite
            {
                AuditDecision::Rejected
            } else {
                AuditDecision::Unauthenticated
            },
            reason: Some(f.reason.clone()),
        }
    }
}

pub fn login_path() -> String {
    format!("{RESERVED_PREFIX}/login")
}

pub fn logout_path() -> String {
    format!("{RESERVED_PREFIX}/logout")
}

/// The sign-in URL that returns to `next` (a path and query of this site) afterwards; for the
/// pipeline's redirect of unauthenticated browsers. An unsafe `next` is replaced by `/`.
pub fn login_url(next: &str) -> String {
    let next = safe_next(Some(next));
    if next == "/" {
        return login_path();
    }
    let mut enc = String::with_capacity(next.len() + 16);
    for b in next.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}?next={enc}", login_path())
}

/// Where to go after signing in: `next` if it is a same-site relative path (`/…`, not `//…`, no
/// backslash, no control characters or spaces, at most 2 KiB), otherwise `/`. This is what keeps
/// the sign-in page from being an open redirect (`//evil.example`, `/\evil.example`,
/// `https://evil.example`, `javascript:…` all become `/`).
pub fn safe_next(next: Option<&str>) -> &str {
    let Some(n) = next else { return "/" };
    let b = n.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 2048
        && b[0] == b'/'
        && b.get(1).is_none_or(|&c| c != b'/' && c != b'\\')
        && b.iter().all(|&c| (0x21..=0x7e).contains(&c) && c != b'\\');
    if ok { n } else { "/" }
}

/// The portal's routes (full paths under `/_mlgate`).
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route(&login_path(), get(get_login).post(post_login))
        .route(&logout_path(), get(get_logout).post(post_logout))
        .route(&format!("{RESERVED_PREFIX}/whoami"), get(whoami))
        .merge(oidc::routes())
        .merge(sts::routes())
        .fallback(not_found)
        .with_state(state)
}

fn html_response(status: StatusCode, body: String, outcome: PortalOutcome) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r.extensions_mut().insert(outcome);
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

fn redirect(to: &str, cookie: Option<HeaderValue>, outcome: PortalOutcome) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/")),
    );
    if let Some(c) = cookie {
        h.insert(header::SET_COOKIE, c);
    }
    secure_headers(h);
    r.extensions_mut().insert(outcome);
    r
}

fn json_response(status: StatusCode, body: serde_json::Value, outcome: PortalOutcome) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.extensions_mut().insert(outcome);
    r
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn get_login(
    State(s): State<PortalState>,
    parts: Parts,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref()).to_owned();
    // Already signed in with a valid session? Offer to continue or sign out.
    if let Ok(Some(p)) = s.auth.authenticate(&parts, secure_transport(&parts)).await
        && p.auth_method == AuthMethod::Session
    {
        let who = format!("{} ({})", p.name, p.arn);
        return html_response(
            StatusCode::OK,
            html::signed_in_page(&who, &next, &logout_path()),
            PortalOutcome::signed_in(&p, "already signed in"),
        );
    }
    html_response(
        StatusCode::OK,
        oidc::login_page(&s, &next, "", None),
        PortalOutcome::public(),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn post_login(
    State(s): State<PortalState>,
    parts: Parts,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if !oidc::builtin_login_enabled(&s) {
        return not_found().await;
    }
    let served = s.auth.served_origin(&parts, secure_transport(&parts));
    if let Err(f) = session::same_origin_unsafe(&parts, served.as_ref()) {
        return html_response(
            StatusCode::FORBIDDEN,
            html::error_page(
                "Request refused",
                "This sign-in form was not submitted from this site.",
                &login_path(),
            ),
            PortalOutcome::failed(&f),
        );
    }
    let Ok(Form(form)) = form else {
        let f = AuthFailure::new(
            Some(AuthMethod::Session),
            AuthFailureKind::Malformed,
            "sign-in form could not be read",
        );
        return html_response(
            StatusCode::BAD_REQUEST,
            oidc::login_page(&s, "/", "", Some("The form could not be read.")),
            PortalOutcome::failed(&f),
        );
    };
    let next = safe_next(form.next.as_deref()).to_owned();
    let username = form.username.trim();
    if username.is_empty() || form.password.is_empty() {
        return html_response(
            StatusCode::UNAUTHORIZED,
            oidc::login_page(
                &s,
                &next,
                username,
                Some("Enter your user name and password."),
            ),
            PortalOutcome::failed(&AuthFailure::new(
                Some(AuthMethod::Session),
                AuthFailureKind::Invalid,
                "empty user name or password",
            )),
        );
    }

    match s
        .auth
        .login(
            username,
            &form.password,
            Peer::of(&parts.extensions).map(|peer| peer.ip),
        )
        .await
    {
        Ok((principal, sid)) => {
            // Replace any previous session of this browser (no fixation, no orphan).
            for old in session::find_cookies(
                &parts.headers,
                session::cookie_name(secure_transport(&parts)),
            ) {
                let _ = s.auth.logout(old).await;
            }
            let max_age = s.auth.settings().session.lifetime.as_secs();
            redirect(
                &next,
                Some(set_cookie(
                    &sid.cookie_value,
                    secure_transport(&parts),
                    max_age,
                )),
                PortalOutcome::signed_in(&principal, "signed in"),
            )
        }
        Err(f) => {
            let (status, message) = match f.kind {
                AuthFailureKind::RateLimited => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts. Wait a few minutes and try again.",
                ),
                AuthFailureKind::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is temporarily unavailable. Try again shortly.",
                ),
                _ => (StatusCode::UNAUTHORIZED, "Invalid user name or password."),
            };
            html_response(
                status,
                oidc::login_page(&s, &next, username, Some(message)),
                PortalOutcome::failed(&f),
            )
        }
    }
}

async fn get_logout() -> Response {
    html_response(
        StatusCode::OK,
        html::logout_page(&logout_path()),
        PortalOutcome::public(),
    )
}

async fn post_logout(State(s): State<PortalState>, parts: Parts) -> Response {
    let served = s.auth.served_origin(&parts, secure_transport(&parts));
    if let Err(f) = session::same_origin_unsafe(&parts, served.as_ref()) {
        return html_response(
            StatusCode::FORBIDDEN,
            html::error_page(
                "Request refused",
                "This sign-out form was not submitted from this site.",
                &login_path(),
            ),
            PortalOutcome::failed(&f),
        );
    }
    // A federated session also ends at its provider (asked before the session is deleted).
    let end_session = oidc::end_session_url(&s, &parts).await;
    let outcome = end_sessions(&s.auth, &parts).await;
    if let Some(end) = end_session {
        let mut r = html_response(StatusCode::OK, oidc::signed_out_page(&end), outcome);
        r.headers_mut()
            .insert(header::SET_COOKIE, clear_cookie(secure_transport(&parts)));
        return r;
    }
    redirect(
        &login_path(),
        Some(clear_cookie(secure_transport(&parts))),
        outcome,
    )
}

/// Deletes the sessions the request's cookies name; the outcome says whether there was one.
async fn end_sessions(auth: &Authenticator, parts: &Parts) -> PortalOutcome {
    let mut ended = false;
    for c in session::find_cookies(
        &parts.headers,
        session::cookie_name(secure_transport(parts)),
    ) {
        ended |= auth.logout(c).await.unwrap_or(false);
    }
    PortalOutcome {
        reason: Some(
            if ended {
                "signed out"
            } else {
                "no session to end"
            }
            .to_owned(),
        ),
        ..PortalOutcome::public()
    }
}

/// The user name MLflow's UI signs out with: its Logout sends `GET users/current` from an
/// `XMLHttpRequest` given the Basic credentials `mlflow-logged-out-<random>` (both parts), so
/// the browser forgets the real ones, then reloads the app.
const UI_SIGN_OUT_USER: &str = "mlflow-logged-out-";

/// Whether the request accepts HTML: a browser loading a page, not a script's call.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

/// The two requests of the MLflow UI's sign-out, as mlgate sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiSignOut {
    /// Chromium sends an `XMLHttpRequest`'s credentials only when challenged: its first request
    /// carries the session cookie alone, and is answered with a Basic challenge.
    Challenge,
    /// The request with the sign-out credentials: the session it carries ends.
    End,
}

/// Which step of the UI's sign-out a `GET users/current` is, if any. The first step is the
/// cookie-only request the UI's own calls never make: they all send `Content-Type` (MLflow's
/// fetch wrapper sets it on every call) or an `Authorization` header, and a page load accepts
/// HTML.
pub fn ui_sign_out_step(parts: &Parts) -> Option<UiSignOut> {
    let headers = &parts.headers;
    match headers.get(header::AUTHORIZATION) {
        Some(authorization) => authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|payload| crate::authenticate::basic::decode(payload).ok())
            .is_some_and(|(user, _)| user.starts_with(UI_SIGN_OUT_USER))
            .then_some(UiSignOut::End),
        None => {
            let has_session =
                !session::find_cookies(headers, session::cookie_name(secure_transport(parts)))
                    .is_empty();
            (has_session && !accepts_html(headers) && !headers.contains_key(header::CONTENT_TYPE))
                .then_some(UiSignOut::Challenge)
        }
    }
}

/// The UI's sign-out ends mlgate's browser session too, so the reload that follows goes to the
/// sign-in page: 401 in MLflow's error shape, the cookie cleared, and no challenge (the browser
/// must not prompt). The worst a forged request can do is sign its sender out: the cookie is
/// `SameSite=Lax`, so another site's script cannot send it.
pub async fn end_ui_session(auth: &Authenticator, parts: &Parts) -> Response {
    let outcome = end_sessions(auth, parts).await;
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error_code": "UNAUTHENTICATED", "message": "Signed out." }),
        outcome,
    );
    r.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(secure_transport(parts)));
    r
}

async fn whoami(State(s): State<PortalState>, parts: Parts) -> Response {
    match s.auth.authenticate(&parts, secure_transport(&parts)).await {
        Ok(Some(p)) => {
            let body = serde_json::to_value(&p).unwrap_or_default();
            json_response(StatusCode::OK, body, PortalOutcome::signed_in(&p, "whoami"))
        }
        Ok(None) => json_response(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({
                "error_code": "UNAUTHENTICATED",
                "message": "no credential: sign in at /_mlgate/login, or send HTTP Basic or a bearer token",
            }),
            PortalOutcome {
                decision: AuditDecision::Unauthenticated,
                reason: Some("no credential".into()),
                ..PortalOutcome::public()
            },
        ),
        Err(f) => json_response(
            f.status(),
            serde_json::json!({ "error_code": f.error_code(), "message": f.reason }),
            PortalOutcome::failed(&f),
        ),
    }
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        serde_json::json!({
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": "no such mlgate page",
        }),
        PortalOutcome::public(),
    )
}

#[cfg(test)]
mod tests;
