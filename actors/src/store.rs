//! relayd's persistent state in sled: what must survive a restart so relaying resumes where it stopped.
//! Each chain's trusted light-client block (a CometBFT light block, or a NEAR light-client head) and checkpoint
//! height, the packet lifecycle records (binary: `codec`) with their per-channel counts and indexes (`packets`,
//! written a block at a time: `batch`), the packets observed but not yet given records (`intake`), the
//! dead-letter queue and the misbehaviour evidence (`evidence`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use relayd_messages::{CorrelationId, Packet, PacketKey, PacketState};
use serde::{Deserialize, Serialize};
use tendermint_light_client_verifier::types::LightBlock;

use crate::chain::near::light_client::StoredNearHead;

mod batch;
mod codec;
mod evidence;
mod handles;
mod intake;
mod near_roots;
mod packets;
mod soon;
pub mod summary;

pub use batch::PacketBatch;
use handles::Shared;
pub use intake::{decode_intake, encode_intake, IntakeEntry};
pub use near_roots::{NEAR_EPOCH_BLOCKS_KEPT, NEAR_ROOTS_KEPT};
pub use packets::PacketScan;
pub use soon::{SOON_MAX, SOON_WAIT};
pub use summary::{ChannelKey, ChannelSummary};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("state database: {0}")]
    Db(#[from] sled::Error),
    /// The database folder cannot be created or resolved.
    #[error("state database folder {path}: {source}")]
    Path {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored record does not decode; the database was written by something else or is damaged.
    #[error("state database: record {key} is unreadable: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoding error.
        reason: String,
    },
}

/// Typed access to the state database. Clones share one open database; so do all opens of one folder in a
/// process, which is what lets a relay restart in place (see `store/handles.rs`).
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Shared>,
}

/// The database's trees.
struct Trees {
    light: sled::Tree,
    near_light: sled::Tree,
    /// NEAR verified state roots by chain and height: `near_roots`.
    near_roots: sled::Tree,
    /// NEAR verified light-client blocks that open an epoch, by chain and height: `near_roots`.
    near_epoch_blocks: sled::Tree,
    checkpoints: sled::Tree,
    packets: sled::Tree,
    dead: sled::Tree,
    /// Per source channel: [`ChannelSummary`].
    summary: sled::Tree,
    /// Keys of unfinished packets.
    pending: sled::Tree,
    /// Finished (compactable) records by finish time: [`summary::finished_key`].
    finished: sled::Tree,
    /// Misbehaviour evidence, oldest first.
    evidence: sled::Tree,
    /// Markers of what the database holds (the index being built).
    meta: sled::Tree,
    /// The packets of observed blocks whose records are not made yet, one entry per block: `intake`.
    intake: sled::Tree,
    db: sled::Db,
}

impl Trees {
    fn of(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            light: db.open_tree("light_client")?,
            near_light: db.open_tree("near_light_client")?,
            near_roots: db.open_tree("near_verified_roots")?,
            near_epoch_blocks: db.open_tree("near_epoch_blocks")?,
            checkpoints: db.open_tree("checkpoints")?,
            packets: db.open_tree("packets")?,
            dead: db.open_tree("dead_letters")?,
            summary: db.open_tree("packet_summary")?,
            pending: db.open_tree("packets_pending")?,
            finished: db.open_tree("packets_finished")?,
            evidence: db.open_tree("misbehaviour")?,
            meta: db.open_tree("meta")?,
            intake: db.open_tree("packet_intake")?,
            db,
        })
    }
}

/// sled's page cache for the state database. Its default (1 GiB) let the cached share of finished records grow
/// the service's memory with every packet relayed; the hot set is the pending records and their indexes, and pages
/// beyond this are read back from the file (through the OS's cache, which the service's RSS does not count).
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl StateStore {
    /// Opens (or creates) the database at `path`, or shares the handle already open on it in this process.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let inner = handles::open_shared(path, |path| {
            Trees::of(
                sled::Config::new()
                    .path(path)
                    .cache_capacity(CACHE_BYTES)
                    .open()?,
            )
        })?;
        let store = Self { inner };
        store.ensure_index()?;
        Ok(store)
    }

    /// Wraps an open database (not shared with [`StateStore::open`]; for temporary databases).
    pub fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let store = Self {
            inner: Shared::unregistered(Trees::of(db)?),
        };
        store.ensure_index()?;
        Ok(store)
    }

    fn trees(&self) -> &Trees {
        &self.inner.trees
    }

    /// Records `block` as the chain's trusted state, replacing the previous one.
    pub fn save_trusted(&self, chain: &str, block: &LightBlock) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(block).map_err(|e| StoreError::Corrupt {
            key: chain.to_owned(),
            reason: e.to_string(),
        })?;
        self.trees().light.insert(chain.as_bytes(), bytes)?;
        self.trees().light.flush()?;
        Ok(())
    }

    /// The chain's trusted light-client block, if one was set.
    pub fn trusted(&self, chain: &str) -> Result<Option<LightBlock>, StoreError> {
        let Some(bytes) = self.trees().light.get(chain.as_bytes())? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: format!("light_client/{chain}"),
                reason: e.to_string(),
            })
    }

    /// Records a NEAR chain's trusted light-client head, replacing the previous one.
    pub fn save_trusted_near(&self, chain: &str, head: &StoredNearHead) -> Result<(), StoreError> {
        let bytes = encode(&format!("near_light_client/{chain}"), head)?;
        self.trees().near_light.insert(chain.as_bytes(), bytes)?;
        self.trees().near_light.flush()?;
        Ok(())
    }

    /// A NEAR chain's trusted light-client head, if one was recorded.
    pub fn trusted_near(&self, chain: &str) -> Result<Option<StoredNearHead>, StoreError> {
        self.trees()
            .near_light
            .get(chain.as_bytes())?
            .map(|v| decode(&format!("near_light_client/{chain}"), &v))
            .transpose()
    }

    /// The last height of `chain` whose events were fully handled; relaying resumes after it.
    pub fn checkpoint(&self, chain: &str) -> Result<Option<u64>, StoreError> {
        if let Some(height) = self.waiting_checkpoint(chain) {
            return Ok(Some(height));
        }
        Ok(self
            .trees()
            .checkpoints
            .get(chain.as_bytes())?
            .and_then(|v| {
                let bytes: [u8; 8] = v.as_ref().try_into().ok()?;
                Some(u64::from_be_bytes(bytes))
            }))
    }

    /// Records that every event of `chain` up to `height` was handled (lifecycle records written).
    pub fn set_checkpoint(&self, chain: &str, height: u64) -> Result<(), StoreError> {
        // Through the writer, after the waiting writes, so an older waiting checkpoint never lands after it.
        let mut batch = PacketBatch::new();
        batch.set_checkpoint(chain, height);
        self.write_batch(&batch)
    }

    /// Moves a failed packet to the dead-letter queue (its lifecycle record stays, in state `failed`).
    pub fn put_dead_letter(&self, record: &PacketRecord) -> Result<(), StoreError> {
        let bytes = codec::encode_record(record);
        self.trees()
            .dead
            .insert(summary::packet_key(&record.key), bytes)?;
        Ok(())
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> Result<Vec<PacketRecord>, StoreError> {
        self.trees()
            .dead
            .iter()
            .map(|item| {
                let (k, v) = item?;
                codec::decode_record(&String::from_utf8_lossy(&k), &v)
            })
            .collect()
    }

    /// Takes a packet out of the dead-letter queue, to be relayed again.
    pub fn take_dead_letter(&self, key: &PacketKey) -> Result<Option<PacketRecord>, StoreError> {
        self.trees()
            .dead
            .remove(summary::packet_key(key))?
            .map(|v| codec::decode_record(&key.to_string(), &v))
            .transpose()
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.settle()?;
        self.trees().db.flush()?;
        Ok(())
    }
}

/// One packet's life as relayd saw it: current state plus every change, for restarts and forensics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketRecord {
    /// The packet's identity.
    pub key: PacketKey,
    /// The destination chain.
    pub dst_chain: String,
    /// The packet as sent (data included: a restart rebuilds `MsgRecvPacket` from it).
    pub packet: Packet,
    /// The correlation id of the work on it.
    pub correlation: CorrelationId,
    /// The current state (stored by name, `"acknowledged"`, as records written before it was typed).
    pub state: PacketState,
    /// Height of the send on the source.
    pub send_height: u64,
    /// The acknowledgement written on the destination, once seen.
    pub ack: Option<Vec<u8>>,
    /// Transaction hashes relayd produced for it.
    pub tx_hashes: Vec<String>,
    /// Delivery attempts.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
    /// Last change, ms since the epoch.
    pub updated_ms: u64,
    /// Every state change in order.
    pub history: Vec<Transition>,
    /// Why the packet is not relayed, when its state is `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<relayd_messages::SkipReason>,
}

/// One state change of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state entered.
    pub state: PacketState,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The transaction that caused it, if any.
    pub tx_hash: Option<String>,
    /// The error, for failures and retries.
    pub error: Option<String>,
}

impl PacketRecord {
    /// Whether the packet is done (acknowledged, timed out or failed).
    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }
}

/// Milliseconds since the epoch, for records.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, ns since the epoch (0 if the clock is before it).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
