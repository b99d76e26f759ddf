//! The Cosmos event monitor on a chain with two RPC endpoints (two TCP proxies in front of one devnet node),
//! sharing the chain's pooled client: when the endpoint its subscription is on dies, the subscription moves to
//! the other one and every height is still delivered once, in order; so it does when the pool leaves its
//! endpoint for another reason (here a quarantine) while the endpoint still answers.

use std::net::SocketAddr;
use std::time::Duration;

use devnet::rpc::NodeView;
use relayd_actors::chain::cosmos::monitor::{EventMonitor, MonitorConfig};
use relayd_actors::chain::cosmos::rpc::{CosmosRpc, MAX_RESPONSE_BYTES};
use relayd_actors::chain_monitor::{BlockEvents, SourceMode, StopReason};
use relayd_actors::rpc_pool::{Health, PoolSettings, RpcPool};
use tendermint_rpc::client::CompatMode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Hang guard for any single wait; tests never judge wall-clock time.
const GUARD: Duration = Duration::from_secs(60);

/// A TCP proxy to a node; [`Proxy::kill`] closes its port and every connection through it.
struct Proxy {
    addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(to: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self { addr, tasks }
    }

    async fn kill(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Receives the next block, which must be `expected`.
async fn next(rx: &mut mpsc::Receiver<BlockEvents>, expected: &mut u64) {
    let block = timeout(GUARD, rx.recv())
        .await
        .expect("a block in time")
        .expect("monitor still running");
    assert_eq!(
        block.height, *expected,
        "heights must arrive in order without gaps or duplicates"
    );
    *expected += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_on_an_endpoint_the_pool_leaves_moves_to_the_current_one_without_a_gap() {
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(200),
    ))
    .await
    .unwrap();
    timeout(GUARD, chain.wait_for_height(3)).await.unwrap();
    let (p1, p2) = (
        Proxy::start(chain.rpc_addr).await,
        Proxy::start(chain.rpc_addr).await,
    );
    let urls = [format!("http://{}", p1.addr), format!("http://{}", p2.addr)];
    let ws: Vec<String> = [p1.addr, p2.addr]
        .iter()
        .map(|a| format!("ws://{a}/websocket"))
        .collect();
    let pool = RpcPool::new("ibc-0", &urls, PoolSettings::default());
    let rpc = CosmosRpc::pooled(
        "ibc-0",
        &urls,
        pool.clone(),
        CompatMode::V0_38,
        Duration::from_secs(5),
        MAX_RESPONSE_BYTES,
    )
    .unwrap();
    let mut config = MonitorConfig::new("ibc-0", &urls[0], &ws[0]);
    config.websocket_urls = ws.clone();
    config.max_block_time = Duration::from_millis(400);
    config.backoff_base = Duration::from_millis(50);
    let monitor = EventMonitor::new(config).unwrap().sharing(rpc);
    let mut status = monitor.status();
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(monitor.run(1, tx, async move {
        let _ = stopped.await;
    }));
    let mut expected = 1;
    while expected <= 3 {
        next(&mut rx, &mut expected).await;
    }
    timeout(
        GUARD,
        status.wait_for(|s| s.mode == SourceMode::Push && s.connected),
    )
    .await
    .unwrap()
    .unwrap();

    // The first endpoint stays up but is quarantined: the subscription leaves it for the second.
    pool.quarantine(0, "served a header the light client refused");
    timeout(
        GUARD,
        status.wait_for(|s| s.mode == SourceMode::Push && s.connected && s.reconnects >= 1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(pool.current(), 1);
    let target = chain.node.latest_height() + 3;
    while expected <= target {
        next(&mut rx, &mut expected).await;
    }

    let _ = stop.send(());
    assert_eq!(
        timeout(GUARD, task).await.unwrap().unwrap(),
        StopReason::Shutdown
    );
    drop((p1, p2));
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_moves_to_the_next_endpoint_when_its_own_dies_without_a_gap() {
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(200),
    ))
    .await
    .unwrap();
    timeout(GUARD, chain.wait_for_height(3)).await.unwrap();
    let (p1, p2) = (
        Proxy::start(chain.rpc_addr).await,
        Proxy::start(chain.rpc_addr).await,
    );
    let urls = [format!("http://{}", p1.addr), format!("http://{}", p2.addr)];
    let ws: Vec<String> = [p1.addr, p2.addr]
        .iter()
        .map(|a| format!("ws://{a}/websocket"))
        .collect();
    let pool = RpcPool::new("ibc-0", &urls, PoolSettings::default());
    let rpc = CosmosRpc::pooled(
        "ibc-0",
        &urls,
        pool.clone(),
        CompatMode::V0_38,
        Duration::from_secs(5),
        MAX_RESPONSE_BYTES,
    )
    .unwrap();
    let mut config = MonitorConfig::new("ibc-0", &urls[0], &ws[0]);
    config.websocket_urls = ws.clone();
    config.poll_interval = Duration::from_millis(100);
    config.max_block_time = Duration::from_millis(400);
    config.backoff_base = Duration::from_millis(50);
    config.backoff_cap = Duration::from_millis(400);
    config.request_timeout = Duration::from_secs(1);
    let monitor = EventMonitor::new(config).unwrap().sharing(rpc);
    let mut status = monitor.status();
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(monitor.run(1, tx, async move {
        let _ = stopped.await;
    }));

    let mut expected = 1;
    while expected <= 3 {
        next(&mut rx, &mut expected).await;
    }
    timeout(
        GUARD,
        status.wait_for(|s| s.mode == SourceMode::Push && s.connected),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(pool.current(), 0);

    // The first endpoint dies with the subscription on it; the chain goes on meanwhile.
    p1.kill().await;
    let cut_at = chain.node.latest_height();
    timeout(GUARD, chain.wait_for_height(cut_at + 5))
        .await
        .unwrap();
    let target = chain.node.latest_height() + 3;
    while expected <= target {
        next(&mut rx, &mut expected).await;
    }
    let now = timeout(
        GUARD,
        status.wait_for(|s| s.mode == SourceMode::Push && s.connected && s.reconnects >= 1),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert!(now.errors >= 1, "{now:?}");
    assert_eq!(pool.current(), 1);
    assert_eq!(pool.health(0), Health::Failing);

    let _ = stop.send(());
    assert_eq!(
        timeout(GUARD, task).await.unwrap().unwrap(),
        StopReason::Shutdown
    );
    drop(p2);
    chain.shutdown().await;
}
