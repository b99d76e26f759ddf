//! The admin API's JSON views, built by plain functions from what the actors and the state database report:
//! the supervision tree, packet summaries and timelines.

use std::collections::HashMap;

use relayd_actors::store::{PacketRecord, Transition};
use relayd_messages::{
    ActorKind, ActorLoad, BuilderStatus, ChainStatus, CoordinatorStatus, PacketState, RelayObject,
    ServiceStatus,
};
use serde::Serialize;

/// One actor in `/actors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorNode {
    /// Its id, stable across restarts (`coordinator`, `supervisor/<chain>`, `<chain>/<kind>`,
    /// `builder/<chain>/<port>/<channel>/<sequence>`).
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its chain (the source chain for builders).
    pub chain: Option<String>,
    /// The relay object it drives (builders only).
    pub object: Option<String>,
    /// `running`, `restarting` or `degraded`; for builders, the packet's lifecycle state.
    pub state: String,
    /// Work sent to it and not taken up yet (see `docs/admin-api.md` for what counts per kind); `null` where
    /// relayd cannot tell (a chain whose supervisor is gone).
    pub mailbox_depth: Option<u64>,
    /// Messages it has handled; `null` where relayd cannot tell.
    pub messages_handled: Option<u64>,
    /// Restarts so far.
    pub restarts: u64,
    /// Its incarnation (starts at 1; builders: unique within the process).
    pub generation: Option<u64>,
    /// Why it last failed.
    pub last_error: Option<String>,
    /// When its current incarnation started, ms since the epoch.
    pub started_ms: Option<u64>,
    /// Its supervisor's id.
    pub parent: Option<String>,
}

/// An actor kind's name as the API spells it.
pub fn kind_name(kind: ActorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// One chain's supervision state with the load on its children.
pub struct ChainView {
    /// What the supervisor reports.
    pub status: ChainStatus,
    /// Load per child kind, where counted.
    pub loads: HashMap<ActorKind, ActorLoad>,
}

/// A live builder with its packet's record.
pub struct BuilderView {
    /// What the coordinator reports.
    pub status: BuilderStatus,
    /// The packet's lifecycle record.
    pub record: Option<PacketRecord>,
}

/// The supervision tree, parents before children.
pub fn actor_tree(
    coordinator: &CoordinatorStatus,
    service_started_ms: u64,
    chains: &[ChainView],
    builders: &[BuilderView],
) -> Vec<ActorNode> {
    let mut out = vec![ActorNode {
        id: "coordinator".into(),
        kind: kind_name(ActorKind::RelayCoordinator),
        chain: None,
        object: None,
        state: "running".into(),
        mailbox_depth: Some(coordinator.load.mailbox_depth),
        messages_handled: Some(coordinator.load.messages_handled),
        restarts: 0,
        generation: Some(1),
        last_error: None,
        started_ms: Some(service_started_ms),
        parent: None,
    }];
    for chain in chains {
        let name = chain.status.chain.clone();
        let sup = format!("supervisor/{name}");
        out.push(ActorNode {
            id: sup.clone(),
            kind: "chain_supervisor".into(),
            chain: Some(name.clone()),
            object: None,
            state: if chain.status.degraded {
                "degraded"
            } else {
                "running"
            }
            .into(),
            mailbox_depth: Some(chain.status.load.mailbox_depth),
            messages_handled: Some(chain.status.load.messages_handled),
            restarts: 0,
            generation: Some(1),
            last_error: None,
            started_ms: Some(service_started_ms),
            parent: None,
        });
        for child in &chain.status.children {
            let load = chain.loads.get(&child.kind);
            let kind = kind_name(child.kind);
            out.push(ActorNode {
                id: format!("{name}/{kind}"),
                kind,
                chain: Some(name.clone()),
                object: None,
                state: if child.running {
                    "running"
                } else {
                    "restarting"
                }
                .into(),
                mailbox_depth: load.map(|l| l.mailbox_depth),
                messages_handled: load.map(|l| l.messages_handled),
                restarts: child.restarts,
                generation: Some(child.generation),
                last_error: child.last_error.clone(),
                started_ms: (child.started_ms > 0).then_some(child.started_ms),
                parent: Some(sup.clone()),
            });
        }
    }
    for b in builders {
        let RelayObject::Packet(key) = &b.status.object else {
            continue;
        };
        out.push(ActorNode {
            id: format!("builder/{key}"),
            kind: kind_name(ActorKind::PacketBuilder),
            chain: Some(key.src_chain.to_string()),
            object: Some(key.to_string()),
            state: b
                .record
                .as_ref()
                .map_or(PacketState::Detected, |r| r.state)
                .to_string(),
            mailbox_depth: Some(b.status.load.mailbox_depth),
            messages_handled: Some(b.status.load.messages_handled),
            restarts: u64::from(b.status.restarts),
            generation: Some(b.status.generation),
            last_error: b.record.as_ref().and_then(|r| r.last_error.clone()),
            started_ms: Some(b.status.started_ms),
            parent: Some("coordinator".into()),
        });
    }
    out
}

/// The service supervisor (`supervisor/services`) and its children, the client keeper and the misbehaviour
/// watcher; `status` is `None` once the supervisor is gone (shutdown), and they show `stopped`.
pub fn service_tree(
    status: Option<&ServiceStatus>,
    keeper: &ActorLoad,
    watcher: &ActorLoad,
    service_started_ms: u64,
) -> Vec<ActorNode> {
    let parent = "supervisor/services";
    let mut out = vec![ActorNode {
        id: parent.into(),
        kind: "service_supervisor".into(),
        chain: None,
        object: None,
        state: if status.is_some() {
            "running"
        } else {
            "stopped"
        }
        .into(),
        mailbox_depth: status.map(|s| s.load.mailbox_depth),
        messages_handled: status.map(|s| s.load.messages_handled),
        restarts: 0,
        generation: Some(1),
        last_error: None,
        started_ms: Some(service_started_ms),
        parent: None,
    }];
    let children = [
        (
            status.map(|s| &s.client_keeper),
            keeper,
            ActorKind::ClientKeeper,
        ),
        (
            status.map(|s| &s.misbehaviour_watcher),
            watcher,
            ActorKind::MisbehaviourWatcher,
        ),
    ];
    for (child, load, kind) in children {
        let kind = kind_name(kind);
        out.push(ActorNode {
            id: kind.clone(),
            kind,
            chain: None,
            object: None,
            state: match child {
                None => "stopped",
                Some((_, true)) => "degraded",
                Some((c, false)) if c.running => "running",
                Some(_) => "restarting",
            }
            .into(),
            mailbox_depth: Some(load.mailbox_depth),
            messages_handled: Some(load.messages_handled),
            restarts: child.map_or(0, |(c, _)| c.restarts),
            generation: child.map(|(c, _)| c.generation),
            last_error: child.and_then(|(c, _)| c.last_error.clone()),
            started_ms: child.map(|(c, _)| c.started_ms).filter(|ms| *ms > 0),
            parent: Some(parent.into()),
        });
    }
    out
}

/// A packet in `/packets`.
#[derive(Debug, Clone, Serialize)]
pub struct PacketSummary {
    /// `chain/port/channel/sequence`.
    pub key: String,
    /// Source chain.
    pub chain: String,
    /// Source port.
    pub port: String,
    /// Source channel.
    pub channel: String,
    /// Sequence.
    pub sequence: u64,
    /// Destination chain.
    pub dst_chain: String,
    /// Current state.
    pub state: PacketState,
    /// Delivery attempts.
    pub attempts: u32,
    /// Transactions relayd sent for it.
    pub tx_hashes: Vec<String>,
    /// Last error (for a skipped packet, which cap it is over).
    pub last_error: Option<String>,
    /// Why it is not relayed, when its state is `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<relayd_messages::SkipReason>,
    /// Detected, ms since the epoch.
    pub created_ms: u64,
    /// Last change, ms since the epoch.
    pub updated_ms: u64,
}

/// The full timeline of one packet.
#[derive(Debug, Clone, Serialize)]
pub struct PacketTimeline {
    /// The summary.
    #[serde(flatten)]
    pub summary: PacketSummary,
    /// Destination port and channel.
    pub dst_port: String,
    /// Destination channel.
    pub dst_channel: String,
    /// Source height of the send.
    pub send_height: u64,
    /// Timeout height on the destination, `revision-height`, if any.
    pub timeout_height: Option<String>,
    /// Timeout time on the destination, ns since the epoch (0: none).
    pub timeout_timestamp_ns: u64,
    /// The packet data: UTF-8 text when it is (ICS-20 data is JSON), else hex.
    pub data: String,
    /// The acknowledgement written on the destination, likewise.
    pub ack: Option<String>,
    /// The correlation id (it appears in every log line about this packet).
    pub correlation: String,
    /// Every state change, in order.
    pub history: Vec<Transition>,
}

fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => hex::encode(bytes),
    }
}

/// A record's summary.
pub fn summary(r: &PacketRecord) -> PacketSummary {
    PacketSummary {
        key: r.key.to_string(),
        chain: r.key.src_chain.to_string(),
        port: r.key.src_port.to_string(),
        channel: r.key.src_channel.to_string(),
        sequence: r.key.sequence.0,
        dst_chain: r.dst_chain.clone(),
        state: r.state,
        attempts: r.attempts,
        tx_hashes: r.tx_hashes.clone(),
        last_error: r.last_error.clone(),
        skip_reason: r.skip_reason,
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
    }
}

/// A record's timeline.
pub fn timeline(r: &PacketRecord) -> PacketTimeline {
    PacketTimeline {
        summary: summary(r),
        dst_port: r.packet.destination_port.to_string(),
        dst_channel: r.packet.destination_channel.to_string(),
        send_height: r.send_height,
        timeout_height: r.packet.timeout_height.map(|h| h.to_string()),
        timeout_timestamp_ns: r.packet.timeout_timestamp_ns,
        data: text_or_hex(&r.packet.data),
        ack: r.ack.as_deref().map(text_or_hex),
        correlation: r.correlation.to_string(),
        history: r.history.clone(),
    }
}

/// The timeline as terminal text (`relayd packet trace`).
pub fn render_timeline(t: &serde_json::Value) -> String {
    let s = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
    let mut out = format!(
        "packet {}\n  {} -> {} ({}/{})\n  state {}  attempts {}  correlation {}\n",
        s("key"),
        s("chain"),
        s("dst_chain"),
        s("dst_port"),
        s("dst_channel"),
        s("state"),
        t.get("attempts").and_then(|v| v.as_u64()).unwrap_or(0),
        s("correlation"),
    );
    for step in t
        .get("history")
        .and_then(|h| h.as_array())
        .into_iter()
        .flatten()
    {
        let at = step.get("at_ms").and_then(|v| v.as_u64()).unwrap_or(0);
        let state = step.get("state").and_then(|v| v.as_str()).unwrap_or("?");
        out.push_str(&format!("  {}  {state:<16}", format_ms(at)));
        if let Some(tx) = step.get("tx_hash").and_then(|v| v.as_str()) {
            out.push_str(&format!(" tx {tx}"));
        }
        if let Some(e) = step.get("error").and_then(|v| v.as_str()) {
            out.push_str(&format!(" error: {e}"));
        }
        out.push('\n');
    }
    let txs: Vec<&str> = t
        .get("tx_hashes")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    if !txs.is_empty() {
        out.push_str(&format!("  transactions: {}\n", txs.join(", ")));
    }
    if let Some(e) = t.get("last_error").and_then(|v| v.as_str()) {
        out.push_str(&format!("  last error: {e}\n"));
    }
    out
}

/// `ms since the epoch` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), without a date library.
pub fn format_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayd_messages::ChildStatus;

    #[test]
    fn format_ms_is_utc_iso8601() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_709_251_199_123), "2024-02-29T23:59:59.123Z");
    }

    #[test]
    fn the_tree_puts_chain_actors_under_their_supervisor() {
        let status = ChainStatus {
            chain: "ibc-0".into(),
            degraded: false,
            children: vec![ChildStatus {
                kind: ActorKind::Querier,
                generation: 2,
                restarts: 1,
                running: true,
                last_error: Some("boom".into()),
                started_ms: 5,
            }],
            load: ActorLoad {
                mailbox_depth: 1,
                messages_handled: 2,
            },
        };
        let mut loads = HashMap::new();
        loads.insert(
            ActorKind::Querier,
            ActorLoad {
                mailbox_depth: 3,
                messages_handled: 9,
            },
        );
        let coordinator = CoordinatorStatus {
            heights: vec![],
            builders: 0,
            waiting_builders: 0,
            max_builders: 8,
            events_handled: 4,
            load: ActorLoad {
                mailbox_depth: 0,
                messages_handled: 4,
            },
            builder_mailboxes: Vec::new(),
            inconsistent: Vec::new(),
            halted_clients: Vec::new(),
            intake: Vec::new(),
        };
        let tree = actor_tree(&coordinator, 1, &[ChainView { status, loads }], &[]);
        assert_eq!(tree.len(), 3);
        let q = &tree[2];
        assert_eq!(q.id, "ibc-0/querier");
        assert_eq!(q.parent.as_deref(), Some("supervisor/ibc-0"));
        assert_eq!((q.mailbox_depth, q.messages_handled), (Some(3), Some(9)));
        assert_eq!(q.restarts, 1);
        assert_eq!(tree[0].messages_handled, Some(4));
        assert_eq!(
            (tree[1].mailbox_depth, tree[1].messages_handled),
            (Some(1), Some(2))
        );
    }
}
