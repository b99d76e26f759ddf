//! `relayd tx transfer` and `relayd tx chan-close`: ICS-20 traffic and channel closing from the relayer's own
//! account (a Cosmos key, or a NEAR chain's `signer_account` through the IBC contract), for tests, demos, funding
//! and operators; signed, batched and confirmed by the same transaction paths relaying uses.

use std::process::ExitCode;
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use ibc_proto::ibc::core::channel::v1::MsgChannelCloseInit;
use ibc_proto::ibc::core::client::v1::Height;
use prost::Message;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::cosmos::tx::{TxConfig, TxSubmitter};
use relayd_actors::keys::KeyStore;
use serde_json::json;

use crate::cli::{ChanCloseArgs, Cli, TransferArgs, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::balance::relayer_account;
use crate::commands::config::load;
use crate::commands::create::BoxError;
use crate::commands::data_dir;
use crate::commands::{configured_chain, fail};

pub(crate) mod near;

/// Runs `tx transfer`: from a Cosmos chain's key in relayd's key store, or from a NEAR chain's `signer_account`
/// through the IBC contract's `deliver`.
pub fn transfer(cli: &Cli, args: &TransferArgs) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, args.out.json) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let find = |id: &str| config.chains.iter().find(|c| c.id.as_str() == id);
    let (Some(src), Some(dst)) = (find(&args.src_chain), find(&args.dst_chain)) else {
        return fail(
            "--src-chain and --dst-chain must both be configured chains",
            EXIT_CONFIG,
        );
    };
    let Some((amount, denom)) = parse_coin(&args.amount) else {
        return fail(
            &format!(
                "--amount {:?} is not <integer><denom>, e.g. 100stake",
                args.amount
            ),
            EXIT_CONFIG,
        );
    };
    if args.count == 0 {
        return fail("--count must be at least 1", EXIT_CONFIG);
    }
    let receiver = match &args.receiver {
        Some(r) => r.clone(),
        None => match relayer_account(&config, &path, dst) {
            Ok(account) => account,
            // The relayer's own account on the destination is the default receiver.
            Err(e) => {
                return fail(
                    &format!(
                        "no --receiver, and no relayer account on {} to default to: {e}",
                        dst.id
                    ),
                    EXIT_CONFIG,
                )
            }
        },
    };
    // The Cosmos sender's key, or the NEAR signer; both are read before anything is sent.
    let cosmos_sender = match src.cosmos() {
        Some(cosmos) => {
            let keys = match KeyStore::open(&data_dir(&config, &path).join("keys")) {
                Ok(keys) => keys,
                Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
            };
            match keys.signing_key(src.id.as_str()) {
                Ok((info, key)) => Some((info, key, tx_config(&config, src, &cosmos))),
                Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
            }
        }
        None => None,
    };
    let sender = match &cosmos_sender {
        Some((info, _, _)) => info.address.clone(),
        None => match relayer_account(&config, &path, src) {
            Ok(account) => account,
            Err(e) => return fail(&e, EXIT_CONFIG),
        },
    };
    let result = actix_rt::System::new().block_on(async {
        let timeout_height = match args.timeout_height_offset {
            Some(offset) => Some(Height {
                revision_number: if dst.near().is_some() {
                    // NEAR has one revision.
                    0
                } else {
                    dst.id.revision_number()
                },
                revision_height: latest_height(dst).await? + offset,
            }),
            None => None,
        };
        let timeout_timestamp = match (args.timeout_seconds, timeout_height.is_some()) {
            (Some(secs), _) => now_ns() + secs * 1_000_000_000,
            (None, true) => 0,
            // Neither given: a packet must time out somehow; ten minutes.
            (None, false) => now_ns() + 600 * 1_000_000_000,
        };
        let msg = MsgTransfer {
            source_port: args.port.clone(),
            source_channel: args.channel.clone(),
            token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
                denom: denom.clone(),
                amount: amount.to_string(),
            }),
            sender: sender.clone(),
            receiver: receiver.clone(),
            timeout_height,
            timeout_timestamp,
            memo: args.memo.clone(),
        };
        let any = Any {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
            value: msg.encode_to_vec(),
        };
        let messages = vec![any; args.count as usize];
        match cosmos_sender {
            Some((info, key, tx_config)) => {
                let rpc = CosmosRpc::connect_endpoints(src).await?;
                let mut submitter = TxSubmitter::new(rpc, tx_config, key, info.address);
                let outcomes = submitter.submit(messages).await.map_err(|(done, e)| {
                    format!("{e} (after {} successful transaction(s))", done.len())
                })?;
                Ok(near::Sent {
                    sequences: outcomes.iter().flat_map(|o| o.sent_sequences()).collect(),
                    hashes: outcomes.into_iter().map(|o| o.hash).collect(),
                })
            }
            None => near::transfer(src, messages, &args.port, &args.channel).await,
        }
    });
    let sent = match result {
        Ok(sent) => sent,
        Err::<_, BoxError>(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    if args.out.json {
        println!(
            "{}",
            json!({"src_chain": src.id.as_str(), "txs": sent.hashes, "sequences": sent.sequences, "receiver": receiver})
        );
    } else {
        println!(
            "{}: sent {} packet(s) on {}/{} in {} tx(s): sequences {:?}",
            src.id,
            sent.sequences.len(),
            args.port,
            args.channel,
            sent.hashes.len(),
            sent.sequences
        );
    }
    ExitCode::SUCCESS
}

/// The latest height of `chain`, of either kind.
async fn latest_height(chain: &relayd_config::ChainConfig) -> Result<u64, BoxError> {
    if chain.near().is_some() {
        return near::latest_height(chain).await;
    }
    let rpc = CosmosRpc::connect_endpoints(chain).await?;
    Ok(rpc.status().await?.1)
}

/// Runs `tx chan-close`: sends `MsgChannelCloseInit` for one channel end (from relayd's Cosmos key, or through a
/// NEAR chain's IBC contract) and waits for it to be included.
pub fn chan_close(cli: &Cli, args: &ChanCloseArgs) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, args.out.json) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let chain = match configured_chain(&config, &args.chain) {
        Ok(chain) => chain,
        Err(code) => return code,
    };
    let message = |signer: String| {
        let msg = MsgChannelCloseInit {
            port_id: args.port.clone(),
            channel_id: args.channel.clone(),
            signer,
        };
        Any {
            type_url: "/ibc.core.channel.v1.MsgChannelCloseInit".into(),
            value: msg.encode_to_vec(),
        }
    };
    let result: Result<String, BoxError> = match chain.cosmos() {
        Some(cosmos) => {
            let keys = match KeyStore::open(&data_dir(&config, &path).join("keys")) {
                Ok(keys) => keys,
                Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
            };
            let (signer, key) = match keys.signing_key(chain.id.as_str()) {
                Ok(k) => k,
                Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
            };
            let any = message(signer.address.clone());
            let tx_config = tx_config(&config, chain, &cosmos);
            actix_rt::System::new().block_on(async {
                let rpc = CosmosRpc::connect_endpoints(chain).await?;
                let mut submitter = TxSubmitter::new(rpc, tx_config, key, signer.address.clone());
                let outcomes = submitter
                    .submit(vec![any])
                    .await
                    .map_err(|(_, e)| e.to_string())?;
                outcomes
                    .into_iter()
                    .next()
                    .map(|o| o.hash)
                    .ok_or_else(|| "no transaction was sent".into())
            })
        }
        None => {
            let signer = match relayer_account(&config, &path, chain) {
                Ok(signer) => signer,
                Err(e) => return fail(&e, EXIT_CONFIG),
            };
            let any = message(signer);
            actix_rt::System::new().block_on(near::deliver_one(chain, any))
        }
    };
    let hash = match result {
        Ok(hash) => hash,
        Err(e) => {
            return fail(
                &format!(
                    "closing {}/{} on {}: {e}",
                    args.port, args.channel, chain.id
                ),
                EXIT_RUNTIME,
            )
        }
    };
    if args.out.json {
        println!(
            "{}",
            json!({"chain": chain.id.as_str(), "port": args.port, "channel": args.channel, "tx": hash})
        );
    } else {
        println!(
            "{}: {}/{} is closed (tx {hash}); a running relayd relays the close to the counterparty and times out its packets in flight",
            chain.id, args.port, args.channel
        );
    }
    ExitCode::SUCCESS
}

/// The transaction settings of a configured Cosmos chain, as the CLI's one-off transactions use them.
pub fn tx_config(
    config: &relayd_config::Config,
    chain: &relayd_config::ChainConfig,
    cosmos: &relayd_config::CosmosSettings,
) -> TxConfig {
    TxConfig {
        chain_id: chain.id.to_string(),
        default_gas: cosmos.gas,
        gas_adjustment: cosmos.gas_adjustment,
        gas_price: cosmos.gas_price.amount,
        fee_denom: cosmos.gas_price.denom.clone(),
        max_gas: cosmos.max_gas,
        max_msg_num: chain.max_msg_num,
        max_tx_size: chain.max_tx_size,
        confirm_timeout: config.global.timeout.get().max(Duration::from_secs(30)),
        poll_interval: Duration::from_millis(200),
        max_in_flight: 1,
    }
}

/// `<integer><denom>` with a positive integer and a denom starting with a letter.
fn parse_coin(text: &str) -> Option<(u128, String)> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (amount, denom) = text.split_at(split);
    let amount: u128 = amount.parse().ok().filter(|a| *a > 0)?;
    denom
        .starts_with(|c: char| c.is_ascii_alphabetic())
        .then(|| (amount, denom.to_owned()))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
