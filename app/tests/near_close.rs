//! Closing a channel from the NEAR end, relayed by `relayd start`. ICS-20 refuses to close, so the channel is one of
//! the devnets' ping application (on both devnets, version `ping-1`), opened between ibc-0 and NEAR as an operator
//! opens one (`create connection`, `create channel --a-port ping`, the path in the configuration). `relayd tx
//! chan-close` closes the NEAR end through the contract's `deliver`; relayd confirms the close on ibc-0 with a
//! ChanCloseConfirm proven from NEAR state, judged by ibc-0's `12-near` client. A ping ibc-0 sent that NEAR never
//! received is timed out on close (`MsgTimeoutOnClose`, the closed NEAR end and the missing receipt proven from NEAR
//! state), so nothing stays committed on ibc-0. The other way, a close started on ibc-0 is confirmed on NEAR (proven
//! from ibc-0's state, judged by the contract's Tendermint client).

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_pair.rs"]
#[allow(dead_code)]
mod near_pair;

#[path = "common/near_route.rs"]
#[allow(dead_code)]
mod near_route;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ibc_proto::ibc::core::channel::v1::State as ChanState;
use near_pair::NearPair;
use near_route::{configure, open_channel_route, Route, ShowLog};
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::rpc::NearRpc;
use serde_json::{json, Value};
use support::chain::{Chain, Wallet};
use support::light::any;
use support::packet::{PING_PORT, PING_VERSION};

use common::eventually;

const BLOCK_TIME: Duration = Duration::from_millis(200);

/// `relayd query channel` of one end, as JSON.
async fn channel(pair: &NearPair, chain: &str, channel: &str) -> Value {
    pair.json(&["query", "channel", chain, PING_PORT, channel])
        .await
}

/// The sequences with a packet commitment on ibc-0's ping channel `channel`.
async fn commitments(pair: &NearPair, channel: &str) -> Value {
    pair.json(&[
        "query",
        "packet",
        "commitments",
        "ibc-0",
        PING_PORT,
        channel,
    ])
    .await["sequences"]
        .clone()
}

/// Whether the end `channel` on `chain` is in `state`.
async fn is(pair: &NearPair, chain: &str, channel_id: &str, state: ChanState) -> bool {
    channel(pair, chain, channel_id).await["channel"]["state"] == state.as_str_name()
}

/// `relayd tx chan-close` of the ping end `channel_id` on `chain`, which must succeed and leave that end CLOSED.
async fn close(pair: &NearPair, chain: &str, channel_id: &str) {
    let closed = pair
        .json(&[
            "tx",
            "chan-close",
            "--chain",
            chain,
            "--port",
            PING_PORT,
            "--channel",
            channel_id,
        ])
        .await;
    assert_eq!(closed["channel"], channel_id);
    eventually(&format!("{chain}'s end is closed"), || async {
        is(pair, chain, channel_id, ChanState::Closed).await
    })
    .await;
}

/// Opens a ping channel between ibc-0 and NEAR and configures it as relayd's path; both ends are OPEN.
async fn ping_route(pair: &NearPair) -> Route {
    pair.vouch(5).await;
    let route = open_channel_route(pair, PING_PORT, PING_VERSION).await;
    configure(pair, &route);
    assert!(is(pair, "ibc-0", &route.cosmos.2, ChanState::Open).await);
    // NEAR answers reads at its final head, a few blocks behind the ChanOpenConfirm `create channel` waited for.
    eventually("NEAR's end is open", || async {
        is(pair, &pair.near_id, &route.near.2, ChanState::Open).await
    })
    .await;
    route
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closed_on_near_is_confirmed_closed_on_cosmos_by_the_running_relayer() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    let route = ping_route(&pair).await;
    let log = pair.dir.path().join("relayd.log");
    let mut relayd = common::start(&pair.config, &log);
    let _show = ShowLog(log.clone());

    close(&pair, &pair.near_id, &route.near.2).await;
    eventually("relayd confirms the close on ibc-0", || async {
        is(&pair, "ibc-0", &route.cosmos.2, ChanState::Closed).await
    })
    .await;
    // Both ends stay closed, and NEAR's still names ibc-0's end as its counterparty.
    let near_end = channel(&pair, &pair.near_id, &route.near.2).await;
    assert_eq!(
        near_end["channel"]["state"],
        ChanState::Closed.as_str_name()
    );
    assert_eq!(
        near_end["channel"]["counterparty"]["channelId"],
        route.cosmos.2.as_str()
    );

    relayd.kill().unwrap();
    relayd.wait().unwrap();
    pair.near.shutdown().await;
}

/// The other way: closed on ibc-0, the close is confirmed on NEAR (ChanCloseConfirm proven from ibc-0's state,
/// judged by the NEAR contract's Tendermint client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closed_on_cosmos_is_confirmed_closed_on_near_by_the_running_relayer() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    let route = ping_route(&pair).await;
    let log = pair.dir.path().join("relayd.log");
    let mut relayd = common::start(&pair.config, &log);
    let _show = ShowLog(log.clone());

    close(&pair, "ibc-0", &route.cosmos.2).await;
    eventually("relayd confirms the close on NEAR", || async {
        is(&pair, &pair.near_id, &route.near.2, ChanState::Closed).await
    })
    .await;

    relayd.kill().unwrap();
    relayd.wait().unwrap();
    pair.near.shutdown().await;
}

/// A ping from ibc-0 to NEAR, sent and followed by the close of NEAR's end while relayd is stopped: on start
/// relayd confirms the close on ibc-0 and times the ping out on close, proving from NEAR state that NEAR's end is
/// closed and never received it; ibc-0 then holds no commitment for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_in_flight_when_near_closes_is_timed_out_on_close_from_near_proofs() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    let route = ping_route(&pair).await;
    let cosmos = Chain::connect(&pair.cosmos[0]);
    let user = Wallet::genesis(&pair.cosmos[0], "user1");
    // Far in the future: only the close can end this packet, not its timeout.
    let timeout = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(3600);
    let ping = devnet::app::ping::MsgSendPing {
        source_port: PING_PORT.to_owned(),
        source_channel: route.cosmos.2.clone(),
        data: b"are you there".to_vec(),
        timeout_revision_number: 0,
        timeout_revision_height: 0,
        timeout_timestamp: u64::try_from(timeout.as_nanos()).unwrap(),
        sender: user.address.clone(),
    };
    let sent = cosmos
        .submit(
            &user,
            &[any(devnet::app::ping::MSG_SEND_PING_TYPE_URL, &ping)],
        )
        .await;
    assert_eq!(sent.code, 0, "the ping was refused: {}", sent.log);
    let sequence: u64 = sent
        .attr("send_packet", "packet_sequence")
        .expect("a sent packet")
        .parse()
        .unwrap();
    assert_eq!(commitments(&pair, &route.cosmos.2).await, json!([sequence]));
    close(&pair, &pair.near_id, &route.near.2).await;

    let log = pair.dir.path().join("relayd.log");
    let mut relayd = common::start(&pair.config, &log);
    let _show = ShowLog(log.clone());
    eventually("relayd confirms the close on ibc-0", || async {
        is(&pair, "ibc-0", &route.cosmos.2, ChanState::Closed).await
    })
    .await;
    eventually("the ping is timed out on close", || async {
        commitments(&pair, &route.cosmos.2).await == json!([])
    })
    .await;
    // Gone without a receipt on NEAR: timed out, not received and acknowledged.
    let near = NearEndpoint::new(
        NearRpc::new(&pair.near_id, &pair.near.rpc_url()),
        pair.contract.parse().unwrap(),
    );
    let receipt = near
        .query_ibc(
            &path::receipt(PING_PORT, &route.near.2, sequence),
            QueryHeight::Latest,
            false,
        )
        .await
        .unwrap();
    assert!(receipt.value.is_empty(), "NEAR has a receipt: {receipt:?}");

    relayd.kill().unwrap();
    relayd.wait().unwrap();
    pair.near.shutdown().await;
}
