//! Waiting until a transfer channel between two devnet chains shows every packet relayed and acknowledged: each
//! receiver holds its vouchers and neither end keeps a packet commitment.

use relayd_actors::chain::cosmos::rpc::CosmosRpc;

use crate::common::eventually;
use crate::support::handshake::End;
use crate::support::packet::{voucher_denom, TRANSFER_PORT};

/// Waits until `receivers.0` holds `expected` vouchers on `b` of the stake sent from `a`, `receivers.1` as many on
/// `a` of the stake sent from `b`, and neither end of the channel has a packet commitment left.
pub async fn until_every_packet_acknowledged(
    chains: &[devnet::RunningChain],
    (a, b): (&End, &End),
    receivers: (&str, &str),
    expected: u128,
) {
    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let voucher_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    let rpc_a = CosmosRpc::connect(&chains[0].chain_id(), &chains[0].rpc_url())
        .await
        .unwrap();
    let rpc_b = CosmosRpc::connect(&chains[1].chain_id(), &chains[1].rpc_url())
        .await
        .unwrap();
    eventually("every packet relayed and acknowledged", || async {
        b.chain.balance(receivers.0, &voucher_b).await == expected
            && a.chain.balance(receivers.1, &voucher_a).await == expected
            && rpc_a
                .packet_commitments(TRANSFER_PORT, &a.channel_id)
                .await
                .unwrap()
                .is_empty()
            && rpc_b
                .packet_commitments(TRANSFER_PORT, &b.channel_id)
                .await
                .unwrap()
                .is_empty()
    })
    .await;
}
