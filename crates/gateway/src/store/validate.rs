//! Naming rules. Names end up inside ARNs and policy variables, so they follow IAM's character
//! sets: no `/`, `:`, `*`, `?`, `$` or whitespace can sneak a wildcard or a path into an ARN.

use super::{StoreError, StoreResult};

fn iam_name(kind: &str, name: &str, max: usize) -> StoreResult<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.len() > max || !name.chars().all(ok_char) {
        return Err(StoreError::Invalid(format!(
            "invalid {kind} name {name:?}: use 1 to {max} characters from A-Z a-z 0-9 + = , . @ _ -"
        )));
    }
    Ok(())
}

/// IAM user names: 1–64 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_user_name(name: &str) -> StoreResult<()> {
    iam_name("user", name, 64)
}

/// IAM group names: 1–128 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_group_name(name: &str) -> StoreResult<()> {
    iam_name("group", name, 128)
}

/// IAM role names: 1–64 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_role_name(name: &str) -> StoreResult<()> {
    iam_name("role", name, 64)
}

/// IAM policy names: 1–128 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_policy_name(name: &str) -> StoreResult<()> {
    iam_name("policy", name, 128)
}

/// Account ids are exactly 12 decimal digits.
pub fn validate_account_id(id: &str) -> StoreResult<()> {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::Invalid(format!(
            "invalid account id {id:?}: must be 12 digits"
        )));
    }
    Ok(())
}

/// Account names (aliases): 1–63 characters of `[a-z0-9-]`, not starting or ending with `-`,
/// and not all digits (so they can never be mistaken for an account id).
pub fn validate_account_name(name: &str) -> StoreResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(StoreError::Invalid(format!(
            "invalid account name {name:?}: use 1 to 63 characters from a-z 0-9 -, not all digits"
        )));
    }
    Ok(())
}

/// Principal tags (`aws:PrincipalTag/<key>`): keys 1–128 characters of letters, digits, spaces
/// and `_ . : / = + - @`; values up to 256 characters, no control characters.
pub fn validate_tag(key: &str, value: &str) -> StoreResult<()> {
    let key_ok = !key.is_empty()
        && key.chars().count() <= 128
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c));
    if !key_ok {
        return Err(StoreError::Invalid(format!(
            "invalid tag key {key:?}: use 1 to 128 letters, digits, spaces or _ . : / = + - @"
        )));
    }
    if value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "invalid value for tag {key:?}: at most 256 characters, no control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_break_arns_are_refused() {
        for bad in ["", "a/b", "a:b", "a*", "a?", "${aws:username}", "a b", "ü"] {
            assert!(validate_user_name(bad).is_err(), "{bad:?} accepted");
            assert!(validate_group_name(bad).is_err(), "{bad:?} accepted");
            assert!(validate_policy_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["mlflow-admin", "alice@example.com", "a.b_c+d=e,f"] {
            validate_user_name(good).unwrap();
        }
        assert!(validate_user_name(&"a".repeat(65)).is_err());
        validate_group_name(&"a".repeat(128)).unwrap();
    }

    #[test]
    fn accounts() {
        validate_account_id("111111111111").unwrap();
        assert!(validate_account_id("11111111111").is_err());
        assert!(validate_account_id("11111111111a").is_err());
        validate_account_name("data-science").unwrap();
        assert!(validate_account_name("123").is_err());
        assert!(validate_account_name("Data").is_err());
        assert!(validate_account_name("-x").is_err());
    }

    #[test]
    fn tags() {
        validate_tag("team", "ml platform").unwrap();
        validate_tag("cost-center/id", "").unwrap();
        assert!(validate_tag("", "x").is_err());
        assert!(validate_tag("a*", "x").is_err());
        assert!(validate_tag("k", "line\nbreak").is_err());
    }
}
