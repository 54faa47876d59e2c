//! The change counter in the SQL both backends run (on PostgreSQL a trigger on the row also
//! announces each change with NOTIFY; see `migrations/postgres`).

/// Implements [`ChangeQueries`](crate::store::backend::ChangeQueries) for the connection type
/// `$conn`, `$sql` turning each statement's text into its backend's.
macro_rules! change_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use $crate::store::backend::ChangeQueries;
            use $crate::store::error::StoreResult;

            impl ChangeQueries for $conn {
                async fn record_change(&mut self) -> StoreResult<()> {
                    sqlx::query($sql("UPDATE store_changes SET version = version + 1"))
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn change_version(&mut self) -> StoreResult<i64> {
                    let (version,): (i64,) =
                        sqlx::query_as($sql("SELECT version FROM store_changes"))
                            .fetch_one(&mut *self)
                            .await?;
                    Ok(version)
                }
            }
        };
    };
}
pub(crate) use change_queries;
