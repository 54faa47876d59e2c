//! Password checks for HTTP Basic and the sign-in page, without running argon2 per request.
//!
//! * **Success cache.** The first correct password for a user runs argon2id once (~25 ms, on the
//!   blocking pool, behind a semaphore of `max_concurrent` permits). The success is then cached
//!   for `success_ttl` (default 5 min) under the key HMAC-SHA256(k, user id ‖ 0 ‖ password), `k`
//!   being 32 random bytes drawn at process start: the cache holds no password and no offline-
//!   crackable hash of one. A hit costs one HMAC and one map lookup. The entry remembers the PHC
//!   string it was verified against; a hit only counts if that string still equals the user's
//!   current hash (compared in constant time), so a password change or a user deletion
//!   invalidates it as soon as the store sees the change (within a second across processes, at
//!   once in this one). Disabled users are refused before the cache is consulted.
//! * **Single flight.** Concurrent requests with the same user and password (the MLflow client
//!   opens several connections at once) share one argon2 run.
//! * **Negative cache.** A wrong (user, password) pair is remembered for `failure_ttl` (default
//!   30 s): a client retrying a wrong password in a loop costs no KDF and no rate-limit budget.
//! * **Rate limits.** Each distinct failed verification counts against the user name and the
//!   client address within a `failure_window` (default 5 min). Past `max_failures_per_user`
//!   (10) or `max_failures_per_ip` (50), further password checks for that user or address are
//!   refused with 429 without running the KDF until the window ends. Cached successes still
//!   pass, so clients already signed in keep working while someone guesses.
//! * **Unknown users** get the same treatment (a dummy argon2 run against a fixed hash, the same
//!   limits), so response times do not reveal which user names exist.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use moka::future::Cache as AsyncCache;
use moka::sync::Cache;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::store::UserRecord;
use crate::store::password::{self as kdf, MAX_PASSWORD_LEN};

/// Tunables of [`PasswordVerifier`].
#[derive(Clone, Debug)]
pub struct PasswordSettings {
    /// How long a verified (user, password) pair is trusted without re-running argon2.
    pub success_ttl: Duration,
    /// How long a wrong (user, password) pair is refused without re-running argon2.
    pub failure_ttl: Duration,
    /// The window over which failed attempts are counted.
    pub failure_window: Duration,
    pub max_failures_per_user: u32,
    pub max_failures_per_ip: u32,
    /// Concurrent argon2 runs (each uses ~19 MiB and one core for ~25 ms).
    pub max_concurrent: usize,
    /// How long a check waits for a free argon2 slot before answering 503.
    pub queue_timeout: Duration,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordSettings {
            success_ttl: Duration::from_secs(300),
            failure_ttl: Duration::from_secs(30),
            failure_window: Duration::from_secs(300),
            max_failures_per_user: 10,
            max_failures_per_ip: 50,
            max_concurrent: cores.clamp(1, 4),
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a password check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordFailure {
    /// Wrong password, unknown or disabled user, or a user without a password.
    Invalid,
    /// Too many failures for this user or address.
    RateLimited,
    /// No argon2 slot became free in time.
    Busy,
}

type Key = [u8; 32];

/// Verifies passwords with caching, single flight, rate limits and bounded concurrency.
/// Cheap to clone; clones share state.
#[derive(Clone)]
pub struct PasswordVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: PasswordSettings,
    hmac_key: Key,
    /// HMAC(user id, password) → the PHC string that verified it.
    success: AsyncCache<Key, Arc<str>>,
    /// HMAC(subject, password) of recent failures.
    failure: Cache<Key, ()>,
    user_failures: Cache<String, Arc<AtomicU32>>,
    ip_failures: Cache<IpAddr, Arc<AtomicU32>>,
    semaphore: Semaphore,
    kdf_runs: AtomicU64,
}

/// A valid argon2id hash of a random throwaway password, for constant-shape checks of unknown
/// users.
fn dummy_phc() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut buf = [0u8; 24];
        getrandom::fill(&mut buf).expect("OS random number generator");
        kdf::hash(&hex::encode(buf)).expect("hashing a random password")
    })
}

impl PasswordVerifier {
    pub fn new(settings: PasswordSettings) -> PasswordVerifier {
        let mut hmac_key = [0u8; 32];
        getrandom::fill(&mut hmac_key).expect("OS random number generator");
        let window = settings.failure_window.max(Duration::from_secs(1));
        PasswordVerifier {
            inner: Arc::new(Inner {
                success: AsyncCache::builder()
                    .max_capacity(100_000)
                    .time_to_live(settings.success_ttl)
                    .build(),
                failure: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(settings.failure_ttl.max(Duration::from_millis(1)))
                    .build(),
                user_failures: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(window)
                    .build(),
                ip_failures: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(window)
                    .build(),
                semaphore: Semaphore::new(settings.max_concurrent.max(1)),
                kdf_runs: AtomicU64::new(0),
                hmac_key,
                settings,
            }),
        }
    }

    /// How many times argon2 actually ran (for tests and metrics).
    pub fn kdf_runs(&self) -> u64 {
        self.inner.kdf_runs.load(Ordering::Relaxed)
    }

    fn key(&self, subject: &str, password: &str) -> Key {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.hmac_key).expect("any key length");
        mac.update(subject.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn over_limit(&self, subject: &str, ip: Option<IpAddr>) -> bool {
        let s = &self.inner.settings;
        let user_count = self
            .inner
            .user_failures
            .get(subject)
            .map_or(0, |c| c.load(Ordering::Relaxed));
        let ip_count = ip
            .and_then(|ip| self.inner.ip_failures.get(&ip))
            .map_or(0, |c| c.load(Ordering::Relaxed));
        user_count >= s.max_failures_per_user || ip_count >= s.max_failures_per_ip
    }

    fn record_failure(&self, key: Key, subject: &str, ip: Option<IpAddr>) {
        let i = &self.inner;
        i.failure.insert(key, ());
        i.user_failures
            .get_with(subject.to_owned(), || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
        if let Some(ip) = ip {
            i.ip_failures
                .get_with(ip, || Arc::new(AtomicU32::new(0)))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs argon2 on the blocking pool behind the semaphore; `None` verifies against the dummy
    /// hash (computed there too on first use, never on an async worker).
    async fn run_kdf(
        &self,
        password: &str,
        phc: Option<Arc<str>>,
    ) -> Result<bool, PasswordFailure> {
        let i = &self.inner;
        let _permit = tokio::time::timeout(i.settings.queue_timeout, i.semaphore.acquire())
            .await
            .map_err(|_| PasswordFailure::Busy)?
            .map_err(|_| PasswordFailure::Busy)?;
        i.kdf_runs.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || match phc {
            Some(phc) => kdf::verify(&password, &phc),
            None => {
                // Same cost as a real check; the outcome is a failure whatever it says.
                let _ = std::hint::black_box(kdf::verify(&password, dummy_phc()));
                false
            }
        })
        .await
        .map_err(|_| PasswordFailure::Busy)
    }

    /// Checks `password` for `user` (`None`: no such user). `subject` names the attempted user
    /// (e.g. `111111111111/alice`) for the rate limits. `ip` is the client address, if known.
    pub async fn check(
        &self,
        user: Option<&UserRecord>,
        subject: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), PasswordFailure> {
        let usable = user.filter(|u| !u.disabled).and_then(|u| {
            u.password_hash()
                .map(|phc| (u.id.as_str(), Arc::<str>::from(phc)))
        });

        let Some((user_id, phc)) = usable else {
            // Unknown, disabled or password-less user: same shape as a wrong password.
            let key = self.key(&format!("?{subject}"), password);
            if self.inner.failure.contains_key(&key) {
                return Err(PasswordFailure::Invalid);
            }
            if self.over_limit(subject, ip) {
                return Err(PasswordFailure::RateLimited);
            }
            let _ = self.run_kdf(password, None).await?;
            self.record_failure(key, subject, ip);
            return Err(PasswordFailure::Invalid);
        };
        if password.len() > MAX_PASSWORD_LEN {
            return Err(PasswordFailure::Invalid);
        }

        let key = self.key(user_id, password);
        if let Some(verified) = self.inner.success.get(&key).await {
            if bool::from(verified.as_bytes().ct_eq(phc.as_bytes())) {
                return Ok(());
            }
            // The password changed since: forget the stale success.
            self.inner.success.invalidate(&key).await;
        }
        if self.inner.failure.contains_key(&key) {
            return Err(PasswordFailure::Invalid);
        }
        if self.over_limit(subject, ip) {
            return Err(PasswordFailure::RateLimited);
        }

        let verified = self
            .inner
            .success
            .try_get_with(key, async {
                let ok = self.run_kdf(password, Some(phc.clone())).await?;
                if ok {
                    Ok(phc.clone())
                } else {
                    // Recorded once, by the one task that ran the KDF for this (user, password).
                    self.record_failure(key, subject, ip);
                    Err(PasswordFailure::Invalid)
                }
            })
            .await
            .map_err(|e| *e)?;
        if bool::from(verified.as_bytes().ct_eq(phc.as_bytes())) {
            Ok(())
        } else {
            Err(PasswordFailure::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn user(id: &str, phc: &str) -> UserRecord {
        UserRecord {
            id: id.into(),
            account_id: "111111111111".into(),
            name: "alice".into(),
            password_hash: Some(phc.into()),
            tags: BTreeMap::new(),
            disabled: false,
            groups: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    fn fast() -> PasswordSettings {
        PasswordSettings {
            max_concurrent: 2,
            ..PasswordSettings::default()
        }
    }

    #[tokio::test]
    async fn argon2_runs_once_then_the_cache_answers() {
        let v = PasswordVerifier::new(fast());
        let u = user("u1", &kdf::hash("correct horse").unwrap());
        for _ in 0..20 {
            v.check(Some(&u), "111111111111/alice", "correct horse", None)
                .await
                .unwrap();
        }
        assert_eq!(v.kdf_runs(), 1);

        // A wrong password is verified once and then refused from the negative cache.
        for _ in 0..5 {
            assert_eq!(
                v.check(Some(&u), "111111111111/alice", "wrong horse", None)
                    .await,
                Err(PasswordFailure::Invalid)
            );
        }
        assert_eq!(v.kdf_runs(), 2);
    }

    #[tokio::test]
    async fn concurrent_identical_checks_share_one_kdf_run() {
        let v = PasswordVerifier::new(fast());
        let u = Arc::new(user("u1", &kdf::hash("correct horse").unwrap()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (v, u) = (v.clone(), u.clone());
            tasks.push(tokio::spawn(async move {
                v.check(Some(&u), "alice", "correct horse", None).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(v.kdf_runs(), 1);
    }

    #[tokio::test]
    async fn password_change_invalidates_the_cached_success() {
        let v = PasswordVerifier::new(fast());
        let old = user("u1", &kdf::hash("correct horse").unwrap());
        v.check(Some(&old), "alice", "correct horse", None)
            .await
            .unwrap();
        // Same user id, new hash (the admin set a new password).
        let new = user("u1", &kdf::hash("battery staple").unwrap());
        assert_eq!(
            v.check(Some(&new), "alice", "correct horse", None).await,
            Err(PasswordFailure::Invalid)
        );
        v.check(Some(&new), "alice", "battery staple", None)
            .await
            .unwrap();
        // A disabled user is refused even with a cached success.
        let mut disabled = new.clone();
        disabled.disabled = true;
        let runs = v.kdf_runs();
        v.check(Some(&new), "alice", "battery staple", None)
            .await
            .unwrap();
        assert_eq!(v.kdf_runs(), runs, "cache hit expected");
        assert_eq!(
            v.check(Some(&disabled), "alice", "battery staple", None)
                .await,
            Err(PasswordFailure::Invalid)
        );
    }

    #[tokio::test]
    async fn failures_are_rate_limited_per_user_and_ip() {
        let v = PasswordVerifier::new(PasswordSettings {
            max_failures_per_user: 3,
            max_failures_per_ip: 5,
            ..fast()
        });
        let u = user("u1", &kdf::hash("correct horse").unwrap());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..3 {
            assert_eq!(
                v.check(Some(&u), "alice", &format!("guess-{i}-xx"), Some(ip))
                    .await,
                Err(PasswordFailure::Invalid)
            );
        }
        let runs = v.kdf_runs();
        assert_eq!(
            v.check(Some(&u), "alice", "guess-new-xx", Some(ip)).await,
            Err(PasswordFailure::RateLimited)
        );
        // Even the right password is refused for this user during the window (no KDF run)...
        assert_eq!(
            v.check(Some(&u), "alice", "correct horse", Some(ip)).await,
            Err(PasswordFailure::RateLimited)
        );
        assert_eq!(v.kdf_runs(), runs);

        // ... and the address is limited across user names (unknown users count too).
        for i in 0..2 {
            assert_eq!(
                v.check(None, &format!("nobody{i}"), "whatever-pw", Some(ip))
                    .await,
                Err(PasswordFailure::Invalid)
            );
        }
        assert_eq!(
            v.check(None, "nobody9", "whatever-pw", Some(ip)).await,
            Err(PasswordFailure::RateLimited)
        );
    }

    #[tokio::test]
    async fn unknown_users_cost_the_same_kdf_run() {
        let v = PasswordVerifier::new(fast());
        assert_eq!(
            v.check(None, "ghost", "some password", None).await,
            Err(PasswordFailure::Invalid)
        );
        assert_eq!(v.kdf_runs(), 1);
        // Repeats are answered from the negative cache.
        assert_eq!(
            v.check(None, "ghost", "some password", None).await,
            Err(PasswordFailure::Invalid)
        );
        assert_eq!(v.kdf_runs(), 1);
    }
}
