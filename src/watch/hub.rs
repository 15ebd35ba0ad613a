//! The watched gateways, observed one region at a time, fanned out to
//! every watcher.
//!
//! Each watched gateway has a `tokio::sync::watch` cell that holds only
//! its latest observation: publishing never waits for anyone, and a
//! watcher that falls behind simply reads the newest state next time. One
//! sweeper per region observes the region's watched gateways together
//! (`sweep` picks the cheapest calls each round), so however many streams
//! and gateways are watched, the cloud sees one region's worth of calls.
//!
//! The cadence: the fast interval for a gateway that is busy, has a
//! watcher waiting for a change to show, changed in the last round, or had
//! a change sent through this gateway ([`WatchHub::kick`], which also wakes
//! a resting sweeper); the slow interval for the rest, so a change made
//! elsewhere is still seen within it. Failures stretch the cadence
//! (honouring the cloud's or the budget's retry-after). Transient upstream
//! errors keep the last state and never end streams; permanent ones
//! (gateway gone, access refused, account locked) are published. A
//! gateway leaves when its last watcher does, a sweeper with its region's
//! last gateway.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    metrics::GatewayStatusGauge,
    shared::View,
    sweep::{self, Due, IDLE_SERVER_ROUNDS, Outcome, RegionSizes},
};
use crate::{
    cloud::VpcClient,
    domain::{GatewayStatus, RegionId, SslVpnServer, VpnGateway},
    error::{Error, Kind},
    watch::WatchMetrics,
};

/// How the pollers pace themselves.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// The fast cadence: while something is moving or awaited.
    pub min_interval: Duration,
    /// The slow cadence of an idle gateway.
    pub max_interval: Duration,
    /// Budget for one upstream call.
    pub call_timeout: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(10),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// One poll's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub gateway: VpnGateway,
    /// The SSL servers on the gateway.
    pub servers: Vec<SslVpnServer>,
}

impl Observation {
    fn state(snapshot: Snapshot) -> Self {
        Self::State {
            snapshot,
            observed_at: SystemTime::now(),
            view: OnceLock::new(),
        }
    }
}

impl Snapshot {
    pub fn server(&self, id: &str) -> Option<&SslVpnServer> {
        self.servers.iter().find(|s| s.ssl_vpn_server_id == id)
    }
}

/// What watchers read from the cell.
#[derive(Debug)]
// Always behind an `Arc`, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    State {
        snapshot: Snapshot,
        observed_at: SystemTime,
        /// The snapshot as watchers see it, built by the first that reads it.
        view: OnceLock<View>,
    },
    /// A permanent failure: the gateway is gone or access was refused.
    Gone(Error),
}

type Cell = Option<Arc<Observation>>;

/// How long a change sent through this gateway keeps its gateway on the
/// fast cadence if nothing shows it (the cloud's pick-up lag is seconds).
const KICK_TTL: Duration = Duration::from_secs(60);

/// When a gateway is next due, as its rounds left it.
#[derive(Debug)]
struct Schedule {
    /// The last round that read it.
    last_round: Option<Instant>,
    /// When it is due at the slow cadence.
    next_slow: Instant,
    /// Its observation changed in the last round: look again soon.
    changed: bool,
    /// Fast until then (a change was sent through this gateway).
    kicked_until: Option<Instant>,
    /// Slow rounds since its servers were last read.
    idle_rounds: u32,
    status: Option<GatewayStatus>,
}

/// One watched gateway.
struct Watched {
    cell: watch::Sender<Cell>,
    /// Watchers waiting for something to change: the fast cadence.
    urgent: AtomicUsize,
    schedule: Mutex<Schedule>,
    /// The servers last read, kept across rounds that do not read them.
    servers: Mutex<Option<Vec<SslVpnServer>>>,
    /// When the gateway and its servers were last read. The cell changes
    /// only with the state, so its time is that of the last change; a
    /// pre-flight needs the time of the last look.
    seen: Mutex<Seen>,
    status_gauge: Mutex<GatewayStatusGauge>,
    _watched: crate::metrics::ActiveGuard,
}

impl Watched {
    fn fast(&self, s: &Schedule, now: Instant) -> bool {
        self.urgent.load(Ordering::Relaxed) > 0
            || s.changed
            || s.kicked_until.is_some_and(|t| now < t)
            || s.status.is_some_and(|st| st != GatewayStatus::Active)
    }

    /// When this gateway is next due.
    /// When this gateway is next due. Rounds fall on the region's grid of
    /// fast ticks, so gateways observed together stay together and a
    /// listing serves them all.
    fn due_at(&self, config: &PollConfig, epoch: Instant, now: Instant) -> Instant {
        let s = lock(&self.schedule);
        match s.last_round {
            None => now,
            Some(last) if self.fast(&s, now) => next_tick(epoch, config.min_interval, last),
            Some(_) => s.next_slow,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    gateway: Option<SystemTime>,
    servers: Option<SystemTime>,
}

impl Seen {
    /// The age of the older of the two reads.
    fn age(self, now: SystemTime) -> Option<Duration> {
        let oldest = self.gateway?.min(self.servers?);
        Some(now.duration_since(oldest).unwrap_or_default())
    }
}

/// A region's watched gateways and its sweeper.
struct Region {
    gateways: HashMap<String, Arc<Watched>>,
    wake: Arc<Notify>,
    /// The sweeper's span: a trace root (it outlives the watches that
    /// started it), linked to every watch call that joins it.
    span: tracing::Span,
}

struct HubInner {
    cloud: VpcClient,
    config: PollConfig,
    regions: Mutex<HashMap<RegionId, Region>>,
    /// Gateways watched at once; a watch that would add one more is refused.
    max_gateways: usize,
    shutdown: CancellationToken,
    poll_rounds: AtomicU64,
    metrics: WatchMetrics,
}

/// The watched gateways and their region sweepers. Cheap to clone.
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<HubInner>,
}

impl WatchHub {
    pub fn new(
        cloud: VpcClient,
        config: PollConfig,
        max_gateways: usize,
        shutdown: CancellationToken,
        metrics: WatchMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(HubInner {
                cloud,
                config,
                regions: Mutex::new(HashMap::new()),
                max_gateways,
                shutdown,
                poll_rounds: AtomicU64::new(0),
                metrics,
            }),
        }
    }

    /// Gateways watched now.
    pub fn watched_gateways(&self) -> usize {
        lock(&self.inner.regions)
            .values()
            .map(|r| r.gateways.len())
            .sum()
    }

    /// Region rounds done since start.
    pub fn poll_rounds(&self) -> u64 {
        self.inner.poll_rounds.load(Ordering::Relaxed)
    }

    /// Joins (or starts) the watch of a gateway.
    pub fn subscribe(&self, region: &RegionId, gateway_id: &str) -> Subscription {
        let mut regions = lock(&self.inner.regions);
        self.join_or_start(&mut regions, region, gateway_id)
    }

    /// Like `subscribe`, but refused instead of watching one more gateway
    /// when `max_gateways` are watched (joining a watched one is always
    /// fine).
    pub fn try_subscribe(
        &self,
        region: &RegionId,
        gateway_id: &str,
    ) -> Result<Subscription, Error> {
        // Checked under the map's lock, so concurrent starts cannot overshoot.
        let mut regions = lock(&self.inner.regions);
        let watched = regions
            .get(region)
            .is_some_and(|r| r.gateways.contains_key(gateway_id));
        let total: usize = regions.values().map(|r| r.gateways.len()).sum();
        if !watched && total >= self.inner.max_gateways {
            return Err(Error::new(
                Kind::Exhausted,
                "QuotaExceeded.Pollers",
                "the gateway is watching too many VPN gateways; retry later",
            ));
        }
        Ok(self.join_or_start(&mut regions, region, gateway_id))
    }

    /// A change was sent to `gateway_id`: its watchers, with or without an
    /// operation id, get the fast cadence at once — until the gateway is
    /// seen busy, or for one look when `applied` (a change the cloud made at
    /// once, such as the name alone).
    pub fn kick(&self, region: &RegionId, gateway_id: &str, applied: bool) {
        let regions = lock(&self.inner.regions);
        let Some(r) = regions.get(region) else { return };
        let Some(w) = r.gateways.get(gateway_id) else {
            return;
        };
        let now = Instant::now();
        {
            let mut s = lock(&w.schedule);
            let ttl = if applied {
                self.inner.config.min_interval
            } else {
                KICK_TTL
            };
            s.kicked_until = Some(now + ttl);
            // Due now: the first look shows whether the cloud picked it up.
            s.last_round = s.last_round.map(|_| {
                now.checked_sub(self.inner.config.min_interval)
                    .unwrap_or(now)
            });
        }
        r.wake.notify_one();
    }

    /// The latest observation of a watched gateway, if both the gateway and
    /// its servers were read within `max_age`.
    pub fn fresh(
        &self,
        region: &RegionId,
        gateway_id: &str,
        max_age: Duration,
    ) -> Option<Snapshot> {
        let regions = lock(&self.inner.regions);
        let w = regions.get(region)?.gateways.get(gateway_id)?;
        let age = lock(&w.seen).age(SystemTime::now())?;
        if age > max_age {
            return None;
        }
        let cell = w.cell.borrow();
        match cell.as_deref()? {
            Observation::State { snapshot, .. } => Some(snapshot.clone()),
            Observation::Gone(_) => None,
        }
    }

    /// The fast cadence.
    pub fn fast_interval(&self) -> Duration {
        self.inner.config.min_interval
    }

    fn join_or_start(
        &self,
        regions: &mut HashMap<RegionId, Region>,
        region: &RegionId,
        gateway_id: &str,
    ) -> Subscription {
        let r = regions.entry(region.clone()).or_insert_with(|| {
            let span = tracing::info_span!(
                parent: None,
                "poller",
                otel.name = "sweep region",
                otel.kind = "internal",
                cloud.region = %region,
            );
            let wake = Arc::new(Notify::new());
            tokio::spawn(
                run_region(self.inner.clone(), region.clone(), wake.clone())
                    .instrument(span.clone()),
            );
            Region {
                gateways: HashMap::new(),
                wake,
                span,
            }
        });
        r.span.follows_from(tracing::Span::current());
        let watched = r
            .gateways
            .entry(gateway_id.to_owned())
            .or_insert_with(|| {
                let (cell, _) = watch::channel(None);
                let now = Instant::now();
                Arc::new(Watched {
                    cell,
                    urgent: AtomicUsize::new(0),
                    schedule: Mutex::new(Schedule {
                        last_round: None,
                        next_slow: now,
                        changed: false,
                        kicked_until: None,
                        idle_rounds: 0,
                        status: None,
                    }),
                    servers: Mutex::new(None),
                    seen: Mutex::new(Seen::default()),
                    status_gauge: Mutex::new(self.inner.metrics.gateway_status()),
                    _watched: self.inner.metrics.poller_started(),
                })
            })
            .clone();
        let new = watched.cell.borrow().is_none();
        if new {
            r.wake.notify_one();
        }
        Subscription::new(watched, r.span.clone(), &self.inner.metrics)
    }
}

/// A watcher's view of one gateway.
pub struct Subscription {
    rx: watch::Receiver<Cell>,
    watched: Arc<Watched>,
    span: tracing::Span,
    urgent: bool,
    metrics: WatchMetrics,
}

impl Subscription {
    fn new(watched: Arc<Watched>, span: tracing::Span, metrics: &WatchMetrics) -> Self {
        Self {
            rx: watched.cell.subscribe(),
            watched,
            span,
            urgent: false,
            metrics: metrics.clone(),
        }
    }

    /// The hub's metrics, for the stream reading this subscription.
    pub fn metrics(&self) -> &WatchMetrics {
        &self.metrics
    }

    /// Asks for the fast cadence while this watcher awaits a change.
    pub fn set_urgent(&mut self, urgent: bool) {
        if urgent != self.urgent {
            self.urgent = urgent;
            if urgent {
                self.watched.urgent.fetch_add(1, Ordering::Relaxed);
            } else {
                self.watched.urgent.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The latest observation, marking it seen.
    pub fn latest(&mut self) -> Cell {
        self.rx.borrow_and_update().clone()
    }

    /// The span of the sweeper this watcher reads, to link to.
    pub fn poller_span(&self) -> &tracing::Span {
        &self.span
    }

    /// Waits for an observation newer than the last one seen. `false` when
    /// the sweeper has gone (shutdown).
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.set_urgent(false);
    }
}

/// The longest a sweeper waits on the cloud's word after throttling.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The wait after a failed round: doubling up to the slow cadence, or the
/// cloud's (or the budget's) retry-after when longer, honoured up to a
/// bound so an absurd one cannot freeze every watcher of the region.
fn after_failure(interval: Duration, retry_after: Option<Duration>, max: Duration) -> Duration {
    let backoff = interval.saturating_mul(2).min(max);
    retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER.max(max)).max(backoff))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned map is still a valid map: a panic elsewhere must not stop
    // every watch.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run_region(hub: Arc<HubInner>, region: RegionId, wake: Arc<Notify>) {
    let config = &hub.config;
    let mut sizes = RegionSizes::default();
    let epoch = Instant::now();
    let mut failure_interval = config.min_interval;
    let mut not_before: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // The gateways due now; the region leaves with its last gateway,
        // under the map's lock, so a watcher joining right now either
        // finds this sweeper alive or starts a new one.
        let due: Vec<(String, Arc<Watched>)> = {
            let mut regions = lock(&hub.regions);
            let Some(r) = regions.get_mut(&region) else {
                return;
            };
            r.gateways.retain(|_, w| w.cell.receiver_count() > 0);
            if r.gateways.is_empty() || hub.shutdown.is_cancelled() {
                regions.remove(&region);
                tracing::debug!("last watcher of the region left; sweeper stops");
                return;
            }
            if not_before.is_some_and(|t| now < t) {
                Vec::new()
            } else {
                r.gateways
                    .iter()
                    .filter(|(_, w)| w.due_at(config, epoch, now) <= now)
                    .map(|(id, w)| (id.clone(), w.clone()))
                    .collect()
            }
        };

        if !due.is_empty() {
            hub.poll_rounds.fetch_add(1, Ordering::Relaxed);
            let plan: Vec<Due> = due
                .iter()
                .map(|(id, w)| {
                    let s = lock(&w.schedule);
                    let idle = !w.fast(&s, now);
                    Due {
                        gateway_id: id.clone(),
                        last_status: s.status,
                        servers_wanted: (idle && s.idle_rounds + 1 >= IDLE_SERVER_ROUNDS)
                            || s.kicked_until.is_some_and(|t| now < t)
                            || w.urgent.load(Ordering::Relaxed) > 0,
                    }
                })
                .collect();
            let (mut outcomes, wait) =
                sweep::observe(&hub.cloud, &region, &plan, &mut sizes, config.call_timeout).await;
            let mut missed = false;
            for (id, w) in &due {
                match outcomes.remove(id) {
                    Some(Outcome::Seen { gateway, servers }) => {
                        publish(epoch, config, w, *gateway, servers)
                    }
                    Some(Outcome::Gone(err)) => {
                        tracing::warn!(vpn_gateway_id = %id, error = %err, "gateway can no longer be observed");
                        w.cell.send_replace(Some(Arc::new(Observation::Gone(err))));
                        let mut s = lock(&w.schedule);
                        s.last_round = Some(Instant::now());
                        s.next_slow = next_tick(epoch, config.max_interval, Instant::now());
                        s.status = None;
                    }
                    Some(Outcome::Missed) | None => missed = true,
                }
            }
            if missed {
                failure_interval = after_failure(failure_interval, wait, config.max_interval);
                tracing::debug!(
                    wait_ms = u64::try_from(failure_interval.as_millis()).unwrap_or(u64::MAX),
                    "round missed some gateways; keeping their last state"
                );
                not_before = Some(Instant::now() + failure_interval);
            } else {
                failure_interval = config.min_interval;
                not_before = None;
            }
        }

        let now = Instant::now();
        let next = {
            let regions = lock(&hub.regions);
            let soonest = regions.get(&region).and_then(|r| {
                r.gateways
                    .values()
                    .map(|w| w.due_at(config, epoch, now))
                    .min()
            });
            let soonest = soonest.unwrap_or(now + config.max_interval);
            not_before.map_or(soonest, |t| soonest.max(t))
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = wake.notified() => {}
            () = hub.shutdown.cancelled() => {}
        }
        if hub.shutdown.is_cancelled() {
            lock(&hub.regions).remove(&region);
            return;
        }
    }
}

/// The first tick of the grid `epoch + k × step` after `after`.
fn next_tick(epoch: Instant, step: Duration, after: Instant) -> Instant {
    let step_ns = step.as_nanos().max(1);
    let since = after.saturating_duration_since(epoch).as_nanos();
    let k = since / step_ns + 1;
    let offset = u64::try_from(k.saturating_mul(step_ns)).unwrap_or(u64::MAX);
    epoch + Duration::from_nanos(offset)
}

/// Publishes what a round saw of one gateway, and schedules its next look.
fn publish(
    epoch: Instant,
    config: &PollConfig,
    w: &Watched,
    gateway: VpnGateway,
    servers: Option<Vec<SslVpnServer>>,
) {
    let now = Instant::now();
    lock(&w.status_gauge).observe(&gateway.status);
    let read_servers = servers.is_some();
    {
        let read_at = SystemTime::now();
        let mut seen = lock(&w.seen);
        seen.gateway = Some(read_at);
        if read_servers {
            seen.servers = Some(read_at);
        }
    }
    let servers = {
        let mut kept = lock(&w.servers);
        if let Some(fresh) = servers {
            *kept = Some(fresh);
        }
        kept.clone().unwrap_or_default()
    };
    let snapshot = Snapshot { gateway, servers };
    let status = snapshot.gateway.status();
    let changed = w.cell.send_if_modified(|cell| {
        let same = matches!(
            cell.as_deref(),
            Some(Observation::State { snapshot: old, .. }) if *old == snapshot
        );
        if !same {
            tracing::info!(
                vpn_gateway_id = %snapshot.gateway.vpn_gateway_id,
                status = %snapshot.gateway.status,
                business_status = %snapshot.gateway.business_status,
                "gateway state changed"
            );
            *cell = Some(Arc::new(Observation::state(snapshot.clone())));
        }
        !same
    });
    let mut s = lock(&w.schedule);
    let was_idle = s.last_round.is_some() && !w.fast(&s, now);
    s.last_round = Some(now);
    s.changed = changed;
    s.status = Some(status);
    if read_servers {
        s.idle_rounds = 0;
    } else if was_idle {
        s.idle_rounds += 1;
    }
    // A kicked gateway seen busy has shown the change: the status keeps it fast.
    if status != GatewayStatus::Active {
        s.kicked_until = None;
    }
    s.next_slow = next_tick(epoch, config.max_interval, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_and_the_clouds_word_is_bounded() {
        let s = Duration::from_secs;
        assert_eq!(after_failure(s(1), None, s(10)), s(2));
        assert_eq!(after_failure(s(8), None, s(10)), s(10));
        assert_eq!(after_failure(s(1), Some(s(5)), s(10)), s(5));
        assert_eq!(after_failure(s(1), Some(s(86_400)), s(10)), MAX_RETRY_AFTER);
        assert_eq!(
            after_failure(s(1), Some(Duration::MAX), s(10)),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn only_failures_no_poll_can_mend_end_the_streams() {
        // Classified from the cloud's codes, as the poller meets them.
        let err = |code| {
            Error::from(crate::cloud::CloudError::from_response(
                400,
                None,
                format!(r#"{{"Code":"{code}","Message":"m"}}"#).as_bytes(),
            ))
        };
        for permanent in [
            err("InvalidVpnGatewayInstanceId.NotFound"),
            err("Forbidden.RAM"),
            err("VpnGateway.FinancialLocked"),
        ] {
            assert!(permanent.kind().ends_watch(), "{permanent:?}");
        }
        for passing in [
            err("VpnGateway.Configuring"),
            err("ServiceUnavailable"),
            err("Throttling.User"),
            err("InvalidAccessKeyId.NotFound"),
        ] {
            assert!(!passing.kind().ends_watch(), "{passing:?}");
        }
    }
}
