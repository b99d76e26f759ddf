//! `relayd query balance`: an account's token balances, read where each chain kind keeps them — the bank module
//! of a Cosmos chain (gRPC-over-ABCI `Balance` / `AllBalances`), the ICS-20 ledger of a NEAR IBC contract (its
//! `ft_balance_of` / `ft_balances_of` views). With no `--address` the relayer's own account is asked about.

use std::path::Path;

use relayd_actors::chain::endpoint::{ChainEndpoint, ChainError};
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::keys::KeyStore;
use relayd_config::{ChainConfig, Config};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::commands::data_dir;

/// The relayer's account on `chain`: the NEAR `signer_account`, or the address of the Cosmos chain's key in
/// relayd's key store.
pub fn relayer_account(
    config: &Config,
    config_path: &Path,
    chain: &ChainConfig,
) -> Result<String, String> {
    if let Some(near) = chain.near() {
        return Ok(near.signer_account);
    }
    let keys =
        KeyStore::open(&data_dir(config, config_path).join("keys")).map_err(|e| e.to_string())?;
    keys.list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|k| k.chain_id == chain.id.as_str())
        .map(|k| k.address)
        .ok_or_else(|| {
            format!(
                "no --address and no key for {} (add one with `relayd keys add`)",
                chain.id
            )
        })
}

/// One entry of `ft_balances_of`.
#[derive(Deserialize)]
struct DenomBalance {
    denom: String,
    amount: String,
}

/// `account`'s balances on a NEAR chain's IBC contract, at its latest final block.
pub async fn near(
    endpoint: &NearEndpoint,
    account: &str,
    denom: Option<&str>,
) -> Result<Vec<(String, String)>, ChainError> {
    let chain = endpoint.chain_id().to_owned();
    let undecodable = |method: &str, e: serde_json::Error| {
        ChainError::rpc(&chain, method, format!("undecodable answer: {e}"))
    };
    match denom {
        Some(denom) => {
            let raw = endpoint
                .view(
                    "ft_balance_of",
                    json!({"account_id": account, "denom": denom}),
                )
                .await?;
            let amount: String =
                serde_json::from_slice(&raw).map_err(|e| undecodable("ft_balance_of", e))?;
            Ok(vec![(denom.to_owned(), amount)])
        }
        None => {
            let raw = endpoint
                .view("ft_balances_of", json!({"account_id": account}))
                .await?;
            let all: Vec<DenomBalance> =
                serde_json::from_slice(&raw).map_err(|e| undecodable("ft_balances_of", e))?;
            Ok(all.into_iter().map(|b| (b.denom, b.amount)).collect())
        }
    }
}

/// The printed answer: `{chain, address, balances: [{denom, amount}]}`, amounts as decimal strings (they exceed
/// JSON's safe integers).
pub fn report(chain: &str, address: &str, balances: Vec<(String, String)>) -> Value {
    let balances: Vec<Value> = balances
        .into_iter()
        .map(|(denom, amount)| json!({"denom": denom, "amount": amount}))
        .collect();
    json!({"chain": chain, "address": address, "balances": balances})
}
