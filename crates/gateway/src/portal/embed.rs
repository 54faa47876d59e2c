//! Embedding the MLflow UI in another site's iframe (JupyterLab, SageMaker Studio), off by
//! default. Two independent switches of [`crate::authenticate::AuthSettings`]:
//!
//! * `frame_ancestors` (`--frame-ancestors`): the CSP `frame-ancestors` sources allowed to frame
//!   mlgate's pages and the MLflow UI. Set: every response gets
//!   `Content-Security-Policy: frame-ancestors <sources>` (replacing the portal's
//!   `frame-ancestors 'none'`) and loses `X-Frame-Options`. Empty (default): nothing changes, and
//!   the portal's pages cannot be framed at all.
//! * `cross_site_cookies` (`--cross-site-cookies`): the session cookie is sent as
//!   `SameSite=None; Secure`, which a browser needs to send it inside a cross-site iframe. It
//!   needs HTTPS (browsers drop `Secure` cookies set over plain HTTP, except on localhost). The
//!   CSRF rule for cookie-authenticated writes (same origin) stays in force: the UI inside the
//!   frame is itself same-origin with mlgate.

use http::{HeaderMap, HeaderValue, header};

use crate::authenticate::AuthSettings;
use crate::authenticate::session::{COOKIE_NAME, SECURE_COOKIE_NAME};

/// Applies the embedding settings to a response about to leave mlgate.
pub fn apply(settings: &AuthSettings, headers: &mut HeaderMap) {
    if settings.cross_site_cookies {
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        if cookies.iter().any(is_session_cookie) {
            headers.remove(header::SET_COOKIE);
            for c in cookies {
                let v = if is_session_cookie(&c) {
                    let s = c
                        .to_str()
                        .unwrap_or_default()
                        .replace("SameSite=Lax", "SameSite=None");
                    let s = if s.contains("; Secure") {
                        s
                    } else {
                        format!("{s}; Secure")
                    };
                    HeaderValue::from_str(&s).unwrap_or(c)
                } else {
                    c
                };
                headers.append(header::SET_COOKIE, v);
            }
        }
    }
    if !settings.frame_ancestors.is_empty() {
        let sources = settings.frame_ancestors.join(" ");
        headers.remove(header::X_FRAME_OPTIONS);
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let new = match csp {
            Some(old) => {
                let mut parts: Vec<String> = old
                    .split(';')
                    .map(str::trim)
                    .filter(|d| !d.is_empty() && !d.starts_with("frame-ancestors"))
                    .map(str::to_owned)
                    .collect();
                parts.push(format!("frame-ancestors {sources}"));
                parts.join("; ")
            }
            None => format!("frame-ancestors {sources}"),
        };
        if let Ok(v) = HeaderValue::from_str(&new) {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
}

fn is_session_cookie(c: &HeaderValue) -> bool {
    c.to_str().is_ok_and(|s| {
        s.starts_with(&format!("{COOKIE_NAME}="))
            || s.starts_with(&format!("{SECURE_COOKIE_NAME}="))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default() {
        let mut h = HeaderMap::new();
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::SET_COOKIE,
            HeaderValue::from_static("mlgate_session=x; Path=/; HttpOnly; SameSite=Lax"),
        );
        let before = h.clone();
        apply(&AuthSettings::default(), &mut h);
        assert_eq!(h, before);
    }

    #[test]
    fn embedding_settings() {
        let settings = AuthSettings {
            cross_site_cookies: true,
            frame_ancestors: vec!["'self'".into(), "https://*.studio.example.com".into()],
            ..AuthSettings::default()
        };
        let mut h = HeaderMap::new();
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "mlgate_session=x; Path=/; HttpOnly; SameSite=Lax; Max-Age=60",
            ),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("mlgate_oidc=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
        apply(&settings, &mut h);
        assert!(h.get(header::X_FRAME_OPTIONS).is_none());
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; base-uri 'none'; frame-ancestors 'self' https://*.studio.example.com"
        );
        let cookies: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies.len(), 2);
        assert!(
            cookies
                .contains(&"mlgate_session=x; Path=/; HttpOnly; SameSite=None; Max-Age=60; Secure")
        );
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("mlgate_oidc=") && c.contains("SameSite=Lax"))
        );
        // A forwarded UI page without a CSP gets one.
        let mut h = HeaderMap::new();
        apply(&settings, &mut h);
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "frame-ancestors 'self' https://*.studio.example.com"
        );
    }
}
