//! The handshake builders' rules: one builder per handshake for the highest state seen, restarts, and giving up.

use super::*;
use crate::coordinator::decisions::{HandshakeExit, HandshakeVerdict};
use crate::handshake_builder::{EndId, Handshake, Kind};

fn handshake() -> Handshake {
    let end = |c: &str, id: &str| EndId {
        chain: chain(c),
        port: String::new(),
        id: id.into(),
    };
    Handshake {
        kind: Kind::Connection,
        a: end("a-1", "connection-0"),
        b: end("b-1", ""),
    }
}

#[test]
fn one_handshake_builder_per_handshake_for_the_highest_state_seen() {
    let mut s = state();
    let object = RelayObject::Connection {
        chain: chain("a-1"),
        connection: ConnectionId::new("connection-0").unwrap(),
    };
    assert_eq!(
        s.observe_handshake(&object, HandshakeState::OpenInit),
        HandshakeVerdict::Start
    );
    let generation = s.next_generation();
    s.handshake_launched(
        object.clone(),
        LiveHandshake {
            handle: 1,
            generation,
            state: HandshakeState::OpenTry,
            handshake: handshake(),
            correlation: CorrelationId::fresh(),
            restarts: 0,
        },
    );
    assert_eq!(
        s.observe_handshake(&object, HandshakeState::OpenInit),
        HandshakeVerdict::Discard
    );
    assert_eq!(
        s.observe_handshake(&object, HandshakeState::OpenTry),
        HandshakeVerdict::Discard
    );
    assert_eq!(
        s.observe_handshake(&object, HandshakeState::OpenAck),
        HandshakeVerdict::Supersede
    );

    assert!(matches!(
        s.handshake_exited(&object, generation + 1, false),
        HandshakeExit::Stale
    ));
    match s.handshake_exited(&object, generation, false) {
        HandshakeExit::Restart(delay, live) => {
            assert_eq!(delay, Duration::from_millis(100));
            assert_eq!(live.state, HandshakeState::OpenTry);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.handshake(&object).is_none());
}

#[test]
fn a_handshake_builder_that_keeps_failing_is_left_to_the_operator() {
    let mut s = state();
    let object = RelayObject::Connection {
        chain: chain("a-1"),
        connection: ConnectionId::new("connection-0").unwrap(),
    };
    let live = |generation, restarts| LiveHandshake {
        handle: 1,
        generation,
        state: HandshakeState::OpenInit,
        handshake: handshake(),
        correlation: CorrelationId::fresh(),
        restarts,
    };
    s.handshake_launched(object.clone(), live(1, MAX_HANDSHAKE_RESTARTS - 1));
    assert!(matches!(
        s.handshake_exited(&object, 1, false),
        HandshakeExit::Restart(..)
    ));
    s.handshake_launched(object.clone(), live(2, MAX_HANDSHAKE_RESTARTS));
    assert!(matches!(
        s.handshake_exited(&object, 2, false),
        HandshakeExit::GiveUp(_)
    ));
    s.handshake_launched(object.clone(), live(3, 0));
    assert!(matches!(
        s.handshake_exited(&object, 3, true),
        HandshakeExit::Finished
    ));
}
