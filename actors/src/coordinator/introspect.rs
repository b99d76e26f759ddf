//! What the coordinator tells operators about its builders, and the operator's way to relay a dead-lettered
//! packet again. Kept apart from the coordinator's relay logic; as a child module it reads the coordinator's
//! private state directly instead of widening its public surface.

use actix::{Context, Handler, MessageResult};
use relayd_messages::{
    BuilderStatus, PacketState, QueryBuilders, RelayObject, RetryError, RetryPacket,
};

use super::RelayCoordinator;
use crate::store::{now_ms, Transition};

impl Handler<QueryBuilders> for RelayCoordinator {
    type Result = MessageResult<QueryBuilders>;

    fn handle(&mut self, _: QueryBuilders, _: &mut Context<Self>) -> Self::Result {
        self.meter.handled();
        let mut out: Vec<BuilderStatus> = self
            .state
            .builders()
            .iter()
            .map(|(key, live)| BuilderStatus {
                object: RelayObject::Packet(key.clone()),
                dst_chain: self
                    .state
                    .routes()
                    .of(key)
                    .map_or_else(String::new, |r| r.dst.to_string()),
                generation: live.generation,
                restarts: live.restarts,
                started_ms: live.started_ms,
                load: live.handle.meter().load(),
            })
            .collect();
        out.sort_by_key(|b| b.generation);
        MessageResult(out)
    }
}

impl Handler<RetryPacket> for RelayCoordinator {
    type Result = Result<(), RetryError>;

    fn handle(&mut self, msg: RetryPacket, _: &mut Context<Self>) -> Self::Result {
        self.meter.handled();
        let key = msg.0;
        if self.state.routes().of(&key).is_none() {
            return Err(RetryError::NoRoute(key.to_string()));
        }
        let mut record = self
            .store
            .take_dead_letter(&key)
            .map_err(|e| RetryError::Store(e.to_string()))?
            .ok_or_else(|| RetryError::NotDead(key.to_string()))?;
        // The lifecycle record may be newer than the dead letter's copy (e.g. an ack seen since).
        if let Ok(Some(current)) = self.store.packet(&key) {
            record = current;
        }
        let now = now_ms();
        record.state = PacketState::Detected;
        record.attempts = 0;
        record.updated_ms = now;
        record.history.push(Transition {
            state: PacketState::Detected,
            at_ms: now,
            tx_hash: None,
            error: Some("retried by an operator".into()),
        });
        if let Err(e) = self.store.put_packet(&record) {
            // Put it back so the operator loses nothing.
            let _ = self.store.put_dead_letter(&record);
            return Err(RetryError::Store(e.to_string()));
        }
        if self.state.builder(&key).is_none() {
            self.spawn(record, 0);
        }
        Ok(())
    }
}
