//! Route classification, path normalization and MLflow-exact parameter reading: the work the
//! gateway does on every request before it can ask the policy engine.
//!
//! Run: `cargo bench -p mlgate-catalog --bench catalog` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mlgate_catalog::{Classified, classify, normalize_path, read_params_for};

/// (name, method, path): literal routes, templated routes, the artifact proxy, a miss.
const PATHS: &[(&str, &str, &str)] = &[
    ("experiments_get", "GET", "/api/2.0/mlflow/experiments/get"),
    (
        "ajax_runs_search",
        "POST",
        "/ajax-api/2.0/mlflow/runs/search",
    ),
    (
        "artifact_download",
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts/1/0123456789abcdef0123456789abcdef/artifacts/model/MLmodel",
    ),
    (
        "trace_v3_get",
        "GET",
        "/api/3.0/mlflow/traces/tr-0123456789abcdef0123456789abcdef",
    ),
    ("unknown", "GET", "/api/2.0/mlflow/no/such/route"),
];

fn bench_classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    for (name, method, path) in PATHS {
        if *name != "unknown" {
            assert!(
                matches!(classify(method, path), Classified::Route { .. }),
                "{path} must classify"
            );
        }
        group.bench_with_input(
            BenchmarkId::from_parameter(name),
            &(method, path),
            |b, (m, p)| {
                b.iter(|| classify(black_box(m), black_box(p)));
            },
        );
    }
    group.finish();
}

fn bench_normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_path");
    let cases = [
        ("plain", "/api/2.0/mlflow/runs/search"),
        ("escaped", "/api/2.0/mlflow/runs/%73earch"),
        (
            "artifact",
            "/api/2.0/mlflow-artifacts/artifacts/1/0123456789abcdef0123456789abcdef/artifacts/model%20v2/MLmodel",
        ),
    ];
    for (name, path) in cases {
        normalize_path(path).expect("benchmark path normalizes");
        group.bench_with_input(BenchmarkId::from_parameter(name), path, |b, p| {
            b.iter(|| normalize_path(black_box(p)));
        });
    }
    group.finish();
}

fn route(method: &str, path: &str) -> &'static mlgate_catalog::Route {
    match classify(method, path) {
        Classified::Route { route, .. } => route,
        Classified::Unknown => panic!("{method} {path} must classify"),
    }
}

fn bench_params(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_params");

    let get = route("GET", "/api/2.0/mlflow/experiments/get");
    let query = "experiment_id=1";
    read_params_for(get, "GET", Some(query), None, b"").expect("query reads");
    group.bench_function("get_experiment_query", |b| {
        b.iter(|| read_params_for(black_box(get), "GET", black_box(Some(query)), None, b""));
    });

    let search = route("POST", "/api/2.0/mlflow/runs/search");
    let body = br#"{"experiment_ids":["1","2","3"],"filter":"metrics.accuracy > 0.9 and params.lr = '0.001'","run_view_type":"ACTIVE_ONLY","max_results":100,"order_by":["metrics.accuracy DESC"],"page_token":""}"#;
    read_params_for(search, "POST", None, Some("application/json"), body).expect("body reads");
    group.bench_function("search_runs_json", |b| {
        b.iter(|| {
            read_params_for(
                black_box(search),
                "POST",
                None,
                Some("application/json"),
                black_box(body),
            )
        });
    });

    let batch = route("POST", "/api/2.0/mlflow/runs/log-batch");
    let metrics: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"key":"m{i}","value":{i}.5,"timestamp":1761900000000,"step":{i}}}"#))
        .collect();
    let body = format!(
        r#"{{"run_id":"0123456789abcdef0123456789abcdef","metrics":[{}],"params":[{{"key":"lr","value":"0.001"}}],"tags":[{{"key":"mlflow.user","value":"x"}}]}}"#,
        metrics.join(",")
    );
    read_params_for(
        batch,
        "POST",
        None,
        Some("application/json"),
        body.as_bytes(),
    )
    .expect("body reads");
    group.bench_function("log_batch_50_metrics_json", |b| {
        b.iter(|| {
            read_params_for(
                black_box(batch),
                "POST",
                None,
                Some("application/json"),
                black_box(body.as_bytes()),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, bench_classify, bench_normalize, bench_params);
criterion_main!(benches);
