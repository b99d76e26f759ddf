//! Several RPC endpoints for a NEAR chain: `relayd start` relaying between a Cosmos devnet and a NEAR devnet (both
//! separate processes), the NEAR node reached through two TCP proxies (`rpc_addrs = [first, second]`). While
//! transfers go both ways, the first proxy is killed with every connection through it, as a node that goes away:
//! relayd moves its NEAR reads, light-client blocks and transactions to the second endpoint, every packet is
//! relayed and acknowledged exactly once with exact balances, and `/chains` shows the first endpoint failing and
//! the second current. Periodic clearing is off, so a NEAR height the monitor skipped in the switch would leave
//! its packets unrelayed.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_process.rs"]
#[allow(dead_code)]
mod near_process;

#[path = "common/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use std::time::Duration;

use common::{eventually, log_has};
use near_process::{balance, KeepOnFailure, Stage};
use proxy::{free_port, Proxy};
use serde_json::Value;
use support::packet::voucher_denom;

/// Transfers each way in each burst.
const BURST: usize = 40;

/// The NEAR chain's `rpc_endpoints` in `/chains`.
async fn near_endpoints(base: &str, near_id: &str) -> Vec<Value> {
    let Ok(resp) = reqwest::get(format!("{base}/chains")).await else {
        return Vec::new();
    };
    let view: Value = resp.json().await.unwrap_or_default();
    view["chains"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == near_id))
        .and_then(|c| c["rpc_endpoints"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_first_near_endpoint_mid_stream_loses_no_packet_and_shows_the_switch() {
    let kept = KeepOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = kept.0.as_ref().unwrap();
    let stage = Stage::start(dir.path(), &[]).await;
    let (config, near_id) = (stage.config.clone(), stage.near_id.clone());
    let near_user = stage.near_user.clone();

    // The service reaches NEAR through two proxies; the users' configuration keeps the node's own address.
    let near_url = stage.near["rpc_addr"].as_str().unwrap().to_owned();
    let node = near_url.trim_start_matches("http://").parse().unwrap();
    let (first, second) = (Proxy::start(node).await, Proxy::start(node).await);
    let (first_url, second_url) = (first.url(), second.url());
    let text = std::fs::read_to_string(&config).unwrap();
    let one = format!("rpc_addr = \"{near_url}\"\n");
    assert!(text.contains(&one), "{text}");
    let port = free_port();
    let text = text.replace(
        &one,
        &format!("rpc_addrs = [\"{first_url}\", \"{second_url}\"]\nclear_interval = 0\n"),
    ) + &format!("\n[admin]\nlisten_addr = \"127.0.0.1:{port}\"\n");
    std::fs::write(&config, text).unwrap();
    let base = format!("http://127.0.0.1:{port}");

    let log = dir.path().join("relayd.log");
    let mut service = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    eventually(
        "/chains lists both NEAR endpoints, the first current",
        || async {
            let e = near_endpoints(&base, &near_id).await;
            e.len() == 2 && e[0]["current"] == true && e[0]["url"].as_str() == Some(&first_url)
        },
    )
    .await;

    // A burst both ways; while the next is being sent, the first endpoint goes away.
    let (stake, usdc) = ("3stake", "2usdc.devnet");
    let (to_near, to_cosmos) = tokio::join!(
        stage.send("ibc-0", stake, BURST),
        stage.send(&near_id, usdc, BURST)
    );
    assert_eq!(to_near["sequences"].as_array().unwrap().len(), BURST);
    assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), BURST);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        first.kill().await;
    };
    let ((to_near, to_cosmos), ()) = tokio::join!(
        async {
            tokio::join!(
                stage.send("ibc-0", stake, BURST),
                stage.send(&near_id, usdc, BURST)
            )
        },
        kill
    );
    assert_eq!(to_near["sequences"].as_array().unwrap().len(), BURST);
    assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), BURST);

    let sent = 2 * BURST as u128;
    let near_voucher = format!("transfer/{}/stake", stage.near_chan);
    let cosmos_voucher = voucher_denom("transfer", &stage.cosmos_chan, "usdc.devnet");
    let cosmos_user = stage.cosmos_user_address.clone();
    eventually("every transfer arrives", || async {
        balance(&config, &near_id, &near_user, &near_voucher).await == sent * 3
            && balance(&config, "ibc-0", &cosmos_user, &cosmos_voucher).await == sent * 2
    })
    .await;
    stage.wait_nothing_pending().await;
    assert!(
        service.try_wait().unwrap().is_none(),
        "relayd exited when a NEAR endpoint went away"
    );

    // The switch is visible: the first endpoint failing and not current, the second current.
    eventually("/chains shows the second NEAR endpoint current", || async {
        let e = near_endpoints(&base, &near_id).await;
        e.len() == 2
            && e[0]["state"] == "failing"
            && e[0]["current"] == false
            && e[1]["current"] == true
            && e[1]["state"] == "healthy"
    })
    .await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let current =
        format!("relayd_rpc_endpoint_current{{chain=\"{near_id}\",endpoint=\"{second_url}\"}} 1");
    assert!(
        metrics.lines().any(|l| l == current),
        "no `{current}` in /metrics"
    );

    common::stop(&mut service);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * sent as usize);
    drop(second);
    drop(stage);
}
