//! The TxSubmitter's pure core for signer funds: which lanes are drained because their account's balance fell
//! below the chain's `min_balance`, which lane a request goes to given that, and which changes are worth an
//! alarm. A drained lane finishes what it holds and takes nothing new while another lane has funds; an ordered
//! channel leaves its lane only once that lane holds nothing, so the channel's order holds. No IO.

use std::collections::HashMap;

use super::state::choose_lane;

/// A lane's account as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Funds {
    /// Not read yet, or no minimum to compare with: the lane takes work.
    #[default]
    Unknown,
    /// At or above the minimum.
    Enough,
    /// Below the minimum.
    Low,
}

/// What a balance reading changed, for the shell to log once per transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Change {
    /// `Some(true)`: the lane fell below the minimum; `Some(false)`: it is back above.
    pub lane_low: Option<bool>,
    /// `Some(true)`: every lane is now below the minimum (relaying goes on with them); `Some(false)`: no
    /// longer.
    pub all_low: Option<bool>,
}

/// The lanes' funds and where each ordered channel moved when its lane was drained.
#[derive(Debug, Default)]
pub(super) struct Router {
    funds: Vec<Funds>,
    /// Ordered channels that left the lane [`choose_lane`] gives them, and the lane they are on now.
    moved: HashMap<String, usize>,
}

impl Router {
    /// A router of `lanes` lanes, none read yet.
    pub fn new(lanes: usize) -> Self {
        Self {
            funds: vec![Funds::Unknown; lanes],
            moved: HashMap::new(),
        }
    }

    fn all_low(&self) -> bool {
        !self.funds.is_empty() && self.funds.iter().all(|f| *f == Funds::Low)
    }

    /// Whether `lane`'s account is below the minimum.
    pub fn is_low(&self, lane: usize) -> bool {
        self.funds.get(lane) == Some(&Funds::Low)
    }

    /// Whether `lane` takes no new work: its account is low and some other lane's is not.
    pub fn is_drained(&self, lane: usize) -> bool {
        self.is_low(lane) && !self.all_low()
    }

    /// `lane`'s account holds `balance`; with `minimum` set, the lane is drained below it and takes work again
    /// at or above it. A lane whose balance could not be read keeps its state (the caller skips this).
    pub fn observed(&mut self, lane: usize, balance: u128, minimum: Option<u128>) -> Change {
        let Some(slot) = self.funds.get(lane).copied() else {
            return Change::default();
        };
        let was_all_low = self.all_low();
        let now = match minimum {
            Some(min) if balance < min => Funds::Low,
            Some(_) => Funds::Enough,
            None => Funds::Unknown,
        };
        self.funds[lane] = now;
        let is_all_low = self.all_low();
        Change {
            lane_low: match (slot == Funds::Low, now == Funds::Low) {
                (false, true) => Some(true),
                (true, false) => Some(false),
                _ => None,
            },
            all_low: (was_all_low != is_all_low).then_some(is_all_low),
        }
    }

    /// The lane that takes a request, given each lane's work (`loads`, each lane's queued and unanswered
    /// requests). A request of no ordered channel goes to the least loaded lane that is not drained. An ordered
    /// channel's goes to its lane ([`choose_lane`], or the one it moved to) unless that lane is drained and holds
    /// nothing any more: then the channel moves to a lane with funds, for good, and its order holds because
    /// nothing of it is left behind. A drained lane that still holds work keeps taking that channel's requests.
    pub fn choose(&mut self, ordered_channel: Option<&str>, loads: &[usize]) -> usize {
        let lanes = loads.len().min(self.funds.len());
        if lanes < 2 {
            return 0;
        }
        let open: Vec<usize> = (0..lanes).filter(|l| !self.is_drained(*l)).collect();
        let Some(channel) = ordered_channel else {
            return open
                .iter()
                .copied()
                .min_by_key(|l| (loads[*l], *l))
                .unwrap_or(0);
        };
        let home = choose_lane(Some(channel), &loads[..lanes]);
        let current = self
            .moved
            .get(channel)
            .copied()
            .filter(|l| *l < lanes)
            .unwrap_or(home);
        if !self.is_drained(current) || loads[current] > 0 {
            return current;
        }
        // The same pick among the open lanes every time, so channels spread over them.
        let open_loads = vec![0; open.len()];
        let next = open
            .get(choose_lane(Some(channel), &open_loads))
            .copied()
            .unwrap_or(home);
        if next == home {
            self.moved.remove(channel);
        } else {
            self.moved.insert(channel.to_owned(), next);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, Router};

    const MIN: Option<u128> = Some(100);

    #[test]
    fn a_low_lane_is_drained_while_another_has_funds_and_takes_work_again_when_topped_up() {
        let mut r = Router::new(2);
        assert_eq!(r.choose(None, &[0, 0]), 0, "unread lanes take work");
        assert_eq!(r.observed(0, 500, MIN), Change::default());
        let change = r.observed(1, 99, MIN);
        assert_eq!(change.lane_low, Some(true));
        assert_eq!(change.all_low, None);
        assert!(r.is_drained(1));
        assert_eq!(
            r.choose(None, &[5, 0]),
            0,
            "the idle lane is drained: the busy one takes the request"
        );
        assert_eq!(r.observed(1, 80, MIN), Change::default(), "no second alarm");
        assert_eq!(r.observed(1, 100, MIN).lane_low, Some(false));
        assert!(!r.is_drained(1));
        assert_eq!(r.choose(None, &[5, 0]), 1);
    }

    #[test]
    fn with_every_lane_low_every_lane_keeps_working_and_that_is_reported_once() {
        let mut r = Router::new(2);
        r.observed(0, 1, MIN);
        assert!(r.is_drained(0));
        let change = r.observed(1, 1, MIN);
        assert_eq!(change.lane_low, Some(true));
        assert_eq!(change.all_low, Some(true));
        assert!(!r.is_drained(0) && !r.is_drained(1));
        assert!(r.is_low(0) && r.is_low(1));
        assert_eq!(r.choose(None, &[3, 1]), 1, "least loaded, low or not");
        assert_eq!(r.observed(1, 2, MIN), Change::default());
        let change = r.observed(0, 1000, MIN);
        assert_eq!(change.lane_low, Some(false));
        assert_eq!(change.all_low, Some(false));
        assert!(r.is_drained(1));
    }

    #[test]
    fn one_lane_low_alone_is_every_lane_low() {
        let mut r = Router::new(1);
        let change = r.observed(0, 0, MIN);
        assert_eq!(change.all_low, Some(true));
        assert!(!r.is_drained(0));
        assert_eq!(r.choose(None, &[4]), 0);
    }

    #[test]
    fn without_a_minimum_no_lane_is_ever_low() {
        let mut r = Router::new(2);
        assert_eq!(r.observed(0, 0, None), Change::default());
        assert!(!r.is_low(0));
    }

    #[test]
    fn an_ordered_channel_leaves_a_drained_lane_only_once_it_holds_nothing_and_stays_moved() {
        let channel = "ordered/channel-7";
        let mut r = Router::new(3);
        let home = r.choose(Some(channel), &[0, 0, 0]);
        r.observed(home, 1, MIN);
        let mut loads = [0, 0, 0];
        loads[home] = 2;
        assert_eq!(
            r.choose(Some(channel), &loads),
            home,
            "its earlier requests are still on the drained lane: order first"
        );
        loads[home] = 0;
        let moved = r.choose(Some(channel), &loads);
        assert_ne!(moved, home);
        assert!(!r.is_drained(moved));
        // Topped up, the home lane does not take the channel back: the channel's requests are on `moved` now.
        r.observed(home, 1000, MIN);
        let mut busy = [0, 0, 0];
        busy[moved] = 1;
        assert_eq!(r.choose(Some(channel), &busy), moved);
        // Unordered requests may use the home lane again.
        assert_eq!(r.choose(None, &busy), if moved == 0 { 1 } else { 0 });
    }

    #[test]
    fn an_ordered_channel_on_a_lane_with_funds_is_not_moved() {
        let channel = "ordered/channel-1";
        let mut r = Router::new(2);
        let home = r.choose(Some(channel), &[0, 0]);
        r.observed(1 - home, 1, MIN);
        assert_eq!(r.choose(Some(channel), &[0, 0]), home);
    }
}
