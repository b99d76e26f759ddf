//! The Cosmos ⇄ NEAR scenarios of the load harness: a Cosmos devnet chain and the NEAR devnet in the process,
//! a transfer channel opened by relayd's `create` code (the demo's set-up), and relayd's actor system relaying
//! ICS-20 transfers both ways at once, so the figures sit beside the Cosmos ⇄ Cosmos ones.
//!
//! - `near`: `LOAD_PACKETS` transfers each way (default 1,000), sent in rounds of `LOAD_PER_BLOCK` (default 250)
//!   per direction while relayd runs; each round waits until its transactions are in a block, so the offered rate
//!   is what the two chains take. Figures per direction: packets/s from the first send block to the last
//!   acknowledgement, and latency from the send block's time to the moment relayd saw the receive and the
//!   acknowledgement, as p50 / p90 / p99.
//! - `near-backlog`: `LOAD_BACKLOG` transfers each way (default 2,000) sent before relayd starts; the figure is
//!   the time from relayd's start until every packet is acknowledged.
//!
//! Both report how many receives relayd packed per NEAR `deliver` call. `LOAD_SIGNERS=N` (default 1) gives the NEAR
//! relayer account N access keys in `key_files`, one TxSubmitter lane each; `LOAD_MAX_IN_FLIGHT` sets the NEAR
//! chain's `max_in_flight` (calls in flight per key).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use relayd::demo::near::{connect_near, near_account, NearSender, USER};
use relayd::demo::traffic::Sender;
use relayd::demo::{account, Devnet, Testbed};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::store::{PacketRecord, StateStore};
use relayd_messages::PacketState;

use super::{at, env, percentiles, Figures};

/// The two devnets, the open channel, relayd's configuration and state database.
struct NearSetup {
    devnet: Devnet,
    bed: Testbed,
    store: StateStore,
    _dir: tempfile::TempDir,
}

/// The devnets and channel with `signers` access keys of the NEAR relayer account in `key_files`.
async fn setup(block: Duration, signers: usize) -> NearSetup {
    let signers = signers.max(1);
    let dir = tempfile::tempdir().expect("dir");
    let devnet = Devnet::start_near_keys(block, &dir.path().join("chains"), signers)
        .await
        .expect("devnets");
    let mut bed = connect_near(&devnet, dir.path(), None)
        .await
        .expect("transfer channel");
    // As the Cosmos ⇄ Cosmos scenarios: 250 messages per Cosmos transaction; NEAR calls are cut by gas.
    let text = std::fs::read_to_string(&bed.config_path)
        .expect("config")
        .replace("max_msg_num = 100", "max_msg_num = 250");
    // `LOAD_SIGNERS`: the relayer's further keys beside its own file, one lane each; `LOAD_MAX_IN_FLIGHT`: `deliver`
    // calls in flight per NEAR lane.
    let line = text
        .lines()
        .find(|l| l.starts_with("key_file = '") && l.ends_with("relayer.devnet.json'"))
        .expect("the NEAR key_file line")
        .to_owned();
    let first = &line["key_file = ".len()..];
    let mut keys = if signers > 1 {
        let files: Vec<String> = std::iter::once(first.to_owned())
            .chain((1..signers).map(|i| {
                first.replace(
                    "relayer.devnet.json",
                    &format!("relayer.devnet.key{i}.json"),
                )
            }))
            .collect();
        format!("key_files = [{}]", files.join(", "))
    } else {
        line.clone()
    };
    if let Ok(n) = std::env::var("LOAD_MAX_IN_FLIGHT") {
        keys.push_str(&format!("\nmax_in_flight = {n}"));
    }
    let text = text.replace(&line, &keys);
    let text = match std::env::var("LOAD_MAX_BUILDERS") {
        Ok(n) => text.replacen("[global]\n", &format!("[global]\nmax_builders = {n}\n"), 1),
        Err(_) => text,
    };
    std::fs::write(&bed.config_path, text).expect("config");
    bed.config = relayd_config::Config::load(&bed.config_path).expect("config");
    let store = StateStore::open(&dir.path().join("state")).expect("store");
    NearSetup {
        devnet,
        bed,
        store,
        _dir: dir,
    }
}

/// A sender on each chain: `user1` on ibc-0 to `user1.devnet`, and back.
async fn senders(s: &NearSetup) -> (Sender, NearSender) {
    let cosmos = &s.devnet.chains()[0];
    let near = s.devnet.near().expect("NEAR devnet");
    let cosmos_user = account(cosmos, USER).expect("ibc-0 user");
    let near_user = near_account(near, USER).expect("NEAR user");
    let to_near = Sender::new(
        &s.bed.config,
        &s.bed.a.chain,
        cosmos_user,
        &s.bed.a.channel,
        near_user.account_id.as_str(),
    )
    .await
    .expect("ibc-0 sender");
    let to_cosmos = NearSender::new(
        &s.bed.config,
        &s.bed.data_dir,
        near,
        USER,
        &s.bed.b.channel,
        &cosmos_user.address,
    )
    .expect("NEAR sender");
    (to_near, to_cosmos)
}

/// A sender of transfers in one direction, as the rounds below drive it.
trait Transfers {
    /// Sends `n` transfers and returns how many packets they made.
    async fn send_n(&mut self, n: usize) -> usize;
}

impl Transfers for Sender {
    async fn send_n(&mut self, n: usize) -> usize {
        self.send(n)
            .await
            .map_err(|(_, e)| e)
            .expect("ibc-0 send")
            .len()
    }
}

impl Transfers for NearSender {
    async fn send_n(&mut self, n: usize) -> usize {
        self.send(n)
            .await
            .map_err(|(_, e)| e)
            .expect("NEAR send")
            .len()
    }
}

/// Sends `total` transfers through `sender`, `per_round` at a time, each round once the previous one is in a block.
async fn send_rounds(sender: &mut impl Transfers, total: usize, per_round: usize) {
    let mut sent = 0;
    while sent < total {
        let n = per_round.min(total - sent);
        assert_eq!(sender.send_n(n).await, n, "every transfer made a packet");
        sent += n;
    }
}

/// Sends `total` transfers each way, `per_round` per direction at a time, both directions at once.
async fn send_both_ways(
    to_near: &mut Sender,
    to_cosmos: &mut NearSender,
    total: usize,
    per_round: usize,
) {
    futures::join!(
        send_rounds(to_near, total, per_round),
        send_rounds(to_cosmos, total, per_round)
    );
}

/// Waits until the state database holds `want` acknowledged records; fails on any other final state.
async fn wait_acknowledged(store: &StateStore, want: usize, bound: Duration) {
    let start = Instant::now();
    loop {
        let records: Vec<PacketRecord> = store.packets().map(|r| r.expect("record")).collect();
        let bad: Vec<_> = records
            .iter()
            .filter(|r| r.is_final() && r.state != PacketState::Acknowledged)
            .map(|r| (r.key.clone(), r.state, r.last_error.clone()))
            .collect();
        assert!(bad.is_empty(), "packets ended otherwise: {bad:?}");
        let acked = records
            .iter()
            .filter(|r| r.state == PacketState::Acknowledged)
            .count();
        if acked >= want {
            return;
        }
        assert!(
            start.elapsed() < bound,
            "{acked} of {want} acknowledged within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The time (ms since the epoch) of each send block the records name, from the chain that sent them.
async fn send_times(s: &NearSetup, records: &[PacketRecord]) -> HashMap<(bool, u64), u64> {
    let near_id = s.bed.b.chain.as_str();
    let cosmos = CosmosRpc::connect(&s.bed.a.chain, &s.devnet.chains()[0].rpc_url())
        .await
        .expect("ibc-0 rpc");
    let near = NearRpc::new(near_id, &s.devnet.near().expect("NEAR devnet").rpc_url());
    let mut out = HashMap::new();
    for r in records {
        // Sent by NEAR when its destination is ibc-0.
        let from_near = r.dst_chain != near_id;
        let key = (from_near, r.send_height);
        if out.contains_key(&key) {
            continue;
        }
        let ms = if from_near {
            let block = near.block(Some(r.send_height)).await.expect("NEAR block");
            block.header.timestamp_nanosec / 1_000_000
        } else {
            let block = cosmos.block(r.send_height).await.expect("ibc-0 block");
            u64::try_from(block.header.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
        };
        out.insert(key, ms);
    }
    out
}

/// Receives per NEAR `deliver` call: packets whose `MsgRecvPacket` relayd sent to NEAR, over the distinct
/// transactions that carried them (only relayd relays on the bench's chains).
fn receives_per_deliver(records: &[PacketRecord], near_id: &str) -> String {
    let hashes: Vec<&str> = records
        .iter()
        .filter(|r| r.dst_chain == near_id)
        // The receive is the first transaction relayd makes for a packet (the acknowledgement comes after it).
        .filter_map(|r| r.tx_hashes.first().map(String::as_str))
        .collect();
    let calls: HashSet<&str> = hashes.iter().copied().collect();
    if calls.is_empty() {
        return "n/a".into();
    }
    format!(
        "{} receives in {} deliver calls ({:.1} per call)",
        hashes.len(),
        calls.len(),
        hashes.len() as f64 / calls.len() as f64
    )
}

/// Prints the figures of one direction: packets/s from its first send block to its last acknowledgement, and
/// the latency percentiles.
fn report(label: &str, records: &[&PacketRecord], sent: impl Fn(&PacketRecord) -> u64) {
    let f = Figures::of(records.iter().copied(), sent);
    println!(
        "  {label}: {} packets, {:.0} packets/s from first send block to last ack ({:.1} s)",
        f.packets,
        f.rate(),
        f.secs
    );
    println!("    send block -> received: {}", percentiles(f.received));
    println!("    send block -> acknowledged: {}", percentiles(f.acked));
}

async fn finish(s: NearSetup) {
    s.devnet.shutdown().await;
}

/// Starts relayd's actor system as the service does, on the setup's configuration and state database.
async fn start_relayd(s: &NearSetup) -> relayd_actors::system::RelayHandle {
    relayd_actors::system::start(&s.bed.config, s.store.clone(), s.bed.data_dir.join("keys"))
        .await
        .expect("relayd starts")
}

/// `near`: transfers both ways while relayd runs.
pub async fn steady(block: Duration) {
    let packets = env("LOAD_PACKETS", 1_000) as usize;
    let per_round = env("LOAD_PER_BLOCK", 250) as usize;
    let signers = env("LOAD_SIGNERS", 1) as usize;
    let s = setup(block, signers).await;
    let relayd = start_relayd(&s).await;
    // Let the monitors settle on their start height.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut to_near, mut to_cosmos) = senders(&s).await;
    let sending = Instant::now();
    send_both_ways(&mut to_near, &mut to_cosmos, packets, per_round).await;
    let sent_in = sending.elapsed();
    wait_acknowledged(&s.store, 2 * packets, Duration::from_secs(900)).await;
    relayd.shutdown().await;

    let records: Vec<PacketRecord> = s.store.packets().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 2 * packets, "one record per packet");
    let times = send_times(&s, &records).await;
    let near_id = s.bed.b.chain.clone();
    let sent = |r: &PacketRecord| times[&(r.dst_chain != near_id, r.send_height)];
    println!(
        "near steady, {} ms blocks (both chains), {signers} NEAR key(s): {packets} transfers each way in rounds of {per_round}, all sent in {:.1} s",
        block.as_millis(),
        sent_in.as_secs_f64()
    );
    let (to_near_records, to_cosmos_records): (Vec<&PacketRecord>, Vec<&PacketRecord>) =
        records.iter().partition(|r| r.dst_chain == near_id);
    report("ibc-0 -> NEAR", &to_near_records, sent);
    report("NEAR -> ibc-0", &to_cosmos_records, sent);
    let both = Figures::of(records.iter(), sent);
    println!(
        "  both ways: {:.0} packets/s ({} packets in {:.1} s); {}",
        both.rate(),
        both.packets,
        both.secs,
        receives_per_deliver(&records, &near_id)
    );
    finish(s).await;
}

/// `near-backlog`: transfers both ways left pending, then relayd started and timed until all are acknowledged.
pub async fn backlog(block: Duration) {
    let packets = env("LOAD_BACKLOG", 2_000) as usize;
    let signers = env("LOAD_SIGNERS", 1) as usize;
    let s = setup(block, signers).await;
    let (mut to_near, mut to_cosmos) = senders(&s).await;
    let sending = Instant::now();
    send_both_ways(&mut to_near, &mut to_cosmos, packets, 250).await;
    println!(
        "near backlog, {} ms blocks (both chains): {packets} transfers each way sent in {:.1} s before relayd starts",
        block.as_millis(),
        sending.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let relayd = start_relayd(&s).await;
    wait_acknowledged(&s.store, 2 * packets, Duration::from_secs(1800)).await;
    let acked = start.elapsed();
    relayd.shutdown().await;
    let records: Vec<PacketRecord> = s.store.packets().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 2 * packets, "one record per packet");
    let near_id = s.bed.b.chain.clone();
    let last_received = |to_near: bool| {
        records
            .iter()
            .filter(|r| (r.dst_chain == near_id) == to_near)
            .filter_map(|r| at(r, PacketState::Confirmed))
            .max()
            .unwrap_or(0)
    };
    let started_ms = now_ms().saturating_sub(start.elapsed().as_millis() as u64);
    println!(
        "  relayd start -> all received on NEAR: {:.1} s, on ibc-0: {:.1} s; -> all acknowledged: {:.1} s ({:.0} packets/s); {}",
        last_received(true).saturating_sub(started_ms) as f64 / 1000.0,
        last_received(false).saturating_sub(started_ms) as f64 / 1000.0,
        acked.as_secs_f64(),
        (2 * packets) as f64 / acked.as_secs_f64(),
        receives_per_deliver(&records, &near_id)
    );
    finish(s).await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// Runs `scenario` (`near` or `near-backlog`) at each block time, each in an actix System of its own.
pub fn run(scenario: &str, blocks: &[u64]) {
    for ms in blocks {
        let block = Duration::from_millis(*ms);
        actix_rt::System::new().block_on(async move {
            match scenario {
                "near" => steady(block).await,
                _ => backlog(block).await,
            }
        });
    }
}
