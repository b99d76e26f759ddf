//! Waiting record writes: read at once, written by the writer thread, by a scan, at the size bound and on close,
//! and superseded by a direct write of the same packet.

use std::time::{Duration, Instant};

use relayd_messages::PacketState;

use super::SOON_MAX;
use crate::store::{summary::packet_key, PacketRecord, PacketScan, StateStore};

/// Packet `seq` of `channel-0` in `state`.
fn record(seq: u64, state: PacketState) -> PacketRecord {
    let mut record = crate::store::tests::record("channel-0", seq, "detected", 1);
    record.state = state;
    record
}

fn temp() -> StateStore {
    StateStore::from_db(sled::Config::new().temporary(true).open().unwrap()).unwrap()
}

/// Whether the record of `seq` is in the trees themselves (not only waiting).
fn written(store: &StateStore, seq: u64) -> bool {
    let key = record(seq, PacketState::Detected).key;
    store
        .trees()
        .packets
        .get(packet_key(&key))
        .unwrap()
        .is_some()
}

#[test]
fn a_waiting_write_is_read_at_once_and_written_by_the_writer_thread() {
    let store = temp();
    let r = record(1, PacketState::Submitted);
    store.put_packet_soon(&r).unwrap();
    assert_eq!(
        store.packet(&r.key).unwrap().unwrap().state,
        PacketState::Submitted
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !written(&store, 1) {
        assert!(
            Instant::now() < deadline,
            "the writer thread never wrote it"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn scans_and_counts_include_the_waiting_writes() {
    let store = temp();
    store
        .put_packet_soon(&record(1, PacketState::Detected))
        .unwrap();
    store
        .put_packet_soon(&record(2, PacketState::Acknowledged))
        .unwrap();
    let all: Vec<u64> = store
        .scan_packets(PacketScan::default())
        .map(|r| r.unwrap().key.sequence.0)
        .collect();
    assert_eq!(all, vec![1, 2]);
    let unfinished = store.unfinished_packets().unwrap();
    assert_eq!(unfinished.len(), 1);
    let (_, s) = store.summaries().unwrap().pop().unwrap();
    assert_eq!((s.pending(), s.stored_total()), (1, 2));
}

#[test]
fn a_direct_write_supersedes_a_waiting_one_of_the_same_packet() {
    let store = temp();
    store
        .put_packet_soon(&record(1, PacketState::Submitted))
        .unwrap();
    store
        .put_packet(&record(1, PacketState::Acknowledged))
        .unwrap();
    store.settle().unwrap();
    let r = store
        .packet(&record(1, PacketState::Detected).key)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, PacketState::Acknowledged);
    assert!(store.unfinished_packets().unwrap().is_empty());
}

#[test]
fn the_size_bound_writes_the_waiting_writes_at_once() {
    let store = temp();
    for seq in 1..=SOON_MAX as u64 {
        store
            .put_packet_soon(&record(seq, PacketState::Detected))
            .unwrap();
    }
    // No waiting: the last put wrote them all (the writer thread may have written some before).
    assert!((1..=SOON_MAX as u64).all(|seq| written(&store, seq)));
}

#[test]
fn closing_the_database_writes_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        let store = StateStore::open(&path).unwrap();
        store
            .put_packet_soon(&record(7, PacketState::Confirmed))
            .unwrap();
    }
    let store = StateStore::open(&path).unwrap();
    assert!(written(&store, 7));
    assert_eq!(
        store
            .packet(&record(7, PacketState::Detected).key)
            .unwrap()
            .unwrap()
            .state,
        PacketState::Confirmed
    );
}
