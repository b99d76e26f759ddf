//! The devnet's application state machine: a Cosmos-SDK-like chain (auth, bank, ICS-20) whose IBC core is
//! ibc-rs, so every IBC message relayd sends is judged by real IBC handlers.
//!
//! State lives in versioned Jellyfish Merkle trees ([`store`]): the IBC store (ibc-testkit's `MockIbcStore`),
//! `bank` and `acc`. Their roots are committed into a "multistore", another such tree, under keys `ibc` (the
//! commitment prefix), `bank` and `acc`; the multistore root is the app hash.
//!
//! Heights follow CometBFT: block H executes transactions and `commit` returns the app hash that header H+1
//! carries. Each store's version `Stable(H+1)` is the state after block H (`Stable(1)` is genesis).

mod ante;
mod auth;
mod bank;
mod events;
mod exec;
mod ibc_codes;
pub mod ping;
mod query;
pub mod store;
mod transfer;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use basecoin_store::context::{ProvableStore, Store};
use basecoin_store::types::Height as StoreHeight;
use ibc::clients::tendermint::types::ConsensusState as TmConsensusState;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc::core::host::types::identifiers::ChainId;
use ibc_testkit::testapp::ibc::clients::AnyConsensusState;
use ibc_testkit::testapp::ibc::core::types::MockIbcStore;
use tendermint::abci::{response, types::ExecTxResult, Event};

pub use ante::{
    GAS_PER_MSG_BYTE, GAS_PER_SIGNATURE, GAS_PER_TX_BYTE, GAS_PER_WRITE, GAS_PER_WRITTEN_BYTE,
};
pub use store::JournaledStore;
pub use transfer::{bank_denom, escrow_address};

use crate::genesis::Genesis;

/// The IBC store key in the multistore, and so the chain's commitment prefix.
pub const IBC_STORE_KEY: &str = "ibc";
/// The bank store key in the multistore.
pub const BANK_STORE_KEY: &str = "bank";
/// The auth store key in the multistore.
pub const ACC_STORE_KEY: &str = "acc";
/// How many committed versions of each store are kept for historical queries and proofs.
pub const STORE_VERSIONS_RETAINED: u64 = 500;
/// How many of its own consensus states the chain keeps for connection handshake checks.
pub const HOST_CONSENSUS_STATES_RETAINED: u64 = 100_000;

/// Errors building the app.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The chain id has no valid revision.
    #[error("chain id {chain_id}: {reason}")]
    ChainId {
        /// The chain id.
        chain_id: String,
        /// Why it was refused.
        reason: String,
    },
    /// A genesis account is unusable.
    #[error("genesis account {address}: {reason}")]
    GenesisAccount {
        /// The address.
        address: String,
        /// Why it was refused.
        reason: String,
    },
}

type IbcStore = MockIbcStore<JournaledStore>;

/// Per-account state of the mempool's check-state: sequence after admitted txs, fees they will spend.
#[derive(Debug, Default, Clone)]
struct CheckAccount {
    sequence: u64,
    fees: HashMap<String, u128>,
}

struct Core {
    chain_id: String,
    min_gas_price: f64,
    unbonding_period: Duration,
    ibc: IbcStore,
    router: transfer::AppRouter,
    bank: bank::Bank,
    bank_store: store::Shared,
    acc_store: store::Shared,
    multi: JournaledStore,
    /// The block being executed (between begin_block and commit) or, between blocks, the last committed one.
    block_height: u64,
    last_committed: u64,
    last_app_hash: Vec<u8>,
    check: HashMap<String, CheckAccount>,
    /// Whether `update_client` events carry the installed header (ibc-go before v9) or not (v9 and later).
    update_client_header: bool,
}

/// A Cosmos-SDK-like application running ibc-rs; see the module docs.
///
/// All methods take an internal lock, so the app can be shared; queries see the latest committed state as long
/// as they are not interleaved between `begin_block` and `commit` (the IBC listing queries read the pending
/// state, which equals the committed one between blocks).
pub struct App {
    core: Mutex<Core>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.lock();
        f.debug_struct("App")
            .field("chain_id", &c.chain_id)
            .field("last_committed", &c.last_committed)
            .finish_non_exhaustive()
    }
}

fn multi_version(height: u64) -> StoreHeight {
    StoreHeight::Stable(height)
}

impl App {
    /// Builds the genesis state: accounts in order (numbers 0, 1, ...), their balances, an empty IBC store.
    pub fn new(genesis: &Genesis) -> Result<Self, AppError> {
        let chain_id = genesis.chain_id.to_string();
        let revision = ChainId::new(&chain_id)
            .map_err(|e| AppError::ChainId {
                chain_id: chain_id.clone(),
                reason: e.to_string(),
            })?
            .revision_number();
        let mut ibc = MockIbcStore::new(revision, JournaledStore::default());
        let bank_store = store::new_shared();
        let acc_store = store::new_shared();
        let accounts = auth::Accounts::new(acc_store.clone());
        let bank = bank::Bank::new(bank_store.clone(), accounts.clone());
        for acc in &genesis.accounts {
            auth::validate_address(&acc.address).map_err(|reason| AppError::GenesisAccount {
                address: acc.address.clone(),
                reason,
            })?;
            accounts.ensure(&acc.address);
            for (denom, amount) in &acc.coins {
                bank.mint(&acc.address, denom, *amount)
                    .map_err(|e| AppError::GenesisAccount {
                        address: acc.address.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        // Module accounts exist from genesis in the SDK; the fee collector is the one this app uses.
        accounts.ensure(&exec::fee_collector());
        let router = transfer::AppRouter {
            transfer: transfer::TransferModule::new(bank.clone()),
            ping: ping::PingModule,
        };
        let mut core = Core {
            chain_id,
            min_gas_price: genesis.min_gas_price,
            unbonding_period: genesis.unbonding_period,
            ibc: {
                // Genesis is version 1 of every store, so block 1 runs at IBC store height 1.
                let _ = ibc.store.commit();
                ibc
            },
            router,
            bank,
            bank_store,
            acc_store,
            multi: JournaledStore::default(),
            block_height: 0,
            last_committed: 0,
            last_app_hash: Vec::new(),
            check: HashMap::new(),
            update_client_header: false,
        };
        let mut bs = core.bank_store.clone();
        let _ = bs.commit();
        let mut accs = core.acc_store.clone();
        let _ = accs.commit();
        core.commit_multistore();
        Ok(Self {
            core: Mutex::new(core),
        })
    }

    /// Whether `update_client` events carry the installed header in a `header` attribute, as ibc-rs and ibc-go
    /// up to v8 write them (`true`), or leave it out as ibc-go v9 and later do (`false`, the default).
    pub fn set_update_client_header(&self, on: bool) {
        self.lock().update_client_header = on;
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A poisoned lock means a panic inside the app; the state is still consistent at store level and the
        // process is about to report the panic anyway.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mempool admission: decode, signature, sequence (against a check-state that increments per admitted tx so
    /// several txs of one account fit in one block), fee. Does not execute messages.
    pub fn check_tx(&mut self, tx: &[u8]) -> response::CheckTx {
        let out = self.lock().run_tx(tx, exec::Mode::Check);
        let mut r = response::CheckTx {
            gas_wanted: clamp_i64(out.gas_wanted),
            gas_used: clamp_i64(out.gas_used),
            events: out.events,
            ..Default::default()
        };
        if let Err(e) = out.result {
            r.code = e.code.into();
            r.codespace = e.codespace;
            r.log = e.log;
        }
        r
    }

    /// Starts executing block `header.height`: records the host consensus state for this height (root =
    /// header.app_hash, timestamp = header.time, next validators hash from the header).
    pub fn begin_block(&mut self, header: &tendermint::block::Header) {
        self.lock().begin_block(header);
    }

    /// Executes a transaction in the current block.
    pub fn deliver_tx(&mut self, tx: &[u8]) -> ExecTxResult {
        let out = self.lock().run_tx(tx, exec::Mode::Deliver);
        let mut r = ExecTxResult {
            gas_wanted: clamp_i64(out.gas_wanted),
            gas_used: clamp_i64(out.gas_used),
            events: out.events,
            data: out.data.into(),
            ..Default::default()
        };
        if let Err(e) = out.result {
            r.code = e.code.into();
            r.codespace = e.codespace;
            r.log = e.log;
        }
        r
    }

    /// Ends the block, commits, returns the app hash of the state after this block (goes into header H+1).
    pub fn commit(&mut self) -> Vec<u8> {
        self.lock().commit()
    }

    /// abci_query. `height` 0 = latest committed.
    pub fn query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> response::Query {
        self.lock().query(path, data, height, prove)
    }

    /// The last committed block height (0 before block 1).
    pub fn last_committed_height(&self) -> u64 {
        self.lock().last_committed
    }

    /// The app hash after the last committed block (the genesis app hash before block 1).
    pub fn last_app_hash(&self) -> Vec<u8> {
        self.lock().last_app_hash.clone()
    }

    /// Committed balance.
    pub fn balance(&self, address: &str, denom: &str) -> u128 {
        let c = self.lock();
        c.bank
            .balance_at(multi_version(c.last_committed + 1), address, denom)
    }

    /// (account_number, sequence) of an existing account, committed state.
    pub fn account(&self, address: &str) -> Option<(u64, u64)> {
        let c = self.lock();
        c.bank
            .accounts()
            .get_at(multi_version(c.last_committed + 1), address)
            .map(|a| (a.account_number, a.sequence))
    }

    /// Gas the tx would use, for cosmos.tx Simulate: runs the messages on the current state and rolls
    /// everything back; the signature is not checked (as the SDK skips it when simulating) and the sequence is
    /// compared with the mempool's check-state.
    pub fn simulate(&self, tx: &[u8]) -> Result<(u64, Vec<Event>), String> {
        let out = self.lock().run_tx(tx, exec::Mode::Simulate);
        match out.result {
            Ok(()) => Ok((out.gas_used, out.events)),
            Err(e) => Err(e.log),
        }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Core {
    fn begin_block(&mut self, header: &tendermint::block::Header) {
        let h = header.height.value();
        if h != self.last_committed + 1 {
            tracing::error!(
                "begin_block({h}) after committing {}: heights must follow each other",
                self.last_committed
            );
        }
        self.block_height = h;
        let cs = TmConsensusState::new(
            CommitmentRoot::from_bytes(header.app_hash.as_bytes()),
            header.time,
            header.next_validators_hash,
        );
        // Inserted directly rather than via MockIbcStore::begin_block, which asserts on the height; the
        // commitment proof for `h` was stored when block h-1 committed.
        self.ibc
            .host_consensus_states
            .lock()
            .insert(h, AnyConsensusState::Tendermint(cs.into()));
    }

    fn commit(&mut self) -> Vec<u8> {
        self.ibc.events.lock().clear();
        self.ibc.logs.lock().clear();
        let mut bs = self.bank_store.clone();
        let mut accs = self.acc_store.clone();
        for (name, r) in [
            (IBC_STORE_KEY, self.ibc.store.commit()),
            (BANK_STORE_KEY, bs.commit()),
            (ACC_STORE_KEY, accs.commit()),
        ] {
            // Only a lost tree node fails a commit: a bug, reported rather than silently diverging.
            if let Err(e) = r {
                tracing::error!(
                    "committing the {name} store at block {}: {e}",
                    self.block_height
                );
            }
        }
        self.last_committed = self.block_height;
        self.commit_multistore();
        self.prune();
        self.check.clear();
        self.last_app_hash.clone()
    }

    /// Writes the substore roots into the multistore, commits it and stores the proof of the IBC root for the
    /// next block (`MockIbcStore::get_proof` pairs it with IBC store version `last_committed + 1`).
    fn commit_multistore(&mut self) {
        let _ = self
            .multi
            .set(IBC_STORE_KEY.to_owned().into(), self.ibc.store.root_hash());
        let _ = self.multi.set(
            BANK_STORE_KEY.to_owned().into(),
            self.bank_store.root_hash(),
        );
        let _ = self
            .multi
            .set(ACC_STORE_KEY.to_owned().into(), self.acc_store.root_hash());
        if let Err(e) = self.multi.commit() {
            tracing::error!(
                "committing the multistore at block {}: {e}",
                self.last_committed
            );
        }
        self.last_app_hash = self.multi.root_hash();
        let next = self.last_committed + 1;
        if let Some(proof) = self
            .multi
            .get_proof(multi_version(next), &IBC_STORE_KEY.to_owned().into())
        {
            self.ibc.ibc_commiment_proofs.lock().insert(next, proof);
        }
    }

    /// The oldest store version still held (`Stable(v)` = state after block v-1).
    fn oldest_version(&self) -> u64 {
        (self.last_committed + 1)
            .saturating_sub(STORE_VERSIONS_RETAINED - 1)
            .max(1)
    }

    fn prune(&mut self) {
        let latest = self.last_committed + 1;
        if latest > STORE_VERSIONS_RETAINED {
            // Store::prune(n) drops versions 1..=n.
            let drop_through = latest - STORE_VERSIONS_RETAINED;
            let _ = self.ibc.store.prune(drop_through);
            let mut bs = self.bank_store.clone();
            let _ = bs.prune(drop_through);
            let mut accs = self.acc_store.clone();
            let _ = accs.prune(drop_through);
            let _ = self.multi.prune(drop_through);
            self.ibc
                .ibc_commiment_proofs
                .lock()
                .retain(|h, _| *h > drop_through);
        }
        if latest > HOST_CONSENSUS_STATES_RETAINED {
            let cutoff = latest - HOST_CONSENSUS_STATES_RETAINED;
            self.ibc
                .host_consensus_states
                .lock()
                .retain(|h, _| *h > cutoff);
        }
    }
}

#[cfg(test)]
mod tests;

impl crate::node::Application for App {
    fn check_tx(&mut self, tx: &[u8]) -> response::CheckTx {
        App::check_tx(self, tx)
    }
    fn begin_block(&mut self, header: &tendermint::block::Header) {
        App::begin_block(self, header)
    }
    fn deliver_tx(&mut self, tx: &[u8]) -> ExecTxResult {
        App::deliver_tx(self, tx)
    }
    fn commit(&mut self) -> Vec<u8> {
        App::commit(self)
    }
    fn query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> response::Query {
        App::query(self, path, data, height, prove)
    }
    fn last_app_hash(&self) -> Vec<u8> {
        App::last_app_hash(self)
    }
}
