//! relayd's persistent state in sled: what must survive a restart so relaying resumes where it stopped.
//! Today: each chain's trusted light-client block.

use std::path::Path;

use tendermint_light_client_verifier::types::LightBlock;

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

/// Typed access to the state database.
#[derive(Clone)]
pub struct StateStore {
    light: sled::Tree,
    db: sled::Db,
}

impl StateStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(path).open()?;
        Self::from_db(db)
    }

    /// Wraps an open database.
    pub fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            light: db.open_tree("light_client")?,
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

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}
