//! `Principal` / `NotPrincipal` of resource (trust) policies.
//!
//! A request principal stands for several identities at once, as in AWS: an IAM user is
//! itself and its account; a role session (`arn:aws:sts::A:assumed-role/R/S`) is itself, its
//! role `R` and its account. `Principal` matches when it names any of those identities;
//! `NotPrincipal` exempts a request only when it names all of them (which is why AWS tells
//! you to list the account, and for sessions the role and session ARNs, in `NotPrincipal`).

use crate::json::{Json, exact, first_duplicate};

/// The principals one `Principal`/`NotPrincipal` element names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrincipalSet {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous requests included.
    everyone: bool,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// A 12-digit account id or `arn:<p>:iam::<account>:root`.
    Account {
        partition: Box<str>,
        account: Box<str>,
    },
    /// `arn:<p>:iam::<account>:role/<path/>name`: the role and all its sessions.
    Role {
        partition: Box<str>,
        account: Box<str>,
        name: Box<str>,
    },
    /// Any other principal ARN, a federated provider or a service name: that exact string.
    Exact(Box<str>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Identity<'a> {
    Anonymous,
    Exact(&'a str),
    Account {
        partition: &'a str,
        account: &'a str,
    },
    Role {
        partition: &'a str,
        account: &'a str,
        name: &'a str,
    },
}

impl PrincipalSet {
    pub(crate) fn parse(value: &Json) -> Result<PrincipalSet, String> {
        let mut set = PrincipalSet {
            everyone: false,
            entries: Vec::new(),
        };
        let members = match value {
            Json::String(s) if s == "*" => {
                set.everyone = true;
                return Ok(set);
            }
            Json::Object(members) if !members.is_empty() => members,
            _ => return Err(
                "must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::111122223333:root\"}"
                    .to_owned(),
            ),
        };
        if let Some(name) = first_duplicate(members, exact) {
            return Err(format!("duplicate principal type {name:?}"));
        }
        for (kind, value) in members {
            let names = principal_names(kind, value)?;
            for name in names {
                match kind.as_str() {
                    "AWS" if name == "*" => set.everyone = true,
                    "AWS" => set.entries.push(parse_aws(name)?),
                    _ if name.is_empty() || name.contains(['*', '?']) => {
                        return Err(format!(
                            "{kind} principal {name:?} must be a name without wildcards"
                        ));
                    }
                    _ => set.entries.push(Entry::Exact(name.into())),
                }
            }
        }
        Ok(set)
    }

    /// `Principal`: does this set name the request's principal (`None`: anonymous)?
    pub(crate) fn names_any_identity(&self, principal: Option<&str>) -> bool {
        identities(principal)
            .into_iter()
            .flatten()
            .any(|identity| self.covers(identity))
    }

    /// `NotPrincipal` exempts the request only when every identity of its principal is named.
    pub(crate) fn names_every_identity(&self, principal: Option<&str>) -> bool {
        identities(principal)
            .into_iter()
            .flatten()
            .all(|identity| self.covers(identity))
    }

    fn covers(&self, identity: Identity<'_>) -> bool {
        self.everyone || self.entries.iter().any(|entry| entry.covers(identity))
    }
}

impl Entry {
    fn covers(&self, identity: Identity<'_>) -> bool {
        match (self, identity) {
            (
                Entry::Account { partition, account },
                Identity::Account {
                    partition: p,
                    account: a,
                },
            ) => **partition == *p && **account == *a,
            (
                Entry::Role {
                    partition,
                    account,
                    name,
                },
                Identity::Role {
                    partition: p,
                    account: a,
                    name: n,
                },
            ) => **partition == *p && **account == *a && **name == *n,
            (Entry::Exact(text), Identity::Exact(other)) => **text == *other,
            _ => false,
        }
    }
}

fn principal_names<'a>(kind: &str, value: &'a Json) -> Result<Vec<&'a str>, String> {
    match kind {
        "AWS" | "Federated" | "Service" => {}
        "CanonicalUser" => {
            return Err("CanonicalUser principals (Amazon S3 only) are not supported".to_owned());
        }
        other => {
            return Err(format!(
                "unknown principal type {other:?} (expected AWS, Federated or Service)"
            ));
        }
    }
    match value {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.as_str()),
                other => Err(format!(
                    "{kind} principals must be strings, found {}",
                    other.type_name()
                )),
            })
            .collect(),
        Json::Array(_) => Err(format!("{kind} principal list must not be empty")),
        other => Err(format!(
            "{kind} principal must be a string or a list of strings, found {}",
            other.type_name()
        )),
    }
}

fn parse_aws(name: &str) -> Result<Entry, String> {
    if name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit()) {
        // AWS stores a bare account id as its root ARN.
        return Ok(Entry::Account {
            partition: "aws".into(),
            account: name.into(),
        });
    }
    let invalid = |why: &str| format!("invalid AWS principal {name:?}: {why}");
    if name.contains(['*', '?']) {
        return Err(invalid(
            "wildcards are only allowed as the whole value \"*\"",
        ));
    }
    let Some(arn) = split_principal_arn(name) else {
        return Err(invalid(
            "expected \"*\", a 12-digit account id or an IAM/STS ARN",
        ));
    };
    if arn.service != "iam" && arn.service != "sts" {
        return Err(invalid("the ARN service must be iam or sts"));
    }
    if arn.partition.is_empty()
        || !arn.region.is_empty()
        || arn.account.is_empty()
        || arn.resource.is_empty()
    {
        return Err(invalid(
            "expected arn:<partition>:<iam|sts>::<account>:<resource>",
        ));
    }
    let (partition, account) = (arn.partition.into(), arn.account.into());
    Ok(match (arn.service, arn.resource.strip_prefix("role/")) {
        ("iam", _) if arn.resource == "root" => Entry::Account { partition, account },
        ("iam", Some(path_and_name)) => match path_and_name.rsplit('/').next() {
            Some(role) if !role.is_empty() => Entry::Role {
                partition,
                account,
                name: role.into(),
            },
            _ => return Err(invalid("the role has no name")),
        },
        _ => Entry::Exact(name.into()),
    })
}

struct PrincipalArn<'a> {
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn split_principal_arn(text: &str) -> Option<PrincipalArn<'_>> {
    let mut parts = text.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    Some(PrincipalArn {
        partition: parts.next()?,
        service: parts.next()?,
        region: parts.next()?,
        account: parts.next()?,
        resource: parts.next()?,
    })
}

/// The identities a request principal stands for (at most three).
fn identities(principal: Option<&str>) -> [Option<Identity<'_>>; 3] {
    let Some(principal) = principal else {
        return [Some(Identity::Anonymous), None, None];
    };
    let exact = Some(Identity::Exact(principal));
    let Some(arn) = split_principal_arn(principal).filter(|arn| !arn.account.is_empty()) else {
        return [exact, None, None];
    };
    let (partition, account) = (arn.partition, arn.account);
    let account_identity = Some(Identity::Account { partition, account });
    match arn.service {
        "iam" if arn.resource == "root" => [account_identity, None, None],
        "iam" => match arn
            .resource
            .strip_prefix("role/")
            .and_then(|path| path.rsplit('/').next())
        {
            Some(name) if !name.is_empty() => [
                Some(Identity::Role {
                    partition,
                    account,
                    name,
                }),
                account_identity,
                None,
            ],
            _ => [exact, account_identity, None],
        },
        "sts" => {
            let session_role = arn
                .resource
                .strip_prefix("assumed-role/")
                .and_then(|rest| rest.split_once('/'));
            match session_role {
                Some((name, session)) if !name.is_empty() && !session.is_empty() => [
                    exact,
                    Some(Identity::Role {
                        partition,
                        account,
                        name,
                    }),
                    account_identity,
                ],
                _ => [exact, account_identity, None],
            }
        }
        _ => [exact, account_identity, None],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const BOB_OTHER_ACCOUNT: &str = "arn:aws:iam::444455556666:user/bob";
    const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/ml-admin/job-7";

    fn set(json: &str) -> PrincipalSet {
        PrincipalSet::parse(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn star_matches_everyone_including_anonymous() {
        for json in [r#""*""#, r#"{"AWS": "*"}"#] {
            let everyone = set(json);
            assert!(everyone.names_any_identity(Some(ALICE)));
            assert!(everyone.names_any_identity(None));
            assert!(everyone.names_every_identity(None));
        }
    }

    #[test]
    fn account_id_and_root_arn_mean_any_principal_of_the_account() {
        for json in [
            r#"{"AWS": "111122223333"}"#,
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
        ] {
            let account = set(json);
            assert!(account.names_any_identity(Some(ALICE)));
            assert!(account.names_any_identity(Some(SESSION)));
            assert!(account.names_any_identity(Some("arn:aws:iam::111122223333:root")));
            assert!(!account.names_any_identity(Some(BOB_OTHER_ACCOUNT)));
            assert!(!account.names_any_identity(None));
        }
    }

    #[test]
    fn user_arn_matches_only_that_user() {
        let alice = set(&format!(r#"{{"AWS": ["{ALICE}"]}}"#));
        assert!(alice.names_any_identity(Some(ALICE)));
        assert!(!alice.names_any_identity(Some("arn:aws:iam::111122223333:user/alicia")));
        assert!(!alice.names_any_identity(Some("arn:aws:iam::111122223333:user/Alice")));
    }

    #[test]
    fn role_arn_matches_the_role_and_its_sessions() {
        let role = set(r#"{"AWS": "arn:aws:iam::111122223333:role/team/ml-admin"}"#);
        assert!(role.names_any_identity(Some(SESSION)));
        assert!(role.names_any_identity(Some("arn:aws:iam::111122223333:role/ml-admin")));
        assert!(!role.names_any_identity(Some(
            "arn:aws:sts::444455556666:assumed-role/ml-admin/job-7"
        )));
        assert!(!role.names_any_identity(Some(
            "arn:aws:sts::111122223333:assumed-role/ml-reader/job-7"
        )));
    }

    #[test]
    fn session_arn_matches_only_that_session() {
        let session = set(&format!(r#"{{"AWS": "{SESSION}"}}"#));
        assert!(session.names_any_identity(Some(SESSION)));
        assert!(!session.names_any_identity(Some(
            "arn:aws:sts::111122223333:assumed-role/ml-admin/job-8"
        )));
    }

    #[test]
    fn federated_and_service_principals_are_exact_names() {
        let federated =
            set(r#"{"Federated": "accounts.example.com", "Service": ["ec2.amazonaws.com"]}"#);
        assert!(federated.names_any_identity(Some("accounts.example.com")));
        assert!(federated.names_any_identity(Some("ec2.amazonaws.com")));
        assert!(!federated.names_any_identity(Some("lambda.amazonaws.com")));
        assert!(!federated.names_any_identity(None));
    }

    #[test]
    fn not_principal_needs_every_identity_listed() {
        // AWS's documented example: exempting a user from a Deny needs the user and its account.
        let user_only = set(&format!(r#"{{"AWS": "{ALICE}"}}"#));
        assert!(!user_only.names_every_identity(Some(ALICE)));
        let user_and_account = set(&format!(
            r#"{{"AWS": ["{ALICE}", "arn:aws:iam::111122223333:root"]}}"#
        ));
        assert!(user_and_account.names_every_identity(Some(ALICE)));
        let account_only = set(r#"{"AWS": "111122223333"}"#);
        assert!(!account_only.names_every_identity(Some(ALICE)));
        assert!(account_only.names_every_identity(Some("arn:aws:iam::111122223333:root")));

        // A session: session ARN, role ARN and account.
        let role_and_account =
            set(r#"{"AWS": ["arn:aws:iam::111122223333:role/ml-admin", "111122223333"]}"#);
        assert!(!role_and_account.names_every_identity(Some(SESSION)));
        let all_three = set(&format!(
            r#"{{"AWS": ["{SESSION}", "arn:aws:iam::111122223333:role/ml-admin", "111122223333"]}}"#
        ));
        assert!(all_three.names_every_identity(Some(SESSION)));

        // Anonymous callers are never exempted by a named list.
        assert!(!all_three.names_every_identity(None));
    }

    #[test]
    fn non_arn_principal_is_its_own_identity() {
        let service = set(r#"{"Service": "ec2.amazonaws.com"}"#);
        assert!(service.names_every_identity(Some("ec2.amazonaws.com")));
    }

    #[test]
    fn invalid_principals() {
        for (json, expected) in [
            (r#""alice""#, "must be \"*\" or an object"),
            (r#"{}"#, "must be \"*\" or an object"),
            (r#"["*"]"#, "must be \"*\" or an object"),
            (r#"{"AWS": []}"#, "must not be empty"),
            (r#"{"AWS": 12}"#, "found a number"),
            (r#"{"AWS": [1]}"#, "must be strings"),
            (
                r#"{"AWS": "arn:aws:iam::111122223333:user/*"}"#,
                "wildcards",
            ),
            (r#"{"AWS": "11112222333"}"#, "12-digit"),
            (r#"{"AWS": "arn:aws:s3:::bucket"}"#, "iam or sts"),
            (
                r#"{"AWS": "arn:aws:iam:us-east-1:111122223333:user/a"}"#,
                "expected arn:",
            ),
            (r#"{"AWS": "arn:aws:iam:::user/a"}"#, "expected arn:"),
            (r#"{"AWS": "arn:aws:iam::111122223333:role/"}"#, "no name"),
            (r#"{"Service": "*"}"#, "without wildcards"),
            (r#"{"Federated": ""}"#, "without wildcards"),
            (r#"{"CanonicalUser": "abc"}"#, "not supported"),
            (r#"{"Aws": "*"}"#, "unknown principal type"),
            (r#"{"AWS": "*", "AWS": "1"}"#, "duplicate principal type"),
        ] {
            let error = PrincipalSet::parse(&serde_json::from_str(json).unwrap()).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
