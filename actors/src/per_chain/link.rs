//! How builders and the coordinator reach one chain's actors: a bundle of recipients that the chain's
//! supervisor re-points whenever it restarts a child, so callers never hold the address of a dead actor.

use std::sync::{Arc, RwLock};

use actix::{MailboxError, Message, Recipient};
use relayd_messages::{
    ChainId, ClientSummary, ClientUpdate, ErrorKind, ObservedEvent, PrepareClientUpdate, Proven,
    QueryClient, QueryCommitments, QueryPacketEvents, QueryProof, QueryUnreceived, RelayError,
    SubmitTx, TxReport,
};

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
    /// LightClient: verified client updates.
    pub update: Option<Recipient<PrepareClientUpdate>>,
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
    /// The chain's IBC store prefix (the commitment prefix counterparties check its proofs under).
    pub prefix: Vec<u8>,
    slots: Arc<RwLock<ChainRecipients>>,
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
            slots: Arc::new(RwLock::new(ChainRecipients::default())),
        }
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
        what: &str,
        pick: impl FnOnce(&ChainRecipients) -> Option<Recipient<M>>,
        msg: M,
    ) -> Result<T, RelayError>
    where
        M: Message<Result = Result<T, RelayError>> + Send + 'static,
        T: Send + 'static,
    {
        let recipient = self.get(pick).ok_or_else(|| down(&self.chain, what))?;
        recipient
            .send(msg)
            .await
            .map_err(|e| mailbox(&self.chain, what, e))?
    }

    /// Reads an ICS-24 path with a proof.
    pub async fn query_proof(&self, msg: QueryProof) -> Result<Proven, RelayError> {
        self.ask("querier", |r| r.proof.clone(), msg).await
    }

    /// Reads a hosted client.
    pub async fn query_client(&self, msg: QueryClient) -> Result<ClientSummary, RelayError> {
        self.ask("querier", |r| r.client.clone(), msg).await
    }

    /// Sequences with commitments on a channel.
    pub async fn query_commitments(&self, msg: QueryCommitments) -> Result<Vec<u64>, RelayError> {
        self.ask("querier", |r| r.commitments.clone(), msg).await
    }

    /// Unreceived packets or acks.
    pub async fn query_unreceived(&self, msg: QueryUnreceived) -> Result<Vec<u64>, RelayError> {
        self.ask("querier", |r| r.unreceived.clone(), msg).await
    }

    /// Send or write-ack events of packets relayd never saw.
    pub async fn query_packet_events(
        &self,
        msg: QueryPacketEvents,
    ) -> Result<Vec<ObservedEvent>, RelayError> {
        self.ask("querier", |r| r.events.clone(), msg).await
    }

    /// A verified client update.
    pub async fn prepare_update(
        &self,
        msg: PrepareClientUpdate,
    ) -> Result<ClientUpdate, RelayError> {
        self.ask("light client", |r| r.update.clone(), msg).await
    }

    /// A transaction.
    pub async fn submit(&self, msg: SubmitTx) -> Result<TxReport, RelayError> {
        self.ask("tx submitter", |r| r.submit.clone(), msg).await
    }

    /// Whether every child is up.
    pub fn is_complete(&self) -> bool {
        self.get(|r| r.proof.clone()).is_some()
            && self.get(|r| r.update.clone()).is_some()
            && self.get(|r| r.submit.clone()).is_some()
    }
}
