//! The packet machine's tests: every path through the lifecycle, and arbitrary input orders and replays.

use super::*;
use relayd_messages::{ChannelId, PortId, Sequence};

fn packet(timeout_height: Option<Height>, timeout_ns: u64) -> Packet {
    Packet {
        sequence: Sequence(7),
        source_port: PortId::new("transfer").unwrap(),
        source_channel: ChannelId::new("channel-0").unwrap(),
        destination_port: PortId::new("transfer").unwrap(),
        destination_channel: ChannelId::new("channel-1").unwrap(),
        data: b"{}".to_vec(),
        timeout_height,
        timeout_timestamp_ns: timeout_ns,
    }
}

fn run(mut s: PacketState, inputs: Vec<Input>) -> (PacketState, Vec<Effect>) {
    let mut all = Vec::new();
    for input in inputs {
        let (next, effects) = step(s, input);
        s = next;
        all.extend(effects);
    }
    (s, all)
}

fn tip(h: u64) -> Input {
    Input::DestinationTip {
        height: Height::new(1, h),
        time_ns: 1_000,
    }
}

#[test]
fn the_happy_path_follows_the_proof_height_rule() {
    let s = PacketState::detected(packet(Some(Height::new(1, 100)), 0), 3);
    let (s, effects) = run(
        s,
        vec![
            tip(10),
            Input::CommitmentProven {
                proof_height: 42,
                present: true,
            },
            Input::ClientUpdated { height: 41 },
            Input::ClientUpdated { height: 42 },
            Input::RecvConfirmed,
            Input::AckWritten,
            Input::AckProcessed,
        ],
    );
    assert_eq!(
        effects,
        vec![
            Effect::QueryCommitment,
            Effect::UpdateClientTo { height: 42 },
            Effect::SubmitRecv { proof_height: 42 },
            Effect::RelayAck,
            Effect::Finished(Phase::Acknowledged),
        ]
    );
    assert_eq!(s.phase, Phase::Acknowledged);
    assert_eq!(s.attempts, 1);
}

#[test]
fn another_relayer_first_is_consumed_not_retried() {
    let s = PacketState::detected(packet(None, 5_000), 3);
    let (s, effects) = run(
        s,
        vec![
            Input::CommitmentProven {
                proof_height: 10,
                present: true,
            },
            Input::ClientUpdated { height: 10 },
            Input::RecvFailed {
                already_relayed: true,
                timed_out: false,
                retryable: false,
                sent: true,
                reason: "redundant".into(),
            },
        ],
    );
    assert_eq!(s.phase, Phase::Confirmed);
    assert!(!effects.contains(&Effect::QueryCommitment));
    assert_eq!(effects.last(), Some(&Effect::RelayAck));
    let (s, _) = step(s, Input::AckProcessed);
    assert_eq!(s.phase, Phase::Acknowledged);
}

#[test]
fn retryable_failures_requery_until_attempts_run_out() {
    let s = PacketState::detected(packet(None, 5_000), 2);
    let fail = || Input::RecvFailed {
        already_relayed: false,
        timed_out: false,
        retryable: true,
        sent: true,
        reason: "out of gas".into(),
    };
    let (s, effects) = run(
        s,
        vec![
            Input::CommitmentProven {
                proof_height: 10,
                present: true,
            },
            Input::ClientUpdated { height: 10 },
            fail(),
            Input::CommitmentProven {
                proof_height: 13,
                present: true,
            },
            Input::ClientUpdated { height: 13 },
            fail(),
        ],
    );
    assert!(
        effects.contains(&Effect::SubmitRecv { proof_height: 13 }),
        "second try uses the newer height"
    );
    assert_eq!(
        s.phase,
        Phase::Failed("after 2 attempt(s): out of gas".into())
    );
    assert_eq!(effects.last(), Some(&Effect::Finished(s.phase.clone())));
}

#[test]
fn a_receive_the_submitter_never_sent_uses_up_no_attempt() {
    let mut s = PacketState::detected(packet(None, 5_000), 1);
    for round in 0..5 {
        let (next, _) = run(
            s,
            vec![
                Input::CommitmentProven {
                    proof_height: 10 + round,
                    present: true,
                },
                Input::ClientUpdated { height: 10 + round },
                Input::RecvFailed {
                    already_relayed: false,
                    timed_out: false,
                    retryable: true,
                    sent: false,
                    reason: "the tx submitter is restarting".into(),
                },
            ],
        );
        assert_eq!((next.phase.clone(), next.attempts), (Phase::Detected, 0));
        s = next;
    }
}

#[test]
fn expired_packets_time_out_once_and_a_vanished_commitment_ends_the_packet() {
    let s = PacketState::detected(packet(Some(Height::new(1, 50)), 0), 3);
    let (s, effects) = run(s, vec![tip(50), tip(51), Input::TimeoutProcessed]);
    assert_eq!(
        effects,
        vec![Effect::SubmitTimeout, Effect::Finished(Phase::TimedOut)]
    );
    assert_eq!(s.phase, Phase::TimedOut);

    let by_time = PacketState::detected(packet(None, 900), 3);
    let (_, effects) = step(by_time, tip(1));
    assert_eq!(effects, vec![Effect::SubmitTimeout]);

    let gone = PacketState::detected(packet(None, 5_000), 3);
    let (s, effects) = step(
        gone,
        Input::CommitmentProven {
            proof_height: 4,
            present: false,
        },
    );
    assert_eq!(
        (s.phase, effects),
        (
            Phase::Acknowledged,
            vec![Effect::Finished(Phase::Acknowledged)]
        )
    );
}

#[test]
fn a_closed_destination_times_the_packet_out_once_unless_it_was_received() {
    let s = PacketState::detected(packet(None, u64::MAX), 3);
    let (s, effects) = run(
        s,
        vec![
            Input::CommitmentProven {
                proof_height: 10,
                present: true,
            },
            Input::DestinationClosed,
            Input::DestinationClosed,
        ],
    );
    assert_eq!(
        effects,
        vec![Effect::UpdateClientTo { height: 10 }, Effect::SubmitTimeout]
    );
    assert_eq!((s.phase.clone(), s.proof_height), (Phase::Detected, None));
    let (s, effects) = step(s, Input::TimeoutProcessed);
    assert_eq!(effects, vec![Effect::Finished(Phase::TimedOut)]);
    assert_eq!(s.phase, Phase::TimedOut);

    // Received before the close: its acknowledgement is what remains.
    let received = PacketState {
        phase: Phase::Confirmed,
        ..PacketState::detected(packet(None, u64::MAX), 3)
    };
    assert_eq!(step(received, Input::DestinationClosed).1, vec![]);
}

#[test]
fn a_receive_refused_as_timed_out_becomes_a_timeout() {
    let s = PacketState {
        phase: Phase::Submitted,
        ..PacketState::detected(packet(Some(Height::new(1, 100)), 0), 3)
    };
    let (s, effects) = step(
        s,
        Input::RecvFailed {
            already_relayed: false,
            timed_out: true,
            retryable: false,
            sent: true,
            reason: "insufficient packet timeout height".into(),
        },
    );
    assert_eq!(effects, vec![Effect::SubmitTimeout]);
    assert!(!s.phase.is_final());
    let (s, _) = step(s, Input::TimeoutProcessed);
    assert_eq!(s.phase, Phase::TimedOut);
}

/// Every input sequence: no panic, final phases absorb everything, SubmitRecv only for the proven height.
#[test]
fn arbitrary_input_orders_and_replays_keep_the_invariants() {
    let inputs = [
        tip(10),
        tip(200),
        Input::CommitmentProven {
            proof_height: 6,
            present: true,
        },
        Input::CommitmentProven {
            proof_height: 9,
            present: false,
        },
        Input::ClientUpdated { height: 3 },
        Input::ClientUpdated { height: 6 },
        Input::RecvConfirmed,
        Input::RecvFailed {
            already_relayed: false,
            timed_out: false,
            retryable: true,
            sent: true,
            reason: "x".into(),
        },
        Input::RecvFailed {
            already_relayed: true,
            timed_out: false,
            retryable: false,
            sent: true,
            reason: "y".into(),
        },
        Input::RecvFailed {
            already_relayed: false,
            timed_out: true,
            retryable: false,
            sent: true,
            reason: "timed out".into(),
        },
        Input::AckWritten,
        Input::AckProcessed,
        Input::TimeoutProcessed,
        Input::DestinationClosed,
    ];
    // A small deterministic generator: every sequence of length 6 over a rotating window of inputs.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..5_000 {
        let mut s = PacketState::detected(packet(Some(Height::new(1, 100)), 0), 3);
        let (mut finished, mut timeouts) = (0, 0);
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let input = inputs[(seed % inputs.len() as u64) as usize].clone();
            let was_final = s.phase.is_final();
            let before = s.clone();
            let (next, effects) = step(s, input);
            if was_final {
                assert_eq!(next, before, "final phases absorb every input");
                assert!(effects.is_empty());
            }
            for e in &effects {
                if let Effect::SubmitRecv { proof_height } = e {
                    assert_eq!(Some(*proof_height), next.proof_height);
                    assert_eq!(next.phase, Phase::Submitted);
                }
                if matches!(e, Effect::Finished(_)) {
                    finished += 1;
                }
                if matches!(e, Effect::SubmitTimeout) {
                    timeouts += 1;
                }
            }
            assert!(next.attempts <= next.max_attempts);
            s = next;
        }
        assert!(finished <= 1, "a packet finishes at most once");
        assert!(timeouts <= 1, "a timeout is asked for at most once");
    }
}
