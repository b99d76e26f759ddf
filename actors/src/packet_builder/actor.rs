//! The PacketBuilder's actix shell: runs the pure machine of `state` and performs its effects.

use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler};
use relayd_messages::{
    ActorKind, BuilderExited, ClientId, CorrelationId, Datagram, ErrorKind, Halt, Height, IbcEvent,
    InjectPanic, LifecycleChanged, PacketEventKind, PacketKey, PacketObserved, PacketSeen,
    PacketState as RecordState, PrepareClientUpdate, Proven, QueryClient, QueryPacketEvents,
    QueryProof, Refusal, RelayError, RelayObject, Route, SubmitTx,
};
use tracing::{debug, info, warn, Instrument, Span};

use super::datagrams;
use crate::chain::endpoint::path;
use crate::chain_link::ChainLink;
use crate::client_keeper::state as client;
use crate::meter::{Meter, MeteredRecipient};
use crate::packet_builder::state::{step, Effect, Input, PacketState, Phase};
use crate::store::{now_ms, now_ns, PacketRecord, StateStore, Transition};
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
                self.spawn_job(ctx, effect, async move {
                    src.query_proof(QueryProof { correlation, path: p, height: None }).await
                }, move |proven, act| {
                    if proven.height < act.record.send_height {
                        return Err(RelayError::new(ErrorKind::Unavailable, format!(
                            "{}: the node is at {}, before the send at {}", act.key, proven.height, act.record.send_height)));
                    }
                    if proven.value.is_empty() {
                        return Ok(Some(Input::CommitmentProven { query_height: proven.height, present: false }));
                    }
                    if proven.value != expected {
                        return Err(RelayError::new(ErrorKind::Unverified, format!(
                            "{}: the stored commitment does not match the packet seen in events", act.key)));
                    }
                    let h = proven.height;
                    act.proof = Some(proven);
                    Ok(Some(Input::CommitmentProven { query_height: h, present: true }))
                });
            }
            Effect::UpdateClientTo { height } => {
                let Some(proven) = self.proof.clone() else {
                    self.feed(Input::ProofStale, ctx);
                    return;
                };
                let client_id = route.dst_client.clone();
                let signer = dst.signer.clone();
                let prefix = src.prefix.clone();
                let expected = datagrams::packet_commitment(&packet);
                let p = path::commitment(&route.src_port, &route.src_channel, seq);
                let chain = route.src.to_string();
                self.spawn_job(
                    ctx,
                    effect,
                    async move {
                        let client = dst
                            .query_client(QueryClient {
                                correlation,
                                client_id: client_id.clone(),
                            })
                            .await?;
                        if client.frozen {
                            return Err(RelayError::new(
                                ErrorKind::ClientUnusable,
                                format!("{client_id} on {} is frozen", dst.chain),
                            ));
                        }
                        if client.latest_height > height {
                            return Ok(None);
                        }
                        let update = src
                            .prepare_update(PrepareClientUpdate {
                                correlation,
                                client_id: client_id.clone(),
                                trusted_height: client.latest_height,
                                anchor: client.anchor.clone(),
                                target: height,
                                signer,
                            })
                            .await?;
                        datagrams::check(datagrams::Check {
                            chain: &chain,
                            prefix: &prefix,
                            path: &p,
                            proven: &proven,
                            app_hash: &update.app_hash,
                            specs: &client.proof_specs,
                            expect: Some(&expected),
                        })?;
                        Ok(Some((client_id, update)))
                    },
                    move |prepared, act| match prepared {
                        None => Ok(Some(Input::ProofStale)),
                        Some((client, update)) => {
                            act.prepared = Some((client, update.target, update.msgs));
                            Ok(Some(Input::ClientUpdated {
                                height: update.target,
                            }))
                        }
                    },
                );
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
                        let proven = dst
                            .query_proof(QueryProof {
                                correlation,
                                path: p.clone(),
                                height: None,
                            })
                            .await?;
                        if proven.value.is_empty() {
                            return Err(RelayError::new(
                                ErrorKind::Unavailable,
                                format!("{chain}: {p}: acknowledgement not stored yet"),
                            ));
                        }
                        let target = proven.height + 1;
                        let commitment = datagrams::ack_commitment(&ack);
                        let update = verified_update(
                            correlation,
                            (&dst, &src, &route.src_client),
                            &[Expect {
                                path: &p,
                                proven: &proven,
                                value: Some(&commitment),
                            }],
                        )
                        .await?;
                        let proof = proven.proof.clone().unwrap_or_default();
                        let msg = datagrams::acknowledgement(
                            &packet,
                            &ack,
                            proof,
                            dst_revision,
                            target,
                            &src.signer,
                        );
                        let report = src
                            .submit(SubmitTx {
                                correlation,
                                update: Some((route.src_client.clone(), target, update.msgs)),
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
                        let unreceived = dst
                            .query_proof(QueryProof {
                                correlation,
                                path: unreceived_path.clone(),
                                height: None,
                            })
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
                        let end = dst
                            .query_proof(QueryProof {
                                correlation,
                                path: channel_path.clone(),
                                height: Some(unreceived.height),
                            })
                            .await?;
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
                        }
                        let update =
                            verified_update(correlation, (&dst, &src, &route.src_client), &proofs)
                                .await?;
                        let target = unreceived.height + 1;
                        let msg = datagrams::timeout(
                            &packet,
                            datagrams::Unreceived {
                                proof: unreceived.proof.clone().unwrap_or_default(),
                                next_recv,
                                closed: closed.then(|| end.proof.clone().unwrap_or_default()),
                                height: (dst_revision, target),
                            },
                            &src.signer,
                        );
                        src.submit(SubmitTx {
                            correlation,
                            update: Some((route.src_client.clone(), target, update.msgs)),
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

/// ADR-002's proof-height rule for a value `proven` read on `from` at height h, to be judged on `to` by its
/// client `client_id` of `from`: the client must be usable and not past h + 1, relayd's light client prepares the
/// update to h + 1, and the proof is checked against that verified app hash (`expect`: the value, or `None` for
/// absence) before anything is sent.
async fn verified_update(
    correlation: CorrelationId,
    (from, to, client_id): (&ChainLink, &ChainLink, &ClientId),
    proofs: &[Expect<'_>],
) -> Result<relayd_messages::ClientUpdate, RelayError> {
    let Some(first) = proofs.first() else {
        return Err(RelayError::new(ErrorKind::Rejected, "no proof to forward"));
    };
    let target = first.proven.height + 1;
    if proofs
        .iter()
        .any(|e| e.proven.height != first.proven.height)
    {
        return Err(RelayError::new(
            ErrorKind::Unavailable,
            "proofs read at different heights; reading again",
        ));
    }
    let client = to
        .query_client(QueryClient {
            correlation,
            client_id: client_id.clone(),
        })
        .await?;
    if let Some(why) = client::unusable(&client::ClientView::of(&client), now_ns()) {
        return Err(RelayError::new(
            ErrorKind::ClientUnusable,
            format!("{client_id} on {} {why}", to.chain),
        ));
    }
    if client.latest_height > target {
        return Err(RelayError::new(
            ErrorKind::Unavailable,
            "client moved past the proof height; proving again",
        ));
    }
    let update = from
        .prepare_update(PrepareClientUpdate {
            correlation,
            client_id: client_id.clone(),
            trusted_height: client.latest_height,
            anchor: client.anchor.clone(),
            target,
            signer: to.signer.clone(),
        })
        .await?;
    for e in proofs {
        datagrams::check(datagrams::Check {
            chain: from.chain.as_str(),
            prefix: &from.prefix,
            path: e.path,
            proven: e.proven,
            app_hash: &update.app_hash,
            specs: &client.proof_specs,
            expect: e.value,
        })?;
    }
    Ok(update)
}

/// A value read with a proof that must verify before the datagram carrying it is forwarded.
struct Expect<'a> {
    /// The ICS-24 path read.
    path: &'a str,
    /// What was read.
    proven: &'a Proven,
    /// The value it must hold, or `None` for absence.
    value: Option<&'a [u8]>,
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
            PacketSeen::DestinationTip { height, time_ns } => Input::DestinationTip {
                height: Height::new(self.env.route.dst.revision_number(), height),
                time_ns,
            },
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
