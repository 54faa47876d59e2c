//! Bearer JWTs from configured OpenID Connect issuers, and the federated principals they map to.
//!
//! Verification of `Authorization: Bearer <a>.<b>.<c>`, in order (each step's failure is a 401
//! whose reason says which step failed; the audit log records the same reason):
//!
//! 1. at most [`MAX_TOKEN_BYTES`]; a JWS compact serialization whose header is JSON;
//! 2. the header's `alg`: `none` and HMAC are refused outright; nothing else but RS256, ES256 and
//!    EdDSA is known;
//! 3. the (unverified) `iss` selects one configured issuer by exact match; an unknown issuer is
//!    refused without contacting anyone;
//! 4. the key: by `kid` from the issuer's JWKS cache ([`jwks`]), refetched once (rate-limited) for
//!    an unknown `kid`; the key's own algorithm (from the JWK) must equal the header's and be in
//!    the issuer's allow-list, so a header can never turn an RSA public key into an HMAC secret;
//! 5. signature, `exp` and `nbf` (required `exp`; clock leeway per issuer), `iss`;
//! 6. token type: Cognito's `token_use`, else `typ: at+jwt` (RFC 9068) marks an access token,
//!    else it is an ID token; the issuer must accept that type;
//! 7. audience: an ID token's `aud` must hold an accepted audience; an access token's `client_id`
//!    (Cognito) or `aud`;
//! 8. the user claim must be a string usable in an ARN; the group claim's values are mapped to
//!    mlgate groups (unmapped values give nothing, several give the union).
//!
//! A verified token is cached by SHA-256(token) for at most [`CLAIMS_CACHE_TTL`] and never past
//! its `exp`, so a busy client does not pay for a signature check on every request.
//!
//! Federated principal: `arn:aws:iam::<account>:user/<issuer-name>/<username>` (an IAM user
//! whose path is the issuer's name), `aws:username` = `<username>`, kind
//! [`PrincipalKind::FederatedUser`]; its effective policies are those attached to its mapped
//! groups in its account. No sign-up is needed: nothing about it is stored.

pub mod config;
pub mod jwks;
pub mod session;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use config::{IssuerConfig, LoginConfig, OidcConfig, TokenType};
pub use jwks::{KeyLookup, ProviderKeys, ProviderMetadata};

use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal, PrincipalKind};

/// Longer bearer values are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Upper bound on how long a verified token is remembered.
pub const CLAIMS_CACHE_TTL: Duration = Duration::from_secs(60);

/// One configured issuer with its keys.
pub struct Issuer {
    pub config: IssuerConfig,
    pub keys: Arc<ProviderKeys>,
}

/// A verified token.
#[derive(Clone, Debug)]
pub struct Verified {
    pub principal: Principal,
    pub token_type: TokenType,
    pub issuer: String,
    pub exp: i64,
    /// The verified claims (for the login flow's `nonce` check).
    pub claims: Arc<Value>,
}

/// Every configured issuer. Cheap to share (`Arc`).
pub struct Oidc {
    pub config: OidcConfig,
    issuers: Vec<Issuer>,
    default_account: String,
    http: reqwest::Client,
    verified: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| &i.config.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn fail(kind: AuthFailureKind, reason: impl Into<String>) -> AuthFailure {
    AuthFailure::new(Some(AuthMethod::Jwt), kind, reason)
}

fn invalid(reason: impl Into<String>) -> AuthFailure {
    fail(AuthFailureKind::Invalid, reason)
}

/// A claim value safe to put in a message: printable, at most 100 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
    if s.chars().count() > 100 {
        out.push('…');
    }
    out
}

fn b64_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn str_or_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Is this a user name mlgate can put into an ARN and MLflow's `user_id`?
fn valid_username(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'=' | b',' | b'.' | b'@' | b'_' | b'-' | b':')
        })
}

impl Oidc {
    pub fn new(config: OidcConfig, default_account: &str) -> Oidc {
        Oidc::with_http(config, default_account, jwks::http_client(), None)
    }

    /// `min_refetch`: override of the unknown-`kid` refetch interval (tests).
    pub fn with_http(
        config: OidcConfig,
        default_account: &str,
        http: reqwest::Client,
        min_refetch: Option<Duration>,
    ) -> Oidc {
        let issuers = config
            .issuers
            .iter()
            .map(|c| {
                let mut keys = ProviderKeys::new(&c.issuer, c.jwks_uri.as_deref(), http.clone());
                if let Some(d) = min_refetch {
                    keys = keys.with_min_refetch(d);
                }
                Issuer {
                    config: c.clone(),
                    keys: Arc::new(keys),
                }
            })
            .collect();
        Oidc {
            config,
            issuers,
            default_account: default_account.to_owned(),
            http,
            verified: moka::sync::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(CLAIMS_CACHE_TTL)
                .build(),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    pub fn issuer_by_name(&self, name: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.config.name == name)
    }

    /// Fetches every issuer's keys once (at start-up; failures are logged, not fatal).
    pub async fn warm_up(&self) {
        for i in &self.issuers {
            if let Err(e) = i.keys.refresh().await {
                tracing::warn!(issuer = %i.config.name, error = %e, "OIDC issuer not reachable at start-up; will retry on first use");
            }
        }
    }

    /// Whether every issuer has its keys, fetched or kept from the last good fetch (readiness).
    /// An issuer still without keys is asked again in the background, rate-limited, so a
    /// provider that was down at start-up makes the server ready once it answers.
    pub fn keys_loaded(&self) -> bool {
        let mut loaded = true;
        for issuer in self.issuers.iter().filter(|i| !i.keys.loaded()) {
            issuer.keys.refresh_in_background();
            loaded = false;
        }
        loaded
    }

    /// Verifies a bearer JWT and maps it to a federated principal.
    pub async fn verify_bearer(&self, token: &str) -> Result<Verified, AuthFailure> {
        self.verify(token, None).await.map_err(|mut f| {
            f.reason = format!("JWT refused: {}", f.reason);
            f
        })
    }

    /// Verifies a token. `only`: accept only this issuer and only an ID token (the login flow).
    pub async fn verify(&self, token: &str, only: Option<&str>) -> Result<Verified, AuthFailure> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid(format!(
                "token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = jiff::Timestamp::now().as_second();
        if only.is_none()
            && let Some(v) = self.verified.get(&digest)
        {
            if now < v.exp {
                return Ok((*v).clone());
            }
            self.verified.invalidate(&digest);
        }

        let mut segments = token.split('.');
        let (Some(h), Some(p), Some(_s), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(invalid(
                "not a JWS compact serialization (three base64url parts)",
            ));
        };
        let header = b64_json(h)
            .filter(Value::is_object)
            .ok_or_else(|| invalid("the token header is not base64url-encoded JSON"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let header_alg = match alg_name {
            "none" | "" => {
                return Err(invalid("unsigned tokens (alg \"none\") are never accepted"));
            }
            a if a.starts_with("HS") => {
                return Err(invalid(format!(
                    "HMAC-signed tokens (alg {a}) are never accepted; only RS256, ES256, EdDSA"
                )));
            }
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            other => {
                return Err(invalid(format!(
                    "algorithm {} is not accepted; only RS256, ES256, EdDSA",
                    shown(other)
                )));
            }
        };
        if header.get("crit").is_some() {
            return Err(invalid(
                "tokens with critical header extensions are not accepted",
            ));
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let typ = header
            .get("typ")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let unverified = b64_json(p)
            .filter(Value::is_object)
            .ok_or_else(|| invalid("the token payload is not base64url-encoded JSON"))?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the token has no iss claim"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| {
                invalid(format!(
                    "issuer {} is not a configured OIDC issuer",
                    shown(iss)
                ))
            })?;
        let cfg = &issuer.config;
        if only.is_some_and(|n| n != cfg.name) {
            return Err(invalid(format!(
                "the ID token was issued by {} instead of the provider signed in with",
                shown(iss)
            )));
        }
        if !cfg.algorithms.contains(&header_alg) {
            return Err(invalid(format!(
                "algorithm {alg_name} is not allowed for issuer {}",
                cfg.name
            )));
        }

        let key = issuer.keys.key(kid).await.map_err(|e| match e {
            KeyLookup::UnknownKid => invalid(format!(
                "no key {} in the JWKS of issuer {}",
                shown(kid.unwrap_or("")),
                cfg.name
            )),
            KeyLookup::NoKid => invalid(format!(
                "the token has no kid and issuer {} has more than one key",
                cfg.name
            )),
            KeyLookup::Unavailable(why) => {
                tracing::error!(issuer = %cfg.name, error = %why, "JWKS unavailable");
                fail(
                    AuthFailureKind::Unavailable,
                    format!(
                        "the keys of issuer {} cannot be fetched; try again",
                        cfg.name
                    ),
                )
            }
        })?;
        if key.alg != header_alg {
            return Err(invalid(format!(
                "the token says alg {alg_name} but its key is a {:?} key",
                key.alg
            )));
        }

        let mut validation = Validation::new(key.alg);
        validation.leeway = cfg.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&cfg.issuer]);
        let data =
            jsonwebtoken::decode::<Value>(token, &key.key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        fail(AuthFailureKind::Expired, "the token has expired (exp)")
                    }
                    ErrorKind::ImmatureSignature => invalid("the token is not valid yet (nbf)"),
                    ErrorKind::InvalidSignature => invalid("the signature does not verify"),
                    ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                    ErrorKind::MissingRequiredClaim(c) => {
                        invalid(format!("the token has no {c} claim"))
                    }
                    ErrorKind::InvalidClaimFormat(c) => {
                        invalid(format!("the token's {c} claim is malformed"))
                    }
                    _ => invalid("the token could not be verified"),
                }
            })?;
        let claims = data.claims;

        // Token type.
        let token_type = match claims.get("token_use").and_then(Value::as_str) {
            Some("id") => TokenType::Id,
            Some("access") => TokenType::Access,
            Some(other) => {
                return Err(invalid(format!("unknown token_use {}", shown(other))));
            }
            None if typ == "at+jwt" || typ == "application/at+jwt" => TokenType::Access,
            None => TokenType::Id,
        };
        let wanted: BTreeSet<TokenType> = match only {
            Some(_) => [TokenType::Id].into(),
            None => cfg.token_types.clone(),
        };
        if !wanted.contains(&token_type) {
            let accepted: Vec<&str> = wanted.iter().map(|t| t.as_str()).collect();
            return Err(invalid(format!(
                "an {} is not accepted from issuer {} (accepted: {})",
                token_type.as_str(),
                cfg.name,
                accepted.join(", ")
            )));
        }

        // Audience.
        let auds = str_or_list(claims.get("aud"));
        let ok = match token_type {
            TokenType::Id => auds.iter().any(|a| cfg.audiences.contains(*a)),
            TokenType::Access => {
                claims
                    .get("client_id")
                    .and_then(Value::as_str)
                    .is_some_and(|c| cfg.audiences.contains(c))
                    || auds.iter().any(|a| cfg.audiences.contains(*a))
            }
        };
        if !ok {
            let got = if auds.is_empty() {
                "none".to_owned()
            } else {
                auds.iter().map(|a| shown(a)).collect::<Vec<_>>().join(", ")
            };
            return Err(invalid(format!(
                "wrong audience ({got}) for issuer {}",
                cfg.name
            )));
        }

        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .map_or(now, |e| e as i64);
        let principal = self.principal(cfg, &claims, AuthMethod::Jwt)?;
        let verified = Verified {
            principal,
            token_type,
            issuer: cfg.name.clone(),
            exp,
            claims: Arc::new(claims),
        };
        if only.is_none() {
            self.verified.insert(digest, Arc::new(verified.clone()));
        }
        Ok(verified)
    }

    /// The federated principal for verified claims.
    pub fn principal(
        &self,
        cfg: &IssuerConfig,
        claims: &Value,
        auth_method: AuthMethod,
    ) -> Result<Principal, AuthFailure> {
        let raw = match claims.get(&cfg.username_claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(invalid(format!(
                    "the token has no {} claim to name the user",
                    cfg.username_claim
                )));
            }
        };
        let name = format!("{}{raw}", cfg.username_prefix);
        if !valid_username(&name) {
            return Err(invalid(format!(
                "the {} claim {} is not a usable user name (1-128 of A-Z a-z 0-9 +=,.@_:-)",
                cfg.username_claim,
                shown(&raw)
            )));
        }
        let groups = mapped_groups(cfg, claims);
        let account = cfg
            .account
            .clone()
            .unwrap_or_else(|| self.default_account.clone());
        let mut tags = BTreeMap::new();
        tags.insert("oidc:issuer".to_owned(), cfg.name.clone());
        if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
            tags.insert("oidc:sub".to_owned(), shown(sub));
        }
        Ok(Principal {
            arn: format!("arn:aws:iam::{account}:user/{}/{name}", cfg.name),
            account,
            name,
            kind: PrincipalKind::FederatedUser {
                provider: cfg.name.clone(),
            },
            groups,
            tags,
            auth_method,
        })
    }
}

/// For `AssumeRoleWithWebIdentity` (STS): the trust-policy view of a verified token, as AWS
/// gives it: the federated principal is the issuer URL without its scheme (e.g.
/// `idp.example.com/realms/ml`, what a trust policy names in `"Principal": {"Federated": …}`),
/// and the condition keys `<that>:sub`, `<that>:aud` (for an access token: its `client_id` when
/// it has no `aud`), `<that>:amr` when present.
pub fn web_identity_keys(issuer_url: &str, claims: &Value) -> (String, Vec<(String, Vec<String>)>) {
    let federated = issuer_url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut keys = Vec::new();
    if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
        keys.push((format!("{federated}:sub"), vec![sub.to_owned()]));
    }
    let mut aud: Vec<String> = str_or_list(claims.get("aud"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    if aud.is_empty()
        && let Some(c) = claims.get("client_id").and_then(Value::as_str)
    {
        aud.push(c.to_owned());
    }
    if !aud.is_empty() {
        keys.push((format!("{federated}:aud"), aud));
    }
    let amr: Vec<String> = str_or_list(claims.get("amr"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    if !amr.is_empty() {
        keys.push((format!("{federated}:amr"), amr));
    }
    (federated, keys)
}

/// The mlgate groups the token's group claim maps to (sorted, each once).
pub fn mapped_groups(cfg: &IssuerConfig, claims: &Value) -> Vec<String> {
    let mut v = Some(claims);
    for step in &cfg.groups_claim {
        v = v.and_then(|x| x.get(step));
    }
    let values: Vec<&str> = match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split_whitespace().collect(),
        _ => Vec::new(),
    };
    let mut out: BTreeSet<String> = cfg.default_groups.iter().cloned().collect();
    for value in values {
        if let Some(groups) = cfg.group_map.get(value) {
            out.extend(groups.iter().cloned());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(groups_claim: &str) -> IssuerConfig {
        OidcConfig::parse(&format!(
            r#"[[issuer]]
            name = "kc"
            issuer = "https://idp.example.com"
            audiences = ["mlflow"]
            groups_claim = "{groups_claim}"
            [issuer.group_map]
            ml-writers = "admins"
            ml-readers = ["readers"]
            both = ["readers", "model-approvers"]"#
        ))
        .unwrap()
        .issuers
        .remove(0)
    }

    #[test]
    fn group_mapping_is_a_union_and_ignores_unmapped_values() {
        let c = cfg("groups");
        let claims = serde_json::json!({"groups": ["ml-readers", "both", "unknown", 7]});
        assert_eq!(mapped_groups(&c, &claims), ["model-approvers", "readers"]);
        assert!(mapped_groups(&c, &serde_json::json!({"groups": ["nope"]})).is_empty());
        assert!(mapped_groups(&c, &serde_json::json!({})).is_empty());
        let mut with_default = c.clone();
        with_default.default_groups = vec!["readers".into()];
        assert_eq!(
            mapped_groups(&with_default, &serde_json::json!({})),
            ["readers"]
        );
        let c = cfg("realm_access.roles");
        let claims = serde_json::json!({"realm_access": {"roles": ["ml-writers"]}});
        assert_eq!(mapped_groups(&c, &claims), ["admins"]);
        let c = cfg("cognito:groups");
        let claims = serde_json::json!({"cognito:groups": ["ml-writers", "ml-readers"]});
        assert_eq!(mapped_groups(&c, &claims), ["admins", "readers"]);
    }

    #[test]
    fn web_identity_condition_keys() {
        let claims = serde_json::json!({"sub": "system:serviceaccount:ml:trainer", "aud": ["sts.amazonaws.com"], "amr": "pwd"});
        let (fed, keys) = web_identity_keys("https://oidc.example.com/id/ABC/", &claims);
        assert_eq!(fed, "oidc.example.com/id/ABC");
        assert_eq!(
            keys[0],
            (
                "oidc.example.com/id/ABC:sub".to_owned(),
                vec!["system:serviceaccount:ml:trainer".to_owned()]
            )
        );
        assert_eq!(keys[1].0, "oidc.example.com/id/ABC:aud");
        assert_eq!(keys[2].1, ["pwd"]);
        let (_, keys) = web_identity_keys(
            "https://c.example",
            &serde_json::json!({"sub": "s", "client_id": "app"}),
        );
        assert_eq!(
            keys[1],
            ("c.example:aud".to_owned(), vec!["app".to_owned()])
        );
    }

    #[test]
    fn usernames() {
        assert!(valid_username("alice@example.com"));
        assert!(valid_username("system:serviceaccount:ml:trainer"));
        assert!(!valid_username("a/b"));
        assert!(!valid_username("a b"));
        assert!(!valid_username(""));
        assert!(!valid_username(&"a".repeat(129)));
    }
}
