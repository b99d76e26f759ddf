//! Identifiers of chains and of the IBC objects on them, checked once at the edge so the rest of relayd can
//! trust them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which kind of identifier was being parsed.
        kind: &'static str,
    },
    /// The identifier is longer than its kind allows.
    #[error("{kind} {value:?} is longer than {max} characters")]
    TooLong {
        /// Which kind of identifier was being parsed.
        kind: &'static str,
        /// The rejected input.
        value: String,
        /// The longest length allowed.
        max: usize,
    },
    /// The identifier holds a character outside the ICS-24 set.
    #[error("{kind} {value:?} contains {ch:?}; allowed are letters, digits and . _ + - # [ ] < >")]
    BadChar {
        /// Which kind of identifier was being parsed.
        kind: &'static str,
        /// The rejected input.
        value: String,
        /// The first character that is not allowed.
        ch: char,
    },
}

/// ICS-24 host identifiers allow this alphabet. Lengths vary by kind and by chain software, so only an upper
/// bound is enforced here; chains reject what they do not accept themselves.
fn check_identifier(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.chars().count() > max {
        return Err(IdError::TooLong {
            kind,
            value: value.to_owned(),
            max,
        });
    }
    if let Some(ch) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_+#[]<>".contains(*c)))
    {
        return Err(IdError::BadChar {
            kind,
            value: value.to_owned(),
            ch,
        });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_identifier($kind, &value, $max)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// A chain identifier such as `ibc-0` or `cosmoshub-4`; a trailing `-N` is the revision number.
    ChainId, "chain id", 64
);
identifier!(
    /// An IBC client identifier on some chain, such as `07-tendermint-0`.
    ClientId, "client id", 64
);
identifier!(
    /// An IBC connection identifier on some chain, such as `connection-0`.
    ConnectionId, "connection id", 64
);
identifier!(
    /// An IBC port identifier, such as `transfer`.
    PortId, "port id", 128
);
identifier!(
    /// An IBC channel identifier on some chain, such as `channel-0`.
    ChannelId, "channel id", 64
);

impl ChainId {
    /// The revision encoded in the id's `-N` suffix, or 0 when it has none (as ICS-02 and CometBFT define it).
    pub fn revision_number(&self) -> u64 {
        let Some((name, rev)) = self.0.rsplit_once('-') else {
            return 0;
        };
        let canonical = !rev.is_empty()
            && rev.bytes().all(|b| b.is_ascii_digit())
            && (rev == "0" || !rev.starts_with('0'));
        if name.is_empty() || !canonical {
            return 0;
        }
        rev.parse().unwrap_or(0)
    }
}

/// A packet sequence number; sequences start at 1 on every channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sequence(pub u64);

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accept_ics24_alphabet() {
        assert!(ChannelId::new("channel-0").is_ok());
        assert!(PortId::new("transfer").is_ok());
        assert!(ClientId::new("07-tendermint-12").is_ok());
        assert!(ConnectionId::new("conn.A_B+x#[1]<2>").is_ok());
    }

    #[test]
    fn identifiers_reject_bad_input_with_reason() {
        assert_eq!(
            PortId::new("").unwrap_err(),
            IdError::Empty { kind: "port id" }
        );
        assert_eq!(
            ChannelId::new("chan/1").unwrap_err().to_string(),
            "channel id \"chan/1\" contains '/'; allowed are letters, digits and . _ + - # [ ] < >"
        );
        let long = "a".repeat(65);
        assert!(matches!(
            ClientId::new(long).unwrap_err(),
            IdError::TooLong { max: 64, .. }
        ));
    }

    #[test]
    fn chain_revision_follows_suffix() {
        let rev = |s: &str| ChainId::new(s).unwrap().revision_number();
        assert_eq!(rev("ibc-0"), 0);
        assert_eq!(rev("cosmoshub-4"), 4);
        assert_eq!(rev("osmosis-1"), 1);
        assert_eq!(rev("chain_A"), 0);
        assert_eq!(rev("-5"), 0);
        assert_eq!(rev("test-01"), 0);
    }

    #[test]
    fn identifiers_round_trip_through_serde() {
        let id: ChannelId = serde_json::from_str("\"channel-7\"").unwrap();
        assert_eq!(id.as_str(), "channel-7");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"channel-7\"");
        assert!(serde_json::from_str::<ChannelId>("\"a b\"").is_err());
    }
}
