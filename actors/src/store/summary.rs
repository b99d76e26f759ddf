//! The pure parts of the packet index: per-channel counts kept up to date on every lifecycle change (so that
//! metrics and filters never read the records), the keys of the index trees, and which records compaction may
//! remove.

use std::collections::BTreeMap;

use relayd_messages::{PacketKey, PacketState};
use serde::{Deserialize, Serialize};

/// Whether a record in `state` may be removed once its retention has passed. Failed packets stay: they are in
/// the dead-letter queue, and a retry starts from their record.
pub fn is_compactable(state: PacketState) -> bool {
    matches!(state, PacketState::Acknowledged | PacketState::TimedOut)
}

/// One source channel's packets, by state. Stored as JSON objects keyed by the states' names, as before the
/// states were typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSummary {
    /// Packets by their current state; finished packets stay counted after their records are compacted.
    pub states: BTreeMap<PacketState, u64>,
    /// Records removed by compaction, by their final state.
    pub compacted: BTreeMap<PacketState, u64>,
}

impl ChannelSummary {
    /// A packet moved from `from` (`None`: newly recorded) to `to`.
    pub fn moved(&mut self, from: Option<PacketState>, to: PacketState) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            if let Some(n) = self.states.get_mut(&from) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.states.remove(&from);
                }
            }
        }
        *self.states.entry(to).or_default() += 1;
    }

    /// The record of a packet in `state` was compacted: it stays counted in `states`.
    pub fn compacted(&mut self, state: PacketState) {
        *self.compacted.entry(state).or_default() += 1;
    }

    /// Records kept in the store in `state`.
    pub fn stored(&self, state: PacketState) -> u64 {
        let all = self.states.get(&state).copied().unwrap_or(0);
        all.saturating_sub(self.compacted.get(&state).copied().unwrap_or(0))
    }

    /// Records kept in the store, every state.
    pub fn stored_total(&self) -> u64 {
        self.states.keys().map(|s| self.stored(*s)).sum()
    }

    /// Packets not finished.
    pub fn pending(&self) -> u64 {
        self.states
            .iter()
            .filter(|(s, _)| !s.is_final())
            .map(|(_, n)| n)
            .sum()
    }
}

/// A source channel: chain, port, channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChannelKey {
    /// Source chain.
    pub chain: String,
    /// Source port.
    pub port: String,
    /// Source channel.
    pub channel: String,
}

impl ChannelKey {
    /// The channel of `key`.
    pub fn of(key: &PacketKey) -> Self {
        Self {
            chain: key.src_chain.to_string(),
            port: key.src_port.to_string(),
            channel: key.src_channel.to_string(),
        }
    }

    /// The prefix every packet key of this channel starts with.
    pub fn prefix(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&self.chain, &self.port, &self.channel] {
            out.extend_from_slice(part.as_bytes());
            out.push(0);
        }
        out
    }

    /// Reads a prefix written by [`ChannelKey::prefix`].
    pub fn from_prefix(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\0');
        let key = Self {
            chain: parts.next()?.to_owned(),
            port: parts.next()?.to_owned(),
            channel: parts.next()?.to_owned(),
        };
        (parts.next() == Some("") && parts.next().is_none()).then_some(key)
    }
}

/// Keys sort by chain, port, channel, then numerically by sequence.
pub fn packet_key(key: &PacketKey) -> Vec<u8> {
    let mut out = ChannelKey::of(key).prefix();
    out.extend_from_slice(&key.sequence.0.to_be_bytes());
    out
}

/// The prefix of every packet key of `chain`.
pub fn chain_prefix(chain: &str) -> Vec<u8> {
    let mut out = chain.as_bytes().to_vec();
    out.push(0);
    out
}

/// Key of a finished record in the retention index: finish time first, so the expired ones come first.
pub fn finished_key(finished_ms: u64, key: &[u8]) -> Vec<u8> {
    let mut out = finished_ms.to_be_bytes().to_vec();
    out.extend_from_slice(key);
    out
}

/// The finish time and packet key of a retention index key.
pub fn split_finished_key(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (ms, key) = bytes.split_at_checked(8)?;
    Some((u64::from_be_bytes(ms.try_into().ok()?), key))
}

/// The fields of a stored record the index needs (decoding the whole record is not).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordHead {
    /// Current state.
    pub state: PacketState,
    /// Last change, ms since the epoch.
    pub updated_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayd_messages::{ChainId, ChannelId, PortId, Sequence};

    #[test]
    fn a_packet_moving_through_its_states_is_counted_once() {
        use PacketState::{Acknowledged, Detected, Submitted};
        let mut s = ChannelSummary::default();
        s.moved(None, Detected);
        s.moved(Some(Detected), Submitted);
        s.moved(Some(Submitted), Submitted);
        assert_eq!(s.pending(), 1);
        s.moved(Some(Submitted), Acknowledged);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.states.len(), 1, "emptied states are dropped: {s:?}");
        assert_eq!(s.stored(Acknowledged), 1);
        s.compacted(Acknowledged);
        assert_eq!(s.states[&Acknowledged], 1, "still counted");
        assert_eq!(s.stored(Acknowledged), 0);
        assert_eq!(s.stored_total(), 0);
    }

    #[test]
    fn keys_sort_by_channel_then_sequence_and_read_back() {
        let key = |seq| PacketKey {
            src_chain: ChainId::new("ibc-0").unwrap(),
            src_port: PortId::new("transfer").unwrap(),
            src_channel: ChannelId::new("channel-1").unwrap(),
            sequence: Sequence(seq),
        };
        assert!(packet_key(&key(2)) < packet_key(&key(10)));
        let channel = ChannelKey::of(&key(2));
        assert!(packet_key(&key(2)).starts_with(&channel.prefix()));
        assert!(packet_key(&key(2)).starts_with(&chain_prefix("ibc-0")));
        assert_eq!(ChannelKey::from_prefix(&channel.prefix()), Some(channel));
        assert_eq!(ChannelKey::from_prefix(b"a\0b"), None);
        let f = finished_key(7, &packet_key(&key(3)));
        assert!(f < finished_key(8, &packet_key(&key(1))));
        assert_eq!(
            split_finished_key(&f),
            Some((7, packet_key(&key(3)).as_slice()))
        );
        assert_eq!(split_finished_key(b"short"), None);
    }

    #[test]
    fn only_acknowledged_and_timed_out_records_are_compacted() {
        use PacketState::{Acknowledged, Failed, Submitted, TimedOut};
        assert!(is_compactable(Acknowledged) && is_compactable(TimedOut));
        assert!(!is_compactable(Failed) && Failed.is_final());
        assert!(!is_compactable(Submitted) && !Submitted.is_final());
    }
}
