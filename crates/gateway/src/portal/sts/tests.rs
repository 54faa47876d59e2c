//! STS: XML shapes, the AssumeRole decision (both sides), session names and ARNs.

use std::collections::BTreeMap;

use super::*;
use crate::identity::PrincipalKind;
use crate::store::KeyOwnerRef;

fn plain_peer() -> Peer {
    Peer {
        ip: "192.0.2.7".parse().unwrap(),
        secure: false,
    }
}

fn user(account: &str, name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{account}:user/{name}"),
        account: account.into(),
        name: name.into(),
        kind: PrincipalKind::User,
        groups: Vec::new(),
        tags: BTreeMap::new(),
        auth_method: AuthMethod::Sigv4,
    }
}

#[test]
fn xml_shapes() {
    let p = user("222222222222", "scientist");
    let xml = get_caller_identity(&p, "req-1");
    assert!(xml.contains("<Arn>arn:aws:iam::222222222222:user/scientist</Arn>"));
    assert!(xml.contains("<Account>222222222222</Account>"));
    assert!(xml.starts_with(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    let e = StsError::denied("a <b> & 'c'").to_xml("r");
    assert_eq!(
        e,
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>a &lt;b&gt; &amp; &apos;c&apos;</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    );
}

#[test]
fn role_arns_and_session_names() {
    assert_eq!(
        parse_role_arn("arn:aws:iam::111111111111:role/mlflow-writer"),
        Some(("111111111111", "mlflow-writer"))
    );
    assert_eq!(parse_role_arn("arn:aws:iam::1111:role/x"), None);
    assert_eq!(parse_role_arn("arn:aws:iam::111111111111:user/x"), None);
    assert_eq!(parse_role_arn("arn:aws:iam::111111111111:role/a/b"), None);
    assert!(valid_session_name("job-7@team"));
    assert!(!valid_session_name("x"));
    assert!(!valid_session_name("has space"));
}

fn allow() -> Decision {
    Decision::Allow(mlgate_policy::Determining {
        policy: "p".into(),
        statement: "#0".into(),
    })
}

fn deny() -> Decision {
    Decision::ExplicitDeny(mlgate_policy::Determining {
        policy: "p".into(),
        statement: "#0".into(),
    })
}

#[test]
fn the_aws_rule() {
    let s = |identity, trust, named, same| Sides {
        identity,
        trust,
        trust_names_caller: named,
        same_account: same,
    };
    // Cross-account: both sides, whatever the trust policy names.
    assert!(assume_role_decision(&s(allow(), allow(), true, false)).is_ok());
    assert!(assume_role_decision(&s(Decision::ImplicitDeny, allow(), true, false)).is_err());
    assert!(assume_role_decision(&s(allow(), Decision::ImplicitDeny, false, false)).is_err());
    // Same account: a trust policy naming the caller suffices; naming the account does not.
    assert!(assume_role_decision(&s(Decision::ImplicitDeny, allow(), true, true)).is_ok());
    assert!(assume_role_decision(&s(Decision::ImplicitDeny, allow(), false, true)).is_err());
    assert!(assume_role_decision(&s(allow(), allow(), false, true)).is_ok());
    // The trust policy is always required; explicit deny anywhere wins.
    assert!(assume_role_decision(&s(allow(), Decision::ImplicitDeny, false, true)).is_err());
    assert!(assume_role_decision(&s(deny(), allow(), true, true)).is_err());
    assert!(assume_role_decision(&s(allow(), deny(), true, false)).is_err());
}

const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_USER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":{"AWS":"arn:aws:iam::111111111111:user/bob"},"Action":"sts:AssumeRole"}]}"#;
const MAY_ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":"sts:AssumeRole","Resource":"arn:aws:iam::111111111111:role/*"}]}"#;

/// A store with the data-science account and these roles (name, trust policy).
async fn store_with_roles(roles: &[(&str, &str)]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store
        .ensure_account("222222222222", "data-science")
        .await
        .unwrap();
    for (name, trust) in roles {
        store.put_role(None, name, trust, 3600, "").await.unwrap();
    }
    (dir, store)
}

#[tokio::test]
async fn both_sides_from_the_store() {
    let (_dir, store) = store_with_roles(&[("writer", TRUST_ACCOUNT), ("bobs", TRUST_USER)]).await;
    store.put_policy("may-assume", MAY_ASSUME).await.unwrap();
    for (acct, name) in [
        ("data-science", "scientist"),
        ("data-science", "intern"),
        ("mlflow", "bob"),
        ("mlflow", "carol"),
    ] {
        store
            .create_user(Some(acct), name, None, BTreeMap::new())
            .await
            .unwrap();
    }
    store
        .attach_policy(
            "may-assume",
            Some("data-science"),
            crate::store::AttachTarget::User("scientist"),
        )
        .await
        .unwrap();
    let writer = store.get_role(None, "writer").await.unwrap();
    let bobs = store.get_role(None, "bobs").await.unwrap();
    let decide = |caller: Principal, role: RoleRecord| {
        let store = store.clone();
        async move {
            let ctx = global_context(&caller, &plain_peer(), Timestamp::now());
            let sides = evaluate_sides(&store, &caller, &role, ASSUME_ROLE, &ctx)
                .await
                .unwrap();
            assume_role_decision(&sides)
        }
    };
    // Cross-account: trust names the account and the identity policy allows.
    assert!(
        decide(user("222222222222", "scientist"), writer.clone())
            .await
            .is_ok()
    );
    // Trust allows, identity does not.
    let e = decide(user("222222222222", "intern"), writer.clone())
        .await
        .unwrap_err();
    assert!(e.contains("identity"), "{e}");
    // Identity would allow but the trust policy does not name this account.
    assert!(
        decide(user("111111111111", "carol"), writer.clone())
            .await
            .is_err()
    );
    // Same account, named in the trust policy: no identity policy needed.
    assert!(
        decide(user("111111111111", "bob"), bobs.clone())
            .await
            .is_ok()
    );
    assert!(decide(user("111111111111", "carol"), bobs).await.is_err());
    // Role keys of a role exist too (CLI), unaffected here.
    let _ = KeyOwnerRef::Role("writer");
}

fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn session_tags_are_checked_before_anything_else() {
    let tags = session_tags(&form(&[
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "forecasting"),
        ("Tags.member.2.Key", "cost-center"),
        ("Tags.member.2.Value", "42"),
    ]))
    .unwrap();
    assert_eq!(tags.len(), 2);
    let refused = |pairs: &[(&str, &str)]| session_tags(&form(pairs)).unwrap_err().code;
    // `Team` and `team` would be one multi-valued aws:PrincipalTag/team.
    assert_eq!(
        refused(&[
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "a"),
            ("Tags.member.2.Key", "Team"),
            ("Tags.member.2.Value", "b"),
        ]),
        "ValidationError"
    );
    // A tag after a gap would be dropped unseen.
    assert_eq!(
        refused(&[("Tags.member.2.Key", "team"), ("Tags.member.2.Value", "a")]),
        "ValidationError"
    );
    // Role chaining does not carry tags, so transitive keys are refused.
    assert_eq!(
        refused(&[
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "a"),
            ("TransitiveTagKeys.member.1", "team"),
        ]),
        "ValidationError"
    );
}

#[test]
fn tags_need_tag_session_and_are_request_tags() {
    let none = BTreeMap::new();
    assert_eq!(
        required_actions(ASSUME_ROLE, &none).collect::<Vec<_>>(),
        [ASSUME_ROLE]
    );
    let tags = BTreeMap::from([("team".to_owned(), "fraud".to_owned())]);
    assert_eq!(
        required_actions(ASSUME_ROLE, &tags).collect::<Vec<_>>(),
        [ASSUME_ROLE, TAG_SESSION]
    );
    let mut context = Context::default();
    insert_request_tags(&mut context, &tags);
    assert_eq!(
        context.get("aws:RequestTag/team"),
        Some(&["fraud".to_owned()][..])
    );
    assert_eq!(context.get("aws:TagKeys"), Some(&["team".to_owned()][..]));
}

#[test]
fn web_identity_tags_come_from_the_aws_tags_claim() {
    use serde_json::json;

    use super::web_identity::token_session_tags;
    assert!(token_session_tags(&json!({"sub": "a"})).unwrap().is_empty());
    let tags = token_session_tags(&json!({
        "https://aws.amazon.com/tags": {"principal_tags": {"team": ["fraud"]}}
    }))
    .unwrap();
    assert_eq!(tags, BTreeMap::from([("team".into(), "fraud".into())]));
    for bad in [
        json!({"https://aws.amazon.com/tags": "team=fraud"}),
        json!({"https://aws.amazon.com/tags": {"principal_tags": {"team": "fraud"}}}),
        json!({"https://aws.amazon.com/tags": {"principal_tags": {"team": ["a", "b"]}}}),
    ] {
        assert_eq!(
            token_session_tags(&bad).unwrap_err().code,
            "InvalidIdentityToken"
        );
    }
    let transitive = json!({"https://aws.amazon.com/tags": {
        "principal_tags": {"team": ["fraud"]}, "transitive_tag_keys": ["team"]}});
    assert_eq!(
        token_session_tags(&transitive).unwrap_err().code,
        "ValidationError"
    );
}

const TRUST_TAGGING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":{"AWS":"arn:aws:iam::111111111111:user/bob"},"Action":"sts:AssumeRole"},
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/bob"},
   "Action":"sts:TagSession",
   "Condition":{"StringEquals":{"aws:RequestTag/team":"fraud"},
                "ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}]}"#;
const TRUST_SECURE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":{"AWS":"arn:aws:iam::111111111111:user/bob"},"Action":"sts:AssumeRole",
  "Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;

#[tokio::test]
async fn trust_policies_see_request_tags_and_the_connection() {
    let (_dir, store) =
        store_with_roles(&[("tagging", TRUST_TAGGING), ("tls-only", TRUST_SECURE)]).await;
    store
        .create_user(Some("mlflow"), "bob", None, BTreeMap::new())
        .await
        .unwrap();
    let bob = user("111111111111", "bob");
    let tagging = store.get_role(None, "tagging").await.unwrap();
    let verdict = |role: RoleRecord, action: &'static str, context: Context| {
        let (store, bob) = (store.clone(), bob.clone());
        async move {
            let sides = evaluate_sides(&store, &bob, &role, action, &context)
                .await
                .unwrap();
            assume_role_decision(&sides)
        }
    };
    let with_tags = |pairs: &[(&str, &str)]| {
        let mut context = global_context(&bob, &plain_peer(), Timestamp::now());
        let tags = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        insert_request_tags(&mut context, &tags);
        context
    };
    let ok = with_tags(&[("team", "fraud")]);
    assert!(
        verdict(tagging.clone(), ASSUME_ROLE, ok.clone())
            .await
            .is_ok()
    );
    assert!(verdict(tagging.clone(), TAG_SESSION, ok).await.is_ok());
    let other_value = with_tags(&[("team", "risk")]);
    assert!(
        verdict(tagging.clone(), TAG_SESSION, other_value)
            .await
            .is_err()
    );
    let other_key = with_tags(&[("team", "fraud"), ("boss", "yes")]);
    assert!(verdict(tagging, TAG_SESSION, other_key).await.is_err());

    // The trust decision sees the connection's keys, built where the API's are.
    let tls_only = store.get_role(None, "tls-only").await.unwrap();
    let plain = global_context(&bob, &plain_peer(), Timestamp::now());
    assert!(verdict(tls_only.clone(), ASSUME_ROLE, plain).await.is_err());
    let tls = Peer {
        secure: true,
        ..plain_peer()
    };
    let secure = global_context(&bob, &tls, Timestamp::now());
    assert!(verdict(tls_only, ASSUME_ROLE, secure).await.is_ok());
}

#[test]
fn refusals_differ_only_in_the_audit_record() {
    let unknown = StsError::denied("same text").with_detail("no such role");
    let refused = StsError::denied("same text").with_detail("the trust policy does not allow it");
    assert_eq!(unknown.to_xml("r"), refused.to_xml("r"));
    assert!(unknown.audit_reason().contains("no such role"));
    assert!(!unknown.to_xml("r").contains("no such role"));
}
