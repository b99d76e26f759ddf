//! NEAR as the verifying side of a connection handshake, against the NEAR devnet: ConnOpenTry delivered to NEAR
//! (through relayd's `deliver` submitter, with Cosmos proofs relayd read and a client update its Cosmos light
//! client verified) passes only when the Cosmos chain's connection end records NEAR's commitment prefix as a
//! near-ibc contract has it, `[9] ++ contract ++ ","` (relayd's `commitment_prefix`), and is refused when it
//! records another prefix. The connection, and a channel opened over it, then show in the contract's listings.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use ibc_proto::google::protobuf::{Any, Timestamp};
use ibc_proto::ibc::core::channel::v1::{
    Channel, Counterparty as ChanCounterparty, MsgChannelOpenInit, Order, State as ChanState,
};
use ibc_proto::ibc::core::client::v1::{Height, MsgCreateClient};
use ibc_proto::ibc::core::commitment::v1::{MerklePrefix, MerkleRoot};
use ibc_proto::ibc::core::connection::v1::{
    ConnectionEnd, Counterparty, MsgConnectionOpenInit, MsgConnectionOpenTry, State,
};
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState, Fraction};
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, update_client_msgs, ClientParams};
use relayd_actors::chain::cosmos::endpoint::CosmosEndpoint;
use relayd_actors::chain::cosmos::light_client::{headers_to, TrustOptions};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::factory::commitment_prefix;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::tx::{NearTxConfig, NearTxError, NearTxSubmitter};
use relayd_messages::IbcEvent;
use support::chain::Chain;
use support::light::{any, unbonding_period};
use tendermint_light_client_verifier::types::{LightBlock, TrustThreshold};

const BLOCK_TIME: Duration = Duration::from_millis(200);

fn pb_duration(d: Duration) -> ibc_proto::google::protobuf::Duration {
    ibc_proto::google::protobuf::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The Cosmos side of the path: ibc-0, its client of NEAR, and relayd's light client state for NEAR's client of
/// ibc-0.
struct Path {
    chain: Chain,
    src: CosmosRpc,
    client_on_cosmos: String,
    client_on_near: String,
    trusted: LightBlock,
    trust: TrustOptions,
}

/// ConnOpenInit on ibc-0 naming `prefix` as NEAR's commitment prefix; returns the connection id.
async fn open_init(path: &Path, prefix: &[u8]) -> String {
    let init = MsgConnectionOpenInit {
        client_id: path.client_on_cosmos.clone(),
        counterparty: Some(Counterparty {
            client_id: path.client_on_near.clone(),
            connection_id: String::new(),
            prefix: Some(MerklePrefix {
                key_prefix: prefix.to_vec(),
            }),
        }),
        version: None,
        delay_period: 0,
        signer: path.chain.relayer.address.clone(),
    };
    path.chain
        .submit(
            &path.chain.relayer,
            &[any("/ibc.core.connection.v1.MsgConnectionOpenInit", &init)],
        )
        .await
        .attr("connection_open_init", "connection_id")
        .expect("connection id")
}

/// The update of NEAR's client of ibc-0 to `h + 1` and ConnOpenTry for `connection` proven at `h`.
async fn open_try(path: &mut Path, connection: &str, signer: &str) -> Vec<Any> {
    let h = path.chain.height().await;
    while path.src.status().await.unwrap().1 < h + 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let headers = headers_to(
        "ibc-0",
        &path.src,
        &path.trusted,
        h + 1,
        &path.trust,
        tendermint::Time::now(),
    )
    .await
    .unwrap();
    let mut msgs = update_client_msgs(&path.client_on_near, &path.trusted, &headers, signer);
    path.trusted = headers.last().unwrap().clone();

    let cosmos = CosmosEndpoint::new(path.src.clone(), "ibc");
    let read = |p: String| {
        let cosmos = cosmos.clone();
        async move {
            cosmos
                .query_ibc(&p, QueryHeight::At(h), true)
                .await
                .unwrap()
        }
    };
    let conn = read(path::connection(connection)).await;
    let end = ConnectionEnd::decode(conn.value.as_slice()).unwrap();
    let client = read(path::client_state(&path.client_on_cosmos)).await;
    let client_state = Any::decode(client.value.as_slice()).unwrap();
    let consensus_height = ClientState::decode(client_state.value.as_slice())
        .unwrap()
        .latest_height
        .unwrap();
    let consensus = read(path::consensus_state(
        &path.client_on_cosmos,
        consensus_height.revision_number,
        consensus_height.revision_height,
    ))
    .await;
    #[allow(deprecated)]
    let try_msg = MsgConnectionOpenTry {
        client_id: path.client_on_near.clone(),
        client_state: Some(client_state),
        counterparty: Some(Counterparty {
            client_id: path.client_on_cosmos.clone(),
            connection_id: connection.to_owned(),
            prefix: Some(MerklePrefix {
                key_prefix: b"ibc".to_vec(),
            }),
        }),
        delay_period: 0,
        counterparty_versions: end.versions,
        proof_height: Some(Height {
            revision_number: 0,
            revision_height: h + 1,
        }),
        proof_init: conn.proof.unwrap(),
        proof_client: client.proof.unwrap(),
        proof_consensus: consensus.proof.unwrap(),
        consensus_height: Some(consensus_height),
        signer: signer.to_owned(),
        ..Default::default()
    };
    msgs.push(any(
        "/ibc.core.connection.v1.MsgConnectionOpenTry",
        &try_msg,
    ));
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_open_try_on_near_checks_the_counterpartys_record_of_nears_commitment_prefix() {
    let cosmos = devnet::start_chain(devnet::ChainOptions::local("ibc-0", BLOCK_TIME))
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.home = Some(home.path().to_path_buf());
    let near = devnet::near::start(options).await.unwrap();
    near.wait_for_height(3).await;
    cosmos.wait_for_height(3).await;

    let relayer = near.genesis.relayer.account_id.clone();
    let contract = near.genesis.ibc.account_id.clone();
    let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
    let signer = load_signer(
        &home.path().join("keys").join(format!("{relayer}.json")),
        Some(relayer.as_str()),
    )
    .unwrap();
    let submitter = NearTxSubmitter::new(
        rpc.clone(),
        signer,
        contract.clone(),
        NearTxConfig::default(),
    );
    let endpoint = NearEndpoint::new(rpc.clone(), contract.clone());

    // NEAR's Tendermint client of ibc-0.
    let chain = Chain::connect(&cosmos);
    let src = CosmosRpc::connect("ibc-0", &cosmos.rpc_url())
        .await
        .unwrap();
    let root_height = src.status().await.unwrap().1 - 1;
    let root = src.fetch_light_block(root_height).await.unwrap();
    let unbonding = unbonding_period(&chain).await;
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: unbonding * 2 / 3,
        unbonding_period: unbonding,
        max_clock_drift: Duration::from_secs(20),
        proof_specs: vec![support::proof::spec(), support::proof::spec()],
    };
    let created = submitter
        .submit(&[create_client_msg(&root, &params, relayer.as_str())])
        .await
        .unwrap();
    let mut client_on_near = None;
    for hash in &created.receipt_blocks {
        let height = rpc.block_by_hash(*hash).await.unwrap().header.height;
        for event in endpoint.ibc_events_at(height).await.unwrap() {
            if let IbcEvent::CreateClient { client_id, .. } = event.event {
                client_on_near = Some(client_id.to_string());
            }
        }
    }
    let client_on_near = client_on_near.expect("create_client event");

    // ibc-0's Tendermint-shaped client of NEAR, whose consensus state is NEAR's own record of one of its blocks
    // (what ConnOpenTry on NEAR compares it with: root = the block's chunk state root, next validators hash =
    // its next_bp_hash). ibc-0 never verifies NEAR proofs in this test.
    let near_block = rpc.block(None).await.unwrap();
    let near_height = near_block.header.height;
    #[allow(deprecated)]
    let client_state = ClientState {
        chain_id: near.chain_id().to_owned(),
        trust_level: Some(Fraction {
            numerator: 1,
            denominator: 3,
        }),
        trusting_period: Some(pb_duration(Duration::from_secs(10 * 24 * 3600))),
        unbonding_period: Some(pb_duration(Duration::from_secs(14 * 24 * 3600))),
        max_clock_drift: Some(pb_duration(Duration::from_secs(20))),
        frozen_height: Some(Height::default()),
        latest_height: Some(Height {
            revision_number: 0,
            revision_height: near_height,
        }),
        proof_specs: vec![support::proof::spec(), support::proof::spec()],
        upgrade_path: vec![],
        allow_update_after_expiry: false,
        allow_update_after_misbehaviour: false,
    };
    let ns = near_block.header.timestamp_nanosec;
    let consensus_state = ConsensusState {
        timestamp: Some(Timestamp {
            seconds: (ns / 1_000_000_000) as i64,
            nanos: (ns % 1_000_000_000) as i32,
        }),
        root: Some(MerkleRoot {
            hash: near_block.chunks[0].prev_state_root.0.to_vec(),
        }),
        next_validators_hash: near_block.header.next_bp_hash.0.to_vec(),
    };
    let create = MsgCreateClient {
        client_state: Some(any(
            "/ibc.lightclients.tendermint.v1.ClientState",
            &client_state,
        )),
        consensus_state: Some(any(
            "/ibc.lightclients.tendermint.v1.ConsensusState",
            &consensus_state,
        )),
        signer: chain.relayer.address.clone(),
    };
    let client_on_cosmos = chain
        .submit(
            &chain.relayer,
            &[any("/ibc.core.client.v1.MsgCreateClient", &create)],
        )
        .await
        .attr("create_client", "client_id")
        .expect("client id");

    let mut path = Path {
        chain,
        src,
        client_on_cosmos,
        client_on_near,
        trusted: root,
        trust: TrustOptions {
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period: params.trusting_period,
            clock_drift: params.max_clock_drift,
        },
    };

    // ibc-0 was told ibc-testkit's `mock` as NEAR's prefix: NEAR refuses the Try (its update goes through).
    let wrong = open_init(&path, b"mock").await;
    let msgs = open_try(&mut path, &wrong, relayer.as_str()).await;
    match submitter.submit(&msgs).await {
        Err(NearTxError::MessageRefused { logs, .. }) => {
            let refused: Vec<&String> = logs
                .iter()
                .filter(|l| l.starts_with("Error occurred in processing message"))
                .collect();
            assert_eq!(refused.len(), 1, "{logs:?}");
            assert!(refused[0].contains("MsgConnectionOpenTry"), "{logs:?}");
        }
        other => panic!("expected ConnOpenTry to be refused, got {other:?}"),
    }

    // ibc-0 was told NEAR's real prefix, the one relayd's NEAR link carries: NEAR accepts the Try.
    let prefix = commitment_prefix(&contract);
    assert_eq!(endpoint.commitment_prefix().await.unwrap(), prefix);
    let right = open_init(&path, &prefix).await;
    let msgs = open_try(&mut path, &right, relayer.as_str()).await;
    let done = submitter.submit(&msgs).await.unwrap();
    let mut opened = None;
    for hash in &done.receipt_blocks {
        let height = rpc.block_by_hash(*hash).await.unwrap().header.height;
        for event in endpoint.ibc_events_at(height).await.unwrap() {
            if let IbcEvent::ConnectionOpenTry(attrs) = event.event {
                opened = Some((attrs, height));
            }
        }
    }
    let (opened, at) = opened.expect("connection_open_try event");
    let id = opened.connection_id.to_string();
    // The state after the block the Try ran in.
    let stored = endpoint
        .query_ibc(&path::connection(&id), QueryHeight::At(at), false)
        .await
        .unwrap();
    let end = ConnectionEnd::decode(stored.value.as_slice()).unwrap();
    assert_eq!(end.state, State::Tryopen as i32);
    assert_eq!(end.client_id, path.client_on_near);
    let counterparty = end.counterparty.unwrap();
    assert_eq!(counterparty.connection_id, right);
    assert_eq!(counterparty.prefix.unwrap().key_prefix, b"ibc");

    // The contract's listings name it (the refused Try left no connection behind).
    assert_eq!(endpoint.connections().await.unwrap(), vec![id.clone()]);
    assert_eq!(
        endpoint
            .client_connections(&path.client_on_near)
            .await
            .unwrap(),
        vec![id.clone()]
    );
    assert!(endpoint
        .client_connections("07-tendermint-99")
        .await
        .unwrap()
        .is_empty());
    assert!(endpoint.channels().await.unwrap().is_empty());

    // ChanOpenInit on NEAR over that connection (ICS-04 allows it before the connection is open).
    let init = MsgChannelOpenInit {
        port_id: "transfer".to_owned(),
        channel: Some(Channel {
            state: ChanState::Init as i32,
            ordering: Order::Unordered as i32,
            counterparty: Some(ChanCounterparty {
                port_id: "transfer".to_owned(),
                channel_id: String::new(),
            }),
            connection_hops: vec![id.clone()],
            version: "ics20-1".to_owned(),
            upgrade_sequence: 0,
        }),
        signer: relayer.to_string(),
    };
    submitter
        .submit(&[any("/ibc.core.channel.v1.MsgChannelOpenInit", &init)])
        .await
        .unwrap();
    let channel = ("transfer".to_owned(), "channel-0".to_owned());
    assert_eq!(endpoint.channels().await.unwrap(), vec![channel.clone()]);
    assert_eq!(
        endpoint.connection_channels(&id).await.unwrap(),
        vec![channel]
    );
    assert!(endpoint
        .connection_channels("connection-99")
        .await
        .unwrap()
        .is_empty());

    near.shutdown().await;
    cosmos.shutdown().await;
}
