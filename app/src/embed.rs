//! relayd inside a host's own actix System: the host starts relaying from a configuration and a data directory,
//! talks to the coordinator through plain `Recipient`s, hears about packets as they complete, and stops relayd
//! when it likes. relayd's actors run on Arbiters of their own, so the host's actors keep running whether relayd
//! is busy, fails or has stopped.

use std::path::{Path, PathBuf};

use actix::{Actor, ActorContext, Context, Handler, MailboxError, Recipient};
use relayd_actors::store::StateStore;
use relayd_actors::system::{RelayHandle, StartError, StartOptions};
use relayd_config::Config;
use relayd_messages::{
    ChainStatus, ClearPackets, CoordinatorStatus, LifecycleChanged, PacketCompleted, PacketOutcome,
    PacketState, QueryChainStatus, QueryCoordinator, RelayHandshake, RelayObject,
    SubscribeLifecycle,
};

use crate::datadir::{DataDir, DataDirError};

/// Why relayd could not start, or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The data directory is in use or cannot be opened.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The configuration cannot be run (a chain is unreachable, a path does not resolve).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The coordinator stopped.
    #[error("the relay coordinator is not running: {0}")]
    Stopped(#[from] MailboxError),
}

/// The coordinator's inputs a host may use, as plain recipients (clonable, sendable to the host's actors).
#[derive(Clone)]
pub struct RelayRecipients {
    /// Relay the pending packets of a channel now; answers with what was found and started.
    pub clear: Recipient<ClearPackets>,
    /// The coordinator's view: chain heights seen, live builders, events routed.
    pub status: Recipient<QueryCoordinator>,
    /// Adds a subscriber to every lifecycle change (packets and handshakes).
    pub subscribe: Recipient<SubscribeLifecycle>,
    /// Finish a connection or channel handshake.
    pub handshake: Recipient<RelayHandshake>,
}

/// The completion a lifecycle change announces, if it announces one.
pub fn completion(change: &LifecycleChanged) -> Option<PacketCompleted> {
    let RelayObject::Packet(key) = &change.object else {
        return None;
    };
    if !change.is_final {
        return None;
    }
    let outcome = match change.packet_state()? {
        PacketState::Acknowledged => PacketOutcome::Acknowledged,
        PacketState::TimedOut => PacketOutcome::TimedOut,
        PacketState::Failed => PacketOutcome::Failed,
        PacketState::Skipped => PacketOutcome::Skipped,
        _ => return None,
    };
    Some(PacketCompleted {
        key: key.clone(),
        outcome,
        tx_hash: change.tx_hash.clone(),
        error: change.error.clone(),
    })
}

/// Turns lifecycle changes into [`PacketCompleted`] for one host recipient; stops when that recipient is gone.
struct CompletionFilter(Recipient<PacketCompleted>);

impl Actor for CompletionFilter {
    type Context = Context<Self>;
}

impl Handler<LifecycleChanged> for CompletionFilter {
    type Result = ();

    fn handle(&mut self, change: LifecycleChanged, ctx: &mut Self::Context) {
        if !self.0.connected() {
            ctx.stop();
            return;
        }
        if let Some(done) = completion(&change) {
            self.0.do_send(done);
        }
    }
}

/// Supervision state of relayd, for a host's health checks.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// The coordinator's view.
    pub coordinator: CoordinatorStatus,
    /// Each chain's actors (running, restarts, last error, degraded).
    pub chains: Vec<ChainStatus>,
}

/// relayd running inside the host's System.
pub struct EmbeddedRelay {
    relay: RelayHandle,
    data: DataDir,
    dir: PathBuf,
    recipients: RelayRecipients,
}

impl EmbeddedRelay {
    /// Starts relayd for `config` in the current actix System. `data_dir` is locked for relayd's use (a second
    /// relayd on it is refused) and holds the state database (`state/`) and the signing keys (`keys/`, as
    /// `relayd keys add` writes them).
    pub async fn start(
        config: &Config,
        data_dir: &Path,
        options: StartOptions,
    ) -> Result<Self, EmbedError> {
        let data = DataDir::open(data_dir)?;
        let relay = relayd_actors::system::start_with(
            config,
            data.store.clone(),
            data_dir.join("keys"),
            options,
        )
        .await?;
        let recipients = RelayRecipients {
            clear: relay.coordinator.clone().recipient(),
            status: relay.coordinator.clone().recipient(),
            subscribe: relay.coordinator.clone().recipient(),
            handshake: relay.coordinator.clone().recipient(),
        };
        Ok(Self {
            relay,
            data,
            dir: data_dir.to_owned(),
            recipients,
        })
    }

    /// The coordinator's recipients.
    pub fn recipients(&self) -> RelayRecipients {
        self.recipients.clone()
    }

    /// Every lifecycle change of every packet and handshake goes to `to` as well.
    pub fn subscribe_lifecycle(&self, to: Recipient<LifecycleChanged>) {
        self.recipients.subscribe.do_send(SubscribeLifecycle(to));
    }

    /// Every packet that finishes (acknowledged, timed out or failed) is announced to `to`.
    pub fn subscribe_packets(&self, to: Recipient<PacketCompleted>) {
        let filter = CompletionFilter(to).start();
        self.subscribe_lifecycle(filter.recipient());
    }

    /// The coordinator's view and each chain's supervision state.
    pub async fn status(&self) -> Result<RelayStatus, EmbedError> {
        let coordinator = self.recipients.status.send(QueryCoordinator).await?;
        let mut chains = Vec::new();
        for (_, sup) in &self.relay.supervisors {
            chains.push(sup.send(QueryChainStatus).await?);
        }
        Ok(RelayStatus {
            coordinator,
            chains,
        })
    }

    /// The running relayd: supervisors, chain links and routes, for hosts that need more than the recipients.
    pub fn handle(&self) -> &RelayHandle {
        &self.relay
    }

    /// The state database (packet records, dead letters, checkpoints).
    pub fn store(&self) -> &StateStore {
        &self.data.store
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Stops relayd gracefully (see [`RelayHandle::shutdown`]), flushes its state and releases the data
    /// directory. The host's System and actors keep running.
    pub async fn shutdown(self) {
        self.relay.shutdown().await;
        if let Err(e) = self.data.store.flush() {
            tracing::warn!(error = %e, "cannot flush the state database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayd_messages::{ChainId, ChannelId, CorrelationId, PacketKey, PortId, Sequence};

    fn change(object: RelayObject, state: &str, is_final: bool) -> LifecycleChanged {
        LifecycleChanged {
            object,
            generation: 1,
            correlation: CorrelationId::fresh(),
            state: state.into(),
            tx_hash: Some("AB".into()),
            error: None,
            is_final,
        }
    }

    fn packet() -> RelayObject {
        RelayObject::Packet(PacketKey {
            src_chain: ChainId::new("ibc-0").unwrap(),
            src_port: PortId::new("transfer").unwrap(),
            src_channel: ChannelId::new("channel-0").unwrap(),
            sequence: Sequence(4),
        })
    }

    #[test]
    fn only_final_packet_states_are_completions() {
        assert!(completion(&change(packet(), "confirmed", false)).is_none());
        let done = completion(&change(packet(), "acknowledged", true)).unwrap();
        assert_eq!(done.outcome, PacketOutcome::Acknowledged);
        assert_eq!(done.key.sequence, Sequence(4));
        assert_eq!(done.tx_hash.as_deref(), Some("AB"));
        assert_eq!(
            completion(&change(packet(), "timed_out", true))
                .unwrap()
                .outcome,
            PacketOutcome::TimedOut
        );
        let handshake = RelayObject::Connection {
            chain: ChainId::new("ibc-0").unwrap(),
            connection: relayd_messages::ConnectionId::new("connection-0").unwrap(),
        };
        assert!(completion(&change(handshake, "open", true)).is_none());
    }
}
