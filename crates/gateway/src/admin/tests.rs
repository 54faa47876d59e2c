use std::collections::HashMap;

use clap::Parser;

use super::*;
use crate::store::tests::{ALLOW_ALL, temp_store};

#[derive(Parser, Debug)]
#[command(name = "mlgate")]
struct Cli {
    #[command(subcommand)]
    cmd: AdminCommand,
}

struct Outcome {
    out: String,
    err: String,
}

async fn cli(
    store: &Store,
    args: &[&str],
    stdin: &str,
    env: &HashMap<&str, &str>,
) -> Result<Outcome, AdminError> {
    let mut argv = vec!["mlgate"];
    argv.extend_from_slice(args);
    let cmd = Cli::try_parse_from(argv)
        .map_err(|e| AdminError::Usage(e.to_string()))?
        .cmd;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = io::Cursor::new(stdin.as_bytes().to_vec());
    let lookup = |k: &str| env.get(k).map(|v| (*v).to_owned());
    let mut io = AdminIo {
        out: &mut out,
        err: &mut err,
        stdin: &mut input,
        env: &lookup,
    };
    execute(cmd, store, &mut io).await?;
    Ok(Outcome {
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    })
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90d").unwrap(), Some(90 * 86_400));
    assert_eq!(parse_duration("12h").unwrap(), Some(43_200));
    assert_eq!(parse_duration("2w").unwrap(), Some(14 * 86_400));
    assert_eq!(parse_duration("never").unwrap(), None);
    for bad in ["", "d", "10", "10y", "-1d", "0d", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn passwords_cannot_be_given_as_arguments() {
    for args in [
        vec![
            "mlgate",
            "user",
            "create",
            "alice",
            "--password",
            "hunter22",
        ],
        vec![
            "mlgate",
            "user",
            "set-password",
            "alice",
            "--password",
            "hunter22",
        ],
    ] {
        assert!(Cli::try_parse_from(args).is_err());
    }
    // And the sources are mutually exclusive.
    assert!(
        Cli::try_parse_from([
            "mlgate",
            "user",
            "create",
            "alice",
            "--password-stdin",
            "--generate-password"
        ])
        .is_err()
    );
    assert!(
        Cli::try_parse_from([
            "mlgate", "policy", "attach", "p", "--user", "a", "--group", "g"
        ])
        .is_err()
    );
    assert!(Cli::try_parse_from(["mlgate", "policy", "attach", "p"]).is_err());
}

#[tokio::test]
async fn users_from_stdin_env_and_generated() {
    let (_d, s) = temp_store().await;
    let env = HashMap::from([("ALICE_PW", "alice password")]);
    cli(
        &s,
        &[
            "user",
            "create",
            "alice",
            "--password-env",
            "ALICE_PW",
            "--tag",
            "team=ml",
        ],
        "",
        &env,
    )
    .await
    .unwrap();
    let o = cli(
        &s,
        &["user", "create", "bob", "--password-stdin"],
        "bob password\n",
        &env,
    )
    .await
    .unwrap();
    assert!(o.out.is_empty(), "nothing secret printed: {}", o.out);
    let o = cli(
        &s,
        &["user", "create", "carol", "--generate-password"],
        "",
        &env,
    )
    .await
    .unwrap();
    let generated = o.out.trim().to_owned();
    assert!(generated.len() >= 20, "{generated:?}");
    assert!(o.err.contains("only once"));
    let o = cli(&s, &["user", "create", "dave"], "", &env)
        .await
        .unwrap();
    assert!(o.err.contains("no password"));

    let check = |name: &'static str, pw: String| {
        let s = s.clone();
        async move {
            let u = s.get_user(None, name).await.unwrap();
            password::verify(&pw, u.password_hash().unwrap())
        }
    };
    assert!(check("alice", "alice password".into()).await);
    assert!(check("bob", "bob password".into()).await);
    assert!(check("carol", generated).await);

    let e = cli(
        &s,
        &["user", "create", "eve", "--password-env", "UNSET"],
        "",
        &env,
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("UNSET"));
    let e = cli(
        &s,
        &["user", "create", "eve", "--password-stdin"],
        "short\n",
        &env,
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("too short") && !e.to_string().contains("short\n"));

    let o = cli(&s, &["user", "list"], "", &env).await.unwrap();
    assert!(o.out.contains("alice") && o.out.contains("team=ml"));
    assert!(
        o.out
            .lines()
            .any(|l| l.contains("dave") && l.contains("no-password"))
    );
    assert!(!o.out.contains("argon2"));
    let o = cli(&s, &["user", "list", "--json"], "", &env)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    assert!(!o.out.contains("argon2"));

    cli(
        &s,
        &["user", "set-password", "alice", "--password-stdin"],
        "new alice password\n",
        &env,
    )
    .await
    .unwrap();
    assert!(check("alice", "new alice password".into()).await);
    cli(&s, &["user", "set-password", "alice", "--remove"], "", &env)
        .await
        .unwrap();
    assert!(!s.get_user(None, "alice").await.unwrap().has_password());

    cli(&s, &["user", "disable", "bob"], "", &env)
        .await
        .unwrap();
    assert!(s.get_user(None, "bob").await.unwrap().disabled);
    cli(&s, &["user", "enable", "bob"], "", &env).await.unwrap();
    assert!(!s.get_user(None, "bob").await.unwrap().disabled);
    let o = cli(&s, &["user", "tag", "bob", "site=eu", "cost=42"], "", &env)
        .await
        .unwrap();
    assert!(o.out.contains("cost=42,site=eu"));
    cli(&s, &["user", "tag", "bob", "--remove", "cost"], "", &env)
        .await
        .unwrap();
    assert_eq!(s.get_user(None, "bob").await.unwrap().tags.len(), 1);
    cli(&s, &["user", "delete", "dave"], "", &env)
        .await
        .unwrap();
    assert!(s.get_user(None, "dave").await.is_err());
}

#[tokio::test]
async fn groups_policies_and_effective() {
    let (dir, s) = temp_store().await;
    let env = HashMap::new();
    for args in [
        vec!["user", "create", "alice"],
        vec!["group", "create", "readers"],
        vec!["group", "create", "approvers"],
        vec!["group", "add-member", "readers", "alice"],
        vec!["group", "add-member", "approvers", "alice"],
    ] {
        cli(&s, &args, "", &env).await.unwrap();
    }
    let good = dir.path().join("readers.json");
    std::fs::write(&good, ALLOW_ALL).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"NotValid","Effect":"Sometimes","Action":"*","Resource":"*"}]}"#,
    )
    .unwrap();
    let e = cli(
        &s,
        &["policy", "put", "bad", "-f", bad.to_str().unwrap()],
        "",
        &env,
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("NotValid"), "{e}");

    let p = good.to_str().unwrap();
    let o = cli(&s, &["policy", "put", "readers", "-f", p], "", &env)
        .await
        .unwrap();
    assert!(o.err.contains("created"));
    let o = cli(&s, &["policy", "put", "readers", "-f", p], "", &env)
        .await
        .unwrap();
    assert!(o.err.contains("unchanged"));
    cli(&s, &["policy", "put", "approvers", "-f", p], "", &env)
        .await
        .unwrap();
    cli(
        &s,
        &["policy", "attach", "readers", "--group", "readers"],
        "",
        &env,
    )
    .await
    .unwrap();
    cli(
        &s,
        &["policy", "attach", "approvers", "--group", "approvers"],
        "",
        &env,
    )
    .await
    .unwrap();

    let o = cli(&s, &["policy", "effective", "--user", "alice"], "", &env)
        .await
        .unwrap();
    assert!(
        o.out.contains("readers\tvia group 111111111111/readers"),
        "{}",
        o.out
    );
    assert!(
        o.out
            .contains("approvers\tvia group 111111111111/approvers"),
        "{}",
        o.out
    );

    let o = cli(&s, &["policy", "show", "readers"], "", &env)
        .await
        .unwrap();
    assert!(o.out.contains("\"Statement\""));
    assert!(o.err.contains("group 111111111111/readers"));
    let o = cli(&s, &["policy", "list"], "", &env).await.unwrap();
    assert!(o.out.contains("readers\tattachments=1"));
    let o = cli(&s, &["group", "list"], "", &env).await.unwrap();
    assert!(
        o.out
            .contains("readers\tmembers=[alice]\tpolicies=[readers]"),
        "{}",
        o.out
    );

    assert!(
        cli(&s, &["policy", "delete", "readers"], "", &env)
            .await
            .is_err()
    );
    cli(
        &s,
        &["policy", "detach", "readers", "--group", "readers"],
        "",
        &env,
    )
    .await
    .unwrap();
    cli(&s, &["policy", "delete", "readers"], "", &env)
        .await
        .unwrap();
    cli(
        &s,
        &["group", "remove-member", "approvers", "alice"],
        "",
        &env,
    )
    .await
    .unwrap();
    let o = cli(&s, &["policy", "effective", "--user", "alice"], "", &env)
        .await
        .unwrap();
    assert!(
        o.out.is_empty() && o.err.contains("denied"),
        "{}{}",
        o.out,
        o.err
    );
}

#[tokio::test]
async fn tokens_are_printed_once() {
    let (_d, s) = temp_store().await;
    let env = HashMap::new();
    cli(&s, &["user", "create", "alice"], "", &env)
        .await
        .unwrap();
    let o = cli(
        &s,
        &[
            "token",
            "create",
            "--user",
            "alice",
            "--name",
            "ci",
            "--expires-in",
            "30d",
        ],
        "",
        &env,
    )
    .await
    .unwrap();
    let tok = o.out.trim().to_owned();
    let (id, secret) = token::parse(&tok).expect("stdout is exactly the token");
    assert!(o.err.contains(id) && !o.err.contains(secret));

    let o = cli(&s, &["token", "list"], "", &env).await.unwrap();
    assert!(o.out.contains(id) && o.out.contains("active") && o.out.contains("ci"));
    assert!(!o.out.contains(secret));
    let o = cli(&s, &["token", "list", "--json"], "", &env)
        .await
        .unwrap();
    assert!(!o.out.contains(secret) && !o.out.contains(&token::sha256_hex(secret)));

    // Revoking by the whole token only uses (and prints) its id.
    let o = cli(&s, &["token", "revoke", &tok], "", &env).await.unwrap();
    assert!(o.err.contains("revoked") && !o.err.contains(secret));
    let o = cli(&s, &["token", "list", "--user", "alice"], "", &env)
        .await
        .unwrap();
    assert!(o.out.contains("revoked"));

    let o = cli(
        &s,
        &[
            "token",
            "create",
            "--user",
            "alice",
            "--expires-in",
            "never",
        ],
        "",
        &env,
    )
    .await
    .unwrap();
    assert!(o.err.contains("expires never"));
}

#[tokio::test]
async fn apply_file_twice() {
    let (dir, s) = temp_store().await;
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/admins.json"), ALLOW_ALL).unwrap();
    let file = dir.path().join("mlgate.toml");
    std::fs::write(
        &file,
        r#"
[[accounts]]
id = "222222222222"
name = "data-science"

[[policies]]
name = "admins"
file = "policies/admins.json"

[[policies]]
name = "readers"
document = '''
{"Version": "2012-10-17",
 "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "mlflow:Get*", "Resource": "*"}]}
'''

[[policies]]
name = "tabled"
[policies.document]
Version = "2012-10-17"
[[policies.document.Statement]]
Sid = "FromToml"
Effect = "Allow"
Action = ["mlflow:Search*"]
Resource = "*"

[[users]]
name = "mlflow-admin"
password_env = "ADMIN_PW"

[[users]]
name = "mlflow-reader"
password_env = "DEMO_PW"
tags = { team = "research" }

[[users]]
name = "scientist"
account = "data-science"

[[groups]]
name = "admins"
members = ["mlflow-admin"]
policies = ["admins"]

[[groups]]
name = "readers"
members = ["mlflow-reader"]
policies = ["readers", "tabled"]
"#,
    )
    .unwrap();
    let env = HashMap::from([("ADMIN_PW", "admin password"), ("DEMO_PW", "demo password")]);
    let f = file.to_str().unwrap();
    let o = cli(&s, &["apply", "-f", f, "--dry-run"], "", &env)
        .await
        .unwrap();
    assert!(o.out.contains("dry run"));
    assert!(s.list_users(None).await.unwrap().is_empty());

    let o = cli(&s, &["apply", "-f", f], "", &env).await.unwrap();
    assert!(
        o.out.ends_with("9 created, 0 updated, 0 unchanged\n"),
        "{}",
        o.out
    );
    let o = cli(&s, &["apply", "-f", f], "", &env).await.unwrap();
    assert!(
        o.out.ends_with("0 created, 0 updated, 9 unchanged\n"),
        "{}",
        o.out
    );
    assert!(!o.out.contains("admin password"));

    let tabled = s.get_policy("tabled").await.unwrap();
    assert!(tabled.document.contains("FromToml"));
    let reader = s.get_user(None, "mlflow-reader").await.unwrap();
    assert!(password::verify(
        "demo password",
        reader.password_hash().unwrap()
    ));

    // A missing env var names the variable, not a value.
    let e = cli(
        &s,
        &["apply", "-f", f],
        "",
        &HashMap::from([("ADMIN_PW", "x")]),
    )
    .await
    .err()
    .unwrap();
    let e = crate::error::error_chain(&e);
    assert!(e.contains("DEMO_PW"), "{e}");
}

#[test]
fn apply_file_errors_never_quote_the_line() {
    let env = |_: &str| None;
    let e = parse_plan(
        "[[users]]\nname = \"a\"\npassword = \"s3cret-value\" oops\n",
        Path::new("."),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 3"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = parse_plan("[[users]]\nnam = \"a\"\n", Path::new("."), &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nam"), "{e}");
    let e = parse_plan("[[policies]]\nname = \"p\"\n", Path::new("."), &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exactly one of `file` or `document`"), "{e}");
}

#[tokio::test]
async fn grants_in_a_file_are_the_cli_grants() {
    let env = |_: &str| None;
    let plan = parse_plan(
        "[[grants]]\ngroup = \"team-a\"\nlevel = \"edit\"\nprompts = \"team-a-*\"\n\n\
         [[grants]]\nuser = \"bob\"\naccount = \"222222222222\"\nlevel = \"PRODUCTION_MANAGER\"\nmodels = \"team-a-*\"\n",
        Path::new("."),
        &env,
    )
    .unwrap();
    let [prompts, models] = plan.grants.as_slice() else {
        panic!("two grants: {:?}", plan.grants)
    };
    let scope = grant::Scope::Prompts("team-a-*".into());
    assert_eq!(prompts.subject, crate::store::GrantSubject::Group);
    assert_eq!(prompts.name, "team-a");
    assert_eq!(
        prompts.policy.name,
        grant::policy_name(grant::Level::Edit, &scope)
    );
    let generated: serde_json::Value = serde_json::from_str(&prompts.policy.document).unwrap();
    assert_eq!(
        generated,
        grant::document(grant::Level::Edit, &scope).unwrap()
    );
    assert_eq!(models.account.as_deref(), Some("222222222222"));
    assert_eq!(
        models.policy.name,
        "grant.production-manager.models.team-a-@"
    );

    // The CLI writes the same policy under the same name.
    let (_d, s) = temp_store().await;
    s.create_group(None, "team-a").await.unwrap();
    let out = cli(
        &s,
        &[
            "grant",
            "--group",
            "team-a",
            "--level",
            "EDIT",
            "--prompts",
            "team-a-*",
        ],
        "",
        &HashMap::new(),
    )
    .await
    .unwrap();
    assert!(out.err.contains(&prompts.policy.name), "{}", out.err);
    let stored = s.get_policy(&prompts.policy.name).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored.document).unwrap();
    assert_eq!(stored, generated);

    for bad in [
        "[[grants]]\nlevel = \"READ\"\nmodels = \"a-*\"\n",
        "[[grants]]\nuser = \"u\"\ngroup = \"g\"\nlevel = \"READ\"\nmodels = \"a-*\"\n",
        "[[grants]]\nuser = \"u\"\nlevel = \"OWNER\"\nmodels = \"a-*\"\n",
        "[[grants]]\nuser = \"u\"\nlevel = \"READ\"\nmodels = \"a-*\"\nprompts = \"a-*\"\n",
        "[[grants]]\nuser = \"u\"\nlevel = \"STAGING_MANAGER\"\nprompts = \"a-*\"\n",
    ] {
        assert!(parse_plan(bad, Path::new("."), &env).is_err(), "{bad}");
    }
}
