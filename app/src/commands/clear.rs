//! `relayd clear packets`: relay the pending packets of one channel now, with a progress bar, and exit when
//! every one of them is finished. It runs the relay actors over the service's data directory (so lifecycle
//! records and dead letters stay in one place); while the service runs, it clears every `clear_interval`
//! blocks by itself.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use relayd_actors::coordinator::Scope;
use relayd_messages::{ClearPackets, CorrelationId, RelayObject, SubscribeLifecycle};

use relayd_actors::system::{start_with, StartOptions};
use serde_json::json;
use tokio::sync::mpsc;

use crate::admin::ops::MAX_CLEAR_SEQUENCES;
use crate::cli::{ClearPacketsArgs, Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::config::load;
use crate::commands::{configured_chain, data_dir, fail};
use crate::datadir::DataDir;

/// Parses `1,5..10,12`: single sequences and inclusive ranges, at most [`MAX_CLEAR_SEQUENCES`] in all.
pub fn parse_sequences(text: &str) -> Result<Vec<u64>, String> {
    let too_many = || {
        format!("--sequences names more than {MAX_CLEAR_SEQUENCES} sequences; clear in several requests")
    };
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} in --sequences is not a sequence number"))
        };
        match part.split_once("..") {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(format!("--sequences range {part} is empty"));
                }
                // Checked before the range is expanded, so no request holds more than the bound in memory.
                if (hi - lo).saturating_add(1) > (MAX_CLEAR_SEQUENCES - out.len()) as u64 {
                    return Err(too_many());
                }
                out.extend(lo..=hi);
            }
            None => {
                out.insert(num(part)?);
            }
        }
        if out.len() > MAX_CLEAR_SEQUENCES {
            return Err(too_many());
        }
    }
    if out.is_empty() {
        return Err("--sequences names no sequence".into());
    }
    Ok(out.into_iter().collect())
}

/// The terminal progress line.
fn progress(done: usize, total: usize, failed: usize) {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let bar: String = "#".repeat(filled) + &".".repeat(WIDTH - filled);
    let mut err = std::io::stderr();
    let _ = write!(err, "\r[{bar}] {done}/{total} packets");
    if failed > 0 {
        let _ = write!(err, " ({failed} failed)");
    }
    let _ = err.flush();
}

/// What the clearing ended with.
#[derive(Default)]
struct Outcome {
    pending: Vec<u64>,
    acknowledged: usize,
    timed_out: usize,
    failed: Vec<(u64, String)>,
    unfinished: Vec<u64>,
    skipped: Vec<u64>,
}

/// Runs `clear packets`.
pub fn packets(cli: &Cli, args: &ClearPacketsArgs) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, args.out.json) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let chain = match configured_chain(&config, &args.chain) {
        Ok(chain) => chain,
        Err(code) => return code,
    };
    let wanted = match args.sequences.as_deref().map(parse_sequences).transpose() {
        Ok(w) => w,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    if let Some(code) =
        super::service::clear_through_service(&config, &path, args, wanted.as_deref())
    {
        return code;
    }
    let dir = data_dir(&config, &path);
    let state = match DataDir::open(&dir) {
        Ok(state) => state,
        Err(e) => {
            return fail(
                &format!("{e}; a running service clears every clear_interval blocks by itself"),
                EXIT_RUNTIME,
            )
        }
    };
    let chain_id = chain.id.clone();
    let stall = config.global.timeout.get().max(Duration::from_secs(30)) * 4;
    let result = actix_rt::System::new().block_on(async {
        let relay = start_with(
            &config,
            state.store.clone(),
            dir.join("keys"),
            StartOptions {
                clear_on_start: false,
                scope: Some(Scope {
                    chain: chain_id.clone(),
                    port: args.port.clone(),
                    channel: args.channel.clone(),
                    sequences: wanted.clone(),
                }),
                metrics: None,
                source: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        relay
            .coordinator
            .send(SubscribeLifecycle(crate::commands::lifecycle_channel(tx)))
            .await
            .map_err(|e| e.to_string())?;
        let outcome = async {
            // The chains' actors start in the background; a refused request is asked again.
            let mut tries = 0;
            let report = loop {
                let request = ClearPackets {
                    correlation: CorrelationId::fresh(),
                    chain: chain_id.clone(),
                    port: args.port.clone(),
                    channel: args.channel.clone(),
                    sequences: wanted.clone(),
                };
                match relay.coordinator.send(request).await {
                    Ok(Ok(report)) => break report,
                    Ok(Err(e)) if e.is_retryable() && tries < 50 => tries += 1,
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(e) => return Err(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let mut pending: BTreeSet<u64> = report
                .unreceived
                .iter()
                .chain(report.unacknowledged.iter())
                .copied()
                .collect();
            let mut out = Outcome {
                pending: pending.iter().copied().collect(),
                skipped: report.skipped.clone(),
                ..Outcome::default()
            };
            let total = pending.len();
            if !args.out.json {
                progress(0, total, 0);
            }
            let mut last = Instant::now();
            while !pending.is_empty() {
                let change = match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                    Ok(Some(change)) => change,
                    Ok(None) => break,
                    Err(_) if last.elapsed() > stall => break,
                    Err(_) => continue,
                };
                let RelayObject::Packet(key) = &change.object else {
                    continue;
                };
                if !change.is_final
                    || key.src_chain != chain_id
                    || key.src_port.as_str() != args.port
                    || key.src_channel.as_str() != args.channel
                    || !pending.remove(&key.sequence.0)
                {
                    continue;
                }
                last = Instant::now();
                match change.packet_state() {
                    Some(relayd_messages::PacketState::Acknowledged) => out.acknowledged += 1,
                    Some(relayd_messages::PacketState::TimedOut) => out.timed_out += 1,
                    _ => out
                        .failed
                        .push((key.sequence.0, change.error.unwrap_or_default())),
                }
                if !args.out.json {
                    progress(total - pending.len(), total, out.failed.len());
                }
            }
            out.unfinished = pending.into_iter().collect();
            Ok(out)
        }
        .await;
        relay.shutdown().await;
        outcome
    });
    if let Err(e) = state.store.flush() {
        return fail(
            &format!("cannot flush the state database: {e}"),
            EXIT_RUNTIME,
        );
    }
    let out = match result {
        Ok(out) => out,
        Err(e) => return fail(&e, EXIT_RUNTIME),
    };
    if args.out.json {
        println!(
            "{}",
            json!({
                "chain": args.chain, "port": args.port, "channel": args.channel,
                "pending": out.pending, "acknowledged": out.acknowledged, "timed_out": out.timed_out,
                "failed": out.failed.iter().map(|(s, e)| json!({"sequence": s, "error": e})).collect::<Vec<_>>(),
                "unfinished": out.unfinished, "skipped": out.skipped,
            })
        );
    } else {
        eprintln!();
        println!(
            "{}/{}/{}: {} pending, {} acknowledged, {} timed out, {} failed, {} unfinished, {} skipped",
            args.chain,
            args.port,
            args.channel,
            out.pending.len(),
            out.acknowledged,
            out.timed_out,
            out.failed.len(),
            out.unfinished.len(),
            out.skipped.len()
        );
        for (seq, e) in &out.failed {
            println!("  failed {seq}: {e}");
        }
    }
    if out.failed.is_empty() && out.unfinished.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_RUNTIME)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_sequences;

    #[test]
    fn sequences_take_singles_and_inclusive_ranges() {
        assert_eq!(parse_sequences("1,5..7, 12").unwrap(), vec![1, 5, 6, 7, 12]);
        assert_eq!(parse_sequences("3,3,2..3").unwrap(), vec![2, 3]);
    }

    #[test]
    fn a_request_names_a_bounded_number_of_sequences() {
        let most = super::MAX_CLEAR_SEQUENCES as u64;
        assert_eq!(
            parse_sequences(&format!("1..{most}")).unwrap().len() as u64,
            most
        );
        assert!(parse_sequences(&format!("1..{}", most + 1))
            .unwrap_err()
            .contains("more than"));
        let many: Vec<String> = (0..20)
            .map(|i| format!("{}..{}", i * 2_000_000, i * 2_000_000 + 1_000_000))
            .collect();
        assert!(parse_sequences(&many.join(",")).is_err());
        assert!(parse_sequences(&format!("0..{}", u64::MAX)).is_err());
    }

    #[test]
    fn bad_sequences_are_named() {
        assert!(parse_sequences("x").unwrap_err().contains("\"x\""));
        assert!(parse_sequences("9..2").is_err());
        assert!(parse_sequences(",").is_err());
    }
}
