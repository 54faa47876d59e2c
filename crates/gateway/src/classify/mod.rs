//! Stage 4: which MLflow operation a request is, from the route catalog (`mlgate-catalog`),
//! and its ARN in the article's execute-api vocabulary.

use http::Method;
use mlgate_catalog::{Classified, Route, Serves, classify, execute_api_arn};

use crate::config::GatewaySettings;
use crate::error::GatewayError;

/// A classified request.
#[derive(Clone, Debug)]
pub struct Call {
    /// The route MLflow dispatches to; `None` when MLflow serves nothing for the method and
    /// path: such a request is refused whatever the policies say ([`Call::catalogued`]).
    pub route: Option<&'static Route>,
    /// Path parameters of the route, percent-decoded as MLflow's handler receives them.
    pub path_params: Vec<(&'static str, String)>,
    /// `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>`.
    pub execute_api: String,
}

impl Call {
    pub fn new(method: &Method, normalized_path: &str, settings: &GatewaySettings) -> Call {
        let execute_api = execute_api_arn(
            &settings.region,
            &settings.account,
            &settings.api_id,
            &settings.stage,
            method.as_str(),
            normalized_path,
        );
        match classify(method.as_str(), normalized_path) {
            Classified::Route { route, path_params } => Call {
                route: Some(route),
                path_params,
                execute_api,
            },
            Classified::Unknown => Call {
                route: None,
                path_params: Vec::new(),
                execute_api,
            },
        }
    }

    /// The route, or the refusal of a method and path outside the catalog: MLflow serves
    /// nothing there, and no policy can change that.
    pub fn catalogued(&self, method: &Method, path: &str) -> Result<&'static Route, GatewayError> {
        self.route.ok_or_else(|| GatewayError::UnknownRoute {
            method: method.clone(),
            path: path.to_owned(),
        })
    }

    /// Routes anyone may call (MLflow's health check).
    pub fn is_public(&self) -> bool {
        self.route.is_some_and(|route| route.public)
    }

    /// A page of the MLflow UI.
    pub fn is_ui_page(&self) -> bool {
        self.route
            .is_some_and(|route| route.serves == Serves::UiPage)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings() -> GatewaySettings {
        GatewaySettings {
            region: "us-east-1".into(),
            account: "111111111111".into(),
            api_id: "mlgate".into(),
            stage: "prod".into(),
            max_parsed_body: 1 << 20,
            parsed_body_budget: 4 << 20,
            body_timeout: Duration::from_secs(1),
            upstream: "http://127.0.0.1:5001".parse().expect("uri"),
            upstream_timeout: Duration::from_secs(1),
            mlflow_workspaces: false,
        }
    }

    #[test]
    fn known_and_unknown_routes() {
        let call = Call::new(&Method::POST, "/api/2.0/mlflow/runs/create", &settings());
        let route = call.route.expect("known route");
        assert_eq!(route.operation, "CreateRun");
        assert_eq!(
            call.execute_api,
            "arn:aws:execute-api:us-east-1:111111111111:mlgate/prod/POST/api/2.0/mlflow/runs/create"
        );

        let unknown = Call::new(&Method::GET, "/api/2.0/mlflow/not-a-route", &settings());
        assert!(unknown.route.is_none());
        assert!(!unknown.is_public());
    }

    #[test]
    fn public_and_ui_routes() {
        assert!(Call::new(&Method::GET, "/health", &settings()).is_public());
        let ui = Call::new(&Method::GET, "/", &settings());
        assert!(ui.is_ui_page());
        assert!(!ui.is_public());
    }

    #[test]
    fn artifact_paths_are_path_parameters() {
        let call = Call::new(
            &Method::PUT,
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl",
            &settings(),
        );
        assert_eq!(
            call.path_params,
            vec![("artifact_path", "1/abc/artifacts/model.pkl".to_owned())]
        );
    }
}
