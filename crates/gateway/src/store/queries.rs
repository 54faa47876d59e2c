//! The SQL, one function per statement group, on a connection (or a transaction) so that the
//! single-operation methods of [`super::Store`] and the declarative apply share it. Portable SQL
//! only; the `?` placeholders are the one SQLite-ism (a PostgreSQL port writes them `$n`).

use std::collections::BTreeMap;

use sqlx::SqliteConnection;

use super::apply::Change;
use super::model::{
    AccountRecord, GroupRecord, PolicyRecord, PolicySource, SessionRecord, TokenRecord, UserRecord,
};
use super::validate::{
    validate_account_id, validate_account_name, validate_group_name, validate_policy_name,
    validate_tag, validate_user_name,
};
use super::{StoreError, StoreResult, new_id, now};

type Conn = SqliteConnection;

fn not_found(kind: &'static str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

// ----- accounts ---------------------------------------------------------------------------

pub async fn resolve_account(
    c: &mut Conn,
    account: Option<&str>,
    default: &str,
) -> StoreResult<String> {
    let Some(a) = account else {
        return Ok(default.to_owned());
    };
    let row: Option<(String,)> = if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
        sqlx::query_as("SELECT id FROM accounts WHERE id = ?")
            .bind(a)
            .fetch_optional(&mut *c)
            .await?
    } else {
        sqlx::query_as("SELECT id FROM accounts WHERE name = ?")
            .bind(a)
            .fetch_optional(&mut *c)
            .await?
    };
    row.map(|r| r.0).ok_or_else(|| not_found("account", a))
}

pub async fn ensure_account(c: &mut Conn, id: &str, name: &str) -> StoreResult<Change> {
    validate_account_id(id)?;
    validate_account_name(name)?;
    let by_id: Option<(String,)> = sqlx::query_as("SELECT name FROM accounts WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    // Renaming an account is allowed as long as the new name is free.
    if let Some((existing,)) = &by_id
        && existing == name
    {
        return Ok(Change::Unchanged);
    }
    let by_name: Option<(String,)> = sqlx::query_as("SELECT id FROM accounts WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    if let Some((other,)) = by_name
        && other != id
    {
        return Err(StoreError::Conflict(format!(
            "account name {name:?} is already used by account {other}"
        )));
    }
    let r = sqlx::query("UPDATE accounts SET name = ? WHERE id = ?")
        .bind(name)
        .bind(id)
        .execute(&mut *c)
        .await?;
    if r.rows_affected() > 0 {
        return Ok(Change::Updated);
    }
    sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)")
        .bind(id)
        .bind(name)
        .bind(now())
        .execute(&mut *c)
        .await?;
    Ok(Change::Created)
}

pub async fn list_accounts(c: &mut Conn) -> StoreResult<Vec<AccountRecord>> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id, name, created_at FROM accounts ORDER BY id")
            .fetch_all(&mut *c)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at)| AccountRecord {
            id,
            name,
            created_at,
        })
        .collect())
}

// ----- users ------------------------------------------------------------------------------

type UserRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    bool,
    i64,
    i64,
);

const USER_COLUMNS: &str =
    "id, account_id, name, password_hash, tags, disabled, created_at, updated_at";

async fn user_from_row(c: &mut Conn, row: UserRow) -> StoreResult<UserRecord> {
    let (id, account_id, name, password_hash, tags, disabled, created_at, updated_at) = row;
    let tags: BTreeMap<String, String> = serde_json::from_str(&tags).map_err(|e| {
        StoreError::Invalid(format!("stored tags of user {name:?} are not valid: {e}"))
    })?;
    let groups: Vec<(String,)> = sqlx::query_as(
        "SELECT g.name FROM user_groups g JOIN memberships m ON m.group_id = g.id \
         WHERE m.user_id = ? ORDER BY g.name",
    )
    .bind(&id)
    .fetch_all(&mut *c)
    .await?;
    Ok(UserRecord {
        id,
        account_id,
        name,
        password_hash,
        tags,
        disabled,
        groups: groups.into_iter().map(|g| g.0).collect(),
        created_at,
        updated_at,
    })
}

pub async fn load_user_by_name(
    c: &mut Conn,
    acct: &str,
    name: &str,
) -> StoreResult<Option<UserRecord>> {
    let q = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE account_id = ? AND name = ?"
    ));
    let row: Option<UserRow> = sqlx::query_as(q)
        .bind(acct)
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    match row {
        Some(r) => Ok(Some(user_from_row(c, r).await?)),
        None => Ok(None),
    }
}

pub async fn load_user_by_id(c: &mut Conn, id: &str) -> StoreResult<Option<UserRecord>> {
    let q = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"));
    let row: Option<UserRow> = sqlx::query_as(q).bind(id).fetch_optional(&mut *c).await?;
    match row {
        Some(r) => Ok(Some(user_from_row(c, r).await?)),
        None => Ok(None),
    }
}

pub async fn list_users(c: &mut Conn, acct: Option<&str>) -> StoreResult<Vec<UserRecord>> {
    let rows: Vec<UserRow> = match acct {
        Some(a) => {
            let q = sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE account_id = ? ORDER BY account_id, name"
            ));
            sqlx::query_as(q).bind(a).fetch_all(&mut *c).await?
        }
        None => {
            let q = sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY account_id, name"
            ));
            sqlx::query_as(q).fetch_all(&mut *c).await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(user_from_row(c, r).await?);
    }
    Ok(out)
}

pub async fn find_user_id(c: &mut Conn, acct: &str, name: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE account_id = ? AND name = ?")
            .bind(acct)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map(|r| r.0))
}

pub async fn user_id(c: &mut Conn, acct: &str, name: &str) -> StoreResult<String> {
    find_user_id(c, acct, name)
        .await?
        .ok_or_else(|| not_found("user", name))
}

fn tags_json(tags: &BTreeMap<String, String>) -> StoreResult<String> {
    for (k, v) in tags {
        validate_tag(k, v)?;
    }
    serde_json::to_string(tags).map_err(|e| StoreError::Invalid(e.to_string()))
}

pub async fn create_user(
    c: &mut Conn,
    acct: &str,
    name: &str,
    password_hash: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> StoreResult<String> {
    validate_user_name(name)?;
    let tags = tags_json(tags)?;
    if find_user_id(c, acct, name).await?.is_some() {
        return Err(StoreError::AlreadyExists {
            kind: "user",
            name: name.to_owned(),
        });
    }
    let id = new_id();
    let t = now();
    sqlx::query(
        "INSERT INTO users (id, account_id, name, password_hash, tags, disabled, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, FALSE, ?, ?)",
    )
    .bind(&id)
    .bind(acct)
    .bind(name)
    .bind(password_hash)
    .bind(tags)
    .bind(t)
    .bind(t)
    .execute(&mut *c)
    .await?;
    Ok(id)
}

pub async fn delete_user(c: &mut Conn, uid: &str) -> StoreResult<()> {
    // Dependants (memberships, attachments, tokens, sessions) go by ON DELETE CASCADE.
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(uid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn set_password(c: &mut Conn, uid: &str, hash: Option<&str>) -> StoreResult<()> {
    sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
        .bind(hash)
        .bind(now())
        .bind(uid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn set_disabled(c: &mut Conn, uid: &str, disabled: bool) -> StoreResult<()> {
    sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
        .bind(disabled)
        .bind(now())
        .bind(uid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn set_tags(c: &mut Conn, uid: &str, tags: &BTreeMap<String, String>) -> StoreResult<()> {
    let tags = tags_json(tags)?;
    sqlx::query("UPDATE users SET tags = ?, updated_at = ? WHERE id = ?")
        .bind(tags)
        .bind(now())
        .bind(uid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn delete_user_sessions(c: &mut Conn, uid: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(uid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

// ----- groups -----------------------------------------------------------------------------

pub async fn find_group_id(c: &mut Conn, acct: &str, name: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM user_groups WHERE account_id = ? AND name = ?")
            .bind(acct)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map(|r| r.0))
}

pub async fn group_id(c: &mut Conn, acct: &str, name: &str) -> StoreResult<String> {
    find_group_id(c, acct, name)
        .await?
        .ok_or_else(|| not_found("group", name))
}

pub async fn create_group(c: &mut Conn, acct: &str, name: &str) -> StoreResult<String> {
    validate_group_name(name)?;
    if find_group_id(c, acct, name).await?.is_some() {
        return Err(StoreError::AlreadyExists {
            kind: "group",
            name: name.to_owned(),
        });
    }
    let id = new_id();
    sqlx::query("INSERT INTO user_groups (id, account_id, name, created_at) VALUES (?, ?, ?, ?)")
        .bind(&id)
        .bind(acct)
        .bind(name)
        .bind(now())
        .execute(&mut *c)
        .await?;
    Ok(id)
}

pub async fn group_members(c: &mut Conn, gid: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT u.name FROM users u JOIN memberships m ON m.user_id = u.id \
         WHERE m.group_id = ? ORDER BY u.name",
    )
    .bind(gid)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn group_policies(c: &mut Conn, gid: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT p.name FROM policies p JOIN attachments a ON a.policy_id = p.id \
         WHERE a.group_id = ? ORDER BY p.name",
    )
    .bind(gid)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn user_policies(c: &mut Conn, uid: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT p.name FROM policies p JOIN attachments a ON a.policy_id = p.id \
         WHERE a.user_id = ? ORDER BY p.name",
    )
    .bind(uid)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn list_groups(c: &mut Conn, acct: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
    let rows: Vec<(String, String, String, i64)> = match acct {
        Some(a) => {
            sqlx::query_as(
                "SELECT id, account_id, name, created_at FROM user_groups \
                 WHERE account_id = ? ORDER BY account_id, name",
            )
            .bind(a)
            .fetch_all(&mut *c)
            .await?
        }
        None => sqlx::query_as(
            "SELECT id, account_id, name, created_at FROM user_groups ORDER BY account_id, name",
        )
        .fetch_all(&mut *c)
        .await?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for (id, account_id, name, created_at) in rows {
        let members = group_members(c, &id).await?;
        let policies = group_policies(c, &id).await?;
        out.push(GroupRecord {
            id,
            account_id,
            name,
            members,
            policies,
            created_at,
        });
    }
    Ok(out)
}

pub async fn delete_group(c: &mut Conn, gid: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM user_groups WHERE id = ?")
        .bind(gid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn add_member(c: &mut Conn, gid: &str, uid: &str) -> StoreResult<bool> {
    let r = sqlx::query(
        "INSERT INTO memberships (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(gid)
    .bind(uid)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn remove_member(c: &mut Conn, gid: &str, uid: &str) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM memberships WHERE group_id = ? AND user_id = ?")
        .bind(gid)
        .bind(uid)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() > 0)
}

// ----- policies ---------------------------------------------------------------------------

pub async fn find_policy(c: &mut Conn, name: &str) -> StoreResult<Option<(String, String)>> {
    Ok(
        sqlx::query_as("SELECT id, document FROM policies WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *c)
            .await?,
    )
}

pub async fn policy_id(c: &mut Conn, name: &str) -> StoreResult<String> {
    find_policy(c, name)
        .await?
        .map(|r| r.0)
        .ok_or_else(|| not_found("policy", name))
}

/// Two documents are the same when they are the same JSON value (formatting is ignored).
pub fn same_document(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Creates or replaces a policy document (the caller has validated it).
pub async fn put_policy(c: &mut Conn, name: &str, document: &str) -> StoreResult<Change> {
    validate_policy_name(name)?;
    let t = now();
    match find_policy(c, name).await? {
        Some((_, existing)) if same_document(&existing, document) => Ok(Change::Unchanged),
        Some((id, _)) => {
            sqlx::query("UPDATE policies SET document = ?, updated_at = ? WHERE id = ?")
                .bind(document)
                .bind(t)
                .bind(id)
                .execute(&mut *c)
                .await?;
            Ok(Change::Updated)
        }
        None => {
            sqlx::query(
                "INSERT INTO policies (id, name, document, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(new_id())
            .bind(name)
            .bind(document)
            .bind(t)
            .bind(t)
            .execute(&mut *c)
            .await?;
            Ok(Change::Created)
        }
    }
}

type PolicyRow = (String, String, String, i64, i64, i64);

const POLICY_SELECT: &str = "SELECT p.id, p.name, p.document, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM attachments a WHERE a.policy_id = p.id) FROM policies p";

fn policy_from_row(r: PolicyRow) -> PolicyRecord {
    let (id, name, document, created_at, updated_at, attachment_count) = r;
    PolicyRecord {
        id,
        name,
        document,
        created_at,
        updated_at,
        attachment_count,
    }
}

pub async fn get_policy(c: &mut Conn, name: &str) -> StoreResult<PolicyRecord> {
    let q = sqlx::AssertSqlSafe(format!("{POLICY_SELECT} WHERE p.name = ?"));
    let row: Option<PolicyRow> = sqlx::query_as(q).bind(name).fetch_optional(&mut *c).await?;
    row.map(policy_from_row)
        .ok_or_else(|| not_found("policy", name))
}

pub async fn list_policies(c: &mut Conn) -> StoreResult<Vec<PolicyRecord>> {
    let q = sqlx::AssertSqlSafe(format!("{POLICY_SELECT} ORDER BY p.name"));
    let rows: Vec<PolicyRow> = sqlx::query_as(q).fetch_all(&mut *c).await?;
    Ok(rows.into_iter().map(policy_from_row).collect())
}

pub async fn delete_policy(c: &mut Conn, name: &str, force: bool) -> StoreResult<()> {
    let pid = policy_id(c, name).await?;
    if !force {
        let used = policy_attachments(c, &pid).await?;
        // Roles (issue 3) hold policies too.
        let roles = super::keys::roles_with_policy(c, &pid).await?;
        if !used.is_empty() || !roles.is_empty() {
            let mut list: Vec<String> = used.iter().map(ToString::to_string).collect();
            list.extend(roles);
            return Err(StoreError::Conflict(format!(
                "policy {name:?} is attached to {}; detach it first or delete with --force",
                list.join(", ")
            )));
        }
    }
    sqlx::query("DELETE FROM policies WHERE id = ?")
        .bind(pid)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn attach(
    c: &mut Conn,
    pid: &str,
    uid: Option<&str>,
    gid: Option<&str>,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "INSERT INTO attachments (policy_id, user_id, group_id) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(pid)
    .bind(uid)
    .bind(gid)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn detach(
    c: &mut Conn,
    pid: &str,
    uid: Option<&str>,
    gid: Option<&str>,
) -> StoreResult<bool> {
    let r = match (uid, gid) {
        (Some(u), _) => {
            sqlx::query("DELETE FROM attachments WHERE policy_id = ? AND user_id = ?")
                .bind(pid)
                .bind(u)
                .execute(&mut *c)
                .await?
        }
        (None, Some(g)) => {
            sqlx::query("DELETE FROM attachments WHERE policy_id = ? AND group_id = ?")
                .bind(pid)
                .bind(g)
                .execute(&mut *c)
                .await?
        }
        (None, None) => return Ok(false),
    };
    Ok(r.rows_affected() > 0)
}

pub async fn policy_attachments(c: &mut Conn, pid: &str) -> StoreResult<Vec<PolicySource>> {
    let users: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.account_id, u.name FROM users u JOIN attachments a ON a.user_id = u.id \
         WHERE a.policy_id = ? ORDER BY u.account_id, u.name",
    )
    .bind(pid)
    .fetch_all(&mut *c)
    .await?;
    let groups: Vec<(String, String)> = sqlx::query_as(
        "SELECT g.account_id, g.name FROM user_groups g JOIN attachments a ON a.group_id = g.id \
         WHERE a.policy_id = ? ORDER BY g.account_id, g.name",
    )
    .bind(pid)
    .fetch_all(&mut *c)
    .await?;
    Ok(users
        .into_iter()
        .map(|(account_id, name)| PolicySource::User { account_id, name })
        .chain(
            groups
                .into_iter()
                .map(|(account_id, name)| PolicySource::Group { account_id, name }),
        )
        .collect())
}

/// The documents of every policy attached to the user or to any of its groups, each once.
pub async fn effective_documents(c: &mut Conn, uid: &str) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT p.name, p.document FROM policies p JOIN attachments a ON a.policy_id = p.id \
         WHERE a.user_id = ? \
         UNION \
         SELECT p.name, p.document FROM policies p JOIN attachments a ON a.policy_id = p.id \
         JOIN memberships m ON m.group_id = a.group_id WHERE m.user_id = ? \
         ORDER BY 1",
    )
    .bind(uid)
    .bind(uid)
    .fetch_all(&mut *c)
    .await?)
}

pub async fn effective_policy_sources(
    c: &mut Conn,
    uid: &str,
) -> StoreResult<Vec<(String, Vec<PolicySource>)>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT p.name, 'user', u.account_id, u.name FROM policies p \
         JOIN attachments a ON a.policy_id = p.id JOIN users u ON u.id = a.user_id \
         WHERE a.user_id = ? \
         UNION ALL \
         SELECT p.name, 'group', g.account_id, g.name FROM policies p \
         JOIN attachments a ON a.policy_id = p.id JOIN user_groups g ON g.id = a.group_id \
         JOIN memberships m ON m.group_id = g.id WHERE m.user_id = ? \
         ORDER BY 1, 2, 4",
    )
    .bind(uid)
    .bind(uid)
    .fetch_all(&mut *c)
    .await?;
    let mut out: Vec<(String, Vec<PolicySource>)> = Vec::new();
    for (policy, kind, account_id, name) in rows {
        let src = if kind == "user" {
            PolicySource::User { account_id, name }
        } else {
            PolicySource::Group { account_id, name }
        };
        match out.last_mut() {
            Some((p, v)) if *p == policy => v.push(src),
            _ => out.push((policy, vec![src])),
        }
    }
    Ok(out)
}

// ----- tokens -----------------------------------------------------------------------------

type TokenRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

const TOKEN_SELECT: &str = "SELECT t.id, t.user_id, u.account_id, u.name, t.name, t.secret_sha256, \
     t.created_at, t.expires_at, t.revoked_at, t.last_used_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id";

fn token_from_row(r: TokenRow) -> TokenRecord {
    let (
        id,
        user_id,
        account_id,
        user_name,
        name,
        secret_sha256,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
    ) = r;
    TokenRecord {
        id,
        user_id,
        account_id,
        user_name,
        name,
        secret_sha256,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
    }
}

pub async fn insert_token(
    c: &mut Conn,
    id: &str,
    uid: &str,
    name: &str,
    digest: &str,
    expires_at: Option<i64>,
) -> StoreResult<()> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "token name must be 1 to 128 characters without control characters".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, secret_sha256, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(uid)
    .bind(name)
    .bind(digest)
    .bind(now())
    .bind(expires_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn load_token(c: &mut Conn, id: &str) -> StoreResult<Option<TokenRecord>> {
    let q = sqlx::AssertSqlSafe(format!("{TOKEN_SELECT} WHERE t.id = ?"));
    let row: Option<TokenRow> = sqlx::query_as(q).bind(id).fetch_optional(&mut *c).await?;
    Ok(row.map(token_from_row))
}

pub async fn list_tokens(c: &mut Conn, uid: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
    let rows: Vec<TokenRow> = match uid {
        Some(u) => {
            let q = sqlx::AssertSqlSafe(format!(
                "{TOKEN_SELECT} WHERE t.user_id = ? ORDER BY t.created_at DESC, t.id"
            ));
            sqlx::query_as(q).bind(u).fetch_all(&mut *c).await?
        }
        None => {
            let q = sqlx::AssertSqlSafe(format!("{TOKEN_SELECT} ORDER BY t.created_at DESC, t.id"));
            sqlx::query_as(q).fetch_all(&mut *c).await?
        }
    };
    Ok(rows.into_iter().map(token_from_row).collect())
}

pub async fn revoke_token(c: &mut Conn, id: &str) -> StoreResult<bool> {
    if load_token(c, id).await?.is_none() {
        return Err(not_found("token", id));
    }
    let r = sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now())
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() > 0)
}

// ----- sessions ---------------------------------------------------------------------------

pub async fn load_session(c: &mut Conn, hash: &str) -> StoreResult<Option<SessionRecord>> {
    let row: Option<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT user_id, created_at, expires_at, last_seen_at FROM sessions WHERE id_sha256 = ?",
    )
    .bind(hash)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(
        |(user_id, created_at, expires_at, last_seen_at)| SessionRecord {
            user_id,
            created_at,
            expires_at,
            last_seen_at,
        },
    ))
}
