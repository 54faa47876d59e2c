//! The browser session cookie set by the sign-in page.
//!
//! * The cookie value is 256 random bits (base64url); the store keeps only its SHA-256, so a
//!   copy of the database does not let anyone ride a session.
//! * Cookie: `mlgate_session=…; Path=/; HttpOnly; SameSite=Lax`, and under TLS
//!   `__Host-mlgate_session=…; …; Secure` (the `__Host-` prefix forbids a `Domain` attribute, so
//!   a sibling subdomain cannot plant the cookie).
//! * A session ends at its absolute lifetime (default 12 h), after the idle timeout (default
//!   1 h without a request), at sign-out (the server-side row is deleted), when the user is
//!   disabled or its password changes.
//! * CSRF: `SameSite=Lax` keeps the cookie off cross-site subrequests and POSTs in current
//!   browsers; in addition every cookie-authenticated request with an unsafe method must prove
//!   it comes from the same origin ([`check_same_origin`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};

use super::token::sha256_hex;
use super::{Authenticator, is_safe_method, request_host};
use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal};
use crate::store::{SessionEnded, SessionLimits, SessionOwner, UserRecord, now};

pub const COOKIE_NAME: &str = "mlgate_session";
pub const SECURE_COOKIE_NAME: &str = "__Host-mlgate_session";

/// The session cookie's name: `__Host-mlgate_session` under TLS, `mlgate_session` otherwise.
pub fn cookie_name(secure_transport: bool) -> &'static str {
    if secure_transport {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// Every non-empty value of cookie `name` across all `Cookie` headers.
pub fn find_cookies<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// A new session id: the cookie value (secret) and its SHA-256 (stored).
pub struct NewSessionId {
    pub cookie_value: String,
    pub id_sha256: String,
}

impl std::fmt::Debug for NewSessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSessionId(<redacted>)")
    }
}

pub fn mint_session_id() -> NewSessionId {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("OS random number generator");
    let cookie_value = URL_SAFE_NO_PAD.encode(buf);
    NewSessionId {
        id_sha256: sha256_hex(&cookie_value),
        cookie_value,
    }
}

fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(value: &str, secure_transport: bool, max_age_secs: u64) -> HeaderValue {
    let secure = if secure_transport { "; Secure" } else { "" };
    let name = cookie_name(secure_transport);
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie value is base64url")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure_transport: bool) -> HeaderValue {
    let secure = if secure_transport { "; Secure" } else { "" };
    let name = cookie_name(secure_transport);
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .expect("static cookie")
}

/// A web origin: scheme, host and port, the port written out (`http://a` is `http://a:80`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebOrigin {
    scheme: &'static str,
    /// Lowercase; an IPv6 address keeps its brackets.
    host: String,
    port: u16,
}

impl WebOrigin {
    /// An `Origin` header's value: `http(s)://host[:port]`, nothing else.
    pub fn parse(text: &str) -> Option<WebOrigin> {
        let (scheme, authority) = text.split_once("://")?;
        WebOrigin::new(scheme, authority)
    }

    /// Where browsers reach mlgate: the configured public URL's origin (its path, if any, plays
    /// no part), else the connection's scheme with the request's `Host`.
    pub fn served(parts: &Parts, secure_transport: bool, public_url: Option<&str>) -> Option<Self> {
        match public_url {
            Some(url) => {
                let uri: http::Uri = url.parse().ok()?;
                WebOrigin::new(uri.scheme_str()?, uri.authority()?.as_str())
            }
            None => WebOrigin::new(
                if secure_transport { "https" } else { "http" },
                request_host(parts)?,
            ),
        }
    }

    fn new(scheme: &str, authority: &str) -> Option<WebOrigin> {
        let (scheme, default_port) = match scheme {
            "https" => ("https", 443),
            "http" => ("http", 80),
            _ => return None,
        };
        // No user info, path, query or fragment: an origin is scheme, host and port only.
        if authority.is_empty() || authority.contains(['@', '/', '\\', '?', '#', ' ']) {
            return None;
        }
        let authority: http::uri::Authority = authority.parse().ok()?;
        Some(WebOrigin {
            scheme,
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }
}

/// The CSRF rule for cookie-authenticated requests (and the sign-in form). Safe methods pass.
/// An unsafe method passes if `Sec-Fetch-Site` is `same-origin` (or `none`: typed by the user),
/// or, when the browser sends no `Sec-Fetch-Site`, if `Origin` is the origin mlgate is served
/// at (`served`: scheme, host and port all equal). Anything else (cross-site, same-site sibling,
/// another scheme or port, `Origin: null`, neither header) is refused.
pub fn check_same_origin(parts: &Parts, served: Option<&WebOrigin>) -> Result<(), AuthFailure> {
    if is_safe_method(&parts.method) {
        return Ok(());
    }
    same_origin_unsafe(parts, served)
}

/// The same-origin test alone (for the sign-in form, which is always a POST).
pub fn same_origin_unsafe(parts: &Parts, served: Option<&WebOrigin>) -> Result<(), AuthFailure> {
    let refuse = |why: &str| {
        Err(AuthFailure::new(
            Some(AuthMethod::Session),
            AuthFailureKind::CrossSite,
            format!("cross-site request refused: {why}"),
        ))
    };
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        return match site.to_str().unwrap_or("") {
            "same-origin" | "none" => Ok(()),
            _ => refuse("Sec-Fetch-Site is not same-origin"),
        };
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return refuse("neither Sec-Fetch-Site nor Origin was sent");
    };
    let origin = origin.to_str().ok().and_then(WebOrigin::parse);
    match (origin, served) {
        (Some(origin), Some(served)) if origin == *served => Ok(()),
        _ => refuse("Origin is not the origin mlgate is served at"),
    }
}

fn fail(kind: AuthFailureKind, reason: &str) -> AuthFailure {
    AuthFailure::new(Some(AuthMethod::Session), kind, reason)
}

pub(super) async fn authenticate(
    auth: &Authenticator,
    value: &str,
) -> Result<Principal, AuthFailure> {
    let invalid = || {
        fail(
            AuthFailureKind::Invalid,
            "session is not valid; sign in again",
        )
    };
    if !well_formed(value) {
        return Err(invalid());
    }
    let hash = sha256_hex(value);
    let store = auth.store();
    let session = store
        .session_by_hash(&hash)
        .await
        .map_err(|e| AuthFailure::store(AuthMethod::Session, &e))?
        .ok_or_else(invalid)?;
    let t = now();
    auth.settings()
        .session
        .check(&session, t)
        .map_err(|ended| match ended {
            SessionEnded::Expired => {
                fail(AuthFailureKind::Expired, "session expired; sign in again")
            }
            SessionEnded::Idle => fail(
                AuthFailureKind::Expired,
                "session ended after inactivity; sign in again",
            ),
        })?;
    let principal = match &session.owner {
        SessionOwner::User { user_id } => {
            let user = store
                .user_by_id(user_id)
                .await
                .map_err(|e| AuthFailure::store(AuthMethod::Session, &e))?
                .ok_or_else(invalid)?;
            if user.disabled {
                return Err(invalid());
            }
            user.principal(AuthMethod::Session)
        }
        // A federated user's principal is as of sign-in (see `jwt::session`).
        SessionOwner::Federated(principal) => principal.clone(),
    };
    if SessionLimits::touch_due(&session, t) {
        let s = store.clone();
        auth.throttled_touch(format!("session:{hash}"), async move {
            s.touch_session(&session, t).await
        });
    }
    Ok(principal)
}

impl Authenticator {
    /// Signs a user in: checks the password exactly like HTTP Basic (same cache, rate limits and
    /// KDF path), creates a server-side session and returns the principal and the cookie value.
    pub async fn login(
        &self,
        user_ref: &str,
        password: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(Principal, NewSessionId), AuthFailure> {
        let user: std::sync::Arc<UserRecord> =
            super::basic::verify_password(self, user_ref, password, ip, AuthMethod::Session)
                .await?;
        let sid = self
            .start_session(SessionOwner::User {
                user_id: user.id.clone(),
            })
            .await?;
        Ok((user.principal(AuthMethod::Session), sid))
    }

    /// Creates a server-side session for `owner` within the configured limits; returns the
    /// new cookie value.
    pub(super) async fn start_session(
        &self,
        owner: SessionOwner,
    ) -> Result<NewSessionId, AuthFailure> {
        let sid = mint_session_id();
        self.store()
            .create_session(&sid.id_sha256, owner, &self.settings().session)
            .await
            .map_err(|e| AuthFailure::store(AuthMethod::Session, &e))?;
        Ok(sid)
    }

    /// Signs out: deletes the server-side session of this cookie value (if any, of a built-in
    /// or a federated user).
    pub async fn logout(&self, cookie_value: &str) -> Result<bool, AuthFailure> {
        if !well_formed(cookie_value) {
            return Ok(false);
        }
        self.store()
            .delete_session(&sha256_hex(cookie_value))
            .await
            .map_err(|e| AuthFailure::store(AuthMethod::Session, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::parts;
    use super::*;

    #[test]
    fn csrf_rules() {
        let ok = |m: &str, h: &[(&str, &str)]| {
            let parts = parts(m, "/x", h);
            check_same_origin(&parts, WebOrigin::served(&parts, false, None).as_ref()).is_ok()
        };
        // Safe methods always pass.
        assert!(ok("GET", &[("sec-fetch-site", "cross-site")]));
        // Sec-Fetch-Site decides when present.
        assert!(ok(
            "POST",
            &[("sec-fetch-site", "same-origin"), ("host", "a.example")]
        ));
        assert!(ok("POST", &[("sec-fetch-site", "none")]));
        assert!(!ok("POST", &[("sec-fetch-site", "same-site")]));
        assert!(!ok(
            "POST",
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://a.example"),
                ("host", "a.example")
            ]
        ));
        // Otherwise Origin must be the served origin: scheme, host and port.
        assert!(ok(
            "POST",
            &[
                ("origin", "http://a.example:5000"),
                ("host", "a.example:5000")
            ]
        ));
        assert!(ok(
            "DELETE",
            &[("origin", "http://A.example"), ("host", "a.example:80")]
        ));
        assert!(!ok(
            "POST",
            &[("origin", "http://evil.example"), ("host", "a.example")]
        ));
        assert!(!ok(
            "POST",
            &[
                ("origin", "http://a.example:5001"),
                ("host", "a.example:5000")
            ]
        ));
        // Another scheme is another origin, with an explicit port or the default one.
        assert!(!ok(
            "POST",
            &[
                ("origin", "https://a.example:5000"),
                ("host", "a.example:5000")
            ]
        ));
        assert!(!ok(
            "POST",
            &[("origin", "https://a.example"), ("host", "a.example")]
        ));
        assert!(!ok("POST", &[("origin", "null"), ("host", "a.example")]));
        assert!(!ok(
            "POST",
            &[("origin", "http://a.example/x"), ("host", "a.example")]
        ));
        // Neither header: refused.
        assert!(!ok("POST", &[("host", "a.example")]));
        let e = check_same_origin(&parts("PUT", "/x", &[]), None).unwrap_err();
        assert_eq!(e.kind, AuthFailureKind::CrossSite);
        assert_eq!(e.status().as_u16(), 403);
    }

    #[test]
    fn the_served_origin() {
        let request = parts("POST", "/x", &[("host", "[::1]:5000")]);
        assert_eq!(
            WebOrigin::served(&request, true, None),
            WebOrigin::parse("https://[::1]:5000")
        );
        assert_ne!(
            WebOrigin::served(&request, false, None),
            WebOrigin::parse("https://[::1]:5000")
        );
        // A configured public URL is where browsers reach mlgate (behind a TLS proxy the
        // connection itself is plain HTTP).
        let behind_proxy = parts("POST", "/x", &[("host", "ml.example.com")]);
        let served = WebOrigin::served(&behind_proxy, false, Some("https://ml.example.com/mlflow"));
        assert_eq!(served, WebOrigin::parse("https://ml.example.com:443"));
        assert_ne!(served, WebOrigin::parse("http://ml.example.com"));
        assert_eq!(WebOrigin::parse("ftp://a.example"), None);
        assert_eq!(WebOrigin::parse("http://user@a.example"), None);
    }

    #[test]
    fn cookies() {
        let id = mint_session_id();
        assert!(well_formed(&id.cookie_value));
        assert_eq!(id.id_sha256, sha256_hex(&id.cookie_value));
        let c = set_cookie(&id.cookie_value, false, 60);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("mlgate_session="));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"));
        assert!(!c.contains("Secure"));
        let c = set_cookie(&id.cookie_value, true, 60);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-mlgate_session=") && c.contains("; Secure"));
        assert!(!c.contains("Domain"));
        assert!(clear_cookie(false).to_str().unwrap().contains("Max-Age=0"));
    }
}
