//! The states of a packet's lifecycle, as its record in the state database, the admin API and the CLI name them.
//! One type, so that a state is never a free-form string that a typo can put out of reach of the counts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a packet is in its lifecycle. Serialized as its snake-case name (`"timed_out"`), which is also how
/// records written before this type existed stored it: those decode unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketState {
    /// Seen on the source; its commitment is being proven.
    Detected,
    /// Proven at a height; the destination's client is being brought there.
    ProofGenerated,
    /// `MsgRecvPacket` sent to the destination.
    Submitted,
    /// Received on the destination; its acknowledgement is on its way back.
    Confirmed,
    /// The source processed the acknowledgement. Final.
    Acknowledged,
    /// The source processed a timeout. Final.
    TimedOut,
    /// relayd gave up; the packet is in the dead-letter queue. Final.
    Failed,
    /// Not relayed by policy (an ICS-20 memo or receiver over its configured size); the record's
    /// `skip_reason` says which. Final: clearing never picks it up again.
    Skipped,
}

impl PacketState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 8] = [
        Self::Detected,
        Self::ProofGenerated,
        Self::Submitted,
        Self::Confirmed,
        Self::Acknowledged,
        Self::TimedOut,
        Self::Failed,
        Self::Skipped,
    ];

    /// The state's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::ProofGenerated => "proof_generated",
            Self::Submitted => "submitted",
            Self::Confirmed => "confirmed",
            Self::Acknowledged => "acknowledged",
            Self::TimedOut => "timed_out",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Whether a packet never leaves this state on its own.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Acknowledged | Self::TimedOut | Self::Failed | Self::Skipped
        )
    }
}

/// Why a packet is not relayed by policy: the `reason` label of `relayd_packets_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The ICS-20 memo is longer than `ics20_max_memo_size`.
    MemoTooLarge,
    /// The ICS-20 receiver is longer than `ics20_max_receiver_size`.
    ReceiverTooLarge,
}

impl SkipReason {
    /// The reason's name, as stored, shown and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MemoTooLarge => "memo_too_large",
            Self::ReceiverTooLarge => "receiver_too_large",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for PacketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a packet state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown packet state `{0}` (one of detected, proof_generated, submitted, confirmed, acknowledged, timed_out, failed, skipped)")]
pub struct UnknownPacketState(pub String);

impl FromStr for PacketState {
    type Err = UnknownPacketState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownPacketState(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for state in PacketState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<PacketState>(&json).unwrap(), state);
            assert_eq!(state.as_str().parse::<PacketState>(), Ok(state));
        }
        assert!("acked".parse::<PacketState>().is_err());
        assert_eq!(PacketState::ALL.iter().filter(|s| s.is_final()).count(), 4);
        assert_eq!(
            serde_json::to_string(&SkipReason::MemoTooLarge).unwrap(),
            format!("\"{}\"", SkipReason::MemoTooLarge)
        );
    }

    #[test]
    fn states_are_map_keys_by_name() {
        let mut counts = std::collections::BTreeMap::new();
        counts.insert(PacketState::TimedOut, 2u64);
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, r#"{"timed_out":2}"#);
        let back: std::collections::BTreeMap<PacketState, u64> =
            serde_json::from_str(&json).unwrap();
        assert_eq!(back, counts);
    }
}
