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
///
/// ibc-rs writes the installed header into every `update_client` event, as ibc-go did up to v8; ibc-go v9
/// removed that attribute, so unless `update_client_header` is set it is taken out again.
pub fn ibc_events(events: Vec<IbcEvent>, update_client_header: bool) -> Vec<Event> {
    events
        .into_iter()
        .filter_map(|e| {
            let kind = e.event_type().to_owned();
            match Event::try_from(e) {
                Ok(ev) if update_client_header => Some(ev),
                Ok(ev) => Some(without_update_header(ev)),
                Err(err) => {
                    tracing::warn!("dropping IBC event {kind}: {err}");
                    None
                }
            }
        })
        .collect()
}

/// The `header` attribute of the update event, left out as ibc-go v9 and later do.
const UPDATE_CLIENT_HEADER: &str = "header";

fn without_update_header(mut event: Event) -> Event {
    if event.kind == "update_client" {
        event
            .attributes
            .retain(|a| a.key_bytes() != UPDATE_CLIENT_HEADER.as_bytes());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibc::core::client::types::events::UpdateClient;
    use ibc::core::client::types::Height;
    use ibc::core::host::types::identifiers::{ClientId, ClientType};

    fn update() -> IbcEvent {
        let height = Height::new(0, 5).unwrap();
        IbcEvent::UpdateClient(UpdateClient::new(
            ClientId::new("07-tendermint", 0).unwrap(),
            ClientType::new("07-tendermint").unwrap(),
            height,
            vec![height],
            vec![0x0a, 0x0b],
        ))
    }

    fn keys(event: &Event) -> Vec<String> {
        event
            .attributes
            .iter()
            .map(|a| String::from_utf8(a.key_bytes().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn update_client_events_carry_the_header_only_when_asked() {
        let modern = ibc_events(vec![update()], false);
        assert_eq!(
            keys(&modern[0]),
            [
                "client_id",
                "client_type",
                "consensus_height",
                "consensus_heights"
            ]
        );
        let legacy = ibc_events(vec![update()], true);
        assert_eq!(
            keys(&legacy[0]),
            [
                "client_id",
                "client_type",
                "consensus_height",
                "consensus_heights",
                "header"
            ]
        );
        assert_eq!(legacy[0].attributes[4].value_bytes(), b"0a0b");
    }
}
