//! Bounded packet state through the admin API, over real HTTP, with relayd relaying between two devnet chains
//! in this process: `/packets` pages through the records with a cursor, `/metrics` counts packets from the
//! per-channel summaries, and once relayd is restarted in place (same process, same data directory: the
//! state database is still held by the stopped relay's last actors) with a short `record_retention`, the
//! finished records are compacted while their counts stay.

use std::time::Duration;

use relayd::demo::traffic::Sender;
use relayd::demo::{account, connect, Devnet};
use relayd::embed::EmbeddedRelay;
use relayd_actors::metrics::Metrics;
use relayd_actors::system::StartOptions;
use relayd_config::values::PositiveDuration;
use serde_json::Value;

/// Polls `check` until it holds; a hang guard, never an assertion on time.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen");
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    let res = http.get(url).send().await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.json().await.unwrap()
}

async fn text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// relayd with its admin server on a free port; returns the relay, the server and its base URL.
async fn start(
    config: &relayd_config::Config,
    data_dir: &std::path::Path,
) -> (EmbeddedRelay, relayd::admin::AdminServer, String) {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry, config.telemetry.latency_buckets.clone()).unwrap();
    let options = StartOptions {
        metrics: Some(metrics.clone()),
        ..Default::default()
    };
    let relay = EmbeddedRelay::start(config, data_dir, options)
        .await
        .expect("relayd starts on its data directory");
    let server = relayd::admin::start(
        config,
        data_dir,
        data_dir,
        relay.handle(),
        relay.store().clone(),
        registry,
        metrics,
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.addr);
    (relay, server, base)
}

#[test]
fn packets_page_metrics_count_from_summaries_and_finished_records_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async {
        let devnet = Devnet::start(Duration::from_millis(200), &dir.path().join("chains"))
            .await
            .unwrap();
        let mut bed = connect(&devnet, dir.path(), None).await.unwrap();
        bed.config.admin.listen_addr = "127.0.0.1:0".parse().unwrap();
        let (relay, server, base) = start(&bed.config, &bed.data_dir).await;
        let http = reqwest::Client::new();

        let (src, dst) = (
            devnet.chain("ibc-0").unwrap(),
            devnet.chain("ibc-1").unwrap(),
        );
        let receiver = account(dst, "user1").unwrap().address.clone();
        let mut sender = Sender::new(
            &bed.config,
            "ibc-0",
            account(src, "user1").unwrap(),
            &bed.a.channel,
            &receiver,
        )
        .await
        .unwrap();
        assert_eq!(sender.send(5).await.unwrap().len(), 5);
        eventually("five packets acknowledged", || async {
            get(&http, &format!("{base}/packets?state=acknowledged")).await["matched"] == 5
        })
        .await;

        // Pages of two, each starting after the previous page's `next`.
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = get(&http, &format!("{base}/packets?chain=ibc-0&limit=2{after}")).await;
            assert_eq!(page["matched"], 5, "{page}");
            let packets = page["packets"].as_array().unwrap();
            assert!(packets.len() <= 2, "{page}");
            seen.extend(packets.iter().map(|p| p["sequence"].as_u64().unwrap()));
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
        let bad = http
            .get(format!("{base}/packets?after=ibc-0/transfer"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);

        let acknowledged = format!(
            "relayd_packets{{chain=\"ibc-0\",channel=\"{}\",state=\"acknowledged\"}}",
            bed.a.channel
        );
        let metrics = text(&http, &format!("{base}/metrics")).await;
        assert!(
            metrics.contains(&format!("{acknowledged} 5")),
            "{acknowledged} 5 missing:\n{metrics}"
        );

        // Restarted in place with a one-second retention.
        server.stop().await;
        relay.shutdown().await;
        bed.config.global.record_retention = PositiveDuration::from_secs(1);
        let (relay, server, base) = start(&bed.config, &bed.data_dir).await;
        eventually("the finished records compacted", || async {
            let page = get(&http, &format!("{base}/packets?chain=ibc-0")).await;
            page["matched"] == 0 && page["packets"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
        assert_eq!(
            relay
                .store()
                .packets()
                .filter(|r| r.as_ref().unwrap().key.src_chain.as_str() == "ibc-0")
                .count(),
            0
        );
        let metrics = text(&http, &format!("{base}/metrics")).await;
        assert!(
            metrics.contains(&format!("{acknowledged} 5")),
            "the compacted packets stay counted:\n{metrics}"
        );

        // Counting goes on from the kept counts.
        assert_eq!(sender.send(1).await.unwrap().len(), 1);
        eventually("the sixth packet counted", || async {
            text(&http, &format!("{base}/metrics"))
                .await
                .contains(&format!("{acknowledged} 6"))
        })
        .await;

        server.stop().await;
        relay.shutdown().await;
        devnet.shutdown().await;
    });
}
