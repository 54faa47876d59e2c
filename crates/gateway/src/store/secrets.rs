//! The master key and the sealing of SigV4 secret access keys.
//!
//! SigV4 needs the secret itself to check a signature (HMAC), so secrets cannot be stored hashed.
//! They are sealed with AES-256-GCM under a 256-bit master key that never enters the database:
//!
//! * `MLGATE_MASTER_KEY` (standard base64 of 32 bytes), if set; otherwise
//! * `<data-dir>/master.key` (the same base64 on one line), created with mode 0600 on first use.
//!
//! Each sealed value is `v1:` + base64(nonce ‖ ciphertext ‖ tag), with a random 96-bit nonce and
//! the access key id as additional authenticated data, so a sealed secret copied onto another
//! key's row does not open. A stolen database alone therefore reveals no usable secret; a wrong
//! master key or a tampered value fails to open ([`SecretError::Open`]), never yields garbage.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "MLGATE_MASTER_KEY";
/// The master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const PREFIX: &str = "v1:";
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key is not valid base64 of 32 bytes ({0})")]
    BadKey(&'static str),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Wrong master key, a value sealed for another key id, or a tampered value.
    #[error("a stored secret could not be opened (wrong master key or tampered value)")]
    Open,
}

/// The AES-256-GCM master key. Cheap to clone; `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey {
    key: Arc<LessSafeKey>,
    /// HMAC-SHA256(master key, [`DERIVATION_LABEL`]): the root of [`MasterKey::derive`], so
    /// derived keys never use the AES key itself.
    derivation: Arc<Zeroizing<[u8; 32]>>,
}

/// The label of the derivation root (domain separation from the AES-GCM use of the key).
const DERIVATION_LABEL: &[u8] = b"mlgate master key derivation v1";

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError::BadKey("wrong length"));
        }
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::BadKey("rejected"))?;
        Ok(MasterKey {
            key: Arc::new(LessSafeKey::new(unbound)),
            derivation: Arc::new(Zeroizing::new(hmac_sha256(bytes, DERIVATION_LABEL))),
        })
    }

    /// A 256-bit key for `purpose`, derived from the master key (HMAC-SHA256 of the purpose
    /// under the derivation root): the same on every replica and across restarts, different
    /// for every purpose, and revealing nothing about the master key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.derivation[..], purpose.as_bytes())
    }

    /// A key from its base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<MasterKey, SecretError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| SecretError::BadKey("not base64"))?,
        );
        MasterKey::from_bytes(&bytes)
    }

    /// A fresh random key and its base64 text.
    pub fn generate() -> (MasterKey, Zeroizing<String>) {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).expect("OS random number generator");
        let text = Zeroizing::new(STANDARD.encode(bytes.as_ref()));
        let key = MasterKey::from_bytes(bytes.as_ref()).expect("32 bytes");
        (key, text)
    }

    /// `MLGATE_MASTER_KEY` if set, else `<data_dir>/master.key`, created (0600) if missing.
    pub fn load_or_create(data_dir: &Path) -> Result<MasterKey, SecretError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV)
            && !text.trim().is_empty()
        {
            return MasterKey::from_base64(&text);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let io_err = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let mode = fs::metadata(&path).map_err(io_err)?.permissions().mode();
                if mode & 0o077 != 0 {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                        .map_err(io_err)?;
                    tracing::warn!(path = %path.display(), "master key file was readable by others; tightened it to 0600");
                }
                MasterKey::from_base64(&Zeroizing::new(text))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io_err)?;
                }
                let (key, text) = MasterKey::generate();
                // create_new: two processes starting at once must not both write a key.
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                {
                    Ok(mut file) => {
                        file.write_all(text.as_bytes()).map_err(io_err)?;
                        file.write_all(b"\n").map_err(io_err)?;
                        file.sync_all().map_err(io_err)?;
                        tracing::info!(path = %path.display(), "generated a new master key");
                        Ok(key)
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => MasterKey::from_base64(
                        &Zeroizing::new(fs::read_to_string(&path).map_err(io_err)?),
                    ),
                    Err(e) => Err(io_err(e)),
                }
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Seals `secret` for the access key `key_id`.
    pub fn seal(&self, key_id: &str, secret: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("OS random number generator");
        let mut buf = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(key_id)),
                &mut buf,
            )
            .expect("AES-GCM seal of a short secret");
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        buf.iter_mut().for_each(|b| *b = 0);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a value sealed by [`Self::seal`] for `key_id`.
    pub fn open(&self, key_id: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let b64 = sealed.strip_prefix(PREFIX).ok_or(SecretError::Open)?;
        let raw = STANDARD.decode(b64).map_err(|_| SecretError::Open)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad(key_id)), &mut buf)
            .map_err(|_| SecretError::Open)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

fn aad(key_id: &str) -> Vec<u8> {
    let mut v = b"mlgate-sigv4-secret:".to_vec();
    v.extend_from_slice(key_id.as_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_depend_on_the_key_and_the_purpose_only() {
        let a = MasterKey::from_bytes(&[1; 32]).unwrap();
        let again = MasterKey::from_bytes(&[1; 32]).unwrap();
        let b = MasterKey::from_bytes(&[2; 32]).unwrap();
        assert_eq!(a.derive("x"), again.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        assert_ne!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), [1; 32]);
    }

    #[test]
    fn round_trip_tamper_and_wrong_key() {
        let (key, _) = MasterKey::generate();
        let sealed = key.seal("AKIAEXAMPLE", b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("wJalr"));
        assert_eq!(
            key.open("AKIAEXAMPLE", &sealed).unwrap().as_slice(),
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        // Two seals of the same secret differ (random nonce).
        assert_ne!(
            sealed,
            key.seal("AKIAEXAMPLE", b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        );
        // Bound to the key id.
        assert!(matches!(
            key.open("AKIAOTHER", &sealed),
            Err(SecretError::Open)
        ));
        // Any flipped byte fails.
        let raw = STANDARD.decode(&sealed[3..]).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 1;
            let tampered = format!("v1:{}", STANDARD.encode(&t));
            assert!(key.open("AKIAEXAMPLE", &tampered).is_err(), "byte {i}");
        }
        assert!(key.open("AKIAEXAMPLE", "v1:AAAA").is_err());
        assert!(key.open("AKIAEXAMPLE", "plain").is_err());
        // Another master key cannot open it.
        let (other, _) = MasterKey::generate();
        assert!(other.open("AKIAEXAMPLE", &sealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY-free: only reads the env; make sure it is not set for this test's logic.
        if std::env::var(MASTER_KEY_ENV).is_ok() {
            return;
        }
        let a = MasterKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load_or_create(dir.path()).unwrap();
        let sealed = a.seal("AKIAX", b"secret");
        assert_eq!(b.open("AKIAX", &sealed).unwrap().as_slice(), b"secret");
        assert!(MasterKey::from_base64("bm90IDMyIGJ5dGVz").is_err());
    }
}
