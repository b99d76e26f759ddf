//! A chain kept under its home survives its process: stopped and started again on the same home and ports, it
//! is the same chain (same block ids, same balances and account sequences) and goes on producing; the `devnet`
//! binary does the same after a SIGKILL, and so does `devnet near --persist`.

#[allow(dead_code)]
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use cosmrs::proto::cosmos::bank::v1beta1::MsgSend;
use cosmrs::proto::cosmos::base::v1beta1::Coin;
use devnet::genesis::DENOM;
use devnet::{start_chain, ChainOptions, RunningChain};
use ibc_proto::google::protobuf::Any;
use prost::Message;
use support::chain::{Chain, Wallet};
use tendermint_rpc::{Client, HttpClient};

fn send(from: &Wallet, to: &str, amount: u128) -> Any {
    Any {
        type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
        value: MsgSend {
            from_address: from.address.clone(),
            to_address: to.into(),
            amount: vec![Coin {
                denom: DENOM.into(),
                amount: amount.to_string(),
            }],
        }
        .encode_to_vec(),
    }
}

fn options(home: &std::path::Path, rpc: u16, grpc: u16) -> ChainOptions {
    let mut opts = ChainOptions::local("ibc-0", Duration::from_millis(150));
    opts.home = Some(home.to_owned());
    opts.persist = true;
    opts.rpc_addr = ([127, 0, 0, 1], rpc).into();
    opts.grpc_addr = ([127, 0, 0, 1], grpc).into();
    opts
}

async fn block_id(chain: &RunningChain, height: u64) -> tendermint::Hash {
    let rpc = HttpClient::new(chain.rpc_url().as_str()).unwrap();
    rpc.block(tendermint::block::Height::try_from(height).unwrap())
        .await
        .unwrap()
        .block_id
        .hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_chain_starts_again_as_the_same_chain() {
    let home = tempfile::tempdir().unwrap();
    let first = start_chain(options(home.path(), 0, 0)).await.unwrap();
    let (rpc_port, grpc_port) = (first.rpc_addr.port(), first.grpc_addr.port());
    let chain = Chain::connect(&first);
    let user1 = Wallet::genesis(&first, "user1");
    let user2 = Wallet::genesis(&first, "user2");
    let included = chain
        .submit(&user1, &[send(&user1, &user2.address, 1234)])
        .await;
    first.wait_for_height(included.height + 2).await;
    let height = first.node.record().unwrap().latest_height();
    let id = block_id(&first, included.height).await;
    let balance = chain.balance(&user2.address, DENOM).await;
    let sequence = chain.account(&user1.address).await;
    first.shutdown().await;

    // Same home, same ports: a client that knew the chain finds it again.
    let second = start_chain(options(home.path(), rpc_port, grpc_port))
        .await
        .unwrap();
    assert!(second.node.record().unwrap().latest_height() >= height);
    assert_eq!(block_id(&second, included.height).await, id);
    let chain = Chain::connect(&second);
    assert_eq!(chain.balance(&user2.address, DENOM).await, balance);
    assert_eq!(chain.account(&user1.address).await, sequence);
    // The keys are the stored chain's, and it takes new transactions on top of the old ones.
    assert_eq!(Wallet::genesis(&second, "user1").address, user1.address);
    let again = chain
        .submit(&user1, &[send(&user1, &user2.address, 1)])
        .await;
    assert!(again.height > height);
    assert_eq!(chain.balance(&user2.address, DENOM).await, balance + 1);
    second.shutdown().await;

    // Another chain id on this home is refused.
    let mut other = options(home.path(), 0, 0);
    other.genesis.chain_id = "ibc-1".into();
    let err = start_chain(other).await.err().expect("refused");
    assert!(err.to_string().contains("holds chain ibc-0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_survives_sigkill_with_its_blocks() {
    let home = tempfile::tempdir().unwrap();
    let spawn = |rpc: &str| {
        Command::new(env!("CARGO_BIN_EXE_devnet"))
            .args([
                "--persist",
                "--block-time",
                "150ms",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .args(["--rpc-addr", rpc, "--home"])
            .arg(home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let rpc = HttpClient::new(format!("http://{addr}").as_str()).unwrap();
    let height_at_least = |h: u64| {
        let rpc = rpc.clone();
        async move {
            for _ in 0..400 {
                if let Ok(s) = rpc.status().await {
                    if s.sync_info.latest_block_height.value() >= h {
                        return s.sync_info.latest_block_height.value();
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the devnet did not reach height {h}");
        }
    };
    let mut node = spawn(&addr);
    let before = height_at_least(8).await;
    let id = rpc.block(5u32).await.unwrap().block_id.hash;
    node.kill().unwrap();
    node.wait().unwrap();

    let mut node = spawn(&addr);
    height_at_least(before + 3).await;
    assert_eq!(rpc.block(5u32).await.unwrap().block_id.hash, id);
    // No gap and no fork at the restart: every header links to the block before it.
    for h in (before - 1)..=(before + 2) {
        let header = rpc.block(h as u32).await.unwrap().block.header;
        let prev = rpc.block((h - 1) as u32).await.unwrap().block_id;
        assert_eq!(header.last_block_id, Some(prev), "height {h}");
    }
    node.kill().unwrap();
    node.wait().unwrap();
}

async fn near_block(
    rpc: &near_jsonrpc_client::JsonRpcClient,
    height: Option<u64>,
) -> Option<near_primitives::views::BlockView> {
    use near_primitives::types::{BlockId, BlockReference};
    let block_reference = height.map_or_else(BlockReference::latest, |h| {
        BlockReference::BlockId(BlockId::Height(h))
    });
    rpc.call(near_jsonrpc_client::methods::block::RpcBlockRequest { block_reference })
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_binary_survives_sigkill_as_the_same_chain() {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_devnet"))
            .args(["near", "--persist", "--block-time", "150ms"])
            .args(["--epoch-length", "5", "--rpc-addr", &addr, "--home"])
            .arg(home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let rpc = near_jsonrpc_client::JsonRpcClient::connect(format!("http://{addr}"));
    let height_at_least = |h: u64| {
        let rpc = rpc.clone();
        async move {
            for _ in 0..400 {
                if let Some(b) = near_block(&rpc, None).await {
                    if b.header.height >= h {
                        return b.header.height;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the NEAR devnet did not reach height {h}");
        }
    };
    let mut node = spawn();
    // Past two epochs, so the restarted chain must rebuild epoch ids and producer sets too.
    let before = height_at_least(12).await;
    let keys = std::fs::read(home.path().join("keys/relayer.devnet.json")).unwrap();
    let hash = near_block(&rpc, Some(7)).await.unwrap().header.hash;
    node.kill().unwrap();
    node.wait().unwrap();

    let mut node = spawn();
    height_at_least(before + 3).await;
    assert_eq!(near_block(&rpc, Some(7)).await.unwrap().header.hash, hash);
    assert_eq!(
        std::fs::read(home.path().join("keys/relayer.devnet.json")).unwrap(),
        keys
    );
    // No gap and no fork at the restart: every header links to the block before it.
    for h in (before - 1)..=(before + 2) {
        let block = near_block(&rpc, Some(h)).await.unwrap();
        let prev = near_block(&rpc, Some(h - 1)).await.unwrap();
        assert_eq!(block.header.prev_hash, prev.header.hash, "height {h}");
    }
    node.kill().unwrap();
    node.wait().unwrap();
}
