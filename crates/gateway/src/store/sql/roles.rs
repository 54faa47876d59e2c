//! Roles, SigV4 access keys and STS sessions in the SQL both backends run.

use crate::store::model::{AccessKeyRecord, KeyOwner};
pub(crate) type RoleRow = (String, String, String, String, i64, String, i64);

pub(crate) const ROLE_COLUMNS: &str =
    "id, account_id, name, trust_policy, max_session_duration, description, created_at";

pub(crate) type KeyRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    bool,
    i64,
    Option<i64>,
    String,
    String,
);

pub(crate) const KEY_SELECT: &str = "SELECT k.id, k.user_id, k.role_id, k.secret_enc, k.active, k.created_at, \
     k.last_used_at, COALESCE(u.account_id, r.account_id), COALESCE(u.name, r.name) \
     FROM access_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN roles r ON r.id = k.role_id";

pub(crate) fn key_from_row(r: KeyRow) -> AccessKeyRecord {
    let (owner, owner_id) = match (r.1, r.2) {
        (Some(uid), _) => (
            KeyOwner::User {
                account_id: r.7,
                name: r.8,
            },
            uid,
        ),
        (None, rid) => (
            KeyOwner::Role {
                account_id: r.7,
                name: r.8,
            },
            rid.unwrap_or_default(),
        ),
    };
    AccessKeyRecord {
        id: r.0,
        owner,
        owner_id,
        active: r.4,
        created_at: r.5,
        last_used_at: r.6,
        secret_enc: r.3,
    }
}

pub(crate) type StsRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

/// Implements [`RoleQueries`](crate::store::backend::RoleQueries) for the connection type `$conn`, `$sql` turning each statement's
/// text (`?` placeholders) into its backend's.
macro_rules! role_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use $crate::store::backend::RoleQueries;
            use $crate::store::error::{StoreError, StoreResult};
            use $crate::store::model::{
                AccessKeyRecord, KeyOwnerId, NewStsSession, RoleRecord, StsSessionRecord,
            };
            use $crate::store::sql::roles::*;

            async fn roles_from_rows(
                c: &mut $conn,
                rows: Vec<RoleRow>,
            ) -> StoreResult<Vec<RoleRecord>> {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let policies: Vec<(String,)> = sqlx::query_as(
                        $sql("SELECT p.name FROM policies p JOIN role_attachments a ON a.policy_id = p.id \
                         WHERE a.role_id = ? ORDER BY p.name"),
                    )
                    .bind(&r.0)
                    .fetch_all(&mut *c)
                    .await?;
                    out.push(RoleRecord {
                        id: r.0,
                        account_id: r.1,
                        name: r.2,
                        trust_policy: r.3,
                        max_session_duration: r.4,
                        description: r.5,
                        policies: policies.into_iter().map(|p| p.0).collect(),
                        created_at: r.6,
                    });
                }
                Ok(out)
            }

            impl RoleQueries for $conn {
                async fn role(&mut self, account: &str, name: &str) -> StoreResult<Option<RoleRecord>> {
                    let q = $sql(format!(
                        "SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = ? AND name = ?"
                    ));
                    let rows: Vec<RoleRow> = sqlx::query_as(q)
                        .bind(account)
                        .bind(name)
                        .fetch_all(&mut *self)
                        .await?;
                    Ok(roles_from_rows(self, rows).await?.pop())
                }

                async fn list_roles(&mut self, account: Option<&str>) -> StoreResult<Vec<RoleRecord>> {
                    let q = $sql(format!(
                        "SELECT {ROLE_COLUMNS} FROM roles WHERE (? IS NULL OR account_id = ?) \
                         ORDER BY account_id, name"
                    ));
                    let rows: Vec<RoleRow> = sqlx::query_as(q)
                        .bind(account)
                        .bind(account)
                        .fetch_all(&mut *self)
                        .await?;
                    roles_from_rows(self, rows).await
                }

                async fn insert_role(&mut self, role: &RoleRecord, at: i64) -> StoreResult<()> {
                    sqlx::query(
                        $sql("INSERT INTO roles (id, account_id, name, trust_policy, max_session_duration, \
                         description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                    )
                    .bind(&role.id)
                    .bind(&role.account_id)
                    .bind(&role.name)
                    .bind(&role.trust_policy)
                    .bind(role.max_session_duration)
                    .bind(&role.description)
                    .bind(at)
                    .bind(at)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn update_role(&mut self, role: &RoleRecord, at: i64) -> StoreResult<()> {
                    sqlx::query(
                        $sql("UPDATE roles SET trust_policy = ?, max_session_duration = ?, description = ?, \
                         updated_at = ? WHERE id = ?"),
                    )
                    .bind(&role.trust_policy)
                    .bind(role.max_session_duration)
                    .bind(&role.description)
                    .bind(at)
                    .bind(&role.id)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn delete_role(&mut self, id: &str) -> StoreResult<()> {
                    sqlx::query($sql("DELETE FROM roles WHERE id = ?"))
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn attach_role_policy(&mut self, policy_id: &str, role_id: &str) -> StoreResult<bool> {
                    let r = sqlx::query(
                        $sql("INSERT INTO role_attachments (policy_id, role_id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
                    )
                    .bind(policy_id)
                    .bind(role_id)
                    .execute(&mut *self)
                    .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn detach_role_policy(&mut self, policy_id: &str, role_id: &str) -> StoreResult<bool> {
                    let r = sqlx::query($sql("DELETE FROM role_attachments WHERE policy_id = ? AND role_id = ?"))
                        .bind(policy_id)
                        .bind(role_id)
                        .execute(&mut *self)
                        .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn insert_access_key(
                    &mut self,
                    id: &str,
                    owner: &KeyOwnerId,
                    secret_enc: &str,
                    at: i64,
                ) -> StoreResult<()> {
                    let (user_id, role_id) = match owner {
                        KeyOwnerId::User(u) => (Some(u), None),
                        KeyOwnerId::Role(r) => (None, Some(r)),
                    };
                    sqlx::query(
                        $sql("INSERT INTO access_keys (id, user_id, role_id, secret_enc, active, created_at) \
                         VALUES (?, ?, ?, ?, TRUE, ?)"),
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(role_id)
                    .bind(secret_enc)
                    .bind(at)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn access_key(&mut self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
                    let q = $sql(format!("{KEY_SELECT} WHERE k.id = ?"));
                    let row: Option<KeyRow> = sqlx::query_as(q)
                        .bind(id)
                        .fetch_optional(&mut *self)
                        .await?;
                    Ok(row.map(key_from_row))
                }

                async fn list_access_keys(
                    &mut self,
                    owner: Option<&KeyOwnerId>,
                ) -> StoreResult<Vec<AccessKeyRecord>> {
                    let rows: Vec<KeyRow> = match owner {
                        None => {
                            let q = $sql(format!("{KEY_SELECT} ORDER BY k.created_at, k.id"));
                            sqlx::query_as(q).fetch_all(&mut *self).await?
                        }
                        Some(owner) => {
                            let (column, id) = match owner {
                                KeyOwnerId::User(u) => ("k.user_id", u),
                                KeyOwnerId::Role(r) => ("k.role_id", r),
                            };
                            let q = $sql(format!(
                                "{KEY_SELECT} WHERE {column} = ? ORDER BY k.created_at, k.id"
                            ));
                            sqlx::query_as(q).bind(id).fetch_all(&mut *self).await?
                        }
                    };
                    Ok(rows.into_iter().map(key_from_row).collect())
                }

                async fn set_access_key_active(&mut self, id: &str, active: bool) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE access_keys SET active = ? WHERE id = ?"))
                        .bind(active)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn delete_access_key(&mut self, id: &str) -> StoreResult<bool> {
                    let r = sqlx::query($sql("DELETE FROM access_keys WHERE id = ?"))
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn touch_access_key(&mut self, id: &str, at: i64) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE access_keys SET last_used_at = ? WHERE id = ?"))
                        .bind(at)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn insert_sts_session(&mut self, s: &NewStsSession<'_>, at: i64) -> StoreResult<()> {
                    let tags = serde_json::to_string(s.tags)
                        .map_err(|e| StoreError::Invalid(format!("session tags: {e}")))?;
                    sqlx::query(
                        $sql("INSERT INTO sts_sessions (access_key_id, role_id, session_name, secret_enc, \
                         token_sha256, session_policy, source_identity, tags, caller_arn, created_at, \
                         expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    )
                    .bind(s.access_key_id)
                    .bind(s.role_id)
                    .bind(s.session_name)
                    .bind(&s.secret_enc)
                    .bind(&s.token_sha256)
                    .bind(s.session_policy)
                    .bind(s.source_identity)
                    .bind(tags)
                    .bind(s.caller_arn)
                    .bind(at)
                    .bind(s.expires_at)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn sts_session(&mut self, access_key_id: &str) -> StoreResult<Option<StsSessionRecord>> {
                    let row: Option<StsRow> = sqlx::query_as(
                        $sql("SELECT s.access_key_id, s.role_id, r.account_id, r.name, s.session_name, \
                         s.secret_enc, s.token_sha256, s.session_policy, s.source_identity, s.tags, \
                         s.caller_arn, s.created_at, s.expires_at FROM sts_sessions s \
                         JOIN roles r ON r.id = s.role_id WHERE s.access_key_id = ?"),
                    )
                    .bind(access_key_id)
                    .fetch_optional(&mut *self)
                    .await?;
                    Ok(row.map(|r| StsSessionRecord {
                        access_key_id: r.0,
                        role_id: r.1,
                        role_account_id: r.2,
                        role_name: r.3,
                        session_name: r.4,
                        secret_enc: r.5,
                        token_sha256: r.6,
                        session_policy: r.7,
                        source_identity: r.8,
                        tags: serde_json::from_str(&r.9).unwrap_or_default(),
                        caller_arn: r.10,
                        created_at: r.11,
                        expires_at: r.12,
                    }))
                }

                async fn delete_expired_sts_sessions(&mut self, now: i64) -> StoreResult<()> {
                    sqlx::query($sql("DELETE FROM sts_sessions WHERE expires_at <= ?"))
                        .bind(now)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use role_queries;
