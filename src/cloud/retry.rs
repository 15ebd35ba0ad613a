//! When and how long to wait before trying a failed call again.
//!
//! Only transient failures and throttling are retried: exponential back-off
//! with full jitter (a random wait between zero and the exponential bound),
//! so many gateways failing together do not come back together. Throttling
//! waits at least half the bound: an answer of "too many requests" is no
//! time to come back at once. A `x-acs-retry-after` from the cloud replaces
//! the computed wait. Every
//! retry must start before both the caller's deadline and the total time
//! budget; a wait that would cross either is not taken.

use std::time::Duration;

use tokio::time::Instant;

use super::error::CloudError;
use crate::error::Kind;

/// Retry limits. `max_attempts` counts every request, the first included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The bound of the first back-off; doubled for each further retry.
    pub base_delay: Duration,
    /// The largest computed back-off.
    pub max_delay: Duration,
    /// No retry starts later than this after the call began.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total: Duration::from_secs(30),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// A single attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The upper bound of the wait before retry number `retry` (1-based):
    /// `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn backoff_bound(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: uniform in `[0, backoff_bound(retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let bound = self.backoff_bound(retry);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// After throttling: uniform in `[bound / 2, bound]`.
    pub fn throttled_backoff(&self, retry: u32) -> Duration {
        let half = self.backoff_bound(retry) / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// Decides after attempt number `attempt` (1-based) failed with `err`.
    pub fn decide(
        &self,
        err: &CloudError,
        attempt: u32,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Decision {
        if !err.is_retryable() || attempt >= self.max_attempts {
            return Decision::GiveUp;
        }
        let wait = match err.retry_after() {
            Some(wait) => wait,
            None if err.kind() == Kind::Throttled => self.throttled_backoff(attempt),
            None => self.backoff(attempt),
        };
        let limit = self.limit(started, deadline);
        if Instant::now() + wait >= limit {
            return Decision::GiveUp;
        }
        Decision::RetryAfter(wait)
    }

    /// The earlier of the caller's deadline and the total budget's end.
    pub fn limit(&self, started: Instant, deadline: Option<Instant>) -> Instant {
        let budget_end = started + self.max_total;
        match deadline {
            Some(d) if d < budget_end => d,
            _ => budget_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::error::code;

    fn transient() -> CloudError {
        CloudError::new(Kind::Unavailable, code::TIMEOUT, "t")
    }

    #[test]
    fn bounds_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        let bounds: Vec<u64> = (1..=7)
            .map(|r| p.backoff_bound(r).as_millis() as u64)
            .collect();
        assert_eq!(bounds, vec![200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(p.backoff_bound(200), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_the_bound_and_varies() {
        let p = RetryPolicy::default();
        let waits: Vec<Duration> = (0..200).map(|_| p.backoff(3)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(800)));
        assert!(waits.iter().any(|w| *w != waits[0]));
    }

    #[test]
    fn throttling_waits_at_least_half_the_bound() {
        let p = RetryPolicy::default();
        let throttled = CloudError::from_response(400, None, br#"{"Code":"Throttling.User"}"#);
        let now = Instant::now();
        for _ in 0..200 {
            let Decision::RetryAfter(wait) = p.decide(&throttled, 2, now, None) else {
                panic!("throttling is retried");
            };
            assert!(wait >= Duration::from_millis(200) && wait <= Duration::from_millis(400));
        }
        let waits: Vec<Duration> = (0..200).map(|_| p.backoff(2)).collect();
        assert!(
            waits.iter().any(|w| *w < Duration::from_millis(200)),
            "plain jitter starts at zero"
        );
    }

    #[tokio::test]
    async fn only_retryable_errors_within_limits_are_retried() {
        let p = RetryPolicy::default();
        let now = Instant::now();
        assert!(matches!(
            p.decide(&transient(), 1, now, None),
            Decision::RetryAfter(_)
        ));
        assert_eq!(p.decide(&transient(), 4, now, None), Decision::GiveUp);
        let busy = CloudError::new(Kind::Busy, "VpnGateway.Configuring", "b");
        assert_eq!(p.decide(&busy, 1, now, None), Decision::GiveUp);
        // A deadline before the earliest possible retry ends it.
        let throttled = CloudError::from_response(
            400,
            Some(Duration::from_millis(500)),
            br#"{"Code":"Throttling.User"}"#,
        );
        assert_eq!(
            p.decide(&throttled, 1, now, Some(now + Duration::from_millis(400))),
            Decision::GiveUp
        );
        assert_eq!(
            p.decide(&throttled, 1, now, Some(now + Duration::from_secs(2))),
            Decision::RetryAfter(Duration::from_millis(500))
        );
    }
}
