//! Finding committed transactions and blocks: `tx` by hash, and `tx_search` and `block_search` by CometBFT
//! query, paged and ordered as CometBFT does.

use std::sync::Arc;

use serde_json::Value;
use tendermint::Hash;
use tendermint_rpc::endpoint::{block as block_ep, block_search, tx as tx_ep, tx_search};
use tendermint_rpc::query::{Operand, Operation, Query};

use super::{height, page, parse_query, per_page, to_json, Ctx};
use crate::rpc::error::RpcError;
use crate::rpc::node::TxRecord;
use crate::rpc::params::Params;
use crate::rpc::query::{self, EventMap};

impl Ctx {
    pub(super) fn tx(&self, p: &Params) -> Result<Value, RpcError> {
        if p.bool("prove") {
            return Err(RpcError::internal(
                "devnet does not build transaction inclusion proofs (prove=true)",
            ));
        }
        let hash = p.hash("hash").unwrap_or(Hash::None);
        let rec = self
            .node
            .tx(&hash)
            .ok_or_else(|| RpcError::internal(format!("tx ({hash}) not found")))?;
        to_json(&tx_response(&rec)?)
    }

    pub(super) fn tx_search(&self, p: &Params) -> Result<Value, RpcError> {
        let query = parse_query(&p.string("query").unwrap_or_default())?;
        if p.bool("prove") {
            return Err(RpcError::internal(
                "devnet does not build transaction inclusion proofs (prove=true)",
            ));
        }
        let descending = order_desc(p)?;
        let all = self.node.earliest_height()..=self.node.latest_height();
        let range = query::height_bounds(&query, "tx.height", all);
        let pairs = query::indexed_conditions(&query);
        let indexed = match pairs.is_empty() {
            true => None,
            false => self.node.txs_with_attributes(&pairs),
        };
        let mut found: Vec<Arc<TxRecord>> = match (hash_condition(&query), indexed) {
            // A hash lookup is the relayer's hot path; answer it without scanning.
            (Some(hash), _) => self.node.tx(&hash).into_iter().collect(),
            // Attribute equalities narrow the search through the index, as CometBFT's kv indexer does; the full
            // query below still decides.
            (None, Some(candidates)) => candidates
                .into_iter()
                .filter(|rec| range.contains(&rec.height))
                .collect(),
            (None, None) if range.is_empty() => Vec::new(),
            (None, None) => self.node.txs(range),
        };
        found.retain(|rec| query::matches(&query, &query::tx_events(rec)));
        found.sort_by_key(|r| (r.height, r.index));
        if descending {
            found.reverse();
        }
        let per_page = per_page(p);
        let page = page(p, per_page, found.len())?;
        let txs = found
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|r| tx_response(r))
            .collect::<Result<Vec<_>, _>>()?;
        to_json(&tx_search::Response {
            txs,
            total_count: u32::try_from(found.len()).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn block_search(&self, p: &Params) -> Result<Value, RpcError> {
        let query = parse_query(&p.string("query").unwrap_or_default())?;
        let descending = order_desc(p)?;
        let all = self.node.earliest_height()..=self.node.latest_height();
        let range = query::height_bounds(&query, "block.height", all);
        let mut heights = Vec::new();
        if !range.is_empty() {
            for h in range {
                let Some(results) = self.node.block_results(h) else {
                    continue;
                };
                let mut events: EventMap = query::new_block_events(&results.finalize_block_events);
                events.insert("block.height".into(), vec![h.to_string()]);
                if query::matches(&query, &events) {
                    heights.push(h);
                }
            }
        }
        if descending {
            heights.reverse();
        }
        let per_page = per_page(p);
        let page = page(p, per_page, heights.len())?;
        let mut blocks = Vec::new();
        for &h in heights.iter().skip((page - 1) * per_page).take(per_page) {
            let (block_id, b) = self.load_block(h)?;
            blocks.push(block_ep::v0_38::DialectResponse {
                block_id,
                block: b.as_ref().clone().into(),
            });
        }
        to_json(&block_search::v0_38::DialectResponse {
            blocks,
            total_count: u32::try_from(heights.len()).unwrap_or(u32::MAX),
        })
    }
}

/// `tx.hash = '<hex>'` in a query, decoded.
fn hash_condition(query: &Query) -> Option<Hash> {
    query.conditions.iter().find_map(|c| match &c.operation {
        Operation::Eq(Operand::String(s)) if c.key == "tx.hash" => {
            let bytes: [u8; 32] = hex::decode(s).ok()?.try_into().ok()?;
            Some(Hash::Sha256(bytes))
        }
        _ => None,
    })
}

fn tx_response(rec: &TxRecord) -> Result<tx_ep::Response, RpcError> {
    Ok(tx_ep::Response {
        hash: rec.hash,
        height: height(rec.height)?,
        index: rec.index,
        tx_result: rec.result.clone(),
        tx: rec.tx.clone(),
        proof: None,
    })
}

fn order_desc(p: &Params) -> Result<bool, RpcError> {
    match p.string("order_by").as_deref() {
        None | Some("") | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(RpcError::internal(
            "expected order_by to be either `asc` or `desc` or empty",
        )),
    }
}
