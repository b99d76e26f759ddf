//! CometBFT RPC answers through relayd's own bounded HTTP client, from a local node that answers with generated
//! or mutated recorded documents: status, blocks, block results, commits and validators, proven ABCI queries and
//! paginated listings. Every answer gives a value or a typed error naming the chain and call; none panics, and a
//! listing whose pages never end is refused.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use ibc_proto::cosmos::base::query::v1beta1::PageResponse;
use ibc_proto::ibc::core::channel::v1::{IdentifiedChannel, QueryChannelsResponse};
use proptest::prelude::*;
use prost::Message;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::QueryHeight;
use serde_json::{json, Value};
use tendermint_rpc::client::CompatMode;

use super::cases;
use super::json::{mutated, Mutation};

/// A node that answers the `n`th request with `answers[n]`, and every request after the last answer with the
/// last one, over plain HTTP/1.1, one request a connection.
struct Node {
    url: String,
    answers: Arc<Mutex<(Vec<Vec<u8>>, usize)>>,
}

impl Node {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let answers: Arc<Mutex<(Vec<Vec<u8>>, usize)>> = Arc::default();
        let shared = answers.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and as much body as it announces.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = {
                    let mut a = shared.lock().expect("answers");
                    let (list, next) = &mut *a;
                    let body = list
                        .get((*next).min(list.len().saturating_sub(1)))
                        .cloned()
                        .unwrap_or_default();
                    *next += 1;
                    body
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Self { url, answers }
    }

    fn answer(&self, bodies: Vec<Vec<u8>>) {
        *self.answers.lock().expect("answers") = (bodies, 0);
    }
}

fn recorded(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/cometbft-v0_38")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

const RECORDED: &[&str] = &[
    "status.json",
    "block_at_height_10.json",
    "block_results_at_height_10.json",
    "commit_at_height_10.json",
    "abci_query_with_existing_key.json",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Every call relayd makes on a Cosmos node, against whatever the node answers; errors must name the chain.
fn every_call(rt: &tokio::runtime::Runtime, rpc: &CosmosRpc) {
    rt.block_on(async {
        let named = |e: String| assert!(e.contains("fuzz-0"), "{e}");
        if let Err(e) = rpc.status().await {
            named(e.to_string());
        }
        if let Err(e) = rpc.block(10).await {
            named(e.to_string());
        }
        if let Err(e) = rpc.block_results(10).await {
            named(e.to_string());
        }
        if let Err(e) = rpc.fetch_light_block(10).await {
            named(e.to_string());
        }
        if let Err(e) = rpc
            .query_ibc(
                "ibc",
                "clients/07-tendermint-0/clientState",
                QueryHeight::At(9),
                true,
            )
            .await
        {
            named(e.to_string());
        }
        if let Err(e) = rpc.channels().await {
            named(e.to_string());
        }
    });
}

/// An `abci_query` answer carrying `value` (protobuf), as a gRPC-over-ABCI listing returns it.
fn abci_answer(value: &[u8]) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "result": {"response": {
        "code": 0, "log": "", "info": "", "index": "0", "key": "", "height": "5", "codespace": "", "proofOps": null,
        "value": base64::engine::general_purpose::STANDARD.encode(value),
    }}})
    .to_string()
    .into_bytes()
}

/// A page of channel listing whose next page is `next_key`.
fn channel_page(next_key: &[u8]) -> Vec<u8> {
    abci_answer(
        &QueryChannelsResponse {
            channels: vec![IdentifiedChannel {
                port_id: "transfer".into(),
                channel_id: "channel-0".into(),
                ..IdentifiedChannel::default()
            }],
            pagination: Some(PageResponse {
                next_key: next_key.to_vec(),
                total: 0,
            }),
            height: None,
        }
        .encode_to_vec(),
    )
}

/// A `validators` answer holding `validators` and claiming `total`.
fn validators_answer(total: &str, validators: &[Value]) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "result": {
        "block_height": "10", "validators": validators, "count": validators.len().to_string(), "total": total,
    }})
    .to_string()
    .into_bytes()
}

/// The recorded chain's validator with voting power `power`.
fn validator(power: &str) -> Value {
    let v = &recorded("genesis.json")["result"]["genesis"]["validators"][0];
    json!({"address": v["address"], "pub_key": v["pub_key"], "voting_power": power, "proposer_priority": "0"})
}

/// Found by reading what these properties drive: a light block read from a node whose validator pages never
/// add up to its `total` asked for pages forever, and a total voting power above CometBFT's bound panicked.
#[test]
fn lying_validator_pages_are_errors_not_a_hang_or_a_panic() {
    let node = node();
    let rt = runtime();
    let rpc = CosmosRpc::new("fuzz-0", &node.url, CompatMode::V0_38).expect("client");
    let _guard = LOCK.lock();
    let commit = recorded("commit_at_height_10.json")
        .to_string()
        .into_bytes();
    node.answer(vec![
        commit.clone(),
        validators_answer("1", &[validator("10")]),
    ]);
    rt.block_on(rpc.fetch_light_block(10))
        .expect("an honest answer reads");
    for answer in [
        validators_answer("5", &[]),
        validators_answer("1", &[validator("10"), validator("10")]),
        validators_answer("-1", &[validator("10")]),
        validators_answer(
            "2",
            &[
                validator("4611686018427387904"),
                validator("4611686018427387904"),
            ],
        ),
    ] {
        node.answer(vec![commit.clone(), answer]);
        let err = rt.block_on(rpc.fetch_light_block(10)).expect_err("refused");
        assert!(err.to_string().contains("validators 10"), "{err}");
    }
}

/// Found by these properties: base64 whose last block starts with `=` panicked tendermint's decoder (in 0.34
/// events, and in every dialect's ABCI query values). Each call answers with an error naming the chain.
#[test]
fn malformed_base64_in_an_answer_is_an_error_not_a_panic() {
    let node = node();
    let rt = runtime();
    let _guard = LOCK.lock();
    let mut query: Value = serde_json::from_slice(&abci_answer(b"value")).expect("json");
    query["result"]["response"]["value"] = json!("AAAA=A");
    node.answer(vec![query.to_string().into_bytes()]);
    let rpc = CosmosRpc::new("fuzz-0", &node.url, CompatMode::V0_38).expect("client");
    let err = rt
        .block_on(rpc.query_ibc(
            "ibc",
            "clients/07-tendermint-0/clientState",
            QueryHeight::At(9),
            false,
        ))
        .expect_err("refused");
    assert!(err.to_string().contains("fuzz-0"), "{err}");
    let mut results = recorded("block_results_at_height_10.json");
    results["result"]["begin_block_events"] = json!([{"type": "send_packet", "attributes": [{"key": "AAAA=A", "value": "", "index": true}]}]);
    node.answer(vec![results.to_string().into_bytes()]);
    let rpc = CosmosRpc::new("fuzz-0", &node.url, CompatMode::V0_34).expect("client");
    assert!(rt.block_on(rpc.block_results(10)).is_err());
}

#[test]
fn a_node_whose_pages_cycle_gets_an_error_not_a_loop() {
    let node = node();
    let rt = runtime();
    let rpc = CosmosRpc::new("fuzz-0", &node.url, CompatMode::V0_38).expect("client");
    let _guard = LOCK.lock();
    // Pages A, B, A, B, ...: no page repeats the key just asked with, and the listing never ends.
    node.answer(vec![
        channel_page(b"A"),
        channel_page(b"B"),
        channel_page(b"A"),
    ]);
    let err = rt
        .block_on(rpc.channels())
        .expect_err("cycling pages are refused");
    assert!(err.to_string().contains("fuzz-0"), "{err}");
    // A finite listing still reads every page.
    node.answer(vec![
        channel_page(b"A"),
        channel_page(b"B"),
        channel_page(b""),
    ]);
    assert_eq!(rt.block_on(rpc.channels()).expect("three pages").len(), 3);
}

proptest! {
    #![proptest_config(cases(300))]

    /// Recorded answers changed anywhere in their JSON, answered to every call.
    #[test]
    fn mutated_recorded_answers_are_answered(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(any::<Mutation>(), 1..5),
        compat in prop_oneof![Just(CompatMode::V0_34), Just(CompatMode::V0_37), Just(CompatMode::V0_38)],
    ) {
        let node = node();
        let rt = runtime();
        let rpc = CosmosRpc::new("fuzz-0", &node.url, compat).expect("client");
        let _guard = LOCK.lock();
        if pick.index(RECORDED.len() + 1) == RECORDED.len() {
            // A light block: the recorded commit, then a validators answer changed anywhere.
            let validators: Value = serde_json::from_slice(&validators_answer("2", &[validator("10"), validator("7")])).expect("json");
            node.answer(vec![
                recorded("commit_at_height_10.json").to_string().into_bytes(),
                mutated(validators, &mutations).to_string().into_bytes(),
            ]);
        } else {
            let doc = recorded(RECORDED[pick.index(RECORDED.len())]);
            node.answer(vec![mutated(doc, &mutations).to_string().into_bytes()]);
        }
        every_call(&rt, &rpc);
    }

    /// Raw bytes and protobuf-looking ABCI values: an error or a value, never a panic or a hang.
    #[test]
    fn raw_answers_are_answered(
        raw in prop::collection::vec(any::<u8>(), 0..200),
        value in prop::collection::vec(any::<u8>(), 0..200),
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3), 1..4),
    ) {
        let node = node();
        let rt = runtime();
        let rpc = CosmosRpc::new("fuzz-0", &node.url, CompatMode::V0_38).expect("client");
        let _guard = LOCK.lock();
        node.answer(vec![raw]);
        every_call(&rt, &rpc);
        node.answer(vec![abci_answer(&value)]);
        every_call(&rt, &rpc);
        node.answer(keys.iter().map(|k| channel_page(k.as_slice())).collect());
        every_call(&rt, &rpc);
    }
}

/// One node for all cases of a property (a thread and a port each would add up over thousands of cases).
fn node() -> &'static Node {
    static NODE: std::sync::OnceLock<Node> = std::sync::OnceLock::new();
    NODE.get_or_init(Node::start)
}

/// NEAR answers: a recorded `next_light_client_block` envelope and a recorded `light_client_proof` result.
fn near_recorded() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/near-light-client");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).expect("fixture"))
            .expect("json")
    };
    vec![
        read("rpc_result.json"),
        json!({"jsonrpc": "2.0", "id": "dontcare", "result": read("old.json")}),
        json!({"jsonrpc": "2.0", "id": "dontcare", "result": {}}),
        json!({"jsonrpc": "2.0", "id": "dontcare", "error": {"name": "HANDLER_ERROR", "cause": {"name": "UNKNOWN_BLOCK", "info": {}}, "code": -32000, "message": "Server error", "data": "x"}}),
    ]
}

/// Every NEAR call relayd makes whose answer it decodes.
fn near_calls(
    rt: &tokio::runtime::Runtime,
    rpc: &relayd_actors::chain::near::rpc::NearRpc,
) -> bool {
    use near_primitives::hash::CryptoHash;
    use near_primitives::types::TransactionOrReceiptId;
    rt.block_on(async {
        let account: near_primitives::types::AccountId = "ibc.test.near".parse().expect("account");
        let got_block = matches!(
            rpc.next_light_client_block(CryptoHash::default()).await,
            Ok(Some(_))
        );
        let _ = rpc
            .light_client_proof(
                TransactionOrReceiptId::Transaction {
                    transaction_hash: CryptoHash::default(),
                    sender_id: account.clone(),
                },
                CryptoHash::default(),
            )
            .await;
        let _ = rpc.status().await;
        let _ = rpc.block(Some(5)).await;
        let _ = rpc.view_state(&account, b"commitments", 5, true).await;
        let _ = rpc
            .view_call(&account, "get_latest_height", &json!({}), None)
            .await;
        got_block
    })
}

#[test]
fn the_recorded_near_answer_reads_as_a_block() {
    let node = node();
    let rt = runtime();
    let rpc = relayd_actors::chain::near::rpc::NearRpc::new("near-fuzz", &node.url);
    let _guard = LOCK.lock();
    node.answer(vec![near_recorded()[0].to_string().into_bytes()]);
    assert!(near_calls(&rt, &rpc));
}

/// The node is shared; properties that set its answers take turns.
static LOCK: Mutex<()> = Mutex::new(());

proptest! {
    #![proptest_config(cases(300))]

    /// Recorded NEAR answers changed anywhere, answered to every call: no panic.
    #[test]
    fn mutated_near_answers_are_answered(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(any::<Mutation>(), 0..5),
    ) {
        let node = node();
        let rt = runtime();
        let rpc = relayd_actors::chain::near::rpc::NearRpc::new("near-fuzz", &node.url);
        let all = near_recorded();
        let _guard = LOCK.lock();
        node.answer(vec![mutated(all[pick.index(all.len())].clone(), &mutations).to_string().into_bytes()]);
        near_calls(&rt, &rpc);
    }
}
