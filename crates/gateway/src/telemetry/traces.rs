//! OpenTelemetry traces, exported over OTLP/HTTP when `--otlp-endpoint` is set
//! (docs/observability.md).
//!
//! A request gets a server span that continues the caller's W3C `traceparent`, with a child span
//! per stage that can take time ([`Stage`]). Every request mlgate sends MLflow while a span is
//! current (the forwarded request, side lookups, search pages) carries that span as its
//! `traceparent`, so MLflow's spans join the caller's trace under mlgate's.
//!
//! Spans leave in batches from a thread of their own and are dropped when the collector falls
//! behind: a slow or absent collector never slows a request. Without `--otlp-endpoint` no span is
//! made, and the caller's `traceparent` reaches MLflow unchanged.

use std::fmt::Display;
use std::future::Future;

use http::{HeaderMap, Method, StatusCode, Uri};
use opentelemetry::context::FutureExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{ExporterBuildError, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The path OTLP/HTTP receivers take spans on, under the endpoint's base URL.
const TRACES_PATH: &str = "v1/traces";

/// Starts the spans of requests; does nothing when traces are off (the default).
#[derive(Clone, Debug, Default)]
pub struct Traces {
    tracer: Option<SdkTracer>,
}

/// The exporter's batching thread: [`Exporter::shutdown`] sends what is queued.
#[derive(Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
}

/// The stages of a request that get spans of their own.
#[derive(Clone, Copy, Debug)]
pub enum Stage {
    Authenticate,
    Resolve,
    Authorize,
    /// A search answered page by page with only readable items (its pages are MLflow calls).
    Filter,
    Forward,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Authenticate => "authenticate",
            Stage::Resolve => "resolve",
            Stage::Authorize => "authorize",
            Stage::Filter => "filter",
            Stage::Forward => "forward",
        }
    }

    fn kind(self) -> SpanKind {
        match self {
            Stage::Forward => SpanKind::Client,
            _ => SpanKind::Internal,
        }
    }
}

/// Traces on: spans of requests go to the OTLP/HTTP receiver at `endpoint` (a base URL such as
/// `http://collector:4318`; spans are posted to `<endpoint>/v1/traces`). The service name and
/// the sampler follow the standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` variables (default: `mlgate`, and the
/// caller's sampling decision, else every request); `OTEL_EXPORTER_OTLP_HEADERS` adds headers
/// to the exports (a collector's credentials).
pub fn install(endpoint: &Uri) -> Result<(Traces, Exporter), ExporterBuildError> {
    let base = endpoint.to_string();
    let separator = if base.ends_with('/') { "" } else { "/" };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}{separator}{TRACES_PATH}"))
        .build()?;
    let resource = Resource::builder()
        .with_service_name(service_name())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    Ok((
        Traces {
            tracer: Some(tracer),
        },
        Exporter { provider },
    ))
}

/// `OTEL_SERVICE_NAME` when set (the SDK reads it too, but a name given in code would win).
fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_NAME").to_owned())
}

impl Exporter {
    /// Sends the queued spans and stops the batching thread. Blocks: call it off the runtime.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last spans could not be exported");
        }
    }
}

/// A request's server span.
#[derive(Debug)]
pub struct RequestSpan {
    context: Context,
}

impl Traces {
    /// The server span of a request, continuing the trace its `traceparent` names; `None` when
    /// traces are off.
    pub fn request(&self, method: &Method, headers: &HeaderMap) -> Option<RequestSpan> {
        let tracer = self.tracer.as_ref()?;
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let span = tracer
            .span_builder(method.to_string())
            .with_kind(SpanKind::Server)
            .start_with_context(tracer, &parent);
        Some(RequestSpan {
            context: parent.with_span(span),
        })
    }

    /// Runs `work` as one stage of the current request, in a span of its own; a stage that
    /// fails marks its span with the error.
    pub async fn stage<T, E: Display>(
        &self,
        stage: Stage,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let Some(tracer) = &self.tracer else {
            return work.await;
        };
        let parent = Context::current();
        let span = tracer
            .span_builder(stage.name())
            .with_kind(stage.kind())
            .start_with_context(tracer, &parent);
        let context = parent.with_span(span);
        let result = work.with_context(context.clone()).await;
        let span = context.span();
        if let Err(error) = &result {
            span.set_status(Status::error(error.to_string()));
        }
        span.end();
        result
    }
}

/// Runs a request's processing with its span current (or as it is, when traces are off).
pub async fn within<T>(span: Option<&RequestSpan>, work: impl Future<Output = T>) -> T {
    match span {
        Some(span) => work.with_context(span.context.clone()).await,
        None => work.await,
    }
}

/// What a request's span records when it ends (the audit record's fields).
#[derive(Debug)]
pub struct Answered<'a> {
    pub method: &'a str,
    /// The normalized path.
    pub path: &'a str,
    /// The catalog's operation name (the metrics' `operation` label).
    pub operation: &'a str,
    pub status: StatusCode,
    pub client_ip: &'a str,
    pub request_id: &'a str,
    pub decision: &'static str,
    pub principal: Option<&'a str>,
    pub auth_method: Option<&'static str>,
    /// The deciding statement, for allow and explicit deny.
    pub statement: Option<&'a str>,
    /// Why the request was refused.
    pub reason: Option<&'a str>,
}

impl RequestSpan {
    /// Names the span after the MLflow operation, records the answer, and ends the span. Only
    /// server errors mark it failed: a refusal is mlgate doing its job.
    pub fn finish(self, answered: &Answered<'_>) {
        let span = self.context.span();
        span.update_name(format!("{} {}", answered.method, answered.operation));
        let mut attributes = vec![
            KeyValue::new("http.request.method", answered.method.to_owned()),
            KeyValue::new("url.path", answered.path.to_owned()),
            KeyValue::new(
                "http.response.status_code",
                i64::from(answered.status.as_u16()),
            ),
            KeyValue::new("client.address", answered.client_ip.to_owned()),
            KeyValue::new("mlgate.request_id", answered.request_id.to_owned()),
            KeyValue::new("mlgate.operation", answered.operation.to_owned()),
            KeyValue::new("mlgate.decision", answered.decision),
        ];
        let optional = [
            ("enduser.id", answered.principal),
            ("mlgate.auth_method", answered.auth_method),
            ("mlgate.statement", answered.statement),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                attributes.push(KeyValue::new(key, value.to_owned()));
            }
        }
        span.set_attributes(attributes);
        if answered.status.is_server_error() {
            span.set_status(Status::error(
                answered.reason.unwrap_or_default().to_owned(),
            ));
        }
        span.end();
    }
}

/// Puts the current span into a request to MLflow as its `traceparent` (and `tracestate`),
/// replacing the caller's. Without a current span (traces off) the headers stay as they are.
pub fn propagate(headers: &mut HeaderMap) {
    let context = Context::current();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn traced() -> Traces {
        let provider = SdkTracerProvider::builder().build();
        Traces {
            tracer: Some(provider.tracer("test")),
        }
    }

    fn from_caller() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", CALLER.parse().unwrap());
        headers
    }

    fn parts(traceparent: &str) -> Vec<&str> {
        traceparent.split('-').collect()
    }

    #[tokio::test]
    async fn a_stage_continues_the_callers_trace_and_mlflow_gets_the_stages_span() {
        let traces = traced();
        let span = traces.request(&Method::GET, &from_caller()).unwrap();
        let sent = within(Some(&span), async {
            traces
                .stage(Stage::Forward, async {
                    let mut to_mlflow = from_caller();
                    propagate(&mut to_mlflow);
                    Ok::<_, String>(to_mlflow)
                })
                .await
        })
        .await
        .unwrap();
        let sent = sent["traceparent"].to_str().unwrap();
        let caller = parts(CALLER);
        let (sent, request_span) = (parts(sent), span.context.span().span_context().clone());
        assert_eq!(sent[1], caller[1], "the caller's trace id");
        assert_ne!(sent[2], caller[2], "mlgate's span, not the caller's");
        assert_ne!(
            sent[2],
            request_span.span_id().to_string(),
            "the stage's span"
        );
        assert_eq!(request_span.trace_id().to_string(), caller[1]);
    }

    #[tokio::test]
    async fn without_a_span_the_callers_traceparent_is_left_alone() {
        let mut headers = from_caller();
        propagate(&mut headers);
        assert_eq!(headers["traceparent"], CALLER);
        let off = Traces::default();
        assert!(off.request(&Method::GET, &headers).is_none());
        let answer = off
            .stage(Stage::Resolve, async { Ok::<_, String>(1) })
            .await;
        assert_eq!(answer, Ok(1));
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        let traces = traced();
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-zz-yy-01".parse().unwrap());
        let span = traces.request(&Method::GET, &headers).unwrap();
        let context = span.context.span().span_context().clone();
        assert!(context.is_valid());
        assert!(!context.is_remote());
    }
}
