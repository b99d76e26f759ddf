//! `relayd tx transfer` and `relayd tx chan-close`: ICS-20 traffic and channel closing from the relayer's own
//! key, for tests, demos, funding and operators; signed, batched and confirmed by the same transaction path
//! relaying uses.

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
use crate::commands::config::load;
use crate::commands::data_dir;
use crate::commands::{configured_chain, fail};

/// Runs `tx transfer`.
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
    let (Some(src_cosmos), Some(_)) = (src.cosmos(), dst.cosmos()) else {
        return fail("tx transfer supports Cosmos chains", EXIT_CONFIG);
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
    let keys = match KeyStore::open(&data_dir(&config, &path).join("keys")) {
        Ok(keys) => keys,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    let (sender, key) = match keys.signing_key(src.id.as_str()) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    let receiver = match &args.receiver {
        Some(r) => r.clone(),
        None => match keys
            .list()
            .ok()
            .and_then(|ks| ks.into_iter().find(|k| k.chain_id == dst.id.as_str()))
        {
            Some(k) => k.address,
            None => {
                return fail(
                    &format!("no --receiver and no key for {}", dst.id),
                    EXIT_CONFIG,
                )
            }
        },
    };
    let tx_config = tx_config(&config, src, &src_cosmos);
    let result = actix_rt::System::new().block_on(async {
        let src_rpc = CosmosRpc::connect(src.id.as_str(), &src.rpc_addr.to_string()).await?;
        let timeout_height = match args.timeout_height_offset {
            Some(offset) => {
                let dst_rpc =
                    CosmosRpc::connect(dst.id.as_str(), &dst.rpc_addr.to_string()).await?;
                let (_, latest) = dst_rpc.status().await?;
                Some(Height {
                    revision_number: dst.id.revision_number(),
                    revision_height: latest + offset,
                })
            }
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
            sender: sender.address.clone(),
            receiver: receiver.clone(),
            timeout_height,
            timeout_timestamp,
            memo: args.memo.clone(),
        };
        let any = Any {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
            value: msg.encode_to_vec(),
        };
        let mut submitter = TxSubmitter::new(src_rpc, tx_config, key, sender.address.clone());
        submitter
            .submit(vec![any; args.count as usize])
            .await
            .map_err(|(done, e)| {
                format!("{e} (after {} successful transaction(s))", done.len()).into()
            })
    });
    let outcomes = match result {
        Ok(outcomes) => outcomes,
        Err::<_, Box<dyn std::error::Error>>(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    let sequences: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.events.iter())
        .filter(|e| e.kind == "send_packet")
        .flat_map(|e| e.attributes.iter())
        .filter(|a| a.key_bytes() == b"packet_sequence")
        .filter_map(|a| a.value_str().ok().and_then(|v| v.parse().ok()))
        .collect();
    let hashes: Vec<&str> = outcomes.iter().map(|o| o.hash.as_str()).collect();
    if args.out.json {
        println!(
            "{}",
            json!({"src_chain": src.id.as_str(), "txs": hashes, "sequences": sequences, "receiver": receiver})
        );
    } else {
        println!(
            "{}: sent {} packet(s) on {}/{} in {} tx(s): sequences {:?}",
            src.id,
            sequences.len(),
            args.port,
            args.channel,
            hashes.len(),
            sequences
        );
    }
    ExitCode::SUCCESS
}

/// Runs `tx chan-close`: sends `MsgChannelCloseInit` for one channel end and waits for it to be included.
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
    let Some(cosmos) = chain.cosmos() else {
        return fail("tx chan-close supports Cosmos chains", EXIT_CONFIG);
    };
    let keys = match KeyStore::open(&data_dir(&config, &path).join("keys")) {
        Ok(keys) => keys,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    let (signer, key) = match keys.signing_key(chain.id.as_str()) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    let msg = MsgChannelCloseInit {
        port_id: args.port.clone(),
        channel_id: args.channel.clone(),
        signer: signer.address.clone(),
    };
    let any = Any {
        type_url: "/ibc.core.channel.v1.MsgChannelCloseInit".into(),
        value: msg.encode_to_vec(),
    };
    let tx_config = tx_config(&config, chain, &cosmos);
    let result = actix_rt::System::new().block_on(async {
        let rpc = CosmosRpc::connect(chain.id.as_str(), &chain.rpc_addr.to_string())
            .await
            .map_err(|e| e.to_string())?;
        let mut submitter = TxSubmitter::new(rpc, tx_config, key, signer.address.clone());
        submitter
            .submit(vec![any])
            .await
            .map_err(|(_, e)| e.to_string())
    });
    let hash = match result.map(|o| o.into_iter().next()) {
        Ok(Some(outcome)) => outcome.hash,
        Ok(None) => return fail("no transaction was sent", EXIT_RUNTIME),
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
