//! One devnet chain driven through its real endpoints: a bank transfer signed with cosmrs and broadcast over
//! JSON-RPC, its events pushed over the WebSocket, balances read over ABCI and gRPC, and a state proof that
//! verifies against the app hash of the next header, which itself verifies with the light-client verifier.

use std::time::Duration;

use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::bank::v1beta1::{MsgSend, QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use devnet::genesis::{GenesisOptions, DENOM, GENESIS_BALANCE};
use devnet::{start_chain, ChainOptions, RunningChain};
use futures::StreamExt;
use prost::Message;
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{LightBlock, TrustThreshold};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::query::EventType;
use tendermint_rpc::{Client, HttpClient, SubscriptionClient, WebSocketClient};

/// Bounds every wait so a broken chain fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

async fn chain() -> RunningChain {
    let mut opts = ChainOptions::local("ibc-0", Duration::from_millis(200));
    opts.genesis = GenesisOptions {
        chain_id: "ibc-0".into(),
        seed: Some("chain-test".into()),
        ..GenesisOptions::default()
    };
    start_chain(opts).await.expect("chain starts")
}

fn http(chain: &RunningChain) -> HttpClient {
    HttpClient::builder(chain.rpc_url().parse().unwrap())
        .compat_mode(CompatMode::V0_38)
        .build()
        .unwrap()
}

async fn abci<Req: Message, Resp: Message + Default>(
    client: &HttpClient,
    path: &str,
    req: Req,
    height: Option<u64>,
) -> Resp {
    let height = height.map(|h| h.try_into().unwrap());
    let res = client
        .abci_query(Some(path.to_owned()), req.encode_to_vec(), height, false)
        .await
        .unwrap();
    assert!(res.code.is_ok(), "{path}: {}", res.log);
    Resp::decode(res.value.as_slice()).unwrap()
}

async fn balance(client: &HttpClient, address: &str, height: Option<u64>) -> u128 {
    let resp: QueryBalanceResponse = abci(
        client,
        "/cosmos.bank.v1beta1.Query/Balance",
        QueryBalanceRequest {
            address: address.into(),
            denom: DENOM.into(),
        },
        height,
    )
    .await;
    resp.balance.unwrap().amount.parse().unwrap()
}

async fn light_block(client: &HttpClient, height: u64) -> LightBlock {
    let h: tendermint::block::Height = height.try_into().unwrap();
    let commit = client.commit(h).await.unwrap();
    let vals = client
        .validators(h, tendermint_rpc::Paging::All)
        .await
        .unwrap();
    let next = client
        .validators(h.increment(), tendermint_rpc::Paging::All)
        .await
        .unwrap();
    LightBlock::new(
        commit.signed_header,
        tendermint::validator::Set::without_proposer(vals.validators),
        tendermint::validator::Set::without_proposer(next.validators),
        tendermint::node::Id::new([0; 20]),
    )
}

async fn wait_height(client: &HttpClient, height: u64) {
    tokio::time::timeout(PATIENCE, async {
        while client
            .status()
            .await
            .unwrap()
            .sync_info
            .latest_block_height
            .value()
            < height
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("chain advances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_through_the_real_endpoints() {
    let chain = chain().await;
    let client = http(&chain);
    let status = client.status().await.unwrap();
    assert_eq!(status.node_info.network.as_str(), "ibc-0");

    let (ws, driver) = WebSocketClient::builder(chain.websocket_url().parse().unwrap())
        .compat_mode(CompatMode::V0_38)
        .build()
        .await
        .unwrap();
    let driver = tokio::spawn(driver.run());
    let mut txs = ws.subscribe(EventType::Tx.into()).await.unwrap();

    let user1 = chain.genesis.account("user1").unwrap().clone();
    let user2 = chain.genesis.account("user2").unwrap().clone();
    let account: QueryAccountResponse = abci(
        &client,
        "/cosmos.auth.v1beta1.Query/Account",
        QueryAccountRequest {
            address: user1.address.clone(),
        },
        None,
    )
    .await;
    let account = BaseAccount::decode(account.account.unwrap().value.as_slice()).unwrap();

    let send = cosmrs::Any {
        type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
        value: MsgSend {
            from_address: user1.address.clone(),
            to_address: user2.address.clone(),
            amount: vec![cosmrs::proto::cosmos::base::v1beta1::Coin {
                denom: DENOM.into(),
                amount: "1234".into(),
            }],
        }
        .encode_to_vec(),
    };
    let fee = 200u128;
    let key = user1.signing_key();
    let body = Body::new(vec![send], "", 0u32);
    let auth = SignerInfo::single_direct(Some(key.public_key()), account.sequence).auth_info(
        Fee::from_amount_and_gas(
            cosmrs::Coin {
                denom: DENOM.parse().unwrap(),
                amount: fee,
            },
            200_000u64,
        ),
    );
    let tx = SignDoc::new(
        &body,
        &auth,
        &"ibc-0".parse().unwrap(),
        account.account_number,
    )
    .unwrap()
    .sign(&key)
    .unwrap()
    .to_bytes()
    .unwrap();

    let sync = client.broadcast_tx_sync(tx.clone()).await.unwrap();
    assert!(sync.code.is_ok(), "CheckTx: {}", sync.log);
    // The same bytes again are refused by the mempool.
    assert!(client.broadcast_tx_sync(tx).await.unwrap().code.is_err());

    let event = tokio::time::timeout(PATIENCE, txs.next())
        .await
        .expect("tx event")
        .unwrap()
        .unwrap();
    let tendermint_rpc::event::EventData::Tx { tx_result } = event.data else {
        panic!("not a Tx event")
    };
    let kinds: Vec<&str> = tx_result
        .result
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"transfer") && kinds.contains(&"message"),
        "{kinds:?}"
    );

    let included = client.tx(sync.hash, false).await.unwrap();
    let h = included.height.value();
    assert!(included.tx_result.code.is_ok());
    assert!(included.tx_result.gas_used > 0);

    assert_eq!(
        balance(&client, &user2.address, Some(h)).await,
        GENESIS_BALANCE + 1234
    );
    assert_eq!(
        balance(&client, &user1.address, Some(h)).await,
        GENESIS_BALANCE - 1234 - fee
    );
    assert_eq!(
        balance(&client, &user2.address, Some(h - 1)).await,
        GENESIS_BALANCE,
        "state before the block"
    );

    // gRPC answers the same as ABCI.
    let channel = tonic::transport::Endpoint::from_shared(chain.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let resp: tonic::Response<QueryBalanceResponse> = grpc
        .unary(
            tonic::Request::new(QueryBalanceRequest {
                address: user2.address.clone(),
                denom: DENOM.into(),
            }),
            "/cosmos.bank.v1beta1.Query/Balance".parse().unwrap(),
            tonic::codec::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        resp.into_inner().balance.unwrap().amount,
        (GENESIS_BALANCE + 1234).to_string()
    );

    // The node's own services answer over ABCI too, as an SDK app's query router does.
    let info: ibc_proto::cosmos::base::tendermint::v1beta1::GetNodeInfoResponse = abci(
        &client,
        "/cosmos.base.tendermint.v1beta1.Service/GetNodeInfo",
        ibc_proto::cosmos::base::tendermint::v1beta1::GetNodeInfoRequest {},
        None,
    )
    .await;
    assert_eq!(
        info.default_node_info.expect("node info").network,
        chain.chain_id()
    );
    let deps: Vec<String> = info
        .application_version
        .expect("application version")
        .build_deps
        .into_iter()
        .map(|m| format!("{}@{}", m.path, m.version))
        .collect();
    assert!(
        deps.contains(&"github.com/cometbft/cometbft@v0.38.12".to_owned()),
        "{deps:?}"
    );
    let missing = client
        .abci_query(
            Some("/cosmos.tx.v1beta1.Service/GetTx".into()),
            ibc_proto::cosmos::tx::v1beta1::GetTxRequest {
                hash: "00".repeat(32),
            }
            .encode_to_vec(),
            None,
            false,
        )
        .await
        .unwrap();
    assert_eq!(missing.code.value(), 22, "{}", missing.log);

    // A proof taken at h verifies against the app hash in header h+1, which the light client accepts.
    wait_height(&client, h + 1).await;
    let key = b"nextClientSequence".to_vec();
    let q = client
        .abci_query(
            Some("store/ibc/key".into()),
            key.clone(),
            Some(h.try_into().unwrap()),
            true,
        )
        .await
        .unwrap();
    assert!(q.code.is_ok(), "{}", q.log);
    assert_eq!(q.height.value(), h);
    let ops = q.proof.expect("proof").ops;
    let spec = jmt::ics23_spec();
    let inner = ics23::CommitmentProof::decode(ops[0].data.as_slice()).unwrap();
    let outer = ics23::CommitmentProof::decode(ops[1].data.as_slice()).unwrap();
    let Some(ics23::commitment_proof::Proof::Exist(exist)) = &inner.proof else {
        panic!("existence proof")
    };
    let ibc_root = ics23::calculate_existence_root::<ics23::HostFunctionsManager>(exist).unwrap();
    assert!(ics23::verify_membership::<ics23::HostFunctionsManager>(
        &inner, &spec, &ibc_root, &key, &q.value
    ));

    let trusted = light_block(&client, h).await;
    let next = light_block(&client, h + 1).await;
    let options = Options {
        trust_threshold: TrustThreshold::TWO_THIRDS,
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        clock_drift: Duration::from_secs(5),
    };
    let now = (next.signed_header.header.time + Duration::from_secs(1)).unwrap();
    let verdict = ProdVerifier::default().verify_update_header(
        next.as_untrusted_state(),
        trusted.as_trusted_state(),
        &options,
        now,
    );
    assert_eq!(verdict, Verdict::Success);
    let app_hash = next.signed_header.header.app_hash.as_bytes().to_vec();
    assert!(ics23::verify_membership::<ics23::HostFunctionsManager>(
        &outer, &spec, &app_hash, b"ibc", &ibc_root
    ));
    let before = trusted.signed_header.header.app_hash.as_bytes().to_vec();
    assert!(!ics23::verify_membership::<ics23::HostFunctionsManager>(
        &outer, &spec, &before, b"ibc", &ibc_root
    ));

    ws.close().unwrap();
    let _ = driver.await;
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_and_the_chain_keeps_going() {
    let chain = chain().await;
    let client = http(&chain);
    wait_height(&client, 1).await;

    let garbage = client
        .broadcast_tx_sync(vec![0xde, 0xad, 0xbe, 0xef])
        .await
        .unwrap();
    assert_eq!(garbage.code.value(), 2, "{}", garbage.log);

    let unknown = client
        .abci_query(
            Some("/no.such.Service/Method".into()),
            vec![1, 2, 3],
            None,
            false,
        )
        .await
        .unwrap();
    assert_eq!(unknown.code.value(), 6);

    let far = client
        .block(tendermint::block::Height::try_from(1_000_000u64).unwrap())
        .await;
    assert!(far.is_err());

    let before = client
        .status()
        .await
        .unwrap()
        .sync_info
        .latest_block_height
        .value();
    wait_height(&client, before + 2).await;
    chain.shutdown().await;
}
