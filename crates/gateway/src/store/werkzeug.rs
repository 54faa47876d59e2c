//! Password hashes written by MLflow's basic-auth (Werkzeug's `generate_password_hash`), kept
//! by `mlgate import mlflow-basic-auth` so its users sign in with the passwords they have. The
//! first successful sign-in replaces one with argon2id (`docs/basic-auth.md`).
//!
//! The formats Werkzeug writes, always with their parameters: `scrypt:<n>:<r>:<p>$<salt>$<hex>`
//! (64-byte key) and `pbkdf2:<sha256|sha512>:<iterations>$<salt>$<hex>` (a key of the digest's
//! size); the salt's text is the salt. Parameters are bounded, so a stored hash cannot make a
//! sign-in cost more than Werkzeug's defaults many times over.

use hmac::Hmac;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The largest scrypt cost accepted (`n`, a power of two; Werkzeug's default is 2^15).
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 16;
/// Werkzeug 3's default is 1,000,000.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// A parsed Werkzeug hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WerkzeugHash {
    kdf: Kdf,
    salt: String,
    key: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kdf {
    Scrypt { log_n: u8, r: u32, p: u32 },
    Pbkdf2Sha256 { iterations: u32 },
    Pbkdf2Sha512 { iterations: u32 },
}

/// Whether a stored hash is in one of Werkzeug's formats (rather than an argon2id PHC string).
pub fn is_werkzeug(hash: &str) -> bool {
    hash.starts_with("scrypt:") || hash.starts_with("pbkdf2:")
}

/// What is wrong with a stored hash; never what it holds.
#[derive(Debug, thiserror::Error)]
pub enum WerkzeugHashError {
    #[error("not a Werkzeug hash (method$salt$hash)")]
    NotWerkzeug,
    #[error("parameter {parameter:?} of {method:?} is not a number")]
    NotANumber { method: String, parameter: String },
    #[error("scrypt n = {0} is not a power of two")]
    ScryptCost(u32),
    #[error("scrypt parameters {n}:{r}:{p} are out of bounds")]
    ScryptBounds { n: u32, r: u32, p: u32 },
    #[error("pbkdf2 iterations {0} are out of bounds")]
    Pbkdf2Iterations(u32),
    #[error("pbkdf2 digest {0:?} is not supported")]
    Pbkdf2Digest(String),
    #[error("method {0:?} is not one Werkzeug writes (scrypt:n:r:p, pbkdf2:sha256:iterations)")]
    Method(String),
    #[error("the hash is not hexadecimal")]
    NotHex,
    #[error("the hash is {found} bytes long, {expected} expected")]
    Length { found: usize, expected: usize },
}

impl WerkzeugHash {
    /// Reads a hash; the error says what is wrong with it, never what it holds.
    pub fn parse(hash: &str) -> Result<WerkzeugHash, WerkzeugHashError> {
        let mut parts = hash.split('$');
        let (Some(method), Some(salt), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(WerkzeugHashError::NotWerkzeug);
        };
        let args: Vec<&str> = method.split(':').collect();
        let number = |s: &str| {
            s.parse::<u32>().map_err(|_| WerkzeugHashError::NotANumber {
                method: args[0].to_owned(),
                parameter: s.to_owned(),
            })
        };
        let kdf = match args.as_slice() {
            ["scrypt", n, r, p] => {
                let n = number(n)?;
                let (r, p) = (number(r)?, number(p)?);
                if !n.is_power_of_two() || n < 2 {
                    return Err(WerkzeugHashError::ScryptCost(n));
                }
                let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
                if log_n > MAX_SCRYPT_LOG_N
                    || r == 0
                    || r > MAX_SCRYPT_R
                    || p == 0
                    || p > MAX_SCRYPT_P
                {
                    return Err(WerkzeugHashError::ScryptBounds { n, r, p });
                }
                Kdf::Scrypt { log_n, r, p }
            }
            ["pbkdf2", digest, iterations] => {
                let iterations = number(iterations)?;
                if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
                    return Err(WerkzeugHashError::Pbkdf2Iterations(iterations));
                }
                match *digest {
                    "sha256" => Kdf::Pbkdf2Sha256 { iterations },
                    "sha512" => Kdf::Pbkdf2Sha512 { iterations },
                    other => return Err(WerkzeugHashError::Pbkdf2Digest(other.to_owned())),
                }
            }
            _ => return Err(WerkzeugHashError::Method(args[0].to_owned())),
        };
        let key = hex::decode(hex).map_err(|_| WerkzeugHashError::NotHex)?;
        if key.len() != kdf.key_len() {
            return Err(WerkzeugHashError::Length {
                found: key.len(),
                expected: kdf.key_len(),
            });
        }
        Ok(WerkzeugHash {
            kdf,
            salt: salt.to_owned(),
            key,
        })
    }

    /// Whether `password` is the one hashed. Blocking (scrypt and pbkdf2 are slow on purpose).
    pub fn verify(&self, password: &str) -> bool {
        let mut derived = vec![0u8; self.key.len()];
        let (password, salt) = (password.as_bytes(), self.salt.as_bytes());
        let ok = match self.kdf {
            Kdf::Scrypt { log_n, r, p } => scrypt::Params::new(log_n, r, p, derived.len())
                .is_ok_and(|params| scrypt::scrypt(password, salt, &params, &mut derived).is_ok()),
            Kdf::Pbkdf2Sha256 { iterations } => {
                pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut derived).is_ok()
            }
            Kdf::Pbkdf2Sha512 { iterations } => {
                pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, iterations, &mut derived).is_ok()
            }
        };
        ok && bool::from(derived.ct_eq(&self.key))
    }
}

impl Kdf {
    fn key_len(self) -> usize {
        match self {
            Kdf::Scrypt { .. } | Kdf::Pbkdf2Sha512 { .. } => 64,
            Kdf::Pbkdf2Sha256 { .. } => 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with werkzeug.security.generate_password_hash("correct horse", method=...).
    const SCRYPT: &str = "scrypt:32768:8:1$q3NtCRZ851JBcIAQ$f38f0a61104fba72918e07ed0b5b576e27c58131dd0770c1d1acdc616e33c489f03583785bb38d8e1c5116e57014e4af4af16bd41448e2b26b4d693030d9ed29";
    const PBKDF2: &str = "pbkdf2:sha256:1000$Sl7cqAUMSygDZZcn$3f58184fff665c5aecaf503239f7f407a1b18f3a5f5a00ea8ff18d2a3aac9fbb";
    const PBKDF2_SHA512: &str = "pbkdf2:sha512:1000$EBw4rJ0arjlulIuE$5426c793531453130dddf86198e3166be398bd8f69a861c7d871705afd94589a0d0afb5e8a6ffaff348a51a025170093b2b4ca83a455019e4f77fb5534f4b622";

    #[test]
    fn werkzeug_hashes_verify() {
        for stored in [SCRYPT, PBKDF2, PBKDF2_SHA512] {
            let hash = WerkzeugHash::parse(stored).unwrap();
            assert!(hash.verify("correct horse"), "{stored}");
            assert!(!hash.verify("wrong horse"), "{stored}");
        }
    }

    #[test]
    fn other_formats_are_refused_by_name() {
        let cases = [
            ("md5$x$y", "method \"md5\""),
            ("pbkdf2:sha1:1000$s$00", "digest \"sha1\""),
            ("scrypt:1000:8:1$s$00", "not a power of two"),
            ("scrypt:2097152:8:1$s$00", "out of bounds"),
            ("pbkdf2:sha256:0$s$00", "out of bounds"),
            ("pbkdf2:sha256$s$00", "method \"pbkdf2\""),
            ("pbkdf2:sha256:1000$s$zz", "not hexadecimal"),
            ("pbkdf2:sha256:1000$s$00", "1 bytes long"),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                "not a Werkzeug hash",
            ),
        ];
        for (stored, error) in cases {
            let e = WerkzeugHash::parse(stored).unwrap_err().to_string();
            assert!(e.contains(error), "{stored}: {e}");
        }
        assert!(is_werkzeug(SCRYPT) && is_werkzeug(PBKDF2));
        assert!(!is_werkzeug("$argon2id$v=19$..."));
    }
}
