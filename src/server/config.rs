//! The gateway's configuration: every flag has an environment-variable twin,
//! and both are parsed once, at start-up, into one typed [`ServeConfig`].
//!
//! Tests build a `ServeConfig` directly (`ServeConfig::default()` plus the
//! fields they care about), so nothing below the CLI reads the environment.

use std::{collections::HashMap, fmt, net::SocketAddr, time::Duration};

use clap::{Args, ValueEnum};

use crate::{
    access::{AccessArgs, AccessConfig},
    cloud::{
        BudgetConfig, CloudConfig, Credentials, Quota, RetryPolicy, SignatureVersion,
        budget::parse_api_quota,
    },
    service::WatchLimits,
    watch::PollConfig,
};

/// `sslvpn-gateway serve` flags.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address of the gRPC listener.
    #[arg(long, env = "SSLVPN_LISTEN", default_value_t = ServeConfig::default().listen)]
    pub listen: SocketAddr,

    /// Longest time a unary call may take before it is cancelled (streams are
    /// bounded by their own timeout). Accepts `30s`, `1m`, ...
    #[arg(long, env = "SSLVPN_REQUEST_TIMEOUT", default_value_t = human(ServeConfig::default().request_timeout))]
    pub request_timeout: humantime::Duration,

    /// Largest request message accepted, in bytes.
    #[arg(long, env = "SSLVPN_MAX_MESSAGE_BYTES", default_value_t = ServeConfig::default().max_message_bytes)]
    pub max_message_bytes: usize,

    /// Most requests handled at once per connection.
    #[arg(long, env = "SSLVPN_CONCURRENCY_PER_CONNECTION", default_value_t = ServeConfig::default().concurrency_per_connection)]
    pub concurrency_per_connection: usize,

    /// Most requests handled at once across all connections; beyond it calls
    /// wait their turn.
    #[arg(long, env = "SSLVPN_CONCURRENCY_LIMIT", default_value_t = ServeConfig::default().concurrency_limit)]
    pub concurrency_limit: usize,

    /// On SIGINT/SIGTERM, how long in-flight calls may take to finish before
    /// the process exits anyway.
    #[arg(long, env = "SSLVPN_SHUTDOWN_GRACE", default_value_t = human(ServeConfig::default().shutdown_grace))]
    pub shutdown_grace: humantime::Duration,

    /// Start the embedded VPC API emulator on a loopback port and send every
    /// call there, with its demo credentials: no cloud account needed.
    #[arg(long, env = "SSLVPN_EMULATOR", conflicts_with_all = ["endpoint", "region_endpoint"])]
    pub emulator: bool,

    /// Send every region's calls to this URL (a proxy, an emulator) instead of
    /// vpc.<region>.aliyuncs.com. Plain http is accepted here only.
    #[arg(long, env = "SSLVPN_ENDPOINT")]
    pub endpoint: Option<String>,

    /// A region's own endpoint, as REGION=URL; repeat for several regions.
    #[arg(long = "region-endpoint", env = "SSLVPN_REGION_ENDPOINTS", value_delimiter = ',', value_parser = parse_region_endpoint)]
    pub region_endpoint: Vec<(String, String)>,

    /// Signature algorithm for upstream calls: v3 (ACS3-HMAC-SHA256, the
    /// SDKs' default) or v1 (legacy HMAC-SHA1).
    #[arg(
        long,
        env = "SSLVPN_SIGNATURE_VERSION",
        value_enum,
        default_value_t = CloudConfig::default().signature_version.into()
    )]
    pub signature_version: SignatureArg,

    /// Upstream connect timeout.
    #[arg(long, env = "SSLVPN_UPSTREAM_CONNECT_TIMEOUT", default_value_t = human(CloudConfig::default().connect_timeout))]
    pub upstream_connect_timeout: humantime::Duration,

    /// Upstream read timeout.
    #[arg(long, env = "SSLVPN_UPSTREAM_READ_TIMEOUT", default_value_t = human(CloudConfig::default().read_timeout))]
    pub upstream_read_timeout: humantime::Duration,

    /// Most attempts per upstream call, the first included (transient
    /// failures only; a modify keeps its ClientToken on every attempt).
    #[arg(long, env = "SSLVPN_UPSTREAM_MAX_ATTEMPTS", default_value_t = RetryPolicy::default().max_attempts)]
    pub upstream_max_attempts: u32,

    /// The account's quota for one API in each region, as API=COUNT/PERIOD
    /// (`DescribeVpnGateway=600/60s`); repeat for several APIs. Unset APIs
    /// keep the defaults (README, "The API budget").
    #[arg(long = "upstream-quota", env = "SSLVPN_UPSTREAM_QUOTAS", value_delimiter = ',', value_parser = parse_api_quota)]
    pub upstream_quota: Vec<(String, Quota)>,

    /// Poll interval while a gateway is busy or a watcher awaits a change.
    #[arg(long, env = "SSLVPN_POLL_MIN_INTERVAL", default_value_t = human(PollConfig::default().min_interval))]
    pub poll_min_interval: humantime::Duration,

    /// Poll interval an idle gateway backs off to.
    #[arg(long, env = "SSLVPN_POLL_MAX_INTERVAL", default_value_t = human(PollConfig::default().max_interval))]
    pub poll_max_interval: humantime::Duration,

    /// Watch timeout when the caller sets none.
    #[arg(long, env = "SSLVPN_WATCH_DEFAULT_TIMEOUT", default_value_t = human(WatchLimits::default().default_timeout))]
    pub watch_default_timeout: humantime::Duration,

    /// Longest watch timeout a caller may ask for.
    #[arg(long, env = "SSLVPN_WATCH_MAX_TIMEOUT", default_value_t = human(WatchLimits::default().max_timeout))]
    pub watch_max_timeout: humantime::Duration,

    /// Address of the admin HTTP listener (/metrics, /healthz, /readyz);
    /// `off` disables it.
    #[arg(long, env = "SSLVPN_ADMIN_LISTEN", default_value = "127.0.0.1:9464", value_parser = parse_admin_listen)]
    pub admin_listen: AdminListen,

    /// TLS, authentication, policy and limits (see `access`).
    #[command(flatten)]
    pub security: AccessArgs,
}

/// A default of the configuration, as a flag's default (`30s`, `10m`...):
/// each default is named once, in the `Default` impl of its configuration.
fn human(d: Duration) -> humantime::Duration {
    d.into()
}

/// `--admin-listen`: an address, or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminListen(pub Option<SocketAddr>);

fn parse_admin_listen(s: &str) -> Result<AdminListen, String> {
    match s.trim() {
        "off" | "none" | "" => Ok(AdminListen(None)),
        addr => addr
            .parse()
            .map(|a| AdminListen(Some(a)))
            .map_err(|e| format!("{addr:?}: {e} (expected HOST:PORT or off)")),
    }
}

/// `--signature-version` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignatureArg {
    V3,
    V1,
}

impl From<SignatureVersion> for SignatureArg {
    fn from(v: SignatureVersion) -> Self {
        match v {
            SignatureVersion::V3 => SignatureArg::V3,
            SignatureVersion::V1 => SignatureArg::V1,
        }
    }
}

fn parse_region_endpoint(s: &str) -> Result<(String, String), String> {
    let (region, url) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected REGION=URL"))?;
    crate::validate::region_id(region.trim()).map_err(|v| v.description)?;
    Ok((region.trim().to_owned(), url.trim().to_owned()))
}

/// Where the gateway's cloud credentials come from.
#[derive(Clone)]
pub enum CredentialSource {
    /// The official chain: environment, CLI profile, credentials file, ECS
    /// RAM role.
    Chain,
    /// Fixed credentials (the emulator's demo pair, tests).
    Static(Credentials),
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Chain => f.write_str("Chain"),
            CredentialSource::Static(_) => f.write_str("Static(***)"),
        }
    }
}

/// The gateway's configuration, parsed once.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub request_timeout: Duration,
    pub max_message_bytes: usize,
    pub concurrency_per_connection: usize,
    pub concurrency_limit: usize,
    pub shutdown_grace: Duration,
    /// How to reach the cloud.
    pub cloud: CloudConfig,
    pub credentials: CredentialSource,
    pub poll: PollConfig,
    pub watch: WatchLimits,
    /// The admin HTTP listener (metrics, health, readiness); `None`: none.
    pub admin_listen: Option<SocketAddr>,
    pub security: AccessConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout: Duration::from_secs(30),
            max_message_bytes: 64 * 1024,
            concurrency_per_connection: 64,
            concurrency_limit: 512,
            shutdown_grace: Duration::from_secs(10),
            cloud: CloudConfig::default(),
            credentials: CredentialSource::Chain,
            poll: PollConfig::default(),
            watch: WatchLimits::default(),
            // Off unless asked for, so tests and embedders bind nothing
            // extra; the CLI's default turns it on.
            admin_listen: None,
            security: AccessConfig::default(),
        }
    }
}

impl From<ServeArgs> for ServeConfig {
    fn from(a: ServeArgs) -> Self {
        Self {
            listen: a.listen,
            request_timeout: a.request_timeout.into(),
            max_message_bytes: a.max_message_bytes,
            concurrency_per_connection: a.concurrency_per_connection,
            concurrency_limit: a.concurrency_limit,
            shutdown_grace: a.shutdown_grace.into(),
            cloud: CloudConfig {
                signature_version: match a.signature_version {
                    SignatureArg::V3 => SignatureVersion::V3,
                    SignatureArg::V1 => SignatureVersion::V1,
                },
                endpoint: a.endpoint,
                region_endpoints: a.region_endpoint.into_iter().collect::<HashMap<_, _>>(),
                connect_timeout: a.upstream_connect_timeout.into(),
                read_timeout: a.upstream_read_timeout.into(),
                retry: RetryPolicy {
                    max_attempts: a.upstream_max_attempts.max(1),
                    ..RetryPolicy::default()
                },
                budget: BudgetConfig::default().with_overrides(a.upstream_quota),
                ..CloudConfig::default()
            },
            credentials: CredentialSource::Chain,
            poll: PollConfig {
                min_interval: a.poll_min_interval.into(),
                max_interval: Duration::from(a.poll_max_interval).max(a.poll_min_interval.into()),
                ..PollConfig::default()
            },
            watch: WatchLimits {
                default_timeout: Duration::from(a.watch_default_timeout)
                    .min(a.watch_max_timeout.into()),
                max_timeout: a.watch_max_timeout.into(),
            },
            admin_listen: a.admin_listen.0,
            security: a.security.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_flags_defaults_are_the_configurations_defaults() {
        let parsed = ServeConfig::from(Cli::parse_from(["serve"]).serve);
        let default = ServeConfig::default();
        assert_eq!(parsed.listen, default.listen);
        assert_eq!(parsed.request_timeout, default.request_timeout);
        assert_eq!(parsed.max_message_bytes, default.max_message_bytes);
        assert_eq!(parsed.shutdown_grace, default.shutdown_grace);
        assert_eq!(parsed.cloud.connect_timeout, default.cloud.connect_timeout);
        assert_eq!(
            parsed.cloud.retry.max_attempts,
            default.cloud.retry.max_attempts
        );
        assert_eq!(parsed.poll.min_interval, default.poll.min_interval);
        assert_eq!(parsed.poll.max_interval, default.poll.max_interval);
        assert_eq!(parsed.watch.max_timeout, default.watch.max_timeout);
        assert_eq!(parsed.security, default.security);
        // The one deliberate difference: the CLI turns the admin listener on.
        assert_eq!(
            parsed.admin_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        assert_eq!(default.admin_listen, None);
    }

    #[test]
    fn an_upstream_quota_overrides_one_api_and_keeps_the_rest() {
        let args = Cli::parse_from(["serve", "--upstream-quota", "DescribeVpnGateway=1200/60s"]);
        let budget = ServeConfig::from(args.serve).cloud.budget;
        assert_eq!(budget.quotas["DescribeVpnGateway"], Quota::per_minute(1200));
        assert_eq!(
            budget.quotas["ModifySslVpnServer"],
            BudgetConfig::default().quotas["ModifySslVpnServer"]
        );
        assert!(
            Cli::try_parse_from(["serve", "--upstream-quota", "DescribeVpnGateway=lots"]).is_err()
        );
    }
}
