//! The three built-in credentials end to end, through the public API the pipeline uses: HTTP
//! Basic, an API token minted like `mlgate token create`, and a browser session obtained from the
//! sign-in page, each resolving to the same principal; and admin changes made through another
//! store handle (the CLI process) reaching the running authenticator.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use http::{Request, StatusCode, header};
use mlgate::authenticate::{AuthSettings, Authenticator, token};
use mlgate::error::AuthFailureKind;
use mlgate::identity::AuthMethod;
use mlgate::portal::{self, PortalState};
use mlgate::store::{AttachTarget, Store, StoreConfig, password};
use tower::ServiceExt;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"mlflow:Get*","Resource":"*"}]}"#;

fn parts(method: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = Request::builder()
        .method(method)
        .uri("/api/2.0/mlflow/experiments/get?experiment_id=0");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

#[tokio::test]
async fn basic_token_and_session_give_the_same_principal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store
        .create_user(
            None,
            "alice",
            Some(password::hash("correct horse").unwrap()),
            BTreeMap::from([("team".into(), "ml".into())]),
        )
        .await
        .unwrap();
    store.create_group(None, "readers").await.unwrap();
    store.add_member(None, "readers", "alice").await.unwrap();
    store.put_policy("readers", POLICY).await.unwrap();
    store
        .attach_policy("readers", None, AttachTarget::Group("readers"))
        .await
        .unwrap();
    let auth = Authenticator::new(store.clone(), AuthSettings::default());

    // HTTP Basic.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:correct horse")
    );
    let by_basic = auth
        .authenticate(&parts("GET", &[("authorization", &basic)]), false)
        .await
        .unwrap()
        .unwrap();

    // API token.
    let minted = token::mint();
    store
        .insert_token(None, "alice", &minted.id, "ci", &minted.secret_sha256, None)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", minted.token);
    let by_token = auth
        .authenticate(&parts("GET", &[("authorization", &bearer)]), false)
        .await
        .unwrap()
        .unwrap();

    // Browser session from the sign-in page.
    let login = Request::post("/_mlgate/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "localhost:5000")
        .header("origin", "http://localhost:5000")
        .body(Body::from("username=alice&password=correct+horse&next=%2F"))
        .unwrap();
    let resp = portal::router(PortalState::new(auth.clone()))
        .oneshot(login)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let by_session = auth
        .authenticate(&parts("GET", &[("cookie", &cookie)]), false)
        .await
        .unwrap()
        .unwrap();

    for (p, m) in [
        (&by_basic, AuthMethod::Basic),
        (&by_token, AuthMethod::Token),
        (&by_session, AuthMethod::Session),
    ] {
        assert_eq!(p.arn, "arn:aws:iam::111111111111:user/alice");
        assert_eq!(p.groups, vec!["readers"]);
        assert_eq!(p.tags["team"], "ml");
        assert_eq!(p.auth_method, m);
        let policies = store.effective_policies(p).await.unwrap();
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].name, "readers");
    }
    assert_eq!(
        auth.passwords().kdf_runs(),
        1,
        "Basic and sign-in share one argon2 run"
    );

    // All three at once: refused, whatever they are.
    let e = auth
        .authenticate(
            &parts("GET", &[("authorization", &bearer), ("cookie", &cookie)]),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Conflicting);
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_changes_from_another_process_reach_the_server_within_the_cache_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(300);
    let server_store = Store::open_with(
        dir.path(),
        StoreConfig {
            cache_ttl: ttl,
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap();
    let auth = Authenticator::new(server_store, AuthSettings::default());
    // The admin CLI is a separate process: a separate store handle with its own caches.
    let cli = Store::open(dir.path()).await.unwrap();
    cli.create_user(
        None,
        "bob",
        Some(password::hash("first password").unwrap()),
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let minted = token::mint();
    cli.insert_token(None, "bob", &minted.id, "t", &minted.secret_sha256, None)
        .await
        .unwrap();

    let basic = |pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("bob:{pw}"))
        )
    };
    let bearer = format!("Bearer {}", minted.token);
    let check = |h: String| {
        let auth = auth.clone();
        async move {
            auth.authenticate(&parts("GET", &[("authorization", &h)]), false)
                .await
        }
    };
    check(basic("first password")).await.unwrap().unwrap();
    check(bearer.clone()).await.unwrap().unwrap();

    cli.revoke_token(&minted.id).await.unwrap();
    cli.set_password(
        None,
        "bob",
        Some(password::hash("second password").unwrap()),
    )
    .await
    .unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;

    let e = check(bearer).await.unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
    let e = check(basic("first password")).await.unwrap_err();
    assert_eq!(
        e.kind,
        AuthFailureKind::Invalid,
        "the cached success must not outlive the change"
    );
    check(basic("second password")).await.unwrap().unwrap();

    cli.set_disabled(None, "bob", true).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let e = check(basic("second password")).await.unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
}
