//! `relayd create connection` (and `create channel` over what it opened) between a Cosmos devnet chain and a NEAR
//! devnet, both orders, as an operator runs them after `relayd light init`: relayd creates the clients (a `12-near` client on Cosmos, a Tendermint client on
//! NEAR), sends the INIT (through `deliver` on NEAR), and its handshake builders carry the handshake as far as the
//! devnets let it today: ConnOpenTry on Cosmos with NEAR proofs passes; the step where NEAR checks Cosmos's
//! stored record of NEAR's consensus state (ConnOpenTry or ConnOpenAck on NEAR) is refused, because the NEAR
//! devnet compares it with a Tendermint-shaped host consensus state a `12-near` client never stores
//! (docs/devnet.md). Both ends are read back from the chains.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_pair.rs"]
#[allow(dead_code)]
mod near_pair;

use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1::{Channel, State as ChanState};
use ibc_proto::ibc::core::connection::v1::{ConnectionEnd, State};
use near_pair::NearPair;
use prost::Message;
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::factory::commitment_prefix;
use relayd_actors::chain::near::header::{RawNearClientState, NEAR_CONSENSUS_STATE_TYPE_URL};
use relayd_actors::chain::near::rpc::NearRpc;
use support::chain::Chain;

const BLOCK_TIME: Duration = Duration::from_millis(200);

/// The value stored at ICS-24 `p` on each chain.
struct Ends {
    cosmos: Chain,
    near: NearEndpoint,
}

impl Ends {
    async fn on_cosmos(&self, p: String) -> Vec<u8> {
        self.cosmos
            .query("store/ibc/key", p.into_bytes(), None, false)
            .await
            .expect("query")
            .value
    }

    async fn on_near(&self, p: String) -> Vec<u8> {
        self.near
            .query_ibc(&p, QueryHeight::Latest, false)
            .await
            .expect("query")
            .value
    }
}

/// The connection ids `create connection` printed it initialised (stderr: "<chain>: <id> initialised").
fn initialised(stderr: &str, chain: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("{chain}: connection-")) && l.contains("initialised"))
        .unwrap_or_else(|| panic!("no INIT on {chain}: {stderr}"));
    let from = line.find("connection-").unwrap();
    line[from..].split(' ').next().unwrap().to_owned()
}

/// Runs `create connection` from `a` to `b`; it must fail where the NEAR devnet refuses `datagram` (the NEAR end
/// checking Cosmos's record of NEAR's consensus state). Returns the connection initialised on `a`.
async fn create_until_refused(pair: &NearPair, a: &str, b: &str, datagram: &str) -> String {
    let out = pair
        .run(&["create", "connection", "--a-chain", a, "--b-chain", b])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: deliver", pair.near_id))
            && stderr.contains(&format!("(/ibc.core.connection.v1.{datagram})")),
        "{stderr}"
    );
    initialised(&stderr, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_handshakes_between_cosmos_and_near_reach_nears_consensus_state_check() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    pair.vouch(5).await;
    let ends = Ends {
        cosmos: Chain::connect(&pair.cosmos[0]),
        near: NearEndpoint::new(
            NearRpc::new(&pair.near_id, &pair.near.rpc_url()),
            pair.contract.parse().unwrap(),
        ),
    };
    let near_id = pair.near_id.clone();
    let contract = pair.contract.parse().unwrap();
    let near_prefix = commitment_prefix(&contract);

    // Initiated on NEAR (through `deliver`): relayd proves NEAR's INIT end, NEAR's Tendermint client of ibc-0 and
    // its consensus state with NEAR state proofs, and ibc-0's 12-near client accepts them (ConnOpenTry); the Ack
    // on NEAR is then refused.
    let near_conn = create_until_refused(&pair, &near_id, "ibc-0", "MsgConnectionOpenAck").await;
    let near_end =
        ConnectionEnd::decode(ends.on_near(path::connection(&near_conn)).await.as_slice()).unwrap();
    assert_eq!(near_end.state, State::Init as i32);
    let near_cp = near_end.counterparty.unwrap();
    assert!(near_cp.client_id.starts_with("12-near-"), "{near_cp:?}");
    assert_eq!(near_cp.prefix.unwrap().key_prefix, b"ibc");
    // ibc-0 is fresh: the Try made its first connection.
    let cosmos_conn = "connection-0";
    let cosmos_end = ConnectionEnd::decode(
        ends.on_cosmos(path::connection(cosmos_conn))
            .await
            .as_slice(),
    )
    .unwrap();
    assert_eq!(cosmos_end.state, State::Tryopen as i32, "{cosmos_end:?}");
    assert_eq!(cosmos_end.client_id, near_cp.client_id);
    let cosmos_cp = cosmos_end.counterparty.unwrap();
    assert_eq!(cosmos_cp.connection_id, near_conn);
    assert_eq!(cosmos_cp.client_id, near_end.client_id);
    assert_eq!(cosmos_cp.prefix.unwrap().key_prefix, near_prefix);

    // Initiated on Cosmos: the INIT names NEAR's commitment prefix, and the handshake builder finds the chain the
    // 12-near client tracks by the root relayd's NEAR light client verified at the client's height (it names no
    // chain); the ConnOpenTry it builds goes to NEAR, which refuses it.
    let cosmos_conn = create_until_refused(&pair, "ibc-0", &near_id, "MsgConnectionOpenTry").await;
    let cosmos_end = ConnectionEnd::decode(
        ends.on_cosmos(path::connection(&cosmos_conn))
            .await
            .as_slice(),
    )
    .unwrap();
    assert_eq!(cosmos_end.state, State::Init as i32);
    assert!(cosmos_end.client_id.starts_with("12-near-"));
    assert_eq!(
        cosmos_end.counterparty.unwrap().prefix.unwrap().key_prefix,
        near_prefix
    );
    // Channels over those connections: `create channel` sends the INIT on either end (through `deliver` on NEAR)
    // and finds the counterparty chain (named by NEAR's Tendermint client; by the verified root for ibc-0's
    // 12-near client); the Try is refused where the connection is not open.
    let checks = [
        // NEAR's connection never learnt ibc-0's: no connection to open the channel over there.
        (
            near_id.as_str(),
            near_conn.as_str(),
            format!("{near_id}: {near_conn} does not name its counterparty connection yet"),
        ),
        // ibc-0's TRYOPEN connection names NEAR's: ChanOpenTry goes to NEAR, whose connection is not open.
        (
            "ibc-0",
            "connection-0",
            "(/ibc.core.channel.v1.MsgChannelOpenTry)".to_owned(),
        ),
    ];
    for (a, conn, why) in checks {
        let out = pair
            .run(&[
                "create",
                "channel",
                "--a-chain",
                a,
                "--a-connection",
                conn,
                "--a-port",
                "transfer",
            ])
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("{a}: transfer/channel-0 initialised")),
            "{stderr}"
        );
        assert!(stderr.contains(&why), "{stderr}");
        let raw = if a == "ibc-0" {
            ends.on_cosmos(path::channel("transfer", "channel-0")).await
        } else {
            ends.on_near(path::channel("transfer", "channel-0")).await
        };
        let end = Channel::decode(raw.as_slice()).unwrap();
        assert_eq!(end.state, ChanState::Init as i32);
        assert_eq!(end.connection_hops, vec![conn.to_owned()]);
        assert_eq!(end.counterparty.unwrap().port_id, "transfer");
    }

    // What NEAR compared with its Tendermint-shaped host consensus state: a NEAR consensus state.
    let client = cosmos_end.client_id;
    let state = Any::decode(ends.on_cosmos(path::client_state(&client)).await.as_slice()).unwrap();
    let latest = RawNearClientState::decode(state.value.as_slice())
        .unwrap()
        .latest_height;
    let consensus = ends
        .on_cosmos(path::consensus_state(&client, 0, latest))
        .await;
    assert_eq!(
        Any::decode(consensus.as_slice()).unwrap().type_url,
        NEAR_CONSENSUS_STATE_TYPE_URL
    );
    pair.near.shutdown().await;
}

/// A `12-near` client is matched to a configured NEAR chain by evidence, not assumed: with the only configured
/// NEAR chain served by another NEAR network under the same chain id, the handshake builder finds no verified
/// block with the client's root and the handshake is refused before any datagram reaches NEAR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_12_near_client_of_another_near_network_is_not_taken_for_the_configured_one() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    pair.vouch(5).await;
    let created = pair
        .json(&[
            "create",
            "client",
            "--host-chain",
            "ibc-0",
            "--reference-chain",
            &pair.near_id,
        ])
        .await;
    let client = created["client_id"].as_str().unwrap().to_owned();
    assert!(client.starts_with("12-near-"), "{client}");

    // A second NEAR network with the same chain id, configured in the first one's place.
    let home = pair.dir.path().join("near-other");
    let other = near_pair::start_near(BLOCK_TIME, 20, home.clone()).await;
    assert_eq!(other.chain_id(), pair.near_id);
    let config = pair.dir.path().join("other.toml");
    pair.write_config(&config, "data-other", &other, &home);
    pair.vouch_with(&config, &other, 5).await;

    let out = pair
        .run_with(
            &config,
            &[
                "create",
                "connection",
                "--a-chain",
                "ibc-0",
                "--b-chain",
                &pair.near_id,
                "--a-client",
                &client,
            ],
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{client}: no relayed NEAR chain's verified block at"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("MsgConnectionOpenTry"), "{stderr}");
    // The NEAR node is not blamed: the answer came from relayd's light client, not a failing node.
    assert!(!stderr.contains("circuit open"), "{stderr}");
    other.shutdown().await;
    pair.near.shutdown().await;
}
