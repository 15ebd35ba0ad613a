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
    sync::{Mutex, MutexGuard},
};

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
}

impl GatewayMemo {
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
}
