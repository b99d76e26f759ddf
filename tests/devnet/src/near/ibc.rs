//! The IBC contract of the NEAR devnet: ibc-rs behind the near-ibc contract interface (a payable `deliver` with
//! protobuf `Any` messages, and view methods), with its state written under raw ICS-24 path keys into the
//! contract's storage so it is committed by the NEAR state root.
//!
//! ibc-rs runs over ibc-testkit's `MockIbcStore` (as the Cosmos devnet does), so the ICS-07 Tendermint client
//! judges Cosmos headers and proofs; it sees the store through `DevnetHost`, which reports near-ibc's commitment
//! prefix instead of ibc-testkit's `mock`. Every path the handlers write during a block is copied into the contract's
//! storage (`TrieKey::ContractData`, key = the ICS-24 path string) when the block commits; view methods read that
//! storage at the block asked for, as a contract's view function reads its own state.
//!
//! Port `transfer` is a real ICS-20 (`near::transfer`) over token balances kept in the same store
//! (`near::ledger`), so they are committed and provable the same way; `ft_balance_of` and `ft_balances_of` read
//! them. Port `ping` is the Cosmos devnet's ping application (receives, acknowledges, and lets channels close).

use std::collections::BTreeMap;

use basecoin_store::context::Store;
use basecoin_store::types::Height as StoreHeight;
use ibc::apps::transfer::handler::send_transfer;
use ibc::apps::transfer::types::msgs::transfer::MsgTransfer;
use ibc::clients::tendermint::types::ConsensusState as TmConsensusState;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc::core::entrypoint::dispatch;
use ibc::core::handler::types::events::IbcEvent;
use ibc::core::handler::types::msgs::MsgEnvelope;
use ibc_proto::google::protobuf::Any;
use ibc_testkit::testapp::ibc::clients::AnyConsensusState;
use ibc_testkit::testapp::ibc::core::types::MockIbcStore;
use near_primitives::trie_key::TrieKey;
use near_primitives::types::AccountId;

use super::ledger::{Ledger, GENESIS_TOKENS};
use super::transfer::{NearRouter, NearTransfer};
use crate::app::ping::PingModule;
use crate::app::store::{self, JournaledStore};
use crate::host::{claimed_self_states, DevnetHost, SequenceForm};

mod view;

pub use view::ViewError;

/// The type URL of ICS-20's `MsgTransfer`, which `deliver` takes besides the ICS-26 messages.
pub const MSG_TRANSFER_TYPE_URL: &str = "/ibc.applications.transfer.v1.MsgTransfer";

/// Deposit `deliver` requires per message, in yoctoNEAR (near-ibc's `MINIMUM_DEPOSIT_FOR_DELEVER_MSG`, 0.05 NEAR).
pub const MIN_DEPOSIT_PER_MESSAGE: u128 = 50_000_000_000_000_000_000_000;
/// The log line near-ibc emits when a delivered message fails.
pub const ERR_DELIVER_MESSAGE_LOG: &str =
    r#"EVENT_JSON:{"standard":"nep297","version":"1.0.0","event":"ERR_DELIVER_MESSAGE"}"#;

/// The contract's state: ibc-rs with its pending writes, and the IBC events of every block.
pub struct IbcContract {
    account: AccountId,
    ibc: MockIbcStore<JournaledStore>,
    router: NearRouter,
    events: BTreeMap<u64, Vec<IbcEvent>>,
}

impl std::fmt::Debug for IbcContract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IbcContract")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The storage key of `key` in `account`'s contract data.
pub fn contract_data_key(account: &AccountId, key: &[u8]) -> Vec<u8> {
    TrieKey::ContractData {
        account_id: account.clone(),
        key: key.to_vec(),
    }
    .to_vec()
}

/// Contract storage as seen at one block: the contract-data entries of one account in a state snapshot.
pub struct ContractStorage<'a> {
    state: &'a BTreeMap<Vec<u8>, Vec<u8>>,
    prefix: Vec<u8>,
}

impl<'a> ContractStorage<'a> {
    /// `account`'s storage within `state`.
    pub fn new(state: &'a BTreeMap<Vec<u8>, Vec<u8>>, account: &AccountId) -> Self {
        Self {
            state,
            prefix: contract_data_key(account, b""),
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&'a Vec<u8>> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key.as_bytes());
        self.state.get(&k)
    }

    /// Keys (without the account prefix) starting with `prefix`, in order.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut start = self.prefix.clone();
        start.extend_from_slice(prefix.as_bytes());
        self.state
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .filter_map(|(k, _)| String::from_utf8(k[self.prefix.len()..].to_vec()).ok())
            .collect()
    }
}

impl IbcContract {
    /// An empty IBC module on `account`, at NEAR revision 0. Its first store version is the genesis state.
    pub fn new(account: AccountId) -> Self {
        let ibc = MockIbcStore::new(0, JournaledStore::default());
        let transfer = NearTransfer::new(Ledger::new(ibc.store.clone()), account.clone());
        Self {
            account,
            ibc,
            router: NearRouter {
                transfer,
                ping: PingModule,
            },
            events: BTreeMap::new(),
        }
    }

    /// Gives each of `holders` the genesis amount of every NEAR-native denomination in [`GENESIS_TOKENS`]
    /// (written with the genesis state).
    pub fn fund_genesis<'a>(&mut self, holders: impl IntoIterator<Item = &'a AccountId>) {
        let ledger = self.router.transfer.ledger();
        for holder in holders {
            for (denom, amount) in GENESIS_TOKENS {
                if let Err(e) = ledger.mint(holder.as_str(), denom, *amount) {
                    tracing::error!("genesis balance of {holder}: {e}");
                }
            }
        }
    }

    /// The contract account.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// Starts block `height`: records the host consensus state ibc-rs reads for its own timestamp (root = the
    /// state root the block header commits to, next validators hash = the next block producers' hash).
    pub fn begin_block(
        &mut self,
        height: u64,
        timestamp_ns: u64,
        state_root: [u8; 32],
        next_bp_hash: [u8; 32],
    ) {
        let store_height = self.ibc.store.current_height();
        if store_height != height {
            tracing::error!(
                "IBC store at version {store_height} while executing NEAR block {height}"
            );
        }
        let secs = i64::try_from(timestamp_ns / 1_000_000_000).unwrap_or(i64::MAX);
        let nanos = u32::try_from(timestamp_ns % 1_000_000_000).unwrap_or(0);
        let Ok(time) = tendermint::Time::from_unix_timestamp(secs, nanos) else {
            tracing::error!("block {height}: timestamp {timestamp_ns} out of range");
            return;
        };
        let cs = TmConsensusState::new(
            CommitmentRoot::from_bytes(&state_root),
            time,
            tendermint::Hash::Sha256(next_bp_hash),
        );
        self.ibc
            .host_consensus_states
            .lock()
            .insert(height, AnyConsensusState::Tendermint(cs.into()));
    }

    /// A point to come back to with [`IbcContract::revert`] when a later action of the same receipt fails.
    pub fn checkpoint(&self, height: u64) -> IbcCheckpoint {
        IbcCheckpoint {
            store: store::checkpoint(&self.ibc.store),
            height,
            events: self.events.get(&height).map_or(0, Vec::len),
        }
    }

    /// Undoes every write and event since `cp`.
    pub fn revert(&mut self, cp: IbcCheckpoint) {
        store::revert_to(&self.ibc.store, cp.store);
        if let Some(evs) = self.events.get_mut(&cp.height) {
            evs.truncate(cp.events);
        }
    }

    /// Runs `deliver(messages)`, called by `caller`, in block `height` as near-ibc does: each message on its own;
    /// a failing one is rolled back and reported in the logs (near-ibc's `ERR_DELIVER_MESSAGE` event and the error
    /// text), the others stay. Returns the IBC events and the log lines.
    ///
    /// Besides ICS-26 messages it takes ICS-20's `MsgTransfer`, whose sender must be `caller`: only an account's
    /// own call spends its tokens.
    pub fn deliver(
        &mut self,
        height: u64,
        caller: &AccountId,
        messages: Vec<Any>,
    ) -> (Vec<IbcEvent>, Vec<String>) {
        let mut events = Vec::new();
        let mut logs = Vec::new();
        for (i, any) in messages.into_iter().enumerate() {
            let cp = store::checkpoint(&self.ibc.store);
            let type_url = any.type_url.clone();
            let prefix = contract_data_key(&self.account, b"");
            let result = if type_url == MSG_TRANSFER_TYPE_URL {
                MsgTransfer::try_from(any)
                    .map_err(|e| e.to_string())
                    .and_then(|msg| {
                        if msg.packet_data.sender.as_ref() != caller.as_str() {
                            return Err(format!(
                                "transfer sender {} is not the caller {caller}",
                                msg.packet_data.sender.as_ref()
                            ));
                        }
                        let mut host = DevnetHost::new(&mut self.ibc, prefix, SequenceForm::Json);
                        send_transfer(&mut host, &mut self.router.transfer, msg)
                            .map_err(|e| e.to_string())
                    })
            } else {
                MsgEnvelope::try_from(any)
                    .map_err(|e| e.to_string())
                    .and_then(|env| {
                        let claimed = claimed_self_states(&env);
                        let mut host = DevnetHost::new(&mut self.ibc, prefix, SequenceForm::Json)
                            .with_claimed_self_states(claimed);
                        dispatch(&mut host, &mut self.router, env).map_err(|e| e.to_string())
                    })
            };
            let evs = std::mem::take(&mut *self.ibc.events.lock());
            self.ibc.logs.lock().clear();
            match result {
                Ok(()) => events.extend(evs),
                Err(e) => {
                    store::revert_to(&self.ibc.store, cp);
                    logs.push(ERR_DELIVER_MESSAGE_LOG.to_owned());
                    logs.push(format!(
                        "Error occurred in processing message {i} ({type_url}): {e}"
                    ));
                }
            }
        }
        self.events
            .entry(height)
            .or_default()
            .extend(events.iter().cloned());
        (events, logs)
    }

    /// Ends block `height`: copies every path written in it into the contract's storage in `state` and commits
    /// the IBC store, so its next version is the next block's.
    pub fn commit(&mut self, state: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        for path in store::pending_paths(&self.ibc.store) {
            let key = contract_data_key(&self.account, path.to_string().as_bytes());
            match self.ibc.store.get(StoreHeight::Pending, &path) {
                Some(v) => {
                    state.insert(key, near_ibc_value(&path.to_string(), v));
                }
                None => {
                    state.remove(&key);
                }
            }
        }
        let _ = self.ibc.store.commit();
    }

    /// Drops IBC events of blocks below `height`.
    pub fn prune_events(&mut self, below: u64) {
        self.events = self.events.split_off(&below);
    }

    /// The IBC host over the contract's store, for tests that set up IBC state a handshake would leave.
    #[cfg(test)]
    pub(crate) fn host(&mut self) -> DevnetHost<'_, JournaledStore> {
        DevnetHost::new(
            &mut self.ibc,
            contract_data_key(&self.account, b""),
            SequenceForm::Json,
        )
    }

    /// The ICS-20 application, for tests that run its packet callbacks.
    #[cfg(test)]
    pub(crate) fn transfer_mut(&mut self) -> &mut NearTransfer {
        &mut self.router.transfer
    }

    /// The IBC events of `height` (block heights with no IBC events give an empty list).
    pub fn events_at(&self, height: u64) -> Vec<IbcEvent> {
        self.events.get(&height).cloned().unwrap_or_default()
    }
}

/// See [`IbcContract::checkpoint`].
#[derive(Debug, Clone, Copy)]
pub struct IbcCheckpoint {
    store: usize,
    height: u64,
    events: usize,
}

/// The value near-ibc stores for `path`: ibc-testkit keeps sequences as JSON numbers, near-ibc as `borsh(u64)`;
/// every other value (protobuf `Any`, protobuf ends, 32-byte commitments, the one-byte receipt) is the same.
fn near_ibc_value(path: &str, v: Vec<u8>) -> Vec<u8> {
    if path.starts_with("nextSequence") {
        if let Ok(seq) = serde_json::from_slice::<u64>(&v) {
            return seq.to_le_bytes().to_vec();
        }
    }
    v
}
