//! End-to-end load harness: relayd's actor system relaying ICS-20 transfers between two devnet chains, as the
//! service runs it (one actix System, one Arbiter per chain, sled on disk).
//!
//! Two Cosmos ⇄ Cosmos scenarios, each with 1 s and 200 ms blocks unless `LOAD_BLOCK_MS` names one:
//! - steady: `LOAD_PACKETS` transfers (default 2,000) sent from ibc-0 while relayd runs, `LOAD_PER_BLOCK` (default
//!   250) per transaction, one transaction per block; figures are packets/s from the first send's block to the
//!   last acknowledgement, and the relay latency of each packet from its send block's time to the moment relayd
//!   saw it received on ibc-1 (and acknowledged on ibc-0), as p50 / p90 / p99; `LOAD_SIGNERS` (default 1)
//!   signing keys per chain (`key_names`; the further ones are funded genesis accounts `user3`, `user4`, ...);
//! - backlog: `LOAD_BACKLOG` transfers (default 20,000) sent before relayd starts; the figure is the time from
//!   start to the last acknowledgement (clearing on start finds them through commitments, their data through
//!   the transaction index).
//!
//! and two Cosmos ⇄ NEAR scenarios, `near` and `near-backlog` (see `relay_load/near.rs`), run only when named.
//!
//! Run: `cargo bench -p relayd-benches --bench relay_load` (`LOAD_SCENARIO=steady|backlog|near|near-backlog` for
//! one; `LOAD_MAX_BUILDERS` sets `[global] max_builders`, `LOAD_MAX_MSGS` and `LOAD_MAX_IN_FLIGHT` the chains'
//! `max_msg_num` and `max_in_flight`).

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "relay_load/near.rs"]
mod near;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::keys::{KeySource, KeyStore};
use relayd_actors::store::{PacketRecord, StateStore};
use relayd_messages::PacketState;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};
use tokio::sync::oneshot;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// relayd in its own thread and actix System; stopping it flushes sled.
struct Relayd {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Relayd {
    fn start(config: &Path, data: &Path) -> Self {
        let config = relayd_config::Config::load(config).expect("config");
        let data = data.to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let store = StateStore::open(&data.join("state")).expect("store");
                let handle = relayd_actors::system::start(&config, store, data.join("keys"))
                    .await
                    .expect("relayd starts");
                let _ = stopped.await;
                handle.shutdown().await;
            });
        });
        Self { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("relayd thread");
    }
}

struct Setup {
    chains: Vec<devnet::RunningChain>,
    a: support::handshake::End,
    b: support::handshake::End,
    _dir: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
}

/// Two chains joined by a transfer channel and relayd's config, with `signers` signing keys per chain.
async fn setup(block: Duration, signers: usize) -> Setup {
    let signers = signers.max(1);
    let mut opts = devnet::ChainOptions::local("ibc", block);
    // user1 and user2 send and receive; user3 onwards are the further relayer keys.
    opts.genesis.accounts = 2 + (signers - 1);
    let chains = devnet::start_chains(2, &opts).await.expect("chains");
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().expect("dir");
    let (config, files) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    // One direction is measured; the reverse path stays configured but idle.
    // `LOAD_MAX_MSGS` / `LOAD_MAX_IN_FLIGHT`: messages per transaction and transactions in flight per lane
    // (defaults 250 and the chain default of 4); small values make the account sequence the limit.
    let mut limits = format!("max_msg_num = {}", env("LOAD_MAX_MSGS", 250));
    if let Ok(n) = std::env::var("LOAD_MAX_IN_FLIGHT") {
        limits.push_str(&format!("\nmax_in_flight = {n}"));
    }
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("max_msg_num = 100", &limits);
    // `LOAD_MAX_BUILDERS`: the builder window (`[global] max_builders`); unset, the default.
    let text = match std::env::var("LOAD_MAX_BUILDERS") {
        Ok(n) => text.replacen("[global]\n", &format!("[global]\nmax_builders = {n}\n"), 1),
        Err(_) => text,
    };
    let names: Vec<String> = std::iter::once("relayer".to_owned())
        .chain((2..=signers).map(|i| format!("relayer{i}")))
        .collect();
    let text = if signers > 1 {
        let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        text.replace(
            "key_name = \"relayer\"",
            &format!("key_names = [{}]", list.join(", ")),
        )
    } else {
        text
    };
    std::fs::write(&config, text).expect("config");
    let data = dir.path().join("data");
    let keys = KeyStore::open(&data.join("keys")).expect("keys");
    for (chain, file) in files {
        keys.add(&chain, "relayer", "cosmos", KeySource::KeyFile(&file))
            .expect("key");
    }
    for c in &chains {
        for (i, name) in names.iter().enumerate().skip(1) {
            let user = c
                .genesis
                .account(&format!("user{}", i + 2))
                .expect("genesis account of a further key");
            let file = dir.path().join(format!("{}-{name}.json", c.chain_id()));
            std::fs::write(
                &file,
                format!("{{\"private_key\": \"{}\"}}", hex::encode(user.private_key)),
            )
            .expect("key file");
            keys.add_extra(
                &c.chain_id().to_string(),
                name,
                "cosmos",
                KeySource::KeyFile(&file),
            )
            .expect("key");
        }
    }
    Setup {
        chains,
        a,
        b,
        _dir: dir,
        config,
        data,
    }
}

fn far_timeout() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    now + 3_600_000_000_000
}

async fn wait_vouchers(s: &Setup, receiver: &str, want: u128, bound: Duration) {
    let denom = voucher_denom(TRANSFER_PORT, &s.b.channel_id, "stake");
    let start = Instant::now();
    while s.b.chain.balance(receiver, &denom).await < want {
        assert!(start.elapsed() < bound, "not relayed within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_no_commitments(s: &Setup, bound: Duration) {
    let rpc = CosmosRpc::connect("ibc-0", &s.chains[0].rpc_url())
        .await
        .expect("rpc");
    let start = Instant::now();
    loop {
        let left = rpc
            .packet_commitments(TRANSFER_PORT, &s.a.channel_id)
            .await
            .map(|c| c.len())
            .unwrap_or(usize::MAX);
        if left == 0 {
            return;
        }
        assert!(
            start.elapsed() < bound,
            "{left} packets not acknowledged within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn at(record: &PacketRecord, state: PacketState) -> Option<u64> {
    record
        .history
        .iter()
        .find(|t| t.state == state)
        .map(|t| t.at_ms)
}

/// What the records of one direction say: packets/s from the first send block to the last acknowledgement, and
/// each packet's latency from its send block to the receive and the acknowledgement relayd saw.
struct Figures {
    packets: usize,
    secs: f64,
    received: Vec<u64>,
    acked: Vec<u64>,
}

impl Figures {
    /// Figures of `records`, whose send block times `sent` gives (ms).
    fn of<'a>(
        records: impl Iterator<Item = &'a PacketRecord> + Clone,
        sent: impl Fn(&PacketRecord) -> u64,
    ) -> Self {
        let since = |state| {
            let sent = &sent;
            records
                .clone()
                .filter_map(move |r| at(r, state).map(|t| t.saturating_sub(sent(r))))
        };
        let received: Vec<u64> = since(PacketState::Confirmed).collect();
        let acked: Vec<u64> = since(PacketState::Acknowledged).collect();
        let first = records.clone().map(&sent).min().unwrap_or(0);
        let last = records
            .clone()
            .filter_map(|r| at(r, PacketState::Acknowledged))
            .max()
            .unwrap_or(0);
        Self {
            packets: records.count(),
            secs: last.saturating_sub(first) as f64 / 1000.0,
            received,
            acked,
        }
    }

    fn rate(&self) -> f64 {
        self.packets as f64 / self.secs.max(0.001)
    }
}

fn percentiles(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    format!("p50 {} ms, p90 {} ms, p99 {} ms", p(0.5), p(0.9), p(0.99))
}

async fn block_times_ms(chain: &devnet::RunningChain, heights: &[u64]) -> HashMap<u64, u64> {
    let rpc = CosmosRpc::connect(&chain.chain_id(), &chain.rpc_url())
        .await
        .expect("rpc");
    let mut out = HashMap::new();
    for h in heights {
        if out.contains_key(h) {
            continue;
        }
        let block = rpc.block(*h).await.expect("block");
        let t = block.header.time.unix_timestamp_nanos() / 1_000_000;
        out.insert(*h, u64::try_from(t).unwrap_or(0));
    }
    out
}

async fn steady(block: Duration) {
    let packets = env("LOAD_PACKETS", 2_000) as usize;
    let per_tx = env("LOAD_PER_BLOCK", 250) as usize;
    let signers = env("LOAD_SIGNERS", 1) as usize;
    let s = setup(block, signers).await;
    let relayd = Relayd::start(&s.config, &s.data);
    // Let the monitors settle on their start height.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    transfers(&s.a, &u1, &u2.address, 1, packets, per_tx, far_timeout()).await;
    wait_vouchers(&s, &u2.address, packets as u128, Duration::from_secs(900)).await;
    wait_no_commitments(&s, Duration::from_secs(900)).await;
    relayd.stop();

    let store = StateStore::open(&s.data.join("state")).expect("store");
    let records: Vec<PacketRecord> = store.packets().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), packets, "one record per packet");
    let heights: Vec<u64> = records.iter().map(|r| r.send_height).collect();
    let times = block_times_ms(&s.chains[0], &heights).await;
    let f = Figures::of(records.iter(), |r| times[&r.send_height]);
    println!(
        "steady, {} ms blocks, {signers} signer(s) per chain: {packets} packets ({per_tx} per send tx), {:.0} packets/s from first send block to last ack ({:.1} s)",
        block.as_millis(),
        f.rate(),
        f.secs
    );
    println!(
        "  send block -> received on ibc-1 (seen by relayd): {}",
        percentiles(f.received)
    );
    println!(
        "  send block -> acknowledged on ibc-0 (seen by relayd): {}",
        percentiles(f.acked)
    );
    for c in s.chains {
        c.shutdown().await;
    }
}

async fn backlog(block: Duration) {
    let packets = env("LOAD_BACKLOG", 20_000) as usize;
    let s = setup(block, 1).await;
    let u1 = Wallet::genesis(&s.chains[0], "user1");
    let u2 = Wallet::genesis(&s.chains[1], "user2");
    let sending = Instant::now();
    transfers(&s.a, &u1, &u2.address, 1, packets, 250, far_timeout()).await;
    println!(
        "backlog, {} ms blocks: {packets} packets sent in {:.1} s before relayd starts",
        block.as_millis(),
        sending.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let relayd = Relayd::start(&s.config, &s.data);
    wait_vouchers(&s, &u2.address, packets as u128, Duration::from_secs(1800)).await;
    let received = start.elapsed();
    wait_no_commitments(&s, Duration::from_secs(1800)).await;
    let acked = start.elapsed();
    relayd.stop();
    println!(
        "  relayd start -> all received: {:.1} s; -> all acknowledged: {:.1} s ({:.0} packets/s)",
        received.as_secs_f64(),
        acked.as_secs_f64(),
        packets as f64 / acked.as_secs_f64()
    );
    for c in s.chains {
        c.shutdown().await;
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (a filter) is ignored.
    let blocks: Vec<u64> = match std::env::var("LOAD_BLOCK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(ms) => vec![ms],
        None => vec![1000, 200],
    };
    let scenario = std::env::var("LOAD_SCENARIO").unwrap_or_default();
    if scenario.starts_with("near") {
        near::run(&scenario, &blocks);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for ms in &blocks {
            if scenario.is_empty() || scenario == "steady" {
                steady(Duration::from_millis(*ms)).await;
            }
        }
        if scenario.is_empty() || scenario == "backlog" {
            backlog(Duration::from_millis(*blocks.last().unwrap_or(&200))).await;
        }
    });
}
