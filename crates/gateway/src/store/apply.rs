//! Declarative apply: converge the store towards a plan, in one transaction.
//!
//! Items in the plan are created or updated; items not in the plan are left alone (no pruning).
//! For an item in the plan, each field that is given is made exactly so (a group's `members` and
//! `policies` lists replace the current ones); a field that is not given is left as it is. A
//! password is only re-hashed when the stored hash does not verify it, so applying the same plan
//! twice reports everything unchanged.
//!
//! Grants (`[[grants]]`, permission levels expanded by `admin::grant`) are generated policies
//! named `grant.…` attached to a user or group. The file owns the grants of a user or group
//! that has a grant in it, or whose `policies` it lists: their `grant.…` attachments are made
//! exactly the plan's grants for them (plus any `grant.…` policy the `policies` list names), so
//! a grant removed from the file is detached on the next apply. Grants of other subjects
//! (`mlgate grant` on a user the file does not list policies for) are left alone. A plan that
//! only adds grants ([`ApplyPlan::grants_add_only`], the basic-auth import) detaches none.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::backend::Queries;
use super::identities::{
    create_group, create_user, ensure_account, resolve_account, set_disabled, set_password,
    set_tags, user_id,
};
use super::journal::{self, Actor, Entry};
use super::model::Change;
use super::password;
use super::policies::{check_policy, policy_id, put_policy};
use super::validate::validate_policy_name;
use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, Default)]
pub struct ApplyPlan {
    pub accounts: Vec<ApplyAccount>,
    pub policies: Vec<ApplyPolicy>,
    pub users: Vec<ApplyUser>,
    pub groups: Vec<ApplyGroup>,
    pub grants: Vec<ApplyGrant>,
    /// The plan's grants are added beside the subjects' other grants, none detached (an
    /// import adds to what an operator granted; a file owns its subjects' grants).
    pub grants_add_only: bool,
}

/// The prefix of the names of generated grant policies (`mlgate grant`, `[[grants]]`).
pub const GRANT_POLICY_PREFIX: &str = "grant.";

/// Who a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantSubject {
    User,
    Group,
}

impl GrantSubject {
    pub fn word(self) -> &'static str {
        match self {
            GrantSubject::User => "user",
            GrantSubject::Group => "group",
        }
    }
}

/// A permission level granted to a user or group: its generated policy, attached.
#[derive(Clone, Debug)]
pub struct ApplyGrant {
    pub subject: GrantSubject,
    /// Account id or name; `None` = the default account.
    pub account: Option<String>,
    pub name: String,
    /// The generated policy (name starting with [`GRANT_POLICY_PREFIX`]).
    pub policy: ApplyPolicy,
}

#[derive(Clone, Debug)]
pub struct ApplyAccount {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct ApplyPolicy {
    pub name: String,
    /// The IAM JSON document (validated before anything is written).
    pub document: String,
}

/// A user in the plan. `Debug` never shows the password.
#[derive(Clone, Default)]
pub struct ApplyUser {
    /// Account id or name; `None` = the default account.
    pub account: Option<String>,
    pub name: String,
    /// The password to set, already read from its source (env var or file).
    pub password: Option<String>,
    /// A password hash written elsewhere (an MLflow basic-auth Werkzeug hash), kept as it is;
    /// only for a user being created: an existing user's password is left alone.
    pub imported_hash: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub disabled: Option<bool>,
    /// Policies attached directly to the user (exactly these, when given).
    pub policies: Option<Vec<String>>,
}

impl fmt::Debug for ApplyUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyUser")
            .field("account", &self.account)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "imported_hash",
                &self.imported_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("tags", &self.tags)
            .field("disabled", &self.disabled)
            .field("policies", &self.policies)
            .finish()
    }
}

#[derive(Clone, Debug, Default)]
pub struct ApplyGroup {
    pub account: Option<String>,
    pub name: String,
    /// Member user names in the group's account (exactly these, when given).
    pub members: Option<Vec<String>>,
    /// Policies attached to the group (exactly these, when given).
    pub policies: Option<Vec<String>>,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApplyItem {
    pub kind: &'static str,
    pub name: String,
    pub change: Change,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub items: Vec<ApplyItem>,
}

impl ApplyReport {
    fn push(&mut self, kind: &'static str, name: impl Into<String>, change: Change) {
        self.items.push(ApplyItem {
            kind,
            name: name.into(),
            change,
        });
    }

    pub fn count(&self, change: Change) -> usize {
        self.items.iter().filter(|i| i.change == change).count()
    }

    /// The change reported for an item, if it was in the plan.
    pub fn change_of(&self, kind: &str, name: &str) -> Option<Change> {
        self.items
            .iter()
            .find(|i| i.kind == kind && i.name == name)
            .map(|i| i.change)
    }
}

fn merge(a: Change, b: Change) -> Change {
    match (a, b) {
        (Change::Created, _) | (_, Change::Created) => Change::Created,
        (Change::Updated, _) | (_, Change::Updated) => Change::Updated,
        _ => Change::Unchanged,
    }
}

fn in_item(kind: &str, name: &str) -> impl FnOnce(StoreError) -> StoreError {
    let ctx = format!("{kind} {name:?}");
    move |e| match e {
        StoreError::NotFound { .. } | StoreError::Invalid(_) | StoreError::Conflict(_) => {
            StoreError::Invalid(format!("{ctx}: {e}"))
        }
        other => other,
    }
}

/// Sets the attachments of one user or group to exactly `wanted`; returns whether anything
/// changed.
async fn converge_attachments<Q: Queries>(
    c: &mut Q,
    current: Vec<String>,
    wanted: &[String],
    uid: Option<&str>,
    gid: Option<&str>,
) -> StoreResult<bool> {
    let current: BTreeSet<String> = current.into_iter().collect();
    let wanted: BTreeSet<String> = wanted.iter().cloned().collect();
    let mut changed = false;
    for p in wanted.difference(&current) {
        let pid = policy_id(c, p).await?;
        changed |= c.attach(&pid, uid, gid).await?;
    }
    for p in current.difference(&wanted) {
        let pid = policy_id(c, p).await?;
        changed |= c.detach(&pid, uid, gid).await?;
    }
    Ok(changed)
}

/// A declared user or group: kind, account id, name.
type SubjectKey = (GrantSubject, String, String);

/// The generated policies of the plan's grants, each once; two grants whose policies share a
/// name must share the document.
fn grant_policies(plan: &ApplyPlan) -> StoreResult<Vec<&ApplyPolicy>> {
    let mut out: Vec<&ApplyPolicy> = Vec::new();
    for g in &plan.grants {
        let p = &g.policy;
        if !p.name.starts_with(GRANT_POLICY_PREFIX) {
            return Err(StoreError::Invalid(format!(
                "grant policy {:?} must be named {GRANT_POLICY_PREFIX}…",
                p.name
            )));
        }
        if plan.policies.iter().any(|q| q.name == p.name) {
            return Err(StoreError::Invalid(format!(
                "policy {:?} is generated by a grant; it cannot be in policies too",
                p.name
            )));
        }
        match out.iter().find(|q| q.name == p.name) {
            Some(q) if q.document != p.document => {
                return Err(StoreError::Invalid(format!(
                    "grants of different patterns map to the same policy name {:?}",
                    p.name
                )));
            }
            Some(_) => {}
            None => out.push(p),
        }
    }
    Ok(out)
}

/// The plan's grants by subject (account resolved): the policy names each must have.
async fn grants_by_subject<Q: Queries>(
    c: &mut Q,
    plan: &ApplyPlan,
    default_account: &str,
) -> StoreResult<BTreeMap<SubjectKey, BTreeSet<String>>> {
    let mut out: BTreeMap<SubjectKey, BTreeSet<String>> = BTreeMap::new();
    for g in &plan.grants {
        let acct = resolve_account(c, g.account.as_deref(), default_account)
            .await
            .map_err(in_item("grant for", &g.name))?;
        out.entry((g.subject, acct, g.name.clone()))
            .or_default()
            .insert(g.policy.name.clone());
    }
    Ok(out)
}

fn is_grant(policy: &str) -> bool {
    policy.starts_with(GRANT_POLICY_PREFIX)
}

fn not_grants(policies: Vec<String>) -> Vec<String> {
    policies.into_iter().filter(|p| !is_grant(p)).collect()
}

async fn apply<Q: Queries>(
    c: &mut Q,
    actor: &Actor,
    plan: &ApplyPlan,
    default_account: &str,
) -> StoreResult<ApplyReport> {
    let mut report = ApplyReport::default();

    for a in &plan.accounts {
        let ch = ensure_account(c, &a.id, &a.name)
            .await
            .map_err(in_item("account", &a.id))?;
        report.push("account", a.id.clone(), ch);
    }

    // Validate every document before writing any of them.
    let generated = grant_policies(plan)?;
    for p in plan.policies.iter().chain(generated.iter().copied()) {
        validate_policy_name(&p.name)?;
        check_policy(&p.name, &p.document)?;
    }
    for p in plan.policies.iter().chain(generated.iter().copied()) {
        let ch = put_policy(c, actor, &p.name, &p.document).await?;
        report.push("policy", p.name.clone(), ch);
    }
    let grants = grants_by_subject(c, plan, default_account).await?;
    // The subjects whose grants the file owns, with the `policies` they list.
    let mut declared: BTreeMap<SubjectKey, Option<Vec<String>>> =
        grants.keys().map(|key| (key.clone(), None)).collect();

    for u in &plan.users {
        let ctx = || in_item("user", &u.name);
        let acct = resolve_account(c, u.account.as_deref(), default_account)
            .await
            .map_err(ctx())?;
        let label = if u.account.is_some() {
            format!("{acct}/{}", u.name)
        } else {
            u.name.clone()
        };
        let existing = c.user_by_name(&acct, &u.name).await?;
        let (uid, mut change) = match existing {
            None => {
                let hash = match &u.password {
                    Some(pw) => Some(password::hash_async(pw.clone()).await.map_err(ctx())?),
                    None => u.imported_hash.clone(),
                };
                let tags = u.tags.clone().unwrap_or_default();
                let uid = create_user(c, &acct, &u.name, hash.as_deref(), &tags)
                    .await
                    .map_err(ctx())?;
                if u.disabled == Some(true) {
                    set_disabled(c, &uid, true).await?;
                }
                (uid, Change::Created)
            }
            Some(rec) => {
                let mut changed = false;
                if let Some(pw) = &u.password {
                    let same = match rec.password_hash.clone() {
                        Some(phc) => {
                            let pw = pw.clone();
                            tokio::task::spawn_blocking(move || password::verify(&pw, &phc))
                                .await
                                .map_err(|e| StoreError::Password(e.to_string()))?
                        }
                        None => false,
                    };
                    if !same {
                        let hash = password::hash_async(pw.clone()).await.map_err(ctx())?;
                        set_password(c, &rec.id, Some(&hash)).await?;
                        changed = true;
                    }
                }
                if let Some(tags) = &u.tags
                    && *tags != rec.tags
                {
                    set_tags(c, &rec.id, tags).await.map_err(ctx())?;
                    changed = true;
                }
                if let Some(d) = u.disabled
                    && d != rec.disabled
                {
                    set_disabled(c, &rec.id, d).await?;
                    changed = true;
                }
                let ch = if changed {
                    Change::Updated
                } else {
                    Change::Unchanged
                };
                (rec.id, ch)
            }
        };
        let key = (GrantSubject::User, acct.clone(), u.name.clone());
        if let Some(policies) = &u.policies {
            // Grants are converged below, with the other grants.
            let current = c.user_policy_names(&uid).await?;
            if converge_attachments(
                c,
                not_grants(current),
                &not_grants(policies.clone()),
                Some(&uid),
                None,
            )
            .await
            .map_err(ctx())?
            {
                change = merge(change, Change::Updated);
            }
        }
        if u.policies.is_some() {
            declared.insert(key, u.policies.clone());
        }
        report.push("user", label, change);
    }

    for g in &plan.groups {
        let ctx = || in_item("group", &g.name);
        let acct = resolve_account(c, g.account.as_deref(), default_account)
            .await
            .map_err(ctx())?;
        let label = if g.account.is_some() {
            format!("{acct}/{}", g.name)
        } else {
            g.name.clone()
        };
        let (gid, mut change) = match c.group_id(&acct, &g.name).await? {
            Some(id) => (id, Change::Unchanged),
            None => (
                create_group(c, &acct, &g.name).await.map_err(ctx())?,
                Change::Created,
            ),
        };
        if let Some(members) = &g.members {
            let current: BTreeSet<String> = c.group_members(&gid).await?.into_iter().collect();
            let wanted: BTreeSet<String> = members.iter().cloned().collect();
            let mut changed = false;
            for m in wanted.difference(&current) {
                let uid = user_id(c, &acct, m).await.map_err(ctx())?;
                changed |= c.add_member(&gid, &uid).await?;
            }
            for m in current.difference(&wanted) {
                let uid = user_id(c, &acct, m).await.map_err(ctx())?;
                changed |= c.remove_member(&gid, &uid).await?;
            }
            if changed {
                change = merge(change, Change::Updated);
            }
        }
        let key = (GrantSubject::Group, acct.clone(), g.name.clone());
        if let Some(policies) = &g.policies {
            // Grants are converged below, with the other grants.
            let current = c.group_policy_names(&gid).await?;
            if converge_attachments(
                c,
                not_grants(current),
                &not_grants(policies.clone()),
                None,
                Some(&gid),
            )
            .await
            .map_err(ctx())?
            {
                change = merge(change, Change::Updated);
            }
        }
        if g.policies.is_some() {
            declared.insert(key, g.policies.clone());
        }
        report.push("group", label, change);
    }

    // Their grants: exactly the plan's (see the module comment).
    for (key, policies) in &declared {
        let (subject, acct, name) = key;
        let label = format!("{} {acct}/{name}", subject.word());
        let ctx = || in_item("grant for", &label);
        let (uid, gid, current) = match subject {
            GrantSubject::User => {
                let uid = user_id(c, acct, name).await.map_err(ctx())?;
                let current = c.user_policy_names(&uid).await?;
                (Some(uid), None, current)
            }
            GrantSubject::Group => {
                let gid = c
                    .group_id(acct, name)
                    .await?
                    .ok_or_else(|| StoreError::Invalid(format!("{label}: no such group")))?;
                let current = c.group_policy_names(&gid).await?;
                (None, Some(gid), current)
            }
        };
        let had: BTreeSet<String> = current.into_iter().filter(|p| is_grant(p)).collect();
        // The plan's grants, and any grant policy the `policies` list names.
        let mut wanted: BTreeSet<String> = grants.get(key).cloned().unwrap_or_default();
        wanted.extend(policies.iter().flatten().filter(|p| is_grant(p)).cloned());
        if plan.grants_add_only {
            wanted.extend(had.iter().cloned());
        }
        let wanted: Vec<String> = wanted.into_iter().collect();
        converge_attachments(
            c,
            had.iter().cloned().collect(),
            &wanted,
            uid.as_deref(),
            gid.as_deref(),
        )
        .await
        .map_err(ctx())?;
        for p in grants.get(key).into_iter().flatten() {
            let change = if had.contains(p) {
                Change::Unchanged
            } else {
                Change::Created
            };
            report.push("grant", format!("{label} {p}"), change);
        }
        for p in had.iter().filter(|p| !wanted.contains(p)) {
            report.push("grant", format!("{label} {p} (detached)"), Change::Updated);
        }
    }

    // Policies were journaled with their documents as they were put.
    for item in &report.items {
        if item.change != Change::Unchanged && item.kind != "policy" {
            let entry = Entry::new("Apply", format!("{}/{}", item.kind, item.name))
                .after(serde_json::json!({ "change": item.change }));
            journal::record(c, actor, entry).await?;
        }
    }
    Ok(report)
}

impl Store {
    /// Applies a declarative plan (see [`ApplyPlan`]) in one transaction: creates what is
    /// missing, updates what differs, and reports each item as created, updated or unchanged.
    /// Nothing is written if any item fails.
    pub async fn apply(&self, plan: &ApplyPlan) -> StoreResult<ApplyReport> {
        let default = self.default_account_id();
        write_db!(self, |c| apply(c, self.actor(), plan, default).await)
    }

    /// Like [`Self::apply`], but rolls the transaction back: reports what would change.
    pub async fn apply_dry_run(&self, plan: &ApplyPlan) -> StoreResult<ApplyReport> {
        let default = self.default_account_id();
        in_transaction!(self, false, |c| apply(c, self.actor(), plan, default).await)
    }
}
