//! The demo's figures, apart from any IO: packets sent per direction, what relayd's lifecycle events say happened
//! to them, latencies from detection to acknowledgement, and the text of the live and final summaries.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use relayd_messages::{LifecycleChanged, PacketState, RelayObject};

/// One direction: packets leaving `src` on `channel` for `dst`.
#[derive(Debug, Clone)]
struct Direction {
    src: String,
    channel: String,
    dst: String,
    sent: BTreeSet<u64>,
    send_failures: u64,
    first_seen: HashMap<u64, Instant>,
    received: BTreeSet<u64>,
    acknowledged: BTreeSet<u64>,
    timed_out: BTreeSet<u64>,
    failed: BTreeSet<u64>,
    /// Detection to acknowledgement, in arrival order.
    latencies: Vec<Duration>,
}

/// Figures of every direction of the demo's channel.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    directions: Vec<Direction>,
}

/// What [`Stats::summary`] reports for one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionSummary {
    /// The sending chain.
    pub src: String,
    /// The receiving chain.
    pub dst: String,
    /// The sending channel.
    pub channel: String,
    /// Packets the demo's transfers created.
    pub sent: usize,
    /// Transfers the sending chain refused or that were never confirmed.
    pub send_failures: u64,
    /// Of those, delivered to the destination by relayd (receive confirmed, or acknowledged).
    pub received: usize,
    /// Of those, acknowledged back on the source chain: complete.
    pub acknowledged: usize,
    /// Of those, timed out.
    pub timed_out: usize,
    /// Of those, given up on (dead letters).
    pub failed: usize,
    /// Sent and not finished yet.
    pub backlog: usize,
    /// Median latency from detection to acknowledgement.
    pub median: Option<Duration>,
    /// 99th percentile of the same.
    pub p99: Option<Duration>,
}

impl Stats {
    /// Figures for these directions, each `(source chain, source channel, destination chain)`.
    pub fn new(directions: &[(&str, &str, &str)]) -> Self {
        Self {
            directions: directions
                .iter()
                .map(|(src, channel, dst)| Direction {
                    src: (*src).to_owned(),
                    channel: (*channel).to_owned(),
                    dst: (*dst).to_owned(),
                    sent: BTreeSet::new(),
                    send_failures: 0,
                    first_seen: HashMap::new(),
                    received: BTreeSet::new(),
                    acknowledged: BTreeSet::new(),
                    timed_out: BTreeSet::new(),
                    failed: BTreeSet::new(),
                    latencies: Vec::new(),
                })
                .collect(),
        }
    }

    fn direction(&mut self, src: &str, channel: &str) -> Option<&mut Direction> {
        self.directions
            .iter_mut()
            .find(|d| d.src == src && d.channel == channel)
    }

    /// The transfers of `src` on `channel` created packets with these sequences.
    pub fn sent(&mut self, src: &str, channel: &str, sequences: &[u64]) {
        if let Some(d) = self.direction(src, channel) {
            d.sent.extend(sequences);
        }
    }

    /// `count` transfers of `src` on `channel` failed before creating a packet.
    pub fn send_failed(&mut self, src: &str, channel: &str, count: u64) {
        if let Some(d) = self.direction(src, channel) {
            d.send_failures += count;
        }
    }

    /// A lifecycle change of relayd's, seen at `at`. Changes of other objects and channels are ignored.
    pub fn lifecycle(&mut self, change: &LifecycleChanged, at: Instant) {
        let RelayObject::Packet(key) = &change.object else {
            return;
        };
        let Some(d) = self.direction(key.src_chain.as_str(), key.src_channel.as_str()) else {
            return;
        };
        let seq = key.sequence.0;
        let first = *d.first_seen.entry(seq).or_insert(at);
        match change.packet_state() {
            Some(PacketState::Confirmed) => {
                d.received.insert(seq);
            }
            Some(PacketState::Acknowledged) => {
                d.received.insert(seq);
                if d.acknowledged.insert(seq) {
                    d.latencies.push(at.saturating_duration_since(first));
                }
            }
            Some(PacketState::TimedOut) => {
                d.timed_out.insert(seq);
            }
            Some(PacketState::Failed) => {
                d.failed.insert(seq);
            }
            _ => {}
        }
    }

    /// The figures of each direction, in the order given to [`Stats::new`].
    pub fn summary(&self) -> Vec<DirectionSummary> {
        self.directions
            .iter()
            .map(|d| {
                let of_sent = |set: &BTreeSet<u64>| set.intersection(&d.sent).count();
                let (acknowledged, timed_out, failed) = (
                    of_sent(&d.acknowledged),
                    of_sent(&d.timed_out),
                    of_sent(&d.failed),
                );
                let mut latencies = d.latencies.clone();
                latencies.sort();
                DirectionSummary {
                    src: d.src.clone(),
                    dst: d.dst.clone(),
                    channel: d.channel.clone(),
                    sent: d.sent.len(),
                    send_failures: d.send_failures,
                    received: of_sent(&d.received),
                    acknowledged,
                    timed_out,
                    failed,
                    backlog: d.sent.len() - acknowledged - timed_out - failed,
                    median: percentile(&latencies, 50.0),
                    p99: percentile(&latencies, 99.0),
                }
            })
            .collect()
    }

    /// Whether every packet sent so far has finished (acknowledged, timed out or failed).
    pub fn drained(&self) -> bool {
        self.summary().iter().all(|s| s.backlog == 0)
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()))
}

impl fmt::Display for DirectionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} (transfer/{}): sent {}, received {}, acknowledged {}, timed out {}, failed {}, backlog {}, \
             latency median {} p99 {}",
            self.src,
            self.dst,
            self.channel,
            self.sent,
            self.received,
            self.acknowledged,
            self.timed_out,
            self.failed,
            self.backlog,
            seconds(self.median),
            seconds(self.p99)
        )?;
        if self.send_failures > 0 {
            write!(f, ", transfers refused {}", self.send_failures)?;
        }
        Ok(())
    }
}

/// The live view: one line per direction and one for the actors, headed by the elapsed time.
pub fn render_live(elapsed: Duration, summary: &[DirectionSummary], restarts: u64) -> String {
    let mut text = format!("relayd demo: {}s", elapsed.as_secs());
    for s in summary {
        text.push_str(&format!("\n  {s}"));
    }
    text.push_str(&format!("\n  actor restarts: {restarts}"));
    text
}

/// The final summary: the figures after traffic stopped and the backlog drained (or the wait for it ended).
pub fn render_final(traffic: Duration, summary: &[DirectionSummary], restarts: u64) -> String {
    let mut text = format!(
        "relayd demo: final summary after {}s of traffic",
        traffic.as_secs()
    );
    for s in summary {
        text.push_str(&format!("\n  {s}"));
    }
    text.push_str(&format!("\n  actor restarts: {restarts}"));
    let complete = summary
        .iter()
        .all(|s| s.backlog == 0 && s.acknowledged == s.sent);
    text.push_str(if complete {
        "\n  every packet sent was relayed and acknowledged"
    } else {
        "\n  some packets did not complete before the demo stopped; with --data-dir, `relayd -c DIR/relayd.toml \
         packet trace <chain> transfer <channel> <sequence>` shows where each one stopped"
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayd_messages::{ChainId, ChannelId, CorrelationId, PacketKey, PortId, Sequence};

    fn change(chain: &str, channel: &str, seq: u64, state: &str) -> LifecycleChanged {
        LifecycleChanged {
            object: RelayObject::Packet(PacketKey {
                src_chain: ChainId::new(chain).unwrap(),
                src_port: PortId::new("transfer").unwrap(),
                src_channel: ChannelId::new(channel).unwrap(),
                sequence: Sequence(seq),
            }),
            generation: 1,
            correlation: CorrelationId::fresh(),
            state: state.into(),
            tx_hash: None,
            error: None,
            is_final: matches!(state, "acknowledged" | "timed_out" | "failed"),
        }
    }

    fn stats() -> Stats {
        Stats::new(&[
            ("ibc-0", "channel-0", "ibc-1"),
            ("ibc-1", "channel-0", "ibc-0"),
        ])
    }

    #[test]
    fn backlog_is_what_was_sent_and_has_not_finished() {
        let mut s = stats();
        let t0 = Instant::now();
        s.sent("ibc-0", "channel-0", &[1, 2, 3]);
        s.lifecycle(&change("ibc-0", "channel-0", 1, "detected"), t0);
        s.lifecycle(&change("ibc-0", "channel-0", 1, "confirmed"), t0);
        s.lifecycle(
            &change("ibc-0", "channel-0", 1, "acknowledged"),
            t0 + Duration::from_secs(2),
        );
        s.lifecycle(&change("ibc-0", "channel-0", 2, "confirmed"), t0);
        s.lifecycle(&change("ibc-0", "channel-0", 3, "timed_out"), t0);
        let sum = s.summary();
        assert_eq!(
            (
                sum[0].sent,
                sum[0].received,
                sum[0].acknowledged,
                sum[0].timed_out,
                sum[0].backlog
            ),
            (3, 2, 1, 1, 1)
        );
        assert_eq!(sum[0].median, Some(Duration::from_secs(2)));
        assert_eq!(sum[1].sent, 0);
        assert!(!s.drained());
        s.lifecycle(&change("ibc-0", "channel-0", 2, "acknowledged"), t0);
        assert!(s.drained());
    }

    #[test]
    fn events_before_the_send_is_reported_still_count_and_others_are_ignored() {
        let mut s = stats();
        let t0 = Instant::now();
        // relayd can see a packet before the sender has its transaction's confirmation.
        s.lifecycle(&change("ibc-1", "channel-0", 7, "detected"), t0);
        s.lifecycle(
            &change("ibc-1", "channel-0", 7, "acknowledged"),
            t0 + Duration::from_millis(500),
        );
        // The same event twice counts once; other channels are not the demo's.
        s.lifecycle(
            &change("ibc-1", "channel-0", 7, "acknowledged"),
            t0 + Duration::from_secs(9),
        );
        s.lifecycle(&change("ibc-1", "channel-9", 8, "acknowledged"), t0);
        assert_eq!(s.summary()[1].acknowledged, 0, "not sent by the demo yet");
        s.sent("ibc-1", "channel-0", &[7]);
        let sum = &s.summary()[1];
        assert_eq!((sum.sent, sum.acknowledged, sum.backlog), (1, 1, 0));
        assert_eq!(sum.p99, Some(Duration::from_millis(500)));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&xs, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&xs, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&xs[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_final_summary_says_whether_everything_completed() {
        let mut s = stats();
        s.sent("ibc-0", "channel-0", &[1]);
        let text = render_final(Duration::from_secs(5), &s.summary(), 0);
        assert!(text
            .contains("ibc-0 -> ibc-1 (transfer/channel-0): sent 1, received 0, acknowledged 0"));
        assert!(text.contains("some packets did not complete"));
        s.lifecycle(
            &change("ibc-0", "channel-0", 1, "acknowledged"),
            Instant::now(),
        );
        let text = render_final(Duration::from_secs(5), &s.summary(), 2);
        assert!(text.contains("backlog 0"));
        assert!(text.contains("actor restarts: 2"));
        assert!(text.contains("every packet sent was relayed and acknowledged"));
    }
}
