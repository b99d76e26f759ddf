//! The `devnet` binary: starts on the given addresses, writes its home folder, answers RPC, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_chain_and_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_devnet"))
        .args([
            "--chain-id",
            "bin-7",
            "--rpc-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--block-time",
            "200ms",
            "--seed",
            "binary",
            "--accounts",
            "3",
            "--home",
        ])
        .arg(home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("devnet bin-7 running: rpc http://127.0.0.1:"),
        "{first}"
    );

    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("chain.json")).unwrap()).unwrap();
    assert_eq!(info["chain_id"], "bin-7");
    for name in ["relayer", "user1", "user2", "user3"] {
        assert!(
            home.path().join(format!("keys/{name}.json")).exists(),
            "{name}"
        );
    }

    let rpc = info["rpc_addr"].as_str().unwrap();
    let client = HttpClient::builder(rpc.parse().unwrap())
        .compat_mode(CompatMode::V0_38)
        .build()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let status = client.status().await.unwrap();
            if status.sync_info.latest_block_height.value() >= 2 {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(status.node_info.network.as_str(), "bin-7");
    assert_eq!(status.node_info.version.to_string(), "0.38.12");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert_eq!(lines.next().unwrap().unwrap(), "devnet bin-7 stopped");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_too_short_block_time_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_devnet"))
        .args([
            "--rpc-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--block-time",
            "50ms",
            "--home",
        ])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("below the 100ms minimum"));
}
