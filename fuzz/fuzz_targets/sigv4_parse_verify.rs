#![no_main]
//! Arbitrary method, path, query and headers through the SigV4 verifier: it must refuse what it
//! cannot verify without panicking, and never accept a forged signature.
//!
//! Input: fields separated by 0xFF: `selector, method, path, query, authorization-tail, then
//! (header name, header value) pairs`. Selector bits prepend well-formed pieces (an
//! Authorization prefix, presigned parameters, host and date headers) so the fuzzer reaches
//! canonicalization and the keyed step instead of stopping at the first parse error.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mlgate_sigv4::{SignedRequest, Verifier, VerifierConfig};

const SIGNED_AT: u64 = 1_440_938_160; // 20150830T123600Z

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        Verifier::new(VerifierConfig {
            services: vec!["execute-api".into(), "service".into()],
            ..VerifierConfig::default()
        })
        .expect("valid config")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|&b| b == 0xff);
    let selector = fields.next().and_then(|f| f.first().copied()).unwrap_or(0);
    let mut text = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let method = text();
    let path = text();
    let mut query = text();
    let mut authorization = text();

    if selector & 1 != 0 {
        authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, {authorization}"
        );
    }
    if selector & 2 != 0 {
        query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&{query}"
        );
    }
    let mut owned: Vec<(String, Vec<u8>)> = Vec::new();
    if selector & 4 != 0 {
        owned.push(("host".into(), b"example.amazonaws.com".to_vec()));
        owned.push(("x-amz-date".into(), b"20150830T123600Z".to_vec()));
    }
    if !authorization.is_empty() {
        owned.push(("authorization".into(), authorization.into_bytes()));
    }
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        owned.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    let headers: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let request = SignedRequest {
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
    };

    // Within and around the skew window and presigned expiry.
    let now = UNIX_EPOCH + Duration::from_secs(SIGNED_AT - 400 + u64::from(selector >> 3) * 8);
    if let Ok(pending) = verifier().parse_and_check(&request, now) {
        let key = pending.derive_signing_key(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        // Without the secret no input can carry a valid signature (2^-256 aside).
        for body in [None, Some(&[0u8; 32])] {
            assert!(pending.verify(&key, body).is_err());
        }
    }
});
