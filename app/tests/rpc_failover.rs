//! Several RPC endpoints per chain: `relayd start` with two devnet chains, each served through two TCP proxies in
//! front of its node (`rpc_addrs = [first, second]`). Mid-stream, while 1,000 ICS-20 packets are relayed, the
//! current proxy of both chains is killed with every connection through it, as a node that goes away: relayd
//! moves its reads and its event subscription to the other endpoint, every packet is relayed and acknowledged
//! exactly once (balances exact), and `/chains` shows the killed endpoint failing and the survivor current.
//! Periodic clearing is off, so every packet sent after the start is relayed from the events of its height: a
//! height skipped in the switch would leave its packets unrelayed.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/relayed.rs"]
mod relayed;

#[path = "common/proxy.rs"]
mod proxy;

use std::time::Duration;

use serde_json::Value;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{escrow_address, transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has};
use proxy::{free_port, Proxy, Swallower};

async fn chains_view(http: &reqwest::Client, base: &str) -> Option<Value> {
    let resp = http.get(format!("{base}/chains")).send().await.ok()?;
    resp.json().await.ok()
}

/// The `rpc_endpoints` of chain `id` in a `/chains` answer.
fn endpoints(view: &Value, id: &str) -> Vec<Value> {
    view["chains"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .and_then(|c| c["rpc_endpoints"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_current_rpc_endpoint_mid_stream_loses_no_packet_and_shows_the_switch() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);

    // Two endpoints per chain, each a proxy to the chain's node.
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut text = std::fs::read_to_string(&config).unwrap();
    for chain in &chains {
        let (p1, p2) = (
            Proxy::start(chain.rpc_addr).await,
            Proxy::start(chain.rpc_addr).await,
        );
        text = text.replace(
            &format!("rpc_addr = \"{}\"", chain.rpc_url()),
            // No periodic clearing: a packet whose height the event subscription skipped would stay unrelayed.
            &format!(
                "rpc_addrs = [\"{}\", \"{}\"]\nclear_interval = 0",
                p1.url(),
                p2.url()
            ),
        );
        first.push(p1);
        second.push(p2);
    }
    let port = free_port();
    text.push_str(&format!("\n[admin]\nlisten_addr = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).unwrap();
    add_keys(&config, &keys);
    let (first_urls, second_urls): (Vec<String>, Vec<String>) = (
        first.iter().map(Proxy::url).collect(),
        second.iter().map(Proxy::url).collect(),
    );

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let escrow_a = escrow_address(TRANSFER_PORT, &a.channel_id);
    let escrow_b = escrow_address(TRANSFER_PORT, &b.channel_id);
    let escrow_a_before = a.chain.balance(&escrow_a, "stake").await;
    let escrow_b_before = b.chain.balance(&escrow_b, "stake").await;
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let (per_side, amount) = (500usize, 3u128);

    let log = dir.path().join("relayd.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // Which endpoint is current is the pool's choice (latency decides between two proxies of one node, and a
    // loaded machine can make the first look slower), so the test kills whichever one is current when it strikes.
    eventually("/chains shows both endpoints healthy", || async {
        let Some(view) = chains_view(&http, &base).await else {
            return false;
        };
        chains.iter().enumerate().all(|(i, c)| {
            let e = endpoints(&view, &c.chain_id());
            e.len() == 2
                && e[0]["url"] == first_urls[i]
                && e[1]["url"] == second_urls[i]
                && e.iter().all(|e| e["state"] == "healthy")
                && e.iter().filter(|e| e["current"] == true).count() == 1
        })
    })
    .await;

    // Half of the packets, then the current endpoints die while they are relayed, then the other half.
    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    transfers(&a, &u1, &u2.address, amount, per_side / 2, 50, timeout).await;
    transfers(&b, &u2, &u1.address, amount, per_side / 2, 50, timeout).await;
    eventually("some packets relayed before the kill", || async {
        b.chain.balance(&u2.address, &voucher_b).await > 0
    })
    .await;
    let relayed_before_kill = b.chain.balance(&u2.address, &voucher_b).await / amount;
    let view = chains_view(&http, &base).await.expect("/chains answers");
    // Per chain, the index of the endpoint killed (the current one) and of the survivor.
    let mut killed = Vec::new();
    let mut survivors = Vec::new();
    for ((c, p1), p2) in chains.iter().zip(first).zip(second) {
        let current = endpoints(&view, &c.chain_id())
            .iter()
            .position(|e| e["current"] == true)
            .expect("one endpoint is current");
        let (dead, live) = if current == 0 { (p1, p2) } else { (p2, p1) };
        dead.kill().await;
        killed.push(current);
        survivors.push(live);
    }
    transfers(&a, &u1, &u2.address, amount, per_side / 2, 50, timeout).await;
    transfers(&b, &u2, &u1.address, amount, per_side / 2, 50, timeout).await;

    let total = per_side as u128;
    relayed::until_every_packet_acknowledged(
        &chains,
        (&a, &b),
        (&u2.address, &u1.address),
        total * amount,
    )
    .await;
    assert!(
        relayed_before_kill < total,
        "the kill came mid-stream ({relayed_before_kill} of {total} relayed before it)"
    );
    assert_eq!(
        a.chain.balance(&escrow_a, "stake").await,
        escrow_a_before + total * amount
    );
    assert_eq!(
        b.chain.balance(&escrow_b, "stake").await,
        escrow_b_before + total * amount
    );

    // The switch, per chain: the killed endpoint failing and not current, the survivor healthy and current.
    let urls: Vec<[&String; 2]> = first_urls
        .iter()
        .zip(&second_urls)
        .map(|(a, b)| [a, b])
        .collect();
    eventually("/chains shows the surviving endpoints current", || async {
        let Some(view) = chains_view(&http, &base).await else {
            return false;
        };
        chains.iter().enumerate().all(|(i, c)| {
            let e = endpoints(&view, &c.chain_id());
            let (dead, live) = (killed[i], 1 - killed[i]);
            e.len() == 2
                && e[dead]["url"] == *urls[i][dead]
                && e[dead]["current"] == false
                && e[dead]["state"] == "failing"
                && e[live]["url"] == *urls[i][live]
                && e[live]["current"] == true
                && e[live]["state"] == "healthy"
        })
    })
    .await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (i, c) in chains.iter().enumerate() {
        let id = c.chain_id();
        let (dead, live) = (urls[i][killed[i]], urls[i][1 - killed[i]]);
        assert!(
            metrics.contains(&format!(
                "relayd_rpc_endpoint_up{{chain=\"{id}\",endpoint=\"{dead}/\"}} 0"
            )) || metrics.contains(&format!(
                "relayd_rpc_endpoint_up{{chain=\"{id}\",endpoint=\"{dead}\"}} 0"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "relayd_rpc_endpoint_current{{chain=\"{id}\",endpoint=\"{live}/\"}} 1"
            )) || metrics.contains(&format!(
                "relayd_rpc_endpoint_current{{chain=\"{id}\",endpoint=\"{live}\"}} 1"
            )),
            "{metrics}"
        );
    }

    // No path was stopped and resumed (a resume clears, which would hide a skipped height).
    assert!(!log_has(&log, "the node is not consistent"));
    // The event subscriptions moved to the survivors' WebSockets.
    for proxy in &survivors {
        let ws = format!("ws://{}/websocket", proxy.addr);
        assert!(log_has(&log, &ws), "no subscription on {ws}");
    }

    common::stop(&mut relayd);
    assert!(log_has(&log, "relayd stopped"));
    // Exactly once: one record per packet, each acknowledged, none dead-lettered.
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * per_side);
    drop(survivors);
    for chain in chains {
        chain.shutdown().await;
    }
}

/// A node that takes a transaction and goes away before answering: the first endpoint of each chain passes every
/// request to the node but swallows the answer to each `broadcast_tx_sync`, so relayd sends the same bytes to the
/// second endpoint, whose node already holds them (`sdk` code 19, in the mempool cache). relayd must take that as
/// admitted and wait for the transaction, not count it as refused (which would re-sign the same sequence and
/// resend the datagrams): every packet relayed and acknowledged once, no refusal with code 19 in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_the_first_node_took_without_answering_is_waited_for_not_refused() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    let (mut swallowers, mut slow) = (Vec::new(), Vec::new());
    let mut text = std::fs::read_to_string(&config).unwrap();
    for chain in &chains {
        // The second endpoint answers 100 ms late, so the first stays current until it fails (a block of lag
        // in a probe does not outweigh that).
        let first = Swallower::start(chain.rpc_url(), "broadcast_tx_sync").await;
        let second =
            Swallower::start_slow(chain.rpc_url(), "\u{0}none", Duration::from_millis(100)).await;
        // Polling, as the swallowing endpoint serves no WebSocket.
        text = text.replace(
            &format!("rpc_addr = \"{}\"", chain.rpc_url()),
            &format!(
                "rpc_addrs = [\"{}\", \"{}\"]\nevent_source = {{ mode = \"pull\", interval = \"200ms\" }}",
                first.url(),
                second.url()
            ),
        );
        swallowers.push(first);
        slow.push(second);
    }
    let port = free_port();
    text.push_str(&format!("\n[admin]\nlisten_addr = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).unwrap();
    add_keys(&config, &keys);

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let (round, amount) = (40usize, 2u128);
    let log = dir.path().join("relayd.log");
    // The submitter's attempts are debug lines.
    let mut relayd =
        common::start_logging(&config, &log, "info,relayd_actors::chain::cosmos::tx=debug");
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    // Rounds of transfers until a broadcast has gone through a swallowing endpoint: which endpoint is current
    // also follows the probes' heights (200 ms blocks), so the first one may take a round or two to be chosen.
    let swallowed = || {
        swallowers
            .iter()
            .map(|s| s.swallowed.load(std::sync::atomic::Ordering::SeqCst))
            .sum::<usize>()
    };
    let mut per_side = 0;
    while per_side == 0 || (swallowed() == 0 && per_side < 8 * round) {
        transfers(&a, &u1, &u2.address, amount, round, 20, timeout).await;
        transfers(&b, &u2, &u1.address, amount, round, 20, timeout).await;
        per_side += round;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let total = per_side as u128;
    relayed::until_every_packet_acknowledged(
        &chains,
        (&a, &b),
        (&u2.address, &u1.address),
        total * amount,
    )
    .await;
    assert!(
        swallowed() > 0,
        "no broadcast went through the first endpoints"
    );
    // Each swallowed broadcast was sent again to the second endpoint, found in its mempool, and waited for.
    assert!(
        log_has(&log, "the transaction is in the mempool already"),
        "no broadcast was found in the mempool of the second endpoint; the submitter's attempts:\n{}",
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("attempt") || l.contains("broadcast"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !log_has(&log, "sdk code 19"),
        "a transaction already in the mempool was taken as refused"
    );
    // relayd records an acknowledgement once it has seen its transaction's block, which may come after the
    // chains show it.
    let http = reqwest::Client::new();
    eventually("relayd recorded every acknowledgement", || async {
        let Ok(resp) = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        else {
            return false;
        };
        let text = resp.text().await.unwrap_or_default();
        let acknowledged: f64 = text
            .lines()
            .filter(|l| l.starts_with("relayd_packets{") && l.contains("state=\"acknowledged\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        acknowledged as usize == 2 * per_side
    })
    .await;
    common::stop(&mut relayd);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * per_side);
    for s in swallowers {
        s.kill().await;
    }
    for s in slow {
        s.kill().await;
    }
    for chain in chains {
        chain.shutdown().await;
    }
}
