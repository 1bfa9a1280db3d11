//! Identifiers and secrets: prefixed random ids, random tokens and their stored hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A new id: `prefix`, the moment it was made (milliseconds since the epoch, 12 hex digits),
/// then 128 random bits, all lowercase hex (`jrn_019ae3c1f2a83f9c...`).
///
/// The random bits make an id unguessable; the time in front makes ids made later sort after
/// those made before, so the indexes keyed by them grow at one end instead of at a random
/// page each (`docs/decisions.md`, "The write path"). Nothing reads the time back: ordering
/// is by the stored times, never by ids.
pub fn new_id(prefix: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    id_of(prefix, ms, &bytes)
}

/// The id of `prefix`, a moment (its low 48 bits: until the year 10889) and random bits.
fn id_of(prefix: &str, ms: u128, random: &[u8; 16]) -> String {
    let ms = ms & 0xffff_ffff_ffff;
    format!("{prefix}{ms:012x}{}", hex::encode(random))
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

/// Template ids given by clients: `tmpl_` followed by `[a-z0-9_]`, at most 64 characters.
pub fn is_template_id(id: &str) -> bool {
    id.len() <= 64
        && id.strip_prefix("tmpl_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_time_and_128_random_bits() {
        let id = new_id("jrn_");
        assert!(id.starts_with("jrn_"));
        assert_eq!(id.len(), 4 + 12 + 32);
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(new_id("jrn_"), id);
    }

    #[test]
    fn ids_made_later_sort_after_whatever_their_random_bits() {
        let now = 1_764_800_000_000;
        let first = id_of("evt_", now, &[0xff; 16]);
        let later = id_of("evt_", now + 1, &[0; 16]);
        assert!(later > first, "{later} sorts after {first}");
        assert_eq!(&first[4..16], "019ae646f000");
        // The year 9000 still fits in 12 hex digits (48 bits last until 10889).
        let year_9000 = id_of("evt_", 7_030 * 365 * 86_400_000, &[0; 16]);
        assert!(year_9000 > later);
        assert_eq!(year_9000.len(), 4 + 12 + 32);
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
