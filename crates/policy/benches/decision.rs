//! Policy decision cost with 10, 100 and 1,000 statements (goal: under 10 µs median at 1,000).
//!
//! The statements are a realistic mix for a multi-team deployment (one fifth of each kind):
//!
//! 0. `Allow mlflow:Get*, mlflow:Search*` on `experiment/*` if `aws:PrincipalTag/team` equals the
//!    statement's team: a wildcard action, so the action index cannot skip it (worst case);
//! 1. `Allow` exact run-write actions on `experiment/<n>/run/*`;
//! 2. `Deny mlflow:Delete*` on `experiment/<n>` unless `mlflow:ResourceCreator` is
//!    `${aws:username}` (a wildcard Deny with a policy variable);
//! 3. `Allow` exact model-registry actions on `registered-model/model-<n>*` with
//!    `mlflow:TargetStage` and `aws:SourceIp` conditions;
//! 4. `Allow execute-api:Invoke` on the article's method/path ARNs with wildcards.
//!
//! They are split into policies of 50 statements (a principal's effective set is the union of
//! its user and group policies; one document is limited to 128 KiB). Two requests:
//!
//! * `allow_last`: `mlflow:GetRun` allowed only by the last team statement, so every candidate
//!   is evaluated, conditions included;
//! * `implicit_deny`: `mlflow:DeleteExperiment` that nothing allows: every wildcard statement is
//!   looked at and every Deny's resource is compared.
//!
//! Run: `cargo bench -p mlgate-policy --bench decision` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mlgate_policy::{Context, Decision, NamedPolicy, PolicyDocument, Request, evaluate};

const ACCOUNT: &str = "111111111111";
const PER_POLICY: usize = 50;

fn statement(i: usize) -> String {
    match i % 5 {
        0 => format!(
            r#"{{"Sid":"TeamRead{i}","Effect":"Allow","Action":["mlflow:Get*","mlflow:Search*"],
               "Resource":"arn:mlflow:*:{ACCOUNT}:experiment/*",
               "Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"team-{i}"}}}}}}"#
        ),
        1 => format!(
            r#"{{"Sid":"RunWrite{i}","Effect":"Allow",
               "Action":["mlflow:LogMetric","mlflow:LogBatch","mlflow:LogParam","mlflow:SetTag","mlflow:UpdateRun"],
               "Resource":"arn:mlflow:us-east-1:{ACCOUNT}:experiment/{i}/run/*"}}"#
        ),
        2 => format!(
            r#"{{"Sid":"NoForeignDelete{i}","Effect":"Deny","Action":"mlflow:Delete*",
               "Resource":"arn:mlflow:*:*:experiment/{i}",
               "Condition":{{"StringNotEquals":{{"mlflow:ResourceCreator":"${{aws:username}}"}}}}}}"#
        ),
        3 => format!(
            r#"{{"Sid":"Approve{i}","Effect":"Allow",
               "Action":["mlflow:GetRegisteredModel","mlflow:TransitionModelVersionStage","mlflow:SetRegisteredModelAlias"],
               "Resource":["arn:mlflow:*:{ACCOUNT}:registered-model/model-{i}*","arn:mlflow:*:{ACCOUNT}:registered-model/model-{i}*/version/*"],
               "Condition":{{"StringEquals":{{"mlflow:TargetStage":["Staging","Production"]}},
                            "IpAddress":{{"aws:SourceIp":["10.0.0.0/8","192.168.{}.0/24"]}}}}}}"#,
            i % 250
        ),
        _ => format!(
            r#"{{"Sid":"Article{i}","Effect":"Allow","Action":"execute-api:Invoke",
               "Resource":["arn:aws:execute-api:us-east-1:{ACCOUNT}:mlgate/prod/GET/api/2.0/mlflow/experiments/get*",
                           "arn:aws:execute-api:us-east-1:{ACCOUNT}:mlgate/prod/POST/api/2.0/mlflow/runs/search"]}}"#
        ),
    }
}

fn policies(statements: usize) -> Vec<NamedPolicy> {
    let all: Vec<String> = (0..statements).map(statement).collect();
    all.chunks(PER_POLICY)
        .enumerate()
        .map(|(n, chunk)| {
            let json = format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                chunk.join(",")
            );
            NamedPolicy {
                name: format!("group/team-{n}/inline"),
                document: PolicyDocument::parse(&json).expect("benchmark policy parses"),
            }
        })
        .collect()
}

fn context(statements: usize) -> Context {
    // The last team-read statement is the only one whose condition holds.
    let last_team = (statements - 1) / 5 * 5;
    let mut context = Context::default();
    context.insert("aws:username", "alice");
    context.insert(
        "aws:PrincipalArn",
        format!("arn:aws:iam::{ACCOUNT}:user/alice"),
    );
    context.insert("aws:PrincipalTag/team", format!("team-{last_team}"));
    context.insert("aws:SourceIp", "10.1.2.3");
    context.insert("aws:SecureTransport", "true");
    context.insert("mlgate:AuthMethod", "token");
    context.insert("mlflow:ResourceCreator", "bob");
    context
}

fn bench_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_decision");
    for statements in [10usize, 100, 1_000] {
        let policies = policies(statements);
        let context = context(statements);
        let allow = Request {
            action: "mlflow:GetRun",
            resource: "arn:mlflow:us-east-1:111111111111:experiment/7/run/0123456789abcdef0123456789abcdef",
            principal: Some("arn:aws:iam::111111111111:user/alice"),
            context: &context,
        };
        assert!(
            matches!(evaluate(&policies, &allow), Decision::Allow(_)),
            "allow_last must be allowed"
        );
        let deny = Request {
            action: "mlflow:DeleteExperiment",
            resource: "arn:mlflow:us-east-1:111111111111:experiment/999999",
            principal: Some("arn:aws:iam::111111111111:user/alice"),
            context: &context,
        };
        assert_eq!(evaluate(&policies, &deny), Decision::ImplicitDeny);

        group.bench_with_input(
            BenchmarkId::new("allow_last", statements),
            &allow,
            |b, request| {
                b.iter(|| evaluate(black_box(&policies), black_box(request)));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("implicit_deny", statements),
            &deny,
            |b, request| {
                b.iter(|| evaluate(black_box(&policies), black_box(request)));
            },
        );
    }
    group.finish();
}

/// The shipped role policies (`policies/*.json`) on the requests the gateway benchmark sends.
fn bench_shipped(c: &mut Criterion) {
    let load = |name: &str| {
        let path = format!("{}/../../policies/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        NamedPolicy {
            name: format!("group/{name}"),
            document: PolicyDocument::parse(&json).expect("shipped policy parses"),
        }
    };
    let policies = [load("readers"), load("model-approvers")];
    let context = context(10);
    let request = Request {
        action: "mlflow:GetExperiment",
        resource: "arn:mlflow:us-east-1:111111111111:experiment/1",
        principal: Some("arn:aws:iam::111111111111:user/alice"),
        context: &context,
    };
    assert!(evaluate(&policies, &request).is_allowed());
    c.bench_function("policy_decision/shipped_readers_get_experiment", |b| {
        b.iter(|| evaluate(black_box(&policies), black_box(&request)));
    });
}

criterion_group!(benches, bench_decision, bench_shipped);
criterion_main!(benches);
