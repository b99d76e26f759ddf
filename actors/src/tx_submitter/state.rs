//! The TxSubmitter's pure core: which signer lane takes a request, which requests go into a lane's next
//! transaction (priority, batching, halves of refused batches), whether another may be admitted while others
//! wait for their blocks, and which client updates are known as committed. No actix and no IO; the actor shell
//! drives it and owns the futures.

use std::collections::{HashSet, VecDeque};

use relayd_messages::{Datagram, ErrorKind, SubmitTx};

/// Client updates remembered as committed; older ones are forgotten first.
const KNOWN_UPDATES: usize = 4096;

/// A client update as the submitter tracks it: (client, height).
pub(super) type UpdateKey = (String, u64);

/// One queued request and whatever the shell needs to answer it (`R`: a reply channel there, anything in tests).
pub(super) struct Pending<R> {
    /// The request as received.
    pub request: SubmitTx,
    /// How its caller hears the outcome.
    pub reply: R,
}

/// How much one chain takes at once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Messages per transaction.
    pub max_msgs: usize,
    /// Transactions admitted and waiting for their block.
    pub max_in_flight: usize,
}

impl Limits {
    /// Limits as a backend states them, each at least one.
    pub fn new(max_msgs: usize, max_in_flight: usize) -> Self {
        Self {
            max_msgs: max_msgs.max(1),
            max_in_flight: max_in_flight.max(1),
        }
    }
}

/// The queue of one chain's requests and what the submitter knows about the chain's client updates.
pub(super) struct Queue<R> {
    pending: VecDeque<Pending<R>>,
    /// Halves of refused batches, each to go out as a transaction of its own, first half first.
    split: VecDeque<Vec<Pending<R>>>,
    /// A drain task is running.
    busy: bool,
    known: HashSet<UpdateKey>,
    known_order: VecDeque<UpdateKey>,
    /// Shutting down: no new transaction starts; requests stay queued until the actor stops.
    closing: bool,
    /// Requests taken off the queue for a transaction and not yet answered or queued again.
    taken: usize,
}

impl<R> Default for Queue<R> {
    fn default() -> Self {
        Self {
            pending: VecDeque::new(),
            split: VecDeque::new(),
            busy: false,
            known: HashSet::new(),
            known_order: VecDeque::new(),
            closing: false,
            taken: 0,
        }
    }
}

impl<R> Queue<R> {
    /// Queues a request; `true` when a drain must be started for it (none runs and the queue is not closing).
    pub fn enqueue(&mut self, p: Pending<R>) -> bool {
        self.pending.push_back(p);
        !self.closing && !std::mem::replace(&mut self.busy, true)
    }

    /// The work this queue holds: requests queued, halves waiting to go out again, and requests in transactions
    /// being admitted or waiting for their blocks.
    pub fn load(&self) -> usize {
        self.pending.len() + self.split.iter().map(Vec::len).sum::<usize>() + self.taken
    }

    /// Requests taken off the queue for transactions and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.taken
    }

    /// `n` requests taken for a transaction were answered.
    pub fn settled(&mut self, n: usize) {
        self.taken = self.taken.saturating_sub(n);
    }

    /// Starts shutting down; `true` while a drain still runs (its end is worth waiting for).
    pub fn close(&mut self) -> bool {
        self.closing = true;
        self.busy
    }

    /// Once closing, the requests that will never be sent (queued, or halves of refused batches), taken off
    /// the queue for their callers to hear so now rather than when the actor stops; empty before closing.
    pub fn unsent(&mut self) -> Vec<Pending<R>> {
        if !self.closing {
            return Vec::new();
        }
        let mut unsent: Vec<Pending<R>> = self.pending.drain(..).collect();
        unsent.extend(self.split.drain(..).flatten());
        unsent
    }

    /// The next transaction's requests, if one may be admitted now with `in_flight` transactions waiting for
    /// their blocks: none while closing or with the pipeline full.
    pub fn next_to_admit(&mut self, in_flight: usize, limits: Limits) -> Option<Vec<Pending<R>>> {
        if self.closing || in_flight >= limits.max_in_flight {
            return None;
        }
        let group = self.next_group(limits.max_msgs)?;
        self.taken += group.len();
        Some(group)
    }

    /// Called when nothing is being admitted or in flight: `true` (and the drain marked ended) when the drain
    /// should stop, because the queue is closing or empty; `false` when queued work remains.
    pub fn finish_if_idle(&mut self) -> bool {
        let queued = !self.pending.is_empty() || !self.split.is_empty();
        if self.closing || !queued {
            self.busy = false;
            return true;
        }
        false
    }

    /// The messages a request adds to a transaction that already holds the updates `taken`: its datagrams, and
    /// its update unless committed or already in the transaction.
    fn added_messages(&self, taken: &[UpdateKey], p: &Pending<R>) -> usize {
        let update = match &p.request.update {
            Some((client, height, msgs)) => {
                let key = (client.to_string(), *height);
                if self.known.contains(&key) || taken.contains(&key) {
                    0
                } else {
                    msgs.len()
                }
            }
            None => 0,
        };
        update + p.request.datagrams.len()
    }

    /// Takes requests off the queue for one transaction, up to `max_msgs` messages (updates included): higher
    /// priority first, and first come, first served within a priority (the sort is stable).
    fn take_batch(&mut self, max_msgs: usize) -> Vec<Pending<R>> {
        self.pending
            .make_contiguous()
            .sort_by_key(|p| std::cmp::Reverse(p.request.priority));
        let mut taken = Vec::new();
        let mut updates: Vec<UpdateKey> = Vec::new();
        let mut count = 0;
        while let Some(p) = self.pending.front() {
            let n = self.added_messages(&updates, p);
            if count > 0 && count + n > max_msgs {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            if let Some((client, height, _)) = &p.request.update {
                updates.push((client.to_string(), *height));
            }
            count += n;
            taken.push(p);
        }
        taken
    }

    /// The next transaction's requests: the first half of a refused batch, unless queued requests of a higher
    /// priority wait.
    fn next_group(&mut self, max_msgs: usize) -> Option<Vec<Pending<R>>> {
        let top = self.pending.iter().map(|p| p.request.priority).max();
        let split = self
            .split
            .front()
            .and_then(|g| g.iter().map(|p| p.request.priority).max());
        match (split, top) {
            (Some(s), Some(t)) if t > s => Some(self.take_batch(max_msgs)),
            (Some(_), _) => self.split.pop_front(),
            (None, Some(_)) => Some(self.take_batch(max_msgs)),
            (None, None) => None,
        }
    }

    /// Records a transaction's client updates as committed, forgetting the oldest beyond [`KNOWN_UPDATES`].
    pub fn remember(&mut self, updates: Vec<UpdateKey>) {
        for key in updates {
            if self.known.insert(key.clone()) {
                self.known_order.push_back(key);
            }
        }
        while self.known_order.len() > KNOWN_UPDATES {
            if let Some(old) = self.known_order.pop_front() {
                self.known.remove(&old);
            }
        }
    }

    /// The messages of one transaction for `group`: its update messages (each (client, height) once, skipping
    /// ones already committed) followed by its datagrams. An update only in flight in another transaction is
    /// carried again: the chain checks and simulates a transaction against committed state, without the effects
    /// of those still in its mempool, and installing the same header twice is a no-op.
    pub fn messages_of(&self, group: &[Pending<R>]) -> (Vec<Datagram>, Vec<UpdateKey>) {
        let mut msgs = Vec::new();
        let mut datagrams = Vec::new();
        let mut updates: Vec<UpdateKey> = Vec::new();
        for p in group {
            if let Some((client, height, update)) = &p.request.update {
                let key = (client.to_string(), *height);
                if !self.known.contains(&key) && !updates.contains(&key) {
                    msgs.extend(update.iter().cloned());
                    updates.push(key);
                }
            }
            datagrams.extend(p.request.datagrams.iter().cloned());
        }
        msgs.extend(datagrams);
        (msgs, updates)
    }

    /// A failed transaction's group: when the chain refused it (`kind` is [`ErrorKind::Rejected`]) and it holds
    /// more than one request, it is halved and queued again, so that one bad datagram fails alone (a few more
    /// transactions for it, instead of losing the batch), and `None` is returned; otherwise the group comes back
    /// to be answered with the failure.
    pub fn refused(
        &mut self,
        kind: ErrorKind,
        mut group: Vec<Pending<R>>,
    ) -> Option<Vec<Pending<R>>> {
        self.settled(group.len());
        if kind != ErrorKind::Rejected || group.len() < 2 {
            return Some(group);
        }
        let second = group.split_off(group.len() / 2);
        self.split.push_front(second);
        self.split.push_front(group);
        None
    }
}

/// The signer lane that takes a request, of `loads.len()` lanes (each lane's [`Queue::load`]): a request of an
/// ordered channel always the same lane, picked from the channel's name alone, so that the channel's
/// transactions keep one account sequence and their order; any other the lane with the least work, the first
/// of equals. With no lanes (never built so) lane 0.
pub(super) fn choose_lane(ordered_channel: Option<&str>, loads: &[usize]) -> usize {
    if loads.len() < 2 {
        return 0;
    }
    match ordered_channel {
        // FNV-1a: stable across runs and builds, unlike the standard library's hasher.
        Some(channel) => {
            let hash = channel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (hash % loads.len() as u64) as usize
        }
        None => loads
            .iter()
            .enumerate()
            .min_by_key(|(i, load)| (**load, *i))
            .map_or(0, |(i, _)| i),
    }
}

#[cfg(test)]
mod tests {
    use relayd_messages::{ClientId, CorrelationId, Datagram, ErrorKind, SubmitTx};

    use super::{choose_lane, Limits, Pending, Queue};

    fn datagram(value: &str) -> Datagram {
        Datagram {
            type_url: "recv".into(),
            value: value.as_bytes().to_vec(),
        }
    }

    /// Request `id` with `n` datagrams, an optional update at `height` (one message) and a priority.
    fn pending(id: u32, n: usize, height: Option<u64>, priority: u8) -> Pending<u32> {
        let client = ClientId::new("07-tendermint-0").expect("client id");
        Pending {
            request: SubmitTx {
                correlation: CorrelationId::fresh(),
                update: height.map(|h| (client, h, vec![datagram("update")])),
                datagrams: (0..n).map(|i| datagram(&format!("{id}.{i}"))).collect(),
                priority,
                ordered_channel: None,
            },
            reply: id,
        }
    }

    fn ids(group: &[Pending<u32>]) -> Vec<u32> {
        group.iter().map(|p| p.reply).collect()
    }

    fn limits(max_msgs: usize, max_in_flight: usize) -> Limits {
        Limits::new(max_msgs, max_in_flight)
    }

    #[test]
    fn a_batch_fills_up_to_max_msgs_counting_a_shared_update_once() {
        let mut q = Queue::default();
        for id in 0..4 {
            q.enqueue(pending(id, 1, Some(7), 0));
        }
        // One update message plus one datagram each: 1 + 3 fit in four messages, the fourth request waits.
        let group = q.next_to_admit(0, limits(4, 1)).expect("a group");
        assert_eq!(ids(&group), vec![0, 1, 2]);
        let (msgs, updates) = q.messages_of(&group);
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0].value, b"update");
        assert_eq!(updates, vec![("07-tendermint-0".to_string(), 7)]);
        assert_eq!(
            ids(&q.next_to_admit(0, limits(4, 1)).expect("rest")),
            vec![3]
        );
        assert!(q.next_to_admit(0, limits(4, 1)).is_none());
    }

    #[test]
    fn a_request_larger_than_max_msgs_still_goes_out_alone() {
        let mut q = Queue::default();
        q.enqueue(pending(0, 5, None, 0));
        q.enqueue(pending(1, 1, None, 0));
        assert_eq!(
            ids(&q.next_to_admit(0, limits(2, 1)).expect("big")),
            vec![0]
        );
        assert_eq!(
            ids(&q.next_to_admit(0, limits(2, 1)).expect("small")),
            vec![1]
        );
    }

    #[test]
    fn higher_priority_goes_first_and_equal_priority_keeps_arrival_order() {
        let mut q = Queue::default();
        for (id, priority) in [(0, 0), (1, 0), (2, 9), (3, 0)] {
            q.enqueue(pending(id, 1, None, priority));
        }
        assert_eq!(
            ids(&q.next_to_admit(0, limits(2, 1)).expect("first")),
            vec![2, 0]
        );
        assert_eq!(
            ids(&q.next_to_admit(0, limits(2, 1)).expect("second")),
            vec![1, 3]
        );
    }

    #[test]
    fn nothing_is_admitted_with_the_pipeline_full_or_while_closing() {
        let mut q = Queue::default();
        assert!(
            q.enqueue(pending(0, 1, None, 0)),
            "the first request starts a drain"
        );
        assert!(
            !q.enqueue(pending(1, 1, None, 0)),
            "a running drain takes later ones"
        );
        assert!(q.next_to_admit(2, limits(10, 2)).is_none());
        assert!(q.next_to_admit(1, limits(10, 2)).is_some());
        q.enqueue(pending(2, 1, None, 0));
        assert!(q.close(), "a drain is still running");
        assert!(q.next_to_admit(0, limits(10, 2)).is_none());
        assert!(
            q.finish_if_idle(),
            "closing ends the drain even with requests queued"
        );
        assert!(!q.close(), "no drain runs any more");
        assert!(
            !q.enqueue(pending(3, 1, None, 0)),
            "no drain starts while closing"
        );
    }

    #[test]
    fn once_closing_queued_requests_and_refused_halves_are_handed_back_unsent() {
        let mut q = Queue::default();
        q.enqueue(pending(0, 1, None, 0));
        q.enqueue(pending(1, 1, None, 0));
        assert!(q.unsent().is_empty(), "nothing is unsent before closing");
        let group = q.next_to_admit(0, limits(1, 2)).expect("one admitted");
        q.close();
        assert_eq!(
            ids(&q.unsent()),
            vec![1],
            "the queued request, not the one in flight"
        );
        // The transaction in flight is refused after closing: its halves never go out either.
        q.enqueue(pending(2, 1, None, 0));
        let mut both = group;
        both.push(pending(3, 1, None, 0));
        assert!(q.refused(ErrorKind::Rejected, both).is_none());
        assert_eq!(ids(&q.unsent()), vec![2, 0, 3]);
        assert!(q.unsent().is_empty());
    }

    #[test]
    fn the_drain_ends_only_once_nothing_is_queued() {
        let mut q = Queue::default();
        q.enqueue(pending(0, 1, None, 0));
        assert!(!q.finish_if_idle());
        let _ = q.next_to_admit(0, limits(10, 1));
        assert!(q.finish_if_idle());
        assert!(
            q.enqueue(pending(1, 1, None, 0)),
            "the next request starts a new drain"
        );
    }

    #[test]
    fn a_refused_batch_is_halved_until_single_requests_fail_alone() {
        let mut q = Queue::default();
        for id in 0..4 {
            q.enqueue(pending(id, 1, None, 0));
        }
        let group = q.next_to_admit(0, limits(10, 1)).expect("all four");
        assert!(q.refused(ErrorKind::Rejected, group).is_none());
        let first = q.next_to_admit(0, limits(10, 1)).expect("first half");
        assert_eq!(ids(&first), vec![0, 1]);
        assert!(q.refused(ErrorKind::Rejected, first).is_none());
        assert_eq!(ids(&q.next_to_admit(0, limits(10, 1)).expect("0")), vec![0]);
        let one = q.next_to_admit(0, limits(10, 1)).expect("1");
        assert_eq!(ids(&one), vec![1]);
        let answered = q
            .refused(ErrorKind::Rejected, one)
            .expect("a single request is answered");
        assert_eq!(ids(&answered), vec![1]);
        assert_eq!(
            ids(&q.next_to_admit(0, limits(10, 1)).expect("second half")),
            vec![2, 3]
        );
    }

    #[test]
    fn failures_other_than_refusal_are_answered_whole() {
        let mut q = Queue::default();
        q.enqueue(pending(0, 1, None, 0));
        q.enqueue(pending(1, 1, None, 0));
        let group = q.next_to_admit(0, limits(10, 1)).expect("both");
        let answered = q.refused(ErrorKind::Unavailable, group).expect("not split");
        assert_eq!(ids(&answered), vec![0, 1]);
        assert!(q.next_to_admit(0, limits(10, 1)).is_none());
    }

    #[test]
    fn queued_higher_priority_overtakes_a_refused_half() {
        let mut q = Queue::default();
        q.enqueue(pending(0, 1, None, 0));
        q.enqueue(pending(1, 1, None, 0));
        let group = q.next_to_admit(0, limits(10, 1)).expect("both");
        assert!(q.refused(ErrorKind::Rejected, group).is_none());
        q.enqueue(pending(2, 1, None, 5));
        q.enqueue(pending(3, 1, None, 0));
        assert_eq!(
            ids(&q.next_to_admit(0, limits(10, 1)).expect("urgent")),
            vec![2, 3]
        );
        assert_eq!(
            ids(&q.next_to_admit(0, limits(10, 1)).expect("half")),
            vec![0]
        );
    }

    #[test]
    fn a_committed_update_is_not_sent_again_and_one_only_in_flight_is() {
        let mut q = Queue::default();
        q.enqueue(pending(0, 1, Some(7), 0));
        let first = q.next_to_admit(0, limits(10, 2)).expect("first");
        let (_, updates) = q.messages_of(&first);
        q.enqueue(pending(1, 1, Some(7), 0));
        let second = q.next_to_admit(1, limits(10, 2)).expect("second");
        let (msgs, _) = q.messages_of(&second);
        assert_eq!(
            msgs.len(),
            2,
            "the update is only in flight, so it travels again"
        );
        q.remember(updates);
        let (msgs, again) = q.messages_of(&second);
        assert_eq!(msgs.len(), 1, "once committed, only the datagram is left");
        assert!(again.is_empty());
        q.enqueue(pending(2, 0, Some(7), 0));
        let refresh = q.next_to_admit(0, limits(10, 2)).expect("refresh");
        assert!(
            q.messages_of(&refresh).0.is_empty(),
            "an update-only request has nothing left"
        );
    }

    #[test]
    fn the_oldest_committed_updates_are_forgotten_past_the_bound() {
        let mut q: Queue<u32> = Queue::default();
        q.remember(
            (0..super::KNOWN_UPDATES as u64 + 1)
                .map(|h| ("c".to_string(), h))
                .collect(),
        );
        assert_eq!(q.known.len(), super::KNOWN_UPDATES);
        assert!(!q.known.contains(&("c".to_string(), 0)));
        assert!(q
            .known
            .contains(&("c".to_string(), super::KNOWN_UPDATES as u64)));
    }

    #[test]
    fn unordered_requests_go_to_the_least_loaded_lane_the_first_of_equals() {
        assert_eq!(choose_lane(None, &[0, 0, 0]), 0);
        assert_eq!(choose_lane(None, &[3, 1, 2]), 1);
        assert_eq!(choose_lane(None, &[2, 5, 2]), 0);
        assert_eq!(choose_lane(None, &[4, 4, 0, 0]), 2);
        assert_eq!(choose_lane(Some("transfer/channel-0"), &[7]), 0);
        assert_eq!(choose_lane(None, &[]), 0);
    }

    #[test]
    fn an_ordered_channel_keeps_one_lane_whatever_the_load() {
        let loads = [[0, 0, 0, 0], [9, 0, 0, 0], [0, 9, 9, 9], [5, 5, 0, 5]];
        let lane = choose_lane(Some("ordered/channel-3"), &loads[0]);
        for l in &loads[1..] {
            assert_eq!(choose_lane(Some("ordered/channel-3"), l), lane);
        }
        // Channels spread over the lanes: among a few dozen names every one of four lanes is picked.
        let mut used = [false; 4];
        for i in 0..32 {
            used[choose_lane(Some(&format!("ordered/channel-{i}")), &[0; 4])] = true;
        }
        assert_eq!(used, [true; 4]);
    }

    #[test]
    fn the_load_counts_queued_split_and_taken_requests_until_answered() {
        let mut q = Queue::default();
        for id in 0..3 {
            q.enqueue(pending(id, 1, None, 0));
        }
        assert_eq!(q.load(), 3);
        let group = q.next_to_admit(0, limits(2, 2)).expect("two");
        assert_eq!(q.load(), 3, "taken requests still count");
        assert!(q.refused(ErrorKind::Rejected, group).is_none());
        assert_eq!(q.load(), 3, "halves queued again count once");
        let one = q.next_to_admit(0, limits(2, 2)).expect("first half");
        q.settled(one.len());
        assert_eq!(q.load(), 2);
        let other = q.next_to_admit(0, limits(2, 2)).expect("second half");
        let answered = q.refused(ErrorKind::Unavailable, other).expect("answered");
        assert_eq!(answered.len(), 1);
        assert_eq!(q.load(), 1);
    }
}
