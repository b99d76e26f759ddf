//! End-to-end tests of devnet's CometBFT-compatible RPC server: a small hand-made chain behind [`NodeView`],
//! queried through tendermint-rs's real `HttpClient` / `WebSocketClient` (CompatMode::V0_38), through raw HTTP
//! and raw WebSocket frames, and compared with real CometBFT v0.38 responses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devnet::rpc::{self, BlockResults, NodeEvent, NodeView, RpcConfig, RpcServerHandle, TxRecord};
use ed25519_consensus::SigningKey;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tendermint::abci::{self, response, types::ExecTxResult, Code, EventAttributeIndexExt};
use tendermint::block::{self, parts, signed_header::SignedHeader, Commit, CommitSig, Header};
use tendermint::merkle::proof::{ProofOp, ProofOps};
use tendermint::{
    chain, consensus, node, validator, AppHash, Block, Hash, PublicKey, Signature, Time,
};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::event::EventData;
use tendermint_rpc::query::{EventType, Query};
use tendermint_rpc::{Client, HttpClient, Order, Paging, SubscriptionClient, WebSocketClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

// ---------------------------------------------------------------------------------------------------------------
// A fake chain: blocks, commits, results and transactions built in memory, never shipped with the product.
// ---------------------------------------------------------------------------------------------------------------

const CHAIN_ID: &str = "rpc-test-1";

struct State {
    blocks: Vec<(block::Id, Arc<Block>)>,
    results: Vec<Arc<BlockResults>>,
    txs: Vec<Arc<TxRecord>>,
    mempool: Vec<Vec<u8>>,
    store: BTreeMap<Vec<u8>, Vec<u8>>,
}

struct FakeChain {
    state: Mutex<State>,
    events: broadcast::Sender<NodeEvent>,
    key: SigningKey,
    validator: validator::Info,
    params: consensus::Params,
}

fn genesis_time() -> Time {
    Time::parse_from_rfc3339("2024-01-01T00:00:00Z").expect("valid time")
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn attr(key: &str, value: &str) -> abci::EventAttribute {
    (key, value).index().into()
}

impl FakeChain {
    /// Five blocks: txs `a=1`, `b=2` at height 2, a packet on channel-0 at height 4 and one on channel-1 at 5.
    fn new() -> Arc<Self> {
        let key = SigningKey::from([7u8; 32]);
        let validator = validator::Info::new(PublicKey::from(key.verification_key()), 10u32.into());
        let params = serde_json::from_value(json!({
            "block": {"max_bytes": "22020096", "max_gas": "-1"},
            "evidence": {"max_age_num_blocks": "100000", "max_age_duration": "172800000000000", "max_bytes": "1048576"},
            "validator": {"pub_key_types": ["ed25519"]},
            "version": {"app": "0"},
            "abci": {"vote_extensions_enable_height": "0"}
        }))
        .expect("consensus params");
        let chain = Arc::new(Self {
            state: Mutex::new(State {
                blocks: Vec::new(),
                results: Vec::new(),
                txs: Vec::new(),
                mempool: Vec::new(),
                store: BTreeMap::new(),
            }),
            events: broadcast::channel(64).0,
            key,
            validator,
            params,
        });
        for txs in [
            vec![],
            vec!["a=1", "b=2"],
            vec![],
            vec!["pkt1=channel-0"],
            vec!["pkt2=channel-1"],
        ] {
            chain.state.lock().expect("lock").mempool =
                txs.iter().map(|t| t.as_bytes().to_vec()).collect();
            chain.produce_block();
        }
        chain
    }

    fn valset(&self) -> validator::Set {
        validator::Set::new(vec![self.validator.clone()], Some(self.validator.clone()))
    }

    fn make_commit(&self, height: u64, id: block::Id) -> Commit {
        let time = block_time(height);
        let sig = self
            .key
            .sign(&[id.hash.as_bytes(), &height.to_be_bytes()].concat());
        Commit {
            height: block::Height::try_from(height).expect("height"),
            round: block::Round::default(),
            block_id: id,
            signatures: vec![CommitSig::BlockIdFlagCommit {
                validator_address: self.validator.address,
                timestamp: time,
                signature: Signature::new(sig.to_bytes()).expect("64 bytes"),
            }],
        }
    }

    /// Commits the mempool as the next block and publishes its events.
    fn produce_block(&self) -> u64 {
        let mut st = self.state.lock().expect("lock");
        let txs = std::mem::take(&mut st.mempool);
        let height = st.blocks.len() as u64 + 1;
        let prev = st.blocks.last().map(|(id, _)| *id);
        let prev_app_hash = st
            .results
            .last()
            .map(|r| r.app_hash.clone())
            .unwrap_or_default();
        let mut tx_results = Vec::new();
        let mut records = Vec::new();
        for (index, tx) in txs.iter().enumerate() {
            let text = String::from_utf8_lossy(tx).into_owned();
            let (k, v) = text.split_once('=').unwrap_or((&text, ""));
            st.store
                .insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
            let mut events = vec![abci::Event::new("app", [attr("key", k), attr("value", v)])];
            if k.starts_with("pkt") {
                events.push(abci::Event::new(
                    "send_packet",
                    [
                        attr("packet_src_channel", v),
                        attr("packet_sequence", &height.to_string()),
                    ],
                ));
            }
            let result = ExecTxResult {
                gas_wanted: 100,
                gas_used: 42,
                events,
                ..Default::default()
            };
            tx_results.push(result.clone());
            records.push(Arc::new(TxRecord {
                hash: Hash::Sha256(sha256(tx)),
                height,
                index: index as u32,
                tx: tx.clone(),
                result,
            }));
        }
        let valset = self.valset();
        let header = Header {
            version: block::header::Version { block: 11, app: 1 },
            chain_id: CHAIN_ID.parse().expect("chain id"),
            height: block::Height::try_from(height).expect("height"),
            time: block_time(height),
            last_block_id: prev,
            last_commit_hash: prev.map(|p| Hash::Sha256(sha256(p.hash.as_bytes()))),
            data_hash: Some(Hash::Sha256(sha256(&txs.concat()))),
            validators_hash: valset.hash(),
            next_validators_hash: valset.hash(),
            consensus_hash: Hash::Sha256(sha256(b"params")),
            app_hash: prev_app_hash,
            last_results_hash: Some(Hash::Sha256(sha256(b"results"))),
            evidence_hash: Some(Hash::Sha256(sha256(b""))),
            proposer_address: self.validator.address,
        };
        let hash = header.hash();
        let id = block::Id {
            hash,
            part_set_header: parts::Header::new(1, Hash::Sha256(sha256(hash.as_bytes())))
                .expect("parts"),
        };
        let last_commit = prev.map(|p| self.make_commit(height - 1, p));
        let block = Arc::new(Block::new(header, txs, Default::default(), last_commit));
        let parity = if height.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        };
        let results = Arc::new(BlockResults {
            height,
            tx_results,
            finalize_block_events: vec![abci::Event::new(
                "height_marker",
                [attr("parity", parity)],
            )],
            validator_updates: vec![],
            consensus_param_updates: None,
            app_hash: AppHash::try_from(height.to_be_bytes().to_vec()).expect("app hash"),
        });
        st.blocks.push((id, block.clone()));
        st.results.push(results.clone());
        st.txs.extend(records.iter().cloned());
        drop(st);
        // No receiver is fine: nobody listens before the server starts.
        for rec in records {
            let _ = self.events.send(NodeEvent::Tx(rec));
        }
        let _ = self.events.send(NodeEvent::NewBlock {
            block_id: id,
            block,
            results,
        });
        height
    }

    fn mempool_len(&self) -> usize {
        self.state.lock().expect("lock").mempool.len()
    }
}

fn block_time(height: u64) -> Time {
    (genesis_time() + Duration::from_secs(height)).expect("time in range")
}

impl NodeView for FakeChain {
    fn chain_id(&self) -> chain::Id {
        CHAIN_ID.parse().expect("chain id")
    }

    fn node_info(&self) -> node::Info {
        serde_json::from_value(json!({
            "protocol_version": {"p2p": "8", "block": "11", "app": "1"},
            "id": "cf4a66aa29e5123abfdfbdf485da6788bb8e46d1",
            "listen_addr": "tcp://0.0.0.0:26656",
            "network": CHAIN_ID,
            "version": "0.38.0",
            "channels": "40202122233038606100",
            "moniker": "fake",
            "other": {"tx_index": "on", "rpc_address": "tcp://0.0.0.0:26657"}
        }))
        .expect("node info")
    }

    fn validator_info(&self) -> validator::Info {
        self.validator.clone()
    }

    fn genesis_time(&self) -> Time {
        genesis_time()
    }

    fn earliest_height(&self) -> u64 {
        1
    }

    fn latest_height(&self) -> u64 {
        self.state.lock().expect("lock").blocks.len() as u64
    }

    fn block(&self, height: u64) -> Option<(block::Id, Arc<Block>)> {
        let i = usize::try_from(height.checked_sub(1)?).ok()?;
        self.state.lock().expect("lock").blocks.get(i).cloned()
    }

    fn height_of_block(&self, hash: &Hash) -> Option<u64> {
        let st = self.state.lock().expect("lock");
        st.blocks
            .iter()
            .position(|(id, _)| id.hash == *hash)
            .map(|i| i as u64 + 1)
    }

    fn commit(&self, height: u64) -> Option<SignedHeader> {
        let (id, block) = self.block(height)?;
        SignedHeader::new(block.header.clone(), self.make_commit(height, id)).ok()
    }

    fn block_results(&self, height: u64) -> Option<Arc<BlockResults>> {
        let i = usize::try_from(height.checked_sub(1)?).ok()?;
        self.state.lock().expect("lock").results.get(i).cloned()
    }

    fn validators(&self, height: u64) -> Option<validator::Set> {
        (height >= 1 && height <= self.latest_height() + 1).then(|| self.valset())
    }

    fn consensus_params(&self, height: u64) -> Option<consensus::Params> {
        (height >= 1 && height <= self.latest_height() + 1).then(|| self.params.clone())
    }

    fn abci_info(&self) -> response::Info {
        let st = self.state.lock().expect("lock");
        response::Info {
            data: "fake".into(),
            version: "1.0.0".into(),
            app_version: 1,
            last_block_height: block::Height::try_from(st.blocks.len() as u64).expect("height"),
            last_block_app_hash: st
                .results
                .last()
                .map(|r| r.app_hash.clone())
                .unwrap_or_default(),
        }
    }

    fn abci_query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> response::Query {
        let st = self.state.lock().expect("lock");
        let latest = st.blocks.len() as u64;
        let h = if height == 0 { latest } else { height };
        if path != "store/ibc/key" {
            return response::Query {
                code: Code::from(6),
                log: format!("unknown path {path}"),
                codespace: "fake".into(),
                height: block::Height::try_from(h).expect("height"),
                ..Default::default()
            };
        }
        let value = st.store.get(data).cloned().unwrap_or_default();
        response::Query {
            key: data.to_vec().into(),
            value: value.into(),
            proof: prove.then(|| ProofOps {
                ops: vec![ProofOp {
                    field_type: "ics23:iavl".into(),
                    key: data.to_vec(),
                    data: vec![1, 2, 3],
                }],
            }),
            height: block::Height::try_from(h).expect("height"),
            ..Default::default()
        }
    }

    fn submit_tx(&self, tx: Vec<u8>) -> response::CheckTx {
        if tx.starts_with(b"bad") {
            return response::CheckTx {
                code: Code::from(5),
                log: "rejected by the fake app".into(),
                codespace: "fake".into(),
                ..Default::default()
            };
        }
        self.state.lock().expect("lock").mempool.push(tx);
        response::CheckTx {
            gas_wanted: 100,
            ..Default::default()
        }
    }

    fn tx(&self, hash: &Hash) -> Option<Arc<TxRecord>> {
        let st = self.state.lock().expect("lock");
        st.txs.iter().find(|t| t.hash == *hash).cloned()
    }

    fn txs(&self, heights: RangeInclusive<u64>) -> Vec<Arc<TxRecord>> {
        let st = self.state.lock().expect("lock");
        st.txs
            .iter()
            .filter(|t| heights.contains(&t.height))
            .cloned()
            .collect()
    }

    // Answers from the same list as `txs`, so the server's index path (narrow, then match the whole query) is
    // exercised against the scan path's answers.
    fn txs_with_attributes(&self, pairs: &[(&str, &str)]) -> Option<Vec<Arc<TxRecord>>> {
        let st = self.state.lock().expect("lock");
        let mut wanted = Vec::new();
        for (key, value) in pairs {
            let (kind, attr) = key.split_once('.')?;
            wanted.push((kind, attr, *value));
        }
        Some(
            st.txs
                .iter()
                .filter(|t| {
                    wanted.iter().all(|(kind, attr, value)| {
                        t.result.events.iter().any(|e| {
                            e.kind == *kind
                                && e.attributes.iter().any(|a| {
                                    a.key_bytes() == attr.as_bytes()
                                        && a.value_bytes() == value.as_bytes()
                                })
                        })
                    })
                })
                .cloned()
                .collect(),
        )
    }

    fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------------------

async fn start() -> (Arc<FakeChain>, RpcServerHandle) {
    let chain = FakeChain::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = RpcConfig {
        broadcast_tx_commit_timeout: Duration::from_secs(3),
        ..RpcConfig::default()
    };
    let handle = rpc::spawn(listener, chain.clone(), config).expect("spawn");
    (chain, handle)
}

fn http_client(h: &RpcServerHandle) -> HttpClient {
    HttpClient::builder(h.http_url().parse().expect("url"))
        .compat_mode(CompatMode::V0_38)
        .build()
        .expect("http client")
}

async fn ws_client(h: &RpcServerHandle) -> (WebSocketClient, tokio::task::JoinHandle<()>) {
    let (client, driver) = WebSocketClient::builder(h.websocket_url().parse().expect("url"))
        .compat_mode(CompatMode::V0_38)
        .build()
        .await
        .expect("ws client");
    let task = tokio::spawn(async move {
        let _ = driver.run().await;
    });
    (client, task)
}

/// Produces a block whenever the mempool has something, as a running node would.
fn block_producer(chain: Arc<FakeChain>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if chain.mempool_len() > 0 {
                chain.produce_block();
            }
        }
    })
}

/// One HTTP/1.1 exchange over a raw socket: status code and body.
async fn raw_http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().expect("status code");
    let mut body = buf[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .expect("ascii")
                .trim(),
            16,
        )
        .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

async fn post(addr: SocketAddr, body: &str) -> (u16, Value) {
    let (status, body) = raw_http(addr, "POST", "/", body.as_bytes()).await;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("json body ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = raw_http(addr, "GET", path, b"").await;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("json body ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

/// A minimal WebSocket client speaking raw frames, to send what no well-behaved client would.
struct RawWs {
    s: TcpStream,
}

impl RawWs {
    async fn connect(addr: SocketAddr) -> Self {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET /websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("handshake");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.expect("handshake response");
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Self { s }
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len < 65536 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x11, 0x22, 0x33, 0x44];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&frame).await.expect("send frame");
    }

    async fn send(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes()).await;
    }

    async fn recv(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let mut h = [0u8; 2];
                self.s.read_exact(&mut h).await.expect("frame header");
                let opcode = h[0] & 0x0f;
                let mut len = u64::from(h[1] & 0x7f);
                if len == 126 {
                    let mut b = [0u8; 2];
                    self.s.read_exact(&mut b).await.expect("len");
                    len = u64::from(u16::from_be_bytes(b));
                } else if len == 127 {
                    let mut b = [0u8; 8];
                    self.s.read_exact(&mut b).await.expect("len");
                    len = u64::from_be_bytes(b);
                }
                let mut payload = vec![0u8; len as usize];
                self.s.read_exact(&mut payload).await.expect("payload");
                match opcode {
                    0x1 | 0x2 => return serde_json::from_slice(&payload).expect("json frame"),
                    0x8 => panic!("server closed the websocket"),
                    _ => continue,
                }
            }
        })
        .await
        .expect("a frame in time")
    }
}

/// Same object keys everywhere and same JSON types where both sides have a value. `null` on either side stands
/// for Go's nil slices and pointers, which CometBFT writes for empty data; arrays compare their first elements.
fn assert_same_shape(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: BTreeSet<&String> = a.keys().collect();
            let kb: BTreeSet<&String> = b.keys().collect();
            assert_eq!(ka, kb, "object keys differ at {path}");
            for k in ka {
                assert_same_shape(&a[k], &b[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                assert_same_shape(x, y, &format!("{path}[0]"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (a, b) => assert_eq!(
            kind(a),
            kind(b),
            "JSON types differ at {path}: ours {a}, CometBFT {b}"
        ),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/cometbft-v0_38/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture file"))
        .expect("fixture json")
}

fn tx_hash(tx: &[u8]) -> Hash {
    Hash::Sha256(sha256(tx))
}

// ---------------------------------------------------------------------------------------------------------------
// Through tendermint-rs's HttpClient
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn status_block_commit_and_headers_decode_in_tendermint_rs() {
    let (chain, server) = start().await;
    let c = http_client(&server);

    let status = c.status().await.expect("status");
    assert_eq!(status.sync_info.latest_block_height.value(), 5);
    assert_eq!(status.sync_info.earliest_block_height.value(), 1);
    assert_eq!(status.node_info.network.as_str(), CHAIN_ID);
    assert_eq!(status.validator_info.address, chain.validator.address);
    let (id5, _) = chain.block(5).expect("block 5");
    assert_eq!(status.sync_info.latest_block_hash, id5.hash);
    c.health().await.expect("health");

    let b = c.block(4u32).await.expect("block 4");
    assert_eq!(b.block.header.height.value(), 4);
    assert_eq!(b.block.data, vec![b"pkt1=channel-0".to_vec()]);
    assert_eq!(
        b.block.last_commit.as_ref().map(|c| c.height.value()),
        Some(3)
    );
    assert_eq!(
        c.latest_block()
            .await
            .expect("latest")
            .block
            .header
            .height
            .value(),
        5
    );

    let by_hash = c.block_by_hash(b.block_id.hash).await.expect("by hash");
    assert_eq!(by_hash.block.expect("found").header.height.value(), 4);
    let missing = c
        .block_by_hash(Hash::Sha256([9; 32]))
        .await
        .expect("unknown hash is not an error");
    assert!(missing.block.is_none());

    let commit = c.commit(3u32).await.expect("commit");
    assert_eq!(commit.signed_header.header.height.value(), 3);
    assert_eq!(commit.signed_header.commit.height.value(), 3);
    assert!(commit.canonical);
    assert!(!c.latest_commit().await.expect("latest commit").canonical);

    let header = c.header(2u32).await.expect("header");
    assert_eq!(header.header.height.value(), 2);
    let header = c
        .header_by_hash(b.block_id.hash)
        .await
        .expect("header by hash");
    assert_eq!(header.header.expect("found").height.value(), 4);

    let chain_info = c.blockchain(1u32, 5u32).await.expect("blockchain");
    assert_eq!(chain_info.last_height.value(), 5);
    let heights: Vec<u64> = chain_info
        .block_metas
        .iter()
        .map(|m| m.header.height.value())
        .collect();
    assert_eq!(heights, vec![5, 4, 3, 2, 1]);
    assert_eq!(chain_info.block_metas[3].num_txs, 2);

    let params = c.consensus_params(2u32).await.expect("consensus params");
    assert_eq!(params.consensus_params, chain.params);

    let info = c.abci_info().await.expect("abci_info");
    assert_eq!(info.last_block_height.value(), 5);

    let net = c.net_info().await.expect("net_info");
    assert!(net.listening);
    assert_eq!(net.n_peers, 0);

    let genesis = c.genesis::<Value>().await.expect("genesis");
    assert_eq!(genesis.chain_id.as_str(), CHAIN_ID);
    assert_eq!(genesis.validators.len(), 1);
}

#[tokio::test]
async fn block_results_and_validators_decode() {
    let (chain, server) = start().await;
    let c = http_client(&server);

    let r = c.block_results(2u32).await.expect("block_results");
    assert_eq!(r.height.value(), 2);
    let txs = r.txs_results.expect("two tx results");
    assert_eq!(txs.len(), 2);
    assert_eq!(txs[0].gas_used, 42);
    assert_eq!(
        txs[1].events[0].attributes[1].value_str().expect("utf8"),
        "2"
    );
    assert_eq!(r.finalize_block_events[0].kind, "height_marker");
    assert_eq!(r.app_hash.as_bytes(), 2u64.to_be_bytes());
    let empty = c.block_results(3u32).await.expect("no txs");
    assert!(empty.txs_results.is_none_or_empty());

    let v = c.validators(3u32, Paging::All).await.expect("validators");
    assert_eq!(v.total, 1);
    assert_eq!(v.validators, vec![chain.validator.clone()]);
    // The next validator set is known one height past the latest commit.
    assert_eq!(
        c.validators(6u32, Paging::Default)
            .await
            .expect("next set")
            .block_height
            .value(),
        6
    );
    let err = c
        .validators(7u32, Paging::Default)
        .await
        .expect_err("beyond next");
    assert!(
        err.to_string()
            .contains("must be less than or equal to the current blockchain height 6"),
        "{err}"
    );
}

trait NoneOrEmpty {
    fn is_none_or_empty(&self) -> bool;
}

impl<T> NoneOrEmpty for Option<Vec<T>> {
    fn is_none_or_empty(&self) -> bool {
        self.as_ref().is_none_or(Vec::is_empty)
    }
}

#[tokio::test]
async fn abci_query_passes_path_data_height_and_proof() {
    let (_chain, server) = start().await;
    let c = http_client(&server);
    let q = c
        .abci_query(Some("store/ibc/key".into()), b"pkt1".to_vec(), None, true)
        .await
        .expect("abci_query");
    assert!(q.code.is_ok());
    assert_eq!(q.key, b"pkt1");
    assert_eq!(q.value, b"channel-0");
    assert_eq!(q.height.value(), 5);
    assert_eq!(
        q.proof.expect("proof requested").ops[0].field_type,
        "ics23:iavl"
    );

    let q = c
        .abci_query(
            Some("store/ibc/key".into()),
            b"a".to_vec(),
            Some(3u32.into()),
            false,
        )
        .await
        .expect("abci_query at height");
    assert_eq!(q.height.value(), 3);
    assert!(q.proof.is_none());

    let q = c
        .abci_query(Some("nope".into()), vec![], None, false)
        .await
        .expect("app errors are results");
    assert_eq!(q.code.value(), 6);
    assert_eq!(q.codespace, "fake");
}

#[tokio::test]
async fn broadcast_sync_async_and_check_tx_errors() {
    let (chain, server) = start().await;
    let c = http_client(&server);

    let ok = c.broadcast_tx_sync(b"x=1".to_vec()).await.expect("sync");
    assert!(ok.code.is_ok());
    assert_eq!(ok.hash, tx_hash(b"x=1"));
    assert_eq!(chain.mempool_len(), 1);

    let bad = c
        .broadcast_tx_sync(b"bad tx".to_vec())
        .await
        .expect("CheckTx errors are results");
    assert_eq!(bad.code.value(), 5);
    assert_eq!(bad.log, "rejected by the fake app");
    assert_eq!(bad.codespace, "fake");
    assert_eq!(chain.mempool_len(), 1);

    let asynced = c.broadcast_tx_async(b"y=2".to_vec()).await.expect("async");
    assert!(asynced.code.is_ok());
    assert_eq!(asynced.hash, tx_hash(b"y=2"));
    assert_eq!(chain.mempool_len(), 2);
}

#[tokio::test]
async fn broadcast_tx_commit_waits_for_the_block() {
    let (chain, server) = start().await;
    let producer = block_producer(chain.clone());
    let c = http_client(&server);

    let r = c
        .broadcast_tx_commit(b"z=9".to_vec())
        .await
        .expect("commit");
    assert!(r.check_tx.code.is_ok());
    assert!(r.tx_result.code.is_ok());
    assert_eq!(r.height.value(), 6);
    assert_eq!(r.hash, tx_hash(b"z=9"));
    assert_eq!(r.tx_result.gas_used, 42);

    let rejected = c
        .broadcast_tx_commit(b"bad".to_vec())
        .await
        .expect("CheckTx failure is a result");
    assert_eq!(rejected.check_tx.code.value(), 5);
    assert_eq!(rejected.height.value(), 0);
    producer.abort();

    // Without a block producer the wait times out with CometBFT's message.
    let err = c
        .broadcast_tx_commit(b"never=1".to_vec())
        .await
        .expect_err("timeout");
    assert!(
        err.to_string()
            .contains("timed out waiting for tx to be included in a block"),
        "{err}"
    );
}

#[tokio::test]
async fn tx_and_tx_search() {
    let (_chain, server) = start().await;
    let c = http_client(&server);

    let tx = c.tx(tx_hash(b"b=2"), false).await.expect("tx");
    assert_eq!(tx.height.value(), 2);
    assert_eq!(tx.index, 1);
    assert_eq!(tx.tx, b"b=2");
    let err = c
        .tx(Hash::Sha256([1; 32]), false)
        .await
        .expect_err("unknown tx");
    assert!(err.to_string().contains("not found"), "{err}");

    let q: Query = "tm.event='Tx' AND send_packet.packet_src_channel='channel-0'"
        .parse()
        .expect("query");
    let found = c
        .tx_search(q, false, 1, 30, Order::Ascending)
        .await
        .expect("tx_search");
    assert_eq!(found.total_count, 1);
    assert_eq!(found.txs[0].tx, b"pkt1=channel-0");
    assert_eq!(found.txs[0].height.value(), 4);
    // The attribute narrows the search; the rest of the query still decides.
    for (query, count) in [
        (
            "send_packet.packet_src_channel='channel-0' AND tx.height > 4",
            0,
        ),
        (
            "send_packet.packet_src_channel='channel-0' AND tx.height <= 4",
            1,
        ),
        ("send_packet.packet_src_channel='channel-9'", 0),
        // Every attribute equality narrows the candidates, whichever comes first.
        (
            "app.key='pkt1' AND send_packet.packet_src_channel='channel-1'",
            0,
        ),
        (
            "send_packet.packet_src_channel='channel-1' AND app.key='pkt2'",
            1,
        ),
        ("app.key EXISTS AND app.key='pkt2'", 1),
        (
            "tm.event='NewBlock' AND send_packet.packet_src_channel='channel-0'",
            0,
        ),
    ] {
        let found = c
            .tx_search(
                query.parse().expect("query"),
                false,
                1,
                30,
                Order::Ascending,
            )
            .await
            .expect("tx_search");
        assert_eq!(found.total_count, count, "{query}");
    }

    let all = c
        .tx_search(
            "app.key EXISTS".parse().expect("query"),
            false,
            1,
            30,
            Order::Descending,
        )
        .await
        .expect("all");
    assert_eq!(all.total_count, 4);
    let heights: Vec<u64> = all.txs.iter().map(|t| t.height.value()).collect();
    assert_eq!(heights, vec![5, 4, 2, 2]);
    assert_eq!(all.txs[2].index, 1);

    let page2 = c
        .tx_search(
            "app.key EXISTS".parse().expect("query"),
            false,
            2,
            3,
            Order::Ascending,
        )
        .await
        .expect("page 2");
    assert_eq!(page2.total_count, 4);
    assert_eq!(page2.txs.len(), 1);
    assert_eq!(page2.txs[0].tx, b"pkt2=channel-1");

    let by_hash = Query::eq("tx.hash", tx_hash(b"a=1").to_string());
    let one = c
        .tx_search(by_hash, false, 1, 30, Order::Ascending)
        .await
        .expect("by hash");
    assert_eq!(one.total_count, 1);
    assert_eq!(one.txs[0].tx, b"a=1");

    let ranged = c
        .tx_search(
            "tx.height >= 3 AND tx.height < 5".parse().expect("query"),
            false,
            1,
            30,
            Order::Ascending,
        )
        .await
        .expect("height range");
    assert_eq!(ranged.total_count, 1);

    let err = c
        .tx_search(
            "app.key EXISTS".parse().expect("query"),
            false,
            9,
            30,
            Order::Ascending,
        )
        .await
        .expect_err("no page 9");
    assert!(
        err.to_string()
            .contains("page should be within [1, 1] range, given 9"),
        "{err}"
    );
}

#[tokio::test]
async fn block_search_matches_finalize_block_events() {
    let (_chain, server) = start().await;
    let c = http_client(&server);
    let even = c
        .block_search(
            "height_marker.parity='even'".parse().expect("query"),
            1,
            30,
            Order::Ascending,
        )
        .await
        .expect("block_search");
    assert_eq!(even.total_count, 2);
    let heights: Vec<u64> = even
        .blocks
        .iter()
        .map(|b| b.block.header.height.value())
        .collect();
    assert_eq!(heights, vec![2, 4]);
    let odd_late = c
        .block_search(
            "height_marker.parity='odd' AND block.height > 1"
                .parse()
                .expect("query"),
            1,
            30,
            Order::Descending,
        )
        .await
        .expect("block_search");
    let heights: Vec<u64> = odd_late
        .blocks
        .iter()
        .map(|b| b.block.header.height.value())
        .collect();
    assert_eq!(heights, vec![5, 3]);
}

// ---------------------------------------------------------------------------------------------------------------
// Through tendermint-rs's WebSocketClient
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn websocket_subscribe_new_block_and_filtered_tx() {
    let (chain, server) = start().await;
    let (ws, driver) = ws_client(&server).await;

    // Ordinary calls work over the WebSocket too.
    assert_eq!(
        ws.status()
            .await
            .expect("status over ws")
            .sync_info
            .latest_block_height
            .value(),
        5
    );

    let mut blocks = ws
        .subscribe(EventType::NewBlock.into())
        .await
        .expect("subscribe NewBlock");
    let q: Query = "tm.event='Tx' AND send_packet.packet_src_channel='channel-0'"
        .parse()
        .expect("query");
    let mut packets = ws.subscribe(q.clone()).await.expect("subscribe Tx");
    let mut all_txs = ws
        .subscribe(EventType::Tx.into())
        .await
        .expect("subscribe all Tx");

    for tx in ["pkt7=channel-3", "pkt8=channel-0"] {
        chain
            .state
            .lock()
            .expect("lock")
            .mempool
            .push(tx.as_bytes().to_vec());
    }
    chain.produce_block();

    let ev = next(&mut blocks).await;
    match ev.data {
        EventData::NewBlock {
            block,
            block_id,
            result_finalize_block,
        } => {
            let block = block.expect("block");
            assert_eq!(block.header.height.value(), 6);
            assert_eq!(block_id, chain.block(6).expect("stored").0);
            let fin = result_finalize_block.expect("finalize block");
            assert_eq!(fin.tx_results.len(), 2);
            assert_eq!(fin.app_hash.as_bytes(), 6u64.to_be_bytes());
        }
        other => panic!("expected NewBlock, got {other:?}"),
    }

    let ev = next(&mut packets).await;
    assert_eq!(ev.query, q.to_string());
    match ev.data {
        EventData::Tx { tx_result } => {
            assert_eq!(tx_result.tx, b"pkt8=channel-0");
            assert_eq!(tx_result.height, 6);
            assert_eq!(tx_result.index, Some(1));
        }
        other => panic!("expected Tx, got {other:?}"),
    }
    let events = ev.events.expect("events map");
    assert_eq!(
        events["send_packet.packet_src_channel"],
        vec!["channel-0".to_owned()]
    );
    assert_eq!(events["tx.height"], vec!["6".to_owned()]);
    assert_eq!(
        events["tx.hash"],
        vec![tx_hash(b"pkt8=channel-0").to_string()]
    );

    // The unfiltered subscription sees both, in block order; the filtered one saw only channel-0.
    let first = next(&mut all_txs).await;
    let second = next(&mut all_txs).await;
    let txs: Vec<Vec<u8>> = [first, second]
        .into_iter()
        .map(|e| match e.data {
            EventData::Tx { tx_result } => tx_result.tx,
            other => panic!("expected Tx, got {other:?}"),
        })
        .collect();
    assert_eq!(
        txs,
        vec![b"pkt7=channel-3".to_vec(), b"pkt8=channel-0".to_vec()]
    );

    ws.unsubscribe(q).await.expect("unsubscribe");
    ws.close().expect("close");
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
}

async fn next(s: &mut tendermint_rpc::Subscription) -> tendermint_rpc::event::Event {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("event in time")
        .expect("stream open")
        .expect("event decodes")
}

// ---------------------------------------------------------------------------------------------------------------
// Raw HTTP: batches, URI GET, error shapes, garbage
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn batch_requests_answer_each_call_in_order() {
    let (_chain, server) = start().await;
    let body = r#"[
        {"jsonrpc":"2.0","id":1,"method":"status","params":{}},
        {"jsonrpc":"2.0","id":"two","method":"block","params":{"height":"3"}},
        {"jsonrpc":"2.0","method":"health"},
        {"jsonrpc":"2.0","id":3,"method":"no_such_method"},
        {"jsonrpc":"2.0","id":4,"method":"header","params":["2"]}
    ]"#;
    let (status, v) = post(server.local_addr, body).await;
    assert_eq!(status, 200);
    let arr = v.as_array().expect("batch answer is an array");
    assert_eq!(arr.len(), 4, "the notification gets no answer");
    assert_eq!(arr[0]["id"], json!(1));
    assert_eq!(
        arr[0]["result"]["sync_info"]["latest_block_height"],
        json!("5")
    );
    assert_eq!(arr[1]["id"], json!("two"));
    assert_eq!(arr[1]["result"]["block"]["header"]["height"], json!("3"));
    assert_eq!(arr[2]["error"]["code"], json!(-32601));
    assert_eq!(arr[3]["result"]["header"]["height"], json!("2"));
}

#[tokio::test]
async fn uri_get_follows_cometbft_conventions() {
    let (chain, server) = start().await;
    let addr = server.local_addr;

    let (status, v) = get(addr, "/status").await;
    assert_eq!(status, 200);
    assert_eq!(v["id"], json!(-1));
    assert_eq!(v["result"]["sync_info"]["latest_block_height"], json!("5"));

    let (_, v) = get(addr, "/block?height=2").await;
    assert_eq!(v["result"]["block"]["header"]["height"], json!("2"));

    let (_, v) = get(
        addr,
        "/abci_query?path=%22store/ibc/key%22&data=0x706b7431&prove=true",
    )
    .await;
    assert_eq!(
        v["result"]["response"]["value"],
        json!("Y2hhbm5lbC0w"),
        "{v}"
    );
    assert!(v["result"]["response"]["proofOps"].is_object(), "{v}");
    let (_, v) = get(addr, "/abci_query?path=%22store/ibc/key%22&data=0x61").await;
    assert_eq!(v["result"]["response"]["value"], json!("MQ=="), "{v}");

    let (_, v) = get(addr, "/broadcast_tx_sync?tx=%22q=1%22").await;
    assert_eq!(v["result"]["code"], json!(0), "{v}");
    assert_eq!(chain.mempool_len(), 1);

    let hash = tx_hash(b"a=1");
    let (_, v) = get(addr, &format!("/tx?hash=0x{hash}")).await;
    assert_eq!(v["result"]["height"], json!("2"), "{v}");

    let (_, v) = get(addr, "/tx_search?query=%22app.key=%27b%27%22").await;
    assert_eq!(v["result"]["total_count"], json!("1"), "{v}");

    let (status, v) = get(addr, "/block?height=0xff").await;
    assert_eq!(status, 500);
    assert_eq!(v["error"]["code"], json!(-32602));
    let (status, v) = get(addr, "/no_such_method").await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], json!(-32601));
    let (status, v) = get(addr, "/subscribe?query=%22tm.event=%27Tx%27%22").await;
    assert_eq!(status, 404, "subscribe is WebSocket-only");
    assert_eq!(v["error"]["code"], json!(-32601));

    let (status, body) = raw_http(addr, "GET", "/", b"").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("abci_query?path=_&data=_&height=_&prove=_"));
}

#[tokio::test]
async fn error_shapes_match_cometbft() {
    let (_chain, server) = start().await;
    let addr = server.local_addr;

    let (_, v) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":"x","method":"block","params":{"height":"100"}}"#,
    )
    .await;
    assert_eq!(
        v,
        json!({"jsonrpc":"2.0","id":"x","error":{"code":-32603,"message":"Internal error",
            "data":"height 100 must be less than or equal to the current blockchain height 5"}})
    );

    // Height 0 is refused exactly as the recorded CometBFT node refused it.
    let (_, v) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"block","params":{"height":"0"}}"#,
    )
    .await;
    assert_eq!(v["error"], fixture("block_at_height_0.json")["error"]);

    let (_, v) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":2,"method":"commit","params":{"height":"-3"}}"#,
    )
    .await;
    assert_eq!(
        v["error"]["data"],
        json!("height must be greater than 0, but got -3")
    );

    let (_, v) = post(addr, r#"{"jsonrpc":"2.0","id":3,"method":"frobnicate"}"#).await;
    assert_eq!(
        v,
        json!({"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}})
    );

    let (status, v) = post(addr, r#"{"jsonrpc":"2.0","id":4,"method":"status""#).await;
    assert_eq!(status, 500);
    assert_eq!(v["error"]["code"], json!(-32700));
    assert_eq!(v["error"]["message"], json!("Parse error. Invalid JSON"));
    assert!(v["id"].is_null());

    let (_, v) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":5,"method":"block","params":{"height":"tall"}}"#,
    )
    .await;
    assert_eq!(v["error"]["code"], json!(-32602));
    assert_eq!(v["error"]["message"], json!("Invalid params"));
    assert!(v["error"]["data"]
        .as_str()
        .expect("data")
        .starts_with("error converting json params to arguments"));

    let (_, v) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":6,"method":"tx_search","params":{"query":"tm.event = 'Tx' AND"}}"#,
    )
    .await;
    assert_eq!(v["error"]["code"], json!(-32603));
    assert!(v["error"]["data"]
        .as_str()
        .expect("data")
        .starts_with("failed to parse query"));

    let (_, v) = post(addr, r#"{"jsonrpc":"2.0","id":7,"method":"tx_search","params":{"query":"app.key EXISTS","order_by":"sideways"}}"#).await;
    assert_eq!(
        v["error"]["data"],
        json!("expected order_by to be either `asc` or `desc` or empty")
    );

    let (_, v) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":8,"method":"subscribe","params":{"query":"tm.event='Tx'"}}"#,
    )
    .await;
    assert_eq!(
        v["error"]["code"],
        json!(-32601),
        "subscribe is WebSocket-only"
    );
}

#[tokio::test]
async fn garbage_never_crashes_the_server() {
    let (_chain, server) = start().await;
    let addr = server.local_addr;
    let mut inputs: Vec<Vec<u8>> = [
        "", "null", "1", "\"str\"", "[]", "[1,2]", "{}", "{\"id\":{}}", "{\"id\":1}", "{\"id\":1,\"method\":7}",
        "{\"id\":1.5,\"method\":\"status\"}", "{\"id\":1,\"method\":\"block\",\"params\":\"x\"}",
        "{\"id\":1,\"method\":\"block\",\"params\":[1,2,3]}", "{\"id\":1,\"method\":\"block\",\"params\":{\"height\":1e99}}",
        "{\"id\":1,\"method\":\"blockchain\",\"params\":{\"minHeight\":\"-1\"}}",
        "{\"id\":1,\"method\":\"blockchain\",\"params\":{\"minHeight\":\"9223372036854775807\"}}",
        "{\"id\":1,\"method\":\"validators\",\"params\":{\"page\":\"-9223372036854775808\",\"per_page\":\"9223372036854775807\"}}",
        "{\"id\":1,\"method\":\"abci_query\",\"params\":{\"data\":\"zz\"}}",
        "{\"id\":1,\"method\":\"abci_query\",\"params\":{\"height\":\"-1\"}}",
        "{\"id\":1,\"method\":\"broadcast_tx_sync\",\"params\":{\"tx\":\"!!!\"}}",
        "{\"id\":1,\"method\":\"broadcast_tx_sync\",\"params\":{}}",
        "{\"id\":1,\"method\":\"tx\",\"params\":{\"hash\":\"\"}}",
        "{\"id\":1,\"method\":\"tx\",\"params\":{\"hash\":\"AAAA\",\"prove\":true}}",
        "{\"id\":1,\"method\":\"tx_search\",\"params\":{\"query\":\"tx.height > 18446744073709551615\"}}",
        "{\"id\":1,\"method\":\"block_search\",\"params\":{\"query\":\"block.height < -5\",\"page\":\"0\"}}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    inputs.push(vec![0xff, 0xfe, 0x00, 0x7b]);
    inputs.push(
        format!(
            "{{\"id\":1,\"method\":\"tx_search\",\"params\":{{\"query\":\"{}\"}}}}",
            "a".repeat(600)
        )
        .into_bytes(),
    );
    // Deterministic pseudo-random bytes and mutated requests.
    let mut seed = 0x2545f4914f6cdd1du64;
    let template = br#"{"jsonrpc":"2.0","id":1,"method":"block_results","params":{"height":"2"}}"#;
    for _ in 0..200 {
        let mut v = template.to_vec();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % v.len() as u64) as usize;
            v[i] = (seed >> 32) as u8;
        }
        inputs.push(v);
    }
    for input in &inputs {
        let (status, _) = raw_http(addr, "POST", "/", input).await;
        assert!(
            matches!(status, 200 | 500),
            "status {status} for {}",
            String::from_utf8_lossy(input)
        );
    }
    for path in [
        "/block?height=%ff%fe",
        "/abci_query?data=0xzz",
        "/tx?hash=\"\"",
        "/validators?page=abc",
        "/blockchain?minHeight=99&maxHeight=1",
        "/abci_query?path=\"raw quotes are refused by the HTTP layer\"",
    ] {
        let (status, _) = raw_http(addr, "GET", path, b"").await;
        assert!(
            matches!(status, 200 | 400 | 500),
            "status {status} for {path}"
        );
    }

    // Raw WebSocket garbage: every frame is answered and the connection stays usable.
    let mut ws = RawWs::connect(addr).await;
    for text in [
        "not json",
        "[]",
        "{\"id\":1,\"method\":\"subscribe\",\"params\":{\"query\":\"tm.event=\"}}",
        "{\"id\":{},\"method\":1}",
    ] {
        ws.send(text).await;
        if text != "[]" {
            let v = ws.recv().await;
            assert!(v["error"].is_object(), "{text} -> {v}");
        }
    }
    ws.send_frame(0x2, &[0xde, 0xad, 0xbe, 0xef]).await;
    assert_eq!(ws.recv().await["error"]["code"], json!(-32700));
    ws.send(r#"{"jsonrpc":"2.0","id":42,"method":"status"}"#)
        .await;
    let v = ws.recv().await;
    assert_eq!(v["id"], json!(42));
    assert_eq!(v["result"]["sync_info"]["latest_block_height"], json!("5"));

    // And the HTTP side still answers normally.
    let c = http_client(&server);
    assert_eq!(
        c.status()
            .await
            .expect("alive")
            .sync_info
            .latest_block_height
            .value(),
        5
    );
}

#[tokio::test]
async fn websocket_subscription_errors_and_limits() {
    let (_chain, server) = start().await;
    let mut ws = RawWs::connect(server.local_addr).await;

    ws.send(r#"{"jsonrpc":"2.0","id":"m","method":"subscribe","params":{"query":"tm.event = 'Tx' AND foo"}}"#).await;
    let v = ws.recv().await;
    let expected = fixture("subscribe_malformed.json");
    assert_eq!(v["error"]["code"], expected["error"]["code"]);
    assert_eq!(v["error"]["message"], expected["error"]["message"]);
    assert!(v["error"]["data"]
        .as_str()
        .expect("data")
        .starts_with("failed to parse query"));

    ws.send(r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"query":"tm.event='Tx'"}}"#)
        .await;
    assert_eq!(ws.recv().await, json!({"jsonrpc":"2.0","id":1,"result":{}}));
    ws.send(r#"{"jsonrpc":"2.0","id":2,"method":"subscribe","params":["tm.event = 'Tx'"]}"#)
        .await;
    assert_eq!(
        ws.recv().await["error"]["data"],
        json!("already subscribed")
    );
    ws.send(r#"{"jsonrpc":"2.0","id":3,"method":"unsubscribe","params":{"query":"tm.event='NewBlock'"}}"#).await;
    assert_eq!(
        ws.recv().await["error"]["data"],
        json!("subscription not found")
    );
    for i in 0..4 {
        ws.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"subscribe","params":{{"query":"a.b = {i}"}}}}"#,
            10 + i
        ))
        .await;
        assert_eq!(ws.recv().await["result"], json!({}));
    }
    ws.send(r#"{"jsonrpc":"2.0","id":20,"method":"subscribe","params":{"query":"a.b = 99"}}"#)
        .await;
    assert_eq!(
        ws.recv().await["error"]["data"],
        json!("max_subscriptions_per_client 5 reached")
    );
    ws.send(r#"{"jsonrpc":"2.0","id":21,"method":"unsubscribe_all"}"#)
        .await;
    assert_eq!(ws.recv().await["result"], json!({}));
    ws.send(r#"{"jsonrpc":"2.0","id":22,"method":"subscribe","params":{"query":"a.b = 99"}}"#)
        .await;
    assert_eq!(ws.recv().await["result"], json!({}));
}

// ---------------------------------------------------------------------------------------------------------------
// Shape against recorded CometBFT v0.38 answers
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn json_shapes_match_recorded_cometbft() {
    let (chain, server) = start().await;
    let addr = server.local_addr;
    let call = |method: &str, params: Value| {
        let body = json!({"jsonrpc":"2.0","id":"s","method":method,"params":params}).to_string();
        async move { post(addr, &body).await.1 }
    };

    for (method, params, file) in [
        ("status", json!({}), "status.json"),
        ("block", json!({"height":"4"}), "block_at_height_10.json"),
        (
            "block_results",
            json!({"height":"3"}),
            "block_results_at_height_10.json",
        ),
        ("commit", json!({"height":"3"}), "commit_at_height_10.json"),
        (
            "abci_query",
            json!({"path":"store/ibc/key","data":hex::encode("a")}),
            "abci_query_with_existing_key.json",
        ),
        (
            "tx_search",
            json!({"query":"app.key EXISTS"}),
            "tx_search_no_prove.json",
        ),
        (
            "broadcast_tx_sync",
            json!({"tx":"eD0x"}),
            "broadcast_tx_sync.json",
        ),
    ] {
        let ours = call(method, params).await;
        let theirs = fixture(file);
        assert!(ours.get("result").is_some(), "{method}: {ours}");
        assert_same_shape(&ours["result"], &theirs["result"], method);
    }

    // A block with transactions has the same keys as the empty one, but its results are filled in.
    let ours = call("block_results", json!({"height":"2"})).await;
    let keys: BTreeSet<&String> = ours["result"].as_object().expect("object").keys().collect();
    let fixture_results = fixture("block_results_at_height_10.json");
    let theirs: BTreeSet<&String> = fixture_results["result"]
        .as_object()
        .expect("object")
        .keys()
        .collect();
    assert_eq!(keys, theirs);
    assert_same_shape(
        &ours["result"]["txs_results"][0],
        &fixture("broadcast_tx_commit.json")["result"]["tx_result"],
        "txs_results",
    );

    // broadcast_tx_commit, with a block producer.
    let producer = block_producer(chain.clone());
    let ours = call("broadcast_tx_commit", json!({"tx":"Yz0z"})).await;
    producer.abort();
    assert_same_shape(
        &ours["result"],
        &fixture("broadcast_tx_commit.json")["result"],
        "broadcast_tx_commit",
    );

    // Pushed events.
    let mut ws = RawWs::connect(addr).await;
    ws.send(r#"{"jsonrpc":"2.0","id":"nb","method":"subscribe","params":{"query":"tm.event = 'NewBlock'"}}"#).await;
    assert_eq!(ws.recv().await["result"], json!({}));
    ws.send(
        r#"{"jsonrpc":"2.0","id":"tx","method":"subscribe","params":{"query":"tm.event = 'Tx'"}}"#,
    )
    .await;
    assert_eq!(ws.recv().await["result"], json!({}));
    chain
        .state
        .lock()
        .expect("lock")
        .mempool
        .push(b"k=v".to_vec());
    chain.produce_block();
    let mut frames = BTreeMap::new();
    for _ in 0..2 {
        let f = ws.recv().await;
        frames.insert(f["id"].as_str().expect("string id").to_owned(), f);
    }
    let nb = &frames["nb"];
    let tx = &frames["tx"];
    assert_eq!(
        nb["result"]["data"]["type"],
        json!("tendermint/event/NewBlock")
    );
    assert_eq!(tx["result"]["data"]["type"], json!("tendermint/event/Tx"));
    assert_eq!(nb["result"]["query"], json!("tm.event = 'NewBlock'"));
    let mut nb_fixture = fixture("subscribe_newblock_0.json");
    // The recorded block had no transactions; ours has one, whose result the shape check then also covers.
    let fin = &nb["result"]["data"]["value"]["result_finalize_block"];
    assert_eq!(fin["tx_results"][0]["gas_used"], json!("42"));
    nb_fixture["result"]["data"]["value"]["result_finalize_block"]["tx_results"] =
        fin["tx_results"].clone();
    nb_fixture["result"]["data"]["value"]["result_finalize_block"]["events"] =
        fin["events"].clone();
    nb_fixture["result"]["events"] = nb["result"]["events"].clone();
    assert_same_shape(nb, &nb_fixture, "NewBlock event");

    let mut tx_fixture = fixture("subscribe_txs_0.json");
    // Our tx consumed gas, which CometBFT then writes; the recorded kvstore tx did not.
    for key in ["gas_wanted", "gas_used"] {
        tx_fixture["result"]["data"]["value"]["TxResult"]["result"][key] = json!("0");
    }
    tx_fixture["result"]["events"] = tx["result"]["events"].clone();
    assert_same_shape(tx, &tx_fixture, "Tx event");
    assert_eq!(
        tx["result"]["events"]["tx.height"],
        json!(["7"]),
        "block 6 holds the broadcast_tx_commit tx"
    );
}

#[tokio::test]
async fn lagging_subscription_is_cancelled_as_slow_client() {
    let (chain, server) = start().await;
    let mut ws = RawWs::connect(server.local_addr).await;
    ws.send(r#"{"jsonrpc":"2.0","id":"slow","method":"subscribe","params":{"query":"tm.event='NewBlock'"}}"#)
        .await;
    assert_eq!(ws.recv().await["result"], json!({}));
    // Without yielding, the forwarder cannot drain the node's 64-slot channel while 200 blocks are published.
    for _ in 0..200 {
        chain.produce_block();
    }
    let cancelled = loop {
        let v = ws.recv().await;
        if v.get("error").is_some() {
            break v;
        }
    };
    assert_eq!(cancelled["id"], json!("slow"));
    assert_eq!(cancelled["error"]["code"], json!(-32000));
    assert_eq!(
        cancelled["error"]["data"],
        json!("subscription was canceled (reason: slow client)")
    );
    // The slot is free again.
    ws.send(r#"{"jsonrpc":"2.0","id":"again","method":"subscribe","params":{"query":"tm.event='NewBlock'"}}"#)
        .await;
    assert_eq!(ws.recv().await["result"], json!({}));
}

#[tokio::test]
async fn shutdown_closes_websockets_and_stops_listening() {
    let (_chain, server) = start().await;
    let addr = server.local_addr;
    let mut ws = RawWs::connect(addr).await;
    ws.send(r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"query":"tm.event='Tx'"}}"#)
        .await;
    assert_eq!(ws.recv().await["result"], json!({}));

    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown in time")
        .expect("clean shutdown");

    // The server sends a close frame (opcode 8) or at least ends the stream.
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), ws.s.read(&mut first))
        .await
        .expect("socket answers in time")
        .unwrap_or(0);
    assert!(
        n == 0 || first[0] & 0x0f == 0x8,
        "unexpected frame byte {:#x}",
        first[0]
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener is closed"
    );
}
