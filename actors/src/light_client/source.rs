//! What a chain backend implements for the LightClient actor: verified headers of its chain, turned into updates
//! of a client of it hosted on a counterparty. Cosmos and NEAR each implement it in their `backend` module.

use relayd_messages::{
    ClientUpdate, ConsensusAnchor, ErrorKind, HeaderAt, RelayError, VerifiedHead,
};

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

    /// The heads verified at or above `from`, newest first, after moving the trusted state to the chain's latest.
    /// Only chains whose light client verifies some heights only (NEAR) answer; a Cosmos light client verifies
    /// any height on demand, so its proof heights follow the queried state instead.
    async fn verified_heads(&mut self, from: u64) -> Result<Vec<VerifiedHead>, RelayError> {
        Err(RelayError::new(
            ErrorKind::Rejected,
            format!("heights from {from}: this chain's light client verifies any height; it lists no heads"),
        ))
    }

    /// The state root the block at `height` commits to, from a block relayd's light client verified (NEAR: its
    /// `prev_state_root`). Only NEAR light clients answer: a Tendermint client's chain names itself in its state.
    async fn verified_root(&mut self, height: u64) -> Result<Vec<u8>, RelayError> {
        Err(RelayError::new(
            ErrorKind::Rejected,
            format!("height {height}: this chain's clients name their chain; no root is looked up"),
        ))
    }
}
