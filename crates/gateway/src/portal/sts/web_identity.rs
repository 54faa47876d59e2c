//! `AssumeRoleWithWebIdentity`: trades a JWT from a configured OIDC issuer for
//! temporary credentials of a role, as AWS does.
//!
//! * The request needs no SigV4 signature (the `WebIdentityToken` is the credential), so it is
//!   accepted unsigned as well as signed; the signature, if any, is not what authorizes it.
//! * The token is verified like a bearer JWT ([`crate::authenticate::jwt`]); any failure is AWS's
//!   `InvalidIdentityToken` (`ExpiredTokenException` when expired).
//! * The role's trust policy decides alone, for action `sts:AssumeRoleWithWebIdentity` and the
//!   principal `{"Federated": "<issuer URL without scheme>"}`, with the condition keys
//!   `<issuer>:sub`, `<issuer>:aud`, `<issuer>:amr` (see
//!   [`crate::authenticate::jwt::web_identity_keys`]), `aws:FederatedProvider`, and the
//!   connection and clock keys of every decision ([`request_context`]).
//! * Session tags come from the token's `https://aws.amazon.com/tags` claim (`principal_tags`),
//!   as in AWS; passing them needs `sts:TagSession` in the trust policy too, which then sees
//!   `aws:RequestTag/<key>` and `aws:TagKeys`.
//! * Credentials are minted exactly like `AssumeRole`'s (same table, same session principal);
//!   the session's caller is the federated user's ARN.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use jiff::Timestamp;
use mlgate_policy::PolicyDocument;
use serde_json::Value;

use super::{
    FORM_LIMITS, MAX_SESSION_POLICY, NS, StsError, add_session_tag, decide, insert_request_tags,
    no_transitive_tags, outcome, parse_role_arn, required_actions, truncate, trust_policy,
    valid_session_name, xml_escape, xml_response,
};
use crate::audit::AuditDecision;
use crate::authenticate::jwt::web_identity_keys;
use crate::authorize::request_context;
use crate::error::AuthFailureKind;
use crate::identity::{AuthMethod, assumed_role_arn};
use crate::listen::Peer;
use crate::normalize::collect_body;
use crate::portal::{PortalOutcome, PortalState};
use crate::store::{
    MIN_SESSION_SECONDS, NewStsSession, new_access_key_id, new_secret_access_key,
    new_session_token, now, token_digest,
};

pub const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
/// The claim AWS reads session tags from.
const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";

/// No SigV4 on the request (no `Authorization`, no `X-Amz-Signature` query).
pub fn is_unsigned(parts: &Parts) -> bool {
    !parts.headers.contains_key(http::header::AUTHORIZATION)
        && !parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature="))
}

/// An unsigned STS request: only `AssumeRoleWithWebIdentity` may be one.
pub async fn handle_unsigned(
    state: &PortalState,
    peer: &Peer,
    body: Body,
    request_id: &str,
) -> Response {
    let fail = |e: StsError, d: AuditDecision| {
        let mut o = outcome(None, d, e.audit_reason());
        o.auth_method = Some(AuthMethod::Jwt);
        xml_response(e.status, e.to_xml(request_id), o)
    };
    let bytes = match collect_body(body, FORM_LIMITS, None).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return fail(
                StsError::invalid("the request body is too large or could not be read"),
                AuditDecision::Rejected,
            );
        }
    };
    let form = match super::read_form(Body::from(bytes)).await {
        Ok(f) => f,
        Err(e) => return fail(e, AuditDecision::Rejected),
    };
    if form.get("Action").map(String::as_str) != Some("AssumeRoleWithWebIdentity") {
        return fail(
            StsError::sender(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token: sign it with SigV4 (only AssumeRoleWithWebIdentity is unsigned)",
            ),
            AuditDecision::Unauthenticated,
        );
    }
    match assume(state, &form, peer, request_id).await {
        Ok(done) => xml_response(StatusCode::OK, done.xml, done.outcome),
        Err((e, caller)) => {
            let d = match e.code {
                "AccessDenied" => AuditDecision::ImplicitDeny,
                "InvalidIdentityToken" | "ExpiredTokenException" => AuditDecision::Unauthenticated,
                _ => AuditDecision::Rejected,
            };
            let o = PortalOutcome {
                principal: caller,
                auth_method: Some(AuthMethod::Jwt),
                decision: d,
                reason: Some(e.audit_reason()),
            };
            xml_response(e.status, e.to_xml(request_id), o)
        }
    }
}

/// A successful exchange.
pub struct Assumed {
    pub xml: String,
    pub outcome: PortalOutcome,
}

/// Verifies the token, asks the trust policy, mints the session. On error, also the federated
/// caller's ARN when the token was good (for the audit record).
pub async fn assume(
    state: &PortalState,
    form: &BTreeMap<String, String>,
    peer: &Peer,
    request_id: &str,
) -> Result<Assumed, (StsError, Option<String>)> {
    let bare = |e| (e, None);
    let Some(sigv4) = state.auth.sigv4() else {
        return Err(bare(StsError::sender(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "temporary credentials need AWS SigV4 to be enabled on this deployment",
        )));
    };
    let Some(oidc) = state.auth.oidc() else {
        return Err(bare(StsError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "no OIDC issuer is configured on this deployment",
        )));
    };
    let get = |k: &str| {
        form.get(k)
            .ok_or_else(|| bare(StsError::invalid(format!("{k} is required"))))
    };
    let (token, role_arn, session_name) = (
        get("WebIdentityToken")?,
        get("RoleArn")?,
        get("RoleSessionName")?,
    );
    if !valid_session_name(session_name) {
        return Err(bare(StsError::invalid(
            "RoleSessionName must be 2 to 64 characters of A-Z a-z 0-9 _ + = , . @ -",
        )));
    }
    let duration: i64 = match form.get("DurationSeconds") {
        None => 3600,
        Some(d) => d.parse().map_err(|_| {
            bare(StsError::invalid(
                "DurationSeconds must be a number of seconds",
            ))
        })?,
    };
    let verified = oidc.verify(token, None).await.map_err(|f| {
        let code = if f.kind == AuthFailureKind::Expired {
            "ExpiredTokenException"
        } else {
            "InvalidIdentityToken"
        };
        bare(StsError::sender(StatusCode::BAD_REQUEST, code, f.reason))
    })?;
    let caller = verified.principal.arn.clone();
    let with_caller = |e| (e, Some(caller.clone()));
    let issuer_url = oidc
        .issuer_by_name(&verified.issuer)
        .map(|i| i.config.issuer.clone())
        .unwrap_or_default();
    let (federated, keys) = web_identity_keys(&issuer_url, &verified.claims);
    let tags = token_session_tags(&verified.claims).map_err(with_caller)?;
    let denied = |action: &str, why: &str| {
        StsError::denied(format!(
            "Not authorized to perform {action} on {} with a token of {federated}",
            truncate(role_arn, 200)
        ))
        .with_detail(why)
    };
    let (account, name) = parse_role_arn(role_arn).ok_or_else(|| {
        with_caller(StsError::invalid(
            "RoleArn must be arn:aws:iam::<12-digit account>:role/<name>",
        ))
    })?;
    let store = sigv4.store();
    let role = store
        .find_role(account, name)
        .await
        .map_err(|e| with_caller(e.into()))?
        .ok_or_else(|| with_caller(denied(ACTION, "no such role")))?;

    let mut context = request_context(peer, Timestamp::now());
    context.insert("aws:FederatedProvider", federated.clone());
    for (k, v) in keys {
        context.set(&k, v);
    }
    insert_request_tags(&mut context, &tags);
    let trust = trust_policy(&role).map_err(with_caller)?;
    let role_arn_full = role.arn();
    for action in required_actions(ACTION, &tags) {
        if !decide(&trust, action, &role_arn_full, &federated, &context).is_allowed() {
            return Err(with_caller(denied(
                action,
                "the role's trust policy does not allow it",
            )));
        }
    }
    if !(MIN_SESSION_SECONDS..=role.max_session_duration).contains(&duration) {
        return Err(with_caller(StsError::invalid(format!(
            "DurationSeconds must be between {MIN_SESSION_SECONDS} and {}",
            role.max_session_duration
        ))));
    }
    let session_policy = match form.get("Policy") {
        None => None,
        Some(p) if p.len() > MAX_SESSION_POLICY => {
            return Err(with_caller(StsError::sender(
                StatusCode::BAD_REQUEST,
                "PackedPolicyTooLarge",
                format!("the session policy is longer than {MAX_SESSION_POLICY} characters"),
            )));
        }
        Some(p) => {
            PolicyDocument::parse(p).map_err(|e| {
                with_caller(StsError::sender(
                    StatusCode::BAD_REQUEST,
                    "MalformedPolicyDocument",
                    format!("session policy: {e}"),
                ))
            })?;
            Some(p.as_str())
        }
    };

    let akid = new_access_key_id("ASIA");
    let secret = new_secret_access_key();
    let session_token = new_session_token();
    let expires_at = now() + duration;
    store
        .insert_sts_session(NewStsSession {
            access_key_id: &akid,
            role_id: &role.id,
            session_name,
            secret_enc: sigv4.master_key().seal(&akid, secret.as_bytes()),
            token_sha256: token_digest(&session_token),
            session_policy,
            source_identity: None,
            tags: &tags,
            caller_arn: &caller,
            expires_at,
        })
        .await
        .map_err(|e| with_caller(e.into()))?;
    let arn = assumed_role_arn(&role.account_id, &role.name, session_name);
    let expiration = jiff::Timestamp::from_second(expires_at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let sub = verified
        .claims
        .get("sub")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    let audience = context
        .get(&format!("{federated}:aud"))
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let mut xml = String::with_capacity(1024);
    let _ = write!(
        xml,
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{NS}\"><AssumeRoleWithWebIdentityResult>\
         <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><Audience>{}</Audience>\
         <Provider>{}</Provider>\
         <AssumedRoleUser><AssumedRoleId>{}:{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         </AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{}</RequestId>\
         </ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
        xml_escape(sub),
        xml_escape(&audience),
        xml_escape(&federated),
        xml_escape(&role.name),
        xml_escape(session_name),
        xml_escape(&arn),
        akid,
        xml_escape(&secret),
        xml_escape(&session_token),
        expiration,
        xml_escape(request_id),
    );
    let outcome = PortalOutcome {
        principal: Some(caller),
        auth_method: Some(AuthMethod::Jwt),
        decision: AuditDecision::Allow,
        reason: Some(format!("sts:AssumeRoleWithWebIdentity → {arn}")),
    };
    Ok(Assumed { xml, outcome })
}

/// The session tags a token carries, AWS's way: `{"https://aws.amazon.com/tags":
/// {"principal_tags": {"<key>": ["<value>"]}}}`. Malformed tags refuse the token; transitive
/// keys are refused as for `AssumeRole`.
pub fn token_session_tags(claims: &Value) -> Result<BTreeMap<String, String>, StsError> {
    let mut tags = BTreeMap::new();
    let Some(claim) = claims.get(TAGS_CLAIM) else {
        return Ok(tags);
    };
    let malformed = || {
        StsError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            format!(
                "the token's {TAGS_CLAIM} claim must be {{\"principal_tags\": {{\"<key>\": [\"<value>\"]}}}}"
            ),
        )
    };
    let claim = claim.as_object().ok_or_else(malformed)?;
    if claim
        .get("transitive_tag_keys")
        .is_some_and(|keys| keys.as_array().is_none_or(|keys| !keys.is_empty()))
    {
        return Err(no_transitive_tags());
    }
    let principal_tags = match claim.get("principal_tags") {
        None => return Ok(tags),
        Some(t) => t.as_object().ok_or_else(malformed)?,
    };
    for (key, value) in principal_tags {
        let value = match value {
            Value::Array(values) => match values.as_slice() {
                [Value::String(one)] => one,
                _ => return Err(malformed()),
            },
            _ => return Err(malformed()),
        };
        add_session_tag(&mut tags, key, value)?;
    }
    Ok(tags)
}
