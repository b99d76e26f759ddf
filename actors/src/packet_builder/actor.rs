//! The PacketBuilder's actix shell: runs the pure machine of `state` and performs its effects.

use actix::{Actor, ActorContext, Context, Handler};
use relayd_messages::{
    ActorKind, BuilderExited, ClientId, CorrelationId, Datagram, Halt, Height, InjectPanic,
    LifecycleChanged, PacketKey, PacketObserved, PacketSeen, PacketState as RecordState, Proven,
    RelayObject, Route,
};
use tracing::{debug, info, warn, Span};

use crate::chain_link::ChainLink;
use crate::meter::{Meter, MeteredRecipient};
use crate::packet_builder::state::{self, step, Effect, Input, PacketState, Phase};
use crate::store::{now_ms, PacketRecord, StateStore, Transition};
use crate::supervisor::guard::{injected_panic, install_panic_hook};

mod jobs;

/// What every builder shares: the chains, the store and where to report.
#[derive(Clone)]
pub struct BuilderEnv {
    /// The source chain's actors.
    pub src: ChainLink,
    /// The destination chain's actors.
    pub dst: ChainLink,
    /// The packet's direction.
    pub route: Route,
    /// The state database.
    pub store: StateStore,
    /// Exits go to the coordinator.
    pub exits: MeteredRecipient<BuilderExited>,
    /// Lifecycle changes go to the coordinator (and from there to subscribers).
    pub lifecycle: MeteredRecipient<LifecycleChanged>,
    /// Delivery attempts before a packet fails.
    pub max_attempts: u32,
}

/// Reports an unclean exit (a panic) of a builder to the coordinator.
pub(crate) struct BuilderGuard {
    pub(crate) object: RelayObject,
    pub(crate) generation: u64,
    pub(crate) exits: MeteredRecipient<BuilderExited>,
    pub(crate) finished: bool,
}

impl Drop for BuilderGuard {
    fn drop(&mut self) {
        if !self.finished {
            // Never dropped for a full mailbox: an unreported exit would strand the packet.
            self.exits.do_send(BuilderExited {
                object: self.object.clone(),
                generation: self.generation,
                finished: false,
            });
        }
    }
}

/// The PacketBuilder actor.
pub struct PacketBuilder {
    key: PacketKey,
    generation: u64,
    correlation: CorrelationId,
    env: BuilderEnv,
    state: PacketState,
    record: PacketRecord,
    first_tip: Option<(u64, u64)>,
    /// The lowest destination height seen with the packet timed out, for timeouts by time (see
    /// `proof_height::Deadline::passed_at`).
    expired_tip: Option<u64>,
    proof: Option<Proven>,
    prepared: Option<(ClientId, u64, Vec<Datagram>)>,
    ack: Option<Vec<u8>>,
    ack_running: bool,
    retries: u32,
    span: Span,
    guard: BuilderGuard,
    /// The transaction that caused the next state change, attached to it in the record and the event.
    tx_unrecorded: Option<String>,
    meter: Meter,
}

fn phase_from_record(state: RecordState) -> Phase {
    match state {
        RecordState::Acknowledged => Phase::Acknowledged,
        RecordState::TimedOut => Phase::TimedOut,
        RecordState::Failed => Phase::Failed("failed before".into()),
        // Earlier phases are re-proven from the chain: every step is idempotent on chain.
        _ => Phase::Detected,
    }
}

impl PacketBuilder {
    /// A builder resuming `record` (new or restored from sled) as incarnation `generation`, starting from the
    /// destination tip `tip` (height, time) if known; its handlers count on `meter`.
    pub fn new(
        record: PacketRecord,
        generation: u64,
        tip: Option<(u64, u64)>,
        env: BuilderEnv,
        meter: Meter,
    ) -> Self {
        install_panic_hook();
        let key = record.key.clone();
        let mut state = PacketState::detected(record.packet.clone(), env.max_attempts);
        state.phase = phase_from_record(record.state);
        state.attempts = record.attempts;
        let object = RelayObject::Packet(key.clone());
        let span = tracing::info_span!("packet_builder", packet = %key, correlation = %record.correlation, generation);
        Self {
            correlation: record.correlation,
            ack: record.ack.clone(),
            guard: BuilderGuard {
                object,
                generation,
                exits: env.exits.clone(),
                finished: false,
            },
            key,
            generation,
            env,
            state,
            record,
            first_tip: tip,
            expired_tip: None,
            proof: None,
            prepared: None,
            ack_running: false,
            retries: 0,
            span,
            tx_unrecorded: None,
            meter,
        }
    }

    fn feed(&mut self, input: Input, ctx: &mut Context<Self>) {
        let before = self.state.phase.clone();
        let (state, effects) = step(self.state.clone(), input);
        self.state = state;
        if self.state.phase != before {
            self.retries = 0;
            self.transition(None, None);
        } else if let Some(h) = self.tx_unrecorded.take() {
            // The change this transaction caused was already seen through the chain's events (which may have
            // named the same transaction).
            if !self.record.tx_hashes.contains(&h) {
                self.record.tx_hashes.push(h);
            }
        }
        for effect in effects {
            self.run(effect, ctx);
        }
    }

    /// Writes the lifecycle record, never dropping ack bytes the coordinator stored from an event this
    /// builder has not heard yet.
    fn persist(&mut self) {
        if self.ack.is_none() {
            if let Ok(Some(stored)) = self.env.store.packet(&self.key) {
                self.ack = stored.ack;
            }
        }
        self.record.ack = self.ack.clone();
        self.record.updated_ms = now_ms();
        // Gathered with other builders' changes into one write (see `store::soon`).
        if let Err(e) = self.env.store.put_packet_soon(&self.record) {
            warn!(parent: &self.span, error = %e, "cannot write the packet's lifecycle record");
        }
    }

    fn transition(&mut self, tx_hash: Option<String>, error: Option<String>) {
        let tx_hash = tx_hash.or_else(|| self.tx_unrecorded.take());
        let state = self.state.phase.state();
        let name = state.as_str().to_owned();
        let error = error.or_else(|| match &self.state.phase {
            Phase::Failed(why) => Some(why.clone()),
            _ => None,
        });
        let now = now_ms();
        self.record.state = state;
        self.record.attempts = self.state.attempts;
        if let Some(h) = &tx_hash {
            self.record.tx_hashes.push(h.clone());
        }
        if error.is_some() {
            self.record.last_error = error.clone();
        }
        self.record.history.push(Transition {
            state,
            at_ms: now,
            tx_hash: tx_hash.clone(),
            error: error.clone(),
        });
        self.persist();
        debug!(parent: &self.span, state = %name, "packet state changed");
        let change = LifecycleChanged {
            object: RelayObject::Packet(self.key.clone()),
            generation: self.generation,
            correlation: self.correlation,
            state: name,
            tx_hash,
            error,
            is_final: self.state.phase.is_final(),
        };
        if let Err(actix::dev::SendError::Full(change)) = self.env.lifecycle.try_send(change) {
            // Lifecycle events are few per packet; one must not be lost to a momentarily full mailbox.
            self.env.lifecycle.do_send(change);
        }
    }

    fn run(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::QueryCommitment => self.query_commitment(effect, ctx),
            Effect::UpdateClientTo { height } => {
                // The update was prepared with the proof, from the same verified header.
                match &self.prepared {
                    Some((_, target, _)) if *target == height && self.proof.is_some() => {
                        self.feed(Input::ClientUpdated { height }, ctx)
                    }
                    _ => self.feed(Input::ProofStale, ctx),
                }
            }
            Effect::SubmitRecv { proof_height } => self.submit_recv(proof_height, ctx),
            Effect::RelayAck => self.relay_ack(effect, ctx),
            Effect::SubmitTimeout => self.submit_timeout(effect, ctx),
            Effect::Finished(phase) => {
                info!(parent: &self.span, state = phase.name(), "packet finished");
                if let Phase::Failed(_) = phase {
                    if let Err(e) = self.env.store.put_dead_letter(&self.record) {
                        warn!(parent: &self.span, error = %e, "cannot write the dead-letter record");
                    }
                }
                self.guard.finished = true;
                let _ = self
                    .env
                    .exits
                    .try_send(BuilderExited {
                        object: RelayObject::Packet(self.key.clone()),
                        generation: self.generation,
                        finished: true,
                    })
                    .map_err(|e| {
                        if let actix::dev::SendError::Full(m) = e {
                            self.env.exits.do_send(m);
                        }
                    });
                ctx.stop();
            }
        }
    }
}

impl Actor for PacketBuilder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        if self.state.phase.is_final() {
            self.feed(Input::AckProcessed, ctx);
            return;
        }
        if let Some(ack) = self.ack.clone() {
            self.feed_seen(PacketSeen::AckWritten { ack }, ctx);
        } else if let Some((height, time_ns)) = self.first_tip {
            self.feed_seen(PacketSeen::DestinationTip { height, time_ns }, ctx);
        } else {
            self.feed(
                Input::DestinationTip {
                    height: Height::new(0, 0),
                    time_ns: 0,
                },
                ctx,
            );
        }
    }
}

impl PacketBuilder {
    fn feed_seen(&mut self, seen: PacketSeen, ctx: &mut Context<Self>) {
        let input = match seen {
            PacketSeen::DestinationTip { height, time_ns } => {
                let height = Height::new(self.env.route.dst.revision_number(), height);
                if self.expired_tip.is_none() && state::expired(&self.state.packet, height, time_ns)
                {
                    self.expired_tip = Some(height.revision_height);
                }
                Input::DestinationTip { height, time_ns }
            }
            PacketSeen::AckWritten { ack } => {
                self.ack = Some(ack);
                Input::AckWritten
            }
            // The transaction that finished the packet, unless relayd's own reply named it first.
            PacketSeen::AckProcessed { tx_hash } => {
                self.tx_unrecorded = self.tx_unrecorded.take().or(tx_hash);
                Input::AckProcessed
            }
            PacketSeen::TimeoutProcessed { tx_hash } => {
                self.tx_unrecorded = self.tx_unrecorded.take().or(tx_hash);
                Input::TimeoutProcessed
            }
            PacketSeen::DestinationClosed => Input::DestinationClosed,
        };
        self.feed(input, ctx);
    }
}

impl Handler<PacketObserved> for PacketBuilder {
    type Result = ();

    fn handle(&mut self, msg: PacketObserved, ctx: &mut Self::Context) {
        self.meter.took();
        self.feed_seen(msg.seen, ctx);
    }
}

impl Handler<Halt> for PacketBuilder {
    type Result = ();

    fn handle(&mut self, msg: Halt, ctx: &mut Self::Context) {
        self.meter.took();
        // Stopping unfinished: the coordinator keeps the record and does not restart a builder on a halted
        // path. Anything in flight is idempotent on chain, so resuming later re-proves from the chain.
        info!(parent: &self.span, reason = %msg.reason, "path halted; stopping");
        self.record.last_error = Some(msg.reason);
        self.persist();
        ctx.stop();
    }
}

impl Handler<InjectPanic> for PacketBuilder {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        self.meter.took();
        injected_panic(ActorKind::PacketBuilder);
    }
}
