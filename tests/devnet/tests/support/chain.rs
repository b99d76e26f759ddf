//! One chain as a relayer sees it: an RPC client (CompatMode::V0_38), queries through `abci_query`, and
//! SIGN_MODE_DIRECT transactions that are simulated for gas, broadcast with `broadcast_tx_sync` and awaited by
//! polling `tx`.

use std::time::{Duration, Instant};

use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use devnet::RunningChain;
use ibc_proto::google::protobuf::Any;
use prost::Message;
use tendermint::abci::Event;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::endpoint::abci_query::AbciQuery;
use tendermint_rpc::{Client, HttpClient};

/// The fee denomination of every devnet chain.
pub const FEE_DENOM: &str = "stake";
/// How long any single wait may take before the test gives up; a hang guard, never an assertion on speed.
pub const HANG_GUARD: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// A key that signs transactions, with its bech32 address.
pub struct Wallet {
    pub key: SigningKey,
    pub address: String,
}

impl Wallet {
    /// The genesis account `name` of `chain` (`relayer`, `user1`, `user2`).
    pub fn genesis(chain: &RunningChain, name: &str) -> Self {
        let acc = chain
            .genesis
            .account(name)
            .unwrap_or_else(|| panic!("{} has no account {name}", chain.chain_id()));
        Self {
            key: acc.signing_key(),
            address: acc.address.clone(),
        }
    }
}

/// How to pick a transaction's gas limit.
#[derive(Debug, Clone, Copy)]
pub enum Gas {
    /// Simulate first (`/cosmos.tx.v1beta1.Service/Simulate`) and add a margin, as relayers do.
    Simulate,
    /// A fixed limit: for transactions expected to fail, which simulation would refuse.
    Fixed(u64),
}

/// A transaction that made it into a block, successful or not.
#[derive(Debug, Clone)]
pub struct Included {
    pub height: u64,
    pub code: u32,
    pub codespace: String,
    pub log: String,
    pub events: Vec<Event>,
    /// The fee paid, in [`FEE_DENOM`]; charged whether or not the messages succeeded.
    pub fee: u128,
}

impl Included {
    /// The value of attribute `key` in the first event of type `kind`.
    pub fn attr(&self, kind: &str, key: &str) -> Option<String> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .flat_map(|e| e.attributes.iter())
            .find(|a| a.key_str().ok() == Some(key))
            .and_then(|a| a.value_str().ok().map(str::to_owned))
    }
}

/// A devnet chain reached only over its RPC endpoint.
pub struct Chain {
    pub id: String,
    /// The revision number in the chain id (`ibc-1` is revision 1), which every IBC height of this chain carries.
    pub revision: u64,
    pub rpc: HttpClient,
    pub min_gas_price: f64,
    /// The account that signs every relayed message on this chain.
    pub relayer: Wallet,
}

impl Chain {
    /// Connects to a running devnet chain's RPC.
    pub fn connect(running: &RunningChain) -> Self {
        let compat = match running.cometbft {
            // Sei's mix differs from 0.38 in what these tests read (status, abci_query, broadcast_tx_sync, tx,
            // commit, validators) only by its base64 attributes, which the 0.34 mode decodes.
            devnet::rpc::Dialect::V0_34 | devnet::rpc::Dialect::Sei => CompatMode::V0_34,
            devnet::rpc::Dialect::V0_37 => CompatMode::V0_37,
            devnet::rpc::Dialect::V0_38 | devnet::rpc::Dialect::V1_0 => CompatMode::V0_38,
        };
        let rpc = HttpClient::builder(running.rpc_url().parse().expect("rpc url"))
            .compat_mode(compat)
            .build()
            .expect("http client");
        let id = running.chain_id();
        let revision = ibc::core::host::types::identifiers::ChainId::new(&id)
            .expect("devnet chain ids are valid IBC chain ids")
            .revision_number();
        Self {
            id,
            revision,
            rpc,
            min_gas_price: running.genesis.min_gas_price,
            relayer: Wallet::genesis(running, "relayer"),
        }
    }

    /// The latest committed block height.
    pub async fn height(&self) -> u64 {
        self.rpc
            .status()
            .await
            .expect("status")
            .sync_info
            .latest_block_height
            .value()
    }

    /// Waits until the chain has committed block `height`; returns the latest height then.
    pub async fn wait_until_height(&self, height: u64) -> u64 {
        let start = Instant::now();
        loop {
            let h = self.height().await;
            if h >= height {
                return h;
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "{} stuck at height {h}, waiting for {height}",
                self.id
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `abci_query`; `height` None = latest. Fails on a nonzero code.
    pub async fn query(
        &self,
        path: &str,
        data: Vec<u8>,
        height: Option<u64>,
        prove: bool,
    ) -> Result<AbciQuery, String> {
        let height = height.map(|h| h.try_into().expect("height"));
        let q = self
            .rpc
            .abci_query(Some(path.to_owned()), data, height, prove)
            .await
            .map_err(|e| format!("abci_query {path}: {e}"))?;
        if q.code.is_err() {
            return Err(format!(
                "abci_query {path}: code {} {}",
                q.code.value(),
                q.log
            ));
        }
        Ok(q)
    }

    /// (account number, sequence) from the auth Account query.
    pub async fn account(&self, address: &str) -> (u64, u64) {
        let req = QueryAccountRequest {
            address: address.to_owned(),
        };
        let q = self
            .query(
                "/cosmos.auth.v1beta1.Query/Account",
                req.encode_to_vec(),
                None,
                false,
            )
            .await
            .expect("account query");
        let resp = QueryAccountResponse::decode(q.value.as_slice()).expect("account response");
        let any = resp.account.expect("account");
        assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
        let acc = BaseAccount::decode(any.value.as_slice()).expect("base account");
        (acc.account_number, acc.sequence)
    }

    /// The bank balance of `address` in `denom`.
    pub async fn balance(&self, address: &str, denom: &str) -> u128 {
        let req = QueryBalanceRequest {
            address: address.to_owned(),
            denom: denom.to_owned(),
        };
        let q = self
            .query(
                "/cosmos.bank.v1beta1.Query/Balance",
                req.encode_to_vec(),
                None,
                false,
            )
            .await
            .expect("balance query");
        let resp = QueryBalanceResponse::decode(q.value.as_slice()).expect("balance response");
        resp.balance
            .map(|c| c.amount.parse().expect("amount"))
            .unwrap_or(0)
    }

    fn sign(
        &self,
        wallet: &Wallet,
        msgs: &[Any],
        account_number: u64,
        sequence: u64,
        gas: u64,
    ) -> Vec<u8> {
        let msgs: Vec<cosmrs::Any> = msgs
            .iter()
            .map(|m| cosmrs::Any {
                type_url: m.type_url.clone(),
                value: m.value.clone(),
            })
            .collect();
        let body = Body::new(msgs, "relayd devnet test", 0u32);
        let fee = (gas as f64 * self.min_gas_price).ceil() as u128;
        let auth = SignerInfo::single_direct(Some(wallet.key.public_key()), sequence).auth_info(
            Fee::from_amount_and_gas(
                cosmrs::Coin {
                    denom: FEE_DENOM.parse().expect("denom"),
                    amount: fee,
                },
                gas,
            ),
        );
        SignDoc::new(
            &body,
            &auth,
            &self.id.parse().expect("chain id"),
            account_number,
        )
        .expect("sign doc")
        .sign(&wallet.key)
        .expect("sign")
        .to_bytes()
        .expect("encode tx")
    }

    /// Signs `msgs` as `wallet`, broadcasts, and waits for the block. `Err` when simulation or CheckTx refuses
    /// the transaction (it never reaches a block); an included but failed transaction is `Ok` with its code.
    pub async fn broadcast(
        &self,
        wallet: &Wallet,
        msgs: &[Any],
        gas: Gas,
    ) -> Result<Included, String> {
        let (number, sequence) = self.account(&wallet.address).await;
        let gas = match gas {
            Gas::Fixed(g) => g,
            Gas::Simulate => {
                let probe = self.sign(wallet, msgs, number, sequence, 0);
                #[allow(deprecated)]
                let req = SimulateRequest {
                    tx: None,
                    tx_bytes: probe,
                };
                let q = self
                    .query(
                        "/cosmos.tx.v1beta1.Service/Simulate",
                        req.encode_to_vec(),
                        None,
                        false,
                    )
                    .await?;
                let used = SimulateResponse::decode(q.value.as_slice())
                    .map_err(|e| e.to_string())?
                    .gas_info
                    .ok_or("simulate returned no gas info")?
                    .gas_used;
                // Margin for state that changes between simulation and execution (e.g. a new consensus state).
                used + used / 4 + 10_000
            }
        };
        let fee = (gas as f64 * self.min_gas_price).ceil() as u128;
        let tx = self.sign(wallet, msgs, number, sequence, gas);
        let sent = self
            .rpc
            .broadcast_tx_sync(tx)
            .await
            .map_err(|e| format!("broadcast_tx_sync: {e}"))?;
        if sent.code.is_err() {
            return Err(format!(
                "CheckTx refused: code {} {}",
                sent.code.value(),
                sent.log
            ));
        }
        let start = Instant::now();
        loop {
            if let Ok(r) = self.rpc.tx(sent.hash, false).await {
                let inc = Included {
                    height: r.height.value(),
                    code: r.tx_result.code.value(),
                    codespace: r.tx_result.codespace,
                    log: r.tx_result.log,
                    events: r.tx_result.events,
                    fee,
                };
                // The ante handler reports the fee it charged; it must be the one signed.
                let charged = inc.attr("tx", "fee").ok_or("no tx fee event")?;
                assert_eq!(charged, format!("{fee}{FEE_DENOM}"), "fee charged");
                return Ok(inc);
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "tx {} never included on {}",
                sent.hash,
                self.id
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`Chain::broadcast`] with simulated gas, failing the test unless every message succeeds.
    pub async fn submit(&self, wallet: &Wallet, msgs: &[Any]) -> Included {
        let types: Vec<&str> = msgs.iter().map(|m| m.type_url.as_str()).collect();
        let inc = self
            .broadcast(wallet, msgs, Gas::Simulate)
            .await
            .unwrap_or_else(|e| panic!("{}: {types:?} refused: {e}", self.id));
        assert_eq!(
            inc.code, 0,
            "{}: {types:?} failed ({}): {}",
            self.id, inc.codespace, inc.log
        );
        inc
    }
}
