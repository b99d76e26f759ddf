//! What the coordinator tells operators about its builders, and the operator's way to relay a dead-lettered
//! packet again. Kept apart from the coordinator's relay logic; as a child module it reads the coordinator's
//! private state directly instead of widening its public surface.

use actix::{Context, Handler, Message, MessageResult};
use relayd_messages::{PacketKey, PacketState, RelayObject};
use serde::Serialize;

use super::RelayCoordinator;
use crate::store::{now_ms, Transition};

/// Lists the live packet builders.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<BuilderStatus>")]
pub struct QueryBuilders;

/// One live packet builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuilderStatus {
    /// The relay object it drives.
    pub object: RelayObject,
    /// The destination chain.
    pub dst_chain: String,
    /// Its incarnation (unique within the process).
    pub generation: u64,
    /// Restarts of this packet's builder so far.
    pub restarts: u32,
    /// When this incarnation started, ms since the epoch.
    pub started_ms: u64,
    /// Its mailbox: the coordinator's events waiting for it, and those handled.
    pub load: crate::meter::ActorLoad,
}

/// Takes a packet out of the dead-letter queue and relays it again from the start, with fresh attempts.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RetryError>")]
pub struct RetryPacket(pub PacketKey);

/// Why a dead letter could not be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    /// No dead letter has that key.
    #[error("{0} is not in the dead-letter queue")]
    NotDead(String),
    /// The packet's channel is not relayed by this service (any more).
    #[error("{0} is not on a relayed channel")]
    NoRoute(String),
    /// The state database failed.
    #[error("{0}")]
    Store(String),
}

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
