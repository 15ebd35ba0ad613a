//! An emulator of the Alibaba Cloud VPC API (version 2016-04-28), faithful
//! to the real wire: the gateway's default upstream for demos and tests.
//!
//! It plays the cloud over real HTTP and never calls the service layer: POST
//! or GET on `/`, parameters in the query and/or a form body, both the V3
//! `ACS3-HMAC-SHA256` and the legacy `HMAC-SHA1` signatures verified against
//! its access keys (STS tokens included), a 15-minute clock-skew window and
//! nonce replay protection, and the cloud's JSON error body. It serves
//! `ModifySslVpnServer`, `DescribeSslVpnServers`, `DescribeVpnGateway` and
//! `DescribeVpnGateways` with the SDK models' shapes and paging, enforces
//! every rule of the ModifySslVpnServer document with rules of its own
//! (`rules`: written from the document, sharing no code with the gateway's
//! `validate`, so that each checks the other) plus those only the cloud can
//! know, and applies changes asynchronously: a
//! change stays invisible for an accept lag, the gateway then reads
//! `updating` for the apply time, then `active` with the new configuration.
//! Faults (latency, 500/503, `SystemBusy`, `Throttling.User`, `Throttling`,
//! the busy codes `OperationConflict`, `TaskConflict`, `VpnTask.CONFLICT` and
//! `IncorrectStatus.VpnGateway`, `UnknownError`, connection resets,
//! "applied, then dropped") are configurable per action, API rate limits
//! per account, region and action answer `Throttling.User` as the cloud's
//! flow control does (`quotas`), and an admin API under `/_emulator/` loads
//! fixtures, sets timings, faults and quotas and serves counters.
//! docs/emulator.md is the user's guide.
//!
//! Error codes where the API document names none (HTTP status in brackets):
//! - unknown server `InvalidSslVpnServerId.NotFound` (404), unknown gateway
//!   `InvalidVpnGatewayInstanceId.NotFound` (404), unknown action or version
//!   `InvalidApi.NotFound` (404), unknown key `InvalidAccessKeyId.NotFound`
//!   (404), disabled key `InvalidAccessKeyId.Inactive` (400);
//! - a missing parameter `MissingParameter.<Name>` (400); a missing V3 header
//!   `MissingParameter` (400); a value of the wrong type (a non-integer
//!   `Port`, a boolean other than true/false in any case, a bad page)
//!   `InvalidParameter.<Name>` (400), as are the document's rules that name
//!   no code (an unsupported port, a bad local subnet);
//! - a bad signature `SignatureDoesNotMatch` (400, the message ends with the
//!   server's string to sign); a malformed `Authorization` or an unsigned
//!   required header `IncompleteSignature` (400); a V1 `SignatureMethod`
//!   other than HMAC-SHA1 `InvalidParameter.SignatureMethod` (400);
//! - an STS key without its token `MissingParameter.SecurityToken` (400), a
//!   wrong token or a token on a permanent key
//!   `InvalidSecurityToken.MismatchWithAccessKey` (400);
//! - throttling `Throttling.User` (400, `x-acs-retry-after` in ms), a
//!   ClientToken reused with other parameters `IdempotentParameterMismatch`
//!   (400), a passed `DryRun` `DryRunOperation` (400), a modify on a gateway
//!   that is not `active` (or has a change pending) `VpnGateway.Configuring`
//!   (400), a client pool too small for 4 × MaxConnections
//!   `InvalidParameter.ClientIpPool` (400), a method other than GET/POST
//!   `UnsupportedHTTPMethod` (400).
//!
//! Deliberately not modelled: `Forbbiden.SubUser`, `InvalidInstanceId.NotFound`
//! (Express Connect) and `VpnRouteEntry.Conflict` need resources this API's
//! parameters never name. A client pool overlapping the VPC's own CIDR
//! block, which the document asks callers to avoid, is not refused: the
//! document names no code for it, and inventing one would make the emulator
//! stricter than the cloud in a way nobody could check. Where the document
//! is silent the emulator makes its own choices, listed in `rules` (a CIDR
//! block must be its network address; a request must change something; an
//! SSL server id has the cloud's shape); nothing of the gateway's is
//! reused, so a client token may be any ASCII and an IDaaS id that names
//! nothing is simply not found. The emulator's sources name nothing of the
//! crate outside `emulator`, which a unit test checks. Answers are always
//! JSON (`Format=XML` is ignored).

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{Router, routing::any};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

mod actions;
pub mod admin;
mod auth;
pub mod clock;
mod config;
mod conn;
mod counters;
pub mod errors;
pub mod faults;
pub mod fixtures;
mod idempotency;
mod pipeline;
mod quotas;
pub mod rules;
pub mod signature;
pub mod state;
pub mod wire;

pub use actions::{API_VERSION, Action};
pub use auth::TIMESTAMP_WINDOW;
pub use clock::Clock;
pub use config::{ConfigError, EmulatorArgs, EmulatorConfig, Timings, TimingsPatch};
pub use counters::Counters;
pub use faults::{ActionFaults, Fault, FaultTable};
pub use fixtures::Fixtures;
pub use quotas::{Quota, QuotaSetting, QuotaTable};
pub use state::FixtureError;

/// The documented demo access key the default fixtures accept (fake: it
/// opens nothing but an emulator).
pub const DEMO_ACCESS_KEY_ID: &str = "LTAI5tEMULATORDEMOKEY";
/// The secret of [`DEMO_ACCESS_KEY_ID`].
pub const DEMO_ACCESS_KEY_SECRET: &str = "EmulatorDemoSecret0123456789abcd";

/// An access key pair to give a client (Debug hides the secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Everything requests change, behind one lock.
struct Shared {
    world: state::World,
    ledger: idempotency::Ledger,
    nonces: auth::NonceCache,
    counters: Counters,
    faults: FaultTable,
    quotas: quotas::Quotas,
    timings: Timings,
    rng: fastrand::Rng,
}

struct Inner {
    clock: Clock,
    /// What `reset` goes back to.
    initial: EmulatorConfig,
    shared: Mutex<Shared>,
}

/// An emulated VPC API. Cheap to clone: clones share one cloud.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").finish_non_exhaustive()
    }
}

impl Emulator {
    /// An emulator of `config`.
    ///
    /// # Panics
    /// When the fixtures do not load (dangling or duplicate ids): a bug in
    /// the caller's fixtures, found at startup. [`Emulator::try_new`] returns
    /// the error instead; configurations made from [`EmulatorArgs`] are
    /// already checked.
    pub fn new(config: EmulatorConfig) -> Self {
        match Self::try_new(config) {
            Ok(emu) => emu,
            Err(e) => panic!("emulator fixtures do not load: {e}"),
        }
    }

    /// An emulator of `config`, or why its fixtures do not load.
    pub fn try_new(config: EmulatorConfig) -> Result<Self, FixtureError> {
        let shared = Self::fresh(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                clock: config.clock,
                initial: config,
                shared: Mutex::new(shared),
            }),
        })
    }

    fn fresh(config: &EmulatorConfig) -> Result<Shared, FixtureError> {
        Ok(Shared {
            world: state::World::load(&config.fixtures)?,
            ledger: idempotency::Ledger::default(),
            nonces: auth::NonceCache::default(),
            counters: Counters::default(),
            faults: config.faults.clone(),
            quotas: quotas::Quotas::new(config.quotas.clone()),
            timings: config.timings.clamped(),
            rng: config
                .seed
                .map(fastrand::Rng::with_seed)
                .unwrap_or_default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere must not take the emulator down with it.
        self.inner
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, action: &str, outcome: &str) {
        self.lock().counters.record(action, outcome);
    }

    /// The API on `/` and the admin API under `/_emulator/`. Connection
    /// faults need [`Emulator::serve`] (or [`spawn`]); with another server
    /// they answer 500 `InternalError` instead.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", any(pipeline::handle).with_state(self.clone()))
            .merge(admin::router().with_state(self.clone()))
            .fallback(pipeline::not_found)
    }

    /// Serves the emulator on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<conn::ConnHandle>();
        axum::serve(conn::ResettableListener::new(listener), app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// What the emulator has counted so far.
    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    pub fn reset_counters(&self) {
        self.lock().counters = Counters::default();
    }

    /// The key a client should use: the demo pair when the fixtures have it,
    /// else their first enabled key.
    pub fn credentials(&self) -> Credentials {
        let shared = self.lock();
        let keys = &shared.world.keys;
        let key = keys
            .get(DEMO_ACCESS_KEY_ID)
            .or_else(|| keys.values().find(|k| k.enabled));
        match key {
            Some(k) => Credentials {
                access_key_id: k.access_key_id.clone(),
                access_key_secret: k.access_key_secret.clone(),
                security_token: k.security_token.clone(),
            },
            None => Credentials {
                access_key_id: DEMO_ACCESS_KEY_ID.into(),
                access_key_secret: DEMO_ACCESS_KEY_SECRET.into(),
                security_token: None,
            },
        }
    }

    /// The current world as a fixture document.
    pub fn fixtures(&self) -> Fixtures {
        self.lock().world.to_fixtures()
    }

    /// Replaces the world; pending changes, remembered tokens and nonces go
    /// with the old one.
    pub fn load_fixtures(&self, fixtures: &Fixtures) -> Result<(), FixtureError> {
        let world = state::World::load(fixtures)?;
        let mut shared = self.lock();
        shared.world = world;
        shared.ledger = idempotency::Ledger::default();
        shared.nonces = auth::NonceCache::default();
        Ok(())
    }

    /// Back to the state it started in: fixtures, timings, faults, quotas,
    /// counters.
    pub fn reset(&self) {
        match Self::fresh(&self.inner.initial) {
            Ok(fresh) => *self.lock() = fresh,
            // The initial fixtures loaded once; they load again.
            Err(e) => tracing::error!(error = %e, "emulator reset failed"),
        }
    }

    pub fn timings(&self) -> Timings {
        self.lock().timings
    }

    /// Changes some timings; returns them all. Changes already accepted keep
    /// the timings they were accepted with.
    pub fn patch_timings(&self, patch: TimingsPatch) -> Timings {
        let mut shared = self.lock();
        shared.timings = shared.timings.patched(patch);
        shared.timings
    }

    pub fn set_timings(&self, timings: Timings) {
        self.lock().timings = timings.clamped();
    }

    pub fn faults(&self) -> FaultTable {
        self.lock().faults.clone()
    }

    /// Sets one action's faults (`*`: every action without its own).
    pub fn set_faults(&self, action: &str, faults: ActionFaults) {
        self.lock().faults.insert(action.to_owned(), faults);
    }

    pub fn clear_faults(&self, action: &str) {
        self.lock().faults.remove(action);
    }

    pub fn set_fault_table(&self, table: FaultTable) {
        self.lock().faults = table;
    }

    /// The API rate limits (action → at most COUNT calls per PERIOD, per
    /// account and region).
    pub fn quotas(&self) -> QuotaTable {
        self.lock().quotas.table().clone()
    }

    /// Replaces the rate limits; every account's budget starts afresh.
    pub fn set_quotas(&self, table: QuotaTable) {
        self.lock().quotas.replace(table);
    }

    /// The emulator's clock (tests pause tokio's to move it).
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// What the CLI prints at startup: keys and fixture ids.
    pub fn banner(&self) -> String {
        let fixtures = self.fixtures();
        let mut out = String::from("access keys (id / secret):\n");
        for key in &fixtures.access_keys {
            let mut notes = Vec::new();
            if key.security_token.is_some() {
                notes.push("STS".to_owned());
            }
            if !key.enabled {
                notes.push("disabled".to_owned());
            }
            if !key.resources.iter().any(|r| r == "*") {
                notes.push(format!("only {}", key.resources.join(", ")));
            }
            if key.account_id != fixtures::DEFAULT_ACCOUNT_ID {
                notes.push(format!("account {}", key.account_id));
            }
            out.push_str(&format!(
                "  {} / {}{}\n",
                key.access_key_id,
                key.access_key_secret,
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                }
            ));
            if let Some(token) = &key.security_token {
                out.push_str(&format!("    security token: {token}\n"));
            }
        }
        let quotas = self.quotas();
        if quotas.is_empty() {
            out.push_str("quotas: none\n");
        } else {
            let listed: Vec<String> = quotas.iter().map(|(a, q)| format!("{a}={q}")).collect();
            out.push_str(&format!(
                "quotas (per account and region): {}\n",
                listed.join(", ")
            ));
        }
        out.push_str("fixtures (gateway, ssl vpn server, vpc, notes):\n");
        out.push_str(&fixtures.summary());
        out
    }
}

/// A running emulator on a loopback port.
pub struct EmulatorHandle {
    addr: SocketAddr,
    emulator: Emulator,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`: what an SDK takes as its endpoint.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    pub fn credentials(&self) -> Credentials {
        self.emulator.credentials()
    }

    pub fn counters(&self) -> Counters {
        self.emulator.counters()
    }

    /// Stops serving and waits until the listener is closed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts an emulator on `127.0.0.1:0` in the current runtime.
pub async fn spawn(config: EmulatorConfig) -> std::io::Result<EmulatorHandle> {
    let emulator = Emulator::try_new(config).map_err(std::io::Error::other)?;
    spawn_emulator(emulator).await
}

/// Serves an existing emulator on `127.0.0.1:0`.
pub async fn spawn_emulator(emulator: Emulator) -> std::io::Result<EmulatorHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(emulator.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    Ok(EmulatorHandle {
        addr,
        emulator,
        shutdown: Some(tx),
        task: Some(task),
    })
}
