//! SigV4 access keys (`AKIA…`). A key belongs to exactly one user or one role. Its secret is
//! generated here, returned once, and stored sealed under the master key
//! ([`super::secrets::MasterKey`]).
//!
//! Lookups here are uncached; the SigV4 authenticator keeps its own short-lived cache (at most
//! [`super::MAX_CACHE_TTL`]).

use zeroize::Zeroizing;

use super::backend::Queries;
use super::backend::RoleQueries;
use super::credentials::{new_access_key_id, new_secret_access_key};
use super::identities::{resolve_account, user_id};
use super::journal::{self, Entry, in_account};
use super::model::{AccessKeyRecord, KeyOwnerId, KeyOwnerRef};
use super::roles::role_id;
use super::secrets::MasterKey;
use super::{Store, StoreError, StoreResult, now};

/// The internal id of a named owner.
async fn owner_id<Q: Queries>(
    c: &mut Q,
    account: &str,
    owner: KeyOwnerRef<'_>,
) -> StoreResult<KeyOwnerId> {
    Ok(match owner {
        KeyOwnerRef::User(u) => KeyOwnerId::User(user_id(c, account, u).await?),
        KeyOwnerRef::Role(r) => KeyOwnerId::Role(role_id(c, account, r).await?),
    })
}

impl Store {
    /// Creates an access key for a user or role. Returns the record and the secret, which is
    /// not stored in clear anywhere: show it once.
    pub async fn create_access_key(
        &self,
        account: Option<&str>,
        owner: KeyOwnerRef<'_>,
        master: &MasterKey,
    ) -> StoreResult<(AccessKeyRecord, Zeroizing<String>)> {
        let id = new_access_key_id("AKIA");
        let secret = new_secret_access_key();
        let sealed = master.seal(&id, secret.as_bytes());
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let owner_target = match owner {
                KeyOwnerRef::User(u) => in_account("user", &account, u),
                KeyOwnerRef::Role(r) => in_account("role", &account, r),
            };
            let owner = owner_id(c, &account, owner).await?;
            c.insert_access_key(&id, &owner, &sealed, now()).await?;
            let entry = Entry::new("CreateAccessKey", format!("access-key/{id}"))
                .after(serde_json::json!({ "owner": owner_target }));
            journal::record(c, self.actor(), entry).await
        }
        .await)?;
        let record = self
            .access_key(&id)
            .await?
            .ok_or_else(|| StoreError::not_found("access key", &id))?;
        Ok((record, secret))
    }

    /// An access key by id (uncached).
    pub async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        read_db!(self, |c| c.access_key(id).await)
    }

    /// Access keys, optionally of one user or role, oldest first.
    pub async fn list_access_keys(
        &self,
        account: Option<&str>,
        owner: Option<KeyOwnerRef<'_>>,
    ) -> StoreResult<Vec<AccessKeyRecord>> {
        read_db!(self, |c| async {
            let owner = match owner {
                Some(o) => {
                    let account = resolve_account(c, account, self.default_account_id()).await?;
                    Some(owner_id(c, &account, o).await?)
                }
                None => None,
            };
            c.list_access_keys(owner.as_ref()).await
        }
        .await)
    }

    /// Activates or deactivates a key. Returns false if it already was in that state.
    pub async fn set_access_key_active(&self, id: &str, active: bool) -> StoreResult<bool> {
        write_db!(self, |c| async {
            match c.access_key(id).await? {
                None => Err(StoreError::not_found("access key", id)),
                Some(key) if key.active == active => Ok(false),
                Some(_) => {
                    c.set_access_key_active(id, active).await?;
                    let entry = Entry::new("SetAccessKeyActive", format!("access-key/{id}"))
                        .before(serde_json::json!({ "active": !active }))
                        .after(serde_json::json!({ "active": active }));
                    journal::record(c, self.actor(), entry).await?;
                    Ok(true)
                }
            }
        }
        .await)
    }

    pub async fn delete_access_key(&self, id: &str) -> StoreResult<()> {
        write_db!(self, |c| async {
            if c.delete_access_key(id).await? {
                let entry = Entry::new("DeleteAccessKey", format!("access-key/{id}"));
                journal::record(c, self.actor(), entry).await
            } else {
                Err(StoreError::not_found("access key", id))
            }
        }
        .await)
    }

    /// Records a key's last use (throttled by the authenticator). Does not clear caches.
    pub async fn touch_access_key(&self, id: &str, at: i64) -> StoreResult<()> {
        read_db!(self, |c| c.touch_access_key(id, at).await)
    }
}
