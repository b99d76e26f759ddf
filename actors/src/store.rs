//! relayd's persistent state in sled: what must survive a restart so relaying resumes where it stopped.
//! Each chain's trusted light-client block (a CometBFT light block, or a NEAR light-client head) and checkpoint
//! height, the packet lifecycle index and the
//! dead-letter queue.

use std::path::Path;

use relayd_messages::{CorrelationId, Packet, PacketKey};
use serde::{Deserialize, Serialize};
use tendermint_light_client_verifier::types::LightBlock;

use crate::chain::near::light_client::StoredNearHead;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("state database: {0}")]
    Db(#[from] sled::Error),
    /// A stored record does not decode; the database was written by something else or is damaged.
    #[error("state database: record {key} is unreadable: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoding error.
        reason: String,
    },
}

/// How long [`StateStore::open`] waits for another handle in this process to release the database.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often it tries meanwhile.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Typed access to the state database.
#[derive(Clone)]
pub struct StateStore {
    light: sled::Tree,
    near_light: sled::Tree,
    checkpoints: sled::Tree,
    packets: sled::Tree,
    dead: sled::Tree,
    db: sled::Db,
}

impl StateStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A relay stopping in this process (an embedding host restarting relayd) releases the database's file
        // lock only when its last actor is gone; a start right after it waits for that rather than failing.
        let mut waited = std::time::Duration::ZERO;
        loop {
            match sled::Config::new().path(path).open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && waited < LOCK_WAIT =>
                {
                    std::thread::sleep(LOCK_RETRY);
                    waited += LOCK_RETRY;
                }
                other => return Self::from_db(other?),
            }
        }
    }

    /// Wraps an open database.
    pub fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            light: db.open_tree("light_client")?,
            near_light: db.open_tree("near_light_client")?,
            checkpoints: db.open_tree("checkpoints")?,
            packets: db.open_tree("packets")?,
            dead: db.open_tree("dead_letters")?,
            db,
        })
    }

    /// Records `block` as the chain's trusted state, replacing the previous one.
    pub fn save_trusted(&self, chain: &str, block: &LightBlock) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(block).map_err(|e| StoreError::Corrupt {
            key: chain.to_owned(),
            reason: e.to_string(),
        })?;
        self.light.insert(chain.as_bytes(), bytes)?;
        self.light.flush()?;
        Ok(())
    }

    /// The chain's trusted light-client block, if one was set.
    pub fn trusted(&self, chain: &str) -> Result<Option<LightBlock>, StoreError> {
        let Some(bytes) = self.light.get(chain.as_bytes())? else {
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
        self.near_light.insert(chain.as_bytes(), bytes)?;
        self.near_light.flush()?;
        Ok(())
    }

    /// A NEAR chain's trusted light-client head, if one was recorded.
    pub fn trusted_near(&self, chain: &str) -> Result<Option<StoredNearHead>, StoreError> {
        self.near_light
            .get(chain.as_bytes())?
            .map(|v| decode(&format!("near_light_client/{chain}"), &v))
            .transpose()
    }

    /// The last height of `chain` whose events were fully handled; relaying resumes after it.
    pub fn checkpoint(&self, chain: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.checkpoints.get(chain.as_bytes())?.and_then(|v| {
            let bytes: [u8; 8] = v.as_ref().try_into().ok()?;
            Some(u64::from_be_bytes(bytes))
        }))
    }

    /// Records that every event of `chain` up to `height` was handled (lifecycle records written).
    pub fn set_checkpoint(&self, chain: &str, height: u64) -> Result<(), StoreError> {
        self.checkpoints
            .insert(chain.as_bytes(), &height.to_be_bytes())?;
        Ok(())
    }

    /// Writes a packet's lifecycle record.
    pub fn put_packet(&self, record: &PacketRecord) -> Result<(), StoreError> {
        let key = packet_key(&record.key);
        let bytes = encode(&record.key.to_string(), record)?;
        self.packets.insert(key, bytes)?;
        Ok(())
    }

    /// A packet's lifecycle record.
    pub fn packet(&self, key: &PacketKey) -> Result<Option<PacketRecord>, StoreError> {
        self.packets
            .get(packet_key(key))?
            .map(|v| decode(&key.to_string(), &v))
            .transpose()
    }

    /// Every lifecycle record, in key order (chain, port, channel, sequence).
    pub fn packets(&self) -> impl Iterator<Item = Result<PacketRecord, StoreError>> + '_ {
        self.packets.iter().map(|item| {
            let (k, v) = item?;
            decode(&String::from_utf8_lossy(&k), &v)
        })
    }

    /// Records whose packets are not finished: what a restart resumes.
    pub fn unfinished_packets(&self) -> Result<Vec<PacketRecord>, StoreError> {
        self.packets()
            .filter(|r| r.as_ref().map_or(true, |r| !r.is_final()))
            .collect()
    }

    /// Moves a failed packet to the dead-letter queue (its lifecycle record stays, in state `failed`).
    pub fn put_dead_letter(&self, record: &PacketRecord) -> Result<(), StoreError> {
        let bytes = encode(&record.key.to_string(), record)?;
        self.dead.insert(packet_key(&record.key), bytes)?;
        Ok(())
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> Result<Vec<PacketRecord>, StoreError> {
        self.dead
            .iter()
            .map(|item| {
                let (k, v) = item?;
                decode(&String::from_utf8_lossy(&k), &v)
            })
            .collect()
    }

    /// Takes a packet out of the dead-letter queue, to be relayed again.
    pub fn take_dead_letter(&self, key: &PacketKey) -> Result<Option<PacketRecord>, StoreError> {
        self.dead
            .remove(packet_key(key))?
            .map(|v| decode(&key.to_string(), &v))
            .transpose()
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
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
    /// The current state (`detected`, `proof_generated`, `submitted`, `confirmed`, `acknowledged`, `timed_out`,
    /// `failed`).
    pub state: String,
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
}

/// One state change of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state entered.
    pub state: String,
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
        matches!(self.state.as_str(), "acknowledged" | "timed_out" | "failed")
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

/// Keys sort by chain, port, channel, then numerically by sequence.
fn packet_key(key: &PacketKey) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [
        key.src_chain.as_str(),
        key.src_port.as_str(),
        key.src_channel.as_str(),
    ] {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out.extend_from_slice(&key.sequence.0.to_be_bytes());
    out
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
mod tests {
    use super::StateStore;

    #[test]
    fn an_open_waits_for_a_handle_being_released_in_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let first = StateStore::open(&path).unwrap();
        first.set_checkpoint("ibc-0", 7).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            first.flush().unwrap();
            drop(first);
        });
        let second = StateStore::open(&path).expect("opened once the first handle is gone");
        release.join().unwrap();
        assert_eq!(second.checkpoint("ibc-0").unwrap(), Some(7));
    }
}
