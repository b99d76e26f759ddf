//! The LightClient's actix shell: one request at a time over its chain's light source.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, ResponseFuture};
use relayd_messages::{
    ActorKind, ChainId, ClientUpdate, HeaderAt, InjectPanic, PrepareClientUpdate,
    QueryVerifiedHeader, QueryVerifiedHeads, QueryVerifiedRoot, RelayError, VerifiedHead,
};
use tracing::{debug, warn, Instrument};

use crate::light_client::LightSource;
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// Prepared updates kept for reuse, per (client, trusted height, target).
const UPDATE_CACHE: usize = 64;

type UpdateKey = (String, u64, u64);

/// The LightClient actor.
pub struct LightClient<L: LightSource + 'static> {
    chain: ChainId,
    light: Rc<tokio::sync::Mutex<L>>,
    updates: Rc<RefCell<HashMap<UpdateKey, ClientUpdate>>>,
    refresh_every: Duration,
    guard: ExitGuard,
}

impl<L: LightSource + 'static> LightClient<L> {
    /// A light-client actor over `light`, refreshing its trusted state every `refresh_every`.
    pub fn new(chain: ChainId, light: L, refresh_every: Duration, guard: ExitGuard) -> Self {
        Self {
            chain,
            light: Rc::new(tokio::sync::Mutex::new(light)),
            updates: Rc::new(RefCell::new(HashMap::new())),
            refresh_every,
            guard,
        }
    }
}

impl<L: LightSource + 'static> Actor for LightClient<L> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(self.refresh_every, |act, ctx| {
            let light = act.light.clone();
            let chain = act.chain.clone();
            ctx.spawn(actix::fut::wrap_future(async move {
                match light.lock().await.refresh().await {
                    Ok(h) => debug!(chain = %chain, height = h, "trusted state refreshed"),
                    Err(e) => warn!(chain = %chain, error = %e, "trusted state refresh failed"),
                }
            }));
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.guard.stopped_cleanly();
    }
}

impl<L: LightSource + 'static> Handler<PrepareClientUpdate> for LightClient<L> {
    type Result = ResponseFuture<Result<ClientUpdate, RelayError>>;

    fn handle(&mut self, msg: PrepareClientUpdate, _: &mut Self::Context) -> Self::Result {
        let key = (msg.client_id.to_string(), msg.trusted_height, msg.target);
        if let Some(hit) = self.updates.borrow().get(&key) {
            let hit = hit.clone();
            return Box::pin(async move { Ok(hit) });
        }
        let light = self.light.clone();
        let updates = self.updates.clone();
        let span = tracing::debug_span!("light_client", chain = %self.chain, correlation = %msg.correlation, target = msg.target);
        Box::pin(
            async move {
                let mut light = light.lock().await;
                // Someone may have prepared the same update while this request waited for the lock.
                if let Some(hit) = updates.borrow().get(&key) {
                    return Ok(hit.clone());
                }
                let update = light
                    .prepare_update(
                        msg.client_id.as_str(),
                        msg.trusted_height,
                        msg.anchor.clone(),
                        msg.target,
                        &msg.signer,
                    )
                    .await?;
                let mut cache = updates.borrow_mut();
                if cache.len() >= UPDATE_CACHE {
                    cache.clear();
                }
                cache.insert(key, update.clone());
                Ok(update)
            }
            .instrument(span),
        )
    }
}

impl<L: LightSource + 'static> Handler<QueryVerifiedHeader> for LightClient<L> {
    type Result = ResponseFuture<Result<HeaderAt, RelayError>>;

    fn handle(&mut self, msg: QueryVerifiedHeader, _: &mut Self::Context) -> Self::Result {
        let light = self.light.clone();
        let span = tracing::debug_span!("light_client", chain = %self.chain, correlation = %msg.correlation, header = msg.height);
        Box::pin(
            async move {
                light
                    .lock()
                    .await
                    .verified_header(msg.height, msg.anchor)
                    .await
            }
            .instrument(span),
        )
    }
}

impl<L: LightSource + 'static> Handler<QueryVerifiedHeads> for LightClient<L> {
    type Result = ResponseFuture<Result<Vec<VerifiedHead>, RelayError>>;

    fn handle(&mut self, msg: QueryVerifiedHeads, _: &mut Self::Context) -> Self::Result {
        let light = self.light.clone();
        let span = tracing::debug_span!("light_client", chain = %self.chain, correlation = %msg.correlation, heads_from = msg.from);
        Box::pin(async move { light.lock().await.verified_heads(msg.from).await }.instrument(span))
    }
}

impl<L: LightSource + 'static> Handler<QueryVerifiedRoot> for LightClient<L> {
    type Result = ResponseFuture<Result<Vec<u8>, RelayError>>;

    fn handle(&mut self, msg: QueryVerifiedRoot, _: &mut Self::Context) -> Self::Result {
        let light = self.light.clone();
        let span = tracing::debug_span!("light_client", chain = %self.chain, correlation = %msg.correlation, root_at = msg.height);
        Box::pin(async move { light.lock().await.verified_root(msg.height).await }.instrument(span))
    }
}

impl<L: LightSource + 'static> Handler<InjectPanic> for LightClient<L> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        injected_panic(ActorKind::LightClient);
    }
}
