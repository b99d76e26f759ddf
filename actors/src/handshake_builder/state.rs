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
mod tests {
    use super::EndState::*;
    use super::*;

    const ALL: [EndState; 5] = [Absent, Init, TryOpen, Open, Closed];

    #[test]
    fn the_ics18_table() {
        let send = |on, datagram| Next::Send { on, datagram };
        assert_eq!(next(Init, Absent), send(Side::B, Datagram::OpenTry));
        assert_eq!(next(Init, TryOpen), send(Side::A, Datagram::OpenAck));
        assert_eq!(next(Open, TryOpen), send(Side::B, Datagram::OpenConfirm));
        assert_eq!(next(Open, Open), Next::Done);
        assert_eq!(next(Closed, Open), send(Side::B, Datagram::CloseConfirm));
        assert_eq!(next(Closed, Closed), Next::Done);
        assert!(matches!(next(Init, Closed), Next::Stuck(_)));
    }

    #[test]
    fn the_table_is_symmetric() {
        for a in ALL {
            for b in ALL {
                let mirrored = match next(b, a) {
                    Next::Send { on, datagram } => Next::Send {
                        on: on.other(),
                        datagram,
                    },
                    other => other,
                };
                assert_eq!(next(a, b), mirrored, "{a:?} / {b:?}");
            }
        }
    }

    #[test]
    fn every_datagram_goes_to_the_end_that_is_behind() {
        for a in ALL {
            for b in ALL {
                if let Next::Send { on, datagram } = next(a, b) {
                    let (mine, theirs) = if on == Side::A { (a, b) } else { (b, a) };
                    let (want_mine, want_theirs) = match datagram {
                        Datagram::OpenTry => (Absent, Init),
                        Datagram::OpenAck => (Init, TryOpen),
                        Datagram::OpenConfirm => (TryOpen, Open),
                        Datagram::CloseConfirm => (Open, Closed),
                    };
                    assert_eq!((mine, theirs), (want_mine, want_theirs), "{a:?} / {b:?}");
                }
            }
        }
    }

    /// Drives a handshake on two simulated ends to the end, applying each datagram the way the chains would.
    fn run(mut a: EndState, mut b: EndState) -> (HandshakeState, EndState, EndState) {
        let mut state = HandshakeState::new(3);
        let mut effects = vec![Effect::ReadEnds];
        for _ in 0..50 {
            let Some(effect) = effects.pop() else {
                let (s, e) = step(state, Input::NewBlock);
                state = s;
                effects = e;
                continue;
            };
            let input = match effect {
                Effect::ReadEnds => Input::EndsRead { a, b },
                Effect::Send(on, d) => {
                    let end = if on == Side::A { &mut a } else { &mut b };
                    *end = match d {
                        Datagram::OpenTry => TryOpen,
                        Datagram::OpenAck | Datagram::OpenConfirm => Open,
                        Datagram::CloseConfirm => Closed,
                    };
                    Input::Submitted
                }
                Effect::Finish => return (state, a, b),
            };
            let (s, e) = step(state, input);
            state = s;
            effects = e;
        }
        panic!("the handshake did not finish");
    }

    #[test]
    fn a_handshake_started_by_init_ends_open_on_both_sides_in_three_datagrams() {
        let (state, a, b) = run(Init, Absent);
        assert_eq!((a, b, state.phase.clone()), (Open, Open, Phase::Done));
        assert_eq!(
            state.sent,
            vec![
                (Side::B, Datagram::OpenTry),
                (Side::A, Datagram::OpenAck),
                (Side::B, Datagram::OpenConfirm)
            ]
        );
    }

    #[test]
    fn a_builder_joining_midway_finishes_from_where_the_chains_are() {
        for (a, b) in [
            (TryOpen, Init),
            (Open, TryOpen),
            (Absent, Init),
            (Closed, Open),
        ] {
            let (state, a2, b2) = run(a, b);
            assert_eq!(state.phase, Phase::Done, "{a:?}/{b:?}");
            assert!(a2 == b2, "{a:?}/{b:?} ended {a2:?}/{b2:?}");
        }
    }

    #[test]
    fn a_read_behind_the_starting_event_is_waited_out() {
        use relayd_messages::HandshakeState as E;
        // CloseInit seen on A, but the node still serves A as OPEN: "both open" would end the close unfinished.
        let (state, effects) = step(
            HandshakeState::after(E::CloseInit, 3),
            Input::EndsRead { a: Open, b: Open },
        );
        assert_eq!((state.phase.clone(), effects), (Phase::Waiting, vec![]));
        let (state, effects) = step(state, Input::NewBlock);
        assert_eq!(effects, vec![Effect::ReadEnds]);
        let (state, effects) = step(state, Input::EndsRead { a: Closed, b: Open });
        assert_eq!(effects, vec![Effect::Send(Side::B, Datagram::CloseConfirm)]);
        assert_eq!(state.failures, 0);
        // CloseConfirm names the counterparty end; a read of B still OPEN waits too.
        let (state, _) = step(
            HandshakeState::after(E::CloseConfirm, 3),
            Input::EndsRead { a: Closed, b: Open },
        );
        assert_eq!(state.phase, Phase::Waiting);
        // A read at or past the event decides as usual.
        let (state, _) = step(
            HandshakeState::after(E::OpenTry, 3),
            Input::EndsRead { a: Open, b: Open },
        );
        assert_eq!(state.phase, Phase::Done);
    }

    #[test]
    fn another_relayer_first_means_read_again_not_failure() {
        let state = HandshakeState {
            phase: Phase::Submitting(Side::B, Datagram::OpenTry),
            ..HandshakeState::new(1)
        };
        let (state, effects) = step(
            state,
            Input::Failed {
                reason: "connection already exists".into(),
                retryable: false,
                already_done: true,
            },
        );
        assert_eq!(state.phase, Phase::Querying);
        assert_eq!(effects, vec![Effect::ReadEnds]);
    }

    #[test]
    fn retryable_failures_wait_for_a_block_and_then_give_up() {
        let mut state = HandshakeState::new(3);
        for i in 0..3 {
            let (s, effects) = step(
                state,
                Input::Failed {
                    reason: "node down".into(),
                    retryable: true,
                    already_done: false,
                },
            );
            state = s;
            if i < 2 {
                assert_eq!(state.phase, Phase::Waiting);
                assert!(effects.is_empty());
                let (s, effects) = step(state, Input::NewBlock);
                assert_eq!(effects, vec![Effect::ReadEnds]);
                state = s;
            } else {
                assert_eq!(state.phase, Phase::Failed("node down".into()));
                assert_eq!(effects, vec![Effect::Finish]);
            }
        }
    }

    #[test]
    fn a_datagram_is_never_sent_twice_by_one_builder() {
        let state = HandshakeState {
            phase: Phase::Submitting(Side::B, Datagram::OpenTry),
            ..HandshakeState::new(3)
        };
        let (state, _) = step(state, Input::Submitted);
        // The counterparty's new end is not known to this builder yet: it reads as absent.
        let (state, effects) = step(state, Input::EndsRead { a: Init, b: Absent });
        assert_eq!(state.phase, Phase::Waiting);
        assert!(effects.is_empty());
    }

    /// Thousands of arbitrary input orders, replays and stale reads (an xorshift generator, fixed seed):
    /// every datagram sent is the one the read that triggered it calls for, none that landed is sent again
    /// (a failed one may be), failures stay within the bound, and nothing happens after the builder finishes.
    #[test]
    fn arbitrary_input_orders_and_replays_keep_the_invariants() {
        let mut inputs = vec![
            Input::NewBlock,
            Input::Submitted,
            Input::Failed {
                reason: "node down".into(),
                retryable: true,
                already_done: false,
            },
            Input::Failed {
                reason: "refused".into(),
                retryable: false,
                already_done: false,
            },
            Input::Failed {
                reason: "already".into(),
                retryable: false,
                already_done: true,
            },
        ];
        for a in ALL {
            for b in ALL {
                inputs.push(Input::EndsRead { a, b });
            }
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..5_000 {
            let mut state = HandshakeState::new(4);
            let mut landed = Vec::new();
            let mut finished = false;
            for _ in 0..60 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let input = inputs[(seed % inputs.len() as u64) as usize].clone();
                let before = state.phase.clone();
                let (next_state, effects) = step(state, input.clone());
                state = next_state;
                if let (Phase::Submitting(on, d), Input::Submitted) = (&before, &input) {
                    landed.push((*on, *d));
                }
                if finished {
                    assert!(effects.is_empty(), "effects after the end: {effects:?}");
                }
                for e in &effects {
                    match e {
                        Effect::Send(on, d) => {
                            let Input::EndsRead { a, b } = input else {
                                panic!("a send not triggered by a read: {input:?} in {before:?}");
                            };
                            assert_eq!(
                                next(a, b),
                                Next::Send {
                                    on: *on,
                                    datagram: *d
                                }
                            );
                            assert!(
                                !landed.contains(&(*on, *d)),
                                "{d:?} sent again after it landed"
                            );
                        }
                        Effect::Finish => finished = true,
                        Effect::ReadEnds => {}
                    }
                }
                assert!(state.failures < state.max_failures);
                assert_eq!(finished, state.phase.is_final());
            }
        }
    }

    #[test]
    fn late_inputs_after_the_end_change_nothing() {
        let done = HandshakeState {
            phase: Phase::Done,
            ..HandshakeState::new(3)
        };
        for input in [
            Input::NewBlock,
            Input::Submitted,
            Input::EndsRead { a: Init, b: Absent },
        ] {
            let (s, e) = step(done.clone(), input);
            assert_eq!(s, done);
            assert!(e.is_empty());
        }
    }
}
