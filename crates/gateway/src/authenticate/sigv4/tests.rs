//! SigV4 authentication against a real store: keys, sessions, expiry, body checks.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use hmac::{Hmac, Mac};
use http::Request;
use http::request::Parts;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::*;
use crate::store::{KeyOwnerRef, NewStsSession, new_session_token};

const T0: u64 = 1_795_000_000; // 2026-11-18

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

struct Sign<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
    akid: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    service: &'a str,
    region: &'a str,
    at: u64,
    declare_hash: Option<String>,
}

impl<'a> Sign<'a> {
    fn new(akid: &'a str, secret: &'a str) -> Self {
        Sign {
            method: "GET",
            path: "/api/2.0/mlflow/experiments/get",
            query: "experiment_id=1",
            body: b"",
            akid,
            secret,
            token: None,
            service: "execute-api",
            region: "us-east-1",
            at: T0,
            declare_hash: Some(hex::encode(Sha256::digest(b""))),
        }
    }

    /// Query must already be sorted and need no encoding (the test paths are plain).
    fn build(&self) -> (Parts, Body) {
        let ts = jiff::Timestamp::from_second(i64::try_from(self.at).unwrap()).unwrap();
        let amz = ts.strftime("%Y%m%dT%H%M%SZ").to_string();
        let day = &amz[..8];
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), "mlgate.test".into()),
            ("x-amz-date".into(), amz.clone()),
        ];
        if let Some(h) = &self.declare_hash {
            headers.push(("x-amz-content-sha256".into(), h.clone()));
        }
        if let Some(t) = self.token {
            headers.push(("x-amz-security-token".into(), t.into()));
        }
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let signed = signed.join(";");
        let canon_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let payload = self
            .declare_hash
            .clone()
            .unwrap_or_else(|| hex::encode(Sha256::digest(self.body)));
        let canonical = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method, self.path, self.query, canon_headers, signed, payload
        );
        let scope = format!("{day}/{}/{}/aws4_request", self.region, self.service);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k = hmac(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes());
        let k = hmac(&k, self.region.as_bytes());
        let k = hmac(&k, self.service.as_bytes());
        let k = hmac(&k, b"aws4_request");
        let sig = hex::encode(hmac(&k, sts.as_bytes()));
        let uri = if self.query.is_empty() {
            self.path.to_owned()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let mut b = Request::builder().method(self.method).uri(uri);
        for (n, v) in &headers {
            b = b.header(n, v);
        }
        b = b.header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
                self.akid
            ),
        );
        if !self.body.is_empty() {
            b = b.header("content-length", self.body.len().to_string());
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        (parts, Body::from(self.body.to_vec()))
    }
}

fn limits() -> BodyLimits {
    BodyLimits {
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
    }
}

fn at(t: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t)
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    auth: SigV4Auth,
    akid: String,
    secret: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (master, _) = MasterKey::generate();
    store
        .create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    let (key, secret) = store
        .create_access_key(None, KeyOwnerRef::User("alice"), &master)
        .await
        .unwrap();
    let auth = SigV4Auth::new(&SigV4Settings::default(), store.clone(), master).unwrap();
    Fixture {
        _dir: dir,
        store,
        auth,
        akid: key.id,
        secret: secret.to_string(),
    }
}

async fn run(
    f: &Fixture,
    s: &Sign<'_>,
    endpoint: Endpoint,
    now: u64,
) -> Result<Verified, Rejection> {
    let (parts, body) = s.build();
    f.auth
        .verify_at(endpoint, &parts, body, limits(), at(now))
        .await
}

#[tokio::test]
async fn user_keys_authenticate_as_the_user() {
    let f = fixture().await;
    let v = run(&f, &Sign::new(&f.akid, &f.secret), Endpoint::Api, T0 + 10)
        .await
        .unwrap();
    assert_eq!(v.principal.arn, "arn:aws:iam::111111111111:user/alice");
    assert_eq!(v.principal.auth_method, AuthMethod::Sigv4);
    // Again, from the caches.
    assert!(
        run(&f, &Sign::new(&f.akid, &f.secret), Endpoint::Api, T0 + 11)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn failures_are_specific() {
    let f = fixture().await;
    let code = |r: Result<Verified, Rejection>| r.err().map(|e| e.aws_code);

    // Wrong secret → mismatch; replay outside the skew window → expired.
    let r = run(
        &f,
        &Sign::new(&f.akid, "x".repeat(40).as_str()),
        Endpoint::Api,
        T0,
    )
    .await;
    assert_eq!(code(r), Some("SignatureDoesNotMatch"));
    let r = run(&f, &Sign::new(&f.akid, &f.secret), Endpoint::Api, T0 + 301).await;
    let e = r.err().unwrap();
    assert!(e.message.contains("signature expired"), "{}", e.message);
    // Unknown key.
    let r = run(
        &f,
        &Sign::new("AKIAUNKNOWNUNKNOWN22", &f.secret),
        Endpoint::Api,
        T0,
    )
    .await;
    assert_eq!(code(r), Some("InvalidClientTokenId"));
    // Wrong service for the endpoint, both ways; wrong region.
    let mut s = Sign::new(&f.akid, &f.secret);
    s.service = "sts";
    assert!(
        run(&f, &s, Endpoint::Api, T0)
            .await
            .err()
            .unwrap()
            .message
            .contains("service 'sts'")
    );
    assert!(run(&f, &s, Endpoint::Sts, T0).await.is_ok());
    s.service = "execute-api";
    assert!(run(&f, &s, Endpoint::Sts, T0).await.is_err());
    s.region = "eu-west-1";
    assert!(
        run(&f, &s, Endpoint::Api, T0)
            .await
            .err()
            .unwrap()
            .message
            .contains("region")
    );

    // Tampered path after signing.
    let (mut parts, body) = Sign::new(&f.akid, &f.secret).build();
    parts.uri = "/api/2.0/mlflow/experiments/get?experiment_id=2"
        .parse()
        .unwrap();
    let r = f
        .auth
        .verify_at(Endpoint::Api, &parts, body, limits(), at(T0))
        .await;
    assert_eq!(code(r), Some("SignatureDoesNotMatch"));

    // Inactive key (cache TTL is 2 s in this process: forget it explicitly).
    f.store.set_access_key_active(&f.akid, false).await.unwrap();
    f.auth.forget(&f.akid).await;
    let e = run(&f, &Sign::new(&f.akid, &f.secret), Endpoint::Api, T0)
        .await
        .err()
        .unwrap();
    assert_eq!(e.message, "the access key in the request is inactive");
    let failure = e.into_failure();
    assert_eq!(failure.status().as_u16(), 403);
    assert_eq!(failure.error_code(), "PERMISSION_DENIED");
}

#[tokio::test]
async fn bodies_are_checked() {
    let f = fixture().await;
    let body = br#"{"name":"exp"}"#;
    // Declared hash, matching.
    let mut s = Sign::new(&f.akid, &f.secret);
    s.method = "POST";
    s.path = "/api/2.0/mlflow/experiments/create";
    s.query = "";
    s.body = body;
    s.declare_hash = Some(hex::encode(Sha256::digest(body)));
    let v = run(&f, &s, Endpoint::Api, T0).await.unwrap();
    assert_eq!(v.body.collect().await.unwrap().to_bytes(), &body[..]);
    // Declared hash of another body: the signature is fine, the body is not.
    s.declare_hash = Some(hex::encode(Sha256::digest(b"{}")));
    let e = run(&f, &s, Endpoint::Api, T0).await.err().unwrap();
    assert_eq!(e.aws_code, "XAmzContentSHA256Mismatch");
    // No declared hash: the body is hashed into the signature.
    s.declare_hash = None;
    assert!(run(&f, &s, Endpoint::Api, T0).await.is_ok());
    let (parts, _) = s.build();
    let r = f
        .auth
        .verify_at(
            Endpoint::Api,
            &parts,
            Body::from(r#"{"name":"EXP"}"#),
            limits(),
            at(T0),
        )
        .await;
    assert_eq!(r.err().unwrap().aws_code, "SignatureDoesNotMatch");
    // UNSIGNED-PAYLOAD with a body: refused; without: accepted.
    s.declare_hash = Some("UNSIGNED-PAYLOAD".into());
    assert!(
        run(&f, &s, Endpoint::Api, T0)
            .await
            .err()
            .unwrap()
            .message
            .contains("UNSIGNED-PAYLOAD")
    );
    let mut g = Sign::new(&f.akid, &f.secret);
    g.declare_hash = Some("UNSIGNED-PAYLOAD".into());
    assert!(run(&f, &g, Endpoint::Api, T0).await.is_ok());
}

#[tokio::test]
async fn temporary_credentials_need_their_token_and_expire() {
    let f = fixture().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}]}"#;
    f.store
        .put_role(None, "writer", trust, 3600, "")
        .await
        .unwrap();
    let role = f.store.get_role(None, "writer").await.unwrap();
    let token = new_session_token();
    let akid = "ASIAABCDEFGHIJKLMNOP";
    let secret = "tempsecret0123456789012345678901234567890";
    let tags = BTreeMap::new();
    let now_s = i64::try_from(T0).unwrap();
    f.store
        .insert_sts_session(NewStsSession {
            access_key_id: akid,
            role_id: &role.id,
            session_name: "job-7",
            secret_enc: f.auth.master_key().seal(akid, secret.as_bytes()),
            token_sha256: token_digest(&token),
            session_policy: None,
            source_identity: None,
            tags: &tags,
            caller_arn: "arn:aws:iam::111111111111:user/alice",
            // Far in the future relative to the store's clean-up (real time), checked against T0.
            expires_at: now() + 10_000_000,
        })
        .await
        .unwrap();
    let mut s = Sign::new(akid, secret);
    s.token = Some(&token);
    let v = run(&f, &s, Endpoint::Api, T0).await.unwrap();
    assert_eq!(
        v.principal.arn,
        "arn:aws:sts::111111111111:assumed-role/writer/job-7"
    );
    // Attributed to the session's ARN; the caller-chosen name is no username.
    assert_eq!(v.principal.name, v.principal.arn);
    assert_eq!(v.principal.username(), None);
    // Without the token, or with another one.
    s.token = None;
    assert!(
        run(&f, &s, Endpoint::Api, T0)
            .await
            .err()
            .unwrap()
            .message
            .contains("session token")
    );
    s.token = Some("MLGATEnot-the-token");
    assert_eq!(
        run(&f, &s, Endpoint::Api, T0).await.err().unwrap().aws_code,
        "InvalidClientTokenId"
    );
    // After expiry: a clear message.
    s.token = Some(&token);
    let later = u64::try_from(now() + 10_000_001).unwrap();
    s.at = later;
    let e = run(&f, &s, Endpoint::Api, later).await.err().unwrap();
    assert_eq!(e.aws_code, "ExpiredToken");
    assert!(e.message.contains("expired at"), "{}", e.message);
    let _ = now_s;
}
