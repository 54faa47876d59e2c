//! API tokens of built-in users. The caller mints the id and the SHA-256 of the secret (see
//! [`crate::authenticate::token::MintedToken`]); the secret itself is never stored.

use std::sync::Arc;

use serde_json::json;

use super::backend::IdentityQueries;
use super::journal::{self, Entry, in_account};
use super::model::TokenRecord;
use super::{Store, StoreError, StoreResult, now};

/// Token names: 1 to 128 characters without control characters.
fn check_token_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "token name must be 1 to 128 characters without control characters".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Stores a new token for a user.
    pub async fn insert_token(
        &self,
        account: Option<&str>,
        user: &str,
        token_id: &str,
        name: &str,
        secret_sha256_hex: &str,
        expires_at: Option<i64>,
    ) -> StoreResult<TokenRecord> {
        let u = self.get_user(account, user).await?;
        check_token_name(name)?;
        write_db!(self, |c| async {
            c.insert_token(token_id, &u.id, name, secret_sha256_hex, now(), expires_at)
                .await?;
            let entry = Entry::new("CreateToken", format!("token/{token_id}")).after(json!({
                "user": in_account("user", &u.account_id, &u.name),
                "name": name,
                "expires_at": expires_at,
            }));
            journal::record(c, self.actor(), entry).await?;
            c.token(token_id)
                .await?
                .ok_or_else(|| StoreError::not_found("token", token_id))
        }
        .await)
    }

    /// Tokens, optionally of one user, newest first.
    pub async fn list_tokens(
        &self,
        account: Option<&str>,
        user: Option<&str>,
    ) -> StoreResult<Vec<TokenRecord>> {
        let uid = match user {
            Some(u) => Some(self.get_user(account, u).await?.id),
            None => None,
        };
        read_db!(self, |c| c.list_tokens(uid.as_deref()).await)
    }

    /// Revokes a token. Returns false if it was already revoked.
    pub async fn revoke_token(&self, token_id: &str) -> StoreResult<bool> {
        write_db!(self, |c| async {
            if c.token(token_id).await?.is_none() {
                return Err(StoreError::not_found("token", token_id));
            }
            let revoked = c.revoke_token(token_id, now()).await?;
            if revoked {
                let entry = Entry::new("RevokeToken", format!("token/{token_id}"));
                journal::record(c, self.actor(), entry).await?;
            }
            Ok::<_, StoreError>(revoked)
        }
        .await)
    }

    /// Hot path: a token by its public id, cached for at most [`super::MAX_CACHE_TTL`].
    pub async fn token_by_id(&self, token_id: &str) -> StoreResult<Option<Arc<TokenRecord>>> {
        Ok(self
            .inner
            .tokens
            .try_get_with(token_id.to_owned(), async {
                self.count_load();
                read_db!(self, |c| c.token(token_id).await).map(|t| t.map(Arc::new))
            })
            .await?)
    }

    /// Records that a token was used (the authenticator throttles this to about once a minute
    /// per token). Does not clear the caches.
    pub async fn touch_token(&self, token_id: &str, at: i64) -> StoreResult<()> {
        read_db!(self, |c| c.touch_token(token_id, at).await)
    }
}
