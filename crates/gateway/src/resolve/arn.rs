//! Resource ARNs: pure string building from identifiers, no I/O.
//!
//! `arn:mlflow:<region>:<account>:<resource>` where `<resource>` is one of
//!
//! * `server`: the tracking server itself, for routes that name no resource (searches without
//!   ids, CreateExperiment, the UI, server info);
//! * `experiment/<id>`, `experiment/<id>/run/<run_id>`, `experiment/<id>/logged-model/<model_id>`,
//!   `experiment/<id>/trace/<trace_id>`, `experiment/<id>/scorer/<name>`;
//! * `experiment/<id>/dataset/<dataset_id>`: an evaluation dataset has one such ARN per
//!   experiment it is linked to (all of them are decided), and `dataset/<dataset_id>` when it is
//!   linked to none;
//! * `registered-model/<name>`, `registered-model/<name>/version/<n>`;
//! * `prompt/<name>`, `prompt/<name>/version/<n>`: registered models that MLflow tags
//!   `mlflow.prompt.is_prompt=true` (its prompt registry), a resource type of their own so that
//!   a policy grants prompts without models and the other way round ([`ModelKind`]).
//!
//! When MLflow runs with workspaces (`--mlflow-workspaces`), every one of these lies under the
//! request's workspace: `workspace/<ws>/experiment/<id>`, `workspace/<ws>/registered-model/<name>`,
//! `workspace/<ws>/server`, ... (names are unique only per workspace, so the workspace is part of
//! the identity). A workspace itself is `workspace/<name>`. Without workspaces the ARNs carry no
//! workspace segment at all.
//!
//! Children sit under their experiment, so `experiment/1/*` in a policy covers everything in
//! experiment 1. Identifiers are inserted verbatim after [`id_segment`] checked them: one with a
//! `/` could pose as another resource's ARN (`registered-model/a/version/1`), so it is refused
//! (MLflow itself allows no `/` in any of them).

use crate::error::GatewayError;

/// Region and account of the MLflow resources behind this gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArnScope {
    /// `arn:mlflow:<region>:<account>:`
    account: String,
    /// Where the resources of this scope lie: the account's, or a workspace's within it.
    prefix: String,
}

/// The ARN word of a workspace, and of the segment that puts resources inside one.
const WORKSPACE_KIND: &str = "workspace";

impl ArnScope {
    pub fn new(region: &str, account: &str) -> Self {
        let account = format!("arn:mlflow:{region}:{account}:");
        ArnScope {
            prefix: account.clone(),
            account,
        }
    }

    /// The same account's resources inside MLflow workspace `workspace` (a name MLflow accepts,
    /// checked by [`crate::normalize::workspace`]).
    pub fn in_workspace(&self, workspace: &str) -> Self {
        ArnScope {
            prefix: format!("{}{WORKSPACE_KIND}/{workspace}/", self.account),
            account: self.account.clone(),
        }
    }

    pub fn server(&self) -> String {
        format!("{}server", self.prefix)
    }

    /// The MLflow workspace its resources lie in, if any.
    pub fn workspace(&self) -> Option<&str> {
        self.prefix
            .strip_prefix(&self.account)?
            .strip_prefix(WORKSPACE_KIND)?
            .strip_prefix('/')?
            .strip_suffix('/')
    }

    pub fn experiment(&self, experiment_id: &str) -> String {
        format!("{}experiment/{experiment_id}", self.prefix)
    }

    pub fn run(&self, experiment_id: &str, run_id: &str) -> String {
        format!("{}experiment/{experiment_id}/run/{run_id}", self.prefix)
    }

    pub fn logged_model(&self, experiment_id: &str, model_id: &str) -> String {
        format!(
            "{}experiment/{experiment_id}/logged-model/{model_id}",
            self.prefix
        )
    }

    pub fn trace(&self, experiment_id: &str, trace_id: &str) -> String {
        format!("{}experiment/{experiment_id}/trace/{trace_id}", self.prefix)
    }

    pub fn dataset(&self, experiment_id: &str, dataset_id: &str) -> String {
        format!(
            "{}experiment/{experiment_id}/dataset/{dataset_id}",
            self.prefix
        )
    }

    pub fn scorer(&self, experiment_id: &str, name: &str) -> String {
        format!("{}experiment/{experiment_id}/scorer/{name}", self.prefix)
    }

    /// An mlgate user, as basic-auth's API names it (`docs/basic-auth.md`).
    pub fn user(&self, name: &str) -> String {
        format!("{}user/{name}", self.prefix)
    }

    /// An mlgate group, as basic-auth's role routes name it (`docs/basic-auth.md`).
    pub fn group(&self, name: &str) -> String {
        format!("{}group/{name}", self.prefix)
    }

    pub fn registered_model(&self, name: &str) -> String {
        format!("{}registered-model/{name}", self.prefix)
    }

    pub fn model_version(&self, name: &str, version: &str) -> String {
        format!("{}registered-model/{name}/version/{version}", self.prefix)
    }

    pub fn prompt(&self, name: &str) -> String {
        format!("{}prompt/{name}", self.prefix)
    }

    pub fn prompt_version(&self, name: &str, version: &str) -> String {
        format!("{}prompt/{name}/version/{version}", self.prefix)
    }

    /// The ARN of a registered model or prompt named `name` (of version `version`, if given).
    pub fn model_arn(&self, kind: ModelKind, name: &str, version: Option<&str>) -> String {
        match (kind, version) {
            (ModelKind::Model, None) => self.registered_model(name),
            (ModelKind::Model, Some(v)) => self.model_version(name, v),
            (ModelKind::Prompt, None) => self.prompt(name),
            (ModelKind::Prompt, Some(v)) => self.prompt_version(name, v),
        }
    }

    /// The ARN and condition keys of a registered model (`version: None`) or model version as
    /// MLflow lists it, told apart from a prompt by its `tags` (MLflow's own rule, see
    /// [`ModelKind::of_tags`]): `mlflow:ModelTag/<k>` for models, `mlflow:PromptTag/<k>` for
    /// prompts. The search filter decides listed items with this, the resolver requests.
    pub fn registered_model_arn<'a>(
        &self,
        name: &str,
        version: Option<&str>,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> (String, Vec<(String, String)>) {
        let kind = ModelKind::of_tags(tags.clone());
        let keys = tags
            .into_iter()
            .map(|(k, v)| (format!("{}{k}", kind.tag_key_prefix()), v.to_owned()))
            .collect();
        (self.model_arn(kind, name, version), keys)
    }

    /// The experiment id an ARN of this scope lies under (`experiment/<id>[/...]`).
    pub fn experiment_of<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let rest = arn
            .strip_prefix(&self.prefix)?
            .strip_prefix("experiment/")?;
        let id = rest.split('/').next()?;
        (!id.is_empty()).then_some(id)
    }

    /// The registered model an ARN of this scope lies under (`registered-model/<name>[/...]`).
    pub fn model_of<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let rest = arn
            .strip_prefix(&self.prefix)?
            .strip_prefix("registered-model/")?;
        let name = rest.split('/').next()?;
        (!name.is_empty()).then_some(name)
    }

    /// `<kind>/<id>` for resources not anchored under an experiment or a model (datasets linked
    /// to no experiment, scorers named by id, webhooks, AI-gateway objects, ...).
    /// A workspace lies in no workspace: `workspace/<name>` whatever the request's workspace.
    pub fn flat(&self, kind: &str, id: &str) -> String {
        match kind {
            WORKSPACE_KIND => format!("{}{kind}/{id}", self.account),
            _ => format!("{}{kind}/{id}", self.prefix),
        }
    }
}

/// The registered-model tag that makes a registered model (and a model version) a prompt.
pub const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// What a registered model is: MLflow keeps prompts as registered models with a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Model,
    Prompt,
}

impl ModelKind {
    /// MLflow's rule (`RegisteredModel._is_prompt`, `_is_prompt_request`): tags collapse by key,
    /// the last value winning, and the item is a prompt when [`IS_PROMPT_TAG`] is `true` in any
    /// case.
    pub fn of_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> ModelKind {
        let last = tags
            .into_iter()
            .filter(|(k, _)| *k == IS_PROMPT_TAG)
            .last()
            .map(|(_, v)| v);
        if last.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            ModelKind::Prompt
        } else {
            ModelKind::Model
        }
    }

    /// The condition key prefix of the tags of this kind.
    pub fn tag_key_prefix(self) -> &'static str {
        match self {
            ModelKind::Model => "mlflow:ModelTag/",
            ModelKind::Prompt => "mlflow:PromptTag/",
        }
    }
}

/// Checks that an identifier can be one ARN segment; `field` names it in the 400 message.
pub fn id_segment<'a>(field: &str, value: &'a str) -> Result<&'a str, GatewayError> {
    if value.is_empty() {
        Err(GatewayError::BadRequest(format!(
            "missing value for parameter '{field}'"
        )))
    } else if value.contains('/') || value == "." || value == ".." {
        Err(GatewayError::BadRequest(format!(
            "invalid value for parameter '{field}': not a single path segment"
        )))
    } else {
        Ok(value)
    }
}

/// An identifier MLflow reads as a number (`int(...)`: experiment ids, model version numbers),
/// in the one spelling MLflow gives it back: `01`, ` 1`, `+1` and `1_0` would otherwise name the
/// experiment or version MLflow acts on under an ARN no policy names (a Deny on `experiment/1`
/// would not see `experiment/01`). A value Python's `int()` would not read is kept as it is
/// (MLflow refuses it); non-ASCII digits or spaces, which `int()` also reads, are a 400.
pub fn number_id(field: &str, value: &str) -> Result<String, GatewayError> {
    let refused = || {
        GatewayError::BadRequest(format!(
            "invalid value for parameter '{field}': write the number with ASCII digits"
        ))
    };
    if !value.is_ascii() {
        let looks_numeric = value
            .chars()
            .all(|c| c.is_numeric() || c.is_whitespace() || matches!(c, '+' | '-' | '_'));
        return match looks_numeric {
            true => Err(refused()),
            false => Ok(id_segment(field, value)?.to_owned()),
        };
    }
    // Python's `str.isspace` in ASCII: space, \t through \r, and \x1c through \x1f.
    let trimmed = value.trim_matches(|c: char| matches!(c, ' ' | '\t'..='\r' | '\x1c'..='\x1f'));
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let digit_groups_ok = !unsigned.is_empty()
        && unsigned
            .split('_')
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()));
    if !digit_groups_ok {
        return Ok(id_segment(field, value)?.to_owned());
    }
    let digits: String = trimmed.chars().filter(|c| *c != '_').collect();
    let number: i128 = digits.parse().map_err(|_| refused())?;
    Ok(number.to_string())
}

/// The prompt a `prompts:/<name>/<version>` or `prompts:/<name>@<alias>` URI names: its name
/// and version (`None` for an alias, decided on the prompt itself). Read as MLflow's
/// `_parse_model_uri` reads it; the forms it would also accept by accident (an authority
/// `prompts://host/...`, `;params`, `?query`, `#fragment`) are refused.
pub fn prompt_uri<'a>(
    field: &str,
    uri: &'a str,
) -> Result<(&'a str, Option<&'a str>), GatewayError> {
    let bad = || {
        GatewayError::BadRequest(format!(
            "invalid value for parameter '{field}': expected prompts:/<name>/<version> or \
             prompts:/<name>@<alias>"
        ))
    };
    let path = uri.strip_prefix("prompts:/").ok_or_else(bad)?;
    if path.starts_with('/') || path.contains(['?', '#', ';']) {
        return Err(bad());
    }
    match path.split_once('/') {
        Some((name, version))
            if !name.trim().is_empty()
                && !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok((id_segment(field, name)?, Some(version)))
        }
        Some(_) => Err(bad()),
        None => match path.rsplit_once('@') {
            Some((name, alias)) if !name.trim().is_empty() && !alias.trim().is_empty() => {
                Ok((id_segment(field, name)?, None))
            }
            _ => Err(bad()),
        },
    }
}

/// Who owns an artifact path of MLflow's artifact proxy, read from the path's layout
/// (`<experiment_id>/<run_id>/artifacts/...`, `<experiment_id>/models/<model_id>/artifacts/...`,
/// `<experiment_id>/traces/<trace_id>/artifacts/...`). The path is where the bytes live, so
/// the ARN names the experiment whose directory is read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactOwner<'a> {
    Run {
        experiment_id: &'a str,
        run_id: &'a str,
    },
    LoggedModel {
        experiment_id: &'a str,
        model_id: &'a str,
    },
    Trace {
        experiment_id: &'a str,
        trace_id: &'a str,
    },
    /// Directly inside an experiment's directory, or the directory itself.
    Experiment { experiment_id: &'a str },
    /// Outside any experiment (the artifact root, or a layout of a later MLflow feature).
    Server,
}

impl ArtifactOwner<'_> {
    pub fn arn(&self, scope: &ArnScope) -> String {
        match *self {
            ArtifactOwner::Run {
                experiment_id,
                run_id,
            } => scope.run(experiment_id, run_id),
            ArtifactOwner::LoggedModel {
                experiment_id,
                model_id,
            } => scope.logged_model(experiment_id, model_id),
            ArtifactOwner::Trace {
                experiment_id,
                trace_id,
            } => scope.trace(experiment_id, trace_id),
            ArtifactOwner::Experiment { experiment_id } => scope.experiment(experiment_id),
            ArtifactOwner::Server => scope.server(),
        }
    }
}

/// An artifact-store path relative to the request's workspace's root: MLflow keeps a
/// workspace's artifacts under `workspaces/<workspace>/` and also accepts paths written with
/// that prefix, for the request's own workspace only (another's is refused, as MLflow does).
/// Without workspaces the path is as written.
pub fn workspace_relative<'a>(
    path: &'a str,
    workspace: Option<&str>,
) -> Result<&'a str, GatewayError> {
    let Some(workspace) = workspace else {
        return Ok(path);
    };
    let mut segments = path.splitn(3, '/');
    if segments.next() != Some(WORKSPACES_FOLDER) {
        return Ok(path);
    }
    match segments.next() {
        Some(named) if named == workspace => Ok(segments.next().unwrap_or_default()),
        _ => Err(GatewayError::BadRequest(format!(
            "artifact path {path:?} is not in the request's workspace '{workspace}'"
        ))),
    }
}

/// The artifact store's folder of workspaces' artifacts.
const WORKSPACES_FOLDER: &str = "workspaces";

/// Reads the owner of an artifact path. Paths that could be read two ways (`.`/`..` segments,
/// backslashes, absolute paths, empty segments) are refused rather than guessed at.
pub fn artifact_owner(path: &str) -> Result<ArtifactOwner<'_>, GatewayError> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(ArtifactOwner::Server);
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    let ambiguous =
        |s: &&str| s.is_empty() || *s == "." || *s == ".." || s.contains('\\') || s.contains(':');
    if segments.iter().any(ambiguous) {
        return Err(GatewayError::BadRequest(format!(
            "artifact path {path:?} is not a plain relative path"
        )));
    }
    let experiment_id = segments[0];
    if !experiment_id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(ArtifactOwner::Server);
    }
    Ok(match segments.as_slice() {
        [_, "models", model_id, "artifacts", ..] => ArtifactOwner::LoggedModel {
            experiment_id,
            model_id,
        },
        [_, "traces", trace_id, "artifacts", ..] => ArtifactOwner::Trace {
            experiment_id,
            trace_id,
        },
        [_, run_id, "artifacts", ..] => ArtifactOwner::Run {
            experiment_id,
            run_id,
        },
        _ => ArtifactOwner::Experiment { experiment_id },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope::new("us-east-1", "111111111111")
    }

    #[test]
    fn a_workspace_puts_every_resource_under_it_but_workspaces_themselves() {
        let base = scope();
        let team_a = base.in_workspace("team-a");
        assert_eq!(
            base.experiment("1"),
            "arn:mlflow:us-east-1:111111111111:experiment/1"
        );
        assert_eq!(
            team_a.registered_model("m"),
            "arn:mlflow:us-east-1:111111111111:workspace/team-a/registered-model/m"
        );
        assert_eq!(
            team_a.server(),
            "arn:mlflow:us-east-1:111111111111:workspace/team-a/server"
        );
        assert_eq!(
            team_a.dataset("7", "d-1"),
            "arn:mlflow:us-east-1:111111111111:workspace/team-a/experiment/7/dataset/d-1"
        );
        assert_eq!(
            team_a.scorer("7", "s"),
            "arn:mlflow:us-east-1:111111111111:workspace/team-a/experiment/7/scorer/s"
        );
        assert_eq!(
            team_a.flat("dataset", "d-1"),
            "arn:mlflow:us-east-1:111111111111:workspace/team-a/dataset/d-1"
        );
        assert_eq!(team_a.experiment_of(&team_a.run("7", "r")), Some("7"));
        assert_eq!(team_a.experiment_of(&base.run("7", "r")), None);
        assert_eq!(
            team_a.in_workspace("team-b").experiment("1"),
            base.in_workspace("team-b").experiment("1")
        );
        for scope in [&base, &team_a] {
            assert_eq!(
                scope.flat("workspace", "team-b"),
                "arn:mlflow:us-east-1:111111111111:workspace/team-b"
            );
        }
    }

    #[test]
    fn prompt_uris_name_a_prompt_and_maybe_a_version() {
        assert_eq!(
            prompt_uri("f", "prompts:/greet/3").ok(),
            Some(("greet", Some("3")))
        );
        assert_eq!(
            prompt_uri("f", "prompts:/greet@prod").ok(),
            Some(("greet", None))
        );
        assert_eq!(prompt_uri("f", "prompts:/a@b@c").ok(), Some(("a@b", None)));
        for bad in [
            "",
            "greet/3",
            "models:/greet/3",
            "prompts:/",
            "prompts:/greet",
            "prompts:/greet/",
            "prompts:/greet/latest",
            "prompts:/greet/3/4",
            "prompts://host/greet/3",
            "prompts:/greet/3;x",
            "prompts:/greet/3?x",
            "prompts:/greet@",
            "prompts:/@a",
            "prompts:/../3",
            "prompts:/ /3",
        ] {
            assert!(prompt_uri("f", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn arns() {
        let s = scope();
        assert_eq!(s.server(), "arn:mlflow:us-east-1:111111111111:server");
        assert_eq!(
            s.experiment("7"),
            "arn:mlflow:us-east-1:111111111111:experiment/7"
        );
        assert_eq!(
            s.run("7", "abc"),
            "arn:mlflow:us-east-1:111111111111:experiment/7/run/abc"
        );
        assert_eq!(
            s.registered_model("churn"),
            "arn:mlflow:us-east-1:111111111111:registered-model/churn"
        );
        assert_eq!(
            s.model_version("churn", "3"),
            "arn:mlflow:us-east-1:111111111111:registered-model/churn/version/3"
        );
        assert_eq!(
            s.logged_model("7", "m-1"),
            "arn:mlflow:us-east-1:111111111111:experiment/7/logged-model/m-1"
        );
        assert_eq!(
            s.trace("7", "tr-1"),
            "arn:mlflow:us-east-1:111111111111:experiment/7/trace/tr-1"
        );
        assert_eq!(
            s.dataset("7", "d-1"),
            "arn:mlflow:us-east-1:111111111111:experiment/7/dataset/d-1"
        );
        assert_eq!(
            s.scorer("7", "judge"),
            "arn:mlflow:us-east-1:111111111111:experiment/7/scorer/judge"
        );
        assert_eq!(s.experiment_of(&s.dataset("7", "d-1")), Some("7"));
    }

    #[test]
    fn prompts_are_told_apart_by_their_tag() {
        let s = scope();
        assert_eq!(
            s.prompt_version("greet", "2"),
            "arn:mlflow:us-east-1:111111111111:prompt/greet/version/2"
        );
        let prompt = [(IS_PROMPT_TAG, "True"), ("team", "a")];
        let (arn, keys) = s.registered_model_arn("greet", None, prompt);
        assert_eq!(arn, s.prompt("greet"));
        assert_eq!(
            keys[1],
            ("mlflow:PromptTag/team".to_owned(), "a".to_owned())
        );
        let (arn, keys) = s.registered_model_arn("churn", Some("3"), [("team", "a")]);
        assert_eq!(arn, s.model_version("churn", "3"));
        assert_eq!(keys, [("mlflow:ModelTag/team".to_owned(), "a".to_owned())]);
        // The last value of a repeated key wins, as in MLflow.
        let flipped = [(IS_PROMPT_TAG, "true"), (IS_PROMPT_TAG, "false")];
        assert_eq!(ModelKind::of_tags(flipped), ModelKind::Model);
        assert_eq!(
            ModelKind::of_tags([(IS_PROMPT_TAG, "yes")]),
            ModelKind::Model
        );
        assert_eq!(ModelKind::of_tags([]), ModelKind::Model);
    }

    #[test]
    fn experiments_of_arns() {
        let s = scope();
        assert_eq!(s.experiment_of(&s.run("7", "abc")), Some("7"));
        assert_eq!(s.experiment_of(&s.experiment("12")), Some("12"));
        assert_eq!(s.experiment_of(&s.registered_model("m")), None);
        assert_eq!(s.experiment_of("arn:mlflow:eu-west-1:1:experiment/7"), None);
        assert_eq!(s.model_of(&s.model_version("churn", "3")), Some("churn"));
        assert_eq!(s.model_of(&s.registered_model("churn")), Some("churn"));
        assert_eq!(s.model_of(&s.experiment("1")), None);
    }

    #[test]
    fn numbers_take_the_spelling_mlflow_reads() {
        for (sent, read) in [
            ("1", "1"),
            ("01", "1"),
            ("001", "1"),
            (" 1", "1"),
            ("1 ", "1"),
            ("\t1\n", "1"),
            ("\x0b1\x1f", "1"),
            ("+1", "1"),
            ("-0", "0"),
            ("1_0", "10"),
            ("0_1", "1"),
        ] {
            assert_eq!(
                number_id("experiment_id", sent).expect(sent),
                read,
                "{sent:?}"
            );
        }
        // Not numbers to Python: left for MLflow to refuse.
        for kept in ["abc", "1__0", "_1", "1_", "0x1", "1.0", "1e3"] {
            assert_eq!(number_id("experiment_id", kept).expect(kept), kept);
        }
        // Numbers to Python that mlgate will not guess at.
        for refused in [
            "\u{0661}",
            "1\u{00a0}",
            "\u{2003}1",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(number_id("experiment_id", refused).is_err(), "{refused:?}");
        }
        assert!(number_id("experiment_id", "1/2").is_err());
    }

    #[test]
    fn identifiers_must_be_one_segment() {
        assert_eq!(id_segment("name", "churn").expect("ok"), "churn");
        assert!(id_segment("name", "a/version/1").is_err());
        assert!(id_segment("run_id", "").is_err());
        assert!(id_segment("model_id", "..").is_err());
    }

    #[test]
    fn artifact_paths_name_their_owner() {
        assert_eq!(
            artifact_owner("1/abc/artifacts/model/MLmodel").expect("ok"),
            ArtifactOwner::Run {
                experiment_id: "1",
                run_id: "abc"
            }
        );
        assert_eq!(
            artifact_owner("1/abc/artifacts").expect("ok"),
            ArtifactOwner::Run {
                experiment_id: "1",
                run_id: "abc"
            }
        );
        assert_eq!(
            artifact_owner("1/models/m-9/artifacts/MLmodel").expect("ok"),
            ArtifactOwner::LoggedModel {
                experiment_id: "1",
                model_id: "m-9"
            }
        );
        assert_eq!(
            artifact_owner("1/traces/tr-1/artifacts/traces.json").expect("ok"),
            ArtifactOwner::Trace {
                experiment_id: "1",
                trace_id: "tr-1"
            }
        );
        assert_eq!(
            artifact_owner("12").expect("ok"),
            ArtifactOwner::Experiment {
                experiment_id: "12"
            }
        );
        assert_eq!(
            artifact_owner("12/").expect("ok"),
            ArtifactOwner::Experiment {
                experiment_id: "12"
            }
        );
        assert_eq!(
            artifact_owner("12/abc").expect("ok"),
            ArtifactOwner::Experiment {
                experiment_id: "12"
            }
        );
        assert_eq!(artifact_owner("").expect("ok"), ArtifactOwner::Server);
        // A workspace's artifacts are its experiments', with or without its prefix.
        let team_a = Some("team-a");
        assert_eq!(
            workspace_relative("workspaces/team-a/3/r/artifacts/x", team_a).expect("ok"),
            "3/r/artifacts/x"
        );
        assert_eq!(
            workspace_relative("workspaces/team-a", team_a).expect("ok"),
            ""
        );
        assert_eq!(
            workspace_relative("3/r/artifacts/x", team_a).expect("ok"),
            "3/r/artifacts/x"
        );
        assert!(workspace_relative("workspaces/team-b/3/r/artifacts/x", team_a).is_err());
        assert!(workspace_relative("workspaces", team_a).is_err());
        assert_eq!(
            workspace_relative("workspaces/team-b/3", None).expect("ok"),
            "workspaces/team-b/3"
        );
        assert_eq!(scope().in_workspace("team-a").workspace(), team_a);
        assert_eq!(scope().workspace(), None);
        assert_eq!(
            artifact_owner("skills/x").expect("ok"),
            ArtifactOwner::Server
        );
    }

    #[test]
    fn artifact_path_tricks_are_refused() {
        for path in [
            "1/../2/abc/artifacts/x",
            "1/abc/artifacts/../../../2/def/artifacts/x",
            "./1/abc/artifacts",
            "/1/abc/artifacts",
            "1//abc/artifacts",
            "1\\..\\2/abc/artifacts",
            "s3://bucket/1/abc/artifacts",
        ] {
            assert!(artifact_owner(path).is_err(), "{path} should be refused");
        }
    }

    #[test]
    fn owners_map_to_arns() {
        let s = scope();
        let owner = artifact_owner("3/r1/artifacts/x").expect("ok");
        assert_eq!(owner.arn(&s), s.run("3", "r1"));
        assert_eq!(ArtifactOwner::Server.arn(&s), s.server());
    }
}
