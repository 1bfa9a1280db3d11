//! The rules every capability checks its input by: text lengths, slugs, e-mail addresses,
//! E.164 phone numbers and BCP 47 language tags. They sit here, beside the API's other
//! primitives, so that no capability imports another for a shared rule.

use crate::error::FieldError;

/// What [`is_slug`] requires, as an error message.
pub const SLUG_RULE: &str = "must be 1 to 64 characters of a-z, 0-9 or _";

/// Categories and outcomes: 1 to 64 characters of `[a-z0-9_]`.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Appends an error if `value` is longer than `max` characters (or blank, when `required`).
pub fn check_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) {
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

/// An e-mail address as Omnirail accepts it: one `@`, a dotted domain, no spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A phone number in E.164: `+`, then 7 to 15 digits, not starting with 0.
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A BCP 47 language tag (`en`, `ar-SA`, `zh-Hant-TW`).
pub fn is_language_tag(s: &str) -> bool {
    language_tags::LanguageTag::parse(s).is_ok_and(|t| t.validate().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones() {
        assert!(is_email("sara@bank.example"));
        assert!(!is_email("sara@bank"));
        assert!(!is_email("sara bank@x.example"));
        assert!(!is_email("@bank.example"));
        assert!(is_e164("+966501234567"));
        assert!(!is_e164("0501234567"));
        assert!(!is_e164("+0123456789"));
    }

    #[test]
    fn language_tags_follow_bcp_47() {
        assert!(is_language_tag("en"));
        assert!(is_language_tag("ar-SA"));
        assert!(is_language_tag("zh-Hant-TW"));
        assert!(!is_language_tag("english"));
        assert!(!is_language_tag("en_US"));
        assert!(!is_language_tag(""));
    }

    #[test]
    fn slugs() {
        assert!(is_slug("limit_increase"));
        assert!(!is_slug("Limit-Increase"));
        assert!(!is_slug(""));
        assert!(!is_slug(&"a".repeat(65)));
    }
}
