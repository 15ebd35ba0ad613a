//! The access flags and their checked configuration: which files hold the
//! TLS material, tokens and policy (paths, never the secrets), the limits,
//! and the exposure rule checked against the listen address before anything
//! is bound or loaded.
//!
//! The gateway holds cloud credentials that can reconfigure the company's
//! VPN servers, so the rule is: off loopback, no plaintext and no anonymous
//! callers unless the operator says `--insecure` out loud. On loopback
//! (the default `127.0.0.1:50051`, development, a sidecar) both stay
//! optional.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;

use super::{
    limits::{ConnectionLimits, Http2Limits, LimitsConfig},
    policy::PolicyError,
    tls::{TlsError, TlsFiles},
    tokens::TokenFileError,
};

/// Access flags of `sslvpn-gateway serve`.
#[derive(Args, Clone, Debug)]
pub struct AccessArgs {
    /// Server certificate chain (PEM) for TLS on the gRPC listener; reloaded
    /// on SIGHUP.
    #[arg(long, env = "SSLVPN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Server private key (PEM) for --tls-cert; reloaded on SIGHUP.
    #[arg(long, env = "SSLVPN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that sign client certificates: turns on mTLS;
    /// the certificate's SAN URI (else DNS name) is the caller's identity.
    #[arg(long, env = "SSLVPN_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// File of `identity sha256:<hex>` lines: callers authenticate with
    /// `authorization: Bearer <token>`; reloaded on SIGHUP.
    #[arg(long, env = "SSLVPN_AUTH_TOKENS")]
    pub auth_tokens: Option<PathBuf>,

    /// Authorization policy (JSON): which identity may call which RPC on
    /// which region, server and gateway; deny by default. Reloaded on SIGHUP.
    #[arg(long, env = "SSLVPN_POLICY")]
    pub policy: Option<PathBuf>,

    /// Allow listening on a non-loopback address without TLS or without
    /// authentication.
    #[arg(long, env = "SSLVPN_INSECURE")]
    pub insecure: bool,

    /// Sustained requests per second per caller (0 = no limit).
    #[arg(long, env = "SSLVPN_RATE_PER_CALLER", default_value_t = LimitsConfig::default().rate_per_caller)]
    pub rate_per_caller: f64,

    /// Requests a caller may burst after being idle.
    #[arg(long, env = "SSLVPN_BURST_PER_CALLER", default_value_t = LimitsConfig::default().burst_per_caller)]
    pub burst_per_caller: u32,

    /// Open watch streams per caller (0 = no limit).
    #[arg(long, env = "SSLVPN_STREAMS_PER_CALLER", default_value_t = LimitsConfig::default().streams_per_caller)]
    pub streams_per_caller: usize,

    /// Open watch streams overall.
    #[arg(long, env = "SSLVPN_MAX_STREAMS", default_value_t = LimitsConfig::default().max_streams)]
    pub max_streams: usize,

    /// VPN gateways watched at once overall (each region's are observed
    /// together, so thousands fit the budget; README, "The API budget").
    #[arg(long, env = "SSLVPN_MAX_POLLERS", default_value_t = LimitsConfig::default().max_pollers)]
    pub max_pollers: usize,

    /// Failed authentications from one peer address within
    /// --auth-failure-window after which every call from there is refused,
    /// for one window (0 = no limit).
    #[arg(long, env = "SSLVPN_AUTH_FAILURES_PER_PEER", default_value_t = LimitsConfig::default().auth_failures_per_peer)]
    pub auth_failures_per_peer: u32,

    /// The window failed authentications are counted in, and how long an
    /// address that failed too often is refused.
    #[arg(long, env = "SSLVPN_AUTH_FAILURE_WINDOW", default_value_t = humantime::Duration::from(LimitsConfig::default().auth_failure_window))]
    pub auth_failure_window: humantime::Duration,

    /// Connections open at once overall, TLS handshakes included; beyond it
    /// a new connection is closed at once.
    #[arg(long, env = "SSLVPN_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,

    /// Connections open at once per peer address (IPv6: per /64; 0 = no
    /// limit); beyond it a new connection from there is closed at once.
    #[arg(long, env = "SSLVPN_MAX_CONNECTIONS_PER_PEER", default_value_t = ConnectionLimits::default().max_connections_per_peer)]
    pub max_connections_per_peer: usize,

    /// Longest a new connection may take for its TLS handshake and HTTP/2
    /// preface; a connection that never authenticates is closed once idle
    /// this long.
    #[arg(long, env = "SSLVPN_HANDSHAKE_TIMEOUT", default_value_t = humantime::Duration::from(ConnectionLimits::default().handshake_timeout))]
    pub handshake_timeout: humantime::Duration,

    /// HTTP/2 concurrent streams (calls) per connection.
    #[arg(
        long,
        env = "SSLVPN_HTTP2_MAX_CONCURRENT_STREAMS",
        default_value_t = Http2Limits::default().max_concurrent_streams
    )]
    pub http2_max_concurrent_streams: u32,

    /// Largest HTTP/2 header list (all metadata of a call), in bytes.
    #[arg(long, env = "SSLVPN_HTTP2_MAX_HEADER_LIST_BYTES", default_value_t = Http2Limits::default().max_header_list_bytes)]
    pub http2_max_header_list_bytes: u32,

    /// HTTP/2 keep-alive ping interval.
    #[arg(long, env = "SSLVPN_HTTP2_KEEPALIVE_INTERVAL", default_value_t = humantime::Duration::from(Http2Limits::default().keepalive_interval))]
    pub http2_keepalive_interval: humantime::Duration,

    /// How long a keep-alive ping may go unanswered.
    #[arg(long, env = "SSLVPN_HTTP2_KEEPALIVE_TIMEOUT", default_value_t = humantime::Duration::from(Http2Limits::default().keepalive_timeout))]
    pub http2_keepalive_timeout: humantime::Duration,
}

/// The security configuration: paths (never the secrets themselves) and
/// numbers, so `Debug` shows nothing sensitive.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccessConfig {
    pub tls: Option<TlsFiles>,
    pub tokens_file: Option<PathBuf>,
    pub policy_file: Option<PathBuf>,
    pub insecure: bool,
    pub limits: LimitsConfig,
    pub connections: ConnectionLimits,
    pub http2: Http2Limits,
}

impl From<AccessArgs> for AccessConfig {
    fn from(a: AccessArgs) -> Self {
        let client_cert_optional = a.auth_tokens.is_some();
        Self {
            tls: match (a.tls_cert, a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca: a.tls_client_ca,
                    client_cert_optional,
                }),
                _ => None,
            },
            tokens_file: a.auth_tokens,
            policy_file: a.policy,
            insecure: a.insecure,
            limits: LimitsConfig {
                rate_per_caller: a.rate_per_caller,
                burst_per_caller: a.burst_per_caller,
                streams_per_caller: a.streams_per_caller,
                max_streams: a.max_streams,
                max_pollers: a.max_pollers,
                auth_failures_per_peer: a.auth_failures_per_peer,
                auth_failure_window: a.auth_failure_window.into(),
            },
            connections: ConnectionLimits {
                max_connections: a.max_connections,
                max_connections_per_peer: a.max_connections_per_peer,
                handshake_timeout: a.handshake_timeout.into(),
            },
            http2: Http2Limits {
                max_concurrent_streams: a.http2_max_concurrent_streams,
                max_header_list_bytes: a.http2_max_header_list_bytes,
                keepalive_interval: a.http2_keepalive_interval.into(),
                keepalive_timeout: a.http2_keepalive_timeout.into(),
            },
        }
    }
}

/// Why the security configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "refusing to listen on {addr} {missing}: a non-loopback listener needs TLS \
         (--tls-cert, --tls-key) and authentication (--auth-tokens or --tls-client-ca); \
         pass --insecure to run without them anyway"
    )]
    Exposed {
        addr: SocketAddr,
        missing: &'static str,
    },
    #[error("a policy needs authentication: give --auth-tokens or --tls-client-ca")]
    PolicyWithoutAuthentication,
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Tokens(#[from] TokenFileError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("invalid limit: {0}")]
    Limit(&'static str),
}

impl AccessConfig {
    /// Whether callers must authenticate.
    pub fn authenticates(&self) -> bool {
        self.tokens_file.is_some() || self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }

    /// Checks the configuration against the listen address, before anything
    /// is bound or loaded.
    pub fn check(&self, listen: SocketAddr) -> Result<(), AccessError> {
        if self.policy_file.is_some() && !self.authenticates() {
            return Err(AccessError::PolicyWithoutAuthentication);
        }
        let l = &self.limits;
        if l.max_streams == 0 || l.max_pollers == 0 {
            return Err(AccessError::Limit(
                "--max-streams and --max-pollers must be at least 1",
            ));
        }
        let c = &self.connections;
        if c.max_connections == 0 || c.handshake_timeout.is_zero() {
            return Err(AccessError::Limit(
                "--max-connections must be at least 1 and --handshake-timeout above 0",
            ));
        }
        if l.auth_failures_per_peer > 0 && l.auth_failure_window.is_zero() {
            return Err(AccessError::Limit(
                "--auth-failure-window must be above 0 while --auth-failures-per-peer is on",
            ));
        }
        if !(l.rate_per_caller.is_finite() && l.rate_per_caller >= 0.0) {
            return Err(AccessError::Limit(
                "--rate-per-caller must be a number >= 0",
            ));
        }
        if listen.ip().is_loopback() {
            return Ok(());
        }
        let missing = match (self.tls.is_some(), self.authenticates()) {
            (true, true) => return Ok(()),
            (false, false) => "in plaintext and without authentication",
            (false, true) => "in plaintext",
            (true, false) => "without authentication",
        };
        if self.insecure {
            tracing::warn!(
                %listen,
                "--insecure: listening {missing} on a non-loopback address; \
                 anyone who can reach it can change VPN servers"
            );
            return Ok(());
        }
        Err(AccessError::Exposed {
            addr: listen,
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn tls() -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: None,
            client_cert_optional: false,
        })
    }

    #[test]
    fn loopback_needs_nothing() {
        let config = AccessConfig::default();
        config.check(addr("127.0.0.1:50051")).unwrap();
        config.check(addr("[::1]:50051")).unwrap();
    }

    #[test]
    fn exposed_listeners_need_tls_and_authentication() {
        let cases = [
            (
                AccessConfig::default(),
                "in plaintext and without authentication",
            ),
            (
                AccessConfig {
                    tls: tls(),
                    ..AccessConfig::default()
                },
                "without authentication",
            ),
            (
                AccessConfig {
                    tokens_file: Some("t".into()),
                    ..AccessConfig::default()
                },
                "in plaintext",
            ),
        ];
        for (config, missing) in cases {
            for listen in ["0.0.0.0:50051", "[::]:50051", "192.0.2.10:443"] {
                let err = config.check(addr(listen)).unwrap_err().to_string();
                assert!(err.contains(missing), "{err}");
                assert!(err.contains("--insecure"), "{err}");
                let insecure = AccessConfig {
                    insecure: true,
                    ..config.clone()
                };
                insecure.check(addr(listen)).unwrap();
            }
        }
        let complete = AccessConfig {
            tls: tls(),
            tokens_file: Some("t".into()),
            ..AccessConfig::default()
        };
        complete.check(addr("0.0.0.0:50051")).unwrap();
    }

    #[test]
    fn a_policy_needs_authentication() {
        let config = AccessConfig {
            policy_file: Some("p.json".into()),
            ..AccessConfig::default()
        };
        assert!(matches!(
            config.check(addr("127.0.0.1:1")),
            Err(AccessError::PolicyWithoutAuthentication)
        ));
    }
}
