//! Searches named by experiment ids (`experiment_ids` of a JSON body: SearchRuns,
//! SearchLoggedModels, the UI's SearchDatasets) are narrowed, not refused: before MLflow sees
//! the request, the experiments the caller may not search are dropped from it, and the request
//! is then decided on those left. None left: mlgate answers an empty page itself.

use mlgate_catalog::{Filtering, ParamSource, Params, Route};

use crate::authorize::{Access, Asker, Authorizer, under};
use crate::error::GatewayError;
use crate::resolve::Resolved;

/// What narrowing did to a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Narrowed {
    /// Every experiment named may be searched (or the search is not one that narrows).
    Unchanged,
    /// Only these may: the request now names them alone.
    To { readable: Vec<String>, of: usize },
}

/// Narrows `resolved` and the request's `experiment_ids` to the experiments `asker` may
/// perform `action` on.
pub async fn narrow(
    authorizer: &Authorizer,
    asker: &Asker<'_>,
    route: &Route,
    action: &str,
    resolved: &mut Resolved,
    params: &mut Params,
) -> Result<Narrowed, GatewayError> {
    if route.filtering != Some(Filtering::Narrowed)
        || params.source() != ParamSource::Body
        || resolved.experiments.is_empty()
    {
        return Ok(Narrowed::Unchanged);
    }
    let scope = authorizer.scope();
    let mut readable = Vec::new();
    for experiment in &resolved.experiments {
        let arns = under(scope, &resolved.arns, &experiment.0);
        let access = Access {
            action,
            arns: &arns,
            experiments: std::slice::from_ref(experiment),
            model: None,
        };
        if authorizer.allows(asker, access).await? {
            readable.push(experiment.0.clone());
        }
    }
    let of = resolved.experiments.len();
    if readable.len() == of {
        return Ok(Narrowed::Unchanged);
    }
    resolved.experiments.retain(|(id, _)| readable.contains(id));
    resolved.arns.retain(|arn| {
        scope
            .experiment_of(arn)
            .is_none_or(|id| readable.iter().any(|r| r == id))
    });
    params.set("experiment_ids", serde_json::Value::from(readable.clone()));
    Ok(Narrowed::To { readable, of })
}
