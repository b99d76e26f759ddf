//! ICS-20 traffic from a funded devnet account: transfers over a channel, signed, batched and confirmed by
//! relayd's own transaction path, reported as the sequences of the packets they created.

use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use prost::Message;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::cosmos::tx::{TxOutcome, TxSubmitter};
use relayd_config::Config;

use super::{DemoError, DENOM, TRANSFER_PORT};

/// How long a demo packet may wait for relaying before it times out on its destination.
const PACKET_TIMEOUT: Duration = Duration::from_secs(600);
/// Tokens per transfer.
const AMOUNT: u128 = 1;

/// Sends transfers from one account over one channel.
pub struct Sender {
    chain: String,
    channel: String,
    receiver: String,
    submitter: TxSubmitter,
}

impl Sender {
    /// A sender signing as `account` on the configured chain `chain`, to `receiver` over `channel`.
    pub async fn new(
        config: &Config,
        chain: &str,
        account: &devnet::genesis::GenesisAccount,
        channel: &str,
        receiver: &str,
    ) -> Result<Self, DemoError> {
        let err = |reason: String| DemoError::Transfer {
            chain: chain.to_owned(),
            reason,
        };
        let chain_config = config
            .chains
            .iter()
            .find(|c| c.id.as_str() == chain)
            .ok_or_else(|| err("not a configured chain".into()))?;
        let cosmos = chain_config
            .cosmos()
            .ok_or_else(|| err("not a cosmos chain".into()))?;
        let rpc = CosmosRpc::connect_endpoints(chain_config)
            .await
            .map_err(|e| err(e.to_string()))?;
        let tx_config = crate::commands::tx::tx_config(config, chain_config, &cosmos);
        Ok(Self {
            chain: chain.to_owned(),
            channel: channel.to_owned(),
            receiver: receiver.to_owned(),
            submitter: TxSubmitter::new(
                rpc,
                tx_config,
                account.signing_key(),
                account.address.clone(),
            ),
        })
    }

    /// The sending chain.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The sending channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Sends `count` transfers (as few transactions as the chain's limits allow) and waits until they are in a
    /// block; returns the packets' sequences. On failure, the sequences of the transactions that did land come
    /// with the error.
    pub async fn send(&mut self, count: usize) -> Result<Vec<u64>, (Vec<u64>, DemoError)> {
        let timeout_timestamp = now_ns() + PACKET_TIMEOUT.as_nanos() as u64;
        let msg = MsgTransfer {
            source_port: TRANSFER_PORT.to_owned(),
            source_channel: self.channel.clone(),
            token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
                denom: DENOM.to_owned(),
                amount: AMOUNT.to_string(),
            }),
            sender: self.submitter.address().to_owned(),
            receiver: self.receiver.clone(),
            timeout_height: None,
            timeout_timestamp,
            memo: String::new(),
        };
        let any = Any {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
            value: msg.encode_to_vec(),
        };
        match self.submitter.submit(vec![any; count]).await {
            Ok(outcomes) => Ok(sequences(&outcomes)),
            Err((done, e)) => Err((
                sequences(&done),
                DemoError::Transfer {
                    chain: self.chain.clone(),
                    reason: e.to_string(),
                },
            )),
        }
    }
}

/// The sequences of the packets `send_packet` events of these transactions announce.
fn sequences(outcomes: &[TxOutcome]) -> Vec<u64> {
    outcomes
        .iter()
        .flat_map(TxOutcome::sent_sequences)
        .collect()
}

/// Now, in nanoseconds since the Unix epoch (the unit of packet timeout timestamps).
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How many transfers are due after `elapsed` at `rate` per second, given `sent` were already sent.
pub fn due(rate: f64, elapsed: Duration, sent: u64) -> u64 {
    let total = (rate * elapsed.as_secs_f64()).floor();
    if total.is_finite() && total > 0.0 {
        (total as u64).saturating_sub(sent)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_fall_due_at_the_rate_whatever_the_tick() {
        assert_eq!(due(2.0, Duration::from_millis(400), 0), 0);
        assert_eq!(due(2.0, Duration::from_millis(500), 0), 1);
        assert_eq!(due(2.0, Duration::from_secs(10), 15), 5);
        // A slow transaction is caught up in the next one, never sent twice.
        assert_eq!(due(2.0, Duration::from_secs(10), 20), 0);
        assert_eq!(due(2.0, Duration::from_secs(10), 25), 0);
        assert_eq!(due(0.5, Duration::from_secs(9), 0), 4);
        assert_eq!(due(f64::INFINITY, Duration::from_secs(1), 0), 0);
    }
}
