//! The gateway's metrics, rendered in the Prometheus text format (0.0.4) on
//! the admin listener's `/metrics`.
//!
//! A deliberately small registry of our own rather than a metrics crate:
//! the gateway needs counters, gauges and fixed-bucket histograms with a
//! handful of label sets, and this file gives exactly that with no
//! dependency, no second text format to negotiate, and names and label sets
//! that can be read in one place. Every label takes its values from a
//! closed set (gRPC methods and codes, cloud actions and error classes,
//! gateway statuses, result names) or one bounded by configuration (the
//! credential provider's name): never an id, so the number of series is
//! fixed whatever the traffic.
//!
//! The registry is process-wide, like the Prometheus client libraries'
//! default registry, so the cloud client, the watch hub and the service
//! record into it without threading a handle through every constructor.
//! Several gateways in one process (tests) add up into the same series.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    fmt::Write as _,
    sync::{Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use crate::cloud::CloudErrorClass;

/// Latency buckets for RPCs and upstream calls, in seconds: from a fast
/// validation error to a long watch stream.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0,
];

/// Upstream calls are bounded by the retry budget (tens of seconds).
const UPSTREAM_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A change takes seconds to minutes in the cloud (milliseconds on the
/// emulator).
const COMPLETION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// How many completed operations are remembered so that several watchers
/// of one change observe its completion once.
const COMPLETION_MEMORY: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned series map is still a valid map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Labels<const N: usize> = [String; N];

fn owned<const N: usize>(labels: [&str; N]) -> Labels<N> {
    labels.map(str::to_owned)
}

/// Writes `{a="x",b="y"}` (nothing for no labels), escaping values as the
/// text format requires.
fn write_labels(out: &mut String, names: &[&str], values: &[String], extra: Option<(&str, &str)>) {
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .chain(extra)
        .collect();
    if pairs.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Formats a sample value; Prometheus reads `+Inf`, integers and decimals.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// One value per label set: what counters and gauges share.
struct Family<V, const N: usize> {
    name: &'static str,
    help: &'static str,
    /// `counter` or `gauge`, for the `# TYPE` line.
    kind: &'static str,
    labels: [&'static str; N],
    series: Mutex<BTreeMap<Labels<N>, V>>,
}

impl<V: Copy + Default + std::fmt::Display, const N: usize> Family<V, N> {
    fn new(
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: [&'static str; N],
    ) -> Self {
        let series = Mutex::new(BTreeMap::new());
        if N == 0 {
            // An unlabelled series exists from the start, at zero.
            lock(&series).insert(owned([""; N]), V::default());
        }
        Self {
            name,
            help,
            kind,
            labels,
            series,
        }
    }

    /// Makes series visible (at zero) before their first event, so
    /// dashboards and `rate()` see them from the start.
    fn seed(&self, values: &[[&str; N]]) {
        let mut series = lock(&self.series);
        for v in values {
            series.entry(owned(*v)).or_default();
        }
    }

    fn update(&self, labels: [&str; N], f: impl FnOnce(&mut V)) {
        f(lock(&self.series).entry(owned(labels)).or_default());
    }

    fn get(&self, labels: [&str; N]) -> V {
        lock(&self.series)
            .get(&owned(labels))
            .copied()
            .unwrap_or_default()
    }

    fn render(&self, out: &mut String) {
        write_header(out, self.name, self.help, self.kind);
        for (values, v) in lock(&self.series).iter() {
            out.push_str(self.name);
            write_labels(out, &self.labels, values, None);
            let _ = writeln!(out, " {v}");
        }
    }
}

/// A monotonically increasing count per label set.
pub struct Counter<const N: usize>(Family<u64, N>);

impl<const N: usize> Counter<N> {
    fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self(Family::new(name, help, "counter", labels))
    }

    fn seed(self, values: &[[&str; N]]) -> Self {
        self.0.seed(values);
        self
    }

    pub fn inc(&self, labels: [&str; N]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: [&str; N], n: u64) {
        self.0.update(labels, |v| *v += n);
    }

    /// The current value of one series (0 when it never moved).
    pub fn get(&self, labels: [&str; N]) -> u64 {
        self.0.get(labels)
    }

    fn render(&self, out: &mut String) {
        self.0.render(out);
    }
}

/// A value that goes up and down per label set.
pub struct Gauge<const N: usize>(Family<i64, N>);

impl<const N: usize> Gauge<N> {
    fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self(Family::new(name, help, "gauge", labels))
    }

    fn seed(self, values: &[[&str; N]]) -> Self {
        self.0.seed(values);
        self
    }

    pub fn add(&self, labels: [&str; N], delta: i64) {
        self.0.update(labels, |v| *v += delta);
    }

    pub fn set(&self, labels: [&str; N], value: i64) {
        self.0.update(labels, |v| *v = value);
    }

    pub fn get(&self, labels: [&str; N]) -> i64 {
        self.0.get(labels)
    }

    fn render(&self, out: &mut String) {
        self.0.render(out);
    }
}

#[derive(Clone, Debug)]
struct HistogramData {
    /// Per bucket (not cumulative); the last one is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Observations in fixed buckets per label set.
pub struct Histogram<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    buckets: &'static [f64],
    series: Mutex<BTreeMap<Labels<N>, HistogramData>>,
}

impl<const N: usize> Histogram<N> {
    fn new(
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            labels,
            buckets,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn observe(&self, labels: [&str; N], value: f64) {
        let index = self
            .buckets
            .iter()
            .position(|le| value <= *le)
            .unwrap_or(self.buckets.len());
        let mut series = lock(&self.series);
        let data = series
            .entry(owned(labels))
            .or_insert_with(|| HistogramData {
                counts: vec![0; self.buckets.len() + 1],
                sum: 0.0,
                count: 0,
            });
        data.counts[index] += 1;
        data.sum += value;
        data.count += 1;
    }

    pub fn observe_duration(&self, labels: [&str; N], d: Duration) {
        self.observe(labels, d.as_secs_f64());
    }

    /// Observations so far in one series.
    pub fn count(&self, labels: [&str; N]) -> u64 {
        lock(&self.series)
            .get(&owned(labels))
            .map_or(0, |d| d.count)
    }

    fn render(&self, out: &mut String) {
        write_header(out, self.name, self.help, "histogram");
        let bucket = format!("{}_bucket", self.name);
        for (values, data) in lock(&self.series).iter() {
            let mut cumulative = 0;
            for (i, n) in data.counts.iter().enumerate() {
                cumulative += n;
                let le = self.buckets.get(i).copied().unwrap_or(f64::INFINITY);
                out.push_str(&bucket);
                write_labels(out, &self.labels, values, Some(("le", &number(le))));
                let _ = writeln!(out, " {cumulative}");
            }
            out.push_str(self.name);
            out.push_str("_sum");
            write_labels(out, &self.labels, values, None);
            let _ = writeln!(out, " {}", number(data.sum));
            out.push_str(self.name);
            out.push_str("_count");
            write_labels(out, &self.labels, values, None);
            let _ = writeln!(out, " {}", data.count);
        }
    }
}

/// Every metric the gateway exports. The README's Observability section
/// lists the same names with their meanings.
pub struct Metrics {
    pub build_info: Gauge<1>,
    pub rpc_requests: Counter<2>,
    pub rpc_duration: Histogram<1>,
    pub rpc_in_flight: Gauge<1>,
    pub upstream_requests: Counter<2>,
    pub upstream_duration: Histogram<1>,
    pub upstream_retries: Counter<1>,
    pub watch_streams: Gauge<0>,
    pub watch_pollers: Gauge<0>,
    pub gateways: Gauge<1>,
    pub modifications: Counter<1>,
    pub modification_completion: Histogram<1>,
    pub credential_refresh_failures: Counter<1>,
    /// Operations whose completion was already observed.
    completed: Mutex<(HashSet<String>, VecDeque<String>)>,
}

/// The gateway statuses of `sslvpn_gateways` (anything else: `unknown`).
pub const GATEWAY_STATUSES: [&str; 6] = [
    "init",
    "provisioning",
    "active",
    "updating",
    "deleting",
    "unknown",
];

/// The results of `sslvpn_modifications_total`.
pub const MODIFICATION_RESULTS: [&str; 8] = [
    "accepted",
    "applied",
    "unchanged",
    "invalid",
    "not_found",
    "rejected",
    "failed",
    "cancelled",
];

impl Metrics {
    fn new() -> Self {
        let build_info = Gauge::new(
            "sslvpn_build_info",
            "Always 1; the version label names the running build.",
            ["version"],
        );
        build_info.set([env!("CARGO_PKG_VERSION")], 1);
        Self {
            build_info,
            rpc_requests: Counter::new(
                "sslvpn_rpc_requests_total",
                "gRPC calls finished, by fully-qualified method and status code.",
                ["method", "code"],
            ),
            rpc_duration: Histogram::new(
                "sslvpn_rpc_duration_seconds",
                "Time from a call's arrival to its last response message (a whole stream for WatchSslVpnServer).",
                ["method"],
                LATENCY_BUCKETS,
            ),
            rpc_in_flight: Gauge::new(
                "sslvpn_rpc_in_flight",
                "gRPC calls (and open streams) being handled now, by method.",
                ["method"],
            ),
            upstream_requests: Counter::new(
                "sslvpn_upstream_requests_total",
                "Calls to the VPC API (all attempts of one call count once), by action and outcome (success or the error class).",
                ["action", "outcome"],
            ),
            upstream_duration: Histogram::new(
                "sslvpn_upstream_request_duration_seconds",
                "Duration of calls to the VPC API, retries and their back-off included, by action.",
                ["action"],
                UPSTREAM_BUCKETS,
            ),
            upstream_retries: Counter::new(
                "sslvpn_upstream_retries_total",
                "Extra attempts made after a transient VPC API failure, by action.",
                ["action"],
            ),
            watch_streams: Gauge::new(
                "sslvpn_watch_streams_active",
                "WatchSslVpnServer streams open now.",
                [],
            ),
            watch_pollers: Gauge::new(
                "sslvpn_watch_pollers_active",
                "Shared per-gateway pollers running now (one per watched gateway).",
                [],
            ),
            gateways: Gauge::new(
                "sslvpn_gateways",
                "Polled VPN gateways by their last observed status.",
                ["status"],
            )
            .seed(&GATEWAY_STATUSES.map(|s| [s])),
            modifications: Counter::new(
                "sslvpn_modifications_total",
                "ModifySslVpnServer calls by result: accepted (an asynchronous change was sent), applied (a synchronous, name-only change), unchanged (nothing to send), invalid, not_found, rejected (busy, locked or a lost race), failed (cloud or gateway failure), cancelled (the caller left).",
                ["result"],
            )
            .seed(&MODIFICATION_RESULTS.map(|s| [s])),
            modification_completion: Histogram::new(
                "sslvpn_modification_completion_seconds",
                "Time from a change's acceptance to its observed completion, by final phase (succeeded or failed); observed by watch streams, once per change.",
                ["phase"],
                COMPLETION_BUCKETS,
            ),
            credential_refresh_failures: Counter::new(
                "sslvpn_credential_refresh_failures_total",
                "Failures to obtain or refresh the cloud credentials, by credential provider.",
                ["provider"],
            ),
            completed: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Records a change's completion once, however many streams watched it.
    pub fn modification_completed(&self, operation_key: &str, phase: &str, elapsed: Duration) {
        {
            let mut guard = lock(&self.completed);
            let (seen, order) = &mut *guard;
            if !seen.insert(operation_key.to_owned()) {
                return;
            }
            order.push_back(operation_key.to_owned());
            if order.len() > COMPLETION_MEMORY
                && let Some(old) = order.pop_front()
            {
                seen.remove(&old);
            }
        }
        self.modification_completion
            .observe_duration([phase], elapsed);
    }

    /// Records one finished upstream call.
    pub fn upstream_call(
        &self,
        action: &str,
        outcome: Result<(), CloudErrorClass>,
        elapsed: Duration,
    ) {
        let outcome = match outcome {
            Ok(()) => "success",
            Err(class) => class.metric_label(),
        };
        self.upstream_requests.inc([action, outcome]);
        self.upstream_duration.observe_duration([action], elapsed);
    }

    /// The whole registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.build_info.render(&mut out);
        self.rpc_requests.render(&mut out);
        self.rpc_duration.render(&mut out);
        self.rpc_in_flight.render(&mut out);
        self.upstream_requests.render(&mut out);
        self.upstream_duration.render(&mut out);
        self.upstream_retries.render(&mut out);
        self.watch_streams.render(&mut out);
        self.watch_pollers.render(&mut out);
        self.gateways.render(&mut out);
        self.modifications.render(&mut out);
        self.modification_completion.render(&mut out);
        self.credential_refresh_failures.render(&mut out);
        out
    }
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The `status` label of a gateway status as the cloud spells it.
pub fn gateway_status_label(status: &str) -> &'static str {
    GATEWAY_STATUSES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(status))
        .copied()
        .unwrap_or("unknown")
}

/// Counts something as "active" while it lives: +1 now, -1 on drop, so no
/// exit path (return, panic, cancellation) can leak a gauge.
pub struct ActiveGuard {
    gauge: &'static Gauge<0>,
}

impl ActiveGuard {
    pub fn new(gauge: &'static Gauge<0>) -> Self {
        gauge.add([], 1);
        Self { gauge }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.gauge.add([], -1);
    }
}

/// One polled gateway's place in `sslvpn_gateways`: moves between statuses
/// as observations change, and leaves the gauge when the poller stops.
#[derive(Default)]
pub struct GatewayStatusGauge {
    current: Option<&'static str>,
}

impl GatewayStatusGauge {
    pub fn observe(&mut self, status: &str) {
        let next = gateway_status_label(status);
        if self.current == Some(next) {
            return;
        }
        let gauge = &global().gateways;
        if let Some(old) = self.current.replace(next) {
            gauge.add([old], -1);
        }
        gauge.add([next], 1);
    }
}

impl Drop for GatewayStatusGauge {
    fn drop(&mut self) {
        if let Some(old) = self.current.take() {
            global().gateways.add([old], -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_escaped_labels() {
        let c = Counter::new("x_total", "Things.", ["a", "b"]);
        c.inc(["1", "say \"hi\"\\\n"]);
        c.add(["1", "say \"hi\"\\\n"], 2);
        let mut out = String::new();
        c.render(&mut out);
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"say \\\"hi\\\"\\\\\\n\"} 3\n"
        );
    }

    #[test]
    fn unlabelled_series_exist_at_zero() {
        let c = Counter::new("y_total", "Y.", []);
        let g = Gauge::new("g", "G.", []);
        let mut out = String::new();
        c.render(&mut out);
        g.render(&mut out);
        assert!(out.contains("\ny_total 0\n"), "{out}");
        assert!(out.contains("\ng 0\n"), "{out}");
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let h = Histogram::new("d_seconds", "D.", ["m"], &[0.1, 1.0]);
        h.observe(["a"], 0.25);
        h.observe(["a"], 0.5);
        h.observe(["a"], 0.5);
        h.observe(["a"], 7.0);
        let mut out = String::new();
        h.render(&mut out);
        let expected = "# HELP d_seconds D.\n# TYPE d_seconds histogram\n\
            d_seconds_bucket{m=\"a\",le=\"0.1\"} 0\n\
            d_seconds_bucket{m=\"a\",le=\"1\"} 3\n\
            d_seconds_bucket{m=\"a\",le=\"+Inf\"} 4\n\
            d_seconds_sum{m=\"a\"} 8.25\n\
            d_seconds_count{m=\"a\"} 4\n";
        assert_eq!(out, expected);
        assert_eq!(h.count(["a"]), 4);
    }

    #[test]
    fn completion_is_observed_once_per_operation() {
        let m = Metrics::new();
        m.modification_completed("op-1", "succeeded", Duration::from_secs(3));
        m.modification_completed("op-1", "succeeded", Duration::from_secs(4));
        m.modification_completed("op-2", "failed", Duration::from_secs(4));
        assert_eq!(m.modification_completion.count(["succeeded"]), 1);
        assert_eq!(m.modification_completion.count(["failed"]), 1);
    }

    #[test]
    fn gateway_statuses_are_bounded() {
        assert_eq!(gateway_status_label("Active"), "active");
        assert_eq!(gateway_status_label("melting"), "unknown");
    }

    #[test]
    fn every_family_has_help_and_type() {
        let out = Metrics::new().render();
        let types = out.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = out.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, 13);
        assert_eq!(helps, 13);
        assert!(out.contains("sslvpn_gateways{status=\"active\"} 0"));
        assert!(out.contains(&format!(
            "sslvpn_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
}
