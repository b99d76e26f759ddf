//! ICS-20 spam caps, pure: whether a packet's decoded `FungibleTokenPacketData` carries a memo or receiver
//! larger than the operator allows. Such a packet costs the relayer a receive (and a proof) for data no
//! honest transfer needs, so relayd records it as skipped instead of relaying it.

use ibc_proto::ibc::applications::transfer::v2::FungibleTokenPacketData;
use relayd_messages::{Packet, SkipReason};

/// The ICS-20 port: only packets sent from it are read as `FungibleTokenPacketData` and capped.
pub const ICS20_PORT: &str = "transfer";

/// The configured caps, in bytes (`[global] ics20_max_memo_size`, `ics20_max_receiver_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ics20Caps {
    /// Longest memo relayed.
    pub max_memo: u64,
    /// Longest receiver relayed.
    pub max_receiver: u64,
}

impl Default for Ics20Caps {
    fn default() -> Self {
        Self {
            max_memo: relayd_config::defaults::ICS20_MAX_MEMO_SIZE,
            max_receiver: relayd_config::defaults::ICS20_MAX_RECEIVER_SIZE,
        }
    }
}

impl Ics20Caps {
    /// The caps of `config`.
    pub fn of(config: &relayd_config::Config) -> Self {
        Self {
            max_memo: config.global.ics20_max_memo_size,
            max_receiver: config.global.ics20_max_receiver_size,
        }
    }
}

/// Why a packet is not relayed: the typed reason and a sentence for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The reason, as counted.
    pub reason: SkipReason,
    /// What was over which cap, for the operator.
    pub detail: String,
}

/// Whether `packet` is skipped under `caps`. Packets of other ports, and transfer packets whose data is not
/// ICS-20 JSON (the destination refuses those itself), are not capped.
pub fn verdict(caps: &Ics20Caps, packet: &Packet) -> Option<Skip> {
    if packet.source_port.as_str() != ICS20_PORT {
        return None;
    }
    let data: FungibleTokenPacketData = serde_json::from_slice(&packet.data).ok()?;
    let over = |len: usize, max: u64| u64::try_from(len).map_or(true, |len| len > max);
    if over(data.memo.len(), caps.max_memo) {
        return Some(Skip {
            reason: SkipReason::MemoTooLarge,
            detail: format!(
                "ICS-20 memo is {} bytes, over ics20_max_memo_size ({} bytes): not relayed",
                data.memo.len(),
                caps.max_memo
            ),
        });
    }
    if over(data.receiver.len(), caps.max_receiver) {
        return Some(Skip {
            reason: SkipReason::ReceiverTooLarge,
            detail: format!(
                "ICS-20 receiver is {} bytes, over ics20_max_receiver_size ({} bytes): not relayed",
                data.receiver.len(),
                caps.max_receiver
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use relayd_messages::{ChannelId, PortId, Sequence};

    use super::*;

    fn packet(port: &str, memo: usize, receiver: usize) -> Packet {
        let data = serde_json::json!({
            "denom": "stake",
            "amount": "10",
            "sender": "cosmos1sender",
            "receiver": "r".repeat(receiver),
            "memo": "m".repeat(memo),
        });
        Packet {
            sequence: Sequence(1),
            source_port: PortId::new(port.to_owned()).unwrap(),
            source_channel: ChannelId::new("channel-0".to_owned()).unwrap(),
            destination_port: PortId::new(port.to_owned()).unwrap(),
            destination_channel: ChannelId::new("channel-0".to_owned()).unwrap(),
            data: serde_json::to_vec(&data).unwrap(),
            timeout_height: None,
            timeout_timestamp_ns: 1,
        }
    }

    const CAPS: Ics20Caps = Ics20Caps {
        max_memo: 100,
        max_receiver: 10,
    };

    #[test]
    fn sizes_up_to_the_caps_are_relayed_and_one_byte_more_is_not() {
        assert_eq!(verdict(&CAPS, &packet("transfer", 100, 10)), None);
        let memo = verdict(&CAPS, &packet("transfer", 101, 10)).unwrap();
        assert_eq!(memo.reason, SkipReason::MemoTooLarge);
        assert!(memo.detail.contains("101 bytes"), "{}", memo.detail);
        let receiver = verdict(&CAPS, &packet("transfer", 0, 11)).unwrap();
        assert_eq!(receiver.reason, SkipReason::ReceiverTooLarge);
        assert!(receiver.detail.contains("ics20_max_receiver_size"));
    }

    #[test]
    fn both_over_names_the_memo_first() {
        let skip = verdict(&CAPS, &packet("transfer", 500, 500)).unwrap();
        assert_eq!(skip.reason, SkipReason::MemoTooLarge);
    }

    #[test]
    fn other_ports_and_undecodable_data_are_not_capped() {
        assert_eq!(verdict(&CAPS, &packet("oracle", 500, 500)), None);
        let mut p = packet("transfer", 500, 500);
        p.data = b"\x00not json".to_vec();
        assert_eq!(verdict(&CAPS, &p), None);
    }

    #[test]
    fn a_packet_without_a_memo_key_decodes_with_an_empty_memo() {
        let mut p = packet("transfer", 0, 5);
        p.data = br#"{"denom":"stake","amount":"1","sender":"a","receiver":"bbbbb"}"#.to_vec();
        assert_eq!(verdict(&CAPS, &p), None);
        p.data =
            br#"{"denom":"stake","amount":"1","sender":"a","receiver":"bbbbbbbbbbbb"}"#.to_vec();
        assert_eq!(
            verdict(&CAPS, &p).map(|s| s.reason),
            Some(SkipReason::ReceiverTooLarge)
        );
    }

    #[test]
    fn the_defaults_are_hermes_defaults() {
        assert_eq!(
            Ics20Caps::default(),
            Ics20Caps {
                max_memo: 32_768,
                max_receiver: 2_048
            }
        );
    }
}
