//! `ChainEndpoint` for NEAR: IBC state read from the IBC contract's storage with `view_state` (and its trie
//! proof), listings and events through the contract's view methods, and a light-client head that relayd advances
//! with `next_light_client_block` and uses to check the proofs it reads.

use near_primitives::hash::CryptoHash;
use near_primitives::types::AccountId;
use relayd_messages::ObservedEvent;

use super::contract;
use super::execution_proof::ExecutionProofError;
use super::light_client::{LightClientError, TrustedNear};
use super::rpc::NearRpc;
use super::state_proof::{build_state_proof, verify_state_proof, NearStateProof, StateProofError};
use crate::chain::endpoint::{ChainEndpoint, ChainError, Proven, QueryHeight};

/// Why relayd could not obtain or check NEAR state it needs verified.
#[derive(Debug, thiserror::Error)]
pub enum NearVerifyError {
    /// The node failed or refused.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A light-client block broke a rule.
    #[error(transparent)]
    LightClient(#[from] LightClientError),
    /// An execution outcome proof did not check out.
    #[error(transparent)]
    Outcome(#[from] ExecutionProofError),
    /// A state proof did not check out.
    #[error(transparent)]
    Proof(#[from] StateProofError),
    /// The node's blocks do not line up with the trusted head.
    #[error("{chain}: {reason}")]
    Inconsistent {
        /// The chain.
        chain: String,
        /// What did not line up.
        reason: String,
    },
}

/// A NEAR chain with the near-ibc contract.
#[derive(Clone)]
pub struct NearEndpoint {
    rpc: NearRpc,
    contract: AccountId,
}

impl NearEndpoint {
    /// The endpoint for the IBC contract `contract` behind `rpc`.
    pub fn new(rpc: NearRpc, contract: AccountId) -> Self {
        Self { rpc, contract }
    }

    /// The RPC client.
    pub fn rpc(&self) -> &NearRpc {
        &self.rpc
    }

    /// The IBC contract's account.
    pub fn contract(&self) -> &AccountId {
        &self.contract
    }

    /// A view call on the IBC contract at the latest final block.
    pub async fn view(&self, method: &str, args: serde_json::Value) -> Result<Vec<u8>, ChainError> {
        Ok(self
            .rpc
            .view_call(&self.contract, method, &args, None)
            .await?
            .result)
    }

    fn decode<T>(&self, r: Result<T, contract::ContractError>) -> Result<T, ChainError> {
        r.map_err(|e| ChainError::rpc(self.rpc.chain(), &e.method, e.reason))
    }

    /// `get_client_state`: the client state's protobuf `Any`, empty when absent.
    pub async fn client_state(&self, client: &str) -> Result<Vec<u8>, ChainError> {
        let r = self
            .view("get_client_state", contract::client_args(client))
            .await?;
        self.decode(contract::bytes("get_client_state", &r))
    }

    /// `get_client_consensus`: the consensus state's protobuf `Any`, empty when absent.
    pub async fn consensus_state(
        &self,
        client: &str,
        revision: u64,
        height: u64,
    ) -> Result<Vec<u8>, ChainError> {
        let r = self
            .view(
                "get_client_consensus",
                contract::consensus_args(client, revision, height),
            )
            .await?;
        self.decode(contract::bytes("get_client_consensus", &r))
    }

    /// `get_packet_commitment`.
    pub async fn packet_commitment(
        &self,
        port: &str,
        channel: &str,
        sequence: u64,
    ) -> Result<Option<Vec<u8>>, ChainError> {
        let r = self
            .view(
                "get_packet_commitment",
                contract::packet_args(port, channel, sequence),
            )
            .await?;
        self.decode(contract::optional_bytes("get_packet_commitment", &r))
    }

    /// `get_next_sequence_receive`.
    pub async fn next_sequence_receive(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Option<u64>, ChainError> {
        let r = self
            .view(
                "get_next_sequence_receive",
                contract::channel_args(port, channel),
            )
            .await?;
        self.decode(contract::optional_sequence("get_next_sequence_receive", &r))
    }

    /// `get_connections`: the ids of every connection on the chain.
    pub async fn connections(&self) -> Result<Vec<String>, ChainError> {
        let method = "get_connections";
        let r = self.view(method, serde_json::json!({})).await?;
        self.decode(contract::connection_ids(method, &r))
    }

    /// `get_client_connections`: the connections built on `client`.
    pub async fn client_connections(&self, client: &str) -> Result<Vec<String>, ChainError> {
        let method = "get_client_connections";
        let r = self.view(method, contract::client_args(client)).await?;
        self.decode(contract::ids(method, &r))
    }

    /// `get_channels`: the (port, channel) of every channel on the chain.
    pub async fn channels(&self) -> Result<Vec<(String, String)>, ChainError> {
        let method = "get_channels";
        let r = self.view(method, contract::channels_args()).await?;
        self.decode(contract::channel_ids(method, &r))
    }

    /// `get_connection_channels`: the (port, channel) of the channels over `connection`.
    pub async fn connection_channels(
        &self,
        connection: &str,
    ) -> Result<Vec<(String, String)>, ChainError> {
        let method = "get_connection_channels";
        let r = self
            .view(method, contract::connection_args(connection))
            .await?;
        self.decode(contract::channel_ids(method, &r))
    }

    /// `get_commitment_prefix`: the bytes before every ICS-24 key in the chain's trie.
    pub async fn commitment_prefix(&self) -> Result<Vec<u8>, ChainError> {
        let r = self
            .view("get_commitment_prefix", serde_json::json!({}))
            .await?;
        self.decode(contract::bytes("get_commitment_prefix", &r))
    }

    /// The latest final block's height.
    pub async fn final_height(&self) -> Result<u64, ChainError> {
        Ok(self.rpc.block(None).await?.header.height)
    }

    /// Reads `path` at block `height` with `view_state`; with `prove`, also builds its state proof against the
    /// chunks of `next` (the block after `height`), given as (height, chunk state roots).
    async fn read(
        &self,
        path: &str,
        height: u64,
        prove: Option<(u64, Vec<CryptoHash>)>,
    ) -> Result<Proven, ChainError> {
        let state = self
            .rpc
            .view_state(&self.contract, path.as_bytes(), height, prove.is_some())
            .await?;
        // view_state answers for a prefix: keep the exact key only.
        let value = state
            .values
            .iter()
            .find(|item| item.key.as_slice() == path.as_bytes())
            .map(|item| item.value.to_vec())
            .unwrap_or_default();
        let proof = match prove {
            None => None,
            Some((next_height, roots)) => {
                if state.proof.is_empty() {
                    return Err(ChainError::MissingProof {
                        chain: self.rpc.chain().to_owned(),
                        path: path.to_owned(),
                        height,
                    });
                }
                let nodes = state.proof.iter().map(|n| n.to_vec()).collect();
                let proof = build_state_proof(next_height, &roots, nodes)
                    .map_err(|e| ChainError::rpc(self.rpc.chain(), "view_state", e))?;
                Some(proof.to_bytes())
            }
        };
        Ok(Proven {
            value,
            height,
            proof,
        })
    }

    /// The block after `height` on the chain (heights may be skipped on NEAR), as (height, chunk state roots).
    async fn next_block(&self, height: u64) -> Result<(u64, Vec<CryptoHash>), ChainError> {
        // Producers may skip a few heights; a gap this long means the node is far behind.
        for next in height + 1..=height + 16 {
            match self.rpc.block(Some(next)).await {
                Ok(block) if block.header.prev_height == Some(height) => {
                    return Ok((
                        next,
                        block.chunks.iter().map(|c| c.prev_state_root).collect(),
                    ))
                }
                Ok(block) => {
                    return Err(ChainError::rpc(
                        self.rpc.chain(),
                        "block",
                        format!(
                            "block {next} follows {:?}, not {height}",
                            block.header.prev_height
                        ),
                    ))
                }
                Err(ChainError::Node { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ChainError::rpc(
            self.rpc.chain(),
            "block",
            format!("no block after {height} within 16 heights"),
        ))
    }

    /// Reads `path` in the state the trusted head commits to (the state after the head's previous block) and
    /// checks its proof against the head. The returned `Proven` carries that checked proof.
    pub async fn query_verified(
        &self,
        path: &str,
        trusted: &TrustedNear,
    ) -> Result<Proven, NearVerifyError> {
        let head_hash = trusted.head_hash();
        let block = self.rpc.block_by_hash(head_hash).await?;
        let inconsistent = |reason: String| NearVerifyError::Inconsistent {
            chain: self.rpc.chain().to_owned(),
            reason,
        };
        if block.header.height != trusted.head.inner_lite.height {
            return Err(inconsistent(format!(
                "block {head_hash} is at height {}, the trusted head at {}",
                block.header.height, trusted.head.inner_lite.height
            )));
        }
        let prev = block
            .header
            .prev_height
            .ok_or_else(|| inconsistent("the trusted head has no previous block".to_owned()))?;
        let roots: Vec<CryptoHash> = block.chunks.iter().map(|c| c.prev_state_root).collect();
        let proven = self
            .read(path, prev, Some((block.header.height, roots)))
            .await?;
        let proof = NearStateProof::from_bytes(proven.proof.as_deref().unwrap_or_default())?;
        let value = (!proven.value.is_empty()).then_some(proven.value.as_slice());
        verify_state_proof(
            &trusted.head.inner_lite.prev_state_root,
            self.contract.as_str(),
            path.as_bytes(),
            value,
            &proof,
        )?;
        Ok(proven)
    }
}

impl ChainEndpoint for NearEndpoint {
    fn chain_id(&self) -> &str {
        self.rpc.chain()
    }

    async fn latest_height(&self) -> Result<u64, ChainError> {
        self.final_height().await
    }

    async fn query_ibc(
        &self,
        path: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError> {
        let height = match height {
            QueryHeight::At(h) => h,
            // The final block's parent: its state is committed by the final block's header.
            QueryHeight::Latest => {
                self.rpc
                    .block(None)
                    .await?
                    .header
                    .prev_height
                    .ok_or_else(|| {
                        ChainError::rpc(self.rpc.chain(), "block", "final block has no parent")
                    })?
            }
        };
        let next = if prove {
            Some(self.next_block(height).await?)
        } else {
            None
        };
        self.read(path, height, next).await
    }

    async fn packet_commitments(&self, port: &str, channel: &str) -> Result<Vec<u64>, ChainError> {
        let method = "get_packet_commitment_sequences";
        let r = self
            .view(method, contract::channel_args(port, channel))
            .await?;
        self.decode(contract::sequences(method, &r))
    }

    async fn packet_acknowledgements(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError> {
        let method = "get_packet_acknowledgement_sequences";
        let r = self
            .view(method, contract::channel_args(port, channel))
            .await?;
        self.decode(contract::sequences(method, &r))
    }

    async fn unreceived_packets(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        let method = "get_unreceived_packets";
        let r = self
            .view(method, contract::unreceived_args(port, channel, sequences))
            .await?;
        self.decode(contract::sequences(method, &r))
    }

    async fn unreceived_acks(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        // near-ibc has no such view; an ack is unprocessed while this chain still holds the packet's commitment.
        let held = self.packet_commitments(port, channel).await?;
        Ok(sequences
            .iter()
            .copied()
            .filter(|s| held.contains(s))
            .collect())
    }

    async fn packet_events(
        &self,
        kind: relayd_messages::PacketEventKind,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<ObservedEvent>, ChainError> {
        super::event_history::packet_events(self, kind, port, channel, sequences).await
    }

    async fn ibc_events_at(&self, height: u64) -> Result<Vec<ObservedEvent>, ChainError> {
        let method = "get_ibc_events_at";
        let r = self.view(method, contract::events_args(height)).await?;
        let (events, errors) = self.decode(contract::events(height, &r))?;
        for e in errors {
            tracing::warn!(chain = self.rpc.chain(), error = %e, "unreadable IBC event");
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests;
