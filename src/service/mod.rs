//! The gRPC handlers of `sslvpn.v1.SslVpnService`.
//!
//! Each handler converts its request into domain terms, lets validation and
//! the domain logic decide, and maps any failure through the one error
//! table in `error`. Handlers hold no state a second replica would need.

pub mod convert;

use std::pin::Pin;

use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    error::Error,
    pb::{self, ssl_vpn_service_server::SslVpnService},
    validate,
};

/// The service behind the gRPC listener.
#[derive(Clone)]
pub struct SslVpnGateway {
    /// Cancelled when the process shuts down: open streams end with UNAVAILABLE.
    shutdown: CancellationToken,
}

impl SslVpnGateway {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { shutdown }
    }
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchSslVpnServerResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SslVpnService for SslVpnGateway {
    async fn modify_ssl_vpn_server(
        &self,
        request: Request<pb::ModifySslVpnServerRequest>,
    ) -> Result<Response<pb::ModifySslVpnServerResponse>, Status> {
        let _modification = validate::modification(&convert::modify_input(request.get_ref()))
            .map_err(Error::from)?;
        Err(Error::unimplemented(
            "the request is valid, but forwarding to the cloud is not implemented yet",
        )
        .into())
    }

    async fn get_ssl_vpn_server_status(
        &self,
        request: Request<pb::GetSslVpnServerStatusRequest>,
    ) -> Result<Response<pb::GetSslVpnServerStatusResponse>, Status> {
        let req = request.get_ref();
        validate::server_ref(&req.region_id, &req.ssl_vpn_server_id).map_err(Error::from)?;
        Err(Error::unimplemented("reading from the cloud is not implemented yet").into())
    }

    type WatchSslVpnServerStream = WatchStream;

    async fn watch_ssl_vpn_server(
        &self,
        request: Request<pb::WatchSslVpnServerRequest>,
    ) -> Result<Response<Self::WatchSslVpnServerStream>, Status> {
        let req = request.get_ref();
        validate::server_ref(&req.region_id, &req.ssl_vpn_server_id).map_err(Error::from)?;
        let _ = &self.shutdown;
        Err(Error::unimplemented("watching is not implemented yet").into())
    }
}
