//! The coordinator's observed events: each block's events are routed to the builders they concern (a send
//! starts one, an ack or a packet's end goes to the live one or updates its record), then the block's tip goes
//! to the builders it times out, periodic clearing runs, and the block's checkpoint is written. The records the
//! block changes and the intake entry of its new packets are written together with its checkpoint, in one
//! transaction (see `store::batch`, `store::intake`).

use actix::{AsyncContext, Context, Handler};
use relayd_messages::{
    BlockObserved, ChainAdvanced, ChainId, ChannelAttributes, CorrelationId, IbcEvent,
    ObservedEvent, Packet, PacketKey, PacketObserved, PacketSeen, PacketState,
};
use tracing::{info, warn};

use super::actor::must_deliver;
use super::decisions::Routed;
use super::RelayCoordinator;
use crate::store::{now_ms, PacketBatch, PacketRecord, Transition};

impl RelayCoordinator {
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

    fn new_record(
        &self,
        key: PacketKey,
        dst: ChainId,
        packet: Packet,
        height: u64,
        state: PacketState,
        ack: Option<Vec<u8>>,
    ) -> PacketRecord {
        let now = now_ms();
        PacketRecord {
            key,
            dst_chain: dst.into(),
            packet,
            correlation: CorrelationId::fresh(),
            state,
            send_height: height,
            ack,
            tx_hashes: Vec::new(),
            attempts: 0,
            last_error: None,
            created_ms: now,
            updated_ms: now,
            history: vec![Transition {
                state,
                at_ms: now,
                tx_hash: None,
                error: None,
            }],
            skip_reason: None,
        }
    }

    /// Performs what an observed event asks (see [`CoordinatorState::route`]).
    pub(super) fn observe(
        &mut self,
        chain: &ChainId,
        observed: ObservedEvent,
        ctx: &mut Context<Self>,
    ) {
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
            (Routed::Sent { dst, key }, IbcEvent::SendPacket(packet)) => {
                self.packet_sent(key, dst, packet, observed.height)
            }
            (
                Routed::AckWritten { dst, key, live },
                IbcEvent::WriteAcknowledgement { packet, ack },
            ) => self.ack_written(key, dst, packet, ack, observed.height, live),
            (
                Routed::Finished { key, seen, live },
                IbcEvent::AcknowledgePacket(p) | IbcEvent::TimeoutPacket(p),
            ) => self.packet_closed(key, seen, live, Some(p)),
            (Routed::Finished { key, seen, live }, _) => self.packet_closed(key, seen, live, None),
            (Routed::Handshake { object, state }, _) => self.handshake_event(object, state, 0, ctx),
            _ => {}
        }
    }

    /// A packet was sent (or found pending) and has no builder. Within a block it waits in the block's intake
    /// entry, its record made when the window admits it; otherwise its record is made now.
    fn packet_sent(&mut self, key: PacketKey, dst: ChainId, packet: Packet, height: u64) {
        if let Some(intake) = &mut self.intake {
            // A packet logged already (the same send seen twice) waits once.
            if self.state.log(&key) {
                intake.push((dst, packet));
            }
            return;
        }
        self.state.unlog(&key);
        self.relay_sent(key, dst, packet, height);
    }

    /// Makes a sent packet's record (unless it has one) and starts its builder unless the packet is done.
    pub(super) fn relay_sent(&mut self, key: PacketKey, dst: ChainId, packet: Packet, height: u64) {
        let record = match self.record(&key) {
            Ok(Some(r)) if r.is_final() => return,
            Ok(Some(r)) => r,
            Ok(None) => {
                let skip = self.state.skip_of(&packet);
                let r = self.new_record(key, dst, packet, height, PacketState::Detected, None);
                if let Some(skip) = skip {
                    return self.skip(r, skip);
                }
                self.put(&r);
                r
            }
            Err(e) => {
                warn!(packet = %key, error = %e, "unreadable lifecycle record; relaying afresh");
                let skip = self.state.skip_of(&packet);
                let r = self.new_record(key, dst, packet, height, PacketState::Detected, None);
                if let Some(skip) = skip {
                    return self.skip(r, skip);
                }
                r
            }
        };
        self.spawn(record, 0);
    }

    /// The destination wrote an acknowledgement for a packet of one of our routes.
    fn ack_written(
        &mut self,
        key: PacketKey,
        dst: ChainId,
        packet: Packet,
        ack: Vec<u8>,
        height: u64,
        live: bool,
    ) {
        if live {
            // The ack bytes exist only in this event: persist them before the checkpoint passes this block, so
            // a restart can relay the ack even if the builder never gets to write them.
            if let Ok(Some(mut r)) = self.record(&key) {
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
        // Its record is made here, with the ack: a copy waiting in the intake log is passed over.
        self.state.unlog(&key);
        let record = match self.record(&key) {
            Ok(Some(r)) if r.is_final() => return,
            Ok(Some(mut r)) => {
                r.ack = Some(ack);
                r
            }
            // Another relayer delivered it; its ack is ours to relay all the same (the event carries the data).
            _ => self.new_record(key, dst, packet, height, PacketState::Confirmed, Some(ack)),
        };
        self.put(&record);
        self.spawn(record, 0);
    }

    /// The source finished the packet (ack or timeout processed), whoever relayed it. `packet` is the packet as
    /// the finishing event names it.
    fn packet_closed(
        &mut self,
        key: PacketKey,
        seen: PacketSeen,
        live: bool,
        packet: Option<Packet>,
    ) {
        if live {
            if let Some(live) = self.state.builder(&key) {
                must_deliver(&live.handle, PacketObserved { key, seen });
            }
            return;
        }
        let (state, tx_hash) = match seen {
            PacketSeen::AckProcessed { tx_hash } => (PacketState::Acknowledged, tx_hash),
            PacketSeen::TimeoutProcessed { tx_hash } => (PacketState::TimedOut, tx_hash),
            _ => return,
        };
        // A packet still waiting in the intake log has no record yet: it gets one, finished, and its log copy
        // is passed over.
        let logged = self.state.unlog(&key);
        let record = match self.record(&key) {
            Ok(Some(r)) => Some(r),
            _ if logged => {
                let dst = self.state.routes().of(&key).map(|r| r.dst.clone());
                // The send's height is in the entry, not read here: 0 says it is not known (a finished
                // record never needs it).
                dst.zip(packet).map(|(dst, packet)| {
                    self.new_record(key, dst, packet, 0, PacketState::Detected, None)
                })
            }
            _ => None,
        };
        if let Some(mut r) = record.filter(|r| !r.is_final()) {
            r.state = state;
            r.updated_ms = now_ms();
            if let Some(h) = &tx_hash {
                r.tx_hashes.push(h.clone());
            }
            r.history.push(Transition {
                state,
                at_ms: r.updated_ms,
                tx_hash,
                error: None,
            });
            self.put(&r);
        }
    }
}

impl Handler<BlockObserved> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: BlockObserved, ctx: &mut Self::Context) {
        self.meter.took();
        // Every record change of this block goes into one batch, handed to the store's waiting writes before
        // anything else runs (the builders started meanwhile run after this handler returns). The packets it
        // sends that have no record yet go into intake entries of that batch; as many as the window has room for
        // start now.
        self.batch = Some(PacketBatch::new());
        self.intake = Some(Vec::new());
        let (chain, height) = (msg.chain.clone(), msg.height);
        let written = self.observe_block(msg, ctx);
        self.close_intake(&chain, height);
        self.admit_waiting();
        // Every event of this block has a record or an intake entry now (or needs none): the checkpoint passes
        // it in the same transaction, and a restart resumes after it. A block whose writes did not make it is
        // read again after a restart.
        if let (Some(batch), Some((chain, height))) = (&mut self.batch, &written) {
            batch.set_checkpoint(chain.as_str(), *height);
        }
        self.write_batch();
    }
}

impl RelayCoordinator {
    /// Handles one block's events; returns the chain and height to checkpoint once its records are written
    /// (`None` for a partial block, whose last chunk finishes it).
    fn observe_block(
        &mut self,
        msg: BlockObserved,
        ctx: &mut Context<Self>,
    ) -> Option<(ChainId, u64)> {
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
        // More of this block's events follow: the block is finished with its last chunk.
        if msg.partial {
            return None;
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
        Some((chain, msg.height))
    }
}
