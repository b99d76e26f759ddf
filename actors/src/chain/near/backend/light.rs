//! relayd's NEAR light client as the LightClient actor's source: it resumes from the head in sled (or, only
//! with `trust_on_first_use`, takes the node's latest light-client block), keeps the blocks it verified, and builds
//! client updates and `12-near` client creations from them.

use std::collections::BTreeMap;
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use near_primitives::hash::CryptoHash;
use near_primitives::views::LightClientBlockView;
use relayd_messages::{
    ClientUpdate, ConsensusAnchor, Datagram, ErrorKind, HeaderAt, RelayError, VerifiedHead,
};
use tracing::{info, warn};

use super::{header_path, lite, no_head_message, verify_error};
use crate::chain::near::head::NearHead;
use crate::chain::near::header::{
    create_client_msg, near_header, update_client_msg, NearClientStart,
};
use crate::chain::near::light_client::{lite_block_hash, StoredNearHead};
use crate::chain::near::rpc::NearRpc;
use crate::light_client::LightSource;
use crate::store::{StateStore, NEAR_ROOTS_KEPT};

/// Verified light-client blocks kept in memory; older ones are dropped first.
const VERIFIED_CACHE: usize = 512;
/// Most light-client steps one `refresh` takes (each step moves to the node's latest final block or to the
/// end of the next epoch, so a few cover a long absence).
const REFRESH_STEPS: usize = 1024;
/// Most heads one `verified_heads` answer lists (newest first). The proof-height rule takes the newest, and each
/// head listed costs a node round trip for its parent's height, so one is listed.
const HEADS_LISTED: usize = 1;

/// relayd's light client of one NEAR chain, preparing updates of its clients on counterparties.
pub struct NearLight {
    rpc: NearRpc,
    store: StateStore,
    head: Option<NearHead>,
    verified: BTreeMap<u64, LightClientBlockView>,
    wait: Duration,
    poll: Duration,
}

impl NearLight {
    /// A light client resuming from the head stored for the chain. Without one it refuses to start (the chain's
    /// trust must begin at a block the operator vouches for, `relayd light init`), unless `trust_on_first_use`
    /// allows it: then the first use trusts the node's latest light-client block (see [`NearHead::bootstrap`]),
    /// says so loudly and stores it. `wait` bounds how long an update waits for its target height; `poll` is the
    /// pause between looks at the node while waiting.
    pub fn new(
        rpc: NearRpc,
        store: StateStore,
        wait: Duration,
        poll: Duration,
        trust_on_first_use: bool,
    ) -> Result<Self, RelayError> {
        let stored = store
            .trusted_near(rpc.chain())
            .map_err(|e| RelayError::new(ErrorKind::Unavailable, e.to_string()))?;
        if stored.is_none() && !trust_on_first_use {
            return Err(RelayError::new(
                ErrorKind::ClientUnusable,
                no_head_message(rpc.chain()),
            ));
        }
        // The epoch-opening blocks verified before a restart: updates of a client epochs behind go through them.
        let mut verified: BTreeMap<u64, LightClientBlockView> = store
            .near_epoch_blocks(rpc.chain())
            .unwrap_or_else(|e| {
                warn!(chain = rpc.chain(), error = %e, "cannot read the recorded NEAR epoch blocks");
                Vec::new()
            })
            .into_iter()
            .map(|b| (b.inner_lite.height, b))
            .collect();
        let head = stored.map(|stored| {
            let height = stored.trusted.head.inner_lite.height;
            if let Some(block) = stored.block {
                verified.insert(height, block);
            }
            info!(
                chain = rpc.chain(),
                height, "NEAR light client resumes from its stored head"
            );
            NearHead::new(rpc.clone(), stored.trusted)
        });
        Ok(Self {
            rpc,
            store,
            head,
            verified,
            wait,
            poll,
        })
    }

    /// The trusted head's height, once there is one.
    pub fn head_height(&self) -> Option<u64> {
        self.head
            .as_ref()
            .map(|h| h.trusted().head.inner_lite.height)
    }

    async fn ensure_head(&mut self) -> Result<(), RelayError> {
        if self.head.is_some() {
            return Ok(());
        }
        let mut head = NearHead::bootstrap(self.rpc.clone())
            .await
            .map_err(verify_error)?;
        // With the epoch's producers the head moves at the next final block instead of the next epoch (half a
        // day on mainnet). Nodes that do not serve the list leave the head waiting for the epoch change.
        if let Err(e) = head.learn_epoch_producers().await {
            info!(chain = self.rpc.chain(), error = %e, "no producer list for the head's epoch; the NEAR head first moves at the next epoch");
        }
        warn!(
            chain = self.rpc.chain(),
            height = head.trusted().head.inner_lite.height,
            hash = %head.trusted().head_hash(),
            "TRUST ON FIRST USE (trust_on_first_use = true): no stored NEAR head, so {} now trusts the node's latest light-client block {} at height {} unverified; for development only, check it out of band",
            self.rpc.chain(),
            head.trusted().head_hash(),
            head.trusted().head.inner_lite.height,
        );
        self.head = Some(head);
        self.persist();
        Ok(())
    }

    fn persist(&mut self) {
        let Some(head) = &self.head else {
            return;
        };
        let trusted = head.trusted().clone();
        let height = trusted.head.inner_lite.height;
        let record = StoredNearHead {
            block: self.verified.get(&height).cloned(),
            trusted,
        };
        if let Err(e) = self.store.save_trusted_near(self.rpc.chain(), &record) {
            warn!(chain = self.rpc.chain(), height, error = %e, "cannot persist the NEAR head");
        }
    }

    /// One light-client step; `None` when the node has nothing newer that relayd can check yet.
    async fn step(&mut self) -> Result<Option<u64>, RelayError> {
        self.ensure_head().await?;
        let Some(head) = self.head.as_mut() else {
            return Ok(None);
        };
        let Some((_, block)) = head.advance_with_block().await.map_err(verify_error)? else {
            return Ok(None);
        };
        let height = block.inner_lite.height;
        let root = block.inner_lite.prev_state_root.0;
        if let Err(e) = self.store.save_near_root(self.rpc.chain(), height, &root) {
            warn!(chain = self.rpc.chain(), height, error = %e, "cannot record the verified block's state root");
        }
        // The first verified block of an epoch is a step every client behind it must take: kept across restarts.
        let opens_epoch = self
            .verified
            .range(..height)
            .next_back()
            .is_none_or(|(_, before)| before.inner_lite.epoch_id != block.inner_lite.epoch_id);
        if opens_epoch {
            if let Err(e) = self.store.save_near_epoch_block(self.rpc.chain(), &block) {
                warn!(chain = self.rpc.chain(), height, error = %e, "cannot record the verified epoch block");
            }
        }
        self.verified.insert(height, block);
        while self.verified.len() > VERIFIED_CACHE {
            self.verified.pop_first();
        }
        // Every step is a node round trip and moves the head by a final block or an epoch: writing each head
        // costs little next to it, and what is on disk is always what relayd trusts in memory.
        self.persist();
        Ok(Some(height))
    }

    /// Advances until the head is at or above `target`, waiting for the chain up to the configured time.
    async fn advance_to(&mut self, target: u64) -> Result<u64, RelayError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            self.ensure_head().await?;
            let height = self.head_height().unwrap_or(0);
            if height >= target {
                return Ok(height);
            }
            if self.step().await?.is_none() {
                if tokio::time::Instant::now() >= deadline {
                    return Err(RelayError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "{}: no verified NEAR head at or above {target} yet (head {height})",
                            self.rpc.chain()
                        ),
                    ));
                }
                tokio::time::sleep(self.poll).await;
            }
        }
    }

    /// The chunk state roots of a verified block, from the node (checked against the block by the callers that
    /// put them in a header).
    async fn chunk_roots(
        &self,
        block: &LightClientBlockView,
    ) -> Result<Vec<CryptoHash>, RelayError> {
        let hash: CryptoHash = lite_block_hash(&lite(block));
        let full = self.rpc.block_by_hash(hash).await.map_err(|e| {
            RelayError::new(
                ErrorKind::Unavailable,
                format!("{}: block {hash}: {e}", self.rpc.chain()),
            )
        })?;
        Ok(full.chunks.iter().map(|c| c.prev_state_root).collect())
    }

    /// The header of a verified block, with its chunk state roots checked against the block's header.
    async fn header_for(&self, block: &LightClientBlockView) -> Result<Any, RelayError> {
        let roots = self.chunk_roots(block).await?;
        near_header(block, &roots).map_err(|e| {
            RelayError::new(ErrorKind::Unverified, format!("{}: {e}", self.rpc.chain()))
        })
    }

    /// `MsgCreateClient` of a `12-near` client of this chain, trusting for `trusting_period` the newest block the
    /// light client verified: the head moves to the node's latest verified block first, and when the head has no
    /// verified block of its own (a head stored by `light init`) it waits, up to the configured time, for the
    /// next one. Returns the message and the block's height and hash.
    pub async fn create_client_msg(
        &mut self,
        trusting_period: Duration,
        signer: &str,
    ) -> Result<(Any, u64, CryptoHash), RelayError> {
        self.refresh().await?;
        let deadline = tokio::time::Instant::now() + self.wait;
        let (block, trusted) = loop {
            let head = self.head.as_ref().map(|h| h.trusted().clone());
            if let Some(trusted) = head {
                if let Some(block) = self.verified.get(&trusted.head.inner_lite.height) {
                    break (block.clone(), trusted);
                }
            }
            if self.step().await?.is_none() {
                if tokio::time::Instant::now() >= deadline {
                    return Err(RelayError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "{}: no light-client block verified from the trusted head yet",
                            self.rpc.chain()
                        ),
                    ));
                }
                tokio::time::sleep(self.poll).await;
            }
        };
        let roots = self.chunk_roots(&block).await?;
        let next_bps = block
            .next_bps
            .as_deref()
            .or(trusted.next_epoch_bps.as_deref());
        let start = NearClientStart {
            block: &block,
            chunk_state_roots: &roots,
            epoch_bps: &trusted.epoch_bps,
            next_bps,
        };
        let msg = create_client_msg(&start, trusting_period, signer).map_err(|e| {
            RelayError::new(ErrorKind::Unverified, format!("{}: {e}", self.rpc.chain()))
        })?;
        Ok((msg, block.inner_lite.height, trusted.head_hash()))
    }
}

impl LightSource for NearLight {
    /// The NEAR light client verifies the blocks the node serves as light-client blocks: final heads, not every
    /// height. An update is therefore prepared for one of those verified heads, `target` itself when it is one,
    /// otherwise the first above it (the client keeper asks for the chain's tip, "at least this new"); its app hash is
    /// the head's `prev_state_root`, which commits to the state after the head's parent block (where the querier
    /// reads proofs for it). `anchor` is a Tendermint notion and unused: the NEAR head is relayd's own.
    async fn prepare_update(
        &mut self,
        client_id: &str,
        trusted_height: u64,
        _anchor: Option<(Vec<u8>, Vec<u8>)>,
        target: u64,
        signer: &str,
    ) -> Result<ClientUpdate, RelayError> {
        self.advance_to(target).await?;
        let chain = self.rpc.chain().to_owned();
        // A height the node served no light-client block for cannot be verified: the client goes to the first
        // verified head above it instead, and `ClientUpdate::target` says so (a proof read for `target - 1` is
        // then refused by its caller's check against the app hash, never forwarded).
        let Some((&target, block)) = self.verified.range(target..).next() else {
            let below = self.verified.range(..target).next_back().map(|(h, _)| *h);
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{chain}: no verified NEAR light-client head at or above {target} yet (nearest below: {below:?})"
                ),
            ));
        };
        let app_hash = block.inner_lite.prev_state_root.0.to_vec();
        if trusted_height > target {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{client_id} is already at {trusted_height}, above {target}; prove again at a newer height"
                ),
            ));
        }
        let mut msgs = Vec::new();
        if trusted_height < target {
            for block in header_path(&self.verified, trusted_height, target) {
                let header = self.header_for(block).await?;
                let msg = update_client_msg(client_id, header, signer);
                msgs.push(Datagram {
                    type_url: msg.type_url,
                    value: msg.value,
                });
            }
        }
        Ok(ClientUpdate {
            target,
            app_hash,
            msgs,
        })
    }

    async fn refresh(&mut self) -> Result<u64, RelayError> {
        self.ensure_head().await?;
        for _ in 0..REFRESH_STEPS {
            if self.step().await?.is_none() {
                break;
            }
        }
        self.persist();
        Ok(self.head_height().unwrap_or(0))
    }

    /// The verified light-client heads at or above `from`, newest first, after a refresh; each with its parent's
    /// height from the node's block of the head's hash (which the light client checked), where proofs for the head
    /// are read.
    async fn verified_heads(&mut self, from: u64) -> Result<Vec<VerifiedHead>, RelayError> {
        self.refresh().await?;
        let mut heads = Vec::new();
        for block in self
            .verified
            .range(from..)
            .rev()
            .take(HEADS_LISTED)
            .map(|(_, b)| b)
        {
            let hash: CryptoHash = lite_block_hash(&lite(block));
            let full = self.rpc.block_by_hash(hash).await.map_err(|e| {
                RelayError::new(
                    ErrorKind::Unavailable,
                    format!("{}: block {hash}: {e}", self.rpc.chain()),
                )
            })?;
            let (height, parent) = (block.inner_lite.height, full.header.prev_height);
            // The node's block must be the verified one: its height and its parent's hash are what was checked.
            if full.header.height != height || full.header.prev_hash != block.prev_block_hash {
                return Err(RelayError::new(
                    ErrorKind::Unverified,
                    format!(
                        "{}: the node's block {hash} is not the verified head at {height}",
                        self.rpc.chain()
                    ),
                ));
            }
            let Some(parent) = parent else { continue };
            heads.push(VerifiedHead {
                height,
                parent,
                time_ns: block.inner_lite.timestamp_nanosec,
            });
        }
        Ok(heads)
    }

    /// NEAR headers are not CometBFT headers and clients of NEAR are not Tendermint clients: misbehaviour of
    /// NEAR is not judged by comparing Tendermint headers, so the request is refused.
    async fn verified_root(&mut self, height: u64) -> Result<Vec<u8>, RelayError> {
        let recorded = |light: &Self| -> Result<Option<Vec<u8>>, RelayError> {
            if let Some(block) = light.verified.get(&height) {
                return Ok(Some(block.inner_lite.prev_state_root.0.to_vec()));
            }
            light
                .store
                .near_root(light.rpc.chain(), height)
                // relayd's own database, not the node: no verdict on the node.
                .map_err(|e| RelayError::new(ErrorKind::Rejected, e.to_string()))
        };
        if let Some(root) = recorded(self)? {
            return Ok(root);
        }
        self.refresh().await?;
        // Not holding a block is relayd's answer, not the node's failure: it must not open the link's breaker.
        recorded(self)?.ok_or_else(|| {
            RelayError::new(
                ErrorKind::Rejected,
                format!(
                    "{}: relayd's NEAR light client has verified no block at {height} (it records the roots of the {NEAR_ROOTS_KEPT} newest it verified)",
                    self.rpc.chain()
                ),
            )
        })
    }

    async fn verified_header(
        &mut self,
        height: u64,
        _anchor: Option<(u64, ConsensusAnchor)>,
    ) -> Result<HeaderAt, RelayError> {
        Err(RelayError::new(
            ErrorKind::Rejected,
            format!(
                "{}: height {height}: NEAR headers are not compared for Tendermint misbehaviour",
                self.rpc.chain()
            ),
        ))
    }
}

#[cfg(test)]
mod tests;
