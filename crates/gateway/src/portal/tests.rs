use std::collections::BTreeMap;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::authenticate::AuthSettings;
use crate::store::{Store, password};

async fn setup() -> (tempfile::TempDir, PortalState) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store
        .create_user(
            None,
            "alice",
            Some(password::hash("correct horse").unwrap()),
            BTreeMap::new(),
        )
        .await
        .unwrap();
    let mut settings = AuthSettings::default();
    settings.password.max_failures_per_ip = 3;
    (dir, PortalState::new(Authenticator::new(store, settings)))
}

async fn send(
    s: &PortalState,
    req: Request<Body>,
) -> (StatusCode, HeaderMap, String, Option<PortalOutcome>) {
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let outcome = resp.extensions().get::<PortalOutcome>().cloned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8(body.to_vec()).unwrap(),
        outcome,
    )
}

fn login_post(form: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post("/_mlgate/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "mlflow.example");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(form.to_owned())).unwrap()
}

const SAME_ORIGIN: (&str, &str) = ("origin", "http://mlflow.example");

fn cookie_of(h: &HeaderMap) -> String {
    let c = h.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    c.split(';').next().unwrap().to_owned()
}

#[test]
fn next_must_be_a_same_site_path() {
    assert_eq!(
        safe_next(Some("/#/experiments/1?x=y")),
        "/#/experiments/1?x=y"
    );
    assert_eq!(
        safe_next(Some("/ajax-api/2.0/mlflow/runs/get?run_id=1")),
        "/ajax-api/2.0/mlflow/runs/get?run_id=1"
    );
    for evil in [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
        "/%0a/x\n",
        " /x",
        "",
    ] {
        assert_eq!(safe_next(Some(evil)), "/", "{evil:?} accepted");
    }
    assert_eq!(safe_next(None), "/");
    assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
}

#[test]
fn login_urls_round_trip_through_safe_next() {
    assert_eq!(login_url("/"), "/_mlgate/login");
    assert_eq!(login_url("/#/experiments/1?a=b c"), "/_mlgate/login");
    assert_eq!(
        login_url("/#/experiments/1?a=b&c=d"),
        "/_mlgate/login?next=/%23/experiments/1%3Fa%3Db%26c%3Dd"
    );
    assert_eq!(login_url("//evil.example"), "/_mlgate/login");
}

#[tokio::test]
async fn login_page_renders_escaped_and_safe() {
    let (_d, s) = setup().await;
    let (st, h, body, _) = send(
        &s,
        Request::get("/_mlgate/login?next=%2F%23%2Fmodels%22%3E%3Cscript%3E")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("<form method=\"post\" action=\"/_mlgate/login\">"));
    assert!(!body.contains("<script>"));
    assert!(
        body.contains("value=\"/#/models&quot;&gt;&lt;script&gt;\""),
        "{body}"
    );
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let (_, _, body, _) = send(
        &s,
        Request::get("/_mlgate/login?next=//evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(body.contains("name=\"next\" value=\"/\""));
}

#[tokio::test]
async fn sign_in_whoami_sign_out() {
    let (_d, s) = setup().await;
    let (st, h, _, outcome) = send(
        &s,
        login_post(
            "username=alice&password=correct+horse&next=%2F%23%2Fexperiments",
            &[SAME_ORIGIN],
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/#/experiments");
    let set = h[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("mlgate_session="));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"));
    assert!(set.contains("Max-Age=43200"));
    assert!(!set.contains("Secure"));
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.principal.as_deref(),
        Some("arn:aws:iam::111111111111:user/alice")
    );
    let cookie = cookie_of(&h);

    let who = |c: &str| {
        Request::get("/_mlgate/whoami")
            .header("cookie", c)
            .body(Body::empty())
            .unwrap()
    };
    let (st, _, body, _) = send(&s, who(&cookie)).await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["arn"], "arn:aws:iam::111111111111:user/alice");
    assert_eq!(v["auth_method"], "session");

    // Signed-in visitors of the login page see who they are.
    let (_, _, body, _) = send(
        &s,
        Request::get("/_mlgate/login")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(body.contains("Signed in") && body.contains("alice"));

    // Sign-out needs same-origin proof...
    let logout = |hs: &[(&str, &str)]| {
        let mut b = Request::post("/_mlgate/logout").header("host", "mlflow.example");
        for (k, v) in hs {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    let (st, _, _, _) = send(
        &s,
        logout(&[("cookie", &cookie), ("origin", "http://evil.example")]),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&s, who(&cookie)).await.0,
        StatusCode::OK,
        "still signed in"
    );
    // ... then deletes the server-side session and clears the cookie.
    let (st, h, _, _) = send(&s, logout(&[("cookie", &cookie), SAME_ORIGIN])).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/_mlgate/login");
    assert!(
        h[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (st, _, body, _) = send(&s, who(&cookie)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error_code"], "UNAUTHENTICATED");

    // No credential at all.
    let (st, _, body, _) = send(
        &s,
        Request::get("/_mlgate/whoami").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body.contains("UNAUTHENTICATED"));
}

#[tokio::test]
async fn sign_in_is_csrf_protected() {
    let (_d, s) = setup().await;
    for headers in [
        vec![],
        vec![("origin", "http://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "null")],
    ] {
        let (st, h, _, outcome) = send(
            &s,
            login_post("username=alice&password=correct+horse", &headers),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(h.get(header::SET_COOKIE).is_none());
        assert_eq!(outcome.unwrap().decision, AuditDecision::Rejected);
    }
    let (st, _, _, _) = send(
        &s,
        login_post(
            "username=alice&password=correct+horse",
            &[("sec-fetch-site", "same-origin")],
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let (_d, s) = setup().await;
    for next in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "javascript%3Aalert(1)",
    ] {
        let (st, h, _, _) = send(
            &s,
            login_post(
                &format!("username=alice&password=correct+horse&next={next}"),
                &[SAME_ORIGIN],
            ),
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        assert_eq!(h[header::LOCATION], "/", "next={next}");
    }
}

#[tokio::test]
async fn failed_sign_in_and_rate_limit() {
    let (_d, s) = setup().await;
    let (st, h, body, outcome) = send(
        &s,
        login_post("username=alice%22%3E&password=wrong+horse", &[SAME_ORIGIN]),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.get(header::SET_COOKIE).is_none());
    assert!(body.contains("Invalid user name or password."));
    assert!(
        body.contains("value=\"alice&quot;&gt;\""),
        "user name kept, escaped"
    );
    assert!(!body.contains("wrong horse"), "password never echoed");
    let outcome = outcome.unwrap();
    assert_eq!(outcome.decision, AuditDecision::Unauthenticated);
    assert!(!outcome.reason.unwrap().contains("wrong"));

    // Same client address: limited after 3 distinct failures (setup sets the IP limit to 3).
    let from = |form: &str| from_peer(login_post(form, &[SAME_ORIGIN]), false);
    for i in 0..3 {
        let (st, _, _, _) = send(&s, from(&format!("username=alice&password=guess{i}xxxx"))).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, _, body, _) = send(&s, from("username=bob&password=guess9xxxx")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("Too many failed attempts"));

    let (st, _, _, _) = send(&s, login_post("username=&password=", &[SAME_ORIGIN])).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// A request as the listener hands it on: from `ip`, over HTTPS or not (itself or through a
/// trusted proxy; [`crate::listen::TrustedProxies`] decides that before the portal runs).
fn from_peer(mut request: Request<Body>, secure: bool) -> Request<Body> {
    request.extensions_mut().insert(crate::listen::Peer {
        ip: "192.0.2.7".parse().unwrap(),
        secure,
    });
    request
}

#[tokio::test]
async fn https_uses_the_host_prefixed_secure_cookie() {
    let (_d, s) = setup().await;
    let sign_in = || {
        login_post(
            "username=alice&password=correct+horse",
            &[("origin", "https://mlflow.example")],
        )
    };
    let (st, h, _, _) = send(&s, from_peer(sign_in(), true)).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let set = h[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-mlgate_session="), "{set}");
    assert!(set.contains("; Secure") && set.contains("Path=/") && !set.contains("Domain"));
    let cookie = cookie_of(&h);
    let whoami = || {
        Request::get("/_mlgate/whoami")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let (st, _, _, _) = send(&s, from_peer(whoami(), true)).await;
    assert_eq!(st, StatusCode::OK);
    // The same request over plain HTTP does not read the `__Host-` cookie, and an https origin
    // is not this http request's origin.
    let (st, _, _, _) = send(&s, from_peer(whoami(), false)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _, _) = send(&s, from_peer(sign_in(), false)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_replaces_the_previous_session() {
    let (_d, s) = setup().await;
    let (_, h, _, _) = send(
        &s,
        login_post("username=alice&password=correct+horse", &[SAME_ORIGIN]),
    )
    .await;
    let first = cookie_of(&h);
    let (_, h, _, _) = send(
        &s,
        login_post(
            "username=alice&password=correct+horse",
            &[SAME_ORIGIN, ("cookie", &first)],
        ),
    )
    .await;
    let second = cookie_of(&h);
    assert_ne!(first, second, "a new id at every sign-in");
    let who = |c: &str| {
        Request::get("/_mlgate/whoami")
            .header("cookie", c)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&s, who(&first)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&s, who(&second)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_portal_paths_are_404() {
    let (_d, s) = setup().await;
    let (st, _, body, _) = send(
        &s,
        Request::get("/_mlgate/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.contains("ENDPOINT_NOT_FOUND"));
}

#[test]
fn the_ui_sign_out_is_recognised_by_its_two_requests() {
    use crate::authenticate::test_support::parts;
    let step = |headers: &[(&str, &str)]| {
        ui_sign_out_step(&parts("GET", "/ajax-api/2.0/mlflow/users/current", headers))
    };
    let cookie = ("cookie", "mlgate_session=abc");
    // mlflow-logged-out-x:mlflow-logged-out-x
    let marker = (
        "authorization",
        "Basic bWxmbG93LWxvZ2dlZC1vdXQteDptbGZsb3ctbG9nZ2VkLW91dC14",
    );
    assert_eq!(step(&[cookie]), Some(UiSignOut::Challenge));
    assert_eq!(
        step(&[cookie, ("accept", "*/*")]),
        Some(UiSignOut::Challenge)
    );
    assert_eq!(step(&[cookie, marker]), Some(UiSignOut::End));
    assert_eq!(step(&[marker]), Some(UiSignOut::End));
    // The UI's own calls (its fetch wrapper sets a content type), a page load, no session,
    // another user's Basic credentials: not a sign-out.
    assert_eq!(
        step(&[cookie, ("content-type", "application/json; charset=utf-8")]),
        None
    );
    assert_eq!(step(&[cookie, ("accept", "text/html,*/*")]), None);
    assert_eq!(step(&[]), None);
    // alice:secret
    assert_eq!(
        step(&[cookie, ("authorization", "Basic YWxpY2U6c2VjcmV0")]),
        None
    );
    assert_eq!(step(&[("authorization", "Basic !!")]), None);
}
