//! The IBC host the NEAR devnet's ibc-rs runs against: ibc-testkit's `MockIbcStore` for every read and write, but
//! reporting the commitment prefix a near-ibc contract has, `[9] ‖ contract account ‖ ','` (the trie-key prefix of
//! the contract's storage, under which every ICS-24 value is stored and proven). ibc-testkit fixes its own prefix
//! to `mock`; ibc-rs checks the host's prefix in connection handshakes (ConnOpenTry and ConnOpenAck compare the
//! counterparty's record of this chain's prefix with it), so the devnet must report the real one.

use core::time::Duration;

use basecoin_store::context::ProvableStore;
use ibc::core::channel::types::channel::ChannelEnd;
use ibc::core::channel::types::commitment::{AcknowledgementCommitment, PacketCommitment};
use ibc::core::channel::types::packet::Receipt;
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
use ibc_testkit::testapp::ibc::clients::{AnyClientState, AnyConsensusState};
use ibc_testkit::testapp::ibc::core::types::MockIbcStore;

/// ibc-testkit's store seen through a near-ibc contract's commitment prefix.
pub struct NearHost<'a, S: ProvableStore + core::fmt::Debug> {
    store: &'a mut MockIbcStore<S>,
    prefix: CommitmentPrefix,
}

impl<'a, S: ProvableStore + core::fmt::Debug> NearHost<'a, S> {
    /// The host over `store` whose commitment prefix is `prefix`.
    pub fn new(store: &'a mut MockIbcStore<S>, prefix: Vec<u8>) -> Self {
        Self {
            store,
            prefix: CommitmentPrefix::from(prefix),
        }
    }
}

impl<S: ProvableStore + core::fmt::Debug> ValidationContext for NearHost<'_, S> {
    type V = MockIbcStore<S>;
    type HostClientState = AnyClientState;
    type HostConsensusState = AnyConsensusState;

    fn get_client_validation_context(&self) -> &Self::V {
        self.store
    }

    fn host_height(&self) -> Result<Height, HostError> {
        self.store.host_height()
    }

    fn host_timestamp(&self) -> Result<Timestamp, HostError> {
        self.store.host_timestamp()
    }

    fn host_consensus_state(&self, height: &Height) -> Result<AnyConsensusState, HostError> {
        self.store.host_consensus_state(height)
    }

    fn client_counter(&self) -> Result<u64, HostError> {
        self.store.client_counter()
    }

    fn connection_end(&self, conn_id: &ConnectionId) -> Result<ConnectionEnd, HostError> {
        self.store.connection_end(conn_id)
    }

    fn validate_self_client(&self, client_state: AnyClientState) -> Result<(), HostError> {
        self.store.validate_self_client(client_state)
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
        self.store.get_next_sequence_send(path)
    }

    fn get_next_sequence_recv(&self, path: &SeqRecvPath) -> Result<Sequence, HostError> {
        self.store.get_next_sequence_recv(path)
    }

    fn get_next_sequence_ack(&self, path: &SeqAckPath) -> Result<Sequence, HostError> {
        self.store.get_next_sequence_ack(path)
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

impl<S: ProvableStore + core::fmt::Debug> ExecutionContext for NearHost<'_, S> {
    type E = MockIbcStore<S>;

    fn get_client_execution_context(&mut self) -> &mut Self::E {
        self.store
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
        self.store.store_next_sequence_send(path, seq)
    }

    fn store_next_sequence_recv(
        &mut self,
        path: &SeqRecvPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        self.store.store_next_sequence_recv(path, seq)
    }

    fn store_next_sequence_ack(
        &mut self,
        path: &SeqAckPath,
        seq: Sequence,
    ) -> Result<(), HostError> {
        self.store.store_next_sequence_ack(path, seq)
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
