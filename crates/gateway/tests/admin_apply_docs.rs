//! The full `mlgate apply` example of docs/administration.md, applied with the shipped role
//! policies (policies/*.json) through the CLI entry point: it must work as documented, be
//! idempotent, and give the documented effective policies.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use clap::Parser;
use mlgate::admin::{AdminCommand, AdminIo, execute};
use mlgate::identity::AuthMethod;
use mlgate::store::Store;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: AdminCommand,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The TOML block under "### Full example".
fn documented_example() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/administration.md")).unwrap();
    let section = doc
        .split("### Full example")
        .nth(1)
        .expect("section exists");
    let block = section.split("```toml\n").nth(1).expect("toml block");
    block.split("\n```").next().unwrap().to_owned()
}

async fn run(store: &Store, args: &[&str], env: &HashMap<&str, &str>) -> Result<String, String> {
    let mut argv = vec!["mlgate"];
    argv.extend_from_slice(args);
    let cmd = Cli::try_parse_from(argv).map_err(|e| e.to_string())?.cmd;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdin = Cursor::new(Vec::new());
    let lookup = |k: &str| env.get(k).map(|v| (*v).to_owned());
    let mut io = AdminIo {
        out: &mut out,
        err: &mut err,
        stdin: &mut stdin,
        env: &lookup,
    };
    execute(cmd, store, &mut io)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn the_documented_example_applies_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(conf.join("policies")).unwrap();
    for p in ["admins", "readers", "model-approvers"] {
        std::fs::copy(
            repo().join(format!("policies/{p}.json")),
            conf.join(format!("policies/{p}.json")),
        )
        .unwrap();
    }
    let file = conf.join("identities.toml");
    std::fs::write(&file, documented_example()).unwrap();
    let f = file.to_str().unwrap();

    let store = Store::open(&dir.path().join("data")).await.unwrap();
    let env = HashMap::from([
        ("MLGATE_ADMIN_PASSWORD", "admin password 1"),
        ("MLGATE_DEMO_PASSWORD", "demo password 1"),
    ]);

    let first = run(&store, &["apply", "-f", f], &env).await.unwrap();
    assert!(
        first.ends_with("16 created, 0 updated, 0 unchanged\n"),
        "{first}"
    );
    assert!(
        first.contains("created   group   222222222222/scientists"),
        "{first}"
    );
    let second = run(&store, &["apply", "-f", f], &env).await.unwrap();
    assert!(
        second.ends_with("0 created, 0 updated, 16 unchanged\n"),
        "{second}"
    );

    // A changed password is one update, nothing else.
    let env2 = HashMap::from([
        ("MLGATE_ADMIN_PASSWORD", "admin password 2"),
        ("MLGATE_DEMO_PASSWORD", "demo password 1"),
    ]);
    let third = run(&store, &["apply", "-f", f], &env2).await.unwrap();
    assert!(
        third.ends_with("0 created, 1 updated, 15 unchanged\n"),
        "{third}"
    );
    assert!(third.contains("updated   user    admin"), "{third}");

    // Effective policies: the reader's own policy plus both of its group's.
    let reader = store
        .get_user(None, "mlflow-reader")
        .await
        .unwrap()
        .principal(AuthMethod::Basic);
    let names: Vec<String> = store
        .effective_policies(&reader)
        .await
        .unwrap()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(
        names,
        vec!["deny-production-deletes", "readers", "team-experiments"]
    );
    let eff = run(
        &store,
        &["policy", "effective", "--user", "mlflow-reader"],
        &env,
    )
    .await
    .unwrap();
    assert!(
        eff.contains("team-experiments\tvia user 111111111111/mlflow-reader"),
        "{eff}"
    );
    assert!(
        eff.contains("readers\tvia group 111111111111/readers"),
        "{eff}"
    );

    let scientist = store
        .get_user(Some("data-science"), "scientist")
        .await
        .unwrap();
    assert_eq!(scientist.arn(), "arn:aws:iam::222222222222:user/scientist");
    assert_eq!(scientist.groups, vec!["scientists"]);
    assert!(!store.get_user(None, "ci-bot").await.unwrap().has_password());
}

#[tokio::test]
async fn the_quick_start_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let env = HashMap::from([
        ("MLGATE_ADMIN_PASSWORD", "admin password 1"),
        ("MLGATE_DEMO_PASSWORD", "demo password 1"),
    ]);
    let demo = repo().join("deploy/demo.toml");
    let f = demo.to_str().unwrap();
    let first = run(&store, &["apply", "-f", f], &env).await.unwrap();
    assert!(first.contains(" 0 updated, 0 unchanged\n"), "{first}");
    let second = run(&store, &["apply", "-f", f], &env).await.unwrap();
    assert!(second.contains("0 created, 0 updated,"), "{second}");
    for (user, group) in [
        ("mlflow-admin", "admins"),
        ("mlflow-reader", "readers"),
        ("mlflow-model-approver", "model-approvers"),
    ] {
        let u = store.get_user(None, user).await.unwrap();
        assert_eq!(u.groups, vec![group]);
        let p = store
            .effective_policies(&u.principal(AuthMethod::Basic))
            .await
            .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, group);
    }
}
