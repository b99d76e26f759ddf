//! ibc-go v9 and later leave the installed header out of `update_client` events (ibc-go up to v8 and ibc-rs
//! write it hex-encoded in a `header` attribute). The header is then read from the transaction that carried the
//! update: among its messages, the `MsgUpdateClient` of the event's client whose header is at the event's
//! consensus height. Pure: the transaction's messages come from the host's node through the Querier.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::MsgUpdateClient;
use ibc_proto::ibc::lightclients::tendermint::v1::Header as PbHeader;
use prost::Message;
use relayd_messages::{Datagram, Height};

use super::state::{MisbehaviourError, TM_HEADER_TYPE_URL};

/// Type URL of `MsgUpdateClient`.
pub const UPDATE_CLIENT_TYPE_URL: &str = "/ibc.core.client.v1.MsgUpdateClient";

/// The client message (protobuf `Any` bytes, as the legacy `header` attribute carried it) that updated
/// `client_id` in a transaction of `messages`: the client's only update there, or, when there are several, the
/// one whose Tendermint header is at one of the event's `heights`.
pub fn header_in_tx(
    messages: &[Datagram],
    client_id: &str,
    heights: &[Height],
) -> Result<Vec<u8>, MisbehaviourError> {
    let mut updates = Vec::new();
    for m in messages
        .iter()
        .filter(|m| m.type_url == UPDATE_CLIENT_TYPE_URL)
    {
        let msg = MsgUpdateClient::decode(m.value.as_slice())
            .map_err(|e| MisbehaviourError::Message(e.to_string()))?;
        if msg.client_id != client_id {
            continue;
        }
        let any = msg.client_message.ok_or_else(|| {
            MisbehaviourError::Message(format!("MsgUpdateClient of {client_id} without a message"))
        })?;
        updates.push(any);
    }
    let missing = || MisbehaviourError::NotInTransaction {
        client_id: client_id.to_owned(),
    };
    // Each MsgUpdateClient emits one update_client event: a client's only update in the transaction is the one.
    let chosen = match updates.as_slice() {
        [] => return Err(missing()),
        [only] => only,
        _ if heights.is_empty() => return Err(missing()),
        _ => updates
            .iter()
            .find(|any| {
                header_height(any).is_some_and(|h| heights.iter().any(|e| e.revision_height == h))
            })
            .ok_or_else(missing)?,
    };
    Ok(chosen.encode_to_vec())
}

/// The height of a Tendermint header packed in `any`; `None` for other client messages or undecodable ones.
fn header_height(any: &Any) -> Option<u64> {
    if any.type_url != TM_HEADER_TYPE_URL {
        return None;
    }
    let header = PbHeader::decode(any.value.as_slice()).ok()?;
    let height = header.signed_header?.header?.height;
    u64::try_from(height).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tendermint_proto::types::{Header as PbTmHeader, SignedHeader as PbSignedHeader};

    fn tm_header(height: i64) -> Any {
        let header = PbHeader {
            signed_header: Some(PbSignedHeader {
                header: Some(PbTmHeader {
                    height,
                    ..Default::default()
                }),
                commit: None,
            }),
            ..Default::default()
        };
        Any {
            type_url: TM_HEADER_TYPE_URL.into(),
            value: header.encode_to_vec(),
        }
    }

    fn update(client: &str, message: Option<Any>) -> Datagram {
        Datagram {
            type_url: UPDATE_CLIENT_TYPE_URL.into(),
            value: MsgUpdateClient {
                client_id: client.into(),
                client_message: message,
                signer: "cosmos1relayer".into(),
            }
            .encode_to_vec(),
        }
    }

    fn other() -> Datagram {
        Datagram {
            type_url: "/ibc.core.channel.v1.MsgRecvPacket".into(),
            value: vec![1, 2, 3],
        }
    }

    #[test]
    fn the_update_of_the_client_at_the_event_height_is_chosen() {
        let tx = [
            update("07-tendermint-1", Some(tm_header(20))),
            update("07-tendermint-0", Some(tm_header(19))),
            update("07-tendermint-0", Some(tm_header(20))),
            other(),
        ];
        let got = header_in_tx(&tx, "07-tendermint-0", &[Height::new(1, 20)]).unwrap();
        assert_eq!(got, tm_header(20).encode_to_vec());
        let got = header_in_tx(&tx, "07-tendermint-1", &[]).unwrap();
        assert_eq!(got, tm_header(20).encode_to_vec());
    }

    #[test]
    fn a_transaction_without_the_update_is_a_typed_error() {
        let tx = [update("07-tendermint-1", Some(tm_header(20))), other()];
        assert_eq!(
            header_in_tx(&tx, "07-tendermint-0", &[Height::new(0, 20)]),
            Err(MisbehaviourError::NotInTransaction {
                client_id: "07-tendermint-0".into()
            })
        );
        // Two updates of the client and no height to tell them apart.
        let two = [
            update("07-tendermint-0", Some(tm_header(19))),
            update("07-tendermint-0", Some(tm_header(20))),
        ];
        assert!(matches!(
            header_in_tx(&two, "07-tendermint-0", &[]),
            Err(MisbehaviourError::NotInTransaction { .. })
        ));
        // No update at the event's height.
        assert!(matches!(
            header_in_tx(&two, "07-tendermint-0", &[Height::new(0, 21)]),
            Err(MisbehaviourError::NotInTransaction { .. })
        ));
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let garbage = Datagram {
            type_url: UPDATE_CLIENT_TYPE_URL.into(),
            value: b"garbage".to_vec(),
        };
        assert!(matches!(
            header_in_tx(&[garbage], "07-tendermint-0", &[]),
            Err(MisbehaviourError::Message(_))
        ));
        assert!(matches!(
            header_in_tx(&[update("07-tendermint-0", None)], "07-tendermint-0", &[]),
            Err(MisbehaviourError::Message(_))
        ));
        // Another client type's message is found; judging it is `SeenHeader::decode`'s refusal.
        let solo = Any {
            type_url: "/ibc.lightclients.solomachine.v3.Header".into(),
            value: vec![],
        };
        let got = header_in_tx(
            &[update("06-solomachine-0", Some(solo.clone()))],
            "06-solomachine-0",
            &[],
        )
        .unwrap();
        assert_eq!(got, solo.encode_to_vec());
    }
}
