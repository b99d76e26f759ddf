//! Two devnet chains relay an ICS-20 transfer end to end, driven only over their RPC by the minimal relayer in
//! `support/`: clients, connection and channel handshakes, a relayed transfer with its acknowledgement, a timed-out
//! transfer refunded through MsgTimeout, and a forged proof and a tampered header that ibc-rs rejects without
//! hurting the chain.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use devnet::{ChainOptions, RunningChain};
use ibc_proto::ibc::core::channel::v1::{Channel, State as ChanState};
use ibc_proto::ibc::core::client::v1::Height;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ibc_proto::ibc::core::connection::v1::{ConnectionEnd, State as ConnState};
use prost::Message;

use support::chain::{Gas, Wallet, FEE_DENOM};
use support::handshake::{channel_path, connect_transfer, End};
use support::packet::{
    commitment_path, escrow_address, prove_commitment, receipt_path, recv_msg, relay_ack,
    relay_recv, relay_timeout, sent_packet, transfer, voucher_denom, PacketWatcher, ICS20_VERSION,
    TRANSFER_PORT,
};
use support::proof;

/// The ICS-20 success acknowledgement (`AQ==` is base64 of the byte 1).
const ICS20_SUCCESS_ACK: &[u8] = br#"{"result":"AQ=="}"#;

async fn stored(end: &End, path: &str) -> Vec<u8> {
    end.chain
        .query("store/ibc/key", path.as_bytes().to_vec(), None, false)
        .await
        .expect("store query")
        .value
}

async fn assert_open(a: &End, b: &End) {
    for (end, other) in [(a, b), (b, a)] {
        let conn = ConnectionEnd::decode(
            stored(end, &format!("connections/{}", end.connection_id))
                .await
                .as_slice(),
        )
        .expect("connection end");
        assert_eq!(
            conn.counterparty.map(|c| c.connection_id),
            Some(other.connection_id.clone())
        );
        assert_eq!(
            conn.state,
            ConnState::Open as i32,
            "{} connection",
            end.chain.id
        );
        let chan = Channel::decode(
            stored(end, &channel_path(TRANSFER_PORT, &end.channel_id))
                .await
                .as_slice(),
        )
        .expect("channel end");
        assert_eq!(
            chan.state,
            ChanState::Open as i32,
            "{} channel",
            end.chain.id
        );
        assert_eq!(chan.version, ICS20_VERSION);
        assert_eq!(
            chan.counterparty.map(|c| c.channel_id),
            Some(other.channel_id.clone())
        );
    }
}

fn ten_minutes_from_now_ns() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    (now + Duration::from_secs(600)).as_nanos() as u64
}

async fn run(chains: &[RunningChain]) {
    let (mut a, mut b) = connect_transfer(chains).await;
    assert_open(&a, &b).await;

    let user1 = Wallet::genesis(&chains[0], "user1");
    let user2 = Wallet::genesis(&chains[1], "user2");
    let escrow = escrow_address(TRANSFER_PORT, &a.channel_id);
    let voucher = voucher_denom(TRANSFER_PORT, &b.channel_id, FEE_DENOM);

    // An event-driven relayer learns of packets from a WebSocket subscription; the same packet must also be
    // readable from the transaction's own result.
    let mut watcher =
        PacketWatcher::subscribe(&chains[0].websocket_url(), TRANSFER_PORT, &a.channel_id).await;

    // 1. A transfer relayed both ways.
    let user1_start = a.chain.balance(&user1.address, FEE_DENOM).await;
    let sent = transfer(
        &a,
        &user1,
        &user2.address,
        1000,
        None,
        ten_minutes_from_now_ns(),
    )
    .await;
    let packet = sent_packet(&sent);
    assert_eq!(watcher.next().await, (sent.height, packet.clone()));
    assert_eq!(packet.destination_channel, b.channel_id);
    let commitment = commitment_path(TRANSFER_PORT, &a.channel_id, packet.sequence);
    assert!(!stored(&a, &commitment).await.is_empty());
    let ack = relay_recv(&a, &mut b, &packet).await;
    assert_eq!(ack, ICS20_SUCCESS_ACK);
    relay_ack(&b, &mut a, &packet, ack).await;
    assert_eq!(
        a.chain.balance(&user1.address, FEE_DENOM).await,
        user1_start - 1000 - sent.fee
    );
    assert_eq!(a.chain.balance(&escrow, FEE_DENOM).await, 1000);
    assert_eq!(b.chain.balance(&user2.address, &voucher).await, 1000);
    assert!(
        stored(&a, &commitment).await.is_empty(),
        "commitment left after the ack"
    );

    // 2. A transfer that times out on ibc-1 and is refunded on ibc-0.
    let user1_start = a.chain.balance(&user1.address, FEE_DENOM).await;
    let timeout = Height {
        revision_number: b.chain.revision,
        revision_height: b.chain.height().await + 4,
    };
    let sent = transfer(&a, &user1, &user2.address, 777, Some(timeout), 0).await;
    let packet = sent_packet(&sent);
    assert_eq!(watcher.next().await, (sent.height, packet.clone()));
    watcher.close().await;
    assert_eq!(packet.timeout_height, Some(timeout));
    assert_eq!(a.chain.balance(&escrow, FEE_DENOM).await, 1777);
    b.chain.wait_until_height(timeout.revision_height).await;
    relay_timeout(&b, &mut a, &packet)
        .await
        .expect("timeout relayed");
    assert_eq!(
        a.chain.balance(&user1.address, FEE_DENOM).await,
        user1_start - sent.fee
    );
    assert_eq!(a.chain.balance(&escrow, FEE_DENOM).await, 1000);
    let receipt = receipt_path(TRANSFER_PORT, &b.channel_id, packet.sequence);
    assert!(stored(&b, &receipt).await.is_empty());
    assert!(stored(
        &a,
        &commitment_path(TRANSFER_PORT, &a.channel_id, packet.sequence)
    )
    .await
    .is_empty());
    assert_eq!(b.chain.balance(&user2.address, &voucher).await, 1000);

    // 3. A forged proof: the local check catches it, ibc-rs rejects it in a block, the chain goes on and the
    // genuine proof still relays the packet.
    let sent = transfer(
        &a,
        &user1,
        &user2.address,
        500,
        None,
        ten_minutes_from_now_ns(),
    )
    .await;
    let packet = sent_packet(&sent);
    let p = prove_commitment(&a, &mut b, &packet).await;
    if !p.updates.is_empty() {
        b.chain.submit(&b.chain.relayer, &p.updates).await;
    }
    let genuine = MerkleProof::decode(p.proofs[0].as_slice()).expect("merkle proof");
    let forged = proof::forge(&genuine);
    let path = commitment_path(TRANSFER_PORT, &a.channel_id, packet.sequence);
    proof::verify_membership(&genuine, &p.app_hash, &path, &p.values[0]).expect("genuine proof");
    assert!(proof::verify_membership(&forged, &p.app_hash, &path, &p.values[0]).is_err());
    let bad = recv_msg(&b, &packet, forged.encode_to_vec(), p.proof_height);
    let rejected = b
        .chain
        .broadcast(&b.chain.relayer, &[bad], Gas::Fixed(400_000))
        .await
        .expect("CheckTx only checks signature, sequence and fee");
    assert_ne!(rejected.code, 0, "forged proof accepted");
    // ibc-go's ErrFailedMembershipVerification.
    assert_eq!(
        (rejected.codespace.as_str(), rejected.code),
        ("client", 30),
        "{}",
        rejected.log
    );
    // The rejection must come from the proof check itself, not from anything else about the message.
    assert!(
        rejected.log.contains("failed ICS23 verification"),
        "{}",
        rejected.log
    );
    assert!(stored(
        &b,
        &receipt_path(TRANSFER_PORT, &b.channel_id, packet.sequence)
    )
    .await
    .is_empty());
    // A header whose app hash was altered after signing: the local light client refuses it, and so does ibc-rs
    // when it is sent anyway; no consensus state appears for that height.
    let h = a.chain.height().await;
    let (verdict, bad_update) = b.client.tampered_update(&b.chain, &a.chain, h).await;
    assert!(verdict.is_err(), "tampered header verified locally");
    let rejected = b
        .chain
        .broadcast(&b.chain.relayer, &[bad_update], Gas::Fixed(400_000))
        .await
        .expect("CheckTx only checks signature, sequence and fee");
    assert_ne!(rejected.code, 0, "tampered header accepted");
    // ibc-rs reports the light client's own failure (`ClientSpecific`), which has no ibc-go code: the module's
    // generic one, ErrInvalidClient.
    assert_eq!(
        (rejected.codespace.as_str(), rejected.code),
        ("client", 3),
        "{}",
        rejected.log
    );
    assert!(
        rejected.log.contains("failed to verify header"),
        "{}",
        rejected.log
    );
    assert!(!b.client.has_consensus_state(&b.chain, &a.chain, h).await);

    // Both chains keep producing blocks, and the genuine proof still relays the packet.
    b.chain.wait_until_height(rejected.height + 3).await;
    let ack = relay_recv(&a, &mut b, &packet).await;
    assert_eq!(ack, ICS20_SUCCESS_ACK);
    relay_ack(&b, &mut a, &packet, ack).await;
    assert_eq!(b.chain.balance(&user2.address, &voucher).await, 1500);
    assert_eq!(a.chain.balance(&escrow, FEE_DENOM).await, 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ics20_transfer_is_relayed_over_rpc() {
    let chains = devnet::start_chains(2, &ChainOptions::local("ibc", Duration::from_millis(200)))
        .await
        .expect("start chains");
    // A hang guard only: a stuck relay step fails the test instead of blocking the suite.
    let outcome = tokio::time::timeout(Duration::from_secs(300), run(&chains)).await;
    for chain in chains {
        chain.shutdown().await;
    }
    outcome.expect("the relay flow hung");
}
