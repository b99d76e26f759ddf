//! The three stateful parts of a chain backend that the per-chain actors drive, beside the stateless
//! [`ChainEndpoint`](super::endpoint::ChainEndpoint): a light client that prepares verified client updates, a
//! transaction submitter and an event source. Cosmos implements them in `cosmos::backend`; NEAR implements the
//! same traits, so the actors run over either unchanged.

use std::future::Future;
use std::pin::Pin;

use relayd_messages::{
    ClientUpdate, ConsensusAnchor, Datagram, HeaderAt, ObservedEvent, RelayError, TxReport,
};
use tokio::sync::mpsc;

/// One block's IBC events, delivered for every height in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEvents {
    /// The block height.
    pub height: u64,
    /// The block time, ns since the epoch.
    pub time_ns: u64,
    /// Its IBC events in block order.
    pub events: Vec<ObservedEvent>,
}

/// Verified headers of this chain, turned into updates of a client of it hosted on a counterparty.
#[allow(async_fn_in_trait)]
pub trait LightSource: Unpin {
    /// Verifies the header at `target` with relayd's own light client and returns its app hash, plus the update
    /// messages that bring `client_id` (on the counterparty, at `trusted_height`) to `target`. `anchor` is the
    /// counterparty client's consensus state at `trusted_height` (app hash, next validators hash): when relayd
    /// holds no trusted state for the chain yet, a header is trusted only if it matches that on-chain anchor.
    async fn prepare_update(
        &mut self,
        client_id: &str,
        trusted_height: u64,
        anchor: Option<(Vec<u8>, Vec<u8>)>,
        target: u64,
        signer: &str,
    ) -> Result<ClientUpdate, RelayError>;

    /// Moves relayd's trusted state to the chain's latest block and persists it; returns its height.
    async fn refresh(&mut self) -> Result<u64, RelayError>;

    /// The chain's header at `height` as relayd's own light client verifies it, or its latest verified header
    /// when the chain has not reached `height` (misbehaviour detection compares the headers installed in clients
    /// of this chain with these). `anchor` is a height and a counterparty client's consensus state there, trusted
    /// only when relayd holds no trusted state at or below `height`, as in [`Self::prepare_update`].
    async fn verified_header(
        &mut self,
        height: u64,
        anchor: Option<(u64, ConsensusAnchor)>,
    ) -> Result<HeaderAt, RelayError>;
}

/// The outcome of admitted transactions: their reports, or what landed before the one that failed and why.
pub type TxOutcomes = Result<Vec<TxReport>, (Vec<TxReport>, RelayError)>;

/// Waits for the outcome of transactions a chain admitted (see [`Submitter::admit`]).
pub type Confirmation = Pin<Box<dyn Future<Output = TxOutcomes>>>;

/// Signs and broadcasts transactions for one account.
#[allow(async_fn_in_trait)]
pub trait Submitter: Unpin {
    /// The account that signs, as the chain spells it (datagrams carry it as their signer).
    fn signer(&self) -> &str;
    /// Sends `msgs` in order in as few transactions as the limits allow and waits for them to land; on failure
    /// returns what was done before it.
    async fn submit(&mut self, msgs: Vec<Datagram>) -> TxOutcomes;
    /// Most messages per transaction.
    fn max_msgs(&self) -> usize;
    /// Most transactions that may be admitted and waiting for their block at once; 1 sends the next
    /// transaction only once the previous one has its outcome.
    fn max_in_flight(&self) -> usize {
        1
    }
    /// Has the chain admit `msgs` (in order, in as few transactions as the limits allow) and returns the wait
    /// for their outcome, so that more can be admitted meanwhile. An error means nothing was admitted. By
    /// default the whole submission happens here and the confirmation is ready at once.
    async fn admit(&mut self, msgs: Vec<Datagram>) -> Result<Confirmation, RelayError> {
        let outcome = self.submit(msgs).await;
        Ok(Box::pin(std::future::ready(outcome)))
    }
}

/// Where a chain's blocks and IBC events come from.
pub trait EventSource: Unpin {
    /// Delivers every height from `start` on into `sink`, in order, until `shutdown` resolves or the sink
    /// closes. Node failures are retried inside.
    fn run(
        self,
        start: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> impl Future<Output = ()>;
}
