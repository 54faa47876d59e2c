//! Provider metadata (OIDC discovery) and the JWKS cache of one issuer.
//!
//! * Keys live behind an [`ArcSwap`]: a verification reads them without a lock.
//! * A `kid` the set does not hold triggers one refetch (single-flight: concurrent misses wait
//!   for the same fetch), and never more often than every [`MIN_REFETCH_INTERVAL`]; otherwise
//!   tokens with random `kid`s would turn mlgate into a way to flood the provider.
//! * The set is refreshed in the background once it is older than the provider's
//!   `Cache-Control: max-age` (clamped to 5 min – 24 h; 1 h without one).
//! * A failed fetch keeps the last good set: a provider outage does not lock anyone out.
//! * Each JWK becomes a key *and* the one algorithm it may verify, taken from the JWK's `alg`
//!   or, when absent, from its `kty`/`crv` (RSA → RS256, EC P-256 → ES256, OKP Ed25519 →
//!   EdDSA). The token header's `alg` must equal it: the header never picks the algorithm.
//!   Symmetric (`oct`) keys and anything else are ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::config::{UnsafeUrl, check_url};
use crate::error::error_chain;
use crate::telemetry;

/// Unknown-`kid` refetches are at least this far apart.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const MIN_MAX_AGE: Duration = Duration::from_secs(300);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Largest discovery document or JWKS accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// One verification key and the only algorithm it verifies.
pub struct VerifyKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    /// Keys without a `kid` (used only for tokens without a `kid`).
    anonymous: Vec<Arc<VerifyKey>>,
    fetched_at: Option<Instant>,
    max_age: Duration,
}

/// The subset of the discovery document mlgate uses.
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// An HTTP client for talking to providers: no redirects (SSRF), short timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        // Idle connections go before the provider's keep-alive closes them (Node and many
        // servers: 5 s), so a sign-in's token request never races a closing connection.
        .pool_idle_timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// Why an issuer's discovery document or key set cannot be used. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer (connection, TLS, timeout); reqwest's error without the URL it repeats.
    #[error("GET {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("GET {url}: document larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("GET {url}: not JSON")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: not a discovery document")]
    NotDiscovery {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: the document's issuer {found:?} is not the configured issuer")]
    WrongIssuer { url: String, found: String },
    #[error(transparent)]
    UnsafeUrl(#[from] UnsafeUrl),
    #[error("the discovery document has no jwks_uri")]
    NoJwksUri,
    #[error("JWKS has no \"keys\" array")]
    NoKeys,
}

/// GET a JSON document of bounded size; returns it and its `max-age`.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
) -> Result<(serde_json::Value, Option<Duration>), ProviderError> {
    let unreachable = |e: reqwest::Error| ProviderError::Unreachable {
        url: url.to_owned(),
        source: e.without_url(),
    };
    let mut resp = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(ProviderError::Status {
            url: url.to_owned(),
            status: resp.status(),
        });
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|d| d.trim().strip_prefix("max-age="))
                .find_map(|n| n.parse::<u64>().ok())
        })
        .map(Duration::from_secs);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(ProviderError::TooLarge {
                url: url.to_owned(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    let json = serde_json::from_slice(&body).map_err(|source| ProviderError::NotJson {
        url: url.to_owned(),
        source,
    })?;
    Ok((json, max_age))
}

/// What a JWK may verify, or `None` if mlgate does not use it.
pub fn verify_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let from_kty = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => from_kty,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    if alg != from_kty {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey { alg, key })
}

fn parse_key_set(
    doc: &serde_json::Value,
    max_age: Option<Duration>,
) -> Result<KeySet, ProviderError> {
    let keys = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or(ProviderError::NoKeys)?;
    let mut set = KeySet {
        fetched_at: Some(Instant::now()),
        max_age: max_age
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE),
        ..KeySet::default()
    };
    for k in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        let Some(vk) = verify_key(&jwk) else { continue };
        let vk = Arc::new(vk);
        match jwk.common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid, vk);
            }
            None => set.anonymous.push(vk),
        }
    }
    Ok(set)
}

/// Discovery and keys of one issuer.
pub struct ProviderKeys {
    issuer: String,
    jwks_uri: Option<String>,
    http: reqwest::Client,
    metadata: ArcSwapOption<ProviderMetadata>,
    keys: ArcSwap<KeySet>,
    /// Held while fetching; holds the time of the last fetch attempt.
    fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
}

/// Why no key was found for a token.
#[derive(Debug)]
pub enum KeyLookup {
    /// No key with this `kid`, even after a refetch (or a refetch was not allowed yet).
    UnknownKid,
    /// The token has no `kid` and the set has no single key without one.
    NoKid,
    /// The JWKS could never be fetched.
    Unavailable(ProviderError),
}

impl ProviderKeys {
    pub fn new(issuer: &str, jwks_uri: Option<&str>, http: reqwest::Client) -> ProviderKeys {
        ProviderKeys {
            issuer: issuer.to_owned(),
            jwks_uri: jwks_uri.map(str::to_owned),
            http,
            metadata: ArcSwapOption::empty(),
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetch: tokio::sync::Mutex::new(None),
            min_refetch: MIN_REFETCH_INTERVAL,
        }
    }

    /// For tests: a shorter refetch interval.
    pub fn with_min_refetch(mut self, d: Duration) -> Self {
        self.min_refetch = d;
        self
    }

    /// The discovery document (fetched once, then cached; re-fetched after a failure).
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, ProviderError> {
        if let Some(m) = self.metadata.load_full() {
            return Ok(m);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let (doc, _) = get_json(&self.http, &url).await?;
        let meta: ProviderMetadata =
            serde_json::from_value(doc).map_err(|source| ProviderError::NotDiscovery {
                url: url.clone(),
                source,
            })?;
        if meta.issuer != self.issuer {
            return Err(ProviderError::WrongIssuer {
                url,
                found: meta.issuer,
            });
        }
        for u in [
            &meta.jwks_uri,
            &meta.authorization_endpoint,
            &meta.token_endpoint,
            &meta.end_session_endpoint,
        ]
        .into_iter()
        .flatten()
        {
            check_url("discovery document", u)?;
        }
        let meta = Arc::new(meta);
        self.metadata.store(Some(meta.clone()));
        Ok(meta)
    }

    async fn jwks_url(&self) -> Result<String, ProviderError> {
        if let Some(u) = &self.jwks_uri {
            return Ok(u.clone());
        }
        self.metadata()
            .await?
            .jwks_uri
            .clone()
            .ok_or(ProviderError::NoJwksUri)
    }

    /// Whether a key set was ever fetched (a failed refetch keeps the last good one).
    pub fn loaded(&self) -> bool {
        self.keys.load().fetched_at.is_some()
    }

    /// Fetches the JWKS now (keeps the old set on failure).
    pub async fn refresh(&self) -> Result<(), ProviderError> {
        let mut last = self.fetch.lock().await;
        self.refresh_locked(&mut last).await
    }

    async fn refresh_locked(&self, last: &mut Option<Instant>) -> Result<(), ProviderError> {
        *last = Some(Instant::now());
        let result = async {
            let url = self.jwks_url().await?;
            let (doc, max_age) = get_json(&self.http, &url).await?;
            parse_key_set(&doc, max_age)
        }
        .await;
        telemetry::jwks_refresh(result.is_ok());
        match result {
            Ok(set) => {
                self.keys.store(Arc::new(set));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %error_chain(&e), "cannot fetch the JWKS; keeping the last good keys");
                Err(e)
            }
        }
    }

    fn lookup(set: &KeySet, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(k) => set.by_kid.get(k).cloned(),
            None => match set.anonymous.as_slice() {
                [one] => Some(one.clone()),
                _ if set.anonymous.is_empty() && set.by_kid.len() == 1 => {
                    set.by_kid.values().next().cloned()
                }
                _ => None,
            },
        }
    }

    /// The key for `kid`, refetching the set (rate-limited, single-flight) when it is unknown.
    pub async fn key(self: &Arc<Self>, kid: Option<&str>) -> Result<Arc<VerifyKey>, KeyLookup> {
        let set = self.keys.load();
        if let Some(k) = Self::lookup(&set, kid) {
            if set.fetched_at.is_some_and(|t| t.elapsed() > set.max_age) {
                self.refresh_in_background();
            }
            return Ok(k);
        }
        let never_fetched = set.fetched_at.is_none();
        drop(set);
        let mut last = self.fetch.lock().await;
        // Someone else may have fetched while we waited.
        if let Some(k) = Self::lookup(&self.keys.load(), kid) {
            return Ok(k);
        }
        let allowed = last.is_none_or(|t| t.elapsed() >= self.min_refetch);
        let mut error = None;
        if allowed {
            error = self.refresh_locked(&mut last).await.err();
        }
        drop(last);
        let set = self.keys.load();
        if let Some(k) = Self::lookup(&set, kid) {
            return Ok(k);
        }
        match (error, never_fetched && set.fetched_at.is_none()) {
            (Some(e), true) => Err(KeyLookup::Unavailable(e)),
            _ if kid.is_none() => Err(KeyLookup::NoKid),
            _ => Err(KeyLookup::UnknownKid),
        }
    }

    pub(super) fn refresh_in_background(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        rt.spawn(async move {
            let Ok(mut last) = this.fetch.try_lock() else {
                return; // a fetch is already under way
            };
            if last.is_some_and(|t| t.elapsed() < this.min_refetch) {
                return;
            }
            let _ = this.refresh_locked(&mut last).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_algorithm_comes_from_the_jwk() {
        let rsa = serde_json::json!({"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"});
        let jwk: Jwk = serde_json::from_value(rsa.clone()).unwrap();
        assert_eq!(verify_key(&jwk).unwrap().alg, Algorithm::RS256);
        // A JWK that says HS256 (or any alg that does not fit its kty) is not used.
        let mut bad = rsa.clone();
        bad["alg"] = "HS256".into();
        let jwk: Jwk = serde_json::from_value(bad).unwrap();
        assert!(verify_key(&jwk).is_none());
        let mut bad = rsa.clone();
        bad["alg"] = "ES256".into();
        let jwk: Jwk = serde_json::from_value(bad).unwrap();
        assert!(verify_key(&jwk).is_none());
        // Encryption keys are not signature keys.
        let mut enc = rsa;
        enc["use"] = "enc".into();
        let jwk: Jwk = serde_json::from_value(enc).unwrap();
        assert!(verify_key(&jwk).is_none());
        // Symmetric keys are never used.
        let oct = serde_json::json!({"kty":"oct","k":"c2VjcmV0"});
        let jwk: Jwk = serde_json::from_value(oct).unwrap();
        assert!(verify_key(&jwk).is_none());
    }
}
