//! Building packet datagrams and checking what relayd forwards: proofs against verified app hashes, and
//! packet data against the commitment the source stored.

use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::client::v1::Height as ProtoHeight;
use prost::Message;
use relayd_messages::{Datagram, ErrorKind, Packet, RelayError};
use tendermint::crypto::default::Sha256;
use tendermint::crypto::Sha256 as _;

use tracing::warn;

use crate::chain::proof::{check_forwarded, Forwarded};

/// The protobuf packet.
pub fn proto_packet(p: &Packet) -> chan::Packet {
    chan::Packet {
        sequence: p.sequence.0,
        source_port: p.source_port.to_string(),
        source_channel: p.source_channel.to_string(),
        destination_port: p.destination_port.to_string(),
        destination_channel: p.destination_channel.to_string(),
        data: p.data.clone(),
        timeout_height: p.timeout_height.map(|h| ProtoHeight {
            revision_number: h.revision_number,
            revision_height: h.revision_height,
        }),
        timeout_timestamp: p.timeout_timestamp_ns,
    }
}

/// ICS-04's packet commitment: sha256(timeout timestamp ‖ timeout revision ‖ timeout height ‖ sha256(data)),
/// numbers big-endian.
pub fn packet_commitment(p: &Packet) -> Vec<u8> {
    let (rev, height) = p
        .timeout_height
        .map_or((0, 0), |h| (h.revision_number, h.revision_height));
    let mut buf = Vec::with_capacity(56);
    buf.extend_from_slice(&p.timeout_timestamp_ns.to_be_bytes());
    buf.extend_from_slice(&rev.to_be_bytes());
    buf.extend_from_slice(&height.to_be_bytes());
    buf.extend_from_slice(&Sha256::digest(&p.data));
    Sha256::digest(&buf).to_vec()
}

/// ICS-04's acknowledgement commitment: sha256(ack).
pub fn ack_commitment(ack: &[u8]) -> Vec<u8> {
    Sha256::digest(ack).to_vec()
}

/// Verifies a proof before it is forwarded, as its chain's kind proves state (see
/// [`crate::chain::proof::check_forwarded`]). A refusal means the node lied or served another state: it is
/// raised as an alarm in the log, and the proof is dropped (the caller records the failure and reads again).
pub fn check(c: Forwarded<'_>) -> Result<(), RelayError> {
    check_forwarded(&c).map_err(|rejected| {
        warn!(
            chain = %rejected.chain,
            path = %rejected.path,
            height = rejected.height,
            fault = %rejected.fault,
            "refusing to forward a proof that does not verify against relayd's own light client"
        );
        RelayError::new(ErrorKind::Unverified, rejected.to_string())
    })
}

fn height(revision: u64, h: u64) -> Option<ProtoHeight> {
    Some(ProtoHeight {
        revision_number: revision,
        revision_height: h,
    })
}

fn any<M: Message>(type_url: &str, msg: &M) -> Datagram {
    Datagram {
        type_url: type_url.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// `MsgRecvPacket`.
pub fn recv(
    p: &Packet,
    proof: Vec<u8>,
    revision: u64,
    proof_height: u64,
    signer: &str,
) -> Datagram {
    any(
        "/ibc.core.channel.v1.MsgRecvPacket",
        &chan::MsgRecvPacket {
            packet: Some(proto_packet(p)),
            proof_commitment: proof,
            proof_height: height(revision, proof_height),
            signer: signer.to_owned(),
        },
    )
}

/// `MsgAcknowledgement`.
pub fn acknowledgement(
    p: &Packet,
    ack: &[u8],
    proof: Vec<u8>,
    revision: u64,
    proof_height: u64,
    signer: &str,
) -> Datagram {
    any(
        "/ibc.core.channel.v1.MsgAcknowledgement",
        &chan::MsgAcknowledgement {
            packet: Some(proto_packet(p)),
            acknowledgement: ack.to_vec(),
            proof_acked: proof,
            proof_height: height(revision, proof_height),
            signer: signer.to_owned(),
        },
    )
}

/// Proofs that a packet was not received on its destination, all at one height.
pub struct Unreceived {
    /// No receipt (unordered channel), or the destination's next sequence to receive (ordered).
    pub proof: Vec<u8>,
    /// The destination's next sequence to receive (ordered channels; the packet's own sequence otherwise).
    pub next_recv: u64,
    /// The destination's channel end, proven closed (timeout-on-close), if it is.
    pub closed: Option<Vec<u8>>,
    /// The proof height (query height + 1), and its revision.
    pub height: (u64, u64),
}

/// `MsgTimeout`, or `MsgTimeoutOnClose` when the destination's channel end is proven closed.
pub fn timeout(p: &Packet, u: Unreceived, signer: &str) -> Datagram {
    let (revision, proof_height) = u.height;
    match u.closed {
        None => any(
            "/ibc.core.channel.v1.MsgTimeout",
            &chan::MsgTimeout {
                packet: Some(proto_packet(p)),
                proof_unreceived: u.proof,
                proof_height: height(revision, proof_height),
                next_sequence_recv: u.next_recv,
                signer: signer.to_owned(),
            },
        ),
        Some(proof_close) => any(
            "/ibc.core.channel.v1.MsgTimeoutOnClose",
            &chan::MsgTimeoutOnClose {
                packet: Some(proto_packet(p)),
                proof_unreceived: u.proof,
                proof_close,
                proof_height: height(revision, proof_height),
                next_sequence_recv: u.next_recv,
                signer: signer.to_owned(),
                counterparty_upgrade_sequence: 0,
            },
        ),
    }
}

/// Whether a stored channel end (protobuf `Channel`) is closed.
pub fn channel_is_closed(value: &[u8]) -> Result<bool, String> {
    let end = chan::Channel::decode(value).map_err(|e| format!("undecodable channel end: {e}"))?;
    Ok(end.state == chan::State::Closed as i32)
}

/// A stored next sequence to receive (8 bytes, big-endian, as ibc-go and ibc-rs store it).
pub fn next_sequence(value: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| format!("a next sequence is 8 bytes, not {}", value.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_channels_and_next_sequences_are_read_from_their_stored_form() {
        let end = |state: chan::State| {
            chan::Channel {
                state: state as i32,
                ..Default::default()
            }
            .encode_to_vec()
        };
        assert_eq!(channel_is_closed(&end(chan::State::Closed)), Ok(true));
        assert_eq!(channel_is_closed(&end(chan::State::Open)), Ok(false));
        assert_eq!(next_sequence(&7u64.to_be_bytes()), Ok(7));
        assert!(next_sequence(&[1, 2]).is_err());
    }

    use relayd_messages::{ChannelId, Height, PortId, Sequence};

    #[test]
    fn commitment_matches_ibc_go_layout() {
        let p = Packet {
            sequence: Sequence(1),
            source_port: PortId::new("transfer").unwrap(),
            source_channel: ChannelId::new("channel-0").unwrap(),
            destination_port: PortId::new("transfer").unwrap(),
            destination_channel: ChannelId::new("channel-0").unwrap(),
            data: b"hello".to_vec(),
            timeout_height: Some(Height::new(0, 10)),
            timeout_timestamp_ns: 7,
        };
        let mut buf = Vec::new();
        buf.extend_from_slice(&7u64.to_be_bytes());
        buf.extend_from_slice(&0u64.to_be_bytes());
        buf.extend_from_slice(&10u64.to_be_bytes());
        buf.extend_from_slice(&Sha256::digest(b"hello"));
        assert_eq!(packet_commitment(&p), Sha256::digest(&buf).to_vec());
        let mut other = p.clone();
        other.data = b"hellO".to_vec();
        assert_ne!(packet_commitment(&p), packet_commitment(&other));
    }
}
