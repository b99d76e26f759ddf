//! Looking packets up in a chain's transaction index (clearing's source of packets relayd has no record of, and
//! a builder's source of an acknowledgement it did not see): through relayd's Cosmos endpoint against a devnet
//! chain whose channel has more transactions than one page of `tx_search` holds. One sequence, a spread of
//! sequences whose range spans two pages, and a sequence never sent each give exactly the packets asked for.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use relayd_actors::chain::cosmos::endpoint::CosmosEndpoint;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::ChainEndpoint;
use relayd_messages::{IbcEvent, PacketEventKind};
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{an_hour_from_now, transfers, TRANSFER_PORT};

fn sequences(events: &[relayd_messages::ObservedEvent]) -> Vec<u64> {
    let mut out: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.event {
            IbcEvent::SendPacket(p) => Some(p.sequence.0),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_packets_are_found_by_sequence_and_by_range_across_pages() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let (a, _b) = connect_transfer(&chains).await;
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let timeout = an_hour_from_now();
    // One packet per transaction: 110 transactions on the channel, more than one page of 100.
    transfers(&a, &u1, &u2.address, 1, 110, 1, timeout).await;

    let rpc = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let endpoint = CosmosEndpoint::new(rpc, "ibc");
    let find = |wanted: Vec<u64>| {
        let endpoint = endpoint.clone();
        let channel = a.channel_id.clone();
        async move {
            endpoint
                .packet_events(PacketEventKind::Sent, TRANSFER_PORT, &channel, &wanted)
                .await
                .unwrap()
        }
    };

    assert_eq!(sequences(&find(vec![77]).await), vec![77]);
    assert_eq!(sequences(&find(vec![110, 1, 57]).await), vec![1, 57, 110]);
    let run: Vec<u64> = (101..=110).collect();
    assert_eq!(sequences(&find(run.clone()).await), run);
    assert!(find(vec![111]).await.is_empty(), "never sent");
    assert_eq!(
        sequences(&find(vec![109, 111]).await),
        vec![109],
        "only the sent one of a set"
    );

    for chain in chains {
        chain.shutdown().await;
    }
}
