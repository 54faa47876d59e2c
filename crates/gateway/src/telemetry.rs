//! Prometheus metrics, served on the admin listener (`--admin-listen`, docs/observability.md);
//! OpenTelemetry traces are in [`traces`].
//! The stages record through the `metrics` facade with these functions; until [`install`] runs
//! (no admin listener) each of them returns at once, so the hot path pays one relaxed load.
//! Every label value is from a closed set (decisions, authentication methods, the catalog's
//! operation names, status codes, cache names): never a path, an id or a user name.

pub mod traces;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "mlgate_requests_total";
pub const REQUEST_DURATION: &str = "mlgate_request_duration_seconds";
pub const DECISION_DURATION: &str = "mlgate_decision_duration_seconds";
pub const UPSTREAM_DURATION: &str = "mlgate_upstream_duration_seconds";
pub const UPSTREAM_ERRORS: &str = "mlgate_upstream_errors_total";
pub const UPSTREAM_TIMEOUTS: &str = "mlgate_upstream_timeouts_total";
pub const STORE_ERRORS: &str = "mlgate_store_errors_total";
pub const CACHE_LOOKUPS: &str = "mlgate_cache_lookups_total";
pub const CACHE_MISSES: &str = "mlgate_cache_misses_total";
pub const AUDIT_QUEUE_DEPTH: &str = "mlgate_audit_queue_depth";
pub const AUDIT_DROPPED: &str = "mlgate_audit_dropped_records_total";
pub const JWKS_REFRESHES: &str = "mlgate_jwks_refreshes_total";
pub const ACTIVE_SESSIONS: &str = "mlgate_active_sessions";

/// The `operation` label of a request under mlgate's reserved prefix (sign-in, probes, STS).
pub const OPERATION_MLGATE: &str = "mlgate";
/// The `operation` label of a route MLflow does not serve.
pub const OPERATION_UNKNOWN: &str = "unknown";
/// The `operation` label of a request answered before it was classified (no or a bad
/// credential, a malformed path).
pub const OPERATION_NONE: &str = "none";

/// Latency buckets, in seconds: from a cached decision (well under a millisecond) to an upload
/// or a slow MLflow (tens of seconds).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the recorder folds histogram samples between scrapes, so memory stays bounded
/// however rarely Prometheus scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Set once a recorder is installed; until then nothing is recorded (not even label sets built).
static RECORDING: AtomicBool = AtomicBool::new(false);

fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// Installs the process's Prometheus recorder (once) and starts its upkeep; the handle renders
/// the exposition for `GET /metrics`.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)?
        .install_recorder()?;
    describe();
    RECORDING.store(true, Ordering::Relaxed);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests answered, by decision, authentication method, MLflow operation and status."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from the request head to the answer head, by decision."
    );
    describe_histogram!(
        DECISION_DURATION,
        Unit::Seconds,
        "Time the authorize stage took to decide a request (policies loaded, every resource decided)."
    );
    describe_histogram!(
        UPSTREAM_DURATION,
        Unit::Seconds,
        "Time MLflow took to send its answer head, for forwarded requests and mlgate's lookups."
    );
    describe_counter!(
        UPSTREAM_ERRORS,
        "Requests answered 502 because MLflow failed, by what failed."
    );
    describe_counter!(
        UPSTREAM_TIMEOUTS,
        "Requests answered 504 because MLflow did not answer in time."
    );
    describe_counter!(
        STORE_ERRORS,
        "Requests answered 503 because mlgate's store could not be read."
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Lookups in the caches of what MLflow said, by cache."
    );
    describe_counter!(
        CACHE_MISSES,
        "Lookups that had to ask MLflow, by cache (hit ratio: 1 - misses / lookups)."
    );
    describe_gauge!(
        AUDIT_QUEUE_DEPTH,
        "Audit records waiting for the writer, when scraped."
    );
    describe_counter!(
        AUDIT_DROPPED,
        "Audit records dropped because the writer was behind (--audit-overload drop)."
    );
    describe_gauge!(
        ACTIVE_SESSIONS,
        "Browser sessions that have not ended, when scraped (shared by replicas on one store)."
    );
    describe_counter!(
        JWKS_REFRESHES,
        "Fetches of an OIDC issuer's keys, by result."
    );
}

/// One answered request's labels.
pub struct RequestLabels {
    pub decision: &'static str,
    pub auth_method: &'static str,
    pub operation: &'static str,
    pub status: http::StatusCode,
}

pub fn request(labels: &RequestLabels, seconds: f64) {
    if !recording() {
        return;
    }
    counter!(
        REQUESTS,
        "decision" => labels.decision,
        "auth_method" => labels.auth_method,
        "operation" => labels.operation,
        "status" => labels.status.as_str().to_owned(),
    )
    .increment(1);
    histogram!(REQUEST_DURATION, "decision" => labels.decision).record(seconds);
}

pub fn decision(elapsed: Duration) {
    if recording() {
        histogram!(DECISION_DURATION).record(elapsed);
    }
}

pub fn upstream(elapsed: Duration) {
    if recording() {
        histogram!(UPSTREAM_DURATION).record(elapsed);
    }
}

/// MLflow failed; `kind` says how (unreachable, connection closed, ...).
pub fn upstream_error(kind: &'static str) {
    if recording() {
        counter!(UPSTREAM_ERRORS, "kind" => kind).increment(1);
    }
}

pub fn upstream_timeout() {
    if recording() {
        counter!(UPSTREAM_TIMEOUTS).increment(1);
    }
}

pub fn store_error() {
    if recording() {
        counter!(STORE_ERRORS).increment(1);
    }
}

/// A lookup in `cache`; [`cache_miss`] when the value had to be fetched.
pub fn cache_lookup(cache: &'static str) {
    if recording() {
        counter!(CACHE_LOOKUPS, "cache" => cache).increment(1);
    }
}

pub fn cache_miss(cache: &'static str) {
    if recording() {
        counter!(CACHE_MISSES, "cache" => cache).increment(1);
    }
}

pub fn jwks_refresh(succeeded: bool) {
    if recording() {
        let result = if succeeded { "ok" } else { "failed" };
        counter!(JWKS_REFRESHES, "result" => result).increment(1);
    }
}

/// The audit writer's state, sampled when the metrics are scraped.
pub fn audit(queued: usize, dropped: u64) {
    if recording() {
        gauge!(AUDIT_QUEUE_DEPTH).set(queued as f64);
        counter!(AUDIT_DROPPED).absolute(dropped);
    }
}

pub fn sessions(live: i64) {
    if recording() {
        gauge!(ACTIVE_SESSIONS).set(live as f64);
    }
}
