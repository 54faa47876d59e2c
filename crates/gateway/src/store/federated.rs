//! Effective policies of federated principals (OIDC users, issue 4): they have no `users` row,
//! only the mlgate groups their token's group claim maps to, so their policies are the union of
//! the policies attached to those groups in the principal's account. A mapped group that does
//! not exist gives nothing. Cached like every other principal's policies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mlgate_policy::{NamedPolicy, PolicyDocument};

use super::{Store, StoreError, StoreResult};
use crate::identity::Principal;

impl Store {
    pub(super) async fn federated_policies(
        &self,
        principal: &Principal,
    ) -> StoreResult<Arc<[NamedPolicy]>> {
        if principal.groups.is_empty() {
            return Ok(Arc::from(Vec::new()));
        }
        // `\0` cannot occur in user or group names, so this key never meets a user's.
        let key = (
            principal.account.clone(),
            format!("\0federated\0{}", principal.groups.join("\0")),
        );
        let inner = &self.inner;
        Ok(inner
            .policies
            .try_get_with(key, async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                let mut docs: Vec<(String, String)> = Vec::new();
                for group in &principal.groups {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT p.name, p.document FROM policies p \
                         JOIN attachments a ON a.policy_id = p.id \
                         JOIN user_groups g ON g.id = a.group_id \
                         WHERE g.account_id = ? AND g.name = ?",
                    )
                    .bind(&principal.account)
                    .bind(group)
                    .fetch_all(&mut *conn)
                    .await?;
                    docs.extend(rows);
                }
                docs.sort();
                docs.dedup_by(|a, b| a.0 == b.0);
                let mut out = Vec::with_capacity(docs.len());
                for (name, text) in docs {
                    let document =
                        PolicyDocument::parse(&text).map_err(|e| StoreError::InvalidPolicy {
                            name: name.clone(),
                            message: e.to_string(),
                        })?;
                    out.push(NamedPolicy { name, document });
                }
                Ok::<_, StoreError>(Arc::from(out))
            })
            .await?)
    }
}
