//! The authenticate stage against a real (temporary) store.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::test_support::parts;
use super::*;
use crate::identity::PrincipalKind;
use crate::store::{SessionLimits, Store, password};

async fn setup() -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let tags = BTreeMap::from([("team".to_owned(), "research".to_owned())]);
    store
        .create_user(
            None,
            "alice",
            Some(password::hash("correct horse").unwrap()),
            tags,
        )
        .await
        .unwrap();
    store.create_group(None, "readers").await.unwrap();
    store.create_group(None, "approvers").await.unwrap();
    store.add_member(None, "readers", "alice").await.unwrap();
    store.add_member(None, "approvers", "alice").await.unwrap();
    (dir, Authenticator::new(store, AuthSettings::default()))
}

fn basic(user: &str, pw: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pw}")))
}

async fn auth_get(
    a: &Authenticator,
    headers: &[(&str, &str)],
) -> Result<Option<Principal>, AuthFailure> {
    a.authenticate(
        &parts("GET", "/api/2.0/mlflow/experiments/search", headers),
        false,
    )
    .await
}

#[tokio::test]
async fn no_credential_is_none() {
    let (_d, a) = setup().await;
    assert_eq!(auth_get(&a, &[]).await.unwrap(), None);
    // An unrelated cookie is not a credential.
    assert_eq!(
        auth_get(&a, &[("cookie", "theme=dark")]).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn basic_verifies_once_then_serves_from_cache() {
    let (_d, a) = setup().await;
    let h = basic("alice", "correct horse");
    for _ in 0..25 {
        let p = auth_get(&a, &[("authorization", &h)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.arn, "arn:aws:iam::111111111111:user/alice");
        assert_eq!(p.account, "111111111111");
        assert_eq!(p.name, "alice");
        assert_eq!(p.kind, PrincipalKind::User);
        assert_eq!(p.groups, vec!["approvers", "readers"]);
        assert_eq!(p.tags["team"], "research");
        assert_eq!(p.auth_method, AuthMethod::Basic);
    }
    assert_eq!(
        a.passwords().kdf_runs(),
        1,
        "argon2 must run once, not per request"
    );

    // Account-qualified user names work, by id and by name.
    let p = auth_get(
        &a,
        &[(
            "authorization",
            &basic("111111111111/alice", "correct horse"),
        )],
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(p.name, "alice");
    let p = auth_get(
        &a,
        &[("authorization", &basic("mlflow/alice", "correct horse"))],
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(p.name, "alice");
}

#[tokio::test]
async fn basic_failures() {
    let (_d, a) = setup().await;
    let e = auth_get(&a, &[("authorization", &basic("alice", "wrong horse"))])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::Invalid, 401)
    );
    assert_eq!(e.method, Some(AuthMethod::Basic));
    assert_eq!(e.error_code(), "UNAUTHENTICATED");
    assert!(!e.reason.contains("wrong horse"));

    let e = auth_get(&a, &[("authorization", &basic("nobody", "correct horse"))])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
    let e = auth_get(
        &a,
        &[("authorization", &basic("nowhere/alice", "correct horse"))],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);

    let e = auth_get(&a, &[("authorization", "Basic %%%")])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::Malformed, 400)
    );
}

#[tokio::test]
async fn password_change_and_disable_take_effect_at_once() {
    let (_d, a) = setup().await;
    let h = basic("alice", "correct horse");
    auth_get(&a, &[("authorization", &h)])
        .await
        .unwrap()
        .unwrap();

    a.store()
        .set_password(
            None,
            "alice",
            Some(password::hash("battery staple").unwrap()),
        )
        .await
        .unwrap();
    let e = auth_get(&a, &[("authorization", &h)]).await.unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
    let h2 = basic("alice", "battery staple");
    auth_get(&a, &[("authorization", &h2)])
        .await
        .unwrap()
        .unwrap();

    a.store().set_disabled(None, "alice", true).await.unwrap();
    let e = auth_get(&a, &[("authorization", &h2)]).await.unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
    a.store().set_disabled(None, "alice", false).await.unwrap();
    auth_get(&a, &[("authorization", &h2)])
        .await
        .unwrap()
        .unwrap();
}

async fn new_token(a: &Authenticator, expires_at: Option<i64>) -> token::MintedToken {
    let m = token::mint();
    a.store()
        .insert_token(None, "alice", &m.id, "test", &m.secret_sha256, expires_at)
        .await
        .unwrap();
    m
}

#[tokio::test]
async fn api_tokens() {
    let (_d, a) = setup().await;
    let m = new_token(&a, Some(crate::store::now() + 3600)).await;
    let bearer = format!("Bearer {}", m.token);
    let p = auth_get(&a, &[("authorization", &bearer)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.arn, "arn:aws:iam::111111111111:user/alice");
    assert_eq!(p.auth_method, AuthMethod::Token);
    assert_eq!(p.groups.len(), 2);

    // Tampered secret (last digit changed), same id: refused, and the reason holds no secret.
    let mut tampered = m.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let e = auth_get(&a, &[("authorization", &format!("Bearer {tampered}"))])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::Invalid, 401)
    );
    assert!(!e.reason.contains(&tampered[20..]));

    // Unknown id.
    let other = token::mint();
    let e = auth_get(&a, &[("authorization", &format!("Bearer {}", other.token))])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);

    // Malformed mlg_ token, JWT, random opaque string.
    let e = auth_get(&a, &[("authorization", "Bearer mlg_nothex_zz")])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
    let e = auth_get(&a, &[("authorization", "Bearer eyJhbGciOi.eyJzdWIi.c2ln")])
        .await
        .unwrap_err();
    assert_eq!(
        (e.method, e.kind),
        (Some(AuthMethod::Jwt), AuthFailureKind::Unsupported)
    );
    let e = auth_get(&a, &[("authorization", "Bearer opaque-thing")])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);

    // Revocation is honoured (this handle clears its caches on write).
    a.store().revoke_token(&m.id).await.unwrap();
    let e = auth_get(&a, &[("authorization", &bearer)])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
    assert!(e.reason.contains("revoked"));
}

#[tokio::test]
async fn expired_tokens_and_disabled_users() {
    let (_d, a) = setup().await;
    let expired = new_token(&a, Some(crate::store::now() - 1)).await;
    let e = auth_get(
        &a,
        &[("authorization", &format!("Bearer {}", expired.token))],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::Expired, 401)
    );

    let forever = new_token(&a, None).await;
    let h = format!("Bearer {}", forever.token);
    auth_get(&a, &[("authorization", &h)])
        .await
        .unwrap()
        .unwrap();
    a.store().set_disabled(None, "alice", true).await.unwrap();
    let e = auth_get(&a, &[("authorization", &h)]).await.unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
}

#[tokio::test]
async fn token_use_is_recorded() {
    let (_d, a) = setup().await;
    let m = new_token(&a, None).await;
    let h = format!("Bearer {}", m.token);
    auth_get(&a, &[("authorization", &h)])
        .await
        .unwrap()
        .unwrap();
    let mut seen = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let list = a.store().list_tokens(None, Some("alice")).await.unwrap();
        seen = list[0].last_used_at;
        if seen.is_some() {
            break;
        }
    }
    assert!(seen.is_some(), "last_used_at was not written");
}

#[tokio::test]
async fn two_credentials_are_refused() {
    let (_d, a) = setup().await;
    let m = new_token(&a, None).await;
    let (_, sid) = a.login("alice", "correct horse", None).await.unwrap();
    let cookie = format!("mlgate_session={}", sid.cookie_value);
    let b = basic("alice", "correct horse");

    let e = auth_get(&a, &[("authorization", &b), ("cookie", &cookie)])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::Conflicting, 400)
    );
    assert_eq!(e.error_code(), "INVALID_PARAMETER_VALUE");
    assert!(
        e.reason.contains("HTTP Basic") && e.reason.contains("session cookie"),
        "{}",
        e.reason
    );
    assert!(!e.reason.contains(&sid.cookie_value));

    let e = a
        .authenticate(
            &parts(
                "GET",
                "/x?X-Amz-Signature=00&X-Amz-Credential=a",
                &[("authorization", &format!("Bearer {}", m.token))],
            ),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Conflicting);

    // Each alone works.
    auth_get(&a, &[("cookie", &cookie)]).await.unwrap().unwrap();
    auth_get(&a, &[("authorization", &b)])
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn sessions_and_csrf() {
    let (_d, a) = setup().await;
    let (p, sid) = a.login("alice", "correct horse", None).await.unwrap();
    assert_eq!(p.auth_method, AuthMethod::Session);
    let cookie = format!("mlgate_session={}", sid.cookie_value);

    let p = auth_get(&a, &[("cookie", &cookie)]).await.unwrap().unwrap();
    assert_eq!(
        (p.name.as_str(), p.auth_method),
        ("alice", AuthMethod::Session)
    );

    // Unsafe method with the cookie: needs same-origin proof.
    let post = |h: &[(&str, &str)]| parts("POST", "/ajax-api/2.0/mlflow/runs/create", h);
    let e = a
        .authenticate(
            &post(&[("cookie", &cookie), ("host", "mlflow.example")]),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::CrossSite, 403)
    );
    let e = a
        .authenticate(
            &post(&[
                ("cookie", &cookie),
                ("host", "mlflow.example"),
                ("origin", "https://evil.example"),
            ]),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::CrossSite);
    let ok = a
        .authenticate(
            &post(&[
                ("cookie", &cookie),
                ("host", "mlflow.example"),
                ("origin", "http://mlflow.example"),
            ]),
            false,
        )
        .await
        .unwrap();
    assert!(ok.is_some());
    let ok = a
        .authenticate(
            &post(&[("cookie", &cookie), ("sec-fetch-site", "same-origin")]),
            false,
        )
        .await
        .unwrap();
    assert!(ok.is_some());
    // Header credentials are not subject to the CSRF rule.
    let b = basic("alice", "correct horse");
    assert!(
        a.authenticate(&post(&[("authorization", &b)]), false)
            .await
            .unwrap()
            .is_some()
    );

    // Under TLS the plain cookie name is not read at all.
    assert_eq!(
        a.authenticate(&parts("GET", "/", &[("cookie", &cookie)]), true)
            .await
            .unwrap(),
        None
    );
    let secure_cookie = format!("__Host-mlgate_session={}", sid.cookie_value);
    assert!(
        a.authenticate(&parts("GET", "/", &[("cookie", &secure_cookie)]), true)
            .await
            .unwrap()
            .is_some()
    );

    // Sign-out deletes the server-side session.
    assert!(a.logout(&sid.cookie_value).await.unwrap());
    let e = auth_get(&a, &[("cookie", &cookie)]).await.unwrap_err();
    assert_eq!(
        (e.kind, e.method),
        (AuthFailureKind::Invalid, Some(AuthMethod::Session))
    );

    // A made-up cookie value is invalid.
    let e = auth_get(&a, &[("cookie", "mlgate_session=forged")])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Invalid);
}

#[tokio::test]
async fn session_lifetime_and_idle_timeout() {
    let (_d, a) = setup().await;
    let (_, sid) = a.login("alice", "correct horse", None).await.unwrap();
    let cookie = format!("mlgate_session={}", sid.cookie_value);
    let with_session = |session: SessionLimits| {
        Authenticator::new(
            a.store().clone(),
            AuthSettings {
                session,
                ..AuthSettings::default()
            },
        )
    };

    // Idle for at least the idle timeout (here: no idling allowed at all).
    let no_idling = with_session(SessionLimits {
        idle_timeout: Duration::ZERO,
        ..SessionLimits::default()
    });
    let e = auth_get(&no_idling, &[("cookie", &cookie)])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::Expired, 401)
    );
    assert!(e.reason.contains("inactivity"), "{}", e.reason);

    // Active but past its absolute lifetime: a session signed in with no lifetime at all.
    let no_lifetime = with_session(SessionLimits {
        lifetime: Duration::ZERO,
        ..SessionLimits::default()
    });
    let (_, short) = no_lifetime
        .login("alice", "correct horse", None)
        .await
        .unwrap();
    let short_cookie = format!("mlgate_session={}", short.cookie_value);
    let e = auth_get(&a, &[("cookie", &short_cookie)])
        .await
        .unwrap_err();
    assert_eq!(e.kind, AuthFailureKind::Expired);
    assert!(e.reason.contains("expired"), "{}", e.reason);

    // Within both limits.
    auth_get(&a, &[("cookie", &cookie)]).await.unwrap().unwrap();
}

#[tokio::test]
async fn login_uses_the_basic_cache_and_limits() {
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
    settings.password.max_failures_per_user = 2;
    let a = Authenticator::new(store, settings);
    a.login("alice", "correct horse", None).await.unwrap();
    auth_get(&a, &[("authorization", &basic("alice", "correct horse"))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.passwords().kdf_runs(),
        1,
        "login and Basic share the verification cache"
    );

    for pw in ["guess one!", "guess two!"] {
        let e = a.login("alice", pw, None).await.unwrap_err();
        assert_eq!(e.kind, AuthFailureKind::Invalid);
    }
    let e = a.login("alice", "guess three!", None).await.unwrap_err();
    assert_eq!(
        (e.kind, e.status().as_u16()),
        (AuthFailureKind::RateLimited, 429)
    );
}
