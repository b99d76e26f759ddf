//! The RelayCoordinator's actix shell: its fields, handlers and the builders it spawns.

use std::collections::{HashMap, HashSet};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use relayd_messages::{
    BlockObserved, BuilderExited, ChainAdvanced, ChainId, ChannelAttributes, ClearPackets,
    ClearReport, ClientHealthChanged, ClientId, CorrelationId, ErrorKind, Halt, HandshakeState,
    IbcEvent, InjectPanic, LifecycleChanged, ObservedEvent, Packet, PacketEventKind, PacketKey,
    PacketObserved, PacketSeen, QueryCommitments, QueryPacketEvents, QueryUnreceived, RelayError,
    RelayHandshake, RelayObject, Supersede,
};
use tracing::{debug, error, info, warn};

use super::clearing;
use super::state::{
    ChannelFilter, CoordinatorState, Exit, HandshakeExit, HandshakeVerdict, LiveHandshake, Routed,
    Scope, Start,
};
use crate::chain_link::ChainLink;
use crate::handshake_builder::{locate, Handshake, HandshakeBuilder, HandshakeEnv};
use crate::meter::{ActorLoad, Meter, MeteredAddr, MeteredRecipient};
use crate::packet_builder::{BuilderEnv, PacketBuilder};
use crate::routes::{Route, Routes};
use crate::store::{now_ms, PacketRecord, StateStore, Transition};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// A live packet builder's address, counted on its own meter.
pub(super) type BuilderAddr = MeteredAddr<PacketBuilder>;

/// The coordinator actor.
pub struct RelayCoordinator {
    links: HashMap<ChainId, ChainLink>,
    /// Every relay decision (see `state`); the actor performs what it decides.
    pub(super) state: CoordinatorState<BuilderAddr, Addr<HandshakeBuilder>>,
    pub(super) store: StateStore,
    max_attempts: u32,
    subscribers: Vec<Recipient<LifecycleChanged>>,
    events_handled: u64,
    /// Where `update_client` events of the clients the routes go through (host chain, client) are judged for
    /// misbehaviour (the MisbehaviourWatcher).
    client_updates: Option<ClientUpdates>,
    pub(super) meter: Meter,
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
            state: CoordinatorState::new(routes, filter),
            store,
            max_attempts,
            subscribers: Vec::new(),
            events_handled: 0,
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
        self.client_updates = Some((watcher, self.state.tracked_clients()));
    }

    /// Relays only the packets `scope` covers.
    pub fn with_scope(mut self, scope: Option<Scope>) -> Self {
        self.state.set_scope(scope);
        self
    }

    /// Clears the routes leaving each chain every `n` of its blocks (`[[chains]] clear_interval`; 0 = never).
    pub fn with_clear_intervals(mut self, intervals: HashMap<ChainId, u64>) -> Self {
        self.state.set_clear_intervals(intervals);
        self
    }

    /// A channel end closed on `chain`: builders sending to it time their packets out on close.
    fn destination_closed(&mut self, chain: &ChainId, a: &ChannelAttributes) {
        let Some(keys) = self.state.destination_closed(chain, a) else {
            return;
        };
        info!(chain = %chain, port = %a.port_id, channel = %a.channel_id, "destination channel closed: its pending packets are timed out on close");
        for key in keys {
            if let Some(live) = self.state.builder(&key) {
                must_deliver(
                    &live.handle,
                    PacketObserved {
                        key,
                        seen: PacketSeen::DestinationClosed,
                    },
                );
            }
        }
    }

    /// Periodic clearing: pending packets of the routes leaving `chain`, through the coordinator's own mailbox
    /// so it runs like an operator's request.
    fn clear_periodically(&self, chain: &ChainId, height: u64, ctx: &Context<Self>) {
        for request in self.state.clear_due(chain, height) {
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

    /// Starts the builder of `record` if the state says it may go now.
    pub(super) fn spawn(&mut self, record: PacketRecord, restarts: u32) {
        let Some(env) = self
            .state
            .routes()
            .of(&record.key)
            .and_then(|r| self.env(r))
        else {
            return;
        };
        let launch = match self.state.start(record, restarts) {
            Start::Go(launch) => launch,
            Start::Halted(record, reason) => {
                // The record stays as it is, saying why, until the client is usable again.
                if record.last_error.as_ref() != Some(&reason) {
                    let mut record = record;
                    record.last_error = Some(reason);
                    record.updated_ms = now_ms();
                    self.put(&record);
                }
                return;
            }
            Start::Skip | Start::Queued => return,
        };
        let key = launch.record.key.clone();
        let meter = Meter::new();
        let addr = MeteredAddr::new(
            PacketBuilder::new(
                launch.record.clone(),
                launch.generation,
                launch.tip,
                env,
                meter.clone(),
            )
            .start(),
            meter,
        );
        if launch.destination_closed {
            must_deliver(
                &addr,
                PacketObserved {
                    key,
                    seen: PacketSeen::DestinationClosed,
                },
            );
        }
        self.state.launched(&launch, addr, now_ms());
    }

    /// Writes a packet's lifecycle record; a failure is logged (the builder writes it again on its next step).
    fn put(&self, record: &PacketRecord) {
        if let Err(e) = self.store.put_packet(record) {
            warn!(packet = %record.key, error = %e, "cannot write the packet's lifecycle record");
        }
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

    /// Performs what an observed event asks (see [`CoordinatorState::route`]).
    fn observe(&mut self, chain: &ChainId, observed: ObservedEvent, ctx: &mut Context<Self>) {
        if let IbcEvent::ChannelCloseInit(a)
        | IbcEvent::ChannelCloseConfirm(a)
        | IbcEvent::ChannelClosed(a) = &observed.event
        {
            self.destination_closed(chain, a);
        }
        let Some(routed) = self
            .state
            .route(chain, &observed.event, observed.tx_hash.as_ref())
        else {
            return;
        };
        match (routed, observed.event) {
            (Routed::Sent { route, key }, IbcEvent::SendPacket(packet)) => {
                self.packet_sent(key, &route, packet, observed.height)
            }
            (
                Routed::AckWritten { route, key, live },
                IbcEvent::WriteAcknowledgement { packet, ack },
            ) => self.ack_written(key, &route, packet, ack, observed.height, live),
            (Routed::Finished { key, seen, live }, _) => self.packet_closed(key, seen, live),
            (Routed::Handshake { object, state }, _) => {
                let fut = self.observe_handshake(object.clone(), state, CorrelationId::fresh());
                ctx.spawn(fut.map(move |result, _, _| {
                    if let Err(e) = result {
                        debug!(%object, error = %e, "handshake event not relayed");
                    }
                }));
            }
            _ => {}
        }
    }

    /// A packet was sent (or found pending) and has no builder: start one unless it is done.
    fn packet_sent(&mut self, key: PacketKey, route: &Route, packet: Packet, height: u64) {
        let record = match self.store.packet(&key) {
            Ok(Some(r)) if r.is_final() => return,
            Ok(Some(r)) => r,
            Ok(None) => {
                let r = self.new_record(key, route, packet, height, "detected", None);
                self.put(&r);
                r
            }
            Err(e) => {
                warn!(packet = %key, error = %e, "unreadable lifecycle record; relaying afresh");
                self.new_record(key, route, packet, height, "detected", None)
            }
        };
        self.spawn(record, 0);
    }

    /// The destination wrote an acknowledgement for a packet of one of our routes.
    fn ack_written(
        &mut self,
        key: PacketKey,
        route: &Route,
        packet: Packet,
        ack: Vec<u8>,
        height: u64,
        live: bool,
    ) {
        if live {
            // The ack bytes exist only in this event: persist them before the checkpoint passes this block, so
            // a restart can relay the ack even if the builder never gets to write them.
            if let Ok(Some(mut r)) = self.store.packet(&key) {
                if r.ack.is_none() {
                    r.ack = Some(ack.clone());
                    self.put(&r);
                }
            }
            if let Some(live) = self.state.builder(&key) {
                must_deliver(
                    &live.handle,
                    PacketObserved {
                        key,
                        seen: PacketSeen::AckWritten { ack },
                    },
                );
            }
            return;
        }
        let record = match self.store.packet(&key) {
            Ok(Some(r)) if r.is_final() => return,
            Ok(Some(mut r)) => {
                r.ack = Some(ack);
                r
            }
            // Another relayer delivered it; its ack is ours to relay all the same (the event carries the data).
            _ => self.new_record(key, route, packet, height, "confirmed", Some(ack)),
        };
        self.put(&record);
        self.spawn(record, 0);
    }

    /// The source finished the packet (ack or timeout processed), whoever relayed it.
    fn packet_closed(&mut self, key: PacketKey, seen: PacketSeen, live: bool) {
        if live {
            if let Some(live) = self.state.builder(&key) {
                must_deliver(&live.handle, PacketObserved { key, seen });
            }
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
                self.put(&r);
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
            match act.state.observe_handshake(&object, state) {
                HandshakeVerdict::Discard => {
                    debug!(%object, ?state, "handshake event at or below the running builder's; discarded");
                    return Ok(());
                }
                HandshakeVerdict::Supersede => {
                    if let Some(live) = act.state.handshake(&object) {
                        live.handle.do_send(Supersede);
                    }
                }
                HandshakeVerdict::Start => {}
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
        let generation = self.state.next_generation();
        let Some(env) = self.handshake_env() else {
            return;
        };
        info!(%object, ?state, generation, "handshake builder started");
        let handle = HandshakeBuilder::new(
            handshake.clone(),
            object.clone(),
            generation,
            correlation,
            env,
        )
        .start();
        self.state.handshake_launched(
            object,
            LiveHandshake {
                handle,
                generation,
                state,
                handshake,
                correlation,
                restarts,
            },
        );
    }

    fn handshake_exited(&mut self, msg: BuilderExited, ctx: &mut Context<Self>) {
        match self
            .state
            .handshake_exited(&msg.object, msg.generation, msg.finished)
        {
            HandshakeExit::Stale => {
                debug!(object = %msg.object, generation = msg.generation, "stale handshake builder exit ignored")
            }
            HandshakeExit::Finished => {}
            HandshakeExit::GiveUp(restarts) => {
                warn!(object = %msg.object, restarts, "handshake builder keeps failing; left to the operator")
            }
            HandshakeExit::Restart(delay, live) => {
                warn!(object = %msg.object, restarts = live.restarts, ?delay, "handshake builder failed; restarting");
                let object = msg.object;
                ctx.run_later(delay, move |act, _| {
                    if act.state.handshake(&object).is_some() {
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
    }
}

/// Sends an event a builder cannot do without (its ack bytes, its packet's end): through the mailbox limit when
/// there is room, past it when the mailbox is full, since dropping it would leave the builder waiting for good.
/// Tips, which come every block, use plain `try_send` instead.
fn must_deliver(addr: &MeteredAddr<PacketBuilder>, msg: PacketObserved) {
    if let Err(actix::dev::SendError::Full(msg)) = addr.try_send(msg) {
        addr.do_send(msg);
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
        self.state.observe_tip(&chain, msg.height, msg.time_ns);
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
            self.observe(&chain, observed, ctx);
        }
        // Handshake builders waiting for a block re-read their ends.
        for live in self.state.handshakes() {
            let _ = live.handle.try_send(ChainAdvanced {
                chain: chain.clone(),
                height: msg.height,
            });
        }
        for key in self.state.timed_out_by(&chain, msg.height, msg.time_ns) {
            if let Some(live) = self.state.builder(&key) {
                // Tips come every block; a full mailbox can skip one.
                let _ = live.handle.try_send(PacketObserved {
                    key,
                    seen: PacketSeen::DestinationTip {
                        height: msg.height,
                        time_ns: msg.time_ns,
                    },
                });
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
        match self.state.packet_exited(&key, msg.generation, msg.finished) {
            Exit::Stale => {
                debug!(packet = %key, generation = msg.generation, "stale builder exit ignored")
            }
            Exit::Done(next) => {
                if let Some((record, restarts)) = next {
                    self.spawn(record, restarts);
                }
            }
            Exit::Restart { delay, restarts } => {
                warn!(packet = %key, restarts, ?delay, "packet builder failed; restarting");
                ctx.run_later(delay, move |act, _| {
                    if act.state.builder(&key).is_some() {
                        return;
                    }
                    match act.store.packet(&key) {
                        Ok(Some(r)) if !r.is_final() => act.spawn(r, restarts + 1),
                        Ok(_) => {}
                        Err(e) => {
                            warn!(packet = %key, error = %e, "cannot restore the packet builder")
                        }
                    }
                });
            }
        }
    }
}

impl Handler<LifecycleChanged> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: LifecycleChanged, _: &mut Self::Context) {
        self.meter.took();
        if let RelayObject::Packet(key) = &msg.object {
            // Received (or done): the next packet of an ordered lane may go.
            if let Some((record, restarts)) =
                self.state.lifecycle_changed(key, &msg.state, msg.is_final)
            {
                self.spawn(record, restarts);
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
            .state
            .tips()
            .iter()
            .map(|(c, (h, _))| (c.to_string(), *h))
            .collect();
        heights.sort();
        let mut builder_mailboxes: HashMap<&ChainId, u64> = HashMap::new();
        for (key, live) in self.state.builders() {
            *builder_mailboxes.entry(&key.src_chain).or_default() +=
                live.handle.meter().load().mailbox_depth;
        }
        let mut builder_mailboxes: Vec<(String, u64)> = builder_mailboxes
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        builder_mailboxes.sort();
        MessageResult(CoordinatorStatus {
            heights,
            builders: self.state.builders().len(),
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
        if !msg.usable {
            let paths = self.state.paths_through(&msg.host, &msg.client_id);
            error!(host = %msg.host, client = %msg.client_id, reason = %msg.reason, paths, "stopping the paths through an unusable client");
            // Running builders of those paths stop where they are; their records keep the packets for later.
            for key in self
                .state
                .client_unusable(&msg.host, &msg.client_id, &msg.reason)
            {
                if let Some(live) = self.state.builder(&key) {
                    let _ = live.handle.try_send(Halt {
                        reason: msg.reason.clone(),
                    });
                }
            }
            return;
        }
        let resumed = self.state.client_usable(&msg.host, &msg.client_id);
        if resumed.is_empty() {
            return;
        }
        info!(host = %msg.host, client = %msg.client_id, "client usable again: resuming its paths");
        // What waited meanwhile is found the way clearing finds anything pending.
        for route in resumed {
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
        match self.state.builders().values().next() {
            Some(live) => {
                live.handle.do_send(InjectPanic);
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
            .state
            .routes()
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
            let committed = clearing::select(
                src.query_commitments(QueryCommitments {
                    correlation,
                    port: route.src_port.clone(),
                    channel: route.src_channel.clone(),
                })
                .await?,
                wanted.as_deref(),
            );
            let unreceived = dst
                .query_unreceived(QueryUnreceived {
                    correlation,
                    port: route.dst_port.clone(),
                    channel: route.dst_channel.clone(),
                    sequences: committed.clone(),
                    acks: false,
                })
                .await?;
            let received = clearing::received(&committed, &unreceived);
            // Packets relayd has no record of, and received packets whose acknowledgement bytes it does not
            // hold, come from the chains' transaction index.
            let (unseen_sent, unseen_acked) = clearing::to_look_up(&unreceived, &received, |s| {
                let record = route.key(s).and_then(|k| store.packet(&k).ok().flatten());
                clearing::known(record.as_ref())
            });
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
        Box::pin(fut.into_actor(self).map(move |result, act, ctx| {
            let (unreceived, unacknowledged, found) = result?;
            let mut started = 0;
            for seq in unreceived.iter().chain(unacknowledged.iter()) {
                let Some(key) = route.key(*seq) else {
                    continue;
                };
                if act.state.builder(&key).is_some() {
                    continue;
                }
                if let Ok(Some(mut r)) = act.store.packet(&key) {
                    // Pending on chain but final here (e.g. failed): relay it again.
                    if clearing::reopen(&mut r) {
                        let _ = act.store.take_dead_letter(&key);
                    }
                    act.spawn(r, 0);
                    started += 1;
                }
            }
            for e in found {
                let before = act.state.builders().len();
                let chain = match e.event {
                    IbcEvent::SendPacket(_) => route.src.clone(),
                    IbcEvent::WriteAcknowledgement { .. } => route.dst.clone(),
                    _ => continue,
                };
                act.observe(&chain, e, ctx);
                started += act.state.builders().len().saturating_sub(before);
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
