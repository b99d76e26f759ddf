//! One `[[connections]]` entry: the chain ends it joins and the packet paths relayed over it.

use relayd_messages::{ChainId, ChannelId, ClientId, ConnectionId, PortId};
use serde::{Deserialize, Serialize};

/// One `[[connections]]` entry (ADR-002). `None` ends mean "any".
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The source end.
    #[serde(default)]
    pub src: Option<ConnectionEnd>,
    /// The destination end.
    #[serde(default)]
    pub dest: Option<ConnectionEnd>,
    /// Which ports and channels to relay; `None` means every port, bidirectionally.
    #[serde(default)]
    pub paths: Option<Vec<RelayPath>>,
}

/// One end of a connection, named by the client it is built on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEnd {
    /// The chain of this end; needed only when `client_id` is listed on more than one chain.
    #[serde(default)]
    pub chain_id: Option<ChainId>,
    /// The client on this end's chain (one of that chain's `client_ids`).
    pub client_id: ClientId,
    /// The connection; `None` means every connection on this client.
    #[serde(default)]
    pub connection_id: Option<ConnectionId>,
}

/// Ports and channels relayed over a connection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayPath {
    /// Source port; `None` means any.
    #[serde(default)]
    pub src_port: Option<PortId>,
    /// Destination port; `None` means any.
    #[serde(default)]
    pub dest_port: Option<PortId>,
    /// Source channel; `None` means any.
    #[serde(default)]
    pub src_channel: Option<ChannelId>,
    /// Destination channel; `None` means any.
    #[serde(default)]
    pub dest_channel: Option<ChannelId>,
    /// Direction of packet flow.
    #[serde(default)]
    pub direction: Direction,
    /// Relative priority of this path's packets when a chain's transactions are contended: higher goes first.
    #[serde(default)]
    pub priority: u8,
}

/// Direction of packet flow on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Source to destination only.
    Unidirectional,
    /// Both ways.
    #[default]
    Bidirectional,
}
