//! Keeping a serving process's caches in step with changes made elsewhere (the admin CLI,
//! `mlgate apply`, another replica).
//!
//! Every committed write adds one to the store's change counter (`in_transaction!`, and the
//! few single-statement writes that matter to others: sign-out, creator records). A serving
//! process compares the counter with the last value it saw and, when it moved, drops every
//! cache at once, then once more one check later (a load that was in flight during the change
//! may have put an old record back). On SQLite the counter is read every [`SQLITE_POLL`]; on
//! PostgreSQL the counter's trigger sends NOTIFY, which wakes the check at once, and the counter
//! is read every [`POSTGRES_POLL`] anyway, so a lost notification connection delays a change by
//! at most that.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::backend::ChangeQueries;
use super::{Actor, Backend, Inner, Store, StoreResult};

/// How often a server on SQLite reads the change counter.
pub const SQLITE_POLL: Duration = Duration::from_millis(200);
/// How often a server on PostgreSQL reads the change counter besides the notifications.
pub const POSTGRES_POLL: Duration = Duration::from_secs(1);

/// What the watcher remembers between checks.
#[derive(Default)]
struct Watch {
    /// The counter at the last successful check.
    seen: Option<i64>,
    /// Sweep the caches again at the next check (see the module documentation).
    sweep_again: bool,
    /// The PostgreSQL notification connection, when one is open.
    listener: Option<PgListener>,
}

impl Store {
    /// Starts watching the change counter for as long as this store (any clone of it) lives.
    pub fn watch_changes(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(watch(weak, self.actor().clone()))
    }

    /// Records a change made by a single statement outside a write transaction.
    pub(super) async fn record_change(&self) -> StoreResult<()> {
        read_db!(self, |c| c.record_change().await)
    }

    /// Drops every cache of this handle, and those registered with [`Store::on_change`].
    fn drop_all_caches(&self) {
        self.invalidate_caches();
        self.inner.creators.invalidate_all();
        for clear in self.on_change_hooks().iter() {
            clear();
        }
    }

    /// Compares the change counter with the last value seen; drops the caches if it moved.
    async fn check_changes(&self, watch: &mut Watch) {
        let version = async { read_db!(self, |c| c.change_version().await) }.await;
        match version {
            Ok(version) => {
                if !self.is_ready() {
                    tracing::info!("the store answers again");
                }
                self.inner.ready.store(true, Ordering::Relaxed);
                let moved = watch.seen.is_some_and(|seen| seen != version);
                if moved || watch.sweep_again {
                    self.drop_all_caches();
                }
                watch.sweep_again = moved;
                watch.seen = Some(version);
            }
            Err(error) => {
                if self.is_ready() {
                    tracing::warn!(%error, "the store cannot be reached");
                }
                self.inner.ready.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Waits for the next check: a notification or the poll interval, whichever comes first.
    async fn next_check(&self, watch: &mut Watch) {
        let Backend::Postgres(db) = &self.inner.backend else {
            tokio::time::sleep(SQLITE_POLL).await;
            return;
        };
        if watch.listener.is_none() {
            match db.listen().await {
                Ok(listener) => watch.listener = Some(listener),
                Err(error) => {
                    tracing::debug!(%error, "cannot listen for store changes; polling");
                    tokio::time::sleep(POSTGRES_POLL).await;
                    return;
                }
            }
        }
        if let Some(listener) = &mut watch.listener
            && let Ok(Err(error)) = tokio::time::timeout(POSTGRES_POLL, listener.recv()).await
        {
            tracing::debug!(%error, "lost the store change notifications; reconnecting");
            watch.listener = None;
        }
    }
}

async fn watch(weak: Weak<Inner>, actor: Actor) {
    let mut watch = Watch::default();
    while let Some(inner) = weak.upgrade() {
        let store = Store {
            inner,
            actor: actor.clone(),
        };
        store.check_changes(&mut watch).await;
        store.next_check(&mut watch).await;
    }
}
