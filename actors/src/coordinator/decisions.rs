//! What the coordinator's pure core (`state`) decides, as data: the actor matches on these and performs them.

use std::time::Duration;

use relayd_messages::{
    ChainId, CorrelationId, HandshakeState, Packet, PacketKey, PacketSeen, RelayObject, Route,
};

use crate::handshake_builder::Handshake;
use crate::store::PacketRecord;

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

/// A running packet builder.
#[derive(Debug, Clone)]
pub struct LiveBuilder<H> {
    /// How the actor reaches it.
    pub handle: H,
    /// Its incarnation: an exit report of another generation is stale.
    pub generation: u64,
    /// Restarts of this packet's builder so far.
    pub restarts: u32,
    /// When it started, ms since the epoch.
    pub started_ms: u64,
    /// The packet's timeouts (data left out): a destination tip goes to the builder only once it has passed them.
    pub(super) timeout: Packet,
}

/// A running handshake builder, keyed by the handshake's initiating end.
#[derive(Debug, Clone)]
pub struct LiveHandshake<K> {
    /// How the actor reaches it.
    pub handle: K,
    /// Its incarnation.
    pub generation: u64,
    /// The highest handshake state it was started for.
    pub state: HandshakeState,
    /// Both ends.
    pub handshake: Handshake,
    /// The correlation id of the work.
    pub correlation: CorrelationId,
    /// Restarts so far.
    pub restarts: u32,
}

/// What an observed IBC event asks of the coordinator.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    /// A packet of a relayed route was sent and has no builder: start one from its record (or a new one).
    Sent {
        /// Its route's destination (the route itself is looked up again only for a builder that starts).
        dst: ChainId,
        /// The packet.
        key: PacketKey,
    },
    /// The destination wrote an acknowledgement for a packet of a relayed route.
    AckWritten {
        /// Its route's destination.
        dst: ChainId,
        /// The packet.
        key: PacketKey,
        /// Whether its builder runs (then it is told; otherwise one is started from the record).
        live: bool,
    },
    /// The source finished the packet (ack or timeout processed), whoever relayed it.
    Finished {
        /// The packet.
        key: PacketKey,
        /// What the source did.
        seen: PacketSeen,
        /// Whether its builder runs (then it is told; otherwise its record is closed).
        live: bool,
    },
    /// A handshake moved: at most one builder per handshake, for the highest state seen.
    Handshake {
        /// The end the event names.
        object: RelayObject,
        /// The state it reached.
        state: HandshakeState,
    },
}

/// Whether a packet's builder may start now.
// Moved once per decision, never stored: boxing would only add an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Start {
    /// Not this coordinator's packet (no route, or out of its scope), or its builder already runs.
    Skip,
    /// A client its route goes through is unusable: the record (given back) stays, saying why.
    Halted(PacketRecord, String),
    /// An ordered lane is busy with an earlier packet: it waits its turn (held by the lane).
    Queued,
    /// The window of running builders is full: it waits for a slot by key, its record in the store (see
    /// [`super::state::CoordinatorState::admit`]).
    Deferred,
    /// Start it.
    Go(Launch),
}

/// A builder to start.
#[derive(Debug)]
pub struct Launch {
    /// The packet's record.
    pub record: PacketRecord,
    /// Restarts so far.
    pub restarts: u32,
    /// Its route.
    pub route: Route,
    /// Its generation.
    pub generation: u64,
    /// The destination's last tip (height, time) the coordinator saw.
    pub tip: Option<(u64, u64)>,
    /// Whether the destination channel end is already seen closing (the builder is told at once).
    pub destination_closed: bool,
}

/// What a packet builder's exit means.
// Moved once per decision, never stored.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Exit {
    /// No such builder runs, or the report is from an earlier generation.
    Stale,
    /// Finished (or its path is halted): it holds its lane no longer; the next waiting packet, if any, starts.
    Done(Option<(PacketRecord, u32)>),
    /// Failed: restart it from its record after `delay`, with `restarts` restarts.
    Restart {
        /// The backoff.
        delay: Duration,
        /// Restarts so far (the restarted builder has one more).
        restarts: u32,
    },
}

/// What a handshake event does to the builders.
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeVerdict {
    /// At or below the state the running builder works on: nothing.
    Discard,
    /// Start a builder (none runs).
    Start,
    /// A higher state than the running builder's: it is told to stop and a new one starts.
    Supersede,
}

/// What a handshake builder's exit means.
#[derive(Debug)]
pub enum HandshakeExit<K> {
    /// No such builder runs, or the report is from an earlier generation.
    Stale,
    /// Done.
    Finished,
    /// Failed too often: left to the operator.
    GiveUp(u32),
    /// Failed: restart it after `delay`.
    Restart(Duration, LiveHandshake<K>),
}
