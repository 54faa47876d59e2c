//! The pre-login state of OIDC browser sign-in (state, nonce, PKCE verifier, where to go
//! next), kept under the SHA-256 of the browser's `mlgate_oidc` cookie. Single use.

use super::backend::SessionQueries;
use super::model::LoginState;
use super::{Store, StoreError, StoreResult, now};

/// How long a started sign-in may take at the provider.
pub const LOGIN_TTL_SECS: i64 = 600;
/// At most this many sign-ins may be in progress at once (all providers together).
pub const MAX_PENDING_LOGINS: i64 = 10_000;

impl Store {
    /// Saves the pre-login state under `id_sha256` and removes expired ones.
    pub async fn save_login(&self, id_sha256: &str, login: &LoginState) -> StoreResult<()> {
        let t = now();
        read_db!(self, |c| async {
            c.delete_expired_logins(t).await?;
            // Unauthenticated clients create these rows: cap them so they cannot fill the disk.
            if c.count_logins().await? >= MAX_PENDING_LOGINS {
                return Err(StoreError::Invalid(
                    "too many sign-ins in progress; try again in a few minutes".into(),
                ));
            }
            c.insert_login(id_sha256, login, t, t + LOGIN_TTL_SECS)
                .await
        }
        .await)
    }

    /// Takes (reads and deletes: single use) the pre-login state saved under `id_sha256`, if
    /// not expired.
    pub async fn take_login(&self, id_sha256: &str) -> StoreResult<Option<LoginState>> {
        let taken = read_db!(self, |c| c.take_login(id_sha256).await)?;
        Ok(taken.and_then(|(login, expires_at)| (now() < expires_at).then_some(login)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_store;
    use super::*;

    #[tokio::test]
    async fn login_state_is_single_use() {
        let (_d, store) = temp_store().await;
        let login = LoginState {
            provider: "corp".into(),
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            next: "/".into(),
        };
        store.save_login("h", &login).await.unwrap();
        assert_eq!(store.take_login("h").await.unwrap(), Some(login));
        assert_eq!(store.take_login("h").await.unwrap(), None);
        assert_eq!(store.take_login("other").await.unwrap(), None);
    }
}
