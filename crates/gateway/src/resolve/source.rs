//! A model version's `source`, read as MLflow 3.17's CreateModelVersion handler reads it
//! (`_resolve_registered_model_source_lineage`, `_validate_source_run`, `_validate_source_model`
//! in `mlflow/server/handlers.py`; `_parse_model_uri` in `mlflow/store/artifact/utils/models.py`).
//! Pure: a string in, what it names out.
//!
//! The source decides whose files the new version serves (`/model-versions/get-artifact`), so it
//! is a read of whatever it names. MLflow resolves `models:/<name>/<version|stage|latest>` and
//! `models:/<name>@<alias>` to another registered model's version, which no other field of the
//! request names: that version has to be decided on its own. Every other form is tied by MLflow
//! to the request's `run_id` or `model_id` (`runs:/<run_id>/...` and `models:/<model_id>` must
//! equal them; local and proxied locations must lie inside their artifact root), and mlgate
//! checks the same containment for every remaining location, which MLflow does not do for
//! storage URIs such as `s3://`.
//!
//! Forms MLflow would read in a way mlgate cannot be sure of (an authority after `models:` or
//! `runs:`, a query or fragment, non-ASCII version digits, `.`/`..` path segments) are refused.

use percent_encoding::percent_decode_str;

use crate::error::GatewayError;

use super::arn::id_segment;

/// The values MLflow's own senders use as the source of a prompt version (which has no files);
/// MLflow refuses any other source for a prompt.
pub const PROMPT_SOURCE_PLACEHOLDERS: [&str; 2] = ["dummy-source", "prompt-template"];

/// What a model version's source names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource<'a> {
    /// A version of a registered model, selected as MLflow selects it.
    ModelVersion {
        name: &'a str,
        selector: VersionSelector,
    },
    /// `models:/<model_id>`: a logged model (MLflow requires the request's `model_id` to match).
    LoggedModel(&'a str),
    /// `runs:/<run_id>/<path>` (MLflow requires the request's `run_id` to match).
    Run(&'a str),
    /// Any other location: it must lie inside the artifact root of the request's `model_id`, or
    /// else of its `run_id`.
    Location(&'a str),
    /// A prompt version's placeholder: no files, nothing named.
    Placeholder,
}

/// How a `models:/` URI picks a version of a registered model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VersionSelector {
    /// `models:/<name>/<digits>`.
    Number(String),
    /// `models:/<name>/latest` (any case): the highest version.
    Latest,
    /// `models:/<name>/<stage>`: the highest version in that stage.
    Stage(String),
    /// `models:/<name>@<alias>`.
    Alias(String),
}

/// Reads a model version source. `field` names it in 400 messages.
pub fn model_source<'a>(field: &str, source: &'a str) -> Result<ModelSource<'a>, GatewayError> {
    if PROMPT_SOURCE_PLACEHOLDERS.contains(&source) {
        return Ok(ModelSource::Placeholder);
    }
    let bad = |why: &str| {
        GatewayError::BadRequest(format!("invalid value for parameter '{field}': {why}"))
    };
    let Some((scheme, rest)) = split_scheme(source) else {
        return Ok(ModelSource::Location(source));
    };
    if scheme.eq_ignore_ascii_case("models") {
        let path = registry_path(rest).ok_or_else(|| {
            bad("expected models:/<name>/<version|stage|latest>, models:/<name>@<alias> or models:/<model_id>")
        })?;
        let named =
            models_uri(path).ok_or_else(|| bad("not a models:/ URI MLflow reads one way"))?;
        match &named {
            ModelSource::ModelVersion { name, .. } => id_segment(field, name)?,
            ModelSource::LoggedModel(id) => id_segment(field, id)?,
            _ => "",
        };
        return Ok(named);
    }
    if scheme.eq_ignore_ascii_case("runs") {
        let path = registry_path(rest).ok_or_else(|| bad("expected runs:/<run_id>/<path>"))?;
        let run_id = path.split('/').next().unwrap_or_default();
        return Ok(ModelSource::Run(id_segment(field, run_id)?));
    }
    Ok(ModelSource::Location(source))
}

/// The part after `scheme:` of a URI, as Python's `urlsplit` finds a scheme (a letter, then
/// letters, digits, `+`, `-`, `.`); `None` for a plain path.
fn split_scheme(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some((scheme, rest))
}

/// The path of a `models:` or `runs:` URI without its leading `/`; `None` for the forms MLflow
/// refuses or would read past mlgate (an authority, query, fragment, params, a missing path).
fn registry_path(rest: &str) -> Option<&str> {
    let path = rest.strip_prefix('/')?;
    if path.is_empty() || path.starts_with('/') || path.contains(['?', '#', ';']) {
        return None;
    }
    Some(path)
}

fn models_uri(path: &str) -> Option<ModelSource<'_>> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [name, suffix] => {
            if name.trim().is_empty() || suffix.trim().is_empty() || !suffix.is_ascii() {
                // MLflow's `str.isdigit` takes non-ASCII digits as a version number and
                // `int()` reads them: refused rather than read as a stage.
                return None;
            }
            let selector = if suffix.bytes().all(|b| b.is_ascii_digit()) {
                VersionSelector::Number((*suffix).to_owned())
            } else if suffix.eq_ignore_ascii_case("latest") {
                VersionSelector::Latest
            } else {
                VersionSelector::Stage((*suffix).to_owned())
            };
            Some(ModelSource::ModelVersion { name, selector })
        }
        [one] => match one.rsplit_once('@') {
            Some((name, alias)) if !name.trim().is_empty() && !alias.trim().is_empty() => {
                Some(ModelSource::ModelVersion {
                    name,
                    selector: VersionSelector::Alias(alias.to_owned()),
                })
            }
            Some(_) => None,
            None if one.trim().is_empty() => None,
            None => Some(ModelSource::LoggedModel(one)),
        },
        _ => None,
    }
}

/// Whether `location` lies inside the artifact root `root`, compared as MLflow's
/// `_is_uri_within_root` compares (scheme and authority case-insensitively, path segments
/// percent-decoded until stable, empty segments dropped), with a plain path read as a `file:`
/// URI. A location with a `.` or `..` segment, or a backslash, is never inside: MLflow resolves
/// those on its own disk, which mlgate cannot see.
pub fn within_root(location: &str, root: &str) -> bool {
    match (normalized(location), normalized(root)) {
        (Some(location), Some(root)) => {
            location.0 == root.0
                && location.1 == root.1
                && !root.2.is_empty()
                && location.2.starts_with(&root.2)
        }
        _ => false,
    }
}

/// (scheme, authority, decoded path segments) of a location; `None` when it has `.`/`..`
/// segments or backslashes.
fn normalized(uri: &str) -> Option<(String, String, Vec<String>)> {
    let (scheme, rest) = split_scheme(uri).unwrap_or(("file", uri));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => after.split_at(after.find('/').unwrap_or(after.len())),
        None => ("", rest),
    };
    let mut authority = authority.to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "file" && authority == "localhost" {
        authority.clear();
    }
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let mut segment = raw.to_owned();
        loop {
            let decoded = percent_decode_str(&segment)
                .decode_utf8()
                .ok()?
                .into_owned();
            if decoded == segment {
                break;
            }
            segment = decoded;
        }
        if segment == "." || segment == ".." || segment.contains(['\\', '/']) {
            return None;
        }
        segments.push(segment);
    }
    Some((scheme, authority, segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str) -> ModelSource<'_> {
        model_source("source", source).expect("readable")
    }

    fn refused(source: &str) {
        assert!(
            matches!(
                model_source("source", source),
                Err(GatewayError::BadRequest(_))
            ),
            "{source} should be refused"
        );
    }

    fn version(name: &'static str, selector: VersionSelector) -> ModelSource<'static> {
        ModelSource::ModelVersion { name, selector }
    }

    #[test]
    fn every_models_uri_form_mlflow_resolves_names_a_version() {
        assert_eq!(
            read("models:/alice-m/1"),
            version("alice-m", VersionSelector::Number("1".into()))
        );
        assert_eq!(
            read("models:/alice-m/01"),
            version("alice-m", VersionSelector::Number("01".into()))
        );
        assert_eq!(
            read("models:/alice-m/latest"),
            version("alice-m", VersionSelector::Latest)
        );
        assert_eq!(
            read("models:/alice-m/LATEST"),
            version("alice-m", VersionSelector::Latest)
        );
        assert_eq!(
            read("models:/alice-m/Production"),
            version("alice-m", VersionSelector::Stage("Production".into()))
        );
        assert_eq!(
            read("models:/alice-m@champion"),
            version("alice-m", VersionSelector::Alias("champion".into()))
        );
        // The scheme is case-insensitive, as in urlsplit.
        assert_eq!(
            read("MODELS:/alice-m/2"),
            version("alice-m", VersionSelector::Number("2".into()))
        );
        // An alias splits at the last `@`.
        assert_eq!(
            read("models:/a@b@c"),
            version("a@b", VersionSelector::Alias("c".into()))
        );
    }

    #[test]
    fn logged_models_and_runs() {
        assert_eq!(
            read("models:/m-0123abc"),
            ModelSource::LoggedModel("m-0123abc")
        );
        assert_eq!(read("runs:/abc123/model/x"), ModelSource::Run("abc123"));
        assert_eq!(read("runs:/abc123"), ModelSource::Run("abc123"));
    }

    #[test]
    fn locations_and_placeholders() {
        for location in [
            "mlflow-artifacts:/1/abc/artifacts/model",
            "s3://bucket/1/abc/artifacts/model",
            "/tmp/mlruns/1/abc/artifacts",
            "file:///tmp/x",
            "relative/path",
        ] {
            assert_eq!(read(location), ModelSource::Location(location));
        }
        assert_eq!(read("dummy-source"), ModelSource::Placeholder);
        assert_eq!(read("prompt-template"), ModelSource::Placeholder);
    }

    #[test]
    fn ambiguous_registry_uris_are_refused() {
        for source in [
            "models://host/alice-m/1",
            "models:///alice-m/1",
            "models:alice-m/1",
            "models:/",
            "models:/alice-m/1?x=y",
            "models:/alice-m/1#f",
            "models:/alice-m/1;p",
            "models:/alice-m/1/extra",
            "models:/alice-m/",
            "models:/ /1",
            "models:/alice-m/ ",
            "models:/alice-m/\u{0661}",
            "models:/alice-m@",
            "models:/@champion",
            "runs://host/abc/model",
            "runs:/",
            "runs:/../x",
            "models:/../1",
            "models:/..",
        ] {
            refused(source);
        }
    }

    #[test]
    fn containment_follows_mlflow() {
        let root = "mlflow-artifacts:/1/abc/artifacts";
        assert!(within_root("mlflow-artifacts:/1/abc/artifacts/model", root));
        assert!(within_root("mlflow-artifacts:/1/abc/artifacts", root));
        assert!(within_root("MLFLOW-ARTIFACTS:/1/abc/artifacts/m", root));
        assert!(within_root(
            "mlflow-artifacts:/1/abc/artifacts/%6dodel",
            root
        ));
        assert!(within_root("mlflow-artifacts:///1/abc//artifacts/m", root));
        assert!(!within_root(
            "mlflow-artifacts:/1/abd/artifacts/model",
            root
        ));
        assert!(!within_root(
            "mlflow-artifacts:/1/abc/artifactsX/model",
            root
        ));
        assert!(!within_root(
            "mlflow-artifacts:/1/abc/artifacts/../../def/artifacts",
            root
        ));
        assert!(!within_root(
            "mlflow-artifacts:/1/abc/artifacts/%2e%2e/x",
            root
        ));
        assert!(!within_root(
            "mlflow-artifacts:/1/abc/artifacts/%252e%252e/x",
            root
        ));
        assert!(!within_root(
            "mlflow-artifacts:/1/abc/artifacts/a%2fb",
            root
        ));
        assert!(!within_root("s3://bucket/1/abc/artifacts/model", root));
        assert!(!within_root(
            "mlflow-artifacts://other/1/abc/artifacts",
            root
        ));
        assert!(within_root(
            "s3://Bucket/p/1/abc/artifacts/m",
            "s3://bucket/p/1/abc/artifacts"
        ));
        assert!(!within_root(
            "s3://bucket/p/1/abc/artifacts/m",
            "s3://bucket/"
        ));
        assert!(within_root(
            "/tmp/r/1/a/artifacts/m",
            "file:///tmp/r/1/a/artifacts"
        ));
        assert!(within_root(
            "file://localhost/tmp/r/1/a/artifacts/m",
            "/tmp/r/1/a/artifacts"
        ));
        assert!(!within_root(
            "/tmp/r/1/a/artifacts\\..\\b",
            "/tmp/r/1/a/artifacts"
        ));
    }
}
