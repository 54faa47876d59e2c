//! mlgate API tokens, sent as `Authorization: Bearer` (`MLFLOW_TRACKING_TOKEN`).
//!
//! Format: `mlg_<id>_<secret>`: `id` is 16 hex digits (public, the database key), `secret` is
//! 64 hex digits (256 bits from the OS generator). Only SHA-256(secret) is stored: the secret has
//! full entropy, so a slow KDF would add nothing but latency. A token is looked up by id (cached),
//! its digest compared in constant time, then revocation, expiry and the user's state are checked.
//! The distinctive `mlg_` prefix keeps tokens apart from JWTs (`a.b.c`) and makes leaked tokens
//! easy to find with secret scanners.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Authenticator;
use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal};
use crate::store::now;

pub const TOKEN_PREFIX: &str = "mlg_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// A freshly minted token. The full token is shown to its owner once and never stored.
pub struct MintedToken {
    /// The whole token, `mlg_<id>_<secret>`: print it once.
    pub token: String,
    pub id: String,
    /// Hex SHA-256 of the secret part: what the store keeps.
    pub secret_sha256: String,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS random number generator");
    hex::encode(buf)
}

pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// Mints a new token (8 random bytes of id, 32 random bytes of secret).
pub fn mint() -> MintedToken {
    let id = random_hex(ID_HEX / 2);
    let secret = random_hex(SECRET_HEX / 2);
    MintedToken {
        token: format!("{TOKEN_PREFIX}{id}_{secret}"),
        secret_sha256: sha256_hex(&secret),
        id,
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a token into (id, secret) if it has the right shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (is_lower_hex(id, ID_HEX) && is_lower_hex(secret, SECRET_HEX)).then_some((id, secret))
}

const METHOD: Option<AuthMethod> = Some(AuthMethod::Token);

fn invalid() -> AuthFailure {
    AuthFailure::new(METHOD, AuthFailureKind::Invalid, "invalid API token")
}

pub(super) async fn authenticate(
    auth: &Authenticator,
    value: &str,
) -> Result<Principal, AuthFailure> {
    let (id, secret) = parse(value).ok_or_else(|| {
        AuthFailure::new(
            METHOD,
            AuthFailureKind::Invalid,
            "malformed mlgate API token",
        )
    })?;
    let store = auth.store();
    let rec = store
        .token_by_id(id)
        .await
        .map_err(|e| AuthFailure::store(AuthMethod::Token, &e))?
        .ok_or_else(invalid)?;
    let digest = sha256_hex(secret);
    if !bool::from(digest.as_bytes().ct_eq(rec.secret_sha256().as_bytes())) {
        return Err(invalid());
    }
    // Only a holder of the secret learns about revocation and expiry.
    if rec.revoked_at.is_some() {
        return Err(AuthFailure::new(
            METHOD,
            AuthFailureKind::Invalid,
            format!("API token {id} has been revoked"),
        ));
    }
    let t = now();
    if rec.is_expired_at(t) {
        return Err(AuthFailure::new(
            METHOD,
            AuthFailureKind::Expired,
            format!("API token {id} has expired"),
        ));
    }
    let user = store
        .user_by_id(&rec.user_id)
        .await
        .map_err(|e| AuthFailure::store(AuthMethod::Token, &e))?
        .ok_or_else(invalid)?;
    if user.disabled {
        return Err(AuthFailure::new(
            METHOD,
            AuthFailureKind::Invalid,
            "the token's user is disabled",
        ));
    }
    let s = store.clone();
    let tid = id.to_owned();
    auth.throttled_touch(format!("token:{id}"), async move {
        s.touch_token(&tid, t).await
    });
    Ok(user.principal(AuthMethod::Token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_and_parse() {
        let m = mint();
        let (id, secret) = parse(&m.token).unwrap();
        assert_eq!(id, m.id);
        assert_eq!(sha256_hex(secret), m.secret_sha256);
        assert_eq!(secret.len(), 64, "256-bit secret");
        assert!(!format!("{m:?}").contains(secret));
        assert_ne!(mint().token, m.token);
    }

    #[test]
    fn malformed_tokens() {
        let m = mint();
        assert!(parse(&m.token[..m.token.len() - 1]).is_none());
        assert!(parse(&m.token.replace("mlg_", "mlx_")).is_none());
        assert!(parse(&m.token.to_uppercase()).is_none());
        assert!(parse("mlg_").is_none());
        assert!(parse("mlg_0123456789abcdef").is_none());
    }
}
