//! Building packet datagrams and checking what relayd forwards: proofs against verified app hashes, and
//! packet data against the commitment the source stored.

use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::client::v1::Height as ProtoHeight;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use prost::Message;
use relayd_messages::{Datagram, ErrorKind, Packet, Proven, RelayError};
use tendermint::crypto::default::Sha256;
use tendermint::crypto::Sha256 as _;

use crate::chain::proof::{verify_chained, ProofTarget};

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

/// What a proof claims and what it is checked against.
pub struct Check<'a> {
    /// The chain that served it.
    pub chain: &'a str,
    /// Its store prefix.
    pub prefix: &'a [u8],
    /// The ICS-24 path.
    pub path: &'a str,
    /// The read value and its proof.
    pub proven: &'a Proven,
    /// The app hash of the header at `proven.height + 1`, verified by relayd's light client.
    pub app_hash: &'a [u8],
    /// The proof specs of the client that will judge the proof (protobuf-encoded).
    pub specs: &'a [Vec<u8>],
    /// `Some(value)` for membership, `None` for absence.
    pub expect: Option<&'a [u8]>,
}

/// Verifies a proof before it is forwarded; a failure means the node lied or the state changed, and the proof
/// is dropped.
pub fn check(c: Check<'_>) -> Result<(), RelayError> {
    let bad = |reason: String| {
        RelayError::new(
            ErrorKind::Unverified,
            format!("{}: {} at {}: {reason}", c.chain, c.path, c.proven.height),
        )
    };
    let proof = c
        .proven
        .proof
        .as_ref()
        .ok_or_else(|| bad("no proof".into()))?;
    let merkle = MerkleProof::decode(proof.as_slice())
        .map_err(|e| bad(format!("undecodable proof: {e}")))?;
    let specs = c
        .specs
        .iter()
        .map(|s| ics23::ProofSpec::decode(s.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("undecodable proof spec: {e}")))?;
    if let Some(expected) = c.expect {
        if c.proven.value != expected {
            return Err(bad(
                "the stored value differs from the packet relayd holds".into()
            ));
        }
    } else if !c.proven.value.is_empty() {
        return Err(bad("the value is present".into()));
    }
    let target = ProofTarget {
        chain: c.chain,
        path: c.path,
        prefix: c.prefix,
        height: c.proven.height,
    };
    verify_chained(target, &merkle.proofs, &specs, c.app_hash, c.expect)
        .map_err(|e| RelayError::new(ErrorKind::Unverified, e.to_string()))
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
