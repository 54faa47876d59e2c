//! Condition keys of a request: pure, from the principal, the connection and the clock.

use jiff::Timestamp;
use mlgate_policy::Context;

use crate::identity::Principal;
use crate::listen::Peer;

/// The keys of the connection and the clock, which every decision sees: the API's, and STS
/// trust-policy decisions (also those of a web identity, which has no principal yet).
pub fn request_context(peer: &Peer, now: Timestamp) -> Context {
    let mut context = Context::default();
    context.insert("aws:SourceIp", peer.ip.to_canonical().to_string());
    context.insert(
        "aws:SecureTransport",
        if peer.secure { "true" } else { "false" },
    );
    // Whole seconds, as AWS sends them (`2026-11-26T09:30:00Z`).
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    context.insert("aws:CurrentTime", now.to_string());
    context.insert("aws:EpochTime", now.as_second().to_string());
    context
}

/// The global keys every authenticated request carries (`aws:*`, `mlgate:AuthMethod`).
/// `aws:username` only for users: a role session has none, as in AWS.
pub fn global_context(principal: &Principal, peer: &Peer, now: Timestamp) -> Context {
    let mut context = request_context(peer, now);
    if let Some(username) = principal.username() {
        context.insert("aws:username", username.to_owned());
    }
    context.insert("aws:PrincipalArn", principal.arn.clone());
    context.insert("aws:PrincipalAccount", principal.account.clone());
    context.insert("mlgate:AuthMethod", principal.auth_method.as_str());
    for (key, value) in &principal.tags {
        context.insert(&format!("aws:PrincipalTag/{key}"), value.clone());
    }
    context
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::identity::{AuthMethod, PrincipalKind};

    fn alice() -> Principal {
        Principal {
            arn: "arn:aws:iam::111111111111:user/alice".into(),
            account: "111111111111".into(),
            name: "alice".into(),
            kind: PrincipalKind::User,
            groups: vec!["readers".into()],
            tags: BTreeMap::from([("team".to_owned(), "fraud".to_owned())]),
            auth_method: AuthMethod::Basic,
        }
    }

    fn one<'a>(context: &'a Context, key: &str) -> &'a str {
        match context.get(key) {
            Some([value]) => value,
            other => panic!("{key}: expected one value, got {other:?}"),
        }
    }

    #[test]
    fn principal_and_connection_keys() {
        let peer = Peer {
            ip: "::ffff:192.0.2.10".parse().expect("addr"),
            secure: true,
        };
        let now: Timestamp = "2026-11-26T09:30:00.750Z".parse().expect("time");
        let context = global_context(&alice(), &peer, now);
        assert_eq!(one(&context, "aws:username"), "alice");
        assert_eq!(
            one(&context, "aws:PrincipalArn"),
            "arn:aws:iam::111111111111:user/alice"
        );
        assert_eq!(one(&context, "aws:PrincipalAccount"), "111111111111");
        assert_eq!(one(&context, "aws:PrincipalTag/team"), "fraud");
        assert_eq!(one(&context, "mlgate:AuthMethod"), "basic");
        // An IPv4 client on a dual-stack socket is an IPv4 address for IpAddress conditions.
        assert_eq!(one(&context, "aws:SourceIp"), "192.0.2.10");
        assert_eq!(one(&context, "aws:SecureTransport"), "true");
        assert_eq!(one(&context, "aws:CurrentTime"), "2026-11-26T09:30:00Z");
        assert_eq!(one(&context, "aws:EpochTime"), "1795685400");
    }

    #[test]
    fn plain_connections_are_not_secure() {
        let peer = Peer {
            ip: "127.0.0.1".parse().expect("addr"),
            secure: false,
        };
        let context = global_context(&alice(), &peer, Timestamp::UNIX_EPOCH);
        assert_eq!(one(&context, "aws:SecureTransport"), "false");
        assert_eq!(one(&context, "aws:CurrentTime"), "1970-01-01T00:00:00Z");
        assert_eq!(one(&context, "aws:EpochTime"), "0");
    }

    #[test]
    fn a_role_session_has_no_username() {
        let peer = Peer {
            ip: "127.0.0.1".parse().expect("addr"),
            secure: false,
        };
        let session = Principal::role_session(
            "111111111111",
            "writer",
            "alice",
            "ASIAEXAMPLEEXAMPLE00",
            BTreeMap::new(),
        );
        let context = global_context(&session, &peer, Timestamp::UNIX_EPOCH);
        assert_eq!(context.get("aws:username"), None);
        assert_eq!(
            one(&context, "aws:PrincipalArn"),
            "arn:aws:sts::111111111111:assumed-role/writer/alice"
        );
    }
}
