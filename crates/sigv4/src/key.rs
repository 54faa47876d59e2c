//! SigV4 signing keys and a bounded cache of them.
//!
//! A signing key is `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//! "aws4_request")`: four HMACs per derivation. It is valid for one access key, day, region and
//! service, so caching it per credential scope turns verification into one hash of the
//! canonical request and one HMAC.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::verify::PendingSignature;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A derived SigV4 signing key for one (access key, date, region, service). Zeroed on drop;
/// `Debug` does not show it.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl SigningKey {
    /// Derives the key from a secret access key and the scope parts (`date` is `YYYYMMDD`).
    pub fn derive(secret_access_key: &[u8], date: &str, region: &str, service: &str) -> Self {
        let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret_access_key);
        let k_date = Zeroizing::new(hmac(&k_secret, &[date.as_bytes()]));
        let k_region = Zeroizing::new(hmac(&*k_date, &[region.as_bytes()]));
        let k_service = Zeroizing::new(hmac(&*k_region, &[service.as_bytes()]));
        Self(hmac(&*k_service, &[b"aws4_request"]))
    }

    /// `HMAC(key, parts...)`: the signature of a string to sign given in pieces.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac(&self.0, parts)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

struct Entry {
    day: i64,
    key: SigningKey,
}

/// A bounded, thread-safe map from `access key id/date/region/service` to its signing key.
///
/// It has no clock: keys for old dates stop being looked up once clients sign with a new date,
/// and are evicted when the map is full. It does not know whether an access key is still
/// active: check the key's status before trusting a cached key, and call
/// [`SigningKeyCache::remove_access_key`] when a key is deactivated or deleted.
pub struct SigningKeyCache {
    capacity: usize,
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl SigningKeyCache {
    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // No code path panics while holding the lock, and the map stays consistent if one did.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached key for the pending signature's credential scope.
    pub fn get(&self, pending: &PendingSignature<'_>) -> Option<SigningKey> {
        self.lock()
            .get(pending.credential().key_id())
            .map(|e| e.key.clone())
    }

    /// Caches `key` for the pending signature's credential scope. When full, drops keys dated
    /// before the day preceding this one; if that frees nothing, starts over empty.
    pub fn insert(&self, pending: &PendingSignature<'_>, key: SigningKey) {
        let day = pending.scope_day();
        let mut entries = self.lock();
        let id = pending.credential().key_id();
        if entries.len() >= self.capacity && !entries.contains_key(id) {
            entries.retain(|_, e| e.day >= day - 1);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(id.into(), Entry { day, key });
    }

    /// Forgets every key derived for `access_key_id`.
    pub fn remove_access_key(&self, access_key_id: &str) {
        self.lock().retain(|id, _| {
            id.split_once('/')
                .is_none_or(|(akid, _)| akid != access_key_id)
        });
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::hex32;

    #[test]
    fn derives_the_documented_key() {
        // The worked example in AWS's SigV4 documentation ("Examples of how to derive a signing
        // key"): secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let key = SigningKey::derive(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            &hex32(&key.0),
            b"f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        assert_eq!(format!("{key:?}"), "SigningKey(..)");
    }
}
