//! The Cosmos implementations of the backend traits the per-chain actors drive: client updates from relayd's
//! own light client, transactions through [`TxSubmitter`], events from [`EventMonitor`].

use std::collections::BTreeMap;
use std::future::Future;

use ibc_proto::google::protobuf::Any;
use relayd_messages::{ClientUpdate, Datagram, ErrorKind, HeaderAt, RelayError, TxReport};
use tendermint::Time;
use tendermint_light_client_verifier::types::LightBlock;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::client::update_client_msgs;
use super::light_client::{headers_to, verify_signed_header, LightClientError, TrustOptions};
use super::monitor::EventMonitor;
use super::rpc::CosmosRpc;
use super::tx::{batches, TxError, TxSubmitter};
use crate::chain_monitor::{BlockEvents, EventSource};
use crate::light_client::LightSource;
use crate::misbehaviour_watcher::state::OurHeader;
use crate::store::StateStore;
use crate::tx_submitter::{Confirmation, Submitter, TxOutcomes, Wallet};
use relayd_messages::Refusal;

/// A counterparty client's consensus state: app hash and next validators hash.
type Anchor = (Vec<u8>, Vec<u8>);

/// Verified blocks kept in memory; older ones are dropped first.
const VERIFIED_CACHE: usize = 512;
/// The trusted state is written to disk when it has advanced this many heights (and on `refresh`).
const PERSIST_EVERY: u64 = 50;
/// How long an update waits for its target height to be committed.
const WAIT_FOR_HEIGHT: std::time::Duration = std::time::Duration::from_secs(20);
/// The longest an update waits for word of its target height before asking the node anyway.
const TIP_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// relayd's light client of one Cosmos chain, preparing updates of its clients on counterparties.
pub struct CosmosLight {
    rpc: CosmosRpc,
    store: StateStore,
    trust: TrustOptions,
    verified: BTreeMap<u64, LightBlock>,
    persisted: u64,
}

/// The error of a verification over blocks `rpc` (a pinned client) served; when the node is to blame, its
/// endpoint is quarantined first, so that the retry reads another one.
fn refused(rpc: &CosmosRpc, e: LightClientError) -> RelayError {
    if e.node_at_fault() {
        rpc.blame(&e.to_string());
    }
    unverified(e)
}

fn unverified(e: LightClientError) -> RelayError {
    match e {
        LightClientError::Fetch { .. } | LightClientError::Task { .. } => {
            RelayError::new(ErrorKind::Unavailable, e.to_string())
        }
        other => RelayError::new(ErrorKind::Unverified, other.to_string()),
    }
}

impl CosmosLight {
    /// A light client starting from the trusted state stored for the chain, if any.
    pub fn new(rpc: CosmosRpc, store: StateStore, trust: TrustOptions) -> Result<Self, RelayError> {
        let mut verified = BTreeMap::new();
        let mut persisted = 0;
        let stored = store
            .trusted(rpc.chain())
            .map_err(|e| RelayError::new(ErrorKind::Unavailable, e.to_string()))?;
        if let Some(block) = stored {
            persisted = block.height().value();
            verified.insert(persisted, block);
        }
        Ok(Self {
            rpc,
            store,
            trust,
            verified,
            persisted,
        })
    }

    fn remember(&mut self, block: LightBlock) {
        let height = block.height().value();
        self.verified.insert(height, block);
        while self.verified.len() > VERIFIED_CACHE {
            self.verified.pop_first();
        }
        if height >= self.persisted + PERSIST_EVERY {
            self.persist();
        }
    }

    fn persist(&mut self) {
        let Some((&height, block)) = self.verified.last_key_value() else {
            return;
        };
        match self.store.save_trusted(self.rpc.chain(), block) {
            Ok(()) => self.persisted = height,
            Err(e) => {
                warn!(chain = self.rpc.chain(), error = %e, "cannot persist the trusted state")
            }
        }
    }

    fn fetch_err(&self, height: u64, e: impl std::fmt::Display) -> RelayError {
        RelayError::new(
            ErrorKind::Unavailable,
            format!("{}: light block {height}: {e}", self.rpc.chain()),
        )
    }

    /// Trusts the block at `height` because the counterparty's client holds it: its app hash and next
    /// validators hash must equal the on-chain consensus state, and its commit must carry +2/3 of its validators.
    async fn adopt_anchor(
        &mut self,
        height: u64,
        anchor: &(Vec<u8>, Vec<u8>),
    ) -> Result<(), RelayError> {
        let chain = self.rpc.chain().to_owned();
        let rpc = self.rpc.pinned();
        let block = rpc
            .fetch_light_block(height)
            .await
            .map_err(|e| self.fetch_err(height, e))?;
        verify_signed_header(&chain, &block).map_err(|e| refused(&rpc, e))?;
        let header = &block.signed_header.header;
        if header.app_hash.as_bytes() != anchor.0.as_slice()
            || header.next_validators_hash.as_bytes() != anchor.1.as_slice()
        {
            let reason = format!("{chain}: the node's header at {height} does not match the counterparty client's consensus state");
            rpc.blame(&reason);
            return Err(RelayError::new(ErrorKind::Unverified, reason));
        }
        info!(chain = %chain, height, "trusted state anchored on the counterparty client's consensus state");
        self.remember(block);
        Ok(())
    }

    /// Waits until the chain has committed `height`: a proof read at the latest height `h` needs the header at
    /// `h + 1`, which the next block brings.
    async fn wait_for(&self, height: u64) -> Result<(), RelayError> {
        if self.verified.contains_key(&height) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + WAIT_FOR_HEIGHT;
        let mut tip = self.rpc.pool().tip();
        loop {
            // The node is asked once something says the height is there (the chain's new-block events, the pool's
            // probes) or a block's worth of waiting has passed without word.
            let _ = tokio::time::timeout(TIP_WAIT, tip.wait_for(|t| *t >= height)).await;
            let (_, latest) = self
                .rpc
                .status()
                .await
                .map_err(|e| RelayError::new(ErrorKind::Unavailable, e.to_string()))?;
            if latest >= height {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RelayError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{}: height {height} not reached (latest {latest})",
                        self.rpc.chain()
                    ),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The header at `target`, verified from the closest trusted block below it.
    async fn verified_at(
        &mut self,
        target: u64,
        anchor: Option<(u64, &Anchor)>,
    ) -> Result<LightBlock, RelayError> {
        if let Some(block) = self.verified.get(&target) {
            return Ok(block.clone());
        }
        if self.verified.range(..=target).next().is_none() {
            match anchor {
                Some((height, anchor)) if height <= target => {
                    self.adopt_anchor(height, anchor).await?
                }
                _ => {
                    return Err(RelayError::new(
                        ErrorKind::ClientUnusable,
                        format!(
                        "{}: no trusted state at or below height {target}; run `relayd light init`",
                        self.rpc.chain()
                    ),
                    ))
                }
            }
        }
        let (_, root) = self
            .verified
            .range(..=target)
            .next_back()
            .map(|(h, b)| (*h, b.clone()))
            .ok_or_else(|| RelayError::new(ErrorKind::Unverified, "no trusted root"))?;
        if root.height().value() == target {
            return Ok(root);
        }
        let chain = self.rpc.chain().to_owned();
        let rpc = self.rpc.pinned();
        let headers = headers_to(&chain, &rpc, &root, target, &self.trust, Time::now())
            .await
            .map_err(|e| refused(&rpc, e))?;
        for block in &headers {
            self.remember(block.clone());
        }
        headers
            .last()
            .cloned()
            .ok_or_else(|| RelayError::new(ErrorKind::Unverified, "empty header path"))
    }
}

impl LightSource for CosmosLight {
    async fn prepare_update(
        &mut self,
        client_id: &str,
        trusted_height: u64,
        anchor: Option<(Vec<u8>, Vec<u8>)>,
        target: u64,
        signer: &str,
    ) -> Result<ClientUpdate, RelayError> {
        self.wait_for(target).await?;
        let block = self
            .verified_at(target, anchor.as_ref().map(|a| (trusted_height, a)))
            .await?;
        let app_hash = block.signed_header.header.app_hash.as_bytes().to_vec();
        let msgs = if trusted_height == target {
            Vec::new()
        } else if trusted_height > target {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{client_id} is already at {trusted_height}, above {target}; prove again at a newer height"
                ),
            ));
        } else {
            // The counterparty judges the update from its own consensus state at `trusted_height`; the header
            // it trusts from is taken from the node and checked by the counterparty, not by us.
            let rpc = self.rpc.pinned();
            let from = rpc
                .fetch_light_block(trusted_height)
                .await
                .map_err(|e| self.fetch_err(trusted_height, e))?;
            let chain = self.rpc.chain().to_owned();
            let headers = headers_to(&chain, &rpc, &from, target, &self.trust, Time::now())
                .await
                .map_err(|e| refused(&rpc, e))?;
            // Whatever path the update takes, it must end at the header our own light client verified.
            if headers.last().map(|b| b.signed_header.header.hash())
                != Some(block.signed_header.header.hash())
            {
                // Both verified from trusted states: not one node's lie to quarantine, a conflict to look into.
                return Err(RelayError::new(
                    ErrorKind::Unverified,
                    format!("{chain}: the node served two different headers at {target}"),
                ));
            }
            update_client_msgs(client_id, &from, &headers, signer)
                .into_iter()
                .map(|a| Datagram {
                    type_url: a.type_url,
                    value: a.value,
                })
                .collect()
        };
        Ok(ClientUpdate {
            target,
            app_hash,
            msgs,
        })
    }

    async fn refresh(&mut self) -> Result<u64, RelayError> {
        let (_, latest) = self
            .rpc
            .status()
            .await
            .map_err(|e| RelayError::new(ErrorKind::Unavailable, e.to_string()))?;
        if self.verified.is_empty() {
            return Err(RelayError::new(
                ErrorKind::ClientUnusable,
                format!("{}: no trusted state yet", self.rpc.chain()),
            ));
        }
        let block = self.verified_at(latest, None).await?;
        self.persist();
        Ok(block.height().value())
    }

    async fn verified_header(
        &mut self,
        height: u64,
        anchor: Option<(u64, Anchor)>,
    ) -> Result<HeaderAt, RelayError> {
        // relayd's own updates were verified moments ago: their headers are answered without asking the node.
        if let Some(block) = self.verified.get(&height) {
            return Ok(HeaderAt::Reached(OurHeader::encode(
                &block.signed_header,
                &block.validators,
            )));
        }
        let (_, latest) = self
            .rpc
            .status()
            .await
            .map_err(|e| RelayError::new(ErrorKind::Unavailable, e.to_string()))?;
        let reached = latest >= height;
        let at = if reached { height } else { latest };
        let block = self
            .verified_at(at, anchor.as_ref().map(|(h, a)| (*h, a)))
            .await?;
        let header = OurHeader::encode(&block.signed_header, &block.validators);
        Ok(if reached {
            HeaderAt::Reached(header)
        } else {
            HeaderAt::NotYet(header)
        })
    }
}

/// Transactions of one Cosmos account.
pub struct CosmosSubmitter {
    inner: TxSubmitter,
    max_msgs: usize,
    metrics: Option<(crate::metrics::Metrics, String)>,
    /// Not the chain's primary signer: datagrams (built for the primary) get this account as their signer.
    resign: bool,
    /// The account's key name and the chain's `min_balance`, once its funds are watched.
    funds: Option<(String, Option<u128>)>,
}

impl CosmosSubmitter {
    /// Wraps a transaction submitter.
    pub fn new(inner: TxSubmitter, max_msgs: usize) -> Self {
        Self {
            inner,
            max_msgs,
            metrics: None,
            resign: false,
            funds: None,
        }
    }

    /// Has the lane read this account's fee-denom balance, as key `key`, drained below `minimum` if set.
    pub fn watched(mut self, key: String, minimum: Option<u128>) -> Self {
        self.funds = Some((key, minimum));
        self
    }

    /// A submitter of one of the chain's further accounts: it sets itself as the signer of every datagram.
    pub fn resigning(mut self) -> Self {
        self.resign = true;
        self
    }

    /// Records every transaction's outcome in `metrics`, labelled with `chain`.
    pub fn metered(mut self, metrics: crate::metrics::Metrics, chain: String) -> Self {
        self.metrics = Some((metrics, chain));
        self
    }

    fn record(&self, done: &[TxReport], failed: bool) {
        record(self.metrics.as_ref(), done, failed);
    }
}

fn record(metrics: Option<&(crate::metrics::Metrics, String)>, done: &[TxReport], failed: bool) {
    let Some((metrics, chain)) = metrics else {
        return;
    };
    for r in done {
        metrics.tx(chain, Ok((r.messages, r.gas_used)));
    }
    if failed {
        metrics.tx(chain, Err(()));
    }
}

fn report(o: super::tx::TxOutcome) -> TxReport {
    TxReport {
        tx_hash: o.hash,
        height: o.height,
        messages: o.messages,
        gas_used: o.gas_used,
    }
}

fn anys(msgs: Vec<Datagram>) -> Vec<Any> {
    msgs.into_iter()
        .map(|d| Any {
            type_url: d.type_url,
            value: d.value,
        })
        .collect()
}

/// How a transaction failure reads to the builders.
pub fn tx_error(e: &TxError) -> RelayError {
    let kind = match e {
        TxError::AlreadyRelayed { .. } => ErrorKind::AlreadyRelayed,
        TxError::Rejected { .. } => ErrorKind::Rejected,
        _ => ErrorKind::Unavailable,
    };
    let refusal = match e {
        TxError::AlreadyRelayed { .. } => Some(Refusal::AlreadyRelayed),
        TxError::Sequence { .. } => Some(Refusal::SequenceMismatch),
        TxError::OutOfGas { .. } => Some(Refusal::OutOfGas),
        TxError::InsufficientFee { .. } => Some(Refusal::InsufficientFee),
        TxError::Rejected { refusal, .. } => *refusal,
        _ => None,
    };
    RelayError::new(kind, e.to_string()).with_refusal(refusal)
}

impl Submitter for CosmosSubmitter {
    fn signer(&self) -> &str {
        self.inner.address()
    }

    fn own(&self, msgs: Vec<Datagram>) -> Result<Vec<Datagram>, RelayError> {
        if !self.resign {
            return Ok(msgs);
        }
        let signer = self.inner.address();
        msgs.into_iter()
            .map(|d| super::signer::with_signer(d, signer))
            .collect()
    }

    fn wallet(&self) -> Option<Wallet> {
        let (key, minimum) = self.funds.clone()?;
        let rpc = self.inner.rpc().clone();
        let address = self.inner.address().to_owned();
        let denom = self.inner.config().fee_denom.clone();
        let read_denom = denom.clone();
        Some(Wallet {
            key,
            denom,
            minimum,
            read: std::rc::Rc::new(move || {
                let (rpc, address, denom) = (rpc.clone(), address.clone(), read_denom.clone());
                Box::pin(async move {
                    let coins = rpc
                        .bank_balances(&address, Some(&denom))
                        .await
                        .map_err(crate::querier::chain_error)?;
                    let amount = coins.first().map_or("0", |(_, a)| a.as_str());
                    amount.parse::<u128>().map_err(|e| {
                        RelayError::new(
                            ErrorKind::Unavailable,
                            format!("balance of {address}: amount {amount:?}: {e}"),
                        )
                    })
                })
            }),
        })
    }

    fn max_msgs(&self) -> usize {
        self.max_msgs
    }

    fn max_in_flight(&self) -> usize {
        self.inner.config().max_in_flight.max(1)
    }

    async fn submit(&mut self, msgs: Vec<Datagram>) -> TxOutcomes {
        match self.inner.submit(anys(msgs)).await {
            Ok(done) => {
                let done: Vec<TxReport> = done.into_iter().map(report).collect();
                self.record(&done, false);
                Ok(done)
            }
            Err((done, e)) => {
                let done: Vec<TxReport> = done.into_iter().map(report).collect();
                self.record(&done, true);
                Err((done, tx_error(&e)))
            }
        }
    }

    async fn admit(&mut self, msgs: Vec<Datagram>) -> Result<Confirmation, RelayError> {
        let config = self.inner.config();
        let (max_num, max_size) = (config.max_msg_num, config.max_tx_size);
        let mut waits = Vec::new();
        let mut refused = None;
        for batch in batches(anys(msgs), max_num, max_size) {
            match self.inner.admit_batch(&batch).await {
                Ok(admitted) => waits.push(self.inner.confirmation(admitted)),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if waits.is_empty() {
            if let Some(e) = refused {
                self.record(&[], true);
                return Err(tx_error(&e));
            }
        }
        let metrics = self.metrics.clone();
        Ok(Box::pin(async move {
            // Every admitted transaction is waited for, so none counts as in flight after the outcome is out.
            let outcomes = futures::future::join_all(waits).await;
            let mut done = Vec::new();
            let mut failed = None;
            for outcome in outcomes {
                match outcome {
                    Ok(o) if failed.is_none() => done.push(report(o)),
                    Ok(_) => {}
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            match failed.or(refused) {
                None => {
                    record(metrics.as_ref(), &done, false);
                    Ok(done)
                }
                Some(e) => {
                    record(metrics.as_ref(), &done, true);
                    Err((done, tx_error(&e)))
                }
            }
        }))
    }
}

impl EventSource for EventMonitor {
    async fn run(
        self,
        start: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()> + 'static,
    ) {
        EventMonitor::run(self, start, sink, shutdown).await;
    }

    fn status(&self) -> Option<tokio::sync::watch::Receiver<crate::chain_monitor::MonitorStatus>> {
        Some(EventMonitor::status(self))
    }
}
