//! The admin API's view of relayd's actors, over real HTTP, while relayd relays between two devnet chains in
//! this process: every actor in `/actors` reports its mailbox depth and messages handled, the mailbox gauge
//! covers the actors outside the chains, and a supervised restart after a panic (of a chain's actor, of the
//! client keeper, of the misbehaviour watcher) reaches `/events` as an `actor_restarted` event.

use std::time::Duration;

use relayd::demo::traffic::Sender;
use relayd::demo::{account, connect, Devnet};
use relayd::embed::EmbeddedRelay;
use relayd_actors::metrics::Metrics;
use relayd_actors::supervisor::guard::enable_fault_injection;
use relayd_actors::system::StartOptions;
use relayd_messages::{ActorKind, PanicChild, PanicService};
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

/// Reads the event stream until an event named `name` whose data satisfies `wanted` arrives.
async fn next_event(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let marker = format!("event: {name}\ndata: ");
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.strip_prefix(&marker) {
                let value: Value = serde_json::from_str(data.trim_end()).unwrap();
                if wanted(&value) {
                    return value;
                }
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(120), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event arrived"))
            .unwrap()
            .unwrap_or_else(|| panic!("the event stream ended before a {name} event"));
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[test]
fn every_actor_reports_its_mailbox_and_restarts_reach_the_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async {
        let devnet = Devnet::start(Duration::from_millis(200), &dir.path().join("chains"))
            .await
            .unwrap();
        let mut bed = connect(&devnet, dir.path(), None).await.unwrap();
        bed.config.admin.listen_addr = "127.0.0.1:0".parse().unwrap();
        let registry = prometheus::Registry::new();
        let metrics =
            Metrics::new(&registry, bed.config.telemetry.latency_buckets.clone()).unwrap();
        let options = StartOptions {
            metrics: Some(metrics.clone()),
            ..Default::default()
        };
        let relay = EmbeddedRelay::start(&bed.config, &bed.data_dir, options)
            .await
            .unwrap();
        let server = relayd::admin::start(
            &bed.config,
            dir.path(),
            &bed.data_dir,
            relay.handle(),
            relay.handle().store().clone(),
            registry,
            metrics,
        )
        .await
        .unwrap();
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::new();
        let mut stream = http.get(format!("{base}/events")).send().await.unwrap();
        assert!(stream.status().is_success());
        let mut buffer = String::new();

        // Traffic, so that every actor has work to count.
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
            let v = get(&http, &format!("{base}/packets?state=acknowledged")).await;
            v["packets"].as_array().is_some_and(|p| p.len() == 5)
        })
        .await;

        // Every actor reports both counters; those that did work have handled messages.
        let actors = get(&http, &format!("{base}/actors")).await;
        let actors = actors["actors"].as_array().unwrap().clone();
        let by_id = |id: &str| {
            actors
                .iter()
                .find(|a| a["id"] == id)
                .unwrap_or_else(|| panic!("{id} not in /actors: {actors:?}"))
                .clone()
        };
        for a in &actors {
            assert!(a["mailbox_depth"].is_u64(), "no mailbox depth: {a}");
            assert!(a["messages_handled"].is_u64(), "no messages handled: {a}");
        }
        let handled = |id: &str| by_id(id)["messages_handled"].as_u64().unwrap();
        // The coordinator took blocks and lifecycle changes; the monitor delivered blocks; the keeper checked
        // the clients at start; the watcher judged relayd's own client updates; the supervisor answered the
        // admin API's status requests.
        for id in [
            "coordinator",
            "ibc-0/chain_monitor",
            "ibc-1/tx_submitter",
            "client_keeper",
            "misbehaviour_watcher",
            "supervisor/ibc-0",
        ] {
            assert!(handled(id) > 0, "{id} handled nothing: {:?}", by_id(id));
        }
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for series in [
            "relayd_actor_mailbox_depth{chain=\"\",kind=\"relay_coordinator\"}",
            "relayd_actor_mailbox_depth{chain=\"\",kind=\"client_keeper\"}",
            "relayd_actor_mailbox_depth{chain=\"ibc-0\",kind=\"chain_supervisor\"}",
            "relayd_actor_mailbox_depth{chain=\"ibc-0\",kind=\"packet_builder\"}",
            "relayd_actor_mailbox_depth{chain=\"ibc-0\",kind=\"chain_monitor\"}",
        ] {
            assert!(metrics.contains(series), "{series} missing:\n{metrics}");
        }

        // A chain actor panics: its supervisor restarts it, and the restart is streamed.
        enable_fault_injection(true);
        let (_, sup) = &relay.handle().supervisors[1];
        assert!(sup.send(PanicChild(ActorKind::Querier)).await.unwrap());
        let event = next_event(&mut stream, &mut buffer, "actor_restarted", |v| {
            v["actor"] == "ibc-1/querier"
        })
        .await;
        enable_fault_injection(false);
        assert_eq!(event["type"], "actor_restarted", "{event}");
        assert_eq!(event["chain"], "ibc-1", "{event}");
        assert_eq!(event["restarts"], 1, "{event}");
        assert!(
            event["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("injected panic")),
            "{event}"
        );
        let querier = get(&http, &format!("{base}/actors/ibc-1/querier")).await;
        assert_eq!(querier["restarts"], 1, "{querier}");
        assert_eq!(querier["state"], "running", "{querier}");

        // The client keeper and the misbehaviour watcher panic: their supervisor restarts each from a fresh actor,
        // and relaying (with its misbehaviour checks) goes on.
        let services = relay.handle().services.clone();
        let judged_before = handled("misbehaviour_watcher");
        enable_fault_injection(true);
        for kind in [ActorKind::ClientKeeper, ActorKind::MisbehaviourWatcher] {
            assert!(services.send(PanicService(kind)).await.unwrap());
            let id = serde_json::to_value(kind).unwrap();
            let event = next_event(&mut stream, &mut buffer, "actor_restarted", |v| {
                v["actor"] == id
            })
            .await;
            assert_eq!(event["restarts"], 1, "{event}");
            let node = get(&http, &format!("{base}/actors/{}", id.as_str().unwrap())).await;
            assert_eq!(node["parent"], "supervisor/services", "{node}");
            assert_eq!(node["restarts"], 1, "{node}");
            assert!(
                node["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("injected panic")),
                "{node}"
            );
        }
        enable_fault_injection(false);
        eventually("both service actors running again", || async {
            let actors = get(&http, &format!("{base}/actors")).await;
            let running = |id: &str| {
                actors["actors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["id"] == id && a["state"] == "running")
            };
            running("client_keeper") && running("misbehaviour_watcher")
        })
        .await;
        // The fresh keeper checked the clients again; the fresh watcher judges relayd's next updates.
        eventually("the restarted keeper reports the clients", || async {
            let chain = get(&http, &format!("{base}/chains/ibc-0")).await;
            chain["client_health"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .await;
        assert_eq!(sender.send(3).await.unwrap().len(), 3);
        eventually("eight packets acknowledged", || async {
            let v = get(&http, &format!("{base}/packets?state=acknowledged")).await;
            v["packets"].as_array().is_some_and(|p| p.len() == 8)
        })
        .await;
        eventually("the restarted watcher judges updates", || async {
            let actors = get(&http, &format!("{base}/actors")).await;
            actors["actors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["id"] == "misbehaviour_watcher")
                .and_then(|a| a["messages_handled"].as_u64())
                .is_some_and(|n| n > judged_before + 1)
        })
        .await;

        server.stop().await;
        relay.shutdown().await;
    });
}
