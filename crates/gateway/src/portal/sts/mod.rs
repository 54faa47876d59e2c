//! An STS-compatible endpoint at `POST /_mlgate/sts`: the AWS Query protocol
//! (form-encoded `Action=…&Version=2011-06-15`), XML answers and AWS XML errors, so
//! `boto3.client("sts", endpoint_url="https://<mlgate>/_mlgate/sts")` works unchanged.
//!
//! Callers sign with SigV4, service `sts` (accepted here only; the MLflow API refuses it).
//!
//! * `GetCallerIdentity`: the caller's ARN, account and user id.
//! * `AssumeRole`: `RoleArn`, `RoleSessionName`, `DurationSeconds` (900..=the role's maximum,
//!   default 3600), optional session `Policy` (can only narrow), `Tags.member.N.Key/Value`
//!   (become `aws:PrincipalTag/*` of the session), `SourceIdentity`.
//!   The decision follows AWS ([`assume_role_decision`]): the role's trust policy must allow the
//!   caller, no explicit deny anywhere, and the caller's identity policies must allow
//!   `sts:AssumeRole` on the role ARN — except within one account when the trust policy names
//!   the caller's ARN itself (not its account or `*`), where the trust policy alone suffices.
//!   Passing tags also needs `sts:TagSession`, decided by the same rule; both decisions see the
//!   caller's global keys ([`global_context`]) plus `aws:RequestTag/<key>` and `aws:TagKeys`.
//!   Every refusal, an unknown role's included, is the same `AccessDenied` text; why it was
//!   refused goes to the audit record only.
//! * `AssumeRoleWithWebIdentity` (OIDC issue): unsigned, the trust policy decides; see
//!   [`mod@web_identity`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use jiff::Timestamp;
use mlgate_policy::{Context, Decision, NamedPolicy, PolicyDocument, evaluate};

pub mod web_identity;

use super::{PortalOutcome, PortalState};
use crate::RESERVED_PREFIX;
use crate::audit::AuditDecision;
use crate::authenticate::sigv4::Endpoint;
use crate::authorize::{global_context, policy_set};
use crate::identity::{AuthMethod, Principal, assumed_role_arn};
use crate::listen::Peer;
use crate::normalize::BodyLimits;
use crate::store::{
    MIN_SESSION_SECONDS, NewStsSession, RoleRecord, Store, StoreError, new_access_key_id,
    new_secret_access_key, new_session_token, now, token_digest,
};

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// STS form bodies are small (AWS limits session policies to 2048 characters) and come at once.
const FORM_LIMITS: BodyLimits = BodyLimits {
    max_bytes: 64 << 10,
    timeout: Duration::from_secs(30),
};
const MAX_SESSION_POLICY: usize = 2048;
const MAX_SESSION_TAGS: usize = 50;
pub const ASSUME_ROLE: &str = "sts:AssumeRole";
/// Needed, besides the assume action, to pass session tags.
pub const TAG_SESSION: &str = "sts:TagSession";

pub fn path() -> String {
    format!("{RESERVED_PREFIX}/sts")
}

pub fn routes() -> Router<PortalState> {
    Router::new().route(&path(), any(handle))
}

/// An AWS XML error.
#[derive(Debug)]
pub struct StsError {
    pub status: StatusCode,
    pub sender: bool,
    pub code: &'static str,
    pub message: String,
    /// Why, for the audit record only (an `AccessDenied` answer says nothing about the role).
    pub detail: Option<String>,
}

/// mlgate's store cannot be read right now: logged, answered 503 so the client retries.
impl From<StoreError> for StsError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "the store cannot be read (STS)");
        StsError::internal("the identity store is unavailable; try again")
    }
}

impl StsError {
    fn sender(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        StsError {
            status,
            sender: true,
            code,
            message: message.into(),
            detail: None,
        }
    }
    fn with_detail(self, detail: impl Into<String>) -> Self {
        StsError {
            detail: Some(detail.into()),
            ..self
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        StsError::sender(StatusCode::BAD_REQUEST, "ValidationError", message)
    }
    fn denied(message: impl Into<String>) -> Self {
        StsError::sender(StatusCode::FORBIDDEN, "AccessDenied", message)
    }
    fn internal(message: impl Into<String>) -> Self {
        StsError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            sender: false,
            code: "ServiceUnavailable",
            message: message.into(),
            detail: None,
        }
    }

    /// The audit record's reason: the answer, and why when the answer does not say.
    pub fn audit_reason(&self) -> String {
        match &self.detail {
            Some(detail) => format!("sts: {}: {} ({detail})", self.code, self.message),
            None => format!("sts: {}: {}", self.code, self.message),
        }
    }

    pub fn to_xml(&self, request_id: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            if self.sender { "Sender" } else { "Receiver" },
            self.code,
            xml_escape(&self.message),
            xml_escape(request_id)
        )
    }
}

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_response(status: StatusCode, body: String, outcome: PortalOutcome) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.extensions_mut().insert(outcome);
    r
}

fn outcome(
    principal: Option<&Principal>,
    decision: AuditDecision,
    reason: String,
) -> PortalOutcome {
    PortalOutcome {
        principal: principal.map(|p| p.arn.clone()),
        auth_method: Some(AuthMethod::Sigv4),
        decision,
        reason: Some(reason),
    }
}

async fn handle(State(state): State<PortalState>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let fail = |e: StsError, p: Option<&Principal>, d: AuditDecision| {
        xml_response(
            e.status,
            e.to_xml(&request_id),
            outcome(p, d, e.audit_reason()),
        )
    };
    let peer = match connection(&parts) {
        Ok(peer) => peer,
        Err(e) => return fail(e, None, AuditDecision::Rejected),
    };
    if parts.method != Method::POST {
        return fail(
            StsError::sender(
                StatusCode::METHOD_NOT_ALLOWED,
                "InvalidAction",
                "send STS actions as a form-encoded POST",
            ),
            None,
            AuditDecision::Rejected,
        );
    }
    // AssumeRoleWithWebIdentity is unsigned, as in AWS: its token is the credential.
    if web_identity::is_unsigned(&parts) {
        return web_identity::handle_unsigned(&state, &peer, body, &request_id).await;
    }
    let Some(sigv4) = state.auth.sigv4() else {
        return fail(
            StsError::sender(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "AWS SigV4 is not enabled on this deployment",
            ),
            None,
            AuditDecision::Rejected,
        );
    };
    let verified = match sigv4.verify(Endpoint::Sts, &parts, body, FORM_LIMITS).await {
        Ok(v) => v,
        Err(rejection) => {
            let status = if rejection.unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::FORBIDDEN
            };
            return fail(
                StsError {
                    status,
                    sender: !rejection.unavailable,
                    code: rejection.aws_code,
                    message: rejection.message,
                    detail: None,
                },
                None,
                AuditDecision::Unauthenticated,
            );
        }
    };
    let caller = verified.principal;
    let form = match read_form(verified.body).await {
        Ok(f) => f,
        Err(e) => return fail(e, Some(&caller), AuditDecision::Rejected),
    };
    let action = form.get("Action").map(String::as_str).unwrap_or_default();
    let result = match action {
        "GetCallerIdentity" => Ok((get_caller_identity(&caller, &request_id), None)),
        "AssumeRole" => {
            assume_role(
                sigv4.store(),
                sigv4.master_key(),
                &caller,
                &form,
                &peer,
                &request_id,
            )
            .await
        }
        "AssumeRoleWithWebIdentity" => {
            // Signed or not, the web identity token alone authorizes it (web_identity.rs).
            return match web_identity::assume(&state, &form, &peer, &request_id).await {
                Ok(done) => xml_response(StatusCode::OK, done.xml, done.outcome),
                Err((e, _)) => fail(e, Some(&caller), AuditDecision::Rejected),
            };
        }
        "" => Err(StsError::sender(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "the Action parameter is required",
        )),
        other => Err(StsError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "{} is not supported by mlgate's STS endpoint (GetCallerIdentity, AssumeRole)",
                truncate(other, 64)
            ),
        )),
    };
    match result {
        Ok((xml, assumed)) => {
            let reason = match assumed {
                Some(arn) => format!("sts:{action} → {arn}"),
                None => format!("sts:{action}"),
            };
            xml_response(
                StatusCode::OK,
                xml,
                outcome(Some(&caller), AuditDecision::Allow, reason),
            )
        }
        Err(e) => {
            let d = match e.code {
                "AccessDenied" => AuditDecision::ImplicitDeny,
                _ => AuditDecision::Rejected,
            };
            fail(e, Some(&caller), d)
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(n)
        .collect::<String>()
}

/// The connection the request came on (`aws:SourceIp`, `aws:SecureTransport`).
fn connection(parts: &Parts) -> Result<Peer, StsError> {
    Peer::of(&parts.extensions)
        .ok_or_else(|| StsError::internal("request without connection information"))
}

async fn read_form(body: Body) -> Result<BTreeMap<String, String>, StsError> {
    let bytes = body
        .collect()
        .await
        .map_err(|_| StsError::invalid("the request body could not be read"))?
        .to_bytes();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| StsError::invalid("the body must be application/x-www-form-urlencoded"))?;
    let mut form = BTreeMap::new();
    for (k, v) in pairs {
        if form.insert(k.clone(), v).is_some() {
            return Err(StsError::invalid(format!(
                "parameter {} given more than once",
                truncate(&k, 64)
            )));
        }
    }
    if let Some(v) = form.get("Version")
        && v != "2011-06-15"
    {
        return Err(StsError::invalid("Version must be 2011-06-15"));
    }
    Ok(form)
}

fn user_id(p: &Principal) -> String {
    match &p.kind {
        crate::identity::PrincipalKind::AssumedRole { role, session, .. } => {
            format!("{role}:{session}")
        }
        _ => p.name.clone(),
    }
}

pub fn get_caller_identity(caller: &Principal, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{NS}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        xml_escape(&caller.arn),
        xml_escape(&user_id(caller)),
        xml_escape(&caller.account),
        xml_escape(request_id)
    )
}

/// Parses `arn:aws:iam::<12 digits>:role/<name>`.
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, rest) = rest.split_once(':')?;
    let name = rest.strip_prefix("role/")?;
    // Role paths (`role/path/name`) are not supported: names have no '/'.
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || name.contains('/') {
        return None;
    }
    Some((account, name))
}

fn valid_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// Role chaining does not carry tags here, so a request that asks for it is refused.
fn no_transitive_tags() -> StsError {
    StsError::invalid(
        "transitive session tags are not supported: mlgate does not carry session tags into chained role sessions",
    )
}

/// Adds one session tag: a valid key and value, the key not already there in any case (tag keys
/// are case-insensitive, as condition keys are: `Team` and `team` would be one multi-valued
/// `aws:PrincipalTag/team`).
fn add_session_tag(
    tags: &mut BTreeMap<String, String>,
    key: &str,
    value: &str,
) -> Result<(), StsError> {
    crate::store::validate_tag(key, value).map_err(|e| StsError::invalid(e.to_string()))?;
    if tags.len() >= MAX_SESSION_TAGS {
        return Err(StsError::invalid(format!(
            "at most {MAX_SESSION_TAGS} session tags"
        )));
    }
    if tags.keys().any(|t| t.eq_ignore_ascii_case(key)) {
        return Err(StsError::invalid("duplicate session tag key"));
    }
    tags.insert(key.to_owned(), value.to_owned());
    Ok(())
}

fn session_tags(form: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, StsError> {
    if form.keys().any(|k| k.starts_with("TransitiveTagKeys.")) {
        return Err(no_transitive_tags());
    }
    let mut tags = BTreeMap::new();
    for n in 1.. {
        let key = form.get(&format!("Tags.member.{n}.Key"));
        let value = form.get(&format!("Tags.member.{n}.Value"));
        match (key, value) {
            (None, None) => break,
            (Some(k), Some(v)) => add_session_tag(&mut tags, k, v)?,
            _ => {
                return Err(StsError::invalid(
                    "each session tag needs a Key and a Value",
                ));
            }
        }
    }
    // A tag numbered out of sequence would otherwise be dropped unseen.
    if form.keys().filter(|k| k.starts_with("Tags.")).count() != 2 * tags.len() {
        return Err(StsError::invalid(
            "session tags must be Tags.member.N.Key and .Value, numbered from 1 without gaps",
        ));
    }
    Ok(tags)
}

/// What the trust decision sees of the tags a request passes: `aws:RequestTag/<key>` for each
/// and `aws:TagKeys` (multi-valued).
pub fn insert_request_tags(context: &mut Context, tags: &BTreeMap<String, String>) {
    for (key, value) in tags {
        context.insert(&format!("aws:RequestTag/{key}"), value.clone());
        context.insert("aws:TagKeys", key.clone());
    }
}

/// The actions a request to assume a role needs: the assume action, and `sts:TagSession` when
/// it passes tags.
pub fn required_actions<'a>(
    assume: &'a str,
    tags: &BTreeMap<String, String>,
) -> impl Iterator<Item = &'a str> {
    std::iter::once(assume).chain((!tags.is_empty()).then_some(TAG_SESSION))
}

/// What each side says about an action (`sts:AssumeRole`, `sts:TagSession`) on the role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides {
    /// The caller's identity policies (narrowed by its own session policy, if any).
    pub identity: Decision,
    /// The role's trust policy for the caller.
    pub trust: Decision,
    /// The trust policy allows this caller's ARN itself, not merely its account or everyone.
    pub trust_names_caller: bool,
    pub same_account: bool,
}

/// AWS's rule for `sts:AssumeRole` (and `sts:TagSession` with it): an explicit deny on either
/// side denies; the trust policy must allow; the identity side must allow too unless the role
/// is in the caller's account and the trust policy names the caller's ARN itself.
pub fn assume_role_decision(s: &Sides) -> Result<(), &'static str> {
    if matches!(s.identity, Decision::ExplicitDeny(_)) {
        return Err("an identity policy explicitly denies it on the role");
    }
    match s.trust {
        Decision::ExplicitDeny(_) => {
            return Err("the role's trust policy explicitly denies the caller");
        }
        Decision::ImplicitDeny => return Err("the role's trust policy does not allow the caller"),
        Decision::Allow(_) => {}
    }
    if s.same_account && s.trust_names_caller {
        return Ok(());
    }
    if s.identity.is_allowed() {
        Ok(())
    } else {
        Err("no identity policy of the caller allows it on the role")
    }
}

/// The role's trust policy (a resource policy).
pub fn trust_policy(role: &RoleRecord) -> Result<[NamedPolicy; 1], StsError> {
    let document = PolicyDocument::parse_resource_policy(&role.trust_policy).map_err(|e| {
        tracing::error!(role = %role.arn(), error = %e, "stored trust policy does not parse");
        StsError::internal("the role's trust policy cannot be read")
    })?;
    Ok([NamedPolicy {
        name: format!("trust:{}", role.name),
        document,
    }])
}

/// What `policies` say about `principal` doing `action` on the role `role_arn`.
pub fn decide(
    policies: &[NamedPolicy],
    action: &str,
    role_arn: &str,
    principal: &str,
    context: &Context,
) -> Decision {
    evaluate(
        policies.iter(),
        &mlgate_policy::Request {
            action,
            resource: role_arn,
            principal: Some(principal),
            context,
        },
    )
}

/// Evaluates both sides for `caller` doing `action` (`sts:AssumeRole`, `sts:TagSession`) on
/// `role`.
pub async fn evaluate_sides(
    store: &Store,
    caller: &Principal,
    role: &RoleRecord,
    action: &str,
    context: &Context,
) -> Result<Sides, StsError> {
    let role_arn = role.arn();
    let ask = |policies: &[NamedPolicy], principal: &str| {
        decide(policies, action, &role_arn, principal, context)
    };
    let identity = policy_set(store, caller)
        .await
        .map_err(StsError::from)?
        .evaluate(&mlgate_policy::Request {
            action,
            resource: &role_arn,
            principal: Some(&caller.arn),
            context,
        });
    let trust_policy = trust_policy(role)?;
    let trust = ask(&trust_policy, &caller.arn);
    // Named specifically: an unrelated identity of the caller's account would not be allowed.
    let probe = format!(
        "arn:aws:iam::{}:user/mlgate-probe-{}",
        caller.account,
        uuid::Uuid::new_v4().simple()
    );
    let mut probe_context = context.clone();
    probe_context.insert("aws:PrincipalArn", probe.clone());
    let probe_decision = decide(&trust_policy, action, &role_arn, &probe, &probe_context);
    Ok(Sides {
        identity,
        trust_names_caller: trust.is_allowed() && !probe_decision.is_allowed(),
        trust,
        same_account: caller.account == role.account_id,
    })
}

async fn assume_role(
    store: &Store,
    master: &crate::store::secrets::MasterKey,
    caller: &Principal,
    form: &BTreeMap<String, String>,
    peer: &Peer,
    request_id: &str,
) -> Result<(String, Option<String>), StsError> {
    let role_arn = form
        .get("RoleArn")
        .ok_or_else(|| StsError::invalid("RoleArn is required"))?;
    let session_name = form
        .get("RoleSessionName")
        .ok_or_else(|| StsError::invalid("RoleSessionName is required"))?;
    if !valid_session_name(session_name) {
        return Err(StsError::invalid(
            "RoleSessionName must be 2 to 64 characters of A-Z a-z 0-9 _ + = , . @ -",
        ));
    }
    let duration: i64 = match form.get("DurationSeconds") {
        None => 3600,
        Some(d) => d
            .parse()
            .map_err(|_| StsError::invalid("DurationSeconds must be a number of seconds"))?,
    };
    // Checked before the role is looked up: they say nothing about it.
    let tags = session_tags(form)?;
    let denied = |action: &str, why: &str| {
        StsError::denied(format!(
            "{} is not authorized to perform: {action} on resource: {}",
            caller.arn,
            truncate(role_arn, 200)
        ))
        .with_detail(why)
    };
    let (account, name) = parse_role_arn(role_arn).ok_or_else(|| {
        StsError::invalid("RoleArn must be arn:aws:iam::<12-digit account>:role/<name>")
    })?;
    let role = store
        .find_role(account, name)
        .await
        .map_err(StsError::from)?
        // Unknown role: the same answer as a denial, so roles cannot be enumerated.
        .ok_or_else(|| denied(ASSUME_ROLE, "no such role"))?;

    let mut context = global_context(caller, peer, Timestamp::now());
    insert_request_tags(&mut context, &tags);
    for action in required_actions(ASSUME_ROLE, &tags) {
        let sides = evaluate_sides(store, caller, &role, action, &context).await?;
        assume_role_decision(&sides).map_err(|why| denied(action, why))?;
    }
    // Duration is checked after authorization (AWS does too): a caller learns a role's maximum
    // only if it may assume it.
    if !(MIN_SESSION_SECONDS..=role.max_session_duration).contains(&duration) {
        return Err(StsError::invalid(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role: DurationSeconds must be between {MIN_SESSION_SECONDS} and {}",
            role.max_session_duration
        )));
    }
    let session_policy = match form.get("Policy") {
        None => None,
        Some(p) if p.len() > MAX_SESSION_POLICY => {
            return Err(StsError::sender(
                StatusCode::BAD_REQUEST,
                "PackedPolicyTooLarge",
                format!("the session policy is longer than {MAX_SESSION_POLICY} characters"),
            ));
        }
        Some(p) => {
            PolicyDocument::parse(p).map_err(|e| {
                StsError::sender(
                    StatusCode::BAD_REQUEST,
                    "MalformedPolicyDocument",
                    format!("session policy: {e}"),
                )
            })?;
            Some(p.as_str())
        }
    };
    let source_identity = form.get("SourceIdentity").map(String::as_str);
    if let Some(si) = source_identity
        && !valid_session_name(si)
    {
        return Err(StsError::invalid(
            "SourceIdentity must be 2 to 64 characters of A-Z a-z 0-9 _ + = , . @ -",
        ));
    }

    let akid = new_access_key_id("ASIA");
    let secret = new_secret_access_key();
    let token = new_session_token();
    let expires_at = now() + duration;
    store
        .insert_sts_session(NewStsSession {
            access_key_id: &akid,
            role_id: &role.id,
            session_name,
            secret_enc: master.seal(&akid, secret.as_bytes()),
            token_sha256: token_digest(&token),
            session_policy,
            source_identity,
            tags: &tags,
            caller_arn: &caller.arn,
            expires_at,
        })
        .await
        .map_err(StsError::from)?;
    let arn = assumed_role_arn(&role.account_id, &role.name, session_name);
    let expiration = jiff::Timestamp::from_second(expires_at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut xml = String::with_capacity(1024);
    let _ = write!(xml, "<AssumeRoleResponse xmlns=\"{NS}\"><AssumeRoleResult>");
    if let Some(si) = source_identity {
        let _ = write!(xml, "<SourceIdentity>{}</SourceIdentity>", xml_escape(si));
    }
    let _ = write!(
        xml,
        "<AssumedRoleUser><AssumedRoleId>{}:{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        xml_escape(&role.name),
        xml_escape(session_name),
        xml_escape(&arn),
        akid,
        xml_escape(&secret),
        xml_escape(&token),
        expiration
    );
    if session_policy.is_some() || !tags.is_empty() {
        let _ = write!(xml, "<PackedPolicySize>1</PackedPolicySize>");
    }
    let _ = write!(
        xml,
        "</AssumeRoleResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleResponse>",
        xml_escape(request_id)
    );
    Ok((xml, Some(arn)))
}

#[cfg(test)]
mod tests;
