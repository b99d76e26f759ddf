//! Configured paths mean what the file says, with the `relayd` binary against two devnet chains: every id a path
//! gives that the chains contradict (a connection end's `client_id` or `connection_id`, `src_channel`,
//! `dest_port`, `dest_channel`) refuses `relayd start` with exit code 2 and the file, line and key to fix; a
//! connection without `paths` relays every channel on it, found through the node's gRPC endpoint when the
//! chain has a `grpc_addr`, which the listings then depend on.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::chain::Wallet;
use support::handshake::{connect_transfer, End};
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has, relayd, BIN};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chain_entry(id: &str, rpc: &str, grpc: &str, clients: &[&str]) -> String {
    let ids: Vec<String> = clients.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "\n[[chains]]\nid = \"{id}\"\nrpc_addr = \"{rpc}\"\ngrpc_addr = \"{grpc}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_msg_num = 100\nmax_block_time = \"2s\"\nclient_ids = [{}]\n",
        ids.join(", ")
    )
}

/// The two chains' entries, the first with `grpc0` as its gRPC endpoint; each lists one client more than the
/// channel uses (`07-tendermint-9`), which no chain has.
fn chains_toml(chains: &[devnet::RunningChain], a: &End, b: &End, grpc0: &str) -> String {
    let mut out = String::from("[global]\ntimeout = \"5s\"\ndata_dir = \"data\"\n\n[admin]\nlisten_addr = \"127.0.0.1:0\"\n\n[supervision]\nbackoff_base = \"50ms\"\nbackoff_cap = \"1s\"\n");
    out += &chain_entry(
        &a.chain.id,
        &chains[0].rpc_url(),
        grpc0,
        &[&a.client.client_id, "07-tendermint-9"],
    );
    out += &chain_entry(
        &b.chain.id,
        &chains[1].rpc_url(),
        &chains[1].grpc_url(),
        &[&b.client.client_id, "07-tendermint-9"],
    );
    out
}

/// One connection from the first chain to the second: `src` and `dest` are the inside of each end's table.
fn connection(src: &str, dest: &str, paths: Option<&str>) -> String {
    let mut out = format!("\n[[connections]]\nsrc = {{ {src} }}\ndest = {{ {dest} }}\n");
    if let Some(paths) = paths {
        out += &format!("paths = [{{ {paths} }}]\n");
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The 1-based line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// Runs `relayd start` on `config`, which must refuse to start; returns its exit code and log.
async fn refused_start(config: &Path) -> (Option<i32>, String) {
    let log = config.with_extension("log");
    let mut child = Command::new(BIN)
        .args(["--log-format", "text", "-c"])
        .arg(config)
        .arg("start")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // A hang guard, not a timing assertion: a start that does not refuse would otherwise run forever.
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), std::fs::read_to_string(&log).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!(
        "relayd start did not refuse {}: {}",
        config.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_relay_what_the_file_says_or_refuse_the_start_at_the_key_the_chains_contradict() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let head = chains_toml(&chains, &a, &b, &chains[0].grpc_url());
    let src = format!(
        "chain_id = \"{}\", client_id = \"{}\"",
        a.chain.id, a.client.client_id
    );
    let dest = format!(
        "chain_id = \"{}\", client_id = \"{}\"",
        b.chain.id, b.client.client_id
    );
    let channel = format!(
        "src_port = \"transfer\", src_channel = \"{}\"",
        a.channel_id
    );

    // The keys, once for every file below (they share the data directory).
    let good = write(
        dir.path(),
        "relayd.toml",
        &(head.clone() + &connection(&src, &dest, None)),
    );
    let mut keys = Vec::new();
    for chain in &chains {
        let relayer = chain.genesis.account("relayer").unwrap();
        let file = dir
            .path()
            .join(format!("{}-relayer.json", chain.chain_id()));
        std::fs::write(
            &file,
            format!(
                "{{\"private_key\": \"{}\"}}",
                hex::encode(relayer.private_key)
            ),
        )
        .unwrap();
        keys.push((chain.chain_id().to_string(), file));
    }
    add_keys(&good, &keys);

    // Each id the chains contradict: (name, connection, the line's marker, the key named).
    let wrong_src = format!(
        "chain_id = \"{}\", client_id = \"07-tendermint-9\"",
        a.chain.id
    );
    let wrong_dest = format!(
        "chain_id = \"{}\", client_id = \"07-tendermint-9\"",
        b.chain.id
    );
    let cases = [
        (
            "dest-channel",
            connection(
                &src,
                &dest,
                Some(&format!("{channel}, dest_channel = \"channel-99\"")),
            ),
            "paths =",
            "connections[0].paths[0].dest_channel",
        ),
        (
            "dest-port",
            connection(
                &src,
                &dest,
                Some(&format!("{channel}, dest_port = \"oracle\"")),
            ),
            "paths =",
            "connections[0].paths[0].dest_port",
        ),
        (
            "src-channel",
            connection(
                &src,
                &dest,
                Some("src_port = \"transfer\", src_channel = \"channel-42\""),
            ),
            "paths =",
            "connections[0].paths[0].src_channel",
        ),
        (
            "src-client",
            connection(&wrong_src, &dest, Some(&channel)),
            "src =",
            "connections[0].src.client_id",
        ),
        (
            "dest-client",
            connection(&src, &wrong_dest, Some(&channel)),
            "dest =",
            "connections[0].dest.client_id",
        ),
        (
            "src-connection",
            connection(
                &format!("{src}, connection_id = \"connection-7\""),
                &dest,
                Some(&channel),
            ),
            "src =",
            "connections[0].src.connection_id",
        ),
        (
            "dest-connection",
            connection(
                &src,
                &format!("{dest}, connection_id = \"connection-7\""),
                None,
            ),
            "dest =",
            "connections[0].dest.connection_id",
        ),
        // Without paths, a dest client the chain does not have leaves no channel and is named.
        (
            "dest-client-every-channel",
            connection(&src, &wrong_dest, None),
            "dest =",
            "connections[0].dest.client_id",
        ),
        (
            "dest-channel-by-destination",
            connection(
                &src,
                &dest,
                Some("dest_port = \"transfer\", dest_channel = \"channel-99\""),
            ),
            "paths =",
            "connections[0].paths[0].dest_channel",
        ),
    ];
    for (name, conn, marker, key) in cases {
        let text = head.clone() + &conn;
        let file = write(dir.path(), &format!("{name}.toml"), &text);
        let (code, log) = refused_start(&file).await;
        let line = line_of(&text, marker);
        let expected = format!("{}:{line}: {key}: ", file.display());
        assert_eq!(code, Some(2), "{name}: {log}");
        assert!(
            log.contains(&expected),
            "{name}: expected {expected:?} in {log}"
        );
        // The file alone is valid: these are facts only the chains know.
        let out = relayd(&file, &["config", "validate"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The listings go to grpc_addr when it is set: a dead one fails them, the devnet's serves them.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dead_grpc = write(
        dir.path(),
        "dead-grpc.toml",
        &(chains_toml(&chains, &a, &b, &dead) + &connection(&src, &dest, None)),
    );
    let out = relayd(&dead_grpc, &["query", "channels", &a.chain.id, "--json"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("grpc"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = relayd(&good, &["query", "channels", &a.chain.id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&a.channel_id));

    // A connection without paths relays every channel on it, both ways.
    let log = dir.path().join("relayd.log");
    let mut service = Command::new(BIN)
        .env("RUST_LOG", "info")
        .args(["--log-format", "text", "-c"])
        .arg(&good)
        .arg("start")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    assert!(
        log_has(&log, &format!("dst_channel={}", b.channel_id)),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let (n, amount) = (4usize, 9u128);
    let u0 = Wallet::genesis(&chains[0], "user1");
    let u1 = Wallet::genesis(&chains[1], "user1");
    transfers(&a, &u0, &u1.address, amount, n, n, timeout).await;
    let voucher = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    eventually(
        "ibc-0 to ibc-1 relayed over the connection without paths",
        || async { b.chain.balance(&u1.address, &voucher).await == n as u128 * amount },
    )
    .await;
    transfers(&b, &u1, &u0.address, amount, n, n, timeout).await;
    let back = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    eventually("ibc-1 to ibc-0 relayed too", || async {
        a.chain.balance(&u0.address, &back).await == n as u128 * amount
    })
    .await;

    common::stop(&mut service);
    for chain in chains {
        chain.shutdown().await;
    }
}
