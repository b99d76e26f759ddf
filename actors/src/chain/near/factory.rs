//! Builds a NEAR chain's backends for its supervisor, afresh on every (re)start: the light client resumes from
//! the head in sled, the submitter reads its key file again and recovers its nonce from the chain.

use std::path::PathBuf;
use std::time::Duration;

use near_primitives::types::AccountId;
use relayd_config::{ChainConfig, EventSourceMode};
use relayd_messages::{ChainId, ErrorKind, RelayError};

use super::backend::{NearLight, NearSubmitter};
use super::credentials::load_signer;
use super::endpoint::NearEndpoint;
use super::monitor::{NearEventMonitor, NearMonitorConfig};
use super::rpc::NearRpc;
use super::trie::contract_data_key;
use super::tx::{NearTxConfig, NearTxSubmitter};
use super::NearSetupError;
use crate::chain::factory::ChainFactory;
use crate::chain::proof::ProofFormat;
use crate::chain_link::ChainLink;
use crate::store::StateStore;

/// Everything a NEAR chain's actors are built from.
#[derive(Clone)]
pub struct NearFactory {
    /// The chain.
    pub chain: ChainId,
    /// The node.
    pub rpc: NearRpc,
    /// The IBC contract's account.
    pub contract: AccountId,
    /// The state database.
    pub store: StateStore,
    /// The near-cli credentials files of the signer account's access keys, the primary first: each key has a
    /// nonce of its own, so each is a lane of the TxSubmitter.
    pub key_files: Vec<PathBuf>,
    /// The signer's account.
    pub signer_account: AccountId,
    /// How `deliver` transactions are made.
    pub tx: NearTxConfig,
    /// Most messages per transaction.
    pub max_msgs: usize,
    /// Most encoded message bytes per transaction.
    pub max_tx_size: usize,
    /// How the monitor polls.
    pub monitor: NearMonitorConfig,
    /// How long a client update waits for the light client to reach its target.
    pub light_wait: Duration,
    /// The pause between looks at the node while the light client waits.
    pub light_poll: Duration,
    /// Whether the light client may trust the node's latest block when no head is stored (development only).
    pub trust_on_first_use: bool,
}

impl NearFactory {
    /// The factory of a configured `type = "near"` chain, and the link other actors reach it through. The key
    /// files are checked now (present, mode 0600, the signer's, distinct keys) so a bad one stops the start with a
    /// clear error.
    pub fn from_config(
        config: &ChainConfig,
        store: &StateStore,
        retry_cap: Duration,
    ) -> Result<(Self, ChainLink), NearSetupError> {
        let chain = config.id.to_string();
        let settings = config.near().ok_or_else(|| NearSetupError::Incomplete {
            chain: chain.clone(),
        })?;
        let account = |key: &'static str, value: &str| {
            value
                .parse::<AccountId>()
                .map_err(|e| NearSetupError::Account {
                    chain: chain.clone(),
                    key,
                    value: value.to_owned(),
                    reason: e.to_string(),
                })
        };
        let contract = account("contract_account", &settings.contract_account)?;
        let signer_account = account("signer_account", &settings.signer_account)?;
        let mut keys: Vec<(&PathBuf, near_crypto::PublicKey)> = Vec::new();
        for file in &settings.key_files {
            let signer = load_signer(file, Some(signer_account.as_str())).map_err(|source| {
                NearSetupError::Credentials {
                    chain: chain.clone(),
                    source,
                }
            })?;
            let public = signer.public_key();
            if let Some((first, _)) = keys.iter().find(|(_, k)| *k == public) {
                return Err(NearSetupError::SameKey {
                    chain,
                    file: file.clone(),
                    first: (*first).clone(),
                });
            }
            keys.push((file, public));
        }
        let poll = match config.event_source.mode {
            EventSourceMode::Pull => config.event_source.interval.get(),
            EventSourceMode::Push => NearMonitorConfig::default().poll_interval,
        };
        let factory = Self {
            chain: config.id.clone(),
            rpc: NearRpc::of_chain(config),
            contract: contract.clone(),
            store: store.clone(),
            key_files: settings.key_files.clone(),
            signer_account: signer_account.clone(),
            tx: NearTxConfig {
                max_in_flight: config
                    .max_in_flight
                    .unwrap_or(NearTxConfig::default().max_in_flight),
                ..NearTxConfig::default()
            },
            max_msgs: config.max_msg_num,
            max_tx_size: config.max_tx_size,
            monitor: NearMonitorConfig {
                poll_interval: poll,
                retry_cap,
                ..NearMonitorConfig::default()
            },
            // A light-client head moves with the final block: ten block times cover a slow node, and keep the
            // LightClient (which serves one request at a time) from stalling on a height that is not coming.
            light_wait: config.max_block_time.get().saturating_mul(10),
            light_poll: poll,
            trust_on_first_use: settings.trust_on_first_use,
        };
        let link = ChainLink::new(
            config.id.clone(),
            signer_account.to_string(),
            commitment_prefix(&contract),
        )
        .with_proofs(ProofFormat::NearState {
            contract: contract.to_string(),
        });
        Ok((factory, link))
    }
}

impl NearFactory {
    /// A submitter signing with the access key in `file`, its nonce read afresh from the chain.
    fn submitter_of(&self, file: &std::path::Path) -> Result<NearSubmitter, RelayError> {
        let signer = load_signer(file, Some(self.signer_account.as_str())).map_err(|e| {
            RelayError::new(
                ErrorKind::ClientUnusable,
                format!("{}: signing key: {e}", self.chain),
            )
        })?;
        let inner = NearTxSubmitter::new(
            self.rpc.clone(),
            signer,
            self.contract.clone(),
            self.tx.clone(),
        );
        Ok(NearSubmitter::new(
            inner,
            self.rpc.clone(),
            self.max_msgs,
            self.max_tx_size,
        ))
    }
}

/// The commitment prefix of near-ibc's store: the trie key of the contract's data before every ICS-24 path
/// (`[9] ++ contract ++ ","`, what `get_commitment_prefix` returns).
pub fn commitment_prefix(contract: &AccountId) -> Vec<u8> {
    contract_data_key(contract.as_str(), b"")
}

impl ChainFactory for NearFactory {
    type Endpoint = NearEndpoint;
    type Light = NearLight;
    type Submit = NearSubmitter;
    type Events = NearEventMonitor;

    fn chain_id(&self) -> &ChainId {
        &self.chain
    }

    fn endpoint(&self) -> NearEndpoint {
        NearEndpoint::new(self.rpc.clone(), self.contract.clone())
    }

    fn light(&self) -> Result<NearLight, RelayError> {
        NearLight::new(
            self.rpc.clone(),
            self.store.clone(),
            self.light_wait,
            self.light_poll,
            self.trust_on_first_use,
        )
    }

    fn submitter(&self) -> Result<NearSubmitter, RelayError> {
        let primary = self.key_files.first().ok_or_else(|| {
            RelayError::new(
                ErrorKind::ClientUnusable,
                format!("{}: no key file", self.chain),
            )
        })?;
        self.submitter_of(primary)
    }

    fn extra_submitters(&self) -> Result<Vec<NearSubmitter>, RelayError> {
        // Access keys of the same account: datagrams keep their signer, only the key and its nonce differ.
        self.key_files
            .iter()
            .skip(1)
            .map(|file| self.submitter_of(file))
            .collect()
    }

    fn events(&self) -> Result<NearEventMonitor, RelayError> {
        Ok(NearEventMonitor::new(self.endpoint(), self.monitor.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commitment_prefix_is_the_contract_data_key_prefix() {
        let contract: AccountId = "ibc.test.near".parse().expect("account");
        let mut expected = vec![9u8];
        expected.extend_from_slice(b"ibc.test.near,");
        assert_eq!(commitment_prefix(&contract), expected);
    }
}
