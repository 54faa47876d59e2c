//! Policy documents and their attachments in the SQL both backends run.

use crate::store::model::PolicyRecord;

pub(crate) type PolicyRow = (String, String, String, i64, i64, i64);

pub(crate) const POLICY_SELECT: &str = "SELECT p.id, p.name, p.document, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM attachments a WHERE a.policy_id = p.id) FROM policies p";

pub(crate) fn policy_from_row(r: PolicyRow) -> PolicyRecord {
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

pub(crate) fn names(rows: Vec<(String,)>) -> Vec<String> {
    rows.into_iter().map(|r| r.0).collect()
}

/// Implements [`PolicyQueries`](crate::store::backend::PolicyQueries) for the connection type `$conn`, `$sql` turning each statement's
/// text (`?` placeholders) into its backend's.
macro_rules! policy_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use $crate::store::backend::{PolicyQueries, PolicyRows};
            use $crate::store::error::StoreResult;
            use $crate::store::model::{PolicyRecord, PolicySource};
            use $crate::store::sql::policies::*;

            impl PolicyQueries for $conn {
                async fn find_policy(&mut self, name: &str) -> StoreResult<Option<(String, String)>> {
                    Ok(
                        sqlx::query_as($sql("SELECT id, document FROM policies WHERE name = ?"))
                            .bind(name)
                            .fetch_optional(&mut *self)
                            .await?,
                    )
                }

                async fn insert_policy(
                    &mut self,
                    id: &str,
                    name: &str,
                    document: &str,
                    at: i64,
                ) -> StoreResult<()> {
                    sqlx::query(
                        $sql("INSERT INTO policies (id, name, document, created_at, updated_at) \
                         VALUES (?, ?, ?, ?, ?)"),
                    )
                    .bind(id)
                    .bind(name)
                    .bind(document)
                    .bind(at)
                    .bind(at)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn update_policy(&mut self, id: &str, document: &str, at: i64) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE policies SET document = ?, updated_at = ? WHERE id = ?"))
                        .bind(document)
                        .bind(at)
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn policy(&mut self, name: &str) -> StoreResult<Option<PolicyRecord>> {
                    let q = $sql(format!("{POLICY_SELECT} WHERE p.name = ?"));
                    let row: Option<PolicyRow> = sqlx::query_as(q)
                        .bind(name)
                        .fetch_optional(&mut *self)
                        .await?;
                    Ok(row.map(policy_from_row))
                }

                async fn list_policies(&mut self) -> StoreResult<Vec<PolicyRecord>> {
                    let q = $sql(format!("{POLICY_SELECT} ORDER BY p.name"));
                    let rows: Vec<PolicyRow> = sqlx::query_as(q).fetch_all(&mut *self).await?;
                    Ok(rows.into_iter().map(policy_from_row).collect())
                }

                async fn delete_policy(&mut self, id: &str) -> StoreResult<()> {
                    sqlx::query($sql("DELETE FROM policies WHERE id = ?"))
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn attach(
                    &mut self,
                    policy_id: &str,
                    user_id: Option<&str>,
                    group_id: Option<&str>,
                ) -> StoreResult<bool> {
                    let r = sqlx::query(
                        $sql("INSERT INTO attachments (policy_id, user_id, group_id) VALUES (?, ?, ?) \
                         ON CONFLICT DO NOTHING"),
                    )
                    .bind(policy_id)
                    .bind(user_id)
                    .bind(group_id)
                    .execute(&mut *self)
                    .await?;
                    Ok(r.rows_affected() > 0)
                }

                async fn detach(
                    &mut self,
                    policy_id: &str,
                    user_id: Option<&str>,
                    group_id: Option<&str>,
                ) -> StoreResult<bool> {
                    let r = match (user_id, group_id) {
                        (Some(u), _) => {
                            sqlx::query($sql("DELETE FROM attachments WHERE policy_id = ? AND user_id = ?"))
                                .bind(policy_id)
                                .bind(u)
                                .execute(&mut *self)
                                .await?
                        }
                        (None, Some(g)) => {
                            sqlx::query($sql("DELETE FROM attachments WHERE policy_id = ? AND group_id = ?"))
                                .bind(policy_id)
                                .bind(g)
                                .execute(&mut *self)
                                .await?
                        }
                        (None, None) => return Ok(false),
                    };
                    Ok(r.rows_affected() > 0)
                }

                async fn user_policy_names(&mut self, user_id: &str) -> StoreResult<Vec<String>> {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        $sql("SELECT p.name FROM policies p JOIN attachments a ON a.policy_id = p.id \
                         WHERE a.user_id = ? ORDER BY p.name"),
                    )
                    .bind(user_id)
                    .fetch_all(&mut *self)
                    .await?;
                    Ok(names(rows))
                }

                async fn group_policy_names(&mut self, group_id: &str) -> StoreResult<Vec<String>> {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        $sql("SELECT p.name FROM policies p JOIN attachments a ON a.policy_id = p.id \
                         WHERE a.group_id = ? ORDER BY p.name"),
                    )
                    .bind(group_id)
                    .fetch_all(&mut *self)
                    .await?;
                    Ok(names(rows))
                }

                async fn policy_attachments(&mut self, policy_id: &str) -> StoreResult<Vec<PolicySource>> {
                    let users: Vec<(String, String)> = sqlx::query_as(
                        $sql("SELECT u.account_id, u.name FROM users u JOIN attachments a ON a.user_id = u.id \
                         WHERE a.policy_id = ? ORDER BY u.account_id, u.name"),
                    )
                    .bind(policy_id)
                    .fetch_all(&mut *self)
                    .await?;
                    let groups: Vec<(String, String)> = sqlx::query_as(
                        $sql("SELECT g.account_id, g.name FROM user_groups g JOIN attachments a ON a.group_id = g.id \
                         WHERE a.policy_id = ? ORDER BY g.account_id, g.name"),
                    )
                    .bind(policy_id)
                    .fetch_all(&mut *self)
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

                async fn policy_roles(&mut self, policy_id: &str) -> StoreResult<Vec<(String, String)>> {
                    Ok(sqlx::query_as(
                        $sql("SELECT r.account_id, r.name FROM roles r JOIN role_attachments a ON a.role_id = r.id \
                         WHERE a.policy_id = ? ORDER BY 1, 2"),
                    )
                    .bind(policy_id)
                    .fetch_all(&mut *self)
                    .await?)
                }

                async fn user_policy_rows(&mut self, user_id: &str) -> StoreResult<PolicyRows> {
                    Ok(sqlx::query_as(
                        $sql("SELECT p.name, p.document FROM policies p JOIN attachments a ON a.policy_id = p.id \
                         WHERE a.user_id = ? \
                         UNION \
                         SELECT p.name, p.document FROM policies p JOIN attachments a ON a.policy_id = p.id \
                         JOIN memberships m ON m.group_id = a.group_id WHERE m.user_id = ? \
                         ORDER BY 1"),
                    )
                    .bind(user_id)
                    .bind(user_id)
                    .fetch_all(&mut *self)
                    .await?)
                }

                async fn group_policy_rows(&mut self, account: &str, group: &str) -> StoreResult<PolicyRows> {
                    Ok(sqlx::query_as(
                        $sql("SELECT p.name, p.document FROM policies p \
                         JOIN attachments a ON a.policy_id = p.id \
                         JOIN user_groups g ON g.id = a.group_id \
                         WHERE g.account_id = ? AND g.name = ?"),
                    )
                    .bind(account)
                    .bind(group)
                    .fetch_all(&mut *self)
                    .await?)
                }

                async fn role_policy_rows(&mut self, account: &str, role: &str) -> StoreResult<PolicyRows> {
                    Ok(sqlx::query_as(
                        $sql("SELECT p.name, p.document FROM policies p \
                         JOIN role_attachments a ON a.policy_id = p.id \
                         JOIN roles r ON r.id = a.role_id \
                         WHERE r.account_id = ? AND r.name = ? ORDER BY 1"),
                    )
                    .bind(account)
                    .bind(role)
                    .fetch_all(&mut *self)
                    .await?)
                }

                async fn user_policy_sources(
                    &mut self,
                    user_id: &str,
                ) -> StoreResult<Vec<(String, PolicySource)>> {
                    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                        $sql("SELECT p.name, 'user', u.account_id, u.name FROM policies p \
                         JOIN attachments a ON a.policy_id = p.id JOIN users u ON u.id = a.user_id \
                         WHERE a.user_id = ? \
                         UNION ALL \
                         SELECT p.name, 'group', g.account_id, g.name FROM policies p \
                         JOIN attachments a ON a.policy_id = p.id JOIN user_groups g ON g.id = a.group_id \
                         JOIN memberships m ON m.group_id = g.id WHERE m.user_id = ? \
                         ORDER BY 1, 2, 4"),
                    )
                    .bind(user_id)
                    .bind(user_id)
                    .fetch_all(&mut *self)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(policy, kind, account_id, name)| {
                            let source = if kind == "user" {
                                PolicySource::User { account_id, name }
                            } else {
                                PolicySource::Group { account_id, name }
                            };
                            (policy, source)
                        })
                        .collect())
                }
            }
        };
    };
}
pub(crate) use policy_queries;
