//! How builders and the coordinator reach one chain's actors: a bundle of recipients that the chain's
//! supervisor re-points whenever it restarts a child, so callers never hold the address of a dead actor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub mod breaker;
pub mod outcomes;
pub mod verification;

use relayd_messages::{
    ActorKind, ActorLoad, ChainId, ClientSummary, ClientUpdate, Datagram, ErrorKind, HeaderAt,
    ObservedEvent, PrepareClientUpdate, Proven, QueryClient, QueryCommitments, QueryPacketEvents,
    QueryProof, QueryTxMessages, QueryUnreceived, QueryVerifiedHeader, QueryVerifiedHeads,
    QueryVerifiedRoot, RelayError, SubmitTx, TxReport, VerifiedHead,
};

use crate::meter::Meter;
use crate::store::now_ms;
use breaker::{BreakerStatus, CircuitBreaker};
use tracing::{error, info};
use verification::{Check, Transition, VerificationRecord, VerificationStatus};

use actix::{MailboxError, Message, Recipient};

use crate::chain::proof::ProofFormat;

/// The current recipients of one chain's actors (`None` while a child is down).
#[derive(Default, Clone)]
pub struct ChainRecipients {
    /// Querier: proven reads.
    pub proof: Option<Recipient<QueryProof>>,
    /// Querier: hosted clients.
    pub client: Option<Recipient<QueryClient>>,
    /// Querier: commitments of a channel.
    pub commitments: Option<Recipient<QueryCommitments>>,
    /// Querier: unreceived packets and acks.
    pub unreceived: Option<Recipient<QueryUnreceived>>,
    /// Querier: old send and write-ack events.
    pub events: Option<Recipient<QueryPacketEvents>>,
    /// Querier: a committed transaction's messages.
    pub tx_messages: Option<Recipient<QueryTxMessages>>,
    /// LightClient: verified client updates.
    pub update: Option<Recipient<PrepareClientUpdate>>,
    /// LightClient: verified headers.
    pub header: Option<Recipient<QueryVerifiedHeader>>,
    /// LightClient: the heads it verified (chains that prove at verified heads only).
    pub heads: Option<Recipient<QueryVerifiedHeads>>,
    /// LightClient: the state root of a block it verified (NEAR).
    pub root: Option<Recipient<QueryVerifiedRoot>>,
    /// TxSubmitter: transactions.
    pub submit: Option<Recipient<SubmitTx>>,
}

/// A chain as other actors see it.
#[derive(Clone)]
pub struct ChainLink {
    /// The chain.
    pub chain: ChainId,
    /// The account relayd signs with on this chain.
    pub signer: String,
    /// Every signing account of the chain as (key name, address), the primary first; empty when the chain has
    /// one signer known only as [`Self::signer`].
    pub signers: Vec<(String, String)>,
    /// The chain's IBC store prefix (the commitment prefix counterparties check its proofs under).
    pub prefix: Vec<u8>,
    /// How the chain proves its state: what relayd checks the proofs it forwards from it as, and how it picks
    /// their heights.
    pub proofs: ProofFormat,
    slots: Arc<RwLock<ChainRecipients>>,
    /// The TxSubmitter's signer lanes, as it last published them.
    lanes: crate::tx_submitter::LaneBoard,
    breaker: Arc<Mutex<CircuitBreaker>>,
    /// What relayd refused of the node because it did not verify, across the actors' restarts.
    verification: Arc<Mutex<VerificationRecord>>,
    /// Per kind of child, across its restarts: requests through links (querier, light client, submitter) and
    /// the monitor's blocks.
    loads: Arc<[Meter; 4]>,
    /// The highest block the monitor reported (0: none yet).
    tip: Arc<AtomicU64>,
    /// For connections on this chain whose client's chain was found: (client, the relayed chain it tracks). A
    /// connection's client never changes, so handshake builders locating channels over one connection read and
    /// judge it once, not once per channel.
    tracked: Arc<Mutex<HashMap<String, (String, ChainId)>>>,
    /// Transactions submitted through this link whose outcome its caller has not taken in yet.
    pub outcomes: outcomes::Outcomes,
}

/// How many connections [`ChainLink::tracked_by`] remembers; beyond it the record starts again.
const TRACKED_CONNECTIONS: usize = 4096;

fn load_index(kind: ActorKind) -> Option<usize> {
    match kind {
        ActorKind::Querier => Some(0),
        ActorKind::LightClient => Some(1),
        ActorKind::TxSubmitter => Some(2),
        ActorKind::ChainMonitor => Some(3),
        _ => None,
    }
}

/// Counts a request as answered when dropped, so a cancelled caller does not leave it in flight forever.
struct InFlight<'a>(&'a Meter);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.took();
    }
}

fn down(chain: &ChainId, what: &str) -> RelayError {
    RelayError::new(
        ErrorKind::Stopped,
        format!("{chain}: the {what} is restarting"),
    )
}

fn mailbox(chain: &ChainId, what: &str, e: MailboxError) -> RelayError {
    RelayError::new(ErrorKind::Stopped, format!("{chain}: {what}: {e}"))
}

impl ChainLink {
    /// A link with no actors yet.
    pub fn new(chain: ChainId, signer: String, prefix: Vec<u8>) -> Self {
        Self {
            chain,
            signer,
            prefix,
            proofs: ProofFormat::Ics23,
            signers: Vec::new(),
            slots: Arc::new(RwLock::new(ChainRecipients::default())),
            lanes: crate::tx_submitter::LaneBoard::default(),
            breaker: Arc::new(Mutex::new(CircuitBreaker::default())),
            verification: Arc::new(Mutex::new(VerificationRecord::default())),
            loads: Arc::new(Default::default()),
            tip: Arc::new(AtomicU64::new(0)),
            tracked: Arc::new(Mutex::new(HashMap::new())),
            outcomes: outcomes::Outcomes::default(),
        }
    }

    /// The client of `connection` and the relayed chain it tracks, if a handshake builder found them before.
    pub fn tracked_by(&self, connection: &str) -> Option<(String, ChainId)> {
        let map = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        map.get(connection).cloned()
    }

    /// Records that `connection` is built on `client`, which tracks `chain` (found from the chain's proven state).
    pub fn record_tracked(&self, connection: &str, client: &str, chain: &ChainId) {
        let mut map = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= TRACKED_CONNECTIONS && !map.contains_key(connection) {
            map.clear();
        }
        map.insert(connection.to_owned(), (client.to_owned(), chain.clone()));
    }

    /// The board the chain's TxSubmitter publishes its signer lanes on (balances, drained lanes, their work).
    pub fn lane_board(&self) -> crate::tx_submitter::LaneBoard {
        self.lanes.clone()
    }

    /// The chain's signer lanes as last published (empty before its TxSubmitter first ran).
    pub fn lanes(&self) -> Vec<crate::tx_submitter::LaneView> {
        self.lanes.lanes()
    }

    /// The link of a chain with several signing accounts, (key name, address) each, the primary first.
    pub fn with_signers(mut self, signers: Vec<(String, String)>) -> Self {
        self.signers = signers;
        self
    }

    /// The link of a chain that proves its state as `proofs` (ICS-23, the default, or NEAR state proofs).
    pub fn with_proofs(mut self, proofs: ProofFormat) -> Self {
        self.proofs = proofs;
        self
    }

    /// Records a block the chain's monitor reported (the coordinator, as blocks arrive).
    pub fn observe_tip(&self, height: u64) {
        self.tip.fetch_max(height, Ordering::Relaxed);
    }

    /// The highest block reported so far, if any.
    pub fn tip(&self) -> Option<u64> {
        Some(self.tip.load(Ordering::Relaxed)).filter(|h| *h > 0)
    }

    /// The load on the chain's actors of `kind`: for the querier, light client and submitter the requests sent
    /// through this link (by every clone of it), waiting or being answered, and those answered; for the monitor
    /// the blocks read from the node and not yet accepted by the coordinator, and those delivered.
    pub fn load(&self, kind: ActorKind) -> Option<ActorLoad> {
        Some(self.loads[load_index(kind)?].load())
    }

    /// The meter of the chain's monitor (its incarnations count together).
    pub fn monitor_meter(&self) -> Meter {
        self.loads[3].clone()
    }

    /// The chain's circuit breaker, as reported.
    pub fn breaker(&self) -> BreakerStatus {
        self.with_breaker(|b| b.status())
    }

    /// The chain's verification alarm, as reported.
    pub fn verification(&self) -> VerificationStatus {
        self.with_verification(|v| v.status())
    }

    /// Records that `check` refused what the chain's node served (`error` says why): the alarm is raised, at
    /// ERROR the first time, and nothing read from the node with it is forwarded (the caller drops it).
    pub fn refused(&self, check: Check, error: &RelayError) {
        let raised = self.with_verification(|v| v.refused(check, &error.message, now_ms()));
        if raised == Transition::Raised {
            error!(
                chain = %self.chain,
                check = ?check,
                error = %error.message,
                "verification alarm: the node served what does not verify; nothing read from it is forwarded until it verifies again"
            );
        }
    }

    /// Records that `check` verified what the chain's node served, which ends that check's alarm.
    pub fn verified(&self, check: Check) {
        if self.with_verification(|v| v.verified(check)) == Transition::Cleared {
            info!(chain = %self.chain, check = ?check, "verification alarm cleared: the node's answers verify again");
        }
    }

    fn with_verification<T>(&self, f: impl FnOnce(&mut VerificationRecord) -> T) -> T {
        let mut guard = match self.verification.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn with_breaker<T>(&self, f: impl FnOnce(&mut CircuitBreaker) -> T) -> T {
        let mut guard = match self.breaker.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Replaces the recipients (the supervisor, after (re)starting children).
    pub fn update(&self, f: impl FnOnce(&mut ChainRecipients)) {
        let mut guard = match self.slots.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    fn get<M>(
        &self,
        pick: impl FnOnce(&ChainRecipients) -> Option<Recipient<M>>,
    ) -> Option<Recipient<M>>
    where
        M: Message + Send,
        M::Result: Send,
    {
        let guard = match self.slots.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        pick(&guard)
    }

    async fn ask<M, T>(
        &self,
        kind: ActorKind,
        what: &str,
        pick: impl FnOnce(&ChainRecipients) -> Option<Recipient<M>>,
        msg: M,
    ) -> Result<T, RelayError>
    where
        M: Message<Result = Result<T, RelayError>> + Send + 'static,
        T: Send + 'static,
    {
        let recipient = self.get(pick).ok_or_else(|| down(&self.chain, what))?;
        if !self.with_breaker(|b| b.allow(Instant::now())) {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{}: circuit open after repeated node failures; not asking the {what}",
                    self.chain
                ),
            ));
        }
        let load = load_index(kind).map(|i| &self.loads[i]);
        let _counted = load.map(|l| {
            l.queued();
            InFlight(l)
        });
        let result = match recipient.send(msg).await {
            Ok(result) => result,
            Err(e) => {
                // The actor went away mid-request (a restart): no verdict on the node.
                self.with_breaker(|b| b.record(false, Instant::now()));
                return Err(mailbox(&self.chain, what, e));
            }
        };
        // Only the node's own failures count: refusals and "already relayed" are answers, and a restarting
        // actor is relayd's business, not the node's.
        let node_failed = matches!(
            &result,
            Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Unverified)
        );
        self.with_breaker(|b| b.record(node_failed, Instant::now()));
        // A light client that refuses what the node served raises the chain's alarm (what clears it are the
        // answers that checked the node's newest blocks: `prepare_update` and `verified_heads`); so does a read
        // the node answered without the proof asked for (a proof that verifies clears it, `Prover::verify`).
        if let Err(e) = &result {
            match (kind, e.kind) {
                (ActorKind::LightClient, ErrorKind::Unverified) => {
                    self.refused(Check::LightClient, e)
                }
                (ActorKind::Querier, ErrorKind::Unverified) => self.refused(Check::Proof, e),
                _ => {}
            }
        }
        result
    }

    /// Reads an ICS-24 path with a proof.
    pub async fn query_proof(&self, msg: QueryProof) -> Result<Proven, RelayError> {
        self.ask(ActorKind::Querier, "querier", |r| r.proof.clone(), msg)
            .await
    }

    /// Reads a hosted client.
    pub async fn query_client(&self, msg: QueryClient) -> Result<ClientSummary, RelayError> {
        self.ask(ActorKind::Querier, "querier", |r| r.client.clone(), msg)
            .await
    }

    /// Sequences with commitments on a channel.
    pub async fn query_commitments(&self, msg: QueryCommitments) -> Result<Vec<u64>, RelayError> {
        self.ask(
            ActorKind::Querier,
            "querier",
            |r| r.commitments.clone(),
            msg,
        )
        .await
    }

    /// Unreceived packets or acks.
    pub async fn query_unreceived(&self, msg: QueryUnreceived) -> Result<Vec<u64>, RelayError> {
        self.ask(ActorKind::Querier, "querier", |r| r.unreceived.clone(), msg)
            .await
    }

    /// Send or write-ack events of packets relayd never saw.
    pub async fn query_packet_events(
        &self,
        msg: QueryPacketEvents,
    ) -> Result<Vec<ObservedEvent>, RelayError> {
        self.ask(ActorKind::Querier, "querier", |r| r.events.clone(), msg)
            .await
    }

    /// The messages of a committed transaction.
    pub async fn query_tx_messages(
        &self,
        msg: QueryTxMessages,
    ) -> Result<Vec<Datagram>, RelayError> {
        self.ask(
            ActorKind::Querier,
            "querier",
            |r| r.tx_messages.clone(),
            msg,
        )
        .await
    }

    /// A verified client update.
    pub async fn prepare_update(
        &self,
        msg: PrepareClientUpdate,
    ) -> Result<ClientUpdate, RelayError> {
        let update = self
            .ask(
                ActorKind::LightClient,
                "light client",
                |r| r.update.clone(),
                msg,
            )
            .await?;
        self.verified(Check::LightClient);
        Ok(update)
    }

    /// The chain's header at a height, verified by relayd's own light client.
    pub async fn verified_header(&self, msg: QueryVerifiedHeader) -> Result<HeaderAt, RelayError> {
        self.ask(
            ActorKind::LightClient,
            "light client",
            |r| r.header.clone(),
            msg,
        )
        .await
    }

    /// The heads relayd's light client verified (chains that prove at verified heads only).
    pub async fn verified_heads(
        &self,
        msg: QueryVerifiedHeads,
    ) -> Result<Vec<VerifiedHead>, RelayError> {
        let heads = self
            .ask(
                ActorKind::LightClient,
                "light client",
                |r| r.heads.clone(),
                msg,
            )
            .await?;
        // The light client refreshed from the node's newest blocks first: they verified.
        self.verified(Check::LightClient);
        Ok(heads)
    }

    /// The state root of the block at a height, as relayd's light client verified it (NEAR chains).
    pub async fn verified_root(&self, msg: QueryVerifiedRoot) -> Result<Vec<u8>, RelayError> {
        self.ask(
            ActorKind::LightClient,
            "light client",
            |r| r.root.clone(),
            msg,
        )
        .await
    }

    /// A transaction.
    pub async fn submit(&self, msg: SubmitTx) -> Result<TxReport, RelayError> {
        self.ask(
            ActorKind::TxSubmitter,
            "tx submitter",
            |r| r.submit.clone(),
            msg,
        )
        .await
    }

    /// Whether every child is up.
    pub fn is_complete(&self) -> bool {
        self.get(|r| r.proof.clone()).is_some()
            && self.get(|r| r.update.clone()).is_some()
            && self.get(|r| r.submit.clone()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    use actix::{Actor, Context, Handler};
    use relayd_messages::{
        ChainId, CorrelationId, ErrorKind, Proven, QueryProof, QueryVerifiedHeads, RelayError,
        VerifiedHead,
    };

    use super::ChainLink;
    use crate::chain_link::breaker::{BreakerState, FAILURE_THRESHOLD};

    /// A querier whose node is down: every read fails, and every request is counted.
    struct DownNode(Arc<AtomicU32>);

    impl Actor for DownNode {
        type Context = Context<Self>;
    }

    impl Handler<QueryProof> for DownNode {
        type Result = Result<Proven, RelayError>;

        fn handle(&mut self, _: QueryProof, _: &mut Self::Context) -> Self::Result {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(RelayError::new(
                ErrorKind::Unavailable,
                "connection refused",
            ))
        }
    }

    #[actix_rt::test]
    async fn a_failing_node_is_not_asked_again_while_the_circuit_is_open() {
        let asked = Arc::new(AtomicU32::new(0));
        let node = DownNode(asked.clone()).start();
        let link = ChainLink::new(ChainId::new("ibc-0").unwrap(), "relayer".into(), Vec::new());
        link.update(|r| r.proof = Some(node.recipient()));
        let read = || QueryProof {
            correlation: CorrelationId::fresh(),
            path: "clients/07-tendermint-0/clientState".into(),
            height: None,
        };
        for _ in 0..20 {
            let e = link.query_proof(read()).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unavailable);
        }
        assert_eq!(asked.load(Ordering::SeqCst), FAILURE_THRESHOLD);
        assert_eq!(link.breaker().state, BreakerState::Open);
        assert_eq!(link.breaker().opened, 1);
    }

    /// A light client whose node lies while `lying` is set: its blocks break a rule.
    struct LiedTo(Arc<AtomicBool>);

    impl Actor for LiedTo {
        type Context = Context<Self>;
    }

    impl Handler<QueryVerifiedHeads> for LiedTo {
        type Result = Result<Vec<VerifiedHead>, RelayError>;

        fn handle(&mut self, _: QueryVerifiedHeads, _: &mut Self::Context) -> Self::Result {
            if self.0.load(Ordering::SeqCst) {
                return Err(RelayError::new(
                    ErrorKind::Unverified,
                    "block 38: approval 0 is not a valid signature by node0",
                ));
            }
            Ok(Vec::new())
        }
    }

    #[actix_rt::test]
    async fn a_light_client_refusal_raises_the_chains_alarm_until_its_answers_verify_again() {
        let lying = Arc::new(AtomicBool::new(true));
        let light = LiedTo(lying.clone()).start();
        let link = ChainLink::new(
            ChainId::new("near-0").unwrap(),
            "relayer".into(),
            Vec::new(),
        );
        link.update(|r| r.heads = Some(light.recipient()));
        let heads = || QueryVerifiedHeads {
            correlation: CorrelationId::fresh(),
            from: 0,
        };
        for _ in 0..2 {
            let e = link.verified_heads(heads()).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unverified);
        }
        let status = link.verification();
        assert!(status.alarm && status.light_client.alarm);
        assert_eq!(status.light_client.refused, 2);
        assert_eq!(
            status.light_client.last_error.as_deref(),
            Some("block 38: approval 0 is not a valid signature by node0")
        );
        assert!(!status.proofs.alarm);
        // Every clone of the link (the admin API's, the builders') sees the same record.
        assert_eq!(link.clone().verification(), status);

        lying.store(false, Ordering::SeqCst);
        link.verified_heads(heads()).await.unwrap();
        let status = link.verification();
        assert!(!status.alarm);
        assert_eq!(status.light_client.refused, 2);
    }

    #[test]
    fn a_connection_s_tracked_chain_is_remembered_within_its_bound() {
        let link = ChainLink::new(ChainId::new("ibc-0").unwrap(), String::new(), Vec::new());
        let other = ChainId::new("ibc-1").unwrap();
        assert_eq!(link.tracked_by("connection-0"), None);
        link.record_tracked("connection-0", "07-tendermint-0", &other);
        // Clones share the record, as the coordinator's builders do.
        assert_eq!(
            link.clone().tracked_by("connection-0"),
            Some(("07-tendermint-0".to_owned(), other.clone()))
        );
        for i in 1..super::TRACKED_CONNECTIONS {
            link.record_tracked(&format!("connection-{i}"), "07-tendermint-0", &other);
        }
        assert!(link.tracked_by("connection-0").is_some());
        // One more than the bound starts the record again.
        link.record_tracked("connection-x", "07-tendermint-0", &other);
        assert_eq!(link.tracked_by("connection-0"), None);
        assert!(link.tracked_by("connection-x").is_some());
    }
}
