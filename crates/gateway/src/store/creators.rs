//! Who created an experiment or a registered model through mlgate (`mlflow:ResourceCreator`).
//! Written after MLflow confirmed the creation; read when a request touches the resource.

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
        Ok(())
    }

    /// The name of whoever created `resource_arn` through mlgate, if recorded.
    pub async fn resource_creator(&self, resource_arn: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT creator_name FROM resource_creators WHERE resource_arn = ?")
                .bind(resource_arn)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(name,)| name))
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
}
