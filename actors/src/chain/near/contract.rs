//! The IBC contract's interface as relayd uses it: the JSON arguments of its view methods and of `deliver`, and
//! the decoding of their JSON results. Pure; the shapes follow octopus-network `near-ibc` (near-sdk JSON of
//! ibc-rs types) and are written down in `docs/ARCHITECTURE.md`, "NEAR backend".

use ibc_core_handler_types::events::IbcEvent as RsIbcEvent;
use ibc_proto::google::protobuf::Any;
use relayd_messages::ObservedEvent;
use serde_json::{json, Value};
use tendermint::abci;

use crate::chain::cosmos::events::decode_event;
use crate::chain_monitor::EventError;

/// near-ibc's `MINIMUM_DEPOSIT_FOR_DELEVER_MSG`: yoctoNEAR attached to `deliver` per message, for storage.
pub const DEPOSIT_PER_MESSAGE: u128 = 50_000_000_000_000_000_000_000;

/// The log line near-ibc writes when any message of a `deliver` call failed (NEP-297 event).
pub const ERR_DELIVER_MESSAGE: &str = "ERR_DELIVER_MESSAGE";

/// Why a contract result could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method}: unexpected result: {reason}")]
pub struct ContractError {
    /// The view method.
    pub method: String,
    /// What was wrong.
    pub reason: String,
}

/// An ibc-rs `Height` as near-sdk JSON. NEAR has one revision, 0.
pub fn height(h: u64) -> Value {
    json!({"revision_number": 0, "revision_height": h})
}

/// Arguments naming a channel end.
pub fn channel_args(port: &str, channel: &str) -> Value {
    json!({"port_id": port, "channel_id": channel})
}

/// Arguments naming one packet.
pub fn packet_args(port: &str, channel: &str, sequence: u64) -> Value {
    json!({"port_id": port, "channel_id": channel, "sequence": sequence})
}

/// Arguments of `get_unreceived_packets`.
pub fn unreceived_args(port: &str, channel: &str, sequences: &[u64]) -> Value {
    json!({"port_id": port, "channel_id": channel, "sequences": sequences})
}

/// Arguments of `get_client_state`.
pub fn client_args(client: &str) -> Value {
    json!({"client_id": client})
}

/// Arguments of `get_client_consensus`.
pub fn consensus_args(client: &str, revision: u64, h: u64) -> Value {
    json!({"client_id": client, "consensus_height": {"revision_number": revision, "revision_height": h}})
}

/// Arguments of `get_ibc_events_at`.
pub fn events_args(h: u64) -> Value {
    json!({"height": height(h)})
}

/// The JSON arguments of `deliver(messages)`: each message as ibc-proto's JSON `Any` (`typeUrl`, base64 `value`).
pub fn deliver_args(messages: &[Any]) -> Vec<u8> {
    json!({ "messages": messages }).to_string().into_bytes()
}

/// The deposit `deliver` needs for `count` messages.
pub fn deliver_deposit(count: usize) -> u128 {
    DEPOSIT_PER_MESSAGE.saturating_mul(count as u128)
}

/// Whether a `deliver` call's logs say a message failed inside the contract (the call itself succeeds then).
pub fn deliver_failed(logs: &[String]) -> bool {
    logs.iter()
        .any(|log| log.starts_with("EVENT_JSON:") && log.contains(ERR_DELIVER_MESSAGE))
}

fn parse<T: serde::de::DeserializeOwned>(method: &str, result: &[u8]) -> Result<T, ContractError> {
    serde_json::from_slice(result).map_err(|e| ContractError {
        method: method.to_owned(),
        reason: e.to_string(),
    })
}

/// A `Vec<u8>` result (near-sdk writes it as a JSON array of numbers); near-ibc returns `[]` for an absent value.
pub fn bytes(method: &str, result: &[u8]) -> Result<Vec<u8>, ContractError> {
    parse(method, result)
}

/// An `Option<Vec<u8>>`-like result: `null` or a byte array.
pub fn optional_bytes(method: &str, result: &[u8]) -> Result<Option<Vec<u8>>, ContractError> {
    parse(method, result)
}

/// A `Vec<Sequence>` result.
pub fn sequences(method: &str, result: &[u8]) -> Result<Vec<u64>, ContractError> {
    parse(method, result)
}

/// An `Option<Sequence>` result.
pub fn optional_sequence(method: &str, result: &[u8]) -> Result<Option<u64>, ContractError> {
    parse(method, result)
}

/// Arguments of `get_client_connections` and `get_connection_channels`.
pub fn connection_args(connection: &str) -> Value {
    json!({"connection_id": connection})
}

/// Arguments of `get_channels`: near-ibc takes a `QueryChannelsRequest`; relayd asks for every channel.
pub fn channels_args() -> Value {
    json!({"request": {"pagination": null}})
}

/// A `Vec<ConnectionId>` result.
pub fn ids(method: &str, result: &[u8]) -> Result<Vec<String>, ContractError> {
    parse(method, result)
}

/// The connection ids of a `Vec<IdentifiedConnectionEnd>` result (ibc-rs JSON: `connection_id` beside the end).
/// relayd reads the ends themselves from the contract's storage, as protobuf.
pub fn connection_ids(method: &str, result: &[u8]) -> Result<Vec<String>, ContractError> {
    #[derive(serde::Deserialize)]
    struct Identified {
        connection_id: String,
    }
    let items: Vec<Identified> = parse(method, result)?;
    Ok(items.into_iter().map(|i| i.connection_id).collect())
}

/// The (port, channel) ids of a `Vec<IdentifiedChannelEnd>` result (ibc-rs JSON: `port_id`, `channel_id` beside
/// the end).
pub fn channel_ids(method: &str, result: &[u8]) -> Result<Vec<(String, String)>, ContractError> {
    #[derive(serde::Deserialize)]
    struct Identified {
        port_id: String,
        channel_id: String,
    }
    let items: Vec<Identified> = parse(method, result)?;
    Ok(items
        .into_iter()
        .map(|i| (i.port_id, i.channel_id))
        .collect())
}

/// An ibc-rs `Height` as near-ibc writes it.
#[derive(serde::Deserialize)]
struct Height {
    revision_number: u64,
    revision_height: u64,
}

/// The revision height of `h`; NEAR's heights are all revision 0.
fn revision_zero(method: &str, h: &Height) -> Result<u64, ContractError> {
    if h.revision_number != 0 {
        return Err(ContractError {
            method: method.to_owned(),
            reason: format!(
                "revision {} on NEAR, which has only revision 0",
                h.revision_number
            ),
        });
    }
    Ok(h.revision_height)
}

/// A `Height` result: its revision height.
pub fn latest_height(result: &[u8]) -> Result<u64, ContractError> {
    let method = "get_latest_height";
    revision_zero(method, &parse(method, result)?)
}

/// The `get_ibc_events_heights` result: the heights the contract's event history holds, as `Height`s (near-ibc
/// v0.2 on) or bare block heights (earlier releases), in ascending order.
pub fn event_heights(result: &[u8]) -> Result<Vec<u64>, ContractError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Height(Height),
        Bare(u64),
    }
    let method = "get_ibc_events_heights";
    let items: Vec<Either> = parse(method, result)?;
    let mut heights = items
        .iter()
        .map(|i| match i {
            Either::Height(h) => revision_zero(method, h),
            Either::Bare(h) => Ok(*h),
        })
        .collect::<Result<Vec<_>, _>>()?;
    heights.sort_unstable();
    heights.dedup();
    Ok(heights)
}

/// The events of `get_ibc_events_at(height)`: ibc-rs events as JSON, turned into relayd's events through the
/// same attribute decoding Cosmos events get. Events of kinds relayd does not use are skipped; malformed ones are
/// reported and the rest still returned.
pub fn events(
    h: u64,
    result: &[u8],
) -> Result<(Vec<ObservedEvent>, Vec<EventError>), ContractError> {
    let raw: Vec<Value> = parse("get_ibc_events_at", result)?;
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for value in raw {
        let kind = value
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_else(|| "?".to_owned());
        let fail = |reason: String| EventError {
            height: h,
            event: kind.clone(),
            reason,
        };
        let decoded = serde_json::from_value::<RsIbcEvent>(value)
            .map_err(|e| fail(e.to_string()))
            .and_then(|ev| abci::Event::try_from(ev).map_err(|e| fail(e.to_string())))
            .and_then(|ev| decode_event(&ev).map_err(fail));
        match decoded {
            Ok(Some(event)) => events.push(ObservedEvent {
                height: h,
                tx_hash: None,
                event,
            }),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    Ok((events, errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibc::core::channel::types::channel::Order;
    use ibc::core::channel::types::events::SendPacket;
    use ibc::core::channel::types::packet::Packet as RsPacket;
    use ibc::core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
    use ibc::core::client::types::events::CreateClient;
    use ibc::core::client::types::Height as RsHeight;
    use ibc::core::host::types::identifiers::{
        ChannelId, ClientId, ClientType, ConnectionId, PortId, Sequence,
    };
    use ibc::primitives::Timestamp;
    use relayd_messages::IbcEvent;

    /// What the contract returns for a block with a client creation, a send and an event relayd does not use.
    fn recorded_events() -> Vec<u8> {
        let packet = RsPacket {
            seq_on_a: Sequence::from(7),
            port_id_on_a: PortId::transfer(),
            chan_id_on_a: ChannelId::new(0),
            port_id_on_b: PortId::transfer(),
            chan_id_on_b: ChannelId::new(3),
            data: b"{\"amount\":\"1\"}".to_vec(),
            timeout_height_on_b: TimeoutHeight::At(RsHeight::new(1, 500).expect("height")),
            timeout_timestamp_on_b: TimeoutTimestamp::At(Timestamp::from_nanoseconds(
                1_700_000_000_000_000_000,
            )),
        };
        let send = RsIbcEvent::SendPacket(SendPacket::new(
            packet,
            Order::Unordered,
            ConnectionId::new(0),
        ));
        let create = RsIbcEvent::CreateClient(CreateClient::new(
            ClientId::new("07-tendermint", 0).expect("id"),
            ClientType::new("07-tendermint").expect("type"),
            RsHeight::new(1, 42).expect("height"),
        ));
        let message = RsIbcEvent::Message(ibc::core::handler::types::events::MessageEvent::Channel);
        serde_json::to_vec(&vec![create, send, message]).expect("json")
    }

    #[test]
    fn contract_events_become_relayd_events() {
        let (events, errors) = events(120, &recorded_events()).expect("decodes");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events.len(), 2);
        assert!(events
            .iter()
            .all(|e| e.height == 120 && e.tx_hash.is_none()));
        match &events[0].event {
            IbcEvent::CreateClient {
                client_id,
                consensus_height,
                ..
            } => {
                assert_eq!(client_id.as_str(), "07-tendermint-0");
                assert_eq!(
                    (
                        consensus_height.revision_number,
                        consensus_height.revision_height
                    ),
                    (1, 42)
                );
            }
            other => panic!("expected CreateClient, got {other:?}"),
        }
        match &events[1].event {
            IbcEvent::SendPacket(p) => {
                assert_eq!(p.sequence.0, 7);
                assert_eq!(p.destination_channel.as_str(), "channel-3");
                assert_eq!(p.data, b"{\"amount\":\"1\"}");
                assert_eq!(p.timeout_timestamp_ns, 1_700_000_000_000_000_000);
            }
            other => panic!("expected SendPacket, got {other:?}"),
        }
    }

    #[test]
    fn a_malformed_event_is_reported_and_the_others_kept() {
        let mut raw: Vec<Value> = serde_json::from_slice(&recorded_events()).expect("json");
        raw.insert(0, json!({"SendPacket": {"packet_data_attr": 5}}));
        let (events, errors) = events(9, &serde_json::to_vec(&raw).expect("json")).expect("list");
        assert_eq!(events.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].event, "SendPacket");
        assert!(super::events(9, b"{\"not\":\"a list\"}").is_err());
    }

    #[test]
    fn deliver_arguments_are_ibc_proto_json_any() {
        let any = Any {
            type_url: "/ibc.core.client.v1.MsgUpdateClient".to_owned(),
            value: vec![1, 2, 250],
        };
        let args: Value = serde_json::from_slice(&deliver_args(&[any.clone(), any])).expect("json");
        assert_eq!(
            args,
            json!({"messages": [
                {"typeUrl": "/ibc.core.client.v1.MsgUpdateClient", "value": "AQL6"},
                {"typeUrl": "/ibc.core.client.v1.MsgUpdateClient", "value": "AQL6"},
            ]})
        );
        assert_eq!(deliver_deposit(3), 150_000_000_000_000_000_000_000);
    }

    #[test]
    fn results_decode_as_near_sdk_writes_them() {
        assert_eq!(bytes("get_client_state", b"[10,3,1]"), Ok(vec![10, 3, 1]));
        assert_eq!(bytes("get_client_state", b"[]"), Ok(vec![]));
        assert!(bytes("get_client_state", b"[256]").is_err());
        assert_eq!(optional_bytes("get_packet_commitment", b"null"), Ok(None));
        assert_eq!(
            sequences("get_packet_commitment_sequences", b"[1,2,5]"),
            Ok(vec![1, 2, 5])
        );
        assert_eq!(
            optional_sequence("get_next_sequence_receive", b"4"),
            Ok(Some(4))
        );
        assert_eq!(
            latest_height(br#"{"revision_number":0,"revision_height":77}"#),
            Ok(77)
        );
        assert!(latest_height(br#"{"revision_number":1,"revision_height":77}"#).is_err());
        assert_eq!(
            event_heights(br#"[{"revision_number":0,"revision_height":9},{"revision_number":0,"revision_height":4}]"#)
                .unwrap(),
            vec![4, 9]
        );
        assert_eq!(event_heights(b"[12, 3, 12]").unwrap(), vec![3, 12]);
        assert!(event_heights(br#"[{"revision_number":2,"revision_height":9}]"#).is_err());
        assert_eq!(
            consensus_args("07-tendermint-0", 1, 5),
            json!({"client_id": "07-tendermint-0", "consensus_height": {"revision_number": 1, "revision_height": 5}})
        );
    }

    #[test]
    fn the_failure_log_is_recognised() {
        let ok = vec!["store_packet_commitment: ...".to_owned()];
        assert!(!deliver_failed(&ok));
        let failed = vec![
            "Error occurred in processing message: ...".to_owned(),
            r#"EVENT_JSON:{"standard":"nep297","version":"1.0.0","event":"ERR_DELIVER_MESSAGE"}"#
                .to_owned(),
        ];
        assert!(deliver_failed(&failed));
    }
}
