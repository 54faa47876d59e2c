//! `mlgate grant`: permission levels as shorthand for policy statements.
//!
//! `mlgate grant --user U|--group G --level L --experiments|--models|--prompts PATTERN` writes
//! one generated policy (named `grant.<level>.<experiments|models|prompts>.<pattern>`, pattern
//! characters outside IAM names replaced) and attaches it to the subject; `mlgate apply`'s
//! `[[grants]]` entries expand through the same [`document`] and [`policy_name`]. The statements of each level are
//! [`statements`]; `docs/permission-levels.md` is the table. `--print` shows the document
//! without writing anything.
//!
//! Experiments are matched by name (`mlflow:ExperimentName`, `StringLike`), so `team-a/*` covers
//! every experiment whose name starts with `team-a/`, and everything in them (runs, traces,
//! logged models, artifacts). Registered models are matched by their ARN, whose last segment is
//! the name (MLflow forbids `/` in model names: use prefixes like `team-a-*`), with their versions.
//! Prompts (registered models tagged `mlflow.prompt.is_prompt`) have ARNs of their own,
//! `prompt/<name>[/version/<n>]`: a grant on models gives no prompt, and the other way round.

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{AccountArg, AdminError, AdminIo, TargetArg, describe, io_err};
use crate::store::{GRANT_POLICY_PREFIX, Store};

/// A permission level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// Read and search (searches list only what is readable).
    Read,
    /// READ plus every write inside (runs, metrics, tags, artifacts, versions), plus creating
    /// under the pattern; no deletion of the experiment or model, no stages or aliases.
    Edit,
    /// Everything, including deletion, stages and aliases.
    Manage,
    /// Models only: READ plus stage transitions to Staging/Archived/None and any alias except
    /// `champion`.
    StagingManager,
    /// Models only: READ plus every stage transition and every alias.
    ProductionManager,
    /// Nothing on the matching resources, whatever other policies allow (an explicit Deny),
    /// as MLflow's DENY.
    Deny,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Edit => "edit",
            Level::Manage => "manage",
            Level::StagingManager => "staging-manager",
            Level::ProductionManager => "production-manager",
            Level::Deny => "deny",
        }
    }
}

/// What a grant covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Experiments(String),
    /// One experiment by id, as MLflow's basic-auth grants them (`docs/basic-auth.md`).
    ExperimentId(String),
    Models(String),
    Prompts(String),
}

impl Scope {
    /// The scope of `--experiments`, `--models` or `--prompts` (exactly one, non-empty).
    pub fn from_options(
        experiments: Option<String>,
        models: Option<String>,
        prompts: Option<String>,
    ) -> Result<Scope, AdminError> {
        let scope = match (experiments, models, prompts) {
            (Some(p), None, None) => Scope::Experiments(p),
            (None, Some(p), None) => Scope::Models(p),
            (None, None, Some(p)) => Scope::Prompts(p),
            _ => {
                return Err(AdminError::Usage(
                    "give exactly one of experiments, models or prompts".into(),
                ));
            }
        };
        if scope.pattern().is_empty() {
            return Err(AdminError::Usage("the pattern is empty".into()));
        }
        Ok(scope)
    }

    fn pattern(&self) -> &str {
        match self {
            Scope::Experiments(p)
            | Scope::ExperimentId(p)
            | Scope::Models(p)
            | Scope::Prompts(p) => p,
        }
    }
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub target: TargetArg,
    #[command(flatten)]
    pub account: AccountArg,
    #[arg(long, value_enum, ignore_case = true)]
    pub level: Level,
    #[command(flatten)]
    pub on: OnArg,
    /// Print the generated policy document and write nothing.
    #[arg(long)]
    pub print: bool,
}

/// Experiments, models or prompts (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct OnArg {
    /// Experiment name pattern (`*` and `?` wildcards), e.g. 'team-a/*'.
    #[arg(long, value_name = "PATTERN")]
    pub experiments: Option<String>,
    /// Registered model name pattern, e.g. 'team-a-*'.
    #[arg(long, value_name = "PATTERN")]
    pub models: Option<String>,
    /// Prompt name pattern (prompts are registered models to MLflow), e.g. 'team-a-*'.
    #[arg(long, value_name = "PATTERN")]
    pub prompts: Option<String>,
}

/// The read actions of every level.
const READ: &[&str] = &[
    "mlflow:Get*",
    "mlflow:Search*",
    "mlflow:List*",
    "mlflow:BatchGet*",
    "mlflow:QueryTraceMetrics",
    "mlflow:CalculateTraceFilterCorrelation",
    "mlflow:CreatePresignedDownloadUrl",
];

/// What every level allows on the server ARN: the searches, which name no resource (the filter
/// stage then lists only readable items), and the MLflow UI's shell and server info, so that
/// what a grant gives can be opened in the UI (as basic-auth lets every signed-in user do).
const ON_SERVER: &[&str] = &[
    "mlflow:AccessUI",
    "mlflow:GetServerInfo",
    "mlflow:SearchExperiments",
    "mlflow:SearchRegisteredModels",
    "mlflow:SearchModelVersions",
];

/// What EDIT leaves out on experiments: deleting them, and managing who may use them.
const EXPERIMENT_MANAGE_ONLY: &[&str] = &[
    "mlflow:DeleteExperiment",
    "mlflow:RestoreExperiment",
    "mlflow:GrantUserPermission",
    "mlflow:RevokeUserPermission",
];

/// What EDIT leaves out on models (deletion, release management, who may use them).
const MODEL_MANAGE_ONLY: &[&str] = &[
    "mlflow:GrantUserPermission",
    "mlflow:RevokeUserPermission",
    "mlflow:DeleteRegisteredModel",
    "mlflow:DeleteModelVersion",
    "mlflow:TransitionModelVersionStage",
    "mlflow:SetRegisteredModelAlias",
    "mlflow:DeleteRegisteredModelAlias",
];

/// The alias only a production manager may set or delete.
pub const PRODUCTION_ALIAS: &str = "champion";

/// The policy statements of a level on a scope.
pub fn statements(level: Level, scope: &Scope) -> Result<Vec<Value>, AdminError> {
    let on_server = json!({
        "Sid": "Server", "Effect": "Allow", "Action": ON_SERVER,
        "Resource": "arn:mlflow:*:*:server",
    });
    // A DENY allows nothing, not even the searches.
    let mut out = if level == Level::Deny {
        vec![]
    } else {
        vec![on_server]
    };
    match scope {
        Scope::Experiments(_) | Scope::ExperimentId(_) => {
            // By name: every experiment whose name matches, and creating such experiments. By
            // id: that experiment and everything in it (an id names no experiment to create).
            let (resources, named) = match scope {
                Scope::ExperimentId(id) => {
                    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(AdminError::Usage(format!(
                            "experiment id {id:?} is not a number"
                        )));
                    }
                    let arn = format!("arn:mlflow:*:*:experiment/{id}");
                    (json!([arn, format!("{arn}/*")]), None)
                }
                _ => (
                    json!(["arn:mlflow:*:*:experiment/*"]),
                    Some(json!({"StringLike": {"mlflow:ExperimentName": scope.pattern()}})),
                ),
            };
            let statement = |sid: &str, actions: (&str, Value)| {
                let effect = if level == Level::Deny {
                    "Deny"
                } else {
                    "Allow"
                };
                let mut s = json!({"Sid": sid, "Effect": effect, "Resource": resources});
                s[actions.0] = actions.1;
                if let Some(named) = &named {
                    s["Condition"] = named.clone();
                }
                s
            };
            let create = |sid: &str, effect: &str| {
                named.as_ref().map(|named| {
                    json!({
                        "Sid": sid, "Effect": effect,
                        "Action": "mlflow:CreateExperiment", "Resource": "arn:mlflow:*:*:server",
                        "Condition": named,
                    })
                })
            };
            match level {
                Level::Read => out.push(statement("ReadExperiments", ("Action", json!(READ)))),
                Level::Edit => {
                    out.push(statement(
                        "EditExperiments",
                        ("NotAction", json!(EXPERIMENT_MANAGE_ONLY)),
                    ));
                    out.extend(create("CreateExperiments", "Allow"));
                }
                Level::Manage => {
                    out.push(statement(
                        "ManageExperiments",
                        ("Action", json!("mlflow:*")),
                    ));
                    out.extend(create("CreateExperiments", "Allow"));
                }
                Level::Deny => {
                    out.push(statement("DenyExperiments", ("Action", json!("mlflow:*"))));
                    out.extend(create("DenyCreateExperiments", "Deny"));
                }
                Level::StagingManager | Level::ProductionManager => {
                    return Err(AdminError::Usage(format!(
                        "level {} applies to --models only",
                        level.word().to_uppercase().replace('-', "_")
                    )));
                }
            }
        }
        Scope::Models(pattern) | Scope::Prompts(pattern) => {
            if pattern.contains('/') || pattern.contains(':') {
                return Err(AdminError::Usage(
                    "model and prompt names cannot contain '/' or ':' (MLflow refuses them)".into(),
                ));
            }
            let kind = match scope {
                Scope::Prompts(_)
                    if matches!(level, Level::StagingManager | Level::ProductionManager) =>
                {
                    return Err(AdminError::Usage(format!(
                        "level {} applies to --models only",
                        level.word().to_uppercase().replace('-', "_")
                    )));
                }
                Scope::Prompts(_) => "prompt",
                _ => "registered-model",
            };
            let resources = json!([
                format!("arn:mlflow:*:*:{kind}/{pattern}"),
                format!("arn:mlflow:*:*:{kind}/{pattern}/version/*"),
            ]);
            let read = json!({
                "Sid": "ReadModels", "Effect": "Allow", "Action": READ, "Resource": resources,
            });
            match level {
                Level::Read => out.push(read),
                Level::Edit => out.push(json!({
                    "Sid": "EditModels", "Effect": "Allow", "NotAction": MODEL_MANAGE_ONLY,
                    "Resource": resources,
                })),
                Level::Manage => out.push(json!({
                    "Sid": "ManageModels", "Effect": "Allow", "Action": "mlflow:*",
                    "Resource": resources,
                })),
                Level::Deny => out.push(json!({
                    "Sid": "DenyModels", "Effect": "Deny", "Action": "mlflow:*",
                    "Resource": resources,
                })),
                Level::StagingManager => {
                    out.push(read);
                    out.push(json!({
                        "Sid": "StagingTransitions", "Effect": "Allow",
                        "Action": "mlflow:TransitionModelVersionStage", "Resource": resources,
                        "Condition": {"StringEquals": {"mlflow:TargetStage": ["Staging", "Archived", "None"]}},
                    }));
                    out.push(json!({
                        "Sid": "StagingAliases", "Effect": "Allow",
                        "Action": ["mlflow:SetRegisteredModelAlias", "mlflow:DeleteRegisteredModelAlias"],
                        "Resource": resources,
                        "Condition": {"StringNotEquals": {"mlflow:Alias": PRODUCTION_ALIAS}},
                    }));
                }
                Level::ProductionManager => {
                    out.push(read);
                    out.push(json!({
                        "Sid": "AllTransitionsAndAliases", "Effect": "Allow",
                        "Action": [
                            "mlflow:TransitionModelVersionStage",
                            "mlflow:SetRegisteredModelAlias",
                            "mlflow:DeleteRegisteredModelAlias",
                        ],
                        "Resource": resources,
                    }));
                }
            }
        }
    }
    Ok(out)
}

/// The generated policy document.
pub fn document(level: Level, scope: &Scope) -> Result<Value, AdminError> {
    Ok(json!({"Version": "2012-10-17", "Statement": statements(level, scope)?}))
}

/// `grant.<level>.<experiments|models>.<pattern>`, with characters IAM names refuse replaced
/// (`/` → `_`, `*` → `@`, `?` → `+`, others → `-`).
pub fn policy_name(level: Level, scope: &Scope) -> String {
    let (kind, pattern) = match scope {
        Scope::Experiments(p) => ("experiments", p),
        Scope::ExperimentId(p) => ("experiment-id", p),
        Scope::Models(p) => ("models", p),
        Scope::Prompts(p) => ("prompts", p),
    };
    let safe: String = pattern
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '+' | '=' | ',' | '.' | '@' | '_' | '-' => c,
            '/' => '_',
            '*' => '@',
            '?' => '+',
            _ => '-',
        })
        .collect();
    let mut name = format!("{GRANT_POLICY_PREFIX}{}.{kind}.{safe}", level.word());
    name.truncate(128);
    name
}

pub async fn grant(args: GrantArgs, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    let scope = Scope::from_options(args.on.experiments, args.on.models, args.on.prompts)?;
    let doc = document(args.level, &scope)?;
    let pretty =
        serde_json::to_string_pretty(&doc).map_err(|e| AdminError::Usage(e.to_string()))?;
    if args.print {
        return writeln!(io.out, "{pretty}").map_err(io_err);
    }
    let name = policy_name(args.level, &scope);
    let change = store.put_policy(&name, &doc.to_string()).await?;
    store
        .attach_policy(&name, args.account.account.as_deref(), args.target.target())
        .await?;
    writeln!(
        io.err,
        "{change} policy {name}, attached to {}",
        describe(&args.target)
    )
    .map_err(io_err)
}

#[cfg(test)]
mod tests {
    use mlgate_policy::{Context, Decision, NamedPolicy, PolicyDocument, Request, evaluate};

    use super::*;

    const ARN: &str = "arn:mlflow:us-east-1:111111111111:";

    fn policy(level: Level, scope: &Scope) -> NamedPolicy {
        let doc = document(level, scope).expect("document");
        NamedPolicy {
            name: policy_name(level, scope),
            document: PolicyDocument::parse(&doc.to_string()).expect("valid"),
        }
    }

    fn allowed(p: &NamedPolicy, action: &str, resource: &str, keys: &[(&str, &str)]) -> bool {
        matches!(
            decide(std::slice::from_ref(p), action, resource, keys),
            Decision::Allow(_)
        )
    }

    #[test]
    fn experiment_levels() {
        let scope = Scope::Experiments("team-a/*".into());
        let mine = [("mlflow:ExperimentName", "team-a/churn")];
        let theirs = [("mlflow:ExperimentName", "team-b/churn")];
        let read = policy(Level::Read, &scope);
        assert!(allowed(&read, "mlflow:GetRun", "experiment/1/run/r", &mine));
        assert!(!allowed(
            &read,
            "mlflow:GetRun",
            "experiment/1/run/r",
            &theirs
        ));
        assert!(!allowed(
            &read,
            "mlflow:LogMetric",
            "experiment/1/run/r",
            &mine
        ));
        assert!(allowed(&read, "mlflow:SearchExperiments", "server", &[]));
        assert!(allowed(&read, "mlflow:AccessUI", "server", &[]));
        assert!(allowed(&read, "mlflow:GetServerInfo", "server", &[]));
        let edit = policy(Level::Edit, &scope);
        assert!(allowed(
            &edit,
            "mlflow:LogMetric",
            "experiment/1/run/r",
            &mine
        ));
        assert!(allowed(&edit, "mlflow:CreateExperiment", "server", &mine));
        assert!(!allowed(
            &edit,
            "mlflow:CreateExperiment",
            "server",
            &theirs
        ));
        assert!(!allowed(
            &edit,
            "mlflow:DeleteExperiment",
            "experiment/1",
            &mine
        ));
        // Who may use an experiment is managed with MANAGE, as in basic-auth.
        for action in ["mlflow:GrantUserPermission", "mlflow:RevokeUserPermission"] {
            assert!(!allowed(&edit, action, "experiment/1", &mine));
            let manage = policy(Level::Manage, &Scope::ExperimentId("1".into()));
            assert!(allowed(&manage, action, "experiment/1", &[]));
        }
        let manage = policy(Level::Manage, &scope);
        assert!(allowed(
            &manage,
            "mlflow:DeleteExperiment",
            "experiment/1",
            &mine
        ));
        assert!(!allowed(
            &manage,
            "mlflow:DeleteExperiment",
            "experiment/1",
            &theirs
        ));
        assert!(document(Level::StagingManager, &scope).is_err());
    }

    /// The decision of `policies` together.
    fn decide(
        policies: &[NamedPolicy],
        action: &str,
        resource: &str,
        keys: &[(&str, &str)],
    ) -> Decision {
        let mut context = Context::default();
        for (k, v) in keys {
            context.insert(k, *v);
        }
        let resource = format!("{ARN}{resource}");
        evaluate(
            policies.iter(),
            &Request {
                action,
                resource: &resource,
                principal: Some("arn:aws:iam::111111111111:user/u"),
                context: &context,
            },
        )
    }

    #[test]
    fn deny_wins_over_every_level_on_its_resources_and_only_there() {
        let seven = Scope::ExperimentId("7".into());
        let everything = policy(Level::Manage, &Scope::Experiments("*".into()));
        let denied = policy(Level::Deny, &seven);
        let both = [everything, denied];
        fn named(n: &str) -> [(&'static str, &str); 1] {
            [("mlflow:ExperimentName", n)]
        }
        for (action, resource) in [
            ("mlflow:GetExperiment", "experiment/7"),
            ("mlflow:LogMetric", "experiment/7/run/r"),
            ("mlflow:DeleteExperiment", "experiment/7"),
        ] {
            let d = decide(&both, action, resource, &named("seven"));
            assert!(
                matches!(d, Decision::ExplicitDeny(_)),
                "{action} {resource}: {d:?}"
            );
        }
        let d = decide(
            &both,
            "mlflow:GetExperiment",
            "experiment/8",
            &named("eight"),
        );
        assert!(matches!(d, Decision::Allow(_)), "{d:?}");
        // A DENY alone allows nothing, not even a search or the UI.
        let alone = [policy(Level::Deny, &seven)];
        for action in ON_SERVER {
            assert!(!matches!(
                decide(&alone, action, "server", &[]),
                Decision::Allow(_)
            ));
        }
        // On a name pattern, creating a matching experiment is denied too; on models, versions.
        let team = policy(Level::Deny, &Scope::Experiments("team-a/*".into()));
        let d = decide(
            &[team],
            "mlflow:CreateExperiment",
            "server",
            &named("team-a/x"),
        );
        assert!(matches!(d, Decision::ExplicitDeny(_)), "{d:?}");
        let models = policy(Level::Deny, &Scope::Models("m".into()));
        let d = decide(
            &[models],
            "mlflow:GetModelVersion",
            "registered-model/m/version/1",
            &[],
        );
        assert!(matches!(d, Decision::ExplicitDeny(_)), "{d:?}");
        assert_eq!(
            policy_name(Level::Deny, &seven),
            "grant.deny.experiment-id.7"
        );
    }

    #[test]
    fn experiment_id_levels_cover_that_experiment_whatever_its_name() {
        let scope = Scope::ExperimentId("7".into());
        let read = policy(Level::Read, &scope);
        assert!(allowed(&read, "mlflow:GetExperiment", "experiment/7", &[]));
        assert!(allowed(&read, "mlflow:GetRun", "experiment/7/run/r", &[]));
        assert!(!allowed(&read, "mlflow:GetRun", "experiment/70/run/r", &[]));
        assert!(!allowed(
            &read,
            "mlflow:LogMetric",
            "experiment/7/run/r",
            &[]
        ));
        let edit = policy(Level::Edit, &scope);
        assert!(allowed(
            &edit,
            "mlflow:LogMetric",
            "experiment/7/run/r",
            &[]
        ));
        assert!(!allowed(
            &edit,
            "mlflow:DeleteExperiment",
            "experiment/7",
            &[]
        ));
        assert!(!allowed(&edit, "mlflow:CreateExperiment", "server", &[]));
        let manage = policy(Level::Manage, &scope);
        assert!(allowed(
            &manage,
            "mlflow:DeleteExperiment",
            "experiment/7",
            &[]
        ));
        assert_eq!(
            policy_name(Level::Edit, &scope),
            "grant.edit.experiment-id.7"
        );
        assert!(document(Level::Read, &Scope::ExperimentId("7*".into())).is_err());
    }

    #[test]
    fn model_levels() {
        let scope = Scope::Models("team-a-*".into());
        let v = "registered-model/team-a-churn/version/3";
        let edit = policy(Level::Edit, &scope);
        assert!(allowed(
            &edit,
            "mlflow:CreateModelVersion",
            "registered-model/team-a-churn",
            &[]
        ));
        assert!(!allowed(
            &edit,
            "mlflow:CreateModelVersion",
            "registered-model/team-b-churn",
            &[]
        ));
        assert!(!allowed(
            &edit,
            "mlflow:TransitionModelVersionStage",
            v,
            &[("mlflow:TargetStage", "Staging")]
        ));
        let staging = policy(Level::StagingManager, &scope);
        assert!(allowed(
            &staging,
            "mlflow:TransitionModelVersionStage",
            v,
            &[("mlflow:TargetStage", "Staging")]
        ));
        assert!(!allowed(
            &staging,
            "mlflow:TransitionModelVersionStage",
            v,
            &[("mlflow:TargetStage", "Production")]
        ));
        assert!(allowed(
            &staging,
            "mlflow:SetRegisteredModelAlias",
            v,
            &[("mlflow:Alias", "challenger")]
        ));
        assert!(!allowed(
            &staging,
            "mlflow:SetRegisteredModelAlias",
            v,
            &[("mlflow:Alias", "champion")]
        ));
        let production = policy(Level::ProductionManager, &scope);
        assert!(allowed(
            &production,
            "mlflow:TransitionModelVersionStage",
            v,
            &[("mlflow:TargetStage", "Production")]
        ));
        assert!(allowed(
            &production,
            "mlflow:SetRegisteredModelAlias",
            v,
            &[("mlflow:Alias", "champion")]
        ));
        assert!(!allowed(&production, "mlflow:DeleteModelVersion", v, &[]));
        assert!(document(Level::Read, &Scope::Models("a/b".into())).is_err());
    }

    #[test]
    fn prompt_levels_cover_prompts_not_models() {
        let prompts = Scope::Prompts("team-a-*".into());
        let edit = policy(Level::Edit, &prompts);
        assert!(allowed(
            &edit,
            "mlflow:CreateRegisteredModel",
            "prompt/team-a-greet",
            &[]
        ));
        assert!(allowed(
            &edit,
            "mlflow:CreateModelVersion",
            "prompt/team-a-greet",
            &[]
        ));
        assert!(!allowed(
            &edit,
            "mlflow:GetRegisteredModel",
            "registered-model/team-a-greet",
            &[]
        ));
        assert!(!allowed(
            &edit,
            "mlflow:DeleteRegisteredModel",
            "prompt/team-a-greet",
            &[]
        ));
        let read = policy(Level::Read, &prompts);
        assert!(allowed(
            &read,
            "mlflow:GetModelVersion",
            "prompt/team-a-greet/version/2",
            &[]
        ));
        assert!(!allowed(
            &read,
            "mlflow:GetModelVersion",
            "prompt/team-b-greet/version/2",
            &[]
        ));
        let models = policy(Level::Manage, &Scope::Models("team-a-*".into()));
        assert!(!allowed(
            &models,
            "mlflow:GetRegisteredModel",
            "prompt/team-a-greet",
            &[]
        ));
        assert!(document(Level::ProductionManager, &prompts).is_err());
        assert_eq!(
            policy_name(Level::Read, &prompts),
            "grant.read.prompts.team-a-@"
        );
        assert!(Scope::from_options(None, None, None).is_err());
        assert!(Scope::from_options(Some("a".into()), None, Some("b".into())).is_err());
        assert!(Scope::from_options(None, Some(String::new()), None).is_err());
    }

    #[test]
    fn policy_names_are_iam_names() {
        let name = policy_name(Level::Edit, &Scope::Experiments("team-a/*".into()));
        assert_eq!(name, "grant.edit.experiments.team-a_@");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        );
    }
}
