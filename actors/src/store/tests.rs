//! Tests of the state database on disk: shared handles, the packet index and compaction.

use relayd_messages::{ChainId, ChannelId, CorrelationId, Packet, PacketKey, PortId, Sequence};

use super::{ChannelKey, PacketRecord, PacketScan, StateStore};

fn record(channel: &str, seq: u64, state: &str, updated_ms: u64) -> PacketRecord {
    let key = PacketKey {
        src_chain: ChainId::new("ibc-0").unwrap(),
        src_port: PortId::new("transfer").unwrap(),
        src_channel: ChannelId::new(channel).unwrap(),
        sequence: Sequence(seq),
    };
    PacketRecord {
        packet: Packet {
            sequence: key.sequence,
            source_port: key.src_port.clone(),
            source_channel: key.src_channel.clone(),
            destination_port: key.src_port.clone(),
            destination_channel: ChannelId::new("channel-9").unwrap(),
            data: b"{}".to_vec(),
            timeout_height: None,
            timeout_timestamp_ns: 0,
        },
        key,
        dst_chain: "ibc-1".into(),
        correlation: CorrelationId::fresh(),
        state: state.into(),
        send_height: 1,
        ack: None,
        tx_hashes: Vec::new(),
        attempts: 0,
        last_error: None,
        created_ms: 0,
        updated_ms,
        history: Vec::new(),
    }
}

fn channel(name: &str) -> ChannelKey {
    ChannelKey {
        chain: "ibc-0".into(),
        port: "transfer".into(),
        channel: name.into(),
    }
}

#[test]
fn opens_of_one_folder_share_the_database_and_the_last_drop_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let first = StateStore::open(&path).unwrap();
    // A second open while the first is alive: with a second sled handle this was "could not acquire lock".
    let second = StateStore::open(&dir.path().join("./state")).expect("shares the open database");
    first.set_checkpoint("ibc-0", 7).unwrap();
    assert_eq!(second.checkpoint("ibc-0").unwrap(), Some(7));
    drop(first);
    second.flush().unwrap();
    drop(second);
    // Closed: sled itself can take the folder again.
    let raw = sled::Config::new()
        .path(&path)
        .open()
        .expect("lock released");
    drop(raw);
    assert_eq!(
        StateStore::open(&path)
            .unwrap()
            .checkpoint("ibc-0")
            .unwrap(),
        Some(7)
    );
}

#[test]
fn opens_racing_with_the_last_drop_on_other_threads_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..25u64 {
                    let store = StateStore::open(&path).expect("open while others open and close");
                    store.set_checkpoint(&format!("c{n}"), i).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = StateStore::open(&path).unwrap();
    for n in 0..4 {
        assert_eq!(store.checkpoint(&format!("c{n}")).unwrap(), Some(24));
    }
}

#[test]
fn every_write_keeps_the_channel_counts_and_pending_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    for seq in 1..=4 {
        store
            .put_packet(&record("channel-0", seq, "detected", 10))
            .unwrap();
    }
    store
        .put_packet(&record("channel-0", 1, "submitted", 11))
        .unwrap();
    store
        .put_packet(&record("channel-0", 1, "acknowledged", 12))
        .unwrap();
    store
        .put_packet(&record("channel-0", 2, "timed_out", 12))
        .unwrap();
    // Rewriting a record in the same state (a new tx hash) changes no count.
    store
        .put_packet(&record("channel-0", 2, "timed_out", 13))
        .unwrap();
    store
        .put_packet(&record("channel-1", 5, "failed", 12))
        .unwrap();

    let summaries = store.summaries().unwrap();
    let zero = &summaries[0];
    assert_eq!(zero.0, channel("channel-0"));
    assert_eq!(zero.1.states["detected"], 2);
    assert_eq!(zero.1.states["acknowledged"], 1);
    assert_eq!(zero.1.states["timed_out"], 1);
    assert_eq!(zero.1.pending(), 2);
    assert_eq!(summaries[1].1.states["failed"], 1);
    assert_eq!(
        store.oldest_pending(&channel("channel-0")).unwrap(),
        Some(3)
    );
    assert_eq!(store.oldest_pending(&channel("channel-1")).unwrap(), None);
    let unfinished: Vec<u64> = store
        .unfinished_packets()
        .unwrap()
        .iter()
        .map(|r| r.key.sequence.0)
        .collect();
    assert_eq!(unfinished, vec![3, 4]);
}

#[test]
fn compaction_removes_expired_finished_records_and_keeps_their_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    store
        .put_packet(&record("channel-0", 1, "acknowledged", 100))
        .unwrap();
    store
        .put_packet(&record("channel-0", 2, "timed_out", 200))
        .unwrap();
    store
        .put_packet(&record("channel-0", 3, "acknowledged", 900))
        .unwrap();
    store
        .put_packet(&record("channel-0", 4, "failed", 100))
        .unwrap();
    store
        .put_packet(&record("channel-0", 5, "submitted", 100))
        .unwrap();

    // Bounded batches: one record, then the rest of what expired before 500.
    assert_eq!(store.compact(500, 1).unwrap(), 1);
    assert_eq!(store.compact(500, 100).unwrap(), 1);
    assert_eq!(store.compact(500, 100).unwrap(), 0);

    let left: Vec<u64> = store.packets().map(|r| r.unwrap().key.sequence.0).collect();
    assert_eq!(left, vec![3, 4, 5], "failed and unfinished records stay");
    let (_, s) = &store.summaries().unwrap()[0];
    assert_eq!(s.states["acknowledged"], 2);
    assert_eq!(s.states["timed_out"], 1);
    assert_eq!(s.stored("acknowledged"), 1);
    assert_eq!(s.stored_total(), 3);
}

#[test]
fn a_record_changed_after_its_finish_is_compacted_by_its_last_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    store
        .put_packet(&record("channel-0", 1, "acknowledged", 100))
        .unwrap();
    store
        .put_packet(&record("channel-0", 1, "acknowledged", 800))
        .unwrap();
    assert_eq!(store.compact(500, 10).unwrap(), 0, "its old entry is gone");
    assert_eq!(store.packets().count(), 1);
    assert_eq!(store.compact(1000, 10).unwrap(), 1);
    assert_eq!(store.packets().count(), 0);
}

#[test]
fn scans_start_after_a_key_and_stay_in_their_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    for seq in 1..=5 {
        let state = if seq % 2 == 0 {
            "submitted"
        } else {
            "acknowledged"
        };
        store
            .put_packet(&record("channel-0", seq, state, 1))
            .unwrap();
    }
    let mut other = record("channel-0", 1, "detected", 1);
    other.key.src_chain = ChainId::new("ibc-00").unwrap();
    store.put_packet(&other).unwrap();

    let after = record("channel-0", 2, "detected", 1).key;
    let page: Vec<u64> = store
        .scan_packets(PacketScan {
            chain: Some("ibc-0"),
            after: Some(&after),
            pending_only: false,
        })
        .map(|r| r.unwrap().key.sequence.0)
        .collect();
    assert_eq!(page, vec![3, 4, 5], "ibc-00 is another chain");
    let pending: Vec<u64> = store
        .scan_packets(PacketScan {
            chain: Some("ibc-0"),
            after: None,
            pending_only: true,
        })
        .map(|r| r.unwrap().key.sequence.0)
        .collect();
    assert_eq!(pending, vec![2, 4]);
}

#[test]
fn a_database_written_before_the_index_gets_it_built_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        let store = StateStore::open(&path).unwrap();
        store
            .put_packet(&record("channel-0", 1, "acknowledged", 5))
            .unwrap();
        store
            .put_packet(&record("channel-0", 2, "detected", 5))
            .unwrap();
        // As an older relayd left it: records only.
        let t = store.trees();
        for tree in [&t.summary, &t.pending, &t.finished, &t.meta] {
            tree.clear().unwrap();
        }
        store.flush().unwrap();
    }
    let store = StateStore::open(&path).unwrap();
    let (_, s) = &store.summaries().unwrap()[0];
    assert_eq!((s.states["acknowledged"], s.states["detected"]), (1, 1));
    assert_eq!(store.unfinished_packets().unwrap().len(), 1);
    assert_eq!(store.compact(10, 10).unwrap(), 1);
}
