//! Password hashing: argon2id with the argon2 crate's defaults (m = 19 MiB, t = 2, p = 1, the
//! OWASP minimum), PHC strings at rest. Both functions are slow (~25 ms) and blocking: call them
//! from `spawn_blocking`, and on the request path only through
//! [`crate::authenticate::PasswordVerifier`], which caches results and bounds concurrency.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::werkzeug::{self, WerkzeugHash};
use super::{StoreError, StoreResult};

/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (bounds the KDF input; argon2 itself has no practical limit).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Checks the length rules. The error never contains the password.
pub fn check_password_rules(password: &str) -> StoreResult<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "password too short: at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "password too long: at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

/// Hashes a password into an argon2id PHC string with a fresh random salt. Blocking.
pub fn hash(password: &str) -> StoreResult<String> {
    check_password_rules(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Password(e.to_string()))
}

/// Verifies a password against a stored PHC string, or an imported Werkzeug hash
/// ([`werkzeug`]). Blocking. A malformed stored hash verifies as false.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    if werkzeug::is_werkzeug(phc) {
        return WerkzeugHash::parse(phc).is_ok_and(|hash| hash.verify(password));
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// [`hash`] on the blocking thread pool.
pub async fn hash_async(password: String) -> StoreResult<String> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| StoreError::Password(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse!", &h));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn rules() {
        assert!(hash("short").is_err());
        let e = hash("short").unwrap_err().to_string();
        assert!(!e.contains("short\""), "{e}");
        assert!(check_password_rules(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
    }
}
