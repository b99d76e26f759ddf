//! The NEAR end of `relayd tx`: ICS-20 sends and channel closes delivered through the IBC contract's `deliver` by
//! relayd's NEAR submitter (signed by the chain's `signer_account`), with the packets read back from the contract's
//! events at the blocks the calls executed in.

use ibc_proto::google::protobuf::Any;
use relayd_actors::chain::endpoint::ChainEndpoint;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_config::ChainConfig;
use relayd_messages::IbcEvent;

use crate::commands::create::BoxError;

/// What the sends did: the `deliver` transactions' hashes and the sequences of the packets the signer's account
/// sent on `port`/`channel` in the blocks they executed in.
pub(crate) struct Sent {
    pub hashes: Vec<String>,
    pub sequences: Vec<u64>,
}

/// The latest final height of NEAR chain `chain`.
pub(super) async fn latest_height(chain: &ChainConfig) -> Result<u64, BoxError> {
    chain.primary_rpc()?;
    let rpc = NearRpc::of_chain(chain);
    Ok(rpc.block(None).await?.header.height)
}

/// Delivers `messages` (`MsgTransfer`s from the signer's account) to NEAR chain `chain`, in calls cut by gas and the
/// chain's message and size limits, and reads back the packets they sent. `relayd demo --near` sends its NEAR
/// traffic through here too, with a user account as the chain's signer.
pub(crate) async fn transfer(
    chain: &ChainConfig,
    messages: Vec<Any>,
    port: &str,
    channel: &str,
) -> Result<Sent, BoxError> {
    let (endpoint, submitter) = relayd_actors::chain::near::from_config(chain)?;
    let sender = submitter.account().to_string();
    let outcomes = submitter
        .submit_all(messages, chain.max_msg_num, chain.max_tx_size)
        .await?;
    let mut sent = Sent {
        hashes: outcomes.iter().map(|o| o.tx_hash.to_string()).collect(),
        sequences: Vec::new(),
    };
    let mut heights: Vec<u64> = Vec::new();
    for block in outcomes.iter().flat_map(|o| o.receipt_blocks.iter()) {
        heights.push(endpoint.rpc().block_by_hash(*block).await?.header.height);
    }
    heights.sort_unstable();
    heights.dedup();
    for height in heights {
        for observed in endpoint.ibc_events_at(height).await? {
            let IbcEvent::SendPacket(packet) = observed.event else {
                continue;
            };
            // Other accounts may send in the same blocks: keep the packets whose ICS-20 sender is ours.
            let ours = packet.source_port.as_str() == port
                && packet.source_channel.as_str() == channel
                && serde_json::from_slice::<serde_json::Value>(&packet.data)
                    .ok()
                    .is_some_and(|d| d["sender"] == sender.as_str());
            if ours {
                sent.sequences.push(packet.sequence.0);
            }
        }
    }
    Ok(sent)
}

/// Delivers one message (a `MsgChannelCloseInit`) to NEAR chain `chain`; returns the transaction's hash.
pub(super) async fn deliver_one(chain: &ChainConfig, msg: Any) -> Result<String, BoxError> {
    let (_, submitter) = relayd_actors::chain::near::from_config(chain)?;
    Ok(submitter.submit(&[msg]).await?.tx_hash.to_string())
}
