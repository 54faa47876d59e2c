use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::secrets::MasterKey;
use super::*;
use crate::identity::{AuthMethod, Principal};

pub(crate) const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"mlflow:*","Resource":"*"}]}"#;

pub(crate) fn doc(sid: &str) -> String {
    let sid: String = sid.chars().filter(char::is_ascii_alphanumeric).collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{sid}","Effect":"Allow","Action":"mlflow:Get*","Resource":"*"}}]}}"#
    )
}

/// The data of one test, on one backend: every handle [`TestDb::open`] gives shares it.
pub(crate) struct TestDb {
    dir: tempfile::TempDir,
    config: StoreConfig,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        TestDb {
            dir: tempfile::tempdir().unwrap(),
            config: StoreConfig::default(),
        }
    }

    /// `None` when PostgreSQL is not installed here (never under CI).
    async fn postgres() -> Option<TestDb> {
        let location = crate::store::postgres::testing::fresh_database().await?;
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            config: StoreConfig {
                database: Database::Postgres(location),
                ..StoreConfig::default()
            },
        })
    }

    async fn open(&self) -> Store {
        Store::open_with(self.dir.path(), self.config.clone())
            .await
            .unwrap()
    }
}

/// Runs each named test (an `async fn(TestDb)`) once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$test(db).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    users_groups_and_memberships,
    accounts_scope_users,
    effective_policies_are_the_union_over_all_groups,
    invalid_policies_are_refused_with_the_statement_named,
    policies_put_show_delete,
    hot_path_lookups_are_cached_and_writes_invalidate,
    changes_from_another_process_reach_a_watching_server,
    data_survives_reopening,
    tokens_and_sessions,
    apply_is_idempotent,
    apply_converges_grants,
    apply_is_all_or_nothing,
    roles_keys_and_sessions,
    changes_are_journaled_with_their_actor_until_recorded,
);

pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).await.unwrap();
    (dir, store)
}

fn names(p: &[NamedPolicy]) -> Vec<&str> {
    p.iter().map(|p| p.name.as_str()).collect()
}

#[tokio::test]
async fn open_creates_a_private_directory_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::open(&data).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
    let accounts = store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, "111111111111");
    assert_eq!(accounts[0].name, "mlflow");
    drop(store);

    // An existing, too-open directory is tightened.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    Store::open(&open).await.unwrap();
    assert_eq!(mode(&open), 0o700);
}

async fn users_groups_and_memberships(db: TestDb) {
    let s = db.open().await;
    let tags = BTreeMap::from([("team".to_owned(), "ml".to_owned())]);
    let u = s
        .create_user(
            None,
            "alice",
            Some(password::hash("correct horse").unwrap()),
            tags,
        )
        .await
        .unwrap();
    assert_eq!(u.arn(), "arn:aws:iam::111111111111:user/alice");
    assert!(u.has_password());
    assert!(!format!("{u:?}").contains("argon2"), "Debug leaks the hash");
    assert!(matches!(
        s.create_user(None, "alice", None, BTreeMap::new()).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        s.create_user(None, "a/b", None, BTreeMap::new()).await,
        Err(StoreError::Invalid(_))
    ));
    s.create_user(None, "bob", None, BTreeMap::new())
        .await
        .unwrap();

    s.create_group(None, "readers").await.unwrap();
    s.create_group(None, "writers").await.unwrap();
    assert!(s.add_member(None, "readers", "alice").await.unwrap());
    assert!(!s.add_member(None, "readers", "alice").await.unwrap());
    assert!(s.add_member(None, "writers", "alice").await.unwrap());
    assert!(s.add_member(None, "readers", "bob").await.unwrap());
    assert!(matches!(
        s.add_member(None, "readers", "nobody").await,
        Err(StoreError::NotFound { kind: "user", .. })
    ));

    let a = s.get_user(None, "alice").await.unwrap();
    assert_eq!(a.groups, vec!["readers", "writers"]);
    assert_eq!(a.tags["team"], "ml");
    let groups = s.list_groups(None).await.unwrap();
    assert_eq!(groups[0].name, "readers");
    assert_eq!(groups[0].members, vec!["alice", "bob"]);

    assert!(s.remove_member(None, "writers", "alice").await.unwrap());
    assert_eq!(
        s.get_user(None, "alice").await.unwrap().groups,
        vec!["readers"]
    );

    let t = s
        .tag_user(
            None,
            "alice",
            BTreeMap::from([("site".into(), "eu".into())]),
            vec!["team".into()],
        )
        .await
        .unwrap();
    assert_eq!(t.tags, BTreeMap::from([("site".into(), "eu".into())]));

    s.set_disabled(None, "bob", true).await.unwrap();
    assert!(s.get_user(None, "bob").await.unwrap().disabled);
    s.delete_user(None, "bob").await.unwrap();
    assert_eq!(
        s.list_groups(None).await.unwrap()[0].members,
        vec!["alice"],
        "membership cascades"
    );
    s.delete_group(None, "readers").await.unwrap();
    assert!(s.get_user(None, "alice").await.unwrap().groups.is_empty());
}

async fn accounts_scope_users(db: TestDb) {
    let s = db.open().await;
    assert_eq!(
        s.ensure_account("222222222222", "data-science")
            .await
            .unwrap(),
        Change::Created
    );
    assert_eq!(
        s.ensure_account("222222222222", "data-science")
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert!(matches!(
        s.ensure_account("333333333333", "data-science").await,
        Err(StoreError::Conflict(_))
    ));
    s.create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    // The same name in another account is another user.
    let other = s
        .create_user(Some("data-science"), "alice", None, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(other.arn(), "arn:aws:iam::222222222222:user/alice");
    assert_eq!(s.list_users(Some("222222222222")).await.unwrap().len(), 1);
    assert_eq!(s.list_users(None).await.unwrap().len(), 2);
    assert_eq!(
        s.account_id("data-science").await.unwrap().as_deref(),
        Some("222222222222")
    );
    assert_eq!(s.account_id("nope").await.unwrap(), None);
    // Groups cannot take members from another account.
    s.create_group(Some("222222222222"), "team").await.unwrap();
    assert!(
        s.add_member(Some("222222222222"), "team", "alice")
            .await
            .unwrap()
    );
    assert!(
        s.get_user(None, "alice").await.unwrap().groups.is_empty(),
        "the default account's alice is not in the other account's group"
    );
}

async fn effective_policies_are_the_union_over_all_groups(db: TestDb) {
    let s = db.open().await;
    for p in [
        "direct",
        "first-group",
        "second-group",
        "third-group",
        "unrelated",
    ] {
        s.put_policy(p, &doc(p)).await.unwrap();
    }
    s.create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    for g in ["g1", "g2", "g3"] {
        s.create_group(None, g).await.unwrap();
        s.add_member(None, g, "alice").await.unwrap();
    }
    s.create_group(None, "other").await.unwrap();
    let g = AttachTarget::Group;
    s.attach_policy("first-group", None, g("g1")).await.unwrap();
    s.attach_policy("second-group", None, g("g2"))
        .await
        .unwrap();
    s.attach_policy("third-group", None, g("g3")).await.unwrap();
    // Attached twice (directly and through a group): listed once.
    s.attach_policy("first-group", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    s.attach_policy("direct", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    s.attach_policy("unrelated", None, g("other"))
        .await
        .unwrap();

    let alice = s
        .get_user(None, "alice")
        .await
        .unwrap()
        .principal(AuthMethod::Basic);
    let eff = s.effective_policies(&alice).await.unwrap();
    assert_eq!(
        names(&eff),
        vec!["direct", "first-group", "second-group", "third-group"]
    );

    let sources = s.effective_policy_sources(None, "alice").await.unwrap();
    let first = sources.iter().find(|(n, _)| n == "first-group").unwrap();
    assert_eq!(first.1.len(), 2, "{first:?}");

    // A principal whose user is gone has no policies.
    let mut ghost = alice.clone();
    ghost.name = "ghost".into();
    assert!(s.effective_policies(&ghost).await.unwrap().is_empty());
}

async fn invalid_policies_are_refused_with_the_statement_named(db: TestDb) {
    let s = db.open().await;
    let bad = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Fine","Effect":"Allow","Action":"mlflow:GetRun","Resource":"*"},
        {"Sid":"BrokenStatement","Effect":"Permit","Action":"mlflow:GetRun","Resource":"*"}]}"#;
    let e = s.put_policy("bad", bad).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::InvalidPolicy { .. }), "{e:?}");
    assert!(msg.contains("BrokenStatement"), "{msg}");
    assert!(msg.contains("\"bad\""), "{msg}");
    assert!(s.list_policies().await.unwrap().is_empty());
    assert!(s.put_policy("not json", "{").await.is_err());
    assert!(s.put_policy("bad/name", ALLOW_ALL).await.is_err());
}

async fn policies_put_show_delete(db: TestDb) {
    let s = db.open().await;
    assert_eq!(s.put_policy("p", ALLOW_ALL).await.unwrap(), Change::Created);
    // Same JSON value, different formatting: unchanged.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(ALLOW_ALL).unwrap(),
    )
    .unwrap();
    assert_eq!(s.put_policy("p", &pretty).await.unwrap(), Change::Unchanged);
    assert_eq!(s.put_policy("p", &doc("x")).await.unwrap(), Change::Updated);
    assert_eq!(s.get_policy("p").await.unwrap().document, doc("x"));

    s.create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    s.attach_policy("p", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    assert_eq!(s.get_policy("p").await.unwrap().attachment_count, 1);
    let e = s.delete_policy("p", false).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)));
    assert!(e.to_string().contains("alice"), "{e}");
    assert!(
        s.detach_policy("p", None, AttachTarget::User("alice"))
            .await
            .unwrap()
    );
    assert!(
        !s.detach_policy("p", None, AttachTarget::User("alice"))
            .await
            .unwrap()
    );
    s.attach_policy("p", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    s.delete_policy("p", true).await.unwrap();
    assert!(matches!(
        s.get_policy("p").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn hot_path_lookups_are_cached_and_writes_invalidate(db: TestDb) {
    let s = db.open().await;
    s.put_policy("p1", &doc("a")).await.unwrap();
    s.create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    s.attach_policy("p1", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    let alice = s
        .get_user(None, "alice")
        .await
        .unwrap()
        .principal(AuthMethod::Basic);

    let before = s.cache_misses();
    for _ in 0..50 {
        assert_eq!(s.effective_policies(&alice).await.unwrap().len(), 1);
        assert!(
            s.user_by_name("111111111111", "alice")
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        s.cache_misses() - before,
        2,
        "one load per cache, then hits"
    );

    // A write through this handle is visible at once.
    s.put_policy("p2", &doc("b")).await.unwrap();
    s.attach_policy("p2", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    assert_eq!(s.effective_policies(&alice).await.unwrap().len(), 2);
}

async fn changes_from_another_process_reach_a_watching_server(db: TestDb) {
    let server = db.open().await;
    let _watch = server.watch_changes();
    // The admin CLI or another replica: another handle, with its own caches, on the same data.
    let cli = db.open().await;
    cli.put_policy("p1", &doc("a")).await.unwrap();
    cli.create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    let alice = server
        .user_by_name("111111111111", "alice")
        .await
        .unwrap()
        .unwrap()
        .principal(AuthMethod::Basic);
    assert!(server.effective_policies(&alice).await.unwrap().is_empty());

    cli.attach_policy("p1", None, AttachTarget::User("alice"))
        .await
        .unwrap();
    cli.set_disabled(None, "alice", true).await.unwrap();
    // Well within the cache TTL, the server has dropped its cached view.
    let bound = POSTGRES_POLL.max(SQLITE_POLL) + Duration::from_millis(300);
    let seen = async {
        loop {
            let disabled = server
                .user_by_name("111111111111", "alice")
                .await
                .unwrap()
                .unwrap()
                .disabled;
            if disabled && server.effective_policies(&alice).await.unwrap().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(bound, seen)
        .await
        .expect("the change reached the watching server in time");
    assert!(server.is_ready());

    // The TTL, a backstop only, can never be configured above the 2 s bound.
    let long = Store::open_with(
        db.dir.path(),
        StoreConfig {
            cache_ttl: Duration::from_secs(3600),
            ..db.config.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        long.inner.users_by_name.policy().time_to_live(),
        Some(MAX_CACHE_TTL)
    );
    assert_eq!(
        long.inner.policies.policy().time_to_live(),
        Some(MAX_CACHE_TTL)
    );
}

async fn data_survives_reopening(db: TestDb) {
    {
        let s = db.open().await;
        s.put_policy("p", ALLOW_ALL).await.unwrap();
        s.create_user(None, "alice", None, BTreeMap::new())
            .await
            .unwrap();
        s.attach_policy("p", None, AttachTarget::User("alice"))
            .await
            .unwrap();
    }
    let s = db.open().await;
    let alice = s
        .get_user(None, "alice")
        .await
        .unwrap()
        .principal(AuthMethod::Token);
    assert_eq!(
        names(&s.effective_policies(&alice).await.unwrap()),
        vec!["p"]
    );
}

async fn tokens_and_sessions(db: TestDb) {
    let s = db.open().await;
    s.create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    let t = s
        .insert_token(
            None,
            "alice",
            "0123456789abcdef",
            "ci",
            &"ab".repeat(32),
            Some(now() + 60),
        )
        .await
        .unwrap();
    assert_eq!(t.user_name, "alice");
    assert!(!format!("{t:?}").contains(&"ab".repeat(32)));
    assert!(
        !serde_json::to_string(&t)
            .unwrap()
            .contains(&"ab".repeat(32))
    );
    assert_eq!(s.list_tokens(None, Some("alice")).await.unwrap().len(), 1);
    assert!(s.revoke_token("0123456789abcdef").await.unwrap());
    assert!(!s.revoke_token("0123456789abcdef").await.unwrap());
    assert!(
        s.token_by_id("0123456789abcdef")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(matches!(
        s.revoke_token("ffffffffffffffff").await,
        Err(StoreError::NotFound { .. })
    ));

    let uid = s.get_user(None, "alice").await.unwrap().id;
    let owner = || SessionOwner::User {
        user_id: uid.clone(),
    };
    let limits = SessionLimits {
        lifetime: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
    };
    s.create_session(&"cd".repeat(32), owner(), &limits)
        .await
        .unwrap();
    assert!(s.session_by_hash(&"cd".repeat(32)).await.unwrap().is_some());
    assert!(s.delete_session(&"cd".repeat(32)).await.unwrap());
    assert!(s.session_by_hash(&"cd".repeat(32)).await.unwrap().is_none());

    // Changing the password ends the sessions.
    s.create_session(&"ef".repeat(32), owner(), &limits)
        .await
        .unwrap();
    s.set_password(None, "alice", Some(password::hash("new password").unwrap()))
        .await
        .unwrap();
    assert!(s.session_by_hash(&"ef".repeat(32)).await.unwrap().is_none());

    // Deleting the user removes its tokens.
    s.delete_user(None, "alice").await.unwrap();
    assert!(s.list_tokens(None, None).await.unwrap().is_empty());
}

fn plan() -> ApplyPlan {
    ApplyPlan {
        accounts: vec![ApplyAccount {
            id: "222222222222".into(),
            name: "data-science".into(),
        }],
        policies: vec![
            ApplyPolicy {
                name: "admins".into(),
                document: ALLOW_ALL.into(),
            },
            ApplyPolicy {
                name: "readers".into(),
                document: doc("Read"),
            },
        ],
        users: vec![
            ApplyUser {
                name: "mlflow-admin".into(),
                password: Some("admin password".into()),
                ..Default::default()
            },
            ApplyUser {
                name: "mlflow-reader".into(),
                password: Some("reader password".into()),
                tags: Some(BTreeMap::from([("team".into(), "research".into())])),
                ..Default::default()
            },
            ApplyUser {
                account: Some("data-science".into()),
                name: "ds-user".into(),
                policies: Some(vec!["readers".into()]),
                ..Default::default()
            },
        ],
        groups: vec![
            ApplyGroup {
                name: "admins".into(),
                members: Some(vec!["mlflow-admin".into()]),
                policies: Some(vec!["admins".into()]),
                ..Default::default()
            },
            ApplyGroup {
                name: "readers".into(),
                members: Some(vec!["mlflow-reader".into(), "mlflow-admin".into()]),
                policies: Some(vec!["readers".into()]),
                ..Default::default()
            },
        ],
        grants: Vec::new(),
        grants_add_only: false,
    }
}

async fn apply_is_idempotent(db: TestDb) {
    let s = db.open().await;
    let first = s.apply(&plan()).await.unwrap();
    assert_eq!(first.count(Change::Created), first.items.len(), "{first:?}");
    assert_eq!(first.items.len(), 8);

    let second = s.apply(&plan()).await.unwrap();
    assert_eq!(
        second.count(Change::Unchanged),
        second.items.len(),
        "{second:?}"
    );

    let admin = s.get_user(None, "mlflow-admin").await.unwrap();
    assert_eq!(admin.groups, vec!["admins", "readers"]);
    assert!(password::verify(
        "admin password",
        admin.password_hash().unwrap()
    ));
    let eff = s
        .effective_policies(&admin.principal(AuthMethod::Basic))
        .await
        .unwrap();
    assert_eq!(names(&eff), vec!["admins", "readers"]);
    let ds = s.get_user(Some("222222222222"), "ds-user").await.unwrap();
    assert!(!ds.has_password());

    // Changes are reported as updates, and only for what changed.
    let mut p = plan();
    p.policies[1].document = doc("ReadMore");
    p.users[1].password = Some("a new password".into());
    p.groups[1].members = Some(vec!["mlflow-reader".into()]);
    let third = s.apply(&p).await.unwrap();
    assert_eq!(third.change_of("policy", "readers"), Some(Change::Updated));
    assert_eq!(third.change_of("policy", "admins"), Some(Change::Unchanged));
    assert_eq!(
        third.change_of("user", "mlflow-reader"),
        Some(Change::Updated)
    );
    assert_eq!(
        third.change_of("user", "mlflow-admin"),
        Some(Change::Unchanged)
    );
    assert_eq!(third.change_of("group", "readers"), Some(Change::Updated));
    assert_eq!(third.change_of("group", "admins"), Some(Change::Unchanged));
    assert_eq!(
        s.get_user(None, "mlflow-admin").await.unwrap().groups,
        vec!["admins"]
    );
    assert_eq!(s.apply(&p).await.unwrap().count(Change::Unchanged), 8);
}

fn grant(subject: GrantSubject, name: &str, policy: &str) -> ApplyGrant {
    ApplyGrant {
        subject,
        account: None,
        name: name.into(),
        policy: ApplyPolicy {
            name: policy.into(),
            document: doc(&policy.replace(['.', '-', '@'], "")),
        },
    }
}

/// The names of the policies that apply to a user of the default account.
async fn attached(s: &Store, user: &str) -> Vec<String> {
    let user = s.get_user(None, user).await.unwrap();
    let policies = s
        .effective_policies(&user.principal(AuthMethod::Basic))
        .await
        .unwrap();
    names(&policies).into_iter().map(str::to_owned).collect()
}

async fn apply_converges_grants(db: TestDb) {
    let s = db.open().await;
    let mut p = plan();
    p.grants = vec![
        // A group whose policies the file lists, and a user it lists none for.
        grant(GrantSubject::Group, "readers", "grant.read.models.a-@"),
        grant(
            GrantSubject::User,
            "mlflow-reader",
            "grant.edit.prompts.a-@",
        ),
        grant(GrantSubject::User, "mlflow-reader", "grant.read.models.a-@"),
    ];
    let first = s.apply(&p).await.unwrap();
    assert_eq!(
        first.change_of(
            "grant",
            "user 111111111111/mlflow-reader grant.edit.prompts.a-@"
        ),
        Some(Change::Created)
    );
    assert_eq!(
        attached(&s, "mlflow-reader").await,
        vec!["grant.edit.prompts.a-@", "grant.read.models.a-@", "readers"]
    );
    // Applying again changes nothing.
    let again = s.apply(&p).await.unwrap();
    assert_eq!(
        again.count(Change::Unchanged),
        again.items.len(),
        "{again:?}"
    );

    // A grant the user got from the CLI stays while the file gives the user no grant...
    s.put_policy("grant.manage.models.cli", &doc("Cli"))
        .await
        .unwrap();
    s.attach_policy(
        "grant.manage.models.cli",
        None,
        AttachTarget::User("mlflow-admin"),
    )
    .await
    .unwrap();
    // ...and a grant removed from the file is detached from the subjects it owns.
    p.grants.remove(1);
    let third = s.apply(&p).await.unwrap();
    assert_eq!(
        third.change_of(
            "grant",
            "user 111111111111/mlflow-reader grant.edit.prompts.a-@ (detached)"
        ),
        Some(Change::Updated)
    );
    assert_eq!(
        attached(&s, "mlflow-reader").await,
        vec!["grant.read.models.a-@", "readers"]
    );
    assert!(
        attached(&s, "mlflow-admin")
            .await
            .contains(&"grant.manage.models.cli".to_owned())
    );
    // The group's grant goes too once the file no longer has it.
    p.grants.remove(0);
    s.apply(&p).await.unwrap();
    assert!(
        !attached(&s, "mlflow-admin")
            .await
            .contains(&"grant.read.models.a-@".to_owned())
    );

    // A grant policy cannot also be a plain policy; a grant needs its subject.
    let mut p = plan();
    p.grants = vec![grant(GrantSubject::User, "nobody", "grant.read.models.a-@")];
    let e = s.apply(&p).await.unwrap_err().to_string();
    assert!(e.contains("nobody"), "{e}");
    p.grants = vec![grant(GrantSubject::User, "mlflow-reader", "admins")];
    assert!(s.apply(&p).await.is_err());
}

async fn apply_is_all_or_nothing(db: TestDb) {
    let s = db.open().await;
    let mut p = plan();
    p.groups[1].members = Some(vec!["no-such-user".into()]);
    let e = s.apply(&p).await.unwrap_err().to_string();
    assert!(e.contains("readers") && e.contains("no-such-user"), "{e}");
    assert!(s.list_users(None).await.unwrap().is_empty(), "rolled back");
    assert!(s.list_policies().await.unwrap().is_empty(), "rolled back");

    let mut p = plan();
    p.policies[1].document = r#"{"Version":"2012-10-17","Statement":{"Sid":"Oops","Effect":"Maybe","Action":"*","Resource":"*"}}"#.into();
    let e = s.apply(&p).await.unwrap_err().to_string();
    assert!(e.contains("Oops"), "{e}");
    assert!(s.list_accounts().await.unwrap().len() == 1, "rolled back");

    // A dry run reports but writes nothing.
    let r = s.apply_dry_run(&plan()).await.unwrap();
    assert_eq!(r.count(Change::Created), 8);
    assert!(s.list_users(None).await.unwrap().is_empty());
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"sts:AssumeRole"}]}"#;
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"mlflow:*","Resource":"*"}]}"#;

async fn roles_keys_and_sessions(db: TestDb) {
    let store = db.open().await;
    let (master, _) = MasterKey::generate();
    store
        .ensure_account("222222222222", "data-science")
        .await
        .unwrap();
    assert_eq!(
        store
            .put_role(None, "mlflow-writer", TRUST, 3600, "")
            .await
            .unwrap(),
        Change::Created
    );
    assert_eq!(
        store
            .put_role(None, "mlflow-writer", TRUST, 3600, "")
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert!(
        store.put_role(None, "bad", POLICY, 3600, "").await.is_err(),
        "a trust policy needs a Principal"
    );
    assert!(
        store
            .put_role(None, "long", TRUST, 50_000, "")
            .await
            .is_err()
    );
    store.put_policy("all", POLICY).await.unwrap();
    assert!(
        store
            .attach_role_policy(None, "mlflow-writer", "all", true)
            .await
            .unwrap()
    );
    let role = store.get_role(None, "mlflow-writer").await.unwrap();
    assert_eq!(role.policies, vec!["all".to_owned()]);
    // A policy a role holds is not deleted without --force.
    let e = store.delete_policy("all", false).await.unwrap_err();
    assert!(
        e.to_string().contains("role 111111111111/mlflow-writer"),
        "{e}"
    );
    assert_eq!(role.arn(), "arn:aws:iam::111111111111:role/mlflow-writer");
    let pols = store
        .role_policies("111111111111", "mlflow-writer")
        .await
        .unwrap();
    assert_eq!(pols.len(), 1);

    store
        .create_user(Some("data-science"), "scientist", None, BTreeMap::new())
        .await
        .unwrap();
    let (key, secret) = store
        .create_access_key(
            Some("data-science"),
            KeyOwnerRef::User("scientist"),
            &master,
        )
        .await
        .unwrap();
    assert!(key.id.starts_with("AKIA"));
    assert!(!key.sealed_secret().contains(secret.as_str()));
    assert_eq!(
        master
            .open(&key.id, key.sealed_secret())
            .unwrap()
            .as_slice(),
        secret.as_bytes()
    );
    // The database file holds no clear secret (on SQLite, where the file is at hand).
    let file = std::fs::read(db.dir.path().join(DB_FILE)).unwrap_or_default();
    let wal = std::fs::read(db.dir.path().join("mlgate.db-wal")).unwrap_or_default();
    for bytes in [file, wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    assert!(store.set_access_key_active(&key.id, false).await.unwrap());
    assert!(!store.set_access_key_active(&key.id, false).await.unwrap());
    assert!(!store.access_key(&key.id).await.unwrap().unwrap().active);
    let listed = store
        .list_access_keys(Some("data-science"), Some(KeyOwnerRef::User("scientist")))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let (role_key, _) = store
        .create_access_key(None, KeyOwnerRef::Role("mlflow-writer"), &master)
        .await
        .unwrap();
    assert!(matches!(role_key.owner, KeyOwner::Role { .. }));
    store.delete_access_key(&key.id).await.unwrap();
    assert!(store.access_key(&key.id).await.unwrap().is_none());

    let tags = BTreeMap::new();
    let token = new_session_token();
    store
        .insert_sts_session(NewStsSession {
            access_key_id: "ASIATESTTESTTESTTEST",
            role_id: &role.id,
            session_name: "job-1",
            secret_enc: master.seal("ASIATESTTESTTESTTEST", b"s"),
            token_sha256: token_digest(&token),
            session_policy: Some(POLICY),
            source_identity: None,
            tags: &tags,
            caller_arn: "arn:aws:iam::222222222222:user/scientist",
            expires_at: now() + 900,
        })
        .await
        .unwrap();
    let s = store
        .sts_session("ASIATESTTESTTESTTEST")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.arn(),
        "arn:aws:sts::111111111111:assumed-role/mlflow-writer/job-1"
    );
    assert_eq!(s.token_sha256(), token_digest(&token));
    let principal = Principal::role_session(
        "111111111111",
        "mlflow-writer",
        "job-1",
        "ASIATESTTESTTESTTEST",
        BTreeMap::new(),
    );
    assert_eq!(principal.arn, s.arn());
    let session = store.session_policies(&principal).await.unwrap().unwrap();
    assert_eq!(session[0].name, "session-policy");
    assert_eq!(store.effective_policies(&principal).await.unwrap().len(), 1);
    store.delete_role(None, "mlflow-writer").await.unwrap();
    // Session gone (role deleted): the session policy denies everything.
    let gone = store.session_policies(&principal).await.unwrap().unwrap();
    assert_eq!(gone[0].name, "session-ended");
    assert!(
        store
            .sts_session("ASIATESTTESTTESTTEST")
            .await
            .unwrap()
            .is_none()
    );
}

/// Takes the waiting journal rows; `written` says whether the audit log took them.
async fn take_journal(s: &Store, written: bool) -> Vec<AdminChange> {
    let taken = std::sync::Mutex::new(Vec::new());
    s.record_admin_changes(|changes| {
        taken.lock().unwrap().extend(changes);
        async move { written }
    })
    .await
    .unwrap();
    taken.into_inner().unwrap()
}

async fn changes_are_journaled_with_their_actor_until_recorded(db: TestDb) {
    let s = db.open().await;
    // The default account created at the first open is the first change.
    let opened = take_journal(&s, true).await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0].action, "PutAccount");
    assert_eq!(opened[0].actor["type"], "os_user");

    let admin = s.acting_as(Actor::principal(
        "arn:aws:iam::111111111111:user/root",
        "r1",
    ));
    admin.put_policy("p", &doc("One")).await.unwrap();
    admin.put_policy("p", &doc("One")).await.unwrap(); // unchanged: not journaled
    admin.put_policy("p", &doc("Two")).await.unwrap();
    admin
        .create_user(None, "u", None, BTreeMap::new())
        .await
        .unwrap();
    // A dry run and a failed change journal nothing.
    s.apply_dry_run(&plan()).await.unwrap();
    assert!(s.put_policy("bad", "{").await.is_err());

    // The audit log could not take them: they wait.
    let first = take_journal(&s, false).await;
    assert_eq!(
        first.iter().map(|c| c.action.as_str()).collect::<Vec<_>>(),
        ["PutPolicy", "PutPolicy", "CreateUser"]
    );
    let again = take_journal(&s, true).await;
    assert_eq!(again, first);
    assert!(take_journal(&s, true).await.is_empty(), "recorded once");

    let (created, updated) = (&again[0], &again[1]);
    assert_eq!(created.target, "policy/p");
    assert_eq!(created.before, None);
    let one: serde_json::Value = serde_json::from_str(&doc("One")).unwrap();
    let two: serde_json::Value = serde_json::from_str(&doc("Two")).unwrap();
    assert_eq!(created.after.as_ref(), Some(&one));
    assert_eq!(updated.before.as_ref(), Some(&one));
    assert_eq!(updated.after.as_ref(), Some(&two));
    assert_eq!(
        created.actor,
        serde_json::json!({"type": "principal", "arn": "arn:aws:iam::111111111111:user/root", "request_id": "r1"})
    );
    assert!(created.change_id < updated.change_id && updated.change_id < again[2].change_id);
    assert_eq!(again[2].target, "user/111111111111/u");

    // apply: its policies with their documents, every other changed item by name.
    s.apply(&plan()).await.unwrap();
    let applied = take_journal(&s, true).await;
    assert!(
        applied
            .iter()
            .any(|c| c.action == "PutPolicy" && c.after.is_some())
    );
    assert!(
        applied
            .iter()
            .any(|c| c.action == "Apply" && c.target == "user/mlflow-admin")
    );
    assert!(
        applied
            .iter()
            .all(|c| c.action != "Apply" || !c.target.starts_with("policy/"))
    );
}
