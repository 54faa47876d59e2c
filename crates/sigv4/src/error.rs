//! Why a SigV4 request was refused, in words that are safe to send back to the client.
//!
//! Messages never contain a secret, a derived key, the expected signature or a session token.
//! They may repeat what the client sent in a field that parsing already restricted to a small
//! character set (a region, a service, a header name), and server times, as AWS does, so that a
//! client can see what to fix.

use crate::date::AmzTime;

/// A SigV4 verification failure. `Display` is the client-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// Neither an `Authorization: AWS4-...` header nor a presigned query: the request may carry
    /// another kind of credential.
    #[error("the request carries no AWS Signature Version 4 credentials")]
    Missing,
    /// The header or query does not follow the SigV4 grammar; the text says which part.
    #[error("malformed SigV4 authorization: {0}")]
    Malformed(&'static str),
    /// An `AWS4-*` algorithm other than `AWS4-HMAC-SHA256` (for example SigV4a).
    #[error("unsupported signing algorithm: only AWS4-HMAC-SHA256 is accepted")]
    UnsupportedAlgorithm,
    /// `x-amz-content-sha256` names a streaming (aws-chunked) payload mode.
    #[error(
        "streaming (aws-chunked) payload signing is not supported: send the body's SHA-256 in x-amz-content-sha256"
    )]
    UnsupportedPayload,
    /// Header form: the request was signed longer ago than the allowed clock skew.
    #[error(
        "signature expired: the request was signed at {signed_at}, server time is {now} and the allowed clock skew is {skew_secs} s"
    )]
    Expired {
        signed_at: AmzTime,
        now: AmzTime,
        skew_secs: u64,
    },
    /// Presigned form: `X-Amz-Date + X-Amz-Expires` is in the past.
    #[error("the presigned URL expired at {expired_at}; server time is {now}")]
    PresignedExpired { expired_at: AmzTime, now: AmzTime },
    /// The request date is further in the future than the allowed clock skew.
    #[error(
        "signature not yet current: the request is dated {signed_at}, server time is {now} and the allowed clock skew is {skew_secs} s"
    )]
    NotYetValid {
        signed_at: AmzTime,
        now: AmzTime,
        skew_secs: u64,
    },
    /// `X-Amz-Expires` is outside `1..=max_secs`.
    #[error("X-Amz-Expires must be between 1 and {max_secs} seconds")]
    ExpiresOutOfRange { max_secs: u64 },
    /// The date in the credential scope is not the date of `x-amz-date` / `X-Amz-Date`.
    #[error("the credential scope date does not match the request date (x-amz-date)")]
    ScopeDateMismatch,
    /// The credential scope names a region this endpoint does not accept.
    #[error("credential scope region '{got}' is not accepted here; expected {expected}")]
    WrongRegion { got: String, expected: String },
    /// The credential scope names a service this endpoint does not accept.
    #[error("credential scope service '{got}' is not accepted here; expected {expected}")]
    WrongService { got: String, expected: String },
    /// A header that must be covered by the signature is missing from `SignedHeaders`.
    #[error("header '{0}' must be signed (listed in SignedHeaders)")]
    UnsignedHeader(String),
    /// `SignedHeaders` names a header the request does not carry.
    #[error("signed header '{0}' is not present in the request")]
    MissingSignedHeader(String),
    /// The gateway knows no access key with this id.
    #[error("the access key id in the request is not known")]
    UnknownAccessKey,
    /// The access key exists but is deactivated.
    #[error("the access key in the request is inactive")]
    InactiveAccessKey,
    /// The session token does not belong to the temporary access key, or is missing.
    #[error("the session token in the request is invalid")]
    InvalidSessionToken,
    /// Temporary credentials past their expiry.
    #[error("the temporary credentials in the request have expired")]
    CredentialsExpired,
    /// The signature is not the one computed from the request and the key's secret.
    #[error(
        "the request signature does not match the signature computed from the request and the secret key; check the key and the signing method"
    )]
    SignatureMismatch,
    /// The body does not hash to the declared `x-amz-content-sha256`.
    #[error("the request body does not match its x-amz-content-sha256")]
    PayloadHashMismatch,
    /// No `x-amz-content-sha256` and the caller will not hash the body before forwarding it.
    #[error("this request must declare the SHA-256 of its body in x-amz-content-sha256")]
    PayloadHashRequired,
}

impl SigV4Error {
    /// The AWS error code closest to this failure, for AWS-shaped (STS XML) error responses and
    /// for audit records.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationToken",
            Self::Malformed(_)
            | Self::UnsupportedAlgorithm
            | Self::ExpiresOutOfRange { .. }
            | Self::UnsignedHeader(_)
            | Self::PayloadHashRequired => "IncompleteSignature",
            Self::UnsupportedPayload => "NotImplemented",
            Self::PresignedExpired { .. } => "RequestExpired",
            Self::UnknownAccessKey | Self::InactiveAccessKey | Self::InvalidSessionToken => {
                "InvalidClientTokenId"
            }
            Self::CredentialsExpired => "ExpiredToken",
            Self::PayloadHashMismatch => "XAmzContentSHA256Mismatch",
            // AWS reports skew and scope errors as signature errors too.
            Self::Expired { .. }
            | Self::NotYetValid { .. }
            | Self::ScopeDateMismatch
            | Self::WrongRegion { .. }
            | Self::WrongService { .. }
            | Self::MissingSignedHeader(_)
            | Self::SignatureMismatch => "SignatureDoesNotMatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_specific() {
        let e = SigV4Error::Expired {
            signed_at: AmzTime(1_440_938_160),
            now: AmzTime(1_440_938_160 + 600),
            skew_secs: 300,
        };
        assert_eq!(
            e.to_string(),
            "signature expired: the request was signed at 20150830T123600Z, server time is 20150830T124600Z and the allowed clock skew is 300 s"
        );
        assert_eq!(e.aws_code(), "SignatureDoesNotMatch");
        let e = SigV4Error::WrongRegion {
            got: "eu-west-1".into(),
            expected: "us-east-1".into(),
        };
        assert_eq!(
            e.to_string(),
            "credential scope region 'eu-west-1' is not accepted here; expected us-east-1"
        );
        assert_eq!(SigV4Error::CredentialsExpired.aws_code(), "ExpiredToken");
        assert_eq!(
            SigV4Error::UnknownAccessKey.aws_code(),
            "InvalidClientTokenId"
        );
    }
}
