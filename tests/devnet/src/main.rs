//! The `devnet` command: runs one local chain until SIGINT or SIGTERM.

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
    /// Folder for the accounts' key files and chain.json.
    #[arg(long)]
    home: PathBuf,
    /// Funded accounts besides `relayer`.
    #[arg(long, default_value_t = 2)]
    accounts: usize,
    /// Validators signing every block (at least 2).
    #[arg(long, default_value_t = 2)]
    validators: usize,
    /// Fixes keys and genesis time for reproducible runs.
    #[arg(long)]
    seed: Option<String>,
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

async fn run(args: Args) -> ExitCode {
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
        home: Some(args.home.clone()),
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
        args.home.display()
    );
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
    chain.shutdown().await;
    println!("devnet {} stopped", args.chain_id);
    ExitCode::SUCCESS
}
