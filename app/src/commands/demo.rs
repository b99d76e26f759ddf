//! `relayd demo`: two devnet chains in this process (two Cosmos chains, or with `--near` a Cosmos chain and a NEAR
//! devnet), a transfer channel opened by relayd's `create` code, and relayd's actor system relaying continuous
//! ICS-20 traffic both ways, with a live summary on the terminal and the admin API, until Ctrl-C or `--duration`;
//! then the backlog drains (bounded), a final summary is printed and everything stops in order.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use relayd_actors::system::{RelayHandle, StartOptions};
use relayd_config::LogLevel;
use relayd_messages::{QueryChainStatus, SubscribeLifecycle};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::{Cli, DemoArgs, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::{fail, Signals};
use crate::datadir::{DataDir, DataDirError};
use crate::demo::near::{connect_near, near_account, NearSender, TRUST_ON_FIRST_USE_WARNING, USER};
use crate::demo::stats::{render_final, render_live, Stats};
use crate::demo::traffic::{due, Sender};
use crate::demo::{account, connect, DemoError, Devnet, Testbed};

/// The devnet refuses shorter block times.
const MIN_BLOCK_TIME: Duration = Duration::from_millis(100);
/// How often the traffic loop checks whether transfers are due.
const TRAFFIC_TICK: Duration = Duration::from_millis(100);
/// Most transfers per second per direction; more than a devnet block can take is only a backlog.
const MAX_RATE: f64 = 1000.0;
/// Most transfers sent in one go; a sender that fell behind catches up over several.
const MAX_BATCH: u64 = 500;
/// How often the live summary is redrawn.
const REFRESH: Duration = Duration::from_secs(1);

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Relay(#[from] relayd_actors::system::StartError),
    #[error(transparent)]
    Metrics(#[from] relayd_actors::metrics::MetricsError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("the relay coordinator stopped: {0}")]
    Coordinator(actix::MailboxError),
}

/// Runs `relayd demo`; the exit code is 0 when every packet sent was relayed and acknowledged.
pub fn run(cli: &Cli, args: &DemoArgs) -> ExitCode {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= MAX_RATE) {
        return fail(
            &format!(
                "--rate {} must be a positive number up to {MAX_RATE}",
                args.rate
            ),
            EXIT_CONFIG,
        );
    }
    if args.block_time.get() < MIN_BLOCK_TIME {
        return fail("--block-time must be 100ms or more", EXIT_CONFIG);
    }
    // A temporary directory lives until the demo has stopped everything that writes into it.
    let (dir, _temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => match tempfile::Builder::new().prefix("relayd-demo-").tempdir() {
            Ok(t) => (t.path().to_owned(), Some(t)),
            Err(e) => return fail(&format!("cannot create a data dir: {e}"), EXIT_RUNTIME),
        },
    };
    if dir.join("state").exists() || dir.join("relayd.toml").exists() {
        return fail(&DemoError::NotEmpty(dir).to_string(), EXIT_CONFIG);
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(&format!("{}: {e}", dir.display()), EXIT_RUNTIME);
    }
    let log = dir.join("relayd.log");
    if let Err(e) = crate::logging::init_file(cli, LogLevel::Info, &log) {
        return fail(&format!("{}: {e}", log.display()), EXIT_RUNTIME);
    }
    println!("relayd demo: data dir {}", dir.display());
    if args.data_dir.is_none() {
        println!("  (a temporary directory, removed on exit; pass --data-dir to keep it)");
    }
    let outcome = actix_rt::System::new().block_on(demo(args, &dir));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_RUNTIME),
        Err(e) => {
            warn!("{e}");
            fail(&e.to_string(), EXIT_RUNTIME)
        }
    }
}

async fn demo(args: &DemoArgs, dir: &Path) -> Result<bool, RunError> {
    let mut signals = Signals::new().map_err(RunError::Signals)?;
    let devnet = if args.near {
        println!(
            "starting a Cosmos devnet chain (ibc-0) and a NEAR devnet (a block every {})",
            args.block_time
        );
        Devnet::start_near(args.block_time.get(), &dir.join("chains")).await?
    } else {
        println!(
            "starting two devnet chains (ibc-0, ibc-1; a block every {})",
            args.block_time
        );
        Devnet::start(args.block_time.get(), &dir.join("chains")).await?
    };
    for chain in devnet.chains() {
        println!("  {} rpc {}", chain.chain_id(), chain.rpc_url());
    }
    if let Some(near) = devnet.near() {
        println!("  {} rpc {} (NEAR)", near.chain_id(), near.rpc_url());
    }
    let result = relay_on(&devnet, args, dir, &mut signals).await;
    devnet.shutdown().await;
    println!("chains stopped");
    result
}

async fn relay_on(
    devnet: &Devnet,
    args: &DemoArgs,
    dir: &Path,
    signals: &mut Signals,
) -> Result<bool, RunError> {
    if devnet.near().is_some() {
        // Loud on purpose: the demo's NEAR trust is not how relayd must ever be run against a real network.
        warn!("{TRUST_ON_FIRST_USE_WARNING}");
        println!("\n  !!! WARNING !!! {TRUST_ON_FIRST_USE_WARNING}\n");
    }
    println!("creating clients, a connection and a transfer channel (relayd create connection / channel)");
    let bed = tokio::select! {
        bed = async {
            if devnet.near().is_some() {
                connect_near(devnet, dir, args.admin.0).await
            } else {
                connect(devnet, dir, args.admin.0).await
            }
        } => bed?,
        name = signals.next() => {
            println!("{name}: stopping before relaying started");
            return Ok(false);
        }
    };
    println!(
        "  open: {}/transfer/{} <-> {}/transfer/{} (clients {} / {}, connections {} / {})",
        bed.a.chain,
        bed.a.channel,
        bed.b.chain,
        bed.b.channel,
        bed.a.client,
        bed.b.client,
        bed.a.connection,
        bed.b.connection
    );
    println!(
        "  config {} (try: relayd -c {} query channels {})",
        bed.config_path.display(),
        bed.config_path.display(),
        bed.a.chain
    );
    println!("  log {}", dir.join("relayd.log").display());

    let state = DataDir::open(dir)?;
    let registry = prometheus::Registry::new();
    let metrics = relayd_actors::metrics::Metrics::new(
        &registry,
        bed.config.telemetry.latency_buckets.clone(),
    )?;
    let relay = relayd_actors::system::start_with(
        &bed.config,
        state.store.clone(),
        dir.join("keys"),
        StartOptions {
            metrics: Some(metrics.clone()),
            ..Default::default()
        },
    )
    .await?;
    let admin = match args.admin.0 {
        None => None,
        Some(_) => match crate::admin::start(
            &bed.config,
            dir,
            dir,
            &relay,
            state.store.clone(),
            registry,
            metrics,
        )
        .await
        {
            Ok(server) => {
                println!(
                    "  admin API http://{} (dashboard /, GET /chains /actors /packets /metrics)",
                    server.addr
                );
                Some(server)
            }
            Err(e @ crate::admin::AdminError::Bind { .. }) => {
                println!("  {e}; running without the admin API");
                None
            }
            Err(e) => {
                relay.shutdown().await;
                return Err(e.into());
            }
        },
    };
    info!("relayd demo started");
    let outcome = traffic_and_summary(devnet, &bed, &relay, args, signals).await;
    if let Some(admin) = admin {
        admin.stop().await;
    }
    relay.shutdown().await;
    if let Err(e) = state.store.flush() {
        warn!(error = %e, "cannot flush the state database");
    }
    drop(state);
    println!("relayd stopped");
    outcome
}

/// Where one direction's transfers are sent from: a Cosmos account, or a NEAR account through the IBC contract.
enum Traffic {
    // Boxed: both are large (a transaction submitter, a whole chain entry) and only two are ever made.
    Cosmos(Box<Sender>),
    Near(Box<NearSender>),
}

impl Traffic {
    fn chain(&self) -> &str {
        match self {
            Self::Cosmos(s) => s.chain(),
            Self::Near(s) => s.chain(),
        }
    }

    fn channel(&self) -> &str {
        match self {
            Self::Cosmos(s) => s.channel(),
            Self::Near(s) => s.channel(),
        }
    }

    async fn send(&mut self, count: usize) -> Result<Vec<u64>, (Vec<u64>, DemoError)> {
        match self {
            Self::Cosmos(s) => s.send(count).await,
            Self::Near(s) => s.send(count).await,
        }
    }
}

/// One direction's sender, sending `rate` transfers a second until `stop` turns true; a send in flight when it
/// does is finished, so its packets are counted and drained.
async fn send_traffic(
    mut sender: Traffic,
    rate: f64,
    stats: Rc<RefCell<Stats>>,
    mut stop: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let mut attempted = 0u64;
    let mut tick = tokio::time::interval(TRAFFIC_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let n = due(rate, start.elapsed(), attempted).min(MAX_BATCH);
        if n == 0 {
            continue;
        }
        attempted += n;
        let (chain, channel) = (sender.chain().to_owned(), sender.channel().to_owned());
        match sender.send(n as usize).await {
            Ok(seqs) => stats.borrow_mut().sent(&chain, &channel, &seqs),
            Err((seqs, e)) => {
                warn!(error = %e, "transfers failed");
                let mut stats = stats.borrow_mut();
                stats.sent(&chain, &channel, &seqs);
                stats.send_failed(&chain, &channel, n.saturating_sub(seqs.len() as u64));
            }
        }
    }
}

/// Each chain's user1 sends to the other chain's user1 (`user1.devnet` on NEAR); `directions` as in
/// [`Stats::new`].
async fn senders(
    devnet: &Devnet,
    bed: &Testbed,
    directions: &[(&str, &str, &str)],
) -> Result<Vec<Traffic>, RunError> {
    let mut senders = Vec::new();
    for &(src, channel, dst) in directions {
        let receiver = match (devnet.chain(dst), devnet.near()) {
            (Some(to), _) => account(to, USER)?.address.clone(),
            (None, Some(near)) if near.chain_id() == dst => {
                near_account(near, USER)?.account_id.to_string()
            }
            _ => return Err(DemoError::Devnet(format!("{dst} is not running")).into()),
        };
        let sender = match (devnet.chain(src), devnet.near()) {
            (Some(from), _) => Traffic::Cosmos(Box::new(
                Sender::new(&bed.config, src, account(from, USER)?, channel, &receiver).await?,
            )),
            (None, Some(near)) if near.chain_id() == src => Traffic::Near(Box::new(
                NearSender::new(&bed.config, &bed.data_dir, near, USER, channel, &receiver)?,
            )),
            _ => return Err(DemoError::Devnet(format!("{src} is not running")).into()),
        };
        senders.push(sender);
    }
    Ok(senders)
}

/// Sum of the restarts of every chain's actors.
async fn restarts(relay: &RelayHandle) -> u64 {
    let mut total = 0;
    for (_, sup) in &relay.supervisors {
        if let Ok(status) = sup.send(QueryChainStatus).await {
            total += status.children.iter().map(|c| c.restarts).sum::<u64>();
        }
    }
    total
}

/// Redraws the live summary in place on a terminal; elsewhere appends it.
struct Screen {
    terminal: bool,
    lines: usize,
}

impl Screen {
    fn show(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.terminal && self.lines > 0 {
            // Back to the first line of the previous view, then clear to the end of the screen.
            let _ = write!(out, "\x1b[{}F\x1b[J", self.lines);
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        self.lines = text.lines().count();
    }

    /// The next text is printed below the current view instead of over it.
    fn keep(&mut self) {
        self.lines = 0;
    }
}

async fn traffic_and_summary(
    devnet: &Devnet,
    bed: &Testbed,
    relay: &RelayHandle,
    args: &DemoArgs,
    signals: &mut Signals,
) -> Result<bool, RunError> {
    let directions = [
        (
            bed.a.chain.as_str(),
            bed.a.channel.as_str(),
            bed.b.chain.as_str(),
        ),
        (
            bed.b.chain.as_str(),
            bed.b.channel.as_str(),
            bed.a.chain.as_str(),
        ),
    ];
    let stats = Rc::new(RefCell::new(Stats::new(&directions)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    relay
        .coordinator
        .send(SubscribeLifecycle(crate::commands::lifecycle_channel(tx)))
        .await
        .map_err(RunError::Coordinator)?;
    let tap = stats.clone();
    actix::spawn(async move {
        while let Some(change) = rx.recv().await {
            tap.borrow_mut().lifecycle(&change, Instant::now());
        }
    });

    let senders = senders(devnet, bed, &directions).await?;
    let (stop, stopped) = watch::channel(false);
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| actix::spawn(send_traffic(s, args.rate, stats.clone(), stopped.clone())))
        .collect();
    println!(
        "sending {} transfer(s)/s each way{}; Ctrl-C stops",
        args.rate,
        args.duration
            .map(|d| format!(" for {d}"))
            .unwrap_or_default()
    );

    let mut screen = Screen {
        terminal: std::io::stdout().is_terminal(),
        lines: 0,
    };
    let started = Instant::now();
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d.get());
    let mut refresh = tokio::time::interval(REFRESH);
    let reason = loop {
        tokio::select! {
            _ = refresh.tick() => {
                let restarts = restarts(relay).await;
                screen.show(&render_live(started.elapsed(), &stats.borrow().summary(), restarts));
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break "--duration elapsed".to_owned(),
            name = signals.next() => break name.to_owned(),
        }
    };
    let traffic_time = started.elapsed();
    let _ = stop.send(true);
    screen.keep();
    println!(
        "{reason}: traffic stopped; waiting up to {} for the packets in flight (Ctrl-C again skips)",
        args.drain_timeout
    );

    let drain_deadline = tokio::time::Instant::now() + args.drain_timeout.get();
    let skipped = tokio::select! {
        _ = async {
            // Transfers being sent when traffic stopped land first; their packets are part of the backlog.
            for task in tasks {
                let _ = task.await;
            }
            loop {
                if stats.borrow().drained() {
                    return;
                }
                refresh.tick().await;
                let restarts = restarts(relay).await;
                screen.show(&render_live(started.elapsed(), &stats.borrow().summary(), restarts));
            }
        } => false,
        _ = tokio::time::sleep_until(drain_deadline) => {
            println!("the backlog did not drain within {}", args.drain_timeout);
            false
        }
        name = signals.next() => {
            println!("{name}: not waiting for the backlog");
            true
        }
    };
    screen.keep();
    let summary = stats.borrow().summary();
    let restarts = restarts(relay).await;
    println!("{}", render_final(traffic_time, &summary, restarts));
    let complete = summary
        .iter()
        .all(|s| s.backlog == 0 && s.acknowledged == s.sent && s.send_failures == 0);
    Ok(complete && !skipped)
}
