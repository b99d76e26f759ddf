//! ICS-20 spam caps as an operator meets them: with the default caps (32 KiB memo, 2 KiB receiver), a transfer
//! with a 40 KiB memo sent while relayd is down, one sent live, and one with a 3 KiB receiver are not relayed
//! and say why in `/packets`, `relayd packet trace` and `relayd_packets_skipped_total`, while a normal transfer
//! beside them is relayed; after a restart and `relayd clear packets` (through the service and on its own) they
//! are still not received on the destination.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use serde_json::Value;
use support::chain::Wallet;
use support::handshake::{connect_transfer, End};
use support::light::any;
use support::packet::{voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has, relayd, BIN};

const TOKEN: &str = "caps-admin-token-of-at-least-32-bytes";

/// A running `relayd start`, killed if the test ends early.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Service {
    async fn start(config: &Path, log: &Path) -> Self {
        let child = Command::new(BIN)
            .env("RUST_LOG", "info")
            .args(["--log-format", "text", "-c"])
            .arg(config)
            .arg("start")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("relayd starts");
        eventually("relayd started", || async {
            log_has(log, "relayd started")
        })
        .await;
        Self(child)
    }

    fn stop(mut self) {
        common::stop(&mut self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A transfer of 1stake from `sender` with `receiver` and `memo`; returns its sequence.
async fn send(from: &End, sender: &Wallet, receiver: &str, memo: &str) -> u64 {
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let msg = MsgTransfer {
        source_port: TRANSFER_PORT.to_owned(),
        source_channel: from.channel_id.clone(),
        token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
            denom: "stake".to_owned(),
            amount: "1".to_owned(),
        }),
        sender: sender.address.clone(),
        receiver: receiver.to_owned(),
        timeout_height: None,
        timeout_timestamp: timeout,
        memo: memo.to_owned(),
    };
    let inc = from
        .chain
        .submit(
            sender,
            &[any("/ibc.applications.transfer.v1.MsgTransfer", &msg)],
        )
        .await;
    support::packet::sent_packet(&inc).sequence
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> String {
    let resp = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("admin server answers");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.text().await.unwrap()
}

fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn trace(config: &Path, channel: &str, seq: u64) -> Value {
    let out = relayd(
        config,
        &[
            "packet",
            "trace",
            "ibc-0",
            "transfer",
            channel,
            &seq.to_string(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_config(dir: &Path, base: &str, port: u16) -> PathBuf {
    let config = dir.join("relayd.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[admin]\nlisten_addr = \"127.0.0.1:{port}\"\ntoken_file = \"admin.token\"\n"
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_memos_and_receivers_are_skipped_for_good_and_say_why() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    let base = std::fs::read_to_string(&config).unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(
        dir.path().join("admin.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config = write_config(dir.path(), &base, port);
    add_keys(&config, &keys);
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let memo_40k = "m".repeat(40 * 1024);

    // Sent while relayd is down, with `relayd tx transfer --memo`: found by the clearing on start.
    let out = relayd(
        &config,
        &[
            "tx",
            "transfer",
            "--src-chain",
            "ibc-0",
            "--dst-chain",
            "ibc-1",
            "--channel",
            &a.channel_id,
            "--amount",
            "1stake",
            "--receiver",
            &u2.address,
            "--memo",
            &memo_40k,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    let offline = sent["sequences"][0].as_u64().unwrap();

    let log = dir.path().join("relayd-1.log");
    let service = Service::start(&config, &log).await;
    let live_memo = send(&a, &u1, &u2.address, &memo_40k).await;
    let long_receiver = send(&a, &u1, &"r".repeat(3 * 1024), "").await;
    let normal = send(&a, &u1, &u2.address, "a short memo").await;
    let skipped = [offline, live_memo, long_receiver];

    // The normal transfer is relayed beside them.
    let voucher = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();
    eventually("the normal transfer acknowledged", || async {
        !rpc_a
            .packet_commitments(TRANSFER_PORT, &a.channel_id)
            .await
            .unwrap()
            .contains(&normal)
    })
    .await;
    assert_eq!(b.chain.balance(&u2.address, &voucher).await, 1);

    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{port}");
    eventually("the three skipped packets recorded", || async {
        let page: Value =
            serde_json::from_str(&get(&http, &api, "/packets?state=skipped").await).unwrap();
        page["packets"].as_array().map_or(0, Vec::len) == 3
    })
    .await;
    let reasons = [
        (offline, "memo_too_large", "ics20_max_memo_size"),
        (live_memo, "memo_too_large", "ics20_max_memo_size"),
        (
            long_receiver,
            "receiver_too_large",
            "ics20_max_receiver_size",
        ),
    ];
    for (seq, reason, key) in reasons {
        let path = format!("/packets/ibc-0/transfer/{}/{seq}", a.channel_id);
        let timeline: Value = serde_json::from_str(&get(&http, &api, &path).await).unwrap();
        assert_eq!(timeline["state"], "skipped", "{timeline}");
        assert_eq!(timeline["skip_reason"], reason, "{timeline}");
        let last = timeline["history"].as_array().unwrap().last().unwrap();
        assert_eq!(last["state"], "skipped");
        assert!(last["error"].as_str().unwrap().contains(key), "{timeline}");
    }
    let metrics = get(&http, &api, "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "relayd_packets_skipped_total{reason=\"memo_too_large\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "relayd_packets_skipped_total{reason=\"receiver_too_large\"}"
        ),
        Some(1.0)
    );
    service.stop();

    // Restarted: clearing on start leaves them; so does `relayd clear packets` through the service.
    let log = dir.path().join("relayd-2.log");
    let service = Service::start(&config, &log).await;
    let out = relayd(
        &config,
        &[
            "clear",
            "packets",
            "--chain",
            "ibc-0",
            "--port",
            "transfer",
            "--channel",
            &a.channel_id,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let op: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(op["counts"]["skipped"], 3, "{op}");
    assert_eq!(op["counts"]["total"], 0, "{op}");
    service.stop();

    // And on its own, with no service up.
    let out = relayd(
        &config,
        &[
            "clear",
            "packets",
            "--chain",
            "ibc-0",
            "--port",
            "transfer",
            "--channel",
            &a.channel_id,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pending"], serde_json::json!([]), "{report}");
    assert_eq!(report["skipped"], serde_json::json!(skipped), "{report}");

    let trace_text = trace(&config, &a.channel_id, long_receiver);
    assert_eq!(trace_text["state"], "skipped");
    // Never received on the destination, and still committed on the source.
    let unreceived = rpc_b
        .unreceived_packets(TRANSFER_PORT, &b.channel_id, &skipped)
        .await
        .unwrap();
    assert_eq!(unreceived, skipped);
    assert_eq!(
        rpc_a
            .packet_commitments(TRANSFER_PORT, &a.channel_id)
            .await
            .unwrap(),
        skipped
    );
    assert_eq!(b.chain.balance(&u2.address, &voucher).await, 1);
    for chain in chains {
        chain.shutdown().await;
    }
}
