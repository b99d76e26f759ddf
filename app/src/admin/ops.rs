//! Clearing operations started over the admin API: their registry (idempotent per request while running) and
//! the pure judgement of an operation's progress from the packets' lifecycle records.

use std::collections::BTreeMap;

use relayd_actors::store::PacketRecord;
use relayd_messages::{ClearReport, PacketState};
use serde::{Deserialize, Serialize};

/// The most sequences one clearing request may name (`POST /clear`, `relayd clear packets --sequences`); a
/// larger backlog is cleared by omitting the list or in several requests.
pub const MAX_CLEAR_SEQUENCES: usize = 100_000;

/// `POST /clear`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClearRequest {
    /// The source chain.
    pub chain: String,
    /// The source port.
    pub port: String,
    /// The source channel.
    pub channel: String,
    /// Only these sequences; all pending ones when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<Vec<u64>>,
}

impl ClearRequest {
    /// The request with its sequences sorted and deduplicated, so equal requests compare equal.
    pub fn normalised(mut self) -> Self {
        if let Some(s) = &mut self.sequences {
            s.sort_unstable();
            s.dedup();
        }
        self
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Packets are still being relayed.
    Running,
    /// Every packet found was relayed to its end.
    Succeeded,
    /// Some packets failed or did not finish in time; see the per-packet results.
    PartiallyFailed,
    /// The clearing itself failed (e.g. the source node could not be queried).
    Failed,
}

/// One packet of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketResult {
    /// Its sequence.
    pub sequence: u64,
    /// What was pending: `recv` (not received on the destination) or `ack` (acknowledgement not relayed).
    pub pending: &'static str,
    /// Its lifecycle state, or `unknown` while relayd has no record of it.
    pub state: String,
    /// Transactions relayd sent for it.
    pub tx_hashes: Vec<String>,
    /// Its last error.
    pub error: Option<String>,
}

/// Counts over an operation's packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    /// Packets found pending.
    pub total: usize,
    /// Builders the clearing started (packets already in flight are not counted).
    pub started: usize,
    /// Relayed to their end (acknowledged or timed out).
    pub done: usize,
    /// Failed (dead-lettered).
    pub failed: usize,
    /// Not finished yet.
    pub pending: usize,
    /// Pending on chain but not relayed by policy (ICS-20 caps); not in `total`.
    pub skipped: usize,
}

/// A clearing operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// Its id.
    pub id: String,
    /// What was asked.
    pub request: ClearRequest,
    /// Where it is.
    pub status: OpStatus,
    /// When it was asked, ms since the epoch.
    pub created_ms: u64,
    /// Last change, ms since the epoch.
    pub updated_ms: u64,
    /// Counts over its packets.
    pub counts: OpCounts,
    /// Each packet's result.
    pub packets: Vec<PacketResult>,
    /// Why it failed, or which packets did not finish.
    pub error: Option<String>,
}

/// Every operation of this process, newest last.
#[derive(Default)]
pub struct Operations {
    ops: BTreeMap<u64, Operation>,
    next: u64,
}

impl Operations {
    /// Starts an operation for `request`, unless an equal one is running: then that one is returned and the
    /// flag is false.
    pub fn begin(&mut self, request: ClearRequest, now_ms: u64) -> (Operation, bool) {
        let request = request.normalised();
        if let Some(op) = self
            .ops
            .values()
            .find(|o| o.status == OpStatus::Running && o.request == request)
        {
            return (op.clone(), false);
        }
        self.next += 1;
        let op = Operation {
            id: format!("op-{}", self.next),
            request,
            status: OpStatus::Running,
            created_ms: now_ms,
            updated_ms: now_ms,
            counts: OpCounts::default(),
            packets: Vec::new(),
            error: None,
        };
        self.ops.insert(self.next, op.clone());
        (op, true)
    }

    /// One operation.
    pub fn get(&self, id: &str) -> Option<&Operation> {
        let n: u64 = id.strip_prefix("op-")?.parse().ok()?;
        self.ops.get(&n)
    }

    /// Replaces an operation's progress; returns whether anything changed.
    pub fn set(&mut self, op: Operation) -> bool {
        let Some(n) = op
            .id
            .strip_prefix("op-")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return false;
        };
        match self.ops.get_mut(&n) {
            Some(old) if *old == op => false,
            Some(old) => {
                *old = op;
                true
            }
            None => false,
        }
    }

    /// Every operation, oldest first.
    pub fn all(&self) -> Vec<Operation> {
        self.ops.values().cloned().collect()
    }
}

/// An operation's packets and status from the clearing's report and each packet's current record (`records`
/// holds `None` where relayd has no record). `give_up` marks the deadline: what is unfinished then failed.
pub fn progress(
    mut op: Operation,
    report: &ClearReport,
    records: &BTreeMap<u64, Option<PacketRecord>>,
    give_up: bool,
    now_ms: u64,
) -> Operation {
    let pending = report
        .unreceived
        .iter()
        .map(|s| (*s, "recv"))
        .chain(report.unacknowledged.iter().map(|s| (*s, "ack")));
    let mut counts = OpCounts {
        total: report.unreceived.len() + report.unacknowledged.len(),
        started: report.started,
        skipped: report.skipped.len(),
        ..OpCounts::default()
    };
    let mut packets = Vec::new();
    let mut stuck = Vec::new();
    for (sequence, what) in pending {
        let record = records.get(&sequence).and_then(Option::as_ref);
        let state = record.map(|r| r.state);
        match state {
            Some(PacketState::Acknowledged | PacketState::TimedOut) => counts.done += 1,
            Some(PacketState::Failed) => counts.failed += 1,
            _ => {
                counts.pending += 1;
                stuck.push(sequence);
            }
        }
        packets.push(PacketResult {
            sequence,
            pending: what,
            // No record yet: relayd has not seen the packet's send.
            state: state.map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            tx_hashes: record.map(|r| r.tx_hashes.clone()).unwrap_or_default(),
            error: record.and_then(|r| r.last_error.clone()),
        });
    }
    // Skipped by policy: listed with why, never waited for.
    for sequence in &report.skipped {
        let record = records.get(sequence).and_then(Option::as_ref);
        packets.push(PacketResult {
            sequence: *sequence,
            pending: "recv",
            state: PacketState::Skipped.to_string(),
            tx_hashes: Vec::new(),
            error: record.and_then(|r| r.last_error.clone()),
        });
    }
    op.status = if counts.pending > 0 && !give_up {
        OpStatus::Running
    } else if counts.failed > 0 || counts.pending > 0 {
        OpStatus::PartiallyFailed
    } else {
        OpStatus::Succeeded
    };
    if give_up && !stuck.is_empty() {
        op.error = Some(format!(
            "sequences {stuck:?} did not finish before the operation's deadline; those without a record were \
             never seen sent by relayd"
        ));
    }
    if op.counts != counts || op.packets != packets {
        op.updated_ms = now_ms;
    }
    op.counts = counts;
    op.packets = packets;
    op
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seqs: Option<Vec<u64>>) -> ClearRequest {
        ClearRequest {
            chain: "ibc-0".into(),
            port: "transfer".into(),
            channel: "channel-0".into(),
            sequences: seqs,
        }
    }

    #[test]
    fn an_equal_request_while_running_returns_the_running_operation() {
        let mut ops = Operations::default();
        let (a, new_a) = ops.begin(req(Some(vec![3, 1, 3])), 1);
        let (b, new_b) = ops.begin(req(Some(vec![1, 3])), 2);
        assert!(new_a && !new_b);
        assert_eq!(a.id, b.id);
        let (c, new_c) = ops.begin(req(None), 3);
        assert!(new_c);
        assert_ne!(c.id, a.id);
        let mut done = a.clone();
        done.status = OpStatus::Succeeded;
        assert!(ops.set(done));
        let (d, new_d) = ops.begin(req(Some(vec![1, 3])), 4);
        assert!(new_d);
        assert_ne!(d.id, a.id);
        assert_eq!(ops.all().len(), 3);
        assert!(ops.get("op-9").is_none() && ops.get("nope").is_none());
    }

    fn record(state: &str) -> Option<PacketRecord> {
        let text = format!(
            r#"{{"key":{{"src_chain":"ibc-0","src_port":"transfer","src_channel":"channel-0","sequence":1}},
            "dst_chain":"ibc-1","packet":{{"sequence":1,"source_port":"transfer","source_channel":"channel-0",
            "destination_port":"transfer","destination_channel":"channel-0","data":[],"timeout_height":null,
            "timeout_timestamp_ns":0}},"correlation":1,"state":"{state}","send_height":1,"ack":null,
            "tx_hashes":["AB"],"attempts":1,"last_error":null,"created_ms":0,"updated_ms":0,"history":[]}}"#
        );
        Some(serde_json::from_str(&text).unwrap())
    }

    #[test]
    fn progress_counts_and_judges_partial_failures() {
        let mut ops = Operations::default();
        let (op, _) = ops.begin(req(None), 1);
        let report = ClearReport {
            unreceived: vec![1, 2],
            unacknowledged: vec![3],
            started: 2,
            skipped: vec![4],
        };
        let mut records = BTreeMap::new();
        records.insert(1, record("acknowledged"));
        records.insert(2, record("submitted"));
        records.insert(3, None);
        let running = progress(op.clone(), &report, &records, false, 5);
        assert_eq!(running.status, OpStatus::Running);
        assert_eq!(
            running.counts,
            OpCounts {
                total: 3,
                started: 2,
                done: 1,
                failed: 0,
                pending: 2,
                skipped: 1
            }
        );
        assert_eq!(running.packets[2].state, "unknown");
        assert_eq!(running.packets[3].state, "skipped");
        assert_eq!(running.packets[2].pending, "ack");

        records.insert(2, record("failed"));
        records.insert(3, record("acknowledged"));
        let finished = progress(running, &report, &records, false, 6);
        assert_eq!(finished.status, OpStatus::PartiallyFailed);
        assert_eq!(finished.counts.failed, 1);

        records.insert(2, record("acknowledged"));
        assert_eq!(
            progress(op.clone(), &report, &records, false, 7).status,
            OpStatus::Succeeded
        );

        records.insert(2, record("submitted"));
        let late = progress(op, &report, &records, true, 8);
        assert_eq!(late.status, OpStatus::PartiallyFailed);
        assert!(late.error.unwrap().contains("[2]"));
    }
}
