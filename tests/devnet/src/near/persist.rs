//! The NEAR devnet kept under its home, so a restarted process is the same chain: `data/chain.json` holds what
//! the genesis is built from (chain id, producers, accounts, epoch length, seed, genesis time) and
//! `data/blocks.jsonl` one line per produced block (header time, borsh transactions, block hash), written and
//! synced before the block is shown. On start the genesis is built again and every block produced again from its
//! transactions at its time; each must come out with the hash it was recorded with. The files, the torn-tail rule
//! and the errors are the Cosmos chain's ([`crate::persist`]).

use std::path::Path;

use base64::Engine;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use serde::{Deserialize, Serialize};

use super::chain::NearChain;
use super::genesis::NearGenesisOptions;
use crate::persist::{self, BlockRecord, ChainOptions, PersistError, Stored};

/// What the NEAR devnet's genesis is built from; stored once per home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearStoredOptions {
    /// The chain id.
    pub chain_id: String,
    /// Block producers.
    pub validators: usize,
    /// Funded accounts besides the relayer.
    pub accounts: usize,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// The key seed (a random one is chosen and stored when none was given).
    pub seed: String,
    /// The genesis block's time, in nanoseconds since the Unix epoch.
    pub genesis_time_ns: u64,
    /// Full-access keys of the relayer account (homes stored before this option have one).
    #[serde(default = "one")]
    pub relayer_keys: usize,
}

fn one() -> usize {
    1
}

impl ChainOptions for NearStoredOptions {
    fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

impl NearStoredOptions {
    /// The options to store for a new chain from `opts`, its genesis at `genesis_time_ns`.
    pub fn fresh(opts: &NearGenesisOptions, genesis_time_ns: u64) -> Self {
        Self {
            chain_id: opts.chain_id.clone(),
            validators: opts.validators,
            accounts: opts.accounts,
            epoch_length: opts.epoch_length,
            seed: opts
                .seed
                .clone()
                .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>())),
            genesis_time_ns,
            relayer_keys: opts.relayer_keys,
        }
    }

    /// The genesis options these stand for.
    pub fn genesis_options(&self) -> NearGenesisOptions {
        NearGenesisOptions {
            chain_id: self.chain_id.clone(),
            validators: self.validators,
            accounts: self.accounts,
            epoch_length: self.epoch_length,
            seed: Some(self.seed.clone()),
            relayer_keys: self.relayer_keys,
        }
    }
}

/// One produced block as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearLoggedBlock {
    /// Its height.
    pub height: u64,
    /// Its header time, in nanoseconds.
    pub timestamp_ns: u64,
    /// Its transactions, in chunk order.
    pub txs: Vec<SignedTransaction>,
    /// Its block hash, checked on replay.
    pub hash: CryptoHash,
}

#[derive(Serialize, Deserialize)]
struct Line {
    height: u64,
    time_ns: u64,
    hash: String,
    txs: Vec<String>,
}

impl BlockRecord for NearLoggedBlock {
    fn height(&self) -> u64 {
        self.height
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let txs = self
            .txs
            .iter()
            .map(|tx| borsh::to_vec(tx).map(|bytes| b64.encode(bytes)))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let line = Line {
            height: self.height,
            time_ns: self.timestamp_ns,
            hash: self.hash.to_string(),
            txs,
        };
        serde_json::to_vec(&line).map_err(|e| e.to_string())
    }

    fn decode(text: &str) -> Result<Self, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let txs = line
            .txs
            .iter()
            .map(|tx| {
                let bytes = b64.decode(tx).map_err(|e| e.to_string())?;
                borsh::from_slice::<SignedTransaction>(&bytes).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            height: line.height,
            timestamp_ns: line.time_ns,
            hash: line.hash.parse().map_err(|e| format!("block hash: {e}"))?,
            txs,
        })
    }
}

/// The NEAR chain stored under `home/data`, or a new one made from `opts` with its genesis at `genesis_time_ns`
/// when there is none; a stored chain keeps its own options, and another chain id there is an error.
pub fn open(
    home: &Path,
    opts: &NearGenesisOptions,
    genesis_time_ns: u64,
) -> Result<Stored<NearStoredOptions, NearLoggedBlock>, PersistError> {
    persist::open_chain(home, NearStoredOptions::fresh(opts, genesis_time_ns))
}

/// Produces `blocks` again on `chain` (at its genesis), checking each against its recorded hash.
pub fn replay(chain: &mut NearChain, blocks: &[NearLoggedBlock]) -> Result<(), PersistError> {
    for block in blocks {
        let due = chain.head().height() + 1;
        if block.height != due {
            return Err(PersistError::Diverged {
                height: due,
                recorded: format!("a block at height {}", block.height),
                got: format!("height {due}"),
            });
        }
        chain
            .replay_block(block.timestamp_ns, block.txs.clone(), &block.hash)
            .map_err(|got| PersistError::Diverged {
                height: block.height,
                recorded: block.hash.to_string(),
                got: got.to_string(),
            })?;
    }
    Ok(())
}

/// The record of a block about to be produced: its sealed header and transactions.
pub fn record(
    header: &near_primitives::block_header::BlockHeader,
    txs: &[SignedTransaction],
) -> NearLoggedBlock {
    NearLoggedBlock {
        height: header.height(),
        timestamp_ns: header.raw_timestamp(),
        txs: txs.to_vec(),
        hash: *header.hash(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::near::genesis::NearGenesis;
    use near_primitives::transaction::{Action, Transaction, TransactionV0, TransferAction};
    use near_primitives::types::Balance;

    fn options() -> NearGenesisOptions {
        NearGenesisOptions {
            seed: Some("persist".into()),
            epoch_length: 5,
            ..NearGenesisOptions::default()
        }
    }

    /// A chain of `blocks` blocks with a transfer in every other one, logged into `home`.
    fn logged_chain(home: &Path, blocks: u64) -> NearChain {
        let mut stored = open(home, &options(), 1_700_000_000_000_000_000).unwrap();
        let genesis = NearGenesis::build(&stored.options.genesis_options()).unwrap();
        let mut chain = NearChain::new(genesis.clone(), stored.options.genesis_time_ns);
        let user = &genesis.accounts[0];
        for h in 1..=blocks {
            if h % 2 == 0 {
                let tx = Transaction::V0(TransactionV0 {
                    signer_id: user.account_id.clone(),
                    public_key: user.public_key(),
                    nonce: h,
                    receiver_id: genesis.relayer.account_id.clone(),
                    block_hash: chain.head().hash(),
                    actions: vec![Action::Transfer(TransferAction {
                        deposit: Balance::from_yoctonear(u128::from(h)),
                    })],
                });
                let (hash, _) = tx.get_hash_and_size();
                let tx = SignedTransaction::new(user.secret_key.sign(hash.as_ref()), tx);
                chain.submit(tx).unwrap();
            }
            chain
                .produce_block_with(1_700_000_000_000_000_000 + h * 1_000, |header, txs| {
                    stored.log.append(&record(header, txs))
                })
                .unwrap();
        }
        chain
    }

    #[test]
    fn a_logged_chain_is_produced_again_with_the_same_hashes_and_state() {
        let home = tempfile::tempdir().unwrap();
        let first = logged_chain(home.path(), 12);
        let stored = open(home.path(), &options(), 42).unwrap();
        assert_eq!(stored.options.genesis_time_ns, 1_700_000_000_000_000_000);
        assert_eq!(stored.blocks.len(), 12);
        assert_eq!(stored.blocks[1].txs.len(), 1);
        let genesis = NearGenesis::build(&stored.options.genesis_options()).unwrap();
        let mut again = NearChain::new(genesis, stored.options.genesis_time_ns);
        replay(&mut again, &stored.blocks).unwrap();
        assert_eq!(again.head().hash(), first.head().hash());
        assert_eq!(again.head().post_state_root, first.head().post_state_root);
        assert_eq!(again.total_supply(), first.total_supply());
    }

    #[test]
    fn a_record_that_does_not_replay_is_refused() {
        let home = tempfile::tempdir().unwrap();
        logged_chain(home.path(), 4);
        let mut stored = open(home.path(), &options(), 0).unwrap();
        // Block 2 without its transaction is another block.
        stored.blocks[1].txs.clear();
        let genesis = NearGenesis::build(&stored.options.genesis_options()).unwrap();
        let mut again = NearChain::new(genesis, stored.options.genesis_time_ns);
        let err = replay(&mut again, &stored.blocks).unwrap_err();
        assert!(
            matches!(err, PersistError::Diverged { height: 2, .. }),
            "{err}"
        );
        assert_eq!(again.head().height(), 1);
        // Another chain id on this home is refused.
        let other = NearGenesisOptions {
            chain_id: "near-other".into(),
            ..options()
        };
        assert!(matches!(
            open(home.path(), &other, 0),
            Err(PersistError::OtherChain { .. })
        ));
    }
}
