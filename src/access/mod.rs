//! Every who-may and how-often decision, in one room: who is calling
//! (`identity`: bearer tokens, client certificates), the transport layer
//! that establishes it and applies the caller's rate (`admission`), what a
//! caller may touch (`policy`), how much it may hold (`limits`), the TLS
//! acceptor's files (`tls`), and the audit trail (`audit`). [`Access`] is
//! the loaded state, reloaded together on SIGHUP (`reload`), and the
//! service's `Gate`: the handlers ask it, they never import this room.
//!
//! The audit log is the `audit` tracing target: one event per
//! authentication failure and per authorization decision, with the caller's
//! identity, the RPC and the resource.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use http::Extensions;

pub mod admission;
pub mod audit;
pub mod cert;
pub mod config;
pub mod connection;
pub mod identity;
pub mod limits;
pub mod peer;
pub mod policy;
pub mod reload;
pub mod throttle;
pub mod tls;
pub mod tokens;

pub use self::{
    admission::Admission,
    config::{AccessArgs, AccessConfig, AccessError},
    connection::{CloseReason, Connection, Connections},
    identity::{AuthError, Authenticator, Credential, Identity, Proof},
    peer::PeerKey,
    reload::reload_on_sighup,
    tokens::TokenStore,
};
use self::{
    audit::{AuditMetrics, Sampler},
    limits::Limits,
    policy::{Policy, Request as PolicyRequest},
    throttle::AuthThrottle,
    tls::TlsReloader,
};
use crate::{
    error::{Error, Kind},
    service::gate::{Gate, ModifyAudit, ModifyRequested, Rpc, StreamPermit, Target},
};

/// The audit log's tracing target.
pub const AUDIT_TARGET: &str = "audit";

/// The loaded security state shared by the transport and the handlers.
#[derive(Debug)]
pub struct Access {
    config: AccessConfig,
    tls: Option<Arc<TlsReloader>>,
    authenticator: RwLock<Arc<Authenticator>>,
    policy: RwLock<Option<Arc<Policy>>>,
    limits: Limits,
    audit: AuditMetrics,
    connections: Connections,
    refusals: Sampler,
    throttle: AuthThrottle,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
}

impl Access {
    /// Loads every file the configuration names; modifications are counted
    /// into `audit`.
    pub fn load(config: &AccessConfig, audit: AuditMetrics) -> Result<Arc<Self>, AccessError> {
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
            audit,
            connections: Connections::default(),
            refusals: Sampler::new(audit::SAMPLE_WINDOW),
            throttle: AuthThrottle::new(
                config.limits.auth_failures_per_peer,
                config.limits.auth_failure_window,
            ),
        }))
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
        self.revoke();
        Ok(())
    }

    /// After a reload: ends every call whose token was removed (or now
    /// names someone else) or whose connection's client certificate no
    /// longer verifies against the client CA in force, and closes the
    /// connections left with nothing valid to authenticate with, a moment
    /// later, once the calls' endings are on the wire. Calls under
    /// identities that still authenticate are untouched.
    fn revoke(&self) {
        let authenticator = read(&self.authenticator);
        let checks_certificates = self
            .config
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some());
        let mut ended = 0u64;
        for conn in self.connections.all() {
            let certificate_revoked = match (&self.tls, conn.peer_certificates()) {
                (Some(tls), Some(chain)) if checks_certificates => !tls.still_verifies(&chain),
                _ => false,
            };
            let revoked = conn.revoke(certificate_revoked, |credential, identity| {
                authenticator.still_proves(credential, identity)
            });
            if revoked.calls.is_empty() && !revoked.close {
                continue;
            }
            ended += revoked.calls.len() as u64;
            let mut identities = revoked.identities.clone();
            identities.extend(revoked.calls.iter().cloned());
            identities.sort();
            identities.dedup();
            tracing::warn!(
                target: AUDIT_TARGET,
                decision = "revoked",
                identities = %identities.join(","),
                peer = %conn.peer_key(),
                calls = revoked.calls.len(),
                certificate = certificate_revoked,
                connection_closed = revoked.close,
                "credentials revoked by a reload: calls ended"
            );
            if revoked.close {
                close_soon(conn);
            }
        }
        if ended > 0 {
            self.audit.refused_many("revoked", ended);
        }
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

    /// The counts of the audit trail.
    pub fn audit_metrics(&self) -> &AuditMetrics {
        &self.audit
    }

    /// Every open connection of the gRPC listener.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Audits a refusal of the transport (`what`: `connection_refused`,
    /// `connection_closed`) at most once per reason and peer address per
    /// window: a flood writes a line a minute, not a line a connection; the
    /// metrics count every one.
    pub fn audit_refusal(&self, what: &'static str, reason: &'static str, peer: PeerKey) {
        if let Some(unlogged) = self.refusals.sample(reason, peer) {
            tracing::warn!(
                target: AUDIT_TARGET,
                decision = what,
                reason,
                peer = %peer,
                unlogged,
                "{}", what.replace('_', " ")
            );
        }
    }

    /// Who is calling; refusals are logged to the audit log.
    ///
    /// A peer address that failed too often is refused first, cheaply:
    /// its credentials are not looked at, and nothing is written (the
    /// block's start was).
    pub fn authenticate(
        &self,
        rpc: Option<Rpc>,
        headers: &http::HeaderMap,
        peer_certs: Option<&[tokio_rustls::rustls::pki_types::CertificateDer<'_>]>,
        peer: Option<SocketAddr>,
    ) -> Result<(Identity, Credential), Error> {
        let key = peer.map(|p| PeerKey::of(p.ip()));
        if let Some(key) = key
            && let Err(wait) = self.throttle.check(key)
        {
            self.audit.refused("auth_throttled");
            return Err(Error::new(
                Kind::Unauthenticated,
                "Unauthenticated.Throttled",
                "too many failed authentications from this address; retry after the suggested delay",
            )
            .with_retry_after(wait));
        }
        let authenticator = read(&self.authenticator);
        authenticator
            .authenticate_with(headers, peer_certs)
            .map_err(|why| {
                self.audit.auth_failure(why);
                let shown = key.map_or_else(|| "unknown".to_owned(), |k| k.to_string());
                tracing::warn!(
                    target: AUDIT_TARGET,
                    decision = "unauthenticated",
                    reason = why.kind(),
                    rpc = rpc.map_or("unknown", Rpc::as_str),
                    peer = %shown,
                    "call refused"
                );
                if let Some(key) = key
                    && self.throttle.failed(key)
                {
                    let window = self.throttle.window();
                    tracing::warn!(
                        target: AUDIT_TARGET,
                        decision = "throttled",
                        peer = %key,
                        failures = self.config.limits.auth_failures_per_peer,
                        window_secs = window.as_secs(),
                        "too many failed authentications; the address is refused for {}",
                        humantime::format_duration(window)
                    );
                }
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
            .inspect_err(|_| self.audit.refused("stream_limit"))
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
            &self.audit,
        ))
    }
}

/// How long a connection whose credentials were revoked stays after its
/// calls were told to end: long enough for their last frames to be
/// written, well within the second the revocation promises.
const REVOKED_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

fn close_soon(conn: Arc<Connection>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                tokio::time::sleep(REVOKED_CLOSE_GRACE).await;
                conn.close(CloseReason::Revoked);
            });
        }
        Err(_) => conn.close(CloseReason::Revoked),
    }
}

/// The refusal a call gets when a reload revokes its credentials.
pub fn revoked() -> Error {
    Error::new(
        Kind::Unauthenticated,
        "Unauthenticated.Revoked",
        "the credentials this call authenticated with were revoked",
    )
}

fn unauthenticated(why: AuthError) -> Error {
    Error::new(Kind::Unauthenticated, "Unauthenticated", why.to_string())
}
