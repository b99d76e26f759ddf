//! The TxSubmitter with several lanes, driven through its mailbox against in-process accounts: requests spread
//! over the lanes, an ordered channel's stay on one, a further lane makes the datagrams its own, and a lane
//! whose account is below the minimum takes nothing while the other has funds.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use actix::Actor;
use relayd_messages::{
    ActorKind, ChainId, CorrelationId, Datagram, RelayError, SubmitTx, TxReport,
};

use super::TxSubmitter;
use crate::supervisor::guard::ExitGuard;
use crate::tx_submitter::{LaneBoard, Submitter, Wallet};

/// What one account sent: (account, datagram value) per message.
type Sent = Rc<RefCell<Vec<(String, Vec<u8>)>>>;

/// An account that lands every transaction at once; a further one (`owns`) marks each datagram as its own by
/// prefixing its name, as a Cosmos lane sets its signer.
struct Account {
    name: String,
    owns: bool,
    sent: Sent,
    /// The balance its wallet reads, if it has one (minimum 100).
    balance: Option<Rc<Cell<u128>>>,
}

impl Submitter for Account {
    fn signer(&self) -> &str {
        &self.name
    }

    fn own(&self, msgs: Vec<Datagram>) -> Result<Vec<Datagram>, RelayError> {
        if !self.owns {
            return Ok(msgs);
        }
        Ok(msgs
            .into_iter()
            .map(|d| Datagram {
                value: [self.name.as_bytes(), b":", &d.value].concat(),
                type_url: d.type_url,
            })
            .collect())
    }

    async fn submit(
        &mut self,
        msgs: Vec<Datagram>,
    ) -> Result<Vec<TxReport>, (Vec<TxReport>, RelayError)> {
        // Lets the other lanes' drains run between transactions, as a chain's round trip does.
        tokio::task::yield_now().await;
        let mut sent = self.sent.borrow_mut();
        for m in &msgs {
            sent.push((self.name.clone(), m.value.clone()));
        }
        Ok(vec![TxReport {
            tx_hash: format!("{}-{}", self.name, sent.len()),
            height: 1,
            messages: msgs.len(),
            gas_used: 1,
        }])
    }

    fn max_msgs(&self) -> usize {
        1
    }

    fn key_id(&self) -> Option<String> {
        Some(format!("pk-{}", self.name))
    }

    fn wallet(&self) -> Option<Wallet> {
        let balance = self.balance.clone()?;
        Some(Wallet {
            key: self.name.clone(),
            denom: "stake".into(),
            minimum: Some(100),
            read: Rc::new(move || {
                let b = balance.get();
                Box::pin(async move { Ok(b) })
            }),
        })
    }
}

fn request(value: String, ordered: Option<&str>) -> SubmitTx {
    SubmitTx {
        correlation: CorrelationId::fresh(),
        update: None,
        datagrams: vec![Datagram {
            type_url: "recv".into(),
            value: value.into_bytes(),
        }],
        priority: 0,
        ordered_channel: ordered.map(str::to_owned),
    }
}

fn two_lanes(sent: &Sent) -> actix::Addr<TxSubmitter<Account>> {
    let account = |name: &str, owns| Account {
        name: name.to_owned(),
        owns,
        sent: sent.clone(),
        balance: None,
    };
    TxSubmitter::new(
        ChainId::new("chain-a").expect("chain id"),
        account("first", false),
        ExitGuard::unwatched(ActorKind::TxSubmitter),
    )
    .with_lane(account("second", true))
    .start()
}

#[actix_rt::test]
async fn requests_spread_over_the_lanes_and_the_second_lane_signs_its_own() {
    let sent = Sent::default();
    let addr = two_lanes(&sent);
    let replies = (0..20).map(|i| addr.send(request(format!("p{i}"), None)));
    for reply in futures::future::join_all(replies).await {
        reply.expect("mailbox").expect("landed");
    }
    let sent = sent.borrow();
    assert_eq!(sent.len(), 20, "each request sent once");
    let by = |who: &str| sent.iter().filter(|(a, _)| a == who).count();
    assert!(by("first") > 0 && by("second") > 0, "{sent:?}");
    for (account, value) in sent.iter() {
        let owned = value.starts_with(b"second:");
        assert_eq!(owned, account == "second", "{account}: {value:?}");
    }
}

#[actix_rt::test]
async fn an_ordered_channel_stays_on_one_lane() {
    let sent = Sent::default();
    let addr = two_lanes(&sent);
    let replies = (0..20).map(|i| {
        let ordered = (i % 2 == 0).then_some("ordered/channel-7");
        addr.send(request(format!("p{i}"), ordered))
    });
    for reply in futures::future::join_all(replies).await {
        reply.expect("mailbox").expect("landed");
    }
    let sent = sent.borrow();
    let ordered: Vec<&(String, Vec<u8>)> = sent
        .iter()
        .filter(|(_, v)| {
            let text = String::from_utf8_lossy(v);
            let n: usize = text
                .rsplit('p')
                .next()
                .and_then(|d| d.parse().ok())
                .expect("index");
            n.is_multiple_of(2)
        })
        .collect();
    assert_eq!(ordered.len(), 10);
    assert!(
        ordered.iter().all(|(a, _)| *a == ordered[0].0),
        "{ordered:?}"
    );
    // And in the order they were sent.
    let order: Vec<usize> = ordered
        .iter()
        .map(|(_, v)| {
            let text = String::from_utf8_lossy(v);
            text.rsplit('p')
                .next()
                .and_then(|d| d.parse().ok())
                .expect("index")
        })
        .collect();
    assert_eq!(order, (0..20).step_by(2).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn a_lane_below_the_minimum_takes_nothing_while_the_other_has_funds() {
    let sent = Sent::default();
    let funds = |b: u128| Some(Rc::new(Cell::new(b)));
    let board = LaneBoard::default();
    let addr = TxSubmitter::new(
        ChainId::new("chain-a").expect("chain id"),
        Account {
            name: "first".into(),
            owns: false,
            sent: sent.clone(),
            balance: funds(1000),
        },
        ExitGuard::unwatched(ActorKind::TxSubmitter),
    )
    .with_lane(Account {
        name: "second".into(),
        owns: true,
        sent: sent.clone(),
        balance: funds(99),
    })
    .with_board(board.clone())
    .start();
    // The balances are read as the actor starts; wait until the board shows the reading.
    for _ in 0..100 {
        if board.lanes().iter().any(|l| l.drained) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let lanes = board.lanes();
    assert_eq!(lanes.len(), 2);
    assert!(!lanes[0].low && !lanes[0].drained, "{lanes:?}");
    assert!(lanes[1].low && lanes[1].drained, "{lanes:?}");
    assert_eq!(lanes[1].balance.as_deref(), Some("99"));
    assert_eq!(lanes[1].min_balance.as_deref(), Some("100"));
    let replies = (0..20).map(|i| {
        let ordered = (i % 3 == 0).then_some("ordered/channel-7");
        addr.send(request(format!("p{i}"), ordered))
    });
    for reply in futures::future::join_all(replies).await {
        reply.expect("mailbox").expect("landed");
    }
    let sent = sent.borrow();
    assert_eq!(sent.len(), 20, "each request sent once");
    assert!(sent.iter().all(|(a, _)| a == "first"), "{sent:?}");
}

#[actix_rt::test]
async fn lanes_without_wallets_show_their_key_ids_on_the_board() {
    // Two access keys of one account (as on NEAR): the board tells the lanes apart by key, not by address.
    let sent = Sent::default();
    let board = LaneBoard::default();
    let account = |name: &str| Account {
        name: name.into(),
        owns: false,
        sent: sent.clone(),
        balance: None,
    };
    let addr = TxSubmitter::new(
        ChainId::new("chain-a").expect("chain id"),
        account("relayer"),
        ExitGuard::unwatched(ActorKind::TxSubmitter),
    )
    .with_lane(account("relayer"))
    .with_board(board.clone())
    .start();
    addr.send(request("p0".into(), None))
        .await
        .expect("mailbox")
        .expect("landed");
    let lanes = board.lanes();
    assert_eq!(lanes.len(), 2);
    assert!(lanes
        .iter()
        .all(|l| l.key == "pk-relayer" && l.address == "relayer"));
    // A lane with a wallet is named by its wallet's key.
    let board = LaneBoard::default();
    let addr = TxSubmitter::new(
        ChainId::new("chain-a").expect("chain id"),
        Account {
            balance: Some(Rc::new(Cell::new(1000))),
            ..account("funded")
        },
        ExitGuard::unwatched(ActorKind::TxSubmitter),
    )
    .with_board(board.clone())
    .start();
    addr.send(request("p1".into(), None))
        .await
        .expect("mailbox")
        .expect("landed");
    assert_eq!(board.lanes()[0].key, "funded");
}
