//! The connection and channel handshake datagrams, built from the end being proven (`from`) for the end that
//! receives them (`to`). Which fields ibc-rs 0.57 checks, and against what, is noted where it matters.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::client::v1::Height as ProtoHeight;
use ibc_proto::ibc::core::commitment::v1::MerklePrefix;
use ibc_proto::ibc::core::connection::v1 as conn;
use prost::Message;
use relayd_messages::Datagram;

/// A height with its revision.
pub fn height(revision: u64, h: u64) -> ProtoHeight {
    ProtoHeight {
        revision_number: revision,
        revision_height: h,
    }
}

fn any<M: Message>(type_url: &str, msg: &M) -> Datagram {
    Datagram {
        type_url: type_url.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// The proofs a handshake datagram carries, all taken at the same height of `from` and proven at `proof_height`.
pub struct HandshakeProofs {
    /// The proven end (connection or channel).
    pub end: Vec<u8>,
    /// The proven client state and consensus state (connection Try and Ack only).
    pub client: Option<ClientProofs>,
    /// The height the proofs verify at.
    pub proof_height: ProtoHeight,
}

/// What ConnOpenTry and ConnOpenAck prove about `from`'s client of `to`.
pub struct ClientProofs {
    /// The client state exactly as `from` stores it: `to` compares it byte for byte.
    pub state: Any,
    /// Its proof.
    pub state_proof: Vec<u8>,
    /// The consensus state's proof at `consensus_height`.
    pub consensus_proof: Vec<u8>,
    /// The client's latest height, whose consensus state is proven.
    pub consensus_height: ProtoHeight,
}

/// `MsgConnectionOpenTry` on `to`, proving `from_end` (INIT).
#[allow(deprecated)]
pub fn conn_open_try(
    from_id: &str,
    from_end: &conn::ConnectionEnd,
    from_prefix: &[u8],
    proofs: HandshakeProofs,
    signer: &str,
) -> Option<Datagram> {
    let counterparty = from_end.counterparty.as_ref()?;
    let client = proofs.client?;
    let msg = conn::MsgConnectionOpenTry {
        client_id: counterparty.client_id.clone(),
        client_state: Some(client.state),
        counterparty: Some(conn::Counterparty {
            client_id: from_end.client_id.clone(),
            connection_id: from_id.to_owned(),
            prefix: Some(MerklePrefix {
                key_prefix: from_prefix.to_vec(),
            }),
        }),
        delay_period: from_end.delay_period,
        counterparty_versions: from_end.versions.clone(),
        proof_height: Some(proofs.proof_height),
        proof_init: proofs.end,
        proof_client: client.state_proof,
        proof_consensus: client.consensus_proof,
        consensus_height: Some(client.consensus_height),
        signer: signer.to_owned(),
        ..Default::default()
    };
    Some(any("/ibc.core.connection.v1.MsgConnectionOpenTry", &msg))
}

/// `MsgConnectionOpenAck` on `to` (connection `to_id`), proving `from_end` (TRYOPEN).
pub fn conn_open_ack(
    to_id: &str,
    from_id: &str,
    from_end: &conn::ConnectionEnd,
    proofs: HandshakeProofs,
    signer: &str,
) -> Option<Datagram> {
    let client = proofs.client?;
    let msg = conn::MsgConnectionOpenAck {
        connection_id: to_id.to_owned(),
        counterparty_connection_id: from_id.to_owned(),
        version: from_end.versions.first().cloned(),
        client_state: Some(client.state),
        proof_height: Some(proofs.proof_height),
        proof_try: proofs.end,
        proof_client: client.state_proof,
        proof_consensus: client.consensus_proof,
        consensus_height: Some(client.consensus_height),
        signer: signer.to_owned(),
        host_consensus_state_proof: Vec::new(),
    };
    Some(any("/ibc.core.connection.v1.MsgConnectionOpenAck", &msg))
}

/// `MsgConnectionOpenConfirm` on `to` (connection `to_id`), proving the counterparty's OPEN.
pub fn conn_open_confirm(to_id: &str, proofs: HandshakeProofs, signer: &str) -> Datagram {
    let msg = conn::MsgConnectionOpenConfirm {
        connection_id: to_id.to_owned(),
        proof_ack: proofs.end,
        proof_height: Some(proofs.proof_height),
        signer: signer.to_owned(),
    };
    any("/ibc.core.connection.v1.MsgConnectionOpenConfirm", &msg)
}

/// `MsgChannelOpenTry` on `to` (port `to_port`, over `to_connection`), proving `from_end` (INIT).
#[allow(deprecated)]
pub fn chan_open_try(
    to_port: &str,
    to_connection: &str,
    from_port: &str,
    from_id: &str,
    from_end: &chan::Channel,
    proofs: HandshakeProofs,
    signer: &str,
) -> Datagram {
    let msg = chan::MsgChannelOpenTry {
        port_id: to_port.to_owned(),
        channel: Some(chan::Channel {
            state: chan::State::Tryopen as i32,
            ordering: from_end.ordering,
            counterparty: Some(chan::Counterparty {
                port_id: from_port.to_owned(),
                channel_id: from_id.to_owned(),
            }),
            connection_hops: vec![to_connection.to_owned()],
            version: from_end.version.clone(),
            upgrade_sequence: 0,
        }),
        counterparty_version: from_end.version.clone(),
        proof_init: proofs.end,
        proof_height: Some(proofs.proof_height),
        signer: signer.to_owned(),
        ..Default::default()
    };
    any("/ibc.core.channel.v1.MsgChannelOpenTry", &msg)
}

/// `MsgChannelOpenAck` on `to`, proving `from_end` (TRYOPEN).
pub fn chan_open_ack(
    to_port: &str,
    to_id: &str,
    from_id: &str,
    from_end: &chan::Channel,
    proofs: HandshakeProofs,
    signer: &str,
) -> Datagram {
    let msg = chan::MsgChannelOpenAck {
        port_id: to_port.to_owned(),
        channel_id: to_id.to_owned(),
        counterparty_channel_id: from_id.to_owned(),
        counterparty_version: from_end.version.clone(),
        proof_try: proofs.end,
        proof_height: Some(proofs.proof_height),
        signer: signer.to_owned(),
    };
    any("/ibc.core.channel.v1.MsgChannelOpenAck", &msg)
}

/// `MsgChannelOpenConfirm` on `to`, proving the counterparty's OPEN.
pub fn chan_open_confirm(
    to_port: &str,
    to_id: &str,
    proofs: HandshakeProofs,
    signer: &str,
) -> Datagram {
    let msg = chan::MsgChannelOpenConfirm {
        port_id: to_port.to_owned(),
        channel_id: to_id.to_owned(),
        proof_ack: proofs.end,
        proof_height: Some(proofs.proof_height),
        signer: signer.to_owned(),
    };
    any("/ibc.core.channel.v1.MsgChannelOpenConfirm", &msg)
}

/// `MsgChannelCloseConfirm` on `to`, proving the counterparty's CLOSED.
pub fn chan_close_confirm(
    to_port: &str,
    to_id: &str,
    proofs: HandshakeProofs,
    signer: &str,
) -> Datagram {
    let msg = chan::MsgChannelCloseConfirm {
        port_id: to_port.to_owned(),
        channel_id: to_id.to_owned(),
        proof_init: proofs.end,
        proof_height: Some(proofs.proof_height),
        signer: signer.to_owned(),
        counterparty_upgrade_sequence: 0,
    };
    any("/ibc.core.channel.v1.MsgChannelCloseConfirm", &msg)
}

/// The latest height of a Tendermint or `12-near` client state stored as an `Any` (NEAR heights have revision 0,
/// as a `12-near` client stores its consensus states at `0-<height>`).
pub fn client_latest_height(state: &Any) -> Option<ProtoHeight> {
    use crate::chain::client_state::TM_CLIENT_STATE;
    use crate::chain::near::header::{RawNearClientState, NEAR_CLIENT_STATE_TYPE_URL};
    use ibc_proto::ibc::lightclients::tendermint::v1::ClientState;
    match state.type_url.as_str() {
        TM_CLIENT_STATE => {
            ClientState::decode(state.value.as_slice())
                .ok()?
                .latest_height
        }
        NEAR_CLIENT_STATE_TYPE_URL => RawNearClientState::decode(state.value.as_slice())
            .ok()
            .map(|cs| height(0, cs.latest_height)),
        _ => None,
    }
}
