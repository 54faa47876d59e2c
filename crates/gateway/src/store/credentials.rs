//! Generation of SigV4 access key ids, secret access keys and STS session tokens, from the OS
//! random number generator.

use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `prefix` + 16 random base32 characters (80 bits): `AKIA…` for long-term keys, `ASIA…` for
/// temporary ones, as AWS spells them.
pub fn new_access_key_id(prefix: &str) -> String {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).expect("OS random number generator");
    let mut s = String::with_capacity(prefix.len() + 16);
    s.push_str(prefix);
    s.extend(buf.iter().map(|b| char::from(BASE32[usize::from(b & 31)])));
    s
}

/// A 40-character secret access key (240 random bits, base64 alphabet as AWS's).
pub fn new_secret_access_key() -> Zeroizing<String> {
    let mut buf = Zeroizing::new([0u8; 30]);
    getrandom::fill(buf.as_mut()).expect("OS random number generator");
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(buf.as_ref()))
}

/// An opaque session token (384 random bits).
pub fn new_session_token() -> Zeroizing<String> {
    let mut buf = Zeroizing::new([0u8; 48]);
    getrandom::fill(buf.as_mut()).expect("OS random number generator");
    Zeroizing::new(format!(
        "MLGATE{}",
        base64::engine::general_purpose::STANDARD.encode(buf.as_ref())
    ))
}

/// The hex SHA-256 of a session token, as stored.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_the_aws_shape() {
        let id = new_access_key_id("AKIA");
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(id, new_access_key_id("AKIA"));
        let secret = new_secret_access_key();
        assert_eq!(secret.len(), 40);
        assert!(new_session_token().len() > 64);
    }
}
