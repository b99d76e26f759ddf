//! Issue #4's end-to-end check through relayd's own Cosmos modules: a transfer on ibc-0, its packet commitment
//! read with a proof (`query_ibc`), the headers ibc-1's client needs found by skipping verification
//! (`headers_to`), the proof verified against the verified app hash with the client's own proof specs
//! (`verify_chained`), and `MsgUpdateClient` + `MsgRecvPacket` signed and submitted (`TxSubmitter`) to ibc-1,
//! where ibc-rs accepts them. The channel itself is opened by the devnet tests' minimal relayer.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use ibc_proto::ibc::core::channel::v1::MsgRecvPacket;
use ibc_proto::ibc::core::client::v1::Height;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ibc_proto::ibc::lightclients::tendermint::v1::ClientState;
use prost::Message;
use relayd_actors::chain::cosmos::client::update_client_msgs;
use relayd_actors::chain::cosmos::endpoint::CosmosEndpoint;
use relayd_actors::chain::cosmos::light_client::{headers_to, TrustOptions};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::cosmos::tx::{TxConfig, TxSubmitter};
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::proof::{verify_chained, ProofTarget};
use relayd_messages::IbcEvent;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{sent_packet, transfer, voucher_denom, TRANSFER_PORT};
use tendermint_light_client_verifier::types::TrustThreshold;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayd_modules_relay_a_packet_that_ibc_rs_accepts() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;

    let user1 = Wallet::genesis(&chains[0], "user1");
    let user2 = Wallet::genesis(&chains[1], "user2");
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 600_000_000_000;
    let sent = transfer(&a, &user1, &user2.address, 4242, None, timeout).await;
    let packet = sent_packet(&sent);

    // relayd from here on.
    let src = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let dst = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();
    let endpoint = CosmosEndpoint::new(src.clone(), "ibc");
    let events = endpoint.ibc_events_at(sent.height).await.unwrap();
    assert!(
        events.iter().any(
            |e| matches!(&e.event, IbcEvent::SendPacket(p) if p.sequence.0 == packet.sequence)
        ),
        "the send_packet event is seen through the endpoint: {events:?}"
    );
    let h = endpoint.latest_height().await.unwrap();
    let commitment = path::commitment(&packet.source_port, &packet.source_channel, packet.sequence);
    let proven = endpoint
        .query_ibc(&commitment, QueryHeight::At(h), true)
        .await
        .unwrap();
    assert!(!proven.value.is_empty(), "packet committed");

    // The client of ibc-0 on ibc-1: its latest height is where trust starts, its proof specs judge the proof.
    let client_id = b.client.client_id.clone();
    let client = dst
        .query_ibc(
            "ibc",
            &path::client_state(&client_id),
            QueryHeight::Latest,
            false,
        )
        .await
        .unwrap();
    let any = ibc_proto::google::protobuf::Any::decode(client.value.as_slice()).unwrap();
    let client_state = ClientState::decode(any.value.as_slice()).unwrap();
    let trusted_height = client_state.latest_height.unwrap().revision_height;
    let trusted = src.fetch_light_block(trusted_height).await.unwrap();
    while src.status().await.unwrap().1 < h + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trust = TrustOptions {
        trust_threshold: TrustThreshold::ONE_THIRD,
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        clock_drift: Duration::from_secs(5),
    };
    let headers = headers_to(
        "ibc-0",
        &src,
        &trusted,
        h + 1,
        &trust,
        tendermint::Time::now(),
    )
    .await
    .unwrap();
    let app_hash = headers
        .last()
        .unwrap()
        .signed_header
        .header
        .app_hash
        .as_bytes()
        .to_vec();
    let proof = MerkleProof::decode(proven.proof.clone().unwrap().as_slice()).unwrap();
    let target = ProofTarget {
        chain: "ibc-0",
        path: &commitment,
        prefix: b"ibc",
        height: h,
    };
    verify_chained(
        target,
        &proof.proofs,
        &client_state.proof_specs,
        &app_hash,
        Some(&proven.value),
    )
    .unwrap();

    let relayer = chains[1].genesis.account("relayer").unwrap().clone();
    let mut msgs = update_client_msgs(&client_id, &trusted, &headers, &relayer.address);
    let recv = MsgRecvPacket {
        packet: Some(packet.clone()),
        proof_commitment: proven.proof.clone().unwrap(),
        proof_height: Some(Height {
            revision_number: 0,
            revision_height: h + 1,
        }),
        signer: relayer.address.clone(),
    };
    msgs.push(ibc_proto::google::protobuf::Any {
        type_url: "/ibc.core.channel.v1.MsgRecvPacket".into(),
        value: recv.encode_to_vec(),
    });
    let config = TxConfig {
        chain_id: "ibc-1".into(),
        default_gas: 500_000,
        gas_adjustment: 1.3,
        gas_price: 0.001,
        fee_denom: "stake".into(),
        max_gas: 5_000_000,
        max_msg_num: 30,
        max_tx_size: 1 << 20,
        confirm_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
        max_in_flight: 1,
    };
    let mut submitter = TxSubmitter::new(
        dst.clone(),
        config,
        relayer.signing_key(),
        relayer.address.clone(),
    );
    let outcomes = submitter.submit(msgs).await.unwrap();
    let kinds: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| o.events.iter())
        .map(|e| e.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"update_client") && kinds.contains(&"recv_packet"),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"write_acknowledgement"), "{kinds:?}");

    let voucher = voucher_denom(TRANSFER_PORT, &packet.destination_channel, "stake");
    assert_eq!(
        chains[1]
            .node
            .app()
            .unwrap()
            .balance(&user2.address, &voucher),
        4242
    );

    for chain in chains {
        chain.shutdown().await;
    }
}
