//! The Cosmos event monitor against a running devnet chain over real RPC and WebSocket, some of it through a TCP
//! proxy that severs connections, silences the WebSocket or fails `block_results`, to show that every height is
//! delivered exactly once and in order whatever happens to the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use devnet::rpc::NodeView;
use ibc::clients::tendermint::types::{
    AllowUpdate, ClientState as TmClientState, ConsensusState as TmConsensusState, TrustThreshold,
};
use ibc::core::client::types::Height as IbcHeight;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc::core::commitment_types::specs::ProofSpecs;
use ibc::core::host::types::identifiers::ChainId;
use ibc_proto::ibc::core::client::v1::MsgCreateClient;
use prost::Message;
use relayd_actors::chain::cosmos::monitor::{EventMonitor, MonitorConfig};
use relayd_actors::chain_monitor::{BlockEvents, MonitorStatus, SourceMode, StopReason};
use relayd_config::EventSourceMode;
use relayd_messages::IbcEvent;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client, HttpClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Hang guard for any single wait; tests never judge wall-clock time.
const GUARD: Duration = Duration::from_secs(60);

async fn chain() -> devnet::RunningChain {
    // The monitor's own log explains a failure; shown only for failing tests (RUST_LOG picks the level).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "relayd_actors=info".into()),
        )
        .with_test_writer()
        .try_init();
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(200),
    ))
    .await
    .expect("devnet starts");
    timeout(GUARD, chain.wait_for_height(3))
        .await
        .expect("devnet makes blocks");
    chain
}

/// Short timings so that failures are noticed and retried within a few blocks.
fn config(rpc_url: &str, ws_url: &str, mode: EventSourceMode) -> MonitorConfig {
    let mut c = MonitorConfig::new("ibc-0", rpc_url, ws_url);
    c.mode = mode;
    c.poll_interval = Duration::from_millis(100);
    c.max_block_time = Duration::from_millis(400);
    c.watchdog_blocks = 3;
    c.backoff_base = Duration::from_millis(50);
    c.backoff_cap = Duration::from_millis(400);
    c.request_timeout = Duration::from_secs(1);
    c.stall_after = 3;
    c
}

/// A monitor running in its own task, and what the test sees of it.
struct Running {
    rx: Option<mpsc::Receiver<BlockEvents>>,
    status: watch::Receiver<MonitorStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<StopReason>,
    /// The next height the test expects; every delivery is checked against it.
    expected: u64,
    /// Whether blocks may carry decoding errors; otherwise any is a failure.
    errors_expected: bool,
}

fn spawn(config: MonitorConfig, start: u64, capacity: usize) -> Running {
    let monitor = EventMonitor::new(config).expect("valid config");
    let status = monitor.status();
    let (tx, rx) = mpsc::channel(capacity);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(monitor.run(start, tx, async move {
        let _ = stopped.await;
    }));
    Running {
        rx: Some(rx),
        status,
        stop: Some(stop),
        task,
        expected: start,
        errors_expected: false,
    }
}

impl Running {
    /// The next delivered block, which must be the next height: no gap, no duplicate, no reordering.
    async fn next(&mut self) -> BlockEvents {
        let rx = self.rx.as_mut().expect("receiver kept");
        let block = timeout(GUARD, rx.recv())
            .await
            .expect("a block in time")
            .expect("monitor still running");
        assert_eq!(block.chain, "ibc-0");
        assert_eq!(
            block.height, self.expected,
            "heights must arrive in order without gaps or duplicates"
        );
        if !self.errors_expected {
            assert!(block.errors.is_empty(), "{:?}", block.errors);
        }
        self.expected += 1;
        block
    }

    /// Receives blocks up to and including `height`.
    async fn until(&mut self, height: u64) -> Vec<BlockEvents> {
        let mut blocks = Vec::new();
        while self.expected <= height {
            blocks.push(self.next().await);
        }
        blocks
    }

    async fn wait_status(
        &mut self,
        label: &str,
        what: impl FnMut(&MonitorStatus) -> bool,
    ) -> MonitorStatus {
        if let Ok(reached) = timeout(GUARD, self.status.wait_for(what)).await {
            return reached.expect("monitor status kept").clone();
        }
        panic!(
            "{label} not reached in time; status: {:?}",
            self.status.borrow()
        );
    }

    async fn shutdown(mut self) -> StopReason {
        let _ = self.stop.take().expect("not stopped yet").send(());
        timeout(GUARD, self.task)
            .await
            .expect("stops in time")
            .expect("task did not panic")
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A TCP proxy between the monitor and the devnet that misbehaves on command.
// ---------------------------------------------------------------------------------------------------------------

struct Proxy {
    addr: SocketAddr,
    ctl: Arc<ProxyCtl>,
    accept: JoinHandle<()>,
}

struct ProxyCtl {
    upstream: SocketAddr,
    /// Cuts every connection and refuses new ones while true.
    severed: watch::Sender<bool>,
    /// Holds back server-to-client bytes of WebSocket connections while true; the connections stay open.
    mute_ws: watch::Sender<bool>,
    /// Kills any connection that carries a `block_results` request while true.
    fail_block_results: AtomicBool,
    /// Replaces these bytes in HTTP responses with others of the same length (so Content-Length holds).
    rewrite: Mutex<Option<(Vec<u8>, Vec<u8>)>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let ctl = Arc::new(ProxyCtl {
            upstream,
            severed: watch::channel(false).0,
            mute_ws: watch::channel(false).0,
            fail_block_results: AtomicBool::new(false),
            rewrite: Mutex::new(None),
        });
        let accept_ctl = Arc::clone(&ctl);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *accept_ctl.severed.borrow() {
                    // Refused: closed before a byte is exchanged.
                    drop(client);
                    continue;
                }
                let ctl = Arc::clone(&accept_ctl);
                tokio::spawn(async move {
                    let mut severed = ctl.severed.subscribe();
                    tokio::select! {
                        _ = severed.wait_for(|s| *s) => {}
                        _ = pipe(client, &ctl) => {}
                    }
                });
            }
        });
        Self { addr, ctl, accept }
    }

    fn rpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn websocket_url(&self) -> String {
        format!("ws://{}/websocket", self.addr)
    }

    fn sever(&self, on: bool) {
        self.ctl.severed.send_replace(on);
    }

    fn mute_websocket(&self, on: bool) {
        self.ctl.mute_ws.send_replace(on);
    }

    fn fail_block_results(&self, on: bool) {
        self.ctl.fail_block_results.store(on, Ordering::SeqCst);
    }

    fn rewrite_responses(&self, from: &str, to: &str) {
        assert_eq!(from.len(), to.len(), "a rewrite must keep the length");
        *self.ctl.rewrite.lock().expect("lock") = Some((from.into(), to.into()));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.ctl.severed.send_replace(true);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn pipe(client: TcpStream, ctl: &ProxyCtl) -> std::io::Result<()> {
    let server = TcpStream::connect(ctl.upstream).await?;
    let (mut client_r, mut client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    let is_ws = Arc::new(AtomicBool::new(false));
    let up_is_ws = Arc::clone(&is_ws);
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut first = true;
        // The end of the previous chunk, so that a method name split across two reads is still seen.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = client_r.read(&mut buf).await?;
            if n == 0 {
                return server_w.shutdown().await;
            }
            let chunk = &buf[..n];
            if first {
                first = false;
                up_is_ws.store(chunk.starts_with(b"GET /websocket"), Ordering::SeqCst);
            }
            let mut seen = std::mem::take(&mut tail);
            seen.extend_from_slice(chunk);
            if ctl.fail_block_results.load(Ordering::SeqCst) && contains(&seen, b"block_results") {
                return Err(std::io::Error::other("block_results refused by the proxy"));
            }
            tail = seen[seen.len().saturating_sub(32)..].to_vec();
            server_w.write_all(chunk).await?;
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut mute = ctl.mute_ws.subscribe();
        loop {
            let n = server_r.read(&mut buf).await?;
            if n == 0 {
                return client_w.shutdown().await;
            }
            if is_ws.load(Ordering::SeqCst) {
                // Held, not dropped: the connection looks alive and simply goes quiet.
                let _ = mute.wait_for(|m| !*m).await;
            } else if let Some((from, to)) = ctl.rewrite.lock().expect("lock").as_ref() {
                let mut i = 0;
                while i + from.len() <= n {
                    if buf[i..i + from.len()] == from[..] {
                        buf[i..i + from.len()].copy_from_slice(to);
                        i += from.len();
                    } else {
                        i += 1;
                    }
                }
            }
            client_w.write_all(&buf[..n]).await?;
        }
    };
    // Either direction failing ends the connection, as a dead TCP connection would.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A MsgCreateClient, which makes the chain emit `create_client` without needing a counterparty.
// ---------------------------------------------------------------------------------------------------------------

/// Broadcasts a signed MsgCreateClient from the `relayer` account; returns the tx hash (upper hex).
async fn submit_create_client(chain: &devnet::RunningChain) -> String {
    let g = &chain.genesis;
    let (account_number, relayer) = g
        .accounts
        .iter()
        .enumerate()
        .find(|(_, a)| a.name == "relayer")
        .expect("relayer account");
    let client_state = TmClientState::new(
        ChainId::new("counterparty-1").expect("chain id"),
        TrustThreshold::ONE_THIRD,
        Duration::from_secs(14 * 24 * 3600),
        Duration::from_secs(21 * 24 * 3600),
        Duration::from_secs(20),
        IbcHeight::new(1, 10).expect("height"),
        ProofSpecs::cosmos(),
        vec![],
        AllowUpdate {
            after_expiry: false,
            after_misbehaviour: false,
        },
    )
    .expect("client state");
    let consensus_state = TmConsensusState::new(
        CommitmentRoot::from_bytes(&[1u8; 32]),
        g.genesis_time,
        g.validator_set().hash(),
    );
    let msg = MsgCreateClient {
        client_state: Some(
            ibc::clients::tendermint::client_state::ClientState::from(client_state).into(),
        ),
        consensus_state: Some(
            ibc::clients::tendermint::consensus_state::ConsensusState::from(consensus_state).into(),
        ),
        signer: relayer.address.clone(),
    };
    let any = cosmrs::Any {
        type_url: "/ibc.core.client.v1.MsgCreateClient".into(),
        value: msg.encode_to_vec(),
    };
    let key = relayer.signing_key();
    let body = Body::new(vec![any], "", 0u32);
    let auth =
        SignerInfo::single_direct(Some(key.public_key()), 0).auth_info(Fee::from_amount_and_gas(
            cosmrs::Coin {
                denom: devnet::genesis::DENOM.parse().expect("denom"),
                amount: 1_000,
            },
            200_000u64,
        ));
    let tx = SignDoc::new(
        &body,
        &auth,
        &chain.chain_id().parse().expect("chain id"),
        account_number as u64,
    )
    .expect("sign doc")
    .sign(&key)
    .expect("signed")
    .to_bytes()
    .expect("tx bytes");
    let rpc = http(chain);
    let res = rpc.broadcast_tx_sync(tx).await.expect("broadcast");
    assert!(res.code.is_ok(), "check_tx failed: {}", res.log);
    res.hash.to_string()
}

fn http(chain: &devnet::RunningChain) -> HttpClient {
    HttpClient::builder(chain.rpc_url().parse().expect("url"))
        .compat_mode(CompatMode::V0_38)
        .build()
        .expect("http client")
}

/// Height at which the chain included the tx, as the node's own `tx` endpoint says.
async fn tx_height(chain: &devnet::RunningChain, hash: &str) -> u64 {
    let rpc = http(chain);
    let hash: tendermint::Hash = hash.parse().expect("hash");
    timeout(GUARD, async {
        loop {
            if let Ok(res) = rpc.tx(hash, false).await {
                return res.height.value();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("tx included in time")
}

// ---------------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------------

async fn delivers_every_height_and_the_create_client_event(mode: EventSourceMode) {
    let chain = chain().await;
    let mut m = spawn(config(&chain.rpc_url(), &chain.websocket_url(), mode), 2, 8);
    m.until(5).await;

    let hash = submit_create_client(&chain).await;
    let included = tx_height(&chain, &hash).await;
    let blocks = m.until(included + 2).await;
    let found: Vec<_> = blocks
        .iter()
        .flat_map(|b| b.events.iter().map(move |e| (b.height, e)))
        .filter(|(_, e)| matches!(e.event, IbcEvent::CreateClient { .. }))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let (height, event) = found[0];
    assert_eq!(height, included);
    assert_eq!(event.height, included);
    assert_eq!(event.tx_hash.as_deref(), Some(hash.as_str()));
    let IbcEvent::CreateClient {
        client_id,
        client_type,
        ..
    } = &event.event
    else {
        unreachable!()
    };
    assert_eq!(client_id.to_string(), "07-tendermint-0");
    assert_eq!(client_type, "07-tendermint");

    let delivered = m.expected - 1;
    let status = m
        .wait_status("last delivery recorded", |s| {
            s.last_height >= Some(delivered)
        })
        .await;
    assert!(status.stalled.is_none());
    match mode {
        EventSourceMode::Push => {
            // The blocks came over the subscription, not through the polling fallback.
            assert_eq!(status.mode, SourceMode::Push);
            assert!(status.connected);
            assert_eq!(status.reconnects, 0);
        }
        EventSourceMode::Pull => assert_eq!(status.mode, SourceMode::Polling),
    }
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_mode_delivers_every_height_and_the_create_client_event() {
    delivers_every_height_and_the_create_client_event(EventSourceMode::Push).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_mode_delivers_every_height_and_the_create_client_event() {
    delivers_every_height_and_the_create_client_event(EventSourceMode::Pull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_backfills_the_heights_made_while_the_node_was_unreachable() {
    let chain = chain().await;
    let proxy = Proxy::start(chain.rpc_addr).await;
    let mut m = spawn(
        config(
            &proxy.rpc_url(),
            &proxy.websocket_url(),
            EventSourceMode::Push,
        ),
        1,
        1024,
    );
    m.until(3).await;
    m.wait_status("subscribed", |s| s.mode == SourceMode::Push && s.connected)
        .await;

    proxy.sever(true);
    let cut_at = chain.node.latest_height();
    m.wait_status("disconnected", |s| !s.connected).await;
    // Blocks the monitor cannot know about while cut off.
    timeout(GUARD, chain.wait_for_height(cut_at + 5))
        .await
        .expect("chain goes on");
    let restored_at = chain.node.latest_height();
    let delivered_while_cut = m.status.borrow().last_height.unwrap_or(0);
    assert!(
        delivered_while_cut < restored_at,
        "the proxy did not cut the monitor off"
    );
    proxy.sever(false);

    m.until(restored_at + 3).await;
    let status = m
        .wait_status("resubscribed", |s| {
            s.mode == SourceMode::Push && s.connected
        })
        .await;
    assert!(status.reconnects >= 1, "{status:?}");
    assert!(status.errors >= 1, "{status:?}");
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_falls_back_to_polling_when_new_block_notifications_stop() {
    let chain = chain().await;
    let proxy = Proxy::start(chain.rpc_addr).await;
    let mut m = spawn(
        config(
            &proxy.rpc_url(),
            &proxy.websocket_url(),
            EventSourceMode::Push,
        ),
        1,
        1024,
    );
    m.until(3).await;
    m.wait_status("subscribed", |s| s.mode == SourceMode::Push && s.connected)
        .await;

    // The WebSocket stays open but says nothing more; HTTP still works.
    proxy.mute_websocket(true);
    let fallback = m
        .wait_status("polling fallback", |s| s.mode == SourceMode::Polling)
        .await;
    assert!(
        fallback
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no NewBlock for")),
        "the watchdog, not a closed connection, must have noticed: {fallback:?}"
    );
    let from = m.expected;
    for _ in 0..8 {
        m.next().await;
        let status = m.status.borrow().clone();
        // Every reconnection attempt hangs in the muted handshake, so these heights came from polling.
        assert_eq!(status.mode, SourceMode::Polling, "{status:?}");
    }
    assert!(m.expected >= from + 8);

    proxy.mute_websocket(false);
    let status = m
        .wait_status("resubscribed", |s| {
            s.mode == SourceMode::Push && s.connected
        })
        .await;
    assert!(status.reconnects >= 1, "{status:?}");
    let back = chain.node.latest_height();
    m.until(back + 3).await;
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_height_that_cannot_be_fetched_is_retried_and_reported_never_skipped() {
    let chain = chain().await;
    let proxy = Proxy::start(chain.rpc_addr).await;
    let mut m = spawn(
        config(
            &proxy.rpc_url(),
            &proxy.websocket_url(),
            EventSourceMode::Pull,
        ),
        1,
        1024,
    );
    m.until(3).await;

    proxy.fail_block_results(true);
    let status = m.wait_status("stalled", |s| s.stalled.is_some()).await;
    let stalled = status.stalled.clone().expect("stalled");
    assert_eq!(Some(stalled.height - 1), status.last_height, "{status:?}");
    assert!(stalled.attempts >= 3, "{stalled:?}");
    assert!(!stalled.likely_pruned, "{stalled:?}");
    // Everything before the stalled height arrives; nothing after it does while it cannot be fetched.
    m.until(stalled.height - 1).await;
    timeout(GUARD, chain.wait_for_height(stalled.height + 3))
        .await
        .expect("chain goes on");
    assert!(m.rx.as_mut().expect("receiver").try_recv().is_err());

    proxy.fail_block_results(false);
    let block = m.next().await;
    assert_eq!(block.height, stalled.height);
    m.wait_status("stall cleared", |s| s.stalled.is_none())
        .await;
    let tip = chain.node.latest_height();
    m.until(tip).await;
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ibc_events_are_reported_with_their_block_and_delivery_goes_on() {
    let chain = chain().await;
    let proxy = Proxy::start(chain.rpc_addr).await;
    // The node now "forgets" the consensus height of every create_client event it reports.
    proxy.rewrite_responses(
        "\"key\":\"consensus_height\"",
        "\"key\":\"consensus_heigxt\"",
    );
    let mut m = spawn(
        config(
            &proxy.rpc_url(),
            &proxy.websocket_url(),
            EventSourceMode::Push,
        ),
        1,
        1024,
    );
    m.errors_expected = true;
    m.until(3).await;
    let hash = submit_create_client(&chain).await;
    let included = tx_height(&chain, &hash).await;
    let blocks = m.until(included + 2).await;
    for block in &blocks {
        assert!(block.events.is_empty(), "{block:?}");
        if block.height == included {
            assert_eq!(block.errors.len(), 1, "{block:?}");
            assert_eq!(
                block.errors[0].to_string(),
                format!(
                    "height {included}: create_client event: missing attribute consensus_height"
                )
            );
        } else {
            assert!(block.errors.is_empty(), "{block:?}");
        }
    }
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_it_while_blocked_on_a_full_sink_or_an_unreachable_node() {
    let chain = chain().await;

    // A sink of one that nobody reads: the second height waits for room.
    let m = spawn(
        config(
            &chain.rpc_url(),
            &chain.websocket_url(),
            EventSourceMode::Push,
        ),
        1,
        1,
    );
    let mut status = m.status.clone();
    timeout(GUARD, status.wait_for(|s| s.last_height == Some(1)))
        .await
        .expect("first height delivered")
        .expect("status kept");
    assert_eq!(m.shutdown().await, StopReason::Shutdown);

    // A node that cannot be reached at all: the monitor is retrying its first request.
    let proxy = Proxy::start(chain.rpc_addr).await;
    proxy.sever(true);
    let m = spawn(
        config(
            &proxy.rpc_url(),
            &proxy.websocket_url(),
            EventSourceMode::Push,
        ),
        1,
        8,
    );
    let mut status = m.status.clone();
    timeout(GUARD, status.wait_for(|s| s.errors >= 2))
        .await
        .expect("failures reported")
        .expect("status kept");
    assert_eq!(status.borrow().last_height, None);
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_chain_is_never_followed() {
    let chain = chain().await;
    let mut c = config(
        &chain.rpc_url(),
        &chain.websocket_url(),
        EventSourceMode::Push,
    );
    c.chain = "ibc-9".into();
    let mut m = spawn(c, 1, 8);
    let status = m
        .wait_status("wrong chain reported", |s| s.errors >= 2)
        .await;
    assert_eq!(
        status.last_error.as_deref(),
        Some(format!("ibc-9: the node at {} serves chain ibc-0", chain.rpc_url()).as_str())
    );
    assert_eq!(status.last_height, None);
    assert!(m.rx.as_mut().expect("receiver").try_recv().is_err());
    assert_eq!(m.shutdown().await, StopReason::Shutdown);
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sink_stops_it() {
    let chain = chain().await;
    for mode in [EventSourceMode::Push, EventSourceMode::Pull] {
        let mut m = spawn(config(&chain.rpc_url(), &chain.websocket_url(), mode), 1, 4);
        m.until(2).await;
        drop(m.rx.take());
        let reason = timeout(GUARD, &mut m.task)
            .await
            .expect("stops in time")
            .expect("task did not panic");
        assert_eq!(reason, StopReason::SinkClosed, "{mode:?}");
    }
    chain.shutdown().await;
}

#[test]
fn config_comes_from_the_chain_entry() {
    let toml = r#"
        [[chains]]
        id = "ibc-0"
        rpc_addr = "http://127.0.0.1:26657"
        account_prefix = "cosmos"
        key_name = "relayer"
        gas_price = "0.025stake"
        max_block_time = "7s"
        event_source = { mode = "pull", interval = "250ms" }
    "#;
    let config = relayd_config::Config::parse(toml, std::path::Path::new("relayd.toml"))
        .expect("config parses");
    let c = MonitorConfig::from_chain_config(
        &config.chains[0],
        Duration::from_millis(20),
        Duration::from_secs(3),
    )
    .expect("monitor config");
    assert_eq!(c.chain, "ibc-0");
    assert_eq!(c.rpc_url, "http://127.0.0.1:26657");
    assert_eq!(c.websocket_url, "ws://127.0.0.1:26657/websocket");
    assert_eq!(c.mode, EventSourceMode::Pull);
    assert_eq!(c.poll_interval, Duration::from_millis(250));
    assert_eq!(c.max_block_time, Duration::from_secs(7));
    assert_eq!(
        (c.backoff_base, c.backoff_cap),
        (Duration::from_millis(20), Duration::from_secs(3))
    );

    let mut bad = c.clone();
    bad.mode = EventSourceMode::Push;
    bad.websocket_url = "http://127.0.0.1:26657".into();
    assert!(EventMonitor::new(bad).is_err());
    let mut bad = c;
    bad.watchdog_blocks = 0;
    assert_eq!(
        EventMonitor::new(bad)
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("ibc-0: watchdog_blocks must be greater than zero")
    );
}
