//! HTTP Basic with a built-in user's password (`MLFLOW_TRACKING_USERNAME` / `_PASSWORD`).
//!
//! The user name is `name` (a user of the default account) or `<account>/name`, the account
//! given by its 12-digit id or its name (IAM user names cannot contain `/`). The password check
//! goes through [`super::PasswordVerifier`]: argon2 runs once per (user, password) and the
//! success is cached, so Basic costs about an HMAC per request.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Authenticator, PasswordFailure};
use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal};
use crate::store::UserRecord;
use crate::store::werkzeug;

const METHOD: Option<AuthMethod> = Some(AuthMethod::Basic);

fn malformed(reason: &str) -> AuthFailure {
    AuthFailure::new(METHOD, AuthFailureKind::Malformed, reason)
}

/// Decodes the Basic payload into (user, password).
pub fn decode(payload: &str) -> Result<(String, String), AuthFailure> {
    // Accept missing padding, which some clients omit.
    let mut padded = payload.trim().to_owned();
    while !padded.len().is_multiple_of(4) {
        padded.push('=');
    }
    let bytes = STANDARD
        .decode(padded.as_bytes())
        .map_err(|_| malformed("HTTP Basic credentials are not valid base64"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| malformed("HTTP Basic credentials are not UTF-8"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| malformed("HTTP Basic credentials must be 'user:password'"))?;
    if user.is_empty() {
        return Err(malformed("HTTP Basic user name is empty"));
    }
    Ok((user.to_owned(), password.to_owned()))
}

/// Splits `account/name` (account by id or name) from a plain `name`.
pub fn split_user_ref(user: &str) -> (Option<&str>, &str) {
    match user.split_once('/') {
        Some((acct, name)) => (Some(acct), name),
        None => (None, user),
    }
}

/// Looks the user up and checks the password; shared with the sign-in page, which passes
/// its own method for the failure.
pub(crate) async fn verify_password(
    auth: &Authenticator,
    user_ref: &str,
    password: &str,
    ip: Option<IpAddr>,
    method: AuthMethod,
) -> Result<std::sync::Arc<UserRecord>, AuthFailure> {
    let store = auth.store();
    let (acct, name) = split_user_ref(user_ref);
    let account_id = match acct {
        None => Some(store.default_account_id().to_owned()),
        Some(a) => store
            .account_id(a)
            .await
            .map_err(|e| AuthFailure::store(method, &e))?,
    };
    let user = match &account_id {
        Some(a) => store
            .user_by_name(a, name)
            .await
            .map_err(|e| AuthFailure::store(method, &e))?,
        None => None,
    };
    let subject = format!("{}/{}", account_id.as_deref().unwrap_or("?"), name);
    let fail = |kind, reason: &str| AuthFailure::new(Some(method), kind, reason);
    match auth
        .passwords()
        .check(user.as_deref(), &subject, password, ip)
        .await
    {
        Ok(()) => {
            let user = user.expect("a successful check has a user");
            if user.password_hash().is_some_and(werkzeug::is_werkzeug) {
                // An imported hash: replaced by argon2id now that the password is known.
                if let Err(error) = store.upgrade_password_hash(&user, password).await {
                    tracing::warn!(%error, user = %user.name, "imported password hash kept");
                }
            }
            Ok(user)
        }
        Err(PasswordFailure::Invalid) => Err(fail(
            AuthFailureKind::Invalid,
            "invalid user name or password",
        )),
        Err(PasswordFailure::RateLimited) => Err(fail(
            AuthFailureKind::RateLimited,
            "too many failed sign-in attempts; try again later",
        )),
        Err(PasswordFailure::Busy) => Err(fail(
            AuthFailureKind::Unavailable,
            "password checks are saturated; try again",
        )),
    }
}

pub(super) async fn authenticate(
    auth: &Authenticator,
    payload: &str,
    ip: Option<IpAddr>,
) -> Result<Principal, AuthFailure> {
    let (user, password) = decode(payload)?;
    let rec = verify_password(auth, &user, &password, ip, AuthMethod::Basic).await?;
    Ok(rec.principal(AuthMethod::Basic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let b = |s: &str| STANDARD.encode(s);
        assert_eq!(
            decode(&b("alice:pa:ss")).unwrap(),
            ("alice".into(), "pa:ss".into())
        );
        // Missing padding is tolerated.
        let unpadded = b("ab:c").trim_end_matches('=').to_owned();
        assert_eq!(decode(&unpadded).unwrap(), ("ab".into(), "c".into()));
        assert_eq!(decode("!!!").unwrap_err().kind, AuthFailureKind::Malformed);
        assert_eq!(
            decode(&b("no-colon")).unwrap_err().kind,
            AuthFailureKind::Malformed
        );
        assert_eq!(
            decode(&b(":pw")).unwrap_err().kind,
            AuthFailureKind::Malformed
        );
        let e = decode(&b("no-colon-secret")).unwrap_err();
        assert!(!e.reason.contains("secret"));
    }

    #[test]
    fn user_refs() {
        assert_eq!(split_user_ref("alice"), (None, "alice"));
        assert_eq!(
            split_user_ref("222222222222/bob"),
            (Some("222222222222"), "bob")
        );
        assert_eq!(
            split_user_ref("data-science/bob"),
            (Some("data-science"), "bob")
        );
    }
}
