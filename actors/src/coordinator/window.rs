//! The bounded builder window, pure: at most `max` packet builders run at once, so a backlog of any length costs
//! the relayer a fixed number of actors, connections and in-flight proofs. Packets beyond the window wait here,
//! oldest first: by key (their lifecycle records stay in the state store), or, for packets just observed, as an
//! entry of the intake log (see `store::intake`) with the sequences it holds kept per lane (`logged`). Their
//! records are made as the window admits them.

use std::collections::{HashSet, VecDeque};

use relayd_messages::PacketKey;

mod lanes;
mod logged;

use lanes::{Lanes, Slot};
pub use logged::{Logged, SequenceSet};

/// Packet builders allowed to run at once when the configuration does not say (`[global] max_builders`).
pub const DEFAULT_MAX_BUILDERS: usize = 512;

/// One place in the window's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    /// A packet with a record (its lane's number and sequence), and its builder's restarts so far.
    Packet(Slot, u32),
    /// Intake entry `entry`, of `count` packets, of which the first `next` were admitted.
    Entry { entry: u64, next: u32, count: u32 },
}

/// What the window admits next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// A packet with a record (and its builder's restarts so far).
    Packet(PacketKey, u32),
    /// A packet of an intake entry; its record is made from the entry.
    Logged {
        /// The entry's id.
        entry: u64,
        /// The packet's place in the entry.
        index: u32,
        /// Whether it is the entry's last place (the entry can go).
        last: bool,
    },
}

/// The packets waiting for a builder slot, in arrival order, and the bound on running builders.
#[derive(Debug)]
pub struct Window {
    max: usize,
    queue: VecDeque<Waiting>,
    queued: HashSet<Slot>,
    lanes: Lanes,
    logged: Logged,
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
            lanes: Lanes::default(),
            logged: Logged::default(),
        }
    }

    /// The bound on running builders.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Changes the bound (at least one); what waits keeps its place.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    /// Packets waiting for a slot: by key, and in the intake log.
    pub fn waiting(&self) -> usize {
        self.queued.len() + self.logged.len()
    }

    /// Whether `key` waits for a slot by key.
    pub fn is_waiting(&self, key: &PacketKey) -> bool {
        self.lanes
            .find(key)
            .is_some_and(|slot| self.queued.contains(&slot))
    }

    /// The packets waiting in the intake log.
    pub fn logged(&self) -> &Logged {
        &self.logged
    }

    /// `key`, just observed, waits in the intake log from now on; false if it waits there already (the caller
    /// then leaves it out of the entry it writes).
    pub fn log(&mut self, key: &PacketKey) -> bool {
        self.logged.insert(key)
    }

    /// `key` no longer waits in the intake log (its record was made another way); false if it did not. Its
    /// place in the entry is passed over when reached.
    pub fn unlog(&mut self, key: &PacketKey) -> bool {
        self.logged.remove(key)
    }

    /// Intake entry `entry` of `count` packets (logged with [`Self::log`]) takes its place in the queue.
    pub fn queue_entry(&mut self, entry: u64, count: u32) {
        if count > 0 {
            self.queue.push_back(Waiting::Entry {
                entry,
                next: 0,
                count,
            });
        }
    }

    /// Whether a packet not yet waiting may start its builder while `running` builders run.
    pub fn has_room(&self, running: usize) -> bool {
        running < self.max
    }

    /// `key` (with its builder's `restarts` so far) waits for a slot; a key already waiting keeps its place.
    pub fn defer(&mut self, key: PacketKey, restarts: u32) {
        let slot = self.lanes.slot(&key);
        if self.queued.insert(slot) {
            self.queue.push_back(Waiting::Packet(slot, restarts));
        }
    }

    /// What to start next while `running` builders run: the oldest waiting, if there is room.
    pub fn next(&mut self, running: usize) -> Option<Admit> {
        if !self.has_room(running) {
            return None;
        }
        match self.queue.front_mut()? {
            Waiting::Entry { entry, next, count } => {
                let admit = Admit::Logged {
                    entry: *entry,
                    index: *next,
                    last: *next + 1 >= *count,
                };
                *next += 1;
                if *next >= *count {
                    self.queue.pop_front();
                }
                Some(admit)
            }
            Waiting::Packet(..) => {
                let Some(Waiting::Packet(slot, restarts)) = self.queue.pop_front() else {
                    return None;
                };
                self.queued.remove(&slot);
                // Every queued slot was numbered by `defer`, and numbers are never taken back.
                self.lanes.key(slot).map(|key| Admit::Packet(key, restarts))
            }
        }
    }
}

/// The key of packet `seq` on `transfer`/`channel` of `chain`, for the window's tests and its rooms'.
#[cfg(test)]
fn lane_key(chain: &str, channel: &str, seq: u64) -> PacketKey {
    use relayd_messages::{ChainId, ChannelId, PortId, Sequence};
    PacketKey {
        src_chain: ChainId::new(chain).unwrap(),
        src_port: PortId::new("transfer").unwrap(),
        src_channel: ChannelId::new(channel).unwrap(),
        sequence: Sequence(seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u64) -> PacketKey {
        lane_key("a-1", "channel-0", seq)
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
        assert_eq!(w.next(1), Some(Admit::Packet(key(5), 0)));
        assert_eq!(w.next(1), Some(Admit::Packet(key(3), 0)));
        assert!(!w.is_waiting(&key(3)));
        assert!(w.is_waiting(&key(9)));
        assert_eq!(w.next(0), Some(Admit::Packet(key(9), 0)));
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
        assert_eq!(w.next(0), Some(Admit::Packet(key(1), 0)));
        assert_eq!(w.next(0), Some(Admit::Packet(key(2), 0)));
    }

    #[test]
    fn restarts_travel_with_the_waiting_packet() {
        let mut w = Window::new(1);
        w.defer(key(7), 3);
        assert_eq!(w.next(0), Some(Admit::Packet(key(7), 3)));
    }

    #[test]
    fn intake_entries_take_their_turn_in_the_queue_packet_by_packet() {
        let mut w = Window::new(1);
        w.defer(key(1), 0);
        for s in 2..=4 {
            assert!(w.log(&key(s)));
        }
        assert!(!w.log(&key(3)), "a packet logged twice waits once");
        w.queue_entry(7, 3);
        w.queue_entry(8, 0);
        w.defer(key(5), 2);
        assert_eq!(w.waiting(), 5);
        assert_eq!(w.next(1), None);
        assert_eq!(w.next(0), Some(Admit::Packet(key(1), 0)));
        for (index, last) in [(0, false), (1, false), (2, true)] {
            assert_eq!(
                w.next(0),
                Some(Admit::Logged {
                    entry: 7,
                    index,
                    last
                })
            );
        }
        assert_eq!(
            w.next(0),
            Some(Admit::Packet(key(5), 2)),
            "an empty entry takes no turn"
        );
        assert_eq!(w.next(0), None);
    }

    #[test]
    fn a_packet_taken_out_of_the_log_no_longer_counts_as_waiting() {
        let mut w = Window::new(1);
        assert!(w.log(&key(1)));
        assert!(w.log(&key(2)));
        w.queue_entry(0, 2);
        assert!(w.unlog(&key(1)));
        assert!(!w.unlog(&key(1)));
        assert_eq!(w.waiting(), 1);
        assert!(w.logged().contains(&key(2)));
        assert!(!w.logged().contains(&key(1)));
        // Its place is still handed out; the caller passes over a packet no longer logged.
        assert!(matches!(w.next(0), Some(Admit::Logged { index: 0, .. })));
    }

    #[test]
    fn a_new_bound_keeps_what_waits() {
        let mut w = Window::new(1);
        w.defer(key(1), 0);
        w.set_max(0);
        assert_eq!(w.max(), 1);
        w.set_max(3);
        assert!(w.has_room(2));
        assert_eq!(w.next(2), Some(Admit::Packet(key(1), 0)));
    }
}
