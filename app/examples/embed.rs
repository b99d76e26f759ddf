//! relayd embedded in a host's actix System. The host starts two devnet chains and opens a transfer channel
//! between them, starts relayd next to its own actor, sends transfers both ways, and its actor counts the packets
//! relayd reports complete. Run it with
//!
//! ```sh
//! cargo run -p relayd --example embed [-- <transfers each way>]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, MessageResult};
use relayd::demo::traffic::Sender;
use relayd::demo::{account, connect, Devnet};
use relayd::embed::EmbeddedRelay;
use relayd_actors::system::StartOptions;
use relayd_messages::{PacketCompleted, PacketOutcome};

type BoxError = Box<dyn std::error::Error>;

/// The host's own actor: counts the packets relayd completed, per source chain and outcome.
#[derive(Default)]
pub struct PacketCounter {
    counts: Counts,
}

/// What [`PacketCounter`] has counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Acknowledged packets per source chain.
    pub acknowledged: BTreeMap<String, usize>,
    /// Packets that timed out or failed.
    pub unsuccessful: usize,
}

impl Actor for PacketCounter {
    type Context = Context<Self>;
}

impl Handler<PacketCompleted> for PacketCounter {
    type Result = ();

    fn handle(&mut self, done: PacketCompleted, _: &mut Self::Context) {
        match done.outcome {
            PacketOutcome::Acknowledged => {
                *self
                    .counts
                    .acknowledged
                    .entry(done.key.src_chain.to_string())
                    .or_default() += 1;
            }
            PacketOutcome::TimedOut | PacketOutcome::Failed | PacketOutcome::Skipped => {
                self.counts.unsuccessful += 1
            }
        }
    }
}

/// Asks a [`PacketCounter`] for its counts.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Counts")]
pub struct GetCounts;

impl Handler<GetCounts> for PacketCounter {
    type Result = MessageResult<GetCounts>;

    fn handle(&mut self, _: GetCounts, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.counts.clone())
    }
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Packets sent per source chain.
    pub sent: BTreeMap<String, usize>,
    /// What the host's actor counted.
    pub counted: Counts,
}

/// The whole example, inside the current actix System: `transfers` each way, with relayd's data under
/// `data_dir`. Returns once the host's actor has counted every packet or a generous bound has passed.
pub async fn run(transfers: usize, data_dir: &Path) -> Result<Report, BoxError> {
    let devnet = Devnet::start(Duration::from_millis(200), &data_dir.join("chains")).await?;
    let result = relay_and_count(&devnet, transfers, data_dir).await;
    devnet.shutdown().await;
    result
}

async fn relay_and_count(
    devnet: &Devnet,
    transfers: usize,
    data_dir: &Path,
) -> Result<Report, BoxError> {
    let bed = connect(devnet, data_dir, None).await?;
    let relay = EmbeddedRelay::start(&bed.config, &bed.data_dir, StartOptions::default()).await?;
    let counter = PacketCounter::default().start();
    relay.subscribe_packets(counter.clone().recipient());

    let mut sent = BTreeMap::new();
    for (from, to) in [(&bed.a, &bed.b), (&bed.b, &bed.a)] {
        let (Some(src), Some(dst)) = (devnet.chain(&from.chain), devnet.chain(&to.chain)) else {
            return Err("a devnet chain is not running".into());
        };
        let receiver = account(dst, "user1")?.address.clone();
        let mut sender = Sender::new(
            &bed.config,
            &from.chain,
            account(src, "user1")?,
            &from.channel,
            &receiver,
        )
        .await?;
        let sequences = sender.send(transfers).await.map_err(|(_, e)| e)?;
        sent.insert(from.chain.clone(), sequences.len());
    }

    let mut counted = Counts::default();
    // A hang guard, not a measure of speed.
    for _ in 0..600 {
        counted = counter.send(GetCounts).await?;
        let all = counted.unsuccessful + counted.acknowledged.values().sum::<usize>();
        if all >= sent.values().sum::<usize>() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    relay.shutdown().await;
    Ok(Report { sent, counted })
}

fn main() -> ExitCode {
    let transfers = match std::env::args().nth(1).map(|n| n.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: embed [<transfers each way, at least 1>]");
            return ExitCode::from(2);
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::FAILURE;
        }
    };
    match actix_rt::System::new().block_on(run(transfers, dir.path())) {
        Ok(report) => {
            for (chain, n) in &report.sent {
                let done = report.counted.acknowledged.get(chain).copied().unwrap_or(0);
                println!("{chain}: sent {n}, the host's actor counted {done} acknowledged");
            }
            let complete = report
                .sent
                .iter()
                .all(|(c, n)| report.counted.acknowledged.get(c) == Some(n));
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("embed: {e}");
            ExitCode::FAILURE
        }
    }
}
