//! Accounts, users, groups, memberships and API tokens in SQLite.

use std::collections::BTreeMap;

use sqlx::SqliteConnection;

use crate::store::backend::IdentityQueries;
use crate::store::error::StoreError;
use crate::store::error::StoreResult;
use crate::store::model::{AccountRecord, GroupRecord, TokenRecord, UserRecord};

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

fn tags_json(tags: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(tags).map_err(|e| StoreError::Invalid(e.to_string()))
}

async fn user_from_row(c: &mut SqliteConnection, row: UserRow) -> StoreResult<UserRecord> {
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

async fn users_from_rows(
    c: &mut SqliteConnection,
    rows: Vec<UserRow>,
) -> StoreResult<Vec<UserRecord>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(user_from_row(c, r).await?);
    }
    Ok(out)
}

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

impl IdentityQueries for SqliteConnection {
    async fn account_name(&mut self, id: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT name FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn account_id_named(&mut self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM accounts WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *self)
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn rename_account(&mut self, id: &str, name: &str) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE accounts SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_account(&mut self, id: &str, name: &str, at: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(at)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn list_accounts(&mut self) -> StoreResult<Vec<AccountRecord>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM accounts ORDER BY id")
                .fetch_all(&mut *self)
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

    async fn user_by_name(&mut self, account: &str, name: &str) -> StoreResult<Option<UserRecord>> {
        let q = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE account_id = ? AND name = ?"
        ));
        let row: Option<UserRow> = sqlx::query_as(q)
            .bind(account)
            .bind(name)
            .fetch_optional(&mut *self)
            .await?;
        match row {
            Some(r) => Ok(Some(user_from_row(self, r).await?)),
            None => Ok(None),
        }
    }

    async fn user_by_id(&mut self, id: &str) -> StoreResult<Option<UserRecord>> {
        let q = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"));
        let row: Option<UserRow> = sqlx::query_as(q)
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        match row {
            Some(r) => Ok(Some(user_from_row(self, r).await?)),
            None => Ok(None),
        }
    }

    async fn list_users(&mut self, account: Option<&str>) -> StoreResult<Vec<UserRecord>> {
        let rows: Vec<UserRow> = match account {
            Some(a) => {
                let q = sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE account_id = ? ORDER BY account_id, name"
                ));
                sqlx::query_as(q).bind(a).fetch_all(&mut *self).await?
            }
            None => {
                let q = sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY account_id, name"
                ));
                sqlx::query_as(q).fetch_all(&mut *self).await?
            }
        };
        users_from_rows(self, rows).await
    }

    async fn user_id(&mut self, account: &str, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id FROM users WHERE account_id = ? AND name = ?")
                .bind(account)
                .bind(name)
                .fetch_optional(&mut *self)
                .await?;
        Ok(row.map(|r| r.0))
    }

    async fn insert_user(
        &mut self,
        id: &str,
        account: &str,
        name: &str,
        password_hash: Option<&str>,
        tags: &BTreeMap<String, String>,
        at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, account_id, name, password_hash, tags, disabled, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, FALSE, ?, ?)",
        )
        .bind(id)
        .bind(account)
        .bind(name)
        .bind(password_hash)
        .bind(tags_json(tags)?)
        .bind(at)
        .bind(at)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn delete_user(&mut self, id: &str) -> StoreResult<()> {
        // Dependants go by ON DELETE CASCADE.
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn set_password(&mut self, id: &str, hash: Option<&str>, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(at)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn set_disabled(&mut self, id: &str, disabled: bool, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
            .bind(disabled)
            .bind(at)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn set_tags(
        &mut self,
        id: &str,
        tags: &BTreeMap<String, String>,
        at: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE users SET tags = ?, updated_at = ? WHERE id = ?")
            .bind(tags_json(tags)?)
            .bind(at)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn group_id(&mut self, account: &str, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id FROM user_groups WHERE account_id = ? AND name = ?")
                .bind(account)
                .bind(name)
                .fetch_optional(&mut *self)
                .await?;
        Ok(row.map(|r| r.0))
    }

    async fn insert_group(
        &mut self,
        id: &str,
        account: &str,
        name: &str,
        at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO user_groups (id, account_id, name, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(account)
        .bind(name)
        .bind(at)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn group_members(&mut self, group_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT u.name FROM users u JOIN memberships m ON m.user_id = u.id \
             WHERE m.group_id = ? ORDER BY u.name",
        )
        .bind(group_id)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn list_groups(&mut self, account: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
        use crate::store::backend::PolicyQueries;
        let rows: Vec<(String, String, String, i64)> = match account {
            Some(a) => {
                sqlx::query_as(
                    "SELECT id, account_id, name, created_at FROM user_groups \
                     WHERE account_id = ? ORDER BY account_id, name",
                )
                .bind(a)
                .fetch_all(&mut *self)
                .await?
            }
            None => sqlx::query_as(
                "SELECT id, account_id, name, created_at FROM user_groups ORDER BY account_id, name",
            )
            .fetch_all(&mut *self)
            .await?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, account_id, name, created_at) in rows {
            let members = self.group_members(&id).await?;
            let policies = self.group_policy_names(&id).await?;
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

    async fn delete_group(&mut self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM user_groups WHERE id = ?")
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn add_member(&mut self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO memberships (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *self)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn remove_member(&mut self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM memberships WHERE group_id = ? AND user_id = ?")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_token(
        &mut self,
        id: &str,
        user_id: &str,
        name: &str,
        secret_sha256: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, secret_sha256, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(user_id)
        .bind(name)
        .bind(secret_sha256)
        .bind(at)
        .bind(expires_at)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn token(&mut self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let q = sqlx::AssertSqlSafe(format!("{TOKEN_SELECT} WHERE t.id = ?"));
        let row: Option<TokenRow> = sqlx::query_as(q)
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        Ok(row.map(token_from_row))
    }

    async fn list_tokens(&mut self, user_id: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
        let rows: Vec<TokenRow> = match user_id {
            Some(u) => {
                let q = sqlx::AssertSqlSafe(format!(
                    "{TOKEN_SELECT} WHERE t.user_id = ? ORDER BY t.created_at DESC, t.id"
                ));
                sqlx::query_as(q).bind(u).fetch_all(&mut *self).await?
            }
            None => {
                let q =
                    sqlx::AssertSqlSafe(format!("{TOKEN_SELECT} ORDER BY t.created_at DESC, t.id"));
                sqlx::query_as(q).fetch_all(&mut *self).await?
            }
        };
        Ok(rows.into_iter().map(token_from_row).collect())
    }

    async fn revoke_token(&mut self, id: &str, at: i64) -> StoreResult<bool> {
        let r =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *self)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn touch_token(&mut self, id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
