//! What the handlers ask of access control, stated as a seam: the service
//! defines [`Gate`], `access` implements it, and the server plugs one into
//! the other. So the service never imports access — a request passes the
//! transport, then access, then the service, and imports point the same
//! way — and every RPC goes through the same two questions: may this caller
//! touch this server (before anything is read), and may it touch the
//! server's gateway (the decision that counts).
//!
//! The caller is whatever the transport's access layer left in the
//! request's extensions; the service hands the extensions over unread.

use std::{fmt, net::SocketAddr};

use http::Extensions;

use crate::{domain::RegionId, error::Error, modify::Accepted};

/// The RPCs a rule can grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rpc {
    ModifySslVpnServer,
    GetSslVpnServerStatus,
    WatchSslVpnServer,
}

impl Rpc {
    pub const ALL: [Rpc; 3] = [
        Rpc::ModifySslVpnServer,
        Rpc::GetSslVpnServerStatus,
        Rpc::WatchSslVpnServer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::ModifySslVpnServer => "ModifySslVpnServer",
            Rpc::GetSslVpnServerStatus => "GetSslVpnServerStatus",
            Rpc::WatchSslVpnServer => "WatchSslVpnServer",
        }
    }

    /// The RPC of a gRPC path (`/sslvpn.v1.SslVpnService/WatchSslVpnServer`).
    pub fn from_path(path: &str) -> Option<Rpc> {
        let method = path.rsplit('/').next()?;
        Rpc::ALL.into_iter().find(|r| r.as_str() == method)
    }
}

impl fmt::Display for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call wants to touch. `vpn_gateway_id` is `None` while the
/// server's gateway is not yet known.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub rpc: Rpc,
    pub region: &'a RegionId,
    pub ssl_vpn_server_id: &'a str,
    pub vpn_gateway_id: Option<&'a str>,
}

/// A watch stream's share of the limits, held until the stream ends.
pub struct StreamPermit {
    _held: Box<dyn Send + Sync>,
}

impl StreamPermit {
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

/// What a modify asked for, as the audit record shows it: raw, before any
/// check, each field the caller set with its value as given.
#[derive(Debug)]
pub struct ModifyRequested<'a> {
    pub region_id: &'a str,
    pub ssl_vpn_server_id: &'a str,
    pub client_token: &'a str,
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

/// The audit record of one modify: finished with the result, or written
/// as cancelled if dropped unfinished (the caller left).
pub trait ModifyAudit: Send {
    fn finish(self: Box<Self>, result: Result<&Accepted, &Error>);
}

/// Access control as the handlers see it.
pub trait Gate: Send + Sync + 'static {
    /// Whether the caller may do `target`; refusals are audited.
    fn authorize(&self, caller: &Extensions, target: &Target<'_>) -> Result<(), Error>;

    /// Reserves one open watch stream for the caller.
    fn open_stream(&self, caller: &Extensions) -> Result<StreamPermit, Error>;

    /// Begins the audit record of a modify.
    fn audit_modify(
        &self,
        caller: &Extensions,
        peer: Option<SocketAddr>,
        requested: ModifyRequested<'_>,
    ) -> Box<dyn ModifyAudit>;
}
