//! The decision itself, pure: a principal's policies and one question in, a verdict out.
//!
//! Both action vocabularies apply to every request: `execute-api:Invoke` on the method/path ARN
//! (so the article's policies work verbatim) and `mlflow:<Operation>` on each resource ARN.
//! Any explicit Deny in either wins; otherwise the request is allowed if either vocabulary
//! allows it, where the mlflow vocabulary must allow every resource. An assumed role's session
//! policy can only narrow: it must allow too ([`PolicySet::decide`]).

use std::sync::Arc;

use mlgate_policy::{Context, Decision, NamedPolicy, Request, evaluate};

use crate::error::Denial;

/// The action of the path-based vocabulary.
pub const EXECUTE_API_INVOKE: &str = "execute-api:Invoke";

/// What is being asked.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    /// `mlflow:<Operation>` and its resource ARNs.
    pub mlflow: (&'a str, &'a [String]),
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

    /// The 403 refusal: names the principal, the action and the resource, never a policy body.
    pub fn denial(&self, principal: &str) -> Denial {
        Denial::ByPolicy {
            principal: principal.to_owned(),
            action: self.action.to_owned(),
            resource: self.resource.to_owned(),
            explicit: matches!(self.decision, Decision::ExplicitDeny(_)),
        }
    }
}

/// Everything that decides for one principal: its identity policies (its own and its groups',
/// or its role's) and, for an assumed role, the session policy it was given.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    pub identity: Arc<[NamedPolicy]>,
    pub session: Option<Arc<[NamedPolicy]>>,
}

impl PolicySet {
    /// The verdict of the identity policies, narrowed by the session policy.
    pub fn decide<'a>(&self, question: &Question<'a>) -> Verdict<'a> {
        self.narrowed(|policies| decide(policies, question), Verdict::is_allowed)
    }

    /// One action on one resource (the STS endpoint's `sts:AssumeRole` on a role), narrowed by
    /// the session policy the same way.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        self.narrowed(
            |policies| evaluate(policies.iter(), request),
            Decision::is_allowed,
        )
    }

    /// The one narrowing rule: when the identity policies allow, the session policy must allow
    /// too, and its refusal is the answer.
    fn narrowed<T>(&self, ask: impl Fn(&[NamedPolicy]) -> T, allowed: impl Fn(&T) -> bool) -> T {
        let answer = ask(&self.identity);
        match &self.session {
            Some(session) if allowed(&answer) => {
                let narrowed = ask(session);
                if allowed(&narrowed) { answer } else { narrowed }
            }
            _ => answer,
        }
    }

    /// Whether any of the policies reads the condition key `key`; when none does, a key that is
    /// costly to fill (the resource creator) cannot change a decision and need not be looked up.
    pub fn reads_key(&self, key: &str) -> bool {
        self.identity
            .iter()
            .chain(self.session.iter().flat_map(|s| s.iter()))
            .any(|policy| policy.document.references_key(key))
    }
}

/// One set of policies' verdict on a question (both vocabularies).
fn decide<'a>(policies: &[NamedPolicy], question: &Question<'a>) -> Verdict<'a> {
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
    let (action, resources) = question.mlflow;
    let mlflow: Vec<Verdict<'a>> = resources
        .iter()
        .map(|resource| Verdict {
            decision: ask(action, resource),
            action,
            resource,
        })
        .collect();

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
    // Every resource allowed (the first one's statement is audited); with no resource at all,
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

    fn ask(policies: &[NamedPolicy], mlflow: (&str, &[String]), method_path: &str) -> Answer {
        asked(&set(policies), mlflow, method_path)
    }

    fn set(policies: &[NamedPolicy]) -> PolicySet {
        PolicySet {
            identity: Arc::from(policies.to_vec()),
            session: None,
        }
    }

    fn asked(policies: &PolicySet, mlflow: (&str, &[String]), method_path: &str) -> Answer {
        let context = Context::default();
        let execute_api = format!("{API}/prod/{method_path}");
        let question = Question {
            mlflow,
            execute_api: &execute_api,
            principal: ALICE,
            context: &context,
        };
        let verdict = policies.decide(&question);
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
    fn article_admin_may_do_anything() {
        let policies = [article_admin()];
        let res = resources(&[EXP_1]);
        let verdict = ask(
            &policies,
            ("mlflow:DeleteExperiment", &res),
            "POST/api/2.0/mlflow/experiments/delete",
        );
        assert!(verdict.is_allowed());
        assert_eq!(determining(&verdict).0, "restApiAdmin");
    }

    #[test]
    fn article_reader_is_path_based() {
        let policies = [article_reader()];
        let res = resources(&[RUN_1]);
        assert!(
            ask(
                &policies,
                ("mlflow:GetRun", &res),
                "GET/api/2.0/mlflow/runs/get"
            )
            .is_allowed()
        );
        assert!(
            ask(
                &policies,
                ("mlflow:SearchRuns", &res),
                "POST/api/2.0/mlflow/runs/search"
            )
            .is_allowed()
        );
        let denied = ask(
            &policies,
            ("mlflow:CreateRun", &res),
            "POST/api/2.0/mlflow/runs/create",
        );
        assert_eq!(denied.decision, Decision::ImplicitDeny);
        // The message names the mlflow action and resource, the more precise of the two.
        assert_eq!(denied.named(), ("mlflow:CreateRun", RUN_1));
        // The article's path-based policy lets readers POST nothing else, even reads.
        let latest = ask(
            &policies,
            ("mlflow:GetLatestVersions", &res),
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
            ("mlflow:GetLatestVersions", &res),
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
                ("mlflow:CreateRun", &res),
                "POST/api/2.0/mlflow/runs/create"
            )
            .is_allowed()
        );
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
                ("mlflow:GetMetricHistoryBulkInterval", &one),
                "GET/x"
            )
            .is_allowed()
        );
        let both = resources(&[EXP_1, EXP_2]);
        let verdict = ask(
            &policies,
            ("mlflow:SearchRuns", &both),
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
                ("mlflow:GetExperiment", &res),
                "GET/api/2.0/mlflow/experiments/get"
            )
            .is_allowed()
        );
        // mlflow allows, execute-api says nothing: allowed.
        assert!(
            ask(
                &[mlflow_reader()],
                ("mlflow:GetExperiment", &res),
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
        let delete = ("mlflow:DeleteExperiment", res.as_slice());
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
            ("mlflow:SearchRuns", &both),
            "POST/api/2.0/mlflow/runs/search",
        );
        assert!(matches!(verdict.decision, Decision::ExplicitDeny(_)));
        assert_eq!(verdict.resource, EXP_2);
    }

    #[test]
    fn no_policies_no_access() {
        let res = resources(&[EXP_1]);
        assert_eq!(
            ask(&[], ("mlflow:GetExperiment", &res), "GET/x").decision,
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
        let message = verdict.denial(ALICE).to_string();
        assert!(message.contains("mlflow:CreateRun"), "{message}");
        assert!(message.contains(EXP_1), "{message}");
        assert!(message.contains(ALICE), "{message}");
    }

    #[test]
    fn a_session_policy_only_narrows() {
        let res = resources(&[EXP_1]);
        let get = ("mlflow:GetExperiment", res.as_slice());
        let create = ("mlflow:CreateRun", res.as_slice());
        let admin = policy(
            "admins",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:*","Resource":"*"}]}"#,
        );
        let narrowed = PolicySet {
            identity: Arc::from(vec![admin]),
            session: Some(Arc::from(vec![mlflow_reader()])),
        };
        assert!(asked(&narrowed, get, "GET/x").is_allowed());
        let refused = asked(&narrowed, create, "POST/x");
        assert_eq!(refused.decision, Decision::ImplicitDeny);
        assert_eq!(refused.named(), ("mlflow:CreateRun", EXP_1));
        // The session policy cannot widen what the identity policies refuse.
        let widened = PolicySet {
            identity: Arc::from(vec![mlflow_reader()]),
            session: Some(Arc::from(vec![article_admin()])),
        };
        assert!(!asked(&widened, create, "POST/api/2.0/mlflow/runs/create").is_allowed());
        // An explicit deny in the session policy is the verdict.
        let deny = policy(
            "session",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoGets","Effect":"Deny","Action":"mlflow:Get*","Resource":"*"}]}"#,
        );
        let denied = PolicySet {
            identity: Arc::from(vec![mlflow_reader()]),
            session: Some(Arc::from(vec![deny])),
        };
        let verdict = asked(&denied, get, "GET/x");
        assert!(matches!(verdict.decision, Decision::ExplicitDeny(_)));
        assert_eq!(determining(&verdict).1, "NoGets");
    }

    #[test]
    fn reads_key_looks_at_both_sets() {
        let creator = policy(
            "own",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mlflow:*","Resource":"*",
                "Condition":{"StringEquals":{"mlflow:ResourceCreator":"${aws:username}"}}}]}"#,
        );
        assert!(!set(&[mlflow_reader()]).reads_key("mlflow:ResourceCreator"));
        assert!(set(std::slice::from_ref(&creator)).reads_key("mlflow:ResourceCreator"));
        let in_session = PolicySet {
            identity: Arc::from(vec![mlflow_reader()]),
            session: Some(Arc::from(vec![creator])),
        };
        assert!(in_session.reads_key("mlflow:ResourceCreator"));
    }
}
