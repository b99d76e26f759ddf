//! relayd against chains answering as each CometBFT version it supports: 0.34 (base64 event attributes,
//! begin/end block events, no `header` method), 0.37 (plain attributes, begin/end block events), 0.38
//! (`finalize_block_events`), 1.0, and Sei's mix (0.38 with base64 attributes). relayd picks the dialect from
//! `status`, relays ICS-20 transfers both ways to their acknowledgements, and judges every client update it made
//! (their `update_client` events carry no header, so each is read from its transaction in that dialect).

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::time::Duration;

use devnet::rpc::Dialect;
use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};
use tendermint_rpc::client::CompatMode;

async fn relays_over(dialect: Dialect, expected: CompatMode) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut options = devnet::ChainOptions::local("ibc", Duration::from_millis(200));
    options.cometbft = dialect;
    let chains = devnet::start_chains(2, &options).await.unwrap();
    let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .expect("relayd reads the node's version");
    assert_eq!(rpc_a.compat_mode(), expected, "{dialect:?}");
    let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();

    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &chains, &a);
    let relayd = Relayd::start(&config, dir.path());
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    transfers(&a, &u1, &u2.address, 7, 4, 2, far_timeout()).await;
    transfers(&b, &u2, &u1.address, 7, 4, 2, far_timeout()).await;
    let on_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let on_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    eventually("the transfers relayed both ways", || async {
        b.chain.balance(&u2.address, &on_b).await == 28
            && a.chain.balance(&u1.address, &on_a).await == 28
    })
    .await;
    eventually("the transfers acknowledged", || async {
        rpc_a
            .packet_commitments(TRANSFER_PORT, &a.channel_id)
            .await
            .is_ok_and(|c| c.is_empty())
            && rpc_b
                .packet_commitments(TRANSFER_PORT, &b.channel_id)
                .await
                .is_ok_and(|c| c.is_empty())
    })
    .await;
    eventually("relayd's own updates judged", || async {
        let s = relayd.ask(Cmd::Misbehaviour).await;
        s.consistent >= 2 && s.pending == 0
    })
    .await;
    let status = relayd.ask(Cmd::Misbehaviour).await;
    assert!(
        status.reports.is_empty() && status.unjudged == 0,
        "{dialect:?}: {status:?}"
    );
    relayd.stop().await;
    for chain in chains {
        chain.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_cometbft_0_34() {
    relays_over(Dialect::V0_34, CompatMode::V0_34).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_cometbft_0_37() {
    relays_over(Dialect::V0_37, CompatMode::V0_37).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_cometbft_0_38() {
    relays_over(Dialect::V0_38, CompatMode::V0_38).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_cometbft_1_0() {
    relays_over(Dialect::V1_0, CompatMode::V0_38).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_sei_s_mix() {
    relays_over(Dialect::Sei, CompatMode::V0_38).await;
}
