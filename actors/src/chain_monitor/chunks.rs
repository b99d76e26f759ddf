//! A block's IBC events handed to the coordinator in bounded chunks: a block may carry any number of events (a
//! transaction with hundreds of transfers, many such transactions), and one message holding them all would make
//! the coordinator's single handler run, and hold memory, in proportion. Every chunk but the last is partial; the
//! block (tips, clearing, its checkpoint) is finished only with the last.

use relayd_messages::{BlockObserved, ChainId, ObservedEvent};

/// The most events one message to the coordinator carries.
pub const MAX_EVENTS_PER_MESSAGE: usize = 256;

/// The messages that hand `events` of block `height` to the coordinator, at most `max` events each (at least
/// one); a block without events is one message.
pub fn block_messages(
    chain: &ChainId,
    height: u64,
    time_ns: u64,
    events: Vec<ObservedEvent>,
    max: usize,
) -> Vec<BlockObserved> {
    let max = max.max(1);
    let mut events = events.into_iter().peekable();
    let mut out = Vec::new();
    loop {
        let chunk: Vec<ObservedEvent> = events.by_ref().take(max).collect();
        let partial = events.peek().is_some();
        out.push(BlockObserved {
            chain: chain.clone(),
            height,
            time_ns,
            events: chunk,
            partial,
        });
        if !partial {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayd_messages::IbcEvent;

    fn events(n: usize) -> Vec<ObservedEvent> {
        (0..n)
            .map(|i| ObservedEvent {
                height: 7,
                tx_hash: Some(format!("{i}")),
                event: IbcEvent::CreateClient {
                    client_id: relayd_messages::ClientId::new(format!("07-tendermint-{i}"))
                        .unwrap(),
                    client_type: "07-tendermint".into(),
                    consensus_height: relayd_messages::Height::new(0, 1),
                },
            })
            .collect()
    }

    #[test]
    fn a_block_with_many_events_is_handed_over_in_bounded_chunks_in_order_and_only_the_last_finishes_it(
    ) {
        let chain = ChainId::new("ibc-0").unwrap();
        let messages = block_messages(&chain, 7, 9, events(1000), 256);
        assert_eq!(
            messages.iter().map(|m| m.events.len()).collect::<Vec<_>>(),
            [256, 256, 256, 232]
        );
        assert_eq!(
            messages.iter().map(|m| m.partial).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        let order: Vec<String> = messages
            .iter()
            .flat_map(|m| m.events.iter().filter_map(|e| e.tx_hash.clone()))
            .collect();
        assert_eq!(order, (0..1000).map(|i| i.to_string()).collect::<Vec<_>>());
        assert!(messages.iter().all(|m| m.height == 7 && m.time_ns == 9));
    }

    #[test]
    fn an_exact_multiple_ends_with_a_full_last_chunk_and_an_empty_block_is_one_message() {
        let chain = ChainId::new("ibc-0").unwrap();
        let messages = block_messages(&chain, 1, 0, events(512), 256);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].partial && !messages[1].partial);
        let empty = block_messages(&chain, 1, 0, Vec::new(), 256);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].events.is_empty() && !empty[0].partial);
    }
}
