//! `POST /simulate` on the admin listener: `mlgate policy simulate` over HTTP
//! (docs/policy-reference.md). The admin listener has no authentication of its own, and a
//! simulation shows other principals' policies, so the caller must present an mlgate credential
//! (HTTP Basic, an API token, SigV4, a bearer JWT) of a principal allowed `mlflow:SimulatePolicy`
//! on the principal simulated (`user/<name>`, or the server for an ad-hoc principal). Each call
//! is audited like a request. Ids are resolved against the server's own MLflow.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Method;
use mlgate_catalog::execute_api_arn;
use mlgate_policy::{NamedPolicy, PolicyDocument};
use serde::Deserialize;

use super::Gateway;
use crate::audit::Trail;
use crate::authorize::simulate::{HttpAsked, Simulated, request_headers, simulate, simulate_http};
use crate::authorize::{Access, global_context};
use crate::error::GatewayError;
use crate::identity::Principal;
use crate::listen::Peer;

/// The admin listener's path of the simulator.
pub const PATH: &str = "/simulate";

/// What may be asked: the CLI's flags as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// A user of the account (default: the caller's)...
    user: Option<String>,
    /// ...or an ad-hoc principal in these groups, with these documents.
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    policies: Vec<DraftPolicy>,
    account: Option<String>,
    /// The action form.
    action: Option<String>,
    resource: Option<String>,
    /// The HTTP form.
    method: Option<String>,
    path: Option<String>,
    body: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    context: BTreeMap<String, String>,
    source_ip: Option<IpAddr>,
    #[serde(default)]
    secure_transport: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftPolicy {
    name: String,
    document: serde_json::Value,
}

impl Gateway {
    /// Answers `POST /simulate`, and audits it.
    pub(super) async fn simulator(&self, request: Request) -> Response {
        let mut trail = Trail::new(&request);
        trail.operation = Some("SimulatePolicy");
        let answer = self.simulate_request(request, &mut trail).await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                trail.refused(&error);
                error.into_response()
            }
        };
        let record = trail.finish(response.status());
        self.audit.record(record).await;
        response
    }

    async fn simulate_request(
        &self,
        request: Request,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |info| info.0.ip());
        let caller_peer = Peer {
            ip: client,
            secure: false,
        };
        let (parts, body) = request.into_parts();
        let (caller, body) = self
            .authenticator
            .authenticate_with_body(&parts, body, false, self.body_limits())
            .await
            .map_err(GatewayError::Authentication)?;
        let caller = caller.ok_or(GatewayError::Unauthenticated)?;
        trail.principal = Some(caller.arn.clone());
        trail.auth_method = Some(caller.auth_method);
        let bytes = axum::body::to_bytes(body, self.settings.max_parsed_body as usize)
            .await
            .map_err(|_| GatewayError::PayloadTooLarge {
                limit: self.settings.max_parsed_body,
            })?;
        let asked: SimulateRequest = serde_json::from_slice(&bytes)
            .map_err(|e| GatewayError::BadRequest(format!("the simulation request: {e}")))?;

        let store = self.authenticator.store();
        let principal = match &asked.user {
            Some(user) => store
                .get_user(asked.account.as_deref().or(Some(&caller.account)), user)
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::NotFound { .. } => GatewayError::NotFound {
                        what: format!("user {user}"),
                    },
                    other => GatewayError::StoreUnavailable(other),
                })?
                .principal(crate::identity::AuthMethod::Basic),
            None => Principal::simulated(caller.account.clone(), asked.groups.clone()),
        };

        // May the caller see what this principal may do?
        let scope = self.deciders.authorizer.scope();
        let simulated = match &asked.user {
            Some(user) => scope.user(user),
            None => scope.server(),
        };
        let s = &self.settings;
        let execute_api = execute_api_arn(&s.region, &s.account, &s.api_id, &s.stage, "POST", PATH);
        let context = global_context(&caller, &caller_peer, trail.time);
        let asker = self
            .deciders
            .authorizer
            .asker(&caller, context, &execute_api)
            .await?;
        let access = Access {
            action: "mlflow:SimulatePolicy",
            arns: &[simulated],
            experiments: &[],
            model: None,
        };
        self.deciders
            .authorizer
            .decide(&asker, access, &mut trail.decisions)
            .await?;

        let policies = asked
            .policies
            .iter()
            .map(|draft| {
                let text = draft.document.to_string();
                PolicyDocument::parse(&text)
                    .map(|document| NamedPolicy {
                        name: draft.name.clone(),
                        document,
                    })
                    .map_err(|e| GatewayError::BadRequest(format!("policy {}: {e}", draft.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let context: Vec<(String, String)> = asked.context.clone().into_iter().collect();
        let peer = Peer {
            ip: asked.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            secure: asked.secure_transport,
        };
        match (&asked.method, &asked.path, &asked.action, &asked.resource) {
            (Some(method), Some(path), None, None) => {
                let method = Method::from_bytes(method.as_bytes())
                    .map_err(|_| GatewayError::BadRequest(format!("method {method:?}")))?;
                let given = asked.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let headers = request_headers(asked.body.is_some(), given)
                    .map_err(GatewayError::BadRequest)?;
                let asked = HttpAsked {
                    method,
                    target: path,
                    headers,
                    body: Bytes::from(asked.body.clone().unwrap_or_default()),
                    peer,
                    context: &context,
                    policies: &policies,
                };
                let simulation = simulate_http(store, &principal, &self.settings, &asked)
                    .await
                    .map_err(GatewayError::StoreUnavailable)?;
                Ok(Json(simulation).into_response())
            }
            (None, None, Some(action), Some(resource)) => {
                let asked = Simulated {
                    action,
                    resource,
                    peer,
                    context: &context,
                    policies: &policies,
                };
                let simulation = simulate(store, &principal, &asked)
                    .await
                    .map_err(GatewayError::StoreUnavailable)?;
                Ok(Json(simulation).into_response())
            }
            _ => Err(GatewayError::BadRequest(
                "give action and resource, or method and path".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let parsed: Result<SimulateRequest, _> =
            serde_json::from_str(r#"{"user": "a", "action": "x", "resource": "y", "bogus": 1}"#);
        assert!(parsed.is_err());
        let parsed: SimulateRequest =
            serde_json::from_str(r#"{"groups": ["readers"], "method": "GET", "path": "/x"}"#)
                .unwrap();
        assert_eq!(parsed.groups, ["readers"]);
    }
}
