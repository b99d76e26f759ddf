//! The admin server's live events: packet lifecycle changes (from the coordinator), actor restarts (seen by
//! comparing the supervisors' restart counts) and clearing-operation updates, fanned out to every `/events`
//! client as Server-Sent Events. A slow client misses events (it is told how many) instead of slowing relaying.

use std::time::Duration;

use actix::{Actor, Context, Handler};
use actix_web::web::Bytes;
use futures::Stream;
use relayd_actors::metrics::Metrics;
use relayd_actors::store::StateStore;
use relayd_messages::{LifecycleChanged, RelayObject};
use serde::Serialize;
use tokio::sync::broadcast;

use super::ops::Operation;

/// Events buffered per client before it starts missing some.
const BUFFER: usize = 1024;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event on `/events`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdminEvent {
    /// A packet changed state.
    Lifecycle {
        /// The packet, `chain/port/channel/sequence`.
        packet: String,
        /// The new state.
        state: String,
        /// The transaction that caused it.
        tx_hash: Option<String>,
        /// The error, for failures and retries.
        error: Option<String>,
        /// Whether the packet is done.
        is_final: bool,
        /// The correlation id of the work on it.
        correlation: String,
    },
    /// A supervised actor was restarted.
    ActorRestarted {
        /// The actor's id (as in `/actors`).
        actor: String,
        /// Its chain.
        chain: String,
        /// Restarts so far.
        restarts: u64,
        /// Why it last failed.
        last_error: Option<String>,
    },
    /// A clearing operation changed.
    Operation(Box<Operation>),
}

impl AdminEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Lifecycle { .. } => "lifecycle",
            Self::ActorRestarted { .. } => "actor_restarted",
            Self::Operation(_) => "operation",
        }
    }
}

/// Where events are published; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<AdminEvent>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
        }
    }
}

impl Hub {
    /// Publishes `event` to every connected client (none is fine).
    pub fn publish(&self, event: AdminEvent) {
        let _ = self.tx.send(event);
    }

    /// An SSE byte stream of every event from now on.
    pub fn sse(&self) -> impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static {
        let rx = self.tx.subscribe();
        let hello = Bytes::from_static(b": relayd events\n\n");
        futures::stream::unfold((rx, Some(hello)), |(mut rx, first)| async move {
            if let Some(first) = first {
                return Some((Ok(first), (rx, None)));
            }
            let chunk = match tokio::time::timeout(KEEP_ALIVE, rx.recv()).await {
                Err(_) => Bytes::from_static(b": keep-alive\n\n"),
                Ok(Ok(event)) => sse_frame(&event),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    Bytes::from(format!("event: lagged\ndata: {{\"missed\":{n}}}\n\n"))
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            };
            Some((Ok(chunk), (rx, None)))
        })
    }
}

/// One event as an SSE frame: `event:` names its type, `data:` is its JSON on one line.
pub fn sse_frame(event: &AdminEvent) -> Bytes {
    let json = serde_json::to_string(event).unwrap_or_else(|e| {
        format!("{{\"type\":\"error\",\"error\":\"unserialisable event: {e}\"}}")
    });
    Bytes::from(format!("event: {}\ndata: {json}\n\n", event.name()))
}

/// Subscribed to the coordinator's lifecycle changes: publishes them and times finished packets.
pub struct LifecycleTap {
    /// Where events go.
    pub hub: Hub,
    /// Records give a packet's detection time.
    pub store: StateStore,
    /// The relay-latency histogram lives here.
    pub metrics: Metrics,
}

impl Actor for LifecycleTap {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<LifecycleChanged> for LifecycleTap {
    type Result = ();

    fn handle(&mut self, msg: LifecycleChanged, _: &mut Self::Context) {
        let RelayObject::Packet(key) = &msg.object else {
            return;
        };
        let families = self.metrics.families();
        families.lifecycle_events_total.inc();
        if msg.packet_state() == Some(relayd_messages::PacketState::Skipped) {
            // The reason is typed in the record; the change carries only its sentence.
            if let Ok(Some(reason)) = self
                .store
                .packet(key)
                .map(|r| r.and_then(|r| r.skip_reason))
            {
                families
                    .packets_skipped_total
                    .with_label_values(&[reason.as_str()])
                    .inc();
            }
        }
        if msg.state == "acknowledged" {
            if let Ok(Some(record)) = self.store.packet(key) {
                let done = record.history.last().map_or(record.updated_ms, |t| t.at_ms);
                let seconds = done.saturating_sub(record.created_ms) as f64 / 1000.0;
                families
                    .relay_latency_seconds
                    .with_label_values(&[key.src_chain.as_str(), key.src_channel.as_str()])
                    .observe(seconds);
            }
        }
        self.hub.publish(AdminEvent::Lifecycle {
            packet: key.to_string(),
            state: msg.state,
            tx_hash: msg.tx_hash,
            error: msg.error,
            is_final: msg.is_final,
            correlation: msg.correlation.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_name_the_event_and_keep_json_on_one_line() {
        let frame = sse_frame(&AdminEvent::ActorRestarted {
            actor: "ibc-0/querier".into(),
            chain: "ibc-0".into(),
            restarts: 2,
            last_error: Some("line one\nline two".into()),
        });
        let text = String::from_utf8(frame.to_vec()).unwrap();
        assert!(text.starts_with("event: actor_restarted\ndata: {"));
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 3, "{text}");
    }
}
