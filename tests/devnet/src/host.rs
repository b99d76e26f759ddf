//! The IBC host each devnet chain's ibc-rs runs against: ibc-testkit's `MockIbcStore` for every read and write,
//! seen through what the chain it plays would report. ibc-testkit fixes its commitment prefix to `mock`, which ibc-rs
//! checks in connection handshakes, so a Cosmos devnet reports the SDK's `ibc` and a NEAR devnet near-ibc's
//! `[9] ‖ contract account ‖ ','` instead. And
//! ibc-testkit stores next sequences (send, receive, ack) as JSON, while ibc-go stores them as 8 big-endian bytes:
//! a counterparty verifies an ordered channel's next-sequence-receive proof against those bytes, so the Cosmos
//! devnet stores them as ibc-go does.
//!
//! Light clients are the devnet's own enums (`crate::clients`: Tendermint and NEAR), so the host is also the
//! client context ibc-rs's clients read and write through (`host/client_ctx.rs`), over the same store paths.

use core::time::Duration;

use basecoin_store::context::{ProvableStore, Store};
use basecoin_store::types::{Height as StoreHeight, Path as StorePath};
use ibc::core::channel::types::channel::ChannelEnd;
use ibc::core::channel::types::commitment::{AcknowledgementCommitment, PacketCommitment};
use ibc::core::channel::types::packet::Receipt;
use ibc::core::client::context::client_state::ClientStateCommon;
use ibc::core::client::types::Height;
use ibc::core::commitment_types::commitment::CommitmentPrefix;
use ibc::core::connection::types::version::Version as ConnectionVersion;
use ibc::core::connection::types::ConnectionEnd;
use ibc::core::handler::types::events::IbcEvent;
use ibc::core::host::types::error::HostError;
use ibc::core::host::types::identifiers::{ConnectionId, Sequence};
use ibc::core::host::types::path::{
    AckPath, ChannelEndPath, ClientConnectionPath, CommitmentPath, ConnectionPath, ReceiptPath,
    SeqAckPath, SeqRecvPath, SeqSendPath,
};
use ibc::core::host::{ExecutionContext, ValidationContext};
use ibc::core::primitives::{Signer, Timestamp};
use ibc_testkit::testapp::ibc::core::types::MockIbcStore;

use crate::clients::{AnyClientState, AnyConsensusState};

mod client_ctx;
pub mod self_record;

pub use self_record::{claimed_self_states, ClaimedSelfState};

/// How next sequences are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceForm {
    /// ibc-testkit's own JSON.
    Json,
    /// ibc-go's 8 big-endian bytes.
    BigEndian,
}

/// ibc-testkit's store seen through a chain's commitment prefix and next-sequence encoding.
pub struct DevnetHost<'a, S: ProvableStore + core::fmt::Debug> {
    store: &'a mut MockIbcStore<S>,
    prefix: CommitmentPrefix,
    sequences: SequenceForm,
    /// Records of this chain the message being handled proves its counterparty holds (`self_record`).
    claimed: Vec<ClaimedSelfState>,
}

impl<'a, S: ProvableStore + core::fmt::Debug> DevnetHost<'a, S> {
    /// The host over `store` whose commitment prefix is `prefix`, storing next sequences in `sequences` form.
    pub fn new(store: &'a mut MockIbcStore<S>, prefix: Vec<u8>, sequences: SequenceForm) -> Self {
        Self {
            store,
            prefix: CommitmentPrefix::from(prefix),
            sequences,
            claimed: Vec::new(),
        }
    }

    /// The same host, answering its consensus state at a claimed height with the claimed record when that record
    /// agrees with its own block (a NEAR chain's, whose counterparty keeps NEAR headers; see `self_record`).
    pub fn with_claimed_self_states(mut self, claimed: Vec<ClaimedSelfState>) -> Self {
        self.claimed = claimed;
        self
    }

    /// A Cosmos devnet chain's host: the SDK's prefix `ibc` (the IBC store's key in the app's multistore), next
    /// sequences as ibc-go stores them.
    pub fn cosmos(store: &'a mut MockIbcStore<S>) -> Self {
        Self::new(store, b"ibc".to_vec(), SequenceForm::BigEndian)
    }

    fn get_sequence(&self, path: String, what: &str) -> Result<Sequence, HostError> {
        big_endian_sequence(self.store, path)
            .ok_or_else(|| HostError::failed_to_retrieve(format!("{what} sequence")))
    }

    fn set_sequence(&mut self, path: String, seq: Sequence) -> Result<(), HostError> {
        self.store
            .store
            .set(StorePath::from(path), seq.value().to_be_bytes().to_vec())
            .map(|_| ())
            .map_err(|e| HostError::failed_to_store(format!("next sequence: {e:?}")))
    }
}

/// A next sequence stored as ibc-go stores it (8 big-endian bytes) at ICS-24 `path`, in the pending state.
pub fn big_endian_sequence<S: ProvableStore + core::fmt::Debug>(
    store: &MockIbcStore<S>,
    path: String,
) -> Option<Sequence> {
    let bytes = store
        .store
        .get(StoreHeight::Pending, &StorePath::from(path))?;
    let bytes: [u8; 8] = bytes.as_slice().try_into().ok()?;
    Some(Sequence::from(u64::from_be_bytes(bytes)))
}

impl<S: ProvableStore + core::fmt::Debug> ValidationContext for DevnetHost<'_, S> {
    type V = Self;
    type HostClientState = AnyClientState;
    type HostConsensusState = AnyConsensusState;

    fn get_client_validation_context(&self) -> &Self::V {
        self
    }

    fn host_height(&self) -> Result<Height, HostError> {
        self.store.host_height()
    }

    fn host_timestamp(&self) -> Result<Timestamp, HostError> {
        self.store.host_timestamp()
    }

    fn host_consensus_state(&self, height: &Height) -> Result<AnyConsensusState, HostError> {
        let own = self.store.host_consensus_state(height)?;
        self_record::host_consensus_state(height, own, &self.claimed)
    }

    fn client_counter(&self) -> Result<u64, HostError> {
        self.store.client_counter()
    }

    fn connection_end(&self, conn_id: &ConnectionId) -> Result<ConnectionEnd, HostError> {
        self.store.connection_end(conn_id)
    }

    /// ibc-testkit's checks of a counterparty's client of this chain, for either client type: not frozen, in
    /// this chain's revision, not above its height.
    fn validate_self_client(&self, client_state: AnyClientState) -> Result<(), HostError> {
        let frozen = match &client_state {
            AnyClientState::Tendermint(cs) => cs.inner().is_frozen(),
            AnyClientState::Near(cs) => cs.frozen_height.is_some(),
        };
        if frozen {
            return Err(HostError::invalid_state("client unexpectedly frozen"));
        }
        let host = self.store.host_height()?;
        let latest = client_state.latest_height();
        if latest.revision_number() != host.revision_number() {
            return Err(HostError::invalid_state(format!(
                "client is in revision {}, the chain in {}",
                latest.revision_number(),
                host.revision_number()
            )));
        }
        if latest >= host.increment() {
            return Err(HostError::invalid_state(format!(
                "counterparty client latest height {latest} is not below the chain height {}",
                host.increment()
            )));
        }
        Ok(())
    }

    fn commitment_prefix(&self) -> CommitmentPrefix {
        self.prefix.clone()
    }

    fn connection_counter(&self) -> Result<u64, HostError> {
        self.store.connection_counter()
    }

    fn get_compatible_versions(&self) -> Vec<ConnectionVersion> {
        self.store.get_compatible_versions()
    }

    fn pick_version(
        &self,
        counterparty_candidate_versions: &[ConnectionVersion],
    ) -> Result<ConnectionVersion, HostError> {
        self.store.pick_version(counterparty_candidate_versions)
    }

    fn channel_end(&self, path: &ChannelEndPath) -> Result<ChannelEnd, HostError> {
        self.store.channel_end(path)
    }

    fn get_next_sequence_send(&self, path: &SeqSendPath) -> Result<Sequence, HostError> {
        match self.sequences {
            SequenceForm::Json => self.store.get_next_sequence_send(path),
            SequenceForm::BigEndian => self.get_sequence(path.to_string(), "send"),
        }
    }

    fn get_next_sequence_recv(&self, path: &SeqRecvPath) -> Result<Sequence, HostError> {
        match self.sequences {
            SequenceForm::Json => self.store.get_next_sequence_recv(path),
            SequenceForm::BigEndian => self.get_sequence(path.to_string(), "receive"),
        }
    }

    fn get_next_sequence_ack(&self, path: &SeqAckPath) -> Result<Sequence, HostError> {
        match self.sequences {
            SequenceForm::Json => self.store.get_next_sequence_ack(path),
            SequenceForm::BigEndian => self.get_sequence(path.to_string(), "ack"),
        }
    }

    fn get_packet_commitment(&self, path: &CommitmentPath) -> Result<PacketCommitment, HostError> {
        self.store.get_packet_commitment(path)
    }

    fn get_packet_receipt(&self, path: &ReceiptPath) -> Result<Receipt, HostError> {
        self.store.get_packet_receipt(path)
    }

    fn get_packet_acknowledgement(
        &self,
        path: &AckPath,
    ) -> Result<AcknowledgementCommitment, HostError> {
        self.store.get_packet_acknowledgement(path)
    }

    fn channel_counter(&self) -> Result<u64, HostError> {
        self.store.channel_counter()
    }

    fn max_expected_time_per_block(&self) -> Duration {
        self.store.max_expected_time_per_block()
    }

    fn block_delay(&self, delay_period_time: &Duration) -> u64 {
        self.store.block_delay(delay_period_time)
    }

    fn validate_message_signer(&self, signer: &Signer) -> Result<(), HostError> {
        self.store.validate_message_signer(signer)
    }
}

impl<S: ProvableStore + core::fmt::Debug> ExecutionContext for DevnetHost<'_, S> {
    type E = Self;

    fn get_client_execution_context(&mut self) -> &mut Self::E {
        self
    }

    fn increase_client_counter(&mut self) -> Result<(), HostError> {
        self.store.increase_client_counter()
    }

    fn store_connection(
        &mut self,
        path: &ConnectionPath,
        connection_end: ConnectionEnd,
    ) -> Result<(), HostError> {
        self.store.store_connection(path, connection_end)
    }

    fn store_connection_to_client(
        &mut self,
        path: &ClientConnectionPath,
        conn_id: ConnectionId,
    ) -> Result<(), HostError> {
        self.store.store_connection_to_client(path, conn_id)
    }

    fn increase_connection_counter(&mut self) -> Result<(), HostError> {
        self.store.increase_connection_counter()
    }

    fn store_packet_commitment(
        &mut self,
        path: &CommitmentPath,
        commitment: PacketCommitment,
    ) -> Result<(), HostError> {
        self.store.store_packet_commitment(path, commitment)
    }

    fn delete_packet_commitment(&mut self, path: &CommitmentPath) -> Result<(), HostError> {
        self.store.delete_packet_commitment(path)
    }

    fn store_packet_receipt(
        &mut self,
        path: &ReceiptPath,
        receipt: Receipt,
    ) -> Result<(), HostError> {
        self.store.store_packet_receipt(path, receipt)
    }

    fn store_packet_acknowledgement(
        &mut self,
        path: &AckPath,
        ack_commitment: AcknowledgementCommitment,
    ) -> Result<(), HostError> {
        self.store
            .store_packet_acknowledgement(path, ack_commitment)
    }

    fn delete_packet_acknowledgement(&mut self, path: &AckPath) -> Result<(), HostError> {
        self.store.delete_packet_acknowledgement(path)
    }

    fn store_channel(
        &mut self,
        path: &ChannelEndPath,
        channel_end: ChannelEnd,
    ) -> Result<(), HostError> {
        self.store.store_channel(path, channel_end)
    }

    fn store_next_sequence_send(
        &mut self,
        path: &SeqSendPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        match self.sequences {
            SequenceForm::Json => self.store.store_next_sequence_send(path, seq),
            SequenceForm::BigEndian => self.set_sequence(path.to_string(), seq),
        }
    }

    fn store_next_sequence_recv(
        &mut self,
        path: &SeqRecvPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        match self.sequences {
            SequenceForm::Json => self.store.store_next_sequence_recv(path, seq),
            SequenceForm::BigEndian => self.set_sequence(path.to_string(), seq),
        }
    }

    fn store_next_sequence_ack(
        &mut self,
        path: &SeqAckPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        match self.sequences {
            SequenceForm::Json => self.store.store_next_sequence_ack(path, seq),
            SequenceForm::BigEndian => self.set_sequence(path.to_string(), seq),
        }
    }

    fn increase_channel_counter(&mut self) -> Result<(), HostError> {
        self.store.increase_channel_counter()
    }

    fn emit_ibc_event(&mut self, event: IbcEvent) -> Result<(), HostError> {
        self.store.emit_ibc_event(event)
    }

    fn log_message(&mut self, message: String) -> Result<(), HostError> {
        self.store.log_message(message)
    }
}
