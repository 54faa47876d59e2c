//! Resource creator records in the SQL both backends run.

/// ARNs per query of [`CreatorQueries::creators`] (SQLite allows 32766 bound parameters).
pub(crate) const CREATORS_PER_QUERY: usize = 500;

/// Implements [`CreatorQueries`](crate::store::backend::CreatorQueries) for the connection type `$conn`, `$sql` turning each statement's
/// text (`?` placeholders) into its backend's.
macro_rules! creator_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use $crate::store::backend::CreatorQueries;
            use $crate::store::error::StoreResult;
            use $crate::store::sql::creators::*;

            impl CreatorQueries for $conn {
                async fn put_creator(
                    &mut self,
                    resource_arn: &str,
                    creator_name: &str,
                    creator_arn: &str,
                    at: i64,
                ) -> StoreResult<()> {
                    sqlx::query(
                        $sql("INSERT INTO resource_creators (resource_arn, creator_name, creator_arn, created_at) \
                         VALUES (?, ?, ?, ?) ON CONFLICT (resource_arn) DO UPDATE SET \
                         creator_name = excluded.creator_name, creator_arn = excluded.creator_arn, \
                         created_at = excluded.created_at"),
                    )
                    .bind(resource_arn)
                    .bind(creator_name)
                    .bind(creator_arn)
                    .bind(at)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn delete_creator(&mut self, resource_arn: &str) -> StoreResult<()> {
                    sqlx::query($sql("DELETE FROM resource_creators WHERE resource_arn = ?"))
                        .bind(resource_arn)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn rename_creator(&mut self, from: &str, to: &str) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE resource_creators SET resource_arn = ? WHERE resource_arn = ?"))
                        .bind(to)
                        .bind(from)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn creator(&mut self, resource_arn: &str) -> StoreResult<Option<String>> {
                    let row: Option<(String,)> =
                        sqlx::query_as($sql("SELECT creator_name FROM resource_creators WHERE resource_arn = ?"))
                            .bind(resource_arn)
                            .fetch_optional(&mut *self)
                            .await?;
                    Ok(row.map(|(name,)| name))
                }

                async fn creators(&mut self, resource_arns: &[String]) -> StoreResult<Vec<(String, String)>> {
                    let mut out = Vec::new();
                    for chunk in resource_arns.chunks(CREATORS_PER_QUERY) {
                        let marks = vec!["?"; chunk.len()].join(", ");
                        // Only `?` placeholders are formatted in: the ARNs are bound.
                        let sql = $sql(format!(
                            "SELECT resource_arn, creator_name FROM resource_creators \
                             WHERE resource_arn IN ({marks})"
                        ));
                        let mut query = sqlx::query_as::<_, (String, String)>(sql);
                        for arn in chunk {
                            query = query.bind(arn);
                        }
                        out.extend(query.fetch_all(&mut *self).await?);
                    }
                    Ok(out)
                }
            }
        };
    };
}
pub(crate) use creator_queries;
