//! IBC heights: a revision number and a height within that revision, ordered revision first.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A block height qualified by the chain's revision, as IBC clients store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Height {
    /// The chain revision (the `-N` suffix of the chain id); ordered before the height.
    pub revision_number: u64,
    /// The block height within the revision.
    pub revision_height: u64,
}

/// Why a string is not a height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a height; expected <revision>-<height>, e.g. 0-42")]
pub struct HeightParseError(String);

impl Height {
    /// A height in the given revision.
    pub const fn new(revision_number: u64, revision_height: u64) -> Self {
        Self {
            revision_number,
            revision_height,
        }
    }

    /// The next block in the same revision. Proofs taken at `h` are checked against the consensus state at
    /// `h.increment()`, because a CometBFT header carries the app hash of the block before it.
    pub const fn increment(self) -> Self {
        Self::new(self.revision_number, self.revision_height + 1)
    }

    /// The previous block in the same revision, if there is one.
    pub const fn decrement(self) -> Option<Self> {
        if self.revision_height <= 1 {
            None
        } else {
            Some(Self::new(self.revision_number, self.revision_height - 1))
        }
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.revision_number, self.revision_height)
    }
}

impl FromStr for Height {
    type Err = HeightParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HeightParseError(s.to_owned());
        let (rev, height) = s.split_once('-').ok_or_else(err)?;
        Ok(Self::new(
            rev.parse().map_err(|_| err())?,
            height.parse().map_err(|_| err())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_revision_then_height() {
        assert!(Height::new(0, 100) < Height::new(1, 1));
        assert!(Height::new(1, 5) < Height::new(1, 6));
    }

    #[test]
    fn parses_and_prints() {
        let h: Height = "3-42".parse().unwrap();
        assert_eq!(h, Height::new(3, 42));
        assert_eq!(h.to_string(), "3-42");
        assert_eq!(
            "42".parse::<Height>().unwrap_err().to_string(),
            "\"42\" is not a height; expected <revision>-<height>, e.g. 0-42"
        );
    }

    #[test]
    fn steps_within_revision() {
        assert_eq!(Height::new(0, 9).increment(), Height::new(0, 10));
        assert_eq!(Height::new(0, 1).decrement(), None);
        assert_eq!(Height::new(2, 7).decrement(), Some(Height::new(2, 6)));
    }
}
