//! Running a transaction: the ante handler against the right state (check, simulate or deliver), then its
//! messages with all-or-nothing rollback, gas accounting and events.

use basecoin_store::types::Height as StoreHeight;
use cosmrs::proto::cosmos::auth::v1beta1::BaseAccount;
use cosmrs::proto::cosmos::base::abci::v1beta1::TxMsgData;
use ibc::apps::transfer::handler::send_transfer;
use ibc::apps::transfer::types::msgs::transfer::MsgTransfer;
use ibc::apps::transfer::types::PrefixedDenom;
use ibc::clients::tendermint::types::ConsensusState as TmConsensusState;
use ibc::core::channel::types::channel::Order;
use ibc::core::channel::types::msgs::PacketMsg;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc::core::entrypoint::dispatch;
use ibc::core::handler::types::error::HandlerError;
use ibc::core::handler::types::msgs::MsgEnvelope;
use ibc::core::host::types::path::{ChannelEndPath, ReceiptPath, SeqRecvPath};
use ibc::core::host::ValidationContext;

use super::ping::{send_ping, MsgSendPing};
use crate::host::{big_endian_sequence, DevnetHost};
use ibc_proto::google::protobuf::Any;
use ibc_testkit::testapp::ibc::clients::AnyConsensusState;
use prost::Message;
use sha2::{Digest, Sha256};
use tendermint::abci::Event;

use super::ante::{self, AppMsg, DecodedMsg, DecodedTx, GasMeter, TxError};
use super::auth::{address_of, validate_address};
use super::events;
use super::store::{self, Shared};
use super::Core;
use crate::genesis::DENOM;

/// Which state a transaction runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Mempool admission: ante checks only, against the check-state.
    Check,
    /// Gas estimation: everything runs, then everything is rolled back; no signature check.
    Simulate,
    /// Block execution.
    Deliver,
}

/// What running a transaction produced.
#[derive(Debug)]
pub struct TxOutcome {
    pub result: Result<(), TxError>,
    pub gas_wanted: u64,
    pub gas_used: u64,
    pub events: Vec<Event>,
    pub data: Vec<u8>,
}

impl Default for TxOutcome {
    fn default() -> Self {
        Self {
            result: Ok(()),
            gas_wanted: 0,
            gas_used: 0,
            events: Vec::new(),
            data: Vec::new(),
        }
    }
}

/// The SDK's fee collector module account.
pub fn fee_collector() -> String {
    address_of(&Sha256::digest(b"fee_collector")[..20])
}

/// A refused IBC message, answered as ibc-go answers it: its module's codespace and the code of the refusal (see
/// `ibc_codes`), with ibc-rs's text as the log.
fn ibc_error(e: HandlerError, msg: &MsgEnvelope) -> TxError {
    let (codespace, code) = super::ibc_codes::of(&e, msg);
    TxError {
        code,
        codespace: codespace.to_owned(),
        log: e.to_string(),
    }
}

struct Checkpoint([usize; 3]);

impl Core {
    fn stores(&self) -> [&Shared; 3] {
        [&self.ibc.store, &self.bank_store, &self.acc_store]
    }

    fn checkpoint(&self) -> Checkpoint {
        let s = self.stores();
        Checkpoint([
            store::checkpoint(s[0]),
            store::checkpoint(s[1]),
            store::checkpoint(s[2]),
        ])
    }

    fn revert(&self, cp: &Checkpoint) {
        for (s, c) in self.stores().into_iter().zip(cp.0) {
            store::revert_to(s, c);
        }
        self.ibc.events.lock().clear();
        self.ibc.logs.lock().clear();
    }

    fn write_counters(&self) -> (u64, u64) {
        self.stores()
            .into_iter()
            .map(store::write_counters)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    fn charge_writes(&self, meter: &mut GasMeter, since: (u64, u64)) -> Result<(), TxError> {
        let (w, b) = self.write_counters();
        let gas = (w - since.0) * ante::GAS_PER_WRITE + (b - since.1) * ante::GAS_PER_WRITTEN_BYTE;
        meter.consume(gas, "WritePerByte")
    }

    /// Runs `tx` in `mode`; never panics on any input.
    pub(super) fn run_tx(&mut self, tx: &[u8], mode: Mode) -> TxOutcome {
        let decoded = match ante::decode(tx) {
            Ok(d) => d,
            Err(e) => {
                return TxOutcome {
                    result: Err(e),
                    ..Default::default()
                }
            }
        };
        let mut meter = GasMeter::new(if mode == Mode::Simulate {
            u64::MAX
        } else {
            decoded.gas_limit
        });
        let mut out = TxOutcome {
            gas_wanted: decoded.gas_limit,
            ..Default::default()
        };
        let provisional = if mode == Mode::Simulate {
            self.insert_provisional_host_consensus_state()
        } else {
            None
        };
        let result = self.run_decoded(&decoded, mode, &mut meter, &mut out);
        if let Some(h) = provisional {
            self.ibc.host_consensus_states.lock().remove(&h);
        }
        out.result = result;
        out.gas_used = meter.used;
        out
    }

    /// Between blocks the IBC store is already at height `last_committed + 1` (ibc-rs's host height) but that
    /// block has not begun, so it has no host consensus state and every handler that reads the host timestamp
    /// (create/update client, send and receive packets) failed under simulation. The SDK simulates in the context
    /// of the last committed block; likewise the simulated block gets that block's time and next validators,
    /// with the latest app hash as its root, and the entry is removed again afterwards.
    fn insert_provisional_host_consensus_state(&mut self) -> Option<u64> {
        let next = self.last_committed + 1;
        let mut states = self.ibc.host_consensus_states.lock();
        if states.contains_key(&next) {
            return None;
        }
        let AnyConsensusState::Tendermint(last) = states.get(&self.last_committed)?.clone() else {
            return None;
        };
        let last = last.into_inner();
        let provisional = TmConsensusState::new(
            CommitmentRoot::from_bytes(&self.last_app_hash),
            last.timestamp,
            last.next_validators_hash,
        );
        states.insert(next, AnyConsensusState::Tendermint(provisional.into()));
        Some(next)
    }

    fn run_decoded(
        &mut self,
        tx: &DecodedTx,
        mode: Mode,
        meter: &mut GasMeter,
        out: &mut TxOutcome,
    ) -> Result<(), TxError> {
        meter.consume(tx.size as u64 * ante::GAS_PER_TX_BYTE, "txSize")?;
        let height = match mode {
            Mode::Deliver => self.block_height,
            _ => self.last_committed + 1,
        };
        if tx.timeout_height != 0 && height > tx.timeout_height {
            return Err(TxError::sdk(
                30,
                format!(
                    "block height: {height}, timeout height: {}: tx timeout height",
                    tx.timeout_height
                ),
            ));
        }
        if mode == Mode::Check {
            let required = (tx.gas_limit as f64 * self.min_gas_price).ceil() as u128;
            if tx.fee_amount(DENOM) < required {
                return Err(TxError::sdk(
                    13,
                    format!(
                        "insufficient fees; got: {} required: {required}{DENOM}: insufficient fee",
                        ante::coins_string(&tx.fee)
                    ),
                ));
            }
        }
        let accounts = self.bank.accounts().clone();
        let account = accounts.get(&tx.signer).ok_or_else(|| {
            TxError::sdk(
                9,
                format!("account {} not found: unknown address", tx.signer),
            )
        })?;
        let pubkey = match &tx.pubkey {
            Some((pk, _)) => *pk,
            None => stored_pubkey(&account)
                .ok_or_else(|| TxError::sdk(8, "pubkey on account is not set: invalid pubkey"))?,
        };
        let check_acc = self.check.get(&tx.signer).cloned();
        let expected = match (mode, &check_acc) {
            (Mode::Deliver, _) | (_, None) => account.sequence,
            (_, Some(c)) => c.sequence,
        };
        if tx.sequence != expected {
            return Err(TxError::wrong_sequence(expected, tx.sequence));
        }
        meter.consume(ante::GAS_PER_SIGNATURE, "ante verify: secp256k1")?;
        if mode != Mode::Simulate {
            tx.verify_signature(&pubkey, &self.chain_id, account.account_number)?;
        }
        for (denom, amount) in &tx.fee {
            let pending = check_acc
                .as_ref()
                .filter(|_| mode != Mode::Deliver)
                .and_then(|c| c.fees.get(denom).copied())
                .unwrap_or(0);
            let have = self.bank.balance(&tx.signer, denom).saturating_sub(pending);
            if have < *amount {
                return Err(TxError::sdk(
                    5,
                    format!(
                        "insufficient funds to pay for fees; {have}{denom} is smaller than {amount}{denom}: insufficient funds"
                    ),
                ));
            }
        }
        if mode == Mode::Check {
            let entry = self.check.entry(tx.signer.clone()).or_default();
            entry.sequence = tx.sequence + 1;
            for (denom, amount) in &tx.fee {
                *entry.fees.entry(denom.clone()).or_default() += *amount;
            }
            return Ok(());
        }

        let start = self.checkpoint();
        let result = self.deduct_and_execute(tx, account, meter, out);
        if mode == Mode::Simulate {
            self.revert(&start);
        }
        if result.is_err() && mode == Mode::Deliver && out.events.is_empty() {
            // The ante handler itself failed (out of gas on its writes): nothing of the tx stays.
            self.revert(&start);
        }
        result
    }

    /// Fee and sequence (kept even if a message fails), then the messages (all or nothing).
    fn deduct_and_execute(
        &mut self,
        tx: &DecodedTx,
        mut account: BaseAccount,
        meter: &mut GasMeter,
        out: &mut TxOutcome,
    ) -> Result<(), TxError> {
        let counters = self.write_counters();
        let collector = fee_collector();
        for (denom, amount) in &tx.fee {
            self.bank
                .send(&tx.signer, &collector, denom, *amount)
                .map_err(|e| TxError::sdk(5, format!("insufficient funds to pay for fees; {e}")))?;
        }
        account.sequence += 1;
        if account.pub_key.is_none() {
            account.pub_key = tx.pubkey.as_ref().map(|(_, any)| any.clone());
        }
        self.bank.accounts().set(&account);
        self.charge_writes(meter, counters)?;
        out.events = events::tx_events(tx);

        let before_msgs = self.checkpoint();
        let mut msg_events = Vec::new();
        let mut responses = Vec::new();
        for (i, msg) in tx.msgs.iter().enumerate() {
            let res = self.execute_msg(msg, meter);
            match res {
                Ok(evs) => {
                    msg_events.push(events::message_event(
                        &msg.type_url,
                        &msg.signer,
                        msg.module(),
                    ));
                    msg_events.extend(evs);
                    responses.push(Any {
                        type_url: format!("{}Response", msg.type_url),
                        value: Vec::new(),
                    });
                }
                Err(mut e) => {
                    self.revert(&before_msgs);
                    if e.code != 11 {
                        e.log = format!("failed to execute message; message index: {i}: {}", e.log);
                    }
                    return Err(e);
                }
            }
        }
        out.events.extend(msg_events);
        out.data = TxMsgData {
            #[allow(deprecated)]
            data: Vec::new(),
            msg_responses: responses,
        }
        .encode_to_vec();
        Ok(())
    }

    fn execute_msg(
        &mut self,
        msg: &DecodedMsg,
        meter: &mut GasMeter,
    ) -> Result<Vec<Event>, TxError> {
        let location = format!("msg {}", msg.type_url);
        meter.consume(
            msg.base_gas() + msg.size as u64 * ante::GAS_PER_MSG_BYTE,
            &location,
        )?;
        let counters = self.write_counters();
        let evs = match &msg.msg {
            AppMsg::BankSend { from, to, amount } => self.bank_send(from, to, amount)?,
            AppMsg::Ibc(env) => self.ibc_msg(env)?,
            AppMsg::Transfer(m) => self.transfer_msg(m)?,
            AppMsg::Ping(m) => self.ping_msg(m)?,
        };
        self.charge_writes(meter, counters)?;
        Ok(evs)
    }

    fn bank_send(
        &mut self,
        from: &str,
        to: &str,
        amount: &[(String, u128)],
    ) -> Result<Vec<Event>, TxError> {
        validate_address(to).map_err(|e| TxError::sdk(7, format!("{e}: invalid address")))?;
        for (denom, amt) in amount {
            self.bank
                .send(from, to, denom, *amt)
                .map_err(|e| TxError::sdk(5, e.to_string()))?;
        }
        Ok(events::transfer_events(
            from,
            to,
            &ante::coins_string(amount),
        ))
    }

    /// ibc-go treats relaying an already received packet as a successful no-op (checked before the proof, so a
    /// racing relayer pays only the fee); ibc-rs checks the proof first and then fails with
    /// DuplicateAcknowledgment. Checking receipt/next-sequence first, as ibc-go does, keeps the ibc-go outcome
    /// without touching any ibc-rs check: a no-op changes no state.
    fn already_received(&self, env: &MsgEnvelope) -> bool {
        let MsgEnvelope::Packet(PacketMsg::Recv(m)) = env else {
            return false;
        };
        let p = &m.packet;
        let Ok(chan) = self
            .ibc
            .channel_end(&ChannelEndPath::new(&p.port_id_on_b, &p.chan_id_on_b))
        else {
            return false;
        };
        match chan.ordering {
            Order::Unordered => self
                .ibc
                .get_packet_receipt(&ReceiptPath::new(
                    &p.port_id_on_b,
                    &p.chan_id_on_b,
                    p.seq_on_a,
                ))
                .map(|r| r.is_ok())
                .unwrap_or(false),
            Order::Ordered => big_endian_sequence(
                &self.ibc,
                SeqRecvPath::new(&p.port_id_on_b, &p.chan_id_on_b).to_string(),
            )
            .is_some_and(|next| p.seq_on_a < next),
            Order::None => false,
        }
    }

    fn ibc_msg(&mut self, env: &MsgEnvelope) -> Result<Vec<Event>, TxError> {
        if self.already_received(env) {
            return Ok(Vec::new());
        }
        dispatch(
            &mut DevnetHost::cosmos(&mut self.ibc),
            &mut self.router,
            env.clone(),
        )
        .map_err(|e| ibc_error(e, env))?;
        let evs = std::mem::take(&mut *self.ibc.events.lock());
        self.ibc.logs.lock().clear();
        Ok(events::ibc_events(evs, self.update_client_header))
    }

    fn ping_msg(&mut self, msg: &MsgSendPing) -> Result<Vec<Event>, TxError> {
        validate_address(&msg.sender)
            .map_err(|e| TxError::sdk(7, format!("{e}: invalid address")))?;
        send_ping(&mut DevnetHost::cosmos(&mut self.ibc), msg).map_err(|log| TxError {
            code: 2,
            codespace: "ping".to_owned(),
            log,
        })?;
        let evs = std::mem::take(&mut *self.ibc.events.lock());
        self.ibc.logs.lock().clear();
        Ok(events::ibc_events(evs, self.update_client_header))
    }

    fn transfer_msg(&mut self, msg: &MsgTransfer) -> Result<Vec<Event>, TxError> {
        let mut msg = msg.clone();
        let token = &mut msg.packet_data.token;
        // ibc-go takes vouchers as `ibc/{hash}` and puts the full trace in the packet; resolve it the same way.
        if token.denom.trace_path.is_empty() {
            if let Some(hash) = token.denom.base_denom.as_str().strip_prefix("ibc/") {
                let path = self.bank.denom_trace(hash).ok_or_else(|| TxError {
                    code: 3,
                    codespace: "transfer".to_owned(),
                    log: format!("denomination trace not found for ibc/{hash}: invalid denomination for cross-chain transfer"),
                })?;
                token.denom = path.parse::<PrefixedDenom>().map_err(|e| TxError {
                    code: 3,
                    codespace: "transfer".to_owned(),
                    log: format!("stored trace {path}: {e}"),
                })?;
            }
        }
        send_transfer(
            &mut DevnetHost::cosmos(&mut self.ibc),
            &mut self.router.transfer,
            msg,
        )
        .map_err(|e| TxError {
            code: 2,
            codespace: "transfer".to_owned(),
            log: e.to_string(),
        })?;
        let evs = std::mem::take(&mut *self.ibc.events.lock());
        self.ibc.logs.lock().clear();
        Ok(events::ibc_events(evs, self.update_client_header))
    }
}

fn stored_pubkey(account: &BaseAccount) -> Option<tendermint::PublicKey> {
    let any = account.pub_key.as_ref()?;
    let pk = cosmrs::crypto::PublicKey::try_from(any).ok()?;
    tendermint::PublicKey::from_raw_secp256k1(&pk.to_bytes())
}

/// Reads an account at a committed store version (used by queries).
pub(super) fn account_at(core: &Core, version: u64, address: &str) -> Option<BaseAccount> {
    core.bank
        .accounts()
        .get_at(StoreHeight::Stable(version), address)
}
