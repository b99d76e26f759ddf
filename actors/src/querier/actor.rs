//! The Querier's actix shell: serves state reads with proofs, with a short cache.

use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, Context, Handler, ResponseFuture};
use futures::FutureExt;
use relayd_messages::{
    ActorKind, ChainId, ClientId, ClientSummary, Datagram, ErrorKind, InjectPanic, ObservedEvent,
    Proven, QueryClient, QueryCommitments, QueryPacketEvents, QueryProof, QueryTxMessages,
    QueryUnreceived, RelayError,
};
use tracing::Instrument;

use super::flights::Flights;

use crate::chain::client_state::{consensus_view, summarize};
use crate::chain::endpoint::{path, ChainEndpoint, ChainError, QueryHeight};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// How long a read latest height or client state is reused.
const CACHE_FOR: Duration = Duration::from_millis(150);

/// Most reads in flight to the node at once. Builders ask for thousands of proofs when a backlog is cleared;
/// one connection each would exhaust the file descriptors of relayd (and of the node) while gaining nothing
/// over a node that answers a few dozen at a time.
const MAX_CONCURRENT: usize = 32;

/// Most transaction-index searches in flight at once, apart from [`MAX_CONCURRENT`]. One page of a search holds
/// up to a hundred whole transactions with all their events (a transaction of 500 transfers is about a megabyte
/// of JSON, then as much again decoded), so clearing a thousand channels at once must not hold dozens of pages;
/// a separate bound also keeps these slow reads from taking the permits the builders' proofs wait for.
pub const MAX_SEARCHES: usize = 4;

/// A chain failure as the builders see it.
pub fn chain_error(e: ChainError) -> RelayError {
    let kind = match e {
        ChainError::MissingProof { .. } => ErrorKind::Unverified,
        _ => ErrorKind::Unavailable,
    };
    RelayError::new(kind, e.to_string())
}

/// The Querier actor.
pub struct Querier<E: ChainEndpoint + Clone + Unpin + 'static> {
    chain: ChainId,
    endpoint: E,
    /// The latest height, read once for everyone who asks within [`CACHE_FOR`].
    latest: Flights<(), u64>,
    /// Hosted client states, each read once for everyone who asks within [`CACHE_FOR`].
    clients: Flights<ClientId, ClientSummary>,
    /// Bounds the reads in flight.
    permits: Rc<tokio::sync::Semaphore>,
    /// Bounds the transaction-index searches in flight.
    searches: Rc<tokio::sync::Semaphore>,
    guard: ExitGuard,
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Querier<E> {
    /// A querier over `endpoint`.
    pub fn new(chain: ChainId, endpoint: E, guard: ExitGuard) -> Self {
        Self {
            chain,
            endpoint,
            latest: Flights::new(CACHE_FOR),
            clients: Flights::new(CACHE_FOR),
            permits: Rc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT)),
            searches: Rc::new(tokio::sync::Semaphore::new(MAX_SEARCHES)),
            guard,
        }
    }

    fn span(&self, what: &'static str, correlation: impl std::fmt::Display) -> tracing::Span {
        tracing::debug_span!("querier", chain = %self.chain, what, correlation = %correlation)
    }
}

async fn latest<E: ChainEndpoint + Clone + 'static>(
    endpoint: &E,
    flights: &Flights<(), u64>,
) -> Result<u64, RelayError> {
    let endpoint = endpoint.clone();
    flights
        .get((), move || {
            async move { endpoint.latest_height().await.map_err(chain_error) }.boxed_local()
        })
        .await
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Actor for Querier<E> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.guard.stopped_cleanly();
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<QueryProof> for Querier<E> {
    type Result = ResponseFuture<Result<Proven, RelayError>>;

    fn handle(&mut self, msg: QueryProof, _: &mut Self::Context) -> Self::Result {
        let endpoint = self.endpoint.clone();
        let cache = self.latest.clone();
        let permits = self.permits.clone();
        let span = self.span("proof", msg.correlation);
        Box::pin(
            async move {
                let _permit = permits.acquire().await;
                let height = match msg.height {
                    Some(h) => h,
                    None => latest(&endpoint, &cache).await?,
                };
                endpoint
                    .query_ibc(&msg.path, QueryHeight::At(height), true)
                    .await
                    .map_err(chain_error)
            }
            .instrument(span),
        )
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<QueryClient> for Querier<E> {
    type Result = ResponseFuture<Result<ClientSummary, RelayError>>;

    fn handle(&mut self, msg: QueryClient, _: &mut Self::Context) -> Self::Result {
        let endpoint = self.endpoint.clone();
        let chain = self.chain.clone();
        let permits = self.permits.clone();
        let span = self.span("client", msg.correlation);
        let id = msg.client_id;
        let read = self.clients.get(id.clone(), move || {
            async move {
                let _permit = permits.acquire().await;
                let raw = endpoint
                    .query_ibc(&path::client_state(id.as_str()), QueryHeight::Latest, false)
                    .await
                    .map_err(chain_error)?;
                // No value at the client's path: the chain has no such client (it was never created there, or the
                // chain was reset), which is not a decoding failure.
                if raw.value.is_empty() {
                    return Err(RelayError::new(
                        ErrorKind::NotFound,
                        format!("{chain}: client {id} does not exist"),
                    ));
                }
                let mut summary = summarize(&id, &raw.value).map_err(|e| {
                    RelayError::new(ErrorKind::ClientUnusable, format!("{chain}: {e}"))
                })?;
                let revision =
                    ChainId::new(summary.tracked_chain.clone()).map_or(0, |c| c.revision_number());
                let cons = endpoint
                    .query_ibc(
                        &path::consensus_state(id.as_str(), revision, summary.latest_height),
                        QueryHeight::At(raw.height),
                        false,
                    )
                    .await
                    .map_err(chain_error)?;
                if let Ok(view) = consensus_view(&cons.value) {
                    summary.anchor = Some(view.anchor);
                    summary.consensus_time_ns = view.time_ns;
                }
                Ok(summary)
            }
            .instrument(span)
            .boxed_local()
        });
        Box::pin(read)
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<QueryCommitments> for Querier<E> {
    type Result = ResponseFuture<Result<Vec<u64>, RelayError>>;

    fn handle(&mut self, msg: QueryCommitments, _: &mut Self::Context) -> Self::Result {
        let endpoint = self.endpoint.clone();
        let permits = self.permits.clone();
        let span = self.span("commitments", msg.correlation);
        Box::pin(
            async move {
                let _permit = permits.acquire().await;
                endpoint
                    .packet_commitments(&msg.port, &msg.channel)
                    .await
                    .map_err(chain_error)
            }
            .instrument(span),
        )
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<QueryPacketEvents> for Querier<E> {
    type Result = ResponseFuture<Result<Vec<ObservedEvent>, RelayError>>;

    fn handle(&mut self, msg: QueryPacketEvents, _: &mut Self::Context) -> Self::Result {
        let endpoint = self.endpoint.clone();
        let permits = self.searches.clone();
        let span = self.span("packet_events", msg.correlation);
        Box::pin(
            async move {
                let _permit = permits.acquire().await;
                endpoint
                    .packet_events(msg.kind, &msg.port, &msg.channel, &msg.sequences)
                    .await
                    .map_err(chain_error)
            }
            .instrument(span),
        )
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<QueryTxMessages> for Querier<E> {
    type Result = ResponseFuture<Result<Vec<Datagram>, RelayError>>;

    fn handle(&mut self, msg: QueryTxMessages, _: &mut Self::Context) -> Self::Result {
        let endpoint = self.endpoint.clone();
        let permits = self.searches.clone();
        let span = self.span("tx_messages", msg.correlation);
        Box::pin(
            async move {
                let _permit = permits.acquire().await;
                endpoint
                    .tx_messages(&msg.tx_hash)
                    .await
                    .map_err(chain_error)
            }
            .instrument(span),
        )
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<QueryUnreceived> for Querier<E> {
    type Result = ResponseFuture<Result<Vec<u64>, RelayError>>;

    fn handle(&mut self, msg: QueryUnreceived, _: &mut Self::Context) -> Self::Result {
        let endpoint = self.endpoint.clone();
        let permits = self.permits.clone();
        let span = self.span("unreceived", msg.correlation);
        Box::pin(
            async move {
                let _permit = permits.acquire().await;
                let r = if msg.acks {
                    endpoint
                        .unreceived_acks(&msg.port, &msg.channel, &msg.sequences)
                        .await
                } else {
                    endpoint
                        .unreceived_packets(&msg.port, &msg.channel, &msg.sequences)
                        .await
                };
                r.map_err(chain_error)
            }
            .instrument(span),
        )
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<InjectPanic> for Querier<E> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        injected_panic(ActorKind::Querier);
    }
}
