//! Who is calling: the principal every later stage (authorize, rewrite, audit) works with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the request proved its identity; audited and exposed to policies as `mlgate:AuthMethod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// HTTP Basic with a built-in user's password.
    Basic,
    /// An mlgate API token sent as `Authorization: Bearer`.
    Token,
    /// The browser session cookie set by the sign-in page.
    Session,
    /// AWS Signature Version 4 (header or presigned query).
    Sigv4,
    /// A bearer JWT from a configured OIDC issuer.
    Jwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::Token => "token",
            AuthMethod::Session => "session",
            AuthMethod::Sigv4 => "sigv4",
            AuthMethod::Jwt => "jwt",
        }
    }
}

/// What kind of identity the principal is, in AWS's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// `arn:aws:iam::<account>:user/<name>`
    User,
    /// `arn:aws:iam::<account>:user/<provider>/<name>`: a user of a configured OIDC issuer,
    /// known only from its token (no `users` row); its groups come from the token's group claim.
    FederatedUser { provider: String },
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`
    AssumedRole {
        role: String,
        session: String,
        /// The access key the request was signed with (`ASIA…` for STS sessions), when the
        /// principal came from SigV4; the authorize stage finds the session policy through it.
        #[serde(skip_serializing_if = "Option::is_none")]
        access_key_id: Option<String>,
    },
}

/// An authenticated caller. Built by the authenticate stage; never from client-supplied headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The principal's ARN (`aws:PrincipalArn`).
    pub arn: String,
    /// The 12-digit account the principal belongs to (`aws:PrincipalAccount`).
    pub account: String,
    /// Who MLflow records as the author (a run's `user_id` and `mlflow.user`, a resource's
    /// creator): a user's name, or a role session's ARN. Policies see it as `aws:username` for
    /// users only ([`Principal::username`]).
    pub name: String,
    pub kind: PrincipalKind,
    /// Names of the mlgate groups the principal is in; its permissions are the union over them.
    pub groups: Vec<String>,
    /// Principal tags (`aws:PrincipalTag/<key>`).
    pub tags: BTreeMap<String, String>,
    pub auth_method: AuthMethod,
}

/// `arn:aws:sts::<account>:assumed-role/<role>/<session>`: a role session's ARN.
pub fn assumed_role_arn(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

impl Principal {
    /// A session of `role` (temporary credentials, or a role's long-term key): attributed to its
    /// session ARN, never to the caller-chosen session name.
    pub fn role_session(
        account: &str,
        role: &str,
        session: &str,
        access_key_id: &str,
        tags: BTreeMap<String, String>,
    ) -> Principal {
        let arn = assumed_role_arn(account, role, session);
        Principal {
            name: arn.clone(),
            arn,
            account: account.to_owned(),
            kind: PrincipalKind::AssumedRole {
                role: role.to_owned(),
                session: session.to_owned(),
                access_key_id: Some(access_key_id.to_owned()),
            },
            groups: Vec::new(),
            tags,
            auth_method: AuthMethod::Sigv4,
        }
    }

    /// `aws:username`: set for users only, as in AWS. A role session has none (its session name
    /// is chosen by whoever assumes the role), so `${aws:username}` matches nothing for it.
    /// The policy simulator's ad-hoc principal: a member of `groups` with no `users` row, as a
    /// federated user of the provider `simulated` is (its policies are its groups').
    pub fn simulated(account: String, groups: Vec<String>) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::{account}:user/simulated/simulated"),
            account,
            name: "simulated".to_owned(),
            kind: PrincipalKind::FederatedUser {
                provider: "simulated".to_owned(),
            },
            groups,
            tags: BTreeMap::new(),
            auth_method: AuthMethod::Basic,
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::User | PrincipalKind::FederatedUser { .. } => Some(&self.name),
            PrincipalKind::AssumedRole { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_users_have_a_username() {
        // A role's long-term key: its session is named after the key.
        let key = "AKIAEXAMPLEEXAMPLE00";
        let session = Principal::role_session("111111111111", "ci", key, key, BTreeMap::new());
        assert_eq!(
            session.arn,
            format!("arn:aws:sts::111111111111:assumed-role/ci/{key}")
        );
        assert_eq!(session.name, session.arn);
        assert_eq!(session.username(), None);
        let user = Principal {
            arn: "arn:aws:iam::111111111111:user/corp/alice".into(),
            name: "alice".into(),
            kind: PrincipalKind::FederatedUser {
                provider: "corp".into(),
            },
            groups: Vec::new(),
            ..session
        };
        assert_eq!(user.username(), Some("alice"));
    }
}
