//! The PacketBuilder's chain-side jobs: the effects that read, prove and submit (the commitment, the receive,
//! the acknowledgement, the timeout) run here off the actor, and their outcome is fed back to the machine;
//! failures are retried with backoff or end the packet.

use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context};
use relayd_messages::{
    ErrorKind, IbcEvent, PacketEventKind, QueryPacketEvents, Refusal, RelayError, SubmitTx,
};
use tracing::{debug, warn, Instrument};

use super::PacketBuilder;
use crate::chain::endpoint::path;
use crate::chain_link::verification::Check;
use crate::packet_builder::datagrams;
use crate::packet_builder::proving::{Expect, Prover};
use crate::packet_builder::state::{Effect, Input};
use crate::proof_height;

/// Attempts of one step against failing nodes before the packet goes to the dead-letter queue.
const MAX_RETRIES: u32 = 30;

/// What a job reports back: an input for the machine, or an error to retry or give up on.
type JobResult = Result<Option<Input>, RelayError>;

impl PacketBuilder {
    /// Proves the packet's commitment on the source, with the destination's client update from the same header.
    pub(super) fn query_commitment(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        let correlation = self.correlation;
        let packet = self.state.packet.clone();
        let route = self.env.route.clone();
        let (src, dst) = (self.env.src.clone(), self.env.dst.clone());
        let seq = packet.sequence.0;
        let p = path::commitment(&route.src_port, &route.src_channel, seq);
        let expected = datagrams::packet_commitment(&packet);
        let not_before = self.record.send_height;
        let key = self.key.clone();
        self.spawn_job(
            ctx,
            effect,
            async move {
                let (prover, proven) =
                    Prover::start(correlation, (&src, &dst, &route.dst_client), &p, not_before)
                        .await?;
                let proof_height = prover.plan.proof_height;
                if proven.value.is_empty() {
                    return Ok((proof_height, None));
                }
                if proven.value != expected {
                    // The node serves another value than its own events committed to: a lie.
                    let refused = RelayError::new(
                        ErrorKind::Unverified,
                        format!(
                            "{key}: the stored commitment does not match the packet seen in events"
                        ),
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

    /// Submits the receive with the proof and update prepared for it.
    pub(super) fn submit_recv(&mut self, proof_height: u64, ctx: &mut Context<Self>) {
        let correlation = self.correlation;
        let packet = self.state.packet.clone();
        let route = self.env.route.clone();
        let dst = self.env.dst.clone();
        let src_revision = route.src.revision_number();
        let Some(proof) = self.proof.as_ref().and_then(|p| p.proof.clone()) else {
            self.feed(Input::ProofStale, ctx);
            return;
        };
        let msg = datagrams::recv(&packet, proof, src_revision, proof_height, &dst.signer);
        let update = self.prepared.take();
        let priority = route.priority;
        let ordered = route.dst_ordered_end();
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(
                async move {
                    // Held until the builder has the outcome: a graceful stop waits for it.
                    let _outcome = dst.outcomes.awaited();
                    dst.submit(SubmitTx {
                        correlation,
                        update,
                        datagrams: vec![msg],
                        priority,
                        ordered_channel: ordered,
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
                            retryable: e.is_retryable() || e.refusal == Some(Refusal::OutOfOrder),
                            sent: e.kind != ErrorKind::Stopped,
                            reason: e.message,
                        },
                        ctx,
                    );
                }
            }),
        );
    }

    /// Proves the acknowledgement on the destination and submits it to the source.
    pub(super) fn relay_ack(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        let correlation = self.correlation;
        let packet = self.state.packet.clone();
        let route = self.env.route.clone();
        let (src, dst) = (self.env.src.clone(), self.env.dst.clone());
        let dst_revision = route.dst.revision_number();
        let seq = packet.sequence.0;
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
                    Prover::start(correlation, (&dst, &src, &route.src_client), &p, 0).await?;
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
                let _outcome = src.outcomes.awaited();
                let report = src
                    .submit(SubmitTx {
                        correlation,
                        update: Some((route.src_client.clone(), update.target, update.msgs)),
                        datagrams: vec![msg],
                        priority: route.priority,
                        ordered_channel: route.src_ordered_end(),
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

    /// Proves the packet unreceived on the destination (and its channel end closed, if it is) and submits the
    /// timeout to the source.
    pub(super) fn submit_timeout(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        let correlation = self.correlation;
        let packet = self.state.packet.clone();
        let route = self.env.route.clone();
        let (src, dst) = (self.env.src.clone(), self.env.dst.clone());
        let dst_revision = route.dst.revision_number();
        let seq = packet.sequence.0;
        let (port, channel) = (route.dst_port.clone(), route.dst_channel.clone());
        let deadline = proof_height::Deadline::of_packet(&packet, dst_revision, self.expired_tip);
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
                        RelayError::new(ErrorKind::Unavailable, format!("{}: {e}", dst.chain))
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
                let _outcome = src.outcomes.awaited();
                src.submit(SubmitTx {
                    correlation,
                    update: Some((route.src_client.clone(), update.target, update.msgs)),
                    datagrams: vec![msg],
                    priority: route.priority,
                    ordered_channel: route.src_ordered_end(),
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

    pub(super) fn retry(&mut self, effect: Effect, e: RelayError, ctx: &mut Context<Self>) {
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
