//! The RPC methods themselves: each reads the node through [`NodeView`] and returns the JSON result CometBFT v0.38
//! would, built from tendermint-rpc's own response types so tendermint-rs clients decode it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tendermint::{block, Hash};
use tendermint_proto::Protobuf;
use tendermint_rpc::endpoint::{
    abci_info, abci_query, block as block_ep, block_by_hash, block_results, blockchain, commit,
    consensus_params, header, header_by_hash, status, validators,
};
use tendermint_rpc::query::Query;

use super::dialect::Dialect;
use super::error::RpcError;
use super::node::NodeView;
use super::params::Params;

mod broadcast_tx;
mod search;

/// Knobs of the server that differ from a plain CometBFT default only when a test asks.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// How long `broadcast_tx_commit` waits for the transaction to be committed (CometBFT's
    /// `timeout_broadcast_tx_commit`, 10 s by default).
    pub broadcast_tx_commit_timeout: Duration,
    /// Subscriptions one WebSocket connection may hold (CometBFT's `max_subscriptions_per_client`, 5 by default).
    pub max_subscriptions_per_client: usize,
    /// Largest accepted request body (CometBFT's `max_body_bytes`, 1 MB by default).
    pub max_body_bytes: usize,
    /// The CometBFT version answered as.
    pub dialect: Dialect,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            broadcast_tx_commit_timeout: Duration::from_secs(10),
            max_subscriptions_per_client: 5,
            max_body_bytes: 1_000_000,
            dialect: Dialect::default(),
        }
    }
}

/// What every handler needs: the node and the configuration.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub node: Arc<dyn NodeView>,
    pub config: RpcConfig,
}

/// CometBFT caps queries at this length before parsing them.
pub(crate) const MAX_QUERY_LENGTH: usize = 512;
const DEFAULT_PER_PAGE: i64 = 30;
const MAX_PER_PAGE: i64 = 100;
/// `blockchain` returns at most this many block metas.
const BLOCKCHAIN_LIMIT: u64 = 20;

fn to_json<T: Serialize>(value: &T) -> Result<Value, RpcError> {
    serde_json::to_value(value)
        .map_err(|e| RpcError::internal(format!("error marshaling response: {e}")))
}

fn height(h: u64) -> Result<block::Height, RpcError> {
    block::Height::try_from(h).map_err(|e| RpcError::internal(format!("invalid height {h}: {e}")))
}

/// Parses a subscription or search query the way CometBFT reports failures.
pub(crate) fn parse_query(q: &str) -> Result<Query, RpcError> {
    if q.len() > MAX_QUERY_LENGTH {
        return Err(RpcError::internal("maximum query length exceeded"));
    }
    q.parse::<Query>()
        .map_err(|e| RpcError::internal(format!("failed to parse query: {}", e.detail())))
}

/// SHA-256 of the transaction bytes, CometBFT's transaction hash.
pub(crate) fn tx_hash(tx: &[u8]) -> Hash {
    Hash::Sha256(Sha256::digest(tx).into())
}

impl Ctx {
    /// Runs one non-WebSocket method, answering as the configured CometBFT version. The caller has already
    /// checked that `method` exists in some version.
    pub(crate) async fn call(&self, method: &str, p: &Params) -> Result<Value, RpcError> {
        let dialect = self.config.dialect;
        if !dialect.has_method(method) {
            return Err(RpcError::MethodNotFound);
        }
        // Who asks what of the node (RUST_LOG=devnet::rpc=debug): how the benches attribute node load to a relayer.
        if tracing::enabled!(target: "devnet::rpc", tracing::Level::DEBUG) {
            let path = p.string("path").unwrap_or_default();
            // A store read is named by its key; other queries carry protobuf, which is not logged.
            let key = match path.starts_with("store/") {
                true => String::from_utf8_lossy(&p.hex("data").unwrap_or_default()).into_owned(),
                false => String::new(),
            };
            let query = p.string("query").unwrap_or_default();
            tracing::debug!(target: "devnet::rpc", method, path, query, key, "call");
        }
        let mut result = self.call_v0_38(method, p).await?;
        dialect.adapt_result(method, &mut result);
        Ok(result)
    }

    async fn call_v0_38(&self, method: &str, p: &Params) -> Result<Value, RpcError> {
        match method {
            "health" => Ok(json!({})),
            "status" => self.status(),
            "net_info" => Ok(self.net_info()),
            "genesis" => self.genesis(),
            "abci_info" => to_json(&abci_info::Response {
                response: self.node.abci_info(),
            }),
            "abci_query" => self.abci_query(p),
            "block" => self.block(p),
            "block_by_hash" => self.block_by_hash(p),
            "block_results" => self.block_results(p),
            "blockchain" => self.blockchain(p),
            "commit" => self.commit(p),
            "header" => self.header(p),
            "header_by_hash" => self.header_by_hash(p),
            "validators" => self.validators(p),
            "consensus_params" => self.consensus_params(p),
            "broadcast_tx_sync" => self.broadcast_tx_sync(p),
            "broadcast_tx_async" => self.broadcast_tx_async(p),
            "broadcast_tx_commit" => self.broadcast_tx_commit(p).await,
            "tx" => self.tx(p),
            "tx_search" | "block_search" => {
                // A search may scan every block; keep it off the async workers.
                let (ctx, p, method) = (self.clone(), p.clone(), method.to_owned());
                tokio::task::spawn_blocking(move || {
                    if method == "tx_search" {
                        ctx.tx_search(&p)
                    } else {
                        ctx.block_search(&p)
                    }
                })
                .await
                .map_err(|e| RpcError::internal(format!("search failed: {e}")))?
            }
            _ => Err(RpcError::MethodNotFound),
        }
    }

    /// CometBFT's `getHeight`: absent means `latest`; otherwise it must lie in `[earliest, latest]`.
    fn height_arg(&self, p: &Params, latest: u64) -> Result<u64, RpcError> {
        let Some(h) = p.int("height") else {
            return Ok(latest);
        };
        if h <= 0 {
            return Err(RpcError::internal(format!(
                "height must be greater than 0, but got {h}"
            )));
        }
        // Positive i64 always fits in u64.
        let h = h.unsigned_abs();
        if h > latest {
            return Err(RpcError::internal(format!(
                "height {h} must be less than or equal to the current blockchain height {latest}"
            )));
        }
        let base = self.node.earliest_height();
        if h < base {
            return Err(RpcError::internal(format!(
                "height {h} is not available, lowest height is {base}"
            )));
        }
        Ok(h)
    }

    fn committed_height(&self, p: &Params) -> Result<u64, RpcError> {
        self.height_arg(p, self.node.latest_height())
    }

    fn status(&self) -> Result<Value, RpcError> {
        let node = &self.node;
        let genesis_time = node.genesis_time();
        let describe = |h: u64| match node.block(h) {
            Some((id, b)) => (id.hash, b.header.app_hash.clone(), b.header.time),
            None => (Hash::None, tendermint::AppHash::default(), genesis_time),
        };
        let (earliest, latest) = (node.earliest_height(), node.latest_height());
        let (e_hash, e_app, e_time) = describe(earliest);
        let (l_hash, l_app, l_time) = describe(latest);
        let sync_info = status::SyncInfo {
            earliest_block_hash: e_hash,
            earliest_app_hash: e_app,
            earliest_block_height: height(earliest)?,
            earliest_block_time: e_time,
            latest_block_hash: l_hash,
            latest_app_hash: l_app,
            latest_block_height: height(latest)?,
            latest_block_time: l_time,
            catching_up: false,
        };
        let validator = node.validator_info();
        let mut out = to_json(&status::Response {
            node_info: node.node_info(),
            sync_info,
            validator_info: validator.clone(),
        })?;
        out["validator_info"] = validator_json(&validator, false)?;
        Ok(out)
    }

    fn net_info(&self) -> Value {
        let info = self.node.node_info();
        json!({
            "listening": true,
            "listeners": [format!("Listener({}@{})", info.id, info.listen_addr)],
            "n_peers": "0",
            "peers": [],
        })
    }

    fn genesis(&self) -> Result<Value, RpcError> {
        let earliest = self.node.earliest_height();
        let params = self
            .node
            .consensus_params(earliest)
            .ok_or_else(|| RpcError::internal("genesis consensus params are not available"))?;
        let validators = self
            .node
            .validators(earliest)
            .map(|s| s.validators().clone())
            .unwrap_or_default();
        let genesis = tendermint::Genesis::<Value> {
            genesis_time: self.node.genesis_time(),
            chain_id: self.node.chain_id(),
            initial_height: i64::try_from(earliest.max(1))
                .map_err(|_| RpcError::internal("initial height out of range"))?,
            consensus_params: params,
            validators,
            app_hash: tendermint::AppHash::default(),
            app_state: json!({}),
        };
        let mut out = to_json(&genesis)?;
        // Go writes an unnamed genesis validator with an empty name, not null.
        if let Some(vals) = out.get_mut("validators").and_then(Value::as_array_mut) {
            for v in vals.iter_mut().filter(|v| v["name"].is_null()) {
                v["name"] = Value::String(String::new());
            }
        }
        Ok(json!({ "genesis": out }))
    }

    fn abci_query(&self, p: &Params) -> Result<Value, RpcError> {
        let path = p.string("path").unwrap_or_default();
        let data = p.hex("data").unwrap_or_default();
        let h = p.int("height").unwrap_or(0);
        let h = u64::try_from(h)
            .map_err(|_| RpcError::internal(format!("cannot query with height < 0; got {h}")))?;
        let q = self.node.abci_query(&path, &data, h, p.bool("prove"));
        let response = abci_query::AbciQuery {
            code: q.code,
            log: q.log,
            info: q.info,
            index: q.index,
            key: q.key.to_vec(),
            value: q.value.to_vec(),
            proof: q.proof,
            height: q.height,
            codespace: q.codespace,
        };
        let mut out = to_json(&abci_query::Response { response })?;
        // CometBFT names the proof field after its protobuf JSON name; tendermint-rs reads both.
        if let Some(obj) = out.get_mut("response").and_then(Value::as_object_mut) {
            if let Some(proof) = obj.remove("proof") {
                obj.insert("proofOps".into(), proof);
            }
        }
        Ok(out)
    }

    fn load_block(&self, h: u64) -> Result<(block::Id, Arc<tendermint::Block>), RpcError> {
        self.node
            .block(h)
            .ok_or_else(|| RpcError::internal(format!("block at height {h} not found")))
    }

    fn block(&self, p: &Params) -> Result<Value, RpcError> {
        let h = self.committed_height(p)?;
        let (block_id, block) = self.load_block(h)?;
        to_json(&block_ep::v0_38::DialectResponse {
            block_id,
            block: block.as_ref().clone().into(),
        })
    }

    fn find_by_hash(&self, p: &Params) -> Option<(block::Id, Arc<tendermint::Block>)> {
        let hash = p.hash("hash")?;
        let h = self.node.height_of_block(&hash)?;
        self.node.block(h)
    }

    fn block_by_hash(&self, p: &Params) -> Result<Value, RpcError> {
        // An unknown hash is not an error in CometBFT: the block comes back null.
        let found = self.find_by_hash(p);
        to_json(&block_by_hash::v0_38::DialectResponse {
            block_id: found.as_ref().map(|(id, _)| *id).unwrap_or_default(),
            block: found.map(|(_, b)| b.as_ref().clone().into()),
        })
    }

    fn header_by_hash(&self, p: &Params) -> Result<Value, RpcError> {
        let found = self.find_by_hash(p);
        to_json(&header_by_hash::Response {
            header: found.map(|(_, b)| b.header.clone()),
        })
    }

    fn header(&self, p: &Params) -> Result<Value, RpcError> {
        let h = self.committed_height(p)?;
        let (_, block) = self.load_block(h)?;
        to_json(&header::Response {
            header: block.header.clone(),
        })
    }

    fn block_results(&self, p: &Params) -> Result<Value, RpcError> {
        let h = self.committed_height(p)?;
        let r = self
            .node
            .block_results(h)
            .ok_or_else(|| RpcError::internal(format!("could not find results for height #{h}")))?;
        let response = block_results::Response {
            height: height(h)?,
            txs_results: (!r.tx_results.is_empty()).then(|| r.tx_results.clone()),
            finalize_block_events: r.finalize_block_events.clone(),
            begin_block_events: None,
            end_block_events: None,
            validator_updates: r.validator_updates.clone(),
            consensus_param_updates: r.consensus_param_updates.clone(),
            app_hash: r.app_hash.clone(),
        };
        let mut out = to_json(&response)?;
        // v0.38 has no begin/end block events and always names finalize_block_events (null when empty).
        if let Some(obj) = out.as_object_mut() {
            obj.remove("begin_block_events");
            obj.remove("end_block_events");
            obj.entry("finalize_block_events").or_insert(Value::Null);
        }
        Ok(out)
    }

    fn blockchain(&self, p: &Params) -> Result<Value, RpcError> {
        let (min, max) = (
            p.int("minHeight").unwrap_or(0),
            p.int("maxHeight").unwrap_or(0),
        );
        if min < 0 || max < 0 {
            return Err(RpcError::internal("heights must be non-negative"));
        }
        let latest = self.node.latest_height();
        let base = self.node.earliest_height();
        let mut min = if min == 0 { 1 } else { min.unsigned_abs() };
        let mut max = if max == 0 { latest } else { max.unsigned_abs() };
        max = max.min(latest);
        min = min
            .max(base)
            .max((max + 1).saturating_sub(BLOCKCHAIN_LIMIT));
        if min > max {
            return Err(RpcError::internal(format!(
                "min height {min} can't be greater than max height {max}"
            )));
        }
        let mut block_metas = Vec::new();
        for h in (min..=max).rev() {
            let (block_id, b) = self.load_block(h)?;
            let block_size =
                Protobuf::<tendermint_proto::v0_38::types::Block>::encoded_len(b.as_ref().clone());
            block_metas.push(block::Meta {
                block_id,
                block_size: i64::try_from(block_size).unwrap_or(i64::MAX),
                header: b.header.clone(),
                num_txs: i64::try_from(b.data.len()).unwrap_or(i64::MAX),
            });
        }
        to_json(&blockchain::Response {
            last_height: height(latest)?,
            block_metas,
        })
    }

    fn commit(&self, p: &Params) -> Result<Value, RpcError> {
        let latest = self.node.latest_height();
        let h = self.height_arg(p, latest)?;
        let signed_header = self
            .node
            .commit(h)
            .ok_or_else(|| RpcError::internal(format!("commit at height {h} not found")))?;
        // CometBFT calls the commit of the latest block non-canonical: it is this node's seen commit, not yet
        // the one recorded in the next block.
        to_json(&commit::Response {
            signed_header,
            canonical: h < latest,
        })
    }

    fn validators(&self, p: &Params) -> Result<Value, RpcError> {
        // The next validator set is already known, so CometBFT accepts one height past the latest commit.
        let h = self.height_arg(p, self.node.latest_height() + 1)?;
        let set = self
            .node
            .validators(h)
            .ok_or_else(|| RpcError::internal(format!("validators at height {h} not found")))?;
        let all = set.validators();
        let per_page = per_page(p);
        let page = page(p, per_page, all.len())?;
        let skip = (page - 1) * per_page;
        let list: Vec<_> = all.iter().skip(skip).take(per_page).cloned().collect();
        let total =
            i32::try_from(all.len()).map_err(|_| RpcError::internal("too many validators"))?;
        let mut out = to_json(&validators::Response::new(height(h)?, list.clone(), total))?;
        out["validators"] = list
            .iter()
            .map(|v| validator_json(v, true))
            .collect::<Result<Vec<_>, _>>()?
            .into();
        Ok(out)
    }

    fn consensus_params(&self, p: &Params) -> Result<Value, RpcError> {
        let h = self.height_arg(p, self.node.latest_height() + 1)?;
        let params = self.node.consensus_params(h).ok_or_else(|| {
            RpcError::internal(format!("consensus params at height {h} not found"))
        })?;
        to_json(&consensus_params::Response {
            block_height: height(h)?,
            consensus_params: params,
        })
    }
}

/// A validator as CometBFT's RPC writes it (`voting_power`, not genesis's `power`/`name`); tendermint-rs reads
/// both spellings.
fn validator_json(v: &tendermint::validator::Info, with_priority: bool) -> Result<Value, RpcError> {
    let mut out = json!({
        "address": to_json(&v.address)?,
        "pub_key": to_json(&v.pub_key)?,
        "voting_power": v.power.value().to_string(),
    });
    if with_priority {
        out["proposer_priority"] = Value::String(v.proposer_priority.value().to_string());
    }
    Ok(out)
}

/// CometBFT's `validatePerPage`: default 30, at most 100, nonsense means the default.
fn per_page(p: &Params) -> usize {
    let n = match p.int("per_page") {
        None => DEFAULT_PER_PAGE,
        Some(n) if n < 1 => DEFAULT_PER_PAGE,
        Some(n) => n.min(MAX_PER_PAGE),
    };
    // Clamped to 1..=100 above.
    usize::try_from(n).unwrap_or(30)
}

/// CometBFT's `validatePage`: absent means 1; otherwise it must name an existing page (one empty page exists).
fn page(p: &Params, per_page: usize, total: usize) -> Result<usize, RpcError> {
    let Some(page) = p.int("page") else {
        return Ok(1);
    };
    let pages = total.saturating_sub(1) / per_page + 1;
    match usize::try_from(page) {
        Ok(n) if n >= 1 && n <= pages => Ok(n),
        _ => Err(RpcError::internal(format!(
            "page should be within [1, {pages}] range, given {page}"
        ))),
    }
}
