//! Two processes' worth of store handles on one database file: concurrent writers must not fail
//! with "database is locked" (WAL + busy timeout + BEGIN IMMEDIATE), and nothing is lost.

use std::collections::BTreeMap;

use mlgate::store::{Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).await.unwrap();
    let b = Store::open(dir.path()).await.unwrap();
    a.create_group(None, "team").await.unwrap();

    let writer = |s: Store, prefix: &'static str| {
        tokio::spawn(async move {
            for i in 0..40 {
                let name = format!("{prefix}{i}");
                s.create_user(None, &name, None, BTreeMap::new()).await?;
                s.add_member(None, "team", &name).await?;
            }
            Ok::<_, StoreError>(())
        })
    };
    let (ra, rb) = tokio::join!(writer(a.clone(), "a"), writer(b.clone(), "b"));
    ra.unwrap().unwrap();
    rb.unwrap().unwrap();

    // A third handle, as after a restart, sees everything.
    let c = Store::open(dir.path()).await.unwrap();
    assert_eq!(c.list_users(None).await.unwrap().len(), 80);
    let groups = c.list_groups(None).await.unwrap();
    assert_eq!(groups[0].members.len(), 80);
}

#[tokio::test]
async fn the_default_account_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(
        dir.path(),
        mlgate::store::StoreConfig {
            default_account_id: "222222222222".into(),
            default_account_name: "data-science".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let u = s
        .create_user(None, "alice", None, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(u.arn(), "arn:aws:iam::222222222222:user/alice");
    assert!(
        Store::open_with(
            dir.path(),
            mlgate::store::StoreConfig {
                default_account_id: "12345".into(),
                ..Default::default()
            },
        )
        .await
        .is_err()
    );
}
