//! What the tests of the `relayd` binary share: running it, giving it the devnet relayer keys, reading its log
//! and waiting for a condition.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_relayd");

/// Runs `relayd -c config args...` to completion.
pub fn relayd(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("relayd runs")
}

/// Spawns `relayd -c config start` with text logs at INFO written to `log`.
pub fn start(config: &Path, log: &Path) -> std::process::Child {
    start_logging(config, log, "info")
}

/// [`start`] with the log filter `filter` (`RUST_LOG` syntax), for tests that read a module's debug lines.
pub fn start_logging(config: &Path, log: &Path, filter: &str) -> std::process::Child {
    Command::new(BIN)
        .env("RUST_LOG", filter)
        .args(["--log-format", "text", "-c"])
        .arg(config)
        .arg("start")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("relayd starts")
}

/// `relayd keys add` for each (chain, key file), as an operator would.
pub fn add_keys(config: &Path, keys: &[(String, PathBuf)]) {
    for (chain, file) in keys {
        let file = file.to_str().expect("utf-8 path");
        let out = relayd(
            config,
            &["keys", "add", "--chain", chain, "--key-file", file],
        );
        assert!(
            out.status.success(),
            "keys add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether a line of the log file at `log` contains `needle`.
pub fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::File::open(log)
        .map(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains(needle))
        })
        .unwrap_or(false)
}

/// Waits until `check` holds, failing after a generous bound (a hang guard, not a timing assertion).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1800 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen");
}

/// Stops `relayd start` as a service manager does, with SIGTERM, and checks that it exited 0.
pub fn stop(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert_eq!(child.wait().expect("relayd exits").code(), Some(0));
}

/// Exactly once: the state database in `state` holds `count` packet records, each acknowledged, and no dead
/// letter.
pub fn assert_each_acknowledged_once(state: &Path, count: usize) {
    let store = relayd_actors::store::StateStore::open(state).expect("state database");
    let records: Vec<_> = store.packets().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), count);
    let unfinished: Vec<_> = records
        .iter()
        .filter(|r| r.state != relayd_messages::PacketState::Acknowledged)
        .collect();
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert!(store.dead_letters().expect("dead letters").is_empty());
}
