//! The RelayCoordinator's actix shell: its fields, handlers and the builders it spawns.

use std::collections::{HashMap, HashSet};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, Recipient};
use relayd_messages::{
    BuilderExited, ChainId, ClientHealthChanged, ClientId, Halt, LifecycleChanged, Packet,
    PacketObserved, PacketSeen, PacketState, RelayObject, Route,
};
use tracing::{debug, error, info, warn};

use super::decisions::{Exit, Scope, Start};
use super::state::{ChannelFilter, CoordinatorState};
use crate::chain_link::ChainLink;
use crate::handshake_builder::HandshakeBuilder;
use crate::meter::{Meter, MeteredAddr, MeteredRecipient};
use crate::packet_builder::{BuilderEnv, PacketBuilder};
use crate::routes::Routes;
use crate::store::{now_ms, PacketBatch, PacketRecord, StateStore};
use crate::supervisor::guard::ExitGuard;

/// A live packet builder's address, counted on its own meter.
pub(super) type BuilderAddr = MeteredAddr<PacketBuilder>;

/// The coordinator actor.
pub struct RelayCoordinator {
    pub(super) links: HashMap<ChainId, ChainLink>,
    /// Every relay decision (see `state`); the actor performs what it decides.
    pub(super) state: CoordinatorState<BuilderAddr, Addr<HandshakeBuilder>>,
    pub(super) store: StateStore,
    max_attempts: u32,
    pub(super) subscribers: Vec<Recipient<LifecycleChanged>>,
    pub(super) events_handled: u64,
    /// Where `update_client` events of the clients the routes go through (host chain, client) are judged for
    /// misbehaviour (the MisbehaviourWatcher).
    pub(super) client_updates: Option<ClientUpdates>,
    pub(super) meter: Meter,
    /// Where builders report, made once when the coordinator starts rather than for every builder started.
    pub(super) outputs: Option<BuilderOutputs>,
    /// Reports the coordinator's failure (a panic) to the service supervisor, which escalates it.
    pub(super) guard: Option<ExitGuard>,
    /// How long finished records are kept (`None`: forever); see `compaction`.
    pub(super) retention: Option<std::time::Duration>,
    /// The record changes of the block being handled, written in one transaction when it is done (`None`
    /// outside a block: a change is written at once).
    pub(super) batch: Option<PacketBatch>,
    /// Lifecycle changes of the block being handled, told to the subscribers once its records are written.
    pub(super) held_notices: Vec<LifecycleChanged>,
    /// The packets the block being handled sent that had no record, each with its destination: written as one
    /// intake entry when the block is done (`None` outside a block: a packet's record is made at once).
    pub(super) intake: Option<Vec<(ChainId, Packet)>>,
    /// The id the next intake entry takes.
    pub(super) next_intake: u64,
    /// The intake entry being admitted, decoded once (a packet is taken out as it is admitted).
    pub(super) intake_cache: Option<CachedEntry>,
}

/// A packet of a cached intake entry with its destination chain; `None` once admitted.
pub(super) type Waiting = Option<(ChainId, Packet)>;

/// An intake entry as the window admits it.
pub(super) struct CachedEntry {
    pub(super) id: u64,
    /// The source chain, the send height and the packets (`None` once admitted); `None` when the entry could
    /// not be read.
    pub(super) packets: Option<(ChainId, u64, Vec<Waiting>)>,
}

/// The coordinator's own recipients for what builders report, counted on its meter.
pub(super) struct BuilderOutputs {
    pub(super) exits: MeteredRecipient<BuilderExited>,
    pub(super) lifecycle: MeteredRecipient<LifecycleChanged>,
}

/// The misbehaviour watcher and the clients (host chain, client) whose updates it judges.
type ClientUpdates = (
    MeteredRecipient<relayd_messages::ClientUpdateObserved>,
    HashSet<(ChainId, ClientId)>,
);

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
            retention: None,
            batch: None,
            held_notices: Vec::new(),
            intake: None,
            next_intake: 0,
            intake_cache: None,
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
    pub(super) fn forward_client_updates(
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

    /// Skips ICS-20 packets over `caps` (`[global] ics20_max_memo_size`, `ics20_max_receiver_size`).
    pub fn with_caps(mut self, caps: super::caps::Ics20Caps) -> Self {
        self.state.set_caps(caps);
        self
    }

    /// Clears the routes leaving each chain every `n` of its blocks (`[[chains]] clear_interval`; 0 = never).
    pub fn with_clear_intervals(mut self, intervals: HashMap<ChainId, u64>) -> Self {
        self.state.set_clear_intervals(intervals);
        self
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
        // A packet without the chains to run it on is not started (nor held in the window).
        if self.outputs.is_none()
            || self.state.routes().of(&record.key).is_none_or(|r| {
                !self.links.contains_key(&r.src) || !self.links.contains_key(&r.dst)
            })
        {
            return;
        }
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
            Start::Skip | Start::Queued | Start::Deferred => return,
        };
        // Made only for a builder that starts: most packets of a backlog wait in the window.
        let Some(env) = self.env(&launch.route) else {
            return;
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

    /// Writes a packet's lifecycle record: into the block's batch while a block is handled, else with the
    /// store's waiting writes (a direct write would copy everything waiting into its own transaction, once per
    /// packet a clearing finds). A failure is logged; the record stays waiting for the next write.
    pub(super) fn put(&mut self, record: &PacketRecord) {
        if let Some(batch) = &mut self.batch {
            batch.put(record);
            return;
        }
        if let Err(e) = self.store.put_packet_soon(record) {
            warn!(packet = %record.key, error = %e, "cannot write the packet's lifecycle record");
        }
    }

    /// A packet's lifecycle record, as the block being handled left it.
    pub(super) fn record(
        &self,
        key: &relayd_messages::PacketKey,
    ) -> Result<Option<PacketRecord>, crate::store::StoreError> {
        match &self.batch {
            Some(batch) => self.store.packet_in(batch, key),
            None => self.store.packet(key),
        }
    }
}

/// Sends an event a builder cannot do without (its ack bytes, its packet's end): through the mailbox limit when
/// there is room, past it when the mailbox is full, since dropping it would leave the builder waiting for good.
/// Tips, which come every block, use plain `try_send` instead.
pub(super) fn must_deliver(addr: &MeteredAddr<PacketBuilder>, msg: PacketObserved) {
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
        // Then the packets observed but not yet given records, in the order they were sent.
        self.resume_intake();
        self.admit_waiting();
        self.schedule_compaction(ctx, std::time::Duration::ZERO);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(guard) = &mut self.guard {
            guard.stopped_cleanly();
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
                self.admit_waiting();
            }
            Exit::Restart { delay, restarts } => {
                // Its slot is free while it backs off; it takes its turn again when restarted.
                self.admit_waiting();
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
            // Received (or done): the next packet of an ordered lane may go. A packet's change names one of
            // its states (the event is shared with handshakes, whose states are their own).
            let state = msg.state.parse::<PacketState>().ok();
            if let Some((record, restarts)) =
                state.and_then(|state| self.state.lifecycle_changed(key, state, msg.is_final))
            {
                self.spawn(record, restarts);
            }
        }
        self.notify(msg);
    }
}

impl RelayCoordinator {
    /// Tells the lifecycle subscribers of `msg`; a final change is delivered past a full mailbox. While a block
    /// is handled the change waits for the block's records to be written.
    pub(super) fn notify(&mut self, msg: LifecycleChanged) {
        if self.batch.is_some() {
            self.held_notices.push(msg);
            return;
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
