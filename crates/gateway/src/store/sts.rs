//! STS sessions (`ASIA…`): temporary credentials of an assumed role, with the sealed secret,
//! the SHA-256 of the session token, an optional session policy and an expiry. Minted by the
//! STS endpoint (`portal/sts`); lookups are uncached (the SigV4 authenticator caches).

use super::backend::RoleQueries;
use super::model::{NewStsSession, StsSessionRecord};
use super::{Store, StoreResult, now};

impl Store {
    /// Stores temporary credentials and removes those that expired.
    pub async fn insert_sts_session(&self, session: NewStsSession<'_>) -> StoreResult<()> {
        let t = now();
        read_db!(self, |c| async {
            c.delete_expired_sts_sessions(t).await?;
            c.insert_sts_session(&session, t).await
        }
        .await)
    }

    /// Temporary credentials by access key id (uncached; expired ones are still returned so the
    /// caller can say "expired" rather than "unknown").
    pub async fn sts_session(&self, access_key_id: &str) -> StoreResult<Option<StsSessionRecord>> {
        read_db!(self, |c| c.sts_session(access_key_id).await)
    }
}
