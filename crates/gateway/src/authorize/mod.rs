//! Stage 6: the IAM decision. Pure: policies and a question in, a verdict out.
//!
//! Both action vocabularies apply to every request: `execute-api:Invoke` on the method/path ARN
//! (so the article's policies work verbatim) and `mlflow:<Operation>` on each resource ARN.
//! Any explicit Deny in either wins; otherwise the request is allowed if either vocabulary
//! allows it, where the mlflow vocabulary must allow every resource.

use mlgate_policy::{Context, Decision, NamedPolicy, Request, evaluate};

/// The action of the path-based vocabulary.
pub const EXECUTE_API_INVOKE: &str = "execute-api:Invoke";

/// What is being asked.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    /// `mlflow:<Operation>` and its resource ARNs; `None` for a route the catalog does not know,
    /// which only `execute-api:Invoke` can allow.
    pub mlflow: Option<(&'a str, &'a [String])>,
    /// `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>`.
    pub execute_api: &'a str,
    /// The principal's ARN.
    pub principal: &'a str,
    pub context: &'a Context,
}

/// The decision and the action/resource pair a denial message names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub decision: Decision,
    pub action: &'a str,
    pub resource: &'a str,
}

impl Verdict<'_> {
    pub fn is_allowed(&self) -> bool {
        matches!(self.decision, Decision::Allow(_))
    }

    /// The 403 message: names the principal, the action and the resource, never a policy body.
    pub fn denial_message(&self, principal: &str) -> String {
        let why = match self.decision {
            Decision::ExplicitDeny(_) => "with an explicit deny in a policy",
            _ => "because no policy allows it",
        };
        format!(
            "{principal} is not authorized to perform {} on resource {} {why}",
            self.action, self.resource
        )
    }
}

pub fn authorize<'a>(policies: &[NamedPolicy], question: &Question<'a>) -> Verdict<'a> {
    let ask = |action: &str, resource: &str| {
        evaluate(
            policies.iter(),
            &Request {
                action,
                resource,
                principal: Some(question.principal),
                context: question.context,
            },
        )
    };
    let api = Verdict {
        decision: ask(EXECUTE_API_INVOKE, question.execute_api),
        action: EXECUTE_API_INVOKE,
        resource: question.execute_api,
    };
    let mlflow: Vec<Verdict<'a>> = match question.mlflow {
        Some((action, resources)) => resources
            .iter()
            .map(|resource| Verdict {
                decision: ask(action, resource),
                action,
                resource,
            })
            .collect(),
        None => Vec::new(),
    };

    if let Some(deny) = std::iter::once(&api)
        .chain(&mlflow)
        .find(|v| matches!(v.decision, Decision::ExplicitDeny(_)))
    {
        return deny.clone();
    }
    if api.is_allowed() {
        return api;
    }
    if let Some(refused) = mlflow.iter().find(|v| !v.is_allowed()) {
        return refused.clone();
    }
    // Every resource allowed (the first one's statement is audited), or an unknown route that
    // only the execute-api vocabulary could have allowed.
    mlflow.into_iter().next().unwrap_or(api)
}

#[cfg(test)]
mod tests {
    use mlgate_policy::PolicyDocument;

    use super::*;

    const ALICE: &str = "arn:aws:iam::111111111111:user/alice";
    const API: &str = "arn:aws:execute-api:us-east-1:111111111111:mlgate";
    const EXP_1: &str = "arn:mlflow:us-east-1:111111111111:experiment/1";
    const RUN_1: &str = "arn:mlflow:us-east-1:111111111111:experiment/1/run/abc";
    const EXP_2: &str = "arn:mlflow:us-east-1:111111111111:experiment/2";

    fn policy(name: &str, json: &str) -> NamedPolicy {
        let json = json.replace("A/", &format!("{API}/"));
        NamedPolicy {
            name: name.into(),
            document: PolicyDocument::parse(&json).expect("valid policy"),
        }
    }

    /// The sample repository's role policies (CDK), with the api-id placeholder filled.
    fn article_admin() -> NamedPolicy {
        policy(
            "restApiAdmin",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"A/*/*/*"}]}"#,
        )
    }

    fn article_reader() -> NamedPolicy {
        policy(
            "restApiReader",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":[
                "A/*/GET/*","A/*/POST/api/2.0/mlflow/runs/search","A/*/POST/api/2.0/mlflow/experiments/search"]}]}"#,
        )
    }

    fn mlflow_reader() -> NamedPolicy {
        policy(
            "readers",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadAll","Effect":"Allow",
                "Action":["mlflow:Get*","mlflow:Search*","mlflow:List*"],"Resource":"*"}]}"#,
        )
    }

    /// The verdict, owned so the question's borrowed parts can live inside the helper.
    struct Answer {
        decision: Decision,
        action: String,
        resource: String,
    }

    impl Answer {
        fn is_allowed(&self) -> bool {
            matches!(self.decision, Decision::Allow(_))
        }

        fn named(&self) -> (&str, &str) {
            (&self.action, &self.resource)
        }
    }

    fn ask(
        policies: &[NamedPolicy],
        mlflow: Option<(&str, &[String])>,
        method_path: &str,
    ) -> Answer {
        let context = Context::default();
        let execute_api = format!("{API}/prod/{method_path}");
        let question = Question {
            mlflow,
            execute_api: &execute_api,
            principal: ALICE,
            context: &context,
        };
        let verdict = authorize(policies, &question);
        Answer {
            decision: verdict.decision,
            action: verdict.action.to_owned(),
            resource: verdict.resource.to_owned(),
        }
    }

    fn resources(arns: &[&str]) -> Vec<String> {
        arns.iter().map(|s| (*s).to_owned()).collect()
    }

    fn determining(verdict: &Answer) -> (String, String) {
        match &verdict.decision {
            Decision::Allow(by) | Decision::ExplicitDeny(by) => {
                (by.policy.clone(), by.statement.clone())
            }
            Decision::ImplicitDeny => panic!("no determining statement for an implicit deny"),
        }
    }

    #[test]
    fn article_admin_may_do_anything_even_unknown_routes() {
        let policies = [article_admin()];
        let res = resources(&[EXP_1]);
        let verdict = ask(
            &policies,
            Some(("mlflow:DeleteExperiment", &res)),
            "POST/api/2.0/mlflow/experiments/delete",
        );
        assert!(verdict.is_allowed());
        assert_eq!(determining(&verdict).0, "restApiAdmin");
        assert!(ask(&policies, None, "GET/some/unknown/route").is_allowed());
    }

    #[test]
    fn article_reader_is_path_based() {
        let policies = [article_reader()];
        let res = resources(&[RUN_1]);
        assert!(
            ask(
                &policies,
                Some(("mlflow:GetRun", &res)),
                "GET/api/2.0/mlflow/runs/get"
            )
            .is_allowed()
        );
        assert!(
            ask(
                &policies,
                Some(("mlflow:SearchRuns", &res)),
                "POST/api/2.0/mlflow/runs/search"
            )
            .is_allowed()
        );
        let denied = ask(
            &policies,
            Some(("mlflow:CreateRun", &res)),
            "POST/api/2.0/mlflow/runs/create",
        );
        assert_eq!(denied.decision, Decision::ImplicitDeny);
        // The message names the mlflow action and resource, the more precise of the two.
        assert_eq!(denied.named(), ("mlflow:CreateRun", RUN_1));
        // The article's path-based policy lets readers POST nothing else, even reads.
        let latest = ask(
            &policies,
            Some(("mlflow:GetLatestVersions", &res)),
            "POST/api/2.0/mlflow/registered-models/get-latest-versions",
        );
        assert!(!latest.is_allowed());
    }

    #[test]
    fn mlflow_reader_reads_posted_reads_but_no_writes() {
        let policies = [mlflow_reader()];
        let res = resources(&[EXP_1]);
        let verdict = ask(
            &policies,
            Some(("mlflow:GetLatestVersions", &res)),
            "POST/api/2.0/mlflow/registered-models/get-latest-versions",
        );
        assert!(verdict.is_allowed());
        assert_eq!(
            determining(&verdict),
            ("readers".to_owned(), "ReadAll".to_owned())
        );
        assert!(
            !ask(
                &policies,
                Some(("mlflow:CreateRun", &res)),
                "POST/api/2.0/mlflow/runs/create"
            )
            .is_allowed()
        );
        // An unknown route has no mlflow action: only execute-api could allow it.
        let unknown = ask(&policies, None, "GET/api/2.0/mlflow/not-a-route");
        assert_eq!(unknown.decision, Decision::ImplicitDeny);
        assert_eq!(unknown.action, EXECUTE_API_INVOKE);
    }

    #[test]
    fn every_resource_must_be_allowed() {
        let policies = [policy(
            "exp-1-only",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"mlflow:*",
                "Resource":"arn:mlflow:us-east-1:111111111111:experiment/1*"}}"#,
        )];
        let one = resources(&[EXP_1, RUN_1]);
        assert!(
            ask(
                &policies,
                Some(("mlflow:GetMetricHistoryBulkInterval", &one)),
                "GET/x"
            )
            .is_allowed()
        );
        let both = resources(&[EXP_1, EXP_2]);
        let verdict = ask(
            &policies,
            Some(("mlflow:SearchRuns", &both)),
            "POST/api/2.0/mlflow/runs/search",
        );
        assert_eq!(verdict.decision, Decision::ImplicitDeny);
        assert_eq!(verdict.resource, EXP_2);
    }

    #[test]
    fn either_vocabulary_allows() {
        // execute-api allows, mlflow says nothing: allowed.
        let res = resources(&[EXP_1]);
        assert!(
            ask(
                &[article_reader()],
                Some(("mlflow:GetExperiment", &res)),
                "GET/api/2.0/mlflow/experiments/get"
            )
            .is_allowed()
        );
        // mlflow allows, execute-api says nothing: allowed.
        assert!(
            ask(
                &[mlflow_reader()],
                Some(("mlflow:GetExperiment", &res)),
                "GET/api/2.0/mlflow/experiments/get"
            )
            .is_allowed()
        );
    }

    #[test]
    fn an_explicit_deny_in_either_vocabulary_wins() {
        let deny_mlflow = policy(
            "no-deletes",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"mlflow:Delete*","Resource":"*"}]}"#,
        );
        let deny_path = policy(
            "no-delete-path",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoPath","Effect":"Deny","Action":"execute-api:Invoke",
                "Resource":"A/*/POST/api/2.0/mlflow/experiments/delete"}]}"#,
        );
        let res = resources(&[EXP_1]);
        let delete = Some(("mlflow:DeleteExperiment", res.as_slice()));
        let path = "POST/api/2.0/mlflow/experiments/delete";

        let verdict = ask(&[article_admin(), deny_mlflow.clone()], delete, path);
        assert!(matches!(verdict.decision, Decision::ExplicitDeny(_)));
        assert_eq!(
            determining(&verdict),
            ("no-deletes".to_owned(), "NoDeletes".to_owned())
        );
        assert_eq!(verdict.named(), ("mlflow:DeleteExperiment", EXP_1));

        let admin_mlflow = policy(
            "admins",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:*","Resource":"*"}]}"#,
        );
        let verdict = ask(&[admin_mlflow, deny_path], delete, path);
        assert!(matches!(verdict.decision, Decision::ExplicitDeny(_)));
        assert_eq!(determining(&verdict).1, "NoPath");
        assert_eq!(verdict.action, EXECUTE_API_INVOKE);

        // A deny on one resource of several denies the request.
        let deny_exp_2 = policy(
            "not-2",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"mlflow:*","Resource":"arn:mlflow:*:*:experiment/2"}]}"#,
        );
        let both = resources(&[EXP_1, EXP_2]);
        let verdict = ask(
            &[article_admin(), deny_exp_2],
            Some(("mlflow:SearchRuns", &both)),
            "POST/api/2.0/mlflow/runs/search",
        );
        assert!(matches!(verdict.decision, Decision::ExplicitDeny(_)));
        assert_eq!(verdict.resource, EXP_2);
    }

    #[test]
    fn no_policies_no_access() {
        let res = resources(&[EXP_1]);
        assert_eq!(
            ask(&[], Some(("mlflow:GetExperiment", &res)), "GET/x").decision,
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn denial_messages_name_action_and_resource() {
        let verdict = Verdict {
            decision: Decision::ImplicitDeny,
            action: "mlflow:CreateRun",
            resource: EXP_1,
        };
        let message = verdict.denial_message(ALICE);
        assert!(message.contains("mlflow:CreateRun"), "{message}");
        assert!(message.contains(EXP_1), "{message}");
        assert!(message.contains(ALICE), "{message}");
    }
}
