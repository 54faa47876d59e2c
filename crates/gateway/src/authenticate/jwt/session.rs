//! OIDC browser sign-in, the authenticator's side: the pre-login state (state, nonce, PKCE
//! verifier) is kept under the SHA-256 of the `mlgate_oidc` cookie, and a federated user's
//! session is a browser session like a built-in user's ([`crate::authenticate::session`]:
//! same cookie, same lifetime and idle rule), holding the principal as of sign-in because a
//! federated user has no `users` row. Storage and the session rule are the store's.

use crate::authenticate::Authenticator;
use crate::authenticate::session::NewSessionId;
use crate::authenticate::token::sha256_hex;
use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal, PrincipalKind};
use crate::store::{LoginState, SessionOwner, Store, StoreError};

/// Saves the pre-login state of the browser holding `cookie_value`.
pub async fn save_login(
    store: &Store,
    cookie_value: &str,
    s: &LoginState,
) -> Result<(), StoreError> {
    store.save_login(&sha256_hex(cookie_value), s).await
}

/// Takes (reads and deletes: single use) the pre-login state of this cookie, if not expired.
pub async fn take_login(
    store: &Store,
    cookie_value: &str,
) -> Result<Option<LoginState>, StoreError> {
    store.take_login(&sha256_hex(cookie_value)).await
}

/// Creates a session for a federated principal; returns the cookie value.
pub async fn create(auth: &Authenticator, p: &Principal) -> Result<NewSessionId, AuthFailure> {
    if !matches!(p.kind, PrincipalKind::FederatedUser { .. }) {
        return Err(AuthFailure::new(
            Some(AuthMethod::Session),
            AuthFailureKind::Invalid,
            "not a federated principal",
        ));
    }
    auth.start_session(SessionOwner::Federated(p.clone())).await
}

/// The provider of the federated session with this cookie value, if it is one.
pub async fn provider_of(store: &Store, cookie_value: &str) -> Option<String> {
    let session = store
        .session_by_hash(&sha256_hex(cookie_value))
        .await
        .ok()??;
    match &session.owner {
        SessionOwner::Federated(Principal {
            kind: PrincipalKind::FederatedUser { provider },
            ..
        }) => Some(provider.clone()),
        _ => None,
    }
}
