//! Which channels a plan includes and which are on (seed 000: Subscription Tier Availability).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::channel::Channel;

string_enum!(
    /// A tenant's subscription tier.
    Plan {
        Starter = "starter",
        Professional = "professional",
        Enterprise = "enterprise",
        Custom = "custom",
    }
);

impl Plan {
    /// Whether the plan includes omnichannel features at all.
    pub fn includes_omnichannel(self) -> bool {
        self != Plan::Starter
    }

    /// Whether the plan includes `channel`: Professional the core channels, Enterprise and
    /// Custom every channel, Starter none.
    pub fn includes(self, channel: Channel) -> bool {
        match self {
            Plan::Starter => false,
            Plan::Professional => matches!(
                channel,
                Channel::Web | Channel::MobileIos | Channel::MobileAndroid
            ),
            Plan::Enterprise | Plan::Custom => true,
        }
    }

    /// Whether an included channel is on until the tenant says otherwise: on Custom, channels
    /// are chosen one by one, so each starts off.
    pub fn on_by_default(self, channel: Channel) -> bool {
        self.includes(channel) && self != Plan::Custom
    }

    /// Whether `channel` is on, given the tenant's own setting for it (if any).
    pub fn enabled(self, channel: Channel, setting: Option<bool>) -> bool {
        self.includes(channel) && setting.unwrap_or_else(|| self.on_by_default(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_include_and_enable_channels() {
        assert!(!Plan::Starter.includes_omnichannel());
        assert!(Plan::Professional.enabled(Channel::MobileIos, None));
        assert!(!Plan::Professional.includes(Channel::Branch));
        assert!(!Plan::Professional.enabled(Channel::Branch, Some(true)));
        assert!(Plan::Enterprise.enabled(Channel::CallCenter, None));
        assert!(!Plan::Enterprise.enabled(Channel::Web, Some(false)));
        assert!(!Plan::Custom.enabled(Channel::Web, None));
        assert!(Plan::Custom.enabled(Channel::Web, Some(true)));
    }
}
