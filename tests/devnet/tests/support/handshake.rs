//! The two ends of an IBC path and the handshakes between them: clients, ICS-03 connection, ICS-04 channel. Every
//! datagram carries proofs fetched at a height h and proven at h+1 (ADR-002), each verified locally against the
//! light-client-verified header h+1, with the MsgUpdateClient installing that header in the same transaction.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1::{
    Channel, Counterparty as ChanCounterparty, MsgChannelOpenAck, MsgChannelOpenConfirm,
    MsgChannelOpenInit, MsgChannelOpenTry, Order, State as ChanState,
};
use ibc_proto::ibc::core::client::v1::Height;
use ibc_proto::ibc::core::commitment::v1::MerklePrefix;
use ibc_proto::ibc::core::connection::v1::{
    ConnectionEnd, Counterparty as ConnCounterparty, MsgConnectionOpenAck,
    MsgConnectionOpenConfirm, MsgConnectionOpenInit, MsgConnectionOpenTry,
};
use ibc_proto::ibc::lightclients::tendermint::v1::ClientState;
use prost::Message;
use tendermint::validator;

use super::chain::Chain;
use super::light::{any, height, ClientTracker};
use super::proof;

/// One end of a path: the chain, the client there that tracks the other chain, and the ids opened on it.
pub struct End {
    pub chain: Chain,
    pub client: ClientTracker,
    pub connection_id: String,
    pub channel_id: String,
}

/// Values of ICS-24 paths on one chain at one height, proven for another chain's client.
pub struct Proofs {
    /// The values read, in the order of the paths asked for (empty = absent).
    pub values: Vec<Vec<u8>>,
    /// The encoded `MerkleProof`s, in the same order.
    pub proofs: Vec<Vec<u8>>,
    /// Height h+1, whose header's app hash the proofs verify against.
    pub proof_height: Height,
    /// The app hash of the light-client-verified header h+1.
    pub app_hash: Vec<u8>,
    /// The MsgUpdateClient installing header h+1 on the destination, if it was missing; send it first.
    pub updates: Vec<Any>,
}

/// Proves `paths` of `src` as of block `at` (default: latest) for `dst`'s client of `src`. Each proof is
/// verified locally (membership, or non-membership for an absent value) before it is returned.
pub async fn prove(
    src: &Chain,
    dst: &mut End,
    paths: &[String],
    at: Option<u64>,
) -> Result<Proofs, String> {
    let h = match at {
        Some(h) => h,
        None => src.height().await,
    };
    // The header h+1 carries the app hash of the state after block h.
    src.wait_until_height(h + 1).await;
    let (header, updates) = dst.client.header_at(&dst.chain, src, h + 1).await;
    let app_hash = header.signed_header.header.app_hash.as_bytes().to_vec();
    let mut out = Proofs {
        values: Vec::new(),
        proofs: Vec::new(),
        proof_height: height(src, h + 1),
        app_hash: app_hash.clone(),
        updates,
    };
    for path in paths {
        let proven = proof::query(src, path, h).await?;
        let merkle = proven
            .proof
            .ok_or_else(|| format!("{}: no proof for absent {path} at {h}", src.id))?;
        if proven.value.is_empty() {
            proof::verify_non_membership(&merkle, &app_hash, path)?;
        } else {
            proof::verify_membership(&merkle, &app_hash, path, &proven.value)?;
        }
        out.values.push(proven.value);
        out.proofs.push(merkle.encode_to_vec());
    }
    Ok(out)
}

/// Creates a client of each chain on the other; `*_validators` are each chain's genesis validator set.
pub async fn create_clients(
    a: Chain,
    a_validators: &validator::Set,
    b: Chain,
    b_validators: &validator::Set,
) -> (End, End) {
    create_clients_with(a, a_validators, b, b_validators, None).await
}

/// [`create_clients`] with both clients' trusting period set to `trusting` (default: 2/3 of unbonding).
pub async fn create_clients_with(
    a: Chain,
    a_validators: &validator::Set,
    b: Chain,
    b_validators: &validator::Set,
    trusting: Option<std::time::Duration>,
) -> (End, End) {
    let client_on_a = ClientTracker::create_with(&a, &b, b_validators, trusting).await;
    let client_on_b = ClientTracker::create_with(&b, &a, a_validators, trusting).await;
    let end = |chain, client| End {
        chain,
        client,
        connection_id: String::new(),
        channel_id: String::new(),
    };
    (end(a, client_on_a), end(b, client_on_b))
}

fn prefix() -> Option<MerklePrefix> {
    Some(MerklePrefix {
        key_prefix: proof::PREFIX.to_vec(),
    })
}

fn connection_path(id: &str) -> String {
    format!("connections/{id}")
}

fn client_state_path(id: &str) -> String {
    format!("clients/{id}/clientState")
}

fn consensus_state_path(id: &str, h: &Height) -> String {
    format!(
        "clients/{id}/consensusStates/{}-{}",
        h.revision_number, h.revision_height
    )
}

pub fn channel_path(port: &str, channel: &str) -> String {
    format!("channelEnds/ports/{port}/channels/{channel}")
}

/// What `end`'s client of the counterparty looked like after block `h`: the stored `Any` and its latest height.
async fn client_state_at(end: &End, h: u64) -> (Any, Height) {
    let q = end
        .chain
        .query(
            "store/ibc/key",
            client_state_path(&end.client.client_id).into_bytes(),
            Some(h),
            false,
        )
        .await
        .expect("client state");
    let any = Any::decode(q.value.as_slice()).expect("client state any");
    let cs = ClientState::decode(any.value.as_slice()).expect("tendermint client state");
    (any, cs.latest_height.expect("latest height"))
}

/// The proofs ConnOpenTry and ConnOpenAck carry about `src`: its connection end, its client of `dst`, and
/// that client's consensus state at the client's latest height, all read after the same block.
///
/// What ibc-rs 0.57 checks on `dst` with them: all three by membership under the proof height's root; the client
/// state byte for byte as `src` stores it (so it is sent as the stored `Any`); the consensus state byte for byte
/// against `dst`'s own record of its header at `consensus_height` (app hash, time, next validators hash), which
/// must not be above `dst`'s height; and `validate_self_client` on the client state (not frozen, `dst`'s
/// revision, latest height not above `dst`'s height). `host_consensus_state_proof` is not used. The channel
/// handshake steps only prove the counterparty's channel end.
async fn prove_connection_and_client(
    src: &End,
    dst: &mut End,
) -> (Proofs, Any, Height, ConnectionEnd) {
    let h = src.chain.height().await;
    let (client_state, consensus_height) = client_state_at(src, h).await;
    let paths = [
        connection_path(&src.connection_id),
        client_state_path(&src.client.client_id),
        consensus_state_path(&src.client.client_id, &consensus_height),
    ];
    let p = prove(&src.chain, dst, &paths, Some(h))
        .await
        .expect("connection proofs");
    let conn = ConnectionEnd::decode(p.values[0].as_slice()).expect("connection end");
    (p, client_state, consensus_height, conn)
}

/// ConnOpenInit on `a`, Try on `b`, Ack on `a`, Confirm on `b`; fills both ends' connection ids.
pub async fn open_connection(a: &mut End, b: &mut End) {
    let init = MsgConnectionOpenInit {
        client_id: a.client.client_id.clone(),
        counterparty: Some(ConnCounterparty {
            client_id: b.client.client_id.clone(),
            connection_id: String::new(),
            prefix: prefix(),
        }),
        version: None,
        delay_period: 0,
        signer: a.chain.relayer.address.clone(),
    };
    let inc = a
        .chain
        .submit(
            &a.chain.relayer,
            &[any("/ibc.core.connection.v1.MsgConnectionOpenInit", &init)],
        )
        .await;
    a.connection_id = inc
        .attr("connection_open_init", "connection_id")
        .expect("connection id");

    let (p, client_state, consensus_height, conn_a) = prove_connection_and_client(a, b).await;
    #[allow(deprecated)]
    let try_msg = MsgConnectionOpenTry {
        client_id: b.client.client_id.clone(),
        client_state: Some(client_state),
        counterparty: Some(ConnCounterparty {
            client_id: a.client.client_id.clone(),
            connection_id: a.connection_id.clone(),
            prefix: prefix(),
        }),
        delay_period: 0,
        counterparty_versions: conn_a.versions,
        proof_height: Some(p.proof_height),
        proof_init: p.proofs[0].clone(),
        proof_client: p.proofs[1].clone(),
        proof_consensus: p.proofs[2].clone(),
        consensus_height: Some(consensus_height),
        signer: b.chain.relayer.address.clone(),
        ..Default::default()
    };
    let mut msgs = p.updates;
    msgs.push(any(
        "/ibc.core.connection.v1.MsgConnectionOpenTry",
        &try_msg,
    ));
    let inc = b.chain.submit(&b.chain.relayer, &msgs).await;
    b.connection_id = inc
        .attr("connection_open_try", "connection_id")
        .expect("connection id");

    let (p, client_state, consensus_height, conn_b) = prove_connection_and_client(b, a).await;
    let ack = MsgConnectionOpenAck {
        connection_id: a.connection_id.clone(),
        counterparty_connection_id: b.connection_id.clone(),
        version: conn_b.versions.first().cloned(),
        client_state: Some(client_state),
        proof_height: Some(p.proof_height),
        proof_try: p.proofs[0].clone(),
        proof_client: p.proofs[1].clone(),
        proof_consensus: p.proofs[2].clone(),
        consensus_height: Some(consensus_height),
        signer: a.chain.relayer.address.clone(),
        host_consensus_state_proof: Vec::new(),
    };
    let mut msgs = p.updates;
    msgs.push(any("/ibc.core.connection.v1.MsgConnectionOpenAck", &ack));
    a.chain.submit(&a.chain.relayer, &msgs).await;

    let p = prove(&a.chain, b, &[connection_path(&a.connection_id)], None)
        .await
        .expect("connection proof");
    let confirm = MsgConnectionOpenConfirm {
        connection_id: b.connection_id.clone(),
        proof_ack: p.proofs[0].clone(),
        proof_height: Some(p.proof_height),
        signer: b.chain.relayer.address.clone(),
    };
    let mut msgs = p.updates;
    msgs.push(any(
        "/ibc.core.connection.v1.MsgConnectionOpenConfirm",
        &confirm,
    ));
    b.chain.submit(&b.chain.relayer, &msgs).await;
}

/// ChanOpenInit on `a`, Try on `b`, Ack on `a`, Confirm on `b` for an unordered channel between `port` on both
/// sides; fills both ends' channel ids.
pub async fn open_channel(a: &mut End, b: &mut End, port: &str, version: &str) {
    open_channel_with(a, b, port, version, Order::Unordered).await
}

/// [`open_channel`] with the given ordering.
pub async fn open_channel_with(a: &mut End, b: &mut End, port: &str, version: &str, order: Order) {
    let channel = |state: ChanState, hop: &str, counterparty_channel: &str| Channel {
        state: state as i32,
        ordering: order as i32,
        counterparty: Some(ChanCounterparty {
            port_id: port.to_owned(),
            channel_id: counterparty_channel.to_owned(),
        }),
        connection_hops: vec![hop.to_owned()],
        version: version.to_owned(),
        upgrade_sequence: 0,
    };
    let init = MsgChannelOpenInit {
        port_id: port.to_owned(),
        channel: Some(channel(ChanState::Init, &a.connection_id, "")),
        signer: a.chain.relayer.address.clone(),
    };
    let inc = a
        .chain
        .submit(
            &a.chain.relayer,
            &[any("/ibc.core.channel.v1.MsgChannelOpenInit", &init)],
        )
        .await;
    a.channel_id = inc
        .attr("channel_open_init", "channel_id")
        .expect("channel id");

    let p = prove(&a.chain, b, &[channel_path(port, &a.channel_id)], None)
        .await
        .expect("channel proof");
    #[allow(deprecated)]
    let try_msg = MsgChannelOpenTry {
        port_id: port.to_owned(),
        channel: Some(channel(ChanState::Tryopen, &b.connection_id, &a.channel_id)),
        counterparty_version: version.to_owned(),
        proof_init: p.proofs[0].clone(),
        proof_height: Some(p.proof_height),
        signer: b.chain.relayer.address.clone(),
        ..Default::default()
    };
    let mut msgs = p.updates;
    msgs.push(any("/ibc.core.channel.v1.MsgChannelOpenTry", &try_msg));
    let inc = b.chain.submit(&b.chain.relayer, &msgs).await;
    b.channel_id = inc
        .attr("channel_open_try", "channel_id")
        .expect("channel id");

    let p = prove(&b.chain, a, &[channel_path(port, &b.channel_id)], None)
        .await
        .expect("channel proof");
    let ack = MsgChannelOpenAck {
        port_id: port.to_owned(),
        channel_id: a.channel_id.clone(),
        counterparty_channel_id: b.channel_id.clone(),
        counterparty_version: version.to_owned(),
        proof_try: p.proofs[0].clone(),
        proof_height: Some(p.proof_height),
        signer: a.chain.relayer.address.clone(),
    };
    let mut msgs = p.updates;
    msgs.push(any("/ibc.core.channel.v1.MsgChannelOpenAck", &ack));
    a.chain.submit(&a.chain.relayer, &msgs).await;

    let p = prove(&a.chain, b, &[channel_path(port, &a.channel_id)], None)
        .await
        .expect("channel proof");
    let confirm = MsgChannelOpenConfirm {
        port_id: port.to_owned(),
        channel_id: b.channel_id.clone(),
        proof_ack: p.proofs[0].clone(),
        proof_height: Some(p.proof_height),
        signer: b.chain.relayer.address.clone(),
    };
    let mut msgs = p.updates;
    msgs.push(any("/ibc.core.channel.v1.MsgChannelOpenConfirm", &confirm));
    b.chain.submit(&b.chain.relayer, &msgs).await;
}

/// Clients both ways, a connection and an unordered ICS-20 channel between the first two chains: the starting
/// point of every test and benchmark that relays packets.
pub async fn connect_transfer(chains: &[devnet::RunningChain]) -> (End, End) {
    connect_transfer_with(chains, None).await
}

/// [`connect_transfer`] over clients with a trusting period of `trusting`.
pub async fn connect_transfer_with(
    chains: &[devnet::RunningChain],
    trusting: Option<std::time::Duration>,
) -> (End, End) {
    let (mut a, mut b) = create_clients_with(
        Chain::connect(&chains[0]),
        &chains[0].genesis.validator_set(),
        Chain::connect(&chains[1]),
        &chains[1].genesis.validator_set(),
        trusting,
    )
    .await;
    open_connection(&mut a, &mut b).await;
    open_channel(
        &mut a,
        &mut b,
        super::packet::TRANSFER_PORT,
        super::packet::ICS20_VERSION,
    )
    .await;
    (a, b)
}

/// Starts closing `end`'s channel on `port` (MsgChannelCloseInit, signed by `signer`).
pub async fn close_init(end: &End, port: &str, signer: &super::chain::Wallet) {
    let msg = ibc_proto::ibc::core::channel::v1::MsgChannelCloseInit {
        port_id: port.to_owned(),
        channel_id: end.channel_id.clone(),
        signer: signer.address.clone(),
    };
    end.chain
        .submit(
            signer,
            &[any("/ibc.core.channel.v1.MsgChannelCloseInit", &msg)],
        )
        .await;
}

/// The state of `end`'s channel on `port` (ibc.core.channel.v1.State as i32), read from its chain.
pub async fn channel_state(end: &End, port: &str) -> i32 {
    let q = end
        .chain
        .query(
            "store/ibc/key",
            channel_path(port, &end.channel_id).into_bytes(),
            None,
            false,
        )
        .await
        .expect("channel end");
    Channel::decode(q.value.as_slice())
        .expect("a stored channel end")
        .state
}
