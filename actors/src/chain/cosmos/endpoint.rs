//! The Cosmos implementation of [`ChainEndpoint`]: a CometBFT RPC connection plus the chain's IBC store name.

use relayd_messages::ObservedEvent;

use super::monitor::fetch_block;
use super::rpc::CosmosRpc;
use crate::chain::endpoint::{ChainEndpoint, ChainError, Proven, QueryHeight};

/// A Cosmos chain as the actors see it.
#[derive(Clone)]
pub struct CosmosEndpoint {
    rpc: CosmosRpc,
    store_prefix: String,
}

impl CosmosEndpoint {
    /// An endpoint over `rpc` whose IBC store is named `store_prefix` (the config's `store_prefix`).
    pub fn new(rpc: CosmosRpc, store_prefix: &str) -> Self {
        Self {
            rpc,
            store_prefix: store_prefix.to_owned(),
        }
    }

    /// The RPC connection, for the light client and the transaction submitter.
    pub fn rpc(&self) -> &CosmosRpc {
        &self.rpc
    }
}

impl ChainEndpoint for CosmosEndpoint {
    fn chain_id(&self) -> &str {
        self.rpc.chain()
    }

    async fn latest_height(&self) -> Result<u64, ChainError> {
        let (_, height) = self
            .rpc
            .status()
            .await
            .map_err(|e| ChainError::rpc(self.rpc.chain(), "status", e))?;
        Ok(height)
    }

    async fn query_ibc(
        &self,
        path: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError> {
        self.rpc
            .query_ibc(&self.store_prefix, path, height, prove)
            .await
    }

    async fn packet_commitments(&self, port: &str, channel: &str) -> Result<Vec<u64>, ChainError> {
        self.rpc.packet_commitments(port, channel).await
    }

    async fn packet_acknowledgements(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError> {
        self.rpc.packet_acknowledgements(port, channel).await
    }

    async fn unreceived_packets(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        self.rpc.unreceived_packets(port, channel, sequences).await
    }

    async fn unreceived_acks(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        self.rpc.unreceived_acks(port, channel, sequences).await
    }

    async fn packet_events(
        &self,
        kind: relayd_messages::PacketEventKind,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<ObservedEvent>, ChainError> {
        use relayd_messages::PacketEventKind;
        use std::collections::HashSet;
        use tendermint_rpc::{Client, Order};
        let chain = self.rpc.chain();
        let (event, end) = match kind {
            PacketEventKind::Sent => ("send_packet", "src"),
            PacketEventKind::AckWritten => ("write_acknowledgement", "dst"),
        };
        let text = packet_search(event, end, port, channel, sequences);
        let call = format!("tx_search {text}");
        let query: tendermint_rpc::query::Query =
            text.parse().map_err(|e| ChainError::rpc(chain, &call, e))?;
        let mut wanted: HashSet<u64> = sequences.iter().copied().collect();
        let mut out = Vec::new();
        let per_page: u8 = 100;
        let mut page = 1u32;
        while !wanted.is_empty() {
            let r = self
                .rpc
                .http()
                .tx_search(query.clone(), false, page, per_page, Order::Ascending)
                .await
                .map_err(|e| ChainError::rpc(chain, &call, e))?;
            for tx in &r.txs {
                if tx.tx_result.code.is_err() {
                    continue;
                }
                let decoded = super::events::decode_tx_events(
                    tx.height.value(),
                    &tx.hash.to_string(),
                    &tx.tx_result.events,
                );
                for e in decoded.events {
                    if crate::chain::endpoint::take_packet_event(
                        &e,
                        kind,
                        port,
                        channel,
                        &mut wanted,
                    ) {
                        out.push(e);
                    }
                }
            }
            let seen = u64::from(page) * u64::from(per_page);
            if r.txs.is_empty() || seen >= u64::from(r.total_count) {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    async fn tx_messages(
        &self,
        tx_hash: &str,
    ) -> Result<Vec<relayd_messages::Datagram>, ChainError> {
        self.rpc.tx_messages(tx_hash).await
    }

    async fn ibc_events_at(&self, height: u64) -> Result<Vec<ObservedEvent>, ChainError> {
        let block = fetch_block(&self.rpc, self.rpc.chain(), height)
            .await
            .map_err(|e| ChainError::rpc(self.rpc.chain(), &format!("events at {height}"), e))?;
        Ok(block.events)
    }
}

/// The `tx_search` query for the `event` packet events of `port`/`channel` (`end` names the side the attributes
/// describe) with the given sequences. One sequence is searched by its number, as the node's index finds it
/// directly. Several are one search per channel, not per sequence, bounded to the range they span: a backlog of
/// thousands of packets sent many per transaction is a few pages, and a channel's older history (already
/// relayed packets, maybe millions on a busy chain) is not paged through. CometBFT's indexer compares numeric
/// bounds on any attribute.
fn packet_search(event: &str, end: &str, port: &str, channel: &str, sequences: &[u64]) -> String {
    let on_channel =
        format!("{event}.packet_{end}_port='{port}' AND {event}.packet_{end}_channel='{channel}'");
    match (sequences.iter().min(), sequences.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => {
            format!("{event}.packet_sequence='{lo}' AND {on_channel}")
        }
        (Some(lo), Some(hi)) => format!(
            "{on_channel} AND {event}.packet_sequence>={lo} AND {event}.packet_sequence<={hi}"
        ),
        _ => on_channel,
    }
}

#[cfg(test)]
mod tests {
    use super::packet_search;

    #[test]
    fn one_sequence_is_searched_by_its_number_and_several_by_their_range() {
        let one = packet_search("send_packet", "src", "transfer", "channel-7", &[42]);
        assert_eq!(
            one,
            "send_packet.packet_sequence='42' AND send_packet.packet_src_port='transfer' AND \
             send_packet.packet_src_channel='channel-7'"
        );
        let several = packet_search(
            "write_acknowledgement",
            "dst",
            "transfer",
            "channel-0",
            &[9, 3, 120, 4],
        );
        assert_eq!(
            several,
            "write_acknowledgement.packet_dst_port='transfer' AND \
             write_acknowledgement.packet_dst_channel='channel-0' AND \
             write_acknowledgement.packet_sequence>=3 AND write_acknowledgement.packet_sequence<=120"
        );
        // Every query parses as CometBFT's query language.
        for q in [one, several] {
            q.parse::<tendermint_rpc::query::Query>().unwrap();
        }
    }
}
