//! The HandshakeBuilder's actix shell: runs the pure machine of `state` and performs its effects.

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::connection::v1 as conn;
use prost::Message;
use relayd_messages::{
    BuilderExited, ChainAdvanced, ChainId, ClientId, CorrelationId, Datagram, ErrorKind,
    InjectPanic, LifecycleChanged, RelayError, RelayObject, SubmitTx, Supersede,
};
use tracing::{debug, info, warn, Instrument, Span};

use super::datagrams::{self, ClientProofs, HandshakeProofs};
use super::locate::{
    channel_end, connection_end, existing_connection, link, missing, undecodable, Handshake, Kind,
};
use crate::chain::endpoint::path;
use crate::chain_link::ChainLink;
use crate::handshake_builder::state::{self as machine, Effect, EndState, Input, Phase, Side};
use crate::meter::MeteredRecipient;
use crate::packet_builder::proving::{Expect, Prover};
use crate::packet_builder::BuilderGuard;
use crate::supervisor::guard::{injected_panic, install_panic_hook};

/// Failed reads or submissions before a handshake builder gives up.
const MAX_FAILURES: u32 = 8;

/// Both ends as last read.
#[derive(Debug, Clone, Default)]
struct Ends {
    conns: [Option<conn::ConnectionEnd>; 2],
    chans: [Option<chan::Channel>; 2],
}

impl Ends {
    fn state(&self, kind: Kind, i: usize) -> EndState {
        match kind {
            Kind::Connection => self.conns[i]
                .as_ref()
                .map_or(EndState::Absent, |e| EndState::from_proto(e.state)),
            Kind::Channel => self.chans[i]
                .as_ref()
                .map_or(EndState::Absent, |e| EndState::from_proto(e.state)),
        }
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// What every handshake builder shares.
#[derive(Clone)]
pub struct HandshakeEnv {
    /// Every relayed chain's actors.
    pub links: HashMap<ChainId, ChainLink>,
    /// Exits go to the coordinator.
    pub exits: MeteredRecipient<BuilderExited>,
    /// Lifecycle changes go to the coordinator (and from there to subscribers).
    pub lifecycle: MeteredRecipient<LifecycleChanged>,
}

/// The HandshakeBuilder actor.
pub struct HandshakeBuilder {
    handshake: Handshake,
    object: RelayObject,
    generation: u64,
    correlation: CorrelationId,
    env: HandshakeEnv,
    state: machine::HandshakeState,
    ends: Ends,
    span: Span,
    guard: BuilderGuard,
}

/// What a job reports back.
type Job<T> = Result<T, RelayError>;

impl HandshakeBuilder {
    /// The `generation`-th builder of `handshake`, started by `event` on one of its ends.
    pub fn new(
        handshake: Handshake,
        event: relayd_messages::HandshakeState,
        object: RelayObject,
        generation: u64,
        correlation: CorrelationId,
        env: HandshakeEnv,
    ) -> Self {
        install_panic_hook();
        let span = tracing::info_span!("handshake_builder", object = %object, correlation = %correlation, generation);
        Self {
            guard: BuilderGuard {
                object: object.clone(),
                generation,
                exits: env.exits.clone(),
                finished: false,
            },
            handshake,
            object,
            generation,
            correlation,
            env,
            state: machine::HandshakeState::after(event, MAX_FAILURES),
            ends: Ends::default(),
            span,
        }
    }

    fn feed(&mut self, input: Input, ctx: &mut Context<Self>) {
        let before = self.state.phase.clone();
        let (state, effects) = machine::step(self.state.clone(), input);
        self.state = state;
        if self.state.phase != before {
            self.report();
        }
        for effect in effects {
            self.run(effect, ctx);
        }
    }

    fn report(&self) {
        let (state, error) = match &self.state.phase {
            Phase::Submitting(side, d) => (
                format!(
                    "submitting {} to {}",
                    d.name(),
                    self.handshake.end(*side).chain
                ),
                None,
            ),
            Phase::Failed(why) => ("failed".to_owned(), Some(why.clone())),
            Phase::Done => (
                format!(
                    "{}:{}/{}",
                    self.ends.state(self.handshake.kind, index(Side::A)).name(),
                    self.handshake.b.chain,
                    self.handshake.b.id
                ),
                None,
            ),
            other => (other.name().to_owned(), None),
        };
        debug!(parent: &self.span, %state, "handshake state changed");
        let change = LifecycleChanged {
            object: self.object.clone(),
            generation: self.generation,
            correlation: self.correlation,
            state,
            tx_hash: None,
            error,
            is_final: self.state.phase.is_final(),
        };
        if let Err(actix::dev::SendError::Full(change)) = self.env.lifecycle.try_send(change) {
            self.env.lifecycle.do_send(change);
        }
    }

    fn run(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::ReadEnds => {
                let links = self.env.links.clone();
                let h = self.handshake.clone();
                let correlation = self.correlation;
                let job = async move { read_ends(&links, &h, correlation).await };
                ctx.spawn(
                    actix::fut::wrap_future::<_, Self>(job.instrument(self.span.clone())).map(
                        |result: Job<(Ends, String)>, act, ctx| match result {
                            Ok((ends, b_id)) => {
                                if act.handshake.b.id.is_empty() {
                                    act.handshake.b.id = b_id;
                                }
                                let kind = act.handshake.kind;
                                let (a, b) = (ends.state(kind, 0), ends.state(kind, 1));
                                act.ends = ends;
                                act.feed(Input::EndsRead { a, b }, ctx);
                            }
                            Err(e) => act.failed(e, ctx),
                        },
                    ),
                );
            }
            Effect::Send(on, d) => {
                let links = self.env.links.clone();
                let h = self.handshake.clone();
                let ends = self.ends.clone();
                let correlation = self.correlation;
                let job = async move { send(&links, &h, &ends, on, d, correlation).await };
                ctx.spawn(
                    actix::fut::wrap_future::<_, Self>(job.instrument(self.span.clone())).map(
                        move |result: Job<String>, act, ctx| match result {
                            Ok(tx) => {
                                info!(parent: &act.span, datagram = d.name(), to = %act.handshake.end(on).chain, %tx, "handshake datagram landed");
                                act.feed(Input::Submitted, ctx);
                            }
                            Err(e) => act.failed(e, ctx),
                        },
                    ),
                );
            }
            Effect::Finish => {
                match &self.state.phase {
                    Phase::Failed(why) => {
                        warn!(parent: &self.span, reason = %why, "handshake builder gave up")
                    }
                    _ => {
                        info!(parent: &self.span, a = %self.handshake.a.id, b = %self.handshake.b.id, "handshake complete")
                    }
                }
                self.exit(ctx);
            }
        }
    }

    fn failed(&mut self, e: RelayError, ctx: &mut Context<Self>) {
        debug!(parent: &self.span, error = %e, "handshake step failed");
        let input = Input::Failed {
            retryable: e.is_retryable() || e.kind == ErrorKind::Rejected,
            already_done: e.kind == ErrorKind::AlreadyRelayed,
            reason: e.to_string(),
        };
        self.feed(input, ctx);
        if self.state.phase == Phase::Waiting {
            // Blocks also wake it; the timer covers chains that are quiet.
            let delay = crate::retry::linear(
                Duration::from_millis(200),
                Duration::from_secs(2),
                self.state.failures,
            );
            ctx.run_later(delay, |act, ctx| act.feed(Input::NewBlock, ctx));
        }
    }

    fn exit(&mut self, ctx: &mut Context<Self>) {
        self.guard.finished = true;
        let exited = BuilderExited {
            object: self.object.clone(),
            generation: self.generation,
            finished: true,
        };
        if let Err(actix::dev::SendError::Full(m)) = self.env.exits.try_send(exited) {
            self.env.exits.do_send(m);
        }
        ctx.stop();
    }
}

async fn read_ends(
    links: &HashMap<ChainId, ChainLink>,
    h: &Handshake,
    correlation: CorrelationId,
) -> Job<(Ends, String)> {
    let la = link(links, &h.a.chain)?;
    let lb = link(links, &h.b.chain)?;
    let mut ends = Ends::default();
    let mut b_id = h.b.id.clone();
    match h.kind {
        Kind::Connection => {
            let a = connection_end(la, correlation, &h.a.id).await?;
            if b_id.is_empty() {
                b_id = a
                    .as_ref()
                    .and_then(|e| e.counterparty.as_ref())
                    .map(|c| c.connection_id.clone())
                    .unwrap_or_default();
            }
            if !b_id.is_empty() {
                ends.conns[1] = connection_end(lb, correlation, &b_id).await?;
            }
            ends.conns[0] = a;
        }
        Kind::Channel => {
            let a = channel_end(la, correlation, &h.a.port, &h.a.id).await?;
            if b_id.is_empty() {
                b_id = a
                    .as_ref()
                    .and_then(|e| e.counterparty.as_ref())
                    .map(|c| c.channel_id.clone())
                    .unwrap_or_default();
            }
            if !b_id.is_empty() {
                ends.chans[1] = channel_end(lb, correlation, &h.b.port, &b_id).await?;
            }
            ends.chans[0] = a;
        }
    }
    Ok((ends, b_id))
}

/// Proves `end_path` of `from` (and, with `client`, that client's state and latest consensus state) for `to`'s
/// client `to_client` at the heights the proof-height rule picks, then returns the checked proofs with the client
/// update the receiving chain needs first.
async fn prove(
    from: &ChainLink,
    to: &ChainLink,
    to_client: &ClientId,
    end_path: String,
    client: Option<&str>,
    correlation: CorrelationId,
) -> Job<(HandshakeProofs, (ClientId, u64, Vec<Datagram>))> {
    let (prover, end) = Prover::start(correlation, (from, to, to_client), &end_path, 0).await?;
    let mut proven = vec![(end_path, end)];
    let mut client_state = None;
    if let Some(c) = client {
        let state_path = path::client_state(c);
        let state = prover.read(&state_path).await?;
        let any = Any::decode(state.value.as_slice())
            .map_err(|e| undecodable(&from.chain, "client state", e))?;
        let latest = datagrams::client_latest_height(&any).ok_or_else(|| {
            RelayError::new(
                ErrorKind::Unverified,
                format!(
                    "{}: {c} is neither a Tendermint nor a NEAR client ({})",
                    from.chain, any.type_url
                ),
            )
        })?;
        let cons_path = path::consensus_state(c, latest.revision_number, latest.revision_height);
        let cons = prover.read(&cons_path).await?;
        proven.push((state_path, state));
        proven.push((cons_path, cons));
        client_state = Some((any, latest));
    }
    if let Some((p, _)) = proven.iter().find(|(_, v)| v.value.is_empty()) {
        return Err(missing(&from.chain, p));
    }
    let expects: Vec<Expect<'_>> = proven
        .iter()
        .map(|(p, v)| Expect {
            path: p,
            proven: v,
            value: Some(&v.value),
        })
        .collect();
    let update = prover.verify(&expects).await?;
    let mut proofs = proven.into_iter().map(|(_, v)| v.proof.unwrap_or_default());
    let end_proof = proofs.next().unwrap_or_default();
    let client = client_state.map(|(state, consensus_height)| ClientProofs {
        state,
        state_proof: proofs.next().unwrap_or_default(),
        consensus_proof: proofs.next().unwrap_or_default(),
        consensus_height,
    });
    let out = HandshakeProofs {
        end: end_proof,
        client,
        proof_height: datagrams::height(from.chain.revision_number(), update.target),
    };
    Ok((out, (to_client.clone(), update.target, update.msgs)))
}

fn client_id(id: &str) -> Job<ClientId> {
    ClientId::new(id.to_owned()).map_err(|e| RelayError::new(ErrorKind::Unverified, e.to_string()))
}

/// Builds datagram `d` for end `on`, proving the other end, and submits it there.
async fn send(
    links: &HashMap<ChainId, ChainLink>,
    h: &Handshake,
    ends: &Ends,
    on: Side,
    d: machine::Datagram,
    correlation: CorrelationId,
) -> Job<String> {
    use machine::Datagram as D;
    let (to_end, from_end) = (h.end(on), h.end(on.other()));
    let (to, from) = (link(links, &to_end.chain)?, link(links, &from_end.chain)?);
    let (ti, fi) = (index(on), index(on.other()));
    let (msg, update) = match h.kind {
        Kind::Connection => {
            let from_conn = ends.conns[fi]
                .as_ref()
                .ok_or_else(|| missing(&from.chain, "connection end"))?;
            // The receiving end's client of the proving chain: named by the proving end's counterparty.
            let to_client = client_id(
                &from_conn
                    .counterparty
                    .as_ref()
                    .map(|c| c.client_id.clone())
                    .unwrap_or_default(),
            )?;
            let with_client =
                matches!(d, D::OpenTry | D::OpenAck).then_some(from_conn.client_id.as_str());
            let (proofs, update) = prove(
                from,
                to,
                &to_client,
                path::connection(&from_end.id),
                with_client,
                correlation,
            )
            .await?;
            let msg = match d {
                D::OpenTry => datagrams::conn_open_try(
                    &from_end.id,
                    from_conn,
                    &from.prefix,
                    proofs,
                    &to.signer,
                ),
                D::OpenAck => datagrams::conn_open_ack(
                    &to_end.id,
                    &from_end.id,
                    from_conn,
                    proofs,
                    &to.signer,
                ),
                D::OpenConfirm => {
                    Some(datagrams::conn_open_confirm(&to_end.id, proofs, &to.signer))
                }
                D::CloseConfirm => None,
            };
            (msg, update)
        }
        Kind::Channel => {
            let from_chan = ends.chans[fi]
                .as_ref()
                .ok_or_else(|| missing(&from.chain, "channel end"))?;
            // The receiving end's connection: its own hop once it exists, else the counterparty of the proving
            // end's connection.
            let to_connection = match &ends.chans[ti] {
                Some(c) => c.connection_hops.first().cloned().unwrap_or_default(),
                None => {
                    let hop = from_chan
                        .connection_hops
                        .first()
                        .cloned()
                        .unwrap_or_default();
                    let c = existing_connection(from, correlation, &hop).await?;
                    let there = c.counterparty.map(|c| c.connection_id).unwrap_or_default();
                    if there.is_empty() {
                        return Err(RelayError::new(
                            ErrorKind::Unavailable,
                            format!(
                                "{}: {hop} does not name its counterparty connection yet (its handshake has not reached {})",
                                from.chain, to.chain
                            ),
                        ));
                    }
                    there
                }
            };
            let to_conn = existing_connection(to, correlation, &to_connection).await?;
            let to_client = client_id(&to_conn.client_id)?;
            let (proofs, update) = prove(
                from,
                to,
                &to_client,
                path::channel(&from_end.port, &from_end.id),
                None,
                correlation,
            )
            .await?;
            let signer = &to.signer;
            let msg = match d {
                D::OpenTry => datagrams::chan_open_try(
                    &to_end.port,
                    &to_connection,
                    &from_end.port,
                    &from_end.id,
                    from_chan,
                    proofs,
                    signer,
                ),
                D::OpenAck => datagrams::chan_open_ack(
                    &to_end.port,
                    &to_end.id,
                    &from_end.id,
                    from_chan,
                    proofs,
                    signer,
                ),
                D::OpenConfirm => {
                    datagrams::chan_open_confirm(&to_end.port, &to_end.id, proofs, signer)
                }
                D::CloseConfirm => {
                    datagrams::chan_close_confirm(&to_end.port, &to_end.id, proofs, signer)
                }
            };
            (Some(msg), update)
        }
    };
    let msg = msg.ok_or_else(|| {
        RelayError::new(
            ErrorKind::Rejected,
            format!(
                "{} cannot be built from what {} holds",
                d.name(),
                from.chain
            ),
        )
    })?;
    let report = to
        .submit(SubmitTx {
            correlation,
            update: Some(update),
            datagrams: vec![msg],
            // Handshakes are rare and block whole paths: ahead of packets.
            priority: u8::MAX,
            ordered_channel: None,
        })
        .await?;
    Ok(report.tx_hash)
}

impl Actor for HandshakeBuilder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        self.report();
        self.run(Effect::ReadEnds, ctx);
    }
}

impl Handler<ChainAdvanced> for HandshakeBuilder {
    type Result = ();

    fn handle(&mut self, msg: ChainAdvanced, ctx: &mut Self::Context) {
        if msg.chain == self.handshake.a.chain || msg.chain == self.handshake.b.chain {
            self.feed(Input::NewBlock, ctx);
        }
    }
}

impl Handler<Supersede> for HandshakeBuilder {
    type Result = ();

    fn handle(&mut self, _: Supersede, ctx: &mut Self::Context) {
        debug!(parent: &self.span, "superseded by a builder for a later state");
        self.exit(ctx);
    }
}

impl Handler<InjectPanic> for HandshakeBuilder {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        injected_panic(relayd_messages::ActorKind::PacketBuilder);
    }
}
