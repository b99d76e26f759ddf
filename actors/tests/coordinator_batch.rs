//! The coordinator's block batch, in process: the records one observed block changes are written together with
//! the intake entry of its new packets, an event later in the block sees what an earlier one wrote, and a
//! restart admits what the log holds. The chains' actors are stand-ins that take every
//! request and never answer, so builders park and only the coordinator's own writes are looked at.

use std::collections::HashMap;

use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use relayd_actors::chain_link::ChainLink;
use relayd_actors::coordinator::RelayCoordinator;
use relayd_actors::routes::Routes;
use relayd_actors::store::StateStore;
use relayd_messages::{
    BlockObserved, ChainId, ChannelId, ClientId, ClientSummary, ClientUpdate, IbcEvent,
    ObservedEvent, Packet, PacketKey, PacketState, PortId, PrepareClientUpdate, Proven,
    QueryClient, QueryCommitments, QueryPacketEvents, QueryProof, QueryUnreceived, RelayError,
    Route, Sequence, SubmitTx, TxReport,
};

/// A chain actor that takes every request and never answers.
struct Parked;

impl Actor for Parked {
    type Context = Context<Self>;
}

macro_rules! parked {
    ($($msg:ty => $out:ty),* $(,)?) => {
        $(impl Handler<$msg> for Parked {
            type Result = ResponseFuture<Result<$out, RelayError>>;
            fn handle(&mut self, _: $msg, _: &mut Self::Context) -> Self::Result {
                Box::pin(std::future::pending())
            }
        })*
    };
}

parked!(
    QueryProof => Proven,
    QueryClient => ClientSummary,
    QueryCommitments => Vec<u64>,
    QueryUnreceived => Vec<u64>,
    QueryPacketEvents => Vec<ObservedEvent>,
    PrepareClientUpdate => ClientUpdate,
    SubmitTx => TxReport,
);

fn id(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn link(chain: &str, parked: &Addr<Parked>) -> ChainLink {
    let link = ChainLink::new(id(chain), format!("{chain}-relayer"), b"ibc".to_vec());
    link.update(|r| {
        r.proof = Some(parked.clone().recipient());
        r.client = Some(parked.clone().recipient());
        r.commitments = Some(parked.clone().recipient());
        r.unreceived = Some(parked.clone().recipient());
        r.events = Some(parked.clone().recipient());
        r.update = Some(parked.clone().recipient());
        r.submit = Some(parked.clone().recipient());
    });
    link
}

fn packet(seq: u64) -> Packet {
    Packet {
        sequence: Sequence(seq),
        source_port: PortId::new("transfer").unwrap(),
        source_channel: ChannelId::new("channel-0").unwrap(),
        destination_port: PortId::new("transfer").unwrap(),
        destination_channel: ChannelId::new("channel-0").unwrap(),
        data: b"{}".to_vec(),
        timeout_height: None,
        timeout_timestamp_ns: u64::MAX / 2,
    }
}

fn key(seq: u64) -> PacketKey {
    PacketKey {
        src_chain: id("ibc-0"),
        src_port: PortId::new("transfer").unwrap(),
        src_channel: ChannelId::new("channel-0").unwrap(),
        sequence: Sequence(seq),
    }
}

fn block(height: u64, events: Vec<IbcEvent>) -> BlockObserved {
    BlockObserved {
        chain: id("ibc-0"),
        height,
        time_ns: height * 1_000_000_000,
        events: events
            .into_iter()
            .map(|event| ObservedEvent {
                height,
                tx_hash: None,
                event,
            })
            .collect(),
        partial: false,
    }
}

fn routes() -> Routes {
    let mut routes = Routes::default();
    routes.insert(Route {
        src: id("ibc-0"),
        src_port: "transfer".into(),
        src_channel: "channel-0".into(),
        dst: id("ibc-1"),
        dst_port: "transfer".into(),
        dst_channel: "channel-0".into(),
        dst_client: ClientId::new("07-tendermint-0").unwrap(),
        src_client: ClientId::new("07-tendermint-0").unwrap(),
        ordered: false,
        priority: 0,
    });
    routes
}

/// A coordinator over parked chains on `store`, letting `max_builders` builders run.
fn start_coordinator(store: &StateStore, max_builders: usize) -> Addr<RelayCoordinator> {
    let parked = Parked.start();
    let links = HashMap::from([
        (id("ibc-0"), link("ibc-0", &parked)),
        (id("ibc-1"), link("ibc-1", &parked)),
    ]);
    RelayCoordinator::new(links, routes(), store.clone(), Box::new(|_, _, _| true), 5)
        .with_max_builders(max_builders)
        .start()
}

#[actix::test]
async fn a_blocks_records_are_written_together_and_read_back_within_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    let coordinator = start_coordinator(&store, 1);

    // Packet 1 takes the window's one slot; packets 2 and 3 wait in the block's intake entry, without records.
    // Packet 3's timeout is seen later in the same block: it gets its record there, finished, and its place in
    // the entry is passed over.
    coordinator
        .send(block(
            7,
            vec![
                IbcEvent::SendPacket(packet(1)),
                IbcEvent::SendPacket(packet(2)),
                IbcEvent::SendPacket(packet(3)),
                IbcEvent::TimeoutPacket(Packet {
                    data: Vec::new(),
                    ..packet(3)
                }),
            ],
        ))
        .await
        .unwrap();

    let state = |seq| store.packet(&key(seq)).unwrap().map(|r| r.state);
    assert_eq!(state(1), Some(PacketState::Detected));
    assert_eq!(state(2), None, "waits in the intake log");
    assert_eq!(state(3), Some(PacketState::TimedOut));
    assert_eq!(store.checkpoint("ibc-0").unwrap(), Some(7));
    assert_eq!(store.intake_entries().unwrap(), [(0, 3)]);
    let counts = &store.summaries().unwrap()[0].1;
    assert_eq!(counts.pending(), 1);
    assert_eq!(counts.states[&PacketState::TimedOut], 1);
    let unfinished = |store: &StateStore| -> Vec<u64> {
        store
            .unfinished_packets()
            .unwrap()
            .iter()
            .map(|r| r.key.sequence.0)
            .collect()
    };
    assert_eq!(unfinished(&store), [1]);
    let status = coordinator
        .send(relayd_messages::QueryCoordinator)
        .await
        .unwrap();
    assert_eq!(status.waiting_builders, 1, "packet 2");

    // The same sends seen again in a later block (a monitor's replay): nothing is logged twice.
    coordinator
        .send(block(
            8,
            vec![
                IbcEvent::SendPacket(packet(2)),
                IbcEvent::SendPacket(packet(4)),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(store.intake_entries().unwrap(), [(0, 3), (1, 1)]);

    // A new coordinator on the same database (a restart) with room for all: packet 1 resumes from its record,
    // packets 2 and 4 get theirs from the log, packet 3 stays finished, and the log empties.
    drop(coordinator);
    let restarted = start_coordinator(&store, 8);
    let status = restarted
        .send(relayd_messages::QueryCoordinator)
        .await
        .unwrap();
    assert_eq!(status.waiting_builders, 0);
    // Records made as builders' slots free join the store's waiting writes; settled here to read the trees.
    store.settle().unwrap();
    assert_eq!(state(2), Some(PacketState::Detected));
    assert_eq!(state(3), Some(PacketState::TimedOut));
    assert_eq!(state(4), Some(PacketState::Detected));
    assert_eq!(unfinished(&store), [1, 2, 4]);
    assert!(store.intake_entries().unwrap().is_empty());
    let counts = &store.summaries().unwrap()[0].1;
    assert_eq!(counts.pending(), 3);
    let records = store.packet(&key(2)).unwrap().unwrap();
    assert_eq!(
        records.send_height, 7,
        "the send height comes from the entry"
    );
    assert_eq!(records.packet, packet(2));
}

#[actix::test]
async fn a_block_of_many_new_packets_is_logged_in_bounded_entries_admitted_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    let coordinator = start_coordinator(&store, 1);
    coordinator
        .send(block(
            3,
            (1..=130).map(|s| IbcEvent::SendPacket(packet(s))).collect(),
        ))
        .await
        .unwrap();
    // Packet 1 was admitted from the first entry at once; the entries keep their places.
    assert_eq!(store.intake_entries().unwrap(), [(0, 64), (1, 64), (2, 2)]);
    assert!(store.packet(&key(1)).unwrap().is_some());
    assert!(store.packet(&key(2)).unwrap().is_none());
    let status = coordinator
        .send(relayd_messages::QueryCoordinator)
        .await
        .unwrap();
    assert_eq!(status.waiting_builders, 129);
    assert_eq!(status.intake.len(), 1);
    assert_eq!(
        (status.intake[0].packets, status.intake[0].lowest_sequence),
        (129, 2)
    );
    // After a restart with room for 100: the oldest 100 are admitted, the first entry is gone, the rest wait.
    drop(coordinator);
    let restarted = start_coordinator(&store, 100);
    let status = restarted
        .send(relayd_messages::QueryCoordinator)
        .await
        .unwrap();
    assert_eq!(status.builders, 100);
    assert_eq!(status.waiting_builders, 30);
    store.settle().unwrap();
    assert_eq!(store.intake_entries().unwrap(), [(1, 64), (2, 2)]);
    assert!(store.packet(&key(100)).unwrap().is_some());
    assert!(store.packet(&key(101)).unwrap().is_none());
}
