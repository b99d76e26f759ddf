//! `relayd demo` as a user runs it: the binary starts its own two chains, opens a channel and relays traffic both
//! ways; while it runs its admin API answers over HTTP with live data, and when `--duration` is over it drains the
//! backlog and prints a final summary in which every packet sent was acknowledged, as the state database confirms.
//! `relayd demo --near` does the same between a Cosmos chain and a NEAR devnet, and says loudly that it trusts the
//! NEAR devnet's first head.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relayd_actors::store::StateStore;

const BIN: &str = env!("CARGO_BIN_EXE_relayd");

/// Polls `check` until it holds; a hang guard, never an assertion on time.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(url: &str) -> Option<serde_json::Value> {
    let resp = reqwest::get(url).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

/// ibc-0's height as `GET /chains` reports it, once both chains have one.
async fn first_chain_height(base: &str) -> Option<u64> {
    let chains = get(&format!("{base}/chains")).await?;
    let heights: Vec<Option<u64>> = chains["chains"]
        .as_array()?
        .iter()
        .map(|c| c["height"].as_u64())
        .collect();
    if heights.len() != 2 {
        return None;
    }
    heights
        .into_iter()
        .collect::<Option<Vec<u64>>>()?
        .first()
        .copied()
}

/// The number after `word ` in `line` (`sent 12,` gives 12 for `sent`).
fn figure(line: &str, word: &str) -> u64 {
    let at = line
        .find(&format!(" {word} "))
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    line[at + word.len() + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no figure after {word:?} in {line:?}"))
}

/// A running `relayd demo` whose stdout and stderr are collected line by line.
struct RunningDemo {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
    errors: std::thread::JoinHandle<Vec<String>>,
}

/// Starts `relayd demo args… --data-dir data`.
fn spawn_demo(args: &[&str], data: &std::path::Path) -> RunningDemo {
    let mut child = Command::new(BIN)
        .arg("demo")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relayd demo starts");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = child.stdout.take().unwrap();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let err = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    RunningDemo {
        child,
        lines,
        reader,
        errors,
    }
}

impl RunningDemo {
    /// Waits for the demo to exit on its own; its exit code, stdout lines and stderr lines.
    async fn finish(mut self) -> (Option<i32>, Vec<String>, Vec<String>) {
        let mut status = None;
        let child = &mut self.child;
        eventually("the demo exits", || {
            let exited = child.try_wait().unwrap();
            if exited.is_some() {
                status = exited;
            }
            async move { exited.is_some() }
        })
        .await;
        self.reader.join().unwrap();
        let stderr = self.errors.join().unwrap();
        let lines = self.lines.lock().unwrap().clone();
        (status.and_then(|s| s.code()), lines, stderr)
    }
}

/// Checks the final summary's line of each direction: packets were sent, and every one was received and
/// acknowledged, with nothing left over; returns how many were sent in all.
fn check_final_summary(lines: &[String], directions: &[&str]) -> u64 {
    let text = lines.join("\n");
    let at = lines
        .iter()
        .position(|l| l.contains("final summary"))
        .unwrap_or_else(|| panic!("no final summary in\n{text}"));
    let summary = &lines[at..];
    let mut total = 0;
    for direction in directions {
        let line = summary
            .iter()
            .find(|l| l.contains(direction))
            .unwrap_or_else(|| panic!("no {direction} line in\n{text}"));
        let sent = figure(line, "sent");
        assert!(sent > 0, "{line}");
        assert_eq!(figure(line, "acknowledged"), sent, "{line}");
        assert_eq!(figure(line, "received"), sent, "{line}");
        assert_eq!(figure(line, "backlog"), 0, "{line}");
        total += sent;
    }
    assert!(text.contains("every packet sent was relayed and acknowledged"));
    assert!(text.contains("chains stopped"));
    total
}

/// What the demo printed is what relayd recorded in the data directory it left for inspection: `total` packets,
/// every one acknowledged.
fn check_state(data: &std::path::Path, total: u64) {
    assert!(data.join("relayd.toml").exists() && data.join("relayd.log").exists());
    let store = StateStore::open(&data.join("state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len() as u64, total);
    assert!(records
        .iter()
        .all(|r| r.state == relayd_messages::PacketState::Acknowledged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_relays_both_ways_serves_the_admin_api_and_drains_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = free_port();
    let demo = spawn_demo(
        &[
            "--duration",
            "15s",
            "--rate",
            "3",
            "--block-time",
            "200ms",
            "--admin",
            &format!("127.0.0.1:{port}"),
        ],
        &data,
    );

    // While it runs, the admin API answers through real HTTP with live figures.
    let base = format!("http://127.0.0.1:{port}");
    let mut first_height = None;
    let mut advanced = false;
    for _ in 0..1500 {
        if let Some(h) = first_chain_height(&base).await {
            match first_height {
                None => first_height = Some(h),
                Some(first) if h > first => {
                    advanced = true;
                    break;
                }
                Some(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        advanced,
        "the admin API never reported ibc-0 advancing (first {first_height:?})"
    );
    let actors = get(&format!("{base}/actors")).await.expect("GET /actors");
    assert!(
        actors.to_string().contains("ibc-0") && actors.to_string().contains("ibc-1"),
        "{actors}"
    );
    eventually("the admin API lists relayed packets", || async {
        get(&format!("{base}/packets?state=acknowledged"))
            .await
            .and_then(|p| p["matched"].as_u64())
            .is_some_and(|n| n > 0)
    })
    .await;

    let (code, lines, stderr) = demo.finish().await;
    assert_eq!(
        code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        lines.join("\n"),
        stderr.join("\n")
    );

    // The final summary: both directions sent packets and every one was acknowledged after the drain.
    let total = check_final_summary(&lines, &["ibc-0 -> ibc-1", "ibc-1 -> ibc-0"]);
    check_state(&data, total);
}

/// How many packets from `chain` the admin API lists as acknowledged (`None` while it does not answer).
async fn acknowledged_from(base: &str, chain: &str) -> Option<u64> {
    get(&format!("{base}/packets?chain={chain}&state=acknowledged"))
        .await
        .and_then(|p| p["matched"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_demo_relays_between_cosmos_and_near_both_ways_and_says_it_trusts_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = free_port();
    let demo = spawn_demo(
        &[
            "--near",
            "--duration",
            "20s",
            "--rate",
            "2",
            "--block-time",
            "200ms",
            "--admin",
            &format!("127.0.0.1:{port}"),
        ],
        &data,
    );

    // While it runs, the admin API reports both chains with a height and packets acknowledged from each: traffic
    // Cosmos -> NEAR and NEAR -> Cosmos, each received on the other end and its acknowledgement relayed back.
    let base = format!("http://127.0.0.1:{port}");
    eventually("the admin API reports both chains' heights", || async {
        first_chain_height(&base).await.is_some()
    })
    .await;
    let chains = get(&format!("{base}/chains")).await.expect("GET /chains");
    assert!(
        chains.to_string().contains("ibc-0") && chains.to_string().contains("near-devnet"),
        "{chains}"
    );
    for chain in ["ibc-0", "near-devnet"] {
        eventually(
            &format!("the admin API lists packets from {chain} acknowledged"),
            || async { acknowledged_from(&base, chain).await.is_some_and(|n| n > 0) },
        )
        .await;
    }

    let (code, lines, stderr) = demo.finish().await;
    let text = lines.join("\n");
    assert_eq!(
        code,
        Some(0),
        "stdout:\n{text}\nstderr:\n{}",
        stderr.join("\n")
    );
    // Said loudly, before anything is trusted: on the terminal, in the log and in the configuration it wrote.
    let warning = lines
        .iter()
        .position(|l| l.contains("WARNING") && l.contains("TRUST ON FIRST USE"))
        .unwrap_or_else(|| panic!("no trust-on-first-use warning in\n{text}"));
    let opened = lines
        .iter()
        .position(|l| l.contains("open: ibc-0/transfer/"))
        .unwrap_or_else(|| panic!("no open channel in\n{text}"));
    assert!(warning < opened, "{text}");
    let log = std::fs::read_to_string(data.join("relayd.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("TRUST ON FIRST USE")),
        "{log}"
    );
    let config = std::fs::read_to_string(data.join("relayd.toml")).unwrap();
    assert!(config.contains("trust_on_first_use = true"), "{config}");

    let total = check_final_summary(&lines, &["ibc-0 -> near-devnet", "near-devnet -> ibc-0"]);
    check_state(&data, total);
}

#[test]
fn bad_arguments_and_a_used_data_dir_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("demo")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    for (args, says) in [
        (&["--rate", "0"][..], "--rate 0 must be a positive number"),
        (&["--rate", "NaN"][..], "must be a positive number"),
        (
            &["--block-time", "50ms"][..],
            "--block-time must be 100ms or more",
        ),
        (&["--admin", "nowhere"][..], "neither `off` nor an address"),
        (&["--duration", "0s"][..], "must be greater than zero"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    std::fs::write(dir.path().join("relayd.toml"), "# an earlier setup\n").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds relayd state"));
    // Nothing was started or written: no chains' homes, no log.
    assert!(!dir.path().join("chains").exists());
    assert!(!dir.path().join("relayd.log").exists());
}
