//! The client lifecycle end to end: the ClientKeeper refreshes idle clients on two devnet chains before their
//! trusting period runs out, refreshes a client near expiry while raising the alarm, and stops the paths through
//! an expired client with a clear error instead of failing its packets.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::path::Path;
use std::time::Duration;

use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use relayd_actors::store::StateStore;
use relayd_messages::ClientReport;
use support::chain::Wallet;
use support::handshake::{connect_transfer_with, End};
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

struct Setup {
    chains: Vec<devnet::RunningChain>,
    a: End,
    b: End,
    dir: tempfile::TempDir,
}

/// Two chains joined by a transfer channel whose clients trust for `trusting`, and a relayd config with
/// `[clients]` set to `clients`.
async fn setup(trusting: Duration, clients: &str) -> (Setup, std::path::PathBuf) {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer_with(&chains, Some(trusting)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &chains, &a);
    with_clients_section(&config, clients);
    (Setup { chains, a, b, dir }, config)
}

fn with_clients_section(config: &Path, clients: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("[clients]\n{clients}\n\n{text}")).unwrap();
}

async fn reports(relayd: &Relayd) -> Vec<ClientReport> {
    relayd.ask(Cmd::Clients).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_refreshed_before_their_trusting_period_runs_out() {
    // Refreshed once a fifth of the 30 s trusting period has passed; no packet moves meanwhile.
    let (s, config) = setup(
        Duration::from_secs(30),
        "refresh_fraction = 0.2\nexpiry_alarm = \"2s\"\ncheck_interval = \"1s\"",
    )
    .await;
    let relayd = Relayd::start(&config, s.dir.path());
    eventually("both clients read", || async {
        let r = reports(&relayd).await;
        r.len() == 2 && r.iter().all(|c| c.latest_height.is_some())
    })
    .await;
    let first = reports(&relayd).await;
    eventually("each client refreshed twice", || async {
        let r = reports(&relayd).await;
        r.len() == 2 && r.iter().all(|c| c.refreshes >= 2)
    })
    .await;
    let last = reports(&relayd).await;
    for client in &last {
        assert!(
            !client.alarm && ["fresh", "refresh_due"].contains(&client.health.as_str()),
            "{client:?}"
        );
        assert!(client.last_refresh_tx.is_some());
        let before = first
            .iter()
            .find(|c| c.host == client.host)
            .and_then(|c| c.latest_height)
            .unwrap();
        assert!(client.latest_height.unwrap() > before, "{client:?}");
        assert!(client.expires_in_secs.unwrap() > 2, "{client:?}");
    }
    assert_eq!(
        relayd.ask(Cmd::Records).await.len(),
        0,
        "no packet was relayed"
    );
    relayd.stop().await;
    for chain in s.chains {
        chain.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_near_expiry_raises_the_alarm_and_is_refreshed() {
    // The periodic refresh would come too late (95 % of the period); the alarm (22 s configured, lowered to half
    // the 30 s period: under 15 s left) comes first, and its refresh is what keeps the clients alive.
    let (s, config) = setup(
        Duration::from_secs(30),
        "refresh_fraction = 0.95\nexpiry_alarm = \"22s\"\ncheck_interval = \"1s\"",
    )
    .await;
    let relayd = Relayd::start(&config, s.dir.path());
    eventually("each client refreshed in alarm", || async {
        let r = reports(&relayd).await;
        r.len() == 2 && r.iter().all(|c| c.refreshes >= 1)
    })
    .await;
    // A refresh happens only in alarm here, so every refreshed client was in alarm when refreshed; after it,
    // the clients are fresh again and never expired.
    eventually("the alarm clears after the refresh", || async {
        reports(&relayd)
            .await
            .iter()
            .any(|c| c.health == "fresh" && !c.alarm)
    })
    .await;
    assert!(reports(&relayd)
        .await
        .iter()
        .all(|c| c.health != "expired" && c.expires_in_secs.is_some_and(|e| e > 0)));
    relayd.stop().await;
    for chain in s.chains {
        chain.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_clients_stop_their_paths_with_a_clear_error() {
    let trusting = Duration::from_secs(6);
    let (s, config) = setup(
        trusting,
        "refresh_fraction = 0.5\nexpiry_alarm = \"1s\"\ncheck_interval = \"1s\"",
    )
    .await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    transfers(&s.a, &u1, &u2.address, 5, 3, 3, far_timeout()).await;
    // relayd is not running while the clients' trusting period passes.
    tokio::time::sleep(trusting + Duration::from_secs(2)).await;

    let relayd = Relayd::start(&config, s.dir.path());
    eventually("both clients reported expired", || async {
        let r = reports(&relayd).await;
        r.len() == 2 && r.iter().all(|c| c.health == "expired" && c.alarm)
    })
    .await;
    eventually("the pending packets recorded with the reason", || async {
        let records = relayd.ask(Cmd::Records).await;
        records.len() == 3
            && records.iter().all(|r| {
                r.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("expired"))
            })
    })
    .await;
    // Stopped, not failing: no builder works on them, none is failed, nothing reached the destination.
    assert_eq!(relayd.ask(Cmd::Builders).await, 0);
    let records = relayd.ask(Cmd::Records).await;
    assert!(
        records
            .iter()
            .all(|r| r.state == relayd_messages::PacketState::Detected && r.attempts == 0),
        "{records:?}"
    );
    relayd.stop().await;
    let store = StateStore::open(&s.dir.path().join("data/state")).unwrap();
    assert!(store.dead_letters().unwrap().is_empty());
    let voucher = voucher_denom(TRANSFER_PORT, &s.b.channel_id, "stake");
    assert_eq!(s.b.chain.balance(&u2.address, &voucher).await, 0);
    for chain in s.chains {
        chain.shutdown().await;
    }
}

/// A client its host chain does not have (as after a reset of that chain) reads as not found, a failure of its
/// own kind, which the ClientKeeper turns into a stop of its paths; a client that exists reads as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_the_host_chain_does_not_have_is_queried_as_not_found() {
    let (s, config) = setup(Duration::from_secs(600), "check_interval = \"1s\"").await;
    let relayd = Relayd::start(&config, s.dir.path());
    eventually("both clients read", || async {
        let r = reports(&relayd).await;
        r.len() == 2 && r.iter().all(|c| c.latest_height.is_some())
    })
    .await;
    let existing = reports(&relayd).await.remove(0);
    let found = relayd
        .ask(|reply| Cmd::QueryClient(existing.host.clone(), existing.client_id.clone(), reply))
        .await;
    assert!(found.is_ok(), "{found:?}");
    let missing = relayd
        .ask(|reply| Cmd::QueryClient(existing.host.clone(), "07-tendermint-99".into(), reply))
        .await;
    match missing {
        Err(e) => assert_eq!(e.kind, relayd_messages::ErrorKind::NotFound, "{e:?}"),
        Ok(summary) => panic!("a client that does not exist was read: {summary:?}"),
    }
    relayd.stop().await;
    for chain in s.chains {
        chain.shutdown().await;
    }
}
