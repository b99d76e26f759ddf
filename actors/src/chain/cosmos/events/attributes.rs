//! Reads an event's attributes whatever their wire encoding. CometBFT 0.34 writes keys and values in base64 and
//! tendermint-rpc decodes them in its 0.34 mode; some chains (Sei) report a 0.38 version yet still write base64,
//! so in 0.38 mode such attributes arrive as base64 text. An event is read as base64 only when it carries none of
//! the plain keys relayd reads and every key and value is standard base64 whose key decodes to an identifier, so
//! a plain event whose values happen to be valid base64 (a channel id such as `Y2hh`) stays plain.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tendermint::abci;

/// Every attribute key relayd reads from an IBC event (ibc-go v7 to v10, ibc-rs), plus the SDK's `msg_index`.
/// Each IBC event carries at least one of them, so a plain event always names one.
const PLAIN_KEYS: &[&str] = &[
    "client_id",
    "client_type",
    "consensus_height",
    "consensus_heights",
    "header",
    "connection_id",
    "counterparty_client_id",
    "counterparty_connection_id",
    "port_id",
    "channel_id",
    "counterparty_port_id",
    "counterparty_channel_id",
    "packet_sequence",
    "packet_src_port",
    "packet_src_channel",
    "packet_dst_port",
    "packet_dst_channel",
    "packet_data",
    "packet_data_hex",
    "packet_ack",
    "packet_ack_hex",
    "packet_timeout_height",
    "packet_timeout_timestamp",
    "packet_channel_ordering",
    "packet_connection",
    "packet_source_client",
    "packet_dest_client",
    "msg_index",
];

/// The event's attributes by key, values as bytes; base64-encoded events (see the module comment) decoded.
pub(super) fn attribute_map(event: &abci::Event) -> Result<HashMap<String, Vec<u8>>, String> {
    let base64 = is_base64_encoded(event);
    let mut map = HashMap::new();
    for attr in &event.attributes {
        let (key, value) = if base64 {
            // Checked decodable by `is_base64_encoded`; an error here would still be reported, not hidden.
            let key = STANDARD
                .decode(attr.key_bytes())
                .map_err(|e| format!("base64 attribute key: {e}"))?;
            let value = STANDARD
                .decode(attr.value_bytes())
                .map_err(|e| format!("base64 attribute value: {e}"))?;
            (key, value)
        } else {
            (attr.key_bytes().to_vec(), attr.value_bytes().to_vec())
        };
        let key = String::from_utf8(key).map_err(|_| "attribute key is not UTF-8".to_owned())?;
        map.insert(key, value);
    }
    Ok(map)
}

/// Whether the event's attributes are still base64 text (see the module comment).
fn is_base64_encoded(event: &abci::Event) -> bool {
    !event.attributes.is_empty()
        && event.attributes.iter().all(|attr| {
            let key = attr.key_bytes();
            let plain_key = std::str::from_utf8(key).is_ok_and(|k| PLAIN_KEYS.contains(&k));
            !plain_key
                && STANDARD
                    .decode(key)
                    .is_ok_and(|k| !k.is_empty() && k.iter().all(is_identifier_byte))
                && STANDARD.decode(attr.value_bytes()).is_ok()
        })
}

fn is_identifier_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attrs: &[(&str, &str)]) -> abci::Event {
        abci::Event::new("send_packet", attrs.iter().copied())
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn a_plain_event_stays_plain_even_when_its_values_are_valid_base64() {
        // "Y2hh" is valid base64 ("cha"), and so are "1234" and "" — but `channel_id` is a plain key.
        let e = event(&[
            ("channel_id", "Y2hh"),
            ("packet_sequence", "1234"),
            ("x", ""),
        ]);
        assert!(!is_base64_encoded(&e));
        let map = attribute_map(&e).unwrap();
        assert_eq!(map["channel_id"], b"Y2hh");
        assert_eq!(map["packet_sequence"], b"1234");
    }

    #[test]
    fn a_plain_event_of_unknown_keys_stays_plain_unless_every_key_decodes_to_an_identifier() {
        // "abcd" is valid base64 but decodes to bytes that name nothing.
        assert!(!is_base64_encoded(&event(&[("abcd", "Y2hh")])));
        // Not base64 at all.
        assert!(!is_base64_encoded(&event(&[("module", "ibc_channel")])));
        assert!(!is_base64_encoded(&event(&[])));
    }

    #[test]
    fn a_base64_event_is_decoded() {
        let e = event(&[
            (&b64("packet_sequence"), &b64("7")),
            (&b64("packet_src_channel"), &b64("channel-0")),
            (&b64("packet_data_hex"), &b64("7b7d")),
            (&b64("msg_index"), &b64("0")),
        ]);
        assert!(is_base64_encoded(&e));
        let map = attribute_map(&e).unwrap();
        assert_eq!(map["packet_sequence"], b"7");
        assert_eq!(map["packet_src_channel"], b"channel-0");
        assert_eq!(map["packet_data_hex"], b"7b7d");
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn a_base64_ibc_event_decodes_as_its_plain_twin() {
        let plain = [
            ("client_id", "07-tendermint-0"),
            ("client_type", "07-tendermint"),
            ("consensus_height", "1-5"),
        ];
        let encoded: Vec<_> = plain.iter().map(|(k, v)| (b64(k), b64(v))).collect();
        let twin = abci::Event::new("create_client", encoded);
        let plain = abci::Event::new("create_client", plain);
        assert_eq!(
            super::super::decode_event(&twin).unwrap(),
            super::super::decode_event(&plain).unwrap()
        );
        assert!(super::super::decode_event(&plain).unwrap().is_some());
    }

    #[test]
    fn one_plain_attribute_keeps_the_event_plain() {
        let e = event(&[(&b64("packet_sequence"), &b64("7")), ("channel_id", "Y2hh")]);
        assert!(!is_base64_encoded(&e));
        assert!(attribute_map(&e).unwrap().contains_key("channel_id"));
    }
}
