//! Tests of the devnet node's block production and indexes.

use super::*;
use crate::genesis::{Genesis, GenesisOptions};
use sha2::{Digest, Sha256};

/// A key-value app: `key=value` transactions, app hash = sha256 over all pairs.
#[derive(Default)]
struct KvApp {
    committed: std::collections::BTreeMap<String, String>,
    pending: std::collections::BTreeMap<String, String>,
    hash: Vec<u8>,
}

impl Application for KvApp {
    fn check_tx(&mut self, tx: &[u8]) -> abci::response::CheckTx {
        if tx.contains(&b'=') {
            return abci::response::CheckTx::default();
        }
        abci::response::CheckTx {
            code: 1.into(),
            log: "not key=value".into(),
            ..Default::default()
        }
    }
    fn begin_block(&mut self, _header: &Header) {}
    fn deliver_tx(&mut self, tx: &[u8]) -> abci::types::ExecTxResult {
        let text = String::from_utf8_lossy(tx);
        let (k, v) = text.split_once('=').unwrap_or((&text, ""));
        self.pending.insert(k.to_owned(), v.to_owned());
        // Two events with the same pair, so the index's one-entry-per-transaction rule is exercised.
        let event = abci::Event::new("set", [("key", k), ("value", v)]);
        abci::types::ExecTxResult {
            events: vec![event.clone(), event],
            ..Default::default()
        }
    }
    fn commit(&mut self) -> Vec<u8> {
        self.committed = self.pending.clone();
        self.hash = Sha256::digest(format!("{:?}", self.committed)).to_vec();
        self.hash.clone()
    }
    fn query(&self, _path: &str, data: &[u8], _height: u64, _prove: bool) -> abci::response::Query {
        let mut r = abci::response::Query::default();
        let key = String::from_utf8_lossy(data).into_owned();
        r.value = self
            .committed
            .get(&key)
            .cloned()
            .unwrap_or_default()
            .into_bytes()
            .into();
        r
    }
    fn last_app_hash(&self) -> Vec<u8> {
        self.hash.clone()
    }
}

fn node() -> Node<KvApp> {
    let g = Genesis::build(&GenesisOptions {
        seed: Some("node".into()),
        ..Default::default()
    })
    .unwrap();
    Node::new(
        g.chain_id.clone(),
        g.genesis_time,
        Schedule::fixed(g.validators.clone()),
        KvApp::default(),
    )
}

#[test]
fn blocks_carry_the_previous_app_hash_and_index_their_txs() {
    let node = node();
    let mut events = node.subscribe();
    assert!(node.submit_tx(b"a=1".to_vec()).unwrap().code.is_ok());
    assert_eq!(
        node.submit_tx(b"a=1".to_vec()).unwrap().log,
        "tx already exists in cache"
    );
    assert!(node.submit_tx(b"junk".to_vec()).unwrap().code.is_err());
    assert_eq!(node.mempool_size(), 1);

    let now = (node.genesis_time() + Duration::from_secs(1)).unwrap();
    let b1 = node.produce_block(now).unwrap();
    assert_eq!(b1.block.data().len(), 1);
    let b2 = node.produce_block(now).unwrap();
    assert_eq!(b2.block.header().app_hash, b1.results.app_hash);
    assert!(
        b2.block.header().time > b1.block.header().time,
        "time moves forward"
    );
    assert_eq!(
        b2.block.last_commit().as_ref().map(|c| c.block_id),
        Some(b1.id)
    );

    let chain = node.record().unwrap();
    assert_eq!(chain.latest_height(), 2);
    let tx = chain.tx(&tx_hash(b"a=1")).unwrap();
    assert_eq!((tx.height, tx.index), (1, 0));
    drop(chain);

    assert!(matches!(events.try_recv().unwrap(), NodeEvent::Tx(t) if t.tx == b"a=1"));
    assert!(
        matches!(events.try_recv().unwrap(), NodeEvent::NewBlock { block, .. } if block.header().height.value() == 1)
    );
    assert_eq!(
        node.app().unwrap().query("", b"a", 0, false).value.as_ref(),
        b"1"
    );
}

#[test]
fn committed_transactions_are_found_by_attribute_without_a_scan() {
    let node = node();
    let now = (node.genesis_time() + Duration::from_secs(1)).unwrap();
    for txs in [&["a=1", "b=2"][..], &["a=3"][..], &["c=1"][..]] {
        for tx in txs {
            assert!(node.submit_tx(tx.as_bytes().to_vec()).unwrap().code.is_ok());
        }
        node.produce_block(now).unwrap();
    }
    let chain = node.record().unwrap();
    let found = |k: &str, v: &str| -> Vec<(u64, u32)> {
        chain
            .txs_with_attributes(&[(k, v)])
            .iter()
            .map(|t| (t.height, t.index))
            .collect()
    };
    assert_eq!(found("set.key", "a"), vec![(1, 0), (2, 0)]);
    assert_eq!(found("set.value", "1"), vec![(1, 0), (3, 0)]);
    let both: Vec<(u64, u32)> = chain
        .txs_with_attributes(&[("set.value", "1"), ("set.key", "a")])
        .iter()
        .map(|t| (t.height, t.index))
        .collect();
    assert_eq!(both, vec![(1, 0)], "every pair narrows");
    assert!(chain
        .txs_with_attributes(&[("set.key", "a"), ("set.key", "zz")])
        .is_empty());
    assert_eq!(found("set.key", "b"), vec![(1, 1)]);
    assert!(found("set.key", "z").is_empty());
    assert!(found("other.key", "a").is_empty());
}

#[tokio::test]
async fn the_block_loop_produces_until_shutdown() {
    let node = Arc::new(node());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (_pause, paused) = tokio::sync::watch::channel(false);
    let mut events = node.subscribe();
    let task = tokio::spawn(run_blocks(
        Arc::clone(&node),
        Duration::from_millis(20),
        stopped,
        paused,
    ));
    for _ in 0..3 {
        events.recv().await.unwrap();
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert!(node.record().unwrap().latest_height() >= 3);
}
