//! `relayd create connection` and `relayd create channel` as an operator runs them against two devnet chains:
//! clients created from verified light blocks, both handshakes finished by relayd's handshake builders and
//! judged by the chains' ibc-rs, and then a transfer relayed by `relayd start` over the new channel; then an ordered
//! channel created while the service runs and closed with `relayd tx chan-close`, the close confirmed by the service.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{add_keys, relayd, BIN};

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1::{Channel, Order, State as ChanState};
use ibc_proto::ibc::core::connection::v1::{ConnectionEnd, State as ConnState};
use ibc_proto::ibc::lightclients::tendermint::v1::ClientState;
use prost::Message;
use support::chain::{Chain, Wallet};
use support::handshake::channel_path;
use support::packet::voucher_denom;

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "relayd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

async fn value(chain: &Chain, path: String) -> Vec<u8> {
    chain
        .query("store/ibc/key", path.into_bytes(), None, false)
        .await
        .expect("query")
        .value
}

async fn ping_end(chain: &Chain, id: &str) -> Channel {
    Channel::decode(value(chain, channel_path("ping", id)).await.as_slice()).unwrap()
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().expect("string").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_connection_and_channel_then_relay_over_them() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The devnet's store is basecoin's AVL+ tree: its proof specs go into the clients relayd creates.
    let (config, keys) = support::relayd::write(dir.path(), &chains, "channel-0");
    let text = std::fs::read_to_string(&config).unwrap();
    let chains_only = text.split("\n[[connections]]").next().unwrap().replace(
        "client_ids = [\"07-tendermint-0\"]\n",
        "client_ids = [\"07-tendermint-0\"]\nproof_specs = [\"jmt\", \"jmt\"]\n",
    );
    std::fs::write(&config, &chains_only).unwrap();
    add_keys(&config, &keys);

    let created = json(&relayd(
        &config,
        &[
            "create",
            "connection",
            "--a-chain",
            "ibc-0",
            "--b-chain",
            "ibc-1",
            "--json",
        ],
    ));
    let (a, b) = (Chain::connect(&chains[0]), Chain::connect(&chains[1]));
    let (a_conn, b_conn) = (
        s(&created["a"]["connection_id"]),
        s(&created["b"]["connection_id"]),
    );
    let (a_client, b_client) = (s(&created["a"]["client_id"]), s(&created["b"]["client_id"]));
    let end_a =
        ConnectionEnd::decode(value(&a, format!("connections/{a_conn}")).await.as_slice()).unwrap();
    let end_b =
        ConnectionEnd::decode(value(&b, format!("connections/{b_conn}")).await.as_slice()).unwrap();
    assert_eq!(end_a.state, ConnState::Open as i32);
    assert_eq!(end_b.state, ConnState::Open as i32);
    assert_eq!(
        (end_a.client_id.as_str(), end_b.client_id.as_str()),
        (a_client.as_str(), b_client.as_str())
    );
    assert_eq!(end_a.counterparty.unwrap().connection_id, b_conn);
    // Each created client tracks the other chain.
    let tracked = |raw: Vec<u8>| {
        let any = Any::decode(raw.as_slice()).unwrap();
        ClientState::decode(any.value.as_slice()).unwrap().chain_id
    };
    assert_eq!(
        tracked(value(&a, format!("clients/{a_client}/clientState")).await),
        "ibc-1"
    );
    assert_eq!(
        tracked(value(&b, format!("clients/{b_client}/clientState")).await),
        "ibc-0"
    );

    let created = json(&relayd(
        &config,
        &[
            "create",
            "channel",
            "--a-chain",
            "ibc-0",
            "--a-connection",
            &a_conn,
            "--a-port",
            "transfer",
            "--json",
        ],
    ));
    let (a_chan, b_chan) = (
        s(&created["a"]["channel_id"]),
        s(&created["b"]["channel_id"]),
    );
    let chan_a = Channel::decode(
        value(&a, channel_path("transfer", &a_chan))
            .await
            .as_slice(),
    )
    .unwrap();
    let chan_b = Channel::decode(
        value(&b, channel_path("transfer", &b_chan))
            .await
            .as_slice(),
    )
    .unwrap();
    assert_eq!(chan_a.state, ChanState::Open as i32);
    assert_eq!(chan_b.state, ChanState::Open as i32);
    assert_eq!(chan_b.ordering, Order::Unordered as i32);
    assert_eq!(chan_b.connection_hops, vec![b_conn.clone()]);
    assert_eq!(chan_b.counterparty.unwrap().channel_id, a_chan);

    // The new path carries packets: relayd start relays a transfer over it.
    let with_path = format!(
        "{chains_only}\n[[connections]]\nsrc = {{ chain_id = \"ibc-0\", client_id = \"{a_client}\" }}\ndest = {{ chain_id = \"ibc-1\", client_id = \"{b_client}\" }}\npaths = [{{ src_port = \"transfer\", src_channel = \"{a_chan}\", dest_port = \"transfer\" }}]\n"
    );
    std::fs::write(&config, with_path).unwrap();
    let log = std::fs::File::create(dir.path().join("relayd.log")).unwrap();
    let mut service = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .arg("start")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let receiver = Wallet::genesis(&chains[1], "user2");
    let sent = relayd(
        &config,
        &[
            "tx",
            "transfer",
            "--src-chain",
            "ibc-0",
            "--dst-chain",
            "ibc-1",
            "--port",
            "transfer",
            "--channel",
            &a_chan,
            "--amount",
            "5stake",
            "--receiver",
            &receiver.address,
            "--count",
            "3",
        ],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let denom = voucher_denom("transfer", &b_chan, "stake");
    let mut relayed = 0;
    for _ in 0..600 {
        relayed = b.balance(&receiver.address, &denom).await;
        if relayed == 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        relayed, 15,
        "three transfers of 5 relayed over the created channel"
    );

    // An ordered channel of the devnet's ping application, created while the service runs, then closed by
    // `relayd tx chan-close` on ibc-1: the service confirms the close on ibc-0.
    let created = json(&relayd(
        &config,
        &[
            "create",
            "channel",
            "--a-chain",
            "ibc-0",
            "--a-connection",
            &a_conn,
            "--a-port",
            "ping",
            "--channel-version",
            "ping-1",
            "--ordered",
            "--json",
        ],
    ));
    let (a_ping, b_ping) = (
        s(&created["a"]["channel_id"]),
        s(&created["b"]["channel_id"]),
    );
    let opened = ping_end(&b, &b_ping).await;
    assert_eq!(
        (opened.state, opened.ordering),
        (ChanState::Open as i32, Order::Ordered as i32)
    );
    let closed = json(&relayd(
        &config,
        &[
            "tx",
            "chan-close",
            "--chain",
            "ibc-1",
            "--port",
            "ping",
            "--channel",
            &b_ping,
            "--json",
        ],
    ));
    assert_eq!(closed["channel"], b_ping.as_str());
    assert_eq!(ping_end(&b, &b_ping).await.state, ChanState::Closed as i32);
    let mut confirmed = false;
    for _ in 0..600 {
        if ping_end(&a, &a_ping).await.state == ChanState::Closed as i32 {
            confirmed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = Command::new("kill").arg(service.id().to_string()).status();
    let _ = service.wait();
    assert!(confirmed, "the service confirmed the close on ibc-0");
}
