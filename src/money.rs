//! Money: an exact decimal amount in the currency's major unit, with its ISO 4217 code, as
//! seed 001 writes it (`{"amount": 2000000, "currency": "SAR"}`, `{"amount": 1000.50, ...}`).
//!
//! - An amount is read as a JSON number or a JSON string (`"1000.50"`), from its text: never
//!   through a float (serde_json keeps numbers' text, its `arbitrary_precision` feature).
//! - It has at most as many decimals as the currency's minor unit (ISO 4217: SAR 2, JPY 0,
//!   KWD 3; a code with no minor unit, such as XAU, takes whole amounts), is not negative and
//!   is below 10^14 in major units.
//! - It is stored as an integer count of minor units, and answered as a JSON number with no
//!   trailing zeros (`1000.5`, `2000000`).
//! - Amounts in different currencies are never compared; amounts in one currency compare
//!   exactly.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::FieldError;

/// Amounts are below this, in major units (so that any amount, in minor units of a currency
/// with up to four decimals, fits a 64-bit integer).
const LIMIT: i64 = 100_000_000_000_000;

/// What a malformed amount is told.
const AMOUNT_RULE: &str =
    "must be a decimal amount in the currency's major unit, as a JSON number or string (1000.50)";

/// `{"amount": 500000, "currency": "SAR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    pub amount: Amount,
    /// ISO 4217 alphabetic code, upper case.
    #[schema(example = "SAR")]
    pub currency: String,
}

/// A decimal amount in a currency's major unit, exactly as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

impl Amount {
    pub fn decimal(self) -> Decimal {
        self.0
    }
}

impl From<i64> for Amount {
    fn from(whole: i64) -> Self {
        Self(Decimal::from(whole))
    }
}

impl FromStr for Amount {
    type Err = ();

    /// A plain decimal: `1000.50`, `-3`, `0.1` (a JSON string's form).
    fn from_str(text: &str) -> Result<Self, ()> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let plain = digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && digits.bytes().last().is_some_and(|b| b.is_ascii_digit());
        if !plain {
            return Err(());
        }
        Decimal::from_str_exact(text).map(Self).map_err(|_| ())
    }
}

impl Amount {
    /// A JSON number's text: a plain decimal, or one with an exponent (`1.5e3`).
    fn from_number_text(text: &str) -> Result<Self, ()> {
        text.parse()
            .or_else(|()| Decimal::from_scientific(text).map(Self).map_err(|_| ()))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.normalize().fmt(f)
    }
}

impl Serialize for Amount {
    /// A JSON number with the amount's digits (`1000.5`), not a float's.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::Number::from_str(&self.to_string()) {
            Ok(number) => number.serialize(serializer),
            Err(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl AmountVisitor {
    fn read<E: de::Error>(text: &str, read: fn(&str) -> Result<Amount, ()>) -> Result<Amount, E> {
        read(text).map_err(|()| E::invalid_value(de::Unexpected::Str(text), &AmountVisitor))
    }
}

impl<'de> Visitor<'de> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(AMOUNT_RULE.trim_start_matches("must be "))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Amount, E> {
        Ok(Amount::from(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(n)))
    }

    /// serde_json hands a number over as a float only when the float's shortest form is the
    /// text that was sent, so the digits read back from it are the client's own.
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Amount, E> {
        if !n.is_finite() {
            return Err(E::invalid_type(de::Unexpected::Float(n), &self));
        }
        Self::read(&n.to_string(), Amount::from_number_text)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Amount, E> {
        Self::read(text, str::parse)
    }

    /// Any other number, with its text kept (serde_json's exact numbers arrive as a map).
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Amount, A::Error> {
        let number = serde_json::Number::deserialize(MapAccessDeserializer::new(map))?;
        Self::read(&number.to_string(), Amount::from_number_text)
    }
}

impl PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        let number = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Number))
            .minimum(Some(0))
            .exclusive_maximum(Some(LIMIT as f64))
            .examples([serde_json::json!(1000.5)]);
        let text = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .pattern(Some(r"^[0-9]+(\.[0-9]+)?$"))
            .examples([serde_json::json!("1000.50")]);
        OneOfBuilder::new()
            .item(number)
            .item(text)
            .description(Some(
                "In the currency's major unit, exactly: at most as many decimals as the \
                 currency's minor unit (ISO 4217: SAR 2, JPY 0, KWD 3), at least 0, below \
                 10^14. Sent as a JSON number or a string; answered as a JSON number.",
            ))
            .into()
    }
}

impl ToSchema for Amount {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Amount")
    }
}

impl Money {
    /// Money from what a store holds: an integer count of the currency's minor units.
    pub fn from_minor(minor: i64, currency: String) -> Self {
        let scale = decimals(&currency);
        Self {
            amount: Amount(Decimal::new(minor, scale)),
            currency,
        }
    }

    /// The amount as an integer count of the currency's minor units, for a store. `None`
    /// for money that [`Money::check`] refuses.
    pub fn minor_units(&self) -> Option<i64> {
        let scaled = self
            .amount
            .0
            .checked_mul(Decimal::from(10i64.pow(decimals(&self.currency))))?;
        if !scaled.fract().is_zero() {
            return None;
        }
        i64::try_from(scaled).ok()
    }

    /// Money as a store keeps it: (minor units, currency), both `None` for no money (or for
    /// money [`Money::check`] refuses, which never reaches a store).
    pub fn stored(money: Option<Money>) -> (Option<i64>, Option<String>) {
        match money.as_ref().and_then(Money::minor_units) {
            Some(minor) => (Some(minor), money.map(|m| m.currency)),
            None => (None, None),
        }
    }

    /// Appends one error per invalid part, under `field.amount` and `field.currency`.
    pub fn check(&self, field: &str, errors: &mut Vec<FieldError>) {
        let at = |part: &str| format!("{field}.{part}");
        let amount = self.amount.0;
        if amount.is_sign_negative() && !amount.is_zero() {
            errors.push(FieldError::new(at("amount"), "must not be negative"));
        } else if amount >= Decimal::new(LIMIT, 0) {
            errors.push(FieldError::new(
                at("amount"),
                "must be below 100000000000000 (10^14)",
            ));
        }
        if !is_iso_4217(&self.currency) {
            errors.push(FieldError::new(
                at("currency"),
                "must be an ISO 4217 currency code such as SAR or EUR",
            ));
        } else {
            let allowed = decimals(&self.currency);
            if amount.normalize().scale() > allowed {
                let message = match allowed {
                    0 => format!(
                        "must be a whole amount: {} has no minor unit",
                        self.currency
                    ),
                    n => format!(
                        "must have at most {n} decimals: {} has {n} in its minor unit",
                        self.currency
                    ),
                };
                errors.push(FieldError::new(at("amount"), message));
            }
        }
    }

    /// Reads a money value out of free-form JSON (such as `approvalData.facilityAmount`):
    /// `None` when absent, an error naming `field` when present but not valid money.
    pub fn from_json(value: Option<&Value>, field: &str) -> Result<Option<Money>, FieldError> {
        let Some(value) = value else { return Ok(None) };
        let money: Money = serde_json::from_value(value.clone()).map_err(|_| {
            FieldError::new(
                field,
                "must be money: {\"amount\": <decimal>, \"currency\": \"<ISO 4217>\"}",
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

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Whether `code` is an ISO 4217 alphabetic currency code (upper case, as the standard writes it).
pub fn is_iso_4217(code: &str) -> bool {
    code.len() == 3
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && iso_currency::Currency::from_code(code).is_some()
}

/// The decimals of `code`'s minor unit, per ISO 4217; 0 for a code without one (XAU, XDR) or
/// not a currency.
pub fn decimals(code: &str) -> u32 {
    iso_currency::Currency::from_code(code)
        .and_then(|c| c.exponent())
        .map_or(0, u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn money(value: Value) -> Result<Money, Vec<FieldError>> {
        let money: Money = serde_json::from_value(value).map_err(|_| vec![])?;
        let mut errors = Vec::new();
        money.check("m", &mut errors);
        if errors.is_empty() {
            Ok(money)
        } else {
            Err(errors)
        }
    }

    fn text(body: &str) -> Value {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn iso_codes_and_their_decimals() {
        assert!(is_iso_4217("SAR"));
        assert!(is_iso_4217("EUR"));
        assert!(!is_iso_4217("sar"));
        assert!(!is_iso_4217("XYZ"));
        assert!(!is_iso_4217("EURO"));
        assert_eq!(decimals("SAR"), 2);
        assert_eq!(decimals("JPY"), 0);
        assert_eq!(decimals("KWD"), 3);
        assert_eq!(decimals("XAU"), 0);
    }

    #[test]
    fn amounts_are_read_exactly_from_numbers_and_strings() {
        for (body, minor) in [
            (r#"{"amount": 1000.50, "currency": "SAR"}"#, 100_050),
            (r#"{"amount": "1000.50", "currency": "SAR"}"#, 100_050),
            (r#"{"amount": 2000000, "currency": "SAR"}"#, 200_000_000),
            (r#"{"amount": 1.5e3, "currency": "JPY"}"#, 1_500),
            (r#"{"amount": 0.001, "currency": "KWD"}"#, 1),
            // Past a float's precision: still exact.
            (
                r#"{"amount": 99999999999999.99, "currency": "SAR"}"#,
                9_999_999_999_999_999,
            ),
            (r#"{"amount": "0.10", "currency": "USD"}"#, 10),
        ] {
            let m = money(text(body)).unwrap_or_else(|e| panic!("{body}: {e:?}"));
            assert_eq!(m.minor_units(), Some(minor), "{body}");
            assert_eq!(Money::from_minor(minor, m.currency.clone()), m, "{body}");
        }
    }

    #[test]
    fn amounts_are_answered_as_numbers_without_trailing_zeros() {
        let m = money(text(r#"{"amount": "1000.50", "currency": "SAR"}"#)).unwrap();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":1000.5,"currency":"SAR"}"#
        );
        let m = Money::from_minor(200_000_000, "SAR".into());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":2000000,"currency":"SAR"}"#
        );
        let m = Money::from_minor(9_999_999_999_999_999, "SAR".into());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":99999999999999.99,"currency":"SAR"}"#
        );
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_refused() {
        for (body, message) in [
            (
                r#"{"amount": 1.005, "currency": "SAR"}"#,
                "must have at most 2 decimals: SAR has 2 in its minor unit",
            ),
            (
                r#"{"amount": "10.5", "currency": "JPY"}"#,
                "must be a whole amount: JPY has no minor unit",
            ),
            (
                r#"{"amount": 0.0001, "currency": "KWD"}"#,
                "must have at most 3 decimals: KWD has 3 in its minor unit",
            ),
            (
                r#"{"amount": -1, "currency": "SAR"}"#,
                "must not be negative",
            ),
            (
                r#"{"amount": 100000000000000, "currency": "SAR"}"#,
                "must be below 100000000000000 (10^14)",
            ),
        ] {
            let errors = money(text(body)).unwrap_err();
            assert_eq!(errors[0].field, "m.amount", "{body}");
            assert_eq!(errors[0].message, message, "{body}");
        }
        // Trailing zeros are not decimals of the amount.
        assert!(money(text(r#"{"amount": "10.000", "currency": "JPY"}"#)).is_ok());
        for bad in [
            r#"{"amount": "ten", "currency": "SAR"}"#,
            r#"{"amount": true, "currency": "SAR"}"#,
            r#"{"amount": "1,000", "currency": "SAR"}"#,
            r#"{"amount": "1e3", "currency": "SAR"}"#,
            r#"{"amount": ".5", "currency": "SAR"}"#,
            r#"{"amount": "", "currency": "SAR"}"#,
        ] {
            assert!(money(text(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_compare_exactly() {
        let a: Amount = "1000000.01".parse().unwrap();
        let b: Amount = "1000000.010".parse().unwrap();
        let c: Amount = "1000000.02".parse().unwrap();
        assert_eq!(a, b);
        assert!(a < c);
    }

    #[test]
    fn money_in_free_json() {
        let ok = json!({"amount": 2_000_000, "currency": "SAR"});
        assert_eq!(
            Money::from_json(Some(&ok), "f").unwrap(),
            Some(Money {
                amount: Amount::from(2_000_000),
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

#[cfg(test)]
mod migration {
    use super::decimals;

    /// The migration that turned stored whole amounts into minor units lists currencies by
    /// their minor unit: each list must agree with ISO 4217 as this crate reads it.
    #[test]
    fn the_minor_unit_migration_agrees_with_iso_4217() {
        for sql in [
            include_str!("../migrations/sqlite/0010_money_in_minor_units.sql"),
            include_str!("../migrations/postgres/0010_money_in_minor_units.sql"),
        ] {
            let mut listed = 0;
            for case in sql.split("WHEN ").skip(1) {
                let (codes, rest) = case.split_once(") THEN ").expect("a list and a factor");
                let factor: u32 = rest
                    .split_whitespace()
                    .next()
                    .and_then(|f| f.parse().ok())
                    .expect("a factor");
                for code in codes.split('\'').skip(1).step_by(2) {
                    assert_eq!(10u32.pow(decimals(code)), factor, "{code}");
                    listed += 1;
                }
            }
            assert!(listed >= 78, "{listed}");
            for two in ["SAR", "USD", "EUR", "AED", "GBP"] {
                assert!(
                    !sql.contains(&format!("'{two}'")),
                    "{two} falls to ELSE 100"
                );
                assert_eq!(decimals(two), 2);
            }
        }
    }
}
