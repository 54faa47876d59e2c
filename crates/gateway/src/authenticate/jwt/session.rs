//! Server-side state of OIDC browser sign-in: the pre-login state (state, nonce, PKCE verifier)
//! and the sessions of federated users. The session cookie is the built-in one
//! ([`crate::authenticate::session`]); its row lives in `oidc_sessions` because a federated user
//! has no `users` row. Lifetime and idle timeout are the built-in sessions' settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::authenticate::session::{NewSessionId, mint_session_id};
use crate::authenticate::token::sha256_hex;
use crate::authenticate::{AuthFailure, AuthFailureKind, Authenticator};
use crate::identity::{AuthMethod, Principal, PrincipalKind};
use crate::store::{Store, StoreError, now};

/// How long a started sign-in may take at the provider.
pub const LOGIN_TTL_SECS: i64 = 600;
/// At most this many sign-ins may be in progress at once (all providers together).
pub const MAX_PENDING_LOGINS: i64 = 10_000;

/// What is kept of a federated principal in its session.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPrincipal {
    arn: String,
    account: String,
    name: String,
    provider: String,
    groups: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// The pre-login state of one browser's sign-in.
#[derive(Clone, Debug)]
pub struct LoginState {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
}

fn store_failure(e: &StoreError) -> AuthFailure {
    tracing::error!(error = %e, "identity store unavailable (OIDC sessions)");
    AuthFailure::new(
        Some(AuthMethod::Session),
        AuthFailureKind::Unavailable,
        "the identity store is unavailable; try again",
    )
}

/// Saves the pre-login state under SHA-256(`cookie_value`) and removes expired ones.
pub async fn save_login(
    store: &Store,
    cookie_value: &str,
    s: &LoginState,
) -> Result<(), StoreError> {
    let t = now();
    sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= ?")
        .bind(t)
        .execute(store.pool())
        .await?;
    // Unauthenticated clients create these rows: cap them so they cannot fill the disk.
    let (pending,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oidc_logins")
        .fetch_one(store.pool())
        .await?;
    if pending >= MAX_PENDING_LOGINS {
        return Err(StoreError::Invalid(
            "too many sign-ins in progress; try again in a few minutes".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO oidc_logins (id_sha256, provider, state, nonce, pkce_verifier, next, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(sha256_hex(cookie_value))
    .bind(&s.provider)
    .bind(&s.state)
    .bind(&s.nonce)
    .bind(&s.pkce_verifier)
    .bind(&s.next)
    .bind(t)
    .bind(t + LOGIN_TTL_SECS)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Takes (reads and deletes: single use) the pre-login state of this cookie, if not expired.
pub async fn take_login(
    store: &Store,
    cookie_value: &str,
) -> Result<Option<LoginState>, StoreError> {
    let hash = sha256_hex(cookie_value);
    let row: Option<(String, String, String, String, String, i64)> = sqlx::query_as(
        "DELETE FROM oidc_logins WHERE id_sha256 = ? \
         RETURNING provider, state, nonce, pkce_verifier, next, expires_at",
    )
    .bind(&hash)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.and_then(
        |(provider, state, nonce, pkce_verifier, next, expires_at)| {
            (now() < expires_at).then_some(LoginState {
                provider,
                state,
                nonce,
                pkce_verifier,
                next,
            })
        },
    ))
}

/// Creates a session for a federated principal; returns the cookie value.
pub async fn create(auth: &Authenticator, p: &Principal) -> Result<NewSessionId, AuthFailure> {
    let PrincipalKind::FederatedUser { provider } = &p.kind else {
        return Err(AuthFailure::new(
            Some(AuthMethod::Session),
            AuthFailureKind::Invalid,
            "not a federated principal",
        ));
    };
    let stored = StoredPrincipal {
        arn: p.arn.clone(),
        account: p.account.clone(),
        name: p.name.clone(),
        provider: provider.clone(),
        groups: p.groups.clone(),
        tags: p.tags.clone(),
    };
    let json = serde_json::to_string(&stored).unwrap_or_default();
    let settings = auth.settings();
    let lifetime = i64::try_from(settings.session_lifetime.as_secs()).unwrap_or(i64::MAX);
    let idle = i64::try_from(settings.session_idle_timeout.as_secs()).unwrap_or(i64::MAX);
    let t = now();
    let sid = mint_session_id();
    let pool = auth.store().pool();
    async {
        sqlx::query("DELETE FROM oidc_sessions WHERE expires_at <= ? OR last_seen_at <= ?")
            .bind(t)
            .bind(t.saturating_sub(idle))
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO oidc_sessions (id_sha256, provider, principal, created_at, expires_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&sid.id_sha256)
        .bind(provider)
        .bind(&json)
        .bind(t)
        .bind(t.saturating_add(lifetime))
        .bind(t)
        .execute(pool)
        .await?;
        Ok::<_, StoreError>(())
    }
    .await
    .map_err(|e| store_failure(&e))?;
    Ok(sid)
}

/// The federated principal of the session with this id hash, with the same lifetime and idle
/// rules as built-in sessions.
pub async fn authenticate(auth: &Authenticator, hash: &str) -> Result<Principal, AuthFailure> {
    let fail = |kind, reason: &str| AuthFailure::new(Some(AuthMethod::Session), kind, reason);
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT principal, expires_at, last_seen_at FROM oidc_sessions WHERE id_sha256 = ?",
    )
    .bind(hash)
    .fetch_optional(auth.store().pool())
    .await
    .map_err(|e| store_failure(&StoreError::from(e)))?;
    let Some((json, expires_at, last_seen_at)) = row else {
        return Err(fail(
            AuthFailureKind::Invalid,
            "session is not valid; sign in again",
        ));
    };
    let t = now();
    if t >= expires_at {
        return Err(fail(
            AuthFailureKind::Expired,
            "session expired; sign in again",
        ));
    }
    let idle = i64::try_from(auth.settings().session_idle_timeout.as_secs()).unwrap_or(i64::MAX);
    if t.saturating_sub(last_seen_at) >= idle {
        return Err(fail(
            AuthFailureKind::Expired,
            "session ended after inactivity; sign in again",
        ));
    }
    let s: StoredPrincipal = serde_json::from_str(&json).map_err(|_| {
        fail(
            AuthFailureKind::Invalid,
            "session is not valid; sign in again",
        )
    })?;
    if t - last_seen_at >= 60 {
        let pool = auth.store().pool().clone();
        let h = hash.to_owned();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = sqlx::query(
                    "UPDATE oidc_sessions SET last_seen_at = ? WHERE id_sha256 = ? AND last_seen_at < ?",
                )
                .bind(t)
                .bind(h)
                .bind(t)
                .execute(&pool)
                .await;
            });
        }
    }
    Ok(Principal {
        arn: s.arn,
        account: s.account,
        name: s.name,
        kind: PrincipalKind::FederatedUser {
            provider: s.provider,
        },
        groups: s.groups,
        tags: s.tags,
        auth_method: AuthMethod::Session,
    })
}

/// The provider of the federated session with this cookie value, if it is one.
pub async fn provider_of(store: &Store, cookie_value: &str) -> Option<String> {
    sqlx::query_as::<_, (String,)>("SELECT provider FROM oidc_sessions WHERE id_sha256 = ?")
        .bind(sha256_hex(cookie_value))
        .fetch_optional(store.pool())
        .await
        .ok()
        .flatten()
        .map(|r| r.0)
}

/// Deletes the federated session with this id hash. Returns whether it existed.
pub async fn delete(store: &Store, hash: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM oidc_sessions WHERE id_sha256 = ?")
        .bind(hash)
        .execute(store.pool())
        .await?;
    Ok(r.rows_affected() > 0)
}
