//! A counterparty's record of this chain, checked against this chain's own blocks.
//!
//! In ConnOpenTry and ConnOpenAck, ibc-rs asks the host for its own consensus state at the height the counterparty's
//! client claims, and verifies the counterparty stored exactly that. A Cosmos chain's record of itself has the
//! shape a Tendermint client keeps, so the Cosmos devnet answers from ibc-testkit's host records. A `12-near` client
//! on a Cosmos chain keeps a different shape (the NEAR header it was updated with, its chunk roots and block
//! producers), which the NEAR chain cannot rebuild from its height alone: it depends on which light-client block a
//! relayer sent. So the NEAR devnet reads the value the counterparty claims to hold from the message's proof (an
//! ICS-23 existence proof carries its leaf's value), checks every field of it that says something about this
//! chain against the block at that height — the height, the timestamp, the next block producers' hash, the chunks'
//! state roots and the block's `prev_state_root` made from them — and answers it as its own consensus state when
//! all agree. ibc-rs then verifies the counterparty really stores those bytes, as it does for Tendermint.
//!
//! near-ibc itself performs no such check (its `host_consensus_state` answers an error and its ibc-rs fork skips
//! the comparison); ibc-go 9 removed the self-consensus comparison altogether. The devnet keeps a check of its own
//! so a counterparty's false record of NEAR is still refused.

use ibc::core::client::types::Height;
use ibc::core::connection::types::msgs::ConnectionMsg;
use ibc::core::handler::types::msgs::MsgEnvelope;
use ibc::core::host::types::error::HostError;
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ibc_testkit::testapp::ibc::clients as testkit;
use near_primitives::hash::CryptoHash;
use near_primitives::merkle::merklize;
use prost::Message;

use crate::clients::AnyConsensusState;
use crate::near_client::{NearConsensusState, NEAR_CONSENSUS_STATE_TYPE_URL};

/// A consensus state of this chain a message claims its counterparty stores, as the proof's leaf carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedSelfState {
    /// The height of this chain the record is for.
    pub height: Height,
    /// The stored value, exactly as the proof commits to it.
    pub value: Any,
}

/// The records of this chain that `env` (a ConnOpenTry or ConnOpenAck) proves its counterparty holds; empty for
/// any other message, or when the proof carries no readable leaf (ibc-rs's own verification then refuses it).
pub fn claimed_self_states(env: &MsgEnvelope) -> Vec<ClaimedSelfState> {
    let (height, proof) = match env {
        MsgEnvelope::Connection(ConnectionMsg::OpenTry(msg)) => (
            msg.consensus_height_of_b_on_a,
            msg.proof_consensus_state_of_b_on_a.as_ref(),
        ),
        MsgEnvelope::Connection(ConnectionMsg::OpenAck(msg)) => (
            msg.consensus_height_of_a_on_b,
            msg.proof_consensus_state_of_a_on_b.as_ref(),
        ),
        _ => return Vec::new(),
    };
    leaf_value(proof)
        .and_then(|bytes| Any::decode(bytes.as_slice()).ok())
        .map(|value| ClaimedSelfState { height, value })
        .into_iter()
        .collect()
}

/// The value of the first (innermost) existence proof in an ICS-23 merkle proof.
fn leaf_value(proof: &[u8]) -> Option<Vec<u8>> {
    let merkle = MerkleProof::decode(proof).ok()?;
    match merkle.proofs.into_iter().next()?.proof? {
        ics23::commitment_proof::Proof::Exist(exist) => Some(exist.value),
        _ => None,
    }
}

/// This chain's consensus state at `height` for a connection handshake: the counterparty's claimed NEAR-shaped
/// record when one is claimed for that height and agrees with `own` (the host's record of its block at that
/// height), else `own` itself. A claimed record that disagrees is refused with what differs.
pub fn host_consensus_state(
    height: &Height,
    own: testkit::AnyConsensusState,
    claimed: &[ClaimedSelfState],
) -> Result<AnyConsensusState, HostError> {
    let own = match own {
        testkit::AnyConsensusState::Tendermint(cs) => cs,
        testkit::AnyConsensusState::Mock(_) => {
            return Err(HostError::invalid_state(format!(
                "the host's record of height {height} is a mock consensus state"
            )))
        }
    };
    let Some(claim) = claimed.iter().find(|c| c.height == *height) else {
        return Ok(AnyConsensusState::Tendermint(own));
    };
    if claim.value.type_url != NEAR_CONSENSUS_STATE_TYPE_URL {
        return Ok(AnyConsensusState::Tendermint(own));
    }
    let near = NearConsensusState::try_from(claim.value.clone()).map_err(|e| {
        HostError::invalid_state(format!(
            "the counterparty's record of this chain at {height} does not decode: {e}"
        ))
    })?;
    // Only a record that encodes back to the very bytes proven can stand for them.
    if Any::from(near.clone()) != claim.value {
        return Err(HostError::invalid_state(format!(
            "the counterparty's record of this chain at {height} is not in canonical form"
        )));
    }
    let inner = own.inner();
    let own_root: [u8; 32] = inner.root.as_bytes().try_into().map_err(|_| {
        HostError::invalid_state(format!("the host's root at {height} is not 32 bytes"))
    })?;
    let own_time = inner.timestamp.unix_timestamp_nanos();
    let header = near.header();
    let lite = &header.block.inner_lite;
    let mismatch = if lite.height != height.revision_height() {
        Some(format!("its header is at height {}", lite.height))
    } else if i128::from(lite.timestamp) != own_time {
        Some(format!(
            "its timestamp is {} ns, the block's {own_time} ns",
            lite.timestamp
        ))
    } else if lite.next_bp_hash.0.as_slice() != inner.next_validators_hash.as_bytes() {
        Some("its next block producers' hash differs from the block's".to_owned())
    } else if header.chunk_roots != [CryptoHash(own_root)] {
        Some("its chunk state roots differ from the block's".to_owned())
    } else if lite.prev_state_root != merklize(&header.chunk_roots).0 {
        Some("its prev_state_root is not made from its chunk roots".to_owned())
    } else {
        None
    };
    match mismatch {
        Some(what) => Err(HostError::invalid_state(format!(
            "the counterparty's record of this chain at {height} is false: {what}"
        ))),
        None => Ok(AnyConsensusState::Near(near)),
    }
}

#[cfg(test)]
#[path = "self_record_tests.rs"]
mod tests;
