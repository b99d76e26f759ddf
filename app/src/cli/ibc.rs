//! The arguments of the commands that act on IBC objects: `create`, `tx`, `clear packets` and `packet trace`.

use clap::{Args, Subcommand};

use super::OutputArgs;

/// `relayd packet ...`
#[derive(Debug, Subcommand)]
pub enum PacketCommand {
    /// A packet's lifecycle timeline: every state change, transaction, error and attempt (from the running
    /// service, or from the data directory when none is up).
    Trace(TraceArgs),
}

/// `relayd packet trace <chain> <port> <channel> <sequence>`
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The source chain.
    pub chain: String,
    /// The source port.
    pub port: String,
    /// The source channel.
    pub channel: String,
    /// The packet's sequence.
    pub sequence: u64,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd clear ...`
#[derive(Debug, Subcommand)]
pub enum ClearCommand {
    /// Relay the pending packets of one channel (unreceived, or received and not acknowledged) and wait until
    /// each is finished: through the running service's admin server when one answers, else with a progress bar
    /// by running the relay actors here.
    Packets(ClearPacketsArgs),
}

/// `relayd clear packets`
#[derive(Debug, Args)]
pub struct ClearPacketsArgs {
    /// The chain the packets were sent from.
    #[arg(long)]
    pub chain: String,
    /// The sending port.
    #[arg(long)]
    pub port: String,
    /// The sending channel.
    #[arg(long)]
    pub channel: String,
    /// Only these sequences, e.g. `1,5..10` (default: every pending one).
    #[arg(long)]
    pub sequences: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd create ...`
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// A Tendermint client of one chain, hosted on another.
    Client(CreateClientArgs),
    /// A connection (and the clients it needs), handshake finished on both chains.
    Connection(CreateConnectionArgs),
    /// A channel over an open connection, handshake finished on both chains.
    Channel(CreateChannelArgs),
}

/// `relayd create client`
#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// The chain that will host the client.
    #[arg(long)]
    pub host_chain: String,
    /// The chain the client tracks.
    #[arg(long)]
    pub reference_chain: String,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd create connection`
#[derive(Debug, Args)]
pub struct CreateConnectionArgs {
    /// The chain where the handshake starts.
    #[arg(long)]
    pub a_chain: String,
    /// The counterparty chain.
    #[arg(long)]
    pub b_chain: String,
    /// An existing client of b on a (default: create one).
    #[arg(long)]
    pub a_client: Option<String>,
    /// An existing client of a on b (default: create one).
    #[arg(long)]
    pub b_client: Option<String>,
    /// The connection's delay period in seconds.
    #[arg(long, default_value_t = 0)]
    pub delay_period_secs: u64,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd create channel`
#[derive(Debug, Args)]
pub struct CreateChannelArgs {
    /// The chain where the handshake starts.
    #[arg(long)]
    pub a_chain: String,
    /// The open connection on a the channel runs over; the counterparty chain is the one its client tracks.
    #[arg(long)]
    pub a_connection: String,
    /// The port on a.
    #[arg(long)]
    pub a_port: String,
    /// The port on the counterparty (default: the same as on a).
    #[arg(long)]
    pub b_port: Option<String>,
    /// The application version (default `ics20-1` on the transfer port).
    #[arg(long)]
    pub channel_version: Option<String>,
    /// An ordered channel (default: unordered).
    #[arg(long)]
    pub ordered: bool,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd tx ...`
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Send ICS-20 transfers from the source chain's relayer key.
    Transfer(TransferArgs),
    /// Start closing a channel (MsgChannelCloseInit) from the relayer's key on its chain; a running
    /// `relayd start` relays the close confirmation to the counterparty and times out the packets in flight.
    ChanClose(ChanCloseArgs),
}

/// `relayd tx chan-close`
#[derive(Debug, Args)]
pub struct ChanCloseArgs {
    /// Chain of the channel end to close.
    #[arg(long)]
    pub chain: String,
    /// Its port.
    #[arg(long)]
    pub port: String,
    /// Its channel.
    #[arg(long)]
    pub channel: String,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd tx transfer`
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Chain the tokens leave from.
    #[arg(long)]
    pub src_chain: String,
    /// Chain the tokens go to.
    #[arg(long)]
    pub dst_chain: String,
    /// Source port.
    #[arg(long, default_value = "transfer")]
    pub port: String,
    /// Source channel.
    #[arg(long)]
    pub channel: String,
    /// Amount per transfer, `<integer><denom>`.
    #[arg(long)]
    pub amount: String,
    /// Receiver on the destination chain (default: relayd's key for it).
    #[arg(long)]
    pub receiver: Option<String>,
    /// The ICS-20 memo (empty by default).
    #[arg(long, default_value = "")]
    pub memo: String,
    /// Number of transfers.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Time out this many blocks after the destination's current height.
    #[arg(long)]
    pub timeout_height_offset: Option<u64>,
    /// Time out this many seconds from now (default 600 when no height offset is given).
    #[arg(long)]
    pub timeout_seconds: Option<u64>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}
