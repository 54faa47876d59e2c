//! SigV4 body check while streaming.
//!
//! A request that declared its body's SHA-256 in `x-amz-content-sha256` has its signature
//! checked before the body arrives; the body is then checked on its way to MLflow by
//! [`VerifyingBody`]: every chunk is hashed, and the **last chunk is held back** until the hash
//! is known to match. On a mismatch the body fails instead of ending, hyper aborts the upstream
//! request (MLflow sees fewer bytes than `Content-Length` and drops the request), and the client
//! gets 403 ([`PayloadRejected`], mapped by the forward stage). MLflow therefore never
//! sees a complete request whose body does not match its signature. Memory: one chunk.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use mlgate_sigv4::{PayloadHasher, SigV4Error};

#[cfg(test)]
use crate::error::find_in_chain;
use crate::error::{AuthFailure, AuthFailureKind, GatewayError};
use crate::identity::AuthMethod;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body did not hash to its declared `x-amz-content-sha256`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadRejected(pub SigV4Error);

/// The 403 the client gets.
impl From<&PayloadRejected> for GatewayError {
    fn from(rejected: &PayloadRejected) -> Self {
        GatewayError::Authentication(AuthFailure::new(
            Some(AuthMethod::Sigv4),
            AuthFailureKind::SignatureRejected,
            format!("AWS SigV4 authentication failed: {}", rejected.0),
        ))
    }
}

/// Wraps a request body so that it only ends if it hashes to the declared value.
pub struct VerifyingBody {
    inner: Body,
    hasher: Option<PayloadHasher>,
    /// The frame held back until the next one (or the end) arrives.
    held: Option<Frame<Bytes>>,
    done: bool,
}

impl VerifyingBody {
    pub fn new(inner: Body, hasher: PayloadHasher) -> VerifyingBody {
        VerifyingBody {
            inner,
            hasher: Some(hasher),
            held: None,
            done: false,
        }
    }

    /// The wrapped body, ready for the forward stage.
    pub fn into_body(self) -> Body {
        Body::new(self)
    }
}

impl http_body::Body for VerifyingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(this.held.take().map(Ok));
        }
        loop {
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let (Some(data), Some(hasher)) = (frame.data_ref(), this.hasher.as_mut()) {
                        hasher.update(data);
                    }
                    // Release the previous frame, hold this one.
                    if let Some(previous) = this.held.replace(frame) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    this.held = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => {
                    this.done = true;
                    let result = this.hasher.take().map_or(Ok(()), PayloadHasher::finish);
                    return match result {
                        Ok(()) => Poll::Ready(this.held.take().map(Ok)),
                        Err(e) => {
                            this.held = None;
                            Poll::Ready(Some(Err(Box::new(PayloadRejected(e)))))
                        }
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Same length as the inner body when it matches; keeps `Content-Length` forwarding.
        let mut hint = self.inner.size_hint();
        if let Some(held) = self.held.as_ref().and_then(Frame::data_ref) {
            let n = held.len() as u64;
            hint.set_lower(hint.lower().saturating_add(n));
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper.saturating_add(n));
            }
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use http_body_util::channel::Channel;
    use sha2::{Digest, Sha256};

    use super::*;

    fn hasher_for(data: &[u8]) -> PayloadHasher {
        PayloadHasher::new(Sha256::digest(data).into())
    }

    #[tokio::test]
    async fn a_matching_body_passes_whole() {
        let (mut tx, channel) = Channel::<Bytes>::new(4);
        let body = VerifyingBody::new(Body::new(channel), hasher_for(b"hello world")).into_body();
        tokio::spawn(async move {
            tx.send_data(Bytes::from_static(b"hello ")).await.unwrap();
            tx.send_data(Bytes::from_static(b"world")).await.unwrap();
        });
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hello world");
    }

    #[tokio::test]
    async fn a_mismatch_never_releases_the_last_chunk() {
        let (mut tx, channel) = Channel::<Bytes>::new(4);
        let mut body = VerifyingBody::new(Body::new(channel), hasher_for(b"hello world"));
        tokio::spawn(async move {
            tx.send_data(Bytes::from_static(b"hello ")).await.unwrap();
            tx.send_data(Bytes::from_static(b"WORLD")).await.unwrap();
        });
        let mut seen = Vec::new();
        let error = loop {
            match body.frame().await {
                Some(Ok(frame)) => seen.extend_from_slice(frame.data_ref().unwrap()),
                Some(Err(e)) => break e,
                None => panic!("a mismatching body must not end normally"),
            }
        };
        assert_eq!(seen, b"hello ", "the last chunk was held back");
        let rejected = find_in_chain::<PayloadRejected>(error.as_ref()).expect("payload rejection");
        assert_eq!(rejected.0, SigV4Error::PayloadHashMismatch);
        assert_eq!(GatewayError::from(rejected).status().as_u16(), 403);
    }

    #[tokio::test]
    async fn an_empty_body_is_checked_too() {
        let body = VerifyingBody::new(Body::empty(), hasher_for(b"")).into_body();
        assert!(body.collect().await.is_ok());
        let body = VerifyingBody::new(Body::empty(), hasher_for(b"x")).into_body();
        assert!(body.collect().await.is_err());
    }
}
