//! The emulator's one source of time.
//!
//! The state machine and the signature window both ask this clock, never the
//! system directly, so a test can pause tokio's clock (`tokio::time::pause`)
//! and step through an accept lag and an apply time in microseconds, or pin
//! the wall clock to the instant a test vector was captured. Wall time is
//! derived from tokio's monotonic clock: both advance together, paused or not.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Monotonic and wall time, advancing together.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    started: Instant,
    wall_at_start: SystemTime,
}

impl Clock {
    /// The real wall clock (driven by tokio's clock from now on).
    pub fn system() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A clock whose wall time reads `wall` now and advances with tokio's
    /// clock: tests pin it to a test vector's capture time.
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            started: Instant::now(),
            wall_at_start: wall,
        }
    }

    /// Monotonic now, for timers and windows.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Wall-clock now, for request timestamps.
    pub fn wall(&self) -> SystemTime {
        self.wall_at_start + self.started.elapsed()
    }

    /// Wall-clock now in Unix milliseconds, as the cloud reports times.
    pub fn unix_millis(&self) -> i64 {
        self.wall()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis()
            .try_into()
            .unwrap_or(i64::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_tokio_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = Clock::starting_at(start);
        assert_eq!(clock.wall(), start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.wall(), start + Duration::from_secs(90));
        assert_eq!(clock.unix_millis(), 1_000_090_000);
    }
}
