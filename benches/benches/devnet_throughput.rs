//! Load harness: how many IBC messages per second one devnet chain executes in its blocks, so relayer
//! benchmarks know the chain is not their bottleneck. Two chains are connected by the minimal relayer of the
//! devnet tests; then a burst of ICS-20 `MsgTransfer`s is executed on one chain and the matching
//! `MsgRecvPacket`s (with their ICS-23 proofs) on the other. The figure is messages / block execution time
//! (begin block + all transactions + commit), read from the node's block records.
//!
//! Run: `cargo bench -p relayd-benches --bench devnet_throughput` (set `DEVNET_BENCH_PACKETS` to change N).

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashSet;
use std::time::Duration;

use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use devnet::{start_chains, ChainOptions, RunningChain};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use ibc_proto::ibc::core::channel::v1::Packet;
use prost::Message;
use support::chain::Wallet;
use support::handshake::{connect_transfer, prove};
use support::packet::{commitment_path, packet_from_event, recv_msg, TRANSFER_PORT};

/// Messages per transaction in the burst.
const PER_TX: usize = 250;

fn sign(
    chain: &RunningChain,
    wallet: &Wallet,
    msgs: Vec<Any>,
    number: u64,
    sequence: u64,
) -> Vec<u8> {
    let gas = 100_000u64 * msgs.len() as u64 + 200_000;
    let fee = cosmrs::Coin {
        denom: "stake".parse().expect("denom"),
        amount: u128::from(gas) / 1000 + 1,
    };
    let body = Body::new(msgs, "", 0u32);
    let auth = SignerInfo::single_direct(Some(wallet.key.public_key()), sequence)
        .auth_info(Fee::from_amount_and_gas(fee, gas));
    SignDoc::new(
        &body,
        &auth,
        &chain.chain_id().parse().expect("chain id"),
        number,
    )
    .and_then(|d| d.sign(&wallet.key))
    .and_then(|r| r.to_bytes())
    .expect("signed tx")
}

/// Submits the transactions in-process (the RPC layer is not what is measured), waits until all are in
/// blocks, and returns (messages, block execution time, blocks) over the blocks that carried them.
async fn execute(chain: &RunningChain, txs: Vec<(Vec<u8>, usize)>) -> (usize, Duration, usize) {
    tokio::time::timeout(Duration::from_secs(300), execute_inner(chain, txs))
        .await
        .expect("transactions included within 300s")
}

async fn execute_inner(
    chain: &RunningChain,
    txs: Vec<(Vec<u8>, usize)>,
) -> (usize, Duration, usize) {
    let mut hashes = HashSet::new();
    for (tx, _) in &txs {
        let check = chain.node.submit_tx(tx.clone()).expect("node");
        assert!(check.code.is_ok(), "CheckTx: {}", check.log);
        hashes.insert(devnet::consensus::tx_hash(tx));
    }
    let total_msgs: usize = txs.iter().map(|(_, n)| n).sum();
    let start = chain.node.record().expect("record").latest_height() + 1;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let record = chain.node.record().expect("record");
        let included: usize = record
            .blocks()
            .iter()
            .skip(start as usize - 1)
            .flat_map(|b| b.txs.iter())
            .filter(|t| hashes.contains(&t.hash))
            .inspect(|t| assert!(t.result.code.is_ok(), "tx failed: {}", t.result.log))
            .count();
        if included == hashes.len() {
            let blocks: Vec<_> = record
                .blocks()
                .iter()
                .skip(start as usize - 1)
                .filter(|b| b.txs.iter().any(|t| hashes.contains(&t.hash)))
                .collect();
            let time = blocks.iter().map(|b| b.exec_time).sum();
            return (total_msgs, time, blocks.len());
        }
    }
}

fn report(what: &str, (msgs, time, blocks): (usize, Duration, usize)) {
    let rate = msgs as f64 / time.as_secs_f64();
    println!(
        "{what}: {msgs} messages in {blocks} block(s), {:.1} ms of block execution -> {rate:.0} msgs/s",
        time.as_secs_f64() * 1000.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("DEVNET_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let chains = start_chains(2, &ChainOptions::local("ibc", Duration::from_millis(200)))
        .await
        .expect("devnet chains");
    let (a, mut b) = connect_transfer(&chains).await;

    // Burst 1: n transfers on ibc-0.
    let user1 = Wallet::genesis(&chains[0], "user1");
    let receiver = Wallet::genesis(&chains[1], "user2").address;
    let (number, mut sequence) = a.chain.account(&user1.address).await;
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        + 3_600_000_000_000;
    let transfer = |_: usize| {
        let msg = MsgTransfer {
            source_port: TRANSFER_PORT.into(),
            source_channel: a.channel_id.clone(),
            token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
                denom: "stake".into(),
                amount: "1".into(),
            }),
            sender: user1.address.clone(),
            receiver: receiver.clone(),
            timeout_height: None,
            timeout_timestamp: timeout,
            memo: String::new(),
        };
        Any {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
            value: msg.encode_to_vec(),
        }
    };
    let msgs: Vec<Any> = (0..n).map(transfer).collect();
    let mut txs = Vec::new();
    for chunk in msgs.chunks(PER_TX) {
        txs.push((
            sign(&chains[0], &user1, chunk.to_vec(), number, sequence),
            chunk.len(),
        ));
        sequence += 1;
    }
    let sent = execute(&chains[0], txs).await;
    report("MsgTransfer (send_packet) on ibc-0", sent);

    // Burst 2: the matching receives on ibc-1, with proofs verified locally first. The packets are read back
    // from the send_packet events, exactly as a relayer learns them.
    let packets = sent_packets(&chains[0]);
    assert_eq!(packets.len(), n, "every transfer emitted send_packet");
    let seqs: Vec<u64> = packets.iter().map(|p| p.sequence).collect();
    let paths: Vec<String> = seqs
        .iter()
        .map(|s| commitment_path(TRANSFER_PORT, &a.channel_id, *s))
        .collect();
    let proofs = tokio::time::timeout(
        Duration::from_secs(300),
        prove(&a.chain, &mut b, &paths, None),
    )
    .await
    .expect("proofs within 300s")
    .expect("proofs");
    let relayer = Wallet::genesis(&chains[1], "relayer");
    let (number, mut sequence) = b.chain.account(&relayer.address).await;
    let mut msgs: Vec<Any> = proofs.updates.clone();
    for (packet, proof) in packets.iter().zip(&proofs.proofs) {
        msgs.push(recv_msg(&b, packet, proof.clone(), proofs.proof_height));
    }
    let mut txs = Vec::new();
    let recv_count = n;
    for chunk in msgs.chunks(PER_TX) {
        txs.push((
            sign(&chains[1], &relayer, chunk.to_vec(), number, sequence),
            chunk.len(),
        ));
        sequence += 1;
    }
    let (total, time, blocks) = execute(&chains[1], txs).await;
    let updates = total - recv_count;
    report(
        &format!("MsgRecvPacket (+{updates} MsgUpdateClient) on ibc-1"),
        (total, time, blocks),
    );

    for chain in chains {
        chain.shutdown().await;
    }
}

/// Every packet the chain's transactions sent, from their send_packet events, in sequence order.
fn sent_packets(chain: &RunningChain) -> Vec<Packet> {
    let record = chain.node.record().expect("record");
    let mut packets: Vec<Packet> = record
        .blocks()
        .iter()
        .flat_map(|b| b.txs.iter())
        .flat_map(|t| t.result.events.iter())
        .filter(|e| e.kind == "send_packet")
        .map(packet_from_event)
        .collect();
    packets.sort_by_key(|p| p.sequence);
    packets
}
