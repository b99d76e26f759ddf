//! Transaction admission as the Cosmos SDK's ante handler does it: decoding, signer, sequence, signature, fees
//! and gas, with the SDK's error codes and wording where relayers parse them.
//!
//! # Gas model
//!
//! Deterministic, so `simulate` and `deliver_tx` agree for the same state:
//! - [`GAS_PER_TX_BYTE`] per byte of the raw transaction,
//! - [`GAS_PER_SIGNATURE`] for the (single) secp256k1 signature,
//! - per message a flat cost by kind ([`msg_base_gas`]) plus [`GAS_PER_MSG_BYTE`] per byte of its encoding,
//! - per store write (set or delete, in any store: IBC, bank, auth) [`GAS_PER_WRITE`] plus
//!   [`GAS_PER_WRITTEN_BYTE`] per byte of key and value, including the ante handler's fee and sequence writes.

use std::fmt::Write as _;

use cosmrs::proto::cosmos::bank::v1beta1::MsgSend;
use cosmrs::proto::cosmos::tx::signing::v1beta1::SignMode;
use cosmrs::proto::cosmos::tx::v1beta1::mode_info::Sum;
use cosmrs::proto::cosmos::tx::v1beta1::{AuthInfo, SignDoc, TxBody, TxRaw};
use ibc::apps::transfer::types::msgs::transfer::MsgTransfer;
use ibc::core::channel::types::msgs::{ChannelMsg, PacketMsg};
use ibc::core::client::types::msgs::ClientMsg;
use ibc::core::connection::types::msgs::ConnectionMsg;
use ibc::core::handler::types::msgs::MsgEnvelope;
use ibc_proto::google::protobuf::Any;
use prost::Message;
use tendermint::crypto::signature::Verifier as _;

use super::ping::{MsgSendPing, MSG_SEND_PING_TYPE_URL};
use crate::genesis::ACCOUNT_PREFIX;

/// Gas per byte of the raw transaction.
pub const GAS_PER_TX_BYTE: u64 = 10;
/// Gas for verifying the secp256k1 signature.
pub const GAS_PER_SIGNATURE: u64 = 1_000;
/// Gas per byte of each message's encoding.
pub const GAS_PER_MSG_BYTE: u64 = 2;
/// Gas per store write or delete.
pub const GAS_PER_WRITE: u64 = 2_000;
/// Gas per byte written (key and value).
pub const GAS_PER_WRITTEN_BYTE: u64 = 30;

/// Type URL of the SDK bank send.
pub const MSG_SEND_TYPE_URL: &str = "/cosmos.bank.v1beta1.MsgSend";
/// Type URL of the ICS-20 transfer.
pub const MSG_TRANSFER_TYPE_URL: &str = "/ibc.applications.transfer.v1.MsgTransfer";
const SECP256K1_PUBKEY_TYPE_URL: &str = "/cosmos.crypto.secp256k1.PubKey";

/// A failed transaction's ABCI code, codespace and log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codespace} code {code}: {log}")]
pub struct TxError {
    /// ABCI code (nonzero).
    pub code: u32,
    /// ABCI codespace.
    pub codespace: String,
    /// The log, worded like the SDK where relayers parse it.
    pub log: String,
}

impl TxError {
    /// An error in codespace `sdk`.
    pub fn sdk(code: u32, log: impl Into<String>) -> Self {
        Self {
            code,
            codespace: "sdk".to_owned(),
            log: log.into(),
        }
    }

    /// Code 2, the SDK's ErrTxDecode.
    pub fn parse(detail: impl std::fmt::Display) -> Self {
        Self::sdk(2, format!("{detail}: tx parse error"))
    }

    /// Code 4, the SDK's ErrUnauthorized.
    pub fn unauthorized(detail: impl std::fmt::Display) -> Self {
        Self::sdk(4, format!("{detail}: unauthorized"))
    }

    /// Code 11, the SDK's ErrOutOfGas.
    pub fn out_of_gas(location: &str, wanted: u64, used: u64) -> Self {
        Self::sdk(
            11,
            format!(
                "out of gas in location: {location}; gasWanted: {wanted}, gasUsed: {used}: out of gas"
            ),
        )
    }

    /// Code 32, the SDK's ErrWrongSequence; relayers parse `expected` out of this text.
    pub fn wrong_sequence(expected: u64, got: u64) -> Self {
        Self::sdk(
            32,
            format!(
                "account sequence mismatch, expected {expected}, got {got}: incorrect account sequence"
            ),
        )
    }
}

/// Formats coins the way the SDK's `Coins.String()` does: `100stake,5uatom`.
pub fn coins_string(coins: &[(String, u128)]) -> String {
    let mut out = String::new();
    for (i, (denom, amount)) in coins.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{amount}{denom}");
    }
    out
}

/// A message the app knows how to execute.
#[derive(Debug, Clone)]
pub enum AppMsg {
    /// `cosmos.bank.v1beta1.MsgSend`.
    BankSend {
        /// Sender.
        from: String,
        /// Recipient.
        to: String,
        /// Coins.
        amount: Vec<(String, u128)>,
    },
    /// Any IBC core message, executed by ibc-rs.
    Ibc(Box<MsgEnvelope>),
    /// ICS-20 `MsgTransfer`.
    Transfer(Box<MsgTransfer>),
    /// The devnet's ping application's `MsgSendPing`.
    Ping(Box<MsgSendPing>),
}

/// A decoded message with what the ante handler and gas meter need.
#[derive(Debug, Clone)]
pub struct DecodedMsg {
    /// Its type URL (the `action` of its `message` event).
    pub type_url: String,
    /// The address that must sign it.
    pub signer: String,
    /// Its encoded size.
    pub size: usize,
    /// The message.
    pub msg: AppMsg,
}

impl DecodedMsg {
    /// Flat gas for this kind of message (see the module's gas model).
    pub fn base_gas(&self) -> u64 {
        msg_base_gas(&self.msg)
    }

    /// The `module` attribute of its `message` event, as the SDK names modules.
    pub fn module(&self) -> &'static str {
        match &self.msg {
            AppMsg::BankSend { .. } => "bank",
            AppMsg::Ibc(_) => "ibc",
            AppMsg::Transfer(_) => "transfer",
            AppMsg::Ping(_) => "ping",
        }
    }
}

/// Flat gas per message kind: light-client header verification and proof checks cost most.
pub fn msg_base_gas(msg: &AppMsg) -> u64 {
    match msg {
        AppMsg::BankSend { .. } => 5_000,
        AppMsg::Transfer(_) | AppMsg::Ping(_) => 15_000,
        AppMsg::Ibc(env) => match env.as_ref() {
            MsgEnvelope::Client(ClientMsg::UpdateClient(_))
            | MsgEnvelope::Client(ClientMsg::Misbehaviour(_)) => 30_000,
            MsgEnvelope::Client(_) => 20_000,
            MsgEnvelope::Connection(_) | MsgEnvelope::Channel(_) => 20_000,
            MsgEnvelope::Packet(_) => 15_000,
        },
    }
}

// MsgSubmitMisbehaviour is deprecated in favour of MsgUpdateClient but still accepted, so read its signer too.
#[allow(deprecated)]
fn ibc_signer(env: &MsgEnvelope) -> String {
    let s = match env {
        MsgEnvelope::Client(m) => match m {
            ClientMsg::CreateClient(m) => &m.signer,
            ClientMsg::UpdateClient(m) => &m.signer,
            ClientMsg::Misbehaviour(m) => &m.signer,
            ClientMsg::UpgradeClient(m) => &m.signer,
            ClientMsg::RecoverClient(m) => &m.signer,
        },
        MsgEnvelope::Connection(m) => match m {
            ConnectionMsg::OpenInit(m) => &m.signer,
            ConnectionMsg::OpenTry(m) => &m.signer,
            ConnectionMsg::OpenAck(m) => &m.signer,
            ConnectionMsg::OpenConfirm(m) => &m.signer,
        },
        MsgEnvelope::Channel(m) => match m {
            ChannelMsg::OpenInit(m) => &m.signer,
            ChannelMsg::OpenTry(m) => &m.signer,
            ChannelMsg::OpenAck(m) => &m.signer,
            ChannelMsg::OpenConfirm(m) => &m.signer,
            ChannelMsg::CloseInit(m) => &m.signer,
            ChannelMsg::CloseConfirm(m) => &m.signer,
        },
        MsgEnvelope::Packet(m) => match m {
            PacketMsg::Recv(m) => &m.signer,
            PacketMsg::Ack(m) => &m.signer,
            PacketMsg::Timeout(m) => &m.signer,
            PacketMsg::TimeoutOnClose(m) => &m.signer,
        },
    };
    s.as_ref().to_owned()
}

fn parse_coin(denom: &str, amount: &str) -> Result<(String, u128), TxError> {
    let amount = amount
        .parse::<u128>()
        .map_err(|_| TxError::sdk(10, format!("invalid coin amount {amount:?}: invalid coins")))?;
    if denom.is_empty() {
        return Err(TxError::sdk(10, "empty denom: invalid coins"));
    }
    Ok((denom.to_owned(), amount))
}

fn decode_msg(any: &Any) -> Result<DecodedMsg, TxError> {
    let size = any.value.len();
    let (signer, msg) = match any.type_url.as_str() {
        MSG_SEND_TYPE_URL => {
            let m = MsgSend::decode(any.value.as_slice()).map_err(TxError::parse)?;
            let amount = m
                .amount
                .iter()
                .map(|c| parse_coin(&c.denom, &c.amount))
                .collect::<Result<Vec<_>, _>>()?;
            (
                m.from_address.clone(),
                AppMsg::BankSend {
                    from: m.from_address,
                    to: m.to_address,
                    amount,
                },
            )
        }
        MSG_TRANSFER_TYPE_URL => {
            let m = MsgTransfer::try_from(any.clone()).map_err(TxError::parse)?;
            (
                m.packet_data.sender.as_ref().to_owned(),
                AppMsg::Transfer(Box::new(m)),
            )
        }
        MSG_SEND_PING_TYPE_URL => {
            let m = MsgSendPing::decode(any.value.as_slice()).map_err(TxError::parse)?;
            (m.sender.clone(), AppMsg::Ping(Box::new(m)))
        }
        url => match MsgEnvelope::try_from(any.clone()) {
            Ok(env) => (ibc_signer(&env), AppMsg::Ibc(Box::new(env))),
            Err(ibc::core::host::types::error::DecodingError::UnknownTypeUrl(_)) => {
                return Err(TxError::parse(format!("unable to resolve type URL {url}")))
            }
            Err(e) => return Err(TxError::parse(e)),
        },
    };
    Ok(DecodedMsg {
        type_url: any.type_url.clone(),
        signer,
        size,
        msg,
    })
}

/// A transaction decoded and checked for well-formedness (no state consulted yet).
#[derive(Debug, Clone)]
pub struct DecodedTx {
    /// The raw transaction size.
    pub size: usize,
    /// The messages.
    pub msgs: Vec<DecodedMsg>,
    /// `TxBody.timeout_height` (0 = none).
    pub timeout_height: u64,
    /// The signer's public key, if the signer info carries it.
    pub pubkey: Option<(tendermint::PublicKey, Any)>,
    /// The signer's claimed sequence.
    pub sequence: u64,
    /// Fee coins.
    pub fee: Vec<(String, u128)>,
    /// Gas limit.
    pub gas_limit: u64,
    /// The address that signs (and pays).
    pub signer: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
    body_bytes: Vec<u8>,
    auth_info_bytes: Vec<u8>,
}

/// Decodes a `TxRaw` with one SIGN_MODE_DIRECT secp256k1 signer whose address signs every message.
pub fn decode(tx: &[u8]) -> Result<DecodedTx, TxError> {
    let raw = TxRaw::decode(tx).map_err(TxError::parse)?;
    let body = TxBody::decode(raw.body_bytes.as_slice()).map_err(TxError::parse)?;
    let auth = AuthInfo::decode(raw.auth_info_bytes.as_slice()).map_err(TxError::parse)?;
    if body.messages.is_empty() {
        return Err(TxError::sdk(
            18,
            "must contain at least one message: invalid request",
        ));
    }
    let msgs = body
        .messages
        .iter()
        .map(decode_msg)
        .collect::<Result<Vec<_>, _>>()?;
    if auth.signer_infos.len() != 1 || raw.signatures.len() != 1 {
        return Err(TxError::unauthorized(format!(
            "wrong number of signers; expected 1, got {} (the devnet takes single-signer txs)",
            auth.signer_infos.len().max(raw.signatures.len())
        )));
    }
    let si = &auth.signer_infos[0];
    let direct = matches!(
        si.mode_info.as_ref().and_then(|m| m.sum.as_ref()),
        Some(Sum::Single(s)) if s.mode == SignMode::Direct as i32
    );
    if !direct {
        return Err(TxError::unauthorized(
            "unsupported sign mode; the devnet takes SIGN_MODE_DIRECT only",
        ));
    }
    let pubkey = match &si.public_key {
        None => None,
        Some(any) if any.type_url == SECP256K1_PUBKEY_TYPE_URL => {
            let pk = cosmrs::crypto::PublicKey::try_from(any)
                .map_err(|e| TxError::sdk(8, format!("{e}: invalid pubkey")))?;
            let tm = tendermint::PublicKey::from_raw_secp256k1(&pk.to_bytes())
                .ok_or_else(|| TxError::sdk(8, "malformed secp256k1 key: invalid pubkey"))?;
            Some((tm, any.clone(), pk))
        }
        Some(any) => {
            return Err(TxError::sdk(
                8,
                format!(
                    "unsupported public key type {}: invalid pubkey",
                    any.type_url
                ),
            ))
        }
    };
    let signer = match &pubkey {
        Some((_, _, pk)) => pk
            .account_id(ACCOUNT_PREFIX)
            .map_err(|e| TxError::sdk(8, format!("{e}: invalid pubkey")))?
            .to_string(),
        None => msgs[0].signer.clone(),
    };
    for m in &msgs {
        if m.signer != signer {
            return Err(TxError::unauthorized(format!(
                "message {} is signed by {} but the transaction signer is {signer}",
                m.type_url, m.signer
            )));
        }
    }
    let fee = auth.fee.clone().unwrap_or_default();
    let fee_coins = fee
        .amount
        .iter()
        .map(|c| parse_coin(&c.denom, &c.amount))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DecodedTx {
        size: tx.len(),
        msgs,
        timeout_height: body.timeout_height,
        pubkey: pubkey.map(|(tm, any, _)| (tm, any)),
        sequence: si.sequence,
        fee: fee_coins,
        gas_limit: fee.gas_limit,
        signer,
        signature: raw.signatures[0].clone(),
        body_bytes: raw.body_bytes,
        auth_info_bytes: raw.auth_info_bytes,
    })
}

impl DecodedTx {
    /// Checks the signature over the SIGN_MODE_DIRECT sign doc, with the SDK's code-4 wording on failure.
    pub fn verify_signature(
        &self,
        pubkey: &tendermint::PublicKey,
        chain_id: &str,
        account_number: u64,
    ) -> Result<(), TxError> {
        let doc = SignDoc {
            body_bytes: self.body_bytes.clone(),
            auth_info_bytes: self.auth_info_bytes.clone(),
            chain_id: chain_id.to_owned(),
            account_number,
        }
        .encode_to_vec();
        let fail = || {
            TxError::unauthorized(format!(
                "signature verification failed; please verify account number ({account_number}) and chain-id ({chain_id})"
            ))
        };
        let sig = tendermint::Signature::new(self.signature.clone())
            .ok()
            .flatten()
            .ok_or_else(fail)?;
        tendermint::crypto::default::signature::Verifier::verify(*pubkey, &doc, &sig)
            .map_err(|_| fail())
    }

    /// The fee in `denom` (0 if absent).
    pub fn fee_amount(&self, denom: &str) -> u128 {
        self.fee
            .iter()
            .filter(|(d, _)| d == denom)
            .map(|(_, a)| *a)
            .sum()
    }
}

/// Counts gas against a limit, failing with the SDK's out-of-gas error.
#[derive(Debug, Clone)]
pub struct GasMeter {
    /// The tx's gas limit.
    pub limit: u64,
    /// Gas consumed so far.
    pub used: u64,
}

impl GasMeter {
    /// A meter with `limit`.
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// Consumes `amount` for `location`, failing once the total exceeds the limit.
    pub fn consume(&mut self, amount: u64, location: &str) -> Result<(), TxError> {
        self.used = self.used.saturating_add(amount);
        if self.used > self.limit {
            return Err(TxError::out_of_gas(location, self.limit, self.used));
        }
        Ok(())
    }
}
