//! Clearing: which packets of a route are pending on chain (`clearing` decides what to look up), and their
//! builders started again.

use actix::{ActorFutureExt, Handler, ResponseActFuture, WrapFuture};
use relayd_messages::{
    ClearPackets, ClearReport, ErrorKind, IbcEvent, PacketEventKind, QueryCommitments,
    QueryPacketEvents, QueryUnreceived, RelayError,
};

use super::clearing;
use super::RelayCoordinator;

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
        // Packets waiting in the intake log have no record yet, but relayd has their send: not looked up.
        let logged = self
            .state
            .logged_of(&route.src, &route.src_port, &route.src_channel);
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
                match record {
                    None if logged.contains(s) => clearing::Known::Sent,
                    record => clearing::known(record.as_ref()),
                }
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
                    if !clearing::relayable(&r) {
                        continue;
                    }
                    // Pending on chain but final here (e.g. failed): relay it again.
                    if clearing::reopen(&mut r) {
                        let _ = act.store.take_dead_letter(&key);
                        // A packet that waits for a builder slot is read back from the store when it starts.
                        act.put(&r);
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
            // Skipped packets stay pending on chain for good; they are reported apart, not waited for (those
            // found in the transaction index just now were decided as they were observed).
            let (skipped, unreceived): (Vec<u64>, Vec<u64>) =
                unreceived.into_iter().partition(|s| {
                    route
                        .key(*s)
                        .and_then(|k| act.store.packet(&k).ok().flatten())
                        .is_some_and(|r| !clearing::relayable(&r))
                });
            Ok(ClearReport {
                unreceived,
                unacknowledged,
                started,
                skipped,
            })
        }))
    }
}
