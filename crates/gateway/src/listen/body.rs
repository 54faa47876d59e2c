//! Slow-client protection for request bodies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

#[cfg(test)]
use crate::error::find_in_chain;
use crate::error::{ClientStall, GatewayError};

/// The client paused longer than allowed while sending its body.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body data for {} s", .0.as_secs_f64())]
pub struct BodyTimeout(pub Duration);

impl From<&BodyTimeout> for GatewayError {
    fn from(timeout: &BodyTimeout) -> Self {
        GatewayError::ClientTimeout(ClientStall::Idle { idle: timeout.0 })
    }
}

/// A request body that fails with [`BodyTimeout`] when the client sends nothing for `idle`.
/// The clock only runs while the body is being waited for, so a slow upstream is not the
/// client's fault.
pub struct IdleTimeout {
    inner: Body,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl IdleTimeout {
    pub fn new(inner: Body, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            timer: None,
        }
    }
}

impl http_body::Body for IdleTimeout {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(idle))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use http_body_util::channel::Channel;

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let (mut tx, channel) = Channel::<Bytes>::new(1);
        let mut body = IdleTimeout::new(Body::new(channel), Duration::from_millis(50));
        tx.send_data(Bytes::from_static(b"x")).await.expect("send");
        let first = body.frame().await.expect("frame").expect("ok");
        assert_eq!(first.into_data().expect("data"), "x");
        let error = body
            .frame()
            .await
            .expect("an error frame")
            .expect_err("times out");
        assert!(find_in_chain::<BodyTimeout>(error.as_ref()).is_some());
    }

    #[tokio::test]
    async fn a_complete_body_passes() {
        let body = IdleTimeout::new(Body::from("hello"), Duration::from_millis(50));
        let bytes = body.collect().await.expect("collect").to_bytes();
        assert_eq!(bytes, "hello");
    }
}
