//! What an API key may do: its scopes, and the scope each route needs.
//!
//! A key holds one or more scopes:
//! - `admin`: everything, including what guards the tenant's keys and credentials (the
//!   `api-keys` API, the identity provider, the notification providers);
//! - `full`: everything else;
//! - `read`: every read (`GET`) of everything else;
//! - `<area>:read` and `<area>:write` for one area of the API ([`Area`]): `write` is every
//!   call of the area, `read` its reads. A branch kiosk's key, which may only start onboarding
//!   sessions, holds `onboarding:write`.
//!
//! Every route a key reaches is in exactly one area, by its path ([`AREAS`]), or is an admin
//! route; a route in none is refused to every key but an admin one (so a route added without
//! an area fails closed, and `every_keyed_route_has_an_area` fails).

use std::fmt;

use axum::http::Method;

macro_rules! areas {
    ($($variant:ident = $text:literal),+ $(,)?) => {
        /// An area of the API, as scopes name it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Area { $($variant),+ }

        impl Area {
            pub const ALL: &'static [Area] = &[$(Area::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Area::$variant => $text),+ }
            }
        }
    };
}

areas! {
    Journeys = "journeys",
    Templates = "templates",
    Approvals = "approvals",
    Delegations = "delegations",
    Directory = "directory",
    Customers = "customers",
    Timeline = "timeline",
    Sessions = "sessions",
    Onboarding = "onboarding",
    Notifications = "notifications",
    Webhooks = "webhooks",
    Channels = "channels",
    Analytics = "analytics",
    Sla = "sla",
}

/// Each route's area by the start of its path (the longest match wins); `None`: an admin
/// route.
pub const AREAS: &[(&str, Option<Area>)] = &[
    ("/api/v1/omni/api-keys", None),
    ("/api/v1/omni/identity-provider", None),
    ("/api/v1/omni/notification-providers", None),
    ("/api/v1/omni/retention", None),
    ("/api/v1/customers/{customer_id}/erasure", None),
    ("/api/v1/omni/journeys", Some(Area::Journeys)),
    ("/api/v1/omni/templates", Some(Area::Templates)),
    ("/api/v1/omni/approvals", Some(Area::Approvals)),
    ("/api/v1/omni/delegations", Some(Area::Delegations)),
    ("/api/v1/omni/users", Some(Area::Directory)),
    ("/api/v1/omni/teams", Some(Area::Directory)),
    ("/api/v1/customers", Some(Area::Customers)),
    ("/api/v1/omni/timeline", Some(Area::Timeline)),
    ("/api/v1/sessions", Some(Area::Sessions)),
    ("/omni/start", Some(Area::Onboarding)),
    ("/api/v1/omni/onboarding", Some(Area::Onboarding)),
    ("/api/v1/omni/notifications", Some(Area::Notifications)),
    ("/api/v1/omni/notification-rules", Some(Area::Notifications)),
    (
        "/api/v1/omni/notification-templates",
        Some(Area::Notifications),
    ),
    ("/api/v1/omni/webhooks", Some(Area::Webhooks)),
    ("/api/v1/channels", Some(Area::Channels)),
    ("/api/v1/analytics", Some(Area::Analytics)),
    ("/api/v1/omni/analytics", Some(Area::Analytics)),
    ("/api/v1/omni/sla", Some(Area::Sla)),
];

/// Reading or changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Admin,
    Area(Area, Access),
    /// A route in no area: only `admin` reaches it.
    Unknown,
}

impl Need {
    /// What a call of `method` on the route `path` (its pattern: `/api/v1/omni/journeys/{id}`)
    /// needs.
    pub fn of(method: &Method, path: &str) -> Need {
        let access = if method == Method::GET || method == Method::HEAD {
            Access::Read
        } else {
            Access::Write
        };
        let found = AREAS
            .iter()
            .filter(|(prefix, _)| {
                path.strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|(prefix, _)| prefix.len());
        match found {
            None => Need::Unknown,
            Some((_, None)) => Need::Admin,
            Some((_, Some(area))) => Need::Area(*area, access),
        }
    }

    /// The narrowest scope that grants it, as an error names it.
    pub fn scope(self) -> String {
        match self {
            Need::Admin | Need::Unknown => "admin".to_owned(),
            Need::Area(area, Access::Read) => format!("{}:read", area.as_str()),
            Need::Area(area, Access::Write) => format!("{}:write", area.as_str()),
        }
    }
}

/// A set of scopes, as bits: `admin`, `full`, `read`, then each area's `read` and `write`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u64);

const ADMIN: u64 = 1;
const FULL: u64 = 2;
const READ: u64 = 4;

fn area_bit(area: Area, access: Access) -> u64 {
    let index = Area::ALL.iter().position(|a| *a == area).unwrap_or(0);
    let offset = match access {
        Access::Read => 0,
        Access::Write => 1,
    };
    1 << (3 + 2 * index + offset)
}

impl Scopes {
    pub const ADMIN: Scopes = Scopes(ADMIN);
    pub const FULL: Scopes = Scopes(FULL);

    /// The scopes a list names; `Err` with the first name that is no scope.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in names {
            bits |= match name {
                "admin" => ADMIN,
                "full" => FULL,
                "read" => READ,
                other => {
                    let (area, access) = other.split_once(':').ok_or_else(|| other.to_owned())?;
                    let area = Area::ALL
                        .iter()
                        .find(|a| a.as_str() == area)
                        .ok_or_else(|| other.to_owned())?;
                    let access = match access {
                        "read" => Access::Read,
                        "write" => Access::Write,
                        _ => return Err(other.to_owned()),
                    };
                    area_bit(*area, access)
                }
            };
        }
        Ok(Scopes(bits))
    }

    /// The scopes as stored: space-separated, in a fixed order.
    pub fn parse_stored(text: &str) -> Result<Scopes, String> {
        Scopes::parse(text.split_ascii_whitespace())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes of both.
    pub fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    /// Each scope's name, in a fixed order (`admin`, `full`, `read`, then by area).
    pub fn names(self) -> Vec<String> {
        let mut names: Vec<String> = [(ADMIN, "admin"), (FULL, "full"), (READ, "read")]
            .into_iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| name.to_owned())
            .collect();
        for area in Area::ALL {
            for (access, suffix) in [(Access::Read, "read"), (Access::Write, "write")] {
                if self.0 & area_bit(*area, access) != 0 {
                    names.push(format!("{}:{suffix}", area.as_str()));
                }
            }
        }
        names
    }

    /// Whether these scopes allow what a call needs.
    pub fn grant(self, need: Need) -> bool {
        if self.0 & ADMIN != 0 {
            return true;
        }
        match need {
            Need::Admin | Need::Unknown => false,
            Need::Area(_, _) if self.0 & FULL != 0 => true,
            Need::Area(area, Access::Read) => {
                self.0 & (READ | area_bit(area, Access::Read) | area_bit(area, Access::Write)) != 0
            }
            Need::Area(area, Access::Write) => self.0 & area_bit(area, Access::Write) != 0,
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// Every scope's name, for errors and the docs.
pub fn every_scope() -> Vec<String> {
    let mut names = vec!["admin".to_owned(), "full".to_owned(), "read".to_owned()];
    for area in Area::ALL {
        names.push(format!("{}:read", area.as_str()));
        names.push(format!("{}:write", area.as_str()));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Scopes {
        Scopes::parse_stored(s).expect("scopes")
    }

    #[test]
    fn routes_fall_in_their_area_by_the_longest_prefix() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            Need::of(&post, "/omni/start"),
            Need::Area(Area::Onboarding, Access::Write)
        );
        assert_eq!(
            Need::of(&get, "/api/v1/omni/journeys/{id}"),
            Need::Area(Area::Journeys, Access::Read)
        );
        assert_eq!(
            Need::of(&get, "/api/v1/omni/notification-providers/{channel}"),
            Need::Admin
        );
        assert_eq!(
            Need::of(&post, "/api/v1/omni/notifications/{id}/read"),
            Need::Area(Area::Notifications, Access::Write)
        );
        assert_eq!(Need::of(&get, "/api/v1/omni/journeysx"), Need::Unknown);
        assert_eq!(Need::of(&get, "/api/v1/omni/api-keys/{id}"), Need::Admin);
    }

    #[test]
    fn each_scope_grants_what_it_names_and_no_more() {
        let read_journey = Need::Area(Area::Journeys, Access::Read);
        let write_journey = Need::Area(Area::Journeys, Access::Write);
        let start = Need::Area(Area::Onboarding, Access::Write);
        for (held, need, granted) in [
            ("admin", Need::Admin, true),
            ("admin", Need::Unknown, true),
            ("full", Need::Admin, false),
            ("full", Need::Unknown, false),
            ("full", write_journey, true),
            ("read", read_journey, true),
            ("read", write_journey, false),
            ("read", Need::Admin, false),
            ("journeys:read", read_journey, true),
            ("journeys:read", write_journey, false),
            ("journeys:write", read_journey, true),
            ("journeys:write", write_journey, true),
            ("onboarding:write", start, true),
            ("onboarding:write", read_journey, false),
            ("onboarding:read", start, false),
            ("onboarding:write approvals:read", write_journey, false),
        ] {
            assert_eq!(scopes(held).grant(need), granted, "{held} for {need:?}");
        }
    }

    #[test]
    fn scopes_read_back_in_a_fixed_order_and_unknown_names_are_refused() {
        let s = scopes("sla:read journeys:write full");
        assert_eq!(s.to_string(), "full journeys:write sla:read");
        assert_eq!(scopes(&s.to_string()), s);
        for bad in ["journey:write", "journeys:delete", "root", "journeys", ""] {
            assert!(Scopes::parse([bad]).is_err(), "{bad}");
        }
        assert_eq!(every_scope().len(), 3 + 2 * Area::ALL.len());
        assert_eq!(
            Scopes::parse(every_scope().iter().map(String::as_str))
                .expect("every scope")
                .names(),
            every_scope()
        );
    }
}
