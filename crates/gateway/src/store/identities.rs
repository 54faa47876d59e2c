//! Accounts, users, groups and memberships: the operations, and the rules shared by the CLI
//! methods and the declarative apply (which run them inside one transaction).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::backend::{IdentityQueries, Queries};
use super::journal::{self, Entry, in_account};
use super::model::{AccountRecord, Change, GroupRecord, UserRecord};
use super::validate::{
    validate_account_id, validate_account_name, validate_group_name, validate_tag,
    validate_user_name,
};
use super::{Store, StoreError, StoreResult, new_id, now};

/// Resolves an account given by 12-digit id or by name; `None` is `default`.
pub(super) async fn resolve_account<Q: Queries>(
    c: &mut Q,
    account: Option<&str>,
    default: &str,
) -> StoreResult<String> {
    let Some(a) = account else {
        return Ok(default.to_owned());
    };
    let id = if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
        c.account_name(a).await?.map(|_| a.to_owned())
    } else {
        c.account_id_named(a).await?
    };
    id.ok_or_else(|| StoreError::not_found("account", a))
}

/// Creates the account if it does not exist, or renames it. Fails if the name belongs to
/// another account.
pub(super) async fn ensure_account<Q: Queries>(
    c: &mut Q,
    id: &str,
    name: &str,
) -> StoreResult<Change> {
    validate_account_id(id)?;
    validate_account_name(name)?;
    let existing = c.account_name(id).await?;
    if existing.as_deref() == Some(name) {
        return Ok(Change::Unchanged);
    }
    // Renaming an account is allowed as long as the new name is free.
    if let Some(other) = c.account_id_named(name).await?
        && other != id
    {
        return Err(StoreError::Conflict(format!(
            "account name {name:?} is already used by account {other}"
        )));
    }
    if existing.is_some() {
        c.rename_account(id, name).await?;
        return Ok(Change::Updated);
    }
    c.insert_account(id, name, now()).await?;
    Ok(Change::Created)
}

/// The id of a user that must exist.
pub(super) async fn user_id<Q: Queries>(
    c: &mut Q,
    account: &str,
    name: &str,
) -> StoreResult<String> {
    c.user_id(account, name)
        .await?
        .ok_or_else(|| StoreError::not_found("user", name))
}

/// The id of a group that must exist.
pub(super) async fn group_id<Q: Queries>(
    c: &mut Q,
    account: &str,
    name: &str,
) -> StoreResult<String> {
    c.group_id(account, name)
        .await?
        .ok_or_else(|| StoreError::not_found("group", name))
}

fn check_tags(tags: &BTreeMap<String, String>) -> StoreResult<()> {
    tags.iter().try_for_each(|(k, v)| validate_tag(k, v))
}

/// Creates a user; returns its id.
pub(super) async fn create_user<Q: Queries>(
    c: &mut Q,
    account: &str,
    name: &str,
    password_hash: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> StoreResult<String> {
    validate_user_name(name)?;
    check_tags(tags)?;
    if c.user_id(account, name).await?.is_some() {
        return Err(StoreError::AlreadyExists {
            kind: "user",
            name: name.to_owned(),
        });
    }
    let id = new_id();
    c.insert_user(&id, account, name, password_hash, tags, now())
        .await?;
    Ok(id)
}

pub(super) async fn set_tags<Q: Queries>(
    c: &mut Q,
    user_id: &str,
    tags: &BTreeMap<String, String>,
) -> StoreResult<()> {
    check_tags(tags)?;
    c.set_tags(user_id, tags, now()).await
}

/// Sets (or with `None`, removes) a password and ends the user's browser sessions.
pub(super) async fn set_password<Q: Queries>(
    c: &mut Q,
    user_id: &str,
    hash: Option<&str>,
) -> StoreResult<()> {
    c.set_password(user_id, hash, now()).await?;
    c.delete_user_sessions(user_id).await
}

/// Disables (ending the user's browser sessions) or enables a user.
pub(super) async fn set_disabled<Q: Queries>(
    c: &mut Q,
    user_id: &str,
    disabled: bool,
) -> StoreResult<()> {
    c.set_disabled(user_id, disabled, now()).await?;
    if disabled {
        c.delete_user_sessions(user_id).await?;
    }
    Ok(())
}

/// Creates a group; returns its id.
pub(super) async fn create_group<Q: Queries>(
    c: &mut Q,
    account: &str,
    name: &str,
) -> StoreResult<String> {
    validate_group_name(name)?;
    if c.group_id(account, name).await?.is_some() {
        return Err(StoreError::AlreadyExists {
            kind: "group",
            name: name.to_owned(),
        });
    }
    let id = new_id();
    c.insert_group(&id, account, name, now()).await?;
    Ok(id)
}

impl Store {
    // ----- accounts -------------------------------------------------------------------------

    /// Resolves an account given by 12-digit id or by name; `None` is the default account.
    pub async fn resolve_account(&self, account: Option<&str>) -> StoreResult<String> {
        read_db!(self, |c| resolve_account(
            c,
            account,
            self.default_account_id()
        )
        .await)
    }

    /// Hot path: the id of an account given by id or name, `None` if there is no such account.
    /// Cached for at most [`super::MAX_CACHE_TTL`].
    pub async fn account_id(&self, account: &str) -> StoreResult<Option<String>> {
        Ok(self
            .inner
            .accounts
            .try_get_with(account.to_owned(), async {
                self.count_load();
                match read_db!(self, |c| resolve_account(c, Some(account), "").await) {
                    Ok(id) => Ok(Some(id)),
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?)
    }

    /// Creates the account if it does not exist. Fails if the id exists under another name or
    /// the name under another id.
    pub async fn ensure_account(&self, id: &str, name: &str) -> StoreResult<Change> {
        write_db!(self, |c| async {
            let change = ensure_account(c, id, name).await?;
            if change != Change::Unchanged {
                let entry = Entry::new("PutAccount", format!("account/{id}"))
                    .after(json!({"name": name, "change": change}));
                journal::record(c, self.actor(), entry).await?;
            }
            Ok::<_, StoreError>(change)
        }
        .await)
    }

    pub async fn list_accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        read_db!(self, |c| c.list_accounts().await)
    }

    // ----- users ----------------------------------------------------------------------------

    /// Creates a user. `password_hash` is an argon2id PHC string from
    /// [`super::password::hash`].
    pub async fn create_user(
        &self,
        account: Option<&str>,
        name: &str,
        password_hash: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> StoreResult<UserRecord> {
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let id = create_user(c, &account, name, password_hash.as_deref(), &tags).await?;
            let entry = Entry::new("CreateUser", in_account("user", &account, name))
                .after(json!({"tags": &tags, "password": password_hash.is_some()}));
            journal::record(c, self.actor(), entry).await?;
            c.user_by_id(&id)
                .await?
                .ok_or_else(|| StoreError::not_found("user", name))
        }
        .await)
    }

    /// Looks a user up, uncached (for the admin CLI).
    pub async fn get_user(&self, account: Option<&str>, name: &str) -> StoreResult<UserRecord> {
        read_db!(self, |c| async {
            let account = resolve_account(c, account, self.default_account_id()).await?;
            c.user_by_name(&account, name)
                .await?
                .ok_or_else(|| StoreError::not_found("user", name))
        }
        .await)
    }

    pub async fn list_users(&self, account: Option<&str>) -> StoreResult<Vec<UserRecord>> {
        read_db!(self, |c| async {
            let account = match account {
                Some(a) => Some(resolve_account(c, Some(a), self.default_account_id()).await?),
                None => None,
            };
            c.list_users(account.as_deref()).await
        }
        .await)
    }

    pub async fn delete_user(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let user = self.get_user(account, name).await?;
        write_db!(self, |c| async {
            c.delete_user(&user.id).await?;
            let entry = Entry::new("DeleteUser", user_target(&user)).before(json!({
                "tags": &user.tags,
                "groups": &user.groups,
                "disabled": user.disabled,
            }));
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    /// Sets (or with `None`, removes) the password, and signs the user out of every browser
    /// session.
    pub async fn set_password(
        &self,
        account: Option<&str>,
        name: &str,
        password_hash: Option<String>,
    ) -> StoreResult<()> {
        let user = self.get_user(account, name).await?;
        write_db!(self, |c| async {
            set_password(c, &user.id, password_hash.as_deref()).await?;
            // Whether there is a password, never anything of it.
            let entry = Entry::new("SetPassword", user_target(&user))
                .after(json!({"password": password_hash.is_some()}));
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    /// Replaces a user's imported password hash by an argon2id hash of the same password
    /// (`password`, just verified against it), unless the hash changed meanwhile. Browser
    /// sessions stay: the password is the same.
    pub async fn upgrade_password_hash(
        &self,
        user: &UserRecord,
        password: &str,
    ) -> StoreResult<bool> {
        let Some(old) = user.password_hash.clone() else {
            return Ok(false);
        };
        let new = super::password::hash_async(password.to_owned()).await?;
        write_db!(self, |c| c
            .replace_password_hash(&user.id, &old, &new, now())
            .await)
    }

    /// Disables or enables a user. Disabling also ends the user's browser sessions; its tokens
    /// stay (they stop working while the user is disabled).
    pub async fn set_disabled(
        &self,
        account: Option<&str>,
        name: &str,
        disabled: bool,
    ) -> StoreResult<()> {
        let user = self.get_user(account, name).await?;
        write_db!(self, |c| async {
            set_disabled(c, &user.id, disabled).await?;
            let entry = Entry::new("SetUserDisabled", user_target(&user))
                .before(json!({"disabled": user.disabled}))
                .after(json!({"disabled": disabled}));
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    /// Sets the given tags and removes the keys in `remove`.
    pub async fn tag_user(
        &self,
        account: Option<&str>,
        name: &str,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> StoreResult<UserRecord> {
        let user = self.get_user(account, name).await?;
        let mut tags = user.tags.clone();
        for k in &remove {
            tags.remove(k);
        }
        tags.extend(set);
        write_db!(self, |c| async {
            set_tags(c, &user.id, &tags).await?;
            let entry = Entry::new("TagUser", user_target(&user))
                .before(json!({"tags": &user.tags}))
                .after(json!({"tags": &tags}));
            journal::record(c, self.actor(), entry).await?;
            c.user_by_id(&user.id)
                .await?
                .ok_or_else(|| StoreError::not_found("user", &user.name))
        }
        .await)
    }

    /// Hot path: a user by account id and name, cached for at most [`super::MAX_CACHE_TTL`].
    pub async fn user_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> StoreResult<Option<Arc<UserRecord>>> {
        let key = (account_id.to_owned(), name.to_owned());
        Ok(self
            .inner
            .users_by_name
            .try_get_with(key, async {
                self.count_load();
                read_db!(self, |c| c.user_by_name(account_id, name).await).map(|u| u.map(Arc::new))
            })
            .await?)
    }

    /// Hot path: a user by id, cached for at most [`super::MAX_CACHE_TTL`].
    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<Arc<UserRecord>>> {
        Ok(self
            .inner
            .users_by_id
            .try_get_with(id.to_owned(), async {
                self.count_load();
                read_db!(self, |c| c.user_by_id(id).await).map(|u| u.map(Arc::new))
            })
            .await?)
    }

    // ----- groups ---------------------------------------------------------------------------

    pub async fn create_group(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            create_group(c, &account, name).await?;
            let entry = Entry::new("CreateGroup", in_account("group", &account, name));
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    pub async fn list_groups(&self, account: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
        read_db!(self, |c| async {
            let account = match account {
                Some(a) => Some(resolve_account(c, Some(a), self.default_account_id()).await?),
                None => None,
            };
            c.list_groups(account.as_deref()).await
        }
        .await)
    }

    pub async fn delete_group(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let gid = group_id(c, &account, name).await?;
            let members = c.group_members(&gid).await?;
            c.delete_group(&gid).await?;
            let entry = Entry::new("DeleteGroup", in_account("group", &account, name))
                .before(json!({"members": members}));
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    /// Adds a user to a group of the same account. Returns whether it was added (false: was
    /// already a member).
    pub async fn add_member(
        &self,
        account: Option<&str>,
        group: &str,
        user: &str,
    ) -> StoreResult<bool> {
        self.change_membership(account, group, user, true).await
    }

    /// Removes a user from a group. Returns whether it was a member.
    pub async fn remove_member(
        &self,
        account: Option<&str>,
        group: &str,
        user: &str,
    ) -> StoreResult<bool> {
        self.change_membership(account, group, user, false).await
    }

    async fn change_membership(
        &self,
        account: Option<&str>,
        group: &str,
        user: &str,
        member: bool,
    ) -> StoreResult<bool> {
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let gid = group_id(c, &account, group).await?;
            let uid = user_id(c, &account, user).await?;
            let (changed, action) = if member {
                (c.add_member(&gid, &uid).await?, "AddUserToGroup")
            } else {
                (c.remove_member(&gid, &uid).await?, "RemoveUserFromGroup")
            };
            if changed {
                let entry = Entry::new(action, in_account("group", &account, group))
                    .after(json!({"user": user}));
                journal::record(c, self.actor(), entry).await?;
            }
            Ok::<_, StoreError>(changed)
        }
        .await)
    }
}

/// A user's journal target.
fn user_target(user: &UserRecord) -> String {
    in_account("user", &user.account_id, &user.name)
}
