//! The RelayCoordinator's decisions, pure: which route an observed event concerns, whether a packet's builder may
//! start (scope, halted clients, ordered lanes), which builders a destination tip or a channel close concerns,
//! what a builder's exit means (stale, done, restart after how long), and which handshake event starts or
//! supersedes a builder. No actix, no sled, no clock: the actor passes the time in and performs what it is told.
//!
//! Generic over the handles of the live builders (`H` for packet builders, `K` for handshake builders), so the
//! rules are tested with plain numbers standing in for actor addresses.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use relayd_messages::{
    ChainId, ClearPackets, ClientId, Height, Packet, PacketKey, PacketState, RelayObject, Route,
};

use super::caps::{self, Ics20Caps, Skip};
use super::decisions::{Exit, Launch, LiveBuilder, LiveHandshake, Scope, Start};
use super::window::{Admit, SequenceSet, Window};
use crate::packet_builder::state::expired;
use crate::retry;
use crate::routes::Routes;
use crate::store::PacketRecord;

mod halts;
mod handshakes;
mod lanes;
mod routing;

pub use handshakes::MAX_HANDSHAKE_RESTARTS;
use lanes::{lane_of, Lane, OrderedLane};

/// Whether a source channel (chain, port, channel) is relayed.
pub type ChannelFilter = Box<dyn Fn(&ChainId, &str, &str) -> bool>;

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
        self.window.set_max(max);
    }

    /// The bound on running packet builders.
    pub fn max_builders(&self) -> usize {
        self.window.max()
    }

    /// Packets waiting for a builder slot.
    pub fn waiting_builders(&self) -> usize {
        self.window.waiting()
    }

    /// The next waiting packet to start, if a slot is free: the actor reads its record from the store, or makes
    /// it from its intake entry, and starts it (see [`Self::start`]).
    pub fn admit(&mut self) -> Option<Admit> {
        self.window.next(self.builders.len())
    }

    /// `key`, just observed and without a record, waits in the intake log; false if it waits there already.
    pub fn log(&mut self, key: &PacketKey) -> bool {
        self.window.log(key)
    }

    /// `key` no longer waits in the intake log (its record is made another way, or its log copy was reached);
    /// false if it was not waiting there.
    pub fn unlog(&mut self, key: &PacketKey) -> bool {
        self.window.unlog(key)
    }

    /// Intake entry `entry` of `count` logged packets waits for builder slots behind what waits already.
    pub fn queue_entry(&mut self, entry: u64, count: u32) {
        self.window.queue_entry(entry, count);
    }

    /// The packets waiting in the intake log, per source lane (chain, port, channel, packets, lowest sequence).
    pub fn logged_lanes(&self) -> Vec<(String, String, String, usize, u64)> {
        let mut lanes: Vec<_> = self
            .window
            .logged()
            .lanes()
            .map(|(chain, port, channel, set)| {
                let lowest = set.ranges().next().map_or(0, |(start, _)| start);
                (
                    chain.to_string(),
                    port.to_string(),
                    channel.to_string(),
                    set.len(),
                    lowest,
                )
            })
            .collect();
        lanes.sort();
        lanes
    }

    /// The sequences of a source lane waiting in the intake log (clearing counts them as known).
    pub fn logged_of(&self, chain: &ChainId, port: &str, channel: &str) -> SequenceSet {
        self.window.logged().of_lane(chain, port, channel)
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

    /// Whether `record`'s builder may start now, and if so with which generation. A packet of an ordered route
    /// that is still to be received waits while an earlier one holds the lane; any packet waits while the window
    /// of running builders is full. Call [`Self::launched`] once
    /// the builder runs.
    pub fn start(&mut self, record: PacketRecord, restarts: u32) -> Start {
        if !self.in_scope(&record.key) || self.builders.contains_key(&record.key) {
            return Start::Skip;
        }
        let Some(route) = self.routes.of(&record.key) else {
            return Start::Skip;
        };
        if let Some(reason) = self.halt_of(route) {
            let reason = reason.clone();
            return Start::Halted(record, reason);
        }
        let ordered = route.ordered;
        // Only receives are ordered: a packet already received (its ack in hand or its record past
        // `submitted`) needs no turn.
        let receiving = matches!(
            record.state,
            PacketState::Detected | PacketState::ProofGenerated | PacketState::Submitted
        ) && record.ack.is_none();
        if ordered && receiving {
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
        // The route is cloned only for a builder that starts.
        let Some(route) = self.routes.of(&record.key).cloned() else {
            return Start::Skip;
        };
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
}

#[cfg(test)]
mod tests;
