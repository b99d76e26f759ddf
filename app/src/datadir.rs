//! The service's hold on its data directory: an exclusive lock on `LOCK`, then the sled state database.
//! Taking the lock first lets a second relayd (or a `light init` while the service runs) fail with a clear
//! message instead of a storage error.

use std::path::{Path, PathBuf};

use relayd_actors::store::{StateStore, StoreError};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The folder or its lock file cannot be created.
    #[error("cannot create data dir {path}: {source}")]
    Create {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the lock.
    #[error("data dir {path} is in use by another relayd process")]
    Locked {
        /// The folder.
        path: PathBuf,
    },
    /// The database cannot be opened.
    #[error("cannot open the state database in {path}: {source}")]
    Db {
        /// The database folder.
        path: PathBuf,
        /// The storage error.
        source: StoreError,
    },
}

/// An open, locked data directory. The lock is released when this is dropped.
pub struct DataDir {
    _lock: std::fs::File,
    /// The state database.
    pub store: StateStore,
}

impl DataDir {
    /// Locks `dir` (creating it) and opens its state database.
    pub fn open(dir: &Path) -> Result<Self, DataDirError> {
        let create_err = |source| DataDirError::Create {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(create_err)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(create_err)?;
        lock.try_lock().map_err(|err| match err {
            std::fs::TryLockError::WouldBlock => DataDirError::Locked {
                path: dir.to_owned(),
            },
            std::fs::TryLockError::Error(source) => create_err(source),
        })?;
        let db_path = dir.join("state");
        let store = StateStore::open(&db_path).map_err(|source| DataDirError::Db {
            path: db_path.clone(),
            source,
        })?;
        Ok(Self { _lock: lock, store })
    }
}
