//! The NEAR `deliver` submitter against the NEAR devnet, with real signatures: gas burnt per message kind read from
//! the receipts, many datagrams cut into few calls under the gas limit, several calls outstanding with increasing
//! nonces (also through the TxSubmitter actor), a nonce taken by another sender of the same key recovered with
//! every datagram landing exactly once, and a call that runs out of gas split until everything lands.
//!
//! The datagrams that land are `MsgCreateClient`s of a Cosmos devnet chain, as relayd builds them: each one that
//! executes creates the next `07-tendermint-<n>` client, so counting the contract's clients shows each landed once.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use actix::{Actor, Context, Handler};
use ibc_proto::google::protobuf::Any;
use near_primitives::types::{AccountId, Gas};
use near_primitives::views::TxExecutionStatus;
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::near::backend::NearSubmitter;
use relayd_actors::chain::near::contract::{bytes, client_args};
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::tx::batch::{GasTable, MsgKind};
use relayd_actors::chain::near::tx::{
    classify_outcome, sign_deliver, NearTxConfig, NearTxSubmitter, SendResult, MEASURED_BASE_GAS,
    MEASURED_GAS_PER_MESSAGE,
};
use relayd_actors::supervisor::guard::ExitGuard;
use relayd_actors::tx_submitter::{Submitter, TxSubmitter};
use relayd_messages::{ActorKind, ChainId, ChildExited, CorrelationId, Datagram, SubmitTx};
use support::chain::Chain;
use support::light::unbonding_period;

const BLOCK_TIME: Duration = Duration::from_millis(200);
const TGAS: u64 = 1_000_000_000_000;

/// A NEAR devnet and a Cosmos devnet chain whose client relayd creates on it.
struct Setup {
    _cosmos: devnet::RunningChain,
    near: devnet::near::RunningNear,
    home: tempfile::TempDir,
    rpc: NearRpc,
    relayer: AccountId,
    contract: AccountId,
    create: Any,
}

impl Setup {
    async fn start() -> Self {
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
        let src = CosmosRpc::connect("ibc-0", &cosmos.rpc_url())
            .await
            .unwrap();
        let root = src.fetch_light_block(2).await.unwrap();
        let unbonding = unbonding_period(&Chain::connect(&cosmos)).await;
        let params = ClientParams {
            trust_level: (1, 3),
            trusting_period: unbonding * 2 / 3,
            unbonding_period: unbonding,
            max_clock_drift: Duration::from_secs(20),
            proof_specs: vec![support::proof::spec(), support::proof::spec()],
        };
        let create = create_client_msg(&root, &params, relayer.as_str());
        let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
        Self {
            _cosmos: cosmos,
            near,
            home,
            rpc,
            relayer,
            contract,
            create,
        }
    }

    /// A submitter for the relayer's key; two of them act as two senders sharing the key.
    fn submitter(&self, config: NearTxConfig) -> NearTxSubmitter {
        let key = self
            .home
            .path()
            .join("keys")
            .join(format!("{}.json", self.relayer));
        let signer = load_signer(&key, Some(self.relayer.as_str())).unwrap();
        NearTxSubmitter::new(self.rpc.clone(), signer, self.contract.clone(), config)
    }

    fn creates(&self, n: usize) -> Vec<Any> {
        vec![self.create.clone(); n]
    }

    /// How many Tendermint clients the contract holds (ids are handed out from 0 without gaps).
    async fn clients(&self) -> usize {
        let mut n = 0;
        loop {
            let id = format!("07-tendermint-{n}");
            let view = self
                .rpc
                .view_call(&self.contract, "get_client_state", &client_args(&id), None)
                .await
                .unwrap();
            if bytes("get_client_state", &view.result).unwrap().is_empty() {
                return n;
            }
            n += 1;
        }
    }
}

/// An encoded message of the given type, as the devnet's gas meter sees it.
fn message(type_url: &str, value: Vec<u8>) -> Any {
    Any {
        type_url: type_url.to_owned(),
        value,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_per_message_kind_is_read_from_deliver_receipts() {
    use ibc_proto::ibc::core::channel::v1 as chan;
    let s = Setup::start().await;
    let sub = s.submitter(NearTxConfig::default());
    let key = s
        .home
        .path()
        .join("keys")
        .join(format!("{}.json", s.relayer));
    let signer = load_signer(&key, Some(s.relayer.as_str())).unwrap();
    let kinds: Vec<(MsgKind, Any)> = vec![
        (MsgKind::CreateClient, s.create.clone()),
        (
            MsgKind::UpdateClient,
            message(
                "/ibc.core.client.v1.MsgUpdateClient",
                ibc_proto::ibc::core::client::v1::MsgUpdateClient {
                    client_id: "07-tendermint-0".to_owned(),
                    client_message: None,
                    signer: s.relayer.to_string(),
                }
                .encode_to_vec(),
            ),
        ),
        (
            MsgKind::Handshake,
            message(
                "/ibc.core.connection.v1.MsgConnectionOpenInit",
                ibc_proto::ibc::core::connection::v1::MsgConnectionOpenInit::default()
                    .encode_to_vec(),
            ),
        ),
        (
            MsgKind::RecvPacket,
            message(
                "/ibc.core.channel.v1.MsgRecvPacket",
                chan::MsgRecvPacket::default().encode_to_vec(),
            ),
        ),
        (
            MsgKind::Acknowledgement,
            message(
                "/ibc.core.channel.v1.MsgAcknowledgement",
                chan::MsgAcknowledgement::default().encode_to_vec(),
            ),
        ),
        (
            MsgKind::Timeout,
            message(
                "/ibc.core.channel.v1.MsgTimeout",
                chan::MsgTimeout::default().encode_to_vec(),
            ),
        ),
    ];
    println!("kind | receipt gas, 1 message | receipt gas, 8 messages | per message | base");
    for (kind, msg) in kinds {
        let mut receipt = Vec::new();
        for n in [1usize, 8] {
            let (key, block) = s
                .rpc
                .access_key(&s.relayer, &signer.public_key())
                .await
                .unwrap();
            let batch = vec![msg.clone(); n];
            let tx = sign_deliver(
                &signer,
                &s.contract,
                &batch,
                key.nonce + 1,
                block,
                Gas::from_teragas(300),
            );
            let response = s.rpc.send_tx(tx, TxExecutionStatus::Final).await.unwrap();
            let outcome = response.final_execution_outcome.expect("an outcome");
            let SendResult::Done {
                failure,
                receipt_gas,
                ..
            } = classify_outcome(&outcome.into_outcome())
            else {
                panic!("{kind:?}: executed")
            };
            assert!(failure.is_none(), "{kind:?}: the call itself succeeds");
            receipt.push(receipt_gas);
        }
        let per = (receipt[1] - receipt[0]) / 7;
        let base = receipt[0] - per;
        println!(
            "{kind:?} | {} | {} | {} | {}",
            receipt[0], receipt[1], per, base
        );
        assert_eq!(
            (base, per),
            (MEASURED_BASE_GAS, MEASURED_GAS_PER_MESSAGE),
            "{kind:?}: the submitter's seeds are what the devnet's receipts burn"
        );
        assert_eq!(sub.gas_per_message(kind), per);
    }
    // The calls that fit 300 Tgas by the estimate less its 10% margin, and by the devnet's own meter.
    let by_estimate = (270 * TGAS - MEASURED_BASE_GAS) / MEASURED_GAS_PER_MESSAGE;
    println!("transfers per deliver: {by_estimate} by the estimate with a 10% margin");
    s.near.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_datagrams_go_out_in_few_calls_each_under_the_gas_limit() {
    let s = Setup::start().await;
    let before = s.clients().await;
    let inner = s.submitter(NearTxConfig::default());
    let mut submitter = NearSubmitter::new(inner, s.rpc.clone(), 1000, 1 << 20);
    let n = 40;
    let datagrams: Vec<Datagram> = s
        .creates(n)
        .into_iter()
        .map(|a| Datagram {
            type_url: a.type_url,
            value: a.value,
        })
        .collect();
    let reports = submitter.submit(datagrams).await.expect("all delivered");
    let sizes: Vec<usize> = reports.iter().map(|r| r.messages).collect();
    println!(
        "{n} datagrams in {} deliver calls: {sizes:?}",
        reports.len()
    );
    assert!(reports.len() < n, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), n);
    assert!(sizes[0] > 1, "{sizes:?}");
    for r in &reports {
        // Gas of the transaction and its receipt: within the 300 Tgas prepaid plus the conversion.
        assert!(r.gas_used > 0 && (r.gas_used as u64) < 300 * TGAS, "{r:?}");
    }
    assert_eq!(s.clients().await, before + n, "every datagram landed once");
    s.near.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_take_increasing_nonces_and_a_nonce_taken_by_another_sender_is_recovered() {
    let s = Setup::start().await;
    let ours = s.submitter(NearTxConfig::default());
    let theirs = s.submitter(NearTxConfig::default());
    let first = ours.admit(s.creates(3)).await.unwrap();
    // Another sender with the same key takes the nonce our second call would have used: the node refuses ours
    // as InvalidNonce and the submitter moves past the key's nonce.
    let other = theirs.admit(s.creates(1)).await.unwrap();
    let second = ours.admit(s.creates(4)).await.unwrap();
    let third = ours.admit(s.creates(5)).await.unwrap();
    assert_eq!(
        ours.stale_nonces(),
        1,
        "the node refused the taken nonce once"
    );
    assert!(first.nonce < other.nonce, "ours was first in the pool");
    assert!(
        other.nonce < second.nonce && second.nonce < third.nonce,
        "{} {} {} {}",
        first.nonce,
        other.nonce,
        second.nonce,
        third.nonce
    );
    let mut landed = Vec::new();
    for a in [first, second, third] {
        landed.extend(ours.settle(a).await.expect("settled"));
    }
    assert_eq!(landed.iter().map(|o| o.messages).sum::<usize>(), 12);
    theirs.settle(other).await.expect("theirs landed too");
    let mut nonces: Vec<u64> = landed.iter().map(|o| o.nonce).collect();
    nonces.dedup();
    assert_eq!(nonces.len(), landed.len(), "one nonce per executed call");
    assert_eq!(s.clients().await, 13, "every datagram exactly once");

    // The same through the TxSubmitter actor: several requests, three calls in flight at most.
    let rpc = s.rpc.clone();
    let config = NearTxConfig {
        max_in_flight: 3,
        ..NearTxConfig::default()
    };
    let inner = s.submitter(config);
    let creates = s.creates(1);
    let reports = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let submitter = NearSubmitter::new(inner, rpc, 2, 1 << 20);
            let guard = ExitGuard::new(ActorKind::TxSubmitter, 1, Sink.start().recipient());
            let actor = TxSubmitter::new(ChainId::new("near-0").unwrap(), submitter, guard).start();
            let sends = (0..8).map(|_| {
                actor.send(SubmitTx {
                    correlation: CorrelationId::fresh(),
                    update: None,
                    datagrams: creates
                        .iter()
                        .map(|a| Datagram {
                            type_url: a.type_url.clone(),
                            value: a.value.clone(),
                        })
                        .collect(),
                    priority: 0,
                    ordered_channel: None,
                })
            });
            futures::future::join_all(sends).await
        })
    })
    .join()
    .unwrap();
    let reports: Vec<_> = reports
        .into_iter()
        .map(|r| r.unwrap().expect("delivered"))
        .collect();
    let mut calls: Vec<(String, u64)> = reports
        .iter()
        .map(|r| (r.tx_hash.clone(), r.height))
        .collect();
    calls.sort();
    calls.dedup();
    assert!(calls.len() >= 4, "two requests per call: {calls:?}");
    // A call waits for finality (two blocks after its own), so calls sharing a block were outstanding together.
    let mut heights: Vec<u64> = calls.iter().map(|c| c.1).collect();
    heights.sort_unstable();
    heights.dedup();
    assert!(
        heights.len() < calls.len(),
        "calls in flight together: {calls:?}"
    );
    assert_eq!(s.clients().await, 21);
    s.near.shutdown().await;
}

/// Takes the TxSubmitter's exit report.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<ChildExited> for Sink {
    type Result = ();

    fn handle(&mut self, _: ChildExited, _: &mut Self::Context) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_runs_out_of_gas_is_split_and_everything_lands() {
    let s = Setup::start().await;
    // Estimates far below what the devnet burns, and 100 Tgas per call: twelve messages go out as one call that
    // needs 5 + 12 × 15 Tgas.
    let config = NearTxConfig {
        gas: Gas::from_teragas(100),
        gas_estimates: GasTable::uniform(0, TGAS),
        ..NearTxConfig::default()
    };
    let sub = s.submitter(config);
    let batches = sub.batches(s.creates(12), 100, 1 << 20);
    assert_eq!(
        batches.len(),
        1,
        "the low estimate puts all twelve in one call"
    );
    let admitted = sub
        .admit(batches.into_iter().next().unwrap())
        .await
        .unwrap();
    let landed = sub.settle(admitted).await.expect("settled after splitting");
    let sizes: Vec<usize> = landed.iter().map(|o| o.messages).collect();
    println!("out of gas, split into {sizes:?}");
    assert!(landed.len() >= 2, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 12);
    for o in &landed {
        assert!(o.receipt_gas <= 100 * TGAS + 2_428_000_000_000, "{o:?}");
    }
    assert!(
        sub.gas_per_message(MsgKind::CreateClient) > TGAS,
        "the estimate learnt from the refusal and the outcomes"
    );
    assert_eq!(s.clients().await, 12, "nothing lost, nothing twice");
    // With what was learnt, the same twelve are cut into calls that fit.
    assert!(sub.batches(s.creates(12), 100, 1 << 20).len() >= 2);
    s.near.shutdown().await;
}
