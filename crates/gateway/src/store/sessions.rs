//! Browser sessions, of built-in and of federated (OIDC) users alike, and the one rule that
//! decides whether a session still signs its browser in ([`SessionLimits`]).

use std::sync::Arc;
use std::time::Duration;

use super::backend::SessionQueries;
use super::model::{SessionOwner, SessionRecord};
use super::{Store, StoreResult, now};

/// How often (at most) a session's idle clock, or a token's or key's last use, is written back
/// (each is a write; the idle timeout is far above it).
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// How long a browser session lasts: it ends at its absolute lifetime, or after the idle
/// timeout without a request, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    pub lifetime: Duration,
    pub idle_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            lifetime: Duration::from_secs(12 * 3600),
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

/// Why a session no longer signs anyone in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnded {
    /// Past its absolute lifetime.
    Expired,
    /// No request for the idle timeout.
    Idle,
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl SessionLimits {
    /// When a session created at `created_at` expires.
    pub fn expires_at(&self, created_at: i64) -> i64 {
        created_at.saturating_add(seconds(self.lifetime))
    }

    /// A session last seen at or before this time is idle at `now`.
    pub fn idle_since(&self, now: i64) -> i64 {
        now.saturating_sub(seconds(self.idle_timeout))
    }

    /// The rule: a session is valid before its expiry and while it was seen after
    /// [`Self::idle_since`].
    pub fn check(&self, session: &SessionRecord, now: i64) -> Result<(), SessionEnded> {
        if now >= session.expires_at {
            Err(SessionEnded::Expired)
        } else if session.last_seen_at <= self.idle_since(now) {
            Err(SessionEnded::Idle)
        } else {
            Ok(())
        }
    }

    /// Whether a request at `now` should move the session's idle clock forward: at most once
    /// per [`TOUCH_INTERVAL`].
    pub fn touch_due(session: &SessionRecord, now: i64) -> bool {
        now.saturating_sub(session.last_seen_at) >= seconds(TOUCH_INTERVAL)
    }
}

impl Store {
    /// Stores a new browser session (by the SHA-256 of its id) for `owner`, valid from now on
    /// within `limits`, and removes the sessions that have ended.
    pub async fn create_session(
        &self,
        id_sha256_hex: &str,
        owner: SessionOwner,
        limits: &SessionLimits,
    ) -> StoreResult<SessionRecord> {
        let t = now();
        let session = SessionRecord {
            id_sha256: id_sha256_hex.to_owned(),
            owner,
            created_at: t,
            expires_at: limits.expires_at(t),
            last_seen_at: t,
        };
        read_db!(self, |c| async {
            c.delete_ended_sessions(t, limits.idle_since(t)).await?;
            c.insert_session(&session).await
        }
        .await)?;
        self.inner.sessions.invalidate(id_sha256_hex).await;
        Ok(session)
    }

    /// Browser sessions of either kind that have not ended within `limits` (for the metrics).
    pub async fn live_sessions(&self, limits: &SessionLimits) -> StoreResult<i64> {
        let t = now();
        read_db!(self, |c| c
            .count_live_sessions(t, limits.idle_since(t))
            .await)
    }

    /// Hot path: a session of either kind by the SHA-256 of its id, cached for at most
    /// [`super::MAX_CACHE_TTL`]. Whether it is still valid is for [`SessionLimits::check`].
    pub async fn session_by_hash(
        &self,
        id_sha256_hex: &str,
    ) -> StoreResult<Option<Arc<SessionRecord>>> {
        Ok(self
            .inner
            .sessions
            .try_get_with(id_sha256_hex.to_owned(), async {
                self.count_load();
                read_db!(self, |c| c.session(id_sha256_hex).await).map(|s| s.map(Arc::new))
            })
            .await?)
    }

    /// Moves a session's idle clock forward to `at` (throttled by the authenticator, see
    /// [`SessionLimits::touch_due`]).
    pub async fn touch_session(&self, session: &SessionRecord, at: i64) -> StoreResult<()> {
        read_db!(self, |c| c.touch_session(session, at).await)
    }

    /// Deletes a session of either kind (sign-out). Returns whether it existed.
    pub async fn delete_session(&self, id_sha256_hex: &str) -> StoreResult<bool> {
        let existed = read_db!(self, |c| c.delete_session(id_sha256_hex).await)?;
        self.inner.sessions.invalidate(id_sha256_hex).await;
        if existed {
            // Other replicas may have the session cached.
            self.record_change().await?;
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::temp_store;
    use super::*;
    use crate::identity::{AuthMethod, Principal, PrincipalKind};

    const T: i64 = 1_000_000;

    fn limits(lifetime: u64, idle: u64) -> SessionLimits {
        SessionLimits {
            lifetime: Duration::from_secs(lifetime),
            idle_timeout: Duration::from_secs(idle),
        }
    }

    fn session(expires_at: i64, last_seen_at: i64) -> SessionRecord {
        SessionRecord {
            id_sha256: "h".into(),
            owner: SessionOwner::User {
                user_id: "u".into(),
            },
            created_at: T - 10,
            expires_at,
            last_seen_at,
        }
    }

    #[test]
    fn a_session_ends_at_its_lifetime_or_after_the_idle_timeout() {
        let l = limits(600, 100);
        assert_eq!(l.expires_at(T), T + 600);
        // Valid: before expiry, seen less than the idle timeout ago.
        assert_eq!(l.check(&session(T + 1, T - 99), T), Ok(()));
        // The expiry instant itself is past it; expiry wins over idleness.
        assert_eq!(l.check(&session(T, T), T), Err(SessionEnded::Expired));
        assert_eq!(l.check(&session(T, T - 500), T), Err(SessionEnded::Expired));
        // Exactly the idle timeout without a request ends it.
        assert_eq!(
            l.check(&session(T + 1, T - 100), T),
            Err(SessionEnded::Idle)
        );
        // A zero idle timeout ends every session at once.
        assert_eq!(
            limits(600, 0).check(&session(T + 600, T), T),
            Err(SessionEnded::Idle)
        );
        // Huge settings saturate rather than overflow.
        let forever = limits(u64::MAX, u64::MAX);
        assert_eq!(forever.expires_at(T), i64::MAX);
        assert_eq!(forever.check(&session(i64::MAX, T - 1_000), T), Ok(()));
    }

    #[test]
    fn the_idle_clock_moves_at_most_once_a_minute() {
        assert!(!SessionLimits::touch_due(&session(T + 1, T), T));
        assert!(!SessionLimits::touch_due(
            &session(T + 1, T - seconds(TOUCH_INTERVAL) + 1),
            T
        ));
        assert!(SessionLimits::touch_due(
            &session(T + 1, T - seconds(TOUCH_INTERVAL)),
            T
        ));
    }

    #[tokio::test]
    async fn built_in_and_federated_sessions_share_one_store() {
        let (_d, store) = temp_store().await;
        let user = store
            .create_user(None, "alice", None, BTreeMap::new())
            .await
            .unwrap();
        let l = SessionLimits::default();
        let builtin = store
            .create_session(
                "b".repeat(64).as_str(),
                SessionOwner::User {
                    user_id: user.id.clone(),
                },
                &l,
            )
            .await
            .unwrap();
        let federated_principal = Principal {
            arn: "arn:aws:sts::111111111111:federated-user/bob".into(),
            account: "111111111111".into(),
            name: "bob".into(),
            kind: PrincipalKind::FederatedUser {
                provider: "corp".into(),
            },
            groups: vec!["readers".into()],
            tags: BTreeMap::from([("team".into(), "ml".into())]),
            auth_method: AuthMethod::Session,
        };
        let federated = store
            .create_session(
                "f".repeat(64).as_str(),
                SessionOwner::Federated(federated_principal.clone()),
                &l,
            )
            .await
            .unwrap();
        for s in [&builtin, &federated] {
            let read = store.session_by_hash(&s.id_sha256).await.unwrap().unwrap();
            assert_eq!(&*read, s);
            assert_eq!(l.check(&read, now()), Ok(()));
        }
        // A non-federated principal cannot be stored as one.
        let mut not_federated = federated_principal;
        not_federated.kind = PrincipalKind::User;
        assert!(
            store
                .create_session(
                    "x".repeat(64).as_str(),
                    SessionOwner::Federated(not_federated),
                    &l
                )
                .await
                .is_err()
        );

        // The idle clock moves forward, never back.
        let later = now() + 120;
        store.touch_session(&federated, later).await.unwrap();
        store.touch_session(&federated, later - 60).await.unwrap();
        store.invalidate_caches();
        let touched = store
            .session_by_hash(&federated.id_sha256)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(touched.last_seen_at, later);

        // Creating a session removes the ones that have ended, of either kind.
        let none_idle = limits(3600, 0);
        store
            .create_session(
                "n".repeat(64).as_str(),
                SessionOwner::User { user_id: user.id },
                &none_idle,
            )
            .await
            .unwrap();
        store.invalidate_caches();
        assert!(
            store
                .session_by_hash(&builtin.id_sha256)
                .await
                .unwrap()
                .is_none()
        );

        // Sign-out deletes either kind, once.
        let n = "n".repeat(64);
        assert!(store.delete_session(&n).await.unwrap());
        assert!(!store.delete_session(&n).await.unwrap());
        assert!(store.session_by_hash(&n).await.unwrap().is_none());
    }
}
