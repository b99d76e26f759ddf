//! The bounded builder window, pure: at most `max` packet builders run at once, so a backlog of any length costs
//! the relayer a fixed number of actors, connections and in-flight proofs. Packets beyond the window wait here as
//! keys only (their lifecycle records stay in the state store) and start, oldest first, as running builders exit.

use std::collections::{HashSet, VecDeque};

use relayd_messages::PacketKey;

/// Packet builders allowed to run at once when the configuration does not say (`[global] max_builders`).
pub const DEFAULT_MAX_BUILDERS: usize = 512;

/// The packets waiting for a builder slot, in arrival order, and the bound on running builders.
#[derive(Debug)]
pub struct Window {
    max: usize,
    queue: VecDeque<(PacketKey, u32)>,
    queued: HashSet<PacketKey>,
}

impl Default for Window {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BUILDERS)
    }
}

impl Window {
    /// A window letting `max` builders run at once (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            queue: VecDeque::new(),
            queued: HashSet::new(),
        }
    }

    /// The bound on running builders.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Packets waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Whether `key` waits for a slot.
    pub fn is_waiting(&self, key: &PacketKey) -> bool {
        self.queued.contains(key)
    }

    /// Whether a packet not yet waiting may start its builder while `running` builders run.
    pub fn has_room(&self, running: usize) -> bool {
        running < self.max
    }

    /// `key` (with its builder's `restarts` so far) waits for a slot; a key already waiting keeps its place.
    pub fn defer(&mut self, key: PacketKey, restarts: u32) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back((key, restarts));
        }
    }

    /// The packet to start next while `running` builders run: the oldest waiting, if there is room.
    pub fn next(&mut self, running: usize) -> Option<(PacketKey, u32)> {
        if !self.has_room(running) {
            return None;
        }
        let (key, restarts) = self.queue.pop_front()?;
        self.queued.remove(&key);
        Some((key, restarts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayd_messages::{ChainId, ChannelId, PortId, Sequence};

    fn key(seq: u64) -> PacketKey {
        PacketKey {
            src_chain: ChainId::new("a-1").unwrap(),
            src_port: PortId::new("transfer").unwrap(),
            src_channel: ChannelId::new("channel-0").unwrap(),
            sequence: Sequence(seq),
        }
    }

    #[test]
    fn room_ends_at_the_bound() {
        let w = Window::new(2);
        assert!(w.has_room(0));
        assert!(w.has_room(1));
        assert!(!w.has_room(2));
        assert!(!w.has_room(3));
    }

    #[test]
    fn a_zero_bound_still_lets_one_builder_run() {
        let w = Window::new(0);
        assert_eq!(w.max(), 1);
        assert!(w.has_room(0));
    }

    #[test]
    fn waiting_packets_start_oldest_first_and_only_into_free_slots() {
        let mut w = Window::new(2);
        for s in [5, 3, 9] {
            w.defer(key(s), 0);
        }
        assert_eq!(w.waiting(), 3);
        assert_eq!(w.next(2), None, "no slot free");
        assert_eq!(w.next(1), Some((key(5), 0)));
        assert_eq!(w.next(1), Some((key(3), 0)));
        assert!(!w.is_waiting(&key(3)));
        assert!(w.is_waiting(&key(9)));
        assert_eq!(w.next(0), Some((key(9), 0)));
        assert_eq!(w.next(0), None);
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn a_packet_deferred_twice_waits_once_in_its_first_place() {
        let mut w = Window::new(1);
        w.defer(key(1), 0);
        w.defer(key(2), 0);
        w.defer(key(1), 4);
        assert_eq!(w.waiting(), 2);
        assert_eq!(w.next(0), Some((key(1), 0)));
        assert_eq!(w.next(0), Some((key(2), 0)));
    }

    #[test]
    fn restarts_travel_with_the_waiting_packet() {
        let mut w = Window::new(1);
        w.defer(key(7), 3);
        assert_eq!(w.next(0), Some((key(7), 3)));
    }
}
