//! Channels beyond ICS-20's, on the devnet's ping application: ordered channels receive strictly in sequence,
//! and closing a channel from either end is relayed to the other end while the packets in flight towards the
//! closed end are timed out on close (ICS-04 `MsgTimeoutOnClose`).

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use ibc_proto::ibc::core::channel::v1::{Order, State};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use support::chain::Wallet;
use support::handshake::{channel_state, close_init, connect_transfer, open_channel_with, End};
use support::packet::{pings, PING_PORT, PING_VERSION};

struct Setup {
    chains: Vec<devnet::RunningChain>,
    a: End,
    b: End,
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// Two chains with a ping channel of `order` (the ends hold its ids) and a relayd config relaying it both ways.
async fn setup(order: Order) -> Setup {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (mut a, mut b) = connect_transfer(&chains).await;
    open_channel_with(&mut a, &mut b, PING_PORT, PING_VERSION, order).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &chains, &a);
    relay_ping(&config);
    Setup {
        chains,
        a,
        b,
        dir,
        config,
    }
}

/// The written config relays the transfer port; the ends now name the ping channel.
fn relay_ping(config: &Path) {
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replace("src_port = \"transfer\"", "src_port = \"ping\"")
        .replace("dest_port = \"transfer\"", "dest_port = \"ping\"");
    std::fs::write(config, text).unwrap();
}

async fn commitments(chain: &devnet::RunningChain, channel: &str) -> Vec<u64> {
    let rpc = CosmosRpc::connect(&chain.chain_id(), &chain.rpc_url())
        .await
        .unwrap();
    rpc.packet_commitments(PING_PORT, channel).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_channels_receive_every_packet_in_sequence() {
    let s = setup(Order::Ordered).await;
    let relayd = Relayd::start(&s.config, s.dir.path());
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    // Several packets per block and per transaction, both ways: the destination refuses any receive that is
    // not the next in sequence, so all of them arriving means relayd kept the order.
    let sent_a = pings(&s.a, &u1, "a", 30, 10, far_timeout()).await;
    let sent_b = pings(&s.b, &u2, "b", 20, 5, far_timeout()).await;
    assert_eq!(sent_a, (1..=30).collect::<Vec<_>>());
    assert_eq!(sent_b, (1..=20).collect::<Vec<_>>());
    eventually("every ping received and acknowledged", || async {
        commitments(&s.chains[0], &s.a.channel_id).await.is_empty()
            && commitments(&s.chains[1], &s.b.channel_id).await.is_empty()
    })
    .await;
    let records = relayd.ask(Cmd::Records).await;
    relayd.stop().await;
    assert_eq!(records.len(), 50);
    for r in &records {
        assert_eq!(r.state, relayd_messages::PacketState::Acknowledged, "{r:?}");
        let ack = r.ack.as_deref().expect("the ack bytes");
        let expected = [b"pong:".as_slice(), &r.packet.data].concat();
        assert_eq!(ack, expected.as_slice(), "{r:?}");
    }
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in s.chains {
        chain.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_channel_times_out_its_packets_in_flight() {
    let s = setup(Order::Unordered).await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    // In flight towards ibc-1 when ibc-1 closes its end; relayd is not running yet.
    pings(&s.a, &u1, "late", 5, 5, far_timeout()).await;
    close_init(&s.b, PING_PORT, &u2).await;
    assert_eq!(channel_state(&s.b, PING_PORT).await, State::Closed as i32);
    assert_eq!(channel_state(&s.a, PING_PORT).await, State::Open as i32);

    let relayd = Relayd::start(&s.config, s.dir.path());
    // The close reaches ibc-0 (CloseConfirm, found by the start-up scan), and the five packets are timed out
    // on close there (their receive on ibc-1 is refused: its end is closed).
    eventually("the close relayed and the packets timed out", || async {
        channel_state(&s.a, PING_PORT).await == State::Closed as i32
            && commitments(&s.chains[0], &s.a.channel_id).await.is_empty()
    })
    .await;
    eventually("the records final", || async {
        let r = relayd.ask(Cmd::Records).await;
        r.len() == 5
            && r.iter()
                .all(|r| r.state == relayd_messages::PacketState::TimedOut)
    })
    .await;
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in s.chains {
        chain.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_started_on_either_end_is_confirmed_on_the_other_while_relaying() {
    let mut s = setup(Order::Unordered).await;
    // A second ping channel, so that each end can start one close.
    let first = (s.a.channel_id.clone(), s.b.channel_id.clone());
    open_channel_with(
        &mut s.a,
        &mut s.b,
        PING_PORT,
        PING_VERSION,
        Order::Unordered,
    )
    .await;
    let second = (s.a.channel_id.clone(), s.b.channel_id.clone());
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        &format!(
            "src_port = \"ping\", src_channel = \"{}\", dest_port = \"ping\" }}",
            first.0
        ),
        &format!(
            "src_port = \"ping\", src_channel = \"{}\", dest_port = \"ping\" }}, {{ src_port = \"ping\", src_channel = \"{}\", dest_port = \"ping\" }}",
            first.0, second.0
        ),
    );
    std::fs::write(&s.config, text).unwrap();
    let relayd = Relayd::start(&s.config, s.dir.path());
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    // ibc-0 closes the first channel, ibc-1 the second; relayd sees each CloseInit and confirms on the other end.
    s.a.channel_id = first.0.clone();
    close_init(&s.a, PING_PORT, &u1).await;
    s.b.channel_id = second.1.clone();
    close_init(&s.b, PING_PORT, &u2).await;
    s.b.channel_id = first.1.clone();
    s.a.channel_id = second.0.clone();
    eventually("both closes confirmed", || async {
        channel_state(&s.b, PING_PORT).await == State::Closed as i32
            && channel_state(&s.a, PING_PORT).await == State::Closed as i32
    })
    .await;
    relayd.stop().await;
    for chain in s.chains {
        chain.shutdown().await;
    }
}

/// The latest block time of `chain`, ns since the epoch.
async fn block_time(chain: &devnet::RunningChain) -> u64 {
    let rpc = CosmosRpc::connect(&chain.chain_id(), &chain.rpc_url())
        .await
        .unwrap();
    let (_, height) = rpc.status().await.unwrap();
    let block = rpc.block(height).await.unwrap();
    block.header.time.unix_timestamp_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_timeout_closes_the_channel_on_both_ends() {
    let s = setup(Order::Ordered).await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    // A ping that expires on ibc-1 before relayd runs: ICS-04 times it out with a proof of ibc-1's next sequence
    // to receive (an ordered channel keeps no receipts), and the timeout closes the ordered channel on ibc-0.
    let deadline = block_time(&s.chains[1]).await + 2_000_000_000;
    assert_eq!(pings(&s.a, &u1, "late", 1, 1, deadline).await, vec![1]);
    eventually("ibc-1 past the ping's timeout", || async {
        block_time(&s.chains[1]).await > deadline
    })
    .await;

    let relayd = Relayd::start(&s.config, s.dir.path());
    eventually("the ping timed out on ibc-0", || async {
        commitments(&s.chains[0], &s.a.channel_id).await.is_empty()
    })
    .await;
    assert_eq!(channel_state(&s.a, PING_PORT).await, State::Closed as i32);
    // relayd confirms the close on ibc-1, proving ibc-0's end closed.
    eventually("the close confirmed on ibc-1", || async {
        channel_state(&s.b, PING_PORT).await == State::Closed as i32
    })
    .await;
    eventually("the record final", || async {
        let r = relayd.ask(Cmd::Records).await;
        r.len() == 1 && r[0].state == relayd_messages::PacketState::TimedOut
    })
    .await;
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in s.chains {
        chain.shutdown().await;
    }
}
