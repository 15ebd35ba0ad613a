//! What following changes records: streams and pollers running, polled
//! gateways by status, and how long changes take to complete.

use std::{
    collections::{HashSet, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::metrics::{ActiveGuard, COMPLETION_BUCKETS, HistogramFamily, histograms};

/// The gateway statuses of `sslvpn_gateways` (anything else: `unknown`).
pub const GATEWAY_STATUSES: [&str; 6] = [
    "init",
    "provisioning",
    "active",
    "updating",
    "deleting",
    "unknown",
];

/// How many completed operations are remembered so that several watchers
/// of one change observe its completion once.
const COMPLETION_MEMORY: usize = 4096;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

/// Operations whose completion was already observed, oldest first.
#[derive(Default)]
struct Completed {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

/// `sslvpn_watch_streams_active`, `sslvpn_watch_pollers_active`,
/// `sslvpn_gateways{status}` and
/// `sslvpn_modification_completion_seconds{phase}`. Cheap to clone (clones
/// share the series); `Default` counts into families no registry renders.
#[derive(Clone)]
pub struct WatchMetrics {
    streams: Gauge,
    pollers: Gauge,
    gateways: Family<StatusLabel, Gauge>,
    completion: HistogramFamily<PhaseLabel>,
    completed: Arc<Mutex<Completed>>,
}

impl Default for WatchMetrics {
    fn default() -> Self {
        let gateways = Family::<StatusLabel, Gauge>::default();
        // Every status at zero from the start, for dashboards and rate().
        for status in GATEWAY_STATUSES {
            drop(gateways.get_or_create(&StatusLabel { status }));
        }
        Self {
            streams: Gauge::default(),
            pollers: Gauge::default(),
            gateways,
            completion: histograms(COMPLETION_BUCKETS),
            completed: Arc::default(),
        }
    }
}

impl WatchMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sslvpn_watch_streams_active",
            "WatchSslVpnServer streams open now",
            metrics.streams.clone(),
        );
        registry.register(
            "sslvpn_watch_pollers_active",
            "Shared per-gateway pollers running now (one per watched gateway)",
            metrics.pollers.clone(),
        );
        registry.register(
            "sslvpn_gateways",
            "Polled VPN gateways by their last observed status",
            metrics.gateways.clone(),
        );
        registry.register(
            "sslvpn_modification_completion_seconds",
            "Time from a change's acceptance to its observed completion, by final phase (succeeded or failed); observed by watch streams, once per change",
            metrics.completion.clone(),
        );
        metrics
    }

    /// Counts a stream open until the guard drops.
    pub fn stream_opened(&self) -> ActiveGuard {
        ActiveGuard::new(&self.streams)
    }

    /// Counts a poller running until the guard drops.
    pub fn poller_started(&self) -> ActiveGuard {
        ActiveGuard::new(&self.pollers)
    }

    /// One poller's place in `sslvpn_gateways`, empty until it observes.
    pub fn gateway_status(&self) -> GatewayStatusGauge {
        GatewayStatusGauge {
            gateways: self.gateways.clone(),
            current: None,
        }
    }

    /// Records a change's completion once, however many streams watched it.
    pub fn modification_completed(
        &self,
        operation_key: &str,
        phase: &'static str,
        elapsed: Duration,
    ) {
        {
            let mut completed = lock(&self.completed);
            if !completed.seen.insert(operation_key.to_owned()) {
                return;
            }
            completed.order.push_back(operation_key.to_owned());
            if completed.order.len() > COMPLETION_MEMORY
                && let Some(old) = completed.order.pop_front()
            {
                completed.seen.remove(&old);
            }
        }
        self.completion
            .get_or_create(&PhaseLabel { phase })
            .observe(elapsed.as_secs_f64());
    }
}

impl fmt::Debug for WatchMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchMetrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned set is still a valid set.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `status` label of a gateway status as the cloud spells it.
pub fn gateway_status_label(status: &str) -> &'static str {
    GATEWAY_STATUSES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(status))
        .copied()
        .unwrap_or("unknown")
}

/// One polled gateway's place in `sslvpn_gateways`: moves between statuses
/// as observations change, and leaves the gauge when the poller stops.
pub struct GatewayStatusGauge {
    gateways: Family<StatusLabel, Gauge>,
    current: Option<&'static str>,
}

impl GatewayStatusGauge {
    pub fn observe(&mut self, status: &str) {
        let next = gateway_status_label(status);
        if self.current == Some(next) {
            return;
        }
        if let Some(old) = self.current.replace(next) {
            self.gateways
                .get_or_create(&StatusLabel { status: old })
                .dec();
        }
        self.gateways
            .get_or_create(&StatusLabel { status: next })
            .inc();
    }
}

impl Drop for GatewayStatusGauge {
    fn drop(&mut self) {
        if let Some(old) = self.current.take() {
            self.gateways
                .get_or_create(&StatusLabel { status: old })
                .dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::render;

    /// One series' value in `registry`'s rendering.
    fn sample(registry: &Registry, series: &str) -> Option<String> {
        let text = render(registry).unwrap();
        text.lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.to_owned())
        })
    }

    #[test]
    fn completion_is_observed_once_per_operation() {
        let mut registry = Registry::default();
        let m = WatchMetrics::new(&mut registry);
        m.modification_completed("op-1", "succeeded", Duration::from_secs(3));
        m.modification_completed("op-1", "succeeded", Duration::from_secs(4));
        m.modification_completed("op-2", "failed", Duration::from_secs(4));
        let count = |phase: &str| {
            sample(
                &registry,
                &format!("sslvpn_modification_completion_seconds_count{{phase=\"{phase}\"}}"),
            )
        };
        assert_eq!(count("succeeded").as_deref(), Some("1"));
        assert_eq!(count("failed").as_deref(), Some("1"));
    }

    #[test]
    fn gateway_statuses_are_bounded() {
        assert_eq!(gateway_status_label("Active"), "active");
        assert_eq!(gateway_status_label("melting"), "unknown");
    }

    #[test]
    fn a_poller_moves_between_statuses_and_leaves_on_drop() {
        let mut registry = Registry::default();
        let m = WatchMetrics::new(&mut registry);
        let gauge = |status: &str| {
            sample(
                &registry,
                &format!("sslvpn_gateways{{status=\"{status}\"}}"),
            )
        };
        assert_eq!(gauge("active").as_deref(), Some("0"), "seeded");
        let mut poller = m.gateway_status();
        poller.observe("Active");
        poller.observe("active");
        assert_eq!(gauge("active").as_deref(), Some("1"));
        poller.observe("Updating");
        assert_eq!(gauge("active").as_deref(), Some("0"));
        assert_eq!(gauge("updating").as_deref(), Some("1"));
        drop(poller);
        assert_eq!(gauge("updating").as_deref(), Some("0"));
    }

    #[test]
    fn streams_and_pollers_count_while_their_guards_live() {
        let mut registry = Registry::default();
        let m = WatchMetrics::new(&mut registry);
        let stream = m.stream_opened();
        let poller = m.poller_started();
        assert_eq!(
            sample(&registry, "sslvpn_watch_streams_active").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&registry, "sslvpn_watch_pollers_active").as_deref(),
            Some("1")
        );
        drop((stream, poller));
        assert_eq!(
            sample(&registry, "sslvpn_watch_streams_active").as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(&registry, "sslvpn_watch_pollers_active").as_deref(),
            Some("0")
        );
    }
}
