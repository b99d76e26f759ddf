//! The actor core end to end: relayd's supervised actors relay ICS-20 transfers both ways between two devnet
//! chains, with every packet received and acknowledged and exact balances; panics injected into each actor
//! kind while relaying; and a restart from sled mid-stream.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use relayd_actors::supervisor::guard::enable_fault_injection;
use relayd_actors::system::StartOptions;
use relayd_messages::ActorKind;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{escrow_address, transfers, voucher_denom, TRANSFER_PORT};

struct Setup {
    chains: Vec<devnet::RunningChain>,
    a: support::handshake::End,
    b: support::handshake::End,
    dir: tempfile::TempDir,
    config: PathBuf,
}

async fn setup() -> Setup {
    setup_rotating(None).await
}

/// [`setup`] with both chains deciding a validator-set change every `rotate` blocks.
async fn setup_rotating(rotate: Option<u64>) -> Setup {
    let mut options = devnet::ChainOptions::local("ibc", Duration::from_millis(200));
    options.rotate_validators_every = rotate;
    let chains = devnet::start_chains(2, &options).await.unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &chains, &a);
    Setup {
        chains,
        a,
        b,
        dir,
        config,
    }
}

/// Whether every packet of both directions completed: vouchers minted on each side and no packet commitment
/// left on either chain; if not, what is still missing, in words for a failure message.
async fn progress(s: &Setup, each_way: u128, amount: u128) -> Result<(), String> {
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let voucher_b = voucher_denom(TRANSFER_PORT, &s.b.channel_id, "stake");
    let voucher_a = voucher_denom(TRANSFER_PORT, &s.a.channel_id, "stake");
    let on_b = s.b.chain.balance(&u2.address, &voucher_b).await;
    let on_a = s.a.chain.balance(&u1.address, &voucher_a).await;
    let rpc_a = CosmosRpc::connect("ibc-0", &s.chains[0].rpc_url())
        .await
        .map_err(|e| e.to_string())?;
    let rpc_b = CosmosRpc::connect("ibc-1", &s.chains[1].rpc_url())
        .await
        .map_err(|e| e.to_string())?;
    let pending_a = rpc_a
        .packet_commitments(TRANSFER_PORT, &s.a.channel_id)
        .await
        .map_err(|e| e.to_string())?;
    let pending_b = rpc_b
        .packet_commitments(TRANSFER_PORT, &s.b.channel_id)
        .await
        .map_err(|e| e.to_string())?;
    if on_b == each_way * amount
        && on_a == each_way * amount
        && pending_a.is_empty()
        && pending_b.is_empty()
    {
        return Ok(());
    }
    let first = |v: &Vec<u64>| v.iter().take(20).copied().collect::<Vec<_>>();
    Err(format!(
        "received {}/{each_way} on ibc-1 and {}/{each_way} on ibc-0; commitments left on ibc-0: {} {:?}, on ibc-1: {} {:?}",
        on_b / amount,
        on_a / amount,
        pending_a.len(),
        first(&pending_a),
        pending_b.len(),
        first(&pending_b),
    ))
}

/// Waits for [`progress`] to report nothing missing; on the hang guard's bound, stops relayd and fails with
/// what was missing plus the lifecycle records of the unfinished packets and the dead letters.
async fn until_settled(s: &Setup, relayd: Relayd, each_way: u128, amount: u128) -> Relayd {
    let mut missing = String::new();
    for _ in 0..1800 {
        match progress(s, each_way, amount).await {
            Ok(()) => return relayd,
            Err(m) => missing = m,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let builders = relayd.ask(Cmd::Builders).await;
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    let unfinished: Vec<String> = store
        .packets()
        .map(Result::unwrap)
        .filter(|r| r.state != relayd_messages::PacketState::Acknowledged)
        .take(10)
        .map(|r| {
            format!(
                "{:?}: {} attempts {} error {:?} history {:?}",
                r.key,
                r.state,
                r.attempts,
                r.last_error,
                r.history.iter().map(|t| &t.state).collect::<Vec<_>>()
            )
        })
        .collect();
    panic!(
        "transfers not all relayed: {missing}; {builders} builders live; unfinished records: {unfinished:#?}; dead letters: {}",
        store.dead_letters().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_relay_transfers_both_ways_and_survive_panics_in_every_actor_kind() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    enable_fault_injection(true);
    let s = setup().await;
    let relayd = Relayd::start(&s.config, s.dir.path());
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let each_way: usize = std::env::var("RELAY_TEST_EACH_WAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let amount = 7u128;
    let escrow_a = escrow_address(TRANSFER_PORT, &s.a.channel_id);
    let before_escrow = s.a.chain.balance(&escrow_a, "stake").await;

    // The monitors pick their start height when they first run; sends before that are clearing's work, which
    // other tests cover.
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;
    let timeout = far_timeout();
    let (half_a, half_b) = (each_way / 2, each_way - each_way / 2);
    transfers(&s.a, &u1, &u2.address, amount, half_a, 100, timeout).await;
    transfers(&s.b, &u2, &u1.address, amount, half_a, 100, timeout).await;
    // Panics in every actor kind, on both chains, while packets are in flight.
    for chain in 0..if std::env::var("RELAY_TEST_NO_PANICS").is_ok() {
        0
    } else {
        2
    } {
        for kind in [
            ActorKind::ChainMonitor,
            ActorKind::Querier,
            ActorKind::LightClient,
            ActorKind::TxSubmitter,
        ] {
            let _ = relayd.cmds.send(Cmd::Panic(chain, kind));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    let _ = relayd.cmds.send(Cmd::PanicBuilder);
    transfers(&s.a, &u1, &u2.address, amount, half_b, 100, timeout).await;
    transfers(&s.b, &u2, &u1.address, amount, half_b, 100, timeout).await;

    let relayd = until_settled(&s, relayd, each_way as u128, amount).await;
    // Every client update of the run was judged against relayd's own light client; none is a conflict.
    let misbehaviour = relayd.ask(Cmd::Misbehaviour).await;
    assert!(
        misbehaviour.reports.is_empty() && misbehaviour.consistent > 0,
        "{misbehaviour:?}"
    );
    let restarts = relayd.ask(Cmd::Restarts).await;
    assert!(
        restarts >= 8,
        "every panicked child was restarted: {restarts}"
    );
    eventually("builders finish", || async {
        relayd.ask(Cmd::Builders).await == 0
    })
    .await;
    assert_eq!(
        s.a.chain.balance(&escrow_a, "stake").await,
        before_escrow + each_way as u128 * amount,
        "escrow holds exactly what was sent"
    );
    relayd.stop().await;

    // Every packet's lifecycle record ends acknowledged.
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2 * each_way);
    assert!(
        records
            .iter()
            .all(|r| r.state == relayd_messages::PacketState::Acknowledged),
        "{:?}",
        records
            .iter()
            .find(|r| r.state != relayd_messages::PacketState::Acknowledged)
    );
    // The transaction that finished each packet is on its record, whoever's reply or event named it first.
    for r in &records {
        let last = r.history.last().expect("a history");
        let hash = last
            .tx_hash
            .as_ref()
            .unwrap_or_else(|| panic!("no ack tx: {r:?}"));
        assert_eq!(
            r.tx_hashes.iter().filter(|h| *h == hash).count(),
            1,
            "{r:?}"
        );
    }
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in s.chains {
        chain.shutdown().await;
    }
}

/// 1,000 packets (500 each way) while both chains change validators every 4 blocks: joins, leaves, power
/// changes and, every 16 blocks, the whole set replaced (all of the power moving between two heights), so each
/// client update across a swap needs a bisected intermediate header. Every update is judged consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_packets_relay_while_validators_rotate() {
    let s = setup_rotating(Some(4)).await;
    let relayd = Relayd::start(&s.config, s.dir.path());
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let each_way: usize = std::env::var("RELAY_TEST_EACH_WAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(500, |n: usize| n / 2);
    let amount = 3u128;
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;
    let timeout = far_timeout();
    transfers(&s.a, &u1, &u2.address, amount, each_way, 100, timeout).await;
    transfers(&s.b, &u2, &u1.address, amount, each_way, 100, timeout).await;
    let relayd = until_settled(&s, relayd, each_way as u128, amount).await;
    let heights = (
        s.chains[0].node.record().unwrap().latest_height(),
        s.chains[1].node.record().unwrap().latest_height(),
    );
    assert!(
        heights.0 > 16 && heights.1 > 16,
        "at least one whole-set swap on each chain: {heights:?}"
    );
    let misbehaviour = relayd.ask(Cmd::Misbehaviour).await;
    assert!(
        misbehaviour.reports.is_empty() && misbehaviour.consistent > 0,
        "{misbehaviour:?}"
    );
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    assert_eq!(store.packets().count(), 2 * each_way);
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in s.chains {
        chain.shutdown().await;
    }
}

/// Packets sent before relayd ever ran (a fresh data directory, so no records and a monitor starting at the
/// chain's head): clearing on start finds them through commitments and unreceived queries, takes their data
/// from the source's transaction index, and for packets already received takes the acknowledgement from the
/// destination's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_on_start_relays_packets_sent_before_relayd_first_ran() {
    let mut s = setup().await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let (amount, timeout) = (3u128, far_timeout());
    // Received on ibc-1 by someone else, acknowledgement never relayed back.
    for _ in 0..3 {
        let inc = support::packet::transfer(&s.a, &u1, &u2.address, amount, None, timeout).await;
        let packet = support::packet::sent_packet(&inc);
        support::packet::relay_recv(&s.a, &mut s.b, &packet).await;
    }
    // Never relayed at all.
    transfers(&s.a, &u1, &u2.address, amount, 40, 20, timeout).await;
    transfers(&s.b, &u2, &u1.address, amount, 43, 20, timeout).await;

    let relayd = Relayd::start(&s.config, s.dir.path());
    let relayd = until_settled(&s, relayd, 43, amount).await;
    eventually("builders finish", || async {
        relayd.ask(Cmd::Builders).await == 0
    })
    .await;
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), 86, "one record per cleared packet");
    assert!(records
        .iter()
        .all(|r| r.state == relayd_messages::PacketState::Acknowledged));
    let acked_only = records
        .iter()
        .filter(|r| {
            r.history
                .first()
                .is_some_and(|t| t.state == relayd_messages::PacketState::Confirmed)
        })
        .count();
    assert_eq!(
        acked_only, 3,
        "received packets start from their written ack"
    );
}

/// The coordinator cannot be restarted in place (every monitor, builder and host holds its address): its failure
/// escalates to the host, which restarts relayd; the state database and clearing on start then finish every
/// packet, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_failure_escalates_and_a_restart_finishes_every_packet() {
    let s = setup().await;
    let relayd = Relayd::start(&s.config, s.dir.path());
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let (amount, timeout) = (4u128, far_timeout());
    transfers(&s.a, &u1, &u2.address, amount, 30, 10, timeout).await;
    transfers(&s.b, &u2, &u1.address, amount, 30, 10, timeout).await;
    // Left on: the tests of this binary run side by side, and the panic drills of another rely on it.
    enable_fault_injection(true);
    let reason = relayd.ask(Cmd::PanicCoordinator).await;
    assert!(
        reason.contains("injected panic in RelayCoordinator"),
        "{reason}"
    );
    relayd.stop().await;

    let relayd = Relayd::start(&s.config, s.dir.path());
    let relayd = until_settled(&s, relayd, 30, amount).await;
    // The chains are settled; the records of packets finished while the coordinator was gone catch up as the
    // restarted one resumes them.
    eventually("every record acknowledged", || async {
        let records = relayd.ask(Cmd::Records).await;
        records.len() == 60
            && records
                .iter()
                .all(|r| r.state == relayd_messages::PacketState::Acknowledged)
    })
    .await;
    relayd.stop().await;
}

/// `clear_interval`: with clearing on start turned off and packets the monitor never announces (sent before
/// relayd ran), only the periodic clearing every few blocks can find them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_clearing_relays_packets_no_event_announced() {
    let s = setup().await;
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "client_ids = [\"07-tendermint-0\"]\n",
        "client_ids = [\"07-tendermint-0\"]\nclear_interval = 3\n",
    );
    std::fs::write(&s.config, text).unwrap();
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let (amount, timeout) = (2u128, far_timeout());
    transfers(&s.a, &u1, &u2.address, amount, 20, 10, timeout).await;
    transfers(&s.b, &u2, &u1.address, amount, 20, 10, timeout).await;

    let relayd = Relayd::start_with(
        &s.config,
        s.dir.path(),
        StartOptions {
            clear_on_start: false,
            ..StartOptions::default()
        },
    );
    let relayd = until_settled(&s, relayd, 20, amount).await;
    relayd.stop().await;
}

/// Packets whose timeout height passed before anyone relayed them: relayd proves their absence on the
/// destination and times them out on the source, which refunds the escrowed tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_packets_are_refunded() {
    let s = setup().await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let escrow = escrow_address(TRANSFER_PORT, &s.a.channel_id);
    let escrow_before = s.a.chain.balance(&escrow, "stake").await;
    let deadline = s.b.chain.height().await + 3;
    let timeout_height = Some(ibc_proto::ibc::core::client::v1::Height {
        revision_number: 1,
        revision_height: deadline,
    });
    for _ in 0..5 {
        support::packet::transfer(&s.a, &u1, &u2.address, 11, timeout_height, 0).await;
    }
    assert_eq!(
        s.a.chain.balance(&escrow, "stake").await,
        escrow_before + 55
    );
    s.b.chain.wait_until_height(deadline + 1).await;

    let relayd = Relayd::start(&s.config, s.dir.path());
    let rpc_a = CosmosRpc::connect("ibc-0", &s.chains[0].rpc_url())
        .await
        .unwrap();
    eventually("timed-out packets refunded", || async {
        s.a.chain.balance(&escrow, "stake").await == escrow_before
            && rpc_a
                .packet_commitments(TRANSFER_PORT, &s.a.channel_id)
                .await
                .is_ok_and(|c| c.is_empty())
    })
    .await;
    let voucher = voucher_denom(TRANSFER_PORT, &s.b.channel_id, "stake");
    assert_eq!(s.b.chain.balance(&u2.address, &voucher).await, 0);
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), 5);
    assert!(
        records
            .iter()
            .all(|r| r.state == relayd_messages::PacketState::TimedOut),
        "{:?}",
        records
            .iter()
            .map(|r| (
                &r.state,
                &r.last_error,
                r.history.iter().map(|t| &t.state).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
    );
}
