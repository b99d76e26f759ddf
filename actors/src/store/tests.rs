//! Tests of the state database on disk: shared handles, the packet index and compaction.

use relayd_messages::{
    ChainId, ChannelId, CorrelationId, Packet, PacketKey, PacketState, PortId, Sequence,
};

use super::{ChannelKey, PacketBatch, PacketRecord, PacketScan, StateStore};

/// A transfer packet's record on `channel` of `ibc-0` towards `ibc-1`.
pub(super) fn record(channel: &str, seq: u64, state: &str, updated_ms: u64) -> PacketRecord {
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
        state: st(state),
        send_height: 1,
        ack: None,
        tx_hashes: Vec::new(),
        attempts: 0,
        last_error: None,
        created_ms: 0,
        updated_ms,
        history: Vec::new(),
        skip_reason: None,
    }
}

/// The state named `name`.
fn st(name: &str) -> PacketState {
    name.parse().unwrap()
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
    assert_eq!(zero.1.states[&st("detected")], 2);
    assert_eq!(zero.1.states[&st("acknowledged")], 1);
    assert_eq!(zero.1.states[&st("timed_out")], 1);
    assert_eq!(zero.1.pending(), 2);
    assert_eq!(summaries[1].1.states[&st("failed")], 1);
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
    assert_eq!(s.states[&st("acknowledged")], 2);
    assert_eq!(s.states[&st("timed_out")], 1);
    assert_eq!(s.stored(st("acknowledged")), 1);
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
    assert_eq!(
        (s.states[&st("acknowledged")], s.states[&st("detected")]),
        (1, 1)
    );
    assert_eq!(store.unfinished_packets().unwrap().len(), 1);
    assert_eq!(store.compact(10, 10).unwrap(), 1);
}

/// A record as relayd wrote it while the state was a plain string: every field by hand, not through the types.
fn previous_version_record(seq: u64, state: &str, updated_ms: u64) -> String {
    format!(
        r#"{{"key":{{"src_chain":"ibc-0","src_port":"transfer","src_channel":"channel-0","sequence":{seq}}},
        "dst_chain":"ibc-1",
        "packet":{{"sequence":{seq},"source_port":"transfer","source_channel":"channel-0",
            "destination_port":"transfer","destination_channel":"channel-9","data":[123,125],
            "timeout_height":{{"revision_number":1,"revision_height":90}},"timeout_timestamp_ns":0}},
        "correlation":42,"state":"{state}","send_height":3,"ack":null,"tx_hashes":["AB"],"attempts":1,
        "last_error":null,"created_ms":1,"updated_ms":{updated_ms},
        "history":[{{"state":"detected","at_ms":1,"tx_hash":null,"error":null}},
                   {{"state":"{state}","at_ms":{updated_ms},"tx_hash":"AB","error":null}}]}}"#
    )
}

#[test]
fn a_database_written_with_state_names_opens_and_reads_as_typed_states() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        // The previous version's trees, written byte for byte: two records, their channel's counts (keyed by
        // state name), the pending and retention index entries, and the marker that the index is built.
        let db = sled::Config::new().path(&path).open().unwrap();
        let key =
            |seq: u64| super::summary::packet_key(&record("channel-0", seq, "detected", 0).key);
        let packets = db.open_tree("packets").unwrap();
        packets
            .insert(
                key(1),
                previous_version_record(1, "acknowledged", 500).as_bytes(),
            )
            .unwrap();
        packets
            .insert(
                key(2),
                previous_version_record(2, "proof_generated", 600).as_bytes(),
            )
            .unwrap();
        db.open_tree("packet_summary")
            .unwrap()
            .insert(
                channel("channel-0").prefix(),
                r#"{"states":{"acknowledged":3,"proof_generated":1},"compacted":{"acknowledged":2}}"#
                    .as_bytes(),
            )
            .unwrap();
        db.open_tree("packets_pending")
            .unwrap()
            .insert(key(2), &[])
            .unwrap();
        db.open_tree("packets_finished")
            .unwrap()
            .insert(super::summary::finished_key(500, &key(1)), &[])
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(b"packet_index_v1", &[])
            .unwrap();
        db.flush().unwrap();
    }
    let store = StateStore::open(&path).unwrap();
    let acked = store
        .packet(&record("channel-0", 1, "detected", 0).key)
        .unwrap()
        .expect("the old record reads");
    assert_eq!(acked.state, PacketState::Acknowledged);
    assert_eq!(
        acked.history.iter().map(|t| t.state).collect::<Vec<_>>(),
        [PacketState::Detected, PacketState::Acknowledged]
    );
    assert_eq!(acked.packet.data, b"{}");
    let (_, s) = &store.summaries().unwrap()[0];
    assert_eq!(s.states[&PacketState::Acknowledged], 3);
    assert_eq!(s.stored(PacketState::Acknowledged), 1);
    assert_eq!(s.pending(), 1);
    let unfinished = store.unfinished_packets().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].state, PacketState::ProofGenerated);

    // Writing over an old record moves its count from the old state's name to the new one.
    let mut moved = unfinished[0].clone();
    moved.state = PacketState::TimedOut;
    moved.updated_ms = 700;
    store.put_packet(&moved).unwrap();
    let (_, s) = &store.summaries().unwrap()[0];
    assert_eq!(s.pending(), 0);
    assert_eq!(s.states.get(&PacketState::ProofGenerated), None);
    assert_eq!(s.states[&PacketState::TimedOut], 1);
    // The rewritten record is in the binary encoding now, and reads back whole.
    let raw = store
        .trees()
        .packets
        .get(store_key(&moved.key))
        .unwrap()
        .unwrap();
    assert_ne!(raw[0], b'{', "written in the binary encoding");
    let read = store.packet(&moved.key).unwrap().unwrap();
    assert_eq!(read, moved);
    assert_eq!(read.history[1].state, PacketState::ProofGenerated);
    assert_eq!(
        store.compact(1_000, 10).unwrap(),
        2,
        "both finished records compact"
    );
}

fn store_key(key: &PacketKey) -> Vec<u8> {
    super::summary::packet_key(key)
}

/// The changes of one block: new packets on two channels, and packets moving on (one of them twice, one to a
/// final state) after records written earlier.
fn block_changes() -> Vec<PacketRecord> {
    vec![
        record("channel-0", 3, "detected", 20),
        record("channel-1", 7, "detected", 20),
        record("channel-0", 1, "submitted", 21),
        record("channel-0", 1, "confirmed", 22),
        record("channel-0", 2, "acknowledged", 22),
        record("channel-1", 5, "timed_out", 23),
        record("channel-1", 6, "detected", 23),
    ]
}

fn earlier(store: &StateStore) {
    for (channel, seq) in [("channel-0", 1), ("channel-0", 2), ("channel-1", 5)] {
        store
            .put_packet(&record(channel, seq, "detected", 10))
            .unwrap();
    }
}

/// Everything the index says (counts, pending keys, retention keys), to compare two databases.
type Index = (
    Vec<(ChannelKey, super::ChannelSummary)>,
    Vec<Vec<u8>>,
    Vec<Vec<u8>>,
);

fn index_of(store: &StateStore) -> Index {
    let keys = |tree: &sled::Tree| tree.iter().keys().map(|k| k.unwrap().to_vec()).collect();
    let t = store.trees();
    (
        store.summaries().unwrap(),
        keys(&t.pending),
        keys(&t.finished),
    )
}

#[test]
fn a_batch_indexes_its_records_as_writing_them_one_by_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let one_by_one = StateStore::open(&dir.path().join("a")).unwrap();
    let batched = StateStore::open(&dir.path().join("b")).unwrap();
    earlier(&one_by_one);
    earlier(&batched);
    let mut batch = PacketBatch::new();
    for r in block_changes() {
        one_by_one.put_packet(&r).unwrap();
        batch.put(&r);
    }
    assert_eq!(batch.len(), 6, "a packet changed twice is written once");
    // Read through the batch before it is written: its last change.
    let key = record("channel-0", 1, "detected", 0).key;
    assert_eq!(
        batched.packet_in(&batch, &key).unwrap().unwrap().state,
        st("confirmed")
    );
    assert_eq!(batched.packet(&key).unwrap().unwrap().state, st("detected"));
    batched.write_batch(&batch).unwrap();

    assert_eq!(index_of(&batched), index_of(&one_by_one));
    let (summaries, pending, finished) = index_of(&batched);
    assert_eq!(summaries[0].1.pending(), 2);
    assert_eq!(summaries[0].1.states[&st("acknowledged")], 1);
    assert_eq!(summaries[1].1.pending(), 2);
    assert_eq!(summaries[1].1.states[&st("timed_out")], 1);
    assert_eq!((pending.len(), finished.len()), (4, 2));
    let all = |s: &StateStore| s.packets().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(all(&batched), all(&one_by_one));
}

#[test]
fn a_batch_that_fails_writes_none_of_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    earlier(&store);
    // channel-1's counts are damaged: the batch aborts when it reaches them, after channel-0's records.
    store
        .trees()
        .summary
        .insert(channel("channel-1").prefix(), b"not a summary".as_slice())
        .unwrap();
    let zero_counts = store
        .trees()
        .summary
        .get(channel("channel-0").prefix())
        .unwrap();
    assert!(zero_counts.is_some());
    let before = (
        store.packets().collect::<Result<Vec<_>, _>>().unwrap(),
        store.trees().pending.len(),
        store.trees().finished.len(),
    );
    let mut batch = PacketBatch::new();
    for r in block_changes() {
        batch.put(&r);
    }
    assert!(store.write_batch(&batch).is_err());
    let after = (
        store.packets().collect::<Result<Vec<_>, _>>().unwrap(),
        store.trees().pending.len(),
        store.trees().finished.len(),
    );
    assert_eq!(after, before, "nothing of the batch was written");
    assert_eq!(
        store
            .trees()
            .summary
            .get(channel("channel-0").prefix())
            .unwrap(),
        zero_counts,
        "channel-0's counts unchanged"
    );
}
