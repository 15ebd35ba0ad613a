//! One shared poller per (region, gateway), fanned out to every watcher.
//!
//! However many streams watch servers of one gateway, the cloud sees one
//! DescribeVpnGateway (and one DescribeSslVpnServers) per poll round. The
//! poller publishes into a `tokio::sync::watch` cell that holds only the
//! latest observation: publishing never waits for anyone, and a watcher that
//! falls behind simply reads the newest state next time. The poller stops
//! when its last watcher leaves.
//!
//! The interval adapts: the minimum while the gateway is busy or a watcher
//! waits for a change to show, doubling up to the maximum while nothing
//! moves, and backing off (honouring the cloud's retry-after) when
//! throttled. Transient upstream errors keep the last state and never end
//! streams; permanent ones (gateway gone, access refused) are published.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    cloud::{PageRequest, ServerFilter, VpcClient},
    domain::{RegionId, SslVpnServer, VpnGateway},
    error::{Error, Kind},
    watch::WatchMetrics,
};

/// How the pollers pace themselves.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// Interval while something is moving or awaited.
    pub min_interval: Duration,
    /// Interval an idle gateway backs off to.
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

impl Snapshot {
    pub fn server(&self, id: &str) -> Option<&SslVpnServer> {
        self.servers.iter().find(|s| s.ssl_vpn_server_id == id)
    }
}

/// What watchers read from the cell.
#[derive(Clone, Debug)]
// Always behind an `Arc`, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    State {
        snapshot: Snapshot,
        observed_at: SystemTime,
    },
    /// A permanent failure: the gateway is gone or access was refused.
    Gone(Error),
}

type Cell = Option<Arc<Observation>>;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct PollerKey {
    region: RegionId,
    gateway_id: String,
}

struct Poller {
    cell: watch::Sender<Cell>,
    /// Watchers waiting for something to change: poll at the minimum.
    urgent: AtomicUsize,
    /// The poller's own span: a trace root (it outlives the watch that
    /// started it), linked to every watch call that joins it.
    span: tracing::Span,
}

struct HubInner {
    cloud: VpcClient,
    config: PollConfig,
    pollers: Mutex<HashMap<PollerKey, Arc<Poller>>>,
    /// Gateways polled at once; a watch that would start one more is refused.
    max_pollers: usize,
    shutdown: CancellationToken,
    poll_rounds: AtomicU64,
    metrics: WatchMetrics,
}

/// The shared pollers. Cheap to clone.
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<HubInner>,
}

impl WatchHub {
    pub fn new(
        cloud: VpcClient,
        config: PollConfig,
        max_pollers: usize,
        shutdown: CancellationToken,
        metrics: WatchMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(HubInner {
                cloud,
                config,
                pollers: Mutex::new(HashMap::new()),
                max_pollers,
                shutdown,
                poll_rounds: AtomicU64::new(0),
                metrics,
            }),
        }
    }

    /// Pollers running now.
    pub fn active_pollers(&self) -> usize {
        lock(&self.inner.pollers).len()
    }

    /// Poll rounds done since start, over all gateways.
    pub fn poll_rounds(&self) -> u64 {
        self.inner.poll_rounds.load(Ordering::Relaxed)
    }

    /// Joins (or starts) the poller of a gateway.
    pub fn subscribe(&self, region: &RegionId, gateway_id: &str) -> Subscription {
        let key = PollerKey {
            region: region.clone(),
            gateway_id: gateway_id.to_owned(),
        };
        let mut pollers = lock(&self.inner.pollers);
        self.join_or_start(&mut pollers, key)
    }

    /// Like `subscribe`, but refused instead of starting a poller when
    /// `max_pollers` already run (joining a running one is always fine).
    pub fn try_subscribe(
        &self,
        region: &RegionId,
        gateway_id: &str,
    ) -> Result<Subscription, Error> {
        let key = PollerKey {
            region: region.clone(),
            gateway_id: gateway_id.to_owned(),
        };
        // Checked under the map's lock, so concurrent starts cannot overshoot.
        let mut pollers = lock(&self.inner.pollers);
        if !pollers.contains_key(&key) && pollers.len() >= self.inner.max_pollers {
            return Err(Error::new(
                Kind::Exhausted,
                "QuotaExceeded.Pollers",
                "the gateway is watching too many VPN gateways; retry later",
            ));
        }
        Ok(self.join_or_start(&mut pollers, key))
    }

    fn join_or_start(
        &self,
        pollers: &mut HashMap<PollerKey, Arc<Poller>>,
        key: PollerKey,
    ) -> Subscription {
        if let Some(poller) = pollers.get(&key) {
            poller.span.follows_from(tracing::Span::current());
            return Subscription::new(poller.clone(), &self.inner.metrics);
        }
        let (cell, _) = watch::channel(None);
        let span = tracing::info_span!(
            parent: None,
            "poller",
            otel.name = "poll gateway",
            otel.kind = "internal",
            cloud.region = %key.region,
            vpn_gateway_id = %key.gateway_id,
        );
        span.follows_from(tracing::Span::current());
        let poller = Arc::new(Poller {
            cell,
            urgent: AtomicUsize::new(0),
            span: span.clone(),
        });
        pollers.insert(key.clone(), poller.clone());
        let subscription = Subscription::new(poller.clone(), &self.inner.metrics);
        tokio::spawn(run_poller(self.inner.clone(), key, poller).instrument(span));
        subscription
    }
}

/// A watcher's view of one poller.
pub struct Subscription {
    rx: watch::Receiver<Cell>,
    poller: Arc<Poller>,
    urgent: bool,
    metrics: WatchMetrics,
}

impl Subscription {
    fn new(poller: Arc<Poller>, metrics: &WatchMetrics) -> Self {
        Self {
            rx: poller.cell.subscribe(),
            poller,
            urgent: false,
            metrics: metrics.clone(),
        }
    }

    /// The hub's metrics, for the stream reading this subscription.
    pub fn metrics(&self) -> &WatchMetrics {
        &self.metrics
    }

    /// Asks for the minimum interval while this watcher awaits a change.
    pub fn set_urgent(&mut self, urgent: bool) {
        if urgent != self.urgent {
            self.urgent = urgent;
            if urgent {
                self.poller.urgent.fetch_add(1, Ordering::Relaxed);
            } else {
                self.poller.urgent.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The latest observation, marking it seen.
    pub fn latest(&mut self) -> Cell {
        self.rx.borrow_and_update().clone()
    }

    /// The span of the poller this watcher reads, to link to.
    pub fn poller_span(&self) -> &tracing::Span {
        &self.poller.span
    }

    /// Waits for an observation newer than the last one seen. `false` when
    /// the poller has gone (shutdown).
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.set_urgent(false);
    }
}

/// The longest a poller waits on the cloud's word after throttling.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The wait after a transient failure: doubling up to the maximum, or the
/// cloud's retry-after when longer, honoured up to a bound so an absurd one
/// cannot freeze every watcher of the gateway.
fn after_failure(interval: Duration, retry_after: Option<Duration>, max: Duration) -> Duration {
    let backoff = interval.saturating_mul(2).min(max);
    retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER.max(max)).max(backoff))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned map is still a valid map: a panic elsewhere must not stop
    // every watch.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run_poller(hub: Arc<HubInner>, key: PollerKey, poller: Arc<Poller>) {
    let config = &hub.config;
    let mut interval = config.min_interval;
    let _active = hub.metrics.poller_started();
    let mut status_gauge = hub.metrics.gateway_status();
    loop {
        let started = Instant::now();
        hub.poll_rounds.fetch_add(1, Ordering::Relaxed);
        match poll_once(&hub, &key).await {
            Ok(snapshot) => {
                status_gauge.observe(&snapshot.gateway.status);
                let busy = snapshot.gateway.status() != crate::domain::GatewayStatus::Active;
                let changed = poller.cell.send_if_modified(|cell| {
                    let same = matches!(
                        cell.as_deref(),
                        Some(Observation::State { snapshot: old, .. }) if *old == snapshot
                    );
                    if !same {
                        tracing::info!(
                            status = %snapshot.gateway.status,
                            business_status = %snapshot.gateway.business_status,
                            "gateway state changed"
                        );
                        *cell = Some(Arc::new(Observation::State {
                            snapshot: snapshot.clone(),
                            observed_at: SystemTime::now(),
                        }));
                    }
                    !same
                });
                interval = if changed || busy || poller.urgent.load(Ordering::Relaxed) > 0 {
                    config.min_interval
                } else {
                    (interval * 2).min(config.max_interval)
                };
            }
            Err(err) if is_permanent(&err) => {
                tracing::warn!(error = %err, "gateway can no longer be observed");
                poller
                    .cell
                    .send_replace(Some(Arc::new(Observation::Gone(err))));
                interval = config.max_interval;
            }
            Err(err) => {
                tracing::debug!(error = %err, "transient poll failure; keeping the last state");
                interval = after_failure(interval, err.retry_after(), config.max_interval);
            }
        }

        let next = started + interval;
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = poller.cell.closed() => {}
            () = hub.shutdown.cancelled() => {}
        }
        if hub.shutdown.is_cancelled() {
            lock(&hub.pollers).remove(&key);
            return;
        }
        // Leave only under the map's lock, so a watcher joining right now
        // either finds this poller alive or starts a new one.
        let mut pollers = lock(&hub.pollers);
        if poller.cell.receiver_count() == 0 {
            pollers.remove(&key);
            tracing::debug!("last watcher left; poller stops");
            return;
        }
    }
}

/// Failures no later poll will mend: the gateway or server gone, access
/// refused, the account locked (`*.FinancialLocked`, `*Locked`). The rest
/// (transient, throttled, even credentials an operator may fix) keep the
/// last state and the streams open.
fn is_permanent(err: &Error) -> bool {
    err.kind().ends_watch()
}

async fn poll_once(hub: &HubInner, key: &PollerKey) -> Result<Snapshot, Error> {
    let deadline = Some(Instant::now() + hub.config.call_timeout);
    let gateway = hub
        .cloud
        .describe_vpn_gateway(&key.region, &key.gateway_id, deadline)
        .await?;
    let filter = ServerFilter::by_gateway(key.gateway_id.clone());
    let mut servers = Vec::new();
    let mut page = PageRequest::default();
    loop {
        let result = hub
            .cloud
            .describe_ssl_vpn_servers(&key.region, &filter, page, deadline)
            .await?;
        let more = result.has_more() && !result.items.is_empty();
        page = result.next_request();
        servers.extend(result.items);
        if !more {
            break;
        }
    }
    Ok(Snapshot { gateway, servers })
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
            assert!(is_permanent(&permanent), "{permanent:?}");
        }
        for passing in [
            err("VpnGateway.Configuring"),
            err("ServiceUnavailable"),
            err("Throttling.User"),
            err("InvalidAccessKeyId.NotFound"),
        ] {
            assert!(!is_permanent(&passing), "{passing:?}");
        }
    }
}
