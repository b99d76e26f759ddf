//! relayd embedded in a host's actix System, through `relayd::embed`: the example's host actor counts the
//! packet-completed events of real transfers between two devnet chains, and a host actor keeps answering while
//! relayd's chain actors panic, while one of relayd's chains is gone and degraded, and after relayd has shut down.

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod example;

use std::time::Duration;

use actix::{Actor, Context, Handler, Message};
use relayd::demo::traffic::Sender;
use relayd::demo::{account, connect, Devnet};
use relayd::embed::EmbeddedRelay;
use relayd_actors::metrics::Metrics;
use relayd_actors::store::StateStore;
use relayd_actors::supervisor::guard::enable_fault_injection;
use relayd_actors::system::StartOptions;
use relayd_messages::{ActorKind, PanicChild, QueryChainStatus, QueryCoordinator};

/// Polls `check` until it holds; a hang guard, never an assertion on time.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..900 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen");
}

#[test]
fn the_example_host_actor_counts_every_packet_relayd_completes() {
    let dir = tempfile::tempdir().unwrap();
    let report = actix_rt::System::new()
        .block_on(example::run(10, dir.path()))
        .expect("the example runs");
    assert_eq!(report.sent.len(), 2, "both directions sent: {report:?}");
    for (chain, sent) in &report.sent {
        assert_eq!(*sent, 10, "{chain}: transfers sent");
        assert_eq!(
            report.counted.acknowledged.get(chain),
            Some(sent),
            "{chain}: the host's actor heard every packet complete: {report:?}"
        );
    }
    assert_eq!(report.counted.unsuccessful, 0);
    // What the host heard is what relayd recorded: twenty packets, each acknowledged.
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), 20);
    assert!(records
        .iter()
        .all(|r| r.state == relayd_messages::PacketState::Acknowledged));
}

/// The host's own actor.
struct Host {
    answered: u64,
}

impl Actor for Host {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

impl Handler<Ping> for Host {
    type Result = u64;

    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> u64 {
        self.answered += 1;
        self.answered
    }
}

#[test]
fn host_actors_keep_running_when_relayd_fails_and_after_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async {
        let host = Host { answered: 0 }.start();
        let mut devnet = Devnet::start(Duration::from_millis(200), &dir.path().join("chains"))
            .await
            .unwrap();
        let bed = connect(&devnet, dir.path(), None).await.unwrap();
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
        let counter = example::PacketCounter::default().start();
        relay.subscribe_packets(counter.clone().recipient());
        assert_eq!(host.send(Ping).await.unwrap(), 1);

        // Traffic relayd completes while the host runs beside it.
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
        assert_eq!(sender.send(3).await.unwrap().len(), 3);
        eventually("three packets acknowledged", || async {
            counter
                .send(example::GetCounts)
                .await
                .unwrap()
                .acknowledged
                .get("ibc-0")
                == Some(&3)
        })
        .await;

        // A relayd actor panics: its supervisor restarts it; the host is untouched.
        enable_fault_injection(true);
        let (_, sup) = &relay.handle().supervisors[0];
        assert!(sup.send(PanicChild(ActorKind::Querier)).await.unwrap());
        eventually("the querier restarted", || async {
            let status = sup.send(QueryChainStatus).await.unwrap();
            status
                .children
                .iter()
                .any(|c| c.kind == ActorKind::Querier && c.restarts > 0 && c.running)
        })
        .await;
        enable_fault_injection(false);
        assert_eq!(host.send(Ping).await.unwrap(), 2);

        // One of relayd's chains goes away: relayd's actors for it lose their node and keep reconnecting.
        assert!(devnet.stop_chain("ibc-1").await);
        let families = metrics.families();
        eventually("relayd notices ibc-1 is gone", || async {
            families
                .websocket_reconnects_total
                .with_label_values(&["ibc-1"])
                .get()
                + families
                    .rpc_errors_total
                    .with_label_values(&["ibc-1"])
                    .get()
                > 0
        })
        .await;
        assert_eq!(host.send(Ping).await.unwrap(), 3);

        // ibc-1's actors then fail beyond their restart intensity: the chain is degraded (escalation).
        enable_fault_injection(true);
        let (chain_b, sup_b) = &relay.handle().supervisors[1];
        assert_eq!(chain_b.as_str(), "ibc-1");
        eventually("ibc-1 degraded", || async {
            if sup_b.send(QueryChainStatus).await.unwrap().degraded {
                return true;
            }
            // Refused while the querier is between restarts.
            let _ = sup_b.send(PanicChild(ActorKind::Querier)).await;
            false
        })
        .await;
        enable_fault_injection(false);
        assert_eq!(host.send(Ping).await.unwrap(), 4);
        let status = relay.status().await.unwrap();
        assert_eq!(status.chains.len(), 2);

        // relayd stops; the host's actors and System carry on.
        let coordinator = relay.recipients().status;
        relay.shutdown().await;
        assert_eq!(host.send(Ping).await.unwrap(), 5);
        assert!(
            coordinator.send(QueryCoordinator).await.is_err(),
            "the coordinator stopped with relayd"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(host.send(Ping).await.unwrap(), 6);
        // The data directory is free again: another relayd may take it.
        let again = relayd_actors::store::StateStore::open(&dir.path().join("state"));
        assert!(again.is_ok(), "the state database was released");
        devnet.shutdown().await;
    });
}
