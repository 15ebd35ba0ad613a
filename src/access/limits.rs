//! Limits that keep one caller from starving the others, and the whole
//! gateway from exhausting itself or its cloud account.
//!
//! Per caller (per authenticated identity): a token-bucket request rate,
//! and a number of open watch streams. Globally: open watch streams and
//! pollers (each poller costs two cloud calls per round, against the
//! account's API quota). A refusal is `RESOURCE_EXHAUSTED` with RetryInfo.
//! When authentication is off every caller is the same anonymous one, so
//! per-caller limits do not apply (only loopback listening is allowed
//! then); the global caps always do. Setting a per-caller limit to 0 turns
//! it off.
//!
//! The connection limits (connections overall and per peer address, the
//! handshake timeout) and the HTTP/2 limits (streams per connection, header
//! size, keep-alive) are applied by the transport (`server`); they live
//! here with the others so one table configures them all.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use crate::{
    access::{Identity, PeerKey},
    error::{Error, Kind},
};

/// Per-caller and global caps.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    /// Sustained requests per second per caller (0: no limit).
    pub rate_per_caller: f64,
    /// Requests a caller may send at once after being idle.
    pub burst_per_caller: u32,
    /// Open watch streams per caller (0: no limit).
    pub streams_per_caller: usize,
    /// Open watch streams overall.
    pub max_streams: usize,
    /// Gateways polled at once overall.
    pub max_pollers: usize,
    /// Failed authentications from one peer address within
    /// `auth_failure_window` after which its calls are refused for a window
    /// (0: no limit).
    pub auth_failures_per_peer: u32,
    /// The window failed authentications are counted in, and how long a
    /// peer address that failed too often is refused.
    pub auth_failure_window: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            rate_per_caller: 20.0,
            burst_per_caller: 40,
            streams_per_caller: 32,
            max_streams: 1024,
            max_pollers: 4096,
            auth_failures_per_peer: 10,
            auth_failure_window: Duration::from_secs(60),
        }
    }
}

/// What a peer may hold before it has authenticated: connections, and
/// time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once overall (TLS handshakes included); beyond
    /// it a new connection is closed at once.
    pub max_connections: usize,
    /// Connections open at once per peer address (an IPv6 peer: per /64;
    /// 0: no limit).
    pub max_connections_per_peer: usize,
    /// How long a new connection may take for its TLS handshake and its
    /// HTTP/2 preface; also how long a connection that has never carried an
    /// authenticated call may stay idle.
    pub handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_peer: 64,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// HTTP/2 limits of the gRPC listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http2Limits {
    /// Concurrent streams (calls) per connection.
    pub max_concurrent_streams: u32,
    /// Largest header list (all metadata of one call), in bytes.
    pub max_header_list_bytes: u32,
    /// How often an idle connection is pinged.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 256,
            max_header_list_bytes: 16 * 1024,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// Above this many tracked callers, idle buckets are dropped.
const PRUNE_ABOVE: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The live counters.
pub struct Limits {
    config: LimitsConfig,
    buckets: Mutex<HashMap<Arc<str>, Bucket>>,
    streams: Arc<Mutex<HashMap<Arc<str>, usize>>>,
    global_streams: Arc<Semaphore>,
    /// The open services' streams per peer address.
    open_streams: Arc<Mutex<HashMap<PeerKey, usize>>>,
    /// Their share of `global_streams`: half, so unauthenticated streams
    /// can never starve the watches of authenticated callers.
    open_share: Arc<Semaphore>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay usable after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Self {
        let global = config.max_streams.min(Semaphore::MAX_PERMITS);
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
            streams: Arc::new(Mutex::new(HashMap::new())),
            global_streams: Arc::new(Semaphore::new(global)),
            open_streams: Arc::new(Mutex::new(HashMap::new())),
            open_share: Arc::new(Semaphore::new((global / 2).max(1))),
        }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Takes one request from the caller's bucket.
    pub fn admit_call(&self, caller: &Identity) -> Result<(), Error> {
        let rate = self.config.rate_per_caller;
        if !caller.is_authenticated() || rate <= 0.0 || !rate.is_finite() {
            return Ok(());
        }
        let burst = f64::from(self.config.burst_per_caller.max(1));
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() > PRUNE_ABOVE {
            // A full bucket holds nothing worth remembering.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(caller.key()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        // try_from: a tiny configured rate makes the wait too long for a
        // Duration; a day is as good an answer as any then.
        let wait = Duration::try_from_secs_f64((1.0 - bucket.tokens) / rate)
            .unwrap_or(Duration::from_secs(86_400));
        // Whole milliseconds, rounded up, so a caller that waits succeeds.
        let wait = Duration::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) + 1);
        Err(Error::new(
            Kind::Throttled,
            "Throttling.User",
            "too many requests from this caller; retry after the suggested delay",
        )
        .with_retry_after(wait))
    }

    /// Reserves one open watch stream for the caller; the stream holds the
    /// permit until it ends.
    pub fn open_stream(&self, caller: &Identity) -> Result<StreamPermit, Error> {
        let per_caller = self.config.streams_per_caller;
        let caller_slot = if caller.is_authenticated() && per_caller > 0 {
            Some(
                Slot::take(&self.streams, caller.key(), per_caller).ok_or_else(|| {
                    exhausted(
                        "QuotaExceeded.StreamsPerCaller",
                        "this caller has too many open watch streams; close one or retry later",
                    )
                })?,
            )
        } else {
            None
        };
        // If this fails, `caller_slot` is dropped and gives its slot back.
        let global = self.global()?;
        Ok(StreamPermit {
            _global: global,
            _share: None,
            _caller: caller_slot,
            _peer: None,
        })
    }

    /// Reserves a stream of the open services (health `Watch`, reflection)
    /// for a peer that has not authenticated: one of `streams_per_caller`
    /// per peer address, and one of the open services' half of
    /// `max_streams`.
    pub fn open_unauthenticated_stream(
        &self,
        peer: Option<PeerKey>,
    ) -> Result<StreamPermit, Error> {
        let per_peer = self.config.streams_per_caller;
        let peer_slot = match peer {
            Some(key) if per_peer > 0 => {
                Some(Slot::take(&self.open_streams, key, per_peer).ok_or_else(|| {
                    exhausted(
                        "QuotaExceeded.StreamsPerPeer",
                        "this address has too many open health or reflection streams; close one or retry later",
                    )
                })?)
            }
            _ => None,
        };
        let share = self.open_share.clone().try_acquire_owned().map_err(|_| {
            exhausted(
                "QuotaExceeded.UnauthenticatedStreams",
                "the gateway has too many open health and reflection streams; retry later",
            )
        })?;
        let global = self.global()?;
        Ok(StreamPermit {
            _global: global,
            _share: Some(share),
            _caller: None,
            _peer: peer_slot,
        })
    }

    fn global(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.global_streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                exhausted(
                    "QuotaExceeded.Streams",
                    "the gateway has too many open watch streams; retry later",
                )
            })
    }

    /// Open streams of a caller (tests, diagnostics).
    pub fn streams_of(&self, caller: &Identity) -> usize {
        lock(&self.streams).get(caller.name()).copied().unwrap_or(0)
    }
}

fn exhausted(reason: &str, message: &str) -> Error {
    Error::new(Kind::Exhausted, reason, message)
}

/// An open stream's share of the limits; released on drop.
pub struct StreamPermit {
    _global: OwnedSemaphorePermit,
    _share: Option<OwnedSemaphorePermit>,
    _caller: Option<Slot<Arc<str>>>,
    _peer: Option<Slot<PeerKey>>,
}

/// One of a key's counted slots (a caller's, a peer address's).
struct Slot<K: std::hash::Hash + Eq> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: std::hash::Hash + Eq + Clone> Slot<K> {
    /// A slot of `key`, unless it holds `limit` already.
    fn take(counts: &Arc<Mutex<HashMap<K, usize>>>, key: K, limit: usize) -> Option<Self> {
        let mut map = lock(counts);
        let open = map.entry(key.clone()).or_insert(0);
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(Slot {
            key,
            counts: counts.clone(),
        })
    }
}

impl<K: std::hash::Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut map = lock(&self.counts);
        if let Some(open) = map.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Proof;

    fn alice() -> Identity {
        Identity::new("alice", Proof::Token)
    }

    #[tokio::test(start_paused = true)]
    async fn rate_trips_and_recovers() {
        let limits = Limits::new(LimitsConfig {
            rate_per_caller: 2.0,
            burst_per_caller: 3,
            ..LimitsConfig::default()
        });
        for _ in 0..3 {
            limits.admit_call(&alice()).unwrap();
        }
        let refused = limits.admit_call(&alice()).unwrap_err();
        assert_eq!(refused.kind(), Kind::Throttled);
        let wait = refused.retry_after().unwrap();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(501));
        // Another caller has its own bucket; anonymous callers have none.
        limits
            .admit_call(&Identity::new("bob", Proof::Token))
            .unwrap();
        for _ in 0..100 {
            limits.admit_call(&Identity::anonymous()).unwrap();
        }
        tokio::time::advance(wait).await;
        limits.admit_call(&alice()).unwrap();
        assert!(limits.admit_call(&alice()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_vanishing_rate_refuses_without_panicking() {
        let limits = Limits::new(LimitsConfig {
            rate_per_caller: 1e-300,
            burst_per_caller: 1,
            ..LimitsConfig::default()
        });
        limits.admit_call(&alice()).unwrap();
        let refused = limits.admit_call(&alice()).unwrap_err();
        assert!(refused.retry_after().unwrap() >= Duration::from_secs(86_400));
    }

    #[test]
    fn streams_per_caller_and_global() {
        let limits = Limits::new(LimitsConfig {
            streams_per_caller: 2,
            max_streams: 3,
            ..LimitsConfig::default()
        });
        let a1 = limits.open_stream(&alice()).unwrap();
        let _a2 = limits.open_stream(&alice()).unwrap();
        let err = limits.open_stream(&alice()).err().unwrap();
        assert_eq!(err.reason(), "QuotaExceeded.StreamsPerCaller");
        let _b1 = limits
            .open_stream(&Identity::new("bob", Proof::Token))
            .unwrap();
        let err = limits
            .open_stream(&Identity::new("carol", Proof::Token))
            .err()
            .unwrap();
        assert_eq!(err.reason(), "QuotaExceeded.Streams");
        // The refused carol left no slot behind.
        assert_eq!(limits.streams_of(&Identity::new("carol", Proof::Token)), 0);
        drop(a1);
        assert_eq!(limits.streams_of(&alice()), 1);
        let _a3 = limits.open_stream(&alice()).unwrap();
    }

    #[test]
    fn unauthenticated_streams_count_per_peer_and_hold_at_most_half() {
        let limits = Limits::new(LimitsConfig {
            streams_per_caller: 2,
            max_streams: 6,
            ..LimitsConfig::default()
        });
        let peer = |s: &str| Some(PeerKey::of(s.parse().unwrap()));
        let a1 = limits
            .open_unauthenticated_stream(peer("127.0.0.2"))
            .unwrap();
        let _a2 = limits
            .open_unauthenticated_stream(peer("127.0.0.2"))
            .unwrap();
        let err = limits
            .open_unauthenticated_stream(peer("127.0.0.2"))
            .err()
            .unwrap();
        assert_eq!(err.reason(), "QuotaExceeded.StreamsPerPeer");
        let _b1 = limits
            .open_unauthenticated_stream(peer("127.0.0.3"))
            .unwrap();
        // Three of six: the open services' half is used up...
        let err = limits
            .open_unauthenticated_stream(peer("127.0.0.4"))
            .err()
            .unwrap();
        assert_eq!(err.reason(), "QuotaExceeded.UnauthenticatedStreams");
        // ...and the other half is still there for watches.
        let _w: Vec<_> = (0..3)
            .map(|i| {
                limits
                    .open_stream(&Identity::new(format!("w{i}"), Proof::Token))
                    .unwrap()
            })
            .collect();
        drop(a1);
        let _a3 = limits
            .open_unauthenticated_stream(peer("127.0.0.2"))
            .unwrap();
    }
}
