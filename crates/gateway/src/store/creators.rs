//! Who created an experiment or a registered model through mlgate (`mlflow:ResourceCreator`).
//! Written after MLflow confirmed the creation; read when a request touches the resource.

use std::collections::HashMap;

use std::sync::atomic::Ordering;

use super::{Store, StoreError, StoreResult, now};

/// ARNs per query of [`Store::resource_creators`] (SQLite allows 32766 bound parameters).
const CREATORS_PER_QUERY: usize = 500;

impl Store {
    /// Records `creator` (name and principal ARN) as the creator of `resource_arn`, replacing
    /// any earlier record (a name can be created again after a delete).
    pub async fn record_creator(
        &self,
        resource_arn: &str,
        creator_name: &str,
        creator_arn: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resource_creators (resource_arn, creator_name, creator_arn, created_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (resource_arn) DO UPDATE SET \
             creator_name = excluded.creator_name, creator_arn = excluded.creator_arn, \
             created_at = excluded.created_at",
        )
        .bind(resource_arn)
        .bind(creator_name)
        .bind(creator_arn)
        .bind(now())
        .execute(self.pool())
        .await?;
        self.inner.creators.invalidate(resource_arn).await;
        Ok(())
    }

    /// Forgets the creator of a resource that no longer exists (a deleted registered model), so
    /// a later resource of the same name does not inherit it.
    pub async fn forget_creator(&self, resource_arn: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM resource_creators WHERE resource_arn = ?")
            .bind(resource_arn)
            .execute(self.pool())
            .await?;
        self.inner.creators.invalidate(resource_arn).await;
        Ok(())
    }

    /// Moves the creator record of a renamed resource to its new ARN (a registered model's
    /// ARN is its name): whoever created it still did. Without a record, any stale one under
    /// the new ARN is dropped.
    pub async fn move_creator(&self, from_arn: &str, to_arn: &str) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM resource_creators WHERE resource_arn = ?")
            .bind(to_arn)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE resource_creators SET resource_arn = ? WHERE resource_arn = ?")
            .bind(to_arn)
            .bind(from_arn)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.inner.creators.invalidate(from_arn).await;
        self.inner.creators.invalidate(to_arn).await;
        Ok(())
    }

    /// The name of whoever created `resource_arn` through mlgate, if recorded. Cached, absent
    /// records included, for at most the store's cache TTL (another replica's writes); this
    /// handle's own writes invalidate at once. Errors are not cached.
    pub async fn resource_creator(&self, resource_arn: &str) -> StoreResult<Option<String>> {
        let inner = &self.inner;
        Ok(inner
            .creators
            .try_get_with_by_ref(resource_arn, async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT creator_name FROM resource_creators WHERE resource_arn = ?",
                )
                .bind(resource_arn)
                .fetch_optional(self.pool())
                .await?;
                Ok::<_, StoreError>(row.map(|(name,)| name))
            })
            .await?)
    }

    /// The creators recorded for any of `resource_arns` (ARN → creator name), in one query per
    /// [`CREATORS_PER_QUERY`] ARNs: what a search filter needs for a page of items.
    pub async fn resource_creators(
        &self,
        resource_arns: &[String],
    ) -> StoreResult<HashMap<String, String>> {
        let mut out = HashMap::new();
        for chunk in resource_arns.chunks(CREATORS_PER_QUERY) {
            let marks = vec!["?"; chunk.len()].join(", ");
            // Only `?` placeholders are formatted in: the ARNs are bound.
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT resource_arn, creator_name FROM resource_creators \
                 WHERE resource_arn IN ({marks})"
            ));
            let mut query = sqlx::query_as::<_, (String, String)>(sql);
            for arn in chunk {
                query = query.bind(arn);
            }
            out.extend(query.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creators_are_recorded_and_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        let arn = "arn:mlflow:us-east-1:111111111111:experiment/7";
        assert_eq!(store.resource_creator(arn).await.expect("read"), None);
        store
            .record_creator(arn, "alice", "arn:aws:iam::111111111111:user/alice")
            .await
            .expect("write");
        assert_eq!(
            store.resource_creator(arn).await.expect("read").as_deref(),
            Some("alice")
        );
        store
            .record_creator(arn, "bob", "arn:aws:iam::111111111111:user/bob")
            .await
            .expect("write");
        assert_eq!(
            store.resource_creator(arn).await.expect("read").as_deref(),
            Some("bob")
        );
    }

    #[tokio::test]
    async fn creators_are_cached_and_kept_in_step_with_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        let old = "arn:mlflow:us-east-1:111111111111:registered-model/churn";
        let new = "arn:mlflow:us-east-1:111111111111:registered-model/churn-v2";
        let alice = "arn:aws:iam::111111111111:user/alice";
        // An absent creator is cached too: the second read does not query.
        assert_eq!(store.resource_creator(old).await.expect("read"), None);
        let misses = store.cache_misses();
        assert_eq!(store.resource_creator(old).await.expect("read"), None);
        assert_eq!(store.cache_misses(), misses);
        // Recording replaces the cached absence at once.
        store
            .record_creator(old, "alice", alice)
            .await
            .expect("write");
        assert_eq!(
            store.resource_creator(old).await.expect("read").as_deref(),
            Some("alice")
        );
        // A stale record under the new name is replaced by the moved one.
        store
            .record_creator(new, "mallory", "arn:aws:iam::111111111111:user/mallory")
            .await
            .expect("write");
        assert!(store.resource_creator(new).await.expect("read").is_some());
        store.move_creator(old, new).await.expect("move");
        assert_eq!(store.resource_creator(old).await.expect("read"), None);
        assert_eq!(
            store.resource_creator(new).await.expect("read").as_deref(),
            Some("alice")
        );
        // Moving a resource without a record leaves the new name without one.
        store.move_creator(old, new).await.expect("move");
        assert_eq!(store.resource_creator(new).await.expect("read"), None);
        store
            .record_creator(new, "alice", alice)
            .await
            .expect("write");
        store.forget_creator(new).await.expect("forget");
        assert_eq!(store.resource_creator(new).await.expect("read"), None);
    }

    #[tokio::test]
    async fn creators_are_read_in_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        let arns: Vec<String> = (0..1200)
            .map(|i| format!("arn:mlflow:us-east-1:111111111111:experiment/{i}"))
            .collect();
        for (i, arn) in arns.iter().enumerate().filter(|(i, _)| i % 100 == 7) {
            store
                .record_creator(arn, &format!("u{i}"), "arn:aws:iam::111111111111:user/u")
                .await
                .expect("write");
        }
        let found = store.resource_creators(&arns).await.expect("read");
        assert_eq!(found.len(), 12);
        assert_eq!(found[&arns[1107]], "u1107");
        assert!(store.resource_creators(&[]).await.expect("read").is_empty());
    }
}
