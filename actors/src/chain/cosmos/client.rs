//! Messages that create and keep up to date a Tendermint IBC client of this chain hosted on a counterparty: a
//! verified light block becomes the client's first consensus state, and each verified header one
//! `MsgUpdateClient`, trusted from the header before it.

use std::time::Duration;

use ibc_proto::google::protobuf::{Any, Duration as PbDuration, Timestamp};
use ibc_proto::ibc::core::client::v1::{Height, MsgCreateClient, MsgUpdateClient};
use ibc_proto::ibc::core::commitment::v1::MerkleRoot;
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState, Fraction, Header};
use ibc_proto::ics23::ProofSpec;
use prost::Message;
use tendermint_light_client_verifier::types::LightBlock;

/// Type URL of a Tendermint client header.
pub const TM_HEADER_TYPE_URL: &str = "/ibc.lightclients.tendermint.v1.Header";
/// Type URL of `MsgUpdateClient`.
pub const UPDATE_CLIENT_TYPE_URL: &str = "/ibc.core.client.v1.MsgUpdateClient";

/// Type URL of `MsgCreateClient`.
pub const CREATE_CLIENT_TYPE_URL: &str = "/ibc.core.client.v1.MsgCreateClient";
/// Type URL of a Tendermint client state.
pub const TM_CLIENT_STATE_TYPE_URL: &str = "/ibc.lightclients.tendermint.v1.ClientState";
/// Type URL of a Tendermint consensus state.
pub const TM_CONSENSUS_STATE_TYPE_URL: &str = "/ibc.lightclients.tendermint.v1.ConsensusState";

/// The parameters of a new Tendermint client.
#[derive(Debug, Clone)]
pub struct ClientParams {
    /// Share of the trusted validators' power that must sign a skipped-to header, as (numerator, denominator).
    pub trust_level: (u64, u64),
    /// How long a consensus state stays trusted; below the unbonding period.
    pub trusting_period: Duration,
    /// The chain's unbonding period.
    pub unbonding_period: Duration,
    /// Tolerated clock difference between the chains.
    pub max_clock_drift: Duration,
    /// How the chain's state proofs are built, one spec per proof level.
    pub proof_specs: Vec<ProofSpec>,
}

fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// The consensus state a client stores for a verified light block: its time, app hash and next validators.
pub fn consensus_state(block: &LightBlock) -> ConsensusState {
    let header = &block.signed_header.header;
    let time: Timestamp = header.time.into();
    ConsensusState {
        timestamp: Some(time),
        root: Some(MerkleRoot {
            hash: header.app_hash.as_bytes().to_vec(),
        }),
        next_validators_hash: header.next_validators_hash.as_bytes().to_vec(),
    }
}

/// `MsgCreateClient` for a Tendermint client of this chain whose root of trust is `root`, a light block relayd
/// verified (or the operator trusts).
pub fn create_client_msg(root: &LightBlock, params: &ClientParams, signer: &str) -> Any {
    let chain_id = root.signed_header.header.chain_id.as_str();
    // The deprecated allow_update fields must still be filled; false is what ibc-go and ibc-rs expect.
    #[allow(deprecated)]
    let client_state = ClientState {
        chain_id: chain_id.to_owned(),
        trust_level: Some(Fraction {
            numerator: params.trust_level.0,
            denominator: params.trust_level.1,
        }),
        trusting_period: Some(pb_duration(params.trusting_period)),
        unbonding_period: Some(pb_duration(params.unbonding_period)),
        max_clock_drift: Some(pb_duration(params.max_clock_drift)),
        // 0-0 means "not frozen"; ibc-rs refuses a client state without it.
        frozen_height: Some(Height::default()),
        latest_height: Some(Height {
            revision_number: revision_of(chain_id),
            revision_height: root.height().value(),
        }),
        proof_specs: params.proof_specs.clone(),
        upgrade_path: vec!["upgrade".into(), "upgradedIBCState".into()],
        allow_update_after_expiry: false,
        allow_update_after_misbehaviour: false,
    };
    let msg = MsgCreateClient {
        client_state: Some(Any {
            type_url: TM_CLIENT_STATE_TYPE_URL.to_owned(),
            value: client_state.encode_to_vec(),
        }),
        consensus_state: Some(Any {
            type_url: TM_CONSENSUS_STATE_TYPE_URL.to_owned(),
            value: consensus_state(root).encode_to_vec(),
        }),
        signer: signer.to_owned(),
    };
    Any {
        type_url: CREATE_CLIENT_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// The revision encoded in a chain id's `-N` suffix (ICS-02), 0 without one.
fn revision_of(chain_id: &str) -> u64 {
    relayd_messages::ChainId::new(chain_id).map_or(0, |id| id.revision_number())
}

/// One `MsgUpdateClient` for `client_id`, moving it from `trusted` (a height the client already has) to `target`.
/// The client checks `target` against the validators that `trusted` named as next, exactly as relayd's light
/// client did before calling this.
pub fn update_client_msg(
    client_id: &str,
    trusted: &LightBlock,
    target: &LightBlock,
    signer: &str,
) -> Any {
    let revision = revision_of(target.signed_header.header.chain_id.as_str());
    let header = Header {
        signed_header: Some(target.signed_header.clone().into()),
        validator_set: Some(target.validators.clone().into()),
        trusted_height: Some(Height {
            revision_number: revision,
            revision_height: trusted.height().value(),
        }),
        trusted_validators: Some(trusted.next_validators.clone().into()),
    };
    let msg = MsgUpdateClient {
        client_id: client_id.to_owned(),
        client_message: Some(Any {
            type_url: TM_HEADER_TYPE_URL.to_owned(),
            value: header.encode_to_vec(),
        }),
        signer: signer.to_owned(),
    };
    Any {
        type_url: UPDATE_CLIENT_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// The updates that carry a client from `trusted` through each of `headers` (as `headers_to` returns them).
pub fn update_client_msgs(
    client_id: &str,
    trusted: &LightBlock,
    headers: &[LightBlock],
    signer: &str,
) -> Vec<Any> {
    let mut from = trusted;
    headers
        .iter()
        .map(|target| {
            let msg = update_client_msg(client_id, from, target, signer);
            from = target;
            msg
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::revision_of;

    #[test]
    fn revisions_follow_the_chain_id_suffix() {
        assert_eq!(revision_of("ibc-1"), 1);
        assert_eq!(revision_of("cosmoshub-4"), 4);
        assert_eq!(revision_of("chain_A"), 0);
        assert_eq!(revision_of("test-01"), 0);
    }
}
