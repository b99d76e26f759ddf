//! Which packets wait in the intake log, per lane (source chain, port, channel), as ranges of sequences: a
//! channel's sends come in sequence order, so a backlog of any length is a handful of ranges, not a key per
//! packet. The coordinator asks it whether a packet still waits there (a packet finished or started another way
//! meanwhile is taken out, and its log copy is passed over), and clearing asks it which sequences are known.

use std::collections::{BTreeMap, HashMap};

use relayd_messages::{ChainId, ChannelId, PacketKey, PortId};

/// A set of sequences as disjoint, non-adjacent inclusive ranges (start → end).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SequenceSet {
    ranges: BTreeMap<u64, u64>,
    len: usize,
}

impl SequenceSet {
    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, end)| seq <= *end)
    }

    /// Adds `seq`; false if it was there already.
    pub fn insert(&mut self, seq: u64) -> bool {
        let before = self.ranges.range(..=seq).next_back().map(|(s, e)| (*s, *e));
        if let Some((_, end)) = before {
            if seq <= end {
                return false;
            }
        }
        let after = seq
            .checked_add(1)
            .and_then(|next| self.ranges.get(&next).map(|end| (next, *end)));
        match (
            before.filter(|(_, end)| end.checked_add(1) == Some(seq)),
            after,
        ) {
            (Some((start, _)), Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(start, end);
            }
            (Some((start, _)), None) => {
                self.ranges.insert(start, seq);
            }
            (None, Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(seq, end);
            }
            (None, None) => {
                self.ranges.insert(seq, seq);
            }
        }
        self.len += 1;
        true
    }

    /// Takes `seq` out; false if it was not there.
    pub fn remove(&mut self, seq: u64) -> bool {
        let Some((start, end)) = self.ranges.range(..=seq).next_back().map(|(s, e)| (*s, *e))
        else {
            return false;
        };
        if seq > end {
            return false;
        }
        self.ranges.remove(&start);
        if start < seq {
            self.ranges.insert(start, seq - 1);
        }
        if seq < end {
            self.ranges.insert(seq + 1, end);
        }
        self.len -= 1;
        true
    }

    /// Sequences in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ranges, lowest first (inclusive).
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(s, e)| (*s, *e))
    }
}

/// The packets waiting in the intake log, by lane.
#[derive(Debug, Default)]
pub struct Logged {
    lanes: HashMap<ChainId, HashMap<PortId, HashMap<ChannelId, SequenceSet>>>,
    len: usize,
}

impl Logged {
    fn lane(&self, key: &PacketKey) -> Option<&SequenceSet> {
        self.lanes
            .get(&key.src_chain)?
            .get(&key.src_port)?
            .get(&key.src_channel)
    }

    /// Whether `key` waits in the log.
    pub fn contains(&self, key: &PacketKey) -> bool {
        self.lane(key).is_some_and(|s| s.contains(key.sequence.0))
    }

    /// `key` waits in the log from now on; false if it did already.
    pub fn insert(&mut self, key: &PacketKey) -> bool {
        // Lanes are few and long-lived: their ids are cloned once, when the lane first logs a packet.
        let ports = match self.lanes.get_mut(&key.src_chain) {
            Some(p) => p,
            None => self.lanes.entry(key.src_chain.clone()).or_default(),
        };
        let channels = match ports.get_mut(&key.src_port) {
            Some(c) => c,
            None => ports.entry(key.src_port.clone()).or_default(),
        };
        let set = match channels.get_mut(&key.src_channel) {
            Some(s) => s,
            None => channels.entry(key.src_channel.clone()).or_default(),
        };
        let added = set.insert(key.sequence.0);
        self.len += usize::from(added);
        added
    }

    /// Takes `key` out of the log's waiting set; false if it was not waiting there.
    pub fn remove(&mut self, key: &PacketKey) -> bool {
        let removed = self
            .lanes
            .get_mut(&key.src_chain)
            .and_then(|p| p.get_mut(&key.src_port))
            .and_then(|c| c.get_mut(&key.src_channel))
            .is_some_and(|s| s.remove(key.sequence.0));
        self.len -= usize::from(removed);
        removed
    }

    /// The sequences of one lane waiting in the log.
    pub fn of_lane(&self, chain: &ChainId, port: &str, channel: &str) -> SequenceSet {
        self.lanes
            .get(chain)
            .and_then(|p| p.iter().find(|(id, _)| id.as_str() == port))
            .and_then(|(_, c)| c.iter().find(|(id, _)| id.as_str() == channel))
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    /// Every lane with packets waiting (chain, port, channel, its sequences).
    pub fn lanes(&self) -> impl Iterator<Item = (&ChainId, &PortId, &ChannelId, &SequenceSet)> {
        self.lanes.iter().flat_map(|(chain, ports)| {
            ports.iter().flat_map(move |(port, channels)| {
                channels
                    .iter()
                    .filter(|(_, s)| !s.is_empty())
                    .map(move |(channel, s)| (chain, port, channel, s))
            })
        })
    }

    /// Packets waiting in the log.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no packet waits in the log.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(seqs: &[u64]) -> SequenceSet {
        let mut s = SequenceSet::default();
        for q in seqs {
            s.insert(*q);
        }
        s
    }

    #[test]
    fn sequences_in_order_make_one_range() {
        let s = set(&(1..=10_000).collect::<Vec<_>>());
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(1, 10_000)]);
        assert_eq!(s.len(), 10_000);
        assert!(s.contains(1) && s.contains(5_000) && s.contains(10_000));
        assert!(!s.contains(0) && !s.contains(10_001));
    }

    #[test]
    fn inserts_join_neighbours_and_repeat_inserts_change_nothing() {
        let mut s = set(&[1, 2, 5, 6, 9]);
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(1, 2), (5, 6), (9, 9)]);
        assert!(s.insert(4), "joins the range after it");
        assert!(s.insert(3), "joins both neighbours");
        assert!(!s.insert(3));
        assert!(s.insert(8));
        assert!(s.insert(7));
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(1, 9)]);
        assert_eq!(s.len(), 9);
        assert!(s.insert(u64::MAX));
        assert!(s.insert(u64::MAX - 1));
        assert_eq!(s.ranges().last(), Some((u64::MAX - 1, u64::MAX)));
    }

    #[test]
    fn removes_split_ranges_and_absent_removes_change_nothing() {
        let mut s = set(&(1..=9).collect::<Vec<_>>());
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert!(!s.remove(42));
        assert!(s.remove(1));
        assert!(s.remove(9));
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(2, 4), (6, 8)]);
        assert_eq!(s.len(), 6);
        for q in [2, 3, 4, 6, 7, 8] {
            assert!(s.remove(q));
        }
        assert!(s.is_empty());
        assert_eq!(s.ranges().count(), 0);
    }

    /// The set against a plain model over a pseudo-random mix of inserts and removes.
    #[test]
    fn agrees_with_a_plain_set() {
        let mut s = SequenceSet::default();
        let mut model = std::collections::BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seq = x % 300;
            if x & (1 << 40) == 0 {
                assert_eq!(s.insert(seq), model.insert(seq));
            } else {
                assert_eq!(s.remove(seq), model.remove(&seq));
            }
            assert_eq!(s.len(), model.len());
        }
        for q in 0..300 {
            assert_eq!(s.contains(q), model.contains(&q));
        }
        let mut ranges = s.ranges().peekable();
        while let Some((_, end)) = ranges.next() {
            if let Some((next, _)) = ranges.peek() {
                assert!(end + 1 < *next, "ranges stay apart");
            }
        }
    }

    use super::super::lane_key as key;

    #[test]
    fn lanes_are_kept_apart() {
        let mut l = Logged::default();
        assert!(l.insert(&key("a-1", "channel-0", 1)));
        assert!(l.insert(&key("a-1", "channel-1", 1)));
        assert!(l.insert(&key("b-1", "channel-0", 1)));
        assert!(!l.insert(&key("a-1", "channel-0", 1)));
        assert_eq!(l.len(), 3);
        assert!(l.remove(&key("a-1", "channel-1", 1)));
        assert!(!l.contains(&key("a-1", "channel-1", 1)));
        assert!(l.contains(&key("a-1", "channel-0", 1)));
        assert!(!l.remove(&key("c-1", "channel-0", 1)));
        assert_eq!(l.len(), 2);
        let a = ChainId::new("a-1").unwrap();
        assert_eq!(l.of_lane(&a, "transfer", "channel-0").len(), 1);
        assert!(l.of_lane(&a, "transfer", "channel-7").is_empty());
    }
}
