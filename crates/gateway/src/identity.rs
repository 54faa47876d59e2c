//! Who is calling: the principal every later stage (authorize, rewrite, audit) works with.

use std::collections::BTreeMap;

use serde::Serialize;

/// How the request proved its identity; audited and exposed to policies as `mlgate:AuthMethod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
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
    /// The name policies see as `aws:username` and MLflow sees as the run's `user_id`.
    pub name: String,
    pub kind: PrincipalKind,
    /// Names of the mlgate groups the principal is in; its permissions are the union over them.
    pub groups: Vec<String>,
    /// Principal tags (`aws:PrincipalTag/<key>`).
    pub tags: BTreeMap<String, String>,
    pub auth_method: AuthMethod,
}
