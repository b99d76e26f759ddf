//! The arguments of `relayd query ...`, one clap struct per query, which the query command runs as parsed.

use clap::{Args, Subcommand};

use super::OutputArgs;

/// `relayd query ...`, grouped as ADR-002 writes them.
#[derive(Debug, Subcommand)]
pub enum QueryGroup {
    /// Client state and consensus states.
    #[command(subcommand)]
    Client(ClientQuery),
    /// One connection end, with its proof.
    Connection(ConnectionArgs),
    /// All connections, or those of one client.
    Connections(ConnectionsArgs),
    /// One channel end, with its proof.
    Channel(ChannelArgs),
    /// All channels, or those over one connection.
    Channels(ChannelsArgs),
    /// Packet state.
    #[command(subcommand)]
    Packet(PacketQuery),
    /// Token balances of an account (the relayer's by default): the bank on Cosmos chains, the IBC contract's
    /// `ft_balances_of` / `ft_balance_of` view on NEAR chains.
    Balance(BalanceArgs),
}

/// `query balance --chain C [--address A] [--denom D]`
#[derive(Debug, Clone, Args)]
pub struct BalanceArgs {
    /// The chain.
    #[arg(long)]
    pub chain: String,
    /// The account (default: the relayer's: its key's address on Cosmos, `signer_account` on NEAR).
    #[arg(long)]
    pub address: Option<String>,
    /// Only this denomination (full trace for NEAR vouchers, e.g. `transfer/channel-0/stake`).
    #[arg(long)]
    pub denom: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd query client ...`
#[derive(Debug, Subcommand)]
pub enum ClientQuery {
    /// A client's state.
    State(ClientStateArgs),
    /// A client's consensus state at a height.
    Consensus(ClientConsensusArgs),
}

/// `relayd query packet ...`
#[derive(Debug, Subcommand)]
pub enum PacketQuery {
    /// Sequences with a packet commitment on a channel.
    Commitments(PacketArgs),
    /// Packets sent on a channel that the counterparty has not received, and acknowledgements not yet relayed
    /// back. The counterparty chain is found through the channel's connection and client.
    Pending(PacketArgs),
}

/// Height and proof options, as ADR-002 spells them (`-h` is the height, so help is `--help` only).
#[derive(Debug, Clone, Copy, Args)]
pub struct AtHeight {
    /// Query the state after this block (default: latest).
    #[arg(short = 'h', long)]
    pub height: Option<u64>,
    /// Return a proof (default: true).
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub proof: bool,
}

/// `query client state <chain> <client>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ClientStateArgs {
    /// The chain.
    pub chain: String,
    /// The client id.
    pub client: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query client consensus <chain> <client> <consensus_height>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ClientConsensusArgs {
    /// The chain.
    pub chain: String,
    /// The client id.
    pub client: String,
    /// The consensus state's height, `<revision>-<height>`.
    pub consensus_height: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query connection <chain> <connection>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ConnectionArgs {
    /// The chain.
    pub chain: String,
    /// The connection id.
    pub connection: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query connections <chain> [--client ID]`
#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// The chain.
    pub chain: String,
    /// Only connections on this client.
    #[arg(long)]
    pub client: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `query channel <chain> <port> <channel>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ChannelArgs {
    /// The chain.
    pub chain: String,
    /// The port id.
    pub port: String,
    /// The channel id.
    pub channel: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query channels <chain> [--connection ID]`
#[derive(Debug, Args)]
pub struct ChannelsArgs {
    /// The chain.
    pub chain: String,
    /// Only channels over this connection.
    #[arg(long)]
    pub connection: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `query packet commitments <chain> <port> <channel>`
#[derive(Debug, Args)]
pub struct PacketArgs {
    /// The chain.
    pub chain: String,
    /// The port id.
    pub port: String,
    /// The channel id.
    pub channel: String,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

impl QueryGroup {
    /// The chain queried.
    pub fn chain(&self) -> &str {
        match self {
            Self::Client(ClientQuery::State(a)) => &a.chain,
            Self::Client(ClientQuery::Consensus(a)) => &a.chain,
            Self::Connection(a) => &a.chain,
            Self::Connections(a) => &a.chain,
            Self::Channel(a) => &a.chain,
            Self::Channels(a) => &a.chain,
            Self::Packet(PacketQuery::Commitments(a) | PacketQuery::Pending(a)) => &a.chain,
            Self::Balance(a) => &a.chain,
        }
    }

    /// How to print the result.
    pub fn out(&self) -> OutputArgs {
        match self {
            Self::Client(ClientQuery::State(a)) => a.out,
            Self::Client(ClientQuery::Consensus(a)) => a.out,
            Self::Connection(a) => a.out,
            Self::Connections(a) => a.out,
            Self::Channel(a) => a.out,
            Self::Channels(a) => a.out,
            Self::Packet(PacketQuery::Commitments(a) | PacketQuery::Pending(a)) => a.out,
            Self::Balance(a) => a.out,
        }
    }
}
