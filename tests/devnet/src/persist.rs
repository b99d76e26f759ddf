//! A chain that outlives its process: the options that made its genesis and a log of every decided block
//! (time and transactions), kept under `<home>/data/`. Started again on the same home, the chain replays the log
//! through the application, checks that each replayed block has the id it had, and goes on as the same chain —
//! the way a CometBFT node restarts from its block store, with re-execution standing in for an on-disk app state.
//!
//! A block is written and synced before the node shows it to anyone, so a kill never loses a block a client
//! saw. A kill in the middle of a write leaves a torn last line, which is dropped on the next start (that block
//! was never shown). The mempool is not kept, as on CometBFT: transactions that were waiting are gone.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tendermint::{Hash, Time};

/// Why the stored chain could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file does not hold what this devnet writes.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The home holds another chain than the one asked for.
    #[error("{path} holds chain {stored}, not {asked}; use another --home")]
    OtherChain {
        /// The options file.
        path: PathBuf,
        /// The chain id stored there.
        stored: String,
        /// The chain id on the command line.
        asked: String,
    },
    /// Re-executing a stored block gave another block: the application is not the one that wrote the log.
    #[error("replaying block {height} gave id {got}, the log recorded {recorded}")]
    Diverged {
        /// The height.
        height: u64,
        /// The id recorded when the block was first decided.
        recorded: String,
        /// The id replaying produced.
        got: String,
    },
}

/// What a chain stores once, as `data/chain.json`: whatever its genesis is built from.
pub trait ChainOptions: Serialize + DeserializeOwned {
    /// The chain id, which a home keeps for good.
    fn chain_id(&self) -> &str;
}

/// One block as a chain's log keeps it, one line of `data/blocks.jsonl` each.
pub trait BlockRecord: Sized {
    /// The block's height; the log holds heights 1, 2, ... without gaps.
    fn height(&self) -> u64;
    /// The record as one line of JSON, without the newline.
    fn encode(&self) -> Result<Vec<u8>, String>;
    /// A record back from its line, or why the line is not one.
    fn decode(line: &str) -> Result<Self, String>;
}

/// What decides a chain's genesis and its blocks besides their transactions; stored once, as `data/chain.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOptions {
    /// The chain id.
    pub chain_id: String,
    /// Validators signing at genesis.
    pub validators: usize,
    /// Funded accounts besides `relayer`.
    pub accounts: usize,
    /// The genesis seed (a random one is chosen and stored when none was given).
    pub seed: String,
    /// The validator rotation period, if any.
    pub rotate_validators_every: Option<u64>,
    /// Whether `update_client` events carry the header.
    pub update_client_header: bool,
}

impl ChainOptions for StoredOptions {
    fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

/// One decided block as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedBlock {
    /// Its height.
    pub height: u64,
    /// Its header time.
    pub time: Time,
    /// Its transactions, in block order.
    pub txs: Vec<Vec<u8>>,
    /// Its block id hash, checked on replay.
    pub id: Hash,
}

#[derive(Serialize, Deserialize)]
struct Line {
    height: u64,
    time: String,
    id: String,
    txs: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> PersistError {
    PersistError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl BlockRecord for LoggedBlock {
    fn height(&self) -> u64 {
        self.height
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = Line {
            height: self.height,
            time: self.time.to_rfc3339(),
            id: self.id.to_string(),
            txs: self.txs.iter().map(|tx| b64.encode(tx)).collect(),
        };
        serde_json::to_vec(&line).map_err(|e| e.to_string())
    }

    fn decode(text: &str) -> Result<Self, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(Self {
            height: line.height,
            time: line
                .time
                .parse()
                .map_err(|e: tendermint::Error| e.to_string())?,
            id: line
                .id
                .parse()
                .map_err(|e: tendermint::Error| e.to_string())?,
            txs: line
                .txs
                .iter()
                .map(|tx| b64.decode(tx).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The open block log of a persisted chain; appends are synced before they return.
#[derive(Debug)]
pub struct BlockLog<R = LoggedBlock> {
    path: PathBuf,
    file: File,
    record: PhantomData<fn(&R)>,
}

/// A persisted chain read back: its options and the blocks to replay (empty for a new chain).
#[derive(Debug)]
pub struct Stored<O = StoredOptions, R = LoggedBlock> {
    /// The options its genesis was built from.
    pub options: O,
    /// Its blocks, oldest first, heights 1, 2, ... without gaps.
    pub blocks: Vec<R>,
    /// The log, positioned to append the next block.
    pub log: BlockLog<R>,
}

/// Opens the Cosmos chain stored under `home/data`, or creates it from `fresh` when there is none.
pub fn open(home: &Path, fresh: StoredOptions) -> Result<Stored, PersistError> {
    open_chain(home, fresh)
}

/// Opens the chain stored under `home/data`, or creates it from `fresh` when there is none. A stored chain keeps
/// its own options; asking for another chain id there is an error.
pub fn open_chain<O: ChainOptions, R: BlockRecord>(
    home: &Path,
    fresh: O,
) -> Result<Stored<O, R>, PersistError> {
    let dir = home.join("data");
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let options_path = dir.join("chain.json");
    let options = if options_path.exists() {
        let bytes = fs::read(&options_path).map_err(io(&options_path))?;
        let stored: O = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(
                &options_path,
                format!("not the devnet's chain options: {e}"),
            )
        })?;
        if stored.chain_id() != fresh.chain_id() {
            return Err(PersistError::OtherChain {
                path: options_path,
                stored: stored.chain_id().to_owned(),
                asked: fresh.chain_id().to_owned(),
            });
        }
        stored
    } else {
        let bytes =
            serde_json::to_vec_pretty(&fresh).map_err(|e| corrupt(&options_path, e.to_string()))?;
        // Written whole then renamed, so a kill never leaves half an options file.
        let tmp = dir.join("chain.json.tmp");
        fs::write(&tmp, bytes).map_err(io(&tmp))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, &options_path).map_err(io(&options_path))?;
        fresh
    };
    let path = dir.join("blocks.jsonl");
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    let (blocks, good_len) = read_blocks(&path, &file)?;
    let len = file.metadata().map_err(io(&path))?.len();
    if good_len < len {
        // A torn last line: the block it held was never shown, so dropping it loses nothing.
        tracing::warn!(path = %path.display(), dropped_bytes = len - good_len, "dropping a torn last block record");
        file.set_len(good_len).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    file.seek(SeekFrom::End(0)).map_err(io(&path))?;
    Ok(Stored {
        options,
        blocks,
        log: BlockLog {
            path,
            file,
            record: PhantomData,
        },
    })
}

/// Reads every whole record; returns them and the length of the file they fill. Only the last line may be torn
/// (no newline, or not a record); a bad line before it is corruption.
fn read_blocks<R: BlockRecord>(path: &Path, file: &File) -> Result<(Vec<R>, u64), PersistError> {
    let mut reader = BufReader::new(file.try_clone().map_err(io(path))?);
    reader.seek(SeekFrom::Start(0)).map_err(io(path))?;
    let mut blocks: Vec<R> = Vec::new();
    let mut good_len = 0u64;
    let mut torn = false;
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(io(path))?;
        if read == 0 {
            break;
        }
        if torn {
            return Err(corrupt(
                path,
                format!(
                    "a bad record before the last, after height {}",
                    blocks.len()
                ),
            ));
        }
        let whole = line.ends_with('\n');
        match R::decode(line.trim_end()) {
            Ok(block) if whole => {
                let expected = blocks.len() as u64 + 1;
                if block.height() != expected {
                    return Err(corrupt(
                        path,
                        format!("height {} where {expected} was due", block.height()),
                    ));
                }
                blocks.push(block);
                good_len += read as u64;
            }
            _ => torn = true,
        }
    }
    Ok((blocks, good_len))
}

impl<R: BlockRecord> BlockLog<R> {
    /// Appends `block` and syncs it to disk.
    pub fn append(&mut self, block: &R) -> Result<(), PersistError> {
        let mut bytes = block.encode().map_err(|e| corrupt(&self.path, e))?;
        bytes.push(b'\n');
        self.file.write_all(&bytes).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(chain_id: &str) -> StoredOptions {
        StoredOptions {
            chain_id: chain_id.into(),
            validators: 2,
            accounts: 2,
            seed: "s".into(),
            rotate_validators_every: None,
            update_client_header: false,
        }
    }

    fn block(height: u64) -> LoggedBlock {
        LoggedBlock {
            height,
            time: Time::from_unix_timestamp(1_800_000_000 + height as i64, 7).unwrap(),
            txs: vec![vec![height as u8, 0, 255], Vec::new()],
            id: Hash::Sha256([height as u8; 32]),
        }
    }

    #[test]
    fn blocks_come_back_in_order_and_a_torn_tail_is_dropped() {
        let home = tempfile::tempdir().unwrap();
        let mut stored = open(home.path(), options("ibc-0")).unwrap();
        assert!(stored.blocks.is_empty());
        for h in 1..=3 {
            stored.log.append(&block(h)).unwrap();
        }
        drop(stored);
        // A kill in the middle of writing block 4.
        let path = home.path().join("data/blocks.jsonl");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&block(4).encode().unwrap()[..20]).unwrap();
        drop(file);

        let mut again = open(home.path(), options("ibc-0")).unwrap();
        assert_eq!(again.blocks, vec![block(1), block(2), block(3)]);
        again.log.append(&block(4)).unwrap();
        drop(again);
        let last = open(home.path(), options("ibc-0")).unwrap();
        assert_eq!(last.blocks.len(), 4);
        assert_eq!(last.blocks[3], block(4));
    }

    #[test]
    fn a_home_keeps_its_chain_and_refuses_corruption() {
        let home = tempfile::tempdir().unwrap();
        let mut first = options("ibc-0");
        first.seed = "kept".into();
        open(home.path(), first)
            .unwrap()
            .log
            .append(&block(1))
            .unwrap();
        // The stored options win over new ones for the same chain.
        assert_eq!(
            open(home.path(), options("ibc-0")).unwrap().options.seed,
            "kept"
        );
        assert!(matches!(
            open(home.path(), options("ibc-1")),
            Err(PersistError::OtherChain { .. })
        ));
        // A bad record followed by a good one is not a torn tail.
        let path = home.path().join("data/blocks.jsonl");
        let mut bytes = b"garbage\n".to_vec();
        bytes.extend(block(1).encode().unwrap());
        bytes.push(b'\n');
        fs::write(&path, bytes).unwrap();
        let err = open(home.path(), options("ibc-0")).unwrap_err();
        assert!(matches!(err, PersistError::Corrupt { .. }), "{err}");
        // A gap in heights is corruption too.
        let mut line = block(2).encode().unwrap();
        line.push(b'\n');
        fs::write(&path, line).unwrap();
        assert!(matches!(
            open(home.path(), options("ibc-0")),
            Err(PersistError::Corrupt { .. })
        ));
    }
}
