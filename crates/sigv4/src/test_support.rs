//! Owned requests for tests, and a reference signer built from this crate's own canonicalizer
//! (correctness of the canonicalizer itself is established by the AWS suite and the aws-sigv4
//! oracle, not by this signer).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::canonical::write_canonical_prefix;
use crate::date::parse_amz_date;
use crate::encoding::hex32;
use crate::{CanonicalForm, SignedRequest, SigningKey};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn new(method: &str, target: &str, headers: &[(&str, &str)]) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    pub fn body_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.body).into()
    }

    /// Runs `f` on a borrowed view of this request.
    pub fn with<R>(&self, f: impl FnOnce(&SignedRequest<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let request = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
        };
        f(&request)
    }
}

pub(crate) fn at(amz_date: &str) -> SystemTime {
    let secs = parse_amz_date(amz_date.as_bytes()).expect("valid test date");
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

/// Signs `request` in the header form: adds `x-amz-date` and `Authorization`, signing `host`,
/// `x-amz-*` and any extra names in `also_sign`, with `payload_line` as the payload hash.
pub(crate) fn sign_header_form(
    request: &mut OwnedRequest,
    form: CanonicalForm,
    secret: &str,
    credential_scope: (&str, &str, &str, &str),
    amz_date: &str,
    also_sign: &[&str],
    payload_line: &str,
) {
    let (akid, date, region, service) = credential_scope;
    request
        .headers
        .push(("X-Amz-Date".to_owned(), amz_date.as_bytes().to_vec()));
    let mut names: Vec<String> = request
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n == "host" || n.starts_with("x-amz-") || also_sign.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let signed_headers = names.join(";");
    let mut canonical = Vec::new();
    request.with(|r| {
        write_canonical_prefix(&mut canonical, r, form, false, &signed_headers).unwrap();
    });
    canonical.extend_from_slice(payload_line.as_bytes());
    let hash = hex32(&Sha256::digest(&canonical).into());
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let key = SigningKey::derive(secret.as_bytes(), date, region, service);
    let signature = key.sign(&[
        b"AWS4-HMAC-SHA256\n",
        amz_date.as_bytes(),
        b"\n",
        scope.as_bytes(),
        b"\n",
        &hash,
    ]);
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        String::from_utf8(hex32(&signature).to_vec()).unwrap()
    );
    request
        .headers
        .push(("Authorization".to_owned(), authorization.into_bytes()));
}
