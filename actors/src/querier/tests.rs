//! The Querier driven through its mailbox against an in-process endpoint: transaction-index searches are
//! bounded on their own, and proofs do not wait behind them.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::Actor;
use relayd_messages::{
    ActorKind, ChainId, CorrelationId, ObservedEvent, PacketEventKind, Proven, QueryPacketEvents,
    QueryProof,
};
use tokio::sync::watch;

use super::{Querier, MAX_SEARCHES};
use crate::chain::endpoint::{ChainEndpoint, ChainError, QueryHeight};
use crate::supervisor::guard::ExitGuard;

/// Answers proofs at once; each packet-event search counts itself in flight and waits until `open` says true.
#[derive(Clone)]
struct Gated {
    in_flight: Rc<Cell<usize>>,
    most: Rc<Cell<usize>>,
    open: watch::Receiver<bool>,
}

impl ChainEndpoint for Gated {
    fn chain_id(&self) -> &str {
        "gated"
    }
    async fn latest_height(&self) -> Result<u64, ChainError> {
        Ok(7)
    }
    async fn query_ibc(
        &self,
        _: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError> {
        let height = match height {
            QueryHeight::At(h) => h,
            QueryHeight::Latest => 7,
        };
        Ok(Proven {
            value: b"v".to_vec(),
            height,
            proof: prove.then(|| b"p".to_vec()),
        })
    }
    async fn packet_commitments(&self, _: &str, _: &str) -> Result<Vec<u64>, ChainError> {
        Ok(Vec::new())
    }
    async fn packet_acknowledgements(&self, _: &str, _: &str) -> Result<Vec<u64>, ChainError> {
        Ok(Vec::new())
    }
    async fn unreceived_packets(
        &self,
        _: &str,
        _: &str,
        s: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        Ok(s.to_vec())
    }
    async fn unreceived_acks(&self, _: &str, _: &str, s: &[u64]) -> Result<Vec<u64>, ChainError> {
        Ok(s.to_vec())
    }
    async fn packet_events(
        &self,
        _: PacketEventKind,
        _: &str,
        _: &str,
        _: &[u64],
    ) -> Result<Vec<ObservedEvent>, ChainError> {
        self.in_flight.set(self.in_flight.get() + 1);
        self.most.set(self.most.get().max(self.in_flight.get()));
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.in_flight.set(self.in_flight.get() - 1);
        Ok(Vec::new())
    }
    async fn ibc_events_at(&self, _: u64) -> Result<Vec<ObservedEvent>, ChainError> {
        Ok(Vec::new())
    }
}

fn search(channel: usize) -> QueryPacketEvents {
    QueryPacketEvents {
        correlation: CorrelationId::fresh(),
        kind: PacketEventKind::Sent,
        port: "transfer".into(),
        channel: format!("channel-{channel}"),
        sequences: vec![1, 2, 3],
    }
}

#[actix_rt::test]
async fn searches_are_bounded_apart_and_proofs_pass_them() {
    let (gate, open) = watch::channel(false);
    let endpoint = Gated {
        in_flight: Rc::default(),
        most: Rc::default(),
        open,
    };
    let guard = ExitGuard::unwatched(ActorKind::Querier);
    let querier = Querier::new(
        ChainId::new("gated-1").expect("chain id"),
        endpoint.clone(),
        guard,
    )
    .start();

    let searches: Vec<_> = (0..3 * MAX_SEARCHES)
        .map(|c| actix_rt::spawn(querier.send(search(c))))
        .collect();
    for _ in 0..200 {
        if endpoint.in_flight.get() == MAX_SEARCHES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(endpoint.in_flight.get(), MAX_SEARCHES);

    // Every search slot is taken and more wait; proofs are still answered.
    for h in 1..=8 {
        let proven = querier
            .send(QueryProof {
                correlation: CorrelationId::fresh(),
                path: "commitments/ports/transfer/channels/channel-0/sequences/1".into(),
                height: Some(h),
            })
            .await
            .expect("mailbox")
            .expect("proof");
        assert_eq!(proven.height, h);
        assert_eq!(proven.proof.as_deref(), Some(&b"p"[..]));
    }
    assert_eq!(
        endpoint.in_flight.get(),
        MAX_SEARCHES,
        "no search slipped past the bound"
    );

    gate.send(true).expect("gate");
    for s in searches {
        let found = s.await.expect("task").expect("mailbox").expect("search");
        assert!(found.is_empty());
    }
    assert_eq!(endpoint.most.get(), MAX_SEARCHES);
    assert_eq!(endpoint.in_flight.get(), 0);
}
