//! Identifiers and secrets: prefixed random ids, random tokens and their stored hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A new id: `prefix` followed by 128 random bits in lowercase hex (`jrn_3f9c...`).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A new secret: `prefix` followed by 256 random bits, URL-safe base64.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256, the form in which secrets are stored. The secrets are 256 random bits, so a
/// fast hash suffices: there is nothing to brute-force that a slow hash would protect.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(data.as_ref()))
}

/// What [`is_external_id`] requires, as an error message.
pub const ID_RULE: &str = "must be 1 to 128 characters of letters, digits, _ - . or :";

/// Whether a client-given identifier is safe to accept: 1 to 128 characters of
/// `[A-Za-z0-9_.:-]`. Used for the tenant's own ids (`usr_...`, `ent_...`).
pub fn is_external_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_and_128_bits() {
        let id = new_id("jrn_");
        assert!(id.starts_with("jrn_"));
        assert_eq!(id.len(), 4 + 32);
        assert_ne!(new_id("jrn_"), id);
    }

    #[test]
    fn secrets_are_256_bits_and_hash_stably() {
        let s = new_secret("omk_");
        assert_eq!(s.len(), 4 + 43);
        assert_eq!(sha256_hex(&s), sha256_hex(&s));
        assert_ne!(sha256_hex(&s), sha256_hex(new_secret("omk_")));
    }

    #[test]
    fn external_ids_refuse_quotes_and_sql() {
        assert!(is_external_id("ent_customer_456"));
        assert!(is_external_id("usr-rm.001"));
        assert!(!is_external_id(""));
        assert!(!is_external_id("x' OR '1'='1"));
        assert!(!is_external_id(&"a".repeat(129)));
    }
}
