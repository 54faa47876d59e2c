//! Reads arbitrary bytes as the query of a `/graphql` request body (and, split at the first
//! NUL byte, its `variables` JSON): must never panic, and whatever is accepted must be a
//! bounded list of known root fields, each with a REST twin and request fields or none.
//!
//! Run from `fuzz/`: `cargo +nightly fuzz run graphql_request corpus/graphql_request
//! seeds/graphql_request -- -max_len=8192`

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlgate_catalog::{MAX_ROOT_FIELDS, graphql_request, graphql_root_fields};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (query, variables) = text.split_once('\0').unwrap_or((&text, "null"));
    let variables =
        serde_json::from_str::<serde_json::Value>(variables).unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({"query": query, "variables": variables});
    let Ok(body) = serde_json::to_vec(&body) else {
        return;
    };
    if let Ok(request) = graphql_request(&body) {
        assert!(request.fields.len() <= MAX_ROOT_FIELDS);
        for field in &request.fields {
            assert!(graphql_root_fields().any(|(name, op)| name == field.name && op == field.operation));
            assert_eq!(field.route.is_some(), field.params.is_some());
            let mut data = serde_json::json!({});
            for list in &field.model_versions {
                list.retain(&mut data, &mut |_, _| false);
            }
        }
    }
});
