//! The journal of administrative changes in the SQL both backends run.

/// Implements [`JournalQueries`](crate::store::backend::JournalQueries) for the connection type
/// `$conn`, `$sql` turning each statement's text into its backend's.
macro_rules! journal_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use $crate::store::backend::JournalQueries;
            use $crate::store::error::StoreResult;
            use $crate::store::model::JournalRow;

            impl JournalQueries for $conn {
                async fn insert_admin_change(&mut self, row: &JournalRow) -> StoreResult<()> {
                    sqlx::query($sql(
                        "INSERT INTO admin_changes (changed_at, actor, action, target, \
                         before_state, after_state) VALUES (?, ?, ?, ?, ?, ?)",
                    ))
                    .bind(row.changed_at)
                    .bind(&row.actor)
                    .bind(&row.action)
                    .bind(&row.target)
                    .bind(&row.before)
                    .bind(&row.after)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn has_unrecorded_admin_changes(&mut self) -> StoreResult<bool> {
                    let found: Option<(i64,)> = sqlx::query_as($sql(
                        "SELECT id FROM admin_changes WHERE recorded_at IS NULL LIMIT 1",
                    ))
                    .fetch_optional(&mut *self)
                    .await?;
                    Ok(found.is_some())
                }

                async fn unrecorded_admin_changes(
                    &mut self,
                    limit: i64,
                ) -> StoreResult<Vec<(i64, JournalRow)>> {
                    let rows: Vec<(
                        i64,
                        i64,
                        String,
                        String,
                        String,
                        Option<String>,
                        Option<String>,
                    )> = sqlx::query_as($sql(
                        "SELECT id, changed_at, actor, action, target, before_state, \
                         after_state FROM admin_changes WHERE recorded_at IS NULL \
                         ORDER BY id LIMIT ?",
                    ))
                    .bind(limit)
                    .fetch_all(&mut *self)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, changed_at, actor, action, target, before, after)| {
                            let row = JournalRow {
                                changed_at,
                                actor,
                                action,
                                target,
                                before,
                                after,
                            };
                            (id, row)
                        })
                        .collect())
                }

                async fn mark_admin_changes_recorded(
                    &mut self,
                    through: i64,
                    at: i64,
                ) -> StoreResult<()> {
                    sqlx::query($sql(
                        "UPDATE admin_changes SET recorded_at = ? \
                         WHERE recorded_at IS NULL AND id <= ?",
                    ))
                    .bind(at)
                    .bind(through)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use journal_queries;
