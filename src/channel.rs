//! The one list of channels. Seed 001 writes them lowercase (`mobile_ios`), seed 000 uppercase
//! (`MOBILE_IOS`): each rail answers in its own case and accepts either.

use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A customer touchpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Channel {
    Web,
    MobileIos,
    MobileAndroid,
    Api,
    Webhook,
    Branch,
    CallCenter,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::Web,
        Channel::MobileIos,
        Channel::MobileAndroid,
        Channel::Api,
        Channel::Webhook,
        Channel::Branch,
        Channel::CallCenter,
    ];

    /// Seed 001's spelling: `mobile_ios`.
    pub fn as_lower(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::MobileIos => "mobile_ios",
            Channel::MobileAndroid => "mobile_android",
            Channel::Api => "api",
            Channel::Webhook => "webhook",
            Channel::Branch => "branch",
            Channel::CallCenter => "call_center",
        }
    }
}

impl FromStr for Channel {
    type Err = String;

    /// Accepts either case: `mobile_ios` or `MOBILE_IOS`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Channel::ALL
            .into_iter()
            .find(|c| c.as_lower() == lower)
            .ok_or_else(|| {
                format!(
                    "must be one of: {} (in either case)",
                    Channel::ALL.map(Channel::as_lower).join(", ")
                )
            })
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_lower())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A channel as seed 000 writes it (`MOBILE_IOS`); accepts either case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
#[schema(value_type = String, example = "MOBILE_IOS")]
pub struct UpperChannel(pub Channel);

impl UpperChannel {
    pub fn as_upper(self) -> String {
        self.0.as_lower().to_ascii_uppercase()
    }
}

impl Serialize for UpperChannel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_upper())
    }
}

impl<'de> Deserialize<'de> for UpperChannel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Channel::deserialize(d).map(UpperChannel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_either_case_and_answers_lowercase() {
        let c: Channel = serde_json::from_str("\"MOBILE_IOS\"").unwrap();
        assert_eq!(c, Channel::MobileIos);
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"mobile_ios\"");
        assert!("fax".parse::<Channel>().is_err());
    }
}
