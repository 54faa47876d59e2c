//! Accounts, users, groups, memberships and API tokens in the SQL both backends run.

use crate::store::error::StoreError;
use crate::store::error::StoreResult;
use crate::store::model::TokenRecord;
use std::collections::BTreeMap;

pub(crate) type UserRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    bool,
    i64,
    i64,
);

pub(crate) const USER_COLUMNS: &str =
    "id, account_id, name, password_hash, tags, disabled, created_at, updated_at";

pub(crate) fn tags_json(tags: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(tags).map_err(|e| StoreError::Invalid(e.to_string()))
}

pub(crate) type TokenRow = (
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

pub(crate) const TOKEN_SELECT: &str = "SELECT t.id, t.user_id, u.account_id, u.name, t.name, t.secret_sha256, \
     t.created_at, t.expires_at, t.revoked_at, t.last_used_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id";

pub(crate) fn token_from_row(r: TokenRow) -> TokenRecord {
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

/// Implements [`IdentityQueries`](crate::store::backend::IdentityQueries) for the connection type `$conn`, `$sql` turning each statement's
/// text (`?` placeholders) into its backend's.
macro_rules! identity_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use std::collections::BTreeMap;
            use $crate::store::backend::IdentityQueries;
            use $crate::store::error::StoreError;
            use $crate::store::error::StoreResult;
            use $crate::store::model::{AccountRecord, GroupRecord, TokenRecord, UserRecord};
            use $crate::store::sql::identities::*;

            async fn user_from_row(c: &mut $conn, row: UserRow) -> StoreResult<UserRecord> {
                let (id, account_id, name, password_hash, tags, disabled, created_at, updated_at) = row;
                let tags: BTreeMap<String, String> = serde_json::from_str(&tags).map_err(|e| {
                    StoreError::Invalid(format!("stored tags of user {name:?} are not valid: {e}"))
                })?;
                let groups: Vec<(String,)> = sqlx::query_as(
                    $sql("SELECT g.name FROM user_groups g JOIN memberships m ON m.group_id = g.id \
                     WHERE m.user_id = ? ORDER BY g.name"),
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
                c: &mut $conn,
                rows: Vec<UserRow>,
            ) -> StoreResult<Vec<UserRecord>> {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(user_from_row(c, r).await?);
                }
                Ok(out)
            }

            impl IdentityQueries for $conn {
                async fn account_name(&mut self, id: &str) -> StoreResult<Option<String>> {
                    let row: Option<(String,)> = sqlx::query_as($sql("SELECT name FROM accounts WHERE id = ?"))
                        .bind(id)
                        .fetch_optional(&mut *self)
                        .await?;
                    Ok(row.map(|r| r.0))
                }

                async fn account_id_named(&mut self, name: &str) -> StoreResult<Option<String>> {
                    let row: Option<(String,)> = sqlx::query_as($sql("SELECT id FROM accounts WHERE name = ?"))
                        .bind(name)
                        .fetch_optional(&mut *self)
                        .await?;
                    Ok(row.map(|r| r.0))
                }

                async fn rename_account(&mut self, id: &str, name: &str) -> StoreResult<bool> {
                    let r = sqlx::query($sql("UPDATE accounts SET name = ? WHERE id = ?"))
                        .bind(name)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn insert_account(&mut self, id: &str, name: &str, at: i64) -> StoreResult<()> {
                    sqlx::query($sql("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)"))
                        .bind(id)
                        .bind(name)
                        .bind(at)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn list_accounts(&mut self) -> StoreResult<Vec<AccountRecord>> {
                    let rows: Vec<(String, String, i64)> =
                        sqlx::query_as($sql("SELECT id, name, created_at FROM accounts ORDER BY id"))
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
                    let q = $sql(format!(
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
                    let q = $sql(format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"));
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
                    let q = $sql(format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE (? IS NULL OR account_id = ?) \
                         ORDER BY account_id, name"
                    ));
                    let rows: Vec<UserRow> = sqlx::query_as(q)
                        .bind(account)
                        .bind(account)
                        .fetch_all(&mut *self)
                        .await?;
                    users_from_rows(self, rows).await
                }

                async fn user_id(&mut self, account: &str, name: &str) -> StoreResult<Option<String>> {
                    let row: Option<(String,)> =
                        sqlx::query_as($sql("SELECT id FROM users WHERE account_id = ? AND name = ?"))
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
                        $sql("INSERT INTO users (id, account_id, name, password_hash, tags, disabled, created_at, updated_at) \
                         VALUES (?, ?, ?, ?, ?, FALSE, ?, ?)"),
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
                    sqlx::query($sql("DELETE FROM users WHERE id = ?"))
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn set_password(&mut self, id: &str, hash: Option<&str>, at: i64) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?"))
                        .bind(hash)
                        .bind(at)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn replace_password_hash(
                    &mut self,
                    id: &str,
                    old: &str,
                    new: &str,
                    at: i64,
                ) -> StoreResult<bool> {
                    let done = sqlx::query($sql(
                        "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?",
                    ))
                    .bind(new)
                    .bind(at)
                    .bind(id)
                    .bind(old)
                    .execute(&mut *self)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn set_disabled(&mut self, id: &str, disabled: bool, at: i64) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?"))
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
                    sqlx::query($sql("UPDATE users SET tags = ?, updated_at = ? WHERE id = ?"))
                        .bind(tags_json(tags)?)
                        .bind(at)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn group_id(&mut self, account: &str, name: &str) -> StoreResult<Option<String>> {
                    let row: Option<(String,)> =
                        sqlx::query_as($sql("SELECT id FROM user_groups WHERE account_id = ? AND name = ?"))
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
                        $sql("INSERT INTO user_groups (id, account_id, name, created_at) VALUES (?, ?, ?, ?)"),
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
                        $sql("SELECT u.name FROM users u JOIN memberships m ON m.user_id = u.id \
                         WHERE m.group_id = ? ORDER BY u.name"),
                    )
                    .bind(group_id)
                    .fetch_all(&mut *self)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                }

                async fn list_groups(&mut self, account: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
                    use crate::store::backend::PolicyQueries;
                    let rows: Vec<(String, String, String, i64)> = sqlx::query_as($sql(
                        "SELECT id, account_id, name, created_at FROM user_groups \
                         WHERE (? IS NULL OR account_id = ?) ORDER BY account_id, name",
                    ))
                    .bind(account)
                    .bind(account)
                    .fetch_all(&mut *self)
                    .await?;
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
                    sqlx::query($sql("DELETE FROM user_groups WHERE id = ?"))
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn add_member(&mut self, group_id: &str, user_id: &str) -> StoreResult<bool> {
                    let r = sqlx::query(
                        $sql("INSERT INTO memberships (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
                    )
                    .bind(group_id)
                    .bind(user_id)
                    .execute(&mut *self)
                    .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn remove_member(&mut self, group_id: &str, user_id: &str) -> StoreResult<bool> {
                    let r = sqlx::query($sql("DELETE FROM memberships WHERE group_id = ? AND user_id = ?"))
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
                        $sql("INSERT INTO api_tokens (id, user_id, name, secret_sha256, created_at, expires_at) \
                         VALUES (?, ?, ?, ?, ?, ?)"),
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
                    let q = $sql(format!("{TOKEN_SELECT} WHERE t.id = ?"));
                    let row: Option<TokenRow> = sqlx::query_as(q)
                        .bind(id)
                        .fetch_optional(&mut *self)
                        .await?;
                    Ok(row.map(token_from_row))
                }

                async fn list_tokens(&mut self, user_id: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
                    let q = $sql(format!(
                        "{TOKEN_SELECT} WHERE (? IS NULL OR t.user_id = ?) \
                         ORDER BY t.created_at DESC, t.id"
                    ));
                    let rows: Vec<TokenRow> = sqlx::query_as(q)
                        .bind(user_id)
                        .bind(user_id)
                        .fetch_all(&mut *self)
                        .await?;
                    Ok(rows.into_iter().map(token_from_row).collect())
                }

                async fn revoke_token(&mut self, id: &str, at: i64) -> StoreResult<bool> {
                    let r =
                        sqlx::query($sql("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"))
                            .bind(at)
                            .bind(id)
                            .execute(&mut *self)
                            .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn touch_token(&mut self, id: &str, at: i64) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE api_tokens SET last_used_at = ? WHERE id = ?"))
                        .bind(at)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use identity_queries;
