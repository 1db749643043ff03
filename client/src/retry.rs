//! The one retry and backoff policy, as plain functions of the attempt
//! number and the time spent, so it is tested without sleeping.
//!
//! A caller tries its addresses in turn; after each failed attempt it asks
//! [`RetryPolicy::next`] what to do. Within a round (one attempt per
//! address) it moves on at once; after a whole round it waits
//! [`Backoff::delay`] of that round, which doubles up to a cap. It gives up
//! when the budget is spent, or sooner when no attempt has reached any
//! server for `unreachable_after`: nodes that refuse connections that long
//! are not coming back soon, and saying so beats waiting.

use std::time::Duration;

use crate::limits;

/// Exponential backoff between rounds: `first`, doubling, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed round `round` (1 for the first round).
    pub fn delay(&self, round: u32) -> Duration {
        let doublings = round.saturating_sub(1).min(31);
        self.first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Try the next address after waiting this long (zero within a round).
    Retry(Duration),
    /// Stop: report the last failure.
    GiveUp,
}

/// When to retry a request across a list of addresses, and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    /// Total time one operation keeps retrying.
    pub budget: Duration,
    /// Give up this early when no attempt has reached a server.
    pub unreachable_after: Duration,
}

/// The metadata client's default: retry across elections for 30 s, give
/// up after 5 s if no node accepts a connection at all.
pub const DEFAULT_POLICY: RetryPolicy = RetryPolicy {
    backoff: Backoff {
        first: limits::FIRST_BACKOFF,
        max: limits::MAX_BACKOFF,
    },
    budget: limits::RETRY_BUDGET,
    unreachable_after: limits::UNREACHABLE_AFTER,
};

impl RetryPolicy {
    /// The same policy with another budget (the early give-up never
    /// exceeds the budget).
    pub fn with_budget(self, budget: Duration) -> RetryPolicy {
        RetryPolicy {
            budget,
            unreachable_after: self.unreachable_after.min(budget),
            ..self
        }
    }

    /// After `attempts` failed attempts over `addrs` addresses, `elapsed`
    /// since the first, where `reached` says whether any attempt may have
    /// reached a server.
    pub fn next(&self, attempts: u32, addrs: usize, elapsed: Duration, reached: bool) -> Step {
        if addrs == 0 || elapsed >= self.budget {
            return Step::GiveUp;
        }
        if !reached && elapsed >= self.unreachable_after {
            return Step::GiveUp;
        }
        let addrs = u32::try_from(addrs).unwrap_or(u32::MAX);
        if !attempts.is_multiple_of(addrs) {
            return Step::Retry(Duration::ZERO);
        }
        let wait = self.backoff.delay(attempts / addrs);
        // Never sleep past the budget.
        Step::Retry(wait.min(self.budget - elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            first: 100 * MS,
            max: 1000 * MS,
        };
        let waits: Vec<_> = (1..=6).map(|r| b.delay(r)).collect();
        assert_eq!(
            waits,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        assert_eq!(b.delay(0), 100 * MS);
        assert_eq!(b.delay(u32::MAX), 1000 * MS);
    }

    #[test]
    fn within_a_round_the_next_address_is_tried_at_once() {
        let p = DEFAULT_POLICY;
        assert_eq!(p.next(1, 3, MS, true), Step::Retry(Duration::ZERO));
        assert_eq!(p.next(2, 3, MS, true), Step::Retry(Duration::ZERO));
        assert_eq!(p.next(3, 3, MS, true), Step::Retry(50 * MS));
        assert_eq!(p.next(6, 3, MS, true), Step::Retry(100 * MS));
    }

    #[test]
    fn gives_up_when_the_budget_is_spent() {
        let p = DEFAULT_POLICY;
        assert_eq!(p.next(1, 3, p.budget, true), Step::GiveUp);
        // The last wait is cut to what is left of the budget.
        assert_eq!(
            p.next(30, 3, p.budget - 10 * MS, true),
            Step::Retry(10 * MS)
        );
    }

    #[test]
    fn gives_up_early_only_when_nothing_was_reached() {
        let p = DEFAULT_POLICY;
        let t = p.unreachable_after;
        assert_eq!(p.next(3, 3, t, false), Step::GiveUp);
        assert!(matches!(p.next(3, 3, t, true), Step::Retry(_)));
    }

    #[test]
    fn no_address_means_give_up() {
        assert_eq!(
            DEFAULT_POLICY.next(0, 0, Duration::ZERO, false),
            Step::GiveUp
        );
    }

    #[test]
    fn a_shorter_budget_shortens_the_early_give_up() {
        let p = DEFAULT_POLICY.with_budget(2 * Duration::from_secs(1));
        assert_eq!(p.unreachable_after, Duration::from_secs(2));
    }
}
