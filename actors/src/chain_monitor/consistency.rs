//! Whether a node still agrees with what the monitor followed, judged from heights alone first: a node whose
//! latest height is below the last delivered one went back (restored from an old snapshot, reset, or another
//! chain behind the same address); once it is back at that height, the block there must be the one followed.
//! The Cosmos and the NEAR monitors both judge by it.

/// What to make of the node's latest height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// Follow it.
    Consistent,
    /// Its height is below the last delivered one.
    WentBack,
    /// It was inconsistent and is back at or above the last delivered height: compare the block there with the
    /// one followed before following it again.
    CheckBlock,
}

/// Judges `latest` against `followed` (the last delivered height, 0 before any), knowing whether the node was
/// already found inconsistent.
pub(crate) fn judge(followed: u64, latest: u64, was_inconsistent: bool) -> Judgement {
    if latest < followed {
        Judgement::WentBack
    } else if was_inconsistent {
        Judgement::CheckBlock
    } else {
        Judgement::Consistent
    }
}

/// Whether a new-block notification of `height` is behind the last delivered height (`followed`). It is then not
/// the node's latest height: notifications queue while a catch-up by polling runs past them (a subscription set up
/// during a long catch-up delivers the blocks made meanwhile), so the node is asked for its latest height instead,
/// and only its answer is judged.
pub(crate) fn notification_behind(followed: u64, height: u64) -> bool {
    height < followed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_height_below_the_followed_one_went_back_and_a_return_is_checked() {
        assert_eq!(judge(0, 0, false), Judgement::Consistent);
        assert_eq!(judge(10, 10, false), Judgement::Consistent);
        assert_eq!(judge(10, 12, false), Judgement::Consistent);
        assert_eq!(judge(10, 9, false), Judgement::WentBack);
        assert_eq!(judge(10, 3, true), Judgement::WentBack);
        assert_eq!(judge(10, 10, true), Judgement::CheckBlock);
        assert_eq!(judge(10, 40, true), Judgement::CheckBlock);
    }

    #[test]
    fn a_notification_behind_the_followed_height_is_checked_with_the_node_not_judged() {
        assert!(notification_behind(323, 266));
        assert!(notification_behind(323, 322));
        assert!(!notification_behind(323, 323));
        assert!(!notification_behind(323, 324));
        assert!(!notification_behind(0, 0));
    }
}
