//! The audit record: one JSON line per request, allowed or denied.

use serde::Serialize;

use crate::identity::AuthMethod;
use crate::listen::ParserRefusal;

/// What the gateway decided for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditDecision {
    /// Authorized by a policy statement.
    Allow,
    /// Refused by an explicit `Deny` statement.
    ExplicitDeny,
    /// Refused because no statement allowed it.
    ImplicitDeny,
    /// Refused before authorization: no, bad or conflicting credentials.
    Unauthenticated,
    /// Refused before authorization: malformed or ambiguous request, unknown route, or a
    /// request head the HTTP parser refused.
    Rejected,
    /// Public route (health, sign-in page): no decision needed.
    Public,
}

impl AuditDecision {
    /// Its name in the audit line and in the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Allow => "allow",
            AuditDecision::ExplicitDeny => "explicit_deny",
            AuditDecision::ImplicitDeny => "implicit_deny",
            AuditDecision::Unauthenticated => "unauthenticated",
            AuditDecision::Rejected => "rejected",
            AuditDecision::Public => "public",
        }
    }
}

impl Serialize for AuditDecision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One request's audit line. Never holds a secret: no passwords, tokens, cookies or signatures.
#[derive(Clone, Debug, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 timestamp at which the request arrived.
    pub time: String,
    pub request_id: String,
    pub source_ip: String,
    pub method: String,
    pub path: String,
    /// Principal ARN, when authentication succeeded.
    pub principal: Option<String>,
    pub auth_method: Option<AuthMethod>,
    /// `mlflow:<Operation>` actions evaluated (empty when the request never reached authorization).
    pub actions: Vec<String>,
    /// Resource ARNs evaluated.
    pub resources: Vec<String>,
    pub decision: AuditDecision,
    /// The policy and statement (Sid or `#index`) that decided, for allow and explicit deny.
    pub policy: Option<String>,
    pub statement: Option<String>,
    /// Why the request was refused, in words safe to log.
    pub reason: Option<String>,
    /// HTTP status sent to the client.
    pub status: u16,
    pub latency_ms: f64,
}

impl AuditRecord {
    /// A request refused by the HTTP parser before mlgate's pipeline saw it: nothing but the
    /// peer, the parser's reason and the answer (`status`) is known, so `method` and `path`
    /// are empty.
    pub fn refused_by_parser(refusal: ParserRefusal) -> AuditRecord {
        let ParserRefusal {
            peer,
            status,
            reason,
        } = refusal;
        AuditRecord {
            time: jiff::Timestamp::now().to_string(),
            request_id: uuid::Uuid::new_v4().simple().to_string(),
            source_ip: peer.to_canonical().to_string(),
            method: String::new(),
            path: String::new(),
            principal: None,
            auth_method: None,
            actions: Vec::new(),
            resources: Vec::new(),
            decision: AuditDecision::Rejected,
            policy: None,
            statement: None,
            reason: Some(format!("refused by the HTTP parser: {reason}")),
            status: status.as_u16(),
            latency_ms: 0.0,
        }
    }
}
