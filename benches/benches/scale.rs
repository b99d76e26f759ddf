//! Scale harness: the `relayd` binary, as an operator runs it, against two devnet chains with many channels, many
//! half-done handshakes and a large backlog of packets; not run in CI.
//!
//! A Rust bench rather than a shell script because opening thousands of channels and sending a hundred thousand
//! transfers in reasonable time needs many messages per transaction, which the devnet's test support signs and
//! the CLIs at hand (`relayd create`, Hermes' `tx chan-open-init`) do not (one handshake step per command).
//!
//! The chains run in this process; relayd runs as its own process (`RELAYD_BIN`, default the workspace's
//! `target/debug/relayd`), so that its RSS (`/proc/PID/status` VmRSS, peak VmHWM), threads and open fds are its
//! own. Phases, each printed as one line:
//! 1. `handshakes`: `SCALE_N - 1` ChanOpenInit (`SCALE_INIT_PER_TX` per transaction) on ibc-0 besides the open
//!    channel-0, then `relayd start`: time until all `SCALE_N` channels are open on ibc-1 (relayd finds them with
//!    its handshake scan on start and finishes them with its handshake builders);
//! 2. `first packet`: relayd stopped, one transfer on the last channel, `relayd start`: time until the receiver
//!    holds its voucher on ibc-1, and RSS / threads / fds then and `SCALE_SETTLE_S` later;
//! 3. `backlog`: relayd stopped, `SCALE_P` transfers spread over all channels (`SCALE_PER_TX` per transaction),
//!    `relayd start`: time until all are received on ibc-1 and until no commitment is left on ibc-0;
//! 4. `half-done`: fresh chains, `SCALE_M - 1` ChanOpenInit left on ibc-0, `relayd start`: as phase 1.
//!
//! Run: `cargo bench -p relayd-benches --bench scale --profile dev` (`SCALE_N=100 SCALE_P=10000 SCALE_M=1000` for
//! a reduced run; `0` skips a phase; `SCALE_BLOCK_MS` block time, default 500; `SCALE_CAP_S` the most any phase
//! waits, default 1800; `SCALE_KEEP=1` keeps the work folder with relayd's logs; `SCALE_LOG` relayd's `RUST_LOG`,
//! default `info`; `SCALE_MIX=1` mixes channels within each transfer transaction; `SCALE_HERMES=1` adds phase 2b:
//! phase 2 again with Hermes 1.10.5 started instead of relayd, `HERMES_BIN` or `~/.cargo/bin/hermes`).

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "scale/hermes.rs"]
mod hermes;

#[path = "scale/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use ibc_proto::ibc::core::channel::v1::{
    Channel, Counterparty, MsgChannelOpenInit, Order, QueryChannelsRequest, QueryChannelsResponse,
    QueryPacketCommitmentsRequest, QueryPacketCommitmentsResponse, State,
};
use process::{free_port, relayd_bin, Relayer};
use prost::Message;
use support::chain::{Chain, Wallet};
use support::handshake::connect_transfer;
use support::light::any;
use support::packet::{ICS20_VERSION, TRANSFER_PORT};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Setup {
    chains: Vec<devnet::RunningChain>,
    a: Chain,
    b: Chain,
    dir: tempfile::TempDir,
    config: PathBuf,
    runs: usize,
}

impl Setup {
    /// Two chains, clients, a connection and `transfer/channel-0`, and relayd's configuration relaying every
    /// channel of the connection both ways.
    async fn new(block: Duration) -> Self {
        let mut opts = devnet::ChainOptions::local("ibc", block);
        opts.genesis.accounts = 2;
        let chains = devnet::start_chains(2, &opts).await.expect("chains");
        let _ = connect_transfer(&chains).await;
        let dir = tempfile::tempdir().expect("dir");
        let (config, files) = support::relayd::write(dir.path(), &chains, "channel-0");
        // No `paths`: every channel of the connection, as resolved when relayd starts.
        let text = std::fs::read_to_string(&config).expect("config");
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("paths = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = format!(
            "{text}\n[admin]\nlisten_addr = \"127.0.0.1:{}\"\n",
            free_port()
        );
        std::fs::write(&config, text).expect("config");
        for (chain, file) in files {
            let out = Command::new(relayd_bin())
                .arg("-c")
                .arg(&config)
                .args(["keys", "add", "--chain", &chain, "--key-file"])
                .arg(&file)
                .stdin(Stdio::null())
                .output()
                .expect("relayd keys add");
            assert!(
                out.status.success(),
                "keys add: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let a = Chain::connect(&chains[0]);
        let b = Chain::connect(&chains[1]);
        Self {
            chains,
            a,
            b,
            dir,
            config,
            runs: 0,
        }
    }

    fn start(&mut self) -> Relayer {
        self.runs += 1;
        let log = self.dir.path().join(format!("relayd-{}.log", self.runs));
        Relayer::start(&self.config, &log)
    }

    /// `hermes start` over the same chains (phase 2b).
    fn start_hermes(&mut self) -> Relayer {
        self.runs += 1;
        let home = hermes::HermesHome::new(self.dir.path(), &self.chains);
        let log = self.dir.path().join(format!("hermes-{}.log", self.runs));
        Relayer::spawn(home.start(), &log)
    }
}

/// The transfer channels of `chain`: (channel id, state, counterparty channel id).
async fn channels(chain: &Chain) -> Vec<(String, i32, String)> {
    let q = chain
        .query(
            "/ibc.core.channel.v1.Query/Channels",
            QueryChannelsRequest { pagination: None }.encode_to_vec(),
            None,
            false,
        )
        .await
        .expect("channels query");
    QueryChannelsResponse::decode(q.value.as_slice())
        .expect("channels response")
        .channels
        .into_iter()
        .filter(|c| c.port_id == TRANSFER_PORT)
        .map(|c| {
            let cp = c.counterparty.map(|c| c.channel_id).unwrap_or_default();
            (c.channel_id, c.state, cp)
        })
        .collect()
}

async fn count_open(chain: &Chain) -> usize {
    channels(chain)
        .await
        .iter()
        .filter(|(_, s, _)| *s == State::Open as i32)
        .count()
}

async fn commitments(chain: &Chain, channel: &str) -> usize {
    let req = QueryPacketCommitmentsRequest {
        port_id: TRANSFER_PORT.to_owned(),
        channel_id: channel.to_owned(),
        pagination: None,
    };
    let q = chain
        .query(
            "/ibc.core.channel.v1.Query/PacketCommitments",
            req.encode_to_vec(),
            None,
            false,
        )
        .await
        .expect("commitments query");
    QueryPacketCommitmentsResponse::decode(q.value.as_slice())
        .expect("commitments response")
        .commitments
        .len()
}

/// The sum of `address`'s IBC vouchers on `chain`: one per packet received, whatever the channel.
async fn vouchers(chain: &Chain, address: &str) -> u128 {
    use cosmrs::proto::cosmos::bank::v1beta1::{QueryAllBalancesRequest, QueryAllBalancesResponse};
    let req = QueryAllBalancesRequest {
        address: address.to_owned(),
        pagination: None,
        resolve_denom: false,
    };
    let q = chain
        .query(
            "/cosmos.bank.v1beta1.Query/AllBalances",
            req.encode_to_vec(),
            None,
            false,
        )
        .await
        .expect("balances query");
    QueryAllBalancesResponse::decode(q.value.as_slice())
        .expect("balances response")
        .balances
        .into_iter()
        .filter(|c| c.denom.starts_with("ibc/"))
        .map(|c| c.amount.parse::<u128>().unwrap_or(0))
        .sum()
}

/// `count` ChanOpenInit of transfer channels on ibc-0's connection, `per_tx` per transaction, signed by user2.
async fn open_inits(s: &Setup, count: usize, per_tx: usize) {
    let signer = Wallet::genesis(&s.chains[0], "user2");
    let init = MsgChannelOpenInit {
        port_id: TRANSFER_PORT.to_owned(),
        channel: Some(Channel {
            state: State::Init as i32,
            ordering: Order::Unordered as i32,
            counterparty: Some(Counterparty {
                port_id: TRANSFER_PORT.to_owned(),
                channel_id: String::new(),
            }),
            connection_hops: vec!["connection-0".to_owned()],
            version: ICS20_VERSION.to_owned(),
            upgrade_sequence: 0,
        }),
        signer: signer.address.clone(),
    };
    let one = any("/ibc.core.channel.v1.MsgChannelOpenInit", &init);
    let mut left = count;
    while left > 0 {
        let n = left.min(per_tx.max(1));
        s.a.submit(&signer, &vec![one.clone(); n]).await;
        left -= n;
    }
}

fn far_timeout() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    now + 6 * 3_600_000_000_000
}

/// `count` transfers of 1 stake from user1 on ibc-0 to user2 on ibc-1 over the channels `over`, `per_tx` per
/// transaction: each channel's share in a row (a transaction holds few channels), or with `SCALE_MIX=1` round
/// robin (every transaction holds packets of many channels).
async fn send(s: &Setup, over: &[String], count: usize, per_tx: usize) {
    let sender = Wallet::genesis(&s.chains[0], "user1");
    let receiver = Wallet::genesis(&s.chains[1], "user2").address;
    let timeout = far_timeout();
    let mix = env("SCALE_MIX", 0) == 1;
    let share = count.div_ceil(over.len().max(1)).max(1);
    let msgs: Vec<_> = (0..count)
        .map(|i| {
            let channel = if mix {
                i % over.len()
            } else {
                (i / share).min(over.len() - 1)
            };
            let msg = MsgTransfer {
                source_port: TRANSFER_PORT.to_owned(),
                source_channel: over[channel].clone(),
                token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
                    denom: "stake".to_owned(),
                    amount: "1".to_owned(),
                }),
                sender: sender.address.clone(),
                receiver: receiver.clone(),
                timeout_height: None,
                timeout_timestamp: timeout,
                memo: String::new(),
            };
            any("/ibc.applications.transfer.v1.MsgTransfer", &msg)
        })
        .collect();
    for chunk in msgs.chunks(per_tx.max(1)) {
        s.a.submit(&sender, chunk).await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Phases 1 and 4: `total` channels, all but channel-0 left at INIT on ibc-0; relayd finishes them.
async fn handshakes(s: &mut Setup, name: &str, total: usize, cap: Duration) {
    let per_tx = env("SCALE_INIT_PER_TX", 250) as usize;
    let t = Instant::now();
    open_inits(s, total.saturating_sub(1), per_tx).await;
    println!(
        "{name}: {} ChanOpenInit on ibc-0 in {} ({per_tx} per transaction)",
        total.saturating_sub(1),
        secs(t.elapsed())
    );
    let relayd = s.start();
    let mut open = 0;
    let mut half = None;
    while relayd.started.elapsed() < cap {
        tokio::time::sleep(Duration::from_secs(1)).await;
        open = count_open(&s.b).await;
        if half.is_none() && open * 2 >= total {
            half = Some(relayd.started.elapsed());
        }
        if open >= total {
            break;
        }
    }
    let took = relayd.started.elapsed();
    let now = relayd.now();
    let peak = relayd.stop();
    let result = if open >= total {
        format!("all {total} open on ibc-1 after {}", secs(took))
    } else {
        format!(
            "{open} of {total} open on ibc-1 after the cap of {}",
            secs(took)
        )
    };
    println!(
        "{name}: {result} (half after {}); at the end {}; peak RSS {} MB, threads {}, fds {}",
        half.map_or("-".to_owned(), secs),
        now.show(),
        peak.hwm_mb,
        peak.threads,
        peak.fds
    );
}

/// Phase 2: one transfer on the last channel while relayd is stopped, then the time from start to its receipt;
/// with `hermes`, phase 2b: the same with Hermes started instead.
async fn first_packet(s: &mut Setup, cap: Duration, hermes: bool) {
    let open: Vec<String> = open_channels(s).await;
    let Some(last) = open.last() else {
        println!("first packet: no open channel");
        return;
    };
    let receiver = Wallet::genesis(&s.chains[1], "user2").address;
    let before = vouchers(&s.b, &receiver).await;
    send(s, std::slice::from_ref(last), 1, 1).await;
    let (who, relayd) = if hermes {
        ("Hermes", s.start_hermes())
    } else {
        ("relayd", s.start())
    };
    let mut got = None;
    while relayd.started.elapsed() < cap {
        if vouchers(&s.b, &receiver).await > before {
            got = Some(relayd.started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = relayd.now();
    tokio::time::sleep(Duration::from_secs(env("SCALE_SETTLE_S", 10))).await;
    let settled = relayd.now();
    let peak = relayd.stop();
    println!(
        "first packet, {who} ({} open channels, packet on {last}): received {}; then {}; {}s later {}; peak RSS {} MB, threads {}, fds {}",
        open.len(),
        got.map_or_else(|| format!("not within {}", secs(cap)), |d| format!("after {}", secs(d))),
        at.show(),
        env("SCALE_SETTLE_S", 10),
        settled.show(),
        peak.hwm_mb,
        peak.threads,
        peak.fds
    );
}

/// ibc-0's open transfer channels, in id order (channel-0, channel-1, ...).
async fn open_channels(s: &Setup) -> Vec<String> {
    let mut open: Vec<(u64, String)> = channels(&s.a)
        .await
        .into_iter()
        .filter(|(_, st, _)| *st == State::Open as i32)
        .map(|(id, _, _)| {
            let n = id
                .trim_start_matches("channel-")
                .parse::<u64>()
                .unwrap_or(u64::MAX);
            (n, id)
        })
        .collect();
    open.sort();
    open.into_iter().map(|(_, id)| id).collect()
}

/// Phase 3: `count` transfers over every open channel while relayd is stopped, then the time to clear them.
async fn backlog(s: &mut Setup, count: usize, cap: Duration) {
    let open = open_channels(s).await;
    let per_tx = env("SCALE_PER_TX", 500) as usize;
    let receiver = Wallet::genesis(&s.chains[1], "user2").address;
    let before = vouchers(&s.b, &receiver).await;
    let t = Instant::now();
    send(s, &open, count, per_tx).await;
    println!(
        "backlog: {count} transfers over {} channels sent in {} ({per_tx} per transaction)",
        open.len(),
        secs(t.elapsed())
    );
    let relayd = s.start();
    let mut received = None;
    let mut left: BTreeSet<String> = open.iter().cloned().collect();
    let mut got = 0;
    while relayd.started.elapsed() < cap {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if received.is_none() {
            got = vouchers(&s.b, &receiver).await - before;
            if got >= count as u128 {
                received = Some(relayd.started.elapsed());
            } else {
                continue;
            }
        }
        // Acknowledged: no commitment left on a channel; a cleared channel stays cleared (nothing new is sent),
        // so each poll reads channels in order up to the first one still busy.
        while let Some(ch) = left.iter().next().cloned() {
            if commitments(&s.a, &ch).await > 0 {
                break;
            }
            left.remove(&ch);
        }
        if left.is_empty() {
            break;
        }
    }
    let acked = left.is_empty().then(|| relayd.started.elapsed());
    let now = relayd.now();
    let peak = relayd.stop();
    println!(
        "backlog: received {}, acknowledged {}; at the end {}; peak RSS {} MB, threads {}, fds {}",
        received.map_or_else(
            || format!("{got} of {count} after the cap"),
            |d| format!("all after {}", secs(d))
        ),
        acked.map_or_else(
            || format!("not all ({} channels with commitments)", left.len()),
            |d| format!("all after {}", secs(d))
        ),
        now.show(),
        peak.hwm_mb,
        peak.threads,
        peak.fds
    );
}

fn main() {
    let block = Duration::from_millis(env("SCALE_BLOCK_MS", 500));
    let n = env("SCALE_N", 1000) as usize;
    let p = env("SCALE_P", 100_000) as usize;
    let m = env("SCALE_M", 10_000) as usize;
    let cap = Duration::from_secs(env("SCALE_CAP_S", 1800));
    println!(
        "relayd {}; blocks {} ms; N={n} P={p} M={m}",
        relayd_bin().display(),
        block.as_millis()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if n > 0 {
            let mut s = Setup::new(block).await;
            handshakes(&mut s, "handshakes", n, cap).await;
            first_packet(&mut s, cap, false).await;
            if env("SCALE_HERMES", 0) == 1 {
                first_packet(&mut s, cap, true).await;
            }
            if p > 0 {
                backlog(&mut s, p, cap).await;
            }
            finish(s).await;
        }
        if m > 0 {
            let mut s = Setup::new(block).await;
            handshakes(&mut s, "half-done", m, cap).await;
            finish(s).await;
        }
    });
}

async fn finish(s: Setup) {
    if std::env::var_os("SCALE_KEEP").is_some() {
        let kept = s.dir.keep();
        println!("work folder kept: {}", kept.display());
    }
    for chain in s.chains {
        let _ = chain.shutdown().await;
    }
}
