//! The handshake machine's tests: ICS-18's table, whole handshakes from any starting point, and arbitrary
//! input orders and replays.

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
