//! Reading one height: the block and its results over HTTP, checked to be the height asked for, decoded into
//! its IBC events.

use tendermint::crypto::Sha256 as _;
use tracing::warn;

use super::super::events::decode_block_results;
use super::super::rpc::{CosmosRpc, RpcError};
use crate::chain_monitor::{BlockEvents, EventError};

/// Why one height could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The node could not be asked.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node answered about another height.
    #[error("{chain}: asked for height {asked}, the node answered with height {got}")]
    WrongHeight {
        /// The chain.
        chain: String,
        /// The height asked for.
        asked: u64,
        /// The height in the answer.
        got: u64,
    },
}

/// Reads the block and its results at `height` and decodes the IBC events.
pub async fn fetch_block(
    rpc: &CosmosRpc,
    chain: &str,
    height: u64,
) -> Result<BlockEvents, FetchError> {
    let (results, block) = tokio::try_join!(rpc.block_results(height), rpc.block(height))?;
    for got in [results.height.value(), block.header.height.value()] {
        if got != height {
            return Err(FetchError::WrongHeight {
                chain: chain.to_owned(),
                asked: height,
                got,
            });
        }
    }
    let time_ns = block_time_ns(&block.header.time);
    // The header's hash is the block id's hash; computed here, as `block` answers carry no id field we keep.
    let block_id_hash = block.header.hash().to_string();
    let txs = block.data;
    let results_count = results.txs_results.as_ref().map_or(0, Vec::len);
    let mut errors = Vec::new();
    // Results name their transaction by position only; if the counts disagree, positions cannot be trusted.
    let tx_hashes: Vec<String> = if txs.len() == results_count {
        txs.iter().map(|tx| tx_hash(tx)).collect()
    } else {
        errors.push(EventError {
            height,
            event: "txs_results".into(),
            reason: format!(
                "the block has {} transactions but block_results has {results_count} results; transaction hashes left out",
                txs.len()
            ),
        });
        Vec::new()
    };
    let decoded = decode_block_results(&results, &tx_hashes);
    errors.extend(decoded.errors);
    for e in &errors {
        warn!(chain, height, error = %e, "malformed block results");
    }
    Ok(BlockEvents {
        chain: chain.to_owned(),
        height,
        time_ns,
        block_hash: block_id_hash,
        events: decoded.events,
        errors,
    })
}

/// A block time as ns since the epoch (0 for times before it, which no real chain has).
pub fn block_time_ns(time: &tendermint::Time) -> u64 {
    u64::try_from(time.unix_timestamp_nanos()).unwrap_or(0)
}

/// A transaction's hash as CometBFT prints it: SHA-256 of the raw bytes, upper-case hex.
fn tx_hash(tx: &[u8]) -> String {
    hex::encode_upper(tendermint::crypto::default::Sha256::digest(tx))
}
