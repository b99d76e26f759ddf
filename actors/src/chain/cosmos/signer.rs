//! Re-signing datagrams for another account of the same chain: builders encode every datagram with the chain's
//! primary signer, and a TxSubmitter lane of another key makes them its own before it signs the transaction,
//! because the chain checks that each message's signer signed the transaction.

use ibc_proto::ibc::core::channel::v1 as channel;
use ibc_proto::ibc::core::client::v1 as client;
use ibc_proto::ibc::core::connection::v1 as connection;
use prost::Message;
use relayd_messages::{Datagram, ErrorKind, RelayError};

/// Decodes `value` as `M`, sets its signer and encodes it again.
fn resign<M: Message + Default>(
    type_url: &str,
    value: &[u8],
    signer: &str,
    field: impl FnOnce(&mut M) -> &mut String,
) -> Result<Vec<u8>, RelayError> {
    let mut msg = M::decode(value).map_err(|e| {
        RelayError::new(
            ErrorKind::Rejected,
            format!("{type_url}: cannot be decoded to set its signer: {e}"),
        )
    })?;
    *field(&mut msg) = signer.to_owned();
    Ok(msg.encode_to_vec())
}

/// `datagram` with its signer set to `signer`: every IBC message relayd sends (client, connection and channel
/// handshakes, packets, acknowledgements, timeouts, misbehaviour). Any other type URL is an error, never sent
/// with a signer that did not sign its transaction.
pub fn with_signer(datagram: Datagram, signer: &str) -> Result<Datagram, RelayError> {
    macro_rules! resign {
        ($($url:literal => $ty:ty),* $(,)?) => {
            match datagram.type_url.as_str() {
                $($url => resign::<$ty>($url, &datagram.value, signer, |m| &mut m.signer)?,)*
                other => {
                    return Err(RelayError::new(
                        ErrorKind::Rejected,
                        format!("{other}: not a message relayd knows how to sign for another account"),
                    ))
                }
            }
        };
    }
    let value = resign! {
        "/ibc.core.client.v1.MsgCreateClient" => client::MsgCreateClient,
        "/ibc.core.client.v1.MsgUpdateClient" => client::MsgUpdateClient,
        "/ibc.core.client.v1.MsgUpgradeClient" => client::MsgUpgradeClient,
        "/ibc.core.client.v1.MsgSubmitMisbehaviour" => client::MsgSubmitMisbehaviour,
        "/ibc.core.connection.v1.MsgConnectionOpenInit" => connection::MsgConnectionOpenInit,
        "/ibc.core.connection.v1.MsgConnectionOpenTry" => connection::MsgConnectionOpenTry,
        "/ibc.core.connection.v1.MsgConnectionOpenAck" => connection::MsgConnectionOpenAck,
        "/ibc.core.connection.v1.MsgConnectionOpenConfirm" => connection::MsgConnectionOpenConfirm,
        "/ibc.core.channel.v1.MsgChannelOpenInit" => channel::MsgChannelOpenInit,
        "/ibc.core.channel.v1.MsgChannelOpenTry" => channel::MsgChannelOpenTry,
        "/ibc.core.channel.v1.MsgChannelOpenAck" => channel::MsgChannelOpenAck,
        "/ibc.core.channel.v1.MsgChannelOpenConfirm" => channel::MsgChannelOpenConfirm,
        "/ibc.core.channel.v1.MsgChannelCloseInit" => channel::MsgChannelCloseInit,
        "/ibc.core.channel.v1.MsgChannelCloseConfirm" => channel::MsgChannelCloseConfirm,
        "/ibc.core.channel.v1.MsgRecvPacket" => channel::MsgRecvPacket,
        "/ibc.core.channel.v1.MsgAcknowledgement" => channel::MsgAcknowledgement,
        "/ibc.core.channel.v1.MsgTimeout" => channel::MsgTimeout,
        "/ibc.core.channel.v1.MsgTimeoutOnClose" => channel::MsgTimeoutOnClose,
    };
    Ok(Datagram {
        type_url: datagram.type_url,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram<M: Message>(type_url: &str, msg: &M) -> Datagram {
        Datagram {
            type_url: type_url.to_owned(),
            value: msg.encode_to_vec(),
        }
    }

    #[test]
    fn the_signer_changes_and_nothing_else() {
        let recv = channel::MsgRecvPacket {
            packet: Some(channel::Packet {
                sequence: 7,
                source_port: "transfer".into(),
                source_channel: "channel-0".into(),
                data: b"data".to_vec(),
                ..Default::default()
            }),
            proof_commitment: vec![1, 2, 3],
            proof_height: Some(client::Height {
                revision_number: 0,
                revision_height: 42,
            }),
            signer: "cosmos1primary".into(),
        };
        let out = with_signer(
            datagram("/ibc.core.channel.v1.MsgRecvPacket", &recv),
            "cosmos1second",
        )
        .expect("re-signed");
        let back = channel::MsgRecvPacket::decode(out.value.as_slice()).expect("decodes");
        assert_eq!(back.signer, "cosmos1second");
        assert_eq!(
            back,
            channel::MsgRecvPacket {
                signer: "cosmos1second".into(),
                ..recv
            }
        );
        let update = client::MsgUpdateClient {
            client_id: "07-tendermint-0".into(),
            client_message: None,
            signer: "cosmos1primary".into(),
        };
        let out = with_signer(
            datagram("/ibc.core.client.v1.MsgUpdateClient", &update),
            "cosmos1second",
        )
        .expect("re-signed");
        let back = client::MsgUpdateClient::decode(out.value.as_slice()).expect("decodes");
        assert_eq!(
            (back.client_id.as_str(), back.signer.as_str()),
            ("07-tendermint-0", "cosmos1second")
        );
    }

    #[test]
    fn an_unknown_type_or_bad_bytes_are_errors() {
        let unknown = Datagram {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
            value: Vec::new(),
        };
        assert!(with_signer(unknown, "cosmos1second").is_err());
        let garbage = Datagram {
            type_url: "/ibc.core.channel.v1.MsgRecvPacket".into(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert!(with_signer(garbage, "cosmos1second").is_err());
    }
}
