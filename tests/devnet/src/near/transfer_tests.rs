//! The NEAR devnet's ICS-20 over its ledger: sends through the contract's `deliver` escrow NEAR-native tokens and
//! burn vouchers, ibc-rs's packet callbacks mint vouchers, release escrow and refund, and every balance reaches the
//! contract storage the `ft_balance_of` view reads. The channel a handshake would open is written into the store
//! directly (a counterparty that could prove a handshake is outside this module).

use std::collections::BTreeMap;
use std::time::Duration;

use ibc::apps::transfer::types::packet::PacketData;
use ibc::apps::transfer::types::{ack_success_b64, PrefixedCoin};
use ibc::clients::tendermint::consensus_state::ConsensusState as TmConsensusState;
use ibc::clients::tendermint::types::{
    AllowUpdate, ClientState as TmClientStateType, ConsensusState as TmConsensusStateType,
    TrustThreshold,
};
use ibc::core::channel::types::acknowledgement::{
    Acknowledgement, AcknowledgementStatus, StatusValue,
};
use ibc::core::channel::types::channel::{ChannelEnd, Counterparty, Order, State};
use ibc::core::channel::types::packet::Packet;
use ibc::core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc::core::channel::types::Version;
use ibc::core::client::context::ClientExecutionContext;
use ibc::core::client::types::Height;
use ibc::core::commitment_types::commitment::{CommitmentPrefix, CommitmentRoot};
use ibc::core::commitment_types::specs::ProofSpecs;
use ibc::core::connection::types::version::Version as ConnVersion;
use ibc::core::connection::types::{
    ConnectionEnd, Counterparty as ConnCounterparty, State as ConnState,
};
use ibc::core::host::types::identifiers::{ChainId, ChannelId, ClientId, ConnectionId, PortId};
use ibc::core::host::types::path::{
    ChannelEndPath, ClientConsensusStatePath, ClientStatePath, CommitmentPath, ConnectionPath,
    SeqSendPath,
};
use ibc::core::host::ExecutionContext;
use ibc::core::primitives::Signer;
use ibc::core::router::module::Module;
use ibc_proto::google::protobuf::Any;
use prost::Message;

use super::*;
use crate::clients::{AnyClientState, AnyConsensusState};
use crate::near::ibc::{
    ContractStorage, IbcContract, ERR_DELIVER_MESSAGE_LOG, MSG_TRANSFER_TYPE_URL,
};
use crate::near::ledger::GENESIS_TOKENS;

const WRAP: &str = "wrap.devnet";
/// Seconds since the epoch of the counterparty's consensus state; the host runs 100 s later.
const COSMOS_TIME: i64 = 1_700_000_000;
const COSMOS_USER: &str = "cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu";

fn contract_id() -> AccountId {
    "ibc.devnet".parse().unwrap()
}

fn user() -> AccountId {
    "user0.devnet".parse().unwrap()
}

fn genesis_wrap() -> u128 {
    GENESIS_TOKENS.iter().find(|(d, _)| *d == WRAP).unwrap().1
}

fn escrow() -> String {
    escrow_account("transfer", "channel-0", &contract_id())
}

/// A contract at block 1 whose `transfer/channel-0` is open to `transfer/channel-7` of chain `ibc-0`, tracked by an
/// active Tendermint client.
fn open_channel() -> (IbcContract, BTreeMap<Vec<u8>, Vec<u8>>) {
    open_channel_on(PortId::transfer(), "ics20-1")
}

/// A contract at block 1 whose `{port}/channel-0` (of `version`) is open to `{port}/channel-7` of chain `ibc-0`,
/// tracked by an active Tendermint client.
fn open_channel_on(port: PortId, version: &str) -> (IbcContract, BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut contract = IbcContract::new(contract_id());
    let other: AccountId = "user1.devnet".parse().unwrap();
    contract.fund_genesis([&user(), &other]);
    let mut state = BTreeMap::new();
    contract.commit(&mut state);
    contract.begin_block(
        1,
        (COSMOS_TIME as u64 + 100) * 1_000_000_000,
        [0; 32],
        [0; 32],
    );

    let client_id: ClientId = "07-tendermint-0".parse().unwrap();
    let latest = Height::new(0, 10).unwrap();
    let client = TmClientStateType::new(
        ChainId::new("ibc-0").unwrap(),
        TrustThreshold::ONE_THIRD,
        Duration::from_secs(64_000),
        Duration::from_secs(128_000),
        Duration::from_secs(3),
        latest,
        ProofSpecs::cosmos(),
        vec![],
        AllowUpdate {
            after_expiry: false,
            after_misbehaviour: false,
        },
    )
    .unwrap();
    let consensus = TmConsensusStateType::new(
        CommitmentRoot::from_bytes(&[1; 32]),
        tendermint::Time::from_unix_timestamp(COSMOS_TIME, 0).unwrap(),
        tendermint::Hash::Sha256([2; 32]),
    );
    let connection = ConnectionEnd::new(
        ConnState::Open,
        client_id.clone(),
        ConnCounterparty::new(
            client_id.clone(),
            Some(ConnectionId::new(0)),
            CommitmentPrefix::from(b"ibc".to_vec()),
        ),
        ConnVersion::compatibles(),
        Duration::ZERO,
    )
    .unwrap();
    let channel = ChannelEnd::new(
        State::Open,
        Order::Unordered,
        Counterparty::new(port.clone(), Some(ChannelId::new(7))),
        vec![ConnectionId::new(0)],
        Version::new(version.to_owned()),
    )
    .unwrap();
    let chan = ChannelId::new(0);
    let mut host = contract.host();
    host.store_client_state(
        ClientStatePath::new(client_id.clone()),
        AnyClientState::from(client),
    )
    .unwrap();
    host.store_consensus_state(
        ClientConsensusStatePath::new(client_id, 0, 10),
        AnyConsensusState::Tendermint(TmConsensusState::from(consensus)),
    )
    .unwrap();
    host.store_connection(&ConnectionPath::new(&ConnectionId::new(0)), connection)
        .unwrap();
    host.store_channel(&ChannelEndPath::new(&port, &chan), channel)
        .unwrap();
    host.store_next_sequence_send(&SeqSendPath::new(&port, &chan), 1.into())
        .unwrap();
    (contract, state)
}

fn transfer_msg(sender: &str, denom: &str, amount: u128) -> Any {
    let msg = ibc_proto::ibc::applications::transfer::v1::MsgTransfer {
        source_port: "transfer".to_owned(),
        source_channel: "channel-0".to_owned(),
        token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
            denom: denom.to_owned(),
            amount: amount.to_string(),
        }),
        sender: sender.to_owned(),
        receiver: COSMOS_USER.to_owned(),
        timeout_height: None,
        timeout_timestamp: (COSMOS_TIME as u64 + 3600) * 1_000_000_000,
        memo: String::new(),
    };
    Any {
        type_url: MSG_TRANSFER_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// A packet `transfer/channel-7 → transfer/channel-0` (received here) or back (sent from here).
fn packet(incoming: bool, denom: &str, amount: u128, sender: &str, receiver: &str) -> Packet {
    let data = PacketData {
        token: PrefixedCoin {
            denom: denom.parse().unwrap(),
            amount: amount.to_string().parse().unwrap(),
        },
        sender: Signer::from(sender.to_owned()),
        receiver: Signer::from(receiver.to_owned()),
        memo: String::new().into(),
    };
    let (here, there) = (ChannelId::new(0), ChannelId::new(7));
    let (chan_a, chan_b) = if incoming {
        (there, here)
    } else {
        (here, there)
    };
    Packet {
        seq_on_a: 1.into(),
        port_id_on_a: PortId::transfer(),
        chan_id_on_a: chan_a,
        port_id_on_b: PortId::transfer(),
        chan_id_on_b: chan_b,
        data: serde_json::to_vec(&data).unwrap(),
        timeout_height_on_b: TimeoutHeight::Never,
        timeout_timestamp_on_b: TimeoutTimestamp::Never,
    }
}

fn is_success(ack: &Acknowledgement) -> bool {
    serde_json::from_slice::<AcknowledgementStatus>(ack.as_ref())
        .unwrap()
        .is_successful()
}

fn balance(contract: &mut IbcContract, account: &str, denom: &str) -> u128 {
    contract.transfer_mut().ledger().balance(account, denom)
}

fn view(
    contract: &IbcContract,
    state: &BTreeMap<Vec<u8>, Vec<u8>>,
    method: &str,
    args: serde_json::Value,
) -> serde_json::Value {
    let storage = ContractStorage::new(state, contract.account());
    let out = contract
        .view(&storage, 1, method, args.to_string().as_bytes())
        .unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn a_send_escrows_the_native_tokens_and_the_committed_balances_are_viewable() {
    let (mut contract, mut state) = open_channel();
    let (_, logs) = contract.deliver(1, &user(), vec![transfer_msg(user().as_str(), WRAP, 100)]);
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(
        balance(&mut contract, user().as_str(), WRAP),
        genesis_wrap() - 100
    );
    assert_eq!(balance(&mut contract, &escrow(), WRAP), 100);
    contract.commit(&mut state);

    let storage = ContractStorage::new(&state, contract.account());
    let commitment = CommitmentPath::new(&PortId::transfer(), &ChannelId::new(0), 1.into());
    assert!(storage.get(&commitment.to_string()).is_some());
    let args = |account: &str| serde_json::json!({"account_id": account, "denom": WRAP});
    assert_eq!(
        view(&contract, &state, "ft_balance_of", args(user().as_str())),
        serde_json::json!((genesis_wrap() - 100).to_string())
    );
    assert_eq!(
        view(&contract, &state, "ft_balance_of", args(&escrow())),
        serde_json::json!("100")
    );
    let all = view(
        &contract,
        &state,
        "ft_balances_of",
        serde_json::json!({"account_id": user()}),
    );
    let denoms: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["denom"].as_str().unwrap())
        .collect();
    assert_eq!(denoms, vec!["usdc.devnet", WRAP]);
}

#[test]
fn a_send_for_another_account_or_beyond_the_balance_is_refused_and_moves_nothing() {
    let (mut contract, _) = open_channel();
    let other: AccountId = "user1.devnet".parse().unwrap();
    let (_, logs) = contract.deliver(1, &other, vec![transfer_msg(user().as_str(), WRAP, 100)]);
    assert!(
        logs.iter().any(|l| l.contains("is not the caller")),
        "{logs:?}"
    );
    let (_, logs) = contract.deliver(
        1,
        &user(),
        vec![transfer_msg(user().as_str(), WRAP, genesis_wrap() + 1)],
    );
    assert!(
        logs.iter().any(|l| l.contains("insufficient balance")),
        "{logs:?}"
    );
    let (_, logs) = contract.deliver(
        1,
        &user(),
        vec![transfer_msg(user().as_str(), "nothing.devnet", 1)],
    );
    assert!(
        logs.iter().any(|l| l.contains("insufficient balance")),
        "{logs:?}"
    );
    assert_eq!(
        balance(&mut contract, user().as_str(), WRAP),
        genesis_wrap()
    );
    assert_eq!(balance(&mut contract, &escrow(), WRAP), 0);
}

#[test]
fn a_receive_mints_a_voucher_that_a_send_back_burns() {
    let (mut contract, mut state) = open_channel();
    let relayer = Signer::from("relayer.devnet".to_owned());
    let recv = packet(true, "stake", 50, COSMOS_USER, user().as_str());
    let (_, ack) = contract
        .transfer_mut()
        .on_recv_packet_execute(&recv, &relayer);
    assert!(is_success(&ack.unwrap()));
    let voucher = "transfer/channel-0/stake";
    assert_eq!(balance(&mut contract, user().as_str(), voucher), 50);

    let (_, logs) = contract.deliver(1, &user(), vec![transfer_msg(user().as_str(), voucher, 20)]);
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(balance(&mut contract, user().as_str(), voucher), 30);
    assert_eq!(
        balance(&mut contract, &escrow(), voucher),
        0,
        "burnt, not escrowed"
    );
    contract.commit(&mut state);
    assert_eq!(
        view(
            &contract,
            &state,
            "ft_balance_of",
            serde_json::json!({"account_id": user(), "denom": voucher})
        ),
        serde_json::json!("30")
    );
}

#[test]
fn native_tokens_coming_back_leave_escrow_and_a_bad_receiver_gets_an_error_ack() {
    let (mut contract, _) = open_channel();
    let (_, logs) = contract.deliver(1, &user(), vec![transfer_msg(user().as_str(), WRAP, 100)]);
    assert!(logs.is_empty(), "{logs:?}");
    let relayer = Signer::from("relayer.devnet".to_owned());
    let other = "user1.devnet";
    let back = packet(
        true,
        &format!("transfer/channel-7/{WRAP}"),
        40,
        COSMOS_USER,
        other,
    );
    let (_, ack) = contract
        .transfer_mut()
        .on_recv_packet_execute(&back, &relayer);
    assert!(is_success(&ack.unwrap()));
    assert_eq!(balance(&mut contract, other, WRAP), genesis_wrap() + 40);
    assert_eq!(balance(&mut contract, &escrow(), WRAP), 60);

    let bad = packet(true, "stake", 5, COSMOS_USER, "Not A NEAR Account");
    let (_, ack) = contract
        .transfer_mut()
        .on_recv_packet_execute(&bad, &relayer);
    assert!(!is_success(&ack.unwrap()));
    // More than the escrow holds cannot come back.
    let too_much = packet(
        true,
        &format!("transfer/channel-7/{WRAP}"),
        61,
        COSMOS_USER,
        other,
    );
    let (_, ack) = contract
        .transfer_mut()
        .on_recv_packet_execute(&too_much, &relayer);
    assert!(!is_success(&ack.unwrap()));
    assert_eq!(balance(&mut contract, &escrow(), WRAP), 60);
}

#[test]
fn a_timeout_and_an_error_ack_refund_the_sender_and_a_success_ack_does_not() {
    let (mut contract, _) = open_channel();
    let (_, logs) = contract.deliver(
        1,
        &user(),
        vec![
            transfer_msg(user().as_str(), WRAP, 100),
            transfer_msg(user().as_str(), WRAP, 100),
            transfer_msg(user().as_str(), WRAP, 100),
        ],
    );
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(balance(&mut contract, &escrow(), WRAP), 300);
    let relayer = Signer::from("relayer.devnet".to_owned());
    let sent = packet(false, WRAP, 100, user().as_str(), COSMOS_USER);
    let t = contract.transfer_mut();

    let ok = Acknowledgement::from(AcknowledgementStatus::success(ack_success_b64()));
    t.on_acknowledgement_packet_validate(&sent, &ok, &relayer)
        .unwrap();
    t.on_acknowledgement_packet_execute(&sent, &ok, &relayer)
        .1
        .unwrap();
    assert_eq!(t.ledger().balance(&escrow(), WRAP), 300);

    let err = Acknowledgement::from(AcknowledgementStatus::error(
        StatusValue::new("receiver refused").unwrap(),
    ));
    t.on_acknowledgement_packet_validate(&sent, &err, &relayer)
        .unwrap();
    t.on_acknowledgement_packet_execute(&sent, &err, &relayer)
        .1
        .unwrap();
    assert_eq!(t.ledger().balance(&escrow(), WRAP), 200);

    t.on_timeout_packet_validate(&sent, &relayer).unwrap();
    t.on_timeout_packet_execute(&sent, &relayer).1.unwrap();
    assert_eq!(t.ledger().balance(&escrow(), WRAP), 100);
    assert_eq!(
        t.ledger().balance(user().as_str(), WRAP),
        genesis_wrap() - 100
    );

    // A voucher sent back and timed out is minted back to its sender.
    let voucher = "transfer/channel-0/stake";
    let back = packet(false, voucher, 7, user().as_str(), COSMOS_USER);
    t.on_timeout_packet_execute(&back, &relayer).1.unwrap();
    assert_eq!(t.ledger().balance(user().as_str(), voucher), 7);
}

fn close_init(port: &str) -> Any {
    let msg = ibc_proto::ibc::core::channel::v1::MsgChannelCloseInit {
        port_id: port.to_owned(),
        channel_id: "channel-0".to_owned(),
        signer: user().to_string(),
    };
    Any {
        type_url: "/ibc.core.channel.v1.MsgChannelCloseInit".to_owned(),
        value: msg.encode_to_vec(),
    }
}

fn committed_channel_state(
    contract: &IbcContract,
    state: &BTreeMap<Vec<u8>, Vec<u8>>,
    port: &PortId,
) -> State {
    use ibc::primitives::proto::Protobuf;
    let storage = ContractStorage::new(state, contract.account());
    let key = ChannelEndPath::new(port, &ChannelId::new(0)).to_string();
    *ChannelEnd::decode_vec(storage.get(&key).unwrap())
        .unwrap()
        .state()
}

#[test]
fn a_ping_channel_closes_through_deliver_and_a_transfer_channel_refuses_to() {
    let ping_port: PortId = crate::app::ping::PORT.parse().unwrap();
    let (mut contract, mut state) = open_channel_on(ping_port.clone(), crate::app::ping::VERSION);
    let (events, logs) = contract.deliver(1, &user(), vec![close_init("ping")]);
    assert!(logs.is_empty(), "{logs:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            ibc::core::handler::types::events::IbcEvent::CloseInitChannel(_)
        )),
        "{events:?}"
    );
    contract.commit(&mut state);
    assert_eq!(
        committed_channel_state(&contract, &state, &ping_port),
        State::Closed
    );

    // ICS-20 refuses, as ibc-go's transfer module does: the message is rolled back, the channel stays open.
    let (mut contract, mut state) = open_channel();
    let (events, logs) = contract.deliver(1, &user(), vec![close_init("transfer")]);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        logs.first().map(String::as_str),
        Some(ERR_DELIVER_MESSAGE_LOG)
    );
    contract.commit(&mut state);
    assert_eq!(
        committed_channel_state(&contract, &state, &PortId::transfer()),
        State::Open
    );
}
