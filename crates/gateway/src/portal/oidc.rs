//! Browser single sign-on through the configured OpenID providers: the authorization code flow
//! with PKCE (S256), `state` and `nonce`, hand-written on top of the JWT verifier that also
//! checks bearer tokens ([`crate::authenticate::jwt`]), so an ID token is checked exactly like a
//! bearer token (issuer, key from the JWK, algorithm allow-list, audience, expiry) plus `nonce`.
//!
//! | route | what |
//! |---|---|
//! | `GET /_mlgate/oidc/<provider>/login?next=/path` | starts the flow: pre-login state, `303` to the provider |
//! | `GET /_mlgate/oidc/<provider>/callback?code&state` | code → tokens → session cookie, `303` to `next` |
//!
//! * Pre-login state (state, nonce, PKCE verifier, `next`) is kept server-side for 10 minutes,
//!   single use, found through the `mlgate_oidc` cookie (`__Host-mlgate_oidc` under TLS;
//!   `HttpOnly; SameSite=Lax`, so it comes back on the provider's top-level redirect).
//! * The `state` in the callback must equal the stored one (constant time): a callback the
//!   browser did not start is refused. The ID token's `nonce` must equal the stored one.
//! * The HTTP client never follows redirects (SSRF) and provider URLs must be https (http only
//!   for loopback).
//! * A user whose group claim maps to no mlgate group gets a clear 403 page and no session.
//! * Sign-out ends the mlgate session and then sends the browser to the provider's
//!   `end_session_endpoint` (when it has one) with `client_id` and `post_logout_redirect_uri`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use serde::Deserialize;
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::{
    PortalOutcome, PortalState, html, html_response, login_path, redirect, safe_next,
    secure_transport,
};
use crate::RESERVED_PREFIX;
use crate::audit::AuditDecision;
use crate::authenticate::jwt::session as fed;
use crate::authenticate::jwt::{Issuer, Oidc, ProviderMetadata};
use crate::authenticate::request_host;
use crate::authenticate::session::{self, set_cookie};
use crate::error::{AuthFailure, AuthFailureKind, error_chain};
use crate::identity::AuthMethod;
use crate::store::{LOGIN_TTL_SECS, LoginState};

const LOGIN_COOKIE: &str = "mlgate_oidc";
const SECURE_LOGIN_COOKIE: &str = "__Host-mlgate_oidc";

fn login_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_LOGIN_COOKIE
    } else {
        LOGIN_COOKIE
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS random number generator");
    URL_SAFE_NO_PAD.encode(buf)
}

/// The OIDC routes, merged into the portal router.
pub fn routes() -> Router<PortalState> {
    Router::new()
        .route(
            &format!("{RESERVED_PREFIX}/oidc/{{provider}}/login"),
            get(start),
        )
        .route(
            &format!("{RESERVED_PREFIX}/oidc/{{provider}}/callback"),
            get(callback),
        )
}

const SSO_STYLE: &str = "<style>a.sso { display: block; margin-top: 10px; padding: 10px; \
    text-align: center; font-weight: 600; text-decoration: none; color: #0b6bcb; \
    border: 1px solid #0b6bcb; border-radius: 6px; } a.sso:hover { background: rgba(11,107,203,.08); } \
    p.or { text-align: center; margin: 14px 0 0; }</style>";

/// Is the built-in user name / password form offered?
pub fn builtin_login_enabled(s: &PortalState) -> bool {
    s.auth.oidc().is_none_or(|o| o.config.builtin_login)
}

fn login_providers(oidc: &Oidc) -> impl Iterator<Item = &Issuer> {
    oidc.issuers().iter().filter(|i| i.config.login.is_some())
}

/// The sign-in page: the built-in form (if enabled) and one button per provider.
pub fn login_page(s: &PortalState, next: &str, username: &str, error: Option<&str>) -> String {
    let builtin = builtin_login_enabled(s);
    let buttons = match s.auth.oidc() {
        Some(oidc) => {
            let mut b = String::new();
            for i in login_providers(oidc) {
                let label = i
                    .config
                    .login
                    .as_ref()
                    .map_or(i.config.name.as_str(), |l| l.display_name.as_str());
                b.push_str(&format!(
                    "<p><a class=\"sso\" id=\"sso-{name}\" href=\"{href}\">Sign in with {label}</a></p>",
                    name = html::escape(&i.config.name),
                    href = html::escape(&format!(
                        "{RESERVED_PREFIX}/oidc/{}/login?next={}",
                        i.config.name,
                        query_escape(next)
                    )),
                    label = html::escape(label),
                ));
            }
            if !b.is_empty() {
                b.insert_str(0, SSO_STYLE);
            }
            b
        }
        None => String::new(),
    };
    if builtin {
        let page = html::login_page(&login_path(), next, username, error);
        if buttons.is_empty() {
            return page;
        }
        let block =
            format!("<div class=\"providers\"><p class=\"sub or\">or</p>{buttons}</div><footer>");
        return page.replacen("<footer>", &block, 1);
    }
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", html::escape(e)))
        .unwrap_or_default();
    html::page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p class=\"sub\">to the MLflow tracking server</p>{error}{buttons}"
        ),
    )
}

/// Percent-encodes a query value.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `scheme://host` browsers use to reach mlgate, or the page saying the request has none.
fn base_url(parts: &Parts, oidc: &Oidc) -> Result<String, Box<Response>> {
    if let Some(u) = &oidc.config.public_url {
        return Ok(u.clone());
    }
    match request_host(parts) {
        Some(host) if !host.is_empty() && !host.contains(['/', '\\', '@', ' ']) => {
            let scheme = if secure_transport(parts) {
                "https"
            } else {
                "http"
            };
            Ok(format!("{scheme}://{host}"))
        }
        _ => Err(Box::new(failure_page(
            StatusCode::BAD_REQUEST,
            "Sign-in unavailable",
            "The request has no usable Host.",
            "no Host for redirect_uri",
        ))),
    }
}

/// The provider's discovery document, or the page saying it cannot be reached.
async fn provider_metadata(
    issuer: &Issuer,
    provider: &str,
) -> Result<Arc<ProviderMetadata>, Box<Response>> {
    issuer.keys.metadata().await.map_err(|e| {
        tracing::error!(provider = %provider, error = %error_chain(&e), "OIDC discovery failed");
        Box::new(failure_page(
            StatusCode::BAD_GATEWAY,
            "Sign-in unavailable",
            "The identity provider cannot be reached right now. Try again shortly.",
            "OIDC discovery failed",
        ))
    })
}

fn callback_url(base: &str, provider: &str) -> String {
    format!("{base}{RESERVED_PREFIX}/oidc/{provider}/callback")
}

fn failure_page(status: StatusCode, title: &str, message: &str, reason: &str) -> Response {
    let f = AuthFailure::new(
        Some(AuthMethod::Session),
        AuthFailureKind::Invalid,
        reason.to_owned(),
    );
    html_response(
        status,
        html::error_page(title, message, &login_path()),
        PortalOutcome::failed(&f),
    )
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(
    State(s): State<PortalState>,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
    parts: Parts,
) -> Response {
    let Some(oidc) = s.auth.oidc().cloned() else {
        return failure_page(
            StatusCode::NOT_FOUND,
            "Unknown provider",
            "No sign-in provider is configured.",
            "no OIDC provider configured",
        );
    };
    let Some((issuer, login)) = oidc
        .issuer_by_name(&provider)
        .and_then(|i| i.config.login.as_ref().map(|l| (i, l)))
    else {
        return failure_page(
            StatusCode::NOT_FOUND,
            "Unknown provider",
            "This sign-in provider is not configured.",
            "unknown OIDC provider",
        );
    };
    let meta = match provider_metadata(issuer, &provider).await {
        Ok(m) => m,
        Err(page) => return *page,
    };
    let Some(authorize) = &meta.authorization_endpoint else {
        return failure_page(
            StatusCode::BAD_GATEWAY,
            "Sign-in unavailable",
            "The identity provider has no authorization endpoint.",
            "no authorization_endpoint",
        );
    };
    let base = match base_url(&parts, &oidc) {
        Ok(base) => base,
        Err(page) => return *page,
    };
    let cookie_value = random_b64(32);
    let state = LoginState {
        provider: provider.clone(),
        state: random_b64(24),
        nonce: random_b64(24),
        pkce_verifier: random_b64(48),
        next: safe_next(q.next.as_deref()).to_owned(),
    };
    if let Err(e) = fed::save_login(s.auth.store(), &cookie_value, &state).await {
        tracing::error!(error = %e, "cannot save OIDC pre-login state");
        return failure_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "Sign-in is temporarily unavailable. Try again shortly.",
            "store unavailable",
        );
    }
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(state.pkce_verifier.as_bytes()));
    let scope = login.scopes.join(" ");
    let redirect_uri = callback_url(&base, &provider);
    let sep = if authorize.contains('?') { '&' } else { '?' };
    let location = format!(
        "{authorize}{sep}{}",
        query_string(&[
            ("response_type", "code"),
            ("client_id", &login.client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", &scope),
            ("state", &state.state),
            ("nonce", &state.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    let secure = if secure_transport(&parts) {
        "; Secure"
    } else {
        ""
    };
    let cookie = HeaderValue::from_str(&format!(
        "{}={cookie_value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        login_cookie_name(secure_transport(&parts)),
        LOGIN_TTL_SECS
    ))
    .expect("cookie value is base64url");
    let outcome = PortalOutcome {
        reason: Some(format!("OIDC sign-in started with {provider}")),
        ..PortalOutcome::public()
    };
    redirect(&location, Some(cookie), outcome)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn clear_login_cookie(secure_transport: bool) -> HeaderValue {
    let secure = if secure_transport { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        login_cookie_name(secure_transport)
    ))
    .expect("static cookie")
}

async fn callback(
    State(s): State<PortalState>,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
    parts: Parts,
) -> Response {
    let mut response = callback_inner(&s, &provider, q, &parts).await;
    response.headers_mut().append(
        header::SET_COOKIE,
        clear_login_cookie(secure_transport(&parts)),
    );
    response
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

async fn callback_inner(
    s: &PortalState,
    provider: &str,
    q: CallbackQuery,
    parts: &Parts,
) -> Response {
    let Some(oidc) = s.auth.oidc().cloned() else {
        return failure_page(
            StatusCode::NOT_FOUND,
            "Unknown provider",
            "No sign-in provider is configured.",
            "no OIDC provider configured",
        );
    };
    let Some((issuer, login)) = oidc
        .issuer_by_name(provider)
        .and_then(|i| i.config.login.as_ref().map(|l| (i, l)))
    else {
        return failure_page(
            StatusCode::NOT_FOUND,
            "Unknown provider",
            "This sign-in provider is not configured.",
            "unknown OIDC provider",
        );
    };
    // The pre-login state of this browser (single use).
    let cookies = session::find_cookies(&parts.headers, login_cookie_name(secure_transport(parts)));
    let mut pre = None;
    for c in cookies {
        match fed::take_login(s.auth.store(), c).await {
            Ok(Some(st)) => pre = Some(st),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read OIDC pre-login state");
                return failure_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in unavailable",
                    "Sign-in is temporarily unavailable. Try again shortly.",
                    "store unavailable",
                );
            }
        }
    }
    let Some(pre) = pre else {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in was not started in this browser, or took too long. Start again.",
            "OIDC callback without a matching pre-login state",
        );
    };
    let state_ok = pre.provider == provider
        && q.state
            .as_deref()
            .is_some_and(|st| bool::from(st.as_bytes().ct_eq(pre.state.as_bytes())));
    if !state_ok {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The answer from the identity provider does not belong to this sign-in. Start again.",
            "OIDC state mismatch",
        );
    }
    if let Some(err) = q.error {
        let desc = q
            .error_description
            .as_deref()
            .map(printable)
            .unwrap_or_default();
        let shown = if desc.is_empty() {
            printable(&err)
        } else {
            format!("{} ({desc})", printable(&err))
        };
        return failure_page(
            StatusCode::UNAUTHORIZED,
            "Sign-in refused",
            &format!("The identity provider refused the sign-in: {shown}"),
            &format!("provider {provider} refused: {}", printable(&err)),
        );
    }
    let Some(code) = q.code else {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The identity provider sent no authorization code.",
            "OIDC callback without code",
        );
    };
    let meta = match provider_metadata(issuer, provider).await {
        Ok(m) => m,
        Err(page) => return *page,
    };
    let Some(token_endpoint) = &meta.token_endpoint else {
        return failure_page(
            StatusCode::BAD_GATEWAY,
            "Sign-in unavailable",
            "The identity provider has no token endpoint.",
            "no token_endpoint",
        );
    };
    let base = match base_url(parts, &oidc) {
        Ok(base) => base,
        Err(page) => return *page,
    };
    let redirect_uri = callback_url(&base, provider);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pre.pkce_verifier.as_str()),
    ];
    let mut req = oidc
        .http()
        .post(token_endpoint)
        .header("accept", "application/json");
    match &login.client_secret {
        Some(secret) => {
            req = req.basic_auth(query_escape(&login.client_id), Some(query_escape(secret)));
        }
        None => form.push(("client_id", login.client_id.as_str())),
    }
    let id_token = match exchange(req.form(&form)).await {
        Ok(t) => t,
        Err(e) => {
            let why = error_chain(&e);
            tracing::warn!(provider = %provider, error = %why, "OIDC code exchange failed");
            return failure_page(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                "The identity provider did not complete the sign-in. Start again.",
                &format!("OIDC code exchange failed: {}", printable(&why)),
            );
        }
    };
    let verified = match oidc.verify(&id_token, Some(provider)).await {
        Ok(v) => v,
        Err(f) => {
            return failure_page(
                StatusCode::UNAUTHORIZED,
                "Sign-in refused",
                &format!("The identity provider's ID token was refused: {}", f.reason),
                &format!("ID token refused: {}", f.reason),
            );
        }
    };
    let nonce_ok = verified
        .claims
        .get("nonce")
        .and_then(|n| n.as_str())
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(pre.nonce.as_bytes())));
    if !nonce_ok {
        return failure_page(
            StatusCode::UNAUTHORIZED,
            "Sign-in refused",
            "The ID token does not belong to this sign-in (nonce).",
            "ID token nonce mismatch",
        );
    }
    let mut principal = verified.principal;
    principal.auth_method = AuthMethod::Session;
    if principal.groups.is_empty() {
        let f = AuthFailure::new(
            Some(AuthMethod::Session),
            AuthFailureKind::Invalid,
            format!(
                "{} signed in at {provider} but belongs to no group mapped to mlgate",
                principal.arn
            ),
        );
        let mut outcome = PortalOutcome::failed(&f);
        outcome.principal = Some(principal.arn.clone());
        outcome.decision = AuditDecision::ImplicitDeny;
        return html_response(
            StatusCode::FORBIDDEN,
            html::error_page(
                "No access to MLflow",
                &format!(
                    "You signed in as {} but none of your groups at {} gives access to MLflow. Ask an administrator to add you to a group that does.",
                    principal.name, login.display_name
                ),
                &login_path(),
            ),
            outcome,
        );
    }
    let sid = match fed::create(&s.auth, &principal).await {
        Ok(sid) => sid,
        Err(f) => {
            return html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                html::error_page(
                    "Sign-in unavailable",
                    "Sign-in is temporarily unavailable. Try again shortly.",
                    &login_path(),
                ),
                PortalOutcome::failed(&f),
            );
        }
    };
    // Replace any previous session of this browser.
    for old in session::find_cookies(
        &parts.headers,
        session::cookie_name(secure_transport(parts)),
    ) {
        let _ = s.auth.logout(old).await;
    }
    let max_age = s.auth.settings().session.lifetime.as_secs();
    redirect(
        &pre.next,
        Some(set_cookie(
            &sid.cookie_value,
            secure_transport(parts),
            max_age,
        )),
        PortalOutcome::signed_in(&principal, &format!("signed in through {provider}")),
    )
}

/// Why the provider's token endpoint gave no ID token. Never contains a token or a secret.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("the token endpoint did not answer")]
    Unreachable(#[source] reqwest::Error),
    #[error("token response too large")]
    TooLarge,
    #[error("HTTP {0}: not JSON")]
    NotJson(StatusCode),
    #[error("HTTP {status}: {error}")]
    Refused { status: StatusCode, error: String },
    #[error("the token response has no id_token")]
    NoIdToken,
}

async fn exchange(req: reqwest::RequestBuilder) -> Result<String, ExchangeError> {
    let unreachable = |e: reqwest::Error| ExchangeError::Unreachable(e.without_url());
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(unreachable)?;
    if body.len() > 256 * 1024 {
        return Err(ExchangeError::TooLarge);
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| ExchangeError::NotJson(status))?;
    if !status.is_success() {
        let error = json
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unknown");
        return Err(ExchangeError::Refused {
            status,
            error: error.to_owned(),
        });
    }
    json.get("id_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or(ExchangeError::NoIdToken)
}

/// Where to send the browser after its federated session ended: the provider's
/// `end_session_endpoint`, when configured and known. Call before deleting the session.
pub async fn end_session_url(s: &PortalState, parts: &Parts) -> Option<String> {
    let oidc = s.auth.oidc()?.clone();
    let mut provider = None;
    for c in session::find_cookies(
        &parts.headers,
        session::cookie_name(secure_transport(parts)),
    ) {
        if let Some(p) = fed::provider_of(s.auth.store(), c).await {
            provider = Some(p);
        }
    }
    let issuer = oidc.issuer_by_name(&provider?)?;
    let login = issuer.config.login.as_ref().filter(|l| l.end_session)?;
    let meta = issuer.keys.metadata().await.ok()?;
    let end = meta.end_session_endpoint.as_ref()?;
    let base = base_url(parts, &oidc).ok()?;
    let back = format!("{base}{}", login_path());
    let sep = if end.contains('?') { '&' } else { '?' };
    Some(format!(
        "{end}{sep}{}",
        query_string(&[
            ("client_id", &login.client_id),
            ("post_logout_redirect_uri", &back),
        ])
    ))
}

/// The page shown after a federated sign-out: it forwards the browser to the provider's
/// end-session endpoint (a meta refresh, so the portal's strict CSP `form-action 'self'` is
/// not in the way) and offers a link in case it does not.
pub fn signed_out_page(end_session: &str) -> String {
    let url = html::escape(end_session);
    html::page(
        "Signed out",
        &format!(
            "<meta http-equiv=\"refresh\" content=\"0;url={url}\">\
             <h1>Signed out</h1><p class=\"sub\">Your MLflow session has ended.</p>\
             <p><a id=\"provider-signout\" href=\"{url}\">Sign out at the identity provider too</a></p>"
        ),
    )
}
