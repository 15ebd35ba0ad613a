//! Which gateway each SSL server belongs to, as learnt from the cloud, and
//! the read of a server that learns it.
//!
//! A server never moves to another gateway, so what one read learnt spares
//! later calls a round trip: a watch finds its gateway's poller without
//! reading the server, and a modify reads the server and its gateway at
//! once instead of one after the other. Only successful reads are
//! remembered, so entries are servers that exist; the memo is bounded all
//! the same, being only a cache.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use tokio::time::Instant;

use crate::{
    cloud::VpcClient,
    domain::{RegionId, SslVpnServer},
    error::{Error, Kind},
};

/// Entries kept before the memo starts afresh.
const LIMIT: usize = 100_000;

/// Server → gateway, per region.
#[derive(Default)]
pub struct GatewayMemo {
    map: Mutex<HashMap<(RegionId, String), String>>,
    /// One read at a time per server still to learn: a dashboard opening
    /// many streams on one server costs the budget one read, not one each.
    learning: Mutex<Learning>,
}

impl GatewayMemo {
    /// Holds the right to read `server_id` until dropped: whoever waited
    /// for it finds the memo filled (`get`) instead of reading again.
    pub async fn learning(&self, region: &RegionId, server_id: &str) -> LearnGuard<'_> {
        let key = (region.clone(), server_id.to_owned());
        let lock = lock_learning(&self.learning)
            .entry(key.clone())
            .or_default()
            .clone();
        let held = lock.lock_owned().await;
        LearnGuard {
            memo: self,
            key,
            _held: held,
        }
    }

    /// The gateway of `server_id`, if a read has told.
    pub fn get(&self, region: &RegionId, server_id: &str) -> Option<String> {
        self.lock()
            .get(&(region.clone(), server_id.to_owned()))
            .cloned()
    }

    /// Records what a read of the server said.
    pub fn remember(&self, region: &RegionId, server_id: &str, gateway_id: &str) {
        let mut map = self.lock();
        if map.len() >= LIMIT {
            map.clear();
        }
        map.insert(
            (region.clone(), server_id.to_owned()),
            gateway_id.to_owned(),
        );
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(RegionId, String), String>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Learning = HashMap<(RegionId, String), Arc<AsyncMutex<()>>>;

fn lock_learning(m: &Mutex<Learning>) -> MutexGuard<'_, Learning> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The right to read one server's gateway; its entry goes when the last
/// one waiting for it is done.
pub struct LearnGuard<'a> {
    memo: &'a GatewayMemo,
    key: (RegionId, String),
    _held: OwnedMutexGuard<()>,
}

impl Drop for LearnGuard<'_> {
    fn drop(&mut self) {
        let mut learning = lock_learning(&self.memo.learning);
        // Two references: the map's and this guard's lock; more means
        // someone still waits.
        if learning
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            learning.remove(&self.key);
        }
    }
}

/// Reads a server, NOT_FOUND when the cloud does not know it.
pub async fn read_server(
    cloud: &VpcClient,
    region: &RegionId,
    id: &str,
    deadline: Option<Instant>,
) -> Result<SslVpnServer, Error> {
    cloud
        .describe_ssl_vpn_server(region, id, deadline)
        .await?
        .ok_or_else(|| {
            Error::new(
                Kind::NotFound,
                "InvalidSslVpnServerId.NotFound",
                format!("no SSL server {id} in region {region}"),
            )
            .with_metadata("sslVpnServerId", id.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate;

    fn region(id: &str) -> RegionId {
        validate::region_id(id).unwrap()
    }

    #[test]
    fn remembers_per_region_and_starts_afresh_when_full() {
        let memo = GatewayMemo::default();
        let hz = region("cn-hangzhou");
        assert_eq!(memo.get(&hz, "vss-a"), None);
        memo.remember(&hz, "vss-a", "vpn-a");
        assert_eq!(memo.get(&hz, "vss-a").as_deref(), Some("vpn-a"));
        assert_eq!(memo.get(&region("cn-shanghai"), "vss-a"), None);

        for i in 1..LIMIT {
            memo.remember(&hz, &format!("vss-{i}"), "vpn-b");
        }
        assert_eq!(memo.get(&hz, "vss-a").as_deref(), Some("vpn-a"));
        memo.remember(&hz, "vss-new", "vpn-c");
        assert_eq!(memo.get(&hz, "vss-a"), None, "cleared when full");
        assert_eq!(memo.get(&hz, "vss-new").as_deref(), Some("vpn-c"));
    }

    #[tokio::test]
    async fn one_read_at_a_time_per_server_and_nothing_kept_after() {
        let memo = std::sync::Arc::new(GatewayMemo::default());
        let hz = region("cn-hangzhou");
        let first = memo.learning(&hz, "vss-a").await;
        // Another server is not held up.
        drop(memo.learning(&hz, "vss-b").await);
        let waiter = {
            let (memo, hz) = (memo.clone(), hz.clone());
            tokio::spawn(async move {
                let _second = memo.learning(&hz, "vss-a").await;
                memo.get(&hz, "vss-a")
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the second waits for the first read");
        memo.remember(&hz, "vss-a", "vpn-a");
        drop(first);
        assert_eq!(
            waiter.await.unwrap().as_deref(),
            Some("vpn-a"),
            "and finds it learnt"
        );
        assert!(lock_learning(&memo.learning).is_empty());
    }
}
