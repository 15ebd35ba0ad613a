//! What the client records of its calls: the upstream families, handed in
//! by whoever builds the client (`VpcClient::with_metrics`).

use std::{fmt, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use crate::{
    cloud::credentials::CredentialMetrics,
    error::Kind,
    metrics::{HistogramFamily, UPSTREAM_BUCKETS, histograms},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionOutcome {
    action: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

/// `sslvpn_upstream_requests_total{action,outcome}`,
/// `sslvpn_upstream_request_duration_seconds{action}`,
/// `sslvpn_upstream_retries_total{action}` and the credential failures.
/// Cheap to clone (clones share the series); `Default` counts into
/// families no registry renders.
#[derive(Clone)]
pub struct UpstreamMetrics {
    requests: Family<ActionOutcome, Counter>,
    duration: HistogramFamily<ActionLabel>,
    retries: Family<ActionLabel, Counter>,
    credentials: CredentialMetrics,
}

impl Default for UpstreamMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: histograms(UPSTREAM_BUCKETS),
            retries: Family::default(),
            credentials: CredentialMetrics::default(),
        }
    }
}

impl UpstreamMetrics {
    /// Registers the upstream families and the credential failures.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            credentials: CredentialMetrics::new(registry),
            ..Self::default()
        };
        registry.register(
            "sslvpn_upstream_requests",
            "Calls to the VPC API (all attempts of one call count once), by action and outcome (success or the error class)",
            metrics.requests.clone(),
        );
        registry.register(
            "sslvpn_upstream_request_duration_seconds",
            "Duration of calls to the VPC API, retries and their back-off included, by action",
            metrics.duration.clone(),
        );
        registry.register(
            "sslvpn_upstream_retries",
            "Extra attempts made after a transient VPC API failure, by action",
            metrics.retries.clone(),
        );
        metrics
    }

    /// The credential failures, for the providers to count theirs into.
    pub fn credentials(&self) -> &CredentialMetrics {
        &self.credentials
    }

    /// One finished call, all its attempts included.
    pub(super) fn call_finished(
        &self,
        action: &'static str,
        outcome: Result<(), Kind>,
        elapsed: Duration,
    ) {
        let outcome = match outcome {
            Ok(()) => "success",
            Err(class) => class.metric_label(),
        };
        self.requests
            .get_or_create(&ActionOutcome { action, outcome })
            .inc();
        self.duration
            .get_or_create(&ActionLabel { action })
            .observe(elapsed.as_secs_f64());
    }

    /// One more attempt after a transient failure.
    pub(super) fn retried(&self, action: &'static str) {
        self.retries.get_or_create(&ActionLabel { action }).inc();
    }
}

impl fmt::Debug for UpstreamMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::render;

    #[test]
    fn upstream_metrics_keep_their_names_and_labels() {
        let mut registry = Registry::default();
        let m = UpstreamMetrics::new(&mut registry);
        m.call_finished("DescribeVpnGateway", Ok(()), Duration::from_millis(3));
        m.call_finished(
            "ModifySslVpnServer",
            Err(Kind::Busy),
            Duration::from_millis(3),
        );
        m.retried("ModifySslVpnServer");
        m.credentials().refresh_failed("default/ecs_ram_role");
        let text = render(&registry).unwrap();
        for line in [
            "# TYPE sslvpn_upstream_requests_total counter",
            "sslvpn_upstream_requests_total{action=\"DescribeVpnGateway\",outcome=\"success\"} 1",
            "sslvpn_upstream_requests_total{action=\"ModifySslVpnServer\",outcome=\"gateway_busy\"} 1",
            "# TYPE sslvpn_upstream_request_duration_seconds histogram",
            "sslvpn_upstream_request_duration_seconds_bucket{action=\"ModifySslVpnServer\",le=\"0.005\"} 1",
            "sslvpn_upstream_request_duration_seconds_bucket{action=\"ModifySslVpnServer\",le=\"60\"} 1",
            "sslvpn_upstream_request_duration_seconds_count{action=\"ModifySslVpnServer\"} 1",
            "# TYPE sslvpn_upstream_retries_total counter",
            "sslvpn_upstream_retries_total{action=\"ModifySslVpnServer\"} 1",
            "# TYPE sslvpn_credential_refresh_failures_total counter",
            "sslvpn_credential_refresh_failures_total{provider=\"default/ecs_ram_role\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn unregistered_metrics_still_count() {
        let m = UpstreamMetrics::default();
        m.call_finished("DescribeVpnGateway", Ok(()), Duration::ZERO);
        m.retried("DescribeVpnGateway");
    }
}
