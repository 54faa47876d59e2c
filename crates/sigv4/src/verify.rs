//! The verifier: configuration, the secret-free first step and the keyed second step.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::canonical::{SignedRequest, raw_form_eligible, write_canonical_prefix};
use crate::date::{AmzTime, parse_amz_date, unix_secs};
use crate::encoding::hex32;
use crate::error::SigV4Error;
use crate::key::SigningKey;
use crate::parse::{
    self, ALGORITHM, Credential, check_session_token, is_aws4_authorization, is_presigned_query,
};
use crate::payload::{DeclaredPayload, PayloadCheck, PayloadHasher, UNSIGNED_PAYLOAD};

/// Presigned URLs may live at most seven days, as in AWS.
const MAX_PRESIGNED_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// A skew beyond an hour would make replay windows meaningless.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Where the signature travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `Authorization: AWS4-HMAC-SHA256 ...`
    Header,
    /// `X-Amz-Algorithm=...&X-Amz-Signature=...` in the query string.
    Presigned,
}

/// Which spelling of the canonical URI and query the signature matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanonicalForm {
    /// AWS's rules for services other than S3: normalized, double-encoded path; decoded,
    /// re-encoded and sorted query.
    Aws,
    /// The path and query exactly as sent, pairs sorted by name: what `requests-auth-aws-sigv4`
    /// (the MLflow client's `MLFLOW_TRACKING_AWS_SIGV4` signer) signs. Header form only, and only
    /// where that spelling is unambiguous (see `docs/sigv4.md`).
    RawUri,
}

/// Verifier settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Regions a credential scope may name.
    pub regions: Vec<String>,
    /// Services a credential scope may name.
    pub services: Vec<String>,
    /// How far the request time may be from the server's, either way.
    pub clock_skew: Duration,
    /// The largest `X-Amz-Expires` accepted (at most seven days).
    pub max_presigned_expiry: Duration,
    /// Also accept [`CanonicalForm::RawUri`] signatures.
    pub accept_raw_uri_form: bool,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            regions: vec!["us-east-1".to_owned()],
            services: vec!["execute-api".to_owned(), "sagemaker-mlflow".to_owned()],
            clock_skew: Duration::from_secs(300),
            max_presigned_expiry: MAX_PRESIGNED_EXPIRY,
            accept_raw_uri_form: true,
        }
    }
}

/// A [`VerifierConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("at least one region must be accepted")]
    NoRegion,
    #[error("at least one service must be accepted")]
    NoService,
    #[error("region and service names are 1 to 64 characters of a-z, 0-9 and '-': {0:?}")]
    InvalidName(String),
    #[error("clock skew must be at most one hour")]
    ClockSkewTooLarge,
    #[error("the presigned expiry limit must be between 1 second and 7 days")]
    PresignedExpiryOutOfRange,
}

/// Checks SigV4 requests against a [`VerifierConfig`].
#[derive(Debug, Clone)]
pub struct Verifier {
    config: VerifierConfig,
    skew_secs: i64,
    max_expires_secs: u64,
}

/// The credential scope of a pending signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    /// `YYYYMMDD`
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// A request whose SigV4 credentials passed every check that needs no secret.
///
/// Borrowing the request, it keeps the canonical request hashed up to its payload line, so
/// [`PendingSignature::verify`] only adds the payload line, the string to sign and one HMAC.
pub struct PendingSignature<'r> {
    request: &'r SignedRequest<'r>,
    form: AuthForm,
    credential: Credential<'r>,
    amz_date: Cow<'r, str>,
    scope_day: i64,
    signed_at: i64,
    expires_at: Option<i64>,
    signed_headers: Cow<'r, str>,
    signature: [u8; 32],
    session_token: Option<Cow<'r, str>>,
    declared: DeclaredPayload,
    aws_prefix: Sha256,
    try_raw_form: bool,
}

/// A verified signature and what remains to be checked of the body.
#[derive(Debug)]
#[must_use = "the body may still need checking (see `payload`)"]
pub struct VerifiedSignature {
    pub form: AuthForm,
    pub canonical_form: CanonicalForm,
    pub payload: PayloadCheck,
}

/// The signature's parts, from whichever of the two places carries them.
struct Credentials<'r> {
    form: AuthForm,
    credential: Credential<'r>,
    amz_date: Cow<'r, str>,
    signed_headers: Cow<'r, str>,
    signature: [u8; 32],
    query_token: Option<Cow<'r, str>>,
    expires_secs: Option<u64>,
}

impl<'r> Credentials<'r> {
    fn parse(request: &'r SignedRequest<'r>) -> Result<Self, SigV4Error> {
        let authorization = request
            .unique_header("authorization")?
            .filter(|v| is_aws4_authorization(v));
        match (authorization, is_presigned_query(request.query)) {
            (None, false) => Err(SigV4Error::Missing),
            (Some(_), true) => Err(SigV4Error::Malformed(
                "the request is signed both in the Authorization header and in the query string",
            )),
            (Some(authorization), false) => {
                let auth = parse::parse_authorization(authorization)?;
                let date = request
                    .unique_header("x-amz-date")?
                    .ok_or(SigV4Error::Malformed(
                        "the x-amz-date header is required (the Date header is not supported)",
                    ))?;
                let date = std::str::from_utf8(date)
                    .map_err(|_| SigV4Error::Malformed("invalid x-amz-date"))?;
                Ok(Self {
                    form: AuthForm::Header,
                    credential: auth.credential,
                    amz_date: Cow::Borrowed(date),
                    signed_headers: Cow::Borrowed(auth.signed_headers),
                    signature: auth.signature,
                    query_token: None,
                    expires_secs: None,
                })
            }
            (None, true) => {
                let auth = parse::parse_presigned(request.query)?;
                Ok(Self {
                    form: AuthForm::Presigned,
                    credential: auth.credential,
                    amz_date: auth.date,
                    signed_headers: auth.signed_headers,
                    signature: auth.signature,
                    query_token: auth.security_token,
                    expires_secs: Some(auth.expires_secs),
                })
            }
        }
    }
}

fn scope_name_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        if config.regions.is_empty() {
            return Err(ConfigError::NoRegion);
        }
        if config.services.is_empty() {
            return Err(ConfigError::NoService);
        }
        if let Some(bad) = config
            .regions
            .iter()
            .chain(&config.services)
            .find(|n| !scope_name_valid(n))
        {
            return Err(ConfigError::InvalidName(bad.clone()));
        }
        if config.clock_skew > MAX_CLOCK_SKEW {
            return Err(ConfigError::ClockSkewTooLarge);
        }
        if config.max_presigned_expiry < Duration::from_secs(1)
            || config.max_presigned_expiry > MAX_PRESIGNED_EXPIRY
        {
            return Err(ConfigError::PresignedExpiryOutOfRange);
        }
        Ok(Self {
            skew_secs: i64::try_from(config.clock_skew.as_secs()).unwrap_or(i64::MAX),
            max_expires_secs: config.max_presigned_expiry.as_secs(),
            config,
        })
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Step one: everything that needs no secret. On success the caller looks up
    /// [`PendingSignature::access_key_id`] (and checks the session token, key status and
    /// temporary-credential expiry itself), then calls [`PendingSignature::verify`].
    ///
    /// Returns [`SigV4Error::Missing`] when the request carries no SigV4 credentials at all.
    pub fn parse_and_check<'r>(
        &self,
        request: &'r SignedRequest<'r>,
        now: SystemTime,
    ) -> Result<PendingSignature<'r>, SigV4Error> {
        let now = unix_secs(now);
        let Credentials {
            form,
            credential,
            amz_date,
            signed_headers,
            signature,
            query_token,
            expires_secs,
        } = Credentials::parse(request)?;

        if !self
            .config
            .services
            .iter()
            .any(|s| s == credential.service())
        {
            return Err(SigV4Error::WrongService {
                got: credential.service().to_owned(),
                expected: self.config.services.join(", "),
            });
        }
        if !self.config.regions.iter().any(|r| r == credential.region()) {
            return Err(SigV4Error::WrongRegion {
                got: credential.region().to_owned(),
                expected: self.config.regions.join(", "),
            });
        }
        let signed_at = parse_amz_date(amz_date.as_bytes()).ok_or(SigV4Error::Malformed(
            "the request date must be YYYYMMDDTHHMMSSZ",
        ))?;
        if !amz_date.starts_with(credential.date()) {
            return Err(SigV4Error::ScopeDateMismatch);
        }
        let expires_at = match expires_secs {
            Some(secs) if secs == 0 || secs > self.max_expires_secs => {
                return Err(SigV4Error::ExpiresOutOfRange {
                    max_secs: self.max_expires_secs,
                });
            }
            // At most 7 days (checked above), so this cannot overflow.
            Some(secs) => Some(signed_at + secs as i64),
            None => None,
        };
        self.check_time(signed_at, expires_at, now)?;

        check_header_coverage(request, form, &signed_headers)?;
        let declared =
            DeclaredPayload::from_header(request.unique_header("x-amz-content-sha256")?)?;
        let header_token = request.unique_header("x-amz-security-token")?;
        let session_token = match (header_token, query_token) {
            (Some(_), Some(_)) => {
                return Err(SigV4Error::Malformed(
                    "the session token is given both as a header and in the query string",
                ));
            }
            (Some(token), None) => {
                check_session_token(token)?;
                let token = std::str::from_utf8(token)
                    .map_err(|_| SigV4Error::Malformed("invalid x-amz-security-token"))?;
                Some(Cow::Borrowed(token))
            }
            (None, token) => token,
        };

        let presigned = form == AuthForm::Presigned;
        let mut buf = Vec::with_capacity(512);
        write_canonical_prefix(
            &mut buf,
            request,
            CanonicalForm::Aws,
            presigned,
            &signed_headers,
        )?;
        let aws_prefix = Sha256::new_with_prefix(&buf);
        Ok(PendingSignature {
            request,
            form,
            credential,
            amz_date,
            scope_day: signed_at.div_euclid(86_400),
            signed_at,
            expires_at,
            signed_headers,
            signature,
            session_token,
            declared,
            aws_prefix,
            try_raw_form: self.config.accept_raw_uri_form
                && !presigned
                && raw_form_eligible(request),
        })
    }

    fn check_time(
        &self,
        signed_at: i64,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(), SigV4Error> {
        let skew_secs = self.skew_secs.unsigned_abs();
        if signed_at > now.saturating_add(self.skew_secs) {
            return Err(SigV4Error::NotYetValid {
                signed_at: AmzTime(signed_at),
                now: AmzTime(now),
                skew_secs,
            });
        }
        match expires_at {
            // A presigned URL is good until it expires, and not a second longer.
            Some(expires_at) if now > expires_at => Err(SigV4Error::PresignedExpired {
                expired_at: AmzTime(expires_at),
                now: AmzTime(now),
            }),
            None if signed_at < now.saturating_sub(self.skew_secs) => Err(SigV4Error::Expired {
                signed_at: AmzTime(signed_at),
                now: AmzTime(now),
                skew_secs,
            }),
            _ => Ok(()),
        }
    }
}

/// `host` must be signed, so must the header carrying the date (header form), and so must every
/// `x-amz-*` header present: an unsigned one (a session token added after signing, a content
/// hash) could be swapped by anyone on the path. (That every signed header is present is
/// checked while writing the canonical request.)
fn check_header_coverage(
    request: &SignedRequest<'_>,
    form: AuthForm,
    signed_headers: &str,
) -> Result<(), SigV4Error> {
    let is_signed = |name: &str| signed_headers.split(';').any(|s| s == name);
    if !is_signed("host") {
        return Err(SigV4Error::UnsignedHeader("host".to_owned()));
    }
    if form == AuthForm::Header && !is_signed("x-amz-date") {
        return Err(SigV4Error::UnsignedHeader("x-amz-date".to_owned()));
    }
    for (name, _) in request.headers {
        let amz = name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"));
        if amz
            && !signed_headers
                .split(';')
                .any(|s| s.eq_ignore_ascii_case(name))
        {
            return Err(SigV4Error::UnsignedHeader(name.to_ascii_lowercase()));
        }
    }
    Ok(())
}

impl<'r> PendingSignature<'r> {
    pub fn access_key_id(&self) -> &str {
        self.credential.access_key_id()
    }

    /// `x-amz-security-token` / `X-Amz-Security-Token`, which the caller must match against the
    /// temporary credentials of [`Self::access_key_id`] (and require for those).
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    pub fn scope(&self) -> CredentialScope<'_> {
        CredentialScope {
            date: self.credential.date(),
            region: self.credential.region(),
            service: self.credential.service(),
        }
    }

    pub fn form(&self) -> AuthForm {
        self.form
    }

    /// When the request says it was signed.
    pub fn signed_at(&self) -> SystemTime {
        AmzTime(self.signed_at).into()
    }

    /// Presigned form: when the URL expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at.map(|t| AmzTime(t).into())
    }

    /// What the request declares about its body; with [`DeclaredPayload::NotDeclared`] the
    /// caller must hash the body before calling [`Self::verify`].
    pub fn declared_payload(&self) -> DeclaredPayload {
        self.declared
    }

    pub(crate) fn credential(&self) -> &Credential<'r> {
        &self.credential
    }

    pub(crate) fn scope_day(&self) -> i64 {
        self.scope_day
    }

    /// Derives the signing key for this request's scope from the secret access key.
    pub fn derive_signing_key(&self, secret_access_key: &[u8]) -> SigningKey {
        SigningKey::derive(
            secret_access_key,
            self.credential.date(),
            self.credential.region(),
            self.credential.service(),
        )
    }

    /// Step two: compares the signature with the one computed under `key`, in constant time.
    ///
    /// `body_sha256` is the SHA-256 of the body when the caller has it. It is required when the
    /// request declares no `x-amz-content-sha256` ([`SigV4Error::PayloadHashRequired`]
    /// otherwise); with a declared hash it is compared too, and without it the returned
    /// [`PayloadCheck::Pending`] hasher checks the body as it streams.
    pub fn verify(
        &self,
        key: &SigningKey,
        body_sha256: Option<&[u8; 32]>,
    ) -> Result<VerifiedSignature, SigV4Error> {
        let hex;
        let payload_line: &[u8] = match (self.declared, body_sha256) {
            (DeclaredPayload::Sha256(declared), _) => {
                hex = hex32(&declared);
                &hex
            }
            (DeclaredPayload::Unsigned, _) => UNSIGNED_PAYLOAD.as_bytes(),
            (DeclaredPayload::NotDeclared, Some(body)) => {
                hex = hex32(body);
                &hex
            }
            (DeclaredPayload::NotDeclared, None) => return Err(SigV4Error::PayloadHashRequired),
        };

        let canonical_form = if self.matches(key, self.aws_prefix.clone(), payload_line) {
            CanonicalForm::Aws
        } else if self.try_raw_form && self.raw_form_matches(key, payload_line)? {
            CanonicalForm::RawUri
        } else {
            return Err(SigV4Error::SignatureMismatch);
        };

        let payload = match (self.declared, body_sha256) {
            (DeclaredPayload::Sha256(declared), Some(body)) => {
                if !bool::from(declared.ct_eq(body)) {
                    return Err(SigV4Error::PayloadHashMismatch);
                }
                PayloadCheck::Verified
            }
            (DeclaredPayload::Sha256(declared), None) => {
                PayloadCheck::Pending(PayloadHasher::new(declared))
            }
            (DeclaredPayload::Unsigned, _) => PayloadCheck::Unsigned,
            (DeclaredPayload::NotDeclared, _) => PayloadCheck::Verified,
        };
        Ok(VerifiedSignature {
            form: self.form,
            canonical_form,
            payload,
        })
    }

    fn raw_form_matches(&self, key: &SigningKey, payload_line: &[u8]) -> Result<bool, SigV4Error> {
        let mut buf = Vec::with_capacity(512);
        write_canonical_prefix(
            &mut buf,
            self.request,
            CanonicalForm::RawUri,
            false,
            &self.signed_headers,
        )?;
        Ok(self.matches(key, Sha256::new_with_prefix(&buf), payload_line))
    }

    /// Finishes the canonical-request hash, builds the string to sign and compares signatures.
    fn matches(&self, key: &SigningKey, mut canonical: Sha256, payload_line: &[u8]) -> bool {
        canonical.update(payload_line);
        let canonical_hash = hex32(&canonical.finalize().into());
        let computed = key.sign(&[
            ALGORITHM.as_bytes(),
            b"\n",
            self.amz_date.as_bytes(),
            b"\n",
            self.credential.scope().as_bytes(),
            b"\n",
            &canonical_hash,
        ]);
        computed.ct_eq(&self.signature).into()
    }
}

impl std::fmt::Debug for PendingSignature<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignature")
            .field("form", &self.form)
            .field("access_key_id", &self.access_key_id())
            .field("scope", &self.scope())
            .field("amz_date", &self.amz_date)
            .field("session_token", &self.session_token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
