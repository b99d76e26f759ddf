//! The factory that builds a chain's backends for its four actors (ChainMonitor, Querier, LightClient,
//! TxSubmitter) afresh on every (re)start.

use relayd_messages::{ChainId, RelayError};

use crate::chain::endpoint::ChainEndpoint;
use crate::chain_monitor::EventSource;
use crate::light_client::LightSource;
use crate::tx_submitter::Submitter;

/// Builds a chain's backends. Called on every (re)start, so a restarted actor never inherits a failed one's
/// state: caches, account sequences and connections are rebuilt from sled and the chain.
pub trait ChainFactory: 'static {
    /// Stateless queries.
    type Endpoint: ChainEndpoint + Clone + Unpin + 'static;
    /// The light client.
    type Light: LightSource + 'static;
    /// The transaction submitter.
    type Submit: Submitter + 'static;
    /// The block and event source.
    type Events: EventSource + 'static;

    /// The chain.
    fn chain_id(&self) -> &ChainId;
    /// A query endpoint.
    fn endpoint(&self) -> Self::Endpoint;
    /// A light client, starting from the trusted state in sled.
    fn light(&self) -> Result<Self::Light, RelayError>;
    /// A transaction submitter, with no cached account state.
    fn submitter(&self) -> Result<Self::Submit, RelayError>;
    /// Submitters of the chain's further signing accounts, each a lane of its own beside [`Self::submitter`]'s;
    /// none by default.
    fn extra_submitters(&self) -> Result<Vec<Self::Submit>, RelayError> {
        Ok(Vec::new())
    }
    /// An event source.
    fn events(&self) -> Result<Self::Events, RelayError>;
}
