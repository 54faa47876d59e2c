//! The server's side of the journal of administrative changes (`store/journal.rs`): every
//! second, the changes no audit log holds yet are sealed into this server's log, then marked
//! recorded in the store. A change made with the admin CLI or through MLflow's basic-auth API
//! reaches the log within about a second while a server runs, or when the next one starts.

use std::time::Duration;

use crate::audit::AuditSink;
use crate::store::Store;

/// How often the journal is looked at.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Starts the task that moves journaled changes into `audit`.
pub fn spawn(store: Store, audit: AuditSink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            match record(&store, &audit).await {
                Ok(()) => failing = false,
                // Logged once per outage: the rows wait in the store meanwhile.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "administrative changes cannot be moved into the audit log yet");
                }
                Err(_) => {}
            }
        }
    })
}

/// Every waiting change, batch by batch.
pub async fn record(store: &Store, audit: &AuditSink) -> Result<(), crate::store::StoreError> {
    loop {
        let recorded = store
            .record_admin_changes(|changes| audit.admin_changes(changes))
            .await?;
        if recorded == 0 {
            return Ok(());
        }
    }
}
