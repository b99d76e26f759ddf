//! The supervisor of a chain of whichever kind it is configured as. Each [`ChainSupervisor`] is generic over its
//! chain's factory, so a Cosmos chain and a NEAR chain have supervisors of different types; this is how the code
//! that starts and stops every chain holds them alike.

use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, ArbiterHandle, Handler, MailboxError, Message};
use relayd_config::SupervisionConfig;
use relayd_messages::{BlockObserved, ChainId};

use super::chain::ChainSupervisor;
use crate::chain::any::AnyEndpoint;
use crate::chain::cosmos::factory::CosmosFactory;
use crate::chain::factory::ChainFactory;
use crate::chain::near::factory::NearFactory;
use crate::chain_link::ChainLink;
use crate::store::StateStore;

/// A configured chain's factory.
#[derive(Clone)]
pub enum AnyFactory {
    /// A Cosmos SDK chain.
    Cosmos(Box<CosmosFactory>),
    /// A NEAR chain.
    Near(Box<NearFactory>),
}

impl AnyFactory {
    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        match self {
            Self::Cosmos(f) => f.chain_id(),
            Self::Near(f) => f.chain_id(),
        }
    }

    /// A query endpoint of the chain.
    pub fn endpoint(&self) -> AnyEndpoint {
        match self {
            Self::Cosmos(f) => AnyEndpoint::Cosmos(f.endpoint()),
            Self::Near(f) => AnyEndpoint::Near(f.endpoint()),
        }
    }

    /// Starts the chain's supervisor on `arbiter`.
    pub fn start_supervisor(
        self,
        arbiter: &ArbiterHandle,
        link: ChainLink,
        store: StateStore,
        to: CoordinatorInbox,
        policy: SupervisionConfig,
        refresh_every: Duration,
    ) -> AnyChainSupervisor {
        match self {
            Self::Cosmos(f) => {
                AnyChainSupervisor::Cosmos(ChainSupervisor::start_in_arbiter(arbiter, move |_| {
                    ChainSupervisor::new(*f, link, store, to.blocks, policy, refresh_every)
                        .with_consistency(to.consistency)
                }))
            }
            Self::Near(f) => {
                AnyChainSupervisor::Near(ChainSupervisor::start_in_arbiter(arbiter, move |_| {
                    ChainSupervisor::new(*f, link, store, to.blocks, policy, refresh_every)
                        .with_consistency(to.consistency)
                }))
            }
        }
    }
}

/// Where a chain's monitor reports to the coordinator: its blocks, and changes of the node's consistency.
pub struct CoordinatorInbox {
    /// Every followed block, in order.
    pub blocks: crate::meter::MeteredRecipient<BlockObserved>,
    /// The node stopped or started again agreeing with what was followed.
    pub consistency: actix::Recipient<relayd_messages::ChainConsistencyChanged>,
}

/// The address of a chain's supervisor, whatever the chain's kind.
#[derive(Clone)]
pub enum AnyChainSupervisor {
    /// A Cosmos chain's supervisor.
    Cosmos(Addr<ChainSupervisor<CosmosFactory>>),
    /// A NEAR chain's supervisor.
    Near(Addr<ChainSupervisor<NearFactory>>),
}

impl AnyChainSupervisor {
    /// Sends a supervisor message (status, fault injection, stop) and waits for the answer.
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        ChainSupervisor<CosmosFactory>: Handler<M>,
        ChainSupervisor<NearFactory>: Handler<M>,
        <ChainSupervisor<CosmosFactory> as actix::Actor>::Context:
            ToEnvelope<ChainSupervisor<CosmosFactory>, M>,
        <ChainSupervisor<NearFactory> as actix::Actor>::Context:
            ToEnvelope<ChainSupervisor<NearFactory>, M>,
    {
        match self {
            Self::Cosmos(a) => a.send(msg).await,
            Self::Near(a) => a.send(msg).await,
        }
    }
}
