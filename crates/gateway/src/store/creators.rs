//! Who created an experiment or a registered model through mlgate (`mlflow:ResourceCreator`).
//! Written after MLflow confirmed the creation; read when a request touches the resource.

use std::collections::HashMap;

use super::backend::CreatorQueries;
use super::{Store, StoreResult, now};

impl Store {
    /// Records `creator` (name and principal ARN) as the creator of `resource_arn`, replacing
    /// any earlier record (a name can be created again after a delete).
    pub async fn record_creator(
        &self,
        resource_arn: &str,
        creator_name: &str,
        creator_arn: &str,
    ) -> StoreResult<()> {
        read_db!(self, |c| c
            .put_creator(resource_arn, creator_name, creator_arn, now())
            .await)?;
        self.inner.creators.invalidate(resource_arn).await;
        self.record_change().await
    }

    /// Forgets the creator of a resource that no longer exists (a deleted registered model), so
    /// a later resource of the same name does not inherit it.
    pub async fn forget_creator(&self, resource_arn: &str) -> StoreResult<()> {
        read_db!(self, |c| c.delete_creator(resource_arn).await)?;
        self.inner.creators.invalidate(resource_arn).await;
        self.record_change().await
    }

    /// Moves the creator record of a renamed resource to its new ARN (a registered model's
    /// ARN is its name): whoever created it still did. Without a record, any stale one under
    /// the new ARN is dropped.
    pub async fn move_creator(&self, from_arn: &str, to_arn: &str) -> StoreResult<()> {
        in_transaction!(self, true, |c| async {
            c.delete_creator(to_arn).await?;
            c.rename_creator(from_arn, to_arn).await
        }
        .await)?;
        self.inner.creators.invalidate(from_arn).await;
        self.inner.creators.invalidate(to_arn).await;
        Ok(())
    }

    /// The name of whoever created `resource_arn` through mlgate, if recorded. Cached, absent
    /// records included, until a change (this handle's own writes invalidate at once, others'
    /// through the change counter). Errors are not cached.
    pub async fn resource_creator(&self, resource_arn: &str) -> StoreResult<Option<String>> {
        Ok(self
            .inner
            .creators
            .try_get_with_by_ref(resource_arn, async {
                self.count_load();
                read_db!(self, |c| c.creator(resource_arn).await)
            })
            .await?)
    }

    /// The creators recorded for any of `resource_arns` (ARN → creator name): what a search
    /// filter needs for a page of items.
    pub async fn resource_creators(
        &self,
        resource_arns: &[String],
    ) -> StoreResult<HashMap<String, String>> {
        if resource_arns.is_empty() {
            return Ok(HashMap::new());
        }
        let found = read_db!(self, |c| c.creators(resource_arns).await)?;
        Ok(found.into_iter().collect())
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
