//! Finding old packet events on NEAR, for clearing packets sent while relayd was not watching. NEAR has no
//! transaction index to search, but the IBC contract's event history names the heights that hold IBC events
//! (`get_ibc_events_heights`), so the heights are read newest first until every wanted packet is found.

use std::collections::HashSet;

use relayd_messages::{ObservedEvent, PacketEventKind};
use serde_json::json;

use super::contract;
use super::endpoint::NearEndpoint;
use crate::chain::endpoint::{take_packet_event, ChainEndpoint, ChainError};

/// Heights read per search at most: each is one view call, and a backlog older than this many eventful heights
/// is for an archival operator's `clear packets`, not for clearing on start.
pub const MAX_HEIGHTS_READ: usize = 2_048;

/// The `kind` events of `sequences` on `port`/`channel`, oldest first. Sequences whose event the history no longer
/// holds (pruned, or beyond [`MAX_HEIGHTS_READ`]) are left out, as a transaction index that pruned them would.
pub async fn packet_events(
    endpoint: &NearEndpoint,
    kind: PacketEventKind,
    port: &str,
    channel: &str,
    sequences: &[u64],
) -> Result<Vec<ObservedEvent>, ChainError> {
    let mut wanted: HashSet<u64> = sequences.iter().copied().collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let raw = endpoint.view("get_ibc_events_heights", json!({})).await?;
    let heights = contract::event_heights(&raw)
        .map_err(|e| ChainError::rpc(endpoint.chain_id(), &e.method, e.reason))?;
    let mut out = Vec::new();
    for height in heights.into_iter().rev().take(MAX_HEIGHTS_READ) {
        for e in endpoint.ibc_events_at(height).await? {
            if take_packet_event(&e, kind, port, channel, &mut wanted) {
                out.push(e);
            }
        }
        if wanted.is_empty() {
            break;
        }
    }
    if !wanted.is_empty() {
        tracing::debug!(
            chain = endpoint.chain_id(),
            port,
            channel,
            missing = wanted.len(),
            "packet events not in the contract's event history"
        );
    }
    // Heights were read newest first; a stable sort keeps each height's events in their order.
    out.sort_by_key(|e| e.height);
    Ok(out)
}
