//! `mlgate audit explain REQUEST_ID`: a request the server decided, found in the audit log and
//! decided again with today's policies ([`redecide`]), with what changed since.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::parse_key_value;
use crate::authorize::simulate::{Recorded, Simulation, redecide};
use crate::identity::AuthMethod;
use crate::listen::Peer;
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The request's id (its answer's `x-request-id`, the record's `request_id`).
    pub request_id: String,
    /// Audit files to search (default: `audit.log` in --data-dir).
    #[arg(long = "audit-log", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A condition key of the request itself (`mlflow:ExperimentName=team-a/churn`), which the
    /// record does not keep; repeatable.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub context: Vec<(String, String)>,
    /// The request came over TLS (`aws:SecureTransport`; the record does not say).
    #[arg(long)]
    pub secure_transport: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no audit record of request {0}")]
    NotFound(String),
    #[error("request {id} cannot be decided again: {why}")]
    Unexplainable { id: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the record says was decided, and what today's policies decide.
#[derive(Debug, Serialize)]
struct Explanation {
    request_id: String,
    then: Then,
    now: Simulation,
    changed: bool,
}

#[derive(Debug, Serialize, PartialEq)]
struct Then {
    decision: String,
    policy: Option<String>,
    statement: Option<String>,
}

/// Runs the command: the text (or JSON) to print.
pub async fn run(
    args: ExplainArgs,
    default_log: PathBuf,
    store: &Store,
) -> Result<String, ExplainError> {
    let files = match args.files.is_empty() {
        true => vec![default_log],
        false => args.files.clone(),
    };
    let record = find(&files, &args.request_id)?;
    let unexplainable = |why: &str| ExplainError::Unexplainable {
        id: args.request_id.clone(),
        why: why.to_owned(),
    };
    let text = |field: &str| record.get(field).and_then(Value::as_str);
    let then = Then {
        decision: match text("decision") {
            Some("allow") => "Allow",
            Some("explicit_deny") => "ExplicitDeny",
            Some("implicit_deny") => "ImplicitDeny",
            _ => return Err(unexplainable("it was not decided by policies")),
        }
        .to_owned(),
        policy: text("policy").map(str::to_owned),
        statement: text("statement").map(str::to_owned),
    };
    let strings = |field: &str, prefix: &str| -> Vec<String> {
        record
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| s.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    let actions = strings("actions", "mlflow:");
    let resources = strings("resources", "arn:mlflow:");
    let execute_api = strings("resources", "arn:aws:execute-api:");
    let ([action], [execute_api]) = (actions.as_slice(), execute_api.as_slice()) else {
        return Err(unexplainable(
            "its record names no single MLflow action and route",
        ));
    };
    // Users only: a role session's or a federated user's policies depend on credentials or
    // tokens the record does not keep.
    let (account, name) = text("principal")
        .and_then(|arn| arn.strip_prefix("arn:aws:iam::"))
        .and_then(|rest| rest.split_once(":user/"))
        .filter(|(_, name)| !name.contains('/'))
        .ok_or_else(|| unexplainable("its principal is not a built-in user"))?;
    let method = record
        .get("auth_method")
        .and_then(|m| AuthMethod::deserialize(m).ok())
        .unwrap_or(AuthMethod::Basic);
    let principal = store.get_user(Some(account), name).await?.principal(method);
    let ip: IpAddr = text("source_ip")
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| unexplainable("its record has no client address"))?;
    let time = text("time")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unexplainable("its record has no time"))?;
    let now = redecide(
        store,
        &principal,
        &Recorded {
            action,
            resources: &resources,
            execute_api,
            peer: Peer {
                ip,
                secure: args.secure_transport,
            },
            time,
            context: &args.context,
        },
    )
    .await?;
    let changed = then.decision != now.decision
        || then.policy != now.policy
        || then.statement != now.statement;
    let explanation = Explanation {
        request_id: args.request_id,
        then,
        now,
        changed,
    };
    if args.json {
        return Ok(serde_json::to_string_pretty(&explanation).unwrap_or_default());
    }
    let by = |policy: &Option<String>, statement: &Option<String>| match (policy, statement) {
        (Some(p), Some(s)) => format!(" by {p} statement {s}"),
        _ => String::new(),
    };
    let then = &explanation.then;
    Ok(format!(
        "request {}: then {}{}; now {}{}: {}\n{}",
        explanation.request_id,
        then.decision,
        by(&then.policy, &then.statement),
        explanation.now.decision,
        by(&explanation.now.policy, &explanation.now.statement),
        if explanation.changed {
            "changed"
        } else {
            "unchanged"
        },
        explanation.now
    ))
}

/// The record of `request_id` in `files`.
fn find(files: &[PathBuf], request_id: &str) -> Result<Value, ExplainError> {
    for path in files {
        let unreadable = |source| ExplainError::Read {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(unreadable)?;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(unreadable)?;
            // A cheap test first: most lines are other requests.
            if !line.contains(request_id) {
                continue;
            }
            if let Ok(record) = serde_json::from_str::<Value>(&line)
                && record.get("request_id").and_then(Value::as_str) == Some(request_id)
            {
                return Ok(record);
            }
        }
    }
    Err(ExplainError::NotFound(request_id.to_owned()))
}
