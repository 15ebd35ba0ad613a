//! Failed authentications, counted per peer address: after `max_failures`
//! within a window, every call from that address is refused without
//! looking at its credentials, for one window.
//!
//! A guessed token costs the gateway a hash and a scan of the tokens, and
//! an audit line; a flood of them is a way to flood the audit log and burn
//! CPU, and the tokens are long random strings nobody guesses anyway. So
//! the refusal while blocked is cheap (a map lookup, no hashing, no audit
//! line: one event is written when the block begins) and says how long to
//! wait (UNAUTHENTICATED with RetryInfo). The count is per address
//! ([`PeerKey`]), so a caller elsewhere is never affected; a success from
//! the same address does not reset it (else an attacker sharing an address
//! with a legitimate caller would guess for ever). The map is bounded:
//! beyond [`MAX_PEERS`] addresses, those whose window has passed are
//! forgotten, and if none has, new addresses go uncounted until some do
//! (the connection caps still bound them).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use tokio::time::Instant;

use super::peer::PeerKey;

/// Most peer addresses remembered at once.
pub const MAX_PEERS: usize = 65_536;

struct Peer {
    since: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// The failed-authentication counts.
pub struct AuthThrottle {
    max_failures: u32,
    window: Duration,
    peers: Mutex<HashMap<PeerKey, Peer>>,
}

impl std::fmt::Debug for AuthThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthThrottle")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuthThrottle {
    /// `max_failures` 0 turns throttling off.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            peers: Mutex::new(HashMap::new()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// `Err(wait)` while `peer` is blocked.
    pub fn check(&self, peer: PeerKey) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut peers = lock(&self.peers);
        let Some(entry) = peers.get_mut(&peer) else {
            return Ok(());
        };
        match entry.blocked_until {
            Some(until) if until > now => Err(until - now),
            Some(_) => {
                entry.blocked_until = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `peer`; `true` when it starts a
    /// block (the one moment worth an audit event).
    pub fn failed(&self, peer: PeerKey) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let now = Instant::now();
        let window = self.window;
        let mut peers = lock(&self.peers);
        if peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
            peers.retain(|_, p| {
                now.duration_since(p.since) < window || p.blocked_until.is_some_and(|u| u > now)
            });
            if peers.len() >= MAX_PEERS {
                return false;
            }
        }
        let entry = peers.entry(peer).or_insert(Peer {
            since: now,
            failures: 0,
            blocked_until: None,
        });
        if now.duration_since(entry.since) >= window {
            entry.since = now;
            entry.failures = 0;
        }
        entry.failures += 1;
        if entry.failures < self.max_failures {
            return false;
        }
        entry.failures = 0;
        entry.since = now;
        entry.blocked_until = Some(now + window);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> PeerKey {
        PeerKey::of(s.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn n_failures_in_a_window_block_the_address_for_a_window() {
        let throttle = AuthThrottle::new(3, Duration::from_secs(60));
        let attacker = peer("127.0.0.2");
        assert!(!throttle.failed(attacker));
        assert!(!throttle.failed(attacker));
        assert!(throttle.check(attacker).is_ok());
        assert!(throttle.failed(attacker), "the third trips the block");
        let wait = throttle.check(attacker).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        // Another address is never affected.
        assert!(throttle.check(peer("127.0.0.1")).is_ok());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(throttle.check(attacker), Err(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(throttle.check(attacker).is_ok());
        // The count starts over: two more failures do not block.
        assert!(!throttle.failed(attacker));
        assert!(!throttle.failed(attacker));
        assert!(throttle.check(attacker).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_spread_over_windows_never_block() {
        let throttle = AuthThrottle::new(3, Duration::from_secs(10));
        let slow = peer("127.0.0.3");
        for _ in 0..10 {
            assert!(!throttle.failed(slow));
            tokio::time::advance(Duration::from_secs(6)).await;
        }
        assert!(throttle.check(slow).is_ok());
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = AuthThrottle::new(0, Duration::from_secs(10));
        let p = peer("127.0.0.2");
        for _ in 0..100 {
            assert!(!throttle.failed(p));
        }
        assert!(throttle.check(p).is_ok());
    }
}
