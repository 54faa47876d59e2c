//! What a request's audit record will say, filled in as the stages run and finished into an
//! [`AuditRecord`] once the answer's status is known.

use std::time::Instant;

use axum::extract::Request;
use http::{HeaderValue, StatusCode};
use jiff::Timestamp;
use mlgate_policy::Decision;

use super::{AuditDecision, AuditRecord};
use crate::authorize::Decisions;
use crate::error::{AuthFailure, GatewayError};
use crate::identity::AuthMethod;
use crate::listen::Peer;

/// Raw paths that never normalized are kept for the audit, cut to this many bytes.
const MAX_AUDITED_RAW_PATH: usize = 1024;

/// One request's record in the making.
#[derive(Debug)]
pub struct Trail {
    pub time: Timestamp,
    started: Instant,
    pub request_id: HeaderValue,
    source_ip: String,
    method: String,
    pub path: String,
    pub principal: Option<String>,
    pub auth_method: Option<AuthMethod>,
    /// The MLflow operation the request was classified as (a metrics label, not audited).
    pub operation: Option<&'static str>,
    /// What the authorize stage decided (every action and resource, the last verdict).
    pub decisions: Decisions,
    /// A decision made without the policies (public route, sign-in redirect, portal, a search
    /// narrowed to nothing); it is the record's decision.
    pub decision: Option<AuditDecision>,
    pub reason: Option<String>,
    /// Why the request failed before any decision, when it did.
    refusal: Option<AuditDecision>,
}

impl Trail {
    pub fn new(request: &Request) -> Trail {
        let mut path = request.uri().path().to_owned();
        if path.len() > MAX_AUDITED_RAW_PATH {
            let mut cut = MAX_AUDITED_RAW_PATH;
            while !path.is_char_boundary(cut) {
                cut -= 1;
            }
            path.truncate(cut);
        }
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        Trail {
            time: Timestamp::now(),
            started: Instant::now(),
            request_id: HeaderValue::from_str(&request_id)
                .unwrap_or_else(|_| HeaderValue::from_static("-")),
            source_ip: Peer::of(request.extensions())
                .map(|p| p.ip.to_canonical().to_string())
                .unwrap_or_default(),
            method: request.method().to_string(),
            path,
            principal: None,
            auth_method: None,
            operation: None,
            decisions: Decisions::default(),
            decision: None,
            reason: None,
            refusal: None,
        }
    }

    /// Notes why the request failed; a request refused before authorization says so.
    pub fn refused(&mut self, error: &GatewayError) {
        self.refusal = Some(match error {
            GatewayError::Unauthenticated | GatewayError::Authentication(_) => {
                AuditDecision::Unauthenticated
            }
            _ => AuditDecision::Rejected,
        });
        if let GatewayError::Authentication(AuthFailure { method, reason, .. }) = error {
            self.auth_method = *method;
            self.reason = Some(reason.clone());
        } else {
            self.reason = Some(error.to_string());
        }
    }

    pub fn finish(self, status: StatusCode) -> AuditRecord {
        let (verdict, determining) = match self.decisions.outcome {
            Some(Decision::Allow(by)) => (Some(AuditDecision::Allow), Some(by)),
            Some(Decision::ExplicitDeny(by)) => (Some(AuditDecision::ExplicitDeny), Some(by)),
            Some(Decision::ImplicitDeny) => (Some(AuditDecision::ImplicitDeny), None),
            None => (None, None),
        };
        let (policy, statement) = determining.map(|by| (by.policy, by.statement)).unzip();
        AuditRecord {
            time: self.time.to_string(),
            request_id: self.request_id.to_str().unwrap_or_default().to_owned(),
            source_ip: self.source_ip,
            method: self.method,
            path: self.path,
            principal: self.principal,
            auth_method: self.auth_method,
            actions: self.decisions.actions,
            resources: self.decisions.resources,
            decision: self
                .decision
                .or(verdict)
                .or(self.refusal)
                .unwrap_or(AuditDecision::Rejected),
            policy,
            statement,
            reason: self.reason,
            status: status.as_u16(),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}
