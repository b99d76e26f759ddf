//! A devnet block carrying more IBC events than one message to the coordinator holds (one transaction with 300
//! transfers): the monitor hands it over in bounded chunks and every packet of it is relayed, exactly once.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::time::Duration;

use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain_monitor::chunks::MAX_EVENTS_PER_MESSAGE;
use relayd_actors::store::StateStore;
use relayd_messages::PacketState;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

const IN_ONE_BLOCK: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_more_events_than_one_message_holds_is_relayed_completely() {
    const { assert!(IN_ONE_BLOCK > MAX_EVENTS_PER_MESSAGE) };
    let options = devnet::ChainOptions::local("ibc", Duration::from_millis(200));
    let chains = devnet::start_chains(2, &options).await.unwrap();
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
    let amount = 3u128;
    let heights = transfers(
        &a,
        &u1,
        &u2.address,
        amount,
        IN_ONE_BLOCK,
        IN_ONE_BLOCK,
        far_timeout(),
    )
    .await;
    assert_eq!(heights.len(), 1, "one transaction, one block");
    let voucher = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    eventually(
        "every transfer of the block relayed and acknowledged",
        || async {
            let on_b = b.chain.balance(&u2.address, &voucher).await;
            let pending = rpc_a.packet_commitments(TRANSFER_PORT, &a.channel_id).await;
            on_b == IN_ONE_BLOCK as u128 * amount && pending.is_ok_and(|p| p.is_empty())
        },
    )
    .await;
    eventually("builders finish", || async {
        relayd.ask(Cmd::Builders).await == 0
    })
    .await;
    relayd.stop().await;
    let store = StateStore::open(&dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), IN_ONE_BLOCK);
    assert!(records
        .iter()
        .all(|r| r.state == PacketState::Acknowledged && r.send_height == heights[0]));
    // The block was finished: its checkpoint is at or past it.
    let checkpoint = store.checkpoint("ibc-0").unwrap().unwrap_or(0);
    assert!(checkpoint >= heights[0], "checkpoint {checkpoint}");
    for chain in chains {
        chain.shutdown().await;
    }
}
