//! STS: XML shapes, the AssumeRole decision (both sides), session names and ARNs.

use std::collections::BTreeMap;

use super::*;
use crate::identity::PrincipalKind;
use crate::store::KeyOwnerRef;

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

#[tokio::test]
async fn both_sides_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store
        .ensure_account("222222222222", "data-science")
        .await
        .unwrap();
    store
        .put_role(None, "writer", TRUST_ACCOUNT, 3600, "")
        .await
        .unwrap();
    store
        .put_role(None, "bobs", TRUST_USER, 3600, "")
        .await
        .unwrap();
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
            let ctx = caller_context(&caller, None);
            let sides = evaluate_sides(&store, &caller, &role, &ctx).await.unwrap();
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
