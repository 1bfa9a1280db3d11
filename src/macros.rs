//! Small macros shared by the capabilities.

/// A closed set of words, stored and shown as `snake_case` text: `as_str` gives the stored
/// form and `parse` reads it back (`None` for anything else).
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order declared.
            #[allow(dead_code)]
            pub const ALL: &'static [Self] = &[$($name::$variant),+];

            /// Every value's text, as a message lists them: `a, b, c`.
            #[allow(dead_code)]
            pub fn listed() -> String {
                [$($text),+].join(", ")
            }

            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored form; `None` for anything else.
            #[allow(dead_code)]
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}
