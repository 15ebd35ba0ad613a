//! What the features' metrics share: the registry a gateway starts with,
//! its rendering for the admin listener's `/metrics`, the bucket bounds, and
//! a guard for "active" gauges.
//!
//! The metrics themselves are `prometheus-client`'s, and each feature
//! declares its own families next to its code: `server::rpc::RpcMetrics`,
//! `cloud::UpstreamMetrics` (with `cloud::credentials::CredentialMetrics`),
//! `watch::WatchMetrics`, `access::audit::AuditMetrics`. `server::start`
//! creates one [`Registry`] per gateway, has every feature register into
//! it, and hands each feature its handles: there is no process-wide
//! registry, so two gateways in one process (tests) keep apart. A feature
//! built without a registry (unit tests, the load driver) takes its
//! metrics' `Default`: they count, and nobody reads them.
//!
//! The library encodes; nothing here writes the format by hand. The output
//! is the Prometheus text format 0.0.4 (`CONTENT_TYPE`), the one the
//! gateway has always served: same family names, types, labels and `le`
//! spellings, so dashboards and alert rules read it unchanged. Two naming
//! rules of the library to mind when adding a family: a counter is
//! registered without its `_total` (the encoder appends it; debug builds
//! panic on a registered `_total`), and the help text without its final
//! full stop (the library adds one).
//!
//! Every label takes its values from a closed set (gRPC methods and codes,
//! cloud actions and error classes, gateway statuses, result names) or one
//! bounded by configuration (the credential provider's name): never an id,
//! so the number of series is fixed whatever the traffic. A family shows in
//! `/metrics` once it has a series; those whose values are known up front
//! are seeded at zero so `rate()` sees them from the start.

use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::Histogram,
    },
};

pub use prometheus_client::registry::Registry;

/// Latency buckets for RPCs, in seconds: from a fast validation error to a
/// long watch stream.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0,
];

/// Upstream calls are bounded by the retry budget (tens of seconds).
pub const UPSTREAM_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A change takes seconds to minutes in the cloud (milliseconds on the
/// emulator).
pub const COMPLETION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The `Content-Type` of what [`render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Builds a family's histograms with fixed bucket bounds.
#[derive(Clone, Copy, Debug)]
pub struct Buckets(pub &'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A family of histograms with one set of bucket bounds.
pub type HistogramFamily<S> = Family<S, Histogram, Buckets>;

/// An empty histogram family with `buckets`.
pub fn histograms<S: Clone + std::hash::Hash + Eq>(buckets: &'static [f64]) -> HistogramFamily<S> {
    Family::new_with_constructor(Buckets(buckets))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// A gateway's registry before the features register: holds
/// `sslvpn_build_info`, the one family that belongs to no feature.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    let build_info = Family::<VersionLabel, Gauge>::default();
    build_info
        .get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    registry.register(
        "sslvpn_build_info",
        "Always 1; the version label names the running build",
        build_info,
    );
    registry
}

/// The registry in the Prometheus text format (0.0.4), for `/metrics`.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

/// Counts something as "active" while it lives: +1 now, -1 on drop, so no
/// exit path (return, panic, cancellation) can leak a gauge.
#[derive(Debug)]
pub struct ActiveGuard {
    gauge: Gauge,
}

impl ActiveGuard {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self {
            gauge: gauge.clone(),
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct TwoLabels {
        a: &'static str,
        b: String,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct OneLabel {
        m: &'static str,
    }

    #[test]
    fn the_build_info_is_the_registrys_first_family() {
        let out = render(&registry()).unwrap();
        assert_eq!(
            out,
            format!(
                "# HELP sslvpn_build_info Always 1; the version label names the running build.\n\
                 # TYPE sslvpn_build_info gauge\n\
                 sslvpn_build_info{{version=\"{}\"}} 1\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn counters_keep_their_total_and_escape_labels() {
        let mut registry = Registry::default();
        let family = Family::<TwoLabels, Counter>::default();
        registry.register("x", "Things", family.clone());
        let labels = TwoLabels {
            a: "1",
            b: "say \"hi\"\\\n".into(),
        };
        family.get_or_create(&labels).inc();
        family.get_or_create(&labels).inc_by(2);
        assert_eq!(
            render(&registry).unwrap(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"say \\\"hi\\\"\\\\\\n\"} 3\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_go_style_bounds() {
        let mut registry = Registry::default();
        let family = histograms::<OneLabel>(&[0.1, 1.0, 3600.0]);
        registry.register("d_seconds", "D", family.clone());
        for v in [0.25, 0.5, 0.5, 7.0] {
            family.get_or_create(&OneLabel { m: "a" }).observe(v);
        }
        let expected = "# HELP d_seconds D.\n# TYPE d_seconds histogram\n\
            d_seconds_bucket{m=\"a\",le=\"0.1\"} 0\n\
            d_seconds_bucket{m=\"a\",le=\"1\"} 3\n\
            d_seconds_bucket{m=\"a\",le=\"3600\"} 4\n\
            d_seconds_bucket{m=\"a\",le=\"+Inf\"} 4\n\
            d_seconds_sum{m=\"a\"} 8.25\n\
            d_seconds_count{m=\"a\"} 4\n";
        assert_eq!(render(&registry).unwrap(), expected);
    }

    #[test]
    fn active_guards_give_back_what_they_took() {
        let gauge = Gauge::default();
        let first = ActiveGuard::new(&gauge);
        {
            let _second = ActiveGuard::new(&gauge);
            assert_eq!(gauge.get(), 2);
        }
        assert_eq!(gauge.get(), 1);
        drop(first);
        assert_eq!(gauge.get(), 0);
    }
}
