//! The push mode's WebSocket: connecting and subscribing to `NewBlock` within a deadline, reading its
//! notifications, and giving the connection up as a whole.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tendermint_rpc::event::{Event, EventData};
use tendermint_rpc::query::EventType;
use tendermint_rpc::{SubscriptionClient, WebSocketClient, WebSocketClientUrl};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// A live WebSocket subscription; dropping it aborts the driver, which closes the socket.
pub(super) struct WsConn {
    pub(super) subscription: tendermint_rpc::Subscription,
    // Never used after subscribing, but dropping it would close the driver's command channel early; the
    // connection is given up as a whole, driver first.
    _client: WebSocketClient,
    driver: DriverTask,
}

/// The WebSocket driver task, aborted when the connection is given up, so that a half-open socket cannot
/// linger until the driver's own 30 s receive timeout.
pub(super) struct DriverTask(JoinHandle<Result<(), tendermint_rpc::Error>>);

impl WsConn {
    /// Why the driver ended, if it has: the subscription only says that it ended.
    pub(super) fn driver_error(&mut self) -> Option<String> {
        match (&mut self.driver.0).now_or_never()? {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("driver task: {e}")),
        }
    }
}

impl Drop for DriverTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) type Connecting = Pin<Box<dyn Future<Output = Result<WsConn, String>> + Send>>;

/// The height a `NewBlock` notification announces.
pub(super) fn new_block_height(event: &Event) -> Option<u64> {
    match &event.data {
        EventData::NewBlock { block, .. } | EventData::LegacyNewBlock { block, .. } => {
            block.as_ref().map(|b| b.header.height.value())
        }
        _ => None,
    }
}

pub(super) async fn next_event(
    ws: &mut Option<WsConn>,
) -> Option<Result<Event, tendermint_rpc::Error>> {
    match ws {
        Some(conn) => conn.subscription.next().await,
        // The select arm is disabled without a connection; never resolve.
        None => std::future::pending().await,
    }
}

pub(super) async fn poll_connecting(connecting: &mut Option<Connecting>) -> Result<WsConn, String> {
    match connecting {
        Some(fut) => fut.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Opens a WebSocket and subscribes to `NewBlock`, all within `deadline`.
pub(super) async fn connect_ws(
    url: WebSocketClientUrl,
    compat: tendermint_rpc::client::CompatMode,
    deadline: Duration,
) -> Result<WsConn, String> {
    let attempt = async {
        let (client, driver) = WebSocketClient::builder(url)
            .compat_mode(compat)
            .build()
            .await
            .map_err(|e| format!("WebSocket connect: {e}"))?;
        let driver = DriverTask(tokio::spawn(driver.run()));
        let subscription = client
            .subscribe(EventType::NewBlock.into())
            .await
            .map_err(|e| format!("subscribe to NewBlock: {e}"))?;
        Ok(WsConn {
            subscription,
            _client: client,
            driver,
        })
    };
    timeout(deadline, attempt)
        .await
        .map_err(|_| format!("WebSocket connect and subscribe took longer than {deadline:?}"))?
}
