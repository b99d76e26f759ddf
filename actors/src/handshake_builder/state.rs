//! Finishing connection and channel handshakes (ICS-18's `pendingDatagrams`): from the states of the two ends,
//! which datagram moves the handshake forward and on which end. A handshake builder queries both ends, sends
//! that datagram, and queries again until both ends are open (or, for a closing channel, both closed).
//!
//! The decision reads the chains' current state rather than remembering what was sent, so a builder restarted
//! at any point, or racing another relayer, makes the same choice from the same state.

/// The state of one end, as ICS-03 and ICS-04 number it (connections have no `Closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndState {
    /// The end does not exist (yet).
    Absent,
    /// `INIT`.
    Init,
    /// `TRYOPEN`.
    TryOpen,
    /// `OPEN`.
    Open,
    /// `CLOSED` (channels only).
    Closed,
}

impl EndState {
    /// From ICS-03 / ICS-04's protobuf numbering (0 uninitialized, 1 init, 2 tryopen, 3 open, 4 closed).
    pub fn from_proto(state: i32) -> Self {
        match state {
            1 => Self::Init,
            2 => Self::TryOpen,
            3 => Self::Open,
            4 => Self::Closed,
            _ => Self::Absent,
        }
    }

    /// The state's name in logs and lifecycle records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Init => "init",
            Self::TryOpen => "try_open",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// One of the two ends of a handshake: `A` is the end the builder's object names, `B` its counterparty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The object's own end.
    A,
    /// The counterparty end.
    B,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// The handshake datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datagram {
    /// `*OpenTry`, proving the other end's `INIT`.
    OpenTry,
    /// `*OpenAck`, proving the other end's `TRYOPEN`.
    OpenAck,
    /// `*OpenConfirm`, proving the other end's `OPEN`.
    OpenConfirm,
    /// `ChanCloseConfirm`, proving the other end's `CLOSED`.
    CloseConfirm,
}

impl Datagram {
    /// The datagram's name in logs and lifecycle records.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenTry => "open_try",
            Self::OpenAck => "open_ack",
            Self::OpenConfirm => "open_confirm",
            Self::CloseConfirm => "close_confirm",
        }
    }
}

/// What the two ends' states call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send `datagram` to the end `on`, with a proof of the other end.
    Send {
        /// The end the datagram goes to.
        on: Side,
        /// The datagram.
        datagram: Datagram,
    },
    /// Both ends are open, or both closed: nothing left to do.
    Done,
    /// Nothing can be sent now (e.g. the counterparty's state has not reached the node yet).
    Wait,
    /// The two ends can never complete (e.g. one end is closed while the other opens).
    Stuck(&'static str),
}

/// ICS-18's `pendingDatagrams` for one pair of ends, from the states read on each chain.
pub fn next(a: EndState, b: EndState) -> Next {
    use EndState::*;
    let send = |on, datagram| Next::Send { on, datagram };
    match (a, b) {
        (Open, Open) | (Closed, Closed) => Next::Done,
        (Init, Absent) => send(Side::B, Datagram::OpenTry),
        (Absent, Init) => send(Side::A, Datagram::OpenTry),
        // Crossing hellos (both ends INIT) are not part of ICS-03/04 since ibc-go v1; wait for the operator.
        (Init, Init) => Next::Stuck("both ends are INIT (crossing hellos are not supported)"),
        (Init, TryOpen) => send(Side::A, Datagram::OpenAck),
        (TryOpen, Init) => send(Side::B, Datagram::OpenAck),
        (Open, TryOpen) => send(Side::B, Datagram::OpenConfirm),
        (TryOpen, Open) => send(Side::A, Datagram::OpenConfirm),
        (Closed, Open) => send(Side::B, Datagram::CloseConfirm),
        (Open, Closed) => send(Side::A, Datagram::CloseConfirm),
        (TryOpen, TryOpen) => Next::Stuck("both ends are TRYOPEN"),
        (Closed, Init | TryOpen) | (Init | TryOpen, Closed) => {
            Next::Stuck("one end closed before the handshake finished")
        }
        (Absent, Absent) => Next::Wait,
        // An end that is further than its counterparty can support (OPEN against INIT or absent) means the node
        // we read is behind; reading again later sees the counterparty's state.
        (Open, Init | Absent) | (Init | Absent, Open) => Next::Wait,
        (TryOpen, Absent) | (Absent, TryOpen) => Next::Wait,
        (Closed, Absent) | (Absent, Closed) => Next::Wait,
    }
}

/// Where a handshake builder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Reading both ends.
    Querying,
    /// Waiting for a new block before reading again.
    Waiting,
    /// A datagram is on its way to an end.
    Submitting(Side, Datagram),
    /// Both ends open (or closed). Final.
    Done,
    /// Gave up, with the reason. Final.
    Failed(String),
}

impl Phase {
    /// Whether nothing more will happen.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Done | Self::Failed(_))
    }

    /// The phase's name in lifecycle records.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Querying => "querying",
            Self::Waiting => "waiting",
            Self::Submitting(..) => "submitting",
            Self::Done => "open",
            Self::Failed(_) => "failed",
        }
    }
}

/// A handshake builder's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeState {
    /// Where it is.
    pub phase: Phase,
    /// Failed attempts so far (reads or submissions).
    pub failures: u32,
    /// Failures allowed before giving up.
    pub max_failures: u32,
    /// Datagrams sent and confirmed so far.
    pub sent: Vec<(Side, Datagram)>,
    /// The state the event that started the builder showed one end at. A read showing that end behind it comes
    /// from a node that has not applied the event's block yet; deciding on it would end a close as "both open".
    pub seen: Option<(Side, EndState)>,
}

impl HandshakeState {
    /// A builder about to read both ends.
    pub fn new(max_failures: u32) -> Self {
        Self {
            phase: Phase::Querying,
            failures: 0,
            max_failures,
            sent: Vec::new(),
            seen: None,
        }
    }

    /// A builder started by a `event` on one of the ends: reads behind what the event showed are waited out.
    pub fn after(event: relayd_messages::HandshakeState, max_failures: u32) -> Self {
        Self {
            seen: Some(witnessed(event)),
            ..Self::new(max_failures)
        }
    }
}

/// The end a handshake event names and the state it shows that end in. The initiating end (`A`) executes
/// `OpenInit`, `OpenAck` and `CloseInit`; its counterparty (`B`) executes the others.
pub fn witnessed(event: relayd_messages::HandshakeState) -> (Side, EndState) {
    use relayd_messages::HandshakeState as E;
    match event {
        E::OpenInit => (Side::A, EndState::Init),
        E::OpenTry => (Side::B, EndState::TryOpen),
        E::OpenAck => (Side::A, EndState::Open),
        E::OpenConfirm => (Side::B, EndState::Open),
        E::CloseInit => (Side::A, EndState::Closed),
        E::CloseConfirm => (Side::B, EndState::Closed),
    }
}

/// What the builder learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Both ends were read.
    EndsRead {
        /// The object's end.
        a: EndState,
        /// The counterparty's end.
        b: EndState,
    },
    /// A new block on either chain.
    NewBlock,
    /// The datagram landed.
    Submitted,
    /// Reading or submitting failed. `retryable` errors count against `max_failures`; others end the builder.
    /// `already_done` means another relayer moved the handshake first.
    Failed {
        /// Why.
        reason: String,
        /// Whether trying again can help.
        retryable: bool,
        /// Whether the chain had already executed that step.
        already_done: bool,
    },
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Read both ends.
    ReadEnds,
    /// Build `datagram` with proofs of the other end and send it to end `on`.
    Send(Side, Datagram),
    /// The builder is done (both ends open/closed, or failed); exit.
    Finish,
}

/// The handshake builder's transition function.
pub fn step(mut state: HandshakeState, input: Input) -> (HandshakeState, Vec<Effect>) {
    if state.phase.is_final() {
        return (state, Vec::new());
    }
    let effects = match (state.phase.clone(), input) {
        (Phase::Querying, Input::EndsRead { a, b })
            if state
                .seen
                .is_some_and(|(side, at)| (if side == Side::A { a } else { b }) < at) =>
        {
            state.phase = Phase::Waiting;
            Vec::new()
        }
        (Phase::Querying, Input::EndsRead { a, b }) => match next(a, b) {
            Next::Done => {
                state.phase = Phase::Done;
                vec![Effect::Finish]
            }
            Next::Wait => {
                state.phase = Phase::Waiting;
                Vec::new()
            }
            Next::Stuck(why) => {
                state.phase = Phase::Failed(why.to_owned());
                vec![Effect::Finish]
            }
            // A datagram this builder already landed that the read does not show yet (a lagging node, or a
            // counterparty id only the chain's event will name): sending it again could open a second end.
            Next::Send { on, datagram } if state.sent.contains(&(on, datagram)) => {
                state.phase = Phase::Waiting;
                Vec::new()
            }
            Next::Send { on, datagram } => {
                state.phase = Phase::Submitting(on, datagram);
                vec![Effect::Send(on, datagram)]
            }
        },
        (Phase::Waiting, Input::NewBlock) => {
            state.phase = Phase::Querying;
            vec![Effect::ReadEnds]
        }
        (Phase::Submitting(on, datagram), Input::Submitted) => {
            state.sent.push((on, datagram));
            state.failures = 0;
            state.phase = Phase::Querying;
            vec![Effect::ReadEnds]
        }
        (
            Phase::Querying | Phase::Submitting(..),
            Input::Failed {
                reason,
                retryable,
                already_done,
            },
        ) => {
            if already_done {
                // Someone else moved the handshake: read again and carry on from there.
                state.phase = Phase::Querying;
                vec![Effect::ReadEnds]
            } else if !retryable || state.failures + 1 >= state.max_failures {
                state.phase = Phase::Failed(reason);
                vec![Effect::Finish]
            } else {
                state.failures += 1;
                state.phase = Phase::Waiting;
                Vec::new()
            }
        }
        // Late answers and blocks that arrive while busy change nothing.
        _ => Vec::new(),
    };
    (state, effects)
}

#[cfg(test)]
mod tests;
