//! The `devnet` command: runs one local chain until SIGINT or SIGTERM: a Cosmos chain by default, the NEAR devnet
//! with `devnet near ...`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use devnet::genesis::GenesisOptions;
use devnet::{start_chain, ChainOptions};

/// A local CometBFT-compatible chain running ibc-rs, for relayd's tests and demos.
#[derive(Debug, Parser)]
#[command(name = "devnet", version, about)]
struct Args {
    /// Chain id; a trailing -N is the revision number.
    #[arg(long, default_value = "ibc-0")]
    chain_id: String,
    /// JSON-RPC and WebSocket listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:26657")]
    rpc_addr: SocketAddr,
    /// gRPC listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9090")]
    grpc_addr: SocketAddr,
    /// Time between blocks, at least 100ms.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    block_time: Duration,
    /// Folder for the accounts' key files and chain.json (required without a subcommand).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Funded accounts besides `relayer`.
    #[arg(long, default_value_t = 2)]
    accounts: usize,
    /// Validators signing every block (at least 2).
    #[arg(long, default_value_t = 2)]
    validators: usize,
    /// Fixes keys and genesis time for reproducible runs.
    #[arg(long)]
    seed: Option<String>,
    /// Decide a validator-set change every N blocks (join, power change, leave, whole-set swap in turn;
    /// each takes effect two blocks later, as on CometBFT).
    #[arg(long, value_name = "N")]
    rotate_validators_every: Option<u64>,
    /// Writes the installed header into `update_client` events, as ibc-go up to v8 does; by default they carry
    /// none, as on ibc-go v9 and later.
    #[arg(long)]
    update_client_header: bool,
    /// The CometBFT version the RPC answers as: 0.34, 0.37, 0.38, 1.0, or sei (0.38 with base64 attributes).
    #[arg(long, default_value = "0.38", value_name = "VERSION")]
    cometbft: devnet::rpc::Dialect,
    /// Keeps the chain's blocks under <home>/data; started again on the same home, the chain replays them and
    /// goes on as the same chain (the stored genesis options win).
    #[arg(long)]
    persist: bool,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Runs the NEAR devnet (nearcore JSON-RPC, ibc-rs behind the near-ibc contract interface).
    Near(NearArgs),
}

#[derive(Debug, clap::Args)]
struct NearArgs {
    /// Chain id reported by `status`.
    #[arg(long, default_value = "near-devnet")]
    chain_id: String,
    /// JSON-RPC listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3030")]
    rpc_addr: SocketAddr,
    /// Time between blocks, at least 100ms.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    block_time: Duration,
    /// Folder for near-cli credential files (keys/<account>.json) and near.json.
    #[arg(long)]
    home: PathBuf,
    /// Funded accounts besides `relayer.devnet`.
    #[arg(long, default_value_t = 2)]
    accounts: usize,
    /// Block producers (at least 2; with 3 or more the set changes every epoch).
    #[arg(long, default_value_t = 3)]
    validators: usize,
    /// Blocks per epoch (at least 5).
    #[arg(long, default_value_t = 10)]
    epoch_length: u64,
    /// Fixes keys for reproducible runs.
    #[arg(long)]
    seed: Option<String>,
    /// Full-access keys of `relayer.devnet` (each one a signer lane of relayd, with a nonce of its own); the
    /// credentials files of all of them are listed under `relayer_keys` in near.json.
    #[arg(long, default_value_t = 1)]
    relayer_keys: usize,
    /// Keeps the chain's blocks under <home>/data; started again on the same home, the chain produces them again
    /// and goes on as the same chain (the stored genesis options win).
    #[arg(long)]
    persist: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("devnet: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn wait_for_signal() {
    let signal = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => Ok::<_, std::io::Error>(()),
            res = tokio::signal::ctrl_c() => res,
        }
    };
    if let Err(e) = signal.await {
        eprintln!("devnet: cannot wait for signals: {e}");
    }
}

async fn run_near(args: NearArgs) -> ExitCode {
    let opts = devnet::near::NearOptions {
        genesis: devnet::near::NearGenesisOptions {
            chain_id: args.chain_id.clone(),
            validators: args.validators,
            accounts: args.accounts,
            epoch_length: args.epoch_length,
            seed: args.seed,
            relayer_keys: args.relayer_keys,
        },
        rpc_addr: args.rpc_addr,
        block_time: args.block_time,
        home: Some(args.home.clone()),
        persist: args.persist,
    };
    let near = match devnet::near::start(opts).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("devnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "devnet near {} running: rpc {} ibc contract {} home {}",
        near.chain_id(),
        near.rpc_url(),
        near.genesis.ibc.account_id,
        args.home.display()
    );
    wait_for_signal().await;
    near.shutdown().await;
    println!("devnet near {} stopped", args.chain_id);
    ExitCode::SUCCESS
}

async fn run(args: Args) -> ExitCode {
    if let Some(Sub::Near(near)) = args.command {
        return run_near(near).await;
    }
    let Some(home) = args.home.clone() else {
        eprintln!("devnet: --home is required");
        return ExitCode::FAILURE;
    };
    let opts = ChainOptions {
        genesis: GenesisOptions {
            chain_id: args.chain_id.clone(),
            validators: args.validators,
            accounts: args.accounts,
            seed: args.seed,
        },
        rpc_addr: args.rpc_addr,
        grpc_addr: args.grpc_addr,
        block_time: args.block_time,
        home: Some(home.clone()),
        rotate_validators_every: args.rotate_validators_every,
        update_client_header: args.update_client_header,
        cometbft: args.cometbft,
        persist: args.persist,
    };
    let chain = match start_chain(opts).await {
        Ok(chain) => chain,
        Err(e) => {
            eprintln!("devnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "devnet {} running: rpc {} grpc {} home {}",
        chain.chain_id(),
        chain.rpc_url(),
        chain.grpc_url(),
        home.display()
    );
    wait_for_signal().await;
    chain.shutdown().await;
    println!("devnet {} stopped", args.chain_id);
    ExitCode::SUCCESS
}
