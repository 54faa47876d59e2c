//! AWS Signature Version 4 verification for mlgate, with no I/O and no clock.
//!
//! Verification runs in two steps so that everything that can be checked without a secret is
//! checked before the key store is touched:
//!
//! 1. [`Verifier::parse_and_check`] parses the `Authorization` header or the presigned query,
//!    checks algorithm, credential scope, service, region, scope date, clock skew and presigned
//!    expiry, checks which headers are signed, and hashes the canonical request. It returns a
//!    [`PendingSignature`] naming the access key id (and session token) to look up.
//! 2. [`PendingSignature::verify`] takes the [`SigningKey`] for that key and compares signatures
//!    in constant time. A [`SigningKeyCache`] keeps derived keys so that repeated requests cost a
//!    few microseconds.
//!
//! The body is the caller's: when the request declares `x-amz-content-sha256`, the signature can
//! be checked before the body is read and the body is then checked while it streams, with the
//! [`PayloadHasher`] returned in [`VerifiedSignature::payload`].
//!
//! ```no_run
//! use std::time::SystemTime;
//! use mlgate_sigv4::{PayloadCheck, SigV4Error, SignedRequest, SigningKeyCache, Verifier};
//!
//! fn authenticate(
//!     verifier: &Verifier,
//!     cache: &SigningKeyCache,
//!     request: &SignedRequest<'_>,
//!     lookup_secret: impl Fn(&str) -> Option<Vec<u8>>,
//! ) -> Result<(), SigV4Error> {
//!     let pending = verifier.parse_and_check(request, SystemTime::now())?;
//!     let key = match cache.get(&pending) {
//!         Some(key) => key,
//!         None => {
//!             let secret = lookup_secret(pending.access_key_id()).ok_or(SigV4Error::UnknownAccessKey)?;
//!             let key = pending.derive_signing_key(&secret);
//!             cache.insert(&pending, key.clone());
//!             key
//!         }
//!     };
//!     let verified = pending.verify(&key, None)?;
//!     if let PayloadCheck::Pending(mut hasher) = verified.payload {
//!         hasher.update(b"...the body, chunk by chunk...");
//!         hasher.finish()?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! `docs/sigv4.md` in the repository describes the rules, the real-client quirks accepted and the
//! intended gateway behaviour.

mod canonical;
mod date;
mod encoding;
mod error;
mod key;
mod parse;
mod payload;
mod verify;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod test_support;

pub use canonical::SignedRequest;
pub use date::AmzTime;
pub use error::SigV4Error;
pub use key::{SigningKey, SigningKeyCache};
pub use payload::{DeclaredPayload, EMPTY_SHA256, PayloadCheck, PayloadHasher};
pub use verify::{
    AuthForm, CanonicalForm, ConfigError, CredentialScope, PendingSignature, VerifiedSignature,
    Verifier, VerifierConfig,
};
