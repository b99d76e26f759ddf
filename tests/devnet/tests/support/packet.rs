//! ICS-20 transfers and packet relaying: the packet read back from `send_packet`, MsgRecvPacket with the packet
//! commitment proof, MsgAcknowledgement with the ack proof, MsgTimeout with the proof that no receipt exists.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use ibc_proto::ibc::core::channel::v1::{MsgAcknowledgement, MsgRecvPacket, MsgTimeout, Packet};
use ibc_proto::ibc::core::client::v1::Height;
use sha2::{Digest, Sha256};
use tendermint::abci::Event;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::event::EventData;
use tendermint_rpc::query::{EventType, Query};
use tendermint_rpc::{SubscriptionClient, WebSocketClient};

use super::chain::{Included, Wallet, FEE_DENOM, HANG_GUARD};
use super::handshake::{prove, End, Proofs};
use super::light::any;

pub const TRANSFER_PORT: &str = "transfer";
pub const ICS20_VERSION: &str = "ics20-1";
pub const RECV_PACKET_URL: &str = "/ibc.core.channel.v1.MsgRecvPacket";

/// A timeout timestamp (ns since the epoch) an hour from now: far enough that no test packet times out.
pub fn an_hour_from_now() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    now.as_nanos() as u64 + 3_600_000_000_000
}

pub fn commitment_path(port: &str, channel: &str, seq: u64) -> String {
    format!("commitments/ports/{port}/channels/{channel}/sequences/{seq}")
}

pub fn ack_path(port: &str, channel: &str, seq: u64) -> String {
    format!("acks/ports/{port}/channels/{channel}/sequences/{seq}")
}

pub fn receipt_path(port: &str, channel: &str, seq: u64) -> String {
    format!("receipts/ports/{port}/channels/{channel}/sequences/{seq}")
}

/// The voucher denomination `denom` becomes after crossing into `port/channel` (the receiving end).
pub fn voucher_denom(port: &str, channel: &str, denom: &str) -> String {
    let trace = format!("{port}/{channel}/{denom}");
    format!(
        "ibc/{}",
        hex::encode_upper(Sha256::digest(trace.as_bytes()))
    )
}

/// The escrow account of a transfer channel as ibc-go derives it (ADR-028 style): the first 20 bytes of
/// sha256("ics20-1" ‖ 0x00 ‖ "port/channel"), bech32 with the chain's `cosmos` prefix.
pub fn escrow_address(port: &str, channel: &str) -> String {
    let mut h = Sha256::new();
    h.update(ICS20_VERSION.as_bytes());
    h.update([0u8]);
    h.update(format!("{port}/{channel}").as_bytes());
    let bytes = h.finalize();
    cosmrs::AccountId::new("cosmos", &bytes[..20])
        .expect("20-byte account id")
        .to_string()
}

/// `sender` on `from`'s chain sends `amount` of the fee denom to `receiver` over `from`'s channel.
pub async fn transfer(
    from: &End,
    sender: &Wallet,
    receiver: &str,
    amount: u128,
    timeout_height: Option<Height>,
    timeout_timestamp: u64,
) -> Included {
    let msg = MsgTransfer {
        source_port: TRANSFER_PORT.to_owned(),
        source_channel: from.channel_id.clone(),
        token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
            denom: FEE_DENOM.to_owned(),
            amount: amount.to_string(),
        }),
        sender: sender.address.clone(),
        receiver: receiver.to_owned(),
        timeout_height,
        timeout_timestamp,
        memo: String::new(),
    };
    from.chain
        .submit(
            sender,
            &[any("/ibc.applications.transfer.v1.MsgTransfer", &msg)],
        )
        .await
}

/// The packet a transaction sent, rebuilt from its `send_packet` event.
pub fn sent_packet(inc: &Included) -> Packet {
    packet_from_events(&inc.events)
}

/// The packet of the first `send_packet` event among `events`.
pub fn packet_from_events(events: &[Event]) -> Packet {
    let event = events
        .iter()
        .find(|e| e.kind == "send_packet")
        .expect("a send_packet event");
    packet_from_event(event)
}

/// The packet one `send_packet` event describes.
pub fn packet_from_event(event: &Event) -> Packet {
    let get = |key: &str| {
        event
            .attributes
            .iter()
            .find(|a| a.key_str().ok() == Some(key))
            .and_then(|a| a.value_str().ok().map(str::to_owned))
            .unwrap_or_else(|| panic!("send_packet has no {key}"))
    };
    let timeout = get("packet_timeout_height");
    let (rev, h) = timeout.split_once('-').expect("timeout height rev-height");
    Packet {
        sequence: get("packet_sequence").parse().expect("sequence"),
        source_port: get("packet_src_port"),
        source_channel: get("packet_src_channel"),
        destination_port: get("packet_dst_port"),
        destination_channel: get("packet_dst_channel"),
        data: hex::decode(get("packet_data_hex")).expect("packet data hex"),
        timeout_height: Some(Height {
            revision_number: rev.parse().expect("revision"),
            revision_height: h.parse().expect("height"),
        }),
        timeout_timestamp: get("packet_timeout_timestamp").parse().expect("timestamp"),
    }
}

/// The proof of `packet`'s commitment on `src` for `dst`'s client, with the updates to send first.
pub async fn prove_commitment(src: &End, dst: &mut End, packet: &Packet) -> Proofs {
    let path = commitment_path(&packet.source_port, &packet.source_channel, packet.sequence);
    let p = prove(&src.chain, dst, &[path], None)
        .await
        .expect("commitment proof");
    assert!(
        !p.values[0].is_empty(),
        "packet {} not committed",
        packet.sequence
    );
    p
}

pub fn recv_msg(dst: &End, packet: &Packet, proof: Vec<u8>, proof_height: Height) -> Any {
    let msg = MsgRecvPacket {
        packet: Some(packet.clone()),
        proof_commitment: proof,
        proof_height: Some(proof_height),
        signer: dst.chain.relayer.address.clone(),
    };
    any(RECV_PACKET_URL, &msg)
}

/// Relays `packet` from `src` to `dst`; returns the acknowledgement `dst` wrote.
pub async fn relay_recv(src: &End, dst: &mut End, packet: &Packet) -> Vec<u8> {
    let p = prove_commitment(src, dst, packet).await;
    let mut msgs = p.updates;
    msgs.push(recv_msg(dst, packet, p.proofs[0].clone(), p.proof_height));
    let inc = dst.chain.submit(&dst.chain.relayer, &msgs).await;
    let ack = inc
        .attr("write_acknowledgement", "packet_ack_hex")
        .expect("write_acknowledgement event");
    hex::decode(ack).expect("ack hex")
}

/// Relays the acknowledgement of `packet` (written on `dst`) back to its source `src`.
pub async fn relay_ack(dst: &End, src: &mut End, packet: &Packet, ack: Vec<u8>) {
    let path = ack_path(
        &packet.destination_port,
        &packet.destination_channel,
        packet.sequence,
    );
    let p = prove(&dst.chain, src, &[path], None)
        .await
        .expect("ack proof");
    let msg = MsgAcknowledgement {
        packet: Some(packet.clone()),
        acknowledgement: ack,
        proof_acked: p.proofs[0].clone(),
        proof_height: Some(p.proof_height),
        signer: src.chain.relayer.address.clone(),
    };
    let mut msgs = p.updates;
    msgs.push(any("/ibc.core.channel.v1.MsgAcknowledgement", &msg));
    src.chain.submit(&src.chain.relayer, &msgs).await;
}

/// Relays a timeout of `packet` (never received on `dst`) back to `src`, proving the receipt's absence at a
/// height of `dst` at or past the packet's timeout height. `Err` if `dst` cannot prove the absence.
pub async fn relay_timeout(dst: &End, src: &mut End, packet: &Packet) -> Result<(), String> {
    let timeout = packet
        .timeout_height
        .expect("timeout height")
        .revision_height;
    // Proof height h+1 must reach the timeout height.
    let h = dst.chain.height().await.max(timeout.saturating_sub(1));
    let path = receipt_path(
        &packet.destination_port,
        &packet.destination_channel,
        packet.sequence,
    );
    let p = prove(&dst.chain, src, &[path], Some(h)).await?;
    assert!(p.values[0].is_empty(), "the packet was received");
    let msg = MsgTimeout {
        packet: Some(packet.clone()),
        proof_unreceived: p.proofs[0].clone(),
        proof_height: Some(p.proof_height),
        // Only ordered channels check it (against a proven nextSequenceRecv); on an unordered channel the
        // receipt's absence is the whole proof, so the packet's own sequence is sent, as relayers do.
        next_sequence_recv: packet.sequence,
        signer: src.chain.relayer.address.clone(),
    };
    let mut msgs = p.updates;
    msgs.push(any("/ibc.core.channel.v1.MsgTimeout", &msg));
    src.chain.submit(&src.chain.relayer, &msgs).await;
    Ok(())
}

/// Packets sent on one channel, as an event-driven relayer learns of them: a WebSocket subscription to the
/// transactions whose `send_packet` event names that source channel.
pub struct PacketWatcher {
    client: WebSocketClient,
    subscription: tendermint_rpc::Subscription,
    driver: tokio::task::JoinHandle<()>,
}

impl PacketWatcher {
    /// Subscribes at `websocket_url` to packets sent from `port/channel`.
    pub async fn subscribe(websocket_url: &str, port: &str, channel: &str) -> Self {
        let (client, driver) = WebSocketClient::builder(websocket_url.parse().expect("ws url"))
            .compat_mode(CompatMode::V0_38)
            .build()
            .await
            .expect("websocket client");
        let driver = tokio::spawn(async move {
            // The driver ends with an error when the chain shuts down; nothing is waiting on it by then.
            let _ = driver.run().await;
        });
        let query = Query::from(EventType::Tx)
            .and_eq("send_packet.packet_src_port", port)
            .and_eq("send_packet.packet_src_channel", channel);
        let subscription = client.subscribe(query).await.expect("subscribe");
        Self {
            client,
            subscription,
            driver,
        }
    }

    /// The next packet sent on the channel, with the height of its transaction.
    pub async fn next(&mut self) -> (u64, Packet) {
        use futures::StreamExt;
        let event = tokio::time::timeout(HANG_GUARD, self.subscription.next())
            .await
            .expect("no send_packet event arrived")
            .expect("subscription closed")
            .expect("subscription error");
        match event.data {
            EventData::Tx { tx_result } => (
                tx_result.height as u64,
                packet_from_events(&tx_result.result.events),
            ),
            other => panic!("expected a Tx event, got {other:?}"),
        }
    }

    /// Closes the WebSocket.
    pub async fn close(self) {
        let _ = self.client.close();
        let _ = self.driver.await;
    }
}

/// `sender` sends `count` transfers of `amount` each over `from`'s channel, `per_tx` messages per transaction;
/// returns the heights of the transactions.
pub async fn transfers(
    from: &End,
    sender: &Wallet,
    receiver: &str,
    amount: u128,
    count: usize,
    per_tx: usize,
    timeout_timestamp: u64,
) -> Vec<u64> {
    let msg = MsgTransfer {
        source_port: TRANSFER_PORT.to_owned(),
        source_channel: from.channel_id.clone(),
        token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
            denom: FEE_DENOM.to_owned(),
            amount: amount.to_string(),
        }),
        sender: sender.address.clone(),
        receiver: receiver.to_owned(),
        timeout_height: None,
        timeout_timestamp,
        memo: String::new(),
    };
    let one = any("/ibc.applications.transfer.v1.MsgTransfer", &msg);
    let mut heights = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(per_tx.max(1));
        let msgs = vec![one.clone(); n];
        let inc = from.chain.submit(sender, &msgs).await;
        assert_eq!(inc.code, 0, "transfers rejected: {}", inc.log);
        heights.push(inc.height);
        left -= n;
    }
    heights
}

/// The devnet ping application's port and channel version.
pub const PING_PORT: &str = "ping";
pub const PING_VERSION: &str = "ping-1";

/// Sends `count` pings from `from` on its ping channel, `per_tx` per transaction, each with data `"{tag}-{i}"`;
/// returns their sequences.
pub async fn pings(
    from: &End,
    sender: &Wallet,
    tag: &str,
    count: usize,
    per_tx: usize,
    timeout_timestamp: u64,
) -> Vec<u64> {
    let mut sequences = Vec::new();
    let all: Vec<Any> = (0..count)
        .map(|i| {
            any(
                devnet::app::ping::MSG_SEND_PING_TYPE_URL,
                &devnet::app::ping::MsgSendPing {
                    source_port: PING_PORT.to_owned(),
                    source_channel: from.channel_id.clone(),
                    data: format!("{tag}-{i}").into_bytes(),
                    timeout_revision_number: 0,
                    timeout_revision_height: 0,
                    timeout_timestamp,
                    sender: sender.address.clone(),
                },
            )
        })
        .collect();
    for chunk in all.chunks(per_tx.max(1)) {
        let inc = from.chain.submit(sender, chunk).await;
        for e in inc.events.iter().filter(|e| e.kind == "send_packet") {
            sequences.push(packet_from_event(e).sequence);
        }
    }
    sequences
}
