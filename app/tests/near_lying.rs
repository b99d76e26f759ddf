//! relayd between a Cosmos devnet chain and a NEAR devnet whose RPC node lies. `relayd start` reads NEAR through
//! a JSON-RPC proxy that forwards every request to the devnet's node and, while told to, alters what it answers:
//! - a tampered light-client block: `next_light_client_block` answers with a block whose `prev_state_root` was
//!   swapped (it commits to another state; the producers' approvals no longer sign it);
//! - a state proof for another value: `view_state` with a proof answers the value asked for with the proof of
//!   another key of the contract (the transfer channel's end), which does not prove that value.
//! - another value: `view_state` with a proof answers another key's value (the channel end's bytes) with the
//!   genuine proof of the key asked for.
//!
//! The devnet itself stays honest (it is the judge: ibc-0's 12-near client would refuse a forged proof too), and
//! the operator's commands (`tx transfer`, `query …`) read the devnet directly. While the node lies, relayd
//! forwards nothing (no voucher arrives on ibc-0, the packets stay unreceived), says so at ERROR in its log and
//! in the admin API (`/chains/{id}` `verification`, `/health` reason); once the node is honest again every
//! packet is received and acknowledged with exact balances, and the alarm clears.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_pair.rs"]
#[allow(dead_code)]
mod near_pair;

#[path = "common/near_route.rs"]
#[allow(dead_code)]
mod near_route;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use near_pair::NearPair;
use near_route::{balance, configure, open_route, ShowLog};
use relayd_actors::chain::endpoint::path;
use serde_json::{json, Value};
use support::packet::voucher_denom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{eventually, log_has};

const BLOCK_TIME: Duration = Duration::from_millis(200);
/// What each NEAR → Cosmos transfer carries, in `usdc.devnet`.
const USDC_EACH: u128 = 7;
/// Transfers sent while the node tells each lie.
const COUNT: u64 = 3;
/// Rounds, one per lie.
const ROUNDS: u64 = 3;
/// Refusals relayd must make after raising the alarm, with nothing arriving meanwhile: the window in which it is
/// seen to hold the line, counted in its own refusals rather than in time.
const MORE_REFUSALS: u64 = 3;

/// What the proxy lies about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    /// Nothing: every answer is the node's.
    Nothing,
    /// `next_light_client_block` answers a block committing to another state.
    LightClientBlock,
    /// `view_state` with a proof answers the value with another key's proof.
    StateProof,
    /// `view_state` with a proof answers another key's value with the genuine proof.
    AnotherValue,
}

/// The proxy's shared state: where to forward, what to lie about, and how many lies it told.
struct Liar {
    upstream: String,
    http: reqwest::Client,
    lie: Mutex<Lie>,
    /// The key whose proof is served for every value asked for, while lying about state proofs.
    decoy_key: Vec<u8>,
    told: AtomicU64,
}

/// A JSON-RPC proxy in front of a NEAR node, lying on demand.
struct LyingNode {
    url: String,
    liar: Arc<Liar>,
}

impl LyingNode {
    /// Listens on a free local port and forwards to `upstream`, honest until told otherwise.
    async fn start(upstream: String, decoy_key: Vec<u8>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let liar = Arc::new(Liar {
            upstream,
            http: reqwest::Client::new(),
            lie: Mutex::new(Lie::Nothing),
            decoy_key,
            told: AtomicU64::new(0),
        });
        let shared = liar.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let liar = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, &liar).await;
                });
            }
        });
        Self { url, liar }
    }

    fn lie(&self, lie: Lie) {
        *self.liar.lie.lock().unwrap() = lie;
    }

    /// Answers altered so far.
    fn told(&self) -> u64 {
        self.liar.told.load(Ordering::SeqCst)
    }
}

/// One HTTP/1.1 request on `socket` (relayd's NEAR client posts JSON-RPC), answered and the connection closed.
async fn serve(mut socket: tokio::net::TcpStream, liar: &Liar) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let body_at = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..body_at]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < body_at + length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let (status, body) = match serde_json::from_slice::<Value>(&buf[body_at..body_at + length]) {
        Ok(request) => match liar.answer(&request).await {
            Some(reply) => ("200 OK", reply.to_string()),
            None => ("502 Bad Gateway", String::new()),
        },
        Err(_) => ("400 Bad Request", String::new()),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(answer.as_bytes()).await?;
    socket.shutdown().await
}

impl Liar {
    async fn call(&self, request: &Value) -> Option<Value> {
        let reply = self
            .http
            .post(&self.upstream)
            .json(request)
            .send()
            .await
            .ok()?;
        reply.json().await.ok()
    }

    /// The node's answer to `request`, altered as the current lie says.
    async fn answer(&self, request: &Value) -> Option<Value> {
        let mut reply = self.call(request).await?;
        let lie = *self.lie.lock().unwrap();
        let params = &request["params"];
        match (lie, request["method"].as_str()) {
            (Lie::LightClientBlock, Some("next_light_client_block")) => {
                let block = &mut reply["result"];
                if block.get("inner_lite").is_none() {
                    return Some(reply);
                }
                // The block now commits to another state root (a hash the node really serves, so it parses).
                block["inner_lite"]["prev_state_root"] = block["prev_block_hash"].clone();
                self.told.fetch_add(1, Ordering::SeqCst);
            }
            (Lie::StateProof | Lie::AnotherValue, Some("query"))
                if params["request_type"] == "view_state"
                    && params["include_proof"] == true
                    && params["prefix_base64"] != base64(&self.decoy_key).as_str()
                    && reply["result"]["values"]
                        .as_array()
                        .is_some_and(|v| !v.is_empty()) =>
            {
                let mut decoy = request.clone();
                decoy["params"]["prefix_base64"] = json!(base64(&self.decoy_key));
                let other = self.call(&decoy).await?;
                if lie == Lie::StateProof {
                    // The value asked for, with the proof of another key at the same block.
                    reply["result"]["proof"] = other["result"]["proof"].clone();
                } else {
                    // Another key's value, with the proof of the key asked for.
                    let value = other["result"]["values"][0]["value"].clone();
                    for item in reply["result"]["values"].as_array_mut()? {
                        item["value"] = value.clone();
                    }
                }
                self.told.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Some(reply)
    }
}

/// Standard base64 with padding, as NEAR's RPC spells `prefix_base64`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The admin API's answer at `path`, or `null` while it does not answer.
async fn admin_get(http: &reqwest::Client, base: &str, path: &str) -> Value {
    match http.get(format!("{base}{path}")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Transactions relayd broadcast to `chain`, from the admin API's `/metrics`.
async fn txs_submitted(http: &reqwest::Client, base: &str, chain: &str) -> u64 {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let name = format!("relayd_txs_submitted_total{{chain=\"{chain}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `/health`'s entry of `chain`.
async fn health_of(http: &reqwest::Client, base: &str, chain: &str) -> Value {
    let health = admin_get(http, base, "/health").await;
    health["chains"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["chain"] == chain).cloned())
        .unwrap_or(Value::Null)
}

/// Sends `COUNT` transfers of `USDC_EACH` from NEAR's signer to ibc-0's relayer account, through the honest node.
async fn send_from_near(pair: &NearPair, channel: &str) -> Vec<u64> {
    let sent = pair
        .json(&[
            "tx",
            "transfer",
            "--src-chain",
            &pair.near_id,
            "--dst-chain",
            "ibc-0",
            "--channel",
            channel,
            "--amount",
            &format!("{USDC_EACH}usdc.devnet"),
            "--count",
            &COUNT.to_string(),
        ])
        .await;
    sent["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect()
}

/// NEAR's sends that ibc-0 has not received, and NEAR's packets whose acknowledgement is not relayed.
async fn pending_on_near(pair: &NearPair, channel: &str) -> (Value, Value) {
    let doc = pair
        .json(&[
            "query",
            "packet",
            "pending",
            &pair.near_id,
            "transfer",
            channel,
        ])
        .await;
    (
        doc["unreceived_packets"].clone(),
        doc["unrelayed_acks"].clone(),
    )
}

/// The running pair, relayd reading NEAR through `node`, and what each round checks.
struct Scene<'a> {
    pair: &'a NearPair,
    node: &'a LyingNode,
    http: reqwest::Client,
    /// The admin API.
    base: String,
    /// `/chains/{near}`.
    chain_path: String,
    near_chan: String,
    /// What NEAR's transfers mint on ibc-0.
    cosmos_voucher: String,
    log: std::path::PathBuf,
}

impl Scene<'_> {
    /// `/chains/{near}`'s `verification`.
    async fn verification(&self) -> Value {
        admin_get(&self.http, &self.base, &self.chain_path).await["verification"].clone()
    }

    /// Round `round`: the node tells `lie` while `COUNT` transfers are sent from NEAR. relayd refuses what it
    /// serves with the alarm of `check` raised (in `/chains`, `/health` and at ERROR in the log, which also has
    /// a line containing `logged`), broadcasts nothing to ibc-0 and nothing arrives there, over a window of
    /// `MORE_REFUSALS` further refusals. Then the node is honest: the round's transfers are received and
    /// acknowledged, and the alarm clears.
    async fn lie_then_recover(&self, round: u64, lie: Lie, check: &str, logged: &str) {
        let (pair, near_id) = (self.pair, self.pair.near_id.as_str());
        let other = if check == "proofs" {
            "light_client"
        } else {
            "proofs"
        };
        let told = self.node.told();
        self.node.lie(lie);
        let to_cosmos = txs_submitted(&self.http, &self.base, "ibc-0").await;
        let sent = send_from_near(pair, &self.near_chan).await;
        assert_eq!(
            sent,
            ((round - 1) * COUNT + 1..=round * COUNT).collect::<Vec<_>>()
        );
        let refused_at_alarm = AtomicU64::new(0);
        eventually(
            &format!("round {round}: the {check} alarm is raised"),
            || async {
                let v = self.verification().await;
                refused_at_alarm.store(v[check]["refused"].as_u64().unwrap_or(0), Ordering::SeqCst);
                v["alarm"] == true && v[check]["alarm"] == true
            },
        )
        .await;
        eventually(&format!("round {round}: relayd keeps refusing"), || async {
            self.verification().await[check]["refused"]
                .as_u64()
                .unwrap_or(0)
                >= refused_at_alarm.load(Ordering::SeqCst) + MORE_REFUSALS
        })
        .await;
        let v = self.verification().await;
        eprintln!(
            "round {round} ({lie:?}), {} verification: {v}",
            self.chain_path
        );
        assert!(
            v[check]["last_error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{v}"
        );
        assert_eq!(v[other]["alarm"], false, "{v}");
        let h = health_of(&self.http, &self.base, near_id).await;
        eprintln!("round {round}, /health of {near_id}: {h}");
        assert_eq!(h["ready"], false, "{h}");
        assert_eq!(h["verifies"], false, "{h}");
        assert!(
            h["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("verification alarm")),
            "{h}"
        );
        assert!(log_has(&self.log, "verification alarm: the node served"));
        assert!(log_has(&self.log, logged), "no log line with {logged:?}");
        assert!(self.node.told() > told);
        // Nothing was forwarded: no transaction to ibc-0, no new voucher there, the round's sends unreceived.
        let received_before = u128::from((round - 1) * COUNT) * USDC_EACH;
        assert_eq!(
            txs_submitted(&self.http, &self.base, "ibc-0").await,
            to_cosmos
        );
        assert_eq!(
            balance(pair, "ibc-0", None, &self.cosmos_voucher).await,
            received_before
        );
        assert_eq!(pending_on_near(pair, &self.near_chan).await.0, json!(sent));

        // Honest again.
        self.node.lie(Lie::Nothing);
        let received = u128::from(round * COUNT) * USDC_EACH;
        eventually(
            &format!("round {round}: the sends arrive on ibc-0"),
            || async { balance(pair, "ibc-0", None, &self.cosmos_voucher).await == received },
        )
        .await;
        // What relayd broadcast to ibc-0 shows in the counter read above (counted once the submitter hears back).
        eventually(
            &format!("round {round}: the broadcast is counted"),
            || async { txs_submitted(&self.http, &self.base, "ibc-0").await > to_cosmos },
        )
        .await;
        eventually(
            &format!("round {round}: the sends are acknowledged"),
            || async { pending_on_near(pair, &self.near_chan).await == (json!([]), json!([])) },
        )
        .await;
        eventually(&format!("round {round}: the alarm clears"), || async {
            self.verification().await["alarm"] == false
                && health_of(&self.http, &self.base, near_id).await["ready"] == true
        })
        .await;
        assert!(log_has(&self.log, "verification alarm cleared"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_near_node_is_refused_with_an_alarm_and_relayed_again_once_honest() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    pair.vouch(5).await;
    let route = open_route(&pair).await;
    configure(&pair, &route);
    let near_id = pair.near_id.clone();
    let (cosmos_chan, near_chan) = (route.cosmos.2.clone(), route.near.2.clone());
    let cosmos_voucher = voucher_denom("transfer", &cosmos_chan, "usdc.devnet");
    let near_relayer = pair.near.genesis.relayer.account_id.to_string();
    let near_usdc_before = balance(&pair, &near_id, None, "usdc.devnet").await;

    // relayd reads NEAR through the proxy; the operator's configuration keeps the devnet's own address.
    let node = LyingNode::start(
        pair.near.rpc_url(),
        path::channel("transfer", &near_chan).into_bytes(),
    )
    .await;
    let admin = free_port();
    let text = std::fs::read_to_string(&pair.config).unwrap();
    let honest_rpc = format!("rpc_addr = \"{}\"", pair.near.rpc_url());
    assert!(text.contains(&honest_rpc));
    let lied_to = pair.dir.path().join("relayd-lied-to.toml");
    std::fs::write(
        &lied_to,
        format!(
            "{}\n[admin]\nlisten_addr = \"127.0.0.1:{admin}\"\n",
            text.replace(&honest_rpc, &format!("rpc_addr = \"{}\"", node.url))
        ),
    )
    .unwrap();
    let log = pair.dir.path().join("relayd.log");
    let mut relayd = common::start(&lied_to, &log);
    let _show = ShowLog(log.clone());
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{admin}");
    let chain_path = format!("/chains/{near_id}");
    eventually("relayd follows NEAR, with no alarm", || async {
        let c = admin_get(&http, &base, &chain_path).await;
        health_of(&http, &base, &near_id).await["ready"] == true
            && c["verification"]["alarm"] == false
    })
    .await;

    let scene = Scene {
        pair: &pair,
        node: &node,
        http,
        base,
        chain_path,
        near_chan: near_chan.clone(),
        cosmos_voucher,
        log: log.clone(),
    };
    // 1. A tampered light-client block.
    scene
        .lie_then_recover(
            1,
            Lie::LightClientBlock,
            "light_client",
            "check=LightClient",
        )
        .await;
    // 2. A state proof for another value (another key's proof), the light client honest.
    scene
        .lie_then_recover(
            2,
            Lie::StateProof,
            "proofs",
            "refusing to forward a proof that does not verify against relayd's own light client",
        )
        .await;
    // 3. Another value with the genuine proof: relayd compares it with the packet the send event committed to.
    scene
        .lie_then_recover(
            3,
            Lie::AnotherValue,
            "proofs",
            "the stored commitment does not match the packet seen in events",
        )
        .await;

    // Every packet received and acknowledged, balances exact.
    let total = u128::from(ROUNDS * COUNT) * USDC_EACH;
    let near_escrow = format!("{near_chan}.transfer.escrow.{}", pair.contract);
    assert_eq!(
        balance(&pair, &near_id, Some(&near_escrow), "usdc.devnet").await,
        total
    );
    assert_eq!(
        balance(&pair, &near_id, Some(&near_relayer), "usdc.devnet").await,
        near_usdc_before - total
    );

    relayd.kill().unwrap();
    relayd.wait().unwrap();
    pair.near.shutdown().await;
}
