//! The RelayCoordinator's decisions, pure: which route an observed event concerns, whether a packet's builder may
//! start (scope, halted clients, ordered lanes), which builders a destination tip or a channel close concerns,
//! what a builder's exit means (stale, done, restart after how long), and which handshake event starts or
//! supersedes a builder. No actix, no sled, no clock: the actor passes the time in and performs what it is told.
//!
//! Generic over the handles of the live builders (`H` for packet builders, `K` for handshake builders), so the
//! rules are tested with plain numbers standing in for actor addresses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use relayd_messages::{
    ChainId, ChannelAttributes, ClearPackets, ClientId, ConnectionAttributes, HandshakeState,
    Height, IbcEvent, Packet, PacketKey, PacketSeen, PacketState, RelayObject, Route,
};

use super::caps::{self, Ics20Caps, Skip};
use super::decisions::{
    Exit, HandshakeExit, HandshakeVerdict, Launch, LiveBuilder, LiveHandshake, Routed, Scope, Start,
};
use super::window::Window;
use crate::packet_builder::state::expired;
use crate::retry;
use crate::routes::Routes;
use crate::store::PacketRecord;

/// Whether a source channel (chain, port, channel) is relayed.
pub type ChannelFilter = Box<dyn Fn(&ChainId, &str, &str) -> bool>;

/// Restarts of one handshake builder before the handshake is left to the operator.
pub const MAX_HANDSHAKE_RESTARTS: u32 = 10;

/// One ordered channel direction: ICS-04 receives its packets strictly in sequence, so one packet at a time is
/// worked on until it is received, and the rest wait in sequence order.
#[derive(Debug, Default)]
struct OrderedLane {
    active: Option<u64>,
    waiting: BTreeMap<u64, (PacketRecord, u32)>,
}

type Lane = (ChainId, String, String);

fn lane_of(key: &PacketKey) -> Lane {
    (
        key.src_chain.clone(),
        key.src_port.to_string(),
        key.src_channel.to_string(),
    )
}

/// The key of `packet` sent on `chain`.
pub fn key_of(chain: &ChainId, packet: &Packet) -> PacketKey {
    PacketKey {
        src_chain: chain.clone(),
        src_port: packet.source_port.clone(),
        src_channel: packet.source_channel.clone(),
        sequence: packet.sequence,
    }
}

/// The coordinator's state, apart from its actor plumbing.
pub struct CoordinatorState<H, K> {
    routes: Routes,
    filter: ChannelFilter,
    scope: Option<Scope>,
    builders: HashMap<PacketKey, LiveBuilder<H>>,
    by_dst: HashMap<ChainId, HashSet<PacketKey>>,
    handshakes: HashMap<RelayObject, LiveHandshake<K>>,
    tips: HashMap<ChainId, (u64, u64)>,
    next_generation: u64,
    clear_intervals: HashMap<ChainId, u64>,
    /// Clients that are expired or frozen (host chain, client), with why: the paths through them are stopped.
    halted: HashMap<(ChainId, ClientId), String>,
    /// Chains whose node is not consistent with what relayd followed (height went back, another chain), with
    /// why: every path to or from them is stopped.
    inconsistent: HashMap<ChainId, String>,
    /// Destination channel ends seen closing (chain, port, channel): their packets are timed out on close.
    closed: HashSet<Lane>,
    /// Ordered routes (keyed by source chain, port, channel).
    ordered: HashMap<Lane, OrderedLane>,
    /// ICS-20 memo and receiver caps: packets over them are skipped.
    caps: Ics20Caps,
    /// The bound on running packet builders, and the packets waiting for a slot.
    window: Window,
}

impl<H, K> CoordinatorState<H, K> {
    /// The state over `routes`; `filter(chain, port, channel)` says whether a source channel is relayed.
    pub fn new(routes: Routes, filter: ChannelFilter) -> Self {
        Self {
            routes,
            filter,
            scope: None,
            builders: HashMap::new(),
            by_dst: HashMap::new(),
            handshakes: HashMap::new(),
            tips: HashMap::new(),
            next_generation: 0,
            clear_intervals: HashMap::new(),
            halted: HashMap::new(),
            inconsistent: HashMap::new(),
            closed: HashSet::new(),
            ordered: HashMap::new(),
            caps: Ics20Caps::default(),
            window: Window::default(),
        }
    }

    /// Skips ICS-20 packets over `caps` from now on.
    pub fn set_caps(&mut self, caps: Ics20Caps) {
        self.caps = caps;
    }

    /// Relays the source channels `filter` allows from now on.
    pub fn set_filter(&mut self, filter: ChannelFilter) {
        self.filter = filter;
    }

    /// Why a newly seen `packet` is not relayed, if it is over a cap (decided once, when its record is made).
    pub fn skip_of(&self, packet: &Packet) -> Option<Skip> {
        caps::verdict(&self.caps, packet)
    }

    /// Lets at most `max` packet builders run at once (at least one); the rest wait for a slot.
    pub fn set_max_builders(&mut self, max: usize) {
        let mut waiting = std::mem::replace(&mut self.window, Window::new(max));
        while let Some((key, restarts)) = waiting.next(0) {
            self.window.defer(key, restarts);
        }
    }

    /// The bound on running packet builders.
    pub fn max_builders(&self) -> usize {
        self.window.max()
    }

    /// Packets waiting for a builder slot.
    pub fn waiting_builders(&self) -> usize {
        self.window.waiting()
    }

    /// The next waiting packet (with its builder's restarts) to start, if a slot is free: the actor reads its
    /// record from the store and starts it (see [`Self::start`]).
    pub fn admit(&mut self) -> Option<(PacketKey, u32)> {
        self.window.next(self.builders.len())
    }

    /// Relays only the packets `scope` covers.
    pub fn set_scope(&mut self, scope: Option<Scope>) {
        self.scope = scope;
    }

    /// Clears the routes leaving each chain every `n` of its blocks (0 = never).
    pub fn set_clear_intervals(&mut self, intervals: HashMap<ChainId, u64>) {
        self.clear_intervals = intervals;
    }

    /// Adds routes resolved after start (through a chain whose node did not answer at start, once it does).
    pub fn add_routes(&mut self, routes: impl IntoIterator<Item = Route>) {
        for route in routes {
            self.routes.insert(route);
        }
    }

    /// Stops relaying `routes` (paths removed on reload): no new builder starts for them; running ones finish.
    pub fn remove_routes(&mut self, routes: &[Route]) {
        for route in routes {
            self.routes.remove(route);
        }
    }

    /// The routes.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// The live packet builders.
    pub fn builders(&self) -> &HashMap<PacketKey, LiveBuilder<H>> {
        &self.builders
    }

    /// The live builder of `key`.
    pub fn builder(&self, key: &PacketKey) -> Option<&LiveBuilder<H>> {
        self.builders.get(key)
    }

    /// The live handshake builders.
    pub fn handshakes(&self) -> impl Iterator<Item = &LiveHandshake<K>> {
        self.handshakes.values()
    }

    /// The live handshake builder of `object`.
    pub fn handshake(&self, object: &RelayObject) -> Option<&LiveHandshake<K>> {
        self.handshakes.get(object)
    }

    /// The last tip (height, time) seen of each chain.
    pub fn tips(&self) -> &HashMap<ChainId, (u64, u64)> {
        &self.tips
    }

    /// The clients (host chain, client) the routes go through, both ways: their updates are judged for
    /// misbehaviour.
    pub fn tracked_clients(&self) -> HashSet<(ChainId, ClientId)> {
        self.routes
            .all()
            .flat_map(|r| {
                [
                    (r.dst.clone(), r.dst_client.clone()),
                    (r.src.clone(), r.src_client.clone()),
                ]
            })
            .collect()
    }

    fn in_scope(&self, key: &PacketKey) -> bool {
        self.scope.as_ref().is_none_or(|s| s.covers(key))
    }

    /// A fresh generation for a builder about to start.
    pub fn next_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// What an event observed on `chain` asks of the coordinator (channel closes also mark the destination
    /// closed; see [`Self::destination_closed`]).
    pub fn route(
        &self,
        chain: &ChainId,
        event: &IbcEvent,
        tx_hash: Option<&String>,
    ) -> Option<Routed> {
        use HandshakeState as S;
        match event {
            IbcEvent::SendPacket(packet) => {
                let route = self.routes.from_source(
                    chain,
                    packet.source_port.as_str(),
                    packet.source_channel.as_str(),
                )?;
                if !(self.filter)(
                    chain,
                    packet.source_port.as_str(),
                    packet.source_channel.as_str(),
                ) {
                    return None;
                }
                let key = key_of(chain, packet);
                if self.builders.contains_key(&key) || !self.in_scope(&key) {
                    return None;
                }
                Some(Routed::Sent {
                    route: route.clone(),
                    key,
                })
            }
            IbcEvent::WriteAcknowledgement { packet, .. } => {
                let route = self.routes.to_destination(
                    chain,
                    packet.destination_port.as_str(),
                    packet.destination_channel.as_str(),
                )?;
                if !(self.filter)(
                    &route.src,
                    route.src_port.as_str(),
                    route.src_channel.as_str(),
                ) {
                    return None;
                }
                let key = key_of(&route.src, packet);
                if !self.in_scope(&key) {
                    return None;
                }
                let live = self.builders.contains_key(&key);
                Some(Routed::AckWritten {
                    route: route.clone(),
                    key,
                    live,
                })
            }
            IbcEvent::AcknowledgePacket(p) | IbcEvent::TimeoutPacket(p) => {
                let key = key_of(chain, p);
                let tx_hash = tx_hash.cloned();
                let seen = match event {
                    IbcEvent::AcknowledgePacket(_) => PacketSeen::AckProcessed { tx_hash },
                    _ => PacketSeen::TimeoutProcessed { tx_hash },
                };
                let live = self.builders.contains_key(&key);
                Some(Routed::Finished { key, seen, live })
            }
            IbcEvent::ConnectionOpenInit(a) => Some(connection_event(chain, a, S::OpenInit)),
            IbcEvent::ConnectionOpenTry(a) => Some(connection_event(chain, a, S::OpenTry)),
            IbcEvent::ConnectionOpenAck(a) => Some(connection_event(chain, a, S::OpenAck)),
            IbcEvent::ConnectionOpenConfirm(a) => Some(connection_event(chain, a, S::OpenConfirm)),
            IbcEvent::ChannelOpenInit(a) => Some(channel_event(chain, a, S::OpenInit)),
            IbcEvent::ChannelOpenTry(a) => Some(channel_event(chain, a, S::OpenTry)),
            IbcEvent::ChannelOpenAck(a) => Some(channel_event(chain, a, S::OpenAck)),
            IbcEvent::ChannelOpenConfirm(a) => Some(channel_event(chain, a, S::OpenConfirm)),
            IbcEvent::ChannelCloseInit(a) => Some(channel_event(chain, a, S::CloseInit)),
            IbcEvent::ChannelCloseConfirm(a) => Some(channel_event(chain, a, S::CloseConfirm)),
            // An ordered channel timed out: this end is closed as by a close init, and the counterparty is
            // confirmed closed the same way.
            IbcEvent::ChannelClosed(a) => Some(channel_event(chain, a, S::CloseInit)),
            _ => None,
        }
    }

    /// A channel end closed on `chain` (close init, close confirm, or closed by an ordered timeout). When it is
    /// the destination of a route, it is remembered and the live builders sending to it are returned: they time
    /// their packets out on close. `None` when no route ends there.
    pub fn destination_closed(
        &mut self,
        chain: &ChainId,
        a: &ChannelAttributes,
    ) -> Option<Vec<PacketKey>> {
        let (port, channel) = (a.port_id.to_string(), a.channel_id.to_string());
        let closes = |r: &Route| r.dst == *chain && r.dst_port == port && r.dst_channel == channel;
        if !self.routes.all().any(&closes) {
            return None;
        }
        self.closed
            .insert((chain.clone(), port.clone(), channel.clone()));
        Some(
            self.builders
                .keys()
                .filter(|key| self.routes.of(key).is_some_and(&closes))
                .cloned()
                .collect(),
        )
    }

    /// Why `route` is stopped, if a client it goes through is unusable: the destination's client of the source
    /// (receives) or the source's client of the destination (acks and timeouts).
    pub fn halt_of(&self, route: &Route) -> Option<&String> {
        // Asked for every packet started: no key is built while no client or chain is stopped.
        if self.halted.is_empty() && self.inconsistent.is_empty() {
            return None;
        }
        if let Some(reason) = self
            .inconsistent
            .get(&route.src)
            .or_else(|| self.inconsistent.get(&route.dst))
        {
            return Some(reason);
        }
        self.halted
            .get(&(route.dst.clone(), route.dst_client.clone()))
            .or_else(|| {
                self.halted
                    .get(&(route.src.clone(), route.src_client.clone()))
            })
    }

    /// Whether `record`'s builder may start now, and if so with which generation. A packet of an ordered route
    /// that is still to be received waits while an earlier one holds the lane; any packet waits while the window
    /// of running builders is full. Call [`Self::launched`] once
    /// the builder runs.
    pub fn start(&mut self, record: PacketRecord, restarts: u32) -> Start {
        if !self.in_scope(&record.key) || self.builders.contains_key(&record.key) {
            return Start::Skip;
        }
        let Some(route) = self.routes.of(&record.key).cloned() else {
            return Start::Skip;
        };
        if let Some(reason) = self.halt_of(&route) {
            let reason = reason.clone();
            return Start::Halted(record, reason);
        }
        // Only receives are ordered: a packet already received (its ack in hand or its record past
        // `submitted`) needs no turn.
        let receiving = matches!(
            record.state,
            PacketState::Detected | PacketState::ProofGenerated | PacketState::Submitted
        ) && record.ack.is_none();
        if route.ordered && receiving {
            let seq = record.key.sequence.0;
            let lane = self.ordered.entry(lane_of(&record.key)).or_default();
            match lane.active {
                Some(active) if active != seq => {
                    lane.waiting.insert(seq, (record, restarts));
                    return Start::Queued;
                }
                _ => lane.active = Some(seq),
            }
        }
        // The window: beyond its bound the packet waits by key; its record stays in the store, to be read again
        // when a slot frees (the lane, if any, stays held by it meanwhile).
        if self.window.is_waiting(&record.key) || !self.window.has_room(self.builders.len()) {
            self.window.defer(record.key, restarts);
            return Start::Deferred;
        }
        let generation = self.next_generation();
        let destination_closed = !self.closed.is_empty()
            && self.closed.contains(&(
                route.dst.clone(),
                route.dst_port.clone(),
                route.dst_channel.clone(),
            ));
        Start::Go(Launch {
            tip: self.tips.get(&route.dst).copied(),
            record,
            restarts,
            route,
            generation,
            destination_closed,
        })
    }

    /// The builder `launch` was for runs, reachable through `handle`, since `now_ms`.
    pub fn launched(&mut self, launch: &Launch, handle: H, now_ms: u64) {
        let key = launch.record.key.clone();
        self.by_dst
            .entry(launch.route.dst.clone())
            .or_default()
            .insert(key.clone());
        self.builders.insert(
            key,
            LiveBuilder {
                handle,
                generation: launch.generation,
                restarts: launch.restarts,
                started_ms: now_ms,
                timeout: Packet {
                    data: Vec::new(),
                    ..launch.record.packet.clone()
                },
            },
        );
    }

    /// The packet `key` of an ordered route no longer holds its lane (received, finished, or stopped): the
    /// lowest waiting sequence goes next, returned to be started.
    pub fn release_lane(&mut self, key: &PacketKey) -> Option<(PacketRecord, u32)> {
        // Called for every packet received or finished; most relays have no ordered channel.
        if self.ordered.is_empty() {
            return None;
        }
        let lane = self.ordered.get_mut(&lane_of(key))?;
        if lane.active != Some(key.sequence.0) {
            return None;
        }
        lane.active = None;
        lane.waiting.pop_first().map(|(_, next)| next)
    }

    /// A packet's lifecycle changed: once received (or done) the next packet of its ordered lane may go.
    pub fn lifecycle_changed(
        &mut self,
        key: &PacketKey,
        state: PacketState,
        is_final: bool,
    ) -> Option<(PacketRecord, u32)> {
        if state == PacketState::Confirmed || is_final {
            return self.release_lane(key);
        }
        None
    }

    /// A new block of `chain`: its tip, given to builders started from now on.
    pub fn observe_tip(&mut self, chain: &ChainId, height: u64, time_ns: u64) {
        self.tips.insert(chain.clone(), (height, time_ns));
    }

    /// The live builders sending to `chain` whose packet its block at `height`, `time_ns` has timed out: only
    /// they get the tip (each builder gets the tip of its start when it starts; sending every tip to every
    /// builder would cost each block as much as the backlog is long).
    pub fn timed_out_by(&self, chain: &ChainId, height: u64, time_ns: u64) -> Vec<PacketKey> {
        let tip = Height::new(chain.revision_number(), height);
        let Some(keys) = self.by_dst.get(chain) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|key| {
                self.builders
                    .get(*key)
                    .is_some_and(|l| expired(&l.timeout, tip, time_ns))
            })
            .cloned()
            .collect()
    }

    /// The routes leaving `chain` due for periodic clearing at `height` (`clear_interval`; 0 = never).
    pub fn clear_due(&self, chain: &ChainId, height: u64) -> Vec<ClearPackets> {
        let Some(n) = self.clear_intervals.get(chain).copied().filter(|n| *n > 0) else {
            return Vec::new();
        };
        if !height.is_multiple_of(n) {
            return Vec::new();
        }
        self.routes
            .all()
            .filter(|r| &r.src == chain)
            .map(Route::clear_all)
            .collect()
    }

    /// A packet builder of `generation` exited, `finished` or not.
    pub fn packet_exited(&mut self, key: &PacketKey, generation: u64, finished: bool) -> Exit {
        let Some(live) = self.builders.get(key) else {
            return Exit::Stale;
        };
        if live.generation != generation {
            return Exit::Stale;
        }
        let restarts = live.restarts;
        self.builders.remove(key);
        if let Some(set) = self.by_dst.values_mut().find(|s| s.contains(key)) {
            set.remove(key);
        }
        let halted = self
            .routes
            .of(key)
            .is_some_and(|r| self.halt_of(r).is_some());
        if finished || halted {
            return Exit::Done(self.release_lane(key));
        }
        // Transient: a builder that failed is restarted from its record, after a backoff.
        Exit::Restart {
            delay: retry::delay(
                Duration::from_millis(50),
                Duration::from_millis(6_400),
                restarts,
            ),
            restarts,
        }
    }

    /// The client `client` on `host` became unusable (expired or frozen): the paths through it stop. Returns
    /// the live builders of those paths, which stop where they are (their records keep the packets).
    pub fn client_unusable(
        &mut self,
        host: &ChainId,
        client: &ClientId,
        reason: &str,
    ) -> Vec<PacketKey> {
        self.halted
            .insert((host.clone(), client.clone()), reason.to_owned());
        self.builders
            .keys()
            .filter(|key| {
                self.routes
                    .of(key)
                    .is_some_and(|r| goes_through(r, host, client))
            })
            .cloned()
            .collect()
    }

    /// The client `client` on `host` is usable again: returns the paths through it that no other client stops,
    /// to be cleared (what waited meanwhile is found the way clearing finds anything pending). Nothing when the
    /// client was not stopped.
    pub fn client_usable(&mut self, host: &ChainId, client: &ClientId) -> Vec<Route> {
        if self
            .halted
            .remove(&(host.clone(), client.clone()))
            .is_none()
        {
            return Vec::new();
        }
        self.routes
            .all()
            .filter(|r| goes_through(r, host, client) && self.halt_of(r).is_none())
            .cloned()
            .collect()
    }

    /// `chain`'s node stopped being consistent with what relayd followed: every path to or from it stops.
    /// Returns the live builders of those paths, which stop where they are (their records keep the packets).
    pub fn chain_inconsistent(&mut self, chain: &ChainId, reason: &str) -> Vec<PacketKey> {
        self.inconsistent.insert(chain.clone(), reason.to_owned());
        self.builders
            .keys()
            .filter(|key| {
                self.routes
                    .of(key)
                    .is_some_and(|r| r.src == *chain || r.dst == *chain)
            })
            .cloned()
            .collect()
    }

    /// `chain`'s node is consistent again: returns the paths to or from it that nothing else stops, to be
    /// cleared. Nothing when the chain was not stopped.
    pub fn chain_consistent(&mut self, chain: &ChainId) -> Vec<Route> {
        if self.inconsistent.remove(chain).is_none() {
            return Vec::new();
        }
        self.routes
            .all()
            .filter(|r| (r.src == *chain || r.dst == *chain) && self.halt_of(r).is_none())
            .cloned()
            .collect()
    }

    /// The chains whose paths are stopped because their node is inconsistent, with why, sorted.
    pub fn inconsistent_chains(&self) -> Vec<(String, String)> {
        let mut chains: Vec<(String, String)> = self
            .inconsistent
            .iter()
            .map(|(c, r)| (c.to_string(), r.clone()))
            .collect();
        chains.sort();
        chains
    }

    /// The clients whose paths are stopped (host chain, client, why): expired, frozen or missing; sorted.
    pub fn halted_clients(&self) -> Vec<(String, String, String)> {
        let mut clients: Vec<(String, String, String)> = self
            .halted
            .iter()
            .map(|((h, c), r)| (h.to_string(), c.to_string(), r.clone()))
            .collect();
        clients.sort();
        clients
    }

    /// The number of routes to or from `chain`.
    pub fn paths_of(&self, chain: &ChainId) -> usize {
        self.routes
            .all()
            .filter(|r| r.src == *chain || r.dst == *chain)
            .count()
    }

    /// The number of routes through `client` on `host`.
    pub fn paths_through(&self, host: &ChainId, client: &ClientId) -> usize {
        self.routes
            .all()
            .filter(|r| goes_through(r, host, client))
            .count()
    }

    /// A handshake event (or request) about `object` at `state`: at most one builder per handshake, for the
    /// highest state seen.
    pub fn observe_handshake(
        &self,
        object: &RelayObject,
        state: HandshakeState,
    ) -> HandshakeVerdict {
        match self.handshakes.get(object) {
            Some(live) if live.state >= state => HandshakeVerdict::Discard,
            Some(_) => HandshakeVerdict::Supersede,
            None => HandshakeVerdict::Start,
        }
    }

    /// A handshake builder runs for `object`.
    pub fn handshake_launched(&mut self, object: RelayObject, live: LiveHandshake<K>) {
        self.handshakes.insert(object, live);
    }

    /// A handshake builder of `generation` exited, `finished` or not.
    pub fn handshake_exited(
        &mut self,
        object: &RelayObject,
        generation: u64,
        finished: bool,
    ) -> HandshakeExit<K> {
        if self
            .handshakes
            .get(object)
            .is_none_or(|l| l.generation != generation)
        {
            return HandshakeExit::Stale;
        }
        let Some(live) = self.handshakes.remove(object) else {
            return HandshakeExit::Stale;
        };
        if finished {
            return HandshakeExit::Finished;
        }
        if live.restarts >= MAX_HANDSHAKE_RESTARTS {
            return HandshakeExit::GiveUp(live.restarts);
        }
        let delay = retry::delay(
            Duration::from_millis(100),
            Duration::from_millis(6_400),
            live.restarts,
        );
        HandshakeExit::Restart(delay, live)
    }
}

fn goes_through(r: &Route, host: &ChainId, client: &ClientId) -> bool {
    (r.dst == *host && r.dst_client == *client) || (r.src == *host && r.src_client == *client)
}

fn connection_event(chain: &ChainId, a: &ConnectionAttributes, state: HandshakeState) -> Routed {
    Routed::Handshake {
        object: RelayObject::Connection {
            chain: chain.clone(),
            connection: a.connection_id.clone(),
        },
        state,
    }
}

fn channel_event(chain: &ChainId, a: &ChannelAttributes, state: HandshakeState) -> Routed {
    Routed::Handshake {
        object: RelayObject::Channel {
            chain: chain.clone(),
            port: a.port_id.clone(),
            channel: a.channel_id.clone(),
        },
        state,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
