//! The PacketBuilder's actix shell: runs the pure machine of `state` and performs its effects.

use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler};
use relayd_messages::{
    ActorKind, BuilderExited, ClientId, CorrelationId, Datagram, ErrorKind, Halt, Height, IbcEvent,
    InjectPanic, LifecycleChanged, PacketEventKind, PacketKey, PacketObserved, PacketSeen,
    PacketState as RecordState, Proven, QueryPacketEvents, Refusal, RelayError, RelayObject, Route,
    SubmitTx,
};
use tracing::{debug, info, warn, Instrument, Span};

use super::datagrams;
use crate::chain::endpoint::path;
use crate::chain_link::verification::Check;
use crate::chain_link::ChainLink;
use crate::meter::{Meter, MeteredRecipient};
use crate::packet_builder::proving::{Expect, Prover};
use crate::packet_builder::state::{self, step, Effect, Input, PacketState, Phase};
use crate::proof_height;
use crate::store::{now_ms, PacketRecord, StateStore, Transition};
use crate::supervisor::guard::{injected_panic, install_panic_hook};

/// Attempts of one step against failing nodes before the packet goes to the dead-letter queue.
const MAX_RETRIES: u32 = 30;

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

/// What a job reports back: an input for the machine, or an error to retry or give up on.
type JobResult = Result<Option<Input>, RelayError>;

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
        if let Err(e) = self.env.store.put_packet(&self.record) {
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
        let correlation = self.correlation;
        let packet = self.state.packet.clone();
        let route = self.env.route.clone();
        let (src, dst) = (self.env.src.clone(), self.env.dst.clone());
        let src_revision = route.src.revision_number();
        let dst_revision = route.dst.revision_number();
        let seq = packet.sequence.0;
        match effect {
            Effect::QueryCommitment => {
                let p = path::commitment(&route.src_port, &route.src_channel, seq);
                let expected = datagrams::packet_commitment(&packet);
                let not_before = self.record.send_height;
                let key = self.key.clone();
                self.spawn_job(
                    ctx,
                    effect,
                    async move {
                        let (prover, proven) = Prover::start(
                            correlation,
                            (&src, &dst, &route.dst_client),
                            &p,
                            not_before,
                        )
                        .await?;
                        let proof_height = prover.plan.proof_height;
                        if proven.value.is_empty() {
                            return Ok((proof_height, None));
                        }
                        if proven.value != expected {
                            // The node serves another value than its own events committed to: a lie.
                            let refused = RelayError::new(
                                ErrorKind::Unverified,
                                format!("{key}: the stored commitment does not match the packet seen in events"),
                            );
                            src.refused(Check::Proof, &refused);
                            return Err(refused);
                        }
                        let update = prover
                            .verify(&[Expect {
                                path: &p,
                                proven: &proven,
                                value: Some(&expected),
                            }])
                            .await?;
                        Ok((proof_height, Some((proven, update))))
                    },
                    move |(proof_height, proved), act| {
                        let present = proved.is_some();
                        if let Some((proven, update)) = proved {
                            act.proof = Some(proven);
                            act.prepared =
                                Some((act.env.route.dst_client.clone(), update.target, update.msgs));
                        }
                        Ok(Some(Input::CommitmentProven {
                            proof_height,
                            present,
                        }))
                    },
                );
            }
            Effect::UpdateClientTo { height } => {
                // The update was prepared with the proof, from the same verified header.
                match &self.prepared {
                    Some((_, target, _)) if *target == height && self.proof.is_some() => {
                        self.feed(Input::ClientUpdated { height }, ctx)
                    }
                    _ => self.feed(Input::ProofStale, ctx),
                }
            }
            Effect::SubmitRecv { proof_height } => {
                let Some(proof) = self.proof.as_ref().and_then(|p| p.proof.clone()) else {
                    self.feed(Input::ProofStale, ctx);
                    return;
                };
                let msg = datagrams::recv(&packet, proof, src_revision, proof_height, &dst.signer);
                let update = self.prepared.take();
                let priority = route.priority;
                ctx.spawn(
                    actix::fut::wrap_future::<_, Self>(
                        async move {
                            dst.submit(SubmitTx {
                                correlation,
                                update,
                                datagrams: vec![msg],
                                priority,
                            })
                            .await
                        }
                        .instrument(self.span.clone()),
                    )
                    .map(|result, act, ctx| match result {
                        Ok(report) => {
                            act.tx_unrecorded = Some(report.tx_hash.clone());
                            act.feed(Input::RecvConfirmed, ctx);
                        }
                        Err(e) => {
                            debug!(parent: &act.span, error = %e, "receive failed");
                            act.feed(
                                Input::RecvFailed {
                                    already_relayed: e.kind == ErrorKind::AlreadyRelayed,
                                    // A closed destination is timed out too (on close); the timeout proves
                                    // the channel end's state and picks the kind.
                                    timed_out: matches!(
                                        e.refusal,
                                        Some(Refusal::TimedOut | Refusal::ChannelNotOpen)
                                    ),
                                    retryable: e.is_retryable()
                                        || e.refusal == Some(Refusal::OutOfOrder),
                                    sent: e.kind != ErrorKind::Stopped,
                                    reason: e.message,
                                },
                                ctx,
                            );
                        }
                    }),
                );
            }
            Effect::RelayAck => {
                if self.ack_running {
                    return;
                }
                self.ack_running = true;
                let Some(ack) = self.ack.clone() else {
                    // Its event went by before this builder heard of it (a restart, another relayer's receive):
                    // the destination's transaction index still has it.
                    self.fetch_ack(effect, ctx);
                    return;
                };
                let p = path::ack(&route.dst_port, &route.dst_channel, seq);
                let chain = route.dst.to_string();
                self.spawn_job(
                    ctx,
                    effect,
                    async move {
                        let (prover, proven) =
                            Prover::start(correlation, (&dst, &src, &route.src_client), &p, 0)
                                .await?;
                        if proven.value.is_empty() {
                            return Err(RelayError::new(
                                ErrorKind::Unavailable,
                                format!("{chain}: {p}: acknowledgement not stored yet"),
                            ));
                        }
                        let commitment = datagrams::ack_commitment(&ack);
                        let update = prover
                            .verify(&[Expect {
                                path: &p,
                                proven: &proven,
                                value: Some(&commitment),
                            }])
                            .await?;
                        let proof = proven.proof.clone().unwrap_or_default();
                        let msg = datagrams::acknowledgement(
                            &packet,
                            &ack,
                            proof,
                            dst_revision,
                            update.target,
                            &src.signer,
                        );
                        let report = src
                            .submit(SubmitTx {
                                correlation,
                                update: Some((
                                    route.src_client.clone(),
                                    update.target,
                                    update.msgs,
                                )),
                                datagrams: vec![msg],
                                priority: route.priority,
                            })
                            .await;
                        match report {
                            Ok(r) => Ok(Some(r.tx_hash)),
                            Err(e) if e.kind == ErrorKind::AlreadyRelayed => Ok(None),
                            Err(e) => Err(e),
                        }
                    },
                    |hash, act| {
                        act.ack_running = false;
                        if let Some(h) = hash {
                            act.tx_unrecorded = Some(h);
                        }
                        Ok(Some(Input::AckProcessed))
                    },
                );
            }
            Effect::SubmitTimeout => {
                let (port, channel) = (route.dst_port.clone(), route.dst_channel.clone());
                let deadline =
                    proof_height::Deadline::of_packet(&packet, dst_revision, self.expired_tip);
                self.spawn_job(
                    ctx,
                    effect,
                    async move {
                        // Unreceived: no receipt (unordered), or a next sequence to receive not past the
                        // packet (ordered), read at one height with the destination's channel end, which
                        // decides between a timeout and a timeout-on-close.
                        let unreceived_path = if route.ordered {
                            path::next_sequence_recv(&port, &channel)
                        } else {
                            path::receipt(&port, &channel, seq)
                        };
                        let (prover, unreceived) = Prover::start(
                            correlation,
                            (&dst, &src, &route.src_client),
                            &unreceived_path,
                            0,
                        )
                        .await?;
                        let bad = |e: String| RelayError::new(ErrorKind::Unverified, e);
                        let next_recv = if route.ordered {
                            datagrams::next_sequence(&unreceived.value).map_err(bad)?
                        } else {
                            seq
                        };
                        let received = if route.ordered {
                            next_recv > seq
                        } else {
                            !unreceived.value.is_empty()
                        };
                        if received {
                            // Received after all: its acknowledgement will come through the monitor.
                            return Ok(None);
                        }
                        let channel_path = path::channel(&port, &channel);
                        let end = prover.read(&channel_path).await?;
                        let closed = datagrams::channel_is_closed(&end.value).map_err(bad)?;
                        let mut proofs = vec![Expect {
                            path: &unreceived_path,
                            proven: &unreceived,
                            value: route.ordered.then_some(unreceived.value.as_slice()),
                        }];
                        if closed {
                            proofs.push(Expect {
                                path: &channel_path,
                                proven: &end,
                                value: Some(&end.value),
                            });
                        } else {
                            proof_height::timed_out(&prover.plan, &deadline).map_err(|e| {
                                RelayError::new(
                                    ErrorKind::Unavailable,
                                    format!("{}: {e}", dst.chain),
                                )
                            })?;
                        }
                        let update = prover.verify(&proofs).await?;
                        let msg = datagrams::timeout(
                            &packet,
                            datagrams::Unreceived {
                                proof: unreceived.proof.clone().unwrap_or_default(),
                                next_recv,
                                closed: closed.then(|| end.proof.clone().unwrap_or_default()),
                                height: (dst_revision, update.target),
                            },
                            &src.signer,
                        );
                        src.submit(SubmitTx {
                            correlation,
                            update: Some((route.src_client.clone(), update.target, update.msgs)),
                            datagrams: vec![msg],
                            priority: route.priority,
                        })
                        .await
                        .map(|r| Some(r.tx_hash))
                    },
                    |hash, act| match hash {
                        Some(h) => {
                            act.tx_unrecorded = Some(h);
                            Ok(Some(Input::TimeoutProcessed))
                        }
                        None => Ok(None),
                    },
                );
            }
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

    /// Reads the packet's acknowledgement from the destination's write_acknowledgement event, then relays it.
    fn fetch_ack(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        let route = &self.env.route;
        let query = QueryPacketEvents {
            correlation: self.correlation,
            kind: PacketEventKind::AckWritten,
            port: route.dst_port.to_string(),
            channel: route.dst_channel.to_string(),
            sequences: vec![self.key.sequence.0],
        };
        let (dst, chain) = (self.env.dst.clone(), route.dst.to_string());
        self.spawn_job(
            ctx,
            effect,
            async move {
                let found = dst.query_packet_events(query).await?;
                found
                    .into_iter()
                    .find_map(|e| match e.event {
                        IbcEvent::WriteAcknowledgement { ack, .. } => Some(ack),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        RelayError::new(
                            ErrorKind::Unavailable,
                            format!(
                                "{chain}: the acknowledgement is not in the transaction index yet"
                            ),
                        )
                    })
            },
            |ack, act| {
                act.ack_running = false;
                act.ack = Some(ack);
                act.persist();
                Ok(Some(Input::AckWritten))
            },
        );
    }

    /// Runs `job`, then `then` on the actor; errors are retried with backoff or end the packet.
    fn spawn_job<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        effect: Effect,
        job: impl std::future::Future<Output = Result<T, RelayError>> + 'static,
        then: impl FnOnce(T, &mut Self) -> JobResult + 'static,
    ) {
        let fut = actix::fut::wrap_future::<_, Self>(job.instrument(self.span.clone()));
        ctx.spawn(fut.map(move |result, act, ctx| {
            let outcome = result.and_then(|value| then(value, act));
            match outcome {
                Ok(Some(input)) => act.feed(input, ctx),
                Ok(None) => {}
                Err(e) => act.retry(effect, e, ctx),
            }
        }));
    }

    fn retry(&mut self, effect: Effect, e: RelayError, ctx: &mut Context<Self>) {
        if matches!(effect, Effect::RelayAck) {
            self.ack_running = false;
        }
        self.retries += 1;
        self.record.last_error = Some(e.message.clone());
        if matches!(e.kind, ErrorKind::ClientUnusable | ErrorKind::Rejected)
            || self.retries > MAX_RETRIES
        {
            warn!(parent: &self.span, error = %e, retries = self.retries, "giving up on the packet");
            self.feed(
                Input::GiveUp {
                    reason: e.to_string(),
                },
                ctx,
            );
            return;
        }
        let delay = crate::retry::delay(
            Duration::from_millis(100),
            Duration::from_secs(5),
            self.retries,
        );
        debug!(parent: &self.span, error = %e, ?delay, "retrying");
        ctx.run_later(delay, move |act, ctx| {
            if !act.state.phase.is_final() {
                act.run(effect, ctx);
            }
        });
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
