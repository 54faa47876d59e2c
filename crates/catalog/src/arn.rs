//! The article's `execute-api` vocabulary.

/// The API Gateway method ARN for a request, as API Gateway builds it for IAM authorization:
/// `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>` where `<path>`
/// is the (normalized) request path without its leading `/` (so `/` gives an empty path).
/// The article's policies match it with e.g.
/// `arn:aws:execute-api:*:*:*/*/GET/api/2.0/mlflow/experiments/get`.
pub fn execute_api_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    method: &str,
    path: &str,
) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    format!(
        "arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{}/{path}",
        method.to_ascii_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_the_article() {
        assert_eq!(
            execute_api_arn(
                "us-west-2",
                "111122223333",
                "a1b2c3",
                "prod",
                "get",
                "/api/2.0/mlflow/experiments/get"
            ),
            "arn:aws:execute-api:us-west-2:111122223333:a1b2c3/prod/GET/api/2.0/mlflow/experiments/get"
        );
        assert_eq!(
            execute_api_arn("r", "1", "id", "s", "GET", "/"),
            "arn:aws:execute-api:r:1:id/s/GET/"
        );
    }
}
