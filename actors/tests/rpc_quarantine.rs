//! An RPC endpoint that serves headers relayd's light client refuses is quarantined and the next read goes to
//! another: a devnet chain behind two endpoints, the first an HTTP proxy that forwards every request to the node
//! but zeroes the commit signatures in its `commit` answers.

use std::time::Duration;

use base64::Engine;
use relayd_actors::chain::cosmos::backend::CosmosLight;
use relayd_actors::chain::cosmos::light_client::{light_init, TrustOptions};
use relayd_actors::chain::cosmos::rpc::{CosmosRpc, MAX_RESPONSE_BYTES};
use relayd_actors::light_client::LightSource;
use relayd_actors::rpc_pool::{Health, PoolSettings, RpcPool};
use relayd_actors::store::StateStore;
use tendermint_light_client_verifier::types::TrustThreshold;
use tendermint_rpc::client::CompatMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads one HTTP request (headers and a `content-length` body) from `socket`; `None` when it closed.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = socket.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A JSON-RPC proxy to `node` whose `commit` answers carry zeroed signatures; returns its URL.
async fn lying_proxy(node: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (http, node) = (http.clone(), node.clone());
            tokio::spawn(async move {
                while let Some(body) = read_request(&mut socket).await {
                    let request: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    let answer = http
                        .post(&node)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    let mut answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
                    if request["method"] == "commit" {
                        let zero = base64::engine::general_purpose::STANDARD.encode([0u8; 64]);
                        if let Some(sigs) =
                            answer["result"]["signed_header"]["commit"]["signatures"].as_array_mut()
                        {
                            for sig in sigs {
                                if sig["signature"].is_string() {
                                    sig["signature"] = serde_json::Value::String(zero.clone());
                                }
                            }
                        }
                    }
                    let text = answer.to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if socket.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_serving_refused_headers_is_quarantined_and_reads_move_on() {
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), chain.wait_for_height(4))
        .await
        .unwrap();
    let honest = chain.rpc_url();
    let liar = lying_proxy(honest.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    let single = CosmosRpc::new("ibc-0", &honest, CompatMode::V0_38).unwrap();
    let hash = single
        .fetch_light_block(3)
        .await
        .unwrap()
        .signed_header
        .header
        .hash();
    light_init(&single, &store, "ibc-0", 3, &hash)
        .await
        .unwrap();

    let urls = [liar.clone(), honest.clone()];
    let pool = RpcPool::new("ibc-0", &urls, PoolSettings::default());
    let rpc = CosmosRpc::pooled(
        "ibc-0",
        &urls,
        pool.clone(),
        CompatMode::V0_38,
        Duration::from_secs(10),
        MAX_RESPONSE_BYTES,
    )
    .unwrap();
    let trust = TrustOptions {
        trust_threshold: TrustThreshold::TWO_THIRDS,
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        clock_drift: Duration::from_secs(5),
    };
    let mut light = CosmosLight::new(rpc, store, trust).unwrap();

    // The liar answers first (it is the current endpoint) and its headers do not verify.
    assert_eq!(pool.current(), 0);
    let err = light.refresh().await.unwrap_err();
    assert_eq!(err.kind, relayd_messages::ErrorKind::Unverified, "{err:?}");
    assert_eq!(pool.health(0), Health::Quarantined);
    let view = pool.view();
    assert!(view[0].quarantine_reason.is_some() && !view[0].current);
    assert!(view[1].current);

    // The retry reads the honest endpoint and verifies.
    let height = light.refresh().await.unwrap();
    assert!(height > 3);
    assert_eq!(pool.health(0), Health::Quarantined);
    chain.shutdown().await;
}
