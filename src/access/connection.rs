//! One client connection as access control sees it: where it comes from,
//! the client certificate it presented, whether any call on it has
//! authenticated, and the switch that closes it.
//!
//! The transport's accept loop (`server`) opens a [`Connection`] for every
//! TCP connection it admits and asks it, while the connection has never
//! carried an authenticated call, whether to keep it ([`Connection::verdict`]):
//! a connection that stays silent (no TLS handshake, no HTTP/2 preface, no
//! call) or only ever calls the open services (health, reflection) is closed
//! once it has been idle for the handshake timeout. The transport's call
//! layer counts calls in flight ([`Connection::call_started`]); the
//! admission layer marks the connection authenticated when a call on it is
//! admitted, and registers each authenticated call ([`Connection::begin`])
//! with what it authenticated with. [`Connections`] knows every open
//! connection, so a reload can find the calls and connections whose
//! credentials it revoked ([`Connection::revoke`]): those calls are told to
//! end, and a connection left with nothing valid to authenticate with is
//! closed.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::{identity::Credential, peer::PeerKey};

/// Distinct credentials remembered per connection. A connection that
/// presents more (a proxy multiplexing many callers) is never closed for
/// their revocation, only its calls are ended.
const MAX_CREDENTIALS: usize = 16;

/// Why the gateway closed a connection: the `reason` label of
/// `sslvpn_connections_closed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// No TLS handshake, HTTP/2 preface or call within the handshake timeout.
    HandshakeTimeout,
    /// Only unauthenticated calls (the open services, refused ones), then
    /// idle for the handshake timeout.
    Unauthenticated,
    /// The TLS handshake failed (an untrusted certificate, not TLS at all).
    TlsHandshakeFailed,
    /// A reload revoked what the connection authenticated with.
    Revoked,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::HandshakeTimeout,
        CloseReason::Unauthenticated,
        CloseReason::TlsHandshakeFailed,
        CloseReason::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::Unauthenticated => "unauthenticated",
            CloseReason::TlsHandshakeFailed => "tls_handshake_failed",
            CloseReason::Revoked => "revoked",
        }
    }
}

/// What to do with a connection that has not authenticated yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It has authenticated: no further checks.
    Keep,
    /// Ask again at this instant.
    CheckAt(Instant),
    /// Close it now (the reason is recorded on the connection).
    Close(CloseReason),
}

/// One connection's shared state.
pub struct Connection {
    id: u64,
    peer: SocketAddr,
    key: PeerKey,
    certificates: OnceLock<Arc<Vec<CertificateDer<'static>>>>,
    close: CancellationToken,
    reason: OnceLock<CloseReason>,
    state: Mutex<State>,
    registry: Weak<Registry>,
}

struct State {
    in_flight: usize,
    /// Since when nothing has been in flight (the accept, at first).
    idle_since: Instant,
    /// Whether any call arrived at all (else the preface never came).
    called: bool,
    authenticated: bool,
    next_call: u64,
    /// Authenticated calls in flight.
    calls: HashMap<u64, Call>,
    /// Every distinct (identity, credential) a call here authenticated with.
    credentials: Vec<(Arc<str>, Credential)>,
    credentials_overflowed: bool,
}

struct Call {
    identity: Arc<str>,
    credential: Credential,
    revoked: CancellationToken,
}

/// What a reload's check ended on one connection.
#[derive(Debug, Default)]
pub struct Revoked {
    /// The identities of the calls told to end, one per call.
    pub calls: Vec<Arc<str>>,
    /// The identities that can no longer authenticate here.
    pub identities: Vec<Arc<str>>,
    /// Whether the connection is left with nothing valid: to be closed.
    pub close: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn peer_key(&self) -> PeerKey {
        self.key
    }

    /// Records the client certificate chain the TLS handshake verified.
    pub fn set_peer_certificates(&self, chain: Vec<CertificateDer<'static>>) {
        let _ = self.certificates.set(Arc::new(chain));
    }

    /// The verified client certificate chain, leaf first.
    pub fn peer_certificates(&self) -> Option<Arc<Vec<CertificateDer<'static>>>> {
        self.certificates.get().cloned()
    }

    /// Counts a call in flight until the guard drops.
    pub fn call_started(self: &Arc<Self>) -> InFlight {
        let mut state = lock(&self.state);
        state.in_flight += 1;
        state.called = true;
        InFlight { conn: self.clone() }
    }

    /// A call on this connection was admitted: the connection has proved
    /// itself and is no longer closed for idling.
    pub fn authenticated(&self) {
        lock(&self.state).authenticated = true;
    }

    pub fn is_authenticated(&self) -> bool {
        lock(&self.state).authenticated
    }

    /// Registers an authenticated call until the session drops, and marks
    /// the connection authenticated.
    pub fn begin(self: &Arc<Self>, identity: Arc<str>, credential: Credential) -> Session {
        let revoked = CancellationToken::new();
        let mut state = lock(&self.state);
        state.authenticated = true;
        let id = state.next_call;
        state.next_call += 1;
        let known = state
            .credentials
            .iter()
            .any(|(i, c)| *i == identity && *c == credential);
        if !known {
            if state.credentials.len() < MAX_CREDENTIALS {
                state
                    .credentials
                    .push((identity.clone(), credential.clone()));
            } else {
                state.credentials_overflowed = true;
            }
        }
        state.calls.insert(
            id,
            Call {
                identity,
                credential,
                revoked: revoked.clone(),
            },
        );
        Session {
            conn: self.clone(),
            id,
            revoked,
        }
    }

    /// Ends the calls whose credentials no longer prove their identity
    /// (`still_proves`), all of them if the connection's certificate no
    /// longer verifies, and says whether the connection is left with
    /// nothing valid. The caller closes it.
    pub fn revoke(
        &self,
        certificate_revoked: bool,
        still_proves: impl Fn(&Credential, &str) -> bool,
    ) -> Revoked {
        let valid = |identity: &str, credential: &Credential| {
            !(certificate_revoked && *credential == Credential::Certificate)
                && still_proves(credential, identity)
        };
        let mut state = lock(&self.state);
        let mut revoked = Revoked::default();
        for call in state.calls.values() {
            if certificate_revoked || !valid(&call.identity, &call.credential) {
                call.revoked.cancel();
                revoked.calls.push(call.identity.clone());
            }
        }
        let had = !state.credentials.is_empty();
        state.credentials.retain(|(identity, credential)| {
            let keep = valid(identity, credential);
            if !keep {
                revoked.identities.push(identity.clone());
            }
            keep
        });
        revoked.close = certificate_revoked
            || (had && state.credentials.is_empty() && !state.credentials_overflowed);
        revoked
    }

    /// Whether a connection that has not authenticated may stay, given the
    /// time now and how long it may idle.
    pub fn verdict(&self, now: Instant, timeout: Duration) -> Verdict {
        let state = lock(&self.state);
        if state.authenticated {
            return Verdict::Keep;
        }
        if state.in_flight > 0 {
            // Asked again once the calls could have ended and idled.
            return Verdict::CheckAt(now + timeout);
        }
        let due = state.idle_since + timeout;
        if now < due {
            return Verdict::CheckAt(due);
        }
        let reason = if state.called {
            CloseReason::Unauthenticated
        } else {
            CloseReason::HandshakeTimeout
        };
        drop(state);
        self.close(reason);
        Verdict::Close(reason)
    }

    /// Closes the connection (the first reason given is the one recorded).
    pub fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.close.cancel();
    }

    /// Resolves once the connection is to be closed.
    pub fn closed(&self) -> WaitForCancellationFutureOwned {
        self.close.clone().cancelled_owned()
    }

    pub fn is_closed(&self) -> bool {
        self.close.is_cancelled()
    }

    /// Why the gateway closed it, if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            lock(&registry.live).remove(&self.id);
        }
    }
}

/// A call in flight on a connection; when the last one ends, the
/// connection's idle time starts.
pub struct InFlight {
    conn: Arc<Connection>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = lock(&self.conn.state);
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// An authenticated call's registration; `revoked` resolves if a reload
/// revokes what it authenticated with.
pub struct Session {
    conn: Arc<Connection>,
    id: u64,
    revoked: CancellationToken,
}

impl Session {
    pub fn revoked(&self) -> WaitForCancellationFutureOwned {
        self.revoked.clone().cancelled_owned()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        lock(&self.conn.state).calls.remove(&self.id);
    }
}

#[derive(Default)]
struct Registry {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Weak<Connection>>>,
}

/// Every open connection of one gateway.
#[derive(Clone, Default)]
pub struct Connections {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.len())
            .finish()
    }
}

impl Connections {
    /// A connection accepted from `peer` now; it leaves the registry when
    /// the last reference to it drops.
    pub fn open(&self, peer: SocketAddr) -> Arc<Connection> {
        let id = self.registry.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection {
            id,
            peer,
            key: PeerKey::of(peer.ip()),
            certificates: OnceLock::new(),
            close: CancellationToken::new(),
            reason: OnceLock::new(),
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                called: false,
                authenticated: false,
                next_call: 0,
                calls: HashMap::new(),
                credentials: Vec::new(),
                credentials_overflowed: false,
            }),
            registry: Arc::downgrade(&self.registry),
        });
        lock(&self.registry.live).insert(id, Arc::downgrade(&conn));
        conn
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        lock(&self.registry.live).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every open connection (a snapshot).
    pub fn all(&self) -> Vec<Arc<Connection>> {
        lock(&self.registry.live)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.2:40000".parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_for_its_handshake() {
        let connections = Connections::default();
        let conn = connections.open(peer());
        let timeout = Duration::from_secs(5);
        let now = Instant::now();
        assert_eq!(conn.verdict(now, timeout), Verdict::CheckAt(now + timeout));
        assert_eq!(
            conn.verdict(now + timeout, timeout),
            Verdict::Close(CloseReason::HandshakeTimeout)
        );
        assert!(conn.is_closed());
        assert_eq!(conn.close_reason(), Some(CloseReason::HandshakeTimeout));
        assert_eq!(connections.len(), 1);
        drop(conn);
        assert!(connections.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_keep_it_and_idling_unauthenticated_closes_it() {
        let connections = Connections::default();
        let conn = connections.open(peer());
        let timeout = Duration::from_secs(5);
        let health = conn.call_started();
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        assert_eq!(conn.verdict(now, timeout), Verdict::CheckAt(now + timeout));
        drop(health);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(matches!(
            conn.verdict(Instant::now(), timeout),
            Verdict::CheckAt(_)
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            conn.verdict(Instant::now(), timeout),
            Verdict::Close(CloseReason::Unauthenticated)
        );
    }

    #[test]
    fn a_revoked_token_ends_its_calls_and_closes_a_connection_left_with_nothing() {
        let connections = Connections::default();
        let conn = connections.open(peer());
        let (alice, bob) = (Arc::<str>::from("alice"), Arc::<str>::from("bob"));
        let a = conn.begin(alice.clone(), Credential::Token([1; 32]));
        let b = conn.begin(bob.clone(), Credential::Token([2; 32]));
        // alice's token is removed: her call ends, bob's does not, and the
        // connection still has bob's.
        let only_bob = |c: &Credential, _: &str| *c == Credential::Token([2; 32]);
        let revoked = conn.revoke(false, only_bob);
        assert_eq!(revoked.calls, vec![alice.clone()]);
        assert_eq!(revoked.identities, vec![alice]);
        assert!(!revoked.close);
        assert!(a.revoked.is_cancelled() && !b.revoked.is_cancelled());
        drop(a);
        // Then bob's: nothing valid is left.
        let revoked = conn.revoke(false, |_, _| false);
        assert_eq!(revoked.calls, vec![bob]);
        assert!(revoked.close);
        drop(b);
        assert!(lock(&conn.state).calls.is_empty());
    }

    #[test]
    fn a_revoked_certificate_ends_every_call_of_its_connection() {
        let connections = Connections::default();
        let conn = connections.open(peer());
        let by_cert = conn.begin("spiffe://x/y".into(), Credential::Certificate);
        let by_token = conn.begin("ci".into(), Credential::Token([3; 32]));
        let revoked = conn.revoke(true, |_, _| true);
        assert_eq!(revoked.calls.len(), 2);
        assert!(revoked.close);
        assert!(by_cert.revoked.is_cancelled() && by_token.revoked.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_authenticated_connection_is_kept() {
        let connections = Connections::default();
        let conn = connections.open(peer());
        let call = conn.call_started();
        conn.authenticated();
        drop(call);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            conn.verdict(Instant::now(), Duration::from_secs(5)),
            Verdict::Keep
        );
        assert!(!conn.is_closed());
    }
}
