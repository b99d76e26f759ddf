//! RelayCoordinator routing, in process: how many observed events per second the coordinator turns into
//! builder work, and the latency of one event through its mailbox. The chains' actors are stand-ins that accept
//! requests and never answer, so builders stay parked after their first request and only the coordinator's own
//! work (lookups, lifecycle records in sled, builder spawns, message routing) is measured.
//!
//! Workloads, each a block of events sent as one `BlockObserved`:
//! - `new_packets`: send_packet events on a relayed channel: the first block's fill the builder window (a record
//!   made and a builder started each), later blocks' wait in the intake log (one entry per block);
//! - `acks_to_builders`: write_acknowledgement events for packets whose builders run: the ack persisted and
//!   forwarded to that builder;
//! - `tips_fan_out`: a destination block with no events, whose tip goes to every builder sending there (the
//!   figure is per builder reached);
//! - `other_channels`: events of channels relayd does not relay (the filter path).
//!
//! The latency figure is one single-event `BlockObserved` sent and awaited, per event kind; for new packets also
//! split into the first `DEFAULT_MAX_BUILDERS` (each starts a builder) and the rest (the window is full: each
//! waits in the intake log).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relayd_actors::chain_link::ChainLink;
use relayd_actors::coordinator::window::DEFAULT_MAX_BUILDERS;
use relayd_actors::coordinator::RelayCoordinator;
use relayd_actors::routes::Routes;
use relayd_actors::store::StateStore;
use relayd_messages::{
    BlockObserved, ChainId, ChannelId, ClientId, ClientSummary, ClientUpdate, IbcEvent,
    ObservedEvent, Packet, PortId, PrepareClientUpdate, Proven, QueryClient, QueryCommitments,
    QueryPacketEvents, QueryProof, QueryUnreceived, RelayError, Route, Sequence, SubmitTx,
    TxReport,
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
    ChainId::new(s).expect("chain id")
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

fn route() -> Route {
    Route {
        src: id("ibc-0"),
        src_port: "transfer".into(),
        src_channel: "channel-0".into(),
        dst: id("ibc-1"),
        dst_port: "transfer".into(),
        dst_channel: "channel-0".into(),
        dst_client: ClientId::new("07-tendermint-0").expect("client"),
        src_client: ClientId::new("07-tendermint-0").expect("client"),
        ordered: false,
        priority: 0,
    }
}

fn packet(seq: u64, channel: &str) -> Packet {
    Packet {
        sequence: Sequence(seq),
        source_port: PortId::new("transfer").expect("port"),
        source_channel: ChannelId::new(channel).expect("channel"),
        destination_port: PortId::new("transfer").expect("port"),
        destination_channel: ChannelId::new("channel-0").expect("channel"),
        data: br#"{"amount":"1","denom":"stake","receiver":"r","sender":"s"}"#.to_vec(),
        timeout_height: None,
        timeout_timestamp_ns: u64::MAX / 2,
    }
}

fn observed(height: u64, event: IbcEvent) -> ObservedEvent {
    ObservedEvent {
        height,
        tx_hash: None,
        event,
    }
}

/// A coordinator over two parked chains with one relayed channel, on a fresh temporary sled database.
fn coordinator(dir: &std::path::Path) -> Addr<RelayCoordinator> {
    let parked = Parked.start();
    let mut links = HashMap::new();
    links.insert(id("ibc-0"), link("ibc-0", &parked));
    links.insert(id("ibc-1"), link("ibc-1", &parked));
    let mut routes = Routes::default();
    routes.insert(route());
    let store = StateStore::open(&dir.join("state")).expect("store");
    let filter = Box::new(|_: &ChainId, _: &str, channel: &str| channel == "channel-0");
    RelayCoordinator::new(links, routes, store, filter, 5).start()
}

fn block(chain: &str, height: u64, events: Vec<ObservedEvent>) -> BlockObserved {
    BlockObserved {
        chain: id(chain),
        height,
        time_ns: height * 1_000_000_000,
        events,
        partial: false,
    }
}

const PER_BLOCK: u64 = 1_000;

fn sends(height: u64, seqs: impl Iterator<Item = u64>, channel: &str) -> BlockObserved {
    let events = seqs
        .map(|s| observed(height, IbcEvent::SendPacket(packet(s, channel))))
        .collect();
    block("ibc-0", height, events)
}

fn acks(height: u64, seqs: impl Iterator<Item = u64>) -> BlockObserved {
    let events = seqs
        .map(|s| {
            observed(
                height,
                IbcEvent::WriteAcknowledgement {
                    packet: packet(s, "channel-0"),
                    ack: br#"{"result":"AQ=="}"#.to_vec(),
                },
            )
        })
        .collect();
    block("ibc-1", height, events)
}

/// A fresh coordinator fed `setup`, then per iteration `untimed(i)` (if any) and `timed(i)`, of which only the
/// latter's handling is timed. Each run has an actix system of its own, so its coordinator, builders and
/// database are gone before the next run starts (a coordinator and its builders hold each other's addresses and
/// would otherwise outlive the run, their databases still flushing beside the runs measured after them).
fn run(
    iters: u64,
    setup: Option<BlockObserved>,
    untimed: impl Fn(u64) -> Option<BlockObserved>,
    timed: impl Fn(u64) -> BlockObserved,
) -> Duration {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let coord = coordinator(dir.path());
        if let Some(b) = setup {
            coord.send(b).await.expect("coordinator");
        }
        let mut total = Duration::ZERO;
        for i in 0..iters {
            if let Some(b) = untimed(i) {
                coord.send(b).await.expect("coordinator");
            }
            let msg = timed(i);
            let start = Instant::now();
            coord.send(msg).await.expect("coordinator");
            total += start.elapsed();
        }
        total
    })
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("coordinator");
    group.throughput(Throughput::Elements(PER_BLOCK));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let range = |i: u64| (i * PER_BLOCK + 1)..=((i + 1) * PER_BLOCK);

    group.bench_function("new_packets", |b| {
        b.iter_custom(|iters| {
            run(
                iters,
                None,
                |_| None,
                |i| sends(i + 1, range(i), "channel-0"),
            )
        })
    });
    group.bench_function("acks_to_builders", |b| {
        b.iter_custom(|iters| {
            run(
                iters,
                None,
                |i| Some(sends(i + 1, range(i), "channel-0")),
                |i| acks(i + 1, range(i)),
            )
        })
    });
    group.bench_function("tips_fan_out", |b| {
        b.iter_custom(|iters| {
            run(
                iters,
                Some(sends(1, range(0), "channel-0")),
                |_| None,
                |i| block("ibc-1", i + 2, Vec::new()),
            )
        })
    });
    group.bench_function("other_channels", |b| {
        b.iter_custom(|iters| {
            run(
                iters,
                None,
                |_| None,
                |i| sends(i + 1, range(i), "channel-9"),
            )
        })
    });
    group.finish();
}

/// Single-event latency through the coordinator's mailbox: the distribution over 20,000 events, printed as
/// p50 / p99 / p99.9 (criterion reports means of batches, which hide the tail).
fn latency(_: &mut Criterion) {
    for (name, channel) in [("new_packet", "channel-0"), ("other_channel", "channel-9")] {
        let samples = actix::System::new().block_on(async {
            let dir = tempfile::tempdir().expect("dir");
            let coord = coordinator(dir.path());
            let mut samples = Vec::with_capacity(20_000);
            for s in 1..=20_000u64 {
                let msg = block(
                    "ibc-0",
                    s,
                    vec![observed(s, IbcEvent::SendPacket(packet(s, channel)))],
                );
                let start = Instant::now();
                coord.send(msg).await.expect("coordinator");
                samples.push(start.elapsed());
            }
            samples
        });
        report(&format!("coordinator/latency/{name}"), samples.clone());
        if name == "new_packet" {
            // The first events start builders (the window has room); the rest wait in the intake log.
            let (starting, logged) = samples.split_at(DEFAULT_MAX_BUILDERS.min(samples.len()));
            report(
                "coordinator/latency/new_packet_starting_a_builder",
                starting.to_vec(),
            );
            report(
                "coordinator/latency/new_packet_window_full",
                logged.to_vec(),
            );
        }
    }
}

/// Prints the p50 / p99 / p99.9 / max of `samples` under `name`.
fn report(name: &str, mut sorted: Vec<Duration>) {
    if sorted.is_empty() {
        return;
    }
    sorted.sort();
    let pick = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    println!(
        "{name}: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?} (n = {})",
        pick(0.5),
        pick(0.99),
        pick(0.999),
        sorted[sorted.len() - 1],
        sorted.len()
    );
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);
