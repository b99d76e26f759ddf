//! Waiting record writes: read at once, written by the writer thread, by a scan, at the size bound and on close,
//! and superseded by a direct write of the same packet.

use std::time::{Duration, Instant};

use relayd_messages::PacketState;

use relayd_messages::ChainId;

use super::SOON_MAX;
use crate::store::{
    encode_intake, summary::packet_key, PacketBatch, PacketRecord, PacketScan, StateStore,
};

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

/// Whether intake entry `id` is in the trees themselves (not only waiting).
fn entry_written(store: &StateStore, id: u64) -> bool {
    store
        .trees()
        .intake
        .get(id.to_be_bytes())
        .unwrap()
        .is_some()
}

/// A one-packet intake entry of block `height`.
fn entry(height: u64) -> Vec<u8> {
    let chain = ChainId::new("ibc-0").unwrap();
    let dst = ChainId::new("ibc-1").unwrap();
    encode_intake(
        &chain,
        height,
        &[(dst, record(height, PacketState::Detected).packet)],
    )
}

#[test]
fn a_blocks_entries_and_checkpoints_are_read_while_they_wait_and_written_in_order() {
    let store = temp();
    let mut block = PacketBatch::new();
    block.put_intake(0, entry(8));
    block.set_checkpoint("ibc-0", 8);
    block.set_checkpoint("ibc-1", 3);
    store.write_soon(block).unwrap();
    // A later block of the other chain, waiting beside it, keeps both chains' checkpoints.
    let mut later = PacketBatch::new();
    later.set_checkpoint("ibc-1", 4);
    store.write_soon(later).unwrap();
    assert_eq!(store.intake(0).unwrap().unwrap().height, 8);
    assert_eq!(store.checkpoint("ibc-0").unwrap(), Some(8));
    assert_eq!(store.checkpoint("ibc-1").unwrap(), Some(4));

    store.settle().unwrap();
    assert!(entry_written(&store, 0));
    assert_eq!(store.checkpoint("ibc-0").unwrap(), Some(8));
    assert_eq!(store.checkpoint("ibc-1").unwrap(), Some(4));

    // Its removal, waiting, hides the written entry at once; written, the entry is gone.
    let mut admitted = PacketBatch::new();
    admitted.drop_intake(0);
    store.write_soon(admitted).unwrap();
    assert!(store.intake(0).unwrap().is_none());
    store.settle().unwrap();
    assert!(store.trees().intake.is_empty());
}

#[test]
fn a_failed_write_keeps_the_waiting_writes_readable_and_in_front_of_newer_ones() {
    let store = temp();
    // Damaged counts make the transaction holding a record of that channel abort.
    let damaged = record(1, PacketState::Detected).key;
    let prefix = crate::store::summary::ChannelKey::of(&damaged).prefix();
    store
        .trees()
        .summary
        .insert(prefix.clone(), b"not a summary".as_slice())
        .unwrap();
    let mut earlier = PacketBatch::new();
    earlier.put_intake(9, entry(4));
    store.write_batch(&earlier).unwrap();
    let mut block = PacketBatch::new();
    block.put(&record(1, PacketState::Detected));
    block.put_intake(0, entry(5));
    block.drop_intake(9);
    block.set_checkpoint("ibc-0", 5);
    store.write_soon(block).unwrap();
    assert!(store.settle().is_err());
    // The failed transaction removed nothing: the entry it would have removed is still written.
    assert!(entry_written(&store, 9));
    assert!(
        store.intake(9).unwrap().is_none(),
        "read as removed meanwhile"
    );
    // A newer change of the same packet, made after the failure, wins over the one that failed.
    store
        .put_packet_soon(&record(1, PacketState::Submitted))
        .unwrap();
    assert_eq!(
        store.packet(&damaged).unwrap().unwrap().state,
        PacketState::Submitted
    );
    assert!(store.intake(0).unwrap().is_some());
    assert_eq!(store.checkpoint("ibc-0").unwrap(), Some(5));
    assert!(store.trees().checkpoints.is_empty(), "nothing was written");

    store.trees().summary.remove(prefix).unwrap();
    store.settle().unwrap();
    assert!(written(&store, 1));
    assert_eq!(
        store.packet(&damaged).unwrap().unwrap().state,
        PacketState::Submitted
    );
    assert!(entry_written(&store, 0));
    assert!(!entry_written(&store, 9));
    assert!(!store.trees().checkpoints.is_empty());
}

#[test]
fn a_write_is_read_while_the_writer_writes_it() {
    let store = temp();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A second writer keeps writing out, so reads often fall while a batch moves to the trees.
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.settle().unwrap();
            }
        })
    };
    for seq in 1..=3_000 {
        let r = record(seq, PacketState::Submitted);
        store.put_packet_soon(&r).unwrap();
        for _ in 0..3 {
            let read = store.packet(&r.key).unwrap();
            assert!(read.is_some(), "packet {seq} unreadable while written");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}
