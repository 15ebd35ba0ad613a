//! What every watcher of a gateway reads of one observation, built once.
//!
//! A change on a gateway with ten thousand watchers used to be converted
//! and copied ten thousand times: each stream cloned the server out of the
//! snapshot and the service turned each copy into protobuf. Here the
//! gateway's state and each server, as a watcher sees them, are built once
//! per observation and shared behind an `Arc`; each carries a slot where
//! the transport keeps its encoding, filled by the first watcher that needs
//! it and handed to the rest as a reference-counted `Bytes`. The watch
//! layer never learns what the bytes are.

use std::{
    ops::Deref,
    sync::{Arc, OnceLock},
    time::SystemTime,
};

use bytes::Bytes;

use crate::domain::{GatewayStatus, SslVpnServer, VpnGateway};

/// A value shared by the watchers of one observation, with its encoding
/// made at most once.
#[derive(Debug)]
pub struct Shared<T> {
    value: T,
    encoded: OnceLock<Bytes>,
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Self {
            value,
            encoded: OnceLock::new(),
        })
    }

    /// The value's encoding: `encode` runs for the first caller only.
    pub fn encoded(&self, encode: impl FnOnce(&T) -> Bytes) -> Bytes {
        self.encoded.get_or_init(|| encode(&self.value)).clone()
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || self.value == other.value
    }
}

/// A gateway as a watcher sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayState {
    pub vpn_gateway_id: String,
    pub status: GatewayStatus,
    pub business_status: String,
    /// When the poller read it.
    pub observed_at: SystemTime,
}

impl GatewayState {
    pub fn new(gateway: &VpnGateway, observed_at: SystemTime) -> Self {
        Self {
            vpn_gateway_id: gateway.vpn_gateway_id.clone(),
            status: gateway.status(),
            business_status: gateway.business_status.clone(),
            observed_at,
        }
    }

    /// The same to the caller: the time it was read does not count.
    pub fn same_as(&self, other: &Self) -> bool {
        let Self {
            vpn_gateway_id,
            status,
            business_status,
            observed_at: _,
        } = other;
        self.vpn_gateway_id == *vpn_gateway_id
            && self.status == *status
            && self.business_status == *business_status
    }
}

/// One observation as its watchers see it.
#[derive(Debug)]
pub struct View {
    pub gateway: Arc<Shared<GatewayState>>,
    /// The servers on the gateway, with the gateway's public address.
    servers: Vec<Arc<Shared<SslVpnServer>>>,
}

impl View {
    pub fn new(gateway: &VpnGateway, servers: &[SslVpnServer], observed_at: SystemTime) -> Self {
        Self {
            gateway: Shared::new(GatewayState::new(gateway, observed_at)),
            servers: servers
                .iter()
                .map(|s| Shared::new(s.clone().on_gateway(gateway)))
                .collect(),
        }
    }

    pub fn server(&self, id: &str) -> Option<&Arc<Shared<SslVpnServer>>> {
        self.servers.iter().find(|s| s.ssl_vpn_server_id == id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_encoding_is_made_once_and_shared() {
        let shared = Shared::new(String::from("vss-a"));
        let runs = AtomicUsize::new(0);
        let encode = |s: &String| {
            runs.fetch_add(1, Ordering::Relaxed);
            Bytes::copy_from_slice(s.as_bytes())
        };
        let first = shared.encoded(encode);
        let second = shared.encoded(encode);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(first, "vss-a");
        // The same allocation, not a copy.
        assert_eq!(first.as_ptr(), second.as_ptr());
    }

    #[test]
    fn a_view_finds_its_servers_by_id() {
        // (Which address a server shows is domain's `on_gateway`, tested there.)
        let gateway = VpnGateway {
            vpn_gateway_id: "vpn-a".into(),
            ..VpnGateway::default()
        };
        let servers = ["vss-a", "vss-b"].map(|id| SslVpnServer {
            ssl_vpn_server_id: id.into(),
            ..SslVpnServer::default()
        });
        let view = View::new(&gateway, &servers, SystemTime::UNIX_EPOCH);
        assert_eq!(
            view.server("vss-b").map(|s| s.ssl_vpn_server_id.as_str()),
            Some("vss-b")
        );
        assert!(view.server("vss-c").is_none());
        assert_eq!(view.gateway.vpn_gateway_id, "vpn-a");
    }
}
