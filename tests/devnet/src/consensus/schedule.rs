//! Validator-set changes on a schedule, so light clients of a devnet chain meet what they meet on a real chain:
//! validators joining, leaving and changing power, and once in every cycle a change of more than a third of the
//! power between two heights, which skipping verification can only cross by bisecting.
//!
//! CometBFT's timing is kept: the updates an application returns at the end of block H (they appear in
//! `block_results` H as `validator_updates`) govern block H + 2. Header H carries the hash of the set of H as
//! `validators_hash` and that of H + 1 as `next_validators_hash`, and the commit of H is signed by the set of H.

use tendermint::{validator, vote, PublicKey};

use crate::genesis::ValidatorKey;

/// Power of a validator at genesis and after it joins.
const BASE_POWER: u64 = 10;
/// Power of the validator whose power is raised in the second phase of a cycle.
const RAISED_POWER: u64 = 30;
/// Phases of one cycle of changes; after the last one the other group takes over entirely.
const PHASES: u64 = 4;

/// Which validators sign which heights.
#[derive(Clone)]
pub struct Schedule {
    /// Every key that ever signs: the genesis group, then the standby group (as many), then the joiner.
    pool: Vec<ValidatorKey>,
    /// Size of the genesis group.
    group: usize,
    /// Blocks between decided changes; `None` for a fixed set.
    every: Option<u64>,
}

impl Schedule {
    /// The genesis validators for every height.
    pub fn fixed(validators: Vec<ValidatorKey>) -> Self {
        let group = validators.len();
        Self {
            pool: validators,
            group,
            every: None,
        }
    }

    /// Starts with `genesis` and decides a change at every multiple of `every` (at least 1): one of four phases
    /// in turn. With the current group G (all at power 10) and the standby group S (as many keys as G):
    /// 1. G's first validator's power goes to 30;
    /// 2. the joiner (a key of neither group) joins at power 10;
    /// 3. G's first validator leaves;
    /// 4. S replaces every validator (no power carries over), and S is the current group from then on.
    ///
    /// `standby` must hold `genesis.len() + 1` keys (the standby group, then the joiner).
    pub fn rotating(genesis: Vec<ValidatorKey>, standby: Vec<ValidatorKey>, every: u64) -> Self {
        let group = genesis.len();
        let mut pool = genesis;
        pool.extend(standby);
        let usable = pool.len() > 2 * group && group > 0;
        Self {
            pool,
            group,
            every: usable.then_some(every.max(1)),
        }
    }

    /// Blocks between decided changes, if the set changes.
    pub fn every(&self) -> Option<u64> {
        self.every
    }

    /// How many changes govern `height`: those decided at heights `k × every` with `k × every + 2 <= height`.
    pub fn changes_before(&self, height: u64) -> u64 {
        match self.every {
            Some(n) if height >= 2 => (height - 2) / n,
            _ => 0,
        }
    }

    /// The validators after `changes` changes, as (pool index, power).
    fn members(&self, changes: u64) -> Vec<(usize, u64)> {
        if self.every.is_none() {
            return (0..self.group).map(|i| (i, BASE_POWER)).collect();
        }
        let current = ((changes / PHASES) % 2) as usize * self.group;
        let joiner = 2 * self.group;
        let group = current..current + self.group;
        let mut out: Vec<(usize, u64)> = match changes % PHASES {
            0 => group.map(|i| (i, BASE_POWER)).collect(),
            1 | 2 => group
                .map(|i| {
                    (
                        i,
                        if i == current {
                            RAISED_POWER
                        } else {
                            BASE_POWER
                        },
                    )
                })
                .collect(),
            _ => group.skip(1).map(|i| (i, BASE_POWER)).collect(),
        };
        if changes % PHASES >= 2 {
            out.push((joiner, BASE_POWER));
        }
        out
    }

    fn keys(&self, members: &[(usize, u64)]) -> Vec<ValidatorKey> {
        members
            .iter()
            .map(|&(i, power)| ValidatorKey {
                signing_key: self.pool[i].signing_key.clone(),
                power,
            })
            .collect()
    }

    /// The validators (keys and powers) that sign `height`.
    pub fn signers_at(&self, height: u64) -> Vec<ValidatorKey> {
        self.keys(&self.members(self.changes_before(height)))
    }

    /// The validator set of `height`, in CometBFT's order.
    pub fn set_at(&self, height: u64) -> validator::Set {
        let infos: Vec<_> = self
            .signers_at(height)
            .iter()
            .map(ValidatorKey::info)
            .collect();
        validator::Set::without_proposer(infos)
    }

    /// The updates decided at the end of `height` (what `block_results` reports): each validator whose power
    /// changes, with power 0 for one that leaves, ordered by public key.
    #[allow(clippy::expect_used, reason = "devnet powers are small")]
    pub fn updates_at(&self, height: u64) -> Vec<validator::Update> {
        let Some(n) = self.every else {
            return Vec::new();
        };
        if height == 0 || !height.is_multiple_of(n) {
            return Vec::new();
        }
        let changes = height / n;
        let before = self.members(changes - 1);
        let after = self.members(changes);
        let power_in = |set: &[(usize, u64)], i: usize| {
            set.iter().find(|(j, _)| *j == i).map_or(0, |(_, p)| *p)
        };
        let mut touched: Vec<usize> = before.iter().chain(&after).map(|(i, _)| *i).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut updates: Vec<validator::Update> = touched
            .into_iter()
            .filter(|&i| power_in(&before, i) != power_in(&after, i))
            .map(|i| validator::Update {
                pub_key: self.pool[i].public_key(),
                power: vote::Power::try_from(power_in(&after, i)).expect("devnet powers are small"),
            })
            .collect();
        updates.sort_by_key(|u| public_key_bytes(&u.pub_key));
        updates
    }

    /// The key of the validator with this address, whatever set it belongs to.
    pub fn key(&self, address: &tendermint::account::Id) -> Option<&ValidatorKey> {
        self.pool
            .iter()
            .find(|k| tendermint::account::Id::from(k.public_key()) == *address)
    }

    /// The first genesis validator, whose key identifies the node.
    pub fn node_key(&self) -> &ValidatorKey {
        &self.pool[0]
    }
}

fn public_key_bytes(key: &PublicKey) -> Vec<u8> {
    key.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisOptions};

    fn schedule(every: u64) -> Schedule {
        let g = Genesis::build(&GenesisOptions {
            seed: Some("schedule".into()),
            validators: 3,
            ..GenesisOptions::default()
        })
        .unwrap();
        Schedule::rotating(g.validators.clone(), g.standby.clone(), every)
    }

    fn power(set: &validator::Set) -> u64 {
        set.total_voting_power().value()
    }

    /// The share of `from`'s power held by validators also in `to`, in percent.
    fn kept_percent(from: &validator::Set, to: &validator::Set) -> u64 {
        let kept: u64 = from
            .validators()
            .iter()
            .filter(|v| to.validator(v.address).is_some())
            .map(|v| v.power.value())
            .sum();
        kept * 100 / power(from)
    }

    #[test]
    fn a_change_decided_at_h_governs_h_plus_two() {
        let s = schedule(5);
        assert_eq!(s.set_at(1).hash(), s.set_at(6).hash());
        assert!(s.updates_at(4).is_empty());
        let updates = s.updates_at(5);
        assert_eq!(updates.len(), 1, "one validator's power changes");
        assert_eq!(updates[0].power.value(), RAISED_POWER);
        assert_ne!(s.set_at(7).hash(), s.set_at(6).hash());
        assert_eq!(s.set_at(7).hash(), s.set_at(11).hash());
        assert_eq!(power(&s.set_at(7)), 2 * BASE_POWER + RAISED_POWER);
    }

    #[test]
    fn a_cycle_joins_raises_removes_and_swaps_the_whole_set() {
        let s = schedule(2);
        // Changes take effect at 4, 6, 8, 10 (decided at 2, 4, 6, 8).
        let sets: Vec<validator::Set> = [3, 4, 6, 8, 10].iter().map(|&h| s.set_at(h)).collect();
        assert_eq!(sets[0].validators().len(), 3);
        assert_eq!(sets[2].validators().len(), 4, "the joiner joined");
        assert_eq!(sets[3].validators().len(), 3, "the raised validator left");
        assert_eq!(
            s.updates_at(6)
                .iter()
                .filter(|u| u.power.value() == 0)
                .count(),
            1
        );
        // The swap keeps none of the power: more than a third moves between heights 9 and 10.
        assert_eq!(kept_percent(&sets[3], &sets[4]), 0);
        assert_eq!(s.updates_at(8).len(), 6, "three leave, three join");
        for v in sets[4].validators() {
            assert!(sets[0].validator(v.address).is_none());
        }
        // After two cycles the genesis group is back.
        assert_eq!(s.set_at(3 + 16).hash(), sets[0].hash());
    }

    #[test]
    fn a_fixed_schedule_never_changes() {
        let g = Genesis::build(&GenesisOptions::default()).unwrap();
        let s = Schedule::fixed(g.validators.clone());
        assert_eq!(s.set_at(1).hash(), s.set_at(1000).hash());
        assert!(s.updates_at(10).is_empty());
        assert_eq!(s.set_at(1).hash(), g.validator_set().hash());
    }
}
