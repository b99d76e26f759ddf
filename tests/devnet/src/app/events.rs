//! ABCI events as a Cosmos SDK chain emits them (CometBFT 0.38 encoding: plain string attributes).

use base64::Engine as _;
use ibc::core::handler::types::events::IbcEvent;
use tendermint::abci::{Event, EventAttribute};

use super::ante::{coins_string, DecodedTx};

fn attr(key: &str, value: impl Into<String>) -> EventAttribute {
    (key, value.into(), true).into()
}

/// The SDK's per-message `message` event.
pub fn message_event(action: &str, sender: &str, module: &str) -> Event {
    Event::new(
        "message",
        [
            attr("action", action),
            attr("sender", sender),
            attr("module", module),
        ],
    )
}

/// The ante handler's `tx` events: fee, account sequence and signature.
pub fn tx_events(tx: &DecodedTx) -> Vec<Event> {
    vec![
        Event::new(
            "tx",
            [
                attr("fee", coins_string(&tx.fee)),
                attr("fee_payer", tx.signer.clone()),
            ],
        ),
        Event::new(
            "tx",
            [attr("acc_seq", format!("{}/{}", tx.signer, tx.sequence))],
        ),
        Event::new(
            "tx",
            [attr(
                "signature",
                base64::engine::general_purpose::STANDARD.encode(&tx.signature),
            )],
        ),
    ]
}

/// The bank's events for moving `amount` from `sender` to `recipient`.
pub fn transfer_events(sender: &str, recipient: &str, amount: &str) -> Vec<Event> {
    vec![
        Event::new(
            "coin_spent",
            [attr("spender", sender), attr("amount", amount)],
        ),
        Event::new(
            "coin_received",
            [attr("receiver", recipient), attr("amount", amount)],
        ),
        Event::new(
            "transfer",
            [
                attr("recipient", recipient),
                attr("sender", sender),
                attr("amount", amount),
            ],
        ),
    ]
}

/// Converts ibc-rs events with ibc-rs's own conversion, so attribute names are exactly ibc-rs's (which follow
/// ibc-go). An event ibc-rs cannot encode (packet data that is not UTF-8) is dropped with a warning; ICS-20
/// packet data is JSON, so transfer packets are never affected.
pub fn ibc_events(events: Vec<IbcEvent>) -> Vec<Event> {
    events
        .into_iter()
        .filter_map(|e| {
            let kind = e.event_type().to_owned();
            match Event::try_from(e) {
                Ok(ev) => Some(ev),
                Err(err) => {
                    tracing::warn!("dropping IBC event {kind}: {err}");
                    None
                }
            }
        })
        .collect()
}
