//! Reading hosted IBC clients: the client and consensus states every host stores as protobuf `Any`, decoded
//! into what relayd needs to build and check datagrams.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState};
use prost::Message;
use relayd_messages::{ClientId, ClientSummary};

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

#[cfg(test)]
mod tests {
    use super::*;
    use ibc_proto::ibc::core::client::v1::Height;

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
