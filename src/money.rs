//! Money as DESIGN.md defines it: an integer amount in the currency's minor or major unit as
//! the bank uses it, with an ISO 4217 code. Amounts in different currencies are never compared.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::FieldError;

/// `{"amount": 500000, "currency": "SAR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Zero or more.
    #[schema(example = 500000)]
    pub amount: i64,
    /// ISO 4217 alphabetic code, upper case.
    #[schema(example = "SAR")]
    pub currency: String,
}

impl Money {
    /// Appends one error per invalid part, under `field.amount` and `field.currency`.
    pub fn check(&self, field: &str, errors: &mut Vec<FieldError>) {
        if self.amount < 0 {
            errors.push(FieldError::new(
                format!("{field}.amount"),
                "must not be negative",
            ));
        }
        if !is_iso_4217(&self.currency) {
            errors.push(FieldError::new(
                format!("{field}.currency"),
                "must be an ISO 4217 currency code such as SAR or EUR",
            ));
        }
    }

    /// Reads a money value out of free-form JSON (such as `approvalData.facilityAmount`):
    /// `None` when absent, an error naming `field` when present but not valid money.
    pub fn from_json(value: Option<&Value>, field: &str) -> Result<Option<Money>, FieldError> {
        let Some(value) = value else { return Ok(None) };
        let money: Money = serde_json::from_value(value.clone()).map_err(|_| {
            FieldError::new(
                field,
                "must be money: {\"amount\": <integer>, \"currency\": \"<ISO 4217>\"}",
            )
        })?;
        let mut errors = Vec::new();
        money.check(field, &mut errors);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(Some(money)),
        }
    }
}

/// Whether `code` is an ISO 4217 alphabetic currency code (upper case, as the standard writes it).
pub fn is_iso_4217(code: &str) -> bool {
    code.len() == 3
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && iso_currency::Currency::from_code(code).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iso_codes() {
        assert!(is_iso_4217("SAR"));
        assert!(is_iso_4217("EUR"));
        assert!(!is_iso_4217("sar"));
        assert!(!is_iso_4217("XYZ"));
        assert!(!is_iso_4217("EURO"));
    }

    #[test]
    fn money_in_free_json() {
        let ok = json!({"amount": 2_000_000, "currency": "SAR"});
        assert_eq!(
            Money::from_json(Some(&ok), "f").unwrap(),
            Some(Money {
                amount: 2_000_000,
                currency: "SAR".into()
            })
        );
        assert_eq!(Money::from_json(None, "f").unwrap(), None);
        assert!(Money::from_json(Some(&json!("2000000 SAR")), "f").is_err());
        let negative = json!({"amount": -1, "currency": "SAR"});
        assert_eq!(
            Money::from_json(Some(&negative), "f").unwrap_err().field,
            "f.amount"
        );
    }
}
