//! The MLflow workspace a request acts in, read once from `X-MLflow-Workspace` as MLflow 3.17
//! reads it (`resolve_workspace_for_request_if_enabled` in `mlflow/server/workspace_helpers.py`):
//! trimmed, empty or absent meaning the default workspace, and a name MLflow accepts
//! (`WorkspaceNameValidator`). The decided name is what MLflow is sent, so it cannot read the
//! header differently from mlgate.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::GatewayError;

/// The header MLflow selects a workspace by (any case).
pub const WORKSPACE_HEADER: HeaderName = HeaderName::from_static("x-mlflow-workspace");

/// MLflow's workspace for requests that name none (`DEFAULT_WORKSPACE_NAME`).
pub const DEFAULT_WORKSPACE: &str = "default";

/// Names MLflow keeps for its own paths (`WorkspaceNameValidator._RESERVED`).
const RESERVED_NAMES: [&str; 4] = ["workspaces", "api", "ajax-api", "static-files"];

/// The request's workspace when mlgate knows MLflow runs with workspaces (`enabled`), `None`
/// otherwise; the header is then set to exactly that name (or removed). Refused with 400: more
/// than one header, a value that is not text, a name MLflow would refuse, and any workspace at
/// all when workspaces are off (MLflow would refuse it too, and mlgate could not tell them apart).
pub fn workspace(headers: &mut HeaderMap, enabled: bool) -> Result<Option<String>, GatewayError> {
    let mut values = headers.get_all(&WORKSPACE_HEADER).iter();
    let (first, second) = (values.next(), values.next());
    if second.is_some() {
        return Err(GatewayError::BadRequest(format!(
            "more than one {WORKSPACE_HEADER} header: send one"
        )));
    }
    let sent = match first {
        None => String::new(),
        Some(value) => value
            .to_str()
            .map_err(|_| {
                GatewayError::BadRequest(format!("the {WORKSPACE_HEADER} header is not text"))
            })?
            .to_owned(),
    };
    // Python's `str.strip()` on the header's visible ASCII: spaces and tabs.
    let name = sent.trim_matches([' ', '\t']);
    if !enabled {
        headers.remove(&WORKSPACE_HEADER);
        return match name.is_empty() {
            true => Ok(None),
            false => Err(GatewayError::BadRequest(format!(
                "workspace '{name}' was asked for, but this gateway serves an MLflow without \
                 workspaces"
            ))),
        };
    }
    let name = match name.is_empty() {
        true => DEFAULT_WORKSPACE,
        false => valid_name(name)?,
    };
    let value = HeaderValue::from_str(name)
        .map_err(|_| GatewayError::Internal("a workspace name is not a header value".into()))?;
    headers.insert(WORKSPACE_HEADER, value);
    Ok(Some(name.to_owned()))
}

/// A workspace name as MLflow's `WorkspaceNameValidator` accepts it (the default workspace is
/// accepted as it is, like MLflow does).
fn valid_name(name: &str) -> Result<&str, GatewayError> {
    let refused = |why: &str| {
        GatewayError::BadRequest(format!("invalid value for workspace '{name}': {why}"))
    };
    if name == DEFAULT_WORKSPACE {
        return Ok(name);
    }
    if !(2..=63).contains(&name.len()) {
        return Err(refused("must be between 2 and 63 characters"));
    }
    let bytes = name.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ends_ok = [bytes[0], bytes[bytes.len() - 1]]
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(inner_ok && ends_ok) {
        return Err(refused(
            "lowercase letters, digits and inner hyphens only (^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)",
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(refused("the name is reserved by MLflow"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_static("x-mlflow-workspace"),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    fn decided(
        values: &[&[u8]],
        enabled: bool,
    ) -> Result<(Option<String>, Option<String>), String> {
        let mut headers = with(values);
        let name = workspace(&mut headers, enabled).map_err(|e| e.to_string())?;
        let sent = headers
            .get(&WORKSPACE_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        Ok((name, sent))
    }

    #[test]
    fn the_decided_workspace_is_the_one_sent_to_mlflow() {
        let team = |s: &str| Ok((Some(s.to_owned()), Some(s.to_owned())));
        assert_eq!(decided(&[b" team-a\t"], true), team("team-a"));
        assert_eq!(decided(&[], true), team("default"));
        assert_eq!(decided(&[b"  "], true), team("default"));
        assert_eq!(decided(&[b"default"], true), team("default"));
        assert_eq!(decided(&[b"a1"], true), team("a1"));
    }

    #[test]
    fn names_mlflow_would_refuse_or_read_twice_are_refused() {
        for bad in [
            &[b"Team-A".as_slice()][..],
            &[b"a"],
            &[b"-a"],
            &[b"a-"],
            &[b"a_b"],
            &[b"team a"],
            &[b"api"],
            &[b"workspaces"],
            &[b"a/b"],
            &[b"\xe9t\xe9"],
            &[b"team-a", b"team-a"],
            &[b"team-a", b""],
        ] {
            assert!(decided(bad, true).is_err(), "{bad:?}");
        }
        assert!(decided(&[&[b'a'; 64]], true).is_err());
        assert!(decided(&[&[b'a'; 63]], true).is_ok());
    }

    #[test]
    fn without_workspaces_only_no_workspace_passes() {
        assert_eq!(decided(&[], false), Ok((None, None)));
        assert_eq!(decided(&[b" "], false), Ok((None, None)));
        assert!(decided(&[b"team-a"], false).is_err());
        assert!(decided(&[b"default"], false).is_err());
    }
}
