//! `relayd create connection` and `create channel` between a Cosmos devnet chain and a NEAR devnet, both orders,
//! as an operator runs them after `relayd light init`: relayd creates the clients (a `12-near` client on Cosmos,
//! a Tendermint client on NEAR), sends the INIT (through `deliver` on NEAR), and its handshake builders carry each
//! handshake to OPEN on both ends. Every step is judged by the chain it lands on: ibc-0's 12-near client checks
//! NEAR headers and state proofs, NEAR's Tendermint client checks Cosmos's, and the NEAR devnet checks Cosmos's
//! stored record of NEAR's consensus state against its own block (docs/devnet.md). Both ends are read back from
//! the chains.

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

    /// The value at `p` on NEAR once `done` holds for it: NEAR answers reads from its final block, which trails the
    /// block a handshake's last `deliver` ran in by a block or two.
    async fn on_near_once<T: Message + Default>(&self, p: String, done: impl Fn(&T) -> bool) -> T {
        let mut value = T::default();
        // A hang guard, not a timing assertion.
        for _ in 0..100 {
            value = T::decode(self.on_near(p.clone()).await.as_slice()).unwrap();
            if done(&value) {
                break;
            }
            tokio::time::sleep(BLOCK_TIME).await;
        }
        value
    }
}

/// Runs `create connection` from `a` to `b` and returns (`a`'s connection, `b`'s connection).
async fn create_connection(pair: &NearPair, a: &str, b: &str) -> (String, String) {
    let out = pair
        .json(&["create", "connection", "--a-chain", a, "--b-chain", b])
        .await;
    let id = |end: &str| {
        out[end]["connection_id"]
            .as_str()
            .expect("an id")
            .to_owned()
    };
    (id("a"), id("b"))
}

/// Runs `create channel` on port `transfer` over `a`'s `connection` and returns (`a`'s channel, `b`'s channel).
async fn create_channel(pair: &NearPair, a: &str, connection: &str) -> (String, String) {
    let out = pair
        .json(&[
            "create",
            "channel",
            "--a-chain",
            a,
            "--a-connection",
            connection,
            "--a-port",
            "transfer",
        ])
        .await;
    let id = |end: &str| out[end]["channel_id"].as_str().expect("an id").to_owned();
    (id("a"), id("b"))
}

impl Ends {
    /// Checks both ends of a connection are OPEN and name each other.
    async fn connection_open(&self, cosmos_conn: &str, near_conn: &str, near_prefix: &[u8]) {
        let near_end = self
            .on_near_once(path::connection(near_conn), |e: &ConnectionEnd| {
                e.state == State::Open as i32
            })
            .await;
        let cosmos_end = ConnectionEnd::decode(
            self.on_cosmos(path::connection(cosmos_conn))
                .await
                .as_slice(),
        )
        .unwrap();
        assert_eq!(near_end.state, State::Open as i32, "{near_end:?}");
        assert_eq!(cosmos_end.state, State::Open as i32, "{cosmos_end:?}");
        let near_cp = near_end.counterparty.clone().unwrap();
        let cosmos_cp = cosmos_end.counterparty.clone().unwrap();
        assert!(
            cosmos_end.client_id.starts_with("12-near-"),
            "{cosmos_end:?}"
        );
        assert!(near_end.client_id.starts_with("07-tendermint-"));
        assert_eq!(near_cp.client_id, cosmos_end.client_id);
        assert_eq!(near_cp.connection_id, cosmos_conn);
        assert_eq!(near_cp.prefix.unwrap().key_prefix, b"ibc");
        assert_eq!(cosmos_cp.client_id, near_end.client_id);
        assert_eq!(cosmos_cp.connection_id, near_conn);
        assert_eq!(cosmos_cp.prefix.unwrap().key_prefix, near_prefix);
    }

    /// Checks both ends of a transfer channel are OPEN, name each other and run over the given connections.
    async fn channel_open(&self, cosmos: (&str, &str), near: (&str, &str)) {
        let cosmos_end = Channel::decode(
            self.on_cosmos(path::channel("transfer", cosmos.0))
                .await
                .as_slice(),
        )
        .unwrap();
        let near_end = self
            .on_near_once(path::channel("transfer", near.0), |e: &Channel| {
                e.state == ChanState::Open as i32
            })
            .await;
        for (end, conn, other) in [
            (&cosmos_end, cosmos.1, near.0),
            (&near_end, near.1, cosmos.0),
        ] {
            assert_eq!(end.state, ChanState::Open as i32, "{end:?}");
            assert_eq!(end.connection_hops, vec![conn.to_owned()]);
            let cp = end.counterparty.clone().unwrap();
            assert_eq!(
                (cp.port_id.as_str(), cp.channel_id.as_str()),
                ("transfer", other)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_channels_between_cosmos_and_near_open_whichever_end_starts() {
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

    // Initiated on NEAR (through `deliver`): ibc-0's 12-near client accepts the Try proven from NEAR state, NEAR's
    // Tendermint client the Ack proven from ibc-0's, and NEAR finds ibc-0's record of NEAR true to its block.
    let (near_conn, cosmos_conn) = create_connection(&pair, &near_id, "ibc-0").await;
    ends.connection_open(&cosmos_conn, &near_conn, &near_prefix)
        .await;
    // Initiated on Cosmos: the handshake builder finds the chain the 12-near client tracks by the root relayd's
    // NEAR light client verified at the client's height (the client names no chain); the Try goes to NEAR.
    let (cosmos_conn2, near_conn2) = create_connection(&pair, "ibc-0", &near_id).await;
    ends.connection_open(&cosmos_conn2, &near_conn2, &near_prefix)
        .await;
    assert_ne!(cosmos_conn, cosmos_conn2);

    // Channels over those connections, the INIT on either end.
    let (near_chan, cosmos_chan) = create_channel(&pair, &near_id, &near_conn).await;
    ends.channel_open((&cosmos_chan, &cosmos_conn), (&near_chan, &near_conn))
        .await;
    let (cosmos_chan2, near_chan2) = create_channel(&pair, "ibc-0", &cosmos_conn2).await;
    ends.channel_open((&cosmos_chan2, &cosmos_conn2), (&near_chan2, &near_conn2))
        .await;

    // What NEAR checked against its own block: ibc-0 keeps NEAR consensus states, not a Tendermint shape.
    let cosmos_end = ConnectionEnd::decode(
        ends.on_cosmos(path::connection(&cosmos_conn))
            .await
            .as_slice(),
    )
    .unwrap();
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
