//! How builders and the coordinator reach one chain's actors: a bundle of recipients that the chain's
//! supervisor re-points whenever it restarts a child, so callers never hold the address of a dead actor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::{MailboxError, Message, Recipient};
use relayd_messages::{
    ActorKind, ChainId, ClientSummary, ClientUpdate, ErrorKind, PrepareClientUpdate, Proven,
    QueryClient, QueryCommitments, QueryProof, QueryUnreceived, RelayError, SubmitTx, TxReport,
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
    loads: Arc<[Load; 3]>,
}

/// Requests through a link to one kind of actor: how many await an answer and how many were answered.
#[derive(Default)]
struct Load {
    in_flight: AtomicU64,
    handled: AtomicU64,
}

/// What [`ChainLink::load`] reports for one kind of actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ActorLoad {
    /// Requests sent and not answered yet: those in the actor's mailbox plus the one it works on.
    pub mailbox_depth: u64,
    /// Requests answered (successfully or not) since the service started.
    pub messages_handled: u64,
}

fn load_index(kind: ActorKind) -> Option<usize> {
    match kind {
        ActorKind::Querier => Some(0),
        ActorKind::LightClient => Some(1),
        ActorKind::TxSubmitter => Some(2),
        _ => None,
    }
}

/// Counts a request as answered when dropped, so a cancelled caller does not leave it in flight forever.
struct InFlight<'a>(&'a Load);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.handled.fetch_add(1, Ordering::Relaxed);
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
            slots: Arc::new(RwLock::new(ChainRecipients::default())),
            loads: Arc::new(Default::default()),
        }
    }

    /// The requests sent through this link (by every clone of it) to the chain's actors of `kind`; `None` for
    /// kinds that are not reached through links (the monitor pushes, it is not asked).
    pub fn load(&self, kind: ActorKind) -> Option<ActorLoad> {
        let load = &self.loads[load_index(kind)?];
        Some(ActorLoad {
            mailbox_depth: load.in_flight.load(Ordering::Relaxed),
            messages_handled: load.handled.load(Ordering::Relaxed),
        })
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
        let load = load_index(kind).map(|i| &self.loads[i]);
        let _counted = load.map(|l| {
            l.in_flight.fetch_add(1, Ordering::Relaxed);
            InFlight(l)
        });
        recipient
            .send(msg)
            .await
            .map_err(|e| mailbox(&self.chain, what, e))?
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

    /// A verified client update.
    pub async fn prepare_update(
        &self,
        msg: PrepareClientUpdate,
    ) -> Result<ClientUpdate, RelayError> {
        self.ask(
            ActorKind::LightClient,
            "light client",
            |r| r.update.clone(),
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
