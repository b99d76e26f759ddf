//! The bounded builder window: packets beyond it wait by key and start oldest first as slots free.

use super::*;
use crate::coordinator::window::Admit;

#[test]
fn beyond_the_window_packets_wait_by_key_and_start_oldest_first_as_builders_exit() {
    let mut s = state();
    s.set_max_builders(2);
    let g1 = run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    run(&mut s, record("channel-0", "channel-5", 2, "detected"), 2);
    for seq in 3..=5 {
        assert!(matches!(
            s.start(record("channel-0", "channel-5", seq, "detected"), 0),
            Start::Deferred
        ));
    }
    // Asked again (e.g. its ack seen), a waiting packet keeps its one place.
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 4, "confirmed"), 0),
        Start::Deferred
    ));
    assert_eq!((s.builders().len(), s.waiting_builders()), (2, 3));
    assert_eq!(s.admit(), None, "no slot free");
    let key1 = key_of(&chain("a-1"), &packet("channel-0", "channel-5", 1));
    assert!(matches!(s.packet_exited(&key1, g1, true), Exit::Done(None)));
    let Some(Admit::Packet(next, restarts)) = s.admit() else {
        panic!("a slot is free")
    };
    assert_eq!((next.sequence, restarts), (Sequence(3), 0));
    // The actor starts it from its stored record; it takes the freed slot.
    run(&mut s, record("channel-0", "channel-5", 3, "detected"), 3);
    assert_eq!((s.builders().len(), s.waiting_builders()), (2, 2));
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 6, "detected"), 0),
        Start::Deferred
    ));
    assert!(s.builders().len() <= s.max_builders());
}

/// A window of one slot: packet 1's builder runs (its generation returned), packet 2 waits by key.
fn one_running_one_waiting() -> (State, u64) {
    let mut s = state();
    s.set_max_builders(1);
    let g1 = run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 2, "detected"), 0),
        Start::Deferred
    ));
    (s, g1)
}

#[test]
fn a_halted_path_takes_no_slot_and_a_failed_builder_frees_its_slot_while_it_backs_off() {
    let (mut s, g1) = one_running_one_waiting();
    let key1 = key_of(&chain("a-1"), &packet("channel-0", "channel-5", 1));
    assert!(matches!(
        s.packet_exited(&key1, g1, false),
        Exit::Restart { .. }
    ));
    let Some(Admit::Packet(next, _)) = s.admit() else {
        panic!("the failed builder's slot is free")
    };
    assert_eq!(next.sequence, Sequence(2));
    run(&mut s, record("channel-0", "channel-5", 2, "detected"), 2);
    // The restarted builder waits its turn like any packet.
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 1, "detected"), 1),
        Start::Deferred
    ));
    assert_eq!(s.admit(), None);
    // A halted path answers halted whatever the window: nothing waits for a slot it could not use.
    s.chain_inconsistent(&chain("b-1"), "went back");
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 9, "detected"), 0),
        Start::Halted(..)
    ));
    assert_eq!(s.waiting_builders(), 1);
}

#[test]
fn changing_the_bound_keeps_the_waiting_packets_in_order() {
    let mut s = state();
    s.set_max_builders(1);
    run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    for seq in [2, 3] {
        assert!(matches!(
            s.start(record("channel-0", "channel-5", seq, "detected"), 0),
            Start::Deferred
        ));
    }
    s.set_max_builders(3);
    assert_eq!(s.max_builders(), 3);
    let seq = |a: Option<Admit>| match a {
        Some(Admit::Packet(k, _)) => Some(k.sequence),
        _ => None,
    };
    assert_eq!(seq(s.admit()), Some(Sequence(2)));
    assert_eq!(seq(s.admit()), Some(Sequence(3)));
    assert_eq!(s.admit(), None);
}

#[test]
fn logged_packets_wait_behind_deferred_ones_and_count_as_waiting() {
    let (mut s, g1) = one_running_one_waiting();
    let logged: Vec<_> = (3..=5)
        .map(|seq| key_of(&chain("a-1"), &packet("channel-0", "channel-5", seq)))
        .collect();
    for k in &logged {
        assert!(s.log(k));
    }
    s.queue_entry(0, 3);
    assert_eq!(s.waiting_builders(), 4);
    let lane = s.logged_of(&chain("a-1"), "transfer", "channel-0");
    assert_eq!(lane.ranges().collect::<Vec<_>>(), [(3, 5)]);
    // Its end seen meanwhile: taken out of the log, its place passed over by the actor.
    assert!(s.unlog(&logged[1]));
    assert_eq!(s.waiting_builders(), 3);
    let key1 = key_of(&chain("a-1"), &packet("channel-0", "channel-5", 1));
    assert!(matches!(s.packet_exited(&key1, g1, true), Exit::Done(None)));
    assert!(matches!(s.admit(), Some(Admit::Packet(k, 0)) if k.sequence == Sequence(2)));
    assert_eq!(
        s.admit(),
        Some(Admit::Logged {
            entry: 0,
            index: 0,
            last: false
        })
    );
}
