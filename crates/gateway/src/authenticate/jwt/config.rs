//! The OIDC configuration file (`mlgate serve --oidc-config FILE`, `MLGATE_OIDC_CONFIG`).
//!
//! TOML, one `[[issuer]]` table per trusted issuer; `docs/oidc.md` documents every key. A file
//! that is wrong in any way stops `mlgate serve` at start-up with a message naming the key.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcFile {
    /// Show the built-in user name / password form on the sign-in page (default true).
    #[serde(default = "yes")]
    pub builtin_login: bool,
    /// The URL browsers use to reach mlgate (e.g. `https://mlflow.example.com`), for the OIDC
    /// `redirect_uri` and the CSRF check's origin. Default: the request's scheme and `Host`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Trusted issuers.
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<IssuerFile>,
}

fn yes() -> bool {
    true
}

/// One `[[issuer]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    /// Short name: `[a-z0-9-]{1,32}`. Used in principal ARNs, URLs and the audit log.
    pub name: String,
    /// The exact `iss` value (and the base of the discovery URL).
    pub issuer: String,
    /// Explicit JWKS URL. Default: `jwks_uri` from `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Accepted audiences: an ID token's `aud`; an access token's `client_id` (Cognito) or `aud`.
    pub audiences: Vec<String>,
    /// Which token kinds are accepted as bearer credentials: `"id"`, `"access"` (default `["id"]`).
    #[serde(default = "default_token_types")]
    pub token_types: Vec<TokenType>,
    /// Allowed signature algorithms (default all three): `RS256`, `ES256`, `EdDSA`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The claim naming the user (default `sub`); e.g. `email`, `preferred_username`,
    /// `cognito:username`.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Prepended to the user name (e.g. `"corp:"`) to keep federated names apart from built-in
    /// users in `${aws:username}` and MLflow attribution. Default empty.
    #[serde(default)]
    pub username_prefix: String,
    /// The claim listing groups; dots walk into objects (`realm_access.roles`). Default `groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Claim value → mlgate groups. Unmapped values give nothing.
    #[serde(default)]
    pub group_map: BTreeMap<String, OneOrMany>,
    /// mlgate groups every user of this issuer is in (e.g. for Kubernetes service-account
    /// tokens, which carry no group claim). Default none.
    #[serde(default)]
    pub default_groups: Vec<String>,
    /// Account (12 digits) the federated principals belong to. Default: the store's default
    /// account.
    #[serde(default)]
    pub account: Option<String>,
    /// Browser sign-in through this issuer (authorization code flow with PKCE).
    #[serde(default)]
    pub login: Option<LoginFile>,
}

/// `[issuer.login]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFile {
    pub client_id: String,
    /// Confidential client secret; prefer `client_secret_env`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Name of an environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Button label on the sign-in page (default: the issuer's name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Scopes requested (default `openid profile email`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Call the provider's `end_session_endpoint` at sign-out when it has one (default true).
    #[serde(default = "yes")]
    pub end_session: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Id,
    Access,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Id => "ID token",
            TokenType::Access => "access token",
        }
    }
}

fn default_token_types() -> Vec<TokenType> {
    vec![TokenType::Id]
}
fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
fn default_leeway() -> u64 {
    60
}
fn default_username_claim() -> String {
    "sub".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

/// A validated issuer.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    pub name: String,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub audiences: BTreeSet<String>,
    pub token_types: BTreeSet<TokenType>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub username_claim: String,
    pub username_prefix: String,
    /// Path into the claims (`realm_access.roles` → `["realm_access", "roles"]`).
    pub groups_claim: Vec<String>,
    pub group_map: BTreeMap<String, Vec<String>>,
    pub default_groups: Vec<String>,
    pub account: Option<String>,
    pub login: Option<LoginConfig>,
}

#[derive(Clone)]
pub struct LoginConfig {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub display_name: String,
    pub scopes: Vec<String>,
    pub end_session: bool,
}

impl std::fmt::Debug for LoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginConfig")
            .field("client_id", &self.client_id)
            .field("has_secret", &self.client_secret.is_some())
            .field("display_name", &self.display_name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The validated file.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub builtin_login: bool,
    pub public_url: Option<String>,
    pub issuers: Vec<IssuerConfig>,
}

/// An IdP URL mlgate will not talk to.
#[derive(Debug, thiserror::Error)]
pub enum UnsafeUrl {
    #[error("{what}: {url:?} is not a URL")]
    NotAUrl { what: &'static str, url: String },
    #[error("{what}: {url:?} must be an https:// URL (http:// only for a loopback host)")]
    NotHttps { what: &'static str, url: String },
}

/// Why an OIDC configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    #[error("cannot read the OIDC configuration {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<OidcConfigError>,
    },
    #[error("not an OIDC configuration")]
    Syntax(#[source] toml::de::Error),
    #[error("issuer {issuer:?}")]
    InIssuer {
        issuer: String,
        #[source]
        source: Box<OidcConfigError>,
    },
    #[error(transparent)]
    Url(#[from] UnsafeUrl),
    /// A value that breaks a rule of docs/oidc.md; the message names the value and the rule.
    #[error("{0}")]
    Invalid(String),
}

/// Is this URL acceptable for talking to an IdP: `https://`, or `http://` to a loopback host.
pub fn check_url(what: &'static str, url: &str) -> Result<(), UnsafeUrl> {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Err(UnsafeUrl::NotAUrl {
            what,
            url: url.to_owned(),
        });
    };
    let host = uri.host().unwrap_or("");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(()),
        _ => Err(UnsafeUrl::NotHttps {
            what,
            url: url.to_owned(),
        }),
    }
}

impl OidcConfig {
    pub fn load(path: &Path) -> Result<OidcConfig, OidcConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| OidcConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        OidcConfig::parse(&text).map_err(|e| OidcConfigError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    pub fn parse(text: &str) -> Result<OidcConfig, OidcConfigError> {
        let file: OidcFile = toml::from_str(text).map_err(OidcConfigError::Syntax)?;
        OidcConfig::from_file(file)
    }

    pub fn from_file(file: OidcFile) -> Result<OidcConfig, OidcConfigError> {
        if let Some(u) = &file.public_url {
            let uri: http::Uri = u
                .parse()
                .map_err(|_| OidcConfigError::Invalid(format!("public_url {u:?} is not a URL")))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(OidcConfigError::Invalid(format!(
                    "public_url {u:?} must be an http(s) URL"
                )));
            }
        }
        let mut names = BTreeSet::new();
        let mut issuers = Vec::new();
        for i in file.issuers {
            let in_issuer = |e: OidcConfigError| OidcConfigError::InIssuer {
                issuer: i.name.clone(),
                source: Box::new(e),
            };
            let invalid = |m: String| in_issuer(OidcConfigError::Invalid(m));
            if i.name.is_empty()
                || i.name.len() > 32
                || !i
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid(
                    "name must be 1-32 characters of a-z, 0-9 and -".into(),
                ));
            }
            if !names.insert(i.name.clone()) {
                return Err(invalid("two issuers have this name".into()));
            }
            check_url("issuer", &i.issuer).map_err(|e| in_issuer(e.into()))?;
            if let Some(j) = &i.jwks_uri {
                check_url("jwks_uri", j).map_err(|e| in_issuer(e.into()))?;
            }
            if i.audiences.is_empty() || i.audiences.iter().any(String::is_empty) {
                return Err(invalid(
                    "audiences must list at least one non-empty value".into(),
                ));
            }
            if i.token_types.is_empty() {
                return Err(invalid("token_types must not be empty".into()));
            }
            let mut algorithms = Vec::new();
            for a in &i.algorithms {
                let alg = match a.as_str() {
                    "RS256" => Algorithm::RS256,
                    "ES256" => Algorithm::ES256,
                    "EdDSA" => Algorithm::EdDSA,
                    other => {
                        return Err(invalid(format!(
                            "algorithm {other:?} is not allowed (use RS256, ES256, EdDSA; never none or HMAC)"
                        )));
                    }
                };
                algorithms.push(alg);
            }
            if algorithms.is_empty() {
                return Err(invalid("algorithms must not be empty".into()));
            }
            if i.leeway_seconds > 300 {
                return Err(invalid("leeway_seconds must be at most 300".into()));
            }
            if i.username_claim.is_empty() || i.groups_claim.is_empty() {
                return Err(invalid(
                    "username_claim and groups_claim must not be empty".into(),
                ));
            }
            if let Some(a) = &i.account
                && !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid("account must be 12 digits".into()));
            }
            let mut group_map = BTreeMap::new();
            for (k, v) in i.group_map {
                let v = v.into_vec();
                for g in &v {
                    crate::store::validate_group_name(g)
                        .map_err(|e| invalid(format!("group_map {k:?}: {e}")))?;
                }
                group_map.insert(k, v);
            }
            for g in &i.default_groups {
                crate::store::validate_group_name(g)
                    .map_err(|e| invalid(format!("default_groups: {e}")))?;
            }
            let login = match i.login {
                None => None,
                Some(l) => {
                    if l.client_id.is_empty() {
                        return Err(invalid("login.client_id must not be empty".into()));
                    }
                    if !l.scopes.iter().any(|s| s == "openid") {
                        return Err(invalid("login.scopes must include openid".into()));
                    }
                    let client_secret = match (&l.client_secret, &l.client_secret_env) {
                        (Some(_), Some(_)) => {
                            return Err(invalid(
                                "set login.client_secret or login.client_secret_env, not both"
                                    .into(),
                            ));
                        }
                        (Some(s), None) => Some(s.clone()),
                        (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                            invalid(format!(
                                "login.client_secret_env: environment variable {var} is not set"
                            ))
                        })?),
                        (None, None) => None,
                    };
                    Some(LoginConfig {
                        display_name: l.display_name.unwrap_or_else(|| i.name.clone()),
                        client_id: l.client_id,
                        client_secret,
                        scopes: l.scopes,
                        end_session: l.end_session,
                    })
                }
            };
            issuers.push(IssuerConfig {
                groups_claim: i.groups_claim.split('.').map(str::to_owned).collect(),
                name: i.name,
                issuer: i.issuer,
                jwks_uri: i.jwks_uri,
                audiences: i.audiences.into_iter().collect(),
                token_types: i.token_types.into_iter().collect(),
                algorithms,
                leeway: Duration::from_secs(i.leeway_seconds),
                username_claim: i.username_claim,
                username_prefix: i.username_prefix,
                group_map,
                default_groups: i.default_groups,
                account: i.account,
                login,
            });
        }
        let issuer_values: BTreeSet<&str> = issuers.iter().map(|i| i.issuer.as_str()).collect();
        if issuer_values.len() != issuers.len() {
            return Err(OidcConfigError::Invalid(
                "two [[issuer]] tables have the same issuer URL".into(),
            ));
        }
        Ok(OidcConfig {
            builtin_login: file.builtin_login,
            public_url: file.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            issuers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[issuer]]
        name = "corp"
        issuer = "https://idp.example.com"
        audiences = ["mlflow"]
        groups_claim = "realm_access.roles"
        [issuer.group_map]
        ml-writers = "admins"
        ml-readers = ["readers", "viewers"]
    "#;

    #[test]
    fn parses_with_defaults() {
        let c = OidcConfig::parse(GOOD).unwrap();
        assert!(c.builtin_login);
        let i = &c.issuers[0];
        assert_eq!(i.groups_claim, ["realm_access", "roles"]);
        assert_eq!(i.username_claim, "sub");
        assert_eq!(i.leeway, Duration::from_secs(60));
        assert_eq!(i.algorithms.len(), 3);
        assert_eq!(i.group_map["ml-readers"], ["readers", "viewers"]);
        assert!(i.token_types.contains(&TokenType::Id));
        assert!(!i.token_types.contains(&TokenType::Access));
    }

    #[test]
    fn refuses_dangerous_settings() {
        let bad = |extra: &str| {
            OidcConfig::parse(&GOOD.replace(
                "audiences = [\"mlflow\"]",
                &format!("audiences = [\"mlflow\"]\n{extra}"),
            ))
            .map(|_| ())
            .map_err(|e| crate::error::error_chain(&e))
            .unwrap_err()
        };
        assert!(bad("algorithms = [\"HS256\"]").contains("never none or HMAC"));
        assert!(bad("algorithms = [\"none\"]").contains("not allowed"));
        assert!(bad("leeway_seconds = 3600").contains("leeway"));
        assert!(bad("account = \"12\"").contains("12 digits"));
        assert!(bad("surprise = 1").contains("unknown field"));
        let e = OidcConfig::parse(&GOOD.replace("https://idp", "http://idp")).unwrap_err();
        let e = crate::error::error_chain(&e);
        assert!(e.contains("https"), "{e}");
        assert!(
            OidcConfig::parse(&GOOD.replace("https://idp.example.com", "http://127.0.0.1:9000"))
                .is_ok()
        );
        let e = OidcConfig::parse(&GOOD.replace("\"corp\"", "\"Corp Okta\"")).unwrap_err();
        let e = crate::error::error_chain(&e);
        assert!(e.contains("issuer \"Corp Okta\": name"), "{e}");
    }
}
