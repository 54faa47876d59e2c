//! Parses arbitrary bytes as a policy (both as an identity and as a resource policy) and
//! evaluates whatever parses against an arbitrary request. Must never panic.
//!
//! Input layout, split at NUL bytes: policy JSON, action, resource, principal, then
//! `key=value` context entries. Missing parts are empty; an empty principal is anonymous.
//!
//! Run from `fuzz/`, with the hand-written seeds and the grammar's tokens:
//! `cargo +nightly fuzz run policy_parse_eval corpus/policy_parse_eval seeds/policy_parse_eval
//! -- -dict=policy_parse_eval.dict -max_len=8192`

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlgate_policy::{Context, Decision, NamedPolicy, PolicyDocument, Request, evaluate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let policy = parts.next().unwrap_or_default();
    let action = parts.next().unwrap_or_default();
    let resource = parts.next().unwrap_or_default();
    let principal = parts.next().filter(|p| !p.is_empty());
    let mut context = Context::default();
    for entry in parts {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        context.insert(key, value);
    }
    let request = Request {
        action,
        resource,
        principal,
        context: &context,
    };

    for parsed in [
        PolicyDocument::parse(policy),
        PolicyDocument::parse_resource_policy(policy),
    ] {
        match parsed {
            Ok(document) => {
                assert_eq!(document.to_json(), policy);
                let policies = [NamedPolicy {
                    name: "fuzz".into(),
                    document,
                }];
                let decision = evaluate(&policies, &request);
                // A decision always names a statement of the one policy, or none.
                if let Decision::Allow(by) | Decision::ExplicitDeny(by) = decision {
                    assert_eq!(by.policy, "fuzz");
                }
            }
            Err(error) => {
                // Errors render, and a statement error carries its index.
                let message = error.to_string();
                assert!(!message.is_empty());
                if let Some(index) = error.statement_index() {
                    assert!(message.starts_with(&format!("statement {index}")));
                }
            }
        }
    }
});
