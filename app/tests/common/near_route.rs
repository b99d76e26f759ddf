//! The routes the NEAR end-to-end tests relay over (a transfer channel, or a channel of the devnets' ping
//! application), set up as an operator does it (`create connection`, `create channel`, the path in the
//! configuration), and how they read balances and show relayd's log.

use ibc_proto::ibc::core::connection::v1::ConnectionEnd;
use prost::Message;
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::rpc::NearRpc;
use serde_json::Value;

use crate::near_pair::NearPair;
use crate::support::chain::Chain;

/// Prints the tail of relayd's log when the test fails, so a failure says what relayd was doing; the whole log
/// is kept in the temporary directory.
pub struct ShowLog(pub std::path::PathBuf);

impl Drop for ShowLog {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            let kept = std::env::temp_dir().join(format!("relayd-near-{}.log", std::process::id()));
            if std::fs::write(&kept, &text).is_ok() {
                eprintln!("relayd's whole log: {}", kept.display());
            }
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(80);
            eprintln!(
                "--- relayd log (last 80 lines) ---\n{}",
                lines[from..].join("\n")
            );
        }
    }
}

/// One amount from a `query balance --json` answer (0 when the denomination is not listed).
pub fn amount(doc: &Value, denom: &str) -> u128 {
    doc["balances"]
        .as_array()
        .expect("balances")
        .iter()
        .find(|b| b["denom"] == denom)
        .map_or(0, |b| b["amount"].as_str().unwrap().parse().unwrap())
}

/// `relayd query balance` of one denomination, of `address` on `chain` or of the relayer's own account there.
pub async fn balance(pair: &NearPair, chain: &str, address: Option<&str>, denom: &str) -> u128 {
    let mut args = vec!["query", "balance", "--chain", chain, "--denom", denom];
    if let Some(address) = address {
        args.extend(["--address", address]);
    }
    amount(&pair.json(&args).await, denom)
}

/// An open channel: its port (the same on both ends) and (ibc-0's client, connection, channel; NEAR's client,
/// connection, channel).
pub struct Route {
    /// The port on both ends.
    pub port: String,
    /// ibc-0's client, connection and channel.
    pub cosmos: (String, String, String),
    /// NEAR's client, connection and channel.
    pub near: (String, String, String),
}

/// Opens a connection and a transfer channel between ibc-0 and NEAR with relayd's create commands, initiated on
/// ibc-0, and reads each end's client.
pub async fn open_route(pair: &NearPair) -> Route {
    open_channel_route(pair, "transfer", "ics20-1").await
}

/// Opens a connection and an unordered channel on `port` (application version `version`) between ibc-0 and NEAR
/// with relayd's create commands, initiated on ibc-0, and reads each end's client.
pub async fn open_channel_route(pair: &NearPair, port: &str, version: &str) -> Route {
    let out = pair
        .json(&[
            "create",
            "connection",
            "--a-chain",
            "ibc-0",
            "--b-chain",
            &pair.near_id,
        ])
        .await;
    let cosmos_conn = out["a"]["connection_id"].as_str().unwrap().to_owned();
    let near_conn = out["b"]["connection_id"].as_str().unwrap().to_owned();
    let out = pair
        .json(&[
            "create",
            "channel",
            "--a-chain",
            "ibc-0",
            "--a-connection",
            &cosmos_conn,
            "--a-port",
            port,
            "--channel-version",
            version,
        ])
        .await;
    let cosmos_chan = out["a"]["channel_id"].as_str().unwrap().to_owned();
    let near_chan = out["b"]["channel_id"].as_str().unwrap().to_owned();
    let cosmos = Chain::connect(&pair.cosmos[0]);
    let end = cosmos
        .query(
            "store/ibc/key",
            path::connection(&cosmos_conn).into_bytes(),
            None,
            false,
        )
        .await
        .unwrap()
        .value;
    let cosmos_client = ConnectionEnd::decode(end.as_slice()).unwrap().client_id;
    let near = NearEndpoint::new(
        NearRpc::new(&pair.near_id, &pair.near.rpc_url()),
        pair.contract.parse().unwrap(),
    );
    let end = near
        .query_ibc(&path::connection(&near_conn), QueryHeight::Latest, false)
        .await
        .unwrap()
        .value;
    let near_client = ConnectionEnd::decode(end.as_slice()).unwrap().client_id;
    Route {
        port: port.to_owned(),
        cosmos: (cosmos_client, cosmos_conn, cosmos_chan),
        near: (near_client, near_conn, near_chan),
    }
}

/// Adds the route's clients to both chains and the route as a configured path.
pub fn configure(pair: &NearPair, route: &Route) {
    let text = std::fs::read_to_string(&pair.config).unwrap();
    let text = text
        .replace(
            "id = \"ibc-0\"\n",
            &format!("id = \"ibc-0\"\nclient_ids = [\"{}\"]\n", route.cosmos.0),
        )
        .replace(
            &format!("id = \"{}\"\n", pair.near_id),
            &format!(
                "id = \"{}\"\nclient_ids = [\"{}\"]\n",
                pair.near_id, route.near.0
            ),
        );
    let text = format!(
        "{text}\n[[connections]]\n[connections.src]\nclient_id = \"{}\"\nconnection_id = \"{}\"\n[connections.dest]\nclient_id = \"{}\"\nconnection_id = \"{}\"\n[[connections.paths]]\nsrc_port = \"{}\"\nsrc_channel = \"{}\"\n",
        route.cosmos.0, route.cosmos.1, route.near.0, route.near.1, route.port, route.cosmos.2
    );
    std::fs::write(&pair.config, text).unwrap();
}
