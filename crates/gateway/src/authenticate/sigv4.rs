//! AWS SigV4 credentials: header and presigned-query forms, verified by
//! [`mlgate_sigv4::Verifier`] against keys from the store.
//!
//! * Long-term keys (`AKIA…`) of a user act as `arn:aws:iam::<acct>:user/<name>`; of a role, as
//!   `arn:aws:sts::<acct>:assumed-role/<role>/<key id>`.
//! * Temporary keys (`ASIA…`, from the STS endpoint) need their session token
//!   (`X-Amz-Security-Token`, compared as SHA-256 in constant time), act as
//!   `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, and are refused after expiry with
//!   "the temporary credentials in the request have expired".
//! * Key lookups are cached until the store changes (a deactivated key stops working as soon as
//!   the server sees the change, see `store/changes.rs`), at most
//!   [`crate::store::MAX_CACHE_TTL`]; derived signing keys are cached in a [`SigningKeyCache`],
//!   so a request costs a few microseconds once its key is warm.
//! * Body: see `docs/sigv4.md` § Gateway. A declared `x-amz-content-sha256` lets the signature
//!   be checked before the body is read; bodies up to the parsed-body limit are then checked at
//!   once, larger ones while they stream ([`payload::VerifyingBody`]). Without the
//!   header, bodies up to the limit are hashed first; larger ones are refused
//!   (`PayloadHashRequired`). `UNSIGNED-PAYLOAD` only on requests without a body.
//!
//! Every failure is a 403 ([`AuthFailureKind::SignatureRejected`]) with the safe message of
//! [`SigV4Error`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, header};
use mlgate_sigv4::{
    ConfigError, DeclaredPayload, EMPTY_SHA256, PayloadCheck, SigV4Error, SignedRequest,
    SigningKeyCache, Verifier, VerifierConfig,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::ServeArgs;
use crate::error::{AuthFailure, AuthFailureKind};
use crate::identity::{AuthMethod, Principal};
use crate::normalize::{BodyLimits, BodyReadError, collect_body};
use crate::store::secrets::MasterKey;
use crate::store::{
    AccessKeyRecord, KeyOwner, MAX_CACHE_TTL, Store, StoreError, StsSessionRecord, now,
    token_digest,
};
use payload::VerifyingBody;

/// The services the STS endpoint accepts in a credential scope.
pub const STS_SERVICE: &str = "sts";

/// Settings from `mlgate serve` (`--sigv4-regions`, `--sigv4-services`, `--sigv4-clock-skew`).
#[derive(Clone, Debug)]
pub struct SigV4Settings {
    pub regions: Vec<String>,
    pub services: Vec<String>,
    pub clock_skew: Duration,
}

impl From<&ServeArgs> for SigV4Settings {
    fn from(args: &ServeArgs) -> Self {
        // No region list: the one the ARNs name.
        let regions = if args.sigv4_regions.is_empty() {
            vec![args.region.clone()]
        } else {
            args.sigv4_regions.clone()
        };
        SigV4Settings {
            regions,
            services: args.sigv4_services.clone(),
            clock_skew: args.sigv4_clock_skew,
        }
    }
}

impl Default for SigV4Settings {
    fn default() -> Self {
        let d = VerifierConfig::default();
        SigV4Settings {
            regions: d.regions,
            services: d.services,
            clock_skew: d.clock_skew,
        }
    }
}

/// Which endpoint a request is for: the MLflow API (services `execute-api`,
/// `sagemaker-mlflow`) or mlgate's STS endpoint (service `sts` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Api,
    Sts,
}

/// A refused SigV4 request: the AWS error code (for STS XML errors and the audit) and the safe
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub aws_code: &'static str,
    pub message: String,
    /// The store could not be read (503 rather than 403).
    pub unavailable: bool,
}

impl From<SigV4Error> for Rejection {
    fn from(e: SigV4Error) -> Self {
        Rejection {
            aws_code: e.aws_code(),
            message: e.to_string(),
            unavailable: false,
        }
    }
}

impl Rejection {
    fn other(aws_code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            aws_code,
            message: message.into(),
            unavailable: false,
        }
    }

    fn store(e: &StoreError) -> Self {
        tracing::error!(error = %e, "identity store unavailable (SigV4)");
        Rejection {
            aws_code: "ServiceUnavailable",
            message: "the identity store is unavailable; try again".into(),
            unavailable: true,
        }
    }

    /// The gateway's failure: 403 in MLflow's error shape (503 if the store is down).
    pub fn into_failure(self) -> AuthFailure {
        if self.unavailable {
            return AuthFailure::new(
                Some(AuthMethod::Sigv4),
                AuthFailureKind::Unavailable,
                self.message,
            );
        }
        AuthFailure::new(
            Some(AuthMethod::Sigv4),
            AuthFailureKind::SignatureRejected,
            format!("AWS SigV4 authentication failed: {}", self.message),
        )
    }
}

/// A key as the verifier needs it: who it is, whether it may be used, and its secret.
enum KeyEntry {
    LongTerm {
        record: AccessKeyRecord,
        secret: Zeroizing<Vec<u8>>,
    },
    Temporary {
        session: StsSessionRecord,
        secret: Zeroizing<Vec<u8>>,
    },
}

/// The SigV4 verifier with its key caches. One per server; shared by the pipeline and the STS
/// endpoint.
pub struct SigV4Auth {
    api: Verifier,
    sts: Verifier,
    master: MasterKey,
    store: Store,
    signing_keys: SigningKeyCache,
    keys: moka::future::Cache<String, Option<Arc<KeyEntry>>>,
    touched: moka::sync::Cache<String, ()>,
}

impl fmt::Debug for SigV4Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4Auth")
            .field("api", self.api.config())
            .finish_non_exhaustive()
    }
}

/// What a verified request leaves for later stages.
pub struct Verified {
    pub principal: Principal,
    /// The body to forward: buffered and already checked, or wrapped to be checked while it
    /// streams.
    pub body: Body,
}

impl SigV4Auth {
    pub fn new(
        settings: &SigV4Settings,
        store: Store,
        master: MasterKey,
    ) -> Result<SigV4Auth, ConfigError> {
        let base = VerifierConfig {
            regions: settings.regions.clone(),
            services: settings.services.clone(),
            clock_skew: settings.clock_skew,
            ..VerifierConfig::default()
        };
        let api = Verifier::new(base.clone())?;
        let sts = Verifier::new(VerifierConfig {
            services: vec![STS_SERVICE.to_owned()],
            ..base
        })?;
        let keys: moka::future::Cache<_, _> = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(MAX_CACHE_TTL)
            .build();
        store.on_change({
            let keys = keys.clone();
            move || keys.invalidate_all()
        });
        Ok(SigV4Auth {
            api,
            sts,
            master,
            store,
            signing_keys: SigningKeyCache::new(100_000),
            keys,
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        })
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Verifies a SigV4 request (header or presigned form) and its body.
    pub async fn verify(
        &self,
        endpoint: Endpoint,
        parts: &Parts,
        body: Body,
        limits: BodyLimits,
    ) -> Result<Verified, Rejection> {
        self.verify_at(endpoint, parts, body, limits, SystemTime::now())
            .await
    }

    async fn verify_at(
        &self,
        endpoint: Endpoint,
        parts: &Parts,
        body: Body,
        limits: BodyLimits,
        at: SystemTime,
    ) -> Result<Verified, Rejection> {
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        let mut headers: Vec<(&str, &[u8])> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        if !parts.headers.contains_key(header::HOST)
            && let Some(a) = authority.as_deref()
        {
            headers.push(("host", a.as_bytes()));
        }
        let request = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
        };
        let verifier = match endpoint {
            Endpoint::Api => &self.api,
            Endpoint::Sts => &self.sts,
        };
        let pending = verifier.parse_and_check(&request, at)?;
        let akid = pending.access_key_id().to_owned();
        let entry = self.key_entry(&akid).await?;
        let secret = match (&*entry, pending.session_token()) {
            (KeyEntry::LongTerm { record, secret }, None) => {
                if !record.active {
                    self.signing_keys.remove_access_key(&akid);
                    return Err(SigV4Error::InactiveAccessKey.into());
                }
                secret
            }
            (KeyEntry::LongTerm { .. }, Some(_)) => {
                return Err(Rejection::other(
                    "InvalidClientTokenId",
                    "a session token was sent with a long-term access key; only temporary (ASIA…) credentials carry one",
                ));
            }
            (KeyEntry::Temporary { session, secret }, token) => {
                let Some(token) = token else {
                    return Err(Rejection::other(
                        "InvalidClientTokenId",
                        "temporary credentials need their session token (X-Amz-Security-Token)",
                    ));
                };
                let digest = token_digest(token);
                if !bool::from(digest.as_bytes().ct_eq(session.token_sha256().as_bytes())) {
                    return Err(SigV4Error::InvalidSessionToken.into());
                }
                let now_s = unix(at);
                if now_s >= session.expires_at {
                    self.signing_keys.remove_access_key(&akid);
                    return Err(Rejection::other(
                        "ExpiredToken",
                        format!(
                            "the temporary credentials in the request expired at {}",
                            jiff::Timestamp::from_second(session.expires_at)
                                .map(|t| t.to_string())
                                .unwrap_or_default()
                        ),
                    ));
                }
                secret
            }
        };
        let key = match self.signing_keys.get(&pending) {
            Some(key) => key,
            None => {
                let key = pending.derive_signing_key(secret);
                self.signing_keys.insert(&pending, key.clone());
                key
            }
        };

        let empty = is_empty_body(parts, &body);
        let known_len = http_body::Body::size_hint(&body).exact();
        let body = match pending.declared_payload() {
            DeclaredPayload::Unsigned => {
                if !empty {
                    return Err(Rejection::other(
                        "IncompleteSignature",
                        "UNSIGNED-PAYLOAD is accepted only on requests without a body: send the body's SHA-256 in x-amz-content-sha256",
                    ));
                }
                let verified = pending.verify(&key, None)?;
                debug_assert!(matches!(verified.payload, PayloadCheck::Unsigned));
                body
            }
            DeclaredPayload::Sha256(_) => {
                // Signature first (no body needed), then the body.
                let verified = pending.verify(&key, None)?;
                match verified.payload {
                    PayloadCheck::Pending(mut hasher) => {
                        if empty || known_len.is_some_and(|n| n <= limits.max_bytes) {
                            let bytes = buffer(body, limits).await?;
                            hasher.update(&bytes);
                            hasher.finish()?;
                            Body::from(bytes)
                        } else {
                            VerifyingBody::new(body, hasher).into_body()
                        }
                    }
                    PayloadCheck::Verified | PayloadCheck::Unsigned => body,
                }
            }
            DeclaredPayload::NotDeclared => {
                if known_len.is_some_and(|n| n > limits.max_bytes) {
                    return Err(SigV4Error::PayloadHashRequired.into());
                }
                let bytes = if empty {
                    Bytes::new()
                } else {
                    buffer(body, limits).await?
                };
                let hash: [u8; 32] = if bytes.is_empty() {
                    EMPTY_SHA256
                } else {
                    Sha256::digest(&bytes).into()
                };
                let _ = pending.verify(&key, Some(&hash))?;
                Body::from(bytes)
            }
        };
        self.touch(&akid, &entry);
        Ok(Verified {
            principal: self.principal(&entry, &akid).await?,
            body,
        })
    }

    async fn key_entry(&self, akid: &str) -> Result<Arc<KeyEntry>, Rejection> {
        let store = self.store.clone();
        let master = self.master.clone();
        let id = akid.to_owned();
        let entry = self
            .keys
            .try_get_with(akid.to_owned(), async move {
                load_entry(&store, &master, &id).await
            })
            .await
            .map_err(|e: Arc<StoreError>| Rejection::store(&e))?;
        match entry {
            Some(entry) => Ok(entry),
            None => {
                self.signing_keys.remove_access_key(akid);
                Err(SigV4Error::UnknownAccessKey.into())
            }
        }
    }

    async fn principal(&self, entry: &KeyEntry, akid: &str) -> Result<Principal, Rejection> {
        match entry {
            KeyEntry::LongTerm { record, .. } => match &record.owner {
                KeyOwner::User { .. } => {
                    let user = self
                        .store
                        .user_by_id(&record.owner_id)
                        .await
                        .map_err(|e| Rejection::store(&e))?
                        .ok_or(SigV4Error::UnknownAccessKey)?;
                    if user.disabled {
                        return Err(Rejection::other(
                            "InvalidClientTokenId",
                            "the user of this access key is disabled",
                        ));
                    }
                    Ok(user.principal(AuthMethod::Sigv4))
                }
                KeyOwner::Role { account_id, name } => Ok(Principal::role_session(
                    account_id,
                    name,
                    akid,
                    akid,
                    Default::default(),
                )),
            },
            KeyEntry::Temporary { session, .. } => Ok(session.principal()),
        }
    }

    fn touch(&self, akid: &str, entry: &KeyEntry) {
        if !matches!(entry, KeyEntry::LongTerm { .. }) || self.touched.contains_key(akid) {
            return;
        }
        self.touched.insert(akid.to_owned(), ());
        let (store, id) = (self.store.clone(), akid.to_owned());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.touch_access_key(&id, now()).await {
                    tracing::warn!(error = %e, "could not record access key use");
                }
            });
        }
    }

    /// Forgets cached state of a key (after deactivation or deletion in this process).
    pub async fn forget(&self, akid: &str) {
        self.keys.invalidate(akid).await;
        self.signing_keys.remove_access_key(akid);
    }
}

async fn load_entry(
    store: &Store,
    master: &MasterKey,
    akid: &str,
) -> Result<Option<Arc<KeyEntry>>, StoreError> {
    let open = |id: &str, sealed: &str| {
        master.open(id, sealed).map_err(|e| {
            // Wrong master key or a tampered row: never usable, and worth an operator's look.
            tracing::error!(access_key_id = %id, error = %e, "cannot open a stored SigV4 secret");
        })
    };
    if akid.starts_with("ASIA") {
        let Some(session) = store.sts_session(akid).await? else {
            return Ok(None);
        };
        let Ok(secret) = open(akid, session.sealed_secret()) else {
            return Ok(None);
        };
        return Ok(Some(Arc::new(KeyEntry::Temporary { session, secret })));
    }
    let Some(record) = store.access_key(akid).await? else {
        return Ok(None);
    };
    let Ok(secret) = open(akid, record.sealed_secret()) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(KeyEntry::LongTerm { record, secret })))
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// No body: `Content-Length: 0`, or neither `Content-Length` nor `Transfer-Encoding` (HTTP/1.1),
/// or an h2 stream that already ended.
fn is_empty_body(parts: &Parts, body: &Body) -> bool {
    let cl = parts.headers.get(header::CONTENT_LENGTH);
    if cl.is_some_and(|v| v == HeaderValue::from_static("0")) {
        return true;
    }
    if http_body::Body::is_end_stream(body) {
        return true;
    }
    cl.is_none()
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
        && http_body::Body::size_hint(body).exact() == Some(0)
}

async fn buffer(body: Body, limits: BodyLimits) -> Result<Bytes, Rejection> {
    collect_body(body, limits, None)
        .await
        .map_err(|error| match error {
            BodyReadError::TooLarge { .. } => SigV4Error::PayloadHashRequired.into(),
            BodyReadError::TimedOut { .. } => {
                Rejection::other("RequestTimeout", "the request body did not arrive in time")
            }
            BodyReadError::Unreadable(_) => {
                Rejection::other("IncompleteSignature", "the request body could not be read")
            }
        })
}

pub mod payload;

#[cfg(test)]
mod tests;
