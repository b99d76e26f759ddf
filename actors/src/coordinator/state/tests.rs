//! Each of the coordinator's rules, without actix or sled: numbers stand in for builder addresses.

use std::collections::HashMap;
use std::time::Duration;

use relayd_messages::{
    ChainId, ChannelAttributes, ChannelId, ClientId, ConnectionAttributes, ConnectionId,
    CorrelationId, HandshakeState, Height, IbcEvent, Packet, PacketSeen, PortId, RelayObject,
    Sequence,
};

use super::*;
use crate::coordinator::decisions::Routed;
use crate::store::{PacketRecord, Transition};

mod handshakes;
mod window;

type State = CoordinatorState<u32, u32>;

fn chain(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn route(src: &str, src_channel: &str, dst: &str, dst_channel: &str, ordered: bool) -> Route {
    Route {
        src: chain(src),
        src_port: "transfer".into(),
        src_channel: src_channel.into(),
        dst: chain(dst),
        dst_port: "transfer".into(),
        dst_channel: dst_channel.into(),
        dst_client: ClientId::new(format!(
            "07-tendermint-{}",
            if src == "a-1" { 0 } else { 1 }
        ))
        .unwrap(),
        src_client: ClientId::new(format!(
            "07-tendermint-{}",
            if src == "a-1" { 1 } else { 0 }
        ))
        .unwrap(),
        ordered,
        priority: 0,
    }
}

/// a-1/channel-0 <-> b-1/channel-5 (unordered) and a-1/channel-1 <-> b-1/channel-6 (ordered).
fn routes() -> Routes {
    let mut routes = Routes::default();
    for r in [
        route("a-1", "channel-0", "b-1", "channel-5", false),
        route("a-1", "channel-1", "b-1", "channel-6", true),
    ] {
        routes.insert(r.reversed());
        routes.insert(r);
    }
    routes
}

fn state() -> State {
    CoordinatorState::new(routes(), Box::new(|_: &ChainId, _: &str, _: &str| true))
}

fn packet(src_channel: &str, dst_channel: &str, seq: u64) -> Packet {
    Packet {
        sequence: Sequence(seq),
        source_port: PortId::new("transfer").unwrap(),
        source_channel: ChannelId::new(src_channel).unwrap(),
        destination_port: PortId::new("transfer").unwrap(),
        destination_channel: ChannelId::new(dst_channel).unwrap(),
        data: b"data".to_vec(),
        timeout_height: Some(Height::new(1, 100)),
        timeout_timestamp_ns: 0,
    }
}

fn record(src_channel: &str, dst_channel: &str, seq: u64, state: &str) -> PacketRecord {
    let state: relayd_messages::PacketState = state.parse().unwrap();
    let packet = packet(src_channel, dst_channel, seq);
    PacketRecord {
        key: key_of(&chain("a-1"), &packet),
        dst_chain: "b-1".into(),
        packet,
        correlation: CorrelationId::fresh(),
        state,
        send_height: 1,
        ack: None,
        tx_hashes: Vec::new(),
        attempts: 0,
        last_error: None,
        created_ms: 0,
        updated_ms: 0,
        history: vec![Transition {
            state,
            at_ms: 0,
            tx_hash: None,
            error: None,
        }],
        skip_reason: None,
    }
}

/// Starts `record` and records it as running with handle `handle`; returns its generation.
fn run(s: &mut State, record: PacketRecord, handle: u32) -> u64 {
    match s.start(record, 0) {
        Start::Go(launch) => {
            s.launched(&launch, handle, 0);
            launch.generation
        }
        other => panic!("expected a start, got {other:?}"),
    }
}

fn channel_attrs(port: &str, channel: &str) -> ChannelAttributes {
    ChannelAttributes {
        port_id: PortId::new(port).unwrap(),
        channel_id: ChannelId::new(channel).unwrap(),
        counterparty_port_id: PortId::new("transfer").unwrap(),
        counterparty_channel_id: None,
        connection_id: ConnectionId::new("connection-0").unwrap(),
    }
}

#[test]
fn a_send_on_a_relayed_channel_is_routed_once() {
    let mut s = state();
    let p = packet("channel-0", "channel-5", 1);
    let sent = s.route(&chain("a-1"), &IbcEvent::SendPacket(p.clone()), None);
    assert!(
        matches!(&sent, Some(Routed::Sent { dst, key }) if *dst == chain("b-1") && key.sequence == Sequence(1))
    );
    // Unknown channel: not ours.
    let other = packet("channel-9", "channel-5", 1);
    assert_eq!(
        s.route(&chain("a-1"), &IbcEvent::SendPacket(other), None),
        None
    );
    // Once its builder runs, a second send event (a replay) is not routed again.
    run(&mut s, record("channel-0", "channel-5", 1, "detected"), 7);
    assert_eq!(s.route(&chain("a-1"), &IbcEvent::SendPacket(p), None), None);
}

#[test]
fn the_channel_filter_and_the_scope_exclude_packets() {
    let s: State = CoordinatorState::new(
        routes(),
        Box::new(|_: &ChainId, _: &str, channel: &str| channel != "channel-0"),
    );
    let p = packet("channel-0", "channel-5", 1);
    assert_eq!(
        s.route(&chain("a-1"), &IbcEvent::SendPacket(p.clone()), None),
        None
    );
    let ack = IbcEvent::WriteAcknowledgement {
        packet: p,
        ack: b"ok".to_vec(),
    };
    assert_eq!(s.route(&chain("b-1"), &ack, None), None);

    let mut s = state();
    s.set_scope(Some(Scope {
        chain: chain("a-1"),
        port: "transfer".into(),
        channel: "channel-0".into(),
        sequences: Some(vec![2]),
    }));
    let out = packet("channel-0", "channel-5", 1);
    assert_eq!(
        s.route(&chain("a-1"), &IbcEvent::SendPacket(out), None),
        None
    );
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 1, "detected"), 0),
        Start::Skip
    ));
    let inside = packet("channel-0", "channel-5", 2);
    assert!(s
        .route(&chain("a-1"), &IbcEvent::SendPacket(inside), None)
        .is_some());
}

#[test]
fn acks_are_routed_by_their_destination_and_closes_by_their_source() {
    let mut s = state();
    let p = packet("channel-0", "channel-5", 3);
    let ack = IbcEvent::WriteAcknowledgement {
        packet: p.clone(),
        ack: b"ok".to_vec(),
    };
    // Written on the destination, keyed by the source.
    match s.route(&chain("b-1"), &ack, None) {
        Some(Routed::AckWritten { dst, key, live }) => {
            assert_eq!(dst, chain("b-1"));
            assert_eq!(key.src_chain, chain("a-1"));
            assert!(!live);
        }
        other => panic!("{other:?}"),
    }
    run(&mut s, record("channel-0", "channel-5", 3, "submitted"), 1);
    assert!(matches!(
        s.route(&chain("b-1"), &ack, None),
        Some(Routed::AckWritten { live: true, .. })
    ));

    let hash = "AB".to_string();
    match s.route(
        &chain("a-1"),
        &IbcEvent::TimeoutPacket(p.clone()),
        Some(&hash),
    ) {
        Some(Routed::Finished { seen, live, .. }) => {
            assert_eq!(
                seen,
                PacketSeen::TimeoutProcessed {
                    tx_hash: Some(hash.clone())
                }
            );
            assert!(live);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.route(&chain("a-1"), &IbcEvent::AcknowledgePacket(p), None),
        Some(Routed::Finished {
            seen: PacketSeen::AckProcessed { tx_hash: None },
            ..
        })
    ));
}

#[test]
fn handshake_events_name_the_end_that_emitted_them() {
    let s = state();
    let conn = ConnectionAttributes {
        connection_id: ConnectionId::new("connection-3").unwrap(),
        client_id: ClientId::new("07-tendermint-0").unwrap(),
        counterparty_connection_id: None,
        counterparty_client_id: ClientId::new("07-tendermint-1").unwrap(),
    };
    assert_eq!(
        s.route(&chain("a-1"), &IbcEvent::ConnectionOpenTry(conn), None),
        Some(Routed::Handshake {
            object: RelayObject::Connection {
                chain: chain("a-1"),
                connection: ConnectionId::new("connection-3").unwrap(),
            },
            state: HandshakeState::OpenTry,
        })
    );
    // An ordered timeout closes the end as a close init does.
    let closed = s.route(
        &chain("b-1"),
        &IbcEvent::ChannelClosed(channel_attrs("transfer", "channel-6")),
        None,
    );
    assert!(matches!(
        closed,
        Some(Routed::Handshake {
            state: HandshakeState::CloseInit,
            ..
        })
    ));
}

#[test]
fn a_closed_destination_is_told_to_running_and_later_builders() {
    let mut s = state();
    run(&mut s, record("channel-0", "channel-5", 1, "submitted"), 1);
    // Not a destination of any route: nothing.
    assert_eq!(
        s.destination_closed(&chain("b-1"), &channel_attrs("transfer", "channel-9")),
        None
    );
    // b-1/channel-5 receives a-1/channel-0's packets.
    let told = s.destination_closed(&chain("b-1"), &channel_attrs("transfer", "channel-5"));
    assert_eq!(told.map(|k| k.len()), Some(1));
    match s.start(record("channel-0", "channel-5", 2, "detected"), 0) {
        Start::Go(launch) => assert!(launch.destination_closed),
        other => panic!("{other:?}"),
    }
    match s.start(record("channel-1", "channel-6", 1, "detected"), 0) {
        Start::Go(launch) => assert!(!launch.destination_closed),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_ordered_lane_works_on_one_receive_at_a_time_in_sequence_order() {
    let mut s = state();
    run(&mut s, record("channel-1", "channel-6", 5, "detected"), 5);
    // Later sequences wait, whatever order they arrive in.
    assert!(matches!(
        s.start(record("channel-1", "channel-6", 7, "detected"), 0),
        Start::Queued
    ));
    assert!(matches!(
        s.start(record("channel-1", "channel-6", 6, "detected"), 2),
        Start::Queued
    ));
    // A packet already received needs no turn, nor does an unordered channel's.
    assert!(matches!(
        s.start(record("channel-1", "channel-6", 8, "confirmed"), 0),
        Start::Go(_)
    ));
    let mut acked = record("channel-1", "channel-6", 9, "detected");
    acked.ack = Some(b"ok".to_vec());
    assert!(matches!(s.start(acked, 0), Start::Go(_)));
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 1, "detected"), 0),
        Start::Go(_)
    ));

    let five = record("channel-1", "channel-6", 5, "detected").key;
    // Progress short of receipt keeps the lane.
    assert!(s
        .lifecycle_changed(&five, relayd_messages::PacketState::Submitted, false)
        .is_none());
    // Received: the lowest waiting sequence goes next, with its restarts.
    let (next, restarts) = s
        .lifecycle_changed(&five, relayd_messages::PacketState::Confirmed, false)
        .expect("next");
    assert_eq!((next.key.sequence, restarts), (Sequence(6), 2));
    // Releasing again (the builder's exit after its receipt) frees nothing more.
    assert!(s.release_lane(&five).is_none());
    let six = run(&mut s, next, 6);
    assert!(six > 0);
    let (next, _) = s
        .release_lane(&record("channel-1", "channel-6", 6, "detected").key)
        .expect("seven");
    assert_eq!(next.key.sequence, Sequence(7));
}

#[test]
fn an_unusable_client_halts_its_paths_until_it_is_usable_again() {
    let mut s = state();
    run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    // The client on b-1 of a-1: receives a-1 -> b-1 and acks b-1 -> a-1 go through it.
    let (host, client) = (chain("b-1"), ClientId::new("07-tendermint-0").unwrap());
    assert_eq!(s.paths_through(&host, &client), 4);
    let halted = s.client_unusable(&host, &client, "expired");
    assert_eq!(halted.len(), 1);
    match s.start(record("channel-0", "channel-5", 2, "detected"), 0) {
        Start::Halted(_, reason) => assert_eq!(reason, "expired"),
        other => panic!("{other:?}"),
    }
    // A halted builder's exit does not restart it.
    let key = record("channel-0", "channel-5", 1, "detected").key;
    let generation = s.builder(&key).unwrap().generation;
    assert!(matches!(
        s.packet_exited(&key, generation, false),
        Exit::Done(None)
    ));

    // Another client's recovery resumes nothing; this one's resumes the paths through it.
    assert!(s.client_usable(&chain("a-1"), &client).is_empty());
    assert_eq!(s.client_usable(&host, &client).len(), 4);
    assert!(s.client_usable(&host, &client).is_empty());
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 2, "detected"), 0),
        Start::Go(_)
    ));
}

#[test]
fn an_inconsistent_chain_halts_every_path_to_and_from_it_until_consistent() {
    let mut s = state();
    run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    let b = chain("b-1");
    assert_eq!(s.paths_of(&b), 4);
    // The live builder of a-1 -> b-1 stops; new packets either way wait with the reason.
    assert_eq!(s.chain_inconsistent(&b, "height went back").len(), 1);
    match s.start(record("channel-0", "channel-5", 2, "detected"), 0) {
        Start::Halted(_, reason) => assert_eq!(reason, "height went back"),
        other => panic!("{other:?}"),
    }
    let back = route("b-1", "channel-5", "a-1", "channel-0", false);
    assert_eq!(
        s.halt_of(&back).map(String::as_str),
        Some("height went back")
    );
    // A client halt on the same paths outlives the chain's recovery: only the free paths resume.
    let (host, client) = (chain("b-1"), ClientId::new("07-tendermint-0").unwrap());
    s.client_unusable(&host, &client, "expired");
    assert!(s.chain_consistent(&chain("a-1")).is_empty());
    assert!(s.chain_consistent(&b).is_empty());
    assert!(s.chain_consistent(&b).is_empty());
    assert_eq!(s.client_usable(&host, &client).len(), 4);
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 2, "detected"), 0),
        Start::Go(_)
    ));
    // Without another halt, recovery resumes all four paths.
    s.chain_inconsistent(&b, "another chain");
    assert_eq!(s.chain_consistent(&b).len(), 4);
}

#[test]
fn a_failed_builder_restarts_with_backoff_and_a_new_generation() {
    let mut s = state();
    let key = record("channel-0", "channel-5", 1, "detected").key;
    let first = run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    // A report of another generation is stale.
    assert!(matches!(
        s.packet_exited(&key, first + 1, false),
        Exit::Stale
    ));
    match s.packet_exited(&key, first, false) {
        Exit::Restart { delay, restarts } => {
            assert_eq!(delay, Duration::from_millis(50));
            assert_eq!(restarts, 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.builder(&key).is_none());
    // The restart comes back with one more restart and a later generation, and waits longer next time.
    let second = match s.start(record("channel-0", "channel-5", 1, "detected"), 1) {
        Start::Go(launch) => {
            s.launched(&launch, 2, 0);
            launch.generation
        }
        other => panic!("{other:?}"),
    };
    assert!(second > first);
    // The first generation's late exit changes nothing.
    assert!(matches!(s.packet_exited(&key, first, true), Exit::Stale));
    match s.packet_exited(&key, second, false) {
        Exit::Restart { delay, restarts } => {
            assert_eq!((delay, restarts), (Duration::from_millis(100), 1))
        }
        other => panic!("{other:?}"),
    }
    // A builder cannot run twice.
    run(&mut s, record("channel-0", "channel-5", 1, "detected"), 3);
    assert!(matches!(
        s.start(record("channel-0", "channel-5", 1, "detected"), 0),
        Start::Skip
    ));
}

#[test]
fn a_destination_tip_goes_only_to_builders_whose_packet_it_timed_out() {
    let mut s = state();
    run(&mut s, record("channel-0", "channel-5", 1, "detected"), 1);
    let mut late = record("channel-0", "channel-5", 2, "detected");
    late.packet.timeout_height = Some(Height::new(1, 500));
    run(&mut s, late, 2);
    // b-1 has revision 1: height 100 passes the first packet's timeout only.
    s.observe_tip(&chain("b-1"), 99, 0);
    assert!(s.timed_out_by(&chain("b-1"), 99, 0).is_empty());
    s.observe_tip(&chain("b-1"), 100, 0);
    let told = s.timed_out_by(&chain("b-1"), 100, 0);
    assert_eq!(told.iter().map(|k| k.sequence.0).collect::<Vec<_>>(), [1]);
    // The source's tip concerns none of them; tips are remembered for builders started later.
    s.observe_tip(&chain("a-1"), 1_000, 0);
    assert!(s.timed_out_by(&chain("a-1"), 1_000, 0).is_empty());
    assert_eq!(s.tips().get(&chain("b-1")), Some(&(100, 0)));
    match s.start(record("channel-0", "channel-5", 3, "detected"), 0) {
        Start::Go(launch) => assert_eq!(launch.tip, Some((100, 0))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn periodic_clearing_is_due_every_interval_of_the_source_blocks() {
    let mut s = state();
    s.set_clear_intervals(HashMap::from([(chain("a-1"), 10), (chain("b-1"), 0)]));
    assert!(s.clear_due(&chain("a-1"), 9).is_empty());
    let due = s.clear_due(&chain("a-1"), 20);
    let mut channels: Vec<_> = due.iter().map(|c| c.channel.clone()).collect();
    channels.sort();
    assert_eq!(channels, ["channel-0", "channel-1"]);
    assert!(s.clear_due(&chain("b-1"), 10).is_empty());
}

#[test]
fn the_tracked_clients_are_both_ends_of_every_route() {
    let s = state();
    let tracked = s.tracked_clients();
    assert!(tracked.contains(&(chain("b-1"), ClientId::new("07-tendermint-0").unwrap())));
    assert!(tracked.contains(&(chain("a-1"), ClientId::new("07-tendermint-1").unwrap())));
    assert_eq!(tracked.len(), 2);
}

#[test]
fn skipped_packets_are_never_reopened_by_clearing_while_failed_ones_are() {
    use super::super::clearing::{relayable, reopen};
    let mut skipped = record("channel-0", "channel-1", 1, "skipped");
    assert!(!relayable(&skipped) && !reopen(&mut skipped));
    assert_eq!(skipped.state, PacketState::Skipped);
    let mut failed = record("channel-0", "channel-1", 2, "failed");
    assert!(relayable(&failed) && reopen(&mut failed));
    assert_eq!(failed.state, PacketState::Detected);
}
