//! The `/packets` endpoint: its parameters, checked, the counts it reports without reading records, and the
//! bounded page it reads.

use actix_web::{web, HttpRequest, HttpResponse};
use relayd_actors::store::{ChannelKey, ChannelSummary, PacketRecord, PacketScan};
use relayd_messages::{PacketKey, PacketState};
use serde_json::json;

use super::{packet_key, query_pairs, Admin, ApiError, ApiResult};

/// Which packets the `state` parameter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Every unfinished one (`pending`).
    Pending,
    /// Those in one lifecycle state.
    Is(PacketState),
}

/// The `/packets` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketFilter {
    /// Source chain.
    pub chain: Option<String>,
    /// Source channel.
    pub channel: Option<String>,
    /// A lifecycle state, or `pending` for every unfinished one.
    pub state: Option<StateFilter>,
    /// Most records returned.
    pub limit: usize,
    /// Start after this packet (`chain/port/channel/sequence`, the previous page's `next`).
    pub after: Option<String>,
}

/// Default and largest `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;
/// Most records one `/packets` request reads, matching or not; a page that stops there says where to go on.
pub const SCAN_BUDGET: usize = 10_000;

impl PacketFilter {
    /// Parses the query string's pairs; unknown keys and bad values are errors naming them.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut f = Self {
            chain: None,
            channel: None,
            state: None,
            limit: DEFAULT_LIMIT,
            after: None,
        };
        for (k, v) in pairs {
            match k.as_str() {
                "chain" => f.chain = Some(v.clone()),
                "channel" => f.channel = Some(v.clone()),
                "state" => {
                    f.state = Some(match v.as_str() {
                        "pending" => StateFilter::Pending,
                        v => StateFilter::Is(v.parse().map_err(|_| {
                            let names: Vec<_> =
                                PacketState::ALL.iter().map(|s| s.as_str()).collect();
                            format!("state: {v:?} is not one of pending, {}", names.join(", "))
                        })?),
                    });
                }
                "limit" => {
                    f.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            format!("limit: {v:?} is not a number from 1 to {MAX_LIMIT}")
                        })?;
                }
                "after" => f.after = Some(v.clone()),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}; use chain, channel, state, limit, after"
                    ))
                }
            }
        }
        Ok(f)
    }

    /// How many stored records pass, from the per-channel counts (no record is read).
    pub fn count(&self, summaries: &[(ChannelKey, ChannelSummary)]) -> u64 {
        summaries
            .iter()
            .filter(|(c, _)| {
                self.chain.as_ref().is_none_or(|x| &c.chain == x)
                    && self.channel.as_ref().is_none_or(|x| &c.channel == x)
            })
            .map(|(_, s)| match self.state {
                None => s.stored_total(),
                Some(StateFilter::Pending) => s.pending(),
                Some(StateFilter::Is(state)) => s.stored(state),
            })
            .sum()
    }

    /// Whether `r` passes.
    pub fn matches(&self, r: &PacketRecord) -> bool {
        self.chain
            .as_ref()
            .is_none_or(|c| r.key.src_chain.as_str() == c)
            && self
                .channel
                .as_ref()
                .is_none_or(|c| r.key.src_channel.as_str() == c)
            && self.state.is_none_or(|s| match s {
                StateFilter::Pending => !r.is_final(),
                StateFilter::Is(s) => r.state == s,
            })
    }
}

/// One page of records: at most `limit` matching ones, reading at most [`SCAN_BUDGET`] records; `next`
/// (pass it as `after`) says where the following page starts. `matched` comes from the per-channel counts.
pub(super) async fn packets(admin: web::Data<Admin>, req: HttpRequest) -> ApiResult {
    let filter = PacketFilter::parse(&query_pairs(&req)?).map_err(ApiError::bad)?;
    let after = filter.after.as_deref().map(parse_packet_key).transpose()?;
    let summaries = admin
        .store
        .summaries()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let matched = filter.count(&summaries);
    let scan = PacketScan {
        chain: filter.chain.as_deref(),
        after: after.as_ref(),
        pending_only: filter.state == Some(StateFilter::Pending),
    };
    let mut out = Vec::new();
    let mut next = None;
    for (read, record) in admin.store.scan_packets(scan).enumerate() {
        let record = record.map_err(|e| ApiError::internal(e.to_string()))?;
        if filter.matches(&record) {
            out.push(super::views::summary(&record));
        }
        if out.len() >= filter.limit || read + 1 >= SCAN_BUDGET {
            next = Some(record.key.to_string());
            break;
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "matched": matched, "packets": out, "next": next })))
}

/// Reads a `chain/port/channel/sequence` key (the `after` parameter).
fn parse_packet_key(text: &str) -> Result<PacketKey, ApiError> {
    let parts: Vec<&str> = text.split('/').collect();
    let [chain, port, channel, sequence] = parts.as_slice() else {
        return Err(ApiError::bad(format!(
            "after: {text:?} is not chain/port/channel/sequence"
        )));
    };
    packet_key((
        (*chain).to_owned(),
        (*port).to_owned(),
        (*channel).to_owned(),
        (*sequence).to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_rejects_unknown_keys_and_bad_values() {
        let p = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(PacketFilter::parse(&p("state", "pending")).is_ok());
        assert!(PacketFilter::parse(&p("state", "nope"))
            .unwrap_err()
            .contains("state"));
        assert!(PacketFilter::parse(&p("limit", "0"))
            .unwrap_err()
            .contains("limit"));
        assert!(PacketFilter::parse(&p("limit", "x")).is_err());
        assert!(PacketFilter::parse(&p("colour", "red"))
            .unwrap_err()
            .contains("colour"));
        assert_eq!(PacketFilter::parse(&p("limit", "7")).unwrap().limit, 7);
    }

    #[test]
    fn counts_come_from_the_channel_summaries() {
        let channel = |chain: &str, name: &str| ChannelKey {
            chain: chain.into(),
            port: "transfer".into(),
            channel: name.into(),
        };
        let mut a = ChannelSummary::default();
        for _ in 0..3 {
            a.moved(None, PacketState::Acknowledged);
        }
        a.compacted(PacketState::Acknowledged);
        a.moved(None, PacketState::Submitted);
        let mut b = ChannelSummary::default();
        b.moved(None, PacketState::Detected);
        let summaries = vec![
            (channel("ibc-0", "channel-0"), a),
            (channel("ibc-1", "channel-0"), b),
        ];
        let count = |pairs: &[(&str, &str)]| {
            let pairs: Vec<_> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            PacketFilter::parse(&pairs).unwrap().count(&summaries)
        };
        assert_eq!(count(&[]), 4, "the compacted record is not stored");
        assert_eq!(count(&[("chain", "ibc-0")]), 3);
        assert_eq!(count(&[("state", "pending")]), 2);
        assert_eq!(count(&[("state", "acknowledged")]), 2);
        assert_eq!(count(&[("channel", "channel-0"), ("state", "detected")]), 1);
        assert_eq!(count(&[("chain", "ibc-9")]), 0);
        assert_eq!(
            PacketFilter::parse(&[("after".to_owned(), "ibc-0/transfer/channel-0/4".to_owned())])
                .unwrap()
                .after
                .as_deref(),
            Some("ibc-0/transfer/channel-0/4")
        );
    }
}
