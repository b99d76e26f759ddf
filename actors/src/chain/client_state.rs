//! Reading hosted IBC clients: the client and consensus states every host stores as protobuf `Any`, decoded
//! into what relayd needs to build and check datagrams.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState};
use prost::Message;
use relayd_messages::{ClientId, ClientSummary};

use crate::chain::near::header::{
    RawNearClientState, RawNearConsensusState, NEAR_CLIENT_STATE_TYPE_URL,
    NEAR_CONSENSUS_STATE_TYPE_URL,
};

/// Type URL of a Tendermint client state.
pub const TM_CLIENT_STATE: &str = "/ibc.lightclients.tendermint.v1.ClientState";
/// Type URL of a Tendermint consensus state.
pub const TM_CONSENSUS_STATE: &str = "/ibc.lightclients.tendermint.v1.ConsensusState";

/// Why a stored client could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client {client}: {reason}")]
pub struct ClientStateError {
    /// The client.
    pub client: String,
    /// What is wrong.
    pub reason: String,
}

/// Decodes a stored client state (`Any` bytes) into a summary.
pub fn summarize(client_id: &ClientId, raw: &[u8]) -> Result<ClientSummary, ClientStateError> {
    let err = |reason: String| ClientStateError {
        client: client_id.to_string(),
        reason,
    };
    if raw.is_empty() {
        return Err(err("no such client".into()));
    }
    let any = Any::decode(raw).map_err(|e| err(format!("not an Any: {e}")))?;
    if any.type_url == NEAR_CLIENT_STATE_TYPE_URL {
        return near_summary(client_id, &any.value).map_err(err);
    }
    if any.type_url != TM_CLIENT_STATE {
        return Err(err(format!("unsupported client type {}", any.type_url)));
    }
    let cs = ClientState::decode(any.value.as_slice())
        .map_err(|e| err(format!("undecodable Tendermint client state: {e}")))?;
    let latest = cs
        .latest_height
        .ok_or_else(|| err("client state without latest height".into()))?;
    let frozen = cs
        .frozen_height
        .is_some_and(|h| h.revision_height != 0 || h.revision_number != 0);
    Ok(ClientSummary {
        client_id: client_id.clone(),
        tracked_chain: cs.chain_id,
        latest_height: latest.revision_height,
        frozen,
        trusting_period_secs: cs
            .trusting_period
            .map_or(0, |d| u64::try_from(d.seconds).unwrap_or(0)),
        proof_specs: cs.proof_specs.iter().map(Message::encode_to_vec).collect(),
        anchor: None,
        consensus_time_ns: None,
    })
}

/// What relayd reads from a stored consensus state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusView {
    /// The app hash (commitment root) and the next validators hash.
    pub anchor: (Vec<u8>, Vec<u8>),
    /// The header's block time, ns since the epoch.
    pub time_ns: Option<u64>,
}

/// Decodes a consensus state (`Any` bytes).
pub fn consensus_view(raw: &[u8]) -> Result<ConsensusView, String> {
    let any = Any::decode(raw).map_err(|e| format!("not an Any: {e}"))?;
    if any.type_url == NEAR_CONSENSUS_STATE_TYPE_URL {
        return near_consensus_view(&any.value);
    }
    if any.type_url != TM_CONSENSUS_STATE {
        return Err(format!("unsupported consensus state type {}", any.type_url));
    }
    let cs = ConsensusState::decode(any.value.as_slice())
        .map_err(|e| format!("undecodable Tendermint consensus state: {e}"))?;
    let root = cs.root.map(|r| r.hash).unwrap_or_default();
    let time_ns = cs.timestamp.and_then(|t| {
        let secs = u64::try_from(t.seconds).ok()?;
        let nanos = u64::try_from(t.nanos).ok()?;
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)
    });
    Ok(ConsensusView {
        anchor: (root, cs.next_validators_hash),
        time_ns,
    })
}

/// A `12-near` client state: NEAR client states name no chain (the tracked chain is left empty) and carry no
/// proof specs (NEAR proofs are trie proofs).
fn near_summary(client_id: &ClientId, value: &[u8]) -> Result<ClientSummary, String> {
    let cs = RawNearClientState::decode(value)
        .map_err(|e| format!("undecodable NEAR client state: {e}"))?;
    let frozen = cs
        .frozen_height
        .is_some_and(|h| h.revision_height != 0 || h.revision_number != 0);
    Ok(ClientSummary {
        client_id: client_id.clone(),
        tracked_chain: String::new(),
        latest_height: cs.latest_height,
        frozen,
        trusting_period_secs: cs.trusting_period / 1_000_000_000,
        proof_specs: Vec::new(),
        anchor: None,
        consensus_time_ns: None,
    })
}

/// Where the nanosecond timestamp sits in the borsh of a NEAR light-client block: after the previous block hash
/// and the next block's inner hash (32 bytes each), then in the inner lite header after the height (8) and four
/// hashes (epoch id, next epoch id, prev_state_root, outcome_root).
const NEAR_TIMESTAMP_AT: usize = 32 + 32 + 8 + 4 * 32;
/// Where `next_bp_hash` sits: after the timestamp.
const NEAR_NEXT_BP_HASH_AT: usize = NEAR_TIMESTAMP_AT + 8;
/// Where `prev_state_root` sits: after the height and the two epoch ids.
const NEAR_STATE_ROOT_AT: usize = 32 + 32 + 8 + 2 * 32;

/// A `12-near` consensus state: its root is the header's `prev_state_root` and its time the header's.
fn near_consensus_view(value: &[u8]) -> Result<ConsensusView, String> {
    let cs = RawNearConsensusState::decode(value)
        .map_err(|e| format!("undecodable NEAR consensus state: {e}"))?;
    let block = cs
        .header
        .map(|h| h.light_client_block)
        .ok_or("NEAR consensus state without a header")?;
    let field = |at: usize, len: usize| {
        block
            .get(at..at + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("NEAR light-client block of {} bytes", block.len()))
    };
    let time = field(NEAR_TIMESTAMP_AT, 8)?;
    let time_ns = time.as_slice().try_into().ok().map(u64::from_le_bytes);
    Ok(ConsensusView {
        anchor: (
            field(NEAR_STATE_ROOT_AT, 32)?,
            field(NEAR_NEXT_BP_HASH_AT, 32)?,
        ),
        time_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibc_proto::ibc::core::client::v1::Height;

    #[test]
    fn reads_near_client_and_consensus_states() {
        use crate::chain::near::header::{light_client_block_bytes, RawNearHeader};
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/near-light-client/main_0.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let block: near_primitives::views::LightClientBlockView =
            serde_json::from_value(doc["body"].clone()).unwrap();
        let id = ClientId::new("12-near-0").unwrap();
        let mut state = RawNearClientState {
            trusting_period: 3_600_000_000_000,
            frozen_height: None,
            latest_height: block.inner_lite.height,
            latest_timestamp: block.inner_lite.timestamp_nanosec,
            upgrade_commitment_prefix: vec![],
            upgrade_key: vec![],
        };
        let encoded = |state: &RawNearClientState| {
            Any {
                type_url: NEAR_CLIENT_STATE_TYPE_URL.into(),
                value: state.encode_to_vec(),
            }
            .encode_to_vec()
        };
        let s = summarize(&id, &encoded(&state)).unwrap();
        assert_eq!(
            (s.latest_height, s.frozen, s.trusting_period_secs),
            (block.inner_lite.height, false, 3600)
        );
        state.frozen_height = Some(Height {
            revision_number: 0,
            revision_height: 1,
        });
        assert!(summarize(&id, &encoded(&state)).unwrap().frozen);

        let consensus = RawNearConsensusState {
            current_bps: vec![],
            header: Some(RawNearHeader {
                light_client_block: light_client_block_bytes(&block),
                prev_state_root_of_chunks: vec![],
            }),
            next_bps: vec![0],
        };
        let raw = Any {
            type_url: NEAR_CONSENSUS_STATE_TYPE_URL.into(),
            value: consensus.encode_to_vec(),
        }
        .encode_to_vec();
        let view = consensus_view(&raw).unwrap();
        assert_eq!(view.time_ns, Some(block.inner_lite.timestamp_nanosec));
        assert_eq!(view.anchor.0, block.inner_lite.prev_state_root.0.to_vec());
        assert_eq!(view.anchor.1, block.inner_lite.next_bp_hash.0.to_vec());
        // A truncated block is refused, not read past its end.
        let short = RawNearConsensusState {
            header: Some(RawNearHeader {
                light_client_block: vec![0; 100],
                prev_state_root_of_chunks: vec![],
            }),
            ..consensus
        };
        let raw = Any {
            type_url: NEAR_CONSENSUS_STATE_TYPE_URL.into(),
            value: short.encode_to_vec(),
        }
        .encode_to_vec();
        assert!(consensus_view(&raw).is_err());
    }

    fn encoded(cs: &ClientState) -> Vec<u8> {
        Any {
            type_url: TM_CLIENT_STATE.into(),
            value: cs.encode_to_vec(),
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_height_frozenness_and_specs() {
        let id = ClientId::new("07-tendermint-0").unwrap();
        let mut cs = ClientState {
            chain_id: "ibc-0".into(),
            latest_height: Some(Height {
                revision_number: 0,
                revision_height: 42,
            }),
            proof_specs: vec![ics23::iavl_spec()],
            ..Default::default()
        };
        let s = summarize(&id, &encoded(&cs)).unwrap();
        assert_eq!(
            (s.latest_height, s.frozen, s.proof_specs.len()),
            (42, false, 1)
        );
        assert_eq!(s.tracked_chain, "ibc-0");
        cs.frozen_height = Some(Height {
            revision_number: 0,
            revision_height: 40,
        });
        assert!(summarize(&id, &encoded(&cs)).unwrap().frozen);
    }

    #[test]
    fn refuses_absent_and_foreign_clients() {
        let id = ClientId::new("07-tendermint-0").unwrap();
        assert!(summarize(&id, &[])
            .unwrap_err()
            .reason
            .contains("no such client"));
        let other = Any {
            type_url: "/ibc.lightclients.solomachine.v3.ClientState".into(),
            value: vec![],
        }
        .encode_to_vec();
        assert!(summarize(&id, &other)
            .unwrap_err()
            .reason
            .contains("unsupported"));
    }
}
