//! The security configuration in one place: TLS, authentication, the
//! authorization policy and the limits, loaded from files at start-up,
//! reloaded together on SIGHUP, and checked against where the gateway
//! listens.
//!
//! The gateway holds cloud credentials that can reconfigure the company's
//! VPN servers, so the rule is: off loopback, no plaintext and no anonymous
//! callers unless the operator says `--insecure` out loud. On loopback
//! (the default `127.0.0.1:50051`, development, a sidecar) both stay
//! optional.
//!
//! The audit log is the `audit` tracing target: one event per
//! authentication failure and per authorization decision, with the caller's
//! identity, the RPC and the resource.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use clap::Args;

pub mod admission;
pub mod audit;
pub mod cert;
pub mod identity;
pub mod limits;
pub mod policy;
pub mod tls;
pub mod tokens;

pub use self::{
    admission::Admission,
    identity::{AuthError, Authenticator, Identity, Proof},
    tokens::TokenStore,
};

use http::Extensions;

use crate::{
    error::{Error, Kind},
    service::gate::{Gate, ModifyAudit, ModifyRequested, StreamPermit, Target},
};

use self::{
    limits::{Http2Limits, Limits, LimitsConfig},
    policy::{Policy, PolicyError, Request as PolicyRequest, Rpc},
    tls::{TlsError, TlsFiles, TlsReloader},
    tokens::TokenFileError,
};

/// The audit log's tracing target.
pub const AUDIT_TARGET: &str = "audit";

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
    #[arg(long, env = "SSLVPN_RATE_PER_CALLER", default_value_t = 20.0)]
    pub rate_per_caller: f64,

    /// Requests a caller may burst after being idle.
    #[arg(long, env = "SSLVPN_BURST_PER_CALLER", default_value_t = 40)]
    pub burst_per_caller: u32,

    /// Open watch streams per caller (0 = no limit).
    #[arg(long, env = "SSLVPN_STREAMS_PER_CALLER", default_value_t = 32)]
    pub streams_per_caller: usize,

    /// Open watch streams overall.
    #[arg(long, env = "SSLVPN_MAX_STREAMS", default_value_t = 1024)]
    pub max_streams: usize,

    /// VPN gateways polled at once overall.
    #[arg(long, env = "SSLVPN_MAX_POLLERS", default_value_t = 256)]
    pub max_pollers: usize,

    /// HTTP/2 concurrent streams (calls) per connection.
    #[arg(
        long,
        env = "SSLVPN_HTTP2_MAX_CONCURRENT_STREAMS",
        default_value_t = 256
    )]
    pub http2_max_concurrent_streams: u32,

    /// Largest HTTP/2 header list (all metadata of a call), in bytes.
    #[arg(long, env = "SSLVPN_HTTP2_MAX_HEADER_LIST_BYTES", default_value_t = 16 * 1024)]
    pub http2_max_header_list_bytes: u32,

    /// HTTP/2 keep-alive ping interval.
    #[arg(long, env = "SSLVPN_HTTP2_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// How long a keep-alive ping may go unanswered.
    #[arg(long, env = "SSLVPN_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_timeout: Duration,
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
            },
            http2: Http2Limits {
                max_concurrent_streams: a.http2_max_concurrent_streams,
                max_header_list_bytes: a.http2_max_header_list_bytes,
                keepalive_interval: a.http2_keepalive_interval,
                keepalive_timeout: a.http2_keepalive_timeout,
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

/// The loaded security state shared by the transport and the handlers.
#[derive(Debug)]
pub struct Access {
    config: AccessConfig,
    tls: Option<Arc<TlsReloader>>,
    authenticator: RwLock<Arc<Authenticator>>,
    policy: RwLock<Option<Arc<Policy>>>,
    limits: Limits,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
}

impl Access {
    /// Loads every file the configuration names.
    pub fn load(config: &AccessConfig) -> Result<Arc<Self>, AccessError> {
        let tls = config
            .tls
            .clone()
            .map(TlsReloader::load)
            .transpose()?
            .map(Arc::new);
        let (authenticator, policy) = Self::load_auth(config)?;
        Ok(Arc::new(Self {
            config: config.clone(),
            tls,
            authenticator: RwLock::new(Arc::new(authenticator)),
            policy: RwLock::new(policy),
            limits: Limits::new(config.limits.clone()),
        }))
    }

    /// No TLS, no authentication, no policy, default limits: tests and
    /// loopback development.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            config: AccessConfig::default(),
            tls: None,
            authenticator: RwLock::new(Arc::new(Authenticator::new(None, false))),
            policy: RwLock::new(None),
            limits: Limits::new(LimitsConfig::default()),
        })
    }

    fn load_auth(
        config: &AccessConfig,
    ) -> Result<(Authenticator, Option<Arc<Policy>>), AccessError> {
        let tokens = config
            .tokens_file
            .as_deref()
            .map(TokenStore::load)
            .transpose()?
            .map(Arc::new);
        let certificates = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        let policy = config
            .policy_file
            .as_deref()
            .map(Policy::load)
            .transpose()?
            .map(Arc::new);
        Ok((Authenticator::new(tokens, certificates), policy))
    }

    /// Re-reads certificates, tokens and policy. All or nothing: if any file
    /// is bad, everything in force stays and the error says which file.
    pub fn reload(&self) -> Result<(), AccessError> {
        let tls_config = self
            .tls
            .as_ref()
            .map(|tls| crate::access::tls::server_config(tls.files()))
            .transpose()?;
        let (authenticator, policy) = Self::load_auth(&self.config)?;
        if let (Some(tls), Some(config)) = (&self.tls, tls_config) {
            tls.install(config);
        }
        write(&self.authenticator, Arc::new(authenticator));
        write(&self.policy, policy);
        Ok(())
    }

    pub fn config(&self) -> &AccessConfig {
        &self.config
    }

    pub fn tls(&self) -> Option<Arc<TlsReloader>> {
        self.tls.clone()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Who is calling; refusals are logged to the audit log.
    pub fn authenticate(
        &self,
        rpc: Option<Rpc>,
        headers: &http::HeaderMap,
        peer_certs: Option<&[tokio_rustls::rustls::pki_types::CertificateDer<'_>]>,
        peer: Option<SocketAddr>,
    ) -> Result<Identity, Error> {
        let authenticator = read(&self.authenticator);
        authenticator
            .authenticate(headers, peer_certs)
            .map_err(|why| {
                tracing::warn!(
                    target: AUDIT_TARGET,
                    decision = "unauthenticated",
                    reason = why.kind(),
                    rpc = rpc.map_or("unknown", Rpc::as_str),
                    peer = %peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string()),
                    "call refused"
                );
                unauthenticated(why)
            })
    }

    fn decide(&self, caller: &Identity, target: &Target<'_>) -> Result<(), Error> {
        let authenticator = read(&self.authenticator);
        if authenticator.enabled() && !caller.is_authenticated() {
            // Only reachable if a handler ran without the admission layer.
            return Err(unauthenticated(AuthError::Missing));
        }
        let Target {
            rpc,
            region,
            ssl_vpn_server_id: server,
            vpn_gateway_id: gateway,
        } = *target;
        let allowed = match read(&self.policy) {
            None => true,
            Some(policy) => policy.allows(&PolicyRequest {
                identity: caller.name(),
                rpc,
                region: region.as_str(),
                server,
                gateway,
            }),
        };
        if allowed && gateway.is_none() {
            // The decision that counts comes with the gateway.
            return Ok(());
        }
        let decision = if allowed { "allow" } else { "deny" };
        tracing::info!(
            target: AUDIT_TARGET,
            decision,
            identity = %caller,
            rpc = rpc.as_str(),
            region = %region,
            ssl_vpn_server_id = server,
            vpn_gateway_id = gateway.unwrap_or(""),
            "authorization"
        );
        if allowed {
            Ok(())
        } else {
            // Names the RPC only: not the gateway, not the rules.
            Err(Error::new(
                Kind::PermissionDenied,
                "Forbidden.Policy",
                format!("the caller may not call {rpc} on this SSL server"),
            ))
        }
    }
}

/// The caller the admission layer established (anonymous when it did not
/// run, which `decide` refuses if authentication is configured).
fn caller(extensions: &Extensions) -> Identity {
    extensions
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(Identity::anonymous)
}

impl Gate for Access {
    fn authorize(&self, extensions: &Extensions, target: &Target<'_>) -> Result<(), Error> {
        self.decide(&caller(extensions), target)
    }

    fn open_stream(&self, extensions: &Extensions) -> Result<StreamPermit, Error> {
        self.limits
            .open_stream(&caller(extensions))
            .map(StreamPermit::new)
    }

    fn audit_modify(
        &self,
        extensions: &Extensions,
        peer: Option<SocketAddr>,
        requested: ModifyRequested<'_>,
    ) -> Box<dyn ModifyAudit> {
        Box::new(audit::ModifyRecord::begin(
            caller(extensions).name(),
            peer,
            requested,
        ))
    }
}

fn unauthenticated(why: AuthError) -> Error {
    Error::new(Kind::Unauthenticated, "Unauthenticated", why.to_string())
}

/// Reloads `security` on every SIGHUP until `stop`.
#[cfg(unix)]
pub fn reload_on_sighup(security: Arc<Access>, stop: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; certificates will not reload");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hangups.recv() => if got.is_none() { return },
                () = stop.cancelled() => return,
            }
            match security.reload() {
                Ok(()) => tracing::info!("SIGHUP: certificates, tokens and policy reloaded"),
                Err(err) => {
                    tracing::error!(error = %err, "SIGHUP: reload failed; the previous configuration stays")
                }
            }
        }
    });
}

#[cfg(not(unix))]
pub fn reload_on_sighup(_: Arc<Access>, _: tokio_util::sync::CancellationToken) {}

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
