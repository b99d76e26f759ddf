//! Event queries (`tm.event='Tx' AND send_packet.packet_src_channel='channel-0'`): turning ABCI events into
//! CometBFT's composite-key map and deciding whether a parsed query matches it, for subscriptions, `tx_search`
//! and `block_search` alike.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use tendermint::abci;
use tendermint_rpc::query::{Condition, EventType, Operand, Operation, Query};

use super::node::TxRecord;

/// Composite event keys (`<event type>.<attribute key>`) to every value they took, in emission order — the
/// `events` object of a pushed event.
pub type EventMap = BTreeMap<String, Vec<String>>;

/// Adds ABCI events to `map` under their composite keys.
pub(crate) fn add_events(map: &mut EventMap, events: &[abci::Event]) {
    for event in events {
        for attr in &event.attributes {
            let key = String::from_utf8_lossy(attr.key_bytes());
            let value = String::from_utf8_lossy(attr.value_bytes()).into_owned();
            map.entry(format!("{}.{}", event.kind, key))
                .or_default()
                .push(value);
        }
    }
}

/// The event map of a committed transaction: its events plus `tm.event`, `tx.hash` and `tx.height`.
pub(crate) fn tx_events(rec: &TxRecord) -> EventMap {
    let mut map = EventMap::new();
    add_events(&mut map, &rec.result.events);
    map.insert("tm.event".into(), vec!["Tx".into()]);
    map.insert("tx.hash".into(), vec![rec.hash.to_string()]);
    map.insert("tx.height".into(), vec![rec.height.to_string()]);
    map
}

/// The event map of a `NewBlock` event: the block's `FinalizeBlock` events plus `tm.event`.
pub(crate) fn new_block_events(events: &[abci::Event]) -> EventMap {
    let mut map = EventMap::new();
    add_events(&mut map, events);
    map.insert("tm.event".into(), vec!["NewBlock".into()]);
    map
}

/// Whether every term of `query` holds for `events`. A condition holds when any value of its key satisfies it.
pub(crate) fn matches(query: &Query, events: &EventMap) -> bool {
    if let Some(kind) = &query.event_type {
        let name = match kind {
            EventType::NewBlock => "NewBlock",
            EventType::Tx => "Tx",
        };
        let has = events
            .get("tm.event")
            .is_some_and(|v| v.iter().any(|e| e == name));
        if !has {
            return false;
        }
    }
    query.conditions.iter().all(|c| condition_holds(c, events))
}

/// The conditions `tx_search` can answer from an attribute index: every `key = 'string'` on an event attribute
/// (not `tm.event`, `tx.hash` or `tx.height`, which the node answers by other means). CometBFT's kv indexer
/// narrows by each of them in turn, so a search by port and channel reads only the channel's transactions.
pub(crate) fn indexed_conditions(query: &Query) -> Vec<(&str, &str)> {
    query
        .conditions
        .iter()
        .filter_map(|c| match &c.operation {
            Operation::Eq(Operand::String(value))
                if !matches!(c.key.as_str(), "tm.event" | "tx.hash" | "tx.height") =>
            {
                Some((c.key.as_str(), value.as_str()))
            }
            _ => None,
        })
        .collect()
}

fn condition_holds(c: &Condition, events: &EventMap) -> bool {
    let values = events.get(&c.key).map(Vec::as_slice).unwrap_or(&[]);
    match &c.operation {
        Operation::Exists => events.contains_key(&c.key),
        Operation::Contains(needle) => values.iter().any(|v| v.contains(needle.as_str())),
        Operation::Eq(op) => values.iter().any(|v| equals(op, v)),
        Operation::Lt(op) => values
            .iter()
            .any(|v| compare(v, op) == Some(Ordering::Less)),
        Operation::Lte(op) => values
            .iter()
            .any(|v| matches!(compare(v, op), Some(Ordering::Less | Ordering::Equal))),
        Operation::Gt(op) => values
            .iter()
            .any(|v| compare(v, op) == Some(Ordering::Greater)),
        Operation::Gte(op) => values
            .iter()
            .any(|v| matches!(compare(v, op), Some(Ordering::Greater | Ordering::Equal))),
    }
}

fn equals(op: &Operand, value: &str) -> bool {
    match op {
        Operand::String(s) => value == s,
        _ => compare(value, op) == Some(Ordering::Equal),
    }
}

/// Orders an attribute value against a non-string operand; `None` when the value is not of the operand's kind
/// (such a value never matches, as in CometBFT). Strings only support `=` and `CONTAINS`.
fn compare(value: &str, op: &Operand) -> Option<Ordering> {
    match op {
        Operand::String(_) => None,
        Operand::Signed(n) => compare_number(value, i128::from(*n)),
        Operand::Unsigned(n) => compare_number(value, i128::from(*n)),
        Operand::Float(f) => number_prefix(value)
            .parse::<f64>()
            .ok()
            .and_then(|v| v.partial_cmp(f)),
        Operand::Date(d) => {
            let parsed = parse_date(value)?;
            // `time::Month` is a fieldless `repr(u8)` enum numbered from 1, so the cast is its month number.
            Some(parsed.cmp(&(d.year(), d.month() as u8, d.day())))
        }
        Operand::DateTime(dt) => {
            let t = tendermint::Time::parse_from_rfc3339(value).ok()?;
            Some(t.unix_timestamp_nanos().cmp(&dt.unix_timestamp_nanos()))
        }
    }
}

/// Values like `100stake` compare by their leading number, as CometBFT's query engine does.
fn number_prefix(value: &str) -> &str {
    let bytes = value.as_bytes();
    let mut end = usize::from(bytes.first() == Some(&b'-'));
    let mut seen_dot = false;
    while end < bytes.len() {
        match bytes[end] {
            b'0'..=b'9' => {}
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        end += 1;
    }
    &value[..end]
}

fn compare_number(value: &str, n: i128) -> Option<Ordering> {
    let num = number_prefix(value);
    if let Ok(v) = num.parse::<i128>() {
        return Some(v.cmp(&n));
    }
    // Precision loss only affects integers beyond 2^53, which never meet a fractional attribute value in practice.
    #[allow(clippy::cast_precision_loss)]
    num.parse::<f64>().ok()?.partial_cmp(&(n as f64))
}

fn parse_date(value: &str) -> Option<(i32, u8, u8)> {
    let date = value.get(..10)?;
    let mut parts = date.split('-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Some((y, m, d))
}

/// The heights a query can possibly match, from its `<key> = / < / <= / > / >= N` conditions on `height_key`
/// (`tx.height` or `block.height`), so searches only scan blocks that can match.
pub(crate) fn height_bounds(
    query: &Query,
    height_key: &str,
    all: RangeInclusive<u64>,
) -> RangeInclusive<u64> {
    let (mut lo, mut hi) = (*all.start(), *all.end());
    for c in query.conditions.iter().filter(|c| c.key == height_key) {
        let (op, n) = match &c.operation {
            Operation::Eq(o) => ("=", o),
            Operation::Lt(o) => ("<", o),
            Operation::Lte(o) => ("<=", o),
            Operation::Gt(o) => (">", o),
            Operation::Gte(o) => (">=", o),
            _ => continue,
        };
        let n = match n {
            Operand::Unsigned(n) => i128::from(*n),
            Operand::Signed(n) => i128::from(*n),
            _ => continue,
        };
        let clamp = |x: i128| u64::try_from(x.max(0)).unwrap_or(u64::MAX);
        match op {
            "=" => {
                lo = lo.max(clamp(n));
                hi = hi.min(clamp(n));
            }
            "<" => hi = hi.min(clamp(n - 1)),
            "<=" => hi = hi.min(clamp(n)),
            ">" => lo = lo.max(clamp(n + 1)),
            _ => lo = lo.max(clamp(n)),
        }
    }
    lo..=hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> EventMap {
        let mut m = EventMap::new();
        for (k, v) in pairs {
            m.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        m
    }

    fn q(s: &str) -> Query {
        s.parse().expect("valid query")
    }

    #[test]
    fn operators_follow_cometbft() {
        let ev = map(&[
            ("tm.event", "Tx"),
            ("tx.height", "12"),
            ("send_packet.packet_src_channel", "channel-0"),
            ("send_packet.packet_src_channel", "channel-7"),
            ("transfer.amount", "100stake"),
            ("block.time", "2024-03-05T10:00:00Z"),
        ]);
        assert!(matches(&q("tm.event = 'Tx'"), &ev));
        assert!(!matches(&q("tm.event = 'NewBlock'"), &ev));
        assert!(matches(
            &q("tm.event='Tx' AND send_packet.packet_src_channel='channel-7'"),
            &ev
        ));
        assert!(!matches(
            &q("tm.event='Tx' AND send_packet.packet_src_channel='channel-1'"),
            &ev
        ));
        assert!(matches(
            &q("tx.height >= 12 AND tx.height <= 12 AND tx.height > 11 AND tx.height < 13"),
            &ev
        ));
        assert!(!matches(&q("tx.height > 12"), &ev));
        assert!(matches(&q("tx.height = 12"), &ev));
        assert!(matches(&q("transfer.amount > 99"), &ev));
        assert!(matches(&q("transfer.amount < 100.5"), &ev));
        assert!(matches(
            &q("send_packet.packet_src_channel CONTAINS 'nnel-'"),
            &ev
        ));
        assert!(!matches(
            &q("send_packet.packet_src_channel CONTAINS 'xyz'"),
            &ev
        ));
        assert!(matches(&q("transfer.amount EXISTS"), &ev));
        assert!(!matches(&q("recv_packet.packet_sequence EXISTS"), &ev));
        assert!(matches(&q("block.time > TIME 2024-03-05T09:59:59Z"), &ev));
        assert!(!matches(&q("block.time > TIME 2024-03-05T10:00:00Z"), &ev));
        assert!(matches(&q("block.time >= DATE 2024-03-05"), &ev));
        assert!(!matches(&q("block.time < DATE 2024-03-05"), &ev));
        // A string operand never orders.
        assert!(!matches(&q("send_packet.packet_src_channel > 'a'"), &ev));
    }

    #[test]
    fn height_bounds_narrow_the_scan() {
        assert_eq!(
            height_bounds(&q("tx.height = 5"), "tx.height", 1..=10),
            5..=5
        );
        assert_eq!(
            height_bounds(&q("tx.height > 3 AND tx.height <= 8"), "tx.height", 1..=10),
            4..=8
        );
        assert_eq!(
            height_bounds(&q("tm.event = 'Tx'"), "tx.height", 1..=10),
            1..=10
        );
        let empty = height_bounds(&q("tx.height < 1"), "tx.height", 1..=10);
        assert!(empty.is_empty());
    }
}
