//! The whole numbers a request may carry, each with its range. A type here is the one place
//! its range is written: reading a request refuses a number outside it (with every other
//! problem of the body, in the API's words), and the OpenAPI document shows it as `minimum`
//! and `maximum`. A test walks the document and fails on any number a request takes without
//! both, so a new field cannot arrive unbounded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Declares a whole-number type that holds only values in `min..=max`.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident: $min:literal ..= $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub const MIN: i64 = $min;
            pub const MAX: i64 = $max;

            /// `Some` when `n` is in range.
            pub fn new(n: i64) -> Option<Self> {
                (Self::MIN..=Self::MAX).contains(&n).then_some(Self(n))
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let n = deserializer.deserialize_any(Whole {
                    min: Self::MIN,
                    max: Self::MAX,
                })?;
                Ok(Self(n))
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                integer(Self::MIN, Self::MAX)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

bounded!(
    /// A count of hours: from 1 to 87,600 (ten years). Step timeouts and journey SLAs.
    Hours: 1 ..= 87_600
);

impl Hours {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.unsigned_abs() * 3600)
    }
}

bounded!(
    /// A count of days: from 1 to 3,650 (ten years).
    Days: 1 ..= 3_650
);

bounded!(
    /// Where a step runs among its template's steps: from 1 to 1,000,000 (room for
    /// numbering by tens or hundreds).
    StepOrder: 1 ..= 1_000_000
);

bounded!(
    /// A length in characters of a form's text field: from 1 to 1,024.
    TextLength: 1 ..= 1_024
);

bounded!(
    /// A TCP port: from 1 to 65,535.
    Port: 1 ..= 65_535
);

impl Port {
    /// Mail submission, 587.
    pub const SUBMISSION: Self = Self(587);

    pub fn number(self) -> u16 {
        u16::try_from(self.0).unwrap_or(u16::MAX)
    }
}

/// The schema of a whole number from `min` to `max`.
fn integer(min: i64, max: i64) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .into()
}

/// Reads a JSON number that is whole and within `min..=max`.
struct Whole {
    min: i64,
    max: i64,
}

impl Whole {
    fn check<E: de::Error>(&self, n: i64, unexpected: Unexpected) -> Result<i64, E> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(E::invalid_value(unexpected, self))
        }
    }
}

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number from {} to {}", self.min, self.max)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i64, E> {
        self.check(n, Unexpected::Signed(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i64, E> {
        match i64::try_from(n) {
            Ok(signed) => self.check(signed, Unexpected::Unsigned(n)),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(n), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_in_range_are_read_and_others_refused_in_the_apis_words() {
        assert_eq!(
            serde_json::from_value::<Hours>(json!(48)).unwrap(),
            Hours::new(48).unwrap()
        );
        assert_eq!(Hours::new(87_600).map(Hours::get), Some(87_600));
        for bad in [
            json!(0),
            json!(-1),
            json!(87_601),
            json!(99_999_999_999u64),
            json!(u64::MAX),
            json!(1.5),
            json!(48.0),
            json!("48"),
        ] {
            let err = serde_json::from_value::<Hours>(bad.clone())
                .unwrap_err()
                .to_string();
            assert!(
                err.ends_with("expected a whole number from 1 to 87600"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_schema_shows_the_range() {
        let schema = serde_json::to_value(Port::schema()).unwrap();
        assert_eq!(schema["minimum"], 1);
        assert_eq!(schema["maximum"], 65_535);
        assert_eq!(Port::name(), "Port");
    }
}
