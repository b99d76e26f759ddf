//! `ChainEndpoint` for NEAR: IBC state read from the IBC contract's storage with `view_state` (and its trie
//! proof), listings and events through the contract's view methods, and a light-client head that relayd advances
//! with `next_light_client_block` and uses to check the proofs it reads.

use near_primitives::hash::CryptoHash;
use near_primitives::types::AccountId;
use near_primitives::views::LightClientBlockView;
use relayd_messages::ObservedEvent;

use super::contract;
use super::execution_proof::{verify_execution_proof, ExecutionProofError};
use super::light_client::{bps_hash, lite_block_hash, Advanced, LightClientError, TrustedNear};
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

/// relayd's NEAR head: a trusted light-client state, advanced only by blocks the light client accepts.
pub struct NearHead {
    rpc: NearRpc,
    trusted: TrustedNear,
}

impl NearHead {
    /// Starts from a state the operator trusts (for example one stored by an earlier run).
    pub fn new(rpc: NearRpc, trusted: TrustedNear) -> Self {
        Self { rpc, trusted }
    }

    /// Trust on first use: takes the node's latest light-client block as the head, with the producers of its next
    /// epoch that its header commits to (`next_bp_hash`). Blocks of the head's own epoch cannot be checked
    /// without that epoch's producers, so the head first moves when the chain enters the next epoch. Like a
    /// Cosmos trusted height, the first head must be checked out of band before real use.
    pub async fn bootstrap(rpc: NearRpc) -> Result<Self, NearVerifyError> {
        let block = Self::latest_light_client_block(&rpc).await?;
        let next_bps = block
            .next_bps
            .clone()
            .ok_or_else(|| NearVerifyError::Inconsistent {
                chain: rpc.chain().to_owned(),
                reason: "the light-client block carries no next_bps".to_owned(),
            })?;
        let computed = bps_hash(&next_bps);
        if computed != block.inner_lite.next_bp_hash {
            return Err(LightClientError::NextBpsHashMismatch {
                height: block.inner_lite.height,
                computed,
                expected: block.inner_lite.next_bp_hash,
            }
            .into());
        }
        let trusted = TrustedNear::new(lite(&block), Vec::new(), Some(next_bps));
        Ok(Self { rpc, trusted })
    }

    /// Starts from the block `hash`, which the operator vouches for (as `relayd light init` does for Cosmos). Nothing
    /// else is taken on the node's word: the block's light-client parts must hash to `hash`; its epoch's producers
    /// (`EXPERIMENTAL_validators_ordered`) must hash to the `next_bp_hash` of the last block of the epoch before,
    /// which is the block named by `hash`'s own `next_epoch_id` (NEAR: epoch `e + 1`'s id is the hash of the last
    /// block of epoch `e - 1`), itself checked by its hash. The next epoch's producers come later, checked against
    /// the head's `next_bp_hash`.
    pub async fn from_trusted_block(
        rpc: NearRpc,
        hash: CryptoHash,
    ) -> Result<Self, NearVerifyError> {
        let chain = rpc.chain().to_owned();
        let inconsistent = |reason: String| NearVerifyError::Inconsistent {
            chain: chain.clone(),
            reason,
        };
        let head = Self::lite_of(&rpc, hash).await?;
        let previous_epoch_end = Self::lite_of(&rpc, head.inner_lite.next_epoch_id)
            .await
            .map_err(|e| {
                inconsistent(format!(
                    "the last block of the epoch before {hash}'s ({}): {e}",
                    head.inner_lite.next_epoch_id
                ))
            })?;
        let producers = rpc.validators_ordered(hash).await?;
        let computed = bps_hash(&producers);
        if computed != previous_epoch_end.inner_lite.next_bp_hash {
            return Err(LightClientError::TrustedProducersMismatch {
                epoch: head.inner_lite.epoch_id,
                computed,
                expected: previous_epoch_end.inner_lite.next_bp_hash,
            }
            .into());
        }
        Ok(Self {
            rpc,
            trusted: TrustedNear::new(head, producers, None),
        })
    }

    /// The light-client parts of block `hash` as the node serves them, refused unless they hash to `hash`.
    async fn lite_of(
        rpc: &NearRpc,
        hash: CryptoHash,
    ) -> Result<near_primitives::views::LightClientBlockLiteView, NearVerifyError> {
        let view = rpc.block_by_hash(hash).await?;
        let header = near_primitives::block_header::BlockHeader::from(view.header);
        let lite = near_primitives::views::LightClientBlockLiteView::from(header);
        let computed = lite_block_hash(&lite);
        if computed != hash {
            return Err(NearVerifyError::Inconsistent {
                chain: rpc.chain().to_owned(),
                reason: format!("the node's block {hash} hashes to {computed}"),
            });
        }
        Ok(lite)
    }

    /// Like [`NearHead::bootstrap`], and also trusts the node's ordered producer list of the head's epoch
    /// (`EXPERIMENTAL_validators_ordered`), so blocks of the current epoch verify at once.
    pub async fn bootstrap_with_epoch_producers(rpc: NearRpc) -> Result<Self, NearVerifyError> {
        let mut head = Self::bootstrap(rpc).await?;
        head.learn_epoch_producers().await?;
        Ok(head)
    }

    /// Takes the node's ordered producer list of the head's epoch (`EXPERIMENTAL_validators_ordered`) as the
    /// epoch's producers, so blocks of the head's own epoch verify. Nothing in the head commits to that list: like
    /// the bootstrapped head itself, it is trusted on first use.
    pub async fn learn_epoch_producers(&mut self) -> Result<(), NearVerifyError> {
        let producers = self
            .rpc
            .validators_ordered(self.trusted.head_hash())
            .await?;
        if producers.is_empty() {
            return Err(NearVerifyError::Inconsistent {
                chain: self.rpc.chain().to_owned(),
                reason: "the node lists no block producers for the head's epoch".to_owned(),
            });
        }
        self.trusted.epoch_bps = producers;
        Ok(())
    }

    async fn latest_light_client_block(
        rpc: &NearRpc,
    ) -> Result<LightClientBlockView, NearVerifyError> {
        let final_block = rpc.block(None).await?;
        rpc.next_light_client_block(final_block.header.prev_hash)
            .await?
            .ok_or_else(|| NearVerifyError::Inconsistent {
                chain: rpc.chain().to_owned(),
                reason: "no light-client block after the final block's parent".to_owned(),
            })
    }

    /// The trusted state.
    pub fn trusted(&self) -> &TrustedNear {
        &self.trusted
    }

    /// Asks for the next light-client block after the head and takes it if it verifies. Returns `None` when the
    /// node has nothing newer. A block that fails verification leaves the head unchanged.
    pub async fn advance(&mut self) -> Result<Option<Advanced>, NearVerifyError> {
        Ok(self
            .advance_with_block()
            .await?
            .map(|(advanced, _)| advanced))
    }

    /// Like [`NearHead::advance`], also returning the light-client block the head moved to (what a NEAR client
    /// on a counterparty is updated with).
    pub async fn advance_with_block(
        &mut self,
    ) -> Result<Option<(Advanced, LightClientBlockView)>, NearVerifyError> {
        let Some(block) = self
            .rpc
            .next_light_client_block(self.trusted.head_hash())
            .await?
        else {
            return Ok(None);
        };
        if block.inner_lite.height == self.trusted.head.inner_lite.height {
            return Ok(None);
        }
        let same_epoch = block.inner_lite.epoch_id == self.trusted.head.inner_lite.epoch_id;
        if block.inner_lite.epoch_id == self.trusted.head.inner_lite.next_epoch_id
            && self.trusted.next_epoch_bps.is_none()
        {
            // The head's header commits to its next epoch's producers (`next_bp_hash`), which the light client
            // checks: ask the node for them when no block of the head's epoch has brought them.
            let hash = lite_block_hash(&lite(&block));
            match self.rpc.validators_ordered(hash).await {
                // A list the head does not commit to is not kept (the block is then refused as unverifiable).
                Ok(producers)
                    if bps_hash(&producers) == self.trusted.head.inner_lite.next_bp_hash =>
                {
                    self.trusted.next_epoch_bps = Some(producers)
                }
                Ok(_) => tracing::warn!(
                    chain = self.rpc.chain(),
                    "the node's producer list for the next epoch is not the one the head commits to"
                ),
                Err(e) => {
                    tracing::debug!(chain = self.rpc.chain(), error = %e, "no producer list for the next epoch")
                }
            }
        }
        if same_epoch && self.trusted.epoch_bps.is_empty() {
            // A bootstrapped head knows its next epoch's producers only: nothing newer is checkable yet.
            tracing::debug!(
                chain = self.rpc.chain(),
                height = block.inner_lite.height,
                "waiting for the next epoch to verify light-client blocks"
            );
            return Ok(None);
        }
        // Checking a block verifies an ed25519 approval per block producer: off the async threads.
        let (trusted, checked) = (self.trusted.clone(), block.clone());
        let advanced = tokio::task::spawn_blocking(move || trusted.advance(&checked))
            .await
            .map_err(|e| NearVerifyError::Inconsistent {
                chain: self.rpc.chain().to_owned(),
                reason: format!("the light-client verification task failed: {e}"),
            })??;
        self.trusted = advanced.trusted.clone();
        Ok(Some((advanced, block)))
    }

    /// Proves that a transaction or receipt outcome is in the chain the head commits to (`light_client_proof`
    /// against the head, checked by `verify_execution_proof`), and returns the proven outcome.
    pub async fn verify_outcome(
        &self,
        id: near_primitives::types::TransactionOrReceiptId,
    ) -> Result<near_primitives::views::ExecutionOutcomeWithIdView, NearVerifyError> {
        let proof = self
            .rpc
            .light_client_proof(id, self.trusted.head_hash())
            .await?;
        verify_execution_proof(&proof, &self.trusted.head.inner_lite.block_merkle_root)?;
        Ok(proof.outcome_proof)
    }

    /// Advances until the head is at least at `height`, or the node has nothing newer.
    pub async fn advance_to(&mut self, height: u64) -> Result<&TrustedNear, NearVerifyError> {
        while self.trusted.head.inner_lite.height < height {
            if self.advance().await?.is_none() {
                break;
            }
        }
        Ok(&self.trusted)
    }
}

fn lite(block: &LightClientBlockView) -> near_primitives::views::LightClientBlockLiteView {
    near_primitives::views::LightClientBlockLiteView {
        prev_block_hash: block.prev_block_hash,
        inner_rest_hash: block.inner_rest_hash,
        inner_lite: block.inner_lite.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::endpoint::path;
    use crate::chain::near::light_client::sha256;
    use crate::chain::near::test_rpc::{block, serve, Reply, TestRpc};
    use crate::chain::near::trie::test_support::build;
    use crate::chain::near::trie::{contract_data_key, nibbles};
    use base64::Engine;
    use near_primitives::views::{BlockHeaderInnerLiteView, LightClientBlockLiteView};
    use serde_json::{json, Value};
    use std::collections::HashMap;
    use std::sync::Arc;

    const IBC: &str = "ibc.test.near";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// The contract state after block 41: one packet commitment and a client state.
    fn state(commitment: &[u8]) -> (CryptoHash, Vec<Vec<u8>>) {
        let mut entries = vec![
            (
                nibbles(&contract_data_key(
                    IBC,
                    path::commitment("transfer", "channel-0", 1).as_bytes(),
                )),
                commitment.to_vec(),
            ),
            (
                nibbles(&contract_data_key(
                    IBC,
                    path::client_state("07-tendermint-0").as_bytes(),
                )),
                b"client".to_vec(),
            ),
        ];
        entries.sort();
        let mut store = HashMap::new();
        let root = build(&entries, &mut store);
        (root, store.into_values().collect())
    }

    /// A node at head 42 (parent 41) whose view_state answers from `served` while its block 42 commits to `real`.
    async fn node(
        real: CryptoHash,
        served: (CryptoHash, Vec<Vec<u8>>),
        served_value: Vec<u8>,
    ) -> TestRpc {
        let (_, nodes) = served;
        serve(Arc::new(move |method: &str, params: &Value| match method {
            "block" => Reply::Result(block(42, 41, sha256(b"head"), real)),
            "query" if params["request_type"] == "view_state" => {
                assert_eq!(params["block_id"], 41);
                assert_eq!(params["include_proof"], true);
                let key = base64::engine::general_purpose::STANDARD
                    .decode(params["prefix_base64"].as_str().expect("prefix"))
                    .expect("b64");
                Reply::Result(json!({
                    "values": [{"key": b64(&key), "value": b64(&served_value)}],
                    "proof": nodes.iter().map(|n| b64(n)).collect::<Vec<_>>(),
                    "block_height": 41, "block_hash": sha256(b"41").to_string(),
                }))
            }
            "query" => Reply::Result(json!({
                "result": b"[3,1,2]".to_vec(), "logs": [],
                "block_height": 42, "block_hash": sha256(b"head").to_string(),
            })),
            other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
        }))
        .await
    }

    fn trusted(state_root: CryptoHash) -> TrustedNear {
        let head = LightClientBlockLiteView {
            prev_block_hash: sha256(b"41"),
            inner_rest_hash: sha256(b"rest"),
            inner_lite: BlockHeaderInnerLiteView {
                height: 42,
                epoch_id: CryptoHash::default(),
                next_epoch_id: sha256(b"next"),
                prev_state_root: sha256(&state_root.0),
                outcome_root: CryptoHash::default(),
                timestamp: 1,
                timestamp_nanosec: 1,
                next_bp_hash: CryptoHash::default(),
                block_merkle_root: CryptoHash::default(),
            },
        };
        TrustedNear::new(head, vec![], None)
    }

    fn endpoint(url: &str) -> NearEndpoint {
        NearEndpoint::new(NearRpc::new("near-0", url), IBC.parse().expect("id"))
    }

    #[tokio::test]
    async fn a_commitment_is_read_with_a_proof_checked_against_the_trusted_head() {
        let commitment = [9u8; 32];
        let (root, nodes) = state(&commitment);
        let rpc = node(root, (root, nodes), commitment.to_vec()).await;
        let path = path::commitment("transfer", "channel-0", 1);
        let proven = endpoint(&rpc.url)
            .query_verified(&path, &trusted(root))
            .await
            .expect("verified");
        assert_eq!(proven.value, commitment);
        assert_eq!(proven.height, 41);
        // The proof travels with the value and checks again wherever it is carried.
        let proof =
            NearStateProof::from_bytes(proven.proof.as_deref().expect("proof")).expect("decodes");
        verify_state_proof(
            &sha256(&root.0),
            IBC,
            path.as_bytes(),
            Some(&commitment),
            &proof,
        )
        .expect("checks");
    }

    #[tokio::test]
    async fn a_node_serving_another_state_is_caught() {
        let (root, _) = state(&[9u8; 32]);
        let forged = state(&[8u8; 32]);
        // The node answers with a consistent-looking forged state, but its block (and the trusted head) commit to
        // the real root.
        let rpc = node(root, forged, vec![8u8; 32]).await;
        let path = path::commitment("transfer", "channel-0", 1);
        let err = endpoint(&rpc.url)
            .query_verified(&path, &trusted(root))
            .await
            .expect_err("forged");
        assert!(err.to_string().contains("no chunk state root"), "{err}");
        // A node whose block also lies is refused by the head's own state root.
        let (forged_root, forged_nodes) = state(&[8u8; 32]);
        let rpc = node(forged_root, (forged_root, forged_nodes), vec![8u8; 32]).await;
        let err = endpoint(&rpc.url)
            .query_verified(&path, &trusted(root))
            .await
            .expect_err("forged block");
        assert!(
            matches!(
                err,
                NearVerifyError::Proof(StateProofError::ShardRoot { .. })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_recorded_outcome_proof_is_checked_against_the_head() {
        let proof: Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/fixtures/near-light-client/old.json"),
            )
            .expect("fixture"),
        )
        .expect("json");
        let id: near_primitives::types::TransactionOrReceiptId = serde_json::from_value(json!({
            "type": "transaction",
            "transaction_hash": proof["outcome_proof"]["id"],
            "sender_id": "relayer.near",
        }))
        .expect("id");
        let served = proof.clone();
        let rpc = serve(Arc::new(move |method: &str, params: &Value| {
            assert_eq!(method, "light_client_proof");
            assert_eq!(params["type"], "transaction");
            Reply::Result(served.clone())
        }))
        .await;
        // The mainnet head the recorded proof was asked against, as far as the proof needs it.
        let mut head = trusted(CryptoHash::default());
        head.head.inner_lite.block_merkle_root = "WWrLWbWHwSmjtTn5oBZPYgRCuCYn6fkYVa4yhPWNK4L"
            .parse()
            .expect("hash");
        let near = NearHead::new(NearRpc::new("near-mainnet", &rpc.url), head.clone());
        let outcome = near.verify_outcome(id.clone()).await.expect("proven");
        assert_eq!(
            outcome.id.to_string(),
            proof["outcome_proof"]["id"].as_str().expect("id")
        );
        // Against another head the same answer is refused.
        head.head.inner_lite.block_merkle_root = sha256(b"another head");
        let near = NearHead::new(NearRpc::new("near-mainnet", &rpc.url), head);
        assert!(matches!(
            near.verify_outcome(id).await,
            Err(NearVerifyError::Outcome(
                ExecutionProofError::BlockRoot { .. }
            ))
        ));
    }

    fn recorded_block(name: &str) -> Value {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/near-light-client")
            .join(name);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        doc["body"].clone()
    }

    #[tokio::test]
    async fn a_lying_node_cannot_move_the_head() {
        let first: LightClientBlockView =
            serde_json::from_value(recorded_block("main_0.json")).expect("view");
        let genuine = recorded_block("main_1.json");
        let mut forged = genuine.clone();
        // Another state root in the header: the producers' signatures no longer match it.
        forged["inner_lite"]["prev_state_root"] = json!(sha256(b"forged state").to_string());
        let lie = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let lying = lie.clone();
        let rpc = serve(Arc::new(move |method: &str, _: &Value| {
            assert_eq!(method, "next_light_client_block");
            if lying.load(std::sync::atomic::Ordering::SeqCst) {
                Reply::Result(forged.clone())
            } else {
                Reply::Result(genuine.clone())
            }
        }))
        .await;
        let trusted = TrustedNear::new(lite(&first), Vec::new(), first.next_bps.clone());
        let mut head = NearHead::new(NearRpc::new("near-mainnet", &rpc.url), trusted);
        let before = head.trusted().head.inner_lite.height;
        assert!(matches!(
            head.advance().await,
            Err(NearVerifyError::LightClient(
                LightClientError::InvalidSignature { .. }
            ))
        ));
        assert_eq!(
            head.trusted().head.inner_lite.height,
            before,
            "the head did not move"
        );
        lie.store(false, std::sync::atomic::Ordering::SeqCst);
        let step = head.advance().await.expect("verifies").expect("a step");
        assert!(step.epoch_changed);
        assert!(head.trusted().head.inner_lite.height > before);
    }

    #[tokio::test]
    async fn listings_and_raw_reads_go_through_the_contract() {
        let (root, nodes) = state(&[9u8; 32]);
        let rpc = node(root, (root, nodes), vec![9u8; 32]).await;
        let ep = endpoint(&rpc.url);
        assert_eq!(
            ep.packet_commitments("transfer", "channel-0")
                .await
                .expect("list"),
            vec![3, 1, 2]
        );
        assert_eq!(
            ep.unreceived_acks("transfer", "channel-0", &[1, 2, 4])
                .await
                .expect("acks"),
            vec![1, 2]
        );
        assert_eq!(
            ep.client_state("07-tendermint-0").await.expect("state"),
            vec![3, 1, 2]
        );
        let proven = ep
            .query_ibc(
                &path::commitment("transfer", "channel-0", 1),
                QueryHeight::At(41),
                true,
            )
            .await
            .expect("read");
        assert_eq!(proven.value, vec![9u8; 32]);
        let proof =
            NearStateProof::from_bytes(proven.proof.as_deref().expect("proof")).expect("decodes");
        assert_eq!(proof.state_root, root);
        let requests = rpc.requests.lock().expect("lock");
        let views: Vec<&str> = requests
            .iter()
            .filter_map(|(_, p)| p["method_name"].as_str())
            .collect();
        assert_eq!(
            views,
            vec![
                "get_packet_commitment_sequences",
                "get_packet_commitment_sequences",
                "get_client_state"
            ]
        );
        let args = requests
            .iter()
            .find(|(_, p)| p["method_name"] == "get_client_state")
            .map(|(_, p)| p["args_base64"].as_str().expect("args").to_owned())
            .expect("call");
        let args: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(args)
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(args, json!({"client_id": "07-tendermint-0"}));
    }
}
