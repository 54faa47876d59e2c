//! The portal's few HTML pages: server-rendered, no JavaScript, every dynamic value escaped.

/// Escapes text for HTML element content and quoted attribute values (every attribute here is
/// double-quoted).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light dark; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: #f4f6f8; color: #1b1f24; }
main { width: min(360px, 92vw); background: #fff; border: 1px solid #d9dee3;
  border-radius: 10px; padding: 28px 28px 22px; box-shadow: 0 2px 12px rgba(0,0,0,.06); }
h1 { font-size: 20px; margin: 0 0 4px; }
p.sub { margin: 0 0 20px; color: #57606a; font-size: 13px; }
label { display: block; font-weight: 600; font-size: 13px; margin: 14px 0 6px; }
input[type=text], input[type=password] { width: 100%; padding: 9px 10px; font: inherit;
  border: 1px solid #c7ced5; border-radius: 6px; background: #fff; color: inherit; }
input:focus { outline: 2px solid #0969da; outline-offset: -1px; border-color: #0969da; }
button { margin-top: 20px; width: 100%; padding: 10px; font: inherit; font-weight: 600;
  color: #fff; background: #0b6bcb; border: 0; border-radius: 6px; cursor: pointer; }
button:hover { background: #0a5eb3; }
button.secondary { background: transparent; color: #0b6bcb; border: 1px solid #0b6bcb; }
.error { margin: 0 0 8px; padding: 9px 12px; border-radius: 6px; font-size: 13px;
  background: #ffebe9; color: #82071e; border: 1px solid #ffcecb; }
a { color: #0b6bcb; }
footer { margin-top: 18px; font-size: 12px; color: #6e7781; text-align: center; }
@media (prefers-color-scheme: dark) {
  body { background: #0d1117; color: #e6edf3; }
  main { background: #161b22; border-color: #30363d; box-shadow: none; }
  p.sub, footer { color: #8d96a0; }
  input[type=text], input[type=password] { background: #0d1117; border-color: #30363d; }
  .error { background: #3c1618; color: #ffa198; border-color: #6e2b2f; }
}
"#;

pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} · MLflow</title><style>{STYLE}</style></head>\
         <body><main>{body}<footer>MLflow behind mlgate</footer></main></body></html>\n",
        title = escape(title),
    )
}

/// The sign-in form. `error` and `username` are escaped here.
pub fn login_page(action: &str, next: &str, username: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let autofocus_user = if username.is_empty() {
        " autofocus"
    } else {
        ""
    };
    let autofocus_pw = if username.is_empty() {
        ""
    } else {
        " autofocus"
    };
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p class=\"sub\">to the MLflow tracking server</p>{error}\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\
             <label for=\"username\">User name</label>\
             <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" \
             autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required{autofocus_user}>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" \
             autocomplete=\"current-password\" required{autofocus_pw}>\
             <button type=\"submit\">Sign in</button></form>",
            action = escape(action),
            next = escape(next),
            username = escape(username),
        ),
    )
}

/// Shown at the sign-in URL to someone already signed in.
pub fn signed_in_page(who: &str, next: &str, logout_action: &str) -> String {
    page(
        "Signed in",
        &format!(
            "<h1>Signed in</h1><p class=\"sub\">as <strong>{who}</strong></p>\
             <p><a href=\"{next}\">Continue to MLflow</a></p>\
             <form method=\"post\" action=\"{logout}\">\
             <button type=\"submit\" class=\"secondary\">Sign out</button></form>",
            who = escape(who),
            next = escape(next),
            logout = escape(logout_action),
        ),
    )
}

/// The sign-out confirmation (sign-out itself is a POST).
pub fn logout_page(logout_action: &str) -> String {
    page(
        "Sign out",
        &format!(
            "<h1>Sign out</h1><p class=\"sub\">End your MLflow session on this browser.</p>\
             <form method=\"post\" action=\"{logout}\">\
             <button type=\"submit\">Sign out</button></form>",
            logout = escape(logout_action),
        ),
    )
}

/// A short error page (e.g. a refused cross-site form post).
pub fn error_page(title: &str, message: &str, back: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{title}</h1><p class=\"error\">{message}</p><p><a href=\"{back}\">Back to sign-in</a></p>",
            title = escape(title),
            message = escape(message),
            back = escape(back),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_dynamic_is_escaped() {
        let evil = "\"><script>alert(1)</script>";
        let html = login_page("/_mlgate/login", evil, evil, Some(evil));
        assert!(!html.contains("<script>"));
        assert!(!html.contains(evil));
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));
        let html = signed_in_page(evil, "javascript:x'\"", "/_mlgate/logout");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("x'\""));
    }
}
