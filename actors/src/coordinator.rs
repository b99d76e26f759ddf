//! The RelayCoordinator (ADR-002's event handler): tracks every chain's height, turns observed IBC events into
//! at most one PacketBuilder per packet, routes later events only to the builder they concern, restarts builders
//! that fail (transient restart type, with a new generation so a stale exit is never mistaken for the live one),
//! resumes unfinished packets from sled at start, and clears pending packets on request.

mod introspect;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use relayd_messages::{
    BlockObserved, BuilderExited, ChainAdvanced, ChainId, ChannelAttributes, ClearPackets,
    ClearReport, ClientHealthChanged, ClientId, ConnectionAttributes, CorrelationId, ErrorKind,
    Halt, HandshakeState, Height, IbcEvent, InjectPanic, LifecycleChanged, Packet, PacketEventKind,
    PacketKey, PacketObserved, PacketSeen, QueryCommitments, QueryPacketEvents, QueryUnreceived,
    RelayError, RelayHandshake, RelayObject, Supersede,
};
use tracing::{debug, error, info, warn};

use crate::builder::packet::expired;
use crate::handshake_builder::{locate, Handshake, HandshakeBuilder, HandshakeEnv};
use crate::meter::{ActorLoad, Meter, MeteredAddr, MeteredRecipient};
use crate::packet_builder::{BuilderEnv, PacketBuilder};
use crate::per_chain::link::ChainLink;
use crate::routes::{Route, Routes};
use crate::store::{now_ms, PacketRecord, StateStore, Transition};
use crate::supervision::guard::{injected_panic, ExitGuard};

pub use introspect::{BuilderStatus, QueryBuilders, RetryError, RetryPacket};

/// Whether a source channel (chain, port, channel) is relayed.
pub type ChannelFilter = Box<dyn Fn(&ChainId, &str, &str) -> bool>;

struct Live {
    addr: MeteredAddr<PacketBuilder>,
    generation: u64,
    restarts: u32,
    started_ms: u64,
    /// The packet's timeouts: a destination tip goes to the builder only once it has passed them.
    timeout: Packet,
}

/// A running handshake builder, keyed by the handshake's initiating end.
struct LiveHandshake {
    addr: Addr<HandshakeBuilder>,
    generation: u64,
    state: HandshakeState,
    handshake: Handshake,
    correlation: CorrelationId,
    restarts: u32,
}

/// Restarts of one handshake builder before the handshake is left to the operator.
const MAX_HANDSHAKE_RESTARTS: u32 = 10;

/// The coordinator actor.
pub struct RelayCoordinator {
    links: HashMap<ChainId, ChainLink>,
    routes: Routes,
    store: StateStore,
    filter: ChannelFilter,
    builders: HashMap<PacketKey, Live>,
    handshakes: HashMap<RelayObject, LiveHandshake>,
    by_dst: HashMap<ChainId, HashSet<PacketKey>>,
    tips: HashMap<ChainId, (u64, u64)>,
    next_generation: u64,
    max_attempts: u32,
    subscribers: Vec<Recipient<LifecycleChanged>>,
    events_handled: u64,
    clear_intervals: HashMap<ChainId, u64>,
    scope: Option<Scope>,
    /// Clients that are expired or frozen (host chain, client), with why: the paths through them are stopped.
    halted: HashMap<(ChainId, ClientId), String>,
    /// Destination channel ends seen closing (chain, port, channel): their packets are timed out on close.
    closed: HashSet<(ChainId, String, String)>,
    /// Ordered routes (keyed by source chain, port, channel): the sequence being received, and the packets
    /// waiting for it to be received first.
    ordered: HashMap<(ChainId, String, String), OrderedLane>,
    /// Where `update_client` events of the clients the routes go through (host chain, client) are judged for
    /// misbehaviour (the MisbehaviourWatcher).
    client_updates: Option<ClientUpdates>,
    meter: Meter,
    /// Where builders report, made once when the coordinator starts rather than for every builder started.
    outputs: Option<BuilderOutputs>,
    /// Reports the coordinator's failure (a panic) to the service supervisor, which escalates it.
    guard: Option<ExitGuard>,
}

/// The coordinator's own recipients for what builders report, counted on its meter.
struct BuilderOutputs {
    exits: MeteredRecipient<BuilderExited>,
    lifecycle: MeteredRecipient<LifecycleChanged>,
}

/// The misbehaviour watcher and the clients (host chain, client) whose updates it judges.
type ClientUpdates = (
    MeteredRecipient<relayd_messages::ClientUpdateObserved>,
    HashSet<(ChainId, ClientId)>,
);

/// One ordered channel direction: ICS-04 receives its packets strictly in sequence, so one packet at a time is
/// worked on until it is received, and the rest wait in sequence order.
#[derive(Default)]
struct OrderedLane {
    active: Option<u64>,
    waiting: std::collections::BTreeMap<u64, (PacketRecord, u32)>,
}

fn lane_of(key: &PacketKey) -> (ChainId, String, String) {
    (
        key.src_chain.clone(),
        key.src_port.to_string(),
        key.src_channel.to_string(),
    )
}

/// Limits a coordinator to some packets of one channel (one-off commands such as `relayd clear packets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The source chain.
    pub chain: ChainId,
    /// The source port.
    pub port: String,
    /// The source channel.
    pub channel: String,
    /// Only these sequences; `None` for all.
    pub sequences: Option<Vec<u64>>,
}

impl Scope {
    /// Whether the packet `key` is in scope.
    pub fn covers(&self, key: &PacketKey) -> bool {
        key.src_chain == self.chain
            && key.src_port.as_str() == self.port
            && key.src_channel.as_str() == self.channel
            && self
                .sequences
                .as_ref()
                .is_none_or(|s| s.contains(&key.sequence.0))
    }
}

/// Adds a subscriber to every lifecycle change (embedding hosts, the admin API).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeLifecycle(pub Recipient<LifecycleChanged>);

/// The coordinator's view, for status endpoints and tests.
#[derive(Debug, Clone, Message)]
#[rtype(result = "CoordinatorStatus")]
pub struct QueryCoordinator;

/// What [`QueryCoordinator`] returns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CoordinatorStatus {
    /// Chain heights seen.
    pub heights: Vec<(String, u64)>,
    /// Live packet builders.
    pub builders: usize,
    /// Events routed so far.
    pub events_handled: u64,
    /// The coordinator's own mailbox: events from the monitors, builders and client keeper waiting, and
    /// messages handled.
    pub load: ActorLoad,
    /// Events waiting in the mailboxes of the live packet builders, summed per source chain.
    pub builder_mailboxes: Vec<(String, u64)>,
}

/// Forwards the `update_client` events of the clients the routes go through to a watcher (misbehaviour
/// detection); a busy chain's updates of other clients never leave the coordinator. Sent before any block, so that
/// no update goes unjudged.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForwardClientUpdates(pub MeteredRecipient<relayd_messages::ClientUpdateObserved>);

impl Handler<ForwardClientUpdates> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: ForwardClientUpdates, _: &mut Self::Context) {
        self.meter.handled();
        self.forward_client_updates(msg.0);
    }
}

/// Hands the coordinator the guard that reports its exit to its supervisor (sent once, before any block).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SuperviseWith(pub ExitGuard);

impl Handler<SuperviseWith> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: SuperviseWith, _: &mut Self::Context) {
        self.meter.handled();
        self.guard = Some(msg.0);
    }
}

impl Handler<InjectPanic> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        self.meter.handled();
        injected_panic(relayd_messages::ActorKind::RelayCoordinator);
    }
}

/// Makes a live builder panic (fault injection).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct PanicAnyBuilder;

impl RelayCoordinator {
    /// A coordinator over `links` (one per chain) and `routes`; `filter(chain, port, channel)` says whether a
    /// source channel is relayed.
    pub fn new(
        links: HashMap<ChainId, ChainLink>,
        routes: Routes,
        store: StateStore,
        filter: ChannelFilter,
        max_attempts: u32,
    ) -> Self {
        Self {
            links,
            routes,
            store,
            filter,
            builders: HashMap::new(),
            handshakes: HashMap::new(),
            by_dst: HashMap::new(),
            tips: HashMap::new(),
            next_generation: 0,
            max_attempts,
            subscribers: Vec::new(),
            events_handled: 0,
            clear_intervals: HashMap::new(),
            scope: None,
            halted: HashMap::new(),
            closed: HashSet::new(),
            ordered: HashMap::new(),
            client_updates: None,
            meter: Meter::new(),
            outputs: None,
            guard: None,
        }
    }

    /// Counts the coordinator's mailbox on `meter` (which the senders of its events share).
    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.meter = meter;
        self
    }

    /// A recipient of the coordinator's events that counts on its meter.
    fn metered<M>(&self, ctx: &Context<Self>) -> MeteredRecipient<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        Self: Handler<M>,
    {
        MeteredRecipient::new(ctx.address().recipient(), self.meter.clone())
    }

    /// Forwards the `update_client` events of the clients the routes go through to `watcher` (misbehaviour
    /// detection); a busy chain's updates of other clients never leave the coordinator.
    fn forward_client_updates(
        &mut self,
        watcher: MeteredRecipient<relayd_messages::ClientUpdateObserved>,
    ) {
        let tracked = self
            .routes
            .all()
            .flat_map(|r| {
                [
                    (r.dst.clone(), r.dst_client.clone()),
                    (r.src.clone(), r.src_client.clone()),
                ]
            })
            .collect();
        self.client_updates = Some((watcher, tracked));
    }

    /// Relays only the packets `scope` covers.
    pub fn with_scope(mut self, scope: Option<Scope>) -> Self {
        self.scope = scope;
        self
    }

    /// The packet `key` of an ordered route no longer holds its lane (received, finished, or stopped): the
    /// lowest waiting sequence goes next.
    fn release_lane(&mut self, key: &PacketKey) {
        // Called for every packet received or finished; most relays have no ordered channel.
        if self.ordered.is_empty() {
            return;
        }
        let lane_key = lane_of(key);
        let Some(lane) = self.ordered.get_mut(&lane_key) else {
            return;
        };
        if lane.active != Some(key.sequence.0) {
            return;
        }
        lane.active = None;
        if let Some((_, (record, restarts))) = lane.waiting.pop_first() {
            self.spawn(record, restarts);
        }
    }

    /// A channel end closed on `chain`: builders sending to it time their packets out on close.
    fn destination_closed(&mut self, chain: &ChainId, a: &ChannelAttributes) {
        let (port, channel) = (a.port_id.to_string(), a.channel_id.to_string());
        let closes = |r: &Route| r.dst == *chain && r.dst_port == port && r.dst_channel == channel;
        if !self.routes.all().any(&closes) {
            return;
        }
        info!(chain = %chain, port = %port, channel = %channel, "destination channel closed: its pending packets are timed out on close");
        self.closed
            .insert((chain.clone(), port.clone(), channel.clone()));
        for (key, live) in &self.builders {
            if self.routes.of(key).is_some_and(&closes) {
                must_deliver(
                    &live.addr,
                    PacketObserved {
                        key: key.clone(),
                        seen: PacketSeen::DestinationClosed,
                    },
                );
            }
        }
    }

    /// Why `route` is stopped, if a client it goes through is unusable: the destination's client of the source
    /// (receives) or the source's client of the destination (acks and timeouts).
    fn halt_of(&self, route: &Route) -> Option<&String> {
        // Asked for every packet started: no key is built while no client is stopped.
        if self.halted.is_empty() {
            return None;
        }
        self.halted
            .get(&(route.dst.clone(), route.dst_client.clone()))
            .or_else(|| {
                self.halted
                    .get(&(route.src.clone(), route.src_client.clone()))
            })
    }

    fn in_scope(&self, key: &PacketKey) -> bool {
        self.scope.as_ref().is_none_or(|s| s.covers(key))
    }

    /// Clears the routes leaving each chain every `n` of its blocks (`[[chains]] clear_interval`; 0 = never).
    pub fn with_clear_intervals(mut self, intervals: HashMap<ChainId, u64>) -> Self {
        self.clear_intervals = intervals;
        self
    }

    /// Periodic clearing: pending packets of the routes leaving `chain`, through the coordinator's own mailbox
    /// so it runs like an operator's request.
    fn clear_periodically(&self, chain: &ChainId, height: u64, ctx: &Context<Self>) {
        let Some(n) = self.clear_intervals.get(chain).copied().filter(|n| *n > 0) else {
            return;
        };
        if !height.is_multiple_of(n) {
            return;
        }
        for route in self.routes.all().filter(|r| &r.src == chain) {
            let request = route.clear_all();
            let addr = ctx.address();
            actix::spawn(async move {
                match addr.send(request.clone()).await {
                    Ok(Ok(r)) if r.started > 0 => {
                        info!(chain = %request.chain, channel = %request.channel, started = r.started, "periodic clearing restarted pending packets")
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        warn!(chain = %request.chain, channel = %request.channel, error = %e, "periodic clearing failed")
                    }
                    Err(e) => warn!(error = %e, "periodic clearing failed"),
                }
            });
        }
    }

    fn env(&self, route: &Route) -> Option<BuilderEnv> {
        let outputs = self.outputs.as_ref()?;
        Some(BuilderEnv {
            src: self.links.get(&route.src)?.clone(),
            dst: self.links.get(&route.dst)?.clone(),
            route: route.clone(),
            store: self.store.clone(),
            exits: outputs.exits.clone(),
            lifecycle: outputs.lifecycle.clone(),
            max_attempts: self.max_attempts,
        })
    }

    fn spawn(&mut self, record: PacketRecord, restarts: u32) {
        if !self.in_scope(&record.key) {
            return;
        }
        let Some(route) = self.routes.of(&record.key).cloned() else {
            return;
        };
        if let Some(reason) = self.halt_of(&route) {
            // The record stays as it is, saying why, until the client is usable again.
            if record.last_error.as_ref() != Some(reason) {
                let mut record = record;
                record.last_error = Some(reason.clone());
                record.updated_ms = now_ms();
                if let Err(e) = self.store.put_packet(&record) {
                    warn!(packet = %record.key, error = %e, "cannot write the packet's lifecycle record");
                }
            }
            return;
        }
        // Only receives are ordered: a packet already received (its ack in hand or its record past
        // `submitted`) needs no turn.
        let receiving = matches!(
            record.state.as_str(),
            "detected" | "proof_generated" | "submitted"
        ) && record.ack.is_none();
        if route.ordered && receiving {
            let seq = record.key.sequence.0;
            let lane = self.ordered.entry(lane_of(&record.key)).or_default();
            match lane.active {
                Some(active) if active != seq => {
                    lane.waiting.insert(seq, (record, restarts));
                    return;
                }
                _ => lane.active = Some(seq),
            }
        }
        let Some(env) = self.env(&route) else {
            return;
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let key = record.key.clone();
        let tip = self.tips.get(&route.dst).copied();
        let timeout = Packet {
            data: Vec::new(),
            ..record.packet.clone()
        };
        let meter = Meter::new();
        let addr = MeteredAddr::new(
            PacketBuilder::new(record, generation, tip, env, meter.clone()).start(),
            meter,
        );
        if !self.closed.is_empty()
            && self.closed.contains(&(
                route.dst.clone(),
                route.dst_port.clone(),
                route.dst_channel.clone(),
            ))
        {
            must_deliver(
                &addr,
                PacketObserved {
                    key: key.clone(),
                    seen: PacketSeen::DestinationClosed,
                },
            );
        }
        self.by_dst
            .entry(route.dst.clone())
            .or_default()
            .insert(key.clone());
        self.builders.insert(
            key,
            Live {
                addr,
                generation,
                restarts,
                started_ms: now_ms(),
                timeout,
            },
        );
    }

    fn new_record(
        &self,
        key: PacketKey,
        route: &Route,
        packet: Packet,
        height: u64,
        state: &str,
        ack: Option<Vec<u8>>,
    ) -> PacketRecord {
        let now = now_ms();
        PacketRecord {
            key,
            dst_chain: route.dst.to_string(),
            packet,
            correlation: CorrelationId::fresh(),
            state: state.to_owned(),
            send_height: height,
            ack,
            tx_hashes: Vec::new(),
            attempts: 0,
            last_error: None,
            created_ms: now,
            updated_ms: now,
            history: vec![Transition {
                state: state.to_owned(),
                at_ms: now,
                tx_hash: None,
                error: None,
            }],
        }
    }

    /// A packet was sent (or found pending): start its builder unless one runs or it is done.
    fn packet_sent(&mut self, chain: &ChainId, packet: Packet, height: u64) {
        let Some(route) = self
            .routes
            .from_source(
                chain,
                packet.source_port.as_str(),
                packet.source_channel.as_str(),
            )
            .cloned()
        else {
            return;
        };
        if !(self.filter)(
            chain,
            packet.source_port.as_str(),
            packet.source_channel.as_str(),
        ) {
            return;
        }
        let key = key_of(chain, &packet);
        if self.builders.contains_key(&key) || !self.in_scope(&key) {
            return;
        }
        let record = match self.store.packet(&key) {
            Ok(Some(r)) if r.is_final() => return,
            Ok(Some(r)) => r,
            Ok(None) => {
                let r = self.new_record(key.clone(), &route, packet, height, "detected", None);
                if let Err(e) = self.store.put_packet(&r) {
                    warn!(packet = %key, error = %e, "cannot write the packet's lifecycle record");
                }
                r
            }
            Err(e) => {
                warn!(packet = %key, error = %e, "unreadable lifecycle record; relaying afresh");
                self.new_record(key.clone(), &route, packet, height, "detected", None)
            }
        };
        self.spawn(record, 0);
    }

    /// The destination wrote an acknowledgement for a packet of one of our routes.
    fn ack_written(&mut self, chain: &ChainId, packet: Packet, ack: Vec<u8>, height: u64) {
        let Some(route) = self
            .routes
            .to_destination(
                chain,
                packet.destination_port.as_str(),
                packet.destination_channel.as_str(),
            )
            .cloned()
        else {
            return;
        };
        if !(self.filter)(
            &route.src,
            route.src_port.as_str(),
            route.src_channel.as_str(),
        ) {
            return;
        }
        let key = key_of(&route.src, &packet);
        if !self.in_scope(&key) {
            return;
        }
        if let Some(live) = self.builders.get(&key) {
            // The ack bytes exist only in this event: persist them before the checkpoint passes this block, so
            // a restart can relay the ack even if the builder never gets to write them.
            if let Ok(Some(mut r)) = self.store.packet(&key) {
                if r.ack.is_none() {
                    r.ack = Some(ack.clone());
                    if let Err(e) = self.store.put_packet(&r) {
                        warn!(packet = %key, error = %e, "cannot write the packet's lifecycle record");
                    }
                }
            }
            must_deliver(
                &live.addr,
                PacketObserved {
                    key,
                    seen: PacketSeen::AckWritten { ack },
                },
            );
            return;
        }
        let record = match self.store.packet(&key) {
            Ok(Some(r)) if r.is_final() => return,
            Ok(Some(mut r)) => {
                r.ack = Some(ack);
                r
            }
            // Another relayer delivered it; its ack is ours to relay all the same (the event carries the data).
            _ => self.new_record(key.clone(), &route, packet, height, "confirmed", Some(ack)),
        };
        if let Err(e) = self.store.put_packet(&record) {
            warn!(packet = %key, error = %e, "cannot write the packet's lifecycle record");
        }
        self.spawn(record, 0);
    }

    /// The source finished the packet (ack or timeout processed), whoever relayed it.
    fn packet_closed(&mut self, chain: &ChainId, packet: &Packet, seen: PacketSeen) {
        let key = key_of(chain, packet);
        if let Some(live) = self.builders.get(&key) {
            must_deliver(&live.addr, PacketObserved { key, seen });
            return;
        }
        if let Ok(Some(mut r)) = self.store.packet(&key) {
            if !r.is_final() {
                let (state, tx_hash) = match seen {
                    PacketSeen::AckProcessed { tx_hash } => ("acknowledged", tx_hash),
                    PacketSeen::TimeoutProcessed { tx_hash } => ("timed_out", tx_hash),
                    _ => return,
                };
                r.state = state.to_owned();
                r.updated_ms = now_ms();
                if let Some(h) = &tx_hash {
                    r.tx_hashes.push(h.clone());
                }
                r.history.push(Transition {
                    state: state.to_owned(),
                    at_ms: r.updated_ms,
                    tx_hash,
                    error: None,
                });
                if let Err(e) = self.store.put_packet(&r) {
                    warn!(packet = %key, error = %e, "cannot write the packet's lifecycle record");
                }
            }
        }
    }
}

impl RelayCoordinator {
    fn handshake_env(&self) -> Option<HandshakeEnv> {
        let outputs = self.outputs.as_ref()?;
        Some(HandshakeEnv {
            links: self.links.clone(),
            exits: outputs.exits.clone(),
            lifecycle: outputs.lifecycle.clone(),
        })
    }

    /// A handshake event (or request) about `named` at `state`: locate both ends, then keep at most one builder
    /// per handshake, for the highest state seen.
    fn observe_handshake(
        &mut self,
        named: RelayObject,
        state: HandshakeState,
        correlation: CorrelationId,
    ) -> ResponseActFuture<Self, Result<(), RelayError>> {
        let links = self.links.clone();
        let fut = async move { locate(&links, &named, state, correlation).await };
        Box::pin(fut.into_actor(self).map(move |located, act, _| {
            let handshake = located?;
            let object = handshake.object()?;
            if let Some(live) = act.handshakes.get(&object) {
                if live.state >= state {
                    debug!(%object, ?state, running = ?live.state, "handshake event at or below the running builder's; discarded");
                    return Ok(());
                }
                live.addr.do_send(Supersede);
            }
            act.spawn_handshake(object, handshake, state, correlation, 0);
            Ok(())
        }))
    }

    fn spawn_handshake(
        &mut self,
        object: RelayObject,
        handshake: Handshake,
        state: HandshakeState,
        correlation: CorrelationId,
        restarts: u32,
    ) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let Some(env) = self.handshake_env() else {
            return;
        };
        info!(%object, ?state, generation, "handshake builder started");
        let addr = HandshakeBuilder::new(
            handshake.clone(),
            object.clone(),
            generation,
            correlation,
            env,
        )
        .start();
        self.handshakes.insert(
            object,
            LiveHandshake {
                addr,
                generation,
                state,
                handshake,
                correlation,
                restarts,
            },
        );
    }

    fn handshake_exited(&mut self, msg: BuilderExited, ctx: &mut Context<Self>) {
        let Some(live) = self.handshakes.get(&msg.object) else {
            return;
        };
        if live.generation != msg.generation {
            debug!(object = %msg.object, generation = msg.generation, "stale handshake builder exit ignored");
            return;
        }
        let Some(live) = self.handshakes.remove(&msg.object) else {
            return;
        };
        if msg.finished {
            return;
        }
        if live.restarts >= MAX_HANDSHAKE_RESTARTS {
            warn!(object = %msg.object, restarts = live.restarts, "handshake builder keeps failing; left to the operator");
            return;
        }
        let delay = Duration::from_millis(100 * (1u64 << live.restarts.min(6)));
        warn!(object = %msg.object, restarts = live.restarts, ?delay, "handshake builder failed; restarting");
        let object = msg.object;
        ctx.run_later(delay, move |act, _| {
            if act.handshakes.contains_key(&object) {
                return;
            }
            act.spawn_handshake(
                object,
                live.handshake,
                live.state,
                live.correlation,
                live.restarts + 1,
            );
        });
    }
}

fn connection_event(
    chain: &ChainId,
    a: &ConnectionAttributes,
    state: HandshakeState,
) -> (RelayObject, HandshakeState) {
    (
        RelayObject::Connection {
            chain: chain.clone(),
            connection: a.connection_id.clone(),
        },
        state,
    )
}

fn channel_event(
    chain: &ChainId,
    a: &ChannelAttributes,
    state: HandshakeState,
) -> (RelayObject, HandshakeState) {
    (
        RelayObject::Channel {
            chain: chain.clone(),
            port: a.port_id.clone(),
            channel: a.channel_id.clone(),
        },
        state,
    )
}

/// Sends an event a builder cannot do without (its ack bytes, its packet's end): through the mailbox limit when
/// there is room, past it when the mailbox is full, since dropping it would leave the builder waiting for good.
/// Tips, which come every block, use plain `try_send` instead.
fn must_deliver(addr: &MeteredAddr<PacketBuilder>, msg: PacketObserved) {
    if let Err(actix::dev::SendError::Full(msg)) = addr.try_send(msg) {
        addr.do_send(msg);
    }
}

fn key_of(chain: &ChainId, packet: &Packet) -> PacketKey {
    PacketKey {
        src_chain: chain.clone(),
        src_port: packet.source_port.clone(),
        src_channel: packet.source_channel.clone(),
        sequence: packet.sequence,
    }
}

impl Actor for RelayCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        self.outputs = Some(BuilderOutputs {
            exits: self.metered(ctx),
            lifecycle: self.metered(ctx),
        });
        // Resume: every packet sled knows as unfinished gets its builder back.
        match self.store.unfinished_packets() {
            Ok(records) => {
                info!(packets = records.len(), "resuming unfinished packets");
                for r in records {
                    self.spawn(r, 0);
                }
            }
            Err(e) => warn!(error = %e, "cannot read unfinished packets"),
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(guard) = &mut self.guard {
            guard.stopped_cleanly();
        }
    }
}

impl Handler<BlockObserved> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: BlockObserved, ctx: &mut Self::Context) {
        self.meter.took();
        let chain = msg.chain.clone();
        self.tips.insert(chain.clone(), (msg.height, msg.time_ns));
        if let Some(link) = self.links.get(&chain) {
            link.observe_tip(msg.height);
        }
        for observed in msg.events {
            self.events_handled += 1;
            if let (IbcEvent::UpdateClient { client_id, .. }, Some((w, tracked))) =
                (&observed.event, &self.client_updates)
            {
                if tracked.contains(&(chain.clone(), client_id.clone())) {
                    // Few (updates of the clients relayd relays through), and evidence must not be lost to a
                    // full mailbox.
                    w.do_send(relayd_messages::ClientUpdateObserved {
                        host: chain.clone(),
                        event: observed.clone(),
                    });
                }
            }
            match observed.event {
                IbcEvent::SendPacket(p) => self.packet_sent(&chain, p, observed.height),
                IbcEvent::WriteAcknowledgement { packet, ack } => {
                    self.ack_written(&chain, packet, ack, observed.height)
                }
                IbcEvent::AcknowledgePacket(p) => self.packet_closed(
                    &chain,
                    &p,
                    PacketSeen::AckProcessed {
                        tx_hash: observed.tx_hash.clone(),
                    },
                ),
                IbcEvent::TimeoutPacket(p) => self.packet_closed(
                    &chain,
                    &p,
                    PacketSeen::TimeoutProcessed {
                        tx_hash: observed.tx_hash.clone(),
                    },
                ),
                other => {
                    use HandshakeState as S;
                    let seen = match &other {
                        IbcEvent::ConnectionOpenInit(a) => {
                            Some(connection_event(&chain, a, S::OpenInit))
                        }
                        IbcEvent::ConnectionOpenTry(a) => {
                            Some(connection_event(&chain, a, S::OpenTry))
                        }
                        IbcEvent::ConnectionOpenAck(a) => {
                            Some(connection_event(&chain, a, S::OpenAck))
                        }
                        IbcEvent::ConnectionOpenConfirm(a) => {
                            Some(connection_event(&chain, a, S::OpenConfirm))
                        }
                        IbcEvent::ChannelOpenInit(a) => Some(channel_event(&chain, a, S::OpenInit)),
                        IbcEvent::ChannelOpenTry(a) => Some(channel_event(&chain, a, S::OpenTry)),
                        IbcEvent::ChannelOpenAck(a) => Some(channel_event(&chain, a, S::OpenAck)),
                        IbcEvent::ChannelOpenConfirm(a) => {
                            Some(channel_event(&chain, a, S::OpenConfirm))
                        }
                        IbcEvent::ChannelCloseInit(a) => {
                            self.destination_closed(&chain, a);
                            Some(channel_event(&chain, a, S::CloseInit))
                        }
                        IbcEvent::ChannelCloseConfirm(a) => {
                            self.destination_closed(&chain, a);
                            Some(channel_event(&chain, a, S::CloseConfirm))
                        }
                        // An ordered channel timed out: this end is closed as by a close init, and the
                        // counterparty is confirmed closed the same way.
                        IbcEvent::ChannelClosed(a) => {
                            self.destination_closed(&chain, a);
                            Some(channel_event(&chain, a, S::CloseInit))
                        }
                        _ => None,
                    };
                    if let Some((object, state)) = seen {
                        let fut =
                            self.observe_handshake(object.clone(), state, CorrelationId::fresh());
                        ctx.spawn(fut.map(move |result, _, _| {
                            if let Err(e) = result {
                                debug!(%object, error = %e, "handshake event not relayed");
                            }
                        }));
                    }
                }
            }
        }
        // Handshake builders waiting for a block re-read their ends.
        for live in self.handshakes.values() {
            let _ = live.addr.try_send(ChainAdvanced {
                chain: chain.clone(),
                height: msg.height,
            });
        }
        // Timeouts are judged against the destination: a tip goes only to builders sending to this chain whose
        // packet it has timed out (each builder gets the tip of its start when it is spawned). Sending every tip
        // to every builder would cost each block as much as the backlog is long.
        let tip = Height::new(chain.revision_number(), msg.height);
        if let Some(keys) = self.by_dst.get(&chain) {
            for key in keys {
                if let Some(live) = self
                    .builders
                    .get(key)
                    .filter(|l| expired(&l.timeout, tip, msg.time_ns))
                {
                    // Tips come every block; a full mailbox can skip one.
                    let _ = live.addr.try_send(PacketObserved {
                        key: key.clone(),
                        seen: PacketSeen::DestinationTip {
                            height: msg.height,
                            time_ns: msg.time_ns,
                        },
                    });
                }
            }
        }
        self.clear_periodically(&chain, msg.height, ctx);
        // Every event of this block has a record now (or needs none): a restart resumes after it.
        if let Err(e) = self.store.set_checkpoint(chain.as_str(), msg.height) {
            warn!(chain = %chain, error = %e, "cannot write the checkpoint");
        }
    }
}

impl Handler<BuilderExited> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: BuilderExited, ctx: &mut Self::Context) {
        self.meter.took();
        let RelayObject::Packet(key) = msg.object else {
            self.handshake_exited(msg, ctx);
            return;
        };
        let Some(live) = self.builders.get(&key) else {
            return;
        };
        if live.generation != msg.generation {
            debug!(packet = %key, generation = msg.generation, "stale builder exit ignored");
            return;
        }
        let restarts = live.restarts;
        self.builders.remove(&key);
        if let Some(set) = self.by_dst.values_mut().find(|s| s.contains(&key)) {
            set.remove(&key);
        }
        let halted = self
            .routes
            .of(&key)
            .is_some_and(|r| self.halt_of(r).is_some());
        if msg.finished || halted {
            self.release_lane(&key);
            return;
        }
        // Transient: a builder that failed is restarted from its sled record, after a backoff.
        let delay = Duration::from_millis(50 * (1u64 << restarts.min(7)));
        warn!(packet = %key, restarts, ?delay, "packet builder failed; restarting");
        ctx.run_later(delay, move |act, _| {
            if act.builders.contains_key(&key) {
                return;
            }
            match act.store.packet(&key) {
                Ok(Some(r)) if !r.is_final() => act.spawn(r, restarts + 1),
                Ok(_) => {}
                Err(e) => warn!(packet = %key, error = %e, "cannot restore the packet builder"),
            }
        });
    }
}

impl Handler<LifecycleChanged> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: LifecycleChanged, _: &mut Self::Context) {
        self.meter.took();
        if let RelayObject::Packet(key) = &msg.object {
            // Received (or done): the next packet of an ordered lane may go.
            if msg.state == "confirmed" || msg.is_final {
                self.release_lane(key);
            }
        }
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            if let Err(actix::dev::SendError::Full(m)) = s.try_send(msg.clone()) {
                if m.is_final {
                    s.do_send(m);
                }
            }
        }
    }
}

impl Handler<SubscribeLifecycle> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: SubscribeLifecycle, _: &mut Self::Context) {
        self.meter.handled();
        self.subscribers.push(msg.0);
    }
}

impl Handler<QueryCoordinator> for RelayCoordinator {
    type Result = MessageResult<QueryCoordinator>;

    fn handle(&mut self, _: QueryCoordinator, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        let mut heights: Vec<(String, u64)> = self
            .tips
            .iter()
            .map(|(c, (h, _))| (c.to_string(), *h))
            .collect();
        heights.sort();
        let mut builder_mailboxes: HashMap<&ChainId, u64> = HashMap::new();
        for (key, live) in &self.builders {
            *builder_mailboxes.entry(&key.src_chain).or_default() +=
                live.addr.meter().load().mailbox_depth;
        }
        let mut builder_mailboxes: Vec<(String, u64)> = builder_mailboxes
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        builder_mailboxes.sort();
        MessageResult(CoordinatorStatus {
            heights,
            builders: self.builders.len(),
            events_handled: self.events_handled,
            load: self.meter.load(),
            builder_mailboxes,
        })
    }
}

impl Handler<ClientHealthChanged> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: ClientHealthChanged, ctx: &mut Self::Context) {
        self.meter.took();
        let client = (msg.host.clone(), msg.client_id.clone());
        let through = |r: &Route| {
            (r.dst == msg.host && r.dst_client == msg.client_id)
                || (r.src == msg.host && r.src_client == msg.client_id)
        };
        let affected: Vec<Route> = self.routes.all().filter(|r| through(r)).cloned().collect();
        if !msg.usable {
            error!(host = %msg.host, client = %msg.client_id, reason = %msg.reason, paths = affected.len(), "stopping the paths through an unusable client");
            self.halted.insert(client, msg.reason.clone());
            // Running builders of those paths stop where they are; their records keep the packets for later.
            for (key, live) in &self.builders {
                if self.routes.of(key).is_some_and(through) {
                    let _ = live.addr.try_send(Halt {
                        reason: msg.reason.clone(),
                    });
                }
            }
            return;
        }
        if self.halted.remove(&client).is_none() {
            return;
        }
        info!(host = %msg.host, client = %msg.client_id, "client usable again: resuming its paths");
        // What waited meanwhile is found the way clearing finds anything pending.
        for route in affected {
            if self.halt_of(&route).is_some() {
                continue;
            }
            let request = route.clear_all();
            let addr = ctx.address();
            actix::spawn(async move {
                if let Ok(Err(e)) = addr.send(request).await {
                    warn!(error = %e, "clearing a resumed path failed");
                }
            });
        }
    }
}

impl Handler<PanicAnyBuilder> for RelayCoordinator {
    type Result = bool;

    fn handle(&mut self, _: PanicAnyBuilder, _: &mut Self::Context) -> bool {
        self.meter.handled();
        match self.builders.values().next() {
            Some(live) => {
                live.addr.do_send(InjectPanic);
                true
            }
            None => false,
        }
    }
}

impl Handler<ClearPackets> for RelayCoordinator {
    type Result = ResponseActFuture<Self, Result<ClearReport, RelayError>>;

    fn handle(&mut self, msg: ClearPackets, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        let route = self
            .routes
            .from_source(&msg.chain, &msg.port, &msg.channel)
            .cloned();
        let links = route.as_ref().and_then(|r| {
            Some((
                self.links.get(&r.src)?.clone(),
                self.links.get(&r.dst)?.clone(),
            ))
        });
        let (Some(route), Some((src, dst))) = (route, links) else {
            let e = RelayError::new(
                ErrorKind::Rejected,
                format!(
                    "{}/{}/{} is not a relayed channel",
                    msg.chain, msg.port, msg.channel
                ),
            );
            return Box::pin(actix::fut::ready(Err(e)));
        };
        let correlation = msg.correlation;
        let wanted = msg.sequences.clone();
        let route_for_query = route.clone();
        let store = self.store.clone();
        let fut = async move {
            let route = route_for_query;
            let mut committed = src
                .query_commitments(QueryCommitments {
                    correlation,
                    port: route.src_port.clone(),
                    channel: route.src_channel.clone(),
                })
                .await?;
            if let Some(w) = &wanted {
                committed.retain(|s| w.contains(s));
            }
            let unreceived = dst
                .query_unreceived(QueryUnreceived {
                    correlation,
                    port: route.dst_port.clone(),
                    channel: route.dst_channel.clone(),
                    sequences: committed.clone(),
                    acks: false,
                })
                .await?;
            let received: Vec<u64> = committed
                .iter()
                .copied()
                .filter(|s| !unreceived.contains(s))
                .collect();
            // Packets relayd has no record of (sent before it first ran, or while its data directory was
            // elsewhere): their data and acks come from the chains' transaction index.
            let unseen = |seqs: &[u64]| -> Vec<u64> {
                seqs.iter()
                    .copied()
                    .filter(|s| {
                        route
                            .key(*s)
                            .is_none_or(|k| !matches!(store.packet(&k), Ok(Some(_))))
                    })
                    .collect()
            };
            // Received packets whose acknowledgement bytes relayd does not hold (never seen, or its event went
            // by unheard): the ack comes from the destination's transaction index as well.
            let ack_unknown: Vec<u64> = received
                .iter()
                .copied()
                .filter(|s| {
                    route
                        .key(*s)
                        .is_none_or(|k| !matches!(store.packet(&k), Ok(Some(r)) if r.ack.is_some()))
                })
                .collect();
            let (unseen_sent, unseen_acked) = (unseen(&unreceived), ack_unknown);
            let mut found = Vec::new();
            if !unseen_sent.is_empty() {
                found.extend(
                    src.query_packet_events(QueryPacketEvents {
                        correlation,
                        kind: PacketEventKind::Sent,
                        port: route.src_port.clone(),
                        channel: route.src_channel.clone(),
                        sequences: unseen_sent,
                    })
                    .await?,
                );
            }
            if !unseen_acked.is_empty() {
                found.extend(
                    dst.query_packet_events(QueryPacketEvents {
                        correlation,
                        kind: PacketEventKind::AckWritten,
                        port: route.dst_port.clone(),
                        channel: route.dst_channel.clone(),
                        sequences: unseen_acked,
                    })
                    .await?,
                );
            }
            Ok::<_, RelayError>((unreceived, received, found))
        };
        Box::pin(fut.into_actor(self).map(move |result, act, _| {
            let (unreceived, unacknowledged, found) = result?;
            let mut started = 0;
            for seq in unreceived.iter().chain(unacknowledged.iter()) {
                let Some(key) = route.key(*seq) else {
                    continue;
                };
                if act.builders.contains_key(&key) {
                    continue;
                }
                if let Ok(Some(mut r)) = act.store.packet(&key) {
                    if r.is_final() {
                        // Pending on chain but final here (e.g. failed): relay it again.
                        r.state = "detected".into();
                        r.attempts = 0;
                        let _ = act.store.take_dead_letter(&key);
                    }
                    act.spawn(r, 0);
                    started += 1;
                }
            }
            for e in found {
                let before = act.builders.len();
                match e.event {
                    IbcEvent::SendPacket(p) => act.packet_sent(&route.src, p, e.height),
                    IbcEvent::WriteAcknowledgement { packet, ack } => {
                        act.ack_written(&route.dst, packet, ack, e.height)
                    }
                    _ => {}
                }
                started += act.builders.len().saturating_sub(before);
            }
            Ok(ClearReport {
                unreceived,
                unacknowledged,
                started,
            })
        }))
    }
}

impl Handler<RelayHandshake> for RelayCoordinator {
    type Result = ResponseActFuture<Self, Result<(), RelayError>>;

    fn handle(&mut self, msg: RelayHandshake, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        self.observe_handshake(msg.object, msg.state, msg.correlation)
    }
}

/// Routes resolved after start: those through a chain whose node did not answer at start, once it does.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddRoutes(pub Vec<Route>);

impl Handler<AddRoutes> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: AddRoutes, _: &mut Self::Context) {
        for route in msg.0 {
            self.routes.insert(route);
        }
    }
}
