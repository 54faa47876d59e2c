//! IAM-JSON policies with AWS's evaluation semantics. Pure: no I/O, no clock, no globals.
//!
//! The language as implemented, with every quirk and deviation, is specified in
//! `docs/policy-reference.md`; the tests pin it.
//!
//! ```
//! use mlgate_policy::{evaluate, Context, Decision, NamedPolicy, PolicyDocument, Request};
//!
//! let document = PolicyDocument::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": {"Sid": "ReadOwn", "Effect": "Allow", "Action": "mlflow:Get*",
//!                   "Resource": "arn:mlflow:*:111122223333:experiment/*",
//!                   "Condition": {"StringEquals": {"mlflow:ResourceCreator": "${aws:username}"}}}
//! }"#)?;
//! let policies = [NamedPolicy { name: "readers".into(), document }];
//! let mut context = Context::default();
//! context.insert("aws:username", "alice");
//! context.insert("mlflow:ResourceCreator", "alice");
//! let request = Request {
//!     action: "mlflow:GetRun",
//!     resource: "arn:mlflow:us-east-1:111122223333:experiment/1",
//!     principal: None,
//!     context: &context,
//! };
//! match evaluate(&policies, &request) {
//!     Decision::Allow(by) => assert_eq!((by.policy.as_str(), by.statement.as_str()), ("readers", "ReadOwn")),
//!     other => panic!("expected Allow, got {other:?}"),
//! }
//! # Ok::<(), mlgate_policy::PolicyError>(())
//! ```

mod action;
mod arn;
mod bound;
mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod explain;
mod glob;
mod index;
mod json;
mod principal;
mod scalar;
#[cfg(test)]
mod test_rng;
mod variables;

pub use bound::{Asked, KeyBound, key_bound};
pub use context::Context;
pub use document::{MAX_POLICY_BYTES, PolicyDocument};
pub use error::PolicyError;
pub use evaluate::{Decision, Determining, NamedPolicy, Request, evaluate};
pub use explain::{Miss, StatementTrace, explain};
