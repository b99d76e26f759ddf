//! Reloading a running `relayd start` as an operator does: edit the file, send SIGHUP or `POST /config/reload`,
//! and see the change take effect without a restart: a path added (its pending packet cleared and relayed), an
//! ICS-20 memo cap lowered (a packet over it skipped while a normal one is relayed), a channel filter denying a
//! channel (its packet left alone while the other channel relays). A broken file, and one changing what needs a
//! restart, are refused by both routes with file, line and key, and nothing changes.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use reqwest::StatusCode;
use serde_json::Value;
use support::chain::Wallet;
use support::handshake::{connect_transfer, open_channel, End};
use support::light::any;
use support::packet::{voucher_denom, ICS20_VERSION, TRANSFER_PORT};

use common::{add_keys, eventually, log_has, BIN};

const TOKEN: &str = "reload-admin-token-of-at-least-32-bytes";

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
            .unwrap();
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

/// A transfer of 1stake on `channel` of `from`, with `memo`; returns its sequence.
async fn send(from: &End, channel: &str, sender: &Wallet, receiver: &str, memo: &str) -> u64 {
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let msg = MsgTransfer {
        source_port: TRANSFER_PORT.to_owned(),
        source_channel: channel.to_owned(),
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

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("admin server answers");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn reload(&self) -> (StatusCode, Value) {
        let bearer = format!("Bearer {TOKEN}");
        let auth: Value = self
            .http
            .post(format!("{}/authorisations", self.base))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resp = self
            .http
            .post(format!("{}/config/reload", self.base))
            .header("authorization", &bearer)
            .header(
                "x-relayd-authorisation",
                auth["authorisation"].as_str().unwrap(),
            )
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn state(&self, channel: &str, seq: u64) -> Option<String> {
        let (status, v) = self
            .get(&format!("/packets/ibc-0/transfer/{channel}/{seq}"))
            .await;
        (status == StatusCode::OK).then(|| v["state"].as_str().unwrap_or_default().to_owned())
    }
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_post_apply_paths_caps_and_filters_and_refuse_broken_files() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (mut a, mut b) = connect_transfer(&chains).await;
    let (ch0, b_ch0) = (a.channel_id.clone(), b.channel_id.clone());
    // A second transfer channel on the same connection, opened before relayd runs (the helpers sign with the
    // relayer's account, which relayd uses once started).
    open_channel(&mut a, &mut b, TRANSFER_PORT, ICS20_VERSION).await;
    let (ch1, b_ch1) = (a.channel_id.clone(), b.channel_id.clone());
    assert_ne!(ch0, ch1);

    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &ch0);
    let port = free_port();
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(
        dir.path().join("admin.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let base = format!(
        "{}\n[admin]\nlisten_addr = \"127.0.0.1:{port}\"\ntoken_file = \"admin.token\"\n",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, &base).unwrap();
    add_keys(&config, &keys);
    let one_path = format!(
        "paths = [{{ src_port = \"transfer\", src_channel = \"{ch0}\", dest_port = \"transfer\" }}]"
    );
    assert!(base.contains(&one_path), "{base}");
    let two_paths = format!(
        "paths = [{{ src_port = \"transfer\", src_channel = \"{ch0}\", dest_port = \"transfer\" }}, {{ src_port = \"transfer\", src_channel = \"{ch1}\", dest_port = \"transfer\" }}]"
    );
    let capped = base
        .replacen("[global]\n", "[global]\nics20_max_memo_size = 64\n", 1)
        .replace(&one_path, &two_paths);
    let filtered = capped.replacen(
        "client_ids = [\"07-tendermint-0\"]\n",
        &format!("client_ids = [\"07-tendermint-0\"]\npacket_filter = {{ deny = [\"transfer/{ch0}\"] }}\n"),
        1,
    );
    let broken = filtered.replacen("ics20_max_memo_size = 64", "ics20_max_memo_size = 0", 1);
    let restart_needed = filtered.replacen("timeout = \"10s\"", "timeout = \"20s\"", 1);
    assert_ne!(restart_needed, filtered);

    let log = dir.path().join("relayd.log");
    let relayd = Service::start(&config, &log).await;
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let voucher0 = voucher_denom(TRANSFER_PORT, &b_ch0, "stake");
    let voucher1 = voucher_denom(TRANSFER_PORT, &b_ch1, "stake");
    let memo_100 = "m".repeat(100);

    // Before any reload: channel 1 is not configured, and a 100-byte memo is under the default cap.
    let waiting = send(&a, &ch1, &u1, &u2.address, "").await;
    send(&a, &ch0, &u1, &u2.address, &memo_100).await;
    eventually("the 100-byte memo relayed", || async {
        b.chain.balance(&u2.address, &voucher0).await == 1
    })
    .await;
    assert_eq!(api.state(&ch1, waiting).await, None);

    // SIGHUP: channel 1's path starts (its waiting packet is cleared and relayed), and the memo cap is 64.
    std::fs::write(&config, &capped).unwrap();
    hangup(&relayd.0);
    eventually("the reload logged", || async {
        log_has(&log, "configuration reloaded")
    })
    .await;
    eventually("channel 1's waiting packet relayed", || async {
        b.chain.balance(&u2.address, &voucher1).await == 1
    })
    .await;
    let over = send(&a, &ch0, &u1, &u2.address, &memo_100).await;
    send(&a, &ch0, &u1, &u2.address, "short").await;
    eventually("the short-memo transfer relayed", || async {
        b.chain.balance(&u2.address, &voucher0).await == 2
    })
    .await;
    eventually("the 100-byte memo skipped", || async {
        api.state(&ch0, over).await.as_deref() == Some("skipped")
    })
    .await;

    // POST /config/reload: ibc-0's filter denies channel 0; channel 1 relays on.
    std::fs::write(&config, &filtered).unwrap();
    let (status, answer) = api.reload().await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "reloaded");
    let denied = send(&a, &ch0, &u1, &u2.address, "").await;
    send(&a, &ch1, &u1, &u2.address, "").await;
    eventually("channel 1 relays on", || async {
        b.chain.balance(&u2.address, &voucher1).await == 2
    })
    .await;

    // A broken file is refused by both routes, naming file, line and key; so is one changing what needs a
    // restart.
    std::fs::write(&config, &broken).unwrap();
    let (status, answer) = api.reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let line = broken
        .lines()
        .position(|l| l == "ics20_max_memo_size = 0")
        .unwrap()
        + 1;
    let expected = format!(
        "{}:{line}: global.ics20_max_memo_size: must be at least 1 byte",
        config.display()
    );
    assert_eq!(answer["errors"][0]["text"], expected.as_str(), "{answer}");
    assert_eq!(answer["errors"][0]["key"], "global.ics20_max_memo_size");
    hangup(&relayd.0);
    eventually("the SIGHUP refusal logged", || async {
        log_has(&log, &format!("configuration not reloaded: {expected}"))
    })
    .await;
    std::fs::write(&config, &restart_needed).unwrap();
    let (status, answer) = api.reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["errors"][0]["key"], "global", "{answer}");
    assert_eq!(count(&log, "configuration reloaded"), 2);

    // Nothing changed: the cap is still 64 and channel 0 still denied, while channel 1 relays.
    let still_over = send(&a, &ch1, &u1, &u2.address, &memo_100).await;
    send(&a, &ch1, &u1, &u2.address, "").await;
    eventually("channel 1 relays after the refusals", || async {
        b.chain.balance(&u2.address, &voucher1).await == 3
    })
    .await;
    eventually("the over-cap memo on channel 1 skipped", || async {
        api.state(&ch1, still_over).await.as_deref() == Some("skipped")
    })
    .await;
    assert_eq!(api.state(&ch0, denied).await, None);
    let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();
    let mut left = vec![over, denied];
    left.sort_unstable();
    assert_eq!(
        rpc_b
            .unreceived_packets(TRANSFER_PORT, &b_ch0, &left)
            .await
            .unwrap(),
        left
    );
    assert_eq!(b.chain.balance(&u2.address, &voucher0).await, 2);

    // Channel 1's path removed and channel 0 allowed again: channel 0 relays, channel 1 takes no new packets.
    std::fs::write(&config, capped.replace(&two_paths, &one_path)).unwrap();
    let (status, answer) = api.reload().await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut removed: Vec<String> = answer["changes"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        [
            format!("ibc-0:transfer/{ch1}"),
            format!("ibc-1:transfer/{b_ch1}")
        ],
        "{answer}"
    );
    let orphan = send(&a, &ch1, &u1, &u2.address, "").await;
    let allowed = send(&a, &ch0, &u1, &u2.address, "").await;
    eventually("channel 0 relays again", || async {
        api.state(&ch0, allowed).await.as_deref() == Some("acknowledged")
    })
    .await;
    assert_eq!(api.state(&ch1, orphan).await, None);
    assert_eq!(b.chain.balance(&u2.address, &voucher1).await, 3);

    // The cap in the file at start is the one in force after a restart.
    relayd.stop();
    let log = dir.path().join("relayd-2.log");
    let relayd = Service::start(&config, &log).await;
    let over_again = send(&a, &ch0, &u1, &u2.address, &memo_100).await;
    eventually("the over-cap memo skipped after the restart", || async {
        api.state(&ch0, over_again).await.as_deref() == Some("skipped")
    })
    .await;
    drop(relayd);
    for chain in chains {
        chain.shutdown().await;
    }
}
