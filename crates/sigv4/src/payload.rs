//! The payload line of the canonical request and checking the body against it.
//!
//! * `x-amz-content-sha256: <64 hex>`: that literal is signed; the body must hash to it. The
//!   signature can be checked before the body arrives and the body while it streams.
//! * `x-amz-content-sha256: UNSIGNED-PAYLOAD`: the body is not covered by the signature; the
//!   gateway decides where that is acceptable.
//! * no header: the signed payload line is the hex SHA-256 of the body, so the body must be
//!   hashed before the signature can be checked.
//! * `STREAMING-*` (aws-chunked): refused.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::encoding::parse_hex32;
use crate::error::SigV4Error;

/// SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What the request says about its body in `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredPayload {
    /// A hex SHA-256: signed as is; the body must match it.
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
    /// No header: the signature covers the SHA-256 of the body, which the caller must compute
    /// and pass to [`crate::PendingSignature::verify`].
    NotDeclared,
}

impl DeclaredPayload {
    pub(crate) fn from_header(value: Option<&[u8]>) -> Result<Self, SigV4Error> {
        let Some(value) = value else {
            return Ok(Self::NotDeclared);
        };
        if value == UNSIGNED_PAYLOAD.as_bytes() {
            return Ok(Self::Unsigned);
        }
        if value.starts_with(b"STREAMING-") {
            return Err(SigV4Error::UnsupportedPayload);
        }
        parse_hex32(value)
            .map(Self::Sha256)
            .ok_or(SigV4Error::Malformed(
                "x-amz-content-sha256 must be 64 lower-case hex digits or UNSIGNED-PAYLOAD",
            ))
    }
}

/// What is left to check of the body once the signature is verified.
#[derive(Debug, Clone)]
#[must_use = "a body declared by hash must still be checked"]
pub enum PayloadCheck {
    /// The body hash was passed to `verify` and is covered by the signature: nothing left.
    Verified,
    /// The body was declared by hash and not yet seen: stream it through this hasher and fail
    /// the request (without letting the upstream see a complete body) if `finish` errs.
    Pending(PayloadHasher),
    /// `UNSIGNED-PAYLOAD`: the signature does not cover the body.
    Unsigned,
}

/// Hashes a body as it streams and compares it with the declared hash, in constant time.
#[derive(Clone)]
pub struct PayloadHasher {
    expected: [u8; 32],
    hasher: Sha256,
}

impl PayloadHasher {
    /// A hasher that expects the body to hash to `expected`.
    pub fn new(expected: [u8; 32]) -> Self {
        Self {
            expected,
            hasher: Sha256::new(),
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
    }

    /// Ends the body: `Ok` when it hashed to the declared value.
    pub fn finish(self) -> Result<(), SigV4Error> {
        let actual: [u8; 32] = self.hasher.finalize().into();
        if bool::from(actual.ct_eq(&self.expected)) {
            Ok(())
        } else {
            Err(SigV4Error::PayloadHashMismatch)
        }
    }
}

impl std::fmt::Debug for PayloadHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadHasher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::hex32;

    #[test]
    fn empty_hash_is_right() {
        assert_eq!(<[u8; 32]>::from(Sha256::digest(b"")), EMPTY_SHA256);
    }

    #[test]
    fn parses_the_header() {
        let hash: [u8; 32] = Sha256::digest(b"body").into();
        assert_eq!(
            DeclaredPayload::from_header(Some(&hex32(&hash))),
            Ok(DeclaredPayload::Sha256(hash))
        );
        assert_eq!(
            DeclaredPayload::from_header(None),
            Ok(DeclaredPayload::NotDeclared)
        );
        assert_eq!(
            DeclaredPayload::from_header(Some(b"UNSIGNED-PAYLOAD")),
            Ok(DeclaredPayload::Unsigned)
        );
        for streaming in [
            &b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"[..],
            b"STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        ] {
            assert_eq!(
                DeclaredPayload::from_header(Some(streaming)),
                Err(SigV4Error::UnsupportedPayload)
            );
        }
        let mut upper = hex32(&hash);
        upper.make_ascii_uppercase();
        for bad in [&upper[..], b"unsigned-payload", b"", b"abc"] {
            assert!(matches!(
                DeclaredPayload::from_header(Some(bad)),
                Err(SigV4Error::Malformed(_))
            ));
        }
    }

    #[test]
    fn hasher_checks_streamed_body() {
        let body = b"0123456789".repeat(1000);
        let expected: [u8; 32] = Sha256::digest(&body).into();
        let mut h = PayloadHasher::new(expected);
        for chunk in body.chunks(333) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), Ok(()));

        let mut tampered = body.clone();
        tampered[5000] ^= 1;
        let mut h = PayloadHasher::new(expected);
        h.update(&tampered);
        assert_eq!(h.finish(), Err(SigV4Error::PayloadHashMismatch));

        let mut h = PayloadHasher::new(expected);
        h.update(&body[..body.len() - 1]);
        assert_eq!(h.finish(), Err(SigV4Error::PayloadHashMismatch));
        assert_eq!(
            format!("{:?}", PayloadHasher::new(expected)),
            "PayloadHasher { .. }"
        );
    }
}
