//! Turns CometBFT `block_results` into typed IBC events. Works on both attribute encodings: CometBFT 0.34's
//! base64 keys and values and 0.37/0.38's plain strings, also mixed (base64 under a 0.38 version, see
//! `attributes`); and on the event shapes of ibc-go v7, v8 and v10 and of ibc-rs (see `docs/devnet.md`,
//! "Event shapes"): packet data and acks from their `_hex` attributes where present (v10 writes no others),
//! `update_client` with or without the `header` attribute (gone since v9), and IBC v2 packet events (v10, same
//! type names, keyed by client instead of port and channel) left aside.

use std::collections::HashMap;

use crate::chain_monitor::EventError;
use relayd_messages::{
    ChannelAttributes, ChannelId, ClientId, ConnectionAttributes, Height, IbcEvent, ObservedEvent,
    Packet, PortId, Sequence,
};
use tendermint::abci;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::endpoint::block_results;

/// Why a `block_results` document could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BlockResultsError {
    /// Not JSON, or not shaped like a block_results result.
    #[error("not a block_results response: {0}")]
    Json(#[from] serde_json::Error),
    /// A JSON-RPC error instead of a result.
    #[error("node returned an error: {0}")]
    Rpc(String),
}

/// The IBC events of one block, and the events that were malformed.
#[derive(Debug, Default)]
pub struct DecodedEvents {
    /// Events in block order.
    pub events: Vec<ObservedEvent>,
    /// Events of IBC types that could not be read.
    pub errors: Vec<EventError>,
}

/// Reads a `block_results` JSON document (a JSON-RPC envelope or its bare `result`) in the given encoding.
pub fn parse_block_results(
    json: &str,
    mode: CompatMode,
) -> Result<block_results::Response, BlockResultsError> {
    let mut value: serde_json::Value = serde_json::from_str(json)?;
    if let Some(err) = value.get("error") {
        return Err(BlockResultsError::Rpc(err.to_string()));
    }
    if let Some(result) = value.get_mut("result") {
        value = result.take();
    }
    let decoded = super::rpc::bounded::decode_answer(|| match mode {
        CompatMode::V0_34 => {
            serde_json::from_value::<block_results::v0_34::DialectResponse>(value).map(Into::into)
        }
        _ => serde_json::from_value::<block_results::Response>(value),
    });
    Ok(decoded.map_err(<serde_json::Error as serde::de::Error>::custom)??)
}

/// The IBC events of a block. `tx_hashes[i]` names the block's i-th transaction; pass an empty slice when the
/// hashes are not at hand.
pub fn decode_block_results(res: &block_results::Response, tx_hashes: &[String]) -> DecodedEvents {
    let height = res.height.value();
    let mut out = DecodedEvents::default();
    let mut take = |events: &[abci::Event], tx_hash: Option<&String>| {
        for event in events {
            match decode_event(event) {
                Ok(Some(ibc)) => out.events.push(ObservedEvent {
                    height,
                    tx_hash: tx_hash.cloned(),
                    event: ibc,
                }),
                Ok(None) => {}
                Err(reason) => out.errors.push(EventError {
                    height,
                    event: event.kind.clone(),
                    reason,
                }),
            }
        }
    };
    if let Some(events) = &res.begin_block_events {
        take(events, None);
    }
    for (i, tx) in res.txs_results.iter().flatten().enumerate() {
        // Failed transactions' events were reverted; they describe nothing that happened.
        if tx.code.is_ok() {
            take(&tx.events, tx_hashes.get(i));
        }
    }
    if let Some(events) = &res.end_block_events {
        take(events, None);
    }
    take(&res.finalize_block_events, None);
    out
}

/// The IBC events of one successful transaction at `height` (e.g. from `tx_search`).
pub fn decode_tx_events(height: u64, tx_hash: &str, events: &[abci::Event]) -> DecodedEvents {
    let mut out = DecodedEvents::default();
    for event in events {
        match decode_event(event) {
            Ok(Some(ibc)) => out.events.push(ObservedEvent {
                height,
                tx_hash: Some(tx_hash.to_owned()),
                event: ibc,
            }),
            Ok(None) => {}
            Err(reason) => out.errors.push(EventError {
                height,
                event: event.kind.clone(),
                reason,
            }),
        }
    }
    out
}

/// One event's attributes, decoded from whatever the wire encoding was. Values stay bytes until read as text,
/// so a value that is not UTF-8 (ibc-go's deprecated `packet_data` of binary data, base64 on CometBFT 0.34)
/// fails only the read that needs it.
struct Attributes<'a> {
    kind: &'a str,
    map: HashMap<String, Vec<u8>>,
}

impl Attributes<'_> {
    fn text(&self, key: &str) -> Result<Option<&str>, String> {
        self.map
            .get(key)
            .map(|v| std::str::from_utf8(v).map_err(|_| format!("attribute {key} is not UTF-8")))
            .transpose()
    }

    fn get(&self, key: &str) -> Result<&str, String> {
        self.text(key)?
            .ok_or_else(|| format!("missing attribute {key}"))
    }

    fn opt(&self, key: &str) -> Option<&str> {
        self.text(key).ok().flatten().filter(|v| !v.is_empty())
    }

    fn id<T: std::str::FromStr>(&self, key: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.get(key)?;
        raw.parse().map_err(|e| format!("attribute {key}: {e}"))
    }

    fn opt_id<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.opt(key)
            .map(|raw| raw.parse().map_err(|e| format!("attribute {key}: {e}")))
            .transpose()
    }

    fn height(&self, key: &str) -> Result<Height, String> {
        let raw = self.get(key)?;
        raw.parse().map_err(|e| format!("attribute {key}: {e}"))
    }

    /// The hex attribute decoded (ibc-go v7+, ibc-rs), else the raw one (older chains; gone in ibc-go v10).
    fn bytes(&self, hex_key: &str, raw_key: &str) -> Result<Vec<u8>, String> {
        match self.opt(hex_key) {
            Some(h) => hex::decode(h).map_err(|e| format!("attribute {hex_key}: {e}")),
            None => Ok(self.map.get(raw_key).cloned().unwrap_or_default()),
        }
    }

    /// An IBC v2 packet event (ibc-go v10): it names the packet's source and destination clients where
    /// classic packets name ports and channels. relayd relays classic channels only.
    fn is_v2_packet(&self) -> bool {
        self.map.contains_key("packet_source_client") && !self.map.contains_key("packet_src_port")
    }

    fn connection(&self) -> Result<ConnectionAttributes, String> {
        Ok(ConnectionAttributes {
            connection_id: self.id("connection_id")?,
            client_id: self.id("client_id")?,
            counterparty_connection_id: self.opt_id("counterparty_connection_id")?,
            counterparty_client_id: self.id("counterparty_client_id")?,
        })
    }

    fn channel(&self) -> Result<ChannelAttributes, String> {
        Ok(ChannelAttributes {
            port_id: self.id("port_id")?,
            channel_id: self.id("channel_id")?,
            counterparty_port_id: self.id("counterparty_port_id")?,
            counterparty_channel_id: self.opt_id("counterparty_channel_id")?,
            connection_id: self.id("connection_id")?,
        })
    }

    fn packet(&self) -> Result<Packet, String> {
        let timeout_height = self.height("packet_timeout_height")?;
        let sequence: u64 = self.id("packet_sequence")?;
        Ok(Packet {
            sequence: Sequence(sequence),
            source_port: self.id::<PortId>("packet_src_port")?,
            source_channel: self.id::<ChannelId>("packet_src_channel")?,
            destination_port: self.id::<PortId>("packet_dst_port")?,
            destination_channel: self.id::<ChannelId>("packet_dst_channel")?,
            data: self.bytes("packet_data_hex", "packet_data")?,
            // "0-0" is how chains write "no height timeout".
            timeout_height: (timeout_height != Height::new(0, 0)).then_some(timeout_height),
            timeout_timestamp_ns: self.id("packet_timeout_timestamp")?,
        })
    }
}

/// The typed event, `Ok(None)` for events that are not IBC events relayd acts on.
pub(crate) fn decode_event(event: &abci::Event) -> Result<Option<IbcEvent>, String> {
    const KINDS: &[&str] = &[
        "create_client",
        "update_client",
        "connection_open_init",
        "connection_open_try",
        "connection_open_ack",
        "connection_open_confirm",
        "channel_open_init",
        "channel_open_try",
        "channel_open_ack",
        "channel_open_confirm",
        "channel_close_init",
        "channel_close_confirm",
        "channel_closed",
        "channel_close",
        "send_packet",
        "recv_packet",
        "write_acknowledgement",
        "acknowledge_packet",
        "timeout_packet",
    ];
    let Some(kind) = KINDS.iter().find(|k| **k == event.kind) else {
        return Ok(None);
    };
    let a = Attributes {
        kind,
        map: attributes::attribute_map(event)?,
    };
    if a.is_v2_packet() {
        return Ok(None);
    }
    let event = match a.kind {
        "create_client" => IbcEvent::CreateClient {
            client_id: a.id::<ClientId>("client_id")?,
            client_type: a.get("client_type")?.to_owned(),
            consensus_height: a.height("consensus_height")?,
        },
        "update_client" => {
            // ibc-go lists every height in consensus_heights; older chains only set consensus_height.
            let heights = a.opt("consensus_heights").or(a.opt("consensus_height"));
            let consensus_heights = heights
                .unwrap_or_default()
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| {
                    h.parse()
                        .map_err(|e| format!("attribute consensus_heights: {e}"))
                })
                .collect::<Result<_, String>>()?;
            // The installed header, hex-encoded `Any` (ibc-rs, ibc-go before v7); later ibc-go leaves it out.
            let header = a
                .opt("header")
                .map(|h| hex::decode(h).map_err(|e| format!("attribute header: {e}")))
                .transpose()?;
            IbcEvent::UpdateClient {
                client_id: a.id("client_id")?,
                client_type: a.get("client_type")?.to_owned(),
                consensus_heights,
                header,
            }
        }
        "connection_open_init" => IbcEvent::ConnectionOpenInit(a.connection()?),
        "connection_open_try" => IbcEvent::ConnectionOpenTry(a.connection()?),
        "connection_open_ack" => IbcEvent::ConnectionOpenAck(a.connection()?),
        "connection_open_confirm" => IbcEvent::ConnectionOpenConfirm(a.connection()?),
        "channel_open_init" => IbcEvent::ChannelOpenInit(a.channel()?),
        "channel_open_try" => IbcEvent::ChannelOpenTry(a.channel()?),
        "channel_open_ack" => IbcEvent::ChannelOpenAck(a.channel()?),
        "channel_open_confirm" => IbcEvent::ChannelOpenConfirm(a.channel()?),
        "channel_close_init" => IbcEvent::ChannelCloseInit(a.channel()?),
        "channel_close_confirm" => IbcEvent::ChannelCloseConfirm(a.channel()?),
        // ibc-go names it `channel_closed`, ibc-rs `channel_close`.
        "channel_closed" | "channel_close" => IbcEvent::ChannelClosed(a.channel()?),
        "send_packet" => IbcEvent::SendPacket(a.packet()?),
        "recv_packet" => IbcEvent::RecvPacket(a.packet()?),
        "write_acknowledgement" => IbcEvent::WriteAcknowledgement {
            packet: a.packet()?,
            ack: a.bytes("packet_ack_hex", "packet_ack")?,
        },
        "acknowledge_packet" => IbcEvent::AcknowledgePacket(a.packet()?),
        "timeout_packet" => IbcEvent::TimeoutPacket(a.packet()?),
        other => return Err(format!("unhandled kind {other}")),
    };
    Ok(Some(event))
}

mod attributes;

#[cfg(test)]
mod ibc_go_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(rel: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../").join(rel);
        std::fs::read_to_string(path).expect("fixture")
    }

    fn decoded(file: &str, mode: CompatMode) -> DecodedEvents {
        let res = parse_block_results(&fixture(file), mode).expect("parses");
        decode_block_results(&res, &["AA".into(), "BB".into(), "CC".into()])
    }

    #[test]
    fn both_encodings_give_the_same_events() {
        let v38 = decoded(
            "tests/fixtures/cosmos/block_results_ibc_v0_38.json",
            CompatMode::V0_38,
        );
        let v34 = decoded(
            "tests/fixtures/cosmos/block_results_ibc_v0_34.json",
            CompatMode::V0_34,
        );
        assert_eq!(v38.events, v34.events);
        assert_eq!(v38.errors, v34.errors);
        // Base64 attributes read in 0.38's mode, as from a chain that mixes the two (Sei).
        let mixed = decoded(
            "tests/fixtures/cosmos/block_results_ibc_v0_34.json",
            CompatMode::V0_38,
        );
        assert_eq!(v38.events, mixed.events);
        assert_eq!(v38.errors, mixed.errors);
        let kinds: Vec<_> = v38.events.iter().map(|e| e.event.kind()).collect();
        assert_eq!(
            kinds,
            [
                "send_packet",
                "update_client",
                "channel_open_try",
                "write_acknowledgement"
            ]
        );
    }

    #[test]
    fn packets_and_handshakes_are_typed() {
        let out = decoded(
            "tests/fixtures/cosmos/block_results_ibc_v0_38.json",
            CompatMode::V0_38,
        );
        let send = &out.events[0];
        assert_eq!((send.height, send.tx_hash.as_deref()), (42, Some("AA")));
        let IbcEvent::SendPacket(p) = &send.event else {
            panic!("not a send_packet: {send:?}")
        };
        assert_eq!(p.sequence, Sequence(7));
        assert_eq!(p.source_channel.as_str(), "channel-0");
        assert_eq!(p.destination_channel.as_str(), "channel-1");
        assert_eq!(p.timeout_height, Some(Height::new(1, 1000)));
        assert_eq!(p.timeout_timestamp_ns, 0);
        assert!(p.data.starts_with(b"{\"amount\":\"100\""));

        assert_eq!(
            out.events[1].event,
            IbcEvent::UpdateClient {
                client_id: "07-tendermint-0".parse().unwrap(),
                client_type: "07-tendermint".into(),
                consensus_heights: vec![Height::new(1, 20)],
                header: None,
            }
        );
        let try_event = &out.events[2].event;
        assert_eq!(
            try_event.handshake_state(),
            Some(relayd_messages::HandshakeState::OpenTry)
        );
        let IbcEvent::ChannelOpenTry(c) = try_event else {
            panic!()
        };
        assert_eq!(
            c.counterparty_channel_id.as_ref().map(|c| c.as_str()),
            Some("channel-0")
        );
        assert_eq!(out.events[2].tx_hash.as_deref(), Some("BB"));

        let IbcEvent::WriteAcknowledgement { ack, .. } = &out.events[3].event else {
            panic!()
        };
        assert_eq!(ack.as_slice(), b"{\"result\":\"AQ==\"}");
    }

    #[test]
    fn malformed_events_are_reported_and_failed_txs_ignored() {
        let out = decoded(
            "tests/fixtures/cosmos/block_results_ibc_v0_38.json",
            CompatMode::V0_38,
        );
        assert_eq!(out.errors.len(), 1);
        assert_eq!(
            out.errors[0].to_string(),
            "height 42: recv_packet event: missing attribute packet_sequence"
        );
        // The failed tx (code 5) sent sequence 99; nothing of it may surface.
        assert!(!out
            .events
            .iter()
            .any(|e| matches!(&e.event, IbcEvent::SendPacket(p) if p.sequence == Sequence(99))));
    }

    #[test]
    fn a_real_block_without_ibc_events_decodes_to_nothing() {
        let res = parse_block_results(
            &fixture("tests/fixtures/cometbft-v0_38/block_results_at_height_10.json"),
            CompatMode::V0_38,
        )
        .expect("real fixture parses");
        let out = decode_block_results(&res, &[]);
        assert!(out.events.is_empty() && out.errors.is_empty());
    }

    #[test]
    fn update_client_keeps_the_installed_header() {
        let event = |header: &str| {
            abci::Event::new(
                "update_client",
                [
                    ("client_id", "07-tendermint-0"),
                    ("client_type", "07-tendermint"),
                    ("consensus_height", "0-5"),
                    ("consensus_heights", "0-5"),
                    ("header", header),
                ],
            )
        };
        let Some(IbcEvent::UpdateClient { header, .. }) = decode_event(&event("0a0b")).unwrap()
        else {
            panic!("not an update_client")
        };
        assert_eq!(header, Some(vec![0x0a, 0x0b]));
        // ibc-go v7+ writes no header; an absent or empty attribute is not an error.
        let Some(IbcEvent::UpdateClient { header, .. }) = decode_event(&event("")).unwrap() else {
            panic!("not an update_client")
        };
        assert_eq!(header, None);
        assert!(decode_event(&event("zz"))
            .unwrap_err()
            .contains("attribute header"));
    }

    #[test]
    fn an_ordered_timeout_s_channel_close_reads_under_either_name() {
        // ibc-go names the event `channel_closed`, ibc-rs `channel_close`.
        for kind in ["channel_closed", "channel_close"] {
            let event = abci::Event::new(
                kind,
                [
                    ("port_id", "ping"),
                    ("channel_id", "channel-1"),
                    ("counterparty_port_id", "ping"),
                    ("counterparty_channel_id", "channel-4"),
                    ("connection_id", "connection-0"),
                    ("channel_ordering", "ORDER_ORDERED"),
                ],
            );
            let Some(IbcEvent::ChannelClosed(a)) = decode_event(&event).unwrap() else {
                panic!("{kind} is not a channel closed event")
            };
            assert_eq!(a.channel_id.as_str(), "channel-1");
            assert_eq!(
                a.counterparty_channel_id.as_ref().map(|c| c.as_str()),
                Some("channel-4")
            );
        }
    }

    #[test]
    fn rpc_errors_and_garbage_are_errors() {
        let err = parse_block_results(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error","data":"height 9 is not available"}}"#, CompatMode::V0_38).unwrap_err();
        assert!(err.to_string().contains("height 9 is not available"));
        assert!(parse_block_results("not json", CompatMode::V0_38).is_err());
    }
}
