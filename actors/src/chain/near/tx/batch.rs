//! How many IBC messages go into one `deliver` call: NEAR bounds a call by its prepaid gas (300 Tgas at most) and
//! a transaction by its size, so messages are cut into batches whose estimated gas and serialized arguments stay
//! under both. The estimate per message kind is learnt from the gas executed calls burnt. Pure: no IO.

use ibc_proto::google::protobuf::Any;

use crate::chain::near::contract::deliver_args;

/// nearcore's `max_transaction_size` since protocol version 69 (near-parameters `runtime_configs/69.yaml`).
pub const NEAR_MAX_TX_SIZE: usize = 1_572_864;
/// Bytes of a signed `deliver` transaction besides its arguments: signer, receiver and method names, the public
/// key and signature, nonce, block hash, gas and deposit, with room to spare.
pub const TX_OVERHEAD: usize = 1024;

/// The message kinds whose gas is estimated apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgKind {
    /// `MsgCreateClient`.
    CreateClient,
    /// `MsgUpdateClient` (and misbehaviour and upgrade messages, which also run the light client).
    UpdateClient,
    /// Connection and channel handshake messages.
    Handshake,
    /// `MsgRecvPacket`.
    RecvPacket,
    /// `MsgAcknowledgement`.
    Acknowledgement,
    /// `MsgTimeout` and `MsgTimeoutOnClose`.
    Timeout,
    /// ICS-20 `MsgTransfer`.
    Transfer,
    /// Anything else.
    Other,
}

impl MsgKind {
    /// Every kind, in table order.
    pub const ALL: [MsgKind; 8] = [
        MsgKind::CreateClient,
        MsgKind::UpdateClient,
        MsgKind::Handshake,
        MsgKind::RecvPacket,
        MsgKind::Acknowledgement,
        MsgKind::Timeout,
        MsgKind::Transfer,
        MsgKind::Other,
    ];

    /// The kind of a message, from its type URL.
    pub fn of(type_url: &str) -> Self {
        match type_url {
            "/ibc.core.client.v1.MsgCreateClient" => Self::CreateClient,
            "/ibc.core.client.v1.MsgUpdateClient"
            | "/ibc.core.client.v1.MsgSubmitMisbehaviour"
            | "/ibc.core.client.v1.MsgUpgradeClient" => Self::UpdateClient,
            "/ibc.core.channel.v1.MsgRecvPacket" => Self::RecvPacket,
            "/ibc.core.channel.v1.MsgAcknowledgement" => Self::Acknowledgement,
            "/ibc.core.channel.v1.MsgTimeout" | "/ibc.core.channel.v1.MsgTimeoutOnClose" => {
                Self::Timeout
            }
            "/ibc.applications.transfer.v1.MsgTransfer" => Self::Transfer,
            url if url.starts_with("/ibc.core.connection.v1.Msg")
                || url.starts_with("/ibc.core.channel.v1.MsgChannel") =>
            {
                Self::Handshake
            }
            _ => Self::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Gas a `deliver` receipt burns: a fixed part plus an estimate per message of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasTable {
    /// Burnt by the receipt whatever it carries (receipt execution, argument parsing, the call's own work).
    pub base: u64,
    per_kind: [u64; 8],
}

/// Least gas a message is estimated at, so that learning never makes a kind free.
const MIN_PER_MESSAGE: u64 = 1_000_000_000;

impl GasTable {
    /// A table charging `base` per call and `per_message` for every kind.
    pub fn uniform(base: u64, per_message: u64) -> Self {
        Self {
            base,
            per_kind: [per_message.max(MIN_PER_MESSAGE); 8],
        }
    }

    /// The same table with `kind` estimated at `gas`.
    pub fn with(mut self, kind: MsgKind, gas: u64) -> Self {
        self.per_kind[kind.index()] = gas.max(MIN_PER_MESSAGE);
        self
    }

    /// The estimate for one message of `kind`.
    pub fn per_message(&self, kind: MsgKind) -> u64 {
        self.per_kind[kind.index()]
    }

    fn variable(&self, messages: &[Any]) -> u64 {
        messages
            .iter()
            .map(|m| self.per_message(MsgKind::of(&m.type_url)))
            .fold(0u64, u64::saturating_add)
    }

    /// Estimated gas of a `deliver` receipt carrying `messages`.
    pub fn estimate(&self, messages: &[Any]) -> u64 {
        self.base.saturating_add(self.variable(messages))
    }

    /// Moves the estimates towards what a receipt carrying `messages` burnt: the part above `base` is shared among
    /// the messages in proportion to their estimates, and each kind in the batch moves halfway to its share.
    pub fn learn(&mut self, messages: &[Any], burnt: u64) {
        let variable = self.variable(messages);
        if messages.is_empty() || variable == 0 {
            return;
        }
        let residual = burnt.saturating_sub(self.base);
        self.rescale(messages, residual, variable);
    }

    /// A receipt carrying `messages` ran out of `prepaid` gas: the estimates of the kinds in it grow so that the
    /// batch is estimated at least a quarter above what it was given.
    pub fn learn_exceeded(&mut self, messages: &[Any], prepaid: u64) {
        let variable = self.variable(messages);
        let needed = prepaid
            .saturating_sub(self.base)
            .saturating_add(prepaid / 4);
        if messages.is_empty() || variable == 0 || variable >= needed {
            return;
        }
        let mut seen = [false; 8];
        for m in messages {
            let i = MsgKind::of(&m.type_url).index();
            if !std::mem::replace(&mut seen[i], true) {
                let scaled =
                    u128::from(self.per_kind[i]) * u128::from(needed) / u128::from(variable);
                self.per_kind[i] = u64::try_from(scaled).unwrap_or(u64::MAX);
            }
        }
    }

    fn rescale(&mut self, messages: &[Any], residual: u64, variable: u64) {
        let mut seen = [false; 8];
        for m in messages {
            let i = MsgKind::of(&m.type_url).index();
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let old = self.per_kind[i];
            let observed = u128::from(old) * u128::from(residual) / u128::from(variable);
            let observed = u64::try_from(observed).unwrap_or(u64::MAX);
            self.per_kind[i] = (old / 2).saturating_add(observed / 2).max(MIN_PER_MESSAGE);
        }
    }
}

/// Bounds of one `deliver` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most estimated receipt gas: the prepaid gas less a safety margin.
    pub gas: u64,
    /// Most bytes of `deliver` arguments.
    pub args_size: usize,
    /// Most messages.
    pub max_msgs: usize,
}

impl BatchLimits {
    /// Limits for calls given `prepaid` gas, of which `margin_percent` is kept spare, in transactions of at most
    /// `max_tx_size` bytes (NEAR's own limit applies when lower).
    pub fn new(prepaid: u64, margin_percent: u64, max_tx_size: usize, max_msgs: usize) -> Self {
        let margin = u128::from(prepaid) * u128::from(margin_percent.min(100)) / 100;
        let margin = u64::try_from(margin).unwrap_or(prepaid);
        Self {
            gas: prepaid.saturating_sub(margin),
            args_size: max_tx_size
                .min(NEAR_MAX_TX_SIZE)
                .saturating_sub(TX_OVERHEAD)
                .max(1),
            max_msgs: max_msgs.max(1),
        }
    }
}

/// Bytes `message` adds to the `deliver` arguments (its JSON and a separating comma).
fn args_bytes(message: &Any) -> usize {
    deliver_args(std::slice::from_ref(message))
        .len()
        .saturating_sub(EMPTY_ARGS)
        .saturating_add(1)
}

/// Length of `{"messages":[]}`.
const EMPTY_ARGS: usize = 15;

/// Cuts `messages` into `deliver` batches, in order: each batch takes messages while its estimated gas, argument
/// size and count stay within `limits`. A message over a limit on its own goes alone, for the chain to judge.
pub fn cut(messages: Vec<Any>, table: &GasTable, limits: BatchLimits) -> Vec<Vec<Any>> {
    let mut batches = Vec::new();
    let mut batch: Vec<Any> = Vec::new();
    let mut gas = table.base;
    let mut size = EMPTY_ARGS;
    for m in messages {
        let g = table.per_message(MsgKind::of(&m.type_url));
        let s = args_bytes(&m);
        let fits = gas.saturating_add(g) <= limits.gas
            && size.saturating_add(s) <= limits.args_size
            && batch.len() < limits.max_msgs;
        if !fits && !batch.is_empty() {
            batches.push(std::mem::take(&mut batch));
            gas = table.base;
            size = EMPTY_ARGS;
        }
        gas = gas.saturating_add(g);
        size = size.saturating_add(s);
        batch.push(m);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_000_000_000_000;

    fn msg(type_url: &str, len: usize) -> Any {
        Any {
            type_url: type_url.to_owned(),
            value: vec![7; len],
        }
    }

    fn recv() -> Any {
        msg("/ibc.core.channel.v1.MsgRecvPacket", 10)
    }

    fn update() -> Any {
        msg("/ibc.core.client.v1.MsgUpdateClient", 10)
    }

    #[test]
    fn kinds_follow_the_type_url() {
        assert_eq!(
            MsgKind::of("/ibc.core.channel.v1.MsgChannelOpenTry"),
            MsgKind::Handshake
        );
        assert_eq!(
            MsgKind::of("/ibc.core.connection.v1.MsgConnectionOpenAck"),
            MsgKind::Handshake
        );
        assert_eq!(
            MsgKind::of("/ibc.core.channel.v1.MsgTimeoutOnClose"),
            MsgKind::Timeout
        );
        assert_eq!(MsgKind::of("/x.Unknown"), MsgKind::Other);
        for (i, k) in MsgKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn the_empty_argument_length_is_what_deliver_args_writes() {
        assert_eq!(deliver_args(&[]).len(), EMPTY_ARGS);
        let two = [recv(), update()];
        let counted = EMPTY_ARGS + two.iter().map(args_bytes).sum::<usize>() - 1;
        assert_eq!(deliver_args(&two).len(), counted);
    }

    #[test]
    fn batches_stay_under_the_gas_limit_and_keep_order() {
        let table = GasTable::uniform(10 * T, 15 * T).with(MsgKind::UpdateClient, 40 * T);
        let limits = BatchLimits::new(300 * T, 10, 1 << 20, 100);
        assert_eq!(limits.gas, 270 * T);
        let mut messages = vec![update()];
        messages.extend((0..40u8).map(|i| msg("/ibc.core.channel.v1.MsgRecvPacket", i.into())));
        let batches = cut(messages.clone(), &table, limits);
        // 10 + 40 + 14 * 15 = 260 ≤ 270; a fifteenth receive would make 275.
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![15, 17, 9]
        );
        for b in &batches {
            assert!(table.estimate(b) <= limits.gas);
        }
        assert_eq!(batches.concat(), messages);
    }

    #[test]
    fn batches_stay_under_the_size_and_count_limits() {
        let table = GasTable::uniform(T, T);
        let messages: Vec<Any> = (0..10).map(|_| msg("/x", 3000)).collect();
        let limits = BatchLimits::new(300 * T, 0, 10_000 + TX_OVERHEAD, 100);
        let batches = cut(messages.clone(), &table, limits);
        assert!(batches.len() >= 4, "4 KB of base64 each: two per 10 KB");
        for b in &batches {
            assert!(deliver_args(b).len() <= limits.args_size);
        }
        let limits = BatchLimits::new(300 * T, 0, 1 << 20, 3);
        assert_eq!(cut(messages, &table, limits).len(), 4);
    }

    #[test]
    fn nears_own_size_limit_caps_a_larger_configured_one() {
        let limits = BatchLimits::new(300 * T, 10, 64 << 20, 1);
        assert_eq!(limits.args_size, NEAR_MAX_TX_SIZE - TX_OVERHEAD);
    }

    #[test]
    fn a_message_over_the_limit_goes_alone() {
        let table = GasTable::uniform(T, 500 * T);
        let limits = BatchLimits::new(300 * T, 10, 1 << 20, 100);
        let batches = cut(vec![recv(), recv()], &table, limits);
        assert_eq!(batches.len(), 2);
        assert!(cut(Vec::new(), &table, limits).is_empty());
    }

    #[test]
    fn learning_moves_the_kinds_in_a_batch_towards_what_was_burnt() {
        let mut table = GasTable::uniform(10 * T, 15 * T);
        // Four receives burnt 10 + 4 * 25: each receive is seen at 25 and moves halfway there.
        table.learn(&[recv(), recv(), recv(), recv()], 110 * T);
        assert_eq!(table.per_message(MsgKind::RecvPacket), 20 * T);
        assert_eq!(
            table.per_message(MsgKind::UpdateClient),
            15 * T,
            "untouched"
        );
        for _ in 0..20 {
            table.learn(&[recv(), recv(), recv(), recv()], 110 * T);
        }
        let learnt = table.per_message(MsgKind::RecvPacket);
        assert!((24 * T..=25 * T).contains(&learnt), "{learnt}");
        // A mixed batch shares the residual in proportion to the estimates.
        let mut table = GasTable::uniform(0, 10 * T).with(MsgKind::UpdateClient, 30 * T);
        table.learn(&[update(), recv()], 80 * T);
        assert_eq!(table.per_message(MsgKind::UpdateClient), 45 * T);
        assert_eq!(table.per_message(MsgKind::RecvPacket), 15 * T);
    }

    #[test]
    fn learning_never_makes_a_message_free() {
        let mut table = GasTable::uniform(10 * T, 15 * T);
        for _ in 0..64 {
            table.learn(&[recv()], 0);
        }
        assert_eq!(table.per_message(MsgKind::RecvPacket), MIN_PER_MESSAGE);
    }

    #[test]
    fn running_out_of_gas_raises_the_estimate_above_the_prepaid_gas() {
        let mut table = GasTable::uniform(10 * T, T);
        let batch: Vec<Any> = (0..20).map(|_| recv()).collect();
        table.learn_exceeded(&batch, 100 * T);
        assert!(table.estimate(&batch) >= 100 * T + 25 * T - T, "{table:?}");
        let limits = BatchLimits::new(100 * T, 10, 1 << 20, 100);
        let batches = cut(batch, &table, limits);
        assert!(
            batches.len() >= 2,
            "the same messages no longer fit one call"
        );
    }
}
