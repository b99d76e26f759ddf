//! One chain whose node does not answer never stops the others: `relayd start` with three devnet chains, the
//! third behind a port that refuses connections, accepts them and never answers, or answers garbage. The first two relay at once, `/health` says the third is not
//! followed and its path waits; once its node answers (a TCP gate opens on that port) it joins, its path
//! relays and `/health` says ready.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::chain::Wallet;
use support::handshake::{connect_transfer, End};
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the third chain's port behaves until its node is let through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Down {
    /// Nothing listens: connections are refused.
    Refused,
    /// Connections are accepted and never answered.
    Hung,
    /// Every request is answered with something that is not JSON-RPC.
    Garbage,
}

/// The third chain's port: refused or hung as `down` says until `open` is set, then every new connection is
/// forwarded to `to` byte for byte.
async fn gate(listen: u16, to: std::net::SocketAddr, down: Down, open: Arc<AtomicBool>) {
    if down == Down::Refused {
        // Bound only once open: until then connections are refused.
        let open = open.clone();
        tokio::spawn(async move {
            while !open.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            serve(listen, to, down, open).await;
        });
    } else {
        tokio::spawn(serve(listen, to, down, open));
    }
}

async fn serve(listen: u16, to: std::net::SocketAddr, down: Down, open: Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", listen))
        .await
        .unwrap();
    while let Ok((mut inbound, _)) = listener.accept().await {
        let open = open.load(Ordering::SeqCst);
        tokio::spawn(async move {
            if !open && down == Down::Garbage {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = vec![0u8; 8192];
                let _ = inbound.read(&mut request).await;
                let body = "<html>502 bad gateway</html>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = inbound.write_all(answer.as_bytes()).await;
                return;
            }
            if !open {
                // Hung: read whatever comes and never answer.
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut inbound, &mut sink).await;
                return;
            }
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

fn chain_entry(id: &str, rpc: &str, clients: &[&str]) -> String {
    let ids: Vec<String> = clients.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "\n[[chains]]\nid = \"{id}\"\nrpc_addr = \"{rpc}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_msg_num = 100\nmax_block_time = \"2s\"\nclient_ids = [{}]\n",
        ids.join(", ")
    )
}

fn connection(src: &End, dst: &End) -> String {
    format!(
        "\n[[connections]]\nsrc = {{ chain_id = \"{}\", client_id = \"{}\" }}\ndest = {{ chain_id = \"{}\", client_id = \"{}\" }}\npaths = [{{ src_port = \"transfer\", src_channel = \"{}\", dest_port = \"transfer\" }}]\n",
        src.chain.id, src.client.client_id, dst.chain.id, dst.client.client_id, src.channel_id
    )
}

async fn health(http: &reqwest::Client, base: &str) -> Option<Value> {
    let resp = http.get(format!("{base}/health")).send().await.ok()?;
    resp.json().await.ok()
}

fn chain_ready(h: &Value, id: &str) -> Option<bool> {
    h["chains"].as_array()?.iter().find(|c| c["chain"] == id)?["ready"].as_bool()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_node_refuses_at_start_joins_later_and_the_others_relay_meanwhile() {
    one_chain_down_at_start(Down::Refused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_node_hangs_at_start_joins_later_and_the_others_relay_meanwhile() {
    one_chain_down_at_start(Down::Hung).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_node_answers_garbage_at_start_joins_later_and_the_others_relay_meanwhile() {
    one_chain_down_at_start(Down::Garbage).await;
}

async fn one_chain_down_at_start(down: Down) {
    let chains = devnet::start_chains(
        3,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains[0..2]).await;
    let (b2, c) = connect_transfer(&chains[1..3]).await;

    let dir = tempfile::tempdir().unwrap();
    let (late, admin) = (free_port(), free_port());
    let mut config = format!(
        "[global]\ntimeout = \"5s\"\ndata_dir = \"data\"\n\n[admin]\nlisten_addr = \"127.0.0.1:{admin}\"\n\n[supervision]\nrestart_intensity = 10\nrestart_period = \"5s\"\nbackoff_base = \"50ms\"\nbackoff_cap = \"1s\"\n"
    );
    config += &chain_entry("ibc-0", &chains[0].rpc_url(), &[&a.client.client_id]);
    config += &chain_entry(
        "ibc-1",
        &chains[1].rpc_url(),
        &[&b.client.client_id, &b2.client.client_id],
    );
    // Refused or hung here until the gate to ibc-2's node opens.
    config += &chain_entry(
        "ibc-2",
        &format!("http://127.0.0.1:{late}"),
        &[&c.client.client_id],
    );
    config += &connection(&a, &b);
    config += &connection(&b2, &c);
    let path = dir.path().join("relayd.toml");
    std::fs::write(&path, config).unwrap();
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
    add_keys(&path, &keys);

    let open = Arc::new(AtomicBool::new(false));
    gate(late, chains[2].rpc_addr, down, open.clone()).await;
    let log = dir.path().join("relayd.log");
    let mut relayd = common::start(&path, &log);
    // A start that fails would never log "relayd started"; its exit is reported instead of a hang.
    for _ in 0..600 {
        if log_has(&log, "relayd started") {
            break;
        }
        if let Some(status) = relayd.try_wait().unwrap() {
            panic!(
                "relayd exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log_has(&log, "relayd started"));
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{admin}");
    let waiting_path = format!("ibc-1:transfer/{}", b2.channel_id);
    eventually("the two reachable chains ready, the third not", || async {
        let Some(h) = health(&http, &base).await else {
            return false;
        };
        h["ready"] == false
            && chain_ready(&h, "ibc-0") == Some(true)
            && chain_ready(&h, "ibc-1") == Some(true)
            && chain_ready(&h, "ibc-2") == Some(false)
            && h["pending_paths"] == serde_json::json!([waiting_path])
    })
    .await;

    // The path between the reachable chains relays while the third is down, and /health keeps saying so.
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let (n, amount) = (5usize, 7u128);
    let u0 = Wallet::genesis(&chains[0], "user1");
    let u1 = Wallet::genesis(&chains[1], "user1");
    let u2 = Wallet::genesis(&chains[2], "user1");
    transfers(&a, &u0, &u1.address, amount, n, n, timeout).await;
    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    eventually("ibc-0 to ibc-1 relayed while ibc-2 is down", || async {
        b.chain.balance(&u1.address, &voucher_b).await == n as u128 * amount
    })
    .await;
    let h = health(&http, &base).await.unwrap();
    assert_eq!(h["ready"], false, "{h}");
    assert_eq!(chain_ready(&h, "ibc-2"), Some(false), "{h}");
    let reason = h["chains"][2]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!reason.is_empty(), "{h}");

    // The node answers: the third chain joins, its path resolves and relays, and /health says ready.
    open.store(true, Ordering::SeqCst);
    eventually("ibc-2 joined and every path relays", || async {
        health(&http, &base)
            .await
            .is_some_and(|h| h["ready"] == true && h["pending_paths"] == serde_json::json!([]))
    })
    .await;
    // The joined path is a relayed channel for the admin API too: without a token file clearing it is refused
    // as disabled (403), not as an unknown channel (404).
    let clear = http
        .post(format!("{base}/clear"))
        .json(
            &serde_json::json!({ "chain": "ibc-1", "port": "transfer", "channel": b2.channel_id }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(clear.status().as_u16(), 403);
    transfers(&b2, &u1, &u2.address, amount, n, n, timeout).await;
    let voucher_c = voucher_denom(TRANSFER_PORT, &c.channel_id, "stake");
    eventually("ibc-1 to ibc-2 relayed once ibc-2 answers", || async {
        c.chain.balance(&u2.address, &voucher_c).await == n as u128 * amount
    })
    .await;
    assert!(log_has(&log, "path resolved; its node answers again"));

    common::stop(&mut relayd);
    for chain in chains {
        chain.shutdown().await;
    }
}
