//! Clearing arithmetic, pure: from what the chains say is committed and unreceived, and what relayd's records
//! hold, which packets are pending and which must be looked up in the chains' transaction index.

use crate::store::PacketRecord;

/// What relayd's records hold of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// No record (sent before relayd first ran, or while its data directory was elsewhere).
    Unknown,
    /// A record without the acknowledgement bytes.
    Sent,
    /// A record with the acknowledgement bytes.
    Acked,
}

/// The committed sequences the request covers (`wanted`, or all).
pub fn select(mut committed: Vec<u64>, wanted: Option<&[u64]>) -> Vec<u64> {
    if let Some(w) = wanted {
        committed.retain(|s| w.contains(s));
    }
    committed
}

/// The committed sequences the destination has received (their acknowledgements are pending on the source).
pub fn received(committed: &[u64], unreceived: &[u64]) -> Vec<u64> {
    committed
        .iter()
        .copied()
        .filter(|s| !unreceived.contains(s))
        .collect()
}

/// What must be looked up in the chains' transaction index: the unreceived packets relayd has no record of
/// (their data comes from the source's send events), and the received ones whose acknowledgement bytes relayd
/// does not hold (they come from the destination's write-ack events).
pub fn to_look_up(
    unreceived: &[u64],
    received: &[u64],
    known: impl Fn(u64) -> Known,
) -> (Vec<u64>, Vec<u64>) {
    let unseen_sent = unreceived
        .iter()
        .copied()
        .filter(|s| known(*s) == Known::Unknown)
        .collect();
    let ack_unknown = received
        .iter()
        .copied()
        .filter(|s| known(*s) != Known::Acked)
        .collect();
    (unseen_sent, ack_unknown)
}

/// What a record says relayd knows of its packet.
pub fn known(record: Option<&PacketRecord>) -> Known {
    match record {
        None => Known::Unknown,
        Some(r) if r.ack.is_some() => Known::Acked,
        Some(_) => Known::Sent,
    }
}

/// Whether clearing relays a record's packet: not when it is skipped by policy (an ICS-20 cap), which no
/// clearing, on start, periodic or on demand, undoes.
pub fn relayable(record: &PacketRecord) -> bool {
    record.state != relayd_messages::PacketState::Skipped
}

/// Makes a record pending on chain but final here (e.g. failed) relay again from the start; says whether it
/// was final. A skipped record is left as it is (see [`relayable`]).
pub fn reopen(record: &mut PacketRecord) -> bool {
    if !record.is_final() || !relayable(record) {
        return false;
    }
    record.state = relayd_messages::PacketState::Detected;
    record.attempts = 0;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_sequences_split_into_pending_receives_and_pending_acks() {
        let committed = select(vec![1, 2, 3, 4, 5], Some(&[2, 3, 4, 9]));
        assert_eq!(committed, [2, 3, 4]);
        assert_eq!(select(vec![1, 2], None), [1, 2]);
        let unreceived = [3];
        assert_eq!(received(&committed, &unreceived), [2, 4]);
    }

    #[test]
    fn only_what_relayd_does_not_hold_is_looked_up() {
        let known = |s: u64| match s {
            1 | 4 => Known::Unknown,
            2 | 5 => Known::Sent,
            _ => Known::Acked,
        };
        let (sent, acks) = to_look_up(&[1, 2, 3], &[4, 5, 6], known);
        assert_eq!(sent, [1]);
        assert_eq!(acks, [4, 5]);
    }
}
