//! The NEAR implementations of the backend traits the per-chain actors drive: updates of NEAR clients on
//! counterparties from relayd's own NEAR light client (its head persisted in sled), `deliver` transactions through
//! [`NearTxSubmitter`], and events from [`NearEventMonitor`]. With these the actors run over NEAR unchanged.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use near_primitives::hash::CryptoHash;
use near_primitives::views::{LightClientBlockLiteView, LightClientBlockView};
use relayd_messages::{
    ClientUpdate, ConsensusAnchor, Datagram, ErrorKind, HeaderAt, RelayError, TxReport,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::endpoint::{NearHead, NearVerifyError};
use super::header::{near_header, update_client_msg};
use super::light_client::{lite_block_hash, StoredNearHead};
use super::monitor::NearEventMonitor;
use super::rpc::NearRpc;
use super::tx::{NearTxError, NearTxOutcome, NearTxSubmitter};
use crate::chain::endpoint::ChainError;
use crate::chain_monitor::{BlockEvents, EventSource};
use crate::light_client::LightSource;
use crate::store::StateStore;
use crate::tx_submitter::Submitter;

/// Verified light-client blocks kept in memory; older ones are dropped first.
const VERIFIED_CACHE: usize = 512;
/// Most light-client steps one `refresh` takes (each step moves to the node's latest final block or to the
/// end of the next epoch, so a few cover a long absence).
const REFRESH_STEPS: usize = 1024;

/// How a light-client failure reads to the builders: a node that cannot be reached is unavailable, anything that
/// broke a rule is unverified.
pub fn verify_error(e: NearVerifyError) -> RelayError {
    match e {
        NearVerifyError::Chain(e) => RelayError::new(ErrorKind::Unavailable, e.to_string()),
        other => RelayError::new(ErrorKind::Unverified, other.to_string()),
    }
}

fn lite(block: &LightClientBlockView) -> LightClientBlockLiteView {
    LightClientBlockLiteView {
        prev_block_hash: block.prev_block_hash,
        inner_rest_hash: block.inner_rest_hash,
        inner_lite: block.inner_lite.clone(),
    }
}

/// Of the verified blocks after `trusted_height` up to `target`, those a NEAR client trusted at `trusted_height`
/// needs in order: the first block of every epoch on the way (it brings the producers of the epoch after it), then
/// the target itself.
pub fn header_path(
    verified: &BTreeMap<u64, LightClientBlockView>,
    trusted_height: u64,
    target: u64,
) -> Vec<&LightClientBlockView> {
    let mut path: Vec<&LightClientBlockView> = Vec::new();
    let mut epoch = None;
    for (&height, block) in verified.range(..=target) {
        if height <= trusted_height {
            epoch = Some(block.inner_lite.epoch_id);
            continue;
        }
        let starts_epoch = epoch != Some(block.inner_lite.epoch_id);
        epoch = Some(block.inner_lite.epoch_id);
        if starts_epoch && height < target {
            path.push(block);
        }
    }
    if let Some(block) = verified.get(&target) {
        path.push(block);
    }
    path
}

/// Why `relayd light init` refused a NEAR block.
#[derive(Debug, thiserror::Error)]
pub enum NearInitError {
    /// The block or its epoch's producers did not check out, or the node failed.
    #[error(transparent)]
    Verify(#[from] NearVerifyError),
    /// The block is not at the height the operator named.
    #[error("{chain}: block {hash} is at height {actual}, not {expected}")]
    Height {
        /// The chain.
        chain: String,
        /// The block.
        hash: CryptoHash,
        /// Its height.
        actual: u64,
        /// The height given.
        expected: u64,
    },
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// `relayd light init` for a NEAR chain: trusts block `hash` at `height` on the operator's word, after the checks of
/// [`NearHead::from_trusted_block`], and stores it as the chain's NEAR head (replacing any other); the light client
/// resumes from it.
pub async fn near_light_init(
    rpc: &NearRpc,
    store: &StateStore,
    height: u64,
    hash: CryptoHash,
) -> Result<crate::chain::near::light_client::TrustedNear, NearInitError> {
    let head = NearHead::from_trusted_block(rpc.clone(), hash).await?;
    let trusted = head.trusted().clone();
    let actual = trusted.head.inner_lite.height;
    if actual != height {
        return Err(NearInitError::Height {
            chain: rpc.chain().to_owned(),
            hash,
            actual,
            expected: height,
        });
    }
    store.save_trusted_near(
        rpc.chain(),
        &StoredNearHead {
            trusted: trusted.clone(),
            block: None,
        },
    )?;
    info!(chain = rpc.chain(), height, %hash, "NEAR head trusted on the operator's word");
    Ok(trusted)
}

/// relayd's light client of one NEAR chain, preparing updates of its clients on counterparties.
pub struct NearLight {
    rpc: NearRpc,
    store: StateStore,
    head: Option<NearHead>,
    verified: BTreeMap<u64, LightClientBlockView>,
    wait: Duration,
    poll: Duration,
}

impl NearLight {
    /// A light client resuming from the head stored for the chain, if any. Without one, the first use trusts the
    /// node's latest light-client block (see [`NearHead::bootstrap`]) and stores it. `wait` bounds how long an
    /// update waits for its target height; `poll` is the pause between looks at the node while waiting.
    pub fn new(
        rpc: NearRpc,
        store: StateStore,
        wait: Duration,
        poll: Duration,
    ) -> Result<Self, RelayError> {
        let stored = store
            .trusted_near(rpc.chain())
            .map_err(|e| RelayError::new(ErrorKind::Unavailable, e.to_string()))?;
        let mut verified = BTreeMap::new();
        let head = stored.map(|stored| {
            let height = stored.trusted.head.inner_lite.height;
            if let Some(block) = stored.block {
                verified.insert(height, block);
            }
            info!(
                chain = rpc.chain(),
                height, "NEAR light client resumes from its stored head"
            );
            NearHead::new(rpc.clone(), stored.trusted)
        });
        Ok(Self {
            rpc,
            store,
            head,
            verified,
            wait,
            poll,
        })
    }

    /// The trusted head's height, once there is one.
    pub fn head_height(&self) -> Option<u64> {
        self.head
            .as_ref()
            .map(|h| h.trusted().head.inner_lite.height)
    }

    async fn ensure_head(&mut self) -> Result<(), RelayError> {
        if self.head.is_some() {
            return Ok(());
        }
        let mut head = NearHead::bootstrap(self.rpc.clone())
            .await
            .map_err(verify_error)?;
        // With the epoch's producers the head moves at the next final block instead of the next epoch (half a
        // day on mainnet). Nodes that do not serve the list leave the head waiting for the epoch change.
        if let Err(e) = head.learn_epoch_producers().await {
            info!(chain = self.rpc.chain(), error = %e, "no producer list for the head's epoch; the NEAR head first moves at the next epoch");
        }
        warn!(
            chain = self.rpc.chain(),
            height = head.trusted().head.inner_lite.height,
            hash = %head.trusted().head_hash(),
            "no stored NEAR head: trusting the node's latest light-client block; check it out of band"
        );
        self.head = Some(head);
        self.persist();
        Ok(())
    }

    fn persist(&mut self) {
        let Some(head) = &self.head else {
            return;
        };
        let trusted = head.trusted().clone();
        let height = trusted.head.inner_lite.height;
        let record = StoredNearHead {
            block: self.verified.get(&height).cloned(),
            trusted,
        };
        if let Err(e) = self.store.save_trusted_near(self.rpc.chain(), &record) {
            warn!(chain = self.rpc.chain(), height, error = %e, "cannot persist the NEAR head");
        }
    }

    /// One light-client step; `None` when the node has nothing newer that relayd can check yet.
    async fn step(&mut self) -> Result<Option<u64>, RelayError> {
        self.ensure_head().await?;
        let Some(head) = self.head.as_mut() else {
            return Ok(None);
        };
        let Some((_, block)) = head.advance_with_block().await.map_err(verify_error)? else {
            return Ok(None);
        };
        let height = block.inner_lite.height;
        self.verified.insert(height, block);
        while self.verified.len() > VERIFIED_CACHE {
            self.verified.pop_first();
        }
        // Every step is a node round trip and moves the head by a final block or an epoch: writing each head
        // costs little next to it, and what is on disk is always what relayd trusts in memory.
        self.persist();
        Ok(Some(height))
    }

    /// Advances until the head is at or above `target`, waiting for the chain up to the configured time.
    async fn advance_to(&mut self, target: u64) -> Result<u64, RelayError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            self.ensure_head().await?;
            let height = self.head_height().unwrap_or(0);
            if height >= target {
                return Ok(height);
            }
            if self.step().await?.is_none() {
                if tokio::time::Instant::now() >= deadline {
                    return Err(RelayError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "{}: no verified NEAR head at or above {target} yet (head {height})",
                            self.rpc.chain()
                        ),
                    ));
                }
                tokio::time::sleep(self.poll).await;
            }
        }
    }

    /// The chunk state roots of a verified block, from the node, checked against the block's header.
    async fn header_for(&self, block: &LightClientBlockView) -> Result<Any, RelayError> {
        let hash: CryptoHash = lite_block_hash(&lite(block));
        let full = self.rpc.block_by_hash(hash).await.map_err(|e| {
            RelayError::new(
                ErrorKind::Unavailable,
                format!("{}: block {hash}: {e}", self.rpc.chain()),
            )
        })?;
        let roots: Vec<CryptoHash> = full.chunks.iter().map(|c| c.prev_state_root).collect();
        near_header(block, &roots).map_err(|e| {
            RelayError::new(ErrorKind::Unverified, format!("{}: {e}", self.rpc.chain()))
        })
    }
}

impl LightSource for NearLight {
    /// The NEAR light client verifies the blocks the node serves as light-client blocks: final heads, not every
    /// height. An update is therefore prepared for a `target` that is one of those verified heads; its app hash is
    /// the head's `prev_state_root`, which commits to the state after the head's parent block (where the querier
    /// reads proofs for it). `anchor` is a Tendermint notion and unused: the NEAR head is relayd's own.
    async fn prepare_update(
        &mut self,
        client_id: &str,
        trusted_height: u64,
        _anchor: Option<(Vec<u8>, Vec<u8>)>,
        target: u64,
        signer: &str,
    ) -> Result<ClientUpdate, RelayError> {
        self.advance_to(target).await?;
        let chain = self.rpc.chain().to_owned();
        let Some(block) = self.verified.get(&target) else {
            let below = self.verified.range(..target).next_back().map(|(h, _)| *h);
            let above = self.verified.range(target..).next().map(|(h, _)| *h);
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{chain}: {target} is not a verified NEAR light-client head (nearest: {below:?} below, {above:?} above); prove at the parent of a verified head"
                ),
            ));
        };
        let app_hash = block.inner_lite.prev_state_root.0.to_vec();
        if trusted_height > target {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{client_id} is already at {trusted_height}, above {target}; prove again at a newer height"
                ),
            ));
        }
        let mut msgs = Vec::new();
        if trusted_height < target {
            for block in header_path(&self.verified, trusted_height, target) {
                let header = self.header_for(block).await?;
                let msg = update_client_msg(client_id, header, signer);
                msgs.push(Datagram {
                    type_url: msg.type_url,
                    value: msg.value,
                });
            }
        }
        Ok(ClientUpdate {
            target,
            app_hash,
            msgs,
        })
    }

    async fn refresh(&mut self) -> Result<u64, RelayError> {
        self.ensure_head().await?;
        for _ in 0..REFRESH_STEPS {
            if self.step().await?.is_none() {
                break;
            }
        }
        self.persist();
        Ok(self.head_height().unwrap_or(0))
    }

    /// NEAR headers are not CometBFT headers and clients of NEAR are not Tendermint clients: misbehaviour of
    /// NEAR is not judged by comparing Tendermint headers, so the request is refused.
    async fn verified_header(
        &mut self,
        height: u64,
        _anchor: Option<(u64, ConsensusAnchor)>,
    ) -> Result<HeaderAt, RelayError> {
        Err(RelayError::new(
            ErrorKind::Rejected,
            format!(
                "{}: height {height}: NEAR headers are not compared for Tendermint misbehaviour",
                self.rpc.chain()
            ),
        ))
    }
}

/// `deliver` transactions of one NEAR account.
pub struct NearSubmitter {
    inner: NearTxSubmitter,
    rpc: NearRpc,
    account: String,
    max_msgs: usize,
    max_size: usize,
}

impl NearSubmitter {
    /// Wraps a `deliver` submitter; transactions carry at most `max_msgs` messages and `max_size` bytes.
    pub fn new(inner: NearTxSubmitter, rpc: NearRpc, max_msgs: usize, max_size: usize) -> Self {
        let account = inner.account().to_string();
        Self {
            inner,
            rpc,
            account,
            max_msgs,
            max_size,
        }
    }

    /// The report of an executed `deliver`: its height is the last block its receipts ran in, where the contract
    /// recorded its IBC events.
    async fn report(
        &self,
        outcome: &NearTxOutcome,
        messages: usize,
    ) -> Result<TxReport, ChainError> {
        let last = outcome
            .receipt_blocks
            .last()
            .copied()
            .unwrap_or(outcome.block_hash);
        let mut failure = None;
        for _ in 0..3 {
            match self.rpc.block_by_hash(last).await {
                Ok(block) => {
                    return Ok(TxReport {
                        tx_hash: outcome.tx_hash.to_string(),
                        height: block.header.height,
                        messages,
                        gas_used: i64::try_from(outcome.gas_burnt).unwrap_or(i64::MAX),
                    })
                }
                Err(e) => failure = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(failure.unwrap_or_else(|| ChainError::rpc(self.rpc.chain(), "block", "no answer")))
    }
}

/// How a `deliver` failure reads to the builders.
pub fn tx_error(e: &NearTxError) -> RelayError {
    let kind = match e {
        NearTxError::Rejected { .. }
        | NearTxError::Failed { .. }
        | NearTxError::MessageRefused { .. } => ErrorKind::Rejected,
        NearTxError::Rpc(_)
        | NearTxError::NonceExhausted { .. }
        | NearTxError::Unconfirmed { .. } => ErrorKind::Unavailable,
    };
    // near-ibc reports a refused message in its logs only, with ibc-rs's wording.
    let refusal = match e {
        NearTxError::MessageRefused { logs, .. } => logs
            .iter()
            .find_map(|l| crate::failure::from_near_contract_log(l)),
        _ => None,
    };
    RelayError::new(kind, e.to_string()).with_refusal(refusal)
}

impl Submitter for NearSubmitter {
    fn signer(&self) -> &str {
        &self.account
    }

    fn max_msgs(&self) -> usize {
        self.max_msgs
    }

    async fn submit(
        &mut self,
        msgs: Vec<Datagram>,
    ) -> Result<Vec<TxReport>, (Vec<TxReport>, RelayError)> {
        let anys = msgs
            .into_iter()
            .map(|d| Any {
                type_url: d.type_url,
                value: d.value,
            })
            .collect();
        let mut done = Vec::new();
        for batch in crate::chain::cosmos::tx::batches(anys, self.max_msgs, self.max_size) {
            let outcome = match self.inner.submit(&batch).await {
                Ok(outcome) => outcome,
                Err(e) => return Err((done, tx_error(&e))),
            };
            match self.report(&outcome, batch.len()).await {
                Ok(report) => done.push(report),
                Err(e) => {
                    // Delivered, but its height is unknown: report the failure rather than a made-up height.
                    let reason = format!(
                        "deliver {} executed, but its block could not be read: {e}",
                        outcome.tx_hash
                    );
                    return Err((done, RelayError::new(ErrorKind::Unavailable, reason)));
                }
            }
        }
        Ok(done)
    }
}

impl EventSource for NearEventMonitor {
    async fn run(
        self,
        start: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()> + 'static,
    ) {
        NearEventMonitor::run(self, start, sink, shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::near::light_client::{sha256, TrustedNear};
    use crate::chain::near::test_rpc::{block as block_view, serve, Reply};
    use near_primitives::views::BlockHeaderInnerLiteView;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn recorded(name: &str) -> Value {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/near-light-client")
            .join(name);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        doc["body"].clone()
    }

    #[tokio::test]
    async fn a_first_start_trusts_the_latest_light_client_block_with_its_epochs_producers_if_served(
    ) {
        let first = recorded("main_0.json");
        let producers = first["next_bps"].clone();
        let height = first["inner_lite"]["height"].as_u64().expect("height");
        for serves_producers in [true, false] {
            let served = first.clone();
            let list = producers.clone();
            let rpc = serve(Arc::new(move |method: &str, _: &Value| match method {
                "block" => Reply::Result(block_view(
                    height + 2,
                    height + 1,
                    sha256(b"final"),
                    CryptoHash::default(),
                )),
                "next_light_client_block" => Reply::Result(served.clone()),
                "EXPERIMENTAL_validators_ordered" if serves_producers => {
                    Reply::Result(list.clone())
                }
                other => Reply::Error(json!({
                    "code": -32601, "message": "Method not found", "data": other,
                    "name": "REQUEST_VALIDATION_ERROR",
                    "cause": {"name": "METHOD_NOT_FOUND", "info": {"method_name": other}}
                })),
            }))
            .await;
            let db = sled::Config::new().temporary(true).open().expect("sled");
            let store = StateStore::from_db(db).expect("store");
            let mut near = NearLight::new(
                NearRpc::new("near-mainnet", &rpc.url),
                store.clone(),
                Duration::from_millis(100),
                Duration::from_millis(10),
            )
            .expect("light");
            assert_eq!(near.head_height(), None);
            assert_eq!(near.refresh().await.expect("bootstrapped"), height);
            let stored = store
                .trusted_near("near-mainnet")
                .expect("read")
                .expect("stored on first use");
            assert_eq!(stored.trusted.head.inner_lite.height, height);
            assert!(stored.trusted.next_epoch_bps.is_some());
            assert_eq!(
                stored.trusted.epoch_bps.is_empty(),
                !serves_producers,
                "serves producers: {serves_producers}"
            );
        }
    }

    #[tokio::test]
    async fn a_lying_node_neither_moves_nor_persists_the_head_and_unverified_chunks_make_no_header()
    {
        let first: LightClientBlockView =
            serde_json::from_value(recorded("main_0.json")).expect("view");
        let genuine = recorded("main_1.json");
        let target = genuine["inner_lite"]["height"].as_u64().expect("height");
        let state_root: CryptoHash =
            serde_json::from_value(genuine["inner_lite"]["prev_state_root"].clone()).expect("hash");
        let mut forged = genuine.clone();
        forged["inner_lite"]["prev_state_root"] = json!(sha256(b"forged state").to_string());
        let lie = Arc::new(AtomicBool::new(true));
        let lying = lie.clone();
        let rpc = serve(Arc::new(move |method: &str, params: &Value| match method {
            "next_light_client_block" if lying.load(Ordering::SeqCst) => {
                Reply::Result(forged.clone())
            }
            "next_light_client_block" => Reply::Result(genuine.clone()),
            // The node's block for the head: its chunk roots are not the ones the verified header commits to.
            "block" => Reply::Result(block_view(
                target,
                target - 1,
                serde_json::from_value(params["block_id"].clone()).unwrap_or_default(),
                sha256(b"another state"),
            )),
            other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
        }))
        .await;
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let store = StateStore::from_db(db).expect("store");
        let start = first.inner_lite.height;
        store
            .save_trusted_near(
                "near-mainnet",
                &StoredNearHead {
                    trusted: TrustedNear::new(lite(&first), Vec::new(), first.next_bps.clone()),
                    block: Some(first.clone()),
                },
            )
            .expect("save");
        let light = |store: &StateStore| {
            NearLight::new(
                NearRpc::new("near-mainnet", &rpc.url),
                store.clone(),
                Duration::from_millis(300),
                Duration::from_millis(10),
            )
            .expect("light")
        };
        let mut near = light(&store);
        assert_eq!(near.head_height(), Some(start), "resumed from sled");
        let stored_height = |store: &StateStore| {
            store
                .trusted_near("near-mainnet")
                .expect("read")
                .map(|s| s.trusted.head.inner_lite.height)
        };

        let err = near
            .prepare_update("12-near-0", start, None, target, "cosmos1relayer")
            .await
            .expect_err("forged block");
        assert_eq!(err.kind, ErrorKind::Unverified, "{}", err.message);
        assert_eq!(near.head_height(), Some(start));
        assert_eq!(
            stored_height(&store),
            Some(start),
            "nothing unverified persisted"
        );

        lie.store(false, Ordering::SeqCst);
        // The client already holds the target: nothing to send, and the verified app hash.
        let update = near
            .prepare_update("12-near-0", target, None, target, "cosmos1relayer")
            .await
            .expect("verified");
        assert!(update.msgs.is_empty());
        assert_eq!(update.app_hash, state_root.0.to_vec());
        assert_eq!(stored_height(&store), Some(target));
        // A header for a client further back needs the head's chunk roots, and the node's do not match.
        let err = near
            .prepare_update("12-near-0", start, None, target, "cosmos1relayer")
            .await
            .expect_err("unverified chunk roots");
        assert_eq!(err.kind, ErrorKind::Unverified, "{}", err.message);
        assert!(err.message.contains("chunk state roots"), "{}", err.message);
        // Heights the light client did not verify are refused, not guessed.
        let err = near
            .prepare_update("12-near-0", start, None, target - 1, "cosmos1relayer")
            .await
            .expect_err("not a verified head");
        assert_eq!(err.kind, ErrorKind::Unavailable);

        // Another instance (a restarted actor) starts from the stored head, with its block.
        let mut again = light(&store);
        assert_eq!(again.head_height(), Some(target));
        let update = again
            .prepare_update("12-near-0", target, None, target, "cosmos1relayer")
            .await
            .expect("from the stored block");
        assert_eq!(update.app_hash, state_root.0.to_vec());
    }

    fn block(height: u64, epoch: u8) -> LightClientBlockView {
        LightClientBlockView {
            prev_block_hash: CryptoHash::default(),
            next_block_inner_hash: CryptoHash::default(),
            inner_lite: BlockHeaderInnerLiteView {
                height,
                epoch_id: CryptoHash([epoch; 32]),
                next_epoch_id: CryptoHash([epoch + 1; 32]),
                prev_state_root: CryptoHash::default(),
                outcome_root: CryptoHash::default(),
                timestamp: 0,
                timestamp_nanosec: 0,
                next_bp_hash: CryptoHash::default(),
                block_merkle_root: CryptoHash::default(),
            },
            inner_rest_hash: CryptoHash::default(),
            next_bps: None,
            approvals_after_next: Vec::new(),
        }
    }

    fn heights(path: &[&LightClientBlockView]) -> Vec<u64> {
        path.iter().map(|b| b.inner_lite.height).collect()
    }

    #[test]
    fn an_update_crosses_each_epoch_by_its_first_verified_block() {
        let verified: BTreeMap<u64, LightClientBlockView> =
            [(5, 0), (9, 0), (12, 1), (15, 1), (21, 2), (24, 2), (30, 3)]
                .into_iter()
                .map(|(h, e)| (h, block(h, e)))
                .collect();
        // From epoch 0 to epoch 2: the first block of epochs 1 and 2, then the target.
        assert_eq!(heights(&header_path(&verified, 9, 24)), vec![12, 21, 24]);
        // Within the trusted block's epoch: the target only.
        assert_eq!(heights(&header_path(&verified, 12, 15)), vec![15]);
        // The target starts an epoch: it is not repeated.
        assert_eq!(heights(&header_path(&verified, 15, 21)), vec![21]);
        // A target relayd did not verify is not on the path (prepare_update refuses it before).
        assert_eq!(heights(&header_path(&verified, 15, 22)), vec![21]);
    }
}
