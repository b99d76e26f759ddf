//! The light clients the devnet's ibc-rs hosts: ibc-rs's 07-tendermint and the devnet's NEAR client (`12-near`).
//! ibc-testkit's own client enums fix Tendermint and its mock client, so the devnet has its own, dispatched to
//! each client's ibc-rs trait implementation by ibc-rs's derive macros.

use core::fmt::Debug;

use basecoin_store::context::ProvableStore;
use ibc::clients::tendermint::client_state::ClientState as TmClientState;
use ibc::clients::tendermint::consensus_state::ConsensusState as TmConsensusState;
use ibc::clients::tendermint::types::{
    ClientState as TmClientStateType, ConsensusState as TmConsensusStateType,
    TENDERMINT_CLIENT_STATE_TYPE_URL, TENDERMINT_CONSENSUS_STATE_TYPE_URL,
};
use ibc::core::host::types::error::DecodingError;
use ibc::derive::{ClientState, ConsensusState};
use ibc::primitives::proto::{Any, Protobuf};
use ibc_testkit::testapp::ibc::clients as testkit;

use crate::host::DevnetHost;
use crate::near_client::{
    NearClientState, NearConsensusState, NEAR_CLIENT_STATE_TYPE_URL, NEAR_CONSENSUS_STATE_TYPE_URL,
};

/// A client state of any client the devnet hosts.
#[derive(Debug, Clone, PartialEq, ClientState)]
#[validation(DevnetHost<'a, S: ProvableStore + Debug>)]
#[execution(DevnetHost<'a, S: ProvableStore + Debug>)]
pub enum AnyClientState {
    /// ICS-07 Tendermint.
    Tendermint(TmClientState),
    /// The devnet's NEAR client.
    Near(NearClientState),
}

/// A consensus state of any client the devnet hosts.
// Consensus states are short-lived values read from and written to the store; boxing the NEAR one would need the
// ibc-rs traits on `Box`, which the derive does not dispatch through.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, ConsensusState)]
pub enum AnyConsensusState {
    /// ICS-07 Tendermint.
    Tendermint(TmConsensusState),
    /// The devnet's NEAR client.
    Near(NearConsensusState),
}

impl Protobuf<Any> for AnyClientState {}

impl TryFrom<Any> for AnyClientState {
    type Error = DecodingError;

    fn try_from(raw: Any) -> Result<Self, Self::Error> {
        match raw.type_url.as_str() {
            TENDERMINT_CLIENT_STATE_TYPE_URL => Ok(Self::Tendermint(TmClientState::try_from(raw)?)),
            NEAR_CLIENT_STATE_TYPE_URL => Ok(Self::Near(NearClientState::try_from(raw)?)),
            _ => Err(DecodingError::UnknownTypeUrl(raw.type_url)),
        }
    }
}

impl From<AnyClientState> for Any {
    fn from(cs: AnyClientState) -> Self {
        match cs {
            AnyClientState::Tendermint(cs) => cs.into(),
            AnyClientState::Near(cs) => cs.into(),
        }
    }
}

impl From<TmClientStateType> for AnyClientState {
    fn from(cs: TmClientStateType) -> Self {
        Self::Tendermint(cs.into())
    }
}

impl From<NearClientState> for AnyClientState {
    fn from(cs: NearClientState) -> Self {
        Self::Near(cs)
    }
}

impl AnyClientState {
    /// ibc-testkit's form of a Tendermint client state (its host checks a client of itself in that form).
    pub fn to_testkit(&self) -> Option<testkit::AnyClientState> {
        match self {
            Self::Tendermint(cs) => Some(testkit::AnyClientState::Tendermint(cs.clone())),
            Self::Near(_) => None,
        }
    }
}

impl Protobuf<Any> for AnyConsensusState {}

impl TryFrom<Any> for AnyConsensusState {
    type Error = DecodingError;

    fn try_from(raw: Any) -> Result<Self, Self::Error> {
        match raw.type_url.as_str() {
            TENDERMINT_CONSENSUS_STATE_TYPE_URL => {
                Ok(Self::Tendermint(TmConsensusState::try_from(raw)?))
            }
            NEAR_CONSENSUS_STATE_TYPE_URL => Ok(Self::Near(NearConsensusState::try_from(raw)?)),
            _ => Err(DecodingError::UnknownTypeUrl(raw.type_url)),
        }
    }
}

impl From<AnyConsensusState> for Any {
    fn from(cs: AnyConsensusState) -> Self {
        match cs {
            AnyConsensusState::Tendermint(cs) => cs.into(),
            AnyConsensusState::Near(cs) => cs.into(),
        }
    }
}

impl From<TmConsensusStateType> for AnyConsensusState {
    fn from(cs: TmConsensusStateType) -> Self {
        Self::Tendermint(cs.into())
    }
}

impl From<NearConsensusState> for AnyConsensusState {
    fn from(cs: NearConsensusState) -> Self {
        Self::Near(cs)
    }
}

impl TryFrom<AnyConsensusState> for TmConsensusStateType {
    type Error = DecodingError;

    fn try_from(cs: AnyConsensusState) -> Result<Self, Self::Error> {
        match cs {
            AnyConsensusState::Tendermint(cs) => Ok(cs.inner().clone()),
            AnyConsensusState::Near(_) => Err(DecodingError::invalid_raw_data(
                "a NEAR consensus state where a Tendermint one was expected",
            )),
        }
    }
}

impl TryFrom<AnyConsensusState> for NearConsensusState {
    type Error = DecodingError;

    fn try_from(cs: AnyConsensusState) -> Result<Self, Self::Error> {
        match cs {
            AnyConsensusState::Near(cs) => Ok(cs),
            AnyConsensusState::Tendermint(_) => Err(DecodingError::invalid_raw_data(
                "a Tendermint consensus state where a NEAR one was expected",
            )),
        }
    }
}
